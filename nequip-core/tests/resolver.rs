//! Golden tests of the key resolver against nequip 0.6.2's `tests/unit/utils/test_instantiate.py`
//! (same builders, same parameter grid, same expectations) and the worked examples of its
//! docs (layer prefixes, nested builders, cycles, missing keys).
//!
//! Nested builders are looked up in the registry; the test builders are registered here with
//! `kind = loss` only because every registration needs a kind with a factory (any kind works).

use nequip_core::config::{resolve, yaml, Args, AutoInit, Config, Mapping, Origin, Request, ResolveError, Value};
use nequip_core::train::loss::ElementwiseLoss;
use tch::Tensor;

macro_rules! test_builder {
    ($name:literal, $ty:ident { $($body:tt)* }) => {
        #[nequip_core::builder(name = $name, kind = loss)]
        #[nequip_core::auto_init]
        #[derive(Debug)]
        #[allow(dead_code)]
        struct $ty { $($body)* }
        impl ElementwiseLoss for $ty {
            fn elementwise(&self, p: &Tensor, t: &Tensor) -> Tensor { p - t }
        }
    };
}

test_builder!("SimpleExample", SimpleExample {
    a: i64,
    #[key(default = 1)]
    b: i64,
    #[key(default = 31)]
    d: i64,
});

test_builder!("NestedExample", NestedExample {
    #[key(kind = loss)]
    cls_c: Option<String>,
    a: i64,
    #[key(default = Mapping::new())]
    cls_c_kwargs: Mapping,
    #[key(default = 37)]
    d: i64,
});

test_builder!("A", AExample {
    #[key(kind = loss)]
    cls_a: Option<String>,
    #[key(default = Mapping::new())]
    cls_a_kwargs: Mapping,
});

test_builder!("B", BExample {
    #[key(kind = loss)]
    cls_b: Option<String>,
    #[key(default = Mapping::new())]
    cls_b_kwargs: Mapping,
});

test_builder!("C", CExample {
    #[key(kind = loss)]
    cls_c: Option<String>,
    #[key(default = Mapping::new())]
    cls_c_kwargs: Mapping,
});

test_builder!("BadKwargs2", BadKwargs2 {
    #[key(default = "a string", kind = loss)]
    thing: Option<String>,
    #[key(default = Mapping::new())]
    thing_kwargs: Mapping,
});

fn map(pairs: &[(&str, i64)]) -> Mapping {
    pairs.iter().map(|(k, v)| (Value::String(k.to_string()), Value::Number((*v).into()))).collect()
}

fn int(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_i64)
}

fn req<'a, T: AutoInit>(name: &'a str, prefix: &str) -> Request<'a> {
    let mut r = Request::new(name, name, T::KEYS);
    r.class_prefix = true;
    r.prefixes.push(prefix.to_string());
    r
}

/// `test_simple_init`: every combination of positional / optional / all args, with and without
/// the prefix on all_args; the value follows the priority, the key mapping names the source.
#[test]
fn simple_init_priority_grid() {
    let positional = [map(&[("a", 3), ("b", 4)]), map(&[("a", 5)]), map(&[])];
    let optional = [map(&[("a", 3), ("b", 4)]), map(&[("a", 5)]), map(&[])];
    let all = [map(&[("a", 6), ("b", 7)]), map(&[("a", 8)]), map(&[])];
    let mut cases = 0;
    for pos in &positional {
        for opt in &optional {
            for al in &all {
                for prefix in [true, false] {
                    let mut union = Mapping::new();
                    for m in [al, opt, pos] {
                        for (k, v) in m {
                            union.insert(k.clone(), v.clone());
                        }
                    }
                    if !union.contains_key("a") {
                        continue;
                    }
                    cases += 1;
                    let all_args: Mapping = if prefix {
                        al.iter().map(|(k, v)| (Value::String(format!("simple_example_{}", k.as_str().unwrap())), v.clone())).collect()
                    } else {
                        al.clone()
                    };
                    let mut r = req::<SimpleExample>("SimpleExample", "simple_example")
                        .optional(Args::Map { map: opt, name: "optional" })
                        .all(Args::Map { map: &all_args, name: "all" });
                    r.positional = pos.clone();
                    let res = resolve(&r).unwrap();
                    // priority
                    assert_eq!(int(res.get("a")), int(union.get("a")));
                    assert_eq!(int(res.get("b")), int(union.get("b")).or(Some(1)));
                    assert_eq!(int(res.get("d")), Some(31));
                    // key mapping: where each value was found
                    for (k, v) in &res.values {
                        match &v.origin {
                            Origin::Positional => assert!(pos.contains_key(k.as_str())),
                            Origin::Found { found_as, optional: true, .. } => assert_eq!(found_as, &format!("optional.{k}")),
                            Origin::Found { found_as, optional: false, .. } => {
                                let expect = if prefix { format!("all.simple_example_{k}") } else { format!("all.{k}") };
                                assert_eq!(found_as, &expect);
                            }
                            Origin::Default => assert!(!union.contains_key(k.as_str()) && k != "a"),
                            Origin::Nested => panic!("no nested builder here"),
                        }
                    }
                    // resolving again from the resolved parameters gives plain names only
                    let params = res.to_mapping();
                    let again = resolve(&req::<SimpleExample>("SimpleExample", "simple_example").all(Args::Map { map: &params, name: "all" })).unwrap();
                    for (k, v) in &again.values {
                        assert_eq!(v.origin, Origin::Found { found_as: format!("all.{k}"), optional: false, source: None });
                    }
                    // and the typed struct holds the same numbers
                    let typed: SimpleExample = res.into_typed().unwrap();
                    assert_eq!((Some(typed.a), Some(typed.b)), (int(union.get("a")), int(union.get("b")).or(Some(1))));
                }
            }
        }
    }
    assert_eq!(cases, 52);
}

/// `test_prefix_priority`
#[test]
fn prefixed_key_beats_plain_key() {
    let args = map(&[("prefix_a", 3), ("a", 4)]);
    let r = resolve(&req::<SimpleExample>("SimpleExample", "prefix").all(Args::Map { map: &args, name: "all" })).unwrap();
    assert_eq!(int(r.get("a")), Some(3));
}

/// `test_nested_kwargs` + `test_default`: the nested builder gets its own defaults, the parent
/// its own (`d` = 31 below, 37 above), and `a` reaches both.
#[test]
fn nested_kwargs_and_unshared_defaults() {
    let opt = map(&[("a", 11)]);
    let r = req::<NestedExample>("NestedExample", "prefix")
        .positional("cls_c", Value::String("SimpleExample".into()))
        .optional(Args::Map { map: &opt, name: "optional" });
    let res = resolve(&r).unwrap();
    assert_eq!(int(res.get("d")), Some(37));
    let kw = res.get("cls_c_kwargs").unwrap();
    assert_eq!(int(kw.get("a")), Some(11));
    assert_eq!(int(kw.get("d")), Some(31));
    assert_eq!(int(kw.get("b")), Some(1));
    assert_eq!(res.nested["cls_c"].builder, "SimpleExample");
}

/// `test_deep_nests`: three levels, then rebuilding from the returned parameters gives the same.
#[test]
fn deep_nests() {
    let all = map(&[("a", 101), ("b", 103), ("c", 107)]);
    let opt: Mapping = [("cls_c", "A"), ("cls_a", "B"), ("cls_b", "SimpleExample")]
        .iter()
        .map(|(k, v)| (Value::String(k.to_string()), Value::String(v.to_string())))
        .collect();
    let mut r = Request::new("NestedExample", "NestedExample", NestedExample::KEYS)
        .optional(Args::Map { map: &opt, name: "optional" })
        .all(Args::Map { map: &all, name: "all" });
    r.class_prefix = true;
    let res = resolve(&r).unwrap();
    let leaf = &res.get("cls_c_kwargs").unwrap()["cls_a_kwargs"]["cls_b_kwargs"];
    assert_eq!(int(leaf.get("a")), Some(101));
    assert_eq!(int(leaf.get("b")), Some(103));
    assert_eq!(int(leaf.get("d")), Some(31));
    assert_eq!(int(res.get("d")), Some(37));
    // rebuild from the resolved params alone
    let params = res.to_mapping();
    let mut r2 = Request::new("NestedExample", "NestedExample", NestedExample::KEYS).optional(Args::Map { map: &params, name: "optional" });
    r2.class_prefix = true;
    let res2 = resolve(&r2).unwrap();
    assert_eq!(res2.get("cls_c_kwargs"), res.get("cls_c_kwargs"));
    assert_eq!(int(res2.get("d")), Some(37));
}

/// `test_recursion_nests` and `test_cyclic_nests`
#[test]
fn cycles_are_errors() {
    let opt: Mapping = [(Value::String("cls_b".into()), Value::String("A".into()))].into_iter().collect();
    let mut r = Request::new("A", "A", AExample::KEYS).positional("cls_a", Value::String("B".into())).optional(Args::Map { map: &opt, name: "optional" });
    r.class_prefix = true;
    let e = resolve(&r).unwrap_err();
    assert_eq!(e, ResolveError::Cyclic { chain: vec!["A".into(), "B".into(), "A".into()] });
    assert!(e.to_string().contains("cyclic"));

    let opt: Mapping = [(Value::String("cls_b".into()), Value::String("C".into()))].into_iter().collect();
    let all: Mapping = [(Value::String("cls_c".into()), Value::String("A".into()))].into_iter().collect();
    let mut r = Request::new("A", "A", AExample::KEYS)
        .positional("cls_a", Value::String("B".into()))
        .optional(Args::Map { map: &opt, name: "optional" })
        .all(Args::Map { map: &all, name: "all" });
    r.class_prefix = true;
    let e = resolve(&r).unwrap_err();
    assert_eq!(e, ResolveError::Cyclic { chain: vec!["A".into(), "B".into(), "C".into(), "A".into()] });
}

/// `test_bad_kwargs` (BadKwargs2): a nested-builder value that is not a builder is an error.
/// (BadKwargs1, `x_kwargs` without `x`, is a compile error: see macros/tests/ui.)
#[test]
fn nested_value_that_is_not_a_builder() {
    let r = Request::new("BadKwargs2", "BadKwargs2", BadKwargs2::KEYS);
    match resolve(&r).unwrap_err() {
        ResolveError::UnknownNested { name, key, .. } => assert_eq!((name.as_str(), key.as_str()), ("a string", "thing")),
        e => panic!("unexpected {e}"),
    }
    let all = map(&[("thing", 3)]);
    let e = resolve(&Request::new("BadKwargs2", "BadKwargs2", BadKwargs2::KEYS).all(Args::Map { map: &all, name: "all" })).unwrap_err();
    assert_eq!(e.to_string(), "BadKwargs2: `thing` must name a loss builder (or be null), found 3");
}

// ---- the worked examples of nequip's docs: layer prefixes through nested builders ----

test_builder!("InteractionBlock", InteractionBlock {
    #[key(default = 1)]
    invariant_layers: i64,
    #[key(default = 8)]
    invariant_neurons: i64,
    #[key(default = true)]
    use_sc: bool,
});

test_builder!("ConvNetLayer", ConvNetLayer {
    #[key(default = "InteractionBlock", kind = loss)]
    convolution: Option<String>,
    #[key(default = Mapping::new())]
    convolution_kwargs: Mapping,
    #[key(default = false)]
    resnet: bool,
    num_basis: i64,
});

fn conv_layer(config: &Config, i: usize) -> Result<nequip_core::config::Resolution, ResolveError> {
    let mut r = Request::new(format!("layer{i}_convnet"), "ConvNetLayer", ConvNetLayer::KEYS).all(Args::Config(config)).prefix(format!("layer{i}_convnet"));
    r.class_prefix = true;
    resolve(&r)
}

fn config(text: &str) -> Config {
    Config::from_yaml_str(text, "test.yaml").unwrap()
}

/// Example A: `{invariant_neurons: 3, InteractionBlock_invariant_neurons: 5,
/// layer1_convnet_invariant_neurons: 7}` → layers 0 and 2 get 5, layer 1 gets 7;
/// `layer1_convnet_use_sc` only changes layer 1; `layer0_convnet_convolution_invariant_layers` only layer 0.
#[test]
fn layer_prefixes_reach_nested_builders() {
    let c = config("num_basis: 8\ninvariant_neurons: 3\nInteractionBlock_invariant_neurons: 5\nlayer1_convnet_invariant_neurons: 7\nlayer1_convnet_use_sc: false\nlayer0_convnet_convolution_invariant_layers: 3\n");
    let got: Vec<(i64, bool, i64)> = (0..3)
        .map(|i| {
            let r = conv_layer(&c, i).unwrap();
            let kw = r.get("convolution_kwargs").unwrap();
            (int(kw.get("invariant_neurons")).unwrap(), kw["use_sc"].as_bool().unwrap(), int(kw.get("invariant_layers")).unwrap())
        })
        .collect();
    assert_eq!(got, vec![(5, true, 3), (7, false, 1), (5, true, 1)]);
    // every key given was consumed; the overridden generic key too (nequip would call it unused)
    assert!(c.unused_keys([]).is_empty(), "{:?}", c.unused_keys([]));
    let usage = c.usage_snapshot();
    assert!(usage["invariant_neurons"].iter().all(|u| !u.won));
    assert!(usage["layer1_convnet_invariant_neurons"].iter().any(|u| u.won));
}

test_builder!("BesselBasis", BesselBasis {
    r_max: f64,
    #[key(default = 8)]
    num_basis: i64,
    #[key(default = true)]
    trainable: bool,
});

test_builder!("PolynomialCutoff", PolynomialCutoff {
    r_max: f64,
    #[key(default = 6.0)]
    p: f64,
});

test_builder!("RadialBasisEdgeEncoding", RadialBasisEdgeEncoding {
    #[key(default = "BesselBasis", kind = loss)]
    basis: Option<String>,
    #[key(default = "PolynomialCutoff", kind = loss)]
    cutoff: Option<String>,
    #[key(default = Mapping::new())]
    basis_kwargs: Mapping,
    #[key(default = Mapping::new())]
    cutoff_kwargs: Mapping,
});

/// Example B: `{PolynomialCutoff_p: 3, radial_basis_cutoff_p: 5}` gives p = 5; `BesselBasis_trainable`,
/// `r_max` and `num_basis` reach the basis.
#[test]
fn radial_basis_example() {
    let c = config("r_max: 4.0\nnum_basis: 10\nBesselBasis_trainable: false\nPolynomialCutoff_p: 3\nradial_basis_cutoff_p: 5\n");
    let mut r = Request::new("radial_basis", "RadialBasisEdgeEncoding", RadialBasisEdgeEncoding::KEYS).all(Args::Config(&c)).prefix("radial_basis");
    r.class_prefix = true;
    let res = resolve(&r).unwrap();
    let basis = res.get("basis_kwargs").unwrap();
    assert_eq!(yaml::render(basis), "{r_max: 4.0, num_basis: 10, trainable: false}");
    let cutoff = res.get("cutoff_kwargs").unwrap();
    assert_eq!(yaml::render(cutoff), "{r_max: 4.0, p: 5}");
    match &res.nested["cutoff"].values["p"].origin {
        Origin::Found { found_as, .. } => assert_eq!(found_as, "radial_basis_cutoff_p"),
        o => panic!("{o:?}"),
    }
}

/// A missing required key reports every name searched, highest priority first.
#[test]
fn missing_key_lists_searched_names() {
    let c = config("r_max: 4.0\n");
    let e = conv_layer(&c, 0).unwrap_err();
    assert_eq!(e.to_string(), "layer0_convnet: missing num_basis (looked for layer0_convnet_num_basis, ConvNetLayer_num_basis, num_basis)");
}

/// An explicit `x_kwargs` value is merged over the nested resolution.
#[test]
fn explicit_kwargs_win_over_nested_resolution() {
    let c = config("num_basis: 8\ninvariant_neurons: 3\nlayer0_convnet_convolution_kwargs: {invariant_neurons: 99}\n");
    let r = conv_layer(&c, 0).unwrap();
    assert_eq!(int(r.get("convolution_kwargs").unwrap().get("invariant_neurons")), Some(99));
}

/// `p_kwargs` dicts: `optimizer_kwargs.amsgrad` beats `optimizer_amsgrad` (nequip: kwargs after key).
#[test]
fn prefix_kwargs_dict_beats_prefixed_key() {
    let c = config("a: 1\nsimple_example_a: 2\nsimple_example_kwargs: {a: 3}\n");
    let r = resolve(&req::<SimpleExample>("SimpleExample", "simple_example").all(Args::Config(&c))).unwrap();
    assert_eq!(int(r.get("a")), Some(3));
    match &r.values["a"].origin {
        Origin::Found { found_as, .. } => assert_eq!(found_as, "simple_example_kwargs.a"),
        o => panic!("{o:?}"),
    }
}

/// Type errors name the component, the key as found, the file position and the value.
#[test]
fn type_errors_name_key_and_place() {
    let c = Config::from_yaml_str("r_max: 4.0\nnum_basis: 8\nBesselBasis_num_basis: eight\n", "cfg.yaml").unwrap();
    let mut r = Request::new("radial", "BesselBasis", BesselBasis::KEYS).all(Args::Config(&c));
    r.class_prefix = true;
    let e = resolve(&r).unwrap().into_typed::<BesselBasis>().unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("cfg.yaml:3:1: radial: key `BesselBasis_num_basis` (for `num_basis`): invalid type: string \"eight\", expected i64"), "{msg}");
}
