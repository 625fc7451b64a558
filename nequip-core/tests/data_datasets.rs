//! The shared datasets through the npz and ase (extxyz) datasets: same frames either way, edge
//! sets equal to ASE's on every frame, key mapping, include_frames, TypeMapper and the cache.

use nequip_core::data::{
    AseDataset, AseOptions, AtomicDataOptions, InMemoryDataset, NpzDataset, NpzOptions, TypeMapper,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(name)
}

/// A fresh directory in the temp dir, removed (with everything in it) when dropped.
fn tmp(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("nequip-rs-{name}-")).tempdir().unwrap()
}

fn npz_opts(name: &str, r_max: f64, periodic: bool) -> NpzOptions {
    let mut yaml = format!(
        "file_name: {}\nkey_mapping: {{R: pos, z: atomic_numbers, E: total_energy, F: forces}}\nnpz_fixed_field_keys: [atomic_numbers]\nAtomicData_options: {{r_max: {r_max}}}\n",
        data(name).display()
    );
    if periodic {
        yaml.push_str("include_keys: [cell, pbc, stress]\n");
    }
    serde_yaml::from_str(&yaml).unwrap()
}

fn ase_opts(name: &str, r_max: f64) -> AseOptions {
    serde_yaml::from_str(&format!(
        "file_name: {}\nAtomicData_options: {{r_max: {r_max}}}\n",
        data(name).display()
    ))
    .unwrap()
}

fn load_both(stem: &str, symbols: &[&str], periodic: bool) -> (InMemoryDataset, InMemoryDataset) {
    let tm = TypeMapper::from_chemical_symbols(symbols).unwrap();
    let t = std::time::Instant::now();
    let a = NpzDataset::load(&npz_opts(&format!("{stem}.npz"), 4.0, periodic), &tm, None).unwrap();
    let t_npz = t.elapsed();
    let t = std::time::Instant::now();
    let b = AseDataset::load(&ase_opts(&format!("{stem}.extxyz"), 4.0), &tm, None).unwrap();
    eprintln!(
        "{stem}: npz {:?}, extxyz {:?} (load + neighbor lists)",
        t_npz,
        t.elapsed()
    );
    (a, b)
}

/// pos and forces are written with 8 decimals in the extxyz files: equal to 5e-9; everything else
/// (types, edges, shifts, cell, pbc, energies, stress) bit for bit.
fn assert_same(a: &InMemoryDataset, b: &InMemoryDataset) {
    assert_eq!(a.len(), b.len());
    for (fa, fb) in a.frames().iter().zip(b.frames()) {
        let ka: Vec<_> = fa.fields().keys().collect();
        let kb: Vec<_> = fb.fields().keys().collect();
        assert_eq!(ka, kb);
        for (k, va) in fa.fields() {
            let vb = fb.get(k).unwrap();
            assert_eq!(va.shape, vb.shape, "{k}");
            if k == "pos" || k == "forces" {
                let (x, y) = (va.as_f64().unwrap(), vb.as_f64().unwrap());
                let d = x
                    .iter()
                    .zip(y)
                    .map(|(p, q)| (p - q).abs())
                    .fold(0.0, f64::max);
                assert!(d <= 5.0000001e-9, "{k} differs by {d}");
            } else {
                assert_eq!(va, vb, "{k}");
            }
        }
    }
}

#[test]
fn toluene_npz_and_extxyz_give_the_same_frames() {
    let (a, b) = load_both("toluene_xtb", &["C", "H"], false);
    assert_eq!(a.len(), 1000);
    let f = a.get(0).unwrap();
    assert_eq!(f.num_nodes(), 15);
    // H < C by atomic number: H = 0, C = 1
    assert_eq!(a.type_mapper.type_names, vec!["H", "C"]);
    assert_eq!(
        f.get("atom_types").unwrap().as_i64().unwrap()[..8],
        [1, 1, 1, 1, 1, 1, 1, 0]
    );
    assert_eq!(f.get("atom_types").unwrap().shape, vec![15, 1]);
    assert_eq!(
        f.get("total_energy").unwrap().as_f64().unwrap(),
        &[-517.6132287726878]
    );
    assert_eq!(f.get("pbc").unwrap().as_bool().unwrap(), &[false; 3]);
    assert!(!f.contains("atomic_numbers"));
    assert_same(&a, &b);
}

#[test]
fn cu_npz_and_extxyz_give_the_same_frames() {
    let (a, b) = load_both("cu_emt", &["Cu"], true);
    let f = a.get(0).unwrap();
    assert_eq!(f.get("stress").unwrap().shape, vec![3, 3]);
    assert_eq!(
        f.get("stress").unwrap().as_f64().unwrap()[1],
        -0.017067130380688415
    );
    assert_eq!(
        f.get("cell").unwrap().as_f64().unwrap()[4],
        7.199270007157282
    );
    assert_eq!(f.get("pbc").unwrap().as_bool().unwrap(), &[true; 3]);
    // 2x2x2 fcc Cu at r_max 4: 18 neighbours per atom on average
    let ann = a.frames().iter().map(|f| f.num_edges()).sum::<usize>() as f64 / (32.0 * 1000.0);
    assert!((ann - 18.0).abs() < 0.5, "{ann}");
    assert_same(&a, &b);
}

#[derive(Deserialize)]
struct Summary {
    counts: Vec<usize>,
    checksums: Vec<String>,
}

fn checksum(d: &nequip_core::data::AtomicData) -> u64 {
    let (c, n) = d.edge_index();
    let s = d.get("edge_cell_shift").unwrap().as_f64().unwrap();
    let mut h: u64 = 0;
    for e in 0..c.len() {
        let t = |k: usize| (s[3 * e + k] as i64 + 64) as u64;
        let x = (c[e] as u64 * 7919)
            .wrapping_add(n[e] as u64 * 104729)
            .wrapping_add(t(0) * 1299709)
            .wrapping_add(t(1) * 15485863)
            .wrapping_add(t(2) * 179424673)
            .wrapping_add(1);
        h = h.wrapping_add(x.wrapping_mul(x).wrapping_mul(x));
    }
    h
}

#[test]
fn edge_sets_equal_ase_on_every_frame_of_the_shared_datasets() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/data/neighbors_datasets.json"
    ))
    .unwrap();
    let all: BTreeMap<String, Summary> = serde_json::from_str(&text).unwrap();
    for (stem, symbols, periodic) in [("toluene_xtb", "H", false), ("cu_emt", "Cu", true)] {
        for r_max in [4.0, 5.0] {
            let tm = TypeMapper::from_chemical_symbols(&[symbols, "C"]).unwrap();
            let ds = NpzDataset::load(
                &npz_opts(&format!("{stem}.npz"), r_max, periodic),
                &tm,
                None,
            )
            .unwrap();
            let want = &all[&format!("{stem}_r{r_max}")];
            for (i, f) in ds.frames().iter().enumerate() {
                assert_eq!(
                    f.num_edges(),
                    want.counts[i],
                    "{stem} r_max {r_max} frame {i}"
                );
                assert_eq!(
                    checksum(f).to_string(),
                    want.checksums[i],
                    "{stem} r_max {r_max} frame {i}"
                );
            }
        }
    }
}

#[test]
fn extxyz_key_mapping_ref_keys_voigt_stress_and_include_frames() {
    let dir_dir = tmp("refkeys");
    let dir = dir_dir.path();
    let file = dir.join("ref.extxyz");
    let frame = |e: f64, stress: &str| {
        format!(
            "2\nLattice=\"4 0 0 0 4 0 0 0 4\" Properties=species:S:1:pos:R:3:REF_forces:R:3:tag:I:1 REF_energy={e} REF_stress=\"{stress}\" energy={e}9 note=\"a b\" pbc=\"T T F\"\nH 0 0 0 0.1 0.2 0.3 7\nO 0 0 1 -0.1 -0.2 -0.3 8\n"
        )
    };
    std::fs::write(
        &file,
        frame(-1.5, "1 2 3 4 5 6") + &frame(-2.5, "1 6 5 6 2 4 5 4 3"),
    )
    .unwrap();
    let opts: AseOptions = serde_yaml::from_str(&format!(
        "file_name: {}\nkey_mapping: {{REF_energy: total_energy, REF_forces: forces, REF_stress: stress}}\ninclude_keys: [tag]\ninclude_frames: [1, 0]\nAtomicData_options: {{r_max: 2.5}}\n",
        file.display()
    ))
    .unwrap();
    let tm = TypeMapper::from_chemical_symbols(&["O", "H"]).unwrap();
    let ds = AseDataset::load(&opts, &tm, None).unwrap();
    assert_eq!(ds.frame_ids, vec![1, 0]);
    let (f1, f0) = (ds.get(0).unwrap(), ds.get(1).unwrap());
    // `energy` (a calculator result in ASE) wins over REF_energy (info), as in nequip
    assert_eq!(f1.get("total_energy").unwrap().as_f64().unwrap(), &[-2.59]);
    assert_eq!(f0.get("total_energy").unwrap().as_f64().unwrap(), &[-1.59]);
    let mut o2 = opts.clone();
    o2.key_mapping = Some(
        [("REF_energy".to_string(), "ref_e".to_string())]
            .into_iter()
            .collect(),
    );
    let f = AseDataset::load(&o2, &tm, None).unwrap();
    assert_eq!(
        f.get(0).unwrap().get("ref_e").unwrap().as_f64().unwrap(),
        &[-2.5]
    );
    // Voigt (xx yy zz yz xz xy) and 3x3 give the same matrix
    let want = [1.0, 6.0, 5.0, 6.0, 2.0, 4.0, 5.0, 4.0, 3.0];
    assert_eq!(f0.get("stress").unwrap().as_f64().unwrap(), &want);
    assert_eq!(f1.get("stress").unwrap().as_f64().unwrap(), &want);
    assert_eq!(
        f0.get("forces").unwrap().as_f64().unwrap(),
        &[0.1, 0.2, 0.3, -0.1, -0.2, -0.3]
    );
    assert_eq!(
        f0.get("tag")
            .unwrap_or_else(|| panic!("{:?}", f0.fields().keys()))
            .as_i64()
            .unwrap(),
        &[7, 8]
    );
    assert_eq!(f0.get("atom_types").unwrap().as_i64().unwrap(), &[0, 1]);
    assert_eq!(
        f0.get("pbc").unwrap().as_bool().unwrap(),
        &[true, true, false]
    );
    assert!(!f0.contains("note"));
    // periodic in x, y with a 4 Å cell and r_max 2.5: H-O at 1 Å plus nothing else
    assert_eq!(f0.num_edges(), 2);
}

#[test]
fn type_mapper_follows_nequip() {
    let tm = TypeMapper::from_chemical_symbols(&["O", "H", "C"]).unwrap();
    assert_eq!(tm.type_names, vec!["H", "C", "O"]);
    assert_eq!(tm.transform(&[8, 1, 6]).unwrap(), vec![2, 0, 1]);
    assert_eq!(tm.untransform(&[2, 0]).unwrap(), vec![8, 1]);
    let err = tm.transform(&[1, 29]).unwrap_err().to_string();
    assert_eq!(err, "field `atomic_numbers`: atom 1: unknown species Cu (Z=29) (the type mapping knows [\"H\", \"C\", \"O\"])");
    let o: nequip_core::data::TypeMapperOptions =
        serde_yaml::from_str("chemical_symbol_to_type: {H: 1, C: 0}").unwrap();
    assert_eq!(TypeMapper::new(&o).unwrap().type_names, vec!["C", "H"]);
    let o: nequip_core::data::TypeMapperOptions =
        serde_yaml::from_str("chemical_symbol_to_type: {H: 1, C: 2}").unwrap();
    assert!(TypeMapper::new(&o)
        .unwrap_err()
        .to_string()
        .starts_with("invalid option `chemical_symbol_to_type`: types must be exactly 0..2"));
    let o: nequip_core::data::TypeMapperOptions =
        serde_yaml::from_str("chemical_symbols: [H, Xx]").unwrap();
    assert_eq!(
        TypeMapper::new(&o).unwrap_err().to_string(),
        "invalid option `chemical_symbols`: invalid chemical symbol `Xx`"
    );
    assert!(TypeMapper::new(&Default::default())
        .unwrap_err()
        .to_string()
        .contains("exactly one is required"));
}

#[test]
fn processed_cache_is_reused_invalidated_and_rebuilt_when_corrupt() {
    let root_dir = tmp("cache");
    let root = root_dir.path();
    let tm = TypeMapper::from_chemical_symbols(&["Cu"]).unwrap();
    let mut o = npz_opts("cu_emt.npz", 4.0, true);
    o.include_frames = Some((0..50).collect());
    let first = NpzDataset::load(&o, &tm, Some(&root)).unwrap();
    let dirs = |root: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    };
    let d = dirs(&root);
    assert_eq!(d.len(), 1);
    assert!(d[0]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("processed_dataset_"));
    assert!(d[0].join("data.bin").exists() && d[0].join("params.json").exists());
    // only data.bin and params.json (no temporary files)
    assert_eq!(std::fs::read_dir(&d[0]).unwrap().count(), 2);
    let second = NpzDataset::load(&o, &tm, Some(&root)).unwrap();
    assert_eq!(first.frames(), second.frames());
    // corrupt: flip a byte; rebuilt with a warning, same data
    let bin = d[0].join("data.bin");
    let mut bytes = std::fs::read(&bin).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&bin, &bytes).unwrap();
    let third = NpzDataset::load(&o, &tm, Some(&root)).unwrap();
    assert_eq!(first.frames(), third.frames());
    assert_ne!(std::fs::read(&bin).unwrap(), bytes, "cache rewritten");
    // truncated file: same
    std::fs::write(&bin, &bytes[..100]).unwrap();
    assert_eq!(
        NpzDataset::load(&o, &tm, Some(&root)).unwrap().frames(),
        first.frames()
    );
    // a changed parameter gets its own directory
    o.atomic_data_options.r_max = 3.0;
    let other = NpzDataset::load(&o, &tm, Some(&root)).unwrap();
    assert_eq!(dirs(&root).len(), 2);
    assert!(other.get(0).unwrap().num_edges() < first.get(0).unwrap().num_edges());
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn to_dict_gives_float64_and_int64_tensors() {
    let tm = TypeMapper::from_chemical_symbols(&["Cu"]).unwrap();
    let mut o = npz_opts("cu_emt.npz", 4.0, true);
    o.include_frames = Some(vec![3]);
    let ds = NpzDataset::load(&o, &tm, None).unwrap();
    let d = ds.get(0).unwrap().to_dict();
    assert_eq!(d["pos"].size(), vec![32, 3]);
    assert_eq!(d["pos"].kind(), tch::Kind::Double);
    assert_eq!(d["edge_index"].kind(), tch::Kind::Int64);
    assert_eq!(d["atom_types"].size(), vec![32, 1]);
    assert_eq!(d["total_energy"].size(), vec![1]);
    assert_eq!(d["pbc"].kind(), tch::Kind::Bool);
    let back = nequip_core::data::AtomicData::from_dict(&d).unwrap();
    assert_eq!(&back, ds.get(0).unwrap());
    let _ = AtomicDataOptions::new(1.0);
}

#[test]
fn cache_is_rebuilt_when_the_raw_file_changes() {
    let root_dir = tmp("rawchange");
    let root = root_dir.path();
    let file = root.join("t.extxyz");
    let frame = |e: f64| format!("2\nenergy={e} pbc=\"F F F\"\nH 0 0 0\nH 0 0 0.9\n");
    std::fs::write(&file, frame(-1.0)).unwrap();
    let o: AseOptions = serde_yaml::from_str(&format!(
        "file_name: {}\nAtomicData_options: {{r_max: 2.0}}\n",
        file.display()
    ))
    .unwrap();
    let tm = TypeMapper::from_chemical_symbols(&["H"]).unwrap();
    let e = |ds: &InMemoryDataset| {
        ds.get(0)
            .unwrap()
            .get("total_energy")
            .unwrap()
            .as_f64()
            .unwrap()[0]
    };
    assert_eq!(e(&AseDataset::load(&o, &tm, Some(&root)).unwrap()), -1.0);
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&file, frame(-2.0)).unwrap();
    assert_eq!(
        e(&AseDataset::load(&o, &tm, Some(&root)).unwrap()),
        -2.0,
        "stale cache used"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn progress_is_reported_while_processing() {
    let calls = std::cell::RefCell::new(Vec::new());
    let cb = |done: usize, total: usize| calls.borrow_mut().push((done, total));
    let mut o = ase_opts("toluene_xtb.extxyz", 4.0);
    o.include_frames = Some(vec![3, 4, 5]);
    let tm = TypeMapper::from_chemical_symbols(&["H", "C"]).unwrap();
    AseDataset::load_with_progress(&o, &tm, None, Some(&cb)).unwrap();
    assert_eq!(*calls.borrow(), vec![(0, 3), (1, 3), (2, 3), (3, 3)]);
    calls.borrow_mut().clear();
    let mut n = npz_opts("toluene_xtb.npz", 4.0, false);
    n.include_frames = Some(vec![0, 1]);
    NpzDataset::load_with_progress(&n, &tm, None, Some(&cb)).unwrap();
    assert_eq!(calls.borrow().last(), Some(&(2, 2)));
}

#[test]
fn npz_options_guessed_from_common_key_names() {
    use nequip_core::data::npz::guess_npz_options;
    let tm = TypeMapper::from_chemical_symbols(&["Cu"]).unwrap();
    let mut g = guess_npz_options(&data("cu_emt.npz"), 4.0).unwrap();
    assert_eq!(g.key_mapping["R"], "pos");
    assert_eq!(g.key_mapping["stress"], "stress");
    assert_eq!(g.npz_fixed_field_keys, vec!["atomic_numbers"]);
    g.include_frames = Some(vec![0, 7]);
    let mut explicit = npz_opts("cu_emt.npz", 4.0, true);
    explicit.include_keys.push("virial".into());
    explicit.include_frames = Some(vec![0, 7]);
    let a = NpzDataset::load(&g, &tm, None).unwrap();
    let b = NpzDataset::load(&explicit, &tm, None).unwrap();
    assert_eq!(a.frames(), b.frames());
    let err = guess_npz_options(&data("toluene_xtb.extxyz"), 4.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a valid npz"), "{err}");
}
