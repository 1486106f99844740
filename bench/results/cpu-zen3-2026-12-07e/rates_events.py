"""Compile events of one kernel path into an empty cache: exclusive seconds per function."""
import collections, sys, time
import numpy as np
from numba.core import event
rec = event.RecordingListener()
event.register("numba:compile", rec)
llvm = event.RecordingListener()
event.register("numba:llvm_lock", llvm)
import fastdecay as fd
from numba.np.ufunc import parallel as _p; _p._launch_threads()
lam = np.ones((4, 1))
per = fd.stack([fd.constant(0.1), fd.exponential(0.1, gamma=0.9)])
fd.simulate(lam[:2], fd.constant(0.1), steps=2)  # warm the shared path first
rec.buffer.clear(); llvm.buffer.clear()
t0 = time.perf_counter()
fd.simulate(np.ones((2, 1)), per, steps=4, dtype=np.float64)
took = time.perf_counter() - t0
excl = collections.Counter(); incl = {}
stack = []
for ts, e in rec.buffer:
    name = e.data["dispatcher"].py_func.__qualname__
    if e.is_start:
        stack.append([name, ts, 0.0])
    else:
        n, t, child = stack.pop()
        excl[n] += (ts - t) - child
        if stack:
            stack[-1][2] += ts - t
lsum = 0.0; ls = []
for ts, e in llvm.buffer:
    if e.is_start: ls.append(ts)
    else: lsum += ts - ls.pop()
print(f"call {took:.1f} s; llvm_lock total {lsum:.1f} s")
for n, s in excl.most_common(25):
    print(f"{s:7.2f}  {n}")
