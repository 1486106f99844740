"""What a new user waits for at the first simulations, on an empty Numba cache: in a fresh
interpreter with its own empty ``NUMBA_CACHE_DIR``, the first ``fd.simulate`` of one
schedule without recording (1,000 float64 trajectories, 100 steps), then the first of one
schedule a trajectory (the other kernel), wall seconds of each call, with and without noise.
Run it once per source tree to compare trees:

    PYTHONPATH=<tree> python bench/first_simulate.py
"""

import os
import subprocess
import sys
import tempfile

PROBE = r"""
import sys, time
import numpy as np
import fastdecay as fd
lam = np.linspace(0.01, 1, 1000)[:, None]
noise = float(sys.argv[1])
t = time.perf_counter()
fd.simulate(lam, fd.exponential(0.5, gamma=0.99), steps=100, noise=noise)
one = time.perf_counter() - t
t = time.perf_counter()
fd.simulate(lam, fd.stack([fd.constant(0.1), fd.exponential(0.5, gamma=0.99)] * 500), steps=100, noise=noise)
rows = time.perf_counter() - t
print(f"noise {noise}: first call, one schedule {one:.1f} s; then one schedule a trajectory {rows:.1f} s")
"""


def main():
    for noise in ("0.0", "0.1"):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            subprocess.run([sys.executable, "-c", PROBE, noise], env=env, check=True)


if __name__ == "__main__":
    main()
