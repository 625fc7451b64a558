//! The `nequip` command line (`nequip/scripts/`): clap derive, one module per command.
//! [`main`] is what a binary calls after linking its plugin crates (see [`crate::link`]).

mod benchmark_cmd;
mod config_cmd;
mod data_cmd;
mod deploy_cmd;
mod evaluate_cmd;
mod import_cmd;
mod list;
mod plot_cmd;
mod report_cmd;
mod serve_cmd;
mod train_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "nequip", version, about = "NequIP interatomic potentials in Rust: train, evaluate, deploy", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List registered builders, datasets, modules, losses, optimizers, schedulers.
    List(list::ListArgs),
    /// Check or explain a config file.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Look at a dataset before training.
    #[command(subcommand)]
    Data(data_cmd::DataCommand),
    /// Train a model from a nequip config (fresh, or continued with `append: true`).
    Train(train_cmd::TrainArgs),
    /// Evaluate a model on a dataset: metrics, and predictions as extended XYZ.
    Evaluate(evaluate_cmd::EvaluateArgs),
    /// Build a self-describing model file, or show one's metadata.
    #[command(subcommand)]
    Deploy(deploy_cmd::DeployCommand),
    /// Import a nequip 0.6 run directory (config.yaml + best_model.pth) as a nequip-rs model file.
    Import(import_cmd::ImportArgs),
    /// Time a config's model on a few of its frames: eval-mode forward and a training step.
    Benchmark(benchmark_cmd::BenchmarkArgs),
    /// Serve a model to an MD driver: an i-PI socket client (i-PI, ASE's SocketIOCalculator).
    Serve(serve_cmd::ServeArgs),
    /// Plot a run's learning curves, or an evaluation's parity plots (PNG and SVG).
    Plot(plot_cmd::PlotArgs),
    /// One self-contained HTML page about a run: curves, test-set accuracy, timing, data, config.
    Report(report_cmd::ReportArgs),
}

/// Parse the process arguments, run, print errors; the exit code is 0 only on success.
pub fn main() -> ExitCode {
    nequip_core::runtime::tune_allocator();
    crate::link();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Run a parsed command.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Err(dups) = nequip_core::registry::check() {
        let lines: Vec<String> = dups.iter().map(|d| format!("  {d}")).collect();
        anyhow::bail!("the registry is inconsistent:\n{}", lines.join("\n"));
    }
    match cli.command {
        Command::List(a) => list::run(a),
        Command::Config(c) => config_cmd::run(c),
        Command::Data(c) => data_cmd::run(c),
        Command::Import(a) => import_cmd::run(a),
        Command::Train(a) => train_cmd::run(a),
        Command::Evaluate(a) => evaluate_cmd::run(a),
        Command::Deploy(c) => deploy_cmd::run(c),
        Command::Benchmark(a) => benchmark_cmd::run(a),
        Command::Serve(a) => serve_cmd::run(a),
        Command::Plot(a) => plot_cmd::run(a),
        Command::Report(a) => report_cmd::run(a),
    }
}
