//! Neighbor-list benchmark (docs/perf-data.md): periodic, liquid-like density 0.1 atoms/Å³,
//! r_max 5 Å, N = 1e2..1e5. With a directory argument it uses the frames written by
//! `bench/neighbors_ase.py DIR` (so ASE and nequip-rs see the same frames and edge counts are
//! compared); otherwise it makes its own (same recipe, different random numbers).
//!
//!     cargo bench -p nequip-core --bench neighbors [-- DIR]

use nequip_core::data::neighbor_list;
use nequip_core::data::npz::read_npz;
use std::path::PathBuf;
use std::time::Instant;

const R_MAX: f64 = 5.0;
const DENSITY: f64 = 0.1;

/// Jittered simple-cubic lattice in a cubic box (xorshift random numbers).
fn own_frame(n: usize) -> (Vec<[f64; 3]>, [[f64; 3]; 3]) {
    let mut m = (n as f64).cbrt().round() as usize;
    while m * m * m < n {
        m += 1;
    }
    let a = (1.0 / DENSITY).cbrt();
    let mut s: u64 = 0x2545f4914f6cdd1d;
    let mut uni = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let pos = (0..n)
        .map(|k| {
            let g = [k / (m * m), (k / m) % m, k % m];
            std::array::from_fn(|d| (g[d] as f64 + 0.7 * uni() - 0.35) * a)
        })
        .collect();
    let l = m as f64 * a;
    (pos, [[l, 0.0, 0.0], [0.0, l, 0.0], [0.0, 0.0, l]])
}

fn npz_frame(dir: &std::path::Path, n: usize) -> (Vec<[f64; 3]>, [[f64; 3]; 3]) {
    let a = read_npz(&dir.join(format!("nl_{n}.npz")), None)
        .expect("frames written by bench/neighbors_ase.py");
    let p = a["pos"].to_f64_vec();
    let c = a["cell"].to_f64_vec();
    (
        p.chunks(3).map(|x| [x[0], x[1], x[2]]).collect(),
        std::array::from_fn(|r| [c[3 * r], c[3 * r + 1], c[3 * r + 2]]),
    )
}

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map(PathBuf::from);
    let ase: Option<serde_json::Value> = dir
        .as_ref()
        .and_then(|d| std::fs::read_to_string(d.join("ase_timings.json")).ok())
        .and_then(|t| serde_json::from_str(&t).ok());
    println!(
        "{:>7} {:>10} {:>12} {:>10} {:>10} {:>8}",
        "N", "edges", "nequip-rs ms", "ns/atom", "ASE ms", "speedup"
    );
    for (k, n) in [100usize, 1000, 10000, 100000].into_iter().enumerate() {
        let (pos, cell) = match &dir {
            Some(d) => npz_frame(d, n),
            None => own_frame(n),
        };
        let reps = if n <= 10000 { 20 } else { 5 };
        let mut best = f64::INFINITY;
        let mut edges = 0;
        for _ in 0..reps {
            let t = Instant::now();
            let nl =
                neighbor_list(&pos, Some(&cell), [true; 3], R_MAX, false).expect("neighbor list");
            best = best.min(t.elapsed().as_secs_f64());
            edges = nl.len();
        }
        let (ase_ms, speed) = match ase.as_ref().and_then(|a| a.get(k)) {
            Some(r) => {
                assert_eq!(
                    r["n_edges"].as_u64(),
                    Some(edges as u64),
                    "edge count differs from ASE at N={n}"
                );
                let s = r["ase_seconds"].as_f64().unwrap_or(f64::NAN);
                (format!("{:.2}", s * 1e3), format!("{:.1}x", s / best))
            }
            None => ("-".into(), "-".into()),
        };
        println!(
            "{n:>7} {edges:>10} {:>12.3} {:>10.1} {ase_ms:>10} {speed:>8}",
            best * 1e3,
            best * 1e9 / n as f64
        );
    }
}
