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
        // torch: HuberLoss(delta) = delta * SmoothL1Loss(beta = delta)
        smooth_l1(pred, target, self.delta) * self.delta
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
        smooth_l1(pred, target, self.beta)
    }
}

fn smooth_l1(pred: &Tensor, target: &Tensor, beta: f64) -> Tensor {
    let d = (pred - target).abs();
    if beta == 0.0 {
        return d;
    }
    let quad = d.square() * (0.5 / beta);
    let lin = &d - 0.5 * beta;
    quad.where_self(&d.lt(beta), &lin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(l: &dyn ElementwiseLoss, d: &[f64]) -> Vec<f64> {
        let p = Tensor::from_slice(d);
        Vec::<f64>::try_from(&l.elementwise(&p, &p.zeros_like())).unwrap()
    }

    /// Values computed by hand from torch's documented formulas.
    #[test]
    fn torch_formulas() {
        let d = [0.0, 0.25, -0.5, 2.0, -3.0];
        assert_eq!(eval(&MseLoss {}, &d), vec![0.0, 0.0625, 0.25, 4.0, 9.0]);
        assert_eq!(eval(&L1Loss {}, &d), vec![0.0, 0.25, 0.5, 2.0, 3.0]);
        // delta 1: 0.5 d^2 inside, |d| - 0.5 outside
        assert_eq!(eval(&HuberLoss { delta: 1.0 }, &d), vec![0.0, 0.03125, 0.125, 1.5, 2.5]);
        // delta 0.5: 0.5 d^2 for |d| < 0.5, else 0.5 (|d| - 0.25)
        assert_eq!(eval(&HuberLoss { delta: 0.5 }, &d), vec![0.0, 0.03125, 0.125, 0.875, 1.375]);
        // beta 0.5: 0.5 d^2 / 0.5 = d^2 inside, |d| - 0.25 outside
        assert_eq!(eval(&SmoothL1Loss { beta: 0.5 }, &d), vec![0.0, 0.0625, 0.25, 1.75, 2.75]);
        assert_eq!(eval(&SmoothL1Loss { beta: 0.0 }, &d), vec![0.0, 0.25, 0.5, 2.0, 3.0]);
    }
}
