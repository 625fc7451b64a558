//! NequIP's convolution as one fused computation: the `uvu` tensor product of edge features
//! with the edge spherical harmonics (per-edge weights), the scatter-sum over the edges of
//! each centre atom and the `linear_2` that follows it — the `tp → scatter → linear_2`
//! sequence of `nequip/nn/_interaction_block.py` (nequip 0.6.2), with the same numbers as
//! [`super::TensorProduct`] + `index_add` + [`super::Linear`] (tested against them).
//!
//! The separate ops put the messages in e3nn's layout (per path a `[mul, 2l+1]` block, one
//! `cat`) before the scatter. Here the channel-innermost messages (per input block and output
//! degree `d3`, a *sub* of [`super::uvu_messages`]) are scattered to the nodes as they are, and
//! `linear_2` is applied in that layout, one matmul per output degree: the node sums of all
//! subs of degree `d3` side by side, `M_g [N, d3, C]`, times `W_g [C, Σ mul_out]` — the
//! linear's weight rows gathered once (path weights and the divisor folded in, zeros where no
//! instruction connects a path to an output block) — gives every output block of that degree.
//! Everything after the scatter is per node.
//!
//! On the CPU the node sums come from the native kernel of [`super::uvu_native`] (gather,
//! messages and scatter in one autograd node, no edge-sized messages at all); on other
//! devices from the libtorch ops of [`super::uvu_messages`] + `index_select` / `index_add`.

use tch::{Device, Tensor};

use super::linear::Linear;
use super::scalars::ConstOps;
use super::tensor_product::TensorProduct;
use super::tp_kernels::Buffers;
use super::uvu_messages::UvuMessages;
use super::uvu_native::UvuNative;

/// The subs of one output degree `d3` and the `linear_2` output blocks of that degree: their
/// node sums side by side, `M_g [N, d3, C]` (`C = Σ n·U` over the subs), times one weight
/// matrix `W_g [C, Σ mul_out]` (zero where no instruction connects a path to a block).
#[derive(Debug)]
struct Group {
    d3: i64,
    subs: Vec<usize>,
    /// `C`.
    cols: i64,
    /// `Σ mul_out` over the group's output blocks (in output order).
    muls: i64,
}

/// A run of `linear_2`'s output columns: `len` columns of group `g`'s flat output from `start`
/// (`None`: an output degree no path reaches, zeros).
#[derive(Debug)]
struct Piece {
    group: Option<usize>,
    start: i64,
    len: i64,
}

/// `tp → scatter-sum → linear_2` of an interaction block (see the module docs).
#[derive(Debug)]
pub struct FusedConvolution {
    kernel: UvuMessages,
    /// The native CPU kernel of the messages (used for CPU inputs unless disabled).
    native: Option<UvuNative>,
    groups: Vec<Group>,
    /// `linear_2`'s output in order, as runs of the groups' outputs.
    pieces: Vec<Piece>,
    /// Length of the linear weight.
    linear_numel: i64,
    /// `[0]`: the gather index of every group's `W_g` (concatenated, row-major) into the
    /// linear weight (i64); `[1]`: each entry's path weight (0 where nothing connects).
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
        let subs = &kernel.subs;
        // groups by output degree, in order of first appearance among the subs
        let mut groups: Vec<Group> = Vec::new();
        let mut sub_col = vec![0i64; subs.len()];
        for (i, s) in subs.iter().enumerate() {
            let g = match groups.iter().position(|g| g.d3 == s.d3) {
                Some(g) => g,
                None => {
                    groups.push(Group { d3: s.d3, subs: Vec::new(), cols: 0, muls: 0 });
                    groups.len() - 1
                }
            };
            sub_col[i] = groups[g].cols;
            groups[g].subs.push(i);
            groups[g].cols += s.paths.len() as i64 * s.mul;
        }
        // the native kernel writes each group as [d3, C]: sub i's path t at column
        // sub_col[i] + t·U of its group
        let mut layout = vec![(0i64, 0i64); subs.len()];
        let mut g_off = 0i64;
        for g in &groups {
            for &i in &g.subs {
                layout[i] = (g_off + sub_col[i], g.cols);
            }
            g_off += g.d3 * g.cols;
        }
        let native = UvuNative::for_convolution(&kernel, in1, in2, mid, ins, &layout);
        // output blocks -> (group, first column in the group's output)
        let out_irreps = &linear.irreps_out;
        let mut block_col = vec![(None, 0i64); out_irreps.len()];
        for (j, m) in out_irreps.iter().enumerate() {
            let d = m.ir.dim() as i64;
            if let Some(g) = groups.iter().position(|g| g.d3 == d) {
                block_col[j] = (Some(g), groups[g].muls);
                groups[g].muls += m.mul as i64;
            }
        }
        let mut pieces: Vec<Piece> = Vec::new();
        for (j, m) in out_irreps.iter().enumerate() {
            let (group, col) = block_col[j];
            let len = m.dim() as i64;
            let start = col * m.ir.dim() as i64;
            match pieces.last_mut() {
                Some(p) if p.group == group && (group.is_none() || p.start + p.len == start) => p.len += len,
                _ => pieces.push(Piece { group, start, len }),
            }
        }
        // linear instruction weight offsets
        let mut offsets = Vec::with_capacity(linear.instructions.len());
        let mut off = 0usize;
        for li in &linear.instructions {
            offsets.push(off);
            off += li.path_shape.0 * li.path_shape.1;
        }
        // W_g rows: (sub, path, channel); columns: (output block, channel)
        let (mut index, mut scale) = (Vec::<i64>::new(), Vec::<f64>::new());
        for (gi, g) in groups.iter().enumerate() {
            for &i in &g.subs {
                let s = &subs[i];
                for &p in &s.paths {
                    let (b, r) = mid_rows[ins[p].i_out];
                    for u in 0..s.mul as usize {
                        for (j, m) in out_irreps.iter().enumerate() {
                            if block_col[j].0 != Some(gi) {
                                continue;
                            }
                            let li = linear.instructions.iter().position(|li| li.i_in == b && li.i_out == j);
                            for w in 0..m.mul {
                                let (ix, pw) = match li {
                                    Some(k) => {
                                        let mo = linear.instructions[k].path_shape.1;
                                        ((offsets[k] + (r + u) * mo + w) as i64, linear.instructions[k].path_weight)
                                    }
                                    None => (0, 0.0),
                                };
                                index.push(ix);
                                scale.push(pw);
                            }
                        }
                    }
                }
            }
        }
        Some(FusedConvolution {
            kernel,
            native,
            groups,
            pieces,
            linear_numel: off as i64,
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
        // every group's node sums M_g [N, d3, C]
        let sums: Vec<Tensor> = match self.native.as_ref().filter(|_| native) {
            Some(k) => {
                let m = k.node_sums(x, neighbours, sh, weight, centres, n_nodes);
                let sizes: Vec<i64> = self.groups.iter().map(|g| g.d3 * g.cols).collect();
                m.split_with_sizes(sizes.as_slice(), 1)
                    .iter()
                    .zip(&self.groups)
                    .map(|(m, g)| m.reshape([n_nodes, g.d3, g.cols]))
                    .collect()
            }
            None => {
                let x_edges = x.index_select(0, neighbours);
                let z = x_edges.size()[0];
                let per_sub: Vec<Tensor> = subs
                    .iter()
                    .zip(self.kernel.messages(&x_edges, sh, weight))
                    .map(|(s, msg)| {
                        let n = s.paths.len() as i64;
                        let m = Tensor::zeros([n_nodes, n * s.d3 * s.mul], (kind, device))
                            .index_add(0, centres, &msg.view([z, -1]));
                        m.view([n_nodes, n, s.d3, s.mul]).transpose(1, 2).reshape([n_nodes, s.d3, n * s.mul])
                    })
                    .collect();
                self.groups
                    .iter()
                    .map(|g| Tensor::cat(&g.subs.iter().map(|&i| &per_sub[i]).collect::<Vec<_>>(), 2))
                    .collect()
            }
        };
        debug_assert_eq!(linear_weight.numel() as i64, self.linear_numel);
        // every group's weights in one gather, path weights and the node-sum divisor applied
        // (entries no instruction connects gather weight 0 with factor 0)
        let mut w_all = linear_weight.view([-1]).index_select(0, &b[0]) * &b[1];
        if let Some(c) = node_divisor {
            w_all = w_all.div_c(c);
        }
        let sizes: Vec<i64> = self.groups.iter().map(|g| g.cols * g.muls).collect();
        let w_groups = w_all.split_with_sizes(sizes.as_slice(), 0);
        // per group [N·d3, C] @ [C, Σ mul] as one matmul, then e3nn's [mul, d3] blocks
        let flat: Vec<Tensor> = self
            .groups
            .iter()
            .zip(&sums)
            .zip(&w_groups)
            .map(|((g, m), w)| m.matmul(&w.view([g.cols, g.muls])).transpose(1, 2).reshape([n_nodes, -1]))
            .collect();
        let parts: Vec<Tensor> = self
            .pieces
            .iter()
            .map(|p| match p.group {
                Some(g) if p.start == 0 && p.len == flat[g].size()[1] => flat[g].shallow_clone(),
                Some(g) => flat[g].narrow(1, p.start, p.len),
                None => Tensor::zeros([n_nodes, p.len], (kind, device)),
            })
            .collect();
        match parts.len() {
            0 => Tensor::zeros([n_nodes, 0], (kind, device)),
            1 => parts[0].shallow_clone(),
            _ => Tensor::cat(&parts, 1),
        }
    }
}
