//! Per-atom modules: ports of `nequip/nn/_atomwise.py::{AtomwiseLinear, AtomwiseReduce,
//! PerSpeciesScaleShift}` (nequip 0.6.2).

use nequip_core::config::Resolution;
use nequip_core::data::keys::*;
use nequip_core::data::AtomicDataDict;
use nequip_core::e3nn::Linear;
use nequip_core::nn::graph::{field, init_irreps, GraphIrreps, NamedTensor, Params, RescaleInfo};
use nequip_core::nn::{GraphModule, IrrepsDict, ModelError, ModuleContext, NnModule};
use nequip_core::{auto_init, builder};
use tch::{Kind, Tensor};

use super::{graph_module_boilerplate, parse_irreps};

/// Keys of [`AtomwiseLinear`].
#[auto_init]
pub struct AtomwiseLinearKeys {
    #[key(default = "node_features")]
    pub field: String,
    /// Output field (default: `field`).
    pub out_field: Option<String>,
    /// Output irreps (default: the input's).
    pub irreps_out: Option<String>,
}

/// An e3nn `Linear` applied to every atom's `field`.
#[builder(name = "AtomwiseLinear", kind = nn_module, keys = AtomwiseLinearKeys)]
#[derive(Debug)]
pub struct AtomwiseLinear {
    irreps: GraphIrreps,
    params: Params,
    linear: Linear,
    field: String,
    out_field: String,
}

impl NnModule for AtomwiseLinear {
    type Keys = AtomwiseLinearKeys;
    fn build(k: AtomwiseLinearKeys, ctx: &ModuleContext, _: &Resolution) -> Result<Self, ModelError> {
        let out_field = k.out_field.unwrap_or_else(|| k.field.clone());
        let ir_in = ctx.input(&k.field)?;
        let ir_out = match &k.irreps_out {
            Some(s) => parse_irreps(s, &ctx.name, "irreps_out")?,
            None => ir_in.clone(),
        };
        let mut out = IrrepsDict::new();
        out.insert(out_field.clone(), Some(ir_out.clone()));
        let irreps = init_irreps(&ctx.name, &ctx.irreps_in, &IrrepsDict::new(), &[k.field.as_str()], &out)?;
        let params = ctx.params();
        let linear = Linear::new(&params.path("linear"), ir_in, ir_out)?;
        Ok(AtomwiseLinear { irreps, params, linear, field: k.field, out_field })
    }
}

impl GraphModule for AtomwiseLinear {
    graph_module_boilerplate!("AtomwiseLinear");
    fn forward(&self, mut data: AtomicDataDict, _training: bool) -> Result<AtomicDataDict, ModelError> {
        let y = self.linear.forward(field(&data, "AtomwiseLinear", &self.field)?);
        data.insert(self.out_field.clone(), y);
        Ok(data)
    }
    fn own_tensors(&self) -> Vec<NamedTensor> {
        self.params.named()
    }
}

/// Keys of [`AtomwiseReduce`].
#[auto_init]
pub struct AtomwiseReduceKeys {
    pub field: String,
    /// Default `{reduce}_{field}`.
    pub out_field: Option<String>,
    /// `sum`, `mean` or `normalized_sum` (sum / sqrt(avg_num_atoms)).
    #[key(default = "sum")]
    pub reduce: String,
    pub avg_num_atoms: Option<f64>,
}

/// Per-atom → per-frame: sum or mean over the atoms of each frame (`batch`).
#[builder(name = "AtomwiseReduce", kind = nn_module, keys = AtomwiseReduceKeys)]
#[derive(Debug)]
pub struct AtomwiseReduce {
    irreps: GraphIrreps,
    field: String,
    out_field: String,
    mean: bool,
    constant: f64,
}

impl NnModule for AtomwiseReduce {
    type Keys = AtomwiseReduceKeys;
    fn build(k: AtomwiseReduceKeys, ctx: &ModuleContext, _: &Resolution) -> Result<Self, ModelError> {
        let (mean, constant, reduce) = match k.reduce.as_str() {
            "sum" => (false, 1.0, "sum"),
            "mean" => (true, 1.0, "mean"),
            "normalized_sum" => match k.avg_num_atoms {
                Some(n) if n > 0.0 => (false, n.powf(-0.5), "sum"),
                _ => return Err(ModelError::invalid(&ctx.name, "reduce: normalized_sum needs avg_num_atoms > 0")),
            },
            other => return Err(ModelError::invalid(&ctx.name, format!("reduce must be sum, mean or normalized_sum, got {other:?}"))),
        };
        let out_field = k.out_field.unwrap_or_else(|| format!("{reduce}_{}", k.field));
        let mut out = IrrepsDict::new();
        if let Some(ir) = ctx.irreps_in.get(&k.field) {
            out.insert(out_field.clone(), ir.clone());
        }
        let irreps = init_irreps(&ctx.name, &ctx.irreps_in, &IrrepsDict::new(), &[], &out)?;
        Ok(AtomwiseReduce { irreps, field: k.field, out_field, mean, constant })
    }
}

impl GraphModule for AtomwiseReduce {
    graph_module_boilerplate!("AtomwiseReduce");
    fn forward(&self, mut data: AtomicDataDict, _training: bool) -> Result<AtomicDataDict, ModelError> {
        let x = field(&data, "AtomwiseReduce", &self.field)?;
        let mut result = match (data.get(BATCH_KEY), data.get(BATCH_PTR_KEY)) {
            (Some(batch), Some(ptr)) => {
                let n = ptr.size()[0] - 1;
                let mut shape = x.size();
                shape[0] = n;
                let summed = Tensor::zeros(shape.as_slice(), (x.kind(), x.device())).index_add(0, batch, x);
                if self.mean {
                    let counts = Tensor::zeros([n], (x.kind(), x.device())).index_add(0, batch, &Tensor::ones([x.size()[0]], (x.kind(), x.device())));
                    let mut cshape = vec![n];
                    cshape.extend(std::iter::repeat_n(1, shape.len() - 1));
                    summed / counts.clamp_min(1.0).view(cshape.as_slice())
                } else {
                    summed
                }
            }
            _ if self.mean => x.mean_dim([0i64].as_slice(), true, x.kind()),
            _ => x.sum_dim_intlist([0i64].as_slice(), true, x.kind()),
        };
        if self.constant != 1.0 {
            result = result * self.constant;
        }
        data.insert(self.out_field.clone(), result);
        Ok(data)
    }
}

/// Keys of [`PerSpeciesScaleShift`].
#[auto_init]
pub struct PerSpeciesScaleShiftKeys {
    pub field: String,
    pub num_types: i64,
    pub type_names: Vec<String>,
    /// One per type, or one for all; `null` = no shift.
    pub shifts: Option<Vec<f64>>,
    /// One per type, or one for all; `null` = no scale.
    pub scales: Option<Vec<f64>>,
    /// The values are in dataset units (divided by a global scale applied later).
    pub arguments_in_dataset_units: bool,
    /// Default `shifted_{field}`.
    pub out_field: Option<String>,
    #[key(default = false)]
    pub scales_trainable: bool,
    #[key(default = false)]
    pub shifts_trainable: bool,
}

/// `y = scales[type] · x + shifts[type]`, in `default_dtype`.
#[builder(name = "PerSpeciesScaleShift", kind = nn_module, keys = PerSpeciesScaleShiftKeys)]
#[derive(Debug)]
pub struct PerSpeciesScaleShift {
    irreps: GraphIrreps,
    params: Params,
    /// Shallow handles of the registered `shifts` / `scales` (empty when absent).
    shifts: Tensor,
    scales: Tensor,
    field: String,
    out_field: String,
    has_scales: bool,
    has_shifts: bool,
    arguments_in_dataset_units: bool,
}

fn per_type(v: &[f64], n: i64, what: &str, module: &str, kind: Kind) -> Result<Tensor, ModelError> {
    let t = Tensor::from_slice(v).to_kind(kind);
    match v.len() as i64 {
        1 => Ok(Tensor::ones([n], (kind, tch::Device::Cpu)) * t),
        len if len == n => Ok(t),
        len => Err(ModelError::invalid(module, format!("{len} {what} given for {n} types"))),
    }
}

impl NnModule for PerSpeciesScaleShift {
    type Keys = PerSpeciesScaleShiftKeys;
    fn build(k: PerSpeciesScaleShiftKeys, ctx: &ModuleContext, _: &Resolution) -> Result<Self, ModelError> {
        let out_field = k.out_field.unwrap_or_else(|| format!("shifted_{}", k.field));
        let mut my_in = IrrepsDict::new();
        my_in.insert(k.field.clone(), Some("0e".parse()?));
        let mut out = IrrepsDict::new();
        out.insert(out_field.clone(), ctx.irreps_in.get(&k.field).cloned().unwrap_or(None));
        let irreps = init_irreps(&ctx.name, &ctx.irreps_in, &my_in, &[], &out)?;
        let params = Params::new(ctx.device, ctx.default_kind);
        let empty = Tensor::zeros([0], (ctx.default_kind, ctx.device));
        let shifts = match &k.shifts {
            Some(s) => params.add("shifts", &per_type(s, k.num_types, "shifts", &ctx.name, ctx.default_kind)?, k.shifts_trainable),
            None => params.add("shifts", &empty, false),
        };
        let scales = match &k.scales {
            Some(s) => params.add("scales", &per_type(s, k.num_types, "scales", &ctx.name, ctx.default_kind)?, k.scales_trainable),
            None => params.add("scales", &empty, false),
        };
        Ok(PerSpeciesScaleShift { irreps, params, shifts, scales, field: k.field, out_field, has_scales: k.scales.is_some(), has_shifts: k.shifts.is_some(), arguments_in_dataset_units: k.arguments_in_dataset_units })
    }
}

impl GraphModule for PerSpeciesScaleShift {
    graph_module_boilerplate!("PerSpeciesScaleShift");
    fn forward(&self, mut data: AtomicDataDict, _training: bool) -> Result<AtomicDataDict, ModelError> {
        if !(self.has_scales || self.has_shifts) {
            return Ok(data);
        }
        let species = field(&data, "PerSpeciesScaleShift", ATOM_TYPE_KEY)?.reshape([-1]);
        let mut x = field(&data, "PerSpeciesScaleShift", &self.field)?.shallow_clone();
        if x.size()[0] != species.size()[0] {
            return Err(ModelError::invalid("PerSpeciesScaleShift", format!("`{}` has {} rows for {} atoms", self.field, x.size()[0], species.size()[0])));
        }
        if self.has_scales {
            x = self.scales.index_select(0, &species).view([-1, 1]) * x;
        }
        if self.has_shifts {
            x = self.shifts.index_select(0, &species).view([-1, 1]) + x;
        }
        data.insert(self.out_field.clone(), x);
        Ok(data)
    }
    fn own_tensors(&self) -> Vec<NamedTensor> {
        self.params.named()
    }
    fn update_for_rescale(&mut self, r: &RescaleInfo) -> Result<(), ModelError> {
        if !self.arguments_in_dataset_units || !r.scale_keys.contains(&self.field) {
            return Ok(());
        }
        if self.field == PER_ATOM_ENERGY_KEY && !r.scale_keys.iter().all(|k| ALL_ENERGY_KEYS.contains(&k.as_str())) {
            return Err(ModelError::invalid("PerSpeciesScaleShift", "the global rescaling scales non-energy fields together with atomic_energy"));
        }
        if let Some(s) = r.scale {
            tch::no_grad(|| {
                for t in [&self.scales, &self.shifts] {
                    if t.numel() > 0 {
                        let _ = t.shallow_clone().g_div_scalar_(s);
                    }
                }
            });
        }
        Ok(())
    }
}

/// nequip's `AtomwiseOperation(operation, field)`: applies `operation` to every atom's `field`
/// (the output irreps given with it). Built from code by a builder — the operation is a
/// function, not a config value — so it is not a registered (YAML-named) module.
pub struct AtomwiseOperation {
    irreps: GraphIrreps,
    field: String,
    operation: Box<dyn Fn(&Tensor) -> Tensor + Send + Sync>,
}

impl std::fmt::Debug for AtomwiseOperation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomwiseOperation").field("field", &self.field).finish()
    }
}

impl AtomwiseOperation {
    /// `operation` maps `field` (irreps from `irreps_in`) to values with `irreps_out`.
    pub fn new(name: &str, irreps_in: &IrrepsDict, field: &str, irreps_out: nequip_core::e3nn::Irreps, operation: Box<dyn Fn(&Tensor) -> Tensor + Send + Sync>) -> Result<Self, ModelError> {
        let mut out = IrrepsDict::new();
        out.insert(field.into(), Some(irreps_out));
        let irreps = init_irreps(name, irreps_in, &IrrepsDict::new(), &[field], &out)?;
        Ok(AtomwiseOperation { irreps, field: field.into(), operation })
    }
}

impl GraphModule for AtomwiseOperation {
    graph_module_boilerplate!("AtomwiseOperation");
    fn forward(&self, mut data: AtomicDataDict, _training: bool) -> Result<AtomicDataDict, ModelError> {
        let y = (self.operation)(field(&data, "AtomwiseOperation", &self.field)?);
        data.insert(self.field.clone(), y);
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomwise_operation_applies_and_declares_irreps() {
        let mut ir = IrrepsDict::new();
        ir.insert(NODE_FEATURES_KEY.into(), Some("2x0e".parse().unwrap()));
        let op = AtomwiseOperation::new("double", &ir, NODE_FEATURES_KEY, "2x0e".parse().unwrap(), Box::new(|x| x * 2.0)).unwrap();
        let mut d = AtomicDataDict::new();
        d.insert(NODE_FEATURES_KEY.into(), Tensor::from_slice(&[1.0, -3.0]).reshape([1, 2]));
        let out = op.forward(d, false).unwrap();
        assert_eq!(Vec::<f64>::try_from(&out[NODE_FEATURES_KEY].flatten(0, -1)).unwrap(), vec![2.0, -6.0]);
        assert!(op.irreps_out().contains_key("pos"));
        let missing = AtomwiseOperation::new("x", &IrrepsDict::new(), NODE_FEATURES_KEY, "1x0e".parse().unwrap(), Box::new(|x| x.shallow_clone()));
        assert!(missing.unwrap_err().to_string().contains("needs field `node_features`"));
    }
}
