"""fd.simulate of 1e6 one-coordinate trajectories x 200 steps with a schedule a trajectory (made
before the timed calls, as bench_simulate.py does), and the rates' preparing pass alone
(``prepare_rates``; with cosines also ``enter_segments``): median and best of 9 calls.

    PYTHONPATH=<tree> python rates_entry_ab.py exponential|cosine
"""
import sys
import time

import numpy as np

import fastdecay as fd
from fastdecay import _dispatch as D
from fastdecay.simulate import NUMPY, _readonly

n, steps = 1_000_000, 200
kind = sys.argv[1]
lam = np.random.default_rng(0).uniform(0.01, 1.0, (n, 1))
if kind == "exponential":
    s = fd.exponential(lr=0.5, gamma=np.linspace(0.98, 0.999, n))
else:
    s = fd.cosine(lr=0.5, total_steps=np.linspace(150, 250, n).round())
kernels = D.kernels("simulate", NUMPY)
table, rows = s.rows(), _readonly(np.arange(n, dtype=np.int64))


def prepare():
    ratio, state = np.empty(n), np.empty(2 * n)
    _, vectors = kernels.prepare_rates(table, rows, ratio, state, 0.0)
    if vectors:
        ratio = np.concatenate([ratio, np.zeros(kernels.VECTOR_FIELDS * n)])
        kernels.enter_segments(table, rows, ratio, state, 0.0)


fd.simulate(lam, s, steps=steps)
prepare()
sim, prep = [], []
for _ in range(9):
    t = time.perf_counter(); fd.simulate(lam, s, steps=steps); sim.append(time.perf_counter() - t)
    t = time.perf_counter(); prepare(); prep.append(time.perf_counter() - t)
print(f"{kind:<12} simulate median {np.median(sim) * 1e3:6.1f} best {min(sim) * 1e3:6.1f} ms   "
      f"preparing median {np.median(prep) * 1e3:5.1f} best {min(prep) * 1e3:5.1f} ms")
