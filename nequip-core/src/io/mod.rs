//! Files: `torch.save` checkpoints written by Python nequip (zip + pickle), nequip run
//! directories (`nequip import`), and the nequip-rs model file (safetensors + config).

pub mod checkpoint;
pub mod pickle;
pub mod model_file;
pub mod nequip_run;
