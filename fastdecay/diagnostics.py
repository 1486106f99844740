"""Closed-form diagnostics of a schedule against curvatures: where gradient descent
becomes stable, how likely an escape over a barrier is, Adam's effective step, and how
far a step schedule and its smooth exponential twin end apart.

Each function is vectorised over the schedule batch and over an array of
curvatures (eigenvalues λ of any shape): the result has one value per λ and per
schedule, ``np.broadcast_shapes(schedule.batch_shape, np.shape(curvature))``,
with a trailing step axis where the diagnostic is a trajectory over steps.
The rates are read from the schedule's closed form in blocks of steps, so
memory stays bounded whatever the number of steps. Computed on the host; a torch
tensor or CuPy array among the curvature-like arguments gets its results back in
its own array type (a tensor on its device).

>>> import fastdecay as fd
>>> fd.stability_onset(fd.exponential(lr=1.0, gamma=0.7), 5.0, max_steps=100)
3
>>> fd.stability_onset(fd.step(lr=1.0, gamma=0.1, period=10), 5.0, max_steps=100)
10
"""

from __future__ import annotations

import math
from typing import Any, Iterator, NamedTuple

import numpy as np
from numpy.typing import NDArray

from . import _layout as L
from . import _validate as V
from ._arrays import in_type_of
from ._typing import FloatArray, RealArrayLike, Shape
from .schedules import Schedule, match_half_life

__all__ = [
    "stability_onset",
    "escape_probability",
    "EscapeProbability",
    "adam_effective_step",
    "discretization_divergence",
]

# rates evaluated per block: block_steps * number of outputs stays below this
_BLOCK_ELEMENTS = 1 << 22


def _step_count(name: str, n: object) -> int:
    """A number of steps: an integer in [0, 2**63)."""
    return V.integer(name, n, low=0, high=V.MAX_STEP_COUNT + 1)


def _out_shape(s: Schedule, *arrays: np.ndarray, names: list[str]) -> Shape:
    """The outputs' shape: the schedule's batch and ``arrays`` broadcast (ValueError naming
    them where they do not, or where a few float64 arrays of that shape do not fit in memory)."""
    shapes = ", ".join(f"{n} {a.shape}" for n, a in zip(names, arrays))
    try:
        shape = np.broadcast_shapes(s.batch_shape, *(a.shape for a in arrays))
    except ValueError:
        raise ValueError(
            f"the schedule's batch_shape {s.batch_shape} does not broadcast with {shapes}"
        ) from None
    V.fits(shape, 32, asks=lambda: f"the schedule's batch_shape {s.batch_shape} with {shapes} asks")
    return shape


def _rate_blocks(s: Schedule, steps: int, shape: Shape) -> Iterator[tuple[int, FloatArray]]:
    """Yield (first step, rates) with rates shaped to broadcast against outputs of ``shape``
    plus a trailing block-of-steps axis. Blocks start short and double up to
    _BLOCK_ELEMENTS of outputs x steps, so a caller that stops early reads few steps."""
    per_step = max(1, math.prod(shape), s.size)
    largest = max(1, _BLOCK_ELEMENTS // per_step)
    block = min(largest, 256)
    lead = (1,) * (len(shape) - len(s.batch_shape))
    a = 0
    while a < steps:
        b = min(steps, a + block)
        rates = s.table(np.arange(a, b))
        yield a, rates.reshape(lead + rates.shape)
        a, block = b, min(largest, 2 * block)


def _never_falls(s: Schedule, t: int) -> NDArray[np.bool_]:
    """Where each schedule of ``s`` (shape ``batch_shape``) never has a lower rate after step
    ``t`` than at ``t``: its last segment is in effect at ``t`` and holds (``_holds``), or is
    a product whose factors all hold (rates are >= 0: a product of rates that do not fall
    does not fall)."""
    rows = s.rows()
    start = rows[..., L.START]
    active = np.cumprod(start <= t, axis=-1).sum(axis=-1) - 1  # segments are sorted; NaN / inf end them
    n_seg = start.shape[-1]
    following = np.take_along_axis(start, np.minimum(active + 1, n_seg - 1)[:, None], axis=-1)[:, 0]
    last = (active + 1 >= n_seg) | ~(following < np.inf)
    seg = np.take_along_axis(rows, active[:, None, None], axis=1)[:, 0]
    held = _holds(seg, t)
    product = seg[:, L.KIND] == L.PRODUCT
    if product.any():  # the factor rows (side rows, never products themselves) of each product
        first, count = seg[:, L.P0].astype(np.int64), np.where(product, seg[:, L.P0 + 1], 0).astype(np.int64)
        k = np.arange(count.max())
        mine = k < count[:, None]
        factors = np.take_along_axis(rows, np.where(mine, first[:, None] + k, 0)[:, :, None], axis=1)
        factors_held = _holds(factors.reshape(-1, L.WIDTH), t).reshape(mine.shape)
        held = np.where(product, np.all(factors_held | ~mine, axis=1), held)
    return (last & held).reshape(s.batch_shape)


def _holds(seg: FloatArray, t: int) -> NDArray[np.bool_]:
    """Where segment rows ``seg`` (shape (n, WIDTH), any kind but PRODUCT) give no lower rate
    after step ``t`` than at ``t``: a constant, a decay already at its end (polynomial not
    cycling, cosine, cosine power, one-minus-power, a table past its last value), or a rate
    that does not decrease (exponential with gamma >= 1, inverse time with k = 0 or power <= 0)."""
    kind, origin, p = seg[:, L.KIND], seg[:, L.ORIGIN], seg[:, L.P0:]
    ended = t >= origin + p[:, 1]  # the decays' length T is their second parameter
    held = (kind == L.CONSTANT) | (np.isin(kind, (L.COSINE, L.COSINE_POWER, L.ONE_MINUS_POWER)) & ended)
    held |= (kind == L.POLYNOMIAL) & (p[:, 4] == 0) & ended
    held |= (kind == L.TABULATED) & (t >= origin + p[:, 1] - 1)
    held |= (kind == L.EXPONENTIAL) & (p[:, 0] >= 0) & (p[:, 1] >= 1)
    held |= (kind == L.INVERSE_TIME) & (p[:, 0] >= 0) & ((p[:, 1] == 0) | (p[:, 4] <= 0))
    return held


def _as_result(a: Any) -> Any:
    a = np.asarray(a)
    return a.item() if a.ndim == 0 else a


def stability_onset(schedule: Schedule, curvature: RealArrayLike, *, max_steps: int,
                    contracting: bool = False) -> int | NDArray[np.int64]:
    """The first step t < ``max_steps`` with η_t · λ < 2, or −1 if there is none.

    From that step on (while the rate keeps decaying) gradient descent on the direction
    of curvature λ > 0 no longer grows: |1 − η_t λ| <= 1, below the ceiling λ < 2/η_t. A
    step at rate 0 (a warmup's first) and a curvature λ <= 0 are below it at once (t = 0).
    With ``contracting=True``: the first step with 0 < η_t · λ < 2, where a step contracts
    (|1 − η_t λ| < 1), which a zero rate and a curvature λ <= 0 never do (−1 for λ <= 0).
    Vectorised: one value per λ and schedule, shape ``broadcast(schedule.batch_shape,
    curvature.shape)``. No torch/optax counterpart.

    For example, λ = 5 contracts at t* = 3 under exponential decay 0.7^t
    from lr 1, but only at the first drop, t* = 10, under step decay 0.1 every 10:

    >>> import fastdecay as fd
    >>> both = fd.stack([fd.exponential(lr=1.0, gamma=0.7), fd.step(lr=1.0, gamma=0.1, period=10)])
    >>> fd.stability_onset(both, 5.0, max_steps=100).tolist()
    [3, 10]
    >>> fd.stability_onset(fd.constant(1.0), [1.0, 5.0], max_steps=50).tolist()
    [0, -1]
    >>> warm = fd.warmup(fd.constant(0.1), 5)       # rates 0, 0.02, 0.04, ...
    >>> fd.stability_onset(warm, 1.0, max_steps=10), fd.stability_onset(warm, 1.0, max_steps=10, contracting=True)
    (0, 1)

    Steps are read in blocks and the search stops once every value is decided:
    at its onset, or where the rate can no longer fall (a constant, a decay past
    its end, a table past its last value, a growing exponential, a product of
    such rates), so a huge ``max_steps`` costs no more than the schedule needs. Only
    a cycling rate that stays above 2/λ (cyclic, cosine restarts) is read up to
    ``max_steps``.
    """
    s = V.schedule("schedule", schedule)
    lam = V.real_array("curvature", curvature)
    max_steps = _step_count("max_steps", max_steps)
    contracting = V.flag("contracting", contracting)
    shape = _out_shape(s, lam, names=["curvature"])
    onset = np.full(shape, -1, dtype=np.int64)
    undecided = np.ones(shape, dtype=bool)
    lam_b = lam.reshape((1,) * (len(shape) - lam.ndim) + lam.shape)[..., None]
    lead = (1,) * (len(shape) - len(s.batch_shape))
    if contracting:  # a curvature <= 0 never contracts (rates are >= 0): -1 now, not after max_steps
        undecided &= ~np.broadcast_to(lam_b[..., 0] <= 0.0, shape)
    for a, rates in _rate_blocks(s, max_steps, shape):
        if not undecided.any():
            break
        with np.errstate(over="ignore"):  # (an infinite product is above the ceiling)
            product = rates * lam_b
        below = (product > 0.0) & (product < 2.0) if contracting else product < 2.0
        stable = np.broadcast_to(below, shape + rates.shape[-1:])
        hit = stable.any(axis=-1) & undecided
        onset[hit] = a + np.argmax(stable, axis=-1)[hit]
        undecided &= ~hit
        if undecided.any():  # a rate that never falls below its value at the block's last step never decides
            undecided &= ~np.broadcast_to(_never_falls(s, a + rates.shape[-1] - 1).reshape(lead + s.batch_shape), shape)
        if not undecided.any():
            break
    return in_type_of((curvature,), _as_result(onset))


class EscapeProbability(NamedTuple):
    """``per_step[..., t]`` = p_t, ``cumulative[..., t]`` = 1 − Π_{τ ≤ t} (1 − p_τ).

    >>> import fastdecay as fd
    >>> r = fd.escape_probability(fd.constant(1.0), barrier=[1.0, 2.0], c=1.0, steps=3)
    >>> r.per_step.shape, r.cumulative[:, -1].round(4).tolist()    # 1 - (1 - e^-barrier)^3
    ((2, 3), [0.7474, 0.3535])
    """

    per_step: FloatArray
    cumulative: FloatArray


def escape_probability(schedule: Schedule, barrier: RealArrayLike, c: RealArrayLike, steps: int) -> EscapeProbability:
    """Arrhenius-style escape chances over a barrier: p_t = exp(−barrier / (c · η_t)).

    ``per_step`` is p_t for t < ``steps``; ``cumulative`` the chance of at least
    one escape by step t, 1 − Π_{τ≤t}(1 − p_τ) (computed with log1p/expm1). Shape
    ``broadcast(schedule.batch_shape, barrier.shape, c.shape) + (steps,)``. A
    decaying rate freezes the iterate in its basin: p_t falls as η_t does.
    No torch/optax counterpart.

    >>> import fastdecay as fd
    >>> r = fd.escape_probability(fd.step(lr=1.0, gamma=0.5, period=2), barrier=1.0, c=1.0, steps=4)
    >>> r.per_step.round(4).tolist()
    [0.3679, 0.3679, 0.1353, 0.1353]
    >>> round(float(r.cumulative[1]), 4)   # 1 - (1 - e^-1)^2
    0.6004
    """
    s = V.schedule("schedule", schedule)
    barrier_in, c_in = barrier, c
    barrier = V.real_array("barrier", barrier, low=0.0)
    c = V.real_array("c", c, low=0.0, low_open=True)
    steps = _step_count("steps", steps)
    shape = _out_shape(s, barrier, c, names=["barrier", "c"])
    V.fits_in_memory("steps", steps, shape + (steps,), 16)  # per_step and cumulative

    def aligned(x: FloatArray) -> FloatArray:  # (..., 1), its batch axes aligned with shape's last ones
        return x.reshape((1,) * (len(shape) - x.ndim) + x.shape)[..., None]

    with np.errstate(over="ignore", under="ignore"):  # (an infinite ratio: never escapes at a positive rate)
        ratio = aligned(barrier / c)
    no_barrier = aligned(np.broadcast_to(barrier == 0.0, np.broadcast_shapes(barrier.shape, c.shape)))
    per_step = np.empty(shape + (steps,))
    for a, rates in _rate_blocks(s, steps, shape):
        with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
            p = np.exp(-ratio / rates)
        # a zero rate never escapes, a zero barrier always does (0/0 counts as no barrier); a
        # positive barrier over a large c may underflow to a ratio of 0: still none at a zero rate
        p = np.where(no_barrier, 1.0, np.where(rates == 0.0, 0.0, p))
        per_step[..., a:a + rates.shape[-1]] = p
    with np.errstate(divide="ignore"):
        cumulative = -np.expm1(np.cumsum(np.log1p(-per_step), axis=-1))
    return EscapeProbability(in_type_of((barrier_in, c_in), per_step), in_type_of((barrier_in, c_in), cumulative))


def adam_effective_step(schedule: Schedule, steps: int, *, betas: tuple[float, float] = (0.9, 0.999)) -> FloatArray:
    """S_t = η_t (1 − β1^(t+1)) / sqrt(1 − β2^(t+1)) for t < ``steps``.

    The size of Adam's step without bias correction under a constant gradient
    (m_t / sqrt(v_t) = (1 − β1^(t+1)) / sqrt(1 − β2^(t+1))): the implicit warm-up
    (or, for β1 large against β2, the boost) that the moment averages put on top
    of the external schedule η_t, which torch's / optax's bias-corrected Adam
    removes. Shape ``schedule.batch_shape + (steps,)``.

    >>> import fastdecay as fd
    >>> fd.adam_effective_step(fd.constant(1.0), 3, betas=(0.9, 0.999)).round(4).tolist()
    [3.1623, 4.2496, 4.9502]
    """
    s = V.schedule("schedule", schedule)
    steps = _step_count("steps", steps)
    beta1, beta2 = V.betas(betas)
    V.fits_in_memory("steps", steps, s.batch_shape + (steps,), 24)  # the rates, the factor, the result
    t1 = np.arange(1, steps + 1, dtype=np.float64)
    factor = -np.expm1(t1 * np.log(beta1) if beta1 > 0 else np.full(steps, -np.inf))
    factor /= np.sqrt(-np.expm1(t1 * np.log(beta2) if beta2 > 0 else np.full(steps, -np.inf)))
    return s.table(steps) * factor


def discretization_divergence(s: Schedule, curvature: RealArrayLike, steps: int) -> float | FloatArray:
    """|w_N| under the step schedule ``s`` over |w_N| under its half-life-matched
    exponential (``fd.match_half_life(s)``), for plain gradient descent on ½ λ w².

    GD multiplies w by (1 − η_t λ) each step, so the ratio is
    Π_{t<N} |1 − η^step_t λ| / |1 − η^exp_t λ|, computed as a sum of logarithms
    (no overflow). 1 means the staircase and its smooth twin end at the same
    distance from the minimum; > 1 the staircase lags behind. ``nan`` where both
    trajectories hit 0 exactly (η_t λ = 1). Shape ``broadcast(s.batch_shape, curvature.shape)``.

    Both rates decay geometrically, so the factors tend to 1: the loop over steps
    stops once the remaining ones cannot change the float64 result (bounded by
    their geometric sums), and any ``steps`` up to 2**63 − 1 answers in time set
    by the schedules (about period · 40 / −ln gamma steps), not by ``steps``.
    Settings that would need more than 1e10 rate evaluations (outputs x steps
    read; gamma very close to 1) are refused up front.

    >>> import fastdecay as fd
    >>> round(fd.discretization_divergence(fd.step(lr=0.1, gamma=0.5, period=10), 1.0, 10), 4)
    0.7586
    """
    s = V.schedule("s", s)
    if s.kind != "step":
        raise ValueError(f"s must be a step schedule (fd.step), got a {s.kind} schedule: {s!r}")
    lam = V.real_array("curvature", curvature)
    steps = _step_count("steps", steps)
    e = match_half_life(s)
    shape = _out_shape(s, lam, names=["curvature"])
    lead = (1,) * (len(shape) - len(s.batch_shape))
    lam_b = lam.reshape((1,) * (len(shape) - lam.ndim) + lam.shape)[..., None]
    abs_lam = np.abs(lam_b[..., 0])
    p = s.params
    gamma = np.broadcast_to(p["gamma"], s.batch_shape).reshape(lead + s.batch_shape)
    period = np.broadcast_to(p["period"], s.batch_shape).reshape(lead + s.batch_shape)
    g = gamma ** (1.0 / period)  # the matched exponential's factor per step
    # After step b both rates only fall: sum_{t >= b} |log|1 - eta_t lam|| <= 2 |lam| sum eta_t while
    # |lam| eta_b <= 1/2, and the sums are geometric: eta_b ceil(P) / (1 - gamma) for the staircase,
    # eta_b / (1 - g) for the exponential. Once that bound is below _NEGLIGIBLE for every output
    # the remaining steps cannot change the result in float64, and the loop stops.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        spread = np.ceil(period) / (1.0 - gamma) + 1.0 / (1.0 - g)
        lr = np.broadcast_to(p["lr"], s.batch_shape).reshape(lead + s.batch_shape)
        scale = abs_lam * lr  # |lam| eta_0
        # eta_t <= lr gamma^(t/P - 1): the steps until both conditions hold, per output
        level = np.minimum(_NEGLIGIBLE / (2.0 * scale * spread), 0.5 * gamma / scale)
        needed = np.where(level >= 1.0, 0.0, period * np.log(level) / np.log(gamma))
    work = float(np.max(np.minimum(needed, steps), initial=0.0)) * max(1, math.prod(shape))
    if work > _MAX_RATE_EVALUATIONS:
        raise ValueError(
            f"steps={V.shown(steps)} would need about {work:.2g} rate evaluations before the remaining steps stop "
            f"mattering (gamma close to 1 decays slowly); at most {_MAX_RATE_EVALUATIONS:.0e} are done: give "
            f"fewer steps, fewer curvatures or schedules"
        )
    log_ratio = np.zeros(shape)
    blocks = zip(_rate_blocks(s, steps, shape), _rate_blocks(e, steps, shape))
    with np.errstate(divide="ignore", invalid="ignore"):
        for (_, r_step), (_, r_exp) in blocks:
            log_ratio += np.sum(np.log(np.abs(1.0 - r_step * lam_b)) - np.log(np.abs(1.0 - r_exp * lam_b)), axis=-1)
            x_step, x_exp = abs_lam * r_step[..., -1], abs_lam * r_exp[..., -1]
            tail = 2.0 * (x_step * np.ceil(period) / (1.0 - gamma) + x_exp / (1.0 - g))
            if np.all((x_step <= 0.5) & (x_exp <= 0.5) & (tail < _NEGLIGIBLE)):
                break
        return in_type_of((curvature,), _as_result(np.exp(log_ratio)))


# discretization_divergence: a tail of log factors below this changes no float64 result
_NEGLIGIBLE = 2.0**-60
# the most rate evaluations (outputs x steps) it does before answering
_MAX_RATE_EVALUATIONS = 1e10
