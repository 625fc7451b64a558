//! nequip 0.6.2's model test-suite (`nequip/utils/unittests/model_tests.py`: `BaseModelTests`,
//! `BaseEnergyModelTests`, as run by `tests/unit/model/test_nequip_model.py`) through the kit
//! `nequip_core::model::testing`: tiny models from nequip-format YAML (gate/norm × resnet ×
//! parity × l_max 1–3, ForceOutput and StressForceOutput, float64 and a float32 model), and the
//! models of the nequip parity fixtures, on molecules (CH3CHO, H2, toluene) and periodic copper.

mod model_common;

use nequip_core::config::{Config, Source};
use nequip_core::data::{AtomicData, NpzDataset, NpzOptions, TypeMapper};
use nequip_core::model::testing::*;
use nequip_core::nn::GraphModel;

const R_MAX: f64 = 3.0;

struct Variant {
    nonlinearity: &'static str,
    resnet: bool,
    parity: bool,
    l_max: i64,
    builders: &'static str,
    model_dtype: &'static str,
    num_layers: i64,
}

impl Variant {
    fn new(nonlinearity: &'static str, resnet: bool, parity: bool, l_max: i64, builders: &'static str) -> Self {
        Variant { nonlinearity, resnet, parity, l_max, builders, model_dtype: "float64", num_layers: 2 }
    }

    fn name(&self) -> String {
        format!(
            "{} resnet={} parity={} l_max={} layers={} {} {}",
            self.nonlinearity, self.resnet, self.parity, self.l_max, self.num_layers, self.builders, self.model_dtype
        )
    }

    fn yaml(&self) -> String {
        format!(
            "r_max: {R_MAX}\nl_max: {}\nparity: {}\nnum_features: 4\nnum_layers: {}\nnonlinearity_type: {}\nresnet: {}\n\
             num_basis: 4\ninvariant_layers: 1\ninvariant_neurons: 8\nchemical_symbols: [H, C, O]\navg_num_neighbors: 4.0\n\
             model_dtype: {}\ndefault_dtype: float64\nmodel_builders: [SimpleIrrepsConfig, EnergyModel, {}]\n",
            self.l_max, self.parity, self.num_layers, self.nonlinearity, self.resnet, self.model_dtype, self.builders
        )
    }
}

/// A model from YAML text in nequip's format (placeholders for dataset statistics, random weights).
fn build_yaml(text: &str) -> GraphModel {
    nequip_core::model::with_seed(127, || model_common::build_yaml(text))
}

/// CH3CHO, H2 and a rattled 2×2×1 fcc Cu cell (types mixed), neighbor lists at `r_max`.
fn frames(r_max: f64, num_types: i64) -> Vec<AtomicData> {
    vec![ch3cho(r_max, num_types, 1).unwrap(), h2(r_max, 2).unwrap(), cu_bulk(r_max, num_types, 3).unwrap()]
}

/// Frames `frames` of a shipped npz dataset (`data/`), types from `symbols`.
fn npz_frames(file: &str, symbols: &[&str], r_max: f64, periodic: bool, frames: &[usize]) -> Vec<AtomicData> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data").join(file);
    let mut o = serde_json::json!({
        "file_name": path, "key_mapping": {"R": "pos", "z": "atomic_numbers", "E": "total_energy", "F": "forces"},
        "npz_fixed_field_keys": ["atomic_numbers"], "include_frames": frames, "AtomicData_options": {"r_max": r_max},
    });
    if periodic {
        o["include_keys"] = serde_json::json!(["cell", "pbc"]);
    }
    let o: NpzOptions = serde_json::from_value(o).unwrap();
    let ds = NpzDataset::load(&o, &TypeMapper::from_chemical_symbols(symbols).unwrap(), None).unwrap();
    (0..ds.len()).map(|i| ds.get(i).unwrap().clone()).collect()
}

/// Runs the kit; returns the failures (with the variant's name) instead of panicking, so that a
/// test can report every failing variant at once.
fn kit(name: &str, model: &GraphModel, frames: &[AtomicData], opts: &KitOptions) -> Vec<String> {
    let t = std::time::Instant::now();
    let r = check_energy_model(model, frames, opts);
    match r {
        Ok(ran) => {
            eprintln!("ok   {name}: {} checks in {:.2?}", ran.len(), t.elapsed());
            vec![]
        }
        Err(fails) => fails.iter().map(|e| format!("{name}: {e}")).collect(),
    }
}

fn run_variants(variants: &[Variant]) {
    let mut failures = Vec::new();
    for v in variants {
        let model = build_yaml(&v.yaml());
        let mut opts = KitOptions::new(&model, R_MAX, 3);
        // `parity: false` models declare their edge SH `1e` (as nequip does): SO(3) only
        opts.parity = v.parity;
        failures.extend(kit(&v.name(), &model, &frames(R_MAX, 3), &opts));
    }
    assert_ok(failures);
}

fn grid(nonlinearity: &'static str, parity: bool) -> Vec<Variant> {
    let mut out = Vec::new();
    for l_max in 1..=3 {
        for resnet in [false, true] {
            let builders = if (l_max + resnet as i64) % 2 == 0 { "ForceOutput" } else { "StressForceOutput" };
            out.push(Variant::new(nonlinearity, resnet, parity, l_max, builders));
        }
    }
    out
}

#[test]
fn gate_parity_models_pass_the_model_tests() {
    run_variants(&grid("gate", true));
}

#[test]
fn gate_no_parity_models_pass_the_model_tests() {
    run_variants(&grid("gate", false));
}

#[test]
fn norm_parity_models_pass_the_model_tests() {
    run_variants(&grid("norm", true));
}

#[test]
fn norm_no_parity_models_pass_the_model_tests() {
    run_variants(&grid("norm", false));
}

#[test]
fn one_layer_and_both_output_builders() {
    let mut vs = Vec::new();
    for builders in ["ForceOutput", "StressForceOutput"] {
        for nonlinearity in ["gate", "norm"] {
            vs.push(Variant { num_layers: 1, ..Variant::new(nonlinearity, false, true, 2, builders) });
        }
    }
    run_variants(&vs);
}

#[test]
fn float32_model_passes_with_float32_tolerances() {
    let mut vs = Vec::new();
    for (nonlinearity, builders) in [("gate", "StressForceOutput"), ("norm", "ForceOutput")] {
        vs.push(Variant { model_dtype: "float32", ..Variant::new(nonlinearity, true, true, 2, builders) });
    }
    for v in &vs {
        let model = build_yaml(&v.yaml());
        assert_eq!(model.model_dtype, tch::Kind::Float);
        assert_eq!(Tolerances::for_kind(model.model_dtype).exact, 1e-5);
    }
    run_variants(&vs);
}

fn assert_ok(failures: Vec<String>) {
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn aspirin_fixture_model_passes_the_model_tests() {
    // H, C, O, r_max 4, 3 layers, l_max 2, gate, per-species + global rescaling, ForceOutput
    let model = model_common::model("aspirin_l2");
    let mut f = frames(4.0, 3);
    f.extend(npz_frames("toluene_xtb.npz", &["H", "C", "O"], 4.0, false, &[0, 500]));
    assert_ok(kit("aspirin_l2", &model, &f, &KitOptions::new(&model, 4.0, 3)));
}

#[test]
fn copper_fixture_model_passes_the_model_tests() {
    // Cu, r_max 5, 3 layers, l_max 1, StressForceOutput; plus a 32-atom EMT frame
    let model = model_common::model("cu_l1");
    let mut f = frames(5.0, 1);
    f.extend(npz_frames("cu_emt.npz", &["Cu"], 5.0, true, &[0]));
    assert_ok(kit("cu_l1", &model, &f, &KitOptions::new(&model, 5.0, 1)));
}

#[test]
fn the_kit_reports_failures_with_numbers() {
    // `parity: false` models are SO(3)-equivariant only; from 3 layers on their energy is chiral
    // (pseudoscalar paths such as (a × b) · c), which the inversion check reports
    let model = build_yaml(&Variant { num_layers: 3, ..Variant::new("gate", false, false, 2, "ForceOutput") }.yaml());
    let opts = KitOptions::new(&model, R_MAX, 3);
    let d = model_input(&model, &ch3cho(R_MAX, 3, 1).unwrap());
    let e = check_equivariance(&model, &d, &opts).unwrap_err().to_string();
    assert!(e.starts_with("equivariance: ") && e.contains("parity: `total_energy`: max |Δ| = "), "{e}");
    assert!(e.contains("parity: `edge_attrs`"), "{e}");
    check_equivariance(&model, &d, &KitOptions { parity: false, ..opts }).unwrap();
    // cutoff checks told a smaller r_max than the model's
    let wrong = KitOptions { r_max: 0.8 * R_MAX, ..opts };
    let e = check_embedding_cutoff(&model, &wrong).unwrap_err().to_string();
    assert!(e.contains("(both must be 0)"), "{e}");
    let e = check_force_smoothness(&model, &wrong).unwrap_err().to_string();
    assert!(e.contains("must be exactly 0"), "{e}");
    // finite differences far too coarse: reported with both numbers
    check_forces_fd(&model, &d, &opts).unwrap();
    let coarse = KitOptions { tol: Tolerances { fd_step: 0.5, ..opts.tol }, ..opts };
    let e = check_forces_fd(&model, &d, &coarse).unwrap_err().to_string();
    assert!(e.contains("finite difference") && e.contains("vs forces"), "{e}");
}



/// The model of every config shipped in `configs/` (built without data: placeholders for the
/// statistics, `avg_num_neighbors` set), in float64: equivariance, batching and forces against
/// finite differences (the whole kit runs on the small variants above; these models are big).
#[test]
fn the_shipped_configs_models_pass_the_model_tests() {
    nequip_plugins::link();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let mut failures = Vec::new();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let mut c = Config::load(&path).unwrap();
        for (k, v) in [("device", "cpu"), ("model_dtype", "float64"), ("default_dtype", "float64")] {
            c.set(k, v.into(), Source::Cli(k.into()));
        }
        if !matches!(c.get("avg_num_neighbors"), Some(nequip_core::config::Value::Number(_))) {
            c.set("avg_num_neighbors", 10.0.into(), Source::Cli("test".into()));
        }
        let model = nequip_core::model::with_seed(127, || model_common::try_build(&mut c, false)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let r_max = c.get("r_max").and_then(nequip_core::config::Value::as_f64).unwrap();
        let num_types = c.get("num_types").and_then(nequip_core::config::Value::as_i64).unwrap();
        let mut opts = KitOptions::new(&model, r_max, num_types);
        opts.parity = c.get("parity").and_then(nequip_core::config::Value::as_bool).unwrap_or(true);
        opts.fd_atoms = 1;
        let mol = ch3cho(r_max, num_types, 1).unwrap();
        let cu = cu_bulk(r_max, num_types, 3).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        for (what, r) in [
            ("equivariance (molecule)", check_equivariance(&model, &model_input(&model, &mol), &opts)),
            ("equivariance (periodic)", check_equivariance(&model, &model_input(&model, &cu), &opts)),
            ("batch", check_batch(&model, &[&mol, &cu], &opts)),
            ("forces vs finite differences", check_forces_fd(&model, &model_input(&model, &mol), &opts)),
        ] {
            if let Err(e) = r {
                failures.push(format!("{name} {what}: {e}"));
            }
        }
        n += 1;
    }
    assert!(n >= 1);
    assert_ok(failures);
}
