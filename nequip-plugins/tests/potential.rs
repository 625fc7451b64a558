//! The MD inference path (`nequip_core::potential::Potential`): the same energies, forces,
//! virial and per-atom energies as the training model's forward (`StressForceOutput`) on
//! periodic Cu (orthogonal and strained triclinic cells, a supercell) and a molecule; the
//! virial = a finite strain derivative for a model without stress output; an engine's graph of
//! explicit periodic images ("ghost atoms", energy counted on the central cell only) gives the
//! periodic result once image forces are summed onto their owners; bad input is an error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nequip_core::config::Config;
use nequip_core::data::atomic_data::{AtomicData, AtomicDataOptions};
use nequip_core::data::extxyz::read_extxyz;
use nequip_core::data::keys::*;
use nequip_core::data::Array;
use nequip_core::io::model_file;
use nequip_core::nn::GraphModule;
use nequip_core::potential::{Graph, Potential, Request};
use nequip_core::train::{trainer_from_config, SetupOptions, Silent};
use tch::Kind;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data").join(name)
}

/// Train one epoch of a small float64 model; returns its best_model file.
fn train(root: &Path, stress: bool, extra: &str) -> PathBuf {
    nequip_plugins::link();
    let (ds, builders, species) = if stress {
        (format!("dataset: ase\ndataset_file_name: {}\ndataset_include_frames: [0, 1, 2, 3, 4, 5, 6, 7, 8]\nloss_coeffs: {{forces: 1.0, stress: 1.0}}\n", data("cu_emt.extxyz").display()), "[SimpleIrrepsConfig, EnergyModel, PerSpeciesRescale, StressForceOutput, RescaleEnergyEtc]", "[Cu]")
    } else {
        (format!("dataset: npz\ndataset_file_name: {}\nkey_mapping: {{z: atomic_numbers, E: total_energy, F: forces, R: pos}}\nnpz_fixed_field_keys: [atomic_numbers]\nloss_coeffs: {{forces: 1.0, total_energy: [1.0, PerAtomMSELoss]}}\n", data("toluene_xtb.npz").display()), "[SimpleIrrepsConfig, EnergyModel, PerSpeciesRescale, ForceOutput, RescaleEnergyEtc]", "[H, C]")
    };
    let text = format!(
        "root: {}\nrun_name: run\nseed: 1\ndevice: cpu\nmodel_dtype: float64\ndefault_dtype: float64\nmodel_builders: {builders}\nr_max: 3.0\nnum_basis: 4\nl_max: 2\nparity: true\nnum_features: 4\nnum_layers: 2\n{ds}chemical_symbols: {species}\nn_train: 6\nn_val: 3\nbatch_size: 3\nmax_epochs: 1\n{extra}",
        root.display()
    );
    let mut t = trainer_from_config(Config::from_yaml_str(&text, "t.yaml").unwrap(), &SetupOptions::default()).unwrap();
    t.train(&mut Silent).unwrap();
    root.join("run/best_model.safetensors")
}

struct Frame {
    pos: Vec<[f64; 3]>,
    types: Vec<i64>,
    cell: Option<[[f64; 3]; 3]>,
}

fn xyz_frame(file: &str, index: usize, type_of: impl Fn(&str) -> i64) -> Frame {
    let f = read_extxyz(&data(file)).unwrap().swap_remove(index);
    let types = f.symbols.as_ref().unwrap().iter().map(|s| type_of(s)).collect();
    let pos = f.positions.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
    let periodic = f.pbc.iter().any(|&p| p);
    Frame { pos, types, cell: periodic.then_some(f.cell) }
}

/// The training model's forward in eval mode: (energy, forces, virial or None, atom energies).
fn reference(model: &nequip_core::nn::GraphModel, r_max: f64, f: &Frame) -> (f64, Vec<f64>, Option<Vec<f64>>, Vec<f64>) {
    let mut extra = BTreeMap::new();
    extra.insert(ATOM_TYPE_KEY.to_string(), Array::i64(vec![f.types.len()], f.types.clone()));
    let opts = AtomicDataOptions::new(r_max);
    let pbc = f.cell.map(|_| [true; 3]);
    let d = AtomicData::from_points(f.pos.concat(), &opts, f.cell, pbc, extra).unwrap();
    let out = model.forward(d.to_dict(), false).unwrap();
    let v = |k: &str| -> Vec<f64> { Vec::try_from(out[k].detach().to_kind(Kind::Double).reshape([-1])).unwrap() };
    let virial = out.get(VIRIAL_KEY).filter(|t| t.numel() > 0).map(|_| v(VIRIAL_KEY));
    (v(TOTAL_ENERGY_KEY)[0], v(FORCE_KEY), virial, v(PER_ATOM_ENERGY_KEY))
}

fn assert_close(what: &str, a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(1e-3f64, |m, x| m.max(x.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * scale, "{what}[{i}]: {x} vs {y} (scale {scale})");
    }
}

fn supercell(f: &Frame, reps: [usize; 3]) -> Frame {
    let c = f.cell.unwrap();
    let mut pos = Vec::new();
    let mut types = Vec::new();
    for a in 0..reps[0] {
        for b in 0..reps[1] {
            for d in 0..reps[2] {
                for (p, &t) in f.pos.iter().zip(&f.types) {
                    pos.push(std::array::from_fn(|k| p[k] + a as f64 * c[0][k] + b as f64 * c[1][k] + d as f64 * c[2][k]));
                    types.push(t);
                }
            }
        }
    }
    let cell = std::array::from_fn(|r| std::array::from_fn(|k| c[r][k] * reps[r] as f64));
    Frame { pos, types, cell: Some(cell) }
}

#[test]
fn periodic_cu_equals_the_training_forward() {
    let dir = tempfile::tempdir().unwrap();
    let file = train(dir.path(), true, "");
    let (model, _) = model_file::load(&file, Some("cpu")).unwrap();
    let pot = Potential::load(&file, None).unwrap();
    assert_eq!(pot.type_names(), ["Cu"]);
    assert_eq!(pot.num_layers(), 2);
    assert_eq!(pot.r_max(), 3.0);
    assert_eq!(pot.model_dtype(), Kind::Double);
    let orthogonal = xyz_frame("cu_emt.extxyz", 0, |_| 0);
    // a strained frame: the shipped data has off-diagonal cell entries
    let strained = (0..200).map(|i| xyz_frame("cu_emt.extxyz", i, |_| 0)).find(|f| f.cell.unwrap()[0][1].abs() > 1e-3).expect("a triclinic frame");
    let big = supercell(&strained, [2, 1, 1]);
    for (name, f) in [("orthogonal", &orthogonal), ("triclinic", &strained), ("supercell", &big)] {
        let (e, forces, virial, atom_e) = reference(&model, pot.r_max(), f);
        let o = pot.compute(&f.pos, &f.types, f.cell.as_ref(), [true; 3], Request::ALL).unwrap();
        assert_close(&format!("{name} energy"), &[o.energy], &[e], 1e-10);
        assert_close(&format!("{name} forces"), o.forces.as_ref().unwrap().as_flattened(), &forces, 1e-10);
        assert_close(&format!("{name} virial"), o.virial.as_ref().unwrap().as_flattened(), virial.as_ref().unwrap(), 1e-10);
        assert_close(&format!("{name} atom energies"), o.atom_energies.as_ref().unwrap(), &atom_e, 1e-10);
    }
    // the supercell is twice the cell
    let o1 = pot.compute(&strained.pos, &strained.types, strained.cell.as_ref(), [true; 3], Request::default()).unwrap();
    let o2 = pot.compute(&big.pos, &big.types, big.cell.as_ref(), [true; 3], Request::default()).unwrap();
    assert!((o2.energy - 2.0 * o1.energy).abs() < 1e-10 * o1.energy.abs(), "{} vs 2 x {}", o2.energy, o1.energy);
}

/// Explicit periodic images as ghost nodes: the energy of the central cell's atoms, forces of
/// every image summed onto its owner = the periodic result (what a domain-decomposed engine
/// does with a ghost shell of num_layers · r_max).
#[test]
fn ghost_images_give_the_periodic_result() {
    let dir = tempfile::tempdir().unwrap();
    let file = train(dir.path(), true, "");
    let pot = Potential::load(&file, None).unwrap();
    let f = (0..200).map(|i| xyz_frame("cu_emt.extxyz", i, |_| 0)).find(|f| f.cell.unwrap()[0][1].abs() > 1e-3).unwrap();
    let cell = f.cell.unwrap();
    let n = f.pos.len();
    // the central cell first, then its 26 neighbours' images (the cell is wider than
    // num_layers · r_max = 6 Å, so one shell of images is a complete ghost shell)
    let (mut pos, mut types, mut owner) = (f.pos.clone(), f.types.clone(), (0..n).collect::<Vec<_>>());
    for a in -1i32..=1 {
        for b in -1i32..=1 {
            for c in -1i32..=1 {
                if (a, b, c) == (0, 0, 0) {
                    continue;
                }
                for (i, p) in f.pos.iter().enumerate() {
                    pos.push(std::array::from_fn(|k| p[k] + a as f64 * cell[0][k] + b as f64 * cell[1][k] + c as f64 * cell[2][k]));
                    types.push(f.types[i]);
                    owner.push(i);
                }
            }
        }
    }
    // all pairs (the library drops those beyond r_max), as an engine's list with a skin would be
    let (mut centers, mut neighbors, mut vectors) = (vec![], vec![], vec![]);
    for i in 0..pos.len() {
        for j in 0..pos.len() {
            let v: [f64; 3] = std::array::from_fn(|k| pos[j][k] - pos[i][k]);
            if i != j && v.iter().map(|x| x * x).sum::<f64>() < 5.0 * 5.0 {
                centers.push(i as i64);
                neighbors.push(j as i64);
                vectors.push(v);
            }
        }
    }
    let g = Graph { types: &types, n_energy_nodes: n, centers: &centers, neighbors: &neighbors, vectors: &vectors };
    let o = pot.compute_graph(&g, Request::ALL).unwrap();
    let p = pot.compute(&f.pos, &f.types, Some(&cell), [true; 3], Request::ALL).unwrap();
    let mut folded = vec![[0.0; 3]; n];
    for (k, fk) in o.forces.as_ref().unwrap().iter().enumerate() {
        for d in 0..3 {
            folded[owner[k]][d] += fk[d];
        }
    }
    assert_close("energy", &[o.energy + pot.energy_shift()], &[p.energy], 1e-10);
    assert_close("forces", folded.as_flattened(), p.forces.as_ref().unwrap().as_flattened(), 1e-10);
    assert_close("virial", o.virial.as_ref().unwrap().as_flattened(), p.virial.as_ref().unwrap().as_flattened(), 1e-10);
    assert_close("atom energies", o.atom_energies.as_ref().unwrap(), p.atom_energies.as_ref().unwrap(), 1e-10);
}

#[test]
fn molecule_forces_and_virial_by_finite_differences() {
    let dir = tempfile::tempdir().unwrap();
    let file = train(dir.path(), false, "");
    let (model, _) = model_file::load(&file, Some("cpu")).unwrap();
    let pot = Potential::load(&file, None).unwrap();
    assert_eq!(pot.type_names(), ["H", "C"]);
    let f = xyz_frame("toluene_xtb.extxyz", 3, |s| if s == "H" { 0 } else { 1 });
    let (e, forces, _, atom_e) = reference(&model, pot.r_max(), &f);
    let o = pot.compute(&f.pos, &f.types, None, [false; 3], Request::ALL).unwrap();
    assert_close("energy", &[o.energy], &[e], 1e-10);
    assert_close("forces", o.forces.as_ref().unwrap().as_flattened(), &forces, 1e-10);
    assert_close("atom energies", o.atom_energies.as_ref().unwrap(), &atom_e, 1e-10);
    // virial = -dE/d(strain): central differences of the energy of strained positions
    let energy = |eps: [[f64; 3]; 3]| {
        let pos: Vec<[f64; 3]> = f.pos.iter().map(|p| std::array::from_fn(|k| p[k] + (0..3).map(|a| p[a] * eps[a][k]).sum::<f64>())).collect();
        pot.compute(&pos, &f.types, None, [false; 3], Request::default()).unwrap().energy
    };
    let h = 1e-5;
    let w = o.virial.unwrap();
    for a in 0..3 {
        for b in 0..3 {
            let mut ep = [[0.0; 3]; 3];
            ep[a][b] += h / 2.0;
            ep[b][a] += h / 2.0;
            let em = ep.map(|r| r.map(|x| -x));
            let fd = -(energy(ep) - energy(em)) / (2.0 * h);
            assert!((fd - w[a][b]).abs() < 1e-6 * (1.0 + w[a][b].abs()), "virial[{a}][{b}]: {} vs finite difference {fd}", w[a][b]);
        }
    }
}

#[test]
fn bad_input_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = train(dir.path(), false, "");
    let pot = Potential::load(&file, None).unwrap();
    let f = xyz_frame("toluene_xtb.extxyz", 0, |s| if s == "H" { 0 } else { 1 });
    fn msg<T>(r: Result<T, nequip_core::potential::PotentialError>) -> String {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    }
    let mut types = f.types.clone();
    types[4] = 2;
    assert!(msg(pot.compute(&f.pos, &types, None, [false; 3], Request::ALL)).contains("atom 4 has type 2, but the model has 2 types"));
    let mut pos = f.pos.clone();
    pos[7][1] = f64::NAN;
    assert!(msg(pot.compute(&pos, &f.types, None, [false; 3], Request::ALL)).contains("atom 7 is not finite"));
    assert!(msg(pot.compute(&f.pos, &f.types[1..], None, [false; 3], Request::ALL)).contains("15 positions but 14 types"));
    let g = Graph { types: &f.types, n_energy_nodes: 15, centers: &[0], neighbors: &[15], vectors: &[[1.0, 0.0, 0.0]] };
    assert!(msg(pot.compute_graph(&g, Request::ALL)).contains("edge 0 (0 -> 15) names a node outside 0..15"));
    let g = Graph { types: &f.types, n_energy_nodes: 16, centers: &[], neighbors: &[], vectors: &[] };
    assert!(msg(pot.compute_graph(&g, Request::ALL)).contains("n_energy_nodes = 16 exceeds the 15 nodes"));
    // a file that is no model
    let not_model = dir.path().join("x.safetensors");
    std::fs::write(&not_model, b"hello").unwrap();
    assert!(msg(Potential::load(&not_model, None)).contains("not a nequip-rs model file"));
    assert!(msg(Potential::load(&dir.path().join("missing.safetensors"), None)).contains("missing.safetensors"));
}
