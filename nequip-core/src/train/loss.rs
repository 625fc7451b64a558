//! Element-wise loss functions: the `torch.nn` losses that nequip's `SimpleLoss`
//! (`nequip/train/_loss.py`) instantiates by class name with `reduction="none"`.
//! Registered with `#[builder(kind = loss)]`; a downstream crate adds its own the same way.

use tch::Tensor;

use crate::config::{AutoInit, Resolution, ResolveError};
use crate::registry::{kind, Component, KindTag};

/// A loss computed per element (`reduction="none"`): same shape as `pred` and `target`.
pub trait ElementwiseLoss: Send + Sync {
    fn elementwise(&self, pred: &Tensor, target: &Tensor) -> Tensor;
}

/// The factory of a registered loss: build it from its resolved parameters.
pub struct LossFactory {
    pub build: fn(&Resolution) -> Result<Box<dyn ElementwiseLoss>, ResolveError>,
}

impl KindTag for kind::Loss {
    const KIND: crate::registry::Kind = crate::registry::Kind::Loss;
    type Factory = LossFactory;
}

fn build_erased<T: AutoInit + ElementwiseLoss + 'static>(r: &Resolution) -> Result<Box<dyn ElementwiseLoss>, ResolveError> {
    Ok(Box::new(r.into_typed::<T>()?))
}

/// Every config struct that is an [`ElementwiseLoss`] can be registered as a loss.
impl<T: AutoInit + ElementwiseLoss + 'static> Component<kind::Loss> for T {
    const FACTORY: LossFactory = LossFactory { build: build_erased::<T> };
}

/// Build a registered loss by name from its parameter mapping (nequip: `params` of a
/// `loss_coeffs` entry), with the class name as implicit prefix, as `instantiate_from_cls_name`.
pub fn build_loss(name: &str, params: &crate::config::Mapping) -> Result<Box<dyn ElementwiseLoss>, LossError> {
    let reg = crate::registry::lookup(crate::registry::Kind::Loss, name)?;
    let factory = reg.factory::<kind::Loss>().ok_or_else(|| LossError::NotALoss(name.to_string()))?;
    // nequip silently drops parameters the loss class does not take; a typo there would go
    // unnoticed, so an unknown parameter is an error here.
    let known: Vec<String> = reg.keys.iter().flat_map(|k| [k.name.to_string(), format!("{}_{}", reg.name, k.name)]).collect();
    for k in params.keys() {
        let k = crate::config::yaml::key_str(k);
        if !known.contains(&k) {
            let suggestion = crate::suggest::closest(&k, known.iter().map(String::as_str));
            return Err(LossError::UnknownParam { loss: name.to_string(), key: k, suggestion });
        }
    }
    let args = crate::config::Args::Map { map: params, name: "loss params" };
    let req = crate::config::Request::for_registration(format!("loss {name}"), reg).optional(args);
    let r = crate::config::resolve(&req)?;
    Ok((factory.build)(&r)?)
}

#[derive(Debug, thiserror::Error)]
pub enum LossError {
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error("{loss} has no parameter `{key}`{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownParam { loss: String, key: String, suggestion: Option<String> },
    #[error("`{0}` is registered as a loss but has no loss factory")]
    NotALoss(String),
}
