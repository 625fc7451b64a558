//! Configs in nequip 0.6.2's format, with every key nequip's shipped configs (example, full,
//! minimal, minimal_stress, minimal_pair) use, pass `nequip config check` and train one epoch
//! unchanged: Python tags (`!!python/object/apply:builtins.range`, `!!python/tuple`),
//! `include_file_as_baseline_config`, per-layer `layer{i}_convnet_*` keys, `dataset_key_mapping`,
//! `dataset_include_keys`, the Python-only `wandb*` / `_jit_*` keys (reported, not ignored) and
//! `dataset_url` / `validation_dataset_url` (downloaded from a loopback server started here,
//! zipped or not). Also: the repository's `configs/*.yaml` check clean, `configs/minimal_stress.yaml`
//! trains, and per-layer keys change exactly their layer's parameters.
//!
//! Models are shrunk with overrides on top of the nequip-style file (the baseline-include
//! pattern); the keys of nequip's files stay.

use std::collections::BTreeMap;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn shipped(name: &str) -> PathBuf {
    repo().join("data").join(name)
}

/// A fresh temporary directory, removed when dropped.
struct Tmp(PathBuf);
impl Tmp {
    fn new(tag: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("nequip-configs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    fn path(&self) -> String {
        self.0.display().to_string()
    }
}
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn nequip(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nequip")).args(args).current_dir(cwd).output().expect("run nequip")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// `nequip config check FILE` succeeds with `FILE: ok` and prints no error and no warning
/// other than those in `allowed_warnings` (substrings); returns stderr (the notes).
fn check_clean(cwd: &Path, file: &Path, allowed_warnings: &[&str]) -> String {
    let o = nequip(cwd, &["config", "check", file.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "config check {}:\n{err}", file.display());
    assert_eq!(out, format!("{}: ok\n", file.display()), "{err}");
    for line in err.lines().filter(|l| !l.starts_with("note: ")) {
        assert!(line.starts_with("warning: ") && allowed_warnings.iter().any(|w| line.contains(w)), "config check {}: unexpected output `{line}`\n{err}", file.display());
    }
    err
}

/// `nequip train -q FILE`; returns stderr (download messages).
fn train(cwd: &Path, file: &Path) -> String {
    let o = nequip(cwd, &["train", "-q", file.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert!(o.status.success(), "train {}:\n{err}", file.display());
    err
}

/// The header of a run's `metrics_epoch.csv` and its number of epoch rows.
fn epoch_csv(run: &Path) -> (Vec<String>, usize) {
    let t = std::fs::read_to_string(run.join("metrics_epoch.csv")).unwrap();
    let mut lines = t.lines();
    let header = lines.next().unwrap().split(',').map(|c| c.trim().to_string()).collect();
    (header, lines.count())
}

/// The best model of a run: (name, shape) of every tensor, and the trainable count.
fn best_model(run: &Path) -> (BTreeMap<String, Vec<i64>>, i64) {
    nequip_plugins::link();
    let (m, _) = nequip_core::io::model_file::load(&run.join("best_model.safetensors"), Some("cpu")).unwrap();
    (m.state_dict().into_iter().map(|t| (t.name, t.tensor.size())).collect(), m.num_trainable())
}

// ---------- a loopback HTTP server ----------

#[path = "../../nequip-core/tests/support/loopback_http.rs"]
mod loopback_http;
use loopback_http::Server;

/// A zip archive with stored (uncompressed) members, written by hand so the download code is
/// tested against an archive it did not make.
fn zip_stored(members: &[(&str, &[u8])]) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, data) in members {
        let (crc, size, offset) = (crc32(data), data.len() as u32, out.len() as u32);
        let common = |v: &mut Vec<u8>| {
            v.extend(20u16.to_le_bytes()); // version needed
            v.extend(0u16.to_le_bytes()); // flags
            v.extend(0u16.to_le_bytes()); // stored
            v.extend(0u16.to_le_bytes()); // time
            v.extend(0x21u16.to_le_bytes()); // date: 1980-01-01
            v.extend(crc.to_le_bytes());
            v.extend(size.to_le_bytes());
            v.extend(size.to_le_bytes());
            v.extend((name.len() as u16).to_le_bytes());
            v.extend(0u16.to_le_bytes()); // extra length
        };
        out.extend(0x0403_4b50u32.to_le_bytes());
        common(&mut out);
        out.extend(name.as_bytes());
        out.extend(*data);
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend(20u16.to_le_bytes()); // made by
        common(&mut central);
        central.extend([0u8; 8]); // comment length, disk, internal attributes, external attributes (low half)
        central.extend([0u8; 2]); // external attributes (high half)
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let (cd_offset, cd_size, n) = (out.len() as u32, central.len() as u32, members.len() as u16);
    out.extend(central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]); // this disk, disk of the central directory
    out.extend(n.to_le_bytes());
    out.extend(n.to_le_bytes());
    out.extend(cd_size.to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// The first `n` frames of the shipped Cu data as nequip's W-14 file looks: forces under
/// `force`, and a `virial` (= −stress · volume, nequip's convention) in every comment line.
fn cu_as_w14(n: usize) -> String {
    let t = std::fs::read_to_string(shipped("cu_emt.extxyz")).unwrap();
    let mut lines = t.lines();
    let mut out = String::new();
    let nine = |comment: &str, key: &str| -> [f64; 9] {
        let start = comment.find(&format!("{key}=\"")).unwrap() + key.len() + 2;
        let len = comment[start..].find('"').unwrap();
        let v: Vec<f64> = comment[start..start + len].split_whitespace().map(|x| x.parse().unwrap()).collect();
        v.try_into().unwrap()
    };
    for _ in 0..n {
        let natoms: usize = lines.next().unwrap().trim().parse().unwrap();
        let comment = lines.next().unwrap();
        let (l, s) = (nine(comment, "Lattice"), nine(comment, "stress"));
        let det = l[0] * (l[4] * l[8] - l[5] * l[7]) - l[1] * (l[3] * l[8] - l[5] * l[6]) + l[2] * (l[3] * l[7] - l[4] * l[6]);
        let virial: Vec<String> = s.iter().map(|x| format!("{}", -x * det.abs())).collect();
        out += &format!("{natoms}\n{} virial=\"{}\"\n", comment.replace(":forces:R:3", ":force:R:3"), virial.join(" "));
        for _ in 0..natoms {
            out += lines.next().unwrap();
            out.push('\n');
        }
    }
    assert!(out.contains(":force:R:3"), "the shipped file's Properties changed");
    out
}

// ---------- the repository's configs ----------

#[test]
fn repo_configs_check_clean() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("configs")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "yaml")).collect();
    files.sort();
    let names: Vec<String> = files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for want in ["example.yaml", "full.yaml", "minimal.yaml", "minimal_stress.yaml"] {
        assert!(names.iter().any(|n| n == want), "configs/{want} missing: {names:?}");
    }
    for f in &files {
        // relative data paths: from the repository root, as `./run train configs/...`
        let rel = f.strip_prefix(repo()).unwrap();
        let notes = check_clean(&repo(), rel, &[]);
        if rel.ends_with("full.yaml") {
            assert!(notes.contains("`wandb_project` (Weights & Biases logging) is a Python-only feature: accepted but not supported by nequip-rs"), "{notes}");
        }
    }
}

#[test]
fn repo_minimal_stress_trains_one_epoch() {
    let d = Tmp::new("repo-stress");
    let cfg = d.write("train.yaml", &format!("include_file_as_baseline_config: {}\nroot: {}\nmax_epochs: 1\nn_train: 4\nn_val: 2\ndevice: cpu\n", repo().join("configs/minimal_stress.yaml").display(), d.path()));
    check_clean(&repo(), &cfg, &[]);
    train(&repo(), &cfg);
    let (header, rows) = epoch_csv(&d.0.join("minimal_stress"));
    assert_eq!(rows, 1);
    for k in ["training_loss_f", "validation_loss_stress", "validation_stress_mae", "validation_f_mae"] {
        assert!(header.iter().any(|h| h == k), "{k} not in {header:?}");
    }
}

// ---------- nequip's example.yaml: a zipped dataset_url ----------

/// nequip 0.6.2's example.yaml keys (our values and no comments); `{url}` and `{dir}` filled in.
const EXAMPLE: &str = r#"root: results/toluene
run_name: example-run-toluene
seed: 123
dataset_seed: 456
append: true
default_dtype: float64
model_dtype: float32
allow_tf32: true
r_max: 4.0
num_layers: 4
l_max: 2
parity: true
num_features: 32
nonlinearity_type: gate
nonlinearity_scalars:
  e: silu
  o: tanh
nonlinearity_gates:
  e: silu
  o: tanh
num_basis: 8
BesselBasis_trainable: true
PolynomialCutoff_p: 6
invariant_layers: 2
invariant_neurons: 64
avg_num_neighbors: auto
use_sc: true
dataset: npz
dataset_url: {url}
dataset_file_name: {dir}/benchmark_data/toluene_ccsd_t-train.npz
key_mapping:
  z: atomic_numbers
  E: total_energy
  F: forces
  R: pos
npz_fixed_field_keys:
  - atomic_numbers
chemical_symbols:
  - H
  - C
wandb: true
wandb_project: toluene-example
verbose: info
log_batch_freq: 100
log_epoch_freq: 1
save_checkpoint_freq: -1
save_ema_checkpoint_freq: -1
n_train: 100
n_val: 50
learning_rate: 0.005
batch_size: 5
validation_batch_size: 10
max_epochs: 100000
train_val_split: random
shuffle: true
metrics_key: validation_loss
use_ema: true
ema_decay: 0.99
ema_use_num_updates: true
report_init_validation: true
early_stopping_patiences:
  validation_loss: 50
early_stopping_lower_bounds:
  LR: 1.0e-5
early_stopping_upper_bounds:
  validation_loss: 1.0e+4
loss_coeffs:
  forces: 1
  total_energy:
    - 1
    - PerAtomMSELoss
metrics_components:
  - - forces
    - mae
  - - forces
    - rmse
  - - forces
    - mae
    - PerSpecies: True
      report_per_component: False
  - - forces
    - rmse
    - PerSpecies: True
      report_per_component: False
  - - total_energy
    - mae
  - - total_energy
    - mae
    - PerAtom: True
optimizer_name: Adam
optimizer_amsgrad: true
lr_scheduler_name: ReduceLROnPlateau
lr_scheduler_patience: 100
lr_scheduler_factor: 0.5
per_species_rescale_shifts: dataset_per_atom_total_energy_mean
per_species_rescale_scales: null
"#;

/// A tiny, 1-epoch version of a nequip-style file (the baseline-include pattern).
fn tiny(base: &str, root: &str, extra: &str) -> String {
    format!("include_file_as_baseline_config: {base}\nroot: {root}\ndevice: cpu\nmax_epochs: 1\nn_train: 6\nn_val: 3\nbatch_size: 3\nvalidation_batch_size: 3\nl_max: 1\nnum_features: 4\nnum_layers: 2\ninvariant_neurons: 8\n{extra}")
}

#[test]
fn nequip_example_downloads_a_zip_and_trains() {
    let npz = std::fs::read(shipped("toluene_xtb.npz")).unwrap();
    let zip = zip_stored(&[("toluene_ccsd_t-train.npz", &npz), ("toluene_ccsd_t-test.npz", &npz)]);
    let server = Server::start(BTreeMap::from([("/gdml/data/npz/toluene_ccsd_t.zip", zip)]), 4, 120);
    let d = Tmp::new("example");
    let example = d.write("example.yaml", &EXAMPLE.replace("{url}", &server.url("/gdml/data/npz/toluene_ccsd_t.zip")).replace("{dir}", &d.path()));
    // before the download: clean, the missing file only a warning
    let notes = check_clean(&d.0, &example, &["toluene_ccsd_t-train.npz` does not exist"]);
    assert!(notes.contains("note: `wandb` (Weights & Biases logging) is a Python-only feature: accepted but not supported by nequip-rs"), "{notes}");
    assert_eq!(server.requests(), 0, "config check must not download");

    // baseline path relative to the including file
    let cfg = d.write("train.yaml", &tiny("example.yaml", &d.path(), ""));
    let err = train(&d.0, &cfg);
    assert!(err.contains("Downloading") && err.contains("toluene_ccsd_t.zip"), "{err}");
    assert_eq!(server.requests(), 1);
    let data = d.0.join("benchmark_data");
    let mut got: Vec<String> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    got.sort();
    assert_eq!(got, ["toluene_ccsd_t-test.npz", "toluene_ccsd_t-train.npz", "toluene_ccsd_t.zip"]);
    assert_eq!(std::fs::read(data.join("toluene_ccsd_t-train.npz")).unwrap(), npz);
    let (header, rows) = epoch_csv(&d.0.join("example-run-toluene"));
    assert_eq!(rows, 1);
    for k in ["validation_f_mae", "validation_f_rmse", "validation_H_f_mae", "validation_C_f_rmse", "validation_e_mae", "validation_e/N_mae"] {
        assert!(header.iter().any(|h| h == k), "{k} not in {header:?}");
    }
    // now present: clean without warnings, and nothing is downloaded again
    check_clean(&d.0, &example, &[]);
    check_clean(&d.0, &cfg, &[]);
    assert_eq!(server.requests(), 1);
}

// ---------- nequip's full.yaml: every active key; a downloaded validation set ----------

const FULL: &str = r#"root: results/toluene
run_name: example-run-toluene
seed: 123
dataset_seed: 456
append: true
default_dtype: float64
model_dtype: float32
allow_tf32: true
model_builders:
 - SimpleIrrepsConfig
 - EnergyModel
 - PerSpeciesRescale
 - ForceOutput
 - RescaleEnergyEtc
r_max: 4.0
num_layers: 4
l_max: 1
parity: true
num_features: 32
nonlinearity_type: gate
resnet: false
nonlinearity_scalars:
  e: silu
  o: tanh
nonlinearity_gates:
  e: silu
  o: tanh
num_basis: 8
BesselBasis_trainable: true
PolynomialCutoff_p: 6
invariant_layers: 2
invariant_neurons: 64
avg_num_neighbors: auto
use_sc: true
layer1_convnet_use_sc: true
dataset: npz
dataset_file_name: {npz}
key_mapping:
  z: atomic_numbers
  E: total_energy
  F: forces
  R: pos
npz_fixed_field_keys:
  - atomic_numbers
chemical_symbols:
  - H
  - C
validation_dataset: ase
validation_dataset_url: {url}
validation_dataset_file_name: {dir}/val/toluene_xtb.extxyz
validation_dataset_ase_args:
  format: extxyz
wandb: true
wandb_project: toluene-example
wandb_watch: false
wandb_watch_kwargs:
  log: all
  log_freq: 1
  log_graph: true
tensorboard: false
_jit_bailout_depth: 5
_jit_fusion_strategy:
  - - DYNAMIC
    - 3
_jit_fuser: fuser1
verbose: info
log_batch_freq: 100
log_epoch_freq: 1
save_checkpoint_freq: -1
save_ema_checkpoint_freq: -1
n_train: 100
n_val: 50
learning_rate: 0.005
batch_size: 5
validation_batch_size: 10
max_epochs: 100000
train_val_split: random
shuffle: true
metrics_key: validation_loss
use_ema: true
ema_decay: 0.99
ema_use_num_updates: true
report_init_validation: true
early_stopping_patiences:
  validation_loss: 50
early_stopping_delta:
  validation_loss: 0.005
early_stopping_cumulative_delta: false
early_stopping_lower_bounds:
  LR: 1.0e-5
early_stopping_upper_bounds:
  cumulative_wall: 1.0e+100
loss_coeffs:
  forces: 1.0
  total_energy:
    - 1.0
    - PerAtomMSELoss
metrics_components:
  - - forces
    - mae
  - - forces
    - rmse
  - - forces
    - mae
    - PerSpecies: True
      report_per_component: False
  - - forces
    - rmse
    - PerSpecies: True
      report_per_component: False
  - - total_energy
    - mae
  - - total_energy
    - mae
    - PerAtom: True
optimizer_name: Adam
optimizer_amsgrad: true
optimizer_betas: !!python/tuple
  - 0.9
  - 0.999
optimizer_eps: 1.0e-08
optimizer_weight_decay: 0
max_gradient_norm: null
lr_scheduler_name: ReduceLROnPlateau
lr_scheduler_patience: 100
lr_scheduler_factor: 0.5
per_species_rescale_scales_trainable: false
per_species_rescale_shifts_trainable: false
per_species_rescale_shifts: dataset_per_atom_total_energy_mean
per_species_rescale_scales: null
global_rescale_shift: null
global_rescale_scale: dataset_forces_rms
global_rescale_shift_trainable: false
global_rescale_scale_trainable: false
"#;

#[test]
fn nequip_full_keys_train_with_a_downloaded_validation_set() {
    let xyz = std::fs::read(shipped("toluene_xtb.extxyz")).unwrap();
    let server = Server::start(BTreeMap::from([("/files/toluene_xtb.extxyz", xyz.clone())]), 4, 120);
    let d = Tmp::new("full");
    let full = d.write(
        "full.yaml",
        &FULL.replace("{npz}", &shipped("toluene_xtb.npz").display().to_string()).replace("{url}", &server.url("/files/toluene_xtb.extxyz?download=1")).replace("{dir}", &d.path()),
    );
    let notes = check_clean(&d.0, &full, &["val/toluene_xtb.extxyz` does not exist"]);
    for key in ["`wandb` (Weights & Biases logging)", "`wandb_project` (Weights & Biases logging)", "`wandb_watch_kwargs` (Weights & Biases logging)", "`_jit_bailout_depth` (TorchScript tuning)"] {
        assert!(notes.contains(&format!("note: {key} is a Python-only feature: accepted but not supported by nequip-rs")), "{key}: {notes}");
    }
    // off or at nequip's default: no note
    for key in ["`wandb_watch`", "`tensorboard`", "`_jit_fuser`", "`_jit_fusion_strategy`", "`allow_tf32`"] {
        assert!(!notes.contains(key), "{key}: {notes}");
    }
    let cfg = d.write("train.yaml", &tiny("full.yaml", &d.path(), "run_name: full\n"));
    train(&d.0, &cfg);
    assert_eq!(server.requests(), 1);
    assert_eq!(std::fs::read(d.0.join("val/toluene_xtb.extxyz")).unwrap(), xyz);
    let (header, rows) = epoch_csv(&d.0.join("full"));
    assert_eq!(rows, 1);
    assert!(header.iter().any(|h| h == "validation_H_f_rmse"), "{header:?}");
    check_clean(&d.0, &cfg, &[]);
}

// ---------- nequip's minimal_stress.yaml: virial, range frames, key mapping ----------

const MINIMAL_STRESS: &str = r#"root: results/w-14
run_name: minimal
seed: 123
dataset_seed: 456
model_builders:
  - SimpleIrrepsConfig
  - EnergyModel
  - PerSpeciesRescale
  - StressForceOutput
  - RescaleEnergyEtc
num_basis: 8
r_max: 4.0
l_max: 2
parity: true
num_features: 16
dataset: ase
dataset_url: {url}
dataset_file_name: {dir}/benchmark_data/w-14.xyz
dataset_key_mapping:
  force: forces
dataset_include_keys:
  - virial
chemical_symbols:
  - Cu
dataset_include_frames: !!python/object/apply:builtins.range
  - 0
  - 20
  - 2
global_rescale_scale: dataset_total_energy_std
per_species_rescale_shifts: dataset_per_atom_total_energy_mean
per_species_rescale_scales: null
wandb: false
n_train: 90
n_val: 10
batch_size: 1
max_epochs: 10
loss_coeffs:
 - virial
 - forces
optimizer_name: Adam
"#;

#[test]
fn nequip_minimal_stress_keys_train_on_virial() {
    let xyz = cu_as_w14(20);
    let server = Server::start(BTreeMap::from([("/Datasets/w-14.zip", zip_stored(&[("w-14.xyz", xyz.as_bytes())]))]), 4, 120);
    let d = Tmp::new("stress");
    let base = d.write("minimal_stress.yaml", &MINIMAL_STRESS.replace("{url}", &server.url("/Datasets/w-14.zip")).replace("{dir}", &d.path()));
    check_clean(&d.0, &base, &["w-14.xyz` does not exist"]);
    // 10 frames (range 0..20 step 2): 6 train, 3 validation
    let cfg = d.write("train.yaml", &tiny("minimal_stress.yaml", &d.path(), ""));
    train(&d.0, &cfg);
    assert_eq!(server.requests(), 1);
    let (header, rows) = epoch_csv(&d.0.join("minimal"));
    assert_eq!(rows, 1);
    for k in ["training_loss_virial", "training_loss_f", "validation_virial_mae", "validation_f_mae"] {
        assert!(header.iter().any(|h| h == k), "{k} not in {header:?}");
    }
    // a range beyond the file is an error naming the frame
    let bad = d.write("bad.yaml", &tiny("minimal_stress.yaml", &d.path(), "run_name: bad\ndataset_include_frames: !!python/object/apply:builtins.range [0, 40, 2]\n"));
    let o = nequip(&d.0, &["train", "-q", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = text(&o).1;
    assert!(err.contains("frame 20 is out of range") && err.contains("w-14.xyz"), "{err}");
}

// ---------- nequip's minimal.yaml and minimal_pair.yaml: a plain npz download ----------

const MINIMAL_PAIR: &str = r#"root: results/aspirin
run_name: minimal-pair
seed: 123
dataset_seed: 456
model_builders:
  - SimpleIrrepsConfig
  - EnergyModel
  - PerSpeciesRescale
  - PairPotentialTerm
  - StressForceOutput
  - RescaleEnergyEtc
num_basis: 8
r_max: 4.0
l_max: 2
parity: true
num_features: 16
pair_style: ZBL
units: metal
dataset: npz
dataset_url: {url}
dataset_file_name: {dir}/benchmark_data/toluene_xtb.npz
key_mapping:
  z: atomic_numbers
  E: total_energy
  F: forces
  R: pos
npz_fixed_field_keys:
  - atomic_numbers
chemical_symbols:
  - H
  - O
  - C
wandb: false
n_train: 5
n_val: 5
batch_size: 1
validation_batch_size: 5
max_epochs: 10
loss_coeffs:
  forces: 1
  total_energy:
    - 1
    - PerAtomMSELoss
optimizer_name: Adam
"#;

#[test]
fn nequip_minimal_and_pair_keys_download_an_npz_and_train() {
    let npz = std::fs::read(shipped("toluene_xtb.npz")).unwrap();
    let server = Server::start(BTreeMap::from([("/npz/toluene_xtb.npz", npz)]), 4, 120);
    let d = Tmp::new("pair");
    let pair = d.write("minimal_pair.yaml", &MINIMAL_PAIR.replace("{url}", &server.url("/npz/toluene_xtb.npz?raw=true")).replace("{dir}", &d.path()));
    check_clean(&d.0, &pair, &["toluene_xtb.npz` does not exist"]);
    // a failed download names the URL and the file, and leaves nothing behind
    let bad = d.write("bad.yaml", &tiny("minimal_pair.yaml", &d.path(), &format!("run_name: bad\ndataset_url: {}\n", server.url("/npz/missing.npz"))));
    let o = nequip(&d.0, &["train", "-q", bad.to_str().unwrap()]);
    let err = text(&o).1;
    assert!(!o.status.success());
    assert!(err.contains(&server.url("/npz/missing.npz")) && err.contains("benchmark_data/missing.npz") && err.contains("404"), "{err}");
    assert_eq!(std::fs::read_dir(d.0.join("benchmark_data")).unwrap().count(), 0);
    assert_eq!(server.requests(), 1);

    let cfg = d.write("train.yaml", &tiny("minimal_pair.yaml", &d.path(), ""));
    train(&d.0, &cfg);
    assert_eq!(server.requests(), 2);
    let (header, _) = epoch_csv(&d.0.join("minimal-pair"));
    assert!(header.iter().any(|h| h == "validation_loss_e"), "{header:?}");
    let (names, _) = best_model(&d.0.join("minimal-pair"));
    assert!(names.keys().any(|n| n.contains("pair_potential")), "no pair potential in {:?}", names.keys().collect::<Vec<_>>());

    // nequip's minimal.yaml: no pair term, the single-field loss form; the file is there now,
    // so nothing is downloaded again
    let minimal_text = std::fs::read_to_string(&pair)
        .unwrap()
        .replace("run_name: minimal-pair\n", "run_name: minimal\n")
        .replace("  - PairPotentialTerm\n", "")
        .replace("pair_style: ZBL\nunits: metal\n", "")
        .replace("loss_coeffs:\n  forces: 1\n  total_energy:\n    - 1\n    - PerAtomMSELoss\n", "loss_coeffs: forces\n");
    assert!(minimal_text.contains("loss_coeffs: forces\n") && !minimal_text.contains("Pair"), "{minimal_text}");
    let minimal = d.write("minimal.yaml", &minimal_text);
    check_clean(&d.0, &minimal, &[]);
    let cfg = d.write("train_minimal.yaml", &tiny("minimal.yaml", &d.path(), ""));
    train(&d.0, &cfg);
    assert_eq!(server.requests(), 2);
    let (header, _) = epoch_csv(&d.0.join("minimal"));
    assert!(header.iter().any(|h| h == "validation_loss") && !header.iter().any(|h| h == "validation_loss_e"), "{header:?}");
}

// ---------- per-layer keys reach their layer ----------

#[test]
fn per_layer_keys_change_exactly_their_layer() {
    let d = Tmp::new("layers");
    let base = d.write(
        "base.yaml",
        &format!(
            "root: {root}\nrun_name: base\nseed: 123\ndataset_seed: 456\ndevice: cpu\nmodel_builders: [SimpleIrrepsConfig, EnergyModel, PerSpeciesRescale, ForceOutput, RescaleEnergyEtc]\n\
             r_max: 4.0\nnum_basis: 4\nl_max: 1\nparity: true\nnum_features: 4\nnum_layers: 2\ninvariant_layers: 1\ninvariant_neurons: 8\n\
             dataset: npz\ndataset_file_name: {npz}\nkey_mapping: {{z: atomic_numbers, E: total_energy, F: forces, R: pos}}\nnpz_fixed_field_keys: [atomic_numbers]\nchemical_symbols: [H, C]\n\
             n_train: 4\nn_val: 2\nbatch_size: 2\nvalidation_batch_size: 2\nmax_epochs: 1\nloss_coeffs: {{forces: 1.0, total_energy: [1.0, PerAtomMSELoss]}}\n",
            root = d.path(),
            npz = shipped("toluene_xtb.npz").display()
        ),
    );
    let radial = d.write("radial.yaml", "include_file_as_baseline_config: base.yaml\nrun_name: radial\nlayer1_convnet_invariant_neurons: 16\nlayer1_convnet_resnet: true\n");
    let hidden = d.write("hidden.yaml", "include_file_as_baseline_config: base.yaml\nrun_name: hidden\nlayer0_convnet_feature_irreps_hidden: 2x0e + 2x0o + 2x1o + 2x1e\n");
    for f in [&base, &radial, &hidden] {
        check_clean(&d.0, f, &[]);
        train(&d.0, f);
    }
    let o = nequip(&d.0, &["config", "explain", radial.to_str().unwrap()]);
    let out = text(&o).0;
    assert!(out.contains("layer1_convnet_invariant_neurons: 16\n") && out.contains("used by: layer1_convnet (ConvNetLayer) -> convolution (InteractionBlock) as `invariant_neurons`"), "{out}");
    assert!(out.contains("used by: layer1_convnet (ConvNetLayer) as `resnet`"), "{out}");
    let o = nequip(&d.0, &["config", "explain", hidden.to_str().unwrap()]);
    assert!(text(&o).0.contains("used by: layer0_convnet (ConvNetLayer) as `feature_irreps_hidden`"), "{}", text(&o).0);

    let (b, nb) = best_model(&d.0.join("base"));
    let (r, nr) = best_model(&d.0.join("radial"));
    let (h, nh) = best_model(&d.0.join("hidden"));
    assert_eq!(b.keys().collect::<Vec<_>>(), r.keys().collect::<Vec<_>>(), "same tensors, other shapes");
    let changed = |other: &BTreeMap<String, Vec<i64>>| -> Vec<String> { b.iter().filter(|(k, s)| other.get(*k) != Some(*s)).map(|(k, _)| k.clone()).collect() };
    // layer1's radial MLP only: 8 -> 16 hidden neurons
    let c = changed(&r);
    assert!(!c.is_empty() && c.iter().all(|k| k.contains("layer1_convnet.conv.fc.")), "{c:?}");
    assert!(nr > nb, "{nr} <= {nb}");
    // layer0's output irreps: layer0 itself and layer1's input side, nothing before or after
    let c = changed(&h);
    assert!(c.iter().any(|k| k.contains("layer0_convnet.")), "{c:?}");
    assert!(c.iter().all(|k| k.contains("layer0_convnet.") || k.contains("layer1_convnet.")), "{c:?}");
    assert!(nh < nb, "{nh} >= {nb}");
}
