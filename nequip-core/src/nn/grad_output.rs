//! Autograd outputs: port of `nequip/nn/_grad_output.py` (nequip 0.6.2) —
//! `GradientOutput` (forces = −∂E/∂pos), `PartialForceOutput` (per-atom-energy Jacobian) and
//! `StressOutput` (forces, virial and stress by a symmetric strain, Knuth et al. 2015).
//! In training mode the gradients keep their graph (`create_graph`), so a force loss can be
//! differentiated with respect to the parameters.

use tch::{Kind, Tensor};

use super::graph::{field, init_irreps, GraphIrreps, GraphModule, IrrepsDict, ModelError, NamedTensor};
use crate::data::keys::*;
use crate::data::AtomicDataDict;
use crate::e3nn::Irreps;

/// A leaf copy of `t` that requires grad, unless `t` already does (then `t` itself).
fn grad_leaf(t: &Tensor) -> Tensor {
    if t.requires_grad() {
        t.shallow_clone()
    } else {
        t.detach().set_requires_grad(true)
    }
}

/// `torch.autograd.grad([of.sum()], wrt, create_graph=training)`; unused inputs get zeros.
pub fn grad_of_sum(of: &Tensor, wrt: &[&Tensor], training: bool, module: &str) -> Result<Vec<Tensor>, ModelError> {
    let s = of.sum(of.kind());
    if !s.requires_grad() {
        return Ok(wrt.iter().map(|w| w.zeros_like()).collect());
    }
    let grads = Tensor::f_run_backward(&[&s], wrt, training, training).map_err(|e| ModelError::invalid(module, format!("autograd failed: {e}")))?;
    Ok(grads.into_iter().zip(wrt).map(|(g, w)| if g.defined() { g } else { w.zeros_like() }).collect())
}

/// nequip's `GradientOutput(func, of, wrt, out_field, sign)`.
#[derive(Debug)]
pub struct GradientOutput {
    irreps: GraphIrreps,
    pub func: Box<dyn GraphModule>,
    pub of: String,
    pub wrt: Vec<String>,
    pub out_field: Vec<String>,
    pub sign: f64,
}

impl GradientOutput {
    pub fn new(func: Box<dyn GraphModule>, of: &str, wrt: &[&str], out_field: Option<&[&str]>, sign: f64) -> Result<Self, ModelError> {
        if sign != 1.0 && sign != -1.0 {
            return Err(ModelError::invalid("GradientOutput", format!("sign must be 1 or -1, got {sign}")));
        }
        let out_field: Vec<String> = match out_field {
            Some(o) if o.len() != wrt.len() => return Err(ModelError::invalid("GradientOutput", "out field names must be given for all w.r.t. tensors")),
            Some(o) => o.iter().map(|s| s.to_string()).collect(),
            None => wrt.iter().map(|w| format!("d({of})/d({w})")).collect(),
        };
        let mut my_in = IrrepsDict::new();
        my_in.insert(of.into(), Some("0e".parse::<Irreps>()?));
        let mut irreps = init_irreps("GradientOutput", func.irreps_in(), &my_in, &[], func.irreps_out())?;
        for (f, w) in out_field.iter().zip(wrt) {
            let ir = irreps.irreps_in.get(*w).cloned().unwrap_or(None);
            irreps.irreps_out.insert(f.clone(), ir);
        }
        Ok(GradientOutput { irreps, func, of: of.into(), wrt: wrt.iter().map(|s| s.to_string()).collect(), out_field, sign })
    }
}

impl GraphModule for GradientOutput {
    crate::graph_module_boilerplate!("GradientOutput", wraps = func);
    fn forward(&self, mut data: AtomicDataDict, training: bool) -> Result<AtomicDataDict, ModelError> {
        let mut leaves = Vec::new();
        for w in &self.wrt {
            let leaf = grad_leaf(field(&data, "GradientOutput", w)?);
            data.insert(w.clone(), leaf.shallow_clone());
            leaves.push(leaf);
        }
        let data_out = self.func.forward(data, training)?;
        let of = field(&data_out, "GradientOutput", &self.of)?;
        let refs: Vec<&Tensor> = leaves.iter().collect();
        let grads = grad_of_sum(of, &refs, training, "GradientOutput")?;
        let mut data = data_out;
        for (f, g) in self.out_field.iter().zip(grads) {
            data.insert(f.clone(), if self.sign < 0.0 { -g } else { g });
        }
        Ok(data)
    }
}

/// nequip's `PartialForceOutput(func)`: `partial_forces[i, j] = −∂E_i/∂r_j` `[N, N, 3]` and
/// `forces = Σ_i partial_forces[i]`.
#[derive(Debug)]
pub struct PartialForceOutput {
    irreps: GraphIrreps,
    pub func: Box<dyn GraphModule>,
}

impl PartialForceOutput {
    pub fn new(func: Box<dyn GraphModule>) -> Result<Self, ModelError> {
        let mut my_in = IrrepsDict::new();
        my_in.insert(PER_ATOM_ENERGY_KEY.into(), Some("0e".parse::<Irreps>()?));
        let mut irreps = init_irreps("PartialForceOutput", func.irreps_in(), &my_in, &[], func.irreps_out())?;
        irreps.irreps_out.insert(PARTIAL_FORCE_KEY.into(), Some("1o".parse()?));
        irreps.irreps_out.insert(FORCE_KEY.into(), Some("1o".parse()?));
        Ok(PartialForceOutput { irreps, func })
    }
}

impl GraphModule for PartialForceOutput {
    crate::graph_module_boilerplate!("PartialForceOutput", wraps = func);
    fn forward(&self, mut data: AtomicDataDict, training: bool) -> Result<AtomicDataDict, ModelError> {
        let pos = grad_leaf(field(&data, "PartialForceOutput", POSITIONS_KEY)?);
        data.insert(POSITIONS_KEY.into(), pos.shallow_clone());
        let mut out = self.func.forward(data, training)?;
        let e = field(&out, "PartialForceOutput", PER_ATOM_ENERGY_KEY)?.reshape([-1]);
        let n = e.size()[0];
        let mut rows = Vec::with_capacity(n as usize);
        for i in 0..n {
            let g = grad_of_sum(&e.get(i), &[&pos], true, "PartialForceOutput")?;
            rows.push(-g[0].shallow_clone());
        }
        let partial = Tensor::stack(&rows, 0);
        let partial = if training { partial } else { partial.detach() };
        out.insert(FORCE_KEY.into(), partial.sum_dim_intlist([0i64].as_slice(), false, partial.kind()));
        out.insert(PARTIAL_FORCE_KEY.into(), partial);
        Ok(out)
    }
}

/// nequip's `StressOutput(func, do_forces=True)`: `forces = −∂E/∂r`, `virial = −∂E/∂ε`,
/// `stress = (∂E/∂ε) / |det cell|` for a symmetric strain `ε` applied to positions and cell.
#[derive(Debug)]
pub struct StressOutput {
    irreps: GraphIrreps,
    pub func: Box<dyn GraphModule>,
}

impl StressOutput {
    pub fn new(func: Box<dyn GraphModule>) -> Result<Self, ModelError> {
        let mut irreps = init_irreps("StressOutput", func.irreps_in(), &IrrepsDict::new(), &[], func.irreps_out())?;
        for k in [FORCE_KEY, STRESS_KEY, VIRIAL_KEY] {
            irreps.irreps_out.insert(k.into(), Some("1o".parse()?));
        }
        Ok(StressOutput { irreps, func })
    }
}

impl GraphModule for StressOutput {
    crate::graph_module_boilerplate!("StressOutput", wraps = func);
    fn own_tensors(&self) -> Vec<NamedTensor> {
        // nequip's TorchScript placeholder buffer, kept so state dicts match by name
        vec![NamedTensor { name: "_empty".into(), tensor: Tensor::zeros([0], (Kind::Float, tch::Device::Cpu)), trainable: false }]
    }
    fn forward(&self, mut data: AtomicDataDict, training: bool) -> Result<AtomicDataDict, ModelError> {
        const M: &str = "StressOutput";
        if data.contains_key(EDGE_VECTORS_KEY) {
            return Err(ModelError::invalid(M, "the input must not contain edge_vectors (they are recomputed from the strained positions)"));
        }
        let batch = data.get(BATCH_KEY).map(|b| b.shallow_clone());
        let num_batch = match (&batch, data.get(BATCH_PTR_KEY)) {
            (Some(_), Some(ptr)) => ptr.size()[0] - 1,
            (Some(_), None) => return Err(ModelError::MissingField { module: M.into(), field: BATCH_PTR_KEY.into() }),
            _ => 1,
        };
        let pos = grad_leaf(field(&data, M, POSITIONS_KEY)?);
        let orig_cell = data.get(CELL_KEY).map(|c| c.shallow_clone());
        let displacement = Tensor::zeros([num_batch, 3, 3], (pos.kind(), pos.device())).set_requires_grad(true);
        let sym = (&displacement + displacement.transpose(-1, -2)) * 0.5;
        let strained_pos = match &batch {
            Some(b) if num_batch > 1 => &pos + pos.unsqueeze(-2).bmm(&sym.index_select(0, b)).squeeze_dim(-2),
            _ => &pos + pos.matmul(&sym.get(0)),
        };
        data.insert(POSITIONS_KEY.into(), strained_pos);
        let cell = orig_cell.as_ref().map(|c| c.view([-1, 3, 3]).expand([num_batch, 3, 3], false));
        if let Some(c) = &cell {
            data.insert(CELL_KEY.into(), c + c.bmm(&sym));
        }
        let mut out = self.func.forward(data, training)?;
        let e = field(&out, M, TOTAL_ENERGY_KEY)?;
        let grads = grad_of_sum(e, &[&pos, &displacement], training, M)?;
        let virial = grads[1].view([num_batch, 3, 3]);
        out.insert(FORCE_KEY.into(), -&grads[0]);
        let stress = match (&cell, &orig_cell) {
            (Some(c), Some(orig)) => {
                let volume = Tensor::linalg_det(c).abs().view([num_batch, 1, 1]);
                out.insert(CELL_KEY.into(), orig.shallow_clone());
                &virial / volume
            }
            _ => Tensor::zeros([0], (virial.kind(), virial.device())),
        };
        out.insert(STRESS_KEY.into(), stress);
        out.insert(VIRIAL_KEY.into(), -virial);
        out.insert(POSITIONS_KEY.into(), pos);
        Ok(out)
    }
}
