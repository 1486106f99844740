"""Numba kernels that read the packed segment table (layout in ``fastdecay._layout``).

``lr_at(table, row, t)`` is the one CPU definition of every schedule; the fused
updates and the simulations call it too, and ``drop_ratio`` tells them where the
rate falls discontinuously. Kernels never validate and never allocate:
``fastdecay.schedules`` checks everything first. Every jitted function here is an
inner helper without a signature (compiled into the kernels that call it); the entry
kernels that evaluate schedules from Python (``eval_points_kernel``,
``fill_table_kernel``, plain functions here) are compiled per output dtype on first
use by ``schedule_tables``.
"""

import math

import numpy as np
from numba import float64, int64, njit, prange, types

from .intrinsics import fma
from .._layout import (
    CONSTANT,
    COSINE,
    COSINE_POWER,
    COSINE_RESTARTS,
    CYCLIC,
    EXPONENTIAL,
    INVERSE_TIME,
    KIND,
    ONE_MINUS_POWER,
    ORIGIN,
    P0,
    POLYNOMIAL,
    PRODUCT,
    START,
    TABULATED,
    VALUES_PER_ROW,
)

# A schedule's packed table is immutable (read-only) and reaches kernels as
# (rows, segments, WIDTH); index arrays made by broadcasting are read-only too.
TABLE = types.Array(float64, 3, "C", readonly=True)
RO_INT64 = types.Array(int64, 1, "C", readonly=True)
RO_FLOAT64 = types.Array(float64, 1, "C", readonly=True)

# Exponential rows of a table advance by multiplication and return to the closed
# form at every multiple of this many steps (a multiple of 8: see _fill_exponential);
# a handful of roundings of 2**-53 stay far inside 1e-13.
REANCHOR = 64

# _fill_cosine rotates angles up to this fraction of π and evaluates the rest directly.
ROTATE_UP_TO = 0.9

# Points of eval_points handled by one parallel task.
POINTS_BLOCK = 4096

# Below this many output elements run_small keeps a kernel on the calling thread.
SERIAL_BELOW = 1 << 15


@njit(cache=True, inline="always")
def segment_of(table, row, t):
    """Index of the segment that holds step ``t``: the last one with start <= t."""
    k = np.int64(0)
    for j in range(1, table.shape[1]):
        if table[row, j, START] <= t:
            k = j
        else:
            break
    return k


@njit(cache=True)
def _cosine_restart_cycle(tau, T0, mult):
    """(position inside the cycle, cycle length, cycle index) for SGDR at ``tau``, in
    closed form."""
    if mult == 1.0:
        i = math.floor(tau / T0)
        return tau - i * T0, T0, i
    i = math.floor(math.log(tau / T0 * (mult - 1.0) + 1.0) / math.log(mult))
    # the logarithm can land one cycle off at an exact boundary: step back or forward
    if T0 * (mult**i - 1.0) / (mult - 1.0) > tau:
        i -= 1
    elif T0 * (mult ** (i + 1) - 1.0) / (mult - 1.0) <= tau:
        i += 1
    return tau - T0 * (mult**i - 1.0) / (mult - 1.0), T0 * mult**i, i


# The primitives the table fill also calls directly (its anchors): one definition each,
# so a fill site does not carry a copy of the whole ``primitive``.


@njit(cache=True)
def exponent_at(tau, decay_steps, staircase):
    """The exponential's power of gamma at ``tau``: tau / decay_steps, floored on a staircase."""
    e = tau / decay_steps
    if staircase != 0.0:
        e = np.floor(e)
    return e


@njit(cache=True)
def scaled(lr, power):
    """lr * power, and lr itself where lr is 0: a rate of 0 stays 0 where a growing
    power has overflowed (0 * inf is NaN; torch's chained schedulers keep 0)."""
    return lr if lr == 0.0 else lr * power


@njit(cache=True, inline="always")
def class_lane_rate(scale, rate, rises):
    """A lane's rate from its rate class's (``fastdecay.simulate._shapes_of``): ``scaled(scale,
    rate)`` (a shape at lr 1 times the lane's lr), or with ``rises`` the closed form of a
    polynomial from 0 to the lane's lr, ``(0 - scale) * rate + scale``, whose class rate is its
    shape (1 - tau / T) ** power: the closed form's own operations (``polynomial_at``), so its
    bits."""
    return (0.0 - scale) * rate + scale if rises else scaled(scale, rate)


@njit(cache=True)
def _exponential(tau, lr, gamma, decay_steps, staircase):
    return scaled(lr, gamma ** exponent_at(tau, decay_steps, staircase))


@njit(cache=True)
def _inverse_time(tau, lr, k, decay_steps, staircase, power):
    e = tau / decay_steps
    if staircase != 0.0:
        e = math.floor(e)
    return lr if lr == 0.0 else lr / (1.0 + k * e) ** power  # (0 / 0 where the power underflows)


# cos(pi s) and sin(pi s) / s on |s| <= 1/4 as polynomials in z = s**2: the Taylor
# coefficients (-1)**k pi**2k / (2k)! and (-1)**k pi**(2k+1) / (2k+1)!, each the double
# nearest the 50-digit value (the first term left out is below 2**-58 of the result);
# SIN_PI_LO = pi - SIN_PI[0] and COS_PI_LO the rest of the first two coefficients.
COS_PI = (1.0, -4.934802200544679, 4.0587121264167685, -1.3352627688545895, 0.2353306303588932,
          -0.02580689139001406, 0.0019295743094039231, -0.0001046381049248457, 4.303069587032947e-06)
SIN_PI = (3.141592653589793, -5.16771278004997, 2.5501640398773455, -0.5992645293207921,
          0.08214588661112823, -0.0073704309457143504, 0.00046630280576761255, -2.1915353447830217e-05,
          7.952054001475513e-07)
SIN_PI_LO = 1.2246467991473532e-16
COS_PI_LO = -3.1326477543698557e-16  # -pi**2 / 2 - COS_PI[1]


@njit(cache=True, inline="always")
def cos_pi(x):
    """cos(pi x), within one unit in the last place (0.72 the largest error found, against 50
    digits, in 13 million points), with no call and no branch (a loop of it vectorizes;
    libm's ``cos`` is a call an element, ~9 ns): x is reduced exactly (every subtraction below
    is of numbers within a factor of two) to s in [0, 1/4], then cos(pi s) or sin(pi s) by
    ``COS_PI`` / ``SIN_PI`` in fused multiply-adds, 1 - (pi s)**2 / 2 and pi s each as a sum
    of two doubles.
    cos_pi(1/2) is 0 and cos_pi(1) is -1 exactly. The CUDA twin (``kernels/schedule.cuh``)
    does the same operations."""
    a = abs(x)
    a = a - 2.0 * np.floor(0.5 * a)  # [0, 2): the period
    a = min(a, 2.0 - a)  # [0, 1]: cos(pi (2 - a)) = cos(pi a)
    negate = a > 0.5
    r = 1.0 - a if negate else a  # [0, 1/2]: cos(pi a) = -cos(pi (1 - a))
    odd = r > 0.25
    s = 0.5 - r if odd else r  # [0, 1/4]: cos(pi r) = sin(pi (1/2 - r))
    z = s * s
    q = fma(z, COS_PI[8], COS_PI[7])
    p = fma(z, SIN_PI[8], SIN_PI[7])
    for k in range(6, 1, -1):  # (unrolled: the index is a constant)
        q = fma(z, q, COS_PI[k])
        p = fma(z, p, SIN_PI[k])
    p = fma(z, p, SIN_PI[1])
    # cos: 1 + COS_PI[1] z (its rounding errors kept: c0's exact, by Fast2Sum) + z**2 q
    hi = z * COS_PI[1]
    c0 = 1.0 + hi
    c = c0 + ((((1.0 - c0) + hi) + fma(z, COS_PI[1], -hi)) + fma(z * z, q, z * COS_PI_LO))
    # sin: pi s (and its rounding error) + s z p
    h = s * SIN_PI[0]
    sn = h + fma(s * z, p, fma(s, SIN_PI[0], -h) + s * SIN_PI_LO)
    v = sn if odd else c
    return -v if negate else v


@njit(cache=True, inline="always")
def cosine_at(tau, lr, T, end):
    """The cosine end + (lr - end)(1 + cos(pi min(tau, T) / T)) / 2 (``cos_pi``). Inlined where
    called: a loop of it vectorizes."""
    if tau > T:
        tau = T
    return end + (lr - end) * (1.0 + cos_pi(tau / T)) / 2.0


@njit(cache=True, inline="always")
def polynomial_at(tau, lr, T, power, end, cycle):
    """The polynomial (lr - end)(1 - min(tau, T') / T')**power + end, T' = T or with ``cycle``
    T ceil(tau / T); a line (power 1: a linear warmup or decay) without ``pow``. Inlined where
    called: a loop of lines vectorizes."""
    if cycle != 0.0:
        if tau > 0.0:
            T = T * math.ceil(tau / T)
    elif tau > T:
        tau = T
    x = 1.0 - tau / T
    return (lr - end) * (x if power == 1.0 else x**power) + end


@njit(cache=True)
def primitive(kind, tau, p0, p1, p2, p3, p4, p5):
    """Rate of one primitive at ``tau`` steps past its origin (see ``_layout``)."""
    if kind == CONSTANT:
        return p0
    if kind == EXPONENTIAL:
        return _exponential(tau, p0, p1, p2, p3)
    if kind == INVERSE_TIME:
        return _inverse_time(tau, p0, p1, p2, p3, p4)
    if kind == POLYNOMIAL:
        return polynomial_at(tau, p0, p1, p2, p3, p4)
    if kind == COSINE:
        return cosine_at(tau, p0, p1, p2)
    if kind == COSINE_RESTARTS:
        cur, Ti, i = _cosine_restart_cycle(tau, p1, p2)
        return p3 + (scaled(p0, p4**i) - scaled(p3, p5**i)) * (1.0 + cos_pi(cur / Ti)) / 2.0
    if kind == COSINE_POWER:
        if tau > p1:
            tau = p1
        return p2 + (p0 - p2) * ((1.0 + cos_pi(p3 * tau / p1)) / 2.0) ** p4
    if kind == CYCLIC:
        # the same float operations as torch's CyclicLR.get_lr
        total = p2 + p3
        cycle = math.floor(1.0 + tau / total)
        x = 1.0 + tau / total - cycle
        ratio = p2 / total
        if x <= ratio:
            scale = x / ratio
        else:
            scale = (x - 1.0) / (ratio - 1.0)
        height = (p1 - p0) * scale
        if height == 0.0:
            return p0  # a cycle's foot, also where an exp_range gamma > 1 has overflowed (0 * inf)
        return p0 + height * p4 ** (cycle - 1.0) * p5**tau
    if kind == ONE_MINUS_POWER:
        if tau > p1:
            tau = p1
        return p3 + (p0 - p3) * (1.0 - (tau / p1) ** p2)
    return math.nan


@njit(cache=True)
def _table_value(segs, seg, i):
    """Value i of the TABULATED segment ``seg``'s table, clamped to its ends."""
    n = int(seg[P0 + 1])
    if i > n - 1:
        i = n - 1
    if i < 0:
        i = 0
    return segs[int(seg[P0]) + i // VALUES_PER_ROW, P0 + i % VALUES_PER_ROW]


# The table is read by index, and every function that takes it on the way to ``primitive``
# (whose arguments are numbers) is inlined: a call that takes an array, or a view of a row, counts
# references on it (atomically, on a counter every thread shares), which cost more than the
# formula (``s(steps)`` of 1e6 cosines, a step each, two threads: 35-41 ms through views and
# calls, 25-27 ms so; bench/RESULTS.md, "`make test` in less time; a schedule read by index").


@njit(cache=True, inline="always")
def _factor_rate(table, row, k, t):
    """Rate of row k of schedule ``row`` at step ``t``, for any kind but PRODUCT."""
    kind = int(table[row, k, KIND])
    tau = t - table[row, k, ORIGIN]
    if kind == TABULATED:
        return _table_value(table[row], table[row, k], int(math.floor(tau)))
    return primitive(kind, tau, table[row, k, P0], table[row, k, P0 + 1], table[row, k, P0 + 2], table[row, k, P0 + 3],
                     table[row, k, P0 + 4], table[row, k, P0 + 5])


@njit(cache=True, inline="always")
def segment_rate(table, row, k, t):
    """Rate of segment k of schedule ``row`` at step ``t``."""
    if int(table[row, k, KIND]) == PRODUCT:
        first = int(table[row, k, P0])
        rate = 1.0
        for f in range(first, first + int(table[row, k, P0 + 1])):
            rate *= _factor_rate(table, row, f, t)
        return rate
    return _factor_rate(table, row, k, t)


@njit(cache=True, inline="always")
def one_segment(table, row):
    """True where schedule ``row`` has one segment: nothing after its first (a stacked table
    pads a shorter schedule with segments that start at infinity). Inlined where called."""
    return table.shape[1] == 1 or table[row, 1, START] == math.inf


@njit(cache=True)
def lone_staircase(kind, staircase, alone):
    """True for a schedule of one staircase segment (``alone``: nothing after it): a step
    schedule, a staircase exponential or inverse time, whose rate holds between changes."""
    return alone and (kind == EXPONENTIAL or kind == INVERSE_TIME) and staircase != 0.0


@njit(cache=True, error_model="numpy")
def _plateau(origin, decay_steps, s):
    """A staircase's plateau at step ``s``: floor((s - origin) / decay_steps), by the closed
    form's own float operations (it never falls as s grows)."""
    return np.floor((s - origin) / decay_steps)


@njit(cache=True, error_model="numpy", inline="always")
def next_change(kind, staircase, decay_steps, origin, alone, t):
    """The first step after ``t`` at which a schedule's rate may differ from its rate at
    ``t``: ``t + 1``, except for a ``lone_staircase``, whose rate holds while its
    ``_plateau`` keeps its value at ``t``: the rate at ``t`` is the closed form's, bit for
    bit, at every step before the one returned (where that cannot be decided exactly,
    before the origin or with steps or the origin past 2**52: ``t + 1``).

    Scalars only, which the caller reads from the table (``kind``, ``staircase``,
    ``decay_steps``, ``origin`` of the row's first segment: KIND, P0 + 3, P0 + 2, ORIGIN):
    a loop over elements that calls a function taking the table pays for the call each
    element (not inlined, ~13 ns)."""
    after = t + 1.0
    if not (lone_staircase(kind, staircase, alone) and t >= origin and 0.0 < decay_steps < math.inf):
        return after
    k = _plateau(origin, decay_steps, t)
    step = np.ceil(origin + (k + 1.0) * decay_steps)  # within a few roundings of the change
    if not (step < 2.0**52 and origin > -2.0**52):
        return after  # (beyond: the walks below would step through s - origin that do not change)
    step = max(step, after)
    while step > after and _plateau(origin, decay_steps, step - 1.0) > k:
        step -= 1.0
    while _plateau(origin, decay_steps, step) <= k:
        step += 1.0
    return step


@njit(cache=True)
def plateau_continues(kind, staircase, decay_steps, origin, alone, t):
    """True where a schedule has at step t the rate it had at t - 1: a ``lone_staircase``
    whose ``_plateau`` is the same at both (``next_change`` from t - 1 lies beyond t; here
    in two divisions, for a loop that asks at every step). Scalars only, as ``next_change``."""
    return (lone_staircase(kind, staircase, alone) and t - 1.0 >= origin
            and _plateau(origin, decay_steps, t) == _plateau(origin, decay_steps, t - 1.0))


@njit(cache=True, inline="always")
def rate_inlined(table, row, t):
    """``lr_at`` inlined where it is called: for loops that read a rate an element (the points
    of ``s(steps)``, the expected dynamics' coefficients of each schedule and step, a recording
    run's rate of each trajectory); elsewhere a call to ``lr_at`` keeps the kernels short to
    compile (every kernel inlining it took a fifth longer: ``fastdecay compile`` 341 -> 406 s)."""
    return segment_rate(table, row, segment_of(table, row, t), t)


@njit(cache=True)
def lr_at(table, row, t):
    """Rate of schedule ``row`` of a ``(rows, segments, WIDTH)`` table at step ``t``."""
    return rate_inlined(table, row, t)


@njit(cache=True)
def _is_level_row(seg):
    kind = int(seg[KIND])
    if kind == CONSTANT:
        return True
    return (kind == EXPONENTIAL or kind == INVERSE_TIME) and seg[P0 + 3] != 0.0


@njit(cache=True)
def _is_level(segs, k):
    """True for segments whose value moves only in jumps: constant and staircase
    primitives, and products of them."""
    seg = segs[k]
    if int(seg[KIND]) == PRODUCT:
        first = int(seg[P0])
        for f in range(first, first + int(seg[P0 + 1])):
            if not _is_level_row(segs[f]):
                return False
        return True
    return _is_level_row(seg)


@njit(cache=True)
def _table_jumps(segs, seg, t):
    """True where a TABULATED row falls at ``t`` by more than twice the larger
    neighbouring change (a step of a step function, not a smooth curve's slope)."""
    i = int(math.floor(t - seg[ORIGIN]))
    n = int(seg[P0 + 1])
    if i < 1 or i > n - 1:
        return False
    fall = _table_value(segs, seg, i - 1) - _table_value(segs, seg, i)
    earlier = abs(_table_value(segs, seg, i - 2) - _table_value(segs, seg, i - 1)) if i >= 2 else 0.0
    later = abs(_table_value(segs, seg, i) - _table_value(segs, seg, i + 1)) if i + 1 <= n - 1 else 0.0
    return fall > 2.0 * max(earlier, later)


@njit(cache=True)
def _row_steps(segs, seg, t, inside):
    """``_staircase_steps`` of one primitive row; ``inside``: only a plateau change after
    its first plateau (not the one it starts with at its origin)."""
    kind = int(seg[KIND])
    if (kind == EXPONENTIAL or kind == INVERSE_TIME) and seg[P0 + 3] != 0.0:
        tau = t - seg[ORIGIN]
        if inside and tau < 1.0:
            return False
        return math.floor(tau / seg[P0 + 2]) != math.floor((tau - 1.0) / seg[P0 + 2])
    if kind == TABULATED:
        return _table_jumps(segs, seg, t)
    return False


@njit(cache=True)
def _staircase_steps(segs, k, t, inside=False):
    """True where segment k moves to a new plateau between t - 1 and t: a staircase
    primitive's next plateau, a table's step, or either in a factor of a product
    (``inside``: not counting a primitive's first plateau, at its origin)."""
    seg = segs[k]
    if int(seg[KIND]) == PRODUCT:
        first = int(seg[P0])
        for f in range(first, first + int(seg[P0 + 1])):
            if _row_steps(segs, segs[f], t, inside):
                return True
        return False
    return _row_steps(segs, seg, t, inside)


@njit(cache=True)
def is_boundary(table, row, t):
    """True where the rate may jump at step ``t``: a segment starts in (t − 1, t], or a
    segment moves to its next plateau."""
    if t < 1.0:
        return False
    k = segment_of(table, row, t)
    if segment_of(table, row, t - 1.0) != k:
        return True
    return _staircase_steps(table[row], k, t)


_MEET = 1e-9  # two pieces meet at a boundary on a step when they agree to this, relative


@njit(cache=True)
def _begins_at(segs, k, t):
    """True where segment k starts at step ``t`` with its formula's origin there (or, for a
    product, a factor's): a join's piece, a warmup's end; not one-cycle's phases, whose
    formulas start at pct_start·total_steps − 1, before their first step."""
    seg = segs[k]
    if seg[START] != t:
        return False
    if int(seg[KIND]) == PRODUCT:
        first = int(seg[P0])
        for f in range(first, first + int(seg[P0 + 1])):
            if segs[f, ORIGIN] == t:
                return True
        return False
    return seg[ORIGIN] == t


@njit(cache=True)
def drop_ratio(table, row, t):
    """eta_t / eta_{t-1} where the rate falls discontinuously at ``t``, else 1.

    The momentum ``on_drop`` options act on this. A drop is a fall of the rate at a
    staircase plateau change (step, staircase exponential / inverse time, a table's
    step; also where it falls on a segment boundary, as a staircase factor of a
    product does at a warmup's end), or at a segment boundary (multistep, piecewise,
    join) where the two pieces do not meet. Where the new piece begins at ``t``
    itself (its formula's origin: a join's boundary, a warmup's end) the pieces meet
    when the piece before, carried on to ``t``, gives the new piece's rate to 1e-9
    relative (continuous there). Elsewhere (one-cycle's phases, whose formulas start
    at pct_start·total_steps − 1, between or on steps) they meet when the piece
    before, carried on to ``t``, or the piece after, carried back to ``t − 1``,
    lands within one step's change of either piece from the other side's rate.
    Constant and staircase pieces are carried as their level; a carried value that
    is not a number counts as the level too. So one-cycle's phase change, warmup's
    end and joined lines that meet are not drops; a level followed by a piece that
    starts lower is one.
    """
    if t < 1.0:
        return 1.0
    segs = table[row]
    k = segment_of(table, row, t)
    j = segment_of(table, row, t - 1.0)
    now = segment_rate(table, row, k, t)
    before = segment_rate(table, row, j, t - 1.0)
    if not (now < before and before > 0.0):
        return 1.0
    if k == j:
        return now / before if _staircase_steps(segs, k, t) else 1.0
    if _staircase_steps(segs, k, t, True):
        return now / before
    carried_on = before if _is_level(segs, j) else segment_rate(table, row, j, t)
    if carried_on != carried_on:
        carried_on = before
    if _begins_at(segs, k, t):
        return 1.0 if abs(carried_on - now) <= _MEET * before else now / before
    carried_back = now if _is_level(segs, k) else segment_rate(table, row, k, t - 1.0)
    if carried_back != carried_back:
        carried_back = now
    own_step = max(abs(carried_on - before), abs(now - carried_back))
    if abs(carried_on - now) <= own_step or abs(carried_back - before) <= own_step:
        return 1.0
    return now / before


@njit(cache=True)
def _eval_points(table, rows, steps, out, lo, hi):
    for i in range(lo, hi):
        out[i] = rate_inlined(table, rows[i], steps[i])


@njit(cache=True)
def _unit_powers(seg, powers):
    """powers[j] = gamma^(j/decay_steps) for j < len(powers) (a multiple of 8): eight
    closed-form lanes, each advanced by gamma^(8/decay_steps)."""
    ds = seg[P0 + 2]
    gamma = seg[P0 + 1]
    q8 = gamma ** (8.0 / ds)
    for k in range(8):
        p = gamma ** (k / ds)
        for j in range(k, powers.shape[0], 8):
            powers[j] = p
            p *= q8


@njit(cache=True)
def _exponential_at(seg, t):
    """The smooth exponential segment ``seg`` at step ``t`` (its closed form)."""
    return _exponential(t - seg[ORIGIN], seg[P0], seg[P0 + 1], seg[P0 + 2], 0.0)


@njit(cache=True)
def _anchored_blocks(seg, first, i, i1, powers, out_row):
    """out_row[i:i1] block by block: the closed-form anchor at each block's first step
    times the unit powers (a vectorised loop; float32 rows round each float64 product)."""
    while i < i1:
        stop = min(i + REANCHOR, i1)
        block = out_row[i:stop]
        v = _exponential_at(seg, first + i)
        for j in range(block.shape[0]):
            block[j] = v * powers[j]
        i = stop


@njit(cache=True)
def _exponential_lanes(seg, first, i0, i1, out_row):
    """The scalar form of the same: eight lanes anchor · gamma^(k/ds), the anchor then
    advanced by gamma^(8/ds), back to the closed form every REANCHOR steps."""
    ds = seg[P0 + 2]
    gamma = seg[P0 + 1]
    q1 = gamma ** (1.0 / ds)
    q2 = gamma ** (2.0 / ds)
    q3 = gamma ** (3.0 / ds)
    q4 = gamma ** (4.0 / ds)
    q5 = gamma ** (5.0 / ds)
    q6 = gamma ** (6.0 / ds)
    q7 = gamma ** (7.0 / ds)
    q8 = gamma ** (8.0 / ds)
    i = i0
    while i + REANCHOR <= i1:
        v = _exponential_at(seg, first + i)
        for j in range(i, i + REANCHOR, 8):
            out_row[j] = v
            out_row[j + 1] = v * q1
            out_row[j + 2] = v * q2
            out_row[j + 3] = v * q3
            out_row[j + 4] = v * q4
            out_row[j + 5] = v * q5
            out_row[j + 6] = v * q6
            out_row[j + 7] = v * q7
            v *= q8
        i += REANCHOR
    if i < i1:
        v = _exponential_at(seg, first + i)
        out_row[i] = v
        for j in range(i + 1, i1):
            v *= q1
            out_row[j] = v


@njit(cache=True)
def _fill_exponential(seg, first, i0, i1, out_row):
    """lr · gamma^((t − origin)/decay_steps) at t = first + i for i in [i0, i1).

    Every REANCHOR steps the rate is the closed form (one ``pow``, the anchor); the
    steps in between are that anchor times closed-form powers of the per-step ratio,
    so there is no serial multiplication chain and no drift. The REANCHOR unit powers
    gamma^(j/decay_steps) are kept in float64 in the segment's own first steps of the
    output (its first block of a float64 row, its first two blocks of a float32 row
    seen as float64) while the later blocks are written, one vectorised
    ``anchor * powers`` pass each; the first block(s) are then written last (scaled by
    their anchor, or by the scalar lanes). Each value is within a few roundings of its
    anchor: ~1e-15 relative of the closed form (float32: the float64 value rounded once).
    """
    if seg[P0] == 0.0:
        out_row[i0:i1] = seg[P0]  # (its powers may overflow: ``scaled``)
    elif out_row.itemsize == 8 and i1 - i0 >= 2 * REANCHOR:
        powers = out_row[i0 : i0 + REANCHOR]
        _unit_powers(seg, powers)
        _anchored_blocks(seg, first, i0 + REANCHOR, i1, powers, out_row)
        v = _exponential_at(seg, first + i0)
        for j in range(REANCHOR):
            powers[j] *= v
    elif out_row.itemsize == 4 and i1 - i0 >= 3 * REANCHOR:
        powers = out_row[i0 : i0 + 2 * REANCHOR].view(np.float64)
        _unit_powers(seg, powers)
        _anchored_blocks(seg, first, i0 + 2 * REANCHOR, i1, powers, out_row)
        _exponential_lanes(seg, first, i0, i0 + 2 * REANCHOR, out_row)
    else:
        _exponential_lanes(seg, first, i0, i1, out_row)


@njit(cache=True)
def _fill_staircase(seg, first, i0, i1, out_row):
    """A staircase exponential / inverse time at t = first + i, i in [i0, i1): one
    closed-form value per plateau, written over the plateau's steps."""
    origin = seg[ORIGIN]
    ds = seg[P0 + 2]
    i = i0
    while i < i1:
        level = math.floor((first + i - origin) / ds)
        tau = (first + i) - origin
        if int(seg[KIND]) == EXPONENTIAL:
            v = _exponential(tau, seg[P0], seg[P0 + 1], ds, seg[P0 + 3])
        else:
            v = _inverse_time(tau, seg[P0], seg[P0 + 1], ds, seg[P0 + 3], seg[P0 + 4])
        # first step of the next plateau, then nudged so the floor decides exactly as
        # the closed form does at every step
        stop = int(math.ceil((level + 1.0) * ds + origin - first))
        stop = min(max(stop, i + 1), i1)
        while stop > i + 1 and math.floor((first + stop - 1 - origin) / ds) != level:
            stop -= 1
        while stop < i1 and math.floor((first + stop - origin) / ds) == level:
            stop += 1
        plateau = out_row[i:stop]
        for j in range(plateau.shape[0]):
            plateau[j] = v
        i = stop


@njit(cache=True)
def _fill_arithmetic(seg, first, i0, i1, out_row):
    """Primitives whose closed form needs no ``pow``/``cos`` for these parameters, in a
    loop LLVM vectorises: a line (polynomial of power 1, no cycle), inverse time of power
    1 or 1/2, 1 − sqrt. The same float operations as
    ``primitive`` (x**1 == x and 1**y == 1 exactly, so the same numbers), except that
    x**0.5 becomes sqrt(x), within an ulp of libm's pow (two after the division)."""
    kind = int(seg[KIND])
    origin = seg[ORIGIN]
    p0 = seg[P0]
    p1 = seg[P0 + 1]
    p2 = seg[P0 + 2]
    p3 = seg[P0 + 3]
    p4 = seg[P0 + 4]
    span = out_row[i0:i1]
    start = first + i0
    if kind == POLYNOMIAL:
        for j in range(span.shape[0]):
            tau = min((start + j) - origin, p1)
            span[j] = (p0 - p3) * (1.0 - tau / p1) + p3
    elif kind == INVERSE_TIME:
        if p4 == 1.0:
            for j in range(span.shape[0]):
                span[j] = p0 / (1.0 + p1 * (((start + j) - origin) / p2))
        else:
            for j in range(span.shape[0]):
                span[j] = p0 / math.sqrt(1.0 + p1 * (((start + j) - origin) / p2))
    else:  # ONE_MINUS_POWER with power 1/2
        for j in range(span.shape[0]):
            tau = min((start + j) - origin, p1)
            span[j] = p3 + (p0 - p3) * (1.0 - math.sqrt(tau / p1))


@njit(cache=True)
def _fill_cyclic(seg, first, i0, i1, out_row):
    """The triangle wave of ``triangular`` and ``triangular2`` (no per-step gamma),
    cycle by cycle: the cycle's amplitude p4^(cycle − 1) once (``pow``), the steps of the
    cycle in a vectorised loop of the closed form's own float operations."""
    origin = seg[ORIGIN]
    p0 = seg[P0]
    p1 = seg[P0 + 1]
    total = seg[P0 + 2] + seg[P0 + 3]
    ratio = seg[P0 + 2] / total
    i = i0
    while i < i1:
        cycle = math.floor(1.0 + ((first + i) - origin) / total)
        amplitude = seg[P0 + 4] ** (cycle - 1.0)
        # the cycle's last step, nudged so the floor decides exactly as the closed form does
        stop = int(math.ceil(cycle * total + origin - first))
        stop = min(max(stop, i + 1), i1)
        while stop > i + 1 and math.floor(1.0 + ((first + (stop - 1)) - origin) / total) != cycle:
            stop -= 1
        while stop < i1 and math.floor(1.0 + ((first + stop) - origin) / total) == cycle:
            stop += 1
        span = out_row[i:stop]
        start = first + i
        for j in range(span.shape[0]):
            u = ((start + j) - origin) / total
            x = 1.0 + u - math.floor(1.0 + u)
            scale = x / ratio if x <= ratio else (x - 1.0) / (ratio - 1.0)
            span[j] = p0 + (p1 - p0) * scale * amplitude
        i = stop


@njit(cache=True)
def _is_arithmetic(seg):
    kind = int(seg[KIND])
    if kind == POLYNOMIAL:
        return seg[P0 + 2] == 1.0 and seg[P0 + 4] == 0.0
    if kind == INVERSE_TIME:
        return seg[P0 + 3] == 0.0 and (seg[P0 + 4] == 1.0 or seg[P0 + 4] == 0.5)
    if kind == ONE_MINUS_POWER:
        return seg[P0 + 2] == 0.5
    return False


@njit(cache=True)
def _fill_cosine_span(origin, shift, lr, T, end, first, i0, i1, out_row):
    """The cosine end + (lr − end)(1 + cos(π·min(τ, T)/T))/2 with τ = (t − origin) − shift
    at t = first + i, i in [i0, i1), into a float64 row (rotated where the smooth part
    has at least 3·REANCHOR steps).

    Past T it is the constant end. Up to 0.9·T each block of REANCHOR steps takes cos
    and sin of its first angle from libm (the anchor) and rotates them by the block
    offsets, cos(a + jδ) = cos a·cos jδ − sin a·sin jδ, whose cos jδ and sin jδ (libm,
    once per segment) are kept in the first two blocks of the row until those are
    written last: a vectorised loop with no libm call per step, within a few 2^-53 of
    the cosine (absolute), so within ~2e-14 relative of the closed form (``cos_pi``) while
    1 + cos ≥ 1 + cos(0.9π). The last tenth, where 1 + cos cancels, is the closed form.
    """
    # smooth part [i0, iT): tau <= T, decided exactly as primitive decides its clamp
    iT = int(math.floor(T + shift + origin - first)) + 1
    iT = min(max(iT, i0), i1)
    while iT > i0 and ((first + (iT - 1)) - origin) - shift > T:
        iT -= 1
    while iT < i1 and not (((first + iT) - origin) - shift > T):
        iT += 1
    if iT < i1:
        tail = out_row[iT:i1]
        v = cosine_at(((first + iT) - origin) - shift, lr, T, end)
        for j in range(tail.shape[0]):
            tail[j] = v
    # the rotation covers angles up to 0.9π; beyond, 1 + cos is small and the closed
    # form's own rounding there is what callers compare with, so it is evaluated as is
    iR = min(iT, max(i0, int(math.floor(ROTATE_UP_TO * T + shift + origin - first)) + 1))
    for i in range(iR, iT):
        out_row[i] = cosine_at(((first + i) - origin) - shift, lr, T, end)
    if iR - i0 < 3 * REANCHOR:
        for i in range(i0, iR):
            out_row[i] = cosine_at(((first + i) - origin) - shift, lr, T, end)
        return
    cos_step = out_row[i0 : i0 + REANCHOR]
    sin_step = out_row[i0 + REANCHOR : i0 + 2 * REANCHOR]
    for j in range(REANCHOR):
        angle = math.pi * j / T
        cos_step[j] = math.cos(angle)
        sin_step[j] = math.sin(angle)
    half = (lr - end) / 2.0
    i = i0 + 2 * REANCHOR
    while i < iR:
        stop = min(i + REANCHOR, iR)
        block = out_row[i:stop]
        angle = math.pi * (((first + i) - origin) - shift) / T
        c = math.cos(angle)
        s = math.sin(angle)
        for j in range(block.shape[0]):
            block[j] = end + half * (1.0 + (c * cos_step[j] - s * sin_step[j]))
        i = stop
    # the first block (over cos jδ, read before written at each j), then the second by the closed form
    angle = math.pi * (((first + i0) - origin) - shift) / T
    c = math.cos(angle)
    s = math.sin(angle)
    for j in range(REANCHOR):
        cos_step[j] = end + half * (1.0 + (c * cos_step[j] - s * sin_step[j]))
    for i in range(i0 + REANCHOR, i0 + 2 * REANCHOR):
        out_row[i] = cosine_at(((first + i) - origin) - shift, lr, T, end)


@njit(cache=True)
def _fill_cosine(seg, first, i0, i1, out_row):
    """A COSINE segment (float64 rows): ``_fill_cosine_span`` from its origin."""
    _fill_cosine_span(seg[ORIGIN], 0.0, seg[P0], seg[P0 + 1], seg[P0 + 2], first, i0, i1, out_row)


@njit(cache=True)
def _fill_cosine_restarts(seg, first, i0, i1, out_row):
    """A COSINE_RESTARTS segment (float64 rows), cycle by cycle: the cycle found in closed
    form once (and its last step nudged so it is decided exactly as the closed form
    decides each step), its steps a ``_fill_cosine_span`` shifted to the cycle start,
    the closed form's own operations (cur = tau − start)."""
    origin = seg[ORIGIN]
    T0 = seg[P0 + 1]
    mult = seg[P0 + 2]
    i = i0
    while i < i1:
        tau = (first + i) - origin
        cur, Ti, k = _cosine_restart_cycle(tau, T0, mult)
        shift = k * T0 if mult == 1.0 else T0 * (mult**k - 1.0) / (mult - 1.0)
        stop = int(math.ceil(shift + Ti + origin - first))
        stop = min(max(stop, i + 1), i1)
        while stop > i + 1 and _cosine_restart_cycle((first + (stop - 1)) - origin, T0, mult)[2] != k:
            stop -= 1
        while stop < i1 and _cosine_restart_cycle((first + stop) - origin, T0, mult)[2] == k:
            stop += 1
        # the cycle's peak: exactly lr * decay**k when min_lr's share does not decay
        end = seg[P0 + 3]
        peak = scaled(seg[P0], seg[P0 + 4] ** k)
        if seg[P0 + 5] != 1.0:
            peak = end + (peak - scaled(end, seg[P0 + 5] ** k))
        _fill_cosine_span(origin, shift, peak, Ti, end, first, i, stop, out_row)
        i = stop


@njit(cache=True)
def _fill_tabulated(segs, seg, first, i0, i1, out_row):
    """A TABULATED segment at t = first + i, i in [i0, i1): its values copied in order from
    its data rows (no division a step), the last value held after them."""
    n = int(seg[P0 + 1])
    i = i0
    while i < i1:
        index = int(math.floor((first + i) - seg[ORIGIN]))
        if index >= n - 1:
            last = _table_value(segs, seg, n - 1)
            for j in range(i, i1):
                out_row[j] = last
            return
        if index < 0:
            out_row[i] = _table_value(segs, seg, index)
            i += 1
            continue
        stop = min(i1, i + (n - 1 - index))
        data_row = int(seg[P0]) + index // VALUES_PER_ROW
        column = P0 + index % VALUES_PER_ROW
        for j in range(i, stop):
            out_row[j] = segs[data_row, column]
            column += 1
            if column == P0 + VALUES_PER_ROW:
                column = P0
                data_row += 1
        i = stop


@njit(cache=True)
def _fill_row(table, row, first, out_row):
    """Rates at steps first, first + 1, ... for one schedule, written into ``out_row``.

    Constants and staircase plateaus are filled; a smooth exponential is a product
    re-anchored to the closed form every REANCHOR steps (``_fill_exponential``), a
    cosine a rotation re-anchored likewise (``_fill_cosine``, float64 rows), lines
    and square roots (``_fill_arithmetic``) and triangle waves (``_fill_cyclic``)
    vectorised loops, tables copies (``_fill_tabulated``); other primitives (and
    products) are their closed form per step.
    """
    n = out_row.shape[0]
    nseg = table.shape[1]
    segs = table[row]
    for k in range(nseg):
        seg = segs[k]
        a = seg[START]
        if not a < math.inf:  # padding (+inf) or side rows (NaN): no segments after
            break
        b = segs[k + 1, START] if k + 1 < nseg else math.inf
        if not b < math.inf:
            b = math.inf
        # steps [lo, hi) of the output fall in this segment (the last of equal starts wins)
        lo = max(a - first, 0.0)
        hi = min(b - first, float(n))
        if hi <= lo:
            continue
        i0 = int(math.ceil(lo))
        i1 = int(math.ceil(hi))
        kind = int(seg[KIND])
        if kind == CONSTANT:
            level = out_row[i0:i1]
            v = seg[P0]
            for i in range(level.shape[0]):
                level[i] = v
        elif (kind == EXPONENTIAL or kind == INVERSE_TIME) and seg[P0 + 3] != 0.0:
            _fill_staircase(seg, first, i0, i1, out_row)
        elif kind == EXPONENTIAL:
            _fill_exponential(seg, first, i0, i1, out_row)
        elif _is_arithmetic(seg):
            _fill_arithmetic(seg, first, i0, i1, out_row)
        elif kind == CYCLIC and seg[P0 + 5] == 1.0:
            _fill_cyclic(seg, first, i0, i1, out_row)
        elif kind == COSINE and out_row.itemsize == 8:
            _fill_cosine(seg, first, i0, i1, out_row)
        elif kind == COSINE_RESTARTS and out_row.itemsize == 8:
            _fill_cosine_restarts(seg, first, i0, i1, out_row)
        elif kind == TABULATED:
            _fill_tabulated(segs, seg, first, i0, i1, out_row)
        else:
            for i in range(i0, i1):
                out_row[i] = segment_rate(table, row, k, first + i)


# The entry kernels' bodies, compiled per output dtype by schedule_tables (not here:
# importing this module compiles nothing).


def eval_points_kernel(table, rows, steps, out):
    """out[i] = lr_at(table, rows[i], steps[i]): arbitrary (row, step) pairs, any order,
    in parallel blocks of POINTS_BLOCK."""
    n = out.shape[0]
    blocks = (n + POINTS_BLOCK - 1) // POINTS_BLOCK
    for b in prange(blocks):
        _eval_points(table, rows, steps, out, b * POINTS_BLOCK, min(n, (b + 1) * POINTS_BLOCK))


def rate_at_kernel(table, t):
    """lr_at(table, 0, t): one scalar schedule at one step, on the calling thread (what a
    scalar ``s(t)`` and an LR scheduler's step ask for: no arrays, no thread pool)."""
    return lr_at(table, np.int64(0), t)


def fill_table_kernel(table, first, out):
    """out[r, i] = rate of schedule r at step first + i, rows in parallel."""
    for r in prange(out.shape[0]):
        _fill_row(table, r, first, out[r])
