//! `nequip evaluate`: port of `nequip-evaluate` (`nequip/scripts/evaluate.py`, nequip 0.6.2).
//! With `--train-dir` the model is the run's best model, the dataset its training dataset and
//! the test set every frame not used for training or validation; `--model` takes a model file
//! (from training, `deploy build` or `import`) with `--dataset-config`. Prints the metrics as
//! nequip does (`name = value`), optionally writes predictions as extended XYZ and, with
//! `--plots DIR`, parity plots and force-error histograms (`crate::plot`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use nequip_core::config::{Config, Value};
use nequip_core::data::dataset_plan;
use nequip_core::data::extxyz::InfoValue;
use nequip_core::data::extxyz::XyzFrame;
use nequip_core::data::extxyz_write::{frame_to_xyz, write_extxyz};
use nequip_core::io::model_file;
use nequip_core::model::dtype::device_from_name;
use nequip_core::train::evaluate::evaluate;
use nequip_core::train::loss_fn::Loss;
use nequip_core::train::metrics::Metrics;
use nequip_core::train::state::TrainerState;

use super::plot_cmd::{write_figures, UnitArgs};
use crate::plot::evaluation::Evaluation;
use crate::plot::parity::evaluation_figures;

#[derive(clap::Args, Debug)]
pub struct EvaluateArgs {
    /// A training run directory (its best model, dataset and unused frames).
    #[arg(long)]
    pub train_dir: Option<PathBuf>,
    /// A model file (training output, `deploy build` or `import`); overrides the run's.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// A config whose `dataset` (or `validation_dataset`) section gives the frames.
    #[arg(long)]
    pub dataset_config: Option<PathBuf>,
    /// A config with `metrics_components` (default: the model's training config).
    #[arg(long)]
    pub metrics_config: Option<PathBuf>,
    /// A JSON list of frame indices to evaluate.
    #[arg(long)]
    pub test_indexes: Option<PathBuf>,
    #[arg(long, default_value_t = 50)]
    pub batch_size: usize,
    /// Evaluate the test set this many times.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// `cpu`, `cuda`, `cuda:N` (default: cuda when available).
    #[arg(long)]
    pub device: Option<String>,
    /// Write the predictions of every test frame to this extended XYZ file.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Extra model outputs to write (comma-separated).
    #[arg(long, default_value = "")]
    pub output_fields: String,
    /// Write parity plots (energy per atom, forces, stress), force-error histograms per species
    /// and the points (`evaluation.csv`, `evaluation_metrics.csv`) into this directory.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    #[command(flatten)]
    pub units: UnitArgs,
}

impl EvaluateArgs {
    /// The arguments of `nequip evaluate --train-dir DIR` on `device` (as `nequip report` runs it).
    pub(crate) fn for_run(train_dir: &Path, device: Option<String>, batch_size: usize) -> Self {
        EvaluateArgs { train_dir: Some(train_dir.to_path_buf()), model: None, dataset_config: None, metrics_config: None, test_indexes: None, batch_size, repeat: 1, device, output: None, output_fields: String::new(), plots: None, units: UnitArgs::default() }
    }
}

/// What an evaluation produced.
pub(crate) struct Outcome {
    /// Which frames were evaluated, in words.
    pub description: String,
    pub metrics: Vec<(String, f64)>,
    /// The predicted frames (with `--output`).
    pub frames: Vec<XyzFrame>,
    /// Predictions against labels (when asked for).
    pub points: Option<Evaluation>,
}

pub fn run(a: EvaluateArgs) -> anyhow::Result<ExitCode> {
    let out = evaluate_with(&a, a.plots.is_some())?;
    if let Some(path) = &a.output {
        write_extxyz(path, &out.frames).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("\n--- Final result: ---");
    for (k, v) in &out.metrics {
        println!("{k:>20} = {v:<20.6}");
    }
    if let (Some(dir), Some(mut points)) = (&a.plots, out.points) {
        points.metrics = out.metrics.clone();
        let figures = evaluation_figures(&points, &a.units.units())?;
        points.write(dir)?;
        write_figures(&figures, dir)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Evaluate as `a` says (printing which frames); `points`: also keep predictions against labels.
pub(crate) fn evaluate_with(a: &EvaluateArgs, points: bool) -> anyhow::Result<Outcome> {
    let device_name = a.device.clone().unwrap_or_else(|| nequip_core::config::defaults::default_device().into());
    let device = device_from_name(&device_name)?;
    let model_path = match (&a.model, &a.train_dir) {
        (Some(m), _) => m.clone(),
        (None, Some(d)) => d.join("best_model.safetensors"),
        (None, None) => bail!("give --train-dir or --model"),
    };
    let (model, model_config) = model_file::load(&model_path, Some(&device_name)).with_context(|| format!("loading the model {}", model_path.display()))?;
    let ds_config_path: PathBuf = match (&a.dataset_config, &a.train_dir) {
        (Some(p), _) => p.clone(),
        (None, Some(d)) => d.join("config.yaml"),
        (None, None) => bail!("--model needs --dataset-config (a config with a `dataset` section)"),
    };
    let mut ds_config = Config::load(&ds_config_path)?;
    let prefix = if ds_config.contains("validation_dataset") { "validation_dataset" } else { "dataset" };
    let plan = dataset_plan(&mut ds_config, prefix)?.with_context(|| format!("{}: no `{prefix}` section", ds_config_path.display()))?;
    let ds = plan.load().with_context(|| format!("loading the dataset of {}", ds_config_path.display()))?;
    let model_r_max = model_config.get("r_max").and_then(Value::as_f64);
    if let Some(r) = model_r_max {
        if (r - ds.r_max).abs() > 1e-12 {
            bail!("the dataset's r_max {} differs from the model's r_max {r}", ds.r_max);
        }
    }
    let mut indices: Vec<usize> = (0..ds.len()).collect();
    let mut description = format!("all {} frames of the dataset", ds.len());
    if let Some(p) = &a.test_indexes {
        let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        indices = serde_json::from_str(&text).with_context(|| format!("{}: expected a JSON list of frame indices", p.display()))?;
        if let Some(bad) = indices.iter().find(|&&i| i >= ds.len()) {
            bail!("{}: index {bad} is out of range ({} frames)", p.display(), ds.len());
        }
        description = format!("{} frames listed in {}", indices.len(), p.display());
    } else if let (Some(d), None) = (&a.train_dir, &a.dataset_config) {
        let s = TrainerState::load(&d.join(nequip_core::train::setup::STATE_FILE))?.state;
        let used: BTreeSet<usize> = if prefix == "dataset" { s.train_idcs.iter().chain(&s.val_idcs).copied().collect() } else { s.val_idcs.iter().copied().collect() };
        indices.retain(|i| !used.contains(i));
        println!("Using all frames not used in training or validation: {} test frames", indices.len());
        description = format!("the {} frames not used for training or validation", indices.len());
    }
    if indices.is_empty() {
        bail!("no frames to evaluate");
    }
    let metrics_src = match &a.metrics_config {
        Some(p) => Config::load(p)?,
        None => model_config.clone(),
    };
    let loss = Loss::from_coeffs(metrics_src.get("loss_coeffs").unwrap_or(&Value::String("total_energy".into())))?;
    let mut metrics = Metrics::new(metrics_src.get("metrics_components"), &loss)?;
    let extra: Vec<&str> = a.output_fields.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let mut frames = Vec::new();
    let mut collected = points.then(|| Evaluation::new(ds.type_mapper.type_names.clone()));
    for round in 0..a.repeat.max(1) {
        let write = a.output.is_some();
        evaluate(&model, &ds, &indices, a.batch_size, device, Some(&mut metrics), &extra, &mut |i, f| {
            if let (0, Some(c), Some(label)) = (round, collected.as_mut(), ds.get(i)) {
                c.push_frame(i, label, &f);
            }
            if write {
                let mut x = frame_to_xyz(&f, Some(&ds.type_mapper), &extra);
                x.info.insert("original_dataset_index".into(), InfoValue::Int(ds.frame_ids.get(i).copied().unwrap_or(i) as i64));
                frames.push(x);
            }
            Ok(())
        })?;
    }
    Ok(Outcome { description, metrics: metrics.flatten(&ds.type_mapper.type_names), frames, points: collected })
}
