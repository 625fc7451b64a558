//! Loading weights at build time: port of `nequip/model/_weight_init.py::{initialize_from_state,
//! load_model_state}` (nequip 0.6.2). The file is a `torch.save`d state dict (nequip's
//! `best_model.pth`) read without libtorch's loaders (`nequip_core::io::checkpoint`), or — beyond
//! nequip — a nequip-rs model file (`best_model.safetensors`, `deploy build`, `import`), so a
//! trained model can be fine-tuned on new data.

use std::collections::BTreeMap;
use std::path::Path;

use nequip_core::config::Config;
use nequip_core::io::checkpoint::read_state_dict;
use nequip_core::io::model_file;
use nequip_core::nn::GraphModel;
use nequip_core::registry::BuildError;
use nequip_core::{auto_init, builder};

/// The state dict of `file`: a torch zip checkpoint (starts with `PK`), else a nequip-rs model file.
fn read_state(file: &str) -> Result<BTreeMap<String, tch::Tensor>, String> {
    let path = Path::new(file);
    let mut magic = [0u8; 2];
    let is_zip = std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic)).map(|_| &magic == b"PK").map_err(|e| format!("{file}: {e}"))?;
    if is_zip {
        Ok(read_state_dict(path).map_err(|e| e.to_string())?.into_iter().collect())
    } else {
        Ok(model_file::read(path).map_err(|e| format!("{e} (expected nequip's torch.save state dict, e.g. best_model.pth, or a nequip-rs model file)"))?.tensors)
    }
}

fn load(graph_model: &GraphModel, file: &str, strict: bool, builder: &str) -> Result<(), BuildError> {
    let state = read_state(file).map_err(|message| BuildError::Invalid { builder: builder.into(), message })?;
    graph_model.load_state_dict(&state, strict).map_err(|e| BuildError::Invalid { builder: builder.into(), message: format!("{file}: {e}") })
}

/// Keys of `initialize_from_state`.
#[auto_init]
pub struct InitialStateKeys {
    /// Weights to start training from: nequip's `best_model.pth` or a nequip-rs model file
    /// (`best_model.safetensors`).
    pub initial_model_state: String,
    /// Every name must match.
    #[key(default = true)]
    pub initial_model_state_strict: bool,
}

/// Start a fresh training from saved weights (only when initializing).
#[builder(name = "initialize_from_state", kind = model_builder)]
pub fn initialize_from_state(_config: &mut Config, graph_model: GraphModel, initialize: bool, keys: InitialStateKeys) -> Result<GraphModel, BuildError> {
    if initialize {
        load(&graph_model, &keys.initial_model_state, keys.initial_model_state_strict, "initialize_from_state")?;
    }
    Ok(graph_model)
}

/// Keys of `load_model_state`.
#[auto_init]
pub struct LoadStateKeys {
    /// Weights to load into the model, always (`.pth` state dict or nequip-rs model file).
    pub load_model_state: String,
    #[key(default = true)]
    pub load_model_state_strict: bool,
}

/// Always load a state dict (e.g. to evaluate or deploy saved weights).
#[builder(name = "load_model_state", kind = model_builder)]
pub fn load_model_state(_config: &mut Config, graph_model: GraphModel, _initialize: bool, keys: LoadStateKeys) -> Result<GraphModel, BuildError> {
    load(&graph_model, &keys.load_model_state, keys.load_model_state_strict, "load_model_state")?;
    Ok(graph_model)
}
