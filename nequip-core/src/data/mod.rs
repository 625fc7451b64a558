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
//! # API map (for registration and the CLI)
//! | nequip | here |
//! |---|---|
//! | `dataset: npz` + `dataset_*` keys | [`NpzOptions`] → [`NpzDataset::load`]`(&opts, &type_mapper, root)` |
//! | `dataset: ase` (extxyz) | [`AseOptions`] → [`AseDataset::load`] |
//! | `dataset_from_config(config, prefix)` | [`from_config::dataset_from_config`] (datasets are registered builders) |
//! | `TypeMapper(...)` | [`TypeMapperOptions`] → [`TypeMapper::new`] |
//! | `AtomicData_options` | [`AtomicDataOptions`] (`r_max`, `self_interaction`, `error_on_no_edges`) |
//! | `dataset.statistics(fields, modes, stride)` | [`InMemoryDataset::statistics`], [`InMemoryDataset::dataset_statistic`] (`dataset_forces_rms`, ...) |
//! | `avg_num_neighbors: auto` | [`statistics::avg_num_neighbors`] over [`InMemoryDataset::select`]`(train_idcs, dataset_statistics_stride)` |
//! | `Trainer.set_dataset`, `PartialSampler`, `DataLoader` | [`split::Loader`] (`n_train`, `n_val`, `train_val_split`, `dataset_seed`, `batch_size`, ...) |
//! | `Batch.from_data_list` | [`batch::collate`], then [`AtomicData::to_dict`] for the model |
//! | `AtomicDataDict.with_edge_vectors` / `with_batch` | [`dict::with_edge_vectors`], [`dict::with_batch`] (tensors, autograd) |
//! | `AtomicData.to_ase` + `ase.io.write(extxyz)` (evaluate `--output`) | [`extxyz_write::frame_to_xyz`], [`extxyz_write::write_extxyz`] |
//! | `register_fields` | [`fields::register_fields`] |
//! | `nequip data info FILE --r-max R` | [`npz::guess_npz_options`] (`R`/`z`/`E`/`F`, `pos`, `cell`, ...) or [`AseOptions`], then [`info::data_info`] |
//! | `nequip data info` | [`info::data_info`] → [`info::DataInfo`] (`Serialize` for `--json`, `Display` for text) |
//!
//! Errors are [`DataError`] (file, frame, field in every message); frame-level problems are
//! [`FrameError`]. For `data info`, load with `error_on_no_edges: false` to list frames without
//! edges instead of failing.
//!
//! # Conventions (nequip's)
//! Cell rows are lattice vectors; `edge_index[0]` is the centre atom, `edge_index[1]` the
//! neighbour; the edge vector is `pos[j] - pos[i] + edge_cell_shift · cell`. Edges are sorted by
//! centre, neighbour and shift (ASE's order within a centre is unspecified).

pub mod array;
pub mod ase_dataset;
pub mod atomic_data;
pub mod batch;
pub mod cache;
pub mod dataset;
pub mod dict;
pub mod download;
pub mod error;
pub mod extxyz;
pub mod extxyz_write;
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
pub use dataset::{AseDataset, InMemoryDataset, NpzDataset, Progress};
pub use from_config::{dataset_from_config, dataset_plan, DatasetBuilder, DatasetConfigError};
pub use error::{DataError, FrameError};
pub use neighbors::{neighbor_list, NeighborList};
pub use npz::NpzOptions;
pub use type_mapper::{TypeMapper, TypeMapperOptions};

/// nequip's `AtomicDataDict.Type`: field name → tensor. The model's input and output type.
pub type AtomicDataDict = std::collections::BTreeMap<String, tch::Tensor>;
