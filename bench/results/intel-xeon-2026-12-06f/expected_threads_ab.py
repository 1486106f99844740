"""``expected_ab.py`` on both threads by wall clock, for one source tree (run it once per tree,
alternating: ``PYTHONPATH=<tree> python expected_threads_ab.py <label> 2``): d = 10,000
coordinates, 100 exponential schedules, 1,000 steps, recorded every 10 steps and not at all; best
of 5 by wall clock, G coordinate-steps per second."""

import sys
import time

import numba
import numpy as np

import fastdecay as fd

numba.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
d, n, steps = 10_000, 100, 1_000
lam = 1.0 / np.arange(1, d + 1)
schedules = fd.exponential(0.5, gamma=np.linspace(0.99, 0.9999, n))
out = []
for optimizer in ("gd", "momentum"):
    for every in (None, 10):
        def call():
            fd.expected_loss(lam, schedules, steps=steps, optimizer=optimizer, noise=np.sqrt(lam), every=every)

        call()
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            call()
            best = min(best, time.perf_counter() - t0)
        out.append(f"{optimizer} every={every} {d * n * steps / best / 1e9:.2f}")
print(sys.argv[1], "; ".join(out), flush=True)
