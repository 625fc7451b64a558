//! One frame of atomic data: a map from field name to [`Array`]. Mirrors `AtomicData` and
//! `_process_dict` / `from_points` / the Cartesian-tensor handling of `from_ase` in
//! `nequip/data/AtomicData.py` (nequip 0.6.2).
//!
//! Shape conventions (as nequip's): node fields `[N, ...]` (a `[N]` field becomes `[N, 1]`),
//! edge fields `[E, ...]`, graph fields keep their per-frame shape (`total_energy` `[1]`,
//! `cell` `[3, 3]`, `pbc` `[3]`, `stress` `[3, 3]`), 0-d values become `[1]`, long fields are
//! `i64`, floats are `f64`.

use std::collections::BTreeMap;

use super::array::{Array, ArrayData, DType};
use super::error::FrameError;
use super::fields::{cartesian_tensor_formula, field_kind, is_long, FieldKind};
use super::keys::*;
use super::neighbors::neighbor_list;
use super::AtomicDataDict;

/// Options of neighbor-list construction: nequip's `AtomicData_options` (`dataset_AtomicData_options`
/// in a config, with `r_max` filled in from the global `r_max`).
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AtomicDataOptions {
    /// Cutoff radius; pairs with distance strictly below it are edges. Required, `> 0`.
    pub r_max: f64,
    /// Keep `i→i` edges with zero shift. Default `false`.
    #[serde(default)]
    pub self_interaction: bool,
    /// With `self_interaction`, whether the zero-shift self edge is really included (ASE's
    /// `self_interaction` argument). Default `true`. Periodic self images are always kept.
    #[serde(default = "default_true")]
    pub strict_self_interaction: bool,
    /// A frame without any edge is an error (nequip's `NEQUIP_ERROR_ON_NO_EDGES`, whose value,
    /// `true` unless set to `false`, is the default).
    #[serde(default = "default_error_on_no_edges")]
    pub error_on_no_edges: bool,
}

fn default_true() -> bool {
    true
}

/// `NEQUIP_ERROR_ON_NO_EDGES` (default `true`).
pub fn default_error_on_no_edges() -> bool {
    std::env::var("NEQUIP_ERROR_ON_NO_EDGES")
        .map(|v| v.to_lowercase() != "false")
        .unwrap_or(true)
}

impl AtomicDataOptions {
    /// Options with this cutoff and nequip's defaults otherwise.
    pub fn new(r_max: f64) -> Self {
        AtomicDataOptions {
            r_max,
            self_interaction: false,
            strict_self_interaction: true,
            error_on_no_edges: default_error_on_no_edges(),
        }
    }
}

/// A single frame (or, after [`batch`](super::batch::collate), a batch of frames).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AtomicData {
    fields: BTreeMap<String, Array>,
}

fn field_err(field: &str, msg: impl Into<String>) -> FrameError {
    FrameError::Field {
        field: field.to_string(),
        msg: msg.into(),
    }
}

/// ASE Voigt order (xx, yy, zz, yz, xz, xy) to a symmetric 3×3 matrix.
pub fn voigt_to_3x3(v: &[f64]) -> [f64; 9] {
    [v[0], v[5], v[4], v[5], v[1], v[3], v[4], v[3], v[2]]
}

/// Brings a rank-2 Cartesian tensor field to `[3, 3]` (graph) or `[N, 3, 3]` (node): Voigt-6
/// `stress`/`virial` and flat 9-vectors are converted, as in nequip's `from_ase`.
pub fn cartesian_to_3x3(key: &str, a: Array) -> Result<Array, FrameError> {
    if cartesian_tensor_formula(key).is_none() {
        return Ok(a);
    }
    let vals = a.to_f64_vec();
    match field_kind(key) {
        Some(FieldKind::Graph) => match a.numel() {
            6 if key == STRESS_KEY || key == VIRIAL_KEY => Ok(Array::f64(vec![3, 3], voigt_to_3x3(&vals).to_vec())),
            9 => Ok(Array::f64(vec![3, 3], vals)),
            _ => Err(field_err(key, format!("bad shape {:?} for a rank-2 Cartesian tensor graph field (expected 6 Voigt values, 9 or 3×3)", a.shape))),
        },
        Some(FieldKind::Node) => {
            if a.shape.len() >= 2 && a.row_size() == 9 {
                let n = a.shape[0];
                Ok(Array::f64(vec![n, 3, 3], vals))
            } else {
                Err(field_err(key, format!("bad shape {:?} for a rank-2 Cartesian tensor node field (expected [N, 9] or [N, 3, 3])", a.shape)))
            }
        }
        _ => Err(field_err(key, "registered as a Cartesian tensor but not as a node or graph field")),
    }
}

impl AtomicData {
    /// Builds a frame from fields, coercing and validating them like nequip's `AtomicData(...)`:
    /// `pos` `[N, 3]` and `edge_index` `[2, E]` required, `edge_cell_shift` needs `cell`, long
    /// fields become `i64`, `[n]` node/edge fields `[n, 1]`, sizes are checked against `N`/`E`,
    /// and every float must be finite.
    pub fn new(fields: BTreeMap<String, Array>) -> Result<Self, FrameError> {
        let mut out = BTreeMap::new();
        for (k, mut v) in fields {
            if is_long(&k) && v.dtype() != DType::I64 {
                v = v.to_i64().ok_or_else(|| {
                    field_err(
                        &k,
                        format!("expected integers, got non-integral {} values", v.dtype()),
                    )
                })?;
            }
            // registered float fields given as integers (e.g. `energy=-3` in an extxyz)
            if !is_long(&k) && v.dtype() == DType::I64 && field_kind(&k).is_some() && k != PBC_KEY {
                v = Array::f64(v.shape.clone(), v.to_f64_vec());
            }
            if v.shape.is_empty() {
                v.shape = vec![1];
            }
            if matches!(field_kind(&k), Some(FieldKind::Node | FieldKind::Edge))
                && v.shape.len() == 1
            {
                v.shape.push(1);
            }
            if let ArrayData::F64(d) = &v.data {
                if let Some(index) = d.iter().position(|x| !x.is_finite()) {
                    return Err(FrameError::NonFinite {
                        field: k.clone(),
                        value: d[index],
                        index,
                    });
                }
            }
            out.insert(k, v);
        }
        let data = AtomicData { fields: out };
        data.validate()?;
        Ok(data)
    }

    fn validate(&self) -> Result<(), FrameError> {
        let pos = self
            .fields
            .get(POSITIONS_KEY)
            .ok_or_else(|| field_err(POSITIONS_KEY, "missing"))?;
        if pos.shape.len() != 2 || pos.shape[1] != 3 || pos.dtype() != DType::F64 {
            return Err(field_err(
                POSITIONS_KEY,
                format!("expected float [N, 3], got {} {:?}", pos.dtype(), pos.shape),
            ));
        }
        let ei = self
            .fields
            .get(EDGE_INDEX_KEY)
            .ok_or_else(|| field_err(EDGE_INDEX_KEY, "missing"))?;
        if ei.shape.len() != 2 || ei.shape[0] != 2 {
            return Err(field_err(
                EDGE_INDEX_KEY,
                format!("expected [2, E], got {:?}", ei.shape),
            ));
        }
        let (n, e) = (pos.shape[0], ei.shape[1]);
        if let Some(bad) = ei
            .as_i64()
            .and_then(|v| v.iter().find(|&&x| x < 0 || x as usize >= n))
        {
            return Err(field_err(
                EDGE_INDEX_KEY,
                format!("index {bad} out of range for {n} atoms"),
            ));
        }
        if self.fields.contains_key(EDGE_CELL_SHIFT_KEY) && !self.fields.contains_key(CELL_KEY) {
            return Err(field_err(EDGE_CELL_SHIFT_KEY, "given without `cell`"));
        }
        let batched = self.fields.contains_key(BATCH_KEY);
        for (k, v) in &self.fields {
            match field_kind(k) {
                Some(FieldKind::Node) if v.shape[0] != n => {
                    return Err(field_err(
                        k,
                        format!("is a node field but has shape {:?} for {n} atoms", v.shape),
                    ))
                }
                Some(FieldKind::Edge) if v.shape[0] != e => {
                    return Err(field_err(
                        k,
                        format!("is an edge field but has shape {:?} for {e} edges", v.shape),
                    ))
                }
                _ => {}
            }
        }
        if let Some(cell) = self.fields.get(CELL_KEY) {
            let ok = if batched {
                cell.shape.len() == 3 && cell.shape[1..] == [3, 3]
            } else {
                cell.shape == [3, 3]
            };
            if !ok || cell.dtype() != DType::F64 {
                return Err(field_err(
                    CELL_KEY,
                    format!(
                        "expected float [3, 3], got {} {:?}",
                        cell.dtype(),
                        cell.shape
                    ),
                ));
            }
        }
        if let Some(pbc) = self.fields.get(PBC_KEY) {
            if pbc.dtype() != DType::Bool || pbc.shape.last() != Some(&3) {
                return Err(field_err(
                    PBC_KEY,
                    format!("expected bool [3], got {} {:?}", pbc.dtype(), pbc.shape),
                ));
            }
        }
        Ok(())
    }

    /// Builds the neighbor graph of `pos` (`[N, 3]` row-major) and the frame, like nequip's
    /// `AtomicData.from_points`. Always stores `cell` (zeros without one), `pbc` and
    /// `edge_cell_shift`. A `cell` without `pbc` is an error, as in nequip.
    pub fn from_points(
        pos: Vec<f64>,
        options: &AtomicDataOptions,
        cell: Option<[[f64; 3]; 3]>,
        pbc: Option<[bool; 3]>,
        mut extra: BTreeMap<String, Array>,
    ) -> Result<Self, FrameError> {
        if !pos.chunks_exact(3).remainder().is_empty() {
            return Err(field_err(
                POSITIONS_KEY,
                format!("{} values is not a multiple of 3", pos.len()),
            ));
        }
        let pbc = match (pbc, &cell) {
            (Some(p), _) => p,
            (None, None) => [false; 3],
            (None, Some(_)) => {
                return Err(field_err(
                    PBC_KEY,
                    "a cell was provided, but pbc weren't; please provide pbc explicitly",
                ))
            }
        };
        let cell = cell.unwrap_or([[0.0; 3]; 3]);
        let xyz: Vec<[f64; 3]> = pos.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
        let include_self = options.self_interaction && options.strict_self_interaction;
        let nl = neighbor_list(&xyz, Some(&cell), pbc, options.r_max, include_self)?;
        if nl.is_empty() && options.error_on_no_edges && !options.self_interaction {
            return Err(FrameError::NoEdges {
                r_max: options.r_max,
            });
        }
        let e = nl.len();
        let mut ei = Vec::with_capacity(2 * e);
        ei.extend(nl.centers.iter().map(|&i| i as i64));
        ei.extend(nl.neighbors.iter().map(|&j| j as i64));
        let shifts: Vec<f64> = nl
            .shifts
            .iter()
            .flat_map(|s| s.iter().map(|&x| x as f64))
            .collect();
        let n = xyz.len();
        extra.insert(POSITIONS_KEY.into(), Array::f64(vec![n, 3], pos));
        extra.insert(EDGE_INDEX_KEY.into(), Array::i64(vec![2, e], ei));
        extra.insert(EDGE_CELL_SHIFT_KEY.into(), Array::f64(vec![e, 3], shifts));
        extra.insert(
            CELL_KEY.into(),
            Array::f64(vec![3, 3], cell.iter().flatten().copied().collect()),
        );
        extra.insert(PBC_KEY.into(), Array::bool(vec![3], pbc.to_vec()));
        AtomicData::new(extra)
    }

    /// Wraps already-validated fields (nequip's `from_AtomicDataDict`, no checks).
    pub fn from_fields_unchecked(fields: BTreeMap<String, Array>) -> Self {
        AtomicData { fields }
    }

    pub fn fields(&self) -> &BTreeMap<String, Array> {
        &self.fields
    }
    pub fn into_fields(self) -> BTreeMap<String, Array> {
        self.fields
    }
    pub fn get(&self, key: &str) -> Option<&Array> {
        self.fields.get(key)
    }
    pub fn contains(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }
    /// Sets a field without validation.
    pub fn insert(&mut self, key: impl Into<String>, value: Array) {
        self.fields.insert(key.into(), value);
    }
    pub fn remove(&mut self, key: &str) -> Option<Array> {
        self.fields.remove(key)
    }
    /// Number of atoms.
    pub fn num_nodes(&self) -> usize {
        self.fields.get(POSITIONS_KEY).map_or(0, |p| p.len0())
    }
    /// Number of edges.
    pub fn num_edges(&self) -> usize {
        self.fields
            .get(EDGE_INDEX_KEY)
            .map_or(0, |e| e.shape.get(1).copied().unwrap_or(0))
    }
    /// Positions, `[N, 3]` row-major.
    pub fn pos(&self) -> &[f64] {
        self.fields
            .get(POSITIONS_KEY)
            .and_then(|p| p.as_f64())
            .unwrap_or(&[])
    }
    /// `(centres, neighbours)` of the edges.
    pub fn edge_index(&self) -> (&[i64], &[i64]) {
        let ei = self
            .fields
            .get(EDGE_INDEX_KEY)
            .and_then(|e| e.as_i64())
            .unwrap_or(&[]);
        ei.split_at(ei.len() / 2)
    }

    /// Edge vectors `pos[j] - pos[i] + shift · cell` (per-frame cell, or `cell[batch[i]]` when
    /// batched), nequip's `with_edge_vectors` without autograd.
    pub fn edge_vectors(&self) -> Vec<[f64; 3]> {
        let pos = self.pos();
        let (c, nb) = self.edge_index();
        let shifts = self
            .fields
            .get(EDGE_CELL_SHIFT_KEY)
            .and_then(|s| s.as_f64());
        let cells = self.fields.get(CELL_KEY).and_then(|s| s.as_f64());
        let batch = self.fields.get(BATCH_KEY).and_then(|b| b.as_i64());
        (0..c.len())
            .map(|e| {
                let (i, j) = (c[e] as usize, nb[e] as usize);
                let mut v: [f64; 3] = std::array::from_fn(|d| pos[3 * j + d] - pos[3 * i + d]);
                if let (Some(s), Some(cells)) = (shifts, cells) {
                    let b = match batch {
                        Some(bt) if cells.len() > 9 => bt[i] as usize,
                        _ => 0,
                    };
                    let cell = &cells[9 * b..9 * b + 9];
                    for (d, vd) in v.iter_mut().enumerate() {
                        *vd += (0..3).map(|k| s[3 * e + k] * cell[3 * k + d]).sum::<f64>();
                    }
                }
                v
            })
            .collect()
    }

    /// All fields as CPU tensors (float64 / int64 / bool): the model input.
    pub fn to_dict(&self) -> AtomicDataDict {
        self.fields
            .iter()
            .map(|(k, v)| (k.clone(), v.to_tensor()))
            .collect()
    }

    /// Copies a dict of CPU tensors back (no validation).
    pub fn from_dict(dict: &AtomicDataDict) -> Result<Self, tch::TchError> {
        let fields = dict
            .iter()
            .map(|(k, t)| Ok((k.clone(), Array::from_tensor(t)?)))
            .collect::<Result<_, tch::TchError>>()?;
        Ok(AtomicData { fields })
    }
}
