"""The first recording ``fd.simulate`` calls on an empty Numba cache (a fresh interpreter, its own
``NUMBA_CACHE_DIR``): one schedule recorded every 10 steps (1,000 float64 trajectories, 100 steps),
then a grid of 2 schedules over them recorded, wall seconds each.

    PYTHONPATH=<tree> python first_recorded.py
"""
import os
import subprocess
import sys
import tempfile

PROBE = r"""
import time
import numpy as np
import fastdecay as fd
lam = np.linspace(0.01, 1, 1000)[:, None]
t = time.perf_counter()
fd.simulate(lam, fd.exponential(0.5, gamma=0.99), steps=100, every=10)
one = time.perf_counter() - t
t = time.perf_counter()
fd.simulate(lam, fd.stack([fd.step(0.1, 0.5, 7), fd.cosine(0.5, 90)] * 500), steps=100, every=10)
grid = time.perf_counter() - t
print(f"first recorded call, one schedule {one:.1f} s; then a recorded grid {grid:.1f} s")
"""

with tempfile.TemporaryDirectory() as cache:
    subprocess.run([sys.executable, "-c", PROBE], env=dict(os.environ, NUMBA_CACHE_DIR=cache), check=True)
