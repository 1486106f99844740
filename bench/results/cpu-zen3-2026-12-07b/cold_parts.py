"""Each part of fastdecay compile's families compiled in turn in one process on an empty cache (the
seconds each part adds, what the parts before it compiled loaded).  NUMBA_CACHE_DIR=$(mktemp -d) python cold_parts.py"""
import time, sys
import numpy as np
t0 = time.perf_counter()
def lap(name, t=[time.perf_counter()]):
    now = time.perf_counter(); print(f"{name:<28} {now - t[0]:7.1f} s", flush=True); t[0] = now
import fastdecay as fd
from fastdecay import _precompile as P
from fastdecay._rules import NAMES
lap("import fastdecay")
P._schedules(); lap("schedules")
import fastdecay._cpu.simulate
lap("import _cpu.simulate")
def sim(dtype, noise):
    lam = np.ones((2, 3))
    shared, per_trajectory = fd.step(0.1, 0.5, 3), fd.stack([fd.constant(0.1), fd.exponential(0.1, gamma=0.9)])
    for optimizer in NAMES:
        fd.simulate(lam, shared, steps=4, optimizer=optimizer, dtype=dtype, noise=noise)
    lap(f"  {dtype.__name__} {noise} elementwise")
    for optimizer in NAMES:
        fd.simulate(lam[:, :1], per_trajectory, steps=4, optimizer=optimizer, dtype=dtype, noise=noise)
    lap(f"  {dtype.__name__} {noise} rates")
    for optimizer in NAMES:
        fd.simulate(lam, per_trajectory, steps=4, optimizer=optimizer, dtype=dtype, every=2, noise=noise,
                    weight_decay=per_trajectory)
    lap(f"  {dtype.__name__} {noise} general")
    grid = fd.stack([fd.step(0.1, 0.5, 3), fd.cosine(0.1, 8)])
    if noise:
        fd.simulate(np.ones((192, 2, 1)), grid, steps=4, dtype=dtype, noise=0.1)
    else:
        fd.simulate(np.ones((64, 2, 1)), grid, steps=4, dtype=dtype)
    lap(f"  {dtype.__name__} {noise} grouped")
    if noise:
        fd.simulate(np.ones((64, 2, 1)), grid, steps=8, dtype=dtype, every=2, noise=0.1)
    else:
        fd.simulate(np.ones((32, 2, 1)), grid, steps=4, dtype=dtype, every=2)
    lap(f"  {dtype.__name__} {noise} grouped recorded")
    fd.simulate(np.ones((1, 1025)), shared, steps=4, dtype=dtype, every=2, noise=noise)
    lap(f"  {dtype.__name__} {noise} long recorded")
for dtype in (np.float64, np.float32):
    for noise in (0.0, 0.1):
        sim(dtype, noise)
P._updates(); lap("updates")
P._expected(); lap("expected")
print("total", time.perf_counter() - t0)
