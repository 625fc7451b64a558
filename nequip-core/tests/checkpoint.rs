//! Reading nequip 0.6.2 checkpoints (`best_model.pth` = `torch.save(state_dict)`, zip + pickle)
//! without libtorch's loaders; compared with the same state dict dumped by Python to npz.

use std::path::{Path, PathBuf};

use nequip_core::io::checkpoint::{read_pickle, read_state_dict, CheckpointError};
use nequip_core::io::pickle::PValue;

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nequip").join(p)
}

#[test]
fn best_model_matches_the_python_dump() {
    let sd = read_state_dict(&fixture("toluene_run/best_model.pth")).unwrap();
    let npz = tch::Tensor::read_npz(fixture("toluene_l2_trained_params.npz")).unwrap();
    assert_eq!(sd.len(), npz.len());
    let names: Vec<&str> = sd.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[..3], ["model.scale_by", "model.shift_by", "model.model.func.radial_basis.basis.bessel_weights"]);
    for (name, expected) in &npz {
        let (_, got) = sd.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(got.size(), expected.size(), "{name}");
        assert_eq!(got.kind(), expected.kind(), "{name}");
        assert!(got.equal(expected), "{name} differs");
    }
}

#[test]
fn last_model_has_the_same_names() {
    let a = read_state_dict(&fixture("toluene_run/best_model.pth")).unwrap();
    let b = read_state_dict(&fixture("toluene_run/last_model.pth")).unwrap();
    assert_eq!(a.iter().map(|(n, _)| n).collect::<Vec<_>>(), b.iter().map(|(n, _)| n).collect::<Vec<_>>());
}

#[test]
fn bad_files_are_clear_errors() {
    let dir_guard = tempfile::Builder::new().prefix("nequip-ckpt-").tempdir().unwrap();
    let dir = dir_guard.path();
    let junk = dir.join("junk.pth");
    std::fs::write(&junk, b"not a zip at all").unwrap();
    let e = read_state_dict(&junk).unwrap_err();
    assert!(matches!(e, CheckpointError::NotAZip { .. }), "{e}");
    assert!(e.to_string().starts_with(&format!("{}: not a torch zip checkpoint", junk.display())));
    // truncated: a valid zip whose storage is cut short
    let bytes = std::fs::read(fixture("toluene_run/best_model.pth")).unwrap();
    let cut = dir.join("cut.pth");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert!(read_state_dict(&cut).is_err());
    let e = read_state_dict(&dir.join("missing.pth")).unwrap_err();
    assert!(e.to_string().contains("missing.pth: cannot read"), "{e}");
}

#[test]
fn pickle_of_state_dict_is_a_dict_of_tensors() {
    match read_pickle(&fixture("toluene_run/best_model.pth")).unwrap() {
        PValue::Dict(items) => assert!(items.iter().all(|(k, v)| matches!(k, PValue::Str(_)) && matches!(v, PValue::Tensor(_)))),
        v => panic!("{v:?}"),
    }
}
