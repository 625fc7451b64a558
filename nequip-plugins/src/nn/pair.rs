//! Pair potentials: port of `nequip/nn/pair_potential.py::{SimpleLennardJones, LennardJones,
//! ZBL}` (nequip 0.6.2), the modules behind `pair_style: LJ | LJ_fancy | ZBL`.
//!
//! Each computes one energy per directed edge `i → j` (half of the pair energy, since both
//! `i → j` and `j → i` are in the neighbour list), multiplies it by `edge_cutoff` (for
//! `SimpleLennardJones` only with `lj_use_cutoff`), sums it onto the centre atom
//! `edge_index[0]` and adds the result to `atomic_energy` (creating it if absent).
//!
//! **Rescaling.** Their energy constants (`lj_epsilon`, `epsilon`, `_qqr2exesquare`) are in
//! physical units; `update_for_rescale` divides them by the global scale of a
//! `RescaleOutput` that scales `atomic_energy`, which multiplies them back afterwards.
//!
//! **Deviations from nequip 0.6.2** (its `LennardJones` cannot run as written):
//! * nequip indexes the per-type-pair parameters to shape `[E]` and broadcasts them against
//!   edge lengths of shape `[E, 1]`, which gives an `[E, E]` energy (and `[N, E]` atomic
//!   energies) for any graph with more than one edge. Here the parameters are taken per edge
//!   (`[E, 1]`), the evident intent.
//! * nequip raises `ValueError` for `lj_per_type: false` (a scalar is accepted only when
//!   per-type); here a scalar then stays one 0-dimensional parameter, as its `_param` and
//!   `__repr__` anticipate.
//! * A missing (`null`) `lj_epsilon` / `lj_sigma` / `lj_delta` becomes an empty buffer in
//!   nequip and fails in `forward`; here it is an error when building.

// `ModelError` is the framework's error type, shared by every module.

use nequip_core::config::{Mapping, Resolution, Value};
use nequip_core::data::dict::with_edge_vectors;
use nequip_core::data::keys::*;
use nequip_core::data::type_mapper::atomic_number;
use nequip_core::data::AtomicDataDict;
use nequip_core::nn::graph::{field, init_irreps, irreps_dict, GraphIrreps, NamedTensor, Params, RescaleInfo};
use nequip_core::nn::{GraphModule, IrrepsDict, ModelError, ModuleContext, NnModule};
use nequip_core::{auto_init, builder};
use tch::{Kind, Tensor};

use super::graph_module_boilerplate;

/// `_init_irreps(irreps_in, irreps_out={atomic_energy: 0e})`, shared by the three modules.
fn pair_irreps(ctx: &ModuleContext) -> Result<GraphIrreps, ModelError> {
    init_irreps(&ctx.name, &ctx.irreps_in, &IrrepsDict::new(), &[], &irreps_dict(&[(PER_ATOM_ENERGY_KEY, Some("0e"))])?)
}

/// Edge lengths `[E]` (computed if absent), the edge index and the data.
fn edge_lengths(data: &mut AtomicDataDict, module: &str) -> Result<Tensor, ModelError> {
    with_edge_vectors(data, true).map_err(|e| ModelError::invalid(module, e.to_string()))?;
    Ok(data[EDGE_LENGTH_KEY].shallow_clone())
}

/// The types of both ends of every edge: `(center [E], neighbor [E])`.
fn edge_types(data: &AtomicDataDict, module: &str) -> Result<(Tensor, Tensor), ModelError> {
    let types = field(data, module, ATOM_TYPE_KEY)?.reshape([-1]);
    let ei = field(data, module, EDGE_INDEX_KEY)?;
    let t = types.index_select(0, &ei.reshape([-1])).view([2, -1]);
    Ok((t.get(0), t.get(1)))
}

/// Sum the edge energies `[E, 1]` onto `edge_index[0]` and add them to `atomic_energy`.
fn scatter_to_atoms(mut data: AtomicDataDict, edge_eng: Tensor, module: &str) -> Result<AtomicDataDict, ModelError> {
    let center = field(&data, module, EDGE_INDEX_KEY)?.get(0);
    let n = field(&data, module, POSITIONS_KEY)?.size()[0];
    let atomic = Tensor::zeros([n, 1], (edge_eng.kind(), edge_eng.device())).index_add(0, &center, &edge_eng);
    let atomic = match data.get(PER_ATOM_ENERGY_KEY) {
        Some(prev) => atomic + prev,
        None => atomic,
    };
    data.insert(PER_ATOM_ENERGY_KEY.into(), atomic);
    Ok(data)
}

/// Whether `r` asks to undo a global energy scale, and by how much (nequip: `atomic_energy`
/// among the scaled keys and a scale present).
fn rescale_factor(r: &RescaleInfo) -> Option<f64> {
    r.scale.filter(|_| r.scale_keys.iter().any(|k| k == PER_ATOM_ENERGY_KEY))
}

/// `update_for_rescale` of a module whose energy constant is the tensor `t` (in place).
fn divide_by_global_scale(t: &Tensor, r: &RescaleInfo) -> Result<(), ModelError> {
    if let Some(s) = rescale_factor(r) {
        tch::no_grad(|| {
            let _ = t.shallow_clone().g_div_scalar_(s);
        });
    }
    Ok(())
}

/// Keys of [`SimpleLennardJones`].
#[auto_init]
pub struct SimpleLennardJonesKeys {
    /// Lennard-Jones σ (length units).
    pub lj_sigma: f64,
    /// Lennard-Jones ε (energy units of the data).
    pub lj_epsilon: f64,
    /// Multiply by `edge_cutoff` (then a cutoff module must come before).
    #[key(default = false)]
    pub lj_use_cutoff: bool,
}

/// `pair_style: LJ`: `E_ij = 4ε((σ/r)¹² − (σ/r)⁶)`, half on each directed edge; σ and ε are
/// plain numbers (no parameters, nothing in the state dict, as in nequip).
#[builder(name = "SimpleLennardJones", kind = nn_module, keys = SimpleLennardJonesKeys)]
#[derive(Debug)]
pub struct SimpleLennardJones {
    irreps: GraphIrreps,
    pub lj_sigma: f64,
    pub lj_epsilon: f64,
    pub lj_use_cutoff: bool,
}

impl NnModule for SimpleLennardJones {
    type Keys = SimpleLennardJonesKeys;
    fn build(k: SimpleLennardJonesKeys, ctx: &ModuleContext, _: &Resolution) -> Result<Self, ModelError> {
        Ok(SimpleLennardJones { irreps: pair_irreps(ctx)?, lj_sigma: k.lj_sigma, lj_epsilon: k.lj_epsilon, lj_use_cutoff: k.lj_use_cutoff })
    }
}

impl GraphModule for SimpleLennardJones {
    graph_module_boilerplate!("SimpleLennardJones");
    fn forward(&self, mut data: AtomicDataDict, _training: bool) -> Result<AtomicDataDict, ModelError> {
        const M: &str = "SimpleLennardJones";
        let r = edge_lengths(&mut data, M)?.unsqueeze(-1);
        // PyTorch's `float / tensor` is `tensor.reciprocal() * float`
        let x = (r.reciprocal() * self.lj_sigma).pow_tensor_scalar(6.0);
        let eng = (x.square() - &x) * (2.0 * self.lj_epsilon);
        let eng = if self.lj_use_cutoff { eng * field(&data, M, EDGE_CUTOFF_KEY)? } else { eng };
        scatter_to_atoms(data, eng, M)
    }
    fn update_for_rescale(&mut self, r: &RescaleInfo) -> Result<(), ModelError> {
        if let Some(s) = rescale_factor(r) {
            self.lj_epsilon /= s;
        }
        Ok(())
    }
}

/// Keys of [`LennardJones`].
#[auto_init]
pub struct LennardJonesKeys {
    /// Number of atom types.
    pub num_types: i64,
    /// σ: a number, or a symmetric `num_types × num_types` matrix (per type pair).
    pub lj_sigma: Value,
    /// δ (shift of the distance): a number or a symmetric matrix.
    #[key(default = 0.0)]
    pub lj_delta: Value,
    /// ε: a number or a symmetric matrix (required in practice).
    pub lj_epsilon: Option<Value>,
    #[key(default = false)]
    pub lj_sigma_trainable: bool,
    #[key(default = false)]
    pub lj_delta_trainable: bool,
    #[key(default = false)]
    pub lj_epsilon_trainable: bool,
    /// Exponent p of `(σ / (r − δ))^p` (default 6).
    pub lj_exponent: Option<f64>,
    /// Parameters per type pair (a number is expanded to a matrix).
    #[key(default = true)]
    pub lj_per_type: bool,
    /// `lj`, `lj_repulsive_only` or `repulsive`.
    #[key(default = "lj")]
    pub lj_style: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LjStyle {
    Lj,
    LjRepulsiveOnly,
    Repulsive,
}

/// `pair_style: LJ_fancy`: `x = (σ/(r−δ))^p`, `E = 2ε(x² − x)` per directed edge (`lj`);
/// `lj_repulsive_only` adds ε and keeps `r < 2^(1/p) + δ`; `repulsive` is
/// `½ ε (σ (r − δ))^(−p)`. σ, δ, ε are parameters `sigma`, `delta`, `epsilon` (the upper
/// triangle is used, made symmetric, and passed through ReLU).
#[builder(name = "LennardJones", kind = nn_module, keys = LennardJonesKeys)]
#[derive(Debug)]
pub struct LennardJones {
    irreps: GraphIrreps,
    params: Params,
    epsilon: Tensor,
    sigma: Tensor,
    delta: Tensor,
    pub lj_style: LjStyle,
    pub exponent: f64,
}

/// A number or a matrix of numbers.
fn number_or_matrix(v: &Value) -> Option<Result<f64, Vec<Vec<f64>>>> {
    match v {
        Value::Number(n) => n.as_f64().map(Ok),
        Value::Sequence(rows) => rows.iter().map(|row| row.as_sequence()?.iter().map(Value::as_f64).collect::<Option<Vec<f64>>>()).collect::<Option<Vec<_>>>().map(Err),
        _ => None,
    }
}

/// nequip's parameter setup of `LennardJones.__init__` for one of `epsilon`, `sigma`, `delta`.
fn lj_parameter(params: &Params, name: &str, value: Option<&Value>, trainable: bool, per_type: bool, num_types: i64, ctx: &ModuleContext) -> Result<Tensor, ModelError> {
    let key = format!("lj_{name}");
    let value = value.filter(|v| !v.is_null()).ok_or_else(|| ModelError::invalid(&ctx.name, format!("`{key}` must be given (a number or a {num_types}x{num_types} matrix)")))?;
    let parsed = number_or_matrix(value).ok_or_else(|| {
        ModelError::invalid(&ctx.name, format!("`{key}` must be a number or a {num_types}x{num_types} matrix, got {}", nequip_core::config::yaml::render(value)))
    })?;
    let t = match parsed {
        Ok(x) if per_type => Tensor::ones([num_types, num_types], (ctx.kind, ctx.device)) * x,
        Ok(x) => Tensor::scalar_tensor(x, (ctx.kind, ctx.device)),
        Err(_) if !per_type => return Err(ModelError::invalid(&ctx.name, format!("`{key}` is a matrix, which needs lj_per_type: true"))),
        Err(rows) => {
            if rows.len() as i64 != num_types || rows.iter().any(|r| r.len() as i64 != num_types) {
                return Err(ModelError::invalid(&ctx.name, format!("`{key}` must be a {num_types}x{num_types} matrix (one value per type pair)")));
            }
            let n = num_types as usize;
            if (0..n).any(|i| (0..n).any(|j| rows[i][j] != rows[j][i])) {
                return Err(ModelError::invalid(&ctx.name, format!("`{key}` must be symmetric")));
            }
            let flat: Vec<f64> = rows.concat();
            Tensor::from_slice(&flat).view([num_types, num_types]).to_kind(ctx.kind).triu(0)
        }
    };
    Ok(params.add(name, &t, trainable))
}

/// nequip's `_param`: per edge `[E, 1]` from the symmetrised upper triangle, then ReLU.
fn per_edge(param: &Tensor, i1: &Tensor, i2: &Tensor) -> Tensor {
    let p = if param.dim() == 2 {
        let n = param.size()[0];
        let sym = param.triu(0) + param.triu(1).transpose(-1, -2);
        sym.reshape([-1]).index_select(0, &(i1 * n + i2)).unsqueeze(-1)
    } else {
        param.shallow_clone()
    };
    p.relu()
}

impl NnModule for LennardJones {
    type Keys = LennardJonesKeys;
    fn build(k: LennardJonesKeys, ctx: &ModuleContext, _: &Resolution) -> Result<Self, ModelError> {
        let lj_style = match k.lj_style.as_str() {
            "lj" => LjStyle::Lj,
            "lj_repulsive_only" => LjStyle::LjRepulsiveOnly,
            "repulsive" => LjStyle::Repulsive,
            other => return Err(ModelError::invalid(&ctx.name, format!("lj_style must be lj, lj_repulsive_only or repulsive, got {other:?}"))),
        };
        if k.num_types < 1 {
            return Err(ModelError::invalid(&ctx.name, format!("num_types must be >= 1, got {}", k.num_types)));
        }
        let irreps = pair_irreps(ctx)?;
        let params = ctx.params();
        let mk = |name: &str, v: Option<&Value>, trainable: bool| lj_parameter(&params, name, v, trainable, k.lj_per_type, k.num_types, ctx);
        let epsilon = mk("epsilon", k.lj_epsilon.as_ref(), k.lj_epsilon_trainable)?;
        let sigma = mk("sigma", Some(&k.lj_sigma), k.lj_sigma_trainable)?;
        let delta = mk("delta", Some(&k.lj_delta), k.lj_delta_trainable)?;
        Ok(LennardJones { irreps, params, epsilon, sigma, delta, lj_style, exponent: k.lj_exponent.unwrap_or(6.0) })
    }
}

impl GraphModule for LennardJones {
    graph_module_boilerplate!("LennardJones");
    fn forward(&self, mut data: AtomicDataDict, _training: bool) -> Result<AtomicDataDict, ModelError> {
        const M: &str = "LennardJones";
        let r = edge_lengths(&mut data, M)?.unsqueeze(-1);
        let (i1, i2) = edge_types(&data, M)?;
        let sigma = per_edge(&self.sigma, &i1, &i2);
        let delta = per_edge(&self.delta, &i1, &i2);
        let epsilon = per_edge(&self.epsilon, &i1, &i2);
        let p = self.exponent;
        let eng = if self.lj_style == LjStyle::Repulsive {
            // half of the pair energy on each directed edge
            (&epsilon * 0.5) * (&sigma * (&r - &delta)).pow_tensor_scalar(-p)
        } else {
            let x = (&sigma / (&r - &delta)).pow_tensor_scalar(p).neg();
            let x = &x + x.square();
            // 2ε: ij and ji each contribute half of the pair's 4ε(x² − x)
            let eng = (&epsilon * 2.0) * x;
            if self.lj_style == LjStyle::LjRepulsiveOnly {
                // shifted up by ε, kept only below 2^(1/p) + δ
                let keep = r.lt_tensor(&(&delta + 2f64.powf(1.0 / p)));
                (eng + &epsilon) * keep
            } else {
                eng
            }
        };
        let eng = eng * field(&data, M, EDGE_CUTOFF_KEY)?;
        scatter_to_atoms(data, eng, M)
    }
    fn own_tensors(&self) -> Vec<NamedTensor> {
        self.params.named()
    }
    fn update_for_rescale(&mut self, r: &RescaleInfo) -> Result<(), ModelError> {
        divide_by_global_scale(&self.epsilon, r)
    }
}

/// Keys of [`ZBL`].
#[auto_init]
pub struct ZblKeys {
    /// Number of atom types.
    pub num_types: i64,
    /// LAMMPS units of the data: `metal` (eV, Å) or `real` (kcal/mol, Å).
    pub units: String,
    /// Type → chemical symbol (set by the type mapper from `chemical_symbols`).
    pub type_to_chemical_symbol: Option<Mapping>,
}

/// `pair_style: ZBL`: LAMMPS `pair_zbl`'s universal screened nuclear repulsion
/// `E_ij = qqr2e · Z_i Z_j / r · φ(r / a)`, `a = 0.46850 / (Z_i^0.23 + Z_j^0.23)`, half per
/// directed edge. Buffers `atomic_numbers` (per type) and `_qqr2exesquare` (float64, already
/// halved).
#[builder(name = "ZBL", kind = nn_module, keys = ZblKeys)]
#[derive(Debug)]
pub struct ZBL {
    irreps: GraphIrreps,
    params: Params,
    atomic_numbers: Tensor,
    qqr2exesquare: Tensor,
}

/// `qqr2e · qelectron²` of LAMMPS's unit styles (`update.cpp`), as nequip lists them.
pub fn zbl_prefactor(units: &str) -> Option<f64> {
    match units {
        "metal" => Some(14.399645),
        "real" => Some(332.06371),
        _ => None,
    }
}

/// The atomic numbers of types `0..num_types` from `type_to_chemical_symbol`.
fn zbl_atomic_numbers(map: Option<&Mapping>, num_types: i64, module: &str) -> Result<Vec<i64>, ModelError> {
    let map = map.ok_or_else(|| ModelError::invalid(module, "Either chemical_symbol_to_type or type_to_chemical_symbol is required (ZBL needs the atomic number of every type; give chemical_symbols, or type_names with type_to_chemical_symbol)"))?;
    let mut symbols: Vec<Option<String>> = vec![None; num_types.max(0) as usize];
    for (k, v) in map {
        let t = match k {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        let slot = t.and_then(|t| symbols.get_mut(t as usize));
        match (slot, v.as_str()) {
            (Some(slot), Some(s)) => *slot = Some(s.to_string()),
            _ => return Err(ModelError::invalid(module, format!("type_to_chemical_symbol must map the types 0..{num_types} to chemical symbols, got {}", nequip_core::config::yaml::render(&Value::Mapping(map.clone()))))),
        }
    }
    symbols
        .into_iter()
        .enumerate()
        .map(|(t, s)| {
            let s = s.ok_or_else(|| ModelError::invalid(module, format!("type_to_chemical_symbol has no symbol for type {t} (it must cover the types 0..{num_types})")))?;
            atomic_number(&s).ok_or_else(|| {
                ModelError::invalid(module, format!("Your chemical symbols don't seem valid (`{s}` for type {t} has no atomic number >= 1); did you try to use fake chemical symbols for arbitrary atom types? If so, instead provide atom_types directly in your dataset and specify `type_names` and `type_to_chemical_symbol` in your config. `type_to_chemical_symbol` then tells ZBL what atomic numbers to use for the various atom types in your system."))
            })
        })
        .collect()
}

impl NnModule for ZBL {
    type Keys = ZblKeys;
    fn build(k: ZblKeys, ctx: &ModuleContext, _: &Resolution) -> Result<Self, ModelError> {
        let irreps = pair_irreps(ctx)?;
        let z = zbl_atomic_numbers(k.type_to_chemical_symbol.as_ref(), k.num_types, &ctx.name)?;
        let q = zbl_prefactor(&k.units).ok_or_else(|| ModelError::invalid(&ctx.name, format!("units must be metal or real (LAMMPS unit styles), got {:?}", k.units)))?;
        let params = ctx.params();
        let z: Vec<f64> = z.into_iter().map(|z| z as f64).collect();
        let atomic_numbers = params.add("atomic_numbers", &Tensor::from_slice(&z).to_kind(ctx.kind), false);
        // half the energy on each of ij, ji
        let qqr2exesquare = params.add("_qqr2exesquare", &Tensor::scalar_tensor(q * 0.5, (Kind::Double, ctx.device)), false);
        Ok(ZBL { irreps, params, atomic_numbers, qqr2exesquare })
    }
}

// LAMMPS pair_zbl_const.h
const PZBL: f64 = 0.23;
const A0: f64 = 0.46850;
const ZBL_C: [f64; 4] = [0.02817, 0.28022, 0.50986, 0.18175];
const ZBL_D: [f64; 4] = [-0.20162, -0.40290, -0.94229, -3.19980];

impl GraphModule for ZBL {
    graph_module_boilerplate!("ZBL");
    fn forward(&self, mut data: AtomicDataDict, _training: bool) -> Result<AtomicDataDict, ModelError> {
        const M: &str = "ZBL";
        let r = edge_lengths(&mut data, M)?;
        let (t1, t2) = edge_types(&data, M)?;
        let (zi, zj) = (self.atomic_numbers.index_select(0, &t1), self.atomic_numbers.index_select(0, &t2));
        let x = ((zi.pow_tensor_scalar(PZBL) + zj.pow_tensor_scalar(PZBL)) * &r) / A0;
        let first = (&x * ZBL_D[0]).exp() * ZBL_C[0];
        let psi = ZBL_C.iter().zip(ZBL_D).skip(1).fold(first, |psi, (c, d)| psi + (&x * d).exp() * *c);
        let eng = (&self.qqr2exesquare * ((&zi * &zj) / &r)) * psi;
        let eng = eng.unsqueeze(-1) * field(&data, M, EDGE_CUTOFF_KEY)?;
        scatter_to_atoms(data, eng, M)
    }
    fn own_tensors(&self) -> Vec<NamedTensor> {
        self.params.named()
    }
    fn update_for_rescale(&mut self, r: &RescaleInfo) -> Result<(), ModelError> {
        divide_by_global_scale(&self.qqr2exesquare, r)
    }
}
