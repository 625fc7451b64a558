//! Equivariance of every op under random rotations, inversion and both (f64 ≤ 1e-12, f32 ≤ 1e-5),
//! checked with the public `nequip_core::e3nn::testing` utility; plus its translation and
//! permutation checks, and a check that it does catch a non-equivariant function.

use nequip_core::e3nn::activation::Act;
use nequip_core::e3nn::linear::LinearOptions;
use nequip_core::e3nn::tensor_product::TpOptions;
use nequip_core::e3nn::testing::{check_equivariance, irreps_d, EquivarianceErrors, Field};
use nequip_core::e3nn::*;
use tch::{nn::VarStore, Device, Kind, Tensor};

fn tol(kind: Kind) -> f64 {
    if kind == Kind::Double {
        1e-12
    } else {
        1e-5
    }
}

#[track_caller]
fn assert_eq_errs(e: &EquivarianceErrors, kind: Kind, what: &str) {
    assert!(e.max() <= tol(kind), "{what} ({kind:?}): {e:?}");
}

fn irr(s: &str) -> Irreps {
    s.parse().unwrap()
}

fn randn(irreps: &Irreps, n: i64, kind: Kind) -> Tensor {
    Tensor::randn([n, irreps.dim() as i64], (kind, Device::Cpu))
}

fn vs(kind: Kind) -> VarStore {
    let mut vs = VarStore::new(Device::Cpu);
    vs.set_kind(kind);
    vs
}

#[test]
fn wigner_3j_is_invariant_up_to_l6() {
    tch::manual_seed(0);
    let (a, b, c) = rand_angles(&[], Kind::Double, Device::Cpu);
    let mut n = 0;
    for l1 in 0..=6u32 {
        for l2 in 0..=6u32 {
            for l3 in l1.abs_diff(l2)..=(l1 + l2).min(6) {
                let w = wigner_3j(l1, l2, l3, Kind::Double, Device::Cpu).unwrap();
                let d = |l| wigner_d(l, &a, &b, &c);
                let rot = Tensor::einsum(
                    "ijk,il,jm,kn->lmn",
                    &[&w, &d(l1), &d(l2), &d(l3)],
                    None::<&[i64]>,
                );
                let err = (&rot - &w).abs().max().double_value(&[]);
                assert!(err < 1e-12, "w3j({l1},{l2},{l3}) not invariant: {err}");
                let norm = w.norm().double_value(&[]);
                assert!((norm - 1.0).abs() < 1e-14);
                n += 1;
            }
        }
    }
    assert_eq!(n, 175);
    // D is a representation: D(R1) D(R2) = D(R1 R2) checked through l = 1 (D^1 = R) and orthogonality
    for l in 0..=6 {
        let d = wigner_d(l, &a, &b, &c);
        let eye = Tensor::eye(2 * l as i64 + 1, (Kind::Double, Device::Cpu));
        assert!((d.matmul(&d.tr()) - eye).abs().max().double_value(&[]) < 1e-12);
    }
}

#[test]
fn spherical_harmonics_equivariant() {
    tch::manual_seed(1);
    for kind in [Kind::Double, Kind::Float] {
        for normalize in [true, false] {
            let sh = SphericalHarmonics::up_to(8, normalize, ShNormalization::Component).unwrap();
            let x = Tensor::randn([10, 3], (kind, Device::Cpu));
            let e = check_equivariance(
                |xs| vec![sh.forward(&xs[0])],
                &[(x, Field::irreps(irr("1o")))],
                &[Field::irreps(sh.irreps_out().clone())],
            );
            assert_eq_errs(&e, kind, "sh");
        }
    }
}

#[test]
fn spherical_harmonics_component_normalization_up_to_l8() {
    tch::manual_seed(6);
    let x = Tensor::randn([50, 3], (Kind::Double, Device::Cpu));
    let y = SphericalHarmonics::up_to(8, true, ShNormalization::Component)
        .unwrap()
        .forward(&x);
    for l in 0..=8i64 {
        let n2 = y
            .narrow(1, l * l, 2 * l + 1)
            .pow_tensor_scalar(2)
            .sum_dim_intlist([1i64].as_slice(), false, None::<Kind>);
        let err = (n2 - (2 * l + 1) as f64).abs().max().double_value(&[]);
        assert!(err < 1e-12 * (2 * l + 1) as f64, "|Y_{l}|^2 != 2l+1: {err}");
    }
    // the zonal component along y is the Legendre polynomial: Y_l,l(y-hat) = sqrt(2l+1)
    let yhat = Tensor::from_slice(&[0.0, 1.0, 0.0]).reshape([1, 3]);
    let y = SphericalHarmonics::up_to(8, true, ShNormalization::Component)
        .unwrap()
        .forward(&yhat);
    for l in 0..=8i64 {
        let v = y.double_value(&[0, l * l + l]);
        assert!(
            (v - ((2 * l + 1) as f64).sqrt()).abs() < 1e-12,
            "l={l}: {v}"
        );
    }
}

#[test]
fn linear_equivariant() {
    tch::manual_seed(2);
    for kind in [Kind::Double, Kind::Float] {
        let v = vs(kind);
        let (i, o) = (
            irr("3x0e+2x1o+2x2e+1x0o+2x1o"),
            irr("4x0e+3x1o+1x2e+2x0o+1x1e"),
        );
        let mut biases = vec![false; o.len()];
        biases[0] = true;
        let lin = Linear::with_options(
            Some(&v.root()),
            i.clone(),
            o.clone(),
            LinearOptions {
                biases,
                ..Default::default()
            },
        )
        .unwrap();
        let _ = tch::no_grad(|| lin.bias.as_ref().unwrap().shallow_clone().normal_(0.0, 1.0));
        let e = check_equivariance(
            |xs| vec![lin.forward(&xs[0])],
            &[(randn(&i, 6, kind), Field::irreps(i.clone()))],
            &[Field::irreps(o.clone())],
        );
        assert_eq_errs(&e, kind, "linear");
        assert_eq!(lin.weight.as_ref().unwrap().kind(), kind);
        // per-sample external weights
        let ext = Linear::with_options(
            None,
            i.clone(),
            o.clone(),
            LinearOptions {
                internal_weights: false,
                shared_weights: false,
                ..Default::default()
            },
        )
        .unwrap();
        let w = Tensor::randn([6, ext.weight_numel as i64], (kind, Device::Cpu));
        let e = check_equivariance(
            |xs| vec![ext.forward_with(&xs[0], Some(&xs[1]), None)],
            &[
                (randn(&i, 6, kind), Field::irreps(i.clone())),
                (w, Field::Fixed),
            ],
            &[Field::irreps(o.clone())],
        );
        assert_eq_errs(&e, kind, "linear per-sample");
    }
}

fn check_tp(tp: &TensorProduct, weight: Option<Tensor>, n: i64, kind: Kind, what: &str) {
    let (i1, i2, o) = (
        tp.irreps_in1.clone(),
        tp.irreps_in2.clone(),
        tp.irreps_out.clone(),
    );
    let mut inputs = vec![
        (randn(&i1, n, kind), Field::irreps(i1)),
        (randn(&i2, n, kind), Field::irreps(i2)),
    ];
    if let Some(w) = weight {
        inputs.push((w, Field::Fixed));
    }
    let e = check_equivariance(
        |xs| vec![tp.forward_with(&xs[0], &xs[1], xs.get(2).or(tp.weight.as_ref()))],
        &inputs,
        &[Field::irreps(o)],
    );
    assert_eq_errs(&e, kind, what);
}

#[test]
fn tensor_products_equivariant() {
    tch::manual_seed(3);
    for kind in [Kind::Double, Kind::Float] {
        // NequIP convolution: uvu, per-edge weights (fast kernel), l_max 3, both parities
        let (i1, i2) = (
            irr("5x0e+5x1o+5x2e+5x3o"),
            Irreps::spherical_harmonics(3, -1),
        );
        let mut mid = Vec::new();
        let mut ins = Vec::new();
        for (a, x) in i1.iter().enumerate() {
            for (b, y) in i2.iter().enumerate() {
                for ir in x.ir.product(&y.ir) {
                    if ir.l <= 3 {
                        ins.push(Instruction::new(a, b, mid.len(), ConnectionMode::Uvu, true));
                        mid.push(MulIr { mul: x.mul, ir });
                    }
                }
            }
        }
        let opts = TpOptions {
            shared_weights: Some(false),
            ..Default::default()
        };
        let tp = TensorProduct::new(
            None,
            i1.clone(),
            i2.clone(),
            Irreps(mid.clone()),
            ins.clone(),
            opts.clone(),
        )
        .unwrap();
        assert!(tp.uses_fast_kernel());
        check_tp(
            &tp,
            Some(Tensor::randn(
                [7, tp.weight_numel as i64],
                (kind, Device::Cpu),
            )),
            7,
            kind,
            "uvu fast",
        );
        // same paths summed into shared outputs (index_add branch of the fast kernel)
        let simple = Irreps(mid.clone()).regroup();
        let sorted = Irreps(mid.clone()).sort();
        let simple_idx = |k: usize| {
            simple
                .iter()
                .position(|m| m.ir == sorted.irreps[sorted.p[k]].ir)
                .unwrap()
        };
        let ins2: Vec<Instruction> = ins
            .iter()
            .map(|i| {
                Instruction::new(
                    i.i_in1,
                    i.i_in2,
                    simple_idx(i.i_out),
                    ConnectionMode::Uvu,
                    true,
                )
            })
            .collect();
        let simple5 = Irreps(simple.iter().map(|m| MulIr { mul: 5, ir: m.ir }).collect());
        let tp2 =
            TensorProduct::new(None, i1.clone(), i2.clone(), simple5, ins2, opts.clone()).unwrap();
        assert!(tp2.uses_fast_kernel());
        check_tp(
            &tp2,
            Some(Tensor::randn(
                [7, tp2.weight_numel as i64],
                (kind, Device::Cpu),
            )),
            7,
            kind,
            "uvu fast summed",
        );
        // generic kernel: uvw / uvv / uvu with mul2 > 1, shared internal weights
        let v = vs(kind);
        let fctp = TensorProduct::fully_connected(
            Some(&(v.root() / "sc")),
            irr("3x0e+2x1o+2x2e"),
            irr("2x0e+2x1o"),
            irr("4x0e+3x1o+2x1e+2x2e+1x3o"),
            TpOptions::default(),
        )
        .unwrap();
        assert!(!fctp.uses_fast_kernel());
        check_tp(&fctp, None, 5, kind, "fctp");
        let (a, b, o) = (irr("2x1o+3x2e"), irr("3x1o+3x0e"), irr("3x1e+3x2o+2x1o"));
        let ins = vec![
            Instruction::new(0, 0, 0, ConnectionMode::Uvv, true),
            Instruction::new(1, 0, 1, ConnectionMode::Uvv, true),
            Instruction::new(1, 0, 1, ConnectionMode::Uvv, false),
            Instruction::new(0, 1, 2, ConnectionMode::Uvu, true),
            Instruction::new(0, 1, 2, ConnectionMode::Uvu, false),
        ];
        let g = TensorProduct::new(Some(&(v.root() / "g")), a, b, o, ins, TpOptions::default())
            .unwrap();
        check_tp(&g, None, 5, kind, "uvv/uvu generic");
    }
}

#[test]
fn nonlinearities_equivariant() {
    tch::manual_seed(4);
    for kind in [Kind::Double, Kind::Float] {
        let g = Gate::new(
            irr("4x0e+2x0o"),
            vec![Some(Act::Silu), Some(Act::Tanh)],
            irr("2x0e+1x0o"),
            vec![Some(Act::Sigmoid), Some(Act::Tanh)],
            irr("2x1o+1x2e"),
        )
        .unwrap();
        let e = check_equivariance(
            |xs| vec![g.forward(&xs[0])],
            &[(
                randn(&g.irreps_in, 6, kind),
                Field::irreps(g.irreps_in.clone()),
            )],
            &[Field::irreps(g.irreps_out.clone())],
        );
        assert_eq_errs(&e, kind, "gate");
        let i = irr("3x0e+2x1o+2x2e+1x3o+1x0o");
        let na = NormActivation::new(None, i.clone(), Act::Ssp, true, None, false).unwrap();
        let e = check_equivariance(
            |xs| vec![na.forward(&xs[0])],
            &[(randn(&i, 6, kind), Field::irreps(i.clone()))],
            &[Field::irreps(i.clone())],
        );
        assert_eq_errs(&e, kind, "norm activation");
        let v = vs(kind);
        let fc = FullyConnectedNet::new(&(v.root() / "fc"), &[8, 16, 4], Some(Act::Silu)).unwrap();
        let s = irr("8x0e");
        let e = check_equivariance(
            |xs| vec![fc.forward(&xs[0])],
            &[(randn(&s, 6, kind), Field::irreps(s.clone()))],
            &[Field::irreps(irr("4x0e"))],
        );
        assert_eq_errs(&e, kind, "fc net");
    }
}

/// Per-atom features `sum_j exp(-r_ij) Y(r_ij)` of a point cloud: translation invariant,
/// rotation/parity/permutation equivariant.
fn point_features(pos: &Tensor, sh: &SphericalHarmonics) -> Tensor {
    let n = pos.size()[0];
    let rij = pos.unsqueeze(0) - pos.unsqueeze(1);
    let r = rij.norm_scalaropt_dim(2.0, [-1i64].as_slice(), true);
    let mask = (Tensor::ones([n, n], (pos.kind(), pos.device()))
        - Tensor::eye(n, (pos.kind(), pos.device())))
    .unsqueeze(-1);
    (sh.forward(&(&rij + Tensor::eye(n, (pos.kind(), pos.device())).unsqueeze(-1)))
        * (-r).exp()
        * mask)
        .sum_dim_intlist([1i64].as_slice(), false, None::<Kind>)
}

#[test]
fn utility_checks_translation_and_permutation_and_catches_errors() {
    tch::manual_seed(5);
    let sh = SphericalHarmonics::up_to(3, true, ShNormalization::Component).unwrap();
    for kind in [Kind::Double, Kind::Float] {
        let pos = Tensor::randn([6, 3], (kind, Device::Cpu));
        let out = Field::Irreps {
            irreps: sh.irreps_out().clone(),
            permute: true,
        };
        let e = check_equivariance(
            |xs| vec![point_features(&xs[0], &sh)],
            &[(pos.shallow_clone(), Field::Position { permute: true })],
            std::slice::from_ref(&out),
        );
        assert_eq_errs(&e, kind, "point features");
        assert!(
            e.translation > 0.0 || kind == Kind::Double,
            "translation was exercised"
        );
        // not translation invariant: uses absolute positions -> detected
        let bad = check_equivariance(
            |xs| vec![sh.forward(&xs[0])],
            &[(pos.shallow_clone(), Field::Position { permute: true })],
            std::slice::from_ref(&out),
        );
        assert!(
            bad.translation > 1e-3 && bad.rotation < tol(kind),
            "{bad:?}"
        );
        // wrong parity (claims 1e for a vector-valued function) -> detected
        let v = irr("1o");
        let wrong = check_equivariance(
            |xs| vec![xs[0].shallow_clone()],
            &[(Tensor::randn([4, 3], (kind, Device::Cpu)), Field::irreps(v))],
            &[Field::irreps(irr("1e"))],
        );
        assert!(
            wrong.parity > 1.0 && wrong.rotation < tol(kind),
            "{wrong:?}"
        );
        // not permutation equivariant (cumulative sum over atoms) -> detected
        let x = Tensor::randn([5, 3], (kind, Device::Cpu));
        let pf = Field::Irreps {
            irreps: irr("1o"),
            permute: true,
        };
        let cum = check_equivariance(
            |xs| vec![xs[0].cumsum(0, None::<Kind>)],
            &[(x, pf.clone())],
            &[pf],
        );
        assert!(cum.permutation > 1e-3, "{cum:?}");
    }
    // irreps_d is block diagonal with D^1 = R for 1o and -R with parity
    let (a, b, c) = rand_angles(&[], Kind::Double, Device::Cpu);
    let d = irreps_d(&irr("1x0e+1x1o"), (&a, &b, &c), true);
    let r = angles_to_matrix(&a, &b, &c);
    assert!(
        (d.narrow(0, 1, 3).narrow(1, 1, 3) + &r)
            .abs()
            .max()
            .double_value(&[])
            < 1e-13
    );
    assert_eq!(d.double_value(&[0, 0]), 1.0);
}
