import time, statistics, sys, torch, numba
import fastdecay as fd
import fastdecay.torch as FT
from fastdecay.torch import SGD
torch.set_num_threads(1); numba.set_num_threads(1)
n = int(sys.argv[1]); size = int(sys.argv[2])
ps = [torch.nn.Parameter(torch.randn(size)) for _ in range(n)]
gs = [[torch.randn(size) for _ in range(n)] for _ in range(2)]
for p, g in zip(ps, gs[0]): p.grad = g
opt = SGD(ps, lr=1e-3, weight_decay=1e-2, momentum=0.9)
opt.step(); opt.step()
group = opt.param_groups[0]
T = {"calls": [], "launch": [], "count": [], "step": []}
for r in range(300):
    for p, g in zip(ps, gs[r % 2]): p.grad = g
    with torch.no_grad():
        t0 = time.perf_counter()
        calls = opt._group_calls(0, group, None, {}, [], [])
        t1 = time.perf_counter()
        for launch, _ in calls: launch()
        t2 = time.perf_counter()
        FT._count_steps([c for _, c in calls])
        t3 = time.perf_counter()
    T["calls"].append(t1 - t0); T["launch"].append(t2 - t1); T["count"].append(t3 - t2)
    for p, g in zip(ps, gs[(r + 1) % 2]): p.grad = g
    t0 = time.perf_counter(); opt.step(); T["step"].append(time.perf_counter() - t0)
for k, v in T.items():
    m = statistics.median(v); print(f"{k}: {m*1e6:.1f} us  {m*1e6/n:.3f} us/tensor")
