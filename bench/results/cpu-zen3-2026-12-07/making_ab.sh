#!/bin/sh
# A grid's schedules made, a tree before (A) and after (B), alternated, each in its own process:
# the factories alone (making_ab.py) and step_grid_peers.py's "fd+grid" row (the call with the grid made in it)
#   PY=.venv/bin/python BEFORE=<tree> AFTER=<tree> bash bench/results/cpu-zen3-2026-12-07/making_ab.sh
HERE=$(dirname "$0")
for round in 1 2; do
  for tree in "$BEFORE" "$AFTER"; do
    label=$([ "$tree" = "$BEFORE" ] && echo A || echo B)
    echo "== round $round, $label ($tree)"
    PYTHONPATH="$tree" "$PY" "$HERE/making_ab.py" "$label"
  done
done
for grid in step cosine warmup-cosine warmup-lengths; do
  for tree in "$BEFORE" "$AFTER"; do
    label=$([ "$tree" = "$BEFORE" ] && echo A || echo B)
    echo "== --distinct --grid $grid, $label ($tree)"
    PYTHONPATH="$tree" "$PY" bench/step_grid_peers.py --rounds 2 --distinct --grid "$grid"
  done
done
