"""The divider's floor for Adam's element on one core, float32, 4,096 elements in L1: a square root
and two divisions (torch's formula), one of each, each alone; ns an element, best of 7 x 20,000.

    python divider_floor.py
"""
import time, numpy as np, math
from numba import njit, float32
@njit(error_model="numpy")
def two_div(o, a, b, c, e):
    for i in range(o.shape[0]):
        o[i] = a[i] / (math.sqrt(b[i]) / c + e)
@njit(error_model="numpy")
def one_div(o, a, b, c, e):
    for i in range(o.shape[0]):
        o[i] = a[i] / (math.sqrt(b[i]) + e)
@njit(error_model="numpy")
def sqrt_only(o, a, b, c, e):
    for i in range(o.shape[0]):
        o[i] = a[i] * (math.sqrt(b[i]) + e)
@njit(error_model="numpy")
def div_only(o, a, b, c, e):
    for i in range(o.shape[0]):
        o[i] = a[i] / (b[i] + e)
n = 4096
a, b, o = (np.random.rand(n).astype(np.float32) + 1 for _ in range(3))
for f in (two_div, one_div, sqrt_only, div_only):
    @njit
    def rep(r, o, a, b):
        for _ in range(r):
            f(o, a, b, float32(0.7), float32(1e-8))
    rep(1, o, a, b)
    best = 1e9
    for _ in range(7):
        t = time.perf_counter(); rep(20000, o, a, b); best = min(best, time.perf_counter() - t)
    print(f.__name__, round(best / 20000 / n * 1e9, 3), "ns/element")
