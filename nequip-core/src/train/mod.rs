//! Training: a port of `nequip/train/` (this part: the key tables and element-wise losses).

pub mod loss;
pub mod loss_coeffs;
pub mod options;
