"""Numba kernels of the exact expected dynamics (``fastdecay.expected_loss``).

One SGD-family step on coordinate k of f(w) = 1/2 sum_k lam_k w_k^2, with the
noisy gradient g = lam_k w + xi (E xi = 0, E xi^2 = q_k), is linear in the
state x = (w, b) (weight, momentum buffer) and in the noise::

    x' = A_t(lam_k) x + c_t xi,   A_t(lam) = P_t + lam * c_t e_1^T

where the columns of the per-step 2x2 matrix P_t and the vector c_t are the
update rule itself (``rules.sgd_element``) applied to unit inputs: the rule is
linear in (w, g, b), so its response to w = 1 (with g = 0), to g = 1 and to
b = 1 are its coefficients. ``step_coefficients`` computes them once per step
and per schedule row from ``rules.sgd_scalars`` (scheduled rate, weight decay,
on_drop factor of the buffer): no second copy of any rule.

The first moments m = E x and the second moments S = E x x^T (symmetric: three
entries) follow::

    m' = A m,    S' = A S A^T + q c c^T

``propagate`` advances them for every (trajectory, coordinate) element: a tile
is one trajectory's block of coordinates; inside it, coordinate sub-blocks
small enough to stay in cache run the whole chunk of steps, coordinates inside
(a contiguous loop LLVM vectorizes). Plain gradient descent has no buffer: one
mean and one second moment a coordinate. Kernels never allocate and never
validate; ``fastdecay.expected_loss`` has checked and prepared every argument.
"""

import numpy as np
from numba import float64, int64, njit, prange, types, uint8, void

from .._rules import BY_NAME, GD, LINEAR, LR_IN_BUFFER, NESTEROV
from . import parallel
from .intrinsics import prefer_wide_vectors
from .rules import buffer_scale_at, sgd_element, sgd_scalars
from .schedule import TABLE, rate_inlined

# the rules with an exact linear form (fastdecay._rules), by public name
OPTIMIZER_CODES = {name: BY_NAME[name].code for name in LINEAR}

# columns of the per-step coefficients: w' = WW w + WG g + WB b, b' = BW w + BG g + BB b
WW = 0
WG = 1
WB = 2
BW = 3
BG = 4
BB = 5
N_COEF = 6

# coordinates a sub-block: its state (mean, second moments, curvature, noise: 7 arrays
# of float64, 56 kB) stays in L2 across the chunk's time loop, and each pass over it is
# long enough to hide the loop's set-up (1024 was the fastest of 128, 256, 1024 and 4096
# on the 2-core development VM, measured while it was shared)
BLOCK = 1024

# below this many element-steps (coefficients, or moments a step) a kernel runs on the
# calling thread (``run_small``): a small call (a search over settings) pays no wake-up
SERIAL_BELOW = 1 << 15

RO_INT64 = types.Array(int64, 1, "C", readonly=True)
RO_FLOAT64 = types.Array(float64, 1, "C", readonly=True)
RO_UINT8 = types.Array(uint8, 1, "C", readonly=True)
COEF = types.Array(float64, 3, "C", readonly=True)
STATE = float64[::1]


def run_small(kernel, work, *args):
    """``parallel.run_small`` below SERIAL_BELOW element-steps."""
    parallel.run_small(kernel, work, *args, below=SERIAL_BELOW)


@parallel.entry
@njit(void(TABLE, RO_INT64, TABLE, RO_INT64, TABLE, RO_INT64, int64, int64, int64, int64, float64[:, :, ::1]),
      parallel=True, cache=True, error_model="numpy")
def step_coefficients(lr_table, lr_rows, wd_table, wd_rows, mom_table, mom_rows, opt, on_drop, first_step, n_steps,
                      out):
    """out[r, s] = the step's coefficients (WW .. BB) of rate row r at step first_step + s.

    Row r reads learning-rate row lr_rows[r], weight-decay row wd_rows[r] and
    momentum row mom_rows[r] (a schedule, read at the step as in ``fd.simulate``;
    every rule but GD keeps its buffer). The weight decay is coupled (added to the
    gradient), as in ``fd.simulate``; the buffer's on_drop factor is the one
    ``fd.sgd_step`` applies.
    """
    use_momentum = opt != GD
    nesterov = opt == NESTEROV
    in_buffer = opt == LR_IN_BUFFER
    for r in prange(out.shape[0]):
        for s in range(n_steps):
            t = float(first_step + s)
            # (inlined: a call that takes a table counts references on it, ``_cpu.schedule``)
            lr = rate_inlined(lr_table, lr_rows[r], t)
            wd = rate_inlined(wd_table, wd_rows[r], t)
            mom = rate_inlined(mom_table, mom_rows[r], t) if use_momentum else 0.0
            scale = buffer_scale_at(lr_table, lr_rows[r], t, on_drop) if use_momentum else 1.0
            first = t == 0.0
            c = sgd_scalars(lr, wd, first, scale, mom, 0.0, nesterov, False, False, in_buffer)
            on = use_momentum and mom != 0.0  # (a step at momentum 0 leaves the buffer as it is: BB = 1)
            row = out[r, s]
            # the rule's response to a unit weight, a unit gradient and a unit buffer
            row[WW], row[BW] = sgd_element(1.0, 0.0, 0.0, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
                                           on, nesterov, first)
            row[WG], row[BG] = sgd_element(0.0, 1.0, 0.0, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
                                           on, nesterov, first)
            row[WB], row[BB] = sgd_element(0.0, 0.0, 1.0, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
                                           on, nesterov, first)
            if not use_momentum:
                row[BW] = row[BG] = row[BB] = 0.0
                row[WB] = 0.0


# The overflow of a diverging run: a second moment past float64's range is inf. Its arithmetic
# would make NaN (inf - inf in the momentum rules' cross terms, 0 * inf where no noise is beside
# a rate whose square overflows); every input is finite, so a NaN there is an overflow. The
# noise gains are held to the largest float (no noise then adds 0), and the second moments are
# made inf where NaN once a chunk (``_overflowed``), and a recorded sum likewise: a test in the
# element loop cost a momentum run ~10 %.
_LARGEST = np.finfo(np.float64).max


@njit(cache=True, inline="always")
def _second(x):
    """x, or inf where x is NaN (a second moment, or a sum of them, that overflowed)."""
    return x if x == x else np.inf


@njit(cache=True, inline="always")
def _held(gain):
    """A noise gain held within the largest float (its sign kept)."""
    return min(max(gain, -_LARGEST), _LARGEST)


@njit(cache=True, error_model="numpy")
def _overflowed(s):
    """The second moments ``s`` of a sub-block, NaN made inf (``_second``)."""
    for k in range(s.shape[0]):
        s[k] = _second(s[k])


@njit(cache=True, error_model="numpy")
def _record(lam, sww, t, every, first_record, partial):
    """At a recorded step t (a multiple of ``every``): partial[t // every - first_record] += sum lam sww."""
    if every > 0 and t % every == 0:
        total = 0.0
        for k in range(sww.shape[0]):
            total += lam[k] * sww[k]
        partial[t // every - first_record] += _second(total)


@njit(cache=True, error_model="numpy")
def _gd_steps(mw, sww, lam, var, inv_batch, coef, n_steps, every, first_step, first_record, partial):
    """Plain gradient descent on one sub-block for the chunk's steps: m' = a m,
    S' = a^2 S + q c^2 with a = WW + lam WG, c = WG. Adds 2 x loss at recorded steps
    into partial[j]."""
    prefer_wide_vectors()  # (multiplies and adds pace the coordinates' loop: 1.2-1.4x in 512-bit vectors)
    for s in range(n_steps):
        c = coef[s]
        ww, wg = c[WW], c[WG]
        gain = _held(wg * wg * inv_batch)
        for k in range(mw.shape[0]):
            a = ww + lam[k] * wg
            mw[k] = a * mw[k]
            sww[k] = a * a * sww[k] + gain * var[k]
        _record(lam, sww, first_step + s + 1, every, first_record, partial)
    _overflowed(sww)


@njit(cache=True, error_model="numpy")
def _momentum_steps(mw, mb, sww, swb, sbb, lam, var, inv_batch, coef, n_steps, every, first_step, first_record,
                    partial):
    """(weight, buffer) moments of one sub-block for the chunk's steps."""
    prefer_wide_vectors()  # (as ``_gd_steps``: 1.25-1.4x)
    for s in range(n_steps):
        c = coef[s]
        ww, wg, wb, bw, bg, bb = c[WW], c[WG], c[WB], c[BW], c[BG], c[BB]
        gww, gwb, gbb = _held(wg * wg * inv_batch), _held(wg * bg * inv_batch), _held(bg * bg * inv_batch)
        for k in range(mw.shape[0]):
            a11 = ww + lam[k] * wg
            a21 = bw + lam[k] * bg
            x, y = mw[k], mb[k]
            mw[k] = a11 * x + wb * y
            mb[k] = a21 * x + bb * y
            p, q, r = sww[k], swb[k], sbb[k]
            # rows of A S, then (A S) A^T
            u1 = a11 * p + wb * q
            u2 = a11 * q + wb * r
            v1 = a21 * p + bb * q
            v2 = a21 * q + bb * r
            v = var[k]
            sww[k] = u1 * a11 + u2 * wb + gww * v
            swb[k] = u1 * a21 + u2 * bb + gwb * v
            sbb[k] = v1 * a21 + v2 * bb + gbb * v
        _record(lam, sww, first_step + s + 1, every, first_record, partial)
    _overflowed(sww)
    _overflowed(sbb)


_SIGNATURE = void(
    STATE, STATE, STATE, STATE, STATE,                # mw, mb, sww, swb, sbb (n*d; mb, swb, sbb empty for gd)
    RO_FLOAT64, RO_INT64, RO_FLOAT64, RO_INT64,       # lam (rows*d) and its row per trajectory; var likewise
    RO_FLOAT64, COEF, RO_INT64,                       # inv_batch (n), coef (R, n_steps, N_COEF), coef row (n)
    RO_UINT8,                                         # active (n), or empty: every trajectory
    int64, int64, int64, int64, int64, int64,         # d, n_blocks, first_step, n_steps, every, first_record
    float64[:, :, ::1],                               # partial (n, n_blocks, n_columns): 2 x loss sums
)


@parallel.entry
@njit(_SIGNATURE, parallel=True, cache=True, error_model="numpy")
def propagate(mw, mb, sww, swb, sbb, lam, lam_rows, var, var_rows, inv_batch, coef, coef_rows, active,
              d, n_blocks, first_step, n_steps, every, first_record, partial):
    """Advance the moments of every element by steps first_step .. first_step + n_steps - 1.

    Trajectory i's coordinates are split into ``n_blocks`` spans (a tile each, in
    parallel); lam and var (sigma^2 per coordinate) are read from rows
    lam_rows[i] / var_rows[i] of their (rows, d) tables, the noise variance is
    var * inv_batch[i], the coefficients are coef[coef_rows[i], s]. With
    ``every`` > 0, sum_k lam_k S_ww,k after each step t + 1 that is a multiple of
    ``every`` is added into partial[i, block, (t + 1) // every - first_record].
    Trajectories with active[i] == 0 are left as they are (an empty ``active``:
    none).
    """
    n = inv_batch.shape[0]
    momentum = mb.shape[0] != 0
    span = (d + n_blocks - 1) // n_blocks
    for tile in prange(n * n_blocks):
        i = tile // n_blocks
        if active.shape[0] != 0 and active[i] == 0:
            continue
        kb = tile - i * n_blocks
        k_lo = kb * span
        k_hi = min(d, k_lo + span)
        base = i * d
        lam_base = lam_rows[i] * d
        var_base = var_rows[i] * d
        c = coef[coef_rows[i]]
        out = partial[i, kb]
        for k0 in range(k_lo, k_hi, BLOCK):
            k1 = min(k_hi, k0 + BLOCK)
            a, b = base + k0, base + k1
            la = lam[lam_base + k0:lam_base + k1]
            va = var[var_base + k0:var_base + k1]
            if momentum:
                _momentum_steps(mw[a:b], mb[a:b], sww[a:b], swb[a:b], sbb[a:b], la, va, inv_batch[i], c,
                                n_steps, every, first_step, first_record, out)
            else:
                _gd_steps(mw[a:b], sww[a:b], la, va, inv_batch[i], c, n_steps, every, first_step, first_record,
                          out)


@parallel.entry
@njit(void(STATE, RO_FLOAT64, RO_INT64, int64, float64[::1]), parallel=True, cache=True)
def weighted_sums(sww, lam, lam_rows, d, out):
    """out[i] = sum_k lam_k sww[i, k] (twice the expected loss of trajectory i)."""
    for i in prange(out.shape[0]):
        lam_base = lam_rows[i] * d
        total = 0.0
        for k in range(d):
            total += lam[lam_base + k] * sww[i * d + k]
        out[i] = total
