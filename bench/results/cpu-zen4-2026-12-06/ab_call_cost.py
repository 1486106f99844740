"""A call's fixed cost, before / after: ``fd.simulate`` (and ``fd.expected_loss``) on small
problems, each tree in its own process, alternated; microseconds a call, best of 7 rounds of
``--calls`` calls by the process's CPU time (one thread: ``threads=1`` where the call takes it).

    python ab_call_cost.py BEFORE_TREE AFTER_TREE [--rounds 3] [--calls 1000]
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
lam1 = [1.0]
lam = np.random.default_rng(0).uniform(0.01, 1.0, (1000, 1))
cases = {
    "gd, 1 trajectory x 1 step": lambda: fd.simulate(lam1, s, steps=1, threads=1),
    "momentum, 1,000 x 10": lambda: fd.simulate(lam, s, steps=10, optimizer="momentum", threads=1),
    "adamw (weight decay 0.01), 1,000 x 10": lambda: fd.simulate(lam, s, steps=10, optimizer="adamw",
                                                                 weight_decay=0.01, threads=1),
    "gd noisy (0.1), 1,000 x 10": lambda: fd.simulate(lam, s, steps=10, noise=0.1, threads=1),
    "momentum recorded every 5, 1,000 x 10": lambda: fd.simulate(lam, s, steps=10, optimizer="momentum",
                                                                 every=5, threads=1),
    "expected_loss gd, 1 x 1": lambda: fd.expected_loss(lam1, s, steps=1, noise=0.1),
}
out = {}
for name, f in cases.items():
    f()
    best = float("inf")
    for _ in range(7):
        t = time.process_time()
        for _ in range(calls):
            f()
        best = min(best, (time.process_time() - t) / calls)
    out[name] = best * 1e6
print(json.dumps(out))
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=1000)
    args = ap.parse_args()
    results = {"before": [], "after": []}
    for _ in range(args.rounds):
        for label, tree in (("before", args.before), ("after", args.after)):
            env = dict(os.environ, PYTHONPATH=os.path.abspath(tree), NUMBA_NUM_THREADS="2")
            done = subprocess.run([sys.executable, "-c", CHILD, str(args.calls)], env=env, check=True,
                                  capture_output=True, text=True)
            results[label].append(json.loads(done.stdout))
    names = list(results["before"][0])
    print("| call | before (us) | after (us) | after / before |")
    print("| --- | --- | --- | --- |")
    for name in names:
        b = min(r[name] for r in results["before"])
        a = min(r[name] for r in results["after"])
        print(f"| {name} | {b:.1f} | {a:.1f} | {a / b:.2f} |")


if __name__ == "__main__":
    main()
