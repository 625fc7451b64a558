//! The checks made before the first training step that need no data, shared by `nequip train`
//! ([`super::setup`]) and `nequip config check` ([`crate::check`]): both call these functions,
//! so they give the same verdict with the same message.
//!
//! - keys nequip 0.6.2 accepts but nequip-rs does not implement: refused by name when they ask
//!   for something that would change the run ([`refused_keys`]), reported as a note when they
//!   only ask for Python-side logging or tuning ([`notes`]);
//! - trainer options torch or nequip would refuse, or that would be silently dropped
//!   ([`trainer_options`]);
//! - metric names used by `metrics_key` and early stopping exist ([`metric_names`]).

use super::early_stopping::EarlyStopping;
use super::loss_fn::{abbrev, Loss};
use super::metrics::Metrics;
use super::options::TrainerOptions;
use super::setup::TrainError;
use crate::config::{defaults, yaml, Config, Source, Value};

/// Training's verdict on a list of problems: the first check that finds any stops the setup,
/// with every problem it found, one line each.
pub fn refuse(problems: Vec<String>) -> Result<(), TrainError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(TrainError::Invalid(problems.join("\n")))
    }
}

/// Everything checked before the data is loaded: [`refused_keys`] and [`trainer_options`].
pub fn before_data(config: &Config, t: &TrainerOptions) -> Vec<String> {
    let mut out = refused_keys(config, t);
    let loss = Loss::from_coeffs(&t.loss_coeffs).ok();
    out.extend(trainer_options(t, loss.as_ref()));
    out
}

/// A feature nequip 0.6.2 has and nequip-rs refuses when it is switched on.
const REFUSED_FLAGS: &[(&str, &str)] = &[
    ("model_debug_mode", "nequip's shape checks in every module"),
    ("grad_anomaly_mode", "autograd anomaly detection"),
    ("gpu_oom_offload", "offloading saved tensors to CPU memory"),
    ("tensorboard", "TensorBoard logging"),
];

fn is_off(v: &Value) -> bool {
    matches!(v, Value::Null | Value::Bool(false))
}

/// Errors for keys that ask for a nequip feature nequip-rs does not implement (one message per
/// key, naming it). Keys left at their defaults are never refused.
pub fn refused_keys(config: &Config, t: &TrainerOptions) -> Vec<String> {
    let mut out = Vec::new();
    for (k, what) in REFUSED_FLAGS {
        if let Some(e) = config.entry(k) {
            if e.source != Source::Default && !is_off(&e.value) {
                out.push(format!("`{k}: {}` ({what}) is not supported by nequip-rs; remove it or set it to false", yaml::render(&e.value)));
            }
        }
    }
    let lists = [
        ("init_callbacks", &t.init_callbacks),
        ("start_of_epoch_callbacks", &t.start_of_epoch_callbacks),
        ("end_of_epoch_callbacks", &t.end_of_epoch_callbacks),
        ("end_of_batch_callbacks", &t.end_of_batch_callbacks),
        ("end_of_train_callbacks", &t.end_of_train_callbacks),
        ("final_callbacks", &t.final_callbacks),
    ];
    for (k, v) in lists {
        if !v.is_empty() {
            out.push(format!("`{k}`: callbacks are Python objects in nequip and are not supported by nequip-rs (remove them)"));
        }
    }
    // the log file's name: nequip-rs always writes `root/run_name/log`
    if let Some(e) = config.entry("log") {
        if e.source != Source::Default && !matches!(&e.value, Value::Null) && e.value.as_str() != Some("log") {
            out.push(format!("`log: {}` (another name for the log file) is not supported by nequip-rs: the log is always `log` in the run directory; remove the key", yaml::render(&e.value)));
        }
    }
    // torch's `last_epoch` (resume a schedule part-way): only its default is accepted
    for (k, v) in last_epoch(config) {
        if v.as_i64() == Some(-1) {
            let _ = config.take(&k, "Trainer");
        } else {
            out.push(format!("`{k}: {}` (starting the learning-rate schedule part-way) is not supported by nequip-rs; remove it (continue a run with `append: true`)", yaml::render(&v)));
        }
    }
    out
}

/// `lr_scheduler_last_epoch` and `lr_scheduler_kwargs.last_epoch`, where given.
fn last_epoch(config: &Config) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    if let Some(v) = config.get("lr_scheduler_last_epoch") {
        out.push(("lr_scheduler_last_epoch".to_string(), v.clone()));
    }
    if let Some(Value::Mapping(m)) = config.get("lr_scheduler_kwargs") {
        if let Some(v) = m.get("last_epoch") {
            out.push(("lr_scheduler_kwargs.last_epoch".to_string(), v.clone()));
        }
    }
    out
}

/// Notes for Python-only keys set by the user to something other than "off" (accepted, no
/// effect: logging and tuning of the Python implementation).
pub fn notes(config: &Config) -> Vec<String> {
    config
        .entries()
        .filter(|(_, e)| e.source != Source::Default)
        .filter_map(|(k, e)| defaults::python_only_note(k, &e.value))
        .collect()
}

/// Trainer options that torch or nequip would refuse, or that nequip-rs would otherwise drop
/// without a word. `loss` is the parsed `loss_coeffs` (for `train_on_keys`), when it parses.
pub fn trainer_options(t: &TrainerOptions, loss: Option<&Loss>) -> Vec<String> {
    let mut out = Vec::new();
    if !(t.learning_rate >= 0.0) {
        out.push(format!("`learning_rate` must be a non-negative number (torch's optimizers refuse a negative one), got {}", t.learning_rate));
    }
    match (&t.train_idcs, &t.val_idcs) {
        (Some(_), None) => out.push("`train_idcs` is given without `val_idcs`: give both explicit index lists, or neither".into()),
        (None, Some(_)) => out.push("`val_idcs` is given without `train_idcs`: give both explicit index lists, or neither".into()),
        _ => {}
    }
    for (k, v) in [("train_idcs", &t.train_idcs), ("val_idcs", &t.val_idcs)] {
        if let Some(i) = v.as_ref().and_then(|v| v.iter().find(|&&i| i < 0)) {
            out.push(format!("`{k}`: index {i} is negative (frame indices count from 0)"));
        }
    }
    if let (Some(keys), Some(loss)) = (&t.train_on_keys, loss) {
        let mut want: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut have = loss.keys();
        want.sort_unstable();
        want.dedup();
        have.sort_unstable();
        have.dedup();
        if want != have {
            out.push(format!("`train_on_keys` [{}] differs from the keys of `loss_coeffs` [{}]: the model is trained on the loss keys (as in nequip); remove `train_on_keys` or make it match", want.join(", "), have.join(", ")));
        }
    }
    out
}

/// Explicit indices within the datasets (`n_frames` of the training dataset, `n_val_frames`
/// of the validation dataset when there is one). Needs the data, so only training checks it.
pub fn explicit_indices(t: &TrainerOptions, n_frames: usize, n_val_frames: Option<usize>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v, n, what) in [("train_idcs", &t.train_idcs, n_frames, "the dataset"), ("val_idcs", &t.val_idcs, n_val_frames.unwrap_or(n_frames), if n_val_frames.is_some() { "the validation dataset" } else { "the dataset" })] {
        if let Some(i) = v.as_ref().and_then(|v| v.iter().find(|&&i| i >= n as i64)) {
            out.push(format!("`{k}`: index {i} is out of range: {what} has {n} frames (indices 0..{})", n.saturating_sub(1)));
        }
    }
    out
}

/// Every metric name an epoch reports (what `metrics_key` and early stopping may name);
/// per-species names need `type_names` (placeholders `<type>` without them), per-component
/// names are shown as `name_<i>`.
pub fn epoch_metric_names(loss: &Loss, metrics: &Metrics, type_names: Option<&[String]>) -> Vec<String> {
    let mut per_pass = vec!["loss".to_string()];
    per_pass.extend(loss.keys().iter().map(|k| format!("loss_{}", abbrev(k))));
    per_pass.extend(metrics.names(type_names));
    let mut out: Vec<String> = ["epoch", "wall", "LR", "cumulative_wall"].iter().map(|s| s.to_string()).collect();
    for p in ["training_", "validation_"] {
        out.extend(per_pass.iter().map(|n| format!("{p}{n}")));
    }
    out
}

/// `name` matches a metric pattern (`<i>`: digits, `<type>`: a type name).
fn matches(pattern: &str, name: &str) -> bool {
    fn go(p: &str, n: &str) -> bool {
        for (ph, ok) in [("<i>", char::is_ascii_digit as fn(&char) -> bool), ("<type>", |c: &char| c.is_alphanumeric())] {
            if let Some(rest) = p.strip_prefix(ph) {
                let max = n.chars().take_while(|c| ok(c)).count();
                return (1..=max).any(|k| go(rest, &n[n.char_indices().nth(k).map_or(n.len(), |(i, _)| i)..]));
            }
        }
        match (p.chars().next(), n.chars().next()) {
            (None, None) => true,
            (Some(a), Some(b)) if a == b => go(&p[a.len_utf8()..], &n[b.len_utf8()..]),
            _ => false,
        }
    }
    go(pattern, name)
}

/// `metrics_key` and every metric early stopping watches are names an epoch reports.
pub fn metric_names(t: &TrainerOptions, es: Option<&EarlyStopping>, loss: &Loss, metrics: &Metrics, type_names: Option<&[String]>) -> Vec<String> {
    let names = epoch_metric_names(loss, metrics, type_names);
    let known = |k: &str| names.iter().any(|p| matches(p, k));
    let list = names.join(", ");
    let mut out = Vec::new();
    if !known(&t.metrics_key) {
        out.push(format!("metrics_key `{}` is not a reported metric; available: {list}", t.metrics_key));
    }
    if let Some(es) = es {
        for (what, keys) in [("early_stopping_patiences", es.patiences.keys().collect::<Vec<_>>()), ("early_stopping_lower_bounds", es.lower_bounds.keys().collect()), ("early_stopping_upper_bounds", es.upper_bounds.keys().collect())] {
            for k in keys {
                if !known(k) {
                    out.push(format!("{what}: `{k}` is not a reported metric; available: {list}"));
                }
            }
        }
    }
    out
}
