"""The first call of each kind on an empty Numba cache, each in a fresh process with a cache of its own
(what a user's first call costs without ``fastdecay compile``).  PYTHONPATH=<tree> python first_calls.py"""
import subprocess, sys, tempfile, os, time

CALLS = {
    "import fastdecay": "pass",
    "a schedule at 10 steps, s(steps)": "fd.exponential(0.1, gamma=0.99)(np.arange(10))",
    "fd.simulate, one schedule (GD, 1000 x 200)": "fd.simulate(np.ones((1000, 1)), fd.exponential(0.1, gamma=0.99), steps=200)",
    "fd.simulate, one schedule, noisy": "fd.simulate(np.ones((1000, 1)), fd.exponential(0.1, gamma=0.99), steps=200, noise=0.1)",
    "fd.simulate, a schedule a trajectory": "fd.simulate(np.ones((1000, 1)), fd.exponential(np.linspace(0.01, 0.1, 1000), gamma=0.99), steps=200)",
    "fd.adamw_step, float32": "w = np.ones(100, np.float32); fd.adamw_step(w, w.copy(), np.zeros_like(w), np.zeros_like(w), step=0, lr=0.1)",
    "fd.expected_loss, momentum": "fd.expected_loss(np.array([1.0, 0.5]), fd.step(0.1, 0.5, 3), steps=50, optimizer='momentum', noise=0.1)",
}
for name, call in CALLS.items():
    with tempfile.TemporaryDirectory() as cache:
        code = f"import time; t = time.perf_counter(); import numpy as np, fastdecay as fd; {call}; print(time.perf_counter() - t)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=dict(os.environ, NUMBA_CACHE_DIR=cache), check=True)
        print(f"{name:<45} {float(out.stdout.split()[-1]):6.1f} s", flush=True)
