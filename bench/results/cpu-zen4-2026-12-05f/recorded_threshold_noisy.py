"""Noisy recorded grids (sigma 0.1, every=10), interleaved: grouped against the general kernel, 60,000
elements x 100 steps, one thread, best of 5 (ratio = general / grouped)."""
import importlib
import time

import numpy as np

import fastdecay as fd

S = importlib.import_module("fastdecay.simulate")
N, STEPS = 60_000, 100
rng = np.random.default_rng(0)


def t(f):
    f()
    b = []
    for _ in range(5):
        s = time.perf_counter()
        f()
        b.append(time.perf_counter() - s)
    return min(b) * 1e3


for d in (1, 4):
    lam = rng.uniform(0.01, 1.0, (N // d, d))
    n = N // d
    for per in (8, 16, 32, 64):
        classes = max(1, n // per)
        which = np.arange(n) % classes
        grid = fd.step(lr=0.05, gamma=0.5, period=(which % 37 + 5).astype(float) + which / classes)
        row = []
        for share in (1, 10**9):
            S._GROUP_SHARING_RECORDED = share
            row.append(t(lambda: fd.simulate(lam, grid, steps=STEPS, every=10, noise=0.1, threads=1)))
        print(f"d={d} per={per:3d}: grouped {row[0]:7.1f}  general {row[1]:7.1f}  ratio {row[1] / row[0]:.2f}", flush=True)
