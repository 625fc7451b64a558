//! The learning curves of a run: one panel per metric with its training and validation curves
//! over the epochs; the loss panel carries the learning rate on a second axis; every panel marks
//! the best epoch (by `metrics_key`, as the trainer chooses it).

use std::path::Path;

use plotters::style::RGBColor;

use super::epochs::{EpochTable, Phase};
use super::figure::{Figure, Grid, Panel, PALETTE};
use super::line::{Axis, LinePanel, Marker, Scale, Series};
use super::units::{MetricName, Units};
use super::PlotError;

/// The file stem of the learning-curve figure.
pub const LEARNING_CURVES: &str = "learning_curves";
/// The file stem of the time-per-epoch figure.
pub const EPOCH_TIME: &str = "epoch_time";

const TRAINING: RGBColor = PALETTE[0];
const VALIDATION: RGBColor = PALETTE[1];
const LR: RGBColor = PALETTE[4];
const BEST: RGBColor = PALETTE[2];

/// The `metrics_key` of a run directory's `config.yaml` (default `validation_loss`).
pub fn metrics_key(run_dir: &Path) -> String {
    let cfg = run_dir.join("config.yaml");
    nequip_core::config::Config::load(&cfg).ok().and_then(|c| c.get("metrics_key").and_then(|v| v.as_str().map(str::to_string))).unwrap_or_else(|| "validation_loss".into())
}

fn phase_series(t: &EpochTable, phase: Phase, metric: &str) -> Option<Series> {
    let color = if phase == Phase::Training { TRAINING } else { VALIDATION };
    t.column(phase, metric).map(|v| Series { label: phase.name().into(), x: t.epoch.clone(), y: v.to_vec(), color })
}

/// The panels of `t`, best epoch by `metrics_key`.
pub fn learning_curves(t: &EpochTable, metrics_key: &str, units: &Units) -> Result<Grid, PlotError> {
    if t.is_empty() {
        return Err(PlotError::Empty(format!("{} has no epochs", t.file.display())));
    }
    let best = t.best(metrics_key).map(|(e, v)| Marker { x: e, label: format!("best epoch {e:.0} ({metrics_key} {})", super::figure::tick(v)), color: BEST });
    // the loss first, then its components (only when there are several: one equals the loss),
    // then the metrics in file order
    let mut metrics = t.metrics();
    let components = metrics.iter().filter(|m| m.starts_with("loss_")).count();
    metrics.retain(|m| !(m.starts_with("loss_") && components < 2));
    metrics.sort_by_key(|m| if *m == "loss" { 0 } else if m.starts_with("loss_") { 1 } else { 2 });
    let mut panels = Vec::new();
    for m in &metrics {
        let series: Vec<Series> = [Phase::Training, Phase::Validation].into_iter().filter_map(|p| phase_series(t, p, m)).collect();
        let name = MetricName::parse(m);
        let right = match (&t.lr, *m == "loss") {
            (Some(lr), true) => Some((Axis { label: "learning rate".into(), scale: Scale::auto(lr) }, Series { label: "learning rate".into(), x: t.epoch.clone(), y: lr.clone(), color: LR })),
            _ => None,
        };
        panels.push(Panel::Line(LinePanel {
            title: m.to_string(),
            x_label: "epoch".into(),
            y: Axis { label: name.label(units), scale: Scale::auto(series.iter().flat_map(|s| &s.y)) },
            series,
            right,
            marker: best.clone(),
        }));
    }
    let run = t.file.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let last = t.epoch.last().copied().unwrap_or(0.0);
    Ok(Grid { title: Some(format!("{run}: learning curves, {} epochs (to epoch {last:.0})", t.len())), columns: 2, cell: (640, 400), panels })
}

/// Seconds per epoch as a one-panel figure.
pub fn epoch_time(t: &EpochTable) -> Option<Grid> {
    let secs = t.epoch_seconds()?;
    let series = vec![Series { label: "wall time per epoch".into(), x: t.epoch.clone(), y: secs.clone(), color: TRAINING }];
    let panel = LinePanel { title: "time per epoch".into(), x_label: "epoch".into(), y: Axis { label: "seconds".into(), scale: Scale::Linear }, series, right: None, marker: None };
    Some(Grid { title: None, columns: 1, cell: (760, 320), panels: vec![Panel::Line(panel)] })
}

/// Read `metrics_epoch.csv` of `run_dir` and render its learning curves.
pub fn render_run(run_dir: &Path, units: &Units) -> Result<Figure, PlotError> {
    let t = EpochTable::read(&run_dir.join("metrics_epoch.csv"))?;
    Figure::render(LEARNING_CURVES, &learning_curves(&t, &metrics_key(run_dir), units)?)
}
