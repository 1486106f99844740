"""First-call latency of schedules in a fresh process, with a cold and a warm Numba cache.

    python bench/cold_start.py [--repeat N]

Each run is a new interpreter with ``NUMBA_CACHE_DIR`` pointing at a temporary
directory: the first run finds it empty (everything compiles), the following runs
load what the first one cached. Printed: wall and CPU seconds of ``import
fastdecay``, the first ``s(0)`` (compiles or loads ``eval_points`` and the schedule
helpers), the first ``s.table(n)`` (``fill_table``, float64), the first float32 table
(its own kernel), a second ``s(0)`` and a new schedule's table (steady state).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

PROBE = r"""
import json, time
def clock():
    return time.perf_counter(), time.process_time()
def since(c):
    w, p = clock()
    return [w - c[0], p - c[1]]
res = {}
c = clock()
import numpy as np
import fastdecay as fd
res["import fastdecay"] = since(c)
s = fd.cosine(0.1, 1000)  # constructing it compiles nothing
c = clock(); s(0); res["first s(0)"] = since(c)
c = clock(); s.table(1000); res["first s.table(1000)"] = since(c)
c = clock(); s.table(1000, dtype=np.float32); res["first float32 table"] = since(c)
c = clock(); s(0); res["second s(0)"] = since(c)
c = clock(); fd.warmup(fd.exponential(0.1, gamma=0.99), 100).table(10); res["a new schedule's table"] = since(c)
print(json.dumps(res))
"""


def run(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="warm-cache runs after the cold one")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fastdecay-numba-cache-") as cache_dir:
        runs = [("cold cache", run(cache_dir))] + [(f"warm cache #{k + 1}", run(cache_dir)) for k in range(args.repeat)]
    steps = list(runs[0][1])
    print(f"{'':22}" + "".join(f"{name:>22}" for name, _ in runs))
    for step in steps:
        cells = "".join(f"{r[step][0]:9.3f} s ({r[step][1]:5.2f} cpu)" for _, r in runs)
        print(f"{step:22}{cells}")


if __name__ == "__main__":
    main()
