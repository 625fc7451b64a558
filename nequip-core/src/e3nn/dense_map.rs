//! A small equivariant linear map as one dense matrix gathered from its flat weight vector.
//!
//! For the narrow layers of small models (e3nn's `o3.Linear` and the self-connection FCTP with
//! a scalar second input, NequIP's `linear_1`/`AtomwiseLinear`/`sc` at a few dozen features) the
//! time goes to dispatching the per-instruction ops (split, reshape, matmul, add, cat and their
//! autograd nodes), not to arithmetic. Such a map is `out = x @ M` with `M[p, q] =
//! w[index[p, q]]·factor[p, q]` (factor 0 where nothing connects): one `index_select`, one
//! `mul` and one `mm` in the forward, the same few in each derivative, whatever the number of
//! instructions. Used only while `M` stays small ([`DENSE_MAX`] entries), where the zeros cost
//! less than the ops they replace; larger maps keep their block-wise forms.

use tch::Tensor;

use super::tp_kernels::Buffers;

/// Largest `rows·cols` turned into a dense matrix (32 KiB in f32).
pub(crate) const DENSE_MAX: usize = 8192;

/// One connection of a [`DenseMap`]: `M[row, col] = w[weight]·factor`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub row: usize,
    pub col: usize,
    pub weight: i64,
    pub factor: f64,
}

/// `M [rows, cols]` as a gather of the flat weight (see the module doc).
#[derive(Debug)]
pub(crate) struct DenseMap {
    rows: i64,
    cols: i64,
    /// `[0]`: weight index of every entry of `M` row-major (i64); `[1]`: its factor.
    bufs: Buffers,
}

impl DenseMap {
    /// `None` when `rows·cols` exceeds [`DENSE_MAX`] or two entries fall on the same element
    /// of `M` (a sum the gather cannot express).
    pub(crate) fn new(rows: usize, cols: usize, entries: impl IntoIterator<Item = Entry>) -> Option<Self> {
        if rows * cols > DENSE_MAX {
            return None;
        }
        let mut index = vec![0i64; rows * cols];
        let mut factor = vec![0f64; rows * cols];
        let mut taken = vec![false; rows * cols];
        for e in entries {
            let at = e.row * cols + e.col;
            if e.row >= rows || e.col >= cols || taken[at] {
                return None;
            }
            taken[at] = true;
            index[at] = e.weight;
            factor[at] = e.factor;
        }
        Some(DenseMap {
            rows: rows as i64,
            cols: cols as i64,
            bufs: Buffers::new(vec![Tensor::from_slice(&index), Tensor::from_slice(&factor)]),
        })
    }

    /// `M [rows, cols]` from the flat weight `w` (differentiable in `w`).
    pub(crate) fn matrix(&self, w: &Tensor) -> Tensor {
        let b = self.bufs.get(w);
        (w.index_select(0, &b[0]) * &b[1]).view([self.rows, self.cols])
    }

    /// `x [Z, rows] @ M` (+ `bias [cols]`): one `mm` or `addmm`.
    pub(crate) fn apply(&self, x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Tensor {
        let m = self.matrix(w);
        match bias {
            Some(b) => b.addmm(x, &m),
            None => x.mm(&m),
        }
    }
}
