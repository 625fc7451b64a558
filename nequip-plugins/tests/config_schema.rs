//! `nequip config schema`: a JSON Schema of every registered key. Every shipped config
//! validates against it (with a JSON Schema validator, as a YAML language server would), and a
//! typo or a wrong type is rejected.

use std::path::{Path, PathBuf};

use nequip_core::config::{Config, Source};

fn schema() -> serde_json::Value {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_nequip")).args(["config", "schema"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The keys of a config file (its own and its baseline's), as a language server sees them:
/// YAML read as nequip reads it (Python tags included), defaults left out.
fn file_keys(config: &Config) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (k, e) in config.entries() {
        if matches!(e.source, Source::File { .. }) {
            m.insert(k.to_string(), serde_json::to_value(&e.value).unwrap());
        }
    }
    serde_json::Value::Object(m)
}

fn errors(v: &jsonschema::Validator, instance: &serde_json::Value) -> Vec<String> {
    v.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

fn shipped_configs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = Vec::new();
    for dir in ["configs", "bench"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn shipped_configs_validate_and_typos_do_not() {
    let s = schema();
    assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
    // types, defaults and docs come from the key specs
    assert_eq!(s["properties"]["batch_size"]["type"], "integer");
    assert_eq!(s["properties"]["batch_size"]["default"], 5);
    assert!(s["properties"]["batch_size"]["description"].as_str().unwrap().contains("Frames per training batch."));
    assert_eq!(s["properties"]["learning_rate"]["type"], "number");
    assert!(s["properties"]["optimizer_amsgrad"].is_object());
    assert!(s["properties"]["BesselBasis_num_basis"].is_object());
    let v = jsonschema::validator_for(&s).expect("a valid JSON Schema");

    let configs = shipped_configs();
    assert!(configs.len() >= 6, "{configs:?}");
    let mut all = Vec::new();
    for p in &configs {
        let c = Config::load(p).unwrap();
        let keys = file_keys(&c);
        assert!(keys.as_object().unwrap().len() > 5, "{}", p.display());
        all.extend(errors(&v, &keys).into_iter().map(|e| format!("{}: {e}", p.display())));
    }
    assert!(all.is_empty(), "{all:#?}");

    // a typo of a root key, of a module key with its instance prefix, and a wrong type
    let base = Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/minimal.yaml")).unwrap();
    for (key, value, what) in [
        ("num_featurs", serde_json::json!(8), "num_featurs"),
        ("layer0_convnet_feature_irreps_hiden", serde_json::json!("4x0e"), "layer0_convnet_feature_irreps_hiden"),
        ("batch_size", serde_json::json!("five"), "batch_size"),
        ("model_builders", serde_json::json!("EnergyModel"), "model_builders"),
    ] {
        let mut keys = file_keys(&base);
        keys.as_object_mut().unwrap().insert(key.into(), value);
        let errs = errors(&v, &keys);
        assert!(errs.iter().any(|e| e.contains(what)), "{key}: {errs:#?}");
    }
    // the instance-prefixed form of a real module key is accepted
    let mut keys = file_keys(&base);
    keys.as_object_mut().unwrap().insert("layer0_convnet_feature_irreps_hidden".into(), serde_json::json!("4x0e"));
    assert!(errors(&v, &keys).is_empty());
}

#[test]
fn schema_to_a_file() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("nequip.schema.json");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_nequip")).args(["config", "schema", "-o", p.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    assert_eq!(v, schema());
}
