//! Extended XYZ parser: ASE's key=value conventions, and fuzz-style robustness (random
//! mutations of a real file must give `Ok` or a `DataError::Parse`/frame error, never a panic).

use nequip_core::data::ase_dataset::frame_from_xyz;
use nequip_core::data::extxyz::{parse_extxyz, parse_value, split_key_values, InfoValue};
use nequip_core::data::AtomicDataOptions;
use std::collections::BTreeMap;

#[test]
fn key_values_like_ase() {
    let kv =
        split_key_values(r#"a=1 b="x y" c={1 2 3} d=[T F] flag e='q\'r' f = 2.5 g=1,2"#).unwrap();
    let m: BTreeMap<_, _> = kv.into_iter().collect();
    assert_eq!(m["a"], "1");
    assert_eq!(m["b"], "x y");
    assert_eq!(m["c"], "1 2 3");
    assert_eq!(m["d"], "T F");
    assert_eq!(m["flag"], "T");
    assert_eq!(m["e"], "q'r");
    assert_eq!(m["f"], "2.5");
    assert_eq!(parse_value("a", "1").unwrap(), InfoValue::Int(1));
    assert_eq!(
        parse_value("g", "1,2").unwrap(),
        InfoValue::Ints(vec![1, 2])
    );
    assert_eq!(
        parse_value("c", "1 2.5 3").unwrap(),
        InfoValue::Floats(vec![1.0, 2.5, 3.0])
    );
    assert_eq!(
        parse_value("d", "T F").unwrap(),
        InfoValue::Bools(vec![true, false])
    );
    assert_eq!(
        parse_value("s", "hello world").unwrap(),
        InfoValue::Str("hello world".into())
    );
    // 9-number virial in Fortran order (as ASE): element [0][1] is the 4th number
    let InfoValue::Matrix(m) = parse_value("virial", "1 2 3 4 5 6 7 8 9").unwrap() else {
        panic!()
    };
    assert_eq!(m, [1.0, 4.0, 7.0, 2.0, 5.0, 8.0, 3.0, 6.0, 9.0]);
}

#[test]
fn frames_cells_and_columns() {
    let text = "3\nLattice=\"5 0 0 1 5 0 0 0 6\" Properties=species:S:1:pos:R:3:Z:I:1:charge:R:1:fix:L:1 pbc=\"T F T\" uid=007\nh 0 0 0 1 0.1 T\nHE 1 1 1 2 0.2 F\nO 2 2 2 8 -0.3 T\n\n\n";
    let frames = parse_extxyz(text, "t.extxyz").unwrap();
    assert_eq!(frames.len(), 1);
    let f = &frames[0];
    assert_eq!(f.cell, [[5.0, 0.0, 0.0], [1.0, 5.0, 0.0], [0.0, 0.0, 6.0]]);
    assert_eq!(f.pbc, [true, false, true]);
    assert_eq!(f.symbols.as_ref().unwrap(), &["H", "He", "O"]);
    assert_eq!(f.numbers.as_ref().unwrap(), &[1, 2, 8]);
    assert_eq!(f.arrays["charges"].as_f64().unwrap(), &[0.1, 0.2, -0.3]);
    assert_eq!(f.arrays["fix"].as_bool().unwrap(), &[true, false, true]);
    assert_eq!(f.info["uid"], InfoValue::Str("007".into()));
    // plain xyz: no Lattice -> no pbc, default Properties
    let f = &parse_extxyz("1\ncomment\nC 1 2 3\n", "p.xyz").unwrap()[0];
    assert_eq!(f.pbc, [false; 3]);
    assert_eq!(f.positions, vec![1.0, 2.0, 3.0]);
}

/// A tiny deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn random_mutations_never_panic() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/cu_emt.extxyz");
    let full = std::fs::read_to_string(path).unwrap();
    let base: String = full
        .lines()
        .take(2 * 34)
        .map(|l| format!("{l}\n"))
        .collect();
    let opts = AtomicDataOptions {
        r_max: 4.0,
        self_interaction: false,
        strict_self_interaction: true,
        error_on_no_edges: false,
    };
    let pieces = [
        "\"", "{", "}", "=", " ", "\n", "nan", "-", "1e999", "T", ":R:", "Lattice=", "pbc=", "\\",
        "é", "0", "32", ":S:0",
    ];
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let (mut ok, mut err) = (0, 0);
    for _ in 0..1500 {
        let mut s: Vec<char> = base.chars().collect();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(s.len());
            match rng.below(4) {
                0 => {
                    s.remove(at);
                }
                1 => s
                    .splice(at..at, pieces[rng.below(pieces.len())].chars())
                    .for_each(drop),
                2 => s.truncate(at),
                _ => {
                    let (b, last) = (rng.below(s.len()), s.len() - 1);
                    s.swap(at.min(last), b.min(last));
                }
            }
            if s.is_empty() {
                break;
            }
        }
        let text: String = s.into_iter().collect();
        match parse_extxyz(&text, "fuzz.extxyz") {
            Ok(frames) => {
                for f in &frames {
                    let _ = frame_from_xyz(f, &BTreeMap::new(), &[], &opts);
                }
                ok += 1;
            }
            Err(e) => {
                assert!(e.to_string().starts_with("fuzz.extxyz: line "), "{e}");
                err += 1;
            }
        }
    }
    assert!(ok > 50 && err > 50, "ok {ok}, err {err}");
}

#[test]
fn write_then_read_is_lossless() {
    use nequip_core::data::extxyz_write::{frame_to_xyz, write_extxyz};
    use nequip_core::data::{AseDataset, AseOptions, NpzDataset, NpzOptions, TypeMapper};
    let dir_guard = tempfile::Builder::new().prefix("nequip-rs-xyzw-").tempdir().unwrap();
    let dir = dir_guard.path();
    // parse -> write -> parse gives the same frames
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/cu_emt.extxyz");
    let text: String = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .take(3 * 34)
        .map(|l| format!("{l}\n"))
        .collect();
    let mut frames = parse_extxyz(&text, "a").unwrap();
    frames[1]
        .info
        .insert("note".into(), InfoValue::Str("a \"quoted\" word".into()));
    frames[1]
        .info
        .insert("tiny".into(), InfoValue::Float(1e-300));
    let out = dir.join("out.extxyz");
    write_extxyz(&out, &frames).unwrap();
    let mut back = parse_extxyz(&std::fs::read_to_string(&out).unwrap(), "b").unwrap();
    for (a, b) in frames.iter_mut().zip(back.iter_mut()) {
        a.line = 0;
        b.line = 0;
    }
    assert_eq!(frames, back);
    // processed frames (full-precision npz) -> extxyz -> ase dataset: same numbers
    let tm = TypeMapper::from_chemical_symbols(&["Cu"]).unwrap();
    let o: NpzOptions = serde_yaml::from_str(&format!(
        "file_name: {}/../data/cu_emt.npz\nkey_mapping: {{R: pos, z: atomic_numbers, E: total_energy, F: forces}}\nnpz_fixed_field_keys: [atomic_numbers]\ninclude_keys: [cell, pbc, stress]\ninclude_frames: [0, 9]\nAtomicData_options: {{r_max: 4.0}}\n",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let ds = NpzDataset::load(&o, &tm, None).unwrap();
    let xyz: Vec<_> = ds
        .frames()
        .iter()
        .map(|f| frame_to_xyz(f, Some(&tm), &[]))
        .collect();
    let out2 = dir.join("out2.extxyz");
    write_extxyz(&out2, &xyz).unwrap();
    let a: AseOptions = serde_yaml::from_str(&format!(
        "file_name: {}\nAtomicData_options: {{r_max: 4.0}}\n",
        out2.display()
    ))
    .unwrap();
    let ds2 = AseDataset::load(&a, &tm, None).unwrap();
    assert_eq!(ds.frames(), ds2.frames());
}
