//! nequip 0.6.2's state dict loads by name into the e3nn modules, and the first interaction
//! block's pieces reproduce nequip's frame-0 intermediates (aspirin_l2) to 1e-12 in float64:
//! chemical embedding (`Linear` on one-hot), `linear_1`, the radial MLP `fc`
//! (`FullyConnectedNet`, silu), and the per-edge `uvu` tensor product `tp` fed with neighbour
//! features, edge spherical harmonics and the MLP's per-edge weights; then the scatter-sum over
//! centres divided by sqrt(avg_num_neighbors), `linear_2` (also as one `FusedConvolution`), the self-connection `sc`
//! (`FullyConnectedTensorProduct` of features and one-hot species) and their sum; then the gate
//! (`ConvNetLayer.equivariant_nonlin`: scalars 8x0e, gates 2 x 8x0e, gated 8x2e + 8x1o in
//! `feature_irreps_hidden` order, whose sorted input irreps are the convolution's output).

mod nn_common;
use nn_common::*;

use std::collections::BTreeMap;

use nequip_core::data::dict::with_edge_vectors;
use nequip_core::data::AtomicDataDict;
use nequip_core::e3nn::tensor_product::TpOptions;
use nequip_core::e3nn::{spherical_harmonics, Act, FullyConnectedNet, FusedConvolution, Gate, Irreps, Linear, ShNormalization, TensorProduct};
use nequip_core::nn::radial::{edge_embedding, one_hot};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};






#[test]
fn first_interaction_block_pieces_match_nequip() {
    let frames = npz("aspirin_l2_frames.npz");
    let state = npz("aspirin_l2_params.npz");
    let f = |k: &str| frames[&format!("f0_{k}")].shallow_clone();
    let inter = |k: &str| frames[&format!("f0_inter_{k}")].shallow_clone();
    let ir = |s: &str| s.parse::<Irreps>().unwrap();
    let m = "model.model.func";

    let mut vs = VarStore::new(Device::Cpu);
    let embed = Linear::new(&path(&vs, &format!("{m}.chemical_embedding.linear")), ir("3x0e"), ir("8x0e")).unwrap();
    let linear_1 = Linear::new(&path(&vs, &format!("{m}.layer0_convnet.conv.linear_1")), ir("8x0e"), ir("8x0e")).unwrap();
    let fc = FullyConnectedNet::new(&path(&vs, &format!("{m}.layer0_convnet.conv.fc")), &[8, 16, 16, 24], Some(Act::Silu)).unwrap();
    let tp = TensorProduct::nequip_convolution(ir("8x0e"), ir("1x0e+1x1o+1x2e"), &ir("24x0e+8x1o+8x2e")).unwrap();
    let linear_2 = Linear::new(&path(&vs, &format!("{m}.layer0_convnet.conv.linear_2")), tp.irreps_out.simplify(), ir("24x0e+8x1o+8x2e")).unwrap();
    let sc = TensorProduct::fully_connected(Some(&path(&vs, &format!("{m}.layer0_convnet.conv.sc"))), ir("8x0e"), ir("3x0e"), ir("24x0e+8x1o+8x2e"), TpOptions::default()).unwrap();
    assert_eq!(tp.weight_numel, 24);
    load(&mut vs, &state);

    let node_attrs = one_hot(&f("atom_types"), 3, Kind::Double);
    let h = embed.forward(&node_attrs);
    assert_close(&h, &inter("chemical_embedding__node_features"), 1e-12, "chemical_embedding");
    let h1 = linear_1.forward(&h);
    assert_close(&h1, &inter("layer0_convnet.conv.linear_1__out"), 1e-12, "linear_1");

    let mut data: AtomicDataDict = BTreeMap::new();
    data.insert("pos".into(), f("pos"));
    data.insert("edge_index".into(), f("edge_index"));
    with_edge_vectors(&mut data, true).unwrap();
    let weights = &state[&format!("{m}.radial_basis.basis.bessel_weights")];
    let (emb, _) = edge_embedding(&data["edge_lengths"], weights, 4.0, 6.0);
    let w = fc.forward(&emb);
    assert_close(&w, &inter("layer0_convnet.conv.fc__out"), 1e-12, "fc (radial MLP)");

    let sh = spherical_harmonics(&[0, 1, 2], &data["edge_vectors"], true, ShNormalization::Component).unwrap();
    let neighbours = h1.index_select(0, &data["edge_index"].get(1));
    let msg = tp.forward_with(&neighbours, &sh, Some(&w));
    assert_close(&msg, &inter("layer0_convnet.conv.tp__out"), 1e-12, "tp (per-edge messages)");

    // scatter-sum of the messages on their centres, / sqrt(avg_num_neighbors = 10.5)
    let n = h1.size()[0];
    let summed = Tensor::zeros([n, msg.size()[1]], (Kind::Double, Device::Cpu)).index_add(0, &data["edge_index"].get(0), &msg) / 10.5f64.sqrt();
    let out2 = linear_2.forward(&summed);
    assert_close(&out2, &inter("layer0_convnet.conv.linear_2__out"), 1e-12, "linear_2");
    // the same three steps as one FusedConvolution (what InteractionBlock runs)
    let fused = FusedConvolution::try_new(&tp, &linear_2).expect("fuses");
    for native in [true, false] {
        let (ei, lw) = (&data["edge_index"], linear_2.weight.as_ref().unwrap());
        let out2_fused = fused.forward_using(native, &h1, &ei.get(1), &sh, &w, &ei.get(0), n, Some(10.5f64.sqrt()), lw);
        assert_close(&out2_fused, &inter("layer0_convnet.conv.linear_2__out"), 1e-12, &format!("fused tp → scatter → linear_2 (native {native})"));
    }
    let self_connection = sc.forward(&h, &node_attrs);
    assert_close(&self_connection, &inter("layer0_convnet.conv.sc__out"), 1e-12, "sc (self-connection)");
    assert_close(&(out2 + self_connection), &inter("layer0_convnet.conv__node_features"), 1e-12, "conv output");

    let gate = Gate::new(ir("8x0e"), vec![Some(Act::Silu)], ir("8x0e+8x0e"), vec![Some(Act::Silu), Some(Act::Silu)], ir("8x2e+8x1o")).unwrap();
    assert_eq!(gate.irreps_in.simplify(), ir("24x0e+8x1o+8x2e"));
    let conv_out = inter("layer0_convnet.conv__node_features");
    let gated = gate.forward(&conv_out);
    assert_close(&gated, &inter("layer0_convnet.equivariant_nonlin__out"), 1e-12, "gate");
    // resnet is off (irreps change), so the gate's output is the layer's output
    assert_close(&gated, &inter("layer0_convnet__node_features"), 1e-12, "layer 0 output");
    assert_eq!(gate.irreps_out.to_string(), "8x0e+8x2e+8x1o");
}
