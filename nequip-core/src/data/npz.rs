//! `.npz` files and the `npz` dataset. Mirrors `nequip/data/_dataset/_npz_dataset.py`
//! (`NpzDataset.get_data`) of nequip 0.6.2. The zip container is read with `zip`, each `.npy`
//! member with `npyz`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use super::array::Array;
use super::atomic_data::AtomicDataOptions;
use super::error::DataError;
use super::fields::{field_kind, is_long, FieldKind};
use super::keys::*;

/// Reads the arrays of an `.npz` file (all of them, or only those named in `only`).
/// Floats become `f64`, integers `i64`, bools `bool`; other dtypes (strings, pickled objects) are
/// errors naming the key.
pub fn read_npz(
    path: &Path,
    only: Option<&BTreeSet<String>>,
) -> Result<BTreeMap<String, Array>, DataError> {
    let file = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|source| DataError::Io {
        file: file.clone(),
        source,
    })?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(f))
        .map_err(|e| DataError::format(&file, format!("not a valid npz (zip) archive: {e}")))?;
    let mut out = BTreeMap::new();
    for idx in 0..zip.len() {
        let mut entry = zip
            .by_index(idx)
            .map_err(|e| DataError::format(&file, format!("corrupt npz member {idx}: {e}")))?;
        let name = entry.name().to_string();
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        if only.is_some_and(|o| !o.contains(&key)) {
            continue;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).map_err(|e| {
            DataError::format(&file, format!("key `{key}`: cannot decompress: {e}"))
        })?;
        out.insert(key.clone(), parse_npy(&bytes, &file, &key)?);
    }
    Ok(out)
}

/// Parses one `.npy` buffer.
pub fn parse_npy(bytes: &[u8], file: &str, key: &str) -> Result<Array, DataError> {
    use npyz::{DType, TypeChar};
    let npy = npyz::NpyFile::new(bytes)
        .map_err(|e| DataError::format(file, format!("key `{key}`: invalid npy data: {e}")))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&s| s as usize).collect();
    let fortran = matches!(npy.order(), npyz::Order::Fortran);
    let dtype = npy.dtype();
    let bad_dtype = |found: String| DataError::DType {
        file: file.to_string(),
        key: key.to_string(),
        found,
        expected: "a numeric or boolean array".into(),
    };
    let ts = match &dtype {
        DType::Plain(ts) => ts.clone(),
        other => return Err(bad_dtype(format!("{other:?}"))),
    };
    if npy.uses_pickled_array() {
        return Err(bad_dtype(
            "object (pickled Python objects, e.g. ragged frames)".into(),
        ));
    }
    let read_err =
        |e: std::io::Error| DataError::format(file, format!("key `{key}`: cannot read data: {e}"));
    let size = ts.size_field();
    let arr = match (ts.type_char(), size) {
        (TypeChar::Float, 8) => Array::f64(shape.clone(), npy.into_vec::<f64>().map_err(read_err)?),
        (TypeChar::Float, 4) => Array::f64(
            shape.clone(),
            npy.into_vec::<f32>()
                .map_err(read_err)?
                .into_iter()
                .map(f64::from)
                .collect(),
        ),
        (TypeChar::Int, 8) => Array::i64(shape.clone(), npy.into_vec::<i64>().map_err(read_err)?),
        (TypeChar::Int, 4) => Array::i64(
            shape.clone(),
            npy.into_vec::<i32>()
                .map_err(read_err)?
                .into_iter()
                .map(i64::from)
                .collect(),
        ),
        (TypeChar::Int, 2) => Array::i64(
            shape.clone(),
            npy.into_vec::<i16>()
                .map_err(read_err)?
                .into_iter()
                .map(i64::from)
                .collect(),
        ),
        (TypeChar::Int, 1) => Array::i64(
            shape.clone(),
            npy.into_vec::<i8>()
                .map_err(read_err)?
                .into_iter()
                .map(i64::from)
                .collect(),
        ),
        (TypeChar::Uint, 4) => Array::i64(
            shape.clone(),
            npy.into_vec::<u32>()
                .map_err(read_err)?
                .into_iter()
                .map(i64::from)
                .collect(),
        ),
        (TypeChar::Uint, 2) => Array::i64(
            shape.clone(),
            npy.into_vec::<u16>()
                .map_err(read_err)?
                .into_iter()
                .map(i64::from)
                .collect(),
        ),
        (TypeChar::Uint, 1) => Array::i64(
            shape.clone(),
            npy.into_vec::<u8>()
                .map_err(read_err)?
                .into_iter()
                .map(i64::from)
                .collect(),
        ),
        (TypeChar::Bool, 1) => {
            Array::bool(shape.clone(), npy.into_vec::<bool>().map_err(read_err)?)
        }
        _ => return Err(bad_dtype(ts.to_string())),
    };
    Ok(if fortran { fortran_to_c(arr) } else { arr })
}

/// Reorders a column-major array to row-major.
fn fortran_to_c(a: Array) -> Array {
    use super::array::ArrayData;
    let shape = a.shape.clone();
    let n: usize = shape.iter().product();
    // row-major index -> column-major index
    let perm: Vec<usize> = (0..n)
        .map(|mut r| {
            let mut idx = vec![0; shape.len()];
            for d in (0..shape.len()).rev() {
                idx[d] = r % shape[d];
                r /= shape[d];
            }
            let (mut c, mut stride) = (0, 1);
            for d in 0..shape.len() {
                c += idx[d] * stride;
                stride *= shape[d];
            }
            c
        })
        .collect();
    let data = match a.data {
        ArrayData::F64(v) => ArrayData::F64(perm.iter().map(|&c| v[c]).collect()),
        ArrayData::I64(v) => ArrayData::I64(perm.iter().map(|&c| v[c]).collect()),
        ArrayData::Bool(v) => ArrayData::Bool(perm.iter().map(|&c| v[c]).collect()),
    };
    Array { shape, data }
}

/// nequip's default `key_mapping` of the npz dataset.
pub fn default_npz_key_mapping() -> BTreeMap<String, String> {
    [
        ("positions", POSITIONS_KEY),
        ("energy", TOTAL_ENERGY_KEY),
        ("force", FORCE_KEY),
        ("forces", FORCE_KEY),
        ("Z", ATOMIC_NUMBERS_KEY),
        ("atomic_number", ATOMIC_NUMBERS_KEY),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect()
}

/// Options of the `npz` dataset (config `dataset: npz`, keys `dataset_file_name`, ...).
/// Field names are nequip's parameter names.
#[crate::auto_init(crate = crate)]
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct NpzOptions {
    /// The `.npz` file.
    pub file_name: PathBuf,
    /// npz key → field name. Default: nequip's (`positions→pos`, `energy→total_energy`,
    /// `force`/`forces→forces`, `Z`/`atomic_number→atomic_numbers`); keys not mapped keep their name.
    #[serde(default = "default_npz_key_mapping")]
    #[key(default = default_npz_key_mapping())]
    pub key_mapping: BTreeMap<String, String>,
    /// Extra keys to load (under their own or mapped name). Default empty.
    #[serde(default)]
    #[key(default)]
    pub include_keys: Vec<String>,
    /// Fields (mapped names) stored once for all frames, tiled over frames. Default empty.
    #[serde(default)]
    #[key(default)]
    pub npz_fixed_field_keys: Vec<String>,
    /// Only these frames (indices into the file), in this order. Default all.
    #[serde(default)]
    pub include_frames: Option<Vec<usize>>,
    /// Neighbor-list options, at least `r_max` (filled from the config's `r_max`).
    #[key(name = "AtomicData_options")]
    pub atomic_data_options: AtomicDataOptions,
}

/// Per-frame arrays of an npz file, mapped and tiled: every value has a leading frame
/// dimension. Returns `(fields, n_frames)`.
pub(crate) fn npz_fields(o: &NpzOptions) -> Result<(BTreeMap<String, Array>, usize), DataError> {
    let file = o.file_name.display().to_string();
    let mut wanted: BTreeSet<String> = o.key_mapping.keys().cloned().collect();
    wanted.extend(o.npz_fixed_field_keys.iter().cloned());
    wanted.extend(o.include_keys.iter().cloned());
    let raw = read_npz(&o.file_name, None)?;
    let available = raw.keys().cloned().collect::<Vec<_>>().join(", ");
    let mut mapped = BTreeMap::new();
    for (k, v) in raw {
        if wanted.contains(&k) {
            let name = o.key_mapping.get(&k).cloned().unwrap_or(k.clone());
            let v = if is_long(&name) {
                v.to_i64().ok_or_else(|| DataError::DType {
                    file: file.clone(),
                    key: k.clone(),
                    found: "non-integral float".into(),
                    expected: "integers".into(),
                })?
            } else {
                v
            };
            mapped.insert(name, (k, v));
        }
    }
    let pos_key = o
        .key_mapping
        .iter()
        .filter(|(_, v)| *v == POSITIONS_KEY)
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join("` or `");
    let (pos_src, pos) = mapped
        .get(POSITIONS_KEY)
        .ok_or_else(|| DataError::MissingKey {
            file: file.clone(),
            key: if pos_key.is_empty() {
                POSITIONS_KEY.into()
            } else {
                pos_key
            },
            available: available.clone(),
        })?;
    if pos.shape.len() != 3 || pos.shape[2] != 3 {
        return Err(DataError::Shape {
            file,
            key: pos_src.clone(),
            shape: pos.shape.clone(),
            expected: "[n_frames, n_atoms, 3]".into(),
        });
    }
    let (n_frames, n_atoms) = (pos.shape[0], pos.shape[1]);
    let pos_src = pos_src.clone();
    let mut fields = BTreeMap::new();
    for (name, (src, v)) in mapped {
        if o.npz_fixed_field_keys.contains(&name) {
            let ok = match field_kind(&name) {
                Some(FieldKind::Node) => v.shape.first() == Some(&n_atoms),
                Some(FieldKind::Graph) => true,
                _ => {
                    return Err(DataError::option(
                        "npz_fixed_field_keys",
                        format!(
                            "contains `{name}`, but it isn't registered as a node or graph field"
                        ),
                    ))
                }
            };
            if !ok {
                return Err(DataError::Shape {
                    file,
                    key: src,
                    shape: v.shape,
                    expected: format!("[{n_atoms}, ...] (a fixed node field)"),
                });
            }
            let parts = vec![&v; n_frames];
            let tiled = Array::concat(&parts, true).unwrap_or(v.clone());
            fields.insert(name, tiled);
        } else {
            if v.shape.first() != Some(&n_frames) {
                let found = v.shape.first().copied().unwrap_or(0);
                return Err(DataError::Ragged {
                    file,
                    key: src,
                    found,
                    reference: pos_src,
                    expected: n_frames,
                });
            }
            fields.insert(name, v);
        }
    }
    Ok((fields, n_frames))
}

/// Common npz key names and the field each means (sGDML's `R`, `z`, `E`, `F`; ASE-style names).
const GUESSES: &[(&str, &str)] = &[
    ("R", POSITIONS_KEY),
    ("pos", POSITIONS_KEY),
    ("positions", POSITIONS_KEY),
    ("coords", POSITIONS_KEY),
    ("z", ATOMIC_NUMBERS_KEY),
    ("Z", ATOMIC_NUMBERS_KEY),
    ("atomic_numbers", ATOMIC_NUMBERS_KEY),
    ("numbers", ATOMIC_NUMBERS_KEY),
    ("E", TOTAL_ENERGY_KEY),
    ("energy", TOTAL_ENERGY_KEY),
    ("energies", TOTAL_ENERGY_KEY),
    ("total_energy", TOTAL_ENERGY_KEY),
    ("F", FORCE_KEY),
    ("force", FORCE_KEY),
    ("forces", FORCE_KEY),
    ("cell", CELL_KEY),
    ("lattice", CELL_KEY),
    ("pbc", PBC_KEY),
    ("stress", STRESS_KEY),
    ("virial", VIRIAL_KEY),
];

/// Options for an npz file with common key names (for `nequip data info FILE --r-max R`):
/// each recognised key is mapped to its field (first match per field), per-frame or fixed
/// according to its shape (`z` `[N]`, `cell` `[3, 3]` and `pbc` `[3]` are fixed fields).
pub fn guess_npz_options(file: &Path, r_max: f64) -> Result<NpzOptions, DataError> {
    let name = file.display().to_string();
    let raw = read_npz(file, None)?;
    let mut key_mapping = BTreeMap::new();
    let mut fixed = Vec::new();
    let mut taken = BTreeSet::new();
    for (key, field) in GUESSES {
        let Some(a) = raw.get(*key) else { continue };
        if !taken.insert(*field) {
            continue;
        }
        key_mapping.insert(key.to_string(), field.to_string());
        let is_fixed = match *field {
            ATOMIC_NUMBERS_KEY => a.shape.len() == 1,
            CELL_KEY => a.shape.len() == 2,
            PBC_KEY => a.shape.len() == 1,
            _ => false,
        };
        if is_fixed {
            fixed.push(field.to_string());
        }
    }
    if !taken.contains(POSITIONS_KEY) {
        return Err(DataError::MissingKey {
            file: name,
            key: "R, pos, positions or coords".into(),
            available: raw.keys().cloned().collect::<Vec<_>>().join(", "),
        });
    }
    Ok(NpzOptions {
        file_name: file.to_path_buf(),
        key_mapping,
        include_keys: Vec::new(),
        npz_fixed_field_keys: fixed,
        include_frames: None,
        atomic_data_options: AtomicDataOptions::new(r_max),
    })
}
