"""One family of ``fastdecay compile`` compiled into an empty cache, then the functions Numba compiled
for a literal argument (``Literal[int](0)``, ``Literal[bool](True)``) where it also compiled them for
the plain type at that place: a second copy of the function, for that constant.
    NUMBA_CACHE_DIR=$(mktemp -d) PYTHONPATH=<tree> python literal_twins.py "simulate float64"
"""
import collections
import sys
import time

from numba.core import event, types

recorder = event.RecordingListener()
event.register("numba:compile", recorder)
from fastdecay import _precompile  # noqa: E402

start = time.perf_counter()
_precompile.FAMILIES[sys.argv[1]]()
took = time.perf_counter() - start

literal = lambda args: any(isinstance(a, types.Literal) for a in args)  # noqa: E731
compiled, in_literal, open_ = collections.defaultdict(set), 0.0, []
for ts, e in recorder.buffer:
    args = tuple(e.data["args"])
    if e.is_start:
        open_.append((literal(args), ts))
        continue
    lit, t0 = open_.pop()
    if lit and not any(outer for outer, _ in open_):  # (a literal compile not inside another: its time once)
        in_literal += ts - t0
    compiled[e.data["dispatcher"].py_func.__qualname__].add(args)
count = sum(len(s) for s in compiled.values())
print(f"family {sys.argv[1]}: {took:.1f} s, {count} compiles, "
      f"{sum(literal(a) for s in compiled.values() for a in s)} with a literal argument")
print(f"time in outermost literal-argument compiles: {in_literal:.1f} s")
print("---- literal compiles whose unliteral twin was compiled too")
for name, signatures in sorted(compiled.items()):
    for args in signatures:
        plain = tuple(types.unliteral(a) for a in args)
        if literal(args) and plain in signatures:
            print("  ", name, [str(a) for a in args if isinstance(a, types.Literal)])
