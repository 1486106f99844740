"""The first call with an lr a trajectory over 7 step shapes (2,000 x 20): its kernels compiled where the
cache is empty. NUMBA_CACHE_DIR=<empty dir> PYTHONPATH=<tree> python first_call_compile.py <label>"""
import time, sys
t0 = time.perf_counter()
import numpy as np, fastdecay as fd
t1 = time.perf_counter()
n = 2000
lr = 0.05 * (1 + 1e-9 * np.arange(n))
grid = fd.step(lr=lr, gamma=0.5, period=(np.arange(n) % 7 + 5.0))
fd.simulate(np.ones((n, 1)), grid, steps=20, threads=1)
t2 = time.perf_counter()
print(sys.argv[1], "import %.1f s, first lr-a-trajectory call (its kernels compiled) %.1f s" % (t1 - t0, t2 - t1), flush=True)
