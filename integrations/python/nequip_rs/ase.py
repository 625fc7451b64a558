"""ASE calculator of nequip-rs models, mirroring nequip 0.6.2's `nequip.ase.NequIPCalculator`.

    from nequip_rs.ase import NequIPCalculator
    calc = NequIPCalculator.from_deployed_model("model.safetensors", species_to_type_name={"Cu": "Cu"})
    atoms.calc = calc
    atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
"""
import warnings

import numpy as np
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.data import chemical_symbols as _ASE_SYMBOLS
from ase.stress import full_3x3_to_voigt_6_stress

from .model import Model


def nequip_calculator(model, **kwargs):
    """Build an ASE calculator from a model file (nequip's helper of the same name)."""
    return NequIPCalculator.from_deployed_model(model, **kwargs)


class NequIPCalculator(Calculator):
    """ASE calculator of a nequip-rs model.

    Results: energy (= free_energy; includes the model's energy shift), energies (per atom),
    forces, and stress (Voigt xx yy zz yz xz xy, eV/Å³, ASE's sign: (1/V) dE/d(strain)) for
    structures with a 3-D cell (any pbc). Without a cell, stress raises
    PropertyNotImplementedError.

    species_to_type_name: {chemical symbol: model type name}. None: the model's type names are
    taken as chemical symbols (with a warning, as nequip does).
    energy_units_to_eV, length_units_to_A: the model's units (default eV, Å). Unlike nequip 0.6.2,
    which converts only the outputs, positions and cell are also converted into the model's
    length unit.

    .. warning:: With custom species, set the right masses for MD in ASE.
    """

    implemented_properties = ["energy", "energies", "forces", "stress", "free_energy"]

    def __init__(
        self,
        model,
        species_to_type_name=None,
        energy_units_to_eV=1.0,
        length_units_to_A=1.0,
        **kwargs,
    ):
        Calculator.__init__(self, **kwargs)
        if not isinstance(model, Model):
            raise TypeError(
                f"NequIPCalculator expects a nequip_rs.Model, got {type(model).__name__}; "
                f"use NequIPCalculator.from_deployed_model(path) to load a model file"
            )
        self.model = model
        self.r_max = model.r_max
        self.device = model.device
        self.energy_units_to_eV = float(energy_units_to_eV)
        self.length_units_to_A = float(length_units_to_A)
        self.species_to_type_name = self._mapping(species_to_type_name, model.type_names)
        index = {n: i for i, n in enumerate(model.type_names)}
        self._symbol_to_type = {s: index[t] for s, t in self.species_to_type_name.items()}
        self.results = {}

    @staticmethod
    def _mapping(species_to_type_name, type_names):
        if species_to_type_name is None:
            warnings.warn(
                "Trying to use chemical symbols as NequIP type names; this may not be correct for "
                "your model! To avoid this warning, please provide `species_to_type_name` "
                "explicitly."
            )
            not_symbols = [t for t in type_names if t not in _ASE_SYMBOLS[1:]]
            if not_symbols:
                raise ValueError(
                    f"The model's type names {list(type_names)} are not all chemical symbols "
                    f"({not_symbols} are not); please provide an explicit mapping in "
                    f"`species_to_type_name` (e.g. {{'H': '{type_names[0]}', ...}})"
                )
            return {t: t for t in type_names}
        mapping = dict(species_to_type_name)
        for sym, name in mapping.items():
            if sym not in _ASE_SYMBOLS[1:]:
                raise ValueError(f"species_to_type_name: {sym!r} is not a chemical symbol")
            if name not in type_names:
                raise ValueError(
                    f"species_to_type_name: {sym!r} maps to {name!r}, which is not a type name of "
                    f"the model (its type names: {list(type_names)})"
                )
        return mapping

    @classmethod
    def from_deployed_model(
        cls,
        model_path,
        device="cpu",
        species_to_type_name=None,
        set_global_options="warn",
        **kwargs,
    ):
        """Load a nequip-rs model file (`best_model.safetensors`, `nequip deploy build`,
        `nequip import`) on `device` and build the calculator. `set_global_options` is accepted
        for compatibility with nequip 0.6.2 and ignored (there are no global options)."""
        if "transform" in kwargs:
            raise TypeError("`transform` not allowed here")
        model = Model.load(model_path, device=device)
        return cls(model, species_to_type_name=species_to_type_name, **kwargs)

    def _types(self, atoms):
        symbols = atoms.get_chemical_symbols()
        try:
            return np.fromiter((self._symbol_to_type[s] for s in symbols), dtype=np.int32, count=len(symbols))
        except KeyError as e:
            missing = sorted(set(symbols) - set(self._symbol_to_type))
            raise ValueError(
                f"The atoms contain the species {', '.join(map(repr, missing))}, which the "
                f"calculator does not map to a type of the model (model type names: "
                f"{list(self.model.type_names)}; species_to_type_name: {self.species_to_type_name})"
            ) from e

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        Calculator.calculate(self, atoms, properties, system_changes)
        atoms = self.atoms
        types = self._types(atoms)
        pbc = np.asarray(atoms.pbc, dtype=bool)
        cell = np.asarray(atoms.cell.array, dtype=np.float64)
        has_cell = atoms.cell.rank == 3
        if not has_cell and not pbc.any():
            cell_arg, pbc_arg = None, None
        else:
            cell_arg, pbc_arg = cell / self.length_units_to_A, pbc
        out = self.model.compute(
            atoms.positions / self.length_units_to_A,
            types,
            cell=cell_arg,
            pbc=pbc_arg,
            forces=True,
            virial=has_cell,
            atom_energies=True,
        )
        eu, lu = self.energy_units_to_eV, self.length_units_to_A
        self.results = {}
        self.results["energy"] = eu * out["energy"]
        self.results["free_energy"] = self.results["energy"]
        self.results["energies"] = eu * out["atom_energies"]
        self.results["forces"] = (eu / lu) * out["forces"]
        if has_cell:
            volume = abs(np.linalg.det(cell))
            stress = -out["virial"] * eu / volume
            self.results["stress"] = full_3x3_to_voigt_6_stress(stress)
        elif "stress" in properties:
            raise PropertyNotImplementedError(
                "stress: the structure has no 3-D cell (stress needs a volume); give the atoms a "
                "cell (atoms.cell) to get the stress"
            )
