"""``fd.expected_loss`` (the exact expected dynamics of noisy SGD / momentum on the noisy
quadratic model) for one source tree (run it once per tree, alternating:
``PYTHONPATH=<tree> python expected_ab.py <label> [threads]``): d = 10,000 coordinates
(lam_k = 1/k, sigma_k^2 = lam_k), 100 exponential schedules, 1,000 steps, recorded every 10 steps
and not at all; best of 5, G coordinate-steps per second. On one thread (the default) timed by
the thread's CPU time, on more by wall clock."""

import sys
import time

import numba
import numpy as np

import fastdecay as fd

threads = int(sys.argv[2]) if len(sys.argv) > 2 else 1
numba.set_num_threads(threads)
clock = time.thread_time if threads == 1 else time.perf_counter
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
            t0 = clock()
            call()
            best = min(best, clock() - t0)
        out.append(f"{optimizer} every={every} {d * n * steps / best / 1e9:.2f}")
print(sys.argv[1], "; ".join(out), flush=True)
