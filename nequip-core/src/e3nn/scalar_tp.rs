//! A fully connected (`uvw`) tensor product whose second input is scalars only — NequIP's
//! self-connection `FCTP(features, one-hot node attributes)` (`nequip/nn/_interaction_block.py`,
//! e3nn 0.5.9 `FullyConnectedTensorProduct`) — in a few ops instead of one einsum chain per
//! path. Same numbers as the per-path evaluation (`GenericKernel`, tested against it).
//!
//! With `l2 = 0` every path's Clebsch–Gordan block is `c·δ` (`c = 1/sqrt(2l+1)`), so path
//! `p` is `out[z, w, k] = c·pw Σ_{u,v} x1[z, u, k] x2[z, v] W[u, v, w]`: the scalars are
//! contracted with the weights first — one matmul per second-input block for all its paths,
//! `T = x2 @ W' [V, Σ_p U·W_p]`, the shared weights regathered once (with `c·pw` folded in) —
//! and then `out_p = T_p^T @ x1_p` (`[W, U] @ [U, 2l+1]` per sample, one `bmm`), which is
//! already e3nn's `[mul, 2l+1]` block. Small products (NequIP's self-connection at a few
//! dozen features) skip even that: `(x1 ⊗ x2) [Z, dim1·dim2] @ M` with `M` gathered from the
//! weight in one go (`dense_map.rs`).

use tch::Tensor;

use super::dense_map::{DenseMap, Entry};
use super::irreps::Irreps;
use super::tensor_product::{ConnectionMode, Instruction};
use super::tp_kernels::{accumulate, cat_blocks, Buffers};
use super::wigner::wigner_3j_f64;

#[derive(Debug)]
struct ScalarPath {
    /// `(start, U, d1)` of the input-1 block.
    s1: (i64, i64, i64),
    mul_out: i64,
    i_out: usize,
}

/// The paths reading one second-input block.
#[derive(Debug)]
struct Block2 {
    start: i64,
    mul: i64,
    paths: Vec<ScalarPath>,
    /// `Σ_p U·W_p`.
    cols: i64,
}

#[derive(Debug)]
pub(crate) struct ScalarKernel {
    blocks: Vec<Block2>,
    out_blocks: Vec<(i64, i64)>,
    /// Length of the flat weight.
    weight_numel: i64,
    /// `[0]`: gather index of every block's `W' [V, cols]` into the weight (i64); `[1]`: `c·pw`.
    bufs: Buffers,
    /// Small products: `out = (x1 ⊗ x2) [Z, dim1·dim2] @ M` with `M` gathered from the weight
    /// (see `dense_map.rs`).
    dense: Option<DenseMap>,
}

impl ScalarKernel {
    /// `Some` for shared weights, all paths `uvw` and weighted, second input of scalars only.
    pub(crate) fn try_new(in1: &Irreps, in2: &Irreps, out: &Irreps, ins: &[Instruction], shared: bool) -> Option<Self> {
        let ok = shared && !ins.is_empty() && ins.iter().all(|i| i.mode == ConnectionMode::Uvw && i.has_weight && in2[i.i_in2].ir.l == 0);
        if !ok {
            return None;
        }
        let (sl1, sl2, sl_out) = (in1.slices(), in2.slices(), out.slices());
        let mut entries = Vec::new();
        // flat weight offsets (instruction order)
        let mut offsets = Vec::with_capacity(ins.len());
        let mut off = 0i64;
        for i in ins {
            offsets.push(off);
            off += i.path_shape.iter().product::<usize>() as i64;
        }
        // per second-input block: the columns of W' (each V entries (weight index, c·pw))
        let mut blocks: Vec<(usize, Block2, Vec<Vec<(i64, f64)>>)> = Vec::new();
        for (k, i) in ins.iter().enumerate() {
            let (a, b, o) = (in1[i.i_in1], in2[i.i_in2], out[i.i_out]);
            // the (l, 0, l) block must be c·identity
            let cg = wigner_3j_f64(a.ir.l, 0, o.ir.l).ok()?;
            let d = a.ir.dim();
            let c = cg[0];
            let diagonal = (0..d).all(|x| (0..d).all(|y| (cg[x * d + y] - if x == y { c } else { 0.0 }).abs() < 1e-14));
            if !diagonal || o.ir.l != a.ir.l {
                return None;
            }
            let bi = match blocks.iter().position(|(i2, ..)| *i2 == i.i_in2) {
                Some(bi) => bi,
                None => {
                    let blk = Block2 { start: sl2[i.i_in2].start as i64, mul: b.mul as i64, paths: Vec::new(), cols: 0 };
                    blocks.push((i.i_in2, blk, Vec::new()));
                    blocks.len() - 1
                }
            };
            let (u_n, v_n, w_n) = (a.mul, b.mul, o.mul);
            let (_, blk, columns) = &mut blocks[bi];
            blk.paths.push(ScalarPath { s1: (sl1[i.i_in1].start as i64, u_n as i64, d as i64), mul_out: w_n as i64, i_out: i.i_out });
            blk.cols += (u_n * w_n) as i64;
            for u in 0..u_n {
                for w in 0..w_n {
                    columns.push((0..v_n).map(|v| (offsets[k] + ((u * v_n + v) * w_n + w) as i64, c * i.path_weight)).collect());
                    for (v, x) in (0..v_n).flat_map(|v| (0..d).map(move |x| (v, x))) {
                        let row = (sl1[i.i_in1].start + u * d + x) * in2.dim() + sl2[i.i_in2].start + v;
                        let col = sl_out[i.i_out].start + w * d + x;
                        entries.push(Entry { row, col, weight: offsets[k] + ((u * v_n + v) * w_n + w) as i64, factor: c * i.path_weight });
                    }
                }
            }
        }
        // W' row-major, blocks one after the other
        let (mut index, mut scale) = (Vec::new(), Vec::new());
        for (_, blk, columns) in &blocks {
            for v in 0..blk.mul as usize {
                for col in columns {
                    index.push(col[v].0);
                    scale.push(col[v].1);
                }
            }
        }
        Some(ScalarKernel {
            blocks: blocks.into_iter().map(|(_, b, _)| b).collect(),
            out_blocks: out.iter().map(|m| (m.mul as i64, m.ir.dim() as i64)).collect(),
            weight_numel: off,
            bufs: Buffers::new(vec![Tensor::from_slice(&index), Tensor::from_slice(&scale)]),
            dense: DenseMap::new(in1.dim() * in2.dim(), out.dim(), entries),
        })
    }

    /// `x1 [Z, dim1]`, `x2 [Z, dim2]`, the shared weight `[weight_numel]` -> `[Z, dim_out]`.
    pub(crate) fn forward(&self, x1: &Tensor, x2: &Tensor, w: &Tensor) -> Tensor {
        let z = x1.size()[0];
        debug_assert_eq!(w.size(), [self.weight_numel]);
        if let Some(m) = &self.dense {
            let outer = (x1.unsqueeze(2) * x2.unsqueeze(1)).view([z, -1]);
            return m.apply(&outer, w, None);
        }
        let b = self.bufs.get(x1);
        let w_all = w.index_select(0, &b[0]) * &b[1];
        let sizes: Vec<i64> = self.blocks.iter().map(|blk| blk.mul * blk.cols).collect();
        let mut outs: Vec<Option<Tensor>> = (0..self.out_blocks.len()).map(|_| None).collect();
        for (blk, wb) in self.blocks.iter().zip(w_all.split_with_sizes(sizes.as_slice(), 0)) {
            // T [Z, Σ U·W] = x2 block @ W'
            let t = x2.narrow(1, blk.start, blk.mul).matmul(&wb.view([blk.mul, blk.cols]));
            let widths: Vec<i64> = blk.paths.iter().map(|p| p.s1.1 * p.mul_out).collect();
            for (p, tp) in blk.paths.iter().zip(t.split_with_sizes(widths.as_slice(), 1)) {
                let (st, u, d1) = p.s1;
                let x = x1.narrow(1, st, u * d1).view([z, u, d1]);
                let y = tp.view([z, u, p.mul_out]).transpose(1, 2).bmm(&x).reshape([z, -1]);
                accumulate(&mut outs[p.i_out], y);
            }
        }
        cat_blocks(outs, &self.out_blocks, z, x1)
    }
}
