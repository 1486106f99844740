#!/bin/bash
# A/B of bench/step_grid_peers.py before and after the lr shapes, one tree after the other, two rounds:
#   PY=.venv/bin/python BEFORE=<tree at 3e1cd93> AFTER=<tree> bash bench/results/lr-shapes-2026-12-06/run.sh > step_grid_ab.txt
# (each tree's kernels compiled before: a first call in each)
set -u
PY=${PY:-python}  # the Python with fastdecay's dependencies and JAX
for rnd in 1 2; do
  for tree in BEFORE AFTER; do
    T=${!tree}
    for args in "--distinct" "--distinct --grid cosine" "--distinct --grid warmup-cosine" "--distinct-gamma" ""; do
      [ "$tree" = BEFORE ] && [ "$args" = "--distinct-gamma" ] && continue
      echo "## $tree ($T) round $rnd: python bench/step_grid_peers.py --rounds 3 $args ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg))"
      (cd "$T" && PYTHONPATH="$T" timeout 900 "$PY" bench/step_grid_peers.py --rounds 3 $args 2>&1 | tail -5)
    done
  done
done
