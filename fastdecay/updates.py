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

Flow: validate everything (backend-independent), then hand the same *internal
call* to the backend: ``fastdecay._cpu.updates`` for NumPy arrays and CPU torch
tensors, ``fastdecay._gpu.updates`` (imported only for device arrays) for CuPy
arrays and CUDA torch tensors. The internal call shape, identical for both::

    sgd_step(params, grads, momentum_buffers, *, step, lr_table, wd_table,
             momentum_table, dampening, nesterov, decoupled, maximize, lr_in_buffer,
             on_drop, grad_scale, found_inf)
    adamw_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *, step,
               lr_table, wd_table, beta1_table, beta2, eps, decoupled, maximize,
               amsgrad, grad_scale, found_inf)

- ``params, grads, ...``: lists (same length) of validated arrays of the
  backend (contiguous, float32/float64, each tensor's state matching its
  parameter's shape and dtype; dtypes may differ between tensors).
  ``momentum_buffers`` is None without momentum (a momentum of 0, not a
  schedule), ``max_exp_avg_sqs`` None without ``amsgrad``.
- ``step``: a non-negative Python int, or a 0-d integer (or integral float)
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
from . import _validate as V
from ._dispatch import CUPY, NUMPY, TORCH_CPU, TORCH_CUDA, backend_of

__all__ = ["sgd_step", "adamw_step"]

_FLOAT_DTYPES = ("float32", "float64")


# ----------------------------------------------------------------------------- scalar validation
# (numbers, flags, rates and optimizer options: fastdecay._validate, shared with fastdecay.torch)


def _device_scalar(name, value, backend):
    """``step``/``grad_scale``/``found_inf`` given as an array: 0-d (or one element), right device."""
    b = backend_of(value)
    if b != backend and not (b in (NUMPY, TORCH_CPU) and backend in (NUMPY, TORCH_CPU)):
        raise TypeError(f"{name} must be a number or an array on the parameters' device ({backend}), got {b}: {value!r}")
    size = value.numel() if hasattr(value, "numel") else value.size
    if size != 1 or value.ndim > 1:
        raise ValueError(f"{name} must be a scalar (0-d or one-element array), got shape {tuple(value.shape)}")
    return value


def _step(value, backend):
    """A non-negative int, or (device backends) a 0-d array passed through."""
    if type(value) is int and value >= 0:
        return value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"step must be an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        if value < 0:
            raise ValueError(f"step must be a non-negative integer, got {value!r}")
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
        if x < 0:
            raise ValueError(f"step must be a non-negative integer, got {x!r}")
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


# ----------------------------------------------------------------------------- array validation


def _as_list(name, value, listed, count):
    """``value`` as a list of ``count`` arrays (``listed``: the parameters came as a list)."""
    if listed:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be a list like param (a list of {count} arrays), got {type(value).__name__}")
        if len(value) != count:
            raise ValueError(f"{name} must hold {count} arrays, one per parameter, got {len(value)}")
        return list(value)
    if isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a single array like param, got a {type(value).__name__}")
    return [value]


_NUMPY_FLOATS = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}


def _numpy_info(x):
    """(shape, dtype name, contiguous, writeable) of a NumPy array (or CuPy: no flags.writeable)."""
    flags = x.flags
    name = _NUMPY_FLOATS.get(x.dtype) if isinstance(x.dtype, np.dtype) else None
    return x.shape, name or str(x.dtype), flags.c_contiguous, getattr(flags, "writeable", True)


def _torch_info_reader():
    """(shape, dtype name, contiguous, writeable) of a torch tensor: a few attribute reads,
    since lists of 200 tensors pass through here every step."""
    torch = sys.modules["torch"]
    strided = torch.strided
    names = {torch.float32: "float32", torch.float64: "float64"}

    def info(x):
        if x.layout is not strided:
            raise TypeError(f"a strided (dense) tensor, got layout {x.layout}")
        if x.is_neg() or x.is_conj():
            raise TypeError("a tensor without a pending conj/neg bit (call .resolve_neg()/.resolve_conj())")
        return x.shape, names.get(x.dtype) or str(x.dtype).replace("torch.", ""), x.is_contiguous(), True

    return info


def _check_arrays(names_lists, backend, listed):
    """Every array: one backend, float32/float64, contiguous, state shaped and typed as its param.

    ``names_lists``: [(name, list of arrays, written in place)], the parameters first.
    """
    pname = names_lists[0][0]
    if not names_lists[0][1]:
        return
    _info = _torch_info_reader() if backend in (TORCH_CPU, TORCH_CUDA) else _numpy_info
    on_device = backend in (TORCH_CUDA, CUPY)
    kind = type(names_lists[0][1][0])
    ref = []
    for name, arrays, writes in names_lists:
        for k, x in enumerate(arrays):
            if type(x) is not kind or on_device:  # the common case (one array type, CPU) skips this
                b = backend_of(x)
                if b == NUMPY and not isinstance(x, np.ndarray):
                    raise TypeError(f"{_label(name, k, listed)} must be a NumPy, CuPy or torch array, got "
                                    f"{type(x).__name__}: {x!r}")
                if b != backend:
                    raise TypeError(
                        f"{_label(name, k, listed)} must be the same kind of array as {pname} ({backend}), got {b}; "
                        "mixed array types or devices in one call are not supported"
                    )
            try:
                shape, dtype, contiguous, writeable = _info(x)
            except TypeError as err:
                raise TypeError(f"{_label(name, k, listed)} must be {err}") from None
            if dtype not in _FLOAT_DTYPES:
                raise TypeError(f"{_label(name, k, listed)} must be float32 or float64, got dtype {dtype}")
            if not contiguous:
                raise ValueError(f"{_label(name, k, listed)} must be contiguous (C order), got a non-contiguous "
                                 f"array of shape {tuple(shape)}")
            if writes and not writeable:
                raise ValueError(f"{_label(name, k, listed)} must be writeable (it is updated in place), got a "
                                 "read-only array")
            if name == pname:
                ref.append((shape, dtype, x))
                continue
            pshape, pdtype, p = ref[k]
            if shape != pshape:
                raise ValueError(f"{_label(name, k, listed)} must have the shape of its parameter {tuple(pshape)}, "
                                 f"got {tuple(shape)}")
            if dtype != pdtype:
                raise TypeError(f"{_label(name, k, listed)} must have the dtype of its parameter ({pdtype}), "
                                f"got {dtype}")
            if on_device and x.device != p.device:
                raise ValueError(f"{_label(name, k, listed)} must be on its parameter's device {p.device}, "
                                 f"got {x.device}")


def _label(name, k, listed):
    return f"{name}[{k}]" if listed else name


def _backend(params):
    if not params:
        return NUMPY
    b = backend_of(params[0])
    if b == NUMPY and not isinstance(params[0], np.ndarray):
        raise TypeError(f"param must be a NumPy, CuPy or torch array, got {type(params[0]).__name__}: {params[0]!r}")
    return b


def _prepare(param, named_state):
    """(backend, params, [arrays of each named state, None when absent]), all validated.

    ``named_state``: [(name, value, why it is needed or None when it is not, written in place)].
    """
    listed = isinstance(param, (list, tuple))
    params = list(param) if listed else [param]
    backend = _backend(params)
    lists = [("param", params, True)]
    out = []
    for name, value, needed, writes in named_state:
        if not needed:
            out.append(None)
            continue
        if value is None:
            raise ValueError(f"{name} is required here ({needed}), got None")
        arrays = _as_list(name, value, listed, len(params))
        lists.append((name, arrays, writes))
        out.append(arrays)
    _check_arrays(lists, backend, listed)
    return backend, params, out


def _bump_versions(backend, *lists):
    """Tell autograd that torch tensors were written in place (the kernels write through raw
    pointers, which torch cannot see), as torch's own in-place optimizers do."""
    if backend in (TORCH_CPU, TORCH_CUDA):
        sys.modules["torch"].autograd.graph.increment_version([x for xs in lists if xs for x in xs])


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
        _, dampening, nesterov, code = V.sgd_options(float(momentum.lr0()), dampening, nesterov, on_drop)
        return table, dampening, nesterov, code
    momentum, dampening, nesterov, code = V.sgd_options(momentum, dampening, nesterov, on_drop)
    return V.constant_table(momentum), dampening, nesterov, code


def adam_betas(betas, eps):
    """(beta1 table, beta2, eps) of Adam / AdamW: ``betas[0]`` a number in [0, 1) or a scalar
    schedule (its step-0 value checked as the number would be)."""
    if isinstance(betas, (tuple, list)) and len(betas) == 2 and isinstance(betas[0], V.ScheduleBase):
        table = V.rate_table("betas[0]", betas[0])
        _, beta2, eps = V.adam_options((float(betas[0].lr0()), betas[1]), eps)
        return table, beta2, eps
    beta1, beta2, eps = V.adam_options(betas, eps)
    return V.constant_table(beta1), beta2, eps


def uses_momentum(momentum_table):
    """False only for the constant momentum 0 (then no buffer is read or written)."""
    return not (momentum_table.shape[-2] == 1 and momentum_table[0, 0, L.KIND] == L.CONSTANT
                and momentum_table[0, 0, L.P0] == 0.0)


# ----------------------------------------------------------------------------- public functions


def sgd_step(param, grad, *, step, lr, momentum=0.0, momentum_buffer=None, dampening=0.0, nesterov=False,
             weight_decay=0.0, decoupled=False, maximize=False, lr_in_buffer=False, on_drop="keep",
             grad_scale=None, found_inf=None):
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

    ``param``, ``grad`` and ``momentum_buffer`` are arrays of one shape, dtype
    (float32/float64) and device, contiguous; or lists of such (one fused call).
    A nonzero ``found_inf`` makes the call change nothing. Returns None.

    >>> import numpy as np, fastdecay as fd
    >>> w, buf = np.ones(3), np.zeros(3)
    >>> for t in range(2):
    ...     fd.sgd_step(w, np.full(3, 1.0), step=t, lr=fd.step(0.1, 0.5, 1),
    ...                 momentum=0.9, momentum_buffer=buf)
    >>> w.round(4), buf.round(4)
    (array([0.805, 0.805, 0.805]), array([1.9, 1.9, 1.9]))
    """
    momentum_table, dampening, nesterov, on_drop_code = sgd_momentum(momentum, dampening, nesterov, on_drop)
    decoupled = V.flag("decoupled", decoupled)
    maximize = V.flag("maximize", maximize)
    lr_in_buffer = V.flag("lr_in_buffer", lr_in_buffer)
    lr_table = V.rate_table("lr", lr)
    wd_table = V.rate_table("weight_decay", weight_decay)
    needs_buffer = uses_momentum(momentum_table)
    backend, params, (grads, buffers) = _prepare(param, [
        ("grad", grad, "always", False),
        ("momentum_buffer", momentum_buffer, "momentum > 0" if needs_buffer else None, True),
    ])
    t, grad_scale, found_inf = _call_scalars(step, grad_scale, found_inf, backend)
    if not params:
        return None
    _backend_module(backend).sgd_step(
        params, grads, buffers, step=t, lr_table=lr_table, wd_table=wd_table, momentum_table=momentum_table,
        dampening=dampening, nesterov=nesterov, decoupled=decoupled, maximize=maximize,
        lr_in_buffer=lr_in_buffer, on_drop=on_drop_code, grad_scale=grad_scale, found_inf=found_inf,
    )
    _bump_versions(backend, params, buffers)
    return None


def adamw_step(param, grad, exp_avg, exp_avg_sq, *, step, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
               amsgrad=False, max_exp_avg_sq=None, maximize=False, decoupled=True, grad_scale=None, found_inf=None):
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
    (torch creates it then). A nonzero ``found_inf`` makes the call change
    nothing. Returns None.

    >>> import numpy as np, fastdecay as fd
    >>> w, m, v = np.ones(2), np.empty(2), np.empty(2)
    >>> fd.adamw_step(w, np.array([0.5, -0.5]), m, v, step=0, lr=0.1, weight_decay=0.0)
    >>> w.round(6)
    array([0.9, 1.1])
    """
    amsgrad = V.flag("amsgrad", amsgrad)
    maximize = V.flag("maximize", maximize)
    decoupled = V.flag("decoupled", decoupled)
    beta1_table, beta2, eps = adam_betas(betas, eps)
    lr_table = V.rate_table("lr", lr)
    wd_table = V.rate_table("weight_decay", weight_decay)
    backend, params, (grads, exp_avgs, exp_avg_sqs, maxes) = _prepare(param, [
        ("grad", grad, "always", False),
        ("exp_avg", exp_avg, "always", True),
        ("exp_avg_sq", exp_avg_sq, "always", True),
        ("max_exp_avg_sq", max_exp_avg_sq, "amsgrad=True" if amsgrad else None, True),
    ])
    t, grad_scale, found_inf = _call_scalars(step, grad_scale, found_inf, backend)
    if not params:
        return None
    _backend_module(backend).adamw_step(
        params, grads, exp_avgs, exp_avg_sqs, maxes, step=t, lr_table=lr_table, wd_table=wd_table,
        beta1_table=beta1_table, beta2=beta2, eps=eps, decoupled=decoupled, maximize=maximize,
        amsgrad=amsgrad, grad_scale=grad_scale, found_inf=found_inf,
    )
    _bump_versions(backend, params, exp_avgs, exp_avg_sqs, maxes)
    return None
