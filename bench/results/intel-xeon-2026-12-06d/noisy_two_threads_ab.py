"""Noisy GD (sigma 0.1) on both threads by wall clock, for one source tree (run it once per tree,
alternating: ``PYTHONPATH=<tree> python noisy_two_threads_ab.py <label>``): 100,000
one-coordinate trajectories x 200 steps, one shared exponential schedule, float64 and float32 (the
``simulate-noisy-gd`` benchmark's run); best and median of 9 calls, ms."""

import sys
import time

import numpy as np

import fastdecay as fd

lam = np.random.default_rng(0).uniform(0.01, 1.0, (100_000, 1))
schedule = fd.exponential(0.05, gamma=0.99)
out = []
for dtype in ("float64", "float32"):
    def call():
        fd.simulate(lam, schedule, steps=200, noise=0.1, seed=1, dtype=dtype, threads=2)
    call()
    times = []
    for _ in range(9):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    out.append(f"{dtype} best {times[0]:.1f} median {times[4]:.1f}")
print(sys.argv[1], " | ".join(out), "ms")
