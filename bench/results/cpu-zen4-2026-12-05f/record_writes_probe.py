import time, numpy as np, math
from numba import njit
N = 200_000
K = 8
@njit
def direct(w, lam, rl, rd, rr, tile):
    n = w.shape[0]
    for i0 in range(0, n, tile):
        i1 = min(i0 + tile, n)
        for j in range(1, rl.shape[1]):
            for i in range(i0, i1):
                x = w[i]
                w[i] = x - 0.01 * lam[i] * x
                rd[i, j] = math.sqrt((w[i] - x) ** 2); rl[i, j] = 0.5 * lam[i] * w[i] ** 2; rr[i, j] = 0.05
@njit
def buffered(w, lam, rl, rd, rr, tile, prev, buf):
    n = w.shape[0]
    m = rl.shape[1]
    for i0 in range(0, n, tile):
        i1 = min(i0 + tile, n)
        k = i1 - i0
        q = 0
        j0 = 1
        for j in range(1, m):
            for i in range(k):
                prev[i] = w[i0 + i]
            for i in range(i0, i1):
                w[i] = w[i] - 0.01 * lam[i] * w[i]
            for i in range(k):
                x = w[i0 + i]
                buf[i, 0, q] = math.sqrt((x - prev[i]) ** 2)
                buf[i, 1, q] = 0.5 * lam[i0 + i] * x * x
                buf[i, 2, q] = 0.05
            q += 1
            if q == K or j == m - 1:
                for i in range(k):
                    for r in range(q):
                        rd[i0 + i, j0 + r] = buf[i, 0, r]
                    for r in range(q):
                        rl[i0 + i, j0 + r] = buf[i, 1, r]
                    for r in range(q):
                        rr[i0 + i, j0 + r] = buf[i, 2, r]
                j0 += q
                q = 0
rng = np.random.default_rng(0)
lam = rng.uniform(0, 1, N)
for M in (11, 101):
    for name in ["direct", "buffered"]:
        best = 1e9
        for _ in range(5):
            w = np.ones(N); rl, rd, rr = (np.empty((N, M)) for _ in range(3))
            prev = np.empty(1024); buf = np.empty((1024, 3, K))
            s = time.perf_counter()
            if name == "direct": direct(w, lam, rl, rd, rr, 1024)
            else: buffered(w, lam, rl, rd, rr, 1024, prev, buf)
            best = min(best, time.perf_counter() - s)
        print(M, name, round(best * 1e3, 2), "ms")
from fastdecay._cpu.simulate import _record_before, _record_after, _record_rates
@njit
def passes(w, lam, rl, rd, rr, tile):
    n = w.shape[0]
    for i0 in range(0, n, tile):
        i1 = min(i0 + tile, n)
        for j in range(1, rl.shape[1]):
            _record_before(w, rd, i0, i1, j, None)
            for i in range(i0, i1):
                w[i] = w[i] - 0.01 * lam[i] * w[i]
            _record_after(w, lam, rd, rl, i0, i1, j, None)
            for i in range(i0, i1):
                rr[i, j] = 0.05
@njit
def passes_prev(w, lam, rl, rd, rr, tile, prev):
    n = w.shape[0]
    for i0 in range(0, n, tile):
        i1 = min(i0 + tile, n)
        for j in range(1, rl.shape[1]):
            for i in range(i0, i1):
                prev[i - i0] = w[i]
            for i in range(i0, i1):
                w[i] = w[i] - 0.01 * lam[i] * w[i]
            for i in range(i0, i1):
                x = w[i]
                dd = (np.float64(x) - np.float64(prev[i - i0])) ** 2
                ll = np.float64(lam[i]) * np.float64(x) ** 2
                rd[i, j] = math.sqrt(0.0 + dd); rl[i, j] = 0.5 * (0.0 + ll)
            for i in range(i0, i1):
                rr[i, j] = 0.05
for M in (11, 101):
    for name in ["passes", "passes_prev"]:
        best = 1e9
        for _ in range(5):
            w = np.ones(N); rl, rd, rr = (np.empty((N, M)) for _ in range(3))
            prev = np.empty(1024)
            s = time.perf_counter()
            if name == "passes": passes(w, lam, rl, rd, rr, 1024)
            else: passes_prev(w, lam, rl, rd, rr, 1024, prev)
            best = min(best, time.perf_counter() - s)
        print(M, name, round(best * 1e3, 2), "ms")
