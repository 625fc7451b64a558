//! Parity with e3nn 0.5.9: every fixture value of `e3nn_reference.npz` and `e3nn_ops.npz`
//! (float64, relative error ≤ 1e-12), and the same modules in float32 (≤ 1e-5).

mod e3nn_common;

use e3nn_common::{assert_close, irreps_from_rows, ops_cases, Npz};
use nequip_core::e3nn::activation::Act;
use nequip_core::e3nn::linear::LinearOptions;
use nequip_core::e3nn::tensor_product::TpOptions;
use nequip_core::e3nn::*;
use tch::{Device, Kind, Tensor};

const TOL64: f64 = 1e-12;
const TOL32: f64 = 1e-5;

#[test]
fn wigner_3j_matches_both_fixture_files() {
    let mut n = 0;
    for file in ["e3nn_reference.npz", "e3nn_ops.npz"] {
        let npz = Npz::load(file);
        for key in npz.keys().into_iter().filter(|k| k.starts_with("w3j_")) {
            let l: Vec<u32> = key[4..].split('_').map(|s| s.parse().unwrap()).collect();
            let c = wigner_3j(l[0], l[1], l[2], Kind::Double, Device::Cpu).unwrap();
            assert_close(&c, &npz.get(&key), TOL64, &key);
            n += 1;
        }
    }
    assert_eq!(n, 34 + 65);
    assert!(wigner_3j(1, 1, 3, Kind::Double, Device::Cpu).is_err());
}

#[test]
fn spherical_harmonics_match_up_to_l6() {
    let ops = Npz::load("e3nn_ops.npz");
    let raw = ops.get("sh_vecs_raw");
    for l in 0..=6u32 {
        let y = spherical_harmonics(&[l], &raw, true, ShNormalization::Component).unwrap();
        assert_close(
            &y,
            &ops.get(&format!("sh_l{l}")),
            TOL64,
            &format!("sh_l{l}"),
        );
    }
    let all = SphericalHarmonics::up_to(6, true, ShNormalization::Component).unwrap();
    assert_eq!(
        all.irreps_out().to_string(),
        "1x0e+1x1o+1x2e+1x3o+1x4e+1x5o+1x6e"
    );
    assert_close(&all.forward(&raw), &ops.get("sh_all"), TOL64, "sh_all");
    // f32
    let y32 = all.forward(&raw.to_kind(Kind::Float));
    assert_eq!(y32.kind(), Kind::Float);
    assert_close(&y32, &ops.get("sh_all"), TOL32, "sh_all f32");

    let r = Npz::load("e3nn_reference.npz");
    let sh3 = |x: &Tensor, norm| SphericalHarmonics::up_to(3, true, norm).unwrap().forward(x);
    assert_close(
        &sh3(&r.get("vecs"), ShNormalization::Component),
        &r.get("sh_all"),
        TOL64,
        "sh_all",
    );
    assert_close(
        &sh3(&r.get("vecs_raw"), ShNormalization::Component),
        &r.get("sh_all_raw"),
        TOL64,
        "raw",
    );
    assert_close(
        &sh3(&r.get("vecs"), ShNormalization::Integral),
        &r.get("sh_all_integral"),
        TOL64,
        "integral",
    );
    assert_close(
        &sh3(&r.get("vecs"), ShNormalization::Norm),
        &r.get("sh_all_norm"),
        TOL64,
        "norm",
    );
    // normalize = false on unit vectors is the same polynomial
    let unnorm = SphericalHarmonics::up_to(3, false, ShNormalization::Component).unwrap();
    assert_close(
        &unnorm.forward(&r.get("vecs")),
        &r.get("sh_all"),
        TOL64,
        "normalize=false",
    );
    // a non-range list of degrees
    let some =
        spherical_harmonics(&[2, 0], &r.get("vecs"), true, ShNormalization::Component).unwrap();
    let want = Tensor::cat(&[r.get("sh_l2"), r.get("sh_l0")], 1);
    assert_close(&some, &want, TOL64, "ls=[2,0]");
}

#[test]
fn wigner_d_and_rotations_match() {
    let r = Npz::load("e3nn_reference.npz");
    let ang = r.get("angles");
    let (a, b, c) = (ang.select(1, 0), ang.select(1, 1), ang.select(1, 2));
    assert_close(&angles_to_matrix(&a, &b, &c), &r.get("rot"), TOL64, "rot");
    for l in 0..=3 {
        assert_close(
            &wigner_d(l, &a, &b, &c),
            &r.get(&format!("wigner_D_l{l}")),
            TOL64,
            &format!("D_l{l}"),
        );
    }
    // D^1 = R, and Y(R v) = D(R) Y(v) for l <= 6
    assert_close(&wigner_d(1, &a, &b, &c), &r.get("rot"), TOL64, "D1 = R");
    let v = r.get("vecs");
    for l in 0..=6u32 {
        let sh = SphericalHarmonics::new(&[l], true, ShNormalization::Component).unwrap();
        for k in 0..5 {
            let rot = r.get("rot").get(k);
            let d = wigner_d(l, &a.get(k), &b.get(k), &c.get(k));
            let lhs = sh.forward(&v.matmul(&rot.tr()));
            let rhs = sh.forward(&v).matmul(&d.tr());
            assert_close(&lhs, &rhs, TOL64, &format!("Y(Rv)=DY(v) l={l}"));
        }
    }
}

fn linear_case(npz: &Npz, case: &str, kind: Kind) -> (Tensor, Tensor) {
    let p = |k: &str| npz.get(&format!("{case}__{k}"));
    let lin = Linear::with_options(
        None,
        irreps_from_rows(&p("irreps_in")),
        irreps_from_rows(&p("irreps_out")),
        LinearOptions {
            internal_weights: false,
            ..Default::default()
        },
    )
    .unwrap();
    let pw: Vec<f64> = Vec::try_from(p("ins_path_weight")).unwrap();
    let mine: Vec<f64> = lin.instructions.iter().map(|i| i.path_weight).collect();
    assert_eq!(mine.len(), pw.len());
    for (a, b) in mine.iter().zip(&pw) {
        assert!(
            (a - b).abs() < 1e-15,
            "{case} path weights {mine:?} vs {pw:?}"
        );
    }
    assert_eq!(lin.weight_numel as i64, p("weight").size()[0]);
    let out = lin.forward_with(
        &p("x").to_kind(kind),
        Some(&p("weight").to_kind(kind)),
        None,
    );
    (out, p("out"))
}

#[test]
fn linear_matches() {
    let npz = Npz::load("e3nn_ops.npz");
    for case in ["linear_a", "linear_b", "linear_c"] {
        let (o, want) = linear_case(&npz, case, Kind::Double);
        assert_close(&o, &want, TOL64, case);
        let (o, want) = linear_case(&npz, case, Kind::Float);
        assert_eq!(o.kind(), Kind::Float);
        assert_close(&o, &want, TOL32, case);
    }
    // linear_b's 2x1e output has no input: exactly 0
    let (o, _) = linear_case(&npz, "linear_b", Kind::Double);
    let z = o.narrow(1, 3 + 15 + 5, 6);
    assert_eq!(z.abs().max().double_value(&[]), 0.0);
}

/// Builds the TP of a fixture case from its json instructions and checks the normalised path
/// weights and weight layout; returns (output f64, output f32, expected).
fn tp_case(
    npz: &Npz,
    cases: &serde_json::Value,
    case: &str,
    expect_fast: bool,
) -> (Tensor, Tensor, Tensor) {
    let p = |k: &str| npz.get(&format!("{case}__{k}"));
    let c = &cases[case];
    let ins: Vec<Instruction> = c["instructions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            Instruction::new(
                i["i_in1"].as_u64().unwrap() as usize,
                i["i_in2"].as_u64().unwrap() as usize,
                i["i_out"].as_u64().unwrap() as usize,
                i["connection_mode"].as_str().unwrap().parse().unwrap(),
                i["has_weight"].as_bool().unwrap(),
            )
        })
        .collect();
    let shared = c["shared_weights"].as_bool().unwrap();
    let tp = TensorProduct::new(
        None,
        irreps_from_rows(&p("irreps_in1")),
        irreps_from_rows(&p("irreps_in2")),
        irreps_from_rows(&p("irreps_out")),
        ins,
        TpOptions {
            shared_weights: Some(shared),
            internal_weights: Some(false),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(tp.uses_fast_kernel(), expect_fast, "{case}");
    assert_eq!(tp.weight_numel as u64, c["weight_numel"].as_u64().unwrap());
    for (mine, theirs) in tp
        .instructions
        .iter()
        .zip(c["instructions"].as_array().unwrap())
    {
        let pw = theirs["path_weight"].as_f64().unwrap();
        assert!(
            (mine.path_weight - pw).abs() <= 1e-15 * pw,
            "{case}: {} vs {pw}",
            mine.path_weight
        );
        let shape: Vec<usize> = theirs["path_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(mine.path_shape, shape);
    }
    let run = |k: Kind| {
        tp.forward_with(
            &p("x1").to_kind(k),
            &p("x2").to_kind(k),
            Some(&p("weight").to_kind(k)),
        )
    };
    (run(Kind::Double), run(Kind::Float), p("out"))
}

#[test]
fn tensor_products_match() {
    let npz = Npz::load("e3nn_ops.npz");
    let cases = ops_cases();
    for (case, fast) in [
        ("tp_uvu_l2", true),
        ("tp_uvu_l2_filtered", true),
        ("tp_uvu_l3", true),
        ("tp_uvu_l3_pfalse", true),
        ("fctp_sc", false),
        ("fctp_mix", false),
    ] {
        let (o64, o32, want) = tp_case(&npz, &cases, case, fast);
        assert_close(&o64, &want, TOL64, case);
        assert_close(&o32, &want, TOL32, case);
    }
}

#[test]
fn nequip_convolution_instructions_and_fctp_constructor() {
    // nequip's loop (nn/_interaction_block.py) rebuilt on our Irreps; compare with the fixture.
    let npz = Npz::load("e3nn_ops.npz");
    let cases = ops_cases();
    for case in [
        "tp_uvu_l2",
        "tp_uvu_l2_filtered",
        "tp_uvu_l3",
        "tp_uvu_l3_pfalse",
    ] {
        let c = &cases[case];
        let in1: Irreps = c["irreps_in1"].as_str().unwrap().parse().unwrap();
        let in2: Irreps = c["irreps_in2"].as_str().unwrap().parse().unwrap();
        let filter: Irreps = c["feature_irreps_out_filter"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let mut mid = Vec::new();
        let mut ins = Vec::new();
        for (i, a) in in1.iter().enumerate() {
            for (j, b) in in2.iter().enumerate() {
                for ir in a.ir.product(&b.ir) {
                    if filter.contains(ir) {
                        ins.push((i, j, mid.len()));
                        mid.push(MulIr { mul: a.mul, ir });
                    }
                }
            }
        }
        let sorted = Irreps(mid).sort();
        assert_eq!(
            sorted.irreps,
            irreps_from_rows(&npz.get(&format!("{case}__irreps_out"))),
            "{case}"
        );
        let got: Vec<(usize, usize, usize)> =
            ins.iter().map(|&(i, j, k)| (i, j, sorted.p[k])).collect();
        let want: Vec<(usize, usize, usize)> = instruction_triples(c);
        assert_eq!(got, want, "{case}");
        assert_eq!(
            sorted.irreps.simplify().to_string(),
            c["irreps_mid_simplified"].as_str().unwrap()
        );
        // the library helper builds the same
        let tp = TensorProduct::nequip_convolution(in1, in2, &filter).unwrap();
        assert_eq!(tp.irreps_out, sorted.irreps);
        let helper: Vec<_> = tp
            .instructions
            .iter()
            .map(|i| (i.i_in1, i.i_in2, i.i_out))
            .collect();
        assert_eq!(helper, want, "{case}");
        assert!(tp.uses_fast_kernel());
    }
    // FullyConnectedTensorProduct builds e3nn's instruction list and internal weight
    let vs = tch::nn::VarStore::new(Device::Cpu);
    for case in ["fctp_sc", "fctp_mix"] {
        let c = &cases[case];
        let irr = |k: &str| c[k].as_str().unwrap().parse::<Irreps>().unwrap();
        let tp = TensorProduct::fully_connected(
            Some(&(vs.root() / case)),
            irr("irreps_in1"),
            irr("irreps_in2"),
            irr("irreps_out"),
            TpOptions::default(),
        )
        .unwrap();
        let want: Vec<(usize, usize, usize)> = instruction_triples(c);
        let got: Vec<_> = tp
            .instructions
            .iter()
            .map(|i| (i.i_in1, i.i_in2, i.i_out))
            .collect();
        assert_eq!(got, want);
        assert_eq!(
            tp.weight.as_ref().unwrap().size(),
            vec![c["weight_numel"].as_i64().unwrap()]
        );
        // the internal weight is used by forward(): load the fixture's and compare
        tch::no_grad(|| {
            tp.weight
                .as_ref()
                .unwrap()
                .shallow_clone()
                .copy_(&npz.get(&format!("{case}__weight")).to_kind(Kind::Float))
        });
        let o = tp.forward(
            &npz.get(&format!("{case}__x1")).to_kind(Kind::Float),
            &npz.get(&format!("{case}__x2")).to_kind(Kind::Float),
        );
        assert_close(&o, &npz.get(&format!("{case}__out")), TOL32, case);
    }
    assert!(vs.variables().contains_key("fctp_sc.weight"));
}

#[test]
fn fully_connected_net_matches() {
    let npz = Npz::load("e3nn_ops.npz");
    for (case, act) in [("fcn_silu", Act::Silu), ("fcn_ssp", Act::Ssp)] {
        let p = |k: &str| npz.get(&format!("{case}__{k}"));
        assert_eq!(p("act_cst").double_value(&[]), act.normalize2mom_constant());
        for kind in [Kind::Double, Kind::Float] {
            let net = FullyConnectedNet::from_weights(
                (0..3).map(|k| p(&format!("w{k}")).to_kind(kind)).collect(),
                Some(act),
            )
            .unwrap();
            assert_eq!(net.hs, vec![8, 16, 16, 12]);
            let tol = if kind == Kind::Double { TOL64 } else { TOL32 };
            assert_close(&net.forward(&p("x").to_kind(kind)), &p("out"), tol, case);
        }
    }
    // parameter names
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let _ = FullyConnectedNet::new(&(vs.root() / "fc"), &[8, 16, 4], Some(Act::Silu)).unwrap();
    let mut names: Vec<String> = vs.variables().into_keys().collect();
    names.sort();
    assert_eq!(names, ["fc.layer0.weight", "fc.layer1.weight"]);
    assert_eq!(vs.variables()["fc.layer0.weight"].size(), vec![8, 16]);
}

#[test]
fn gates_match() {
    let npz = Npz::load("e3nn_ops.npz");
    let cases = ops_cases();
    for case in ["gate_nequip", "gate_sigmoid", "gate_odd"] {
        let c = &cases[case];
        let irr = |k: &str| c[k].as_str().unwrap().parse::<Irreps>().unwrap();
        let acts = |k: &str| -> Vec<Option<Act>> {
            c[k].as_array()
                .unwrap()
                .iter()
                .map(|a| Some(a.as_str().unwrap().parse().unwrap()))
                .collect()
        };
        let g = Gate::new(
            irr("irreps_scalars"),
            acts("act_scalars"),
            irr("irreps_gates"),
            acts("act_gates"),
            irr("irreps_gated"),
        )
        .unwrap();
        assert_eq!(g.irreps_in, irr("irreps_in"), "{case}");
        assert_eq!(g.irreps_out, irr("irreps_out"), "{case}");
        let x = npz.get(&format!("{case}__x"));
        let want = npz.get(&format!("{case}__out"));
        assert_close(&g.forward(&x), &want, TOL64, case);
        assert_close(&g.forward(&x.to_kind(Kind::Float)), &want, TOL32, case);
    }
    // an odd scalar through silu (neither even nor odd) is an error, not a panic
    let bad = Gate::new(
        "1x0o".parse().unwrap(),
        vec![Some(Act::Silu)],
        Irreps::default(),
        vec![],
        Irreps::default(),
    );
    assert!(bad.is_err());
}

#[test]
fn norm_activations_match() {
    let npz = Npz::load("e3nn_ops.npz");
    for (case, act) in [("normact_ssp", Act::Ssp), ("normact_silu", Act::Silu)] {
        let irreps = irreps_from_rows(&npz.get(&format!("{case}__irreps_in")));
        let na = NormActivation::new(None, irreps, act, true, None, false).unwrap();
        let x = npz.get(&format!("{case}__x"));
        let want = npz.get(&format!("{case}__out"));
        assert_close(&na.forward(&x), &want, TOL64, case);
        assert_close(&na.forward(&x.to_kind(Kind::Float)), &want, TOL32, case);
    }
}

/// `(i_in1, i_in2, i_out)` of every instruction of a fixture case.
fn instruction_triples(c: &serde_json::Value) -> Vec<(usize, usize, usize)> {
    c["instructions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let idx = |k: &str| i[k].as_u64().unwrap() as usize;
            (idx("i_in1"), idx("i_in2"), idx("i_out"))
        })
        .collect()
}
