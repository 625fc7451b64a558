//! Evaluation kernels of [`super::TensorProduct`] (replacing e3nn 0.5.9's generated code in
//! `o3/_tensor_product/_codegen.py`).
//!
//! * [`UvuKernel`] — all paths `uvu`, every used block of input 2 with multiplicity 1 (NequIP's
//!   convolution: features ⊗ edge spherical harmonics with per-edge weights). With
//!   `R = x2 @ C` (a matmul against the dense, path-weighted Clebsch–Gordan coefficients)
//!   the path `p` from input block `i` is `out_p[z,u,k] = sum_a (W_p[z,u] x1_i[z,u,a])
//!   R_p[z,a,k]`. Paths are grouped by (input-1 block, output degree): each group is one
//!   weight-broadcast multiply and one batched `bmm` whose result is already laid out as
//!   e3nn's output blocks, so the output is written once and copied once (the final `cat`);
//!   a single gather reorders the weights. That is ~4 ops per group (≤ (l_max+1)² groups)
//!   instead of e3nn's several ops per path, and memory traffic is dominated by 2 passes over
//!   the output (plus the same in the backward pass).
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

/// One sub-group of [`UvuKernel`]: the `n` paths from one input-1 block to one output `l`.
#[derive(Debug)]
struct UvuSub {
    /// Input-1 block, its multiplicity and irrep dimension; output irrep dimension.
    block1: usize,
    mul: i64,
    d1: i64,
    d3: i64,
    /// Instruction indices of the paths (in the order of the sub-group's CG columns).
    paths: Vec<usize>,
    /// Width of this sub-group's slice of the permuted weight (`n * mul`, 0 if unweighted).
    w_len: i64,
}

#[derive(Debug)]
pub(crate) struct UvuKernel {
    subs: Vec<UvuSub>,
    block_dims1: Vec<i64>,
    /// `(mul, dim)` of every output block.
    out_blocks: Vec<(i64, i64)>,
    /// `i_out` of every instruction.
    path_out: Vec<usize>,
    weighted: bool,
    /// [weight permutation `[wn]` (i64), then one CG block `[dim2, n*d1*d3]` per sub-group]
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
        let s2 = in2.slices();
        let dim2 = in2.dim();
        // flat weight offset of every path (instruction order; path_shape (mul, 1))
        let mut w_off = Vec::with_capacity(ins.len());
        let mut acc = 0;
        for i in ins {
            w_off.push(acc);
            acc += i.path_shape.iter().product::<usize>();
        }
        // sub-groups keyed by (input-1 block, output l), in order of first appearance
        let mut keys: Vec<(usize, u32)> = Vec::new();
        for i in ins {
            let key = (i.i_in1, out[i.i_out].ir.l);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        let mut subs = Vec::new();
        let mut w_perm: Vec<i64> = Vec::new();
        let mut cgs = Vec::new();
        for (b1, l3) in keys {
            let paths: Vec<usize> = (0..ins.len()).filter(|&p| ins[p].i_in1 == b1 && out[ins[p].i_out].ir.l == l3).collect();
            let (mul, d1, d3) = (in1[b1].mul, in1[b1].ir.dim(), 2 * l3 as usize + 1);
            // CG columns ordered (path, a, k): R_s = x2 @ cg viewed as [Z * n, d1, d3].
            let mut cols: Vec<Vec<f64>> = Vec::new();
            for &p in &paths {
                let i = &ins[p];
                let (l1, l2) = (in1[i.i_in1].ir.l, in2[i.i_in2].ir.l);
                let c = wigner_3j_f64(l1, l2, l3).ok()?;
                let d2 = 2 * l2 as usize + 1;
                for a in 0..d1 {
                    for k in 0..d3 {
                        let mut col = vec![0.0; dim2];
                        for b in 0..d2 {
                            col[s2[i.i_in2].start + b] = i.path_weight * c[(a * d2 + b) * d3 + k];
                        }
                        cols.push(col);
                    }
                }
                if weighted {
                    w_perm.extend((0..mul).map(|u| (w_off[p] + u) as i64));
                }
            }
            let ncols = cols.len() as i64;
            cgs.push(Tensor::from_slice(&cols.concat()).reshape([ncols, dim2 as i64]).transpose(0, 1).contiguous());
            let w_len = if weighted { (paths.len() * mul) as i64 } else { 0 };
            subs.push(UvuSub { block1: b1, mul: mul as i64, d1: d1 as i64, d3: d3 as i64, paths, w_len });
        }
        let mut base = vec![Tensor::from_slice(&w_perm)];
        base.extend(cgs);
        Some(UvuKernel {
            subs,
            block_dims1: in1.iter().map(|m| m.dim() as i64).collect(),
            out_blocks: out.iter().map(|m| (m.mul as i64, m.ir.dim() as i64)).collect(),
            path_out: ins.iter().map(|i| i.i_out).collect(),
            weighted,
            bufs: Buffers::new(base),
        })
    }

    /// Per sub-group `s` (paths `p` from block `x1_b [Z, U, d1]` to output degree `l`):
    /// `A[z,p,u,a] = W_p[z,u] x1_b[z,u,a]`, `R = x2 @ C_s` viewed `[Z*n, d1, d3]`, and one
    /// `bmm` gives every path's output `[Z, n, U, d3]` already in e3nn's per-block layout;
    /// the blocks are then concatenated in output order (the only output-sized copy).
    fn forward(&self, x1: &Tensor, x2: &Tensor, w: Option<&Tensor>) -> Tensor {
        let b = self.bufs.get(x1);
        let (w_perm, cgs) = (&b[0], &b[1..]);
        let z = x1.size()[0];
        let x1_blocks = x1.split_with_sizes(self.block_dims1.as_slice(), 1);
        let w_subs: Vec<Tensor> = if self.weighted {
            let w = w.expect("TensorProduct: weights are required");
            let lens: Vec<i64> = self.subs.iter().map(|s| s.w_len).collect();
            w.index_select(-1, w_perm).split_with_sizes(lens.as_slice(), -1)
        } else {
            vec![]
        };
        let mut per_out: Vec<Vec<Tensor>> = (0..self.out_blocks.len()).map(|_| Vec::new()).collect();
        for (si, (s, cg)) in self.subs.iter().zip(cgs).enumerate() {
            let n = s.paths.len() as i64;
            let x = x1_blocks[s.block1].view([z, 1, s.mul, s.d1]);
            let a = match w_subs.get(si) {
                // shared weights [n*U] broadcast over z, per-sample [z, n*U]
                Some(ws) => ws.reshape([-1, n, s.mul, 1]) * x,
                None => x.expand([z, n, s.mul, s.d1], false),
            }
            .reshape([z * n, s.mul, s.d1]);
            let r = x2.matmul(cg).view([z * n, s.d1, s.d3]);
            let o = if s.d1 == 1 { a * r } else { a.bmm(&r) };
            for (p, t) in s.paths.iter().zip(o.view([z, n, s.mul * s.d3]).unbind(1)) {
                per_out[self.path_out[*p]].push(t);
            }
        }
        let blocks: Vec<Tensor> = per_out
            .into_iter()
            .zip(&self.out_blocks)
            .map(|(ts, &(m, d))| {
                ts.into_iter()
                    .reduce(|acc, t| acc + t)
                    .unwrap_or_else(|| Tensor::zeros([z, m * d], (x1.kind(), x1.device())))
            })
            .collect();
        Tensor::cat(&blocks, 1)
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
