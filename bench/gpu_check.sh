#!/usr/bin/env bash
# Everything a lent GPU is for, in one call: the GPU test suites, the GPU doctests,
# then the GPU benchmarks (models' parameter lists and noisy simulations against
# torch and JAX, 1e8 and 1e9 AdamW, simulation, schedule tables), with every log and
# JSON written to one folder and a short summary printed last.
#
#   bash bench/gpu_check.sh [OUT_DIR] [PYTHON]       (defaults: .benchmarks/gpu, python3)
#   PHASES="tests bench" bash bench/gpu_check.sh     (a subset of: models tests doctests simulate hostprofile hostab
#                                                     bench bench1e9 cold)
#
# The CPU kernels (the tests' reference) compile in the background while the model
# lists, the simulations, the host profile and the host A/B lists are timed (those compile the few CPU
# kernels they use themselves); the tests wait for them.
#
# Needs CuPy and a CUDA device; torch with CUDA for the torch rows. Runs from a
# source checkout (PYTHONPATH=repo root) or an installed fastdecay. Each phase
# has its own time limit and a failure does not stop the next phase: one call
# on a borrowed machine should bring back everything it can.
set -u
cd "$(dirname "$0")/.."
OUT_DIR=${1:-.benchmarks/gpu}
PY=${2:-python3}
mkdir -p "$OUT_DIR"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export CUPY_CACHE_DIR="${CUPY_CACHE_DIR:-$PWD/.cupy-cache}"
T0=$(date +%s)
PHASES=${PHASES:-models tests doctests simulate hostprofile hostab bench bench1e9 cold}
JOBS=${JOBS:-8}  # pytest-xdist workers for the GPU tests
phase() { echo "=== $1 ($(( $(date +%s) - T0 )) s)"; }
want() { [[ " $PHASES " == *" $1 "* ]]; }

phase environment
{
    nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv
    "$PY" - <<'EOF'
import platform, numpy, numba, cupy
print("python", platform.python_version(), "numpy", numpy.__version__, "numba", numba.__version__,
      "cupy", cupy.__version__, "CUDA runtime", cupy.cuda.runtime.runtimeGetVersion(),
      "driver", cupy.cuda.runtime.driverGetVersion())
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))
except Exception as e:
    print("torch unavailable:", e)
EOF
} 2>&1 | tee "$OUT_DIR/environment.txt"

# Numba compiles the CPU kernels the GPU results are compared with: all of them
# first, in parallel worker processes, into the on-disk cache the tests then load.
phase "compile the CPU kernels (background)"
(timeout 240 "$PY" -m fastdecay compile > "$OUT_DIR/compile.log" 2>&1 || tail -5 "$OUT_DIR/compile.log") &
COMPILE=$!

want models && phase "models' parameter lists (bench/gpu_models.py)" && timeout 150 "$PY" bench/gpu_models.py "$OUT_DIR" models \
    > "$OUT_DIR/models.log" 2>&1; want models && grep -A40 "copy ceiling" "$OUT_DIR/models.log" | tail -16
want simulate && phase "noisy simulations against torch and JAX (bench/gpu_models.py)" && timeout 150 "$PY" bench/gpu_models.py \
    "$OUT_DIR" simulate > "$OUT_DIR/simulate.log" 2>&1; want simulate && grep "trajectory-steps/s$" "$OUT_DIR/simulate.log"
want hostprofile && phase "where a step's host time goes (bench/gpu_host_profile.py)" && timeout 90 "$PY" \
    bench/gpu_host_profile.py "$OUT_DIR" > "$OUT_DIR/host_profile.log" 2>&1; want hostprofile && head -16 "$OUT_DIR/host_profile.log"
# (another version of the host path: run bench/gpu_host_ab.py from its tree too, alternating; RESULTS.md shows how)
want hostab && phase "model lists, same and new gradients each step (bench/gpu_host_ab.py)" && timeout 120 "$PY" \
    bench/gpu_host_ab.py this "$OUT_DIR" > "$OUT_DIR/host_ab.log" 2>&1; want hostab && tail -12 "$OUT_DIR/host_ab.log" | cut -c1-160
phase "waiting for the CPU kernels"
wait $COMPILE

want tests && phase "GPU tests" && timeout 240 "$PY" -m pytest -m gpu tests/test_gpu.py tests/test_gpu_paths.py -q -rs --tb=short \
    -p no:cacheprovider -n "$JOBS" --junitxml="$OUT_DIR/tests.xml" 2>&1 | tee "$OUT_DIR/tests.log" | tail -60
want doctests && phase "GPU doctests" && timeout 60 "$PY" -m pytest fastdecay/_gpu -q -p no:cacheprovider 2>&1 | tee "$OUT_DIR/doctests.log" | tail -15

want bench && phase "GPU benchmarks (1e8 AdamW, simulation, tables)" && timeout 150 "$PY" -m pytest bench/bench_gpu.py --benchmark-only -q -p no:cacheprovider \
    --benchmark-columns=median,iqr,ops --benchmark-json="$OUT_DIR/bench.json" > "$OUT_DIR/bench.log" 2>&1
want bench && tail -5 "$OUT_DIR/bench.log"
want bench1e9 && phase "GPU benchmarks (1e9 AdamW)" && FASTDECAY_BENCH_GPU_N=1e9 timeout 100 "$PY" -m pytest bench/bench_gpu.py -k "adamw or d2d" --benchmark-only -q \
    -p no:cacheprovider --benchmark-json="$OUT_DIR/bench-1e9.json" > "$OUT_DIR/bench-1e9.log" 2>&1
want bench1e9 && tail -3 "$OUT_DIR/bench-1e9.log"

want cold && phase "cold start: first GPU call in a fresh process, NVRTC compile then disk cache"
want cold && rm -rf "$OUT_DIR/kernel-cache"
want cold && for run in compile cached; do
    FASTDECAY_CACHE_DIR="$OUT_DIR/kernel-cache" timeout 60 "$PY" - "$run" <<'EOF' 2>&1 | tee -a "$OUT_DIR/cold-start.txt"
import sys, time
t0 = time.perf_counter()
import cupy as cp, numpy as np, fastdecay as fd
w, g, m, v = (cp.ones(1000, dtype=cp.float32) for _ in range(4))
t1 = time.perf_counter()
fd.adamw_step(w, g, m, v, step=0, lr=fd.cosine(1e-3, 100))
cp.cuda.Device().synchronize()
t2 = time.perf_counter()
fd.simulate(cp.ones((10, 1)), fd.constant(0.1), steps=10)
cp.cuda.Device().synchronize()
t3 = time.perf_counter()
print(f"{sys.argv[1]:>8}: imports + CuPy context {t1 - t0:.2f} s, first adamw_step {t2 - t1:.2f} s, "
      f"first simulate {t3 - t2:.2f} s")
EOF
done

phase summary
for json in bench bench-1e9; do
    [ -f "$OUT_DIR/$json.json" ] && "$PY" bench/report.py "$OUT_DIR/$json.json" | tee "$OUT_DIR/$json-report.txt"
done
grep -E "passed|failed|error" "$OUT_DIR/tests.log" | tail -3
grep -E "passed|failed|error" "$OUT_DIR/doctests.log" | tail -1
phase done
