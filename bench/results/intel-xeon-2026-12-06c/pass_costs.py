"""Each C-level pass of a reused fastdecay.torch.SGD step over 1,000 tensors of 16 elements, timed alone (ns a tensor, medians of 300)."""
import time, statistics, torch, numba, operator, importlib
from fastdecay.torch import SGD
import fastdecay.torch as FT
torch.set_num_threads(1); numba.set_num_threads(1)
n=1000
ps = [torch.nn.Parameter(torch.randn(16)) for _ in range(n)]
gs = [[torch.randn(16) for _ in range(n)] for _ in range(2)]
for p, g in zip(ps, gs[0]): p.grad = g
opt = SGD(ps, lr=1e-3, weight_decay=1e-2, momentum=0.9)
opt.step(); opt.step()
rep = opt._repeats[0]
state_of = opt.state.__getitem__
def T(name, f, k=300):
    ts=[]
    for _ in range(k):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    print(f"{name}: {statistics.median(ts)*1e6/n*1000:.0f} ns/tensor")
T("grads", lambda: list(map(FT._GRAD, ps)))
T("states", lambda: list(map(state_of, ps)))
sts = list(map(state_of, ps))
T("entries", lambda: list(map(rep.state_entries, sts)))
ent = list(map(rep.state_entries, sts))
T("zip", lambda: list(zip(*ent)))
steps, bufs = zip(*ent)
T("read_counts", lambda: FT._read_counts(steps))
T("one_tensor", lambda: FT._one_tensor(steps))
kept = ps + list(bufs)
T("data_ptr kept", lambda: list(map(torch.Tensor.data_ptr, kept)))
T("version", lambda: torch._C._increment_version(kept))
grads_now = list(map(FT._GRAD, ps))
plan = next(iter(importlib.import_module("fastdecay._update_plan")._PLANS.values()))
T("guard kept (2 a parameter)", lambda: plan.kept_guard(kept))
T("nested pass, gradients", lambda: any(map(operator.attrgetter("is_nested"), grads_now)))
T("guard gradients", lambda: plan.grad_guard(grads_now))
T("data_ptr gradients", lambda: list(map(torch.Tensor.data_ptr, grads_now)))
