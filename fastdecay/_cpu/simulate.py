"""Numba kernel of the batched quadratic simulations (``fastdecay.simulate``).

One trajectory minimises f(w) = 1/2 sum_k lam_k w_k^2 over ``d`` coordinates;
the batch is ``n`` trajectories stored row-major as flat arrays of ``n * d``
elements (trajectory i owns elements i*d .. i*d + d - 1). The kernel runs
``prange`` over **tiles**: under shared rates without recording, where every
element takes the same update apart from the others, runs of ``TILE_ELEMENTS``
consecutive elements (a tile may start inside a trajectory, so one trajectory of
many coordinates is shared by the threads); elsewhere runs of whole trajectories
(``TILE_ELEMENTS // d`` of them, at least one); either way a fixed number of
elements, whatever the thread count. A recording run under shared rates whose
trajectories are longer than a tile runs its unrecorded steps in element tiles
and each recorded step trajectory by trajectory (``_recorded_element_tiles``).
Inside a tile the time loop is outside and the lanes (elements) inside, so a
tile's state stays in L1 across steps and the inner loop is a contiguous loop
that LLVM vectorizes. Under shared
rates a tile's steps run in one call (``_shared_tile_steps``): each step is a
row of ``step_scalars``, a few scalar operations and the vector loop, with no
call that takes an array inside the step loop (a call would count references
on the arrays every thread shares, atomically, twice a step). Without noise,
steps run in blocks of ``rules.STEP_BLOCK`` (four) a pass over the tile, under
shared rates and under per-trajectory exponential rates alike: each element's
state (and its rate) stays in registers across the block, so the loop is bound
by its arithmetic rather than by L1 loads and stores. A block holds no first
step, no recorded step and no anchor of the rates; each element gets the same
operations in the same order as one step a pass, hence the same bits.

The engine names no update rule: every update goes through the per-rule interface
of ``rules`` (section (d): ``simulate_shared_steps``, ``simulate_per_trajectory_lr``,
``simulate_generic_step``, each an if-chain on the rule code calling the rule's own
loops or branches, and the table column ``SIM_ON_DROP``),
whose loops call ``rules.sgd_element`` / ``adam_element`` / ``lion_element``: the same
rules the fused updates use, not a copy. What the engine and those loops share (the
step-scalar columns, a lane's gradient and noise draws, the recording tallies) is
``lanes``.

Rates. The learning rate and the weight decay each come either **shared**
(one schedule for the whole batch: its per-step values, computed once per
chunk by ``shared_step_scalars`` into ``step_scalars``) or **per trajectory**
(``rows[i]`` is the table row of trajectory i and ``state[i]`` its current
rate). A per-trajectory row that is a plain exponential or a constant has
``ratio[i]`` = its per-step factor and advances by one multiplication a step,
re-anchored to the closed form at every multiple of ``SIM_REANCHOR`` (global
steps, so the result does not depend on chunking); any other row (NaN ratio)
is read in closed form again only at the step it may next change at, kept after
the rates (``state[n + i]``: a step schedule's next plateau, the next step for a
cyclic schedule), step schedules with a memo of their powers after that, and a trajectory
whose row is the same bits as the one before's reads its rate (``_advance_rates``,
``share_equal_rows``). A rate inside a cosine, a line or a constant segment (a cosine
grid, a warmup before a cosine, a linear decay) is computed at every step by a vector
loop from the segment's fields, kept after the ratios (``ratio[n:]``, which the kernels
write as lanes enter segments); its next read is the segment's end. Where trajectories
outnumber the distinct rows of a learning-rate grid (a few schedules over many
curvatures), the rates kernel reads them by **rate classes** instead: rows of the same bits
form a class (``rate_classes``), whose rate ``class_rates`` advances once a step by the
same code (the same bits), and each trajectory takes its class's from a table of the
chunk's steps (``lr_table`` of width 1). Where the classes hold 64 elements or more on
average (trajectories times coordinates; at one coordinate 192 where most rows advance by a
ratio, or with noise), ``fastdecay.simulate`` lays the trajectories out class by class
instead (``group_bounds``, ``regroup``: a trajectory's coordinates move together) and
``simulate_groups`` runs each class's stretch as a shared schedule (the shared-rate element
tiles at the class's step scalars, ``group_step_scalars``), then puts each trajectory's
weights back in its place; with noise each element draws its trajectory's normals (laid out
otherwise than class by class, from a table of the trajectory at each place, a tile at a time).
A recording grid of 32 elements a class or more runs so too (``_grouped_recorded_chunk``: each
class's stretch in tiles of whole trajectories, each trajectory recorded into its own row,
``record_row``), and so does a recording run under shared rates, as one class.

Recording. With ``every > 0`` the kernel writes, for each recorded step
t = j * every in the chunk, the loss 1/2 sum lam w_t^2, the displacement
||w_t - w_{t-1}||_2 and the rate eta_t (``lr_at``, the closed form) into column j of the
``rec_*`` arrays (float64 accumulation, rounded once). Step 0 is recorded by
the chunk that starts at 0 (displacement 0).

Noise. With ``noise > 0`` the gradient of coordinate k of trajectory i at step
t is lam_k w_k + noise * xi, xi = ``philox.normal(seed, offset + i, t, k)``.
A tile draws the normals of all its lanes (elements) for four steps at once
with ``philox.fill_normal_quads`` (vector loops; steps 4q .. 4q + 3 share a
Philox counter) into its thread's float32 rows of ``noise_scratch``, then the
update loops read them: the noisy runs use the same vector loops as the
noiseless ones, with ``sigma * z[j]`` added to the gradient (z[j] widened
exactly in float64 runs). The noiseless
kernel is a separate compilation (``noise_scratch`` is ``None`` there, and
every noise term is pruned at compile time).

Three kernels a (dtype, noise), by what a run needs (``kernel_path``): a run under
shared rates without recording (the usual first call: one schedule, the final weights)
takes ``_elementwise_chunk``, which holds only the element tiles' loops; a run of one
coordinate with a learning-rate schedule a trajectory and nothing else per trajectory,
without recording (a grid of schedules), takes ``_rates_chunk``, which holds only the
per-trajectory vector loops; every other run takes ``_simulate_chunk``, which holds every
path and runs the others' runs too, tile by tile, with the same bits. They are one
function made three times with the path a constant of the closure (``_chunk_kernel``),
so Numba drops the other paths' code before compiling: a first call of either of the
first two kinds compiles in about half the time of the whole kernel or less. (A recording run
under shared rates, or of a grid grouped by class, takes ``simulate_groups``' recording kernel
instead; a recording run under shared rates whose trajectories are longer than a tile,
``_recorded_element_tiles``.)

The call shape, shared with the GPU twin (``fastdecay._gpu.simulate``), is
documented at ``_simulate_chunk``. Kernels never allocate and never validate;
``fastdecay.simulate`` has checked and prepared every argument.
"""

import math

import numpy as np
import numba
from numba import float32, float64, int64, njit, prange, types, uint64, void

from . import compiled_at_first_call, parallel
from .lanes import (LR, MOM, N_SCALARS, SCALE, WD, draw_quad, draws, has_lanes, lane_slice, record_row,  # noqa: F401
                    step_draws, tally)
from .rules import (ON_DROP_KEEP, RUN_FALSE, RUN_TRUE, SIM_ON_DROP, STEP_BLOCK, buffer_scale_at, simulate_generic_step,
                    simulate_per_trajectory_block, simulate_per_trajectory_lr, simulate_shared_steps)
from .._layout import (CONSTANT, COSINE, EXPONENTIAL, KIND, ORIGIN, P0, POLYNOMIAL, PRODUCT, START, TABULATED,
                       VALUES_PER_ROW)
from .._rules import CODES as OPTIMIZER_CODES  # noqa: F401 (public name -> code, from the one table)
from .schedule import (TABLE, class_lane_rate, cosine_at, exponent_at, lone_staircase, lr_at, next_change,
                       one_segment, polynomial_at, primitive, rate_inlined, scaled, segment_of)

# Per-trajectory exponential rates advance by one multiplication a step and
# return to the closed form at every multiple of this many (global) steps:
# between anchors at most SIM_REANCHOR - 1 roundings, a relative drift below
# 1023 * 2**-53 < 1.2e-13 (typically ~sqrt(1023) * 2**-53). Anchors cost a pow
# per trajectory, so they are rarer than in ``schedule.fill_table``.
SIM_REANCHOR = 1024

# elements per tile: the state of a tile (weights and curvature: 16 KB in float64;
# with a buffer 24 KB) stays inside L1 across the whole time loop (1,024 rather
# than 512: half the step prologues; any tile size gives the same bits)
TILE_ELEMENTS = 1024
# ... as the kernels pass it to the step loops: a NumPy integer, not the literal 1024 (Numba compiles
# a function called with a literal argument once more, for that constant: the step loops twice)
TILE = np.int64(TILE_ELEMENTS)

# the kernel's parallel loop runs over blocks of consecutive tiles: at least MIN_BLOCKS
# (as many threads as can share the work), else blocks of TILES_PER_BLOCK tiles; a block
# of tiles under shared rates is one call (a call costs reference counting on the arrays
# every thread shares: atomic operations on one cache line that the threads contend for)
MIN_BLOCKS = 64
TILES_PER_BLOCK = 16

RO_INT64 = types.Array(int64, 1, "C", readonly=True)
# ``rules.simulate_shared_steps``'s ``drawn`` where no draws are kept: a bool of NumPy's, not the
# literal False (a literal argument compiles the step loops a second time, for that constant)
NOT_DRAWN = np.bool_(False)
RO_SCALARS = types.Array(float64, 2, "C", readonly=True)


@njit(cache=True)
def _is_all_multiplicative(ratio, i0, i1):
    for i in range(i0, i1):
        if not ratio[i] == ratio[i]:  # NaN: closed form every step
            return False
    return True


@njit(cache=True, inline="always")
def _anchor(table, row, t):
    """The closed-form rate of ``row`` at step ``t``; exactly lr at the origin of a
    one-segment exponential (no pow for gamma**0). (The table read by index, not through a
    view of the row: a view in a ``prange`` loop counts references atomically, on a counter
    both threads share: ``prepare_rates`` on 1e6 exponentials took 1.7-2.2x the time of a copy
    reading by index so, bench/RESULTS.md "The kernels tuned on AVX-512, checked on a Zen 3 VM".
    Inlined for the same reason: a call that takes the table counts references on it too.)"""
    if table[row, 0, KIND] == EXPONENTIAL and t == table[row, 0, ORIGIN] and one_segment(table, row):
        return table[row, 0, P0]
    return lr_at(table, row, t)


# Segments whose rate a vector loop computes at every step (``_advance_rates``), from fields kept
# after the ratios: a lane's (code, origin, lr, T, end), code 0 for a lane that it leaves alone.
VECTOR_CONSTANT, VECTOR_LINE, VECTOR_COSINE = 1.0, 2.0, 3.0
VECTOR_FIELDS = 5


@njit(cache=True, inline="always")
def vector_code(table, row, k):
    """The vector loop's code of segment k of ``row``: a constant, a line (a polynomial of power
    1 without cycles: a linear warmup or decay) or a cosine; 0 for any other. (By index, as
    ``_anchor``.)"""
    kind = int(table[row, k, KIND])
    if kind == COSINE:
        return VECTOR_COSINE
    if kind == POLYNOMIAL and table[row, k, P0 + 2] == 1.0 and table[row, k, P0 + 4] == 0.0:
        return VECTOR_LINE
    return VECTOR_CONSTANT if kind == CONSTANT else 0.0


@njit(cache=True, inline="always")
def _enter_segment(table, row, t, fields, n, i):
    """Where the segment of ``row`` holding step t has a ``vector_code``: its fields for lane i
    (``fields`` the ratios' array, lane i's at n + i, 2n + i, ...) and the step the segment
    ends at (the next one's start; inf for the last), else -1 (the lane's code set to 0)."""
    k = segment_of(table, row, t)
    code = vector_code(table, row, k)
    fields[n + i] = code
    if code == 0.0:
        return -1.0
    fields[2 * n + i] = table[row, k, ORIGIN]
    fields[3 * n + i] = table[row, k, P0]
    fields[4 * n + i] = table[row, k, P0 + 1]
    fields[5 * n + i] = table[row, k, P0 + 3] if code == VECTOR_LINE else table[row, k, P0 + 2]  # the end rate
    end = table[row, k + 1, START] if k + 1 < table.shape[1] else math.inf
    return end if end == end else math.inf  # (NaN: a side row, not a segment)


@njit(cache=True, inline="always")
def _next_change(table, rows, ratio, i, t):
    """The step at which trajectory i's rate is next read in closed form, from step ``t``:
    never (inf) for a rate that advances by its ratio; where ``ratio`` holds the vector loop's
    fields and t lies in a segment with a ``vector_code``, that segment's end (the segment
    entered, ``_enter_segment``); else ``next_change`` of its row. (Inlined, as ``_anchor``.)"""
    if ratio[i] == ratio[i]:
        return math.inf
    row = rows[i]
    n = rows.shape[0]
    if ratio.shape[0] > n:
        ends = _enter_segment(table, row, t, ratio, n, i)
        if ends >= 0.0:
            return ends
    return next_change(int(table[row, 0, KIND]), table[row, 0, P0 + 3], table[row, 0, P0 + 2], table[row, 0, ORIGIN],
                       one_segment(table, row), t)


@njit(cache=True, error_model="numpy")
def _advance_rates(table, rows, ratio, state, i0, i1, t, all_multiplicative):
    """state[i] = rate of trajectory i at step t, for i in [i0, i1). A rate in closed form
    is read again only from the step state[n + i] it may next change at (``_next_change``:
    a step schedule's plateau costs a comparison a step), a one-segment row's by its formula.
    A rate read there in a segment with a ``vector_code`` (a cosine, a line, a constant) enters
    it (``_enter_segment``): from then to the segment's end a vector loop of its own computes it
    at every step, from the segment's fields kept after the ratios (in an array that the loop
    does not write, and not gathered from the table's rows, or it would not vectorize).

    Where ``state`` holds 5n (``prepare_rates``), the staircase exponentials' powers
    gamma ** e are kept in a memo at state[2n + 3 i0: 2n + 3 i1], the tile's own (no other
    thread writes it): slots of (gamma, e, power), as many as the largest power of two
    within i1 - i0, a key found by its slot or computed (a grid's trajectories share a
    few (gamma, e), and the power is most of the cost of a change: ``pow``, ~15 ns). (The
    numpy error model: a division with no check for zero, which a vector loop cannot hold;
    the vector loop divides by a lane's T for every formula, T = 0 in lanes whose result it
    drops.)"""
    tf = float(t)
    if t == 0:
        return  # the caller set state to the rate at step 0 (``prepare_rates``)
    n = rows.shape[0]
    if t % SIM_REANCHOR == 0:
        for i in range(i0, i1):
            state[i] = _anchor(table, rows[i], tf)
            state[n + i] = _next_change(table, rows, ratio, i, tf)
        return
    # slices indexed from 0: the loops vectorize
    st = state[i0:i1]
    ra = ratio[i0:i1]
    if all_multiplicative:
        for i in range(st.shape[0]):
            st[i] *= ra[i]
        return
    for i in range(st.shape[0]):
        r = ra[i]
        st[i] = st[i] * r if r == r else st[i]
    due = state[n + i0:n + i1]
    if ratio.shape[0] > n:
        code, origin = ratio[n + i0:n + i1], ratio[2 * n + i0:2 * n + i1]
        lr, T, end = ratio[3 * n + i0:3 * n + i1], ratio[4 * n + i0:4 * n + i1], ratio[5 * n + i0:5 * n + i1]
        for i in range(st.shape[0]):
            # every kind's formula, one taken: ``lr_at``'s bits, with no branch
            c, tau = code[i], tf - origin[i]
            cosine = cosine_at(tau, lr[i], T[i], end[i])
            line = polynomial_at(tau, lr[i], T[i], 1.0, end[i], 0.0)
            v = cosine if c == VECTOR_COSINE else (line if c == VECTOR_LINE else lr[i])
            st[i] = v if c > 0.0 else st[i]
    waiting = 0  # lanes read in closed form this step (a vector count: the scalar loop below
    for i in range(due.shape[0]):  # runs only where there are any, as a step after the vector
        waiting += 1 if tf >= due[i] else 0  # loop's lanes have entered their segments)
    if waiting == 0:
        return
    memo = state[2 * n + 3 * i0:2 * n + 3 * i1]
    mask = 0  # slots - 1: a power of two, at most the tile's entries (a mask, not a division)
    while 2 * (mask + 1) <= memo.shape[0] // 3:
        mask = 2 * mask + 1
    for i in range(due.shape[0]):
        if not tf >= due[i]:
            continue
        row = rows[i0 + i]
        if i > 0 and rows[i0 + i - 1] == row:
            # the trajectory before follows the same row (``share_equal_rows``): read this step
            st[i], due[i] = st[i - 1], due[i - 1]
            if ratio.shape[0] > n:
                for f in range(1, VECTOR_FIELDS + 1):
                    ratio[f * n + i0 + i] = ratio[f * n + i0 + i - 1]
            continue
        if ratio.shape[0] > n:
            ends = _enter_segment(table, row, tf, ratio, n, i0 + i)
            if ends >= 0.0:
                st[i], due[i] = lr_at(table, row, tf), ends  # (the vector loop's bits)
                continue
        # the table's fields read here: a call that takes the table costs more than the formula
        kind = int(table[row, 0, KIND])
        alone = one_segment(table, row)
        if not alone or kind == PRODUCT or kind == TABULATED:
            st[i] = lr_at(table, row, tf)
            due[i] = tf + 1.0
            continue
        # ``lr_at`` of a one-segment row (a step schedule, a cosine, ...) by its fields
        origin, lr = table[row, 0, ORIGIN], table[row, 0, P0]
        p1, p2, p3 = table[row, 0, P0 + 1], table[row, 0, P0 + 2], table[row, 0, P0 + 3]
        tau = tf - origin
        e = exponent_at(tau, p2, p3) if kind == EXPONENTIAL and p3 != 0.0 and memo.shape[0] else -1.0
        if 0.0 <= e < 2.0**31 and 0.0 < p1 < 2.0**20:
            # a step schedule (``_exponential``: lr * gamma ** e), the power from the memo; the
            # slot mixes e (an odd multiplier) with gamma to 1/4096 (bounds keep both ints small)
            j = 3 * ((int(e) * 40503 + int(p1 * 4096.0)) & mask)
            if not (memo[j] == p1 and memo[j + 1] == e):
                memo[j], memo[j + 1], memo[j + 2] = p1, e, p1**e
            st[i] = scaled(lr, memo[j + 2])
        else:
            st[i] = primitive(kind, tau, lr, p1, p2, p3, table[row, 0, P0 + 4], table[row, 0, P0 + 5])
        due[i] = next_change(kind, p3, p2, origin, alone, tf)


@njit(cache=True)
def _record_initial_point(w, lam, d, i0, i1, lr_table, lr_rows, per_lr, rec_loss, rec_disp, rec_lr, rec_rows):
    """Step 0 of trajectories i0 .. i1 - 1 (recorded once a run, by the chunk that starts at
    step 0, into row ``record_row(rec_rows, i)``): the loss at w_0, displacement 0, the rate at
    step 0."""
    # (a closed form: once, and once for consecutive trajectories of one row)
    row = -1 if per_lr else 0
    rate = 0.0 if per_lr else lr_at(lr_table, np.int64(0), 0.0)
    for i in range(i0, i1):
        loss = 0.0
        for k in range(d):
            loss += np.float64(lam[i * d + k]) * np.float64(w[i * d + k]) ** 2  # (float() keeps a float32)
        r = record_row(rec_rows, i)
        rec_loss[r, 0] = 0.5 * loss
        rec_disp[r, 0] = 0.0
        if per_lr and lr_rows[i] != row:
            row = lr_rows[i]
            rate = lr_at(lr_table, row, 0.0)
        rec_lr[r, 0] = rate


@njit(cache=True)
def _record_before(w, rec_disp, i0, i1, rec_j, rec_rows):
    """d == 1 recording on the fast path: park w_{t} in the displacement slot (row
    ``record_row(rec_rows, i)``)."""
    for i in range(i0, i1):
        rec_disp[record_row(rec_rows, i), rec_j] = w[i]


@njit(cache=True)
def _record_after(w, lam, rec_disp, rec_loss, i0, i1, rec_j, rec_rows):
    """... and turn it into |w_{t+1} - w_t| with the loss, by the generic path's arithmetic."""
    dt = w.dtype.type
    for i in range(i0, i1):
        r = record_row(rec_rows, i)
        dd, ll = tally(lam[i], rec_disp[r, rec_j], w[i])
        rec_disp[r, rec_j] = dt(math.sqrt(0.0 + dd))
        rec_loss[r, rec_j] = dt(0.5 * (0.0 + ll))


RO_UINT64 = types.Array(uint64, 1, "C", readonly=True)


def _signature(dt, noisy):
    state = types.Array(dt, 1, "C")
    rec = types.Array(dt, 2, "C")
    scratch = (types.Array(float32, 3, "C"), RO_UINT64, RO_UINT64) if noisy else (types.none,) * 3
    return void(
        state, state, state, types.Array(dt, 1, "C", readonly=True), int64, int64,   # w, buf, sq, lam, d, opt
        TABLE, RO_INT64, float64[::1], float64[::1],                                # lr source
        TABLE, RO_INT64, float64[::1], float64[::1],                                # wd source
        TABLE, RO_INT64, float64[::1], float64[::1],                                # momentum source
        RO_SCALARS, float64, float64, int64,                                        # step_scalars, options
        float64, uint64, uint64,                                                    # noise, seed, offset
        int64, int64, int64, rec, rec, rec,                                         # steps, recording
        *scratch,                                                                   # noise scratch, lanes
    )


def _recorded_signature(dt, noisy):
    """``_recorded_element_tiles``'s argument types (as ``_signature``'s, its subset)."""
    state = types.Array(dt, 1, "C")
    rec = types.Array(dt, 2, "C")
    scratch, lanes = (types.Array(float32, 3, "C"), RO_UINT64) if noisy else (types.none, types.none)
    return void(
        state, state, state, types.Array(dt, 1, "C", readonly=True), int64, int64,   # w, buf, sq, lam, d, opt
        TABLE, RO_INT64, float64[::1], float64[::1], float64[::1], float64[::1],  # lr source, wd and mom states
        RO_SCALARS, float64, float64, int64,                                        # step_scalars, options
        scratch, uint64, uint64, lanes, lanes, dt,                                  # noise
        int64, int64, int64, rec, rec, rec,                                         # steps, recording
    )


_KERNELS = {}


def tile_lanes(d):
    """Elements in the largest tile of a run with ``d`` coordinates: a tile of whole
    trajectories (``max(1, TILE_ELEMENTS // d) * d``) or of TILE_ELEMENTS elements."""
    return max(TILE_ELEMENTS, d)


def noise_lanes(d):
    """(lane_trajectory, lane_coordinate): lane j of a tile is coordinate j % d of the
    tile's trajectory j // d (uint64, read-only), for TILE_ELEMENTS lanes more than the
    largest tile: a tile of the shared-rate loops may start inside a trajectory, and
    ``lanes.tile_span`` reads the tables from its first element's coordinate on."""
    lanes = np.arange(tile_lanes(d) + TILE_ELEMENTS, dtype=np.uint64)
    return _readonly(lanes // np.uint64(d)), _readonly(lanes % np.uint64(d))


def _readonly(a):
    a.flags.writeable = False
    return a


def simulate_chunk(w, buf, sq, lam, d, opt, lr_table, lr_rows, lr_ratio, lr_state, wd_table, wd_rows, wd_ratio,
                   wd_state, mom_table, mom_rows, mom_ratio, mom_state, step_scalars, beta2, eps, on_drop, noise, seed,
                   offset, first_step, n_steps, every, rec_loss, rec_disp, rec_lr):
    """Run the kernel for ``w``'s dtype (see ``_simulate_chunk``). Each (dtype, noisy,
    path) kernel is compiled (or loaded from Numba's cache) on first use, so a float64-only,
    noiseless user of one schedule never waits for the other builds. A noisy call gets its
    scratch here: four float32 rows of draws per thread (steps 4q .. 4q + 3), one tile's
    lanes each."""
    noisy = noise != 0.0
    dt = float32 if w.dtype == np.float32 else float64
    if noisy:
        scratch = np.empty((numba.config.NUMBA_NUM_THREADS, 4, tile_lanes(d)), dtype=np.float32)
        scratch = (scratch, *noise_lanes(d))
    else:
        scratch = (None, None, None)
    if every > 0 and d > TILE_ELEMENTS and not (lr_rows.shape[0] or wd_rows.shape[0] or mom_rows.shape[0]):
        # recording trajectories longer than a tile under shared rates: a kernel of its own,
        # compiled only where it is used (it would add a third to the main kernel's compile)
        kernel = _KERNELS.get((w.dtype, noisy, "recorded"))
        if kernel is None:
            kernel = _KERNELS[w.dtype, noisy, "recorded"] = parallel.entry(
                njit(_recorded_signature(dt, noisy), parallel=True, cache=True)(_recorded_element_tiles))
        kernel(w, buf, sq, lam, d, opt, lr_table, lr_rows, lr_ratio, lr_state, wd_state, mom_state, step_scalars,
               beta2, eps, on_drop, scratch[0], np.uint64(seed), np.uint64(offset), scratch[1], scratch[2],
               w.dtype.type(noise), first_step, n_steps, every, rec_loss, rec_disp, rec_lr)
        return
    path = kernel_path(d, opt, lr_rows, lr_ratio, wd_rows, mom_rows, on_drop, every)
    if lr_table.shape[2] == 1 and path != "rates":
        raise RuntimeError(f"rate classes are read by the rates kernel only, not by the {path!r} one")
    kernel = _KERNELS.get((w.dtype, noisy, path))
    if kernel is None:
        kernel = _KERNELS[w.dtype, noisy, path] = parallel.entry(
            njit(_signature(dt, noisy), parallel=True, cache=True)(_CHUNK_KERNELS[path]))
    kernel(w, buf, sq, lam, d, opt, lr_table, lr_rows, lr_ratio, lr_state, wd_table, wd_rows, wd_ratio, wd_state,
           mom_table, mom_rows, mom_ratio, mom_state, step_scalars, beta2, eps, on_drop, noise, seed, offset,
           first_step, n_steps, every, rec_loss, rec_disp, rec_lr, *scratch)


def kernel_path(d, opt, lr_rows, lr_ratio, wd_rows, mom_rows, on_drop, every):
    """The kernel a chunk runs (``_CHUNK_KERNELS``): "elementwise" with shared learning
    rate, weight decay and momentum and no recording (every element takes the same update
    apart from the others); "rates" with one coordinate, a learning rate a trajectory and
    nothing else per trajectory, no recording, and every tile on the per-trajectory vector
    loops (where the rule's buffer follows a drop of the rate, ``on_drop``, every rate a
    plain exponential or constant: a ratio a step); else "every"."""
    if every != 0 or wd_rows.shape[0] or mom_rows.shape[0]:
        return "every"
    if not lr_rows.shape[0]:
        return "elementwise"
    if d == 1 and (not SIM_ON_DROP[opt] or on_drop == ON_DROP_KEEP or not np.isnan(lr_ratio).any()):
        return "rates"
    return "every"


def _chunk_kernel(elementwise, rates):
    """``_elementwise_chunk`` (``elementwise``: the element tiles' loops alone),
    ``_rates_chunk`` (``rates``: the per-trajectory vector loops alone) or
    ``_simulate_chunk`` (neither: every path; it runs the others' runs too, in tiles of whole
    trajectories, with the same bits), for the runs ``kernel_path`` sends them. The path is a
    constant of the closure: Numba drops the branches a kernel never takes before it
    compiles (noiseless float64, alone: the elementwise kernel 8 s, the rates kernel 14 s, the
    whole 29-31 s)."""

    def _simulate_chunk(w, buf, sq, lam, d, opt,
                        lr_table, lr_rows, lr_ratio, lr_state,
                        wd_table, wd_rows, wd_ratio, wd_state,
                        mom_table, mom_rows, mom_ratio, mom_state,
                        step_scalars, beta2, eps, on_drop,
                        noise, seed, offset,
                        first_step, n_steps, every, rec_loss, rec_disp, rec_lr,
                        noise_scratch, lane_trajectory, lane_coordinate):
        """Advance every trajectory by the steps ``first_step .. first_step + n_steps - 1``.

        The call shape (the GPU twin takes the same arguments, as device arrays)::

            w, buf, sq     (n*d,) state in the run's dtype, updated in place: weights,
                           momentum buffer / Adam's exp_avg, Adam's exp_avg_sq
                           (buf, sq may be empty when the optimizer has no such state)
            lam            (n*d,) curvature, read-only;  d: coordinates per trajectory
            opt            optimizer code (OPTIMIZER_CODES); the momentum family always keeps a
                           buffer (a momentum that is the constant 0 runs as GD, the same bits)
            lr_table       (rows, segments, WIDTH) learning-rate schedules; in the rates kernel
                           on the CPU also (n_steps, classes, 1), the rates of rate classes a
                           step (``class_rates``): trajectory i's rate at step first_step + s is
                           scaled(lr_state[5n + i], lr_table[s, lr_rows[i], 0]) (its ratio
                           NaN; its state (6n,): the rates, written, then four rows a block
                           gathers them into, then the scales, read); (n_steps, classes, 2):
                           rising lines' classes, read by ``class_lane_rate`` (column 1 unread)
            lr_rows        (n,) table row of each trajectory (its class with rate classes), or
                           empty when shared
            lr_ratio       (n,) per-step factor of a plain exponential/constant row, NaN otherwise;
                           (6n,) with the vector loop's fields after it, which the CPU kernels
                           write (``_enter_segment``; the GPU reads the first n)
            lr_state       (2n,) or (5n,) current rate of each trajectory, then the CPU's step
                           each is next read at and memo (``_advance_rates``; the GPU reads
                           the first n), carried between chunks; the caller sets it at step
                           0 (``prepare_rates``)
            wd_*           the same four for the weight decay
            mom_*          the same four for the momentum (Adam's beta1), read at the step
                           like the rates
            step_scalars   (n_steps + 1, N_SCALARS) shared lr_t, wd_t, buffer scale and
                           momentum per step of the chunk (``shared_step_scalars``:
                           exponential rates by the same recurrence as per-trajectory ones)
            beta2, eps, on_drop (rules.ON_DROP_*), noise (sigma)
            seed, offset   Philox key and the global index of trajectory 0
            first_step, n_steps
            every          record every k-th step (0: no recording);
            rec_loss, rec_disp, rec_lr   (n, n_recorded) outputs (empty when every == 0)

        and, on the CPU only (``simulate_chunk`` makes them; all three None without noise):

            noise_scratch  (threads, 4, tile_lanes(d)) float32 draws of the four steps of a
                           Philox counter (4q .. 4q + 3) for each thread's current tile
            lane_trajectory, lane_coordinate   ``noise_lanes(d)``
        """
        n = lam.shape[0] // d
        per_lr = lr_rows.shape[0] != 0
        per_wd = wd_rows.shape[0] != 0
        per_mom = mom_rows.shape[0] != 0
        acts = SIM_ON_DROP[opt]  # on_drop acts on the rule's buffer
        # the vector loops: shared rates, or one coordinate with its own learning rate (and weight
        # decay, or a shared one), and a shared momentum
        fast_ok = (d == 1 or not per_lr) and not per_mom and (not per_wd or (d == 1 and per_lr))
        sigma = w.dtype.type(noise)
        # rate classes (``class_rates``): the rates kernel's only; two wide, rising lines' (``class_lane_rate``)
        classed = rates and (lr_table.shape[2] == 1 or lr_table.shape[2] == 2)
        rises = lr_table.shape[2] == 2
        # (recording trajectories longer than a tile under shared rates, d > TILE_ELEMENTS, is
        # ``_recorded_element_tiles``'s, which ``simulate_chunk`` calls instead; here it would
        # take whole-trajectory tiles, with the same bits)
        tile = max(1, TILE_ELEMENTS // d)
        # under shared rates without recording every element takes the same update, apart
        # from the others: the elementwise kernel's tiles of TILE_ELEMENTS elements, whatever d
        # (a tile may start inside a trajectory), so that one trajectory of many coordinates is
        # shared by the threads in tiles that stay in L1; elsewhere tiles of whole trajectories
        # (``elementwise``: the closure's constant)
        n_tiles = (n * d + TILE_ELEMENTS - 1) // TILE_ELEMENTS if elementwise else (n + tile - 1) // tile
        # blocks of consecutive tiles (the tiles, hence the bits, do not depend on the blocks);
        # under shared rates without recording a block's tiles run in one call
        n_blocks = min(n_tiles, max(MIN_BLOCKS, n_tiles // TILES_PER_BLOCK))
        for blk in prange(n_blocks):
            b_lo = blk * n_tiles // n_blocks
            b_hi = (blk + 1) * n_tiles // n_blocks
            if elementwise:
                # (TILE and np.int64(0), not literals: one compilation of the step loops serves every caller)
                simulate_shared_steps(opt, w, buf, sq, lam, TILE, b_lo, b_hi, d, step_scalars, first_step,
                                      np.int64(0), n_steps, NOT_DRAWN, beta2, eps, noise_scratch, seed, offset,
                                      lane_trajectory, lane_coordinate, sigma)
                continue
            for b in range(b_lo, b_hi):
                i0 = b * tile
                i1 = min(i0 + tile, n)
                zs = draws(noise_scratch, (i1 - i0) * d)
                lr_mult = _is_all_multiplicative(lr_ratio, i0, i1) if per_lr else True
                wd_mult = _is_all_multiplicative(wd_ratio, i0, i1) if per_wd else True
                mom_mult = _is_all_multiplicative(mom_ratio, i0, i1) if per_mom else True
                # momentum with per-trajectory drops needs a per-trajectory buffer scale: generic path
                fast_tile = fast_ok and (not per_lr or not acts or on_drop == 0 or lr_mult)
                # (``not rates`` first: the rates kernel never records, and Numba drops the branch
                # before typing it, with the recording functions it calls)
                if not rates and every > 0 and first_step == 0:
                    _record_initial_point(w, lam, d, i0, i1, lr_table, lr_rows, per_lr, rec_loss, rec_disp, rec_lr,
                                          None)
                if not rates and fast_tile and not per_lr:
                    # shared rates: the tile's steps in one call, the step loop around the vector loops
                    _shared_tile_steps(w, buf, sq, lam, b, tile, n, d, opt, first_step, n_steps, step_scalars, per_lr,
                                       per_wd, per_mom, lr_table, lr_rows, lr_ratio, lr_state, wd_state, mom_state, beta2,
                                       eps, on_drop, noise_scratch, seed, offset, lane_trajectory, lane_coordinate, sigma,
                                       every, rec_loss, rec_disp, rec_lr, None)
                    continue
                # the tile's elements as slices, made once a chunk (not once a step: a slice
                # costs reference counting on the array that every thread shares)
                e0, e1 = i0 * d, i1 * d
                w_t, buf_t, sq_t, lam_t = w[e0:e1], buf[e0:e1], sq[e0:e1], lam[e0:e1]
                lr_state_t, lr_ratio_t, wd_state_t = lr_state[i0:i1], lr_ratio[i0:i1], wd_state[i0:i1]
                # rate classes: the tile's classes, four arrays a block gathers its rates into and
                # the trajectories' scales (the classes' state after each trajectory's rate:
                # ``fastdecay.simulate._class_lanes``; unread slices elsewhere)
                lr_classes_t = lr_rows[i0:i1]
                lr_etas_t = (lr_state_t, lr_state_t, lr_state_t, lr_state_t)  # (unread without classes)
                lr_scales_t = lr_state_t
                lr_in_runs = False
                if classed:
                    lr_etas_t = (lr_state[n + i0:n + i1], lr_state[2 * n + i0:2 * n + i1],
                                 lr_state[3 * n + i0:3 * n + i1], lr_state[4 * n + i0:4 * n + i1])
                    lr_scales_t = lr_state[5 * n + i0:5 * n + i1]
                    lr_in_runs = _in_class_runs(lr_classes_t)
                s = np.int64(0)
                while s < n_steps:
                    t = first_step + s
                    if (fast_tile and per_lr and (lr_mult or classed) and not per_wd
                            and _plain_block(t, s, n_steps, every)
                            and simulate_per_trajectory_block(noise_scratch, opt, w_t, buf_t, sq_t, lam_t, lr_state_t,
                                                              lr_ratio_t, lr_table, lr_classes_t, lr_scales_t,
                                                              lr_etas_t, classed, lr_in_runs, step_scalars, s,
                                                              first_step, beta2, eps)):
                        s += STEP_BLOCK  # a noiseless block (a noisy kernel has no such code)
                        continue
                    record = every > 0 and (t + 1) % every == 0
                    rec_j = (t + 1) // every if every > 0 else 0
                    if s == 0 or t % 4 == 0:
                        draw_quad(zs, seed, offset + np.uint64(i0), lane_trajectory, lane_coordinate, t)
                    z = step_draws(zs, t)
                    # recording sums over a trajectory's coordinates: the generic loops
                    generic = not fast_tile or (record and d > 1)
                    # the fast loops advance an all-exponential tile's rates themselves
                    fused = per_lr and lr_mult and not generic and t % SIM_REANCHOR != 0
                    if per_lr and not fused:
                        if classed:
                            # rate classes (``class_rates``): each trajectory's from its class's (a
                            # loop here, not a call: a call counts references on the shared table)
                            for i in range(lr_state_t.shape[0]):
                                lr_state_t[i] = class_lane_rate(lr_scales_t[i], lr_table[s, lr_classes_t[i], 0],
                                                                rises)
                        else:
                            _advance_rates(lr_table, lr_rows, lr_ratio, lr_state, i0, i1, t, lr_mult)
                    if per_wd:
                        _advance_rates(wd_table, wd_rows, wd_ratio, wd_state, i0, i1, t, wd_mult)
                    if per_mom:
                        _advance_rates(mom_table, mom_rows, mom_ratio, mom_state, i0, i1, t, mom_mult)
                    eta = step_scalars[s, LR]
                    wd = step_scalars[s, WD]
                    scale = step_scalars[s, SCALE]
                    mom = step_scalars[s, MOM]  # the momentum, or Adam's beta1
                    if not rates and record and not generic:
                        _record_before(w, rec_disp, i0, i1, rec_j, None)
                    if generic and not rates:  # (never in the rates kernel: ``kernel_path``)
                        simulate_generic_step(w, buf, sq, lam, i0, i1, d, opt, t, eta, wd, scale, mom, per_lr, per_wd,
                                              per_mom, lr_table, lr_rows, lr_ratio, lr_state, wd_state, mom_state, beta2,
                                              eps, on_drop, z, sigma, record, rec_j, rec_loss, rec_disp, None)
                    else:
                        # a fast tile here has per-trajectory learning rates and d == 1
                        simulate_per_trajectory_lr(opt, w_t, buf_t, sq_t, lam_t, lr_state_t, lr_ratio_t, fused, wd,
                                                   wd_state_t, per_wd, mom, t, beta2, eps, z, sigma)
                    if not rates and record:
                        if not generic:
                            _record_after(w, lam, rec_disp, rec_loss, i0, i1, rec_j, None)
                        _record_rates(rec_lr, lr_table, lr_rows, per_lr, i0, i1, t, rec_j, None)
                    s += 1

    return _simulate_chunk


# path -> kernel, named for their cache files and profiles
_CHUNK_KERNELS = {"elementwise": _chunk_kernel(True, False), "rates": _chunk_kernel(False, True),
                  "every": _chunk_kernel(False, False)}
for _path, _kernel in _CHUNK_KERNELS.items():
    _kernel.__name__ = _kernel.__qualname__ = "_simulate_chunk" if _path == "every" else f"_{_path}_chunk"
_simulate_chunk, _elementwise_chunk, _rates_chunk = (_CHUNK_KERNELS[p] for p in ("every", "elementwise", "rates"))


def _recorded_element_tiles(w, buf, sq, lam, d, opt, lr_table, lr_rows, lr_ratio, lr_state, wd_state, mom_state,
                            step_scalars, beta2, eps, on_drop, noise_scratch, seed, offset, lane_trajectory,
                            lane_coordinate, sigma, first_step, n_steps, every, rec_loss, rec_disp, rec_lr):
    """The chunk of a recording run under shared rates whose trajectories are longer than
    a tile (d > TILE_ELEMENTS): the steps between recorded ones in tiles of TILE_ELEMENTS
    elements on every thread, as without recording; a recorded step trajectory by
    trajectory (``rules.simulate_generic_step``, whose sums over a trajectory's coordinates,
    in coordinate order, recording needs), as ``_shared_tile_steps`` runs it. The same bits,
    with a trajectory of many coordinates shared by the threads between its recorded steps."""
    n = lam.shape[0] // d
    size = n * d
    n_tiles = (size + TILE_ELEMENTS - 1) // TILE_ELEMENTS
    n_blocks = min(n_tiles, max(MIN_BLOCKS, n_tiles // TILES_PER_BLOCK))
    if first_step == 0:
        for i in prange(n):
            _record_initial_point(w, lam, d, i, i + 1, lr_table, lr_rows, RUN_FALSE, rec_loss, rec_disp, rec_lr,
                                  None)
    s = np.int64(0)
    while s < n_steps:
        stop = min(n_steps, s + every - 1 - (first_step + s) % every)  # steps s .. stop - 1: not recorded
        if stop > s:
            for blk in prange(n_blocks):
                simulate_shared_steps(opt, w, buf, sq, lam, TILE, blk * n_tiles // n_blocks,
                                      (blk + 1) * n_tiles // n_blocks, d, step_scalars, first_step, s, stop, NOT_DRAWN,
                                      beta2, eps, noise_scratch, seed, offset, lane_trajectory, lane_coordinate, sigma)
        if stop < n_steps:
            t = first_step + stop
            rec_j = (t + 1) // every
            for i in prange(n):
                zs = draws(noise_scratch, d)
                draw_quad(zs, seed, offset + np.uint64(i), lane_trajectory, lane_coordinate, t)
                simulate_generic_step(w, buf, sq, lam, i, i + 1, d, opt, t, step_scalars[stop, LR],
                                      step_scalars[stop, WD], step_scalars[stop, SCALE], step_scalars[stop, MOM],
                                      RUN_FALSE, RUN_FALSE, RUN_FALSE, lr_table, lr_rows, lr_ratio, lr_state, wd_state,
                                      mom_state, beta2, eps, on_drop, step_draws(zs, t), sigma, RUN_TRUE, rec_j,
                                      rec_loss, rec_disp, None)
                _record_rates(rec_lr, lr_table, lr_rows, RUN_FALSE, i, i + 1, t, rec_j, None)
            stop += 1
        s = stop


# a tile's classes are read a run of one class at a time (``rules._sgd_class_runs_block``, no
# gather) where they never decrease and their runs average this many lanes or more (shorter runs'
# reads and loops cost more than the gather)
CLASS_RUN_LANES = 32


@njit(inline="always")
def _in_class_runs(classes):
    """Whether ``classes`` never decrease and make runs of CLASS_RUN_LANES lanes or more on
    average (a pass without an early exit: it vectorizes, once a tile a chunk)."""
    falls = 0
    changes = 0
    for i in range(1, classes.shape[0]):
        falls += classes[i] < classes[i - 1]
        changes += classes[i] != classes[i - 1]
    return falls == 0 and (changes + 1) * CLASS_RUN_LANES <= classes.shape[0]


@njit(cache=True)
def _plain_block(t, s, n_steps, every):
    """Whether steps t .. t + STEP_BLOCK - 1 (chunk steps s ..) can run as one block of
    per-trajectory rates: inside the chunk, past step 0, none recorded, and no anchor of
    the rates among them (each advances by one multiplication)."""
    if t == 0 or s + STEP_BLOCK > n_steps:
        return False
    for q in range(STEP_BLOCK):
        if (t + q) % SIM_REANCHOR == 0 or (every > 0 and (t + q + 1) % every == 0):
            return False
    return True


@njit(cache=True)
def _record_rates(rec_lr, lr_table, lr_rows, per_lr, i0, i1, t, rec_j, rec_rows):
    """rec_lr[record_row(rec_rows, i), rec_j] = the learning rate of trajectory i after step t
    (the closed form; once for consecutive trajectories of one row: a sweep's copies, or a shared
    rate given as a copy a trajectory)."""
    tr = float(t + 1)
    if per_lr:
        row, rate = -1, 0.0
        for i in range(i0, i1):
            if lr_rows[i] != row:
                row = lr_rows[i]
                rate = rate_inlined(lr_table, row, tr)  # (a rate a lane: ``lr_at`` inlined)
            rec_lr[record_row(rec_rows, i), rec_j] = rate
    else:
        shared_lr = lr_at(lr_table, np.int64(0), tr)
        for i in range(i0, i1):
            rec_lr[record_row(rec_rows, i), rec_j] = shared_lr


@njit(cache=True)
def _shared_tile_steps(w, buf, sq, lam, b, tile, n, d, opt, first_step, n_steps, step_scalars, per_lr, per_wd,
                       per_mom, lr_table, lr_rows, lr_ratio, lr_state, wd_state, mom_state, beta2, eps, on_drop,
                       noise_scratch, seed, offset, lane_trajectory, lane_coordinate, sigma, every,
                       rec_loss, rec_disp, rec_lr, rec_rows):
    """The chunk's steps of tile b (trajectories b*tile .. min((b+1)*tile, n) - 1) under
    shared rates, recording every ``every`` steps (or none): the steps up to the next recorded one
    in one call of the rule's step loops (``rules.simulate_shared_steps``); a recorded step alone,
    between ``_record_before`` and ``_record_after`` (d == 1) or by ``rules.simulate_generic_step``,
    whose sums over a trajectory's coordinates recording needs (d > 1; the
    per-trajectory flags are all False here; ``every > 0``, true wherever a step is recorded, is
    ``record`` as a run-time flag: a literal True would compile ``simulate_generic_step`` a second
    time)."""
    i0 = b * tile
    i1 = min(i0 + tile, n)
    s = np.int64(0)
    while s < n_steps:
        # recorded steps: (t + 1) % every == 0; none with every == 0 (runs the elementwise
        # kernel takes: ``_simulate_chunk`` runs them too, tile by tile, with the same bits).
        # Past the chunk's first step this thread holds the tile's draws of the step before's
        # Philox counter (each call and recorded step draws the counters of its steps into the
        # same rows): a call that starts inside that counter does not draw it again
        stop = n_steps if every == 0 else min(n_steps, s + every - 1 - (first_step + s) % every)
        if stop > s:
            simulate_shared_steps(opt, w, buf, sq, lam, tile * d, b, b + 1, d, step_scalars, first_step, s, stop,
                                  s > 0, beta2, eps, noise_scratch, seed, offset, lane_trajectory, lane_coordinate,
                                  sigma)
        if stop < n_steps:
            t = first_step + stop
            rec_j = (t + 1) // every
            if d > 1:
                zs = draws(noise_scratch, (i1 - i0) * d)
                if stop == 0 or t % 4 == 0:
                    draw_quad(zs, seed, offset + np.uint64(i0), lane_trajectory, lane_coordinate, t)
                simulate_generic_step(w, buf, sq, lam, i0, i1, d, opt, t, step_scalars[stop, LR],
                                      step_scalars[stop, WD], step_scalars[stop, SCALE], step_scalars[stop, MOM],
                                      per_lr, per_wd, per_mom, lr_table, lr_rows, lr_ratio, lr_state, wd_state,
                                      mom_state, beta2, eps, on_drop, step_draws(zs, t), sigma, every > 0,
                                      rec_j, rec_loss, rec_disp, rec_rows)
            else:
                _record_before(w, rec_disp, i0, i1, rec_j, rec_rows)
                simulate_shared_steps(opt, w, buf, sq, lam, tile * d, b, b + 1, d, step_scalars, first_step, stop,
                                      stop + 1, stop > 0, beta2, eps, noise_scratch, seed, offset, lane_trajectory,
                                      lane_coordinate, sigma)
                _record_after(w, lam, rec_disp, rec_loss, i0, i1, rec_j, rec_rows)
            _record_rates(rec_lr, lr_table, lr_rows, per_lr, i0, i1, t, rec_j, rec_rows)
            stop += 1
        s = stop


@njit(cache=True, inline="always")
def _row_ratio(table, r):
    """Per-step factor of row r when it is one plain exponential (staircase off) or
    constant segment; NaN when it must be evaluated in closed form. (Inlined, as ``_anchor``.)"""
    if table.shape[1] > 1 and table[r, 1, START] != math.inf:
        return math.nan
    kind = table[r, 0, KIND]
    if kind == CONSTANT:
        return 1.0
    if kind == EXPONENTIAL and table[r, 0, P0] == 0.0:
        return 1.0  # a rate of 0 stays 0 (``scaled``), whatever its gamma
    if kind == EXPONENTIAL and table[r, 0, P0 + 3] == 0.0:
        gamma = table[r, 0, P0 + 1]
        steps = table[r, 0, P0 + 2]
        return gamma if steps == 1.0 else gamma ** (1.0 / steps)
    return math.nan


@njit(cache=True)
def _shared_rates(table, row, first_step, n, out, column):
    """out[s, column] = rate of ``row`` at first_step + s, by the very operations the
    per-trajectory path uses (anchor at multiples of SIM_REANCHOR, else one
    multiplication), so a shared schedule and a batch of copies agree bit for bit."""
    ratio = _row_ratio(table, row)
    if not ratio == ratio:
        for s in range(n):
            out[s, column] = lr_at(table, row, float(first_step + s))
        return
    t = first_step - first_step % SIM_REANCHOR
    v = _anchor(table, row, float(t))
    while t < first_step:
        t += 1
        v = _anchor(table, row, float(t)) if t % SIM_REANCHOR == 0 else v * ratio
    for s in range(n):
        t = first_step + s
        if s > 0:
            v = _anchor(table, row, float(t)) if t % SIM_REANCHOR == 0 else v * ratio
        out[s, column] = v


@compiled_at_first_call(void(TABLE, TABLE, TABLE, int64, int64, int64, float64[:, ::1]), cache=True)
def shared_step_scalars(lr_table, wd_table, mom_table, on_drop, first_step, n_steps, out):
    """out[s] = (lr, wd, buffer scale, momentum) of row 0 of each table at step
    first_step + s, for s in 0 .. n_steps (one more than the chunk)."""
    _shared_rates(lr_table, np.int64(0), first_step, n_steps + 1, out, np.int64(LR))
    _shared_rates(wd_table, np.int64(0), first_step, n_steps + 1, out, np.int64(WD))
    _shared_rates(mom_table, np.int64(0), first_step, n_steps + 1, out, np.int64(MOM))
    for s in range(n_steps + 1):
        out[s, SCALE] = buffer_scale_at(lr_table, np.int64(0), float(first_step + s), on_drop)


@compiled_at_first_call(void(TABLE, int64[::1]), cache=True)
def share_equal_rows(table, rows):
    """rows[i] = rows[i - 1] where the two rows of ``table`` are the same bits: a sweep gives
    each schedule to consecutive trajectories (one a curvature) as copies, whose rates
    ``_advance_rates`` then reads once a step for them all."""
    bits = table.view(np.int64)
    for i in range(1, rows.shape[0]):
        a, b = rows[i - 1], rows[i]
        if a == b:
            continue
        same = True
        for k in range(bits.shape[1]):
            for f in range(bits.shape[2]):
                if bits[a, k, f] != bits[b, k, f]:
                    same = False
                    break
            if not same:
                break
        if same:
            rows[i] = a


# Rate classes: where many trajectories follow a few distinct rows (a grid of schedules over
# curvatures), the kernels read each trajectory's learning rate from its class's rate at the step
# (``class_rates``, once a class) instead of advancing it lane by lane: a cosine's cos, a step
# schedule's drop, a warmup's line cost a class, not a trajectory, a step.
_HASH = np.uint64(0x9E3779B97F4A7C15)  # (2**64 / the golden ratio: an odd multiplier that mixes)
# rows of a table ``rate_classes`` looks at first: where every one of them advances by a ratio a
# step (an exponential grid, the cheapest per trajectory already), it looks no further
CLASS_SAMPLE = 1024


@njit(inline="always")
def _same_words(words, a, b, keep):
    """Whether rows a and b of ``words`` are the same bits in the words that ``keep`` keeps (a mask
    a word: all ones, compared; 0, not; every word read: no branch a word)."""
    diff = np.uint64(0)
    for f in range(words.shape[1]):
        diff |= (words[a, f] ^ words[b, f]) & keep[f]
    return diff == 0


@njit(inline="always")
def _mark_data_rows(table, r, k, reads):
    """Count a read of the data rows of row k of schedule row r, a TABULATED segment or factor."""
    first = int(table[r, k, P0])
    for j in range(first, min(first + (int(table[r, k, P0 + 1]) + VALUES_PER_ROW - 1) // VALUES_PER_ROW,
                              reads.shape[0])):
        reads[j] += 1


@njit(inline="always")
def _guessed_row(class_of_row, r, stride, by_turn):
    """The class the r-th row classed is guessed to be: that of the row ``stride`` before (the row
    as many classes before, or a period before) with ``by_turn``, else that of the row before.
    Rows of a grid laid out schedule by schedule, or its schedules in turn, are classed so, by a
    comparison with the class's first row, without a hash; the kernels try the guess that held
    last first, then the other. (The comparison is written out in each kernel's loop: an inlined
    function that compared and took the mask of words along ran 7-12x slower, its arrays' reference
    counts taken and given back each row.)"""
    return class_of_row[r - stride] if by_turn and r >= stride else class_of_row[r - 1]


@njit(inline="always")
def _hashed_class(words, row, first_rows, slots, keep):
    """(the class whose first row of ``words`` is row ``row``'s bits in the words ``keep`` keeps
    (``_same_words``), found by a hash of those words in ``slots``, an open-addressing table of
    classes, -1 where empty; or -1; the slot where it is, or where it would go)."""
    h = np.uint64(0)
    for f in range(words.shape[1]):  # (independent products: no chain of multiplies a word)
        h += (words[row, f] & keep[f]) * (np.uint64(2 * f + 1) * _HASH)
    h ^= h >> np.uint64(29)
    h *= _HASH
    mask = np.uint64(slots.shape[0] - 1)
    j = h >> np.uint64(32)
    while True:
        j &= mask
        k = slots[j]
        if k < 0 or _same_words(words, first_rows[k], row, keep):
            return k, j
        j += np.uint64(1)


@njit(inline="always")
def _unit_row(table, r, unit, u, reads):
    """Row u of ``unit`` = row r of ``table`` without its scale (``scaled_products``); returns the
    scale c, or 0.0 where row r is no scaled product (row u is then row r, but for its unread side
    rows). ``reads``: scratch, one entry a segment."""
    segments = table.shape[1]
    # (elements read by index: a view a segment cost four times the loop)
    for k in range(segments):
        for f in range(table.shape[2]):
            unit[u, k, f] = table[r, k, f]
    # how many times a pointer of the row reads each of its rows: a piece's factors but its
    # last, a TABULATED segment's or factor's data rows (the last factors are counted below)
    reads[:] = 0
    c = 0.0
    pieces = 0
    plain = True  # (no pointer into a pointer's rows beyond a TABULATED factor's data)
    for k in range(segments):
        if not math.isfinite(table[r, k, START]):
            continue  # (a side, factor or padding row)
        if table[r, k, KIND] == TABULATED:
            _mark_data_rows(table, r, k, reads)
            pieces = -1
            continue
        if table[r, k, KIND] != PRODUCT:
            pieces = -1
            continue
        first, factors = int(table[r, k, P0]), int(table[r, k, P0 + 1])
        for f in range(first, min(first + factors, segments)):
            if table[r, f, KIND] == TABULATED:
                _mark_data_rows(table, r, f, reads)
            elif table[r, f, KIND] == PRODUCT:
                plain = False
            if f < first + factors - 1:
                reads[f] += 1
        last = first + factors - 1
        if not (factors >= 2 and 0 <= last < segments and table[r, last, KIND] == CONSTANT
                and (pieces == 0 or table[r, last, P0] == c) and pieces >= 0):
            pieces = -1
            continue
        c = table[r, last, P0]
        pieces += 1
    if not plain:
        return 0.0
    scaled = pieces >= 1 and math.isfinite(c) and c != 0.0
    if scaled:
        for k in range(segments):
            if math.isfinite(table[r, k, START]):
                last = int(table[r, k, P0] + table[r, k, P0 + 1]) - 1
                if reads[last] != 0:
                    scaled = False  # (the row of c is read otherwise too)
    if scaled:
        for k in range(segments):
            if math.isfinite(table[r, k, START]):
                unit[u, k, P0 + 1] -= 1.0
                unit[u, int(unit[u, k, P0] + unit[u, k, P0 + 1]), P0] = 1.0
                reads[int(unit[u, k, P0] + unit[u, k, P0 + 1])] = 1  # (kept: 1, as above)
    else:  # (the pieces' last factors are read: counted as such)
        for k in range(segments):
            if math.isfinite(table[r, k, START]) and table[r, k, KIND] == PRODUCT:
                last = int(table[r, k, P0] + table[r, k, P0 + 1]) - 1
                if 0 <= last < segments:
                    reads[last] += 1
    for k in range(segments):
        if math.isnan(table[r, k, START]) and reads[k] == 0:
            for f in range(table.shape[2]):
                unit[u, k, f] = 0.0  # (a side row no pointer reads)
            unit[u, k, START] = math.nan
    return c if scaled else 0.0


@compiled_at_first_call(int64(TABLE, float64[:, :, ::1], float64[::1], int64[::1]), cache=True)
def scaled_products(table, unit, scales, reads):
    """For each row r of ``table``: where every piece of it (a segment with a finite start) is a
    product whose last factor is one constant c, the same bits on every piece, finite and not 0,
    and no pointer of the row reads that factor's row but as the last factor of its pieces
    (``fastdecay.simulate._product_shapes``), scales[r] = c and row r of ``unit`` (``table``'s
    shape, overwritten) is row r of ``table`` reading every factor but c (each piece's factor
    count one less; the rows of c, unread, set to 1, so that rows equal but for c are the same
    bits); else scales[r] = 1 and row r of ``unit`` is row r of ``table``. Either way the side
    rows no pointer reads (a product's factors carried along from a product it was made of)
    are zeros in ``unit``: rows that differ only there are the same bits. Returns how many rows
    are scaled products. ``reads``: scratch, one entry a segment."""
    count = 0
    for r in range(table.shape[0]):
        c = _unit_row(table, r, unit, r, reads)
        scales[r] = 1.0 if c == 0.0 else c
        count += c != 0.0
    return count


@njit(inline="always")
def _scale_mask(table, q, masks, k):
    """masks[k, w] = all ones at the words w of row q of ``table`` that hold its pieces' last
    factors' values (P0; q a scaled product: ``_unit_row``), else 0; returns the first of them."""
    segments, width = table.shape[1], table.shape[2]
    for w in range(masks.shape[1]):
        masks[k, w] = 0
    first = -1
    for j in range(segments):
        if math.isfinite(table[q, j, START]) and table[q, j, KIND] == PRODUCT:
            last = int(table[q, j, P0] + table[q, j, P0 + 1]) - 1
            masks[k, last * width + P0] = ~np.uint64(0)
            if first < 0:
                first = last * width + P0
    return first


@njit(inline="always")
def _alike_but_scale(words, q, r, masks, k, at):
    """Whether row r of ``words`` (a table's, a row each) is row q's bits but for the words of
    ``masks[k]`` (``_scale_mask`` of row q: its pieces' last factors' values), which all hold the
    bits of row r's word ``at``, the first of them (row r is then a scaled product whose row
    without its scale is row q's where that word is finite and not 0). Every word is compared,
    without a branch (the row is read whole either way), and no view of an array is made (each
    is a reference count taken and given back, atomically: most of a row's cost where it was)."""
    c_bits = words[r, at]
    diff = np.uint64(0)
    for w in range(words.shape[1]):
        diff |= words[r, w] ^ ((words[q, w] & ~masks[k, w]) | (c_bits & masks[k, w]))
    return diff == 0


@compiled_at_first_call(
        int64(TABLE, int64[::1], float64[:, :, ::1], int64[::1], int64[::1], float64[::1], int64[::1], int64[::1],
        int64[::1], uint64[:, ::1]), cache=True)
def scaled_product_classes(table, class_of_row, units, first_rows, sizes, scales, slots, reads, class_rows,
                           scale_masks):
    """``rate_classes`` of the rows of ``table`` without their scales, and the scales, without the
    table of those rows (``scaled_products`` writes one as large as ``table``; a grid's rows
    without their lr are mostly copies): class_of_row[r] = the class of row r, numbered in order
    of first appearance, units[c] = class c's row without its scale, first_rows[c] = c, sizes[c]
    its number of rows, scales[r] = row r's scale (1 where it is no scaled product). ``units``
    holds one row more than the classes it may take (the row being classed is made in the next
    free one). Returns how many classes, or -1 as soon as there would be more than that, or where
    no row is a scaled product. ``slots`` as ``rate_classes``'s; ``reads``: scratch, one entry a
    segment; ``class_rows``: scratch, three times as long as ``first_rows`` (each class's first
    row where it is a scaled product, else -1, then its last row, then the first word of its
    scale); ``scale_masks``: scratch, a row of a row's words for each class (``_scale_mask``),
    and one more (all ones: the mask ``_same_words`` compares the rows without their scale by).

    A row is first compared with the class of the row before, or of the row a period before (the
    distance from the last row hashed to a class it already had to that class's row before it;
    until then, as many as the classes), in ``table`` itself: that class's first row but for its
    scale (``_alike_but_scale``) has the same row without its scale, which then is not made
    (``_unit_row``: most of a row's cost)."""
    most = units.shape[0] - 1
    if most < 1:
        return -1
    last, at = first_rows.shape[0], 2 * first_rows.shape[0]  # (class k's last row: class_rows[last + k])
    words = units.view(np.uint64).reshape(units.shape[0], units.shape[1] * units.shape[2])
    keep = scale_masks[scale_masks.shape[0] - 1]
    keep[:] = ~np.uint64(0)
    bits = table.view(np.uint64).reshape(table.shape[0], table.shape[1] * table.shape[2])
    slots[:] = -1
    count = 0
    scaled = 0
    guess = False
    by_turn = False
    period = 0
    for r in range(table.shape[0]):
        if r > 0 and (guess or r % 64 == 0):
            stride = period if period > 0 else count
            c = 0.0
            for attempt in range(2):  # (the guess that held last first: ``_guessed_row``)
                k = _guessed_row(class_of_row, r, stride, by_turn)
                if class_rows[k] >= 0 and _alike_but_scale(bits, class_rows[k], r, scale_masks, k, class_rows[at + k]):
                    # (read after the comparison: a helper that returned it ran 30 % slower)
                    c = table[r, class_rows[at + k] // table.shape[2], class_rows[at + k] % table.shape[2]]
                    if math.isfinite(c) and c != 0.0:
                        break
                    c = 0.0
                by_turn = not by_turn
            if c != 0.0:
                guess = True
                class_of_row[r] = k
                class_rows[last + k] = r
                sizes[k] += 1
                scales[r] = c
                scaled += 1
                continue
        c = _unit_row(table, r, units, count, reads)  # (in the next free row: kept if it is a new class)
        scales[r] = 1.0 if c == 0.0 else c
        scaled += c != 0.0
        if r > 0 and (guess or r % 64 == 0):
            guess = True
            stride = period if period > 0 else count
            for attempt in range(2):
                k = _guessed_row(class_of_row, r, stride, by_turn)
                if _same_words(words, first_rows[k], count, keep):
                    break
                k = -1
                by_turn = not by_turn
            if k >= 0:
                class_of_row[r] = k
                class_rows[last + k] = r
                sizes[k] += 1
                continue
            guess = False
        k, j = _hashed_class(words, count, first_rows, slots, keep)
        if k < 0:
            if count == most:
                return -1
            slots[j] = count
            first_rows[count] = count
            class_rows[count] = r if c != 0.0 else -1
            if c != 0.0:
                class_rows[at + count] = _scale_mask(table, r, scale_masks, count)
            class_rows[last + count] = r
            sizes[count] = 1
            class_of_row[r] = count
            count += 1
        else:
            period = r - class_rows[last + k]
            class_of_row[r] = k
            class_rows[last + k] = r
            sizes[k] += 1
    return count if scaled else -1


@njit(inline="always")
def _word_classes(words, class_of_row, first_rows, sizes, slots, most, keep, taken_words, taken):
    """``rate_classes`` of the rows of ``words``, at most ``most`` classes (-1 past them). (The
    steps for one row are written out here and in ``scaled_product_classes``: the two loops
    calling one inlined function for them, which returned the count and the guesses' state, ran
    12x slower, 15.5 ms against 1.3 for 200,000 rows.)"""
    slots[:] = -1
    count = 0
    guess = False
    by_turn = False
    for r in range(words.shape[0]):
        for t in range(taken_words.shape[0]):  # (from the row's cache lines, read here anyway)
            taken[t, r] = words[r, taken_words[t]]
        if r > 0 and (guess or r % 64 == 0):
            guess = True
            for attempt in range(2):
                c = _guessed_row(class_of_row, r, count, by_turn)
                if _same_words(words, first_rows[c], r, keep):
                    break
                c = -1
                by_turn = not by_turn
            if c >= 0:
                class_of_row[r] = c
                sizes[c] += 1
                continue
            guess = False
        c, j = _hashed_class(words, r, first_rows, slots, keep)
        if c < 0:
            if count == most:
                return -1
            slots[j] = count
            first_rows[count] = r
            sizes[count] = 1
            class_of_row[r] = count
            count += 1
        else:
            class_of_row[r] = c
            sizes[c] += 1
    return count


@compiled_at_first_call(types.boolean(TABLE, types.Array(types.boolean, 1, "C")), cache=True)
def segments_like_first_row(table, one_kind):
    """Whether every row's segments start at row 0's steps (a padding segment's inf too; a NaN
    start is never equal), and ``one_kind[k]``: whether every row's segment k is of row 0's kind
    (for k < one_kind's length). One pass over the rows (``fastdecay.simulate._lr_phases``: a
    column read by NumPy touches every row's cache lines, and these were three such reads)."""
    rows, segments = table.shape[0], table.shape[1]
    kinds = one_kind.shape[0]
    one_kind[:] = True
    for r in range(rows):
        for k in range(segments):
            if table[r, k, START] != table[0, k, START]:
                return False
        for k in range(kinds):
            if table[r, k, KIND] != table[0, k, KIND]:
                one_kind[k] = False
    return True


@compiled_at_first_call(
        int64(TABLE, int64[::1], int64[::1], int64[::1], int64[::1], int64, types.Array(uint64, 1, "C", readonly=True),
        int64, int64[::1], float64[:, ::1]), cache=True)
def rate_classes(table, class_of_row, first_rows, sizes, slots, most_if_ratios, keep, segment, taken_words, taken):
    """class_of_row[r] = the class of row r of ``table``, the same number for rows of the same
    bits in the words ``keep`` keeps (a mask a word of a row, its segments' fields one after
    another: all ones, compared; 0, not: ``fastdecay.simulate._kept_words``; the first segment's
    lr left out for ``fastdecay.simulate._lr_shapes``, the lrs of a warmup's phases for
    ``_lr_phases``), numbered 0, 1, ... in order of first appearance, first_rows[c] = the first
    row of class c and sizes[c] its number of rows (``sizes`` as long as ``first_rows``); returns
    how many classes, or -1 where classes would not pay: as soon as there are more than
    ``first_rows`` holds, or than ``most_if_ratios`` where ``CLASS_SAMPLE`` rows spread over the
    table all advance by a ratio (``_row_ratio``: an exponential grid). ``slots``: an
    open-addressing table of a power-of-two length above twice ``first_rows``'s, overwritten (a
    slot holds a class, -1 where empty). A row is first compared with the class of the row before
    and of the row as many classes before (``_guessed_row``: a grid laid out schedule by
    schedule, or its schedules in turn, needs no hash), while those guesses hold (and at every
    64th row), then looked up by a hash of its words (``_hashed_class``). With ``segment`` >= 0
    the rows are compared by that segment's words alone (``keep`` as long as a segment: a phase
    of ``_lr_phases``, read without a copy of its segments); the sampled ratios are the whole
    rows'. taken[j, r] = word ``taken_words[j]`` of row r (of the compared words: a row's lrs left
    out, read from its cache lines here, where a column read apart touches every row's lines
    again), for every row where the classes are counted."""
    rows = table.shape[0]
    closed = False
    for j in range(min(rows, CLASS_SAMPLE)):
        r = j * rows // min(rows, CLASS_SAMPLE)
        ratio = _row_ratio(table, r)
        if not ratio == ratio:
            closed = True
            break
    most = first_rows.shape[0] if closed else min(first_rows.shape[0], most_if_ratios)
    if most < 1:
        return -1
    words = table.view(np.uint64).reshape(rows, table.shape[1] * table.shape[2])
    if segment < 0:
        return _word_classes(words, class_of_row, first_rows, sizes, slots, most, keep, taken_words,
                             taken.view(np.uint64))
    width = table.shape[2]  # (a view of the segment's words: compiled apart from the whole rows' loop)
    return _word_classes(words[:, segment * width:(segment + 1) * width], class_of_row, first_rows, sizes, slots,
                         most, keep, taken_words, taken.view(np.uint64))


@compiled_at_first_call(
        int64(types.Array(float64, 1, "C", readonly=True), int64[::1], int64[::1], int64[::1]), cache=True)
def distinct_values(values, index, first, slots):
    """index[i] = the number of values[i] among the distinct values (bits) of ``values``, numbered
    in order of first appearance, first[c] = where value c first appears; returns how many, or -1
    as soon as there are more than ``first`` holds. ``slots``: an open-addressing table of a
    power-of-two length above twice ``first``'s, overwritten. As ``rate_classes`` does with rows, a
    value is first compared with the one before's and the one as many distinct values before (a
    grid's values in turn, or each over consecutive members: no hash) while those guesses hold
    (and at every 64th value), then looked up by a hash of its bits."""
    bits = values.view(np.uint64)
    slots[:] = -1
    mask = np.uint64(slots.shape[0] - 1)
    count = 0
    guess = False
    for i in range(bits.shape[0]):
        if i > 0 and (guess or i % 64 == 0):
            guess = True
            c = index[i - 1]
            if bits[first[c]] == bits[i]:
                index[i] = c
                continue
            c = index[i - count] if i >= count else c
            if bits[first[c]] == bits[i]:
                index[i] = c
                continue
            guess = False
        h = bits[i] * _HASH
        h ^= h >> np.uint64(29)
        h *= _HASH
        j = h >> np.uint64(32)
        while True:
            j &= mask
            at = slots[j]
            if at < 0:
                if count == first.shape[0]:
                    return -1
                slots[j] = i
                first[count] = i
                index[i] = count
                count += 1
                break
            if bits[at] == bits[i]:
                index[i] = index[at]
                break
            j += np.uint64(1)
    return count


@parallel.entry
@compiled_at_first_call(
        void(TABLE, RO_INT64, float64[::1], float64[::1], int64, int64, float64[:, :, ::1]), parallel=True, cache=True)
def class_rates(table, rows, ratio, state, first_step, n_steps, out):
    """out[s, u, 0] = the learning rate of class u at step first_step + s, for s < n_steps: the
    rates of the classes' rows (``rows[u]``, with their ``ratio`` and ``state`` as
    ``prepare_rates`` makes them for trajectories) advanced by ``_advance_rates`` as the kernels
    advance a trajectory's, hence its bits; ``state`` carries them to the next chunk. The rates
    kernel reads ``out`` as a learning-rate table of width 1 (``_simulate_chunk``)."""
    u = rows.shape[0]
    n_tiles = (u + TILE_ELEMENTS - 1) // TILE_ELEMENTS
    for b in prange(n_tiles):
        i0 = b * TILE_ELEMENTS
        i1 = min(i0 + TILE_ELEMENTS, u)
        mult = _is_all_multiplicative(ratio, i0, i1)
        for s in range(n_steps):
            _advance_rates(table, rows, ratio, state, i0, i1, first_step + s, mult)
            for i in range(i0, i1):
                out[s, i, 0] = state[i]


# Rate classes run grouped: a class's trajectories need nothing of each other's, so the caller
# lays them out class by class (``group_bounds``, ``regroup``) and each class runs as a shared
# schedule (``_grouped_chunk``: the shared-rate tile loops on its stretch, at its own step
# scalars, ``group_step_scalars``): a rate a step for the whole class, read in registers, where
# the lanes gather one a trajectory a step. (With noise the draws follow each trajectory's index:
# laid out otherwise than class by class, each element's trajectory comes from a table.)
@compiled_at_first_call(types.boolean(RO_INT64, int64[::1]), cache=True)
def group_bounds(classes, bounds):
    """bounds[c] .. bounds[c + 1] - 1: the places of class c's trajectories laid out class by class,
    each class's in their order (``bounds``: one more than the classes). True where ``classes``
    never decrease: the trajectories are laid out so already (a sweep gives each schedule to
    consecutive trajectories)."""
    bounds[:] = 0
    in_order = True
    for i in range(classes.shape[0]):
        c = classes[i]
        bounds[c + 1] += 1
        if i > 0 and c < classes[i - 1]:
            in_order = False
    for c in range(1, bounds.shape[0]):
        bounds[c] += bounds[c - 1]
    return in_order


def _regroup(classes, bounds, d, source, out, to_groups):
    """Trajectory i of ``source`` (its ``d`` elements) to place bounds[c] + j of ``out``, the j-th
    trajectory of class c (``to_groups``: the layout of ``group_bounds``), else the reverse, place
    bounds[c] + j of ``source`` to trajectory i of ``out``. In the trajectories' order (read or
    written in sequence, the classes' places in as many streams: a gather class by class would
    read the trajectories' cache lines once a class). ``bounds`` is used as the classes' next
    places, and restored."""
    for i in range(classes.shape[0]):
        c = classes[i]
        p = bounds[c]
        to, of = (p, i) if to_groups else (i, p)
        if d == 1:
            out[to] = source[of]
        else:
            for k in range(d):  # (a loop, not a slice: a slice a trajectory costs more than its copy)
                out[to * d + k] = source[of * d + k]
        bounds[c] += 1
    for c in range(bounds.shape[0] - 1, 0, -1):  # (bounds[c] is now class c's end: bounds[c + 1])
        bounds[c] = bounds[c - 1]
    bounds[0] = 0


regroup = njit([void(RO_INT64, int64[::1], int64, types.Array(dt, 1, "C", readonly=True), types.Array(dt, 1, "C"),
                     types.boolean) for dt in (float64, float32, int64)], cache=True)(_regroup)


def group_items(bounds, d, recorded=False):
    """The parallel loop's items of ``_grouped_chunk``: (class, first tile, end tile) of runs of
    tiles of TILE_ELEMENTS elements inside each class's stretch (its trajectories' ``d`` elements
    each); with ``recorded``, for ``_grouped_recorded_chunk``, tiles of ``max(1, TILE_ELEMENTS //
    d)`` whole trajectories (a recorded step sums over a trajectory's coordinates). Runs of
    TILES_PER_BLOCK tiles, fewer where the tiles make fewer than MIN_BLOCKS runs (as the other
    kernels' blocks: every thread gets work on a small run too)."""
    sizes = np.diff(bounds)
    if recorded:
        tiles = -(-sizes // max(1, TILE_ELEMENTS // d))
    else:
        tiles = -(-sizes * d // TILE_ELEMENTS)
    per = max(1, min(TILES_PER_BLOCK, int(tiles.sum()) // MIN_BLOCKS))  # tiles a run
    runs = -(-tiles // per)  # runs a class
    items = np.empty((int(runs.sum()), 3), dtype=np.int64)
    items[:, 0] = np.repeat(np.arange(sizes.shape[0]), runs)
    # each item's rank inside its class, times ``per``: its first tile
    items[:, 1] = (np.arange(items.shape[0]) - np.repeat(np.cumsum(runs) - runs, runs)) * per
    items[:, 2] = np.minimum(items[:, 1] + per, tiles[items[:, 0]])
    return _readonly(items)


@compiled_at_first_call(
        void(types.Array(float64, 3, "C", readonly=True), RO_SCALARS, TABLE, RO_INT64, TABLE, RO_INT64, TABLE, RO_INT64,
        int64, int64, int64, float64[:, :, ::1]), cache=True)
def group_step_scalars(rates, step_scalars, lr_table, rows, wd_table, wd_rows, mom_table, mom_rows, on_drop,
                       first_step, n_steps, out):
    """out[c, s] = the step scalars of class c at step first_step + s, s < n_steps, as
    ``shared_step_scalars`` makes them for its schedules alone (row rows[c] of ``lr_table``,
    wd_rows[c] of ``wd_table``, mom_rows[c] of ``mom_table``): its learning rate ``rates[s, c,
    0]`` (``class_rates``: the same bits), its weight decay and momentum (those of
    ``step_scalars`` where shared: ``wd_rows`` / ``mom_rows`` empty), and the buffer's scale
    where its rate drops (``on_drop``); out[c, n_steps] NaN (read by no kernel)."""
    for c in range(out.shape[0]):
        for s in range(n_steps):
            out[c, s, LR] = rates[s, c, 0]
            out[c, s, WD] = step_scalars[s, WD]
            out[c, s, SCALE] = buffer_scale_at(lr_table, rows[c], float(first_step + s), on_drop)
            out[c, s, MOM] = step_scalars[s, MOM]
        if wd_rows.shape[0]:
            _shared_rates(wd_table, wd_rows[c], first_step, n_steps, out[c], np.int64(WD))
        if mom_rows.shape[0]:
            _shared_rates(mom_table, mom_rows[c], first_step, n_steps, out[c], np.int64(MOM))
        out[c, n_steps, :] = np.nan


def _grouped_chunk(w, buf, sq, lam, d, opt, bounds, items, group_scalars, beta2, eps, noise, seed, offset, first_step,
                   n_steps, trajectories, noise_scratch, lane_trajectory, lane_coordinate):
    """Advance trajectories of ``d`` coordinates laid out class by class (class c at places
    bounds[c] .. bounds[c + 1] - 1, trajectory p at elements p*d .. p*d + d - 1 of ``w``,
    ``buf``, ``sq``, ``lam``) by the steps first_step ..
    first_step + n_steps - 1: each class's stretch as a run of its schedule alone
    (``simulate_shared_steps`` at the step scalars ``group_scalars[c]``), hence its bits; in
    parallel over ``items`` (``group_items``). ``buf`` and ``sq`` may be empty, and the noise
    arguments are, as in ``_simulate_chunk``. With noise each element draws its trajectory's
    normals: element e at place e // d is of trajectory offset + trajectories[e] (None without
    noise; empty where place p holds trajectory p, the trajectories laid out so already)."""
    sigma = w.dtype.type(noise)
    for j in prange(items.shape[0]):
        c = items[j, 0]
        lo, hi = bounds[c] * d, bounds[c + 1] * d
        b_lo, b_hi = items[j, 1], items[j, 2]
        if not has_lanes(trajectories):
            simulate_shared_steps(opt, w[lo:hi], buf[lo:hi], sq[lo:hi], lam[lo:hi], TILE, b_lo, b_hi, d,
                                  group_scalars[c], first_step, np.int64(0), n_steps, NOT_DRAWN, beta2, eps, noise_scratch,
                                  seed, offset + np.uint64(bounds[c]), lane_trajectory, lane_coordinate, sigma)
            continue
        for b in range(b_lo, b_hi):
            # a tile at a time: its lanes' trajectories from ``trajectories`` (``lanes.tile_span``
            # reads the table from the tile's first element's coordinate on, and adds e0 // d)
            e0 = b * TILE_ELEMENTS
            k0 = e0 % d
            simulate_shared_steps(opt, w[lo:hi], buf[lo:hi], sq[lo:hi], lam[lo:hi], TILE, b, b + 1, d,
                                  group_scalars[c], first_step, np.int64(0), n_steps, NOT_DRAWN, beta2, eps,
                                  noise_scratch, seed, offset - np.uint64(e0 // d),
                                  lane_slice(trajectories, lo + e0 - k0, hi), lane_coordinate, sigma)


def _grouped_recorded_chunk(w, buf, sq, lam, d, opt, bounds, items, group_scalars, lr_table, class_rows, unread,
                            beta2, eps, on_drop, noise, seed, offset, first_step, n_steps, every, rec_loss, rec_disp,
                            rec_lr, rec_rows, trajectories, noise_scratch, lane_trajectory, lane_coordinate):
    """``_grouped_chunk`` recording every ``every`` steps (``_simulate_chunk``'s recording, into
    row rec_rows[p] of ``rec_*`` for the trajectory at place p: its own, in the trajectories'
    order, wherever it runs): each class's stretch in tiles of whole trajectories
    (``group_items(bounds, d, recorded=True)``) as a recording run of its schedule alone, row
    class_rows[c] of ``lr_table`` (``_shared_tile_steps`` at the step scalars
    ``group_scalars[c]``; the recorded rate is that row's closed form), hence its bits.
    ``unread``: an empty array in the place of the per-trajectory rates' state (none here);
    ``trajectories`` as in ``_grouped_chunk``. A run under shared rates is one class (row 0,
    bounds 0 and n)."""
    sigma = w.dtype.type(noise)
    tile = max(1, TILE_ELEMENTS // d)
    for j in prange(items.shape[0]):
        c = items[j, 0]
        p0, p1 = bounds[c], bounds[c + 1]
        lo, hi = p0 * d, p1 * d
        row = class_rows[c]
        table = lr_table[row:row + 1]  # (the class's row as row 0 of a schedule alone)
        w_c, buf_c, sq_c, lam_c = w[lo:hi], buf[lo:hi], sq[lo:hi], lam[lo:hi]
        rows_c = rec_rows[p0:p1]
        for b in range(items[j, 1], items[j, 2]):
            if first_step == 0:
                _record_initial_point(w_c, lam_c, d, b * tile, min((b + 1) * tile, p1 - p0), table, class_rows,
                                      RUN_FALSE, rec_loss, rec_disp, rec_lr, rows_c)
            first, lanes_t = offset + np.uint64(p0), lane_trajectory
            if has_lanes(trajectories):  # (the tile's lanes' trajectories, as in ``_grouped_chunk``)
                first, lanes_t = offset - np.uint64(b * tile), lane_slice(trajectories, lo + b * tile * d, hi)
            _shared_tile_steps(w_c, buf_c, sq_c, lam_c, b, tile, p1 - p0, d, opt, first_step, n_steps, group_scalars[c],
                               RUN_FALSE, RUN_FALSE, RUN_FALSE, table, class_rows, unread, unread, unread, unread,
                               beta2, eps, on_drop, noise_scratch, seed, first, lanes_t, lane_coordinate, sigma, every,
                               rec_loss, rec_disp, rec_lr, rows_c)


def simulate_groups(w, buf, sq, lam, d, opt, bounds, items, group_scalars, beta2, eps, noise, seed, offset, first_step,
                    n_steps, every=0, rec=None, rec_rows=None, lr_table=None, class_rows=None, on_drop=0,
                    trajectories=None):
    """Run ``_grouped_chunk`` for ``w``'s dtype and noise (compiled, or loaded from Numba's cache,
    on first use); with ``every`` > 0, ``_grouped_recorded_chunk`` into ``rec`` (loss,
    displacement, rate), row rec_rows[p] for the trajectory at place p, the classes' rows
    ``class_rows`` of ``lr_table`` and ``on_drop`` (which a recorded step of several coordinates
    reads), a kernel of its own. A noisy call gets its scratch here, as ``simulate_chunk``'s, and draws for the
    trajectories ``trajectories`` gives (``_grouped_chunk``; None: trajectory p at place p)."""
    noisy = noise != 0.0
    recorded = every > 0
    path = "grouped-recorded" if recorded else "grouped"
    kernel = _KERNELS.get((w.dtype, noisy, path))
    if kernel is None:
        dt = float32 if w.dtype == np.float32 else float64
        state = types.Array(dt, 1, "C")
        scratch = (RO_UINT64, types.Array(float32, 3, "C"), RO_UINT64, RO_UINT64) if noisy else (types.none,) * 4
        head = (state, state, state, types.Array(dt, 1, "C", readonly=True), int64, int64, RO_INT64,
                types.Array(int64, 2, "C", readonly=True), types.Array(float64, 3, "C", readonly=True))
        if recorded:
            rec_type = types.Array(dt, 2, "C")
            signature = void(*head, TABLE, RO_INT64, float64[::1], float64, float64, int64, float64, uint64, uint64,
                             int64, int64, int64, rec_type, rec_type, rec_type, RO_INT64, *scratch)
        else:
            signature = void(*head, float64, float64, float64, uint64, uint64, int64, int64, *scratch)
        kernel = _KERNELS[w.dtype, noisy, path] = parallel.entry(
            njit(signature, parallel=True, cache=True)(_grouped_recorded_chunk if recorded else _grouped_chunk))
    if noisy:
        scratch = (trajectories if trajectories is not None else _NO_LANES,
                   np.empty((numba.config.NUMBA_NUM_THREADS, 4, tile_lanes(d)), dtype=np.float32), *noise_lanes(d))
    else:
        scratch = (None, None, None, None)
    if recorded:
        kernel(w, buf, sq, lam, d, opt, bounds, items, group_scalars, lr_table, class_rows, np.empty(0), beta2, eps,
               on_drop, noise, np.uint64(seed), np.uint64(offset), first_step, n_steps, every, *rec, rec_rows,
               *scratch)
    else:
        kernel(w, buf, sq, lam, d, opt, bounds, items, group_scalars, beta2, eps, noise, np.uint64(seed),
               np.uint64(offset), first_step, n_steps, *scratch)


_NO_LANES = _readonly(np.empty(0, np.uint64))


@parallel.entry
@compiled_at_first_call(
        types.UniTuple(int64, 2)(TABLE, RO_INT64, float64[::1], float64[::1], float64), parallel=True, cache=True)
def prepare_rates(table, rows, ratio, state, t0):
    """ratio[i] = ``_row_ratio`` of row rows[i], state[i] = its rate at step ``t0`` and state[n + i]
    the step it is next read at (``_next_change``), in one pass over the table (a
    per-trajectory table is the largest input of a run). Returns how many trajectories
    follow a step schedule (a lone staircase exponential) and how many read in closed form
    have a segment with a ``vector_code``: the caller then gives the state a memo of powers,
    and the ratios room for the vector loop's fields (``VECTOR_FIELDS`` rows of n, zeros).
    (A constant row advances by its ratio, 1.)"""
    n = rows.shape[0]
    steps = 0
    vectors = 0
    for i in prange(n):
        row = rows[i]
        r = _row_ratio(table, row)
        ratio[i] = r
        state[i] = _anchor(table, row, t0)
        # (the fields read here: a call that takes the table costs more, ``_advance_rates``)
        kind = int(table[row, 0, KIND])
        staircase = table[row, 0, P0 + 3]
        alone = one_segment(table, row)
        state[n + i] = math.inf if r == r else next_change(kind, staircase, table[row, 0, P0 + 2],
                                                           table[row, 0, ORIGIN], alone, t0)
        steps += 1 if kind == EXPONENTIAL and lone_staircase(kind, staircase, alone) else 0
        vector = False
        for k in range(table.shape[1]):
            if not table[row, k, START] < math.inf:
                break  # (padding or side rows)
            vector = vector or vector_code(table, row, k) > 0.0
        vectors += 1 if vector and not r == r else 0
    return steps, vectors


@parallel.entry
@compiled_at_first_call(void(TABLE, RO_INT64, float64[::1], float64[::1], float64), parallel=True, cache=True)
def enter_segments(table, rows, ratio, state, t0):
    """state[n + i] = ``_next_change`` at step ``t0`` once ``ratio`` has room for the vector loop's
    fields (``prepare_rates``): the lanes whose segment it computes enter it here, not one by
    one in the first step's scalar loop."""
    n = rows.shape[0]
    for i in prange(n):
        state[n + i] = _next_change(table, rows, ratio, i, t0)
