#!/usr/bin/env python3
"""MD-style inference benchmark: energy + forces (+ stress when periodic) of ONE structure per
call, on slightly perturbed positions (as in MD), nequip-rs vs nequip 0.6.2 vs nequip 0.19.1.

Driven by bench/md_bench.sh (see there for the environments and the whole protocol). Each
`run`/`lammps` call measures one (implementation, system, threads) point in its own process and
prints one JSON line (appended to --out when given).

Subcommands
  prepare  --work DIR             data splits for nequip 0.19.1 training (DIR/data19), LAMMPS data
                                  files (DIR/lammps/*.data)
  run      --impl IMPL ...        time calls through a Python front end:
             rs-ase     nequip_rs.ase.NequIPCalculator (integrations/python; ctypes -> C library)
             rs-capi    the bare C library call nqrs_compute through ctypes (no ASE)
             nequip062  nequip 0.6.2 nequip.ase.NequIPCalculator.from_deployed_model (TorchScript)
             nequip019  nequip 0.19.1 nequip.integrations.ase.NequIPCalculator.from_compiled_model
                        (AOTInductor, --target ase)
  lammps   ...                    `run N` with fix nve through pair_style nequip/rs; time per step
                                  from LAMMPS's "Loop time"; peak RSS from /usr/bin/time -v
  check    A.npz B.npz            energy / force / stress differences of two --dump files
  report   results.jsonl          markdown tables

Systems: `toluene` (15 atoms, first frame of data/toluene_xtb.extxyz, no cell), `cu:N` (the
32-atom periodic fcc Cu cell of data/cu_emt.extxyz, frame 0, replicated N x N x N: 32 N^3 atoms).

Timing (run): W warm-up calls, then R repetitions of S calls each (S chosen so one repetition
takes about --rep-seconds, within [--min-steps, --max-steps]); per call the positions are
set to one of 8 pre-generated perturbations (Gaussian, --sigma Angstrom) of the structure, then
forces, energy and (periodic) stress are read through ASE (one model call per step, checked), or
nqrs_compute is called once (rs-capi). Reported: the best repetition's time per step.
"""
import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------- systems
def load_system(name):
    from ase.io import read

    if name == "toluene":
        atoms = read(os.path.join(REPO, "data/toluene_xtb.extxyz"), index=0)
        atoms.calc = None
        atoms.pbc = False
        atoms.cell = np.zeros((3, 3))
        return atoms
    m = re.fullmatch(r"cu:(\d+)", name)
    if m:
        n = int(m.group(1))
        atoms = read(os.path.join(REPO, "data/cu_emt.extxyz"), index=0)
        atoms.calc = None
        return atoms.repeat((n, n, n))
    raise SystemExit(f"unknown system {name!r} (toluene, cu:N)")


def perturbations(atoms, k, sigma, seed=0):
    rng = np.random.default_rng(seed)
    base = atoms.get_positions()
    return [base + rng.normal(0.0, sigma, base.shape) for _ in range(k)]


def rss_now_kb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


# ---------------------------------------------------------------- front ends
def make_ase_calc(impl, model, threads, symbols):
    """Returns an ASE calculator of `impl` with `threads` intra-op threads."""
    species = {s: s for s in sorted(set(symbols))}
    if impl == "rs-ase":
        sys.path.insert(0, os.environ.get("NEQUIP_RS_PY") or os.path.join(REPO, "integrations/python"))
        import nequip_rs
        from nequip_rs.ase import NequIPCalculator

        nequip_rs.set_num_threads(threads)
        return NequIPCalculator.from_deployed_model(model, species_to_type_name=species)
    import torch

    torch.set_num_threads(threads)
    if impl == "nequip062":
        from nequip.ase import NequIPCalculator

        return NequIPCalculator.from_deployed_model(
            model, device="cpu", species_to_type_name=species, set_global_options=True
        )
    if impl == "nequip019":
        from nequip.integrations.ase import NequIPCalculator

        return NequIPCalculator.from_compiled_model(
            model, device="cpu", chemical_species_to_atom_type_map=species
        )
    raise SystemExit(f"unknown impl {impl!r}")


class CapiCaller:
    """nqrs_compute through ctypes (the bare C-library call: energy, forces, virial if periodic)."""

    def __init__(self, model, threads, atoms):
        import ctypes as C

        lib_path = os.environ.get("NEQUIP_RS_LIB") or os.path.join(REPO, "target/release/libnequip_capi.so")
        lib = C.CDLL(lib_path)
        lib.nqrs_last_error.restype = C.c_char_p
        lib.nqrs_set_num_threads.argtypes = [C.c_int32]
        lib.nqrs_model_load.argtypes = [C.c_char_p, C.c_char_p, C.POINTER(C.c_void_p)]
        lib.nqrs_model_num_types.argtypes = [C.c_void_p, C.POINTER(C.c_int32)]
        lib.nqrs_model_type_name.argtypes = [C.c_void_p, C.c_int32, C.POINTER(C.c_char_p)]
        dp = C.POINTER(C.c_double)
        ip = C.POINTER(C.c_int32)
        lib.nqrs_compute.argtypes = [C.c_void_p, C.c_int64, dp, ip, dp, ip, dp, dp, dp, dp]
        self.C, self.lib = C, lib
        self._ok(lib.nqrs_set_num_threads(threads))
        h = C.c_void_p()
        self._ok(lib.nqrs_model_load(model.encode(), b"cpu", C.byref(h)))
        self.h = h
        nt = C.c_int32()
        self._ok(lib.nqrs_model_num_types(h, C.byref(nt)))
        names = []
        for i in range(nt.value):
            s = C.c_char_p()
            self._ok(lib.nqrs_model_type_name(h, i, C.byref(s)))
            names.append(s.value.decode())
        idx = {n: i for i, n in enumerate(names)}
        self.n = len(atoms)
        self.types = np.ascontiguousarray([idx[s] for s in atoms.get_chemical_symbols()], dtype=np.int32)
        self.periodic = bool(np.any(atoms.pbc))
        self.cell = np.ascontiguousarray(atoms.cell.array, dtype=np.float64)
        self.pbc = np.ascontiguousarray(atoms.pbc, dtype=np.int32)
        self.forces = np.zeros((self.n, 3))
        self.virial = np.zeros(9)
        self.energy = C.c_double()
        self._dp, self._ip = dp, ip

    def _ok(self, rc):
        if rc != 0:
            raise RuntimeError(f"nequip_rs C library error {rc}: {self.lib.nqrs_last_error().decode()}")

    def __call__(self, pos):
        pos = np.ascontiguousarray(pos, dtype=np.float64)
        dp, ip = self._dp, self._ip
        self._ok(self.lib.nqrs_compute(
            self.h, self.n, pos.ctypes.data_as(dp), self.types.ctypes.data_as(ip),
            self.cell.ctypes.data_as(dp) if self.periodic else None,
            self.pbc.ctypes.data_as(ip) if self.periodic else None,
            self.C.byref(self.energy), self.forces.ctypes.data_as(dp),
            self.virial.ctypes.data_as(dp) if self.periodic else None, None))
        return self.energy.value

    def results(self):
        out = {"energy": self.energy.value, "forces": self.forces.copy()}
        if self.periodic:
            vol = abs(np.linalg.det(self.cell))
            out["stress"] = (-self.virial.reshape(3, 3) / vol)  # 3x3, ASE's sign
        return out


def cmd_run(a):
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    load0 = os.getloadavg()[0]
    atoms = load_system(a.system)
    periodic = bool(np.any(atoms.pbc))
    P = perturbations(atoms, 8, a.sigma)
    base = atoms.get_positions()
    rss0 = rss_now_kb()
    t0 = time.perf_counter()
    calls = [0]
    if a.impl == "rs-capi":
        caller = CapiCaller(a.model, a.threads, atoms)

        def step(pos):
            caller(pos)
    else:
        calc = make_ase_calc(a.impl, a.model, a.threads, atoms.get_chemical_symbols())
        orig = calc.calculate

        def counted(*args, **kw):
            calls[0] += 1
            return orig(*args, **kw)

        calc.calculate = counted
        atoms.calc = calc

        def step(pos):
            atoms.set_positions(pos)
            atoms.get_forces()
            atoms.get_potential_energy()
            if periodic:
                atoms.get_stress()
    t_load = time.perf_counter() - t0

    # reference values at the unperturbed positions (first call, untimed)
    t0 = time.perf_counter()
    step(base)
    t_first = time.perf_counter() - t0
    if a.impl == "rs-capi":
        ref = caller.results()
    else:
        ref = {"energy": float(atoms.get_potential_energy()), "forces": atoms.get_forces().copy()}
        if periodic:
            from ase.stress import voigt_6_to_full_3x3_stress

            ref["stress"] = voigt_6_to_full_3x3_stress(atoms.get_stress())
    if a.dump:
        np.savez(a.dump, **ref)

    warm = []
    for i in range(a.warmup):
        t = time.perf_counter()
        step(P[i % len(P)])
        warm.append(time.perf_counter() - t)
    est = min(warm[-3:]) if warm else t_first
    steps = int(max(a.min_steps, min(a.max_steps, round(a.rep_seconds / max(est, 1e-9)))))
    calls[0] = 0
    per_step = []
    for r in range(a.reps):
        t = time.perf_counter()
        for i in range(steps):
            step(P[i % len(P)])
        per_step.append((time.perf_counter() - t) / steps)
    calls_per_step = None if a.impl == "rs-capi" else calls[0] / (steps * a.reps)
    best = min(per_step)
    res = {
        "kind": "run", "impl": a.impl, "system": a.system, "natoms": len(atoms), "periodic": periodic,
        "threads": a.threads, "dtype": a.dtype, "model": a.model, "tag": a.tag,
        "warmup": a.warmup, "steps": steps, "reps": a.reps, "sigma": a.sigma,
        "per_step_s": per_step, "best_s": best, "structures_per_s": 1.0 / best,
        "us_per_atom_step": best / len(atoms) * 1e6, "calls_per_step": calls_per_step,
        "load_s": t_load, "first_call_s": t_first, "energy0": float(ref["energy"]),
        "rss_before_model_mb": rss0 / 1024, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "loadavg_start": load0, "loadavg_end": os.getloadavg()[0],
    }
    emit(res, a.out)


# ---------------------------------------------------------------- LAMMPS
def lammps_data_path(work, system):
    return os.path.join(work, "lammps", ("toluene" if system == "toluene" else "cu32") + ".data")


def cmd_prepare(a):
    from ase.io import read, write

    d19 = os.path.join(a.work, "data19")
    os.makedirs(d19, exist_ok=True)
    z = np.load(os.path.join(REPO, "data/toluene_xtb.npz"))
    np.savez(os.path.join(d19, "toluene_train.npz"), R=z["R"][:50], z=z["z"], E=z["E"][:50], F=z["F"][:50])
    np.savez(os.path.join(d19, "toluene_val.npz"), R=z["R"][50:60], z=z["z"], E=z["E"][50:60], F=z["F"][50:60])
    frames = read(os.path.join(REPO, "data/cu_emt.extxyz"), index=":25")
    write(os.path.join(d19, "cu_train.extxyz"), frames[:20])
    write(os.path.join(d19, "cu_val.extxyz"), frames[20:25])
    ld = os.path.join(a.work, "lammps")
    os.makedirs(ld, exist_ok=True)
    tol = load_system("toluene")
    tol.cell = np.eye(3) * 60.0
    tol.center()
    write(lammps_data_path(a.work, "toluene"), tol, format="lammps-data", specorder=["C", "H"],
          masses=True, atom_style="atomic")
    cu = load_system("cu:1")
    write(lammps_data_path(a.work, "cu:1"), cu, format="lammps-data", specorder=["Cu"], masses=True,
          atom_style="atomic")
    print(f"prepared {d19} and {ld}")


def cmd_lammps(a):
    load0 = os.getloadavg()[0]
    tol = a.system == "toluene"
    if not tol:
        n = int(re.fullmatch(r"cu:(\d+)", a.system).group(1))
    natoms = 15 if tol else 32 * n ** 3
    lines = [
        f"plugin load {a.plugin}",
        "units metal", "atom_style atomic",
        "boundary f f f" if tol else "boundary p p p",
        f"read_data {lammps_data_path(a.work, a.system)}",
    ]
    if not tol and n > 1:
        lines.append(f"replicate {n} {n} {n}")
    pair = "pair_style nequip/rs" + (" ghost" if a.ghost else "") + f" threads {a.threads}"
    lines += [
        pair,
        f"pair_coeff * * {a.model} " + ("C H" if tol else "Cu"),
        "neighbor 1.0 bin", "neigh_modify every 1 delay 0 check yes",
        "velocity all create 300.0 4928459 mom yes rot no dist gaussian loop geom",
        f"timestep {0.0005 if tol else 0.001}",
        "fix 1 all nve",
        "thermo_style custom step temp pe etotal press",
        "thermo 0",
        f"run {a.warmup}",
    ]
    est = a.est_step_s
    if a.est_from and os.path.exists(a.est_from):
        # the time per step of the bare C-library call measured just before (same system/threads)
        for l in open(a.est_from):
            r = json.loads(l)
            if r["impl"] == "rs-capi" and r["system"] == a.system and r["threads"] == a.threads and r.get("tag") == a.tag:
                est = r["best_s"]
    steps = a.steps or max(3, min(2000, int(round(a.rep_seconds / max(est, 1e-9)))))
    lines += [f"run {steps}"] * a.reps
    inp = os.path.join(a.work, "lammps", f"in.{a.system.replace(':', '')}.t{a.threads}.np{a.np}{'.ghost' if a.ghost else ''}{'.fix' if a.fix else ''}{'.' + a.tag if a.tag else ''}")
    with open(inp, "w") as f:
        f.write("\n".join(lines) + "\n")
    cmd = ["/usr/bin/time", "-v"]
    if a.np > 1 or a.mpiexec:
        cmd += [os.path.join(a.venv, "bin/mpiexec"), "-n", str(a.np)]
    cmd += [os.path.join(a.venv, "bin/lmp"), "-in", inp, "-log", "none"]
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    if a.fix:
        # Workaround of two process-level clashes (see bench/md_results.md): liblammps.so exports
        # its bundled reference BLAS (dgemm_, dgemv_, ...), which then also serves libtorch's own
        # dgemm_ calls (float64 matmuls ~3x slower): preload libtorch_cpu.so so that its symbols
        # come first; and the wheel's lmp carries its own libgomp next to libtorch's: keep
        # OMP_NUM_THREADS=1 (libtorch's threads come from `pair_style nequip/rs threads N`).
        env["LD_PRELOAD"] = a.libtorch
        env["OMP_NUM_THREADS"] = "1"
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-4000:] + p.stderr[-4000:])
        raise SystemExit(f"lmp failed ({p.returncode}): {' '.join(cmd)}")
    loops = [(float(t), int(s)) for t, s in re.findall(r"Loop time of ([0-9.eE+-]+) on \d+ procs for (\d+) steps", p.stdout)]
    timed = [t / s for t, s in loops[1:]]
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    pe = re.findall(r"^\s*\d+\s+[-0-9.eE+]+\s+([-0-9.eE+]+)\s+[-0-9.eE+]+\s+[-0-9.eE+]+\s*$", p.stdout, re.M)
    best = min(timed)
    res = {
        "kind": "lammps", "impl": "rs-lammps" + ("-fix" if a.fix else "") + (f"-mpi{a.np}" if (a.np > 1 or a.mpiexec) else "") + ("-ghost" if a.ghost else ""),
        "system": a.system, "natoms": natoms, "periodic": not tol, "threads": a.threads, "np": a.np,
        "dtype": a.dtype, "model": a.model, "tag": a.tag, "warmup": a.warmup, "steps": steps,
        "reps": a.reps, "per_step_s": timed, "best_s": best, "structures_per_s": 1.0 / best,
        "us_per_atom_step": best / natoms * 1e6, "pe_first": float(pe[0]) if pe else None,
        "peak_rss_mb": int(rss.group(1)) / 1024 if rss else None,
        "loadavg_start": load0, "loadavg_end": os.getloadavg()[0],
        "command": (f"LD_PRELOAD={a.libtorch} " if a.fix else "") + f"OMP_NUM_THREADS={env['OMP_NUM_THREADS']} " + " ".join(cmd[2:]),
    }
    emit(res, a.out)


# ---------------------------------------------------------------- check / report
def cmd_check(a):
    x, y = np.load(a.a), np.load(a.b)
    de = abs(float(x["energy"]) - float(y["energy"]))
    df = float(np.abs(x["forces"] - y["forces"]).max())
    line = f"{a.label}: E {float(x['energy']):.10f} vs {float(y['energy']):.10f}  |dE| {de:.2e}  |dE|/|E| {de / abs(float(x['energy'])):.2e}  max|dF| {df:.2e}"
    if "stress" in x and "stress" in y:
        line += f"  max|dstress| {float(np.abs(x['stress'] - y['stress']).max()):.2e}"
    print(line)


def emit(res, out):
    s = json.dumps(res)
    print(s, flush=True)
    if out:
        with open(out, "a") as f:
            f.write(s + "\n")


def cmd_report(a):
    rows = [json.loads(l) for l in open(a.results) if l.strip()]
    best = {}
    for r in rows:
        key = (r.get("tag") or "", r["system"], r["threads"], r["impl"], r.get("dtype"))
        if key not in best or r["best_s"] < best[key]["best_s"]:
            best[key] = r
    tags = sorted({k[0] for k in best})
    for tag in tags:
        sel = {k: v for k, v in best.items() if k[0] == tag}
        impls = [i for i in ["rs-ase", "rs-capi", "rs-lammps", "rs-lammps-fix", "nequip062", "nequip019"] if any(k[3] == i for k in sel)]
        impls += sorted({k[3] for k in sel} - set(impls))
        print(f"\n### {tag or 'results'}: structures/s (best repetition; us/atom/step in brackets)\n")
        print("| system | atoms | dtype | threads | " + " | ".join(impls) + " | rs-ase / best nequip |")
        print("|---|---|---|---|" + "---|" * len(impls) + "---|")
        keys = sorted({(k[1], k[2], k[4]) for k in sel}, key=lambda t: (t[0] != "toluene", sel_natoms(sel, t), t[2], t[1]))
        for system, threads, dtype in keys:
            cells, rate = [], {}
            for i in impls:
                r = sel.get((tag, system, threads, i, dtype))
                if r is None:
                    cells.append("—")
                    continue
                rate[i] = r["structures_per_s"]
                cells.append(f"{r['structures_per_s']:.4g} ({r['us_per_atom_step']:.3g})")
            nq = [rate[i] for i in ("nequip062", "nequip019") if i in rate]
            ratio = f"{rate['rs-ase'] / max(nq):.2f}" if nq and "rs-ase" in rate else "—"
            natoms = sel_natoms(sel, (system, threads, dtype))
            print(f"| {system} | {natoms} | {dtype} | {threads} | " + " | ".join(cells) + f" | {ratio} |")
        peak = [(k, v) for k, v in sel.items() if v.get("peak_rss_mb")]
        if a.rss and peak:
            print("\npeak RSS (MiB): " + "; ".join(f"{k[3]} {k[1]} t{k[2]}: {v['peak_rss_mb']:.0f}" for k, v in sorted(peak, key=lambda kv: (kv[0][3], kv[1]['natoms']))))


def sel_natoms(sel, t):
    for k, v in sel.items():
        if (k[1], k[2], k[4]) == tuple(t):
            return v["natoms"]
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("prepare")
    pp.add_argument("--work", required=True)
    for name in ("run", "lammps"):
        q = sub.add_parser(name)
        q.add_argument("--system", required=True)
        q.add_argument("--model", required=True)
        q.add_argument("--threads", type=int, default=1)
        q.add_argument("--dtype", default="float64", help="label only (the model file decides)")
        q.add_argument("--reps", type=int, default=3)
        q.add_argument("--rep-seconds", type=float, default=1.0)
        q.add_argument("--tag", default="")
        q.add_argument("--out", default=None, help="append the JSON line to this file")
    r = sub.choices["run"]
    r.add_argument("--impl", required=True, choices=["rs-ase", "rs-capi", "nequip062", "nequip019"])
    r.add_argument("--warmup", type=int, default=10)
    r.add_argument("--min-steps", type=int, default=3)
    r.add_argument("--max-steps", type=int, default=3000)
    r.add_argument("--sigma", type=float, default=0.02, help="perturbation (Angstrom)")
    r.add_argument("--dump", default=None, help="npz of energy/forces/stress at the unperturbed positions")
    lm = sub.choices["lammps"]
    lm.add_argument("--work", required=True)
    lm.add_argument("--plugin", required=True)
    lm.add_argument("--venv", default=os.path.expanduser("~/.cache/nequip-rs/venv-md"))
    lm.add_argument("--np", type=int, default=1)
    lm.add_argument("--mpiexec", action="store_true", help="launch through mpiexec even with -n 1")
    lm.add_argument("--ghost", action="store_true")
    lm.add_argument("--fix", action="store_true", help="LD_PRELOAD libtorch_cpu.so and OMP_NUM_THREADS=1 (see the code)")
    lm.add_argument("--libtorch", default=os.environ.get("NQRS_LIBTORCH_CPU", os.path.expanduser("~/.cache/nequip-rs/libtorch-2.13.0-cpu/lib/libtorch_cpu.so")))
    lm.add_argument("--warmup", type=int, default=3, help="steps of an untimed first `run`")
    lm.add_argument("--steps", type=int, default=0, help="0: from --est-step-s and --rep-seconds")
    lm.add_argument("--est-step-s", type=float, default=0.01, help="expected s/step (sets the steps)")
    lm.add_argument("--est-from", default=None, help="take the expected s/step from the rs-capi line of this jsonl")
    c = sub.add_parser("check")
    c.add_argument("a")
    c.add_argument("b")
    c.add_argument("--label", default="check")
    rp = sub.add_parser("report")
    rp.add_argument("results")
    rp.add_argument("--rss", action="store_true")
    a = p.parse_args(argv)
    {"prepare": cmd_prepare, "run": cmd_run, "lammps": cmd_lammps, "check": cmd_check, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
