//! dtypes and devices of a model from its config keys (`default_dtype`, `model_dtype`,
//! `device`), as nequip's `dtype_from_name` and the trainer's device handling.

use tch::{Device, Kind};

use crate::config::{Config, Value};
use crate::nn::{IrrepsDict, ModelError, ModuleContext};

/// `float32` / `float64` (also `torch.float64`, `double`, `float`) → the tch kind.
pub fn kind_from_name(name: &str) -> Option<Kind> {
    match name.trim().trim_start_matches("torch.") {
        "float32" | "float" => Some(Kind::Float),
        "float64" | "double" => Some(Kind::Double),
        _ => None,
    }
}

fn kind_key(config: &Config, key: &str, default: &str) -> Result<Kind, ModelError> {
    let v = config.take(key, "model_from_config").cloned().unwrap_or(Value::String(default.into()));
    let s = v.as_str().map(str::to_string).unwrap_or_else(|| crate::config::yaml::render(&v));
    kind_from_name(&s).ok_or_else(|| ModelError::invalid("model_from_config", format!("`{key}` must be float32 or float64, got {s}")))
}

/// `device: cpu | cuda | cuda:N` → the tch device; a CUDA device without CUDA is an error.
pub fn device_from_name(name: &str) -> Result<Device, ModelError> {
    let bad = || ModelError::invalid("device", format!("`device` must be cpu, cuda or cuda:N, got {name:?}"));
    let d = match name.trim() {
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        s => match s.strip_prefix("cuda:") {
            Some(n) => Device::Cuda(n.parse().map_err(|_| bad())?),
            None => return Err(bad()),
        },
    };
    if let Device::Cuda(i) = d {
        if !tch::Cuda::is_available() || i >= tch::Cuda::device_count() as usize {
            return Err(ModelError::invalid("device", format!("`device: {name}` asked for, but libtorch sees {} CUDA device(s)", if tch::Cuda::is_available() { tch::Cuda::device_count() } else { 0 })));
        }
    }
    Ok(d)
}

/// `(model_dtype, default_dtype, device)` of a config (nequip: error when the default dtype
/// is float32 and the model float64).
pub fn dtypes(config: &Config) -> Result<(Kind, Kind, Device), ModelError> {
    let default = kind_key(config, "default_dtype", "float64")?;
    let model = kind_key(config, "model_dtype", "float32")?;
    if default == Kind::Float && model == Kind::Double {
        return Err(ModelError::invalid("model_from_config", "default_dtype=float32, but model_dtype=float64 is a higher precision; change default_dtype to float64"));
    }
    let dev = config.take("device", "model_from_config").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_else(|| crate::config::defaults::default_device().into());
    Ok((model, default, device_from_name(&dev)?))
}

/// The module context of layer `name` of a model built from `config`.
pub fn module_context(config: &Config, name: &str, irreps_in: IrrepsDict) -> Result<ModuleContext, ModelError> {
    let (kind, default_kind, device) = dtypes(config)?;
    Ok(ModuleContext::new(name, irreps_in, kind, default_kind, device))
}
