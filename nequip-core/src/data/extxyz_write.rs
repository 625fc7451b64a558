//! Extended XYZ writer (ASE conventions, lossless numbers) and the conversion of frames back to
//! [`XyzFrame`]s. Mirrors `AtomicData.to_ase` (`nequip/data/AtomicData.py`) followed by
//! `ase.io.write(..., format="extxyz")` (`ase/io/extxyz.py::write_xyz`), as `nequip-evaluate
//! --output` does; unlike ASE (`%16.8f`), floats are written with their shortest exact
//! representation, so reading back gives the same numbers.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use super::array::{Array, ArrayData};
use super::atomic_data::AtomicData;
use super::cache::atomic_write;
use super::error::DataError;
use super::extxyz::{InfoValue, XyzFrame};
use super::keys::*;
use super::type_mapper::{chemical_symbol, TypeMapper};

fn num(x: f64) -> String {
    format!("{x:?}")
}

fn quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || "._-+".contains(c)) {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn info_value(v: &InfoValue) -> String {
    let join = |v: Vec<String>| format!("\"{}\"", v.join(" "));
    let b = |x: bool| if x { "T" } else { "F" }.to_string();
    match v {
        InfoValue::Int(x) => x.to_string(),
        InfoValue::Float(x) => num(*x),
        InfoValue::Bool(x) => b(*x),
        InfoValue::Str(s) => quote(s),
        InfoValue::Ints(v) => join(v.iter().map(|x| x.to_string()).collect()),
        InfoValue::Floats(v) => join(v.iter().map(|&x| num(x)).collect()),
        InfoValue::Bools(v) => join(v.iter().map(|&x| b(x)).collect()),
        // ASE writes 3×3 info matrices in Fortran order
        InfoValue::Matrix(m) => join((0..9).map(|k| num(m[(k % 3) * 3 + k / 3])).collect()),
    }
}

/// Appends one frame in extended XYZ format.
pub fn write_frame(out: &mut String, f: &XyzFrame) {
    let n = f.natoms();
    let symbols: Vec<String> = match (&f.symbols, &f.numbers) {
        (Some(s), _) => s.clone(),
        (None, Some(z)) => z
            .iter()
            .map(|&z| chemical_symbol(z).unwrap_or("X").to_string())
            .collect(),
        (None, None) => vec!["X".to_string(); n],
    };
    let mut props = String::from("species:S:1:pos:R:3");
    for (name, a) in &f.arrays {
        let t = match a.data {
            ArrayData::F64(_) => 'R',
            ArrayData::I64(_) => 'I',
            ArrayData::Bool(_) => 'L',
        };
        let name = if name == "charges" { "charge" } else { name };
        let _ = write!(props, ":{name}:{t}:{}", a.row_size().max(1));
    }
    let _ = writeln!(out, "{n}");
    if f.cell.iter().flatten().any(|&x| x != 0.0) {
        let lat: Vec<String> = f.cell.iter().flatten().map(|&x| num(x)).collect();
        let _ = write!(out, "Lattice=\"{}\" ", lat.join(" "));
    }
    let _ = write!(out, "Properties={props}");
    for (k, v) in &f.info {
        let _ = write!(out, " {}={}", quote(k), info_value(v));
    }
    let pbc: Vec<&str> = f.pbc.iter().map(|&b| if b { "T" } else { "F" }).collect();
    let _ = writeln!(out, " pbc=\"{}\"", pbc.join(" "));
    for a in 0..n {
        let symbol = symbols.get(a).map_or("X", String::as_str);
        let _ = write!(out, "{symbol:<2}");
        for d in 0..3 {
            let _ = write!(out, " {:>22}", num(f.positions[3 * a + d]));
        }
        for arr in f.arrays.values() {
            let w = arr.row_size().max(1);
            for c in 0..w {
                let k = a * w + c;
                let s = match &arr.data {
                    ArrayData::F64(v) => num(v[k]),
                    ArrayData::I64(v) => v[k].to_string(),
                    ArrayData::Bool(v) => if v[k] { "T" } else { "F" }.to_string(),
                };
                let _ = write!(out, " {s:>22}");
            }
        }
        out.push('\n');
    }
}

/// Writes frames to `path` atomically.
pub fn write_extxyz(path: &Path, frames: &[XyzFrame]) -> Result<(), DataError> {
    let mut text = String::new();
    frames.iter().for_each(|f| write_frame(&mut text, f));
    atomic_write(path, text.as_bytes()).map_err(|source| DataError::Io {
        file: path.display().to_string(),
        source,
    })
}

/// nequip's `to_ase` for one (unbatched) frame: symbols from `atomic_numbers` or the type
/// mapper, `total_energy` → `energy`, `forces`, `atomic_energy` → `energies`, `stress` and
/// `virial` as 3×3, plus the node/graph `extra_fields`.
pub fn frame_to_xyz(
    data: &AtomicData,
    type_mapper: Option<&TypeMapper>,
    extra_fields: &[&str],
) -> XyzFrame {
    let n = data.num_nodes();
    let numbers: Option<Vec<i64>> = match (
        data.get(ATOMIC_NUMBERS_KEY).and_then(|a| a.as_i64()),
        type_mapper,
        data.get(ATOM_TYPE_KEY).and_then(|a| a.as_i64()),
    ) {
        (Some(z), _, _) => Some(z.to_vec()),
        (None, Some(tm), Some(t)) => tm.untransform(t),
        _ => None,
    };
    let symbols = numbers.as_ref().map(|z| {
        z.iter()
            .map(|&z| chemical_symbol(z).unwrap_or("X").to_string())
            .collect()
    });
    let cell_v = data
        .get(CELL_KEY)
        .map(|c| c.to_f64_vec())
        .filter(|c| c.len() == 9)
        .unwrap_or(vec![0.0; 9]);
    let pbc_v = data
        .get(PBC_KEY)
        .and_then(|p| p.as_bool())
        .map(|p| p.to_vec())
        .filter(|p| p.len() == 3)
        .unwrap_or(vec![false; 3]);
    let mut info = BTreeMap::new();
    let mut arrays = BTreeMap::new();
    if let Some(e) = data
        .get(TOTAL_ENERGY_KEY)
        .and_then(|e| e.as_f64())
        .and_then(|e| e.first())
    {
        info.insert("energy".to_string(), InfoValue::Float(*e));
    }
    for key in [STRESS_KEY, VIRIAL_KEY] {
        if let Some(s) = data
            .get(key)
            .map(|s| s.to_f64_vec())
            .filter(|s| s.len() == 9)
        {
            info.insert(
                key.to_string(),
                InfoValue::Matrix(std::array::from_fn(|k| s[k])),
            );
        }
    }
    let node = |a: &Array| {
        let w = a.row_size().max(1);
        Array {
            shape: if w == 1 { vec![n] } else { vec![n, w] },
            data: a.data.clone(),
        }
    };
    if let Some(f) = data.get(FORCE_KEY) {
        arrays.insert("forces".to_string(), node(f));
    }
    if let Some(e) = data.get(PER_ATOM_ENERGY_KEY) {
        arrays.insert("energies".to_string(), node(e));
    }
    for key in extra_fields {
        if let Some(a) = data.get(key) {
            if a.len0() == n && !a.shape.is_empty() && *key != POSITIONS_KEY {
                arrays.insert(key.to_string(), node(a));
            } else if let Some(v) = a.as_f64() {
                info.insert(
                    key.to_string(),
                    if v.len() == 1 {
                        InfoValue::Float(v[0])
                    } else {
                        InfoValue::Floats(v.to_vec())
                    },
                );
            }
        }
    }
    XyzFrame {
        line: 0,
        symbols,
        numbers: None,
        positions: data.pos().to_vec(),
        cell: std::array::from_fn(|r| [cell_v[3 * r], cell_v[3 * r + 1], cell_v[3 * r + 2]]),
        pbc: [pbc_v[0], pbc_v[1], pbc_v[2]],
        info,
        arrays,
    }
}
