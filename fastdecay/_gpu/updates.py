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


def _groups(params, state_dtype):
    groups = {}
    for k, p in enumerate(params):
        param = _dtype_name(p)
        state = state_dtype or ("float32" if param in ("float16", "bfloat16") else param)
        groups.setdefault((param, state), []).append(k)
    return groups


def _launch_table(rule, param, state, table, n_chunks, device, kernel_args):
    if n_chunks == 0:
        return
    args = kernel_args(rt.constant(table, device), n_chunks)
    blocks = _plan.update_blocks(n_chunks, rt.multiprocessors(device))
    rt.launch("updates.cu", f"{rule}_{_plan.kernel_suffix(param, state)}", blocks, _plan.THREADS, args, device)


def _launch_groups(rule, named_lists, device, kernel_args, state_dtype=None):
    """One launch of ``rule`` per (parameter dtype, state dtype) over those tensors.

    ``named_lists``: [(name, arrays or None)], the parameters first, then the
    gradients, the three state buffers and the compensation buffers (the rows of
    the tensor table).
    """
    params = named_lists[0][1]
    lists = [arrays for _, arrays in named_lists[1:]]
    lists += [None] * (5 - len(lists))  # grad, buf0, buf1, buf2, compensation
    for (param, state), index in _groups(params, state_dtype).items():
        rows = []
        for k in index:
            ptrs = [rt.pointer(lst[k]) if lst is not None else 0 for lst in lists]
            rows.append((rt.pointer(params[k]), *ptrs[:4], _size(params[k]), ptrs[4]))
        table, n_chunks = _plan.tensor_table(rows)
        _launch_table(rule, param, state, table, n_chunks, device, kernel_args)


def _scalars(device, step, grad_scale, found_inf, increment_step):
    step_ref = _scalar("step", step, device, 0)
    scale_ref = _scalar("grad_scale", grad_scale, device, 1.0)
    inf_ref = _scalar("found_inf", found_inf, device, 0.0)
    if increment_step and (step_ref[0] is None or step_ref[1] == _plan.SC_BOOL):
        raise ValueError("increment_step=True needs step as a 0-d int or float array on the device, "
                         f"got {'a number' if step_ref[0] is None else 'a bool array'}")
    return step_ref, scale_ref, inf_ref


def _fused_call(rule, named_lists, step, grad_scale, found_inf, schedule_tables, increment_step, rule_args,
                state_dtype=None):
    """Check, then launch ``rule`` over ``named_lists`` (see ``_launch_groups``), then advance
    a device ``step`` if asked. ``rule_args(table, n_chunks, tables, step, grad_scale, found_inf)``
    gives the kernel's arguments: ``tables`` the device copies of ``schedule_tables`` (lr,
    weight decay, momentum or beta1), the last three as the kernel takes them."""
    device = _device(named_lists)
    step_ref, scale_ref, inf_ref = _scalars(device, step, grad_scale, found_inf, increment_step)
    with rt.context(device, named_lists[0][1]):
        tables = [rt.constant(t, device) for t in schedule_tables]
        _launch_groups(rule, named_lists, device,
                       lambda table, n_chunks: rule_args(table, n_chunks, tables, step_ref, scale_ref, inf_ref),
                       state_dtype)
        if increment_step:
            _increment(step_ref, inf_ref, device)


def _increment(step_ref, inf_ref, device):
    args = [("ptr", step_ref[0]), ("i32", step_ref[1]), ("ptr", inf_ref[0]), ("i32", inf_ref[1])]
    rt.launch("updates.cu", "step_increment", 1, 1, args, device)


def _group_call(rule, group, arrays, step, grad_scale, found_inf, schedule_tables, rule_args):
    """Launch ``rule`` over one group of a ``fastdecay._update_plan.Plan`` (checked there; its
    device is ``group.device``); ``arrays``: the call's parameters (torch's stream)."""
    device = group.device
    step_ref, scale_ref, inf_ref = _scalars(device, step, grad_scale, found_inf, False)
    table, n_chunks = _plan.group_table(group.addresses, group.sizes)
    with rt.context(device, arrays):
        tables = [rt.constant(t, device) for t in schedule_tables]
        _launch_table(rule, group.param, group.state, table, n_chunks, device,
                      lambda table, n_chunks: rule_args(table, n_chunks, tables, step_ref, scale_ref, inf_ref))


def sgd_group(group, arrays, *, step, lr_table, wd_table, momentum_table, dampening, nesterov, decoupled, maximize,
              lr_in_buffer, on_drop, compensated, grad_scale, found_inf):
    """SGD over one group of a launch plan (the CPU twin: ``fastdecay._cpu.updates.sgd_group``)."""
    _group_call("sgd", group, arrays, step, grad_scale, found_inf, (lr_table, wd_table, momentum_table),
                lambda table, n_chunks, tables, step_ref, scale_ref, inf_ref: _plan.sgd_args(
                    table, n_chunks, *tables[:2], step_ref, tables[2], dampening, nesterov, decoupled, maximize,
                    lr_in_buffer, on_drop, scale_ref, inf_ref, compensated))


def adam_group(group, arrays, *, step, lr_table, wd_table, beta1_table, beta2, eps, decoupled, maximize, amsgrad,
               compensated, grad_scale, found_inf):
    """Adam over one group of a launch plan (the CPU twin: ``fastdecay._cpu.updates.adam_group``)."""
    _group_call("adam", group, arrays, step, grad_scale, found_inf, (lr_table, wd_table, beta1_table),
                lambda table, n_chunks, tables, step_ref, scale_ref, inf_ref: _plan.adam_args(
                    table, n_chunks, *tables[:2], step_ref, tables[2], beta2, eps, decoupled, maximize, amsgrad,
                    scale_ref, inf_ref, compensated))


def lion_group(group, arrays, *, step, lr_table, wd_table, beta1_table, beta2, maximize, compensated, grad_scale,
               found_inf):
    """Lion over one group of a launch plan (the CPU twin: ``fastdecay._cpu.updates.lion_group``)."""
    _group_call("lion", group, arrays, step, grad_scale, found_inf, (lr_table, wd_table, beta1_table),
                lambda table, n_chunks, tables, step_ref, scale_ref, inf_ref: _plan.lion_args(
                    table, n_chunks, *tables[:2], step_ref, tables[2], beta2, maximize, scale_ref, inf_ref,
                    compensated))


def sgd_step(params, grads, momentum_buffers, *, step, lr_table, wd_table, momentum_table, dampening, nesterov,
             decoupled, maximize, lr_in_buffer, on_drop, grad_scale, found_inf, increment_step=False):
    """SGD / heavy ball / Nesterov over lists of device arrays (see ``fastdecay.updates``);
    ``momentum_buffers`` is None without momentum."""
    _fused_call(
        "sgd", [("param", params), ("grad", grads), ("momentum_buffer", momentum_buffers)], step, grad_scale,
        found_inf, (lr_table, wd_table, momentum_table), increment_step,
        lambda table, n_chunks, tables, step_ref, scale_ref, inf_ref: _plan.sgd_args(
            table, n_chunks, *tables[:2], step_ref, tables[2], dampening, nesterov, decoupled, maximize,
            lr_in_buffer, on_drop, scale_ref, inf_ref),
    )


def adamw_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *, step, lr_table, wd_table, beta1_table,
               beta2, eps, decoupled, maximize, amsgrad, grad_scale, found_inf, increment_step=False):
    """Adam / AdamW / AMSGrad over lists of device arrays (see ``fastdecay.updates``)."""
    named = [("param", params), ("grad", grads), ("exp_avg", exp_avgs), ("exp_avg_sq", exp_avg_sqs),
             ("max_exp_avg_sq", max_exp_avg_sqs if amsgrad else None)]
    _fused_call(
        "adam", named, step, grad_scale, found_inf, (lr_table, wd_table, beta1_table), increment_step,
        lambda table, n_chunks, tables, step_ref, scale_ref, inf_ref: _plan.adam_args(
            table, n_chunks, *tables[:2], step_ref, tables[2], beta2, eps, decoupled, maximize, amsgrad, scale_ref,
            inf_ref),
    )
