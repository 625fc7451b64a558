"""The C header compiles (strict C99) and a C program linked to libnequip_capi.so gets the numbers
of `nequip evaluate` (float64 model, relative 1e-8) through nqrs_compute and, for a molecule,
nqrs_compute_graph; its error paths return the documented codes and messages."""
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nqrs_testing import assert_rel, cu_frames, nequip_evaluate, toluene_frames

HERE = Path(__file__).resolve().parent
INCLUDE = HERE.parent / "include"


@pytest.fixture(scope="module")
def c_program(capi_lib, tmp_path_factory):
    exe = tmp_path_factory.mktemp("c_program") / "c_program"
    cmd = ["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{INCLUDE}", str(HERE / "c_program.c"),
           "-o", str(exe), f"-L{capi_lib.parent}", "-lnequip_capi", f"-Wl,-rpath,{capi_lib.parent}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"
    return exe


def run_c(exe, model, atoms, types, tmp):
    lines = [f"{len(atoms)} " + ("cell " + " ".join(f"{x:.17g}" for x in atoms.cell.array.ravel()) if atoms.pbc.any() else "nocell")]
    lines += [f"{t} " + " ".join(f"{x:.17g}" for x in p) for t, p in zip(types, atoms.positions)]
    inp = Path(tmp) / "input.txt"
    inp.write_text("\n".join(lines) + "\n")
    r = subprocess.run([str(exe), str(model), str(inp)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = r.stdout.split()
    assert out[-2:] == ["errors", "ok"], r.stdout[-200:]
    vals = np.array([float(x) for x in out[:-2]])
    n = len(atoms)
    size = 1 + 3 * n + 9 + n
    blocks = [vals[k:k + size] for k in range(0, len(vals), size)]
    return [dict(energy=b[0], forces=b[1:1 + 3 * n].reshape(n, 3), virial=b[1 + 3 * n:10 + 3 * n].reshape(3, 3),
                 energies=b[10 + 3 * n:]) for b in blocks]


def test_c_program_periodic_cu(c_program, cu_model, nequip_bin, tmp_path):
    frames = cu_frames()
    inputs, preds = nequip_evaluate(nequip_bin, cu_model, [frames["triclinic"], frames["supercell"]], ["Cu"], 4.0, tmp_path)
    for atoms, pred in zip(inputs, preds):
        (res,) = run_c(c_program, cu_model, atoms, [0] * len(atoms), tmp_path)
        assert_rel(res["energy"], pred.get_potential_energy(), 1e-8, "energy")
        assert_rel(res["forces"], pred.get_forces(), 1e-8, "forces")
        assert_rel(res["energies"], pred.calc.results["energies"], 1e-8, "atom energies")
        # virial = -stress * volume (ASE's stress)
        stress = pred.get_stress(voigt=False)
        assert_rel(res["virial"], -stress * atoms.get_volume(), 1e-8, "virial")


def test_c_program_molecule_both_entry_points(c_program, toluene_model, nequip_bin, tmp_path):
    mol = toluene_frames()["no_cell"]
    inputs, preds = nequip_evaluate(nequip_bin, toluene_model, [mol], ["H", "C"], 4.0, tmp_path)
    atoms, pred = inputs[0], preds[0]
    types = [0 if s == "H" else 1 for s in atoms.get_chemical_symbols()]
    compute, graph = run_c(c_program, toluene_model, atoms, types, tmp_path)
    for res in (compute, graph):
        assert_rel(res["energy"], pred.get_potential_energy(), 1e-8, "energy")
        assert_rel(res["forces"], pred.get_forces(), 1e-8, "forces")
        assert_rel(res["energies"], pred.calc.results["energies"], 1e-8, "atom energies")
    assert_rel(graph["virial"], compute["virial"], 1e-10, "virial of both entry points")
