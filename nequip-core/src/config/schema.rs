//! A JSON Schema (draft 2020-12) of every key a config may hold, for YAML language servers
//! (`nequip config schema`): built from the same key specifications the resolver reads
//! (`#[auto_init]` tables of every registration, the trainer's and global options, the type
//! mapper) plus nequip's default keys, the Python-only keys and the early-stopping options.
//! Types, defaults and docs come from the [`KeySpec`]s; a key read by several components gets
//! every type they accept. Module keys may carry an instance prefix
//! (`layer0_convnet_feature_irreps_hidden`), so they are also matched as `*_key`; any other key
//! is refused (`additionalProperties: false`), so a typo is flagged in the editor.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value as Json};

use super::defaults;
use super::keys::{AutoInit, KeySpec};
use crate::registry::{self, Kind};

/// JSON types (`integer`, `number`, ...) for a Rust type of a key spec; `None`: any value.
fn json_types(ty: &str) -> Option<Vec<&'static str>> {
    let ty: String = ty.chars().filter(|c| !c.is_whitespace()).collect();
    if let Some(inner) = ty.strip_prefix("Option<").and_then(|t| t.strip_suffix('>')) {
        return json_types(inner).map(|mut t| {
            t.push("null");
            t
        });
    }
    let base = ty.rsplit("::").next().unwrap_or(&ty);
    let head = base.split('<').next().unwrap_or(base);
    Some(match head {
        "i64" | "i32" | "u64" | "u32" | "usize" => vec!["integer"],
        "f64" | "f32" => vec!["number"],
        "bool" => vec!["boolean"],
        "String" | "PathBuf" | "str" | "&str" => vec!["string"],
        "Vec" => vec!["array"],
        "BTreeMap" | "HashMap" | "IndexMap" | "Mapping" | "AtomicDataOptions" => vec!["object"],
        _ => return None,
    })
}

#[derive(Default)]
struct Prop {
    /// `None` once some component accepts any value.
    types: Option<Vec<&'static str>>,
    any: bool,
    default: Option<Json>,
    docs: Vec<String>,
}

impl Prop {
    fn add(&mut self, types: Option<Vec<&'static str>>, default: Option<Json>, doc: String) {
        match types {
            None => self.any = true,
            Some(t) => {
                let v = self.types.get_or_insert_with(Vec::new);
                for x in t {
                    if !v.contains(&x) {
                        v.push(x);
                    }
                }
            }
        }
        if self.default.is_none() {
            self.default = default;
        }
        if !doc.is_empty() && !self.docs.contains(&doc) {
            self.docs.push(doc);
        }
    }

    fn to_json(&self) -> Json {
        let mut m = Map::new();
        if let (false, Some(t)) = (self.any, &self.types) {
            let mut t = t.clone();
            // an integer is a number
            if t.contains(&"number") {
                t.retain(|x| *x != "integer");
            }
            m.insert("type".into(), if t.len() == 1 { json!(t[0]) } else { json!(t) });
        }
        if let Some(d) = &self.default {
            m.insert("default".into(), d.clone());
        }
        if !self.docs.is_empty() {
            m.insert("description".into(), json!(self.docs.join("\n")));
        }
        Json::Object(m)
    }
}

#[derive(Default)]
struct Builder {
    props: BTreeMap<String, Prop>,
    /// Key names also accepted with any instance prefix (`*_name`).
    patterns: BTreeMap<String, Prop>,
}

impl Builder {
    fn key(&mut self, name: &str, spec: &KeySpec, component: &str) {
        let default = spec.default.map(|f| serde_json::to_value(f()).unwrap_or(Json::Null));
        let doc = format!("{} [{component}]", spec.doc.trim()).trim().to_string();
        self.props.entry(name.to_string()).or_default().add(json_types(spec.ty), default, doc);
    }

    fn table(&mut self, keys: &[KeySpec], prefixes: &[String], component: &str, instance_prefixed: bool) {
        for k in keys {
            self.key(k.name, k, component);
            for p in prefixes {
                self.key(&format!("{p}_{}", k.name), k, component);
            }
            if instance_prefixed {
                // untyped: `num_basis` also reads as an instance `num` of a key `basis`
                self.patterns.entry(k.name.to_string()).or_default().add(None, None, format!("{} [{component}, with an instance prefix]", k.doc.trim()));
            }
            if k.nested.is_some() {
                // a nested builder's options: `x_kwargs`
                self.plain(&format!("{}_kwargs", k.name), Some(vec!["object", "null"]), &format!("Options of the {} named by `{}` [{component}]", k.nested.map(|n| n.as_str()).unwrap_or("builder"), k.name));
            }
        }
    }

    fn plain(&mut self, name: &str, types: Option<Vec<&'static str>>, doc: &str) {
        self.props.entry(name.to_string()).or_default().add(types, None, doc.to_string());
    }
}

fn escape_regex(s: &str) -> String {
    s.chars().flat_map(|c| if c.is_alphanumeric() || c == '_' { vec![c] } else { vec!['\\', c] }).collect()
}

/// The schema of every key known to this binary's registry.
pub fn json_schema() -> Json {
    let mut b = Builder::default();
    b.table(crate::train::options::GlobalOptions::KEYS, &[], "global options", false);
    b.table(crate::train::options::TrainerOptions::KEYS, &[], "Trainer", false);
    let datasets = ["dataset".to_string(), "validation_dataset".to_string()];
    b.table(crate::data::TypeMapperOptions::KEYS, &datasets, "TypeMapper", false);
    for r in registry::all() {
        let mut prefixes: Vec<String> = Vec::new();
        if r.class_prefix {
            prefixes.push(r.name.to_string());
        }
        prefixes.extend(r.prefix.map(str::to_string));
        // the prefixes the caller adds (nequip's `instantiate(..., prefix=...)`)
        match r.kind {
            Kind::Optimizer => prefixes.push("optimizer".into()),
            Kind::LrScheduler => prefixes.push("lr_scheduler".into()),
            Kind::Dataset => prefixes.extend(datasets.iter().cloned()),
            _ => {}
        }
        let instance = matches!(r.kind, Kind::NnModule | Kind::RadialFunction);
        b.table(r.keys, &prefixes, &format!("{} {}", r.kind.as_str(), r.name), instance);
    }
    let builders: Vec<&str> = registry::of_kind(Kind::ModelBuilder).iter().flat_map(|r| std::iter::once(r.name).chain(r.aliases.iter().copied())).collect();
    let dataset_names: Vec<&str> = registry::of_kind(Kind::Dataset).iter().flat_map(|r| std::iter::once(r.name).chain(r.aliases.iter().copied())).collect();
    for (k, v) in defaults::default_config() {
        let types = match &v {
            super::Value::Bool(_) => vec!["boolean"],
            super::Value::Number(_) => vec!["number"],
            super::Value::String(_) => vec!["string"],
            super::Value::Sequence(_) => vec!["array"],
            _ => vec!["object"],
        };
        let p = b.props.entry(k.to_string()).or_default();
        p.add(Some(types), Some(serde_json::to_value(&v).unwrap_or(Json::Null)), String::new());
    }
    for (k, what) in defaults::PYTHON_ONLY {
        b.plain(k, None, &format!("{what}: a Python-only feature of nequip, accepted but not supported by nequip-rs"));
    }
    for k in defaults::REFUSED_WHEN_ON {
        b.plain(k, Some(vec!["boolean", "null"]), "a Python-only feature of nequip: accepted when false, refused when true");
    }
    b.plain(defaults::INCLUDE_KEY, Some(vec!["string"]), "A baseline config file whose keys this file overrides (one level).");
    for (k, t, doc) in [
        ("patiences", vec!["object", "null"], "Stop when a metric has not decreased for N epochs: `{metric: N}` (no `training_`/`validation_` prefix: validation)."),
        ("delta", vec!["object", "null"], "Decrease below which a patience counts an epoch as no improvement: `{metric: delta}`."),
        ("lower_bounds", vec!["object", "null"], "Stop when a metric falls below its bound: `{metric: bound}` (e.g. `LR`)."),
        ("upper_bounds", vec!["object", "null"], "Stop when a metric rises above its bound: `{metric: bound}`."),
        ("cumulative_delta", vec!["boolean", "null"], "Measure `delta` from the best value so far instead of the previous epoch's."),
    ] {
        b.plain(&format!("early_stopping_{k}"), Some(t), &format!("{doc} [EarlyStopping]"));
    }
    b.plain("lr_scheduler_last_epoch", Some(vec!["integer"]), "torch's `last_epoch`: only -1 (the default) is supported by nequip-rs.");
    for d in &datasets {
        b.plain(&format!("{d}_url"), Some(vec!["string", "null"]), "Download the data file from this URL when it is missing.");
        b.plain(&format!("{d}_AtomicData_options"), Some(vec!["object", "null"]), "AtomicData options of the dataset (`r_max`, ...).");
    }

    // keys whose value may also be `auto` (computed from the data) or a statistic's name
    for k in ["avg_num_neighbors"] {
        if let Some(p) = b.props.get_mut(k) {
            p.add(Some(vec!["string"]), None, String::new());
        }
    }
    let mut props = Map::new();
    for (k, p) in &b.props {
        props.insert(k.clone(), p.to_json());
    }
    props.insert("model_builders".into(), json!({"type": "array", "items": {"anyOf": [{"enum": builders}, {"type": "string"}]}, "description": "Model builders, run in order (nequip's `model_from_config`).", "default": defaults::DEFAULT_MODEL_BUILDERS}));
    for d in &datasets {
        props.insert(d.clone(), json!({"anyOf": [{"enum": dataset_names}, {"type": "string"}, {"type": "null"}], "description": "The dataset class (a registered dataset name)."}));
    }
    let mut patterns = Map::new();
    for (k, p) in &b.patterns {
        patterns.insert(format!("^[A-Za-z0-9_]+_{}$", escape_regex(k)), p.to_json());
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "nequip-rs config (nequip 0.6.2 YAML)",
        "description": "Every key the registered components of this nequip build read; generated by `nequip config schema`.",
        "type": "object",
        "properties": props,
        "patternProperties": patterns,
        "additionalProperties": false,
    })
}
