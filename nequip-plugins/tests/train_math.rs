//! The pieces of training against independent numbers: optimizer steps and schedulers against
//! torch 2.13 (`fixtures/optim_reference.json`, made by `fixtures/gen_optim.py`), every
//! `loss_coeffs` reduction against hand-computed values, metrics against direct formulas.

use std::collections::BTreeMap;

use nequip_core::config::{Config, Value};
use nequip_core::data::AtomicDataDict;
use nequip_core::train::loss_fn::Loss;
use nequip_core::train::metrics::Metrics;
use nequip_core::train::optim::{optimizer_from_config, scheduler_from_config};
use tch::{Kind, Tensor};

fn reference() -> serde_json::Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/optim_reference.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn cfg(text: &str) -> Config {
    nequip_plugins::link();
    Config::from_yaml_str(text, "t.yaml").unwrap()
}

fn t(v: &[f64], shape: &[i64]) -> Tensor {
    Tensor::from_slice(v).reshape(shape).set_requires_grad(true)
}

#[test]
fn optimizer_steps_equal_torch() {
    let r = reference();
    let cases = [
        ("Adam", "optimizer_name: Adam\n", 0.1),
        ("Adam_amsgrad_wd", "optimizer_name: Adam\noptimizer_amsgrad: true\noptimizer_weight_decay: 0.1\noptimizer_betas: [0.8, 0.9]\n", 0.05),
        ("AdamW", "optimizer_name: AdamW\n", 0.1),
        ("SGD_nesterov", "optimizer_name: SGD\noptimizer_kwargs: {momentum: 0.9, nesterov: true, weight_decay: 0.01}\n", 0.01),
        ("SGD_dampening", "optimizer_name: SGD\nSGD_momentum: 0.5\nSGD_dampening: 0.3\n", 0.01),
        ("RMSprop", "optimizer_name: RMSprop\n", 0.01),
        ("RMSprop_centered_momentum", "optimizer_name: RMSprop\noptimizer_centered: true\noptimizer_momentum: 0.9\noptimizer_weight_decay: 0.01\n", 0.01),
    ];
    for (name, yaml, lr) in cases {
        let c = cfg(yaml);
        let mut opt = optimizer_from_config(&c, c.get("optimizer_name").and_then(Value::as_str).unwrap(), lr).unwrap();
        let p = t(&[1.0, -2.0, 0.5], &[3]);
        let q = t(&[0.3, -0.1, 0.2, 0.4], &[2, 2]);
        let params = [p.shallow_clone(), q.shallow_clone()];
        for (k, want) in r[name].as_array().unwrap().iter().enumerate() {
            for x in &params {
                let mut g = x.grad();
                if g.defined() {
                    let _ = g.zero_();
                }
            }
            let w = Tensor::from_slice(&[1.0, 2.0, 3.0]);
            let loss = (p.square() * w).sum(Kind::Double) + q.pow_tensor_scalar(3).sum(Kind::Double) + (p.sum(Kind::Double) * q.sum(Kind::Double)).square();
            loss.backward();
            opt.step(&params, lr);
            for (x, wv) in params.iter().zip(want.as_array().unwrap()) {
                let got = Vec::<f64>::try_from(&x.flatten(0, -1)).unwrap();
                for (a, b) in got.iter().zip(wv.as_array().unwrap()) {
                    let b = b.as_f64().unwrap();
                    assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{name} step {k}: {a} vs torch {b}");
                }
            }
        }
    }
}

#[test]
fn schedulers_equal_torch() {
    let r = reference();
    let c = cfg("lr_scheduler_patience: 1\nlr_scheduler_factor: 0.5\nlr_scheduler_threshold: 0.01\nlr_scheduler_cooldown: 1\n");
    let mut s = scheduler_from_config(&c, "ReduceLROnPlateau", 1.0).unwrap().unwrap();
    let mut lr = 1.0;
    for (m, want) in r["plateau"]["metrics"].as_array().unwrap().iter().zip(r["plateau"]["lrs"].as_array().unwrap()) {
        lr = s.epoch_end(lr, m.as_f64().unwrap());
        assert_eq!(lr, want.as_f64().unwrap(), "plateau after metric {m}");
    }
    let c = cfg("lr_scheduler_T_0: 2\nlr_scheduler_T_mult: 2\nlr_scheduler_eta_min: 0.001\n");
    let mut s = scheduler_from_config(&c, "CosineAnnealingWarmRestarts", 0.1).unwrap().unwrap();
    for (e, want) in r["cosine"]["epochs"].as_array().unwrap().iter().zip(r["cosine"]["lrs"].as_array().unwrap()) {
        let lr = s.batch_end(0.1, e.as_f64().unwrap());
        assert!((lr - want.as_f64().unwrap()).abs() < 1e-14, "cosine at epoch {e}: {lr} vs {want}");
    }
    assert!(scheduler_from_config(&c, "none", 0.1).unwrap().is_none());
    assert!(scheduler_from_config(&c, "ReduceLROnPlatoo", 0.1).err().unwrap().to_string().contains("did you mean `ReduceLROnPlateau`"));
}

/// Two frames: 2 and 3 atoms, types [0, 1 | 1, 1, 0], energies and forces.
fn frames() -> (AtomicDataDict, AtomicDataDict) {
    let mut pred = BTreeMap::new();
    let mut r = BTreeMap::new();
    pred.insert("total_energy".to_string(), Tensor::from_slice(&[1.0, 5.0]).reshape([2, 1]));
    r.insert("total_energy".to_string(), Tensor::from_slice(&[2.0, 2.0]).reshape([2, 1]));
    pred.insert("forces".to_string(), Tensor::from_slice(&[1.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]).reshape([5, 3]));
    r.insert("forces".to_string(), Tensor::zeros([5, 3], (Kind::Double, tch::Device::Cpu)));
    let batch = Tensor::from_slice(&[0i64, 0, 1, 1, 1]);
    let types = Tensor::from_slice(&[0i64, 1, 1, 1, 0]).reshape([5, 1]);
    for d in [&mut pred, &mut r] {
        d.insert("batch".into(), batch.shallow_clone());
        d.insert("atom_types".into(), types.shallow_clone());
    }
    (pred, r)
}

fn loss_value(coeffs: &str) -> (f64, Vec<(String, f64)>) {
    nequip_plugins::link();
    let v: Value = nequip_core::config::yaml::parse(coeffs).unwrap().root;
    let (pred, r) = frames();
    let (total, parts) = Loss::from_coeffs(&v).unwrap().compute(&pred, &r).unwrap();
    (total.double_value(&[]), parts.into_iter().map(|(k, t)| (k, t.double_value(&[]))).collect())
}

#[test]
fn every_reduction_gives_nequips_value() {
    // MSE of energies: ((1-2)^2 + (5-2)^2) / 2 = 5
    assert_eq!(loss_value("total_energy").0, 5.0);
    // PerAtom MSE: ((-1/2)^2 + (3/3)^2) / 2 = 0.625
    assert_eq!(loss_value("{total_energy: PerAtomMSELoss}").0, 0.625);
    // PerAtom L1: (1/2 + 3/3) / 2 = 0.75
    assert_eq!(loss_value("{total_energy: [1.0, PerAtomL1Loss]}").0, 0.75);
    // forces MSE over all 15 components: (1 + 4 + 1 + 3) / 15
    assert!((loss_value("forces").0 - 9.0 / 15.0).abs() < 1e-15);
    // PerSpecies L1 of forces: per-atom means [1/3, 2/3, 1/3, 1, 0]; type 0 atoms {0, 4}: 1/6, type 1 {1,2,3}: 2/3; mean 5/12
    assert!((loss_value("{forces: PerSpeciesL1Loss}").0 - 5.0 / 12.0).abs() < 1e-15);
    // weighted sum, terms reported before their coefficients
    let (total, parts) = loss_value("{forces: 2.0, total_energy: [0.5, PerAtomMSELoss]}");
    assert!((total - (2.0 * 9.0 / 15.0 + 0.5 * 0.625)).abs() < 1e-15);
    assert_eq!(parts[1], ("total_energy".to_string(), 0.625));
    // Huber with a parameter: |d| = 1 < 2 -> 0.5, |d| = 3 -> 2 (3 - 1) = 4; mean 2.25
    assert_eq!(loss_value("{total_energy: [1.0, HuberLoss, {delta: 2.0}]}").0, 2.25);
    // ignore_nan: a NaN reference is left out
    nequip_plugins::link();
    let (pred, mut r) = frames();
    r.insert("total_energy".into(), Tensor::from_slice(&[f64::NAN, 2.0]).reshape([2, 1]));
    let v = nequip_core::config::yaml::parse("{total_energy: [1.0, MSELoss, {ignore_nan: true}]}").unwrap().root;
    assert_eq!(Loss::from_coeffs(&v).unwrap().compute(&pred, &r).unwrap().0.double_value(&[]), 9.0);
    let e = Loss::from_coeffs(&nequip_core::config::yaml::parse("{forces: PerAtomMSELoss}").unwrap().root).err().unwrap().to_string();
    assert!(e.contains("PerAtom loss needs a per-frame (graph) field"), "{e}");
}

#[test]
fn metrics_in_nequips_names_and_values() {
    nequip_plugins::link();
    let (pred, r) = frames();
    let loss = Loss::from_coeffs(&nequip_core::config::yaml::parse("{forces: 1.0, total_energy: 1.0}").unwrap().root).unwrap();
    let spec = nequip_core::config::yaml::parse("[[forces, mae], [forces, rmse], [forces, mae, {PerSpecies: true}], [total_energy, mae], [total_energy, mae, {PerAtom: true}], [forces, mae, {report_per_component: true}]]").unwrap().root;
    let mut m = Metrics::new(Some(&spec), &loss).unwrap();
    m.accumulate(&pred, &r).unwrap();
    let v: BTreeMap<String, f64> = m.flatten(&["H".into(), "C".into()]).into_iter().collect();
    assert!((v["f_mae"] - 7.0 / 15.0).abs() < 1e-15);
    assert!((v["f_rmse"] - (9.0f64 / 15.0).sqrt()).abs() < 1e-15);
    assert!((v["H_f_mae"] - 1.0 / 6.0).abs() < 1e-15 && (v["C_f_mae"] - 2.0 / 3.0).abs() < 1e-15);
    assert!((v["psavg_f_mae"] - 5.0 / 12.0).abs() < 1e-15);
    assert_eq!(v["e_mae"], 2.0);
    assert_eq!(v["e/N_mae"], 0.75);
    assert!((v["f_mae_0"] - 2.0 / 5.0).abs() < 1e-15 && (v["f_mae_2"] - 2.0 / 5.0).abs() < 1e-15);
    // a second batch accumulates by element counts
    m.accumulate(&pred, &r).unwrap();
    let w: BTreeMap<String, f64> = m.flatten(&["H".into(), "C".into()]).into_iter().collect();
    assert!((w["f_mae"] - v["f_mae"]).abs() < 1e-15);
    // the default: mae and rmse of each loss key, in loss order
    let mut d = Metrics::new(None, &loss).unwrap();
    d.accumulate(&pred, &r).unwrap();
    let names: Vec<String> = d.flatten(&[]).into_iter().map(|(k, _)| k).collect();
    assert_eq!(names, ["f_mae", "f_rmse", "e_mae", "e_rmse"]);
}

#[test]
fn gradient_clipping_equals_torch_clip_grad_norm() {
    // torch.nn.utils.clip_grad_norm_: total 2-norm over all gradients, scale by max/(norm + 1e-6) when above
    let a = Tensor::from_slice(&[3.0, 4.0]).set_requires_grad(true);
    let b = Tensor::from_slice(&[12.0]).set_requires_grad(true);
    ((&a * &a).sum(Kind::Double) / 2.0 + (&b * &b).sum(Kind::Double) / 2.0).backward();
    nequip_core::train::trainer::clip_grad_norm(&[a.shallow_clone(), b.shallow_clone()], 6.5);
    let coef = 6.5 / (13.0 + 1e-6);
    let got: Vec<f64> = [a.grad(), b.grad()].iter().flat_map(|g| Vec::<f64>::try_from(g).unwrap()).collect();
    for (g, w) in got.iter().zip([3.0 * coef, 4.0 * coef, 12.0 * coef]) {
        assert!((g - w).abs() < 1e-14, "{g} vs {w}");
    }
    // below the threshold nothing changes
    nequip_core::train::trainer::clip_grad_norm(&[a.shallow_clone(), b.shallow_clone()], 100.0);
    assert!((Vec::<f64>::try_from(&a.grad()).unwrap()[0] - 3.0 * coef).abs() < 1e-14);
}
