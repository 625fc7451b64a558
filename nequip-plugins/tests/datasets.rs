//! Datasets through the registry: nequip's name matching, `dataset_from_config` with prefixed
//! keys, `validation_dataset`, `AtomicData_options` / `r_max` precedence, and errors.

use std::path::{Path, PathBuf};

use nequip_core::config::Config;
use nequip_core::data::{dataset_from_config, dataset_plan};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data").join(name)
}

/// A fresh directory in the temp dir, removed (with everything in it) when dropped.
fn tmp(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("nequip-ds-{tag}-")).tempdir().unwrap()
}

fn config(yaml: &str) -> Config {
    nequip_plugins::link();
    Config::from_yaml_str(yaml, "test.yaml").unwrap()
}

#[test]
fn nequip_names_match_case_insensitively() {
    nequip_plugins::link();
    use nequip_core::data::from_config::find_dataset;
    for (name, reg) in [("npz", "NpzDataset"), ("NPZ", "NpzDataset"), ("NpzDataset", "NpzDataset"), ("ase", "ASEDataset"), ("AseDataset", "ASEDataset"), ("ASEDataset", "ASEDataset")] {
        assert_eq!(find_dataset(name).unwrap().name, reg, "{name}");
    }
    let e = find_dataset("hdf5").unwrap_err().to_string();
    assert_eq!(e, "unknown dataset `hdf5`; registered datasets: ASEDataset, NpzDataset");
}

#[test]
fn train_and_validation_sections_of_a_flat_config() {
    let root_dir = tmp("flat");
    let root = root_dir.path();
    let yaml = format!(
        "root: {root}\nr_max: 4.0\nchemical_symbols: [H, C]\ndataset: npz\ndataset_file_name: {npz}\nkey_mapping: {{R: pos, z: atomic_numbers, E: total_energy, F: forces}}\nnpz_fixed_field_keys: [atomic_numbers]\ndataset_include_frames: [0, 1, 2]\nvalidation_dataset: ASEDataset\nvalidation_dataset_file_name: {xyz}\nvalidation_dataset_r_max: 3.0\nvalidation_dataset_include_frames: [5]\n",
        root = root.display(),
        npz = data("toluene_xtb.npz").display(),
        xyz = data("toluene_xtb.extxyz").display()
    );
    let mut c = config(&yaml);
    let train = dataset_from_config(&mut c, "dataset").unwrap().unwrap();
    assert_eq!((train.len(), train.r_max), (3, 4.0));
    let val = dataset_from_config(&mut c, "validation_dataset").unwrap().unwrap();
    assert_eq!((val.len(), val.r_max, val.frame_ids.clone()), (1, 3.0, vec![5]));
    // nequip writes the effective AtomicData_options back into the config
    assert_eq!(c.get("validation_dataset_AtomicData_options").unwrap()["r_max"].as_f64(), Some(3.0));
    // every key was consumed (npz-only keys are simply not parameters of the ase dataset)
    assert!(c.unused_keys([]).is_empty(), "{:?}", c.unused_keys([]));
    assert!(dataset_plan(&mut c, "test_dataset").unwrap().is_none());
    // train and validation frames are identical data (npz vs extxyz, 8 decimals in the xyz)
    let e_npz = train.get(0).unwrap().get("total_energy").unwrap().to_f64_vec();
    let all = dataset_from_config(&mut config(&yaml.replace("dataset_include_frames: [0, 1, 2]", "dataset_include_frames: [5]")), "dataset").unwrap().unwrap();
    assert_eq!(all.get(0).unwrap().get("total_energy").unwrap().to_f64_vec(), val.get(0).unwrap().get("total_energy").unwrap().to_f64_vec());
    assert_eq!(e_npz.len(), 1);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn atomic_data_options_r_max_wins_over_config_r_max() {
    let root_dir = tmp("ado");
    let root = root_dir.path();
    let yaml = format!(
        "root: {}\nr_max: 4.0\nchemical_symbols: [H, C]\ndataset: ase\ndataset_file_name: {}\ndataset_AtomicData_options: {{r_max: 2.5}}\ndataset_include_frames: [0]\n",
        root.display(),
        data("toluene_xtb.extxyz").display()
    );
    let ds = dataset_from_config(&mut config(&yaml), "dataset").unwrap().unwrap();
    assert_eq!(ds.r_max, 2.5);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn dataset_errors_name_the_key() {
    let e = dataset_plan(&mut config("dataset: hdf5\nr_max: 4.0\n"), "dataset").err().unwrap().to_string();
    assert_eq!(e, "test.yaml:1:1: `dataset`: unknown dataset `hdf5`; registered datasets: ASEDataset, NpzDataset");
    let e = dataset_plan(&mut config("dataset: npz\ndataset_file_name: x.npz\n"), "dataset").err().unwrap().to_string();
    assert_eq!(e, "dataset (NpzDataset): missing r_max (looked for AtomicData_options.r_max, dataset_r_max, r_max)");
    let e = dataset_plan(&mut config("dataset: npz\nr_max: 4.0\n"), "dataset").err().unwrap().to_string();
    assert_eq!(e, "dataset (NpzDataset): missing file_name (looked for dataset_file_name, NpzDataset_file_name, file_name)");
    let e = dataset_plan(&mut config("dataset: npz\nr_max: 4.0\nfile_name: a.npz\ndataset_include_frames: first\n"), "dataset").err().unwrap().to_string();
    assert!(e.starts_with("test.yaml:4:1: dataset (NpzDataset): key `dataset_include_frames` (for `include_frames`): invalid type: string \"first\""), "{e}");
    // an extxyz file given to the npz dataset: the loader's error names the file
    let err_dir = tmp("err");
    let yaml = format!("dataset: npz\nr_max: 4.0\nchemical_symbols: [H, C]\nfile_name: {}\nroot: {}\n", data("toluene_xtb.extxyz").display(), err_dir.path().display());
    let e = dataset_from_config(&mut config(&yaml), "dataset").err().unwrap().to_string();
    assert!(e.contains("toluene_xtb.extxyz: not a valid npz (zip) archive"), "{e}");
}
