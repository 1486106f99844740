# A/B of grids of products scaled by an lr a trajectory: before tree ($1) against after tree ($2),
# alternated; this tree's bench/step_grid_peers.py on each tree's fastdecay (JAX and NumPy rerun beside each).
here=$(cd "$(dirname "$0")" && pwd)
script="$here/../../step_grid_peers.py"
PY=${PY:-python}
for r in 1 2; do for t in "$1" "$2"; do
  echo "== $t round $r: --grid warmup-lengths --distinct"
  PYTHONPATH=$t $PY "$script" --grid warmup-lengths --distinct --rounds 3
done; done
for t in "$1" "$2"; do
  echo "== $t: --grid warmup-lengths (37 rows, no lr a trajectory)"
  PYTHONPATH=$t $PY "$script" --grid warmup-lengths --rounds 3
done
