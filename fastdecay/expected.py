"""Exact expected dynamics of noisy SGD, momentum and Nesterov on quadratics.

On f(w) = ½ Σ_k λ_k w_k² with the noisy gradient λ_k w_k + (σ_k/√B) ξ (ξ
standard normal, fresh every step: the noisy quadratic model of Zhang et al.,
"Which Algorithmic Choices Matter at Which Batch Sizes?", NeurIPS 2019), one
step of any SGD-family rule is linear in the weight, the momentum buffer and
the noise. So the first moments (E w, E b) and the second moments (E w², E wb,
E b²) of every coordinate follow a small linear recurrence driven by the
schedule, and the expected loss E[½ Σ λ_k w_k²] is exact — no sampling error,
for a few times the cost of one noiseless trajectory.

>>> import numpy as np, fastdecay as fd
>>> lam = 1.0 / np.arange(1, 101)                 # the NQM: λ_k = 1/k, σ_k² = λ_k
>>> res = fd.expected_loss(lam, fd.constant(0.5), steps=1000, noise=np.sqrt(lam), batch_size=[1, 64])
>>> res.final_loss.round(4).tolist()
[0.7117, 0.0111]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import numpy as np
from numpy.typing import NDArray

from . import _dispatch as D
from . import _layout as L
from . import _rules as R
from . import _validate as V
from ._arrays import in_type_of
from ._dispatch import NUMPY, TORCH_CPU, TORCH_CUDA, backend_of
from .diagnostics import adam_effective_step
from ._typing import DeviceArray, FloatArray, RealArrayLike
from .schedules import Schedule, as_schedule, constant

if TYPE_CHECKING:
    import torch

_ArrayT = TypeVar("_ArrayT")

__all__ = [
    "expected_loss",
    "ExpectedLoss",
    "steps_to_target",
    "batch_size_scaling",
    "BatchScaling",
    "adam_compensating_decay",
    "AdamCompensatingDecay",
]

OPTIMIZERS = R.LINEAR  # the rules linear in (w, buffer, gradient): exact moments
ON_DROP = R.ON_DROP

# coefficients of one chunk: rate rows x steps x 6 float64 stay below this many numbers
_COEF_NUMBERS = 1 << 22
# recorded loss sums of one chunk of steps_to_target: trajectories x blocks x steps
_RECORD_NUMBERS = 1 << 22
# tiles per thread wanted before a trajectory's coordinates are split across tiles
_TILES_PER_THREAD = 4
_NO_MASK = np.empty(0, np.uint8)
_NO_MASK.flags.writeable = False
# batch-size grids as two propagations (noiseless + unit noise) where that is less work
_SPLIT_BY_BATCH = True

_NO_MOMENTUM = constant(0.0)


@dataclass(frozen=True)
class ExpectedLoss(Generic[_ArrayT]):
    """What ``fd.expected_loss`` returns.

    ``final_loss``: E[½ Σ λ_k w_k²] after the last step, shape ``batch``.
    ``mean`` and ``second_moment``: E w_k and E w_k² after the last step, shape
    ``(*batch, d)``. With ``every=k``: ``steps`` the recorded steps 0, k, 2k, … ≤
    steps and ``loss`` the expected loss there, shape ``(*batch, n_recorded)``;
    both ``None`` without ``every``. The arrays are of the curvature's array type
    (``ExpectedLoss[np.ndarray]`` for NumPy input, ``ExpectedLoss[torch.Tensor]`` for
    torch input).

    >>> import fastdecay as fd
    >>> res = fd.expected_loss([1.0, 4.0], fd.constant(0.1), steps=20, noise=0.5, every=10)
    >>> round(res.final_loss, 4), res.mean.round(4).tolist(), res.second_moment.round(4).tolist()
    (0.0217, [0.1216, 0.0], [0.0277, 0.0039])
    >>> res.steps.tolist(), res.loss.round(4).tolist()
    ([0, 10, 20], [2.5, 0.0745, 0.0217])
    """

    final_loss: _ArrayT
    mean: _ArrayT
    second_moment: _ArrayT
    steps: _ArrayT | None = None
    loss: _ArrayT | None = None


@dataclass(frozen=True)
class _Problem:
    """A validated call: flat tables the kernels read, and what to give back."""

    backend: str
    batch: tuple
    d: int
    opt: int
    on_drop: int
    lr: Schedule
    lam: np.ndarray          # (rows, d) curvature table, lam_rows (n,) its row per trajectory
    lam_rows: np.ndarray
    var: np.ndarray          # (rows, d) sigma^2 table, var_rows (n,)
    var_rows: np.ndarray
    inv_batch: np.ndarray    # (n,) 1 / batch size
    lr_rows: np.ndarray      # (R,) learning-rate row of each rate row
    wd_rows: np.ndarray      # (R,) weight-decay row of each rate row
    wd_table: np.ndarray
    mom_rows: np.ndarray     # (R,) momentum row of each rate row
    mom_table: np.ndarray
    coef_rows: np.ndarray    # (n,) rate row of each trajectory
    w0: np.ndarray           # broadcastable to (*batch, d)
    w0_var: np.ndarray
    base: tuple              # the batch of curvature, schedule and weight decay
    sizes: np.ndarray        # the batch sizes, broadcastable to batch
    noise: np.ndarray        # sigma, broadcastable to (*batch, d)

    @property
    def n(self) -> int:
        return self.inv_batch.shape[0]


def _readonly(a: Any) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a = a.view()
    a.flags.writeable = False
    return a


def _rows(shape: tuple[int, ...], batch: tuple[int, ...]) -> np.ndarray:
    """Row (into a table of ``shape``'s elements, C order) of every element of ``batch``."""
    rows = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)
    return _readonly(np.broadcast_to(rows, batch).reshape(-1))


def _row_table(x: np.ndarray, batch: tuple[int, ...], d: int) -> tuple[np.ndarray, np.ndarray]:
    """``x`` (broadcastable to ``batch + (d,)``) as a (rows, d) float64 table and its rows."""
    lead = x.shape[:-1] if x.ndim else ()
    table = np.broadcast_to(x, lead + (d,)).reshape(-1, d)
    return _readonly(table.reshape(-1)), _rows(lead, batch)


def _schedule_arg(name: str, value: Schedule | RealArrayLike) -> Schedule:
    if isinstance(value, Schedule):
        return value
    return as_schedule(value, name)


def _prepare(curvature: Any, schedule: Schedule | RealArrayLike, *, steps: int, optimizer: str,
             momentum: Schedule | RealArrayLike, noise: Any, batch_size: Any, w0: Any, w0_var: Any,
             weight_decay: Schedule | RealArrayLike, on_drop: str, extra: tuple[int, ...] = ()
             ) -> tuple[_Problem, int]:
    """Validate a call; ``extra`` is a batch shape the batch must include (a split part's)."""
    backend = backend_of(curvature)
    if optimizer in ("adam", "adamw"):
        raise ValueError(
            f"optimizer={optimizer!r} has no exact expected dynamics: Adam's update divides by the root of its "
            f"second-moment estimate, which is not linear in the noise. Where the noise is one sigma for every "
            f"coordinate, estimate its expected loss by Monte Carlo with fd.simulate(curvature, schedule, "
            f"optimizer={optimizer!r}, noise=sigma / batch_size ** 0.5, every=k) over many trajectories (a batch of "
            f"copies of the curvature) and average res.loss"
        )
    V.choice("optimizer", optimizer, OPTIMIZERS)
    V.choice("on_drop", on_drop, ON_DROP)
    steps = V.integer("steps", steps, high=2**53)
    lr_s = _schedule_arg("schedule", schedule)
    wd_s = _schedule_arg("weight_decay", weight_decay)
    # a momentum of 0 throughout (or plain GD) runs as GD, bit for bit
    mom_s = _schedule_arg("momentum", momentum)
    # (a batch of momenta that are all 0 still makes its batch axes, as any other batch does)
    mom_batch = mom_s.batch_shape if optimizer != "gd" else ()
    if optimizer == "gd" or L.is_constant_zero(mom_s.rows()):
        optimizer, mom_s = "gd", _NO_MOMENTUM
    lam = V.real_array("curvature", curvature)
    if lam.ndim < 1 or lam.shape[-1] < 1:
        raise ValueError(f"curvature must have shape (*batch, d) with d >= 1, got shape {lam.shape}")
    if not np.all(np.isfinite(lam)):
        raise ValueError(f"curvature must be finite (negative values are allowed), got {curvature!r}")
    sizes = V.real_array("batch_size", batch_size, low=0.0, low_open=True)
    try:
        base = np.broadcast_shapes(lam.shape[:-1], lr_s.batch_shape, wd_s.batch_shape, mom_batch)
        batch = np.broadcast_shapes(base, sizes.shape, extra)
    except ValueError:
        raise ValueError(
            f"the curvature batch {lam.shape[:-1]} (curvature shape {lam.shape}), the schedule batch_shape "
            f"{lr_s.batch_shape}, the weight_decay batch_shape {wd_s.batch_shape}, the momentum batch_shape "
            f"{mom_batch} and the batch_size shape {sizes.shape} must broadcast together"
        ) from None
    d = lam.shape[-1]
    full = batch + (d,)
    # the moments E[w], E[w^2] (and the buffer's three with momentum), the curvatures laid out as them
    V.fits(full, 8 * 6, asks=lambda: (
        f"curvature of shape {lam.shape} with the schedule's batch_shape {lr_s.batch_shape} (weight_decay "
        f"{wd_s.batch_shape}, momentum {mom_batch}, batch_size {sizes.shape}) asks"))
    arrays = {}
    for name, value, low in (("noise", noise, 0.0), ("w0", w0, None), ("w0_var", w0_var, 0.0)):
        arr = V.real_array(name, value, low=low)
        try:
            np.broadcast_to(arr, full)
        except ValueError:
            raise ValueError(f"{name} of shape {arr.shape} must broadcast to the trajectories' shape {full} "
                             f"(batch {batch}, {d} coordinates)") from None
        arrays[name] = arr

    rate_shape = np.broadcast_shapes(lr_s.batch_shape, wd_s.batch_shape, mom_s.batch_shape)
    lam_table, lam_rows = _row_table(lam, batch, d)
    var_table, var_rows = _row_table(arrays["noise"] ** 2, batch, d)
    lr_rows, wd_rows, mom_rows, coef_rows = _distinct_rate_rows(
        (lr_s, wd_s, mom_s), (_rows(lr_s.batch_shape, rate_shape), _rows(wd_s.batch_shape, rate_shape),
                              _rows(mom_s.batch_shape, rate_shape)), _rows(rate_shape, batch))
    return _Problem(
        backend=backend, batch=batch, d=d, opt=R.CODES[optimizer],
        on_drop=R.ON_DROP_CODES[on_drop], lr=lr_s, lam=lam_table, lam_rows=lam_rows, var=var_table,
        var_rows=var_rows, inv_batch=_readonly(1.0 / np.broadcast_to(sizes, batch).reshape(-1)),
        lr_rows=lr_rows, wd_rows=wd_rows, wd_table=wd_s.rows(), mom_rows=mom_rows, mom_table=mom_s.rows(),
        coef_rows=coef_rows, w0=arrays["w0"], w0_var=arrays["w0_var"],
        base=base, sizes=sizes, noise=arrays["noise"],
    ), steps


def _distinct_rate_rows(schedules: tuple[Schedule, Schedule, Schedule],
                        rows: tuple[np.ndarray, np.ndarray, np.ndarray],
                        coef_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(the learning-rate, weight-decay and momentum rows of each distinct rate row, each
    trajectory's rate row among them): rate rows whose three rows are the same bits have the same
    coefficients, computed once (a grid of a few momenta or weight decays over many curvatures
    makes a rate row a trajectory: 200,000 of them took 1.9 s of coefficients for 100 steps)."""
    count = rows[0].shape[0]
    lr_rows, wd_rows, mom_rows = rows
    if count <= 1:  # (one rate row, or none: an empty batch of rates)
        return lr_rows, wd_rows, mom_rows, coef_rows
    key, width = np.zeros(count, np.int64), 1
    for s, r in zip(schedules, rows):
        if s.size == 1:
            continue  # (one row, every rate row's)
        class_of_row, k = _classes_of_rows(s.rows())
        if width * k >= 2**62:  # (the keys so far numbered densely first: no overflow)
            _, key = np.unique(key, return_inverse=True)
            width = int(key.max()) + 1
        key, width = key * k + class_of_row[r], width * k
    distinct, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    if distinct.shape[0] == count:
        return lr_rows, wd_rows, mom_rows, coef_rows
    return (_readonly(lr_rows[first]), _readonly(wd_rows[first]), _readonly(mom_rows[first]),
            _readonly(inverse.reshape(-1)[coef_rows]))


_ROW_HASH = np.uint64(0x9E3779B97F4A7C15)  # (2**64 / the golden ratio: an odd multiplier that mixes)


def _classes_of_rows(table: np.ndarray) -> tuple[np.ndarray, int]:
    """(the class of each row of a schedule table, how many classes): rows of the same bits share
    one. By a hash of each row's words (odd multiples of 2**64 / the golden ratio, as the simulation
    kernels' ``rate_classes`` mixes them) sorted once, the rows compared whole where two hashes
    meet; in NumPy (the simulation's kernels are not loaded for this)."""
    words = np.ascontiguousarray(table).reshape(table.shape[0], -1).view(np.uint64)
    mix = np.arange(1, 2 * words.shape[1], 2, dtype=np.uint64) * _ROW_HASH
    hashes = (words * mix).sum(axis=1, dtype=np.uint64)  # (modulo 2**64)
    _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    if not (words == words[first[inverse]]).all():  # two distinct rows of one hash: compare the rows
        _, inverse = np.unique(words, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
    return inverse, int(inverse.max()) + 1


class _CpuBackend:
    """Where the moments live and which kernels advance them: NumPy and the Numba kernels."""

    xp = np
    device = None

    def __init__(self) -> None:
        self.kernels = D.kernels("expected", NUMPY)

    def zeros(self, shape: int | tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape)

    def to_device(self, array: np.ndarray) -> np.ndarray:
        return np.require(array, requirements="C")  # (0-d stays 0-d)

    def launch(self, kernel: Any, work: int, *args: Any) -> None:
        """``kernel(*args)``, on the calling thread alone for little ``work`` (element-steps)."""
        self.kernels.run_small(kernel, work, *args)

    def tiles_per_trajectory(self, n: int, d: int) -> int:
        """Coordinate spans a trajectory is split into: one, unless there are too few
        trajectories to keep every thread busy."""
        wanted = _TILES_PER_THREAD * self.kernels.parallel.thread_count()
        max_blocks = -(-d // self.kernels.BLOCK)
        return 1 if n >= wanted else max(1, min(max_blocks, -(-wanted // max(n, 1))))


class _GpuBackend:
    """CuPy arrays on the curvature's GPU and the kernels of ``kernels/expected.cu``."""

    def __init__(self, curvature: Any, backend: str) -> None:
        kernels = D.kernels("expected", backend)
        self.kernels = kernels
        self.xp = kernels.xp
        self.device = kernels.device_of(curvature)

    def zeros(self, shape: int | tuple[int, ...]) -> Any:
        return self.kernels.zeros(shape, self.device)

    def to_device(self, array: np.ndarray) -> Any:
        return self.kernels.to_device(np.require(array, requirements="C"), self.device)

    def launch(self, kernel: Any, work: int, *args: Any) -> None:
        kernel(*args)

    def tiles_per_trajectory(self, n: int, d: int) -> int:
        return 1  # a block of threads covers part of one trajectory and adds its sums atomically


def _backend(problem: _Problem, curvature: Any) -> _CpuBackend | _GpuBackend:
    return _GpuBackend(curvature, problem.backend) if D.on_device(problem.backend) else _CpuBackend()


class _Moments:
    """The moments of every (trajectory, coordinate) element and the loop that advances them."""

    def __init__(self, problem: _Problem, backend: _CpuBackend | _GpuBackend) -> None:
        cpu = D.kernels("expected", NUMPY)  # the step coefficients are computed on the host, from the rules
        self.p, self.backend, self.cpu = problem, backend, cpu
        n, d = problem.n, problem.d
        full = problem.batch + (d,)
        mw, sww = np.empty(full), np.empty(full)
        mw[...] = problem.w0
        sww[...] = problem.w0 ** 2 + problem.w0_var
        self.mw, self.sww = backend.to_device(mw.reshape(-1)), backend.to_device(sww.reshape(-1))
        buffered = problem.opt != cpu.GD
        # the buffer starts at zero (its first value is the rule's, whatever it held)
        self.mb, self.swb, self.sbb = (backend.zeros(n * d if buffered else 0) for _ in range(3))
        self.n_blocks = backend.tiles_per_trajectory(n, d)
        self.rate_rows = problem.lr_rows.shape[0]

    def chunk_steps(self, steps: int, record_every: int) -> int:
        per_step = max(1, self.rate_rows) * self.cpu.N_COEF  # (an empty batch of rates: no rows)
        chunk = _COEF_NUMBERS // per_step
        if record_every == 1:  # steps_to_target records every step of the chunk
            chunk = min(chunk, _RECORD_NUMBERS // max(1, self.p.n * self.n_blocks))  # (an empty batch: n = 0)
        return max(1, min(steps, chunk))

    def advance(self, first: int, count: int, every: int, partial: Any, first_record: int, active: Any = _NO_MASK
                ) -> None:
        """Steps first .. first + count - 1 of the ``active`` trajectories (all when empty);
        recorded sums into partial (see ``fastdecay._cpu.expected.propagate``)."""
        p = self.p
        coef = np.empty((self.rate_rows, count, self.cpu.N_COEF))
        self.cpu.run_small(self.cpu.step_coefficients, self.rate_rows * count, p.lr.rows(), p.lr_rows, p.wd_table,
                           p.wd_rows, p.mom_table, p.mom_rows, p.opt, p.on_drop, first, count, coef)
        self.backend.launch(self.backend.kernels.propagate, p.n * p.d * count, self.mw, self.mb, self.sww, self.swb,
                            self.sbb, p.lam, p.lam_rows, p.var, p.var_rows, p.inv_batch, _readonly(coef),
                            p.coef_rows, active, p.d, self.n_blocks, first, count, every, first_record, partial)

    def twice_loss(self) -> Any:
        out = self.backend.zeros(self.p.n)
        self.backend.launch(self.backend.kernels.weighted_sums, self.p.n * self.p.d, self.sww, self.p.lam,
                            self.p.lam_rows, self.p.d, out)
        return out


def _lead(a: Any) -> tuple[int, ...]:
    """The batch dimensions of an array broadcast against (*batch, d)."""
    return a.shape[:-1] if a.ndim else ()


def _parts(problem: _Problem, curvature: Any, schedule: Schedule | RealArrayLike, arguments: dict[str, Any]
           ) -> list[tuple[_Problem, bool]]:
    """The propagations whose sum is the answer: ``[(problem, per_batch)]``.

    The second moments are linear in the noise variance σ²/B: with S_rest the
    moments of the noiseless run from (w0, w0_var) and S_noise those of the run from
    w0 = 0 with σ² (B = 1), S = S_rest + S_noise / B exactly, and the mean is the
    noiseless run's. So a grid over batch sizes costs two propagations over the
    other axes instead of one per batch size; ``per_batch`` marks the part that
    scales with 1/B. Used where that is less work (and ``_SPLIT_BY_BATCH``).
    """
    base, full = problem.base, problem.batch
    rest_batch = np.broadcast_shapes(base, _lead(problem.w0), _lead(problem.w0_var))
    noise_batch = np.broadcast_shapes(base, _lead(problem.noise))
    noisy = bool(np.any(problem.noise != 0.0))
    cost = math.prod(rest_batch) + (math.prod(noise_batch) if noisy else 0)
    if not _SPLIT_BY_BATCH or cost >= math.prod(full):
        return [(problem, False)]
    rest, _ = _prepare(curvature, schedule, **(arguments | dict(noise=0.0, batch_size=1.0)), extra=rest_batch)
    parts = [(rest, False)]
    if noisy:
        noise, _ = _prepare(curvature, schedule, **(arguments | dict(batch_size=1.0, w0=0.0, w0_var=0.0)),
                            extra=noise_batch)
        parts.append((noise, True))
    return parts


def _combine(backend: _CpuBackend | _GpuBackend, batch: tuple[int, ...], inverse: Any,
             values: list[tuple[_Problem, bool, Any]], trailing: tuple[int, ...]) -> Any:
    """Σ over parts of value (reshaped to its part's batch + trailing) x (1/B where it
    scales with it), broadcast to ``batch + trailing``. ``values``: [(part, per_batch, value)]."""
    total: Any = None
    for part, per_batch, value in values:
        term = value.reshape(part.batch + trailing)
        if per_batch:
            term = term * inverse.reshape(inverse.shape + (1,) * len(trailing))
        total = term if total is None else total + term
    if total.shape != batch + trailing:
        total = backend.xp.array(backend.xp.broadcast_to(total, batch + trailing))  # a copy: writeable, contiguous
    return total


def _any_over(mask: Any, full: tuple[int, ...], part: tuple[int, ...]) -> Any:
    """mask (over ``full``, flat) reduced by "any" to the elements of ``part``'s batch (flat)."""
    m = mask.reshape(full)
    lead = len(full) - len(part)
    if lead:
        m = m.any(axis=tuple(range(lead)))
    axes = tuple(i for i, size in enumerate(part) if size == 1 and full[lead + i] != 1)
    if axes:
        m = m.any(axis=axes, keepdims=True)
    return m.reshape(-1)


def _output(backend: str, values: dict[str, Any], curvature: Any) -> dict[str, Any]:
    """Arrays in the caller's array type: torch tensors for torch input (on its device)."""
    if backend == TORCH_CPU:
        import torch

        return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in values.items()}
    if backend == TORCH_CUDA:
        import torch

        return {k: torch.as_tensor(v, device=curvature.device) if hasattr(v, "__cuda_array_interface__") else v
                for k, v in values.items()}
    return values


@overload
def expected_loss(  # type: ignore[overload-overlap]
    curvature: torch.Tensor, schedule: Schedule | RealArrayLike, *, steps: int, optimizer: str = ...,
    momentum: Schedule | RealArrayLike = ..., noise: RealArrayLike | DeviceArray = ...,
    batch_size: RealArrayLike = ..., w0: RealArrayLike | DeviceArray = ..., w0_var: RealArrayLike | DeviceArray = ...,
    weight_decay: Schedule | RealArrayLike = ..., on_drop: str = ..., every: int | None = ...,
) -> ExpectedLoss[torch.Tensor]: ...


@overload
def expected_loss(
    curvature: RealArrayLike, schedule: Schedule | RealArrayLike, *, steps: int, optimizer: str = ...,
    momentum: Schedule | RealArrayLike = ..., noise: RealArrayLike | DeviceArray = ...,
    batch_size: RealArrayLike = ..., w0: RealArrayLike | DeviceArray = ..., w0_var: RealArrayLike | DeviceArray = ...,
    weight_decay: Schedule | RealArrayLike = ..., on_drop: str = ..., every: int | None = ...,
) -> ExpectedLoss[np.ndarray]: ...


def expected_loss(curvature: Any, schedule: Schedule | RealArrayLike, *, steps: int, optimizer: str = "gd",
                  momentum: Schedule | RealArrayLike = 0.9, noise: RealArrayLike | DeviceArray = 0.0,
                  batch_size: RealArrayLike = 1,
                  w0: RealArrayLike | DeviceArray = 1.0, w0_var: RealArrayLike | DeviceArray = 0.0,
                  weight_decay: Schedule | RealArrayLike = 0.0, on_drop: str = "keep", every: int | None = None
                  ) -> ExpectedLoss[Any]:
    """The exact expected loss of noisy SGD / momentum / Nesterov on f(w) = ½ Σ_k λ_k w_k².

    Each step sees the gradient λ_k w_k + (σ_k/√B) ξ_k,t with ξ independent
    standard normals (``noise`` = σ, ``batch_size`` = B): the model of minibatch
    noise on a quadratic (the NQM of Zhang et al. 2019, where σ_k² = λ_k, i.e.
    ``noise=np.sqrt(curvature)``). The update rules, ``weight_decay`` (coupled:
    added to the gradient) and ``on_drop`` (what the momentum buffer does where
    the rate drops) are those of ``fd.simulate`` / ``fd.sgd_step``. Every rule is
    linear: with x = (w, b) the weight and momentum buffer of one coordinate,

        x_{t+1} = A_t x_t + c_t (σ/√B) ξ_t,    A_t = P_t + λ c_t e₁ᵀ,

    where P_t and c_t hold the rule's response to a unit weight, buffer and
    gradient at step t (rate η_t, weight decay, buffer factor). So the means
    m = E x and second moments S = E x xᵀ follow

        m_{t+1} = A_t m_t,    S_{t+1} = A_t S_t A_tᵀ + (σ²/B) c_t c_tᵀ,

    from m_0 = (w0, 0) and S_0 = diag(w0² + w0_var, 0): ``w0`` is the mean start
    and ``w0_var`` its variance (a random start). The expected loss is
    ½ Σ_k λ_k (S_t)_ww — exact, with no sampling error, for a few times the cost
    of one noiseless ``fd.simulate`` trajectory per batch element (a 2x2 matrix
    product per coordinate and step; one multiplication for plain SGD).

    ``momentum`` is a number, an array (a batch of constants) or a schedule read at
    every step like the rate (``fd.one_cycle(...).momentum`` is torch's cycled
    momentum): A_t and c_t then take the step's momentum.

    Shapes: ``curvature`` is ``(*batch, d)`` (1-D: one problem); the batch shapes
    of ``schedule``, ``weight_decay``, ``momentum`` and the shape of ``batch_size`` broadcast
    with the curvature's batch (so ``fd.constant(lrs[:, None])`` with
    ``batch_size=sizes`` is every rate at every batch size in one call);
    ``noise``, ``w0`` and ``w0_var`` broadcast to ``(*batch, d)``. The second
    moments are linear in σ²/B, so where the batch sizes add an axis that
    ``noise``, ``w0`` and ``w0_var`` do not vary along, the grid is computed from
    two propagations (noiseless from the start, and σ² from zero) whatever the
    number of batch sizes: S = S_noiseless + S_noise / B.

    ``optimizer``: ``"gd"``, ``"momentum"`` (torch heavy ball), ``"momentum_lr_in_buffer"``
    or ``"nesterov"``. Adam and AdamW are refused (their update is not linear in
    the noise): estimate them with ``fd.simulate`` over many noisy trajectories.

    Returns an ``ExpectedLoss``: ``final_loss`` (shape ``batch``), ``mean`` and
    ``second_moment`` (E w, E w² per coordinate after the last step) and, with
    ``every=k``, ``steps`` = 0, k, 2k, … ≤ steps and ``loss`` at those steps
    (``(*batch, n_recorded)``). Moments are float64; a divergent run gives an inf loss and
    second moment (its mean may be ±inf or nan).

    Nothing in torch, Keras or optax computes this. The Monte Carlo equivalent, for
    one σ shared by every coordinate, is the mean of ``fd.simulate(..., noise=σ/√B,
    every=k).loss`` over many trajectories (``fd.simulate`` takes one σ). With a σ_k
    per coordinate (the NQM's σ_k = √λ_k) the rules' linearity gives it too: each
    coordinate's u_k = w_k/σ_k is a run from w0_k/σ_k with noise 1/√B, so the loss is
    Σ_k σ_k² times the loss of the one-coordinate trajectory k of ``fd.simulate(
    curvature.reshape(-1, 1), ..., w0=(w0 / σ).reshape(-1, 1), noise=1/√B, every=k)``.

    >>> import numpy as np, fastdecay as fd
    >>> res = fd.expected_loss([1.0], fd.constant(0.5), steps=1, noise=1.0, w0=2.0)
    >>> res.final_loss            # ½ ((1 - 0.5)² · 2² + 0.5² · 1)
    0.625
    >>> res = fd.expected_loss([2.0, 0.5], fd.step(0.3, 0.5, 20), steps=60, optimizer="momentum",
    ...                        momentum=0.9, noise=0.1, batch_size=[1, 8], every=20)
    >>> res.loss.shape, res.mean.shape
    ((2, 4), (2, 2))
    """
    arguments: dict[str, Any] = dict(steps=steps, optimizer=optimizer, momentum=momentum, noise=noise,
                                     batch_size=batch_size, w0=w0, w0_var=w0_var, weight_decay=weight_decay,
                                     on_drop=on_drop)
    problem, steps = _prepare(curvature, schedule, **arguments)
    if every is not None:
        # beyond the run, step 0 is the only one recorded: as every = steps + 1 (which the kernels' int64 holds)
        every = min(V.integer("every", every, low=1), steps + 1)
    backend = _backend(problem, curvature)
    batch, d = problem.batch, problem.d
    n_rec = steps // every + 1 if every else 0
    if every and isinstance(backend, _CpuBackend):  # the recorded sums and the loss, before any of it is made
        V.fits_in_memory("every", every, (2, int(np.prod(batch, dtype=np.int64)), n_rec), 8)
    runs = []
    for part, per_batch in _parts(problem, curvature, schedule, arguments):
        moments = _Moments(part, backend)
        partial = backend.zeros((part.n, moments.n_blocks, n_rec))
        first_loss: Any = moments.twice_loss() if every else None
        if part.n * d:
            first = 0
            chunk = moments.chunk_steps(steps, every or 0)
            while first < steps:
                count = min(chunk, steps - first)
                moments.advance(first, count, every or 0, partial, 0)
                first += count
        loss: Any = None
        if every:
            loss = 0.5 * partial.sum(axis=1)
            loss[:, 0] = 0.5 * first_loss
        runs.append((part, per_batch, moments, loss))
    inverse = backend.to_device(1.0 / problem.sizes)
    values = dict(
        final_loss=_combine(backend, batch, inverse, [(p, b, 0.5 * m.twice_loss()) for p, b, m, _ in runs], ()),
        mean=_combine(backend, batch, inverse, [(p, b, m.mw) for p, b, m, _ in runs if not b], (d,)),
        second_moment=_combine(backend, batch, inverse, [(p, b, m.sww) for p, b, m, _ in runs], (d,)),
    )
    if every:
        values.update(steps=backend.to_device(np.arange(0, steps + 1, every, dtype=np.int64)),
                      loss=_combine(backend, batch, inverse, [(p, b, loss) for p, b, _, loss in runs], (n_rec,)))
    if not batch:
        values["final_loss"] = float(values["final_loss"])
    return ExpectedLoss(**_output(problem.backend, values, curvature))


def _on_host(x: Any) -> np.ndarray:
    return x if isinstance(x, np.ndarray) else x.get()


@overload
def steps_to_target(  # type: ignore[overload-overlap]
    curvature: torch.Tensor, schedule: Schedule | RealArrayLike, target: RealArrayLike, *, steps: int,
    optimizer: str = ..., momentum: Schedule | RealArrayLike = ..., noise: RealArrayLike | DeviceArray = ...,
    batch_size: RealArrayLike = ..., w0: RealArrayLike | DeviceArray = ..., w0_var: RealArrayLike | DeviceArray = ...,
    weight_decay: Schedule | RealArrayLike = ..., on_drop: str = ...,
) -> int | torch.Tensor: ...


@overload
def steps_to_target(
    curvature: RealArrayLike, schedule: Schedule | RealArrayLike, target: RealArrayLike, *, steps: int,
    optimizer: str = ..., momentum: Schedule | RealArrayLike = ..., noise: RealArrayLike | DeviceArray = ...,
    batch_size: RealArrayLike = ..., w0: RealArrayLike | DeviceArray = ..., w0_var: RealArrayLike | DeviceArray = ...,
    weight_decay: Schedule | RealArrayLike = ..., on_drop: str = ...,
) -> int | NDArray[np.int64]: ...


def steps_to_target(curvature: Any, schedule: Schedule | RealArrayLike, target: RealArrayLike, *, steps: int,
                    optimizer: str = "gd", momentum: Schedule | RealArrayLike = 0.9,
                    noise: RealArrayLike | DeviceArray = 0.0,
                    batch_size: RealArrayLike = 1, w0: RealArrayLike | DeviceArray = 1.0,
                    w0_var: RealArrayLike | DeviceArray = 0.0, weight_decay: Schedule | RealArrayLike = 0.0,
                    on_drop: str = "keep") -> Any:
    """The first step t ≤ ``steps`` at which the expected loss E[½ Σ λ_k w_k²] is ≤ ``target``.

    The arguments are those of ``fd.expected_loss`` (same model, same broadcasting),
    plus ``target`` (a number, or an array that broadcasts to the batch shape). Returns an
    int64 array of the batch shape (an int for a single problem): the step count,
    0 if the start already meets the target, and **-1 where the target is not
    reached within** ``steps``. The run stops as soon as every element has reached
    its target, and what only serves elements that have reached it stops advancing,
    so a grid whose points need very different step counts costs about the sum of
    their counts (a batch-size axis costs two propagations, as in ``expected_loss``).

    For the batch-size scaling study of Zhang et al. 2019 (steps to a target loss
    against batch size, each point at its best learning rate) put the rates on one
    axis and the batch sizes on the last one, then summarise with
    ``fd.batch_size_scaling``:

    >>> import numpy as np, fastdecay as fd
    >>> lam = 1.0 / np.arange(1, 51)
    >>> sizes = 2.0 ** np.arange(0, 9)
    >>> lrs = np.geomspace(0.01, 1.9, 12)
    >>> n = fd.steps_to_target(lam, fd.constant(lrs[:, None]), 0.1, steps=20_000, noise=np.sqrt(lam),
    ...                        batch_size=sizes)
    >>> n.shape
    (12, 9)
    >>> scaling = fd.batch_size_scaling(sizes, n)
    >>> scaling.steps.tolist()                # ~1/B up to B = 8, then diminishing returns
    [753, 389, 203, 102, 57, 35, 27, 25, 20]
    >>> lrs[scaling.best].round(3).tolist()   # the best rate grows with B, up to the stability limit
    [0.067, 0.109, 0.282, 0.454, 0.732, 1.179, 1.179, 1.179, 1.9]
    >>> round(scaling.critical_batch_size, 2)
    37.65

    torch, Keras and optax have no equivalent (one would run many noisy trainings
    per grid point and average).
    """
    arguments: dict[str, Any] = dict(steps=steps, optimizer=optimizer, momentum=momentum, noise=noise,
                                     batch_size=batch_size, w0=w0, w0_var=w0_var, weight_decay=weight_decay,
                                     on_drop=on_drop)
    problem, steps = _prepare(curvature, schedule, **arguments)
    goal = V.real_array("target", target, low=0.0)
    try:
        goal = np.broadcast_to(goal, problem.batch).reshape(-1)
    except ValueError:
        raise ValueError(f"target of shape {goal.shape} must broadcast to the batch shape {problem.batch}") from None
    backend = _backend(problem, curvature)
    batch = problem.batch
    inverse = backend.to_device(1.0 / problem.sizes)
    parts = [(part, per_batch, _Moments(part, backend))
             for part, per_batch in _parts(problem, curvature, schedule, arguments)]
    start = _combine(backend, batch, inverse, [(p, b, 0.5 * m.twice_loss()) for p, b, m in parts], ())
    found = np.where(_on_host(start).reshape(-1) <= goal, 0, -1).astype(np.int64)
    active = found < 0
    goal_column = backend.to_device(goal[:, None])
    first = 0
    chunk = min(m.chunk_steps(steps, 1) for _, _, m in parts)
    while first < steps and active.any() and problem.d:
        count = min(chunk, steps - first)
        sums = []
        for part, per_batch, moments in parts:
            partial = backend.zeros((part.n, moments.n_blocks, count))
            mask = _readonly(_any_over(active, batch, part.batch).astype(np.uint8))
            moments.advance(first, count, 1, partial, first + 1, active=mask)
            sums.append((part, per_batch, 0.5 * partial.sum(axis=1)))
        hit = _combine(backend, batch, inverse, sums, (count,)).reshape(problem.n, count) <= goal_column
        reached = _on_host(hit.any(axis=1))
        at = _on_host(hit.argmax(axis=1))
        newly = active & reached
        found[newly] = first + 1 + at[newly]
        active &= ~newly
        first += count
    found = found.reshape(batch)
    if not batch:
        return int(found)
    if backend.device is not None:
        found = backend.to_device(found)
    return _output(problem.backend, {"steps": found}, curvature)["steps"]


@dataclass(frozen=True)
class BatchScaling:
    """What ``fd.batch_size_scaling`` returns (all per batch size, in the order given).

    ``batch_size``; ``steps``: the fewest steps to the target at that batch size
    (-1 where no setting reached it); ``best``: the flat index, over the leading
    axes of the steps given, of the setting that needed them (-1 likewise);
    ``slope``: the log-log slope d ln steps / d ln B between each batch size and the
    next (length one less; nan next to an unreached point or one reached at step 0;
    -1 is perfect scaling, 0 no gain); ``min_steps`` S_min and ``min_examples`` E_min
    (fewest steps and fewest examples B·steps over the reached batch sizes);
    ``critical_batch_size`` E_min / S_min (nan if nothing was reached, or if S_min is
    0: a start that already meets the target has no critical batch size). The arrays
    come in the array type of the ``steps`` given (a torch tensor for a tensor).

    >>> import fastdecay as fd
    >>> s = fd.batch_size_scaling([1, 2, 4, 8], [400, 200, 100, 100])    # one setting
    >>> s.steps.tolist(), s.slope.round(3).tolist()
    ([400, 200, 100, 100], [-1.0, -1.0, 0.0])
    >>> s.min_steps, s.min_examples, s.critical_batch_size
    (100.0, 400.0, 4.0)
    """

    batch_size: FloatArray
    steps: NDArray[np.int64]
    best: NDArray[np.int64]
    slope: FloatArray
    min_steps: float
    min_examples: float
    critical_batch_size: float


def batch_size_scaling(batch_size: RealArrayLike, steps: RealArrayLike) -> BatchScaling:
    """Steps to a target against batch size, at the best setting for each batch size.

    ``batch_size`` is a 1-D array of the n_B batch sizes; ``steps`` holds steps to
    the target (``fd.steps_to_target``, -1 for not reached) with the batch sizes on
    its last axis, shape ``(..., n_B)``: the leading axes (learning rates, momenta,
    schedules …) are searched for the fewest steps at each batch size.

    Perfect scaling is steps ∝ 1/B (doubling the batch halves the steps: the
    examples B·steps stay constant); past some batch size the steps stop falling.
    With E_min the fewest examples B·S(B) and S_min the fewest steps S(B) over the
    batch sizes where the target was reached, the **critical batch size** is

        B_crit = E_min / S_min,

    the batch size where the perfect-scaling line S = E_min / B meets the floor
    S = S_min. For the law S(B) = S_min (1 + B*/B) (McCandlish et al. 2018, "An
    Empirical Model of Large-Batch Training") measured on batch sizes B_0 … B_max
    it is (B* + B_0)·S_min / S(B_max): B* where B_0 ≪ B* ≪ B_max.

    >>> import numpy as np, fastdecay as fd
    >>> sizes = np.array([1, 2, 4, 8, 16, 32])
    >>> s = fd.batch_size_scaling(sizes, np.array([[1600, 800, 400, 200, 100, 100], [-1, 900, 450, 210, 150, 99]]))
    >>> s.steps.tolist(), s.best.tolist(), s.critical_batch_size
    ([1600, 800, 400, 200, 100, 99], [0, 0, 0, 0, 0, 1], 16.161616161616163)
    >>> s.slope.round(3).tolist()
    [-1.0, -1.0, -1.0, -1.0, -0.014]

    torch, Keras and optax have no equivalent; the definition is McCandlish et al.'s
    B_crit = E_min / S_min.
    """
    sizes = V.real_array("batch_size", batch_size, low=0.0, low_open=True)
    if sizes.ndim != 1 or sizes.shape[0] < 1:
        raise ValueError(f"batch_size must be a 1-D array of batch sizes, got shape {sizes.shape}")
    if np.unique(sizes).shape[0] < sizes.shape[0]:  # (a slope between equal sizes divides by 0)
        repeated = np.unique(sizes, return_counts=True)
        twice = repeated[0][repeated[1] > 1][0].item()
        raise ValueError(f"batch_size must not repeat a batch size, got {V.shown(twice)} more than once in "
                         f"{V.shown(batch_size)}")
    counts = np.asarray(V.host_array("steps", steps))
    if counts.dtype.kind not in "iu" and not (counts.dtype.kind == "f" and np.all(counts == np.round(counts))):
        raise TypeError(f"steps must hold integer step counts (-1: not reached), got dtype {counts.dtype}")
    if counts.ndim < 1 or counts.shape[-1] != sizes.shape[0]:
        raise ValueError(f"steps must have the {sizes.shape[0]} batch sizes on its last axis, got shape "
                         f"{counts.shape}")
    if np.any(counts < -1):
        raise ValueError(f"steps must be >= 0, or -1 for not reached, got {counts.min()!r}")
    flat = counts.reshape(-1, sizes.shape[0]).astype(np.float64)
    flat[flat < 0] = np.inf
    if flat.shape[0] == 0:  # no setting at all: none reached the target
        flat = np.full((1, sizes.shape[0]), np.inf)
    best = np.argmin(flat, axis=0)
    fewest = flat[best, np.arange(sizes.shape[0])]
    reached = np.isfinite(fewest)
    best = np.where(reached, best, -1)
    best_steps = np.where(reached, fewest, -1).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(reached & (fewest > 0), np.log(np.where(reached, fewest, 1.0)), np.nan)
        slope = np.diff(logs) / np.diff(np.log(sizes))
    if reached.any():
        min_steps = float(fewest[reached].min())
        min_examples = float((sizes * fewest)[reached].min())
        critical = min_examples / min_steps if min_steps > 0 else math.nan
    else:
        min_steps = min_examples = critical = math.nan
    return BatchScaling(batch_size=in_type_of((batch_size, steps), np.array(sizes)),
                        steps=in_type_of((steps,), best_steps), best=in_type_of((steps,), best),
                        slope=in_type_of((steps,), slope), min_steps=min_steps, min_examples=min_examples,
                        critical_batch_size=critical)


@dataclass(frozen=True)
class AdamCompensatingDecay:
    """What ``fd.adam_compensating_decay`` returns: ``rate`` λ (per step; negative: a
    growth), ``effective_step`` (the fitted constant S / η0) and ``residual`` (root
    mean square of the log-domain fit, 0 for a perfect fit).

    >>> import fastdecay as fd
    >>> fit = fd.adam_compensating_decay(100, betas=(0.99, 0.999))
    >>> round(fit.rate, 4), round(fit.effective_step, 4), round(fit.residual, 4)
    (0.01, 0.9526, 0.2027)
    >>> s = fd.exponential(1.0, rate=fit.rate)      # rate >= 0 here: a decay
    >>> fd.adam_effective_step(s, 100, betas=(0.99, 0.999))[[10, 50, 99]].round(3).tolist()
    [0.905, 1.092, 0.765]
    """

    rate: float
    effective_step: float
    residual: float


def adam_compensating_decay(steps: int, *, betas: tuple[float, float] = (0.9, 0.999)) -> AdamCompensatingDecay:
    """The exponential rate λ that makes Adam's effective step as constant as possible.

    Without bias correction Adam's step under a steady gradient is η_t·f_t with
    f_t = (1 − β1^(t+1)) / sqrt(1 − β2^(t+1)) (``fd.adam_effective_step``). Over
    t < ``steps``, λ is the least-squares slope in the log domain,

        ln f_t ≈ a + λ t   (closed form: λ = cov(t, ln f) / var(t)),

    so η0 e^(−λt) f_t ≈ η0 e^a is as flat as a single exponential can make it.
    Returns ``AdamCompensatingDecay(rate=λ, effective_step=e^a, residual=rms of
    ln f_t − a − λ t)``; the effective step is per unit η0. λ < 0 where f_t falls
    over the window (the bias factor's early boost where 1 − β1 ≫ √(1 − β2), as with
    the default (0.9, 0.999)), i.e.
    the compensating schedule grows; ``fd.exponential(lr, rate=λ)`` for λ ≥ 0.
    torch, Keras and optax have no equivalent (their Adam corrects the bias
    instead).

    >>> import fastdecay as fd
    >>> fit = fd.adam_compensating_decay(100, betas=(0.0, 0.0))     # no moment averaging: f_t = 1
    >>> fit.rate, fit.effective_step, fit.residual
    (0.0, 1.0, 0.0)
    >>> fit = fd.adam_compensating_decay(1000)
    >>> round(fit.rate, 6), round(fit.effective_step, 4), round(fit.residual, 4)
    (-0.00118, 3.2931, 0.1775)
    """
    steps = V.integer("steps", steps, low=2)
    beta1, beta2 = V.betas(betas)
    log_factor = np.log(adam_effective_step(constant(1.0), steps, betas=(beta1, beta2)))
    t = np.arange(steps, dtype=np.float64)
    tc = t - t.mean()
    slope = float(np.dot(tc, log_factor - log_factor.mean()) / np.dot(tc, tc))
    intercept = float(log_factor.mean() - slope * t.mean())
    residual = float(np.sqrt(np.mean((log_factor - intercept - slope * t) ** 2)))
    return AdamCompensatingDecay(rate=slope, effective_step=math.exp(intercept), residual=residual)
