#!/usr/bin/env bash
# Training throughput of the authors' code and of zc-train on the same cells, in one run, one
# core each, then with the cores swapped; prints images per second and the ratio zc / reference.
# Usage (from the project root): scripts/train-side-by-side.sh CELLS_FILE SETTING [BATCH] [STEPS]
set -euo pipefail
CELLS=$(realpath "$1"); SETTING=$2; BATCH=${3:-256}; STEPS=${4:-10}
PY=$(../shared/bench/setup-reference.sh)
cargo build --release -q -p zc-train --example throughput
ZC=target/release/examples/throughput
OUT=$(mktemp -d)
for round in 1 2; do
  rc=$(( round - 1 )); zc_core=$(( 1 - rc ))
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c "$rc" "$PY" scripts/train_throughput.py \
    "$CELLS" "$SETTING" "$BATCH" "$STEPS" > "$OUT/ref$round.txt" & pid=$!
  RAYON_NUM_THREADS=1 taskset -c "$zc_core" "$ZC" "$CELLS" "$SETTING" "$BATCH" "$STEPS" > "$OUT/zc$round.txt"
  wait "$pid"
done
"$PY" - "$OUT" "$SETTING" <<'PY'
import sys, statistics as st
d, setting = sys.argv[1], sys.argv[2]
def read(name):
    out = {}
    for r in (1, 2):
        for line in open(f"{d}/{name}{r}.txt"):
            a, _, ips = line.split(); out.setdefault(a, []).append(float(ips))
    return out
ref, zc = read("ref"), read("zc")
print(f"{setting}: {'reference img/s':>15} {'zc img/s':>9} {'ratio':>6}  cell")
rs, zs = [], []
for a in ref:
    r, z = st.mean(ref[a]), st.mean(zc[a]); rs.append(r); zs.append(z)
    print(f"{'':{len(setting)+1}} {r:15.1f} {z:9.1f} {z / r:6.2f}  {a}")
# Mean time per image over the cells (what a sweep of these cells costs), as a ratio.
tr, tz = st.mean(1 / r for r in rs), st.mean(1 / z for z in zs)
print(f"{setting}: mean seconds per 1,000 images: reference {1000 * tr:.2f}, zc {1000 * tz:.2f}, "
      f"ratio {tr / tz:.2f}x (higher = zc faster), {len(rs)} cells x 2 rounds")
PY
rm -rf "$OUT"
