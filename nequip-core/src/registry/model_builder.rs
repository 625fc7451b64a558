//! Model builders: functions registered with `#[builder(kind = model_builder)]`, called in the
//! order of the `model_builders` key with arguments injected by parameter name, as
//! `nequip/model/_build.py::model_from_config` does.

use crate::config::{AutoInit, Config, Request, ResolveError};

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
    pub call: fn(&mut BuildContext<'_>) -> Result<(), BuildError>,
}

impl ModelBuilderFactory {
    pub fn takes(&self, p: Inject) -> bool {
        self.params.contains(&p)
    }
}

/// What a model builder call sees.
pub struct BuildContext<'a> {
    pub config: &'a mut Config,
    /// The registered name of the builder being called.
    pub builder: &'static str,
    pub initialize: bool,
    pub deploy: bool,
}

impl<'a> BuildContext<'a> {
    pub fn new(config: &'a mut Config, builder: &'static str, initialize: bool, deploy: bool) -> Self {
        BuildContext { config, builder, initialize, deploy }
    }

    /// Resolve a builder's `AutoInit` parameter struct from the config. A model builder is a
    /// function in nequip, so it has no implicit class-name prefix; the struct's fixed prefix applies.
    pub fn resolve<T: AutoInit>(&mut self) -> Result<T, BuildError> {
        let mut req = Request::new(self.builder, self.builder, T::KEYS).all(crate::config::Args::Config(self.config));
        req.prefixes.extend(T::PREFIX.map(str::to_string));
        let r = crate::config::resolve(&req)?;
        Ok(r.into_typed()?)
    }
}

/// Errors raised by model builders.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
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

impl<T: IntoBuildOutput, E: Into<BuildError>> IntoBuildOutput for Result<T, E> {
    fn into_build_output(self, ctx: &mut BuildContext<'_>) -> Result<(), BuildError> {
        self.map_err(Into::into)?.into_build_output(ctx)
    }
}
