# First use, timed: `fastdecay compile` into an empty Numba cache, the first calls after it
# (fresh processes), and `fastdecay demo` cold (its own empty cache) and warm.
#     bash bench/first_use.sh [PYTHON]
set -x
PY=${1:-python}
WORK=$(mktemp -d)
cd "$WORK"
uptime
/usr/bin/time -f "compile wall %e s" env NUMBA_CACHE_DIR=$WORK/compiled $PY -m fastdecay compile --jobs 2
for i in 1 2; do env NUMBA_CACHE_DIR=$WORK/compiled $PY -c "
import time, numpy as np
t0 = time.perf_counter(); import fastdecay as fd
r = fd.simulate(np.linspace(0.1, 1, 5), fd.exponential(0.1, gamma=0.99), steps=250); t1 = time.perf_counter()
s = fd.step(0.1, 0.5, 10).table(100); t2 = time.perf_counter()
print(f'after compile: first simulate {t1-t0:.2f} s (with import), then a first schedule table {t2-t1:.2f} s')"; done
/usr/bin/time -f "demo cold wall %e s" env NUMBA_CACHE_DIR=$WORK/demo-cache $PY -m fastdecay demo --out $WORK/demo-out > /dev/null
/usr/bin/time -f "demo warm wall %e s" env NUMBA_CACHE_DIR=$WORK/demo-cache $PY -m fastdecay demo --out $WORK/demo-out > /dev/null
uptime
