//! nequip 0.6.2's `default_config` (`nequip/scripts/train.py`) and the keys that only make
//! sense in Python (accepted, reported as not supported, never silently ignored).

use super::yaml::to_value;
use super::Value;

/// `include_file_as_baseline_config: other.yaml` (one level, as nequip).
pub const INCLUDE_KEY: &str = "include_file_as_baseline_config";

/// The default model builders (since nequip 0.6.0 stress is on by default).
pub const DEFAULT_MODEL_BUILDERS: &[&str] =
    &["SimpleIrrepsConfig", "EnergyModel", "PerSpeciesRescale", "StressForceOutput", "RescaleEnergyEtc"];

/// `"cuda"` when libtorch sees a GPU, else `"cpu"` (nequip's `get_default_device_name`).
pub fn default_device() -> &'static str {
    if tch::Cuda::is_available() {
        "cuda"
    } else {
        "cpu"
    }
}

/// The defaults layer, in nequip's order. Every key here counts as used.
pub fn default_config() -> Vec<(&'static str, Value)> {
    vec![
        ("root", to_value("./")),
        ("tensorboard", to_value(&false)),
        ("wandb", to_value(&false)),
        ("model_builders", to_value(DEFAULT_MODEL_BUILDERS)),
        ("dataset_statistics_stride", to_value(&1)),
        ("device", to_value(default_device())),
        ("default_dtype", to_value("float64")),
        ("model_dtype", to_value("float32")),
        ("allow_tf32", to_value(&true)),
        ("verbose", to_value("INFO")),
        ("model_debug_mode", to_value(&false)),
        ("equivariance_test", to_value(&false)),
        ("grad_anomaly_mode", to_value(&false)),
        ("gpu_oom_offload", to_value(&false)),
        ("append", to_value(&false)),
        ("warn_unused", to_value(&false)),
        ("_jit_bailout_depth", to_value(&2)),
        ("_jit_fusion_strategy", to_value(&[("DYNAMIC", 3)])),
        ("_jit_fuser", to_value("fuser1")),
    ]
}

/// Keys of Python-only features: accepted in users' files (so nequip configs load unchanged)
/// and reported by [`python_only_note`] when they ask for something nequip-rs does not do.
pub const PYTHON_ONLY: &[(&str, &str)] = &[
    ("wandb", "Weights & Biases logging"),
    ("wandb_project", "Weights & Biases logging"),
    ("wandb_watch", "Weights & Biases logging"),
    ("wandb_watch_kwargs", "Weights & Biases logging"),
    ("wandb_resume", "Weights & Biases logging"),
    ("_jit_bailout_depth", "TorchScript tuning"),
    ("_jit_fusion_strategy", "TorchScript tuning"),
    ("_jit_fuser", "TorchScript tuning"),
    ("e3nn_optimization_defaults", "e3nn code generation flags"),
    ("dataloader_num_workers", "PyTorch DataLoader worker processes"),
    ("allow_tf32", "TF32 matmuls (CUDA only)"),
];

/// Python-only keys nobody consumes that are refused when switched on (`tensorboard: true`;
/// see `nequip_core::train::preflight`), accepted when off.
pub const REFUSED_WHEN_ON: &[&str] = &["tensorboard"];

/// Whether a key is accepted even though no component consumes it.
pub fn is_accepted_without_consumer(key: &str) -> bool {
    key == INCLUDE_KEY || REFUSED_WHEN_ON.contains(&key) || PYTHON_ONLY.iter().any(|(k, _)| *k == key)
}

/// A note for a Python-only key set to something other than "off", else `None`.
pub fn python_only_note(key: &str, value: &Value) -> Option<String> {
    let (_, what) = PYTHON_ONLY.iter().find(|(k, _)| *k == key)?;
    let off = matches!(value, Value::Null | Value::Bool(false))
        || default_config().iter().any(|(k, v)| *k == key && v == value);
    (!off).then(|| format!("`{key}` ({what}) is a Python-only feature: accepted but not supported by nequip-rs; it has no effect on the run"))
}
