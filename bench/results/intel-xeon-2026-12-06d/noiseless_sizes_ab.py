"""Noiseless GD and momentum (a shared exponential, and an exponential a trajectory) on one thread by CPU
time at 1e6 and 1e5 trajectories x 200 steps, for one source tree (``PYTHONPATH=<tree> python
noiseless_sizes_ab.py <label>``): best of 5, G trajectory-steps per CPU-second."""
import sys, time, numpy as np, fastdecay as fd, numba
numba.set_num_threads(1)
out = []
for n in (1_000_000, 100_000):
  lam = np.random.default_rng(0).uniform(0.01, 1.0, (n, 1)); s = fd.exponential(0.05, gamma=0.99)
  for opt in ("momentum", "gd"):
    for per in (False, True):
      sched = fd.exponential(0.05, gamma=np.linspace(0.98, 0.99, n)) if per else s
      call = lambda: fd.simulate(lam, sched, steps=200, optimizer=opt, noise=0.0, threads=1)
      call(); best = 1e9
      for _ in range(5):
          t0 = time.thread_time(); call(); best = min(best, time.thread_time() - t0)
      out.append(f"{n} {opt}{'-per' if per else ''} {n*200/best/1e9:.2f}")
print(sys.argv[1], out)
