//! The whole default NequIP energy model, composed from `nn::{radial, convnet}` with nequip's
//! state dicts loaded by name, against nequip 0.6.2 on all 4 frames of both parity cases:
//! every layer's output (frame 0), atomic energies, total energy and forces (autograd) to
//! 1e-10 relative in float64. (The graph-module wrapping and model builders come on top.)

mod nn_common;
use nn_common::*;

use std::collections::BTreeMap;

use nequip_core::data::dict::with_edge_vectors;
use nequip_core::data::AtomicDataDict;
use nequip_core::e3nn::{spherical_harmonics, Act, Irreps, Linear, ShNormalization};
use nequip_core::nn::convnet::{ByParity, ConvNetLayer, ConvNetOptions};
use nequip_core::nn::interaction::InteractionOptions;
use nequip_core::nn::radial::{edge_embedding, one_hot};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};





struct Model {
    vs: VarStore,
    embed: Linear,
    layers: Vec<ConvNetLayer>,
    to_hidden: Linear,
    to_scalar: Linear,
    sh: Vec<u32>,
    num_types: i64,
    r_max: f64,
}

fn build(case: &str) -> (Model, serde_json::Value) {
    let meta = meta(case);
    let c = &meta["config"];
    let ir = |k: &str| c[k].as_str().unwrap().parse::<Irreps>().unwrap();
    let act = |s: &serde_json::Value| s.as_str().unwrap().parse::<Act>().unwrap();
    let by = |k: &str| ByParity { e: act(&c[k]["e"]), o: act(&c[k]["o"]) };
    let num_types = meta["type_names"].as_array().unwrap().len() as i64;
    let node_attrs: Irreps = format!("{num_types}x0e").parse().unwrap();
    let sh = ir("irreps_edge_sh");
    let vs = VarStore::new(Device::Cpu);
    let m = "model.model.func";
    let embed = Linear::new(&path(&vs, &format!("{m}.chemical_embedding.linear")), node_attrs.clone(), ir("chemical_embedding_irreps_out")).unwrap();
    let o = ConvNetOptions {
        feature_irreps_hidden: ir("feature_irreps_hidden"),
        resnet: c["resnet"].as_bool().unwrap_or(false),
        gate: true,
        nonlinearity_scalars: by("nonlinearity_scalars"),
        nonlinearity_gates: by("nonlinearity_gates"),
        interaction: InteractionOptions {
            invariant_layers: c["invariant_layers"].as_u64().unwrap() as usize,
            invariant_neurons: c["invariant_neurons"].as_i64().unwrap(),
            avg_num_neighbors: c["avg_num_neighbors"].as_f64(),
            use_sc: true,
            radial_act: by("nonlinearity_scalars").e,
        },
    };
    let mut irreps = embed.irreps_out.clone();
    let mut layers = Vec::new();
    for k in 0..c["num_layers"].as_u64().unwrap() {
        let layer = ConvNetLayer::new(&path(&vs, &format!("{m}.layer{k}_convnet")), &irreps, &sh, &node_attrs, c["num_basis"].as_i64().unwrap(), &o).unwrap();
        irreps = layer.irreps_out.clone();
        layers.push(layer);
    }
    let to_hidden = Linear::new(&path(&vs, &format!("{m}.conv_to_output_hidden.linear")), irreps, ir("conv_to_output_hidden_irreps_out")).unwrap();
    let to_scalar = Linear::new(&path(&vs, &format!("{m}.output_hidden_to_scalar.linear")), ir("conv_to_output_hidden_irreps_out"), "1x0e".parse().unwrap()).unwrap();
    let r_max = c["r_max"].as_f64().unwrap();
    let mut model = Model { vs, embed, layers, to_hidden, to_scalar, sh: sh.ls(), num_types, r_max };
    load(&mut model.vs, &npz(&format!("{case}_params.npz")));
    (model, meta)
}

/// Forward one frame: (per-layer node features, atomic energy [N,1] and total energy [1] after
/// the per-species and global rescaling, forces [N,3]).
fn forward(model: &Model, state: &BTreeMap<String, Tensor>, f: &dyn Fn(&str) -> Tensor, periodic: bool) -> (Vec<Tensor>, Tensor, Tensor, Tensor) {
    let pos = f("pos").set_requires_grad(true);
    let mut data: AtomicDataDict = BTreeMap::new();
    data.insert("pos".into(), pos.shallow_clone());
    data.insert("edge_index".into(), f("edge_index"));
    if periodic {
        data.insert("cell".into(), f("cell"));
        data.insert("edge_cell_shift".into(), f("edge_cell_shift"));
    }
    with_edge_vectors(&mut data, true).unwrap();
    let m = "model.model.func";
    let types = f("atom_types").reshape([-1]);
    let node_attrs = one_hot(&types, model.num_types, Kind::Double);
    let edge_attrs = spherical_harmonics(&model.sh, &data["edge_vectors"], true, ShNormalization::Component).unwrap();
    let (emb, _) = edge_embedding(&data["edge_lengths"], &state[&format!("{m}.radial_basis.basis.bessel_weights")], model.r_max, 6.0);
    let mut h = model.embed.forward(&node_attrs);
    let mut outs = Vec::new();
    for layer in &model.layers {
        h = layer.forward(&h, &node_attrs, &edge_attrs, &emb, &data["edge_index"]);
        outs.push(h.shallow_clone());
    }
    let e = model.to_scalar.forward(&model.to_hidden.forward(&h));
    let shifts = &state[&format!("{m}.per_species_rescale.shifts")];
    let scales = &state[&format!("{m}.per_species_rescale.scales")];
    let per_type = |t: &Tensor| if t.numel() == 1 { t.reshape([1]).expand([types.size()[0]], false) } else { t.index_select(0, &types) };
    let e = e * per_type(scales).unsqueeze(-1) + per_type(shifts).unsqueeze(-1);
    let total = e.sum(Kind::Double).reshape([1]);
    let grad = Tensor::run_backward(&[&total], &[&pos], false, false)[0].shallow_clone();
    // RescaleOutput (eval mode): energies and forces scaled, total energy shifted
    let scale = state["model.scale_by"].double_value(&[]);
    let shift = if state["model.shift_by"].numel() > 0 { state["model.shift_by"].double_value(&[]) } else { 0.0 };
    (outs, e * scale, total * scale + shift, grad * -scale)
}

fn check(case: &str) {
    let (model, meta) = build(case);
    let frames = npz(&format!("{case}_frames.npz"));
    let state = npz(&format!("{case}_params.npz"));
    let periodic = case.starts_with("cu");
    let n_frames = (0..).take_while(|i| frames.contains_key(&format!("f{i}_pos"))).count();
    assert_eq!(n_frames, 4, "{case}: the fixture has 4 frames");
    let _ = &meta;
    for i in 0..n_frames {
        let f = |k: &str| frames[&format!("f{i}_{k}")].shallow_clone();
        let (outs, atomic, total, forces) = forward(&model, &state, &f, periodic);
        if i == 0 {
            for (k, h) in outs.iter().enumerate() {
                assert_close(h, &f(&format!("inter_layer{k}_convnet__node_features")), 1e-10, &format!("{case} layer {k}"));
            }
        }
        assert_close(&atomic, &f("atomic_energy"), 1e-10, &format!("{case} frame {i} atomic_energy"));
        assert_close(&total, &f("total_energy"), 1e-10, &format!("{case} frame {i} total_energy"));
        assert_close(&forces, &f("forces"), 1e-10, &format!("{case} frame {i} forces"));
    }
}

#[test]
fn aspirin_energies_and_forces_equal_nequip() {
    check("aspirin_l2");
}

#[test]
fn periodic_copper_energies_and_forces_equal_nequip() {
    check("cu_l1");
}
