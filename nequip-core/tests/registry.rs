//! The registry: lookups, unknown names with suggestions, listing order, typed factories,
//! and a loss built from YAML parameters through its registration.

use nequip_core::config::{Mapping, Value};
use nequip_core::registry::{self, kind, Kind, RegistryError};
use nequip_core::train::loss::{build_loss, ElementwiseLoss};
use nequip_core::{auto_init, builder};
use tch::Tensor;

/// A loss registered by this test crate.
#[builder(name = "ScaledL1", kind = loss, aliases = ["scaled_l1"])]
#[auto_init]
pub struct ScaledL1 {
    /// Factor on the absolute error.
    #[key(default = 2.0)]
    pub factor: f64,
}

impl ElementwiseLoss for ScaledL1 {
    fn elementwise(&self, p: &Tensor, t: &Tensor) -> Tensor {
        (p - t).abs() * self.factor
    }
}

#[test]
fn lookup_by_name_and_alias() {
    let r = registry::lookup(Kind::Loss, "ScaledL1").unwrap();
    assert_eq!(r.krate, "nequip-core");
    assert!(r.file.ends_with("tests/registry.rs"));
    assert_eq!(r.summary(), "A loss registered by this test crate.");
    assert!(std::ptr::eq(r, registry::lookup(Kind::Loss, "scaled_l1").unwrap()));
    assert!(r.factory::<kind::Loss>().is_some());
    assert!(r.factory::<kind::ModelBuilder>().is_none());
    assert!(registry::check().is_ok());
}

#[test]
fn unknown_names_list_registered_and_suggest() {
    let e = registry::lookup(Kind::Loss, "ScaledL").unwrap_err();
    match &e {
        RegistryError::Unknown { suggestion, registered, .. } => {
            assert_eq!(suggestion.as_deref(), Some("ScaledL1"));
            assert_eq!(registered, &vec!["ScaledL1".to_string()]);
        }
        e => panic!("{e}"),
    }
    assert_eq!(e.to_string(), "unknown loss `ScaledL` (did you mean `ScaledL1`?); registered losses: ScaledL1");
    let e = registry::lookup(Kind::Optimizer, "Adam").unwrap_err();
    assert_eq!(e.to_string(), "unknown optimizer `Adam`; registered optimizers: (none)");
}

#[test]
fn listing_is_sorted_and_kinds_parse() {
    let all = registry::all();
    let mut sorted: Vec<(Kind, &str)> = all.iter().map(|r| (r.kind, r.name)).collect();
    sorted.sort();
    assert_eq!(sorted, all.iter().map(|r| (r.kind, r.name)).collect::<Vec<_>>());
    assert_eq!(Kind::parse("losses"), Some(Kind::Loss));
    assert_eq!(Kind::parse("model_builders"), Some(Kind::ModelBuilder));
    assert_eq!(Kind::parse("lr-scheduler"), Some(Kind::LrScheduler));
    assert!(registry::known_key_names().contains(&"ScaledL1_factor".to_string()));
}

#[test]
fn loss_built_from_yaml_params() {
    let params: Mapping = [(Value::String("factor".into()), Value::from(3.0))].into_iter().collect();
    let loss = build_loss("ScaledL1", &params).unwrap();
    let v = loss.elementwise(&Tensor::from_slice(&[1.0f64, -2.0]), &Tensor::from_slice(&[0.5f64, 0.0]));
    assert_eq!(Vec::<f64>::try_from(&v).unwrap(), vec![1.5, 6.0]);
    // the class-name prefix works inside params too, as instantiate_from_cls_name
    let params: Mapping = [(Value::String("ScaledL1_factor".into()), Value::from(0.5))].into_iter().collect();
    let v = build_loss("ScaledL1", &params).unwrap().elementwise(&Tensor::from_slice(&[2.0f64]), &Tensor::from_slice(&[0.0f64]));
    assert_eq!(Vec::<f64>::try_from(&v).unwrap(), vec![1.0]);
    let bad: Mapping = [(Value::String("factor".into()), Value::from("big"))].into_iter().collect();
    let e = build_loss("ScaledL1", &bad).err().unwrap();
    assert!(e.to_string().contains("loss ScaledL1: key `loss params.factor` (for `factor`): invalid type: string \"big\", expected f64"), "{e}");
}
