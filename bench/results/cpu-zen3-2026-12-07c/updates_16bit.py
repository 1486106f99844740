"""The fused updates' family, then each 16-bit storage kernel (``_cpu.updates.kernel``) compiled into an empty cache, s.
    NUMBA_CACHE_DIR=$(mktemp -d) PYTHONPATH=<tree> python updates_16bit.py   (run at 80ab63a + comments, before the family existed)"""
import time
import fastdecay as fd
from fastdecay import _precompile as P
from fastdecay._rules import FUSED
t = time.perf_counter(); P._updates(); print(f"updates family now {time.perf_counter() - t:.1f} s", flush=True)
from fastdecay._cpu import updates as K
from fastdecay._update_plan import LOW_PRECISION
t = time.perf_counter()
combos = [("float32", "bfloat16")] + [(p, s) for p in LOW_PRECISION for s in ("float32", "bfloat16")]
for name in FUSED:
    for param, state in combos:
        for general in (False, True):
            t1 = time.perf_counter(); K.kernel(name, param, state, general)
            print(f"  {name} {param}/{state} general={general} {time.perf_counter() - t1:.1f} s", flush=True)
print(f"16-bit kernels {time.perf_counter() - t:.1f} s")
