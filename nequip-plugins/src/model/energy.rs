//! `EnergyModel`: port of `nequip/model/_eng.py::EnergyModel` with
//! `nequip/model/builder_utils.py::add_avg_num_neighbors` (nequip 0.6.2).
//!
//! Layers (each built from the config with its layer name as key prefix): `one_hot`,
//! `spharm_edges`, `radial_basis`, `chemical_embedding`, `layer{i}_convnet` (i < num_layers),
//! `conv_to_output_hidden`, `output_hidden_to_scalar` (→ `atomic_energy`), `total_energy_sum`.

use nequip_core::config::{Config, Source, Value};
use nequip_core::data::keys::*;
use nequip_core::data::statistics::avg_num_neighbors;
use nequip_core::model::module_context;
use nequip_core::nn::{GraphModule, IrrepsDict, LayerSpec, SequentialGraphNetwork};
use nequip_core::registry::{BuildError, TrainingSet};
use nequip_core::{auto_init, builder};

/// Keys of `EnergyModel`.
#[auto_init]
pub struct EnergyModelKeys {
    /// Number of interaction (ConvNetLayer) layers.
    #[key(default = 3)]
    pub num_layers: i64,
}

fn invalid(builder: &str, message: impl Into<String>) -> BuildError {
    BuildError::Invalid { builder: builder.into(), message: message.into() }
}

/// nequip's `add_avg_num_neighbors`: `avg_num_neighbors: auto` (the default) is computed on
/// the training set (with `dataset_statistics_stride`) and written back into the config with
/// `var_num_neighbors`; a number or `null` is kept.
pub fn add_avg_num_neighbors(config: &mut Config, initialize: bool, dataset: Option<TrainingSet<'_>>, builder: &str) -> Result<Option<f64>, BuildError> {
    let v = config.take("avg_num_neighbors", builder).cloned().unwrap_or(Value::String("auto".into()));
    let value = match &v {
        Value::String(s) if s == "auto" => {
            if !initialize {
                return Err(invalid(builder, "avg_num_neighbors = auto but the model is not being initialized (give its value, as saved in the run's config.yaml)"));
            }
            let ds = dataset.ok_or_else(|| invalid(builder, "avg_num_neighbors = auto needs the training dataset"))?;
            let stride = config.take("dataset_statistics_stride", builder).and_then(Value::as_u64).unwrap_or(1).max(1) as usize;
            let frames = ds.dataset.select(ds.indices, stride);
            let (mean, std) = avg_num_neighbors(&frames)?;
            config.set("var_num_neighbors", Value::from(std), Source::SetBy(builder.into()));
            Some(mean)
        }
        Value::Null => None,
        other => Some(other.as_f64().ok_or_else(|| invalid(builder, format!("avg_num_neighbors must be a number, auto or null, got {}", nequip_core::config::yaml::render(other))))?),
    };
    config.set("avg_num_neighbors", value.map(Value::from).unwrap_or(Value::Null), Source::SetBy(builder.into()));
    let _ = config.take("avg_num_neighbors", builder);
    Ok(value)
}

/// The default NequIP energy model (see `minimal.yaml` and `example.yaml` for its keys).
#[builder(name = "EnergyModel", kind = model_builder)]
pub fn energy_model(config: &mut Config, initialize: bool, dataset: Option<TrainingSet<'_>>, keys: EnergyModelKeys) -> Result<Box<dyn GraphModule>, BuildError> {
    add_avg_num_neighbors(config, initialize, dataset, "EnergyModel")?;
    if keys.num_layers < 0 {
        return Err(invalid("EnergyModel", format!("num_layers must be >= 0, got {}", keys.num_layers)));
    }
    let mut layers = vec![
        LayerSpec::new("one_hot", "OneHotAtomEncoding"),
        LayerSpec::new("spharm_edges", "SphericalHarmonicEdgeAttrs"),
        LayerSpec::new("radial_basis", "RadialBasisEdgeEncoding"),
        LayerSpec::new("chemical_embedding", "AtomwiseLinear"),
    ];
    layers.extend((0..keys.num_layers).map(|i| LayerSpec::new(&format!("layer{i}_convnet"), "ConvNetLayer")));
    layers.push(LayerSpec::new("conv_to_output_hidden", "AtomwiseLinear"));
    layers.push(LayerSpec::new("output_hidden_to_scalar", "AtomwiseLinear").param("irreps_out", "1x0e").param("out_field", PER_ATOM_ENERGY_KEY));
    layers.push(LayerSpec::new("total_energy_sum", "AtomwiseReduce").param("reduce", "sum").param("field", PER_ATOM_ENERGY_KEY).param("out_field", TOTAL_ENERGY_KEY));
    let ctx = module_context(config, "EnergyModel", IrrepsDict::new())?;
    Ok(Box::new(SequentialGraphNetwork::from_parameters(config, &layers, IrrepsDict::new(), &ctx)?))
}
