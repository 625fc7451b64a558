//! Neighbor lists against ASE's `primitive_neighbor_list` (fixtures made by
//! `fixtures/data/gen_neighbors.py`), plus invariances and error cases.

use nequip_core::data::{neighbor_list, AtomicData, AtomicDataOptions, FrameError};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct Case {
    name: String,
    pos: Vec<[f64; 3]>,
    cell: Option<[[f64; 3]; 3]>,
    pbc: [bool; 3],
    r_max: f64,
    edges: Vec<[i64; 5]>,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/data/neighbors_cases.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn rows(
    pos: &[[f64; 3]],
    cell: Option<&[[f64; 3]; 3]>,
    pbc: [bool; 3],
    r_max: f64,
) -> Vec<[i64; 5]> {
    let nl = neighbor_list(pos, cell, pbc, r_max, false).unwrap();
    (0..nl.len())
        .map(|e| {
            let s = nl.shifts[e];
            [
                nl.centers[e] as i64,
                nl.neighbors[e] as i64,
                s[0] as i64,
                s[1] as i64,
                s[2] as i64,
            ]
        })
        .collect()
}

#[test]
fn edge_sets_equal_ase_on_hard_cases() {
    let cases = cases();
    assert_eq!(cases.len(), 14);
    for c in &cases {
        let got = rows(&c.pos, c.cell.as_ref(), c.pbc, c.r_max);
        assert_eq!(got.len(), c.edges.len(), "case {}: edge count", c.name);
        assert_eq!(got, c.edges, "case {}", c.name);
    }
}

#[test]
fn hard_cases_have_the_expected_structure() {
    let cases = cases();
    let by_name: BTreeMap<_, _> = cases.iter().map(|c| (c.name.as_str(), c)).collect();
    // one atom in a 1.1 Å cell with r_max 2.5: only periodic self images
    let tiny = by_name["tiny_cubic_1atom"];
    assert!(tiny.edges.len() > 50 && tiny.edges.iter().all(|e| e[0] == 0 && e[1] == 0));
    assert!(by_name["no_edges"].edges.is_empty());
    assert_eq!(
        by_name["isolated_atoms"].edges,
        vec![[0, 4, 0, 0, 0], [4, 0, 0, 0, 0]]
    );
    // non-periodic axes never shift
    assert!(by_name["slab_TTF_zero_c"].edges.iter().all(|e| e[4] == 0));
    assert!(by_name["mixed_TFT_skewed"].edges.iter().all(|e| e[3] == 0));
}

#[test]
fn edge_vectors_are_shorter_than_r_max_and_symmetric() {
    for c in cases() {
        let pos: Vec<f64> = c.pos.iter().flatten().copied().collect();
        let mut opts = AtomicDataOptions::new(c.r_max);
        opts.error_on_no_edges = false;
        let pbc = c.pbc;
        let d = AtomicData::from_points(pos, &opts, c.cell, Some(pbc), BTreeMap::new()).unwrap();
        let vecs = d.edge_vectors();
        let (ci, nj) = d.edge_index();
        let shifts = d.get("edge_cell_shift").unwrap().as_f64().unwrap();
        let mut set = std::collections::BTreeSet::new();
        for e in 0..vecs.len() {
            let len = vecs[e].iter().map(|x| x * x).sum::<f64>().sqrt();
            assert!(len < c.r_max, "{}: edge {e} has length {len}", c.name);
            let s: Vec<i64> = shifts[3 * e..3 * e + 3].iter().map(|&x| x as i64).collect();
            set.insert((ci[e], nj[e], s[0], s[1], s[2]));
        }
        // full list: every edge has its reverse with the opposite shift
        for &(i, j, a, b, cc) in &set {
            assert!(
                set.contains(&(j, i, -a, -b, -cc)),
                "{}: reverse of {i}->{j} missing",
                c.name
            );
        }
    }
}

#[test]
fn translation_and_wrapping_do_not_change_the_edge_set_modulo_shifts() {
    let c = cases()
        .into_iter()
        .find(|c| c.name == "liquid_triclinic_150")
        .unwrap();
    let cell = c.cell.unwrap();
    let shifted: Vec<[f64; 3]> = c
        .pos
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let n = (k % 5) as f64 - 2.0; // move atoms by whole lattice vectors
            std::array::from_fn(|d| p[d] + n * cell[0][d] - 2.0 * n * cell[2][d] + 0.0)
        })
        .collect();
    let a = rows(&c.pos, Some(&cell), c.pbc, c.r_max);
    let b = rows(&shifted, Some(&cell), c.pbc, c.r_max);
    let strip = |r: Vec<[i64; 5]>| r.iter().map(|e| (e[0], e[1])).collect::<Vec<_>>();
    assert_eq!(a.len(), b.len());
    let mut sa = strip(a);
    let mut sb = strip(b);
    sa.sort();
    sb.sort();
    assert_eq!(sa, sb);
}

#[test]
fn bad_inputs_are_errors() {
    let pos = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]];
    let flat = [[0.0; 3], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
    assert_eq!(
        neighbor_list(&pos, None, [false; 3], 0.0, false),
        Err(FrameError::BadRMax(0.0))
    );
    assert_eq!(
        neighbor_list(&pos, None, [false; 3], -1.0, false),
        Err(FrameError::BadRMax(-1.0))
    );
    let err = neighbor_list(&pos, Some(&flat), [true; 3], 2.0, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "field `cell`: zero-volume cell (lattice vector 0 is zero) with pbc [true, true, true]"
    );
    let coplanar = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]];
    let err = neighbor_list(&pos, Some(&coplanar), [true; 3], 2.0, false).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("field `cell`: zero-volume cell (volume"),
        "{err}"
    );
    // a zero vector along a non-periodic axis is fine
    assert!(neighbor_list(&pos, Some(&flat), [false, true, true], 2.0, false).is_ok());
    let nan = [[0.0, f64::NAN, 0.0], [1.0, 0.0, 0.0]];
    let err = neighbor_list(&nan, None, [false; 3], 2.0, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "field `pos`: non-finite value (NaN) at index 1"
    );
    // no edges: nequip's error by default, allowed when configured
    let far = vec![0.0, 0.0, 0.0, 10.0, 0.0, 0.0];
    let mut opts = AtomicDataOptions::new(2.0);
    opts.error_on_no_edges = true;
    let err = AtomicData::from_points(far.clone(), &opts, None, None, BTreeMap::new()).unwrap_err();
    assert!(
        err.to_string()
            .contains("every single atom has no neighbors within the cutoff r_max=2"),
        "{err}"
    );
    opts.error_on_no_edges = false;
    let d = AtomicData::from_points(far, &opts, None, None, BTreeMap::new()).unwrap();
    assert_eq!(d.num_edges(), 0);
    assert_eq!(d.get("cell").unwrap().as_f64().unwrap(), &[0.0; 9]);
}

#[test]
fn self_interaction_option_adds_zero_shift_self_edges() {
    let pos = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]];
    let with = neighbor_list(&pos, None, [false; 3], 2.0, true).unwrap();
    assert_eq!(with.len(), 4);
    assert_eq!(with.centers, vec![0, 0, 1, 1]);
    assert_eq!(with.neighbors, vec![0, 1, 0, 1]);
}

#[test]
fn absurd_inputs_are_errors_not_hangs() {
    let pos = [[0.0, 0.0, 0.0]];
    let tiny = [[1e-4, 0.0, 0.0], [0.0, 1e-4, 0.0], [0.0, 0.0, 1e-4]];
    let err = neighbor_list(&pos, Some(&tiny), [true; 3], 5.0, false).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("field `cell`: cell too small for r_max=5"),
        "{err}"
    );
    let far = [[1e300, 0.0, 0.0], [0.0, 0.0, 0.0]];
    let cell = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let err = neighbor_list(&far, Some(&cell), [true; 3], 0.5, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "field `pos`: atom 0 is more than 1e9 cell lengths away from the cell"
    );
    // far apart but non-periodic: fine, no edges
    assert!(neighbor_list(&far, None, [false; 3], 0.5, false)
        .unwrap()
        .is_empty());
}
