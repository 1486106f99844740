"""Checked fused calls: what ``fastdecay.updates`` and ``fastdecay.torch`` share.

A fused call is checked completely before anything is written: the scalars
here (step, grad_scale, found_inf, the rule's options, the schedules' tables),
the arrays in ``fastdecay._update_plan`` (a *launch plan*: every array checked
once, grouped by storage dtypes, the address table built; cached and re-checked
cheaply on later calls with the same arrays). ``checked`` returns the launch,
a function of no arguments, so that ``fastdecay.torch`` checks every param
group before it writes any. Nothing here names a rule: the rule's row in
``fastdecay._rules.FUSED`` checks its options (``Fused.check``) and says which
state buffers it reads. The launch hands each group of the plan to the backend
``fastdecay._dispatch.kernels`` picks: ``fastdecay._cpu.updates`` for NumPy
arrays and CPU torch tensors, ``fastdecay._gpu.updates`` (imported only for
device arrays) for CuPy arrays and CUDA torch tensors. The internal call
shape, identical for both::

    fused_group(kernel, group, arrays, *, step, tables, options, compensated,
                grad_scale, found_inf)

- ``kernel``: the key of the update's row in ``fastdecay._rules.FUSED``.
- ``group``: a ``fastdecay._update_plan.Group``: parameter and state dtype names,
  the int64 address table (rows: parameter, gradient, three state buffers,
  compensation buffer; 0 where absent; ``fastdecay._rules`` names the state
  rows of each update), element counts; ``arrays``: the call's parameters (the
  GPU backend takes torch's stream from them).
- ``step``: a Python int in [0, 2**53], or a 0-d integer (or integral float)
  array on the parameters' device, read inside the kernel.
- ``tables``: (lr, weight decay, the row's ``scheduled`` coefficient: momentum or
  beta1), read-only float64 NumPy arrays ``(1, segments, WIDTH)``
  (``fastdecay._layout``), row 0 the scalar schedule (a constant one for a number).
- ``options``: the values of the row's ``options`` in order, checked: Python
  floats ("f64"), bools ("bool") and ints ("i32", e.g. the on_drop code).
- ``compensated``: a Python bool (the plan then holds the compensation buffers).
- ``grad_scale``, ``found_inf``: None, a Python float, or a 0-d / 1-element
  array on the device; a nonzero ``found_inf`` makes the call write nothing.
"""

import functools
import math
import numbers
import sys
from itertools import chain

import numpy as np

from . import _rules as R
from . import _update_plan as P
from . import _validate as V
from ._dispatch import NUMPY, TORCH_CPU, backend_of, is_torch, kernels, torch_storage_problem

# ----------------------------------------------------------------------------- scalar validation
# (numbers, flags and rates: fastdecay._validate; the rules' options: fastdecay._rules)


def _device_scalar(name, value, backend):
    """``step``/``grad_scale``/``found_inf`` given as an array: 0-d (or one element), right device."""
    if is_torch(value):
        problem = torch_storage_problem(value)
        if problem is not None:
            raise TypeError(f"{name} must be a number or {problem}")
    b = backend_of(value)
    if b != backend and not (b in (NUMPY, TORCH_CPU) and backend in (NUMPY, TORCH_CPU)):
        raise TypeError(f"{name} must be a number or an array on the parameters' device ({backend}), "
                        f"got {b}: {V.shown(value)}")
    size = value.numel() if hasattr(value, "numel") else value.size
    if size != 1 or value.ndim > 1:
        raise ValueError(f"{name} must be a scalar (0-d or one-element array), got shape {tuple(value.shape)}")
    return value


MAX_STEP = V.MAX_STEP  # steps are float64 inside the kernels: every integer up to here is exact

# the dtypes of a scalar on a device that the GPU kernels read (``_gpu._plan.SCALAR_CODES``);
# found_inf as a flag too (torch's is float32; a mask's bool, uint8 read as bool)
_DEVICE_SCALARS = ("int32", "int64", "float32", "float64")
_DEVICE_FLAGS = _DEVICE_SCALARS + ("bool", "uint8")


def _on_device_as(name, value, allowed):
    """``value`` (a scalar on a device, read there by the kernels) where its dtype is one of
    ``allowed``, else TypeError naming ``name`` (before anything is launched or written)."""
    dtype = str(value.dtype).removeprefix("torch.")
    if dtype not in allowed:
        raise TypeError(f"{name} on the device must be of dtype {', '.join(allowed[:-1])} or {allowed[-1]}, "
                        f"got dtype {dtype}")
    return value


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...{text[-8:]} ({len(text)} digits)"


def _step(value, backend):
    """A non-negative int, or (device backends) a 0-d array passed through."""
    if type(value) is int and 0 <= value <= MAX_STEP:
        return value
    if isinstance(value, (bool, np.bool_, np.timedelta64)):  # (NumPy counts a time span as an integer)
        raise TypeError(f"step must be an integer, got {V.shown(value)}")
    if isinstance(value, numbers.Integral):
        if not 0 <= value <= MAX_STEP:
            raise ValueError(f"step must be an integer from 0 to 2**53, got {_short(value)}")
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, np.ndarray):
        raise TypeError(f"step must be an integer or a 0-d integer array, got {V.shown(value)}")
    if not hasattr(value, "ndim"):
        raise TypeError(f"step must be an integer or a 0-d integer array, got {V.shown(value)}")
    value = _device_scalar("step", value, backend)
    kind = str(value.dtype)
    integral = kind.startswith(("int", "uint", "torch.int", "torch.uint"))
    floating = "float" in kind
    if not (integral or floating):
        raise TypeError(f"step must be an integer or a 0-d integer array, got dtype {value.dtype}")
    if backend in (NUMPY, TORCH_CPU):
        x = value.item()
        if floating and not (np.isfinite(x) and x == int(x)):
            raise ValueError(f"step must hold an integer, got {V.shown(x)}")
        if not 0 <= x <= MAX_STEP:
            raise ValueError(f"step must be an integer from 0 to 2**53, got {V.shown(x)}")
        return int(x)
    return _on_device_as("step", value, _DEVICE_SCALARS)  # read on the device, inside the kernel


def _optional_scalar(name, value, backend, *, positive):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a number or a scalar array, got {V.shown(value)}")
    if isinstance(value, numbers.Real):
        x = float(value)
    elif hasattr(value, "ndim"):
        value = _device_scalar(name, value, backend)
        if backend not in (NUMPY, TORCH_CPU):  # (a grad_scale of True would divide by 1, False by 0)
            return _on_device_as(name, value, _DEVICE_SCALARS if positive else _DEVICE_FLAGS)
        # complex and datetime values refused by name; found_inf may be inf or NaN (nonzero: skip)
        x = V.real(name, value) if positive else float(V.real_dtype_array(name, value).reshape(-1)[0])
    else:
        raise TypeError(f"{name} must be a number or a scalar array, got {V.shown(value)}")
    if positive and not (np.isfinite(x) and x > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {V.shown(value)}")
    return x


def _call_scalars(step, grad_scale, found_inf, backend):
    """``step``, ``grad_scale`` and ``found_inf`` as the internal call takes them."""
    return (_step(step, backend), _optional_scalar("grad_scale", grad_scale, backend, positive=True),
            _optional_scalar("found_inf", found_inf, backend, positive=False))


# ----------------------------------------------------------------------------- arrays and launches


def _as_list(name, value, listed, count):
    """``value`` as a list of ``count`` arrays (``listed``: the parameters came as a list)."""
    if listed:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be a list like param (a list of {count} arrays), got {type(value).__name__}")
        if len(value) != count:
            raise ValueError(f"{name} must hold {count} arrays, one per parameter, got {len(value)}")
        return value
    if isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a single array like param, got a {type(value).__name__}")
    return [value]


def state_dtype_option(value):
    """``state_dtype``: None, "float32" or "bfloat16" (a torch or NumPy dtype of those names too)."""
    if value is None:
        return None
    if isinstance(value, str):
        name = value
    elif isinstance(value, type) and issubclass(value, np.generic):
        name = np.dtype(value).name  # np.float32, ml_dtypes.bfloat16: the scalar type names its dtype
    else:
        name = str(getattr(value, "name", value)).replace("torch.", "")
    if name not in P.STATE_DTYPES:
        raise ValueError(f"state_dtype must be None, 'float32' or 'bfloat16', got {V.shown(value)}")
    return name


def _backend(first, name):
    b = backend_of(first)
    if b == NUMPY and not isinstance(first, np.ndarray):
        raise TypeError(f"{name} must be a NumPy, CuPy or torch array, got {type(first).__name__}: {V.shown(first)}")
    return b


def _plan(rule_key, param, named, state_dtype):
    """(plan, streams) of a call: ``named`` is [(name, value, row, role, needed)] after the
    parameters, ``needed`` None for a stream the options leave out, else why it is needed."""
    listed = isinstance(param, (list, tuple))
    params = param if listed else [param]
    streams = [("param", 0, params, "param")]
    for name, value, row, role, needed in named:
        if needed is None:
            continue
        if value is None:
            raise ValueError(f"{name} is required here ({needed}), got None")
        streams.append((name, row, _as_list(name, value, listed, len(params)), role))
    if not params:  # an empty list: nothing to do (the other lists are empty too, checked above)
        return None, None
    backend = _backend(params[0], "param[0]" if listed else "param")
    return P.plan_for(backend, listed, streams, state_dtype, rule_key), streams


def _contiguous_copy(x):
    if isinstance(x, np.ndarray):
        return np.ascontiguousarray(x)
    if hasattr(x, "contiguous"):
        return x.contiguous()
    return sys.modules["cupy"].ascontiguousarray(x)


def _copy_back(x, temp):
    if temp is x:
        return
    if isinstance(x, np.ndarray):
        x[...] = temp
    elif hasattr(x, "detach"):
        x.detach().copy_(temp)
    else:
        x[...] = temp


def _run(plan, streams, launch):
    """Launch every group of ``plan``, then the copied tensors (copy in, update, copy back);
    ``launch(group, arrays_for_context)`` runs one group."""
    params = streams[0][2]
    for group in plan.groups:
        launch(group, params)
    if not plan.copied:
        return
    temps = [[_contiguous_copy(arrays[k]) for k in plan.copied] for _, _, arrays, _ in streams]
    temp_streams = [(name, row, column, role) for (name, row, _, role), column in zip(streams, temps)]
    copy_plan = P.build(plan.backend, True, temp_streams, [plan.state_of[k] for k in plan.copied])
    for group in copy_plan.groups:
        launch(group, temps[0])
    for (_, _, arrays, role), column in zip(streams, temps):
        if role != "grad":
            for k, temp in zip(plan.copied, column):
                _copy_back(arrays[k], temp)


def _bump_versions(plan, streams):
    """Tell autograd that torch tensors were written in place (the kernels write through raw
    pointers, which torch cannot see), as torch's own in-place optimizers do."""
    if plan.torch:
        sys.modules["torch"].autograd.graph.increment_version(
            list(chain.from_iterable(arrays for _, _, arrays, role in streams if role != "grad")))


# ----------------------------------------------------------------------------- checked calls


def _streams(kernel, grad, state, needed, compensation_buffer, compensated):
    """[(name, value, row, role, needed)] after the parameters: the gradient, the state buffers
    of ``fastdecay._rules.FUSED[kernel]`` (``state`` and ``needed`` by torch key; ``needed``
    None for a buffer the options leave out, else why it is needed), the compensation."""
    return ([("grad", grad, R.GRAD_ROW, "grad", "always")]
            + [(key, state.get(key), row, "state", needed.get(key)) for key, row in R.FUSED[kernel].state]
            + [("compensation_buffer", compensation_buffer, R.COMP_ROW, "comp",
                "compensated=True" if compensated else None)])


def _option_key(value):
    """A key under which an option value gives one ``Fused.check`` result: its type with it
    (``True`` and ``1``, ``0.9`` and ``np.float64(0.9)`` are checked apart) and the sign of a
    zero; a TypeError for a value not worth remembering (schedules, arrays)."""
    kind = type(value)
    if kind is bool or value is None:
        return value  # (True, False, None: one object each)
    if kind is float:
        return kind, value, math.copysign(1.0, value)
    if kind is int or kind is str:
        return kind, value
    if kind is tuple or kind is list:
        return kind, tuple(map(_option_key, value))
    raise TypeError(kind)


_CHECKED: dict = {}  # (kernel, option names, option keys) -> Checked: a training loop's options, checked once


def _checked_options(fused, options):
    """``fused.check(**options)``, remembered for plain option values (numbers, flags and
    tuples of them: the same values always pass or fail alike); schedules are checked on
    every call."""
    try:
        key = (fused.kernel, tuple(options), tuple(map(_option_key, options.values())))
    except TypeError:
        return fused.check(**options)
    rule = _CHECKED.get(key)
    if rule is None:
        rule = fused.check(**options)  # (a refused option raises here, and nothing is kept)
        if len(_CHECKED) >= 256:
            _CHECKED.clear()
        _CHECKED[key] = rule
    return rule


def checked(kernel, param, grad, state, **arguments):
    """Check a call of the fused update ``fastdecay._rules.FUSED[kernel]`` completely, writing
    nothing; return the function of no arguments that makes it (``fastdecay.torch`` checks
    every group before it writes). ``state``: the state buffers by torch key (a list of
    arrays each when ``param`` is a list); ``arguments``: ``step``, ``lr``, ``weight_decay``,
    ``grad_scale``, ``found_inf``, ``state_dtype``, ``compensated``, ``compensation_buffer``,
    ``first_step`` (where the rule has that option, SGD's momentum buffer: the step its buffers
    start at instead of the options' own, for a buffer ``fastdecay.torch`` makes after step 0)
    and the rule's public keyword options, checked by its row's checker."""
    return prepare(kernel, param, grad, state, **arguments)[0]


def prepare(kernel, param, grad, state, *, step, lr, weight_decay, grad_scale, found_inf, state_dtype, compensated,
            compensation_buffer, first_step=None, **options):
    """``checked``'s launch and the ``Call`` that checks the same call again at a later step
    by what can have changed (None for a call over no parameters)."""
    fused = R.FUSED[kernel]
    rule = _checked_options(fused, options)
    compensated = _compensation(compensated, compensation_buffer)
    state_dtype = state_dtype_option(state_dtype)
    tables = (V.rate_table("lr", lr), V.rate_table("weight_decay", weight_decay), rule.table)
    named = _streams(kernel, grad, state, rule.needed, compensation_buffer, compensated)
    plan, streams = _plan((kernel,), param, named, state_dtype)
    backend = plan.backend if plan is not None else NUMPY
    t, grad_scale, found_inf = _call_scalars(step, grad_scale, found_inf, backend)
    if plan is None:
        return _nothing, None
    call = Call(kernel, rule, plan, streams, lr, weight_decay, tables, compensated, first_step)
    return call.launch(streams, t, grad_scale, found_inf), call


class Call:
    """A checked fused call over one launch plan, kept by a caller that makes the same call step
    after step (``fastdecay.torch``'s optimizers): ``again`` checks it with new gradients, another
    step count, scalars and rates by what can have changed since, without the option checks, the
    rate tables, the stream lists and the plan cache's key. Holds no array."""

    __slots__ = ("kernel", "rule", "plan", "layout", "lr", "weight_decay", "tables", "compensated", "first_step")

    def __init__(self, kernel, rule, plan, streams, lr, weight_decay, tables, compensated, first_step):
        self.kernel, self.rule, self.plan = kernel, rule, plan
        self.layout = [(name, row, role) for name, row, _, role in streams]
        self.lr, self.weight_decay, self.tables = lr, weight_decay, tables
        self.compensated, self.first_step = compensated, first_step

    def launch(self, streams, t, grad_scale, found_inf):
        """The function of no arguments that launches this call over ``streams`` at step ``t``."""
        values = self.rule.values_at(t)
        if self.first_step is not None:
            at = R.FUSED[self.kernel].option_names.index("first_step")
            values = values[:at] + (float(self.first_step),) + values[at + 1:]
        plan = self.plan
        # launch_group(group, arrays): the backend's fused_group with this call's options
        launch_group = functools.partial(kernels("updates", plan.backend).fused_group, self.kernel, step=t,
                                         tables=self.tables, options=values, compensated=self.compensated,
                                         grad_scale=grad_scale, found_inf=found_inf)
        return lambda: _launch(plan, streams, launch_group)

    def again(self, arrays, *, step, lr, weight_decay, grad_scale, found_inf, grads_of_params=False,
              kept_same=False):
        """The launch of this call over ``arrays`` (one list per stream, in the order the call
        was made with: parameters, gradients, the state buffers it needs, the compensation
        buffers) at ``step`` with the rates ``lr`` and ``weight_decay``, checked as
        ``plan_for`` checks a cached plan: every array but the gradients the same object at
        the same address and layout, the gradients the plan's or new ones like their
        parameters. None where that does not hold: the caller checks the call in full. The
        other options are the caller's to keep unchanged (the rule was checked with them).
        ``grads_of_params``: the gradients are the parameters' own ``.grad`` (torch refuses a
        nested tensor there, so it is not looked for). ``kept_same``: every array but the
        gradients is the same object as at a call ``again`` accepted (the caller compared
        them by identity, holding them), so their ids are not compared."""
        plan = self.plan
        streams = [(name, row, column, role) for (name, row, role), column in zip(self.layout, arrays)]
        if kept_same:
            grad_ids = tuple(map(id, arrays[plan.grad_stream]))
        else:
            ids = P.stream_ids(streams)
            kept_ids = plan.ids
            if any(ids[s] != kept_ids[s] for s in plan.kept):
                return None
            grad_ids = ids[plan.grad_stream]
        if not P.still_valid(plan, grad_ids, streams, grads_of_params):
            return None
        t, grad_scale, found_inf = _call_scalars(step, grad_scale, found_inf, plan.backend)
        # the tables made for the rates are kept while the rates are the same values: the same
        # numbers or schedules (a tensor can have been written in place: its table is made anew)
        if not (lr is self.lr and weight_decay is self.weight_decay and fixed_value(lr) and fixed_value(weight_decay)):
            self.tables = (V.rate_table("lr", lr), V.rate_table("weight_decay", weight_decay), self.rule.table)
            self.lr, self.weight_decay = lr, weight_decay
        return self.launch(streams, t, grad_scale, found_inf)


_PLAIN = frozenset((bool, int, float, str, type(None)))


def fixed_value(value):
    """Whether an option value or a rate cannot change without being replaced: a plain Python
    number, flag or string, a schedule (a frozen value) or a tuple of these (a list, an array or
    a tensor can be written in place)."""
    return type(value) in _PLAIN or isinstance(value, V.ScheduleBase) or (
        type(value) is tuple and all(map(fixed_value, value)))


def _nothing():
    return None


def _launch(plan, streams, launch_group):
    _run(plan, streams, launch_group)
    _bump_versions(plan, streams)


def _compensation(compensated, buffer):
    compensated = V.flag("compensated", compensated)
    if buffer is not None and not compensated:
        raise ValueError("compensation_buffer is used only with compensated=True, got a buffer with "
                         "compensated=False")
    return compensated
