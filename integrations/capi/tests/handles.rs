//! The C ABI called from Rust as a C program would: one handle shared by several threads gives
//! the single-threaded numbers; NULL and out-of-range arguments give the documented codes with a
//! message; outputs left NULL are not computed.

use std::ffi::{CStr, CString};
use std::path::Path;

use nequip_capi::*;
use nequip_core::config::Config;
use nequip_core::train::{trainer_from_config, SetupOptions, Silent};

fn train(root: &Path) -> CString {
    nequip_plugins::link();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/cu_emt.extxyz");
    let text = format!(
        "root: {}\nrun_name: run\nseed: 1\ndevice: cpu\nmodel_dtype: float64\ndefault_dtype: float64\nmodel_builders: [SimpleIrrepsConfig, EnergyModel, PerSpeciesRescale, StressForceOutput, RescaleEnergyEtc]\nr_max: 3.5\nnum_basis: 4\nl_max: 1\nparity: true\nnum_features: 4\nnum_layers: 2\ndataset: ase\ndataset_file_name: {}\ndataset_include_frames: [0, 1, 2, 3, 4, 5]\nchemical_symbols: [Cu]\nn_train: 4\nn_val: 2\nbatch_size: 2\nmax_epochs: 1\nloss_coeffs: {{forces: 1.0, stress: 1.0}}\n",
        root.display(),
        data.display()
    );
    let mut t = trainer_from_config(Config::from_yaml_str(&text, "t.yaml").unwrap(), &SetupOptions::default()).unwrap();
    t.train(&mut Silent).unwrap();
    CString::new(root.join("run/best_model.safetensors").to_str().unwrap()).unwrap()
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(nqrs_last_error()) }.to_string_lossy().into_owned()
}

/// A perturbed fcc Cu 2x2x2 cell (32 atoms, a = 3.61).
fn structure(seed: usize) -> (Vec<f64>, [f64; 9]) {
    let a = 3.61;
    let basis = [[0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]];
    let mut pos = Vec::new();
    let mut k = seed;
    for x in 0..2 {
        for y in 0..2 {
            for z in 0..2 {
                for b in basis {
                    for (d, off) in [x, y, z].into_iter().enumerate() {
                        k = (k * 1103515245 + 12345) % 2147483648;
                        pos.push(a * (off as f64 + b[d]) + 0.1 * (k as f64 / 2147483648.0 - 0.5));
                    }
                }
            }
        }
    }
    (pos, [2.0 * a, 0.0, 0.0, 0.0, 2.0 * a, 0.0, 0.0, 0.0, 2.0 * a])
}

fn compute(m: *mut nqrs_model, seed: usize) -> (f64, Vec<f64>, Vec<f64>) {
    let (pos, cell) = structure(seed);
    let types = vec![0i32; 32];
    let (mut e, mut f, mut v) = (0.0, vec![0.0; 96], vec![0.0; 9]);
    let rc = unsafe { nqrs_compute(m, 32, pos.as_ptr(), types.as_ptr(), cell.as_ptr(), std::ptr::null(), &mut e, f.as_mut_ptr(), v.as_mut_ptr(), std::ptr::null_mut()) };
    assert_eq!(rc, NQRS_OK, "{}", last_error());
    (e, f, v)
}

struct Shared(*mut nqrs_model);
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

#[test]
fn one_handle_many_threads() {
    let dir = tempfile::tempdir().unwrap();
    let path = train(dir.path());
    let mut m: *mut nqrs_model = std::ptr::null_mut();
    assert_eq!(unsafe { nqrs_model_load(path.as_ptr(), std::ptr::null(), &mut m) }, NQRS_OK, "{}", last_error());
    let expected: Vec<_> = (0..8).map(|s| compute(m, s)).collect();
    let shared = Shared(m);
    std::thread::scope(|sc| {
        for t in 0..4 {
            let (shared, expected) = (&shared, &expected);
            sc.spawn(move || {
                for round in 0..3 {
                    let s = (t + round) % 8;
                    assert_eq!(compute(shared.0, s), expected[s], "thread {t}, structure {s}");
                }
            });
        }
    });
    unsafe { nqrs_model_free(m) };
}

#[test]
fn arguments_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = train(dir.path());
    let mut m: *mut nqrs_model = std::ptr::null_mut();
    assert_eq!(unsafe { nqrs_model_load(path.as_ptr(), std::ptr::null(), &mut m) }, NQRS_OK, "{}", last_error());
    let (pos, cell) = structure(0);
    let types = vec![0i32; 32];
    let mut e = 0.0;
    // energy only: forces, virial, atom energies NULL
    let rc = unsafe { nqrs_compute(m, 32, pos.as_ptr(), types.as_ptr(), cell.as_ptr(), std::ptr::null(), &mut e, std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut()) };
    assert_eq!(rc, NQRS_OK);
    assert_eq!(e, compute(m, 0).0);
    let rc = unsafe { nqrs_compute(m, -1, pos.as_ptr(), types.as_ptr(), cell.as_ptr(), std::ptr::null(), &mut e, std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut()) };
    assert_eq!(rc, NQRS_ERROR_INVALID_ARGUMENT);
    assert!(last_error().contains("`n_atoms` must be >= 0, got -1"), "{}", last_error());
    let rc = unsafe { nqrs_compute(m, 32, pos.as_ptr(), types.as_ptr(), cell.as_ptr(), std::ptr::null(), std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut()) };
    assert_eq!(rc, NQRS_ERROR_INVALID_ARGUMENT);
    assert!(last_error().contains("`energy` is NULL"), "{}", last_error());
    // a zero cell with pbc is an error from the neighbour list, not a crash
    let zero = [0.0f64; 9];
    let rc = unsafe { nqrs_compute(m, 32, pos.as_ptr(), types.as_ptr(), zero.as_ptr(), std::ptr::null(), &mut e, std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut()) };
    assert_eq!(rc, NQRS_ERROR_INVALID_ARGUMENT, "{}", last_error());
    let mut r = 0.0;
    assert_eq!(unsafe { nqrs_model_r_max(m, &mut r) }, NQRS_OK);
    assert_eq!(r, 3.5);
    let mut layers = 0;
    assert_eq!(unsafe { nqrs_model_num_layers(m, &mut layers) }, NQRS_OK);
    assert_eq!(layers, 2);
    assert_eq!(unsafe { nqrs_model_r_max(std::ptr::null(), &mut r) }, NQRS_ERROR_INVALID_ARGUMENT);
    unsafe { nqrs_model_free(m) };
}
