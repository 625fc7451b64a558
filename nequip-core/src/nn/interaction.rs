//! `InteractionBlock`: port of `nequip/nn/_interaction_block.py` (nequip 0.6.2).
//!
//! `w_ij = fc(edge_embedding_ij)`; `sc_i = FCTP(h_i, a_i)` (if `use_sc`); `h' = linear_1(h)`;
//! `m_ij = TP(h'_j, Y_ij; w_ij)` (`uvu`, one path per reachable output irrep, mid irreps sorted);
//! `M_i = Σ_{edges (i, j)} m_ij / sqrt(avg_num_neighbors)`; `out = linear_2(M) + sc`.
//! Parameter names (below the block's path) are nequip's: `linear_1.weight`, `fc.layer{k}.weight`,
//! `linear_2.weight`, `sc.weight`.

use tch::nn::Path;
use tch::Tensor;

use crate::e3nn::tensor_product::TpOptions;
use crate::e3nn::{Act, E3nnError, FullyConnectedNet, Irreps, Linear, TensorProduct};

/// The hyper-parameters of an interaction block (nequip's constructor keywords).
#[derive(Debug, Clone)]
pub struct InteractionOptions {
    /// Hidden layers of the radial MLP (nequip default 1).
    pub invariant_layers: usize,
    /// Width of the radial MLP (nequip default 8).
    pub invariant_neurons: i64,
    /// Messages are divided by `sqrt(avg_num_neighbors)`; `None` = no normalisation.
    pub avg_num_neighbors: Option<f64>,
    /// Self-connection (tensor product of features and species).
    pub use_sc: bool,
    /// Activation of the radial MLP (`nonlinearity_scalars["e"]`: silu or ssp).
    pub radial_act: Act,
}

/// nequip's `InteractionBlock`.
#[derive(Debug)]
pub struct InteractionBlock {
    pub linear_1: Linear,
    pub fc: FullyConnectedNet,
    pub tp: TensorProduct,
    pub linear_2: Linear,
    pub sc: Option<TensorProduct>,
    pub avg_num_neighbors: Option<f64>,
    pub irreps_out: Irreps,
}

impl InteractionBlock {
    /// Build below `path` for node features `feature_irreps_in` → `irreps_out`, edge attributes
    /// (spherical harmonics) `edge_attr_irreps`, one-hot `node_attr_irreps`, `num_basis` radial features.
    pub fn new(
        path: &Path,
        feature_irreps_in: &Irreps,
        irreps_out: &Irreps,
        edge_attr_irreps: &Irreps,
        node_attr_irreps: &Irreps,
        num_basis: i64,
        o: &InteractionOptions,
    ) -> Result<Self, E3nnError> {
        let linear_1 = Linear::new(&(path / "linear_1"), feature_irreps_in.clone(), feature_irreps_in.clone())?;
        let tp = TensorProduct::nequip_convolution(feature_irreps_in.clone(), edge_attr_irreps.clone(), irreps_out)?;
        let mut hs = vec![num_basis];
        hs.extend(std::iter::repeat_n(o.invariant_neurons, o.invariant_layers));
        hs.push(tp.weight_numel as i64);
        let fc = FullyConnectedNet::new(&(path / "fc"), &hs, Some(o.radial_act))?;
        let linear_2 = Linear::new(&(path / "linear_2"), tp.irreps_out.simplify(), irreps_out.clone())?;
        let sc = if o.use_sc {
            Some(TensorProduct::fully_connected(Some(&(path / "sc")), feature_irreps_in.clone(), node_attr_irreps.clone(), irreps_out.clone(), TpOptions::default())?)
        } else {
            None
        };
        Ok(InteractionBlock { linear_1, fc, tp, linear_2, sc, avg_num_neighbors: o.avg_num_neighbors, irreps_out: irreps_out.clone() })
    }

    /// New node features from `node_features [N, d_in]`, `node_attrs [N, T]`, `edge_attrs [E, d_sh]`,
    /// `edge_embedding [E, num_basis]` and `edge_index [2, E]` (row 0 = centre, row 1 = neighbour).
    pub fn forward(&self, node_features: &Tensor, node_attrs: &Tensor, edge_attrs: &Tensor, edge_embedding: &Tensor, edge_index: &Tensor) -> Tensor {
        let weight = self.fc.forward(edge_embedding);
        let sc = self.sc.as_ref().map(|sc| sc.forward(node_features, node_attrs));
        let x = self.linear_1.forward(node_features);
        let messages = self.tp.forward_with(&x.index_select(0, &edge_index.get(1)), edge_attrs, Some(&weight));
        let n = node_features.size()[0];
        let mut summed = Tensor::zeros([n, messages.size()[1]], (messages.kind(), messages.device())).index_add(0, &edge_index.get(0), &messages);
        if let Some(avg) = self.avg_num_neighbors {
            summed = summed / avg.sqrt();
        }
        let out = self.linear_2.forward(&summed);
        match sc {
            Some(s) => out + s,
            None => out,
        }
    }
}
