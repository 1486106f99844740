# A/B of the model lists (AdamW; float32, and bfloat16 parameters with bfloat16 or float32 state;
# K=<pytest -k expression> for others): before tree ($1), after tree ($2), alternated, two
# rounds, each tree's own bench_updates.py and Numba cache.
PY=${PY:-python}
K=${K:-"model_param_list_adamw and (resnet18 or resnet50 or tiny) and (fp32 or bf16-state-bf16 or bf16-state-fp32) and not kahan"}
for r in 1 2; do for t in "$1" "$2"; do
  echo "== $t round $r"
  (cd "$t" && PYTHONPATH=$t $PY -m pytest bench/bench_updates.py -q -s -p no:randomly -p no:cacheprovider \
      --benchmark-only -k "$K" 2>&1 | grep -iE "^updates-" | head -20)
done; done
