//! Registered modules: the `nn_module` kind (graph modules built from config keys, nequip's
//! `instantiate(builder, prefix=name, positional_args={irreps_in}, optional_args=params,
//! all_args=config)` in `SequentialGraphNetwork.from_parameters`) and the `radial_function`
//! kind (the nested `basis` / `cutoff` of `RadialBasisEdgeEncoding`: `BesselBasis`,
//! `PolynomialCutoff`, `e3nn_basis`).
//!
//! A module struct implements [`NnModule`] and is registered with
//! `#[builder(name = "AtomwiseLinear", kind = nn_module, keys = AtomwiseLinearKeys)]`;
//! its keys are resolved with prefixes `[ClassName, layer name]` by the one resolver.

use tch::Tensor;

use super::graph::{GraphModule, ModelError, ModuleContext, NamedTensor};
use crate::config::resolve::Resolved;
use crate::config::{Args, AutoInit, Config, Mapping, Request, Resolution, Value};
use crate::registry::{self, kind, Component, Kind, KindTag};

/// A graph module that can be built from config keys.
pub trait NnModule: GraphModule + Sized + 'static {
    type Keys: AutoInit;
    /// Build from the resolved keys (`r` has the nested builders' resolutions).
    fn build(keys: Self::Keys, ctx: &ModuleContext, r: &Resolution) -> Result<Self, ModelError>;
}

/// The factory of a registered graph module.
pub struct NnModuleFactory {
    pub build: fn(&Resolution, &ModuleContext) -> Result<Box<dyn GraphModule>, ModelError>,
}

impl KindTag for kind::NnModule {
    const KIND: Kind = Kind::NnModule;
    type Factory = NnModuleFactory;
}

fn build_module_erased<T: NnModule>(r: &Resolution, ctx: &ModuleContext) -> Result<Box<dyn GraphModule>, ModelError> {
    Ok(Box::new(T::build(r.into_typed::<T::Keys>()?, ctx, r)?))
}

impl<T: NnModule> Component<kind::NnModule> for T {
    const FACTORY: NnModuleFactory = NnModuleFactory { build: build_module_erased::<T> };
}

/// A layer of a `SequentialGraphNetwork.from_parameters` spec: a registered module class and
/// its fixed parameters (nequip's `name: Builder` or `name: (Builder, params)`).
#[derive(Debug, Clone)]
pub struct LayerSpec {
    pub name: String,
    pub class: String,
    pub params: Mapping,
}

impl LayerSpec {
    pub fn new(name: &str, class: &str) -> Self {
        LayerSpec { name: name.into(), class: class.into(), params: Mapping::new() }
    }
    /// A fixed parameter (beats every config key, like nequip's `optional_args`).
    pub fn param(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.params.insert(Value::String(key.into()), value.into());
        self
    }
}

/// Build one registered module for layer `spec.name` with nequip's precedence: `config[k]` <
/// `config[Class_k]` < `config[name_k]` < `spec.params`; the previous irreps in `ctx`.
pub fn build_module(spec: &LayerSpec, config: &Config, ctx: &ModuleContext) -> Result<Box<dyn GraphModule>, ModelError> {
    let reg = registry::lookup(Kind::NnModule, &spec.class)?;
    let factory = reg
        .factory::<kind::NnModule>()
        .ok_or_else(|| ModelError::invalid(&spec.name, format!("`{}` is registered as an nn module but has no module factory", spec.class)))?;
    let params_name = format!("{} parameters", spec.name);
    let req = Request::for_registration(format!("{} ({})", spec.name, reg.name), reg)
        .prefix(spec.name.clone())
        .all(Args::Config(config))
        .optional(Args::Map { map: &spec.params, name: &params_name });
    let r = crate::config::resolve(&req)?;
    (factory.build)(&r, &ctx.with(&spec.name, ctx.irreps_in.clone()))
}

/// A function of edge lengths `r [E]` (a radial basis `[E, n]` or a cutoff `[E]`), with
/// its own parameters (names relative to it, e.g. `bessel_weights`).
pub trait RadialFunction: std::fmt::Debug + Send {
    fn forward(&self, r: &Tensor) -> Tensor;
    fn own_tensors(&self) -> Vec<NamedTensor> {
        Vec::new()
    }
    /// Output width of a basis (`num_basis`); 1 for a cutoff.
    fn num_basis(&self) -> i64;
}

/// A radial function buildable from keys; register with `kind = radial_function`.
pub trait RadialBuilder: RadialFunction + Sized + 'static {
    type Keys: AutoInit;
    fn build(keys: Self::Keys, ctx: &ModuleContext) -> Result<Self, ModelError>;
}

pub struct RadialFactory {
    pub build: fn(&Resolution, &ModuleContext) -> Result<Box<dyn RadialFunction>, ModelError>,
}

impl KindTag for kind::RadialFunction {
    const KIND: Kind = Kind::RadialFunction;
    type Factory = RadialFactory;
}

fn build_radial_erased<T: RadialBuilder>(r: &Resolution, ctx: &ModuleContext) -> Result<Box<dyn RadialFunction>, ModelError> {
    Ok(Box::new(T::build(r.into_typed::<T::Keys>()?, ctx)?))
}

impl<T: RadialBuilder> Component<kind::RadialFunction> for T {
    const FACTORY: RadialFactory = RadialFactory { build: build_radial_erased::<T> };
}

/// Build the nested radial function named by key `x` of `r` (`basis`, `cutoff`), with its
/// resolved keys and an explicit `x_kwargs` on top.
pub fn build_nested_radial(r: &Resolution, x: &str, ctx: &ModuleContext) -> Result<Box<dyn RadialFunction>, ModelError> {
    let name = match r.get(x) {
        Some(Value::String(s)) => s.clone(),
        other => return Err(ModelError::invalid(&ctx.name, format!("`{x}` must name a radial function, got {}", other.map(crate::config::yaml::render).unwrap_or_else(|| "nothing".into())))),
    };
    let reg = registry::lookup(Kind::RadialFunction, &name)?;
    let factory = reg.factory::<kind::RadialFunction>().ok_or_else(|| ModelError::invalid(&ctx.name, format!("`{name}` has no radial-function factory")))?;
    let mut sub = r.nested.get(x).cloned().ok_or_else(|| ModelError::invalid(&ctx.name, format!("`{x}` was not resolved as a nested builder")))?;
    if let Some(Value::Mapping(kw)) = r.get(&format!("{x}_kwargs")) {
        for (k, v) in kw {
            let k = crate::config::yaml::key_str(k);
            // the merged kwargs repeat the resolved values: keep their origins (file positions)
            if reg.keys.iter().any(|s| s.name == k) && sub.values.get(&k).map(|r| &r.value) != Some(v) {
                sub.values.insert(k, Resolved { value: v.clone(), origin: crate::config::Origin::Nested });
            }
        }
    }
    (factory.build)(&sub, ctx)
}
