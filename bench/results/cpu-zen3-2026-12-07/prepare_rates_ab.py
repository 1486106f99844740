"""``prepare_rates`` (a per-trajectory table's one pass before a run) on 1e6 exponentials and 1e6
cosines: the tree's kernel against a copy written here without views of the table's rows (the
tree after this change reads by index too), best of 9 calls, alternated four times at the end.

    PYTHONPATH=<tree> python prepare_rates_ab.py
"""
import time, math, numpy as np, fastdecay as fd
from numba import njit, prange, int64, float64, types
from fastdecay._cpu import simulate as K
from fastdecay._cpu.simulate import (_row_ratio, one_segment, next_change, lone_staircase, vector_code, lr_at,
                                     KIND, P0, ORIGIN, START, EXPONENTIAL, COSINE, POLYNOMIAL, CONSTANT,
                                     VECTOR_COSINE, VECTOR_LINE, VECTOR_CONSTANT, TABLE, RO_INT64)

@njit(cache=False, inline="always")
def anchor2(table, row, t):
    if table[row, 0, KIND] == EXPONENTIAL and t == table[row, 0, ORIGIN] and one_segment(table, row):
        return table[row, 0, P0]
    return lr_at(table, row, t)

@njit(cache=False, inline="always")
def code2(table, row, k):
    kind = int(table[row, k, KIND])
    if kind == COSINE:
        return VECTOR_COSINE
    if kind == POLYNOMIAL and table[row, k, P0 + 2] == 1.0 and table[row, k, P0 + 4] == 0.0:
        return VECTOR_LINE
    return VECTOR_CONSTANT if kind == CONSTANT else 0.0

@njit(types.UniTuple(int64, 2)(TABLE, RO_INT64, float64[::1], float64[::1], float64), parallel=True)
def prepare2(table, rows, ratio, state, t0):
    n = rows.shape[0]
    steps = 0
    vectors = 0
    for i in prange(n):
        row = rows[i]
        r = _row_ratio(table, row)
        ratio[i] = r
        state[i] = anchor2(table, row, t0)
        kind = int(table[row, 0, KIND])
        staircase = table[row, 0, P0 + 3]
        alone = one_segment(table, row)
        state[n + i] = math.inf if r == r else next_change(kind, staircase, table[row, 0, P0 + 2],
                                                           table[row, 0, ORIGIN], alone, t0)
        steps += 1 if kind == EXPONENTIAL and lone_staircase(kind, staircase, alone) else 0
        vector = False
        for k in range(table.shape[1]):
            if not table[row, k, START] < math.inf:
                break
            vector = vector or code2(table, row, k) > 0.0
        vectors += 1 if vector and not r == r else 0
    return steps, vectors

n = 1_000_000
for name, s in (("exponential a row", fd.exponential(lr=0.5, gamma=np.linspace(0.98, 0.999, n))),
                ("cosine a row", fd.cosine(np.linspace(0.1, 0.5, n), 100))):
    table = s.rows(); rows = np.arange(n, dtype=np.int64); rows.flags.writeable = False
    ratio = np.empty(n); state = np.empty(2 * n)
    out = {}
    for f, label in ((K.prepare_rates, "package"), (prepare2, "no views")):
        f(table, rows, ratio, state, 0.0)
        best = 1e9
        for _ in range(9):
            t = time.perf_counter(); res = f(table, rows, ratio, state, 0.0); best = min(best, time.perf_counter() - t)
        out[label] = (res, ratio.copy(), state.copy())
        print(f"{name:18s} {label:9s} {best * 1e3:6.2f} ms")
    a, b = out.values()
    assert a[0] == b[0] and np.array_equal(a[1], b[1], equal_nan=True) and np.array_equal(a[2], b[2], equal_nan=True)
print("alternating, exponential rows:")
s = fd.exponential(lr=0.5, gamma=np.linspace(0.98, 0.999, n))
table = s.rows(); rows = np.arange(n, dtype=np.int64); rows.flags.writeable = False
ratio = np.empty(n); state = np.empty(2 * n)
for r in range(4):
    for f, label in ((K.prepare_rates.dispatcher, "package"), (prepare2, "scratch")):
        best = 1e9
        for _ in range(9):
            t = time.perf_counter(); f(table, rows, ratio, state, 0.0); best = min(best, time.perf_counter() - t)
        print(f"  {label} {best*1e3:.2f}", end="")
    print()
