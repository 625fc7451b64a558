//! `nequip plot RUN_DIR [-o DIR]`: the learning curves of a run (`metrics_epoch.csv`, also
//! while it is going) and/or the parity plots and force-error histograms of an evaluation
//! (`evaluation.csv` from `nequip evaluate --plots`), as PNG and SVG.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::plot::epochs::EpochTable;
use crate::plot::evaluation::{Evaluation, EVALUATION_CSV};
use crate::plot::figure::Figure;
use crate::plot::learning::{learning_curves, metrics_key, LEARNING_CURVES};
use crate::plot::parity::evaluation_figures;
use crate::plot::units::Units;

#[derive(clap::Args, Debug)]
pub struct PlotArgs {
    /// A run directory (its `metrics_epoch.csv`), an evaluation directory (`evaluation.csv`
    /// from `nequip evaluate --plots DIR`), or one of those files.
    pub input: PathBuf,
    /// Where to write the figures (default: the input's directory).
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub units: UnitArgs,
}

/// The units of the data, for axis labels (nequip itself is unit-agnostic).
#[derive(clap::Args, Debug, Clone)]
pub struct UnitArgs {
    /// The energy unit of the data (axis labels only).
    #[arg(long, default_value = "eV")]
    pub energy_unit: String,
    /// The length unit of the data (axis labels only).
    #[arg(long, default_value = "Å")]
    pub length_unit: String,
}

impl UnitArgs {
    pub fn units(&self) -> Units {
        Units { energy: self.energy_unit.clone(), length: self.length_unit.clone() }
    }
}

impl Default for UnitArgs {
    fn default() -> Self {
        let u = Units::default();
        UnitArgs { energy_unit: u.energy, length_unit: u.length }
    }
}

/// What an input holds.
enum Source {
    /// A `metrics_epoch.csv` and the run directory it is in.
    Epochs { csv: PathBuf, run_dir: PathBuf },
    /// An `evaluation.csv`.
    Evaluation(PathBuf),
}

fn parent(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).filter(|d| !d.as_os_str().is_empty()).unwrap_or_else(|| PathBuf::from("."))
}

fn sources(input: &Path) -> anyhow::Result<Vec<Source>> {
    if input.is_dir() {
        let mut out = Vec::new();
        let csv = input.join("metrics_epoch.csv");
        if csv.is_file() {
            out.push(Source::Epochs { csv, run_dir: input.to_path_buf() });
        }
        let ev = input.join(EVALUATION_CSV);
        if ev.is_file() {
            out.push(Source::Evaluation(ev));
        }
        if out.is_empty() {
            bail!("{}: nothing to plot: no metrics_epoch.csv (a training run writes it after its first epoch) and no {EVALUATION_CSV} (written by `nequip evaluate --plots DIR`)", input.display());
        }
        return Ok(out);
    }
    if !input.exists() {
        bail!("{}: no such file or directory", input.display());
    }
    let first = std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?.lines().next().unwrap_or("").to_string();
    Ok(vec![if first.starts_with("target,") { Source::Evaluation(input.to_path_buf()) } else { Source::Epochs { csv: input.to_path_buf(), run_dir: parent(input) } }])
}

/// Render the figures of one input.
fn figures(s: &Source, units: &Units) -> anyhow::Result<Vec<Figure>> {
    Ok(match s {
        Source::Epochs { csv, run_dir } => {
            let t = EpochTable::read(csv)?;
            vec![Figure::render(LEARNING_CURVES, &learning_curves(&t, &metrics_key(run_dir), units)?)?]
        }
        Source::Evaluation(csv) => evaluation_figures(&Evaluation::read(csv)?, units)?,
    })
}

/// Write `figures` into `dir` and say where.
pub(crate) fn write_figures(figures: &[Figure], dir: &Path) -> anyhow::Result<()> {
    for f in figures {
        let [png, svg] = f.write(dir)?;
        println!("{} -> {}, {}", f.name.replace('_', " "), png.display(), svg.display());
    }
    Ok(())
}

pub fn run(a: PlotArgs) -> anyhow::Result<ExitCode> {
    let units = a.units.units();
    // render everything first: bad input writes nothing
    let mut all = Vec::new();
    for s in sources(&a.input)? {
        let dir = a.output.clone().unwrap_or_else(|| match &s {
            Source::Epochs { csv, .. } | Source::Evaluation(csv) => parent(csv),
        });
        all.push((figures(&s, &units)?, dir));
    }
    for (figs, dir) in &all {
        write_figures(figs, dir)?;
    }
    Ok(ExitCode::SUCCESS)
}
