"""Noiseless GD float64, 1,000,000 x 200, one shared exponential, on one thread and on both, by wall
clock, best and median of 7 calls (``PYTHONPATH=<tree> python threads_scaling_ab.py``)."""
import time
import numpy as np
import fastdecay as fd
lam = np.random.default_rng(0).uniform(0.01, 1.0, (1_000_000, 1)); s = fd.exponential(0.05, gamma=0.99)
for th in (1, 2, 1, 2):
    f = lambda: fd.simulate(lam, s, steps=200, optimizer="gd", threads=th)
    f(); ts = []
    for _ in range(7):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    print(th, "threads: best %.1f median %.1f ms" % (1e3 * min(ts), 1e3 * np.median(ts)), flush=True)
