"""Noiseless simulation rows of two (or more) source trees, interleaved: fd.simulate at
1e6 trajectories x 200 steps (d = 1, float64, one shared exponential schedule; GD,
heavy-ball momentum 0.9, Nesterov 0.9, AdamW; GD also in one chunk, ``chunk_steps=200``),
its per-call cost (``steps=0``) and the
naive tiled Numba loops (``simulate_roofline.naive_tiled_gd``, and for the momentum and
AdamW rows the same loop of their rule, ``naive_tiled_momentum`` / ``naive_tiled_adamw``),
each tree in its own
process, trees alternating round by round, rows alternating call by call inside a
process; best of all calls per row.

    python bench/simulate_ab.py TREE [TREE ...] [--rounds 5] [--reps 7] [--one-core]

A TREE is a directory holding a fastdecay source tree (``git archive <commit> | tar -x
-C DIR``), imported with PYTHONPATH=TREE; its Numba cache is its own, so run each tree
once before timing it (the script's warm-up call does, but a cold compile then dominates
that round). ``--one-core`` runs ``threads=1`` against the serial naive loop and times by
the thread's CPU time (``time.thread_time``), which a shared machine disturbs less.
Prints, per tree and row, the best time, trajectory-steps/s and the ratio to the naive
GD loop measured in the same process (and to the naive loop of the row's own rule).
"""

import argparse
import os

from _trees import run_trees

CHILD = r'''
import json, sys, time
import numpy as np
sys.path.insert(0, BENCH)
import fastdecay as fd
from simulate_roofline import naive_tiled_adamw, naive_tiled_gd, naive_tiled_momentum

one_core = ONE_CORE
clock = time.thread_time if one_core else time.perf_counter
extra = dict(threads=1) if one_core else {}
n, steps = 1_000_000, 200
lam = np.random.default_rng(0).uniform(0.01, 1.0, (n, 1))
s = fd.exponential(lr=0.5, gamma=0.99)
etas = 0.5 * 0.99 ** np.arange(steps)
a = lam.ravel().copy()
naive = naive_tiled_gd(parallel=not one_core)
naive_mom = naive_tiled_momentum(parallel=not one_core)
naive_adamw = naive_tiled_adamw(parallel=not one_core)


def naive_call():
    w = np.ones_like(a)
    naive(w, a, etas)


def naive_momentum_call():
    w, b = np.ones_like(a), np.zeros_like(a)
    naive_mom(w, b, a, etas, 0.9)


def naive_adamw_call():
    w, m, v = np.ones_like(a), np.zeros_like(a), np.zeros_like(a)
    naive_adamw(w, m, v, a, etas, 0.01, 0.9, 0.999, 1e-8)


rows = {
    "gd": lambda: fd.simulate(lam, s, steps=steps, **extra),
    "gd, one chunk": lambda: fd.simulate(lam, s, steps=steps, chunk_steps=steps, **extra),
    "momentum": lambda: fd.simulate(lam, s, steps=steps, optimizer="momentum", momentum=0.9, **extra),
    "nesterov": lambda: fd.simulate(lam, s, steps=steps, optimizer="nesterov", momentum=0.9, **extra),
    "adamw": lambda: fd.simulate(lam, s, steps=steps, optimizer="adamw", weight_decay=0.01, **extra),
    "per-call (steps=0)": lambda: fd.simulate(lam, s, steps=0, **extra),
    "naive": naive_call,
    "naive momentum": naive_momentum_call,
    "naive adamw": naive_adamw_call,
}
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


# the naive loop of the same rule, for the rows whose rule does more than GD's
SAME_RULE = {"momentum": "naive momentum", "nesterov": "naive momentum", "adamw": "naive adamw"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--one-core", action="store_true")
    args = parser.parse_args(argv)
    bench = os.path.dirname(os.path.abspath(__file__))
    code = CHILD.replace("BENCH", repr(bench)).replace("ONE_CORE", str(args.one_core)).replace("REPS", str(args.reps))
    results = run_trees(code, args.trees, args.rounds)
    for tree in args.trees:
        best = {k: min(v) for k, v in results[tree].items()}
        print(tree)
        for k, v in best.items():
            rate = "" if k.startswith("per-call") else \
                f"  {1e6 * 200 / v / 1e9:6.2f} G/s  {best['naive'] / v:5.2f}x naive"
            same = SAME_RULE.get(k)
            if same in best:
                rate += f"  {best[same] / v:5.2f}x {same}"
            print(f"  {k:20s} {v * 1e3:8.2f} ms{rate}   rounds {[round(x * 1e3, 1) for x in results[tree][k]]}")


if __name__ == "__main__":
    main()
