"""An exponential a trajectory (1e6 x 200) and noisy GD (1e5 x 200), GD as the control: best of 9, ms.
    PYTHONPATH=<tree> NUMBA_CACHE_DIR=<its cache> python rates_noise_ab.py"""
import time
import numpy as np
import fastdecay as fd

def best(f, n=9):
    f(); ts = []
    for _ in range(n):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return min(ts) * 1e3

rng = np.random.default_rng(0)
lam6 = rng.uniform(0.1, 1.0, (1_000_000, 1)); lam5 = lam6[:100_000]
exp = fd.exponential(0.1, gamma=0.99)
per = fd.exponential(rng.uniform(0.01, 0.1, 1_000_000), gamma=0.99)
print(f"GD {best(lambda: fd.simulate(lam6, exp, steps=200)):.1f} | per-trajectory {best(lambda: fd.simulate(lam6, per, steps=200)):.1f} "
      f"| noisy {best(lambda: fd.simulate(lam5, exp, steps=200, noise=0.1)):.1f} "
      f"| per-trajectory, one thread, 1e5 {best(lambda: fd.simulate(lam5, per[:100_000], steps=200, threads=1)):.1f} "
      f"| noisy, one thread, 2e4 {best(lambda: fd.simulate(lam5[:20_000], exp, steps=200, noise=0.1, threads=1)):.1f}", flush=True)
