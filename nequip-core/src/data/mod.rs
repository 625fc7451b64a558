//! Atomic data: a port of `nequip/data/` (nequip 0.6.2): field names and registry, neighbor
//! lists, `AtomicData`, npz and extended-XYZ datasets, type mapping, statistics, batching,
//! train/validation split and the processed-data cache.
//!
//! # Representation
//! - A frame is an [`AtomicData`]: a `BTreeMap<String, Array>` of plain Rust arrays (`f64`, `i64`,
//!   `bool`) keyed by nequip's field names ([`keys`]). Datasets, neighbor lists, statistics and the
//!   cache work on these arrays, without libtorch.
//! - The model input is an [`AtomicDataDict`]: nequip's `AtomicDataDict.Type`
//!   (`Dict[str, Tensor]`), here a `BTreeMap<String, tch::Tensor>` of CPU tensors (float64,
//!   int64, bool), made by [`AtomicData::to_dict`] from a frame or a [`batch::collate`]d batch.
//!
//! # Conventions (nequip's)
//! Cell rows are lattice vectors; `edge_index[0]` is the centre atom, `edge_index[1]` the
//! neighbour; the edge vector is `pos[j] - pos[i] + edge_cell_shift · cell`.

pub mod array;
pub mod ase_dataset;
pub mod atomic_data;
pub mod batch;
pub mod cache;
pub mod dataset;
pub mod error;
pub mod extxyz;
pub mod fields;
pub mod from_config;
pub mod info;
pub mod keys;
pub mod neighbors;
pub mod npz;
pub mod split;
pub mod statistics;
pub mod type_mapper;

pub use array::{Array, ArrayData, DType};
pub use ase_dataset::AseOptions;
pub use atomic_data::{AtomicData, AtomicDataOptions};
pub use dataset::{load_dataset, AseDataset, InMemoryDataset, NpzDataset};
pub use error::{DataError, FrameError};
pub use neighbors::{neighbor_list, NeighborList};
pub use npz::NpzOptions;
pub use type_mapper::{TypeMapper, TypeMapperOptions};

/// nequip's `AtomicDataDict.Type`: field name → tensor. The model's input and output type.
pub type AtomicDataDict = std::collections::BTreeMap<String, tch::Tensor>;
