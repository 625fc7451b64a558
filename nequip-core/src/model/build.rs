//! `model_from_config`: port of `nequip/model/_build.py` (nequip 0.6.2).
//!
//! 1. The type mapper (from the dataset, else from the config's `chemical_symbols` /
//!    `type_names` / ...) writes `num_types`, `type_names`, `type_to_chemical_symbol`.
//! 2. `model_builders` is checked as a whole before anything is built ([`check_builder_order`]):
//!    every name registered, the first builder does not take `model`, builders after the
//!    first `graph_model` one take `graph_model` and not `model`, `dataset` needs `initialize`.
//! 3. Builders run in order with their parameters injected by name (`config`, `initialize`,
//!    `dataset`, `deploy`, `model`, `graph_model`); once a builder has returned a model every
//!    later one must take it. The model is wrapped in a [`GraphModel`] (`model_dtype`,
//!    `model_input_fields`) before the first `graph_model` builder.

use crate::config::{Args, AutoInit, Config, Request, Source, Value};
use crate::data::{DataError, TypeMapper, TypeMapperOptions};
use crate::nn::{GraphModel, IrrepsDict, ModelError};
use crate::registry::{self, kind, BuildContext, BuildError, Inject, Kind, Registration, RegistryError, TrainingSet};

/// How to build: nequip's `model_from_config(config, initialize, dataset, deploy)`.
#[derive(Clone, Copy, Default)]
pub struct BuildOptions<'a> {
    /// Fresh training: compute dataset statistics (else placeholders, filled by a state dict).
    pub initialize: bool,
    pub deploy: bool,
    pub dataset: Option<TrainingSet<'a>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelBuildError {
    #[error("model_builders: {0}")]
    Registry(#[from] RegistryError),
    #[error("model_builders: {0}")]
    Order(String),
    #[error("model builder {builder}: {source}")]
    Builder {
        builder: String,
        #[source]
        source: BuildError,
    },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("model_builders: {0}")]
    Invalid(String),
    #[error("model_builders: no builder returned a model (builders: {})", builders.join(", "))]
    NoModel { builders: Vec<String> },
}

/// The `model_builders` names of a config (nequip's default list when absent).
pub fn builder_names(config: &Config) -> Result<Vec<String>, ModelBuildError> {
    let v = config.take("model_builders", "model_from_config").cloned().unwrap_or(Value::Sequence(vec![]));
    let Value::Sequence(items) = v else {
        return Err(ModelBuildError::Invalid(format!("expected a list of builder names, found {}", crate::config::yaml::render(&v))));
    };
    items.iter().map(|x| x.as_str().map(str::to_string).ok_or_else(|| ModelBuildError::Invalid(format!("every entry must be a builder name, found {}", crate::config::yaml::render(x))))).collect()
}

/// Check the whole list before building (see the module docs); the registrations in order.
pub fn check_builder_order(names: &[String]) -> Result<Vec<&'static Registration>, ModelBuildError> {
    let regs: Vec<&'static Registration> = names.iter().map(|n| registry::lookup(Kind::ModelBuilder, n)).collect::<Result<_, _>>()?;
    let mut first_graph: Option<&str> = None;
    for (i, r) in regs.iter().enumerate() {
        let f = r.factory::<kind::ModelBuilder>().ok_or_else(|| ModelBuildError::Invalid(format!("`{}` has no builder function", r.name)))?;
        if f.takes(Inject::Dataset) && !f.takes(Inject::Initialize) {
            return Err(ModelBuildError::Order(format!("{} requests `dataset` without requesting `initialize`", r.name)));
        }
        if i == 0 && f.takes(Inject::Model) {
            return Err(ModelBuildError::Order(format!("{} takes the model of an earlier builder, so it cannot come first: put a builder that creates the model (EnergyModel, PairPotential, ...) before it", r.name)));
        }
        match first_graph {
            Some(g) if f.takes(Inject::Model) => {
                return Err(ModelBuildError::Order(format!("{} takes `model`, so it must come before {g} (from {g} on, builders take `graph_model`)", r.name)));
            }
            Some(g) if !f.takes(Inject::GraphModel) => {
                return Err(ModelBuildError::Order(format!("{} must come before {g}: after a `graph_model` builder every builder must take `graph_model`", r.name)));
            }
            None if f.takes(Inject::GraphModel) => first_graph = Some(r.name),
            _ => {}
        }
    }
    Ok(regs)
}

/// Step 1: the type mapper writes `num_types`, `type_names`, `type_to_chemical_symbol`.
fn set_types(config: &mut Config, dataset: Option<TrainingSet<'_>>) -> Result<(), ModelBuildError> {
    let tm = match dataset {
        Some(d) => Some(d.dataset.type_mapper.clone()),
        None => {
            let req = Request::new("TypeMapper", "TypeMapper", TypeMapperOptions::KEYS).all(Args::Config(config));
            match crate::config::resolve::resolve_typed::<TypeMapperOptions>(&req) {
                Ok((o, _)) => TypeMapper::new(&o).ok(),
                Err(_) => None,
            }
        }
    };
    let Some(tm) = tm else { return Ok(()) };
    let names: Vec<Value> = tm.type_names.iter().map(|s| Value::String(s.clone())).collect();
    if let Some(n) = config.get("num_types").and_then(Value::as_u64) {
        if n as usize != tm.num_types() {
            return Err(ModelBuildError::Invalid(format!("num_types is {n} in the config but the type mapper has {} types ({})", tm.num_types(), tm.type_names.join(", "))));
        }
    }
    if let Some(Value::Sequence(s)) = config.get("type_names") {
        if *s != names {
            return Err(ModelBuildError::Invalid(format!("type_names in the config ({}) differ from the type mapper's ({})", crate::config::yaml::render(&Value::Sequence(s.clone())), tm.type_names.join(", "))));
        }
    }
    let who = Source::SetBy("model_from_config".into());
    config.set("num_types", Value::from(tm.num_types() as u64), who.clone());
    config.set("type_names", Value::Sequence(names), who.clone());
    if let Some(t2s) = &tm.type_to_chemical_symbol {
        let m = t2s.iter().map(|(t, s)| (Value::from(*t as u64), Value::String(s.clone()))).collect();
        config.set("type_to_chemical_symbol", Value::Mapping(m), who);
    }
    for k in ["num_types", "type_names", "type_to_chemical_symbol"] {
        let _ = config.take(k, "model_from_config");
    }
    Ok(())
}

/// `torch.manual_seed(seed)` then `f()`, with no other seeded build in between: libtorch's
/// global generator is shared by all threads of a process, so two models initialised at the
/// same time would draw each other's numbers. Every seeded model construction goes through
/// here (the trainer's, tests').
pub fn with_seed<T>(seed: i64, f: impl FnOnce() -> T) -> T {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    tch::manual_seed(seed);
    f()
}

/// nequip's `model_from_config(config, initialize, dataset, deploy)`.
pub fn model_from_config(config: &mut Config, opts: BuildOptions<'_>) -> Result<GraphModel, ModelBuildError> {
    set_types(config, opts.dataset)?;
    let (model_dtype, _, _) = crate::model::dtype::dtypes(config)?;
    let names = builder_names(config)?;
    let regs = check_builder_order(&names)?;
    let mut ctx = BuildContext::new(config, "model_from_config", opts.initialize, opts.deploy);
    ctx.dataset = opts.dataset;
    let mut wrapped = false;
    for r in regs {
        let f = r.factory::<kind::ModelBuilder>().expect("checked by check_builder_order");
        if f.takes(Inject::GraphModel) && !wrapped {
            let model = ctx.model.take().ok_or_else(|| ModelBuildError::Order(format!("{} takes `graph_model`, but no earlier builder returned a model", r.name)))?;
            ctx.graph_model = Some(wrap(ctx.config, model, model_dtype)?);
            wrapped = true;
        }
        if ctx.model.is_some() && !f.takes(Inject::Model) && !f.takes(Inject::GraphModel) {
            return Err(ModelBuildError::Order(format!("{} must come before the builder that created the model: every builder after the first one returning a model must take `model`", r.name)));
        }
        if opts.initialize && f.takes(Inject::Dataset) && opts.dataset.is_none() && f.dataset_required {
            return Err(ModelBuildError::Builder { builder: r.name.into(), source: BuildError::Invalid { builder: r.name.into(), message: "requires the dataset to initialize, but none was given".into() } });
        }
        ctx.builder = r.name;
        (f.call)(&mut ctx).map_err(|source| ModelBuildError::Builder { builder: r.name.into(), source })?;
        if f.takes(Inject::GraphModel) && ctx.graph_model.is_none() {
            return Err(ModelBuildError::Invalid(format!("{} did not return a GraphModel", r.name)));
        }
    }
    match (ctx.graph_model.take(), ctx.model.take()) {
        (Some(g), _) => Ok(g),
        (None, Some(m)) => Ok(wrap(ctx.config, m, model_dtype)?),
        (None, None) => Err(ModelBuildError::NoModel { builders: names }),
    }
}

fn wrap(config: &Config, model: Box<dyn crate::nn::GraphModule>, model_dtype: tch::Kind) -> Result<GraphModel, ModelBuildError> {
    let mut fields = IrrepsDict::new();
    if let Some(Value::Mapping(m)) = config.take("model_input_fields", "GraphModel") {
        for (k, v) in m {
            let k = crate::config::yaml::key_str(k);
            let ir = match v {
                Value::Null => None,
                Value::String(s) => Some(s.parse().map_err(ModelError::from)?),
                other => return Err(ModelBuildError::Invalid(format!("model_input_fields.{k}: expected an irreps string or null, got {}", crate::config::yaml::render(other)))),
            };
            fields.insert(k, ir);
        }
    }
    Ok(GraphModel::new(model, model_dtype, &fields)?)
}
