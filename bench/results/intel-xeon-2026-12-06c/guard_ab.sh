# A/B of the reused plan's checks: before tree ($1) against after tree ($2), alternated.
# 1) 1,000 tensors of 16 elements, SGD with momentum, one thread (../cpu-zen4-2026-12-05g/sgd_per_tensor.py; both
#    trees' own fastdecay, torch's fused and foreach SGD in the same process);
# 2) the fixed-cost benchmark of bench_updates.py (1 to 256 tensors of 4,096 elements), SGD and AdamW.
here=$(cd "$(dirname "$0")" && pwd)
PY=${PY:-python}
for r in 1 2 3; do for t in "$1" "$2"; do
  echo "== $t round $r (1000 x 16)"
  PYTHONPATH=$t $PY "$here/../cpu-zen4-2026-12-05g/sgd_per_tensor.py" 1000 16
done; done
for r in 1 2; do for t in "$1" "$2"; do
  echo "== $t round $r (fixed cost)"
  (cd "$t" && PYTHONPATH=$t $PY -m pytest bench/bench_updates.py -q -s -p no:randomly -p no:cacheprovider \
      --benchmark-only -k "fixed_cost" 2>&1 | grep "fixed-cost:")
done; done
