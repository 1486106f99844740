"""Run one timing script in several fastdecay source trees, each in its own process,
trees alternating round by round (the A/B scripts ``simulate_ab.py`` and
``headline_ab.py``)."""

import json
import os
import subprocess
import sys


def run_trees(code, trees, rounds):
    """{tree: {row: [seconds, one per round]}}: ``code`` run with PYTHONPATH=tree, ``rounds``
    times per tree, trees alternating; its last line of output is a JSON {row: seconds}."""
    results = {tree: {} for tree in trees}
    for _ in range(rounds):
        for tree in trees:
            done = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=tree), cwd=tree,
                                  capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{tree}:\n{done.stderr}")
            for k, v in json.loads(done.stdout.splitlines()[-1]).items():
                results[tree].setdefault(k, []).append(v)
    return results
