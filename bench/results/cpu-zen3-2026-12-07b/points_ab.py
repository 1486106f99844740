"""A schedule read at one step per row (1e6 rows, ``s(steps)``: ``eval_points``), a batch's first
rates (``s.lr0()``), and a simulation whose rates are read in closed form lane by lane (1e5
trajectories x 200 steps, a polynomial of power 2 a trajectory: no vector loop, no rate classes):
median and best of 7 calls, one process.

    PYTHONPATH=<tree> python points_ab.py
"""
import time

import numpy as np

import fastdecay as fd

n = 1_000_000
lrs = np.random.default_rng(0).uniform(0.01, 1.0, n)
steps = np.random.default_rng(1).integers(0, 200, n)
cases = {
    "cosine": fd.cosine(lrs, 200),
    "warmup then cosine": fd.warmup(fd.cosine(lrs, 200), 10),
    "cosine x step": fd.cosine(lrs, 200) * fd.step(1.0, 0.5, 30),
    "polynomial power 2": fd.polynomial(lrs, 200, power=2.0),
}


def timed(f, reps=7):
    f()
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return np.median(ts) * 1e3, min(ts) * 1e3


for name, s in cases.items():
    med, best = timed(lambda: s(steps))
    print(f"s(steps)   {name:<20} median {med:6.1f} best {best:6.1f} ms")
for name in ("cosine", "warmup then cosine"):
    s = cases[name]
    med, best = timed(lambda: s.lr0())
    print(f"lr0()      {name:<20} median {med:6.1f} best {best:6.1f} ms")
m = 100_000
lam = np.random.default_rng(2).uniform(0.01, 1.0, (m, 1))
s = fd.polynomial(lrs[:m], 250.0 + np.arange(m), power=2.0)  # every row its own shape: no classes
med, best = timed(lambda: fd.simulate(lam, s, steps=200))
print(f"simulate   {'polynomial power 2':<20} median {med:6.1f} best {best:6.1f} ms  (1e5 x 200)")
# expected dynamics of a grid of schedules (a row of coefficients a schedule and step), and a
# recording simulation (a recorded rate a lane)
k = 20_000
grid = fd.warmup(fd.cosine(lrs[:k], 300), 10)
curv = np.array([0.5, 1.0, 2.0])
med, best = timed(lambda: fd.expected_loss(curv, grid[:, None], steps=300, optimizer="momentum", momentum=0.9,
                                           noise=0.1), reps=5)
print(f"expected   {'momentum, 2e4 warmups':<20} median {med:6.1f} best {best:6.1f} ms  (x 300 steps)")
s = fd.cosine(lrs[:m], 250.0 + np.arange(m))
med, best = timed(lambda: fd.simulate(lam, s, steps=200, every=5), reps=5)
print(f"simulate   {'cosines, every=5':<20} median {med:6.1f} best {best:6.1f} ms  (1e5 x 200)")
