"""Argument checks shared by every public function of the library.

Each check takes the argument's public name first and either returns the value
in the one form the caller works with (a Python float, int or bool, a read-only
float64 NumPy array, a validated schedule table) or raises before anything is
computed or written:

- ``TypeError`` for a value of the wrong kind (a string, a boolean where a
  number is meant, a complex number, a datetime, an object array, a sparse or
  meta tensor), and
- ``ValueError`` for a value of the right kind out of range (negative, not
  finite, not an integer, too large to represent),

with a message that names the argument, shows what it got and says what would
be valid: ``lr must be a finite number >= 0, got -0.1``.

This module imports NumPy and ``fastdecay._layout`` only (never torch, CuPy or
Numba), so any module of the package may use it without an import circle.
"""

from __future__ import annotations

import math
import numbers
import sys
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, TypeVar, cast

import numpy as np

from . import _layout as L
from ._arrays import CUPY, TORCH_CPU, TORCH_CUDA, backend_of
from ._typing import ArrayLike, FloatArray, Shape

_T = TypeVar("_T")

# The largest step a schedule is evaluated at: the kernels compute with steps in float64,
# where every integer up to 2**53 is exact (beyond it t and t + 1 are one number, and
# floor(t / period) no longer fits the int64 it is converted to near 2**63).
MAX_STEP = 2**53
# The largest number of steps a diagnostic runs over (it evaluates rates only where they
# still change, never at steps beyond MAX_STEP one by one).
MAX_STEP_COUNT = 2**63 - 1


class ScheduleBase:
    """The base class of ``fastdecay.Schedule``, defined here so that checks can
    recognise a schedule without importing the factories."""

    __slots__ = ()

    if TYPE_CHECKING:  # what the checks read of a schedule (fastdecay.Schedule defines them)

        @property
        def batch_shape(self) -> Shape: ...

        def rows(self) -> FloatArray: ...


# ----------------------------------------------------------------------------- messages


def shown(value: object, limit: int = 120) -> str:
    """``repr(value)`` for an error message: huge integers by their size, long reprs cut."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.timedelta64)) \
            and abs(int(value)) >= 10**20:
        return f"an integer of {len(str(abs(int(value))))} digits ({str(int(value))[:6]}...)"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + " ...>"


def _bound_text(low: float | None, low_open: bool, high: float | None, high_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return " and ".join(parts)


# ----------------------------------------------------------------------------- arrays of real numbers


def dense_tensor(name: str, value: Any) -> Any:
    """A torch tensor that holds ordinary dense numbers on the CPU or a CUDA device, as
    a detached tensor (bfloat16 and float8 widened to float32, which NumPy and CuPy
    lack); anything else is returned as it is. TypeError naming ``name`` for sparse,
    nested, meta and complex tensors."""
    if backend_of(value) not in (TORCH_CPU, TORCH_CUDA):
        return value
    torch = sys.modules["torch"]
    if value.layout is not torch.strided:
        raise TypeError(f"{name} must be a dense (strided) array, got a tensor with layout {value.layout}; "
                        "call .to_dense() first")
    if getattr(value, "is_nested", False):
        raise TypeError(f"{name} must be a dense (strided) array, got a nested tensor")
    if value.device.type not in ("cpu", "cuda"):
        raise TypeError(f"{name} must be a tensor on the CPU or a CUDA device, got one on {value.device}")
    value = value.detach()
    if value.is_complex():
        raise TypeError(f"{name} must be a real number (or array of real numbers), got a tensor of dtype "
                        f"{value.dtype}")
    if value.dtype is torch.bfloat16 or str(value.dtype).startswith("torch.float8"):
        value = value.to(torch.float32)  # exactly representable in float32
    return value.resolve_conj().resolve_neg()


def host_array(name: str, value: Any) -> Any:
    """``value`` as a NumPy array where it is an array (a view where it already is one on
    the host; a CuPy array or CUDA tensor is copied to the host), else as it is, with the
    checks of ``dense_tensor``."""
    backend = backend_of(value)
    if backend in (TORCH_CPU, TORCH_CUDA):
        return dense_tensor(name, value).cpu().numpy()
    if backend == CUPY:
        return value.get()
    return value


def real_dtype_array(name: str, value: Any) -> np.ndarray:
    """``value`` as a NumPy array of a real dtype (not yet float64), or TypeError."""
    if isinstance(value, ScheduleBase):
        raise TypeError(f"{name} must be a number or an array of numbers, got a schedule {value!r}")
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a number or an array of numbers, got {shown(value)}")
    if isinstance(value, complex):
        raise TypeError(f"{name} must be a real number, got the complex number {shown(value)}")
    given_array = isinstance(value, np.ndarray) or backend_of(value) != "numpy"
    if isinstance(value, (list, tuple)):
        _refuse_booleans_inside(name, value)
    arr = host_array(name, value)
    try:
        arr = np.asarray(arr)
    except (TypeError, ValueError):  # ragged lists
        raise TypeError(f"{name} must be a number or a (rectangular) array of numbers, got {shown(value)}") from None
    kind = arr.dtype.kind
    if kind in "iuf":
        return arr
    if kind == "b":
        raise TypeError(f"{name} must be a number, got the boolean {shown(value)}")
    if kind == "c":
        raise TypeError(f"{name} must be a real number (or array of real numbers), got complex {shown(value)}; "
                        "pass the real part explicitly (.real) if that is what is meant")
    if kind in "mM":
        raise TypeError(f"{name} must be a number (or array of numbers), got {arr.dtype} {shown(value)}")
    if kind == "V" and "float" in arr.dtype.name:  # ml_dtypes' bfloat16 / float8 types
        return arr.astype(np.float32)
    if kind == "O" and not given_array:  # Python numbers NumPy keeps as objects: integers beyond int64
        try:
            return np.array(arr, dtype=np.float64)
        except OverflowError:
            raise ValueError(f"{name} must be a finite number, got {shown(value)} (beyond float64's range)") from None
        except (TypeError, ValueError):
            pass
    raise TypeError(f"{name} must be a number or an array of numbers, got {shown(value)} (dtype {arr.dtype})")


def _refuse_booleans_inside(name: str, values: list[Any] | tuple[Any, ...]) -> None:
    """TypeError where a (nested) list holds a boolean: NumPy would read ``[True, 0.1]`` as
    [1.0, 0.1]."""
    for x in values:
        if isinstance(x, (bool, np.bool_)):
            raise TypeError(f"{name} must hold numbers, got the boolean {x!r} in {shown(values)}")
        if isinstance(x, (list, tuple)):
            _refuse_booleans_inside(name, x)


def real_array(name: str, value: object, *, low: float | None = None, low_open: bool = False,
               high: float | None = None, high_open: bool = False, integer: bool = False) -> FloatArray:
    """``value`` (a number, a nested list, a NumPy / CuPy array or a torch tensor) as a
    read-only float64 NumPy copy, every element finite and within the bounds. Where the bounds
    ask for numbers >= 0 (rates, durations, factors), a zero is held as +0.0: -0.0 passes as
    the same parameter, and schedules compare their tables bit for bit. Elsewhere (weights,
    curvatures) -0.0 is kept: it is a value the runs carry."""
    nonnegative = low is not None and low >= 0.0
    if type(value) is float and value - value == 0.0 and (
            low is None or (value > low if low_open else value >= low)) and (
            high is None or (value < high if high_open else value <= high)) and (not integer or value == round(value)):
        arr = np.array(value + 0.0 if nonnegative else value)  # (a Python float that passes, without the
        # checks' arrays; else the message below. value + 0.0: -0.0 -> +0.0, every other value as it is)
        arr.setflags(write=False)
        return arr
    arr = np.array(real_dtype_array(name, value), dtype=np.float64)  # a copy: never aliases the caller's
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(arr)
        if low is not None:
            bad |= (arr <= low) if low_open else (arr < low)
        if high is not None:
            bad |= (arr >= high) if high_open else (arr > high)
        if integer:
            bad |= np.isfinite(arr) & (arr != np.round(arr))
    if np.any(bad):
        first = arr[bad].flat[0].item()
        what = _bound_text(low, low_open, high, high_open)
        if not what:
            what = "finite"
        elif not np.isfinite(first):
            what = f"a finite number {what}"
        if integer:
            what = f"an integer {what}"
        extra = "" if arr.ndim == 0 else f" (first bad element {first!r})"
        raise ValueError(f"{name} must be {what.strip()}, got {shown(value)}{extra}")
    if nonnegative:
        arr += 0.0
    arr.setflags(write=False)
    return arr


def rates(name: str, value: object) -> FloatArray:
    """Learning rates (a number or an array): finite and >= 0."""
    return real_array(name, value, low=0.0)


def durations(name: str, value: object) -> FloatArray:
    """Numbers of steps (a number or an array): finite and >= 1; fractions allowed, as
    Keras and optax allow them."""
    return real_array(name, value, low=1.0)


def broadcast(**arrays: ArrayLike) -> Shape:
    """The common shape of the named arrays (NumPy rules), or ValueError naming them."""
    try:
        return np.broadcast_shapes(*(np.shape(v) for v in arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{k} {np.shape(v)}" for k, v in arrays.items() if np.ndim(v))
        raise ValueError(f"parameter shapes do not broadcast: {shapes}") from None


@lru_cache(maxsize=None)
def _memory_bytes() -> int | None:
    """Physical memory of this machine in bytes (None where the OS does not say); asked once."""
    try:
        import os

        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def fits_in_memory(name: str, value: object, shape: Sequence[int], itemsize: int) -> None:
    """ValueError naming ``name`` when an array of ``shape`` (the result that ``value``
    asks for) cannot be allocated: more bytes than this machine's memory."""
    fits(shape, itemsize, asks=lambda: f"{name}={shown(value)} asks")


def fits(shape: Sequence[int], itemsize: int, *, asks: str | Callable[[], str]) -> None:
    """ValueError when an array of ``shape`` cannot be allocated (more bytes than this
    machine's memory), its message starting with ``asks`` (what asks for it, by name: an
    argument, or shapes that broadcast; a function of no arguments that says it, called only
    then: a message is not made for every call that fits)."""
    elements = 1
    for n in shape:
        elements *= int(n)
    need = elements * itemsize
    have = _memory_bytes()
    if need > (have if have else 2**62):
        if callable(asks):
            asks = asks()
        raise ValueError(
            f"{asks} for a result of shape {tuple(shape)} ({need / 2**30:.3g} GiB); "
            f"this machine has {have / 2**30:.3g} GiB of memory" if have else
            f"{asks} for a result of shape {tuple(shape)} ({need / 2**30:.3g} GiB)"
        )


def out_array(name: str, out: Any, shape: Sequence[int]) -> np.ndarray:
    """``out`` (a NumPy array or CPU torch tensor to write into) as a NumPy view: dense,
    on the CPU, float32 or float64, of ``shape``, C-contiguous and writeable."""
    backend = backend_of(out)
    if backend == TORCH_CPU:
        torch = sys.modules["torch"]
        if out.layout is not torch.strided or getattr(out, "is_nested", False):
            raise TypeError(f"{name} must be a dense (strided) array, got a tensor with layout {out.layout}")
        if out.device.type != "cpu":
            raise TypeError(f"{name} must be a NumPy array or a CPU torch tensor, got a tensor on {out.device}")
        if out.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{name} must be float32 or float64, got dtype {out.dtype}")
        if out.requires_grad:
            raise ValueError(f"{name} must not require grad (it is written in place)")
        if out.is_conj() or out.is_neg():
            raise TypeError(f"{name} must be a tensor without a pending conj/neg bit")
        result = out.detach().numpy()
    elif isinstance(out, np.ndarray):
        result = out
    else:
        raise TypeError(f"{name} must be a NumPy array or a CPU torch tensor, got {type(out).__name__}")
    if result.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64, got dtype {result.dtype}")
    if result.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {result.shape}")
    if not result.flags.writeable:
        raise ValueError(f"{name} must be a writeable array, got a read-only one")
    if not result.flags.c_contiguous:
        raise ValueError(f"{name} must be a C-contiguous array, got strides {result.strides} (bytes) for shape "
                         f"{result.shape}")
    return result


# ----------------------------------------------------------------------------- scalars


def real(name: str, value: object, *, low: float | None = None, low_open: bool = False, high: float | None = None,
         high_open: bool = False) -> float:
    """A finite Python float within the bounds, from a Python / NumPy real number or a
    0-d (one-element) array or tensor."""
    if type(value) is float:  # the common case, without ABC checks
        x = value
    elif type(value) is int:
        x = float(value) if abs(value) < 2**1023 else float("inf")
    elif isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real number, got the boolean {value!r}")
    elif value is None or isinstance(value, (str, bytes, list, tuple, ScheduleBase)):
        raise TypeError(f"{name} must be a real number, got {shown(value)}")
    elif isinstance(value, numbers.Real) and not isinstance(value, np.generic):  # Fraction, ...
        x = float(value)
    else:  # NumPy scalars, 0-d arrays and tensors; complex, datetimes, strings refused
        arr = real_dtype_array(name, value)
        if arr.size != 1:
            raise TypeError(f"{name} must be a real number, got an array of shape {arr.shape}")
        x = float(arr.reshape(-1)[0])
    ok = x - x == 0.0  # finite
    if ok and low is not None:
        ok = x > low if low_open else x >= low
    if ok and high is not None:
        ok = x < high if high_open else x <= high
    if not ok:
        what = _bound_text(low, low_open, high, high_open)
        if x - x != 0.0 or not what:
            what = f"a finite number {what}"
        raise ValueError(f"{name} must be {what.strip()}, got {shown(value)}")
    return x


def integer(name: str, value: Any, *, low: int | None = 0, high: int | None = None) -> int:
    """A Python int >= low (and < high), from an int, a NumPy integer or an integral float."""
    if type(value) is not int:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must be an integer, got the boolean {value!r}")
        if isinstance(value, (np.timedelta64, np.datetime64)):  # (NumPy counts a time span as an integer)
            raise TypeError(f"{name} must be an integer, got the time {value!r}")
        if isinstance(value, numbers.Integral):
            value = int(value)
        elif isinstance(value, numbers.Real) and not isinstance(value, np.ndarray):
            number: Any = value  # (numbers.Real declares no __int__ to type checkers)
            if not np.isfinite(number) or number != int(number):
                raise ValueError(f"{name} must be an integer, got {value!r}")
            value = int(number)
        else:
            raise TypeError(f"{name} must be an integer, got {shown(value)}")
    if (low is not None and value < low) or (high is not None and value >= high):
        bound = f">= {low}" if low is not None and value < low else f"< {_power_of_two(cast(int, high))}"
        raise ValueError(f"{name} must be {bound}, got {shown(value)}")
    return value


def _power_of_two(n: int) -> str:
    """``n`` as 2**k where it is one (and large), else in digits."""
    k = n.bit_length() - 1
    return f"2**{k}" if n == 2**k and k >= 20 else str(n)


def step(name: str, value: object) -> int:
    """One step index: an int in [0, 2**53]."""
    if type(value) is int and 0 <= value <= MAX_STEP:
        return value
    value = integer(name, value, low=None)  # type and integrality
    if value < 0:
        raise ValueError(f"{name} must be a non-negative step, got {shown(value)}")
    if value > MAX_STEP:
        raise ValueError(f"{name} must be an integer step from 0 to 2**53, got {shown(value)}")
    return value


def flag(name: str, value: object) -> bool:
    """``value`` as a Python bool (True, False or a NumPy bool; not 0/1)."""
    if value is True or value is False:
        return value
    if not isinstance(value, np.bool_):
        raise TypeError(f"{name} must be True or False, got {shown(value)}")
    return bool(value)


def choice(name: str, value: object, options: Iterable[str]) -> str:
    """One of the strings ``options``."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {tuple(options)}, got {shown(value)}")
    return value


def betas(value: object, name: str = "betas") -> tuple[float, float]:
    """Adam's (beta1, beta2) as floats in [0, 1)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be a pair (beta1, beta2) of numbers in [0, 1), got {shown(value)}")
    beta1, beta2 = value
    if type(beta1) is float and type(beta2) is float and 0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0:
        return beta1, beta2  # the common case, checked at every fused step
    pair = real(f"{name}[0]", beta1), real(f"{name}[1]", beta2)
    for k, b in enumerate(pair):
        if not 0.0 <= b < 1.0:
            raise ValueError(f"{name}[{k}] must be in [0, 1), got {shown(value[k])}")
    return pair


def float_dtype(name: str, dtype: Any) -> np.dtype:
    """float32 or float64 (a NumPy dtype, its name, or a torch dtype) as a NumPy dtype."""
    if dtype is np.float64 or dtype is np.float32:  # (the usual spellings, at once)
        return np.dtype(dtype)
    text = str(dtype)
    if text in ("torch.float32", "torch.float64"):  # a torch dtype, without importing torch
        dtype = text[len("torch."):]
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be float32 or float64, got {shown(dtype)}") from None
    if dt not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64, got {shown(dtype)}")
    return dt


def table_dtype(dtype: Any, out_dtype: Any) -> np.dtype:
    """The dtype of a table: ``dtype`` (float64 where None), or with an ``out`` of
    ``out_dtype`` that one, which ``dtype`` given too must be."""
    if out_dtype is None:
        return np.dtype(np.float64) if dtype is None else float_dtype("dtype", dtype)
    if dtype is not None and float_dtype("dtype", dtype) != out_dtype:
        raise ValueError(f"dtype must be out's dtype {np.dtype(out_dtype).name} (out decides the table's dtype), "
                         f"got {float_dtype('dtype', dtype).name}")
    return np.dtype(out_dtype)


def callable_or_none(name: str, value: _T, what: str) -> _T:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be {what} or None, got {shown(value)}")
    return value


# ----------------------------------------------------------------------------- steps


def steps_array(name: str, t: object) -> FloatArray:
    """Steps (an int, or an array of integer steps of any shape) as a float64 NumPy array."""
    if isinstance(t, (bool, np.bool_, np.timedelta64, np.datetime64)):
        raise TypeError(f"{name} must be an integer step or an array of steps, got {t!r}")
    if isinstance(t, (list, tuple)):
        _refuse_booleans_inside(name, t)
    if isinstance(t, numbers.Integral):
        return np.asarray(float(step(name, t)))
    if t is None or isinstance(t, (str, bytes, ScheduleBase)):
        raise TypeError(f"{name} must be an integer step or an array of steps, got {shown(t)}")
    arr = host_array(name, t)
    try:
        arr = np.asarray(arr)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an integer step or an array of steps, got {shown(t)}") from None
    if arr.dtype.kind == "O" and not isinstance(t, np.ndarray):  # Python integers beyond uint64
        for x in arr.flat:
            if isinstance(x, numbers.Integral):
                step(name, x)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be an integer step or an array of steps, got dtype {arr.dtype}: {shown(t)}")
    steps = arr.astype(np.float64, copy=False)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(steps) | (steps != np.floor(steps))
        if np.any(bad):
            raise ValueError(f"{name} must be an integer step, got {arr[bad].flat[0].item()!r}")
    negative = steps < 0
    if np.any(negative):
        raise ValueError(f"{name} must be a non-negative step, got {arr[negative].flat[0].item()!r}")
    # integers compared as integers: 2**53 + 1 rounds to 2**53 in float64
    beyond = arr > MAX_STEP if arr.dtype.kind in "iu" else steps > MAX_STEP
    if np.any(beyond):
        raise ValueError(f"{name} must hold integer steps from 0 to 2**53, got {arr[beyond].flat[0].item()!r}")
    return steps


def step_sequence(name: str, values: object, *, strict: bool, sort: bool = False) -> FloatArray:
    """A 1-D sequence of non-negative integer steps as a float64 array: sorted first
    when ``sort``, else required to be sorted (strictly increasing if ``strict``)."""
    if isinstance(values, (str, bytes)) or isinstance(values, numbers.Number):
        raise TypeError(f"{name} must be a sequence of integer steps, got {shown(values)}")
    arr = np.array(real_dtype_array(name, values), dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of steps, got shape {arr.shape}: {shown(values)}")
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
        raise ValueError(f"{name} must hold integer steps, got {shown(values)}")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative, got {shown(values)}")
    if sort:
        arr = np.sort(arr)
    arr.setflags(write=False)
    d = np.diff(arr)
    if np.any(d <= 0 if strict else d < 0):
        order = "strictly increasing" if strict else "sorted (non-decreasing)"
        raise ValueError(f"{name} must be {order}, got {shown(values)}")
    return arr


# ----------------------------------------------------------------------------- schedules


def schedule(name: str, value: _T) -> _T:
    """``value`` if it is a fastdecay Schedule, else TypeError naming ``name``."""
    if not isinstance(value, ScheduleBase):
        raise TypeError(f"{name} must be a fastdecay Schedule, got {shown(value)}")
    return value


def schedules(name: str, values: Any) -> list[Any]:
    """A non-empty list of Schedules (a single Schedule counts as a list of one)."""
    if isinstance(values, ScheduleBase):
        return [values]
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a list of fastdecay Schedules, got {shown(values)}")
    values = list(values)
    if not values:
        raise ValueError(f"{name} must hold at least one schedule, got none")
    for k, s in enumerate(values):
        schedule(f"{name}[{k}]", s)
    return values


def constant_table(value: float) -> FloatArray:
    """The read-only table of the constant rate ``value`` (one per value: nothing writes it)."""
    return _constant_table(value, math.copysign(1.0, value))  # (-0.0 apart from 0.0)


@lru_cache(maxsize=256)
def _constant_table(value: float, sign: float) -> FloatArray:
    table = np.zeros((1, 1, L.WIDTH))
    table[0, 0, L.KIND] = L.CONSTANT
    table[0, 0, L.P0] = value
    table.setflags(write=False)
    return table


def rate_table(name: str, value: object) -> FloatArray:
    """The read-only ``(1, segments, WIDTH)`` table of a rate given as a number >= 0 or
    as a scalar schedule (batch_shape ()): what the fused updates read."""
    if isinstance(value, ScheduleBase):
        if value.batch_shape != ():
            raise ValueError(f"{name} must be a number or a scalar schedule (batch_shape ()), got batch_shape "
                             f"{value.batch_shape}: {value!r}")
        return value.rows()
    return constant_table(real(name, value, low=0.0))
