//! Port of e3nn 0.5.9 `nn/_fc.py`: `FullyConnectedNet`, the radial MLP of NequIP.
//!
//! Layer `k` holds `layer{k}.weight [h_in, h_out]` (N(0,1) init) and computes
//! `x @ (W / sqrt(h_in))`, followed by the normalised activation except after the last layer;
//! no biases.

use tch::{nn::Path, Tensor};

use super::activation::Act;
use super::scalars::ConstOps;
use super::E3nnError;

/// e3nn's `nn.FullyConnectedNet(hs, act)` (variance_in = variance_out = 1, no output activation).
#[derive(Debug)]
pub struct FullyConnectedNet {
    /// Layer sizes `[in, hidden..., out]`.
    pub hs: Vec<i64>,
    /// Activation (normalised with `normalize2mom`), `None` = linear.
    pub act: Option<Act>,
    /// `layer{k}.weight`, `[hs[k], hs[k+1]]`.
    pub weights: Vec<Tensor>,
}

impl FullyConnectedNet {
    /// Registers `layer{k}.weight` under `path`.
    pub fn new(path: &Path, hs: &[i64], act: Option<Act>) -> Result<Self, E3nnError> {
        if hs.len() < 2 || hs.iter().any(|&h| h < 0) {
            return Err(E3nnError::Invalid(format!(
                "FullyConnectedNet needs >= 2 non-negative sizes, got {hs:?}"
            )));
        }
        let weights = hs
            .windows(2)
            .enumerate()
            .map(|(k, w)| (path / format!("layer{k}")).randn_standard("weight", &[w[0], w[1]]))
            .collect();
        Ok(FullyConnectedNet {
            hs: hs.to_vec(),
            act,
            weights,
        })
    }

    /// Builds from given weights (e.g. loaded), shapes `[hs[k], hs[k+1]]`.
    pub fn from_weights(weights: Vec<Tensor>, act: Option<Act>) -> Result<Self, E3nnError> {
        let mut hs = Vec::new();
        for (k, w) in weights.iter().enumerate() {
            let s = w.size();
            if s.len() != 2 || (k > 0 && hs[k] != s[0]) {
                return Err(E3nnError::Invalid(format!(
                    "FullyConnectedNet: bad weight shape {s:?} for layer {k}"
                )));
            }
            if k == 0 {
                hs.push(s[0]);
            }
            hs.push(s[1]);
        }
        if weights.is_empty() {
            return Err(E3nnError::Empty("FullyConnectedNet weights"));
        }
        Ok(FullyConnectedNet { hs, act, weights })
    }

    /// `x [..., hs[0]] -> [..., hs.last()]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let n = self.weights.len();
        let mut h = x.shallow_clone();
        for (k, w) in self.weights.iter().enumerate() {
            let fan_in = w.size()[0] as f64;
            let w = w.div_c(fan_in.sqrt());
            // (mm for the usual [rows, features] input: one dispatch less than matmul)
            h = if h.dim() == 2 { h.mm(&w) } else { h.matmul(&w) };
            if k + 1 < n {
                if let Some(a) = &self.act {
                    h = a.apply_normalized(&h);
                }
            }
        }
        h
    }
}
