"""Which vector width LLVM chooses by itself, by the CPU Numba builds for: the four-step GD loop shape
compiled without ``prefer_wide_vectors`` (run with NUMBA_CPU_NAME=znver4 and =emeraldrapids, each with an
empty NUMBA_CACHE_DIR)."""
import numpy as np
from numba import njit
@njit
def loop(w, a, etas):
    for t in range(0, etas.shape[0] - 3, 4):
        e0, e1, e2, e3 = etas[t], etas[t + 1], etas[t + 2], etas[t + 3]
        for j in range(w.shape[0]):
            x = w[j]
            x = x - e0 * a[j] * x
            x = x - e1 * a[j] * x
            x = x - e2 * a[j] * x
            w[j] = x - e3 * a[j] * x
loop(np.ones(100), np.ones(100), np.ones(8))
asm = "\n".join(loop.inspect_asm().values())
import numba
print(numba.config.CPU_NAME, "zmm" in asm, asm.count("zmm"), asm.count("ymm"))
