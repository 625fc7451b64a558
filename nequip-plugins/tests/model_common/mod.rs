//! Helpers of the model tests: nequip 0.6.2 parity fixtures (`nequip-core/tests/fixtures/nequip/`,
//! made by `shared/fixtures/scripts/make_parity.py`), configs from their metadata, frames as
//! model inputs.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use nequip_core::config::{Config, Source, Value};
use nequip_core::data::AtomicDataDict;
use nequip_core::model::{model_from_config, BuildOptions};
use nequip_core::nn::GraphModel;
use tch::Tensor;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../nequip-core/tests/fixtures/nequip").join(name)
}

pub fn npz(name: &str) -> BTreeMap<String, Tensor> {
    Tensor::read_npz(fixture(name)).unwrap().into_iter().collect()
}

/// The case's metadata (Python's `Infinity` read as the string "Infinity").
pub fn meta(case: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture(&format!("{case}_meta.json"))).unwrap();
    serde_json::from_str(&text.replace(": Infinity", ": \"Infinity\"")).unwrap()
}

/// The case's nequip config (JSON is YAML), model and default dtype float64, on the CPU.
pub fn config(case: &str) -> Config {
    let m = meta(case);
    nequip_plugins::link();
    let text = serde_json::to_string(&m["config"]).unwrap().replace("\"Infinity\"", ".inf");
    let mut c = Config::from_yaml_str(&text, &format!("{case}_meta.json")).unwrap();
    for (k, v) in [("model_dtype", "float64"), ("default_dtype", "float64"), ("device", "cpu")] {
        c.set(k, Value::String(v.into()), Source::Cli(k.into()));
    }
    c
}

/// YAML text in nequip's format as a config on the CPU (the built-ins linked).
pub fn cpu_config(text: &str, name: &str) -> Config {
    nequip_plugins::link();
    let mut c = Config::from_yaml_str(text, name).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
    c.set("device", Value::String("cpu".into()), Source::Cli("device".into()));
    c
}

/// Build a config's model (no dataset: placeholders unless `initialize`), errors as text.
pub fn try_build(c: &mut Config, initialize: bool) -> Result<GraphModel, String> {
    model_from_config(c, BuildOptions { initialize, ..Default::default() }).map_err(|e| e.to_string())
}

/// The model of YAML text in nequip's format, built without initializing.
pub fn build_yaml(text: &str) -> GraphModel {
    try_build(&mut cpu_config(text, "test.yaml"), false).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The error of building the model of YAML text.
pub fn build_yaml_err(text: &str) -> String {
    try_build(&mut cpu_config(text, "test.yaml"), false).err().unwrap_or_else(|| panic!("expected an error for\n{text}"))
}

/// Build the case's model from its config (not initializing: placeholders) and load nequip's
/// state dict by name, strictly.
pub fn model(case: &str) -> GraphModel {
    let mut c = config(case);
    let m = model_from_config(&mut c, BuildOptions::default()).unwrap();
    m.load_state_dict(&npz(&format!("{case}_params.npz")), true).unwrap();
    m
}

pub fn n_frames(frames: &BTreeMap<String, Tensor>) -> usize {
    (0..).take_while(|i| frames.contains_key(&format!("f{i}_pos"))).count()
}

/// Frame `i` of a fixture as model input (positions, types, edges, cell and shifts).
pub fn input(frames: &BTreeMap<String, Tensor>, i: usize) -> AtomicDataDict {
    let mut d = AtomicDataDict::new();
    for k in ["pos", "atom_types", "edge_index", "cell", "edge_cell_shift"] {
        if let Some(t) = frames.get(&format!("f{i}_{k}")) {
            d.insert(k.into(), t.shallow_clone());
        }
    }
    d
}

/// `max |got - want| <= tol * max(max |want|, floor)`, shapes equal.
pub fn assert_close(got: &Tensor, want: &Tensor, tol: f64, what: &str) {
    assert_eq!(got.size(), want.size(), "{what}: shape");
    let scale = want.abs().max().double_value(&[]).max(1e-300);
    let err = (got.to_kind(tch::Kind::Double) - want.to_kind(tch::Kind::Double)).abs().max().double_value(&[]);
    assert!(err <= tol * scale, "{what}: max abs error {err:e} (scale {scale:e})");
}
