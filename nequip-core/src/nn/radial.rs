//! Radial functions of the edge embedding: ports of `nequip/nn/radial_basis.py::BesselBasis`,
//! `nequip/nn/cutoffs.py::PolynomialCutoff` (`_poly_cutoff`) and the combination made by
//! `nequip/nn/embedding/_edge.py::RadialBasisEdgeEncoding`, plus the one-hot species of
//! `nequip/nn/embedding/_one_hot.py::OneHotAtomEncoding`. Differentiable (forces and their
//! gradients flow through), any float kind, any device.

use tch::{Kind, Tensor};

use crate::e3nn::scalars::{constant, ConstOps};

/// nequip's initial Bessel frequencies `w_n = n π`, n = 1..num_basis (`linspace(1, n) * pi`).
pub fn bessel_weights_init(num_basis: i64, kind: Kind) -> Tensor {
    Tensor::linspace(1.0, num_basis as f64, num_basis, (kind, tch::Device::Cpu)) * std::f64::consts::PI
}

/// `BesselBasis.forward`: `(2 / r_max) · sin(w_n r / r_max) / r`, shape `[..., num_basis]`.
pub fn bessel_basis(r: &Tensor, weights: &Tensor, r_max: f64) -> Tensor {
    let x = r.unsqueeze(-1);
    let numerator = (weights * &x).div_c(r_max).sin();
    (numerator / x).mul_c(2.0 / r_max)
}

/// `PolynomialCutoff` (`_poly_cutoff(x, 1/r_max, p)`): with `u = r / r_max`,
/// `1 − (p+1)(p+2)/2 · u^p + p(p+2) · u^(p+1) − p(p+1)/2 · u^(p+2)` for `u < 1`, else 0
/// (nequip's order of operations: the terms cancel to O((1 − u)³) near the cutoff).
pub fn polynomial_cutoff(r: &Tensor, r_max: f64, p: f64) -> Tensor {
    let u = r.mul_c(1.0 / r_max);
    let out = constant(1.0, &u) - u.pow_tensor_scalar(p).mul_c((p + 1.0) * (p + 2.0) / 2.0);
    let out = out + u.pow_tensor_scalar(p + 1.0).mul_c(p * (p + 2.0));
    let out = out - u.pow_tensor_scalar(p + 2.0).mul_c(p * (p + 1.0) / 2.0);
    out * u.lt(1.0).to_kind(r.kind())
}

/// `RadialBasisEdgeEncoding` with the default basis and cutoff: `(edge_embedding [E, n],
/// edge_cutoff [E, 1])`, the embedding being `bessel_basis(r) · cutoff(r)`.
pub fn edge_embedding(r: &Tensor, weights: &Tensor, r_max: f64, p: f64) -> (Tensor, Tensor) {
    let cutoff = polynomial_cutoff(r, r_max, p).unsqueeze(-1);
    (bessel_basis(r, weights, r_max) * &cutoff, cutoff)
}

/// `OneHotAtomEncoding`: `atom_types` (`[N]` or `[N, 1]`, int64) → `[N, num_types]` in `kind`
/// (`torch.nn.functional.one_hot` as rows of the identity: a few ops instead of one_hot's
/// range checks, conversions and scatter).
pub fn one_hot(atom_types: &Tensor, num_types: i64, kind: Kind) -> Tensor {
    Tensor::eye(num_types, (kind, atom_types.device())).index_select(0, &atom_types.reshape([-1]))
}
