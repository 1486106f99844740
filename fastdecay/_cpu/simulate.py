"""Numba kernel of the batched quadratic simulations (``fastdecay.simulate``).

One trajectory minimises f(w) = 1/2 sum_k lam_k w_k^2 over ``d`` coordinates;
the batch is ``n`` trajectories stored row-major as flat arrays of ``n * d``
elements (trajectory i owns elements i*d .. i*d + d - 1). The kernel runs
``prange`` over **tiles** of consecutive trajectories (a fixed number of
elements, whatever the thread count); inside a tile the time loop is outside
and the lanes (elements) inside, so a tile's state stays in L1 across steps
and the inner loop is a contiguous loop that LLVM vectorizes. Under shared
rates a tile's steps run in one call (``_shared_tile_steps``): each step is a
row of ``step_scalars``, a few scalar operations and the vector loop, with no
call that takes an array inside the step loop (a call would count references
on the arrays every thread shares, atomically, twice a step).

Every update is ``rules.sgd_element`` / ``rules.adam_element`` /
``rules.lion_element`` with the per-step scalars of ``rules.sgd_scalars`` /
``adam_scalars`` / ``lion_scalars``: the same rule the fused updates use, not a
copy. Lion reads the momentum column (its beta1) as Adam does.

Rates. The learning rate and the weight decay each come either **shared**
(one schedule for the whole batch: its per-step values, computed once per
chunk by ``shared_step_scalars`` into ``step_scalars``) or **per trajectory**
(``rows[i]`` is the table row of trajectory i and ``state[i]`` its current
rate). A per-trajectory row that is a plain exponential or a constant has
``ratio[i]`` = its per-step factor and advances by one multiplication a step,
re-anchored to the closed form at every multiple of ``SIM_REANCHOR`` (global
steps, so the result does not depend on chunking); any other row (NaN ratio)
is evaluated in closed form at every step.

Recording. With ``every > 0`` the kernel writes, for each recorded step
t = j * every in the chunk, the loss 1/2 sum lam w_t^2, the displacement
||w_t - w_{t-1}||_2 and the rate eta_t (``lr_at``, the closed form) into column j of the
``rec_*`` arrays (float64 accumulation, rounded once). Step 0 is recorded by
the chunk that starts at 0 (displacement 0).

Noise. With ``noise > 0`` the gradient of coordinate k of trajectory i at step
t is lam_k w_k + noise * xi, xi = ``philox.normal(seed, offset + i, t, k)``.
A tile draws the normals of all its lanes (elements) for two steps at once
with ``philox.fill_normal_pairs`` (vector loops; steps 2p and 2p + 1 share a
Philox counter) into its thread's float64 rows of ``noise_scratch``, then the
update loops read them: the noisy runs use the same vector loops as the
noiseless ones, with ``sigma * z[j]`` added to the gradient (z[j] rounded once
to the run's dtype). The noiseless
kernel is a separate compilation (``noise_scratch`` is ``None`` there, and
every noise term is pruned at compile time).

The call shape, shared with the GPU twin (``fastdecay._gpu.simulate``), is
documented at ``_simulate_chunk``. Kernels never allocate and never validate;
``fastdecay.simulate`` has checked and prepared every argument.
"""

import math

import numpy as np
import numba
from numba import float32, float64, int64, njit, prange, types, uint64, void
from numba.extending import overload
from numba.np.numpy_support import as_dtype

from .philox import fill_normal_pairs
from .rules import adam_element, adam_scalars, buffer_scale_at, lion_element, lion_scalars, sgd_element, sgd_scalars
from .._layout import CONSTANT, EXPONENTIAL, KIND, ORIGIN, P0, START
from .._rules import ADAM, ADAMW, GD, LION, LR_IN_BUFFER, MOMENTUM, NESTEROV  # noqa: F401 (the rule codes)
from .._rules import CODES as OPTIMIZER_CODES  # noqa: F401 (public name -> code, from the one table)
from .schedule import TABLE, lr_at

# columns of step_scalars
LR = 0
WD = 1
SCALE = 2
MOM = 3
N_SCALARS = 4

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

# the kernel's parallel loop runs over blocks of consecutive tiles: at least MIN_BLOCKS
# (as many threads as can share the work), else blocks of TILES_PER_BLOCK tiles; a block
# of tiles under shared rates is one call (a call costs reference counting on the arrays
# every thread shares: atomic operations on one cache line that the threads contend for)
MIN_BLOCKS = 64
TILES_PER_BLOCK = 16

RO_INT64 = types.Array(int64, 1, "C", readonly=True)
RO_FLOAT64 = types.Array(float64, 1, "C", readonly=True)
RO_SCALARS = types.Array(float64, 2, "C", readonly=True)


@njit(cache=True)
def _is_all_multiplicative(ratio, i0, i1):
    for i in range(i0, i1):
        if not ratio[i] == ratio[i]:  # NaN: closed form every step
            return False
    return True


@njit(cache=True)
def _anchor(table, row, t):
    """The closed-form rate of ``row`` at step ``t``; exactly lr at the origin of a
    one-segment exponential (no pow for gamma**0)."""
    seg = table[row, 0]
    if seg[KIND] == EXPONENTIAL and t == seg[ORIGIN]:
        return seg[P0]
    return lr_at(table, row, t)


@njit(cache=True)
def _closed_form_rate(table, row, t, previous):
    """lr_at(table, row, t) for t >= 1, given ``previous`` = the rate at t - 1: inside a
    plateau of a one-segment staircase exponential (a step schedule) that is the same
    value (the closed form's exponent is the same), so the pow is skipped."""
    seg = table[row, 0]
    if (table.shape[1] == 1 or table[row, 1, START] == math.inf) and seg[KIND] == EXPONENTIAL \
            and seg[P0 + 3] != 0.0:
        tau = t - seg[ORIGIN]
        if tau >= 1.0 and math.floor(tau / seg[P0 + 2]) == math.floor((tau - 1.0) / seg[P0 + 2]):
            return previous
    return lr_at(table, row, t)


@njit(cache=True)
def _advance_rates(table, rows, ratio, state, i0, i1, t, all_multiplicative):
    """state[i] = rate of trajectory i at step t, for i in [i0, i1)."""
    tf = float(t)
    if t == 0:
        return  # the caller set state to the rate at step 0 (``prepare_rates``)
    if t % SIM_REANCHOR != 0:
        if all_multiplicative:
            st = state[i0:i1]
            ra = ratio[i0:i1]
            for i in range(st.shape[0]):
                st[i] *= ra[i]
            return
        for i in range(i0, i1):
            r = ratio[i]
            if r == r:
                state[i] *= r
            else:
                state[i] = _closed_form_rate(table, rows[i], tf, state[i])
        return
    for i in range(i0, i1):
        state[i] = _anchor(table, rows[i], tf)


def _one_like(x):
    """1 in the type of the scalar ``x`` (Python twin of the overload below)."""
    return type(x)(1.0)


@overload(_one_like)
def _one_like_impl(x):
    if isinstance(x, types.Float):
        one = x.cast_python_value(1.0)
        return lambda x: one  # a compile-time constant in the caller's IR
    return None


@njit(cache=True)
def _sgd(x, g, b, l2, buf_decay, gain, nest_grad, nest_buf, neg_lr, use_momentum, nesterov, in_buffer, first):
    """``sgd_element`` with the coefficients of ``sgd_scalars`` as a simulation uses them.

    A simulation never maximizes, couples its weight decay and has no dampening,
    so sign, shrink and (without lr_in_buffer) grad_gain and nest_grad are exactly
    1: they go in as a compile-time constant 1 of the element type and LLVM folds
    ``1*g`` to ``g``. Every SGD-family call site of the simulation goes through
    here, and nothing is contracted into a fused multiply-add (``rules``), so a
    trajectory gets the same bits on the shared-schedule, per-trajectory and
    generic paths, whatever its batch, in a fresh compile and from Numba's cache.
    ``in_buffer`` is lr_in_buffer with momentum on (then gain = nest_grad = lr).
    """
    one = _one_like(x)
    if in_buffer:
        return sgd_element(x, g, b, one, l2, one, buf_decay, gain, nest_grad, nest_buf, neg_lr, use_momentum,
                           nesterov, first)
    return sgd_element(x, g, b, one, l2, one, buf_decay, one, one, nest_buf, neg_lr, use_momentum, nesterov, first)


@njit(cache=True)
def _adam(x, g, m, v, l2, shrink, w1, beta2, w2, neg_step_size, bc2_sqrt, eps, first):
    """``adam_element`` as a simulation uses it: never maximizing (sign a compile-time
    1, so ``1*g`` folds away as in ``_sgd``), no AMSGrad. Returns the new (w, m, v)."""
    w, m, v, _ = adam_element(x, g, m, v, x, _one_like(x), l2, shrink, w1, beta2, w2, neg_step_size, bc2_sqrt, eps,
                              False, first)
    return w, m, v


@njit(cache=True)
def _lion_coords(w, m, lam, c, first, z, sigma, record):
    """``lion_element`` over one trajectory's coordinates (or a tile's elements; z: their
    draws, or None), never maximizing (sign a compile-time 1, as in ``_sgd``), with ``c``
    the step's ``LionScalars``; (sum of squared moves, 2 x loss) when recording."""
    dt = w.dtype.type
    shrink, beta1, w1, beta2, w2, neg_lr = dt(c.shrink), dt(c.beta1), dt(c.w1), dt(c.beta2), dt(c.w2), dt(c.neg_lr)
    disp = 0.0
    loss = 0.0
    for k in range(w.shape[0]):
        x = w[k]
        xn, m[k] = lion_element(x, _gradient(lam[k], x, z, sigma, k), m[k], _one_like(x), shrink, beta1, w1, beta2,
                                w2, neg_lr, first)
        w[k] = xn
        if record:
            dd, ll = _tally(lam, k, x, xn)
            disp += dd
            loss += ll
    return disp, loss


@njit(cache=True)
def _gradient(lam, x, z, sigma, j):
    """Gradient of an element: λ x, plus σ z[j] with noise (z: the step's draws of the
    tile's lanes in float64, rounded here to the element type; None without noise,
    pruned at compile time). Never fused into a multiply-add (no ``fastmath``
    anywhere in the kernels)."""
    g = lam * x
    if z is not None:
        g = g + sigma * _like(x, z[j])
    return g


def _like(x, v):
    """v rounded to the type of the scalar ``x`` (Python twin of the overload below)."""
    return type(x)(v)


@overload(_like)
def _like_impl(x, v):
    if isinstance(x, types.Float):
        cast = as_dtype(x).type
        return lambda x, v: cast(v)
    return None


# The noise helpers below are resolved by type when the kernel compiles: with no
# noise scratch (None) each is a constant None and every noise term vanishes from
# the loops; with one, plain array code (never an Optional, which would stop
# vectorization). Each has a Python twin for reading.


def _draws(noise_scratch, row, lanes):
    """This thread's row ``row`` (0: even steps, 1: odd steps) of the noise scratch, its
    first ``lanes`` entries; None without noise."""
    return None if noise_scratch is None else noise_scratch[numba.get_thread_id(), row, :lanes]


@overload(_draws)
def _draws_impl(noise_scratch, row, lanes):
    if isinstance(noise_scratch, types.NoneType):
        return lambda noise_scratch, row, lanes: None
    return lambda noise_scratch, row, lanes: noise_scratch[numba.get_thread_id(), row, :lanes]


def _draw_pairs(z_even, z_odd, seed, first_trajectory, lane_trajectory, lane_coordinate, t):
    """Fill the two rows with the draws of steps t and t + 1 (t even) or t - 1 and t."""
    if z_even is not None:
        lanes = z_even.shape[0]
        fill_normal_pairs(seed, first_trajectory, lane_trajectory[:lanes], lane_coordinate[:lanes],
                          np.uint64(t >> 1), z_even, z_odd)


@overload(_draw_pairs)
def _draw_pairs_impl(z_even, z_odd, seed, first_trajectory, lane_trajectory, lane_coordinate, t):
    if isinstance(z_even, types.NoneType):
        return lambda z_even, z_odd, seed, first_trajectory, lane_trajectory, lane_coordinate, t: None
    return _draw_pairs


def _step_draws(z_even, z_odd, t):
    """The row of step t (None without noise)."""
    return None if z_even is None else (z_odd if t % 2 else z_even)


@overload(_step_draws)
def _step_draws_impl(z_even, z_odd, t):
    if isinstance(z_even, types.NoneType):
        return lambda z_even, z_odd, t: None
    return lambda z_even, z_odd, t: z_odd if t % 2 else z_even


def _lanes(z, a, b):
    """z[a:b], or None without noise."""
    return None if z is None else z[a:b]


@overload(_lanes)
def _lanes_impl(z, a, b):
    if isinstance(z, types.NoneType):
        return lambda z, a, b: None
    return lambda z, a, b: z[a:b]


@njit(cache=True)
def _tally(lam, j, x, xn):
    """(squared displacement, 2 x loss) of element j after x -> xn, in float64."""
    return (float(xn) - float(x)) ** 2, float(lam[j]) * float(xn) ** 2


@njit(cache=True)
def _buffer_scale(per_lr, use_momentum, on_drop, scale_shared, lr_table, lr_rows, lr_ratio, i, tf):
    """The on_drop factor of trajectory i's momentum buffer at step tf."""
    if not per_lr:
        return scale_shared
    # a plain exponential or constant row never drops discontinuously
    if use_momentum and on_drop != 0 and not lr_ratio[i] == lr_ratio[i]:
        return buffer_scale_at(lr_table, lr_rows[i], tf, on_drop)
    return 1.0


@njit(cache=True)
def _generic_step(w, buf, sq, lam, i0, i1, d, opt, t, eta_shared, wd_shared, scale_shared, mom_shared, per_lr,
                  per_wd, per_mom, lr_table, lr_rows, lr_ratio, lr_state, wd_state, mom_state, beta2, eps, on_drop,
                  z, sigma, record, rec_j, rec_loss, rec_disp):
    """One step of trajectories [i0, i1), any d, any option (noise, recording, first step):
    per-trajectory scalars, then a loop over the trajectory's d coordinates. ``z`` holds
    the step's draws of the tile's lanes (element (i, k) is lane (i - i0) d + k), or None.
    The momentum (Adam's beta1) of a trajectory is ``mom_state[i]`` or ``mom_shared``."""
    dt = w.dtype.type
    first = t == 0
    tf = float(t)
    adam = opt == ADAM or opt == ADAMW
    lion = opt == LION
    use_momentum = opt == MOMENTUM or opt == LR_IN_BUFFER or opt == NESTEROV
    nesterov = opt == NESTEROV
    if d == 1:
        # one element a trajectory (the noisy runs of sweeps): the elements in one flat loop
        in_buffer = opt == LR_IN_BUFFER
        zero = dt(0.0)
        for i in range(i0, i1):
            eta = lr_state[i] if per_lr else eta_shared
            wd = wd_state[i] if per_wd else wd_shared
            mom = mom_state[i] if per_mom else mom_shared
            x = w[i]
            g = _gradient(lam[i], x, z, sigma, i - i0)
            if adam:
                c = adam_scalars(eta, wd, tf, mom, beta2, eps, opt == ADAMW, False)
                w[i], buf[i], sq[i] = _adam(x, g, buf[i], sq[i], dt(c.l2), dt(c.shrink), dt(c.w1), dt(c.beta2),
                                            dt(c.w2), dt(c.neg_step_size), dt(c.bc2_sqrt), dt(c.eps), first)
            elif lion:
                c = lion_scalars(eta, wd, mom, beta2, False)
                w[i], buf[i] = lion_element(x, g, buf[i], _one_like(x), dt(c.shrink), dt(c.beta1), dt(c.w1),
                                            dt(c.beta2), dt(c.w2), dt(c.neg_lr), first)
            else:
                scale = _buffer_scale(per_lr, use_momentum, on_drop, scale_shared, lr_table, lr_rows, lr_ratio, i,
                                      tf)
                c = sgd_scalars(eta, wd, first, scale, mom, 0.0, nesterov, False, False, in_buffer)
                b = buf[i] if use_momentum else zero
                w[i], b = _sgd(x, g, b, dt(c.l2), dt(c.buf_decay), dt(c.grad_gain), dt(c.nest_grad),
                               dt(c.nest_buf), dt(c.neg_lr), use_momentum, nesterov, in_buffer and use_momentum,
                               first)
                if use_momentum:
                    buf[i] = b
            if record:
                dd, ll = _tally(lam, i, x, w[i])
                rec_disp[i, rec_j] = dt(math.sqrt(0.0 + dd))
                rec_loss[i, rec_j] = dt(0.5 * (0.0 + ll))
        return
    for i in range(i0, i1):
        eta = lr_state[i] if per_lr else eta_shared
        wd = wd_state[i] if per_wd else wd_shared
        mom = mom_state[i] if per_mom else mom_shared
        # the trajectory's coordinates as slices indexed from 0 (the plain loops vectorize)
        wi = w[i * d:(i + 1) * d]
        li = lam[i * d:(i + 1) * d]
        zi = _lanes(z, (i - i0) * d, (i - i0 + 1) * d)
        if adam:
            c = adam_scalars(eta, wd, tf, mom, beta2, eps, opt == ADAMW, False)
            disp, loss = _adam_coords(wi, buf[i * d:(i + 1) * d], sq[i * d:(i + 1) * d], li, c, first, zi, sigma,
                                      record)
        elif lion:
            c = lion_scalars(eta, wd, mom, beta2, False)
            disp, loss = _lion_coords(wi, buf[i * d:(i + 1) * d], li, c, first, zi, sigma, record)
        else:
            scale = _buffer_scale(per_lr, use_momentum, on_drop, scale_shared, lr_table, lr_rows, lr_ratio, i, tf)
            c = sgd_scalars(eta, wd, first, scale, mom, 0.0, nesterov, False, False, opt == LR_IN_BUFFER)
            disp, loss = _sgd_coords(wi, buf[i * d:(i + 1) * d], li, c, use_momentum, nesterov,
                                     opt == LR_IN_BUFFER and use_momentum, first, zi, sigma, record)
        if record:
            rec_disp[i, rec_j] = dt(math.sqrt(disp))
            rec_loss[i, rec_j] = dt(0.5 * loss)


@njit(cache=True)
def _sgd_coords(w, buf, lam, c, use_momentum, nesterov, in_buffer, first, z, sigma, record):
    """``_sgd`` over one trajectory's coordinates (z: their draws, or None); (sum of squared
    moves, 2 x loss) when recording."""
    dt = w.dtype.type
    l2, buf_decay = dt(c.l2), dt(c.buf_decay)
    gain, nest_grad, nest_buf, neg_lr = dt(c.grad_gain), dt(c.nest_grad), dt(c.nest_buf), dt(c.neg_lr)
    zero = dt(0.0)
    disp = 0.0
    loss = 0.0
    if record:
        for k in range(w.shape[0]):
            x = w[k]
            g = _gradient(lam[k], x, z, sigma, k)
            b = buf[k] if use_momentum else zero
            xn, b = _sgd(x, g, b, l2, buf_decay, gain, nest_grad, nest_buf, neg_lr, use_momentum, nesterov,
                         in_buffer, first)
            w[k] = xn
            if use_momentum:
                buf[k] = b
            if record:
                dd, ll = _tally(lam, k, x, xn)
                disp += dd
                loss += ll
    elif use_momentum:
        for k in range(w.shape[0]):
            x = w[k]
            w[k], buf[k] = _sgd(x, _gradient(lam[k], x, z, sigma, k), buf[k], l2, buf_decay, gain, nest_grad,
                                nest_buf, neg_lr, True, nesterov, in_buffer, first)
    else:
        for k in range(w.shape[0]):
            x = w[k]
            w[k], _ = _sgd(x, _gradient(lam[k], x, z, sigma, k), zero, l2, buf_decay, gain, nest_grad, nest_buf,
                           neg_lr, False, False, False, first)
    return disp, loss


@njit(cache=True)
def _adam_coords(w, m, v, lam, c, first, z, sigma, record):
    """``_adam`` over one trajectory's coordinates (z: their draws, or None); (sum of squared
    moves, 2 x loss) when recording."""
    dt = w.dtype.type
    l2, shrink, w1, b2, w2 = dt(c.l2), dt(c.shrink), dt(c.w1), dt(c.beta2), dt(c.w2)
    neg_step, bc2_sqrt, e = dt(c.neg_step_size), dt(c.bc2_sqrt), dt(c.eps)
    disp = 0.0
    loss = 0.0
    if record:
        for k in range(w.shape[0]):
            x = w[k]
            g = _gradient(lam[k], x, z, sigma, k)
            xn, m[k], v[k] = _adam(x, g, m[k], v[k], l2, shrink, w1, b2, w2, neg_step, bc2_sqrt, e, first)
            w[k] = xn
            if record:
                dd, ll = _tally(lam, k, x, xn)
                disp += dd
                loss += ll
    else:
        for k in range(w.shape[0]):
            x = w[k]
            w[k], m[k], v[k] = _adam(x, _gradient(lam[k], x, z, sigma, k), m[k], v[k], l2, shrink, w1, b2, w2,
                                     neg_step, bc2_sqrt, e, first)
    return disp, loss


@njit(cache=True)
def _record_before(w, rec_disp, i0, i1, rec_j):
    """d == 1 recording on the fast path: park w_{t} in the displacement slot."""
    for i in range(i0, i1):
        rec_disp[i, rec_j] = w[i]


@njit(cache=True)
def _record_after(w, lam, rec_disp, rec_loss, i0, i1, rec_j):
    """... and turn it into |w_{t+1} - w_t| with the loss, by the generic path's arithmetic."""
    dt = w.dtype.type
    for i in range(i0, i1):
        dd, ll = _tally(lam, i, rec_disp[i, rec_j], w[i])
        rec_disp[i, rec_j] = dt(math.sqrt(0.0 + dd))
        rec_loss[i, rec_j] = dt(0.5 * (0.0 + ll))


@njit(cache=True)
def _tile_span(b, tile, size, d, noise_scratch, offset):
    """(e0, e1, z_even, z_odd, first_trajectory) of tile b of ``tile`` elements among
    ``size``: its elements e0 .. e1 - 1, this thread's rows of draws for them (None
    without noise) and the global index of its first trajectory."""
    e0 = b * tile
    e1 = min(e0 + tile, size)
    return e0, e1, _draws(noise_scratch, 0, e1 - e0), _draws(noise_scratch, 1, e1 - e0), offset + np.uint64(e0 // d)


@njit(cache=True)
def _draws_of_step(z_even, z_odd, seed, first_trajectory, lane_trajectory, lane_coordinate, t, first):
    """The draws of step t (None without noise): the pair of steps is drawn at its even
    step, or at the first step of a call (``first``)."""
    if first or t % 2 == 0:
        _draw_pairs(z_even, z_odd, seed, first_trajectory, lane_trajectory, lane_coordinate, t)
    return _step_draws(z_even, z_odd, t)


@njit(cache=True)
def _sgd_shared_steps(w_all, buf_all, lam_all, tile, b0, b1, d, step_scalars, first_step, s0, s1, use_momentum,
                      nesterov, in_buffer, noise_scratch, seed, offset, lane_trajectory, lane_coordinate, sigma):
    """Steps ``first_step + s`` for s in [s0, s1) of tiles b0 .. b1 - 1 (``tile`` elements
    each) under shared rates, no recording: tile by tile, per step the coefficients of
    row s of ``step_scalars`` and one vector loop over the tile's elements (any d: with
    shared rates every element takes the same update). The draws of each pair of steps
    are made at its even step (and at s0).

    The tile and step loops are here, around the element loops, and the element loops
    are written out in them: no call that takes an array inside these loops (each would
    count references on the arrays every thread shares, atomically: twice a tile-step
    inside the step loop, and contended between threads), so a block of tiles costs one
    call. The slices start at index 0 (no negative-index wraparound in the loop, so LLVM
    vectorizes it); the coefficients go through ``_sgd`` as on every other path
    (bit-identical results). ``in_buffer`` is lr_in_buffer for ``sgd_scalars``; the
    element rule takes it with momentum on only."""
    dt = w_all.dtype.type
    zero = dt(0.0)
    buffer_in = in_buffer and use_momentum
    for b in range(b0, b1):
        e0, e1, z_even, z_odd, first_trajectory = _tile_span(b, tile, w_all.shape[0], d, noise_scratch, offset)
        w, buf, lam = w_all[e0:e1], buf_all[e0:e1], lam_all[e0:e1]  # GD: buf empty, never read
        for s in range(s0, s1):
            t = first_step + s
            z = _draws_of_step(z_even, z_odd, seed, first_trajectory, lane_trajectory, lane_coordinate, t, s == s0)
            c = sgd_scalars(step_scalars[s, LR], step_scalars[s, WD], t == 0, step_scalars[s, SCALE],
                            step_scalars[s, MOM], 0.0, nesterov, False, False, in_buffer)
            l2, buf_decay = dt(c.l2), dt(c.buf_decay)
            gain, nest_grad, nest_buf, neg_lr = dt(c.grad_gain), dt(c.nest_grad), dt(c.nest_buf), dt(c.neg_lr)
            if use_momentum:
                if t == 0:
                    for i in range(w.shape[0]):
                        x = w[i]
                        w[i], buf[i] = _sgd(x, _gradient(lam[i], x, z, sigma, i), buf[i], l2, buf_decay, gain,
                                            nest_grad, nest_buf, neg_lr, True, nesterov, buffer_in, True)
                elif nesterov:
                    for i in range(w.shape[0]):
                        x = w[i]
                        w[i], buf[i] = _sgd(x, _gradient(lam[i], x, z, sigma, i), buf[i], l2, buf_decay, gain,
                                            nest_grad, nest_buf, neg_lr, True, True, buffer_in, False)
                else:
                    for i in range(w.shape[0]):
                        x = w[i]
                        w[i], buf[i] = _sgd(x, _gradient(lam[i], x, z, sigma, i), buf[i], l2, buf_decay, gain,
                                            nest_grad, nest_buf, neg_lr, True, False, buffer_in, False)
            else:
                for i in range(w.shape[0]):
                    x = w[i]
                    w[i], _ = _sgd(x, _gradient(lam[i], x, z, sigma, i), zero, l2, buf_decay, gain, nest_grad,
                                   nest_buf, neg_lr, False, False, False, False)


@njit(cache=True)
def _fast_sgd_per_trajectory(w, buf, lam, lr_state, lr_ratio, advance, wd, mom, nesterov, in_buffer, use_momentum,
                             first, z, sigma):
    """d == 1, per-trajectory learning rates, shared weight decay. With ``advance``
    every rate first moves one step (lr_state *= lr_ratio) in the same pass."""
    if use_momentum:
        if advance:
            _sgd_per_trajectory_loop(w, buf, lam, lr_state, lr_ratio, True, wd, mom, nesterov, in_buffer, True, first,
                                     z, sigma)
        else:
            _sgd_per_trajectory_loop(w, buf, lam, lr_state, lr_ratio, False, wd, mom, nesterov, in_buffer, True,
                                     first, z, sigma)
    elif advance:
        _sgd_per_trajectory_loop(w, buf, lam, lr_state, lr_ratio, True, wd, 0.0, False, False, False, False, z, sigma)
    else:
        _sgd_per_trajectory_loop(w, buf, lam, lr_state, lr_ratio, False, wd, 0.0, False, False, False, False, z,
                                 sigma)


@njit(cache=True)
def _sgd_per_trajectory_loop(w, buf, lam, lr_state, lr_ratio, advance, wd, mom, nesterov, in_buffer, use_momentum,
                             first, z, sigma):
    dt = w.dtype.type
    zero = dt(0.0)
    for i in range(w.shape[0]):
        eta = lr_state[i]
        if advance:
            eta *= lr_ratio[i]
            lr_state[i] = eta
        c = sgd_scalars(eta, wd, first, 1.0, mom, 0.0, nesterov, False, False, in_buffer)
        x = w[i]
        b = buf[i] if use_momentum else zero
        xn, b = _sgd(x, _gradient(lam[i], x, z, sigma, i), b, dt(c.l2), dt(c.buf_decay), dt(c.grad_gain),
                     dt(c.nest_grad), dt(c.nest_buf), dt(c.neg_lr), use_momentum, nesterov, in_buffer and use_momentum,
                     first)
        w[i] = xn
        if use_momentum:
            buf[i] = b


@njit(cache=True)
def _adam_shared_steps(w_all, m_all, v_all, lam_all, tile, b0, b1, d, step_scalars, first_step, s0, s1, beta2, eps,
                       decoupled, noise_scratch, seed, offset, lane_trajectory, lane_coordinate, sigma):
    """``_sgd_shared_steps`` for Adam / AdamW: per tile-step the coefficients of
    ``adam_scalars`` (beta1: the MOM column) and one vector loop over the tile."""
    dt = w_all.dtype.type
    for b in range(b0, b1):
        e0, e1, z_even, z_odd, first_trajectory = _tile_span(b, tile, w_all.shape[0], d, noise_scratch, offset)
        w, m, v, lam = w_all[e0:e1], m_all[e0:e1], v_all[e0:e1], lam_all[e0:e1]
        for s in range(s0, s1):
            t = first_step + s
            z = _draws_of_step(z_even, z_odd, seed, first_trajectory, lane_trajectory, lane_coordinate, t, s == s0)
            c = adam_scalars(step_scalars[s, LR], step_scalars[s, WD], float(t), step_scalars[s, MOM], beta2, eps,
                             decoupled, False)
            l2, shrink, w1, b2, w2 = dt(c.l2), dt(c.shrink), dt(c.w1), dt(c.beta2), dt(c.w2)
            neg_step, bc2_sqrt, e = dt(c.neg_step_size), dt(c.bc2_sqrt), dt(c.eps)
            if t == 0:
                for i in range(w.shape[0]):
                    x = w[i]
                    w[i], m[i], v[i] = _adam(x, _gradient(lam[i], x, z, sigma, i), m[i], v[i], l2, shrink, w1, b2,
                                             w2, neg_step, bc2_sqrt, e, True)
            else:
                for i in range(w.shape[0]):
                    x = w[i]
                    w[i], m[i], v[i] = _adam(x, _gradient(lam[i], x, z, sigma, i), m[i], v[i], l2, shrink, w1, b2,
                                             w2, neg_step, bc2_sqrt, e, False)


@njit(cache=True)
def _lion_shared_steps(w_all, m_all, lam_all, tile, b0, b1, d, step_scalars, first_step, s0, s1, beta2,
                       noise_scratch, seed, offset, lane_trajectory, lane_coordinate, sigma):
    """``_sgd_shared_steps`` for Lion (its element loop is ``_lion_coords``, called a
    tile-step)."""
    for b in range(b0, b1):
        e0, e1, z_even, z_odd, first_trajectory = _tile_span(b, tile, w_all.shape[0], d, noise_scratch, offset)
        w, m, lam = w_all[e0:e1], m_all[e0:e1], lam_all[e0:e1]
        for s in range(s0, s1):
            t = first_step + s
            z = _draws_of_step(z_even, z_odd, seed, first_trajectory, lane_trajectory, lane_coordinate, t, s == s0)
            c = lion_scalars(step_scalars[s, LR], step_scalars[s, WD], step_scalars[s, MOM], beta2, False)
            _lion_coords(w, m, lam, c, t == 0, z, sigma, False)


@njit(cache=True)
def _fast_adam_per_trajectory(w, m, v, lam, lr_state, lr_ratio, advance, wd, t, beta1, beta2, eps, decoupled, z,
                              sigma):
    first = t == 0
    dt = w.dtype.type
    tf = float(t)
    for i in range(w.shape[0]):
        eta = lr_state[i]
        if advance:
            eta *= lr_ratio[i]
            lr_state[i] = eta
        c = adam_scalars(eta, wd, tf, beta1, beta2, eps, decoupled, False)
        x = w[i]
        w[i], m[i], v[i] = _adam(x, _gradient(lam[i], x, z, sigma, i), m[i], v[i], dt(c.l2), dt(c.shrink), dt(c.w1),
                                 dt(c.beta2), dt(c.w2), dt(c.neg_step_size), dt(c.bc2_sqrt), dt(c.eps), first)


RO_UINT64 = types.Array(uint64, 1, "C", readonly=True)


def _signature(dt, noisy):
    state = types.Array(dt, 1, "C")
    rec = types.Array(dt, 2, "C")
    scratch = (types.Array(float64, 3, "C"), RO_UINT64, RO_UINT64) if noisy else (types.none,) * 3
    return void(
        state, state, state, types.Array(dt, 1, "C", readonly=True), int64, int64,   # w, buf, sq, lam, d, opt
        TABLE, RO_INT64, RO_FLOAT64, float64[::1],                                  # lr source
        TABLE, RO_INT64, RO_FLOAT64, float64[::1],                                  # wd source
        TABLE, RO_INT64, RO_FLOAT64, float64[::1],                                  # momentum source
        RO_SCALARS, float64, float64, int64,                                        # step_scalars, options
        float64, uint64, uint64,                                                    # noise, seed, offset
        int64, int64, int64, rec, rec, rec,                                         # steps, recording
        *scratch,                                                                   # noise scratch, lanes
    )


_KERNELS = {}


def tile_lanes(d):
    """Elements in one tile of trajectories with ``d`` coordinates."""
    return max(1, TILE_ELEMENTS // d) * d


def noise_lanes(d):
    """(lane_trajectory, lane_coordinate): lane j of a tile is coordinate j % d of the
    tile's trajectory j // d (uint64, read-only)."""
    lanes = np.arange(tile_lanes(d), dtype=np.uint64)
    return _readonly(lanes // np.uint64(d)), _readonly(lanes % np.uint64(d))


def _readonly(a):
    a.flags.writeable = False
    return a


def simulate_chunk(w, buf, sq, lam, d, opt, lr_table, lr_rows, lr_ratio, lr_state, wd_table, wd_rows, wd_ratio,
                   wd_state, mom_table, mom_rows, mom_ratio, mom_state, step_scalars, beta2, eps, on_drop, noise, seed,
                   offset, first_step, n_steps, every, rec_loss, rec_disp, rec_lr):
    """Run the kernel for ``w``'s dtype (see ``_simulate_chunk``). Each (dtype, noisy)
    kernel is compiled (or loaded from Numba's cache) on first use, so a float64-only,
    noiseless user never waits for the other builds. A noisy call gets its scratch
    here: two float64 rows of draws per thread (even and odd steps), one tile's lanes each."""
    noisy = noise != 0.0
    kernel = _KERNELS.get((w.dtype, noisy))
    if kernel is None:
        dt = float32 if w.dtype == np.float32 else float64
        kernel = _KERNELS[w.dtype, noisy] = njit(_signature(dt, noisy), parallel=True, cache=True)(_simulate_chunk)
    if noisy:
        scratch = np.empty((numba.config.NUMBA_NUM_THREADS, 2, tile_lanes(d)))
        scratch = (scratch, *noise_lanes(d))
    else:
        scratch = (None, None, None)
    kernel(w, buf, sq, lam, d, opt, lr_table, lr_rows, lr_ratio, lr_state, wd_table, wd_rows, wd_ratio, wd_state,
           mom_table, mom_rows, mom_ratio, mom_state, step_scalars, beta2, eps, on_drop, noise, seed, offset,
           first_step, n_steps, every, rec_loss, rec_disp, rec_lr, *scratch)


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
        lr_table       (rows, segments, WIDTH) learning-rate schedules
        lr_rows        (n,) table row of each trajectory, or empty when shared
        lr_ratio       (n,) per-step factor of a plain exponential/constant row, NaN otherwise
        lr_state       (n,) current rate of each trajectory, carried between chunks; the
                       caller sets it to the rate at step 0 (``prepare_rates``)
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

        noise_scratch  (threads, 2, tile_lanes(d)) float64 draws of the even and odd
                       step of each thread's current tile (rounded to the run's dtype
                       where a gradient reads them)
        lane_trajectory, lane_coordinate   ``noise_lanes(d)``
    """
    n = lam.shape[0] // d
    per_lr = lr_rows.shape[0] != 0
    per_wd = wd_rows.shape[0] != 0
    per_mom = mom_rows.shape[0] != 0
    adam = opt == ADAM or opt == ADAMW
    lion = opt == LION
    use_momentum = opt == MOMENTUM or opt == LR_IN_BUFFER or opt == NESTEROV
    nesterov = opt == NESTEROV
    in_buffer = opt == LR_IN_BUFFER
    # the vector loops: shared weight decay and momentum, and shared rates or one coordinate
    # (Lion's vector loop takes shared rates only)
    fast_ok = (d == 1 or not per_lr) and not per_wd and not per_mom and not (lion and per_lr)
    sigma = w.dtype.type(noise)
    tile = max(1, TILE_ELEMENTS // d)
    n_tiles = (n + tile - 1) // tile
    # blocks of consecutive tiles (the tiles, hence the bits, do not depend on the blocks);
    # under shared rates without recording a block's tiles run in one call
    n_blocks = min(n_tiles, max(MIN_BLOCKS, n_tiles // TILES_PER_BLOCK))
    for blk in prange(n_blocks):
        b_lo = blk * n_tiles // n_blocks
        b_hi = (blk + 1) * n_tiles // n_blocks
        if fast_ok and not per_lr and every == 0:
            # (np.int64(0), not a literal 0: one compilation of the step loops serves both callers)
            _shared_steps(w, buf, sq, lam, opt, tile * d, b_lo, b_hi, d, step_scalars, first_step, np.int64(0),
                          n_steps, beta2, eps, noise_scratch, seed, offset, lane_trajectory, lane_coordinate, sigma)
            continue
        for b in range(b_lo, b_hi):
            i0 = b * tile
            i1 = min(i0 + tile, n)
            z_even = _draws(noise_scratch, 0, (i1 - i0) * d)
            z_odd = _draws(noise_scratch, 1, (i1 - i0) * d)
            lr_mult = _is_all_multiplicative(lr_ratio, i0, i1) if per_lr else True
            wd_mult = _is_all_multiplicative(wd_ratio, i0, i1) if per_wd else True
            mom_mult = _is_all_multiplicative(mom_ratio, i0, i1) if per_mom else True
            # momentum with per-trajectory drops needs a per-trajectory buffer scale: generic path
            fast_tile = fast_ok and (not per_lr or not use_momentum or on_drop == 0 or lr_mult)
            if every > 0 and first_step == 0:
                # step 0: the initial point
                for i in range(i0, i1):
                    loss = 0.0
                    for k in range(d):
                        loss += float(lam[i * d + k]) * float(w[i * d + k]) ** 2
                    rec_loss[i, 0] = 0.5 * loss
                    rec_disp[i, 0] = 0.0
                    rec_lr[i, 0] = lr_at(lr_table, lr_rows[i] if per_lr else 0, 0.0)  # once per run
            if fast_tile and not per_lr:
                # shared rates: the tile's steps in one call, the step loop around the vector loops
                _shared_tile_steps(w, buf, sq, lam, b, tile, n, d, opt, first_step, n_steps, step_scalars, per_lr,
                                   per_wd, per_mom, lr_table, lr_rows, lr_ratio, lr_state, wd_state, mom_state, beta2,
                                   eps, on_drop, noise_scratch, seed, offset, lane_trajectory, lane_coordinate, sigma,
                                   every, rec_loss, rec_disp, rec_lr)
                continue
            # the tile's elements as slices, made once a chunk (not once a step: a slice
            # costs reference counting on the array that every thread shares)
            e0, e1 = i0 * d, i1 * d
            w_t, buf_t, sq_t, lam_t = w[e0:e1], buf[e0:e1], sq[e0:e1], lam[e0:e1]
            lr_state_t, lr_ratio_t = lr_state[i0:i1], lr_ratio[i0:i1]
            for s in range(n_steps):
                t = first_step + s
                record = every > 0 and (t + 1) % every == 0
                rec_j = (t + 1) // every if every > 0 else 0
                if s == 0 or t % 2 == 0:
                    _draw_pairs(z_even, z_odd, seed, offset + np.uint64(i0), lane_trajectory, lane_coordinate, t)
                z = _step_draws(z_even, z_odd, t)
                # recording sums over a trajectory's coordinates: the generic loops
                generic = not fast_tile or (record and d > 1)
                # the fast loops advance an all-exponential tile's rates themselves
                fused = per_lr and lr_mult and not generic and t % SIM_REANCHOR != 0
                if per_lr and not fused:
                    _advance_rates(lr_table, lr_rows, lr_ratio, lr_state, i0, i1, t, lr_mult)
                if per_wd:
                    _advance_rates(wd_table, wd_rows, wd_ratio, wd_state, i0, i1, t, wd_mult)
                if per_mom:
                    _advance_rates(mom_table, mom_rows, mom_ratio, mom_state, i0, i1, t, mom_mult)
                eta = step_scalars[s, LR]
                wd = step_scalars[s, WD]
                scale = step_scalars[s, SCALE]
                mom = step_scalars[s, MOM]  # the momentum, or Adam's beta1
                if record and not generic:
                    _record_before(w, rec_disp, i0, i1, rec_j)
                if generic:
                    _generic_step(w, buf, sq, lam, i0, i1, d, opt, t, eta, wd, scale, mom, per_lr, per_wd, per_mom,
                                  lr_table, lr_rows, lr_ratio, lr_state, wd_state, mom_state, beta2, eps,
                                  on_drop, z, sigma, record, rec_j, rec_loss, rec_disp)
                elif adam:
                    # a fast tile here has per-trajectory learning rates and d == 1
                    _fast_adam_per_trajectory(w_t, buf_t, sq_t, lam_t, lr_state_t, lr_ratio_t, fused, wd, t,
                                              mom, beta2, eps, opt == ADAMW, z, sigma)
                else:
                    _fast_sgd_per_trajectory(w_t, buf_t, lam_t, lr_state_t, lr_ratio_t, fused, wd, mom, nesterov,
                                             in_buffer, use_momentum, t == 0, z, sigma)
                if record:
                    if not generic:
                        _record_after(w, lam, rec_disp, rec_loss, i0, i1, rec_j)
                    _record_rates(rec_lr, lr_table, lr_rows, per_lr, i0, i1, t, rec_j)


@njit(cache=True)
def _record_rates(rec_lr, lr_table, lr_rows, per_lr, i0, i1, t, rec_j):
    """rec_lr[i, rec_j] = the learning rate of trajectory i after step t (the closed form)."""
    tr = float(t + 1)
    if per_lr:
        for i in range(i0, i1):
            rec_lr[i, rec_j] = lr_at(lr_table, lr_rows[i], tr)
    else:
        shared_lr = lr_at(lr_table, 0, tr)
        for i in range(i0, i1):
            rec_lr[i, rec_j] = shared_lr


@njit(cache=True)
def _shared_tile_steps(w, buf, sq, lam, b, tile, n, d, opt, first_step, n_steps, step_scalars, per_lr, per_wd,
                       per_mom, lr_table, lr_rows, lr_ratio, lr_state, wd_state, mom_state, beta2, eps, on_drop,
                       noise_scratch, seed, offset, lane_trajectory, lane_coordinate, sigma, every,
                       rec_loss, rec_disp, rec_lr):
    """The chunk's steps of tile b (trajectories b*tile .. min((b+1)*tile, n) - 1) under
    shared rates, recording every ``every`` steps: the steps up to the next recorded one
    in one call of the optimizer's step loops (``_shared_steps``); a recorded step alone,
    between ``_record_before`` and ``_record_after`` (d == 1) or by ``_generic_step``,
    whose sums over a trajectory's coordinates recording needs (d > 1; the
    per-trajectory flags are all False here; ``every > 0``, always true, is ``record``
    as a run-time flag: a literal True would compile ``_generic_step`` a second time)."""
    i0 = b * tile
    i1 = min(i0 + tile, n)
    s = 0
    while s < n_steps:
        # recorded steps: (t + 1) % every == 0
        stop = min(n_steps, s + every - 1 - (first_step + s) % every)
        if stop > s:
            _shared_steps(w, buf, sq, lam, opt, tile * d, b, b + 1, d, step_scalars, first_step, s, stop, beta2, eps,
                          noise_scratch, seed, offset, lane_trajectory, lane_coordinate, sigma)
        if stop < n_steps:
            t = first_step + stop
            rec_j = (t + 1) // every
            if d > 1:
                z_even = _draws(noise_scratch, 0, (i1 - i0) * d)
                z_odd = _draws(noise_scratch, 1, (i1 - i0) * d)
                _draw_pairs(z_even, z_odd, seed, offset + np.uint64(i0), lane_trajectory, lane_coordinate, t)
                _generic_step(w, buf, sq, lam, i0, i1, d, opt, t, step_scalars[stop, LR], step_scalars[stop, WD],
                              step_scalars[stop, SCALE], step_scalars[stop, MOM], per_lr, per_wd, per_mom,
                              lr_table, lr_rows, lr_ratio, lr_state, wd_state, mom_state, beta2, eps, on_drop,
                              _step_draws(z_even, z_odd, t), sigma, every > 0, rec_j, rec_loss, rec_disp)
            else:
                _record_before(w, rec_disp, i0, i1, rec_j)
                _shared_steps(w, buf, sq, lam, opt, tile * d, b, b + 1, d, step_scalars, first_step, stop, stop + 1,
                              beta2, eps, noise_scratch, seed, offset, lane_trajectory, lane_coordinate, sigma)
                _record_after(w, lam, rec_disp, rec_loss, i0, i1, rec_j)
            _record_rates(rec_lr, lr_table, lr_rows, per_lr, i0, i1, t, rec_j)
            stop += 1
        s = stop


@njit(cache=True)
def _shared_steps(w, buf, sq, lam, opt, tile, b0, b1, d, step_scalars, first_step, s0, s1, beta2, eps, noise_scratch,
                  seed, offset, lane_trajectory, lane_coordinate, sigma):
    """Steps s0 .. s1 - 1 of tiles b0 .. b1 - 1 (``tile`` elements each) under shared
    rates, no recording: the tile and step loops of the optimizer ``opt``."""
    if opt == LION:
        _lion_shared_steps(w, buf, lam, tile, b0, b1, d, step_scalars, first_step, s0, s1, beta2, noise_scratch,
                           seed, offset, lane_trajectory, lane_coordinate, sigma)
    elif opt == ADAM or opt == ADAMW:
        _adam_shared_steps(w, buf, sq, lam, tile, b0, b1, d, step_scalars, first_step, s0, s1, beta2, eps,
                           opt == ADAMW, noise_scratch, seed, offset, lane_trajectory, lane_coordinate, sigma)
    else:
        _sgd_shared_steps(w, buf, lam, tile, b0, b1, d, step_scalars, first_step, s0, s1,
                          opt == MOMENTUM or opt == LR_IN_BUFFER or opt == NESTEROV, opt == NESTEROV,
                          opt == LR_IN_BUFFER, noise_scratch, seed, offset, lane_trajectory, lane_coordinate, sigma)


@njit(cache=True)
def _row_ratio(table, r):
    """Per-step factor of row r when it is one plain exponential (staircase off) or
    constant segment; NaN when it must be evaluated in closed form."""
    if table.shape[1] > 1 and table[r, 1, START] != math.inf:
        return math.nan
    kind = table[r, 0, KIND]
    if kind == CONSTANT:
        return 1.0
    if kind == EXPONENTIAL and table[r, 0, P0 + 3] == 0.0:
        gamma = table[r, 0, P0 + 1]
        steps = table[r, 0, P0 + 2]
        return gamma if steps == 1.0 else gamma ** (1.0 / steps)
    return math.nan


@njit(cache=True)
def _shared_rates(table, ratio, first_step, n, out, column):
    """out[s, column] = rate of row 0 at first_step + s, by the very operations the
    per-trajectory path uses (anchor at multiples of SIM_REANCHOR, else one
    multiplication), so a shared schedule and a batch of copies agree bit for bit."""
    if not ratio == ratio:
        for s in range(n):
            out[s, column] = lr_at(table, 0, float(first_step + s))
        return
    t = first_step - first_step % SIM_REANCHOR
    v = _anchor(table, 0, float(t))
    while t < first_step:
        t += 1
        v = _anchor(table, 0, float(t)) if t % SIM_REANCHOR == 0 else v * ratio
    for s in range(n):
        t = first_step + s
        if s > 0:
            v = _anchor(table, 0, float(t)) if t % SIM_REANCHOR == 0 else v * ratio
        out[s, column] = v


@njit(void(TABLE, TABLE, TABLE, int64, int64, int64, float64[:, ::1]), cache=True)
def shared_step_scalars(lr_table, wd_table, mom_table, on_drop, first_step, n_steps, out):
    """out[s] = (lr, wd, buffer scale, momentum) of row 0 of each table at step
    first_step + s, for s in 0 .. n_steps (one more than the chunk)."""
    _shared_rates(lr_table, _row_ratio(lr_table, 0), first_step, n_steps + 1, out, LR)
    _shared_rates(wd_table, _row_ratio(wd_table, 0), first_step, n_steps + 1, out, WD)
    _shared_rates(mom_table, _row_ratio(mom_table, 0), first_step, n_steps + 1, out, MOM)
    for s in range(n_steps + 1):
        out[s, SCALE] = buffer_scale_at(lr_table, 0, float(first_step + s), on_drop)


@njit(void(TABLE, RO_INT64, float64[::1], float64[::1]), parallel=True, cache=True)
def prepare_rates(table, rows, ratio, state):
    """ratio[i] = ``_row_ratio`` of row rows[i] and state[i] = its rate at step 0, in one
    pass over the table (a per-trajectory table is the largest input of a run)."""
    for i in prange(rows.shape[0]):
        ratio[i] = _row_ratio(table, rows[i])
        state[i] = _anchor(table, rows[i], 0.0)
