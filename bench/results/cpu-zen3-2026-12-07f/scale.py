import time, numpy as np, numba
from numba import njit, prange
@njit(nogil=True)
def blocks(first, last, w, a, nb, steps):
    n = w.shape[0]
    for b in range(first, last):
        lo = b * n // nb; hi = (b + 1) * n // nb
        for s in range(steps):
            for i in range(lo, hi):
                w[i] *= 1.0 - a[i] * 0.01
@njit(parallel=True)
def whole(w, a, nb, steps):
    n = w.shape[0]
    for b in prange(nb):
        lo = b * n // nb; hi = (b + 1) * n // nb
        for s in range(steps):
            for i in range(lo, hi):
                w[i] *= 1.0 - a[i] * 0.01
n = 1 << 20
w = np.ones(n); a = np.random.rand(n)
blocks(0, 1, w, a, 64, 1); whole(w, a, 64, 1)
from fastdecay._cpu import parallel
for r in range(4):
    for name, fn in (("prange", lambda: whole(w, a, 64, 200)), ("run_blocks", lambda: parallel.run_blocks(blocks, 64, (w, a, 64, 200))),
                     ("one thread", lambda: blocks(0, 64, w, a, 64, 200))):
        best = min((lambda t: (fn(), time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(7))
        print(f"{name:12s} {best*1e3:7.2f} ms", end=" | ")
    print()
