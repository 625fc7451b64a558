//! Port of e3nn 0.5.9 `nn/_activation.py`, `nn/_normact.py` and `math/_normalize_activation.py`,
//! plus nequip's `ShiftedSoftPlus` (`nequip/nn/nonlinearities.py`).
//!
//! e3nn scales every activation `f` by `c = E[f(z)^2]^(-1/2)`, `z ~ N(0,1)` (`normalize2mom`),
//! estimated from torch's RNG; the constants below are the values e3nn 0.5.9 computes (see
//! `tests/fixtures/e3nn/README.md`). The scaling is skipped when `|c - 1| < 1e-4`.

use tch::{nn::Path, Tensor};

use super::irreps::{Irrep, Irreps, MulIr};
use super::scalars::ConstOps;
use super::E3nnError;

/// A scalar activation function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Act {
    /// `x * sigmoid(x)`.
    Silu,
    /// `tanh(x)` (odd).
    Tanh,
    /// `|x|` (even).
    Abs,
    /// nequip's `ShiftedSoftPlus`: `softplus(x) - ln 2`.
    Ssp,
    /// `sigmoid(x)`.
    Sigmoid,
}

impl std::str::FromStr for Act {
    type Err = E3nnError;
    /// nequip's names: `silu`, `tanh`, `abs`, `ssp`, `sigmoid`.
    fn from_str(s: &str) -> Result<Self, E3nnError> {
        match s {
            "silu" => Ok(Act::Silu),
            "tanh" => Ok(Act::Tanh),
            "abs" => Ok(Act::Abs),
            "ssp" => Ok(Act::Ssp),
            "sigmoid" => Ok(Act::Sigmoid),
            _ => Err(E3nnError::BadOption {
                what: "activation",
                value: s.to_string(),
            }),
        }
    }
}

/// nequip's `ShiftedSoftPlus(x) = softplus(x) - ln 2`.
#[allow(non_snake_case)]
pub fn ShiftedSoftPlus(x: &Tensor) -> Tensor {
    x.softplus().add_c(-std::f64::consts::LN_2)
}

impl Act {
    /// The raw function.
    pub fn apply_raw(&self, x: &Tensor) -> Tensor {
        match self {
            Act::Silu => x.silu(),
            Act::Tanh => x.tanh(),
            Act::Abs => x.abs(),
            Act::Ssp => ShiftedSoftPlus(x),
            Act::Sigmoid => x.sigmoid(),
        }
    }

    /// e3nn's `normalize2mom` constant `E[f(z)^2]^(-1/2)` (torch RNG, 1e6 samples, seed 0).
    pub fn normalize2mom_constant(&self) -> f64 {
        match self {
            Act::Silu => 1.6791767923989418,
            Act::Tanh => 1.5937334472592695,
            Act::Abs => 1.001110600838467,
            Act::Ssp => 1.878204668541552,
            Act::Sigmoid => 1.8467055342154763,
        }
    }

    /// `normalize2mom(f)(x)`: `c f(x)`, or `f(x)` when `|c - 1| < 1e-4`.
    pub fn apply_normalized(&self, x: &Tensor) -> Tensor {
        let c = self.normalize2mom_constant();
        let y = self.apply_raw(x);
        if (c - 1.0).abs() < 1e-4 {
            y
        } else {
            y.mul_c(c)
        }
    }

    /// Parity of the function: 1 even, -1 odd, 0 neither.
    pub fn parity(&self) -> i32 {
        match self {
            Act::Tanh => -1,
            Act::Abs => 1,
            Act::Silu | Act::Ssp | Act::Sigmoid => 0,
        }
    }
}

/// e3nn's `nn.Activation`: per-block activations of scalars (normalised), `None` = identity.
#[derive(Debug, Clone)]
pub struct Activation {
    /// Input irreps.
    pub irreps_in: Irreps,
    /// Output irreps (odd scalars through an even function become even).
    pub irreps_out: Irreps,
    /// Consecutive blocks with the same activation merged: `(dim, act)`.
    runs: Vec<(i64, Option<Act>)>,
}

impl Activation {
    /// One activation (or `None`) per block of `irreps_in`.
    pub fn new(irreps_in: Irreps, acts: Vec<Option<Act>>) -> Result<Self, E3nnError> {
        if irreps_in.len() != acts.len() {
            return Err(E3nnError::Invalid(format!(
                "Activation: {} blocks in {irreps_in} but {} activations",
                irreps_in.len(),
                acts.len()
            )));
        }
        let mut out = Vec::new();
        for (m, act) in irreps_in.iter().zip(&acts) {
            match act {
                Some(a) => {
                    if m.ir.l != 0 {
                        return Err(E3nnError::Invalid(
                            "Activation: cannot apply an activation to a non-scalar".into(),
                        ));
                    }
                    let p = if m.ir.p == -1 { a.parity() } else { m.ir.p };
                    if p == 0 {
                        return Err(E3nnError::Invalid(
                            "Activation: the input scalar is odd but the activation is neither even nor odd".into(),
                        ));
                    }
                    out.push(MulIr {
                        mul: m.mul,
                        ir: Irrep { l: 0, p },
                    });
                }
                None => out.push(*m),
            }
        }
        let mut runs: Vec<(i64, Option<Act>)> = Vec::new();
        for (m, act) in irreps_in.iter().zip(&acts) {
            match runs.last_mut() {
                Some((d, a)) if a == act => *d += m.dim() as i64,
                _ => runs.push((m.dim() as i64, *act)),
            }
        }
        Ok(Activation {
            irreps_in,
            irreps_out: Irreps(out),
            runs,
        })
    }

    /// Applies the activations along the last axis.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let apply = |xi: &Tensor, act: &Option<Act>| match act {
            Some(a) => a.apply_normalized(xi),
            None => xi.shallow_clone(),
        };
        if let [(_, act)] = self.runs.as_slice() {
            return apply(x, act);
        }
        // one split (its backward is one `cat`, not a zero tensor per block)
        let dims: Vec<i64> = self.runs.iter().map(|r| r.0).collect();
        let mut parts = Vec::new();
        for (xi, (_, act)) in x.split_with_sizes(dims.as_slice(), -1).into_iter().zip(&self.runs) {
            parts.push(apply(&xi, act));
        }
        match parts.len() {
            0 => x.zeros_like(),
            1 => parts.pop().expect("one"),
            _ => Tensor::cat(&parts, -1),
        }
    }
}

/// Index of the irrep copy of every component of `irreps` (`[dim]`, i64).
pub(crate) fn copy_index(irreps: &Irreps) -> Vec<i64> {
    let mut idx = Vec::with_capacity(irreps.dim());
    let mut c = 0i64;
    for m in irreps {
        for _ in 0..m.mul {
            idx.extend(std::iter::repeat_n(c, m.ir.dim()));
            c += 1;
        }
    }
    idx
}

/// e3nn's `nn.NormActivation` as nequip builds it: every irrep copy `x` becomes
/// `x * f(|x|) / |x|` with the *raw* `f` (no `normalize2mom`), `|x|^2` clamped below at `eps^2`.
#[derive(Debug)]
pub struct NormActivation {
    /// Input = output irreps.
    pub irreps_in: Irreps,
    act: Act,
    normalize: bool,
    eps2: f64,
    /// Optional bias added to the norms (`biases`, `[num_irreps]`, zero init).
    pub biases: Option<Tensor>,
    index: Vec<i64>,
}

impl NormActivation {
    /// `NormActivation(irreps, act, normalize, epsilon, bias)`; epsilon defaults to 1e-8 when
    /// normalising. `path` is needed when `bias` is true.
    pub fn new(
        path: Option<&Path>,
        irreps_in: Irreps,
        act: Act,
        normalize: bool,
        epsilon: Option<f64>,
        bias: bool,
    ) -> Result<Self, E3nnError> {
        let eps = match (epsilon, normalize) {
            (None, true) => Some(1e-8),
            (Some(_), false) => {
                return Err(E3nnError::Invalid(
                    "epsilon and normalize = false don't make sense together".into(),
                ))
            }
            (e, _) => e,
        };
        if let Some(e) = eps {
            if e.is_nan() || e <= 0.0 {
                return Err(E3nnError::Invalid(format!(
                    "epsilon {e} is invalid, must be strictly positive"
                )));
            }
        }
        let biases = if bias {
            let p =
                path.ok_or_else(|| E3nnError::Invalid("biases need a parameter path".into()))?;
            Some(p.zeros("biases", &[irreps_in.num_irreps() as i64]))
        } else {
            None
        };
        let index = copy_index(&irreps_in);
        Ok(NormActivation {
            irreps_in,
            act,
            normalize,
            eps2: eps.map_or(0.0, |e| e * e),
            biases,
            index,
        })
    }

    /// `x [..., dim] -> [..., dim]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let idx = Tensor::from_slice(&self.index).to_device(x.device());
        let mut shape = x.size();
        let n = self.irreps_in.num_irreps() as i64;
        let last = shape.len() - 1;
        shape[last] = n;
        let n2 =
            Tensor::zeros(shape.as_slice(), (x.kind(), x.device())).index_add(-1, &idx, &(x * x));
        let norms = if self.eps2 > 0.0 {
            let eps = Tensor::full([1], self.eps2, (x.kind(), x.device()));
            eps.where_self(&n2.lt(self.eps2), &n2).sqrt()
        } else {
            n2.relu().sqrt()
        };
        let arg = match &self.biases {
            Some(b) => &norms + b,
            None => norms.shallow_clone(),
        };
        let mut scal = self.act.apply_raw(&arg);
        if self.normalize {
            scal = scal / norms;
        }
        x * scal.index_select(-1, &idx)
    }
}
