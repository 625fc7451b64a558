//! Bad input: every error names file, frame and field; no cache is left behind.

use nequip_core::data::{AseDataset, AseOptions, DataError, NpzDataset, NpzOptions, TypeMapper};
use std::io::Write;
use std::path::Path;

/// A fresh directory in the temp dir, removed (with everything in it) when dropped.
fn tmp(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("nequip-rs-err-{name}-")).tempdir().unwrap()
}

/// A `.npy` buffer with the given descr, shape and raw little-endian data.
fn npy(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape_s = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_s}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn f8(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn write_npz(path: &Path, members: &[(&str, Vec<u8>)]) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, bytes) in members {
        z.start_file(
            format!("{name}.npy"),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
}

/// 4 frames of 3 atoms (H, H, O) in a line, 1 Å apart.
fn good_members() -> Vec<(&'static str, Vec<u8>)> {
    let pos: Vec<f64> = (0..4)
        .flat_map(|_| [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 2.0, 0.0, 0.0])
        .collect();
    vec![
        ("R", npy("<f8", &[4, 3, 3], &f8(&pos))),
        (
            "z",
            npy(
                "<i8",
                &[3],
                &[1i64, 1, 8]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect::<Vec<_>>(),
            ),
        ),
        ("E", npy("<f8", &[4], &f8(&[-1.0, -2.0, -3.0, -4.0]))),
        ("F", npy("<f8", &[4, 3, 3], &f8(&[0.5; 36]))),
    ]
}

fn npz_opts(file: &Path, r_max: f64) -> NpzOptions {
    serde_yaml::from_str(&format!(
        "file_name: {}\nkey_mapping: {{R: pos, z: atomic_numbers, E: total_energy, F: forces}}\nnpz_fixed_field_keys: [atomic_numbers]\nAtomicData_options: {{r_max: {r_max}}}\n",
        file.display()
    ))
    .unwrap()
}

fn hho() -> TypeMapper {
    TypeMapper::from_chemical_symbols(&["H", "O"]).unwrap()
}

/// Loads with a cache root and checks that a failure leaves nothing behind.
fn npz_err(
    name: &str,
    members: Vec<(&'static str, Vec<u8>)>,
    r_max: f64,
    tm: &TypeMapper,
) -> (String, String) {
    let dir_dir = tmp(name);
    let dir = dir_dir.path();
    let file = dir.join("d.npz");
    write_npz(&file, &members);
    let root = dir.join("root");
    let err = NpzDataset::load(&npz_opts(&file, r_max), tm, Some(&root)).unwrap_err();
    assert!(
        !root.exists() || std::fs::read_dir(&root).unwrap().count() == 0,
        "{name}: cache left behind"
    );
    (err.to_string(), file.display().to_string())
}

fn replace(
    mut m: Vec<(&'static str, Vec<u8>)>,
    key: &'static str,
    bytes: Vec<u8>,
) -> Vec<(&'static str, Vec<u8>)> {
    m.retain(|(k, _)| *k != key);
    m.push((key, bytes));
    m
}

#[test]
fn good_npz_loads() {
    let dir_dir = tmp("good");
    let dir = dir_dir.path();
    let file = dir.join("d.npz");
    write_npz(&file, &good_members());
    let ds = NpzDataset::load(&npz_opts(&file, 1.5), &hho(), None).unwrap();
    assert_eq!(ds.len(), 4);
    assert_eq!(ds.get(0).unwrap().num_edges(), 4);
}

#[test]
fn missing_file() {
    let err = NpzDataset::load(
        &npz_opts(Path::new("/nonexistent/d.npz"), 2.0),
        &hho(),
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "/nonexistent/d.npz: cannot read file: No such file or directory (os error 2)"
    );
    let o: AseOptions =
        serde_yaml::from_str("file_name: /nonexistent/x.extxyz\nAtomicData_options: {r_max: 2.0}")
            .unwrap();
    let err = AseDataset::load(&o, &hho(), None).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }));
    assert!(err
        .to_string()
        .starts_with("/nonexistent/x.extxyz: cannot read file"));
}

#[test]
fn missing_and_misshaped_keys() {
    let m: Vec<_> = good_members()
        .into_iter()
        .filter(|(k, _)| *k != "R")
        .collect();
    let (err, file) = npz_err("missing", m, 2.0, &hho());
    assert_eq!(err, format!("{file}: missing key `R` (found: E, F, z)"));
    let (err, file) = npz_err(
        "shape",
        replace(good_members(), "R", npy("<f8", &[4, 9], &f8(&[0.0; 36]))),
        2.0,
        &hho(),
    );
    assert_eq!(
        err,
        format!("{file}: key `R` has shape [4, 9], expected [n_frames, n_atoms, 3]")
    );
    let (err, file) = npz_err(
        "forces-shape",
        replace(good_members(), "F", npy("<f8", &[4, 2, 3], &f8(&[0.0; 24]))),
        2.0,
        &hho(),
    );
    assert_eq!(
        err,
        format!(
            "{file}: frame 0: field `forces`: is a node field but has shape [2, 3] for 3 atoms"
        )
    );
}

#[test]
fn wrong_dtype_and_ragged_frames() {
    let (err, file) = npz_err(
        "dtype",
        replace(good_members(), "E", npy("<U1", &[4], &[0u8; 16])),
        2.0,
        &hho(),
    );
    assert_eq!(
        err,
        format!("{file}: key `E` has dtype <U1, expected a numeric or boolean array")
    );
    let (err, file) = npz_err(
        "object",
        replace(good_members(), "E", npy("|O", &[4], &[0u8; 8])),
        2.0,
        &hho(),
    );
    assert_eq!(err, format!("{file}: key `E` has dtype object (pickled Python objects, e.g. ragged frames), expected a numeric or boolean array"));
    let (err, file) = npz_err(
        "ragged",
        replace(good_members(), "E", npy("<f8", &[3], &f8(&[1.0, 2.0, 3.0]))),
        2.0,
        &hho(),
    );
    assert_eq!(
        err,
        format!("{file}: ragged frames: key `E` has 3 frames but key `R` has 4")
    );
    let (err, file) = npz_err(
        "float-z",
        replace(good_members(), "z", npy("<f8", &[3], &f8(&[1.0, 1.5, 8.0]))),
        2.0,
        &hho(),
    );
    assert_eq!(
        err,
        format!("{file}: key `z` has dtype non-integral float, expected integers")
    );
}

#[test]
fn nan_and_inf() {
    let mut pos: Vec<f64> = (0..4)
        .flat_map(|_| [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 2.0, 0.0, 0.0])
        .collect();
    pos[2 * 9 + 4] = f64::NAN;
    let (err, file) = npz_err(
        "nan-pos",
        replace(good_members(), "R", npy("<f8", &[4, 3, 3], &f8(&pos))),
        2.0,
        &hho(),
    );
    assert_eq!(
        err,
        format!("{file}: frame 2: field `pos`: non-finite value (NaN) at index 4")
    );
    let (err, file) = npz_err(
        "inf-e",
        replace(
            good_members(),
            "E",
            npy("<f8", &[4], &f8(&[1.0, 2.0, 3.0, f64::INFINITY])),
        ),
        2.0,
        &hho(),
    );
    assert_eq!(
        err,
        format!("{file}: frame 3: field `total_energy`: non-finite value (inf) at index 0")
    );
    let mut f = vec![0.5; 36];
    f[13] = f64::NEG_INFINITY;
    let (err, file) = npz_err(
        "inf-f",
        replace(good_members(), "F", npy("<f8", &[4, 3, 3], &f8(&f))),
        2.0,
        &hho(),
    );
    assert_eq!(
        err,
        format!("{file}: frame 1: field `forces`: non-finite value (-inf) at index 4")
    );
}

#[test]
fn unknown_species_and_bad_r_max() {
    let (err, file) = npz_err(
        "species",
        good_members(),
        2.0,
        &TypeMapper::from_chemical_symbols(&["H"]).unwrap(),
    );
    assert_eq!(err, format!("{file}: frame 0: field `atomic_numbers`: atom 2: unknown species O (Z=8) (the type mapping knows [\"H\"])"));
    let (err, _) = npz_err("rmax", good_members(), 0.0, &hho());
    assert_eq!(
        err,
        "invalid option `r_max`: must be a positive finite number, got 0"
    );
    let (err, _) = npz_err("rmax-neg", good_members(), -2.0, &hho());
    assert_eq!(
        err,
        "invalid option `r_max`: must be a positive finite number, got -2"
    );
    let (err, file) = npz_err("no-edges", good_members(), 0.5, &hho());
    assert!(err.starts_with(&format!("{file}: frame 0: field `edge_index`: every single atom has no neighbors within the cutoff r_max=0.5")), "{err}");
}

fn xyz_err(name: &str, text: &str, tm: &TypeMapper) -> (String, String) {
    let dir_dir = tmp(name);
    let dir = dir_dir.path();
    let file = dir.join("d.extxyz");
    std::fs::write(&file, text).unwrap();
    let o: AseOptions = serde_yaml::from_str(&format!(
        "file_name: {}\nAtomicData_options: {{r_max: 2.0}}",
        file.display()
    ))
    .unwrap();
    let root = dir.join("root");
    let err = AseDataset::load(&o, tm, Some(&root)).unwrap_err();
    assert!(
        !root.exists() || std::fs::read_dir(&root).unwrap().count() == 0,
        "{name}: cache left behind"
    );
    (err.to_string(), file.display().to_string())
}

const GOOD: &str = "2\nenergy=-1.0 pbc=\"F F F\"\nH 0 0 0\nO 0 0 1\n";

#[test]
fn extxyz_atom_count_and_unparsable_lines() {
    let (err, file) = xyz_err(
        "short",
        &format!("{GOOD}3\nenergy=-2\nH 0 0 0\nO 0 0 1\n"),
        &hho(),
    );
    assert_eq!(
        err,
        format!("{file}: line 9: frame 1: frame has 2 atoms, expected 3 (end of file)")
    );
    let (err, file) = xyz_err("long", "1\nenergy=-2\nH 0 0 0\nO 0 0 1\n", &hho());
    assert_eq!(
        err,
        format!("{file}: line 4: frame 1: expected the number of atoms, got `O 0 0 1`")
    );
    let (err, file) = xyz_err(
        "nan-text",
        &format!("{GOOD}2\nenergy=-2\nH 0 0 abc\nO 0 0 1\n"),
        &hho(),
    );
    assert_eq!(
        err,
        format!(
            "{file}: line 7: frame 1: atom 0: column 4 (`pos`): cannot parse `abc` as a number"
        )
    );
    let (err, file) = xyz_err(
        "columns",
        "2\nProperties=species:S:1:pos:R:3:forces:R:3\nH 0 0 0 1 1 1\nO 0 0 1 1 1\n",
        &hho(),
    );
    assert_eq!(
        err,
        format!("{file}: line 4: frame 0: atom 1: 6 columns, Properties need 7")
    );
    let (err, file) = xyz_err("quote", "2\nenergy=\"-1\nH 0 0 0\nO 0 0 1\n", &hho());
    assert_eq!(
        err,
        format!("{file}: line 2: frame 0: unterminated value: missing closing `\"`")
    );
    let (err, file) = xyz_err(
        "lattice",
        "2\nLattice=\"1 0 0\"\nH 0 0 0\nO 0 0 1\n",
        &hho(),
    );
    assert_eq!(
        err,
        format!("{file}: line 2: frame 0: `Lattice` must be 9 numbers (a 3×3 matrix), got `1 0 0`")
    );
    let (err, file) = xyz_err("count", "two\n\nH 0 0 0\n", &hho());
    assert_eq!(
        err,
        format!("{file}: line 1: frame 0: expected the number of atoms, got `two`")
    );
}

#[test]
fn extxyz_bad_values() {
    let (err, file) = xyz_err(
        "zero-cell",
        "2\nLattice=\"0 0 0 0 5 0 0 0 5\"\nH 0 0 0\nO 0 0 1\n",
        &hho(),
    );
    assert_eq!(err, format!("{file}: frame 0: field `cell`: zero-volume cell (lattice vector 0 is zero) with pbc [true, true, true]"));
    let (err, file) = xyz_err(
        "flat-cell",
        "2\nLattice=\"5 0 0 0 5 0 5 5 0\" pbc=\"T T T\"\nH 0 0 0\nO 0 0 1\n",
        &hho(),
    );
    assert!(
        err.starts_with(&format!(
            "{file}: frame 0: field `cell`: zero-volume cell (volume"
        )),
        "{err}"
    );
    let (err, file) = xyz_err(
        "symbol",
        &format!("{GOOD}2\nenergy=-2\nH 0 0 0\nXx 0 0 1\n"),
        &hho(),
    );
    assert_eq!(err, format!("{file}: frame 1: field `atomic_numbers`: atom 1: unknown species `Xx` (the type mapping knows the periodic table)"));
    let (err, file) = xyz_err(
        "unmapped",
        GOOD,
        &TypeMapper::from_chemical_symbols(&["H"]).unwrap(),
    );
    assert_eq!(err, format!("{file}: frame 0: field `atomic_numbers`: atom 1: unknown species O (Z=8) (the type mapping knows [\"H\"])"));
    let (err, file) = xyz_err("nan-energy", "2\nenergy=nan\nH 0 0 0\nO 0 0 1\n", &hho());
    assert_eq!(
        err,
        format!("{file}: frame 0: field `total_energy`: non-finite value (NaN) at index 0")
    );
    let (err, file) = xyz_err(
        "stress",
        "2\nstress=\"1 2 3 4\"\nH 0 0 0\nO 0 0 1\n",
        &hho(),
    );
    assert_eq!(
        err,
        format!(
            "{file}: line 2: frame 0: `stress` must be 9 numbers (a 3×3 matrix), got `1 2 3 4`"
        )
    );
}

#[test]
fn cell_without_pbc_and_bad_include_frames() {
    let cell: Vec<f64> = (0..4)
        .flat_map(|_| [5.0, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 5.0])
        .collect();
    let mut m = good_members();
    m.push(("cell", npy("<f8", &[4, 3, 3], &f8(&cell))));
    let dir_dir = tmp("cell-no-pbc");
    let dir = dir_dir.path();
    let file = dir.join("d.npz");
    write_npz(&file, &m);
    let mut o = npz_opts(&file, 2.0);
    o.include_keys = vec!["cell".into()];
    let err = NpzDataset::load(&o, &hho(), None).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("{}: frame 0: field `pbc`: a cell was provided, but pbc weren't; please provide pbc explicitly", file.display())
    );
    o.include_keys = vec![];
    o.include_frames = Some(vec![0, 4]);
    let err = NpzDataset::load(&o, &hho(), None).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "invalid option `include_frames`: frame 4 is out of range: {} has 4 frames",
            file.display()
        )
    );
}
