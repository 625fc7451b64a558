//! `RescaleOutput`: port of `nequip/nn/_rescale.py` (nequip 0.6.2).
//!
//! Eval mode: `y ← y · scale_by` for `scale_keys`, then `y ← y + shift_by` for `shift_keys`.
//! Training mode: outputs are only cast to `default_dtype` — the model is trained in
//! normalised units and the trainer [`RescaleOutput::unscale`]s the targets instead.
//! `scale_by` / `shift_by` are parameters when trainable, buffers otherwise (an empty buffer
//! when absent), in `default_dtype`. At construction every inner module's
//! `update_for_rescale` is called with the scale.

use tch::{Device, Kind, Tensor};

use super::graph::{init_irreps, visit_mut, GraphIrreps, GraphModule, IrrepsDict, ModelError, NamedTensor, Params, RescaleInfo};
use crate::data::AtomicDataDict;

/// A scale or shift value: `None` = none.
#[derive(Debug, Clone, Default)]
pub struct RescaleOptions {
    pub scale_keys: Vec<String>,
    pub shift_keys: Vec<String>,
    /// A scalar or per-component values.
    pub scale_by: Option<Vec<f64>>,
    pub shift_by: Option<Vec<f64>>,
    pub scale_trainable: bool,
    pub shift_trainable: bool,
}

#[derive(Debug)]
pub struct RescaleOutput {
    irreps: GraphIrreps,
    pub model: Box<dyn GraphModule>,
    pub scale_keys: Vec<String>,
    pub shift_keys: Vec<String>,
    params: Params,
    /// Shallow handles of the registered `scale_by` / `shift_by`.
    scale_t: Tensor,
    shift_t: Tensor,
    pub default_kind: Kind,
    has_scale: bool,
    has_shift: bool,
}

fn value_tensor(v: &[f64], kind: Kind) -> Tensor {
    let t = Tensor::from_slice(v).to_kind(kind);
    if v.len() == 1 {
        t.reshape(Vec::<i64>::new())
    } else {
        t
    }
}

impl RescaleOutput {
    pub fn new(mut model: Box<dyn GraphModule>, o: RescaleOptions, default_kind: Kind, device: Device) -> Result<Self, ModelError> {
        const M: &str = "RescaleOutput";
        for k in o.scale_keys.iter().chain(&o.shift_keys) {
            if !model.irreps_out().contains_key(k) {
                return Err(ModelError::invalid(M, format!("asked to scale or shift `{k}`, but `{k}` is not an output of the model (outputs: {})", model.irreps_out().keys().cloned().collect::<Vec<_>>().join(", "))));
            }
        }
        for k in &o.shift_keys {
            if let Some(Some(ir)) = model.irreps_out().get(k) {
                if ir.lmax().unwrap_or(0) > 0 {
                    return Err(ModelError::invalid(M, format!("it doesn't make sense to shift non-scalar target `{k}`")));
                }
            }
        }
        if o.scale_by.is_none() && o.scale_trainable {
            return Err(ModelError::invalid(M, "asked for a trainable scale, but there is no scale (scale_by = None)"));
        }
        if o.shift_by.is_none() && o.shift_trainable {
            return Err(ModelError::invalid(M, "asked for a trainable shift, but there is no shift (shift_by = None)"));
        }
        let irreps = init_irreps(M, model.irreps_in(), &IrrepsDict::new(), &[], model.irreps_out())?;
        let params = Params::new(device, default_kind);
        let empty = Tensor::zeros([0], (default_kind, device));
        let scale_t = match &o.scale_by {
            Some(v) => params.add("scale_by", &value_tensor(v, default_kind), o.scale_trainable),
            None => params.add("scale_by", &empty, false),
        };
        let shift_t = match &o.shift_by {
            Some(v) => params.add("shift_by", &value_tensor(v, default_kind), o.shift_trainable),
            None => params.add("shift_by", &empty, false),
        };
        let info = RescaleInfo { scale: o.scale_by.as_ref().filter(|s| s.len() == 1).map(|s| s[0]), scale_keys: o.scale_keys.clone() };
        visit_mut(inner_mut(model.as_mut()), &mut |m| m.update_for_rescale(&info))?;
        Ok(RescaleOutput { irreps, model, scale_keys: o.scale_keys, shift_keys: o.shift_keys, params, scale_t, shift_t, default_kind, has_scale: o.scale_by.is_some(), has_shift: o.shift_by.is_some() })
    }

    pub fn scale_by(&self) -> Option<Tensor> {
        self.has_scale.then(|| self.scale_t.shallow_clone())
    }
    pub fn shift_by(&self) -> Option<Tensor> {
        self.has_shift.then(|| self.shift_t.shallow_clone())
    }

    /// `scale(data, force_process=True)`: model units → physical units.
    pub fn scale(&self, data: &AtomicDataDict) -> AtomicDataDict {
        let mut d = data.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect::<AtomicDataDict>();
        if let Some(s) = self.scale_by() {
            for f in &self.scale_keys {
                if let Some(v) = d.get(f) {
                    let nv = v * &s;
                    d.insert(f.clone(), nv);
                }
            }
        }
        if let Some(s) = self.shift_by() {
            for f in &self.shift_keys {
                if let Some(v) = d.get(f) {
                    let nv = v + &s;
                    d.insert(f.clone(), nv);
                }
            }
        }
        d
    }

    /// `unscale(data, force_process=True)`: physical units → model units (`(y − shift) / scale`).
    pub fn unscale(&self, data: &AtomicDataDict) -> AtomicDataDict {
        let mut d = data.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect::<AtomicDataDict>();
        if let Some(s) = self.shift_by() {
            for f in &self.shift_keys {
                if let Some(v) = d.get(f) {
                    let nv = v - &s;
                    d.insert(f.clone(), nv);
                }
            }
        }
        if let Some(s) = self.scale_by() {
            for f in &self.scale_keys {
                if let Some(v) = d.get(f) {
                    let nv = v / &s;
                    d.insert(f.clone(), nv);
                }
            }
        }
        d
    }
}

/// The model below any chain of `RescaleOutput`s (nequip's `get_inner_model`).
fn inner_mut(m: &mut dyn GraphModule) -> &mut dyn GraphModule {
    if m.as_any().is::<RescaleOutput>() {
        let r = m.as_any_mut().downcast_mut::<RescaleOutput>().expect("checked above");
        inner_mut(r.model.as_mut())
    } else {
        m
    }
}

impl GraphModule for RescaleOutput {
    crate::graph_module_boilerplate!("RescaleOutput", wraps = model);
    fn forward(&self, data: AtomicDataDict, training: bool) -> Result<AtomicDataDict, ModelError> {
        let mut data = self.model.forward(data, training)?;
        if training {
            for f in self.scale_keys.iter().chain(&self.shift_keys) {
                if let Some(v) = data.get(f) {
                    let nv = v.to_kind(self.default_kind);
                    data.insert(f.clone(), nv);
                }
            }
            return Ok(data);
        }
        if let Some(s) = self.scale_by() {
            for f in &self.scale_keys {
                if let Some(v) = data.get(f) {
                    let nv = v * s.expand(v.size(), false);
                    data.insert(f.clone(), nv);
                }
            }
        }
        if let Some(s) = self.shift_by() {
            for f in &self.shift_keys {
                if let Some(v) = data.get(f) {
                    let nv = v + s.expand(v.size(), false);
                    data.insert(f.clone(), nv);
                }
            }
        }
        Ok(data)
    }
    fn own_tensors(&self) -> Vec<NamedTensor> {
        self.params.named()
    }
}
