//! Equivariant operations: a port of the parts of e3nn 0.5.9 that NequIP uses
//! (`e3nn/o3/`, `e3nn/nn/`, `e3nn/math/`), on tch tensors with autograd.
//!
//! # Design
//! * **Numbers are e3nn's.** Same real basis (polar axis `y`, `Y^1 = sqrt(3)(x, y, z)`,
//!   `D^1(R) = R`), same Wigner 3j signs and normalisation, same mul-major feature layout,
//!   same flat weight layouts (one vector in e3nn's instruction order), same path weights.
//!   The tests compare against e3nn 0.5.9 fixtures at 1e-12 (see
//!   `tests/fixtures/e3nn/README.md`).
//! * **Parameters.** Modules are plain structs holding `tch::Tensor`s. A module with internal
//!   (trainable) weights is created from a `&tch::nn::Path`; it registers its parameters under
//!   e3nn's / PyTorch's names below that path — `Linear`: `weight` (flat `[weight_numel]`) and
//!   `bias`; `TensorProduct`: `weight`; `FullyConnectedNet`: `layer{k}.weight` (`[fan_in, fan_out]`)
//!   — so a nequip `state_dict` loads by name into the `VarStore`
//!   (`model.func.layer0_convnet.conv.linear_1.weight` etc.). The kind (f32/f64) and device of
//!   the parameters are the path's (`VarStore::set_kind` before building). Modules with
//!   external weights take them as a `forward` argument instead and hold no parameters.
//!   Constant buffers (Clebsch–Gordan blocks, gather indices) are kept in f64/i64 and cast to
//!   the input's kind and device on use, so every module works in f32 and f64 on any device.
//! * **Autograd.** Every forward is built from differentiable libtorch ops (no in-place
//!   writes to inputs, no detach), so first and second derivatives flow through — except
//!   NequIP's convolution on the CPU, one native kernel (`csrc/uvu_native.cpp`, see
//!   `uvu_native.rs`) whose autograd node's derivatives are again that kernel (any order).
//! * **Speed.** The per-edge `uvu` tensor product (NequIP's convolution) is that native kernel
//!   on the CPU and a few batched libtorch ops for all paths at once elsewhere (see
//!   [`tensor_product`], [`conv`]), not one kernel per path. Small shared-weight maps
//!   (`Linear`, the self-connection) run as one gathered dense matrix (`dense_map.rs`), and
//!   constants enter as cached 0-dim tensors ([`scalars`]): for small models the number of
//!   dispatched libtorch operators is the cost (`nequip benchmark --op-census`).

// `x = x + y` is kept out of place on purpose: tch's `+=` is an in-place libtorch op, which
// can break autograd on non-leaf tensors.
#![allow(clippy::assign_op_pattern)]

pub mod activation;
pub mod conv;
mod dense_map;
pub mod gate;
pub mod irreps;
pub mod linear;
pub mod nn;
mod scalar_tp;
pub mod scalars;
pub mod spherical_harmonics;
pub mod tensor_product;
pub mod testing;
mod tp_kernels;
mod uvu_messages;
mod uvu_native;
pub mod wigner;

pub use activation::{Act, NormActivation, ShiftedSoftPlus};
pub use conv::FusedConvolution;
pub use gate::Gate;
pub use irreps::{Irrep, Irreps, MulIr, SortedIrreps};
pub use linear::Linear;
pub use nn::FullyConnectedNet;
pub use spherical_harmonics::{spherical_harmonics, ShNormalization, SphericalHarmonics};
pub use tensor_product::{ConnectionMode, Instruction, TensorProduct};
pub use wigner::{angles_to_matrix, rand_angles, wigner_3j, wigner_d};

/// Errors of the equivariant layer (bad user input; never a panic).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum E3nnError {
    /// An irrep string like `"1x"` or `"2q"`.
    #[error("unable to convert string {0:?} into an Irrep")]
    BadIrrep(String),
    /// An irreps string like `"16x0e+x1o"`.
    #[error("unable to convert string {0:?} into an Irreps")]
    BadIrreps(String),
    /// A parity other than ±1.
    #[error("parity must be 1 or -1, got {0}")]
    BadParity(i32),
    /// `|l1 - l2| <= l3 <= l1 + l2` violated.
    #[error("(l1, l2, l3) = ({0}, {1}, {2}) violates the triangle inequality")]
    Triangle(u32, u32, u32),
    /// Something that must not be empty is.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// An unknown option value (e.g. a normalization name).
    #[error("invalid {what}: {value:?}")]
    BadOption {
        /// Which option.
        what: &'static str,
        /// The value given.
        value: String,
    },
    /// An instruction that does not fit the irreps.
    #[error("invalid instruction {index}: {reason}")]
    BadInstruction {
        /// Position in the instruction list.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// Inconsistent irreps / activations for a module.
    #[error("{0}")]
    Invalid(String),
}
