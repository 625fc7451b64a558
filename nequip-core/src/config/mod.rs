//! The config: an ordered tree of keys with provenance and usage tracking.
//! Mirrors `nequip/utils/config.py` (`Config`) and the defaults of `nequip/scripts/train.py`.
//!
//! * [`Config::load`] reads YAML (+ one level of `include_file_as_baseline_config`) over the
//!   defaults layer ([`defaults`]).
//! * Every value remembers where it came from ([`Source`]); every lookup through the resolver
//!   ([`resolve`]) records who consumed which key, so [`Config::unused_keys`] can report typos
//!   with the closest known key.
//! * The single place where a key is resolved with nequip's precedence is [`resolve::resolve`].

pub mod defaults;
pub mod error;
pub mod keys;
pub mod resolve;
pub mod schema;
pub mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use indexmap::IndexMap;

pub use error::{ConfigError, Place, ResolveError, UnusedKey};
pub use keys::{AutoInit, KeySpec};
pub use resolve::{resolve, Args, Origin, Request, Resolution};
pub use yaml::{Mapping, Value};

/// Where a config value came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// nequip's `default_config`.
    Default,
    /// The YAML file given by the user (or its baseline).
    File { place: Place, baseline: bool },
    /// Written by a builder or component during set-up (e.g. `num_types`, `avg_num_neighbors`).
    SetBy(String),
    /// A command-line flag.
    Cli(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::File { place, baseline: false } => write!(f, "yaml {place}"),
            Source::File { place, baseline: true } => write!(f, "baseline {place}"),
            Source::SetBy(who) => write!(f, "set by {who}"),
            Source::Cli(flag) => write!(f, "command line {flag}"),
        }
    }
}

/// A value with its provenance.
#[derive(Debug, Clone)]
pub struct Entry {
    pub value: Value,
    pub source: Source,
}

/// One consumption of a config key by a component.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Use {
    /// Who read it, e.g. `layer0_convnet (ConvNetLayer)`.
    pub component: String,
    /// The parameter it filled, e.g. `num_basis`.
    pub param: String,
    /// Whether this key's value won (a generic key overridden by a prefixed one did not).
    pub won: bool,
}

/// The root config.
#[derive(Debug, Default)]
pub struct Config {
    entries: IndexMap<String, Entry>,
    usage: Mutex<BTreeMap<String, Vec<Use>>>,
    /// Every key name the resolver looked for (found or not): "did you mean" candidates.
    searched: Mutex<std::collections::BTreeSet<String>>,
}

impl Clone for Config {
    fn clone(&self) -> Self {
        let searched = self.searched.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Config { entries: self.entries.clone(), usage: Mutex::new(self.usage_snapshot()), searched: Mutex::new(searched) }
    }
}

impl Config {
    /// An empty config (no defaults).
    pub fn new() -> Self {
        Self::default()
    }

    /// nequip's `default_config` only.
    pub fn with_defaults() -> Self {
        let mut c = Self::new();
        for (k, v) in defaults::default_config() {
            c.entries.insert(k.to_string(), Entry { value: v, source: Source::Default });
        }
        c
    }

    /// Load a YAML config over the defaults, with one level of `include_file_as_baseline_config`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut c = Self::with_defaults();
        let main = read_yaml(path, false)?;
        if let Some(entry) = main.get(defaults::INCLUDE_KEY) {
            let Value::String(b) = &entry.value else {
                return Err(bad_value(entry, defaults::INCLUDE_KEY, "expected a file name"));
            };
            let base_path = resolve_relative(path, Path::new(b));
            let base = read_yaml(&base_path, true)?;
            if base.contains_key(defaults::INCLUDE_KEY) {
                return Err(ConfigError::NestedInclude { file: path.to_path_buf(), baseline: base_path });
            }
            c.entries.extend(base);
            c.mark(defaults::INCLUDE_KEY, "config loader", defaults::INCLUDE_KEY, true);
        }
        c.entries.extend(main);
        Ok(c)
    }

    /// Parse YAML text as if it were the file `name` (for tests and `--override`).
    pub fn from_yaml_str(text: &str, name: &str) -> Result<Self, ConfigError> {
        let mut c = Self::with_defaults();
        c.entries.extend(parse_entries(text, Path::new(name), false)?);
        Ok(c)
    }

    /// Value of a key, without marking it used.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.get(key).map(|e| &e.value)
    }

    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// All entries in order (defaults first, then the file's keys in file order).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(k, e)| (k.as_str(), e))
    }

    /// Set a key (by a builder, the CLI, ...). The key counts as used.
    pub fn set(&mut self, key: &str, value: Value, source: Source) {
        let who = source.to_string();
        self.entries.insert(key.to_string(), Entry { value, source });
        self.mark(key, &who, key, true);
    }

    /// Read a key directly (not through [`resolve`]) and record who did.
    pub fn take(&self, key: &str, component: &str) -> Option<&Value> {
        let v = self.entries.get(key).map(|e| &e.value);
        if v.is_some() {
            self.mark(key, component, key, true);
        }
        v
    }

    /// Record that `component` consumed `key` for its parameter `param`.
    pub fn mark(&self, key: &str, component: &str, param: &str, won: bool) {
        let mut usage = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        let uses = usage.entry(key.to_string()).or_default();
        let u = Use { component: component.to_string(), param: param.to_string(), won };
        if !uses.contains(&u) {
            uses.push(u);
        }
    }

    /// Record that a component looked for `key` (for suggestions on typos).
    pub fn note_searched(&self, key: &str) {
        self.searched.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_string());
    }

    /// Who consumed each key so far.
    pub fn usage_snapshot(&self) -> BTreeMap<String, Vec<Use>> {
        self.usage.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The place of a key in its file, if it came from one.
    pub fn place(&self, key: &str) -> Option<Place> {
        match &self.entries.get(key)?.source {
            Source::File { place, .. } => Some(place.clone()),
            _ => None,
        }
    }

    /// The config as a YAML mapping (file order; defaults included), as nequip's `Config.save`.
    pub fn to_mapping(&self) -> Mapping {
        self.entries.iter().map(|(k, e)| (Value::String(k.clone()), e.value.clone())).collect()
    }

    /// Write the config as YAML atomically (temp file + rename): a crash never leaves a
    /// half-written file.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let text = yaml::to_string(&self.to_mapping()).map_err(|m| ConfigError::BadValue { place: Place { file: path.to_path_buf(), location: None }, key: String::new(), message: m })?;
        let io = |e| ConfigError::Io { file: path.to_path_buf(), source: e };
        let tmp = path.with_extension(format!("yaml.tmp{}", std::process::id()));
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
    }

    /// Keys present but never consumed (defaults and Python-only keys count as consumed),
    /// each with the closest name among `known`.
    pub fn unused_keys<'a>(&self, known: impl IntoIterator<Item = &'a str>) -> Vec<UnusedKey> {
        let usage = self.usage_snapshot();
        let searched = self.searched.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut known: Vec<&str> = known.into_iter().collect();
        known.extend(usage.keys().map(|s| s.as_str()));
        known.extend(searched.iter().map(|s| s.as_str()));
        self.entries
            .iter()
            .filter(|(k, e)| e.source != Source::Default && !usage.contains_key(*k) && !defaults::is_accepted_without_consumer(k))
            .map(|(k, _)| UnusedKey { key: k.clone(), suggestion: crate::suggest::closest(k, known.iter().copied()), place: self.place(k) })
            .collect()
    }
}

fn bad_value(entry: &Entry, key: &str, message: &str) -> ConfigError {
    let place = match &entry.source {
        Source::File { place, .. } => place.clone(),
        _ => Place { file: PathBuf::from("<config>"), location: None },
    };
    ConfigError::BadValue { place, key: key.to_string(), message: message.to_string() }
}

/// A baseline path is looked up next to the including file first, then as given (nequip: cwd).
fn resolve_relative(including: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    match including.parent().map(|d| d.join(p)) {
        Some(candidate) if candidate.exists() => candidate,
        _ => p.to_path_buf(),
    }
}

fn read_yaml(path: &Path, baseline: bool) -> Result<IndexMap<String, Entry>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io { file: path.to_path_buf(), source: e })?;
    parse_entries(&text, path, baseline)
}

fn parse_entries(text: &str, file: &Path, baseline: bool) -> Result<IndexMap<String, Entry>, ConfigError> {
    let doc = yaml::parse(text).map_err(|e| ConfigError::Syntax { file: file.to_path_buf(), location: e.location, message: e.message })?;
    let map = match &doc.root {
        Value::Mapping(m) => m.clone(),
        Value::Null => Mapping::new(),
        other => return Err(ConfigError::NotAMapping { file: file.to_path_buf(), found: yaml::type_name(other).into() }),
    };
    let mut out = IndexMap::new();
    for (k, v) in map {
        let Value::String(key) = k else {
            let place = Place { file: file.to_path_buf(), location: None };
            return Err(ConfigError::BadValue { place, key: yaml::key_str(&k), message: "config keys must be strings".into() });
        };
        let place = Place { file: file.to_path_buf(), location: doc.locate(&key) };
        let value = yaml::normalize_python_tags(v).map_err(|m| ConfigError::BadValue { place: place.clone(), key: key.clone(), message: m })?;
        out.insert(key, Entry { value, source: Source::File { place, baseline } });
    }
    Ok(out)
}
