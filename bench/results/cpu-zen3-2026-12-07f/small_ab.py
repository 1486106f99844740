"""fd.simulate on small runs in the tree on PYTHONPATH: best of 30 after a warm-up, us."""
import sys, time, numpy as np, fastdecay as fd
rng = np.random.default_rng(0)
shared = fd.exponential(0.5, gamma=0.99)
out = []
for n, steps, noise in [(2048, 20, 0.0), (2048, 200, 0.0), (16384, 50, 0.0), (131072, 50, 0.0),
                        (2048, 20, 0.1), (16384, 50, 0.1), (131072, 50, 0.1)]:
    lam = rng.uniform(0.01, 1.0, (n, 1))
    f = lambda: fd.simulate(lam, shared, steps=steps, noise=noise)
    f()
    best = min((lambda t: (f(), time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(30))
    out.append(f"{n}x{steps}{' noisy' if noise else ''} {best * 1e6:.0f}")
print(sys.argv[1], " | ".join(out))
