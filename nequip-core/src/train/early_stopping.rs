//! Early stopping: port of `nequip/train/early_stopping.py::EarlyStopping` (nequip 0.6.2):
//! `early_stopping_patiences` (no decrease beyond `early_stopping_delta` for N epochs),
//! `early_stopping_lower_bounds` / `_upper_bounds`; keys without a `training_` / `validation_`
//! prefix get `validation_`, except `LR`, `wall`, `cumulative_wall`. The dict form
//! `early_stopping_kwargs: {patiences: ..., delta: ..., ...}` is read too (its entries win).

use std::collections::BTreeMap;

use crate::config::{yaml, Config, Value};

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct EarlyStopping {
    pub patiences: BTreeMap<String, i64>,
    pub delta: BTreeMap<String, f64>,
    pub lower_bounds: BTreeMap<String, f64>,
    pub upper_bounds: BTreeMap<String, f64>,
    pub cumulative_delta: bool,
    pub counters: BTreeMap<String, i64>,
    pub minimums: BTreeMap<String, Option<f64>>,
}

fn full_key(k: &str) -> String {
    let l = k.to_lowercase();
    if l.starts_with("training_") || l.starts_with("validation_") || ["lr", "wall", "cumulative_wall"].contains(&l.as_str()) {
        k.to_string()
    } else {
        format!("validation_{k}")
    }
}

/// The options of `early_stopping_kwargs` (nequip's `EarlyStopping.__init__` arguments).
const OPTIONS: &[&str] = &["patiences", "delta", "lower_bounds", "upper_bounds", "cumulative_delta"];

/// Option `name`: `early_stopping_kwargs.name` wins over `early_stopping_name` (as every
/// `x_kwargs` over `x_name`, nequip's `instantiate`); both are marked used.
fn option<'a>(config: &'a Config, name: &str) -> Option<(String, &'a Value)> {
    let key = format!("early_stopping_{name}");
    let plain = config.take(&key, "EarlyStopping").map(|v| (key, v));
    let from_kwargs = match config.get("early_stopping_kwargs") {
        Some(Value::Mapping(m)) => m.get(name).map(|v| (format!("early_stopping_kwargs.{name}"), v)),
        _ => None,
    };
    from_kwargs.or(plain)
}

fn dict(config: &Config, name: &str) -> Result<BTreeMap<String, f64>, String> {
    match option(config, name) {
        None | Some((_, Value::Null)) => Ok(BTreeMap::new()),
        Some((key, Value::Mapping(m))) => m.iter().map(|(k, v)| Ok((full_key(&yaml::key_str(k)), v.as_f64().ok_or_else(|| format!("`{key}.{}` must be a number, got {}", yaml::key_str(k), yaml::render(v)))?))).collect(),
        Some((key, other)) => Err(format!("`{key}` must be a mapping of metric names to numbers, got {}", yaml::render(other))),
    }
}

impl EarlyStopping {
    /// From `early_stopping_*` keys; `None` when no condition is set.
    pub fn from_config(config: &Config) -> Result<Option<Self>, String> {
        match config.get("early_stopping_kwargs") {
            None | Some(Value::Null) => {}
            Some(Value::Mapping(m)) => {
                if let Some(k) = m.keys().map(yaml::key_str).find(|k| !OPTIONS.contains(&k.as_str())) {
                    return Err(format!("`early_stopping_kwargs`: unknown option `{k}` (options: {})", OPTIONS.join(", ")));
                }
            }
            Some(other) => return Err(format!("`early_stopping_kwargs` must be a mapping of options ({}), got {}", OPTIONS.join(", "), yaml::render(other))),
        }
        let patiences = dict(config, "patiences")?;
        let delta = dict(config, "delta")?;
        let lower_bounds = dict(config, "lower_bounds")?;
        let upper_bounds = dict(config, "upper_bounds")?;
        let cumulative_delta = match option(config, "cumulative_delta") {
            None | Some((_, Value::Null)) => false,
            Some((_, Value::Bool(b))) => *b,
            Some((key, other)) => return Err(format!("`{key}` must be true or false, got {}", yaml::render(other))),
        };
        if patiences.is_empty() && lower_bounds.is_empty() && upper_bounds.is_empty() {
            return Ok(None);
        }
        for (k, p) in &patiences {
            if *p < 1.0 {
                return Err(format!("early_stopping_patiences: patience for {k} must be a positive integer"));
            }
        }
        for (k, d) in &delta {
            if *d < 0.0 {
                return Err(format!("early_stopping_delta: {k} must not be negative"));
            }
            if !patiences.contains_key(k) {
                return Err(format!("early_stopping_delta: a patience for {k} must be given too"));
            }
        }
        let patiences: BTreeMap<String, i64> = patiences.into_iter().map(|(k, v)| (k, v as i64)).collect();
        let counters = patiences.keys().map(|k| (k.clone(), 0)).collect();
        let minimums = patiences.keys().map(|k| (k.clone(), None)).collect();
        Ok(Some(EarlyStopping { patiences, delta, lower_bounds, upper_bounds, cumulative_delta, counters, minimums }))
    }

    /// Every metric name it needs.
    pub fn keys(&self) -> Vec<&String> {
        self.patiences.keys().chain(self.lower_bounds.keys()).chain(self.upper_bounds.keys()).collect()
    }

    /// `(stop, message)` for this epoch's metrics.
    pub fn check(&mut self, metrics: &BTreeMap<String, f64>) -> (bool, String) {
        let mut stop = false;
        let mut msg = String::from("Early stopping:");
        for (key, pat) in &self.patiences {
            let Some(&value) = metrics.get(key) else { continue };
            let delta = self.delta.get(key).copied().unwrap_or(0.0);
            match self.minimums.get(key).copied().flatten() {
                None => {
                    self.minimums.insert(key.clone(), Some(value));
                }
                Some(min) if value >= min - delta => {
                    if !self.cumulative_delta && value < min {
                        self.minimums.insert(key.clone(), Some(value));
                    }
                    let c = self.counters.entry(key.clone()).or_insert(0);
                    *c += 1;
                    if *c >= *pat {
                        msg += &format!(" {key} has not reduced for {pat} epochs");
                        stop = true;
                    }
                }
                Some(_) => {
                    self.minimums.insert(key.clone(), Some(value));
                    self.counters.insert(key.clone(), 0);
                }
            }
        }
        for (key, b) in &self.lower_bounds {
            if metrics.get(key).is_some_and(|v| v < b) {
                msg += &format!(" {key} is smaller than {b}");
                stop = true;
            }
        }
        for (key, b) in &self.upper_bounds {
            if metrics.get(key).is_some_and(|v| v > b) {
                msg += &format!(" {key} is larger than {b}");
                stop = true;
            }
        }
        (stop, msg)
    }
}
