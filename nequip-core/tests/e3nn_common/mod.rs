//! Shared helpers of the `e3nn_*` integration tests: fixture loading and comparisons.
//!
//! The `.npz` fixtures are read with tch's own `Tensor::read_npz` (tch is already a dependency,
//! and every array in these files is a plain little-endian f64/i64 C-order array, which it
//! reads directly into tensors — no extra crate needed).
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use nequip_core::e3nn::Irreps;
use tch::{Kind, Tensor};

/// `tests/fixtures/e3nn/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/e3nn")
        .join(name)
}

/// All arrays of an npz fixture.
pub struct Npz(HashMap<String, Tensor>);

impl Npz {
    pub fn load(name: &str) -> Npz {
        let v = Tensor::read_npz(fixture(name)).expect("readable npz fixture");
        Npz(v.into_iter().collect())
    }
    pub fn get(&self, key: &str) -> Tensor {
        self.0
            .get(key)
            .unwrap_or_else(|| panic!("missing fixture key {key}"))
            .shallow_clone()
    }
    pub fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.0.keys().cloned().collect();
        k.sort();
        k
    }
}

/// `e3nn_ops.json`'s `cases`.
pub fn ops_cases() -> serde_json::Value {
    let s = std::fs::read_to_string(fixture("e3nn_ops.json")).expect("json fixture");
    let v: serde_json::Value = serde_json::from_str(&s).expect("valid json");
    v["cases"].clone()
}

/// Irreps from the fixture's int64 `[n, 3]` `(mul, l, p)` rows.
pub fn irreps_from_rows(t: &Tensor) -> Irreps {
    let rows: Vec<Vec<i64>> = Vec::<Vec<i64>>::try_from(t.to_kind(Kind::Int64)).expect("int rows");
    let items: Vec<(usize, u32, i32)> = rows
        .iter()
        .map(|r| (r[0] as usize, r[1] as u32, r[2] as i32))
        .collect();
    Irreps::from_tuples(&items).expect("valid irreps")
}

/// Max |a - b| relative to max |b| (the error measure of all parity tests).
pub fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shape mismatch");
    let a = a.to_kind(Kind::Double);
    let b = b.to_kind(Kind::Double);
    let num = (&a - &b).abs().max().double_value(&[]);
    let den = b.abs().max().double_value(&[]);
    if den > 0.0 {
        num / den
    } else {
        num
    }
}

/// Asserts `rel_err(a, b) <= tol` with a readable message.
#[track_caller]
pub fn assert_close(a: &Tensor, b: &Tensor, tol: f64, what: &str) {
    let e = rel_err(a, b);
    assert!(e <= tol, "{what}: relative error {e:e} > {tol:e}");
}

/// Largest relative deviation between autograd and central finite differences of
/// `sum(f(x) * probe)` with respect to `x` (f64).
pub fn fd_check(f: &dyn Fn(&Tensor) -> Tensor, x: &Tensor, h: f64) -> f64 {
    let x = x.to_kind(Kind::Double).detach().set_requires_grad(true);
    let y = f(&x);
    let probe = Tensor::randn(y.size(), (Kind::Double, x.device()));
    let s = (&y * &probe).sum(Kind::Double);
    let g = Tensor::run_backward(&[&s], &[&x], false, false)
        .pop()
        .expect("grad");
    let xf = x.detach().reshape([-1]);
    let n = xf.size()[0];
    let mut worst: f64 = 0.0;
    let scale = g.abs().max().double_value(&[]).max(1e-12);
    for i in 0..n {
        let e = Tensor::zeros([n], (Kind::Double, x.device())).index_fill(
            0,
            &Tensor::from_slice(&[i]),
            h,
        );
        let fp = (f(&(&xf + &e).reshape(x.size())) * &probe)
            .sum(Kind::Double)
            .double_value(&[]);
        let fm = (f(&(&xf - &e).reshape(x.size())) * &probe)
            .sum(Kind::Double)
            .double_value(&[]);
        let fd = (fp - fm) / (2.0 * h);
        let ad = g.reshape([-1]).double_value(&[i]);
        worst = worst.max((fd - ad).abs() / scale);
    }
    worst
}

/// Same for the second derivative: checks `d/dx (grad_x s · v)` (a Hessian-vector product by
/// double backward) against finite differences of the gradient.
pub fn fd_check_second(f: &dyn Fn(&Tensor) -> Tensor, x: &Tensor, h: f64) -> f64 {
    let x0 = x.to_kind(Kind::Double).detach();
    let probe = Tensor::randn(f(&x0).size(), (Kind::Double, x.device()));
    let v = Tensor::randn(x0.size(), (Kind::Double, x.device()));
    let grad_at = |xx: &Tensor, create: bool| {
        let xx = xx.detach().set_requires_grad(true);
        let s = (f(&xx) * &probe).sum(Kind::Double);
        let g = Tensor::run_backward(&[&s], &[&xx], true, create)
            .pop()
            .expect("grad");
        (xx, g)
    };
    let (xx, g) = grad_at(&x0, true);
    let gv = (&g * &v).sum(Kind::Double);
    // (libtorch aborts on a backward through a graph-less tensor: a gradient independent of x
    // has a zero Hessian)
    let hv = if gv.requires_grad() {
        Tensor::run_backward(&[&gv], &[&xx], false, false)
            .pop()
            .expect("hvp")
    } else {
        xx.zeros_like()
    };
    let gp = grad_at(&(&x0 + &v * h), false).1;
    let gm = grad_at(&(&x0 - &v * h), false).1;
    let fd = (gp - gm) / (2.0 * h);
    rel_err(&hv, &fd)
}
