"""Where the 37-warmup-lengths x an-lr-a-trajectory grid call goes: a cProfile of one fd.simulate call (2e5 x 100, GD, one thread)."""
import numpy as np, fastdecay as fd, time, cProfile, pstats, tempfile, os
import importlib; S = importlib.import_module("fastdecay.simulate")
N=200_000; LR=0.05
rng = np.random.default_rng(0); lam = rng.uniform(0.01, 1.0, N)
which = np.arange(N) % 37
lr = LR * (1.0 + 1e-9 * np.arange(N))
prod = fd.stack([fd.warmup(fd.cosine(lr=LR, total_steps=90), k + 5) for k in range(37)])[which] * (lr / LR)

t=time.perf_counter(); r = S._product_shapes(prod, (N,), N); print("product_shapes", time.perf_counter()-t, r.count if r else None)
fd.simulate(lam[:1000, None], prod[:1000], steps=100, threads=1)
out = os.path.join(tempfile.mkdtemp(), "call.prof")
cProfile.run("fd.simulate(lam[:, None], prod, steps=100, threads=1)", out)
pstats.Stats(out).sort_stats("tottime").print_stats(10)
