"""ctypes binding of the C ABI (integrations/capi/include/nequip_rs.h).

The library is looked up, in order:
  1. the environment variable NEQUIP_RS_LIB (the .so file, or a folder holding it);
  2. a copy bundled in the package (nequip_rs/lib/, filled by bundle_lib.sh before a wheel is built);
  3. the cargo build of the checkout: $CARGO_TARGET_DIR/release, then <checkout>/target/release
     (the checkout this package sits in, or the one it was pip-installed from).
It is loaded on first use (Model.load, set_num_threads, library_version), not at import.
"""
import ctypes
import os
import threading
from pathlib import Path

LIB_NAME = "libnequip_capi.so"

NQRS_OK = 0
NQRS_ERROR_INVALID_ARGUMENT = 1
NQRS_ERROR_MODEL_FILE = 2
NQRS_ERROR_COMPUTE = 3
NQRS_ERROR_INTERNAL = 4


class NequIPError(RuntimeError):
    """An error reported by the C library: `code` (NQRS_ERROR_*) and `message` (nqrs_last_error())."""

    def __init__(self, message, code=None, call=None):
        self.code = code
        self.message = message
        self.call = call
        super().__init__(message)


class InvalidArgumentError(NequIPError, ValueError):
    """NQRS_ERROR_INVALID_ARGUMENT (bad input, e.g. a type index out of range)."""


class ModelFileError(NequIPError):
    """NQRS_ERROR_MODEL_FILE (missing, unreadable, not a nequip-rs model, does not build)."""


class ComputeError(NequIPError):
    """NQRS_ERROR_COMPUTE (the model failed to evaluate)."""


class InternalError(NequIPError):
    """NQRS_ERROR_INTERNAL (a bug in the library: a Rust panic caught at the boundary)."""


_ERRORS = {
    NQRS_ERROR_INVALID_ARGUMENT: InvalidArgumentError,
    NQRS_ERROR_MODEL_FILE: ModelFileError,
    NQRS_ERROR_COMPUTE: ComputeError,
    NQRS_ERROR_INTERNAL: InternalError,
}


def _candidates():
    """(path, where) pairs in lookup order."""
    out = []
    env = os.environ.get("NEQUIP_RS_LIB")
    if env:
        p = Path(env)
        out.append((p / LIB_NAME if p.is_dir() else p, "NEQUIP_RS_LIB"))
        return out  # an explicit choice is not second-guessed
    here = Path(__file__).resolve().parent
    out.append((here / "lib" / LIB_NAME, "bundled copy"))
    target = os.environ.get("CARGO_TARGET_DIR")
    if target:
        out.append((Path(target) / "release" / LIB_NAME, "CARGO_TARGET_DIR"))
    checkouts = [here.parents[2]]  # <checkout>/integrations/python/nequip_rs
    try:
        from ._checkout import CHECKOUT  # written by setup.py when pip-installed

        checkouts.append(Path(CHECKOUT))
    except ImportError:
        pass
    for c in checkouts:
        out.append((c / "target" / "release" / LIB_NAME, f"checkout {c}"))
    return out


_lib = None
_lib_path = None
_lock = threading.Lock()


def _declare(lib):
    c_int, i32, i64, dbl = ctypes.c_int, ctypes.c_int32, ctypes.c_int64, ctypes.c_double
    P = ctypes.POINTER
    vp = ctypes.c_void_p
    sigs = {
        "nqrs_last_error": (ctypes.c_char_p, []),
        "nqrs_version": (ctypes.c_char_p, []),
        "nqrs_set_num_threads": (c_int, [i32]),
        "nqrs_model_load": (c_int, [ctypes.c_char_p, ctypes.c_char_p, P(vp)]),
        "nqrs_model_free": (None, [vp]),
        "nqrs_model_r_max": (c_int, [vp, P(dbl)]),
        "nqrs_model_num_types": (c_int, [vp, P(i32)]),
        "nqrs_model_type_name": (c_int, [vp, i32, P(ctypes.c_char_p)]),
        "nqrs_model_dtype": (c_int, [vp, P(ctypes.c_char_p)]),
        "nqrs_model_num_layers": (c_int, [vp, P(i32)]),
        "nqrs_model_energy_shift": (c_int, [vp, P(dbl)]),
        "nqrs_model_device": (c_int, [vp, P(ctypes.c_char_p)]),
        # pointers to arrays are passed as void* (numpy .ctypes.data or None)
        "nqrs_compute": (c_int, [vp, i64, vp, vp, vp, vp, P(dbl), vp, vp, vp]),
        "nqrs_compute_graph": (c_int, [vp, i64, vp, i64, i64, vp, vp, P(dbl), vp, vp, vp]),
    }
    missing = []
    for name, (res, args) in sigs.items():
        try:
            f = getattr(lib, name)
        except AttributeError:
            missing.append(name)
            continue
        f.restype = res
        f.argtypes = args
    return missing


def lib():
    """The loaded library (ctypes.CDLL), loaded on first call."""
    global _lib, _lib_path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        for path, where in _candidates():
            if not path.is_file():
                tried.append(f"{path} ({where}: not found)")
                continue
            try:
                handle = ctypes.CDLL(str(path))
            except OSError as e:
                raise ImportError(
                    f"nequip_rs: could not load {path} ({where}): {e}. The library needs "
                    f"libtorch 2.13 (libtorch_cpu.so, libc10.so): it finds the libtorch it was "
                    f"built against through its rpath; otherwise install torch==2.13.* in this "
                    f"environment or put a libtorch 2.13 lib/ folder on LD_LIBRARY_PATH."
                ) from e
            missing = _declare(handle)
            if missing:
                raise ImportError(
                    f"nequip_rs: {path} ({where}) lacks the functions {', '.join(missing)}: "
                    f"it is not a (current) build of libnequip_capi.so"
                )
            _lib, _lib_path = handle, path
            return _lib
        raise ImportError(
            f"nequip_rs: {LIB_NAME} not found. Build it in the nequip-rs checkout "
            f"(`./run cargo build --release -p nequip-capi`) or point NEQUIP_RS_LIB to it. "
            f"Looked in: " + "; ".join(tried)
        )


def library_path():
    """The path of the loaded libnequip_capi.so (loading it if needed)."""
    lib()
    return str(_lib_path)


def last_error():
    msg = lib().nqrs_last_error()
    return msg.decode("utf-8", "replace") if msg else ""


def check(code, call):
    """Raise the NequIPError subclass of `code` with nqrs_last_error() when code != NQRS_OK."""
    if code == NQRS_OK:
        return
    msg = last_error() or f"{call} failed with code {code} (no message)"
    raise _ERRORS.get(code, NequIPError)(msg, code=code, call=call)


def library_version():
    """The C library's version string (nqrs_version())."""
    v = lib().nqrs_version()
    return v.decode() if v else ""


def set_num_threads(n):
    """Threads used by libtorch and the native kernels in this process (all models); n >= 1."""
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"set_num_threads: expected an integer >= 1, got {n!r}")
    check(lib().nqrs_set_num_threads(int(n)), "nqrs_set_num_threads")
