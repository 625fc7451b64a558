//! In-memory datasets. Mirrors `AtomicInMemoryDataset` (`process`, `get`, `len`) of
//! `nequip/data/_dataset/_base_datasets.py` and the loading parts of `NpzDataset` /
//! `ASEDataset` (nequip 0.6.2).
//!
//! Loading = read the raw file → per-frame fields → neighbor lists (`from_points`) → processed
//! frames (cached in `root/processed_dataset_<hash>`, before type mapping, as nequip) → type
//! mapping (`atomic_numbers` → `atom_types`).

use std::collections::BTreeMap;
use std::path::Path;

use super::array::Array;
use super::ase_dataset::{frame_from_xyz, AseOptions};
use super::atomic_data::{AtomicData, AtomicDataOptions};
use super::cache::{self, Processed};
use super::error::{DataError, FrameError, InFrame};
use super::extxyz::read_extxyz;
use super::keys::*;
use super::npz::{npz_fields, NpzOptions};
use super::type_mapper::TypeMapper;

/// A dataset held in memory: processed, type-mapped frames.
#[derive(Clone, Debug)]
pub struct InMemoryDataset {
    frames: Vec<AtomicData>,
    /// Index in the raw file of each frame.
    pub frame_ids: Vec<usize>,
    pub type_mapper: TypeMapper,
    /// The raw file, for messages.
    pub file_name: String,
    pub r_max: f64,
}

impl InMemoryDataset {
    /// Type-maps processed frames.
    pub fn from_processed(
        p: Processed,
        type_mapper: &TypeMapper,
        file_name: &str,
        r_max: f64,
    ) -> Result<Self, DataError> {
        let mut frames = p.frames;
        for (f, &id) in frames.iter_mut().zip(&p.frame_ids) {
            type_mapper.apply(f, true).in_frame(file_name, id)?;
        }
        Ok(InMemoryDataset {
            frames,
            frame_ids: p.frame_ids,
            type_mapper: type_mapper.clone(),
            file_name: file_name.into(),
            r_max,
        })
    }
    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
    /// Frame `i` (with `atom_types`), nequip's `dataset[i]`.
    pub fn get(&self, i: usize) -> Option<&AtomicData> {
        self.frames.get(i)
    }
    pub fn frames(&self) -> &[AtomicData] {
        &self.frames
    }
}

fn file_error_if_missing(path: &Path) -> Result<(), DataError> {
    std::fs::metadata(path)
        .map(|_| ())
        .map_err(|source| DataError::Io {
            file: path.display().to_string(),
            source,
        })
}

/// Checks `r_max` before any work.
fn check_r_max(o: &AtomicDataOptions) -> Result<(), DataError> {
    if !(o.r_max.is_finite() && o.r_max > 0.0) {
        return Err(DataError::option(
            "r_max",
            format!("must be a positive finite number, got {}", o.r_max),
        ));
    }
    Ok(())
}

/// Which file frames to process: `include_frames` (checked) or all.
fn frame_selection(
    include: &Option<Vec<usize>>,
    n_frames: usize,
    file: &str,
) -> Result<Vec<usize>, DataError> {
    match include {
        None => Ok((0..n_frames).collect()),
        Some(ids) => {
            if let Some(bad) = ids.iter().find(|&&i| i >= n_frames) {
                return Err(DataError::option(
                    "include_frames",
                    format!("frame {bad} is out of range: {file} has {n_frames} frames"),
                ));
            }
            Ok(ids.clone())
        }
    }
}

/// Reuses the cache in `root` when valid, else processes, `check`s (so that bad data leaves no
/// cache behind) and stores.
fn cached(
    root: Option<&Path>,
    kind: &str,
    options: &impl serde::Serialize,
    raw: &Path,
    process: impl FnOnce() -> Result<Processed, DataError>,
    check: impl Fn(&Processed) -> Result<(), DataError>,
) -> Result<Processed, DataError> {
    file_error_if_missing(raw)?;
    let Some(root) = root else { return process() };
    let mut opts =
        serde_json::to_value(options).map_err(|e| DataError::option(kind, e.to_string()))?;
    // the same relative file name from another directory is another file
    if let (Some(map), Ok(abs)) = (opts.as_object_mut(), std::fs::canonicalize(raw)) {
        map.insert("source_path".into(), abs.display().to_string().into());
    }
    let (dir, params) = cache::processed_dir(root, kind, &opts);
    let stamp = cache::source_stamp(raw);
    if let Some(p) = cache::load(&dir, stamp) {
        return Ok(p);
    }
    let p = process()?;
    check(&p)?;
    cache::store(&dir, &params, &p, stamp);
    Ok(p)
}

/// Every atomic number must be known to the type mapper.
fn check_species(p: &Processed, type_mapper: &TypeMapper, file: &str) -> Result<(), DataError> {
    for (f, &id) in p.frames.iter().zip(&p.frame_ids) {
        if let Some(z) = f.get(ATOMIC_NUMBERS_KEY).and_then(|z| z.as_i64()) {
            type_mapper.transform(z).in_frame(file, id)?;
        }
    }
    Ok(())
}

/// Called as `progress(frames_done, frames_total)` while frames are processed (not when they
/// come from the cache), e.g. to drive a progress bar.
pub type Progress<'a> = Option<&'a dyn Fn(usize, usize)>;

/// Per-frame rows of a fields dict to frames (nequip's `process` for dict data).
pub(crate) fn frames_from_fields(
    fields: &BTreeMap<String, Array>,
    ids: &[usize],
    options: &AtomicDataOptions,
    file: &str,
    progress: Progress<'_>,
) -> Result<Processed, DataError> {
    let mut frames = Vec::with_capacity(ids.len());
    for (done, &id) in ids.iter().enumerate() {
        if let Some(p) = progress {
            p(done, ids.len());
        }
        let mut row: BTreeMap<String, Array> = fields
            .iter()
            .map(|(k, v)| (k.clone(), v.index0(id)))
            .collect();
        let frame = if row.contains_key(EDGE_INDEX_KEY) {
            AtomicData::new(row)
        } else {
            (|| {
                let pos = row
                    .remove(POSITIONS_KEY)
                    .map(|p| p.to_f64_vec())
                    .unwrap_or_default();
                let cell = match row.remove(CELL_KEY) {
                    None => None,
                    Some(c) if c.numel() == 9 => {
                        let v = c.to_f64_vec();
                        Some(std::array::from_fn(|r| {
                            [v[3 * r], v[3 * r + 1], v[3 * r + 2]]
                        }))
                    }
                    Some(c) => {
                        return Err(FrameError::Field {
                            field: CELL_KEY.into(),
                            msg: format!("expected [3, 3], got {:?}", c.shape),
                        })
                    }
                };
                let pbc = match row.remove(PBC_KEY) {
                    None => None,
                    Some(p) => {
                        let v = p.to_f64_vec();
                        match v.len() {
                            1 => Some([v[0] != 0.0; 3]),
                            3 => Some([v[0] != 0.0, v[1] != 0.0, v[2] != 0.0]),
                            _ => {
                                return Err(FrameError::Field {
                                    field: PBC_KEY.into(),
                                    msg: format!("expected 3 booleans, got shape {:?}", p.shape),
                                })
                            }
                        }
                    }
                };
                AtomicData::from_points(pos, options, cell, pbc, row)
            })()
        };
        frames.push(frame.in_frame(file, id)?);
    }
    if let Some(p) = progress {
        p(ids.len(), ids.len());
    }
    Ok(Processed {
        frames,
        frame_ids: ids.to_vec(),
    })
}

/// The `npz` dataset.
pub struct NpzDataset;

impl NpzDataset {
    /// Loads (or reuses the cache in `root`) and type-maps an npz file.
    pub fn load(
        o: &NpzOptions,
        type_mapper: &TypeMapper,
        root: Option<&Path>,
    ) -> Result<InMemoryDataset, DataError> {
        Self::load_with_progress(o, type_mapper, root, None)
    }

    /// [`NpzDataset::load`] reporting progress.
    pub fn load_with_progress(
        o: &NpzOptions,
        type_mapper: &TypeMapper,
        root: Option<&Path>,
        progress: Progress<'_>,
    ) -> Result<InMemoryDataset, DataError> {
        check_r_max(&o.atomic_data_options)?;
        let file = o.file_name.display().to_string();
        let p = cached(
            root,
            "npz",
            o,
            &o.file_name,
            || {
                let (fields, n) = npz_fields(o)?;
                let ids = frame_selection(&o.include_frames, n, &file)?;
                frames_from_fields(&fields, &ids, &o.atomic_data_options, &file, progress)
            },
            |p| check_species(p, type_mapper, &file),
        )?;
        InMemoryDataset::from_processed(p, type_mapper, &file, o.atomic_data_options.r_max)
    }
}

/// The `ase` dataset (extended XYZ files).
pub struct AseDataset;

impl AseDataset {
    /// Loads (or reuses the cache in `root`) and type-maps an extended XYZ file.
    pub fn load(
        o: &AseOptions,
        type_mapper: &TypeMapper,
        root: Option<&Path>,
    ) -> Result<InMemoryDataset, DataError> {
        Self::load_with_progress(o, type_mapper, root, None)
    }

    /// [`AseDataset::load`] reporting progress.
    pub fn load_with_progress(
        o: &AseOptions,
        type_mapper: &TypeMapper,
        root: Option<&Path>,
        progress: Progress<'_>,
    ) -> Result<InMemoryDataset, DataError> {
        check_r_max(&o.atomic_data_options)?;
        if let Some(fmt) = o.ase_args.as_ref().and_then(|a| a.get("format")) {
            if !matches!(fmt.as_str(), Some("extxyz" | "xyz")) {
                return Err(DataError::option(
                    "ase_args",
                    format!("format {fmt:?} is not supported; only extxyz"),
                ));
            }
        }
        let file = o.file_name.display().to_string();
        let p = cached(
            root,
            "ase",
            o,
            &o.file_name,
            || {
                let xyz = read_extxyz(&o.file_name)?;
                let ids = frame_selection(&o.include_frames, xyz.len(), &file)?;
                let km = o.key_mapping.clone().unwrap_or_default();
                let inc = o.include_keys.clone().unwrap_or_default();
                let mut frames = Vec::with_capacity(ids.len());
                for (done, &id) in ids.iter().enumerate() {
                    if let Some(p) = progress {
                        p(done, ids.len());
                    }
                    frames.push(
                        frame_from_xyz(&xyz[id], &km, &inc, &o.atomic_data_options)
                            .in_frame(&file, id)?,
                    );
                }
                if let Some(p) = progress {
                    p(ids.len(), ids.len());
                }
                Ok(Processed {
                    frames,
                    frame_ids: ids,
                })
            },
            |p| check_species(p, type_mapper, &file),
        )?;
        InMemoryDataset::from_processed(p, type_mapper, &file, o.atomic_data_options.r_max)
    }
}

