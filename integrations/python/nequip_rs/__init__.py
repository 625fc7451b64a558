"""nequip_rs — Python front end of nequip-rs models (the C library libnequip_capi.so).

    import nequip_rs
    model = nequip_rs.Model.load("model.safetensors")
    out = model.compute(positions, types, cell=cell)      # energy, forces, virial

    from nequip_rs.ase import NequIPCalculator
    atoms.calc = NequIPCalculator.from_deployed_model("model.safetensors",
                                                      species_to_type_name={"Cu": "Cu"})

The C library links libtorch 2.13. A Python process may hold only one libtorch, so importing
this package checks the `torch` of the environment first (see `_torch_guard`): a torch other than
2.13.x is an ImportError; torch 2.13 is imported first so that the library reuses its libtorch.
"""
from ._torch_guard import check_torch as _check_torch

_check_torch()

from ._capi import (  # noqa: E402
    ComputeError,
    InternalError,
    InvalidArgumentError,
    ModelFileError,
    NequIPError,
    library_path,
    library_version,
    set_num_threads,
)
from .model import Model  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Model",
    "NequIPError",
    "ModelFileError",
    "InvalidArgumentError",
    "ComputeError",
    "InternalError",
    "set_num_threads",
    "library_path",
    "library_version",
    "__version__",
]
