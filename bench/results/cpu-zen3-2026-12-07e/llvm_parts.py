"""Where a cold compile's time goes: Numba's per-function and final-module LLVM passes, machine code."""
import collections, sys, time
import numpy as np
from numba.core import codegen as cg
T = collections.Counter()
def timed(cls, name, key):
    orig = getattr(cls, name)
    def wrap(self, *a, **k):
        t = time.perf_counter()
        try:
            return orig(self, *a, **k)
        finally:
            T[key] += time.perf_counter() - t
    setattr(cls, name, wrap)
timed(cg.CPUCodeLibrary, "_optimize_functions", "function passes")
timed(cg.CPUCodeLibrary, "_optimize_final_module", "final module passes")
timed(cg.JITCodeLibrary, "_finalize_specific", "machine code (JIT)")
orig_fin = cg.CPUCodeLibrary._finalize_final_module
import fastdecay as fd
from numba.np.ufunc import parallel as _p; _p._launch_threads()
from fastdecay import _precompile
t0 = time.perf_counter()
if sys.argv[1] == "rates":
    fd.simulate(np.ones((2, 1)), fd.stack([fd.constant(0.1), fd.exponential(0.1, gamma=0.9)]), steps=4)
else:
    _precompile.FAMILIES[sys.argv[1]]()
total = time.perf_counter() - t0
print(f"{sys.argv[1]}: {total:.1f} s")
for k, v in T.items():
    print(f"  {k:24s} {v:6.1f} s  {100*v/total:4.1f} %")
