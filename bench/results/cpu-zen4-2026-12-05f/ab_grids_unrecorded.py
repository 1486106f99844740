import json, os, subprocess, sys
CODE = r'''
import sys, time, json, numpy as np
sys.path.insert(0, sys.argv[1])
import fastdecay as fd
import importlib
N, S = 200_000, 100
rng = np.random.default_rng(0); lam = rng.uniform(0.01, 1.0, (N, 1))
which = np.arange(N) % 37
cases = {"step grid": fd.step(0.05, 0.5, (which + 5).astype(float)), "cosine grid": fd.cosine(0.05, (which + 90).astype(float)),
         "per-lr": fd.exponential(0.05, gamma=np.linspace(0.97, 0.99, N))}
out = {}
for name, s in cases.items():
    f = lambda: fd.simulate(lam, s, steps=S, threads=1)
    f(); b = []
    for _ in range(9):
        t = time.perf_counter(); f(); b.append(time.perf_counter() - t)
    out[name] = min(b) * 1e3
print(json.dumps(out))
'''
trees = sys.argv[1:]
res = {t: [] for t in trees}
for r in range(4):
    for t in trees:
        p = subprocess.run([sys.executable, "-c", CODE, t], capture_output=True, text=True, cwd="/tmp")
        res[t].append(json.loads(p.stdout.strip().splitlines()[-1]))
for n in res[trees[0]][0]:
    print(f"{n:14s} " + " | ".join(" / ".join(f"{r[n]:5.2f}" for r in res[t]) for t in trees))
