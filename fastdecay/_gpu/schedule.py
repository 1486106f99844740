"""Schedules on the GPU: ``Schedule.__call__`` for device steps, and device tables.

``fastdecay.Schedule`` sends CuPy arrays and CUDA torch tensors here; the rates
come back on the same device, in the caller's array type (torch tensors through
DLPack, zero-copy), computed by ``kernels/schedule.cu`` from the same packed
table as the CPU (the same float64 operations; within 1e-12 of the CPU).
"""

import numbers

import numpy as np

from .. import _validate as V
from .._validate import steps_array as _steps
from . import _plan
from . import _runtime as rt


def _device_steps(name, t):
    """Steps on the device as float64, validated like the CPU path's
    ``fastdecay._validate.steps_array`` (a tensor detached, bfloat16 widened, as there)."""
    xp = rt.xp
    arr = rt.as_array(V.dense_tensor(name, t))
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be an integer step or an array of steps, got dtype {arr.dtype}")
    steps = arr.astype(np.float64)
    if arr.dtype.kind == "f":
        bad = ~xp.isfinite(steps) | (steps != xp.floor(steps))
        if bool(bad.any()):
            raise ValueError(f"{name} must hold integer steps, got {float(steps[bad].ravel()[0])!r}")
    if steps.size and bool((steps < 0).any()):
        raise ValueError(f"{name} must be non-negative steps, got {float(steps.min())!r}")
    # integers compared as integers: 2**53 + 1 rounds to 2**53 in float64
    beyond = arr > V.MAX_STEP if arr.dtype.kind in "iu" else steps > V.MAX_STEP
    if steps.size and bool(beyond.any()):
        raise ValueError(f"{name} must hold integer steps from 0 to 2**53, got {arr[beyond].ravel()[0].item()!r}")
    return steps


def _as_caller_type(out, like):
    if rt.is_torch(like):
        import torch

        return torch.from_dlpack(out)
    return out


def evaluate(schedule, t):
    """``schedule(t)`` for steps ``t`` on a GPU: shape ``broadcast(batch_shape, t.shape)``, float64.

    >>> import cupy as cp, fastdecay as fd
    >>> fd.step(0.1, 0.5, 10)(cp.arange(0, 30, 10)).get().tolist()
    [0.1, 0.05, 0.025]
    """
    xp = rt.xp
    device = rt.device_of(t)
    with rt.context(device, [t]):
        steps = _device_steps("t", t)
        shape = schedule.call_shape(steps.shape)
        out = rt.empty(shape, np.float64, device)
        n = out.size
        if n:
            rows = xp.arange(schedule.size, dtype=np.int64).reshape(schedule.batch_shape)
            rows = xp.ascontiguousarray(xp.broadcast_to(rows, shape)).reshape(n)
            flat = xp.ascontiguousarray(xp.broadcast_to(steps, shape)).reshape(n)
            table = rt.constant(schedule.rows(), device)
            args = [("ptr", table), ("i32", table.shape[1]), ("ptr", rows), ("ptr", flat), ("ptr", out), ("i64", n)]
            rt.launch("schedule.cu", "schedule_points_f64", _plan.blocks_for(n), _plan.THREADS, args, device)
    return _as_caller_type(out, t)


def table(schedule, n_or_steps, *, dtype=None, out=None, device=None):
    """``schedule.table(n_or_steps)`` computed on a GPU: ``batch_shape + (n,)``.

    ``n_or_steps`` is a step count (steps 0 .. n-1) or a 1-D array of steps (host
    or device); ``dtype`` float64 (the default) or float32 (computed in float64, rounded
    once); ``out`` a C-contiguous CuPy array or CUDA torch tensor written in place and
    returned (its dtype then decides; a ``dtype`` given too must be the same). Without
    ``out`` the result is on ``device`` (default: the device of the steps, else the
    current one): a CUDA torch tensor for CUDA torch steps, else a CuPy array.
    Consecutive steps of a plain exponential advance by one multiplication from a
    closed-form anchor (within ~32 ulp of the closed form, 7e-15, like the CPU's
    re-anchored products); other primitives are their closed form.

    >>> import fastdecay as fd
    >>> from fastdecay._gpu.schedule import table
    >>> table(fd.exponential(0.1, gamma=[0.9, 0.99]), 3).get().round(4).tolist()
    [[0.1, 0.09, 0.081], [0.1, 0.099, 0.098]]
    """
    xp = rt.xp
    given_dtype, dtype = dtype, V.table_dtype(dtype, None)
    ranged = isinstance(n_or_steps, (numbers.Integral, np.integer)) and not isinstance(n_or_steps, bool)
    on_device = not ranged and (rt.is_torch(n_or_steps) or isinstance(n_or_steps, xp.ndarray))
    if ranged:
        n = V.integer("n_or_steps", n_or_steps, low=0, high=V.MAX_STEP + 1)
    elif not on_device:
        host_steps = _steps("n_or_steps", n_or_steps)
        _one_dimensional(host_steps, n_or_steps)
        n = host_steps.shape[0]
    if out is not None:
        if not (rt.is_torch(out) and out.is_cuda) and not isinstance(out, xp.ndarray):
            raise TypeError(f"out must be a CuPy array or a CUDA torch tensor, got {type(out).__name__}")
        if rt.is_torch(out) and out.requires_grad:
            raise ValueError("out must not require grad (it is written in place)")
        target = rt.device_of(out)
    elif device is not None:
        target = int(device)
    elif on_device:
        target = rt.device_of(n_or_steps)
    else:
        target = rt.current_device()
    if on_device and rt.device_of(n_or_steps) != target:
        raise ValueError(f"n_or_steps is on device {rt.device_of(n_or_steps)}, but the table goes to device {target}")
    arrays = ([out] if out is not None else []) + ([n_or_steps] if on_device else [])
    with rt.context(target, arrays):
        if on_device:
            steps = _device_steps("n_or_steps", n_or_steps)
            _one_dimensional(steps, n_or_steps)
            n = steps.shape[0]
        elif not ranged:
            steps = rt.constant(host_steps, target)
        shape = schedule.batch_shape + (n,)
        if out is None:
            result = rt.empty(shape, dtype, target)
        else:
            result = rt.as_array(out)
            if result.shape != shape:
                raise ValueError(f"out must have shape {shape}, got {tuple(result.shape)}")
            if result.dtype not in (np.float32, np.float64):
                raise TypeError(f"out must be float32 or float64, got dtype {result.dtype}")
            V.table_dtype(given_dtype, result.dtype)
            if not result.flags.c_contiguous:
                raise ValueError(f"out must be C-contiguous, got strides {result.strides} (bytes) for shape "
                                 f"{tuple(result.shape)}")
        rows = schedule.size
        if rows and n:
            tbl = rt.constant(schedule.rows(), target)
            name = "schedule_table_f64" if result.dtype == np.float64 else "schedule_table_f32"
            args = [("ptr", tbl), ("i32", tbl.shape[1]), ("i64", rows), ("f64", 0.0),
                    ("ptr", None if ranged else steps), ("ptr", result), ("i64", n)]
            grid = _plan.table_grid(rows, n) if ranged else (_plan.blocks_for(n, limit=1 << 16), min(rows, 65535))
            rt.launch("schedule.cu", name, grid, _plan.THREADS, args, target)
    if out is not None:
        return out
    return _as_caller_type(result, n_or_steps) if on_device else result  # (CUDA torch steps: a tensor of rates)


def _one_dimensional(steps, given):
    """The CPU path's refusals of steps that are not 1-D: a count must be an int, as for range()."""
    if steps.ndim == 0:
        raise TypeError(f"n_or_steps must be a step count (an int) or a 1-D array of steps, got {V.shown(given)}")
    if steps.ndim != 1:
        raise ValueError(f"n_or_steps must be a step count or a 1-D array of steps, got shape {tuple(steps.shape)}")
