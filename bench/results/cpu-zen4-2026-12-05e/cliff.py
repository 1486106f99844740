import importlib, time, numpy as np, fastdecay as fd
SIM = importlib.import_module("fastdecay.simulate")
rng = np.random.default_rng(10)
for kind in ("exp", "step"):
  for opt in ("gd", "momentum", "adam"):
    line = []
    for per in (70, 100, 136, 200, 264):
        C = 48000 // per
        own = np.arange(C * per) % C
        lam = rng.uniform(0, 2, (own.size, 1))
        if kind == "exp":
            s = fd.exponential(0.05, gamma=(0.99 + 0.0099 * rng.random(C))[own])
        else:
            s = fd.step(0.05, 0.5, period=(20.0 + np.arange(C))[own])
        res = {}
        for share in (64, 10**9):
            SIM._GROUP_SHARING = share
            ts = []
            for _ in range(5):
                t = time.perf_counter(); fd.simulate(lam, s, steps=600, optimizer=opt, threads=1); ts.append(time.perf_counter() - t)
            res[share] = min(ts)
        line.append(f"{per}: {res[64]/res[10**9]:.2f}")
    print(kind, opt, "  ".join(line), flush=True)
