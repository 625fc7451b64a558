"""Helpers shared by the MD-engine tests under integrations/ (C program, LAMMPS, Python/ASE):
reference predictions from `nequip evaluate`, the test structures, tolerances. The fixtures
(nequip_bin, capi_lib, cu_model, toluene_model) are in conftest.py beside this file."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

PYDIR = Path(__file__).resolve().parent / "python"  # the nequip_rs package
REPO = PYDIR.parents[1]
DATA = REPO / "data"

if str(PYDIR) not in sys.path:
    sys.path.insert(0, str(PYDIR))


def use_lib(capi_lib):
    """Point nequip_rs at the C library the conftest found (before the first load)."""
    os.environ["NEQUIP_RS_LIB"] = str(capi_lib)


def assert_rel(actual, ref, rel, what=""):
    """|actual - ref| <= rel * max|ref| (element-wise, scaled by the array's largest value)."""
    actual, ref = np.asarray(actual, dtype=float), np.asarray(ref, dtype=float)
    assert actual.shape == ref.shape, f"{what}: shape {actual.shape} != {ref.shape}"
    scale = max(float(np.max(np.abs(ref))) if ref.size else 0.0, 1e-300)
    err = float(np.max(np.abs(actual - ref))) if ref.size else 0.0
    assert err <= rel * scale, f"{what}: max |diff| = {err:.3e} > {rel:g} * {scale:.3e} (rel {err / scale:.3e})"


def cu_frames():
    """Three Cu structures: an orthogonal cell, a strained triclinic cell (from the dataset), and
    a 2x2x2 supercell of the triclinic one."""
    import ase.io

    frames = ase.io.read(DATA / "cu_emt.extxyz", index="0:2")
    ortho = frames[0].copy()
    frac = ortho.get_scaled_positions()
    ortho.set_cell(np.diag([7.22, 7.22, 7.22]), scale_atoms=False)
    ortho.set_scaled_positions(frac)
    tri = frames[1].copy()
    sc = tri.repeat((2, 2, 2))
    out = {"orthogonal": ortho, "triclinic": tri, "supercell": sc}
    for a in out.values():
        a.calc = None
    return out


def toluene_frames():
    """Toluene without a cell, and the same molecule in a 30 Å periodic box."""
    import ase.io

    mol = ase.io.read(DATA / "toluene_xtb.extxyz", index=0)
    mol.calc = None
    mol.set_cell(np.zeros((3, 3)))
    mol.pbc = False
    box = mol.copy()
    box.set_cell(np.diag([30.0, 30.0, 30.0]))
    box.center()
    box.pbc = True
    return {"no_cell": mol, "box": box}


def nequip_evaluate(nequip_bin, model, frames, symbols, r_max, tmp, output_fields=()):
    """`nequip evaluate` predictions of `frames` (ase.Atoms). Returns (inputs, predictions): the
    frames as written to and read back from extended XYZ (ASE rounds positions to 1e-8 Å, so
    compare on these), and the predicted frames, in the same order."""
    import ase.io
    from ase.calculators.singlepoint import SinglePointCalculator

    tmp = Path(tmp)
    frames = [a.copy() for a in frames]
    for a in frames:  # dummy labels: the metrics need them, the predictions do not
        kw = dict(energy=0.0, forces=np.zeros((len(a), 3)))
        if a.cell.rank == 3:
            kw["stress"] = np.zeros(6)
        a.calc = SinglePointCalculator(a, **kw)
    data = tmp / "frames.xyz"
    ase.io.write(data, frames, format="extxyz")
    cfg = tmp / "dataset.yaml"
    cfg.write_text(
        f"root: {tmp}\n"
        "dataset: ase\n"
        f"dataset_file_name: {data}\n"
        "ase_args:\n  format: extxyz\n"
        f"chemical_symbols: [{', '.join(symbols)}]\n"
        f"r_max: {r_max}\n"
    )
    pred = tmp / "pred.xyz"
    # batch size 1: frames with and without a cell cannot be batched together
    r = subprocess.run(
        [str(nequip_bin), "evaluate", "--model", str(model), "--dataset-config", str(cfg),
         "--output", str(pred), "--device", "cpu", "--batch-size", "1"]
        + (["--output-fields", ",".join(output_fields)] if output_fields else []),
        capture_output=True, text=True, cwd=tmp,  # (its processed-dataset cache goes there)
    )
    assert r.returncode == 0, f"nequip evaluate failed:\n{r.stdout}\n{r.stderr}"
    inputs = ase.io.read(data, index=":")
    for a in inputs:
        a.calc = None
    out = ase.io.read(pred, index=":")
    order = [a.info["original_dataset_index"] for a in out]
    assert sorted(order) == list(range(len(frames))), order
    return inputs, [out[order.index(i)] for i in range(len(frames))]


def thermalize(atoms, temperature_K, seed):
    """Maxwell-Boltzmann momenta (ASE >= 3.29: thermalize_momenta; older: MaxwellBoltzmannDistribution)."""
    from ase.md import velocitydistribution as vd

    rng = np.random.default_rng(seed)
    if hasattr(vd, "thermalize_momenta"):
        vd.thermalize_momenta(atoms, temperature_K, rng=rng)
    else:
        vd.MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)
    vd.Stationary(atoms)
