"""The packed segment table: the one representation of a schedule every kernel reads.

A schedule lowers to a float64 array of shape ``batch_shape + (n_segments, WIDTH)``.
Kernels see it reshaped to ``(n_rows, n_segments, WIDTH)``. One row is one schedule
of the batch; one segment is one row of ``WIDTH`` numbers::

    [start, origin, kind, p0, p1, p2, p3, p4, p5]

meaning "for ``start <= t < start of the next segment`` the rate is primitive
``kind`` with parameters ``p`` evaluated at ``tau = t - origin``". Segments of a
row are sorted by ``start``; the first starts at 0; unused trailing segments
(rows of a stack padded to the longest member) have ``start = +inf``. When several
segments share a start, the last one wins. ``origin`` may be fractional
(one-cycle's phase boundary is ``pct_start * total_steps - 1``, as torch has it).

Primitives (``tau = t - origin``; ``e = tau / decay_steps``, floored when
``staircase`` is 1):

==================  ==============================================  ==============================================
kind                parameters p0 .. p5                             rate
==================  ==============================================  ==============================================
CONSTANT            lr                                              lr
EXPONENTIAL         lr, gamma, decay_steps, staircase               lr * gamma ** e
INVERSE_TIME        lr, k, decay_steps, staircase, power            lr / (1 + k * e) ** power
POLYNOMIAL          lr, T, power, end, cycle                        (lr - end) * (1 - min(tau, T') / T') ** power + end,
                                                                    T' = T, or with cycle T * max(1, ceil(tau / T))
COSINE              lr, T, end                                      end + (lr - end) * (1 + cos(pi * min(tau, T) / T)) / 2
COSINE_RESTARTS     lr, T0, mult, end, decay, end_decay             end + (lr * decay**i - end * end_decay**i) * (1 + cos(pi
                                                                    * x)) / 2 in cycle i (length T0 * mult**i, found in
                                                                    closed form), x the fraction of the cycle done
CYCLIC              base, peak, up, down, cycle_scale, iter_gamma   torch CyclicLR: base + (peak - base) * triangle(tau)
                                                                    * cycle_scale ** (cycle - 1) * iter_gamma ** tau
ONE_MINUS_POWER     lr, T, power, end                               end + (lr - end) * (1 - (min(tau, T) / T) ** power)
COSINE_POWER        lr, T, end, half_waves, exponent                end + (lr - end) * ((1 + cos(pi * half_waves *
                                                                    min(tau, T) / T)) / 2) ** exponent
TABULATED           first data row, n                               v[min(max(floor(tau), 0), n - 1)]: the values v
                                                                    held in side rows (below), the last held after them
PRODUCT             first factor row, n_factors                     the product of the n_factors factor rows' rates at t
==================  ==============================================  ==============================================

Side rows. A TABULATED or PRODUCT segment points (by row index, stored as a float) at
side rows of the same schedule row, which sit after its segments and have ``start =
NaN``: ``segment_of`` stops at them as it stops at the ``+inf`` padding (``NaN <= t``
is false), so they are never a segment of their own. A data row (kind DATA) holds
VALUES_PER_ROW table values in columns p0 .. p5: value i of a table starting at data
row d is at row ``d + i // VALUES_PER_ROW``, column ``P0 + i % VALUES_PER_ROW``. A
factor row is a segment row of any primitive but PRODUCT (its own origin and
parameters; a TABULATED factor points at data rows in turn). Composing tables keeps
these indices right: the packing helpers of ``fastdecay.schedules`` move side rows
with their schedule and renumber every pointer (``P0`` of TABULATED and PRODUCT rows).

A product ``a * b`` is one segment list: the union of both lists' segment starts, and
on each piece one PRODUCT segment whose factors are the primitives of ``a`` and ``b``
there (a factor that is itself a product contributes its factors: products flatten).
Pieces whose factors are all constants fold into a CONSTANT segment, and constants
times one exponential or inverse time fold into that primitive's lr, so a scaled
step schedule is still a step schedule to the kernels.

Drops (``drop_ratio(table, row, t)``, what the momentum ``on_drop`` options act on):
for t >= 1 let ``j`` and ``k`` be the segments holding t − 1 and t, ``before`` and
``now`` the rates there. No fall (``now >= before``, or ``before <= 0``) is no drop
(ratio 1). Inside one segment (``j == k``) a fall is a drop only where a staircase
primitive (EXPONENTIAL or INVERSE_TIME with staircase 1) moves to its next plateau.
Across a boundary (``j != k``) the fall is a drop unless the pieces meet: with
``carried_on`` = segment j at t and ``carried_back`` = segment k at t − 1 (a CONSTANT
or staircase segment carried as its level, i.e. ``before`` resp. ``now``; a NaN carried
value likewise), and ``own_step`` = max(|carried_on − before|, |now − carried_back|),
the pieces meet when |carried_on − now| <= own_step or |carried_back − before| <=
own_step. A drop returns now / before. So multistep, piecewise and joins of levels
drop; one-cycle's phase change, warmup's end and joined lines that meet do not.

Everything above is written twice, deliberately and only here: in Numba
(``fastdecay/_cpu/schedule.py``) and in CUDA C++ (``kernels/schedule.cuh``); both
are tested against the plain-NumPy closed forms in ``fastdecay.reference``.
"""

import numpy as np

WIDTH = 9

# columns
START = 0
ORIGIN = 1
KIND = 2
P0 = 3

# primitive kinds (stored as float64 in column KIND)
CONSTANT = 0
EXPONENTIAL = 1
INVERSE_TIME = 2
POLYNOMIAL = 3
COSINE = 4
COSINE_RESTARTS = 5
CYCLIC = 6
ONE_MINUS_POWER = 7
TABULATED = 8
PRODUCT = 9
COSINE_POWER = 11

# kind of a side row holding table values (never a segment: see "Side rows")
DATA = 10
VALUES_PER_ROW = WIDTH - P0

KIND_NAMES = {
    CONSTANT: "constant",
    EXPONENTIAL: "exponential",
    INVERSE_TIME: "inverse_time",
    POLYNOMIAL: "polynomial",
    COSINE: "cosine",
    COSINE_RESTARTS: "cosine_restarts",
    CYCLIC: "cyclic",
    ONE_MINUS_POWER: "one_minus_power",
    TABULATED: "tabulated",
    PRODUCT: "product",
    COSINE_POWER: "cosine_power",
}


def is_constant_zero(table):
    """Whether every row of a ``(rows, segments, WIDTH)`` table is the constant 0 (a
    momentum of 0 throughout: the momentum rules then run as plain gradient descent)."""
    if table.shape[1] != 1:
        return False
    if table.shape[0] == 1:  # (one row, the usual momentum: its two numbers, without arrays)
        return bool(table[0, 0, KIND] == CONSTANT and table[0, 0, P0] == 0.0)
    return bool((table[:, 0, KIND] == CONSTANT).all() and (table[:, 0, P0] == 0.0).all())


# What a primitive's parameters p0 .. p5 may be, as every factory makes them (a table from
# elsewhere, a checkpoint's or ``fd.Schedule``'s, is held to it: ``table_problem``): ">= 0" a
# rate, a factor or a power; "> 0" a length; "flag" 0 or 1; ">= 1" a cycle's growth or a cyclic
# schedule's half cycle; ">= -1" inverse time's power; "" any finite number (unused). Every
# parameter is finite.
_PARAMETERS = {
    CONSTANT: (">= 0", "", "", "", "", ""),
    EXPONENTIAL: (">= 0", ">= 0", "> 0", "flag", "", ""),
    INVERSE_TIME: (">= 0", ">= 0", "> 0", "flag", ">= -1", ""),  # (power -1: constant_shrinkage's lr * (1 + k e))
    POLYNOMIAL: (">= 0", "> 0", ">= 0", ">= 0", "flag", ""),
    COSINE: (">= 0", "> 0", ">= 0", "", "", ""),
    COSINE_RESTARTS: (">= 0", "> 0", ">= 1", ">= 0", ">= 0", ">= 0"),
    CYCLIC: (">= 0", ">= 0", ">= 1", ">= 1", ">= 0", ">= 0"),  # (its half cycles: whole steps or more)
    ONE_MINUS_POWER: (">= 0", "> 0", ">= 0", ">= 0", "", ""),
    COSINE_POWER: (">= 0", "> 0", ">= 0", ">= 0", ">= 0", ""),
    TABULATED: ("", "", "", "", "", ""),  # (its pointer and count: checked as pointers)
    PRODUCT: ("", "", "", "", "", ""),
    DATA: (">= 0", ">= 0", ">= 0", ">= 0", ">= 0", ">= 0"),  # table values: rates
}
_HOLDS = {">= 0": lambda x: x >= 0.0, "> 0": lambda x: x > 0.0, ">= 1": lambda x: x >= 1.0, ">= -1": lambda x: x >= -1.0,
          "flag": lambda x: (x == 0.0) | (x == 1.0)}


def table_problem(table):
    """What makes ``table`` (``(rows, segments, WIDTH)``) other than a table the factories
    make, in words (the first row and segment found), or None: a segment's kind that is no
    primitive; a first segment that does not start at 0, starts that fall; a parameter that is
    not finite or not of its kind (a negative rate or factor, a length that is not positive,
    a staircase or cycle flag that is not 0 or 1); a TABULATED or PRODUCT segment (or factor)
    whose rows are not its own side rows of the right kind (the kernels follow these pointers
    without a check). NumPy over the whole table, a few passes (a check of what the kernels
    will read; the factories' tables pass it by construction)."""
    rows, segments, width = table.shape
    if width != WIDTH or segments == 0:
        return f"a table of rows of {WIDTH} numbers with at least one segment, got shape {table.shape}"
    if rows == 0:
        return None
    start, kind = table[..., START], table[..., KIND]
    side = np.isnan(start)
    used = ~side & (start != np.inf)  # segments (the +inf padding is never read)

    def row_of(mask):
        """The first (row, segment) where ``mask`` holds."""
        return np.argwhere(mask)[0]

    def where(r, k):
        return f"row {r}, segment {k}" if rows > 1 else f"segment {k}"

    bad = ~(start[:, 0] == 0.0)
    if bad.any():
        r = int(np.argmax(bad))
        return f"the first segment of every row must start at 0, got {float(start[r, 0])!r} ({where(r, 0)})"
    # a row's segments come first: the kernels stop at its first padding or side row
    prefix = np.logical_and.accumulate(used, axis=1)
    if (used & ~prefix).any():
        r, k = row_of(used & ~prefix)
        return (f"a segment after a padding segment (start inf) or a side row (start nan) is never read, got a start "
                f"of {float(start[r, k])!r} ({where(r, k)})")
    # starts of a row's segments never fall
    falls = prefix[:, 1:] & (start[:, 1:] < start[:, :-1])
    if falls.any():
        r, k = row_of(falls)
        return (f"segment starts must not fall, got {float(start[r, k + 1])!r} after {float(start[r, k])!r} "
                f"({where(r, k + 1)})")
    # every kind read: a primitive in a segment; a primitive but PRODUCT, or DATA, in a side row
    primitive = np.isin(kind, list(KIND_NAMES))
    factor = side & primitive & (kind != PRODUCT)
    data = side & (kind == DATA)
    if (used & ~primitive).any():
        r, k = row_of(used & ~primitive)
        return f"kind {float(kind[r, k])!r} is not a primitive's code ({where(r, k)})"
    if (side & ~factor & ~data).any():
        r, k = row_of(side & ~factor & ~data)
        return (f"a side row must hold a table's values (kind {DATA}) or a product's factor (a primitive but "
                f"{PRODUCT}), got kind {float(kind[r, k])!r} ({where(r, k)})")
    read = used | side
    origin = table[..., ORIGIN]
    bad = read & ~(np.abs(origin) <= 2.0**53)  # (a step's range; NaN and inf refused)
    if bad.any():
        r, k = row_of(bad)
        return f"the origin must be a finite step within 2**53, got {float(origin[r, k])!r} ({where(r, k)})"
    params = table[..., P0:]
    bad = read[..., None] & ~np.isfinite(params)
    if bad.any():
        r, k, j = np.argwhere(bad)[0]
        return f"parameter p{j} must be finite, got {float(params[r, k, j])!r} ({where(r, k)})"
    for code, rules in _PARAMETERS.items():
        of_kind = read & (kind == code)
        if not of_kind.any():
            continue
        for j, rule in enumerate(rules):
            if rule and not _HOLDS[rule](params[..., j][of_kind]).all():
                r, k = row_of(of_kind & ~_HOLDS[rule](params[..., j]))
                name = "table value" if code == DATA else f"parameter p{j} of kind {KIND_NAMES[code]}"
                return f"{name} must be {rule}, got {float(params[r, k, j])!r} ({where(r, k)})"
    # pointers: a TABULATED segment or factor at its data rows, a PRODUCT segment at its factor rows
    for code, count_of, target, what in ((TABULATED, lambda n: np.ceil(n / VALUES_PER_ROW), data, "data"),
                                         (PRODUCT, lambda n: n, factor, "factor")):
        r, k = np.nonzero(read & (kind == code))
        if r.size == 0:
            continue
        first, n = params[r, k, 0], params[r, k, 1]
        whole = (first == np.floor(first)) & (n == np.floor(n)) & (n >= 1.0) & (first >= 0.0)
        count = np.where(whole, count_of(n), 0.0)
        inside = whole & (first + count <= segments)
        begin = np.where(inside, first, 0.0).astype(np.int64)
        stop = begin + np.where(inside, count, 0.0).astype(np.int64)
        runs = np.concatenate([np.zeros((rows, 1), np.int64), np.cumsum(target, axis=1)], axis=1)
        fine = inside & (runs[r, stop] - runs[r, begin] == stop - begin)
        if not fine.all():
            i = int(np.argmin(fine))
            return (f"a {KIND_NAMES[code]} segment must point at {what} rows among its own row's side rows, got "
                    f"first row {float(first[i])!r} and count {float(n[i])!r} ({where(int(r[i]), int(k[i]))})")
    return None
