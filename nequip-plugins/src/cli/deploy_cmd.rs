//! `nequip deploy build|info`: port of `nequip-deploy` (`nequip/scripts/deploy.py`, nequip
//! 0.6.2), producing the nequip-rs model file (weights + resolved config + metadata) instead
//! of a TorchScript file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use nequip_core::config::{Config, Source, Value};
use nequip_core::io::model_file;
use nequip_core::model::{model_from_config, BuildOptions};

#[derive(clap::Subcommand, Debug)]
pub enum DeployCommand {
    /// Write a self-describing model file from a training run (or a model config).
    Build(BuildArgs),
    /// Print the metadata of a model file.
    Info(InfoArgs),
}

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// The training run directory.
    #[arg(long)]
    pub train_dir: Option<PathBuf>,
    /// Instead of a run: a config whose builders give the weights (e.g. `load_model_state`).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Which weights of the run: `best_model` or `last_model`.
    #[arg(long, default_value = "best_model")]
    pub checkpoint: String,
    /// The model file to write.
    pub out: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    pub model: PathBuf,
    /// Also print the stored config.
    #[arg(long)]
    pub print_config: bool,
}

pub fn run(c: DeployCommand) -> anyhow::Result<ExitCode> {
    match c {
        DeployCommand::Build(a) => build(a),
        DeployCommand::Info(a) => info(a),
    }
}

fn build(a: BuildArgs) -> anyhow::Result<ExitCode> {
    let (model, config) = match (&a.train_dir, &a.model) {
        (Some(d), None) => {
            let src = d.join(format!("{}.safetensors", a.checkpoint.trim_end_matches(".safetensors")));
            model_file::load(&src, Some("cpu")).with_context(|| format!("loading {}", src.display()))?
        }
        (None, Some(cfg)) => {
            let mut config = Config::load(cfg)?;
            config.set("device", Value::String("cpu".into()), Source::Cli("deploy".into()));
            let m = model_from_config(&mut config, BuildOptions { deploy: true, ..Default::default() }).with_context(|| format!("building the model of {}", cfg.display()))?;
            (m, config)
        }
        _ => bail!("give exactly one of --train-dir and --model"),
    };
    model_file::save(&a.out, &model, &config).with_context(|| format!("writing {}", a.out.display()))?;
    println!("deployed model ({} parameters) -> {}", model.num_trainable(), a.out.display());
    Ok(ExitCode::SUCCESS)
}

fn info(a: InfoArgs) -> anyhow::Result<ExitCode> {
    let f = model_file::read(&a.model).with_context(|| format!("reading {}", a.model.display()))?;
    let bytes: usize = f.tensors.values().map(|t| t.numel() * t.kind().elt_size_in_bytes()).sum();
    for (k, v) in &f.metadata {
        if k != "config" {
            println!("{k:>24}: {v}");
        }
    }
    println!("{:>24}: {} tensors, {:.2} MB", "weights", f.tensors.len(), bytes as f64 / 1e6);
    if a.print_config {
        println!("{}", f.metadata.get("config").map(String::as_str).unwrap_or(""));
    }
    Ok(ExitCode::SUCCESS)
}
