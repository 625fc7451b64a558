//! Model builders (`nequip/model/`), registered with `#[builder(kind = model_builder)]` and
//! run by `nequip_core::model::model_from_config` in the order of `model_builders`.
//!
//! | file | registers | mirrors |
//! |---|---|---|
//! | [`simple_irreps`] | `SimpleIrrepsConfig` | `nequip/model/_eng.py` |
//! | [`energy`] | `EnergyModel` | `nequip/model/_eng.py`, `builder_utils.py` |
//! | [`rescale`] | `PerSpeciesRescale`, `RescaleEnergyEtc` | `nequip/model/_scaling.py` |
//! | [`pair`] | `PairPotentialTerm`, `PairPotential` | `nequip/model/_pair_potential.py` |
//! | [`outputs`] | `ForceOutput`, `PartialForceOutput`, `StressForceOutput` | `nequip/model/_grads.py` |
//! | [`state`] | `initialize_from_state`, `load_model_state` | `nequip/model/_weight_init.py` |

pub mod energy;
pub mod outputs;
pub mod pair;
pub mod rescale;
pub mod simple_irreps;
pub mod state;
