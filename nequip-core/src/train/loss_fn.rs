//! The training loss: port of `nequip/train/loss.py::Loss` and `_loss.py::{SimpleLoss,
//! PerAtomLoss, PerSpeciesLoss}` (nequip 0.6.2). `Σ_k coeff_k · loss_k(pred, ref)`, in the
//! model's normalised units (the trainer passes unscaled references); each `loss_k` is
//! reported before its coefficient (`loss_f`, `loss_e`, ...).

use tch::{Kind, Tensor};

use super::loss::{build_loss, ElementwiseLoss, LossError};
use super::loss_coeffs::{parse_loss_coeffs, LossCoeffsError, LossTerm, Reduction};
use crate::config::Value;
use crate::data::fields::{field_kind, FieldKind};
use crate::data::keys::*;
use crate::data::AtomicDataDict;

/// nequip's `ABBREV`: short names of fields in metric and loss names.
pub fn abbrev(key: &str) -> &str {
    match key {
        TOTAL_ENERGY_KEY => "e",
        PER_ATOM_ENERGY_KEY => "Ei",
        FORCE_KEY => "f",
        NODE_FEATURES_KEY => "h",
        other => other,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrainLossError {
    #[error(transparent)]
    Coeffs(#[from] LossCoeffsError),
    #[error("loss_coeffs `{key}`: {source}")]
    Loss { key: String, source: LossError },
    #[error("loss_coeffs `{0}`: a PerAtom loss needs a per-frame (graph) field, and `{0}` is not one")]
    PerAtomOnNonGraph(String),
    #[error("loss: the {what} has no field `{key}`")]
    MissingField { what: &'static str, key: String },
}

/// One term: the parsed `loss_coeffs` entry and its element-wise function.
pub struct Term {
    pub spec: LossTerm,
    func: Box<dyn ElementwiseLoss>,
}

/// nequip's `Loss(coeffs)`.
pub struct Loss {
    pub terms: Vec<Term>,
}

impl Loss {
    pub fn from_coeffs(v: &Value) -> Result<Self, TrainLossError> {
        let specs = parse_loss_coeffs(v)?;
        let mut terms = Vec::new();
        for spec in specs {
            if spec.reduction == Reduction::PerAtom && field_kind(&spec.key) != Some(FieldKind::Graph) {
                return Err(TrainLossError::PerAtomOnNonGraph(spec.key));
            }
            let func = build_loss(&spec.func, &spec.params).map_err(|e| TrainLossError::Loss { key: spec.key.clone(), source: e })?;
            terms.push(Term { spec, func });
        }
        Ok(Loss { terms })
    }

    /// The fields the loss compares.
    pub fn keys(&self) -> Vec<&str> {
        self.terms.iter().map(|t| t.spec.key.as_str()).collect()
    }

    /// `(Σ coeff · loss_k, [(key, loss_k)])`.
    pub fn compute(&self, pred: &AtomicDataDict, reference: &AtomicDataDict) -> Result<(Tensor, Vec<(String, Tensor)>), TrainLossError> {
        let mut total: Option<Tensor> = None;
        let mut parts = Vec::new();
        for t in &self.terms {
            let l = self.term(t, pred, reference)?;
            let w = &l * t.spec.coeff;
            total = Some(match total {
                Some(s) => s + w,
                None => w,
            });
            parts.push((t.spec.key.clone(), l));
        }
        let total = total.unwrap_or_else(|| Tensor::zeros([], (Kind::Double, tch::Device::Cpu)));
        Ok((total, parts))
    }

    fn term(&self, t: &Term, pred: &AtomicDataDict, reference: &AtomicDataDict) -> Result<Tensor, TrainLossError> {
        let key = &t.spec.key;
        let r = reference.get(key).ok_or_else(|| TrainLossError::MissingField { what: "reference data", key: key.clone() })?;
        let p = pred.get(key).ok_or_else(|| TrainLossError::MissingField { what: "model output", key: key.clone() })?.to_kind(r.kind());
        let p = if p.size() != r.size() && p.numel() == r.numel() { p.reshape(r.size()) } else { p };
        let has_nan = t.spec.ignore_nan && r.isnan().any().int64_value(&[]) != 0;
        let not_nan = if has_nan { r.isnan().logical_not().to_kind(r.kind()) } else { r.ones_like() };
        let r_clean = if has_nan { r.nan_to_num(0.0, None, None) } else { r.shallow_clone() };
        let mut loss = t.func.elementwise(&p, &r_clean) * &not_nan;
        match t.spec.reduction {
            Reduction::Simple => Ok(if has_nan { loss.sum(loss.kind()) / not_nan.sum(loss.kind()) } else { loss.mean(loss.kind()) }),
            Reduction::PerAtom => {
                let batch = reference.get(BATCH_KEY).or_else(|| pred.get(BATCH_KEY)).ok_or_else(|| TrainLossError::MissingField { what: "reference data", key: BATCH_KEY.into() })?;
                let n = batch.bincount(None::<Tensor>, 0).to_kind(loss.kind());
                let mut shape = vec![-1i64];
                shape.extend(std::iter::repeat_n(1, (loss.dim() as usize).saturating_sub(1)));
                let n = n.view(shape.as_slice());
                loss = loss / &n;
                if t.spec.func == "MSELoss" {
                    loss = loss / &n;
                }
                Ok(if has_nan { loss.sum(loss.kind()) / not_nan.sum(loss.kind()) } else { loss.mean(loss.kind()) })
            }
            Reduction::PerSpecies => {
                let species = pred.get(ATOM_TYPE_KEY).or_else(|| reference.get(ATOM_TYPE_KEY)).ok_or_else(|| TrainLossError::MissingField { what: "model output", key: ATOM_TYPE_KEY.into() })?.reshape([-1]);
                let dims: Vec<i64> = (1..loss.dim() as i64).collect();
                let n_types = species.max().int64_value(&[]) + 1;
                if has_nan {
                    let per_atom = if dims.is_empty() { loss } else { loss.sum_dim_intlist(dims.as_slice(), false, loss.kind()) };
                    let count = if dims.is_empty() { not_nan } else { not_nan.sum_dim_intlist(dims.as_slice(), false, not_nan.kind()) };
                    let per_species = Tensor::zeros([n_types], (per_atom.kind(), per_atom.device())).index_add(0, &species, &per_atom);
                    let counts = Tensor::zeros([n_types], (per_atom.kind(), per_atom.device())).index_add(0, &species, &count);
                    let inv = counts.reciprocal();
                    let finite = inv.isfinite();
                    let n_species = finite.sum(Kind::Int64).to_kind(per_atom.kind());
                    Ok((per_species * inv.nan_to_num(0.0, Some(0.0), Some(0.0))).sum(per_atom.kind()) / n_species)
                } else {
                    let per_atom = if dims.is_empty() { loss } else { loss.mean_dim(dims.as_slice(), false, loss.kind()) };
                    let sums = Tensor::zeros([n_types], (per_atom.kind(), per_atom.device())).index_add(0, &species, &per_atom);
                    let counts = Tensor::zeros([n_types], (per_atom.kind(), per_atom.device())).index_add(0, &species, &per_atom.ones_like());
                    let present = counts.gt(0.0);
                    let means = sums.masked_select(&present) / counts.masked_select(&present);
                    Ok(means.mean(means.kind()))
                }
            }
        }
    }
}
