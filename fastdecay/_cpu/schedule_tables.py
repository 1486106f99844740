"""Entry kernels that evaluate schedules from Python: ``eval_points`` (any (row, step)
pairs), ``fill_table`` (rows x consecutive steps) and ``rate_at`` (one scalar schedule at
one step, serial), over the packed segment table.

Each has one explicit signature per output dtype, compiled (or loaded from Numba's
cache) the first time that dtype is asked for: a float64-only user never pays for
the float32 variants, and importing ``fastdecay._cpu.schedule`` for ``lr_at``
compiles none of them. The kernels' bodies are written in ``schedule.py`` beside the
helpers they call, so Numba's cache (keyed on the file of the cached function) is
invalidated whenever any of that code changes. Kernels never validate and never allocate.
"""

from numba import float32, float64, njit, void

from . import parallel
from .schedule import RO_FLOAT64, RO_INT64, SERIAL_BELOW, TABLE, eval_points_kernel, fill_table_kernel, rate_at_kernel


_SIGNATURES = {
    ("eval_points", "float64"): void(TABLE, RO_INT64, RO_FLOAT64, float64[::1]),
    ("eval_points", "float32"): void(TABLE, RO_INT64, RO_FLOAT64, float32[::1]),
    ("fill_table", "float64"): void(TABLE, float64, float64[:, ::1]),
    ("fill_table", "float32"): void(TABLE, float64, float32[:, ::1]),
}
_BODIES = {"eval_points": eval_points_kernel, "fill_table": fill_table_kernel}
_COMPILED = {}


_RATE_AT = []  # the compiled rate_at, once asked for


def rate_at(table, t):
    """The rate of schedule 0 of ``table`` (read-only float64 ``(rows, segments, WIDTH)``) at
    step ``t`` (a float), as a Python float: the kernels' own ``lr_at`` called directly, ~1 us
    where ``eval_points`` on one point costs ~15 (its arrays and the thread-count switch)."""
    if not _RATE_AT:
        _RATE_AT.append(njit(float64(TABLE, float64), cache=True)(rate_at_kernel))
    return _RATE_AT[0](table, t)


def kernel(name, dtype):
    """The compiled ``name`` kernel ("eval_points" or "fill_table") writing ``dtype``."""
    key = (name, str(dtype))
    compiled = _COMPILED.get(key)
    if compiled is None:
        compiled = parallel.entry(njit([_SIGNATURES[key]], parallel=True, cache=True)(_BODIES[name]))
        _COMPILED[key] = compiled
    return compiled


def eval_points(table, rows, steps, out):
    """out[i] = rate of schedule rows[i] of ``table`` at steps[i] (1-D arrays; ``rows``
    int64, ``steps`` float64, ``out`` float64 or float32)."""
    kernel("eval_points", out.dtype)(table, rows, steps, out)


def fill_table(table, first, out):
    """out[r, i] = rate of schedule r of ``table`` at step first + i (``out`` 2-D,
    C-contiguous, float64 or float32)."""
    kernel("fill_table", out.dtype)(table, first, out)


def run_small(fn, n_elements, *args):
    """``parallel.run_small`` below SERIAL_BELOW elements to write."""
    parallel.run_small(fn, n_elements, *args, below=SERIAL_BELOW)
