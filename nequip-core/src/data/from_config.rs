//! Datasets as registered builders, and nequip's `dataset_from_config`
//! (`nequip/data/_build.py`): the dataset class named by `config[prefix]` (`dataset` or
//! `validation_dataset`), its keys resolved by [`crate::config::resolve`] with prefixes
//! `[ClassName, prefix]` and the whole config as optional args; `AtomicData_options` and its
//! `r_max` found with nequip's `get_w_prefix`; the `TypeMapper` resolved the same way; the
//! dataset's `url` (`dataset_url`) fetched by [`DatasetPlan::load`] when the file is missing
//! ([`super::download`]).

use std::path::{Path, PathBuf};

use crate::config::{resolve::get_with_prefix, yaml, Args, AutoInit, Config, Mapping, Request, Resolution, ResolveError, Source, Value};
use crate::registry::{self, kind, Component, Kind, KindTag, Registration, RegistryError};

use super::dataset::{InMemoryDataset, Progress};
use super::download::{self, DownloadError, UrlOptions};
use super::error::DataError;
use super::type_mapper::{TypeMapper, TypeMapperOptions};

/// A dataset builder: its options (keys) and how to load it. Registered with
/// `#[builder(name = "...", kind = dataset, keys = Options)]`.
pub trait DatasetBuilder: 'static {
    type Options: AutoInit;
    /// Load (or reuse the processed-data cache under `root`), reporting `(done, total)` frames.
    fn load(options: Self::Options, type_mapper: &TypeMapper, root: Option<&Path>, progress: Progress<'_>) -> Result<InMemoryDataset, DataError>;
}

/// The factory of a registered dataset.
pub struct DatasetFactory {
    /// Convert the resolved keys to the typed options (type errors name the key and its place).
    pub check: fn(&Resolution) -> Result<(), ResolveError>,
    pub load: fn(&Resolution, &TypeMapper, Option<&Path>, Progress<'_>) -> Result<InMemoryDataset, DatasetConfigError>,
}

impl KindTag for kind::Dataset {
    const KIND: Kind = Kind::Dataset;
    type Factory = DatasetFactory;
}

fn load_erased<T: DatasetBuilder>(r: &Resolution, tm: &TypeMapper, root: Option<&Path>, progress: Progress<'_>) -> Result<InMemoryDataset, DatasetConfigError> {
    Ok(T::load(r.into_typed::<T::Options>()?, tm, root, progress)?)
}

fn check_erased<T: DatasetBuilder>(r: &Resolution) -> Result<(), ResolveError> {
    r.into_typed::<T::Options>().map(|_| ())
}

impl<T: DatasetBuilder> Component<kind::Dataset> for T {
    const FACTORY: DatasetFactory = DatasetFactory { check: check_erased::<T>, load: load_erased::<T> };
}

#[derive(Debug, thiserror::Error)]
pub enum DatasetConfigError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Download(#[from] DownloadError),
    #[error("{place}`{key}`: {message}")]
    Invalid { place: String, key: String, message: String },
}

/// A registered dataset by nequip's matching: exact name or alias, else case-insensitive with or
/// without the `Dataset` suffix (`npz`, `NpzDataset`, `ase`, `ASEDataset`).
pub fn find_dataset(name: &str) -> Result<&'static Registration, RegistryError> {
    if let Ok(r) = registry::lookup(Kind::Dataset, name) {
        return Ok(r);
    }
    let norm = |s: &str| {
        let l = s.to_lowercase();
        l.strip_suffix("dataset").map(str::to_string).unwrap_or(l)
    };
    let want = norm(name);
    registry::of_kind(Kind::Dataset)
        .into_iter()
        .find(|r| std::iter::once(r.name).chain(r.aliases.iter().copied()).any(|n| norm(n) == want))
        .ok_or_else(|| registry::lookup(Kind::Dataset, name).unwrap_err())
}

/// A dataset section resolved from the config (no file read yet).
pub struct DatasetPlan {
    pub registration: &'static Registration,
    pub resolution: Resolution,
    pub type_mapper: TypeMapperOptions,
    pub root: PathBuf,
    /// `{prefix}_url`: downloaded when `file_name` is missing (see [`download`]).
    pub url: Option<String>,
}

impl DatasetPlan {
    /// Read (or load from the processed-data cache) the dataset.
    pub fn load(&self) -> Result<InMemoryDataset, DatasetConfigError> {
        self.load_with_progress(None)
    }

    /// [`DatasetPlan::load`] reporting `(done, total)` frames.
    pub fn load_with_progress(&self, progress: Progress<'_>) -> Result<InMemoryDataset, DatasetConfigError> {
        let tm = TypeMapper::new(&self.type_mapper)?;
        let factory = self.registration.factory::<kind::Dataset>().ok_or_else(|| DatasetConfigError::Invalid {
            place: String::new(),
            key: self.registration.name.into(),
            message: "registered as a dataset without a dataset factory".into(),
        })?;
        if let (Some(url), Some(Value::String(f))) = (&self.url, self.resolution.get("file_name")) {
            download::ensure_file(Path::new(f), url)?;
        }
        (factory.load)(&self.resolution, &tm, Some(&self.root), progress)
    }
}

/// Resolve the `prefix` dataset section; `None` when `config[prefix]` is absent (no validation
/// dataset). Writes `{prefix}_AtomicData_options` (with `r_max`) into the config, as nequip does.
pub fn dataset_plan(config: &mut Config, prefix: &str) -> Result<Option<DatasetPlan>, DatasetConfigError> {
    let place = config.place(prefix).map(|p| format!("{p}: ")).unwrap_or_default();
    let Some(v) = config.take(prefix, "dataset_from_config") else { return Ok(None) };
    let name = v.as_str().ok_or_else(|| DatasetConfigError::Invalid { place: place.clone(), key: prefix.into(), message: format!("expected a dataset name, found {}", yaml::render(v)) })?.to_string();
    let reg = find_dataset(&name).map_err(|e| DatasetConfigError::Invalid { place: place.clone(), key: prefix.into(), message: e.to_string() })?;

    let component = format!("{prefix} ({})", reg.name);
    let ado_key = "AtomicData_options";
    let mut ado = match get_with_prefix(ado_key, &[prefix], &[Args::Config(config)], &component) {
        None | Some(Value::Null) => Mapping::new(),
        Some(Value::Mapping(m)) => m,
        Some(other) => return Err(DatasetConfigError::Invalid { place: place.clone(), key: format!("{prefix}_{ado_key}"), message: format!("expected a mapping, found {}", yaml::render(&other)) }),
    };
    let r_max = get_with_prefix("r_max", &[prefix], &[Args::Map { map: &ado, name: ado_key }, Args::Config(config)], &component);
    match r_max {
        Some(r) => {
            ado.insert(Value::from("r_max"), r);
        }
        None => return Err(ResolveError::MissingKey { component, key: "r_max".into(), searched: vec![format!("{ado_key}.r_max"), format!("{prefix}_r_max"), "r_max".into()] }.into()),
    }
    config.set(&format!("{prefix}_{ado_key}"), Value::Mapping(ado.clone()), Source::SetBy("dataset_from_config".into()));

    let mut tm_req = Request::new(format!("{prefix} TypeMapper"), "TypeMapper", TypeMapperOptions::KEYS).prefix(prefix).optional(Args::Config(config));
    tm_req.class_prefix = true;
    let (type_mapper, _) = crate::config::resolve::resolve_typed::<TypeMapperOptions>(&tm_req)?;

    // nequip's `url` parameter of every dataset class
    let mut url_req = Request::new(component.clone(), reg.name, UrlOptions::KEYS).prefix(prefix).optional(Args::Config(config));
    url_req.class_prefix = true;
    let (UrlOptions { url }, _) = crate::config::resolve::resolve_typed::<UrlOptions>(&url_req)?;

    let req = Request::for_registration(component, reg).prefix(prefix).optional(Args::Config(config)).positional(ado_key, Value::Mapping(ado));
    let resolution = crate::config::resolve(&req)?;
    if let Some(f) = reg.factory::<kind::Dataset>() {
        (f.check)(&resolution)?;
    }
    let root = config.take("root", "dataset_from_config").and_then(Value::as_str).unwrap_or("./");
    Ok(Some(DatasetPlan { registration: reg, resolution, type_mapper, root: PathBuf::from(root), url }))
}

/// nequip's `dataset_from_config(config, prefix)`: resolve and load; `None` if absent.
pub fn dataset_from_config(config: &mut Config, prefix: &str) -> Result<Option<InMemoryDataset>, DatasetConfigError> {
    match dataset_plan(config, prefix)? {
        Some(plan) => plan.load().map(Some),
        None => Ok(None),
    }
}
