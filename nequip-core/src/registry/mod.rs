//! The registry: every model builder, dataset, module, loss, metric, optimizer and scheduler,
//! registered with `#[builder(name = ..., kind = ...)]` (which submits a [`Registration`] to
//! `inventory`). Replaces nequip's name lookups (`load_callable` in `nequip/model/_build.py`,
//! `instantiate_from_cls_name` for `torch.optim` / losses).
//!
//! * Registration order is unspecified: every listing is sorted by (kind, name).
//! * The name map is built once, lazily; two registrations with the same name (or alias) in the
//!   same kind are an error naming both sources ([`RegistryError::Duplicate`]).
//! * An unknown name lists the registered names of that kind and the closest match.
//!
//! **Linker pitfall.** rustc links a dependency only if some code names it, so a plugin crate
//! nobody names loses all its registrations. Each plugin crate exposes a `link()` anchor and
//! binaries call the anchors of every plugin crate they want (`nequip_plugins::link()`); see the README.

mod model_builder;

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::OnceLock;

pub use model_builder::{BuildContext, BuildError, Inject, IntoBuildOutput, ModelBuilderFactory, TrainingSet};

use crate::config::KeySpec;

/// The kinds of registered items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    ModelBuilder,
    Dataset,
    NnModule,
    Loss,
    Metric,
    Optimizer,
    LrScheduler,
    /// Radial bases and cutoffs (`BesselBasis`, `PolynomialCutoff`): the nested `basis` / `cutoff` of `RadialBasisEdgeEncoding`.
    RadialFunction,
}

impl Kind {
    pub const ALL: [Kind; 8] = [Kind::ModelBuilder, Kind::Dataset, Kind::NnModule, Kind::Loss, Kind::Metric, Kind::Optimizer, Kind::LrScheduler, Kind::RadialFunction];

    /// The name used in `#[builder(kind = ...)]` and `nequip list KIND`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ModelBuilder => "model_builder",
            Kind::Dataset => "dataset",
            Kind::NnModule => "nn_module",
            Kind::Loss => "loss",
            Kind::Metric => "metric",
            Kind::Optimizer => "optimizer",
            Kind::LrScheduler => "lr_scheduler",
            Kind::RadialFunction => "radial_function",
        }
    }

    /// Plural, for messages ("registered losses: ...").
    pub fn plural(self) -> &'static str {
        match self {
            Kind::ModelBuilder => "model builders",
            Kind::Dataset => "datasets",
            Kind::NnModule => "nn modules",
            Kind::Loss => "losses",
            Kind::Metric => "metrics",
            Kind::Optimizer => "optimizers",
            Kind::LrScheduler => "lr schedulers",
            Kind::RadialFunction => "radial functions",
        }
    }

    /// `loss`, `losses`, `lr-scheduler`, `model_builders`, ... → the kind.
    pub fn parse(s: &str) -> Option<Kind> {
        let s = s.trim().to_lowercase().replace(['-', ' '], "_");
        Kind::ALL.into_iter().find(|k| k.as_str() == s || k.plural().replace(' ', "_") == s)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One registered item. Created by `#[builder]`; all fields are `'static` constants.
pub struct Registration {
    pub kind: Kind,
    /// The name users write in YAML (exactly nequip's strings).
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    /// The item's doc comment (first line = summary).
    pub doc: &'static str,
    pub keys: &'static [KeySpec],
    /// A fixed key prefix (`optimizer`, `dataset`, ...).
    pub prefix: Option<&'static str>,
    /// Whether the name is an implicit key prefix (nequip: classes yes, functions no).
    pub class_prefix: bool,
    /// The crate that registered it, and where.
    pub krate: &'static str,
    pub module_path: &'static str,
    pub file: &'static str,
    pub line: u32,
    /// The kind-specific factory (see [`KindTag::Factory`]).
    pub factory: &'static (dyn Any + Send + Sync),
}

inventory::collect!(Registration);

impl Registration {
    /// First line of the doc comment.
    pub fn summary(&self) -> &'static str {
        self.doc.lines().next().unwrap_or("")
    }
    /// `crate (file:line)`
    pub fn source(&self) -> String {
        format!("{} ({}:{})", self.krate, self.file, self.line)
    }
    /// The typed factory, if this registration is of kind `K`.
    pub fn factory<K: KindTag>(&self) -> Option<&'static K::Factory> {
        (self.kind == K::KIND).then(|| self.factory.downcast_ref::<K::Factory>()).flatten()
    }
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration").field("kind", &self.kind).field("name", &self.name).field("source", &self.source()).finish()
    }
}

/// Marker types for the kinds, tying each to its factory type.
pub mod kind {
    pub struct ModelBuilder;
    pub struct Dataset;
    pub struct NnModule;
    pub struct Loss;
    pub struct Metric;
    pub struct Optimizer;
    pub struct LrScheduler;
    pub struct RadialFunction;
}

/// A kind and the type of its factories. Each subsystem implements this for its kind.
pub trait KindTag: 'static {
    const KIND: Kind;
    type Factory: Any + Send + Sync;
}

impl KindTag for kind::ModelBuilder {
    const KIND: Kind = Kind::ModelBuilder;
    type Factory = ModelBuilderFactory;
}

/// How a registered struct is built: implemented for each struct registered with kind `K`
/// (usually through a blanket impl over the kind's trait, e.g. every `LossFunction`).
pub trait Component<K: KindTag> {
    const FACTORY: K::Factory;
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegistryError {
    #[error("duplicate {kind} name `{name}`: registered by {first} and by {second}")]
    Duplicate { kind: Kind, name: String, first: String, second: String },
    #[error("unknown {kind} `{name}`{}; registered {}: {}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(), kind.plural(), if registered.is_empty() { "(none)".to_string() } else { registered.join(", ") })]
    Unknown { kind: Kind, name: String, suggestion: Option<String>, registered: Vec<String> },
}

/// Details of an unknown-name lookup (also used by the resolver's nested builders).
pub struct NotFound {
    pub suggestion: Option<String>,
    pub registered: Vec<String>,
}

struct Index {
    by_name: BTreeMap<(Kind, &'static str), &'static Registration>,
    duplicates: Vec<RegistryError>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut all: Vec<&'static Registration> = inventory::iter::<Registration>.into_iter().collect();
        all.sort_by(|a, b| (a.kind, a.name, a.krate, a.file, a.line).cmp(&(b.kind, b.name, b.krate, b.file, b.line)));
        let mut by_name = BTreeMap::new();
        let mut duplicates = Vec::new();
        for r in all {
            for n in std::iter::once(r.name).chain(r.aliases.iter().copied()) {
                if let Some(prev) = by_name.insert((r.kind, n), r) {
                    by_name.insert((r.kind, n), prev);
                    duplicates.push(RegistryError::Duplicate { kind: r.kind, name: n.to_string(), first: prev.source(), second: r.source() });
                }
            }
        }
        Index { by_name, duplicates }
    })
}

/// Registry consistency: every duplicate name. Checked by `nequip list` and the CLI at start.
pub fn check() -> Result<(), Vec<RegistryError>> {
    let d = &index().duplicates;
    if d.is_empty() {
        Ok(())
    } else {
        Err(d.clone())
    }
}

/// Every registration (aliases not repeated), sorted by kind then name.
pub fn all() -> Vec<&'static Registration> {
    let mut v: Vec<&'static Registration> = index().by_name.iter().filter(|((_, n), r)| *n == r.name).map(|(_, r)| *r).collect();
    v.dedup_by(|a, b| std::ptr::eq(*a, *b));
    v
}

/// Registrations of one kind, sorted by name.
pub fn of_kind(kind: Kind) -> Vec<&'static Registration> {
    all().into_iter().filter(|r| r.kind == kind).collect()
}

/// Look up a name (or alias) of a kind.
pub fn find(kind: Kind, name: &str) -> Result<&'static Registration, NotFound> {
    if let Some(r) = index().by_name.get(&(kind, name)) {
        return Ok(r);
    }
    let registered: Vec<String> = of_kind(kind).iter().map(|r| r.name.to_string()).collect();
    let names = index().by_name.keys().filter(|(k, _)| *k == kind).map(|(_, n)| *n);
    Err(NotFound { suggestion: crate::suggest::closest(name, names), registered })
}

/// [`find`] with a [`RegistryError`].
pub fn lookup(kind: Kind, name: &str) -> Result<&'static Registration, RegistryError> {
    find(kind, name).map_err(|nf| RegistryError::Unknown { kind, name: name.to_string(), suggestion: nf.suggestion, registered: nf.registered })
}

/// Every key name a config may contain for registered items: bare names, and each name with
/// the item's class prefix and fixed prefix. Used for "did you mean" suggestions.
pub fn known_key_names() -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    for r in all() {
        for k in r.keys {
            out.insert(k.name.to_string());
            if r.class_prefix {
                out.insert(format!("{}_{}", r.name, k.name));
            }
            if let Some(p) = r.prefix {
                out.insert(format!("{p}_{}", k.name));
            }
        }
    }
    out.into_iter().collect()
}
