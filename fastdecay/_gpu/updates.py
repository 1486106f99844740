"""Fused updates on the GPU: the device twin of ``fastdecay._cpu.updates``.

Same internal call shape (documented in ``fastdecay.updates``, which validated
everything before calling): lists of CuPy arrays or CUDA torch tensors. One
launch per dtype covers every tensor of the call (``kernels/updates.cu``
reads a device table of their addresses and sizes). ``step``, ``grad_scale``
and ``found_inf`` may be 0-d device arrays, read inside the kernel, so a
captured CUDA graph replays with the current step's learning rate and weight
decay; with ``increment_step=True`` a device ``step`` is advanced by one after
the update, on the same stream (a graph then counts its own replays), unless
``found_inf`` is nonzero (a skipped update is not a step, as in torch).

Checked here, before any launch (``fastdecay.updates`` checks the rest): all
arrays on one device, device scalars on that device with a supported dtype.
The schedule tables and the tensor table are copied to the device once and
cached by content, so calls after the first (and graph capture after a
warm-up) neither allocate nor copy.
"""

import numpy as np

from . import _plan
from . import _runtime as rt

_SUFFIX = {"float32": "f32", "float64": "f64"}


def _dtype_name(x):
    return str(x.dtype).replace("torch.", "")


def _size(x):
    return x.numel() if rt.is_torch(x) else x.size


def _device(named_lists):
    """The one device of every array, or ValueError naming the first that differs."""
    device = None
    first = None
    for name, arrays in named_lists:
        if arrays is None:
            continue
        for k, x in enumerate(arrays):
            d = rt.device_of(x)
            label = f"{name}[{k}]"
            if device is None:
                device, first = d, label
            elif d != device:
                raise ValueError(
                    f"{label} is on GPU {d} but {first} is on GPU {device}: one call updates tensors of one device"
                )
    return device


def _scalar(name, value, device, default):
    """A scalar for the kernel as ``_plan.scalar_ref``: a number by value, a device array by address."""
    if value is None:
        return _plan.scalar_ref(default)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return _plan.scalar_ref(float(value))
    if rt.device_of(value) != device:
        raise ValueError(f"{name} is on GPU {rt.device_of(value)} but the parameters are on GPU {device}")
    dtype = _dtype_name(value)
    if dtype == "uint8":
        dtype = "bool"
    if dtype not in _plan.SCALAR_CODES:
        raise TypeError(f"{name} on the device must be int32, int64, float32, float64 or bool, got dtype {dtype}")
    return _plan.scalar_ref(value, dtype)


def _groups(params):
    groups = {}
    for k, p in enumerate(params):
        groups.setdefault(_dtype_name(p), []).append(k)
    return groups


def _launch_groups(rule, params, lists, device, build_args):
    """One launch per dtype over the tensors of that dtype."""
    for dtype, index in _groups(params).items():
        rows = []
        for k in index:
            ptrs = [rt.pointer(lst[k]) if lst is not None else 0 for lst in lists]
            rows.append((rt.pointer(params[k]), *ptrs, _size(params[k])))
        table, n_chunks = _plan.tensor_table(rows)
        if n_chunks == 0:
            continue
        args = build_args(rt.constant(table, device), n_chunks)
        blocks = _plan.update_blocks(n_chunks, rt.multiprocessors(device))
        rt.launch("updates.cu", f"{rule}_{_SUFFIX[dtype]}", blocks, _plan.THREADS, args, device)


def _check_increment(increment_step, ref):
    if increment_step and (ref[0] is None or ref[1] == _plan.SC_BOOL):
        raise ValueError("increment_step=True needs step as a 0-d int or float array on the device, "
                         f"got {'a number' if ref[0] is None else 'a bool array'}")


def _increment(ref, inf_ref, device):
    args = [("ptr", ref[0]), ("i32", ref[1]), ("ptr", inf_ref[0]), ("i32", inf_ref[1])]
    rt.launch("updates.cu", "step_increment", 1, 1, args, device)


def sgd_step(params, grads, momentum_buffers, *, step, lr_table, wd_table, momentum, dampening, nesterov, decoupled,
             maximize, lr_in_buffer, on_drop, grad_scale, found_inf, increment_step=False):
    """SGD / heavy ball / Nesterov over lists of device arrays (see ``fastdecay.updates``)."""
    device = _device([("param", params), ("grad", grads), ("momentum_buffer", momentum_buffers)])
    step_ref = _scalar("step", step, device, 0)
    scale_ref = _scalar("grad_scale", grad_scale, device, 1.0)
    inf_ref = _scalar("found_inf", found_inf, device, 0.0)
    _check_increment(increment_step, step_ref)
    buffers = momentum_buffers if momentum != 0.0 else None
    with rt.context(device, params):
        lr_dev, wd_dev = rt.constant(lr_table, device), rt.constant(wd_table, device)
        _launch_groups(
            "sgd", params, [grads, buffers, None, None], device,
            lambda table, n_chunks: _plan.sgd_args(
                table, n_chunks, lr_dev, wd_dev, step_ref, momentum, dampening, nesterov, decoupled, maximize,
                lr_in_buffer, on_drop, scale_ref, inf_ref),
        )
        if increment_step:
            _increment(step_ref, inf_ref, device)


def adamw_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *, step, lr_table, wd_table, beta1, beta2, eps,
               decoupled, maximize, amsgrad, grad_scale, found_inf, increment_step=False):
    """Adam / AdamW / AMSGrad over lists of device arrays (see ``fastdecay.updates``)."""
    device = _device([("param", params), ("grad", grads), ("exp_avg", exp_avgs), ("exp_avg_sq", exp_avg_sqs),
                      ("max_exp_avg_sq", max_exp_avg_sqs if amsgrad else None)])
    step_ref = _scalar("step", step, device, 0)
    scale_ref = _scalar("grad_scale", grad_scale, device, 1.0)
    inf_ref = _scalar("found_inf", found_inf, device, 0.0)
    _check_increment(increment_step, step_ref)
    with rt.context(device, params):
        lr_dev, wd_dev = rt.constant(lr_table, device), rt.constant(wd_table, device)
        _launch_groups(
            "adam", params, [grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs if amsgrad else None], device,
            lambda table, n_chunks: _plan.adam_args(
                table, n_chunks, lr_dev, wd_dev, step_ref, beta1, beta2, eps, decoupled, maximize, amsgrad,
                scale_ref, inf_ref),
        )
        if increment_step:
            _increment(step_ref, inf_ref, device)
