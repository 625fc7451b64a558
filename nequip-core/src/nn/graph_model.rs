//! `GraphModel`: port of `nequip/nn/_graph_model.py` (nequip 0.6.2), the top level of every
//! model: keeps only the allowed input fields (`pos`, `edge_index`, `edge_cell_shift`, `cell`,
//! `batch`, `ptr`, `atom_types` + `model_input_fields`), casts floating inputs to
//! `model_dtype`, runs the model; `scale` / `unscale` through its `RescaleOutput`s; the state
//! dict under nequip's names (`model.model.func.…`) and loading one by name.

use std::collections::BTreeMap;

use tch::{Device, Kind, Tensor};

use super::graph::{init_irreps, named_tensors, GraphIrreps, GraphModule, IrrepsDict, ModelError, NamedTensor};
use super::rescale::RescaleOutput;
use crate::data::keys::*;
use crate::data::AtomicDataDict;

#[derive(Debug)]
pub struct GraphModel {
    irreps: GraphIrreps,
    pub model: Box<dyn GraphModule>,
    pub model_dtype: Kind,
    pub model_input_fields: Vec<String>,
}

/// A state dict that does not fit the model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", describe(missing, unexpected, misshaped))]
pub struct StateDictError {
    pub missing: Vec<String>,
    pub unexpected: Vec<String>,
    /// `(name, model shape, state-dict shape)`.
    pub misshaped: Vec<(String, Vec<i64>, Vec<i64>)>,
}

fn describe(missing: &[String], unexpected: &[String], misshaped: &[(String, Vec<i64>, Vec<i64>)]) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing from the state dict: {}", missing.join(", ")));
    }
    if !unexpected.is_empty() {
        parts.push(format!("unexpected in the state dict: {}", unexpected.join(", ")));
    }
    if !misshaped.is_empty() {
        let m: Vec<String> = misshaped.iter().map(|(n, want, got)| format!("{n} (model {want:?}, state dict {got:?})")).collect();
        parts.push(format!("shape mismatch: {}", m.join(", ")));
    }
    format!("the state dict does not fit the model: {}", parts.join("; "))
}

/// e3nn's derived buffers, present in nequip's state dicts but recomputed here from the irreps:
/// `output_mask`s, the Wigner 3j constants of its generated tensor-product code
/// (`_compiled_main_left_right._w3j_*`) and zero-size placeholders (`tp.weight` with external
/// weights, empty biases).
pub fn is_derived_buffer(name: &str, t: &Tensor) -> bool {
    name.ends_with(".output_mask") || name.contains("._w3j_") || t.numel() == 0
}

impl GraphModel {
    /// nequip's `GraphModel(model, model_dtype, model_input_fields)`.
    pub fn new(model: Box<dyn GraphModule>, model_dtype: Kind, model_input_fields: &IrrepsDict) -> Result<Self, ModelError> {
        let mut allowed = IrrepsDict::new();
        for (k, v) in [(POSITIONS_KEY, Some("1o")), (EDGE_INDEX_KEY, None), (EDGE_CELL_SHIFT_KEY, None), (CELL_KEY, Some("1o")), (BATCH_KEY, None), (BATCH_PTR_KEY, None), (ATOM_TYPE_KEY, None)] {
            allowed.insert(k.into(), v.map(str::parse).transpose()?);
        }
        for (k, v) in model_input_fields {
            if allowed.contains_key(k) {
                return Err(ModelError::invalid("GraphModel", format!("model_input_fields may not redefine the standard input `{k}`")));
            }
            allowed.insert(k.clone(), v.clone());
        }
        let irreps = init_irreps("GraphModel", &allowed, &IrrepsDict::new(), &[], model.irreps_out())?;
        for (k, ir) in model.irreps_in() {
            match irreps.irreps_in.get(k) {
                Some(have) if have == ir => {}
                have => {
                    return Err(ModelError::invalid(
                        "GraphModel",
                        format!(
                            "the model takes `{k}` with irreps {}, but `{k}` is {} in the model inputs (add it to model_input_fields)",
                            ir.as_ref().map(|i| i.to_string()).unwrap_or("None".into()),
                            have.map(|h| h.as_ref().map(|i| i.to_string()).unwrap_or("None".into())).unwrap_or("missing".into())
                        ),
                    ))
                }
            }
        }
        let model_input_fields = irreps.irreps_in.keys().cloned().collect();
        Ok(GraphModel { irreps, model, model_dtype, model_input_fields })
    }

    /// The `RescaleOutput`s wrapping the model, in evaluation order (innermost first).
    pub fn rescale_outputs(&self) -> Vec<&RescaleOutput> {
        let mut out = Vec::new();
        let mut m: &dyn GraphModule = self.model.as_ref();
        while let Some(r) = m.as_any().downcast_ref::<RescaleOutput>() {
            out.push(r);
            m = r.model.as_ref();
        }
        out.reverse();
        out
    }

    /// Physical units → model units (nequip's `unscale(data, force_process=True)`).
    pub fn unscale(&self, data: &AtomicDataDict) -> AtomicDataDict {
        let mut d = data.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect();
        for r in self.rescale_outputs().into_iter().rev() {
            d = r.unscale(&d);
        }
        d
    }

    /// Model units → physical units (nequip's `scale(data, force_process=True)`).
    pub fn scale(&self, data: &AtomicDataDict) -> AtomicDataDict {
        let mut d = data.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect();
        for r in self.rescale_outputs() {
            d = r.scale(&d);
        }
        d
    }

    /// Every parameter and buffer under nequip's `state_dict` names.
    pub fn state_dict(&self) -> Vec<NamedTensor> {
        named_tensors(self)
    }

    /// The trainable parameters (what the optimizer updates), in state-dict order.
    pub fn parameters(&self) -> Vec<Tensor> {
        self.state_dict().into_iter().filter(|t| t.trainable).map(|t| t.tensor).collect()
    }

    pub fn num_trainable(&self) -> i64 {
        super::graph::num_trainable(self)
    }

    pub fn device(&self) -> Device {
        self.state_dict().first().map(|t| t.tensor.device()).unwrap_or(Device::Cpu)
    }

    /// Copy `state` into the model by name (cast to each tensor's dtype and device). Names
    /// the model has and `state` lacks, names `state` has and the model lacks (except e3nn's
    /// derived buffers, see [`is_derived_buffer`]), and shape mismatches are all reported;
    /// with `strict == false` only shape mismatches are errors.
    pub fn load_state_dict(&self, state: &BTreeMap<String, Tensor>, strict: bool) -> Result<(), StateDictError> {
        let own = self.state_dict();
        let mut err = StateDictError { missing: vec![], unexpected: vec![], misshaped: vec![] };
        for t in &own {
            match state.get(&t.name) {
                None if t.tensor.numel() == 0 => {}
                None => err.missing.push(t.name.clone()),
                Some(src) if src.size() != t.tensor.size() => err.misshaped.push((t.name.clone(), t.tensor.size(), src.size())),
                Some(_) => {}
            }
        }
        let names: std::collections::HashSet<&str> = own.iter().map(|t| t.name.as_str()).collect();
        for (k, v) in state {
            if !names.contains(k.as_str()) && !is_derived_buffer(k, v) {
                err.unexpected.push(k.clone());
            }
        }
        if !err.misshaped.is_empty() || (strict && (!err.missing.is_empty() || !err.unexpected.is_empty())) {
            return Err(err);
        }
        tch::no_grad(|| {
            for t in &own {
                if let Some(src) = state.get(&t.name) {
                    if t.tensor.numel() > 0 {
                        let mut dst = t.tensor.shallow_clone();
                        dst.copy_(&src.to_kind(dst.kind()).to_device(dst.device()));
                    }
                }
            }
        });
        Ok(())
    }
}

impl GraphModule for GraphModel {
    crate::graph_module_boilerplate!("GraphModel", wraps = model);
    fn forward(&self, data: AtomicDataDict, training: bool) -> Result<AtomicDataDict, ModelError> {
        let mut input = AtomicDataDict::new();
        for (k, v) in data {
            if self.model_input_fields.contains(&k) {
                let v = if v.is_floating_point() { v.to_kind(self.model_dtype) } else { v };
                input.insert(k, v);
            }
        }
        self.model.forward(input, training)
    }
}
