//! NequIP's convolution as one fused computation: the `uvu` tensor product of edge features
//! with the edge spherical harmonics (per-edge weights), the scatter-sum over the edges of
//! each centre atom and the `linear_2` that follows it — the `tp → scatter → linear_2`
//! sequence of `nequip/nn/_interaction_block.py` (nequip 0.6.2), with the same numbers as
//! [`super::TensorProduct`] + `index_add` + [`super::Linear`] (tested against them).
//!
//! The separate ops write the tensor product in e3nn's layout (per path a `[mul, 2l+1]`
//! block): an output-sized product with the weights, a `cat`, and elementwise loops whose
//! innermost axis is the 2l+1 components, plus all their derivatives. Here the paths from one
//! input block to one output degree (a *sub*, `n` paths) are computed channel-innermost: the
//! weights multiply the small side, `xw[e,t,a,u] = W_t[e,u] x[e,a,u]` (`[E, n·d1, U]`), and one
//! batched matmul with the transposed block-diagonal (over the `n` paths) Clebsch–Gordan
//! contraction of the spherical harmonics, `R_bdᵀ = (x2 @ C) [E, n·d3, n·d1]`, gives the
//! messages `[E, n·d3, U]` (single paths from or to scalars as broadcasts). They are
//! scattered to the nodes as they are, and `linear_2` is applied in that layout: its weight
//! rows are gathered per (sub, output block) into `[n·U, mul_out]` matrices, so that
//! `out_j = Σ_s M_s @ W_sj` over the node sums `M_s [N, d3, n·U]`. The only edge-sized tensors
//! are the messages (and their gradients); everything after the scatter is per node.

use tch::Tensor;

use super::irreps::Irreps;
use super::linear::Linear;
use super::tensor_product::{ConnectionMode, TensorProduct};
use super::tp_kernels::Buffers;
use super::wigner::wigner_3j_f64;

/// The paths from one input-1 block to one output degree.
#[derive(Debug)]
struct Sub {
    block1: usize,
    mul: i64,
    d1: i64,
    d3: i64,
    /// Tensor-product instruction indices, in instruction order.
    paths: Vec<usize>,
}

/// One (sub, `linear_2` instruction) pair: `out[i_out] += pw * M_sub @ W_term`.
#[derive(Debug)]
struct Term {
    sub: usize,
    i_out: usize,
    mul_out: i64,
    path_weight: f64,
    /// Index (in the buffers) of the gather index of `W_term [n·U, mul_out]` into the
    /// linear weight extended by one zero.
    index_buf: usize,
}

/// `tp → scatter-sum → linear_2` of an interaction block (see the module docs).
#[derive(Debug)]
pub struct FusedConvolution {
    subs: Vec<Sub>,
    terms: Vec<Term>,
    block_dims1: Vec<i64>,
    mul1: Vec<i64>,
    path_wlen: Vec<i64>,
    /// `(mul, dim)` of every `linear_2` output block.
    out_blocks: Vec<(i64, i64)>,
    /// Length of the linear weight (the zero appended for gathers sits at this index).
    linear_numel: i64,
    /// `[0]`: CG `[dim2, Σ_s cols_s]`; then one i64 gather index per term.
    bufs: Buffers,
}

impl FusedConvolution {
    /// The fused form of `linear.forward(scatter(tp.forward_with(x, sh, w)))`, if `tp` is a
    /// NequIP convolution (all paths `uvu` and weighted, spherical-harmonic blocks of
    /// multiplicity 1) and `linear` maps `tp.irreps_out.simplify()` with e3nn's default
    /// instructions and no biases; `None` otherwise (callers then use the separate ops).
    pub fn try_new(tp: &TensorProduct, linear: &Linear) -> Option<Self> {
        let ins = &tp.instructions;
        let ok = !ins.is_empty()
            && !tp.shared_weights
            && ins.iter().all(|i| {
                i.mode == ConnectionMode::Uvu && i.has_weight && tp.irreps_in2[i.i_in2].mul == 1
            })
            && linear.bias_numel == 0
            && linear.weight.is_some()
            && linear.irreps_in == tp.irreps_out.simplify();
        if !ok {
            return None;
        }
        let (in1, in2, mid) = (&tp.irreps_in1, &tp.irreps_in2, &tp.irreps_out);
        // mid block -> (simplified block, first row of its channels in that block)
        let mut mid_rows = Vec::with_capacity(mid.len());
        let (mut sb, mut row) = (0usize, 0usize);
        for o in 0..mid.len() {
            if o > 0 {
                if mid[o].ir == mid[o - 1].ir {
                    row += mid[o - 1].mul;
                } else {
                    sb += 1;
                    row = 0;
                }
            }
            mid_rows.push((sb, row));
        }
        let mut subs: Vec<Sub> = Vec::new();
        for (p, i) in ins.iter().enumerate() {
            let (d1, d3) = (in1[i.i_in1].ir.dim() as i64, mid[i.i_out].ir.dim() as i64);
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
        let cg = cg_columns(in1, in2, tp, &subs)?;
        let mut bufs = vec![cg];
        // linear instruction weight offsets
        let mut offsets = Vec::with_capacity(linear.instructions.len());
        let mut off = 0usize;
        for li in &linear.instructions {
            offsets.push(off);
            off += li.path_shape.0 * li.path_shape.1;
        }
        let mut terms = Vec::new();
        for (s, sub) in subs.iter().enumerate() {
            for (k, li) in linear.instructions.iter().enumerate() {
                let rows: Vec<Option<usize>> = sub
                    .paths
                    .iter()
                    .map(|&p| {
                        let (b, r) = mid_rows[ins[p].i_out];
                        (b == li.i_in).then_some(r)
                    })
                    .collect();
                if rows.iter().all(Option::is_none) {
                    continue;
                }
                let mo = li.path_shape.1;
                let mut idx = Vec::with_capacity(sub.mul as usize * rows.len() * mo);
                for r in &rows {
                    for u in 0..sub.mul as usize {
                        for w in 0..mo {
                            idx.push(match r {
                                Some(r) => (offsets[k] + (r + u) * mo + w) as i64,
                                None => off as i64,
                            });
                        }
                    }
                }
                terms.push(Term {
                    sub: s,
                    i_out: li.i_out,
                    mul_out: mo as i64,
                    path_weight: li.path_weight,
                    index_buf: bufs.len(),
                });
                bufs.push(Tensor::from_slice(&idx));
            }
        }
        Some(FusedConvolution {
            subs,
            terms,
            block_dims1: in1.iter().map(|m| m.dim() as i64).collect(),
            mul1: in1.iter().map(|m| m.mul as i64).collect(),
            path_wlen: ins
                .iter()
                .map(|i| i.path_shape.iter().product::<usize>() as i64)
                .collect(),
            out_blocks: linear
                .irreps_out
                .iter()
                .map(|m| (m.mul as i64, m.ir.dim() as i64))
                .collect(),
            linear_numel: off as i64,
            bufs: Buffers::new(bufs),
        })
    }

    /// `x_edges [E, dim1]` (the features of each edge's neighbour), `sh [E, dim2]`, per-edge
    /// weights `[E, weight_numel]`, `centres [E]` (i64), `n_nodes`, the divisor of the node
    /// sums (`sqrt(avg_num_neighbors)`) and the linear's flat weight → `[n_nodes, dim_out]`.
    pub fn forward(
        &self,
        x_edges: &Tensor,
        sh: &Tensor,
        weight: &Tensor,
        centres: &Tensor,
        n_nodes: i64,
        node_divisor: Option<f64>,
        linear_weight: &Tensor,
    ) -> Tensor {
        let b = self.bufs.get(x_edges);
        let (kind, device) = (x_edges.kind(), x_edges.device());
        let z = x_edges.size()[0];
        // every input block channel-innermost, [E, d1, U] (elementwise products below are
        // then vectorised over the channels instead of looping over 2l+1 components)
        let x_t: Vec<Tensor> = x_edges
            .split_with_sizes(self.block_dims1.as_slice(), 1)
            .iter()
            .zip(&self.mul1)
            .map(|(x, &u)| x.view([z, u, -1]).transpose(1, 2).contiguous())
            .collect();
        let r_sizes: Vec<i64> = self.subs.iter().map(cg_width).collect();
        let r_subs = sh.matmul(&b[0]).split_with_sizes(r_sizes.as_slice(), 1);
        let w_paths = weight.split_with_sizes(self.path_wlen.as_slice(), -1);
        let sums: Vec<Tensor> = self
            .subs
            .iter()
            .zip(&r_subs)
            .map(|(s, r)| {
                let n = s.paths.len() as i64;
                // [E, n, U]: the weights of the sub's paths
                let ws = if n == 1 {
                    w_paths[s.paths[0]].unsqueeze(1)
                } else {
                    Tensor::stack(&s.paths.iter().map(|&p| &w_paths[p]).collect::<Vec<_>>(), 1)
                };
                // [E, n, d1, U] -> messages [E, n·d3, U] = R_bdᵀ [E, n·d3, n·d1] @ xw
                let xw = ws.unsqueeze(2) * x_t[s.block1].unsqueeze(1);
                // (single paths from or to scalars as vectorised broadcasts: their matrices
                // are below the size at which libtorch's bmm leaves its naive loop)
                let msg = if n == 1 && s.d1 == 1 {
                    r.view([z, s.d3, 1]) * xw.view([z, 1, s.mul])
                } else if n == 1 && s.d3 == 1 {
                    (r.view([z, s.d1, 1]) * xw.view([z, s.d1, s.mul])).sum_dim_intlist(
                        [1i64].as_slice(),
                        true,
                        None::<tch::Kind>,
                    )
                } else {
                    r.view([z, n * s.d3, n * s.d1])
                        .bmm(&xw.view([z, n * s.d1, s.mul]))
                };
                let m = Tensor::zeros([n_nodes, n * s.d3 * s.mul], (kind, device)).index_add(
                    0,
                    centres,
                    &msg.view([z, -1]),
                );
                let m = match node_divisor {
                    Some(c) => m / c,
                    None => m,
                };
                // [N, d3, n·U] (a node-sized copy) for the linear's matmul
                m.view([n_nodes, n, s.d3, s.mul]).transpose(1, 2).reshape([
                    n_nodes,
                    s.d3,
                    n * s.mul,
                ])
            })
            .collect();
        let w_ext = Tensor::cat(
            &[
                linear_weight.view([-1]),
                linear_weight.new_zeros([1], (kind, device)),
            ],
            0,
        );
        debug_assert_eq!(w_ext.size()[0], self.linear_numel + 1);
        let mut outs: Vec<Option<Tensor>> = (0..self.out_blocks.len()).map(|_| None).collect();
        for t in &self.terms {
            let s = &self.subs[t.sub];
            let wt = (w_ext.index_select(0, &b[t.index_buf]) * t.path_weight)
                .view([s.paths.len() as i64 * s.mul, t.mul_out]);
            // [N·d3, n·U] @ [n·U, mul_out] as one matmul, back to e3nn's [mul_out, d3] blocks
            let y = sums[t.sub]
                .matmul(&wt)
                .view([n_nodes, s.d3, t.mul_out])
                .transpose(1, 2)
                .reshape([n_nodes, -1]);
            let slot = &mut outs[t.i_out];
            *slot = Some(match slot.take() {
                Some(prev) => prev + y,
                None => y,
            });
        }
        let blocks: Vec<Tensor> = outs
            .into_iter()
            .zip(&self.out_blocks)
            .map(|(o, &(m, d))| {
                o.unwrap_or_else(|| Tensor::zeros([n_nodes, m * d], (kind, device)))
            })
            .collect();
        Tensor::cat(&blocks, 1)
    }
}

/// Columns of the sub's slice of `R = x2 @ C`: the transposed block-diagonal `[n·d3, n·d1]`.
fn cg_width(s: &Sub) -> i64 {
    let n = s.paths.len() as i64;
    n * s.d1 * n * s.d3
}

/// The path-weighted Clebsch–Gordan coefficients of every sub, `[dim2, Σ cg_width]` (f64).
fn cg_columns(in1: &Irreps, in2: &Irreps, tp: &TensorProduct, subs: &[Sub]) -> Option<Tensor> {
    let s2 = in2.slices();
    let dim2 = in2.dim();
    let mut cols: Vec<Vec<f64>> = Vec::new();
    for s in subs {
        let (n, d1, d3) = (s.paths.len(), s.d1 as usize, s.d3 as usize);
        let cgs: Vec<Vec<f64>> = s
            .paths
            .iter()
            .map(|&p| {
                let i = &tp.instructions[p];
                let c = wigner_3j_f64(
                    in1[i.i_in1].ir.l,
                    in2[i.i_in2].ir.l,
                    tp.irreps_out[i.i_out].ir.l,
                )
                .ok()?;
                Some(c.iter().map(|v| v * i.path_weight).collect())
            })
            .collect::<Option<_>>()?;
        // entry (t·d3 + k, t'·d1 + a) of the transposed block-diagonal matrix, row-major
        for tk in 0..n * d3 {
            let (t, k) = (tk / d3, tk % d3);
            for ta in 0..n * d1 {
                let (t_col, a) = (ta / d1, ta % d1);
                let mut col = vec![0.0; dim2];
                if t == t_col {
                    let i = &tp.instructions[s.paths[t]];
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
