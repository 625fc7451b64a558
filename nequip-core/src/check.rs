//! `nequip config check`: resolve everything that can be resolved without data, then report
//! unknown keys, type errors and unknown builder names. Mirrors the key checks nequip 0.6.2 makes
//! while starting a training run (`nequip/scripts/train.py`, `model/_build.py`).
//!
//! Each subsystem contributes one step; a later subsystem (model plan, dataset options, loss
//! terms) adds its step here, so `check` and training consume keys through the same code.

use crate::config::{self, Args, AutoInit, Config, Request, Resolution, Value};
use crate::registry::{self, Kind};

use crate::train::options::{GlobalOptions, TrainerOptions};

/// The outcome of a check: errors (the config would fail), warnings, notes, and every
/// resolution made (for `config explain`).
#[derive(Debug, Default)]
pub struct Report {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
    pub resolutions: Vec<Resolution>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Check a loaded config. `warn_unused` (or the config's `warn_unused: true`) turns unused
/// keys into warnings, as nequip's `--warn-unused`.
pub fn check_config(config: &mut Config, warn_unused: bool) -> Report {
    let mut report = Report::default();
    let global = resolve_struct::<GlobalOptions>(config, "global options", &mut report);
    let trainer = resolve_struct::<TrainerOptions>(config, "Trainer", &mut report);
    check_model_builders(config, &mut report);
    if report.is_clean() {
        check_model(config, &mut report);
    }
    check_loss_coeffs(config, &mut report);
    let type_names = check_dataset(config, "dataset", &mut report);
    check_dataset(config, "validation_dataset", &mut report);
    if let Some(t) = &trainer {
        check_training(config, t, type_names.as_deref(), &mut report);
    }
    report.notes.extend(crate::train::preflight::notes(config));
    let known = registry::known_key_names();
    let unused = config.unused_keys(known.iter().map(String::as_str));
    if !unused.is_empty() {
        let e = config::ConfigError::UnusedKeys { keys: unused };
        let warn_only = warn_unused || global.is_some_and(|g| g.warn_unused);
        if warn_only {
            report.warnings.push(e.to_string());
        } else {
            report.errors.push(e.to_string());
        }
    }
    report
}

/// Resolve a key table against the root config (type errors are reported).
fn resolve_struct<T: AutoInit>(config: &Config, component: &str, report: &mut Report) -> Option<T> {
    let mut req = Request::new(component, component, T::KEYS).all(Args::Config(config));
    req.prefixes.extend(T::PREFIX.map(str::to_string));
    match config::resolve(&req).and_then(|r| {
        let t = r.into_typed::<T>();
        report.resolutions.push(r);
        t
    }) {
        Ok(t) => Some(t),
        Err(e) => {
            report.errors.push(e.to_string());
            None
        }
    }
}

/// `model_builders`: every name registered; builders with key tables resolved.
fn check_model_builders(config: &Config, report: &mut Report) {
    let Some(v) = config.take("model_builders", "model_from_config") else { return };
    let names: Vec<String> = match v {
        Value::Sequence(s) => s.iter().map(|x| x.as_str().map(str::to_string).ok_or_else(|| config::yaml::render(x))).collect::<Result<_, _>>().unwrap_or_else(|bad| {
            report.errors.push(format!("{}model_builders: every entry must be a builder name, found {bad}", place(config, "model_builders")));
            Vec::new()
        }),
        other => {
            report.errors.push(format!("{}model_builders: expected a list of builder names, found {}", place(config, "model_builders"), config::yaml::type_name(other)));
            Vec::new()
        }
    };
    for name in names {
        match registry::lookup(Kind::ModelBuilder, &name) {
            Ok(reg) if !reg.keys.is_empty() => {
                let mut req = Request::for_registration(reg.name, reg).all(Args::Config(config));
                req.class_prefix = false;
                match config::resolve(&req) {
                    Ok(r) => report.resolutions.push(r),
                    Err(e) => report.errors.push(e.to_string()),
                }
            }
            Ok(_) => {}
            Err(e) => report.errors.push(format!("{}model_builders: {e}", place(config, "model_builders"))),
        }
    }
}

/// Build the model without data (as for deployment: no statistics), so that every module's
/// keys are resolved and type-checked; `avg_num_neighbors: auto` gets a placeholder.
fn check_model(config: &mut Config, report: &mut Report) {
    let auto = matches!(config.get("avg_num_neighbors"), None | Some(Value::String(_)));
    if auto {
        config.set("avg_num_neighbors", Value::from(1.0), config::Source::SetBy("config check (placeholder for `auto`, computed from the data when training)".into()));
    }
    match crate::model::model_from_config(config, crate::model::BuildOptions::default()) {
        // a list of config-only builders (e.g. only SimpleIrrepsConfig) is checked, not built
        Ok(_) | Err(crate::model::ModelBuildError::NoModel { .. }) => {}
        Err(e) => report.errors.push(format!("building the model: {e}")),
    }
}

/// `loss_coeffs`: every form parses and every loss function is registered with valid parameters.
fn check_loss_coeffs(config: &Config, report: &mut Report) {
    let Some(v) = config.get("loss_coeffs") else { return };
    let at = place(config, "loss_coeffs");
    match crate::train::loss_coeffs::parse_loss_coeffs(v) {
        Ok(terms) => {
            for t in terms {
                if let Err(e) = crate::train::loss::build_loss(&t.func, &t.params) {
                    report.errors.push(format!("{at}loss_coeffs `{}`: {e}", t.key));
                }
            }
        }
        Err(e) => report.errors.push(format!("{at}{e}")),
    }
}

/// The optimizer, scheduler, early stopping and metrics the trainer would build (so their
/// `optimizer_*`, `lr_scheduler_*`, `early_stopping_*` keys are resolved and checked), and
/// the trainer's own checks before its first step ([`crate::train::preflight`]; the range of
/// explicit indices needs the data and is left to training). `type_names`: the dataset's.
fn check_training(config: &Config, t: &TrainerOptions, type_names: Option<&[String]>, report: &mut Report) {
    report.errors.extend(crate::train::preflight::before_data(config, t));
    if let Err(e) = crate::train::optim::optimizer_from_config(config, &t.optimizer_name, t.learning_rate) {
        report.errors.push(e.to_string());
    }
    if let Err(e) = crate::train::optim::scheduler_from_config(config, &t.lr_scheduler_name, t.learning_rate) {
        report.errors.push(e.to_string());
    }
    let early_stopping = crate::train::early_stopping::EarlyStopping::from_config(config).map_err(|e| report.errors.push(e)).ok();
    if let Ok(loss) = crate::train::loss_fn::Loss::from_coeffs(&t.loss_coeffs) {
        match crate::train::metrics::Metrics::new(t.metrics_components.as_ref(), &loss) {
            Ok(metrics) => {
                if let Some(es) = early_stopping {
                    report.errors.extend(crate::train::preflight::metric_names(t, es.as_ref(), &loss, &metrics, type_names));
                }
            }
            Err(e) => report.errors.push(e.to_string()),
        }
    }
}

/// A dataset section: the dataset is registered, its keys and the type mapper resolve, and its
/// file exists (a warning only: it may be downloaded from `dataset_url` or be relative to a
/// different working directory). Returns the type names.
fn check_dataset(config: &mut Config, prefix: &str, report: &mut Report) -> Option<Vec<String>> {
    let mut type_names = None;
    match crate::data::dataset_plan(config, prefix) {
        Ok(None) => {}
        Ok(Some(plan)) => {
            match crate::data::TypeMapper::new(&plan.type_mapper) {
                Ok(tm) => type_names = Some(tm.type_names),
                Err(e) => report.errors.push(format!("{prefix}: {e}")),
            }
            if let Some(Value::String(f)) = plan.resolution.get("file_name") {
                if !std::path::Path::new(f).exists() {
                    report.warnings.push(format!("{prefix}: data file `{f}` does not exist (relative paths are taken from the working directory)"));
                }
            }
            report.resolutions.push(plan.resolution);
        }
        Err(e) => report.errors.push(e.to_string()),
    }
    type_names
}

fn place(config: &Config, key: &str) -> String {
    config.place(key).map(|p| format!("{p}: ")).unwrap_or_default()
}
