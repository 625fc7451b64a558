//! Embeddings: ports of `nequip/nn/embedding/_one_hot.py::OneHotAtomEncoding`,
//! `nequip/nn/embedding/_edge.py::{SphericalHarmonicEdgeAttrs, RadialBasisEdgeEncoding,
//! AddRadialCutoffToData}`, `nequip/nn/radial_basis.py::{BesselBasis, e3nn_basis}` and
//! `nequip/nn/cutoffs.py::PolynomialCutoff` (nequip 0.6.2).

use nequip_core::config::Resolution;
use nequip_core::data::dict::with_edge_vectors;
use nequip_core::data::keys::*;
use nequip_core::data::AtomicDataDict;
use nequip_core::e3nn::{Irreps, ShNormalization, SphericalHarmonics};
use nequip_core::nn::graph::{field, init_irreps, irreps_dict, GraphIrreps, NamedTensor, Params};
use nequip_core::nn::module::build_nested_radial;
use nequip_core::nn::radial::{bessel_basis, bessel_weights_init, one_hot, polynomial_cutoff};
use nequip_core::nn::{GraphModule, IrrepsDict, ModelError, ModuleContext, NnModule, RadialBuilder, RadialFunction};
use nequip_core::{auto_init, builder};
use tch::Tensor;

use super::{graph_module_boilerplate, parse_irreps};

/// Keys of [`OneHotAtomEncoding`].
#[auto_init]
pub struct OneHotKeys {
    /// Number of atom types.
    pub num_types: i64,
    /// Also write the one-hot vectors as the initial `node_features`.
    #[key(default = true)]
    pub set_features: bool,
}

/// One-hot encoding of `atom_types` into `node_attrs` (and `node_features`).
#[builder(name = "OneHotAtomEncoding", kind = nn_module, keys = OneHotKeys)]
#[derive(Debug)]
pub struct OneHotAtomEncoding {
    irreps: GraphIrreps,
    num_types: i64,
    set_features: bool,
}

impl NnModule for OneHotAtomEncoding {
    type Keys = OneHotKeys;
    fn build(k: OneHotKeys, ctx: &ModuleContext, _: &Resolution) -> Result<Self, ModelError> {
        if k.num_types < 1 {
            return Err(ModelError::invalid(&ctx.name, format!("num_types must be >= 1, got {}", k.num_types)));
        }
        let ir: Irreps = format!("{}x0e", k.num_types).parse()?;
        let mut out = IrrepsDict::new();
        out.insert(NODE_ATTRS_KEY.into(), Some(ir.clone()));
        if k.set_features {
            out.insert(NODE_FEATURES_KEY.into(), Some(ir));
        }
        let irreps = init_irreps(&ctx.name, &ctx.irreps_in, &IrrepsDict::new(), &[], &out)?;
        Ok(OneHotAtomEncoding { irreps, num_types: k.num_types, set_features: k.set_features })
    }
}

impl GraphModule for OneHotAtomEncoding {
    graph_module_boilerplate!("OneHotAtomEncoding");
    fn forward(&self, mut data: AtomicDataDict, _training: bool) -> Result<AtomicDataDict, ModelError> {
        let types = field(&data, "OneHotAtomEncoding", ATOM_TYPE_KEY)?;
        let kind = field(&data, "OneHotAtomEncoding", POSITIONS_KEY)?.kind();
        let oh = one_hot(types, self.num_types, kind).to_device(types.device());
        if self.set_features {
            data.insert(NODE_FEATURES_KEY.into(), oh.shallow_clone());
        }
        data.insert(NODE_ATTRS_KEY.into(), oh);
        Ok(data)
    }
}

/// Keys of [`SphericalHarmonicEdgeAttrs`].
#[auto_init]
pub struct SphericalHarmonicKeys {
    /// Irreps of the edge spherical harmonics (`1x0e+1x1o+1x2e`), or an integer `l_max`.
    pub irreps_edge_sh: nequip_core::config::Value,
    /// `component`, `norm` or `integral`.
    #[key(default = "component")]
    pub edge_sh_normalization: String,
    /// Normalise the edge vectors first.
    #[key(default = true)]
    pub edge_sh_normalize: bool,
    #[key(default = "edge_attrs")]
    pub out_field: String,
}

/// Spherical harmonics of the edge vectors → `edge_attrs`.
#[builder(name = "SphericalHarmonicEdgeAttrs", kind = nn_module, keys = SphericalHarmonicKeys)]
#[derive(Debug)]
pub struct SphericalHarmonicEdgeAttrs {
    irreps: GraphIrreps,
    sh: SphericalHarmonics,
    out_field: String,
}

/// `irreps_edge_sh` as nequip accepts it: an irreps string or an integer `l_max` (parity −1).
pub fn edge_sh_irreps(v: &nequip_core::config::Value, module: &str) -> Result<Irreps, ModelError> {
    match v {
        nequip_core::config::Value::Number(n) if n.as_u64().is_some() => Ok(Irreps::spherical_harmonics(n.as_u64().unwrap_or(0) as u32, -1)),
        nequip_core::config::Value::String(s) => parse_irreps(s, module, "irreps_edge_sh"),
        other => Err(ModelError::invalid(module, format!("irreps_edge_sh must be an irreps string or an integer l_max, got {}", nequip_core::config::yaml::render(other)))),
    }
}

impl NnModule for SphericalHarmonicEdgeAttrs {
    type Keys = SphericalHarmonicKeys;
    fn build(k: SphericalHarmonicKeys, ctx: &ModuleContext, _: &Resolution) -> Result<Self, ModelError> {
        let ir = edge_sh_irreps(&k.irreps_edge_sh, &ctx.name)?;
        let even = ir.iter().all(|m| m.ir.p == 1);
        let polar = ir.iter().all(|m| m.ir.p == (-1i32).pow(m.ir.l));
        if ir.iter().any(|m| m.mul != 1) || !(even || polar) {
            return Err(ModelError::invalid(&ctx.name, format!("irreps_edge_sh {ir} must be spherical harmonics: 1x per degree with parity (-1)^l (or all even)")));
        }
        let norm: ShNormalization = k.edge_sh_normalization.parse()?;
        let sh = SphericalHarmonics::new(&ir.ls(), k.edge_sh_normalize, norm)?;
        let mut out = IrrepsDict::new();
        out.insert(k.out_field.clone(), Some(ir));
        let irreps = init_irreps(&ctx.name, &ctx.irreps_in, &IrrepsDict::new(), &[], &out)?;
        Ok(SphericalHarmonicEdgeAttrs { irreps, sh, out_field: k.out_field })
    }
}

impl GraphModule for SphericalHarmonicEdgeAttrs {
    graph_module_boilerplate!("SphericalHarmonicEdgeAttrs");
    fn forward(&self, mut data: AtomicDataDict, _training: bool) -> Result<AtomicDataDict, ModelError> {
        with_edge_vectors(&mut data, false).map_err(|e| ModelError::invalid("SphericalHarmonicEdgeAttrs", e.to_string()))?;
        let attrs = self.sh.forward(&data[EDGE_VECTORS_KEY]);
        data.insert(self.out_field.clone(), attrs);
        Ok(data)
    }
}

/// Keys of [`RadialBasisEdgeEncoding`].
#[auto_init]
pub struct RadialBasisKeys {
    /// The radial basis (a registered radial function).
    #[key(default = "BesselBasis", kind = radial_function)]
    pub basis: String,
    #[key(default)]
    pub basis_kwargs: nequip_core::config::Mapping,
    /// The cutoff envelope (a registered radial function).
    #[key(default = "PolynomialCutoff", kind = radial_function)]
    pub cutoff: String,
    #[key(default)]
    pub cutoff_kwargs: nequip_core::config::Mapping,
    #[key(default = "edge_embedding")]
    pub out_field: String,
}

/// `edge_embedding = basis(r) · cutoff(r)` and `edge_cutoff = cutoff(r)`.
#[builder(name = "RadialBasisEdgeEncoding", kind = nn_module, keys = RadialBasisKeys)]
#[derive(Debug)]
pub struct RadialBasisEdgeEncoding {
    irreps: GraphIrreps,
    basis: Box<dyn RadialFunction>,
    cutoff: Box<dyn RadialFunction>,
    out_field: String,
}

impl NnModule for RadialBasisEdgeEncoding {
    type Keys = RadialBasisKeys;
    fn build(k: RadialBasisKeys, ctx: &ModuleContext, r: &Resolution) -> Result<Self, ModelError> {
        let basis = build_nested_radial(r, "basis", ctx)?;
        let cutoff = build_nested_radial(r, "cutoff", ctx)?;
        let mut out = IrrepsDict::new();
        out.insert(k.out_field.clone(), Some(format!("{}x0e", basis.num_basis()).parse()?));
        out.insert(EDGE_CUTOFF_KEY.into(), Some("0e".parse()?));
        let irreps = init_irreps(&ctx.name, &ctx.irreps_in, &IrrepsDict::new(), &[], &out)?;
        Ok(RadialBasisEdgeEncoding { irreps, basis, cutoff, out_field: k.out_field })
    }
}

impl GraphModule for RadialBasisEdgeEncoding {
    graph_module_boilerplate!("RadialBasisEdgeEncoding");
    fn forward(&self, mut data: AtomicDataDict, _training: bool) -> Result<AtomicDataDict, ModelError> {
        with_edge_vectors(&mut data, true).map_err(|e| ModelError::invalid("RadialBasisEdgeEncoding", e.to_string()))?;
        let r = &data[EDGE_LENGTH_KEY];
        let cutoff = self.cutoff.forward(r).unsqueeze(-1);
        let emb = self.basis.forward(r) * &cutoff;
        data.insert(self.out_field.clone(), emb);
        data.insert(EDGE_CUTOFF_KEY.into(), cutoff);
        Ok(data)
    }
    fn own_tensors(&self) -> Vec<NamedTensor> {
        let mut v: Vec<NamedTensor> = self.basis.own_tensors().into_iter().map(|t| NamedTensor { name: format!("basis.{}", t.name), ..t }).collect();
        v.extend(self.cutoff.own_tensors().into_iter().map(|t| NamedTensor { name: format!("cutoff.{}", t.name), ..t }));
        v
    }
}

/// Keys of [`AddRadialCutoffToData`].
#[auto_init]
pub struct AddCutoffKeys {
    #[key(default = "PolynomialCutoff", kind = radial_function)]
    pub cutoff: String,
    #[key(default)]
    pub cutoff_kwargs: nequip_core::config::Mapping,
}

/// Only `edge_cutoff = cutoff(r)` (used by the standalone `PairPotential` model).
#[builder(name = "AddRadialCutoffToData", kind = nn_module, keys = AddCutoffKeys)]
#[derive(Debug)]
pub struct AddRadialCutoffToData {
    irreps: GraphIrreps,
    cutoff: Box<dyn RadialFunction>,
}

impl NnModule for AddRadialCutoffToData {
    type Keys = AddCutoffKeys;
    fn build(_: AddCutoffKeys, ctx: &ModuleContext, r: &Resolution) -> Result<Self, ModelError> {
        let cutoff = build_nested_radial(r, "cutoff", ctx)?;
        let out = irreps_dict(&[(EDGE_CUTOFF_KEY, Some("0e"))])?;
        Ok(AddRadialCutoffToData { irreps: init_irreps(&ctx.name, &ctx.irreps_in, &IrrepsDict::new(), &[], &out)?, cutoff })
    }
}

impl GraphModule for AddRadialCutoffToData {
    graph_module_boilerplate!("AddRadialCutoffToData");
    fn forward(&self, mut data: AtomicDataDict, _training: bool) -> Result<AtomicDataDict, ModelError> {
        with_edge_vectors(&mut data, true).map_err(|e| ModelError::invalid("AddRadialCutoffToData", e.to_string()))?;
        let c = self.cutoff.forward(&data[EDGE_LENGTH_KEY]).unsqueeze(-1);
        data.insert(EDGE_CUTOFF_KEY.into(), c);
        Ok(data)
    }
    fn own_tensors(&self) -> Vec<NamedTensor> {
        self.cutoff.own_tensors().into_iter().map(|t| NamedTensor { name: format!("cutoff.{}", t.name), ..t }).collect()
    }
}

/// Keys of [`BesselBasis`].
#[auto_init]
pub struct BesselKeys {
    /// Cutoff radius.
    pub r_max: f64,
    /// Number of Bessel functions.
    #[key(default = 8)]
    pub num_basis: i64,
    /// Train the frequencies `w_n` (initialised to `n π`).
    #[key(default = true)]
    pub trainable: bool,
}

/// `(2 / r_max) · sin(w_n r / r_max) / r`, `w_n = n π` (trainable).
#[builder(name = "BesselBasis", kind = radial_function, keys = BesselKeys)]
#[derive(Debug)]
pub struct BesselBasis {
    params: Params,
    weights: Tensor,
    r_max: f64,
    num_basis: i64,
}

impl RadialBuilder for BesselBasis {
    type Keys = BesselKeys;
    fn build(k: BesselKeys, ctx: &ModuleContext) -> Result<Self, ModelError> {
        if k.r_max <= 0.0 || k.num_basis < 1 {
            return Err(ModelError::invalid(&ctx.name, format!("BesselBasis needs r_max > 0 and num_basis >= 1, got r_max={}, num_basis={}", k.r_max, k.num_basis)));
        }
        let params = ctx.params();
        let weights = params.add("bessel_weights", &bessel_weights_init(k.num_basis, ctx.kind), k.trainable);
        Ok(BesselBasis { params, weights, r_max: k.r_max, num_basis: k.num_basis })
    }
}

impl RadialFunction for BesselBasis {
    fn forward(&self, r: &Tensor) -> Tensor {
        bessel_basis(r, &self.weights, self.r_max)
    }
    fn own_tensors(&self) -> Vec<NamedTensor> {
        self.params.named()
    }
    fn num_basis(&self) -> i64 {
        self.num_basis
    }
}

/// Keys of [`PolynomialCutoff`].
#[auto_init]
pub struct PolynomialCutoffKeys {
    pub r_max: f64,
    /// Power of the polynomial envelope (>= 2).
    #[key(default = 6.0)]
    pub p: f64,
}

/// `1 − (p+1)(p+2)/2 u^p + p(p+2) u^(p+1) − p(p+1)/2 u^(p+2)`, `u = r / r_max < 1`, else 0.
#[builder(name = "PolynomialCutoff", kind = radial_function, keys = PolynomialCutoffKeys)]
#[derive(Debug)]
pub struct PolynomialCutoff {
    r_max: f64,
    p: f64,
}

impl RadialBuilder for PolynomialCutoff {
    type Keys = PolynomialCutoffKeys;
    fn build(k: PolynomialCutoffKeys, ctx: &ModuleContext) -> Result<Self, ModelError> {
        if k.p < 2.0 || k.r_max <= 0.0 {
            return Err(ModelError::invalid(&ctx.name, format!("PolynomialCutoff needs p >= 2 and r_max > 0, got p={}, r_max={}", k.p, k.r_max)));
        }
        Ok(PolynomialCutoff { r_max: k.r_max, p: k.p })
    }
}

impl RadialFunction for PolynomialCutoff {
    fn forward(&self, r: &Tensor) -> Tensor {
        polynomial_cutoff(r, self.r_max, self.p)
    }
    fn num_basis(&self) -> i64 {
        1
    }
}

/// Keys of [`E3nnBasis`].
#[auto_init]
pub struct E3nnBasisKeys {
    pub r_max: f64,
    /// Start of the basis (default 0).
    pub r_min: Option<f64>,
    /// e3nn's `soft_one_hot_linspace` basis: `gaussian`, `cosine`, `smooth_finite`, `fourier`, `bessel`.
    #[key(default = "gaussian")]
    pub e3nn_basis_name: String,
    #[key(default = 8)]
    pub num_basis: i64,
}

/// nequip's `e3nn_basis`: e3nn's `soft_one_hot_linspace(r, r_min, r_max, num_basis, basis, cutoff=True)`.
#[builder(name = "e3nn_basis", kind = radial_function, keys = E3nnBasisKeys)]
#[derive(Debug)]
pub struct E3nnBasis {
    start: f64,
    end: f64,
    number: i64,
    basis: String,
}

impl RadialBuilder for E3nnBasis {
    type Keys = E3nnBasisKeys;
    fn build(k: E3nnBasisKeys, ctx: &ModuleContext) -> Result<Self, ModelError> {
        const NAMES: [&str; 5] = ["gaussian", "cosine", "smooth_finite", "fourier", "bessel"];
        if !NAMES.contains(&k.e3nn_basis_name.as_str()) {
            return Err(ModelError::invalid(&ctx.name, format!("e3nn_basis_name must be one of {}, got {:?}", NAMES.join(", "), k.e3nn_basis_name)));
        }
        let start = k.r_min.unwrap_or(0.0);
        if k.num_basis < 1 || k.r_max <= start {
            return Err(ModelError::invalid(&ctx.name, format!("e3nn_basis needs num_basis >= 1 and r_max > r_min, got num_basis={}, r_min={start}, r_max={}", k.num_basis, k.r_max)));
        }
        Ok(E3nnBasis { start, end: k.r_max, number: k.num_basis, basis: k.e3nn_basis_name })
    }
}

/// e3nn's `soft_unit_step`: `exp(-1/x)` for `x > 0`, else 0 (gradient-safe).
fn soft_unit_step(x: &Tensor) -> Tensor {
    let pos = x.gt(0.0);
    let safe = x.where_self(&pos, &x.ones_like());
    (-safe.reciprocal()).exp() * pos.to_kind(x.kind())
}

impl RadialFunction for E3nnBasis {
    fn forward(&self, r: &Tensor) -> Tensor {
        let (n, kind, dev) = (self.number, r.kind(), r.device());
        let values = Tensor::linspace(self.start, self.end, n + 2, (kind, dev));
        let step = (self.end - self.start) / (n + 1) as f64;
        let values = values.narrow(0, 1, n);
        let x = r.unsqueeze(-1);
        let diff = (&x - values) / step;
        let pi = std::f64::consts::PI;
        let f = |b: Tensor| b.to_kind(kind);
        match self.basis.as_str() {
            "gaussian" => diff.square().neg().exp() / 1.12,
            "cosine" => (&diff * (pi / 2.0)).cos() * f(diff.lt(1.0)) * f(diff.gt(-1.0)),
            "smooth_finite" => soft_unit_step(&(&diff + 1.0)) * soft_unit_step(&(1.0 - &diff)) * (1.14136 * 2f64.exp()),
            "fourier" => {
                let u = (&x - self.start) / (self.end - self.start);
                let i = Tensor::arange_start(1, n + 1, (kind, dev));
                (&i * &u * pi).sin() / (0.25 + n as f64 / 2.0).sqrt() * f(u.gt(0.0)) * f(u.lt(1.0))
            }
            _ => {
                let u = &x - self.start;
                let c = self.end - self.start;
                let roots = Tensor::arange_start(1, n + 1, (kind, dev)) * pi;
                (&roots * &u / c).sin() / &u * (2.0 / c).sqrt() * f((&u / c).lt(1.0)) * f(u.gt(0.0))
            }
        }
    }
    fn num_basis(&self) -> i64 {
        self.number
    }
}
