//! Datasets (`nequip/data/dataset.py`): registered by nequip's class names, matched as nequip
//! matches them (`dataset: npz`, `NpzDataset`, `ase`, `ASEDataset`). The loaders live in
//! `nequip_core::data`; these registrations name them and their keys.

use std::path::Path;

use nequip_core::builder;
use nequip_core::data::{AseDataset, AseOptions, DataError, DatasetBuilder, InMemoryDataset, NpzDataset, NpzOptions, Progress, TypeMapper};

/// numpy `.npz` files: per-frame arrays with a leading frame axis, renamed by `key_mapping`,
/// `npz_fixed_field_keys` stored once (nequip's `NpzDataset`).
#[builder(name = "NpzDataset", kind = dataset, aliases = ["npz"], keys = NpzOptions)]
pub struct Npz;

impl DatasetBuilder for Npz {
    type Options = NpzOptions;
    fn load(o: NpzOptions, tm: &TypeMapper, root: Option<&Path>, progress: Progress<'_>) -> Result<InMemoryDataset, DataError> {
        NpzDataset::load_with_progress(&o, tm, root, progress)
    }
}

/// Extended XYZ files with ASE's conventions (`Lattice`, `Properties`, `pbc`, `energy`, `forces`,
/// `stress`, `REF_*` via `key_mapping`) (nequip's `ASEDataset`).
#[builder(name = "ASEDataset", kind = dataset, aliases = ["ase"], keys = AseOptions)]
pub struct Ase;

impl DatasetBuilder for Ase {
    type Options = AseOptions;
    fn load(o: AseOptions, tm: &TypeMapper, root: Option<&Path>, progress: Progress<'_>) -> Result<InMemoryDataset, DataError> {
        AseDataset::load_with_progress(&o, tm, root, progress)
    }
}
