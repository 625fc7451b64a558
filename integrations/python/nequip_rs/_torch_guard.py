"""The one-libtorch rule.

libnequip_capi.so links libtorch 2.13 (libtorch_cpu.so, libc10.so). Python's `torch` ships
libraries with the same sonames; two different versions in one process clash (symbol
interposition, crashes). So, when `nequip_rs` is imported:

* `torch` already imported (sys.modules) or installed (importlib.metadata), version not 2.13.x
  -> ImportError;
* torch 2.13.x installed but not imported -> `import torch` now, so that its libtorch is the one
  loaded and libnequip_capi.so reuses it (the dynamic loader matches sonames already loaded);
* no torch -> nothing to do (the library loads its own libtorch through its rpath).

NEQUIP_RS_SKIP_TORCH_CHECK=1 disables the check (at your own risk).
"""
import importlib.metadata
import os
import re
import sys

REQUIRED_TORCH = (2, 13)


def _major_minor(version):
    m = re.match(r"\s*(\d+)\.(\d+)", str(version))
    return (int(m.group(1)), int(m.group(2))) if m else None


def _compatible(version):
    return _major_minor(version) == REQUIRED_TORCH


def _message(version, where):
    req = ".".join(map(str, REQUIRED_TORCH))
    return (
        f"nequip_rs cannot be used with torch {version} ({where}): its C library "
        f"(libnequip_capi.so) links libtorch {req}, and two libtorch versions in one Python "
        f"process clash (same shared-library names). Use an environment without torch, or with "
        f"torch=={req}.* (e.g. `pip install torch=={req}.0`). "
        f"Set NEQUIP_RS_SKIP_TORCH_CHECK=1 to skip this check at your own risk."
    )


def check_torch():
    if os.environ.get("NEQUIP_RS_SKIP_TORCH_CHECK", "") not in ("", "0"):
        return
    mod = sys.modules.get("torch")
    if mod is not None:
        version = getattr(mod, "__version__", None)
        if version is None or not _compatible(version):
            raise ImportError(_message(version or "of unknown version", "already imported"))
    try:
        installed = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed is not None and not _compatible(installed):
        raise ImportError(_message(installed, "installed in this environment"))
    if installed is not None and mod is None:
        try:
            import torch  # noqa: F401  (load torch's libtorch first; ours then reuses it)
        except Exception as e:  # a broken torch install
            raise ImportError(
                f"nequip_rs: torch {installed} is installed but `import torch` failed ({e}); "
                f"nequip_rs imports torch first so that one libtorch is loaded"
            ) from e
        if not _compatible(getattr(torch, "__version__", "")):
            raise ImportError(_message(torch.__version__, "imported"))
