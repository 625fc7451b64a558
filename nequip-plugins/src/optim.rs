//! Optimizers and schedulers nequip configs name: `torch.optim.{Adam, AdamW, SGD, RMSprop}`
//! and `torch.optim.lr_scheduler.{ReduceLROnPlateau, CosineAnnealingWarmRestarts}` with
//! torch 2.13's defaults and single-tensor update rules (`torch/optim/adam.py`, `adamw.py`,
//! `sgd.py`, `rmsprop.py`, `lr_scheduler.py`).

use nequip_core::train::optim::{Buffers, LrScheduler, Optimizer, OptimizerBuilder, SchedulerBuilder};
use nequip_core::{auto_init, builder};
use tch::Tensor;

fn grads(params: &[Tensor]) -> Vec<Option<Tensor>> {
    params.iter().map(|p| { let g = p.grad(); g.defined().then_some(g) }).collect()
}

/// Adam (`amsgrad`, L2 `weight_decay` added to the gradient).
#[builder(name = "Adam", kind = optimizer)]
#[auto_init]
pub struct AdamKeys {
    /// Learning rate (nequip passes `learning_rate`).
    pub lr: f64,
    #[key(default = vec![0.9, 0.999])]
    pub betas: Vec<f64>,
    #[key(default = 1e-8)]
    pub eps: f64,
    #[key(default = 0.0)]
    pub weight_decay: f64,
    #[key(default = false)]
    pub amsgrad: bool,
}

/// AdamW (decoupled weight decay, default 0.01).
#[builder(name = "AdamW", kind = optimizer)]
#[auto_init]
pub struct AdamWKeys {
    pub lr: f64,
    #[key(default = vec![0.9, 0.999])]
    pub betas: Vec<f64>,
    #[key(default = 1e-8)]
    pub eps: f64,
    #[key(default = 0.01)]
    pub weight_decay: f64,
    #[key(default = false)]
    pub amsgrad: bool,
}

struct Adam {
    b1: f64,
    b2: f64,
    eps: f64,
    wd: f64,
    decoupled: bool,
    amsgrad: bool,
    s: Buffers,
}

fn adam(betas: &[f64], eps: f64, wd: f64, decoupled: bool, amsgrad: bool) -> Box<dyn Optimizer> {
    let (b1, b2) = (betas.first().copied().unwrap_or(0.9), betas.get(1).copied().unwrap_or(0.999));
    Box::new(Adam { b1, b2, eps, wd, decoupled, amsgrad, s: Buffers::new(&["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]) })
}

impl OptimizerBuilder for AdamKeys {
    fn build(self) -> Box<dyn Optimizer> {
        adam(&self.betas, self.eps, self.weight_decay, false, self.amsgrad)
    }
}

impl OptimizerBuilder for AdamWKeys {
    fn build(self) -> Box<dyn Optimizer> {
        adam(&self.betas, self.eps, self.weight_decay, true, self.amsgrad)
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: &[Tensor], lr: f64) {
        self.s.step += 1;
        let t = self.s.step as f64;
        let bc1 = 1.0 - self.b1.powf(t);
        let bc2_sqrt = (1.0 - self.b2.powf(t)).sqrt();
        tch::no_grad(|| {
            for (i, (p, g)) in params.iter().zip(grads(params)).enumerate() {
                let Some(mut g) = g else { continue };
                let mut p = p.shallow_clone();
                if self.wd != 0.0 {
                    if self.decoupled {
                        let _ = p.g_mul_scalar_(1.0 - lr * self.wd);
                    } else {
                        g = g + &p * self.wd;
                    }
                }
                let mut m = self.s.get(0, i, || p.zeros_like());
                let mut v = self.s.get(1, i, || p.zeros_like());
                let _ = m.lerp_(&g, 1.0 - self.b1);
                let _ = v.g_mul_scalar_(self.b2).addcmul_(&g, &(&g * (1.0 - self.b2)));
                let denom = if self.amsgrad {
                    let mut vmax = self.s.get(2, i, || p.zeros_like());
                    let _ = vmax.copy_(&vmax.maximum(&v));
                    vmax.sqrt() / bc2_sqrt + self.eps
                } else {
                    v.sqrt() / bc2_sqrt + self.eps
                };
                let _ = p.addcdiv_(&(m * (-lr / bc1)), &denom);
            }
        });
    }
    fn state(&self) -> Vec<(String, Tensor)> {
        self.s.state()
    }
    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<(), String> {
        self.s.load(state)
    }
}

/// SGD with `momentum`, `dampening`, `nesterov`, L2 `weight_decay`.
#[builder(name = "SGD", kind = optimizer)]
#[auto_init]
pub struct SgdKeys {
    pub lr: f64,
    #[key(default = 0.0)]
    pub momentum: f64,
    #[key(default = 0.0)]
    pub dampening: f64,
    #[key(default = 0.0)]
    pub weight_decay: f64,
    #[key(default = false)]
    pub nesterov: bool,
}

struct Sgd {
    k: SgdKeys,
    s: Buffers,
}

impl OptimizerBuilder for SgdKeys {
    fn build(self) -> Box<dyn Optimizer> {
        Box::new(Sgd { k: self, s: Buffers::new(&["momentum_buffer"]) })
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &[Tensor], lr: f64) {
        self.s.step += 1;
        tch::no_grad(|| {
            for (i, (p, g)) in params.iter().zip(grads(params)).enumerate() {
                let Some(g) = g else { continue };
                let mut p = p.shallow_clone();
                let mut d = if self.k.weight_decay != 0.0 { g + &p * self.k.weight_decay } else { g };
                if self.k.momentum != 0.0 {
                    let fresh = !self.s.has(0, i);
                    let mut buf = self.s.get(0, i, || d.copy());
                    if !fresh {
                        let _ = buf.g_mul_scalar_(self.k.momentum).g_add_(&(&d * (1.0 - self.k.dampening)));
                    }
                    d = if self.k.nesterov { d + &buf * self.k.momentum } else { buf.shallow_clone() };
                }
                let _ = p.g_add_(&(d * -lr));
            }
        });
    }
    fn state(&self) -> Vec<(String, Tensor)> {
        self.s.state()
    }
    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<(), String> {
        self.s.load(state)
    }
}

/// RMSprop (`alpha`, `centered`, `momentum`, L2 `weight_decay`).
#[builder(name = "RMSprop", kind = optimizer)]
#[auto_init]
pub struct RmspropKeys {
    pub lr: f64,
    #[key(default = 0.99)]
    pub alpha: f64,
    #[key(default = 1e-8)]
    pub eps: f64,
    #[key(default = 0.0)]
    pub weight_decay: f64,
    #[key(default = 0.0)]
    pub momentum: f64,
    #[key(default = false)]
    pub centered: bool,
}

struct Rmsprop {
    k: RmspropKeys,
    s: Buffers,
}

impl OptimizerBuilder for RmspropKeys {
    fn build(self) -> Box<dyn Optimizer> {
        Box::new(Rmsprop { k: self, s: Buffers::new(&["square_avg", "grad_avg", "momentum_buffer"]) })
    }
}

impl Optimizer for Rmsprop {
    fn step(&mut self, params: &[Tensor], lr: f64) {
        self.s.step += 1;
        let a = self.k.alpha;
        tch::no_grad(|| {
            for (i, (p, g)) in params.iter().zip(grads(params)).enumerate() {
                let Some(g) = g else { continue };
                let mut p = p.shallow_clone();
                let g = if self.k.weight_decay != 0.0 { g + &p * self.k.weight_decay } else { g };
                let mut sq = self.s.get(0, i, || p.zeros_like());
                let _ = sq.g_mul_scalar_(a).addcmul_(&g, &(&g * (1.0 - a)));
                let avg = if self.k.centered {
                    let mut ga = self.s.get(1, i, || p.zeros_like());
                    let _ = ga.lerp_(&g, 1.0 - a);
                    (&sq - ga.square()).sqrt() + self.k.eps
                } else {
                    sq.sqrt() + self.k.eps
                };
                if self.k.momentum > 0.0 {
                    let mut buf = self.s.get(2, i, || p.zeros_like());
                    let _ = buf.g_mul_scalar_(self.k.momentum).g_add_(&(&g / &avg));
                    let _ = p.g_add_(&(buf * -lr));
                } else {
                    let _ = p.addcdiv_(&(g * -lr), &avg);
                }
            }
        });
    }
    fn state(&self) -> Vec<(String, Tensor)> {
        self.s.state()
    }
    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<(), String> {
        self.s.load(state)
    }
}

/// Reduce the learning rate when `metrics_key` stops improving (stepped once per epoch).
#[builder(name = "ReduceLROnPlateau", kind = lr_scheduler)]
#[auto_init]
pub struct ReduceLrOnPlateau {
    /// `min` or `max`.
    #[key(default = "min")]
    pub mode: String,
    #[key(default = 0.1)]
    pub factor: f64,
    #[key(default = 10)]
    pub patience: i64,
    #[key(default = 1e-4)]
    pub threshold: f64,
    /// `rel` or `abs`.
    #[key(default = "rel")]
    pub threshold_mode: String,
    #[key(default = 0)]
    pub cooldown: i64,
    #[key(default = 0.0)]
    pub min_lr: f64,
    #[key(default = 1e-8)]
    pub eps: f64,
}

#[derive(serde::Serialize, serde::Deserialize, Default, Clone)]
struct PlateauState {
    best: Option<f64>,
    num_bad_epochs: i64,
    cooldown_counter: i64,
}

struct Plateau {
    k: ReduceLrOnPlateau,
    s: PlateauState,
}

impl SchedulerBuilder for ReduceLrOnPlateau {
    fn build(self, _lr: f64) -> Box<dyn LrScheduler> {
        Box::new(Plateau { k: self, s: PlateauState::default() })
    }
}

impl LrScheduler for Plateau {
    fn epoch_end(&mut self, lr: f64, m: f64) -> f64 {
        let min = self.k.mode != "max";
        let rel = self.k.threshold_mode != "abs";
        let better = match self.s.best {
            None => true,
            Some(b) => match (min, rel) {
                (true, true) => m < b * (1.0 - self.k.threshold),
                (true, false) => m < b - self.k.threshold,
                (false, true) => m > b * (1.0 + self.k.threshold),
                (false, false) => m > b + self.k.threshold,
            },
        };
        if better {
            self.s.best = Some(m);
            self.s.num_bad_epochs = 0;
        } else {
            self.s.num_bad_epochs += 1;
        }
        if self.s.cooldown_counter > 0 {
            self.s.cooldown_counter -= 1;
            self.s.num_bad_epochs = 0;
        }
        if self.s.num_bad_epochs > self.k.patience {
            self.s.cooldown_counter = self.k.cooldown;
            self.s.num_bad_epochs = 0;
            let new = (lr * self.k.factor).max(self.k.min_lr);
            if lr - new > self.k.eps {
                return new;
            }
        }
        lr
    }
    fn state(&self) -> serde_json::Value {
        serde_json::to_value(&self.s).unwrap_or_default()
    }
    fn load_state(&mut self, state: &serde_json::Value) -> Result<(), String> {
        self.s = serde_json::from_value(state.clone()).map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Cosine annealing with warm restarts (stepped every batch with the fractional epoch).
#[builder(name = "CosineAnnealingWarmRestarts", kind = lr_scheduler)]
#[auto_init]
pub struct CosineWarmRestarts {
    /// Epochs of the first cycle.
    #[key(name = "T_0")]
    pub t_0: f64,
    /// Cycle growth factor (integer >= 1).
    #[key(name = "T_mult", default = 1.0)]
    pub t_mult: f64,
    #[key(default = 0.0)]
    pub eta_min: f64,
}

struct Cosine {
    k: CosineWarmRestarts,
    base_lr: f64,
}

impl SchedulerBuilder for CosineWarmRestarts {
    fn build(self, base_lr: f64) -> Box<dyn LrScheduler> {
        Box::new(Cosine { k: self, base_lr })
    }
}

impl LrScheduler for Cosine {
    fn batch_end(&mut self, _lr: f64, epoch: f64) -> f64 {
        let (t0, tm) = (self.k.t_0, self.k.t_mult);
        let (t_cur, t_i) = if epoch >= t0 {
            if tm == 1.0 {
                (epoch % t0, t0)
            } else {
                let n = ((epoch / t0 * (tm - 1.0) + 1.0).ln() / tm.ln()).floor();
                (epoch - t0 * (tm.powf(n) - 1.0) / (tm - 1.0), t0 * tm.powf(n))
            }
        } else {
            (epoch, t0)
        };
        self.k.eta_min + (self.base_lr - self.k.eta_min) * (1.0 + (std::f64::consts::PI * t_cur / t_i).cos()) / 2.0
    }
    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "base_lr": self.base_lr })
    }
    fn load_state(&mut self, state: &serde_json::Value) -> Result<(), String> {
        self.base_lr = state["base_lr"].as_f64().ok_or("missing base_lr")?;
        Ok(())
    }
}
