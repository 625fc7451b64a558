//! Equivariant operations: a port of the parts of e3nn 0.5.9 that NequIP uses
//! (`e3nn/o3/`, `e3nn/nn/`, `e3nn/math/`), on tch tensors with autograd.
