//! Two registrations with one name: an error naming both sources (own test binary, so the
//! duplicate does not disturb the other tests).

use nequip_core::registry::{self, Kind, RegistryError};
use nequip_core::train::loss::ElementwiseLoss;
use nequip_core::{auto_init, builder};
use tch::Tensor;

macro_rules! twin {
    ($ty:ident) => {
        #[builder(name = "Twin", kind = loss)]
        #[auto_init]
        pub struct $ty {}
        impl ElementwiseLoss for $ty {
            fn elementwise(&self, p: &Tensor, _: &Tensor) -> Tensor {
                p.shallow_clone()
            }
        }
    };
}
twin!(TwinA);
twin!(TwinB);

#[test]
fn duplicate_names_are_reported_with_both_sources() {
    let errs = registry::check().unwrap_err();
    assert_eq!(errs.len(), 1);
    match &errs[0] {
        RegistryError::Duplicate { kind, name, first, second } => {
            assert_eq!((*kind, name.as_str()), (Kind::Loss, "Twin"));
            assert!(first.starts_with("nequip-core (nequip-core/tests/registry_duplicates.rs:"), "{first}");
            assert!(second.starts_with("nequip-core (nequip-core/tests/registry_duplicates.rs:"), "{second}");
        }
        e => panic!("{e}"),
    }
    assert!(errs[0].to_string().starts_with("duplicate loss name `Twin`: registered by nequip-core"));
}
