"""Batched quadratic simulations on the GPU: the device twin of
``fastdecay._cpu.simulate.simulate_chunk`` (same arguments, as CuPy arrays;
``fastdecay.simulate`` validates and prepares them). ``kernels/simulate.cu``
runs one thread per trajectory x coordinate with the time loop in registers
(one thread per trajectory where coordinates must cooperate: recording with
d > 1, or per-trajectory rates with d > 1)."""

import numpy as np

from . import _plan
from . import _runtime as rt


def simulate_chunk(w, buf, sq, lam, d, opt, lr_table, lr_rows, lr_ratio, lr_state, wd_table, wd_rows, wd_ratio,
                   wd_state, mom_table, mom_rows, mom_ratio, mom_state, step_scalars, beta2, eps, on_drop, noise, seed,
                   offset, first_step, n_steps, every, rec_loss, rec_disp, rec_lr):
    """Advance every trajectory by steps ``first_step .. first_step + n_steps - 1`` in place.

    Where every trajectory shares the rates, a first launch turns the chunk's
    per-step scalars into element-type update coefficients (and Adam's bias
    corrections) once, so the time loop of each thread only reads them.
    """
    if lam.shape[0] == 0:
        return
    device = rt.device_of(w)
    suffix = "f32" if w.dtype == np.float32 else "f64"
    with rt.context(device):
        coef_shape, bias_shape = _plan.simulate_scratch(opt, lr_rows, wd_rows, mom_rows, n_steps)
        coef = rt.empty(coef_shape, w.dtype, device) if coef_shape else None
        bias = rt.empty(bias_shape, np.float64, device) if bias_shape else None
        for kernel, args, threads in _plan.simulate_plan(
                w, buf, sq, lam, d, opt, lr_table, lr_rows, lr_ratio, lr_state, wd_table, wd_rows, wd_ratio,
                wd_state, mom_table, mom_rows, mom_ratio, mom_state, step_scalars, beta2, eps, on_drop, noise, seed,
                offset, first_step, n_steps, every, rec_loss, rec_disp, rec_lr, coef, bias):
            if threads:
                rt.launch("simulate.cu", f"{kernel}_{suffix}", _plan.blocks_for(threads), _plan.THREADS, args,
                          device)


def philox_fill(seed, first_trajectory, step, n, d, device=None):
    """The noise of step ``step`` for trajectories ``first_trajectory .. + n - 1`` and
    coordinates ``0 .. d - 1``, drawn on the GPU: ``(words, normals)``, uint32
    ``(n, d, 4)`` Philox4x32-10 outputs of the counter (trajectory, step >> 2,
    coordinate) and float32 ``(n, d)`` standard normals, the
    numbers ``fastdecay._cpu.philox.normal`` gives, bit for bit (words and normals:
    ``kernels/philox.cuh`` computes the log, cos and sin of Box-Muller from correctly
    rounded operations and explicit fused multiply-adds in the CPU's order)."""
    device = rt.current_device() if device is None else int(device)
    words = rt.empty((n, d, 4), np.uint32, device)
    normals = rt.empty((n, d), np.float32, device)
    if n * d:
        args = [("u64", int(seed)), ("u64", int(first_trajectory)), ("u32", int(step)), ("i64", int(n)),
                ("i64", int(d)), ("ptr", words), ("ptr", normals)]
        with rt.context(device):
            rt.launch("simulate.cu", "philox_fill", _plan.blocks_for(n * d), _plan.THREADS, args, device)
    return words, normals
