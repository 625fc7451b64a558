//! nequip-plugins: every built-in of nequip-rs, registered through the same public macros
//! (`nequip_core::builder`, `nequip_core::auto_init`) a downstream crate uses, and the CLI.
//!
//! | module | registers | mirrors |
//! |---|---|---|
//! | [`model`] | model builders (`SimpleIrrepsConfig`, ...) | `nequip/model/` |
//! | [`nn`] | graph modules (`OneHotAtomEncoding`, `AtomwiseLinear`, `ConvNetLayer`, ...) and radial functions | `nequip/nn/` |
//! | [`optim`] | optimizers (`Adam`, `AdamW`, `SGD`, `RMSprop`) and schedulers (`ReduceLROnPlateau`, `CosineAnnealingWarmRestarts`) | `torch.optim` |
//! | [`data`] | datasets (`NpzDataset`/`npz`, `ASEDataset`/`ase`) | `nequip/data/dataset.py` |
//! | [`losses`] | element-wise losses (`MSELoss`, `L1Loss`, `HuberLoss`, ...) | `torch.nn` losses used by `nequip/train/_loss.py` |
//! | [`cli`] | the `nequip` command | `nequip/scripts/` |
//!
//! **Linking.** A binary must name this crate for its registrations to be linked: call
//! [`link`] (the `nequip` binary and [`cli::main`] do). A downstream crate defines its own
//! `link()` the same way and calls both before running the CLI.

// The error enums carry their context (file, key, position, searched names) by value and are
// only built on failure paths, so their size is not worth boxing.
#![allow(clippy::result_large_err)]

pub mod cli;
pub mod data;
pub mod losses;
pub mod model;
pub mod nn;
pub mod optim;
pub mod plot;

/// Anchor: calling this guarantees the linker keeps this crate and all its registrations.
#[inline(never)]
pub fn link() {
    std::hint::black_box(());
}

/// The built-ins this crate registers, `(kind, name)`; a test asserts each one is present.
pub const BUILTINS: &[(nequip_core::registry::Kind, &str)] = {
    use nequip_core::registry::Kind::*;
    &[
        (ModelBuilder, "SimpleIrrepsConfig"),
        (ModelBuilder, "EnergyModel"),
        (ModelBuilder, "PerSpeciesRescale"),
        (ModelBuilder, "RescaleEnergyEtc"),
        (ModelBuilder, "ForceOutput"),
        (ModelBuilder, "PartialForceOutput"),
        (ModelBuilder, "StressForceOutput"),
        (ModelBuilder, "initialize_from_state"),
        (ModelBuilder, "load_model_state"),
        (NnModule, "OneHotAtomEncoding"),
        (NnModule, "SphericalHarmonicEdgeAttrs"),
        (NnModule, "RadialBasisEdgeEncoding"),
        (NnModule, "AddRadialCutoffToData"),
        (NnModule, "AtomwiseLinear"),
        (NnModule, "AtomwiseReduce"),
        (NnModule, "PerSpeciesScaleShift"),
        (NnModule, "InteractionBlock"),
        (NnModule, "ConvNetLayer"),
        (RadialFunction, "BesselBasis"),
        (RadialFunction, "PolynomialCutoff"),
        (RadialFunction, "e3nn_basis"),
        (ModelBuilder, "PairPotentialTerm"),
        (ModelBuilder, "PairPotential"),
        (NnModule, "SimpleLennardJones"),
        (NnModule, "LennardJones"),
        (NnModule, "ZBL"),
        (Dataset, "ASEDataset"),
        (Dataset, "NpzDataset"),
        (Optimizer, "Adam"),
        (Optimizer, "AdamW"),
        (Optimizer, "SGD"),
        (Optimizer, "RMSprop"),
        (LrScheduler, "ReduceLROnPlateau"),
        (LrScheduler, "CosineAnnealingWarmRestarts"),
        (Loss, "MSELoss"),
        (Loss, "L1Loss"),
        (Loss, "HuberLoss"),
        (Loss, "SmoothL1Loss"),
    ]
};
