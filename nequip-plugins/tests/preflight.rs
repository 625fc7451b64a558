//! Every key has its effect or is refused out loud, and `nequip config check` gives the same
//! verdict with the same message as `nequip train` (issue 14): both commands run on the same
//! tiny config (toluene data, a 4-feature model) for each item.

use std::path::Path;
use std::process::Output;

fn data_file() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/toluene_xtb.npz").display().to_string()
}

fn yaml(root: &Path, extra: &str) -> String {
    format!(
        "root: {}\nrun_name: run\nseed: 123\ndataset_seed: 456\ndevice: cpu\nmodel_dtype: float64\n\
         model_builders: [SimpleIrrepsConfig, EnergyModel, PerSpeciesRescale, ForceOutput, RescaleEnergyEtc]\n\
         r_max: 4.0\nnum_basis: 4\nl_max: 1\nparity: true\nnum_features: 4\nnum_layers: 1\n\
         dataset: npz\ndataset_file_name: {}\nkey_mapping: {{z: atomic_numbers, E: total_energy, F: forces, R: pos}}\n\
         npz_fixed_field_keys: [atomic_numbers]\nn_train: 10\nn_val: 5\nbatch_size: 5\nvalidation_batch_size: 5\n\
         loss_coeffs: {{forces: 1.0, total_energy: [1.0, PerAtomMSELoss]}}\n{extra}",
        root.display(),
        data_file()
    )
}

struct Run {
    check: Output,
    train: Output,
    _dir: tempfile::TempDir,
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `nequip config check` and `nequip train` on the config with `extra` (and
/// `chemical_symbols: [H, C]` unless `extra` names its own).
fn both(extra: &str, train_args: &[&str]) -> Run {
    let dir = tempfile::Builder::new().prefix("nequip-preflight-").tempdir().unwrap();
    let species = if extra.contains("chemical_symbols") { "" } else { "chemical_symbols: [H, C]\n" };
    let epochs = if extra.contains("max_epochs") { "" } else { "max_epochs: 1\n" };
    let cfg = dir.path().join("c.yaml");
    std::fs::write(&cfg, yaml(dir.path(), &format!("{species}{epochs}{extra}"))).unwrap();
    let cfg = cfg.to_str().unwrap();
    let run = |args: &[&str]| std::process::Command::new(env!("CARGO_BIN_EXE_nequip")).args(args).output().unwrap();
    let check = run(&["config", "check", cfg]);
    let mut t = vec!["train", cfg];
    t.extend(train_args);
    let train = run(&t);
    Run { check, train, _dir: dir }
}

/// Both commands fail (exit 1, no panic) and both print `message`.
fn both_refuse(extra: &str, message: &str) {
    let r = both(extra, &["--quiet"]);
    assert_eq!(r.check.status.code(), Some(1), "config check accepted `{extra}`: {}", err(&r.check));
    assert_eq!(r.train.status.code(), Some(1), "train accepted `{extra}`: {}", err(&r.train));
    assert!(err(&r.check).contains(message), "config check of `{extra}`:\n{}\nwanted: {message}", err(&r.check));
    assert!(err(&r.train).contains(message), "train of `{extra}`:\n{}\nwanted: {message}", err(&r.train));
}

#[test]
fn python_only_features_that_change_the_run_are_refused_by_name() {
    for (extra, msg) in [
        ("model_debug_mode: true\n", "`model_debug_mode: true` (nequip's shape checks in every module) is not supported by nequip-rs"),
        ("grad_anomaly_mode: true\n", "`grad_anomaly_mode: true` (autograd anomaly detection) is not supported by nequip-rs"),
        ("gpu_oom_offload: true\n", "`gpu_oom_offload: true` (offloading saved tensors to CPU memory) is not supported by nequip-rs"),
        ("tensorboard: true\n", "`tensorboard: true` (TensorBoard logging) is not supported by nequip-rs"),
        ("end_of_epoch_callbacks: [foo]\n", "`end_of_epoch_callbacks`: callbacks are Python objects in nequip and are not supported by nequip-rs"),
        ("lr_scheduler_name: CosineAnnealingWarmRestarts\nlr_scheduler_T_0: 5\nlr_scheduler_last_epoch: 3\n", "`lr_scheduler_last_epoch: 3` (starting the learning-rate schedule part-way) is not supported by nequip-rs"),
        ("log: my.log\n", "`log: \"my.log\"` (another name for the log file) is not supported by nequip-rs"),
        ("train_on_keys: [forces]\n", "`train_on_keys` [forces] differs from the keys of `loss_coeffs` [forces, total_energy]"),
    ] {
        both_refuse(extra, msg);
    }
}

#[test]
fn values_torch_or_nequip_would_refuse_are_errors_in_both() {
    both_refuse("learning_rate: -0.01\n", "`learning_rate` must be a non-negative number (torch's optimizers refuse a negative one), got -0.01");
    both_refuse("chemical_symbols: [H, C, H]\n", "`H` is listed more than once");
    both_refuse("train_idcs: [0, 1, 2]\n", "`train_idcs` is given without `val_idcs`: give both explicit index lists, or neither");
    both_refuse("train_idcs: [0, -1]\nval_idcs: [3]\n", "`train_idcs`: index -1 is negative");
}

#[test]
fn unknown_metrics_are_errors_listing_the_reported_ones() {
    let available = "available: epoch, wall, LR, cumulative_wall, training_loss, training_loss_f, training_loss_e, training_f_mae, training_f_rmse, training_e_mae, training_e_rmse, validation_loss, validation_loss_f, validation_loss_e, validation_f_mae, validation_f_rmse, validation_e_mae, validation_e_rmse\n";
    both_refuse("early_stopping_patiences: {f_maee: 3}\n", "early_stopping_patiences: `validation_f_maee` is not a reported metric; ");
    both_refuse("early_stopping_patiences: {f_maee: 3}\n", available);
    both_refuse("early_stopping_kwargs: {upper_bounds: {training_los: 1.0}}\n", "early_stopping_upper_bounds: `training_los` is not a reported metric; ");
    both_refuse("metrics_key: validation_mae\n", "metrics_key `validation_mae` is not a reported metric; available: epoch,");
    both_refuse("early_stopping_kwargs: {patience: {loss: 3}}\n", "`early_stopping_kwargs`: unknown option `patience` (options: patiences, delta, lower_bounds, upper_bounds, cumulative_delta)");
    // per-species and per-component names exist for the config's species and any component
    let r = both("metrics_components: [[forces, mae, {PerSpecies: true, report_per_component: true}], [forces, rmse, {PerSpecies: true}]]\nmetrics_key: validation_H_f_rmse\nearly_stopping_lower_bounds: {C_f_mae_2: 0.0, psavg_f_rmse: 0.0}\n", &["--quiet"]);
    assert!(r.check.status.success(), "{}", err(&r.check));
    assert!(r.train.status.success(), "{}", err(&r.train));
}

#[test]
fn explicit_indices_out_of_range_are_an_error_in_training() {
    let r = both("train_idcs: [0, 1, 1000]\nval_idcs: [3, 4]\n", &["--quiet"]);
    // the number of frames needs the data: `config check` cannot know it
    assert!(r.check.status.success(), "{}", err(&r.check));
    assert_eq!(r.train.status.code(), Some(1));
    assert!(err(&r.train).contains("`train_idcs`: index 1000 is out of range: the dataset has 1000 frames (indices 0..999)"), "{}", err(&r.train));
}

#[test]
fn python_only_logging_is_a_note_once_in_both() {
    let note = "note: `wandb` (Weights & Biases logging) is a Python-only feature: accepted but not supported by nequip-rs; it has no effect on the run";
    let r = both("wandb: true\nwandb_project: toluene\n", &[]);
    assert!(r.check.status.success() && r.train.status.success(), "{}{}", err(&r.check), err(&r.train));
    assert_eq!(err(&r.check).matches(note).count(), 1, "{}", err(&r.check));
    assert_eq!(err(&r.check).matches("note: `wandb_project` (Weights & Biases logging)").count(), 1, "{}", err(&r.check));
    // the log on stdout carries it once (and the run's log file)
    assert_eq!(format!("{}{}", out(&r.train), err(&r.train)).matches(note).count(), 1, "{}{}", out(&r.train), err(&r.train));
    let r = both("wandb: true\n", &["--quiet"]);
    assert!(r.train.status.success());
    assert_eq!(err(&r.train).matches(note).count(), 1, "{}", err(&r.train));
    assert!(std::fs::read_to_string(r._dir.path().join("run/log")).unwrap().contains(note));
}

#[test]
fn accepted_keys_have_their_effect() {
    // early_stopping_kwargs: LR 0.01 is below the lower bound 1.0 after the first epoch
    let r = both("max_epochs: 5\nearly_stopping_kwargs: {lower_bounds: {LR: 1.0}}\nlr_scheduler_last_epoch: -1\ntrain_on_keys: [total_energy, forces]\nlog: log\n", &["--quiet"]);
    assert!(r.check.status.success(), "{}", err(&r.check));
    assert!(r.train.status.success(), "{}", err(&r.train));
    let log = std::fs::read_to_string(r._dir.path().join("run/log")).unwrap();
    assert!(log.contains("! Stop training: Early stopping: LR is smaller than 1"), "{log}");
    let rows = std::fs::read_to_string(r._dir.path().join("run/metrics_epoch.csv")).unwrap();
    assert_eq!(rows.lines().count(), 2, "{rows}");
    // the kwargs entry wins over the plain key (nequip's `instantiate`)
    let r = both("max_epochs: 5\nearly_stopping_lower_bounds: {LR: 1.0}\nearly_stopping_kwargs: {lower_bounds: {LR: 0.001}}\n", &["--quiet"]);
    assert!(r.train.status.success(), "{}", err(&r.train));
    let rows = std::fs::read_to_string(r._dir.path().join("run/metrics_epoch.csv")).unwrap();
    assert_eq!(rows.lines().count(), 6, "{rows}");
}
