#!/bin/sh
# bench/step_grid_peers.py's grids of an lr a trajectory, the tree before (A) and after (B)
# alternated, each run in its own process:
#   PY=.venv/bin/python BEFORE=<tree before> AFTER=<tree after> [GRIDS="step cosine ..."] bash bench/results/intel-xeon-2026-12-06g/run_peers.sh
for round in 1 2; do
  for grid in ${GRIDS:-step cosine warmup-lengths warmup-cosine}; do
    for tree in "$BEFORE" "$AFTER"; do
      label=$([ "$tree" = "$BEFORE" ] && echo A || echo B)
      echo "== round $round, --distinct --grid $grid, $label ($tree)"
      PYTHONPATH="$tree" "$PY" bench/step_grid_peers.py --rounds 3 --distinct --grid "$grid"
    done
  done
done
