#!/bin/bash
# The headline figures on this session's Intel Xeon VM (family 6 model 207), one after another:
#   BEFORE=<tree> AFTER=<tree> bash bench/results/intel-xeon-2026-12-06/run.sh
cd "$(dirname "$0")/../../.."
OUT=bench/results/intel-xeon-2026-12-06
{ date -u; grep -m1 "model name" /proc/cpuinfo; grep -m1 -E "^model\s" /proc/cpuinfo; grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E "^(fma|f16c|avx2|avx512)" | tr '\n' ' '; echo; uptime; } > $OUT/machine.txt
run() { name=$1; shift; { echo "# $*"; date -u; uptime; "$@"; date -u; uptime; } > $OUT/$name.txt 2>&1; }
run gd_noiseless .venv/bin/python -m pytest bench/bench_simulate.py --benchmark-only -q -p no:randomly -p no:cacheprovider --benchmark-columns=median,iqr,ops -k "(gd_shared or gd_per_trajectory) and not noisy and not torch and not one_thread"
run adamw_noiseless .venv/bin/python -m pytest bench/bench_simulate.py --benchmark-only -q -p no:randomly -p no:cacheprovider --benchmark-columns=median,iqr,ops -k "optimizer and adamw and not noisy and not torch and not one_thread"
run noisy_gd .venv/bin/python -m pytest bench/bench_simulate.py --benchmark-only -q -p no:randomly -p no:cacheprovider --benchmark-columns=median,iqr,ops -k "noisy and gd and float64 and not torch"
run small_call .venv/bin/python -m pytest bench/bench_simulate.py --benchmark-only -q -p no:randomly -p no:cacheprovider --benchmark-columns=median,iqr,ops -k "small_call"
run step_grid_distinct .venv/bin/python bench/step_grid_peers.py --rounds 3 --distinct
run step_grid .venv/bin/python bench/step_grid_peers.py --rounds 3
run fixed_cost .venv/bin/python -m pytest bench/bench_updates.py -k fixed_cost --benchmark-only -q -s -p no:cacheprovider -p no:randomly
run model_lists .venv/bin/python -m pytest bench/bench_updates.py -q -s -p no:cacheprovider -p no:randomly --benchmark-only -k "model_param_list_adamw and (resnet18 or resnet50 or tiny) and (bf16-state-bf16 or fp32) and not bf16-state-fp32"
# two trees (git archive): before and after the expected_loss change
run expected_call_idle .venv/bin/python bench/results/intel-xeon-2026-12-06/ab_expected_call.py "$BEFORE" "$AFTER" --rounds 3 --calls 200
echo DONE > $OUT/done.txt
