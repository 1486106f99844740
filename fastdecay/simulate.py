"""Batched optimizer trajectories on diagonal quadratics: ``fd.simulate``.

One trajectory minimises f(w) = ½ Σ_i λ_i w_i² (gradient λ_i w_i) with one of
the update rules of ``fastdecay.updates`` (the same Numba rule, not a copy), the
learning rate and weight decay read from schedules at every step. Millions of
trajectories run in one call on the CPU kernels (NumPy or CPU torch input) or
the GPU kernels (CuPy input), with final weights only (O(batch · d) memory) or
every k-th step of loss, displacement and rate recorded.

>>> import numpy as np, fastdecay as fd
>>> res = fd.simulate(np.array([1.0, 3.0]), fd.constant(0.5), steps=2)
>>> res.w.tolist()                       # (1 - 0.5 λ)^2
[0.25, 0.25]
>>> res = fd.simulate([[1.0], [5.0]], fd.exponential(lr=1.0, gamma=0.7), steps=4, every=2)
>>> res.steps.tolist(), res.lr.round(4).tolist()[0]
([0, 2, 4], [1.0, 0.49, 0.2401])

Inside, a call is a frozen **plan** and a **run**: ``_plan`` checks every argument
(before any work) and packs the rate sources (learning rate, weight decay,
momentum / beta1) into a ``_Plan``; ``_run`` allocates the state where the
curvature lives, launches the chunks and collects the results.

Internal call shape (for the GPU twin ``fastdecay._gpu.simulate``): this module
validates and broadcasts everything on the host, then hands a backend module
``kernels`` the arrays of ``fastdecay._cpu.simulate.simulate_chunk`` (``_simulate_chunk``'s
docstring lists them), calling ``kernels.simulate_chunk(*args)`` once per chunk
of steps with ``step_scalars`` from ``fastdecay._cpu.simulate.shared_step_scalars``
(computed on the host, tiny). On the GPU path every array argument is a CuPy
array of the same shape and dtype; a GPU module provides ``simulate_chunk``
with the same arguments and semantics, and nothing else is needed here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Generic, Literal, TypeVar, Union, overload

import numpy as np

from . import _dispatch as D
from . import _layout as L
from . import _rules as R
from . import _validate as V
from ._dispatch import NUMPY, TORCH_CPU, TORCH_CUDA, backend_of
from ._typing import DeviceArray, DTypeLike, RealArrayLike
from .schedules import Schedule, as_schedule, constant

if TYPE_CHECKING:
    import torch

__all__ = ["simulate", "SimulationResult", "OPTIMIZERS"]

OPTIMIZERS = R.NAMES  # every update rule of fastdecay._rules
ON_DROP = R.ON_DROP

# Default chunks are sized by time: the first runs about _FIRST_CHUNK_ELEMENT_STEPS
# element-steps (milliseconds on the noiseless paths, about 0.25 s on the slowest: noisy
# AdamW, per-trajectory closed-form rates, d > 1, recording every step, measured at
# 8e6 element-steps/s on a loaded 2-core VM), each next one aims at _CHUNK_SECONDS at
# the rate measured on the previous one, growing at most _CHUNK_GROWTH-fold (unless
# the rest of the run fits in that aim: then it is one chunk, since every chunk is one
# more pass over the state in memory), never more than _CHUNK_STEPS_MAX steps (the
# per-step scalars of a chunk stay small). So
# progress moves and Ctrl-C (raised between chunks) is honoured within about a
# second whatever the optimizer, noise, dtype or backend (a GPU chunk is waited for).
_CHUNK_SECONDS = 0.25
_FIRST_CHUNK_ELEMENT_STEPS = 1 << 21
_CHUNK_GROWTH = 4
_CHUNK_STEPS_MAX = 1 << 16
# Element-steps a second that the noiseless SGD-family loops under shared rates, not
# recording, exceed on one core of every machine measured (5-9e9 on the development VMs,
# float64): a run of those that this rate finishes within the aim is one chunk, with no
# first chunk to time it (which would cost one more pass over the state).
_SGD_VECTOR_FLOOR_RATE = 1e9


_NO_MOMENTUM = constant(0.0)

# Rate classes (``_cpu.simulate.class_rates``): the CPU kernels read a trajectory's learning rate
# from its class's where trajectories outnumber the distinct rows at least this many times, and at
# least half of them follow rows read in closed form (a gather a step costs more than the
# multiplication of an exponential's rate: RESULTS.md, "rate classes"); likewise the shapes of rows
# equal but for their lr (``_lr_shapes``: RESULTS.md, "An lr a trajectory read by the schedules' shapes")
_CLASS_SHARING = 16
# ... and, noiseless, where they outnumber the classes at least this many times, the lanes run laid
# out class by class, so that a tile reads its classes' rates a run of one class at a time (its
# runs average ``_cpu.simulate.CLASS_RUN_LANES`` lanes or more; below, the layout's copies cost
# more than they save)
_RUN_LANES_REGROUP = 64
# ... and where they outnumber them at least this many times, the trajectories run laid out class
# by class, each class as its schedule alone (a rate a step for a whole class:
# ``_cpu.simulate.simulate_groups``); below it a class's tile is too short to pay for its per-step
# scalars and the tail of its vector loop. At one coordinate, where the lanes are cheap (most rows
# advance by a ratio: exponentials), or the stretch dear (with noise: a tile's draws), at least
# the second many times (RESULTS.md, "grouped by class")
_GROUP_SHARING = 64
_GROUP_SHARING_CHEAP_LANES = 192
# ... and for a recording run, where they outnumber them this many times (the other way records
# each trajectory's rate in closed form, and reads it trajectory by trajectory; below it a class's
# recorded steps cost more in calls than that), at one coordinate with noise the second many
# times (a tile's draws: RESULTS.md, "recorded runs")
_GROUP_SHARING_RECORDED = 32
_GROUP_SHARING_RECORDED_NOISY = 64
# ... and for a grid of momenta or beta1s (a momentum a trajectory) of one coordinate, not recording,
# where they outnumber them this many times (with noise the second): the other way is the general
# kernel's element loop, which makes each trajectory's coefficients every step (AdamW's bias
# corrections among them), 2.9x slower than grouped at 16 trajectories a class, 5.6x for AdamW
# (RESULTS.md, "grids of momenta")
_GROUP_SHARING_MOMENTA = 16
_GROUP_SHARING_MOMENTA_NOISY = 32
# ... and a noisy recording run of several coordinates only where its trajectories outnumber the
# classes this many times (a class of 5 trajectories of 7 coordinates ran 0.74-0.92x the general
# kernel's speed grouped recording every 1-4 steps, one of 20 1.2-2.2x: RESULTS.md, "a recorded step
# keeps its Philox quad")
_GROUP_SHARING_RECORDED_NOISY_TRAJECTORIES = 8
# an array of learning rates, weight decays or momenta of at least this many members is held by its
# distinct values where they are at most one in this many of its members (``_Indexed``): a grid of
# 5 momenta over 200,000 trajectories as a schedule table a member cost 6-9 ms a call to make (two
# fresh 14 MB arrays), three times its grouped run
_INDEXED_FROM = 1024
_INDEXED_SHARING = 4
# the most class rates a chunk keeps (a chunk's steps x classes, float64: 2 MiB, read by every
# tile: larger tables cost their gathers cache misses); longer chunks are cut to fit
_CLASS_RATES_MAX = 1 << 18


def _next_chunk(count: int, seconds: float, remaining: int | None = None) -> int:
    """Steps of the next chunk after one of ``count`` steps took ``seconds``, with
    ``remaining`` steps left to run (all of them when they fit in the aim)."""
    aim = count * _CHUNK_SECONDS / max(seconds, 1e-6)
    if remaining is not None and remaining <= min(aim, _CHUNK_STEPS_MAX):
        return max(1, remaining)
    return max(1, min(int(aim), _CHUNK_GROWTH * count, _CHUNK_STEPS_MAX))


_ArrayT = TypeVar("_ArrayT")


@dataclass(frozen=True)
class SimulationResult(Generic[_ArrayT]):
    """What ``fd.simulate`` returns.

    ``w``: final weights, shape ``(*batch, d)``. With ``every=k``: ``steps`` the
    recorded steps 0, k, 2k, … ≤ steps, and ``loss`` (½ Σ λ w_t²),
    ``displacement`` (‖w_t − w_{t−1}‖₂, 0 at step 0) and ``lr`` (η_t) of shape
    ``(*batch, n_recorded)``; all four are ``None`` without ``every``.
    ``diverged``: how many trajectories diverged, that is ended with a weight that is
    not finite (overflowed to ±inf, or nan). This is the one definition of divergence
    in fastdecay (a sweep's ``SweepResult.diverged`` and its summary use it too); a
    trajectory that grew but stayed finite is not counted.

    The arrays are of the curvature's array type (``SimulationResult[np.ndarray]``
    for NumPy input, ``SimulationResult[torch.Tensor]`` for torch input, CuPy
    arrays for CuPy input).

    >>> import fastdecay as fd
    >>> res = fd.simulate([[0.5], [4.5]], fd.constant(0.5), steps=4, every=2)
    >>> res.w.round(4).tolist(), res.diverged     # (1 - 0.5 λ)^4: λ = 4.5 grows but stays finite
    ([[0.3164], [2.4414]], 0)
    >>> res.steps.tolist(), res.loss.round(4).tolist()
    ([0, 2, 4], [[0.25, 0.0791, 0.025], [2.25, 5.4932, 13.411]])
    """

    w: _ArrayT
    steps: _ArrayT | None = None
    loss: _ArrayT | None = None
    displacement: _ArrayT | None = None
    lr: _ArrayT | None = None
    diverged: int = 0


@dataclass(frozen=True)
class _Indexed:
    """A batch of constants given as an array (learning rates, weight decays or momenta), held by
    its distinct values: ``schedule`` a constant a distinct value, ``index`` each member's row of
    it (the array's shape). The same rates, row for row the same bits, as ``constant(array)``,
    without a table row (72 bytes) a member: a grid's few values over many trajectories costs
    its members' numbers, not a schedule table of them (``_as_rate``)."""

    schedule: Schedule
    index: np.ndarray

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self.index.shape

    @property
    def size(self) -> int:
        """The rows of its table (its distinct values)."""
        return self.schedule.size

    def rows(self) -> np.ndarray:
        return self.schedule.rows()


_Rate = Union[Schedule, _Indexed]


def _as_rate(value: Any, name: str) -> _Rate:
    """A schedule as it is; a number, or an array of fewer than ``_INDEXED_FROM`` members or of
    many distinct values, as ``constant``; else (a grid of a few values over many members) its
    distinct values indexed (``_Indexed``)."""
    if isinstance(value, Schedule):
        return value
    if type(value) is float or type(value) is int:
        return as_schedule(value, name)  # (kept: made once a name and value)
    values = V.rates(name, value)
    if values.size >= _INDEXED_FROM:
        flat = _readonly(np.ascontiguousarray(values.reshape(-1)))
        index, first = np.empty(values.size, np.int64), np.empty(values.size // _INDEXED_SHARING, np.int64)
        slots = np.empty(1 << (2 * first.shape[0]).bit_length(), np.int64)
        count = D.kernels("simulate", NUMPY).distinct_values(flat, index, first, slots)
        if count >= 0:
            return _Indexed(constant(flat[first[:count]]), _readonly(index.reshape(values.shape)))
    return constant(values)


def _rate_source(s: _Rate, batch: tuple[int, ...], n: int,
                 copies: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(table, rows, ratio, state) of a schedule for the kernel: rows empty when shared, unless
    ``copies`` asks for a row a trajectory (all row 0); else ``_lane_source``."""
    table = s.rows()
    if s.size == 1 and not copies:
        return table, _NO_ROWS, _NO_RATES, _NO_RATES
    return _lane_source(table, _trajectory_rows(s, batch, n), s.size > 1)


def _trajectory_rows(s: _Rate, batch: tuple[int, ...], n: int) -> np.ndarray:
    """The table row of each of the ``n`` trajectories (int64, writable)."""
    if isinstance(s, _Indexed):
        return np.array(np.broadcast_to(s.index, batch)).reshape(n)
    if s.size == 1:
        return np.zeros(n, dtype=np.int64)
    if s.batch_shape == batch:
        return np.arange(n, dtype=np.int64)
    rows = np.arange(s.size, dtype=np.int64).reshape(s.batch_shape)
    return np.array(np.broadcast_to(rows, batch)).reshape(n)  # (a copy: a broadcast view is read-only)


def _lane_source(table: np.ndarray, rows: np.ndarray, several: bool,
                 t0: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(table, rows, ratio, state) of lanes that follow ``rows`` of ``table`` (``several``: not all
    one row). A lane whose row is the same bits as the one before's takes that row; state holds
    each rate, then the step it is next read at, and with step schedules a memo of their powers;
    ratio each rate's factor a step (NaN: read in closed form), and with cosines or lines the
    fields of their vector loop, which the kernels write (``_cpu.simulate.prepare_rates``). The rates
    are each lane's at step ``t0``, the first the kernels read (a phase of ``_lr_phases`` that starts
    there)."""
    kernels = D.kernels("simulate", NUMPY)
    n = rows.shape[0]
    ratio, state = np.empty(n), np.empty(2 * n)  # (a rate, then the step it is next read at)
    steps, vectors = kernels.prepare_rates(table, _readonly(rows), ratio, state, float(t0))
    if several and np.isnan(ratio).any():
        # rates read in closed form: lanes that follow copies of one row read it once
        kernels.share_equal_rows(table, rows)
    if steps:
        # step schedules: the kernels keep a memo of their powers beside the rates (empty: NaN)
        state = np.concatenate([state, np.full(3 * n, np.nan)])
    if vectors:
        # cosines, lines, constants: the fields of a vector loop after the ratios (empty: code 0)
        ratio = np.concatenate([ratio, np.zeros(kernels.VECTOR_FIELDS * n)])
        kernels.enter_segments(table, _readonly(rows), ratio, state, float(t0))
    return table, _readonly(rows), ratio, state


_NO_ROWS = np.zeros(0, np.int64)
_NO_ROWS.flags.writeable = False
# a shared rate's ratios and states, and a run's records where it records nothing (none: the
# kernels take them writable, and an empty array is never written)
_NO_RATES = np.zeros(0, np.float64)
_NO_RECORDS = {np.dtype(dt): np.zeros((0, 0), dt) for dt in (np.float32, np.float64)}


@dataclass
class _RateClasses:
    """A learning rate a trajectory read by rate classes (``_cpu.simulate.class_rates``):
    ``source`` the ``_lane_source`` of one lane a class (its first row), carried from chunk to
    chunk; ``classes`` the class of each trajectory. ``grouped``: the trajectories run laid out
    class by class, each class as a run of its schedule alone
    (``_cpu.simulate.simulate_groups``) instead of in lanes that read their class's rate; a
    grouped class may have a weight decay and momentum of its own too (``wd_rows``, ``mom_rows``:
    its row of their tables; empty where they are shared)."""

    source: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    classes: np.ndarray
    grouped: bool
    wd_rows: np.ndarray = field(default_factory=lambda: _NO_ROWS)
    mom_rows: np.ndarray = field(default_factory=lambda: _NO_ROWS)
    # the lanes' scales, each trajectory's lr: its rate is its class's at lr 1 times it (``_lr_shapes``);
    # None where a class is a row (a scale of 1)
    scales: np.ndarray | None = None
    # the classes are rising lines' (polynomials from 0 to each lane's lr: ``_rising_rows``), whose
    # lanes read ``(0 - lr) x + lr`` of their class's rate x (``_cpu.schedule.class_lane_rate``)
    rises: bool = False

    @property
    def count(self) -> int:
        return int(self.source[1].shape[0])

    def bounds(self) -> tuple[np.ndarray, bool]:
        """(bounds, in order) of the trajectories laid out class by class: class c at places
        bounds[c] .. bounds[c + 1] - 1 (``_cpu.simulate.group_bounds``); in order where they are
        laid out so already (a sweep's)."""
        bounds = np.empty(self.count + 1, np.int64)
        in_order = D.kernels("simulate", NUMPY).group_bounds(self.classes, bounds)
        return bounds, bool(in_order)


def _class_lanes(classes: _RateClasses, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The (table, rows, ratio, state) of trajectories read by ``classes``: rows their classes,
    ratios NaN, states written at every step (each trajectory's rate, then four rows of scratch
    for the kernels' blocks of four steps), then each trajectory's scale, read (its rate is
    ``scaled(scale, class rate)``: 1, or its lr with ``_lr_shapes``); the table is each chunk's
    class rates (``_run``)."""
    rates = _readonly(np.empty((0, classes.count, 1)))
    state = np.empty(6 * n)
    state[5 * n:] = 1.0 if classes.scales is None else classes.scales
    return rates, classes.classes, np.full(n, np.nan), state


def _laid_out(source: tuple[np.ndarray, ...], by_class: bool, class_of: np.ndarray,
              bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The lanes' ``source`` (table, rows, ratio, state) with each trajectory's entries at its place
    laid out class by class (``_cpu.simulate.regroup`` by ``class_of``, ``bounds``): its row, and
    each n-long block of the ratio and the state (the rates, the steps they are next read at, the
    memo and the vector loop's fields: a trajectory's own); with ``by_class`` (``_class_lanes``)
    only the state's last block, the scales, is read before it is written (the ratios are NaN)."""
    cpu = D.kernels("simulate", NUMPY)
    table, rows, ratio, state = source
    n = rows.shape[0]
    rows_run = np.empty_like(rows)
    cpu.regroup(class_of, bounds, 1, rows, rows_run, True)
    state_run = np.empty_like(state)
    for k in range(state.shape[0] // n - 1 if by_class else 0, state.shape[0] // n):
        cpu.regroup(class_of, bounds, 1, _readonly(state[k * n:(k + 1) * n]), state_run[k * n:(k + 1) * n], True)
    if not by_class:
        ratio_run = np.empty_like(ratio)
        for k in range(ratio.shape[0] // n):
            cpu.regroup(class_of, bounds, 1, _readonly(ratio[k * n:(k + 1) * n]), ratio_run[k * n:(k + 1) * n],
                        True)
        ratio = ratio_run
    return table, _readonly(rows_run), ratio, state_run


def _rate_classes(rates: tuple[_Rate, _Rate, _Rate], batch: tuple[int, ...], n: int, d: int, noisy: bool,
                  recorded: bool, lanes: bool) -> _RateClasses | None:
    """The rate classes of a learning rate a trajectory: trajectories whose rows are the same bits
    share a class, whose rate the kernels compute once a step. Where their elements (``d`` a
    trajectory) outnumber the distinct rows at least ``_GROUP_SHARING`` times (at one coordinate,
    ``_GROUP_SHARING_CHEAP_LANES`` times where most rows advance by a ratio, whose lanes are the
    cheapest, or with noise; with more coordinates, the other way is the general kernel's loops),
    they run grouped by class (each trajectory's draws its own, wherever it runs); else (with
    ``lanes``) the lanes read their classes' rates, where trajectories outnumber the distinct rows
    at least ``_CLASS_SHARING`` times and at least half of them are read in closed form (the
    others' plain exponentials and constants advance by one multiplication a step, the cheapest
    lane already). A recording run (``recorded``, where the other way records each trajectory's
    rate in closed form) runs grouped where its elements outnumber the distinct rows
    ``_GROUP_SHARING_RECORDED`` times (``_GROUP_SHARING_RECORDED_NOISY`` at one coordinate with
    noise; with noise over several coordinates, its trajectories outnumber them
    ``_GROUP_SHARING_RECORDED_NOISY_TRAJECTORIES`` times too). A weight decay or momentum (beta1)
    a trajectory runs grouped by the three rows a trajectory takes, where its elements outnumber
    their distinct combinations the fewer times
    (``_combined_classes``; a momentum a trajectory of one coordinate, not recorded, from
    ``_GROUP_SHARING_MOMENTA`` times, ``_GROUP_SHARING_MOMENTA_NOISY`` with noise). None where
    neither pays, or where every rate is shared."""
    s, wd_s, mom_s = rates
    # elements a class at the least: for a grid of mostly closed forms, and of ratios (exponentials)
    high = _GROUP_SHARING_CHEAP_LANES if d == 1 else _GROUP_SHARING
    low = high if d == 1 and noisy else _GROUP_SHARING
    if recorded:
        low = high = _GROUP_SHARING_RECORDED_NOISY if d == 1 and noisy else _GROUP_SHARING_RECORDED
    most, most_if_ratios = n * d // low, n * d // high  # (classes at the most)
    if recorded and noisy and d > 1:
        most = most_if_ratios = min(most, n // _GROUP_SHARING_RECORDED_NOISY_TRAJECTORIES)
    if wd_s.size > 1 or mom_s.size > 1:
        if mom_s.size > 1 and d == 1 and not recorded:
            most = n * d // (_GROUP_SHARING_MOMENTA_NOISY if noisy else _GROUP_SHARING_MOMENTA)
        return _combined_classes(rates, batch, n, most)
    if s.size == 1:
        return None
    found = _classes_of(s, most, most_if_ratios)
    if found is not None and (_mostly_closed_form(*found) or n * d >= high * found[2].shape[0]):
        return _RateClasses(found[0], _class_of_trajectory(s, batch, n, found[1]), grouped=True)
    found = _classes_of(s, n // _CLASS_SHARING, 0) if lanes else None
    if found is None:
        return (_lr_shapes(s, batch, n) or _product_shapes(s, batch, n)) if lanes else None
    if not _mostly_closed_form(*found):
        return None  # (most trajectories advance by a ratio: their lanes are the cheapest)
    return _RateClasses(found[0], _class_of_trajectory(s, batch, n, found[1]), grouped=False)


def _lr_shapes(s: _Rate, batch: tuple[int, ...], n: int) -> _RateClasses | None:
    """Rate classes of a grid of one-segment schedules whose rate is their lr times a shape
    (``_lr_shape_rows``: step schedules, cosines and polynomials to 0) with more rows than rate
    classes take but few shapes, rows equal but for their lr: an lr a trajectory (a random search
    over lr, or a grid of lrs across a grid of periods). A class is a shape at lr 1, and each
    trajectory's lane reads ``scaled(lr, class rate)``, which is the closed form's bits: the same
    operation for a step schedule (``lr * gamma ** e``), one that rounds as the closed form's for
    the others (``0 + lr * x``; a cosine's ``lr * (1 + c) / 2``, halved exactly for an lr in
    ``_SHAPED_COSINE_LRS``), where the lanes' closed forms cost a comparison a step and a power at
    each drop, or a cosine a step. Where trajectories outnumber the shapes ``_CLASS_SHARING``
    times, as rate classes; else None."""
    if not isinstance(s, Schedule) or n < _CLASS_SHARING:
        return None
    return _shapes_of(s.rows(), -1, s, batch, n, 0.0)


def _shapes_of(table: np.ndarray, segment: int, s: Schedule, batch: tuple[int, ...], n: int,
               t0: float) -> _RateClasses | None:
    """``_lr_shapes`` of the rows of ``table``, one for each row of ``s``, read from step ``t0`` on:
    one-segment rows (``segment`` -1: ``s``'s own), or the segment ``segment`` alone of each (one of
    its phases: ``_lr_phases``); shapes at lr 1 (``_lr_shape_rows``), or rising lines' shapes
    (``_rising_rows``: a warmup from 0 to each lr)."""
    rows = table if segment < 0 else table[:, segment:segment + 1]
    rises = _sampled_lr_word(rows[:: max(1, table.shape[0] // 64)], t0)  # (a sample first: most grids are not hashed)
    if rises is None:
        return None
    lr_word = L.P0 + 3 if rises else L.P0  # (a rising line's end, a shape's lr; within the segment)
    found = _table_classes(table, n // _CLASS_SHARING, 0, keep=_kept_words(table, segment, (lr_word,)),
                           segment=segment, taken_words=(lr_word,))
    if found is None:
        return None
    class_of_row, first_rows, _, lrs = found
    return _shaped_classes(table, segment, s, batch, n, t0, rises, class_of_row, first_rows, lrs[0])


def _sampled_lr_word(sample: np.ndarray, t0: float) -> bool | None:
    """Whether the rows of ``sample`` (one segment each) are rising lines (``_rising_rows``: True),
    shapes at lr 1 (``_lr_shape_rows``: False), or neither (None)."""
    if _lr_shape_rows(sample, t0):
        return False
    return True if _rising_rows(sample, t0) else None


def _shaped_classes(table: np.ndarray, segment: int, s: Schedule, batch: tuple[int, ...], n: int, t0: float,
                    rises: bool, class_of_row: np.ndarray, first_rows: np.ndarray,
                    lrs: np.ndarray) -> _RateClasses | None:
    """``_shapes_of``'s rate classes from the classes of the rows of ``table`` but for their lr,
    ``class_of_row`` and ``first_rows`` (each row's lr in ``lrs``), where every class is a shape
    at lr 1 (or a rising line's, with ``rises``) and the lrs are ones its lanes read with the
    closed form's bits; else None."""
    rows = table if segment < 0 else table[:, segment:segment + 1]
    unit = rows[first_rows]  # (a copy: the shapes' rows, at lr 1; a class's rows are its first's but for lr)
    if rises:
        if not _rising_rows(unit, t0):
            return None
        # (the class rate (1 - 0) x + 0 is the shape x itself, exactly)
        unit[:, 0, L.P0], unit[:, 0, L.P0 + 3] = 1.0, 0.0
    else:
        if not _lr_shape_rows(unit, t0):
            return None
        if (unit[:, 0, L.KIND] != L.EXPONENTIAL).any() and np.signbit(lrs).any():
            return None  # (a cosine's or polynomial's closed form makes +0.0 of an lr of -0.0, ``scaled`` keeps it)
        if (unit[:, 0, L.KIND] == L.COSINE).any():
            low, high = _SHAPED_COSINE_LRS
            size = np.abs(lrs)
            if not ((size == 0.0) | ((size >= low) & (size <= high))).all():
                return None
        unit[:, 0, L.P0] = 1.0
    source = _lane_source(_readonly(unit), np.arange(first_rows.shape[0]), first_rows.shape[0] > 1, t0)
    if s.batch_shape == batch:
        return _RateClasses(source, _readonly(class_of_row), grouped=False, scales=lrs, rises=rises)
    rows_of = _trajectory_rows(s, batch, n)
    return _RateClasses(source, _readonly(class_of_row[rows_of]), grouped=False, scales=lrs[rows_of], rises=rises)


def _product_shapes(s: _Rate, batch: tuple[int, ...], n: int) -> _RateClasses | None:
    """Rate classes of a grid of products whose last factor is a number a row, the same on each of
    its pieces (``fd.stack(schedules)[which] * lrs``: a grid of schedules scaled by an lr a
    trajectory), with more rows than rate classes take but few rows without that number. A class
    is a row without it (``_cpu.simulate.scaled_product_classes``: ``fd.product`` puts a product's
    numbers, multiplied, last, and leaves them out where they make 1), and each trajectory's lane
    reads ``scaled(c, class rate)``: the product's own bits, ``(1 f_1 ... f_k) c``, for any finite
    c but 0 (which ``scaled`` keeps, where the product makes 0 times the rate: -0.0, or NaN for
    an inf rate), where the lanes would read every product in closed form, factor by factor.
    Where trajectories outnumber those rows ``_CLASS_SHARING`` times, as rate classes; else None."""
    if not isinstance(s, Schedule) or n < _CLASS_SHARING or s.segments.shape[-2] < 2:
        return None
    kernels = D.kernels("simulate", NUMPY)
    table = s.rows()
    sample = np.ascontiguousarray(table[:: max(1, table.shape[0] // 64)])
    reads = np.empty(table.shape[1], np.int64)
    sample_units = np.empty_like(sample)
    if not kernels.scaled_products(_readonly(sample), sample_units, np.empty(sample.shape[0]), reads):
        return None  # (a sample first: most grids of other schedules are not classed)
    if _table_classes(sample_units, sample.shape[0], 0) is None:
        return None  # (every sampled row's rate without its scale advances by a ratio: the cheapest lanes)
    most = min(table.shape[0], n // _CLASS_SHARING)
    # (the rows without their scales are classed as they are made: only the classes' are kept)
    units = np.empty((most + 1,) + table.shape[1:])
    first_rows, sizes = np.empty(most, np.int64), np.empty(most, np.int64)
    class_of_row, scales = np.empty(table.shape[0], np.int64), np.empty(table.shape[0])
    slots = np.empty(1 << (2 * most).bit_length(), np.int64)
    count = kernels.scaled_product_classes(table, class_of_row, units, first_rows, sizes, scales, slots, reads,
                                           np.empty(3 * most, np.int64),
                                           np.empty((most + 1, table.shape[1] * table.shape[2]), np.uint64))
    if count < 0:
        return None
    source = _lane_source(_readonly(units[:count]), np.arange(count), count > 1)
    if s.batch_shape == batch:
        return _RateClasses(source, _readonly(class_of_row), grouped=False, scales=scales)
    rows = _trajectory_rows(s, batch, n)
    return _RateClasses(source, _readonly(class_of_row[rows]), grouped=False, scales=scales[rows])


@dataclass
class _Phase:
    """Steps ``start .. stop - 1`` of a run whose learning rates a trajectory change kind at the
    same steps (``_lr_phases``): the lanes' source for those steps (``_class_lanes`` of the shapes
    of the phase's segment, ``classes``, or ``_lane_source`` of the whole rows from ``start``)."""

    start: int
    stop: int
    source: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    classes: _RateClasses | None


# the most segments a learning rate a trajectory runs in phases (``_lr_phases``): each phase's lanes
# are made before the run, ~70 bytes a trajectory, and each phase cuts a chunk (a warmup and a decay,
# or warmup, stable, decay, are two or three)
_PHASES_MOST = 4


def _lr_phases(s: _Rate, batch: tuple[int, ...], n: int, steps: int) -> tuple[_Phase, ...] | None:
    """A learning rate a trajectory whose rows have segments starting at the same steps (a warmup,
    then a cosine, with an lr a trajectory; warmup, stable, decay) run as phases, a phase a segment:
    its steps read by the shapes of that segment alone, one segment a row, where they are
    (``_shapes_of``: the cosine after a warmup; the warmup's line from 0 as a rising line's), else in
    closed form lane by lane from the whole rows (a line from a start other than 0, whose
    ``(start - lr) x + lr`` has no shape). The same bits: a one-segment row
    gives its segment's primitive at the same ``t - origin`` as the whole row gives within the
    segment. Segments of a closed form only (a constant, a line or polynomial, a cosine, a step
    schedule; no plain exponential, which a lone row would advance by its ratio), at most
    ``_PHASES_MOST`` of them; None where no phase has shapes.

    The rows are first classed whole but for the lrs of the phases whose sampled rows have shapes
    (``_phases_by_whole_rows``: one pass over the table, which also takes the lrs); where that
    fails (more classes than pay, or a phase without shapes after all), each phase's rows are
    classed apart."""
    if not isinstance(s, Schedule) or n < _CLASS_SHARING or s.size < 2:
        return None
    table = s.rows()
    starts = table[0, :, L.START]
    count = int(np.isfinite(starts).sum())
    if count < 2 or count > _PHASES_MOST or starts[0] != 0.0 or not np.isfinite(starts[:count]).all():
        return None
    # phase k: the steps t with start_k <= t < start_(k+1) (a start between two steps: from the next)
    firsts = [math.ceil(x) for x in starts[:count]] + [steps]
    spans = [(k, firsts[k], min(firsts[k + 1], steps)) for k in range(count)
             if firsts[k] < steps and firsts[k] < min(firsts[k + 1], steps)]
    sample = table[:: max(1, s.size // 64)]  # (a sample first: most grids of other schedules are not hashed)
    rises = [_sampled_lr_word(sample[:, k:k + 1], float(start)) for k, start, _ in spans]
    if all(r is None for r in rises):
        return None
    by_phase = _phases_by_whole_rows(table, s, batch, n, count, spans, rises)
    if by_phase is False:
        return None
    if by_phase is None:  # (each phase's rows classed apart)
        # every row's starts as row 0's (a padding or side row's start is inf or NaN: NaN differs from
        # itself), and which segments are of one kind, in one pass over the rows
        one_kind = np.empty(count, np.bool_)
        if not D.kernels("simulate", NUMPY).segments_like_first_row(table, one_kind):
            return None
        if not _closed_segments(table, count, one_kind):
            return None
        by_phase = [_shapes_of(table, k, s, batch, n, float(start)) if rise is not None else None
                    for (k, start, _), rise in zip(spans, rises)]
    if all(classes is None for classes in by_phase):
        return None
    return tuple(_Phase(start, stop, _class_lanes(classes, n), classes) if classes is not None
                 # (the whole rows, from the phase's start: within it, its segment's rates)
                 else _Phase(start, stop, _lane_source(table, _trajectory_rows(s, batch, n), True, float(start)), None)
                 for (_, start, stop), classes in zip(spans, by_phase))


def _phases_by_whole_rows(table: np.ndarray, s: Schedule, batch: tuple[int, ...], n: int, count: int,
                          spans: list[tuple[int, int, int]],
                          rises: list[bool | None]) -> list[_RateClasses | None] | Literal[False] | None:
    """``_lr_phases``' rate classes of each phase of ``spans`` ((segment, start, stop)), found by
    classing the rows of ``table`` whole but for their lrs: the lr of each phase whose sampled
    rows have shapes (``rises``: a rising line's, its end, True; at lr 1, False; None: no shapes),
    and a value (P0) and end (P0 + 3) of each other segment of the ``count`` (a stable phase's
    constant, a warmup's line from another start). The rows of a class are its first row's bits
    but for those words, so the first rows alone tell whether every row's segments start where row
    0's do and are closed forms (unless one of them is an exponential whose end word was left
    out: that word tells a step schedule from a plain exponential), and each phase's classes are
    those of the first rows' segment. False where the rows run in no phases; None where the
    classes tell nothing (more than pay; an exponential as above), or where a phase whose sample
    has shapes has none: each phase is then classed apart."""
    width = table.shape[2]
    shaped = {k: k * width + (L.P0 + 3 if rise else L.P0) for (k, _, _), rise in zip(spans, rises) if rise is not None}
    lr_words = tuple(shaped.values())
    left_out = lr_words + tuple(k * width + word for k in range(count) if k not in shaped for word in (L.P0, L.P0 + 3))
    found = _table_classes(table, n // _CLASS_SHARING, 0, keep=_kept_words(table, -1, left_out), taken_words=lr_words)
    if found is None:
        return None
    class_of_row, first_rows, _, lrs = found
    heads = _readonly(table[first_rows])  # (a copy: the classes' first rows)
    ends_left_out = [k for k in range(count) if k * width + L.P0 + 3 in left_out]
    if (heads[:, ends_left_out, L.KIND] == L.EXPONENTIAL).any():
        return None
    # (NaN starts differ from themselves, as in ``segments_like_first_row``)
    if not (heads[:, :, L.START] == table[0, :, L.START]).all() or not _closed_segments(heads, count):
        return False
    phases: list[_RateClasses | None] = []
    for (k, start, _), rise in zip(spans, rises):
        if rise is None:
            phases.append(None)
            continue
        within = _table_classes(heads, heads.shape[0], 0, keep=_kept_words(heads, k, (shaped[k] - k * width,)),
                                segment=k)
        if within is None:
            return None
        of_head, head_rows, _, _ = within
        # (classes numbered in order of first appearance over the first rows, themselves in order)
        phase_of_row = class_of_row if head_rows.shape[0] == first_rows.shape[0] else of_head[class_of_row]
        classes = _shaped_classes(table, k, s, batch, n, float(start), rise, phase_of_row, first_rows[head_rows],
                                  lrs[lr_words.index(shaped[k])])
        if classes is None:
            return None
        phases.append(classes)
    return phases


def _closed_segments(table: np.ndarray, count: int, one_kind: np.ndarray | None = None) -> bool:
    """Whether segments 0 .. ``count`` - 1 of every row of ``table`` are closed forms (a constant,
    a polynomial, a cosine, a step schedule: no plain exponential); ``one_kind[k]``: every row's
    segment k is of row 0's kind (``segments_like_first_row``), tested once."""
    for k in range(count):
        kinds = table[:, k, L.KIND]
        if one_kind is not None and one_kind[k] and kinds[0] in (L.CONSTANT, L.POLYNOMIAL, L.COSINE):
            continue  # (a column of one kind, where the test below makes eight passes)
        closed = (kinds == L.CONSTANT) | (kinds == L.POLYNOMIAL) | (kinds == L.COSINE) | (
            (kinds == L.EXPONENTIAL) & (table[:, k, L.P0 + 3] != 0.0))
        if not closed.all():
            return False
    return True


# a cosine's lr * (1 + c) / 2 is lr * ((1 + c) / 2) where neither the product nor its half leaves
# the normal range: 1 + c is 0 or at least 2**-53 (c rounds in steps of 2**-53 near -1), at most 2
_SHAPED_COSINE_LRS = (2.0**-900, 2.0**1000)


def _lr_shape_rows(table: np.ndarray, t0: float = 0.0) -> bool:
    """Whether every row of ``table`` is one segment whose rate is its lr times a shape: a staircase
    exponential (a step schedule, ``scaled(lr, gamma ** e)`` itself), or a polynomial or cosine
    that ends at +0.0 whose shape at lr 1, y, lies in [0, 1] from step ``t0`` on (origin at most
    t0, so that tau >= 0; T > 0 and finite; a power >= 0): the closed form ``0 + lr * y`` is then
    ``scaled(lr, y)`` for every lr but -0.0 (``_shapes_of`` checks the lrs), where a y of inf or
    NaN would make NaN of an lr of 0 that ``scaled`` keeps at 0."""
    if table.shape[1] > 1 and not (table[:, 1, L.START] == math.inf).all():
        return False
    first = table[:, 0]
    kind = first[:, L.KIND]
    steps = (kind == L.EXPONENTIAL) & (first[:, L.P0 + 3] != 0.0)
    ends = np.where(kind == L.POLYNOMIAL, first[:, L.P0 + 3], first[:, L.P0 + 2])
    bounded = (first[:, L.ORIGIN] <= t0) & (first[:, L.P0 + 1] > 0.0) & np.isfinite(first[:, L.P0 + 1])
    to_zero = (((kind == L.POLYNOMIAL) & (first[:, L.P0 + 2] >= 0.0)) | (kind == L.COSINE)) & bounded & (
        ends == 0.0) & ~np.signbit(ends)
    return bool((steps | to_zero).all())


def _rising_rows(table: np.ndarray, t0: float = 0.0) -> bool:
    """Whether every row of ``table`` is one segment, a polynomial (a line, at power 1) from +0.0 to
    its end, bounded as ``_lr_shape_rows``'s (a linear warmup's segment with an lr a trajectory): its
    closed form ``(0 - end) x + end`` is read from its shape's x (``_cpu.schedule.class_lane_rate``),
    which the row at start 1 and end 0 gives exactly, with the same operations."""
    if table.shape[1] > 1 and not (table[:, 1, L.START] == math.inf).all():
        return False
    first = table[:, 0]
    starts = first[:, L.P0]
    bounded = (first[:, L.ORIGIN] <= t0) & (first[:, L.P0 + 1] > 0.0) & np.isfinite(first[:, L.P0 + 1])
    return bool(((first[:, L.KIND] == L.POLYNOMIAL) & (starts == 0.0) & ~np.signbit(starts)
                 & (first[:, L.P0 + 2] >= 0.0) & bounded).all())


def _combined_classes(rates: tuple[_Rate, _Rate, _Rate], batch: tuple[int, ...], n: int,
                      most: int) -> _RateClasses | None:
    """Grouped rate classes of trajectories by the bits of their three rows (learning rate,
    weight decay, momentum: a grid of momenta or weight decays, alone or across a grid of
    schedules), each class run as its three schedules alone, or None where they make more than
    ``most`` classes. (The other ways: the general kernel's element loop, which reads a momentum a
    trajectory, or, for a weight decay a trajectory at one coordinate, the vector loops reading
    the shared rate as copies: both slower than a grid of learning rates' lanes.)"""
    combined = np.zeros(n, np.int64)  # each trajectory's class so far
    parts: list[np.ndarray | None] = []  # each schedule's row of each class so far (None: shared)
    count = 1
    for s in rates:
        if s.size == 1:
            parts.append(None)
            continue
        found = _row_classes(s, most, most) if most >= 1 else None
        if found is None:
            return None
        class_of_row, first_rows, _ = found
        k = first_rows.shape[0]
        if count == 1:  # (the first schedule a trajectory: its classes are the combinations so far)
            combined, count = _class_of_trajectory(s, batch, n, class_of_row), k
            parts = [None if rows is None else np.repeat(rows, k) for rows in parts] + [first_rows]
            continue
        key = combined * k + _class_of_trajectory(s, batch, n, class_of_row)
        if count * k <= 4 * n + 1024:  # (a count a key: no sort)
            present = np.bincount(key, minlength=count * k) > 0
            keys = np.flatnonzero(present)
            combined = (np.cumsum(present) - 1)[key]
        else:
            keys, combined = np.unique(key, return_inverse=True)
        if keys.shape[0] > most:
            return None
        # class j (key keys[j]) is class keys[j] // k of the schedules before, row first_rows[keys[j] % k] of this one
        parts = [None if rows is None else rows[keys // k] for rows in parts] + [first_rows[keys % k]]
        count = keys.shape[0]
    lr_rows, wd_rows, mom_rows = (np.zeros(count, np.int64) if rows is None else rows for rows in parts)
    return _RateClasses(_lane_source(rates[0].rows(), lr_rows, count > 1), _readonly(np.asarray(combined, np.int64)),
                        grouped=True, wd_rows=_NO_ROWS if parts[1] is None else _readonly(wd_rows),
                        mom_rows=_NO_ROWS if parts[2] is None else _readonly(mom_rows))


def _mostly_closed_form(source: tuple[np.ndarray, ...], class_of_row: np.ndarray, sizes: np.ndarray) -> bool:
    """Whether at least half of the rows of ``_classes_of``'s classes are read in closed form (a
    broadcast schedule gives each of its rows to as many trajectories: rows count as trajectories)."""
    return 2 * int(sizes[np.isnan(source[2][:sizes.shape[0]])].sum()) >= class_of_row.shape[0]


def _classes_of(s: _Rate, most: int,
                most_if_ratios: int) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray,
                                              np.ndarray] | None:
    """(the ``_lane_source`` of one lane a class, the class of each row, the rows a class) of the
    rows of ``s``, or None where they make more than ``most`` classes (``most_if_ratios`` where the
    rows sampled all advance by a ratio; ``_cpu.simulate.rate_classes``)."""
    found = _row_classes(s, most, most_if_ratios)
    if found is None:
        return None
    class_of_row, first_rows, sizes = found
    return _lane_source(s.rows(), first_rows.copy(), first_rows.shape[0] > 1), class_of_row, sizes


def _row_classes(s: _Rate, most: int, most_if_ratios: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(the class of each row of ``s``, the first row of each class, the rows a class): rows of the
    same bits share a class; None as ``_classes_of``."""
    found = _table_classes(s.rows(), most, most_if_ratios)
    return None if found is None else found[:3]


def _table_classes(table: np.ndarray, most: int, most_if_ratios: int, keep: np.ndarray | None = None,
                   segment: int = -1,
                   taken_words: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """``_row_classes`` of the rows of ``table`` by the words ``keep`` keeps (``_kept_words``;
    None: every word), of segment ``segment`` alone where it is >= 0; and, read in the same pass,
    taken[j] = word ``taken_words[j]`` of every row (counted as ``keep``'s words: a row's lr)."""
    most = min(table.shape[0], most)
    if most < 1:
        return None
    class_of_row, first_rows = np.empty(table.shape[0], np.int64), np.empty(most, np.int64)
    sizes = np.empty(most, np.int64)
    slots = np.empty(1 << (2 * most).bit_length(), np.int64)
    taken = np.empty((len(taken_words), table.shape[0]))
    count = D.kernels("simulate", NUMPY).rate_classes(
        table, class_of_row, first_rows, sizes, slots, most_if_ratios,
        _kept_words(table, segment) if keep is None else keep, segment, np.array(taken_words, np.int64), taken)
    if count < 0:
        return None
    return class_of_row, first_rows[:count], sizes[:count], taken


def _kept_words(table: np.ndarray, segment: int = -1, skips: tuple[int, ...] = ()) -> np.ndarray:
    """The mask ``_cpu.simulate.rate_classes`` compares rows of ``table`` by (read-only), a word
    for each word of a row (its segments' fields one after another; with ``segment`` >= 0, of
    that segment alone): all ones, but 0 at the words ``skips`` (a row's lrs)."""
    keep = np.full(table.shape[2] if segment >= 0 else table.shape[1] * table.shape[2], ~np.uint64(0))
    keep[list(skips)] = 0
    return _readonly(keep)


def _class_of_trajectory(s: _Rate, batch: tuple[int, ...], n: int, class_of_row: np.ndarray) -> np.ndarray:
    """The class of each of the ``n`` trajectories from the class of each row of ``s`` (read-only)."""
    if isinstance(s, Schedule) and s.batch_shape == batch:
        return _readonly(class_of_row)
    if isinstance(s, _Indexed) and s.batch_shape == batch and (class_of_row == np.arange(s.size)).all():
        return _readonly(s.index.reshape(n))  # (distinct values are distinct rows, in the same order)
    return _readonly(class_of_row[_trajectory_rows(s, batch, n)])


def _readonly(a: np.ndarray) -> np.ndarray:
    a = a.view()
    a.flags.writeable = False
    return a


@overload
def simulate(  # type: ignore[overload-overlap]
    curvature: torch.Tensor, schedule: Schedule | RealArrayLike, *, steps: int, optimizer: str = ...,
    w0: RealArrayLike | DeviceArray = ..., momentum: Schedule | RealArrayLike = ...,
    betas: tuple[Schedule | float, float] = ..., eps: float = ...,
    weight_decay: Schedule | RealArrayLike = ..., on_drop: str = ..., noise: float = ..., seed: int = ...,
    every: int | None = ..., dtype: DTypeLike = ..., trajectory_offset: int = ...,
    progress: Callable[[int, int], object] | None = ..., chunk_steps: int | None = ..., threads: int | None = ...,
) -> SimulationResult[torch.Tensor]: ...


@overload
def simulate(
    curvature: RealArrayLike, schedule: Schedule | RealArrayLike, *, steps: int, optimizer: str = ...,
    w0: RealArrayLike | DeviceArray = ..., momentum: Schedule | RealArrayLike = ...,
    betas: tuple[Schedule | float, float] = ..., eps: float = ...,
    weight_decay: Schedule | RealArrayLike = ..., on_drop: str = ..., noise: float = ..., seed: int = ...,
    every: int | None = ..., dtype: DTypeLike = ..., trajectory_offset: int = ...,
    progress: Callable[[int, int], object] | None = ..., chunk_steps: int | None = ..., threads: int | None = ...,
) -> SimulationResult[np.ndarray]: ...


def simulate(curvature: Any, schedule: Schedule | RealArrayLike, *, steps: int, optimizer: str = "gd",
             w0: RealArrayLike | DeviceArray = 1.0, momentum: Schedule | RealArrayLike = 0.9,
             betas: tuple[Schedule | float, float] = (0.9, 0.999), eps: float = 1e-8,
             weight_decay: Schedule | RealArrayLike = 0.0, on_drop: str = "keep", noise: float = 0.0, seed: int = 0,
             every: int | None = None, dtype: DTypeLike = np.float64, trajectory_offset: int = 0,
             progress: Callable[[int, int], object] | None = None, chunk_steps: int | None = None,
             threads: int | None = None) -> SimulationResult[Any]:
    """Run a batch of optimizer trajectories on f(w) = ½ Σ_i λ_i w_i².

    ``curvature`` has shape ``(*batch, d)`` (a 1-D array is one problem); it may
    be negative (saddles) but must be finite. ``schedule`` (a Schedule or a
    float) and ``weight_decay`` (a float or a Schedule) have batch shapes that
    broadcast with ``batch``; ``w0`` broadcasts to the full ``(*batch, d)``.

    ``optimizer`` is one of ``"gd"``, ``"momentum"`` (torch heavy ball: buffer =
    gradient at step 0, then b ← μ b + g, w ← w − η_t b), ``"momentum_lr_in_buffer"``
    (v ← μ v + η_t g, w ← w − v), ``"nesterov"``, ``"adam"`` (weight decay as L2),
    ``"adamw"`` (decoupled) and ``"lion"`` (``betas``; decoupled weight decay): the
    update rules of ``fd.sgd_step`` / ``fd.adamw_step`` / ``fd.lion_step``, with ``on_drop`` ("keep", "reset", "rescale") acting on the
    momentum buffer where the rate drops discontinuously. ``noise`` = σ adds σ ξ
    to each gradient coordinate, ξ a float32 standard normal (Box-Muller) from
    Philox4x32-10 keyed by ``seed`` with counter (trajectory_offset + trajectory,
    step // 4, coordinate) (four steps share a counter; ``fastdecay.reference.philox_normal``
    spells it out): the same numbers whatever the thread count, chunking, backend or
    dtype.

    ``momentum`` (the SGD family) and ``betas[0]`` (Adam's and Lion's beta1) may be schedules
    too, read at every step like the rate, shared or batched like ``schedule``
    (an array of momenta or of beta1s is a batch of constants): ``fd.one_cycle(...).momentum``
    cycles them as torch's ``OneCycleLR(cycle_momentum=True)`` does; a β1 schedule must
    stay below 1 at every step of the run. Adam's bias
    correction 1 − β1^(t+1) takes the step's β1, as torch's does. A step whose momentum
    is 0 is a plain step (w ← w − η_t g) that leaves the buffer as it is, and the buffer
    starts (b = g, or η_t g in the lr-in-buffer form) at the first step whose momentum
    is not 0, as torch's SGD makes it there and ``fd.sgd_step`` does: a momentum that
    ramps up from 0 takes torch's steps.

    ``every=k`` records steps 0, k, 2k, … (loss, displacement ‖w_t − w_{t−1}‖₂,
    η_t); without it only the final weights are kept. Divergent trajectories
    end as inf/nan and are counted in ``diverged``; nothing raises mid-run.

    Extra keywords for sweeps: ``trajectory_offset`` (global index of the first
    trajectory: a chunk of a larger batch draws exactly the noise it would in the
    whole batch), ``progress(steps_done, steps_total)`` called between chunks of
    ``chunk_steps`` steps (default: chunks sized by measured time, about 0.25 s
    each after a short first one, at most 65,536 steps; a short noiseless run of the
    SGD family under shared rates is one chunk; Ctrl-C is honoured between
    chunks, so within about a second unless one step of the whole batch takes
    longer), and
    ``threads`` (Numba threads for this call; the caller's setting is restored).

    A grid of a few schedules over many curvatures (a schedule a trajectory, the weight decay and
    momentum shared) runs on the CPU by rate classes: each distinct schedule's rate is computed once
    a step, with the bits each trajectory gets alone. Where the distinct schedules have 64 elements
    each or more on average (trajectories times coordinates; of one coordinate, 192 where most are
    plain exponentials, or with noise; recording, 32, or 64 at one coordinate with noise, with
    noise over several coordinates 8 trajectories or more), the trajectories run laid out
    schedule by schedule, each schedule's as a run of that schedule alone (at the speed of one
    shared schedule, ``on_drop`` included), and come back in their places (a recording in each
    trajectory's own row; with noise, the draws of each trajectory's own index). A grid of
    momenta, weight decays or beta1s runs grouped so too, by the combination of each
    trajectory's values.
    Else, without recording, one
    coordinate each with 16 or more a schedule (most of them schedules other than plain
    exponentials; for the momentum family ``on_drop="keep"``), each trajectory reads its
    schedule's rate in its place. Distinct schedules that are each a few shapes scaled count as
    those few: a step schedule, or a cosine, line or polynomial to 0, with an lr a trajectory (a
    random search over lr; after a warmup of the same length too), and products whose last
    factor is a number a trajectory (``fd.stack(schedules)[which] * lrs``); each trajectory's
    rate is then its shape's times its lr (or number), the bits of its schedule alone.

    GPU input (``curvature`` a CuPy array or a CUDA torch tensor): the curvature
    is checked on its GPU (never copied to the host), the other arguments on the
    host (a device ``w0`` is copied there once), then the state is allocated on
    the curvature's GPU, whatever the current device, and the kernels run there;
    ``w``, ``loss``, ``displacement`` and ``lr`` come back on that GPU (CuPy
    arrays, or torch tensors for torch input).

    JAX/optax: a ``jax.lax.scan`` over ``optax`` updates ``vmap``-ed over the batch.

    >>> import numpy as np, fastdecay as fd
    >>> lam = np.array([[0.5], [1.0], [4.0]])
    >>> res = fd.simulate(lam, fd.step(lr=0.4, gamma=0.5, period=10), steps=30, optimizer="momentum")
    >>> res.w.shape, res.diverged
    ((3, 1), 0)
    >>> fd.simulate([3.0], 1.0, steps=1100).diverged    # |1 - 3|^1100 overflows: counted, not raised
    1
    """
    plan = _plan(curvature, schedule, steps=steps, optimizer=optimizer, w0=w0, momentum=momentum, betas=betas,
                 eps=eps, weight_decay=weight_decay, on_drop=on_drop, noise=noise, seed=seed, every=every,
                 dtype=dtype, trajectory_offset=trajectory_offset, progress=progress, chunk_steps=chunk_steps,
                 threads=threads)
    return _run(plan)


@dataclass(frozen=True)
class _Plan:
    """A checked ``simulate`` call, before anything is allocated: the curvature (checked, on
    its device), the shapes, the update rule and its options, the three rate schedules
    (learning rate, weight decay, momentum / beta1) with their packed sources for the
    kernels, and how to run (chunks, progress, threads). ``_run`` carries it out."""

    source: Any  # the caller's curvature (its array type and device give the results')
    backend: str
    lam: Any  # the checked curvature, shape (*batch, d)
    batch: tuple[int, ...]
    d: int
    dtype: np.dtype
    rule: R.Rule
    rates: tuple[_Rate, _Rate, _Rate]  # learning rate, weight decay, momentum (beta1)
    sources: tuple[tuple[np.ndarray, ...], ...]  # their (table, rows, ratio, state) for the kernels
    classes: _RateClasses | None  # the rate classes, where the kernels read the rates by them
    w0: np.ndarray
    steps: int
    every: int | None
    beta2: float
    eps: float
    on_drop: int
    noise: float
    seed: int
    trajectory_offset: int
    progress: Callable[[int, int], object] | None
    chunk_steps: int | None  # None: chunks sized by measured time
    threads: int | None
    # a learning rate a trajectory run in phases (``_lr_phases``; the first's source is sources[0])
    phases: tuple[_Phase, ...] | None = None

    @property
    def n(self) -> int:
        return math.prod(self.batch)

    @property
    def on_gpu(self) -> bool:
        return D.on_device(self.backend)


def _plan(curvature: Any, schedule: Any, *, steps: Any, optimizer: Any, w0: Any, momentum: Any, betas: Any,
          eps: Any, weight_decay: Any, on_drop: Any, noise: Any, seed: Any, every: Any, dtype: Any,
          trajectory_offset: Any, progress: Any, chunk_steps: Any, threads: Any) -> _Plan:
    """Check every argument of ``simulate`` (before any work) and pack the rate sources."""
    backend = backend_of(curvature)
    # ---- validate everything before any work
    V.choice("optimizer", optimizer, OPTIMIZERS)
    V.choice("on_drop", on_drop, ON_DROP)
    steps = V.integer("steps", steps, high=2**32)
    dt = V.float_dtype("dtype", dtype)
    if every is not None:
        # beyond the run, step 0 is the only one recorded: as every = steps + 1 (which the kernels' int64 holds)
        every = min(V.integer("every", every, low=1), steps + 1)
    noise = V.real("noise", noise, low=0.0)
    eps = V.real("eps", eps, low=0.0)
    beta1_s, beta2 = _beta1_schedule(betas, steps)
    momentum_s = _as_rate(momentum, "momentum")  # (never negative: every factory refuses negative values)
    # the one momentum the kernels read: Adam's beta1, the SGD family's momentum, none for GD
    options = R.BY_NAME[optimizer].options
    mom_s = beta1_s if "betas" in options else momentum_s if "momentum" in options else _NO_MOMENTUM
    seed = V.integer("seed", seed, high=2**64)
    trajectory_offset = V.integer("trajectory_offset", trajectory_offset, high=2**64)
    if chunk_steps is not None:
        chunk_steps = V.integer("chunk_steps", chunk_steps, low=1)
    V.callable_or_none("progress", progress, "a callable(steps_done, steps_total)")
    if threads is not None:
        import numba

        threads = V.integer("threads", threads, low=1)
        if threads > numba.config.NUMBA_NUM_THREADS:
            raise ValueError(f"threads must be <= {numba.config.NUMBA_NUM_THREADS} (NUMBA_NUM_THREADS), "
                             f"got {threads!r}")
    lr_s, wd_s = _as_rate(schedule, "schedule"), _as_rate(weight_decay, "weight_decay")

    on_gpu = D.on_device(backend)
    # finite, negative values allowed (a device curvature is checked on its device)
    lam: Any = _device_curvature(curvature) if on_gpu else _host_curvature(curvature)
    if lam.ndim < 1 or lam.shape[-1] < 1:
        raise ValueError(f"curvature must have shape (*batch, d) with d >= 1, got shape {lam.shape}")
    try:
        if lr_s.batch_shape == wd_s.batch_shape == mom_s.batch_shape == ():  # (shared rates: the curvature's batch)
            batch = lam.shape[:-1]
        else:
            batch = np.broadcast_shapes(lam.shape[:-1], lr_s.batch_shape, wd_s.batch_shape, mom_s.batch_shape)
    except ValueError:
        raise ValueError(
            f"schedule batch_shape {lr_s.batch_shape} (and weight_decay batch_shape {wd_s.batch_shape}, "
            f"momentum / betas[0] batch_shape {mom_s.batch_shape}) must broadcast with the curvature batch "
            f"{lam.shape[:-1]} (curvature shape {lam.shape})"
        ) from None
    d = lam.shape[-1]
    full = batch + (d,)
    # the weights, the curvatures laid out as them, the optimizer's buffers and the result
    V.fits(full, np.dtype(dt).itemsize * (3 + len(R.BY_NAME[optimizer].buffers)), asks=lambda: (
        f"curvature of shape {lam.shape} with the schedule's batch_shape {lr_s.batch_shape} (weight_decay "
        f"{wd_s.batch_shape}, momentum / betas[0] {mom_s.batch_shape}) asks"))
    w0 = V.real_array("w0", w0)
    if dt == np.float32:  # finite as given, and finite as the run holds them
        for name, value in (("curvature", lam), ("w0", w0)):
            if value.dtype != np.float64:  # (a float32 curvature is in range as given)
                continue
            if value is lam and on_gpu:  # (one more reduction on its device; nothing copied but the answer)
                largest = float(abs(lam).max()) if lam.size else 0.0
                if largest > float(np.finfo(np.float32).max):
                    raise ValueError(f"curvature must be within float32's range with dtype=float32, got a value "
                                     f"of magnitude {V.shown(largest)} on GPU {lam.device.id}")
                continue
            big = np.abs(value) > np.finfo(np.float32).max
            if np.any(big):
                raise ValueError(f"{name} must be within float32's range with dtype=float32, got "
                                 f"{V.shown(value[big].flat[0].item())}")
    if dt == np.float32 and noise > float(np.finfo(np.float32).max):  # (sigma is held as the weights are)
        raise ValueError(f"noise must be within float32's range with dtype=float32, got {V.shown(noise)}")
    if dt == np.float32 and noise != 0.0 and np.float32(noise) == 0.0:  # (it would run noiseless, silently)
        raise ValueError(f"noise must not round to 0 in float32 with dtype=float32 (below ~7e-46), got "
                         f"{V.shown(noise)}: give dtype=float64, or noise=0 for a noiseless run")
    try:
        if w0.ndim:  # (a number broadcasts to any shape)
            np.broadcast_to(w0, full)
    except ValueError:
        raise ValueError(f"w0 of shape {w0.shape} must broadcast to the trajectories' shape {full}") from None
    n = math.prod(batch)
    if trajectory_offset + n > 2**64:
        raise ValueError(f"trajectory_offset + batch size must stay below 2**64, got {trajectory_offset!r}")

    rule = R.BY_NAME[optimizer]
    if "momentum" in rule.options and L.is_constant_zero(mom_s.rows()):
        rule = R.BY_NAME["gd"]  # heavy ball, Nesterov and lr-in-buffer with momentum 0 are GD, bit for bit
    rates = (lr_s, wd_s, mom_s)
    classes = None
    # the kernel that reads a rate a trajectory of one coordinate (``_cpu.simulate.kernel_path``)
    lanes = not every and d == 1 and (not rule.on_drop or on_drop == "keep")
    if not on_gpu:
        # a grid of a few learning-rate schedules (or momenta, weight decays) over many
        # curvatures: run grouped by class, or (a learning rate alone, not recording) read by
        # class in the kernel that reads a rate a trajectory of one coordinate ("rates",
        # ``_cpu.simulate.kernel_path``), which keeps the buffer at drops
        classes = _rate_classes(rates, batch, n, d, noisy=noise != 0.0, recorded=bool(every), lanes=lanes)
    phases = None
    if not on_gpu and classes is None and lanes and lr_s.size > 1 and wd_s.size == 1 and mom_s.size == 1:
        phases = _lr_phases(lr_s, batch, n, steps)
    if classes is not None and classes.grouped:
        # (a grouped run reads its classes' rows alone: no rate has lanes)
        sources = [_rate_source(constant(0.0), batch, n)] * 3
    elif phases is not None:
        sources = [phases[0].source] + [_rate_source(r, batch, n) for r in rates[1:]]
    else:
        sources = [_class_lanes(classes, n) if classes is not None and k == 0 else _rate_source(r, batch, n)
                   for k, r in enumerate(rates)]
    if not on_gpu and d == 1 and n and classes is None and lr_s.size == 1 and wd_s.size > 1 and mom_s.size == 1:
        # A weight decay a trajectory (a grid of them) at d = 1 runs in the CPU's per-trajectory
        # vector loops, which read a learning rate a trajectory: the shared one given as copies
        # (the same bits: a shared rate is computed by the per-trajectory recurrence). Not where
        # the rule's buffer follows drops of a rate evaluated in closed form: that takes the
        # element loop, which reads a shared rate's drops once a step.
        copies = _rate_source(lr_s, batch, n, copies=True)
        if not (rule.on_drop and on_drop != "keep" and np.isnan(copies[2][0])):
            sources[0] = copies
    return _Plan(
        source=curvature, backend=backend, lam=lam, batch=batch, d=d, dtype=dt, rule=rule, rates=rates,
        sources=tuple(sources), classes=classes, w0=w0, steps=steps, every=every, beta2=beta2,
        eps=eps, on_drop=R.ON_DROP_CODES[on_drop], noise=noise, seed=seed, trajectory_offset=trajectory_offset,
        progress=progress, chunk_steps=chunk_steps, threads=threads, phases=phases,
    )


def _first_chunk(p: _Plan) -> int:
    """Steps of the first of the chunks sized by time: about _FIRST_CHUNK_ELEMENT_STEPS
    element-steps, or the whole run (up to the step cap) when it is a noiseless SGD-family
    run under shared rates, not recording, that _SGD_VECTOR_FLOOR_RATE finishes within
    the aim."""
    elements = max(1, p.n * p.d)
    shared = all(rows.shape[0] == 0 for _, rows, _, _ in p.sources)  # (a grouped run's too: no lanes)
    if p.rule.fused == "sgd" and p.noise == 0.0 and not p.every and shared \
            and elements * p.steps <= _SGD_VECTOR_FLOOR_RATE * _CHUNK_SECONDS:
        return max(1, min(_CHUNK_STEPS_MAX, p.steps))
    return min(_CHUNK_STEPS_MAX, max(1, _FIRST_CHUNK_ELEMENT_STEPS // elements))


def _run(plan: _Plan) -> SimulationResult[Any]:
    """Carry out a plan: allocate the state where the curvature lives, run the chunks, collect."""
    p = plan
    n, d, batch, dt, steps, every, progress = p.n, p.d, p.batch, p.dtype, p.steps, p.every, p.progress
    lam, rule, on_gpu, backend = p.lam, p.rule, p.on_gpu, p.backend
    lr_s, wd_s, mom_s = p.rates
    full = batch + (d,)
    # kernels never allocate: everything is made here
    cpu = D.kernels("simulate", NUMPY)  # the per-step scalars are computed on the host
    kernels = D.kernels("simulate", backend)  # the same call shape on every backend
    if on_gpu:
        xp = __import__("cupy")
        # every device buffer on the curvature's GPU, whatever the current device
        device = xp.cuda.Device(lam.device.id)
    else:
        xp, device = np, contextlib.nullcontext()
    has_buffer = bool(rule.buffers)
    n_rec = steps // every + 1 if every else 0
    classes = p.classes
    grouped = classes is not None and classes.grouped
    if grouped:
        assert classes is not None
        bounds, in_order = classes.bounds()
    # a recording run under shared rates runs as one class of the grouped kernels, where a grid's
    # class would (with trajectories longer than a tile: ``_cpu.simulate.simulate_chunk``'s
    # element tiles)
    one_class = (not on_gpu and bool(every) and classes is None and d <= cpu.TILE_ELEMENTS
                 and n * d >= _GROUP_SHARING_RECORDED and all(rows.shape[0] == 0 for _, rows, _, _ in p.sources))
    if one_class:
        bounds, in_order = np.array([0, n], np.int64), True
    if every and not on_gpu:  # the recorded loss, displacement and rate, before any of it is made
        V.fits_in_memory("every", every, (3, n, n_rec), np.dtype(dt).itemsize)
    lr_src, wd_src, mom_src = p.sources
    timed = p.chunk_steps is None
    chunk_steps = p.chunk_steps if p.chunk_steps is not None else _first_chunk(p)
    scalar_rows = min(steps, _CHUNK_STEPS_MAX if timed else chunk_steps) + 1
    if not timed:  # (a chunk's per-step scalars; timed chunks stop at _CHUNK_STEPS_MAX steps)
        V.fits_in_memory("chunk_steps", chunk_steps, (scalar_rows, cpu.N_SCALARS), 8)
    with device:
        # the state is made where it lives: a device curvature never visits the host
        if lam.shape == full and lam.dtype == dt and lam.flags.c_contiguous:
            lam_flat = lam.reshape(n * d)  # (a view: read only, below, on the host)
        else:
            lam_flat = xp.ascontiguousarray(xp.broadcast_to(lam.astype(dt, copy=False), full)).reshape(n * d)
        if not on_gpu:
            lam_flat = _readonly(lam_flat)
        w = xp.empty(full, dtype=dt)
        w[...] = xp.asarray(p.w0)
        w_flat = w.reshape(n * d)
        buf = xp.zeros(n * d if has_buffer else 0, dtype=dt)
        sq = xp.zeros(n * d if len(rule.buffers) > 1 else 0, dtype=dt)
        rec = ([xp.empty((n, n_rec) if every else (0, 0), dtype=dt) for _ in range(3)] if every or on_gpu
               else [_NO_RECORDS[dt]] * 3)
        if on_gpu:
            # (the first n of a ratio and a state, the ratios and rates, are the GPU's: the CPU's
            # vector-loop fields, next-change steps and memo stay)
            lr_src, wd_src, mom_src = (tuple(xp.asarray(a[:n] if k in (2, 3) else a) for k, a in enumerate(src))
                                       for src in (lr_src, wd_src, mom_src))
        step_scalars = np.empty((scalar_rows, cpu.N_SCALARS))
        on_drop_code = p.on_drop
        opt = rule.code
        w_run, lam_run = w_flat, lam_flat
        class_of = class_table = class_rows = None
        class_wd_rows = class_mom_rows = _NO_ROWS
        if classes is not None:
            class_of, (class_table, class_rows) = classes.classes, classes.source[:2]
            class_wd_rows, class_mom_rows = classes.wd_rows, classes.mom_rows
        if one_class:
            class_table, class_rows = lr_s.rows(), _readonly(np.zeros(1, np.int64))
            places, items = _readonly(bounds), cpu.group_items(bounds, d, recorded=True)
            group_scalars = step_scalars[None]  # (its one class's step scalars: the shared ones)
        rec_rows = trajectories = None
        if (grouped or one_class) and (every or p.noise != 0.0):
            # the trajectory at each place: each records in its own row, and draws its own noise
            at_places = _readonly(np.arange(n, dtype=np.int64))
            if not in_order:
                regrouped = np.empty_like(at_places)
                cpu.regroup(class_of, bounds, 1, at_places, regrouped, True)
                at_places = _readonly(regrouped)
            rec_rows = at_places if every else None
            if p.noise != 0.0 and not in_order:  # (in order, place p holds trajectory p: no table)
                trajectories = _readonly(np.repeat(at_places.astype(np.uint64), d))
        if grouped:
            # the trajectories laid out class by class (where not so already): each class's
            # stretch runs as its schedule alone, at its step scalars (a chunk's, cut to fit)
            if not in_order:
                lam_run = np.empty_like(lam_flat)
                cpu.regroup(class_of, bounds, d, lam_flat, lam_run, True)
                lam_run = _readonly(lam_run)
                if p.w0.size > 1:
                    w_run = np.empty_like(w_flat)
                    cpu.regroup(class_of, bounds, d, _readonly(w_flat), w_run, True)
                else:  # (one starting point for all is laid out so already; the result is another array)
                    w_flat = np.empty_like(w_flat)
            places, items = _readonly(bounds), cpu.group_items(bounds, d, recorded=bool(every))
        phases = p.phases or ()
        # lanes that read their classes' rates (the per-trajectory kernel, one coordinate, not
        # recording; in phases, the phase of the most classes: a warmup's one line shape is in
        # runs in any layout) read them a run of one class at a time where a tile's classes never
        # decrease (``_cpu.rules._sgd_class_runs_block``: no gather, ~2x faster): the trajectories
        # laid out class by class for the run where they are not so already, every phase's lanes
        # alike. Noiseless only: a lane's draws follow its place.
        layout = classes if classes is not None and not grouped else max(
            (phase.classes for phase in phases if phase.classes is not None), key=lambda c: c.count, default=None)
        if layout is not None and not on_gpu and p.noise == 0.0 and n >= _RUN_LANES_REGROUP * layout.count:
            bounds, in_order = layout.bounds()
            if not in_order:
                class_of = layout.classes
                lam_run = np.empty_like(lam_flat)
                cpu.regroup(class_of, bounds, 1, lam_flat, lam_run, True)
                lam_run = _readonly(lam_run)
                if p.w0.size > 1:
                    w_run = np.empty_like(w_flat)
                    cpu.regroup(class_of, bounds, 1, _readonly(w_flat), w_run, True)
                else:  # (one starting point for all is laid out so already; the result is another array)
                    w_flat = np.empty_like(w_flat)
                if phases:
                    phases = tuple(dataclasses.replace(phase, source=_laid_out(
                        phase.source, phase.classes is not None, class_of, bounds)) for phase in phases)
                    lr_src = phases[0].source
                else:
                    lr_src = _laid_out(lr_src, True, class_of, bounds)
        if phases:
            classes = phases[0].classes  # (the lanes' classes of the first phase, if any)

        def class_buffer(c: _RateClasses) -> np.ndarray:
            class_steps = max(1, _CLASS_RATES_MAX // c.count)  # (a chunk's steps, cut to fit)
            # (rising lines' classes two wide: the kernels read them so, ``_cpu.schedule.class_lane_rate``)
            return np.empty((min(steps, class_steps, scalar_rows), c.count, 2 if c.rises else 1))

        if classes is not None:
            class_rates = class_buffer(classes)
            if grouped:
                group_scalars = np.empty((classes.count, class_rates.shape[0] + 1, cpu.N_SCALARS))

        def run() -> None:
            nonlocal lr_src, classes, class_rates
            first, count, phase = 0, chunk_steps, 0
            while True:
                count = min(count, steps - first)
                if phases:  # (a chunk within one phase: each has a source of its own)
                    if first >= phases[phase].stop:
                        phase += 1
                        lr_src, classes = phases[phase].source, phases[phase].classes
                        if classes is not None:
                            class_rates = class_buffer(classes)
                    count = min(count, phases[phase].stop - first)
                start = time.perf_counter()
                if classes is not None:
                    count = min(count, class_rates.shape[0])
                    cpu.class_rates(*classes.source, first, count, class_rates)
                cpu.shared_step_scalars(lr_s.rows(), wd_s.rows(), mom_s.rows(), on_drop_code, first, count,
                                        step_scalars)
                if grouped or one_class:
                    if grouped:
                        cpu.group_step_scalars(_readonly(class_rates), _readonly(step_scalars), class_table,
                                               class_rows, wd_s.rows(), class_wd_rows, mom_s.rows(),
                                               class_mom_rows, on_drop_code, first, count, group_scalars)
                    cpu.simulate_groups(w_run, buf, sq, lam_run, d, opt, places, items, _readonly(group_scalars),
                                        p.beta2, p.eps, p.noise, p.seed, p.trajectory_offset, first, count,
                                        every or 0, rec, rec_rows, class_table, class_rows, on_drop_code,
                                        trajectories)
                else:
                    if classes is not None:
                        lr_src = (_readonly(class_rates[:count]),) + lr_src[1:]
                    scalars = step_scalars[: count + 1]
                    scalars = _readonly(scalars) if xp is np else xp.asarray(scalars)
                    kernels.simulate_chunk(
                        w_run, buf, sq, lam_run, d, opt,
                        *lr_src, *wd_src, *mom_src,
                        scalars, p.beta2, p.eps, on_drop_code,
                        p.noise, np.uint64(p.seed), np.uint64(p.trajectory_offset),
                        first, count, every or 0, *rec,
                    )
                if on_gpu:
                    xp.cuda.get_current_stream().synchronize()  # the chunk's true time and progress
                first += count
                if progress is not None:
                    progress(first, steps)
                if first >= steps:
                    break
                if timed:
                    count = _next_chunk(count, time.perf_counter() - start, steps - first)

        if n * d == 0:
            pass
        elif p.threads is None:
            run()
        else:
            from ._cpu.parallel import run_on  # (the caller's count restored, even after Ctrl-C)

            run_on(p.threads, run)
        if w_run is not w_flat:  # each trajectory's weights back in its place
            cpu.regroup(class_of, bounds, d, _readonly(w_run), w_flat, False)

        w_out = w_flat.reshape(full)
        if _all_finite(xp, w_flat):
            diverged = 0
        else:
            finite = xp.isfinite(w_flat) if d == 1 else xp.isfinite(w_out.reshape(n, d)).all(axis=1)
            diverged = n - int(xp.count_nonzero(finite))
        result = dict(w=w_out, diverged=diverged)
        if every:
            result.update(
                steps=xp.arange(0, steps + 1, every, dtype=np.int64),  # (on the run's device, as the records)
                loss=rec[0].reshape(batch + (n_rec,)),
                displacement=rec[1].reshape(batch + (n_rec,)),
                lr=rec[2].reshape(batch + (n_rec,)),
            )
        if backend == TORCH_CPU:
            import torch

            result = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in result.items()}
        elif backend == TORCH_CUDA:
            import torch

            result = {k: torch.as_tensor(v, device=p.source.device) if hasattr(v, "__cuda_array_interface__") else v
                      for k, v in result.items()}
    return SimulationResult(**result)


def _beta1_schedule(betas: Any, steps: int) -> tuple[_Rate, float]:
    """(beta1 as a schedule, beta2) of Adam: ``betas[0]`` a number in [0, 1), an array of them (a
    batch of constants) or a schedule below 1 at every step of the run (a ramp that reaches 1 is
    refused naming the step, as the number would be)."""
    if type(betas) is tuple and len(betas) == 2 and type(betas[0]) is float and type(betas[1]) is float:
        beta1, beta2 = V.betas(betas)  # (the usual pair of numbers, at once)
        return as_schedule(beta1, "betas[0]"), beta2
    if isinstance(betas, (tuple, list)) and len(betas) == 2 and isinstance(betas[0], Schedule):
        schedule = betas[0]
        table = schedule.rows()
        # rows of the same bits reach 1 at the same step: each distinct row is looked at once (a
        # grid of beta1s over many trajectories has few), a plain constant's by its value
        found = _row_classes(schedule, schedule.size, schedule.size)
        assert found is not None  # (as many classes as rows allowed)
        rows = found[1]
        plain = table[rows, 0, L.KIND] == L.CONSTANT
        if table.shape[1] > 1:
            plain &= table[rows, 1, L.START] == math.inf  # (one segment: the others are padding)
        for row in rows[~plain | ~(table[rows, 0, L.P0] < 1.0)].tolist():
            t = R.first_step_reaching(table, 1.0, 0, max(steps, 1), row)
            if t is not None:
                value = float(np.asarray(schedule(t)).reshape(-1)[row])
                raise ValueError(f"betas[0] must be in [0, 1) at every step, got a schedule reaching {value!r} at "
                                 f"step {t}: {schedule!r}")
        _, beta2 = V.betas((0.0, betas[1]))
        return schedule, beta2
    if isinstance(betas, (tuple, list)) and len(betas) == 2 and np.ndim(betas[0]) > 0:
        # an array of beta1s is a batch of constants, as an array of momenta is
        beta1s = V.real_array("betas[0]", betas[0], low=0.0)
        reaching = ~(beta1s < 1.0)
        if reaching.any():
            first = V.shown(beta1s[reaching].flat[0].item())
            raise ValueError(f"betas[0] must be in [0, 1), got an array holding {first}")
        _, beta2 = V.betas((0.0, betas[1]))
        return _as_rate(beta1s, "betas[0]"), beta2
    beta1, beta2 = V.betas(betas)
    return as_schedule(beta1, "betas[0]"), beta2


_FINITE_BY_ELEMENT = 4096  # elements up to which ``_all_finite`` checks each (a temporary of 4 KB)


def _all_finite(xp: Any, a: Any) -> bool:
    """Whether every element of ``a`` (a NumPy or CuPy array) is finite; beyond
    ``_FINITE_BY_ELEMENT`` elements in one pass that allocates nothing: a sum with a term that
    is inf or NaN is not finite, so a finite sum answers; only a sum that overflows (or a
    non-finite term) takes the element-wise check. (A small array is checked element by
    element at once: the floating-point state's switch costs more than its pass.)"""
    if a.size == 0:
        return True
    if a.size <= _FINITE_BY_ELEMENT:
        return bool(xp.isfinite(a).all())
    with np.errstate(over="ignore", invalid="ignore"):
        if bool(xp.isfinite(a.sum())):
            return True
    return bool(xp.isfinite(a).all())


def _host_curvature(curvature: Any) -> np.ndarray:
    """The curvature on the host, checked finite. A float32 / float64 NumPy array is read
    where it is (never written, never kept: the kernels get a read-only view, cast or made
    contiguous only where the run needs it), so a large batch costs one pass for the check
    instead of a float64 copy; anything else becomes a checked float64 copy."""
    # (not a masked array: its sum, the finiteness check, skips what the mask hides)
    if isinstance(curvature, np.ndarray) and curvature.dtype in (np.float32, np.float64) \
            and not isinstance(curvature, np.ma.MaskedArray):
        if _all_finite(np, curvature):
            return curvature
    return V.real_array("curvature", curvature)  # the copy, or the error naming the first bad value


def _device_curvature(curvature: Any) -> Any:
    """A CuPy view of a CuPy / CUDA torch curvature (zero-copy), checked on its device:
    real numbers, all finite (one reduction there, nothing copied to the host)."""
    from ._gpu import _runtime as rt  # imports CuPy, or says how to install it

    lam = rt.as_array(V.dense_tensor("curvature", curvature))
    if lam.dtype.kind not in "iuf":
        raise TypeError(f"curvature must be an array of real numbers, got dtype {lam.dtype}")
    if lam.size and not bool(rt.xp.isfinite(lam).all()):
        raise ValueError(f"curvature must be finite (negative values are allowed), got non-finite values on "
                         f"GPU {lam.device.id}")
    return lam

