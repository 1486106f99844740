"""Noisy recorded runs under one schedule (the one-class path of the grouped recording kernel):
before / after trees, each its own process, two rounds, best of 5 calls by CPU time, one thread.
    python ab_noisy_recorded_one_class.py TREE TREE"""
import json, os, subprocess, sys
CHILD = r'''
import json, time, numpy as np, numba
numba.set_num_threads(1)
import fastdecay as fd
rng = np.random.default_rng(0)
out = {}
for d, n in ((1, 200_000), (4, 50_000)):
    lam = rng.uniform(0.01, 1.0, (n, d))
    for opt in ("gd", "momentum", "adamw"):
        for every in (1, 4, 10):
            f = lambda: fd.simulate(lam, fd.exponential(0.05, gamma=0.99), steps=100, optimizer=opt, every=every, noise=0.1)
            f()
            ts = []
            for _ in range(5):
                t0 = time.process_time(); r = f(); ts.append(time.process_time() - t0)
            out[f"{opt} d={d} every={every}"] = (min(ts) * 1e3, float(r.loss.sum()))
print(json.dumps(out))
'''
trees = sys.argv[1:]
res = {t: [] for t in trees}
for r in range(2):
    for t in trees:
        p = subprocess.run([sys.executable, "-c", CHILD], env=dict(os.environ, PYTHONPATH=t), capture_output=True, text=True, cwd="/tmp")
        if p.returncode:
            sys.exit(p.stderr[-3000:])
        res[t].append(json.loads(p.stdout.strip().splitlines()[-1]))
print("| run (200,000 x 100, sigma 0.1) | " + " | ".join(os.path.basename(t) for t in trees) + " | after / before | losses |")
for k in res[trees[0]][0]:
    best = [min(r[k][0] for r in res[t]) for t in trees]
    same = len({res[t][0][k][1] for t in trees}) == 1
    print(f"| {k} | " + " | ".join(f"{b:.1f} ms" for b in best) + f" | {best[-1] / best[0]:.2f} | {'same' if same else 'DIFFER'} |")
