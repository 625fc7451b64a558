"""Molecular dynamics and a relaxation of fcc copper with a nequip-rs model through ASE.

From the repository root:
    ./run train configs/minimal_stress.yaml            # a small Cu model (seconds)
    pip install integrations/python ase                # or: export PYTHONPATH=integrations/python
    python examples/md/ase/cu_md.py [--model results/cu_emt/minimal_stress/best_model.safetensors]

1. NVE (velocity Verlet, 1 fs) from 300 K: prints the total energy, which should stay constant.
2. Langevin at 600 K.
3. BFGS relaxation of positions and cell (FrechetCellFilter) of a rattled structure.
"""
import argparse
from pathlib import Path

import numpy as np
from ase import units
from ase.io import read
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS

import nequip_rs
from nequip_rs.ase import NequIPCalculator

REPO = Path(__file__).resolve().parents[3]


def thermalize(atoms, temperature_K, rng):
    from ase.md import velocitydistribution as vd

    if hasattr(vd, "thermalize_momenta"):  # ASE >= 3.29
        vd.thermalize_momenta(atoms, temperature_K, rng=rng)
    else:
        vd.MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)
    Stationary(atoms)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(REPO / "results/cu_emt/minimal_stress/best_model.safetensors"))
    ap.add_argument("--structure", default=str(REPO / "data/cu_emt.extxyz"), help="first frame is used")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--threads", type=int, default=None, help="libtorch threads (default: all cores)")
    args = ap.parse_args()

    if args.threads:
        nequip_rs.set_num_threads(args.threads)
    calc = NequIPCalculator.from_deployed_model(args.model, species_to_type_name={"Cu": "Cu"})
    print(calc.model)
    rng = np.random.default_rng(0)

    # 1. NVE
    atoms = read(args.structure, index=0)
    atoms.calc = calc
    thermalize(atoms, 300, rng)
    dyn = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    e0 = atoms.get_total_energy()

    def report():
        print(f"  step {dyn.nsteps:5d}  Epot {atoms.get_potential_energy():12.6f} eV  "
              f"T {atoms.get_temperature():7.1f} K  Etot-Etot0 {atoms.get_total_energy() - e0:+.2e} eV")

    print(f"NVE, {args.steps} steps of 1 fs")
    dyn.attach(report, interval=max(1, args.steps // 10))
    dyn.run(args.steps)

    # 2. Langevin
    print(f"Langevin at 600 K, {args.steps} steps of 2 fs")
    dyn = Langevin(atoms, timestep=2.0 * units.fs, temperature_K=600, friction=0.01 / units.fs, rng=rng,
                   fixcm=False)
    dyn.attach(lambda: print(f"  step {dyn.nsteps:5d}  T {atoms.get_temperature():7.1f} K  "
                             f"Epot {atoms.get_potential_energy():12.6f} eV"), interval=max(1, args.steps // 10))
    dyn.run(args.steps)

    # 3. relaxation of positions and cell
    from ase.filters import FrechetCellFilter

    atoms = read(args.structure, index=0)
    atoms.rattle(stdev=0.05, seed=1)
    atoms.calc = calc
    print(f"relaxation: E = {atoms.get_potential_energy():.6f} eV, "
          f"max |stress| = {np.abs(atoms.get_stress()).max() / units.GPa:.3f} GPa")
    BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=0.01, steps=300)
    print(f"relaxed:    E = {atoms.get_potential_energy():.6f} eV, "
          f"max |F| = {np.abs(atoms.get_forces()).max():.4f} eV/Å, "
          f"max |stress| = {np.abs(atoms.get_stress()).max() / units.GPa:.4f} GPa, "
          f"cell lengths {np.round(atoms.cell.lengths(), 4)}")


if __name__ == "__main__":
    main()
