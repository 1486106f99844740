"""Compile time of each per-trajectory SGD block alone (njit of its Python function, one call).
NUMBA_CACHE_DIR=<empty dir> PYTHONPATH=<tree> python block_compile.py <label>"""
import time, sys
import numpy as np
from numba import njit
from fastdecay._cpu import rules
n = 64
w = np.ones(n); buf = np.zeros(n); lam = np.ones(n); rates = np.ones((8, 2, 1)); classes = np.zeros(n, np.int64)
scales = np.ones(n); etas = tuple(np.empty(n) for _ in range(4)); ss = np.zeros((9, 4)); ss[:, 2] = 1
def T(name, f, *a):
    g = njit(f.py_func); t = time.perf_counter(); g(*a); print(sys.argv[1], name, "%.1f s" % (time.perf_counter() - t), flush=True)
T("per_trajectory_block", rules._sgd_per_trajectory_block, w, buf, lam, np.ones(n), np.ones(n), ss, 0, True, False, False)
T("class_block", rules._sgd_class_block, w, buf, lam, rates, classes, scales, etas, ss, 0, True, False, False)
if hasattr(rules, "_sgd_class_runs_block"):
    T("class_runs_block", rules._sgd_class_runs_block, w, buf, lam, rates, classes, scales, ss, 0, True, False, False)
