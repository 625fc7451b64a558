//! Port of e3nn 0.5.9 `o3/_tensor_product/_tensor_product.py` (and `FullyConnectedTensorProduct`
//! from `_sub.py`): weighted tensor products of irreps with instruction lists.
//!
//! Path `(i1, i2, o)` computes `pw * sum_ij x1_{u,i} x2_{v,j} C_{ijk}` with `C = wigner_3j(l1,
//! l2, lo)`, contracted with weights according to the connection mode, and is summed into output
//! block `o`. `pw` is e3nn's normalisation (`irrep_normalization`, `path_normalization`,
//! per-instruction `path_weight`). Weights are one flat vector (or `[..., weight_numel]` per
//! sample) in instruction order, each path's block shaped as e3nn's `path_shape`.
//!
//! Evaluation is delegated to [`super::tp_kernels`]: NequIP's convolution (all paths `uvu`,
//! second input of multiplicity 1) runs the native kernel of `uvu_native` on the CPU with
//! per-sample weights, else a handful of batched ops; a fully connected product with scalar
//! second input (NequIP's self-connection) runs the few ops of `scalar_tp`; other cases use
//! one einsum chain per path.

use tch::{nn::Path, Kind, Tensor};

use super::irreps::Irreps;
use super::tp_kernels::Kernel;
use super::wigner::triangle;
use super::E3nnError;

/// How the multiplicities of the two inputs and the output are connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectionMode {
    /// Fully connected: weight `[mul1, mul2, mul_out]`.
    Uvw,
    /// Output has `mul1` channels: weight `[mul1, mul2]` (NequIP's convolution).
    Uvu,
    /// Output has `mul2` channels: weight `[mul1, mul2]`.
    Uvv,
}

impl std::str::FromStr for ConnectionMode {
    type Err = E3nnError;
    fn from_str(s: &str) -> Result<Self, E3nnError> {
        match s {
            "uvw" => Ok(Self::Uvw),
            "uvu" => Ok(Self::Uvu),
            "uvv" => Ok(Self::Uvv),
            _ => Err(E3nnError::BadOption {
                what: "connection mode",
                value: s.to_string(),
            }),
        }
    }
}

/// One path of a tensor product, as given to e3nn (`(i_in1, i_in2, i_out, mode, has_weight,
/// path_weight)`). After construction [`TensorProduct::instructions`] holds the *normalised*
/// `path_weight` (e3nn's `sqrt(alpha)`) and `path_shape`.
#[derive(Clone, Debug, PartialEq)]
pub struct Instruction {
    /// Block of input 1.
    pub i_in1: usize,
    /// Block of input 2.
    pub i_in2: usize,
    /// Output block.
    pub i_out: usize,
    /// Connection mode.
    pub mode: ConnectionMode,
    /// Whether the path has weights.
    pub has_weight: bool,
    /// Multiplier (default 1).
    pub path_weight: f64,
    /// e3nn's `path_shape` (set by the constructor).
    pub path_shape: Vec<usize>,
}

impl Instruction {
    /// A weighted path with `path_weight` 1.
    pub fn new(
        i_in1: usize,
        i_in2: usize,
        i_out: usize,
        mode: ConnectionMode,
        has_weight: bool,
    ) -> Self {
        Instruction {
            i_in1,
            i_in2,
            i_out,
            mode,
            has_weight,
            path_weight: 1.0,
            path_shape: vec![],
        }
    }
}

/// e3nn's `irrep_normalization`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IrrepNormalization {
    /// `alpha = 2 l_out + 1` (default).
    #[default]
    Component,
    /// `alpha = (2 l1 + 1)(2 l2 + 1)`.
    Norm,
    /// `alpha = 1`.
    None,
}

/// e3nn's `path_normalization`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PathNormalization {
    /// Divide by the fan-in of all paths into the same output (default).
    #[default]
    Element,
    /// Divide by the fan-in of this path times the number of paths into the output.
    Path,
    /// No division.
    None,
}

/// Options of [`TensorProduct::new`] (e3nn's keyword arguments; `None` = e3nn's default).
#[derive(Clone, Debug, Default)]
pub struct TpOptions {
    /// Irrep normalisation.
    pub irrep_normalization: IrrepNormalization,
    /// Path normalisation.
    pub path_normalization: PathNormalization,
    /// Whether weights are shared across the batch (default true).
    pub shared_weights: Option<bool>,
    /// Whether the module owns its weights (default: shared and any path has weights).
    pub internal_weights: Option<bool>,
}

/// e3nn's `o3.TensorProduct`.
#[derive(Debug)]
pub struct TensorProduct {
    /// First input.
    pub irreps_in1: Irreps,
    /// Second input.
    pub irreps_in2: Irreps,
    /// Output.
    pub irreps_out: Irreps,
    /// Instructions with normalised path weights.
    pub instructions: Vec<Instruction>,
    /// Length of the flat weight vector.
    pub weight_numel: usize,
    /// Shared (`[weight_numel]`) or per-sample (`[..., weight_numel]`) weights.
    pub shared_weights: bool,
    /// Whether `weight` is owned by the module.
    pub internal_weights: bool,
    /// The internal weight (registered as `weight` under the module's path).
    pub weight: Option<Tensor>,
    kernel: Kernel,
}

impl TensorProduct {
    /// Builds the tensor product. `path` is required when the weights are internal (the
    /// parameter `weight ~ N(0,1)` is registered there, as e3nn's `torch.randn`).
    pub fn new(
        path: Option<&Path>,
        irreps_in1: Irreps,
        irreps_in2: Irreps,
        irreps_out: Irreps,
        instructions: Vec<Instruction>,
        opts: TpOptions,
    ) -> Result<Self, E3nnError> {
        let mut ins = instructions;
        for (index, i) in ins.iter_mut().enumerate() {
            let bad = |reason: String| E3nnError::BadInstruction { index, reason };
            if i.i_in1 >= irreps_in1.len()
                || i.i_in2 >= irreps_in2.len()
                || i.i_out >= irreps_out.len()
            {
                return Err(bad("block index out of range".into()));
            }
            let (a, b, o) = (
                irreps_in1[i.i_in1],
                irreps_in2[i.i_in2],
                irreps_out[i.i_out],
            );
            if a.ir.p * b.ir.p != o.ir.p || !triangle(a.ir.l, b.ir.l, o.ir.l) {
                return Err(bad(format!("{} x {} cannot produce {}", a.ir, b.ir, o.ir)));
            }
            i.path_shape = match i.mode {
                ConnectionMode::Uvw => vec![a.mul, b.mul, o.mul],
                ConnectionMode::Uvu | ConnectionMode::Uvv => vec![a.mul, b.mul],
            };
            let mul_ok = match i.mode {
                ConnectionMode::Uvw => true,
                ConnectionMode::Uvu => a.mul == o.mul,
                ConnectionMode::Uvv => b.mul == o.mul,
            };
            if !mul_ok {
                return Err(bad("multiplicities do not match the connection mode".into()));
            }
            if i.mode == ConnectionMode::Uvw && !i.has_weight {
                return Err(bad("uvw paths need weights".into()));
            }
        }
        let num_elements = |i: &Instruction| match i.mode {
            ConnectionMode::Uvw => irreps_in1[i.i_in1].mul * irreps_in2[i.i_in2].mul,
            ConnectionMode::Uvu => irreps_in2[i.i_in2].mul,
            ConnectionMode::Uvv => irreps_in1[i.i_in1].mul,
        } as f64;
        let alphas: Vec<f64> = ins
            .iter()
            .map(|i| {
                let (a, b, o) = (
                    irreps_in1[i.i_in1],
                    irreps_in2[i.i_in2],
                    irreps_out[i.i_out],
                );
                let mut alpha = match opts.irrep_normalization {
                    IrrepNormalization::Component => o.ir.dim() as f64,
                    IrrepNormalization::Norm => (a.ir.dim() * b.ir.dim()) as f64,
                    IrrepNormalization::None => 1.0,
                };
                let same_out = ins.iter().filter(|j| j.i_out == i.i_out);
                let x = match opts.path_normalization {
                    PathNormalization::Element => same_out.map(num_elements).sum(),
                    PathNormalization::Path => num_elements(i) * same_out.count() as f64,
                    PathNormalization::None => 1.0,
                };
                if x > 0.0 {
                    alpha /= x;
                }
                (alpha * i.path_weight).sqrt()
            })
            .collect();
        for (i, a) in ins.iter_mut().zip(alphas) {
            i.path_weight = a;
        }
        let shared_weights = opts.shared_weights.unwrap_or(true);
        let internal_weights = match opts.internal_weights {
            Some(v) => v,
            None => shared_weights && ins.iter().any(|i| i.has_weight),
        };
        if internal_weights && !shared_weights {
            return Err(E3nnError::Invalid(
                "internal weights imply shared weights".into(),
            ));
        }
        let weight_numel: usize = ins
            .iter()
            .filter(|i| i.has_weight)
            .map(|i| i.path_shape.iter().product::<usize>())
            .sum();
        let weight = match (internal_weights && weight_numel > 0, path) {
            (true, Some(p)) => Some(p.randn_standard("weight", &[weight_numel as i64])),
            (true, None) => {
                return Err(E3nnError::Invalid(
                    "internal weights need a parameter path".into(),
                ))
            }
            (false, _) => None,
        };
        let kernel = Kernel::new(&irreps_in1, &irreps_in2, &irreps_out, &ins, shared_weights);
        Ok(TensorProduct {
            irreps_in1,
            irreps_in2,
            irreps_out,
            instructions: ins,
            weight_numel,
            shared_weights,
            internal_weights,
            weight,
            kernel,
        })
    }

    /// e3nn's `FullyConnectedTensorProduct`: a weighted `uvw` path for every
    /// `(i1, i2, o)` with `ir_o ∈ ir_1 ⊗ ir_2`, internal shared weights by default.
    pub fn fully_connected(
        path: Option<&Path>,
        irreps_in1: Irreps,
        irreps_in2: Irreps,
        irreps_out: Irreps,
        opts: TpOptions,
    ) -> Result<Self, E3nnError> {
        let mut ins = Vec::new();
        for (i1, a) in irreps_in1.iter().enumerate() {
            for (i2, b) in irreps_in2.iter().enumerate() {
                for (o, c) in irreps_out.iter().enumerate() {
                    if a.ir.product(&b.ir).contains(&c.ir) {
                        ins.push(Instruction::new(i1, i2, o, ConnectionMode::Uvw, true));
                    }
                }
            }
        }
        Self::new(path, irreps_in1, irreps_in2, irreps_out, ins, opts)
    }

    /// NequIP's convolution tensor product (`nequip/nn/_interaction_block.py`): a weighted
    /// `uvu` path for every `(i, j)` and `ir_out ∈ ir_i ⊗ ir_j` with `ir_out` in `filter`, one
    /// output block per path (`mul_i x ir_out`), the output irreps then stably sorted (e3nn's
    /// `Irreps.sort`) with the instructions' `i_out` permuted accordingly; per-sample external
    /// weights (from the radial MLP).
    pub fn nequip_convolution(
        irreps_in1: Irreps,
        irreps_in2: Irreps,
        filter: &Irreps,
    ) -> Result<Self, E3nnError> {
        let mut mid = Vec::new();
        let mut ins = Vec::new();
        for (i, a) in irreps_in1.iter().enumerate() {
            for (j, b) in irreps_in2.iter().enumerate() {
                for ir in a.ir.product(&b.ir) {
                    if filter.contains(ir) {
                        ins.push(Instruction::new(i, j, mid.len(), ConnectionMode::Uvu, true));
                        mid.push(super::irreps::MulIr { mul: a.mul, ir });
                    }
                }
            }
        }
        let sorted = Irreps(mid).sort();
        for i in &mut ins {
            i.i_out = sorted.p[i.i_out];
        }
        let opts = TpOptions {
            shared_weights: Some(false),
            internal_weights: Some(false),
            ..Default::default()
        };
        Self::new(None, irreps_in1, irreps_in2, sorted.irreps, ins, opts)
    }

    /// Whether the fast grouped kernel is used (else one einsum chain per path).
    pub fn uses_fast_kernel(&self) -> bool {
        self.kernel.is_fast()
    }

    /// Whether the scalar-second-input form (NequIP's self-connection) is used.
    pub fn uses_scalar_input_kernel(&self) -> bool {
        self.kernel.is_scalar_input()
    }

    /// e3nn's `output_mask` buffer: 1 on output blocks that some path writes.
    pub fn output_mask(&self, kind: Kind) -> Tensor {
        let v: Vec<f64> =
            self.irreps_out
                .iter()
                .enumerate()
                .flat_map(|(o, m)| {
                    let on = self.instructions.iter().any(|i| {
                        i.i_out == o && i.path_weight != 0.0 && !i.path_shape.contains(&0)
                    });
                    std::iter::repeat_n(if on { 1.0 } else { 0.0 }, m.dim())
                })
                .collect();
        Tensor::from_slice(&v).to_kind(kind)
    }

    /// Evaluates with the internal weights (or none when no path is weighted).
    pub fn forward(&self, x1: &Tensor, x2: &Tensor) -> Tensor {
        self.forward_with(x1, x2, self.weight.as_ref())
    }

    /// Evaluates with explicit weights: `[weight_numel]` when shared, `[..., weight_numel]`
    /// per sample otherwise. `x1 [..., dim1]`, `x2 [..., dim2]` with equal leading shapes.
    /// NequIP's convolution with per-sample weights runs the native kernel on the CPU.
    pub fn forward_with(&self, x1: &Tensor, x2: &Tensor, weight: Option<&Tensor>) -> Tensor {
        self.forward_using(true, x1, x2, weight)
    }

    /// [`Self::forward_with`]; `specialised: false` evaluates with the general forms only
    /// (libtorch ops: grouped `uvu` products, per-path einsums) instead of the native CPU kernel
    /// of NequIP's convolution and the scalar-second-input form of its self-connection — the
    /// reference those are tested against (same numbers).
    pub fn forward_using(&self, specialised: bool, x1: &Tensor, x2: &Tensor, weight: Option<&Tensor>) -> Tensor {
        let lead: Vec<i64> = x1.size()[..x1.dim() - 1].to_vec();
        let x1f = x1.reshape([-1, self.irreps_in1.dim() as i64]);
        let x2f = x2.reshape([-1, self.irreps_in2.dim() as i64]);
        let w = weight.map(|w| {
            if self.shared_weights {
                w.shallow_clone()
            } else {
                w.reshape([-1, self.weight_numel as i64])
            }
        });
        let out = self.kernel.forward(&x1f, &x2f, w.as_ref(), specialised);
        let mut shape = lead;
        shape.push(self.irreps_out.dim() as i64);
        out.reshape(shape)
    }
}
