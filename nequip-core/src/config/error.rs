//! Errors of config loading and key resolution. Every variant names the file, key or component.

use std::path::PathBuf;

use super::yaml::Location;

/// A place in a config file, for messages: `path/to/file.yaml:12:3`.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    pub file: PathBuf,
    pub location: Option<Location>,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Some(l) => write!(f, "{}:{}", self.file.display(), l),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

fn place_prefix(place: &Option<Place>) -> String {
    place.as_ref().map(|p| format!("{p}: ")).unwrap_or_default()
}

fn did_you_mean(s: &Option<String>) -> String {
    s.as_ref().map(|s| format!(": did you mean `{s}`?")).unwrap_or_default()
}

/// One key nobody asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct UnusedKey {
    pub key: String,
    pub suggestion: Option<String>,
    pub place: Option<Place>,
}

impl std::fmt::Display for UnusedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}`{}`{}", place_prefix(&self.place), self.key, did_you_mean(&self.suggestion))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", file.display())]
    Io { file: PathBuf, source: std::io::Error },

    #[error("{}: YAML syntax error: {message}", Place { file: file.clone(), location: *location })]
    Syntax { file: PathBuf, location: Option<Location>, message: String },

    #[error("{}: the config must be a mapping of keys to values, found {found}", file.display())]
    NotAMapping { file: PathBuf, found: String },

    #[error("{place}: key `{key}`: {message}")]
    BadValue { place: Place, key: String, message: String },

    #[error("{}: nested `include_file_as_baseline_config` (in baseline {}) is not supported, as in nequip", file.display(), baseline.display())]
    NestedInclude { file: PathBuf, baseline: PathBuf },

    #[error("the following keys in the config were not used, did you make a typo?\n{}", keys.iter().map(|k| format!("  {k}")).collect::<Vec<_>>().join("\n"))]
    UnusedKeys { keys: Vec<UnusedKey> },

    #[error(transparent)]
    Resolve(#[from] ResolveError),
}

/// Errors of resolving a component's keys (nequip's `instantiate`).
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ResolveError {
    #[error("{component}: missing {key} (looked for {})", searched.join(", "))]
    MissingKey { component: String, key: String, searched: Vec<String> },

    #[error("{}{component}: key `{found_as}` (for `{key}`): {message}", place_prefix(place))]
    TypeMismatch { component: String, key: String, found_as: String, place: Option<Place>, message: String },

    #[error("{component}: `{key}` must name a {kind} builder (or be null), found {found}")]
    NotABuilder { component: String, key: String, kind: String, found: String },

    #[error("{component}: unknown {kind} `{name}` for `{key}`{}; registered: {}", did_you_mean(suggestion), registered.join(", "))]
    UnknownNested { component: String, key: String, kind: String, name: String, suggestion: Option<String>, registered: Vec<String> },

    #[error("cyclic recursion in builders: {}", chain.join(" -> "))]
    Cyclic { chain: Vec<String> },
}
