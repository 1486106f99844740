"""A reused fastdecay.torch.SGD group's checks (``_Repeat.calls``) and its whole step over 1,000 tensors of 16 elements, new gradients
each step, one thread: medians of 400, ns a tensor. PYTHONPATH=<tree> python repeat_calls.py"""
import time, statistics, sys, torch, numba
import fastdecay.torch as FT
from fastdecay.torch import SGD
torch.set_num_threads(1); numba.set_num_threads(1)
n=1000
ps = [torch.nn.Parameter(torch.randn(16)) for _ in range(n)]
gs = [[torch.randn(16) for _ in range(n)] for _ in range(2)]
for p, g in zip(ps, gs[0]): p.grad = g
opt = SGD(ps, lr=1e-3, weight_decay=1e-2, momentum=0.9)
for _ in range(4): opt.step()
rep = opt._repeats[0]; group = opt.param_groups[0]
ts=[]; tw=[]
for r in range(400):
    for p, g in zip(ps, gs[r % 2]): p.grad = g
    t=time.perf_counter(); c = rep.calls(group, opt.state.get, None, []); ts.append(time.perf_counter()-t)
    assert c is not None
    for p, g in zip(ps, gs[(r+1) % 2]): p.grad = g
    t=time.perf_counter(); opt.step(); tw.append(time.perf_counter()-t)
print(f"calls {statistics.median(ts)*1e9/n:.0f} ns/tensor, step {statistics.median(tw)*1e9/n:.0f}")
