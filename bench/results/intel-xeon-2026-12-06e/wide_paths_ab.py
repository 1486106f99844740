"""The simulation paths on one thread by CPU time, for one source tree (run it once per tree,
alternating: ``PYTHONPATH=<tree> python wide_paths_ab.py <label> [names]``): best of 5 calls
by the thread's CPU time, in G trajectory-steps per CPU-second. Shared schedules (one
exponential), an exponential a trajectory, grids of 37 step schedules and of 37 cosines over
their trajectories (rate classes), the 37 step schedules' shapes at an lr a trajectory, AdamW and Lion, and noisy GD: which paths the 512-bit block
loops speed up, and that the others stay as they were."""

import sys
from pathlib import Path

import numpy as np

import fastdecay as fd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench/: the roofline's timer
from simulate_roofline import best_thread_time  # noqa: E402

rng = np.random.default_rng(0)
n, steps = 200_000, 200
lam = rng.uniform(0.01, 1.0, (n, 1))
shared = fd.exponential(0.05, gamma=0.99)
per_trajectory = fd.exponential(rng.uniform(0.01, 0.05, n), gamma=rng.uniform(0.98, 0.999, n))
periods = np.arange(37) + 20.0
step_grid = fd.step(0.05, 0.5, periods[np.arange(n) % 37])
cosine_grid = fd.cosine(0.05, 150.0 + periods[np.arange(n) % 37])
shapes_by_lr = fd.step(rng.uniform(0.01, 0.05, n), 0.5, periods[np.arange(n) % 37])  # 37 shapes, an lr each
runs = {
    "gd f64": dict(lr=shared, optimizer="gd"),
    "gd f32": dict(lr=shared, optimizer="gd", dtype="float32"),
    "momentum f64": dict(lr=shared, optimizer="momentum"),
    "momentum f32": dict(lr=shared, optimizer="momentum", dtype="float32"),
    "nesterov f64 wd": dict(lr=shared, optimizer="nesterov", weight_decay=0.01),
    "gd per-trajectory": dict(lr=per_trajectory, optimizer="gd"),
    "momentum per-trajectory": dict(lr=per_trajectory, optimizer="momentum"),
    "gd step grid": dict(lr=step_grid, optimizer="gd"),
    "momentum step grid": dict(lr=step_grid, optimizer="momentum"),
    "gd cosine grid": dict(lr=cosine_grid, optimizer="gd"),
    "gd step shapes by lr": dict(lr=shapes_by_lr, optimizer="gd"),
    "momentum step shapes by lr": dict(lr=shapes_by_lr, optimizer="momentum"),
    "adamw f64": dict(lr=shared, optimizer="adamw", weight_decay=0.01),
    "lion f32": dict(lr=shared, optimizer="lion", dtype="float32"),
    "noisy gd f64": dict(lr=shared, optimizer="gd", noise=0.1, size=20_000),
}
chosen = sys.argv[2:] or list(runs)
out = []
for name in chosen:
    kw = dict(runs[name])
    size = kw.pop("size", n)
    lr = kw.pop("lr")
    if size != n:
        lr = lr if lr.batch_shape == () else lr[:size]

    def call():
        fd.simulate(lam[:size], lr, steps=steps, threads=1, **kw)

    out.append(f"{name} {size * steps / best_thread_time(call, 5) / 1e9:.2f}")
print(sys.argv[1], "; ".join(out), flush=True)
