//! Seeing a run: learning curves, parity plots, error histograms and a report page.
//!
//! | module | what |
//! |---|---|
//! | [`epochs`] | `metrics_epoch.csv` read into an [`epochs::EpochTable`] (also while a run is going) |
//! | [`evaluation`] | predictions against labels of an evaluation (`evaluation.csv`, `evaluation_metrics.csv`) |
//! | [`units`] | which physical quantity a metric measures and its unit label |
//! | [`figure`] | a [`figure::Figure`] rendered once to PNG and SVG (the embedded font), grids of panels |
//! | [`line`], [`parity`] | the panels: line charts (learning curves, epoch times); parity, density and histogram panels |
//! | [`learning`] | the learning-curve figure of a run |
//! | [`report`] | the self-contained HTML page (`nequip report`) |
//!
//! Drawing is [`plotters`] with its bitmap and SVG backends; text is rendered with DejaVu Sans
//! compiled into the binary (`fonts/`), so no system fonts are needed.

pub mod epochs;
pub mod evaluation;
pub mod figure;
pub mod learning;
pub mod line;
pub mod parity;
pub mod report;
pub mod units;

use std::path::PathBuf;

/// What can go wrong reading plot inputs or drawing.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("{}: {source}", file.display())]
    Io { file: PathBuf, source: std::io::Error },
    /// Input that is not what it should be: the file and, where it applies, line and column.
    #[error("{}: {reason}", file.display())]
    BadInput { file: PathBuf, reason: String },
    #[error("drawing {figure}: {reason}")]
    Draw { figure: String, reason: String },
    #[error("nothing to plot: {0}")]
    Empty(String),
}

impl PlotError {
    pub(crate) fn bad(file: &std::path::Path, reason: impl Into<String>) -> Self {
        PlotError::BadInput { file: file.to_path_buf(), reason: reason.into() }
    }
    pub(crate) fn io(file: &std::path::Path, source: std::io::Error) -> Self {
        PlotError::Io { file: file.to_path_buf(), source }
    }
}
