"""fd.simulate in this tree (PYTHONPATH), best of 5 after a warm-up, ms: GD noiseless 1e6 x 200 (one
exponential), noisy GD 1e5 x 200 (sigma 0.1), an exponential a trajectory 1e6 x 200."""
import time, numpy as np, fastdecay as fd
rng = np.random.default_rng(0)
lam6 = rng.uniform(0.01, 1.0, (1_000_000, 1)); lam5 = lam6[:100_000]
shared = fd.exponential(0.5, gamma=0.99)
per = fd.exponential(0.5, gamma=np.linspace(0.98, 0.999, 1_000_000))
cases = {"gd 1e6x200": lambda: fd.simulate(lam6, shared, steps=200),
         "noisy gd 1e5x200": lambda: fd.simulate(lam5, shared, steps=200, noise=0.1),
         "per-trajectory 1e6x200": lambda: fd.simulate(lam6, per, steps=200)}
out = []
for name, f in cases.items():
    f()
    best = min((lambda t: (f(), time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(5))
    out.append(f"{name} {best * 1e3:.2f} ms")
print(" | ".join(out))
