//! Evaluation kernels of [`super::TensorProduct`] (replacing e3nn 0.5.9's generated code in
//! `o3/_tensor_product/_codegen.py`).
//!
//! * [`UvuKernel`] — all paths `uvu`, every used block of input 2 with multiplicity 1 (NequIP's
//!   convolution: features ⊗ edge spherical harmonics with per-edge weights). With
//!   `R = x2 @ C` (one matmul against a dense block of all path-weighted Clebsch–Gordan
//!   coefficients) the path `p` from input block `i` is `out_p[z,u,k] = W_p[z,u] sum_a
//!   x1_i[z,u,a] R_p[z,a,k]`, so each input-1 block needs one `bmm` for all its paths; the
//!   weights are applied by one gather + multiply and the result is put in output order by one
//!   gather (or `index_add` when paths share an output). About 5 + 2·(blocks of input 1) ops in
//!   total, independent of the number of paths, and no `u`-sized intermediate beyond the output.
//! * [`GenericKernel`] — any instruction list: one short einsum chain per path.

use std::collections::HashMap;
use std::sync::Mutex;

use tch::{Device, Kind, Tensor};

use super::irreps::Irreps;
use super::tensor_product::{ConnectionMode, Instruction};
use super::wigner::wigner_3j_f64;

/// Constant tensors kept in f64 / i64 on the CPU, with per-(kind, device) copies made on use.
#[derive(Debug)]
pub(crate) struct Buffers {
    base: Vec<Tensor>,
    cache: Mutex<HashMap<(Kind, Device), Vec<Tensor>>>,
}

impl Buffers {
    pub(crate) fn new(base: Vec<Tensor>) -> Self {
        Buffers { base, cache: Mutex::new(HashMap::new()) }
    }

    /// The buffers for `like`'s kind and device (float buffers take `like`'s kind; integer
    /// index buffers keep theirs).
    pub(crate) fn get(&self, like: &Tensor) -> Vec<Tensor> {
        let key = (like.kind(), like.device());
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(key)
            .or_insert_with(|| {
                self.base
                    .iter()
                    .map(|t| {
                        let t = t.to_device(key.1);
                        if t.kind() == Kind::Int64 {
                            t
                        } else {
                            t.to_kind(key.0)
                        }
                    })
                    .collect()
            })
            .iter()
            .map(Tensor::shallow_clone)
            .collect()
    }
}

/// Kernel chosen at construction.
#[derive(Debug)]
pub(crate) enum Kernel {
    Uvu(UvuKernel),
    Generic(GenericKernel),
}

impl Kernel {
    pub(crate) fn new(in1: &Irreps, in2: &Irreps, out: &Irreps, ins: &[Instruction], shared: bool) -> Self {
        match UvuKernel::try_new(in1, in2, out, ins, shared) {
            Some(k) => Kernel::Uvu(k),
            None => Kernel::Generic(GenericKernel::new(in1, in2, out, ins, shared)),
        }
    }

    pub(crate) fn is_fast(&self) -> bool {
        matches!(self, Kernel::Uvu(_))
    }

    /// `x1 [Z, dim1]`, `x2 [Z, dim2]`, weight `[wn]` or `[Z, wn]` -> `[Z, dim_out]`.
    pub(crate) fn forward(&self, x1: &Tensor, x2: &Tensor, w: Option<&Tensor>) -> Tensor {
        match self {
            Kernel::Uvu(k) => k.forward(x1, x2, w),
            Kernel::Generic(k) => k.forward(x1, x2, w),
        }
    }
}

/// One group of [`UvuKernel`]: all paths from one block of input 1.
#[derive(Debug)]
struct UvuGroup {
    /// Start and multiplicity / irrep dimension of the input-1 block.
    start1: i64,
    mul: i64,
    d1: i64,
    /// Offset of this group's columns in `R` and its output width `K` (sum of path dims).
    r_off: i64,
    k: i64,
}

#[derive(Debug)]
pub(crate) struct UvuKernel {
    groups: Vec<UvuGroup>,
    dim_out: i64,
    weighted: bool,
    /// `index_add` (paths sharing an output) instead of a plain gather.
    accumulate: bool,
    /// [cg `[dim2, S]`, weight gather `[T]`, output index `[T]` or `[dim_out]`]
    bufs: Buffers,
}

impl UvuKernel {
    fn try_new(in1: &Irreps, in2: &Irreps, out: &Irreps, ins: &[Instruction], _shared: bool) -> Option<Self> {
        if ins.is_empty()
            || ins.iter().any(|i| i.mode != ConnectionMode::Uvu || in2[i.i_in2].mul != 1)
            || ins.iter().any(|i| i.has_weight != ins[0].has_weight)
        {
            return None;
        }
        let weighted = ins[0].has_weight;
        let (s1, s2, so) = (in1.slices(), in2.slices(), out.slices());
        let dim2 = in2.dim();
        // weight offsets in instruction order
        let mut w_off = Vec::with_capacity(ins.len());
        let mut acc = 0;
        for i in ins {
            w_off.push(acc);
            if i.has_weight {
                acc += i.path_shape.iter().product::<usize>();
            }
        }
        // group instructions by input-1 block, in order of first appearance
        let mut order: Vec<usize> = Vec::new();
        for i in ins {
            if !order.contains(&i.i_in1) {
                order.push(i.i_in1);
            }
        }
        let mut groups = Vec::new();
        let mut cg_cols: Vec<Vec<f64>> = Vec::new(); // column-major pieces: each column has dim2 rows
        let (mut w_idx, mut src_pos, mut dst_pos) = (Vec::new(), Vec::new(), Vec::new());
        let (mut r_off, mut t_off) = (0usize, 0usize);
        for &g in &order {
            let paths: Vec<usize> = (0..ins.len()).filter(|&p| ins[p].i_in1 == g).collect();
            let (mul, d1) = (in1[g].mul, in1[g].ir.dim());
            let k: usize = paths.iter().map(|&p| out[ins[p].i_out].ir.dim()).sum();
            // R_g columns are indexed (a, kk): a over d1, kk over the concatenated path outputs.
            for a in 0..d1 {
                for &p in &paths {
                    let i = &ins[p];
                    let (l1, l2, l3) = (in1[i.i_in1].ir.l, in2[i.i_in2].ir.l, out[i.i_out].ir.l);
                    let c = wigner_3j_f64(l1, l2, l3).ok()?;
                    let (d2, d3) = (2 * l2 as usize + 1, 2 * l3 as usize + 1);
                    for kk in 0..d3 {
                        let mut col = vec![0.0; dim2];
                        for b in 0..d2 {
                            col[s2[i.i_in2].start + b] = i.path_weight * c[(a * d2 + b) * d3 + kk];
                        }
                        cg_cols.push(col);
                    }
                }
            }
            // output bookkeeping: O_g[z, u, kk] at t_off + u*k + kk
            for u in 0..mul {
                let mut kk0 = 0;
                for &p in &paths {
                    let i = &ins[p];
                    let d3 = out[i.i_out].ir.dim();
                    for kk in 0..d3 {
                        src_pos.push(t_off + u * k + kk0 + kk);
                        dst_pos.push(so[i.i_out].start + u * d3 + kk);
                        w_idx.push(w_off[p] + u); // path_shape (mul, 1): flat index u
                    }
                    kk0 += d3;
                }
            }
            groups.push(UvuGroup { start1: s1[g].start as i64, mul: mul as i64, d1: d1 as i64, r_off: r_off as i64, k: k as i64 });
            r_off += d1 * k;
            t_off += mul * k;
        }
        // Arrange src -> dst. If dst is a permutation of 0..dim_out, use a gather from O.
        let dim_out = out.dim();
        let mut seen = vec![false; dim_out];
        let mut injective = true;
        for &d in &dst_pos {
            injective &= !std::mem::replace(&mut seen[d], true);
        }
        let accumulate = !(injective && seen.iter().all(|&s| s));
        // weight gather indexed by O position (t order)
        let mut w_by_t = vec![0i64; t_off];
        for (&s, &w) in src_pos.iter().zip(&w_idx) {
            w_by_t[s] = w as i64;
        }
        let out_index: Vec<i64> = if accumulate {
            let mut dst_by_t = vec![0i64; t_off];
            for (&s, &d) in src_pos.iter().zip(&dst_pos) {
                dst_by_t[s] = d as i64;
            }
            dst_by_t
        } else {
            let mut src_by_dst = vec![0i64; dim_out];
            for (&s, &d) in src_pos.iter().zip(&dst_pos) {
                src_by_dst[d] = s as i64;
            }
            src_by_dst
        };
        let ncols = cg_cols.len() as i64;
        let flat: Vec<f64> = cg_cols.concat();
        let cg = Tensor::from_slice(&flat).reshape([ncols, dim2 as i64]).transpose(0, 1).contiguous();
        let bufs = Buffers::new(vec![cg, Tensor::from_slice(&w_by_t), Tensor::from_slice(&out_index)]);
        Some(UvuKernel { groups, dim_out: dim_out as i64, weighted, accumulate, bufs })
    }

    fn forward(&self, x1: &Tensor, x2: &Tensor, w: Option<&Tensor>) -> Tensor {
        let b = self.bufs.get(x1);
        let (cg, w_idx, out_idx) = (&b[0], &b[1], &b[2]);
        let z = x1.size()[0];
        let r = x2.matmul(cg);
        let parts: Vec<Tensor> = self
            .groups
            .iter()
            .map(|g| {
                let x = x1.narrow(1, g.start1, g.mul * g.d1).reshape([z, g.mul, g.d1]);
                let rg = r.narrow(1, g.r_off, g.d1 * g.k).reshape([z, g.d1, g.k]);
                let o = if g.d1 == 1 { x * rg } else { x.bmm(&rg) };
                o.reshape([z, g.mul * g.k])
            })
            .collect();
        let mut o = if parts.len() == 1 { parts.into_iter().next().expect("one") } else { Tensor::cat(&parts, 1) };
        if self.weighted {
            let w = w.expect("TensorProduct: weights are required");
            o = o * w.index_select(-1, w_idx);
        }
        if self.accumulate {
            Tensor::zeros([z, self.dim_out], (o.kind(), o.device())).index_add(1, out_idx, &o)
        } else {
            o.index_select(1, out_idx)
        }
    }
}

/// Per-path data of [`GenericKernel`].
#[derive(Debug)]
struct GenericPath {
    mode: ConnectionMode,
    s1: (i64, i64, i64),
    s2: (i64, i64, i64),
    i_out: usize,
    /// `(offset, path_shape)` into the flat weight when weighted.
    weight: Option<(i64, Vec<i64>)>,
}

#[derive(Debug)]
pub(crate) struct GenericKernel {
    paths: Vec<GenericPath>,
    out_blocks: Vec<(i64, i64)>,
    shared: bool,
    /// path-weighted CG per path.
    bufs: Buffers,
}

impl GenericKernel {
    fn new(in1: &Irreps, in2: &Irreps, out: &Irreps, ins: &[Instruction], shared: bool) -> Self {
        let (sl1, sl2) = (in1.slices(), in2.slices());
        let mut off = 0i64;
        let mut cgs = Vec::new();
        let paths = ins
            .iter()
            .map(|i| {
                let (a, b, o) = (in1[i.i_in1], in2[i.i_in2], out[i.i_out]);
                let c = wigner_3j_f64(a.ir.l, b.ir.l, o.ir.l).expect("validated by TensorProduct::new");
                let scaled: Vec<f64> = c.iter().map(|v| v * i.path_weight).collect();
                cgs.push(Tensor::from_slice(&scaled).reshape([a.ir.dim() as i64, b.ir.dim() as i64, o.ir.dim() as i64]));
                let weight = i.has_weight.then(|| {
                    let shape: Vec<i64> = i.path_shape.iter().map(|&s| s as i64).collect();
                    let n: i64 = shape.iter().product();
                    off += n;
                    (off - n, shape)
                });
                GenericPath {
                    mode: i.mode,
                    s1: (sl1[i.i_in1].start as i64, a.mul as i64, a.ir.dim() as i64),
                    s2: (sl2[i.i_in2].start as i64, b.mul as i64, b.ir.dim() as i64),
                    i_out: i.i_out,
                    weight,
                }
            })
            .collect();
        let out_blocks = out.iter().map(|m| (m.mul as i64, m.ir.dim() as i64)).collect();
        GenericKernel { paths, out_blocks, shared, bufs: Buffers::new(cgs) }
    }

    fn forward(&self, x1: &Tensor, x2: &Tensor, w: Option<&Tensor>) -> Tensor {
        let cgs = self.bufs.get(x1);
        let z = x1.size()[0];
        let mut outs: Vec<Option<Tensor>> = (0..self.out_blocks.len()).map(|_| None).collect();
        for (p, c) in self.paths.iter().zip(&cgs) {
            let (st1, m1, d1) = p.s1;
            let (st2, m2, d2) = p.s2;
            let a = x1.narrow(1, st1, m1 * d1).reshape([z, m1, d1]);
            let b = x2.narrow(1, st2, m2 * d2).reshape([z, m2, d2]);
            let t = Tensor::einsum("zvj,ijk->zvik", &[&b, c], None::<&[i64]>);
            let s = Tensor::einsum("zui,zvik->zuvk", &[&a, &t], None::<&[i64]>);
            let wt = p.weight.as_ref().map(|(o, shape)| {
                let w = w.expect("TensorProduct: weights are required");
                let n: i64 = shape.iter().product();
                let mut sh = if self.shared { vec![] } else { vec![z] };
                sh.extend(shape);
                w.narrow(-1, *o, n).reshape(sh)
            });
            let zz = if self.shared { "" } else { "z" };
            let r = match (p.mode, wt) {
                (ConnectionMode::Uvw, Some(w)) => Tensor::einsum(&format!("zuvk,{zz}uvw->zwk"), &[&s, &w], None::<&[i64]>),
                (ConnectionMode::Uvu, Some(w)) => Tensor::einsum(&format!("zuvk,{zz}uv->zuk"), &[&s, &w], None::<&[i64]>),
                (ConnectionMode::Uvv, Some(w)) => Tensor::einsum(&format!("zuvk,{zz}uv->zvk"), &[&s, &w], None::<&[i64]>),
                (ConnectionMode::Uvu, None) => s.sum_dim_intlist([2i64].as_slice(), false, None::<Kind>),
                (ConnectionMode::Uvv, None) => s.sum_dim_intlist([1i64].as_slice(), false, None::<Kind>),
                (ConnectionMode::Uvw, None) => unreachable!("rejected by TensorProduct::new"),
            };
            let r = r.reshape([z, -1]);
            let slot = &mut outs[p.i_out];
            *slot = Some(match slot.take() {
                Some(prev) => prev + r,
                None => r,
            });
        }
        let blocks: Vec<Tensor> = outs
            .into_iter()
            .zip(&self.out_blocks)
            .map(|(o, &(m, d))| o.unwrap_or_else(|| Tensor::zeros([z, m * d], (x1.kind(), x1.device()))))
            .collect();
        if blocks.is_empty() {
            Tensor::zeros([z, 0], (x1.kind(), x1.device()))
        } else {
            Tensor::cat(&blocks, 1)
        }
    }
}
