//! Neighbor lists with periodic boundary conditions. Mirrors
//! `nequip/data/AtomicData.py::neighbor_list_and_relative_vec`, which calls
//! `ase.neighborlist.primitive_neighbor_list("ijS", ...)`; this is a pure-Rust replacement with
//! the same edge set:
//!
//! - full list (both `i→j` and `j→i`), pairs with distance **strictly** below `r_max`;
//! - integer cell shifts `S`: the edge vector is `pos[j] - pos[i] + S · cell` (cell rows are the
//!   lattice vectors); `S` is zero along non-periodic axes;
//! - periodic in any subset of axes, triclinic cells, cells smaller than `r_max` (many images);
//! - the self edge `i→i` with `S = 0` only when asked for; periodic self images are kept.
//!
//! Algorithm, O(N): positions are wrapped into the cell along periodic axes; every periodic image
//! that can lie within `r_max` of the cell (judged by the distance between lattice planes) becomes
//! an explicit "ghost" point; all points are sorted into a Cartesian bin grid of bin width
//! `>= r_max / 2` (counting sort), and each atom scans the 5×5×5 bins around it (25 contiguous
//! runs of 5 bins).

use super::error::FrameError;

/// Edges of one frame, sorted by centre, then neighbour, then shift.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NeighborList {
    /// `edge_index[0]`: centre atoms.
    pub centers: Vec<usize>,
    /// `edge_index[1]`: neighbours.
    pub neighbors: Vec<usize>,
    /// Integer cell shifts of the neighbours.
    pub shifts: Vec<[i32; 3]>,
}

impl NeighborList {
    /// Number of edges.
    pub fn len(&self) -> usize {
        self.centers.len()
    }
    /// Whether there are no edges.
    pub fn is_empty(&self) -> bool {
        self.centers.is_empty()
    }
}

type V3 = [f64; 3];

fn dot(a: V3, b: V3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn cross(a: V3, b: V3) -> V3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
fn norm(a: V3) -> f64 {
    dot(a, a).sqrt()
}
fn scale(a: V3, s: f64) -> V3 {
    [a[0] * s, a[1] * s, a[2] * s]
}

/// Bins are at least `r_max / SUB` wide; each atom scans `SUB` bins in every direction.
const SUB: usize = 2;

/// Upper bound on atoms plus periodic images held in the bin grid.
const MAX_POINTS: f64 = 2e8;

/// Relative tolerance below which a cell counts as degenerate.
const DEGENERATE_TOL: f64 = 1e-10;

/// A basis for binning: the cell vectors along periodic axes, unit vectors completing them along
/// non-periodic ones (their length and direction do not change the edge set). Fails when the
/// periodic vectors are zero or linearly dependent.
fn complete_basis(cell: &[V3; 3], pbc: [bool; 3]) -> Result<[V3; 3], FrameError> {
    let periodic: Vec<usize> = (0..3).filter(|&k| pbc[k]).collect();
    let degenerate = |detail: String| FrameError::DegenerateCell { detail, pbc };
    for &k in &periodic {
        if norm(cell[k]) == 0.0 {
            return Err(degenerate(format!("lattice vector {k} is zero")));
        }
    }
    let mut b = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    match periodic.len() {
        3 => {
            let det = dot(cell[0], cross(cell[1], cell[2]));
            if det.abs() <= DEGENERATE_TOL * norm(cell[0]) * norm(cell[1]) * norm(cell[2]) {
                return Err(degenerate(format!("volume {det:e}")));
            }
            b = *cell;
        }
        2 => {
            let (k1, k2) = (periodic[0], periodic[1]);
            let n = cross(cell[k1], cell[k2]);
            if norm(n) <= DEGENERATE_TOL * norm(cell[k1]) * norm(cell[k2]) {
                return Err(degenerate(format!(
                    "lattice vectors {k1} and {k2} are parallel"
                )));
            }
            let m = 3 - k1 - k2;
            b[k1] = cell[k1];
            b[k2] = cell[k2];
            b[m] = scale(n, 1.0 / norm(n));
        }
        1 => {
            let k = periodic[0];
            let u = scale(cell[k], 1.0 / norm(cell[k]));
            // the coordinate axis least aligned with u, orthogonalised
            let e = (0..3)
                .min_by(|&x, &y| u[x].abs().total_cmp(&u[y].abs()))
                .unwrap_or(0);
            let mut v = [0.0; 3];
            v[e] = 1.0;
            let v = [v[0] - u[0] * u[e], v[1] - u[1] * u[e], v[2] - u[2] * u[e]];
            let v = scale(v, 1.0 / norm(v));
            let w = cross(u, v);
            b[k] = cell[k];
            b[(k + 1) % 3] = v;
            b[(k + 2) % 3] = w;
        }
        _ => {}
    }
    Ok(b)
}

/// Inverse of a 3×3 matrix given by rows (the caller checked it is non-singular).
fn inverse(m: &[V3; 3]) -> [V3; 3] {
    let det = dot(m[0], cross(m[1], m[2]));
    // columns of the inverse are the cross products of rows / det
    let c0 = cross(m[1], m[2]);
    let c1 = cross(m[2], m[0]);
    let c2 = cross(m[0], m[1]);
    let mut inv = [[0.0; 3]; 3];
    for r in 0..3 {
        inv[r] = [c0[r] / det, c1[r] / det, c2[r] / det];
    }
    inv
}

/// Checks `r_max`, positions and cell for finiteness.
fn validate(pos: &[V3], cell: &[V3; 3], r_max: f64) -> Result<(), FrameError> {
    if !(r_max.is_finite() && r_max > 0.0) {
        return Err(FrameError::BadRMax(r_max));
    }
    let check = |field: &str, vals: &mut dyn Iterator<Item = f64>| {
        for (index, value) in vals.enumerate() {
            if !value.is_finite() {
                return Err(FrameError::NonFinite {
                    field: field.into(),
                    value,
                    index,
                });
            }
        }
        Ok(())
    };
    check("pos", &mut pos.iter().flatten().copied())?;
    check("cell", &mut cell.iter().flatten().copied())
}

/// Points (atoms and their periodic images) sorted into a Cartesian bin grid.
struct Grid {
    origin: V3,
    inv_width: V3,
    dims: [usize; 3],
    /// CSR offsets into the point arrays, one range per bin.
    start: Vec<usize>,
    pos: Vec<V3>,
    atom: Vec<u32>,
    image: Vec<[i32; 3]>,
}

impl Grid {
    fn build(pos: Vec<V3>, atom: Vec<u32>, image: Vec<[i32; 3]>, r_max: f64) -> Grid {
        let n = pos.len().max(1);
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for p in &pos {
            for d in 0..3 {
                lo[d] = lo[d].min(p[d]);
                hi[d] = hi[d].max(p[d]);
            }
        }
        let ext: V3 = std::array::from_fn(|d| if pos.is_empty() { 0.0 } else { hi[d] - lo[d] });
        // bins at least r_max wide; widen them when sparse points would need too many bins
        let mut h = r_max / SUB as f64;
        let dims = loop {
            let dims: [usize; 3] =
                std::array::from_fn(|d| ((ext[d] / h).floor() as usize).clamp(1, 1 << 20));
            if (dims[0] as f64) * (dims[1] as f64) * (dims[2] as f64) <= 4.0 * n as f64 + 1000.0 {
                break dims;
            }
            h *= 1.26;
        };
        let inv_width: V3 = std::array::from_fn(|d| {
            if ext[d] > 0.0 {
                dims[d] as f64 / ext[d]
            } else {
                0.0
            }
        });
        let mut grid = Grid {
            origin: lo,
            inv_width,
            dims,
            start: Vec::new(),
            pos: Vec::new(),
            atom: Vec::new(),
            image: Vec::new(),
        };
        let bins: Vec<usize> = pos.iter().map(|p| grid.flat(grid.bin_of(*p))).collect();
        let nbins = dims[0] * dims[1] * dims[2];
        let mut start = vec![0usize; nbins + 1];
        for &b in &bins {
            start[b + 1] += 1;
        }
        for b in 0..nbins {
            start[b + 1] += start[b];
        }
        let mut fill = start.clone();
        let mut order = vec![0usize; bins.len()];
        for (p, &b) in bins.iter().enumerate() {
            order[fill[b]] = p;
            fill[b] += 1;
        }
        grid.pos = order.iter().map(|&p| pos[p]).collect();
        grid.atom = order.iter().map(|&p| atom[p]).collect();
        grid.image = order.iter().map(|&p| image[p]).collect();
        grid.start = start;
        grid
    }

    fn bin_of(&self, p: V3) -> [usize; 3] {
        std::array::from_fn(|d| {
            let x = ((p[d] - self.origin[d]) * self.inv_width[d]).floor();
            (x.max(0.0) as usize).min(self.dims[d] - 1)
        })
    }

    fn flat(&self, b: [usize; 3]) -> usize {
        (b[0] * self.dims[1] + b[1]) * self.dims[2] + b[2]
    }
}

/// Builds the full neighbor list of one frame.
///
/// `cell` rows are lattice vectors (ignored along non-periodic axes, may be zero there or
/// `None`); `self_interaction` keeps the `i→i`, `S = 0` edges. Errors: `r_max <= 0`, non-finite
/// positions/cell, zero-volume cell along periodic axes.
pub fn neighbor_list(
    pos: &[V3],
    cell: Option<&[V3; 3]>,
    pbc: [bool; 3],
    r_max: f64,
    self_interaction: bool,
) -> Result<NeighborList, FrameError> {
    let zero = [[0.0; 3]; 3];
    let cell = cell.unwrap_or(&zero);
    validate(pos, cell, r_max)?;
    let basis = complete_basis(cell, pbc)?;
    let binv = inverse(&basis);
    // fractional coordinate k of r is r · binv[:, k]; lattice planes k are 1/|binv[:, k]| apart
    let col = |k: usize| [binv[0][k], binv[1][k], binv[2][k]];
    let reach: V3 = std::array::from_fn(|k| r_max * norm(col(k)) + 1e-9);

    // guard against absurd image counts (tiny cells) before allocating
    let images: f64 = (0..3)
        .filter(|&k| pbc[k])
        .map(|k| 2.0 * reach[k] + 2.0)
        .product();
    if images * pos.len() as f64 > MAX_POINTS {
        return Err(FrameError::Field {
            field: "cell".into(),
            msg: format!("cell too small for r_max={r_max}: the neighbor list would need ~{images:.3e} periodic images per atom"),
        });
    }
    // wrap along periodic axes: pos = wrapped + offset · basis
    let n = pos.len();
    let mut wrapped = Vec::with_capacity(n);
    let mut frac_w = Vec::with_capacity(n);
    let mut offset = Vec::with_capacity(n);
    for p in pos {
        let mut o = [0i32; 3];
        let mut f: V3 = std::array::from_fn(|k| dot(*p, col(k)));
        let mut w = *p;
        for k in 0..3 {
            if pbc[k] {
                let fl = f[k].floor();
                if fl.abs() > 1e9 {
                    return Err(FrameError::Field {
                        field: "pos".into(),
                        msg: format!(
                            "atom {} is more than 1e9 cell lengths away from the cell",
                            wrapped.len()
                        ),
                    });
                }
                o[k] = fl as i32;
                f[k] -= fl;
                for d in 0..3 {
                    w[d] -= fl * basis[k][d];
                }
            }
        }
        wrapped.push(w);
        frac_w.push(f);
        offset.push(o);
    }

    // images that may be within r_max of the cell
    let (mut gpos, mut gatom, mut gimg) = (Vec::new(), Vec::new(), Vec::new());
    for j in 0..n {
        let range = |k: usize| -> (i32, i32) {
            if !pbc[k] {
                return (0, 0);
            }
            let f = frac_w[j][k];
            (
                (-reach[k] - f).ceil() as i32,
                (1.0 + reach[k] - f).floor() as i32,
            )
        };
        let (r0, r1, r2) = (range(0), range(1), range(2));
        for t0 in r0.0..=r0.1 {
            for t1 in r1.0..=r1.1 {
                for t2 in r2.0..=r2.1 {
                    let t = [t0 as f64, t1 as f64, t2 as f64];
                    let w = wrapped[j];
                    gpos.push(std::array::from_fn(|d| {
                        w[d] + t[0] * basis[0][d] + t[1] * basis[1][d] + t[2] * basis[2][d]
                    }));
                    gatom.push(j as u32);
                    gimg.push([t0, t1, t2]);
                }
            }
        }
    }
    let grid = Grid::build(gpos, gatom, gimg, r_max);

    let r2 = r_max * r_max;
    let mut out = NeighborList::default();
    let mut found: Vec<(usize, [i32; 3])> = Vec::new();
    for i in 0..n {
        let c = wrapped[i];
        let b = grid.bin_of(c);
        found.clear();
        for bx in b[0].saturating_sub(SUB)..=(b[0] + SUB).min(grid.dims[0] - 1) {
            for by in b[1].saturating_sub(SUB)..=(b[1] + SUB).min(grid.dims[1] - 1) {
                // bins along z are contiguous in the sorted point arrays: one range per (x, y)
                let (z0, z1) = (b[2].saturating_sub(SUB), (b[2] + SUB).min(grid.dims[2] - 1));
                let (first, last) = (grid.flat([bx, by, z0]), grid.flat([bx, by, z1]));
                {
                    for p in grid.start[first]..grid.start[last + 1] {
                        let q = grid.pos[p];
                        let v = [q[0] - c[0], q[1] - c[1], q[2] - c[2]];
                        let d2 = dot(v, v);
                        if d2 >= r2 || d2.sqrt() >= r_max {
                            continue;
                        }
                        let j = grid.atom[p] as usize;
                        let t = grid.image[p];
                        let s: [i32; 3] =
                            std::array::from_fn(|k| t[k] - offset[j][k] + offset[i][k]);
                        if j == i && s == [0, 0, 0] && !self_interaction {
                            continue;
                        }
                        found.push((j, s));
                    }
                }
            }
        }
        found.sort_unstable();
        for &(j, s) in &found {
            out.centers.push(i);
            out.neighbors.push(j);
            out.shifts.push(s);
        }
    }
    Ok(out)
}
