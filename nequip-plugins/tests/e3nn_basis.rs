//! nequip's `e3nn_basis` radial basis (e3nn 0.5.9 `soft_one_hot_linspace(cutoff=True)`) against
//! values from e3nn (`fixtures/e3nn_basis_reference.json`, made by `fixtures/gen_e3nn_basis.py`),
//! and used as `RadialBasisEdgeEncoding`'s `basis` from YAML.

use nequip_core::config::{Config, Source};

#[test]
fn every_basis_equals_e3nn() {
    nequip_plugins::link();
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/e3nn_basis_reference.json");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let rs: Vec<f64> = r["r"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    for name in ["gaussian", "cosine", "smooth_finite", "fourier", "bessel"] {
        for r_min in [None, Some(0.5)] {
            let key = format!("{name}_{}", r_min.map(|x: f64| x.to_string()).unwrap_or("None".into()));
            let yaml = format!(
                "r_max: 4.0\nnum_basis: 6\nl_max: 1\nparity: true\nnum_features: 2\nnum_layers: 1\nchemical_symbols: [H]\navg_num_neighbors: 2.0\ndevice: cpu\nmodel_dtype: float64\n\
                 model_builders: [SimpleIrrepsConfig, EnergyModel]\nRadialBasisEdgeEncoding_basis: e3nn_basis\ne3nn_basis_e3nn_basis_name: {name}\n{}",
                r_min.map(|x| format!("e3nn_basis_r_min: {x}\n")).unwrap_or_default()
            );
            let mut c = Config::from_yaml_str(&yaml, "t.yaml").unwrap();
            c.set("default_dtype", "float64".into(), Source::Cli("t".into()));
            let m = nequip_core::model::model_from_config(&mut c, Default::default()).unwrap();
            // the embedding of a dimer at each distance is basis(r) * cutoff(r)
            let sgn = m.model.as_any().downcast_ref::<nequip_core::nn::SequentialGraphNetwork>().unwrap();
            let emb = sgn.get("radial_basis").unwrap();
            for (i, &d) in rs.iter().enumerate() {
                let mut data = nequip_core::data::AtomicDataDict::new();
                data.insert("pos".into(), tch::Tensor::from_slice(&[0.0, 0.0, 0.0, d, 0.0, 0.0]).reshape([2, 3]));
                data.insert("edge_index".into(), tch::Tensor::from_slice(&[0i64, 1]).reshape([2, 1]));
                let out = emb.forward(data, false).unwrap();
                let cutoff = out["edge_cutoff"].double_value(&[0, 0]);
                let want: Vec<f64> = r[&key][i].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() * cutoff).collect();
                let got = Vec::<f64>::try_from(&out["edge_embedding"].flatten(0, -1)).unwrap();
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() <= 1e-12 * b.abs().max(1e-3), "{key} r={d}: {a} vs e3nn {b}");
                }
            }
        }
    }
}
