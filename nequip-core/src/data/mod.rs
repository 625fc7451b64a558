//! Atomic data: a port of `nequip/data/` (fields, neighbor lists, datasets, statistics, batching).
