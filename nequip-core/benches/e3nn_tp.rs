//! Benchmark of NequIP's convolution tensor product (forward + backward), for comparison with
//! e3nn 0.5.9 (`bench/e3nn_tp_bench.py` runs the same shapes).
//!
//! Shapes: `irreps_in1 = U x (0e + 1o + 2e + ...)` up to `l_max`, `irreps_in2` = spherical
//! harmonics `0e + 1o + ...` up to `l_max`, every product output with `l <= l_max` (both
//! parities), `uvu`, per-edge weights `[E, weight_numel]`. Backward = gradients with respect to
//! x1, x2 and the weights of `sum(out * probe)`.
//!
//! ```text
//! cargo bench -p nequip-core --bench e3nn_tp            # full grid
//! cargo bench -p nequip-core --bench e3nn_tp -- quick   # E = 500, 5000 only
//! ```
//! Combinations whose output exceeds `MAX_OUT` elements (~2 GB in f64 with backward buffers
//! several times that) are skipped and reported as such.

use std::time::Instant;

use nequip_core::e3nn::{Irrep, Irreps, MulIr, TensorProduct};
use tch::{Device, Kind, Tensor};

const MAX_OUT: i64 = 160_000_000;

fn conv_tp(mul: usize, lmax: u32) -> TensorProduct {
    let in1 = Irreps((0..=lmax).map(|l| MulIr { mul, ir: Irrep { l, p: (-1i32).pow(l) } }).collect());
    let sh = Irreps::spherical_harmonics(lmax, -1);
    let filter = Irreps((0..=lmax).flat_map(|l| [1, -1].map(|p| MulIr { mul, ir: Irrep { l, p } })).collect());
    TensorProduct::nequip_convolution(in1, sh, &filter).expect("valid convolution")
}

/// Minimum seconds of `f` over `reps` runs after one warm-up (robust to other load).
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut v: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[0]
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let edges: &[i64] = if quick { &[500, 5000] } else { &[500, 5000, 50000] };
    println!("torch threads: {}", tch::get_num_threads());
    println!("| E | U | l_max | dtype | paths | out dim | forward ms | forward+backward ms |");
    println!("|---|---|---|---|---|---|---|---|");
    for &e in edges {
        for mul in [16usize, 32, 64] {
            for lmax in 1..=3u32 {
                for kind in [Kind::Float, Kind::Double] {
                    let tp = conv_tp(mul, lmax);
                    let dt = if kind == Kind::Float { "f32" } else { "f64" };
                    let dim_out = tp.irreps_out.dim() as i64;
                    let head = format!("| {e} | {mul} | {lmax} | {dt} | {} | {dim_out} |", tp.instructions.len());
                    if e * dim_out > MAX_OUT {
                        println!("{head} skipped (memory) | skipped |");
                        continue;
                    }
                    tch::manual_seed(0);
                    let opt = (kind, Device::Cpu);
                    let x1 = Tensor::randn([e, tp.irreps_in1.dim() as i64], opt).set_requires_grad(true);
                    let x2 = Tensor::randn([e, tp.irreps_in2.dim() as i64], opt).set_requires_grad(true);
                    let w = Tensor::randn([e, tp.weight_numel as i64], opt).set_requires_grad(true);
                    let probe = Tensor::randn([e, dim_out], opt);
                    let reps = if e >= 50000 { 3 } else if e >= 5000 { 7 } else { 25 };
                    let fwd = tch::no_grad(|| time(reps, || {
                        let _ = tp.forward_with(&x1, &x2, Some(&w));
                    }));
                    let fb = time(reps, || {
                        let out = tp.forward_with(&x1, &x2, Some(&w));
                        let s = (out * &probe).sum(kind);
                        let _ = Tensor::run_backward(&[&s], &[&x1, &x2, &w], false, false);
                    });
                    println!("{head} {:.3} | {:.3} |", fwd * 1e3, fb * 1e3);
                }
            }
        }
    }
}
