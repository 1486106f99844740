"""The headline operations of two (or more) source trees, interleaved, one core: whether a
change of the inside (the rules table, the validation module, the backend switch, the
plan/run split of ``simulate``) slowed anything down.

    python bench/headline_ab.py TREE [TREE ...] [--rounds 3] [--reps 7] [--only ROW-SUBSTRING ...]

A TREE is a directory holding a fastdecay source tree (``git archive <commit> | tar -x
-C DIR``), imported with PYTHONPATH=TREE in its own process; trees alternate round by
round, rows alternate call by call inside a process. Every row runs on one thread
(``numba.set_num_threads(1)``, ``threads=1``, ``torch.set_num_threads(1)``) and is
timed by the thread's CPU time (``time.thread_time``), which a shared machine disturbs
less than the wall clock. Prints the best time per tree and row and each tree's ratio to
the first tree (above 1: slower).

Rows (the public calls every version since the rules table has, with the same
arguments): a batch of 1,000 cosine schedules tabulated over 1,000 steps; ``fd.adamw_step``
and ``fd.sgd_step`` (momentum 0.9) on one flat float32 array of 2e6 elements;
``fd.adamw_step`` over 200 float32 arrays of 1,000 elements (the per-tensor path); one
``fd.sgd_step``, ``fd.adamw_step`` and ``fd.lion_step`` on 1,000 float64 elements (the
per-call cost); ``fastdecay.torch.AdamW.step()``
over 200 tensors of 1,000 elements, and over 2,000 tensors of 256 with new gradient tensors
every step (as autograd makes them), as ``fd.adamw_step`` too (the per-tensor cost); ``fd.simulate`` GD (1e6 x 200) and AdamW (1e5 x 200),
float64, one shared exponential schedule; ``fd.expected_loss`` with heavy-ball momentum
(100 schedules x 1,000 coordinates x 200 steps).
"""

import argparse

from _trees import run_trees

CHILD = r'''
import json, time
import numpy as np
import numba
numba.set_num_threads(1)
import torch
torch.set_num_threads(1)
import fastdecay as fd
import fastdecay.torch as fdt

rng = np.random.default_rng(0)
cosines = fd.cosine(np.linspace(0.1, 1.0, 1000), 1000)
flat = [rng.standard_normal(2_000_000).astype(np.float32) for _ in range(4)]
many = [[rng.standard_normal(1000).astype(np.float32) for _ in range(200)] for _ in range(4)]
one = [rng.standard_normal(1000) for _ in range(4)]
params = [torch.nn.Parameter(torch.randn(1000)) for _ in range(200)]
for p in params:
    p.grad = torch.randn(1000)
opt = fdt.AdamW(params, lr=1e-3, weight_decay=1e-2)
tiny = [torch.nn.Parameter(torch.randn(256)) for _ in range(2000)]
tiny_grads = [[torch.randn(256) for _ in range(2000)] for _ in range(2)]
tiny_state = [[torch.zeros(256) for _ in range(2000)] for _ in range(2)]
tiny_opt = fdt.AdamW(tiny, lr=1e-3, weight_decay=1e-2)
flip = [0]


def new_grads(f):
    """f() after giving every tiny parameter a new gradient tensor, as each backward does."""
    def call():
        flip[0] ^= 1
        for p, g in zip(tiny, tiny_grads[flip[0]]):
            p.grad = g
        f()
    return call

lam = rng.uniform(0.01, 1.0, (1_000_000, 1))
s = fd.exponential(lr=0.5, gamma=0.99)
lam_expected = rng.uniform(0.01, 1.0, 1000)
batch = fd.exponential(lr=np.linspace(0.1, 0.5, 100)[:, None], gamma=0.99)
step = [1]


def counted(f):
    def call():
        step[0] += 1
        f(step[0])
    return call


rows = {
    "schedule table 1000 x 1000": lambda: cosines.table(1000),
    "adamw_step flat 2e6 f32": counted(lambda t: fd.adamw_step(flat[0], flat[1], flat[2], flat[3], step=t, lr=1e-6)),
    "sgd_step momentum flat 2e6 f32": counted(lambda t: fd.sgd_step(flat[0], flat[1], step=t, lr=1e-6, momentum=0.9,
                                                                    momentum_buffer=flat[2])),
    "adamw_step 200 x 1000 f32": counted(lambda t: fd.adamw_step(many[0], many[1], many[2], many[3], step=t, lr=1e-6)),
    "sgd_step 1000 (per call)": counted(lambda t: fd.sgd_step(one[0], one[1], step=t, lr=1e-9)),
    "adamw_step 1000 (per call)": counted(lambda t: fd.adamw_step(one[0], one[1], one[2], one[3], step=t, lr=1e-9)),
    "lion_step 1000 (per call)": counted(lambda t: fd.lion_step(one[0], one[1], one[2], step=t, lr=1e-9)),
    "fastdecay.torch.AdamW 200 x 1000": opt.step,
    "fastdecay.torch.AdamW 2000 x 256 new grads": new_grads(tiny_opt.step),
    "adamw_step 2000 x 256 new grads": new_grads(lambda: fd.adamw_step(tiny, [p.grad for p in tiny], *tiny_state,
                                                                       step=3, lr=1e-3)),
    "simulate gd 1e6 x 200": lambda: fd.simulate(lam, s, steps=200, threads=1),
    "simulate adamw 1e5 x 200": lambda: fd.simulate(lam[:100_000], s, steps=200, optimizer="adamw",
                                                    weight_decay=0.01, threads=1),
    "expected_loss momentum 100 x 1000 x 200": lambda: fd.expected_loss(lam_expected, batch, steps=200,
                                                                        optimizer="momentum", momentum=0.9),
}
rows = {k: f for k, f in rows.items() if not ONLY or any(o in k for o in ONLY)}
for f in rows.values():
    f()
out = {k: [] for k in rows}
for _ in range(REPS):
    for k, f in rows.items():
        t0 = time.thread_time()
        f()
        out[k].append(time.thread_time() - t0)
print(json.dumps({k: min(v) for k, v in out.items()}))
'''


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--only", nargs="*", default=[], help="rows whose names contain one of these")
    args = parser.parse_args(argv)
    code = CHILD.replace("REPS", str(args.reps)).replace("ONLY", repr(args.only))
    results = run_trees(code, args.trees, args.rounds)
    first = {k: min(v) for k, v in results[args.trees[0]].items()}
    for tree in args.trees:
        print(tree)
        for k, v in results[tree].items():
            best = min(v)
            print(f"  {k:40s} {best * 1e3:9.3f} ms  {best / first[k]:5.2f}x   rounds {[round(x * 1e3, 2) for x in v]}")


if __name__ == "__main__":
    main()
