//! The training loop: port of `nequip/train/trainer.py::Trainer` and `nequip/scripts/train.py`
//! (nequip 0.6.2). See `shared/reference` §6.2 for the pseudocode followed here:
//! targets are unscaled into the model's normalised units, the loss (with forces, hence second
//! derivatives) is computed in training mode, metrics in physical units; validation uses the
//! EMA weights when `use_ema`; the best model is chosen by `metrics_key`.
//! Setting up (fresh start or restart) is in [`super::setup`].

use std::collections::BTreeMap;
use std::time::Instant;

use tch::{Device, Tensor};

use super::early_stopping::EarlyStopping;
use super::ema::Ema;
use super::loss_fn::{abbrev, Loss};
use super::metrics::Metrics;
use super::optim::{LrScheduler, Optimizer};
use super::run_dir::{table, Csv, RunFiles};
use super::setup::TrainError;
use crate::config::Config;
use crate::data::batch::collate;
use crate::data::split::Loader;
use crate::data::{AtomicDataDict, InMemoryDataset};
use crate::nn::{GraphModel, GraphModule};

/// Progress reporting of the CLI (a progress bar), called per batch.
pub trait Progress {
    fn start(&mut self, what: &str, epoch: i64, n_batches: usize);
    fn batch(&mut self, done: usize, loss: f64);
    fn finish(&mut self);
}

/// No progress display.
pub struct Silent;
impl Progress for Silent {
    fn start(&mut self, _: &str, _: i64, _: usize) {}
    fn batch(&mut self, _: usize, _: f64) {}
    fn finish(&mut self) {}
}

/// Where training is.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ProgressState {
    /// Epochs completed (nequip's `iepoch`; −1 before the initial validation).
    pub epoch: i64,
    pub best_metric: f64,
    pub best_epoch: i64,
    pub cumulative_wall: f64,
    pub lr: f64,
    pub stop_reason: Option<String>,
}

/// A trainer ready to run (built by [`super::setup::trainer_from_config`]).
pub struct Trainer {
    pub config: Config,
    pub model: GraphModel,
    /// The model's trainable parameters (fixed at set-up; loading a state dict copies in place).
    pub params: Vec<Tensor>,
    pub run_dir: std::path::PathBuf,
    pub dataset: InMemoryDataset,
    pub val_dataset: Option<InMemoryDataset>,
    pub loader: Loader,
    pub loss: Loss,
    pub train_metrics: Metrics,
    pub val_metrics: Metrics,
    pub optimizer: Box<dyn Optimizer>,
    pub scheduler: Option<Box<dyn LrScheduler>>,
    pub scheduler_name: String,
    pub ema: Option<Ema>,
    pub early_stopping: Option<EarlyStopping>,
    pub state: ProgressState,
    pub max_epochs: i64,
    pub metrics_key: String,
    pub max_gradient_norm: f64,
    pub report_init_validation: bool,
    pub log_batch_freq: i64,
    pub log_epoch_freq: i64,
    pub save_checkpoint_freq: i64,
    pub save_ema_checkpoint_freq: i64,
    pub exclude_keys: Vec<String>,
    pub device: Device,
    /// The log and the metrics CSVs.
    pub files: RunFiles,
    pub type_names: Vec<String>,
}

/// Running means of the loss terms over an epoch (nequip's `LossStat`).
#[derive(Default)]
struct LossStat {
    sums: Vec<(String, f64)>,
    n: usize,
}

impl LossStat {
    fn add(&mut self, total: f64, parts: &[(String, f64)]) {
        let names = std::iter::once(("loss".to_string(), total)).chain(parts.iter().map(|(k, v)| (format!("loss_{}", abbrev(k)), *v)));
        for (i, (k, v)) in names.enumerate() {
            match self.sums.get_mut(i) {
                Some(s) => s.1 += v,
                None => self.sums.push((k, v)),
            }
        }
        self.n += 1;
    }
    fn means(&self) -> Vec<(String, f64)> {
        let n = self.n.max(1) as f64;
        // nequip lists the terms first, then the total
        let mut v: Vec<(String, f64)> = self.sums.iter().skip(1).map(|(k, s)| (k.clone(), s / n)).collect();
        if let Some((k, s)) = self.sums.first() {
            v.push((k.clone(), s / n));
        }
        v
    }
}

impl Trainer {
    fn batch_dict(&self, validation: bool, idx: &[usize]) -> Result<AtomicDataDict, TrainError> {
        let ds = if validation { self.val_dataset.as_ref().unwrap_or(&self.dataset) } else { &self.dataset };
        let frames: Vec<_> = idx.iter().filter_map(|&i| ds.get(i)).collect();
        let b = collate(&frames)?;
        Ok(b.to_dict().into_iter().filter(|(k, _)| !self.exclude_keys.contains(k)).map(|(k, v)| (k, v.to_device(self.device))).collect())
    }

    /// One batch (nequip's `batch_step`): `(loss, loss terms)`; trains unless `validation`.
    fn batch_step(&mut self, data: &AtomicDataDict, validation: bool) -> Result<(f64, Vec<(String, f64)>), TrainError> {
        let reference = self.model.unscale(data);
        let params = &self.params;
        let (loss, parts, out_phys) = if validation {
            let out = self.model.forward(data.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect(), false)?;
            let (loss, parts) = self.loss.compute(&self.model.unscale(&out), &reference)?;
            (loss, parts, out)
        } else {
            let out = self.model.forward(reference.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect(), true)?;
            let (loss, parts) = self.loss.compute(&out, &reference)?;
            for p in params {
                let mut g = p.grad();
                if g.defined() {
                    let _ = g.zero_();
                }
            }
            // gradients of the parameters only: no derivatives back to the positions
            crate::runtime::backward_to(&loss, params).map_err(|e| TrainError::Invalid(format!("backward pass of the training loss: {e}")))?;
            if self.max_gradient_norm.is_finite() {
                clip_grad_norm(params, self.max_gradient_norm);
            }
            self.optimizer.step(params, self.state.lr);
            if let Some(e) = self.ema.as_mut() {
                e.update(params);
            }
            let out = self.model.scale(&out.into_iter().map(|(k, v)| (k, v.detach())).collect());
            (loss, parts, out)
        };
        let total = loss.double_value(&[]);
        if !total.is_finite() {
            return Err(TrainError::NonFinite { epoch: self.state.epoch + 1, value: total });
        }
        let parts: Vec<(String, f64)> = parts.iter().map(|(k, t)| (k.clone(), t.double_value(&[]))).collect();
        let out: AtomicDataDict = out_phys.into_iter().map(|(k, v)| (k, v.detach())).collect();
        if validation { &mut self.val_metrics } else { &mut self.train_metrics }.accumulate(&out, data)?;
        Ok((total, parts))
    }

    /// One pass over the training or validation batches; the epoch's mean losses and metrics.
    fn pass(&mut self, validation: bool, progress: &mut dyn Progress) -> Result<Vec<(String, f64)>, TrainError> {
        let epoch = self.state.epoch + 1;
        let batches = if validation { self.loader.val_batches() } else { self.loader.train_batches(epoch.max(1) as usize - 1) };
        if validation { &mut self.val_metrics } else { &mut self.train_metrics }.reset();
        let use_ema = validation && self.ema.is_some();
        if use_ema {
            if let Some(e) = self.ema.as_mut() {
                e.swap(&self.params);
            }
        }
        let mut stat = LossStat::default();
        let mut logged_header = false;
        progress.start(if validation { "validation" } else { "training" }, epoch, batches.len());
        let mut result = Ok(());
        for (ib, idx) in batches.iter().enumerate() {
            let data = match self.batch_dict(validation, idx) {
                Ok(d) => d,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            match self.batch_step(&data, validation) {
                Ok((total, parts)) => {
                    stat.add(total, &parts);
                    let mut row = vec![("epoch".to_string(), epoch as f64), ("batch".to_string(), (ib + 1) as f64)];
                    row.push(("loss".into(), total));
                    row.extend(parts.iter().map(|(k, v)| (format!("loss_{}", abbrev(k)), *v)));
                    row.extend(if validation { &self.val_metrics } else { &self.train_metrics }.flatten(&self.type_names));
                    let csv = if validation { &mut self.files.batch_val } else { &mut self.files.batch_train };
                    if let Err(e) = write_row(csv, &row) {
                        result = Err(e);
                        break;
                    }
                    if self.log_batch_freq > 0 && ((ib + 1) as i64 % self.log_batch_freq == 0 || ib + 1 == batches.len()) {
                        if let Err(e) = self.log_batch(&row, validation, &mut logged_header) {
                            result = Err(e);
                            break;
                        }
                    }
                    if !validation {
                        if let Some(s) = self.scheduler.as_mut() {
                            self.state.lr = s.batch_end(self.state.lr, (epoch - 1) as f64 + (ib + 1) as f64 / batches.len() as f64);
                        }
                    }
                    progress.batch(ib + 1, total);
                }
                Err(TrainError::NonFinite { value, .. }) => {
                    result = Err(TrainError::NonFiniteBatch { epoch, batch: ib + 1, validation, value });
                    break;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        progress.finish();
        if use_ema {
            if let Some(e) = self.ema.as_mut() {
                e.swap(&self.params);
            }
        }
        result?;
        let mut v = stat.means();
        v.extend(if validation { &self.val_metrics } else { &self.train_metrics }.flatten(&self.type_names));
        Ok(v)
    }

    /// nequip's batch lines: `# Epoch batch loss ...` then the values.
    fn log_batch(&mut self, row: &[(String, f64)], validation: bool, header_done: &mut bool) -> Result<(), TrainError> {
        if !*header_done {
            self.log_line("")?;
            self.log_line(if validation { "validation" } else { "training" })?;
            let mut h = String::from("# Epoch batch");
            for (k, _) in row.iter().skip(2) {
                h += &format!(" {k:>12}");
            }
            self.log_line(&h)?;
            *header_done = true;
        }
        let mut l = format!("{:>7} {:>5}", row[0].1 as i64, row[1].1 as i64);
        for (_, v) in row.iter().skip(2) {
            l += &format!(" {:>12}", super::run_dir::fmt_g(*v));
        }
        self.log_line(&l)
    }

    /// Append a line to the log (and echo it when the log echoes).
    pub fn log_line(&mut self, s: &str) -> Result<(), TrainError> {
        let log = &mut self.files.log;
        log.line(s).map_err(|e| TrainError::io(log.path(), e))
    }

    /// Train until `max_epochs` or an early-stopping condition (nequip's `Trainer.train`).
    pub fn train(&mut self, progress: &mut dyn Progress) -> Result<ProgressState, TrainError> {
        let start = Instant::now();
        let wall0 = self.state.cumulative_wall;
        self.log_line(&format!("Torch device: {}", device_name(self.device)))?;
        self.log_line(&format!("Number of weights: {}", self.model.num_trainable()))?;
        self.log_line(if self.state.epoch > 0 { "! Restarting training ..." } else { "! Starting training ..." })?;
        if self.state.epoch <= 0 && self.report_init_validation && self.files.initialization.is_empty() {
            let v = self.pass(true, progress)?;
            let wall = start.elapsed().as_secs_f64();
            let mut row = vec![("epoch".to_string(), 0.0), ("wall".to_string(), wall), ("LR".to_string(), self.state.lr)];
            row.extend(v.iter().map(|(k, x)| (format!("validation_{k}"), *x)));
            write_row(&mut self.files.initialization, &row)?;
            let mut shown = vec![("epoch".to_string(), 0.0), ("wall".to_string(), wall), ("LR".to_string(), self.state.lr)];
            shown.extend(v.clone());
            for l in table("Initialization", &[("Initial Validation", &shown)]) {
                self.log_line(&l)?;
            }
            self.state.epoch = 0;
            self.best_check(&row_map(&row), 0)?;
        }
        self.state.epoch = self.state.epoch.max(0);
        while self.state.stop_reason.is_none() {
            if self.state.epoch >= self.max_epochs {
                self.state.stop_reason = Some("max epochs".into());
                break;
            }
            let train = self.pass(false, progress)?;
            let val = self.pass(true, progress)?;
            self.state.epoch += 1;
            let wall = start.elapsed().as_secs_f64();
            self.state.cumulative_wall = wall0 + wall;
            let head = vec![("epoch".to_string(), self.state.epoch as f64), ("wall".to_string(), wall), ("LR".to_string(), self.state.lr)];
            let mut row = head.clone();
            row.extend(train.iter().map(|(k, x)| (format!("training_{k}"), *x)));
            row.extend(val.iter().map(|(k, x)| (format!("validation_{k}"), *x)));
            write_row(&mut self.files.epoch, &row)?;
            let (mut t, mut v) = (head.clone(), head.clone());
            t.extend(train);
            v.extend(val);
            for l in table("Train", &[("Train", &t), ("Validation", &v)]) {
                self.log_line(&l)?;
            }
            self.log_line(&format!("Wall time: {wall}"))?;
            let mut mae = row_map(&row);
            mae.insert("cumulative_wall".into(), self.state.cumulative_wall);
            if let (Some(s), true) = (self.scheduler.as_mut(), self.scheduler_name == "ReduceLROnPlateau") {
                let m = *mae.get(&self.metrics_key).ok_or_else(|| TrainError::UnknownMetric { key: self.metrics_key.clone(), available: mae.keys().cloned().collect() })?;
                self.state.lr = s.epoch_end(self.state.lr, m);
            }
            self.best_check(&mae, self.state.epoch)?;
            if let Some(es) = self.early_stopping.as_mut() {
                let (stop, msg) = es.check(&mae);
                if stop {
                    self.state.stop_reason = Some(msg);
                }
            }
            if self.log_epoch_freq > 0 && self.state.epoch % self.log_epoch_freq == 0 || self.state.stop_reason.is_some() || self.state.epoch >= self.max_epochs {
                self.save_progress()?;
            }
            self.periodic_checkpoints()?;
        }
        let reason = self.state.stop_reason.clone().unwrap_or_default();
        self.log_line(&format!("! Stop training: {reason}"))?;
        self.log_line(&format!("Wall time: {}", start.elapsed().as_secs_f64()))?;
        self.save_progress()?;
        Ok(self.state.clone())
    }

    /// Save `best_model` when `metrics_key` improved (EMA weights when `use_ema`).
    fn best_check(&mut self, mae: &BTreeMap<String, f64>, epoch: i64) -> Result<(), TrainError> {
        let m = *mae.get(&self.metrics_key).ok_or_else(|| TrainError::UnknownMetric { key: self.metrics_key.clone(), available: mae.keys().cloned().collect() })?;
        if m < self.state.best_metric {
            self.state.best_metric = m;
            self.state.best_epoch = epoch;
            super::setup::save_model(self, "best_model.safetensors", true)?;
            self.log_line(&format!("! Best model {epoch:>8} {m:>8.3}"))?;
        }
        Ok(())
    }

    fn periodic_checkpoints(&mut self) -> Result<(), TrainError> {
        let e = self.state.epoch;
        if self.save_checkpoint_freq > 0 && e % self.save_checkpoint_freq == 0 {
            super::setup::save_model(self, &format!("ckpt{e}.safetensors"), false)?;
        }
        if self.save_ema_checkpoint_freq > 0 && e % self.save_ema_checkpoint_freq == 0 {
            super::setup::save_model(self, &format!("ckpt_ema_{e}.safetensors"), true)?;
        }
        Ok(())
    }
}

fn write_row(csv: &mut Csv, row: &[(String, f64)]) -> Result<(), TrainError> {
    csv.row(row).map_err(|e| TrainError::io(csv.path(), e))
}

fn row_map(row: &[(String, f64)]) -> BTreeMap<String, f64> {
    row.iter().cloned().collect()
}

fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}"),
    }
}

/// `torch.nn.utils.clip_grad_norm_(params, max_norm)` (2-norm over all gradients).
pub fn clip_grad_norm(params: &[Tensor], max_norm: f64) {
    tch::no_grad(|| {
        let grads: Vec<Tensor> = params.iter().map(|p| p.grad()).filter(|g| g.defined()).collect();
        if grads.is_empty() {
            return;
        }
        let total: f64 = grads.iter().map(|g| g.square().sum(tch::Kind::Double).double_value(&[])).sum::<f64>().sqrt();
        let coef = (max_norm / (total + 1e-6)).min(1.0);
        for mut g in grads {
            let _ = g.g_mul_scalar_(coef);
        }
    });
}
