# A/B of the model lists with bfloat16 parameters and state (AdamW) after the bfloat16 pair loops
# run in 512-bit vectors: before tree ($1), after tree ($2), alternated, each tree's own
# bench_updates.py and Numba cache.
PY=${PY:-python}
K=${K:-"model_param_list_adamw and (resnet18 or resnet50 or tiny) and bf16-state-bf16 and not kahan"}
for r in 1 2; do for t in "$1" "$2"; do
  echo "== $t round $r"
  (cd "$t" && PYTHONPATH=$t $PY -m pytest bench/bench_updates.py -q -s -p no:randomly -p no:cacheprovider \
      --benchmark-only -k "$K" 2>&1 | grep -iE "^updates-" | head -20)
done; done
