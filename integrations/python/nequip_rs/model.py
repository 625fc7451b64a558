"""`Model`: one nequip-rs model file loaded through the C library."""
import ctypes
import os
import threading

import numpy as np

from . import _capi


def _f64(a, shape, name):
    """`a` as a C-contiguous float64 array of `shape` (None = any length on that axis)."""
    try:
        arr = np.ascontiguousarray(a, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: expected numbers, got {type(a).__name__} ({e})") from None
    if arr.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, arr.shape)):
        want = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name}: expected shape {want}, got {arr.shape}")
    return arr


def _ptr(a):
    return None if a is None else a.ctypes.data


class Model:
    """A nequip-rs model (best_model.safetensors, `nequip deploy build`, `nequip import`).

    Energies in the model's units (eV), lengths in its units (Å). A Model may be shared between
    threads (the library serialises calls on one handle).
    """

    def __init__(self, path, device="cpu"):
        lib = _capi.lib()
        self._handle = None
        self._free = lib.nqrs_model_free
        p = os.fspath(path)
        h = ctypes.c_void_p()
        code = lib.nqrs_model_load(
            p.encode(), None if device is None else str(device).encode(), ctypes.byref(h)
        )
        if code != _capi.NQRS_OK:
            msg = _capi.last_error()
            if p not in msg:
                msg = f"cannot load the model {p!r}: {msg}"
            raise _capi._ERRORS.get(code, _capi.NequIPError)(msg, code=code, call="nqrs_model_load")
        if not h.value:
            raise _capi.NequIPError(f"nqrs_model_load({p!r}) returned no handle")
        self._handle = h
        self.path = p
        self._lock = threading.Lock()
        self._r_max = self._get(lib.nqrs_model_r_max, ctypes.c_double)
        n = self._get(lib.nqrs_model_num_types, ctypes.c_int32)
        names = []
        for i in range(n):
            s = ctypes.c_char_p()
            _capi.check(lib.nqrs_model_type_name(h, i, ctypes.byref(s)), "nqrs_model_type_name")
            names.append(s.value.decode())
        self._type_names = tuple(names)
        self._dtype = self._get(lib.nqrs_model_dtype, ctypes.c_char_p).decode()
        self._num_layers = self._get(lib.nqrs_model_num_layers, ctypes.c_int32)
        self._energy_shift = self._get(lib.nqrs_model_energy_shift, ctypes.c_double)
        self._device = self._get(lib.nqrs_model_device, ctypes.c_char_p).decode()

    @classmethod
    def load(cls, path, device="cpu"):
        """Load a model file onto `device` ("cpu", "cuda", "cuda:N")."""
        return cls(path, device)

    def _get(self, fn, ctype):
        v = ctype()
        _capi.check(fn(self._h(), ctypes.byref(v)), fn.__name__)
        return v.value

    def _h(self):
        if self._handle is None:
            raise ValueError("the model was closed")
        return self._handle

    # --- metadata ---------------------------------------------------------------------------
    @property
    def r_max(self):
        """The cutoff radius."""
        return self._r_max

    @property
    def type_names(self):
        """The type names; type index i of `compute` is type_names[i]."""
        return self._type_names

    @property
    def num_types(self):
        return len(self._type_names)

    @property
    def dtype(self):
        """"float32" or "float64" (inputs and outputs are float64 either way)."""
        return self._dtype

    @property
    def num_layers(self):
        """The number of interaction layers (receptive field = num_layers * r_max)."""
        return self._num_layers

    @property
    def energy_shift(self):
        """The constant the model adds to every total energy (0 for most models)."""
        return self._energy_shift

    @property
    def device(self):
        return self._device

    def __repr__(self):
        return (
            f"Model({self.path!r}, type_names={list(self._type_names)}, r_max={self._r_max}, "
            f"dtype={self._dtype}, num_layers={self._num_layers}, device={self._device!r})"
        )

    # --- lifetime ---------------------------------------------------------------------------
    def close(self):
        """Free the handle (also done when the object is garbage-collected)."""
        h, self._handle = getattr(self, "_handle", None), None
        if h is not None:
            self._free(h)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- evaluation -------------------------------------------------------------------------
    def types_of(self, names):
        """Type indices of a list of type names."""
        index = {n: i for i, n in enumerate(self._type_names)}
        out = []
        for n in names:
            if n not in index:
                raise ValueError(f"unknown type name {n!r}; the model's type names are {list(self._type_names)}")
            out.append(index[n])
        return np.asarray(out, dtype=np.int32)

    def compute(self, positions, types, cell=None, pbc=None, forces=True, virial=True, atom_energies=False):
        """Energy (with the model's energy shift), forces, virial and per-atom energies.

        positions: (n, 3); types: n type indices (0 .. num_types-1) or type names;
        cell: (3, 3), rows = lattice vectors, or None (no cell, no periodicity);
        pbc: None (= periodic along every axis when a cell is given), a bool, or 3 bools.
        Returns a dict: "energy" (float), and as requested "forces" (n, 3),
        "virial" (3, 3) = -dE/d(strain), "atom_energies" (n,); float64 numpy arrays.
        (ASE's stress is -virial / volume.)
        """
        lib = _capi.lib()
        pos = _f64(positions, (None, 3), "positions")
        n = pos.shape[0]
        t = np.asarray(types)
        if t.dtype.kind in "US" or (t.dtype == object and t.size and isinstance(t.flat[0], str)):
            t = self.types_of([str(x) for x in t.reshape(-1)]).reshape(t.shape)
        if t.ndim != 1 or t.shape[0] != n:
            raise ValueError(f"types: expected shape ({n},) (one per atom), got {t.shape}")
        if t.size and t.dtype.kind not in "iu":
            if t.dtype.kind == "f" and np.all(t == np.round(t)):
                t = t.astype(np.int64)
            else:
                raise ValueError(f"types: expected integer type indices or type names, got dtype {t.dtype}")
        if t.size and (t.min() < 0 or t.max() >= self.num_types):
            bad = int(t[(t < 0) | (t >= self.num_types)][0])
            raise ValueError(
                f"types: type index {bad} out of range 0..{self.num_types - 1} "
                f"(type names {list(self._type_names)})"
            )
        t = np.ascontiguousarray(t, dtype=np.int32)
        c = None if cell is None else _f64(cell, (3, 3), "cell")
        p = None
        if pbc is not None:
            pa = np.asarray(pbc)
            if pa.ndim == 0:
                pa = np.repeat(pa, 3)
            if pa.shape != (3,):
                raise ValueError(f"pbc: expected a bool or 3 bools, got shape {pa.shape}")
            p = np.ascontiguousarray(pa.astype(bool), dtype=np.int32)
            if c is None and p.any():
                raise ValueError("pbc: periodic boundary conditions need a cell")
        e = ctypes.c_double()
        f = np.empty((n, 3), dtype=np.float64) if forces else None
        v = np.empty((3, 3), dtype=np.float64) if virial else None
        ae = np.empty((n,), dtype=np.float64) if atom_energies else None
        with self._lock:
            code = lib.nqrs_compute(
                self._h(), n, _ptr(pos), _ptr(t), _ptr(c), _ptr(p), ctypes.byref(e), _ptr(f), _ptr(v), _ptr(ae)
            )
        _capi.check(code, "nqrs_compute")
        out = {"energy": float(e.value)}
        if forces:
            out["forces"] = f
        if virial:
            out["virial"] = v
        if atom_energies:
            out["atom_energies"] = ae
        return out
