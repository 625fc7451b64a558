//! Force and stress wrappers: port of `nequip/model/_grads.py` (nequip 0.6.2).

use nequip_core::data::keys::*;
use nequip_core::nn::grad_output::{GradientOutput, PartialForceOutput, StressOutput};
use nequip_core::nn::GraphModule;
use nequip_core::registry::BuildError;
use nequip_core::builder;

fn no_forces_yet(model: &dyn GraphModule, builder: &str) -> Result<(), BuildError> {
    if model.irreps_out().contains_key(FORCE_KEY) {
        return Err(BuildError::Invalid { builder: builder.into(), message: "the model already has forces: use only one of ForceOutput, PartialForceOutput and StressForceOutput".into() });
    }
    Ok(())
}

/// Forces `F = −∂E/∂pos` by autograd (`GradientOutput`).
#[builder(name = "ForceOutput", kind = model_builder)]
pub fn force_output(model: Box<dyn GraphModule>) -> Result<Box<dyn GraphModule>, BuildError> {
    no_forces_yet(model.as_ref(), "ForceOutput")?;
    Ok(Box::new(GradientOutput::new(model, TOTAL_ENERGY_KEY, &[POSITIONS_KEY], Some(&[FORCE_KEY]), -1.0)?))
}

/// Partial forces `−∂E_i/∂r_j` `[N, N, 3]` and forces (per-atom-energy Jacobian).
#[builder(name = "PartialForceOutput", kind = model_builder)]
pub fn partial_force_output(model: Box<dyn GraphModule>) -> Result<Box<dyn GraphModule>, BuildError> {
    no_forces_yet(model.as_ref(), "PartialForceOutput")?;
    Ok(Box::new(PartialForceOutput::new(model)?))
}

/// Forces, virial and stress by a symmetric strain derivative (`StressOutput`).
#[builder(name = "StressForceOutput", kind = model_builder)]
pub fn stress_force_output(model: Box<dyn GraphModule>) -> Result<Box<dyn GraphModule>, BuildError> {
    no_forces_yet(model.as_ref(), "StressForceOutput")?;
    Ok(Box::new(StressOutput::new(model)?))
}
