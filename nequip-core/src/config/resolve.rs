//! The key resolver: nequip's `nequip/utils/auto_init.py::instantiate`, made explicit.
//!
//! **This is the one place where a component's keys are looked up.** For a component with
//! prefix list `P = [ClassName (registered structs only)] + prefixes` (low → high) and a
//! parameter `k`, the candidates are, from lowest to highest priority:
//!
//! 1. `all[k]`
//! 2. for each `p` in `P`: `all[p_k]`, then `all[p_kwargs][k]`
//! 3. `optional[k]`
//! 4. for each `p` in `P`: `optional[p_k]`, then `optional[p_kwargs][k]`
//! 5. `positional[k]` (always wins)
//!
//! then the parameter's default; a required parameter with no value is an error listing every
//! name searched. A parameter `x` with a sibling `x_kwargs` names a nested builder: its keys are
//! resolved recursively with prefixes `[Sub, x] + [p, p_x for p in P]`, and an explicit `x_kwargs`
//! value is merged on top; a builder appearing twice in the chain is a cycle.
//!
//! Every key found in the root config is recorded as used (including generic keys overridden
//! by a winning prefixed key — nequip 0.6.2 reports those as unused; we do not).

use indexmap::IndexMap;

use super::error::{Place, ResolveError};
use super::keys::{AutoInit, KeySpec};
use super::yaml::{self, Mapping, Value};
use super::{Config, Source};
use crate::registry;

/// A place to look keys up in: nequip's `all_args` / `optional_args` dicts.
#[derive(Clone, Copy)]
pub enum Args<'a> {
    /// The root config; lookups are recorded as uses.
    Config(&'a Config),
    /// A plain mapping (a layer's parameter dict, `optimizer_kwargs`, ...) named for messages.
    Map { map: &'a Mapping, name: &'a str },
}

impl<'a> Args<'a> {
    fn get(&self, key: &str) -> Option<(Value, Option<Source>)> {
        match self {
            Args::Config(c) => c.entry(key).map(|e| (e.value.clone(), Some(e.source.clone()))),
            Args::Map { map, .. } => map.get(key).map(|v| (v.clone(), None)),
        }
    }
    fn config(&self) -> Option<&'a Config> {
        match self {
            Args::Config(c) => Some(c),
            Args::Map { .. } => None,
        }
    }
    fn describe(&self, key: &str) -> String {
        match self {
            Args::Config(_) => key.to_string(),
            Args::Map { name, .. } => format!("{name}.{key}"),
        }
    }
}

/// What to resolve.
pub struct Request<'a> {
    /// Who is asking, for messages and usage records (`layer0_convnet (ConvNetLayer)`).
    pub component: String,
    /// The registered name of the builder (for the class prefix and cycle detection).
    pub builder: &'a str,
    /// Whether `builder` is an implicit prefix (nequip: classes yes, functions no).
    pub class_prefix: bool,
    /// Explicit prefixes, low → high priority.
    pub prefixes: Vec<String>,
    pub keys: &'a [KeySpec],
    pub positional: Mapping,
    pub optional: Option<Args<'a>>,
    pub all: Option<Args<'a>>,
}

impl<'a> Request<'a> {
    /// A request for an `AutoInit` struct registered (or not) under `builder`.
    pub fn new(component: impl Into<String>, builder: &'a str, keys: &'a [KeySpec]) -> Self {
        Request { component: component.into(), builder, class_prefix: false, prefixes: Vec::new(), keys, positional: Mapping::new(), optional: None, all: None }
    }
    /// The request for a registered item, with its class prefix and fixed prefix.
    pub fn for_registration(component: impl Into<String>, reg: &'a registry::Registration) -> Self {
        let mut r = Self::new(component, reg.name, reg.keys);
        r.class_prefix = reg.class_prefix;
        r.prefixes.extend(reg.prefix.map(str::to_string));
        r
    }
    pub fn prefix(mut self, p: impl Into<String>) -> Self {
        self.prefixes.push(p.into());
        self
    }
    pub fn all(mut self, a: Args<'a>) -> Self {
        self.all = Some(a);
        self
    }
    pub fn optional(mut self, a: Args<'a>) -> Self {
        self.optional = Some(a);
        self
    }
    pub fn positional(mut self, key: &str, v: Value) -> Self {
        self.positional.insert(Value::String(key.into()), v);
        self
    }
    fn prefix_list(&self) -> Vec<String> {
        let mut p: Vec<String> = if self.class_prefix { vec![self.builder.to_string()] } else { vec![] };
        p.extend(self.prefixes.iter().cloned());
        p
    }
}

/// Where a resolved value came from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum Origin {
    /// The parameter's default.
    Default,
    /// Passed by the calling code (nequip's `positional_args`).
    Positional,
    /// Found under the name `found_as` (`layer0_convnet_num_basis`, `optimizer_kwargs.amsgrad`).
    Found {
        found_as: String,
        optional: bool,
        #[serde(skip)]
        source: Option<Source>,
    },
    /// Resolved recursively (an `x_kwargs` of a nested builder).
    Nested,
}

/// A resolved parameter.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub value: Value,
    pub origin: Origin,
}

/// The result of [`resolve`]: every parameter's value and origin, and nested resolutions.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub component: String,
    pub builder: String,
    pub values: IndexMap<String, Resolved>,
    /// `x` → the resolution of the nested builder named by `x`.
    pub nested: IndexMap<String, Resolution>,
}

impl Resolution {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key).map(|r| &r.value)
    }

    /// The parameters as a mapping (nequip's `final_optional_args` + positional).
    pub fn to_mapping(&self) -> Mapping {
        self.values.iter().map(|(k, r)| (Value::String(k.clone()), r.value.clone())).collect()
    }

    /// Convert into the typed struct; a type error names the key, where it was found and the value.
    pub fn into_typed<T: AutoInit>(&self) -> Result<T, ResolveError> {
        yaml::from_mapping_with_path(self.to_mapping()).map_err(|(path, message)| {
            let key = path.split('.').next().unwrap_or(&path).to_string();
            let (found_as, place) = match self.values.get(&key).map(|r| &r.origin) {
                Some(Origin::Found { found_as, source: Some(Source::File { place, .. }), .. }) => (found_as.clone(), Some(place.clone())),
                Some(Origin::Found { found_as, .. }) => (found_as.clone(), None),
                Some(Origin::Default) => (format!("{key} (default)"), None),
                _ => (key.clone(), None),
            };
            let found = self.values.get(&key).map(|r| yaml::render(&r.value)).unwrap_or_default();
            ResolveError::TypeMismatch {
                component: self.component.clone(),
                key: if path == key { key.clone() } else { path.clone() },
                found_as,
                place,
                message: format!("{message} (value: {found})"),
            }
        })
    }
}

/// Resolve the keys of `req` with nequip's precedence (see the module docs).
pub fn resolve(req: &Request<'_>) -> Result<Resolution, ResolveError> {
    resolve_inner(req, &[])
}

/// Resolve and convert to `T` in one step.
pub fn resolve_typed<T: AutoInit>(req: &Request<'_>) -> Result<(T, Resolution), ResolveError> {
    let r = resolve(req)?;
    Ok((r.into_typed()?, r))
}

struct Hit {
    value: Value,
    found_as: String,
    optional: bool,
    source: Option<Source>,
    /// (config key to mark as used) when the hit came from the root config.
    mark: Option<String>,
}

fn lookup(args: &Args<'_>, key: &str, prefixes: &[String], optional: bool, hits: &mut Vec<Hit>) {
    let mut push = |found_as: String, mark: &str, value: Value, source: Option<Source>| {
        let mark = args.config().map(|_| mark.to_string());
        hits.push(Hit { value, found_as, optional, source, mark });
    };
    if let Some((v, s)) = args.get(key) {
        push(args.describe(key), key, v, s);
    }
    if let Some(c) = args.config() {
        c.note_searched(key);
    }
    for p in prefixes {
        let pk = format!("{p}_{key}");
        if let Some(c) = args.config() {
            c.note_searched(&pk);
        }
        if let Some((v, s)) = args.get(&pk) {
            push(args.describe(&pk), &pk, v, s);
        }
        let kw = format!("{p}_kwargs");
        if let Some((Value::Mapping(m), s)) = args.get(&kw) {
            if let Some(v) = m.get(key) {
                push(format!("{}.{key}", args.describe(&kw)), &kw, v.clone(), s);
            }
        }
    }
}

fn searched_names(req: &Request<'_>, key: &str, prefixes: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for args in [req.optional, req.all].into_iter().flatten() {
        for p in prefixes.iter().rev() {
            out.push(args.describe(&format!("{p}_{key}")));
        }
        out.push(args.describe(key));
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|n| seen.insert(n.clone()));
    out
}

fn resolve_inner(req: &Request<'_>, parents: &[String]) -> Result<Resolution, ResolveError> {
    let prefixes = req.prefix_list();
    let mut values = IndexMap::new();
    let mut missing = None;
    for spec in req.keys {
        let mut hits = Vec::new();
        if let Some(all) = &req.all {
            lookup(all, spec.name, &prefixes, false, &mut hits);
        }
        if let Some(opt) = &req.optional {
            lookup(opt, spec.name, &prefixes, true, &mut hits);
        }
        let winner = hits.len().checked_sub(1);
        for (i, h) in hits.iter().enumerate() {
            if let (Some(key), Some(cfg)) = (&h.mark, req.all.and_then(|a| a.config()).or(req.optional.and_then(|a| a.config()))) {
                cfg.mark(key, &req.component, spec.name, Some(i) == winner && !req.positional.contains_key(spec.name));
            }
        }
        let resolved = if let Some(v) = req.positional.get(spec.name) {
            Some(Resolved { value: v.clone(), origin: Origin::Positional })
        } else if let Some(h) = hits.pop() {
            Some(Resolved { value: h.value, origin: Origin::Found { found_as: h.found_as, optional: h.optional, source: h.source } })
        } else {
            spec.default.map(|d| Resolved { value: d(), origin: Origin::Default })
        };
        match resolved {
            Some(r) => {
                values.insert(spec.name.to_string(), r);
            }
            None if missing.is_none() => missing = Some(spec.name),
            None => {}
        }
    }
    if let Some(key) = missing {
        return Err(ResolveError::MissingKey { component: req.component.clone(), key: key.into(), searched: searched_names(req, key, &prefixes) });
    }

    let mut nested = IndexMap::new();
    for spec in req.keys {
        let Some(kind) = spec.nested else { continue };
        let kw_key = format!("{}_kwargs", spec.name);
        if req.positional.contains_key(kw_key.as_str()) {
            continue;
        }
        let sub_name = match values.get(spec.name).map(|r| &r.value) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(ResolveError::NotABuilder { component: req.component.clone(), key: spec.name.into(), kind: kind.to_string(), found: yaml::render(other) })
            }
        };
        let reg = registry::find(kind, &sub_name).map_err(|e| ResolveError::UnknownNested {
            component: req.component.clone(),
            key: spec.name.into(),
            kind: kind.to_string(),
            name: sub_name.clone(),
            suggestion: e.suggestion,
            registered: e.registered,
        })?;
        let mut chain: Vec<String> = parents.to_vec();
        chain.push(req.builder.to_string());
        if chain.iter().any(|b| b == reg.name) {
            chain.push(reg.name.to_string());
            return Err(ResolveError::Cyclic { chain });
        }
        let mut sub_prefixes = vec![reg.name.to_string(), spec.name.to_string()];
        for p in &prefixes {
            sub_prefixes.push(p.clone());
            sub_prefixes.push(format!("{p}_{}", spec.name));
        }
        let sub_keys: Vec<&str> = reg.keys.iter().map(|k| k.name).collect();
        let sub_req = Request {
            component: format!("{} -> {} ({})", req.component, spec.name, reg.name),
            builder: reg.name,
            class_prefix: false,
            prefixes: sub_prefixes,
            keys: reg.keys,
            positional: req.positional.iter().filter(|(k, _)| k.as_str().is_some_and(|k| sub_keys.contains(&k))).map(|(k, v)| (k.clone(), v.clone())).collect(),
            optional: req.optional,
            all: req.all,
        };
        let sub = resolve_inner(&sub_req, &chain)?;
        let mut kwargs = sub.to_mapping();
        if let Some(Value::Mapping(explicit)) = values.get(&kw_key).map(|r| &r.value) {
            for (k, v) in explicit {
                kwargs.insert(k.clone(), v.clone());
            }
        }
        values.insert(kw_key, Resolved { value: Value::Mapping(kwargs), origin: Origin::Nested });
        nested.insert(spec.name.to_string(), sub);
    }
    Ok(Resolution { component: req.component.clone(), builder: req.builder.to_string(), values, nested })
}

/// nequip's `get_w_prefix`: one key searched in a list of argument sources (the first has the
/// highest priority; within one source `prefix_key` beats `key`). Records the use.
pub fn get_with_prefix(key: &str, prefixes: &[&str], sources: &[Args<'_>], component: &str) -> Option<Value> {
    for args in sources {
        for p in prefixes.iter().rev() {
            let pk = format!("{p}_{key}");
            if let Some((v, _)) = args.get(&pk) {
                if let Some(c) = args.config() {
                    c.mark(&pk, component, key, true);
                }
                return Some(v);
            }
        }
        if let Some((v, _)) = args.get(key) {
            if let Some(c) = args.config() {
                c.mark(key, component, key, true);
            }
            return Some(v);
        }
    }
    None
}

/// The place of a resolved value, when it came from a file.
pub fn place_of(r: &Resolved) -> Option<Place> {
    match &r.origin {
        Origin::Found { source: Some(Source::File { place, .. }), .. } => Some(place.clone()),
        _ => None,
    }
}
