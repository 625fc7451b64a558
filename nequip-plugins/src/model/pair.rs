//! Pair-potential model builders: port of `nequip/model/_pair_potential.py` (nequip 0.6.2).
//!
//! `pair_style` picks the module: `LJ` → `SimpleLennardJones`, `LJ_fancy` → `LennardJones`,
//! `ZBL` → `ZBL` (see [`crate::nn::pair`]); its keys are resolved with the prefixes
//! `[ClassName, pair_potential]` (`LennardJones_lj_sigma`, `pair_potential_lj_sigma`).
//!
//! * `PairPotentialTerm` adds the pair energy to another energy model: it inserts a
//!   `pair_potential` layer before the `total_energy_sum` of its `SequentialGraphNetwork`.
//! * `PairPotential` is a model of its own: `cutoff` (`AddRadialCutoffToData`) →
//!   `pair_potential` → `total_energy_sum` (sum of `atomic_energy` into `total_energy`).

// `BuildError` is the framework's error type, shared by every builder.

use nequip_core::config::Config;
use nequip_core::data::keys::*;
use nequip_core::model::module_context;
use nequip_core::nn::{GraphModule, IrrepsDict, LayerSpec, Position, SequentialGraphNetwork};
use nequip_core::registry::BuildError;
use nequip_core::{auto_init, builder};

/// `pair_style` → registered module class (nequip's `_PAIR_STYLES`).
pub const PAIR_STYLES: &[(&str, &str)] = &[("LJ", "SimpleLennardJones"), ("LJ_fancy", "LennardJones"), ("ZBL", "ZBL")];

/// Keys of `PairPotentialTerm` and `PairPotential`.
#[auto_init]
pub struct PairStyleKeys {
    /// The pair potential: `LJ` (SimpleLennardJones), `LJ_fancy` (LennardJones) or `ZBL`.
    pub pair_style: String,
}

fn invalid(builder: &str, message: impl Into<String>) -> BuildError {
    BuildError::Invalid { builder: builder.into(), message: message.into() }
}

/// The module class of a `pair_style`, or an error listing the styles.
pub fn pair_class(style: &str, builder: &str) -> Result<&'static str, BuildError> {
    PAIR_STYLES.iter().find(|(s, _)| *s == style).map(|(_, c)| *c).ok_or_else(|| {
        let styles: Vec<String> = PAIR_STYLES.iter().map(|(s, c)| format!("{s} ({c})")).collect();
        invalid(builder, format!("unknown pair_style {style:?}; expected one of {}", styles.join(", ")))
    })
}

/// Add a pair potential to the energy model (a `pair_potential` layer before `total_energy_sum`).
#[builder(name = "PairPotentialTerm", kind = model_builder)]
pub fn pair_potential_term(model: Box<dyn GraphModule>, config: &Config, keys: PairStyleKeys) -> Result<Box<dyn GraphModule>, BuildError> {
    const B: &str = "PairPotentialTerm";
    let class = pair_class(&keys.pair_style, B)?;
    let type_name = model.type_name().to_string();
    let mut sgn = model.into_any().downcast::<SequentialGraphNetwork>().map_err(|_| {
        invalid(B, format!("it inserts `pair_potential` into the energy model's SequentialGraphNetwork, but the model is already wrapped in a {type_name}: put PairPotentialTerm before ForceOutput / StressForceOutput / PartialForceOutput / RescaleEnergyEtc"))
    })?;
    if sgn.get("total_energy_sum").is_none() {
        return Err(invalid(B, format!("the model has no `total_energy_sum` layer to insert the pair potential before (layers: {})", sgn.names().join(", "))));
    }
    let spec = LayerSpec::new("pair_potential", class);
    let ctx = module_context(config, "pair_potential", IrrepsDict::new())?;
    sgn.insert_from_parameters(config, &spec, Position::Before("total_energy_sum"), &ctx)?;
    Ok(sgn)
}

/// A pure pair-potential model: `cutoff` → `pair_potential` → `total_energy_sum`.
#[builder(name = "PairPotential", kind = model_builder)]
pub fn pair_potential(config: &Config, keys: PairStyleKeys) -> Result<Box<dyn GraphModule>, BuildError> {
    let class = pair_class(&keys.pair_style, "PairPotential")?;
    let layers = [
        LayerSpec::new("cutoff", "AddRadialCutoffToData"),
        LayerSpec::new("pair_potential", class),
        LayerSpec::new("total_energy_sum", "AtomwiseReduce").param("reduce", "sum").param("field", PER_ATOM_ENERGY_KEY).param("out_field", TOTAL_ENERGY_KEY),
    ];
    let ctx = module_context(config, "PairPotential", IrrepsDict::new())?;
    Ok(Box::new(SequentialGraphNetwork::from_parameters(config, &layers, IrrepsDict::new(), &ctx)?))
}
