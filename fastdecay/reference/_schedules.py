"""Reference closed forms of every schedule: plain NumPy and Python, obvious, slow.

Each ``<kind>_lr(t, ...)`` is the formula as torch's scheduler documentation,
Keras or optax write it, with the argument names of the ``fastdecay`` factory of
the same kind. None of them reads the packed segment table or calls a kernel:
they are the oracle the kernels are tested against. Parameters and ``t``
broadcast against each other by NumPy rules; the result is a float64 array
(a 0-d array for scalar inputs).

Composite schedules (``warmup_lr``, ``join_lr``) take their parts as callables
``f(t) -> rate``. ``schedule_lr(s, t)`` evaluates a ``fastdecay.Schedule`` from
its ``kind`` and ``params`` alone (recursively for warmup, join, product and stack), so
it shares nothing with the table the kernels read.

>>> import numpy as np
>>> step_lr(np.arange(4), lr=1.0, gamma=0.5, period=2).tolist()
[1.0, 1.0, 0.5, 0.5]
>>> float(exponential_lr(10, lr=0.1, gamma=0.9))
0.03486784401000001
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from .._typing import ArrayLike, FloatArray

if TYPE_CHECKING:
    from ..schedules import Schedule

__all__ = [
    "constant_lr",
    "step_lr",
    "multistep_lr",
    "exponential_lr",
    "inverse_time_lr",
    "polynomial_lr",
    "cosine_lr",
    "cosine_restarts_lr",
    "linear_lr",
    "piecewise_lr",
    "warmup_lr",
    "join_lr",
    "one_cycle_lr",
    "one_cycle_momentum_lr",
    "cyclic_lr",
    "cyclic_momentum_lr",
    "inverse_sqrt_lr",
    "wsd_lr",
    "tabulated_lr",
    "product_lr",
    "schedule_lr",
    "quantization_gap_log",
]


def _f(x: Any) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _elementwise(fn: Callable[..., float], t: ArrayLike, *params: ArrayLike) -> FloatArray:
    """Apply a scalar Python function over the broadcast of ``t`` and ``params``."""
    arrays = np.broadcast_arrays(_f(t), *(_f(p) for p in params))
    out = np.empty(arrays[0].shape)
    for index in np.ndindex(out.shape):
        out[index] = fn(*(float(a[index]) for a in arrays))
    return out


def _scaled(lr: ArrayLike, gamma: ArrayLike, e: ArrayLike) -> FloatArray:
    """lr · gamma^e, 0 where lr is 0 even where the power overflows (as torch's chained
    schedulers keep a rate of 0)."""
    lr = _f(lr)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(lr == 0.0, lr, lr * _f(gamma) ** _f(e))


def constant_lr(t: ArrayLike, lr: ArrayLike) -> FloatArray:
    """η_t = lr."""
    t, lr = np.broadcast_arrays(_f(t), _f(lr))
    return lr.copy()


def step_lr(t: ArrayLike, lr: ArrayLike, gamma: ArrayLike, period: ArrayLike) -> FloatArray:
    """η_t = lr · gamma^⌊t/period⌋ (torch ``StepLR``)."""
    return _scaled(lr, gamma, np.floor(_f(t) / _f(period)))


def multistep_lr(t: ArrayLike, lr: ArrayLike, gamma: ArrayLike, milestones: ArrayLike) -> FloatArray:
    """η_t = lr · gamma^(number of milestones ≤ t) (torch ``MultiStepLR``; a repeated
    milestone counts as often as it appears)."""
    t = _f(t)
    count = np.zeros(np.shape(t))
    for m in np.asarray(milestones, dtype=np.float64).ravel():
        count = count + (t >= m)
    return _scaled(lr, gamma, count)


def exponential_lr(t: ArrayLike, lr: ArrayLike, gamma: ArrayLike | None = None, rate: ArrayLike | None = None,
                   half_life: ArrayLike | None = None, decay_steps: ArrayLike = 1, staircase: bool = False,
                   end_lr: ArrayLike | None = None) -> FloatArray:
    """η_t = lr · gamma^(t/decay_steps), the exponent floored when ``staircase``.

    Keras ``ExponentialDecay``, optax ``exponential_decay``; gamma = e^−rate or
    2^(−1/half_life) when those are given instead. ``end_lr`` as optax's ``end_value``:
    max(η_t, end_lr) when gamma < 1, min(η_t, end_lr) otherwise.
    """
    if gamma is None:
        gamma = np.exp(-_f(rate)) if rate is not None else 2.0 ** (-1.0 / _f(half_life))
    e = _f(t) / _f(decay_steps)
    if staircase:
        e = np.floor(e)
    value = _scaled(lr, gamma, e)
    if end_lr is not None:
        value = np.where(_f(gamma) < 1.0, np.maximum(value, end_lr), np.minimum(value, end_lr))
    return value


def inverse_time_lr(t: ArrayLike, lr: ArrayLike, rate: ArrayLike, decay_steps: ArrayLike = 1, staircase: bool = False
                    ) -> FloatArray:
    """η_t = lr / (1 + rate · t/decay_steps), floored when ``staircase`` (Keras ``InverseTimeDecay``)."""
    e = _f(t) / _f(decay_steps)
    if staircase:
        e = np.floor(e)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(_f(lr) == 0.0, _f(lr), _f(lr) / (1.0 + _f(rate) * e))


def polynomial_lr(t: ArrayLike, lr: ArrayLike, total_steps: ArrayLike, power: ArrayLike = 1.0, end_lr: ArrayLike = 0.0,
                  cycle: bool = False) -> FloatArray:
    """Keras ``PolynomialDecay``: (lr − end_lr)(1 − t'/T')^power + end_lr.

    Without ``cycle``: t' = min(t, T), T' = T. With it: t' = t and T' = T ·
    ceil(t/T), T' = T at t = 0.
    """
    t, T = _f(t), _f(total_steps)
    if cycle:
        T = T * np.maximum(np.ceil(t / T), 1.0)
    else:
        t = np.minimum(t, T)
    return (_f(lr) - _f(end_lr)) * (1.0 - t / T) ** _f(power) + _f(end_lr)


def cosine_lr(t: ArrayLike, lr: ArrayLike, total_steps: ArrayLike, min_lr: ArrayLike = 0.0, num_cycles: ArrayLike = 0.5,
              exponent: ArrayLike = 1.0) -> FloatArray:
    """min_lr + (lr − min_lr)((1 + cos(2π·num_cycles·min(t, T)/T))/2)^exponent (torch
    ``CosineAnnealingLR`` up to T; Keras ``CosineDecay`` with alpha = min_lr/lr; optax
    ``cosine_decay_schedule`` with its exponent; transformers' num_cycles)."""
    t, T = _f(t), _f(total_steps)
    wave = (1.0 + np.cos(2.0 * np.pi * _f(num_cycles) * np.minimum(t, T) / T)) / 2.0
    return _f(min_lr) + (_f(lr) - _f(min_lr)) * wave ** _f(exponent)


def cosine_restarts_lr(t: ArrayLike, lr: ArrayLike, period: ArrayLike, period_mult: ArrayLike = 1,
                       min_lr: ArrayLike = 0.0, cycle_decay: ArrayLike = 1.0, decay_amplitude: bool = False,
                       cycle_limit: int | None = None) -> FloatArray:
    """SGDR (torch ``CosineAnnealingWarmRestarts``): cycles of length period · period_mult^k,
    cycle k starting at S_k = period · (period_mult^k − 1)/(period_mult − 1) in float64 (the
    cycles walked one by one), or with period_mult 1 at period · k, the cycle found as Keras
    does, ⌊t/period⌋ in float64 (``fd.cosine_restarts``' definition for a period that is not
    whole); cycle k from lr · cycle_decay^k (timm), or min_lr + (lr − min_lr) · cycle_decay^k
    with ``decay_amplitude`` (Keras m_mul), to min_lr; min_lr after ``cycle_limit`` cycles (timm)."""
    limit = math.inf if cycle_limit is None else float(cycle_limit)

    def start(k: int, T0: float, mult: float) -> float:
        return T0 * k if mult == 1.0 else T0 * (mult**k - 1.0) / (mult - 1.0)

    def one(t: float, lr: float, T0: float, mult: float, low: float, decay: float) -> float:
        k = math.floor(t / T0) if mult == 1.0 else 0
        while mult != 1.0 and start(k + 1, T0, mult) <= t:
            k += 1
        if k >= limit:
            return low
        with np.errstate(over="ignore"):
            power = float(np.float64(decay) ** k)
        peak = low + ((lr - low) and (lr - low) * power) if decay_amplitude else (lr and lr * power)
        return low + (peak - low) * (1.0 + math.cos(math.pi * (t - start(k, T0, mult)) / (T0 * mult**k))) / 2.0

    return _elementwise(one, t, lr, period, period_mult, min_lr, cycle_decay)


def linear_lr(t: ArrayLike, start_lr: ArrayLike, end_lr: ArrayLike, total_steps: ArrayLike) -> FloatArray:
    """start_lr + (end_lr − start_lr) · min(t, T)/T (optax ``linear_schedule``; torch
    ``LinearLR`` as factors of a base rate)."""
    t, T = _f(t), _f(total_steps)
    return _f(start_lr) + (_f(end_lr) - _f(start_lr)) * np.minimum(t, T) / T


def piecewise_lr(t: ArrayLike, boundaries: ArrayLike, values: Sequence[ArrayLike], closed: str = "left") -> FloatArray:
    """values[k] for boundaries[k−1] ≤ t < boundaries[k] (optax ``piecewise_constant_schedule``
    with absolute values); with ``closed="right"`` boundaries[k−1] < t ≤ boundaries[k]
    (Keras ``PiecewiseConstantDecay``)."""
    t = _f(t)
    k = np.zeros(np.shape(t), dtype=np.int64)
    for b in np.asarray(boundaries, dtype=np.float64):
        k = k + ((t > b) if closed == "right" else (t >= b))
    vals = np.broadcast_arrays(*(_f(v) for v in values))
    out = np.zeros(np.broadcast_shapes(np.shape(t), vals[0].shape))
    for j, v in enumerate(vals):
        out = np.where(k == j, v, out)
    return out


def warmup_lr(t: ArrayLike, schedule: Callable[[FloatArray], ArrayLike], steps: float, start_lr: ArrayLike = 0.0,
              shape: str = "linear", prefix: bool = True) -> FloatArray:
    """From start_lr to schedule(0) over ``steps`` — a line, a half cosine
    start + (peak − start)(1 − cos(π·t/steps))/2, or geometric start·(peak/start)^(t/steps)
    — then schedule(t − steps), or schedule(t) when not ``prefix`` (timm
    ``warmup_prefix=False``). ``schedule`` is a callable of the step.
    """
    t = _f(t)
    peak = _f(schedule(np.zeros_like(t)))
    x = np.minimum(t, steps) / max(float(steps), 1.0)
    start = _f(start_lr)
    if shape == "linear":
        ramp = start + (peak - start) * x
    elif shape == "cosine":
        ramp = start + (peak - start) * (1.0 - np.cos(np.pi * x)) / 2.0
    else:
        ramp = start * (peak / start) ** x
    after = _f(schedule(np.maximum(t - steps, 0.0) if prefix else t))
    return np.where(t < steps, ramp, after)


def join_lr(t: ArrayLike, schedules: Sequence[Callable[[FloatArray], ArrayLike]],
            boundaries: Sequence[float] | np.ndarray) -> FloatArray:
    """schedules[k](t − boundaries[k−1]) for boundaries[k−1] ≤ t < boundaries[k]
    (optax ``join_schedules``; torch ``SequentialLR``). ``schedules`` are callables."""
    t = _f(t)
    starts = [0.0] + [float(b) for b in boundaries]
    out: Any = None
    for k, fn in enumerate(schedules):
        value = _f(fn(np.maximum(t - starts[k], 0.0)))
        out = value if out is None else np.where(t >= starts[k], value, out)
    return out


def _one_cycle_phases(t: float, T: float, pct: float, levels: Sequence[float], anneal: str, three_phase: bool
                      ) -> float:
    """torch ``OneCycleLR.get_lr``: the phase holding t (ends pct·T − 1 [, 2·pct·T − 2], T − 1),
    annealed from its start level to its end level ((1 + cos πx)/2 weights, or a line)."""
    ends = [pct * T - 1.0, 2.0 * pct * T - 2.0, T - 1.0] if three_phase else [pct * T - 1.0, T - 1.0]
    t = min(t, T - 1.0)
    start = 0.0
    for i, end in enumerate(ends):
        if t <= end or i == len(ends) - 1:
            x = (t - start) / (end - start)
            a, b = levels[i], levels[i + 1]
            if anneal == "linear":
                return (b - a) * x + a
            return b + (a - b) / 2.0 * (math.cos(math.pi * x) + 1.0)
        start = end
    raise AssertionError


def one_cycle_lr(t: ArrayLike, max_lr: ArrayLike, total_steps: ArrayLike, pct_start: ArrayLike = 0.3,
                 div_factor: ArrayLike = 25.0, final_div_factor: ArrayLike = 1e4, anneal_strategy: str = "cos",
                 three_phase: bool = False, base_momentum: ArrayLike = 0.85, max_momentum: ArrayLike = 0.95
                 ) -> FloatArray:
    """torch ``OneCycleLR`` as its source writes it: phase ends at pct_start·total_steps − 1
    (three phases: and 2·pct_start·total_steps − 2) and total_steps − 1, cosine or linear
    annealing within each; held at the final rate after total_steps − 1."""

    def one(t: float, max_lr: float, T: float, pct: float, div: float, final_div: float) -> float:
        initial = max_lr / div
        final = initial / final_div
        levels = [initial, max_lr, initial, final] if three_phase else [initial, max_lr, final]
        return _one_cycle_phases(t, T, pct, levels, anneal_strategy, three_phase)

    return _elementwise(one, t, max_lr, total_steps, pct_start, div_factor, final_div_factor)


def one_cycle_momentum_lr(t: ArrayLike, total_steps: ArrayLike, pct_start: ArrayLike = 0.3,
                          base_momentum: ArrayLike = 0.85, max_momentum: ArrayLike = 0.95, anneal_strategy: str = "cos",
                          three_phase: bool = False) -> FloatArray:
    """torch ``OneCycleLR(cycle_momentum=True)``'s momentum: max → base → max (→ max with
    three phases) over the same phases as the rate."""

    def one(t: float, T: float, pct: float, low: float, high: float) -> float:
        levels = [high, low, high, high] if three_phase else [high, low, high]
        return _one_cycle_phases(t, T, pct, levels, anneal_strategy, three_phase)

    return _elementwise(one, t, total_steps, pct_start, base_momentum, max_momentum)


def _triangle_wave(t: float, up: float, down: float, mode: str, gamma: float) -> tuple[float, float]:
    """torch ``CyclicLR``'s scale: the triangle's height in [0, 1] at t times its amplitude."""
    total = up + down
    cycle = math.floor(1.0 + t / total)
    x = 1.0 + t / total - cycle
    ratio = up / total
    scale = x / ratio if x <= ratio else (x - 1.0) / (ratio - 1.0)
    if mode == "triangular":
        amplitude = 1.0
    elif mode == "triangular2":
        amplitude = 0.5 ** (cycle - 1)  # torch writes 1 / 2 ** (cycle - 1), which overflows
    else:
        try:
            amplitude = gamma**t
        except OverflowError:  # gamma > 1, far out: the rate is infinite off the cycle's feet
            amplitude = math.inf
    return scale, amplitude


def cyclic_lr(t: ArrayLike, base_lr: ArrayLike, max_lr: ArrayLike, step_size_up: ArrayLike,
              step_size_down: ArrayLike | None = None, mode: str = "triangular", gamma: ArrayLike = 1.0,
              base_momentum: ArrayLike = 0.8, max_momentum: ArrayLike = 0.9) -> FloatArray:
    """torch ``CyclicLR`` (``cycle_momentum=False``): a triangle wave between base_lr and
    max_lr, amplitude halved each cycle (``triangular2``) or scaled by gamma^t (``exp_range``)."""
    if step_size_down is None:
        step_size_down = step_size_up

    def one(t: float, base: float, peak: float, up: float, down: float, gamma: float) -> float:
        scale, amplitude = _triangle_wave(t, up, down, mode, gamma)
        height = (peak - base) * scale
        if height == 0.0:
            return base  # a cycle's foot (also where the amplitude is infinite)
        return base + height * amplitude

    return _elementwise(one, t, base_lr, max_lr, step_size_up, step_size_down, gamma)


def cyclic_momentum_lr(t: ArrayLike, step_size_up: ArrayLike, step_size_down: ArrayLike | None = None,
                       mode: str = "triangular", gamma: ArrayLike = 1.0, base_momentum: ArrayLike = 0.8,
                       max_momentum: ArrayLike = 0.9) -> FloatArray:
    """torch ``CyclicLR(cycle_momentum=True)``'s momentum: max_momentum − (max_momentum −
    base_momentum) · scale, the rate's triangle upside down."""
    if step_size_down is None:
        step_size_down = step_size_up

    def one(t: float, up: float, down: float, gamma: float, low: float, high: float) -> float:
        scale, amplitude = _triangle_wave(t, up, down, mode, gamma)
        height = (high - low) * scale
        if height == 0.0:
            return high  # a cycle's foot (also where the amplitude is infinite)
        return high - height * amplitude

    return _elementwise(one, t, step_size_up, step_size_down, gamma, base_momentum, max_momentum)


def inverse_sqrt_lr(t: ArrayLike, lr: ArrayLike, warmup_steps: ArrayLike, start_lr: ArrayLike = 0.0,
                    timescale: ArrayLike | None = None) -> FloatArray:
    """fairseq ``inverse_sqrt`` / transformers ``get_inverse_sqrt_schedule``: linear warmup
    from start_lr to lr over warmup_steps, then lr / sqrt((t + timescale − warmup_steps) /
    timescale), timescale = warmup_steps unless given (lr · sqrt(warmup_steps / t))."""
    t, W = _f(t), _f(warmup_steps)
    scale = W if timescale is None else _f(timescale)
    ramp = _f(start_lr) + (_f(lr) - _f(start_lr)) * t / W
    with np.errstate(divide="ignore", invalid="ignore"):
        decay = _f(lr) / np.sqrt((t + scale - W) / scale)
    return np.where(t < W, ramp, decay)


def wsd_lr(t: ArrayLike, lr: ArrayLike, total_steps: ArrayLike, warmup_steps: ArrayLike = 0,
           decay_steps: ArrayLike | None = None, end_lr: ArrayLike = 0.0, decay: str = "linear",
           start_lr: ArrayLike = 0.0, warmup_shape: str = "linear") -> FloatArray:
    """Warmup-stable-decay: a warmup over warmup_steps (a line, a half cosine or geometric,
    as ``warmup_lr``), lr held, then over the last decay_steps (default
    round(0.2·total_steps)) a decay to end_lr shaped ``linear`` (1 − x), ``cosine``
    ((1 + cos πx)/2) or ``1-sqrt`` (1 − √x), x the fraction of the decay done; end_lr after
    total_steps."""
    T, W = _f(total_steps), _f(warmup_steps)
    D = np.maximum(np.round(0.2 * T), 1.0) if decay_steps is None else _f(decay_steps)
    t = _f(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = t / W
        a, b = _f(start_lr), _f(lr)
        ramp = {"linear": lambda: a + (b - a) * x, "cosine": lambda: a + (b - a) * (1.0 - np.cos(np.pi * x)) / 2.0,
                "exponential": lambda: a * (b / a) ** x}[warmup_shape]()
    x = np.clip((t - (T - D)) / D, 0.0, 1.0)
    shape = {"linear": 1.0 - x, "cosine": (1.0 + np.cos(np.pi * x)) / 2.0, "1-sqrt": 1.0 - np.sqrt(x)}[decay]
    tail = _f(end_lr) + (_f(lr) - _f(end_lr)) * shape
    return np.where(t < W, ramp, np.where(t < T - D, _f(lr) * np.ones_like(tail), tail))


def tabulated_lr(t: ArrayLike, values: ArrayLike) -> FloatArray:
    """values[..., t] for t < n = values.shape[-1], then values[..., n − 1] (a per-step
    table held after its end; leading axes of ``values`` are a batch)."""
    values = _f(values)
    t = _f(t)
    index = np.minimum(t, values.shape[-1] - 1).astype(np.int64)
    shape = np.broadcast_shapes(values.shape[:-1], t.shape)
    out = np.empty(shape)
    full_index = np.broadcast_to(index, shape)
    full_values = np.broadcast_to(values, shape + values.shape[-1:])  # (a batch axis of 1 broadcasts too)
    for position in np.ndindex(shape):
        out[position] = full_values[position + (full_index[position],)]
    return out


def product_lr(t: ArrayLike, schedules: Sequence[Callable[[ArrayLike], ArrayLike]]) -> FloatArray:
    """Π_k schedules[k](t); ``schedules`` are callables of the step."""
    out: Any = None
    for fn in schedules:
        value = _f(fn(t))
        out = value if out is None else out * value
    return out


_BY_KIND: dict[str, Callable[..., FloatArray]] = {
    "constant": constant_lr,
    "step": step_lr,
    "multistep": multistep_lr,
    "exponential": exponential_lr,
    "inverse_time": inverse_time_lr,
    "polynomial": polynomial_lr,
    "cosine": cosine_lr,
    "cosine_restarts": cosine_restarts_lr,
    "linear": linear_lr,
    "piecewise": piecewise_lr,
    "one_cycle": one_cycle_lr,
    "cyclic": cyclic_lr,
    "one_cycle_momentum": one_cycle_momentum_lr,
    "cyclic_momentum": cyclic_momentum_lr,
    "inverse_sqrt": inverse_sqrt_lr,
    "wsd": wsd_lr,
}


def constant_shrinkage_lr(t: ArrayLike, lr: Callable[[ArrayLike], ArrayLike], weight_decay: ArrayLike,
                          reference_lr: ArrayLike, total_steps: int | None = None) -> FloatArray:
    """λ_t = weight_decay · reference_lr / η_t, 0 where η_t is below float64's smallest
    normal number (or 0); held from ``total_steps`` on where given (a tabulated reciprocal)."""
    t = _f(t)
    if total_steps is not None:
        t = np.minimum(t, float(total_steps))
    eta = _f(lr(t))
    normal = eta >= np.finfo(np.float64).tiny
    return np.where(normal, _f(weight_decay) * _f(reference_lr) / np.where(normal, eta, 1.0), 0.0)


def schedule_lr(s: Schedule, t: ArrayLike) -> FloatArray:
    """Rate of the ``fastdecay.Schedule`` ``s`` at step(s) ``t`` from its kind and params
    (never its segment table): shape ``broadcast(s.batch_shape, shape(t))``, like ``s(t)``.

    >>> import fastdecay as fd
    >>> schedule_lr(fd.warmup(fd.cosine(1.0, 10), 2), [0, 1, 2, 7]).round(3).tolist()
    [0.0, 0.5, 1.0, 0.5]
    """
    t = _f(t)
    shape = np.broadcast_shapes(s.batch_shape, t.shape)
    kind, p = s.kind, s.params
    if not p:
        raise ValueError(f"s has no factory arguments to evaluate (a sub-batch s[i]?): {s!r}")
    if kind == "warmup":
        inner = p["schedule"]
        value = warmup_lr(t, lambda u: schedule_lr(inner, u), p["steps"], p["start_lr"], p.get("shape", "linear"),
                          p.get("prefix", True))
    elif kind == "join":
        parts = [(lambda u, m=m: schedule_lr(m, u)) for m in p["schedules"]]
        value = join_lr(t, parts, p["boundaries"])
    elif kind == "product":
        parts = [(lambda u, m=m: schedule_lr(m, u)) for m in p["schedules"]]
        value = product_lr(t, parts)
    elif kind == "tabulated":
        value = tabulated_lr(t, p["values"])
    elif kind == "stack":
        # the stacked axis is the first batch axis: counted from the end of the broadcast shape
        axis = len(shape) - len(s.batch_shape)
        full = np.broadcast_to(t, shape)
        members = p["schedules"]
        if len(members) == 1:  # a stacked axis of 1 broadcasts against the steps' axis: its one member everywhere
            value = schedule_lr(members[0], full)
        else:
            value = np.stack([schedule_lr(m, np.take(full, k, axis=axis)) for k, m in enumerate(members)], axis)
    elif kind == "constant_shrinkage":
        value = constant_shrinkage_lr(t, lambda u: schedule_lr(p["lr"], u), p["weight_decay"], p["reference_lr"],
                                      p.get("total_steps"))
    elif kind in _BY_KIND:
        value = _BY_KIND[kind](t, **p)
    else:
        raise ValueError(f"s must be a schedule made by a fastdecay factory, got kind {kind!r}")
    return np.array(np.broadcast_to(value, shape), dtype=np.float64)


def quantization_gap_log(t: ArrayLike, lr: ArrayLike, gamma: ArrayLike, period: ArrayLike) -> FloatArray:
    """ln η_step(t) − ln η_exp(t): the step schedule against the exponential with the
    same lr and rate −ln(gamma)/period, both logarithms taken of the rates themselves."""
    rate = -np.log(_f(gamma)) / _f(period)
    return np.log(step_lr(t, lr, gamma, period)) - np.log(exponential_lr(t, lr, rate=rate))
