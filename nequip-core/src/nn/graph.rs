//! Graph modules: port of `nequip/nn/_graph_mixin.py::GraphModuleMixin` (nequip 0.6.2).
//!
//! A graph module maps an [`AtomicDataDict`] to an [`AtomicDataDict`] and declares the irreps
//! of the fields it reads (`irreps_in`) and of everything present after it (`irreps_out` =
//! inputs overwritten by its outputs). `None` irreps mark invariant fields that are not
//! irreps (indices). [`init_irreps`] is `_init_irreps`: `pos` is always `1o`, `edge_index`
//! always present, a field this module needs with other irreps than the previous module gives
//! is an error naming both.
//!
//! **Parameters.** A module owns its parameters and buffers in a [`Params`] store (a
//! `tch::nn::VarStore`) and reports them by PyTorch's names relative to itself
//! ([`GraphModule::named_tensors`]); containers prefix their children's names (`func.`,
//! `layer0_convnet.`), so the state dict of the whole model has nequip's names
//! (`model.model.func.layer0_convnet.conv.fc.layer0.weight`) however the builders wrapped it.

use std::any::Any;
use std::collections::BTreeMap;

use tch::nn::{Path, VarStore};
use tch::{Device, Kind, Tensor};

use crate::data::AtomicDataDict;
use crate::e3nn::{E3nnError, Irreps};

/// Field → irreps (`None`: invariant but not irreps, e.g. `edge_index`).
pub type IrrepsDict = BTreeMap<String, Option<Irreps>>;

/// Build an [`IrrepsDict`] from `(field, irreps string or None)` pairs.
pub fn irreps_dict(pairs: &[(&str, Option<&str>)]) -> Result<IrrepsDict, E3nnError> {
    pairs.iter().map(|(k, v)| Ok((k.to_string(), v.map(str::parse).transpose()?))).collect()
}

fn show(ir: &Option<Irreps>) -> String {
    ir.as_ref().map(|i| i.to_string()).unwrap_or_else(|| "None".into())
}

/// Errors of building or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{module}: input field `{field}` has irreps {found}, but this module needs {expected}")]
    IrrepsMismatch { module: String, field: String, expected: String, found: String },
    #[error("{module}: needs field `{field}` in its inputs, which {after} does not provide (available: {})", available.join(", "))]
    MissingInput { module: String, field: String, after: String, available: Vec<String> },
    #[error("incompatible irreps between `{first}` and `{second}`: field `{field}` is {out} after `{first}` but `{second}` expects {inp}")]
    Incompatible { first: String, second: String, field: String, out: String, inp: String },
    #[error("{module}: the data has no field `{field}`")]
    MissingField { module: String, field: String },
    #[error("{module}: {message}")]
    Invalid { module: String, message: String },
    #[error(transparent)]
    E3nn(#[from] E3nnError),
    #[error(transparent)]
    Resolve(#[from] crate::config::ResolveError),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl ModelError {
    pub fn invalid(module: impl Into<String>, message: impl Into<String>) -> Self {
        ModelError::Invalid { module: module.into(), message: message.into() }
    }
}

/// The irreps of a module: `_init_irreps`'s `self.irreps_in` / `self.irreps_out`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphIrreps {
    pub irreps_in: IrrepsDict,
    pub irreps_out: IrrepsDict,
}

/// nequip's `_init_irreps(irreps_in, my_irreps_in, required_irreps_in, irreps_out)`.
pub fn init_irreps(module: &str, irreps_in: &IrrepsDict, my_irreps_in: &IrrepsDict, required: &[&str], irreps_out: &IrrepsDict) -> Result<GraphIrreps, ModelError> {
    let mut inp = irreps_in.clone();
    let one_o: Irreps = "1o".parse()?;
    match inp.get(crate::data::keys::POSITIONS_KEY) {
        Some(ir) if ir.as_ref() != Some(&one_o) => {
            return Err(ModelError::IrrepsMismatch { module: module.into(), field: "pos".into(), expected: "1x1o".into(), found: show(ir) })
        }
        _ => {}
    }
    inp.insert(crate::data::keys::POSITIONS_KEY.into(), Some(one_o));
    match inp.get(crate::data::keys::EDGE_INDEX_KEY) {
        Some(Some(ir)) => {
            return Err(ModelError::IrrepsMismatch { module: module.into(), field: "edge_index".into(), expected: "None".into(), found: ir.to_string() })
        }
        _ => {}
    }
    inp.insert(crate::data::keys::EDGE_INDEX_KEY.into(), None);
    for (k, want) in my_irreps_in {
        if let Some(have) = inp.get(k) {
            if have != want {
                return Err(ModelError::IrrepsMismatch { module: module.into(), field: k.clone(), expected: show(want), found: show(have) });
            }
        }
    }
    for k in required {
        if !inp.contains_key(*k) {
            return Err(ModelError::MissingInput { module: module.into(), field: k.to_string(), after: "the previous module".into(), available: inp.keys().cloned().collect() });
        }
    }
    let mut out = inp.clone();
    out.extend(irreps_out.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(GraphIrreps { irreps_in: inp, irreps_out: out })
}

/// nequip's `_irreps_compatible(out_of_first, in_of_second)`: equal on every shared field.
pub fn check_compatible(first: &str, out: &IrrepsDict, second: &str, inp: &IrrepsDict) -> Result<(), ModelError> {
    for (k, v) in inp {
        if let Some(o) = out.get(k) {
            if o != v {
                return Err(ModelError::Incompatible { first: first.into(), second: second.into(), field: k.clone(), out: show(o), inp: show(v) });
            }
        }
    }
    Ok(())
}

/// A parameter or buffer under its PyTorch name.
#[derive(Debug)]
pub struct NamedTensor {
    pub name: String,
    pub tensor: Tensor,
    /// Parameters are trainable; buffers (and frozen parameters) are not.
    pub trainable: bool,
}

/// `Any` access for downcasting modules (`model.into_any().downcast::<SequentialGraphNetwork>()`).
pub trait AsAny: Any {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<T: Any> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// What `update_for_rescale` sees of the `RescaleOutput` being built.
#[derive(Debug, Clone)]
pub struct RescaleInfo {
    /// The global scale (`None`: the rescale has no scale).
    pub scale: Option<f64>,
    pub scale_keys: Vec<String>,
}

/// nequip's `GraphModuleMixin` + `torch.nn.Module` for our modules.
pub trait GraphModule: AsAny + std::fmt::Debug + Send {
    /// The class name (`AtomwiseLinear`), as nequip prints it.
    fn type_name(&self) -> &str;
    fn irreps(&self) -> &GraphIrreps;
    fn irreps_mut(&mut self) -> &mut GraphIrreps;
    /// Run on `data`; `training` is PyTorch's `module.training` (forces keep their graph,
    /// `RescaleOutput` does not rescale).
    fn forward(&self, data: AtomicDataDict, training: bool) -> Result<AtomicDataDict, ModelError>;
    /// This module's own parameters and buffers, names relative to it (children excluded).
    fn own_tensors(&self) -> Vec<NamedTensor> {
        Vec::new()
    }
    /// Child modules with their attribute names (`func`, `model`, layer names).
    fn children(&self) -> Vec<(String, &dyn GraphModule)> {
        Vec::new()
    }
    fn children_mut(&mut self) -> Vec<&mut dyn GraphModule> {
        Vec::new()
    }
    /// nequip's `update_for_rescale(rescale_module)`: a module whose constants are in dataset
    /// units divides them by the global energy scale (`PerSpeciesScaleShift`, pair potentials).
    fn update_for_rescale(&mut self, _rescale: &RescaleInfo) -> Result<(), ModelError> {
        Ok(())
    }

    fn irreps_in(&self) -> &IrrepsDict {
        &self.irreps().irreps_in
    }
    fn irreps_out(&self) -> &IrrepsDict {
        &self.irreps().irreps_out
    }
    /// nequip's `_add_independent_irreps`: fields inserted upstream become visible here.
    fn add_independent_irreps(&mut self, new: &IrrepsDict) {
        let ir = self.irreps_mut();
        for (k, v) in new {
            if !ir.irreps_in.contains_key(k) {
                ir.irreps_in.insert(k.clone(), v.clone());
            }
            if !ir.irreps_out.contains_key(k) {
                ir.irreps_out.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The `type_name` / `irreps` / `irreps_mut` methods of a [`GraphModule`] whose struct has an
/// `irreps: GraphIrreps` field, and with `wraps = field` the `children` / `children_mut` of a
/// wrapper around one `Box<dyn GraphModule>` field (named as in nequip's state dicts: `func`,
/// `model`). Use inside `impl GraphModule for ...`.
#[macro_export]
macro_rules! graph_module_boilerplate {
    ($name:literal) => {
        fn type_name(&self) -> &str {
            $name
        }
        fn irreps(&self) -> &$crate::nn::GraphIrreps {
            &self.irreps
        }
        fn irreps_mut(&mut self) -> &mut $crate::nn::GraphIrreps {
            &mut self.irreps
        }
    };
    ($name:literal, wraps = $field:ident) => {
        $crate::graph_module_boilerplate!($name);
        fn children(&self) -> Vec<(String, &dyn $crate::nn::GraphModule)> {
            vec![(stringify!($field).into(), self.$field.as_ref())]
        }
        fn children_mut(&mut self) -> Vec<&mut dyn $crate::nn::GraphModule> {
            vec![self.$field.as_mut()]
        }
    };
}

/// Every parameter and buffer of `m` and its children, with PyTorch's dotted names
/// (`state_dict()` order: own tensors first, then children in order).
pub fn named_tensors(m: &dyn GraphModule) -> Vec<NamedTensor> {
    let mut out = m.own_tensors();
    for (name, c) in m.children() {
        out.extend(named_tensors(c).into_iter().map(|t| NamedTensor { name: format!("{name}.{}", t.name), ..t }));
    }
    out
}

/// Number of trainable scalars (nequip logs it as "Number of weights").
pub fn num_trainable(m: &dyn GraphModule) -> i64 {
    named_tensors(m).iter().filter(|t| t.trainable).map(|t| t.tensor.numel() as i64).sum()
}

/// Apply `f` to `m` and every module below it (depth first, parents first).
pub fn visit_mut(m: &mut dyn GraphModule, f: &mut dyn FnMut(&mut dyn GraphModule) -> Result<(), ModelError>) -> Result<(), ModelError> {
    f(m)?;
    for c in m.children_mut() {
        visit_mut(c, f)?;
    }
    Ok(())
}

/// The parameter store of one module: a `VarStore` on the model's device and dtype, where
/// e3nn operations register their weights (`linear.weight`, `fc.layer0.weight`) and modules
/// add buffers.
pub struct Params {
    vs: VarStore,
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<String> = self.vs.variables().into_keys().collect();
        names.sort();
        f.debug_struct("Params").field("names", &names).finish()
    }
}

impl Params {
    /// An empty store whose new variables are `kind` on `device`.
    pub fn new(device: Device, kind: Kind) -> Self {
        let mut vs = VarStore::new(device);
        vs.set_kind(kind);
        Params { vs }
    }
    pub fn root(&self) -> Path<'_> {
        self.vs.root()
    }
    /// The path of a dotted sub-name (`conv.linear_1`).
    pub fn path(&self, dotted: &str) -> Path<'_> {
        dotted.split('.').filter(|s| !s.is_empty()).fold(self.vs.root(), |p, s| p / s)
    }
    /// Register `value` (moved to the store's device) as a parameter or a buffer.
    pub fn add(&self, dotted: &str, value: &Tensor, trainable: bool) -> Tensor {
        let (parent, name) = dotted.rsplit_once('.').unwrap_or(("", dotted));
        let t = value.detach().to_device(self.vs.device()).copy();
        self.path(parent).add(name, t, trainable)
    }
    pub fn device(&self) -> Device {
        self.vs.device()
    }
    pub fn kind(&self) -> Kind {
        self.vs.kind()
    }
    /// Every variable, sorted by name.
    pub fn named(&self) -> Vec<NamedTensor> {
        let mut v: Vec<NamedTensor> = self.vs.variables().into_iter().map(|(name, tensor)| NamedTensor { trainable: tensor.requires_grad(), name, tensor }).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}

/// What a module constructor gets besides its keys: nequip's positional `irreps_in`, the
/// layer name, and the dtypes and device the model is built in.
#[derive(Debug, Clone)]
pub struct ModuleContext {
    /// The layer name (`layer0_convnet`), for messages.
    pub name: String,
    pub irreps_in: IrrepsDict,
    /// `model_dtype` (nequip builds under `torch.set_default_dtype(model_dtype)`).
    pub kind: Kind,
    /// `default_dtype` (kept by `PerSpeciesScaleShift` and `RescaleOutput`).
    pub default_kind: Kind,
    pub device: Device,
}

impl ModuleContext {
    pub fn new(name: impl Into<String>, irreps_in: IrrepsDict, kind: Kind, default_kind: Kind, device: Device) -> Self {
        ModuleContext { name: name.into(), irreps_in, kind, default_kind, device }
    }
    /// A fresh parameter store in the model dtype.
    pub fn params(&self) -> Params {
        Params::new(self.device, self.kind)
    }
    /// The irreps of an input field (error naming this module when absent or not irreps).
    pub fn input(&self, field: &str) -> Result<Irreps, ModelError> {
        match self.irreps_in.get(field) {
            Some(Some(ir)) => Ok(ir.clone()),
            Some(None) => Err(ModelError::invalid(&self.name, format!("field `{field}` has no irreps (None)"))),
            None => Err(ModelError::MissingInput {
                module: self.name.clone(),
                field: field.into(),
                after: "the previous module".into(),
                available: self.irreps_in.keys().cloned().collect(),
            }),
        }
    }
    /// The same context for another layer name and inputs.
    pub fn with(&self, name: &str, irreps_in: IrrepsDict) -> Self {
        ModuleContext { name: name.into(), irreps_in, ..self.clone() }
    }
}

/// A field of `data` or an error naming the module.
pub fn field<'a>(data: &'a AtomicDataDict, module: &str, key: &str) -> Result<&'a Tensor, ModelError> {
    data.get(key).ok_or_else(|| ModelError::MissingField { module: module.into(), field: key.into() })
}
