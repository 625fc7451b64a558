//! Fine-tuning from a nequip-rs model file: `initialize_from_state` / `load_model_state` read
//! `best_model.safetensors` as well as nequip's `.pth`. A run trained on some frames, then a run
//! on other training frames started from its best model: the second run's initial validation
//! loss (same validation frames) is the first run's best validation loss, and it trains on.
//! `avg_num_neighbors` is set explicitly: with `auto` it is recomputed from the new training
//! frames (as in nequip) and is not part of the weights, so a fine-tune would start from a
//! slightly different model (README, "Fine-tuning").

use std::path::{Path, PathBuf};

use nequip_core::config::Config;
use nequip_core::train::{trainer_from_config, SetupOptions, Silent};

fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data").join(name).display().to_string()
}

fn config(root: &Path, run: &str, train_idcs: &str, extra: &str) -> String {
    format!(
        "root: {}\nrun_name: {run}\nseed: 7\ndataset_seed: 7\ndevice: cpu\nmodel_dtype: float64\ndefault_dtype: float64\nmodel_builders: [SimpleIrrepsConfig, EnergyModel, PerSpeciesRescale, ForceOutput, RescaleEnergyEtc{extra_builder}]\nr_max: 4.0\nnum_basis: 4\nl_max: 1\nparity: true\nnum_features: 4\nnum_layers: 1\navg_num_neighbors: 9.5\ndataset: npz\ndataset_file_name: {}\nkey_mapping: {{z: atomic_numbers, E: total_energy, F: forces, R: pos}}\nnpz_fixed_field_keys: [atomic_numbers]\nchemical_symbols: [H, C]\ntrain_idcs: {train_idcs}\nval_idcs: [40, 41, 42, 43]\nn_train: 6\nn_val: 4\nbatch_size: 2\nmax_epochs: 3\nlearning_rate: 0.01\nloss_coeffs: {{forces: 1.0}}\n{extra}",
        root.display(),
        data("toluene_xtb.npz"),
        extra_builder = if extra.is_empty() { "" } else { ", initialize_from_state" },
    )
}

fn train(text: &str) -> Result<(), String> {
    nequip_plugins::link();
    let mut t = trainer_from_config(Config::from_yaml_str(text, "t.yaml").map_err(|e| e.to_string())?, &SetupOptions::default()).map_err(|e| e.to_string())?;
    t.train(&mut Silent).map(|_| ()).map_err(|e| e.to_string())
}

/// The `validation_loss` column of a metrics CSV.
fn validation_losses(file: PathBuf) -> Vec<f64> {
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').map(str::trim).collect();
    let col = header.iter().position(|h| *h == "validation_loss").unwrap_or_else(|| panic!("no validation_loss in {header:?}"));
    lines.filter(|l| !l.trim().is_empty()).map(|l| l.split(',').nth(col).unwrap().trim().parse().unwrap()).collect()
}

#[test]
fn fine_tune_starts_where_the_first_run_ended() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    train(&config(root, "first", "[0, 1, 2, 3, 4, 5]", "")).unwrap();
    let first = validation_losses(root.join("first/metrics_epoch.csv"));
    let best = first.iter().cloned().fold(f64::INFINITY, f64::min);
    let weights = root.join("first/best_model.safetensors");
    let extra = format!("initial_model_state: {}\n", weights.display());
    train(&config(root, "second", "[20, 21, 22, 23, 24, 25]", &extra)).unwrap();
    let init = validation_losses(root.join("second/metrics_initialization.csv"));
    assert_eq!(init.len(), 1);
    assert!((init[0] - best).abs() <= 1e-7 * best.abs(), "fine-tune starts at {} but the first run's best validation loss is {best}", init[0]);
    // a fresh model on the same frames starts elsewhere (the weights were really loaded)
    train(&config(root, "fresh", "[20, 21, 22, 23, 24, 25]", "")).unwrap();
    let fresh = validation_losses(root.join("fresh/metrics_initialization.csv"));
    assert!((fresh[0] - best).abs() > 1e-3 * best.abs(), "fresh {} vs {best}", fresh[0]);
    // and it trains on: the second run's epochs have finite losses below the fresh start
    let second = validation_losses(root.join("second/metrics_epoch.csv"));
    assert_eq!(second.len(), 3);
    assert!(second.iter().all(|l| l.is_finite() && *l < fresh[0]), "{second:?} vs fresh start {}", fresh[0]);
}

#[test]
fn a_file_that_is_neither_format_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let bad = root.join("weights.bin");
    std::fs::write(&bad, b"not weights at all").unwrap();
    let err = train(&config(root, "bad", "[0, 1, 2, 3, 4, 5]", &format!("initial_model_state: {}\n", bad.display()))).unwrap_err();
    assert!(err.contains("initialize_from_state") && err.contains("weights.bin") && err.contains("best_model.pth"), "{err}");
}
