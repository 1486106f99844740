#!/bin/bash
# The headline figures, tuned on AVX-512 VMs, checked on this session's AVX2 VM (AMD EPYC, Zen 3),
# one after another:
#   bash bench/results/cpu-zen3-2026-12-07/run.sh
cd "$(dirname "$0")/../../.."
OUT=bench/results/cpu-zen3-2026-12-07
PY=.venv/bin/python
{ date -u; grep -m1 "model name" /proc/cpuinfo; grep -m1 -E "^cpu family" /proc/cpuinfo; grep -m1 -E "^model\s" /proc/cpuinfo; grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E "^(fma|f16c|avx|avx2|bmi2|avx512.*)$" | tr '\n' ' '; echo; $PY -c "import numba, llvmlite.binding as b; print('numba', numba.__version__, 'host cpu', b.get_host_cpu_name())"; uptime; } > $OUT/machine.txt
run() { name=$1; shift; { echo "# $*"; date -u; uptime; "$@"; date -u; uptime; } > $OUT/$name.txt 2>&1; }
BS="$PY -m pytest bench/bench_simulate.py --benchmark-only -q -p no:randomly -p no:cacheprovider --benchmark-columns=median,iqr,ops"
run gd_noiseless $BS -k "(gd_shared or gd_per_trajectory) and not noisy and not torch and not one_thread"
run adamw_noiseless $BS -k "optimizer and adamw and not noisy and not torch and not one_thread"
run noisy_gd $BS -k "noisy and gd and float64 and not torch"
run small_call $BS -k "small_call"
for grid in step cosine warmup-cosine warmup-lengths; do
  run "grid_${grid}_distinct" $PY bench/step_grid_peers.py --rounds 3 --distinct --grid $grid
done
run grid_step $PY bench/step_grid_peers.py --rounds 3
run fixed_cost $PY -m pytest bench/bench_updates.py -k fixed_cost --benchmark-only -q -s -p no:cacheprovider -p no:randomly
run model_lists $PY -m pytest bench/bench_updates.py -q -s -p no:cacheprovider -p no:randomly --benchmark-only -k "model_param_list_adamw and (resnet18 or resnet50 or tiny) and (bf16-state-bf16 or fp32) and not bf16-state-fp32"
run roofline env PYTHONPATH=$PWD $PY bench/simulate_roofline.py --out $OUT/simulate_roofline
echo DONE > $OUT/done.txt
