"""Two threads calling, a step at a time, a non-inlined kernel that takes the shared arrays: prange vs run_blocks."""
import time, numpy as np, numba
from numba import njit, prange
@njit(nogil=True, cache=False)
def step(w, a, lo, hi, eta):
    for i in range(lo, hi):
        w[i] = w[i] - eta * a[i] * w[i]
@njit(nogil=True)
def blocks(first, last, w, a, nb, steps):
    n = w.shape[0]
    for b in range(first, last):
        lo = b * n // nb; hi = (b + 1) * n // nb
        for s in range(steps):
            step(w, a, lo, hi, 0.01)
@njit(parallel=True)
def whole(w, a, nb, steps):
    n = w.shape[0]
    for b in prange(nb):
        lo = b * n // nb; hi = (b + 1) * n // nb
        for s in range(steps):
            step(w, a, lo, hi, 0.01)
n = 1 << 16
w = np.ones(n); a = np.random.rand(n)
blocks(0, 1, w, a, 256, 1); whole(w, a, 256, 1)
from fastdecay._cpu import parallel
for r in range(3):
    for name, fn in (("prange", lambda: whole(w, a, 256, 400)), ("run_blocks", lambda: parallel.run_blocks(blocks, 256, (w, a, 256, 400))),
                     ("one thread", lambda: blocks(0, 256, w, a, 256, 400))):
        best = min((lambda t: (fn(), time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(7))
        print(f"{name:12s} {best*1e3:7.2f} ms", end=" | ")
    print()
