//! nequip-core: the framework of nequip-rs.
//!
//! | module | what | mirrors |
//! |---|---|---|
//! | [`config`] | YAML config tree, defaults, key tracking, the key resolver | `nequip/utils/config.py`, `nequip/utils/auto_init.py` |
//! | [`registry`] | the registry of builders filled by `#[builder]` | `nequip/model/_build.py` name lookup, `instantiate_from_cls_name` |
//! | [`e3nn`] | irreps, spherical harmonics, tensor products, ... | `e3nn/o3`, `e3nn/nn`, `e3nn/math` |
//! | [`data`] | atomic data, neighbor lists, datasets, statistics | `nequip/data/` |
//! | [`nn`] | NequIP's network building blocks, graph modules, `GraphModel` | `nequip/nn/` |
//! | [`model`] | `model_from_config`: running `model_builders` | `nequip/model/_build.py` |
//! | [`io`] | reading torch checkpoints (zip + pickle) | `torch.save` format |
//! | [`potential`] | the MD inference path: a model file → energy, forces, virial of one structure or an engine's graph | `pair_nequip`, `nequip/ase/nequip_calculator.py` |

// The error enums carry their context (file, key, position, searched names) by value and are
// only built on failure paths, so their size is not worth boxing.
#![allow(clippy::result_large_err)]

pub mod data;
pub mod e3nn;
pub mod io;
pub mod model;
pub mod nn;
pub mod potential;
pub mod check;
pub mod config;
pub mod registry;
pub mod runtime;
pub mod suggest;
pub mod train;

pub use nequip_macros::{auto_init, builder};

/// Paths used by the generated code of `#[builder]` / `#[auto_init]`; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use inventory;
    pub use serde;
}
