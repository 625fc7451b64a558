//! Statistics against independent numpy computations (`fixtures/data/gen_statistics.py`), to 1e-12.

use nequip_core::data::statistics::{avg_num_neighbors, ridge_solver};
use nequip_core::data::{NpzDataset, NpzOptions, TypeMapper};
use serde_json::Value;
use std::path::Path;

fn fixture() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/data/statistics.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn close(got: f64, want: &Value, what: &str) {
    let want = want.as_f64().unwrap();
    let tol = 1e-12 * want.abs().max(1.0);
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got:e}, want {want:e} (diff {:e})",
        got - want
    );
}

fn close_all(got: &[f64], want: &Value, what: &str) {
    let flat: Vec<Value> = match want {
        Value::Array(v) => v
            .iter()
            .flat_map(|x| {
                if let Value::Array(inner) = x {
                    inner.clone()
                } else {
                    vec![x.clone()]
                }
            })
            .collect(),
        x => vec![x.clone()],
    };
    assert_eq!(got.len(), flat.len(), "{what}: length");
    for (k, (g, w)) in got.iter().zip(&flat).enumerate() {
        close(*g, w, &format!("{what}[{k}]"));
    }
}

fn load(stem: &str, symbols: &[&str], periodic: bool) -> nequip_core::data::InMemoryDataset {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../data/{stem}.npz"));
    let mut yaml = format!(
        "file_name: {}\nkey_mapping: {{R: pos, z: atomic_numbers, E: total_energy, F: forces}}\nnpz_fixed_field_keys: [atomic_numbers]\nAtomicData_options: {{r_max: 4.0}}\n",
        file.display()
    );
    if periodic {
        yaml.push_str("include_keys: [cell, pbc, stress]\n");
    }
    let o: NpzOptions = serde_yaml::from_str(&yaml).unwrap();
    NpzDataset::load(
        &o,
        &TypeMapper::from_chemical_symbols(symbols).unwrap(),
        None,
    )
    .unwrap()
}

fn check_dataset(stem: &str, symbols: &[&str], periodic: bool) {
    let fx = &fixture()[stem];
    let ds = load(stem, symbols, periodic);
    let idx: Vec<usize> = fx["indices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let stride = fx["stride"].as_u64().unwrap() as usize;
    let mut fields = vec![
        "total_energy",
        "total_energy",
        "total_energy",
        "total_energy",
        "total_energy",
        "forces",
        "forces",
        "forces",
        "forces",
        "forces",
        "total_energy",
    ];
    let mut modes = vec![
        "mean_std",
        "rms",
        "absmax",
        "per_atom_mean_std",
        "per_atom_rms",
        "rms",
        "mean_std",
        "absmax",
        "per_species_rms",
        "per_species_mean_std",
        "per_species_mean_std",
    ];
    let mut keys = vec![
        "total_energy_mean_std",
        "total_energy_rms",
        "total_energy_absmax",
        "per_atom_total_energy_mean_std",
        "per_atom_total_energy_rms",
        "forces_rms",
        "forces_mean_std",
        "forces_absmax",
        "per_species_forces_rms",
        "per_species_forces_mean_std",
        "per_species_total_energy_mean_std",
    ];
    if periodic {
        fields.push("stress");
        modes.push("mean_std");
        keys.push("stress_mean_std");
    }
    let res = ds
        .statistics(&fields, &modes, Some(&idx), stride, None)
        .unwrap();
    for ((r, key), mode) in res.iter().zip(&keys).zip(&modes) {
        let got: Vec<Vec<f64>> = r.iter().map(|a| a.to_f64_vec()).collect();
        match &fx[*key] {
            Value::Array(parts) if *key == "per_species_total_energy_mean_std" => {
                close_all(&got[0], &parts[0], &format!("{stem} {key} [0]"));
                // the ridge uncertainty of a single composition goes through an ill-conditioned
                // inverse (A = XᵀX + small diagonal): agree to 1e-4 relative
                for (g, w) in got[1].iter().zip(parts[1].as_array().unwrap()) {
                    let w = w.as_f64().unwrap();
                    assert!(
                        (g - w).abs() <= 1e-4 * w.abs(),
                        "{stem} {key} [1]: {g} vs {w}"
                    );
                }
            }
            Value::Array(parts) if r.len() == 2 => {
                close_all(&got[0], &parts[0], &format!("{stem} {key} ({mode}) [0]"));
                close_all(&got[1], &parts[1], &format!("{stem} {key} ({mode}) [1]"));
            }
            want => close_all(&got[0], want, &format!("{stem} {key} ({mode})")),
        }
    }
    let frames = ds.select(Some(&idx), stride);
    assert_eq!(frames.len(), idx.len().div_ceil(stride));
    let (m, s) = avg_num_neighbors(&frames).unwrap();
    close(m, &fx["avg_num_neighbors"][0], "avg_num_neighbors");
    close(s, &fx["avg_num_neighbors"][1], "var_num_neighbors (std)");
}

#[test]
fn toluene_statistics_match_numpy() {
    check_dataset("toluene_xtb", &["H", "C"], false);
}

#[test]
fn cu_statistics_match_numpy() {
    check_dataset("cu_emt", &["Cu"], true);
}

#[test]
fn ridge_regression_matches_numpy_on_mixed_compositions() {
    let fx = fixture();
    for key in ["ridge_alpha0.001", "ridge_alpha0.1"] {
        let c = &fx[key];
        let x: Vec<Vec<f64>> = c["X"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect()
            })
            .collect();
        let y: Vec<f64> = c["y"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let (m, s) = ridge_solver(&x, &y, c["alpha"].as_f64().unwrap()).unwrap();
        close_all(&m, &c["mean"], &format!("{key} mean"));
        // the uncertainty goes through a matrix inverse: agree to 1e-9 relative
        for (k, (g, w)) in s.iter().zip(c["std"].as_array().unwrap()).enumerate() {
            let w = w.as_f64().unwrap();
            assert!(
                (g - w).abs() <= 1e-9 * w.abs(),
                "{key} std[{k}]: {g} vs {w}"
            );
        }
        // nequip's normalised ridge is biased, but keeps the order of the generating energies
        assert!(m[2] < m[1] && m[1] < m[0], "{m:?}");
    }
}

#[test]
fn statistics_errors_name_the_problem() {
    let ds = load("toluene_xtb", &["H", "C"], false);
    let err = ds
        .statistics(&["forces"], &["per_atom_rms"], None, 1, None)
        .unwrap_err();
    assert_eq!(err.to_string(), "invalid option `statistics`: it doesn't make sense to ask for `per_atom_rms` since `forces` is not per-graph");
    let err = ds
        .statistics(&["stress"], &["rms"], None, 1, None)
        .unwrap_err();
    assert!(err.to_string().contains("missing key `stress`"), "{err}");
    let err = ds
        .statistics(&["forces"], &["median"], None, 1, None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid option `statistics`: cannot handle statistics mode `median`"
    );
    let c = ds
        .statistics(&["atom_types"], &["count"], Some(&[0, 1]), 1, None)
        .unwrap();
    assert_eq!(c[0][0].to_f64_vec(), vec![0.0, 1.0]);
    assert_eq!(c[0][1].as_i64().unwrap(), &[16, 14]);
}

#[test]
fn statistic_names_like_nequip_rescale_options() {
    let fx = &fixture()["toluene_xtb_all"];
    let ds = load("toluene_xtb", &["H", "C"], false);
    let s = |n: &str| ds.dataset_statistic(n, None, 1, None).unwrap();
    close(s("dataset_forces_rms")[0], &fx["forces_rms"], "forces_rms");
    close(
        s("dataset_total_energy_std")[0],
        &fx["total_energy_mean_std"][1][0],
        "energy std",
    );
    close(
        s("dataset_per_atom_total_energy_mean")[0],
        &fx["per_atom_total_energy_mean_std"][0][0],
        "per-atom mean",
    );
    close_all(
        &s("dataset_per_species_total_energy_mean"),
        &fx["per_species_total_energy_mean_std"][0],
        "per-species mean",
    );
    close_all(
        &s("dataset_per_species_forces_rms"),
        &fx["per_species_forces_rms"],
        "per-species forces rms",
    );
    let err = ds
        .dataset_statistic("forces_rms", None, 1, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not a statistic name"), "{err}");
}

