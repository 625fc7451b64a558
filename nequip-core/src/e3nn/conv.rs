//! NequIP's convolution as one fused computation: the `uvu` tensor product of edge features
//! with the edge spherical harmonics (per-edge weights), the scatter-sum over the edges of
//! each centre atom and the `linear_2` that follows it — the `tp → scatter → linear_2`
//! sequence of `nequip/nn/_interaction_block.py` (nequip 0.6.2), with the same numbers as
//! [`super::TensorProduct`] + `index_add` + [`super::Linear`] (tested against them).
//!
//! The separate ops put the messages in e3nn's layout (per path a `[mul, 2l+1]` block, one
//! `cat`) before the scatter. Here the channel-innermost messages of [`super::uvu_messages`] (per input
//! block and output degree `[E, n·d3, U]`) are scattered to the nodes as they are, and
//! `linear_2` is applied in that layout: its weight rows are gathered per (sub, output block)
//! into `[n·U, mul_out]` matrices, so that `out_j = Σ_s M_s @ W_sj` over the node sums
//! `M_s [N, d3, n·U]`. Everything after the scatter is per node.
//!
//! On the CPU the node sums come from the native kernel of [`super::uvu_native`] (gather,
//! messages and scatter in one autograd node, no edge-sized messages at all); on other
//! devices from the libtorch ops of [`super::uvu_messages`] + `index_select` / `index_add`.

use tch::{Device, Tensor};

use super::linear::Linear;
use super::tensor_product::TensorProduct;
use super::tp_kernels::{accumulate, cat_blocks, Buffers};
use super::uvu_messages::UvuMessages;
use super::uvu_native::UvuNative;

/// One (sub, `linear_2` instruction) pair: `out[i_out] += M_sub @ (pw * W_term)`.
#[derive(Debug)]
struct Term {
    sub: usize,
    i_out: usize,
    mul_out: i64,
}

/// `tp → scatter-sum → linear_2` of an interaction block (see the module docs).
#[derive(Debug)]
pub struct FusedConvolution {
    kernel: UvuMessages,
    /// The native CPU kernel of the messages (used for CPU inputs unless disabled).
    native: Option<UvuNative>,
    terms: Vec<Term>,
    /// `(mul, dim)` of every `linear_2` output block.
    out_blocks: Vec<(i64, i64)>,
    /// Length of the linear weight (the zero appended for gathers sits at this index).
    linear_numel: i64,
    /// Length of every term's `W_term [n·U, mul_out]`.
    term_sizes: Vec<i64>,
    /// `[0]`: the gather index of all terms' `W_term` (concatenated) into the linear weight
    /// extended by one zero (i64); `[1]`: each entry's path weight.
    bufs: Buffers,
}

impl FusedConvolution {
    /// The fused form of `linear.forward(scatter(tp.forward_with(x, sh, w)))`, if `tp` is a
    /// NequIP convolution (all paths `uvu` and weighted, spherical-harmonic blocks of
    /// multiplicity 1) and `linear` maps `tp.irreps_out.simplify()` (any instructions) without
    /// biases; `None` otherwise (callers then use the separate ops).
    pub fn try_new(tp: &TensorProduct, linear: &Linear) -> Option<Self> {
        let ins = &tp.instructions;
        let ok = !tp.shared_weights
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
        let kernel = UvuMessages::try_new(in1, in2, mid, ins)?;
        let native = UvuNative::for_convolution(&kernel, in1, in2, mid, ins);
        // linear instruction weight offsets
        let mut offsets = Vec::with_capacity(linear.instructions.len());
        let mut off = 0usize;
        for li in &linear.instructions {
            offsets.push(off);
            off += li.path_shape.0 * li.path_shape.1;
        }
        let (mut terms, mut term_sizes) = (Vec::new(), Vec::new());
        let (mut index, mut scale) = (Vec::<i64>::new(), Vec::<f64>::new());
        for (s, sub) in kernel.subs.iter().enumerate() {
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
                let before = index.len();
                for r in &rows {
                    for u in 0..sub.mul as usize {
                        for w in 0..mo {
                            index.push(match r {
                                Some(r) => (offsets[k] + (r + u) * mo + w) as i64,
                                None => off as i64,
                            });
                        }
                    }
                }
                scale.resize(index.len(), li.path_weight);
                term_sizes.push((index.len() - before) as i64);
                terms.push(Term {
                    sub: s,
                    i_out: li.i_out,
                    mul_out: mo as i64,
                });
            }
        }
        Some(FusedConvolution {
            kernel,
            native,
            terms,
            out_blocks: linear
                .irreps_out
                .iter()
                .map(|m| (m.mul as i64, m.ir.dim() as i64))
                .collect(),
            linear_numel: off as i64,
            term_sizes,
            bufs: Buffers::new(vec![Tensor::from_slice(&index), Tensor::from_slice(&scale)]),
        })
    }

    /// The node features `x [_, dim1]`, the edges' `neighbours [E]` (i64: whose features each
    /// edge carries), `sh [E, dim2]`, per-edge weights `[E, weight_numel]`, the edges'
    /// `centres [E]` (i64), `n_nodes`, the divisor of the node sums (`sqrt(avg_num_neighbors)`)
    /// and the linear's flat weight → `[n_nodes, dim_out]`. CPU inputs go through the native
    /// kernel of the messages, others through libtorch ops.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(&self, x: &Tensor, neighbours: &Tensor, sh: &Tensor, weight: &Tensor, centres: &Tensor, n_nodes: i64, divisor: Option<f64>, linear_weight: &Tensor) -> Tensor {
        let native = x.device() == Device::Cpu;
        self.forward_using(native, x, neighbours, sh, weight, centres, n_nodes, divisor, linear_weight)
    }

    /// [`Self::forward`] with the messages computed by the native kernel (`native`, CPU only)
    /// or by libtorch ops — the same numbers (tests compare both).
    #[allow(clippy::too_many_arguments)]
    pub fn forward_using(
        &self,
        native: bool,
        x: &Tensor,
        neighbours: &Tensor,
        sh: &Tensor,
        weight: &Tensor,
        centres: &Tensor,
        n_nodes: i64,
        node_divisor: Option<f64>,
        linear_weight: &Tensor,
    ) -> Tensor {
        let b = self.bufs.get(x);
        let (kind, device) = (x.kind(), x.device());
        let subs = &self.kernel.subs;
        let sums: Vec<Tensor> = match self.native.as_ref().filter(|_| native) {
            Some(k) => {
                // each sub's node sums are [N, d3, n·U] already
                let m = k.node_sums(x, neighbours, sh, weight, centres, n_nodes);
                let sizes: Vec<i64> = subs.iter().map(|s| s.d3 * s.paths.len() as i64 * s.mul).collect();
                m.split_with_sizes(sizes.as_slice(), 1)
                    .iter()
                    .zip(subs)
                    .map(|(m, s)| m.reshape([n_nodes, s.d3, s.paths.len() as i64 * s.mul]))
                    .collect()
            }
            None => {
                let x_edges = x.index_select(0, neighbours);
                let z = x_edges.size()[0];
                subs
                .iter()
                .zip(self.kernel.messages(&x_edges, sh, weight))
                .map(|(s, msg)| {
                    let n = s.paths.len() as i64;
                    let m = Tensor::zeros([n_nodes, n * s.d3 * s.mul], (kind, device))
                        .index_add(0, centres, &msg.view([z, -1]));
                    // [N, d3, n·U] (a node-sized copy) for the linear's matmul
                    m.view([n_nodes, n, s.d3, s.mul])
                        .transpose(1, 2)
                        .reshape([n_nodes, s.d3, n * s.mul])
                })
                .collect()
            }
        };
        let w_ext = Tensor::cat(
            &[
                linear_weight.view([-1]),
                linear_weight.new_zeros([1], (kind, device)),
            ],
            0,
        );
        debug_assert_eq!(w_ext.size()[0], self.linear_numel + 1);
        // every term's weights in one gather, path weights and the node-sum divisor applied
        let mut w_all = w_ext.index_select(0, &b[0]) * &b[1];
        if let Some(c) = node_divisor {
            w_all = w_all / c;
        }
        let w_terms = w_all.split_with_sizes(self.term_sizes.as_slice(), 0);
        let mut outs: Vec<Option<Tensor>> = (0..self.out_blocks.len()).map(|_| None).collect();
        for (t, wt) in self.terms.iter().zip(&w_terms) {
            let s = &subs[t.sub];
            let wt = wt.view([s.paths.len() as i64 * s.mul, t.mul_out]);
            // [N·d3, n·U] @ [n·U, mul_out] as one matmul, back to e3nn's [mul_out, d3] blocks
            let y = sums[t.sub]
                .matmul(&wt)
                .view([n_nodes, s.d3, t.mul_out])
                .transpose(1, 2)
                .reshape([n_nodes, -1]);
            accumulate(&mut outs[t.i_out], y);
        }
        cat_blocks(outs, &self.out_blocks, n_nodes, x)
    }
}
