//! First and second derivatives through spherical harmonics, Linear and TensorProduct (fast
//! and generic kernels), Gate and NormActivation agree with central finite differences (f64).

mod e3nn_common;

use e3nn_common::{fd_check, fd_check_second};
use nequip_core::e3nn::activation::Act;
use nequip_core::e3nn::linear::LinearOptions;
use nequip_core::e3nn::tensor_product::TpOptions;
use nequip_core::e3nn::*;
use tch::{Device, Kind, Tensor};

const H: f64 = 1e-6;
const TOL1: f64 = 1e-7;
const TOL2: f64 = 1e-6;

fn randn(shape: &[i64]) -> Tensor {
    Tensor::randn(shape, (Kind::Double, Device::Cpu))
}

#[track_caller]
fn check(f: &dyn Fn(&Tensor) -> Tensor, x: &Tensor, what: &str) {
    let e1 = fd_check(f, x, H);
    assert!(e1 < TOL1, "{what}: first derivative error {e1:e}");
    let e2 = fd_check_second(f, x, 1e-5);
    assert!(e2 < TOL2, "{what}: second derivative error {e2:e}");
}

#[test]
fn spherical_harmonics_derivatives() {
    tch::manual_seed(10);
    for normalize in [true, false] {
        let sh = SphericalHarmonics::up_to(4, normalize, ShNormalization::Component).unwrap();
        check(&|x| sh.forward(x), &randn(&[3, 3]), "sh");
    }
}

#[test]
fn linear_derivatives() {
    tch::manual_seed(11);
    let (i, o): (Irreps, Irreps) = (
        "2x0e+2x1o+1x2e".parse().unwrap(),
        "3x0e+1x1o+2x2e".parse().unwrap(),
    );
    let lin = Linear::with_options(
        None,
        i.clone(),
        o,
        LinearOptions {
            internal_weights: false,
            ..Default::default()
        },
    )
    .unwrap();
    let w = randn(&[lin.weight_numel as i64]);
    let x = randn(&[2, i.dim() as i64]);
    check(&|x| lin.forward_with(x, Some(&w), None), &x, "linear wrt x");
    // wrt the weights: the output is bilinear, its second derivative in w alone is zero, so
    // the mixed product x*w is tested through a squared output
    check(
        &|w| lin.forward_with(&x, Some(w), None).pow_tensor_scalar(2),
        &w,
        "linear wrt w",
    );
}

fn conv_tp() -> TensorProduct {
    let filter: Irreps = "2x0e+2x1o+2x2e+2x0o+2x1e+2x2o".parse().unwrap();
    TensorProduct::nequip_convolution(
        "2x0e+2x1o+2x2e".parse().unwrap(),
        Irreps::spherical_harmonics(2, -1),
        &filter,
    )
    .unwrap()
}

#[test]
fn tensor_product_derivatives_fast_kernel() {
    tch::manual_seed(12);
    let tp = conv_tp();
    assert!(tp.uses_fast_kernel());
    let n = 2;
    let x1 = randn(&[n, tp.irreps_in1.dim() as i64]);
    let x2 = randn(&[n, tp.irreps_in2.dim() as i64]);
    let w = randn(&[n, tp.weight_numel as i64]);
    let sq = |t: Tensor| t.pow_tensor_scalar(2);
    check(
        &|x| sq(tp.forward_with(x, &x2, Some(&w))),
        &x1,
        "uvu wrt x1",
    );
    check(
        &|x| sq(tp.forward_with(&x1, x, Some(&w))),
        &x2,
        "uvu wrt x2",
    );
    check(&|w| sq(tp.forward_with(&x1, &x2, Some(w))), &w, "uvu wrt w");
    // through the spherical harmonics of edge vectors, as in NequIP (forces = -dE/dr, and
    // training on forces needs the second derivative)
    let sh = SphericalHarmonics::up_to(2, true, ShNormalization::Component).unwrap();
    check(
        &|r| tp.forward_with(&x1, &sh.forward(r), Some(&w)),
        &randn(&[n, 3]),
        "uvu(sh(r)) wrt r",
    );
}

#[test]
fn tensor_product_derivatives_generic_kernel() {
    tch::manual_seed(13);
    let tp = TensorProduct::fully_connected(
        None,
        "2x0e+1x1o+1x2e".parse().unwrap(),
        "1x0e+1x1o".parse().unwrap(),
        "2x0e+2x1o+1x1e".parse().unwrap(),
        TpOptions {
            internal_weights: Some(false),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!tp.uses_fast_kernel());
    let x1 = randn(&[2, tp.irreps_in1.dim() as i64]);
    let x2 = randn(&[2, tp.irreps_in2.dim() as i64]);
    let w = randn(&[tp.weight_numel as i64]);
    check(
        &|x| tp.forward_with(x, &x2, Some(&w)).pow_tensor_scalar(2),
        &x1,
        "fctp wrt x1",
    );
    check(
        &|w| tp.forward_with(&x1, &x2, Some(w)).pow_tensor_scalar(2),
        &w,
        "fctp wrt w",
    );
}

#[test]
fn nonlinearity_derivatives() {
    tch::manual_seed(14);
    let g = Gate::new(
        "2x0e+1x0o".parse().unwrap(),
        vec![Some(Act::Silu), Some(Act::Tanh)],
        "2x0e".parse().unwrap(),
        vec![Some(Act::Silu)],
        "1x1o+1x2e".parse().unwrap(),
    )
    .unwrap();
    check(
        &|x| g.forward(x),
        &randn(&[2, g.irreps_in.dim() as i64]),
        "gate",
    );
    let i: Irreps = "2x0e+2x1o+1x2e".parse().unwrap();
    let na = NormActivation::new(None, i.clone(), Act::Ssp, true, None, false).unwrap();
    check(
        &|x| na.forward(x),
        &randn(&[2, i.dim() as i64]),
        "norm activation",
    );
    let fc = FullyConnectedNet::from_weights(vec![randn(&[4, 8]), randn(&[8, 3])], Some(Act::Ssp))
        .unwrap();
    check(&|x| fc.forward(x), &randn(&[2, 4]), "fc net");
}
