//! `nequip train CONFIG`: port of `nequip-train` (`nequip/scripts/train.py`, nequip 0.6.2):
//! a fresh run in `root/run_name/`, or the continuation of one with `append: true`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use nequip_core::config::Config;
use nequip_core::train::{trainer_from_config, Progress, SetupOptions};

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// The training config (nequip 0.6 YAML).
    pub config: PathBuf,
    /// Unused keys are warnings instead of errors.
    #[arg(long)]
    pub warn_unused: bool,
    /// No progress bar and no log on stdout (the run's `log` file is still written).
    #[arg(long, short)]
    pub quiet: bool,
    /// Before training, test the model's E(3) equivariance on N training frames (default 1),
    /// as nequip-train's `--equivariance-test`.
    #[arg(long, num_args = 0..=1, default_missing_value = "1", value_name = "N")]
    pub equivariance_test: Option<usize>,
    /// Do not write the learning curves (`learning_curves.png`/`.svg`) into the run directory
    /// at the end (`nequip plot RUN_DIR` draws them at any time).
    #[arg(long)]
    pub no_plots: bool,
}

/// A progress bar per epoch with ETA and the live loss (only on a terminal).
struct Bar(Option<ProgressBar>);

impl Progress for Bar {
    fn start(&mut self, what: &str, epoch: i64, n: usize) {
        let b = ProgressBar::new(n as u64);
        b.set_style(ProgressStyle::with_template("{prefix:>18} [{bar:30}] {pos}/{len} {msg} eta {eta}").unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> "));
        b.set_prefix(format!("epoch {epoch} {what}"));
        self.0 = Some(b);
    }
    fn batch(&mut self, done: usize, loss: f64) {
        if let Some(b) = &self.0 {
            b.set_position(done as u64);
            b.set_message(format!("loss {loss:.4}"));
        }
    }
    fn finish(&mut self) {
        if let Some(b) = self.0.take() {
            b.finish_and_clear();
        }
    }
}

pub fn run(a: TrainArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&a.config).with_context(|| format!("loading {}", a.config.display()))?;
    let o = SetupOptions { echo: !a.quiet, warn_unused: a.warn_unused };
    let from_config = match config.get("equivariance_test") {
        Some(nequip_core::config::Value::Number(n)) => n.as_u64().map(|n| n as usize),
        Some(nequip_core::config::Value::Bool(true)) => Some(1),
        _ => None,
    };
    let mut trainer = trainer_from_config(config, &o).with_context(|| format!("setting up training from {}", a.config.display()))?;
    if let Some(n) = a.equivariance_test.or(from_config).filter(|&n| n > 0) {
        equivariance_test(&trainer, n)?;
    }
    let interactive = !a.quiet && std::io::stdout().is_terminal();
    let state = if interactive { trainer.train(&mut Bar(None)) } else { trainer.train(&mut nequip_core::train::Silent) }.context("training")?;
    if !a.quiet {
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "best {} = {:.6} (epoch {}); model: {}", trainer.metrics_key, state.best_metric, state.best_epoch, trainer.run_dir.join("best_model.safetensors").display());
    }
    if !a.no_plots {
        plot_learning_curves(&trainer.run_dir, a.quiet);
    }
    Ok(ExitCode::SUCCESS)
}

/// The learning curves into the run directory; failing to draw them is a warning, not a failed
/// training.
fn plot_learning_curves(run_dir: &std::path::Path, quiet: bool) {
    let units = crate::plot::units::Units::default();
    match crate::plot::learning::render_run(run_dir, &units).and_then(|f| f.write(run_dir)) {
        Ok([png, _]) if !quiet => println!("learning curves: {}", png.display()),
        Ok(_) => {}
        Err(e) => eprintln!("warning: the learning curves were not plotted: {e}"),
    }
}

/// nequip's `--equivariance-test`: rotation, inversion and translation of `n` training frames.
fn equivariance_test(t: &nequip_core::train::Trainer, n: usize) -> anyhow::Result<()> {
    use nequip_core::model::testing::{check_equivariance, model_input, KitOptions};
    let r_max = t.dataset.r_max;
    let mut opts = KitOptions::new(&t.model, r_max, t.type_names.len() as i64);
    // `parity: false` models are only SO(3)-equivariant (their edge harmonics are declared even)
    opts.parity = t.config.get("parity").and_then(nequip_core::config::Value::as_bool).unwrap_or(true);
    for &i in t.loader.train_idcs.iter().take(n) {
        let frame = t.dataset.get(i).context("training frame")?;
        check_equivariance(&t.model, &model_input(&t.model, frame), &opts).map_err(|e| anyhow::anyhow!("equivariance test failed on training frame {i}: {e}"))?;
    }
    println!("Equivariance test passed on {} training frame(s) (rotation{}, translation)", n.min(t.loader.train_idcs.len()), if opts.parity { ", inversion" } else { "" });
    Ok(())
}
