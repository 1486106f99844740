"""Noiseless GD and momentum on one thread by CPU time, for one source tree (run it once per
tree, alternating: ``PYTHONPATH=<tree> python noiseless_ab.py <label>``): 100,000
one-coordinate trajectories x 200 steps, one shared exponential schedule, float64 and float32;
best of 7 by the thread's CPU time, in M trajectory-steps per CPU-second. The check that a change
to the noise generator leaves the noiseless paths as they were."""

import sys
import time

import numpy as np

import fastdecay as fd

lam = np.random.default_rng(0).uniform(0.01, 1.0, (100_000, 1))
schedule = fd.exponential(0.05, gamma=0.99)
out = []
for optimizer in ("momentum", "gd"):
    for dtype in ("float64", "float32"):
        def call():
            fd.simulate(lam, schedule, steps=200, optimizer=optimizer, noise=0.0, dtype=dtype, threads=1)
        call()
        best = float("inf")
        for _ in range(7):
            t0 = time.thread_time()
            call()
            best = min(best, time.thread_time() - t0)
        out.append(f"{optimizer} {dtype} {2e7 / best / 1e6:.0f}")
print(sys.argv[1], out)
