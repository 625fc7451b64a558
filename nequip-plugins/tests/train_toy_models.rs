//! nequip's training integration tests with its toy models (`tests/integration/conftest.py`
//! of nequip 0.6.2), registered here as model builders the way a downstream crate would:
//! `IdentityModel` (outputs the labels: every loss and metric is zero, its parameter never
//! moves), `ConstFactorModel` (a fixed factor: epoch metrics constant) and
//! `LearningFactorModel` (a learnable factor: losses and metrics go down), in float32 and
//! float64, with the labels passed in through `model_input_fields`.

use std::path::{Path, PathBuf};

use nequip_core::builder;
use nequip_core::config::Config;
use nequip_core::data::keys::*;
use nequip_core::data::AtomicDataDict;
use nequip_core::model::module_context;
use nequip_core::nn::graph::{init_irreps, irreps_dict, GraphIrreps, NamedTensor, Params};
use nequip_core::nn::{GraphModule, IrrepsDict, ModelError};
use nequip_core::registry::BuildError;
use nequip_core::train::{trainer_from_config, SetupOptions, Silent};
use tch::{Kind, Tensor};

/// `forces ← a · forces + b`, `total_energy ← a · total_energy + b` with one parameter.
#[derive(Debug)]
struct Toy {
    irreps: GraphIrreps,
    params: Params,
    name: &'static str,
    /// `(a, b)` as functions of the parameter `p`.
    affine: fn(&Tensor) -> (Tensor, Tensor),
}

impl GraphModule for Toy {
    fn type_name(&self) -> &str {
        self.name
    }
    fn irreps(&self) -> &GraphIrreps {
        &self.irreps
    }
    fn irreps_mut(&mut self) -> &mut GraphIrreps {
        &mut self.irreps
    }
    fn forward(&self, mut data: AtomicDataDict, _training: bool) -> Result<AtomicDataDict, ModelError> {
        let p = &self.params.named()[0].tensor;
        let (a, b) = (self.affine)(p);
        for k in [FORCE_KEY, TOTAL_ENERGY_KEY] {
            let v = data.get(k).ok_or_else(|| ModelError::MissingField { module: self.name.into(), field: k.into() })?;
            let nv = v * &a + &b;
            data.insert(k.into(), nv);
        }
        Ok(data)
    }
    fn own_tensors(&self) -> Vec<NamedTensor> {
        self.params.named()
    }
}

fn toy(config: &Config, name: &'static str, param: &str, init: f64, affine: fn(&Tensor) -> (Tensor, Tensor)) -> Result<Box<dyn GraphModule>, BuildError> {
    let ctx = module_context(config, name, IrrepsDict::new())?;
    let my = irreps_dict(&[(TOTAL_ENERGY_KEY, Some("0e")), (FORCE_KEY, Some("1o"))]).map_err(ModelError::from)?;
    let irreps = init_irreps(name, &my, &IrrepsDict::new(), &[], &IrrepsDict::new())?;
    let params = ctx.params();
    let _ = params.add(param, &Tensor::from(init).to_kind(ctx.kind), true);
    Ok(Box::new(Toy { irreps, params, name, affine }))
}

/// Outputs the labels unchanged (plus a trainable zero).
#[builder(name = "IdentityModel", kind = model_builder)]
fn identity_model(config: &mut Config) -> Result<Box<dyn GraphModule>, BuildError> {
    toy(config, "IdentityModel", "zero", 0.0, |p| (p.ones_like(), p.shallow_clone()))
}

/// Scales the labels by a learnable factor starting at 1.111.
#[builder(name = "LearningFactorModel", kind = model_builder)]
fn learning_factor_model(config: &mut Config) -> Result<Box<dyn GraphModule>, BuildError> {
    toy(config, "LearningFactorModel", "factor", 1.111, |p| (p.shallow_clone(), p.zeros_like()))
}

/// Scales the labels by a fixed 3.7777 (the parameter only keeps the optimizer busy).
#[builder(name = "ConstFactorModel", kind = model_builder)]
fn const_factor_model(config: &mut Config) -> Result<Box<dyn GraphModule>, BuildError> {
    toy(config, "ConstFactorModel", "dummy", 0.0, |p| (p.zeros_like().detach() + 3.7777, p * 0.0))
}

/// Trains the toy model; returns its root (removed when dropped) and run directory.
fn run(builder: &str, model_dtype: &str, tag: &str) -> (tempfile::TempDir, PathBuf) {
    nequip_plugins::link();
    let root_dir = tempfile::Builder::new().prefix(&format!("nequip-toy-{tag}-")).tempdir().unwrap();
    let root = root_dir.path();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/toluene_xtb.npz");
    let text = format!(
        "root: {}\nrun_name: run\nseed: 1\ndevice: cpu\nmodel_dtype: {model_dtype}\nmodel_builders: [{builder}]\n\
         model_input_fields: {{forces: 1o, total_energy: 0e}}\nr_max: 4.0\nchemical_symbols: [H, C]\n\
         dataset: npz\ndataset_file_name: {}\nkey_mapping: {{z: atomic_numbers, E: total_energy, F: forces, R: pos}}\nnpz_fixed_field_keys: [atomic_numbers]\n\
         n_train: 10\nn_val: 5\nbatch_size: 5\nmax_epochs: 3\nlearning_rate: 0.01\nloss_coeffs: forces\n",
        root.display(),
        data.display()
    );
    let mut t = trainer_from_config(Config::from_yaml_str(&text, "toy.yaml").unwrap(), &SetupOptions { echo: false, warn_unused: true }).unwrap();
    t.train(&mut Silent).unwrap();
    let run = root.join("run");
    (root_dir, run)
}

fn columns(p: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(p).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(|s| s.trim().to_string()).collect();
    let rows = lines.map(|l| l.split(',').map(|c| c.trim().parse().unwrap()).collect()).collect();
    (header, rows)
}

fn last_param(dir: &Path, name: &str) -> f64 {
    let (m, _) = nequip_core::io::model_file::load(&dir.join("last_model.safetensors"), Some("cpu")).unwrap();
    m.state_dict().into_iter().find(|t| t.name == format!("model.{name}")).unwrap().tensor.to_kind(Kind::Double).double_value(&[])
}

#[test]
fn identity_model_has_zero_losses_and_metrics() {
    for dtype in ["float64", "float32"] {
        let (_root, dir) = run("IdentityModel", dtype, &format!("id-{dtype}"));
        // float32 truncates the float64 labels (nequip's "approximate identity")
        let tol = if dtype == "float64" { 1e-9 } else { 2e-2 };
        for f in ["metrics_batch_train.csv", "metrics_batch_val.csv", "metrics_epoch.csv"] {
            let (h, rows) = columns(&dir.join(f));
            for row in &rows {
                for (k, v) in h.iter().zip(row) {
                    if !["epoch", "batch", "wall", "LR"].contains(&k.as_str()) {
                        assert!(v.abs() <= tol, "{dtype} {f}: {k} = {v}");
                    }
                }
            }
        }
        assert!(last_param(&dir, "zero").abs() < if dtype == "float64" { 1e-7 } else { 1e-2 }, "{dtype}");
    }
}

#[test]
fn learning_factor_losses_go_down_and_const_factor_stays() {
    let (_root, dir) = run("LearningFactorModel", "float64", "lf");
    let (h, rows) = columns(&dir.join("metrics_epoch.csv"));
    for (i, k) in h.iter().enumerate() {
        if !["epoch", "wall", "LR"].contains(&k.as_str()) {
            assert!(rows.last().unwrap()[i] < rows[0][i], "{k} did not go down: {} -> {}", rows[0][i], rows.last().unwrap()[i]);
        }
    }
    assert!(last_param(&dir, "factor") < 1.111);
    let (_root, dir) = run("ConstFactorModel", "float64", "cf");
    let (h, rows) = columns(&dir.join("metrics_epoch.csv"));
    for (i, k) in h.iter().enumerate() {
        if k.starts_with("validation_") {
            assert!(rows.iter().all(|r| (r[i] - rows[0][i]).abs() <= 1e-9 * rows[0][i].abs()), "{k} changed across epochs");
        }
    }
}
