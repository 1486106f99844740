"""expected_loss, 10,000 coordinates x 16 rates x 500 steps (every 50), by the CPU time of one thread (best of 5):
    cd <tree> && NUMBA_NUM_THREADS=1 PYTHONPATH=<tree> python expected_overflow_ab.py <label> momentum|gd"""
import sys, time, numpy as np, fastdecay as fd
lam = np.geomspace(1e-3, 1.0, 10_000)
grid = fd.exponential(np.geomspace(0.05, 1.5, 16)[:, None], gamma=0.995)
f = lambda: fd.expected_loss(lam, grid, steps=500, optimizer=sys.argv[2], noise=np.sqrt(lam), every=50)
f()
best = min((lambda t0: (f(), time.process_time() - t0)[1])(time.process_time()) for _ in range(5))
print(sys.argv[1], "%.1f ms CPU" % (best * 1e3))
