//! Model builders: functions registered with `#[builder(kind = model_builder)]`, called in the
//! order of the `model_builders` key with arguments injected by parameter name, as
//! `nequip/model/_build.py::model_from_config` does.

use crate::config::{AutoInit, Config, Request, ResolveError};
use crate::data::InMemoryDataset;
use crate::nn::graph::{GraphModule, ModelError};
use crate::nn::graph_model::GraphModel;

/// An injected parameter of a model builder (in declaration order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Inject {
    /// `config`: the config (builders may add keys).
    Config,
    /// `initialize`: true for fresh training (compute dataset statistics).
    Initialize,
    /// `dataset`: the training set (requires `initialize`).
    Dataset,
    /// `deploy`: true when building for deployment.
    Deploy,
    /// `model`: the previous builder's model.
    Model,
    /// `graph_model`: the wrapped top-level model.
    GraphModel,
    /// A struct of keys resolved from the config (its `AutoInit` keys).
    Keys,
}

impl Inject {
    pub fn as_str(self) -> &'static str {
        match self {
            Inject::Config => "config",
            Inject::Initialize => "initialize",
            Inject::Dataset => "dataset",
            Inject::Deploy => "deploy",
            Inject::Model => "model",
            Inject::GraphModel => "graph_model",
            Inject::Keys => "<keys>",
        }
    }
}

/// The factory of a model builder: its injected parameters and a type-erased call.
pub struct ModelBuilderFactory {
    pub params: &'static [Inject],
    /// `dataset` is taken without `Option` (nequip: no default): initializing without a dataset is an error.
    pub dataset_required: bool,
    pub call: fn(&mut BuildContext<'_>) -> Result<(), BuildError>,
}

impl ModelBuilderFactory {
    pub fn takes(&self, p: Inject) -> bool {
        self.params.contains(&p)
    }
}

/// The training set a builder may use for statistics (nequip's `dataset` argument: the
/// training subset). `indices` = the training frames (`None`: all frames).
#[derive(Clone, Copy)]
pub struct TrainingSet<'a> {
    pub dataset: &'a InMemoryDataset,
    pub indices: Option<&'a [usize]>,
}

/// What a model builder call sees.
pub struct BuildContext<'a> {
    pub config: &'a mut Config,
    /// The registered name of the builder being called.
    pub builder: &'static str,
    pub initialize: bool,
    pub deploy: bool,
    pub dataset: Option<TrainingSet<'a>>,
    /// The model returned by the previous builders (model phase).
    pub model: Option<Box<dyn GraphModule>>,
    /// The wrapped model (graph_model phase).
    pub graph_model: Option<GraphModel>,
}

impl<'a> BuildContext<'a> {
    pub fn new(config: &'a mut Config, builder: &'static str, initialize: bool, deploy: bool) -> Self {
        BuildContext { config, builder, initialize, deploy, dataset: None, model: None, graph_model: None }
    }

    /// Resolve a builder's `AutoInit` parameter struct from the config. A model builder is a
    /// function in nequip, so it has no implicit class-name prefix; the struct's fixed prefix applies.
    pub fn resolve<T: AutoInit>(&mut self) -> Result<T, BuildError> {
        let mut req = Request::new(self.builder, self.builder, T::KEYS).all(crate::config::Args::Config(self.config));
        req.prefixes.extend(T::PREFIX.map(str::to_string));
        let r = crate::config::resolve(&req)?;
        Ok(r.into_typed()?)
    }

    /// The injected `dataset` (nequip: `None` when not initializing or not given).
    pub fn dataset(&self) -> Option<TrainingSet<'a>> {
        self.dataset
    }

    /// The injected `model`: the previous builder's output.
    pub fn take_model(&mut self) -> Result<Box<dyn GraphModule>, BuildError> {
        self.model.take().ok_or_else(|| BuildError::Invalid { builder: self.builder.into(), message: "takes `model`, but no earlier builder returned one (a base builder such as EnergyModel must come first)".into() })
    }

    /// The injected `graph_model`.
    pub fn take_graph_model(&mut self) -> Result<GraphModel, BuildError> {
        self.graph_model.take().ok_or_else(|| BuildError::Invalid { builder: self.builder.into(), message: "takes `graph_model`, but there is no model yet".into() })
    }
}

/// Errors raised by model builders.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    StateDict(#[from] crate::nn::graph_model::StateDictError),
    #[error("{builder}: {message}")]
    Invalid { builder: String, message: String },
}

/// What a model builder function may return.
pub trait IntoBuildOutput {
    fn into_build_output(self, ctx: &mut BuildContext<'_>) -> Result<(), BuildError>;
}

/// A config-only builder (like `SimpleIrrepsConfig`).
impl IntoBuildOutput for () {
    fn into_build_output(self, _: &mut BuildContext<'_>) -> Result<(), BuildError> {
        Ok(())
    }
}

/// A model (the model phase): the next builder receives it as `model`.
impl IntoBuildOutput for Box<dyn GraphModule> {
    fn into_build_output(self, ctx: &mut BuildContext<'_>) -> Result<(), BuildError> {
        ctx.model = Some(self);
        Ok(())
    }
}

/// The wrapped model (the graph_model phase).
impl IntoBuildOutput for GraphModel {
    fn into_build_output(self, ctx: &mut BuildContext<'_>) -> Result<(), BuildError> {
        ctx.graph_model = Some(self);
        Ok(())
    }
}

impl<T: IntoBuildOutput, E: Into<BuildError>> IntoBuildOutput for Result<T, E> {
    fn into_build_output(self, ctx: &mut BuildContext<'_>) -> Result<(), BuildError> {
        self.map_err(Into::into)?.into_build_output(ctx)
    }
}
