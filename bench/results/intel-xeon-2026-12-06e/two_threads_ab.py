"""Noiseless GD and momentum, float64 and float32, 1,000,000 one-coordinate trajectories x 200
steps, one shared exponential, on both threads (the default), by wall clock, for one source tree
(run it once per tree, alternating: ``PYTHONPATH=<tree> python two_threads_ab.py <label>``):
best and median of 9 calls, in ms. What the 512-bit blocks give where both of this VM's
cores run them."""

import sys
import time

import numpy as np

import fastdecay as fd

lam = np.random.default_rng(0).uniform(0.01, 1.0, (1_000_000, 1))
schedule = fd.exponential(0.05, gamma=0.99)
out = []
for optimizer in ("gd", "momentum"):
    for dtype in ("float64", "float32"):
        def call():
            fd.simulate(lam, schedule, steps=200, optimizer=optimizer, dtype=dtype)

        call()
        times = []
        for _ in range(9):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
        out.append(f"{optimizer} {dtype} {1e3 * min(times):.1f} / {1e3 * float(np.median(times)):.1f}")
print(sys.argv[1], "; ".join(out), flush=True)
