#!/usr/bin/env bash
# The README's whole-model table: `nequip benchmark` (nequip-rs) and bench/nequip_benchmark.py
# (nequip 0.6.2, eager and TorchScript) on the same config, threads, model dtype and frames.
# Needs the release binary (`./run nequip list` builds it) and a Python environment with
# nequip 0.6.2 (default /tmp/venv, see README). Run from the repository root on an idle machine:
#   bash bench/model_table.sh                       # minimal.yaml and example_toluene.yaml
#   N_DATA=5 bash bench/model_table.sh bench/train_cu.yaml   # chosen configs / frame counts
# Prints one row per setting: nequip-rs forward and train-step minimum (ms), nequip's forward,
# train step and TorchScript forward minimum (ms), and the 1-minute load average before and after.
# SKIP_PY=1: nequip-rs only (when the reference figures of the README still stand).
# REPEAT=N: timed calls per measurement for both implementations (default 30; the minimum of
# more calls is steadier for the sub-millisecond minimal.yaml).
set -euo pipefail
py="${NEQUIP_PY:-/tmp/venv/bin}"
export TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1
mins() { grep -oE "min +[0-9.]+" | awk '{print $2}' | tr '\n' ' '; }
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(configs/minimal.yaml bench/example_toluene.yaml)
for cfg in "${configs[@]}"; do
  for th in 1 2; do
    for dt in float32 float64; do
      for n in ${N_DATA:-1 5}; do
        la1=$(cut -d' ' -f1 /proc/loadavg)
        rs=$(OMP_NUM_THREADS=$th target/release/nequip benchmark "$cfg" --threads "$th" --model-dtype "$dt" --n-data "$n" -n "${REPEAT:-30}" 2>&1 | mins)
        la2=$(cut -d' ' -f1 /proc/loadavg)
        pyt=skipped
        [ -n "${SKIP_PY:-}" ] || pyt=$(OMP_NUM_THREADS=$th "$py/python" -W ignore bench/nequip_benchmark.py "$cfg" --threads "$th" --model-dtype "$dt" --n-data "$n" -n "${REPEAT:-30}" --compile 2>&1 | mins)
        echo "$(basename "$cfg") threads=$th $dt n-data=$n | nequip-rs: $rs | nequip: $pyt | load $la1 $la2"
      done
    done
  done
done
