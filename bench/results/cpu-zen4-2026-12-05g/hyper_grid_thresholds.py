import time, sys, importlib, numpy as np, numba
numba.set_num_threads(1)
import fastdecay as fd
M = importlib.import_module("fastdecay.simulate")
n, steps = 200_000, 100
rng = np.random.default_rng(0)
lam = rng.uniform(0.1, 2.0, size=(n, 1))
def run(per, what, opt, sched, noise=0.0):
    k = n // per
    vals = np.resize(np.linspace(0.0, 0.05 if what == "weight_decay" else 0.95, k), n)
    kw = {what: vals}
    f = lambda: fd.simulate(lam, sched, steps=steps, optimizer=opt, noise=noise, **kw)
    f()
    best = 1e9
    for _ in range(5):
        t0 = time.process_time(); f(); best = min(best, time.process_time() - t0)
    return best * 1e3
for what, opt, sched in [("weight_decay", "gd", fd.exponential(0.4, gamma=0.99)), ("weight_decay", "momentum", fd.step(0.4, 0.5, 30)),
                         ("weight_decay", "adamw", fd.exponential(0.01, gamma=0.99)), ("momentum", "momentum", fd.exponential(0.4, gamma=0.99))]:
    for per in (16, 32, 64, 192):
        on = run(per, what, opt, sched)
        saved = {k: getattr(M, k) for k in ("_GROUP_SHARING", "_GROUP_SHARING_CHEAP_LANES")}
        M._GROUP_SHARING = M._GROUP_SHARING_CHEAP_LANES = per  # grouped at this sharing
        g = run(per, what, opt, sched)
        for k2, v in saved.items(): setattr(M, k2, v)
        M._GROUP_SHARING = M._GROUP_SHARING_CHEAP_LANES = 10**9
        off = run(per, what, opt, sched)
        for k2, v in saved.items(): setattr(M, k2, v)
        print(f"{what:12s} {opt:9s} {per:4d}/class: default {on:7.1f} ms, grouped {g:7.1f} ms, not grouped {off:7.1f} ms", flush=True)
