//! The keys nequip's trainer and global options read (`nequip/train/trainer.py::Trainer.__init__`,
//! `nequip/utils/_global_options.py`, `nequip/utils/output.py`). Resolving these structs marks
//! the keys as used and type-checks them; the training loop (a later module) consumes them.

use crate::auto_init;
use crate::config::Value;

/// Global options applied before anything is built.
#[auto_init(crate = crate)]
#[derive(Debug, Clone)]
pub struct GlobalOptions {
    /// Output root: parent of `root/run_name` and of dataset caches.
    #[key(default = "./")]
    pub root: String,
    /// Name of the run directory (required for training).
    pub run_name: Option<String>,
    /// Torch device: `cpu`, `cuda`, `cuda:N`.
    #[key(default = crate::config::defaults::default_device())]
    pub device: String,
    /// Dtype of data, rescaling and outputs: `float32` or `float64`.
    #[key(default = "float64")]
    pub default_dtype: String,
    /// Dtype of the model interior; must not exceed `default_dtype`.
    #[key(default = "float32")]
    pub model_dtype: String,
    /// Log level name (case-insensitive).
    #[key(default = "INFO")]
    pub verbose: String,
    /// Restart/append into an existing run directory.
    #[key(default = false)]
    pub append: bool,
    /// Unused keys warn instead of failing.
    #[key(default = false)]
    pub warn_unused: bool,
    /// Check tensor shapes against irreps in every module.
    #[key(default = false)]
    pub model_debug_mode: bool,
    /// `N` (int): test equivariance on N random training frames before training; `false` = off.
    #[key(default = false)]
    pub equivariance_test: Value,
    /// Autograd anomaly detection.
    #[key(default = false)]
    pub grad_anomaly_mode: bool,
    /// Offload saved tensors to CPU memory (CUDA only).
    #[key(default = false)]
    pub gpu_oom_offload: bool,
    /// Stride over frames for all dataset statistics.
    #[key(default = 1)]
    pub dataset_statistics_stride: i64,
    /// Log file name (nequip reads the YAML key `log`).
    pub log: Option<String>,
}

/// The arguments of nequip's `Trainer.__init__` (keys a training config may contain).
#[auto_init(crate = crate)]
#[derive(Debug, Clone)]
pub struct TrainerOptions {
    /// Random seed of model initialisation (required for training).
    pub seed: Option<i64>,
    /// Seed of the train/validation split and shuffling (default: `seed`).
    pub dataset_seed: Option<i64>,
    /// Loss terms: a key, a list of keys, `{key: coeff}`, `{key: [coeff, LossName]}`, `{key: [coeff, LossName, params]}`.
    #[key(default = "total_energy")]
    pub loss_coeffs: Value,
    /// If given, must equal the loss keys.
    pub train_on_keys: Option<Vec<String>>,
    /// Reported error metrics; default derived from the loss.
    pub metrics_components: Option<Value>,
    /// Metric for best-model selection and `ReduceLROnPlateau`.
    #[key(default = "validation_loss")]
    pub metrics_key: String,
    /// Early stopping options (dict form of `early_stopping_*`).
    #[key(plain = true)]
    pub early_stopping_kwargs: Option<Value>,
    /// Stop after this many epochs.
    #[key(default = 1000000)]
    pub max_epochs: i64,
    /// Initial learning rate.
    #[key(default = 0.01)]
    pub learning_rate: f64,
    /// `none`, `ReduceLROnPlateau` or `CosineAnnealingWarmRestarts`.
    #[key(default = "none")]
    pub lr_scheduler_name: String,
    /// Scheduler options (dict form of `lr_scheduler_*`).
    #[key(plain = true)]
    pub lr_scheduler_kwargs: Option<Value>,
    /// Optimizer class name (`Adam`, `AdamW`, `SGD`, `RMSprop`).
    #[key(default = "Adam")]
    pub optimizer_name: String,
    /// Optimizer options (dict form of `optimizer_*`).
    #[key(plain = true)]
    pub optimizer_kwargs: Option<Value>,
    /// Gradient-norm clipping threshold; null/inf = off.
    pub max_gradient_norm: Option<Value>,
    /// Exponential moving average of the weights.
    #[key(default = false)]
    pub use_ema: bool,
    /// EMA decay.
    #[key(default = 0.999)]
    pub ema_decay: f64,
    /// EMA warm-up `min(decay, (1+t)/(10+t))`.
    #[key(default = true)]
    pub ema_use_num_updates: bool,
    /// Fields dropped when collating.
    #[key(default = Vec::<String>::new())]
    pub exclude_keys: Vec<String>,
    /// Frames per training batch.
    #[key(default = 5)]
    pub batch_size: i64,
    /// Frames per validation batch.
    #[key(default = 5)]
    pub validation_batch_size: i64,
    /// Reshuffle training frames each epoch.
    #[key(default = true)]
    pub shuffle: bool,
    /// Training frames: a count or a percentage string (`"70%"`).
    pub n_train: Option<Value>,
    /// Frames per training epoch (partial epochs).
    pub n_train_per_epoch: Option<i64>,
    /// Validation frames: a count or a percentage string.
    pub n_val: Option<Value>,
    /// Explicit training frame indices.
    pub train_idcs: Option<Vec<i64>>,
    /// Explicit validation frame indices.
    pub val_idcs: Option<Vec<i64>>,
    /// `random` or `sequential`.
    #[key(default = "random")]
    pub train_val_split: String,
    /// Print a batch line every N batches.
    #[key(default = 100)]
    pub log_batch_freq: i64,
    /// Save trainer state and last model every N epochs.
    #[key(default = 1)]
    pub log_epoch_freq: i64,
    /// If > 0, save raw weights every N epochs.
    #[key(default = -1)]
    pub save_checkpoint_freq: i64,
    /// If > 0, save EMA weights every N epochs.
    #[key(default = -1)]
    pub save_ema_checkpoint_freq: i64,
    /// Run a validation pass before training.
    #[key(default = true)]
    pub report_init_validation: bool,
    /// Callbacks (Python callables in nequip; not supported).
    #[key(default = Vec::<Value>::new())]
    pub init_callbacks: Vec<Value>,
    #[key(default = Vec::<Value>::new())]
    pub start_of_epoch_callbacks: Vec<Value>,
    #[key(default = Vec::<Value>::new())]
    pub end_of_epoch_callbacks: Vec<Value>,
    #[key(default = Vec::<Value>::new())]
    pub end_of_batch_callbacks: Vec<Value>,
    #[key(default = Vec::<Value>::new())]
    pub end_of_train_callbacks: Vec<Value>,
    #[key(default = Vec::<Value>::new())]
    pub final_callbacks: Vec<Value>,
}
