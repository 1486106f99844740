import time, statistics, sys, torch, numba
import fastdecay as fd
from fastdecay.torch import SGD, AdamW
torch.set_num_threads(1); numba.set_num_threads(1)
n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
size = int(sys.argv[2]) if len(sys.argv) > 2 else 16
def model():
    ps = [torch.nn.Parameter(torch.randn(size)) for _ in range(n)]
    gs = [[torch.randn(size) for _ in range(n)] for _ in range(2)]
    return ps, gs
hyper = dict(lr=1e-3, weight_decay=1e-2, momentum=0.9)
sets = {}
steps = {}
for name, cls, kw in [("fd", SGD, {}), ("fused", torch.optim.SGD, dict(fused=True)), ("foreach", torch.optim.SGD, dict(foreach=True))]:
    ps, gs = model()
    for p, g in zip(ps, gs[0]): p.grad = g
    sets[name] = (ps, gs)
    steps[name] = cls(ps, **hyper, **kw).step
for s in steps.values(): s(); s()
times = {k: [] for k in steps}
for r in range(200):
    for k, s in steps.items():
        ps, gs = sets[k]
        for p, g in zip(ps, gs[r % 2]): p.grad = g
        t0 = time.perf_counter(); s(); times[k].append(time.perf_counter() - t0)
for k, v in times.items():
    m = statistics.median(v)
    print(f"{k}: {m*1e6:.1f} us, {m*1e6/n:.3f} us/tensor")
if "--prof" in sys.argv:
    import cProfile, pstats
    ps, gs = sets["fd"]
    def loop():
        for r in range(200):
            for p, g in zip(ps, gs[r % 2]): p.grad = g
            steps["fd"]()
    cProfile.run("loop()", "/tmp/s26/prof.out")
    pstats.Stats("/tmp/s26/prof.out").sort_stats("tottime").print_stats(25)
