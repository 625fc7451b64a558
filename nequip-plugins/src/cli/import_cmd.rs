//! `nequip import RUN_DIR`: a nequip 0.6 run directory (`config.yaml` + `best_model.pth`) →
//! a nequip-rs model file that `evaluate` and `benchmark` load without the training config.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use nequip_core::io::model_file;
use nequip_core::io::nequip_run::import_run;

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The nequip run directory (with `config.yaml` and `best_model.pth`).
    pub run_dir: PathBuf,
    /// Which weights of the run (`best_model.pth`, `last_model.pth`).
    #[arg(long, default_value = "best_model.pth")]
    pub weights: String,
    /// The model file to write (default: RUN_DIR/model.nequip-rs.safetensors).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

pub fn run(a: ImportArgs) -> anyhow::Result<ExitCode> {
    let (model, config) = import_run(&a.run_dir, Some(&a.weights), "cpu").with_context(|| format!("importing {}", a.run_dir.display()))?;
    let out = a.output.unwrap_or_else(|| a.run_dir.join("model.nequip-rs.safetensors"));
    model_file::save(&out, &model, &config).with_context(|| format!("writing {}", out.display()))?;
    let meta = model_file::describe(&model, &config);
    println!("imported {} ({} parameters, r_max {}, types {}) -> {}", a.run_dir.join(&a.weights).display(), meta["n_parameters"], meta["r_max"], meta["type_names"], out.display());
    Ok(ExitCode::SUCCESS)
}
