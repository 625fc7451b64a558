//! `FusedConvolution` (tp → scatter-sum → linear_2 in one computation) equals the separate
//! e3nn ops (`TensorProduct::nequip_convolution`, `index_add`, `Linear`) — values, first
//! derivatives and second derivatives (what force training differentiates) with respect to
//! the edge features, the spherical harmonics, the per-edge weights and the linear's weight:
//! ≤1e-12 relative in float64, ≤1e-5 in float32; on irreps with different multiplicities per
//! block (the linear's weight rows are gathered per path), both parities, l_max 1–3, both
//! matmul layouts of the messages (per path and block-diagonal), output
//! irreps that no path reaches, and with and without the `avg_num_neighbors` divisor. Both
//! implementations of its messages are checked: the native CPU kernel (the default on the
//! CPU, `csrc/uvu_native.cpp`) and the libtorch-ops form (other devices).

use nequip_core::e3nn::{FusedConvolution, Irreps, Linear, TensorProduct};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

struct Case {
    in1: &'static str,
    sh: &'static str,
    filter: &'static str,
    out: &'static str,
    divisor: Option<f64>,
}

const CASES: &[Case] = &[
    // nequip's layer 0: scalars in, gate inputs out
    Case { in1: "8x0e", sh: "1x0e+1x1o+1x2e", filter: "24x0e+8x1o+8x2e", out: "24x0e+8x1o+8x2e", divisor: Some(10.5f64) },
    // hidden layer with parity, unequal multiplicities, an output no path reaches (3e)
    Case {
        in1: "4x0e+2x0o+3x1o+2x1e+2x2e+1x2o",
        sh: "1x0e+1x1o+1x2e",
        filter: "1x0e+1x0o+1x1o+1x1e+1x2e+1x2o",
        out: "5x0e+2x0o+3x1o+1x1e+2x2e+2x2o+1x3e",
        divisor: None,
    },
    // l_max 1, even parity only
    Case { in1: "3x0e+2x1o", sh: "1x0e+1x1o", filter: "1x0e+1x1o", out: "6x0e+4x1o", divisor: Some(3.0) },
    // wide enough that some subs batch one matrix per (edge, path) (d3·d1·U ≥ 400) and others
    // stack their paths block-diagonally
    Case {
        in1: "32x0e+32x1o+16x2e+16x2o",
        sh: "1x0e+1x1o+1x2e",
        filter: "1x0e+1x0o+1x1o+1x1e+1x2e+1x2o",
        out: "8x0e+2x0o+4x1o+4x1e+8x2e+8x2o",
        divisor: Some(12.0),
    },
    // every block with the same multiplicity (the kernel's fixed-U loops: U = 16)
    Case {
        in1: "16x0e+16x1o+16x1e+16x2e",
        sh: "1x0e+1x1o+1x2e",
        filter: "1x0e+1x0o+1x1o+1x1e+1x2e+1x2o",
        out: "8x0e+4x0o+8x1o+4x1e+8x2e+4x2o",
        divisor: Some(9.0),
    },
    // l_max 3
    Case {
        in1: "2x0e+2x1o+2x2e+1x3o",
        sh: "1x0e+1x1o+1x2e+1x3o",
        filter: "1x0e+1x0o+1x1o+1x1e+1x2e+1x2o+1x3o+1x3e",
        out: "3x0e+1x0o+2x1o+2x1e+2x2e+1x2o+2x3o+1x3e",
        divisor: Some(7.0),
    },
];

fn ir(s: &str) -> Irreps {
    s.parse().unwrap()
}

/// Relative max-norm difference.
fn rel(a: &Tensor, b: &Tensor) -> f64 {
    let scale = b.abs().max().double_value(&[]).max(1e-30);
    (a - b).abs().max().double_value(&[]) / scale
}

/// `[out, d(out·p)/d(inputs), d(Σ grads·q)/d(inputs)]` of `f` at `inputs`.
fn value_and_derivatives(f: &dyn Fn(&[Tensor]) -> Tensor, inputs: &[Tensor], probes: &[Tensor]) -> Vec<Tensor> {
    let out = f(inputs);
    let l1 = (&out * &probes[0]).sum(out.kind());
    let g = Tensor::run_backward(&[l1], inputs, true, true);
    let l2 = g
        .iter()
        .zip(&probes[1..])
        .map(|(g, q)| (g * q).sum(g.kind()))
        .reduce(|a, b| a + b)
        .unwrap();
    let h = Tensor::run_backward(&[l2], inputs, false, false);
    let mut all = vec![out.detach()];
    all.extend(g.iter().map(Tensor::detach));
    all.extend(h);
    all
}

fn check(case: &Case, kind: Kind, tol: f64) {
    tch::manual_seed(7);
    let vs = VarStore::new(Device::Cpu);
    let tp = TensorProduct::nequip_convolution(ir(case.in1), ir(case.sh), &ir(case.filter)).unwrap();
    let linear = Linear::new(&(vs.root() / "linear_2"), tp.irreps_out.simplify(), ir(case.out)).unwrap();
    let fused = FusedConvolution::try_new(&tp, &linear).expect("a NequIP convolution fuses");
    let (n_nodes, n_edges) = (5i64, 17i64);
    let opts = (kind, Device::Cpu);
    let centres = Tensor::from_slice(&[0i64, 0, 1, 1, 1, 2, 2, 3, 3, 3, 3, 4, 4, 0, 2, 1, 4]);
    // 6 source nodes (one without edges, some with several)
    let neighbours = Tensor::from_slice(&[1i64, 2, 0, 3, 3, 1, 4, 0, 1, 2, 4, 0, 3, 1, 0, 2, 3]);
    let x = Tensor::randn([6, tp.irreps_in1.dim() as i64], opts);
    let sh = Tensor::randn([n_edges, tp.irreps_in2.dim() as i64], opts);
    let w = Tensor::randn([n_edges, tp.weight_numel as i64], opts);
    let lw = Tensor::randn([linear.weight_numel as i64], opts);
    let inputs: Vec<Tensor> = [x, sh, w, lw].iter().map(|t| t.set_requires_grad(true)).collect();
    let out_dim = linear.irreps_out.dim() as i64;
    let mut probes = vec![Tensor::randn([n_nodes, out_dim], opts)];
    probes.extend(inputs.iter().map(|t| t.randn_like()));

    assert_eq!(n_edges, centres.size()[0]);
    let (fused, centres, neighbours) = (&fused, &centres, &neighbours);
    let run_fused = |native: bool| {
        move |t: &[Tensor]| fused.forward_using(native, &t[0], neighbours, &t[1], &t[2], centres, n_nodes, case.divisor, &t[3])
    };
    let run_separate = |t: &[Tensor]| {
        let msg = tp.forward_with(&t[0].index_select(0, neighbours), &t[1], Some(&t[2]));
        let mut m = Tensor::zeros([n_nodes, msg.size()[1]], opts).index_add(0, centres, &msg);
        if let Some(d) = case.divisor {
            m = m / d;
        }
        linear.forward_with(&m, Some(&t[3]), None)
    };
    let b = value_and_derivatives(&run_separate, &inputs, &probes);
    for native in [true, false] {
        let a = value_and_derivatives(&run_fused(native), &inputs, &probes);
        let names = ["output", "d/dx", "d/dsh", "d/dw", "d/dlinear", "d2/dx", "d2/dsh", "d2/dw", "d2/dlinear"];
        for ((a, b), name) in a.iter().zip(&b).zip(names) {
            assert_eq!(a.size(), b.size(), "{} {name}", case.in1);
            let r = rel(a, b);
            assert!(
                r <= tol,
                "{} ⊗ {} → {} ({kind:?}, native {native}): {name} differs by {r:e} (relative)",
                case.in1,
                case.sh,
                case.out
            );
        }
        // the case is not trivial: the output and every second derivative are non-zero
        assert!(a[0].abs().max().double_value(&[]) > 0.0);
        assert!(a[5..].iter().all(|t| t.abs().max().double_value(&[]) > 0.0), "{}: a second derivative vanishes", case.in1);
    }
}

/// The native kernel when only some inputs need gradients (its node skips the others), and
/// its third derivative (the kernel's derivatives are the kernel again) against the ops form.
#[test]
fn native_messages_partial_and_higher_derivatives() {
    let case = &CASES[1];
    tch::manual_seed(11);
    let vs = VarStore::new(Device::Cpu);
    let tp = TensorProduct::nequip_convolution(ir(case.in1), ir(case.sh), &ir(case.filter)).unwrap();
    let linear = Linear::new(&(vs.root() / "linear_2"), tp.irreps_out.simplify(), ir(case.out)).unwrap();
    let fused = FusedConvolution::try_new(&tp, &linear).unwrap();
    let opts = (Kind::Double, Device::Cpu);
    let centres = Tensor::from_slice(&[0i64, 1, 1, 2, 0, 2, 1]);
    let neighbours = Tensor::from_slice(&[1i64, 0, 2, 1, 2, 0, 0]);
    let x = Tensor::randn([3, tp.irreps_in1.dim() as i64], opts);
    let sh = Tensor::randn([7, tp.irreps_in2.dim() as i64], opts).set_requires_grad(true);
    let w = Tensor::randn([7, tp.weight_numel as i64], opts).set_requires_grad(true);
    let lw = Tensor::randn([linear.weight_numel as i64], opts);
    let probe = Tensor::randn([3, linear.irreps_out.dim() as i64], opts);
    let derivs = |native: bool| {
        let out = fused.forward_using(native, &x, &neighbours, &sh, &w, &centres, 3, Some(2.0), &lw);
        let l = (&out * &probe).sum(Kind::Double);
        let g = Tensor::run_backward(&[&l], &[&sh, &w], true, true);
        let l2 = (&g[0] * &g[0]).sum(Kind::Double) + (&g[1] * &g[1]).sum(Kind::Double);
        let h = Tensor::run_backward(&[&l2], &[&sh, &w], true, true);
        let l3 = (&h[0] * &h[0]).sum(Kind::Double) + (&h[1] * &h[1]).sum(Kind::Double);
        let k = Tensor::run_backward(&[&l3], &[&sh], false, false);
        vec![out.detach(), g[0].detach(), g[1].detach(), h[0].detach(), h[1].detach(), k[0].shallow_clone()]
    };
    let (a, b) = (derivs(true), derivs(false));
    for (i, (a, b)) in a.iter().zip(&b).enumerate() {
        let r = rel(a, b);
        assert!(r <= 1e-12, "derivative {i} differs by {r:e}");
        assert!(a.abs().max().double_value(&[]) > 0.0, "derivative {i} vanishes");
    }
}

#[test]
fn fused_convolution_equals_separate_ops_f64() {
    for case in CASES {
        check(case, Kind::Double, 1e-12);
    }
}

#[test]
fn fused_convolution_equals_separate_ops_f32() {
    for case in CASES {
        check(case, Kind::Float, 1e-5);
    }
}

#[test]
fn only_nequip_convolutions_fuse() {
    let vs = VarStore::new(Device::Cpu);
    let tp = TensorProduct::nequip_convolution(ir("2x0e+2x1o"), ir("1x0e+1x1o"), &ir("1x0e+1x1o")).unwrap();
    // a linear with biases, or one not reading the tensor product's (simplified) output
    let with_bias = Linear::with_options(
        Some(&(vs.root() / "a")),
        tp.irreps_out.simplify(),
        ir("2x0e+2x1o"),
        nequip_core::e3nn::linear::LinearOptions { biases: vec![true, false], ..Default::default() },
    )
    .unwrap();
    assert!(FusedConvolution::try_new(&tp, &with_bias).is_none());
    let other_input = Linear::new(&(vs.root() / "b"), ir("2x0e+2x1o"), ir("2x0e+2x1o")).unwrap();
    assert!(FusedConvolution::try_new(&tp, &other_input).is_none());
    let fctp = TensorProduct::fully_connected(Some(&(vs.root() / "d")), ir("2x0e+2x1o"), ir("1x0e"), ir("2x0e+2x1o"), Default::default()).unwrap();
    let lin = Linear::new(&(vs.root() / "c"), fctp.irreps_out.simplify(), ir("2x0e+2x1o")).unwrap();
    assert!(FusedConvolution::try_new(&fctp, &lin).is_none());
}

/// `tp` on 13 random samples through its specialised forms (native kernel, scalar-input
/// form) equals its general forms: values, first and second derivatives with respect to both
/// inputs and the weights (per sample, or shared when `shared`), all non-zero.
fn specialised_equals_general(tp: &TensorProduct, shared: bool, kind: Kind, tol: f64, label: &str) {
    let opts = (kind, Device::Cpu);
    let z = 13i64;
    let w_shape = if shared { vec![tp.weight_numel as i64] } else { vec![z, tp.weight_numel as i64] };
    let inputs: Vec<Tensor> = [
        Tensor::randn([z, tp.irreps_in1.dim() as i64], opts),
        Tensor::randn([z, tp.irreps_in2.dim() as i64], opts),
        Tensor::randn(w_shape, opts),
    ]
    .iter()
    .map(|t| t.set_requires_grad(true))
    .collect();
    let mut probes = vec![Tensor::randn([z, tp.irreps_out.dim() as i64], opts)];
    probes.extend(inputs.iter().map(|t| t.randn_like()));
    let run = |specialised: bool| move |t: &[Tensor]| tp.forward_using(specialised, &t[0], &t[1], Some(&t[2]));
    let a = value_and_derivatives(&run(true), &inputs, &probes);
    let b = value_and_derivatives(&run(false), &inputs, &probes);
    for (i, (a, b)) in a.iter().zip(&b).enumerate() {
        let r = rel(a, b);
        assert!(r <= tol, "{label} ({kind:?}): result {i} differs by {r:e}");
        assert!(a.abs().max().double_value(&[]) > 0.0, "{label}: result {i} vanishes");
    }
}

/// The stand-alone `TensorProduct` (e3nn's output layout, one row per sample) through the
/// native kernel equals its libtorch-ops form on every case above, f64 and f32.
#[test]
fn tensor_product_native_equals_ops() {
    for (kind, tol) in [(Kind::Double, 1e-12), (Kind::Float, 1e-5)] {
        for case in CASES {
            tch::manual_seed(3);
            let tp = TensorProduct::nequip_convolution(ir(case.in1), ir(case.sh), &ir(case.filter)).unwrap();
            specialised_equals_general(&tp, false, kind, tol, case.in1);
        }
    }
}

/// A graph large enough that the native kernel splits its edges over two threads (one partial
/// node sum per thread): the same values and derivatives as the libtorch ops.
#[test]
fn native_messages_on_two_threads() {
    tch::set_num_threads(2);
    tch::manual_seed(5);
    let vs = VarStore::new(Device::Cpu);
    let tp = TensorProduct::nequip_convolution(ir("16x0e+16x1o+16x2e"), ir("1x0e+1x1o+1x2e"), &ir("1x0e+1x1o+1x2e")).unwrap();
    let linear = Linear::new(&(vs.root() / "linear_2"), tp.irreps_out.simplify(), ir("8x0e+8x1o+8x2e")).unwrap();
    let fused = FusedConvolution::try_new(&tp, &linear).unwrap();
    let opts = (Kind::Double, Device::Cpu);
    let (n_nodes, n_edges) = (40i64, 3000i64);
    let centres = Tensor::randint(n_nodes, [n_edges], (Kind::Int64, Device::Cpu));
    let neighbours = Tensor::randint(n_nodes, [n_edges], (Kind::Int64, Device::Cpu));
    let inputs: Vec<Tensor> = [
        Tensor::randn([n_nodes, tp.irreps_in1.dim() as i64], opts),
        Tensor::randn([n_edges, tp.irreps_in2.dim() as i64], opts),
        Tensor::randn([n_edges, tp.weight_numel as i64], opts),
        Tensor::randn([linear.weight_numel as i64], opts),
    ]
    .iter()
    .map(|t| t.set_requires_grad(true))
    .collect();
    let mut probes = vec![Tensor::randn([n_nodes, linear.irreps_out.dim() as i64], opts)];
    probes.extend(inputs.iter().map(|t| t.randn_like()));
    let (fused, centres, neighbours) = (&fused, &centres, &neighbours);
    let run = |native: bool| {
        move |t: &[Tensor]| fused.forward_using(native, &t[0], neighbours, &t[1], &t[2], centres, n_nodes, Some(5.0), &t[3])
    };
    let a = value_and_derivatives(&run(true), &inputs, &probes);
    let b = value_and_derivatives(&run(false), &inputs, &probes);
    for (i, (a, b)) in a.iter().zip(&b).enumerate() {
        let r = rel(a, b);
        assert!(r <= 1e-12, "result {i} differs by {r:e}");
    }
}

/// The self-connection's fully connected tensor product with a scalar second input (the
/// one-hot node attributes) in its few-ops form equals the per-path einsum form, f64 and f32;
/// several scalar blocks of both parities, an output irrep no path reaches, l up to 3.
#[test]
fn scalar_input_fctp_equals_per_path_form() {
    use nequip_core::e3nn::tensor_product::TpOptions;
    let cases = [
        ("8x0e+8x1o", "2x0e", "8x0e+8x1o"),
        ("4x0e+3x0o+2x1o+2x1e+3x2e+1x3o", "3x0e+2x0o", "5x0e+2x0o+3x1o+1x1e+2x2e+2x3o+1x2o+1x4e"),
    ];
    for (kind, tol) in [(Kind::Double, 1e-12), (Kind::Float, 1e-5)] {
        for (a, b, o) in cases {
            tch::manual_seed(9);
            let vs = VarStore::new(Device::Cpu);
            let tp = TensorProduct::fully_connected(Some(&(vs.root() / "sc")), ir(a), ir(b), ir(o), TpOptions::default()).unwrap();
            assert!(tp.uses_scalar_input_kernel(), "{a} ⊗ {b}");
            specialised_equals_general(&tp, true, kind, tol, &format!("{a} ⊗ {b}"));
        }
    }
}

/// A small shared-weight `Linear` as one gathered dense matrix equals its block-by-block
/// form: values, first and second derivatives with respect to the input, the weights and the
/// biases; unequal multiplicities, both parities, several blocks of one irrep, an output no
/// input reaches, explicit instructions. A layer too large for the dense form keeps the blocks.
#[test]
fn dense_linear_equals_blocks() {
    use nequip_core::e3nn::linear::LinearOptions;
    let cases: [(&str, &str, Option<Vec<(usize, usize)>>); 3] = [
        ("8x0e+8x0o+8x1o+8x1e", "4x0e+8x0o+3x1o+2x1e", None),
        ("3x0e+2x1o+1x0e+2x2e+1x1o", "2x0e+3x1o+1x2e+2x1e+2x0e", None),
        ("3x0e+2x1o+1x0e", "2x0e+3x1o+2x0e", Some(vec![(0, 2), (1, 1), (2, 0), (0, 0)])),
    ];
    for (kind, tol) in [(Kind::Double, 1e-12), (Kind::Float, 1e-5)] {
        for (a, o, instructions) in &cases {
            tch::manual_seed(11);
            let (a, o) = (ir(a), ir(o));
            let biases: Vec<bool> = o.iter().map(|m| m.ir.is_scalar()).collect();
            let opts = LinearOptions { instructions: instructions.clone(), biases, internal_weights: false, shared_weights: true };
            let lin = Linear::with_options(None, a.clone(), o.clone(), opts).unwrap();
            assert!(lin.has_dense_form(), "{a} -> {o}");
            let t = (kind, Device::Cpu);
            let inputs: Vec<Tensor> = [Tensor::randn([7, a.dim() as i64], t), Tensor::randn([lin.weight_numel as i64], t), Tensor::randn([lin.bias_numel as i64], t)]
                .iter()
                .map(|t| t.set_requires_grad(true))
                .collect();
            let mut probes = vec![Tensor::randn([7, o.dim() as i64], t)];
            probes.extend(inputs.iter().map(|t| t.randn_like()));
            // the map is linear in the bias: second derivatives with respect to x and w only
            let run = |dense: bool| {
                let out = lin.forward_using(dense, &inputs[0], Some(&inputs[1]), Some(&inputs[2]));
                let g = Tensor::run_backward(&[(&out * &probes[0]).sum(kind)], &inputs, true, true);
                let l2 = (&g[0] * &probes[1]).sum(kind) + (&g[1] * &probes[2]).sum(kind);
                let mut all = vec![out.detach()];
                all.extend(g.iter().map(Tensor::detach));
                all.extend(Tensor::run_backward(&[l2], &inputs[..2], false, false));
                all
            };
            let (d, b) = (run(true), run(false));
            for (i, (d, b)) in d.iter().zip(&b).enumerate() {
                let r = rel(d, b);
                assert!(r <= tol, "{a} -> {o} ({kind:?}): result {i} differs by {r:e}");
            }
        }
    }
    let vs = VarStore::new(Device::Cpu);
    let big = Linear::new(&vs.root(), ir("64x0e+64x1o"), ir("64x0e+64x1o")).unwrap();
    assert!(!big.has_dense_form());
}
