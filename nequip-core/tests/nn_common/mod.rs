//! Helpers shared by the `nn_*` tests: nequip 0.6.2 parity fixtures (`fixtures/nequip/`, see the
//! README in `fixtures/e3nn/`) and loading a state dict by name into a `VarStore`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tch::nn::VarStore;
use tch::Tensor;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nequip").join(name)
}

pub fn npz(name: &str) -> BTreeMap<String, Tensor> {
    Tensor::read_npz(fixture(name)).unwrap().into_iter().collect()
}

pub fn meta(case: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(&format!("{case}_meta.json"))).unwrap()).unwrap()
}

/// `max |got - want| <= tol * max |want|`, shapes equal.
pub fn assert_close(got: &Tensor, want: &Tensor, tol: f64, what: &str) {
    assert_eq!(got.size(), want.size(), "{what}: shape");
    let scale = want.abs().max().double_value(&[]).max(1e-300);
    let err = (got - want).abs().max().double_value(&[]);
    assert!(err <= tol * scale, "{what}: max abs error {err:e} (scale {scale:e})");
}

/// `a.b.c` → the tch path `a / b / c` (tch joins with dots, as PyTorch names parameters).
pub fn path<'a>(vs: &'a VarStore, dotted: &str) -> tch::nn::Path<'a> {
    dotted.split('.').fold(vs.root(), |p, s| p / s)
}

/// Make every variable of `vs` float64 and copy it from the state dict by name; every variable
/// must be there with the same shape.
pub fn load(vs: &mut VarStore, state: &BTreeMap<String, Tensor>) {
    vs.double();
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            let src = state.get(&name).unwrap_or_else(|| panic!("{name} not in nequip's state dict"));
            assert_eq!(var.size(), src.size(), "{name}");
            var.copy_(src);
        }
    });
}
