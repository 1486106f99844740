"""Closed-form diagnostics of a schedule against curvatures (the seed analysis).

Each function is vectorised over the schedule batch and over an array of
curvatures (eigenvalues λ of any shape): the result has one value per λ and per
schedule, ``np.broadcast_shapes(schedule.batch_shape, np.shape(curvature))``,
with a trailing step axis where the diagnostic is a trajectory over steps.
The rates are read from the schedule's closed form in blocks of steps, so
memory stays bounded whatever the number of steps.

>>> import fastdecay as fd
>>> fd.stability_onset(fd.exponential(lr=1.0, gamma=0.7), 5.0, max_steps=100)
3
>>> fd.stability_onset(fd.step(lr=1.0, gamma=0.1, period=10), 5.0, max_steps=100)
10
"""

from typing import NamedTuple

import numpy as np

from . import _validate as V
from .schedules import match_half_life

__all__ = [
    "stability_onset",
    "escape_probability",
    "EscapeProbability",
    "adam_effective_step",
    "discretization_divergence",
]

# rates evaluated per block: block_steps * number of outputs stays below this
_BLOCK_ELEMENTS = 1 << 22


def _step_count(name, n):
    """A number of steps: an integer in [0, 2**63)."""
    return V.integer(name, n, low=0, high=V.MAX_STEP + 1)


def _out_shape(s, *arrays, names):
    try:
        return np.broadcast_shapes(s.batch_shape, *(a.shape for a in arrays))
    except ValueError:
        shapes = ", ".join(f"{n} {a.shape}" for n, a in zip(names, arrays))
        raise ValueError(
            f"the schedule's batch_shape {s.batch_shape} does not broadcast with {shapes}"
        ) from None


def _rate_blocks(s, steps, out_ndim):
    """Yield (first step, rates) with rates shaped to broadcast against ``out_ndim`` outputs
    plus a trailing block-of-steps axis."""
    per_step = max(1, s.size)
    block = max(1, min(steps, _BLOCK_ELEMENTS // per_step))
    lead = (1,) * (out_ndim - len(s.batch_shape))
    for a in range(0, steps, block):
        b = min(steps, a + block)
        rates = s.table(np.arange(a, b))
        yield a, rates.reshape(lead + rates.shape)


def _as_result(a):
    a = np.asarray(a)
    return a.item() if a.ndim == 0 else a


def stability_onset(schedule, curvature, *, max_steps):
    """The first step t < ``max_steps`` with η_t · λ < 2, or −1 if there is none.

    From that step on (while the rate keeps decaying) gradient descent on the
    direction of curvature λ contracts: |1 − η_t λ| < 1. Vectorised: one value
    per λ and schedule, shape ``broadcast(schedule.batch_shape, curvature.shape)``.
    No torch/optax counterpart.

    The seed's example: λ = 5 contracts at t* = 3 under exponential decay 0.7^t
    from lr 1, but only at the first drop, t* = 10, under step decay 0.1 every 10:

    >>> import fastdecay as fd
    >>> both = fd.stack([fd.exponential(lr=1.0, gamma=0.7), fd.step(lr=1.0, gamma=0.1, period=10)])
    >>> fd.stability_onset(both, 5.0, max_steps=100).tolist()
    [3, 10]
    >>> fd.stability_onset(fd.constant(1.0), [1.0, 5.0], max_steps=50).tolist()
    [0, -1]
    """
    s = V.schedule("schedule", schedule)
    lam = V.real_array("curvature", curvature)
    max_steps = _step_count("max_steps", max_steps)
    shape = _out_shape(s, lam, names=["curvature"])
    onset = np.full(shape, -1, dtype=np.int64)
    undecided = np.ones(shape, dtype=bool)
    lam_b = lam.reshape((1,) * (len(shape) - lam.ndim) + lam.shape)[..., None]
    for a, rates in _rate_blocks(s, max_steps, len(shape)):
        stable = np.broadcast_to(rates * lam_b < 2.0, shape + rates.shape[-1:])
        hit = stable.any(axis=-1) & undecided
        onset[hit] = a + np.argmax(stable, axis=-1)[hit]
        undecided &= ~hit
        if not undecided.any():
            break
    return _as_result(onset)


class EscapeProbability(NamedTuple):
    """``per_step[..., t]`` = p_t, ``cumulative[..., t]`` = 1 − Π_{τ ≤ t} (1 − p_τ)."""

    per_step: np.ndarray
    cumulative: np.ndarray


def escape_probability(schedule, barrier, c, steps):
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
    barrier = V.real_array("barrier", barrier, low=0.0)
    c = V.real_array("c", c, low=0.0, low_open=True)
    steps = _step_count("steps", steps)
    shape = _out_shape(s, barrier, c, names=["barrier", "c"])
    ratio = (barrier / c).reshape((1,) * (len(shape) - np.ndim(barrier / c)) + np.shape(barrier / c))[..., None]
    per_step = np.empty(shape + (steps,))
    for a, rates in _rate_blocks(s, steps, len(shape)):
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.exp(-ratio / rates)
        # a zero rate never escapes, a zero barrier always does (0/0 counts as no barrier)
        p = np.where(ratio == 0.0, 1.0, np.where(rates == 0.0, 0.0, p))
        per_step[..., a:a + rates.shape[-1]] = p
    with np.errstate(divide="ignore"):
        cumulative = -np.expm1(np.cumsum(np.log1p(-per_step), axis=-1))
    return EscapeProbability(per_step, cumulative)


def adam_effective_step(schedule, steps, *, betas=(0.9, 0.999)):
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
    t1 = np.arange(1, steps + 1, dtype=np.float64)
    factor = -np.expm1(t1 * np.log(beta1) if beta1 > 0 else np.full(steps, -np.inf))
    factor /= np.sqrt(-np.expm1(t1 * np.log(beta2) if beta2 > 0 else np.full(steps, -np.inf)))
    return s.table(steps) * factor


def discretization_divergence(s, curvature, steps):
    """|w_N| under the step schedule ``s`` over |w_N| under its half-life-matched
    exponential (``fd.match_half_life(s)``), for plain gradient descent on ½ λ w².

    GD multiplies w by (1 − η_t λ) each step, so the ratio is
    Π_{t<N} |1 − η^step_t λ| / |1 − η^exp_t λ|, computed as a sum of logarithms
    (no overflow). 1 means the staircase and its smooth twin end at the same
    distance from the minimum; > 1 the staircase lags behind. ``nan`` where both
    trajectories hit 0 exactly (η_t λ = 1). Shape ``broadcast(s.batch_shape, curvature.shape)``.

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
    lam_b = lam.reshape((1,) * (len(shape) - lam.ndim) + lam.shape)[..., None]
    log_ratio = np.zeros(shape)
    blocks = zip(_rate_blocks(s, steps, len(shape)), _rate_blocks(e, steps, len(shape)))
    with np.errstate(divide="ignore", invalid="ignore"):
        for (_, r_step), (_, r_exp) in blocks:
            log_ratio += np.sum(np.log(np.abs(1.0 - r_step * lam_b)) - np.log(np.abs(1.0 - r_exp * lam_b)), axis=-1)
        return _as_result(np.exp(log_ratio))
