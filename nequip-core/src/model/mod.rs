//! Building models from config: nequip's `model_from_config` (`nequip/model/_build.py`) —
//! the `model_builders` list run in order with arguments injected by name — and the helpers
//! builders share (`nequip/model/builder_utils.py`). [`testing`]: the model test kit
//! (nequip's `BaseModelTests` / `BaseEnergyModelTests`, `nequip/utils/unittests/model_tests.py`).

pub mod build;
pub mod dtype;
pub mod testing;

pub use build::{check_builder_order, model_from_config, with_seed, BuildOptions, ModelBuildError};
pub use dtype::{kind_from_name, module_context};
