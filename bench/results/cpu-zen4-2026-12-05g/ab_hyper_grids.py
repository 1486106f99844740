"""A grid of momenta / weight decays / betas over many curvatures: one tree's timings.
Usage: python ab_hyper_grids.py TREE [TREE ...]; each tree in its own process, one thread."""
import json, os, subprocess, sys
CHILD = r'''
import json, sys, time, numpy as np, numba
numba.set_num_threads(1)
import fastdecay as fd
n, steps = 200_000, 100
rng = np.random.default_rng(0)
lam = rng.uniform(0.1, 2.0, size=(n, 1))
sched = fd.step(lr=0.4, gamma=0.5, period=30)
moms = np.array([0.0, 0.5, 0.8, 0.9, 0.95])
def col(a): return np.resize(a, n)[:, None]
cases = {
 "momentum grid (5, interleaved)": lambda: fd.simulate(lam, sched, steps=steps, optimizer="momentum", momentum=col(moms)[:, 0]),
 "momentum grid sorted": lambda: fd.simulate(lam, sched, steps=steps, optimizer="momentum", momentum=np.sort(col(moms)[:, 0])),
 "momentum grid, noise 0.1": lambda: fd.simulate(lam, sched, steps=steps, optimizer="momentum", momentum=col(moms)[:, 0], noise=0.1),
 "momentum grid, every 10": lambda: fd.simulate(lam, sched, steps=steps, optimizer="momentum", momentum=col(moms)[:, 0], every=10),
 "momentum grid, reset": lambda: fd.simulate(lam, sched, steps=steps, optimizer="momentum", momentum=col(moms)[:, 0], on_drop="reset"),
 "nesterov grid": lambda: fd.simulate(lam, sched, steps=steps, optimizer="nesterov", momentum=col(moms)[:, 0]),
 "adamw beta1 grid": lambda: fd.simulate(lam, sched, steps=steps, optimizer="adamw", betas=(fd.constant(col(np.array([0.5, 0.8, 0.9, 0.95]))[:, 0]), 0.999), weight_decay=0.01),
 "lion beta1 grid": lambda: fd.simulate(lam, sched, steps=steps, optimizer="lion", betas=(fd.constant(col(np.array([0.5, 0.8, 0.9, 0.95]))[:, 0]), 0.99)),
 "gd wd grid": lambda: fd.simulate(lam, sched, steps=steps, optimizer="gd", weight_decay=col(np.array([0.0, 1e-3, 1e-2, 1e-1]))[:, 0]),
 "momentum wd grid": lambda: fd.simulate(lam, sched, steps=steps, optimizer="momentum", weight_decay=col(np.array([0.0, 1e-3, 1e-2, 1e-1]))[:, 0]),
 "momentum grid x step grid": lambda: fd.simulate(lam, fd.step(lr=0.4, gamma=np.resize([0.5, 0.1], n), period=np.resize([20, 30, 40], n)), steps=steps, optimizer="momentum", momentum=col(moms)[:, 0]),
 "momentum grid d=3": lambda: fd.simulate(rng.uniform(0.1, 2.0, size=(n // 3, 3)), sched, steps=steps, optimizer="momentum", momentum=np.resize(moms, n // 3)),
}
only = sys.argv[1:] 
out = {}
for name, f in cases.items():
    if only and not any(o in name for o in only): continue
    f()
    ts = []
    for _ in range(5):
        t0 = time.process_time(); r = f(); ts.append(time.process_time() - t0)
    out[name] = (min(ts) * 1e3, float(np.asarray(r.w).astype(np.float64).sum()))
print(json.dumps(out))
'''
trees = [a for a in sys.argv[1:] if not a.startswith("-k=")]
only = [a[3:] for a in sys.argv[1:] if a.startswith("-k=")]
rounds = 2
res = {t: [] for t in trees}
for r in range(rounds):
    for t in trees:
        env = dict(os.environ, PYTHONPATH=t)
        p = subprocess.run([sys.executable, "-c", CHILD, *only], env=env, capture_output=True, text=True, cwd="/tmp")
        if p.returncode: print(p.stderr[-3000:]); sys.exit(1)
        res[t].append(json.loads(p.stdout.strip().splitlines()[-1]))
names = list(res[trees[0]][0])
print("| case | " + " | ".join(os.path.basename(t) for t in trees) + " |")
for nm in names:
    cells = []
    for t in trees:
        best = min(r[nm][0] for r in res[t]); cells.append(f"{best:.1f} ms")
    sums = {t: res[t][0][nm][1] for t in trees}
    same = len(set(sums.values())) == 1
    print(f"| {nm} | " + " | ".join(cells) + f" | {'same sums' if same else 'SUMS DIFFER ' + str(sums)} |")
