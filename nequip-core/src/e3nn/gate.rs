//! Port of e3nn 0.5.9 `nn/_gate.py` (with its `_Sortcut` and the elementwise product).
//!
//! The input is `(scalars + gates + gated)` **sorted** by irrep (stable) and simplified — the
//! layout nequip's convolution produces. Output: `act(scalars)` followed by every gated irrep
//! copy `j` multiplied by activated gate `j` (an odd gate through an odd function flips the
//! parity of its gated irrep).

use tch::Tensor;

use super::activation::{copy_index, Act, Activation};
use super::irreps::{Irreps, MulIr};
use super::tp_kernels::Buffers;
use super::E3nnError;

/// e3nn's `nn.Gate`.
#[derive(Debug)]
pub struct Gate {
    /// Expected input layout.
    pub irreps_in: Irreps,
    /// Output irreps.
    pub irreps_out: Irreps,
    act_scalars: Activation,
    act_gates: Activation,
    /// Sizes of the scalars, gates and gated parts.
    sizes: [i64; 3],
    /// Whether the input is already scalars, gates, gated in that order (no gather).
    in_order: bool,
    /// `[0]`: component index (into the input) of the scalars, gates and gated, one after
    /// the other; `[1]`: for every gated component, the index of its gate (both i64).
    index: Buffers,
}

fn ranges_to_index(irreps: &Irreps, blocks: &[usize]) -> Vec<i64> {
    let sl = irreps.slices();
    blocks
        .iter()
        .flat_map(|&b| sl[b].clone().map(|i| i as i64))
        .collect()
}

impl Gate {
    /// `Gate(irreps_scalars, act_scalars, irreps_gates, act_gates, irreps_gated)`, one activation
    /// (or `None`) per block of `irreps_scalars` / `irreps_gates`.
    pub fn new(
        irreps_scalars: Irreps,
        act_scalars: Vec<Option<Act>>,
        irreps_gates: Irreps,
        act_gates: Vec<Option<Act>>,
        irreps_gated: Irreps,
    ) -> Result<Self, E3nnError> {
        if irreps_gates.lmax().unwrap_or(0) > 0 {
            return Err(E3nnError::Invalid(format!(
                "Gate scalars must be scalars, instead got irreps_gates = {irreps_gates}"
            )));
        }
        if irreps_scalars.lmax().unwrap_or(0) > 0 {
            return Err(E3nnError::Invalid(format!(
                "Scalars must be scalars, instead got irreps_scalars = {irreps_scalars}"
            )));
        }
        if irreps_gates.num_irreps() != irreps_gated.num_irreps() {
            return Err(E3nnError::Invalid(format!(
                "There are {} irreps in irreps_gated, but a different number ({}) of gate scalars in irreps_gates",
                irreps_gated.num_irreps(),
                irreps_gates.num_irreps()
            )));
        }
        // _Sortcut
        let outs = [
            irreps_scalars.simplify(),
            irreps_gates.simplify(),
            irreps_gated.simplify(),
        ];
        let all = outs[0].concat(&outs[1]).concat(&outs[2]);
        let sorted = all.sort();
        let mut extract: [Vec<i64>; 3] = Default::default();
        let mut i = 0;
        for (k, o) in outs.iter().enumerate() {
            let blocks: Vec<usize> = (i..i + o.len()).map(|b| sorted.p[b]).collect();
            extract[k] = ranges_to_index(&sorted.irreps, &blocks);
            i += o.len();
        }
        let act_scalars = Activation::new(irreps_scalars, act_scalars)?;
        let act_gates = Activation::new(irreps_gates, act_gates)?;
        // elementwise product: gate j (one scalar) times gated copy j
        let gate_of = copy_index(&outs[2]);
        let gate_p: Vec<i32> = act_gates
            .irreps_out
            .iter()
            .flat_map(|m| std::iter::repeat_n(m.ir.p, m.mul))
            .collect();
        let mut gated_out = Vec::new();
        let mut j = 0;
        for m in outs[2].iter() {
            for _ in 0..m.mul {
                let mut ir = m.ir;
                ir.p *= gate_p[j];
                gated_out.push(MulIr { mul: 1, ir });
                j += 1;
            }
        }
        let irreps_out = act_scalars.irreps_out.concat(&Irreps(gated_out).simplify());
        let sizes = extract.each_ref().map(|e| e.len() as i64);
        let order: Vec<i64> = extract.concat();
        let in_order = order.iter().enumerate().all(|(i, &j)| i as i64 == j);
        Ok(Gate {
            irreps_in: sorted.irreps.simplify(),
            irreps_out,
            act_scalars,
            act_gates,
            sizes,
            in_order,
            index: Buffers::new(vec![Tensor::from_slice(&order), Tensor::from_slice(&gate_of)]),
        })
    }

    /// `x [..., irreps_in.dim] -> [..., irreps_out.dim]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        // one gather and one split (its backward is one `cat`)
        let index = self.index.get(x);
        let x = if self.in_order { x.shallow_clone() } else { x.index_select(-1, &index[0]) };
        let parts = x.split_with_sizes(self.sizes.as_slice(), -1);
        let scalars = self.act_scalars.forward(&parts[0]);
        if self.sizes[1] == 0 {
            return scalars;
        }
        let gates = self.act_gates.forward(&parts[1]);
        let g = gates.index_select(-1, &index[1]);
        Tensor::cat(&[scalars, &parts[2] * g], -1)
    }
}
