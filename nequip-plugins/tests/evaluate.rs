//! After training: `nequip evaluate` (metrics equal to an independent computation, the test
//! set = frames unused by training/validation, `--output` extended XYZ read back with the
//! right energies, forces, stress and `pbc`), `nequip deploy build|info` (the deployed file
//! gives the training model's outputs to 1e-12), and bad model files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nequip_core::config::Config;
use nequip_core::data::extxyz::{read_extxyz, InfoValue};
use nequip_core::nn::GraphModule;
use nequip_core::train::{trainer_from_config, SetupOptions, Silent};
use tch::Kind;

fn nequip(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nequip")).args(args).output().unwrap()
}

/// A fresh directory in the temp dir, removed (with everything in it) when dropped.
fn root(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("nequip-eval-{tag}-")).tempdir().unwrap()
}

fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data").join(name).display().to_string()
}

/// Train 1 epoch of a tiny model; returns the run directory and the config text.
fn train(root: &Path, stress: bool) -> (PathBuf, String) {
    nequip_plugins::link();
    let (ds, builders, species, loss) = if stress {
        (format!("dataset: ase\ndataset_file_name: {}\n", data("cu_emt.extxyz")), "[SimpleIrrepsConfig, EnergyModel, PerSpeciesRescale, StressForceOutput, RescaleEnergyEtc]", "[Cu]", "{forces: 1.0, stress: 1.0}")
    } else {
        (format!("dataset: npz\ndataset_file_name: {}\nkey_mapping: {{z: atomic_numbers, E: total_energy, F: forces, R: pos}}\nnpz_fixed_field_keys: [atomic_numbers]\n", data("toluene_xtb.npz")), "[SimpleIrrepsConfig, EnergyModel, PerSpeciesRescale, ForceOutput, RescaleEnergyEtc]", "[H, C]", "{forces: 1.0, total_energy: [1.0, PerAtomMSELoss]}")
    };
    let text = format!(
        "root: {}\nrun_name: run\nseed: 1\ndevice: cpu\nmodel_dtype: float64\nmodel_builders: {builders}\nr_max: 4.0\nnum_basis: 4\nl_max: 1\nparity: true\nnum_features: 4\nnum_layers: 1\n{ds}chemical_symbols: {species}\nn_train: 6\nn_val: 3\nbatch_size: 3\nmax_epochs: 1\nloss_coeffs: {loss}\n",
        root.display()
    );
    let mut t = trainer_from_config(Config::from_yaml_str(&text, "t.yaml").unwrap(), &SetupOptions::default()).unwrap();
    t.train(&mut Silent).unwrap();
    let p = root.join("t.yaml");
    std::fs::write(&p, &text).unwrap();
    (root.join("run"), text)
}

fn metric(stdout: &str, name: &str) -> f64 {
    let line = stdout.lines().find(|l| l.trim_start().starts_with(&format!("{name} ="))).unwrap_or_else(|| panic!("{name} not in {stdout}"));
    line.split('=').nth(1).unwrap().trim().parse().unwrap()
}

#[test]
fn evaluate_train_dir_metrics_and_output_file() {
    let r_dir = root("mol");
    let r = r_dir.path();
    let (run, _) = train(&r, false);
    let out = r.join("pred.xyz");
    let o = nequip(&["evaluate", "--train-dir", run.to_str().unwrap(), "--output", out.to_str().unwrap(), "--batch-size", "7", "--device", "cpu"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(stdout.contains("Using all frames not used in training or validation: 991 test frames"), "{stdout}");
    let pred = read_extxyz(&out).unwrap();
    assert_eq!(pred.len(), 991);
    // independent metrics from the written predictions and the dataset's labels
    let labels = read_extxyz(Path::new(&data("toluene_xtb.extxyz"))).unwrap();
    let (mut fsum, mut fsq, mut n, mut esum) = (0.0, 0.0, 0usize, 0.0);
    for p in &pred {
        let InfoValue::Int(i) = p.info["original_dataset_index"] else { panic!("no index") };
        let l = &labels[i as usize];
        let (pf, lf) = (p.arrays["forces"].to_f64_vec(), l.arrays["forces"].to_f64_vec());
        for (a, b) in pf.iter().zip(&lf) {
            fsum += (a - b).abs();
            fsq += (a - b) * (a - b);
            n += 1;
        }
        let (InfoValue::Float(pe), InfoValue::Float(le)) = (&p.info["energy"], &l.info["energy"]) else { panic!("no energy") };
        esum += (pe - le).abs();
        assert_eq!(p.pbc, [false; 3]);
    }
    assert!((metric(&stdout, "f_mae") - fsum / n as f64).abs() < 1e-6, "{stdout}");
    assert!((metric(&stdout, "f_rmse") - (fsq / n as f64).sqrt()).abs() < 1e-6);
    assert!((metric(&stdout, "e_mae") - esum / pred.len() as f64).abs() < 1e-6);

    // deploy -> evaluate with the deployed file gives the same predictions
    let dep = r.join("deployed.safetensors");
    let o = nequip(&["deploy", "build", "--train-dir", run.to_str().unwrap(), dep.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = nequip(&["deploy", "info", dep.to_str().unwrap()]);
    let info = String::from_utf8_lossy(&o.stdout);
    assert!(info.contains("r_max: 4.0") && info.contains("type_names: [\"H\",\"C\"]") && info.contains("model_dtype: float64"), "{info}");
    let idx = r.join("idx.json");
    let InfoValue::Int(first) = pred[0].info["original_dataset_index"] else { panic!() };
    std::fs::write(&idx, format!("[{first}, 5, 999]")).unwrap();
    let out2 = r.join("pred2.xyz");
    let o = nequip(&["evaluate", "--model", dep.to_str().unwrap(), "--dataset-config", r.join("t.yaml").to_str().unwrap(), "--test-indexes", idx.to_str().unwrap(), "--output", out2.to_str().unwrap(), "--device", "cpu"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let p2 = read_extxyz(&out2).unwrap();
    let by_index = |i: i64| pred.iter().find(|p| p.info["original_dataset_index"] == InfoValue::Int(i));
    let a = by_index(first).unwrap();
    let b = p2.iter().find(|p| p.info["original_dataset_index"] == InfoValue::Int(first)).unwrap();
    assert_eq!(p2.len(), 3);
    assert_eq!(a.arrays["forces"].to_f64_vec(), b.arrays["forces"].to_f64_vec());
    assert_eq!(a.info["energy"], b.info["energy"]);
}

#[test]
fn deployed_model_equals_the_training_model() {
    let r_dir = root("same");
    let r = r_dir.path();
    let (run, text) = train(&r, false);
    let dep = r.join("d.safetensors");
    assert!(nequip(&["deploy", "build", "--train-dir", run.to_str().unwrap(), "--checkpoint", "last_model", dep.to_str().unwrap()]).status.success());
    let (deployed, _) = nequip_core::io::model_file::load(&dep, Some("cpu")).unwrap();
    // the training model, rebuilt from the run's trainer state
    let t = trainer_from_config(Config::from_yaml_str(&text.replace("max_epochs: 1", "max_epochs: 2\nappend: true"), "t.yaml").unwrap(), &SetupOptions::default()).unwrap();
    let frame = t.dataset.get(0).unwrap().to_dict();
    let a = deployed.forward(frame.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect(), false).unwrap();
    let b = t.model.forward(frame, false).unwrap();
    for k in ["total_energy", "forces", "atomic_energy"] {
        let err = (&a[k] - &b[k]).abs().max().double_value(&[]);
        let scale = b[k].abs().max().double_value(&[]);
        assert!(err <= 1e-12 * scale, "{k}: {err}");
    }
    assert_eq!(a["forces"].kind(), Kind::Double);
}

#[test]
fn periodic_output_keeps_pbc_and_stress() {
    let r_dir = root("cu");
    let r = r_dir.path();
    let (run, _) = train(&r, true);
    let out = r.join("cu.xyz");
    let o = nequip(&["evaluate", "--train-dir", run.to_str().unwrap(), "--output", out.to_str().unwrap(), "--device", "cpu"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("stress_mae"), "{stdout}");
    let pred = read_extxyz(&out).unwrap();
    assert_eq!(pred[0].pbc, [true; 3]);
    assert!(matches!(pred[0].info.get("stress"), Some(InfoValue::Matrix(_))), "{:?}", pred[0].info.keys());
    assert!(pred[0].cell[0][0] > 5.0);
}

#[test]
fn bad_model_files_fail_cleanly() {
    let r_dir = root("badmodel");
    let r = r_dir.path();
    let junk = r.join("junk.safetensors");
    std::fs::write(&junk, b"\x00\x01garbage").unwrap();
    let o = nequip(&["evaluate", "--model", junk.to_str().unwrap(), "--dataset-config", "nope.yaml", "--device", "cpu"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a nequip-rs model file"));
    let o = nequip(&["deploy", "info", r.join("missing.safetensors").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let o = nequip(&["evaluate"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("give --train-dir or --model"));
}

#[test]
fn benchmark_command_times_forward_and_training_step() {
    let r_dir = root("bench");
    let r = r_dir.path();
    let cfg = r.join("b.yaml");
    let minimal = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/minimal.yaml");
    std::fs::write(&cfg, format!("include_file_as_baseline_config: {}\nroot: {}\ndataset_file_name: {}\ndevice: cpu\n", minimal.display(), r.display(), data("toluene_xtb.npz"))).unwrap();
    let o = nequip(&["benchmark", cfg.to_str().unwrap(), "--warmup", "1", "-n", "2", "--n-data", "2", "--threads", "1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("parameters:") && out.contains("2364"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("forward") && l.contains("structures/s")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("train step") && l.contains("atom-steps/s")), "{out}");
    // --op-census: per-operator counts of one call; the train step dispatches the force
    // derivatives' backward nodes too
    let o = nequip(&["benchmark", cfg.to_str().unwrap(), "--warmup", "1", "-n", "1", "--threads", "1", "--op-census"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let total = |call: &str| -> u64 {
        let l = out.lines().find(|l| l.starts_with(&format!("op census, one {call} call: "))).unwrap_or_else(|| panic!("{out}"));
        l.split(": ").nth(1).and_then(|t| t.split(' ').next()).and_then(|n| n.parse().ok()).unwrap()
    };
    assert!(total("forward") > 100 && total("train step") > total("forward"), "{out}");
    assert!(out.lines().any(|l| l.trim_start().split_once("  ").is_some_and(|(n, op)| n.parse::<u64>().is_ok_and(|n| n > 0) && op == "aten::mm")), "{out}");
    assert!(out.contains("[bwd] "), "{out}");
    let o = nequip(&["benchmark", r.join("missing.yaml").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
}
