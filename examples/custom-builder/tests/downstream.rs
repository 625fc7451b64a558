//! The downstream crate's items appear in `list`, a YAML naming them resolves, and the
//! built-ins are still there — through the crate's own binary.

use std::process::Command;

fn nequip_custom(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nequip-custom")).args(args).output().expect("run nequip-custom")
}

#[test]
fn list_json_shows_downstream_and_builtin_items() {
    let out = nequip_custom(&["list", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("list --json parses");
    let items = v["items"].as_array().unwrap();
    let find = |kind: &str, name: &str| items.iter().find(|i| i["kind"] == kind && i["name"] == name).cloned();
    let b = find("model_builder", "EvenIrrepsConfig").expect("downstream builder listed");
    assert_eq!(b["crate"], "nequip-custom-builder");
    assert_eq!(b["prefixes"], serde_json::json!(["even"]));
    assert_eq!(b["injects"], serde_json::json!(["config", "<keys>"]));
    assert_eq!(b["keys"][0]["name"], "l_max");
    assert_eq!(b["keys"][0]["required"], true);
    assert_eq!(b["keys"][1]["default"], 16);
    let l = find("loss", "LogCoshLoss").expect("downstream loss listed");
    assert_eq!(l["keys"][0]["default"], 1.0);
    for (kind, name) in [("model_builder", "SimpleIrrepsConfig"), ("loss", "MSELoss"), ("loss", "HuberLoss")] {
        let i = find(kind, name).unwrap_or_else(|| panic!("built-in {name} missing"));
        assert_eq!(i["crate"], "nequip-plugins");
    }
}

#[test]
fn yaml_naming_the_downstream_builder_checks_clean() {
    let dir_guard = tempfile::Builder::new().prefix("nequip-custom-").tempdir().unwrap();
    let dir = dir_guard.path();
    let ok = dir.join("ok.yaml");
    std::fs::write(&ok, "model_builders: [EvenIrrepsConfig]\neven_l_max: 2\nseed: 1\nloss_coeffs: {forces: [1.0, LogCoshLoss]}\n").unwrap();
    let out = nequip_custom(&["config", "check", ok.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let explain = nequip_custom(&["config", "explain", ok.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&explain.stdout);
    assert!(text.contains("even_l_max: 2\n    from: yaml"), "{text}");
    assert!(text.contains("used by: EvenIrrepsConfig as `l_max`"), "{text}");

    let missing = dir.join("missing.yaml");
    std::fs::write(&missing, "model_builders: [EvenIrrepsConfig]\n").unwrap();
    let out = nequip_custom(&["config", "check", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("EvenIrrepsConfig: missing l_max (looked for even_l_max, l_max)"), "{err}");
}

#[test]
fn in_process_registry_has_both() {
    nequip_custom_builder::link();
    nequip_plugins::link();
    use nequip_core::registry::{lookup, Kind};
    assert_eq!(lookup(Kind::Loss, "LogCoshLoss").unwrap().krate, "nequip-custom-builder");
    assert_eq!(lookup(Kind::ModelBuilder, "SimpleIrrepsConfig").unwrap().krate, "nequip-plugins");
    let loss = nequip_core::train::loss::build_loss("LogCoshLoss", &Default::default()).unwrap();
    let d = [0.0f64, 0.5, -3.0, 40.0];
    let v = loss.elementwise(&tch::Tensor::from_slice(&d), &tch::Tensor::zeros([4], (tch::Kind::Double, tch::Device::Cpu)));
    let got = Vec::<f64>::try_from(&v).unwrap();
    for (x, g) in d.iter().zip(got) {
        assert!((g - x.cosh().ln()).abs() < 1e-12 * (1.0 + x.abs()), "{x}: {g}");
    }
}
