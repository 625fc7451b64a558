#!/usr/bin/env python3
"""Assemble a CPU libtorch 2.13.0 for tch 0.26 from PyPI wheels, once, into a cache outside the checkout.

Why: tch 0.26 links `-ltorch -ltorch_cpu -lc10`. The torch 2.13.0 PyPI wheel has the headers and
`libtorch_cpu.so`, `libc10.so`, `libgomp.so.1`, but its `libtorch.so` pulls in the CUDA libraries.
`libtorch_cpu.so` itself needs `libcudart.so.13` and `libcupti.so.13` (two small NVIDIA wheels).
So we unpack those pieces and build a tiny `libtorch.so` that only depends on `libtorch_cpu.so`.

Result (default): ~/.cache/nequip-rs/libtorch-2.13.0-cpu/{include,lib,build-version}
The cache location can be changed with NEQUIP_RS_CACHE. Idempotent: a finished cache is reused.
Prints the libtorch directory on stdout (everything else goes to stderr).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

TORCH = "torch==2.13.0"
EXTRA = ["nvidia-cuda-runtime==13.0.96", "nvidia-cuda-cupti==13.0.85"]
PLATFORM = "manylinux_2_28_x86_64"
LIBS = ["libtorch_cpu.so", "libc10.so", "libgomp.so.1"]


def log(msg):
    print(f"[libtorch] {msg}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    base = os.environ.get("NEQUIP_RS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "nequip-rs"
    )
    return Path(base)


def download(wheels: Path):
    wheels.mkdir(parents=True, exist_ok=True)
    have = {p.name.split("-")[0] for p in wheels.glob("*.whl")}
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-d", str(wheels)]
    if "torch" not in have:
        log(f"downloading {TORCH} wheel (~527 MB, once)")
        subprocess.run(pip + ["--only-binary=:all:", "--platform", PLATFORM, "--python-version", "3.11", TORCH], check=True, stdout=sys.stderr)
    for req in EXTRA:
        name = req.split("==")[0].replace("-", "_")
        if name not in have:
            log(f"downloading {req}")
            subprocess.run(pip + ["--only-binary=:all:", req], check=True, stdout=sys.stderr)


def wheel(wheels: Path, prefix: str) -> zipfile.ZipFile:
    found = sorted(wheels.glob(prefix + "-*.whl"))
    if not found:
        sys.exit(f"[libtorch] error: no {prefix} wheel in {wheels}")
    return zipfile.ZipFile(found[-1])


def assemble(wheels: Path, dest: Path):
    tmp = Path(tempfile.mkdtemp(prefix=".libtorch-", dir=dest.parent))
    try:
        lib = tmp / "lib"
        lib.mkdir()
        with wheel(wheels, "torch-2.13.0") as z:
            log("unpacking headers and CPU libraries")
            for name in z.namelist():
                if name.startswith("torch/include/") and not name.endswith("/"):
                    out = tmp / name[len("torch/"):]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with z.open(name) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst)
            for so in LIBS:
                with z.open("torch/lib/" + so) as src, open(lib / so, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        for prefix, so in [("nvidia_cuda_runtime", "libcudart.so.13"), ("nvidia_cuda_cupti", "libcupti.so.13")]:
            with wheel(wheels, prefix) as z:
                member = next((n for n in z.namelist() if n.endswith("/" + so)), None)
                if member is None:
                    sys.exit(f"[libtorch] error: {so} not found in the {prefix} wheel")
                with z.open(member) as src, open(lib / so, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        for so in lib.iterdir():
            so.chmod(0o755)
        # libtorch_cpu.so finds its siblings through its own $ORIGIN rpath; make sure of it.
        log("building a CPU-only libtorch.so shim")
        stub = tmp / "stub.c"
        stub.write_text("/* CPU libtorch: only pulls in libtorch_cpu.so */\nint nequip_rs_libtorch_cpu_shim;\n")
        subprocess.run(
            ["cc", "-shared", "-fPIC", "-o", str(lib / "libtorch.so"), str(stub), f"-L{lib}",
             "-Wl,--no-as-needed", "-ltorch_cpu", "-lc10", "-Wl,-rpath,$ORIGIN"],
            check=True,
        )
        stub.unlink()
        (tmp / "build-version").write_text("2.13.0\n")
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)  # atomic: a half-assembled directory never has the final name
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def main():
    root = cache_root()
    dest = root / "libtorch-2.13.0-cpu"
    if (dest / "build-version").exists() and (dest / "lib" / "libtorch.so").exists():
        print(dest)
        return
    root.mkdir(parents=True, exist_ok=True)
    download(root / "wheels")
    assemble(root / "wheels", dest)
    log(f"libtorch ready in {dest}")
    print(dest)


if __name__ == "__main__":
    main()
