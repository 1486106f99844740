"""A small ``fd.expected_loss`` / ``fd.steps_to_target`` call's cost, before / after: each tree
in its own process, alternated; microseconds a call, best of 7 rounds of ``--calls`` calls, by
wall clock and by the process's CPU time (both threads of the pool count), ``NUMBA_NUM_THREADS=2``.

    python ab_expected_call.py BEFORE_TREE AFTER_TREE [--rounds 3] [--calls 300]
"""

import argparse
import json
import os
import subprocess
import sys

CHILD = r'''
import json, sys, time
import numpy as np
import fastdecay as fd
calls = int(sys.argv[1])
s = fd.exponential(0.5, gamma=0.99)
grid = fd.exponential(np.geomspace(0.01, 1.0, 10)[:, None], gamma=0.99)
cases = {
    "gd, 1 x 1 coordinate, 10 steps": lambda: fd.expected_loss([1.0], s, steps=10, noise=0.1),
    "momentum, 1 x 1, 100 steps": lambda: fd.expected_loss([1.0], s, steps=100, optimizer="momentum", noise=0.1),
    "momentum, 10 rates x 10 batch sizes, d = 16, 100 steps": lambda: fd.expected_loss(
        np.linspace(0.01, 1.0, 16), grid, steps=100, optimizer="momentum", noise=0.1,
        batch_size=np.geomspace(1, 512, 10)),
    "steps_to_target gd, 1 x 1, 100 steps": lambda: fd.steps_to_target([1.0], s, 0.01, steps=100),
}
out = {}
for name, f in cases.items():
    f()
    wall = cpu = float("inf")
    for _ in range(7):
        w, c = time.perf_counter(), time.process_time()
        for _ in range(calls):
            f()
        wall = min(wall, (time.perf_counter() - w) / calls)
        cpu = min(cpu, (time.process_time() - c) / calls)
    out[name] = (wall * 1e6, cpu * 1e6)
print(json.dumps(out))
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=300)
    args = ap.parse_args()
    results = {"before": [], "after": []}
    for _ in range(args.rounds):
        for label, tree in (("before", args.before), ("after", args.after)):
            env = dict(os.environ, PYTHONPATH=os.path.abspath(tree), NUMBA_NUM_THREADS="2")
            done = subprocess.run([sys.executable, "-c", CHILD, str(args.calls)], env=env, check=True,
                                  capture_output=True, text=True)
            results[label].append(json.loads(done.stdout))
    print(f"{'case':58s} {'before wall / cpu':>22s} {'after wall / cpu':>22s} {'after/before (wall)':>20s}")
    for name in results["before"][0]:
        b = [min(r[name][k] for r in results["before"]) for k in (0, 1)]
        a = [min(r[name][k] for r in results["after"]) for k in (0, 1)]
        print(f"{name:58s} {b[0]:10.1f} / {b[1]:9.1f} {a[0]:10.1f} / {a[1]:9.1f} {a[0] / b[0]:20.2f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
