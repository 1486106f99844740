"""fd.expected_loss of a grid of momenta / weight decays over many curvatures, before / after trees: each
tree its own process, two rounds, best of 3 calls by CPU time (Numba on both threads as a user runs it).
    python ab_expected_grids.py TREE TREE"""
import json, os, subprocess, sys
CHILD = r'''
import json, time, numpy as np
import fastdecay as fd
rng = np.random.default_rng(0)
out = {}
n = 200_000
lam = rng.uniform(0.01, 1.0, (n, 1))
s = fd.step(0.4, 0.5, 30)
cases = {
 "3 momenta in turn, 200,000 x 1, 100 steps": lambda: fd.expected_loss(lam, s, steps=100, optimizer="momentum", momentum=np.resize([0.0, 0.5, 0.9], n), noise=0.1, every=10),
 "3 momenta x 2 weight decays": lambda: fd.expected_loss(lam, s, steps=100, optimizer="momentum", momentum=np.resize([0.0, 0.5, 0.9], n), weight_decay=np.resize([0.0, 0.01], n), noise=0.1, every=10),
 "shared momentum 0.9 (unchanged path)": lambda: fd.expected_loss(lam, s, steps=100, optimizer="momentum", momentum=0.9, noise=0.1, every=10),
 "4 weight decays, GD, 20,000 x 16": lambda: fd.expected_loss(rng.uniform(0.01, 1.0, (20_000, 16)), s, steps=100, weight_decay=np.resize([0.0, 1e-3, 1e-2, 0.1], 20_000), noise=0.1, every=10),
}
for name, f in cases.items():
    f()
    ts = []
    for _ in range(3):
        t0 = time.perf_counter(); r = f(); ts.append(time.perf_counter() - t0)
    out[name] = (min(ts) * 1e3, float(np.asarray(r.loss).sum()))
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
print("| case | " + " | ".join(os.path.basename(t) for t in trees) + " | speed-up | losses |")
for k in res[trees[0]][0]:
    best = [min(r[k][0] for r in res[t]) for t in trees]
    same = len({res[t][0][k][1] for t in trees}) == 1
    print(f"| {k} | " + " | ".join(f"{b:.1f} ms" for b in best) + f" | {best[0] / best[-1]:.1f}x | {'same' if same else 'DIFFER'} |")
