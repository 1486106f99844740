"""Each per-trajectory SGD block alone on a 1,024-lane tile (4 classes in runs of 256), 49 blocks of four steps,
best of 5, ns a lane-step. PYTHONPATH=<tree> python block_speed.py <label>"""
import numpy as np, time, sys
from fastdecay._cpu import rules
n = 1024
rng = np.random.default_rng(0)
w = rng.uniform(-1, 1, n); buf = np.zeros(n); lam = rng.uniform(0, 2, n); rates = rng.uniform(0, 0.01, (200, 4, 1))
classes = np.repeat(np.arange(4), 256); scales = rng.uniform(0.5, 2, n); ss = np.zeros((201, 4)); ss[:, 2] = 1; ss[:, 3] = 0.9
etas = tuple(np.empty(n) for _ in range(4))
for name, f, args in (("runs", rules._sgd_class_runs_block, lambda s, m: (w, buf, lam, rates, classes, scales, ss, s, m, False, False)),
                      ("gather", rules._sgd_class_block, lambda s, m: (w, buf, lam, rates, classes, scales, etas, ss, s, m, False, False)),
                      ("ratio", rules._sgd_per_trajectory_block, lambda s, m: (w, buf, lam, scales * 0.01, np.full(n, 0.999), ss, s, m, False, False))):
    for m in (False, True):
        f(*args(0, m))
        best = 1e9
        for _ in range(5):
            t = time.perf_counter()
            for s in range(0, 196, 4):
                f(*args(s, m))
            best = min(best, time.perf_counter() - t)
        print(sys.argv[1], name, "momentum" if m else "gd", "%.3f ns a lane-step" % (best / (49 * 4 * n) * 1e9), flush=True)
