import time, sys, importlib, numpy as np, numba
numba.set_num_threads(1)
import fastdecay as fd
M = importlib.import_module("fastdecay.simulate")
n, steps = 200_000, 100
rng = np.random.default_rng(0)
lam = rng.uniform(0.1, 2.0, size=(n, 1))
def run(per, what, opt, sched, noise=0.0, every=None):
    k = n // per
    vals = np.resize(np.linspace(0.0 if what == "momentum" else 0.5, 0.95, k), n)
    kw = {what: vals} if what == "momentum" else {"betas": (fd.constant(vals), 0.99)}
    f = lambda: fd.simulate(lam, sched, steps=steps, optimizer=opt, noise=noise, every=every, **kw)
    f()
    best = 1e9
    for _ in range(3):
        t0 = time.process_time(); f(); best = min(best, time.process_time() - t0)
    return best * 1e3
NAMES = ("_GROUP_SHARING", "_GROUP_SHARING_CHEAP_LANES", "_GROUP_SHARING_RECORDED", "_GROUP_SHARING_RECORDED_NOISY")
for what, opt, sched, noise, every in [("momentum", "momentum", fd.step(0.4, 0.5, 30), 0.1, None), ("momentum", "momentum", fd.step(0.4, 0.5, 30), 0.0, 10),
                         ("betas", "adamw", fd.exponential(0.01, gamma=0.99), 0.0, None), ("betas", "lion", fd.exponential(0.01, gamma=0.99), 0.0, None),
                         ("momentum", "momentum", fd.step(0.4, 0.5, 30), 0.1, 10)]:
    for per in (8, 16, 32):
        saved = {k: getattr(M, k) for k in NAMES}
        for k2 in NAMES: setattr(M, k2, per)
        g = run(per, what, opt, sched, noise, every)
        for k2 in NAMES: setattr(M, k2, 10**9)
        off = run(per, what, opt, sched, noise, every)
        for k2, v in saved.items(): setattr(M, k2, v)
        print(f"{what:9s} {opt:9s} noise {noise} every {every} {per:4d}/class: grouped {g:7.1f} ms, not grouped {off:7.1f} ms", flush=True)
