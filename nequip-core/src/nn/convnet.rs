//! `ConvNetLayer`: port of `nequip/nn/_convnetlayer.py` (nequip 0.6.2), with
//! `nequip/utils/tp_utils.py::tp_path_exists`.
//!
//! From `feature_irreps_hidden` keep the irreps reachable from (input features ⊗ edge SH): the
//! scalars (l = 0) and the gated (l > 0, in `feature_irreps_hidden` order). With a gate, one gate
//! scalar per gated irrep (`0e`, or `0o` when `0e` is unreachable); the convolution's output
//! irreps are the gate's input (sorted, simplified). With `norm`, a `NormActivation` on the
//! simplified layer irreps. `resnet` adds the input only when the layer keeps its irreps.

use tch::nn::Path;
use tch::Tensor;

use super::interaction::{InteractionBlock, InteractionOptions};
use crate::e3nn::{Act, E3nnError, Gate, Irrep, Irreps, MulIr, NormActivation};

/// nequip's `tp_path_exists(irreps_in1, irreps_in2, ir_out)`.
pub fn tp_path_exists(irreps_in1: &Irreps, irreps_in2: &Irreps, ir_out: Irrep) -> bool {
    irreps_in1.iter().filter(|a| a.mul > 0).any(|a| irreps_in2.iter().filter(|b| b.mul > 0).any(|b| a.ir.product(&b.ir).contains(&ir_out)))
}

/// The equivariant nonlinearity of a layer.
#[derive(Debug)]
pub enum Nonlinearity {
    Gate(Gate),
    Norm(NormActivation),
}

/// Activations by parity: `(even, odd)` (nequip's `{"e": ..., "o": ...}`).
#[derive(Debug, Clone, Copy)]
pub struct ByParity {
    pub e: Act,
    pub o: Act,
}

impl ByParity {
    fn of(&self, ir: Irrep) -> Act {
        if ir.p == 1 {
            self.e
        } else {
            self.o
        }
    }
}

/// The options of a ConvNetLayer.
#[derive(Debug, Clone)]
pub struct ConvNetOptions {
    pub feature_irreps_hidden: Irreps,
    pub resnet: bool,
    /// `gate` (true) or `norm`.
    pub gate: bool,
    pub nonlinearity_scalars: ByParity,
    pub nonlinearity_gates: ByParity,
    pub interaction: InteractionOptions,
}

/// nequip's `ConvNetLayer` (convolution = `InteractionBlock`).
#[derive(Debug)]
pub struct ConvNetLayer {
    pub conv: InteractionBlock,
    pub equivariant_nonlin: Nonlinearity,
    pub resnet: bool,
    pub irreps_out: Irreps,
}

impl ConvNetLayer {
    /// Build below `path` (the convolution under `path / "conv"`).
    pub fn new(path: &Path, irreps_in: &Irreps, edge_attr_irreps: &Irreps, node_attr_irreps: &Irreps, num_basis: i64, o: &ConvNetOptions) -> Result<Self, E3nnError> {
        let reachable = |ir: Irrep| tp_path_exists(irreps_in, edge_attr_irreps, ir);
        let pick = |scalar: bool| Irreps(o.feature_irreps_hidden.iter().filter(|m| (m.ir.l == 0) == scalar && reachable(m.ir)).cloned().collect());
        let (scalars, gated) = (pick(true), pick(false));
        let layer_out = scalars.concat(&gated).simplify();
        let (nonlin, conv_out) = if o.gate {
            let gate_ir = if reachable(Irrep::new(0, 1)?) { Irrep::new(0, 1)? } else { Irrep::new(0, -1)? };
            let gates = Irreps(gated.iter().map(|m| MulIr { mul: m.mul, ir: gate_ir }).collect());
            let act_scalars = scalars.iter().map(|m| Some(o.nonlinearity_scalars.of(m.ir))).collect();
            let act_gates = gates.iter().map(|m| Some(o.nonlinearity_gates.of(m.ir))).collect();
            let gate = Gate::new(scalars, act_scalars, gates, act_gates, gated)?;
            let conv_out = gate.irreps_in.simplify();
            (Nonlinearity::Gate(gate), conv_out)
        } else {
            let norm = NormActivation::new(None, layer_out.clone(), o.nonlinearity_scalars.e, true, Some(1e-8), false)?;
            (Nonlinearity::Norm(norm), layer_out.clone())
        };
        let conv = InteractionBlock::new(&(path / "conv"), irreps_in, &conv_out, edge_attr_irreps, node_attr_irreps, num_basis, &o.interaction)?;
        let irreps_out = match &nonlin {
            Nonlinearity::Gate(g) => g.irreps_out.clone(),
            Nonlinearity::Norm(_) => layer_out.clone(),
        };
        Ok(ConvNetLayer { conv, equivariant_nonlin: nonlin, resnet: o.resnet && layer_out == *irreps_in, irreps_out })
    }

    /// New node features (see [`InteractionBlock::forward`] for the arguments).
    pub fn forward(&self, node_features: &Tensor, node_attrs: &Tensor, edge_attrs: &Tensor, edge_embedding: &Tensor, edge_index: &Tensor) -> Tensor {
        let x = self.conv.forward(node_features, node_attrs, edge_attrs, edge_embedding, edge_index);
        let x = match &self.equivariant_nonlin {
            Nonlinearity::Gate(g) => g.forward(&x),
            Nonlinearity::Norm(n) => n.forward(&x),
        };
        if self.resnet {
            node_features + x
        } else {
            x
        }
    }
}
