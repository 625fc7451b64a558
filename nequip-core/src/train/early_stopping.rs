//! Early stopping: port of `nequip/train/early_stopping.py::EarlyStopping` (nequip 0.6.2):
//! `early_stopping_patiences` (no decrease beyond `early_stopping_delta` for N epochs),
//! `early_stopping_lower_bounds` / `_upper_bounds`; keys without a `training_` / `validation_`
//! prefix get `validation_`, except `LR`, `wall`, `cumulative_wall`.

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

fn dict(config: &Config, key: &str) -> Result<BTreeMap<String, f64>, String> {
    match config.take(key, "EarlyStopping") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Mapping(m)) => m.iter().map(|(k, v)| Ok((full_key(&yaml::key_str(k)), v.as_f64().ok_or_else(|| format!("`{key}.{}` must be a number, got {}", yaml::key_str(k), yaml::render(v)))?))).collect(),
        Some(other) => Err(format!("`{key}` must be a mapping of metric names to numbers, got {}", yaml::render(other))),
    }
}

impl EarlyStopping {
    /// From `early_stopping_*` keys; `None` when no condition is set.
    pub fn from_config(config: &Config) -> Result<Option<Self>, String> {
        let patiences = dict(config, "early_stopping_patiences")?;
        let delta = dict(config, "early_stopping_delta")?;
        let lower_bounds = dict(config, "early_stopping_lower_bounds")?;
        let upper_bounds = dict(config, "early_stopping_upper_bounds")?;
        let cumulative_delta = config.take("early_stopping_cumulative_delta", "EarlyStopping").and_then(Value::as_bool).unwrap_or(false);
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
