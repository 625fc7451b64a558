//! Element-wise losses (`reduction="none"`), the `torch.nn` classes nequip's `loss_coeffs`
//! name (`MSELoss`, `L1Loss`, `HuberLoss`, `SmoothL1Loss`), with torch's parameters and formulas.

use nequip_core::train::loss::ElementwiseLoss;
use nequip_core::{auto_init, builder};
use tch::Tensor;

/// Squared error `(pred - target)^2` (torch.nn.MSELoss).
#[builder(name = "MSELoss", kind = loss, aliases = ["mse"])]
#[auto_init]
pub struct MseLoss {}

impl ElementwiseLoss for MseLoss {
    fn elementwise(&self, pred: &Tensor, target: &Tensor) -> Tensor {
        (pred - target).square()
    }
}

/// Absolute error `|pred - target|` (torch.nn.L1Loss).
#[builder(name = "L1Loss", kind = loss, aliases = ["mae"])]
#[auto_init]
pub struct L1Loss {}

impl ElementwiseLoss for L1Loss {
    fn elementwise(&self, pred: &Tensor, target: &Tensor) -> Tensor {
        (pred - target).abs()
    }
}

/// Huber loss (torch.nn.HuberLoss): `0.5 d^2` for `|d| < delta`, else `delta (|d| - 0.5 delta)`.
#[builder(name = "HuberLoss", kind = loss)]
#[auto_init]
pub struct HuberLoss {
    /// Threshold between the quadratic and the linear regime.
    #[key(default = 1.0)]
    pub delta: f64,
}

impl ElementwiseLoss for HuberLoss {
    fn elementwise(&self, pred: &Tensor, target: &Tensor) -> Tensor {
        let d = (pred - target).abs();
        let quad = d.square() * 0.5;
        let lin = (&d - 0.5 * self.delta) * self.delta;
        quad.where_self(&d.lt(self.delta), &lin)
    }
}

/// Smooth L1 loss (torch.nn.SmoothL1Loss): `0.5 d^2 / beta` for `|d| < beta`, else `|d| - 0.5 beta`.
#[builder(name = "SmoothL1Loss", kind = loss)]
#[auto_init]
pub struct SmoothL1Loss {
    /// Threshold between the quadratic and the linear regime.
    #[key(default = 1.0)]
    pub beta: f64,
}

impl ElementwiseLoss for SmoothL1Loss {
    fn elementwise(&self, pred: &Tensor, target: &Tensor) -> Tensor {
        let d = (pred - target).abs();
        if self.beta == 0.0 {
            return d;
        }
        let quad = d.square() * (0.5 / self.beta);
        let lin = &d - 0.5 * self.beta;
        quad.where_self(&d.lt(self.beta), &lin)
    }
}
