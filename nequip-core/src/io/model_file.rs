//! The nequip-rs model file: one self-describing safetensors file holding the model's state
//! dict under nequip's names and, in the safetensors metadata, the resolved config (YAML) and
//! what a user or an MD code needs without it (`r_max`, `type_names`, dtypes, versions).
//! Loading rebuilds the model from the config (`model_from_config` without initializing) and
//! loads the weights by name, strictly. Written atomically (temp file + rename).
//!
//! (nequip deploys TorchScript files instead; this format is ours.)

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, View};
use tch::{Device, Kind, Tensor};

use crate::config::{yaml, Config, Source, Value};
use crate::model::{model_from_config, BuildOptions, ModelBuildError};
use crate::nn::graph_model::StateDictError;
use crate::nn::GraphModel;

/// `format` in the metadata of every model file.
pub const FORMAT: &str = "nequip-rs-model";
/// The layout version this build writes and reads.
pub const FORMAT_VERSION: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    #[error("{}: {source}", file.display())]
    Io { file: PathBuf, source: std::io::Error },
    #[error("{}: not a nequip-rs model file ({reason})", file.display())]
    NotAModelFile { file: PathBuf, reason: String },
    #[error("{}: model file format version {found}, but this nequip-rs ({}) reads version {FORMAT_VERSION}", file.display(), env!("CARGO_PKG_VERSION"))]
    Version { file: PathBuf, found: String },
    #[error("{}: the stored config does not build a model: {source}", file.display())]
    Build { file: PathBuf, source: ModelBuildError },
    #[error("{}: {source}", file.display())]
    StateDict { file: PathBuf, source: StateDictError },
}

struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn to_raw(t: &Tensor) -> Raw {
    let t = t.detach().to_device(Device::Cpu).contiguous();
    let shape = t.size().iter().map(|&d| d as usize).collect();
    let flat = t.flatten(0, -1);
    let (dtype, data) = match t.kind() {
        Kind::Double => (Dtype::F64, Vec::<f64>::try_from(&flat).unwrap_or_default().iter().flat_map(|x| x.to_le_bytes()).collect()),
        Kind::Int64 => (Dtype::I64, Vec::<i64>::try_from(&flat).unwrap_or_default().iter().flat_map(|x| x.to_le_bytes()).collect()),
        _ => (Dtype::F32, Vec::<f32>::try_from(&flat.to_kind(Kind::Float)).unwrap_or_default().iter().flat_map(|x| x.to_le_bytes()).collect()),
    };
    Raw { dtype, shape, data }
}

/// Metadata describing a model (also what `deploy info` prints).
pub fn describe(model: &GraphModel, config: &Config) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let get = |k: &str| config.get(k).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| yaml::render(v))).unwrap_or_default();
    m.insert("format".into(), FORMAT.into());
    m.insert("format_version".into(), FORMAT_VERSION.into());
    m.insert("nequip_rs_version".into(), env!("CARGO_PKG_VERSION").into());
    m.insert("nequip_version_compat".into(), "0.6.2".into());
    for k in ["r_max", "model_dtype", "default_dtype", "num_types"] {
        m.insert(k.into(), get(k));
    }
    let names: Vec<String> = config.get("type_names").and_then(Value::as_sequence).map(|s| s.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default();
    m.insert("type_names".into(), serde_json::to_string(&names).unwrap_or_default());
    m.insert("n_parameters".into(), model.num_trainable().to_string());
    m
}

/// Write `model` and its resolved `config` to `path` atomically.
pub fn save(path: &Path, model: &GraphModel, config: &Config) -> Result<(), ModelFileError> {
    let io = |e| ModelFileError::Io { file: path.to_path_buf(), source: e };
    let raws: Vec<(String, Raw)> = model.state_dict().into_iter().filter(|t| t.tensor.numel() > 0).map(|t| (t.name, to_raw(&t.tensor))).collect();
    let mut meta: HashMap<String, String> = describe(model, config).into_iter().collect();
    let text = yaml::to_string(&config.to_mapping()).map_err(|m| io(std::io::Error::other(m)))?;
    meta.insert("config".into(), text);
    let bytes = safetensors::tensor::serialize(raws.iter().map(|(n, r)| (n.as_str(), r)), &Some(meta)).map_err(|e| io(std::io::Error::other(e.to_string())))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

/// The metadata, config and tensors of a model file.
pub struct ModelFile {
    pub metadata: BTreeMap<String, String>,
    pub config: Config,
    pub tensors: BTreeMap<String, Tensor>,
}

/// Read and check a model file (format, version) without building the model.
pub fn read(path: &Path) -> Result<ModelFile, ModelFileError> {
    let not = |reason: String| ModelFileError::NotAModelFile { file: path.to_path_buf(), reason };
    let bytes = std::fs::read(path).map_err(|e| ModelFileError::Io { file: path.to_path_buf(), source: e })?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| not(format!("unreadable safetensors header: {e:?}")))?;
    let metadata: BTreeMap<String, String> = header.metadata().clone().unwrap_or_default().into_iter().collect();
    if metadata.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(not("no `format: nequip-rs-model` in its metadata".into()));
    }
    match metadata.get("format_version") {
        Some(v) if v == FORMAT_VERSION => {}
        v => return Err(ModelFileError::Version { file: path.to_path_buf(), found: v.cloned().unwrap_or_else(|| "missing".into()) }),
    }
    let text = metadata.get("config").ok_or_else(|| not("no config in its metadata".into()))?;
    let config = Config::from_yaml_str(text, &format!("{} (stored config)", path.display())).map_err(|e| not(format!("its config does not parse: {e}")))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| not(format!("corrupt tensor data: {e:?}")))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let d = view.data();
        let t = match view.dtype() {
            Dtype::F64 => Tensor::from_slice(&d.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect::<Vec<_>>()),
            Dtype::F32 => Tensor::from_slice(&d.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4]))).collect::<Vec<_>>()),
            Dtype::I64 => Tensor::from_slice(&d.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect::<Vec<_>>()),
            other => return Err(not(format!("tensor `{name}` has unsupported dtype {other:?}"))),
        };
        tensors.insert(name, t.reshape(shape.as_slice()));
    }
    Ok(ModelFile { metadata, config, tensors })
}

/// Load a model file: rebuild the model from its config on `device` (default: the stored
/// `device` if available, else the CPU) and load its weights strictly.
pub fn load(path: &Path, device: Option<&str>) -> Result<(GraphModel, Config), ModelFileError> {
    let ModelFile { mut config, tensors, .. } = read(path)?;
    let dev = device.map(str::to_string).unwrap_or_else(|| {
        let stored = config.get("device").and_then(Value::as_str).unwrap_or("cpu");
        if stored.starts_with("cuda") && !tch::Cuda::is_available() { "cpu".into() } else { stored.into() }
    });
    config.set("device", Value::String(dev.clone()), Source::Cli("--device".into()));
    let model = model_from_config(&mut config, BuildOptions::default()).map_err(|e| ModelFileError::Build { file: path.to_path_buf(), source: e })?;
    model.load_state_dict(&tensors, true).map_err(|e| ModelFileError::StateDict { file: path.to_path_buf(), source: e })?;
    Ok((model, config))
}
