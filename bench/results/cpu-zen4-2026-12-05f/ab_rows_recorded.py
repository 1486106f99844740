"""A/B of recorded runs the general kernel takes (a weight decay a trajectory, a momentum a trajectory):
python ab_rows_recorded.py TREE... ; 200,000 x 100, one thread, best of 5, ms, two alternating runs."""
import json
import os
import subprocess
import sys

CODE = r'''
import sys, time, json, numpy as np
sys.path.insert(0, sys.argv[1])
import fastdecay as fd
N, S = 200_000, 100
rng = np.random.default_rng(0); lam = rng.uniform(0.01, 1.0, (N, 1))
wd = fd.constant(np.linspace(0.0, 0.1, N))
mom = np.linspace(0.5, 0.95, N)
cases = {}
for every in (None, 10, 1):
    cases[f"wd grid every={every}"] = dict(weight_decay=wd, every=every)
    cases[f"momentum grid every={every}"] = dict(optimizer="momentum", momentum=mom, every=every)
out = {}
for name, kw in cases.items():
    f = lambda: fd.simulate(lam, fd.step(0.05, 0.5, 20), steps=S, threads=1, **kw)
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
        if p.returncode:
            print(p.stderr)
            sys.exit(1)
        res[t].append(json.loads(p.stdout.strip().splitlines()[-1]))
print(f"{'case':28s} " + " | ".join(f"{os.path.basename(t):>16s}" for t in trees))
for n in res[trees[0]][0]:
    print(f"{n:28s} " + " | ".join(" / ".join(f"{r[n]:7.1f}" for r in res[t]) for t in trees))
