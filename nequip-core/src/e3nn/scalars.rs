//! Arithmetic with constants through cached 0-dim tensors.
//!
//! `x * 0.5` in libtorch wraps `0.5` as a double 0-dim tensor and, for a float32 `x`, converts
//! it (`to`, `_to_copy`, `empty_strided`, `copy_`) on every call — and again in every
//! derivative, since the backward node (`MulBackward1`) multiplies by the same `Scalar`. In a
//! small model's training step those conversions were ≈10 % of all dispatched operators
//! (`nequip benchmark --op-census`). [`ConstOps`] multiplies by a 0-dim tensor of `x`'s kind
//! and device made once per thread instead: the same numbers (the constant is rounded to the
//! kind once, as libtorch rounds the wrapped scalar), no conversion, and a tensor-tensor
//! backward that needs none either.

use std::cell::RefCell;
use std::collections::HashMap;

use tch::{Device, Kind, Tensor};

thread_local! {
    static CACHE: RefCell<HashMap<(u64, Kind, Device), Tensor>> = RefCell::new(HashMap::new());
}

/// The constant `c` as a 0-dim tensor of `like`'s kind and device (cached per thread; it
/// does not require grad).
pub fn constant(c: f64, like: &Tensor) -> Tensor {
    debug_assert!(like.is_floating_point(), "constant {c} for a {:?} tensor", like.kind());
    let key = (c.to_bits(), like.kind(), like.device());
    CACHE.with(|m| {
        m.borrow_mut()
            .entry(key)
            .or_insert_with(|| Tensor::scalar_tensor(c, (key.1, key.2)))
            .shallow_clone()
    })
}

/// `x ∘ c` for a floating-point `x` and a constant `c`, with `c` as a cached 0-dim tensor of
/// `x`'s kind (see the module docs; for integer tensors use libtorch's `Scalar` ops, which
/// promote).
pub trait ConstOps {
    /// `x * c`.
    fn mul_c(&self, c: f64) -> Tensor;
    /// `x / c`.
    fn div_c(&self, c: f64) -> Tensor;
    /// `x + c`.
    fn add_c(&self, c: f64) -> Tensor;
}

impl ConstOps for Tensor {
    fn mul_c(&self, c: f64) -> Tensor {
        self * constant(c, self)
    }
    fn div_c(&self, c: f64) -> Tensor {
        self / constant(c, self)
    }
    fn add_c(&self, c: f64) -> Tensor {
        self + constant(c, self)
    }
}
