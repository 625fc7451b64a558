//! Rescaling builders: port of `nequip/model/_scaling.py` (nequip 0.6.2) — `PerSpeciesRescale`
//! (per-type scale/shift of atomic energies, inserted before `total_energy_sum`) and
//! `RescaleEnergyEtc` (global scale of energies/forces/stress, shift of the total energy).
//! Statistic names (`dataset_per_atom_total_energy_mean`, `dataset_forces_rms`, ...) are
//! computed on the training set when initializing; otherwise placeholders (1 / 0) are used and
//! the real values come from a state dict.

use nequip_core::config::{Config, Value};
use nequip_core::data::keys::*;
use nequip_core::model::dtype::dtypes;
use nequip_core::model::module_context;
use nequip_core::nn::rescale::{RescaleOptions, RescaleOutput};
use nequip_core::nn::{GraphModule, IrrepsDict, LayerSpec, Position, SequentialGraphNetwork};
use nequip_core::registry::{BuildError, TrainingSet};
use nequip_core::{auto_init, builder};

const RESCALE_THRESHOLD: f64 = 1e-6;

fn invalid(builder: &str, message: impl Into<String>) -> BuildError {
    BuildError::Invalid { builder: builder.into(), message: message.into() }
}

/// A scale or shift option: a statistic name, a number, a list, or null.
#[derive(Debug, Clone)]
enum Amount {
    None,
    Stat(String),
    Values(Vec<f64>),
}

fn amount(v: &Value, key: &str, builder: &str) -> Result<Amount, BuildError> {
    let bad = || invalid(builder, format!("`{key}` must be null, a number, a list of numbers or a statistic name like dataset_forces_rms, got {}", nequip_core::config::yaml::render(v)));
    Ok(match v {
        Value::Null => Amount::None,
        Value::String(s) => Amount::Stat(s.clone()),
        Value::Number(n) => Amount::Values(vec![n.as_f64().ok_or_else(bad)?]),
        Value::Sequence(s) => Amount::Values(s.iter().map(|x| x.as_f64().ok_or_else(bad)).collect::<Result<_, _>>()?),
        _ => return Err(bad()),
    })
}

/// The values of an amount: statistics computed on the training set when initializing;
/// placeholders (`placeholder`) otherwise.
fn values(a: &Amount, initialize: bool, placeholder: f64, dataset: Option<TrainingSet<'_>>, stride: usize, alpha: Option<f64>, builder: &str) -> Result<Option<Vec<f64>>, BuildError> {
    match (a, initialize) {
        (Amount::None, _) => Ok(None),
        (_, false) => Ok(Some(vec![placeholder])),
        (Amount::Values(v), true) => Ok(Some(v.clone())),
        (Amount::Stat(name), true) => {
            let ds = dataset.ok_or_else(|| invalid(builder, format!("`{name}` needs the training dataset to compute")))?;
            Ok(Some(ds.dataset.dataset_statistic(name, ds.indices, stride, alpha)?))
        }
    }
}

fn stride(config: &Config, builder: &str) -> usize {
    config.take("dataset_statistics_stride", builder).and_then(Value::as_u64).unwrap_or(1).max(1) as usize
}

/// Keys of `PerSpeciesRescale` (prefix `per_species_rescale`).
#[auto_init(prefix = "per_species_rescale")]
pub struct PerSpeciesRescaleKeys {
    /// Per-type scales of the atomic energies: a statistic, a number, a list or null.
    #[key(default = Value::Null)]
    pub scales: Value,
    /// Per-type shifts: a statistic (default: the per-atom mean of the total energy), a number, a list or null.
    #[key(default = "dataset_per_atom_total_energy_mean")]
    pub shifts: Value,
    /// Must be true (nequip's removed option).
    #[key(default = true)]
    pub arguments_in_dataset_units: bool,
    /// Statistic options per field, e.g. `{total_energy: {alpha: 0.001}}` for the ridge regression.
    #[key(default = nequip_core::config::Mapping::new(), plain = true)]
    pub kwargs: nequip_core::config::Mapping,
}

/// Add per-species scale and shift of the atomic energies (before `total_energy_sum`).
#[builder(name = "PerSpeciesRescale", kind = model_builder)]
pub fn per_species_rescale(model: Box<dyn GraphModule>, config: &mut Config, initialize: bool, dataset: Option<TrainingSet<'_>>, keys: PerSpeciesRescaleKeys) -> Result<Box<dyn GraphModule>, BuildError> {
    const B: &str = "PerSpeciesRescale";
    let builders = config.get("model_builders").cloned();
    let has_global = builders.as_ref().and_then(Value::as_sequence).is_some_and(|s| s.iter().any(|b| b.as_str() == Some("RescaleEnergyEtc")));
    if has_global && config.get("global_rescale_shift").is_some_and(|v| !v.is_null()) && !keys.shifts.is_null() {
        return Err(invalid(B, "a global_rescale_shift was given, but the per-species energy shift was not disabled (set per_species_rescale_shifts: null)"));
    }
    if !keys.arguments_in_dataset_units {
        return Err(invalid(B, "per_species_rescale_arguments_in_dataset_units must be true"));
    }
    let type_name = model.type_name().to_string();
    let mut sgn = model.into_any().downcast::<SequentialGraphNetwork>().map_err(|_| {
        invalid(B, format!("it inserts `per_species_rescale` into the energy model's SequentialGraphNetwork, but the model is already wrapped in a {type_name}: put PerSpeciesRescale before ForceOutput / StressForceOutput / PartialForceOutput / RescaleEnergyEtc"))
    })?;
    if sgn.get("total_energy_sum").is_none() {
        return Err(invalid(B, "the model has no `total_energy_sum` layer to insert the rescaling before"));
    }
    let alpha = keys.kwargs.get("total_energy").and_then(|m| m.get("alpha")).and_then(Value::as_f64);
    let st = stride(config, B);
    let scales = values(&amount(&keys.scales, "per_species_rescale_scales", B)?, initialize, 1.0, dataset, st, alpha, B)?;
    let shifts = values(&amount(&keys.shifts, "per_species_rescale_shifts", B)?, initialize, 0.0, dataset, st, alpha, B)?;
    if let Some(s) = &scales {
        if s.iter().any(|x| *x < RESCALE_THRESHOLD) {
            return Err(invalid(B, format!("per-species scaling is very low: {s:?}; maybe set per_species_rescale_scales: 1")));
        }
    }
    let seq = |v: Option<Vec<f64>>| v.map(|v| Value::Sequence(v.into_iter().map(Value::from).collect())).unwrap_or(Value::Null);
    let spec = LayerSpec::new("per_species_rescale", "PerSpeciesScaleShift")
        .param("field", PER_ATOM_ENERGY_KEY)
        .param("out_field", PER_ATOM_ENERGY_KEY)
        .param("shifts", seq(shifts))
        .param("scales", seq(scales))
        .param("arguments_in_dataset_units", true);
    let ctx = module_context(config, "per_species_rescale", IrrepsDict::new())?;
    sgn.insert_from_parameters(config, &spec, Position::Before("total_energy_sum"), &ctx)?;
    Ok(sgn)
}

/// Keys of `RescaleEnergyEtc` (prefix `global_rescale`).
#[auto_init(prefix = "global_rescale")]
pub struct GlobalRescaleKeys {
    /// Global scale: a statistic (default `dataset_forces_rms`, or `dataset_total_energy_std`
    /// for a model without forces), a number, or null.
    #[key(default = "dataset_forces_rms")]
    pub scale: Value,
    /// Global shift of the total energy (null: none; makes the model not size-extensive).
    #[key(default = Value::Null)]
    pub shift: Value,
    #[key(default = false)]
    pub scale_trainable: bool,
    #[key(default = false)]
    pub shift_trainable: bool,
}

/// Global rescaling of energy-like outputs (`RescaleOutput`); must be the last `model` builder.
#[builder(name = "RescaleEnergyEtc", kind = model_builder)]
pub fn rescale_energy_etc(model: Box<dyn GraphModule>, config: &mut Config, initialize: bool, dataset: Option<TrainingSet<'_>>, keys: GlobalRescaleKeys) -> Result<Box<dyn GraphModule>, BuildError> {
    const B: &str = "RescaleEnergyEtc";
    let has_forces = model.irreps_out().contains_key(FORCE_KEY);
    let scale_v = if !config.contains("global_rescale_scale") && !has_forces { Value::String(format!("dataset_{TOTAL_ENERGY_KEY}_std")) } else { keys.scale.clone() };
    let st = stride(config, B);
    let scale = values(&amount(&scale_v, "global_rescale_scale", B)?, initialize, 1.0, dataset, st, None, B)?;
    let shift = values(&amount(&keys.shift, "global_rescale_shift", B)?, initialize, 0.0, dataset, st, None, B)?;
    for (what, v) in [("scale", &scale), ("shift", &shift)] {
        if let Some(v) = v {
            if v.len() != 1 {
                return Err(invalid(B, format!("the global {what} must be a single number, got {v:?}")));
            }
        }
    }
    if let Some(s) = &scale {
        if s[0] < RESCALE_THRESHOLD {
            return Err(invalid(B, format!("global energy scaling is very low: {}; does the dataset lack variation? Disable it with global_rescale_scale: null", s[0])));
        }
    }
    let out = model.irreps_out().clone();
    let o = RescaleOptions {
        scale_keys: ALL_ENERGY_KEYS.iter().filter(|k| out.contains_key(**k)).map(|k| k.to_string()).collect(),
        shift_keys: [TOTAL_ENERGY_KEY].iter().filter(|k| out.contains_key(**k)).map(|k| k.to_string()).collect(),
        scale_by: scale,
        shift_by: shift,
        scale_trainable: keys.scale_trainable,
        shift_trainable: keys.shift_trainable,
    };
    let (_, default_kind, device) = dtypes(config)?;
    Ok(Box::new(RescaleOutput::new(model, o, default_kind, device)?))
}
