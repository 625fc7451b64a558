//! The inference path for molecular dynamics: one structure in, energy, forces, virial and
//! per-atom energies out, as MD engines need them (the C library `integrations/capi`, and through
//! it the LAMMPS plugin and the Python/ASE calculator, and `nequip serve`). Mirrors what nequip
//! 0.6.2's deployed model computes for `pair_nequip` and `nequip/ase/nequip_calculator.py`, on
//! a nequip-rs model file.
//!
//! How it differs from the training forward ([`GraphModel::forward`] through `ForceOutput` /
//! `StressForceOutput`):
//! - The model below its `RescaleOutput`s and force/stress wrappers (the energy model) runs
//!   on **edge vectors given as the autograd leaf**; one backward gives `g_e = ∂E/∂r_e` for
//!   every edge, from which forces (`F_i += g_e`, `F_j −= g_e` for `r_e = r_j − r_i`) and the
//!   virial (`W = −Σ_e r_e ⊗ g_e`, nequip's `−∂E/∂ε`) follow. The same path serves a structure
//!   whose neighbours this library finds ([`Potential::compute`]) and an engine's graph of local
//!   and ghost atoms ([`Potential::compute_graph`]): periodic images, ghost atoms and domain
//!   decomposition are all just edges.
//! - Eval mode, parameters frozen (`requires_grad = false`), the backward only into the edge
//!   vectors: no graph for second derivatives, nothing for the parameters.
//! - The `RescaleOutput` chain is folded into two affine maps read once at load time (total
//!   energy `a_T · Σ e_i + b_T`, per-atom energy `a_A · e_i + b_A`).

use std::path::Path;

use tch::{Device, Kind, Tensor};

use crate::config::{Config, Value};
use crate::data::keys::*;
use crate::data::neighbors::neighbor_list;
use crate::data::AtomicDataDict;
use crate::io::model_file::{self, ModelFileError};
use crate::nn::grad_output::{GradientOutput, PartialForceOutput, StressOutput};
use crate::nn::rescale::RescaleOutput;
use crate::nn::{GraphModel, GraphModule, ModelError};

/// Errors of loading or evaluating a [`Potential`].
#[derive(Debug, thiserror::Error)]
pub enum PotentialError {
    #[error(transparent)]
    ModelFile(#[from] ModelFileError),
    #[error("{}: {message}", file.display())]
    Unsupported { file: std::path::PathBuf, message: String },
    #[error("invalid input: {0}")]
    Input(String),
    #[error("the model failed: {0}")]
    Model(#[from] ModelError),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// `y ↦ scale · y + shift`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Affine {
    scale: f64,
    shift: f64,
}

impl Affine {
    const IDENTITY: Affine = Affine { scale: 1.0, shift: 0.0 };
    /// `self` followed by the eval-mode rescaling of `key` by `r`.
    fn then(self, r: &RescaleOutput, key: &str) -> Result<Affine, String> {
        let scalar = |t: Option<Tensor>, what: &str| -> Result<Option<f64>, String> {
            match t {
                Some(t) if t.numel() == 1 => Ok(Some(f64::try_from(t.to_kind(Kind::Double).reshape([-1]).get(0)).map_err(|e| e.to_string())?)),
                Some(t) => Err(format!("the model's {what} for `{key}` has {} components; an energy needs one", t.numel())),
                None => Ok(None),
            }
        };
        let mut a = self;
        if r.scale_keys.iter().any(|k| k == key) {
            if let Some(s) = scalar(r.scale_by(), "scale")? {
                a = Affine { scale: a.scale * s, shift: a.shift * s };
            }
        }
        if r.shift_keys.iter().any(|k| k == key) {
            if let Some(b) = scalar(r.shift_by(), "shift")? {
                a.shift += b;
            }
        }
        Ok(a)
    }
}

/// What to compute besides the energy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Request {
    pub forces: bool,
    pub virial: bool,
    pub atom_energies: bool,
}

impl Request {
    pub const ALL: Request = Request { forces: true, virial: true, atom_energies: true };
}

/// Results, in float64. `energy` of [`Potential::compute`] includes the model's constant
/// energy shift, that of [`Potential::compute_graph`] does not (see [`Potential::energy_shift`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outputs {
    pub energy: f64,
    /// `[n_nodes]` forces, when requested.
    pub forces: Option<Vec<[f64; 3]>>,
    /// `virial[a][b]` = `−∂E/∂ε_ab`, when requested.
    pub virial: Option<[[f64; 3]; 3]>,
    /// `[n_energy_nodes]` per-atom energies, when requested.
    pub atom_energies: Option<Vec<f64>>,
}

/// A graph given by an MD engine: nodes `0..types.len()`, directed edges `centers[e] →
/// neighbors[e]` with vectors `r_neighbor − r_center` (periodic images applied). Edges of
/// length `>= r_max` are skipped. The energy is that of nodes `0..n_energy_nodes`.
#[derive(Debug, Clone, Copy)]
pub struct Graph<'a> {
    pub types: &'a [i64],
    pub n_energy_nodes: usize,
    pub centers: &'a [i64],
    pub neighbors: &'a [i64],
    pub vectors: &'a [[f64; 3]],
}

/// A model file loaded for inference.
#[derive(Debug)]
pub struct Potential {
    model: GraphModel,
    config: Config,
    r_max: f64,
    type_names: Vec<String>,
    num_layers: usize,
    device: Device,
    total: Affine,
    per_atom: Affine,
}

/// The energy model below the `RescaleOutput`s and the force/stress wrapper, and the rescale
/// chain (outermost first).
fn energy_model(model: &GraphModel) -> (&dyn GraphModule, Vec<&RescaleOutput>) {
    let mut chain = Vec::new();
    let mut m: &dyn GraphModule = model.model.as_ref();
    while let Some(r) = m.as_any().downcast_ref::<RescaleOutput>() {
        chain.push(r);
        m = r.model.as_ref();
    }
    let any = m.as_any();
    let inner = if let Some(g) = any.downcast_ref::<GradientOutput>() {
        g.func.as_ref()
    } else if let Some(s) = any.downcast_ref::<StressOutput>() {
        s.func.as_ref()
    } else if let Some(p) = any.downcast_ref::<PartialForceOutput>() {
        p.func.as_ref()
    } else {
        m
    };
    (inner, chain)
}

/// Message-passing steps below `m`: each `ConvNetLayer` (which holds its `InteractionBlock`)
/// and each `InteractionBlock` used on its own counts once.
fn count_interactions(m: &dyn GraphModule) -> usize {
    match m.type_name() {
        "ConvNetLayer" | "InteractionBlock" => 1,
        _ => m.children().into_iter().map(|(_, c)| count_interactions(c)).sum(),
    }
}

fn check_finite(what: &str, index: usize, v: &[f64; 3]) -> Result<(), PotentialError> {
    if v.iter().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(PotentialError::Input(format!("{what} {index} is not finite: {v:?}")))
    }
}

impl Potential {
    /// Load a model file onto `device` (`cpu`, `cuda`, `cuda:N`; `None`: the CPU).
    pub fn load(path: &Path, device: Option<&str>) -> Result<Self, PotentialError> {
        let (model, config) = model_file::load(path, Some(device.unwrap_or("cpu")))?;
        Self::from_model(model, config).map_err(|message| PotentialError::Unsupported { file: path.to_path_buf(), message })
    }

    /// A model already built (with its resolved config: `r_max`, `type_names`); its parameters
    /// are frozen. Errors say what the model lacks.
    pub fn from_model(model: GraphModel, config: Config) -> Result<Self, String> {
        let r_max = config.get("r_max").and_then(Value::as_f64).ok_or("the config has no numeric r_max")?;
        let type_names: Vec<String> = config.get("type_names").and_then(Value::as_sequence).map(|s| s.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default();
        if type_names.is_empty() {
            return Err("the config has no type_names".into());
        }
        let (inner, chain) = energy_model(&model);
        if !inner.irreps_out().contains_key(PER_ATOM_ENERGY_KEY) {
            return Err(format!("the model has no per-atom energy output `{PER_ATOM_ENERGY_KEY}` (outputs: {})", inner.irreps_out().keys().cloned().collect::<Vec<_>>().join(", ")));
        }
        let fold = |key: &str| chain.iter().rev().try_fold(Affine::IDENTITY, |a, r| a.then(r, key));
        let total = fold(TOTAL_ENERGY_KEY)?;
        let per_atom = fold(PER_ATOM_ENERGY_KEY)?;
        let num_layers = count_interactions(inner).max(1);
        for p in model.parameters() {
            let _ = p.shallow_clone().set_requires_grad(false);
        }
        let device = model.device();
        Ok(Potential { model, config, r_max, type_names, num_layers, device, total, per_atom })
    }

    pub fn r_max(&self) -> f64 {
        self.r_max
    }
    pub fn type_names(&self) -> &[String] {
        &self.type_names
    }
    /// The dtype the model computes in (`float32` / `float64`).
    pub fn model_dtype(&self) -> Kind {
        self.model.model_dtype
    }
    /// Message-passing steps: the receptive field is `num_layers · r_max`.
    pub fn num_layers(&self) -> usize {
        self.num_layers
    }
    /// The constant added to every structure's total energy (nequip's global shift).
    pub fn energy_shift(&self) -> f64 {
        self.total.shift
    }
    pub fn device(&self) -> Device {
        self.device
    }
    /// The config stored in the model file (as resolved when it was written).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// One structure: `positions` `[n]`, model type indices `types` `[n]`, `cell` rows = lattice
    /// vectors (`None`: no cell), periodic along the axes where `pbc` is true. Neighbours are
    /// found here (nequip's edge set); the energy includes [`Self::energy_shift`].
    pub fn compute(&self, positions: &[[f64; 3]], types: &[i64], cell: Option<&[[f64; 3]; 3]>, pbc: [bool; 3], request: Request) -> Result<Outputs, PotentialError> {
        if positions.len() != types.len() {
            return Err(PotentialError::Input(format!("{} positions but {} types", positions.len(), types.len())));
        }
        for (i, p) in positions.iter().enumerate() {
            check_finite("the position of atom", i, p)?;
        }
        let pbc = if cell.is_some() { pbc } else { [false; 3] };
        let nl = neighbor_list(positions, cell, pbc, self.r_max, false).map_err(|e| PotentialError::Input(e.to_string()))?;
        let zero = [[0.0; 3]; 3];
        let c = cell.unwrap_or(&zero);
        let vectors: Vec<[f64; 3]> = (0..nl.len())
            .map(|e| {
                let (i, j, s) = (nl.centers[e], nl.neighbors[e], nl.shifts[e]);
                std::array::from_fn(|k| positions[j][k] - positions[i][k] + (0..3).map(|a| s[a] as f64 * c[a][k]).sum::<f64>())
            })
            .collect();
        let centers: Vec<i64> = nl.centers.iter().map(|&i| i as i64).collect();
        let neighbors: Vec<i64> = nl.neighbors.iter().map(|&j| j as i64).collect();
        let mut out = self.compute_graph(&Graph { types, n_energy_nodes: types.len(), centers: &centers, neighbors: &neighbors, vectors: &vectors }, request)?;
        out.energy += self.total.shift;
        Ok(out)
    }

    /// An engine's graph (see [`Graph`]); forces on every node, the energy without
    /// [`Self::energy_shift`].
    pub fn compute_graph(&self, g: &Graph, request: Request) -> Result<Outputs, PotentialError> {
        let n = g.types.len();
        let ntypes = self.type_names.len() as i64;
        if g.n_energy_nodes > n {
            return Err(PotentialError::Input(format!("n_energy_nodes = {} exceeds the {n} nodes", g.n_energy_nodes)));
        }
        if g.centers.len() != g.neighbors.len() || g.centers.len() != g.vectors.len() {
            return Err(PotentialError::Input(format!("{} centres, {} neighbours and {} edge vectors: they must be as many", g.centers.len(), g.neighbors.len(), g.vectors.len())));
        }
        if let Some((i, t)) = g.types.iter().enumerate().find(|(_, &t)| t < 0 || t >= ntypes) {
            return Err(PotentialError::Input(format!("atom {i} has type {t}, but the model has {ntypes} types (0..{}: {})", ntypes - 1, self.type_names.join(", "))));
        }
        // keep the edges within the cutoff
        let r2 = self.r_max * self.r_max;
        let (mut ei, mut vec) = (Vec::with_capacity(2 * g.centers.len()), Vec::with_capacity(3 * g.centers.len()));
        let mut nbr = Vec::with_capacity(g.centers.len());
        for e in 0..g.centers.len() {
            let (i, j, v) = (g.centers[e], g.neighbors[e], &g.vectors[e]);
            if i < 0 || j < 0 || i as usize >= n || j as usize >= n {
                return Err(PotentialError::Input(format!("edge {e} ({i} -> {j}) names a node outside 0..{n}")));
            }
            check_finite("the vector of edge", e, v)?;
            if v[0] * v[0] + v[1] * v[1] + v[2] * v[2] < r2 {
                ei.push(i);
                nbr.push(j);
                vec.extend_from_slice(v);
            }
        }
        let n_edges = nbr.len() as i64;
        ei.extend_from_slice(&nbr);
        self.evaluate(g.types, g.n_energy_nodes, &ei, &vec, n_edges, request)
    }

    /// The shared core: the energy model on `edge_index` `[2, E]` with `vectors` `[E, 3]`.
    fn evaluate(&self, types: &[i64], n_energy: usize, edge_index: &[i64], vectors: &[f64], n_edges: i64, request: Request) -> Result<Outputs, PotentialError> {
        let (dev, kind) = (self.device, self.model.model_dtype);
        let n = types.len() as i64;
        let edge_index = Tensor::from_slice(edge_index).view([2, n_edges]).to_device(dev);
        let vec64 = Tensor::from_slice(vectors).view([n_edges, 3]).to_device(dev);
        let need_grad = request.forces || request.virial;
        let vec = vec64.to_kind(kind).detach().set_requires_grad(need_grad);
        let mut data = AtomicDataDict::new();
        data.insert(POSITIONS_KEY.into(), Tensor::zeros([n, 3], (kind, dev)));
        data.insert(ATOM_TYPE_KEY.into(), Tensor::from_slice(types).view([n, 1]).to_device(dev));
        data.insert(EDGE_INDEX_KEY.into(), edge_index.shallow_clone());
        data.insert(EDGE_VECTORS_KEY.into(), vec.shallow_clone());
        data.insert(BATCH_KEY.into(), Tensor::zeros([n], (Kind::Int64, dev)));
        data.insert(BATCH_PTR_KEY.into(), Tensor::from_slice(&[0i64, n]).to_device(dev));
        let (inner, _) = energy_model(&self.model);
        let out = inner.forward(data, false)?;
        let e = out.get(PER_ATOM_ENERGY_KEY).ok_or_else(|| ModelError::MissingField { module: inner.type_name().into(), field: PER_ATOM_ENERGY_KEY.into() })?.reshape([-1]);
        let local = e.narrow(0, 0, n_energy as i64);
        let e_sum = local.sum(Kind::Double);
        let mut res = Outputs { energy: self.total.scale * f64::try_from(&e_sum)?, ..Default::default() };
        if request.atom_energies {
            let a: Vec<f64> = Vec::try_from(local.detach().to_kind(Kind::Double).to_device(Device::Cpu))?;
            res.atom_energies = Some(a.into_iter().map(|x| self.per_atom.scale * x + self.per_atom.shift).collect());
        }
        if !need_grad {
            return Ok(res);
        }
        let g = if e_sum.requires_grad() {
            let gs = Tensor::f_run_backward(&[&e_sum], &[&vec], false, false)?;
            gs.into_iter().next().filter(Tensor::defined).map(|g| g.to_kind(Kind::Double) * self.total.scale).unwrap_or_else(|| vec64.zeros_like())
        } else {
            vec64.zeros_like()
        };
        if request.forces {
            let f = Tensor::zeros([n, 3], (Kind::Double, dev)).index_add(0, &edge_index.get(0), &g).index_add(0, &edge_index.get(1), &(-&g));
            let flat: Vec<f64> = Vec::try_from(f.to_device(Device::Cpu).reshape([-1]))?;
            res.forces = Some(flat.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect());
        }
        if request.virial {
            let w = vec64.transpose(0, 1).mm(&g);
            let w = (&w + w.transpose(0, 1)) * -0.5;
            let flat: Vec<f64> = Vec::try_from(w.to_device(Device::Cpu).reshape([-1]))?;
            res.virial = Some(std::array::from_fn(|a| std::array::from_fn(|b| flat[3 * a + b])));
        }
        Ok(res)
    }
}
