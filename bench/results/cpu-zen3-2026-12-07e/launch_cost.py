import time, concurrent.futures as cf, numpy as np, numba
from numba import njit, prange
@njit(nogil=True)
def part(a, lo, hi):
    for i in range(lo, hi):
        a[i] += 1.0
@njit(parallel=True)
def whole(a):
    for i in prange(a.shape[0]):
        a[i] += 1.0
a = np.zeros(2); part(a, 0, 1); whole(a)
pool = cf.ThreadPoolExecutor(1)
def threads(a):
    f = pool.submit(part, a, 1, 2); part(a, 0, 1); f.result()
for name, fn in (("numba prange (omp)", whole), ("python threads: caller + 1 pool thread", threads), ("one call", lambda a: part(a, 0, 2))):
    best = []
    for r in range(5):
        t = time.perf_counter()
        for _ in range(2000): fn(a)
        best.append((time.perf_counter() - t) / 2000 * 1e6)
    print(f"{name:42s} {min(best):6.1f} us (median {sorted(best)[2]:.1f})")
