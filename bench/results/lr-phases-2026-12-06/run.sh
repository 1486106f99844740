#!/bin/bash
# A/B of bench/step_grid_peers.py --distinct --grid warmup-cosine (an lr a trajectory: a 10-step warmup, then
# a cosine) before the phases (BEFORE, 0fd1cf4) and after (AFTER), alternated, three rounds of three calls:
#   PY=.venv/bin/python BEFORE=<tree at 0fd1cf4> AFTER=<tree> bash bench/results/lr-phases-2026-12-06/run.sh
set -u
PY=${PY:-python}
for rnd in 1 2 3; do
  for tree in BEFORE AFTER; do
    T=${!tree}
    echo "## $tree ($T) round $rnd: python bench/step_grid_peers.py --rounds 3 --distinct --grid warmup-cosine ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg))"
    (cd "$T" && PYTHONPATH="$T" timeout 900 "$PY" bench/step_grid_peers.py --rounds 3 --distinct --grid warmup-cosine 2>&1 | tail -5)
  done
done
