//! `loss_coeffs`: every form nequip's `Loss.__init__` (`nequip/train/loss.py`) accepts, parsed
//! into [`LossTerm`]s, and `find_loss_function`'s `PerAtom` / `PerSpecies` name prefixes.
//!
//! Forms: `key`; `[key, ...]`; `{key: coeff}`; `{key: LossName}`; `{key: [coeff]}`;
//! `{key: [coeff, LossName]}`; `{key: [coeff, LossName, params]}`; `{key: [LossName]}`;
//! `{key: [LossName, params]}`. The default function is `MSELoss`, the default coefficient 1.

use crate::config::{yaml, Mapping, Value};

/// How the element-wise loss is reduced (nequip's wrappers, chosen by a name prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// `SimpleLoss`: mean over all elements.
    Simple,
    /// `PerAtomLoss` (`PerAtomMSELoss`): graph field divided by the number of atoms first.
    PerAtom,
    /// `PerSpeciesLoss` (`PerSpeciesL1Loss`): mean per species, then over species.
    PerSpecies,
}

/// One term of the loss.
#[derive(Debug, Clone, PartialEq)]
pub struct LossTerm {
    /// The field compared (`total_energy`, `forces`, `stress`, ...).
    pub key: String,
    pub coeff: f64,
    pub reduction: Reduction,
    /// The registered element-wise loss (`MSELoss`, `L1Loss`, ...), without the wrapper prefix.
    pub func: String,
    /// Parameters of the loss function (`delta` of `HuberLoss`, ...), without `ignore_nan`.
    pub params: Mapping,
    /// Ignore NaN entries of the reference (`params.ignore_nan`).
    pub ignore_nan: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("loss_coeffs: {message}")]
pub struct LossCoeffsError {
    pub message: String,
}

fn err(message: impl Into<String>) -> LossCoeffsError {
    LossCoeffsError { message: message.into() }
}

/// Split `PerAtomMSELoss` → (PerAtom, `MSELoss`), case-insensitive prefix as nequip.
pub fn split_wrapper(name: &str) -> (Reduction, &str) {
    let lower = name.to_lowercase();
    for (p, r) in [("perspecies", Reduction::PerSpecies), ("peratom", Reduction::PerAtom)] {
        if lower.starts_with(p) {
            return (r, &name[p.len()..]);
        }
    }
    (Reduction::Simple, name)
}

fn term(key: &str, coeff: f64, func: &str, params: Option<&Value>) -> Result<LossTerm, LossCoeffsError> {
    let (reduction, base) = split_wrapper(func);
    let mut params = match params {
        None | Some(Value::Null) => Mapping::new(),
        Some(Value::Mapping(m)) => m.clone(),
        Some(other) => return Err(err(format!("`{key}`: loss parameters must be a mapping, found {}", yaml::render(other)))),
    };
    let ignore_nan = match params.remove("ignore_nan") {
        None => false,
        Some(Value::Bool(b)) => b,
        Some(other) => return Err(err(format!("`{key}`: ignore_nan must be true or false, found {}", yaml::render(&other)))),
    };
    Ok(LossTerm { key: key.to_string(), coeff, reduction, func: base.to_string(), params, ignore_nan })
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// Parse a `loss_coeffs` value.
pub fn parse_loss_coeffs(v: &Value) -> Result<Vec<LossTerm>, LossCoeffsError> {
    const MSE: &str = "MSELoss";
    match v {
        Value::String(k) => Ok(vec![term(k, 1.0, MSE, None)?]),
        Value::Sequence(keys) => keys
            .iter()
            .map(|k| match k {
                Value::String(k) => term(k, 1.0, MSE, None),
                other => Err(err(format!("a list of keys must hold strings, found {}", yaml::render(other)))),
            })
            .collect(),
        Value::Mapping(m) => m
            .iter()
            .map(|(k, value)| {
                let Value::String(key) = k else { return Err(err(format!("keys must be field names, found {}", yaml::render(k)))) };
                match value {
                    v if number(v).is_some() => term(key, number(v).unwrap_or(1.0), MSE, None),
                    Value::String(func) => term(key, 1.0, func, None),
                    Value::Sequence(items) => match items.as_slice() {
                        [c, rest @ ..] if number(c).is_some() => {
                            let func = match rest.first() {
                                None => MSE,
                                Some(Value::String(f)) => f.as_str(),
                                Some(other) => return Err(err(format!("`{key}`: expected a loss name after the coefficient, found {}", yaml::render(other)))),
                            };
                            if rest.len() > 2 {
                                return Err(err(format!("`{key}`: expected [coeff, LossName, params], found {} items", items.len())));
                            }
                            term(key, number(c).unwrap_or(1.0), func, rest.get(1))
                        }
                        [Value::String(func), rest @ ..] if rest.len() <= 1 => term(key, 1.0, func, rest.first()),
                        _ => Err(err(format!("`{key}`: expected [coeff], [coeff, LossName], [coeff, LossName, params] or [LossName, params], found {}", yaml::render(value)))),
                    },
                    other => Err(err(format!("`{key}`: expected a number, a loss name or a list, found {}", yaml::render(other)))),
                }
            })
            .collect(),
        other => Err(err(format!("expected a key, a list of keys or a mapping, found {}", yaml::render(other)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<LossTerm>, LossCoeffsError> {
        parse_loss_coeffs(&yaml::parse(text).unwrap().root)
    }

    #[test]
    fn every_form_nequip_accepts() {
        let t = parse("forces").unwrap();
        assert_eq!((t[0].key.as_str(), t[0].coeff, t[0].func.as_str(), t[0].reduction), ("forces", 1.0, "MSELoss", Reduction::Simple));
        assert_eq!(parse("[total_energy, forces]").unwrap().len(), 2);
        let t = parse("{forces: 2, total_energy: [1.5, PerAtomMSELoss], stress: [0.1, HuberLoss, {delta: 0.5, ignore_nan: true}], virial: [L1Loss], e: L1Loss, f: [3.0]}").unwrap();
        assert_eq!((t[0].coeff, t[0].func.as_str()), (2.0, "MSELoss"));
        assert_eq!((t[1].coeff, t[1].func.as_str(), t[1].reduction), (1.5, "MSELoss", Reduction::PerAtom));
        assert_eq!((t[2].func.as_str(), yaml::render(&Value::Mapping(t[2].params.clone())), t[2].ignore_nan), ("HuberLoss", "{delta: 0.5}".to_string(), true));
        assert_eq!((t[3].coeff, t[3].func.as_str()), (1.0, "L1Loss"));
        assert_eq!(t[4].func, "L1Loss");
        assert_eq!((t[5].coeff, t[5].func.as_str()), (3.0, "MSELoss"));
        assert_eq!(split_wrapper("PerSpeciesL1Loss"), (Reduction::PerSpecies, "L1Loss"));
    }

    #[test]
    fn bad_forms_are_errors() {
        assert!(parse("3").unwrap_err().message.contains("expected a key"));
        assert!(parse("{forces: [1.0, 2.0]}").unwrap_err().message.contains("expected a loss name after the coefficient"));
        assert!(parse("{forces: [1.0, L1Loss, 5]}").unwrap_err().message.contains("parameters must be a mapping"));
    }
}
