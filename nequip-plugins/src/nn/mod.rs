//! Graph modules (`nequip/nn/`), registered with `#[builder(kind = nn_module)]` so that
//! `SequentialGraphNetwork.from_parameters` layers (and users' own builders) name them;
//! radial bases and cutoffs with `kind = radial_function`.
//!
//! | file | registers | mirrors |
//! |---|---|---|
//! | [`embedding`] | `OneHotAtomEncoding`, `SphericalHarmonicEdgeAttrs`, `RadialBasisEdgeEncoding`, `AddRadialCutoffToData`, `BesselBasis`, `PolynomialCutoff` | `nequip/nn/embedding/`, `radial_basis.py`, `cutoffs.py` |
//! | [`atomwise`] | `AtomwiseLinear`, `AtomwiseReduce`, `PerSpeciesScaleShift` | `nequip/nn/_atomwise.py` |
//! | [`convnet`] | `ConvNetLayer`, `InteractionBlock` | `nequip/nn/_convnetlayer.py`, `_interaction_block.py` |
//! | [`pair`] | `SimpleLennardJones`, `LennardJones`, `ZBL` | `nequip/nn/pair_potential.py` |

pub mod atomwise;
pub mod convnet;
pub mod embedding;
pub mod pair;

use nequip_core::e3nn::Irreps;
use nequip_core::nn::ModelError;

pub(crate) use nequip_core::graph_module_boilerplate;

/// Parse an irreps key, the error naming the module and the key.
pub fn parse_irreps(s: &str, module: &str, key: &str) -> Result<Irreps, ModelError> {
    s.parse().map_err(|e| ModelError::invalid(module, format!("`{key}`: {e}")))
}
