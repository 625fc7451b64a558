"""e3nn 0.5.9 reference timings for `cargo bench -p nequip-core --bench e3nn_tp`.

Same shapes and measurement as nequip-core/benches/e3nn_tp.rs: NequIP's convolution tensor
product (the loop of nequip/nn/_interaction_block.py), U x (0e+1o+2e+...) (x) SH(l_max) ->
all l <= l_max (both parities), uvu, per-edge weights; forward under no_grad, and forward +
backward (gradients w.r.t. x1, x2, weights of sum(out * probe)); minimum over repetitions.

Not part of the project (which never needs Python). Set up outside the repository:
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch==2.13.0 e3nn==0.5.9
    /tmp/venv/bin/python -W ignore bench/e3nn_tp_bench.py [quick] [cpu] [E=5000] [U=64] [L=3] [dtype=f32]
`cpu`: one torch thread, CPU time of the thread (time.thread_time), as the Rust bench's `cpu`.
"""
import sys
import time

import torch
from e3nn import o3

MAX_OUT = 160_000_000


def conv_tp(mul, lmax):
    irreps_in1 = o3.Irreps([(mul, (l, (-1) ** l)) for l in range(lmax + 1)])
    irreps_sh = o3.Irreps.spherical_harmonics(lmax)
    filt = o3.Irreps([(mul, (l, p)) for l in range(lmax + 1) for p in (1, -1)])
    irreps_mid, instructions = [], []
    for i, (m, ir_in) in enumerate(irreps_in1):
        for j, (_, ir_edge) in enumerate(irreps_sh):
            for ir_out in ir_in * ir_edge:
                if ir_out in filt:
                    k = len(irreps_mid)
                    irreps_mid.append((m, ir_out))
                    instructions.append((i, j, k, "uvu", True))
    irreps_mid = o3.Irreps(irreps_mid)
    irreps_mid, p, _ = irreps_mid.sort()
    instructions = [(i1, i2, p[io], mode, tr) for i1, i2, io, mode, tr in instructions]
    return o3.TensorProduct(irreps_in1, irreps_sh, irreps_mid, instructions, shared_weights=False, internal_weights=False)


def timeit(reps, f, cpu):
    clock = time.thread_time if cpu else time.perf_counter
    f()
    best = float("inf")
    for _ in range(reps):
        t = clock()
        f()
        best = min(best, clock() - t)
    return best


def keep(key, value):
    vals = [a[len(key):] for a in sys.argv[1:] if a.startswith(key)]
    return not vals or str(value) in vals


def main():
    quick = "quick" in sys.argv
    cpu = "cpu" in sys.argv
    torch.set_num_threads(1 if cpu else 2)
    edges = [500, 5000] if quick else [500, 5000, 50000]
    what = "thread CPU time, 1 thread" if cpu else "wall time"
    print(f"torch {torch.__version__}, e3nn {__import__('e3nn').__version__}, threads {torch.get_num_threads()}, {what}, min over repetitions")
    print("| E | U | l_max | dtype | paths | out dim | forward ms | forward+backward ms |")
    print("|---|---|---|---|---|---|---|---|")
    for e in edges:
        for mul in (16, 32, 64):
            for lmax in (1, 2, 3):
                for dtype, dt in ((torch.float32, "f32"), (torch.float64, "f64")):
                    if not (keep("E=", e) and keep("U=", mul) and keep("L=", lmax) and keep("dtype=", dt)):
                        continue
                    torch.set_default_dtype(dtype)
                    tp = conv_tp(mul, lmax)
                    dim_out = tp.irreps_out.dim
                    head = f"| {e} | {mul} | {lmax} | {dt} | {len(tp.instructions)} | {dim_out} |"
                    if e * dim_out > MAX_OUT:
                        print(f"{head} skipped (memory) | skipped |", flush=True)
                        continue
                    torch.manual_seed(0)
                    x1 = torch.randn(e, tp.irreps_in1.dim, requires_grad=True)
                    x2 = torch.randn(e, tp.irreps_in2.dim, requires_grad=True)
                    w = torch.randn(e, tp.weight_numel, requires_grad=True)
                    probe = torch.randn(e, dim_out)
                    reps = 3 if e >= 50000 else (7 if e >= 5000 else 25)

                    def fwd():
                        with torch.no_grad():
                            tp(x1, x2, w)

                    def fb():
                        out = tp(x1, x2, w)
                        torch.autograd.grad((out * probe).sum(), [x1, x2, w])

                    print(f"{head} {timeit(reps, fwd, cpu) * 1e3:.3f} | {timeit(reps, fb, cpu) * 1e3:.3f} |", flush=True)


if __name__ == "__main__":
    main()
