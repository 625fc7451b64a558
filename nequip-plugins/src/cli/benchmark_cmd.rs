//! `nequip benchmark CONFIG`: time a model built from a training config on a few of its
//! frames. Mirrors `nequip/scripts/benchmark.py` (nequip 0.6.2): load the config and its
//! dataset, build the model with `model_from_config(config, initialize=True, dataset=...)`,
//! warm up, then time repeated calls. Two measurements:
//!
//! * **forward**: the model in eval mode (`forward(data, false)`: energies and forces, no
//!   graph kept), what nequip-benchmark times (there on the TorchScript-compiled model);
//! * **train step**: `forward(data, true)` (forces keep their graph), a force MSE loss against
//!   the frames' `forces` and the backward pass through the forces (second derivatives) into
//!   the trainable parameters' gradients (zeroed before), as the trainer does it; no
//!   optimizer update.
//!
//! With `--md`, a third: **md step**, the MD inference path (`nequip_core::potential`, what the
//! C library, LAMMPS, ASE and `nequip serve` call) on the first frame alone, one structure per
//! call with its positions moved slightly each call (as in MD): neighbour list, energy, forces and
//! virial.
//!
//! `bench/nequip_benchmark.py` does the same measurement on Python nequip 0.6.2. Differences
//! from nequip-benchmark: the first `--n-data` frames are used (not a seeded random pick), all of
//! them batched into one call (nequip cycles over single frames), and the statistics are the
//! min/median/mean of individually timed calls (structures/s and atom-steps/s from the min).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use nequip_core::config::{Config, Source, Value};
use nequip_core::data::batch::collate;
use nequip_core::data::keys::{ATOM_TYPE_KEY, CELL_KEY, FORCE_KEY, PBC_KEY, TOTAL_ENERGY_KEY};
use nequip_core::data::{dataset_plan, AtomicDataDict};
use nequip_core::model::{model_from_config, BuildOptions};
use nequip_core::data::AtomicData;
use nequip_core::nn::{GraphModel, GraphModule};
use nequip_core::potential::{Potential, Request};
use nequip_core::registry::TrainingSet;
use tch::{Device, Kind, Tensor};

#[derive(clap::Args, Debug)]
pub struct BenchmarkArgs {
    /// The training config (`.yaml`) whose model and dataset are benchmarked.
    pub config: PathBuf,
    /// Number of frames (the first ones of the dataset), batched into one call.
    #[arg(long, default_value_t = 1)]
    pub n_data: usize,
    /// Untimed calls before timing.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Timed calls (min/median/mean over these).
    #[arg(long, short = 'n', default_value_t = 30)]
    pub repeat: usize,
    /// torch intra-op threads (default: libtorch's choice).
    #[arg(long)]
    pub threads: Option<i32>,
    /// Device (`cpu`, `cuda`, `cuda:N`); default: the config's `device`, else CUDA if available.
    #[arg(long)]
    pub device: Option<String>,
    /// Override the config's `model_dtype` (`float32` or `float64`).
    #[arg(long, value_parser = ["float32", "float64"])]
    pub model_dtype: Option<String>,
    /// Only the eval-mode forward (skip the training step).
    #[arg(long)]
    pub no_train: bool,
    /// Also print how many libtorch operators one call dispatches, per operator (forward
    /// ops and autograd backward nodes), to see where per-op overhead goes.
    #[arg(long)]
    pub op_census: bool,
    /// Also time the MD inference path: one structure per call (the first frame), neighbour
    /// list included, energy + forces + virial.
    #[arg(long)]
    pub md: bool,
}

/// min / median / mean of the timed calls, in seconds.
struct Stats {
    min: f64,
    median: f64,
    mean: f64,
}

fn stats(mut t: Vec<f64>) -> Stats {
    t.sort_by(|a, b| a.total_cmp(b));
    let n = t.len();
    let median = if n % 2 == 1 { t[n / 2] } else { 0.5 * (t[n / 2 - 1] + t[n / 2]) };
    Stats { min: t[0], median, mean: t.iter().sum::<f64>() / n as f64 }
}

/// `warmup` untimed then `repeat` timed calls of `f`.
fn time_calls(warmup: usize, repeat: usize, f: &mut dyn FnMut() -> anyhow::Result<()>) -> anyhow::Result<Stats> {
    for _ in 0..warmup {
        f()?;
    }
    let mut times = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let t0 = Instant::now();
        f()?;
        times.push(t0.elapsed().as_secs_f64());
    }
    Ok(stats(times))
}

fn shallow(d: &AtomicDataDict) -> AtomicDataDict {
    d.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect()
}

/// One eval-mode call: energies and forces; reading the energy synchronises (as `.item()`).
fn forward(model: &GraphModel, data: &AtomicDataDict) -> anyhow::Result<()> {
    let out = model.forward(shallow(data), false)?;
    let e = out.get(TOTAL_ENERGY_KEY).context("the model has no `total_energy` output")?;
    let _ = e.f_sum(e.kind())?.f_double_value(&[])?;
    Ok(())
}

/// One training step without the optimizer update: zero grads, forward, force MSE, backward.
fn train_step(model: &GraphModel, params: &mut [Tensor], data: &AtomicDataDict) -> anyhow::Result<()> {
    for p in params.iter_mut() {
        p.zero_grad();
    }
    let out = model.forward(shallow(data), true)?;
    let f = out.get(FORCE_KEY).context("the model has no `forces` output (add ForceOutput to model_builders)")?;
    let target = data[FORCE_KEY].f_to_kind(f.kind())?;
    let loss = f.f_sub(&target)?.f_square()?.f_mean(f.kind())?;
    // as the trainer: gradients of the parameters only (nequip's `loss.backward()` also
    // computes the unused ones of the positions)
    nequip_core::runtime::backward_to(&loss, params).map_err(anyhow::Error::msg)?;
    let _ = loss.f_double_value(&[])?;
    Ok(())
}

/// The MD-path inputs of one frame: positions, types, cell (when periodic), pbc.
struct MdFrame {
    pos: Vec<[f64; 3]>,
    types: Vec<i64>,
    cell: Option<[[f64; 3]; 3]>,
    pbc: [bool; 3],
}

fn md_frame(f: &AtomicData) -> anyhow::Result<MdFrame> {
    let pos = f.pos().chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
    let types = f.get(ATOM_TYPE_KEY).and_then(|a| a.as_i64()).context("the frame has no atom_types")?.to_vec();
    let pbc: Vec<bool> = f.get(PBC_KEY).and_then(|a| a.as_bool()).map(<[bool]>::to_vec).unwrap_or_default();
    let pbc = [0, 1, 2].map(|k| pbc.get(k).copied().unwrap_or(false));
    let cell = f.get(CELL_KEY).and_then(|a| a.as_f64()).filter(|_| pbc.iter().any(|&p| p)).map(|c| [[c[0], c[1], c[2]], [c[3], c[4], c[5]], [c[6], c[7], c[8]]]);
    Ok(MdFrame { pos, types, cell, pbc })
}

/// One MD step of the inference path: positions moved by a small `step`-dependent amount.
fn md_step(pot: &Potential, f: &MdFrame, step: usize) -> anyhow::Result<()> {
    let d = 1e-4 * ((step % 7) as f64 - 3.0);
    let pos: Vec<[f64; 3]> = f.pos.iter().map(|p| [p[0] + d, p[1] - d, p[2] + 0.5 * d]).collect();
    pot.compute(&pos, &f.types, f.cell.as_ref(), f.pbc, Request { forces: true, virial: true, atom_energies: false })?;
    Ok(())
}

fn line(name: &str, s: &Stats, n_data: usize, n_atoms: usize) {
    let ms = |x: f64| x * 1e3;
    println!(
        "{name:<11} min {:>9.3} ms  median {:>9.3} ms  mean {:>9.3} ms  | {:>9.1} structures/s  {:>10.0} atom-steps/s",
        ms(s.min),
        ms(s.median),
        ms(s.mean),
        n_data as f64 / s.min,
        n_atoms as f64 / s.min
    );
}

fn print_census(name: &str, (r, rows): (anyhow::Result<()>, Vec<(u64, String)>)) -> anyhow::Result<()> {
    r?;
    let total: u64 = rows.iter().map(|(c, _)| c).sum();
    println!("op census, one {name} call: {total} operator calls (nested included)");
    for (c, op) in &rows {
        println!("{c:>8}  {op}");
    }
    Ok(())
}

pub fn run(a: BenchmarkArgs) -> anyhow::Result<ExitCode> {
    if a.n_data == 0 || a.repeat == 0 {
        bail!("--n-data and --repeat must be at least 1");
    }
    if let Some(n) = a.threads {
        if n < 1 {
            bail!("--threads must be at least 1, got {n}");
        }
        tch::set_num_threads(n);
    }
    let path = &a.config;
    let mut config = Config::load(path).with_context(|| format!("loading {}", path.display()))?;
    if let Some(d) = &a.device {
        config.set("device", Value::String(d.clone()), Source::Cli("--device".into()));
    }
    if let Some(d) = &a.model_dtype {
        config.set("model_dtype", Value::String(d.clone()), Source::Cli("--model-dtype".into()));
    }

    let t0 = Instant::now();
    let plan = dataset_plan(&mut config, "dataset")
        .with_context(|| format!("{}: the `dataset` section", path.display()))?
        .with_context(|| format!("{}: no `dataset` key", path.display()))?;
    let ds = plan.load().with_context(|| format!("{}: loading the dataset", path.display()))?;
    println!("loaded dataset of {} frames in {:.3} s", ds.len(), t0.elapsed().as_secs_f64());
    if a.n_data > ds.len() {
        bail!("--n-data {} but the dataset has only {} frames", a.n_data, ds.len());
    }

    let t0 = Instant::now();
    let model = model_from_config(&mut config, BuildOptions { initialize: true, dataset: Some(TrainingSet { dataset: &ds, indices: None }), deploy: false })
        .with_context(|| format!("{}: building the model", path.display()))?;
    println!("built model in {:.3} s", t0.elapsed().as_secs_f64());

    let frames: Vec<_> = ds.frames()[..a.n_data].iter().collect();
    let n_atoms: usize = frames.iter().map(|f| f.num_nodes()).sum();
    let n_edges: usize = frames.iter().map(|f| f.num_edges()).sum();
    if !frames.iter().all(|f| f.contains(FORCE_KEY)) && !a.no_train {
        bail!("the frames have no `forces` (needed for the training step; use --no-train)");
    }
    let batch = collate(&frames).context("batching the frames")?;
    let device = model.device();
    let data: AtomicDataDict = batch.to_dict().into_iter().map(|(k, v)| (k, v.to_device(device))).collect();

    let mut params = model.parameters();
    let dtype = match model.model_dtype {
        Kind::Float => "float32",
        Kind::Double => "float64",
        _ => "other",
    };
    let device_name = match device {
        Device::Cpu => "cpu".to_string(),
        Device::Cuda(i) => format!("cuda:{i}"),
        d => format!("{d:?}"),
    };

    println!("config:        {}", path.display());
    println!("implementation: nequip-rs {} (tch, libtorch)", env!("CARGO_PKG_VERSION"));
    println!("device:        {device_name}");
    println!("threads:       {}", tch::get_num_threads());
    println!("model_dtype:   {dtype}");
    println!("parameters:    {} trainable", model.num_trainable());
    println!("frames:        {} ({n_atoms} atoms, {:.1} edges per frame)", a.n_data, n_edges as f64 / a.n_data as f64);
    println!("calls:         {} warmup, {} timed", a.warmup, a.repeat);

    if a.op_census {
        print_census("forward", nequip_core::runtime::op_census(|| forward(&model, &data)))?;
        if !a.no_train {
            print_census("train step", nequip_core::runtime::op_census(|| train_step(&model, &mut params, &data)))?;
        }
    }
    let fwd = time_calls(a.warmup, a.repeat, &mut || forward(&model, &data)).context("forward (eval mode)")?;
    line("forward", &fwd, a.n_data, n_atoms);
    if !a.no_train {
        let tr = time_calls(a.warmup, a.repeat, &mut || train_step(&model, &mut params, &data)).context("training step")?;
        line("train step", &tr, a.n_data, n_atoms);
    }
    if a.md {
        let f = md_frame(frames[0])?;
        let n = f.pos.len();
        let pot = Potential::from_model(model, config).map_err(anyhow::Error::msg).context("the MD inference path")?;
        if a.op_census {
            print_census("md step", nequip_core::runtime::op_census(|| md_step(&pot, &f, 0)))?;
        }
        let mut step = 0;
        let md = time_calls(a.warmup, a.repeat, &mut || {
            step += 1;
            md_step(&pot, &f, step)
        })
        .context("md step")?;
        line("md step", &md, 1, n);
    }
    Ok(ExitCode::SUCCESS)
}
