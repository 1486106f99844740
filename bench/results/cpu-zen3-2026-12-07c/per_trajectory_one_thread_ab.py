"""An exponential a trajectory, 1e5 x 200, and one shared exponential, on one thread: best and median of 15 (the
first 10 lines: of 25), ms.  PYTHONPATH=<tree> NUMBA_CACHE_DIR=<its cache> python per_trajectory_one_thread_ab.py"""
import time
import numpy as np
import fastdecay as fd
def best(f, n=15):
    f(); ts = []
    for _ in range(n):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return min(ts) * 1e3, np.median(ts) * 1e3
rng = np.random.default_rng(0)
lam5 = rng.uniform(0.1, 1.0, (100_000, 1))
per = fd.exponential(rng.uniform(0.01, 0.1, 100_000), gamma=0.99)
exp = fd.exponential(0.1, gamma=0.99)
a = best(lambda: fd.simulate(lam5, per, steps=200, threads=1))
b = best(lambda: fd.simulate(lam5, exp, steps=200, threads=1))
print(f"per-trajectory 1 thread best {a[0]:.2f} median {a[1]:.2f} | shared GD 1 thread best {b[0]:.2f} median {b[1]:.2f}", flush=True)
