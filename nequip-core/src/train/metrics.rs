//! Error metrics in physical units: port of `nequip/train/metrics.py::Metrics` (nequip 0.6.2,
//! with `torch_runstats.RunningStats`). `metrics_components` = `[key]`, `[key, mae|rmse]` or
//! `[key, reduction, {PerSpecies, PerAtom, report_per_component, functional}]`; default: `mae`
//! and `rmse` of every loss key. Names `{abbrev}{/N}_{reduction}` (`f_mae`, `e/N_rmse`),
//! per species `{type}_{name}` and `psavg_{name}`, per component `{name}_{i}`.

use tch::{Kind, Tensor};

use super::loss::{build_loss, ElementwiseLoss};
use super::loss_coeffs::Reduction;
use super::loss_fn::{abbrev, Loss};
use crate::config::{yaml, Mapping, Value};
use crate::data::keys::*;
use crate::data::AtomicDataDict;

#[derive(Debug, thiserror::Error)]
#[error("metrics_components: {0}")]
pub struct MetricsError(pub String);

struct Component {
    key: String,
    rmse: bool,
    per_species: bool,
    per_atom: bool,
    per_component: bool,
    func: Box<dyn ElementwiseLoss>,
    /// Running sums and counts: one row per species (or one row), one column per component (or one).
    sums: Option<(Tensor, Tensor)>,
}

/// nequip's `Metrics`: running statistics over the batches of an epoch.
pub struct Metrics {
    components: Vec<Component>,
}

fn flag(m: &Mapping, k: &str) -> Result<bool, MetricsError> {
    match m.get(k) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(MetricsError(format!("`{k}` must be true or false, got {}", yaml::render(v)))),
    }
}

impl Metrics {
    /// From `metrics_components` (or the loss's keys when `None`).
    pub fn new(components: Option<&Value>, loss: &Loss) -> Result<Self, MetricsError> {
        let mut out = Vec::new();
        let mut add = |key: &str, reduction: &str, params: &Mapping| -> Result<(), MetricsError> {
            let rmse = match reduction {
                "mae" | "mean" => false,
                "rmse" => true,
                other => return Err(MetricsError(format!("`{key}`: reduction must be mae or rmse, got {other:?}"))),
            };
            for k in params.keys() {
                let k = yaml::key_str(k);
                if !["PerSpecies", "PerAtom", "report_per_component", "functional"].contains(&k.as_str()) {
                    return Err(MetricsError(format!("`{key}`: unknown option `{k}` (options: PerSpecies, PerAtom, report_per_component, functional)")));
                }
            }
            let functional = params.get("functional").and_then(Value::as_str).unwrap_or("L1Loss");
            let func = build_loss(functional, &Mapping::new()).map_err(|e| MetricsError(format!("`{key}`: {e}")))?;
            out.push(Component {
                key: key.to_string(),
                rmse,
                per_species: flag(params, "PerSpecies")?,
                per_atom: flag(params, "PerAtom")?,
                per_component: flag(params, "report_per_component")?,
                func,
                sums: None,
            });
            Ok(())
        };
        match components {
            None | Some(Value::Null) => {
                for t in &loss.terms {
                    let mut p = Mapping::new();
                    p.insert("PerSpecies".into(), Value::Bool(t.spec.reduction == Reduction::PerSpecies));
                    add(&t.spec.key, "mae", &p)?;
                    add(&t.spec.key, "rmse", &p)?;
                }
            }
            Some(Value::Sequence(items)) => {
                for item in items {
                    match item {
                        Value::String(k) => add(k, "mae", &Mapping::new())?,
                        Value::Sequence(parts) => match parts.as_slice() {
                            [Value::String(k)] => add(k, "mae", &Mapping::new())?,
                            [Value::String(k), Value::String(r)] => add(k, r, &Mapping::new())?,
                            [Value::String(k), Value::String(r), Value::Mapping(p)] => add(k, r, p)?,
                            _ => return Err(MetricsError(format!("expected [key], [key, reduction] or [key, reduction, options], got {}", yaml::render(item)))),
                        },
                        other => return Err(MetricsError(format!("expected a list entry per metric, got {}", yaml::render(other)))),
                    }
                }
            }
            Some(other) => return Err(MetricsError(format!("expected a list, got {}", yaml::render(other)))),
        }
        Ok(Metrics { components: out })
    }

    pub fn reset(&mut self) {
        for c in &mut self.components {
            c.sums = None;
        }
    }

    /// Accumulate one batch: `pred` and `reference` in physical units.
    pub fn accumulate(&mut self, pred: &AtomicDataDict, reference: &AtomicDataDict) -> Result<(), MetricsError> {
        tch::no_grad(|| {
            for c in &mut self.components {
                let (Some(r), Some(p)) = (reference.get(&c.key), pred.get(&c.key)) else {
                    return Err(MetricsError(format!("`{}` is not in both the model output and the data", c.key)));
                };
                let r = r.to_kind(Kind::Double);
                let p = p.to_kind(Kind::Double).reshape(r.size());
                let mut e = c.func.elementwise(&p, &r);
                if c.per_atom {
                    let batch = reference.get(BATCH_KEY).ok_or_else(|| MetricsError("PerAtom metrics need `batch`".into()))?;
                    let n = batch.bincount(None::<Tensor>, 0).to_kind(Kind::Double);
                    let mut shape = vec![-1i64];
                    shape.extend(std::iter::repeat_n(1, (e.dim() as usize).saturating_sub(1)));
                    e = e / n.view(shape.as_slice());
                }
                let rows = e.size()[0];
                let e2 = e.reshape([rows, -1]);
                let vals = if c.rmse { e2.square() } else { e2 };
                let vals = if c.per_component { vals } else { vals.reshape([-1, 1]) };
                let (sum, count) = if c.per_species {
                    let species = pred.get(ATOM_TYPE_KEY).or_else(|| reference.get(ATOM_TYPE_KEY)).ok_or_else(|| MetricsError("PerSpecies metrics need atom_types".into()))?.reshape([-1]);
                    let species = if c.per_component { species } else { species.repeat_interleave_self_int(vals.size()[0] / rows.max(1), Some(0), None) };
                    let n_types = species.max().int64_value(&[]) + 1;
                    let s = Tensor::zeros([n_types, vals.size()[1]], (Kind::Double, vals.device())).index_add(0, &species, &vals);
                    let n = Tensor::zeros([n_types, vals.size()[1]], (Kind::Double, vals.device())).index_add(0, &species, &vals.ones_like());
                    (s, n)
                } else {
                    (vals.sum_dim_intlist([0i64].as_slice(), true, Kind::Double), Tensor::full([1, vals.size()[1]], vals.size()[0] as f64, (Kind::Double, vals.device())))
                };
                c.sums = Some(match c.sums.take() {
                    None => (sum, count),
                    Some((s0, n0)) => {
                        let pad = |a: Tensor, rows: i64| if a.size()[0] < rows { Tensor::cat(&[a.shallow_clone(), a.zeros_like().narrow(0, 0, 1).repeat([rows - a.size()[0], 1])], 0) } else { a };
                        let rows = s0.size()[0].max(sum.size()[0]);
                        (pad(s0, rows) + pad(sum, rows), pad(n0, rows) + pad(count, rows))
                    }
                });
            }
            Ok(())
        })
    }

    /// The names [`Metrics::flatten`] reports, known before any batch: per-species names for
    /// `type_names` (`<type>_f_mae` when they are unknown), per-component names as `f_mae_<i>`.
    pub fn names(&self, type_names: Option<&[String]>) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.components {
            let name = format!("{}{}_{}", abbrev(&c.key), if c.per_atom { "/N" } else { "" }, if c.rmse { "rmse" } else { "mae" });
            let name = if c.per_component { format!("{name}_<i>") } else { name };
            if c.per_species {
                match type_names {
                    Some(tn) => out.extend(tn.iter().map(|t| format!("{t}_{name}"))),
                    None => out.push(format!("<type>_{name}")),
                }
                if !c.per_component {
                    out.push(format!("psavg_{name}"));
                }
            } else {
                out.push(name);
            }
        }
        out
    }

    /// The current values by name, in component order.
    pub fn flatten(&self, type_names: &[String]) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for c in &self.components {
            let Some((s, n)) = &c.sums else { continue };
            let v = s / n.clamp_min(1.0);
            let v = if c.rmse { v.sqrt() } else { v };
            let name = format!("{}{}_{}", abbrev(&c.key), if c.per_atom { "/N" } else { "" }, if c.rmse { "rmse" } else { "mae" });
            let rows = Vec::<Vec<f64>>::try_from(&v).unwrap_or_default();
            let present = Vec::<Vec<f64>>::try_from(&n.gt(0.0).to_kind(Kind::Double)).unwrap_or_default();
            if c.per_species {
                let mut avg = Vec::new();
                for (t, (row, pres)) in rows.iter().zip(&present).enumerate() {
                    if pres.first().copied().unwrap_or(0.0) == 0.0 {
                        continue;
                    }
                    let tname = type_names.get(t).cloned().unwrap_or_else(|| t.to_string());
                    push_row(&mut out, &format!("{tname}_{name}"), row, c.per_component);
                    avg.push(row.clone());
                }
                if !avg.is_empty() && !c.per_component {
                    out.push((format!("psavg_{name}"), avg.iter().map(|r| r[0]).sum::<f64>() / avg.len() as f64));
                }
            } else if let Some(row) = rows.first() {
                push_row(&mut out, &name, row, c.per_component);
            }
        }
        out
    }
}

fn push_row(out: &mut Vec<(String, f64)>, name: &str, row: &[f64], per_component: bool) {
    if per_component {
        out.extend(row.iter().enumerate().map(|(i, v)| (format!("{name}_{i}"), *v)));
    } else if let Some(v) = row.first() {
        out.push((name.to_string(), *v));
    }
}
