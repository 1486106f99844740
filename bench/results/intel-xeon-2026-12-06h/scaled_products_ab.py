"""A/B of the scaled products' classing (``_cpu.simulate.scaled_product_classes``): warmups of 37
lengths scaled by an lr a trajectory, ``fd.stack(warmups)[i % 37] * lrs``, 200,000 one-coordinate
trajectories x 100 steps, GD, float64, one thread: the whole call and the classing kernel's own
time in it (wrapped), best of 5 after a warm-up; with row 0's lr exactly the schedules' (a product
leaves a scale of 1 out: an odd row, 38 classes in a period of 37) and with every row scaled. Run
each tree in its own process, alternated:

    PYTHONPATH=<tree> python bench/results/intel-xeon-2026-12-06h/scaled_products_ab.py
"""
import sys, time, numpy as np
import fastdecay as fd
from fastdecay._cpu import simulate as cpu
N, STEPS = 200_000, 100
rng = np.random.default_rng(0)
lam = rng.uniform(0.01, 1.0, (N, 1))
which = np.arange(N) % 37
orig = cpu.scaled_product_classes
spent = [0.0]
def wrapped(*a):
    t = time.perf_counter(); c = orig(*a); spent[0] += time.perf_counter() - t; return c
cpu.scaled_product_classes = wrapped
for name, off in (("row 0 unscaled", 0), ("every row scaled", 1)):
    lr = 0.05 * (1.0 + 1e-9 * (np.arange(N) + off))
    grid = fd.stack([fd.warmup(fd.cosine(lr=0.05, total_steps=90), k + 5) for k in range(37)])[which] * (lr / 0.05)
    f = lambda: fd.simulate(lam, grid, steps=STEPS, threads=1)
    f()
    best = []
    for _ in range(5):
        spent[0] = 0.0; t = time.perf_counter(); f(); best.append((time.perf_counter() - t, spent[0]))
    best.sort()
    print(f"{name}: call {best[0][0]*1e3:.1f} ms, scaled_product_classes {best[0][1]*1e3:.1f} ms")
