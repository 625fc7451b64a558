//! The field registry as a plugin uses it: registering node/graph/long/Cartesian fields changes
//! shape fixing, dtype coercion, batching and statistics; conflicts are errors.

use nequip_core::data::batch::collate;
use nequip_core::data::fields::{
    cartesian_tensor_formula, deregister_fields, field_kind, is_long, register_fields, FieldError,
    FieldKind, FieldRegistration,
};
use nequip_core::data::statistics::statistics;
use nequip_core::data::{Array, AtomicData, AtomicDataOptions};
use std::collections::BTreeMap;

fn frame(shift: f64, extra: &[(&str, Array)]) -> AtomicData {
    let pos = vec![0.0, 0.0, 0.0, 1.0 + shift, 0.0, 0.0, 0.0, 1.0, 0.0];
    let fields: BTreeMap<String, Array> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    AtomicData::from_points(pos, &AtomicDataOptions::new(2.0), None, None, fields).unwrap()
}

#[test]
fn builtin_kinds() {
    assert_eq!(field_kind("pos"), Some(FieldKind::Node));
    assert_eq!(field_kind("edge_cell_shift"), Some(FieldKind::Edge));
    assert_eq!(field_kind("total_energy"), Some(FieldKind::Graph));
    assert_eq!(field_kind("edge_index"), None);
    assert!(is_long("atom_types") && is_long("edge_index") && !is_long("forces"));
    assert_eq!(cartesian_tensor_formula("stress").as_deref(), Some("ij=ji"));
}

#[test]
fn plugin_fields_change_shapes_dtypes_and_batching() {
    register_fields(&FieldRegistration {
        node: &["plugin_charge", "plugin_label"],
        graph: &["plugin_dipole", "plugin_polar"],
        long: &["plugin_label"],
        cartesian_tensor: &[("plugin_polar", "ij=ji")],
        ..Default::default()
    })
    .unwrap();
    let mk = |s: f64| {
        frame(
            s,
            &[
                (
                    "plugin_charge",
                    Array::f64(vec![3], vec![0.1, -0.2, 0.1 + s]),
                ),
                ("plugin_label", Array::f64(vec![3], vec![1.0, 2.0, 3.0])),
                ("plugin_dipole", Array::f64(vec![3], vec![s, 0.0, 1.0])),
            ],
        )
    };
    let (a, b) = (mk(0.0), mk(0.5));
    // node field [3] -> [3, 1]; long field -> i64
    assert_eq!(a.get("plugin_charge").unwrap().shape, vec![3, 1]);
    assert_eq!(a.get("plugin_label").unwrap().as_i64().unwrap(), &[1, 2, 3]);
    let batch = collate(&[&a, &b]).unwrap();
    assert_eq!(batch.get("plugin_charge").unwrap().shape, vec![6, 1]);
    assert_eq!(batch.get("plugin_dipole").unwrap().shape, vec![2, 3]);
    let st = statistics(
        &[&a, &b],
        &["plugin_dipole", "plugin_charge"],
        &["mean_std", "rms"],
        true,
        0.001,
        "mem",
    )
    .unwrap();
    assert_eq!(st[0][0].as_f64().unwrap(), &[0.25, 0.0, 1.0]);
    let rms = ((0.01 + 0.04 + 0.01 + 0.01 + 0.04 + 0.36) / 6.0f64).sqrt();
    assert!((st[1][0].as_f64().unwrap()[0] - rms).abs() < 1e-15);
    // Cartesian tensor graph field: Voigt is only for stress/virial, 9 values -> 3x3
    let t = nequip_core::data::atomic_data::cartesian_to_3x3(
        "plugin_polar",
        Array::f64(vec![9], (0..9).map(f64::from).collect()),
    )
    .unwrap();
    assert_eq!(t.shape, vec![3, 3]);
    assert!(nequip_core::data::atomic_data::cartesian_to_3x3(
        "plugin_polar",
        Array::f64(vec![6], vec![0.0; 6])
    )
    .is_err());
    deregister_fields(&["plugin_label"]).unwrap();
    assert!(!is_long("plugin_label") && field_kind("plugin_label").is_none());
}

#[test]
fn conflicting_registrations_are_errors() {
    let err = register_fields(&FieldRegistration {
        graph: &["forces"],
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(
        err,
        FieldError::Conflict {
            field: "forces".into(),
            existing: FieldKind::Node,
            new: FieldKind::Graph
        }
    );
    assert_eq!(
        err.to_string(),
        "field `forces` cannot be registered as Graph: it is already a Node field"
    );
    let err = register_fields(&FieldRegistration {
        node: &["x_both"],
        edge: &["x_both"],
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(err, FieldError::Conflict { .. }));
    assert_eq!(field_kind("x_both"), None, "nothing registered on error");
    let err = register_fields(&FieldRegistration {
        cartesian_tensor: &[("x_rank3", "ijk")],
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "Cartesian tensor field `x_rank3` has formula `ijk` of rank 3; only rank-2 tensors are supported");
    assert_eq!(
        deregister_fields(&["pos"]).unwrap_err(),
        FieldError::BuiltIn("pos".into())
    );
}

#[test]
fn node_field_size_is_checked() {
    register_fields(&FieldRegistration {
        node: &["plugin_spin"],
        ..Default::default()
    })
    .unwrap();
    let pos = vec![0.0, 0.0, 0.0, 1.0, 0.0, 0.0];
    let extra: BTreeMap<String, Array> = [(
        "plugin_spin".to_string(),
        Array::f64(vec![3], vec![1.0, 2.0, 3.0]),
    )]
    .into_iter()
    .collect();
    let err =
        AtomicData::from_points(pos, &AtomicDataOptions::new(2.0), None, None, extra).unwrap_err();
    assert_eq!(
        err.to_string(),
        "field `plugin_spin`: is a node field but has shape [3, 1] for 2 atoms"
    );
}
