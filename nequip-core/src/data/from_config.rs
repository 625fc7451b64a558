//! Dataset options from a flat nequip config (`dataset: npz`, `dataset_file_name: ...`,
//! `r_max: 4.0`, `chemical_symbols: [...]`, ...). Mirrors the prefix handling of
//! `nequip/data/_build.py::dataset_from_config` with `instantiate(prefix=...)` (nequip 0.6.2):
//! for every parameter `p` of the dataset and of `TypeMapper`, `{prefix}_p` wins over `p`;
//! `AtomicData_options` likewise, its `r_max` defaulting to `{prefix}_r_max` or `r_max`; the dataset
//! class is `config[prefix]` (`dataset` or `validation_dataset`); `root` is shared.
//!
//! A convenience for `nequip data info CONFIG.yaml`; the CLI's general key resolver may replace it.

use std::path::PathBuf;

use serde_yaml::{Mapping, Value};

use super::dataset::{load_dataset, InMemoryDataset};
use super::error::DataError;
use super::type_mapper::{TypeMapper, TypeMapperOptions};

/// Parameters of each dataset kind (besides `AtomicData_options`).
fn parameters(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "npz" => Some(&[
            "file_name",
            "key_mapping",
            "include_keys",
            "npz_fixed_field_keys",
            "include_frames",
        ]),
        "ase" => Some(&[
            "file_name",
            "key_mapping",
            "include_keys",
            "include_frames",
            "ase_args",
        ]),
        _ => None,
    }
}

const TYPE_MAPPER_PARAMETERS: [&str; 4] = [
    "chemical_symbols",
    "chemical_symbol_to_type",
    "type_names",
    "type_to_chemical_symbol",
];

/// A dataset section resolved from a flat config.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetConfig {
    /// The dataset class as written (`npz`, `NpzDataset`, `ase`, ...).
    pub name: String,
    /// The dataset's own options (unprefixed names), ready for [`load_dataset`].
    pub options: Value,
    pub type_mapper: TypeMapperOptions,
    /// `root` for the processed-data cache, if configured.
    pub root: Option<PathBuf>,
}

fn pick<'a>(config: &'a Mapping, prefix: &str, key: &str) -> Option<&'a Value> {
    config
        .get(format!("{prefix}_{key}"))
        .or_else(|| config.get(key))
}

/// Resolves the `prefix` (`dataset` / `validation_dataset`) section; `None` when `config[prefix]`
/// is absent (nequip's way of saying "no validation dataset").
pub fn dataset_config(config: &Mapping, prefix: &str) -> Result<Option<DatasetConfig>, DataError> {
    let Some(name) = config.get(prefix) else {
        return Ok(None);
    };
    let name = name
        .as_str()
        .ok_or_else(|| DataError::option(prefix, format!("expected a dataset name, got {name:?}")))?
        .to_string();
    let lower = name.to_lowercase();
    let kind = lower.strip_suffix("dataset").unwrap_or(&lower);
    let params = parameters(kind).ok_or_else(|| {
        DataError::option(prefix, format!("unknown dataset `{name}`; known: ase, npz"))
    })?;
    let mut options = Mapping::new();
    for p in params {
        if let Some(v) = pick(config, prefix, p) {
            options.insert(Value::from(*p), v.clone());
        }
    }
    let mut ado = match pick(config, prefix, "AtomicData_options") {
        Some(Value::Mapping(m)) => m.clone(),
        Some(other) => {
            return Err(DataError::option(
                &format!("{prefix}_AtomicData_options"),
                format!("expected a mapping, got {other:?}"),
            ))
        }
        None => Mapping::new(),
    };
    // nequip's get_w_prefix("r_max", arg_dicts=[AtomicData_options, config]): a value inside
    // AtomicData_options wins over `{prefix}_r_max` / `r_max` of the config
    if !ado.contains_key("r_max") {
        if let Some(r) = pick(config, prefix, "r_max") {
            ado.insert(Value::from("r_max"), r.clone());
        }
    }
    options.insert(Value::from("AtomicData_options"), Value::Mapping(ado));
    let mut tm = Mapping::new();
    for p in TYPE_MAPPER_PARAMETERS {
        if let Some(v) = pick(config, prefix, p) {
            tm.insert(Value::from(p), v.clone());
        }
    }
    let type_mapper = serde_yaml::from_value(Value::Mapping(tm))
        .map_err(|e| DataError::option("chemical_symbols", e.to_string()))?;
    let root = config
        .get("root")
        .and_then(|r| r.as_str())
        .map(PathBuf::from);
    Ok(Some(DatasetConfig {
        name,
        options: Value::Mapping(options),
        type_mapper,
        root,
    }))
}

/// Loads the `prefix` dataset of a flat config (with its cache under `root` when configured).
pub fn load_from_config(
    config: &Mapping,
    prefix: &str,
) -> Result<Option<InMemoryDataset>, DataError> {
    let Some(dc) = dataset_config(config, prefix)? else {
        return Ok(None);
    };
    let tm = TypeMapper::new(&dc.type_mapper)?;
    load_dataset(&dc.name, dc.options, &tm, dc.root.as_deref()).map(Some)
}
