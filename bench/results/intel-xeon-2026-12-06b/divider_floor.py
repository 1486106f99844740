"""The floor a simulated Adam step sits on: a square root and a division an element (the update rule's
denominator), over an L1-resident array on one thread, against a multiply-add loop of the same shape.
    python bench/results/intel-xeon-2026-12-06b/divider_floor.py
"""
import numpy as np, time
from numba import njit
@njit(error_model="numpy", fastmath=False)
def sqrt_div(out, m, v, reps):
    for r in range(reps):
        for i in range(out.shape[0]):
            out[i] = out[i] + m[i] / (np.sqrt(v[i]) + 1e-8)
@njit(error_model="numpy")
def fma_only(out, m, v, reps):
    for r in range(reps):
        for i in range(out.shape[0]):
            out[i] = out[i] + m[i] * (v[i] * 0.999 + 1e-8)
n = 2048
out, m, v = np.zeros(n), np.random.rand(n), np.random.rand(n) + 0.5
for f in (sqrt_div, fma_only):
    f(out, m, v, 1)
    best = 1e9
    for _ in range(5):
        t = time.perf_counter(); f(out, m, v, 20000); best = min(best, time.perf_counter() - t)
    print(f.__name__, round(best / (n * 20000) * 1e9, 3), "ns per element, one thread")
