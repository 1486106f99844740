"""A/B of the planning of grids with an lr a trajectory (``fd.simulate``'s classing of the table's
rows), the whole call and its planning kernels: a 10-step warmup then cosines of 37 lengths
(phases: ``_lr_phases``), step schedules of 37 periods (``_lr_shapes``), warmups of 37 lengths
scaled by the lr (``_product_shapes``); each trajectory's lr 0.05 (1 + i 1e-9), shape i % 37;
200,000 one-coordinate trajectories x 100 steps, float64, GD, one thread. Best of 9 calls after
a warm-up; the planning kernels' time in that call (``rate_classes``, ``segments_like_first_row``,
``scaled_product_classes``, timed by wrapping them). Run each tree in its own process, alternated:

    PYTHONPATH=<tree> python bench/results/intel-xeon-2026-12-06i/planning_ab.py <label>
"""
import sys
import time

import numpy as np

import fastdecay as fd
from fastdecay._cpu import simulate as cpu

N, STEPS = 200_000, 100
label = sys.argv[1] if len(sys.argv) > 1 else "?"
spent = [0.0]
for name in ("rate_classes", "segments_like_first_row", "scaled_product_classes"):
    def timed(*args, kernel=getattr(cpu, name)):
        t = time.perf_counter()
        out = kernel(*args)
        spent[0] += time.perf_counter() - t
        return out
    setattr(cpu, name, timed)
rng = np.random.default_rng(0)
lam = rng.uniform(0.01, 1.0, (N, 1))
lr = 0.05 * (1.0 + 1e-9 * np.arange(N))
which = np.arange(N) % 37
grids = {
    "warmup-cosine": fd.warmup(fd.cosine(lr=lr, total_steps=(which + 90).astype(np.float64)), 10),
    "step": fd.step(lr=lr, gamma=0.5, period=(which + 5).astype(np.float64)),
    "warmup-lengths": fd.stack([fd.warmup(fd.cosine(lr=0.05, total_steps=90), k + 5) for k in range(37)])[which]
    * (lr / 0.05),
}
for name, grid in grids.items():
    fd.simulate(lam, grid, steps=STEPS, threads=1)
    times = []
    for _ in range(9):
        spent[0] = 0.0
        t = time.perf_counter()
        fd.simulate(lam, grid, steps=STEPS, threads=1)
        times.append((time.perf_counter() - t, spent[0]))
    times.sort()
    print(f"{label:>3} {name:<15} best {times[0][0] * 1e3:6.2f} ms (classing {times[0][1] * 1e3:5.2f})  "
          f"median {times[4][0] * 1e3:6.2f} ms", flush=True)
