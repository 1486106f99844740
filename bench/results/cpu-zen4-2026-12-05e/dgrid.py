import time, numpy as np, fastdecay as fd
rng = np.random.default_rng(0)
def t(f, reps=5):
    f(); best = 1e9
    for _ in range(reps):
        t0 = time.perf_counter(); f(); best = min(best, time.perf_counter() - t0)
    return best * 1e3
for d in (4, 16, 100):
    n = 200_000 // d
    lam = rng.uniform(0.01, 1.0, (n, d))
    which = np.arange(n) % 37
    grid = fd.step(lr=0.05, gamma=0.5, period=which + 5.0)
    for opt in ("gd", "momentum", "adamw"):
        print(f"d={d} n={n} {opt}: {t(lambda: fd.simulate(lam, grid, steps=100, optimizer=opt, threads=1)):.2f} ms", flush=True)
