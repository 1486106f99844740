import importlib, time, numpy as np, fastdecay as fd
SIM = importlib.import_module("fastdecay.simulate")
rng = np.random.default_rng(3)
def best(f, reps=5):
    f(); ts = []
    for _ in range(reps):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return min(ts)
for dt, opt in ((np.float32, "gd"), (np.float64, "momentum"), (np.float64, "adamw")):
    line = []
    for per in (128, 192, 256, 384):
        k = 40
        n = per * k
        lam = rng.uniform(0, 2, (n, 1))
        sch = [fd.step(0.05, 0.5, 10 + j) if j % 2 else fd.cosine(0.05, 500 + j) for j in range(k)]
        s = fd.stack([sch[j] for j in np.arange(n) % k])
        kw = dict(steps=1200, threads=1, noise=0.1, seed=3, optimizer=opt, dtype=dt)
        res = {}
        for share in (64, 10**9):
            SIM._GROUP_SHARING = SIM._GROUP_SHARING_CHEAP_LANES = share
            res[share] = best(lambda: fd.simulate(lam, s, **kw))
        line.append(f"{per}: {res[64] / res[10**9]:.2f}")
    print(np.dtype(dt).name, opt, "  ".join(line), flush=True)
