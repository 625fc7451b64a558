//! Benchmark of NequIP's convolution tensor product (forward + backward), for comparison with
//! e3nn 0.5.9 (`bench/e3nn_tp_bench.py` runs the same shapes).
//!
//! Shapes: `irreps_in1 = U x (0e + 1o + 2e + ...)` up to `l_max`, `irreps_in2` = spherical
//! harmonics `0e + 1o + ...` up to `l_max`, every product output with `l <= l_max` (both
//! parities), `uvu`, per-edge weights `[E, weight_numel]`. Backward = gradients with respect to
//! x1, x2 and the weights of `sum(out * probe)`.
//!
//! ```text
//! cargo bench -p nequip-core --bench e3nn_tp                    # full grid, 2 threads, wall time
//! cargo bench -p nequip-core --bench e3nn_tp -- cpu             # 1 thread, thread CPU time
//! cargo bench -p nequip-core --bench e3nn_tp -- quick E=5000 U=64 L=3
//! ```
//! `cpu` mode runs torch with one intra-op thread and measures the CPU time of that thread
//! (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`, like Python's `time.thread_time`), which is robust to other processes on a shared machine;
//! the default mode measures wall time with torch's default threads. Both report the minimum
//! over repetitions. Filters `E=`, `U=`, `L=`, `dtype=` restrict the grid.
//! Combinations whose output exceeds `MAX_OUT` elements (~2 GB in f64 with backward buffers
//! several times that) are skipped and reported as such.

use std::time::Instant;

use nequip_core::e3nn::{Irrep, Irreps, MulIr, TensorProduct};
use tch::{Device, Kind, Tensor};

const MAX_OUT: i64 = 160_000_000;

fn conv_tp(mul: usize, lmax: u32) -> TensorProduct {
    let in1 = Irreps(
        (0..=lmax)
            .map(|l| MulIr {
                mul,
                ir: Irrep {
                    l,
                    p: (-1i32).pow(l),
                },
            })
            .collect(),
    );
    let sh = Irreps::spherical_harmonics(lmax, -1);
    let filter = Irreps(
        (0..=lmax)
            .flat_map(|l| {
                [1, -1].map(|p| MulIr {
                    mul,
                    ir: Irrep { l, p },
                })
            })
            .collect(),
    );
    TensorProduct::nequip_convolution(in1, sh, &filter).expect("valid convolution")
}

#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// Seconds of CPU time of the calling thread (Linux `CLOCK_THREAD_CPUTIME_ID`), for `cpu` mode.
fn thread_cpu() -> f64 {
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec (two 64-bit fields on x86_64/aarch64 Linux).
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc == 0 {
        ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
    } else {
        0.0
    }
}

/// Minimum seconds (wall, or thread CPU time) of `f` over `reps` runs after one warm-up.
fn time(reps: usize, cpu: bool, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let (t, c) = (Instant::now(), thread_cpu());
            f();
            if cpu {
                thread_cpu() - c
            } else {
                t.elapsed().as_secs_f64()
            }
        })
        .fold(f64::INFINITY, f64::min)
}

fn filter(args: &[String], key: &str, value: &str) -> bool {
    let vals: Vec<&str> = args.iter().filter_map(|a| a.strip_prefix(key)).collect();
    vals.is_empty() || vals.contains(&value)
}

fn main() {
    // the allocator settings the `nequip` binary applies at start-up
    nequip_core::runtime::tune_allocator();
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "quick");
    let cpu = args.iter().any(|a| a == "cpu");
    if cpu {
        tch::set_num_threads(1);
    }
    let edges: &[i64] = if quick {
        &[500, 5000]
    } else {
        &[500, 5000, 50000]
    };
    let what = if cpu {
        "thread CPU time, 1 thread"
    } else {
        "wall time"
    };
    println!(
        "torch threads: {}, {what}, min over repetitions",
        tch::get_num_threads()
    );
    println!("| E | U | l_max | dtype | paths | out dim | forward ms | forward+backward ms |");
    println!("|---|---|---|---|---|---|---|---|");
    for &e in edges {
        for mul in [16usize, 32, 64] {
            for lmax in 1..=3u32 {
                for kind in [Kind::Float, Kind::Double] {
                    let dt = if kind == Kind::Float { "f32" } else { "f64" };
                    if !(filter(&args, "E=", &e.to_string())
                        && filter(&args, "U=", &mul.to_string())
                        && filter(&args, "L=", &lmax.to_string())
                        && filter(&args, "dtype=", dt))
                    {
                        continue;
                    }
                    let tp = conv_tp(mul, lmax);
                    let dim_out = tp.irreps_out.dim() as i64;
                    let head = format!(
                        "| {e} | {mul} | {lmax} | {dt} | {} | {dim_out} |",
                        tp.instructions.len()
                    );
                    if e * dim_out > MAX_OUT {
                        println!("{head} skipped (memory) | skipped |");
                        continue;
                    }
                    tch::manual_seed(0);
                    let opt = (kind, Device::Cpu);
                    let x1 =
                        Tensor::randn([e, tp.irreps_in1.dim() as i64], opt).set_requires_grad(true);
                    let x2 =
                        Tensor::randn([e, tp.irreps_in2.dim() as i64], opt).set_requires_grad(true);
                    let w = Tensor::randn([e, tp.weight_numel as i64], opt).set_requires_grad(true);
                    let probe = Tensor::randn([e, dim_out], opt);
                    let reps = if e >= 50000 {
                        3
                    } else if e >= 5000 {
                        7
                    } else {
                        25
                    };
                    let fwd = tch::no_grad(|| {
                        time(reps, cpu, || {
                            let _ = tp.forward_with(&x1, &x2, Some(&w));
                        })
                    });
                    let fb = time(reps, cpu, || {
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
