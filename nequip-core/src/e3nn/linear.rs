//! Port of e3nn 0.5.9 `o3/_linear.py`: the equivariant linear layer.
//!
//! Each instruction `(i_in, i_out)` (default: every pair with equal irreps) maps block `i_in`
//! to block `i_out` with a `[mul_in, mul_out]` weight: `out[z,w,i] += pw * sum_u x[z,u,i]
//! W[u,w]`, `pw = 1/sqrt(fan_in)` where fan_in is the total input multiplicity into `i_out`
//! ("element" path normalisation). The weight is one flat vector in instruction order; optional
//! biases (scalar outputs only) are a second flat vector `bias`.

use tch::{nn::Path, Tensor};

use super::dense_map::{DenseMap, Entry};
use super::irreps::Irreps;
use super::tp_kernels::accumulate;
use super::E3nnError;

/// One normalised instruction of a [`Linear`].
#[derive(Clone, Debug, PartialEq)]
pub struct LinearInstruction {
    /// Input block.
    pub i_in: usize,
    /// Output block.
    pub i_out: usize,
    /// `(mul_in, mul_out)`.
    pub path_shape: (usize, usize),
    /// `1/sqrt(fan_in)`.
    pub path_weight: f64,
}

/// Options of [`Linear::with_options`].
#[derive(Clone, Debug)]
pub struct LinearOptions {
    /// Explicit `(i_in, i_out)` pairs (default: all pairs of equal irreps).
    pub instructions: Option<Vec<(usize, usize)>>,
    /// Bias per output block (only scalar `0e` blocks may have one); empty = no bias.
    pub biases: Vec<bool>,
    /// Own the weights (registered as `weight` / `bias`); otherwise pass them to `forward_with`.
    pub internal_weights: bool,
    /// With external weights: per-sample `[..., weight_numel]` instead of shared `[weight_numel]`.
    pub shared_weights: bool,
}

impl Default for LinearOptions {
    fn default() -> Self {
        LinearOptions {
            instructions: None,
            biases: vec![],
            internal_weights: true,
            shared_weights: true,
        }
    }
}

/// e3nn's `o3.Linear`.
#[derive(Debug)]
pub struct Linear {
    /// Input irreps.
    pub irreps_in: Irreps,
    /// Output irreps.
    pub irreps_out: Irreps,
    /// Instructions with path weights.
    pub instructions: Vec<LinearInstruction>,
    /// Length of the flat weight.
    pub weight_numel: usize,
    /// Output blocks with a bias.
    pub biases: Vec<bool>,
    /// Length of the flat bias.
    pub bias_numel: usize,
    /// Shared or per-sample weights.
    pub shared_weights: bool,
    /// Internal weight `weight` (N(0,1) init, as e3nn).
    pub weight: Option<Tensor>,
    /// Internal bias `bias` (zero init).
    pub bias: Option<Tensor>,
    /// Shared weights of a small layer: the whole map as one gathered matrix, and the bias as
    /// one gathered row (see `dense_map.rs`).
    dense: Option<(DenseMap, Option<DenseMap>)>,
}

impl Linear {
    /// `o3.Linear(irreps_in, irreps_out)` with internal shared weights under `path`.
    pub fn new(path: &Path, irreps_in: Irreps, irreps_out: Irreps) -> Result<Self, E3nnError> {
        Self::with_options(Some(path), irreps_in, irreps_out, LinearOptions::default())
    }

    /// Full constructor; `path` is needed when `opts.internal_weights`.
    pub fn with_options(
        path: Option<&Path>,
        irreps_in: Irreps,
        irreps_out: Irreps,
        opts: LinearOptions,
    ) -> Result<Self, E3nnError> {
        let pairs = opts.instructions.clone().unwrap_or_else(|| {
            let mut v = Vec::new();
            for (i, a) in irreps_in.iter().enumerate() {
                for (o, b) in irreps_out.iter().enumerate() {
                    if a.ir == b.ir {
                        v.push((i, o));
                    }
                }
            }
            v
        });
        for (index, &(i, o)) in pairs.iter().enumerate() {
            let bad = |reason: &str| E3nnError::BadInstruction {
                index,
                reason: reason.to_string(),
            };
            if i >= irreps_in.len() || o >= irreps_out.len() {
                return Err(bad("block index out of range"));
            }
            if irreps_in[i].ir != irreps_out[o].ir {
                return Err(bad("input and output irreps differ"));
            }
        }
        let instructions: Vec<LinearInstruction> = pairs
            .iter()
            .map(|&(i, o)| {
                let fan_in: usize = pairs
                    .iter()
                    .filter(|p| p.1 == o)
                    .map(|p| irreps_in[p.0].mul)
                    .sum();
                let x = if fan_in == 0 { 1.0 } else { fan_in as f64 };
                LinearInstruction {
                    i_in: i,
                    i_out: o,
                    path_shape: (irreps_in[i].mul, irreps_out[o].mul),
                    path_weight: x.powf(-0.5),
                }
            })
            .collect();
        let biases = if opts.biases.is_empty() {
            vec![false; irreps_out.len()]
        } else {
            opts.biases.clone()
        };
        if biases.len() != irreps_out.len() {
            return Err(E3nnError::Invalid(
                "one bias flag per output block is needed".into(),
            ));
        }
        if biases
            .iter()
            .zip(irreps_out.iter())
            .any(|(&b, m)| b && !m.ir.is_scalar())
        {
            return Err(E3nnError::Invalid(
                "biases are only allowed on 0e outputs".into(),
            ));
        }
        let weight_numel = instructions
            .iter()
            .map(|i| i.path_shape.0 * i.path_shape.1)
            .sum();
        let bias_numel = biases
            .iter()
            .zip(irreps_out.iter())
            .filter(|(b, _)| **b)
            .map(|(_, m)| m.dim())
            .sum();
        let (weight, bias) = if opts.internal_weights {
            let p = path.ok_or_else(|| {
                E3nnError::Invalid("internal weights need a parameter path".into())
            })?;
            let w = (weight_numel > 0).then(|| p.randn_standard("weight", &[weight_numel as i64]));
            let b = (bias_numel > 0).then(|| p.zeros("bias", &[bias_numel as i64]));
            (w, b)
        } else {
            (None, None)
        };
        let shared_weights = opts.internal_weights || opts.shared_weights;
        let dense = if shared_weights && weight_numel > 0 { dense_maps(&irreps_in, &irreps_out, &instructions, &biases) } else { None };
        Ok(Linear {
            irreps_in,
            irreps_out,
            instructions,
            weight_numel,
            biases,
            bias_numel,
            shared_weights,
            weight,
            bias,
            dense,
        })
    }

    /// Whether [`Self::forward_with`] takes the dense form (see `dense_map.rs`).
    pub fn has_dense_form(&self) -> bool {
        self.dense.is_some()
    }

    /// Applies the internal weights and biases.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_with(x, self.weight.as_ref(), self.bias.as_ref())
    }

    /// Applies explicit weights (`[weight_numel]` shared or `[..., weight_numel]` per sample)
    /// and biases (`[bias_numel]`).
    pub fn forward_with(&self, x: &Tensor, weight: Option<&Tensor>, bias: Option<&Tensor>) -> Tensor {
        self.forward_using(true, x, weight, bias)
    }

    /// [`Self::forward_with`] as one gathered dense matrix (`dense`, small shared-weight
    /// layers, see `dense_map.rs`) or block by block — the same numbers (tests compare both).
    pub fn forward_using(&self, dense: bool, x: &Tensor, weight: Option<&Tensor>, bias: Option<&Tensor>) -> Tensor {
        let lead: Vec<i64> = x.size()[..x.dim() - 1].to_vec();
        let x = x.reshape([-1, self.irreps_in.dim() as i64]);
        let mut shape = lead;
        shape.push(self.irreps_out.dim() as i64);
        if let (Some((m, bm)), Some(w), true) = (&self.dense, weight, dense) {
            if bm.is_some() == bias.is_some() {
                let b = bm.as_ref().zip(bias).map(|(bm, b)| bm.matrix(b));
                return m.apply(&x, w, b.as_ref()).reshape(shape);
            }
        }
        let z = x.size()[0];
        let w = weight.map(|w| {
            if self.shared_weights {
                w.shallow_clone()
            } else {
                w.reshape([z, -1])
            }
        });
        // one split of the input and of the weights (the backward of each is one `cat`; a
        // `narrow` per instruction would allocate a zero tensor of the whole input each)
        let in_dims: Vec<i64> = self.irreps_in.iter().map(|m| m.dim() as i64).collect();
        let x_blocks = x.split_with_sizes(in_dims.as_slice(), 1);
        let w_sizes: Vec<i64> = self
            .instructions
            .iter()
            .map(|i| (i.path_shape.0 * i.path_shape.1) as i64)
            .collect();
        let w_chunks = w.as_ref().map(|w| w.split_with_sizes(w_sizes.as_slice(), -1));
        let mut outs: Vec<Option<Tensor>> = (0..self.irreps_out.len()).map(|_| None).collect();
        for (k, ins) in self.instructions.iter().enumerate() {
            let (mi, mo) = (ins.path_shape.0 as i64, ins.path_shape.1 as i64);
            let d = self.irreps_in[ins.i_in].ir.dim() as i64;
            let n = mi * mo;
            if n == 0 || d == 0 {
                continue;
            }
            let wi = &w_chunks.as_ref().expect("Linear: weights are required")[k];
            let xi = x_blocks[ins.i_in].reshape([z, mi, d]);
            // einsum("(z)uw,zui->zwi") as a (batched) matmul: W^T [.., mo, mi] @ x [z, mi, d]
            // (the path weight goes on the smaller side: the shared weights)
            let y = if self.shared_weights {
                (wi * ins.path_weight).reshape([mi, mo]).transpose(0, 1).matmul(&xi)
            } else {
                wi.reshape([z, mi, mo]).transpose(1, 2).bmm(&xi) * ins.path_weight
            };
            accumulate(&mut outs[ins.i_out], y.reshape([z, mo * d]));
        }
        let bias_dims: Vec<i64> = self
            .irreps_out
            .iter()
            .zip(&self.biases)
            .filter(|(_, &b)| b)
            .map(|(m, _)| m.dim() as i64)
            .collect();
        let mut bias_chunks = match bias {
            Some(b) if !bias_dims.is_empty() => b.split_with_sizes(bias_dims.as_slice(), -1),
            _ => Vec::new(),
        }
        .into_iter();
        let blocks: Vec<Tensor> = outs
            .into_iter()
            .zip(self.irreps_out.iter().zip(&self.biases))
            .map(|(o, (m, &has_b))| {
                let dim = m.dim() as i64;
                let t = o.unwrap_or_else(|| Tensor::zeros([z, dim], (x.kind(), x.device())));
                if has_b {
                    t + bias_chunks.next().expect("Linear: biases are required")
                } else {
                    t
                }
            })
            .collect();
        let out = if blocks.is_empty() {
            Tensor::zeros([z, 0], (x.kind(), x.device()))
        } else {
            Tensor::cat(&blocks, 1)
        };
        out.reshape(shape)
    }
}

/// The dense forms of a shared-weight [`Linear`]: `M[(u, i) of block i_in, (w, i) of block
/// i_out] = W_k[u, w]·pw_k`, and the bias row (`None` if no block has a bias); `None` if the
/// map is too large for it.
fn dense_maps(irreps_in: &Irreps, irreps_out: &Irreps, instructions: &[LinearInstruction], biases: &[bool]) -> Option<(DenseMap, Option<DenseMap>)> {
    let (sl_in, sl_out) = (irreps_in.slices(), irreps_out.slices());
    let mut entries = Vec::new();
    let mut offset = 0i64;
    for ins in instructions {
        let (mi, mo) = ins.path_shape;
        let d = irreps_in[ins.i_in].ir.dim();
        for u in 0..mi {
            for w in 0..mo {
                for i in 0..d {
                    let (row, col) = (sl_in[ins.i_in].start + u * d + i, sl_out[ins.i_out].start + w * d + i);
                    entries.push(Entry { row, col, weight: offset + (u * mo + w) as i64, factor: ins.path_weight });
                }
            }
        }
        offset += (mi * mo) as i64;
    }
    let map = DenseMap::new(irreps_in.dim(), irreps_out.dim(), entries)?;
    let mut bias_entries = Vec::new();
    let mut b = 0i64;
    for (o, _) in biases.iter().enumerate().filter(|(_, has)| **has) {
        for col in sl_out[o].clone() {
            bias_entries.push(Entry { row: 0, col, weight: b, factor: 1.0 });
            b += 1;
        }
    }
    let bias = if b > 0 { Some(DenseMap::new(1, irreps_out.dim(), bias_entries)?) } else { None };
    Some((map, bias))
}
