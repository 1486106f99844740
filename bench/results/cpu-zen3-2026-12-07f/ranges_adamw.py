import time, threading, numpy as np, fastdecay as fd
from fastdecay._cpu import simulate as cpu, parallel
rng = np.random.default_rng(0)
n = 200_000
lam1 = rng.uniform(0.01, 1.0, (n, 1))
shared = fd.exponential(lr=0.05, gamma=0.99)
per1 = fd.exponential(lr=0.05, gamma=np.linspace(0.98, 0.999, n))
log = []
real = parallel.run_blocks
def spy(kernel, n_blocks, args, **kw):
    def timed(*a):
        t = time.perf_counter(); kernel(*a); log.append((threading.get_ident() == main, a[0], a[1], t, time.perf_counter()))
    t0 = time.perf_counter(); real(timed, n_blocks, args, **kw); log.append(("launch", n_blocks, 0, t0, time.perf_counter()))
main = threading.get_ident()
cpu.parallel.run_blocks = spy
f = lambda **kw: fd.simulate(lam1, per1, steps=100, optimizer="adamw", **kw)
f()
for kw in ({}, dict(threads=1), {}):
    log.clear(); t = time.perf_counter(); f(**kw); total = time.perf_counter() - t
    print(kw, f"total {total*1e3:.1f} ms, launches {sum(1 for e in log if e[0] == 'launch')}")
    for e in log[:8]:
        print("   ", e[0], e[1], e[2], f"{(e[3]-t)*1e3:.2f} -> {(e[4]-t)*1e3:.2f} ms")
