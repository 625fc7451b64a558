//! The field registry: which keys are per-node, per-edge or per-graph, which are integer ("long")
//! and which are rank-2 Cartesian tensors. Mirrors `register_fields` / `deregister_fields` and the
//! `_NODE_FIELDS`, `_EDGE_FIELDS`, `_GRAPH_FIELDS`, `_LONG_FIELDS`, `_CARTESIAN_TENSOR_FIELDS`
//! sets of `nequip/data/AtomicData.py` (nequip 0.6.2).
//!
//! The registry decides dtype coercion (long fields become `i64`), shape fixing (`[n]` node/edge
//! fields become `[n, 1]`), batching (graph fields get a new batch dimension) and the statistics
//! kind. A plugin extends it with [`register_fields`], e.g. from its registration function:
//!
//! ```
//! use nequip_core::data::fields::{register_fields, field_kind, FieldKind, FieldRegistration};
//! register_fields(&FieldRegistration {
//!     node: &["born_charges"],
//!     cartesian_tensor: &[("born_charges", "ij")],
//!     ..Default::default()
//! }).unwrap();
//! assert_eq!(field_kind("born_charges"), Some(FieldKind::Node));
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{OnceLock, RwLock};

use super::keys::*;

/// Where a field lives; decides how it is batched and which statistics apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    /// One row per atom (`[N, ...]`), concatenated when batching.
    Node,
    /// One row per edge (`[E, ...]`), concatenated when batching.
    Edge,
    /// One value per frame, stacked on a new batch dimension when batching.
    Graph,
}

/// Fields to add to the registry (all lists may be empty).
#[derive(Clone, Copy, Debug, Default)]
pub struct FieldRegistration<'a> {
    pub node: &'a [&'a str],
    pub edge: &'a [&'a str],
    pub graph: &'a [&'a str],
    pub long: &'a [&'a str],
    /// `(field, e3nn CartesianTensor formula)`, e.g. `("stress", "ij=ji")`; must be rank 2.
    pub cartesian_tensor: &'a [(&'a str, &'a str)],
}

#[derive(Clone, Debug, Default)]
struct Registry {
    node: BTreeSet<String>,
    edge: BTreeSet<String>,
    graph: BTreeSet<String>,
    long: BTreeSet<String>,
    cartesian: BTreeMap<String, String>,
}

const DEFAULT_LONG: &[&str] = &[EDGE_INDEX_KEY, ATOMIC_NUMBERS_KEY, ATOM_TYPE_KEY, BATCH_KEY];
const DEFAULT_NODE: &[&str] = &[
    POSITIONS_KEY,
    NODE_FEATURES_KEY,
    NODE_ATTRS_KEY,
    ATOMIC_NUMBERS_KEY,
    ATOM_TYPE_KEY,
    FORCE_KEY,
    PER_ATOM_ENERGY_KEY,
    BATCH_KEY,
];
const DEFAULT_EDGE: &[&str] = &[
    EDGE_CELL_SHIFT_KEY,
    EDGE_VECTORS_KEY,
    EDGE_LENGTH_KEY,
    EDGE_ATTRS_KEY,
    EDGE_EMBEDDING_KEY,
    EDGE_FEATURES_KEY,
    EDGE_CUTOFF_KEY,
    EDGE_ENERGY_KEY,
];
const DEFAULT_GRAPH: &[&str] = &[
    TOTAL_ENERGY_KEY,
    STRESS_KEY,
    VIRIAL_KEY,
    PBC_KEY,
    CELL_KEY,
    BATCH_PTR_KEY,
];
const DEFAULT_CARTESIAN: &[(&str, &str)] = &[(STRESS_KEY, "ij=ji"), (VIRIAL_KEY, "ij=ji")];

fn registry() -> &'static RwLock<Registry> {
    static REG: OnceLock<RwLock<Registry>> = OnceLock::new();
    REG.get_or_init(|| {
        let set = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        RwLock::new(Registry {
            node: set(DEFAULT_NODE),
            edge: set(DEFAULT_EDGE),
            graph: set(DEFAULT_GRAPH),
            long: set(DEFAULT_LONG),
            cartesian: DEFAULT_CARTESIAN
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    })
}

fn read() -> std::sync::RwLockReadGuard<'static, Registry> {
    registry().read().unwrap_or_else(|e| e.into_inner())
}

/// Error of a field (de)registration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FieldError {
    #[error("field `{field}` cannot be registered as {new:?}: it is already a {existing:?} field")]
    Conflict {
        field: String,
        existing: FieldKind,
        new: FieldKind,
    },
    #[error("Cartesian tensor field `{field}` has formula `{formula}` of rank {rank}; only rank-2 tensors are supported")]
    NotRank2 {
        field: String,
        formula: String,
        rank: usize,
    },
    #[error("cannot deregister built-in field `{0}`")]
    BuiltIn(String),
}

/// Rank of an e3nn `CartesianTensor` formula such as `ij=ji` (number of distinct index letters
/// of its first term).
fn formula_rank(formula: &str) -> usize {
    let first = formula.split('=').next().unwrap_or("");
    first
        .chars()
        .filter(|c| c.is_alphabetic())
        .collect::<BTreeSet<_>>()
        .len()
}

/// Adds fields to the registry (nequip's `register_fields`). Fails, changing nothing, if a field
/// would be in two of node/edge/graph, or a Cartesian tensor is not rank 2.
pub fn register_fields(reg: &FieldRegistration<'_>) -> Result<(), FieldError> {
    let mut r = registry().write().unwrap_or_else(|e| e.into_inner());
    let groups = [
        (FieldKind::Node, reg.node),
        (FieldKind::Edge, reg.edge),
        (FieldKind::Graph, reg.graph),
    ];
    for (kind, names) in groups {
        for name in names {
            for (other, other_names) in groups {
                if other != kind && other_names.contains(name) {
                    return Err(FieldError::Conflict {
                        field: name.to_string(),
                        existing: other,
                        new: kind,
                    });
                }
            }
            if let Some(existing) = kind_in(&r, name) {
                if existing != kind {
                    return Err(FieldError::Conflict {
                        field: name.to_string(),
                        existing,
                        new: kind,
                    });
                }
            }
        }
    }
    for (field, formula) in reg.cartesian_tensor {
        let rank = formula_rank(formula);
        if rank != 2 {
            return Err(FieldError::NotRank2 {
                field: field.to_string(),
                formula: formula.to_string(),
                rank,
            });
        }
    }
    let add = |set: &mut BTreeSet<String>, l: &[&str]| set.extend(l.iter().map(|s| s.to_string()));
    add(&mut r.node, reg.node);
    add(&mut r.edge, reg.edge);
    add(&mut r.graph, reg.graph);
    add(&mut r.long, reg.long);
    for (k, v) in reg.cartesian_tensor {
        r.cartesian.insert(k.to_string(), v.to_string());
    }
    Ok(())
}

/// Removes non-built-in fields from every category (nequip's `deregister_fields`); unknown
/// names are ignored.
pub fn deregister_fields(fields: &[&str]) -> Result<(), FieldError> {
    for f in fields {
        let builtin = [DEFAULT_NODE, DEFAULT_EDGE, DEFAULT_GRAPH, DEFAULT_LONG]
            .iter()
            .any(|l| l.contains(f))
            || DEFAULT_CARTESIAN.iter().any(|(k, _)| k == f);
        if builtin {
            return Err(FieldError::BuiltIn(f.to_string()));
        }
    }
    let mut r = registry().write().unwrap_or_else(|e| e.into_inner());
    for f in fields {
        r.node.remove(*f);
        r.edge.remove(*f);
        r.graph.remove(*f);
        r.long.remove(*f);
        r.cartesian.remove(*f);
    }
    Ok(())
}

fn kind_in(r: &Registry, name: &str) -> Option<FieldKind> {
    if r.node.contains(name) {
        Some(FieldKind::Node)
    } else if r.edge.contains(name) {
        Some(FieldKind::Edge)
    } else if r.graph.contains(name) {
        Some(FieldKind::Graph)
    } else {
        None
    }
}

/// The kind of a registered field, `None` for unregistered ones (and `edge_index`, which is
/// special: batched along dimension 1).
pub fn field_kind(name: &str) -> Option<FieldKind> {
    kind_in(&read(), name)
}

/// Whether the field holds integers (stored as `i64`).
pub fn is_long(name: &str) -> bool {
    read().long.contains(name)
}

/// The Cartesian tensor formula of a field, if it is registered as one.
pub fn cartesian_tensor_formula(name: &str) -> Option<String> {
    read().cartesian.get(name).cloned()
}

/// All registered fields of a kind, sorted.
pub fn fields_of_kind(kind: FieldKind) -> Vec<String> {
    let r = read();
    let set = match kind {
        FieldKind::Node => &r.node,
        FieldKind::Edge => &r.edge,
        FieldKind::Graph => &r.graph,
    };
    set.iter().cloned().collect()
}
