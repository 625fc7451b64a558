//! `nequip data info` numbers on the shared datasets, against numpy (`statistics.json`, keys
//! `*_all`), from both the npz and the extxyz files.

use nequip_core::data::info::{data_info, NAtoms};
use nequip_core::data::{
    AseDataset, AseOptions, InMemoryDataset, NpzDataset, NpzOptions, TypeMapper,
};
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

fn close(got: f64, want: &Value, tol: f64, what: &str) {
    let want = want.as_f64().unwrap();
    assert!(
        (got - want).abs() <= tol * want.abs().max(1.0),
        "{what}: {got} vs {want}"
    );
}

fn both(stem: &str, symbols: &[&str], periodic: bool) -> [InMemoryDataset; 2] {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");
    let tm = TypeMapper::from_chemical_symbols(symbols).unwrap();
    let mut y = format!(
        "file_name: {}\nkey_mapping: {{R: pos, z: atomic_numbers, E: total_energy, F: forces}}\nnpz_fixed_field_keys: [atomic_numbers]\nAtomicData_options: {{r_max: 4.0}}\n",
        dir.join(format!("{stem}.npz")).display()
    );
    if periodic {
        y.push_str("include_keys: [cell, pbc]\n");
    }
    let npz: NpzOptions = serde_yaml::from_str(&y).unwrap();
    let ase: AseOptions = serde_yaml::from_str(&format!(
        "file_name: {}\nAtomicData_options: {{r_max: 4.0}}\n",
        dir.join(format!("{stem}.extxyz")).display()
    ))
    .unwrap();
    [
        NpzDataset::load(&npz, &tm, None).unwrap(),
        AseDataset::load(&ase, &tm, None).unwrap(),
    ]
}

fn check(stem: &str, symbols: &[&str], periodic: bool, n_atoms: usize, species: &[(&str, usize)]) {
    let fx = &fixture()[format!("{stem}_all")];
    for (k, ds) in both(stem, symbols, periodic).iter().enumerate() {
        // extxyz stores forces with 8 decimals: compare its forces RMS to 1e-8
        let ftol = if k == 0 { 1e-12 } else { 1e-8 };
        let info = data_info(ds, None).unwrap();
        assert_eq!(info.n_frames, 1000);
        assert_eq!(info.n_atoms, NAtoms::Fixed(n_atoms));
        assert_eq!(
            info.species,
            species.iter().map(|(s, c)| (s.to_string(), *c)).collect()
        );
        assert_eq!(info.species_counts, "per_frame");
        assert_eq!(info.r_max, 4.0);
        close(
            info.avg_num_neighbors,
            &fx["avg_num_neighbors"][0],
            1e-12,
            "avg_num_neighbors",
        );
        close(
            info.std_num_neighbors,
            &fx["avg_num_neighbors"][1],
            1e-12,
            "std_num_neighbors",
        );
        close(
            info.energy_mean.unwrap(),
            &fx["total_energy_mean_std"][0][0],
            1e-12,
            "energy_mean",
        );
        close(
            info.energy_std.unwrap(),
            &fx["total_energy_mean_std"][1][0],
            1e-12,
            "energy_std",
        );
        close(
            info.per_atom_energy_mean.unwrap(),
            &fx["per_atom_total_energy_mean_std"][0][0],
            1e-12,
            "per_atom_energy_mean",
        );
        close(
            info.per_atom_energy_std.unwrap(),
            &fx["per_atom_total_energy_mean_std"][1][0],
            1e-12,
            "per_atom_energy_std",
        );
        close(
            info.forces_rms.unwrap(),
            &fx["forces_rms"],
            ftol,
            "forces_rms",
        );
        let pse = info.per_species_energy.as_ref().unwrap();
        for (t, s) in ds.type_mapper.type_names.iter().enumerate() {
            close(
                pse[s],
                &fx["per_species_total_energy_mean_std"][0][t],
                1e-12,
                "per_species_energy",
            );
        }
        assert!(info.frames_without_edges.is_empty());
        let json = serde_json::to_value(&info).unwrap();
        for key in [
            "n_frames",
            "n_atoms",
            "species",
            "r_max",
            "avg_num_neighbors",
            "energy_mean",
            "energy_std",
            "per_atom_energy_mean",
            "per_atom_energy_std",
            "forces_rms",
            "per_species_energy",
        ] {
            assert!(json.get(key).is_some(), "json lacks {key}");
        }
        let text = info.to_string();
        assert!(text.contains("frames            1000"), "{text}");
    }
}

#[test]
fn toluene_info() {
    check("toluene_xtb", &["H", "C"], false, 15, &[("C", 7), ("H", 8)]);
}

#[test]
fn cu_info() {
    check("cu_emt", &["Cu"], true, 32, &[("Cu", 32)]);
    let [ds, _] = both("cu_emt", &["Cu"], true);
    let info = data_info(&ds, Some(&[0, 1, 2])).unwrap();
    assert_eq!(info.n_frames, 3);
    assert_eq!(info.cell.pbc["TTT"], 3);
    assert!(info.cell.volume_min.unwrap() > 360.0 && info.cell.volume_max.unwrap() < 390.0);
}

#[test]
fn mixed_compositions_varying_sizes_and_frames_without_edges() {
    use nequip_core::data::statistics::ridge_solver;
    let dir_guard = tempfile::Builder::new().prefix("nequip-rs-info-mixed-").tempdir().unwrap();
    let dir = dir_guard.path();
    let file = dir.join("mixed.extxyz");
    // frames of nH hydrogens and nO oxygens on a line 0.9 Å apart; energy = -1 nH - 5 nO + small
    let comps = [(2usize, 1usize), (1, 1), (3, 2), (2, 1), (4, 1), (0, 2)];
    let mut text = String::new();
    for (k, &(h, o)) in comps.iter().enumerate() {
        let e = -(h as f64) - 5.0 * o as f64 + 0.01 * k as f64;
        text += &format!("{}\nenergy={e} pbc=\"F F F\"\n", h + o);
        for a in 0..h + o {
            let x = if k == 5 {
                10.0 * a as f64
            } else {
                0.9 * a as f64
            };
            text += &format!("{} {x} 0 0\n", if a < h { "H" } else { "O" });
        }
    }
    // one frame whose atoms are far apart: allowed here, listed by data info
    text += "2\nenergy=-2.0\nH 0 0 0\nH 20 0 0\n";
    std::fs::write(&file, text).unwrap();
    let o: AseOptions = serde_yaml::from_str(&format!(
        "file_name: {}\nAtomicData_options: {{r_max: 1.5, error_on_no_edges: false}}\n",
        file.display()
    ))
    .unwrap();
    let tm = TypeMapper::from_chemical_symbols(&["O", "H"]).unwrap();
    let ds = AseDataset::load(&o, &tm, None).unwrap();
    let info = data_info(&ds, None).unwrap();
    assert_eq!(info.n_frames, 7);
    assert_eq!(info.n_atoms, NAtoms::PerFrame(vec![3, 2, 5, 3, 5, 2, 2]));
    assert_eq!(info.species_counts, "total");
    assert_eq!(
        info.species,
        [("H".to_string(), 14), ("O".to_string(), 8)]
            .into_iter()
            .collect()
    );
    assert_eq!(info.frames_without_edges, vec![5, 6]);
    assert!(info.forces_rms.is_none());
    // per-species energies: the solver on the species-count matrix (types H=0, O=1)
    let mut x: Vec<Vec<f64>> = comps
        .iter()
        .map(|&(h, o)| vec![h as f64, o as f64])
        .collect();
    x.push(vec![2.0, 0.0]);
    let y: Vec<f64> = ds
        .frames()
        .iter()
        .map(|f| f.get("total_energy").unwrap().as_f64().unwrap()[0])
        .collect();
    let (mu, _) = ridge_solver(&x, &y, 0.001).unwrap();
    let pse = info.per_species_energy.unwrap();
    assert_eq!((pse["H"], pse["O"]), (mu[0], mu[1]));
    assert!(mu[1] < mu[0], "{mu:?}");
}
