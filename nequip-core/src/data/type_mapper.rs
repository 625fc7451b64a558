//! Mapping of atomic numbers to type indices. Mirrors `TypeMapper` in
//! `nequip/data/transforms.py` (nequip 0.6.2) and the symbol table of `ase.data`.

use std::collections::BTreeMap;

use super::array::Array;
use super::atomic_data::AtomicData;
use super::error::{DataError, FrameError};
use super::keys::{ATOMIC_NUMBERS_KEY, ATOM_TYPE_KEY};

/// Chemical symbols by atomic number (`SYMBOLS[z]`, `X` for 0), as `ase.data.chemical_symbols`.
pub const SYMBOLS: [&str; 119] = [
    "X", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S",
    "Cl", "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge",
    "As", "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd",
    "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd",
    "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg",
    "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm",
    "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn",
    "Nh", "Fl", "Mc", "Lv", "Ts", "Og",
];

/// Atomic number of a chemical symbol (`None` for unknown symbols and `X`).
pub fn atomic_number(symbol: &str) -> Option<i64> {
    SYMBOLS
        .iter()
        .skip(1)
        .position(|s| *s == symbol)
        .map(|z| z as i64 + 1)
}

/// Chemical symbol of an atomic number.
pub fn chemical_symbol(z: i64) -> Option<&'static str> {
    usize::try_from(z)
        .ok()
        .filter(|&z| z > 0)
        .and_then(|z| SYMBOLS.get(z).copied())
}

/// The options of nequip's `TypeMapper` (config keys `chemical_symbols`,
/// `chemical_symbol_to_type`, `type_names`, `type_to_chemical_symbol`, possibly `dataset_`-prefixed).
#[crate::auto_init(crate = crate)]
#[derive(Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TypeMapperOptions {
    /// Symbols; types are assigned in order of atomic number.
    #[serde(default)]
    pub chemical_symbols: Option<Vec<String>>,
    /// Explicit symbol → type; types must be `0..n`.
    #[serde(default)]
    pub chemical_symbol_to_type: Option<BTreeMap<String, usize>>,
    /// Type names (default: the symbols).
    #[serde(default)]
    pub type_names: Option<Vec<String>>,
    /// Optional type → symbol map; must agree with `chemical_symbol_to_type`.
    #[serde(default)]
    pub type_to_chemical_symbol: Option<BTreeMap<usize, String>>,
}

/// Maps atomic numbers to types `0..num_types`.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeMapper {
    /// Name of each type.
    pub type_names: Vec<String>,
    /// Symbol → type, when the mapping is by chemistry.
    pub chemical_symbol_to_type: Option<BTreeMap<String, usize>>,
    /// Type → symbol.
    pub type_to_chemical_symbol: Option<BTreeMap<usize, String>>,
    z_to_type: BTreeMap<i64, i64>,
}

fn opt_err(option: &str, msg: String) -> DataError {
    DataError::option(option, msg)
}

impl TypeMapper {
    /// Types from symbols sorted by atomic number (`chemical_symbols: [O, H, C]` → `H=0, C=1, O=2`).
    pub fn from_chemical_symbols<S: AsRef<str>>(symbols: &[S]) -> Result<Self, DataError> {
        TypeMapper::new(&TypeMapperOptions {
            chemical_symbols: Some(symbols.iter().map(|s| s.as_ref().to_string()).collect()),
            ..Default::default()
        })
    }

    /// nequip's `TypeMapper.__init__`, with its checks as errors.
    pub fn new(o: &TypeMapperOptions) -> Result<Self, DataError> {
        let mut c2t = o.chemical_symbol_to_type.clone();
        if let Some(symbols) = &o.chemical_symbols {
            if c2t.is_some() {
                return Err(opt_err(
                    "chemical_symbols",
                    "cannot provide both `chemical_symbols` and `chemical_symbol_to_type`".into(),
                ));
            }
            let mut zs = Vec::new();
            for s in symbols {
                let z = atomic_number(s).ok_or_else(|| {
                    opt_err("chemical_symbols", format!("invalid chemical symbol `{s}`"))
                })?;
                zs.push((z, s.clone()));
            }
            zs.sort();
            if let Some(w) = zs.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(opt_err(
                    "chemical_symbols",
                    format!("`{}` is listed more than once ({}); each species once", w[1].1, if w[0].1 == w[1].1 { "the same symbol twice".to_string() } else { format!("`{}` and `{}` are the same element", w[0].1, w[1].1) }),
                ));
            }
            c2t = Some(
                zs.into_iter()
                    .enumerate()
                    .map(|(t, (_, s))| (s, t))
                    .collect(),
            );
        }
        let mut type_names = o.type_names.clone();
        let mut t2c = o.type_to_chemical_symbol.clone();
        let mut z_to_type = BTreeMap::new();
        if let Some(map) = &c2t {
            let n = map.len();
            let mut names = vec![String::new(); n];
            for (sym, &t) in map {
                let z = atomic_number(sym).ok_or_else(|| {
                    opt_err(
                        "chemical_symbol_to_type",
                        format!("invalid chemical symbol `{sym}`"),
                    )
                })?;
                if t >= n || !names[t].is_empty() {
                    return Err(opt_err(
                        "chemical_symbol_to_type",
                        format!("types must be exactly 0..{n}, got {map:?}"),
                    ));
                }
                names[t] = sym.clone();
                z_to_type.insert(z, t as i64);
            }
            match &type_names {
                None => type_names = Some(names.clone()),
                Some(tn) if tn.len() != n => {
                    return Err(opt_err(
                        "type_names",
                        format!("{} type names for {n} chemical symbols", tn.len()),
                    ))
                }
                _ => {}
            }
            let truth: BTreeMap<usize, String> = names.into_iter().enumerate().collect();
            if let Some(given) = &t2c {
                if *given != truth {
                    return Err(opt_err(
                        "type_to_chemical_symbol",
                        format!("{given:?} disagrees with chemical_symbol_to_type {map:?}"),
                    ));
                }
            }
            t2c = Some(truth);
        }
        let type_names = type_names.ok_or_else(|| {
            opt_err("chemical_symbols", "none of chemical_symbols, chemical_symbol_to_type, nor type_names was provided; exactly one is required".into())
        })?;
        if let Some(bad) = type_names
            .iter()
            .find(|n| n.is_empty() || !n.chars().all(char::is_alphanumeric))
        {
            return Err(opt_err(
                "type_names",
                format!("type names must contain only alphanumeric characters, got `{bad}`"),
            ));
        }
        if let Some(m) = &t2c {
            if m.keys().copied().ne(0..type_names.len())
                || m.values().any(|s| atomic_number(s).is_none())
            {
                return Err(opt_err(
                    "type_to_chemical_symbol",
                    format!(
                        "must map every type 0..{} to a chemical symbol, got {m:?}",
                        type_names.len()
                    ),
                ));
            }
        }
        Ok(TypeMapper {
            type_names,
            chemical_symbol_to_type: c2t,
            type_to_chemical_symbol: t2c,
            z_to_type,
        })
    }

    /// Number of types.
    pub fn num_types(&self) -> usize {
        self.type_names.len()
    }

    /// Whether the mapping is by chemical symbols (so atomic numbers can be mapped).
    pub fn has_chemical_symbols(&self) -> bool {
        self.chemical_symbol_to_type.is_some()
    }

    /// Atomic numbers → types; an unknown number is an error naming the atom.
    pub fn transform(&self, atomic_numbers: &[i64]) -> Result<Vec<i64>, FrameError> {
        atomic_numbers
            .iter()
            .enumerate()
            .map(|(atom, z)| {
                self.z_to_type
                    .get(z)
                    .copied()
                    .ok_or_else(|| FrameError::UnknownSpecies {
                        atom,
                        species: match chemical_symbol(*z) {
                            Some(s) => format!("{s} (Z={z})"),
                            None => format!("Z={z}"),
                        },
                        known: format!("{:?}", self.type_names),
                    })
            })
            .collect()
    }

    /// Types → atomic numbers (`None` without chemical symbols or for an invalid type).
    pub fn untransform(&self, types: &[i64]) -> Option<Vec<i64>> {
        let t2c = self.type_to_chemical_symbol.as_ref()?;
        types
            .iter()
            .map(|&t| {
                usize::try_from(t)
                    .ok()
                    .and_then(|t| t2c.get(&t))
                    .and_then(|s| atomic_number(s))
            })
            .collect()
    }

    /// nequip's `TypeMapper.__call__`: replaces `atomic_numbers` by `atom_types`; keeps existing
    /// `atom_types` (dropping `atomic_numbers`). Without either, an error unless `!types_required`.
    pub fn apply(&self, data: &mut AtomicData, types_required: bool) -> Result<(), FrameError> {
        if data.contains(ATOM_TYPE_KEY) {
            data.remove(ATOMIC_NUMBERS_KEY);
            return Ok(());
        }
        match data.remove(ATOMIC_NUMBERS_KEY) {
            Some(z) => {
                if !self.has_chemical_symbols() {
                    return Err(FrameError::Field {
                        field: ATOMIC_NUMBERS_KEY.into(),
                        msg: "atomic numbers provided but there is no chemical_symbols/chemical_symbol_to_type mapping".into(),
                    });
                }
                let types = self.transform(z.as_i64().unwrap_or(&[]))?;
                data.insert(ATOM_TYPE_KEY, Array::i64(z.shape.clone(), types));
                Ok(())
            }
            None if types_required => Err(FrameError::Field {
                field: ATOM_TYPE_KEY.into(),
                msg: "no atom type information (neither atom_types nor atomic_numbers)".into(),
            }),
            None => Ok(()),
        }
    }
}
