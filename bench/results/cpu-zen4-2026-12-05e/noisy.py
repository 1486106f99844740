import time, numpy as np, fastdecay as fd
N, STEPS = 200_000, 100
rng = np.random.default_rng(0); lam = rng.uniform(0.01, 1.0, (N, 1))
which = np.arange(N) % 37
sweep_which = np.repeat(np.arange(37), -(-N // 37))[:N]
grid = fd.step(lr=0.05, gamma=0.5, period=which + 5.0)
sweep = fd.step(lr=0.05, gamma=0.5, period=sweep_which + 5.0)
shared = fd.step(lr=0.05, gamma=0.5, period=20.0)
def t(f, reps=5):
    f(); best = 1e9
    for _ in range(reps):
        t0 = time.perf_counter(); f(); best = min(best, time.perf_counter() - t0)
    return best * 1e3
for opt in ("gd", "momentum", "adamw"):
    for name, g in (("shared", shared), ("grid", grid), ("sweep", sweep)):
        print(opt, name, "noisy %.2f ms" % t(lambda: fd.simulate(lam, g, steps=STEPS, optimizer=opt, noise=0.1, threads=1)),
              "noiseless %.2f ms" % t(lambda: fd.simulate(lam, g, steps=STEPS, optimizer=opt, threads=1)), flush=True)
