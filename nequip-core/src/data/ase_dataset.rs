//! The `ase` dataset for extended XYZ files. Mirrors `nequip/data/_dataset/_ase_dataset.py`
//! (`ASEDataset`) and `AtomicData.from_ase` (nequip 0.6.2) on frames read by [`super::extxyz`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::array::Array;
use super::atomic_data::{cartesian_to_3x3, AtomicData, AtomicDataOptions};
use super::error::FrameError;
use super::extxyz::XyzFrame;
use super::keys::*;
use super::type_mapper::atomic_number;

/// `ase.calculators.calculator.all_properties`: always included by `from_ase`.
pub const ASE_ALL_PROPERTIES: [&str; 13] = [
    "energy",
    "forces",
    "stress",
    "stresses",
    "dipole",
    "charges",
    "magmom",
    "magmoms",
    "free_energy",
    "energies",
    "dielectric_tensor",
    "born_effective_charges",
    "polarization",
];

/// Options of the `ase` dataset (config `dataset: ase`, keys `dataset_file_name`, ...).
#[crate::auto_init(crate = crate)]
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AseOptions {
    /// The extended XYZ file.
    pub file_name: PathBuf,
    /// ASE key → field name, on top of `energy→total_energy`, `forces→forces`; e.g.
    /// `REF_energy: total_energy`. Default none.
    #[serde(default)]
    pub key_mapping: Option<BTreeMap<String, String>>,
    /// Extra info/array keys to load. Default none.
    #[serde(default)]
    pub include_keys: Option<Vec<String>>,
    /// Only these frames (indices into the file). Default all.
    #[serde(default)]
    pub include_frames: Option<Vec<usize>>,
    /// nequip passes these to `ase.io.iread`; only `format: extxyz` is supported here.
    #[serde(default)]
    pub ase_args: Option<BTreeMap<String, serde_yaml::Value>>,
    /// Neighbor-list options, at least `r_max` (filled from the config's `r_max`).
    #[key(name = "AtomicData_options")]
    pub atomic_data_options: AtomicDataOptions,
}

/// Turns one frame into `AtomicData` like nequip's `AtomicData.from_ase`: fields from the
/// per-atom arrays, then the info entries (higher priority), restricted to `include_keys ∪
/// all_properties ∪ key_mapping.keys()`; `atomic_numbers` from `Z` or the symbols; Voigt/9-vector
/// stress and virial become 3×3.
pub fn frame_from_xyz(
    frame: &XyzFrame,
    key_mapping: &BTreeMap<String, String>,
    include_keys: &[String],
    options: &AtomicDataOptions,
) -> Result<AtomicData, FrameError> {
    let excluded = ["numbers", "positions", "pbc", "cell", "pos", "r_max"];
    let mut include: BTreeSet<&str> = include_keys.iter().map(String::as_str).collect();
    include.extend(ASE_ALL_PROPERTIES);
    include.extend(key_mapping.keys().map(String::as_str));
    for e in excluded {
        include.remove(e);
    }
    let mut km: BTreeMap<&str, &str> = [("forces", FORCE_KEY), ("energy", TOTAL_ENERGY_KEY)]
        .into_iter()
        .collect();
    km.extend(key_mapping.iter().map(|(a, b)| (a.as_str(), b.as_str())));
    // ASE puts `all_properties` into a SinglePointCalculator; nequip's priority is
    // arrays < info < calculator results
    let mut fields = BTreeMap::new();
    for calc in [false, true] {
        let is_calc = |k: &str| ASE_ALL_PROPERTIES.contains(&k) == calc;
        for (k, v) in frame
            .arrays
            .iter()
            .filter(|(k, _)| is_calc(k) && include.contains(k.as_str()))
        {
            fields.insert(
                km.get(k.as_str()).copied().unwrap_or(k).to_string(),
                v.clone(),
            );
        }
        for (k, v) in frame
            .info
            .iter()
            .filter(|(k, _)| is_calc(k) && include.contains(k.as_str()))
        {
            let arr = v.to_array().ok_or_else(|| FrameError::Field {
                field: k.clone(),
                msg: "string values cannot be a field".into(),
            })?;
            fields.insert(km.get(k.as_str()).copied().unwrap_or(k).to_string(), arr);
        }
    }
    let z = match (&frame.numbers, &frame.symbols) {
        (Some(z), _) => z.clone(),
        (None, Some(symbols)) => symbols
            .iter()
            .enumerate()
            .map(|(atom, s)| {
                atomic_number(s).ok_or_else(|| FrameError::UnknownSpecies {
                    atom,
                    species: format!("`{s}`"),
                    known: "the periodic table".into(),
                })
            })
            .collect::<Result<_, _>>()?,
        (None, None) => {
            return Err(FrameError::Field {
                field: ATOMIC_NUMBERS_KEY.into(),
                msg: "no species or Z column".into(),
            })
        }
    };
    fields.insert(ATOMIC_NUMBERS_KEY.into(), Array::i64(vec![z.len()], z));
    let mut out = BTreeMap::new();
    for (k, v) in fields {
        let v = cartesian_to_3x3(&k, v)?;
        out.insert(k, v);
    }
    AtomicData::from_points(
        frame.positions.clone(),
        options,
        Some(frame.cell),
        Some(frame.pbc),
        out,
    )
}
