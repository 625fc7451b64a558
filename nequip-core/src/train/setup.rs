//! Setting up a training run from a config: port of `nequip/scripts/train.py::{fresh_start,
//! restart}` and `Trainer.__init__` / `Trainer.from_dict` (nequip 0.6.2). A run directory with
//! `trainer_state.safetensors` is an existing run: `append: true` continues it exactly (same
//! weights, optimizer, EMA, scheduler, early stopping, split and shuffles), and only
//! `max_epochs` and `early_stopping*` may differ from the saved config; without `append` it
//! is an error. Also: saving the model files (the trainer state is [`super::state`]).

use std::path::{Path, PathBuf};

use super::early_stopping::EarlyStopping;
use super::ema::Ema;
use super::loss_fn::{Loss, TrainLossError};
use super::metrics::{Metrics, MetricsError};
use super::optim::{optimizer_from_config, scheduler_from_config, OptimError};
use super::options::{GlobalOptions, TrainerOptions};
use super::run_dir::{RunFileError, RunFiles};
use super::state::{SavedState, TrainerState};
use super::trainer::{ProgressState, Trainer};
use crate::config::{yaml, Args, AutoInit, Config, ConfigError, Request, ResolveError, Source, UnusedKey, Value};
use crate::data::split::{Count, Loader, SplitMode, SplitOptions};
use crate::data::{dataset_plan, DataError, DatasetConfigError};
use crate::io::model_file::{self, ModelFileError};
use crate::model::{model_from_config, BuildOptions, ModelBuildError};
use crate::nn::{GraphModule, ModelError};
use crate::registry::TrainingSet;

pub const STATE_FILE: &str = "trainer_state.safetensors";

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Dataset(#[from] DatasetConfigError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Build(#[from] ModelBuildError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Loss(#[from] TrainLossError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error(transparent)]
    Optim(#[from] OptimError),
    #[error(transparent)]
    ModelFile(#[from] ModelFileError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
    #[error("the loss is {value} (not finite) in epoch {epoch}")]
    NonFinite { epoch: i64, value: f64 },
    #[error("the {} loss is {value} (not finite) in epoch {epoch}, batch {batch}; training stopped, the last good checkpoint is kept", if *validation { "validation" } else { "training" })]
    NonFiniteBatch { epoch: i64, batch: usize, validation: bool, value: f64 },
    #[error("metrics_key `{key}` is not a reported metric; available: {}", available.join(", "))]
    UnknownMetric { key: String, available: Vec<String> },
    #[error("{} holds a previous run (trainer_state.safetensors); set `append: true` to continue it, or choose another run_name", dir.display())]
    ExistingRun { dir: PathBuf },
    #[error("append: only max_epochs and early_stopping* may change when continuing a run, but these differ from {}: {}", dir.display(), keys.join(", "))]
    ChangedKeys { dir: PathBuf, keys: Vec<String> },
    #[error("the previous run in {} has stopped ({reason}); raise max_epochs to continue it", dir.display())]
    Stopped { dir: PathBuf, reason: String },
    #[error("unused keys (typos?): {}", keys.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", "))]
    Unused { keys: Vec<UnusedKey> },
    #[error("trainer state: {0}")]
    State(String),
    #[error(transparent)]
    RunFile(#[from] RunFileError),
}

impl TrainError {
    pub fn io(path: &Path, e: std::io::Error) -> Self {
        TrainError::Io { path: path.into(), source: e }
    }
}

fn count(name: &str, v: Option<Value>) -> Result<Count, TrainError> {
    let v = v.ok_or_else(|| TrainError::Invalid(format!("`{name}` is required (a number of frames or a percentage like \"80%\")")))?;
    yaml::from_value(v.clone()).map_err(|e| TrainError::Invalid(format!("`{name}`: expected a count or a percentage, found {} ({e})", yaml::render(&v))))
}

/// Options of [`trainer_from_config`] given on the command line.
#[derive(Debug, Clone, Default)]
pub struct SetupOptions {
    /// Echo the log to stdout.
    pub echo: bool,
    /// Unused keys are warnings (also the config's `warn_unused`).
    pub warn_unused: bool,
}

/// A fresh or continued trainer for `config` (see the module docs).
pub fn trainer_from_config(mut config: Config, o: &SetupOptions) -> Result<Trainer, TrainError> {
    let g: GlobalOptions = crate::config::resolve::resolve_typed(&Request::new("global options", "GlobalOptions", GlobalOptions::KEYS).all(Args::Config(&config)))?.0;
    let run_name = g.run_name.clone().ok_or_else(|| TrainError::Invalid("`run_name` is required for training".into()))?;
    let run_dir = Path::new(&g.root).join(&run_name);
    let state_path = run_dir.join(STATE_FILE);
    let restart = state_path.is_file();
    if restart && !g.append {
        return Err(TrainError::ExistingRun { dir: run_dir });
    }
    let mut saved: Option<SavedState> = None;
    if restart {
        let old = Config::load(&run_dir.join("config.yaml"))?;
        let changed: Vec<String> = config
            .entries()
            .filter(|(_, e)| matches!(e.source, Source::File { .. }))
            // nequip 0.6.2 also refuses a changed `append` (so it must be true from the start); we allow it
            .filter(|(k, _)| *k != "max_epochs" && *k != "append" && !k.starts_with("early_stop"))
            .filter(|(k, e)| old.get(k).is_some_and(|v| v != &e.value && std::mem::discriminant(v) == std::mem::discriminant(&e.value)))
            .map(|(k, _)| k.to_string())
            .collect();
        if !changed.is_empty() {
            return Err(TrainError::ChangedKeys { dir: run_dir, keys: changed });
        }
        let keep: Vec<(String, Value)> = config.entries().filter(|(k, _)| *k == "max_epochs" || k.starts_with("early_stop")).map(|(k, e)| (k.to_string(), e.value.clone())).collect();
        config = old;
        for (k, v) in keep {
            config.set(&k, v, Source::Cli("append".into()));
        }
        saved = Some(TrainerState::load(&state_path)?);
    } else if run_dir.exists() {
        // nequip 0.6.1+: a run directory without trainer state is an aborted start; start over
        std::fs::remove_dir_all(&run_dir).map_err(|e| TrainError::io(&run_dir, e))?;
    }
    std::fs::create_dir_all(&run_dir).map_err(|e| TrainError::io(&run_dir, e))?;
    if restart {
        // the saved config holds every key written out: consume the global ones again
        let _: GlobalOptions = crate::config::resolve::resolve_typed(&Request::new("global options", "GlobalOptions", GlobalOptions::KEYS).all(Args::Config(&config)))?.0;
    }

    let t: TrainerOptions = crate::config::resolve::resolve_typed(&Request::new("Trainer", "Trainer", TrainerOptions::KEYS).all(Args::Config(&config)))?.0;
    let seed = t.seed.ok_or_else(|| TrainError::Invalid("`seed` is required for training".into()))?;
    super::preflight::refuse(super::preflight::before_data(&config, &t))?;
    let (_, _, device) = crate::model::dtype::dtypes(&config)?;
    let dataset = dataset_plan(&mut config, "dataset")?.ok_or_else(|| TrainError::Invalid("`dataset` is required for training".into()))?.load()?;
    let val_dataset = match dataset_plan(&mut config, "validation_dataset")? {
        Some(p) => Some(p.load()?),
        None => None,
    };
    let mut so = SplitOptions::new(count("n_train", t.n_train.clone())?, count("n_val", t.n_val.clone())?);
    so.dataset_seed = u64::try_from(t.dataset_seed.unwrap_or(seed)).map_err(|_| TrainError::Invalid("`dataset_seed` must be non-negative".into()))?;
    so.train_val_split = match t.train_val_split.as_str() {
        "random" => SplitMode::Random,
        "sequential" => SplitMode::Sequential,
        other => return Err(TrainError::Invalid(format!("`train_val_split` must be random or sequential, got {other:?}"))),
    };
    let positive = |k: &str, v: i64| usize::try_from(v).ok().filter(|&n| n > 0).ok_or_else(|| TrainError::Invalid(format!("`{k}` must be a positive integer, got {v}")));
    so.batch_size = positive("batch_size", t.batch_size)?;
    so.validation_batch_size = positive("validation_batch_size", t.validation_batch_size)?;
    so.shuffle = t.shuffle;
    so.n_train_per_epoch = t.n_train_per_epoch.map(|n| positive("n_train_per_epoch", n)).transpose()?;
    super::preflight::refuse(super::preflight::explicit_indices(&t, dataset.len(), val_dataset.as_ref().map(|d| d.len())))?;
    let mut loader = Loader::new(&so, dataset.len(), val_dataset.as_ref().map(|d| d.len()))?;
    let idcs = |v: &Option<Vec<i64>>| v.as_ref().map(|v| v.iter().map(|&i| i as usize).collect::<Vec<usize>>());
    if let (Some(tr), Some(va)) = (idcs(&t.train_idcs), idcs(&t.val_idcs)) {
        loader.train_idcs = tr;
        loader.val_idcs = va;
    }
    if let Some(s) = &saved {
        loader.train_idcs = s.state.train_idcs.clone();
        loader.val_idcs = s.state.val_idcs.clone();
    }

    let ts = TrainingSet { dataset: &dataset, indices: Some(&loader.train_idcs) };
    let model = crate::model::with_seed(seed, || model_from_config(&mut config, BuildOptions { initialize: !restart, deploy: false, dataset: Some(ts) }))?;
    let loss = Loss::from_coeffs(&t.loss_coeffs)?;
    for k in loss.keys() {
        if !model.irreps_out().contains_key(k) {
            return Err(TrainError::Invalid(format!("loss_coeffs: the model does not output `{k}` (outputs: {})", model.irreps_out().keys().cloned().collect::<Vec<_>>().join(", "))));
        }
    }
    let train_metrics = Metrics::new(t.metrics_components.as_ref(), &loss)?;
    let val_metrics = Metrics::new(t.metrics_components.as_ref(), &loss)?;
    let optimizer = optimizer_from_config(&config, &t.optimizer_name, t.learning_rate)?;
    let scheduler = scheduler_from_config(&config, &t.lr_scheduler_name, t.learning_rate)?;
    let params = model.parameters();
    let ema = t.use_ema.then(|| Ema::new(&params, t.ema_decay, t.ema_use_num_updates));
    let early_stopping = EarlyStopping::from_config(&config).map_err(TrainError::Invalid)?;
    super::preflight::refuse(super::preflight::metric_names(&t, early_stopping.as_ref(), &loss, &train_metrics, Some(&dataset.type_mapper.type_names)))?;
    let max_gradient_norm = match &t.max_gradient_norm {
        None | Some(Value::Null) => f64::INFINITY,
        Some(v) => v.as_f64().ok_or_else(|| TrainError::Invalid(format!("`max_gradient_norm` must be a number, got {}", yaml::render(v))))?,
    };
    // written by the builders, read by nobody (nequip keeps them for the record)
    for k in ["log", "equivariance_test", "var_num_neighbors", "var_num_atoms"] {
        let _ = config.take(k, "train");
    }
    let known = crate::registry::known_key_names();
    let unused = config.unused_keys(known.iter().map(String::as_str));
    if !unused.is_empty() && !(o.warn_unused || g.warn_unused) {
        return Err(TrainError::Unused { keys: unused });
    }
    let type_names: Vec<String> = dataset.type_mapper.type_names.clone();
    // nequip's `verbose`: debug/info show the epoch tables, warning and above keep stdout quiet
    let echo = o.echo && matches!(g.verbose.to_lowercase().as_str(), "debug" | "info");
    let mut tr = Trainer {
        files: RunFiles::open(&run_dir, saved.as_ref().map(|s| s.state.files.as_ref()), echo)?,
        config,
        model,
        params,
        run_dir: run_dir.clone(),
        dataset,
        val_dataset,
        loader,
        loss,
        train_metrics,
        val_metrics,
        optimizer,
        scheduler,
        scheduler_name: t.lr_scheduler_name.clone(),
        ema,
        early_stopping,
        state: ProgressState { epoch: -1, best_metric: f64::INFINITY, best_epoch: -1, cumulative_wall: 0.0, lr: t.learning_rate, stop_reason: None },
        max_epochs: t.max_epochs,
        metrics_key: t.metrics_key.clone(),
        max_gradient_norm,
        report_init_validation: t.report_init_validation,
        log_batch_freq: t.log_batch_freq,
        log_epoch_freq: t.log_epoch_freq,
        save_checkpoint_freq: t.save_checkpoint_freq,
        save_ema_checkpoint_freq: t.save_ema_checkpoint_freq,
        exclude_keys: t.exclude_keys.clone(),
        device,
        type_names,
    };
    for u in &unused {
        tr.log_line(&format!("warning: unused key {u}"))?;
    }
    // as `nequip config check` reports them; on stderr too when the log is not on stdout
    for n in super::preflight::notes(&tr.config) {
        tr.log_line(&format!("note: {n}"))?;
        if !echo {
            eprintln!("note: {n}");
        }
    }
    match saved {
        Some(s) => tr.restore(s)?,
        None => tr.config.save(&run_dir.join("config.yaml"))?,
    }
    Ok(tr)
}

/// Write a model file of the current weights (the EMA weights with `ema`, when used).
pub fn save_model(tr: &mut Trainer, name: &str, ema: bool) -> Result<(), TrainError> {
    let swap = ema && tr.ema.is_some();
    if swap {
        if let Some(e) = tr.ema.as_mut() {
            e.swap(&tr.params);
        }
    }
    let r = model_file::save(&tr.run_dir.join(name), &tr.model, &tr.config);
    if swap {
        if let Some(e) = tr.ema.as_mut() {
            e.swap(&tr.params);
        }
    }
    Ok(r?)
}
