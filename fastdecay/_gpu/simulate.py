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
                   wd_state, step_scalars, momentum, beta1, beta2, eps, on_drop, noise, seed, offset, first_step,
                   n_steps, every, rec_loss, rec_disp, rec_lr):
    """Advance every trajectory by steps ``first_step .. first_step + n_steps - 1`` in place."""
    args, threads = _plan.simulate_plan(
        w, buf, sq, lam, d, opt, lr_table, lr_rows, lr_ratio, lr_state, wd_table, wd_rows, wd_ratio, wd_state,
        step_scalars, momentum, beta1, beta2, eps, on_drop, noise, seed, offset, first_step, n_steps, every,
        rec_loss, rec_disp, rec_lr)
    if threads == 0:
        return
    device = rt.device_of(w)
    name = "simulate_f32" if w.dtype == np.float32 else "simulate_f64"
    with rt.context(device):
        rt.launch("simulate.cu", name, _plan.blocks_for(threads), _plan.THREADS, args, device)
