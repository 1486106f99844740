"""The simulations' speed on one tree (to compare the trees before and after a change that must not
move it): best of 7 calls each, ms.  PYTHONPATH=<tree> NUMBA_CACHE_DIR=<its cache> python kernels_ab.py"""
import time
import numpy as np
import fastdecay as fd

def best(f, n=7):
    f()
    times = []
    for _ in range(n):
        t = time.perf_counter(); f(); times.append(time.perf_counter() - t)
    return min(times) * 1e3

rng = np.random.default_rng(0)
lam6 = rng.uniform(0.1, 1.0, (1_000_000, 1))
lam5 = lam6[:100_000]
exp = fd.exponential(0.1, gamma=0.99)
per = fd.exponential(rng.uniform(0.01, 0.1, 1_000_000), gamma=0.99)
cases = {
    "GD, one exponential, 1e6 x 200": lambda: fd.simulate(lam6, exp, steps=200),
    "momentum, one exponential, 1e6 x 200": lambda: fd.simulate(lam6, exp, steps=200, optimizer="momentum"),
    "AdamW, one exponential, 1e5 x 200": lambda: fd.simulate(lam5, exp, steps=200, optimizer="adamw"),
    "GD, an exponential a trajectory, 1e6 x 200": lambda: fd.simulate(lam6, per, steps=200),
    "noisy GD, 1e5 x 200": lambda: fd.simulate(lam5, exp, steps=200, noise=0.1),
    "GD recorded every 10, 1e5 x 200": lambda: fd.simulate(lam5, exp, steps=200, every=10),
    "GD, 1 x 1e6 coordinates x 200": lambda: fd.simulate(lam6[:, 0][None, :], exp, steps=200),
}
print(" | ".join(f"{name}: {best(f):.1f}" for name, f in cases.items()), flush=True)
