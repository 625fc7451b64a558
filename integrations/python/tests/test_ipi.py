"""i-PI socket round trip: ASE's SocketIOCalculator is the server, `nequip serve --ipi unix:NAME`
the client computing with the model; its energies/forces/stress must equal NequIPCalculator's
(the protocol passes Bohr/Hartree, so only ~1e-10 relative conversion noise is expected).

Run from integrations/ (its conftest.py provides nequip_bin, capi_lib, cu_model)."""
import os
import subprocess
import uuid

import numpy as np
import pytest

from nqrs_testing import assert_rel, cu_frames, thermalize, use_lib

pytest.importorskip("ase")


@pytest.fixture(scope="module")
def cu_calc(capi_lib, cu_model):
    use_lib(capi_lib)
    import nequip_rs
    from nequip_rs.ase import NequIPCalculator

    nequip_rs.set_num_threads(1)  # tiny model, small shared machine (see test_ase.py)

    return NequIPCalculator.from_deployed_model(cu_model, species_to_type_name={"Cu": "Cu"})


def _compare(atoms, results, calc, what):
    ref = atoms.copy()
    ref.calc = calc
    assert_rel(results["energy"], ref.get_potential_energy(), 1e-8, f"{what} energy")
    assert_rel(results["forces"], ref.get_forces(), 1e-8, f"{what} forces")
    assert_rel(results["stress"], ref.get_stress(), 1e-8, f"{what} stress")


def test_ipi_client_matches_ase_calculator(nequip_bin, cu_model, cu_calc, tmp_path):
    import ase.io
    from ase import units
    from ase.calculators.socketio import SocketIOCalculator
    from ase.md.verlet import VelocityVerlet

    atoms = cu_frames()["triclinic"]
    start = tmp_path / "start.xyz"
    ase.io.write(start, atoms, format="extxyz")
    name = f"nqrs_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    log_path = tmp_path / "serve.log"
    procs = []

    def launch(atoms, properties, port, unixsocket):
        cmd = [str(nequip_bin), "serve", "--model", str(cu_model), "--ipi", f"unix:{unixsocket}",
               "--structure", str(start)]
        log = open(log_path, "w")
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
        procs.append(p)
        return p

    def serve_log():
        return log_path.read_text() if log_path.exists() else "(no output)"

    try:
        sio = SocketIOCalculator(launch_client=launch, unixsocket=name, timeout=120)
        try:
            # single points: the start structure, moved atoms, a strained cell
            rng = np.random.default_rng(3)
            configs = [atoms.copy()]
            moved = atoms.copy()
            moved.positions += 0.05 * rng.standard_normal(moved.positions.shape)
            configs.append(moved)
            strained = moved.copy()
            strained.set_cell(moved.cell.array @ (np.eye(3) + 0.01 * np.array([[1, 0.3, 0], [0.3, -1, 0.2], [0, 0.2, 0.5]])),
                              scale_atoms=True)
            configs.append(strained)
            for i, a in enumerate(configs):
                a.calc = sio
                res = {"energy": a.get_potential_energy(), "forces": a.get_forces(), "stress": a.get_stress()}
                _compare(a, res, cu_calc, f"single point {i}")
            # a few MD steps driven through the socket
            md = configs[1]
            thermalize(md, 300, seed=4)
            dyn = VelocityVerlet(md, timestep=1.0 * units.fs)
            for step in range(5):
                dyn.run(1)
                res = {"energy": md.get_potential_energy(), "forces": md.get_forces(), "stress": md.get_stress()}
                _compare(md, res, cu_calc, f"MD step {step}")
            # end of the session: EXIT tells the client to stop
            sio.server.protocol.end()
            assert procs[0].wait(timeout=60) == 0, f"nequip serve exited with {procs[0].returncode}:\n{serve_log()}"
        finally:
            sio.close()
    except (OSError, AssertionError) as e:
        raise AssertionError(f"{e}\n--- nequip serve output ---\n{serve_log()}") from e
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
