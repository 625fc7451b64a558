//! Batching (offsets, batch, ptr, graph stacking, round trip) and train/val split (counts,
//! percentages, seeded random = torch.randperm, sequential, per-epoch shuffle).

use nequip_core::data::batch::collate;
use nequip_core::data::split::{
    epoch_order, parse_n_train_n_val, randperm, split, Count, Loader, SplitMode, SplitOptions,
};
use nequip_core::data::{AtomicData, NpzDataset, NpzOptions, TypeMapper};
use std::path::Path;

fn cu(frames: &[usize]) -> nequip_core::data::InMemoryDataset {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/cu_emt.npz");
    let o: NpzOptions = serde_yaml::from_str(&format!(
        "file_name: {}\nkey_mapping: {{R: pos, z: atomic_numbers, E: total_energy, F: forces}}\nnpz_fixed_field_keys: [atomic_numbers]\ninclude_keys: [cell, pbc, stress]\ninclude_frames: {frames:?}\nAtomicData_options: {{r_max: 4.0}}\n",
        file.display()
    ))
    .unwrap();
    NpzDataset::load(
        &o,
        &TypeMapper::from_chemical_symbols(&["Cu"]).unwrap(),
        None,
    )
    .unwrap()
}

#[test]
fn collate_offsets_edges_and_stacks_graph_fields() {
    let ds = cu(&[0, 5, 9]);
    let frames: Vec<&AtomicData> = ds.frames().iter().collect();
    let b = collate(&frames).unwrap();
    assert_eq!(b.num_nodes(), 96);
    assert_eq!(b.num_graphs(), 3);
    let e: Vec<usize> = frames.iter().map(|f| f.num_edges()).collect();
    assert_eq!(b.num_edges(), e.iter().sum::<usize>());
    assert_eq!(b.get("ptr").unwrap().as_i64().unwrap(), &[0, 32, 64, 96]);
    let batch = b.get("batch").unwrap().as_i64().unwrap();
    assert_eq!((batch[0], batch[31], batch[32], batch[95]), (0, 0, 1, 2));
    assert_eq!(b.get("cell").unwrap().shape, vec![3, 3, 3]);
    assert_eq!(b.get("pbc").unwrap().shape, vec![3, 3]);
    assert_eq!(b.get("total_energy").unwrap().shape, vec![3, 1]);
    assert_eq!(b.get("stress").unwrap().shape, vec![3, 3, 3]);
    assert_eq!(b.get("forces").unwrap().shape, vec![96, 3]);
    let (c, n) = b.edge_index();
    // edges of frame 1 point into atoms 32..64
    assert!((e[0]..e[0] + e[1]).all(|k| (32..64).contains(&c[k]) && (32..64).contains(&n[k])));
    // batched edge vectors (cell per frame) equal the per-frame ones
    let mut per: Vec<[f64; 3]> = Vec::new();
    frames.iter().for_each(|f| per.extend(f.edge_vectors()));
    let bv = b.edge_vectors();
    assert_eq!(per.len(), bv.len());
    for (x, y) in per.iter().zip(&bv) {
        for d in 0..3 {
            assert!((x[d] - y[d]).abs() < 1e-12);
        }
    }
    // round trip
    for (k, f) in frames.iter().enumerate() {
        assert_eq!(&&b.get_example(k).unwrap(), f);
    }
    let t = b.to_dict();
    assert_eq!(t["batch"].size(), vec![96]);
    assert_eq!(t["edge_index"].size(), vec![2, b.num_edges() as i64]);
}

#[test]
fn collate_refuses_mismatched_frames() {
    let ds = cu(&[0, 1]);
    let mut f1 = ds.get(1).unwrap().clone();
    f1.remove("stress");
    let err = collate(&[ds.get(0).unwrap(), &f1]).unwrap_err().to_string();
    assert!(
        err.starts_with("invalid option `batch`: frame 1 has fields"),
        "{err}"
    );
    assert!(collate(&[]).is_err());
}

#[test]
fn randperm_matches_torch() {
    for (n, seed) in [(10usize, 0u64), (1000, 123), (7, 1 << 40), (1, 5)] {
        tch::manual_seed(seed as i64);
        let t = tch::Tensor::randperm(n as i64, (tch::Kind::Int64, tch::Device::Cpu));
        let want: Vec<i64> = Vec::try_from(&t).unwrap();
        let got: Vec<i64> = randperm(n, seed).into_iter().map(|x| x as i64).collect();
        assert_eq!(got, want, "n {n} seed {seed}");
    }
}

#[test]
fn n_train_n_val_counts_and_percentages() {
    let p = |s: &str| Count::Percent(s.into());
    assert_eq!(
        parse_n_train_n_val(&Count::Frames(800), &Count::Frames(100), 1000, 1000).unwrap(),
        (800, 100)
    );
    assert_eq!(
        parse_n_train_n_val(&p("70%"), &p("10%"), 1000, 1000).unwrap(),
        (700, 100)
    );
    // 33.3% + 66.7% of 10 = 3.33 + 6.67 -> 3 + 6, the lost frame goes to the larger
    assert_eq!(
        parse_n_train_n_val(&p("33.3%"), &p("66.7%"), 10, 10).unwrap(),
        (3, 7)
    );
    let err = parse_n_train_n_val(&p("5%"), &Count::Frames(1), 10, 10).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid option `n_train`: must be at least 1, got 0"
    );
    let err = parse_n_train_n_val(&p("ten"), &Count::Frames(1), 10, 10).unwrap_err();
    assert!(err.to_string().contains("invalid value `ten`"));
    let c: Count = serde_yaml::from_str("\"80%\"").unwrap();
    assert_eq!(c, p("80%"));
}

#[test]
fn random_and_sequential_splits() {
    let o = SplitOptions {
        dataset_seed: 123,
        ..SplitOptions::new(Count::Frames(6), Count::Frames(3))
    };
    let (t, v) = split(&o, 10, None).unwrap();
    let perm = randperm(10, 123);
    assert_eq!(t, perm[..6]);
    assert_eq!(v, perm[6..9]);
    assert_eq!(
        split(&o, 10, None).unwrap(),
        (t.clone(), v.clone()),
        "deterministic"
    );
    let seq = SplitOptions {
        train_val_split: SplitMode::Sequential,
        ..o.clone()
    };
    assert_eq!(
        split(&seq, 10, None).unwrap(),
        ((0..6).collect(), (6..9).collect())
    );
    assert_eq!(
        split(&seq, 10, Some(5)).unwrap(),
        ((0..6).collect(), (0..3).collect())
    );
    let (t2, v2) = split(&o, 10, Some(4)).unwrap();
    assert_eq!(t2, perm[..6]);
    assert!(v2.iter().all(|&i| i < 4) && v2.len() == 3);
    let too_many = SplitOptions {
        n_train: Count::Frames(8),
        ..o.clone()
    };
    assert!(split(&too_many, 10, None)
        .unwrap_err()
        .to_string()
        .contains("too little data for training and validation"));
}

#[test]
fn per_epoch_shuffle_is_seeded_and_cycles() {
    let e0 = epoch_order(10, 10, 0, true, 42);
    let e1 = epoch_order(10, 10, 1, true, 42);
    assert_eq!(e0, randperm(10, 42));
    assert_eq!(e1, randperm(10, 43));
    assert_ne!(e0, e1);
    // partial epochs: 4 samples per epoch walk through the permutation, then into the next one
    let parts: Vec<usize> = (0..3)
        .flat_map(|e| epoch_order(10, 4, e, true, 42))
        .collect();
    let mut want = randperm(10, 42);
    want.extend(randperm(10, 43)[..2].iter());
    assert_eq!(parts, want);
    assert_eq!(epoch_order(5, 5, 3, false, 42), vec![0, 1, 2, 3, 4]);
}

#[test]
fn loader_batches_follow_nequip() {
    let o: SplitOptions = serde_yaml::from_str(
        "n_train: 8\nn_val: \"20%\"\ndataset_seed: 7\nbatch_size: 3\nvalidation_batch_size: 4\n",
    )
    .unwrap();
    assert!(o.shuffle && o.train_val_split == SplitMode::Random);
    let l = Loader::new(&o, 12, None).unwrap();
    assert_eq!((l.train_idcs.len(), l.val_idcs.len()), (8, 2));
    let b0 = l.train_batches(0);
    assert_eq!(
        b0.iter().map(|b| b.len()).collect::<Vec<_>>(),
        vec![3, 3, 2]
    );
    let flat: Vec<usize> = b0.concat();
    let want: Vec<usize> = randperm(8, 7).iter().map(|&k| l.train_idcs[k]).collect();
    assert_eq!(flat, want);
    assert_ne!(l.train_batches(1).concat(), flat);
    assert_eq!(l.val_batches(), vec![l.val_idcs.clone()]);
    let bad = SplitOptions {
        n_train_per_epoch: Some(4),
        ..o.clone()
    };
    assert!(Loader::new(&bad, 12, None)
        .unwrap_err()
        .to_string()
        .starts_with("invalid option `n_train_per_epoch`"));
    let partial = SplitOptions {
        n_train_per_epoch: Some(6),
        ..o
    };
    let l = Loader::new(&partial, 12, None).unwrap();
    assert_eq!(l.train_batches(0).concat().len(), 6);
}

#[test]
fn tensor_edge_vectors_match_and_carry_gradients() {
    use nequip_core::data::dict::{with_batch, with_edge_vectors};
    let ds = cu(&[0, 5]);
    let frames: Vec<&AtomicData> = ds.frames().iter().collect();
    let b = collate(&frames).unwrap();
    let want = b.edge_vectors();
    let mut d = b.to_dict();
    let pos = d["pos"].set_requires_grad(true);
    d.insert("pos".into(), pos.shallow_clone());
    with_edge_vectors(&mut d, true).unwrap();
    let got: Vec<f64> = Vec::try_from(&d["edge_vectors"].detach().reshape([-1])).unwrap();
    let flat: Vec<f64> = want.iter().flatten().copied().collect();
    assert_eq!(got.len(), flat.len());
    assert!(got.iter().zip(&flat).all(|(a, b)| (a - b).abs() < 1e-12));
    let lengths = &d["edge_lengths"];
    assert!(f64::try_from(lengths.max()).unwrap() < 4.0);
    // d(Σ lengths)/d pos: every edge pulls both ends, so the gradient sums to zero per frame
    lengths.sum(tch::Kind::Double).backward();
    let g = pos.grad();
    let s: Vec<f64> = Vec::try_from(&g.narrow(0, 0, 32).sum_dim_intlist(
        [0i64].as_slice(),
        false,
        tch::Kind::Double,
    ))
    .unwrap();
    assert!(s.iter().all(|x| x.abs() < 1e-9), "{s:?}");
    assert!(f64::try_from(g.abs().sum(tch::Kind::Double)).unwrap() > 1.0);
    // unbatched frame: single cell path, and with_batch
    let mut one = ds.get(0).unwrap().to_dict();
    with_batch(&mut one).unwrap();
    assert_eq!(Vec::<i64>::try_from(&one["ptr"]).unwrap(), vec![0, 32]);
    with_edge_vectors(&mut one, false).unwrap();
    assert!(!one.contains_key("edge_lengths"));
    let n0 = frames[0].num_edges() as i64;
    let first: Vec<f64> = Vec::try_from(&one["edge_vectors"].reshape([-1])).unwrap();
    assert_eq!(first.len() as i64, 3 * n0);
    assert!(first.iter().zip(&flat).all(|(a, b)| (a - b).abs() < 1e-12));
}
