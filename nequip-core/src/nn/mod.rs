//! NequIP's neural-network building blocks (`nequip/nn/`).
//!
//! | module | what | mirrors |
//! |---|---|---|
//! | [`graph`] | the graph-module trait, irreps dictionaries, parameter stores | `nequip/nn/_graph_mixin.py::GraphModuleMixin` |
//! | [`module`] | registered modules (`nn_module`, `radial_function` kinds) built from config keys | `SequentialGraphNetwork.from_parameters` + `instantiate` |
//! | [`sequential`] | `SequentialGraphNetwork` (append / insert) | `nequip/nn/_graph_mixin.py` |
//! | [`graph_model`] | `GraphModel` (input filtering, dtype, state dict) | `nequip/nn/_graph_model.py` |
//! | [`grad_output`] | `GradientOutput`, `PartialForceOutput`, `StressOutput` | `nequip/nn/_grad_output.py` |
//! | [`rescale`] | `RescaleOutput` | `nequip/nn/_rescale.py` |
//! | [`radial`], [`interaction`], [`convnet`] | the math of the edge embedding, interaction block, convolution layer | `nequip/nn/radial_basis.py`, `cutoffs.py`, `_interaction_block.py`, `_convnetlayer.py` |
//!
//! The registered graph modules (`OneHotAtomEncoding`, `AtomwiseLinear`, `ConvNetLayer`, ...)
//! live in `nequip-plugins`, built on these.

pub mod convnet;
pub mod grad_output;
pub mod graph;
pub mod graph_model;
pub mod interaction;
pub mod module;
pub mod radial;
pub mod rescale;
pub mod sequential;

pub use graph::{GraphIrreps, GraphModule, IrrepsDict, ModelError, ModuleContext, NamedTensor, Params};
pub use graph_model::GraphModel;
pub use module::{LayerSpec, NnModule, RadialBuilder, RadialFunction};
pub use sequential::{Position, SequentialGraphNetwork};
