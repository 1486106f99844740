"""Fused updates on the GPU: the device twin of ``fastdecay._cpu.updates``.

Nothing here names an update rule: ``fused_group(kernel, ...)`` launches the
entry point ``<kernel>_<storage>`` of ``kernels/updates.cu`` (generated for
every kernel of ``fastdecay._rules.FUSED``) with the one argument list every
fused entry point takes (``fastdecay._gpu._plan.fused_args``). Same internal
call shape as the CPU backend (documented in ``fastdecay._fused``, which
checked everything before calling), over CuPy arrays or CUDA torch tensors.
One launch per (parameter dtype, state dtype) covers every tensor of the call
(the kernel reads a device table of their addresses and sizes). ``step``,
``grad_scale`` and ``found_inf`` may be 0-d device arrays, read inside the
kernel, so a captured CUDA graph replays with the current step's learning rate
and weight decay; ``fused_step`` (lists of arrays, for tests and simple
callers) with ``increment_step=True`` advances a device ``step`` by one after
the update, on the same stream (a graph then counts its own replays), unless
``found_inf`` is nonzero (a skipped update is not a step, as in torch).

Checked here, before any launch: all arrays on one device (``fused_step``),
device scalars on that device with a supported dtype. The schedule tables and
the tensor table are copied to the device once and cached by content, so calls
after the first (and graph capture after a warm-up) neither allocate nor copy.
"""

import numpy as np

from .._rules import FUSED
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


def _entry(kernel, param, state, n_chunks, device):
    """(entry point, blocks) of an update launch over ``n_chunks`` chunks."""
    return f"{kernel}_{_plan.kernel_suffix(param, state)}", _plan.update_blocks(n_chunks, rt.multiprocessors(device))


def _launch_table(kernel, param, state, table, n_chunks, device, kernel_args):
    if n_chunks == 0:
        return
    args = kernel_args(rt.constant(table, device), n_chunks)
    name, blocks = _entry(kernel, param, state, n_chunks, device)
    rt.launch("updates.cu", name, blocks, _plan.THREADS, args, device)


def _scalars(device, step, grad_scale, found_inf, increment_step):
    step_ref = _scalar("step", step, device, 0)
    scale_ref = _scalar("grad_scale", grad_scale, device, 1.0)
    inf_ref = _scalar("found_inf", found_inf, device, 0.0)
    if increment_step and (step_ref[0] is None or step_ref[1] == _plan.SC_BOOL):
        raise ValueError("increment_step=True needs step as a 0-d int or float array on the device, "
                         f"got {'a number' if step_ref[0] is None else 'a bool array'}")
    return step_ref, scale_ref, inf_ref


def _skipped(inf_ref):
    """found_inf given as a nonzero number: the call writes nothing (a device found_inf is
    read by the kernels, which then write nothing)."""
    return inf_ref[0] is None and inf_ref[2] != 0.0


def _increment(step_ref, inf_ref, device):
    args = [("ptr", step_ref[0]), ("i32", step_ref[1]), ("ptr", inf_ref[0]), ("i32", inf_ref[1])]
    rt.launch("updates.cu", "step_increment", 1, 1, args, device)


def _scalar_key(ref):
    """The part of a ``scalar_ref`` a prepared launch depends on: a device scalar's identity
    and address (``t.data = ...`` moves it), else the number."""
    return (ref[1], ref[2]) if ref[0] is None else (ref[1], id(ref[0]), rt.pointer(ref[0]))


_PREPARED_PER_GROUP = 4  # gradients that alternate between a few sets of addresses each keep theirs


def fused_group(kernel, group, arrays, *, step, tables, options, compensated, grad_scale, found_inf):
    """The fused update ``kernel`` (a key of ``fastdecay._rules.FUSED``) over one group of a
    ``fastdecay._update_plan.Plan`` (checked there; its device is ``group.device``):
    ``arrays`` the call's parameters (torch's stream), ``tables`` the (lr, weight decay,
    scheduled coefficient) tables, ``options`` the values of ``FUSED[kernel].options`` in
    order. The call shape both backends share (``fastdecay._cpu.updates.fused_group``).

    A launch's arguments, converted, are kept with the group under everything they were
    made from (the tensor addresses, the tables' identities, the options, the device
    scalars' addresses): a training loop's next step changes only the step, so it
    launches with no tensor table built, no table looked up and no argument converted
    (the host's part of a small model's step). Not while a CUDA graph is captured: the
    capture registers every device table it reads (``_runtime.constant``)."""
    device = group.device
    step_ref, scale_ref, inf_ref = _scalars(device, step, grad_scale, found_inf, False)
    if _skipped(inf_ref):
        return
    stream = rt.launch_stream(device, arrays)
    key = (kernel, group.addresses.tobytes(), options, bool(compensated), _scalar_key(scale_ref),
           _scalar_key(inf_ref), step_ref[1], None if step_ref[0] is None else _scalar_key(step_ref),
           *map(id, tables))
    prepared = group.launch.get(key) if group.launch is not None else None
    if prepared is not None and rt.current_device() == device and not rt.capturing(stream):
        name, grid, values, _ = prepared
        if step_ref[0] is None:  # the step by value: the one argument that changes
            values = values[:_plan.STEP_VALUE] + (rt.value("f64", step_ref[2]),) + values[_plan.STEP_VALUE + 1:]
        rt.launch_values("updates.cu", name, grid, _plan.THREADS, values, device, stream)
        return
    table, n_chunks = _plan.group_table(group.addresses, group.sizes)
    if n_chunks == 0:
        return
    name, grid = _entry(kernel, group.param, group.state, n_chunks, device)
    with rt.context(device, arrays):
        device_tables = [rt.constant(t, device) for t in tables]
        args = _plan.fused_args(kernel, rt.constant(table, device), n_chunks, device_tables, step_ref, options,
                                scale_ref, inf_ref, compensated)
        values = rt.prepare(args)
        rt.launch_values("updates.cu", name, grid, _plan.THREADS, values, device)
    if all(map(_plan.frozen, tables)):  # (the key holds their identities: kept alive with the launch below)
        if group.launch is None or len(group.launch) >= _PREPARED_PER_GROUP:
            group.launch = {}
        group.launch[key] = (name, grid, values, (tables, step_ref[0], scale_ref[0], inf_ref[0]))


def _row_names(kernel):
    """The names of the address-table rows of ``kernel`` from the parameters to BUF2 (for messages)."""
    names = ["param", "grad", "buf0", "buf1", "buf2"]
    for key, row in FUSED[kernel].state:
        names[row] = key
    return names


def fused_step(kernel, streams, *, step, tables, options, grad_scale, found_inf, increment_step=False,
               state_dtype=None):
    """The fused update ``kernel`` over lists of device arrays, one launch per (parameter
    dtype, state dtype): ``streams`` one list per address-table row from the parameters
    to BUF2 (param, grad, then the state buffers at their rows in ``FUSED[kernel].state``;
    None where absent), the rest as ``fused_group`` takes it. A device ``step`` is advanced
    by one after the update with ``increment_step=True``."""
    named_lists = list(zip(_row_names(kernel), streams))
    device = _device(named_lists)
    step_ref, scale_ref, inf_ref = _scalars(device, step, grad_scale, found_inf, increment_step)
    if _skipped(inf_ref):
        return
    params = streams[0]
    lists = list(streams[1:]) + [None] * (6 - len(streams))  # grad, buf0, buf1, buf2, compensation (none)
    with rt.context(device, params):
        device_tables = [rt.constant(t, device) for t in tables]
        for (param, state), index in _groups(params, state_dtype).items():
            rows = []
            for k in index:
                ptrs = [rt.pointer(lst[k]) if lst is not None else 0 for lst in lists]
                rows.append((rt.pointer(params[k]), *ptrs[:4], _size(params[k]), ptrs[4]))
            table, n_chunks = _plan.tensor_table(rows)
            _launch_table(kernel, param, state, table, n_chunks, device,
                          lambda table, n_chunks: _plan.fused_args(kernel, table, n_chunks, device_tables, step_ref,
                                                                   options, scale_ref, inf_ref))
        if increment_step:
            _increment(step_ref, inf_ref, device)
