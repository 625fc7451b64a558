//! Linker-pitfall guard: a crate that only names `nequip_plugins::link()` sees every built-in.
//! Fails if a built-in goes missing (not linked, renamed, or its registration removed).

use nequip_core::registry;

#[test]
fn every_builtin_is_registered_once() {
    nequip_plugins::link();
    registry::check().expect("no duplicate registrations");
    for (kind, name) in nequip_plugins::BUILTINS {
        let r = registry::lookup(*kind, name).unwrap_or_else(|e| panic!("built-in missing: {e}"));
        assert_eq!(r.krate, "nequip-plugins", "{name}");
    }
    // and nothing registered by nequip-plugins is missing from the list
    let listed: Vec<_> = registry::all().into_iter().filter(|r| r.krate == "nequip-plugins").map(|r| (r.kind, r.name)).collect();
    let mut expected: Vec<_> = nequip_plugins::BUILTINS.to_vec();
    expected.sort();
    assert_eq!(listed, expected);
}
