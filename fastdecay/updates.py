"""Fused optimizer updates with a scheduled learning rate and weight decay.

``sgd_step`` and ``adamw_step`` update parameters and optimizer state in place,
in one pass over memory, with ``lr``, ``weight_decay`` and the momentum (Adam's
beta1) read from schedules at ``step`` (the number of updates already applied)
inside the kernel. The rules
themselves live once, in ``fastdecay/_cpu/rules.py`` (mirrored in CUDA).

>>> import numpy as np, fastdecay as fd
>>> w, g = np.array([1.0, -2.0]), np.array([0.5, 0.5])
>>> fd.sgd_step(w, g, step=0, lr=0.1)
>>> w
array([ 0.95, -2.05])

Flow: validate the scalars here, the arrays in ``fastdecay._update_plan`` (a
*launch plan*: every array checked once, grouped by storage dtypes, the address
table built; cached and re-checked cheaply on later calls with the same
arrays), then hand each group to the backend: ``fastdecay._cpu.updates`` for
NumPy arrays and CPU torch tensors, ``fastdecay._gpu.updates`` (imported only
for device arrays) for CuPy arrays and CUDA torch tensors. The internal call
shape, identical for both::

    sgd_group(group, arrays, *, step, lr_table, wd_table, momentum_table, dampening,
              nesterov, decoupled, maximize, lr_in_buffer, on_drop, compensated,
              grad_scale, found_inf)
    adam_group(group, arrays, *, step, lr_table, wd_table, beta1_table, beta2, eps,
               decoupled, maximize, amsgrad, compensated, grad_scale, found_inf)

- ``group``: a ``fastdecay._update_plan.Group``: parameter and state dtype names,
  the int64 address table (rows: parameter, gradient, three state buffers,
  compensation buffer; 0 where absent), element counts; ``arrays``: the call's
  parameters (the GPU backend takes torch's stream from them).
- ``step``: a Python int in [0, 2**53], or a 0-d integer (or integral float)
  array on the parameters' device, read inside the kernel.
- ``lr_table``, ``wd_table``, ``momentum_table``, ``beta1_table``: read-only
  float64 NumPy arrays ``(1, segments, WIDTH)`` (``fastdecay._layout``), row 0
  the scalar schedule (a constant one for a number).
- ``on_drop``: ``rules.ON_DROP_KEEP | ON_DROP_RESET | ON_DROP_RESCALE``.
- ``dampening, beta2, eps``: Python floats; flags Python bools.
- ``grad_scale``, ``found_inf``: None, a Python float, or a 0-d / 1-element
  array on the device; a nonzero ``found_inf`` makes the call write nothing.
"""

import numbers
import sys

import numpy as np

from . import _layout as L
from . import _rules as R
from . import _update_plan as P
from . import _validate as V
from ._dispatch import NUMPY, TORCH_CPU, backend_of, is_torch, torch_storage_problem

__all__ = ["sgd_step", "adamw_step"]

# ----------------------------------------------------------------------------- scalar validation
# (numbers, flags, rates and optimizer options: fastdecay._validate, shared with fastdecay.torch)


def _device_scalar(name, value, backend):
    """``step``/``grad_scale``/``found_inf`` given as an array: 0-d (or one element), right device."""
    if is_torch(value):
        problem = torch_storage_problem(value)
        if problem is not None:
            raise TypeError(f"{name} must be a number or {problem}")
    b = backend_of(value)
    if b != backend and not (b in (NUMPY, TORCH_CPU) and backend in (NUMPY, TORCH_CPU)):
        raise TypeError(f"{name} must be a number or an array on the parameters' device ({backend}), got {b}: {value!r}")
    size = value.numel() if hasattr(value, "numel") else value.size
    if size != 1 or value.ndim > 1:
        raise ValueError(f"{name} must be a scalar (0-d or one-element array), got shape {tuple(value.shape)}")
    return value


MAX_STEP = 2**53  # steps are float64 inside the kernels: every integer up to here is exact


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...{text[-8:]} ({len(text)} digits)"


def _step(value, backend):
    """A non-negative int, or (device backends) a 0-d array passed through."""
    if type(value) is int and 0 <= value <= MAX_STEP:
        return value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"step must be an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        if not 0 <= value <= MAX_STEP:
            raise ValueError(f"step must be an integer from 0 to 2**53, got {_short(value)}")
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, np.ndarray):
        raise TypeError(f"step must be an integer or a 0-d integer array, got {value!r}")
    if not hasattr(value, "ndim"):
        raise TypeError(f"step must be an integer or a 0-d integer array, got {value!r}")
    value = _device_scalar("step", value, backend)
    kind = str(value.dtype)
    integral = kind.startswith(("int", "uint", "torch.int", "torch.uint"))
    floating = "float" in kind
    if not (integral or floating):
        raise TypeError(f"step must be an integer or a 0-d integer array, got dtype {value.dtype}")
    if backend in (NUMPY, TORCH_CPU):
        x = value.item()
        if floating and not (np.isfinite(x) and x == int(x)):
            raise ValueError(f"step must hold an integer, got {x!r}")
        if not 0 <= x <= MAX_STEP:
            raise ValueError(f"step must be an integer from 0 to 2**53, got {x!r}")
        return int(x)
    return value  # read on the device, inside the kernel


def _optional_scalar(name, value, backend, *, positive):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a number or a scalar array, got {value!r}")
    if isinstance(value, numbers.Real):
        x = float(value)
    elif hasattr(value, "ndim"):
        value = _device_scalar(name, value, backend)
        if backend not in (NUMPY, TORCH_CPU):
            return value
        x = V.real(name, value)  # complex and datetime values refused by name
    else:
        raise TypeError(f"{name} must be a number or a scalar array, got {value!r}")
    if positive and not (np.isfinite(x) and x > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
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


def _state_dtype(value):
    """``state_dtype``: None, "float32" or "bfloat16" (a torch or NumPy dtype of those names too)."""
    if value is None:
        return None
    name = value if isinstance(value, str) else str(getattr(value, "name", value)).replace("torch.", "")
    if name not in P.STATE_DTYPES:
        raise ValueError(f"state_dtype must be None, 'float32' or 'bfloat16', got {value!r}")
    return name


def _backend(first):
    b = backend_of(first)
    if b == NUMPY and not isinstance(first, np.ndarray):
        raise TypeError(f"param must be a NumPy, CuPy or torch array, got {type(first).__name__}: {first!r}")
    return b


def _plan(rule_key, param, named, state_dtype):
    """(plan, streams) of a call: ``named`` is [(name, value, row, role, needed)] after the
    parameters, ``needed`` None for a stream the options leave out, else why it is needed."""
    listed = isinstance(param, (list, tuple))
    params = param if listed else [param]
    if not params:
        return None, None
    backend = _backend(params[0])
    streams = [("param", 0, params, "param")]
    for name, value, row, role, needed in named:
        if needed is None:
            continue
        if value is None:
            raise ValueError(f"{name} is required here ({needed}), got None")
        streams.append((name, row, _as_list(name, value, listed, len(params)), role))
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
            [x for _, _, arrays, role in streams if role != "grad" for x in arrays])


_BACKENDS = {}


def _backend_module(backend):
    module = _BACKENDS.get(backend)
    if module is None:
        if backend in (NUMPY, TORCH_CPU):
            from ._cpu import updates as module
        else:
            from ._gpu import updates as module  # imports cupy: only for device arrays
        _BACKENDS[backend] = module
    return module


def sgd_momentum(momentum, dampening, nesterov, on_drop):
    """(momentum table, dampening, nesterov, on_drop code) of SGD: ``momentum`` a number >= 0
    or a scalar schedule (checked as a number at its step-0 value: nesterov needs it > 0)."""
    if isinstance(momentum, V.ScheduleBase):
        table = V.rate_table("momentum", momentum)
        _, dampening, nesterov, code = R.sgd_options(float(momentum.lr0()), dampening, nesterov, on_drop)
        return table, dampening, nesterov, code
    momentum, dampening, nesterov, code = R.sgd_options(momentum, dampening, nesterov, on_drop)
    return V.constant_table(momentum), dampening, nesterov, code


def adam_betas(betas, eps):
    """(beta1 table, beta2, eps) of Adam / AdamW: ``betas[0]`` a number in [0, 1) or a scalar
    schedule (its step-0 value checked as the number would be)."""
    if isinstance(betas, (tuple, list)) and len(betas) == 2 and isinstance(betas[0], V.ScheduleBase):
        table = V.rate_table("betas[0]", betas[0])
        _, beta2, eps = R.adam_options((float(betas[0].lr0()), betas[1]), eps)
        return table, beta2, eps
    beta1, beta2, eps = R.adam_options(betas, eps)
    return V.constant_table(beta1), beta2, eps


def uses_momentum(momentum_table):
    """False only for the constant momentum 0 (then no buffer is read or written)."""
    return not (momentum_table.shape[-2] == 1 and momentum_table[0, 0, L.KIND] == L.CONSTANT
                and momentum_table[0, 0, L.P0] == 0.0)


# ----------------------------------------------------------------------------- public functions


def sgd_step(param, grad, *, step, lr, momentum=0.0, momentum_buffer=None, dampening=0.0, nesterov=False,
             weight_decay=0.0, decoupled=False, maximize=False, lr_in_buffer=False, on_drop="keep",
             grad_scale=None, found_inf=None, state_dtype=None, compensated=False, compensation_buffer=None):
    """One fused SGD / heavy-ball / Nesterov step in place, at step ``step`` of the schedules.

    With g the gradient (negated under ``maximize``, divided by ``grad_scale``),
    eta = lr(step) and lambda = weight_decay(step)::

        g   <- g + lambda*w                              (decoupled=False: torch's L2)
        buf <- g  at step 0;  momentum*buf + (1 - dampening)*g  later
        d   <- g + momentum*buf (nesterov) | buf (momentum > 0) | g
        w   <- w*(1 - eta*lambda)                        (decoupled=True)
        w   <- w - eta*d

    torch ``torch.optim.SGD(lr, momentum, dampening, weight_decay, nesterov,
    maximize)`` with defaults (its lr and weight decay cannot be scheduled per
    step in the kernel, nor decoupled); optax ``sgd`` + ``add_decayed_weights``.

    ``lr_in_buffer=True``: buf <- momentum*buf + (1 - dampening)*eta*g (eta*g at
    step 0), w <- w - d with d = buf (or eta*g + momentum*buf with nesterov), so
    a learning-rate drop slows the buffer's old content too. ``on_drop``
    ("keep", "reset", "rescale") acts on the buffer where the lr schedule drops
    discontinuously at ``step``: zero it, or multiply it by eta_t/eta_{t-1},
    before its update. ``momentum`` may be a scalar schedule too, read at ``step``
    in the kernel like ``lr`` (``fd.one_cycle(...).momentum`` is torch's
    ``OneCycleLR(cycle_momentum=True)``).

    ``param``, ``grad`` and ``momentum_buffer`` are arrays of one shape and
    device, or lists of such (one fused call). Parameters (and gradients) are
    float32, float64, float16 or bfloat16; 16-bit ones are computed in float32
    with the momentum buffer in float32 (``state_dtype="bfloat16"`` stores it in
    bfloat16). ``compensated=True`` adds a Kahan ``compensation_buffer`` (one per
    parameter, its dtype, zero at the start) that keeps what rounding the
    parameter drops. Any dense layout works (C, Fortran, channels_last) when a
    parameter's arrays share it; other layouts are copied. Arrays that are
    written must not share memory with other arrays (a gradient may be its own
    parameter). A nonzero ``found_inf`` makes the call change nothing. Returns
    None. Repeated calls on the same arrays reuse the checks of the first.

    >>> import numpy as np, fastdecay as fd
    >>> w, buf = np.ones(3), np.zeros(3)
    >>> for t in range(2):
    ...     fd.sgd_step(w, np.full(3, 1.0), step=t, lr=fd.step(0.1, 0.5, 1),
    ...                 momentum=0.9, momentum_buffer=buf)
    >>> w.round(4), buf.round(4)
    (array([0.805, 0.805, 0.805]), array([1.9, 1.9, 1.9]))
    """
    _checked_sgd(param, grad, step=step, lr=lr, momentum=momentum, momentum_buffer=momentum_buffer,
                 dampening=dampening, nesterov=nesterov, weight_decay=weight_decay, decoupled=decoupled,
                 maximize=maximize, lr_in_buffer=lr_in_buffer, on_drop=on_drop, grad_scale=grad_scale,
                 found_inf=found_inf, state_dtype=state_dtype, compensated=compensated,
                 compensation_buffer=compensation_buffer)()
    return None


def adamw_step(param, grad, exp_avg, exp_avg_sq, *, step, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
               amsgrad=False, max_exp_avg_sq=None, maximize=False, decoupled=True, grad_scale=None, found_inf=None,
               state_dtype=None, compensated=False, compensation_buffer=None):
    """One fused Adam / AdamW / AMSGrad step in place, at step ``step`` of the schedules.

    With g the gradient (negated under ``maximize``, divided by ``grad_scale``),
    eta = lr(step), lambda = weight_decay(step) and n = step + 1::

        w <- w*(1 - eta*lambda)        decoupled=True (AdamW), with the old weights
        g <- g + lambda*w              decoupled=False (Adam's L2)
        m <- beta1*m + (1 - beta1)*g;  v <- beta2*v + (1 - beta2)*g^2   (zero state at step 0)
        vmax <- max(vmax, v)           amsgrad
        w <- w - eta/(1 - beta1^n) * m / (sqrt(v or vmax)/sqrt(1 - beta2^n) + eps)

    Matches torch ``torch.optim.AdamW`` (``decoupled=False``: ``torch.optim.Adam``),
    with the same argument names, and optax ``adamw`` (``eps_root=0``, weight decay
    applied to the old weights, as here). Keras ``AdamW`` differs: it adds eps to
    sqrt(v) *before* the bias correction, so its effective eps is
    eps/sqrt(1 - beta2^n), larger in early steps. With eps = 1e-3 the weights after
    50 steps on a quadratic differ from these by about 1 % (relative); with the
    default eps = 1e-8 by about 1e-7. ``betas[0]`` may be a scalar schedule, read at
    ``step`` in the kernel (the bias correction uses the current beta1, as torch does
    when a scheduler cycles it). The state's content is ignored at step 0
    (torch creates it then).

    Parameters (and gradients) are float32, float64, float16 or bfloat16; 16-bit
    ones are computed in float32 with the moments stored in float32 by default,
    ``state_dtype="bfloat16"`` stores them in bfloat16 (torch's fused AdamW on
    16-bit parameters keeps them in the parameter dtype). ``compensated=True``
    adds a Kahan ``compensation_buffer`` (one per parameter, in its dtype, zero at
    the start) so that updates too small for a bfloat16 weight accumulate
    instead of vanishing (optimi, torchdistx ``AnyPrecisionAdamW``). Layouts,
    memory sharing and ``found_inf`` as in ``sgd_step``. Returns None.

    >>> import numpy as np, fastdecay as fd
    >>> w, m, v = np.ones(2), np.empty(2), np.empty(2)
    >>> fd.adamw_step(w, np.array([0.5, -0.5]), m, v, step=0, lr=0.1, weight_decay=0.0)
    >>> w.round(6)
    array([0.9, 1.1])
    """
    _checked_adam(param, grad, exp_avg, exp_avg_sq, step=step, lr=lr, betas=betas, eps=eps,
                  weight_decay=weight_decay, amsgrad=amsgrad, max_exp_avg_sq=max_exp_avg_sq, maximize=maximize,
                  decoupled=decoupled, grad_scale=grad_scale, found_inf=found_inf, state_dtype=state_dtype,
                  compensated=compensated, compensation_buffer=compensation_buffer)()
    return None


def _checked_sgd(param, grad, *, step, lr, momentum, momentum_buffer, dampening, nesterov, weight_decay, decoupled,
                 maximize, lr_in_buffer, on_drop, grad_scale, found_inf, state_dtype, compensated,
                 compensation_buffer):
    """Check an ``sgd_step`` call completely, writing nothing; return the function of no
    arguments that makes it (``fastdecay.torch`` checks every group before it writes)."""
    momentum_table, dampening, nesterov, on_drop_code = sgd_momentum(momentum, dampening, nesterov, on_drop)
    decoupled = V.flag("decoupled", decoupled)
    maximize = V.flag("maximize", maximize)
    lr_in_buffer = V.flag("lr_in_buffer", lr_in_buffer)
    compensated = _compensation(compensated, compensation_buffer)
    state_dtype = _state_dtype(state_dtype)
    lr_table = V.rate_table("lr", lr)
    wd_table = V.rate_table("weight_decay", weight_decay)
    plan, streams = _plan(("sgd",), param, [
        ("grad", grad, 1, "grad", "always"),
        ("momentum_buffer", momentum_buffer, 2, "state", "momentum > 0" if uses_momentum(momentum_table) else None),
        ("compensation_buffer", compensation_buffer, 5, "comp", "compensated=True" if compensated else None),
    ], state_dtype)
    backend = plan.backend if plan is not None else NUMPY
    t, grad_scale, found_inf = _call_scalars(step, grad_scale, found_inf, backend)
    if plan is None:
        return _nothing
    module = _backend_module(backend)
    launch_group = (lambda group, arrays: module.sgd_group(
        group, arrays, step=t, lr_table=lr_table, wd_table=wd_table, momentum_table=momentum_table, dampening=dampening,
        nesterov=nesterov, decoupled=decoupled, maximize=maximize, lr_in_buffer=lr_in_buffer, on_drop=on_drop_code,
        compensated=compensated, grad_scale=grad_scale, found_inf=found_inf))
    return lambda: _launch(plan, streams, launch_group)


def _checked_adam(param, grad, exp_avg, exp_avg_sq, *, step, lr, betas, eps, weight_decay, amsgrad,
                  max_exp_avg_sq, maximize, decoupled, grad_scale, found_inf, state_dtype, compensated,
                  compensation_buffer):
    """Check an ``adamw_step`` call completely, writing nothing; return the launch (see ``_checked_sgd``)."""
    amsgrad = V.flag("amsgrad", amsgrad)
    maximize = V.flag("maximize", maximize)
    decoupled = V.flag("decoupled", decoupled)
    beta1_table, beta2, eps = adam_betas(betas, eps)
    compensated = _compensation(compensated, compensation_buffer)
    state_dtype = _state_dtype(state_dtype)
    lr_table = V.rate_table("lr", lr)
    wd_table = V.rate_table("weight_decay", weight_decay)
    plan, streams = _plan(("adam",), param, [
        ("grad", grad, 1, "grad", "always"),
        ("exp_avg", exp_avg, 2, "state", "always"),
        ("exp_avg_sq", exp_avg_sq, 3, "state", "always"),
        ("max_exp_avg_sq", max_exp_avg_sq, 4, "state", "amsgrad=True" if amsgrad else None),
        ("compensation_buffer", compensation_buffer, 5, "comp", "compensated=True" if compensated else None),
    ], state_dtype)
    backend = plan.backend if plan is not None else NUMPY
    t, grad_scale, found_inf = _call_scalars(step, grad_scale, found_inf, backend)
    if plan is None:
        return _nothing
    module = _backend_module(backend)
    launch_group = (lambda group, arrays: module.adam_group(
        group, arrays, step=t, lr_table=lr_table, wd_table=wd_table, beta1_table=beta1_table, beta2=beta2, eps=eps,
        decoupled=decoupled, maximize=maximize, amsgrad=amsgrad, compensated=compensated, grad_scale=grad_scale,
        found_inf=found_inf))
    return lambda: _launch(plan, streams, launch_group)


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
