import time, sys
import numpy as np
import fastdecay as fd
def best(f, n=15):
    f(); ts = []
    for _ in range(n):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return min(ts) * 1e3
rng = np.random.default_rng(0)
lam6 = rng.uniform(0.1, 1.0, (1_000_000, 1)); lam5 = lam6[:100_000]
exp = fd.exponential(0.1, gamma=0.99)
print(f"GD {best(lambda: fd.simulate(lam6, exp, steps=200)):.1f} mom {best(lambda: fd.simulate(lam6, exp, steps=200, optimizer='momentum')):.1f} adamw {best(lambda: fd.simulate(lam5, exp, steps=200, optimizer='adamw')):.1f} mom1t {best(lambda: fd.simulate(lam5, exp, steps=200, optimizer='momentum', threads=1)):.1f}", flush=True)
