//! Transcript tests of the `nequip` command: list, config check, config explain — and bad
//! input gives a clear message and a non-zero exit, never a panic (exit code 101).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn nequip(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nequip")).args(args).output().expect("run nequip")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

struct Dir(PathBuf);
impl Dir {
    fn new(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("nequip-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
    fn file(&self, name: &str, body: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn check(p: &Path) -> Output {
    nequip(&["config", "check", p.to_str().unwrap()])
}

const CLEAN: &str = "model_builders: [SimpleIrrepsConfig]\nl_max: 2\nparity: true\nnum_features: 16\nseed: 123\nloss_coeffs: {forces: 1.0, total_energy: [1.0, PerAtomMSELoss]}\noptimizer_kwargs: {amsgrad: true}\n";

#[test]
fn list_json_parses_and_is_sorted() {
    let o = nequip(&["list", "--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let items = v["items"].as_array().unwrap();
    let names: Vec<(String, String)> = items.iter().map(|i| (i["kind"].as_str().unwrap().to_string(), i["name"].as_str().unwrap().to_string())).collect();
    assert!(names.contains(&("loss".into(), "HuberLoss".into())));
    let huber = items.iter().find(|i| i["name"] == "HuberLoss").unwrap();
    assert_eq!(huber["keys"][0], serde_json::json!({"name": "delta", "type": "f64", "required": false, "default": 1.0, "doc": "Threshold between the quadratic and the linear regime.", "nested": null}));
    assert_eq!(huber["prefixes"], serde_json::json!(["HuberLoss"]));
}

#[test]
fn list_one_kind_and_unknown_kind() {
    let (out, _) = text(&nequip(&["list", "losses", "--verbose"]));
    assert!(out.starts_with("loss:\n"), "{out}");
    assert!(out.contains("delta: f64 = 1.0  Threshold"), "{out}");
    assert!(!out.contains("SimpleIrrepsConfig"));
    let o = nequip(&["list", "gizmo"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("unknown kind `gizmo`; expected one of: model_builder, dataset"), "{}", text(&o).1);
}

#[test]
fn clean_config_checks_ok() {
    let d = Dir::new("clean");
    let f = d.file("ok.yaml", CLEAN.as_bytes());
    let o = check(&f);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(out, format!("{}: ok\n", f.display()));
}

#[test]
fn typo_is_an_error_with_a_suggestion() {
    let d = Dir::new("typo");
    let f = d.file("typo.yaml", format!("{CLEAN}num_feature: 8\n").as_bytes());
    let o = check(&f);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o).1;
    assert!(err.contains(&format!("{}:8:1: `num_feature`: did you mean `num_features`?", f.display())), "{err}");
    // --warn-unused makes it a warning
    let o = nequip(&["config", "check", "--warn-unused", f.to_str().unwrap()]);
    assert!(o.status.success());
    assert!(text(&o).1.starts_with("warning: the following keys in the config were not used"), "{}", text(&o).1);
}

#[test]
fn yaml_syntax_error_prints_file_line_column() {
    let d = Dir::new("syntax");
    let f = d.file("bad.yaml", b"seed: 1\nmodel_builders: [SimpleIrrepsConfig\nl_max: 2\n");
    let o = check(&f);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o).1;
    let re_prefix = format!("error: loading {}\n  caused by: {}:", f.display(), f.display());
    assert!(err.starts_with(&re_prefix), "{err}");
    let after = &err[re_prefix.len()..];
    let (line, rest) = after.split_once(':').unwrap();
    let (col, _) = rest.split_once(':').unwrap();
    assert!(line.parse::<u32>().unwrap() >= 2 && col.parse::<u32>().is_ok(), "{err}");
}

#[test]
fn type_errors_and_unknown_names() {
    let d = Dir::new("types");
    let f = d.file("t.yaml", b"model_builders: [SimpleIrrepsConfg]\nmax_epochs: ten\nseed: 1\nloss_coeffs: {forces: [1.0, HubberLoss], stress: [1.0, HuberLoss, {delat: 1}]}\n");
    let o = check(&f);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o).1;
    let file = f.display();
    assert!(err.contains(&format!("error: {file}:2:1: Trainer: key `max_epochs` (for `max_epochs`): invalid type: string \"ten\", expected i64 (value: \"ten\")")), "{err}");
    assert!(err.contains(&format!("error: {file}:1:1: model_builders: unknown model_builder `SimpleIrrepsConfg` (did you mean `SimpleIrrepsConfig`?); registered model builders: EnergyModel, ")), "{err}");
    assert!(err.contains("loss_coeffs `forces`: unknown loss `HubberLoss` (did you mean `HuberLoss`?)"), "{err}");
    assert!(err.contains("loss_coeffs `stress`: HuberLoss has no parameter `delat` (did you mean `delta`?)"), "{err}");
    assert!(err.contains("3 error(s)") || err.contains("4 error(s)"), "{err}");
}

#[test]
fn simple_irreps_keys_are_resolved_and_explained() {
    let d = Dir::new("explain");
    let f = d.file("e.yaml", format!("{CLEAN}invariant_neurons: 3\n").as_bytes());
    let o = nequip(&["config", "explain", "--warn-unused", f.to_str().unwrap()]);
    let (out, _) = text(&o);
    assert!(o.status.success());
    assert!(out.contains(&format!("l_max: 2\n    from: yaml {}:2:1\n    used by: SimpleIrrepsConfig as `l_max`", f.display())), "{out}");
    assert!(out.contains("root: \"./\"\n    from: default\n    used by: global options as `root`"), "{out}");
    assert!(out.contains("wandb: false\n    from: default\n    used by: (accepted; Python-only feature)"), "{out}");
    assert!(out.contains("invariant_neurons: 3\n    from: yaml"), "{out}");
    assert!(out.contains("    used by: nobody"), "{out}");
    assert!(out.contains("[Trainer]\n"), "{out}");
    assert!(out.contains("  batch_size = 5    <- default"), "{out}");
}

#[test]
fn python_only_keys_are_reported_not_ignored() {
    let d = Dir::new("py");
    let f = d.file("w.yaml", format!("{CLEAN}wandb: true\nwandb_project: x\n").as_bytes());
    let o = check(&f);
    assert!(o.status.success());
    let err = text(&o).1;
    assert!(err.contains("note: `wandb` (Weights & Biases logging) is a Python-only feature: accepted but not supported by nequip-rs"), "{err}");
}

/// No input makes the command panic: garbage, empty, huge nesting, wrong top-level types.
#[test]
fn garbage_never_panics() {
    let d = Dir::new("garbage");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty.yaml", b"".to_vec()),
        ("binary.yaml", vec![0xff, 0xfe, 0x00, 0x01, 0x9c, b':', b'\n']),
        ("list.yaml", b"- 1\n- 2\n".to_vec()),
        ("scalar.yaml", b"42\n".to_vec()),
        ("nested.yaml", format!("a: {}1{}\n", "[".repeat(2000), "]".repeat(2000)).into_bytes()),
        ("tabs.yaml", b"a:\n\t- b\n".to_vec()),
        ("dupkey.yaml", b"a: 1\na: 2\n".to_vec()),
        ("intkey.yaml", b"1: 2\n".to_vec()),
        ("badbuilders.yaml", b"model_builders: 3\n".to_vec()),
        ("badbuilders2.yaml", b"model_builders: [1, {a: 2}]\n".to_vec()),
        ("pytag.yaml", b"x: !!python/object/apply:builtins.range [0, 3, 0]\n".to_vec()),
        ("include.yaml", b"include_file_as_baseline_config: does_not_exist.yaml\n".to_vec()),
        ("loss.yaml", b"loss_coeffs: {forces: {a: 1}}\n".to_vec()),
    ];
    for (name, body) in cases {
        let f = d.file(name, &body);
        let o = check(&f);
        let err = text(&o).1;
        assert_ne!(o.status.code(), Some(101), "{name} panicked: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        if name != "empty.yaml" {
            assert_eq!(o.status.code(), Some(1), "{name} should fail: {err}");
            assert!(err.contains(name), "{name}: message must name the file: {err}");
        }
    }
    let o = nequip(&["config", "check", "/nonexistent/x.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("cannot read config file /nonexistent/x.yaml"));
}

fn data_file(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data").join(name).display().to_string()
}

/// `nequip data info` on both shared datasets: the numbers the data layer's tests check against
/// numpy, through the CLI, from npz and extxyz alike.
#[test]
fn data_info_json_on_shared_datasets() {
    for (file, r_max) in [("toluene_xtb.npz", "4.0"), ("toluene_xtb.extxyz", "4.0"), ("cu_emt.npz", "5.0"), ("cu_emt.extxyz", "5.0")] {
        let o = nequip(&["data", "info", &data_file(file), "--r-max", r_max, "--json"]);
        assert!(o.status.success(), "{file}: {}", text(&o).1);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["n_frames"], 1000, "{file}");
        if file.starts_with("toluene") {
            assert_eq!(v["n_atoms"], 15);
            assert_eq!(v["species"], serde_json::json!({"C": 7, "H": 8}));
            // independent values: mean / std of E over 1000 frames (toluene_xtb.json: E_mean, F_rms)
            assert!((v["energy_mean"].as_f64().unwrap() - -517.5334384906937).abs() < 1e-9);
            assert!((v["forces_rms"].as_f64().unwrap() - 1.0982949507991753).abs() < 1e-6);
            assert!((v["per_atom_energy_mean"].as_f64().unwrap() - -517.5334384906937 / 15.0).abs() < 1e-9);
        } else {
            assert_eq!(v["n_atoms"], 32);
            assert_eq!(v["species"], serde_json::json!({"Cu": 32}));
            assert_eq!(v["cell"]["pbc"], serde_json::json!({"TTT": 1000}));
        }
        for key in ["r_max", "avg_num_neighbors", "energy_std", "per_atom_energy_std", "per_species_energy"] {
            assert!(!v[key].is_null(), "{file}: {key}");
        }
    }
}

#[test]
fn data_info_from_a_config_and_its_training_split() {
    let d = Dir::new("datainfo");
    let cfg = format!(
        "root: {}\nr_max: 4.0\nseed: 1\ndataset_seed: 2\nn_train: 10\nn_val: 5\nchemical_symbols: [H, C]\ndataset: npz\ndataset_file_name: {}\nkey_mapping: {{R: pos, z: atomic_numbers, E: total_energy, F: forces}}\nnpz_fixed_field_keys: [atomic_numbers]\n",
        d.0.display(),
        data_file("toluene_xtb.npz")
    );
    let f = d.file("c.yaml", cfg.as_bytes());
    let all: serde_json::Value = serde_json::from_slice(&nequip(&["data", "info", f.to_str().unwrap(), "--json"]).stdout).unwrap();
    assert_eq!(all["n_frames"], 1000);
    let o = nequip(&["data", "info", f.to_str().unwrap(), "--split", "train", "--json"]);
    assert!(o.status.success(), "{}", text(&o).1);
    let train: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(train["n_frames"], 10);
    assert_ne!(train["energy_mean"], all["energy_mean"]);
}

#[test]
fn data_info_bad_input() {
    let d = Dir::new("databad");
    let o = nequip(&["data", "info", &data_file("toluene_xtb.npz")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("a data file needs --r-max R"), "{}", text(&o).1);
    let o = nequip(&["data", "info", &data_file("toluene_xtb.npz"), "--r-max", "0"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("r_max"), "{}", text(&o).1);
    let junk = d.file("junk.npz", b"PK\x03\x04 this is not a zip");
    let o = nequip(&["data", "info", junk.to_str().unwrap(), "--r-max", "4"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("junk.npz"), "{}", text(&o).1);
    let bad_xyz = d.file("bad.xyz", b"3\nenergy=1.0 pbc=\"F F F\"\nH 0 0 0\nH 0 0 1\n");
    let o = nequip(&["data", "info", bad_xyz.to_str().unwrap(), "--r-max", "4"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o).1;
    assert!(err.contains("bad.xyz") && !err.contains("panicked"), "{err}");
    let o = nequip(&["data", "info", &data_file("toluene_xtb.npz"), "--r-max", "4", "--split", "train"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!d.0.join("processed_dataset").exists());
}
