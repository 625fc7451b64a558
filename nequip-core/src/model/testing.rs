//! A reusable test kit for models: port of nequip 0.6.2's `BaseModelTests` / `BaseEnergyModelTests`
//! (`nequip/utils/unittests/model_tests.py`, fixtures of `conftest.py`) and the equivariance tester
//! `assert_AtomicData_equivariant` (`nequip/utils/test.py`), for any [`GraphModel`].
//!
//! Every check returns `Err(KitError)` naming the check, the field and the size of the failure
//! (never panics on a model problem); [`check_energy_model`] runs all of them on a set of frames.
//! Checks: [`check_equivariance`] (rotation, parity, both, translation of every output field,
//! with its declared irreps; `pos` as points, `cell`/`edge_vectors` rows as vectors, `stress`/`virial`
//! as rank-2 `R S Rᵀ`), [`check_permutation`] (atoms, edges), [`check_batch`] (batched = per frame),
//! [`check_wrapped_unwrapped`] (atoms shifted by lattice vectors), [`check_forces_fd`] (forces =
//! −∂E/∂pos by central differences), [`check_strain_fd`] (`virial = −∂E/∂ε`, `stress = ∂E/∂ε / V`, as in
//! `nn/grad_output.rs`), [`check_large_separation`], [`check_cross_frame_grad`],
//! [`check_embedding_cutoff`] and [`check_force_smoothness`] (edge embedding and its gradient exactly
//! zero at and beyond `r_max`; an atom moving through `r_max` sees forces going smoothly to exactly 0).
//! Randomness (rotations, permutations, rattling, random parameters) comes from a seeded generator of
//! the kit, not torch's, so failures reproduce. Comparisons are in f64: `max |a − b| ≤ tol · max(1, max |b|)`
//! ([`Tolerances::for_kind`]: 1e-10 for float64 models, 1e-5 for float32). Models built with
//! `parity: false` are SO(3)-only (nequip declares their edge harmonics `1e`): set [`KitOptions::parity`]
//! to `false` for them. Frames: [`frame`] (any positions/types/cell), [`ch3cho`], [`h2`], [`cu_bulk`]
//! (nequip's `conftest.py` molecules and bulk), or dataset frames; [`model_input`] makes a model input.

use std::collections::BTreeMap;
use tch::{Kind, Tensor};

use crate::data::batch::collate;
use crate::data::fields::{cartesian_tensor_formula, field_kind, FieldKind};
use crate::data::keys::*;
use crate::data::{Array, AtomicData, AtomicDataDict, AtomicDataOptions};
use crate::e3nn::testing::irreps_d;
use crate::e3nn::wigner::angles_to_matrix;
use crate::nn::{GraphModel, GraphModule, IrrepsDict};

/// A failed check: which one, and what went wrong by how much.
#[derive(Clone, Debug, PartialEq)]
pub struct KitError { pub check: String, pub message: String }

impl std::fmt::Display for KitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{}: {}", self.check, self.message) }
}
impl std::error::Error for KitError {}

fn fail<T>(check: &str, message: impl Into<String>) -> Result<T, KitError> { Err(KitError { check: check.into(), message: message.into() }) }

/// Tolerances; [`Tolerances::for_kind`] gives the defaults of a model dtype.
#[derive(Clone, Copy, Debug)]
pub struct Tolerances {
    /// Symmetries, batching, additivity: 1e-10 (f64), 1e-5 (f32), relative to `max(1, max |ref|)`.
    pub exact: f64,
    /// Finite-difference step (Å, or strain).
    pub fd_step: f64,
    /// Finite differences vs autograd, relative to `max(1, max |autograd|)`.
    pub fd: f64,
    /// Distance `δ` before the cutoff at which force smoothness is probed: the force on an atom at
    /// `r_max − δ/10` must be at most `10^-1.5` of that at `r_max − δ` (vanishing faster than linearly).
    pub smooth_step: f64,
}

impl Tolerances {
    pub fn for_kind(kind: Kind) -> Self {
        let (exact, fd_step, fd, smooth_step) = if kind == Kind::Double { (1e-10, 1e-4, 1e-6, 1e-3) } else { (1e-5, 5e-3, 5e-3, 1e-2) };
        Tolerances { exact, fd_step, fd, smooth_step }
    }
}

/// What the kit needs to know about the model (its cutoff and number of atom types), and settings.
#[derive(Clone, Copy, Debug)]
pub struct KitOptions {
    pub r_max: f64,
    pub num_types: i64,
    pub tol: Tolerances,
    pub seed: u64,
    /// Atoms whose forces are checked by finite differences (the first ones).
    pub fd_atoms: usize,
    /// Test inversion too. Models built with `parity: false` declare their edge spherical
    /// harmonics `1e` (as nequip/e3nn do), so they are only SO(3)-equivariant: set `false` for them.
    pub parity: bool,
}

impl KitOptions {
    /// Defaults for `model` (tolerances of its `model_dtype`).
    pub fn new(model: &GraphModel, r_max: f64, num_types: i64) -> Self {
        KitOptions { r_max, num_types, tol: Tolerances::for_kind(model.model_dtype), seed: 193, fd_atoms: 3, parity: true }
    }
}

/// splitmix64: the kit's reproducible randomness.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self { Rng(seed) }
    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f64 { (-2.0 * (1.0 - self.uniform()).ln()).sqrt() * (2.0 * std::f64::consts::PI * self.uniform()).cos() }
    /// A random permutation of `0..n`, not the identity when `n > 1`.
    pub fn permutation(&mut self, n: usize) -> Vec<i64> {
        loop {
            let mut p: Vec<i64> = (0..n as i64).collect();
            (1..n).rev().for_each(|i| p.swap(i, (self.uniform() * (i + 1) as f64) as usize));
            if n <= 1 || p.iter().enumerate().any(|(i, &x)| x != i as i64) { return p }
        }
    }
}

/// A frame of atoms at `pos` with `atom_types`, neighbor list of cutoff `r_max`, periodic in all
/// directions when `cell` (rows = lattice vectors) is given.
pub fn frame(pos: &[[f64; 3]], types: &[i64], cell: Option<[[f64; 3]; 3]>, r_max: f64) -> Result<AtomicData, KitError> {
    let extra = BTreeMap::from([(ATOM_TYPE_KEY.to_string(), Array::i64(vec![types.len(), 1], types.to_vec()))]);
    AtomicData::from_points(pos.concat(), &AtomicDataOptions::new(r_max), cell, cell.map(|_| [true; 3]), extra).or_else(|e| fail("frame", e.to_string()))
}

fn rattled(pos: &[[f64; 3]], rng: &mut Rng, amount: f64) -> Vec<[f64; 3]> { pos.iter().map(|p| std::array::from_fn(|d| p[d] + amount * rng.normal())).collect() }

/// ASE's `molecule("CH3CHO")`, rattled by 0.05 Å; types H = 0, C = 1, O = 2 (modulo `num_types`).
pub fn ch3cho(r_max: f64, num_types: i64, seed: u64) -> Result<AtomicData, KitError> {
    let pos = [[1.218055, 0.36124, 0.0], [0.0, 0.464133, 0.0], [-0.477241, 1.465295, 0.0], [-0.948102, -0.700138, 0.0],
        [-0.385946, -1.634236, 0.0], [-1.596321, -0.652475, 0.880946], [-1.596321, -0.652475, -0.880946]];
    let types: Vec<i64> = [2, 1, 0, 1, 0, 0, 0].iter().map(|t| t % num_types).collect();
    frame(&rattled(&pos, &mut Rng::new(seed), 0.05), &types, None, r_max)
}

/// ASE's `molecule("H2")`, rattled; type 0.
pub fn h2(r_max: f64, seed: u64) -> Result<AtomicData, KitError> {
    frame(&rattled(&[[0.0, 0.0, 0.368583], [0.0, 0.0, -0.368583]], &mut Rng::new(seed), 0.05), &[0, 0], None, r_max)
}

/// ASE's `bulk("Cu") * (2, 2, 1)` (fcc, a = 3.61 Å, 4 atoms), rattled by 0.05 Å; atom `i` has type
/// `i % num_types`.
pub fn cu_bulk(r_max: f64, num_types: i64, seed: u64) -> Result<AtomicData, KitError> {
    let h = 3.61 / 2.0;
    let prim = [[0.0, h, h], [h, 0.0, h], [h, h, 0.0]];
    let cell = [prim[0].map(|x| 2.0 * x), prim[1].map(|x| 2.0 * x), prim[2]];
    let pos: Vec<[f64; 3]> = [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)].iter().map(|&(i, j)| std::array::from_fn(|d| i * prim[0][d] + j * prim[1][d])).collect();
    let types: Vec<i64> = (0..4).map(|i| i % num_types).collect();
    frame(&rattled(&pos, &mut Rng::new(seed), 0.05), &types, Some(cell), r_max)
}

/// The model's inputs of a frame (or batch): its fields that are in `model_input_fields`.
pub fn model_input(model: &GraphModel, frame: &AtomicData) -> AtomicDataDict {
    frame.to_dict().into_iter().filter(|(k, _)| model.model_input_fields.contains(k)).collect()
}

/// Frames reduced to the model's input fields and collated (frames of different datasets may
/// carry different label fields).
pub fn collate_inputs(model: &GraphModel, frames: &[&AtomicData]) -> Result<AtomicData, KitError> {
    let keep = |f: &AtomicData| {
        AtomicData::from_fields_unchecked(f.fields().iter().filter(|(k, _)| model.model_input_fields.contains(*k)).map(|(k, v)| (k.clone(), v.clone())).collect())
    };
    collate(&frames.iter().map(|f| keep(f)).collect::<Vec<_>>().iter().collect::<Vec<_>>()).or_else(|e| fail("collate", e.to_string()))
}

fn types_of(f: &AtomicData) -> Vec<i64> { f.get(ATOM_TYPE_KEY).and_then(|a| a.as_i64()).map(|t| t.to_vec()).unwrap_or_default() }
fn xyz(f: &AtomicData) -> Vec<[f64; 3]> { f.pos().chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect() }
/// The cell of a frame with a nonzero volume.
fn cell_of(f: &AtomicData) -> Option<[[f64; 3]; 3]> {
    let c = f.get(CELL_KEY)?.as_f64()?;
    let det = Tensor::linalg_det(&Tensor::from_slice(c).reshape([3, 3])).double_value(&[]);
    (det.abs() > 1e-12).then(|| std::array::from_fn(|i| std::array::from_fn(|j| c[3 * i + j])))
}

fn run(model: &GraphModel, check: &str, data: &AtomicDataDict, training: bool) -> Result<AtomicDataDict, KitError> {
    let d = data.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect();
    model.forward(d, training).or_else(|e| fail(check, format!("forward failed: {e}")))
}

/// `d[key]`, or an error naming the check.
fn field<'a>(check: &str, d: &'a AtomicDataDict, key: &str) -> Result<&'a Tensor, KitError> {
    d.get(key).ok_or_else(|| KitError { check: check.into(), message: format!("no field `{key}`") })
}
fn vals(t: &Tensor) -> Vec<f64> { Vec::<f64>::try_from(&t.to_kind(Kind::Double).reshape([-1]).contiguous()).unwrap_or_else(|_| vec![f64::NAN; t.numel()]) }
fn scalar(t: &Tensor) -> f64 { vals(t).iter().sum() }
fn max_abs(t: &Tensor) -> f64 { vals(t).iter().fold(0.0, |m, x| m.max(x.abs())) }
/// `max |a − b|` and `max |b|` over finite entries; non-finite entries (stress without a cell) must sit
/// at the same places.
fn diff(a: &Tensor, b: &Tensor) -> Result<(f64, f64), String> {
    if a.numel() != b.numel() { return Err(format!("shape {:?} vs {:?}", a.size(), b.size())) }
    vals(a).iter().zip(vals(b)).try_fold((0f64, 0f64), |(d, s), (x, y)| match (x.is_finite(), y.is_finite()) {
        (true, true) => Ok((d.max((x - y).abs()), s.max(y.abs()))),
        (false, false) => Ok((d, s)),
        _ => Err(format!("non-finite values differ ({x} vs {y})")),
    })
}

/// `None` when close, else the description of the difference.
fn compare(what: &str, got: &Tensor, want: &Tensor, tol: f64) -> Option<String> {
    match diff(got, want) {
        Ok((d, s)) if d <= tol * s.max(1.0) => None,
        Ok((d, s)) => Some(format!("{what}: max |Δ| = {d:.3e} (max |ref| = {s:.3e}, tol {tol:.0e})")),
        Err(e) => Some(format!("{what}: {e}")),
    }
}
fn compare_field(what: &str, got: Option<&Tensor>, want: &Tensor, tol: f64) -> Option<String> {
    got.map_or_else(|| Some(format!("{what}: missing")), |g| compare(what, g, want, tol))
}
fn report(check: &str, problems: Vec<String>) -> Result<(), KitError> { if problems.is_empty() { Ok(()) } else { fail(check, problems.join("; ")) } }
fn grad(check: &str, of: &Tensor, wrt: &Tensor, keep: bool) -> Result<Tensor, KitError> {
    let s = of.to_kind(Kind::Double).sum(Kind::Double);
    if !s.requires_grad() { return Ok(wrt.zeros_like()) }
    let g = Tensor::f_run_backward(&[&s], &[wrt], keep, false).or_else(|e| fail(check, format!("autograd failed: {e}")))?;
    Ok(if g[0].defined() { g[0].shallow_clone() } else { wrt.zeros_like() })
}
fn energy(model: &GraphModel, check: &str, data: &AtomicDataDict) -> Result<f64, KitError> {
    run(model, check, data, false)?.get(TOTAL_ENERGY_KEY).map(scalar).ok_or_else(|| KitError { check: check.into(), message: "no total_energy output".into() })
}
/// `(e(h) − e(−h)) / 2h`.
fn central(h: f64, mut e: impl FnMut(f64) -> Result<f64, KitError>) -> Result<f64, KitError> { Ok((e(h)? - e(-h)?) / (2.0 * h)) }
fn with_pos(data: &AtomicDataDict, pos: Vec<f64>) -> AtomicDataDict { with(data, POSITIONS_KEY, Tensor::from_slice(&pos).reshape([-1, 3])) }
/// `data` with `key` set to `t`.
fn with(data: &AtomicDataDict, key: &str, t: Tensor) -> AtomicDataDict {
    data.iter().filter(|(k, _)| *k != key).map(|(k, v)| (k.clone(), v.shallow_clone())).chain([(key.to_string(), t)]).collect()
}

/// How a field transforms: `pos` (points), rows of vectors, rank-2 Cartesian tensors, irreps.
enum Rule { Points, Vectors, Rank2, Irreps(crate::e3nn::Irreps), Invariant }

fn rule(key: &str, t: &Tensor, irreps: &IrrepsDict) -> Result<Rule, String> {
    Ok(match key {
        POSITIONS_KEY => Rule::Points,
        CELL_KEY | EDGE_VECTORS_KEY => Rule::Vectors,
        EDGE_LENGTH_KEY => Rule::Invariant,
        _ if cartesian_tensor_formula(key).is_some() => Rule::Rank2,
        _ => match irreps.get(key) {
            Some(Some(ir)) if t.dim() >= 1 && t.size()[t.dim() - 1] == ir.dim() as i64 => Rule::Irreps(ir.clone()),
            Some(Some(ir)) => return Err(format!("field `{key}` has shape {:?}, but its irreps {ir} have dimension {}", t.size(), ir.dim())),
            Some(None) => Rule::Invariant,
            None if !t.is_floating_point() => Rule::Invariant,
            None => return Err(format!("field `{key}` has no declared irreps, so its transformation is unknown")),
        },
    })
}

/// `x → ±R x + t` (Euler angles of `R`, inversion, translation).
struct E3 { angles: [Tensor; 3], parity: bool, shift: Option<Tensor> }

impl E3 {
    fn apply(&self, key: &str, t: &Tensor, irreps: &IrrepsDict) -> Result<Tensor, String> {
        let r = angles_to_matrix(&self.angles[0], &self.angles[1], &self.angles[2]);
        let sign = if self.parity { -1.0 } else { 1.0 };
        let x = if t.is_floating_point() { t.to_kind(Kind::Double) } else { return Ok(t.shallow_clone()) };
        Ok(match rule(key, t, irreps)? {
            Rule::Points => x.matmul(&r.transpose(0, 1)) * sign + self.shift.as_ref().map_or(Tensor::zeros([3], (Kind::Double, x.device())), |s| s.shallow_clone()),
            Rule::Vectors => x.matmul(&r.transpose(0, 1)) * sign,
            Rule::Rank2 => r.matmul(&x).matmul(&r.transpose(0, 1)),
            Rule::Irreps(ir) => x.matmul(&irreps_d(&ir, (&self.angles[0], &self.angles[1], &self.angles[2]), self.parity).transpose(0, 1)),
            Rule::Invariant => x,
        })
    }
}

/// Rotation, parity, rotation + parity and translation equivariance of every output field
/// (`f(T x) = T f(x)`); `stress` is skipped when it is not finite (no cell).
pub fn check_equivariance(model: &GraphModel, data: &AtomicDataDict, opts: &KitOptions) -> Result<(), KitError> {
    const C: &str = "equivariance";
    let mut rng = Rng::new(opts.seed);
    let out = run(model, C, data, false)?;
    let zero = || [0.0; 3].map(Tensor::from);
    let tau = 2.0 * std::f64::consts::PI;
    let rand_angles = |rng: &mut Rng| [tau * rng.uniform(), (2.0 * rng.uniform() - 1.0).acos(), tau * rng.uniform()].map(Tensor::from);
    let shift = Tensor::from_slice(&[rng.normal(), rng.normal(), rng.normal()]) * 3.0;
    let cases = [
        ("rotation", E3 { angles: rand_angles(&mut rng), parity: false, shift: None }),
        ("parity", E3 { angles: zero(), parity: true, shift: None }),
        ("rotation+parity", E3 { angles: rand_angles(&mut rng), parity: true, shift: None }),
        ("translation", E3 { angles: zero(), parity: false, shift: Some(shift) }),
    ];
    let mut problems = Vec::new();
    for (name, t) in cases.iter().filter(|(_, t)| opts.parity || !t.parity) {
        let input = data.iter().map(|(k, v)| Ok((k.clone(), t.apply(k, v, model.irreps_in()).or_else(|e| fail(C, e))?))).collect::<Result<_, KitError>>()?;
        let got = run(model, C, &input, false)?;
        for (k, v) in out.iter().filter(|(k, v)| *k != STRESS_KEY || vals(v).iter().all(|x| x.is_finite())) {
            problems.extend(compare_field(&format!("{name}: `{k}`"), got.get(k), &t.apply(k, v, model.irreps_out()).or_else(|e| fail(C, e))?, opts.tol.exact));
        }
    }
    report(C, problems)
}

/// Atom and edge permutations (separately and together): node and edge fields permute, all
/// other fields are invariant.
pub fn check_permutation(model: &GraphModel, data: &AtomicDataDict, opts: &KitOptions) -> Result<(), KitError> {
    const C: &str = "permutation";
    let mut rng = Rng::new(opts.seed ^ 0x5eed);
    let (n, e) = (field(C, data, POSITIONS_KEY)?.size()[0] as usize, field(C, data, EDGE_INDEX_KEY)?.size()[1] as usize);
    let out = run(model, C, data, false)?;
    let id = |n: usize| (0..n as i64).collect::<Vec<_>>();
    let mut problems = Vec::new();
    for (name, np, ep) in [("atoms", rng.permutation(n), id(e)), ("edges", id(n), rng.permutation(e)), ("atoms+edges", rng.permutation(n), rng.permutation(e))] {
        let mut inv = vec![0i64; n];
        np.iter().enumerate().for_each(|(new, &old)| inv[old as usize] = new as i64);
        let (np, ep, inv) = (Tensor::from_slice(&np), Tensor::from_slice(&ep), Tensor::from_slice(&inv));
        let permute = |k: &str, v: &Tensor| match field_kind(k) {
            _ if k == EDGE_INDEX_KEY => inv.index_select(0, &v.reshape([-1])).reshape([2, -1]).index_select(1, &ep),
            Some(FieldKind::Node) => v.index_select(0, &np),
            Some(FieldKind::Edge) => v.index_select(0, &ep),
            _ => v.shallow_clone(),
        };
        let input: AtomicDataDict = data.iter().map(|(k, v)| (k.clone(), permute(k, v))).collect();
        let got = run(model, C, &input, false)?;
        for (k, v) in out.iter().filter(|(k, _)| *k != EDGE_INDEX_KEY) {
            problems.extend(compare_field(&format!("{name}: `{k}`"), got.get(k), &permute(k, v), opts.tol.exact));
        }
    }
    report(C, problems)
}

/// Batched results equal per-frame results, for graph, node and edge fields (nequip's `test_batch`).
pub fn check_batch(model: &GraphModel, frames: &[&AtomicData], opts: &KitOptions) -> Result<(), KitError> {
    const C: &str = "batch";
    let out = run(model, C, &model_input(model, &collate_inputs(model, frames)?), false)?;
    let (mut n0, mut e0, mut problems) = (0i64, 0i64, Vec::new());
    for (b, f) in frames.iter().enumerate() {
        let single = run(model, C, &model_input(model, f), false)?;
        let (n, e) = (f.num_nodes() as i64, f.num_edges() as i64);
        for (k, v) in single.iter().filter(|(_, v)| v.is_floating_point()) {
            let Some(all) = out.get(k) else { problems.push(format!("frame {b}: field `{k}` missing from the batched output")); continue };
            let part = match field_kind(k) {
                Some(FieldKind::Graph) => all.narrow(0, b as i64, 1),
                Some(FieldKind::Node) => all.narrow(0, n0, n),
                Some(FieldKind::Edge) => all.narrow(0, e0, e),
                None => return fail(C, format!("field `{k}` is not registered as a node, edge or graph field")),
            };
            problems.extend(compare(&format!("frame {b}: `{k}`"), &part, v, opts.tol.exact));
        }
        (n0, e0) = (n0 + n, e0 + e);
    }
    report(C, problems)
}

/// A periodic frame with its atoms moved to other periodic images (neighbor list rebuilt) gives the
/// same energies, forces, stress (nequip's `test_wrapped_unwrapped`).
pub fn check_wrapped_unwrapped(model: &GraphModel, periodic: &AtomicData, opts: &KitOptions) -> Result<(), KitError> {
    const C: &str = "wrapped/unwrapped";
    let Some(cell) = cell_of(periodic) else { return fail(C, "the frame has no cell") };
    let out = run(model, C, &model_input(model, periodic), false)?;
    let mut rng = Rng::new(opts.seed ^ 0x3a9);
    let mut problems = Vec::new();
    for round in 0..3 {
        let pos: Vec<[f64; 3]> = xyz(periodic).iter().map(|p| {
            let s: [f64; 3] = std::array::from_fn(|_| (rng.uniform() * 10.0).floor() - 5.0);
            std::array::from_fn(|d| p[d] + (0..3).map(|k| s[k] * cell[k][d]).sum::<f64>())
        }).collect();
        let moved = frame(&pos, &types_of(periodic), Some(cell), opts.r_max)?;
        let got = run(model, C, &model_input(model, &moved), false)?;
        let same_edges = moved.edge_index() == periodic.edge_index();
        for (k, v) in out.iter().filter(|(k, v)| v.is_floating_point() && *k != POSITIONS_KEY && *k != EDGE_CELL_SHIFT_KEY) {
            if field_kind(k) == Some(FieldKind::Edge) && !same_edges { continue }
            problems.extend(compare_field(&format!("shift {round}: `{k}`"), got.get(k), v, opts.tol.exact));
        }
    }
    report(C, problems)
}

/// Forces of the first `opts.fd_atoms` atoms against central differences of the total energy.
pub fn check_forces_fd(model: &GraphModel, data: &AtomicDataDict, opts: &KitOptions) -> Result<(), KitError> {
    const C: &str = "forces = -dE/dpos";
    let Some(forces) = run(model, C, data, false)?.remove(FORCE_KEY) else { return fail(C, "the model has no forces output") };
    let (f, pos, scale) = (vals(&forces), vals(field(C, data, POSITIONS_KEY)?), max_abs(&forces).max(1.0));
    let mut worst = (0.0, 0, 0.0, 0.0);
    for (c, &fc) in f.iter().enumerate().take(3 * opts.fd_atoms) {
        let shifted = |x: f64| energy(model, C, &with_pos(data, pos.iter().enumerate().map(|(k, p)| if k == c { p + x } else { *p }).collect()));
        let num = -central(opts.tol.fd_step, shifted)?;
        if (num - fc).abs() > worst.0 { worst = ((num - fc).abs(), c, num, fc) }
    }
    if worst.0 <= opts.tol.fd * scale { return Ok(()) }
    let (d, c, num, f) = worst;
    fail(C, format!("atom {} direction {}: finite difference {num:.10e} vs forces {f:.10e}: |Δ| = {d:.3e} > {:.0e} × {scale:.3e}", c / 3, c % 3, opts.tol.fd))
}

/// `virial = −∂E/∂ε` and (with a cell) `stress = ∂E/∂ε / V` against central differences in the
/// symmetric strain `ε` applied to positions and cell (`r → r (1 + ε)`), on an unbatched frame.
pub fn check_strain_fd(model: &GraphModel, data: &AtomicDataDict, opts: &KitOptions) -> Result<(), KitError> {
    const C: &str = "virial = -dE/dstrain, stress = dE/dstrain / V";
    let out = run(model, C, data, false)?;
    let Some(virial) = out.get(VIRIAL_KEY) else { return fail(C, "the model has no virial output") };
    let cell = data.get(CELL_KEY).map(|c| c.to_kind(Kind::Double).reshape([3, 3]));
    let volume = cell.as_ref().map_or(0.0, |c| Tensor::linalg_det(c).abs().double_value(&[]));
    let pos = field(C, data, POSITIONS_KEY)?.to_kind(Kind::Double);
    let strained = |ij: usize, x: f64| {
        let mut dm = [0.0; 9];
        dm[ij] += 0.5 * x;
        dm[(ij % 3) * 3 + ij / 3] += 0.5 * x;
        let f = Tensor::eye(3, (Kind::Double, tch::Device::Cpu)) + Tensor::from_slice(&dm).reshape([3, 3]);
        let d = with_pos(data, vals(&pos.matmul(&f)));
        energy(model, C, &match &cell { Some(c) => with(&d, CELL_KEY, c.matmul(&f)), None => d })
    };
    let g = (0..9).map(|ij| central(opts.tol.fd_step, |x| strained(ij, x))).collect::<Result<Vec<f64>, _>>()?;
    let g = Tensor::from_slice(&g).reshape([1, 3, 3]);
    let mut problems: Vec<String> = compare("virial vs -dE/dε", virial, &-&g, opts.tol.fd).into_iter().collect();
    if volume > 1e-12 { problems.extend(compare("stress vs dE/dε / V", field(C, &out, STRESS_KEY)?, &(&g / volume), opts.tol.fd)) }
    report(C, problems)
}

/// Two molecules far apart (`a` and `b`, non-periodic): energy and forces are the sums / the
/// concatenation of the separate ones; moving `b` further changes no per-atom energy.
pub fn check_large_separation(model: &GraphModel, a: &AtomicData, b: &AtomicData, opts: &KitOptions) -> Result<(), KitError> {
    const C: &str = "large separation";
    let mut rng = Rng::new(opts.seed ^ 0x1a26e);
    let far = 10.0 * opts.r_max + 30.0;
    let offset: [f64; 3] = std::array::from_fn(|_| far + rng.normal());
    let both = |off: [f64; 3]| {
        let mut pos = xyz(a);
        pos.extend(xyz(b).iter().map(|p| std::array::from_fn::<f64, 3, _>(|d| p[d] + off[d])));
        frame(&pos, &[types_of(a), types_of(b)].concat(), None, opts.r_max)
    };
    let ab = both(offset)?;
    if ab.num_edges() != a.num_edges() + b.num_edges() { return fail(C, format!("{} edges together vs {} + {} apart", ab.num_edges(), a.num_edges(), b.num_edges())) }
    let out = |f: &AtomicData| run(model, C, &model_input(model, f), false);
    let (oa, ob, oab, tol) = (out(a)?, out(b)?, out(&ab)?, opts.tol.exact);
    let e = |o: &AtomicDataDict| field(C, o, TOTAL_ENERGY_KEY).map(|t| t.to_kind(Kind::Double));
    let mut problems: Vec<String> = compare("total_energy", &e(&oab)?, &(e(&oa)? + e(&ob)?), tol).into_iter().collect();
    for k in [FORCE_KEY, PER_ATOM_ENERGY_KEY] {
        if let (Some(x), Some(y), Some(z)) = (oa.get(k), ob.get(k), oab.get(k)) {
            problems.extend(compare(k, z, &Tensor::cat(&[x, y], 0), tol));
        }
    }
    let o2 = out(&both(std::array::from_fn(|d| offset[d] + rng.normal()))?)?;
    for k in [TOTAL_ENERGY_KEY, PER_ATOM_ENERGY_KEY].into_iter().filter(|k| oab.contains_key(*k)) {
        problems.extend(compare_field(&format!("{k} after moving b"), o2.get(k), &oab[k], tol));
    }
    report(C, problems)
}

/// In a batch, the gradient of the last frame's energy is exactly zero on the other frames' atoms
/// and nonzero on its own.
pub fn check_cross_frame_grad(model: &GraphModel, frames: &[&AtomicData]) -> Result<(), KitError> {
    const C: &str = "cross-frame gradient";
    let batch = collate_inputs(model, frames)?;
    let data = model_input(model, &batch);
    let pos = field(C, &data, POSITIONS_KEY)?.detach().set_requires_grad(true);
    let out = run(model, C, &with(&data, POSITIONS_KEY, pos.shallow_clone()), true)?;
    let e = field(C, &out, TOTAL_ENERGY_KEY)?;
    let g = grad(C, &e.narrow(0, e.size()[0] - 1, 1), &pos, false)?;
    let split = (batch.num_nodes() - frames[frames.len() - 1].num_nodes()) as i64;
    let (cross, own) = (max_abs(&g.narrow(0, 0, split)), max_abs(&g.narrow(0, split, g.size()[0] - split)));
    if cross == 0.0 && own > 0.0 { return Ok(()) }
    fail(C, format!("max |∂E_last/∂pos| on other frames = {cross:e} (must be 0), on its own atoms = {own:e} (must be > 0)"))
}

/// Runs `f` with every trainable parameter drawn uniformly from `[-amp, amp]`, then restores them.
fn with_random_params<T>(model: &GraphModel, amp: f64, seed: u64, f: impl FnOnce() -> T) -> T {
    let params = model.parameters();
    let old: Vec<Tensor> = params.iter().map(|p| p.detach().copy()).collect();
    let mut rng = Rng::new(seed);
    tch::no_grad(|| params.iter().for_each(|p| {
        let v: Vec<f64> = (0..p.numel()).map(|_| amp * (2.0 * rng.uniform() - 1.0)).collect();
        p.shallow_clone().copy_(&Tensor::from_slice(&v).reshape(p.size()))
    }));
    let out = f();
    tch::no_grad(|| params.iter().zip(&old).for_each(|(p, o)| p.shallow_clone().copy_(o)));
    out
}

/// Three atoms, edges 0–1 and 0–2 listed explicitly, no cell.
fn triangle(pos: [[f64; 3]; 3], num_types: i64) -> AtomicDataDict {
    [(POSITIONS_KEY, Tensor::from_slice(&pos.concat()).reshape([3, 3])), (ATOM_TYPE_KEY, Tensor::from_slice(&[2 % num_types, num_types / 2, 0]).reshape([3, 1])),
        (EDGE_INDEX_KEY, Tensor::from_slice(&[0i64, 1, 0, 2, 1, 0, 2, 0]).reshape([2, 4]))].into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// nequip's `test_embedding_cutoff` with random parameters in [-1, 1]: the embedding of edges of
/// length `r_max` (and 1.2 `r_max`) is exactly zero, the other edges' unchanged, its gradient exactly
/// zero, and the energies of atoms 0 and 1 do not depend on the atom at the cutoff.
pub fn check_embedding_cutoff(model: &GraphModel, opts: &KitOptions) -> Result<(), KitError> {
    const C: &str = "embedding cutoff";
    with_random_params(model, 1.0, opts.seed ^ 0xe3b, || {
        let r = opts.r_max;
        let out = run(model, C, &triangle([[0.0; 3], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], opts.num_types), false)?;
        let Some(key) = [EDGE_FEATURES_KEY, EDGE_EMBEDDING_KEY].into_iter().find(|k| out.contains_key(*k)) else { return Ok(()) };
        let inside = out[key].to_kind(Kind::Double);
        let mut problems = Vec::new();
        if max_abs(&inside.narrow(0, 2, 2)) <= 1e-6 { problems.push(format!("`{key}` of the 0–2 edge inside the cutoff is zero: the check is vacuous")) }
        for y in [r, 1.2 * r] {
            let data = triangle([[0.0; 3], [1.0, 0.0, 0.0], [0.0, y, 0.0]], opts.num_types);
            let pos = data[POSITIONS_KEY].detach().set_requires_grad(true);
            let o = run(model, C, &with(&data, POSITIONS_KEY, pos.shallow_clone()), true)?;
            let at = field(C, &o, key)?.to_kind(Kind::Double);
            if key == EDGE_EMBEDDING_KEY {
                problems.extend(compare(&format!("`{key}` of the other edges (atom 2 at {y})"), &at.narrow(0, 0, 2), &inside.narrow(0, 0, 2), opts.tol.exact));
            }
            let (m, gm) = (max_abs(&at.narrow(0, 2, 2)), max_abs(&grad(C, &at.narrow(0, 2, 2), &pos, true)?));
            if m != 0.0 || gm != 0.0 { problems.push(format!("edge of length {y} (r_max {r}): max |`{key}`| = {m:e}, max |gradient| = {gm:e} (both must be 0)")) }
            if let Some(ae) = o.get(PER_ATOM_ENERGY_KEY) {
                let g2 = max_abs(&grad(C, &ae.narrow(0, 0, 2), &pos, false)?.get(2));
                if g2 != 0.0 { problems.push(format!("max |∂(E_0 + E_1)/∂pos_2| = {g2:e} with atom 2 at {y} (must be 0)")) }
            }
        }
        report(C, problems)
    })
}

/// nequip's `test_force_smoothness` with random parameters in [-3, 3], extended to a path: atom 2
/// moving along x through `r_max` feels a nonzero force well inside, one vanishing faster than
/// linearly as it approaches `r_max` (see [`Tolerances::smooth_step`]), exactly zero at and beyond
/// it; the forces on atoms 0 and 1 are nonzero and approach their value at `r_max` the same way.
pub fn check_force_smoothness(model: &GraphModel, opts: &KitOptions) -> Result<(), KitError> {
    const C: &str = "force smoothness";
    with_random_params(model, 3.0, opts.seed ^ 0x5300, || {
        let (r, h) = (opts.r_max, opts.tol.smooth_step);
        let mut forces = Vec::new();
        for dx in [-0.5 * r, -0.2 * r, -h, -h / 10.0, 0.0, 1e-3, 0.1 * r] {
            let out = run(model, C, &triangle([[0.0; 3], [0.0, 1.0, 0.0], [r + dx, 0.0, 0.0]], opts.num_types), false)?;
            let Some(f) = out.get(FORCE_KEY) else { return fail(C, "the model has no forces output") };
            forces.push((dx, f.to_kind(Kind::Double)));
        }
        let (f2, f01) = (|i: usize| max_abs(&forces[i].1.get(2)), |i: usize| forces[i].1.narrow(0, 0, 2));
        let mut problems = Vec::new();
        if f2(0).max(f2(1)) == 0.0 || max_abs(&f01(4)) <= 1e-4 {
            problems.push(format!("vacuous: max |F_2| well inside = {:e}, |F_0,1| at r_max = {:e}", f2(0).max(f2(1)), max_abs(&f01(4))));
        }
        let ratio = 10f64.powf(-1.5);
        let (j1, j2) = (max_abs(&(f01(2) - f01(4))), max_abs(&(f01(3) - f01(4))));
        for (what, a, b) in [("|F_2|", f2(2), f2(3)), ("|F_0,1 - F_0,1(r_max)|", j1, j2)] {
            if b > ratio * a { problems.push(format!("{what} = {a:.3e} at r_max - {h:e} and {b:.3e} at r_max - {:e}: not vanishing faster than linearly", h / 10.0)) }
        }
        for (dx, f) in forces[4..].iter().filter(|(_, f)| max_abs(&f.get(2)) != 0.0) {
            problems.push(format!("|F_2| = {:e} at r_max + {dx} (must be exactly 0)", max_abs(&f.get(2))));
        }
        report(C, problems)
    })
}

/// Runs every check: symmetries, forces and (with a virial output) strain derivatives on each
/// frame; batching and cross-frame gradients on all frames together; wrapped/unwrapped on periodic
/// frames; large separation on the first two non-periodic frames; embedding cutoff and force
/// smoothness. Returns the names of the checks run, or every failure.
pub fn check_energy_model(model: &GraphModel, frames: &[AtomicData], opts: &KitOptions) -> Result<Vec<String>, Vec<KitError>> {
    let (mut ran, mut failed) = (Vec::new(), Vec::new());
    let mut note = |what: String, r: Result<(), KitError>| match r {
        Ok(()) => ran.push(what),
        Err(e) => failed.push(KitError { check: format!("{what}: {}", e.check), ..e }),
    };
    let refs: Vec<&AtomicData> = frames.iter().collect();
    let has = |k: &str| frames.first().is_some_and(|f| run(model, "forward", &model_input(model, f), false).is_ok_and(|o| o.contains_key(k)));
    let (forces, virial) = (has(FORCE_KEY), has(VIRIAL_KEY));
    for (i, f) in frames.iter().enumerate() {
        let d = model_input(model, f);
        note(format!("frame {i} equivariance"), check_equivariance(model, &d, opts));
        note(format!("frame {i} permutation"), check_permutation(model, &d, opts));
        if forces { note(format!("frame {i} forces fd"), check_forces_fd(model, &d, opts)) }
        if virial { note(format!("frame {i} strain fd"), check_strain_fd(model, &d, opts)) }
        if cell_of(f).is_some() { note(format!("frame {i} wrapped/unwrapped"), check_wrapped_unwrapped(model, f, opts)) }
    }
    if refs.len() >= 2 {
        let batch = collate_inputs(model, &refs).map(|b| model_input(model, &b));
        note("batch".into(), check_batch(model, &refs, opts));
        note("batch equivariance".into(), batch.and_then(|b| check_equivariance(model, &b, opts)));
        note("cross-frame gradient".into(), check_cross_frame_grad(model, &refs));
    }
    let molecules: Vec<&AtomicData> = frames.iter().filter(|f| cell_of(f).is_none()).collect();
    if molecules.len() >= 2 { note("large separation".into(), check_large_separation(model, molecules[0], molecules[1], opts)) }
    note("embedding cutoff".into(), check_embedding_cutoff(model, opts));
    if forces { note("force smoothness".into(), check_force_smoothness(model, opts)) }
    if failed.is_empty() { Ok(ran) } else { Err(failed) }
}
