"""Noisy recorded grids (sigma 0.3), classes interleaved, at every = 1 / 2 / 4 / 8 (after the recorded step keeps its Philox quad): grouped against the
general kernel, about 42,000 elements x 96 steps, one thread, best of 3 (ratio = general / grouped)."""
import importlib
import time

import numpy as np

import fastdecay as fd

S = importlib.import_module("fastdecay.simulate")
rng = np.random.default_rng(0)


def t(f):
    f()
    b = []
    for _ in range(3):
        s = time.perf_counter()
        f()
        b.append(time.perf_counter() - s)
    return min(b) * 1e3


S._GROUPED_NOISY_EVERY = 1
for d, per in ((1, 64), (1, 256), (7, 5), (7, 20), (2, 20)):
    n = 42_000 // d
    lam = rng.uniform(0.01, 1.0, (n, d))
    classes = max(1, n // per)
    which = np.arange(n) % classes
    grid = fd.step(lr=0.05, gamma=0.5, period=(which % 37 + 5).astype(float) + which / classes)
    for every in (1, 2, 4, 8):
        row = []
        for share in (1, 10**9):
            S._GROUP_SHARING_RECORDED = S._GROUP_SHARING_RECORDED_NOISY = share
            row.append(t(lambda: fd.simulate(lam, grid, steps=96, every=every, noise=0.3, threads=1)))
        print(f"d={d} per={per:3d} ({per * d:4d} elements) every={every:2d}: grouped {row[0]:6.1f}  "
              f"general {row[1]:6.1f}  ratio {row[1] / row[0]:.2f}", flush=True)
