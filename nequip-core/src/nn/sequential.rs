//! `SequentialGraphNetwork`: port of `nequip/nn/_graph_mixin.py::SequentialGraphNetwork`
//! (nequip 0.6.2): named graph modules run in order, irreps checked between neighbours,
//! built from shared config keys (`from_parameters`), edited by `append` / `insert`.

use super::graph::{check_compatible, init_irreps, GraphIrreps, GraphModule, IrrepsDict, ModelError, ModuleContext};
use super::module::{build_module, LayerSpec};
use crate::config::Config;
use crate::data::AtomicDataDict;

/// Where [`SequentialGraphNetwork::insert`] puts a module.
#[derive(Debug, Clone, Copy)]
pub enum Position<'a> {
    Before(&'a str),
    After(&'a str),
}

#[derive(Debug)]
pub struct SequentialGraphNetwork {
    irreps: GraphIrreps,
    modules: Vec<(String, Box<dyn GraphModule>)>,
}

impl SequentialGraphNetwork {
    /// nequip's `SequentialGraphNetwork(modules)`: consecutive modules must agree on shared fields.
    pub fn new(modules: Vec<(String, Box<dyn GraphModule>)>) -> Result<Self, ModelError> {
        let (Some(first), Some(last)) = (modules.first(), modules.last()) else {
            return Err(ModelError::invalid("SequentialGraphNetwork", "needs at least one module"));
        };
        for w in modules.windows(2) {
            check_compatible(&w[0].0, w[0].1.irreps_out(), &w[1].0, w[1].1.irreps_in())?;
        }
        let irreps = init_irreps("SequentialGraphNetwork", first.1.irreps_in(), first.1.irreps_in(), &[], last.1.irreps_out())?;
        Ok(SequentialGraphNetwork { irreps, modules })
    }

    /// nequip's `from_parameters(shared_params, layers, irreps_in)`: each layer is built by
    /// [`build_module`] with the previous layer's `irreps_out` (the first gets `irreps_in`).
    pub fn from_parameters(config: &Config, layers: &[LayerSpec], irreps_in: IrrepsDict, ctx: &ModuleContext) -> Result<Self, ModelError> {
        let mut built: Vec<(String, Box<dyn GraphModule>)> = Vec::new();
        for spec in layers {
            let prev = built.last().map(|(_, m)| m.irreps_out().clone()).unwrap_or_else(|| irreps_in.clone());
            let m = build_module(spec, config, &ctx.with(&spec.name, prev))?;
            built.push((spec.name.clone(), m));
        }
        Self::new(built)
    }

    pub fn names(&self) -> Vec<&str> {
        self.modules.iter().map(|(n, _)| n.as_str()).collect()
    }
    pub fn len(&self) -> usize {
        self.modules.len()
    }
    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }
    pub fn get(&self, name: &str) -> Option<&dyn GraphModule> {
        self.modules.iter().find(|(n, _)| n == name).map(|(_, m)| m.as_ref())
    }
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Box<dyn GraphModule>> {
        self.modules.iter_mut().find(|(n, _)| n == name).map(|(_, m)| m)
    }
    fn index_of(&self, name: &str) -> Result<usize, ModelError> {
        self.modules.iter().position(|(n, _)| n == name).ok_or_else(|| ModelError::invalid("SequentialGraphNetwork", format!("no module named `{name}` (modules: {})", self.names().join(", "))))
    }
    fn check_new_name(&self, name: &str) -> Result<(), ModelError> {
        if self.modules.iter().any(|(n, _)| n == name) {
            return Err(ModelError::invalid("SequentialGraphNetwork", format!("a module named `{name}` exists already")));
        }
        Ok(())
    }

    /// nequip's `append(name, module)`.
    pub fn append(&mut self, name: &str, module: Box<dyn GraphModule>) -> Result<(), ModelError> {
        self.check_new_name(name)?;
        let last = self.modules.last().map(|(n, _)| n.clone()).unwrap_or_default();
        check_compatible(&last, &self.irreps.irreps_out, name, module.irreps_in())?;
        self.irreps.irreps_out = module.irreps_out().clone();
        self.modules.push((name.into(), module));
        Ok(())
    }

    /// nequip's `append_from_parameters(shared_params, name, builder, params)`.
    pub fn append_from_parameters(&mut self, config: &Config, spec: &LayerSpec, ctx: &ModuleContext) -> Result<(), ModelError> {
        let m = build_module(spec, config, &ctx.with(&spec.name, self.irreps.irreps_out.clone()))?;
        self.append(&spec.name, m)
    }

    /// nequip's `insert(name, module, after=, before=)`: later modules see the new outputs.
    pub fn insert(&mut self, name: &str, module: Box<dyn GraphModule>, at: Position<'_>) -> Result<(), ModelError> {
        self.check_new_name(name)?;
        let idx = match at {
            Position::Before(n) => self.index_of(n)?,
            Position::After(n) => self.index_of(n)? + 1,
        };
        if idx > 0 {
            let (pn, pm) = &self.modules[idx - 1];
            check_compatible(pn, pm.irreps_out(), name, module.irreps_in())?;
        }
        if let Some((nn, nm)) = self.modules.get(idx) {
            check_compatible(name, module.irreps_out(), nn, nm.irreps_in())?;
        }
        let new_out = module.irreps_out().clone();
        self.modules.insert(idx, (name.into(), module));
        for (_, m) in self.modules.iter_mut().skip(idx + 1) {
            m.add_independent_irreps(&new_out);
        }
        self.irreps.irreps_out = self.modules.last().map(|(_, m)| m.irreps_out().clone()).unwrap_or_default();
        Ok(())
    }

    /// nequip's `insert_from_parameters(shared_params, name, builder, params, after=, before=)`:
    /// built with the irreps after the module preceding the insertion point.
    pub fn insert_from_parameters(&mut self, config: &Config, spec: &LayerSpec, at: Position<'_>, ctx: &ModuleContext) -> Result<(), ModelError> {
        let idx = match at {
            Position::Before(n) => self.index_of(n)?,
            Position::After(n) => self.index_of(n)? + 1,
        };
        let prev = if idx == 0 { self.irreps.irreps_in.clone() } else { self.modules[idx - 1].1.irreps_out().clone() };
        let m = build_module(spec, config, &ctx.with(&spec.name, prev))?;
        self.insert(&spec.name, m, at)
    }
}

impl GraphModule for SequentialGraphNetwork {
    crate::graph_module_boilerplate!("SequentialGraphNetwork");
    fn forward(&self, mut data: AtomicDataDict, training: bool) -> Result<AtomicDataDict, ModelError> {
        for (_, m) in &self.modules {
            data = m.forward(data, training)?;
        }
        Ok(data)
    }
    fn children(&self) -> Vec<(String, &dyn GraphModule)> {
        self.modules.iter().map(|(n, m)| (n.clone(), m.as_ref())).collect()
    }
    fn children_mut(&mut self) -> Vec<&mut dyn GraphModule> {
        self.modules.iter_mut().map(|(_, m)| m.as_mut() as &mut dyn GraphModule).collect()
    }
}
