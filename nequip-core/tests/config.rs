//! Config loading (nequip's `tests/unit/utils/test_config.py` semantics, on files), provenance,
//! baseline includes, Python tags, error positions and the unused-key report.

use std::path::PathBuf;

use nequip_core::config::{yaml, Config, ConfigError, Source, Value};

fn write(dir: &tempdir::Dir, name: &str, text: &str) -> PathBuf {
    let p = dir.0.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!("nequip-rs-test-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn defaults_layer_has_nequip_values() {
    let c = Config::with_defaults();
    assert_eq!(c.get("root").unwrap().as_str(), Some("./"));
    assert_eq!(c.get("default_dtype").unwrap().as_str(), Some("float64"));
    assert_eq!(c.get("model_dtype").unwrap().as_str(), Some("float32"));
    assert_eq!(c.get("dataset_statistics_stride").unwrap().as_i64(), Some(1));
    assert_eq!(yaml::render(c.get("model_builders").unwrap()), "[\"SimpleIrrepsConfig\", \"EnergyModel\", \"PerSpeciesRescale\", \"StressForceOutput\", \"RescaleEnergyEtc\"]");
    assert_eq!(c.get("device").unwrap().as_str(), Some(if tch::Cuda::is_available() { "cuda" } else { "cpu" }));
    assert!(c.entries().all(|(_, e)| e.source == Source::Default));
}

#[test]
fn yaml_overrides_defaults_and_keeps_order_and_positions() {
    let d = tempdir::Dir::new("order");
    let f = write(&d, "a.yaml", "# comment\nroot: results/x\nr_max: 4.0\nnum_features: 16\n");
    let c = Config::load(&f).unwrap();
    assert_eq!(c.get("root").unwrap().as_str(), Some("results/x"));
    let keys: Vec<&str> = c.entries().map(|(k, _)| k).collect();
    assert_eq!(&keys[keys.len() - 2..], &["r_max", "num_features"]);
    let place = c.place("num_features").unwrap();
    assert_eq!(place.to_string(), format!("{}:4:1", f.display()));
    match &c.entry("root").unwrap().source {
        Source::File { baseline: false, place } => assert_eq!(place.location.unwrap().line, 2),
        s => panic!("{s:?}"),
    }
}

#[test]
fn baseline_include_one_level() {
    let d = tempdir::Dir::new("baseline");
    write(&d, "base.yaml", "r_max: 5.0\nnum_layers: 4\n");
    let f = write(&d, "main.yaml", "include_file_as_baseline_config: base.yaml\nr_max: 3.5\n");
    let c = Config::load(&f).unwrap();
    assert_eq!(c.get("r_max").unwrap().as_f64(), Some(3.5));
    assert_eq!(c.get("num_layers").unwrap().as_i64(), Some(4));
    assert!(matches!(c.entry("num_layers").unwrap().source, Source::File { baseline: true, .. }));
    assert!(matches!(c.entry("r_max").unwrap().source, Source::File { baseline: false, .. }));

    write(&d, "base2.yaml", "include_file_as_baseline_config: base.yaml\n");
    let g = write(&d, "main2.yaml", "include_file_as_baseline_config: base2.yaml\n");
    assert!(matches!(Config::load(&g).unwrap_err(), ConfigError::NestedInclude { .. }));
}

#[test]
fn python_tags_are_read() {
    let c = Config::from_yaml_str(
        "optimizer_betas: !!python/tuple\n- 0.9\n- 0.999\ndataset_include_frames: !!python/object/apply:builtins.range\n- 0\n- 6\n- 2\ntorch_version: !!python/object/new:torch.torch_version.TorchVersion\n- 2.1.0\n",
        "tags.yaml",
    )
    .unwrap();
    assert_eq!(yaml::render(c.get("optimizer_betas").unwrap()), "[0.9, 0.999]");
    assert_eq!(yaml::render(c.get("dataset_include_frames").unwrap()), "[0, 2, 4]");
    assert_eq!(c.get("torch_version").unwrap().as_str(), Some("2.1.0"));
}

#[test]
fn syntax_errors_name_file_line_and_column() {
    let d = tempdir::Dir::new("syntax");
    let f = write(&d, "bad.yaml", "r_max: 4.0\nnum_features: [16, 32\nl_max: 2\n");
    let e = Config::load(&f).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ConfigError::Syntax { location: Some(_), .. }));
    assert!(msg.starts_with(&format!("{}:", f.display())), "{msg}");
    assert!(msg.contains("YAML syntax error"), "{msg}");
}

#[test]
fn non_mapping_and_missing_file_errors() {
    let e = Config::from_yaml_str("- a\n- b\n", "list.yaml").unwrap_err();
    assert_eq!(e.to_string(), "list.yaml: the config must be a mapping of keys to values, found list");
    let e = Config::load(std::path::Path::new("/nonexistent/cfg.yaml")).unwrap_err();
    assert!(e.to_string().starts_with("cannot read config file /nonexistent/cfg.yaml"), "{e}");
    let e = Config::from_yaml_str("x: !!python/object:foo.Bar {a: 1}\n", "t.yaml").unwrap_err();
    assert!(e.to_string().contains("t.yaml:1:1: key `x`: unsupported Python tag"), "{e}");
}

#[test]
fn unused_keys_get_the_closest_known_key() {
    let c = Config::from_yaml_str("num_feature: 16\nr_max: 4.0\nwandb: false\n", "typo.yaml").unwrap();
    c.mark("r_max", "test", "r_max", true);
    let unused = c.unused_keys(["num_features", "num_basis"]);
    assert_eq!(unused.len(), 1);
    assert_eq!(unused[0].to_string(), "typo.yaml:1:1: `num_feature`: did you mean `num_features`?");
    let e = ConfigError::UnusedKeys { keys: unused };
    assert!(e.to_string().starts_with("the following keys in the config were not used, did you make a typo?"));
}

#[test]
fn set_by_builder_records_provenance() {
    let mut c = Config::from_yaml_str("l_max: 1\n", "x.yaml").unwrap();
    c.set("num_types", Value::Number(3.into()), Source::SetBy("model_from_config".into()));
    assert_eq!(c.entry("num_types").unwrap().source.to_string(), "set by model_from_config");
    assert!(c.usage_snapshot().contains_key("num_types"));
}

#[test]
fn save_and_load_round_trip() {
    let d = tempdir::Dir::new("save");
    let src = write(&d, "in.yaml", "stringv: 3x0e\nintv: 1\nnonev: null\nboolv: true\nbetas: !!python/tuple [0.9, 0.999]\nnested: {a: [1, 2]}\n");
    let c = Config::load(&src).unwrap();
    let out = d.0.join("saved.yaml");
    c.save(&out).unwrap();
    let c2 = Config::load(&out).unwrap();
    assert_eq!(c.to_mapping(), c2.to_mapping());
    assert_eq!(yaml::render(c2.get("betas").unwrap()), "[0.9, 0.999]");
    assert!(c2.get("nonev").unwrap().is_null());
    // no temp file left behind
    let names: Vec<_> = std::fs::read_dir(&d.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
}
