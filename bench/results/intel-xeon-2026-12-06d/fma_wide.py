"""The roofline's FMA loop shape (bench/simulate_roofline.py: four GD steps a pass over a 512-element
tile in L1) compiled as LLVM chooses and with ``intrinsics.prefer_wide_vectors`` (512-bit vectors),
one core, best of 5 by CPU time, three rounds: what the noiseless simulation kernels could gain
on an Intel core with two 512-bit FMA units.

    PYTHONPATH=$PWD python bench/results/intel-xeon-2026-12-06d/fma_wide.py
"""
import time, numpy as np
from numba import njit
from fastdecay._cpu.intrinsics import prefer_wide_vectors
def make(wide):
    @njit(fastmath=True)
    def fma_loop(w, a, etas, rounds):
        if wide:
            prefer_wide_vectors()
        for _ in range(rounds):
            for t in range(0, etas.shape[0] - 3, 4):
                e0, e1, e2, e3 = etas[t], etas[t + 1], etas[t + 2], etas[t + 3]
                for j in range(w.shape[0]):
                    x, aj = w[j], a[j]
                    x = x * (1.0 - aj * e0)
                    x = x * (1.0 - aj * e1)
                    x = x * (1.0 - aj * e2)
                    w[j] = x * (1.0 - aj * e3)
    return fma_loop
tile = np.random.default_rng(0).uniform(0.01, 1.0, 512); etas = np.full(200, 1e-9); rounds = 2000
for r in range(3):
    for wide in (False, True):
        f = make(wide); f(np.ones(512), tile, etas, 1)
        best = 1e9
        for _ in range(5):
            t0 = time.thread_time(); f(np.ones(512), tile, etas, rounds); best = min(best, time.thread_time() - t0)
        print("wide" if wide else "default", "%.2f G element-steps/s" % (512 * rounds * 200 / best / 1e9))
