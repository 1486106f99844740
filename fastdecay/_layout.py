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
