//! Model builders (`nequip/model/`).

pub mod simple_irreps;
