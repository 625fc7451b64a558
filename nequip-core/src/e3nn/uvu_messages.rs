//! The messages of NequIP's convolution (the `uvu` tensor product of features ⊗ edge
//! spherical harmonics with per-edge weights) in a channel-innermost layout, for
//! [`super::FusedConvolution`]. Same paths and numbers as [`super::TensorProduct`] (whose own
//! kernel, `super::tp_kernels::UvuKernel`, writes e3nn's `[mul, 2l+1]` layout and is faster
//! when that layout is needed: assembling it from these messages costs a transposing `cat`).
//!
//! The paths from one input-1 block to one output degree form a *sub* (`n` paths, input
//! irrep dimension `d1`, output `d3`, `U` channels). The elementwise loops run over the `U`
//! channels instead of the 2l+1 components: the weights multiply the small side,
//! `xw[z,t,a,u] = W_t[z,u] x1[z,a,u]` (`[Z, n·d1, U]`), and a batched matmul with the
//! Clebsch–Gordan contraction of input 2 (all subs' `R = x2 @ C` in one matmul) gives the
//! sub's messages `[Z, n·d3, U]` ([`UvuMessages::messages`]): per `(z, path)` when those
//! matrices are large enough for libtorch's `bmm` to use BLAS, else per `z` with the paths'
//! matrices stacked block-diagonally; single paths from or to scalars are broadcasts.

use tch::{Kind, Tensor};

use super::irreps::Irreps;
use super::tensor_product::Instruction;
use super::tp_kernels::{is_uvu_convolution, Buffers};
use super::wigner::wigner_3j_f64;

/// The paths from one input-1 block to one output degree.
#[derive(Debug)]
pub(crate) struct Sub {
    pub block1: usize,
    /// Channels `U` (the multiplicity of input block `block1`).
    pub mul: i64,
    pub d1: i64,
    pub d3: i64,
    /// Instruction indices, in instruction order.
    pub paths: Vec<usize>,
}

/// Below this many multiply-adds per matrix (`d3·d1·U`) libtorch's `bmm` runs a naive loop
/// (`aten/src/ATen/native/LinearAlgebra.cpp`); a sub's paths are then stacked into one
/// block-diagonal matrix per `z` instead of one matrix per `(z, path)`.
const BMM_NAIVE_BELOW: i64 = 400;

impl Sub {
    /// One matrix per `(z, path)` (`[d3, d1]`, no zero blocks) rather than a block-diagonal one.
    fn per_path(&self) -> bool {
        self.paths.len() > 1 && self.d3 * self.d1 * self.mul >= BMM_NAIVE_BELOW
    }

    /// Columns of the sub's slice of `R = x2 @ C`: `[n, d3, d1]` per path, or the
    /// block-diagonal `[n·d3, n·d1]`.
    fn cg_width(&self) -> i64 {
        let n = self.paths.len() as i64;
        if self.per_path() {
            n * self.d3 * self.d1
        } else {
            n * self.d3 * n * self.d1
        }
    }
}

#[derive(Debug)]
pub(crate) struct UvuMessages {
    pub subs: Vec<Sub>,
    block_dims1: Vec<i64>,
    mul1: Vec<i64>,
    /// Weight count of every path (instruction order).
    pub path_wlen: Vec<i64>,
    /// [CG `[dim2, Σ_s cg_width]`]
    bufs: Buffers,
}

impl UvuMessages {
    pub(crate) fn try_new(
        in1: &Irreps,
        in2: &Irreps,
        out: &Irreps,
        ins: &[Instruction],
    ) -> Option<Self> {
        if !is_uvu_convolution(in2, ins) || !ins[0].has_weight {
            return None;
        }
        let mut subs: Vec<Sub> = Vec::new();
        for (p, i) in ins.iter().enumerate() {
            let (d1, d3) = (in1[i.i_in1].ir.dim() as i64, out[i.i_out].ir.dim() as i64);
            match subs.iter_mut().find(|s| s.block1 == i.i_in1 && s.d3 == d3) {
                Some(s) => s.paths.push(p),
                None => subs.push(Sub {
                    block1: i.i_in1,
                    mul: in1[i.i_in1].mul as i64,
                    d1,
                    d3,
                    paths: vec![p],
                }),
            }
        }
        let cg = cg_columns(in1, in2, out, ins, &subs, false)?;
        Some(UvuMessages {
            subs,
            block_dims1: in1.iter().map(|m| m.dim() as i64).collect(),
            mul1: in1.iter().map(|m| m.mul as i64).collect(),
            path_wlen: ins
                .iter()
                .map(|i| i.path_shape.iter().product::<usize>() as i64)
                .collect(),
            bufs: Buffers::new(vec![cg]),
        })
    }

    /// Per sub, the messages `[Z, n·d3, U]` (row `t·d3 + k`: path `t`, component `k`) of
    /// `x1 [Z, dim1]`, `x2 [Z, dim2]` and the per-sample weights `[Z, weight_numel]`.
    pub(crate) fn messages(&self, x1: &Tensor, x2: &Tensor, w: &Tensor) -> Vec<Tensor> {
        let b = self.bufs.get(x1);
        let z = x1.size()[0];
        // every input block channel-innermost, [Z, d1, U]
        let x_t: Vec<Tensor> = x1
            .split_with_sizes(self.block_dims1.as_slice(), 1)
            .iter()
            .zip(&self.mul1)
            .map(|(x, &u)| x.view([z, u, -1]).transpose(1, 2).contiguous())
            .collect();
        let r_sizes: Vec<i64> = self.subs.iter().map(Sub::cg_width).collect();
        let r_subs = x2.matmul(&b[0]).split_with_sizes(r_sizes.as_slice(), 1);
        // per-path weight chunks `[.., U]` (views; split's backward is a single cat)
        let w_paths = w.split_with_sizes(self.path_wlen.as_slice(), -1);
        self.subs
            .iter()
            .zip(&r_subs)
            .map(|(s, r)| {
                let n = s.paths.len() as i64;
                let x = x_t[s.block1].unsqueeze(1);
                // [Z, n, d1, U] = the weights [Z, n, 1, U] times the features
                let ws = if n == 1 {
                    w_paths[s.paths[0]].unsqueeze(-2)
                } else {
                    Tensor::stack(
                        &s.paths.iter().map(|&p| &w_paths[p]).collect::<Vec<_>>(),
                        -2,
                    )
                };
                let xw = ws.reshape([z, n, 1, s.mul]) * x;
                if n == 1 && s.d1 == 1 {
                    r.view([z, s.d3, 1]) * xw.reshape([z, 1, s.mul])
                } else if n == 1 && s.d3 == 1 {
                    (r.view([z, s.d1, 1]) * xw.reshape([z, s.d1, s.mul])).sum_dim_intlist(
                        [1i64].as_slice(),
                        true,
                        None::<Kind>,
                    )
                } else if s.per_path() {
                    r.reshape([z * n, s.d3, s.d1])
                        .bmm(&xw.reshape([z * n, s.d1, s.mul]))
                        .view([z, n * s.d3, s.mul])
                } else {
                    r.view([z, n * s.d3, n * s.d1])
                        .bmm(&xw.reshape([z, n * s.d1, s.mul]))
                }
            })
            .collect()
    }
}

/// The path-weighted Clebsch–Gordan coefficients of every sub, `[dim2, Σ cg_width]` (f64): per
/// sub `[n, d3, d1]` or the block-diagonal `[n·d3, n·d1]`, row-major; always `[n, d3, d1]`
/// with `all_per_path` (the layout of [`super::uvu_native`]).
pub(crate) fn cg_columns(
    in1: &Irreps,
    in2: &Irreps,
    out: &Irreps,
    ins: &[Instruction],
    subs: &[Sub],
    all_per_path: bool,
) -> Option<Tensor> {
    let s2 = in2.slices();
    let dim2 = in2.dim();
    let mut cols: Vec<Vec<f64>> = Vec::new();
    for s in subs {
        let (n, d1, d3) = (s.paths.len(), s.d1 as usize, s.d3 as usize);
        let cgs: Vec<Vec<f64>> = s
            .paths
            .iter()
            .map(|&p| {
                let i = &ins[p];
                let c =
                    wigner_3j_f64(in1[i.i_in1].ir.l, in2[i.i_in2].ir.l, out[i.i_out].ir.l).ok()?;
                Some(c.iter().map(|v| v * i.path_weight).collect())
            })
            .collect::<Option<_>>()?;
        // entry (t·d3 + k, t'·d1 + a): zero unless t = t' (only those entries when per path)
        for tk in 0..n * d3 {
            let (t, k) = (tk / d3, tk % d3);
            let row_cols = if all_per_path || s.per_path() {
                t * d1..(t + 1) * d1
            } else {
                0..n * d1
            };
            for ta in row_cols {
                let (t_col, a) = (ta / d1, ta % d1);
                let mut col = vec![0.0; dim2];
                if t == t_col {
                    let i = &ins[s.paths[t]];
                    let d2 = in2[i.i_in2].ir.dim();
                    for bb in 0..d2 {
                        col[s2[i.i_in2].start + bb] = cgs[t][(a * d2 + bb) * d3 + k];
                    }
                }
                cols.push(col);
            }
        }
    }
    let ncols = cols.len() as i64;
    Some(
        Tensor::from_slice(&cols.concat())
            .reshape([ncols, dim2 as i64])
            .transpose(0, 1)
            .contiguous(),
    )
}
