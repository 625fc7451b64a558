//! NequIP's neural-network building blocks (`nequip/nn/`). This part: the edge embedding math
//! (radial basis, cutoff, one-hot species); the graph modules and their registration build on it.

pub mod radial;
