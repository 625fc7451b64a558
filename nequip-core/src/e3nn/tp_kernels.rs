//! Evaluation kernels of [`super::TensorProduct`] (replacing e3nn 0.5.9's generated code in
//! `o3/_tensor_product/_codegen.py`).
//!
//! * [`UvuKernel`] — all paths `uvu`, every used block of input 2 with multiplicity 1 (NequIP's
//!   convolution: features ⊗ edge spherical harmonics with per-edge weights). With
//!   `R = x2 @ C` (one matmul against the dense, path-weighted Clebsch–Gordan coefficients
//!   of all paths) the path `p` from input block `i` is `out_p[z,u,k] = W_p[z,u] sum_a
//!   x1_i[z,u,a] R_p[z,a,k]`: one batched matmul per input-1 block covers all its paths, one
//!   broadcast multiply per (block, output degree) applies the weights and writes the result
//!   directly in e3nn's `[mul, 2l+1]` block layout (the weights are views of the flat weight
//!   vector, stacked only where several paths share a group) and one `cat` assembles the
//!   output. That is ~3 ops per block + 2 per (block, degree) instead of
//!   e3nn's several ops per path, with ~3 passes over the output forward (and no
//!   output-sized scatter or zero-filling backward).
//! * [`GenericKernel`] — any instruction list: one short einsum chain per path.

use std::collections::HashMap;
use std::sync::Mutex;

use tch::{Device, Kind, Tensor};

use super::irreps::Irreps;
use super::tensor_product::{ConnectionMode, Instruction};
use super::scalar_tp::ScalarKernel;
use super::uvu_native::UvuNative;
use super::wigner::wigner_3j_f64;

/// Constant tensors kept in f64 / i64 on the CPU, with per-(kind, device) copies made on use.
#[derive(Debug)]
pub(crate) struct Buffers {
    base: Vec<Tensor>,
    cache: Mutex<HashMap<(Kind, Device), Vec<Tensor>>>,
}

impl Buffers {
    pub(crate) fn new(base: Vec<Tensor>) -> Self {
        Buffers {
            base,
            cache: Mutex::new(HashMap::new()),
        }
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

/// Whether every path is `uvu` with a second-input block of multiplicity 1 and all or none
/// are weighted: the instruction lists of NequIP's convolution.
pub(crate) fn is_uvu_convolution(in2: &Irreps, ins: &[Instruction]) -> bool {
    !ins.is_empty()
        && ins
            .iter()
            .all(|i| i.mode == ConnectionMode::Uvu && in2[i.i_in2].mul == 1)
        && ins.iter().all(|i| i.has_weight == ins[0].has_weight)
}

/// Adds `y` into an output block's running sum.
pub(crate) fn accumulate(slot: &mut Option<Tensor>, y: Tensor) {
    *slot = Some(match slot.take() {
        Some(prev) => prev + y,
        None => y,
    });
}

/// `[rows, Σ mul·dim]`: the output blocks in order, zeros where nothing was written.
pub(crate) fn cat_blocks(
    outs: Vec<Option<Tensor>>,
    blocks: &[(i64, i64)],
    rows: i64,
    like: &Tensor,
) -> Tensor {
    let ts: Vec<Tensor> = outs
        .into_iter()
        .zip(blocks)
        .map(|(o, &(m, d))| {
            o.unwrap_or_else(|| Tensor::zeros([rows, m * d], (like.kind(), like.device())))
        })
        .collect();
    if ts.is_empty() {
        Tensor::zeros([rows, 0], (like.kind(), like.device()))
    } else {
        Tensor::cat(&ts, 1)
    }
}

/// Kernel chosen at construction.
#[derive(Debug)]
pub(crate) enum Kernel {
    /// NequIP's convolution; per-sample weights on the CPU go through the native kernel.
    Uvu(UvuKernel, Option<UvuNative>),
    /// Shared `uvw` weights, scalars as second input (NequIP's self-connection); the generic
    /// form kept for per-sample weights and as the reference.
    Scalar(ScalarKernel, GenericKernel),
    Generic(GenericKernel),
}

impl Kernel {
    pub(crate) fn new(
        in1: &Irreps,
        in2: &Irreps,
        out: &Irreps,
        ins: &[Instruction],
        shared: bool,
    ) -> Self {
        match UvuKernel::try_new(in1, in2, out, ins, shared) {
            Some(k) => {
                let native = (!shared).then(|| UvuNative::for_tensor_product(in1, in2, out, ins)).flatten();
                Kernel::Uvu(k, native)
            }
            None => {
                let generic = GenericKernel::new(in1, in2, out, ins, shared);
                match ScalarKernel::try_new(in1, in2, out, ins, shared) {
                    Some(k) => Kernel::Scalar(k, generic),
                    None => Kernel::Generic(generic),
                }
            }
        }
    }

    pub(crate) fn is_fast(&self) -> bool {
        matches!(self, Kernel::Uvu(..))
    }

    pub(crate) fn is_scalar_input(&self) -> bool {
        matches!(self, Kernel::Scalar(..))
    }

    /// `x1 [Z, dim1]`, `x2 [Z, dim2]`, weight `[wn]` or `[Z, wn]` -> `[Z, dim_out]`;
    /// `specialised`: the native kernel (CPU, per-sample weights) and the scalar-input form
    /// where they apply, else only the general forms (grouped uvu ops, per-path einsums).
    pub(crate) fn forward(&self, x1: &Tensor, x2: &Tensor, w: Option<&Tensor>, specialised: bool) -> Tensor {
        let native = specialised && x1.device() == Device::Cpu && w.is_some_and(|w| w.dim() == 2);
        match self {
            Kernel::Uvu(_, Some(n)) if native => {
                n.tensor_product(x1, x2, w.expect("checked"))
            }
            Kernel::Uvu(k, _) => k.forward(x1, x2, w),
            Kernel::Scalar(k, _) if specialised && w.is_some_and(|w| w.dim() == 1) => k.forward(x1, x2, w.expect("checked")),
            Kernel::Scalar(_, k) | Kernel::Generic(k) => k.forward(x1, x2, w),
        }
    }
}

/// The paths of [`UvuKernel`] from one input-1 block, split by output degree.
#[derive(Debug)]
struct UvuGroup {
    /// Input-1 block, its multiplicity and irrep dimension.
    block1: usize,
    mul: i64,
    d1: i64,
    /// Per output degree: `(d3, instruction indices)`; the group's `K = sum n * d3` columns.
    subs: Vec<(i64, Vec<usize>)>,
}

impl UvuGroup {
    fn k(&self) -> i64 {
        self.subs.iter().map(|(d3, p)| d3 * p.len() as i64).sum()
    }
}

#[derive(Debug)]
pub(crate) struct UvuKernel {
    groups: Vec<UvuGroup>,
    block_dims1: Vec<i64>,
    /// `(mul, dim)` of every output block.
    out_blocks: Vec<(i64, i64)>,
    /// `i_out` of every instruction.
    path_out: Vec<usize>,
    weighted: bool,
    /// Weight count of every path (instruction order).
    path_wlen: Vec<i64>,
    /// [CG `[dim2, sum_g d1*K_g]`]
    bufs: Buffers,
}

impl UvuKernel {
    fn try_new(
        in1: &Irreps,
        in2: &Irreps,
        out: &Irreps,
        ins: &[Instruction],
        _shared: bool,
    ) -> Option<Self> {
        if !is_uvu_convolution(in2, ins) {
            return None;
        }
        let weighted = ins[0].has_weight;
        let s2 = in2.slices();
        let dim2 = in2.dim();
        let mut blocks: Vec<usize> = Vec::new();
        for i in ins {
            if !blocks.contains(&i.i_in1) {
                blocks.push(i.i_in1);
            }
        }
        let mut groups = Vec::new();
        let mut cols: Vec<Vec<f64>> = Vec::new();
        for b1 in blocks {
            let (mul, d1) = (in1[b1].mul, in1[b1].ir.dim());
            let mut l3s: Vec<u32> = Vec::new();
            for i in ins.iter().filter(|i| i.i_in1 == b1) {
                if !l3s.contains(&out[i.i_out].ir.l) {
                    l3s.push(out[i.i_out].ir.l);
                }
            }
            let subs: Vec<(i64, Vec<usize>)> = l3s
                .iter()
                .map(|&l3| {
                    let paths = (0..ins.len())
                        .filter(|&p| ins[p].i_in1 == b1 && out[ins[p].i_out].ir.l == l3)
                        .collect();
                    (2 * l3 as i64 + 1, paths)
                })
                .collect();
            // CG columns ordered (a, sub, path, k): R_g = x2 @ C_g viewed as [Z, d1, K_g].
            for a in 0..d1 {
                for (d3, paths) in &subs {
                    for &p in paths {
                        let i = &ins[p];
                        let (l1, l2, l3) = (in1[b1].ir.l, in2[i.i_in2].ir.l, out[i.i_out].ir.l);
                        let c = wigner_3j_f64(l1, l2, l3).ok()?;
                        let d2 = 2 * l2 as usize + 1;
                        for k in 0..*d3 as usize {
                            let mut col = vec![0.0; dim2];
                            for b in 0..d2 {
                                col[s2[i.i_in2].start + b] =
                                    i.path_weight * c[(a * d2 + b) * *d3 as usize + k];
                            }
                            cols.push(col);
                        }
                    }
                }
            }
            groups.push(UvuGroup {
                block1: b1,
                mul: mul as i64,
                d1: d1 as i64,
                subs,
            });
        }
        let ncols = cols.len() as i64;
        let cg = Tensor::from_slice(&cols.concat())
            .reshape([ncols, dim2 as i64])
            .transpose(0, 1)
            .contiguous();
        Some(UvuKernel {
            groups,
            block_dims1: in1.iter().map(|m| m.dim() as i64).collect(),
            out_blocks: out
                .iter()
                .map(|m| (m.mul as i64, m.ir.dim() as i64))
                .collect(),
            path_out: ins.iter().map(|i| i.i_out).collect(),
            weighted,
            path_wlen: ins
                .iter()
                .map(|i| i.path_shape.iter().product::<usize>() as i64)
                .collect(),
            bufs: Buffers::new(vec![cg]),
        })
    }

    /// `R = x2 @ C` (all paths at once); per input-1 block `x1_b [Z, U, d1]` one batched
    /// matmul `O = x1_b @ R_b [Z, d1, K]` gives all its paths; per output degree the
    /// `[Z, U, n, d3]` slice times the weights `[Z, n, U, 1]` is written path-major, i.e.
    /// already as e3nn's `[U, d3]` output blocks, which one `cat` puts in output order.
    fn forward(&self, x1: &Tensor, x2: &Tensor, w: Option<&Tensor>) -> Tensor {
        let b = self.bufs.get(x1);
        let cg = &b[0];
        let z = x1.size()[0];
        let x1_blocks = x1.split_with_sizes(self.block_dims1.as_slice(), 1);
        let r_sizes: Vec<i64> = self.groups.iter().map(|g| g.d1 * g.k()).collect();
        let r_groups = x2.matmul(cg).split_with_sizes(r_sizes.as_slice(), 1);
        // per-path weight chunks `[.., U]` (views; split's backward is a single cat)
        let w_paths: Vec<Tensor> = match (self.weighted, w) {
            (true, Some(w)) => w.split_with_sizes(self.path_wlen.as_slice(), -1),
            (true, None) => panic!("TensorProduct: weights are required"),
            (false, _) => Vec::new(),
        };
        let mut per_out: Vec<Vec<Tensor>> =
            (0..self.out_blocks.len()).map(|_| Vec::new()).collect();
        for (g, r) in self.groups.iter().zip(&r_groups) {
            let k = g.k();
            let x = x1_blocks[g.block1].view([z, g.mul, g.d1]);
            let r = r.view([z, g.d1, k]);
            let o = if g.d1 == 1 { x * r } else { x.bmm(&r) };
            let widths: Vec<i64> = g.subs.iter().map(|(d3, p)| d3 * p.len() as i64).collect();
            for ((d3, paths), os) in g.subs.iter().zip(o.split_with_sizes(widths.as_slice(), 2)) {
                let n = paths.len() as i64;
                let os = os.view([z, g.mul, n, *d3]).permute([0, 2, 1, 3]);
                // weights first: the product is then laid out [Z, n, U, d3] (path-major)
                let t = if self.weighted {
                    // [.., n, U]: a view for a single path, one small copy otherwise
                    let ws = if n == 1 {
                        w_paths[paths[0]].unsqueeze(-2)
                    } else {
                        Tensor::stack(&paths.iter().map(|&p| &w_paths[p]).collect::<Vec<_>>(), -2)
                    };
                    ws.reshape([-1, n, g.mul, 1]) * os
                } else {
                    os.contiguous()
                };
                for (p, blk) in paths.iter().zip(t.unbind(1)) {
                    per_out[self.path_out[*p]].push(blk.reshape([z, g.mul * d3]));
                }
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
                let c =
                    wigner_3j_f64(a.ir.l, b.ir.l, o.ir.l).expect("validated by TensorProduct::new");
                let scaled: Vec<f64> = c.iter().map(|v| v * i.path_weight).collect();
                cgs.push(Tensor::from_slice(&scaled).reshape([
                    a.ir.dim() as i64,
                    b.ir.dim() as i64,
                    o.ir.dim() as i64,
                ]));
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
        let out_blocks = out
            .iter()
            .map(|m| (m.mul as i64, m.ir.dim() as i64))
            .collect();
        GenericKernel {
            paths,
            out_blocks,
            shared,
            bufs: Buffers::new(cgs),
        }
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
                (ConnectionMode::Uvw, Some(w)) => {
                    Tensor::einsum(&format!("zuvk,{zz}uvw->zwk"), &[&s, &w], None::<&[i64]>)
                }
                (ConnectionMode::Uvu, Some(w)) => {
                    Tensor::einsum(&format!("zuvk,{zz}uv->zuk"), &[&s, &w], None::<&[i64]>)
                }
                (ConnectionMode::Uvv, Some(w)) => {
                    Tensor::einsum(&format!("zuvk,{zz}uv->zvk"), &[&s, &w], None::<&[i64]>)
                }
                (ConnectionMode::Uvu, None) => {
                    s.sum_dim_intlist([2i64].as_slice(), false, None::<Kind>)
                }
                (ConnectionMode::Uvv, None) => {
                    s.sum_dim_intlist([1i64].as_slice(), false, None::<Kind>)
                }
                (ConnectionMode::Uvw, None) => unreachable!("rejected by TensorProduct::new"),
            };
            accumulate(&mut outs[p.i_out], r.reshape([z, -1]));
        }
        cat_blocks(outs, &self.out_blocks, z, x1)
    }
}
