//! Reading files written by Python nequip / torch: `torch.save` checkpoints (zip + pickle).

pub mod checkpoint;
pub mod pickle;
