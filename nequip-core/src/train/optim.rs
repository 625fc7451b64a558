//! Optimizers and learning-rate schedulers as registered kinds (`optimizer`, `lr_scheduler`):
//! nequip builds `torch.optim.<optimizer_name>` and `torch.optim.lr_scheduler.<name>` with
//! `instantiate(cls, prefix="optimizer" | "lr_scheduler", all_args=config)`, so the keys are
//! searched as `optimizer_kwargs.k` > `optimizer_k` > `Adam_k` > `k` (the one resolver). The
//! built-ins (Adam, AdamW, SGD, RMSprop; ReduceLROnPlateau, CosineAnnealingWarmRestarts) are
//! in `nequip-plugins` with torch's update rules; a downstream crate registers its own.

use tch::Tensor;

use crate::config::{Args, AutoInit, Config, Request, Resolution, ResolveError, Value};
use crate::registry::{self, kind, Component, Kind, KindTag, RegistryError};

/// A first-order optimizer over a fixed list of parameters (one parameter group).
pub trait Optimizer: Send {
    /// One update of `params` from their `.grad()` at learning rate `lr` (under `no_grad`).
    fn step(&mut self, params: &[Tensor], lr: f64);
    /// Its state (moments, step counts) as named tensors, for an exact restart.
    fn state(&self) -> Vec<(String, Tensor)>;
    /// Restore [`Optimizer::state`].
    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<(), String>;
}

/// A registered optimizer built from its resolved keys.
pub trait OptimizerBuilder: AutoInit + 'static {
    fn build(self) -> Box<dyn Optimizer>;
}

pub struct OptimizerFactory {
    pub build: fn(&Resolution) -> Result<Box<dyn Optimizer>, ResolveError>,
}

impl KindTag for kind::Optimizer {
    const KIND: Kind = Kind::Optimizer;
    type Factory = OptimizerFactory;
}

fn build_opt<T: OptimizerBuilder>(r: &Resolution) -> Result<Box<dyn Optimizer>, ResolveError> {
    Ok(r.into_typed::<T>()?.build())
}

impl<T: OptimizerBuilder> Component<kind::Optimizer> for T {
    const FACTORY: OptimizerFactory = OptimizerFactory { build: build_opt::<T> };
}

/// What a scheduler sees at its step points.
pub trait LrScheduler: Send {
    /// After each epoch's validation with the value of `metrics_key` (ReduceLROnPlateau).
    fn epoch_end(&mut self, _lr: f64, _metric: f64) -> f64 {
        _lr
    }
    /// After every training batch with the fractional epoch (CosineAnnealingWarmRestarts).
    fn batch_end(&mut self, _lr: f64, _epoch: f64) -> f64 {
        _lr
    }
    /// Its state as JSON, for an exact restart.
    fn state(&self) -> serde_json::Value;
    fn load_state(&mut self, state: &serde_json::Value) -> Result<(), String>;
}

/// A registered scheduler built from its keys and the initial learning rate.
pub trait SchedulerBuilder: AutoInit + 'static {
    fn build(self, base_lr: f64) -> Box<dyn LrScheduler>;
}

pub struct SchedulerFactory {
    pub build: fn(&Resolution, f64) -> Result<Box<dyn LrScheduler>, ResolveError>,
}

impl KindTag for kind::LrScheduler {
    const KIND: Kind = Kind::LrScheduler;
    type Factory = SchedulerFactory;
}

fn build_sched<T: SchedulerBuilder>(r: &Resolution, lr: f64) -> Result<Box<dyn LrScheduler>, ResolveError> {
    Ok(r.into_typed::<T>()?.build(lr))
}

impl<T: SchedulerBuilder> Component<kind::LrScheduler> for T {
    const FACTORY: SchedulerFactory = SchedulerFactory { build: build_sched::<T> };
}

#[derive(Debug, thiserror::Error)]
pub enum OptimError {
    #[error("optimizer_name: {0}")]
    Registry(RegistryError),
    #[error("lr_scheduler_name: {0}")]
    SchedRegistry(RegistryError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error("`{0}` is registered without a factory of its kind")]
    NoFactory(String),
}

/// nequip's optimizer instantiation: `optimizer_name` (default Adam) with `lr = learning_rate`.
pub fn optimizer_from_config(config: &Config, name: &str, lr: f64) -> Result<Box<dyn Optimizer>, OptimError> {
    let reg = registry::lookup(Kind::Optimizer, name).map_err(OptimError::Registry)?;
    let f = reg.factory::<kind::Optimizer>().ok_or_else(|| OptimError::NoFactory(name.into()))?;
    let req = Request::for_registration(format!("optimizer {}", reg.name), reg).prefix("optimizer").all(Args::Config(config)).positional("lr", Value::from(lr));
    Ok((f.build)(&crate::config::resolve(&req)?)?)
}

/// nequip's scheduler instantiation: `lr_scheduler_name` (`none` = no scheduler).
pub fn scheduler_from_config(config: &Config, name: &str, lr: f64) -> Result<Option<Box<dyn LrScheduler>>, OptimError> {
    if name == "none" {
        return Ok(None);
    }
    let reg = registry::lookup(Kind::LrScheduler, name).map_err(OptimError::SchedRegistry)?;
    let f = reg.factory::<kind::LrScheduler>().ok_or_else(|| OptimError::NoFactory(name.into()))?;
    let req = Request::for_registration(format!("lr_scheduler {}", reg.name), reg).prefix("lr_scheduler").all(Args::Config(config));
    Ok(Some((f.build)(&crate::config::resolve(&req)?, lr)?))
}

/// Per-parameter state buffers of an optimizer, lazily created like torch's `state[p]`.
#[derive(Default)]
pub struct Buffers {
    pub names: Vec<&'static str>,
    /// `bufs[k][i]`: buffer `names[k]` of parameter `i`.
    pub bufs: Vec<Vec<Option<Tensor>>>,
    pub step: i64,
}

impl Buffers {
    pub fn new(names: &[&'static str]) -> Self {
        Buffers { names: names.to_vec(), bufs: names.iter().map(|_| Vec::new()).collect(), step: 0 }
    }
    /// Buffer `k` of parameter `i`, created by `init` on first use.
    pub fn get(&mut self, k: usize, i: usize, init: impl FnOnce() -> Tensor) -> Tensor {
        let v = &mut self.bufs[k];
        if v.len() <= i {
            v.resize_with(i + 1, || None);
        }
        v[i].get_or_insert_with(init).shallow_clone()
    }
    pub fn has(&self, k: usize, i: usize) -> bool {
        self.bufs[k].get(i).is_some_and(Option::is_some)
    }
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("step".to_string(), Tensor::from(self.step))];
        for (k, n) in self.names.iter().enumerate() {
            for (i, t) in self.bufs[k].iter().enumerate() {
                if let Some(t) = t {
                    out.push((format!("{i}.{n}"), t.copy()));
                }
            }
        }
        out
    }
    pub fn load(&mut self, state: &[(String, Tensor)]) -> Result<(), String> {
        for (name, t) in state {
            if name == "step" {
                self.step = t.reshape([-1]).int64_value(&[0]);
                continue;
            }
            let (i, n) = name.split_once('.').ok_or_else(|| format!("bad optimizer state name `{name}`"))?;
            let i: usize = i.parse().map_err(|_| format!("bad optimizer state name `{name}`"))?;
            let k = self.names.iter().position(|x| *x == n).ok_or_else(|| format!("optimizer state `{name}` is not a buffer of this optimizer"))?;
            let v = &mut self.bufs[k];
            if v.len() <= i {
                v.resize_with(i + 1, || None);
            }
            v[i] = Some(t.copy());
        }
        Ok(())
    }
}
