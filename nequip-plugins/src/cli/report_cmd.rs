//! `nequip report RUN_DIR [-o report.html]`: one self-contained HTML page about a run — a
//! summary (epochs, best epoch, parameters), the learning curves, the test set's metrics and
//! parity plots (evaluated now, or from `--evaluation DIR`), the time per epoch, the dataset
//! (`nequip data info`) and the run's config.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use nequip_core::data::info::data_info;
use nequip_core::io::model_file;
use nequip_core::train::run_dir::atomic_write;

use super::evaluate_cmd::{evaluate_with, EvaluateArgs};
use super::plot_cmd::UnitArgs;
use crate::plot::epochs::EpochTable;
use crate::plot::evaluation::{Evaluation, EVALUATION_CSV};
use crate::plot::figure::{count, tick, Figure};
use crate::plot::learning::{epoch_time, learning_curves, metrics_key, EPOCH_TIME, LEARNING_CURVES};
use crate::plot::parity::evaluation_figures;
use crate::plot::report::{timing_rows, Part, Report, TestSet};
use crate::plot::units::Units;

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// A training run directory (`metrics_epoch.csv`, `config.yaml`, `best_model.safetensors`).
    pub run_dir: PathBuf,
    /// The HTML file to write (default: RUN_DIR/report.html).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The test set from an evaluation directory (`nequip evaluate --plots DIR`) instead of
    /// evaluating the run's unused frames now.
    #[arg(long, value_name = "DIR")]
    pub evaluation: Option<PathBuf>,
    /// Leave the test set out.
    #[arg(long, conflicts_with = "evaluation")]
    pub no_test: bool,
    /// Device for the test-set evaluation (`cpu`, `cuda`, `cuda:N`; default: cuda when available).
    #[arg(long)]
    pub device: Option<String>,
    /// Batch size of the test-set evaluation.
    #[arg(long, default_value_t = 50)]
    pub batch_size: usize,
    #[command(flatten)]
    pub units: UnitArgs,
}

pub fn run(a: ReportArgs) -> anyhow::Result<ExitCode> {
    let dir = &a.run_dir;
    if !dir.is_dir() {
        bail!("{}: not a directory (give a training run directory)", dir.display());
    }
    let csv = dir.join("metrics_epoch.csv");
    if !csv.is_file() {
        bail!("{}: not a training run with finished epochs: no metrics_epoch.csv", dir.display());
    }
    let table = EpochTable::read(&csv)?;
    let config_path = dir.join("config.yaml");
    let config = std::fs::read_to_string(&config_path).with_context(|| format!("reading the run's config {}", config_path.display()))?;
    let units = a.units.units();
    let key = metrics_key(dir);
    let learning = Figure::render(LEARNING_CURVES, &learning_curves(&table, &key, &units)?)?;
    let timing = match epoch_time(&table) {
        Some(g) => Ok((Figure::render(EPOCH_TIME, &g)?, timing_rows(&table.epoch_seconds().unwrap_or_default()))),
        None => Err(format!("{} has no `wall` column", csv.display())),
    };
    let test = match (&a.evaluation, a.no_test) {
        (_, true) => None,
        // asked for explicitly: bad input is an error
        (Some(d), _) => Some(Ok(from_evaluation_dir(d, &units)?)),
        (None, _) => Some(evaluate_now(&a, &units).map_err(|e| {
            eprintln!("warning: no test-set section: {e:#}");
            format!("{e:#}")
        })),
    };
    let dataset = dataset_summary(&config_path);
    let report = Report {
        title: dir.canonicalize().ok().as_deref().unwrap_or(dir).file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default(),
        run_dir: dir.display().to_string(),
        summary: summary_rows(dir, &table, &key),
        learning_curves: learning,
        test,
        timing,
        dataset,
        config,
        units,
    };
    let html = report.html()?;
    let out = a.output.clone().unwrap_or_else(|| dir.join("report.html"));
    atomic_write(&out, html.as_bytes()).with_context(|| format!("writing {}", out.display()))?;
    println!("report -> {}", out.display());
    Ok(ExitCode::SUCCESS)
}

fn from_evaluation_dir(d: &Path, units: &Units) -> anyhow::Result<TestSet> {
    let csv = if d.is_dir() { d.join(EVALUATION_CSV) } else { d.to_path_buf() };
    let ev = Evaluation::read(&csv)?;
    let frames = ev.points(crate::plot::evaluation::Target::EnergyPerAtom).len();
    Ok(TestSet { description: format!("{} frames evaluated by `nequip evaluate --plots` ({})", count(frames), csv.display()), metrics: ev.metrics.clone(), figures: evaluation_figures(&ev, units)? })
}

/// `nequip evaluate --train-dir RUN_DIR` on the frames not used for training or validation.
fn evaluate_now(a: &ReportArgs, units: &Units) -> anyhow::Result<TestSet> {
    let out = evaluate_with(&EvaluateArgs::for_run(&a.run_dir, a.device.clone(), a.batch_size), true)?;
    let ev = out.points.context("the evaluation kept no points")?;
    Ok(TestSet { description: format!("Evaluated now: {}", out.description), metrics: out.metrics, figures: evaluation_figures(&ev, units)? })
}

/// `nequip data info` of the run's config, or why not.
fn dataset_summary(config: &Path) -> Part<String> {
    let r: anyhow::Result<String> = (|| {
        let (ds, idx) = super::data_cmd::from_config(config, false, &|_, _| {})?;
        Ok(data_info(&ds, idx.as_deref())?.to_string())
    })();
    r.map_err(|e| format!("{e:#}"))
}

fn summary_rows(dir: &Path, t: &EpochTable, key: &str) -> Vec<(String, String)> {
    let mut rows = vec![("run directory".to_string(), dir.display().to_string())];
    rows.push(("epochs in metrics_epoch.csv".into(), format!("{} (last: epoch {:.0})", count(t.len()), t.epoch.last().copied().unwrap_or(0.0))));
    rows.push(("best epoch".into(), match t.best(key) {
        Some((e, v)) => format!("{e:.0} ({key} = {})", tick(v)),
        None => format!("none ({key} has no value)"),
    }));
    if let Some(lr) = t.lr.as_ref().and_then(|l| l.last()) {
        rows.push(("last learning rate".into(), tick(*lr)));
    }
    if let Some(s) = t.epoch_seconds() {
        rows.push(("training time".into(), format!("{} s", tick(s.iter().sum()))));
    }
    let model = dir.join("best_model.safetensors");
    match model_file::read(&model) {
        Ok(f) => {
            let m = |k: &str| f.metadata.get(k).cloned().unwrap_or_default();
            let n: Option<usize> = m("n_parameters").parse().ok();
            rows.push(("parameters".into(), n.map(count).unwrap_or_else(|| m("n_parameters"))));
            rows.push(("species (type_names)".into(), m("type_names")));
            rows.push(("r_max".into(), m("r_max")));
            rows.push(("model dtype".into(), m("model_dtype")));
        }
        Err(e) => rows.push(("model".into(), format!("not available: {e}"))),
    }
    rows
}
