//! Field names of atomic data. Mirrors `nequip/data/_keys.py` (nequip 0.6.2).
//!
//! The strings are nequip's, so configs, checkpoints and plugins written for nequip keep working.

/// `[N, 3]` float: positions of the atoms.
pub const POSITIONS_KEY: &str = "pos";
/// `[2, E]` long: `edge_index[0]` is the centre atom, `edge_index[1]` the neighbour.
pub const EDGE_INDEX_KEY: &str = "edge_index";
/// `[E, 3]` float: integer number of cell vectors each edge crosses.
pub const EDGE_CELL_SHIFT_KEY: &str = "edge_cell_shift";
/// `[3, 3]` per frame (`[B, 3, 3]` batched); rows are the lattice vectors.
pub const CELL_KEY: &str = "cell";
/// `[3]` bool per frame (`[B, 3]` batched).
pub const PBC_KEY: &str = "pbc";
/// `[N, 1]` long: atomic numbers Z.
pub const ATOMIC_NUMBERS_KEY: &str = "atomic_numbers";
/// `[N, 1]` long: type indices `0..num_types`.
pub const ATOM_TYPE_KEY: &str = "atom_types";

/// `[E, 3]` edge vectors `pos[j] - pos[i] + shift · cell`.
pub const EDGE_VECTORS_KEY: &str = "edge_vectors";
/// `[E]` edge lengths.
pub const EDGE_LENGTH_KEY: &str = "edge_lengths";
/// `[E, d]` (equivariant) edge attributes.
pub const EDGE_ATTRS_KEY: &str = "edge_attrs";
/// `[E, d]` invariant edge embedding.
pub const EDGE_EMBEDDING_KEY: &str = "edge_embedding";
/// `[E, d]` edge features.
pub const EDGE_FEATURES_KEY: &str = "edge_features";
/// `[E, 1]` cutoff envelope value.
pub const EDGE_CUTOFF_KEY: &str = "edge_cutoff";
/// `[E, 1]` edge energy (Allegro).
pub const EDGE_ENERGY_KEY: &str = "edge_energy";

/// `[N, d]` node features.
pub const NODE_FEATURES_KEY: &str = "node_features";
/// `[N, d]` node attributes (one-hot species).
pub const NODE_ATTRS_KEY: &str = "node_attrs";

/// `[N, 1]` per-atom energy.
pub const PER_ATOM_ENERGY_KEY: &str = "atomic_energy";
/// `[1]` per frame (`[B, 1]` batched) total energy.
pub const TOTAL_ENERGY_KEY: &str = "total_energy";
/// `[N, 3]` forces.
pub const FORCE_KEY: &str = "forces";
/// `[N, N, 3]` partial forces.
pub const PARTIAL_FORCE_KEY: &str = "partial_forces";
/// `[3, 3]` per frame stress.
pub const STRESS_KEY: &str = "stress";
/// `[3, 3]` per frame virial.
pub const VIRIAL_KEY: &str = "virial";

/// `[N]` long: frame index of each atom in a batch.
pub const BATCH_KEY: &str = "batch";
/// `[B + 1]` long: offsets of the frames' atoms in a batch.
pub const BATCH_PTR_KEY: &str = "ptr";

/// nequip's `BASIC_STRUCTURE_KEYS`.
pub const BASIC_STRUCTURE_KEYS: [&str; 7] = [
    POSITIONS_KEY,
    EDGE_INDEX_KEY,
    EDGE_CELL_SHIFT_KEY,
    CELL_KEY,
    PBC_KEY,
    ATOM_TYPE_KEY,
    ATOMIC_NUMBERS_KEY,
];

/// nequip's `ALL_ENERGY_KEYS`.
pub const ALL_ENERGY_KEYS: [&str; 7] = [
    EDGE_ENERGY_KEY,
    PER_ATOM_ENERGY_KEY,
    TOTAL_ENERGY_KEY,
    FORCE_KEY,
    PARTIAL_FORCE_KEY,
    STRESS_KEY,
    VIRIAL_KEY,
];
