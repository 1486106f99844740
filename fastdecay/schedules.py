"""Learning-rate schedules as immutable values with closed forms at any step.

Every factory validates its arguments once and lowers the schedule to the
packed segment table of ``fastdecay._layout``; evaluation, fused updates and
simulations all read that one table. Parameters may be arrays: they broadcast
(NumPy rules) to the schedule's ``batch_shape``.

>>> import fastdecay as fd
>>> s = fd.step(lr=0.1, gamma=0.5, period=10)
>>> s(0), s(25)
(0.1, 0.025)
>>> fd.exponential(lr=0.1, gamma=[0.9, 0.99]).table(3).round(4)
array([[0.1  , 0.09 , 0.081],
       [0.1  , 0.099, 0.098]])
"""

from __future__ import annotations

import math
import numbers
import pickle
from typing import (TYPE_CHECKING, Any, Callable, Literal, Mapping, NoReturn, Sequence, SupportsFloat, TypeVar, Union,
                    cast, overload)

import numpy as np
from numpy.typing import NDArray

from . import _layout as L
from . import _validate as V
from . import _dispatch as D
from ._arrays import in_type_of
from ._dispatch import NUMPY, TORCH_CPU, backend_of
from ._typing import ArrayLike, DeviceArray, DTypeLike, FloatArray, RealArrayLike, Shape

if TYPE_CHECKING:
    import torch

_ArrayT = TypeVar("_ArrayT", bound=DeviceArray)

__all__ = [
    "Schedule",
    "constant",
    "step",
    "multistep",
    "exponential",
    "inverse_time",
    "polynomial",
    "cosine",
    "cosine_restarts",
    "linear",
    "piecewise",
    "warmup",
    "join",
    "one_cycle",
    "cyclic",
    "inverse_sqrt",
    "wsd",
    "stack",
    "tabulated",
    "from_function",
    "product",
    "half_life",
    "match_endpoint",
    "match_half_life",
    "quantization_gap",
    "as_schedule",
    "constant_shrinkage",
    "Rate",
]


# ----------------------------------------------------------------------------- packing


def _pack(*segments: Sequence[Any]) -> FloatArray:
    """A segment table from segments ``(start, origin, kind, p0, ...)`` of broadcastable entries."""
    shape = np.broadcast_shapes(*(np.shape(x) for seg in segments for x in seg))
    # the scalar entries as one row, broadcast in one pass; then only the array entries, each
    # a strided pass (a column a pass was ~9 passes over a batch's table: ~40 ms at 1e6 rows)
    row = np.zeros((len(segments), L.WIDTH))
    arrays = []
    for k, seg in enumerate(segments):
        for c, x in enumerate(seg):
            if np.ndim(x):
                arrays.append((k, c, x))
            else:
                row[k, c] = x
    table = np.empty(shape + row.shape)
    table[...] = row
    for k, c, x in arrays:
        table[..., k, c] = x
    return table


def _pointers(table: FloatArray) -> np.ndarray:
    """Mask of the rows whose P0 is a row index (TABULATED and PRODUCT rows)."""
    kind = np.ascontiguousarray(table[..., L.KIND])  # (one strided pass over a batch's table)
    return (kind == L.TABULATED) | (kind == L.PRODUCT)


def _renumber(table: FloatArray, new_index: np.ndarray) -> FloatArray:
    """``table`` with every pointer p replaced by ``new_index[..., p]`` (per schedule row)."""
    mask = _pointers(table)
    if not np.any(mask):
        return table
    table = table.copy()
    old = np.where(mask, table[..., L.P0], 0.0).astype(np.int64)
    moved = np.take_along_axis(np.broadcast_to(new_index, old.shape[:-1] + new_index.shape[-1:]), old, axis=-1)
    table[..., L.P0] = np.where(mask, moved, table[..., L.P0])
    return table


def _in_order(starts: FloatArray) -> bool:
    """Whether every row's segment starts (last axis) are in the order a stable sort by start
    gives: nondecreasing, side rows (NaN) only after every other."""
    a, b = starts[..., :-1], starts[..., 1:]
    return bool(np.all((a <= b) | np.isnan(b)))


def _normalise(table: FloatArray) -> FloatArray:
    """Sort each row's segments by start (stably: the last of equal starts wins; side
    rows, start NaN, go last in their order), drop columns of segments that no row
    uses, and renumber the pointers into side rows."""
    # (the starts read once: each strided pass over a batch's table costs about a read of all of it)
    starts = np.ascontiguousarray(table[..., L.START])
    if _in_order(starts):  # (the usual table, made in order: no sort, no gather)
        used = _used(starts)
        if used.all():
            return np.ascontiguousarray(table)
        return np.ascontiguousarray(_renumber(table, np.cumsum(used) - 1)[..., used, :])
    order = np.argsort(starts, axis=-1, kind="stable")
    table = np.take_along_axis(table, order[..., None], axis=-2)
    new_index = np.empty_like(order)
    np.put_along_axis(new_index, order, np.arange(order.shape[-1]), axis=-1)
    used = _used(np.take_along_axis(starts, order, axis=-1))
    table = _renumber(table, (np.cumsum(used) - 1)[new_index])
    return np.ascontiguousarray(table[..., used, :])


def _used(starts: FloatArray) -> NDArray[np.bool_]:
    """The segment columns (last axis of ``starts``) some row runs: a start other than inf."""
    rows = starts.reshape(-1, starts.shape[-1])
    if not rows.shape[0]:
        return np.zeros(rows.shape[1], dtype=bool)
    used = ~np.isinf(rows[0])  # (a column the first row runs is used: no scan of the others)
    for c in np.flatnonzero(~used):
        used[c] = not np.isinf(rows[:, c]).all()
    return used


def _shifted(table: FloatArray, by: float) -> FloatArray:
    table = table.copy()
    table[..., L.START] += by
    table[..., L.ORIGIN] += by
    return table


def _concat(tables: Sequence[FloatArray], shifts: Sequence[float] | None = None) -> FloatArray:
    """The segments of ``tables`` side by side (pointers renumbered to their new rows), each
    table's starts and origins moved by its entry of ``shifts`` (as ``_shifted``) where given:
    written once into the new table."""
    batch = np.broadcast_shapes(*(t.shape[:-2] for t in tables))
    out = np.empty(batch + (sum(t.shape[-2] for t in tables), L.WIDTH))
    offset = 0
    for k, t in enumerate(tables):
        n = t.shape[-2]
        part = out[..., offset:offset + n, :]
        part[...] = t
        if shifts is not None and shifts[k]:
            part[..., L.START] += shifts[k]
            part[..., L.ORIGIN] += shifts[k]
        if offset:
            pointers = _pointers(t)
            if np.any(pointers):  # (row p of this table is row offset + p of the new one)
                np.add(part[..., L.P0], float(offset), out=part[..., L.P0],
                       where=np.broadcast_to(pointers, part.shape[:-1]))
        offset += n
    return out


def _pad_segments(table: FloatArray, n: int) -> FloatArray:
    if table.shape[-2] == n:
        return table
    pad = np.zeros(table.shape[:-2] + (n - table.shape[-2], L.WIDTH))
    pad[..., L.START] = np.inf
    return np.concatenate([table, pad], axis=-2)


# Constants fold into these primitives' lr (p0), which scales their rate.
_SCALES_WITH_P0 = (L.CONSTANT, L.EXPONENTIAL, L.INVERSE_TIME)


def _product_rows(rows: Sequence[FloatArray]) -> list[tuple[NDArray[np.intp], FloatArray]]:
    """The rows of the products of ``rows`` (one array a factor, shape (m, segments, WIDTH): m
    schedule rows of one structure, ``_product_structure``): the refined segment boundaries
    with one PRODUCT segment (or a folded primitive) a piece, then the operands' side rows,
    then the pieces' factor rows. Returned as ``(which of the m, their rows)`` pairs: a
    piece's constant factors make a constant factor row only where their product is not 1,
    so the m can part into a few groups of different shapes."""
    first = [r[0] for r in rows]  # (the structure: every row's starts, kinds and pointers are these)
    starts = np.unique(np.concatenate([r[np.isfinite(r[:, L.START]), L.START] for r in first]))
    m = len(starts)
    operands, sides, n_side = [], [], 0
    for r0, r in zip(first, rows):
        side = np.flatnonzero(np.isnan(r0[:, L.START]))
        index = np.full(len(r0), -1)
        index[side] = m + n_side + np.arange(len(side))
        n_side += len(side)
        main = np.flatnonzero(np.isfinite(r0[:, L.START]))
        renumbered = _renumber(r, index)  # every pointer a final row number of the product
        operands.append((r0, renumbered, main))
        sides.append(renumbered[:, side])
    count = rows[0].shape[0]
    pieces_factors = []
    for u in starts:
        factors = []
        for r0, renumbered, main in operands:
            k = main[np.searchsorted(r0[main, L.START], u, side="right") - 1]
            if r0[k, L.KIND] == L.PRODUCT:
                # a factor that is itself a product contributes its factors
                first_factor = int(r0[k, L.P0])
                factors += [renumbered[:, f] for f in range(first_factor, first_factor + int(r0[k, L.P0 + 1]))]
            else:
                factors.append(renumbered[:, k])
        scale = np.ones(count)
        for f in factors:  # (in the factors' order, as one row's product of its constants)
            if f[0, L.KIND] == L.CONSTANT:
                scale = scale * f[:, L.P0]
        pieces_factors.append((u, factors, scale))
    # the rows whose constants multiply to 1 on the same pieces share a shape
    unscaled = np.array([scale == 1.0 for _, _, scale in pieces_factors]).reshape(len(starts), count)
    if (unscaled == unscaled[:, :1]).all():  # (the usual: one group)
        groups = [np.arange(count)]
    else:
        _, group_of = np.unique(unscaled.T, axis=0, return_inverse=True)
        groups = [np.flatnonzero(group_of.reshape(-1) == g) for g in range(group_of.max() + 1)]
    out = []
    for which in groups:
        pieces: list[FloatArray] = []
        factor_rows: list[FloatArray] = []
        for u, factors, scale in pieces_factors:
            scale = scale[which]
            others = [f[which] for f in factors if f[0, L.KIND] != L.CONSTANT]
            if not others or (len(others) == 1 and others[0][0, L.KIND] in _SCALES_WITH_P0):
                piece = others[0] if others else np.zeros((len(which), L.WIDTH))
                piece[:, L.KIND] = piece[:, L.KIND] if others else L.CONSTANT
                piece[:, L.P0] = piece[:, L.P0] * scale if others else scale
                piece[:, L.START] = u
                pieces.append(piece)
                continue
            if scale[0] != 1.0:
                constant_factor = np.zeros((len(which), L.WIDTH))
                constant_factor[:, L.P0] = scale
                others.append(constant_factor)
            piece = np.zeros((len(which), L.WIDTH))
            piece[:, [L.START, L.KIND, L.P0, L.P0 + 1]] = u, L.PRODUCT, m + n_side + len(factor_rows), len(others)
            pieces.append(piece)
            for f in others:
                f[:, L.START] = np.nan
            factor_rows += others
        parts = [np.stack(pieces, axis=1)] + [side[which] for side in sides]
        if factor_rows:
            parts.append(np.stack(factor_rows, axis=1))
        out.append((which, np.concatenate(parts, axis=1)))
    return out


def _classes_of_rows(rows: FloatArray, weights: NDArray[np.uint64] | None = None) -> NDArray[np.intp]:
    """Each row's class (0, 1, ...) among the distinct rows of the 2-D ``rows``, bit for bit
    (``weights``: the hash's, one a column; a fixed odd draw unless given)."""
    bits = np.ascontiguousarray(rows).view(np.uint64)
    # (sorting wide rows is slow: the rows are sorted by a 64-bit hash of their bits, then each
    # class checked against its first row; a collision falls back to sorting the rows themselves)
    if weights is None:
        weights = np.random.default_rng(0x5EED).integers(1, 2**63, bits.shape[-1], dtype=np.uint64) | np.uint64(1)
    hashed = (bits * weights).sum(axis=-1, dtype=np.uint64) if bits.size else np.zeros(len(bits), np.uint64)
    _, first, class_of = np.unique(hashed, return_index=True, return_inverse=True)
    class_of = class_of.reshape(-1)
    if np.array_equal(bits, bits[first[class_of]]):
        return class_of
    _, class_of = np.unique(bits.view(np.dtype((np.void, bits.shape[-1] * 8))), return_inverse=True)
    return class_of.reshape(-1)


def _product_structure(table: FloatArray) -> FloatArray:
    """What the shape of a product reads of each schedule row of ``table`` (batch, segments,
    WIDTH): the starts, the kinds and the pointers (P0 of TABULATED and PRODUCT rows, and a
    PRODUCT's factor count); one row of it a schedule row."""
    pointers = _pointers(table)
    count = np.where(table[..., L.KIND] == L.PRODUCT, table[..., L.P0 + 1], 0.0)
    return np.concatenate([table[..., L.START], table[..., L.KIND], np.where(pointers, table[..., L.P0], 0.0), count],
                          axis=-1)


# ----------------------------------------------------------------------------- the value


class Schedule(V.ScheduleBase):
    """An immutable learning-rate schedule (or a batch of them) with a closed form.

    ``s(t)`` is the rate at step ``t`` (``batch_shape`` broadcast against
    ``np.shape(t)``); ``s.table(n)`` is the rate at steps ``0 .. n-1`` with shape
    ``batch_shape + (n,)``. ``s.segments`` is the packed table every kernel reads,
    ``s.kind`` the factory that made it and ``s.params`` its validated arguments.

    >>> import fastdecay as fd
    >>> s = fd.step(lr=0.1, gamma=0.5, period=[10, 20])     # an array parameter: a batch of two
    >>> s.kind, s.batch_shape, s.table(3).shape
    ('step', (2,), (2, 3))
    >>> s(15).tolist(), s[1]
    ([0.05, 0.1], fd.step(lr=0.1, gamma=0.5, period=20))
    >>> s[1] == fd.step(lr=0.1, gamma=0.5, period=20)       # a value: equal by kind and table
    True
    """

    __slots__ = ("_segments", "_kind", "_params", "_rows", "_hash", "_companion_table")
    # ``array * schedule`` is the product schedule (``__rmul__``), not an array of products
    __array_ufunc__ = None
    _segments: FloatArray
    _kind: str
    _params: dict[str, Any]
    _rows: FloatArray
    _hash: int  # (set at the first hash)
    _companion_table: bytes | None  # (set at the first _companion)

    def __init__(self, segments: ArrayLike, kind: str, params: Mapping[str, Any] | None = None) -> None:
        """A schedule of the packed table ``segments`` (``fastdecay._layout``), named ``kind``,
        with the factory arguments ``params``: a table made elsewhere (a checkpoint's, one
        built by hand) is checked as the kernels will read it (``_layout.table_problem``: the
        kinds, the parameters' signs and the side rows' pointers), a ValueError naming what is
        wrong; the factories' own tables are not checked again."""
        if not isinstance(kind, str):
            raise TypeError(f"kind must be a string, got {V.shown(kind)}")
        try:
            given = np.asarray(segments)
        except (TypeError, ValueError):
            given = None
        if given is None or given.dtype.kind not in "iuf":  # (complex refused, never cast with a warning)
            raise TypeError(f"segments must be an array of real numbers, got {V.shown(segments)}")
        self._hold(given, kind, params)
        problem = L.table_problem(self._rows)
        if problem is not None:
            raise ValueError(f"segments must be a schedule's table: {problem}")
        if kind in ("one_cycle", "cyclic") and self._params:
            try:  # (equality, the hash and ``momentum`` make the momentum companion from them)
                self.momentum
            except (TypeError, ValueError) as error:  # (a TypeError names a private function: left out)
                detail = f": {error}" if isinstance(error, ValueError) else ""
                raise ValueError(f"params of a {kind} schedule must be fd.{kind}'s arguments, which give its "
                                 f"momentum, got {V.shown(dict(self._params))}{detail}") from None

    @classmethod
    def _made(cls, segments: ArrayLike, kind: str, params: Mapping[str, Any] | None = None) -> Schedule:
        """The schedule of a table a factory (or an operation on schedules) made: held
        without ``table_problem``'s check (a table of 200,000 rows costs ~13 ms to check),
        and without a copy: the table is new (no one else holds it) or read-only memory
        (another schedule's)."""
        schedule = cls.__new__(cls)
        schedule._hold(segments, kind, params, owned=True)
        return schedule

    def _hold(self, segments: ArrayLike, kind: str, params: Mapping[str, Any] | None, owned: bool = False) -> None:
        table = np.ascontiguousarray(segments, dtype=np.float64)
        if table.ndim < 2 or table.shape[-1] != L.WIDTH:
            raise ValueError(f"segments must have shape batch_shape + (n_segments, {L.WIDTH}), got {table.shape}")
        owner = table
        while isinstance(owner.base, np.ndarray):
            owner = owner.base
        if not owned and (table is segments or owner is not table and owner.flags.writeable):
            # own the memory: a read-only table with no writable array under it is immutable,
            # and the GPU runtime caches it by identity (fastdecay._gpu._plan.constant_key);
            # the caller's own array stays theirs (and writable)
            table = table.copy()
        table.setflags(write=False)
        # a view of the read-only table: NumPy lets no one make a view of read-only memory writeable
        # (the owning array itself could be), so the table and its cached hash stay as they are
        table = table.view()
        object.__setattr__(self, "_segments", table)
        object.__setattr__(self, "_kind", kind)
        object.__setattr__(self, "_params", {k: _frozen(v) for k, v in (params or {}).items()})
        # one view for every call of rows(): its identity then stands for the table (the GPU
        # backend keeps a launch's arguments under the identities of the tables it read)
        object.__setattr__(self, "_rows", table.reshape((math.prod(table.shape[:-2]),) + table.shape[-2:]))

    def __eq__(self, other: object) -> bool:
        """Equal schedules are of one kind with the same packed table, bit for bit (and, for
        one_cycle and cyclic, the same momentum companion): the same rates at every step (a
        checkpoint's schedule equals the one saved; ``s[i]`` of a batch made by one factory
        equals the schedule made alone with its parameters where its row takes the same form:
        a batch of cosines of which some set ``num_cycles`` or ``exponent``, or of exponentials
        of which some stop at an ``end_lr``, keeps the general form in every row, whose members
        have the rates of those made alone but do not equal them; a member of
        ``fd.stack`` is of kind "stack", its table padded: it does not equal the schedule
        stacked, whose rates it has)."""
        if not isinstance(other, Schedule):
            return NotImplemented
        a, b = self._segments, other._segments
        return self is other or (self._kind == other._kind and a.shape == b.shape and a.tobytes() == b.tobytes()
                                 and self._companion() == other._companion())

    def _companion(self) -> bytes | None:
        """The table of the momentum companion of a one_cycle or cyclic schedule made with its
        arguments (``momentum``), which equality and the hash include: two such schedules of
        the same rates cycle different momenta. Made once (``==`` on such schedules asks
        for it each time)."""
        try:
            return self._companion_table
        except AttributeError:
            table = None
            if self._kind in ("one_cycle", "cyclic") and self._params:
                table = bytes(self.momentum._segments.tobytes())
            object.__setattr__(self, "_companion_table", table)
            return table

    def __hash__(self) -> int:
        try:
            return self._hash
        except AttributeError:  # (computed once: a batch's table can be megabytes)
            value = hash((self._kind, self._segments.shape, self._segments.tobytes(), self._companion()))
            object.__setattr__(self, "_hash", value)
            return value

    def __float__(self) -> NoReturn:
        # code written for a number (torch's ReduceLROnPlateau reads an optimizer's lr with
        # float()) otherwise fails with Python's bare "float() argument must be ..., not 'Schedule'"
        raise TypeError(
            f"a schedule is not one number: its rate at step t is schedule(t) (here {self!r}). Code that reads "
            "an optimizer's lr as a number, such as torch's ReduceLROnPlateau, needs a number as lr; "
            "fastdecay.torch.ReduceLROnPlateau cuts a scheduled lr")

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"a Schedule is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"a Schedule is immutable; cannot delete {name!r}")

    def __reduce__(self) -> tuple[Callable[..., Schedule], tuple[FloatArray, str, dict[str, Any]]]:
        params = self._params
        if "function" in params:
            # fd.from_function: its rates are all in the table; the function goes along only
            # where it pickles (a lambda or a local function does not)
            try:
                pickle.dumps(params["function"])
            except Exception:  # noqa: BLE001 (pickle raises several kinds)
                params = {k: v for k, v in params.items() if k != "function"}
        # (held as it was made, unchecked: a pickle is trusted as the code it can run; a factory's
        # table of extreme values, an infinite product of two huge constants, is not one
        # ``table_problem`` accepts from elsewhere)
        return (Schedule._made, (np.array(self._segments), self._kind, params))

    @property
    def segments(self) -> FloatArray:
        """The packed segment table, shape ``batch_shape + (n_segments, WIDTH)`` (read-only)."""
        return self._segments

    @property
    def kind(self) -> str:
        """The factory that made the schedule (``"step"``, ``"cosine"``, ...)."""
        return self._kind

    @property
    def params(self) -> dict[str, Any]:
        """The factory's validated arguments (a copy: its lists are new lists, its arrays read-only)."""
        return {k: list(v) if isinstance(v, list) else v for k, v in self._params.items()}

    @property
    def batch_shape(self) -> Shape:
        """The shape of the batch of schedules (``()`` for one schedule)."""
        return self._segments.shape[:-2]

    @property
    def size(self) -> int:
        """Number of schedules in the batch."""
        return math.prod(self.batch_shape)

    def rows(self) -> FloatArray:
        """The table as ``(size, n_segments, WIDTH)``: the view kernels take (read-only, the
        same array at every call)."""
        return self._rows

    def __repr__(self) -> str:
        if not self._params:  # a sub-batch s[i] keeps its kind but not the factory's arguments
            return f"fd.Schedule(kind={self._kind!r}, batch_shape={self.batch_shape})"
        shown = ", ".join(f"{k}={_short(v)}" for k, v in self._params.items())
        batch = f", batch_shape={self.batch_shape}" if self.batch_shape else ""
        return f"fd.{self._kind}({shown}{batch})"

    def __getitem__(self, index: Any) -> Schedule:
        """A sub-batch: ``s[3]`` is the fourth schedule of a batch, still a Schedule."""
        if not self.batch_shape:
            raise TypeError("a scalar schedule (batch_shape ()) cannot be indexed")
        # the index addresses the batch's axes only: the table's segment and column axes are
        # taken whole after it (an index reaching into them is too long, an Ellipsis spans the batch)
        batch_index = index if isinstance(index, tuple) else (index,)
        try:
            sub = self._segments[batch_index + (slice(None), slice(None))]
        except IndexError as err:
            raise IndexError(f"index {index!r} must select whole schedules of batch_shape {self.batch_shape} "
                             f"({err})") from None
        params: dict[str, Any] = {}
        if self._kind in _PER_SCHEDULE_PARAMS:
            # every argument is one number per schedule: the sub-batch keeps its own, so
            # half_life, .momentum and the other readers of params work on s[i] too
            params = {k: np.broadcast_to(v, self.batch_shape)[batch_index] if isinstance(v, np.ndarray) and v.ndim
                      else v for k, v in self._params.items()}
        return Schedule._made(sub, self._kind, params)

    def call_shape(self, steps_shape: Sequence[int]) -> Shape:
        """Shape of ``s(t)`` for steps of ``steps_shape``, or ValueError naming ``t``."""
        try:
            return np.broadcast_shapes(self.batch_shape, tuple(steps_shape))
        except ValueError:
            raise ValueError(
                f"t of shape {tuple(steps_shape)} does not broadcast with the schedule's batch_shape "
                f"{self.batch_shape}"
            ) from None

    @overload
    def __call__(self, t: torch.Tensor) -> torch.Tensor: ...  # type: ignore[overload-overlap]

    @overload
    def __call__(self, t: RealArrayLike) -> float | FloatArray: ...

    def __call__(self, t: Any) -> Any:
        """Rate at step(s) ``t``: the closed form, in any order, without state.

        A float for one step of one schedule, else a float64 array of shape
        ``np.broadcast_shapes(batch_shape, np.shape(t))``; a CPU torch tensor for a
        tensor of steps, a device array for device steps (CuPy, CUDA torch). Steps
        are integers from 0 to 2**53 (beyond it float64, which every kernel computes
        in, no longer tells t from t + 1).
        """
        backend = backend_of(t)
        if D.on_device(backend):
            return D.kernels("schedule", backend).evaluate(self, t)
        if isinstance(t, (int, np.integer)) and not isinstance(t, (bool, np.bool_, np.timedelta64)):
            # the common scalar call, without the array machinery
            if not 0 <= t <= V.MAX_STEP:
                V.step("t", t)  # raises, naming t
            if not self.batch_shape:  # one schedule at one step: the kernels' lr_at, called directly
                return D.kernels("schedule", NUMPY).rate_at(self.rows(), float(t))
            out = np.empty(self.size)
            _eval_points(self.rows(), np.arange(self.size, dtype=np.int64), np.full(self.size, float(t)), out)
            return out.reshape(self.batch_shape)
        steps = V.steps_array("t", t)
        shape = self.call_shape(steps.shape)
        out = np.empty(shape)
        if out.size:
            rows = np.arange(self.size, dtype=np.int64).reshape(self.batch_shape)
            _eval_points(self.rows(), np.broadcast_to(rows, shape), np.broadcast_to(steps, shape), out.reshape(-1))
        if backend == TORCH_CPU:
            import torch

            return torch.from_numpy(out)
        return float(out) if out.ndim == 0 else out

    @overload  # (mypy cannot tell that no class derives from both float64 and float32)
    def table(  # type: ignore[overload-overlap]
        self, n_or_steps: RealArrayLike, *, dtype: type[np.float64] | Literal["float64"] = ..., out: None = None
    ) -> FloatArray: ...

    @overload
    def table(self, n_or_steps: RealArrayLike, *, dtype: type[np.float32] | Literal["float32"],
              out: None = None) -> NDArray[np.float32]: ...

    @overload
    def table(self, n_or_steps: RealArrayLike, *, dtype: DTypeLike | torch.dtype, out: None = None
              ) -> NDArray[np.floating[Any]]: ...

    @overload
    def table(self, n_or_steps: RealArrayLike, *, dtype: DTypeLike | torch.dtype = ..., out: _ArrayT) -> _ArrayT: ...

    def table(self, n_or_steps: Any, *, dtype: Any = None, out: Any = None) -> Any:
        """Rates at steps ``0 .. n-1`` (or at the given 1-D steps): ``batch_shape + (n,)``.

        ``dtype`` is float64 (the default) or float32 (computed in float64, rounded once);
        ``out`` (a NumPy array or CPU torch tensor of that shape, C-contiguous) is
        written in place and returned when given: its dtype decides (a ``dtype`` given
        too must be the same). A CuPy array or CUDA tensor as
        ``out`` (or as the steps) computes the table on that GPU instead. Rows are filled in parallel; within
        a row an exponential runs as a product re-anchored to its closed form every 64
        steps and a cosine as a rotation re-anchored likewise (within 1e-13 relative of
        ``s(t)``), other kinds with the closed form's own operations.

        >>> s = stack([exponential(1.0, gamma=0.5), cosine(1.0, 4)])
        >>> s.table(5).tolist()
        [[1.0, 0.5, 0.25, 0.125, 0.0625], [1.0, 0.8535533905932737, 0.5, 0.1464466094067262, 0.0]]
        >>> s.table([4, 0], dtype=np.float32).tolist()
        [[0.0625, 1.0], [0.0, 1.0]]
        """
        device = next((b for b in map(backend_of, (out, n_or_steps)) if D.on_device(b)), None)
        if device is not None:
            return D.kernels("schedule", device).table(self, n_or_steps, dtype=dtype, out=out)
        given_dtype, dtype = dtype, V.table_dtype(dtype, None)
        ranged = isinstance(n_or_steps, (numbers.Integral, np.integer)) and not isinstance(n_or_steps, bool)
        if ranged:
            n = V.integer("n_or_steps", n_or_steps, low=0, high=V.MAX_STEP + 1)
        else:
            steps = V.steps_array("n_or_steps", n_or_steps)
            if steps.ndim == 0:  # (2.0, a 0-d array or tensor: a count must be an int, as for range())
                raise TypeError(f"n_or_steps must be a step count (an int) or a 1-D array of steps, got "
                                f"{V.shown(n_or_steps)}")
            if steps.ndim != 1:
                raise ValueError(f"n_or_steps must be a step count or a 1-D array of steps, got shape {steps.shape}")
            n = steps.shape[0]
        shape = self.batch_shape + (n,)
        if out is None:
            V.fits_in_memory("n_or_steps", n_or_steps, shape, dtype.itemsize)
            result = np.empty(shape, dtype=dtype)
        else:
            result = V.out_array("out", out, shape)
            V.table_dtype(given_dtype, result.dtype)
        if result.size:
            flat = result.reshape(self.size, n)
            if ranged:
                kernels = D.kernels("schedule", NUMPY)
                kernels.run_small(kernels.fill_table, result.size, self.rows(), 0.0, flat)
            else:
                rows = np.broadcast_to(np.arange(self.size, dtype=np.int64)[:, None], (self.size, n))
                _eval_points(self.rows(), rows, np.broadcast_to(steps, (self.size, n)), flat.reshape(-1))
        if out is not None:
            return out
        if backend_of(n_or_steps) == TORCH_CPU:  # a tensor of steps: a tensor of rates (as s(t))
            import torch

            return torch.from_numpy(result)
        return result

    def lr0(self) -> FloatArray:
        """Rates at step 0, shape ``batch_shape``."""
        return self.table(1)[..., 0]

    @property
    def momentum(self) -> Schedule:
        """The momentum (or Adam β1) schedule torch cycles with this rate
        (``cycle_momentum=True``): for ``one_cycle`` and ``cyclic`` schedules only."""
        if self._kind == "one_cycle" and self._params:
            return _one_cycle_momentum(**self._params)
        if self._kind == "cyclic" and self._params:
            return _cyclic_momentum(**self._params)
        raise AttributeError(f"only one_cycle and cyclic schedules have a momentum companion, not {self!r}")

    def __mul__(self, other: Schedule | float | np.floating[Any] | np.integer[Any] | np.ndarray) -> Schedule:
        """``a * b``: the product schedule (``fastdecay.product``); a number (or an array: a
        batch) scales."""
        if not (isinstance(other, Schedule) or _rate_like(other)) or isinstance(other, (list, tuple)):
            return NotImplemented
        return product(self, other)

    def __rmul__(self, other: float | np.floating[Any] | np.integer[Any] | np.ndarray) -> Schedule:
        if not _rate_like(other) or isinstance(other, (list, tuple)):
            return NotImplemented
        return product(other, self)


_SMALLEST_NORMAL = float(np.finfo(np.float64).tiny)

# The kinds whose arguments are all numbers (one per schedule of a batch, broadcast), flags
# and strings: a sub-batch ``s[i]`` indexes them. The others (lists of milestones,
# boundaries or values, schedules of schedules) keep only the table.
_PER_SCHEDULE_PARAMS = frozenset({
    "constant", "step", "exponential", "inverse_time", "polynomial", "cosine", "cosine_restarts", "linear",
    "one_cycle", "cyclic", "inverse_sqrt", "wsd", "one_cycle_momentum", "cyclic_momentum",
})


def _frozen(value: Any) -> Any:
    """A parameter as a Schedule keeps it: lists copied (and their arrays), arrays read-only
    copies unless already read-only and owned, so neither the caller's later edits nor
    edits of ``s.params`` reach the schedule."""
    if isinstance(value, (list, tuple)):
        return type(value)(_frozen(v) for v in value)
    if isinstance(value, np.ndarray) and (value.flags.writeable or value.base is not None):
        value = value.copy()
        value.setflags(write=False)
    return value


def _eval_points(table: FloatArray, rows: np.ndarray, steps: np.ndarray, out: np.ndarray) -> None:
    """out[i] = rate of schedule rows[i] at steps[i] (flattened; rows and steps are
    broadcast views); a few points on the calling thread, many in parallel."""
    kernels = D.kernels("schedule", NUMPY)
    rows = np.ascontiguousarray(rows, dtype=np.int64).reshape(-1)
    steps = np.ascontiguousarray(steps, dtype=np.float64).reshape(-1)
    # read-only views match the kernels' signatures exactly (no per-call conversion)
    rows.setflags(write=False)
    steps.setflags(write=False)
    kernels.run_small(kernels.eval_points, out.shape[0], table, rows, steps, out)


def _short(v: object) -> str:
    if isinstance(v, Schedule):
        return repr(v)
    if isinstance(v, (list, tuple)) and any(np.ndim(x) for x in v):  # levels of several shapes (piecewise)
        return "[" + ", ".join(map(_short, v)) + "]"
    a = np.asarray(v)
    if a.ndim == 0:
        return f"{a.item():g}" if a.dtype.kind == "f" else repr(a.item())
    return f"array{a.shape}" if a.size > 4 else np.array2string(a, separator=", ")


# A learning rate (or weight decay, or momentum) as the fused updates and simulations
# take it: a number, or a schedule.
Rate = Union[SupportsFloat, Schedule]


def as_schedule(value: Schedule | RealArrayLike, name: str = "lr") -> Schedule:
    """A Schedule as it is, or a number (or array) as ``constant``, checked finite and >= 0
    (a ValueError naming ``name``). A Python float or int is made once a name and value and
    kept: a call of the simulations passes a momentum, a weight decay and a beta1, mostly the
    defaults, and a constant's table costs ~20 us to make and check (a schedule is a frozen
    value: the kept one is the same as a new one)."""
    if isinstance(value, Schedule):
        return value
    if type(value) is not float and type(value) is not int:
        return constant(V.real_array(name, value, low=0.0))
    key = (name, value)  # (-0.0, 0.0 and 0 are one key: each is held as +0.0)
    schedule = _NUMBER_SCHEDULES.get(key)
    if schedule is None:
        schedule = constant(V.real_array(name, value, low=0.0))  # (a bad value raises here, and is not kept)
        if len(_NUMBER_SCHEDULES) >= _NUMBER_SCHEDULES_MAX:
            _NUMBER_SCHEDULES.clear()
        _NUMBER_SCHEDULES[key] = schedule
    return schedule


_NUMBER_SCHEDULES: dict[tuple[str, float], Schedule] = {}  # ``as_schedule``'s numbers, by name and value
_NUMBER_SCHEDULES_MAX = 256


# ----------------------------------------------------------------------------- factories


def constant(lr: RealArrayLike) -> Schedule:
    """η_t = lr. torch: no scheduler; Keras/optax: a float, ``optax.constant_schedule``.

    >>> constant(0.1)(1000)
    0.1
    """
    lr = V.rates("lr", lr)
    return Schedule._made(_pack((0.0, 0.0, L.CONSTANT, lr)), "constant", {"lr": lr})


def step(lr: RealArrayLike, gamma: RealArrayLike, period: RealArrayLike) -> Schedule:
    """η_t = lr · gamma^⌊t/period⌋. torch ``StepLR(step_size=period, gamma)`` (a whole period:
    torch's chained StepLR drops where t is a multiple of step_size, which for a period such as 2.5
    is not ⌊t/period⌋'s change); Keras ``ExponentialDecay(staircase=True)`` for any period.

    >>> s = step(0.1, 0.5, 10)
    >>> s(9), s(10), s(25)
    (0.1, 0.05, 0.025)
    """
    lr, gamma, period = V.rates("lr", lr), V.real_array("gamma", gamma, low=0.0, low_open=True), V.durations("period", period)
    V.broadcast(lr=lr, gamma=gamma, period=period)
    table = _pack((0.0, 0.0, L.EXPONENTIAL, lr, gamma, period, 1.0))
    return Schedule._made(table, "step", {"lr": lr, "gamma": gamma, "period": period})


def multistep(lr: RealArrayLike, gamma: RealArrayLike, milestones: Sequence[SupportsFloat] | np.ndarray) -> Schedule:
    """η_t = lr · gamma^(number of milestones ≤ t). torch ``MultiStepLR`` (a repeated
    milestone counts twice, as torch's Counter does).

    >>> s = multistep(1.0, 0.1, [3, 5])
    >>> [round(s(t), 6) for t in range(7)]
    [1.0, 1.0, 1.0, 0.1, 0.1, 0.01, 0.01]
    """
    lr, gamma = V.rates("lr", lr), V.real_array("gamma", gamma, low=0.0, low_open=True)
    V.broadcast(lr=lr, gamma=gamma)
    milestones = V.step_sequence("milestones", milestones, strict=False, sort=True)
    segments = [(0.0, 0.0, L.CONSTANT, lr)]
    segments += [(m, 0.0, L.CONSTANT, lr * gamma ** (k + 1)) for k, m in enumerate(milestones)]
    return Schedule._made(_normalise(_pack(*segments)), "multistep", {"lr": lr, "gamma": gamma, "milestones": milestones})


def exponential(lr: RealArrayLike, *, gamma: RealArrayLike | None = None, rate: RealArrayLike | None = None,
                half_life: RealArrayLike | None = None, decay_steps: RealArrayLike = 1, staircase: bool = False,
                end_lr: RealArrayLike | None = None) -> Schedule:
    """η_t = lr · gamma^(t/decay_steps) (exponent floored if ``staircase``).

    Give exactly one of ``gamma``, ``rate`` (gamma = e^−rate) or ``half_life``
    (gamma = 2^(−1/half_life)). With ``end_lr`` the rate stops there: held at end_lr
    from the first step it would pass it (a floor when gamma < 1, a cap when gamma ≥ 1,
    as optax clips). An lr of 0 is 0 at every step, also where a gamma above 1 has
    overflowed its power (as torch's ``ExponentialLR`` keeps 0).
    torch ``ExponentialLR(gamma)`` (decay_steps 1);
    Keras ``ExponentialDecay(lr, decay_steps, decay_rate=gamma, staircase)``;
    optax ``exponential_decay(lr, transition_steps=decay_steps, decay_rate=gamma,
    staircase, end_value=end_lr)``.

    >>> round(exponential(0.1, gamma=0.9)(10), 5)
    0.03487
    >>> round(exponential(1.0, half_life=10)(30), 6)
    0.125
    >>> [exponential(1.0, gamma=0.5, end_lr=0.2)(t) for t in range(4)]
    [1.0, 0.5, 0.25, 0.2]
    """
    given = [k for k, v in (("gamma", gamma), ("rate", rate), ("half_life", half_life)) if v is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of gamma, rate, half_life; got {given or 'none'}")
    lr = V.rates("lr", lr)
    if gamma is not None:
        gamma = V.real_array("gamma", gamma, low=0.0, low_open=True)
    elif rate is not None:
        with np.errstate(under="ignore"):
            gamma = np.exp(-V.real_array("rate", rate, low=0.0))
        if np.any(gamma == 0.0):  # (as gamma=0 is refused: a rate of 0 from step 1 on)
            raise ValueError(f"rate must leave gamma = e**-rate above 0 (rate below ~745), got {V.shown(rate)}")
    else:
        with np.errstate(over="ignore", under="ignore"):
            gamma = 2.0 ** (-1.0 / V.real_array("half_life", half_life, low=0.0, low_open=True))
        if np.any(gamma == 0.0):
            raise ValueError(f"half_life must leave gamma = 2**(-1/half_life) above 0 (half_life above ~0.00093), "
                             f"got {V.shown(half_life)}")
    decay_steps = V.durations("decay_steps", decay_steps)
    stair = V.flag("staircase", staircase)
    V.broadcast(lr=lr, gamma=gamma, decay_steps=decay_steps)
    params: dict[str, Any] = {"lr": lr, "gamma": gamma, "decay_steps": decay_steps, "staircase": bool(stair)}
    segments: list[tuple[Any, ...]] = [(0.0, 0.0, L.EXPONENTIAL, lr, gamma, decay_steps, stair)]
    if end_lr is not None:
        end_lr = V.rates("end_lr", end_lr)
        V.broadcast(lr=lr, gamma=gamma, decay_steps=decay_steps, end_lr=end_lr)
        segments.append((_exponential_crossing(lr, gamma, decay_steps, stair, end_lr), 0.0, L.CONSTANT, end_lr))
        params["end_lr"] = end_lr
    return Schedule._made(_normalise(_pack(*segments)), "exponential", params)


def _exponential_crossing(lr: ArrayLike, gamma: ArrayLike, decay_steps: ArrayLike, staircase: bool, end_lr: ArrayLike
                          ) -> FloatArray:
    """The first whole step at which lr · gamma^(t/decay_steps) (floored exponent if
    ``staircase``) reaches or passes end_lr, downwards when gamma < 1 and upwards
    otherwise (+inf if never), decided on the float64 closed form itself."""
    lr, gamma, ds, end = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (lr, gamma, decay_steps, end_lr)))
    out = np.full(lr.shape, np.inf)
    for i in np.ndindex(lr.shape):
        a, g, d, e = float(lr[i]), float(gamma[i]), float(ds[i]), float(end[i])

        def rate(t: float) -> float:
            if a == 0.0:
                return a  # (the closed form's ``scaled``: an lr of 0 stays 0 where the power overflows)
            x = t / d
            try:
                return a * g ** (math.floor(x) if staircase else x)
            except OverflowError:
                return math.copysign(math.inf, a)

        def passed(t: float) -> bool:
            return rate(t) <= e if g < 1.0 else rate(t) >= e

        # the rate moves monotonically: double a step that passes, then bisect
        lo, hi = -1.0, 0.0
        while not passed(hi):
            lo, hi = hi, max(1.0, 2.0 * hi)
            if hi > 2.0**62:
                break
        else:
            while hi - lo > 1.0:
                mid = math.floor((lo + hi) / 2.0)
                if not lo < mid < hi:
                    break  # (past 2**53 no whole step lies between two neighbouring floats: hi is the first)
                lo, hi = (lo, mid) if passed(mid) else (mid, hi)
            out[i] = hi
    return out


def inverse_time(lr: RealArrayLike, rate: RealArrayLike, *, decay_steps: RealArrayLike = 1, staircase: bool = False
                 ) -> Schedule:
    """η_t = lr / (1 + rate · t/decay_steps) (floored if ``staircase``).

    Keras ``InverseTimeDecay(lr, decay_steps, decay_rate=rate, staircase)``.

    >>> inverse_time(1.0, 0.5)(2)
    0.5
    """
    lr, rate = V.rates("lr", lr), V.real_array("rate", rate, low=0.0)
    decay_steps = V.durations("decay_steps", decay_steps)
    stair = V.flag("staircase", staircase)
    V.broadcast(lr=lr, rate=rate, decay_steps=decay_steps)
    table = _pack((0.0, 0.0, L.INVERSE_TIME, lr, rate, decay_steps, stair, 1.0))
    params = {"lr": lr, "rate": rate, "decay_steps": decay_steps, "staircase": bool(stair)}
    return Schedule._made(table, "inverse_time", params)


def polynomial(lr: RealArrayLike, total_steps: RealArrayLike, *, power: RealArrayLike = 1.0, end_lr: RealArrayLike = 0.0,
               cycle: bool = False) -> Schedule:
    """η_t = (lr − end_lr)(1 − min(t, T)/T)^power + end_lr, T = total_steps.

    With ``cycle``, T becomes the smallest multiple of total_steps that is ≥ t
    (total_steps at t = 0). Keras ``PolynomialDecay``; optax
    ``polynomial_schedule`` (no cycle); torch ``PolynomialLR`` (end_lr 0).

    >>> polynomial(1.0, 10, power=2.0)(5)
    0.25
    """
    lr, T = V.rates("lr", lr), V.durations("total_steps", total_steps)
    power, end_lr = V.real_array("power", power, low=0.0, low_open=True), V.rates("end_lr", end_lr)
    cyc = V.flag("cycle", cycle)
    V.broadcast(lr=lr, total_steps=T, power=power, end_lr=end_lr)
    table = _pack((0.0, 0.0, L.POLYNOMIAL, lr, T, power, end_lr, cyc))
    params = {"lr": lr, "total_steps": T, "power": power, "end_lr": end_lr, "cycle": bool(cyc)}
    return Schedule._made(table, "polynomial", params)


def cosine(lr: RealArrayLike, total_steps: RealArrayLike, *, min_lr: RealArrayLike = 0.0,
           num_cycles: RealArrayLike = 0.5, exponent: RealArrayLike = 1.0) -> Schedule:
    """η_t = min_lr + (lr − min_lr)·((1 + cos(2π·num_cycles·min(t, T)/T))/2)^exponent.

    With the defaults a half wave from lr down to min_lr at T, held after it: torch
    ``CosineAnnealingLR(T_max=T, eta_min=min_lr)`` up to T (torch is periodic after
    it; this clamps like Keras ``CosineDecay`` and optax ``cosine_decay_schedule``).
    ``num_cycles`` is transformers' (``get_cosine_schedule_with_warmup``: 1 goes down
    and back up), ``exponent`` optax's (``cosine_decay_schedule(exponent=...)``, its
    ``alpha`` is min_lr / lr).

    >>> cosine(1.0, 10)(5)
    0.5
    >>> cosine(1.0, 10, num_cycles=1.0)(5), round(cosine(1.0, 10, exponent=2.0)(5), 12)
    (0.0, 0.25)
    """
    lr, T, min_lr = V.rates("lr", lr), V.durations("total_steps", total_steps), V.rates("min_lr", min_lr)
    cycles = V.real_array("num_cycles", num_cycles, low=0.0, low_open=True)
    power = V.real_array("exponent", exponent, low=0.0, low_open=True)
    V.broadcast(lr=lr, total_steps=T, min_lr=min_lr, num_cycles=cycles, exponent=power)
    with np.errstate(over="ignore"):
        angles = 2.0 * cycles * T  # (the last angle, in half turns: finite, or the rate is NaN)
    if not np.all(np.isfinite(angles)):
        raise ValueError(f"num_cycles must keep 2 · num_cycles · total_steps finite, got num_cycles "
                         f"{_short(cycles)} with total_steps {_short(T)}")
    params = {"lr": lr, "total_steps": T, "min_lr": min_lr}
    if np.all(cycles == 0.5) and np.all(power == 1.0):
        return Schedule._made(_pack((0.0, 0.0, L.COSINE, lr, T, min_lr)), "cosine", params)
    params.update(num_cycles=cycles, exponent=power)
    return Schedule._made(_pack((0.0, 0.0, L.COSINE_POWER, lr, T, min_lr, 2.0 * cycles, power)), "cosine", params)


def cosine_restarts(lr: RealArrayLike, period: RealArrayLike, *, period_mult: RealArrayLike = 1,
                    min_lr: RealArrayLike = 0.0, cycle_decay: RealArrayLike = 1.0, decay_amplitude: bool = False,
                    cycle_limit: int | None = None) -> Schedule:
    """SGDR: cosine from lr to min_lr over cycles of length period · period_mult^k.

    With ``cycle_decay`` cycle k peaks at lr · cycle_decay^k (timm), or with
    ``decay_amplitude`` at min_lr + (lr − min_lr) · cycle_decay^k (Keras m_mul); it
    always ends at min_lr. After ``cycle_limit`` cycles the rate stays at min_lr.
    torch ``CosineAnnealingWarmRestarts(T_0=period, T_mult=period_mult, eta_min=min_lr)``;
    Keras ``CosineDecayRestarts(lr, period, t_mul=period_mult, m_mul=cycle_decay,
    alpha=min_lr / lr)`` with ``decay_amplitude=True``; timm ``CosineLRScheduler(t_initial=period,
    cycle_mul=period_mult, cycle_decay=cycle_decay, cycle_limit=cycle_limit, lr_min=min_lr)``.
    The cycle index is computed in closed form: cycle k starts at step period · k (with
    period_mult 1, found as Keras does, ⌊t / period⌋ in float64) or period · (period_mult^k
    − 1) / (period_mult − 1), so a period that is not whole puts a restart where that float64
    arithmetic does (period 1.1: steps 11 and 22 are restarts). A rate of 0 stays 0 whatever
    the cycle_decay.

    >>> s = cosine_restarts(1.0, 4, period_mult=2)
    >>> [round(s(t), 3) for t in (0, 2, 4, 8, 12)]
    [1.0, 0.5, 1.0, 0.5, 1.0]
    >>> s = cosine_restarts(1.0, 4, cycle_decay=0.5, cycle_limit=2)
    >>> [round(s(t), 3) for t in (0, 4, 6, 8, 100)]
    [1.0, 0.5, 0.25, 0.0, 0.0]
    """
    lr, period = V.rates("lr", lr), V.durations("period", period)
    mult, min_lr = V.real_array("period_mult", period_mult, low=1.0), V.rates("min_lr", min_lr)
    decay = V.real_array("cycle_decay", cycle_decay, low=0.0)
    end_decay = decay if V.flag("decay_amplitude", decay_amplitude) else np.ones_like(decay)
    V.broadcast(lr=lr, period=period, period_mult=mult, min_lr=min_lr, cycle_decay=decay)
    segments: list[tuple[Any, ...]] = [(0.0, 0.0, L.COSINE_RESTARTS, lr, period, mult, min_lr, decay, end_decay)]
    params: dict[str, Any] = {"lr": lr, "period": period, "period_mult": mult, "min_lr": min_lr}
    if np.any(decay != 1.0):
        params.update(cycle_decay=decay, decay_amplitude=bool(decay_amplitude))
    if cycle_limit is not None:
        limit = V.real_array("cycle_limit", cycle_limit, low=1.0, integer=True)
        if limit.ndim:
            raise ValueError(f"cycle_limit must be a single integer, got an array of shape {limit.shape}")
        # the first step of cycle number `limit`, by the closed form the kernels find cycles
        # with (``_cosine_restart_cycle``; no array of `limit` cycle lengths: it may be 10**12);
        # the largest float where it overflows, a step never reached
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            start = np.where(mult == 1.0, period * float(limit), period * (mult ** float(limit) - 1.0) / (mult - 1.0))
        segments.append((np.minimum(np.ceil(start), np.finfo(np.float64).max), 0.0, L.CONSTANT, min_lr))
        params["cycle_limit"] = limit
    return Schedule._made(_normalise(_pack(*segments)), "cosine_restarts", params)


def linear(start_lr: RealArrayLike, end_lr: RealArrayLike, total_steps: RealArrayLike) -> Schedule:
    """A straight line from start_lr to end_lr over total_steps, then end_lr.

    torch ``LinearLR`` (as factors); optax ``linear_schedule``. Increasing too.

    >>> linear(0.0, 1.0, 4)(1), linear(0.0, 1.0, 4)(9)
    (0.25, 1.0)
    """
    start_lr, end_lr, T = V.rates("start_lr", start_lr), V.rates("end_lr", end_lr), V.durations("total_steps", total_steps)
    V.broadcast(start_lr=start_lr, end_lr=end_lr, total_steps=T)
    table = _pack((0.0, 0.0, L.POLYNOMIAL, start_lr, T, 1.0, end_lr, 0.0))
    return Schedule._made(table, "linear", {"start_lr": start_lr, "end_lr": end_lr, "total_steps": T})


def piecewise(boundaries: Sequence[SupportsFloat] | np.ndarray, values: Sequence[RealArrayLike] | np.ndarray, *,
              closed: str = "left") -> Schedule:
    """values[k] for boundaries[k−1] ≤ t < boundaries[k]; ``len(values) == len(boundaries) + 1``.

    optax ``piecewise_constant_schedule`` (as absolute values) and torch's milestones
    switch at the boundary (``closed="left"``); Keras ``PiecewiseConstantDecay`` one
    step later, values[k] for boundaries[k−1] < t ≤ boundaries[k] (``closed="right"``).

    >>> s = piecewise([2, 4], [1.0, 0.5, 0.1])
    >>> [s(t) for t in range(5)]
    [1.0, 1.0, 0.5, 0.5, 0.1]
    >>> [piecewise([2, 4], [1.0, 0.5, 0.1], closed="right")(t) for t in range(6)]
    [1.0, 1.0, 1.0, 0.5, 0.5, 0.1]
    """
    if not isinstance(closed, str) or closed not in ("left", "right"):  # (an array of "left" compared equal)
        raise ValueError(f"closed must be 'left' or 'right', got {V.shown(closed)}")
    b = V.step_sequence("boundaries", boundaries, strict=True)
    # (not np.ndim on a list: levels of different shapes, which broadcast, make it ragged)
    if not isinstance(values, (list, tuple)) and (isinstance(values, (str, bytes)) or np.ndim(cast(Any, values)) == 0):
        raise TypeError(f"values must be a sequence of rates, got {V.shown(values)}")
    if len(values) != len(b) + 1:
        raise ValueError(f"values must have len(boundaries) + 1 = {len(b) + 1} entries, got {len(values)}: "
                         f"{V.shown(values)}")
    vals = [V.rates(f"values[{k}]", v) for k, v in enumerate(values)]
    V.broadcast(**{f"values[{k}]": v for k, v in enumerate(vals)})
    starts = [0.0] + list(b + (1.0 if closed == "right" else 0.0))
    table = _normalise(_pack(*[(s, 0.0, L.CONSTANT, v) for s, v in zip(starts, vals)]))
    params = {"boundaries": b, "values": vals}
    if closed == "right":
        params["closed"] = closed
    return Schedule._made(table, "piecewise", params)


_WARMUP_SHAPES = ("linear", "cosine", "exponential")


def _ramp(start_lr: FloatArray, peak: FloatArray, steps: float | FloatArray, shape: str, name: str = "shape",
          used: bool | NDArray[np.bool_] = True) -> tuple[Any, ...]:
    """The warmup segment from start_lr (at 0) to peak (at ``steps``), shaped ``shape``;
    ``used``: where it runs (a warmup of 0 steps, overridden, takes any start_lr)."""
    V.choice(name, shape, _WARMUP_SHAPES)
    if shape == "linear":
        return (0.0, 0.0, L.POLYNOMIAL, start_lr, steps, 1.0, peak, 0.0)
    if shape == "cosine":
        return (0.0, 0.0, L.COSINE, start_lr, steps, peak)
    unset = (start_lr <= 0) | (np.asarray(peak) <= 0)
    if np.any(unset & used):
        raise ValueError(
            f"an exponential warmup needs start_lr > 0 and a positive peak rate, got start_lr={_short(start_lr)}, "
            f"peak {_short(peak)}"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        return (0.0, 0.0, L.EXPONENTIAL, start_lr, np.where(unset, 1.0, peak / start_lr), steps, 0.0)


def warmup(schedule: Schedule, steps: int, *, start_lr: RealArrayLike = 0.0, shape: str = "linear",
           prefix: bool = True) -> Schedule:
    """From start_lr to schedule(0) over ``steps``, then schedule(t − steps).

    ``shape``: ``"linear"``, ``"cosine"`` (start + (peak − start)(1 − cos(πt/steps))/2)
    or ``"exponential"`` (start · (peak/start)^(t/steps), geometric; start_lr > 0).
    With ``prefix=False`` the warmup replaces the schedule's first ``steps`` instead of
    delaying it: schedule(t) after the warmup (timm ``warmup_prefix=False``, its
    default; ``prefix=True`` is timm ``warmup_prefix=True``).
    optax ``join_schedules([linear_schedule, schedule], [steps])``; Keras
    ``CosineDecay(warmup_steps=...)`` for the cosine case.

    >>> s = warmup(constant(1.0), 4)
    >>> [s(t) for t in range(6)]
    [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    >>> [round(warmup(linear(1.0, 0.0, 8), 2, prefix=False)(t), 3) for t in range(4)]
    [0.0, 0.5, 0.75, 0.625]
    """
    V.schedule("schedule", schedule)
    count = V.real_array("steps", steps, low=0.0, integer=True)
    if count.ndim:
        raise ValueError(f"steps must be a single integer, got an array of shape {count.shape}")
    start_lr = V.rates("start_lr", start_lr)
    V.broadcast(**{"start_lr": start_lr, "schedule.batch_shape": np.empty(schedule.batch_shape)})
    V.flag("prefix", prefix)
    V.choice("shape", shape, _WARMUP_SHAPES)
    if count == 0:  # no warmup: any start_lr (an exponential one's start_lr > 0 is for a ramp)
        return schedule
    ramp = _ramp(start_lr, schedule.lr0(), float(count), shape)
    params: dict[str, Any] = {"schedule": schedule, "steps": count, "start_lr": start_lr}
    if shape != "linear":
        params["shape"] = shape
    if prefix:
        table = _concat([_pack(ramp), schedule.segments], shifts=[0.0, float(count)])
    else:
        # the schedule on its own clock: the segment running at `steps` starts there
        rest = schedule.segments.copy()
        rest[..., L.START] = np.where(rest[..., L.START] < count, float(count), rest[..., L.START])
        params["prefix"] = False
        table = _concat([_pack(ramp), rest])
    table = _normalise(table)
    return Schedule._made(table, "warmup", params)


def join(schedules: Sequence[Schedule], boundaries: Sequence[SupportsFloat] | np.ndarray) -> Schedule:
    """schedules[k](t − boundaries[k−1]) for boundaries[k−1] ≤ t < boundaries[k].

    optax ``join_schedules``; torch ``SequentialLR`` (milestones = boundaries).

    >>> s = join([constant(1.0), exponential(1.0, gamma=0.5)], [2])
    >>> [s(t) for t in range(5)]
    [1.0, 1.0, 1.0, 0.5, 0.25]
    """
    schedules = V.schedules("schedules", schedules)
    b = V.step_sequence("boundaries", boundaries, strict=True)
    if len(b) != len(schedules) - 1:
        raise ValueError(
            f"boundaries must have len(schedules) - 1 = {len(schedules) - 1} entries, got {len(b)}: "
            f"{V.shown(boundaries)}"
        )
    V.broadcast(**{f"schedules[{k}]": np.empty(s.batch_shape) for k, s in enumerate(schedules)})
    ends = list(b) + [np.inf]
    parts = []
    for k, s in enumerate(schedules):
        part = _shifted(s.segments, b[k - 1]) if k else s.segments.copy()
        # segments that would start at or after the next boundary never run
        part[..., L.START] = np.where(part[..., L.START] >= ends[k], np.inf, part[..., L.START])
        parts.append(part)
    table = _normalise(_concat(parts))
    return Schedule._made(table, "join", {"schedules": schedules, "boundaries": b})


_ANNEAL_STRATEGIES = ("cos", "linear")


def one_cycle(max_lr: RealArrayLike, total_steps: RealArrayLike, *, pct_start: RealArrayLike = 0.3,
              div_factor: RealArrayLike = 25.0, final_div_factor: RealArrayLike = 1e4, anneal_strategy: str = "cos",
              three_phase: bool = False, base_momentum: RealArrayLike = 0.85, max_momentum: RealArrayLike = 0.95
              ) -> Schedule:
    """torch ``OneCycleLR(max_lr, total_steps, pct_start, anneal_strategy, div_factor,
    final_div_factor, three_phase)``: from max_lr/div_factor up to max_lr until step
    pct_start·total_steps − 1, then down to max_lr/(div_factor·final_div_factor) at
    step total_steps − 1 (and after); each phase a half cosine (``"cos"``) or a line
    (``"linear"``). With ``three_phase`` the second phase returns to max_lr/div_factor
    at step 2·pct_start·total_steps − 2 and the third anneals to the final rate.

    ``.momentum`` is torch's cycled momentum (``cycle_momentum=True``): from
    max_momentum down to base_momentum while the rate rises, back up while it falls.

    As torch, a warm-up shorter than one step (pct_start·total_steps < 1) starts
    part-way down the second phase. Refused: the settings where torch's formula
    divides by zero (pct_start·total_steps == 1, pct_start == 1) and, with
    ``three_phase``, pct_start ≥ (total_steps + 1)/(2·total_steps), where torch's
    third phase has no steps (torch then never reaches it: its second phase runs to
    the end without returning to max_lr/div_factor).

    >>> s = one_cycle(1.0, 100)
    >>> round(s(0), 4), round(s(29), 4), s(99) < 1e-5
    (0.04, 1.0, True)
    >>> round(s.momentum(0), 4), round(s.momentum(29), 4), round(s.momentum(99), 4)
    (0.95, 0.85, 0.95)
    """
    V.choice("anneal_strategy", anneal_strategy, _ANNEAL_STRATEGIES)
    V.flag("three_phase", three_phase)
    max_lr = V.rates("max_lr", max_lr)
    T = V.real_array("total_steps", total_steps, low=1.0, integer=True)
    pct = V.real_array("pct_start", pct_start, low=0.0, high=1.0, high_open=True)
    div = V.real_array("div_factor", div_factor, low=0.0, low_open=True)
    final_div = V.real_array("final_div_factor", final_div_factor, low=0.0, low_open=True)
    base_m = V.real_array("base_momentum", base_momentum, low=0.0, high=1.0, high_open=True)
    max_m = V.real_array("max_momentum", max_momentum, low=0.0, high=1.0, high_open=True)
    shape = V.broadcast(max_lr=max_lr, total_steps=T, pct_start=pct, div_factor=div, final_div_factor=final_div,
                        base_momentum=base_m, max_momentum=max_m)
    ends = _one_cycle_ends(T, pct, bool(three_phase))
    if np.any(ends[0] == 0.0):
        raise ValueError(
            f"pct_start * total_steps must not be 1 (torch's OneCycleLR divides by zero at step 0 there), "
            f"got pct_start={V.shown(pct_start)}, total_steps={V.shown(total_steps)}"
        )
    if np.any(ends[-1] <= ends[-2]):
        raise ValueError(
            f"pct_start must be below (total_steps + 1) / (2 * total_steps) with three_phase (torch's last phase "
            f"would have no steps), got pct_start={V.shown(pct_start)}, total_steps={V.shown(total_steps)}"
        )
    initial = max_lr / div
    levels = [initial, max_lr, initial, initial / final_div] if three_phase else [initial, max_lr, initial / final_div]
    params: dict[str, Any] = {"max_lr": max_lr, "total_steps": T, "pct_start": pct, "div_factor": div,
                              "final_div_factor": final_div}
    if anneal_strategy != "cos":
        params["anneal_strategy"] = anneal_strategy
    if three_phase:
        params["three_phase"] = True
    if np.any(base_m != 0.85) or np.any(max_m != 0.95):
        params.update(base_momentum=base_m, max_momentum=max_m)
    return Schedule._made(_batch_of(shape, _phases(ends, levels, anneal_strategy)), "one_cycle", params)


def _batch_of(shape: Shape, table: FloatArray) -> FloatArray:
    """``table`` broadcast to the batch ``shape`` of all a factory's parameters: those that
    only its momentum companion reads (one_cycle's and cyclic's momenta) shape the batch too,
    so that the rate and the momentum schedules index alike."""
    return np.broadcast_to(table, shape + table.shape[-2:])


def _one_cycle_ends(T: FloatArray, pct: FloatArray, three_phase: bool) -> list[FloatArray]:
    """torch's float phase ends: pct·T − 1 (and 2·pct·T − 2 with three phases), T − 1."""
    return [pct * T - 1.0, 2.0 * pct * T - 2.0, T - 1.0] if three_phase else [pct * T - 1.0, T - 1.0]


def _phases(ends: Sequence[FloatArray], levels: Sequence[ArrayLike], anneal: str) -> FloatArray:
    """Segments from levels[k] to levels[k + 1] between phase ends[k − 1] and ends[k]
    (fractional, as torch has them: a step belongs to the first phase whose end it
    does not pass), half cosines or lines, held at levels[-1] after the last end."""
    segments: list[tuple[Any, ...]] = []
    start: Any = 0.0
    origin: Any = 0.0
    for end, a, b in zip(ends, levels[:-1], levels[1:]):
        # a phase that ends before step 0 (pct_start * total_steps < 1, as torch allows) never
        # runs: the next one starts at step 0 too and wins; its length is only kept positive
        length = np.where(end > origin, end - origin, 1.0)
        if anneal == "cos":
            segments.append((start, origin, L.COSINE, a, length, b))
        else:
            segments.append((start, origin, L.POLYNOMIAL, a, length, 1.0, b, 0.0))
        start, origin = np.maximum(np.floor(end) + 1.0, 0.0), end
    return _pack(*segments)


def _one_cycle_momentum(max_lr: FloatArray, total_steps: FloatArray, pct_start: FloatArray, div_factor: FloatArray,
                        final_div_factor: FloatArray, anneal_strategy: str = "cos", three_phase: bool = False,
                        base_momentum: Any = 0.85, max_momentum: Any = 0.95) -> Schedule:
    ends = _one_cycle_ends(total_steps, pct_start, three_phase)
    ones = np.ones(np.broadcast_shapes(*(np.shape(x) for x in (max_lr, div_factor, final_div_factor))))
    levels = [max_momentum, base_momentum, max_momentum] + ([max_momentum] if three_phase else [])
    table = _phases(ends, [v * ones for v in levels], anneal_strategy)
    params = {"total_steps": total_steps, "pct_start": pct_start, "base_momentum": base_momentum,
              "max_momentum": max_momentum}
    if anneal_strategy != "cos":
        params["anneal_strategy"] = anneal_strategy
    if three_phase:
        params["three_phase"] = True
    return Schedule._made(table, "one_cycle_momentum", params)


CYCLIC_MODES = ("triangular", "triangular2", "exp_range")


def cyclic(base_lr: RealArrayLike, max_lr: RealArrayLike, step_size_up: RealArrayLike, *,
           step_size_down: RealArrayLike | None = None, mode: str = "triangular", gamma: RealArrayLike = 1.0,
           base_momentum: RealArrayLike = 0.8, max_momentum: RealArrayLike = 0.9) -> Schedule:
    """torch ``CyclicLR(base_lr, max_lr, step_size_up, step_size_down, mode, gamma)``:
    a triangle between base_lr and max_lr; ``triangular2`` halves the amplitude
    each cycle, ``exp_range`` scales it by gamma^t.

    ``.momentum`` is torch's cycled momentum (``cycle_momentum=True``): the same
    triangle from max_momentum down to base_momentum and back, scaled alike.

    >>> s = cyclic(0.0, 1.0, 2)
    >>> [s(t) for t in range(5)]
    [0.0, 0.5, 1.0, 0.5, 0.0]
    >>> [round(s.momentum(t), 3) for t in range(5)]
    [0.9, 0.85, 0.8, 0.85, 0.9]
    """
    V.choice("mode", mode, CYCLIC_MODES)
    base_lr, max_lr = V.rates("base_lr", base_lr), V.rates("max_lr", max_lr)
    up = V.durations("step_size_up", step_size_up)
    down = up if step_size_down is None else V.durations("step_size_down", step_size_down)
    gamma = V.real_array("gamma", gamma, low=0.0, low_open=True)
    base_m = V.real_array("base_momentum", base_momentum, low=0.0, high=1.0, high_open=True)
    max_m = V.real_array("max_momentum", max_momentum, low=0.0, high=1.0, high_open=True)
    shape = V.broadcast(base_lr=base_lr, max_lr=max_lr, step_size_up=up, step_size_down=down, gamma=gamma,
                        base_momentum=base_m, max_momentum=max_m)
    params = {"base_lr": base_lr, "max_lr": max_lr, "step_size_up": up, "step_size_down": down, "mode": mode}
    if mode == "exp_range":
        params["gamma"] = gamma
    if np.any(base_m != 0.8) or np.any(max_m != 0.9):
        params.update(base_momentum=base_m, max_momentum=max_m)
    return Schedule._made(_batch_of(shape, _triangle(base_lr, max_lr, up, down, mode, gamma)), "cyclic", params)


def _triangle(low: ArrayLike, high: ArrayLike, up: ArrayLike, down: ArrayLike, mode: str, gamma: FloatArray
              ) -> FloatArray:
    cycle_scale = 0.5 if mode == "triangular2" else 1.0
    iter_gamma = gamma if mode == "exp_range" else np.ones_like(gamma)
    return _pack((0.0, 0.0, L.CYCLIC, low, high, up, down, cycle_scale, iter_gamma))


def _cyclic_momentum(base_lr: FloatArray, max_lr: FloatArray, step_size_up: FloatArray, step_size_down: FloatArray,
                     mode: str, gamma: Any = 1.0, base_momentum: Any = 0.8, max_momentum: Any = 0.9) -> Schedule:
    ones = np.ones(np.broadcast_shapes(np.shape(base_lr), np.shape(max_lr)))
    table = _triangle(max_momentum * ones, base_momentum * ones, step_size_up, step_size_down, mode,
                      np.asarray(gamma, dtype=np.float64))
    params = {"step_size_up": step_size_up, "step_size_down": step_size_down, "mode": mode,
              "base_momentum": base_momentum, "max_momentum": max_momentum}
    if mode == "exp_range":
        params["gamma"] = gamma
    return Schedule._made(table, "cyclic_momentum", params)


def inverse_sqrt(lr: RealArrayLike, warmup_steps: RealArrayLike, *, start_lr: RealArrayLike = 0.0,
                 timescale: RealArrayLike | None = None) -> Schedule:
    """Linear warmup to lr over ``warmup_steps``, then lr · sqrt(timescale / (t + timescale −
    warmup_steps)); timescale defaults to warmup_steps, giving lr · sqrt(warmup_steps / t).

    fairseq ``inverse_sqrt``, the Transformer ("Attention is all you need")
    schedule; transformers ``get_inverse_sqrt_schedule(num_warmup_steps, timescale)``;
    not in torch.

    >>> s = inverse_sqrt(1.0, 4)
    >>> s(2), s(4), s(16)
    (0.5, 1.0, 0.5)
    >>> inverse_sqrt(1.0, 4, timescale=8)(28)
    0.5
    """
    lr, W, start_lr = V.rates("lr", lr), V.real_array("warmup_steps", warmup_steps, low=1.0), V.rates("start_lr", start_lr)
    scale = W if timescale is None else V.real_array("timescale", timescale, low=0.0, low_open=True)
    if np.any(scale < np.finfo(np.float64).tiny):  # (the kernels read 1 / timescale)
        raise ValueError(f"timescale must be at least 2**-1022 (its reciprocal finite), got {_short(scale)}")
    V.broadcast(lr=lr, warmup_steps=W, start_lr=start_lr, timescale=scale)
    table = _pack(
        (0.0, 0.0, L.POLYNOMIAL, start_lr, W, 1.0, lr, 0.0),
        (W, W, L.INVERSE_TIME, lr, 1.0 / scale, 1.0, 0.0, 0.5),
    )
    params = {"lr": lr, "warmup_steps": W, "start_lr": start_lr}
    if timescale is not None:
        params["timescale"] = scale
    return Schedule._made(table, "inverse_sqrt", params)


WSD_DECAYS = ("linear", "cosine", "1-sqrt")


def wsd(lr: RealArrayLike, total_steps: RealArrayLike, *, warmup_steps: RealArrayLike = 0,
        decay_steps: RealArrayLike | None = None, end_lr: RealArrayLike = 0.0, decay: str = "linear",
        start_lr: RealArrayLike = 0.0, warmup_shape: str = "linear") -> Schedule:
    """Warmup-stable-decay: a warmup from start_lr over ``warmup_steps`` (shaped as
    ``warmup``'s ``shape``: ``"linear"``, ``"cosine"`` or ``"exponential"``), lr held,
    then a decay to end_lr over the last ``decay_steps`` (default 20 % of total_steps)
    shaped ``"linear"``, ``"cosine"`` or ``"1-sqrt"`` (Hägele et al. 2024), end_lr after.

    MiniCPM / "Scaling Laws and Compute-Optimal Training Beyond Fixed Training
    Durations"; not in torch.

    >>> s = wsd(1.0, 10, warmup_steps=2, decay_steps=4)
    >>> [round(s(t), 3) for t in range(11)]
    [0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0]
    """
    V.choice("decay", decay, WSD_DECAYS)
    lr, T = V.rates("lr", lr), V.real_array("total_steps", total_steps, low=1.0, integer=True)
    W = V.real_array("warmup_steps", warmup_steps, low=0.0, integer=True)
    D = np.round(0.2 * T) if decay_steps is None else V.real_array("decay_steps", decay_steps, low=1.0, integer=True)
    D = np.maximum(D, 1.0)
    end_lr, start_lr = V.rates("end_lr", end_lr), V.rates("start_lr", start_lr)
    V.broadcast(lr=lr, total_steps=T, warmup_steps=W, decay_steps=D, end_lr=end_lr, start_lr=start_lr)
    if np.any(W + D > T):
        raise ValueError(
            f"warmup_steps + decay_steps must not exceed total_steps, got {V.shown(warmup_steps)} + "
            f"{V.shown(D.tolist() if D.ndim else int(D))} > {V.shown(total_steps)}"
        )
    d0 = T - D
    if decay == "linear":
        tail: tuple[Any, ...] = (d0, d0, L.POLYNOMIAL, lr, D, 1.0, end_lr, 0.0)
    elif decay == "cosine":
        tail = (d0, d0, L.COSINE, lr, D, end_lr)
    else:
        tail = (d0, d0, L.ONE_MINUS_POWER, lr, D, 0.5, end_lr)
    # a zero-length warmup becomes a segment that the stable one (same start) overrides
    table = _pack(
        _ramp(start_lr, lr, np.maximum(W, 1.0), warmup_shape, name="warmup_shape", used=W > 0),
        (W, W, L.CONSTANT, lr),
        tail,
    )
    params = {
        "lr": lr,
        "total_steps": T,
        "warmup_steps": W,
        "decay_steps": D,
        "end_lr": end_lr,
        "decay": decay,
        "start_lr": start_lr,
    }
    if warmup_shape != "linear":
        params["warmup_shape"] = warmup_shape
    return Schedule._made(_normalise(table), "wsd", params)


def stack(schedules: Sequence[Schedule]) -> Schedule:
    """A batch of schedules of any kinds: ``batch_shape == (len(schedules),) + common``.

    >>> s = stack([constant(1.0), step(1.0, 0.5, 2)])
    >>> s.batch_shape, s.table(4).tolist()
    ((2,), [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.5, 0.5]])
    """
    schedules = V.schedules("schedules", schedules)
    batch = V.broadcast(**{f"schedules[{k}]": np.empty(s.batch_shape) for k, s in enumerate(schedules)})
    n = max(s.segments.shape[-2] for s in schedules)
    tables = [_pad_segments(np.broadcast_to(s.segments, batch + s.segments.shape[-2:]), n) for s in schedules]
    return Schedule._made(np.stack(tables), "stack", {"schedules": schedules})


def tabulated(values: RealArrayLike) -> Schedule:
    """η_t = values[t] for t < len(values), then values[-1]: any schedule as data.

    ``values`` is a per-step array of rates (its last axis the steps; leading axes
    make a batch of tables). The table travels inside the packed representation, so
    fused updates and simulations read it in their kernels like any closed form.
    torch ``LambdaLR`` / ``MultiplicativeLR`` or a rate read from a log become a table
    (``from_function`` tabulates a callable); Keras and optax take a callable too.

    >>> s = tabulated([0.1, 0.3, 0.2])
    >>> [s(t) for t in range(5)]
    [0.1, 0.3, 0.2, 0.2, 0.2]
    >>> tabulated([[1.0, 0.5], [2.0, 1.0]]).table(3).tolist()
    [[1.0, 0.5, 0.5], [2.0, 1.0, 1.0]]
    """
    if isinstance(values, (str, bytes)) or isinstance(values, numbers.Number):
        raise TypeError(f"values must be an array of per-step rates, got {V.shown(values)}")
    v = V.rates("values", values)
    if v.ndim == 0 or v.shape[-1] == 0:
        raise ValueError(f"values must hold at least one rate on its last axis, got shape {v.shape}")
    if v.shape[-1] >= 2**31:
        raise ValueError(f"values must hold fewer than 2**31 steps, got {v.shape[-1]}")
    n = v.shape[-1]
    full, rest = divmod(n, L.VALUES_PER_ROW)
    table = np.zeros(v.shape[:-1] + (1 + full + (rest > 0), L.WIDTH))
    table[..., 0, L.KIND] = L.TABULATED
    table[..., 0, L.P0] = 1.0  # the data rows follow the segment
    table[..., 0, L.P0 + 1] = n
    # data rows (start NaN, kind DATA): VALUES_PER_ROW values a row, the last row padded
    table[..., 1:, L.START] = np.nan
    table[..., 1:, L.KIND] = L.DATA
    table[..., 1 : 1 + full, L.P0 :] = v[..., : full * L.VALUES_PER_ROW].reshape(v.shape[:-1] + (full, L.VALUES_PER_ROW))
    if rest:
        table[..., -1, L.P0 : L.P0 + rest] = v[..., full * L.VALUES_PER_ROW :]
        table[..., -1, L.P0 + rest :] = v[..., -1:]
    return Schedule._made(table, "tabulated", {"values": v})


def from_function(f: Callable[[int], RealArrayLike], steps: int) -> Schedule:
    """``tabulated([f(0), f(1), ..., f(steps - 1)])``: a Python callable of the step as
    a table the kernels read (held at f(steps − 1) afterwards).

    ``f`` returns a rate, or an array of rates (a batch). torch
    ``LambdaLR(optimizer, lr_lambda)`` with base rate ``lr`` is
    ``from_function(lambda t: lr * lr_lambda(t), steps)``; optax and Keras schedules
    are callables of the step too.

    >>> s = from_function(lambda t: 0.1 / (1 + t), 4)
    >>> [round(s(t), 4) for t in range(6)]
    [0.1, 0.05, 0.0333, 0.025, 0.025, 0.025]
    """
    if not callable(f):
        raise TypeError(f"f must be a callable of the step, got {V.shown(f)}")
    n = V.real_array("steps", steps, low=1.0, integer=True)
    if n.ndim:
        raise ValueError(f"steps must be a single integer, got an array of shape {n.shape}")
    rates = []
    for t in range(int(n)):
        value = f(t)
        try:
            rates.append(V.rates(f"f({t})", value))
        except (TypeError, ValueError) as error:
            raise type(error)(f"f must return finite non-negative rates: {error}") from None
    try:
        v = np.stack(np.broadcast_arrays(*rates), axis=-1)
    except ValueError:
        first = np.shape(rates[0])
        t = next(t for t, r in enumerate(rates) if np.shape(r) != first)
        raise ValueError(f"f must return rates of one shape at every step, got shape {first} at step 0 and "
                         f"{np.shape(rates[t])} at step {t}") from None
    return Schedule._made(tabulated(v).segments, "tabulated", {"values": v, "function": f})


def product(*schedules: Schedule | RealArrayLike | Sequence[Schedule | RealArrayLike]) -> Schedule:
    """η_t = Π_k schedules[k](t): rates multiplied step by step (``a * b`` for two).

    torch ``ChainedScheduler`` / ``MultiplicativeLR`` compositions and optax's
    multiplied schedules. Evaluated in closed form in the kernels: the product's
    segments are the union of the factors' segment boundaries, on each piece the
    product of the factors' primitives. Numbers count as constant schedules; one list
    (or tuple) given alone is the factors (``product([a, b])`` is ``product(a, b)``), beside
    other factors it is one batched constant. Each factor is evaluated on its own: a
    growing factor that overflows to inf makes the product inf (or NaN beside a factor
    that has fallen to 0), where the exponential of their combined rate stays finite.

    >>> s = product(step(1.0, 0.5, 2), linear(0.0, 1.0, 4))
    >>> [s(t) for t in range(6)]
    [0.0, 0.25, 0.25, 0.375, 0.25, 0.25]
    >>> (0.1 * step(1.0, 0.5, 2)).kind, round((0.1 * step(1.0, 0.5, 2))(2), 6)
    ('product', 0.05)
    """
    if len(schedules) == 1 and not isinstance(schedules[0], Schedule) and isinstance(schedules[0], (list, tuple)):
        schedules = tuple(schedules[0])
    if not schedules:
        raise ValueError("schedules must hold at least one schedule, got none")
    factors = []
    for k, s in enumerate(schedules):
        if isinstance(s, Schedule):
            factors.append(s)
        elif _rate_like(s):
            factors.append(constant(V.rates(f"schedules[{k}]", s)))
        else:
            raise TypeError(f"schedules[{k}] must be a fastdecay Schedule or a rate, got {V.shown(s)}")
    batch = V.broadcast(**{f"schedules[{k}]": np.empty(s.batch_shape) for k, s in enumerate(factors)})
    size = math.prod(batch)
    tables = [np.broadcast_to(s.segments, batch + s.segments.shape[-2:]).reshape((size,) + s.segments.shape[-2:])
              for s in factors]
    # the rows of one structure (the same starts, kinds and pointers in every factor) are
    # multiplied together, as arrays: a batch of a few shapes scaled by an array of lrs is a
    # few groups, not a Python loop a row
    structure = np.concatenate([_product_structure(t) for t in tables], axis=-1)
    class_of = _classes_of_rows(structure)
    done = []
    for c in range(class_of.max() + 1 if size else 0):
        rows = np.flatnonzero(class_of == c)
        done += [(rows[which], product_rows) for which, product_rows in _product_rows([t[rows] for t in tables])]
    n = max((r.shape[1] for _, r in done), default=1)  # (an empty batch: no rows)
    table = np.zeros((size, n, L.WIDTH))
    table[..., L.START] = np.inf  # (a row with fewer segments than the longest: padded as _pad_segments pads)
    for rows, product_rows in done:
        table[rows, :product_rows.shape[1]] = product_rows
    return Schedule._made(table.reshape(batch + (n, L.WIDTH)), "product", {"schedules": factors})


def _rate_like(value: object) -> bool:
    """Whether ``value`` is a rate ``product`` and ``*`` take as a constant schedule: a number
    or an array of them (NumPy, a list, a torch tensor), not a bool."""
    return (isinstance(value, (numbers.Real, np.ndarray, list, tuple)) and not isinstance(value, bool)
            or D.is_torch(value))


# ----------------------------------------------------------------------------- weight-decay schedules


def constant_shrinkage(lr: Schedule | RealArrayLike, weight_decay: RealArrayLike, *, total_steps: int | None = None,
                       reference_lr: RealArrayLike | None = None) -> Schedule:
    """The weight-decay schedule λ_t = weight_decay · reference_lr / η_t for the lr schedule ``lr``.

    ``reference_lr`` is the rate that ``weight_decay`` is relative to: η_0 by
    default, or e.g. the peak rate of a schedule that warms up from 0. The
    per-step decoupled shrinkage η_t · λ_t = weight_decay · reference_lr then
    stays constant while the rate decays, where torch's ``AdamW`` shrinks by
    1 − η_t · λ, which fades with η_t (Loshchilov & Hutter's normalized weight
    decay keeps it; no torch, Keras or optax equivalent). A schedule that is 0
    at step 0 (a warmup from 0) needs ``reference_lr``: its own η_0 would make λ
    zero at every step.

    Closed forms, exact at every step, where the reciprocal of the lr schedule
    is itself a schedule of the segment table:

    - constant lr: constant weight_decay · reference_lr / lr;
    - ``exponential(lr, gamma, decay_steps, staircase)``: exponential with 1/gamma
      (λ_t = λ_0 · e^(+rate·t)); ``step``: step with 1/gamma (both 0 from the
      first step where η_t < 2.2e-308, float64's smallest normal number, where
      λ_t would soon overflow to inf: an update with such a rate moves nothing);
      ``multistep``: multistep with 1/gamma; ``piecewise``: the reciprocal levels;
    - ``inverse_time(lr, rate)``: λ_0 · (1 + rate·t/decay_steps), the
      inverse-time primitive with power −1.

    Any other schedule (cosine, polynomial, warmup, joins, one-cycle, ...) has
    no closed-form reciprocal among the primitives; give ``total_steps`` and the
    schedule is tabulated exactly at the integer steps 0 .. total_steps (one
    constant segment per step where the value changes, held after
    total_steps). Kernels evaluate schedules only at integer steps, so the
    table is exact there; a long horizon costs one segment per step in the
    (linear) segment search of each call. Where η_t = 0 (the end of a cosine
    to 0), or below float64's normal numbers, no finite λ keeps the shrinkage,
    and λ_t is 0 there (an update with lr 0 shrinks nothing anyway).

    Works on batches of schedules too (λ broadcast over ``lr.batch_shape``).

    >>> import fastdecay as fd
    >>> wd = fd.constant_shrinkage(fd.exponential(0.1, gamma=0.5), 0.01)
    >>> wd(3), wd(1100)          # 0.1 * 0.5**1100 is below float64's normal numbers
    (0.08, 0.0)
    >>> lr = fd.cosine(1.0, 4)
    >>> wd = fd.constant_shrinkage(lr, 0.1, total_steps=4)
    >>> [round(lr(t) * wd(t), 12) for t in range(4)]
    [0.1, 0.1, 0.1, 0.1]
    >>> lr = fd.warmup(fd.cosine(1e-3, 100), 10)            # 0 at step 0
    >>> wd = fd.constant_shrinkage(lr, 0.01, total_steps=110, reference_lr=1e-3)
    >>> [round(lr(t) * wd(t) / 1e-5, 12) for t in (1, 10, 60)]
    [1.0, 1.0, 1.0]
    """
    wd = V.real_array("weight_decay", weight_decay, low=0.0)
    if not isinstance(lr, Schedule):
        lr = constant(V.rates("lr", lr))
    lr0 = lr.lr0()
    if reference_lr is None:
        if lr.kind == "constant":
            return constant(wd * np.ones(lr.batch_shape))
        if np.any(lr0 == 0.0):
            raise ValueError(
                f"lr is 0 at step 0 ({lr!r}), so weight_decay * lr(0) / lr(t) would be 0 at every step: pass "
                "reference_lr=, the rate that weight_decay is relative to (e.g. the peak rate after a warmup)"
            )
        ref = lr0
    else:
        ref = V.real_array("reference_lr", reference_lr, low=0.0, low_open=True)
    p = lr.params
    # (an exponential floored at end_lr has no closed-form reciprocal: it is tabulated)
    if lr.kind in ("constant", "exponential", "step", "multistep", "inverse_time") and "end_lr" not in p:
        if np.any(lr0 == 0.0):
            raise ValueError(f"lr must not be 0 (a {lr.kind} schedule of rate 0 is 0 at every step), got {lr!r}")
        w = wd * (ref / lr0)  # λ_0
        if lr.kind == "constant":
            return constant(w)
        if lr.kind in ("exponential", "step"):
            per, stair = (p["decay_steps"], p["staircase"]) if lr.kind == "exponential" else (p["period"], True)
            # λ_0 e^(+rate t) overflows to inf while η_t is still a subnormal number (at t ~ 70,000
            # for gamma = 0.99), and inf * 0 is NaN in every update: λ_t is 0 from the first step
            # where η_t falls below float64's smallest normal number, as where η_t = 0
            gone = np.where(np.asarray(p["gamma"]) < 1.0,
                            _exponential_crossing(p["lr"], p["gamma"], per, stair, _SMALLEST_NORMAL), np.inf)
            table = _normalise(_pack((0.0, 0.0, L.EXPONENTIAL, w, 1.0 / p["gamma"], per, 1.0 if stair else 0.0),
                                     (gone, 0.0, L.CONSTANT, 0.0)))
            return Schedule._made(table, "constant_shrinkage", {"lr": lr, "weight_decay": wd, "reference_lr": ref})
        if lr.kind == "multistep":
            milestones = p["milestones"]
            drops = np.arange(len(milestones) + 1).reshape((-1,) + (1,) * np.ndim(p["gamma"]))
            with np.errstate(over="ignore", under="ignore", divide="ignore"):
                rates = p["lr"] * np.asarray(p["gamma"]) ** drops  # the rate on each level, as the kernels have it
            if np.all(rates >= _SMALLEST_NORMAL):
                return multistep(w, 1.0 / p["gamma"], milestones)
            # a rate below float64's normal numbers: lambda 0 from there on (as for step, above)
            with np.errstate(over="ignore", divide="ignore"):
                levels = np.where(rates >= _SMALLEST_NORMAL, w * (1.0 / np.asarray(p["gamma"])) ** drops, 0.0)
            return piecewise(milestones, list(levels))
        stair = 1.0 if p["staircase"] else 0.0
        table = _pack((0.0, 0.0, L.INVERSE_TIME, w, np.asarray(p["rate"]), np.asarray(p["decay_steps"]), stair, -1.0))
        return Schedule._made(table, "constant_shrinkage", {"lr": lr, "weight_decay": wd, "reference_lr": ref})
    if lr.kind == "piecewise":
        values = p["values"]
        if any(np.any(np.asarray(v) <= 0) for v in values):
            raise ValueError(f"lr must have positive levels for a constant shrinkage, got values {values!r}")
        with np.errstate(over="ignore", divide="ignore"):  # (a level below the normal numbers: lambda 0 there)
            reciprocals = [np.where(np.asarray(v) >= _SMALLEST_NORMAL, wd * ref / np.asarray(v), 0.0) for v in values]
        return piecewise(p["boundaries"], reciprocals, closed=p.get("closed", "left"))
    if total_steps is None:
        raise ValueError(
            f"lr is a {lr.kind} schedule, whose reciprocal has no closed form among the primitives; "
            "give total_steps to tabulate lambda_t at steps 0 .. total_steps"
        )
    n = V.integer("total_steps", total_steps, low=0, high=1_000_001)
    batch = V.broadcast(**{"lr's batch": np.empty(lr.batch_shape), "weight_decay": wd, "reference_lr": ref})
    rates = np.broadcast_to(lr.table(n + 1), batch + (n + 1,))
    ref = np.broadcast_to(ref, batch)[..., None]  # (weight_decay and reference_lr along the batch, not the steps)
    normal = rates >= _SMALLEST_NORMAL  # below: 0, as where the rate is 0 (wd * ref / rate would overflow)
    lam = np.where(normal, np.asarray(wd)[..., None] * ref / np.where(normal, rates, 1.0), 0.0)
    flat = lam.reshape(-1, n + 1)
    keep = np.ones(n + 1, dtype=bool)
    keep[1:] = np.any(flat[:, 1:] != flat[:, :-1], axis=0)
    starts = np.flatnonzero(keep)
    table = np.zeros(lam.shape[:-1] + (len(starts), L.WIDTH))
    table[..., L.START] = starts
    table[..., L.KIND] = L.CONSTANT
    table[..., L.P0] = lam[..., starts]
    params = {"lr": lr, "weight_decay": wd, "reference_lr": ref[..., 0], "total_steps": n}
    return Schedule._made(table, "constant_shrinkage", params)


# ----------------------------------------------------------------------------- relating schedules


def _made_parameters(s: Schedule, name: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """The parameters ``keys`` of ``s``, which a factory keeps and a table given to
    ``Schedule`` does not: refused by name there."""
    if not all(k in s.params for k in keys):
        raise ValueError(f"{name} must be made by fd.{s.kind} (a table given to fd.Schedule keeps no "
                         f"{', '.join(keys)}), got {s!r}")
    return s.params


def _exponential_form(s: Schedule, name: str = "s") -> tuple[Any, Any, Any]:
    """(lr, gamma, steps per factor of gamma) of a step or exponential schedule."""
    V.schedule(name, s)
    if s.kind == "step":
        p = _made_parameters(s, name, ("lr", "gamma", "period"))
        return p["lr"], p["gamma"], p["period"]
    if s.kind == "exponential":
        p = _made_parameters(s, name, ("lr", "gamma", "decay_steps"))
        return p["lr"], p["gamma"], p["decay_steps"]
    raise ValueError(f"{name} must be a step or exponential schedule, got a {s.kind} schedule")


def half_life(s: Schedule) -> float | FloatArray:
    """Steps for the rate to halve: ln 2 / rate for an exponential (rate = −ln γ per step),
    period · ln 2 / −ln γ for a step schedule; decay_steps / rate for inverse time.
    Broadcast over the batch; ``inf`` where the rate never halves.

    >>> half_life(step(0.1, 0.5, 10))
    10.0
    >>> round(half_life(exponential(0.1, rate=np.log(2) / 10)), 9)
    10.0
    """
    if isinstance(s, Schedule) and s.kind == "inverse_time":
        p = _made_parameters(s, "s", ("rate", "decay_steps"))
        with np.errstate(divide="ignore"):
            h = np.broadcast_to(p["decay_steps"] / p["rate"], s.batch_shape)
        return _scalar_or_array(h)
    lr, gamma, per = _exponential_form(s)
    with np.errstate(divide="ignore"):
        h = np.where(gamma < 1.0, per * np.log(2.0) / -np.log(gamma), np.inf)
    end_lr = s.params.get("end_lr")
    if end_lr is not None:  # held at end_lr from where it reaches it: above lr/2, it never halves
        h = np.where(end_lr > 0.5 * np.asarray(lr), np.inf, h)
    return _scalar_or_array(np.broadcast_to(h, s.batch_shape))


def _scalar_or_array(a: ArrayLike) -> float | FloatArray:
    a = np.asarray(a, dtype=np.float64)
    return float(a) if a.ndim == 0 else np.array(a)


def match_endpoint(s: Schedule, steps: RealArrayLike) -> Schedule:
    """The ``exponential`` with the same lr as ``s`` that reaches ``s(steps)`` at ``steps``.

    Step decay by 0.5 every 10 epochs over 30 epochs
    ends at lr/8, which the exponential with rate ln 2/10 ≈ 0.0693 also reaches:

    >>> e = match_endpoint(step(0.1, 0.5, 10), 30)
    >>> round(float(-np.log(e.params["gamma"])), 4)
    0.0693
    >>> round(e(30), 6) == round(step(0.1, 0.5, 10)(30), 6)
    True
    """
    V.schedule("s", s)
    steps = V.steps_array("steps", steps)  # (integers compared as integers: 2**53 + 1 is refused)
    if np.any(steps < 1.0):
        raise ValueError(f"steps must be integer steps from 1 to 2**53, got {int(np.min(steps))}")
    V.broadcast(**{"s.batch_shape": np.empty(s.batch_shape), "steps": steps})
    lr0 = np.broadcast_to(s.lr0(), np.broadcast_shapes(s.batch_shape, steps.shape))
    end = np.broadcast_to(s(steps) if steps.ndim == 0 else s(np.asarray(steps, dtype=np.int64)), lr0.shape)
    at = np.broadcast_to(steps, lr0.shape)

    def refuse(where: NDArray[np.bool_], what: str) -> None:
        if np.any(where):
            i = tuple(int(k) for k in np.argwhere(where)[0])
            entry = f" (batch entry {i})" if i else ""
            raise ValueError(f"s must {what} to match a decaying exponential, got s(0) = {float(lr0[i])!r} and "
                             f"s({int(at[i])}) = {float(end[i])!r}{entry}")

    refuse((lr0 <= 0) | (end <= 0), "have positive rates at 0 and at steps")
    refuse(end > lr0, "not grow between step 0 and steps")
    with np.errstate(over="ignore", divide="ignore"):
        ratio = lr0 / end
        # ln(lr0 / end), and ln lr0 - ln end where the quotient overflows (or falls to 0)
        rate = np.where((ratio > 0) & np.isfinite(ratio), np.log(ratio), np.log(lr0) - np.log(end)) / steps
    refuse(np.exp(-rate) == 0.0, "fall by less than a factor of e**745 a step (a gamma above 0)")
    return exponential(lr0, rate=rate)


def match_half_life(s: Schedule) -> Schedule:
    """The exponential with the same half-life as a step schedule, or the step
    schedule (gamma 0.5, period = half-life) of an exponential, same lr.

    >>> e = match_half_life(step(0.1, 0.5, 10))
    >>> e.kind, round(half_life(e), 9)
    ('exponential', 10.0)
    >>> st = match_half_life(exponential(0.1, rate=0.0693))
    >>> st.kind, round(float(st.params["period"]), 2)
    ('step', 10.0)
    """
    lr, gamma, _ = _exponential_form(s)
    h = half_life(s)
    if np.any(~np.isfinite(h)):
        raise ValueError(f"s never halves (gamma >= 1, or held at an end_lr above lr/2): {s!r}")
    if s.kind == "step":
        return exponential(lr, half_life=h)
    if s.params["staircase"]:
        raise ValueError(f"s must be a smooth exponential (staircase=False) to match a step schedule, got {s!r}")
    if "end_lr" in s.params:
        raise ValueError(f"s stops at end_lr, which no step schedule does: {s!r}")
    if np.any(np.asarray(h) < 1.0):
        raise ValueError(f"s halves in under one step (half-life {_short(h)}), and a step schedule's period "
                         f"is at least 1: {s!r}")
    return step(lr, 0.5, h)


def _counted_ahead(steps: FloatArray, period: FloatArray) -> NDArray[np.bool_]:
    """Where k = floor(t / period) of the rounded quotient exceeds the exact one: k * period > t,
    decided exactly (k * period as an unevaluated sum p + e by Dekker's product; t - p is exact
    where k >= 1, as p is then within a factor of two of t)."""
    k = np.floor(steps / period)
    p = k * period

    def halves(a: FloatArray) -> tuple[FloatArray, FloatArray]:  # Veltkamp's split: a = hi + lo exactly
        c = 134217729.0 * a  # 2**27 + 1
        hi = c - (c - a)
        return hi, a - hi

    with np.errstate(over="ignore", invalid="ignore"):  # (k = 0 with a huge period: not ahead, below)
        k_hi, k_lo = halves(k)
        p_hi, p_lo = halves(np.broadcast_to(period, p.shape))
        e = ((k_hi * p_hi - p) + k_hi * p_lo + k_lo * p_hi) + k_lo * p_lo
        return (k >= 1.0) & ((steps - p) - e < 0.0)


def quantization_gap(s: Schedule, t: RealArrayLike) -> float | FloatArray:
    """ln η_step(t) − ln η_exp(t) of a step schedule against the exponential with the
    same lr and rate = −ln γ / period (so gamma_step = e^(−rate·period)):
    rate · (t mod period), always in [0, rate·period) for a decaying schedule
    (γ < 1; a growing one, γ > 1, gives (rate·period, 0]); 0 where the schedule has just
    dropped by its own count, floor(t / period) of the rounded quotient (t = 11 with a
    period of 1.1, whose float is a hair above 1.1).

    >>> [round(quantization_gap(step(0.1, 0.5, 10), t), 4) for t in (0, 5, 10)]
    [0.0, 0.3466, 0.0]
    """
    V.schedule("s", s)
    if s.kind != "step":
        raise ValueError(f"s must be a step schedule, got {s!r}")
    _, gamma, period = _exponential_form(s)
    steps = V.steps_array("t", t)
    shape = s.call_shape(steps.shape)  # names t where it does not broadcast with the batch
    rate = -np.log(gamma) / period
    # the closed form, not a difference of logs: exactly 0 on the plateaus' first steps;
    # fmod is exact (t - period * floor(t / period) is not, at large t: it went negative).
    # The schedule counts its drops as floor(t / period) of the rounded quotient, which can
    # reach the next integer a hair before t does (t = 11, period 1.1: 10 drops, where the
    # exact remainder is almost a period): there it is on a plateau's first step, gap 0
    gap = np.where(_counted_ahead(steps, period), 0.0, rate * np.fmod(steps, period)) + 0.0  # (+ 0.0: not -0)
    gap = np.broadcast_to(gap, shape)
    return _scalar_or_array(gap) if backend_of(t) == NUMPY else in_type_of((t,), np.array(gap))  # (float64, as s(t))


# ----------------------------------------------------------------------------- the registry of kinds

# The factories that take numbers (and lists of numbers) only, by kind: what the command
# line (``fastdecay schedule KIND``) and sweep configs offer. Factories of schedules
# (warmup, join, stack, product) and of functions (from_function) are not listed.
SCHEDULE_KINDS: dict[str, Callable[..., Schedule]] = {
    "constant": constant,
    "step": step,
    "multistep": multistep,
    "exponential": exponential,
    "inverse_time": inverse_time,
    "polynomial": polynomial,
    "cosine": cosine,
    "cosine_restarts": cosine_restarts,
    "linear": linear,
    "piecewise": piecewise,
    "one_cycle": one_cycle,
    "cyclic": cyclic,
    "inverse_sqrt": inverse_sqrt,
    "wsd": wsd,
    "tabulated": tabulated,
}

# Arguments of those factories that take one of a few strings: (kind, argument) -> choices.
SCHEDULE_CHOICES = {
    ("piecewise", "closed"): ("left", "right"),
    ("one_cycle", "anneal_strategy"): _ANNEAL_STRATEGIES,
    ("cyclic", "mode"): CYCLIC_MODES,
    ("wsd", "decay"): WSD_DECAYS,
    ("wsd", "warmup_shape"): _WARMUP_SHAPES,
}
