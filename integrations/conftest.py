"""Shared fixtures of the MD-engine tests (integrations/): the repository's binaries and the C
library (built by integrations/test.sh before pytest runs), and small float64 models trained
once per session with `nequip train` from integrations/tests/configs/."""
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release"


@pytest.fixture(scope="session")
def repo():
    return REPO


@pytest.fixture(scope="session")
def nequip_bin():
    exe = TARGET / "nequip"
    if not exe.exists():
        pytest.fail(f"{exe} is missing: run integrations/test.sh (it builds the release binaries)")
    return exe


@pytest.fixture(scope="session")
def capi_lib():
    lib = TARGET / "libnequip_capi.so"
    if not lib.exists():
        pytest.fail(f"{lib} is missing: run integrations/test.sh (it builds the C library)")
    return lib


def _train(nequip_bin, tmp_root, name):
    text = (REPO / "integrations/tests/configs" / f"{name}.yaml").read_text()
    text = text.replace("@DATA@", str(REPO / "data")).replace("@ROOT@", str(tmp_root))
    cfg = tmp_root / f"{name}.yaml"
    cfg.write_text(text)
    subprocess.run([str(nequip_bin), "train", str(cfg), "--quiet"], check=True, cwd=tmp_root)
    model = tmp_root / name / "best_model.safetensors"
    assert model.exists(), model
    return model


@pytest.fixture(scope="session")
def cu_model(nequip_bin, tmp_path_factory):
    """Periodic Cu, float64, 3 layers, r_max 4, StressForceOutput."""
    return _train(nequip_bin, tmp_path_factory.mktemp("cu_model"), "cu_f64")


@pytest.fixture(scope="session")
def toluene_model(nequip_bin, tmp_path_factory):
    """Toluene (type names H, C), float64, 2 layers, r_max 4, ForceOutput."""
    return _train(nequip_bin, tmp_path_factory.mktemp("toluene_model"), "toluene_f64")
