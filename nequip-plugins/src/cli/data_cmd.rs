//! `nequip data info`: what a user checks before training (frames, species, neighbours at
//! `r_max`, energy and force statistics, per-species energies, cells, frames without edges).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use nequip_core::config::{yaml, Args, AutoInit, Config, Request};
use nequip_core::data::info::data_info;
use nequip_core::data::split::{split, Count, SplitMode, SplitOptions};
use nequip_core::data::type_mapper::chemical_symbol;
use nequip_core::data::{dataset_plan, AseDataset, AseOptions, AtomicDataOptions, InMemoryDataset, NpzDataset, TypeMapper};
use nequip_core::train::options::TrainerOptions;

#[derive(clap::Subcommand, Debug)]
pub enum DataCommand {
    /// Summarise a dataset: a training config (its `dataset_*` section) or a data file.
    Info(InfoArgs),
}

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// A config (`.yaml`/`.yml`) or a data file (`.npz`, `.xyz`/`.extxyz`).
    pub input: PathBuf,
    /// Cutoff for the neighbour statistics (data files; a config has `r_max`).
    #[arg(long)]
    pub r_max: Option<f64>,
    /// File format when the extension does not say.
    #[arg(long, value_parser = ["npz", "extxyz"])]
    pub format: Option<String>,
    /// Statistics over the training split of a config (`n_train`, `dataset_seed`, ...) instead of all frames.
    #[arg(long, value_parser = ["train", "all"], default_value = "all")]
    pub split: String,
    /// One JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(c: DataCommand) -> anyhow::Result<ExitCode> {
    let DataCommand::Info(a) = c;
    let is_config = matches!(a.input.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
    let bar = progress_bar(a.json);
    let progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64 + 1);
    };
    let (ds, indices) = if is_config {
        if a.r_max.is_some() || a.format.is_some() {
            bail!("--r-max and --format are for data files; a config gives `r_max` and `dataset`");
        }
        from_config(&a.input, a.split == "train", &progress)?
    } else {
        if a.split == "train" {
            bail!("--split train needs a config (n_train, n_val, dataset_seed); a data file has no split");
        }
        let r_max = a.r_max.context("a data file needs --r-max R (the cutoff for the neighbour statistics)")?;
        (from_file(&a.input, a.format.as_deref(), r_max, &progress)?, None)
    };
    bar.finish_and_clear();
    let info = data_info(&ds, indices.as_deref())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        println!("{info}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A bar on stderr for terminals only (never in `--json` output or logs).
fn progress_bar(json: bool) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(ProgressStyle::with_template("reading frames {bar:40} {pos}/{len} ({eta})").unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar
}

pub(crate) fn from_config(path: &Path, train_only: bool, progress: &dyn Fn(usize, usize)) -> anyhow::Result<(InMemoryDataset, Option<Vec<usize>>)> {
    let mut config = Config::load(path).with_context(|| format!("loading {}", path.display()))?;
    let plan = dataset_plan(&mut config, "dataset")?.with_context(|| format!("{}: no `dataset` key", path.display()))?;
    let ds = plan.load_with_progress(Some(progress))?;
    if !train_only {
        return Ok((ds, None));
    }
    let req = Request::new("Trainer", "Trainer", TrainerOptions::KEYS).all(Args::Config(&config));
    let t: TrainerOptions = nequip_core::config::resolve::resolve_typed(&req)?.0;
    let count = |name: &str, v: Option<yaml::Value>| -> anyhow::Result<Count> {
        let v = v.with_context(|| format!("--split train needs `{name}` in the config"))?;
        yaml::from_value(v.clone()).map_err(|e| anyhow::anyhow!("`{name}`: expected a count or a percentage, found {} ({e})", yaml::render(&v)))
    };
    let seed = t.dataset_seed.or(t.seed).context("--split train needs `seed` or `dataset_seed`")?;
    let mut o = SplitOptions::new(count("n_train", t.n_train)?, count("n_val", t.n_val)?);
    o.dataset_seed = u64::try_from(seed).context("`dataset_seed` must be non-negative")?;
    o.train_val_split = match t.train_val_split.as_str() {
        "random" => SplitMode::Random,
        "sequential" => SplitMode::Sequential,
        other => bail!("`train_val_split` must be `random` or `sequential`, found `{other}`"),
    };
    let (train, _) = split(&o, ds.len(), None)?;
    Ok((ds, Some(train)))
}

fn from_file(path: &Path, format: Option<&str>, r_max: f64, progress: &dyn Fn(usize, usize)) -> anyhow::Result<InMemoryDataset> {
    let format = match format {
        Some(f) => f.to_string(),
        None => match path.extension().and_then(|e| e.to_str()) {
            Some("npz") => "npz".into(),
            Some("xyz" | "extxyz") => "extxyz".into(),
            _ => bail!("{}: cannot tell the format from the extension; give --format npz or --format extxyz", path.display()),
        },
    };
    let mut ado = AtomicDataOptions::new(r_max);
    ado.error_on_no_edges = false; // report frames without edges instead of failing
    let load = |tm: &TypeMapper, progress: Option<&dyn Fn(usize, usize)>| -> anyhow::Result<InMemoryDataset> {
        Ok(if format == "npz" {
            let mut o = nequip_core::data::npz::guess_npz_options(path, r_max)?;
            o.atomic_data_options = ado.clone();
            NpzDataset::load_with_progress(&o, tm, None, progress)?
        } else {
            let o = AseOptions { file_name: path.to_path_buf(), key_mapping: None, include_keys: None, include_frames: None, ase_args: None, atomic_data_options: ado.clone() };
            AseDataset::load_with_progress(&o, tm, None, progress)?
        })
    };
    // Species are whatever the file holds: read once with every element, then type by those present.
    let all: Vec<&str> = (1..=118).filter_map(chemical_symbol).collect();
    let ds = load(&TypeMapper::from_chemical_symbols(&all)?, Some(progress))?;
    let mut present = std::collections::BTreeSet::new();
    for f in ds.frames() {
        if let Some(t) = f.get(nequip_core::data::keys::ATOM_TYPE_KEY).and_then(|a| a.as_i64()) {
            present.extend(t.iter().copied());
        }
    }
    let symbols: Vec<&str> = present.iter().filter_map(|&t| all.get(t as usize).copied()).collect();
    load(&TypeMapper::from_chemical_symbols(&symbols)?, None)
}
