//! `trainer_state.safetensors`: what continues a run exactly (`append: true`). The tensors
//! (weights `model/…`, optimizer `optim/…`, EMA `ema/<i>`) and a typed document,
//! [`TrainerState`] (progress, split, scheduler, early stopping, EMA count and how far the log
//! and the CSVs had got), stored as JSON in the tensor `__json__`. Written atomically.

use std::collections::BTreeMap;
use std::path::Path;

use tch::Tensor;

use super::early_stopping::EarlyStopping;
use super::run_dir::{commit_temp, temp_path, RunFileError, RunFileMarks};
use super::setup::{save_model, TrainError, STATE_FILE};
use super::trainer::{ProgressState, Trainer};

/// The trainer's state besides its tensors.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrainerState {
    pub progress: ProgressState,
    pub train_idcs: Vec<usize>,
    pub val_idcs: Vec<usize>,
    /// The scheduler's own state (see [`super::optim::LrScheduler::state`]).
    #[serde(default)]
    pub scheduler: serde_json::Value,
    #[serde(default)]
    pub early_stopping: Option<EarlyStopping>,
    #[serde(default)]
    pub ema_num_updates: Option<i64>,
    #[serde(default)]
    pub nequip_rs_version: String,
    /// How far the log and the CSVs had got (absent in states written before it was recorded:
    /// the files are then kept as they are).
    #[serde(default)]
    pub files: Option<RunFileMarks>,
}

/// A state file read back: the document and the tensors by name.
pub struct SavedState {
    pub state: TrainerState,
    pub tensors: BTreeMap<String, Tensor>,
}

impl TrainerState {
    /// Save with `tensors` into one safetensors file at `path`, atomically.
    pub fn save(&self, path: &Path, tensors: &[(String, Tensor)]) -> Result<(), RunFileError> {
        let bad = |reason: String| RunFileError::State { path: path.to_path_buf(), reason };
        let mut named: Vec<(String, Tensor)> = tensors.iter().map(|(n, t)| (n.clone(), t.detach().to_device(tch::Device::Cpu).contiguous())).collect();
        // safetensors cannot hold 0-d tensors: store them as [1]
        for (_, t) in named.iter_mut() {
            if t.dim() == 0 {
                *t = t.reshape([1]);
            }
        }
        let json = serde_json::to_vec(self).map_err(|e| bad(e.to_string()))?;
        named.push(("__json__".into(), Tensor::from_slice(&json)));
        let tmp = temp_path(path);
        if let Err(e) = Tensor::write_safetensors(&named, &tmp) {
            let _ = std::fs::remove_file(&tmp);
            return Err(bad(format!("cannot write {}: {e}", tmp.display())));
        }
        commit_temp(&tmp, path).map_err(|source| RunFileError::Io { path: path.to_path_buf(), source })
    }

    /// Read [`TrainerState::save`]'s file back.
    pub fn load(path: &Path) -> Result<SavedState, RunFileError> {
        let bad = |reason: String| RunFileError::State { path: path.to_path_buf(), reason };
        let mut tensors: BTreeMap<String, Tensor> = Tensor::read_safetensors(path).map_err(|e| bad(e.to_string()))?.into_iter().collect();
        let json = tensors.remove("__json__").ok_or_else(|| bad("not a trainer state file (no __json__)".into()))?;
        let bytes = Vec::<u8>::try_from(&json).map_err(|e| bad(e.to_string()))?;
        let state = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        Ok(SavedState { state, tensors })
    }
}

impl Trainer {
    /// The current [`TrainerState`].
    pub fn trainer_state(&self) -> TrainerState {
        TrainerState {
            progress: self.state.clone(),
            train_idcs: self.loader.train_idcs.clone(),
            val_idcs: self.loader.val_idcs.clone(),
            scheduler: self.scheduler.as_ref().map(|s| s.state()).unwrap_or_default(),
            early_stopping: self.early_stopping.clone(),
            ema_num_updates: self.ema.as_ref().and_then(|e| e.num_updates),
            nequip_rs_version: env!("CARGO_PKG_VERSION").into(),
            files: Some(self.files.marks()),
        }
    }

    /// Save `last_model` and the trainer state (weights, optimizer, EMA, progress, file marks).
    pub fn save_progress(&mut self) -> Result<(), TrainError> {
        save_model(self, "last_model.safetensors", false)?;
        let mut tensors: Vec<(String, Tensor)> = self.model.state_dict().into_iter().filter(|t| t.tensor.numel() > 0).map(|t| (format!("model/{}", t.name), t.tensor)).collect();
        tensors.extend(self.optimizer.state().into_iter().map(|(k, v)| (format!("optim/{k}"), v)));
        if let Some(ema) = &self.ema {
            tensors.extend(ema.shadow.iter().enumerate().map(|(i, s)| (format!("ema/{i}"), s.shallow_clone())));
        }
        Ok(self.trainer_state().save(&self.run_dir.join(STATE_FILE), &tensors)?)
    }

    /// Restore weights, optimizer, EMA, scheduler, early stopping and progress of a saved run
    /// (the files were cut back to its marks when they were opened).
    pub fn restore(&mut self, saved: SavedState) -> Result<(), TrainError> {
        let SavedState { state, tensors } = saved;
        let bad = |m: String| TrainError::State(m);
        // 0-d tensors were stored as [1]: give every weight the model's shape back
        let shapes: BTreeMap<String, Vec<i64>> = self.model.state_dict().into_iter().map(|t| (t.name, t.tensor.size())).collect();
        let weights: BTreeMap<String, Tensor> = tensors
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("model/").map(|n| (n.to_string(), match shapes.get(n) { Some(s) if s.iter().product::<i64>() == v.numel() as i64 => v.reshape(s.as_slice()), _ => v.shallow_clone() })))
            .collect();
        self.model.load_state_dict(&weights, true).map_err(|e| bad(e.to_string()))?;
        let optim: Vec<(String, Tensor)> = tensors.iter().filter_map(|(k, v)| k.strip_prefix("optim/").map(|n| (n.to_string(), v.shallow_clone()))).collect();
        self.optimizer.load_state(&optim).map_err(bad)?;
        if let Some(ema) = self.ema.as_mut() {
            for (i, s) in ema.shadow.iter_mut().enumerate() {
                let t = tensors.get(&format!("ema/{i}")).ok_or_else(|| bad(format!("EMA weight {i} missing")))?;
                tch::no_grad(|| s.copy_(&t.reshape(s.size()).to_kind(s.kind())));
            }
            ema.num_updates = state.ema_num_updates.or(ema.num_updates.map(|_| 0));
        }
        if let Some(s) = self.scheduler.as_mut() {
            s.load_state(&state.scheduler).map_err(bad)?;
        }
        if let (Some(es), Some(saved)) = (self.early_stopping.as_mut(), state.early_stopping) {
            es.counters = saved.counters;
            es.minimums = saved.minimums;
        }
        self.state = state.progress;
        if let Some(reason) = self.state.stop_reason.take() {
            if !(reason == "max epochs" && self.state.epoch < self.max_epochs) {
                return Err(TrainError::Stopped { dir: self.run_dir.clone(), reason });
            }
        }
        Ok(())
    }
}
