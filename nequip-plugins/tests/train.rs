//! Training from YAML (nequip's integration tests of `nequip-train`, on the shipped toluene
//! data with a tiny model): the run directory's files, the loss going down, f32 and f64
//! models, restart continuing to exactly `max_epochs` rows across appends, an interrupted run
//! equal to an uninterrupted one (bitwise: weights, metrics, the batch CSVs byte for byte), and the errors of bad set-ups.

use std::path::Path;

use nequip_core::config::Config;
use nequip_core::train::{trainer_from_config, SetupOptions, Silent, TrainError};

fn data_file() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/toluene_xtb.npz").display().to_string()
}

/// A fresh directory in the temp dir, removed (with everything in it) when dropped.
fn root(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("nequip-train-{tag}-")).tempdir().unwrap()
}

fn yaml(root: &Path, extra: &str) -> String {
    format!(
        "root: {}\nrun_name: run\nseed: 123\ndataset_seed: 456\ndevice: cpu\nmodel_dtype: float64\n\
         model_builders: [SimpleIrrepsConfig, EnergyModel, PerSpeciesRescale, ForceOutput, RescaleEnergyEtc]\n\
         r_max: 4.0\nnum_basis: 4\nl_max: 1\nparity: true\nnum_features: 4\nnum_layers: 1\n\
         dataset: npz\ndataset_file_name: {}\nkey_mapping: {{z: atomic_numbers, E: total_energy, F: forces, R: pos}}\n\
         npz_fixed_field_keys: [atomic_numbers]\nchemical_symbols: [H, C]\n\
         n_train: 10\nn_val: 5\nbatch_size: 5\nvalidation_batch_size: 5\nlearning_rate: 0.01\n\
         loss_coeffs: {{forces: 1.0, total_energy: [1.0, PerAtomMSELoss]}}\n{extra}",
        root.display(),
        data_file()
    )
}

fn setup(text: &str) -> Result<nequip_core::train::Trainer, TrainError> {
    nequip_plugins::link();
    let c = Config::from_yaml_str(text, "train.yaml").unwrap();
    trainer_from_config(c, &SetupOptions::default())
}

fn csv_rows(p: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(p).unwrap().lines().map(|l| l.split(',').map(|c| c.trim().to_string()).collect()).collect()
}

#[test]
fn a_run_writes_nequips_files_and_the_loss_goes_down() {
    let r_dir = root("files");
    let r = r_dir.path();
    let mut t = setup(&yaml(&r, "max_epochs: 6\n").replace("learning_rate: 0.01", "learning_rate: 0.05").replace("n_train: 10", "n_train: 20").replace("num_features: 4", "num_features: 8")).unwrap();
    let state = t.train(&mut Silent).unwrap();
    assert_eq!(state.epoch, 6);
    let dir = r.join("run");
    for f in ["log", "config.yaml", "metrics_epoch.csv", "metrics_batch_train.csv", "metrics_batch_val.csv", "metrics_initialization.csv", "best_model.safetensors", "last_model.safetensors", "trainer_state.safetensors"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let rows = csv_rows(&dir.join("metrics_epoch.csv"));
    assert_eq!(rows.len(), 7, "header + one row per epoch");
    let h = &rows[0];
    assert_eq!(&h[..3], &["epoch", "wall", "LR"]);
    for k in ["training_loss_f", "training_loss_e", "training_loss", "training_f_mae", "training_f_rmse", "training_e_mae", "validation_loss", "validation_f_mae"] {
        assert!(h.contains(&k.to_string()), "{k} not in {h:?}");
    }
    let col = h.iter().position(|c| c == "validation_loss").unwrap();
    let first: f64 = rows[1][col].parse().unwrap();
    let last: f64 = rows[6][col].parse().unwrap();
    assert!(last < 0.8 * first, "validation loss {first} -> {last}");
    // 4 training batches and 1 validation batch per epoch
    assert_eq!(csv_rows(&dir.join("metrics_batch_train.csv")).len(), 1 + 24);
    assert_eq!(csv_rows(&dir.join("metrics_batch_val.csv")).len(), 1 + 7);
    let log = std::fs::read_to_string(dir.join("log")).unwrap();
    assert!(log.contains("! Initial Validation") && log.contains("! Best model") && log.contains("! Stop training: max epochs"), "{log}");
    // the saved config has the computed statistics and rebuilds the best model
    let cfg = std::fs::read_to_string(dir.join("config.yaml")).unwrap();
    assert!(cfg.contains("avg_num_neighbors:") && !cfg.contains("avg_num_neighbors: auto"), "{cfg}");
    let (m, _) = nequip_core::io::model_file::load(&dir.join("best_model.safetensors"), Some("cpu")).unwrap();
    assert_eq!(m.num_trainable(), t.model.num_trainable());
}

#[test]
fn float32_models_train() {
    let r_dir = root("f32");
    let r = r_dir.path();
    let mut t = setup(&yaml(&r, "max_epochs: 2\n").replace("model_dtype: float64", "model_dtype: float32")).unwrap();
    let s = t.train(&mut Silent).unwrap();
    assert_eq!(s.epoch, 2);
    assert!(s.best_metric.is_finite());
}

fn final_weights(r: &Path) -> Vec<(String, tch::Tensor)> {
    let (m, _) = nequip_core::io::model_file::load(&r.join("run/last_model.safetensors"), Some("cpu")).unwrap();
    m.state_dict().into_iter().map(|t| (t.name, t.tensor)).collect()
}

#[test]
fn interrupted_and_appended_equals_uninterrupted() {
    tch::set_num_threads(1);
    let extra = "use_ema: true\nema_decay: 0.9\nlr_scheduler_name: ReduceLROnPlateau\nlr_scheduler_patience: 0\nlr_scheduler_factor: 0.5\noptimizer_amsgrad: true\nappend: true\n";
    let whole_dir = root("whole");
    let whole = whole_dir.path();
    setup(&yaml(&whole, &format!("max_epochs: 4\n{extra}"))).unwrap().train(&mut Silent).unwrap();
    let parts_dir = root("parts");
    let parts = parts_dir.path();
    for max in [1, 3, 4] {
        let s = setup(&yaml(&parts, &format!("max_epochs: {max}\n{extra}"))).unwrap().train(&mut Silent).unwrap();
        assert_eq!(s.epoch, max);
    }
    let (a, b) = (final_weights(&whole), final_weights(&parts));
    for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(ta.equal(tb), "{na} differs between the interrupted and the uninterrupted run");
    }
    let (ca, cb) = (csv_rows(&whole.join("run/metrics_epoch.csv")), csv_rows(&parts.join("run/metrics_epoch.csv")));
    assert_eq!(ca.len(), 5);
    assert_eq!(cb.len(), 5, "exactly max_epochs rows across the appends");
    let skip: Vec<usize> = ca[0].iter().enumerate().filter(|(_, h)| *h == "wall").map(|(i, _)| i).collect();
    for (ra, rb) in ca.iter().zip(&cb) {
        for (i, (x, y)) in ra.iter().zip(rb).enumerate() {
            if !skip.contains(&i) {
                assert_eq!(x, y, "metrics differ in column {}", ca[0][i]);
            }
        }
    }
    // the batch CSVs hold no clock: byte for byte the same, with no row written twice
    for f in ["metrics_batch_train.csv", "metrics_batch_val.csv"] {
        let (a, b) = (std::fs::read_to_string(whole.join("run").join(f)).unwrap(), std::fs::read_to_string(parts.join("run").join(f)).unwrap());
        assert!(a == b, "{f} differs between the interrupted and the uninterrupted run:\n{a}\n---\n{b}");
        assert!(!b.lines().any(|l| l.trim().is_empty()), "{f} has a blank line");
    }
    // a finished run cannot be continued without raising max_epochs
    let e = setup(&yaml(&parts, &format!("max_epochs: 4\n{extra}"))).err().unwrap().to_string();
    assert!(e.contains("has stopped (max epochs); raise max_epochs"), "{e}");
}

#[test]
fn bad_setups_are_clear_errors() {
    let r_dir = root("bad");
    let r = r_dir.path();
    setup(&yaml(&r, "max_epochs: 1\n")).unwrap().train(&mut Silent).unwrap();
    let e = setup(&yaml(&r, "max_epochs: 2\n")).err().unwrap().to_string();
    assert!(e.contains("holds a previous run") && e.contains("append: true"), "{e}");
    let e = setup(&yaml(&r, "max_epochs: 2\nappend: true\n").replace("learning_rate: 0.01", "learning_rate: 0.02")).err().unwrap().to_string();
    assert!(e.contains("may change when continuing a run") && e.contains("learning_rate"), "{e}");
    let r2_dir = root("bad2");
    let r2 = r2_dir.path();
    let e = setup(&yaml(&r2, "max_epochs: 1\nlearning_rat: 0.1\n")).err().unwrap().to_string();
    assert!(e.contains("learning_rat") && e.contains("did you mean `learning_rate`"), "{e}");
    let e = setup(&yaml(&r2, "max_epochs: 1\n").replace("seed: 123\n", "")).err().unwrap().to_string();
    assert!(e.contains("`seed` is required"), "{e}");
    let e = setup(&yaml(&r2, "max_epochs: 1\noptimizer_name: Adamm\n")).err().unwrap().to_string();
    assert!(e.contains("did you mean `Adam`"), "{e}");
    let e = setup(&yaml(&r2, "max_epochs: 1\n").replace("forces: 1.0,", "stress: 1.0,")).err().unwrap().to_string();
    assert!(e.contains("the model does not output `stress`"), "{e}");
    let e = setup(&yaml(&r2, "max_epochs: 1\n").replace("n_train: 10", "n_train: 2000")).err().unwrap().to_string();
    assert!(e.contains("n_train"), "{e}");
}

#[test]
fn a_diverging_run_stops_with_the_epoch_and_batch() {
    let r_dir = root("nan");
    let r = r_dir.path();
    let mut t = setup(&yaml(&r, "max_epochs: 50\nreport_init_validation: false\n").replace("learning_rate: 0.01", "learning_rate: 1.0e+30")).unwrap();
    let e = t.train(&mut Silent).unwrap_err().to_string();
    assert!(e.contains("not finite") && e.contains("epoch") && e.contains("batch"), "{e}");
    // whatever was saved before stays loadable
    if r.join("run/last_model.safetensors").exists() {
        nequip_core::io::model_file::load(&r.join("run/last_model.safetensors"), Some("cpu")).unwrap();
    }
}

#[test]
fn train_command_with_equivariance_test_and_config_check_of_layer_keys() {
    let r_dir = root("cli");
    let r = r_dir.path();
    let cfg = r.join("t.yaml");
    std::fs::write(&cfg, yaml(&r, "max_epochs: 1\n")).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_nequip")).args(["train", cfg.to_str().unwrap(), "--equivariance-test", "2"]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("Equivariance test passed on 2 training frame(s) (rotation, inversion, translation)"), "{out}");
    assert!(out.contains("! Stop training: max epochs") && out.contains("best validation_loss ="), "{out}");
    // verbose: warning keeps the epoch tables out of stdout (the log file has them)
    let r2_dir = root("cli-quiet");
    let r2 = r2_dir.path();
    std::fs::write(&cfg, yaml(&r2, "max_epochs: 1\nverbose: warning\n")).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_nequip")).args(["train", cfg.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success());
    assert!(!String::from_utf8_lossy(&o.stdout).contains("! Train"));
    assert!(std::fs::read_to_string(r2.join("run/log")).unwrap().contains("! Train"));
    // Python callbacks are refused, not ignored
    let cb_dir = root("cli-cb");
    std::fs::write(&cfg, yaml(cb_dir.path(), "max_epochs: 1\nend_of_epoch_callbacks: [foo]\n")).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_nequip")).args(["train", cfg.to_str().unwrap()]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("callbacks are Python objects"));
    // a per-layer key with a typo: config check builds the model and suggests the searched name
    std::fs::write(&cfg, yaml(&r, "max_epochs: 1\nlayer0_convnet_feature_irreps_hiden: 4x0e\n")).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_nequip")).args(["config", "check", cfg.to_str().unwrap()]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("`layer0_convnet_feature_irreps_hiden`: did you mean `layer0_convnet_feature_irreps_hidden`?"), "{err}");
}
