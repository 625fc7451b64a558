//! Training: a port of `nequip/train/` and `nequip/scripts/train.py` (nequip 0.6.2).
//!
//! | module | what | mirrors |
//! |---|---|---|
//! | [`options`] | the trainer's and global keys | `Trainer.__init__`, `_global_options.py` |
//! | [`loss_coeffs`], [`loss`], [`loss_fn`] | `loss_coeffs` forms, element-wise losses, the weighted loss | `train/loss.py`, `_loss.py` |
//! | [`metrics`] | `metrics_components` (mae/rmse, PerSpecies, PerAtom) | `train/metrics.py` |
//! | [`optim`] | optimizer and scheduler kinds (built-ins in nequip-plugins) | `torch.optim` via `instantiate` |
//! | [`ema`], [`early_stopping`] | weight EMA, early stopping | `torch_ema`, `train/early_stopping.py` |
//! | [`preflight`] | checks before the first step, shared with `config check` (refused keys, metric names, indices) | `Trainer.__init__`'s checks |
//! | [`setup`] | fresh start / exact restart from a config | `scripts/train.py`, `Trainer.from_dict` |
//! | [`trainer`] | the epoch loop | `Trainer.train`, `batch_step` |
//! | [`evaluate`] | evaluation on dataset frames (metrics, predicted frames) | `scripts/evaluate.py` |
//! | [`run_dir`] | log and CSVs (appended, cut back to the last checkpoint on restart), atomic writes | `utils/output.py` |
//! | [`state`] | the trainer state (`trainer_state.safetensors`) | `Trainer.as_dict`, `from_dict` |

pub mod early_stopping;
pub mod evaluate;
pub mod ema;
pub mod loss;
pub mod loss_coeffs;
pub mod loss_fn;
pub mod metrics;
pub mod optim;
pub mod options;
pub mod preflight;
pub mod run_dir;
pub mod setup;
pub mod state;
pub mod trainer;

pub use setup::{trainer_from_config, SetupOptions, TrainError};
pub use trainer::{Progress, Silent, Trainer};
