//! Exponential moving average of the weights: `torch_ema.ExponentialMovingAverage` as nequip
//! 0.6.2 uses it (`use_ema`, `ema_decay`, `ema_use_num_updates`): after every optimizer step
//! `shadow ← shadow − (1 − d)(shadow − p)` with `d = min(decay, (1 + n)/(10 + n))` when counting
//! updates. Validation and the best model use the shadow weights.

use tch::Tensor;

pub struct Ema {
    pub decay: f64,
    pub num_updates: Option<i64>,
    pub shadow: Vec<Tensor>,
}

impl Ema {
    pub fn new(params: &[Tensor], decay: f64, use_num_updates: bool) -> Self {
        let shadow = tch::no_grad(|| params.iter().map(|p| p.detach().copy()).collect());
        Ema { decay, num_updates: use_num_updates.then_some(0), shadow }
    }

    pub fn update(&mut self, params: &[Tensor]) {
        let mut d = self.decay;
        if let Some(n) = self.num_updates.as_mut() {
            *n += 1;
            d = d.min((1.0 + *n as f64) / (10.0 + *n as f64));
        }
        tch::no_grad(|| {
            for (s, p) in self.shadow.iter_mut().zip(params) {
                let _ = s.g_sub_(&((&*s - p) * (1.0 - d)));
            }
        });
    }

    /// Swap the shadow weights into `params` (call again to swap back).
    pub fn swap(&mut self, params: &[Tensor]) {
        tch::no_grad(|| {
            for (s, p) in self.shadow.iter_mut().zip(params) {
                let tmp = p.detach().copy();
                let mut p = p.shallow_clone();
                let _ = p.copy_(s);
                let _ = s.copy_(&tmp);
            }
        });
    }
}
