import sys, time, numpy as np, fastdecay as fd
rng = np.random.default_rng(0)
lam = rng.uniform(0.01, 1.0, (1_000_000, 1)); s = fd.exponential(0.5, gamma=0.99)
seen = []
fd.simulate(lam, s, steps=200)
for kw in ({},):
    best = 1e9
    for _ in range(15):
        seen.clear(); t = time.perf_counter()
        fd.simulate(lam, s, steps=200, progress=lambda a, b: seen.append((a, time.perf_counter() - t)), **kw)
        best = min(best, time.perf_counter() - t)
    print(sys.argv[1], kw, f"{best*1e3:.2f} ms", [(a, round(x*1e3, 2)) for a, x in seen])
