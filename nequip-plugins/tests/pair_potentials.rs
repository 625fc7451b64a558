//! Pair potentials (`nequip/nn/pair_potential.py`, `nequip/model/_pair_potential.py`,
//! nequip 0.6.2) in float64: energies of a dimer, a trimer and a periodic cell against the
//! formulas evaluated here in plain f64 (½ of each pair energy per directed edge, times the
//! polynomial cutoff), forces against central finite differences, zero beyond `r_max`,
//! state-dict names, `update_for_rescale`, composition with `model_builders`, order errors.

use nequip_core::config::Config;
use nequip_core::data::AtomicDataDict;
use nequip_core::nn::grad_output::GradientOutput;
use nequip_core::nn::graph::RescaleInfo;
use nequip_core::nn::module::build_module;
use nequip_core::nn::rescale::RescaleOutput;
use nequip_core::nn::{GraphModel, GraphModule, IrrepsDict, LayerSpec, SequentialGraphNetwork};
use nequip_plugins::nn::pair::{LennardJones, SimpleLennardJones};
use tch::{Kind, Tensor};

mod model_common;

const R_MAX: f64 = 3.0;

fn config(yaml: &str) -> Config {
    nequip_plugins::link();
    let types = if yaml.contains("type_names") || yaml.contains("type_to_chemical_symbol") { "" } else { "chemical_symbols: [H, O]\n" };
    let text = format!("model_dtype: float64\ndefault_dtype: float64\nr_max: {R_MAX}\n{types}{yaml}");
    model_common::cpu_config(&text, "pair_test.yaml")
}

fn build_with(yaml: &str, initialize: bool) -> Result<GraphModel, String> {
    model_common::try_build(&mut config(yaml), initialize)
}

fn build(yaml: &str) -> GraphModel {
    build_with(yaml, false).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

fn build_err(yaml: &str) -> String {
    build_with(yaml, false).err().unwrap_or_else(|| panic!("expected an error for\n{yaml}"))
}

/// A structure with its (directed) edges `(i, j, cell shift)` and optional cell.
#[derive(Clone)]
struct Frame {
    pos: Vec<[f64; 3]>,
    types: Vec<i64>,
    edges: Vec<(usize, usize, [f64; 3])>,
    cell: Option<[[f64; 3]; 3]>,
}

fn molecule(pos: &[[f64; 3]], types: &[i64]) -> Frame {
    let n = pos.len();
    let edges = (0..n).flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j, [0.0; 3]))).collect();
    Frame { pos: pos.to_vec(), types: types.to_vec(), edges, cell: None }
}

/// Two atoms in a skewed cell, every image pair closer than `R_MAX` (self-images included).
fn periodic() -> Frame {
    let cell = [[2.8, 0.0, 0.0], [0.3, 3.1, 0.0], [0.0, 0.0, 9.0]];
    let mut f = Frame { pos: vec![[0.1, 0.2, 0.0], [1.3, 0.9, 0.4]], types: vec![1, 0], edges: vec![], cell: Some(cell) };
    for i in 0..2 {
        for j in 0..2 {
            for a in -2..=2 {
                for b in -2..=2 {
                    let s = [a as f64, b as f64, 0.0];
                    if (i != j || a != 0 || b != 0) && norm(vec_of(&f, i, j, s)) < R_MAX {
                        f.edges.push((i, j, s));
                    }
                }
            }
        }
    }
    assert!(f.edges.len() > 6, "the periodic frame has image edges");
    f
}

fn vec_of(f: &Frame, i: usize, j: usize, s: [f64; 3]) -> [f64; 3] {
    let c = f.cell.unwrap_or([[0.0; 3]; 3]);
    let mut v = [0.0; 3];
    for (k, vk) in v.iter_mut().enumerate() {
        *vk = f.pos[j][k] - f.pos[i][k] + (0..3).map(|m| s[m] * c[m][k]).sum::<f64>();
    }
    v
}

fn norm(v: [f64; 3]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn input(f: &Frame) -> AtomicDataDict {
    let mut d = AtomicDataDict::new();
    let pos: Vec<f64> = f.pos.iter().flatten().copied().collect();
    d.insert("pos".into(), Tensor::from_slice(&pos).view([-1, 3]));
    d.insert("atom_types".into(), Tensor::from_slice(&f.types).view([-1, 1]));
    let ei: Vec<i64> = f.edges.iter().map(|e| e.0 as i64).chain(f.edges.iter().map(|e| e.1 as i64)).collect();
    d.insert("edge_index".into(), Tensor::from_slice(&ei).view([2, -1]));
    if let Some(c) = f.cell {
        let c: Vec<f64> = c.iter().flatten().copied().collect();
        d.insert("cell".into(), Tensor::from_slice(&c).view([3, 3]));
        let s: Vec<f64> = f.edges.iter().flat_map(|e| e.2).collect();
        d.insert("edge_cell_shift".into(), Tensor::from_slice(&s).view([-1, 3]));
    }
    d
}

fn vals(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&t.to_kind(Kind::Double).reshape([-1]).contiguous()).unwrap()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1e-12f64, |m, x| m.max(x.abs()));
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= tol * scale, "{what}: got {got:?}, want {want:?}");
    }
}

// ---- the formulas, independently in f64 ----

/// nequip's PolynomialCutoff (p = 6).
fn cutoff(r: f64) -> f64 {
    let (p, u) = (6.0, r / R_MAX);
    if u >= 1.0 {
        return 0.0;
    }
    1.0 - (p + 1.0) * (p + 2.0) / 2.0 * u.powf(p) + p * (p + 2.0) * u.powf(p + 1.0) - p * (p + 1.0) / 2.0 * u.powf(p + 2.0)
}

fn lj_pair(r: f64, sigma: f64, eps: f64) -> f64 {
    4.0 * eps * ((sigma / r).powi(12) - (sigma / r).powi(6))
}

const SIGMA: [[f64; 2]; 2] = [[1.0, 1.2], [1.2, 0.9]];
const EPS: [[f64; 2]; 2] = [[0.5, 0.3], [0.3, 0.8]];
const DELTA: f64 = 0.1;
const P: f64 = 5.5;

fn fancy_pair(style: &str, r: f64, ti: usize, tj: usize) -> f64 {
    let (s, e) = (SIGMA[ti][tj], EPS[ti][tj]);
    let x = (s / (r - DELTA)).powf(P);
    match style {
        "lj" => 4.0 * e * (x * x - x),
        "lj_repulsive_only" if r < 2f64.powf(1.0 / P) + DELTA => 4.0 * e * (x * x - x) + 2.0 * e,
        "lj_repulsive_only" => 0.0,
        _ => e * (s * (r - DELTA)).powf(-P),
    }
}

/// LAMMPS `pair_zbl` with `qqr2e·qe²` = `k`.
fn zbl_pair(r: f64, zi: f64, zj: f64, k: f64) -> f64 {
    let a = 0.46850 / (zi.powf(0.23) + zj.powf(0.23));
    let c = [0.02817, 0.28022, 0.50986, 0.18175];
    let d = [0.20162, 0.40290, 0.94229, 3.19980];
    let phi: f64 = c.iter().zip(d).map(|(c, d)| c * (-d * r / a).exp()).sum();
    k * zi * zj / r * phi
}

/// Atomic energies: ½ of the pair energy per directed edge, on its centre atom.
fn atomic(f: &Frame, pair: &dyn Fn(f64, usize, usize) -> f64, with_cutoff: bool) -> Vec<f64> {
    let mut e = vec![0.0; f.pos.len()];
    for &(i, j, s) in &f.edges {
        let r = norm(vec_of(f, i, j, s));
        e[i] += 0.5 * pair(r, f.types[i] as usize, f.types[j] as usize) * if with_cutoff { cutoff(r) } else { 1.0 };
    }
    e
}

const LJ: &str = "pair_style: LJ\nlj_sigma: 1.1\nlj_epsilon: 0.7\n";
const FANCY: &str = "pair_style: LJ_fancy\nlj_sigma: [[1.0, 1.2], [1.2, 0.9]]\nlj_epsilon: [[0.5, 0.3], [0.3, 0.8]]\nlj_delta: 0.1\nlj_exponent: 5.5\n";

/// Every style: its config and its atomic energies on a frame.
#[allow(clippy::type_complexity)]
fn styles() -> Vec<(String, Box<dyn Fn(&Frame) -> Vec<f64>>)> {
    let z = [1.0, 8.0]; // H, O
    let mut v: Vec<(String, Box<dyn Fn(&Frame) -> Vec<f64>>)> = vec![
        (format!("{LJ}lj_use_cutoff: true\n"), Box::new(|f: &Frame| atomic(f, &|r, _, _| lj_pair(r, 1.1, 0.7), true))),
        (LJ.to_string(), Box::new(|f: &Frame| atomic(f, &|r, _, _| lj_pair(r, 1.1, 0.7), false))),
    ];
    for style in ["lj", "lj_repulsive_only", "repulsive"] {
        v.push((format!("{FANCY}lj_style: {style}\n"), Box::new(move |f: &Frame| atomic(f, &|r, a, b| fancy_pair(style, r, a, b), true))));
    }
    for (units, k) in [("metal", 14.399645), ("real", 332.06371)] {
        v.push((format!("pair_style: ZBL\nunits: {units}\n"), Box::new(move |f: &Frame| atomic(f, &|r, a, b| zbl_pair(r, z[a], z[b], k), true))));
    }
    v
}

fn total(m: &GraphModel, f: &Frame) -> f64 {
    vals(&m.forward(input(f), false).unwrap()["total_energy"])[0]
}

/// Energies equal the formulas; forces equal −dE/dr by central differences.
fn check_frame(f: &Frame, what: &str) {
    for (yaml, want) in styles() {
        let m = build(&format!("{yaml}model_builders: [PairPotential, ForceOutput]\n"));
        let out = m.forward(input(f), false).unwrap();
        let want = want(f);
        let name = format!("{what} / {}", yaml.replace('\n', " "));
        assert_close(&vals(&out["atomic_energy"]), &want, 1e-12, &format!("{name}: atomic_energy"));
        assert_close(&vals(&out["total_energy"]), &[want.iter().sum()], 1e-12, &format!("{name}: total_energy"));
        let forces = vals(&out["forces"]);
        let h = 1e-5;
        let mut fd = Vec::new();
        for a in 0..f.pos.len() {
            for k in 0..3 {
                let (mut p, mut q) = (f.clone(), f.clone());
                p.pos[a][k] += h;
                q.pos[a][k] -= h;
                fd.push(-(total(&m, &p) - total(&m, &q)) / (2.0 * h));
            }
        }
        assert_close(&forces, &fd, 1e-6, &format!("{name}: forces vs finite differences"));
    }
}

#[test]
fn dimer_energies_and_forces() {
    check_frame(&molecule(&[[0.0, 0.0, 0.0], [1.15, 0.2, -0.1]], &[0, 1]), "dimer");
}

#[test]
fn trimer_energies_and_forces() {
    check_frame(&molecule(&[[0.0, 0.0, 0.0], [1.2, 0.1, 0.0], [0.4, 1.05, 0.3]], &[0, 1, 1]), "trimer");
}

#[test]
fn periodic_energies_and_forces_through_edge_cell_shift() {
    check_frame(&periodic(), "periodic");
}

#[test]
fn nothing_beyond_r_max_with_the_cutoff() {
    let far = molecule(&[[0.0, 0.0, 0.0], [R_MAX + 0.05, 0.0, 0.0]], &[0, 1]);
    for (yaml, _) in styles() {
        let m = build(&format!("{yaml}model_builders: [PairPotential, ForceOutput]\n"));
        let out = m.forward(input(&far), false).unwrap();
        let (e, f) = (vals(&out["atomic_energy"]), vals(&out["forces"]));
        if yaml.contains("pair_style: LJ\n") && !yaml.contains("lj_use_cutoff") {
            // nequip's SimpleLennardJones applies no cutoff by default
            assert!(e.iter().all(|x| *x != 0.0), "{yaml}: {e:?}");
        } else {
            assert!(e.iter().chain(&f).all(|x| *x == 0.0), "{yaml}: energies {e:?}, forces {f:?}");
        }
    }
}

fn state(m: &GraphModel) -> Vec<(String, Vec<f64>, bool, Kind)> {
    m.state_dict().into_iter().map(|t| (t.name, vals(&t.tensor), t.trainable, t.tensor.kind())).collect()
}

#[test]
fn parameter_and_buffer_names_are_nequips() {
    let fb = "model_builders: [PairPotential, ForceOutput]\n";
    assert!(state(&build(&format!("{LJ}{fb}"))).is_empty(), "SimpleLennardJones keeps sigma and epsilon as plain numbers");

    let m = build(&format!("pair_style: LJ_fancy\nlj_sigma: [[1.0, 1.2], [1.2, 0.9]]\nlj_epsilon: 0.5\nlj_sigma_trainable: true\n{fb}"));
    let s = state(&m);
    let names: Vec<&str> = s.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(names, ["model.func.pair_potential.delta", "model.func.pair_potential.epsilon", "model.func.pair_potential.sigma"]);
    assert_eq!(s[0].1, [0.0; 4], "a number per type pair becomes a full matrix");
    assert_eq!(s[1].1, [0.5; 4]);
    assert_eq!(s[2].1, [1.0, 1.2, 0.0, 0.9], "a matrix is stored as its upper triangle");
    assert_eq!((s[0].2, s[1].2, s[2].2), (false, false, true));
    assert_eq!(m.num_trainable(), 4);

    let s = state(&build(&format!("pair_style: ZBL\nunits: metal\n{fb}")));
    assert_eq!(s.len(), 2);
    assert_eq!((s[0].0.as_str(), &s[0].1, s[0].3), ("model.func.pair_potential._qqr2exesquare", &vec![14.399645 * 0.5], Kind::Double));
    assert_eq!((s[1].0.as_str(), &s[1].1), ("model.func.pair_potential.atomic_numbers", &vec![1.0, 8.0]));
    assert!(!s[0].2 && !s[1].2, "buffers");
}

#[test]
fn layer_and_class_keys_beat_plain_keys() {
    // nequip's precedence: `k` < `LennardJones_k` < `pair_potential_k`
    let yaml = format!("{FANCY}pair_potential_lj_delta: 0.2\nLennardJones_lj_delta: 0.3\nLennardJones_lj_exponent: 7.0\n");
    let s = state(&build(&format!("{yaml}model_builders: [PairPotential]\n")));
    assert_eq!((s[0].0.as_str(), &s[0].1), ("model.pair_potential.delta", &vec![0.2; 4]));
    let m = module(&yaml, "LennardJones");
    assert_eq!(m.as_any().downcast_ref::<LennardJones>().unwrap().exponent, 7.0);
}

/// A pair module of `yaml`, built on its own (types given as the type mapper would set them).
fn module(yaml: &str, class: &str) -> Box<dyn GraphModule> {
    let c = config(&format!("{yaml}num_types: 2\ntype_to_chemical_symbol: {{0: H, 1: O}}\n"));
    let ctx = nequip_core::model::module_context(&c, "pair_potential", IrrepsDict::new()).unwrap();
    build_module(&LayerSpec::new("pair_potential", class), &c, &ctx).unwrap()
}

#[test]
fn update_for_rescale_divides_the_energy_constants() {
    let scaled = |scale: Option<f64>, keys: &[&str]| RescaleInfo { scale, scale_keys: keys.iter().map(|k| k.to_string()).collect() };
    let mut lj = module(LJ, "SimpleLennardJones");
    let mut fancy = module(FANCY, "LennardJones");
    let mut zbl = module("pair_style: ZBL\nunits: metal\n", "ZBL");
    let own = |m: &dyn GraphModule, name: &str| vals(&m.own_tensors().into_iter().find(|t| t.name == name).unwrap().tensor);
    // not scaling atomic_energy, or no scale: unchanged
    for info in [scaled(Some(4.0), &["total_energy", "forces"]), scaled(None, &["atomic_energy", "total_energy"])] {
        for m in [&mut lj, &mut fancy, &mut zbl] {
            m.update_for_rescale(&info).unwrap();
        }
    }
    assert_eq!(lj.as_any().downcast_ref::<SimpleLennardJones>().unwrap().lj_epsilon, 0.7);
    assert_eq!(own(fancy.as_ref(), "epsilon"), [0.5, 0.3, 0.0, 0.8]);
    assert_eq!(own(zbl.as_ref(), "_qqr2exesquare"), [7.1998225]);
    let info = scaled(Some(4.0), &["atomic_energy", "total_energy", "forces"]);
    for m in [&mut lj, &mut fancy, &mut zbl] {
        m.update_for_rescale(&info).unwrap();
    }
    assert_eq!(lj.as_any().downcast_ref::<SimpleLennardJones>().unwrap().lj_epsilon, 0.7 / 4.0);
    assert_close(&own(fancy.as_ref(), "epsilon"), &[0.125, 0.075, 0.0, 0.2], 1e-15, "epsilon / 4");
    assert_close(&own(zbl.as_ref(), "_qqr2exesquare"), &[7.1998225 / 4.0], 1e-15, "qqr2e / 4");
}

#[test]
fn rescaled_models_give_physical_energies() {
    // RescaleEnergyEtc multiplies by the scale; the pair modules divided their constants by it
    let f = molecule(&[[0.0, 0.0, 0.0], [1.2, 0.1, 0.0], [0.4, 1.05, 0.3]], &[0, 1, 1]);
    for (yaml, want) in styles() {
        let m = build_with(&format!("{yaml}global_rescale_scale: 2.5\nmodel_builders: [PairPotential, ForceOutput, RescaleEnergyEtc]\n"), true).unwrap();
        let want = want(&f);
        let eval = m.forward(input(&f), false).unwrap();
        assert_close(&vals(&eval["atomic_energy"]), &want, 1e-12, &format!("{yaml}: eval atomic_energy"));
        let train = m.forward(input(&f), true).unwrap();
        let normalised: Vec<f64> = want.iter().map(|x| x / 2.5).collect();
        assert_close(&vals(&train["atomic_energy"]), &normalised, 1e-12, &format!("{yaml}: training-mode atomic_energy"));
    }
}

fn inner_sgn(m: &GraphModel) -> &SequentialGraphNetwork {
    let r = m.model.as_any().downcast_ref::<RescaleOutput>().unwrap();
    let g = r.model.as_any().downcast_ref::<GradientOutput>().unwrap();
    g.func.as_any().downcast_ref::<SequentialGraphNetwork>().unwrap()
}

const NEQUIP: &str = "l_max: 1\nparity: true\nnum_features: 4\nnum_layers: 1\navg_num_neighbors: 2.0\nmodel_builders: [SimpleIrrepsConfig, EnergyModel, PerSpeciesRescale, PairPotentialTerm, ForceOutput, RescaleEnergyEtc]\n";

#[test]
fn pair_potential_term_adds_to_the_energy_model() {
    let f = molecule(&[[0.0, 0.0, 0.0], [1.2, 0.1, 0.0], [0.4, 1.05, 0.3]], &[0, 1, 1]);
    let z = [1.0, 8.0];
    let cases: [(String, Vec<f64>); 3] = [
        (format!("{LJ}lj_use_cutoff: true\n"), atomic(&f, &|r, _, _| lj_pair(r, 1.1, 0.7), true)),
        (format!("{FANCY}lj_style: lj\n"), atomic(&f, &|r, a, b| fancy_pair("lj", r, a, b), true)),
        ("pair_style: ZBL\nunits: metal\n".into(), atomic(&f, &|r, a, b| zbl_pair(r, z[a], z[b], 14.399645), true)),
    ];
    for (yaml, want) in cases {
        let m = build(&format!("{yaml}{NEQUIP}"));
        let sgn = inner_sgn(&m);
        let names = sgn.names();
        let n = names.len();
        assert_eq!(&names[n - 3..], ["per_species_rescale", "pair_potential", "total_energy_sum"], "{yaml}");
        // the pair layer adds exactly the pair energies to the atomic energies before it
        let mut data = input(&f);
        let (mut before, mut after) = (vec![], vec![]);
        for (name, layer) in sgn.children() {
            data = layer.forward(data, false).unwrap();
            match name.as_str() {
                "per_species_rescale" => before = vals(&data["atomic_energy"]),
                "pair_potential" => after = vals(&data["atomic_energy"]),
                _ => {}
            }
        }
        let added: Vec<f64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
        assert_close(&added, &want, 1e-10, &format!("{yaml}: pair_potential adds the pair energy"));
        // and the whole model's forces are still −dE/dr
        let out = m.forward(input(&f), false).unwrap();
        let h = 1e-5;
        let (mut p, mut q) = (f.clone(), f.clone());
        p.pos[2][1] += h;
        q.pos[2][1] -= h;
        let fd = -(total(&m, &p) - total(&m, &q)) / (2.0 * h);
        assert_close(&[vals(&out["forces"])[7]], &[fd], 1e-6, &format!("{yaml}: force"));
    }
}

#[test]
fn standalone_pair_potential_model_layers() {
    let m = build(&format!("{LJ}model_builders: [PairPotential, ForceOutput]\n"));
    let g = m.model.as_any().downcast_ref::<GradientOutput>().unwrap();
    let sgn = g.func.as_any().downcast_ref::<SequentialGraphNetwork>().unwrap();
    assert_eq!(sgn.names(), ["cutoff", "pair_potential", "total_energy_sum"]);
    let classes: Vec<String> = sgn.children().iter().map(|(_, c)| c.type_name().to_string()).collect();
    assert_eq!(classes, ["AddRadialCutoffToData", "SimpleLennardJones", "AtomwiseReduce"]);
}

#[test]
fn mistakes_are_errors_naming_the_fix() {
    let e = build_err(&format!("{LJ}{}", NEQUIP.replace("PerSpeciesRescale, PairPotentialTerm, ForceOutput", "PerSpeciesRescale, ForceOutput, PairPotentialTerm")));
    assert!(e.contains("already wrapped in a GradientOutput") && e.contains("put PairPotentialTerm before ForceOutput"), "{e}");
    let e = build_err(&format!("{LJ}{}", NEQUIP.replace("PairPotentialTerm, ForceOutput, RescaleEnergyEtc", "ForceOutput, RescaleEnergyEtc, PairPotentialTerm")));
    assert!(e.contains("already wrapped in a RescaleOutput") && e.contains("RescaleEnergyEtc"), "{e}");
    let e = build_err(&format!("{LJ}model_builders: [PairPotentialTerm, ForceOutput]\n"));
    assert!(e.contains("cannot come first"), "{e}");
    let e = build_err(&format!("{LJ}model_builders: [PairPotential, PairPotentialTerm]\n"));
    assert!(e.contains("`pair_potential` exists already"), "{e}");
    let e = build_err("pair_style: Morse\nmodel_builders: [PairPotential]\n");
    assert!(e.contains("unknown pair_style \"Morse\"") && e.contains("LJ (SimpleLennardJones), LJ_fancy (LennardJones), ZBL (ZBL)"), "{e}");
    let e = build_err("pair_style: ZBL\nunits: metal\ntype_names: [A, B]\nmodel_builders: [PairPotential]\n");
    assert!(e.contains("type_to_chemical_symbol is required"), "{e}");
    let e = build_err("pair_style: ZBL\nunits: si\nmodel_builders: [PairPotential]\n");
    assert!(e.contains("units must be metal or real"), "{e}");
    let e = build_err("pair_style: LJ_fancy\nlj_sigma: [[1.0, 1.1], [1.2, 1.0]]\nlj_epsilon: 1.0\nmodel_builders: [PairPotential]\n");
    assert!(e.contains("`lj_sigma` must be symmetric"), "{e}");
    let e = build_err("pair_style: LJ_fancy\nlj_sigma: 1.0\nmodel_builders: [PairPotential]\n");
    assert!(e.contains("`lj_epsilon` must be given"), "{e}");
    let e = build_err("pair_style: LJ_fancy\nlj_sigma: 1.0\nlj_epsilon: 1.0\nlj_style: morse\nmodel_builders: [PairPotential]\n");
    assert!(e.contains("lj_style must be lj, lj_repulsive_only or repulsive"), "{e}");
}
