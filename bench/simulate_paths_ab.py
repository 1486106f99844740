"""The simulation's other paths, A/B between source trees (the companion of
``simulate_ab.py``, whose rows are the noiseless shared-rate loops): per-trajectory
learning rates at d = 1 (the per-trajectory vector loops), a per-trajectory weight
decay at d = 1 (the generic element loop), recording at d = 4 and per-trajectory rates
at d = 16 (the generic per-coordinate loops), noise with shared rates (the
shared loops with Philox draws), and a grid of step schedules at d = 1 (rates in
closed form a trajectory; with momentum and ``on_drop="reset"`` too; for GD with a gamma a
trajectory too, and a grid of cosines, read in closed form every step, as one trajectory
each and as a sweep lays them out: each schedule for consecutive trajectories; cosines after a
warmup, and lines), for GD,
momentum, AdamW and Lion. Each tree in its
own process, trees alternating round by round; best of all calls per row.

    python bench/simulate_paths_ab.py TREE [TREE ...] [--rounds 3] [--reps 3] [--one-core]

``--one-core`` runs ``threads=1`` and times by the thread's CPU time.
"""

import argparse

from _trees import run_trees

CHILD = r'''
import json, time
import numpy as np
import fastdecay as fd

clock = time.thread_time if ONE_CORE else time.perf_counter
extra = dict(threads=1) if ONE_CORE else {}
rng = np.random.default_rng(0)
n, steps = 200_000, 100
lam1 = rng.uniform(0.01, 1.0, (n, 1))
lam4 = rng.uniform(0.01, 1.0, (n // 4, 4))
lam16 = rng.uniform(0.01, 1.0, (n // 16, 16))
shared = fd.exponential(lr=0.05, gamma=0.99)
per1 = fd.exponential(lr=0.05, gamma=np.linspace(0.98, 0.999, n))
per16 = fd.exponential(lr=0.05, gamma=np.linspace(0.98, 0.999, n // 16))
wd1 = fd.exponential(lr=0.01, gamma=np.linspace(0.98, 0.999, n))
steps1 = fd.step(lr=0.05, gamma=0.5, period=np.arange(n) % 37 + 5)  # a grid of step schedules
gammas1 = fd.step(lr=0.05, gamma=np.linspace(0.3, 0.9, n), period=np.arange(n) % 37 + 5)  # gammas too
cosine1 = fd.cosine(lr=0.05, total_steps=np.arange(n) % 37 + 90)  # closed form every step
sweep1 = fd.cosine(lr=0.05, total_steps=np.repeat(np.arange(37), -(-n // 37))[:n] + 90)  # a sweep's layout
warmup1 = fd.warmup(cosine1, 10)  # two segments: a line, then the cosine
linear1 = fd.linear(0.05, 0.001, np.arange(n) % 37 + 90)  # lines
rows = {}
for opt in ("gd", "momentum", "adamw", "lion"):
    rows[f"{opt} per-lr d=1"] = lambda o=opt: fd.simulate(lam1, per1, steps=steps, optimizer=o, **extra)
    rows[f"{opt} per-wd d=1"] = lambda o=opt: fd.simulate(lam1, shared, steps=steps, optimizer=o, weight_decay=wd1,
                                                          **extra)
    rows[f"{opt} every=1 d=4"] = lambda o=opt: fd.simulate(lam4, shared, steps=steps, optimizer=o, every=1, **extra)
    rows[f"{opt} per-lr d=16"] = lambda o=opt: fd.simulate(lam16, per16, steps=steps, optimizer=o, **extra)
    rows[f"{opt} noise d=1"] = lambda o=opt: fd.simulate(lam1, shared, steps=steps, optimizer=o, noise=0.1, **extra)
    rows[f"{opt} step grid d=1"] = lambda o=opt: fd.simulate(lam1, steps1, steps=steps, optimizer=o, **extra)
rows["gd step x gamma grid d=1"] = lambda: fd.simulate(lam1, gammas1, steps=steps, **extra)
rows["gd cosine grid d=1"] = lambda: fd.simulate(lam1, cosine1, steps=steps, **extra)
rows["gd cosine sweep d=1"] = lambda: fd.simulate(lam1, sweep1, steps=steps, **extra)
rows["gd warmup-cosine grid d=1"] = lambda: fd.simulate(lam1, warmup1, steps=steps, **extra)
rows["gd linear grid d=1"] = lambda: fd.simulate(lam1, linear1, steps=steps, **extra)
rows["adamw cosine grid d=1"] = lambda: fd.simulate(lam1, cosine1, steps=steps, optimizer="adamw", **extra)
rows["momentum step grid reset d=1"] = lambda: fd.simulate(lam1, steps1, steps=steps, optimizer="momentum",
                                                           on_drop="reset", **extra)
for f in rows.values():
    f()
out = {k: [] for k in rows}
for _ in range(REPS):
    for k, f in rows.items():
        t0 = clock()
        f()
        out[k].append(clock() - t0)
print(json.dumps({k: min(v) for k, v in out.items()}))
'''


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--one-core", action="store_true")
    args = parser.parse_args(argv)
    code = CHILD.replace("ONE_CORE", str(args.one_core)).replace("REPS", str(args.reps))
    results = run_trees(code, args.trees, args.rounds)
    best = {tree: {k: min(v) for k, v in results[tree].items()} for tree in args.trees}
    first = args.trees[0]
    print("row".ljust(22) + "".join(f"{t[-24:]:>26s}" for t in args.trees) + "   ratio to first")
    for k in best[first]:
        times = [best[t][k] for t in args.trees]
        print(f"{k:22s}" + "".join(f"{v * 1e3:23.1f} ms" for v in times) + "   "
              + " ".join(f"{v / times[0]:.3f}" for v in times[1:]))


if __name__ == "__main__":
    main()
