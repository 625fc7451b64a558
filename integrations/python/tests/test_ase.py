"""nequip_rs (ctypes binding of libnequip_capi.so) and its ASE calculator.

Run from integrations/ (its conftest.py trains the float64 test models once per session):
    cd integrations && $(bash setup_venv.sh)/bin/python -m pytest python/tests -q
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from nqrs_testing import PYDIR, REPO, assert_rel, cu_frames, nequip_evaluate, thermalize, toluene_frames, use_lib

ase = pytest.importorskip("ase")
from ase.calculators.calculator import PropertyNotImplementedError  # noqa: E402

TORCH_VENV_PY = Path("/tmp/venv/bin/python")


@pytest.fixture(scope="module")
def nqrs(capi_lib):
    use_lib(capi_lib)
    import nequip_rs

    # one thread: these models are tiny, and on a small, busy machine libtorch's OpenMP threads
    # spin-wait for each other (2 threads were 3-25x slower than 1 on 2 loaded cores)
    nequip_rs.set_num_threads(1)
    return nequip_rs


@pytest.fixture(scope="module")
def cu_calc(nqrs, cu_model):
    from nequip_rs.ase import NequIPCalculator

    return NequIPCalculator.from_deployed_model(cu_model, species_to_type_name={"Cu": "Cu"})


@pytest.fixture(scope="module")
def toluene_calc(nqrs, toluene_model):
    from nequip_rs.ase import NequIPCalculator

    return NequIPCalculator.from_deployed_model(toluene_model, species_to_type_name={"H": "H", "C": "C"})


def _results(calc, atoms):
    a = atoms.copy()
    a.calc = calc
    out = {
        "energy": a.get_potential_energy(),
        "free_energy": a.get_potential_energy(force_consistent=True),
        "energies": a.get_potential_energies(),
        "forces": a.get_forces(),
    }
    if a.cell.rank == 3:
        out["stress"] = a.get_stress()
    return out


# --- the Model class ------------------------------------------------------------------------

def test_model_metadata(nqrs, cu_model, toluene_model):
    m = nqrs.Model.load(cu_model)
    assert m.r_max == pytest.approx(4.0)
    assert m.type_names == ("Cu",)
    assert m.num_types == 1
    assert m.dtype == "float64"
    assert m.num_layers == 3
    assert np.isfinite(m.energy_shift)
    assert m.device == "cpu"
    assert "Cu" in repr(m)
    t = nqrs.Model.load(toluene_model, device="cpu")
    assert t.type_names == ("H", "C")
    assert t.num_layers == 2
    assert nqrs.library_version()
    assert Path(nqrs.library_path()).name == "libnequip_capi.so"
    nqrs.set_num_threads(1)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            nqrs.set_num_threads(bad)
    t.close()
    t.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        t.compute(np.zeros((1, 3)), [0])


def test_model_compute_outputs(nqrs, cu_model):
    tri = cu_frames()["triclinic"]
    m = nqrs.Model.load(cu_model)
    n = len(tri)
    full = m.compute(tri.positions, np.zeros(n, dtype=int), cell=tri.cell.array, pbc=True, atom_energies=True)
    assert set(full) == {"energy", "forces", "virial", "atom_energies"}
    assert isinstance(full["energy"], float)
    assert full["forces"].shape == (n, 3) and full["forces"].dtype == np.float64
    assert full["virial"].shape == (3, 3)
    assert full["atom_energies"].shape == (n,)
    assert_rel(full["virial"], full["virial"].T, 1e-12, "virial symmetric")
    assert_rel(full["atom_energies"].sum() + m.energy_shift, full["energy"], 1e-12, "sum of atom energies")
    # type names instead of indices; pbc=None means periodic when a cell is given; no optional outputs
    e_only = m.compute(tri.positions, ["Cu"] * n, cell=tri.cell.array, forces=False, virial=False)
    assert set(e_only) == {"energy"}
    assert e_only["energy"] == pytest.approx(full["energy"], rel=1e-12)
    # a list of lists and float32 input are converted
    f32 = m.compute(tri.positions.tolist(), np.zeros(n, dtype=np.int64), cell=tri.cell.array.astype(np.float32))
    assert np.isfinite(f32["energy"])


# --- against `nequip evaluate` --------------------------------------------------------------

def test_cu_matches_nequip_evaluate(nqrs, cu_calc, cu_model, nequip_bin, tmp_path):
    frames = cu_frames()
    names = list(frames)
    inputs, ref = nequip_evaluate(nequip_bin, cu_model, [frames[k] for k in names], ["Cu"], 4.0, tmp_path)
    ours = {k: _results(cu_calc, a) for k, a in zip(names, inputs)}
    for k, r in zip(names, ref):
        o = ours[k]
        assert_rel(o["energy"], r.get_potential_energy(), 1e-8, f"{k} energy")
        assert o["free_energy"] == o["energy"]
        assert_rel(o["energies"], r.calc.results["energies"], 1e-8, f"{k} energies")
        assert_rel(o["forces"], r.get_forces(), 1e-8, f"{k} forces")
        assert_rel(o["stress"], r.get_stress(), 1e-8, f"{k} stress")
        assert_rel(o["energies"].sum(), o["energy"], 1e-10, f"{k} sum of energies")
    # the 2x2x2 supercell: 8x the energy, the same stress, the forces tiled (on the exact
    # structures: the ones read back from XYZ are rounded to 1e-8 Å, which shows at 1e-8)
    ours = {k: _results(cu_calc, frames[k]) for k in ("triclinic", "supercell")}
    assert_rel(ours["supercell"]["energy"], 8 * ours["triclinic"]["energy"], 1e-10, "supercell energy")
    assert_rel(ours["supercell"]["stress"], ours["triclinic"]["stress"], 1e-8, "supercell stress")
    assert_rel(ours["supercell"]["forces"][: len(frames["triclinic"])], ours["triclinic"]["forces"], 1e-8,
               "supercell forces")


def test_toluene_matches_nequip_evaluate(nqrs, toluene_calc, toluene_model, nequip_bin, tmp_path):
    frames = toluene_frames()
    names = list(frames)
    inputs, ref = nequip_evaluate(nequip_bin, toluene_model, [frames[k] for k in names], ["H", "C"], 4.0, tmp_path)
    ours = {k: _results(toluene_calc, a) for k, a in zip(names, inputs)}
    for k, r in zip(names, ref):
        assert_rel(ours[k]["energy"], r.get_potential_energy(), 1e-8, f"{k} energy")
        assert_rel(ours[k]["energies"], r.calc.results["energies"], 1e-8, f"{k} energies")
        assert_rel(ours[k]["forces"], r.get_forces(), 1e-8, f"{k} forces")
    # a molecule in a large periodic box = the molecule without a cell
    ours = {k: _results(toluene_calc, frames[k]) for k in names}
    assert_rel(ours["box"]["energy"], ours["no_cell"]["energy"], 1e-10, "box vs no cell energy")
    assert_rel(ours["box"]["forces"], ours["no_cell"]["forces"], 1e-8, "box vs no cell forces")
    # no cell: no stress
    a = frames["no_cell"].copy()
    a.calc = toluene_calc
    with pytest.raises(PropertyNotImplementedError, match="cell"):
        a.get_stress()
    assert np.isfinite(a.get_potential_energy())  # the energy is still there


# --- derivatives by finite differences -------------------------------------------------------

def test_forces_are_minus_energy_gradient(cu_calc):
    atoms = cu_frames()["triclinic"]
    atoms.calc = cu_calc
    forces = atoms.get_forces()
    h = 1e-5
    rng = np.random.default_rng(0)
    pos0 = atoms.positions.copy()
    for i in rng.choice(len(atoms), 4, replace=False):
        for k in range(3):
            e = []
            for s in (+1, -1):
                p = pos0.copy()
                p[i, k] += s * h
                atoms.positions = p
                e.append(atoms.get_potential_energy())
            fd = -(e[0] - e[1]) / (2 * h)
            assert abs(fd - forces[i, k]) <= 1e-6 * np.abs(forces).max(), (i, k, fd, forces[i, k])
    atoms.positions = pos0


def _strained(atoms, eps):
    a = atoms.copy()
    a.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
    return a


@pytest.mark.parametrize("frame", ["orthogonal", "triclinic"])
def test_stress_is_strain_derivative(cu_calc, frame):
    atoms = cu_frames()[frame]
    atoms.calc = cu_calc
    stress = atoms.get_stress(voigt=False)
    vol = atoms.get_volume()
    h = 1e-5
    fd = np.zeros((3, 3))
    for i in range(3):
        for j in range(i, 3):
            e = []
            for s in (+1, -1):
                eps = np.zeros((3, 3))
                eps[i, j] += s * h / 2
                eps[j, i] += s * h / 2  # symmetric strain
                a = _strained(atoms, eps)
                a.calc = cu_calc
                e.append(a.get_potential_energy())
            fd[i, j] = fd[j, i] = (e[0] - e[1]) / (2 * h) / vol
    assert_rel(stress, fd, 1e-6, f"{frame} stress vs finite strain derivative")


# --- dynamics ------------------------------------------------------------------------------

def test_nve_conserves_energy(cu_calc):
    from ase import units
    from ase.md.verlet import VelocityVerlet

    atoms = cu_frames()["triclinic"]
    atoms.calc = cu_calc
    thermalize(atoms, 300, seed=42)
    etot, epot = [], []
    dyn = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    dyn.attach(lambda: (etot.append(atoms.get_total_energy()), epot.append(atoms.get_potential_energy())), interval=1)
    dyn.run(200)
    etot, epot = np.array(etot), np.array(epot)
    dev = np.abs(etot - etot[0]).max()
    # The (briefly trained, stiff) model's potential energy swings by ~1 eV along this run; velocity
    # Verlet at 1 fs keeps the total within ~2e-3 eV (an O(dt^2) error: 4e-4 eV at 0.5 fs).
    assert np.ptp(epot) > 0.1
    assert dev < 4e-3, f"total energy varies by {dev:.3e} eV (potential energy by {np.ptp(epot):.3f} eV)"
    drift = abs(etot[-50:].mean() - etot[:50].mean())
    assert drift < 2e-3, f"total energy drifts by {drift:.3e} eV"


def test_bfgs_relaxation(cu_calc):
    from ase.optimize import BFGS

    atoms = cu_frames()["orthogonal"]
    atoms.rattle(stdev=0.05, seed=1)
    atoms.calc = cu_calc
    e0 = atoms.get_potential_energy()
    opt = BFGS(atoms, logfile=None)
    assert opt.run(fmax=0.01, steps=500), "BFGS did not converge in 500 steps"
    assert atoms.get_potential_energy() < e0
    assert np.abs(atoms.get_forces()).max() < 0.01 * np.sqrt(3) + 1e-12


def test_cell_relaxation(cu_calc):
    # UnitCellFilter rather than FrechetCellFilter: the latter's matrix logarithms go through
    # scipy/OpenBLAS and were 50x slower than the model on a busy 2-core machine
    from ase.filters import UnitCellFilter
    from ase.optimize import BFGS

    atoms = cu_frames()["triclinic"]
    atoms.calc = cu_calc
    e0 = atoms.get_potential_energy()
    s0 = np.abs(atoms.get_stress()).max()
    opt = BFGS(UnitCellFilter(atoms), logfile=None)
    assert opt.run(fmax=0.01, steps=300), "the cell relaxation did not converge in 300 steps"
    assert atoms.get_potential_energy() < e0
    assert np.abs(atoms.get_stress()).max() < min(0.01, 0.5 * s0)  # eV/Å³ (forces on the cell / volume)
    assert np.abs(atoms.get_forces()).max() < 0.02


# --- the torch rule ------------------------------------------------------------------------

def _run_py(python, code, env_extra, cwd, drop=()):
    drop = ("PYTHONPATH", "NEQUIP_RS_SKIP_TORCH_CHECK", "NEQUIP_RS_LIB", *drop)
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_extra)
    return subprocess.run([str(python), "-c", textwrap.dedent(code)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def _fake_torch(root, version, dist_info=True):
    (root / "torch").mkdir(parents=True)
    (root / "torch" / "__init__.py").write_text(f'__version__ = "{version}"\n')
    if dist_info:
        d = root / f"torch-{version}.dist-info"
        d.mkdir()
        (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n")
        (d / "RECORD").write_text("")


@pytest.mark.parametrize("case", ["installed", "imported_first"])
def test_torch_of_another_version_is_refused(capi_lib, tmp_path, case):
    _fake_torch(tmp_path / "fake", "2.5.0", dist_info=(case == "installed"))
    code = "import torch\nimport nequip_rs\n" if case == "imported_first" else "import nequip_rs\n"
    code += "print('IMPORTED')\n"
    r = _run_py(sys.executable, code,
                {"PYTHONPATH": f"{tmp_path / 'fake'}{os.pathsep}{PYDIR}", "NEQUIP_RS_LIB": str(capi_lib)},
                tmp_path)
    assert r.returncode != 0 and "IMPORTED" not in r.stdout, r.stdout + r.stderr
    assert "ImportError" in r.stderr and "torch 2.5.0" in r.stderr and "2.13" in r.stderr, r.stderr
    # the check can be switched off (no torch is really loaded here, so nothing clashes)
    r = _run_py(sys.executable, code,
                {"PYTHONPATH": f"{tmp_path / 'fake'}{os.pathsep}{PYDIR}", "NEQUIP_RS_LIB": str(capi_lib),
                 "NEQUIP_RS_SKIP_TORCH_CHECK": "1"}, tmp_path)
    assert r.returncode == 0 and "IMPORTED" in r.stdout, r.stderr


def _torch_venv_ok():
    if not TORCH_VENV_PY.exists():
        return False
    r = subprocess.run([str(TORCH_VENV_PY), "-c", "import torch, numpy; print(torch.__version__)"],
                       capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.startswith("2.13")


@pytest.mark.parametrize("torch_first", [True, False])
def test_with_torch_2_13(nqrs, capi_lib, cu_model, tmp_path, torch_first):
    if not _torch_venv_ok():
        pytest.skip(f"{TORCH_VENV_PY} with torch 2.13 not available")
    tri = cu_frames()["triclinic"]
    inp = tmp_path / "in.json"
    inp.write_text(json.dumps({"pos": tri.positions.tolist(), "cell": tri.cell.array.tolist()}))
    code = f"""
        import json, sys
        {"import torch" if torch_first else ""}
        import nequip_rs
        import numpy as np
        assert "torch" in sys.modules  # nequip_rs imports torch 2.13 first when it is installed
        d = json.load(open({str(inp)!r}))
        m = nequip_rs.Model.load({str(cu_model)!r})
        out = m.compute(np.array(d["pos"]), np.zeros(len(d["pos"]), dtype=int), cell=np.array(d["cell"]))
        libs = sorted({{l.split()[-1] for l in open("/proc/self/maps") if "libtorch_cpu" in l}})
        print(json.dumps({{"energy": out["energy"], "forces": out["forces"].tolist(), "libs": libs}}))
    """
    r = _run_py(TORCH_VENV_PY, code, {"PYTHONPATH": str(PYDIR), "NEQUIP_RS_LIB": str(capi_lib)}, tmp_path)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(res["libs"]) == 1 and res["libs"][0].startswith("/tmp/venv/"), res["libs"]  # one libtorch: torch's
    ref = nqrs.Model.load(cu_model).compute(tri.positions, np.zeros(len(tri), dtype=int), cell=tri.cell.array)
    assert_rel(res["energy"], ref["energy"], 1e-10, "energy with torch's libtorch")
    assert_rel(np.array(res["forces"]), ref["forces"], 1e-8, "forces with torch's libtorch")


# --- bad input -----------------------------------------------------------------------------

def test_bad_model_files(nqrs, cu_model, tmp_path):
    missing = tmp_path / "missing.safetensors"
    with pytest.raises(nqrs.ModelFileError, match="missing.safetensors") as e:
        nqrs.Model.load(missing)
    assert e.value.code == 2
    not_model = tmp_path / "not_a_model.safetensors"
    not_model.write_text("this is not a model\n")
    with pytest.raises(nqrs.NequIPError, match="not_a_model") as e:
        nqrs.Model.load(not_model)
    assert e.value.code == 2
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(Path(cu_model).read_bytes()[:200])
    with pytest.raises(nqrs.NequIPError) as e:
        nqrs.Model.load(truncated)
    assert e.value.code == 2
    with pytest.raises(nqrs.NequIPError):
        nqrs.Model.load(cu_model, device="no-such-device")
    from nequip_rs.ase import NequIPCalculator

    with pytest.raises(nqrs.NequIPError, match="missing.safetensors"):
        NequIPCalculator.from_deployed_model(missing, species_to_type_name={"Cu": "Cu"})


def test_bad_species(nqrs, cu_model, cu_calc):
    from ase import Atoms
    from nequip_rs.ase import NequIPCalculator

    atoms = Atoms("CuFeCu", positions=[[0, 0, 0], [2.5, 0, 0], [0, 2.5, 0]], cell=[6, 6, 6], pbc=True)
    atoms.calc = cu_calc
    with pytest.raises(ValueError, match=r"'Fe'.*Cu"):
        atoms.get_potential_energy()
    with pytest.raises(ValueError, match=r"'Xx'.*Cu"):
        NequIPCalculator.from_deployed_model(cu_model, species_to_type_name={"Cu": "Xx"})
    with pytest.raises(ValueError, match="chemical symbol"):
        NequIPCalculator.from_deployed_model(cu_model, species_to_type_name={"Copper": "Cu"})
    with pytest.warns(UserWarning, match="species_to_type_name"):
        calc = NequIPCalculator.from_deployed_model(cu_model)  # type names taken as symbols
    atoms = cu_frames()["triclinic"]
    atoms.calc = calc
    assert_rel(atoms.get_potential_energy(), _results(cu_calc, atoms)["energy"], 1e-12, "default mapping")


def test_bad_arrays(nqrs, cu_model):
    m = nqrs.Model.load(cu_model)
    tri = cu_frames()["triclinic"]
    pos, cell, n = tri.positions, tri.cell.array, len(tri)
    types = np.zeros(n, dtype=int)
    cases = [
        (dict(positions=pos[:, :2], types=types, cell=cell), r"positions.*\(n, 3\)"),
        (dict(positions=pos.ravel(), types=types, cell=cell), r"positions.*\(n, 3\)"),
        (dict(positions=pos, types=types[:-1], cell=cell), r"types.*\(32,\)"),
        (dict(positions=pos, types=types, cell=cell[:2]), r"cell.*\(3, 3\)"),
        (dict(positions=pos, types=types, cell=cell, pbc=[True, True]), "pbc"),
        (dict(positions=pos, types=types, cell=None, pbc=True), "pbc.*cell"),
        (dict(positions=pos, types=types + 1, cell=cell), "type index 1 out of range"),
        (dict(positions=pos, types=types - 1, cell=cell), "type index -1 out of range"),
        (dict(positions=pos, types=["Fe"] * n, cell=cell), "unknown type name 'Fe'"),
        (dict(positions=pos, types=types + 0.5, cell=cell), "integer"),
        (dict(positions="abc", types=types, cell=cell), "positions"),
    ]
    for kw, msg in cases:
        with pytest.raises(ValueError, match=msg):
            m.compute(**kw)
    # checked by the library: a non-finite coordinate
    bad = pos.copy()
    bad[3, 1] = np.nan
    with pytest.raises(nqrs.NequIPError) as e:
        m.compute(bad, types, cell=cell)
    assert e.value.message
    # the model still works after errors
    assert np.isfinite(m.compute(pos, types, cell=cell)["energy"])


# --- packaging -----------------------------------------------------------------------------

def _pip_build_flags():
    """--no-build-isolation when this environment can build wheels itself (setuptools with
    bdist_wheel: the `wheel` package or setuptools >= 70.1), else [] (pip fetches setuptools)."""
    code = (
        "import setuptools, importlib.util as u\n"
        "v = tuple(int(x) for x in setuptools.__version__.split('.')[:2])\n"
        "assert u.find_spec('wheel') or v >= (70, 1)\n"
    )
    ok = subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
    return ["--no-build-isolation"] if ok else []


def _pip(args, what):
    r = subprocess.run([sys.executable, "-m", "pip", *args, "-q", "--disable-pip-version-check"],
                       capture_output=True, text=True)
    if r.returncode != 0 and "--no-build-isolation" not in args and any(
        s in r.stdout + r.stderr for s in ("No matching distribution", "Could not find a version", "NewConnectionError")
    ):
        pytest.skip(f"{what}: no wheel-capable setuptools here and no package index reachable")
    assert r.returncode == 0, f"{what}:\n{r.stdout}\n{r.stderr}"


def test_pip_install(nqrs, capi_lib, cu_model, tmp_path):
    flags = _pip_build_flags()
    # a copy of the sources (keeps the checkout free of build/ and egg-info), with the library bundled
    src = tmp_path / "src"
    shutil.copytree(PYDIR, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests", "*.so"))
    r = subprocess.run(["bash", str(src / "bundle_lib.sh")], env={**os.environ, "NEQUIP_RS_LIB": str(capi_lib)},
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    wheels = tmp_path / "wheels"
    _pip(["wheel", "--no-deps", *flags, "-w", str(wheels), str(src)], "pip wheel (bundled library)")
    (whl,) = wheels.glob("nequip_rs-*.whl")
    import zipfile

    assert "nequip_rs/lib/libnequip_capi.so" in zipfile.ZipFile(whl).namelist()
    site = tmp_path / "site"
    _pip(["install", "--no-deps", "--target", str(site), str(whl)], "pip install of the wheel")
    code = f"""
        import nequip_rs, numpy as np
        from nequip_rs.ase import NequIPCalculator
        m = nequip_rs.Model.load({str(cu_model)!r})
        print(nequip_rs.__file__)
        print(nequip_rs.library_path())
    """
    r = _run_py(sys.executable, code, {"PYTHONPATH": str(site)}, tmp_path)
    assert r.returncode == 0, r.stderr
    mod_file, lib_path = r.stdout.split()
    assert mod_file.startswith(str(site)) and lib_path == str(site / "nequip_rs/lib/libnequip_capi.so"), r.stdout
    # `pip install integrations/python` of a checkout (no bundled copy): the library is found in
    # the checkout's target/release. A stand-in checkout in tmp_path keeps build/ and egg-info out
    # of the real one.
    co = tmp_path / "checkout"
    shutil.copytree(PYDIR, co / "integrations/python",
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests", "lib"))
    (co / "integrations/capi").mkdir()
    (co / "target/release").mkdir(parents=True)
    (co / "target/release/libnequip_capi.so").symlink_to(capi_lib)
    site2 = tmp_path / "site2"
    _pip(["install", "--no-deps", *flags, "--target", str(site2), str(co / "integrations/python")],
         "pip install integrations/python")
    r = _run_py(sys.executable, code, {"PYTHONPATH": str(site2)}, tmp_path, drop=("CARGO_TARGET_DIR",))
    assert r.returncode == 0, r.stderr
    mod_file, lib_path = r.stdout.split()
    assert mod_file.startswith(str(site2)), r.stdout
    assert lib_path == str(co / "target/release/libnequip_capi.so"), r.stdout
    # without any library: a clear ImportError naming the places looked at
    (co / "target/release/libnequip_capi.so").unlink()
    r = _run_py(sys.executable, code, {"PYTHONPATH": str(site2)}, tmp_path, drop=("CARGO_TARGET_DIR",))
    assert r.returncode != 0 and "libnequip_capi.so not found" in r.stderr and "NEQUIP_RS_LIB" in r.stderr, r.stderr
