"""ASE side of the neighbor-list benchmark of nequip-rs (docs/perf-data.md).

Writes the benchmark frames (periodic, liquid-like density 0.1 atoms/Å³, jittered simple-cubic
lattice, N = 1e2..1e5) to DIR/nl_<N>.npz and times ASE's `neighbor_list` (the call nequip 0.6.2
makes) on them. The Rust side reads the same files:

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install ase numpy
    /tmp/venv/bin/python bench/neighbors_ase.py /tmp/nl-frames
    cargo bench -p nequip-core --bench neighbors -- /tmp/nl-frames

Python is only needed for this comparison; nequip-rs itself never runs it.
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
from ase.neighborlist import primitive_neighbor_list

R_MAX = 5.0
DENSITY = 0.1


def frame(n, seed=0):
    rng = np.random.default_rng(seed)
    m = int(round(n ** (1 / 3)))
    a = (1 / DENSITY) ** (1 / 3)
    grid = np.stack(np.meshgrid(*[np.arange(m)] * 3, indexing="ij"), -1).reshape(-1, 3)
    # a lattice of m³ sites, the first n used (m³ >= n), jittered by ±0.35 a
    while len(grid) < n:
        m += 1
        grid = np.stack(np.meshgrid(*[np.arange(m)] * 3, indexing="ij"), -1).reshape(-1, 3)
    pos = (grid[:n] + rng.uniform(-0.35, 0.35, size=(n, 3))) * a
    cell = np.eye(3) * m * a
    return pos, cell


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/nl-frames")
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for n in (100, 1000, 10000, 100000):
        pos, cell = frame(n)
        np.savez(out / f"nl_{n}.npz", pos=pos, cell=cell)
        reps = 5 if n <= 10000 else 2
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            i, j, S = primitive_neighbor_list("ijS", [True] * 3, cell, pos, cutoff=R_MAX, self_interaction=False)
            best = min(best, time.perf_counter() - t)
        results.append({"n_atoms": n, "n_edges": int(len(i)), "ase_seconds": best})
        print(f"N={n:>6}  edges={len(i):>9}  ASE {best * 1e3:10.2f} ms", flush=True)
    (out / "ase_timings.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
