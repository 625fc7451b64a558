//! `nequip import`: a real nequip 0.6.2 run directory (`fixtures/nequip/toluene_run`: its
//! `config.yaml` with Python tags and its `best_model.pth`) imports and reproduces nequip's
//! energies and forces (`toluene_l2_trained_*`) to 1e-10; the model file round-trips
//! exactly; corrupt, foreign and mismatched files give clear errors.

mod model_common;
use model_common::*;

use std::path::PathBuf;
use std::process::Command;

use nequip_core::io::model_file::{self, ModelFileError};
use nequip_core::io::nequip_run::{import_run, ImportError};
use nequip_core::nn::GraphModule;

fn run_dir() -> PathBuf {
    fixture("toluene_run")
}

/// A fresh directory in the temp dir, removed (with everything in it) when dropped.
fn tmp(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("nequip-import-{name}-")).tempdir().unwrap()
}

fn check_outputs(model: &nequip_core::nn::GraphModel, tol: f64) {
    let frames = npz("toluene_l2_trained_frames.npz");
    for i in 0..n_frames(&frames) {
        let out = model.forward(input(&frames, i), false).unwrap();
        for k in ["atomic_energy", "forces"] {
            assert_close(&out[k], &frames[&format!("f{i}_{k}")], tol, &format!("frame {i} {k}"));
        }
        let want = &frames[&format!("f{i}_total_energy")];
        assert_close(&out["total_energy"].reshape(want.size()), want, tol, &format!("frame {i} total_energy"));
    }
}

#[test]
fn imported_run_gives_nequips_numbers_and_round_trips() {
    nequip_plugins::link();
    let (model, config) = import_run(&run_dir(), None, "cpu").unwrap();
    check_outputs(&model, 1e-10);
    let d_dir = tmp("roundtrip");
    let d = d_dir.path();
    let f = d.join("m.safetensors");
    model_file::save(&f, &model, &config).unwrap();
    let (loaded, _) = model_file::load(&f, Some("cpu")).unwrap();
    let a: Vec<_> = model.state_dict().into_iter().filter(|t| t.tensor.numel() > 0).collect();
    let b = loaded.state_dict();
    for t in &a {
        let u = b.iter().find(|u| u.name == t.name).unwrap();
        assert!(t.tensor.equal(&u.tensor), "{} differs after the round trip", t.name);
    }
    check_outputs(&loaded, 1e-10);
    let meta = model_file::read(&f).unwrap().metadata;
    assert_eq!(meta["r_max"], "4.0");
    assert_eq!(meta["type_names"], "[\"H\",\"C\"]");
    assert_eq!(meta["model_dtype"], "float64");
}

#[test]
fn bad_model_files_are_clear_errors() {
    nequip_plugins::link();
    let d_dir = tmp("bad");
    let d = d_dir.path();
    let junk = d.join("junk.safetensors");
    std::fs::write(&junk, b"definitely not a model").unwrap();
    assert!(matches!(model_file::load(&junk, None), Err(ModelFileError::NotAModelFile { .. })));
    // a foreign safetensors file (no nequip-rs metadata)
    let foreign = d.join("foreign.safetensors");
    tch::Tensor::write_safetensors(&[("w", tch::Tensor::zeros([2], (tch::Kind::Float, tch::Device::Cpu)))], &foreign).unwrap();
    let e = model_file::load(&foreign, None).unwrap_err().to_string();
    assert!(e.contains("not a nequip-rs model file"), "{e}");
    // another format version
    let (model, config) = import_run(&run_dir(), None, "cpu").unwrap();
    let good = d.join("good.safetensors");
    model_file::save(&good, &model, &config).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let needle = b"\"format_version\":\"1\"";
    let pos = bytes.windows(needle.len()).position(|w| w == needle).expect("format_version in the header");
    let mut other = bytes.clone();
    other[pos + needle.len() - 2] = b'9';
    let v9 = d.join("v9.safetensors");
    std::fs::write(&v9, other).unwrap();
    let e = model_file::load(&v9, None).unwrap_err();
    assert!(matches!(e, ModelFileError::Version { ref found, .. } if found == "9"), "{e}");
    // truncated file
    let cut = d.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert!(model_file::load(&cut, None).is_err());
}

#[test]
fn mismatched_checkpoint_lists_the_names() {
    nequip_plugins::link();
    // toluene's run config with a state dict of another model (cu_l1's weights)
    let d_dir = tmp("mismatch");
    let d = d_dir.path();
    std::fs::copy(run_dir().join("config.yaml"), d.join("config.yaml")).unwrap();
    std::fs::copy(run_dir().join("best_model.pth"), d.join("best_model.pth")).unwrap();
    let (model, _) = import_run(&d, None, "cpu").unwrap();
    let mut state = npz("cu_l1_params.npz");
    let e = model.load_state_dict(&state, true).unwrap_err();
    assert!(!e.misshaped.is_empty(), "{e}");
    assert!(e.to_string().contains("shape mismatch: model.model.func.chemical_embedding.linear.weight"), "{e}");
    // a missing and an unexpected name, same shapes otherwise
    let own: std::collections::BTreeMap<String, tch::Tensor> = model.state_dict().into_iter().map(|t| (t.name, t.tensor)).collect();
    state = own.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect();
    state.remove("model.model.func.layer0_convnet.conv.linear_1.weight");
    state.insert("model.model.func.layer9_convnet.conv.linear_1.weight".into(), tch::Tensor::zeros([3], (tch::Kind::Double, tch::Device::Cpu)));
    let e = model.load_state_dict(&state, true).unwrap_err().to_string();
    assert!(e.contains("missing from the state dict: model.model.func.layer0_convnet.conv.linear_1.weight"), "{e}");
    assert!(e.contains("unexpected in the state dict: model.model.func.layer9_convnet.conv.linear_1.weight"), "{e}");
    // not a run directory
    assert!(matches!(import_run(&d.join("nope"), None, "cpu"), Err(ImportError::NotARun { .. })));
}

#[test]
fn import_command_writes_a_model_file() {
    let d_dir = tmp("cli");
    let d = d_dir.path();
    let out = d.join("toluene.safetensors");
    let o = Command::new(env!("CARGO_BIN_EXE_nequip")).args(["import", run_dir().to_str().unwrap(), "-o", out.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("parameters, r_max 4.0, types [\"H\",\"C\"]"));
    assert!(out.is_file());
    let o = Command::new(env!("CARGO_BIN_EXE_nequip")).args(["import", d.join("missing").to_str().unwrap()]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a nequip run directory (no config.yaml)"));
}

#[test]
fn an_imported_run_evaluates_like_our_own_runs() {
    let d_dir = tmp("eval");
    let d = d_dir.path();
    let model = d.join("toluene.safetensors");
    let o = Command::new(env!("CARGO_BIN_EXE_nequip")).args(["import", run_dir().to_str().unwrap(), "-o", model.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success());
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/toluene_xtb.npz");
    let cfg = d.join("data.yaml");
    std::fs::write(&cfg, format!("r_max: 4.0\nroot: {}\ndataset: npz\ndataset_file_name: {}\nkey_mapping: {{z: atomic_numbers, E: total_energy, F: forces, R: pos}}\nnpz_fixed_field_keys: [atomic_numbers]\nchemical_symbols: [H, C]\n", d.display(), data.display())).unwrap();
    let idx = d.join("idx.json");
    std::fs::write(&idx, "[0, 1, 2, 3]").unwrap();
    let out = d.join("pred.xyz");
    let o = Command::new(env!("CARGO_BIN_EXE_nequip"))
        .args(["evaluate", "--model", model.to_str().unwrap(), "--dataset-config", cfg.to_str().unwrap(), "--test-indexes", idx.to_str().unwrap(), "--output", out.to_str().unwrap(), "--device", "cpu"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("f_mae ="));
    // frames 0..3 of the toluene data are the fixture's frames: nequip's energies and forces
    let pred = nequip_core::data::extxyz::read_extxyz(&out).unwrap();
    let frames = npz("toluene_l2_trained_frames.npz");
    for (i, p) in pred.iter().enumerate() {
        let want_f = Vec::<f64>::try_from(&frames[&format!("f{i}_forces")].flatten(0, -1)).unwrap();
        for (a, b) in p.arrays["forces"].to_f64_vec().iter().zip(&want_f) {
            assert!((a - b).abs() < 1e-10 * b.abs().max(1.0), "frame {i}: {a} vs nequip {b}");
        }
        let nequip_core::data::extxyz::InfoValue::Float(e) = p.info["energy"] else { panic!() };
        let want_e = frames[&format!("f{i}_total_energy")].double_value(&[0]);
        assert!((e - want_e).abs() < 1e-10 * want_e.abs(), "frame {i}: {e} vs nequip {want_e}");
    }
}
