//! Loading weights at build time: port of `nequip/model/_weight_init.py::{initialize_from_state,
//! load_model_state}` (nequip 0.6.2). The file is a `torch.save`d state dict (nequip's
//! `best_model.pth`) read without libtorch's loaders (`nequip_core::io::checkpoint`).

use std::collections::BTreeMap;
use std::path::Path;

use nequip_core::config::Config;
use nequip_core::io::checkpoint::read_state_dict;
use nequip_core::nn::GraphModel;
use nequip_core::registry::BuildError;
use nequip_core::{auto_init, builder};

fn load(graph_model: &GraphModel, file: &str, strict: bool, builder: &str) -> Result<(), BuildError> {
    let state: BTreeMap<String, tch::Tensor> = read_state_dict(Path::new(file))
        .map_err(|e| BuildError::Invalid { builder: builder.into(), message: e.to_string() })?
        .into_iter()
        .collect();
    graph_model.load_state_dict(&state, strict).map_err(|e| BuildError::Invalid { builder: builder.into(), message: format!("{file}: {e}") })
}

/// Keys of `initialize_from_state`.
#[auto_init]
pub struct InitialStateKeys {
    /// A state dict file (`best_model.pth`) to start training from.
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
    /// A state dict file to load into the model, always.
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
