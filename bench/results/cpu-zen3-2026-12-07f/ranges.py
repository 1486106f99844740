"""Each range's start and end in fd.simulate calls on the worker-thread launch (run_blocks.patch applied):

    PYTHONPATH=<tree> python ranges.py [gd-wd | adamw-lr] [--mirror]

gd-wd: GD with a weight decay a trajectory; adamw-lr: AdamW with an lr a trajectory (simulate_paths_ab.py's
rows, 200,000 trajectories x 100 steps). --mirror: the calling thread runs the blocks' second half."""
import sys, time, threading, numpy as np, fastdecay as fd
from fastdecay._cpu import simulate as cpu, parallel
rng = np.random.default_rng(0)
n = 200_000
lam1 = rng.uniform(0.01, 1.0, (n, 1))
gammas = fd.exponential(lr=0.05, gamma=np.linspace(0.98, 0.999, n))
if sys.argv[1:2] == ["adamw-lr"]:
    f = lambda **kw: fd.simulate(lam1, gammas, steps=100, optimizer="adamw", **kw)
else:
    wd1 = fd.exponential(lr=0.01, gamma=np.linspace(0.98, 0.999, n))
    f = lambda **kw: fd.simulate(lam1, fd.exponential(lr=0.05, gamma=0.99), steps=100, weight_decay=wd1, **kw)
mirror = "--mirror" in sys.argv
log = []
real = parallel.run_blocks
def spy(kernel, n_blocks, args, **kw):
    def timed(*a):
        if mirror:
            a = (n_blocks - a[1], n_blocks - a[0]) + a[2:]
        t = time.perf_counter(); kernel(*a); log.append((threading.get_ident() == main, a[0], a[1], t, time.perf_counter()))
    t0 = time.perf_counter(); real(timed, n_blocks, args, **kw); log.append(("launch", n_blocks, 0, t0, time.perf_counter()))
main = threading.get_ident()
cpu.parallel.run_blocks = spy
f()
for kw in ({}, dict(threads=1), {}):
    log.clear(); t = time.perf_counter(); f(**kw); total = time.perf_counter() - t
    print(kw, f"total {total*1e3:.1f} ms, launches {sum(1 for e in log if e[0] == 'launch')}")
    for e in log[:8]:
        print("   ", e[0], e[1], e[2], f"{(e[3]-t)*1e3:.2f} -> {(e[4]-t)*1e3:.2f} ms")
