//! The edge embedding of nequip 0.6.2 on its own parity fixtures (frame 0 intermediates of the
//! `aspirin_l2` molecule and the periodic `cu_l1` case): edge vectors and lengths (with cell
//! shifts), spherical-harmonic edge attributes, Bessel × polynomial-cutoff embedding, cutoff and
//! one-hot species, all to 1e-12 relative in float64. Edges are nequip's own (given by the fixture).

mod nn_common;
use nn_common::*;

use std::collections::BTreeMap;

use nequip_core::data::dict::with_edge_vectors;
use nequip_core::data::AtomicDataDict;
use nequip_core::e3nn::{spherical_harmonics, Irreps, ShNormalization};
use nequip_core::nn::radial::{bessel_weights_init, edge_embedding, one_hot};
use tch::{Kind, Tensor};




fn check_case(case: &str) {
    let frames = npz(&format!("{case}_frames.npz"));
    let params = npz(&format!("{case}_params.npz"));
    let meta = meta(case);
    let config = &meta["config"];
    let r_max = config["r_max"].as_f64().unwrap();
    let p = config["PolynomialCutoff_p"].as_f64().unwrap();
    let f = |k: &str| frames[&format!("f0_{k}")].shallow_clone();
    let inter = |k: &str| frames[&format!("f0_inter_{k}")].shallow_clone();

    let mut data: AtomicDataDict = BTreeMap::new();
    data.insert("pos".into(), f("pos"));
    data.insert("edge_index".into(), f("edge_index"));
    if f("pbc").to_kind(Kind::Int64).sum(Kind::Int64).int64_value(&[]) > 0 {
        data.insert("cell".into(), f("cell"));
        data.insert("edge_cell_shift".into(), f("edge_cell_shift"));
    }
    with_edge_vectors(&mut data, true).unwrap();
    assert_close(&data["edge_vectors"], &inter("spharm_edges__edge_vectors"), 1e-12, "edge_vectors");
    assert_close(&data["edge_lengths"], &inter("radial_basis__edge_lengths"), 1e-12, "edge_lengths");

    let irreps: Irreps = config["irreps_edge_sh"].as_str().unwrap().parse().unwrap();
    let ls: Vec<u32> = irreps.0.iter().map(|m| m.ir.l).collect();
    let sh = spherical_harmonics(&ls, &data["edge_vectors"], true, ShNormalization::Component).unwrap();
    assert_close(&sh, &inter("spharm_edges__edge_attrs"), 1e-12, "edge_attrs");

    let weights = &params["model.model.func.radial_basis.basis.bessel_weights"];
    let (emb, cutoff) = edge_embedding(&data["edge_lengths"], weights, r_max, p);
    assert_close(&emb, &inter("radial_basis__edge_embedding"), 1e-12, "edge_embedding");
    assert_close(&cutoff, &inter("radial_basis__edge_cutoff"), 1e-12, "edge_cutoff");
    // the fixture's weights are the untrained initial values: nequip's n·pi
    assert_close(weights, &bessel_weights_init(weights.size()[0], Kind::Double), 1e-12, "bessel init");

    let num_types = meta["type_names"].as_array().unwrap().len() as i64;
    assert_close(&one_hot(&f("atom_types"), num_types, Kind::Double), &inter("one_hot__node_attrs"), 1e-12, "node_attrs");
}

#[test]
fn aspirin_molecule_edge_embedding() {
    check_case("aspirin_l2");
}

#[test]
fn periodic_copper_edge_embedding() {
    check_case("cu_l1");
}

/// The embedding and its gradient vanish at and beyond r_max; it is smooth just inside.
#[test]
fn embedding_and_gradient_are_zero_at_the_cutoff() {
    let r_max = 4.0;
    let w = bessel_weights_init(8, Kind::Double);
    let r = Tensor::from_slice(&[r_max, r_max + 0.5, r_max - 1e-6]).set_requires_grad(true);
    let (emb, _) = edge_embedding(&r, &w, r_max, 6.0);
    let g = Tensor::run_backward(&[emb.sum(Kind::Double)], &[&r], false, false)[0].shallow_clone();
    let emb = Vec::<f64>::try_from(emb.flatten(0, -1)).unwrap();
    let g = Vec::<f64>::try_from(&g).unwrap();
    assert!(emb[..16].iter().all(|&x| x == 0.0), "{emb:?}");
    assert_eq!(&g[..2], &[0.0, 0.0]);
    // 1e-6 inside r_max: the cutoff vanishes like (1-u)^3 and the Bessel terms like (1-u), so
    // the embedding is O(1e-24) and its gradient O(1e-18)
    assert!(emb[16..].iter().all(|x| x.abs() < 1e-22) && g[2].abs() < 1e-16 && g[2] != 0.0, "{:?} {}", &emb[16..], g[2]);
}
