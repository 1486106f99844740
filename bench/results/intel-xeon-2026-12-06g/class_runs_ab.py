"""A/B of lanes that read their classes' rates: grids of an lr a trajectory over 37 step-schedule
or cosine shapes (each trajectory's lr scaled by 1 + i 1e-9, shapes in turn: i % 37), and over
3,000 step shapes; 200,000 one-coordinate trajectories x 100 steps, float64, one thread. Each
call's wall time (the whole ``fd.simulate`` call: planning, layout, kernel), best and median of
7 after a warm-up; run each tree in its own process, alternated:

    PYTHONPATH=<tree> python bench/results/intel-xeon-2026-12-06g/class_runs_ab.py <label>
"""
import sys
import time

import numpy as np

import fastdecay as fd

N, STEPS = 200_000, 100
label = sys.argv[1] if len(sys.argv) > 1 else "?"
rng = np.random.default_rng(0)
lam = rng.uniform(0.01, 1.0, (N, 1))
lr = 0.05 * (1.0 + 1e-9 * np.arange(N))
for shapes, family in ((37, "step"), (37, "cosine"), (3000, "step")):
    which = np.arange(N) % shapes
    if family == "step":
        grid = fd.step(lr=lr, gamma=0.5, period=(which + 5).astype(np.float64))
    else:
        grid = fd.cosine(lr=lr, total_steps=(which + 90).astype(np.float64))
    for optimizer in ("gd", "momentum"):
        kw = dict(momentum=0.9) if optimizer != "gd" else {}
        fd.simulate(lam, grid, steps=STEPS, threads=1, optimizer=optimizer, **kw)
        times = []
        for _ in range(7):
            t = time.perf_counter()
            fd.simulate(lam, grid, steps=STEPS, threads=1, optimizer=optimizer, **kw)
            times.append(time.perf_counter() - t)
        times.sort()
        print(f"{label:>3} {shapes:>5} {family:<7} {optimizer:<9} best {times[0] * 1e3:6.1f} ms  "
              f"median {times[3] * 1e3:6.1f} ms  ({N * STEPS / times[0] / 1e9:.2f} G trajectory-steps/s)",
              flush=True)
