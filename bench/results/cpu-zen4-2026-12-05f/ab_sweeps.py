import json, os, subprocess, sys
CODE = r'''
import sys, time, json, numpy as np
sys.path.insert(0, sys.argv[1])
import fastdecay as fd
N, S = 200_000, 100
rng = np.random.default_rng(0); lam = rng.uniform(0.01, 1.0, (N, 1))
which = np.arange(N) % 37
sweep = fd.step(lr=0.05, gamma=0.5, period=(np.sort(which) + 5).astype(float))
out = {}
for opt in ["gd", "momentum", "adamw"]:
    for noise in (0.1, 0.0):
        f = lambda: fd.simulate(lam, sweep, steps=S, threads=1, noise=noise, seed=1, optimizer=opt)
        f(); b = []
        for _ in range(9):
            t = time.perf_counter(); f(); b.append(time.perf_counter() - t)
        out[f"sweep {opt} noise={noise}"] = min(b) * 1e3
print(json.dumps(out))
'''
trees = sys.argv[1:]
res = {t: [] for t in trees}
for r in range(3):
    for t in trees:
        p = subprocess.run([sys.executable, "-c", CODE, t], capture_output=True, text=True, cwd="/tmp")
        res[t].append(json.loads(p.stdout.strip().splitlines()[-1]))
for n in res[trees[0]][0]:
    print(f"{n:28s} " + " | ".join(" / ".join(f"{r[n]:6.1f}" for r in res[t]) for t in trees))
