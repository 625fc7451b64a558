//! `InteractionBlock`: port of `nequip/nn/_interaction_block.py` (nequip 0.6.2).
//!
//! `w_ij = fc(edge_embedding_ij)`; `sc_i = FCTP(h_i, a_i)` (if `use_sc`); `h' = linear_1(h)`;
//! `m_ij = TP(h'_j, Y_ij; w_ij)` (`uvu`, one path per reachable output irrep, mid irreps sorted);
//! `M_i = Σ_{edges (i, j)} m_ij / sqrt(avg_num_neighbors)`; `out = linear_2(M) + sc`.
//! Parameter names (below the block's path) are nequip's: `linear_1.weight`, `fc.layer{k}.weight`,
//! `linear_2.weight`, `sc.weight`. The `m → M → linear_2` steps run as one
//! [`FusedConvolution`] (same numbers, no e3nn-layout messages; on the CPU its messages are
//! one native kernel, `nequip-core/csrc/uvu_native.cpp`).

use tch::nn::Path;
use tch::Tensor;

use crate::e3nn::tensor_product::TpOptions;
use crate::e3nn::{Act, E3nnError, FullyConnectedNet, FusedConvolution, Irreps, Linear, TensorProduct};

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
    /// `tp → scatter → linear_2` as one computation (same numbers; `None` = the separate ops).
    pub fused: Option<FusedConvolution>,
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
        let fused = FusedConvolution::try_new(&tp, &linear_2);
        Ok(InteractionBlock { linear_1, fc, tp, linear_2, sc, avg_num_neighbors: o.avg_num_neighbors, fused, irreps_out: irreps_out.clone() })
    }

    /// New node features from `node_features [N, d_in]`, `node_attrs [N, T]`, `edge_attrs [E, d_sh]`,
    /// `edge_embedding [E, num_basis]` and `edge_index [2, E]` (row 0 = centre, row 1 = neighbour).
    pub fn forward(&self, node_features: &Tensor, node_attrs: &Tensor, edge_attrs: &Tensor, edge_embedding: &Tensor, edge_index: &Tensor) -> Tensor {
        let weight = self.fc.forward(edge_embedding);
        let sc = self.sc.as_ref().map(|sc| sc.forward(node_features, node_attrs));
        let x = self.linear_1.forward(node_features);
        let (centres, neighbours) = (edge_index.get(0), edge_index.get(1));
        let n = node_features.size()[0];
        let divisor = self.avg_num_neighbors.map(f64::sqrt);
        let out = match (&self.fused, &self.linear_2.weight) {
            (Some(f), Some(w2)) => f.forward(&x, &neighbours, edge_attrs, &weight, &centres, n, divisor, w2),
            _ => self.separate_ops(&x.index_select(0, &neighbours), edge_attrs, &weight, &centres, n, divisor),
        };
        match sc {
            Some(s) => out + s,
            None => out,
        }
    }

    /// `linear_2(scatter(tp(x_edges, Y; w)) / divisor)` with the separate e3nn ops: the path
    /// when the block does not fuse (the composition `tests/e3nn_conv.rs` checks
    /// [`FusedConvolution`] against).
    pub fn separate_ops(&self, x_edges: &Tensor, edge_attrs: &Tensor, weight: &Tensor, centres: &Tensor, n_nodes: i64, divisor: Option<f64>) -> Tensor {
        let messages = self.tp.forward_with(x_edges, edge_attrs, Some(weight));
        let mut summed = Tensor::zeros([n_nodes, messages.size()[1]], (messages.kind(), messages.device())).index_add(0, centres, &messages);
        if let Some(d) = divisor {
            summed = summed / d;
        }
        self.linear_2.forward(&summed)
    }
}
