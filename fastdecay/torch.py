"""torch.optim adapters: SGD, Adam, AdamW and Lion stepping through the fused kernels, and LR schedulers.

Imported on demand (``import fastdecay.torch``); ``import fastdecay`` never imports torch.

``SGD``, ``Adam``, ``AdamW`` and ``Lion`` are ``torch.optim.Optimizer`` subclasses
with torch's argument names (lion-pytorch's for ``Lion``) and param groups. ``lr``,
``weight_decay``, SGD's ``momentum`` and Adam's and Lion's ``betas[0]`` may be
fastdecay schedules (per group), read
inside the kernel at each parameter's step count, so the weight decay can follow
any schedule — torch cannot schedule it (pytorch/pytorch#22343) — and the momentum
cycles as torch's ``cycle_momentum`` makes it. ``LRScheduler`` drives any torch optimizer's rate by a
schedule's closed form; ``ReduceLROnPlateau`` is torch's, with cuts that compose
with a scheduled rate (warmup + cosine + plateau cuts). Each ``step()`` first checks every group (options,
tensors, state) and only then updates: a refused step raises a ``ValueError`` /
``TypeError`` naming the tensor (``param_groups[1].params[0]``) and leaves every
parameter, state buffer and step count as it was. Then it makes one fused call
per param group and step count: CPU tensors run the Numba kernels, CUDA tensors
the GPU kernels. A group's step that is the same as its last (the same group
dict and option values, every parameter with a gradient laid out as its own, one
step count) is checked by what can have changed since: the tensors' identities,
addresses, layouts and dtypes, new gradients, the step counts and the rates.
``step()`` runs torch's optimizer hooks as torch's optimizers do; torch's profiler
annotation of the step (``Optimizer.step#AdamW.step``) is made while a torch
profiler runs, and skipped outside one (it costs ~150 us right after a backward pass).

State uses torch's keys: ``step`` (a 0-d float tensor, as torch keeps it),
``momentum_buffer``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``. The step
counts of a group's parameters are 0-d views of one tensor, counted by one
addition; counts that are tensors of their own (loaded from a checkpoint, or set
by hand) are read and counted one by one, and replaced by views of one tensor at
the first step that finds them all equal (a reference to the old count tensor
then no longer follows the state).

Precision. float16 and bfloat16 parameters keep their state in float32 by default
(the math runs in float32 inside the kernel). ``state_dtype="bfloat16"`` stores
the moments (and momentum buffer) in bfloat16, updated in float32; with
``compensated=True`` each parameter gets a Kahan buffer (state key
``"compensation"``, in the parameter's dtype) so 16-bit weights accumulate
updates smaller than their resolution instead of rounding them away — as
``fastdecay.adamw_step`` / ``sgd_step`` with the same arguments. Both are
group options, saved with the state dict.

Checkpoints. ``state_dict()`` holds plain data only (numbers, strings, lists,
dicts, tensors), so ``torch.load(path)`` reads it with torch's default
``weights_only=True``. A group value that is a schedule is stored twice:

- as a number, the rate the schedule gives at the group's step count (the
  largest step count of its parameters: the rate of the next update), so that
  torch's own optimizers can load the state dict and carry on from it (give
  them a scheduler, e.g. :class:`LRScheduler` with the same schedule, to keep
  following it);
- under the group key ``"schedules"``: ``{key: encoding}``, where an encoding is
  the dict ``{"fastdecay_schedule": 1, "kind": str, "segments": float64 tensor,
  "params": dict or None}``. ``segments`` is the packed segment table every
  kernel reads (``Schedule.segments``), so the rates are exact whatever
  ``params`` holds; ``params`` are the factory's arguments (numbers, strings,
  arrays as tensors, nested schedules as encodings; None when one of them is
  not plain data) and give the rebuilt schedule its ``repr`` and ``params``.
  ``load_state_dict`` rebuilds the schedule from it (it wins over the number).

Adam groups also carry torch's ``decoupled_weight_decay`` next to fastdecay's
``decoupled``, so ``torch.optim.Adam`` loading an AdamW state dict stays AdamW.
The saved ``decoupled`` is a hyperparameter like the others: ``AdamW`` loading a
state dict of fastdecay's ``Adam`` (or of ``AdamW(decoupled=False)``, the same
thing) goes on with the L2 form, where torch's ``AdamW`` always decouples; torch's
own ``Adam`` state dicts (no ``decoupled`` key) load into ``AdamW`` decoupled.
Options of fastdecay's own (``decoupled`` SGD, ``lr_in_buffer``, ``on_drop``)
have no torch counterpart: torch's optimizers ignore those keys.

``load_state_dict`` also reads torch's own ``SGD`` / ``Adam`` / ``AdamW`` state
dicts, old and new: group keys they lack are filled with the defaults (as torch's
``__setstate__`` does), a missing ``step`` (torch's SGD keeps none) counts one
update where the parameter has a momentum buffer (so the buffer is carried on,
not restarted) and none otherwise, a ``None`` buffer (torch's SGD before its
momentum was first used) is made at the next step from the gradient, as torch
makes it, and state tensors move to their parameter's
device and dtype (as in torch, a tensor that has them already is taken as it is,
not copied). As in torch, the checkpoint's hyperparameters replace the
optimizer's: to run a schedule on from a torch checkpoint, set
``group["lr"] = schedule`` after loading. torch's Adam and AdamW keep their step
counts up to date, so the schedule goes on from the right step. torch's SGD keeps
none: after loading its checkpoint (or a fastdecay SGD checkpoint that torch's SGD
then trained on: it carries the saved ``step`` along unchanged) set the count a
schedule should go on from, ``optimizer.state[p]["step"] = torch.tensor(n, dtype=
torch.float32)`` for each parameter ``p``, or the schedule restarts near step 0 (or
at the stale count).

``GradScaler`` works as with torch's fused optimizers: the scaler hands the
step ``grad_scale`` and ``found_inf``, a step with an inf/NaN gradient
changes nothing, not even the step count, and after a step the gradients hold
their unscaled values.

torch's LR schedulers (``StepLR``, ``OneCycleLR``, ``SequentialLR``, ...) drive
an optimizer whose ``lr`` is a number, as they drive torch's. An ``lr`` that is a
fastdecay schedule already gives every step's rate: a torch scheduler that scales
it from the base rate (``StepLR``, ``LambdaLR``, ``CosineAnnealingLR``, ... every
one that sets ``initial_lr`` from it) is refused at the next ``step()`` (combine
schedules with ``fd.join``, ``fd.warmup`` or ``a * b`` instead); ``OneCycleLR``
and ``CyclicLR``, which never read the optimizer's rate, replace it by their own
as they replace a number; torch's ``ReduceLROnPlateau`` reads it as a number and
stops at its first cut with a ``TypeError`` (this module's ``ReduceLROnPlateau``
cuts a scheduled rate). ``fastdecay.torch.LRScheduler`` drives a plain-number
``lr`` from a schedule's closed form, as torch's ``LambdaLR`` does.

>>> import torch, fastdecay as fd
>>> from fastdecay.torch import AdamW
>>> model = torch.nn.Linear(3, 1)
>>> opt = AdamW(model.parameters(), lr=fd.cosine(1e-2, 100),
...             weight_decay=fd.linear(0.0, 0.1, 100))
>>> model(torch.ones(2, 3)).sum().backward()
>>> opt.step()
>>> int(opt.state[model.weight]["step"])
1
>>> saved = opt.state_dict()["param_groups"][0]
>>> saved["lr"] == fd.cosine(1e-2, 100)(1), saved["schedules"]["lr"]["kind"]
(True, 'cosine')
"""

from __future__ import annotations

import abc
import copy
import functools
import math
import numbers
import operator
import re
import weakref
from collections import defaultdict
from itertools import chain, repeat
from typing import Any, Callable, Literal, Sequence, SupportsFloat, Union, cast, overload

import numpy as np

try:
    import torch
except ImportError as err:  # (the optional dependency, named with how to get it)
    raise ImportError("fastdecay.torch needs torch, which is not installed: pip install 'fastdecay[torch]' "
                      "(or a torch build of your choice, e.g. the CPU wheel: pip install torch "
                      "--index-url https://download.pytorch.org/whl/cpu)") from err
from torch.optim.lr_scheduler import LRScheduler as _TorchLRScheduler
from torch.optim.lr_scheduler import ReduceLROnPlateau as _TorchReduceLROnPlateau
from torch.optim import optimizer as _torch_optimizer
from torch.optim.optimizer import ParamsT

from .schedules import Rate, Schedule, product
from . import _fused as F
from . import _update_plan as _P
from . import _rules as R
from . import _validate as V
from ._rules import FUSED
from ._layout import WIDTH as _LAYOUT_WIDTH
from ._validate import flag as _flag, rate_table as _schedule_table

__all__ = ["SGD", "Adam", "AdamW", "Lion", "LRScheduler", "ReduceLROnPlateau"]

# Adam's (beta1, beta2): beta1 a number or a scalar schedule
Betas = tuple[Union[float, Schedule], float]
# state_dtype: None, "float32" or "bfloat16" (or the torch dtype of that name)
StateDtype = Union[str, torch.dtype, None]


def _one_tensor(steps: Sequence[torch.Tensor]) -> torch.Tensor | None:
    """The 1-d tensor whose elements are exactly the 0-d step counts ``steps``, in order (the
    views ``_group_calls`` makes for new states), or None (a count loaded from a checkpoint
    or set by hand is its own tensor). Judged by memory: each count's data at its element of
    the base. (A view keeps its ``_base`` when ``count.data = ...`` or ``count.set_(...)``
    gives it other memory; its count is then its own.)"""
    base = steps[0]._base
    n = len(steps)
    if base is None or base.dim() != 1 or base.numel() != n or not base.is_contiguous():
        return None
    start, size = base.data_ptr(), base.element_size()
    if (list(map(_DATA_PTR, steps)) == list(range(start, start + n * size, size)) and not any(map(_DIM, steps))
            and list(map(_DTYPE, steps)) == [base.dtype] * n):
        return base
    return None


# C-level per-tensor reads for the per-step loops (see ``_group_calls``)
_GRAD = operator.attrgetter("grad")
_IS_SPARSE = operator.attrgetter("is_sparse")
# (the unbound methods: about 100 ns a tensor less than operator.methodcaller)
_DIM = torch.Tensor.dim
_STRIDE = torch.Tensor.stride
_IS_CONTIGUOUS = torch.Tensor.is_contiguous
_DATA_PTR = torch.Tensor.data_ptr
_DTYPE = operator.attrgetter("dtype")
_GET_DEVICE = torch.Tensor.get_device
_IS_CPU_TENSOR = operator.attrgetter("is_cpu")
_STEP = operator.itemgetter("step")
_NO_STATE: frozenset[str] = frozenset()


def _read_counts(steps: Sequence[torch.Tensor]) -> tuple[list[Any], torch.Tensor | None]:
    """(the step counts ``steps`` as Python numbers in one read, the one tensor they are
    the elements of when they all have the same count, else None)."""
    base = _one_tensor(steps)
    if base is not None:
        values = base.tolist()
        if values.count(values[0]) == len(values):  # all equal: the order does not matter
            return values, base
    return torch.stack(list(steps)).tolist(), None


def _count_tensor(count: Any) -> bool:
    """Whether a step state is a count torch's optimizers could have kept: a one-element real tensor."""
    return (isinstance(count, torch.Tensor) and count.numel() == 1 and not count.dtype.is_complex
            and count.dtype != torch.bool)


def _whole_count(count: Any) -> bool:
    """Whether a step count read from the state is a whole number of steps the kernels take."""
    return isinstance(count, (int, float)) and math.isfinite(count) and count == int(count) and 0 <= count <= F.MAX_STEP


# torch's global optimizer step hooks (``torch.optim.optimizer.register_optimizer_step_pre_hook``)
_GLOBAL_PRE_HOOKS = _torch_optimizer._global_optimizer_pre_hooks
_GLOBAL_POST_HOOKS = _torch_optimizer._global_optimizer_post_hooks
_AUTOGRAD_PROFILER = torch.autograd.profiler
_PROFILER_ENABLED = torch._C._autograd._profiler_enabled


def _profiling() -> bool:
    """Whether a torch profiler runs: started from Python (``_is_profiler_enabled``) or on this
    thread from C++ (an on-demand trace)."""
    return bool(_AUTOGRAD_PROFILER._is_profiler_enabled or _PROFILER_ENABLED())


# torch.compile runs a step as Python (a graph break): its rate tables are NumPy work that
# tracing cannot follow, and the kernels are opaque to it anyway
# (torch._disable_dynamo imports dynamo at the first step, not at import: 1 s saved there)
_not_compiled: Callable[[Any], Any] = cast(Callable[[Any], Any], getattr(torch, "_disable_dynamo", None) or getattr(
    getattr(torch, "compiler", None), "disable", lambda f: f))


def _without_grad(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` run with autograd off and the caller's mode restored after (an exception
    included), as ``@torch.no_grad()`` runs it, for a seventh of its cost a call (0.24 against
    1.65 us, measured): a small model's step pays it every time. torch versions without the
    C-level switch keep ``torch.no_grad()``."""
    set_enabled = getattr(torch._C, "_set_grad_enabled", None)
    if set_enabled is None:
        return torch.no_grad()(func)
    is_enabled = torch.is_grad_enabled

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        before = is_enabled()
        set_enabled(False)
        try:
            return func(*args, **kwargs)
        finally:
            set_enabled(before)

    return wrapper


def _unscale(grads: list[torch.Tensor], grad_scale: Any) -> None:
    """Divide the gradients by a GradScaler's scale in place, as torch's fused optimizers leave
    them after a step (the kernels read them scaled and unscale in registers)."""
    if not isinstance(grad_scale, torch.Tensor):
        torch._foreach_div_(grads, float(grad_scale))
        return
    by_device: dict[torch.device, list[torch.Tensor]] = {}
    for grad in grads:
        by_device.setdefault(grad.device, []).append(grad)
    for device, part in by_device.items():
        torch._foreach_div_(part, grad_scale.to(device, non_blocking=True))


# a call's step counts: (the one tensor whose elements they are, their common value) or a list of count tensors
_Counter = Union[tuple[torch.Tensor, int], list[torch.Tensor]]


def _count_steps(counters: list[_Counter]) -> None:
    """Add 1 to every step count: ``(tensor, t)`` is a tensor whose elements are counts all at
    ``t`` (one ``add_``, or one NumPy ``fill`` where ``_new_counts`` made it over a NumPy array:
    torch's dispatch of an ``add_`` costs a step several microseconds more), a list holds
    count tensors (all of them in one ``_foreach_add_``, as torch's own optimizers count)."""
    loose: list[torch.Tensor] = []
    for counter in counters:
        if isinstance(counter, tuple):
            tensor, t = counter
            counts = _COUNT_ARRAYS.get(tensor.data_ptr())
            if counts is not None and counts[0]() is tensor:
                counts[1].fill(t + 1)  # (the same memory: the tensor was made from this array)
            else:
                tensor.add_(1)
        else:
            loose += counter
    if loose:
        torch._foreach_add_(loose, 1)


# address -> (a weak reference to the tensor, the NumPy array it was made from) of the step
# counts ``_new_counts`` made; an entry leaves with its tensor
_COUNT_ARRAYS: dict[int, tuple[weakref.ref[torch.Tensor], np.ndarray]] = {}


def _new_counts(n: int, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A tensor of ``n`` zero step counts (by default in the default float dtype's precision,
    as torch keeps them) whose additions ``_count_steps`` makes through NumPy."""
    tensor = torch.zeros(n, dtype=dtype or _scalar_dtype())
    counts = tensor.numpy()
    address = tensor.data_ptr()
    _COUNT_ARRAYS[address] = (weakref.ref(tensor), counts)
    weakref.finalize(tensor, _COUNT_ARRAYS.pop, address, None)
    return tensor


def _joined_counts(steps: list[torch.Tensor], t: int) -> torch.Tensor | None:
    """A new tensor (``_new_counts``) holding the step counts ``steps``, all at ``t``, in their
    dtype; None where they are not all CPU float32 or float64 tensors of one dtype."""
    dtype = steps[0].dtype
    if (dtype not in (torch.float32, torch.float64) or not all(map(_IS_CPU_TENSOR, steps))
            or list(map(_DTYPE, steps)) != [dtype] * len(steps)):
        return None
    joined = _new_counts(len(steps), dtype)
    joined.fill_(t)
    return joined


def _scalar_dtype() -> torch.dtype:
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _plain_number(value: Any) -> Any:
    """A NumPy real scalar (or 0-d array) as the Python number it holds, anything else as it
    is: a state dict holds plain data only (``torch.load``'s ``weights_only=True`` refuses NumPy's
    scalars), and rates computed with NumPy (``base * np.sqrt(batch / 256)``) are common."""
    if isinstance(value, (np.generic, np.ndarray)) and value.ndim == 0 and value.dtype.kind in "biuf":
        return value.item()
    return value


def _check_hyper(name: str, value: Any) -> Any:
    """lr / weight_decay: a non-negative number, a one-element tensor or a scalar schedule
    (validated now, not at step 1). A tensor is kept, as torch keeps it: each step reads the
    value it holds then (a scheduler or the caller may write it in place)."""
    value = _plain_number(value)
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a number or a scalar schedule, got a tensor of shape {tuple(value.shape)}")
        _schedule_table(name, float(value))
        return value
    _schedule_table(name, value)
    return value


def _no_differentiable(differentiable: bool, capturable: bool = False) -> None:
    if differentiable:
        raise ValueError("differentiable=True is not supported by the fused fastdecay optimizers")
    if capturable:
        raise ValueError("capturable=True is not supported; the fused kernels read the step count per call")


# ----------------------------------------------------------------------------- schedules as plain data

_ENCODING = "fastdecay_schedule"
_ENCODING_VERSION = 1


class _NotPlain(Exception):
    """A schedule parameter that is not plain data (the encoding then drops ``params``)."""


def _plain(value: Any) -> Any:
    """A schedule parameter as plain data: tensors for arrays, encodings for schedules."""
    if isinstance(value, np.generic):  # before float: np.float64 is a float
        value = _plain_number(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Schedule):
        return _encode_schedule(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return torch.tensor(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    raise _NotPlain(value)


def _from_plain(value: Any) -> Any:
    if isinstance(value, dict) and _ENCODING in value:
        return _decode_schedule(value, "params")
    if isinstance(value, torch.Tensor):
        arr = value.detach().cpu().numpy().copy()  # torch.load(map_location="cuda") puts these on a GPU
        arr.setflags(write=False)
        return arr
    if isinstance(value, list):
        return [_from_plain(v) for v in value]
    return value


def _encode_schedule(schedule: Schedule) -> dict[str, Any]:
    """The plain-data encoding of ``schedule`` (see the module docstring)."""
    try:
        params = {key: _plain(v) for key, v in schedule.params.items()}
    except _NotPlain:
        params = None
    return {_ENCODING: _ENCODING_VERSION, "kind": schedule.kind,
            "segments": torch.tensor(np.asarray(schedule.segments)), "params": params}


def _decode_schedule(encoding: Any, where: str) -> Schedule:
    """The Schedule an encoding describes; ValueError naming ``where`` if it is not one."""
    if not isinstance(encoding, dict) or encoding.get(_ENCODING) != _ENCODING_VERSION:
        raise ValueError(f"{where} must be a fastdecay schedule encoding (version {_ENCODING_VERSION}), "
                         f"got {V.shown(encoding)}")
    segments, kind, params = encoding.get("segments"), encoding.get("kind"), encoding.get("params")
    if not isinstance(segments, torch.Tensor) or not segments.is_floating_point() or not isinstance(kind, str):
        raise ValueError(f"{where} must hold a float 'segments' tensor and a 'kind' string, got {V.shown(encoding)}")
    if params is not None and not isinstance(params, dict):
        raise ValueError(f"{where}['params'] must be a dict or None, got {V.shown(params)}")
    table = segments.detach().to("cpu", torch.float64).numpy().copy()
    # (NaN starts mark side rows, +inf starts padding; a NaN anywhere else is a damaged table)
    if table.ndim < 2 or table.shape[-1] != _LAYOUT_WIDTH or np.isnan(table[..., 1:]).any():
        raise ValueError(f"{where}['segments'] must be a schedule's segment table (rows of {_LAYOUT_WIDTH} numbers, "
                         f"no NaN but in the start column), got {V.shown(segments)}")
    params = {key: _from_plain(v) for key, v in (params or {}).items()}
    try:
        # (checked as the kernels will read it: a damaged table, its pointers, kinds or signs)
        return Schedule(table, kind, params)
    except ValueError as err:
        raise ValueError(f"{where}['segments']: {err}") from None


def _is_schedule_member(value: object) -> bool:
    return isinstance(value, (list, tuple)) and any(isinstance(v, Schedule) for v in value)


def _encode_group(group: dict[str, Any], step: int) -> dict[str, Any]:
    """A packed param group with every schedule replaced by its rate at ``step`` and encoded
    under ``"schedules"`` (a schedule inside a tuple, as betas, encodes as a list with None
    for the plain members)."""
    schedules: dict[str, Any] = {}
    for key, value in group.items():
        if isinstance(value, Schedule):
            schedules[key] = _encode_schedule(value)
            group[key] = value(step)
        elif _is_schedule_member(value):
            schedules[key] = [_encode_schedule(v) if isinstance(v, Schedule) else None for v in value]
            group[key] = type(value)(v(step) if isinstance(v, Schedule) else _plain_number(v) for v in value)
        elif isinstance(value, tuple):
            group[key] = tuple(map(_plain_number, value))
        else:
            group[key] = _plain_number(value)
    if schedules:
        group["schedules"] = schedules
    return group


def _decode_group(group: dict[str, Any], where: str) -> dict[str, Any]:
    """``group`` with the schedules of its ``"schedules"`` entry put back in place."""
    schedules = group.pop("schedules", None)
    if schedules is None:
        return group
    if not isinstance(schedules, dict):
        raise ValueError(f"{where}['schedules'] must be a dict of schedule encodings, got {V.shown(schedules)}")
    for key, encoding in schedules.items():
        here = f"{where}['schedules'][{key!r}]"
        if isinstance(encoding, list):
            plain = group.get(key)
            if not isinstance(plain, (list, tuple)) or len(plain) != len(encoding):
                raise ValueError(f"{here} must have one entry per member of {where}[{key!r}], got {V.shown(encoding)}")
            group[key] = type(plain)(v if e is None else _decode_schedule(e, f"{here}[{k}]")
                                     for k, (v, e) in enumerate(zip(plain, encoding)))
        else:
            group[key] = _decode_schedule(encoding, here)
    return group


# ----------------------------------------------------------------------------- the optimizers

# names of the arrays of a fused call, as its errors name them (``exp_avg[3]``; not an
# option's element such as ``betas[0]``)
_CALL_LABEL = re.compile(r"\b(param|grad|compensation_buffer|"
                         + "|".join(sorted({key for fused in FUSED.values() for key in fused.state_keys}))
                         + r")\[(\d+)\]")


_Prepared = tuple[Callable[[], None], Union[F.Call, None]]  # (launch, the Call that checks it again)
_RATES = frozenset(("params", "lr", "weight_decay"))  # group entries a repeated call reads anew


class _Repeat:
    """What a group's usual step was checked with (every parameter with a gradient laid out as
    its own, complete states, one step count), so that the next such step with the same options
    checks only what can have changed (``fastdecay._fused.Call.again``): the group (the same
    dict, the same keys), its option values (the same objects: every one a plain number, flag,
    string, schedule or a tuple of these, which cannot change in place), the state buffers it
    reads and the call. The rates are read anew every step (a torch LR scheduler sets ``lr``
    each step; the call makes new tables only when they change)."""

    __slots__ = ("group", "keys", "option_keys", "options", "state_entries", "call", "steps", "counted", "kept")

    def __init__(self, group: dict[str, Any], option_keys: tuple[str, ...], options: tuple[Any, ...],
                 call: F.Call) -> None:
        self.group, self.keys, self.option_keys, self.options = group, tuple(group), option_keys, options
        self.call = call
        # a parameter's state -> (its step count, then each stream after the gradients), in one read
        self.state_entries = operator.itemgetter(
            "step", *(_COMPENSATION if role == "comp" else name for name, _, role in call.layout[2:]))
        # the step counts of the last repeated step (the states' own tensors) and what they were
        # checked against (``_CountedSteps``), or None
        self.steps: tuple[torch.Tensor, ...] | None = None
        self.counted: _CountedSteps | None = None
        # the parameters and state buffers of the last repeated step, held to be compared by
        # identity (a buffer replaced in the state stays alive until the group's next step)
        self.kept: tuple[Sequence[torch.Tensor], ...] | None = None

    @staticmethod
    def of(group: dict[str, Any], call: F.Call | None, first_step: int | None) -> _Repeat | None:
        """The repeat of a usual step checked by ``call``, or None where the next step must be checked in full."""
        option_keys = tuple(key for key in group if key not in _RATES)
        options = tuple(map(group.__getitem__, option_keys))
        if call is None or first_step is not None or not all(map(F.fixed_value, options)):
            return None
        return _Repeat(group, option_keys, options, call)

    def holds(self, group: dict[str, Any]) -> bool:
        """Whether ``group`` is the group this repeat was made from, its options unchanged."""
        return (group is self.group and tuple(group) == self.keys
                and all(map(operator.is_, map(group.__getitem__, self.option_keys), self.options)))

    def calls(self, group: dict[str, Any], state_of: Callable[..., Any], grad_scale: Any,
              scaled: list[torch.Tensor]) -> list[tuple[Callable[[], None], _Counter]] | None:
        """``_Fused._group_calls`` of ``group`` where this step is the usual one again over the
        same tensors (``Call.again``); None where anything else differs: the full check then
        runs (and names what is wrong)."""
        params: list[torch.Tensor] = group["params"]
        grads: list[torch.Tensor] = list(map(_GRAD, params))
        try:
            # (a parameter without a state, or a state without a buffer: KeyError or TypeError)
            steps, *buffers = zip(*map(self.state_entries, map(state_of, params)))
            counted = self.counted
            if counted is None or not counted.holds(steps, self.steps):
                counted = _CountedSteps.of(steps)
                if counted is None:
                    return None
            counts = counted.base.tolist()
            if counts.count(counts[0]) != len(counts) or not _whole_count(counts[0]):
                return None
            kept = self.kept
            kept_same = (kept is not None and len(params) == len(kept[0])
                         and all(all(map(operator.is_, now, then)) for now, then in zip((params, *buffers), kept)))
            launch = self.call.again([params, grads, *buffers], step=int(counts[0]), lr=group["lr"],
                                     weight_decay=group["weight_decay"], grad_scale=grad_scale, found_inf=None,
                                     grads_of_params=True, kept_same=kept_same)
        except (AttributeError, KeyError, TypeError, ValueError, RuntimeError):
            return None
        if launch is None:
            return None
        self.steps, self.counted = steps, counted
        if not kept_same:
            self.kept = (tuple(params), *buffers)
        if grad_scale is not None:
            scaled += grads
        return [(launch, (counted.base, int(counts[0])))]


class _CountedSteps:
    """Step counts that are the elements of one tensor (``_one_tensor``), as checked once, so
    that a repeated step with the same count tensors re-checks them, and their base, in three
    C-level passes (identity, address, ``tensor_guard``: type, dtype, shape) where
    ``_one_tensor`` takes four, its list of addresses made anew each time. A count (or the
    base) given other memory in place (``count.data = ...``, ``count.set_(...)``) or re-typed
    fails them; the values are read from ``base`` each step, so a count written in place is
    seen as it is."""

    __slots__ = ("base", "pointers", "guard")

    def __init__(self, base: torch.Tensor, steps: Sequence[torch.Tensor]) -> None:
        self.base = base
        # (the base first, then the counts: one pass of each check over both)
        self.pointers = list(map(_DATA_PTR, (base, *steps)))
        self.guard = _P.tensor_guard((base, *steps))

    @staticmethod
    def of(steps: Sequence[torch.Tensor]) -> _CountedSteps | None:
        """The counts ``steps`` checked in full, or None where they are not one tensor's elements."""
        base = _one_tensor(steps)
        return None if base is None else _CountedSteps(base, steps)

    def holds(self, steps: Sequence[torch.Tensor], checked: Sequence[torch.Tensor] | None) -> bool:
        """Whether ``steps`` are the tensors ``checked`` this was made from, still where they were
        and as they were."""
        if checked is None or len(steps) != len(checked) or not all(map(operator.is_, steps, checked)):
            return False
        both = (self.base, *steps)
        return list(map(_DATA_PTR, both)) == self.pointers and _P._passes(self.guard, both)


_COMPENSATION = "compensation"  # the compensation buffer's key in a parameter's state


class _Fused(torch.optim.Optimizer, metaclass=abc.ABCMeta):
    """What SGD and Adam share: hyperparameter checks, state creation, the checked then
    grouped step, checkpoints.

    A subclass names its state buffers (``_buffer_names``), the group options torch may
    lack in a state dict with their defaults (``_OPTIONAL``), and prepares the fused call
    for one group's parameters at one step count (``_call``: checks everything, returns
    the launch).
    """

    _step_supports_amp_scaling = True  # GradScaler passes grad_scale / found_inf (as for fused=True)
    _OPTIONAL: dict = {}
    # buffers whose content the kernel ignores at a given step (its first_step option): made
    # after step 0, they start at that step as torch's lazily made buffers do
    _STARTED: tuple[str, ...] = ()

    @staticmethod
    def profile_hook_step(func: Callable[..., Any]) -> Callable[..., Any]:
        """torch's wrapper of ``step`` (``torch.optim.Optimizer.profile_hook_step``: the global
        and the optimizer's pre- and post-hooks, a pre-hook's new arguments, the profiler's
        entry point), with its profiler annotation (``Optimizer.step#AdamW.step``) made only
        while a torch profiler runs (``torch.profiler``, ``torch.autograd.profiler``,
        ``emit_nvtx`` / ``emit_itt``): outside one nothing records it, and it costs a step
        ~10 us warm and ~150 us right after a backward pass (torch's optimizers pay it)."""
        annotated = torch.optim.Optimizer.profile_hook_step(func)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if _profiling():
                return annotated(*args, **kwargs)
            self = args[0]
            for pre_hook in chain(_GLOBAL_PRE_HOOKS.values(), self._optimizer_step_pre_hooks.values()):
                result = pre_hook(self, args, kwargs)
                if result is not None:
                    if isinstance(result, tuple) and len(result) == 2:
                        args, kwargs = result
                    else:
                        raise RuntimeError(f"{func} must return None or a tuple of (new_args, new_kwargs), but got "
                                           f"{result}.")
            out = func(*args, **kwargs)
            self._optimizer_step_code()
            for post_hook in chain(self._optimizer_step_post_hooks.values(), _GLOBAL_POST_HOOKS.values()):
                post_hook(self, args, kwargs)
            return out

        return wrapper

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """torch's ``add_param_group``, with the group's options checked as the constructor's
        are (a bad group is refused here, and not added, instead of at every step)."""
        try:
            for key in ("lr", "weight_decay"):
                if key in param_group:
                    param_group[key] = _check_hyper(key, param_group[key])
        except (TypeError, ValueError) as err:
            raise type(err)(f"param_groups[{len(self.param_groups)}]: {err}") from None
        super().add_param_group(param_group)
        try:
            group = self.param_groups[-1]
            # (a group's own differentiable / capturable would be kept and not honoured)
            _no_differentiable(bool(group.get("differentiable", False)), bool(group.get("capturable", False)))
            self._check_options(group)
        except (TypeError, ValueError) as err:
            self.param_groups.pop()
            raise type(err)(f"param_groups[{len(self.param_groups)}]: {err}") from None

    @property
    def _repeats(self) -> dict[int, _Repeat | None]:
        """Group index -> what its last usual step was checked with (``_Repeat``); not in
        the optimizer's state (pickles and copies start without it)."""
        repeats = self.__dict__.get("_group_repeats")
        if repeats is None:
            repeats = self.__dict__["_group_repeats"] = {}
        return repeats

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.__dict__.pop("_group_repeats", None)
        for group in self.param_groups:
            for key, value in self._OPTIONAL.items():
                group.setdefault(key, value)

    @abc.abstractmethod
    def _buffer_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        """The state buffers (torch's keys) a parameter of ``group`` has."""

    @abc.abstractmethod
    def _call(self, group: dict[str, Any], params: list[torch.Tensor], grads: list[torch.Tensor],
              states: list[dict[str, Any]], step: int, grad_scale: Any, first_step: int | None) -> _Prepared:
        """Check one fused call over ``params`` of ``group`` that share the step count
        ``step``, writing nothing; return the function of no arguments that makes it and the
        ``fastdecay._fused.Call`` that checks it again at a later step (``F.prepare``).
        ``first_step``: not None where their ``_STARTED`` buffers were made at this step
        after step 0 (the momentum switched on, or a torch checkpoint's ``None`` buffer):
        their content is ignored, as torch clones the gradient into a buffer it makes."""

    def _state_dtype(self, p: torch.Tensor, group: dict[str, Any], name: str) -> torch.dtype:
        """The dtype of state buffer ``name`` of parameter ``p`` in ``group``: the compensation in
        the parameter's; the others in the group's ``state_dtype``, by default float32 for 16-bit
        parameters (math in float32) and the parameter's dtype otherwise."""
        chosen = group.get("state_dtype")
        if name == _COMPENSATION or (chosen is None and p.dtype not in (torch.float16, torch.bfloat16)):
            return p.dtype
        return torch.bfloat16 if chosen == "bfloat16" else torch.float32

    @staticmethod
    def _precision_arguments(group: dict[str, Any], states: list[dict[str, Any]]) -> dict[str, Any]:
        compensated = group["compensated"]
        return dict(state_dtype=group["state_dtype"], compensated=compensated,
                    compensation_buffer=[s[_COMPENSATION] for s in states] if compensated else None)

    def _precision_buffers(self, group: dict[str, Any]) -> tuple[str, ...]:
        return (_COMPENSATION,) if group.get("compensated") else ()

    @staticmethod
    def _precision_options(state_dtype: Any, compensated: Any) -> tuple[str | None, bool]:
        """(state_dtype as None / "float32" / "bfloat16", compensated as a bool), checked."""
        return F.state_dtype_option(state_dtype), _flag("compensated", compensated)

    def _state_for(self, p: torch.Tensor, group: dict[str, Any], names: tuple[str, ...], state: dict[str, Any] | None,
                   new_state: dict[torch.Tensor, dict[str, Any]], step: torch.Tensor) -> dict[str, Any]:
        """``p``'s state (``state``, or None) completed with every buffer in ``names`` that
        ``group`` needs and the step count ``step`` (where it has none), as a new dict made
        aside in ``new_state`` (committed only once the whole step has been checked)."""
        state = dict(state or {})
        state.setdefault("step", step)
        for name in names:
            if name not in state:
                # zeros laid out as the parameter, as torch makes them; the kernels ignore the content at step 0
                state[name] = torch.zeros_like(p, dtype=self._state_dtype(p, group, name),
                                               memory_format=torch.preserve_format)
        new_state[p] = state
        return state

    def _group_step(self, group: dict[str, Any]) -> int:
        """The group's step count: the largest of its parameters' (0 before the first step)."""
        steps = [int(s["step"]) for s in map(self.state.get, group["params"]) if s and "step" in s]
        return max(steps, default=0)

    def _amp(self) -> tuple[Any, bool]:
        grad_scale = getattr(self, "grad_scale", None)
        found_inf = getattr(self, "found_inf", None)
        if found_inf is not None and float(found_inf) != 0.0:
            return grad_scale, True
        return grad_scale, False

    def _check_in_one_group(self, g: int, group: dict[str, Any]) -> None:
        """ValueError where a parameter of group ``g`` is in another group too (a ``params`` list
        edited in place: torch's constructor and ``add_param_group`` refuse it, and its step
        would then update it twice, one update after the other, where the checked calls of one
        step would both read the state as it was). Run with every full check of a group: a
        list edited in place is never the group's repeated step."""
        if len(self.param_groups) < 2:
            return
        mine = {id(p): i for i, p in enumerate(group["params"])}
        for h, other in enumerate(self.param_groups):
            if h != g:
                for p in other["params"]:
                    if id(p) in mine:
                        raise ValueError(f"param_groups[{g}].params[{mine[id(p)]}] is also in param_groups[{h}]: "
                                         "a parameter belongs to one group (torch's optimizers refuse it when "
                                         "the groups are made); remove it from one of them")

    def _group_calls(self, g: int, group: dict[str, Any], grad_scale: Any, new_state: dict[torch.Tensor, dict[str, Any]],
                     scaled: list[torch.Tensor], rejoined: list[tuple[dict[str, Any], torch.Tensor]]
                     ) -> list[tuple[Callable[[], None], _Counter]]:
        """[(launch, its step counter)] for group ``g``: one checked call per step count (one
        in the usual case, where every parameter has had as many updates); the counter is
        (the one tensor whose elements are the call's step counts, their count) or a list of
        them (see ``_count_steps``). Adds to ``new_state`` the states made, to ``scaled`` the
        gradients a GradScaler's scale divides after the step, to ``rejoined`` the (state, new
        step count) of counts made one tensor's elements; the caller commits them once every
        group is checked."""
        prior = self._repeats.get(g)
        if prior is not None and prior.holds(group):
            repeated = prior.calls(group, self.state.get, grad_scale, scaled)
            if repeated is not None:
                return repeated
        self._check_in_one_group(g, group)
        names = self._buffer_names(group)
        required = frozenset(("step",) + names)  # a state with all of these is used as it is
        state_of = self.state.get
        # once per parameter per step: this is the optimizer's own per-tensor cost. The usual
        # step (every parameter has a gradient laid out as it is, and a complete state) is
        # checked by C-level maps over the lists; anything else takes the loop.
        params: list[torch.Tensor] = group["params"]
        grads: list[torch.Tensor] = list(map(_GRAD, params))
        states: list[Any] = list(map(state_of, params, repeat(_NO_STATE, len(params))))
        try:
            # laid out as their parameters: both contiguous (one C-level bool a tensor, no
            # tuples made) or the same strides
            usual = (not any(map(_IS_SPARSE, grads))
                     and (all(map(_IS_CONTIGUOUS, grads)) and all(map(_IS_CONTIGUOUS, params))
                          or list(map(_STRIDE, grads)) == list(map(_STRIDE, params)))
                     and all(map(required.issubset, states)))
        except (AttributeError, RuntimeError):  # a parameter without a gradient (None), or one without strides
            usual = False
        if usual:
            index: Any = range(len(params))
            fresh: list[int] = []
        else:
            index, params, grads, states, fresh = self._gather(g, group, required)
        if not params:
            return []
        if grad_scale is not None:
            scaled += map(_GRAD, params)  # the parameters' own gradients (``grads`` may hold contiguous copies)
        late: set[int] = set()  # states with a step count given a buffer that starts now (``_STARTED``)
        if fresh:
            # the new states' step counts are 0-d views of one tensor, so that a step adds 1 to
            # all of them in one operation (``_count_steps``)
            new_counts = _new_counts(len(fresh))
            for j, k in enumerate(fresh):
                had = states[k]
                if had is not None and "step" not in had and _updated(had):
                    # buffers without a step count (set by hand, or torch's SGD's state, which keeps
                    # none): one update, as ``load_state_dict`` counts them, not a first step that
                    # would replace them
                    had = dict(had, step=torch.tensor(1.0, dtype=_scalar_dtype()))
                if had is not None and "step" in had and any(n in names and n not in had for n in self._STARTED):
                    late.add(k)
                states[k] = self._state_for(params[k], group, names, had, new_state, new_counts[j])
        steps = list(map(_STEP, states))
        try:
            counts, base = _read_counts(steps)  # one read of every step count
        except (AttributeError, TypeError, RuntimeError):
            counts, base = self._bad_count(g, index, steps), None
        if counts.count(counts[0]) != len(counts) or not _whole_count(counts[0]):
            for k, count in enumerate(counts):
                if not _whole_count(count):
                    raise ValueError(f"the step state of param_groups[{g}].params[{index[k]}] must hold a whole "
                                     f"number of steps from 0 to 2**53, got {count!r}")
        # a group over several GPUs (a model split across devices) takes one call per device
        devices: list[int] | None = None
        if params[0].is_cuda:
            devices = list(map(_GET_DEVICE, params))
            if devices.count(devices[0]) == len(devices):
                devices = None
        # (step count, whether its buffers start at it after step 0, GPU or None) -> the
        # positions of the parameters
        parts: dict[tuple[int, bool, int | None], Any]
        if counts.count(counts[0]) == len(counts) and not late and devices is None:
            parts = {(int(counts[0]), False, None): range(len(params))}
        else:
            parts = {}
            for k, count in enumerate(counts):
                key = (int(count), k in late and count > 0, devices[k] if devices is not None else None)
                parts.setdefault(key, []).append(k)
        calls: list[tuple[Callable[[], None], _Counter]] = []
        for (t, starts, device), part in parts.items():
            first_step = t if starts else None
            scale = grad_scale
            if device is not None and isinstance(scale, torch.Tensor) and scale.get_device() != device:
                scale = scale.to(params[part[0]].device, non_blocking=True)  # as torch's fused step does
            try:
                if len(part) == len(params):  # the usual step: every parameter at one count
                    launch, call = self._call(group, params, grads, states, t, scale, first_step)
                    # the next step, where it is this usual step again, is checked by what can change
                    self._repeats[g] = (_Repeat.of(group, call, first_step)
                                        if params is group["params"] else None)
                else:
                    launch, _ = self._call(group, [params[k] for k in part], [grads[k] for k in part],
                                           [states[k] for k in part], t, scale, first_step)
            except (TypeError, ValueError) as err:
                raise type(err)(self._name_tensors(str(err), g, [index[k] for k in part])) from None
            counter: _Counter
            if len(part) != len(params):  # (a group split over step counts or devices counts each part alone)
                counter = [steps[k] for k in part]
            elif base is not None:
                counter = (base, t)
            else:
                # every count the same, but each its own tensor (loaded from a checkpoint, or some
                # made at a later step): from this step on they are the elements of one tensor of
                # their dtype, counted by one addition and read by one (the step after is a
                # ``_Repeat``); counts of mixed dtypes or off the CPU stay as they are
                joined = _joined_counts(steps, t)
                if joined is None:
                    counter = steps
                else:
                    rejoined += zip(states, joined)
                    counter = (joined, t)
            calls.append((launch, counter))
        return calls

    def _gather(self, g: int, group: dict[str, Any], required: frozenset[str]
                ) -> tuple[list[int], list[torch.Tensor], list[torch.Tensor], list[Any], list[int]]:
        """(index in the group, parameter, gradient, state or None, positions of the states
        to make) of every parameter of group ``g`` with a gradient: the step's parameters
        one by one, gradients laid out unlike their parameters made contiguous."""
        index: list[int] = []
        params: list[torch.Tensor] = []
        grads: list[torch.Tensor] = []
        states: list[Any] = []  # (a parameter's state dict, or None until it is made)
        fresh: list[int] = []
        state_of = self.state.get
        for i, p in enumerate(group["params"]):
            grad = p.grad
            if grad is None:
                continue
            if grad.is_sparse:
                raise TypeError(f"param_groups[{g}].params[{i}].grad must be a dense tensor, got a sparse one "
                                f"({type(self).__name__} does not support sparse gradients)")
            if grad.stride() != p.stride():  # laid out unlike its parameter: contiguous, as the parameter may be
                grad = grad.contiguous()
            state = state_of(p)
            if state is None or not required <= state.keys():
                fresh.append(len(states))
            index.append(i)
            params.append(p)
            grads.append(grad)
            states.append(state)
        return index, params, grads, states, fresh

    @staticmethod
    def _bad_count(g: int, index: Any, steps: list[Any]) -> list[Any]:
        """The step counts of ``steps`` read one by one, or a TypeError naming the first that
        is not a one-element real tensor (a count set by hand)."""
        counts = []
        for k, count in enumerate(steps):
            if not _count_tensor(count):
                raise TypeError(f"the step state of param_groups[{g}].params[{index[k]}] must be a 0-d tensor "
                                f"(as torch's optimizers keep it), got {type(count).__name__}: {count!r}")
            counts.append(count.item())
        return counts

    @staticmethod
    def _name_tensors(message: str, g: int, index: list[int]) -> str:
        """A fused call's error message with its arrays named as the optimizer's tensors."""

        def label(match: re.Match[str]) -> str:
            name, k = match.group(1), int(match.group(2))
            if k >= len(index):
                return match.group(0)
            where = f"param_groups[{g}].params[{index[k]}]"
            if name == "param":
                return where
            if name == "grad":
                return f"{where}.grad"
            return f"the {name} state of {where}"

        named, count = _CALL_LABEL.subn(label, message)
        return named if count else f"param_groups[{g}]: {message}"

    @overload

    def step(self, closure: None = None) -> None: ...

    @overload

    def step(self, closure: Callable[[], float]) -> float: ...

    @_not_compiled
    @_without_grad
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One fused update of every parameter with a gradient; returns the closure's loss.

        Every group is checked before any tensor is written: a refused step changes nothing.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._check_no_torch_scheduler_on_schedules()
        grad_scale, skip = self._amp()
        if skip:
            return loss
        new_state: dict[torch.Tensor, dict[str, Any]] = {}
        scaled: list[torch.Tensor] = []  # the gradients a GradScaler's scale divides after the step
        rejoined: list[tuple[dict[str, Any], torch.Tensor]] = []
        calls = [c for g, group in enumerate(self.param_groups)
                 for c in self._group_calls(g, group, grad_scale, new_state, scaled, rejoined)]
        self.state.update(new_state)
        for state, count in rejoined:
            state["step"] = count
        for launch, _ in calls:
            launch()
        _count_steps([counter for _, counter in calls])
        if grad_scale is not None and scaled:
            _unscale(scaled, grad_scale)
        return loss

    def _check_no_torch_scheduler_on_schedules(self) -> None:
        """TypeError where a torch LR scheduler drives a group whose lr is a schedule: torch's
        schedulers multiply or replace ``group["lr"]`` step by step, which would nest the
        schedule one product deeper a step (or drop it)."""
        for g, group in enumerate(self.param_groups):
            if isinstance(group["lr"], Schedule) and isinstance(group.get("initial_lr"), Schedule):
                raise TypeError(
                    f"param_groups[{g}]['lr'] is a fastdecay schedule, and a torch LR scheduler drives this optimizer "
                    "(it set 'initial_lr'): the schedule already gives every step's rate. Give the optimizer a "
                    "number as lr to use torch's schedulers, or combine schedules in fastdecay (fd.join, fd.warmup, "
                    "a * b)")

    # ------------------------------------------------------------------------- checkpoints

    def _torch_keys(self, packed: dict[str, Any]) -> dict[str, Any]:
        """Group keys torch's own optimizer of this kind reads under another name."""
        return packed

    def _loaded_group(self, packed: Any, where: str) -> dict[str, Any]:
        """A saved group (plain data) as this optimizer's group: schedules decoded, keys torch
        may lack filled in, options checked. ``where`` names it in errors."""
        if not isinstance(packed, dict) or "params" not in packed:
            raise ValueError(f"{where} must be a dict with a 'params' list, got {V.shown(packed)}")
        group = _decode_group(copy.deepcopy(packed), where)
        for key, value in self._OPTIONAL.items():
            group.setdefault(key, value)
        group["differentiable"] = False  # what this optimizer is, whatever the checkpoint's was
        try:
            for key in ("lr", "weight_decay"):
                group[key] = _check_hyper(key, group[key])
            self._check_options(group)
        except KeyError as err:
            raise ValueError(f"{where} must hold {err.args[0]!r}, got the keys {sorted(group)}") from None
        except (TypeError, ValueError) as err:
            raise type(err)(f"{where}: {err}") from None
        return group

    @abc.abstractmethod
    def _check_options(self, group: dict[str, Any]) -> None:
        """The group's options, checked as the constructor checks them."""

    def state_dict(self) -> dict[str, Any]:
        """torch's state dict in plain data: schedules as numbers plus their encodings
        (``"schedules"``), loadable with ``torch.load(..., weights_only=True)`` and by torch's
        own optimizers."""
        # torch runs the post hooks inside its state_dict(): here they run after the encoding,
        # so that they see the plain data that is returned
        hooks = self._optimizer_state_dict_post_hooks
        self._optimizer_state_dict_post_hooks = type(hooks)()
        try:
            state_dict = super().state_dict()
        finally:
            self._optimizer_state_dict_post_hooks = hooks
        state_dict["param_groups"] = [
            self._torch_keys(_encode_group(packed, self._group_step(group)))
            for packed, group in zip(state_dict["param_groups"], self.param_groups)
        ]
        for hook in hooks.values():
            result = hook(self, state_dict)
            if result is not None:
                state_dict = result
        return state_dict

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict of this optimizer or of torch's ``SGD`` / ``Adam`` / ``AdamW``.

        Everything is checked before anything changes; see the module docstring for what is
        filled in where a torch state dict lacks it.
        """
        state_dict = state_dict.copy()
        for pre_hook in self._optimizer_load_state_dict_pre_hooks.values():
            result = pre_hook(self, state_dict)
            if result is not None:
                state_dict = result
        saved_groups = state_dict.get("param_groups")
        saved_state = state_dict.get("state")
        if not isinstance(saved_groups, list) or not isinstance(saved_state, dict):
            raise ValueError("state_dict must be an optimizer state dict with 'state' (a dict) and 'param_groups' "
                             f"(a list), got the keys {sorted(state_dict)}")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"state_dict has {len(saved_groups)} param groups, the optimizer "
                             f"{len(self.param_groups)}")
        groups = []
        for k, (group, packed) in enumerate(zip(self.param_groups, saved_groups)):
            where = f"state_dict['param_groups'][{k}]"
            new = self._loaded_group(packed, where)
            if len(new["params"]) != len(group["params"]):
                raise ValueError(f"{where} has {len(new['params'])} parameters, the optimizer's group "
                                 f"{len(group['params'])}")
            new["params"] = group["params"]
            if "param_names" in group and "param_names" not in new:
                new["param_names"] = group["param_names"]
            groups.append(new)
        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))
        group_of = {id(p): g for g in groups for p in g["params"]}
        state: defaultdict[torch.Tensor, dict[str, Any]] = defaultdict(dict)
        for key, saved in saved_state.items():
            if key not in id_map:
                state[key] = saved
                continue
            p = id_map[key]
            if not isinstance(saved, dict):
                raise ValueError(f"state_dict['state'][{key!r}] must be a dict, got {V.shown(saved)}")
            # (made outside inference mode, which a load under torch.inference_mode() would make
            # them in: the steps after it write them outside)
            with torch.inference_mode(False):
                state[p] = self._loaded_state(p, group_of[id(p)], saved, f"state_dict['state'][{key!r}]")
        self.__setstate__({"state": state, "param_groups": groups})
        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)

    def _loaded_state(self, p: torch.Tensor, group: dict[str, Any], saved: Any, where: str) -> dict[str, Any]:
        """A parameter's saved state (``where`` names it in errors): tensors on its device in the
        state dtype, ``step`` a 0-d CPU tensor (1 where buffers say it was updated but no count was
        kept, as torch's SGD)."""
        state = {}
        for name, value in saved.items():
            if name == "step" or value is None:  # torch's SGD keeps None for a buffer it has not made yet
                continue
            state[name] = value.to(device=p.device, dtype=self._state_dtype(p, group, name)) if (
                isinstance(value, torch.Tensor) and value.is_floating_point()) else value
        if "step" in saved:
            count = saved["step"]
            if not (isinstance(count, numbers.Real) and not isinstance(count, bool) or _count_tensor(count)):
                raise TypeError(f"{where}['step'] must be a step count (a number or a one-element tensor), got "
                                f"{V.shown(count)}")
            step = float(count)
            if not _whole_count(step):
                raise ValueError(f"{where}['step'] must be a whole number of steps from 0 to 2**53, got {step!r}")
        else:
            step = 1.0 if _updated(state) else 0.0
        state["step"] = torch.tensor(step, dtype=_scalar_dtype())
        return state


def _updated(state: dict[str, Any]) -> bool:
    """Whether a parameter's state without a step count has had an update: it holds a buffer
    (torch's SGD keeps no count, and None for a momentum buffer it has not made yet)."""
    return any(isinstance(v, torch.Tensor) for v in state.values())


class SGD(_Fused):
    """torch ``SGD`` through the fused kernel (``fastdecay.sgd_step``); ``lr``, ``weight_decay`` and
    ``momentum`` may be
    schedules (``fd.one_cycle(...).momentum`` for torch's ``cycle_momentum``).

    Arguments as ``torch.optim.SGD(params, lr, momentum, dampening, weight_decay,
    nesterov, *, maximize)``, plus ``decoupled`` (shrink w by 1 - lr*wd instead of
    L2), ``lr_in_buffer`` and ``on_drop`` (see ``fastdecay.sgd_step``).
    ``foreach`` and ``fused`` are accepted for drop-in use and ignored (this is
    always fused). A schedule's step is the number of updates the parameter has
    had (``state["step"]``).

    >>> import torch, fastdecay as fd
    >>> w = torch.nn.Parameter(torch.ones(2))
    >>> opt = SGD([w], lr=fd.step(0.1, 0.5, 1), momentum=0.9)
    >>> for _ in range(2):
    ...     w.grad = torch.ones(2)
    ...     opt.step()
    >>> w.detach()
    tensor([0.8050, 0.8050])
    """

    _STARTED = ("momentum_buffer",)
    _OPTIONAL = dict(nesterov=False, maximize=False, foreach=None, differentiable=False, fused=None,
                     decoupled=False, lr_in_buffer=False, on_drop="keep", state_dtype=None, compensated=False)

    def __init__(self, params: ParamsT, lr: Rate = 1e-3, momentum: Rate = 0, dampening: float = 0,
                 weight_decay: Rate = 0, nesterov: bool = False, *, maximize: bool = False, decoupled: bool = False,
                 lr_in_buffer: bool = False, on_drop: str = "keep", state_dtype: StateDtype = None,
                 compensated: bool = False, foreach: bool | None = None, differentiable: bool = False,
                 fused: bool | None = None) -> None:
        _no_differentiable(differentiable)
        lr = _check_hyper("lr", lr)
        weight_decay = _check_hyper("weight_decay", weight_decay)
        R.sgd_momentum(momentum, dampening, nesterov, on_drop)
        state_dtype, compensated = self._precision_options(state_dtype, compensated)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, decoupled=decoupled, lr_in_buffer=lr_in_buffer,
                        on_drop=on_drop, state_dtype=state_dtype, compensated=compensated, foreach=foreach,
                        differentiable=False, fused=fused)
        super().__init__(params, defaults)

    def _buffer_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        momentum = group["momentum"]
        buffers = FUSED["sgd"].state_keys if isinstance(momentum, Schedule) or momentum != 0 else ()
        return buffers + self._precision_buffers(group)

    def _check_options(self, group: dict[str, Any]) -> None:
        group["momentum"], group["dampening"] = _plain_number(group["momentum"]), _plain_number(group["dampening"])
        R.sgd_momentum(group["momentum"], group["dampening"], group["nesterov"], group["on_drop"])
        for key in ("maximize", "decoupled", "lr_in_buffer"):
            _flag(key, group[key])
        group["state_dtype"], group["compensated"] = self._precision_options(group["state_dtype"], group["compensated"])

    def _call(self, group: dict[str, Any], params: list[torch.Tensor], grads: list[torch.Tensor],
              states: list[dict[str, Any]], step: int, grad_scale: Any, first_step: int | None) -> _Prepared:
        buffers = [s["momentum_buffer"] for s in states] if "momentum_buffer" in self._buffer_names(group) else None
        return F.prepare("sgd", params, grads, dict(momentum_buffer=buffers), step=step, first_step=first_step,
                         lr=group["lr"],
                         weight_decay=group["weight_decay"], grad_scale=grad_scale, found_inf=None,
                         **self._precision_arguments(group, states), momentum=group["momentum"],
                         dampening=group["dampening"], nesterov=group["nesterov"], decoupled=group["decoupled"],
                         maximize=group["maximize"], lr_in_buffer=group["lr_in_buffer"], on_drop=group["on_drop"])


class Adam(_Fused):
    """torch ``Adam`` through the fused kernel (``fastdecay.adamw_step``); ``lr``, ``weight_decay`` and
    ``betas[0]`` may be
    schedules (``fd.one_cycle(...).momentum`` for torch's ``cycle_momentum``).

    Arguments and defaults as ``torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999),
    eps=1e-8, weight_decay=0, amsgrad=False, *, maximize, decoupled_weight_decay=False)``:
    the weight decay is added to the gradient (L2), or with
    ``decoupled_weight_decay=True`` shrinks the weights as AdamW does. ``foreach`` and
    ``fused`` are accepted and ignored. The step with ``m``, ``v`` the moments, n the
    step count after the update, eta = lr(step), lambda = weight_decay(step)::

        g <- g + lambda*w;  m <- beta1*m + (1 - beta1)*g;  v <- beta2*v + (1 - beta2)*g^2
        w <- w - eta/(1 - beta1^n) * m / (sqrt(v)/sqrt(1 - beta2^n) + eps)

    >>> import torch, fastdecay as fd
    >>> w = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    >>> opt = Adam([w], lr=fd.exponential(0.1, gamma=0.5))
    >>> for _ in range(2):
    ...     w.grad = torch.tensor([1.0, -1.0], dtype=torch.float64)
    ...     opt.step()
    >>> w.detach()
    tensor([0.8500, 1.1500], dtype=torch.float64)
    """

    _OPTIONAL = dict(amsgrad=False, maximize=False, foreach=None, capturable=False, differentiable=False, fused=None,
                     state_dtype=None, compensated=False)
    _DECOUPLED = False  # the form a state dict without fastdecay's "decoupled" key gets (torch's Adam)

    def __init__(self, params: ParamsT, lr: Rate = 1e-3, betas: Betas = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: Rate = 0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False, state_dtype: StateDtype = None, compensated: bool = False,
                 foreach: bool | None = None, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None) -> None:
        _flag("decoupled_weight_decay", decoupled_weight_decay)  # (the groups call it "decoupled")
        self._init(params, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay, state_dtype,
                   compensated, foreach, capturable, differentiable, fused)

    def _init(self, params: ParamsT, lr: Rate, betas: Betas, eps: float, weight_decay: Rate, amsgrad: bool,
              maximize: bool, decoupled: bool, state_dtype: StateDtype, compensated: bool, foreach: bool | None,
              capturable: bool, differentiable: bool, fused: bool | None) -> None:
        _no_differentiable(differentiable, capturable)
        lr = _check_hyper("lr", lr)
        weight_decay = _check_hyper("weight_decay", weight_decay)
        _, beta2, _ = R.adam_betas(betas, eps)  # beta1 checked too, a number or a scalar schedule
        beta1 = betas[0] if isinstance(betas[0], Schedule) else float(betas[0])
        state_dtype, compensated = self._precision_options(state_dtype, compensated)
        defaults = dict(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled=decoupled, state_dtype=state_dtype, compensated=compensated,
                        foreach=foreach, capturable=False, differentiable=False, fused=fused)
        super().__init__(params, defaults)

    def _buffer_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        fused = FUSED["adam"]
        moments = tuple(key for key in fused.state_keys if group["amsgrad"] or key not in fused.optional)
        return moments + self._precision_buffers(group)

    def _check_options(self, group: dict[str, Any]) -> None:
        if not isinstance(group["betas"], (tuple, list)) or len(group["betas"]) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2) of numbers in [0, 1), got {V.shown(group['betas'])}")
        group["betas"], group["eps"] = tuple(map(_plain_number, group["betas"])), _plain_number(group["eps"])
        R.adam_betas(group["betas"], group["eps"])
        for key in ("amsgrad", "maximize", "decoupled"):
            _flag(key, group[key])
        group["state_dtype"], group["compensated"] = self._precision_options(group["state_dtype"], group["compensated"])

    def _loaded_group(self, packed: Any, where: str) -> dict[str, Any]:
        packed = dict(packed) if isinstance(packed, dict) else packed
        if isinstance(packed, dict) and "decoupled" not in packed:
            # torch's key; torch's AdamW always decouples, whatever the state dict says
            packed["decoupled"] = True if self._DECOUPLED else bool(packed.get("decoupled_weight_decay", False))
        group = super()._loaded_group(packed, where)
        group.pop("decoupled_weight_decay", None)
        group["capturable"] = False
        return group

    def _torch_keys(self, packed: dict[str, Any]) -> dict[str, Any]:
        packed["decoupled_weight_decay"] = packed["decoupled"]
        return packed

    def _call(self, group: dict[str, Any], params: list[torch.Tensor], grads: list[torch.Tensor],
              states: list[dict[str, Any]], step: int, grad_scale: Any, first_step: int | None) -> _Prepared:
        amsgrad = group["amsgrad"]
        state = dict(exp_avg=[s["exp_avg"] for s in states], exp_avg_sq=[s["exp_avg_sq"] for s in states],
                     max_exp_avg_sq=[s["max_exp_avg_sq"] for s in states] if amsgrad else None)
        return F.prepare("adam", params, grads, state, step=step, lr=group["lr"], weight_decay=group["weight_decay"],
                         grad_scale=grad_scale, found_inf=None, **self._precision_arguments(group, states),
                         betas=group["betas"], eps=group["eps"], decoupled=group["decoupled"],
                         maximize=group["maximize"], amsgrad=amsgrad)


class AdamW(Adam):
    """torch ``AdamW`` (``decoupled=False``: torch ``Adam``) through the fused kernel
    (``fastdecay.adamw_step``); ``lr``, ``weight_decay`` and ``betas[0]`` may be schedules.

    Arguments as ``torch.optim.AdamW(params, lr, betas, eps, weight_decay, amsgrad,
    *, maximize)``; ``foreach`` and ``fused`` are accepted and ignored.
    ``weight_decay=fd.constant_shrinkage(lr, wd)`` keeps lr*wd constant.

    >>> import torch, fastdecay as fd
    >>> w = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    >>> opt = AdamW([w], lr=fd.exponential(0.1, gamma=0.5), weight_decay=0.2)
    >>> for _ in range(2):
    ...     w.grad = torch.tensor([1.0, -1.0], dtype=torch.float64)
    ...     opt.step()
    >>> w.detach()
    tensor([0.8212, 1.1192], dtype=torch.float64)
    """

    _DECOUPLED = True

    def __init__(self, params: ParamsT, lr: Rate = 1e-3, betas: Betas = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: Rate = 1e-2, amsgrad: bool = False, *, maximize: bool = False, decoupled: bool = True,
                 state_dtype: StateDtype = None, compensated: bool = False, foreach: bool | None = None,
                 capturable: bool = False, differentiable: bool = False, fused: bool | None = None) -> None:
        self._init(params, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled, state_dtype, compensated,
                   foreach, capturable, differentiable, fused)


class Lion(_Fused):
    """Lion (Chen et al. 2023) through the fused kernel (``fastdecay.lion_step``); ``lr``,
    ``weight_decay`` and ``betas[0]`` may be schedules.

    Arguments and defaults as lion-pytorch's ``Lion(params, lr=1e-4, betas=(0.9, 0.99),
    weight_decay=0.0)`` (torch has no Lion), plus ``maximize``, ``state_dtype`` and
    ``compensated``; ``foreach`` and ``fused`` are accepted and ignored. State key
    ``exp_avg`` (the moment m). The step, eta = lr(step), lambda = weight_decay(step)::

        w <- w*(1 - eta*lambda);  w <- w - eta*sign(beta1*m + (1 - beta1)*g)
        m <- beta2*m + (1 - beta2)*g

    >>> import torch, fastdecay as fd
    >>> w = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    >>> opt = Lion([w], lr=fd.step(0.1, 0.5, 1))
    >>> for _ in range(2):
    ...     w.grad = torch.tensor([1.0, -1.0], dtype=torch.float64)
    ...     opt.step()
    >>> w.detach()
    tensor([0.8500, 1.1500], dtype=torch.float64)
    """

    _OPTIONAL = dict(maximize=False, foreach=None, differentiable=False, fused=None, state_dtype=None,
                     compensated=False)

    def __init__(self, params: ParamsT, lr: Rate = 1e-4, betas: Betas = (0.9, 0.99), weight_decay: Rate = 0.0, *,
                 maximize: bool = False, state_dtype: StateDtype = None, compensated: bool = False,
                 foreach: bool | None = None, differentiable: bool = False, fused: bool | None = None) -> None:
        _no_differentiable(differentiable)
        lr = _check_hyper("lr", lr)
        weight_decay = _check_hyper("weight_decay", weight_decay)
        _, beta2 = R.lion_betas(betas)  # beta1 checked too, a number or a scalar schedule
        beta1 = betas[0] if isinstance(betas[0], Schedule) else float(betas[0])
        state_dtype, compensated = self._precision_options(state_dtype, compensated)
        defaults = dict(lr=lr, betas=(beta1, beta2), weight_decay=weight_decay, maximize=_flag("maximize", maximize),
                        state_dtype=state_dtype, compensated=compensated, foreach=foreach, differentiable=False,
                        fused=fused)
        super().__init__(params, defaults)

    def _buffer_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return FUSED["lion"].state_keys + self._precision_buffers(group)

    def _check_options(self, group: dict[str, Any]) -> None:
        group["betas"] = tuple(map(_plain_number, group["betas"]))
        R.lion_betas(group["betas"])
        _flag("maximize", group["maximize"])
        group["state_dtype"], group["compensated"] = self._precision_options(group["state_dtype"], group["compensated"])

    def _call(self, group: dict[str, Any], params: list[torch.Tensor], grads: list[torch.Tensor],
              states: list[dict[str, Any]], step: int, grad_scale: Any, first_step: int | None) -> _Prepared:
        return F.prepare("lion", params, grads, dict(exp_avg=[s["exp_avg"] for s in states]), step=step,
                         lr=group["lr"], weight_decay=group["weight_decay"], grad_scale=grad_scale, found_inf=None,
                         **self._precision_arguments(group, states), betas=group["betas"], maximize=group["maximize"])


# ----------------------------------------------------------------------------- schedulers


class LRScheduler(_TorchLRScheduler):
    """A torch LR scheduler that sets every group's lr to ``schedule(last_epoch)``.

    For torch's own optimizers (and any ``torch.optim.Optimizer``): the rate is
    the closed form at the scheduler's step count, so resuming from
    ``state_dict()`` at any step (``load_state_dict`` puts that step's rate into
    an optimizer whose lr it still holds, such as a fresh one), or constructing
    with ``last_epoch=k``, gives exactly the rate a run that never stopped has.
    ``schedule`` is one scalar schedule, for every param group (also those added to the
    optimizer later), or a list of them, one per param group.
    The state dict holds the schedules as plain data (see the module docstring),
    so it loads with ``weights_only=True``.

    It sets the rate outright, as torch's ``LambdaLR`` does: in ``SequentialLR``
    it runs up to its milestone like any scheduler (the next one starts from the
    optimizer's base rate ``initial_lr``); in ``ChainedScheduler``, or under
    ``ReduceLROnPlateau``, a factor another scheduler applies after it scales one
    step's rate and is replaced at the next step, as after ``LambdaLR`` (to cut a
    schedule for good, give the optimizer the schedule as its lr and use
    :class:`ReduceLROnPlateau`). An lr that is already a schedule in a fastdecay
    optimizer is replaced by the rates of this one, as ``OneCycleLR`` replaces it.

    >>> import torch, fastdecay as fd
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=1.0)
    >>> sched = LRScheduler(opt, fd.step(0.1, 0.5, 2))
    >>> for _ in range(3):
    ...     opt.step()
    ...     sched.step()
    >>> sched.get_last_lr()
    [0.05]
    """

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: Schedule | list[Schedule] | tuple[Schedule, ...],
                 last_epoch: int = -1) -> None:
        if not isinstance(last_epoch, (int, np.integer)) or isinstance(last_epoch, bool):
            raise TypeError(f"last_epoch must be an integer step (-1: none taken yet), got {V.shown(last_epoch)}")
        if last_epoch < -1:
            raise ValueError(f"last_epoch must be >= -1, got {V.shown(last_epoch)}")
        last_epoch = int(last_epoch)
        groups = len(optimizer.param_groups)
        self._for_every_group = not isinstance(schedule, (list, tuple))
        schedules = list(schedule) if isinstance(schedule, (list, tuple)) else [schedule] * groups
        if len(schedules) != groups:
            raise ValueError(f"schedule must be one schedule or one per param group ({groups}), got {len(schedules)}")
        for k, s in enumerate(schedules):
            if not isinstance(s, Schedule):
                raise TypeError(f"schedule[{k}] must be a fastdecay Schedule, got {V.shown(s)}")
            if s.batch_shape != ():
                raise ValueError(f"schedule[{k}] must be a scalar schedule, got batch_shape {s.batch_shape}")
        self.schedules = schedules
        for group, s in zip(optimizer.param_groups, schedules):
            # the optimizer's base rate, as torch's schedulers set it: a torch scheduler chained
            # after this one (SequentialLR) starts from it (torch also asks for the key to resume
            # at last_epoch=k; the closed form does not need it)
            base = group["lr"]
            if isinstance(base, Schedule):
                base = s(0)
            elif isinstance(base, torch.Tensor):
                base = base.detach().clone()  # (torch writes a tensor lr in place: the base must not follow it)
            group.setdefault("initial_lr", base)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float | torch.Tensor]:
        """Every group's rate at the scheduler's step count."""
        groups = len(self.optimizer.param_groups)
        if len(self.schedules) != groups:
            if not getattr(self, "_for_every_group", False):
                raise ValueError(f"the optimizer has {groups} param groups and this scheduler a schedule for "
                                 f"{len(self.schedules)}: a scheduler made with a list of schedules does not "
                                 f"follow param groups added later (make it with one schedule, or a new one)")
            self.schedules = [self.schedules[0]] * groups  # (one schedule: the groups added since too)
        return [cast(float, s(max(self.last_epoch, 0))) for s in self.schedules]  # scalar schedules: floats

    def _get_closed_form_lr(self) -> list[float | torch.Tensor]:
        return self.get_lr()

    def state_dict(self) -> dict[str, Any]:
        state = _plain_numbers(super().state_dict())
        state["schedules"] = [_encode_schedule(s) for s in self.schedules]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the scheduler and set the restored step's rate in every group whose lr
        is still the one this scheduler set (a fresh optimizer, or one whose state was not
        loaded); a group whose lr came from elsewhere since (the optimizer's own state
        dict, another scheduler of a ``SequentialLR`` or ``ChainedScheduler``) keeps it."""
        state_dict = dict(state_dict)
        encoded = state_dict.pop("schedules", None)
        if encoded is not None:
            if not isinstance(encoded, list) or len(encoded) != len(self.optimizer.param_groups):
                raise ValueError(f"state_dict['schedules'] must hold one schedule per param group "
                                 f"({len(self.optimizer.param_groups)}), got {V.shown(encoded)}")
            state_dict["schedules"] = [_decode_schedule(e, f"state_dict['schedules'][{k}]")
                                       for k, e in enumerate(encoded)]
        held = list(zip(self.optimizer.param_groups, self._last_lr))  # (each group, the rate this scheduler set)
        super().load_state_dict(state_dict)
        rates = self.get_lr()
        for (group, ours), rate in zip(held, rates):
            # a group whose lr came from elsewhere since this scheduler set it (the optimizer's
            # own state dict, another scheduler of a SequentialLR / ChainedScheduler) keeps it,
            # as with torch's schedulers: it may be the product of several
            if _same_rate(group["lr"], ours):
                _set_rate(group, rate)
        self._last_lr = rates


def _plain_numbers(state: dict[str, Any]) -> dict[str, Any]:
    """A scheduler's state dict with its NumPy numbers (and those of its lists) as Python ones."""
    return {key: [_plain_number(v) for v in value] if isinstance(value, list) else _plain_number(value)
            for key, value in state.items()}


def _same_rate(lr: Any, rate: Any) -> bool:
    """Whether a group's ``lr`` (a number, a tensor or a schedule) is the number ``rate``."""
    if isinstance(lr, Schedule) or isinstance(rate, Schedule):
        return lr is rate
    if isinstance(lr, torch.Tensor) or isinstance(rate, torch.Tensor):
        return bool(torch.as_tensor(lr) == torch.as_tensor(rate))  # (in the tensor's dtype, as torch fills it)
    return bool(lr == rate)


def _set_rate(group: dict[str, Any], rate: float | torch.Tensor) -> None:
    """``group["lr"] = rate``, writing a tensor lr in place as torch's schedulers do (a compiled
    step reads the same tensor)."""
    lr = group["lr"]
    if isinstance(lr, torch.Tensor):
        lr.fill_(rate)
    else:
        group["lr"] = rate


def _scaled(schedule: Schedule, factor: float) -> Schedule:
    """``schedule * factor``; a product whose last factor is a scalar constant takes the
    factor into that constant, so repeated cuts stay one factor."""
    factors = schedule.params.get("schedules") if schedule.kind == "product" else None
    if factors and factors[-1].kind == "constant" and factors[-1].batch_shape == ():
        return product(*factors[:-1], factors[-1](0) * factor)
    return product(schedule, factor)


class ReduceLROnPlateau(_TorchReduceLROnPlateau):
    """torch ``ReduceLROnPlateau`` whose cuts compose with a scheduled lr.

    Same arguments (``mode, factor, patience, threshold, threshold_mode, cooldown,
    min_lr, eps``), the same decisions and the same state dict as torch's. A cut
    multiplies a group's lr by ``factor``: a number as torch does (so with a
    constant rate the rates are torch's, bit for bit, on torch's optimizers too),
    a schedule into the product schedule ``schedule * factor``, read in the fused
    kernel like any schedule (warmup + cosine + plateau cuts compose; repeated cuts
    stay one constant factor). The cut factor thus lives in the optimizer's param
    group and is saved with the optimizer's state dict (as plain data).

    As in torch, ``min_lr`` and ``eps`` judge the group's current rate: for a
    schedule, its rate at the group's step count, r = lr(t); the cut makes it
    max(r * factor, min_lr) and is skipped when that is within ``eps`` of r. A
    schedule that decays further later may go below ``min_lr``, as torch's rate
    does when ReduceLROnPlateau is combined with another scheduler.

    >>> import torch, fastdecay as fd
    >>> from fastdecay.torch import SGD
    >>> w = torch.nn.Parameter(torch.zeros(2))
    >>> opt = SGD([w], lr=fd.cosine(0.1, 100))
    >>> plateau = ReduceLROnPlateau(opt, factor=0.5, patience=1)
    >>> for loss in [1.0, 1.0, 1.0]:
    ...     plateau.step(loss)
    >>> [round(opt.param_groups[0]["lr"](t), 6) for t in (0, 50)]
    [0.05, 0.025]
    """

    def __init__(self, optimizer: torch.optim.Optimizer, mode: Literal["min", "max"] = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: Literal["rel", "abs"] = "rel",
                 cooldown: int = 0, min_lr: list[float] | float = 0, eps: float = 1e-8) -> None:
        super().__init__(optimizer, mode=mode, factor=factor, patience=patience, threshold=threshold,
                         threshold_mode=threshold_mode, cooldown=cooldown, min_lr=min_lr, eps=eps)
        self._last_lr = self._rates()

    def _rate(self, group: dict[str, Any]) -> float:
        """The group's current rate: its lr, or its lr schedule at the group's step count."""
        lr = group["lr"]
        if isinstance(lr, Schedule):
            return cast(float, lr(cast(_Fused, self.optimizer)._group_step(group)))  # (a scalar schedule)
        return float(lr)

    def _rates(self) -> list[float | torch.Tensor]:
        return [self._rate(group) for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """torch's state dict, its numbers plain Python ones (``factor=np.float64(0.5)``, a
        NumPy ``min_lr``: ``weights_only=True`` loads it)."""
        return _plain_numbers(super().state_dict())

    def step(self, metrics: SupportsFloat, epoch: int | None = None) -> None:  # type: ignore[override]
        super().step(metrics, epoch)
        self._last_lr = self._rates()

    def _reduce_lr(self, epoch: Any) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(f"the optimizer has {len(groups)} param groups, min_lr has {len(self.min_lrs)} "
                                   "values (one per group when ReduceLROnPlateau was made): set min_lrs to match")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old = self._rate(group)
            new = max(old * self.factor, min_lr)
            if old - new <= self.eps:
                continue
            lr = group["lr"]
            if isinstance(lr, Schedule):
                group["lr"] = _scaled(lr, self.factor if new == old * self.factor else new / old)
            elif isinstance(lr, torch.Tensor):
                lr.fill_(new)
            else:
                group["lr"] = new
