//! Convolutions as graph modules: `ConvNetLayer` (`nequip/nn/_convnetlayer.py`) and
//! `InteractionBlock` (`nequip/nn/_interaction_block.py`), nequip 0.6.2. The math is in
//! `nequip_core::nn::{convnet, interaction}`; these wrap it with irreps dictionaries and keys.
//! `ConvNetLayer`'s `convolution` is a nested builder: the `InteractionBlock` keys are resolved
//! with prefixes `[InteractionBlock, convolution, layerN_convnet, layerN_convnet_convolution,
//! ConvNetLayer, ConvNetLayer_convolution]`, as nequip's `instantiate` does.

use std::collections::BTreeMap;

use nequip_core::config::Resolution;
use nequip_core::data::keys::*;
use nequip_core::data::AtomicDataDict;
use nequip_core::e3nn::{Act, Irreps};
use nequip_core::nn::convnet::{ByParity, ConvNetLayer as ConvMath, ConvNetOptions};
use nequip_core::nn::graph::{field, init_irreps, GraphIrreps, NamedTensor, Params};
use nequip_core::nn::interaction::{InteractionBlock as BlockMath, InteractionOptions};
use nequip_core::nn::{GraphModule, IrrepsDict, ModelError, ModuleContext, NnModule};
use nequip_core::{auto_init, builder};

use super::{graph_module_boilerplate, parse_irreps};

fn default_acts() -> BTreeMap<String, String> {
    [("e".to_string(), "silu".to_string()), ("o".to_string(), "tanh".to_string())].into_iter().collect()
}

fn by_parity(m: &BTreeMap<String, String>, key: &str, module: &str) -> Result<ByParity, ModelError> {
    let get = |p: &str| -> Result<Act, ModelError> {
        let name = m.get(p).ok_or_else(|| ModelError::invalid(module, format!("`{key}` needs an entry for parity `{p}`")))?;
        name.parse().map_err(|e| ModelError::invalid(module, format!("`{key}.{p}`: {e}")))
    };
    Ok(ByParity { e: get("e")?, o: if m.contains_key("o") { get("o")? } else { Act::Tanh } })
}

/// Keys of [`InteractionBlock`] (also the nested `convolution` keys of `ConvNetLayer`).
#[auto_init]
pub struct InteractionBlockKeys {
    /// Output irreps (given by `ConvNetLayer`; required when used on its own).
    pub irreps_out: Option<String>,
    /// Hidden layers of the radial MLP.
    #[key(default = 1)]
    pub invariant_layers: i64,
    /// Width of the radial MLP.
    #[key(default = 8)]
    pub invariant_neurons: i64,
    /// Messages are divided by sqrt(avg_num_neighbors).
    pub avg_num_neighbors: Option<f64>,
    /// Self-connection (tensor product of features and species).
    #[key(default = true)]
    pub use_sc: bool,
    /// Activation of the radial MLP: `{e: silu}` or `{e: ssp}`.
    #[key(default = [("e", "silu")].into_iter().collect::<std::collections::BTreeMap<_, _>>())]
    pub nonlinearity_scalars: BTreeMap<String, String>,
}

impl InteractionBlockKeys {
    fn options(&self, module: &str) -> Result<InteractionOptions, ModelError> {
        if self.invariant_layers < 0 || self.invariant_neurons < 1 {
            return Err(ModelError::invalid(module, format!("invariant_layers must be >= 0 and invariant_neurons >= 1, got {} and {}", self.invariant_layers, self.invariant_neurons)));
        }
        let act = self.nonlinearity_scalars.get("e").map(String::as_str).unwrap_or("silu");
        Ok(InteractionOptions {
            invariant_layers: self.invariant_layers as usize,
            invariant_neurons: self.invariant_neurons,
            avg_num_neighbors: self.avg_num_neighbors,
            use_sc: self.use_sc,
            radial_act: act.parse().map_err(|e| ModelError::invalid(module, format!("nonlinearity_scalars.e: {e}")))?,
        })
    }
}

/// The irreps a convolution reads: node features, edge attributes, node attributes, and the
/// number of radial basis functions.
fn conv_inputs(ctx: &ModuleContext) -> Result<(Irreps, Irreps, Irreps, i64), ModelError> {
    let emb = ctx.input(EDGE_EMBEDDING_KEY)?;
    if emb.iter().any(|m| !m.ir.is_scalar()) {
        return Err(ModelError::invalid(&ctx.name, format!("edge_embedding must be scalars (0e), got {emb}")));
    }
    Ok((ctx.input(NODE_FEATURES_KEY)?, ctx.input(EDGE_ATTRS_KEY)?, ctx.input(NODE_ATTRS_KEY)?, emb.dim() as i64))
}

fn conv_forward<'a>(data: &'a AtomicDataDict, m: &str) -> Result<[&'a tch::Tensor; 5], ModelError> {
    Ok([field(data, m, NODE_FEATURES_KEY)?, field(data, m, NODE_ATTRS_KEY)?, field(data, m, EDGE_ATTRS_KEY)?, field(data, m, EDGE_EMBEDDING_KEY)?, field(data, m, EDGE_INDEX_KEY)?])
}

/// NequIP's interaction block: radial MLP weights, per-edge `uvu` tensor product, scatter,
/// self-connection.
#[builder(name = "InteractionBlock", kind = nn_module, keys = InteractionBlockKeys)]
#[derive(Debug)]
pub struct InteractionBlock {
    irreps: GraphIrreps,
    params: Params,
    block: BlockMath,
}

impl NnModule for InteractionBlock {
    type Keys = InteractionBlockKeys;
    fn build(k: InteractionBlockKeys, ctx: &ModuleContext, _: &Resolution) -> Result<Self, ModelError> {
        let out = k.irreps_out.as_deref().ok_or_else(|| ModelError::invalid(&ctx.name, "InteractionBlock needs irreps_out"))?;
        let out = parse_irreps(out, &ctx.name, "irreps_out")?;
        let (feat, edge, node, nb) = conv_inputs(ctx)?;
        let params = ctx.params();
        let block = BlockMath::new(&params.root(), &feat, &out, &edge, &node, nb, &k.options(&ctx.name)?)?;
        let mut o = IrrepsDict::new();
        o.insert(NODE_FEATURES_KEY.into(), Some(out));
        let irreps = init_irreps(&ctx.name, &ctx.irreps_in, &IrrepsDict::new(), &[], &o)?;
        Ok(InteractionBlock { irreps, params, block })
    }
}

impl GraphModule for InteractionBlock {
    graph_module_boilerplate!("InteractionBlock");
    fn forward(&self, mut data: AtomicDataDict, _training: bool) -> Result<AtomicDataDict, ModelError> {
        let [h, a, y, e, ei] = conv_forward(&data, "InteractionBlock")?;
        let out = self.block.forward(h, a, y, e, ei);
        data.insert(NODE_FEATURES_KEY.into(), out);
        Ok(data)
    }
    fn own_tensors(&self) -> Vec<NamedTensor> {
        self.params.named()
    }
}

/// Keys of [`ConvNetLayer`].
#[auto_init]
pub struct ConvNetLayerKeys {
    /// Hidden irreps of the layer (filtered to those reachable from the input).
    pub feature_irreps_hidden: String,
    /// The convolution (a registered nn module; only `InteractionBlock` is built in).
    #[key(default = "InteractionBlock")]
    pub convolution: String,
    #[key(default)]
    pub convolution_kwargs: nequip_core::config::Mapping,
    /// Accepted for compatibility (nequip's signature has it; unused).
    #[key(default = 3)]
    pub num_layers: i64,
    /// Add the input to the output when the irreps agree.
    #[key(default = false)]
    pub resnet: bool,
    /// `gate` or `norm`.
    #[key(default = "gate")]
    pub nonlinearity_type: String,
    #[key(default = default_acts())]
    pub nonlinearity_scalars: BTreeMap<String, String>,
    #[key(default = default_acts())]
    pub nonlinearity_gates: BTreeMap<String, String>,
}

/// A NequIP layer: convolution, then gate (or norm) nonlinearity, optional resnet.
#[builder(name = "ConvNetLayer", kind = nn_module, keys = ConvNetLayerKeys)]
#[derive(Debug)]
pub struct ConvNetLayer {
    irreps: GraphIrreps,
    params: Params,
    layer: ConvMath,
}

impl NnModule for ConvNetLayer {
    type Keys = ConvNetLayerKeys;
    fn build(k: ConvNetLayerKeys, ctx: &ModuleContext, r: &Resolution) -> Result<Self, ModelError> {
        if k.convolution != "InteractionBlock" {
            return Err(ModelError::invalid(&ctx.name, format!("convolution `{}`: only InteractionBlock is supported as the convolution of ConvNetLayer", k.convolution)));
        }
        let conv = r.nested.get("convolution").ok_or_else(|| ModelError::invalid(&ctx.name, "the convolution keys were not resolved"))?;
        let mut conv = conv.clone();
        if let Some(nequip_core::config::Value::Mapping(kw)) = r.get("convolution_kwargs") {
            for (key, v) in kw {
                let key = nequip_core::config::yaml::key_str(key);
                if conv.values.get(&key).map(|r| &r.value) != Some(v) {
                    conv.values.insert(key, nequip_core::config::resolve::Resolved { value: v.clone(), origin: nequip_core::config::Origin::Nested });
                }
            }
        }
        let conv_keys: InteractionBlockKeys = conv.into_typed()?;
        let gate = match k.nonlinearity_type.as_str() {
            "gate" => true,
            "norm" => false,
            other => return Err(ModelError::invalid(&ctx.name, format!("nonlinearity_type must be gate or norm, got {other:?}"))),
        };
        let (feat, edge, node, nb) = conv_inputs(ctx)?;
        let o = ConvNetOptions {
            feature_irreps_hidden: parse_irreps(&k.feature_irreps_hidden, &ctx.name, "feature_irreps_hidden")?,
            resnet: k.resnet,
            gate,
            nonlinearity_scalars: by_parity(&k.nonlinearity_scalars, "nonlinearity_scalars", &ctx.name)?,
            nonlinearity_gates: by_parity(&k.nonlinearity_gates, "nonlinearity_gates", &ctx.name)?,
            interaction: conv_keys.options(&ctx.name)?,
        };
        let params = ctx.params();
        let layer = ConvMath::new(&params.root(), &feat, &edge, &node, nb, &o)?;
        let mut out = IrrepsDict::new();
        out.insert(NODE_FEATURES_KEY.into(), Some(layer.irreps_out.clone()));
        let irreps = init_irreps(&ctx.name, &ctx.irreps_in, &IrrepsDict::new(), &[], &out)?;
        Ok(ConvNetLayer { irreps, params, layer })
    }
}

impl GraphModule for ConvNetLayer {
    graph_module_boilerplate!("ConvNetLayer");
    fn forward(&self, mut data: AtomicDataDict, _training: bool) -> Result<AtomicDataDict, ModelError> {
        let [h, a, y, e, ei] = conv_forward(&data, "ConvNetLayer")?;
        let out = self.layer.forward(h, a, y, e, ei);
        data.insert(NODE_FEATURES_KEY.into(), out);
        Ok(data)
    }
    fn own_tensors(&self) -> Vec<NamedTensor> {
        self.params.named()
    }
}
