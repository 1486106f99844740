# A/B of the 2,000 x 256 AdamW list (float32) after the reused plan's guard: before tree ($1),
# after tree ($2), alternated, each tree's own bench_updates.py.
PY=${PY:-python}
for r in 1 2; do for t in "$1" "$2"; do
  echo "== $t round $r"
  (cd "$t" && PYTHONPATH=$t $PY -m pytest bench/bench_updates.py -q -s -p no:randomly -p no:cacheprovider \
      --benchmark-only -k "model_param_list_adamw and tiny and fp32" 2>&1 | grep -iE "speedup|interleaved|tiny" | head -5)
done; done
