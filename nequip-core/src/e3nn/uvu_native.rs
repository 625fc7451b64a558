//! The messages of NequIP's convolution — gather of the neighbours' features, `uvu` tensor
//! product with the edge spherical harmonics and per-edge weights, scatter-sum to the centres —
//! as one native CPU kernel with its own autograd node (`csrc/uvu_native.cpp`, compiled by
//! `build.rs` against the same libtorch), for [`super::FusedConvolution`] on the CPU. Same
//! numbers as [`super::uvu_messages`] + `index_select` / `index_add` (the libtorch-ops form,
//! used on other devices; tests compare both in values and first, second and third
//! derivatives).
//!
//! For edge `z` (centre `c`, neighbour `n`) and path `p` (input-1 block `x`, CG block `r`,
//! weights `w`): `G[c, o_p + k·ks_p + u] += W[z, w_p + u] · Σ_a R[z, r_p + k·d1 + a] ·
//! X[n, x_p + u·d1 + a]`, where `X` is the node features in e3nn's layout, `R = sh @ CG` (per
//! path `[d3, d1]`, path weights folded in) and `W` the per-edge weights. The messages of one
//! sub (the `n` paths from one input block to one output degree, see
//! [`super::uvu_messages`]) are laid out `[d3, n, U]` (`o_p = start + t·U`, `ks_p = n·U`):
//! their node sums are then already the `[N, d3, n·U]` matrices `linear_2` multiplies. No
//! edge-sized tensor of messages exists, in either direction; every derivative of the node is
//! again this kernel (with another of the four tensors as output), so double backward works.

use std::ffi::{c_char, CStr};

use tch::{Device, Kind, Tensor};
use torch_sys::C_tensor;

use super::irreps::Irreps;
use super::tensor_product::Instruction;
use super::tp_kernels::{is_uvu_convolution, Buffers};
use super::uvu_messages::{cg_columns, Sub, UvuMessages};

extern "C" {
    #[allow(clippy::too_many_arguments)]
    fn nequip_uvu_native(
        target: i64,
        plan: *const C_tensor,
        centres: *const C_tensor,
        neighbours: *const C_tensor,
        n_g: i64,
        n_x: i64,
        a: *const C_tensor,
        b: *const C_tensor,
        c: *const C_tensor,
        err: *mut c_char,
        err_len: usize,
    ) -> *mut C_tensor;
}

/// The kernel's plan and Clebsch–Gordan columns for one convolution.
#[derive(Debug)]
pub(crate) struct UvuNative {
    /// `[per_sample, dim_G, dim_X, dim_R, dim_W, then per path x, d1, U, r, d3, w, o, ks, us]`
    /// (i64, CPU; see `csrc/uvu_native.cpp`).
    plan: Tensor,
    /// [CG `[dim2, dim_R]`]
    bufs: Buffers,
}

impl UvuNative {
    /// The plan of [`super::FusedConvolution`]: node sums of the messages, sub `i`'s path `t`
    /// at columns `start_i + t·U + k·ks_i` (component `k`), `layout[i] = (start_i, ks_i)`.
    pub(crate) fn for_convolution(
        msgs: &UvuMessages,
        in1: &Irreps,
        in2: &Irreps,
        out: &Irreps,
        ins: &[Instruction],
        layout: &[(i64, i64)],
    ) -> Option<Self> {
        let cg = cg_columns(in1, in2, out, ins, &msgs.subs, true)?;
        let slices1 = in1.slices();
        let mut w_offsets = Vec::with_capacity(ins.len());
        let mut w = 0i64;
        for len in &msgs.path_wlen {
            w_offsets.push(w);
            w += len;
        }
        let mut plan = Vec::new();
        let (mut o, mut r) = (0i64, 0i64);
        for (s, &(start, ks)) in msgs.subs.iter().zip(layout) {
            for (t, &p) in s.paths.iter().enumerate() {
                let x = slices1[s.block1].start as i64;
                plan.extend([x, s.d1, s.mul, r, s.d3, w_offsets[p], start + t as i64 * s.mul, ks, 1]);
                r += s.d3 * s.d1;
            }
            o += s.d3 * s.paths.len() as i64 * s.mul;
        }
        debug_assert_eq!(cg.size()[1], r);
        let mut full = vec![0, o, in1.dim() as i64, r, w];
        full.extend(plan);
        Some(UvuNative {
            plan: Tensor::from_slice(&full),
            bufs: Buffers::new(vec![cg]),
        })
    }

    /// The plan of a stand-alone [`super::TensorProduct`] (NequIP's convolution, per-sample
    /// weights): one row per sample, output in e3nn's layout (`[U, d3]` per path: `ks = 1`,
    /// `us = d3`; paths into one output block add up).
    pub(crate) fn for_tensor_product(in1: &Irreps, in2: &Irreps, out: &Irreps, ins: &[Instruction]) -> Option<Self> {
        if !is_uvu_convolution(in2, ins) || !ins[0].has_weight {
            return None;
        }
        let subs: Vec<Sub> = ins
            .iter()
            .enumerate()
            .map(|(p, i)| Sub {
                block1: i.i_in1,
                mul: in1[i.i_in1].mul as i64,
                d1: in1[i.i_in1].ir.dim() as i64,
                d3: out[i.i_out].ir.dim() as i64,
                paths: vec![p],
            })
            .collect();
        let cg = cg_columns(in1, in2, out, ins, &subs, true)?;
        let (slices1, slices_out) = (in1.slices(), out.slices());
        let mut plan = vec![1, out.dim() as i64, in1.dim() as i64, 0, 0];
        let (mut r, mut w) = (0i64, 0i64);
        for (s, i) in subs.iter().zip(ins) {
            let o = slices_out[i.i_out].start as i64;
            plan.extend([slices1[s.block1].start as i64, s.d1, s.mul, r, s.d3, w, o, 1, s.d3]);
            r += s.d3 * s.d1;
            w += i.path_shape.iter().product::<usize>() as i64;
        }
        (plan[3], plan[4]) = (r, w);
        Some(UvuNative { plan: Tensor::from_slice(&plan), bufs: Buffers::new(vec![cg]) })
    }

    /// The tensor product `[Z, dim_out]` of `x1 [Z, dim1]` (CPU), `x2 [Z, dim2]` and the
    /// per-sample weights `[Z, weight_numel]` (plan of [`Self::for_tensor_product`]).
    pub(crate) fn tensor_product(&self, x1: &Tensor, x2: &Tensor, w: &Tensor) -> Tensor {
        let r = x2.matmul(&self.bufs.get(x1)[0]);
        // a per-sample plan: the kernel ignores the (empty) edge indices
        let (none, z) = (Tensor::empty([0], (Kind::Int64, Device::Cpu)), x1.size()[0]);
        let graph = Graph { centres: &none, neighbours: &none, n_g: z, n_x: z };
        graph.apply(0, &self.plan, x1, &r, w)
    }

    /// The node sums `[n_nodes, dim_G]` of the messages of every edge `z` (CPU): the features
    /// `x [_, dim1]` of node `neighbours[z]` ⊗ `sh [Z, dim2]` with the per-edge weights
    /// `[Z, weight_numel]`, summed over the edges of each centre `centres[z]`.
    pub(crate) fn node_sums(
        &self,
        x: &Tensor,
        neighbours: &Tensor,
        sh: &Tensor,
        w: &Tensor,
        centres: &Tensor,
        n_nodes: i64,
    ) -> Tensor {
        let r = sh.mm(&self.bufs.get(x)[0]);
        let graph = Graph { centres, neighbours, n_g: n_nodes, n_x: x.size()[0] };
        graph.apply(0, &self.plan, x, &r, w)
    }
}

/// The edges (`centres`, `neighbours`, i64; ignored by a per-sample plan) and the row counts
/// of the node tensors.
struct Graph<'a> {
    centres: &'a Tensor,
    neighbours: &'a Tensor,
    n_g: i64,
    n_x: i64,
}

impl Graph<'_> {
    /// The kernel's node: computes role `target` (0 node sums of the messages, 1 node
    /// features, 2 CG products, 3 weights) from the other three, given in role order.
    fn apply(&self, target: i64, plan: &Tensor, a: &Tensor, b: &Tensor, c: &Tensor) -> Tensor {
    let mut err = [0 as c_char; 1024];
    // SAFETY: the handles are live tch tensors (`at::Tensor*`); the kernel does not keep
    // them and returns a new handle (owned by the returned `Tensor`) or null.
    let ptr = unsafe {
        nequip_uvu_native(
            target,
            plan.as_ptr(),
            self.centres.as_ptr(),
            self.neighbours.as_ptr(),
            self.n_g,
            self.n_x,
            a.as_ptr(),
            b.as_ptr(),
            c.as_ptr(),
            err.as_mut_ptr(),
            err.len(),
        )
    };
    if ptr.is_null() {
        // SAFETY: the kernel wrote a NUL-terminated message into `err`.
        let msg = unsafe { CStr::from_ptr(err.as_ptr()) }.to_string_lossy();
        // shapes and devices are fixed by the plan's owner: an error here is a bug
        panic!("native convolution kernel: {msg}");
    }
    // SAFETY: a fresh handle from the kernel, owned from here on.
    unsafe { Tensor::from_ptr(ptr) }
}
}
