//! NequIP's neural-network building blocks (`nequip/nn/`): the edge embedding math (radial
//! basis, cutoff, one-hot species), the interaction block and the convolution layer, as plain
//! structs on tch tensors. The graph modules (irreps dictionaries, registration, model
//! builders) wrap these.

pub mod convnet;
pub mod interaction;
pub mod radial;
