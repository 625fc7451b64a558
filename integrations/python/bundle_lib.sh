#!/usr/bin/env bash
# Copies the C library into the package (nequip_rs/lib/) before a wheel is built, so that the
# wheel carries it:  bash integrations/python/bundle_lib.sh && pip wheel integrations/python
# The copy still needs libtorch 2.13 at run time (its rpath points at the libtorch it was built
# against; or install torch==2.13.* / set LD_LIBRARY_PATH). Source: $NEQUIP_RS_LIB, else
# ${CARGO_TARGET_DIR:-<checkout>/target}/release/libnequip_capi.so. `--clean` removes the copy.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="$here/nequip_rs/lib"
if [ "${1:-}" = "--clean" ]; then
  rm -f "$dest"/libnequip_capi.so; echo "removed $dest/libnequip_capi.so"; exit 0
fi
checkout="$(cd "$here/../.." && pwd)"
src="${NEQUIP_RS_LIB:-${CARGO_TARGET_DIR:-$checkout/target}/release/libnequip_capi.so}"
if [ ! -f "$src" ]; then
  echo "bundle_lib.sh: $src not found; build it first: (cd $checkout && ./run cargo build --release -p nequip-capi)" >&2
  exit 1
fi
mkdir -p "$dest"
cp -f "$src" "$dest/libnequip_capi.so"
echo "copied $src -> $dest/libnequip_capi.so"
