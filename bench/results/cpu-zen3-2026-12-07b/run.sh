#!/bin/bash
# The headline simulation figures rerun on this session's final tree (the Zen 3 VM), one after another:
#   bash bench/results/cpu-zen3-2026-12-07b/run.sh
cd "$(dirname "$0")/../../.."
OUT=bench/results/cpu-zen3-2026-12-07b
PY=.venv/bin/python
run() { name=$1; shift; { echo "# $*"; date -u; uptime; "$@"; date -u; uptime; } > $OUT/$name.txt 2>&1; }
BS="$PY -m pytest bench/bench_simulate.py --benchmark-only -q -p no:randomly -p no:cacheprovider --benchmark-columns=median,iqr,ops"
run gd_noiseless $BS -k "(gd_shared or gd_per_trajectory) and not noisy and not torch and not one_thread"
run noisy_gd $BS -k "noisy and gd and float64 and not torch"
for grid in step cosine warmup-cosine; do
  run "grid_${grid}_distinct" $PY bench/step_grid_peers.py --rounds 3 --distinct --grid $grid
done
