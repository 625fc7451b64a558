//! The libtorch helpers of `nequip_core::runtime`: backward into chosen leaves (what the
//! trainer runs) and the operator census.

use std::sync::Mutex;

use nequip_core::runtime::{backward_to, op_census};
use tch::{Kind, Tensor};

/// The census counts every thread's operators: the tests here take turns.
static SERIAL: Mutex<()> = Mutex::new(());

/// A force-style loss: `E(x, w)`, `f = dE/dx` with its graph, `loss = Σ (f − t)²`.
fn force_loss(x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    let e = ((x.matmul(w) + b).tanh() * x.sin()).sum(Kind::Double);
    let f = Tensor::run_backward(&[e], &[x], true, true).pop().unwrap();
    (f - 0.3).square().sum(Kind::Double)
}

/// `backward_to(loss, [w, b])` accumulates the same gradients into `w` and `b` as
/// `loss.backward()` and leaves the positions-like leaf `x` without one; a second call adds.
#[test]
fn backward_to_accumulates_the_parameters_gradients_only() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(1);
    let leaf = |s: &[i64]| Tensor::randn(s, (Kind::Double, tch::Device::Cpu)).set_requires_grad(true);
    let (x, w, b) = (leaf(&[5, 3]), leaf(&[3, 3]), leaf(&[3]));
    force_loss(&x, &w, &b).backward();
    let (gw, gb) = (w.grad().copy(), b.grad().copy());
    assert!(x.grad().defined());

    let (x2, w2, b2) = (x.detach().set_requires_grad(true), w.detach().set_requires_grad(true), b.detach().set_requires_grad(true));
    let frozen = Tensor::ones([2], (Kind::Double, tch::Device::Cpu));
    backward_to(&force_loss(&x2, &w2, &b2), &[w2.shallow_clone(), b2.shallow_clone(), frozen]).unwrap();
    assert!(!x2.grad().defined(), "no gradient of the positions-like leaf");
    let rel = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]) / b.abs().max().double_value(&[]);
    assert!(rel(&w2.grad(), &gw) < 1e-14 && rel(&b2.grad(), &gb) < 1e-14);
    assert!(gw.abs().max().double_value(&[]) > 0.0);

    backward_to(&force_loss(&x2, &w2, &b2), &[w2.shallow_clone()]).unwrap();
    assert!(rel(&w2.grad(), &(&gw * 2.0)) < 1e-14, "accumulates like backward()");
    // a loss without a graph: an error, not a panic
    let err = backward_to(&Tensor::ones([], (Kind::Double, tch::Device::Cpu)), &[w2]).unwrap_err();
    assert!(err.contains("does not require grad"), "{err}");
}

/// The census counts the operators a closure dispatches, backward nodes included.
#[test]
fn op_census_counts_dispatched_operators() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let x = Tensor::ones([4, 4], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
    let (_, rows) = op_census(|| {
        let y = x.mm(&x).sum(Kind::Float);
        y.backward();
    });
    let count = |name: &str| rows.iter().find(|(_, n)| n == name).map_or(0, |(c, _)| *c);
    assert!(count("aten::mm") >= 3, "{rows:?}"); // forward + the two of MmBackward0
    assert_eq!(count("[bwd] MmBackward0"), 1, "{rows:?}");
    let (_, none) = op_census(|| ());
    assert!(none.is_empty(), "{none:?}");
}
