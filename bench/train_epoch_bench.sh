#!/usr/bin/env bash
# Wall time per training epoch, nequip-rs vs nequip 0.6.2, on the same YAML files
# (bench/train_toluene.yaml, bench/train_cu.yaml), and nequip-rs's time to the first training
# step. Needs a Python environment with nequip 0.6.2 (default /tmp/venv, see README) and the
# release binary (`./run nequip list` builds it). Run from the repository root:
#   bash bench/train_epoch_bench.sh [THREADS]
set -euo pipefail
threads="${1:-2}"
py="${NEQUIP_PY:-/tmp/venv/bin}"
export OMP_NUM_THREADS="$threads"
# nequip 0.6.2's ASEDataset uses torch.load on its own pickles, refused by torch >= 2.6 by default
export TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1
epoch_times() { # metrics_epoch.csv -> per-epoch wall times (differences of the cumulative wall)
  python3 -c '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), skipinitialspace=True))
w = [float(r["wall"]) for r in rows]
d = [w[0]] + [b - a for a, b in zip(w, w[1:])]
print(" ".join(f"{x:.3f}" for x in d))' "$1"
}
for cfg in bench/train_toluene.yaml bench/train_cu.yaml; do
  root=$(grep '^root:' "$cfg" | awk '{print $2}')
  rm -rf "$root"
  /usr/bin/time -f "%e" -o /tmp/rs.time target/release/nequip train -q "$cfg"
  rs=$(epoch_times "$root/run/metrics_epoch.csv")
  rm -rf "$root"
  "$py/nequip-train" "$cfg" > /tmp/nequip-train.log 2>&1
  py_t=$(epoch_times "$root/run/metrics_epoch.csv")
  echo "$cfg threads=$threads  nequip-rs epochs (s): $rs   nequip 0.6.2 epochs (s): $py_t"
done
# time to the first step: one training batch, no validation before it
cfg=/tmp/first_step.yaml
sed -e 's/^n_train: .*/n_train: 5/' -e 's/^n_val: .*/n_val: 5/' -e 's/^max_epochs: .*/max_epochs: 1/' -e 's#^root: .*#root: /tmp/nequip-bench/first#' bench/train_toluene.yaml > "$cfg"
rm -rf /tmp/nequip-bench/first; target/release/nequip train -q "$cfg" >/dev/null; rm -rf /tmp/nequip-bench/first/run  # warm the dataset cache
start=$(date +%s.%N); target/release/nequip train -q "$cfg"; end=$(date +%s.%N)
echo "nequip-rs: start to end of a 1-batch epoch (+ its validation): $(python3 -c "print(f'{$end-$start:.2f}')") s"
