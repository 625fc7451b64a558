//! Importing a nequip 0.6 run directory (`config.yaml` + `best_model.pth`): the config is read
//! as nequip wrote it (Python YAML tags included), the model rebuilt from it without
//! initializing, and the state dict loaded by name, strictly (missing, unexpected and
//! misshaped names are all reported).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError, Source, Value};
use crate::model::{model_from_config, BuildOptions, ModelBuildError};
use crate::nn::graph_model::StateDictError;
use crate::nn::GraphModel;

use super::checkpoint::{read_state_dict, CheckpointError};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{}: not a nequip run directory (no config.yaml)", dir.display())]
    NotARun { dir: PathBuf },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{}: {source}", dir.display())]
    Build { dir: PathBuf, source: ModelBuildError },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{}: {source}", file.display())]
    StateDict { file: PathBuf, source: StateDictError },
}

/// Import `dir` with the weights of `weights` (default `best_model.pth`), on `device`.
pub fn import_run(dir: &Path, weights: Option<&str>, device: &str) -> Result<(GraphModel, Config), ImportError> {
    let cfg_path = dir.join("config.yaml");
    if !cfg_path.is_file() {
        return Err(ImportError::NotARun { dir: dir.into() });
    }
    let mut config = Config::load(&cfg_path)?;
    config.set("device", Value::String(device.into()), Source::Cli("--device".into()));
    let model = model_from_config(&mut config, BuildOptions::default()).map_err(|e| ImportError::Build { dir: dir.into(), source: e })?;
    let file = dir.join(weights.unwrap_or("best_model.pth"));
    let state: BTreeMap<String, tch::Tensor> = read_state_dict(&file)?.into_iter().collect();
    model.load_state_dict(&state, true).map_err(|e| ImportError::StateDict { file, source: e })?;
    Ok((model, config))
}
