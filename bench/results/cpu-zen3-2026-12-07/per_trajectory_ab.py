"""fd.simulate of 1e6 one-coordinate trajectories x 200 steps, an exponential a trajectory (the
schedule made before the timed calls, as bench_simulate.py does): best and median of 9 calls;
with an argument, a profile of 5 more. ``PYTHONPATH=<tree> python per_trajectory_ab.py``"""
import time, sys, numpy as np, fastdecay as fd
n, steps = 1_000_000, 200
lam = np.random.default_rng(0).uniform(0.01, 1.0, (n, 1))
gammas = np.linspace(0.98, 0.999, n)
s = fd.exponential(lr=0.5, gamma=gammas)
fd.simulate(lam, s, steps=steps)
ts = []
for _ in range(9):
    t = time.perf_counter(); fd.simulate(lam, s, steps=steps); ts.append(time.perf_counter() - t)
print("simulate alone: best", round(min(ts) * 1e3, 1), "median", round(sorted(ts)[4] * 1e3, 1), "ms")
if len(sys.argv) > 1:
    import cProfile, pstats
    pr = cProfile.Profile(); pr.enable()
    for _ in range(5): fd.simulate(lam, s, steps=steps)
    pr.disable(); pstats.Stats(pr).sort_stats("tottime").print_stats(10)
