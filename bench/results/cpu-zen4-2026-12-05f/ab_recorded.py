"""A/B of recorded runs: python ab_rec.py TREE... ; one thread, best of 5, ms."""
import os, sys, time, subprocess, json
CODE = r'''
import sys, time, json, numpy as np
sys.path.insert(0, sys.argv[1])
import fastdecay as fd
N, S = 200_000, 100
rng = np.random.default_rng(0); lam = rng.uniform(0.01, 1.0, (N, 1))
which = np.arange(N) % 37
grid = fd.step(lr=0.05, gamma=0.5, period=(which + 5).astype(float))
sweep = fd.step(lr=0.05, gamma=0.5, period=(np.sort(which) + 5).astype(float))
shared = fd.exponential(lr=0.05, gamma=0.97)
lam4 = rng.uniform(0.01, 1.0, (N // 4, 4)); grid4 = fd.step(lr=0.05, gamma=0.5, period=((np.arange(N // 4) % 37) + 5).astype(float))
cases = {}
for opt in ["gd", "momentum", "adamw"]:
    for every in [1, 10, 1000]:
        cases[f"shared {opt} every={every}"] = (lam, shared, dict(optimizer=opt, every=every))
        cases[f"grid {opt} every={every}"] = (lam, grid, dict(optimizer=opt, every=every))
    cases[f"sweep {opt} every=10"] = (lam, sweep, dict(optimizer=opt, every=10))
    cases[f"grid d=4 {opt} every=10"] = (lam4, grid4, dict(optimizer=opt, every=10))
cases["sweep gd every=10 noise"] = (lam, sweep, dict(every=10, noise=0.1))
out = {}
for name, (l, s, kw) in cases.items():
    f = lambda: fd.simulate(l, s, steps=S, threads=1, **kw)
    f(); b = []
    for _ in range(5):
        t = time.perf_counter(); f(); b.append(time.perf_counter() - t)
    out[name] = min(b) * 1e3
print(json.dumps(out))
'''
trees = sys.argv[1:]
res = {t: [] for t in trees}
for r in range(2):
    for t in trees:
        p = subprocess.run([sys.executable, "-c", CODE, t], capture_output=True, text=True, cwd="/tmp")
        if p.returncode: print(p.stderr); sys.exit(1)
        res[t].append(json.loads(p.stdout.strip().splitlines()[-1]))
names = list(res[trees[0]][0])
print(f"{'case':32s} " + " | ".join(f"{os.path.basename(t):>18s}" for t in trees))
for n in names:
    print(f"{n:32s} " + " | ".join(" / ".join(f"{r[n]:7.1f}" for r in res[t]) for t in trees)
          + (f"   {min(r[n] for r in res[trees[0]]) / min(r[n] for r in res[trees[-1]]):.2f}x" if len(trees) > 1 else ""))
