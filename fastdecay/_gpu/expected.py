"""Exact expected dynamics on the GPU: the device twin of ``fastdecay._cpu.expected``'s
``propagate`` and ``weighted_sums`` (same arguments; ``fastdecay.expected_loss``
validates and prepares them). The state and the recorded sums are CuPy arrays on
the run's device; the read-only tables (curvature, noise, rows) and the chunk's
step coefficients (computed on the host by the CPU's ``step_coefficients``, from
the update rules) are host arrays copied there. ``kernels/expected.cu`` runs one
thread per (trajectory, coordinate) element with the chunk's time loop in registers.
"""

import numpy as np

from . import _plan
from . import _runtime as rt

xp = rt.xp
_MAX_BLOCKS = 2**31 - 1  # CUDA's largest grid in x


def device_of(x):
    return rt.device_of(x)


def _null_if_empty(a):
    return a if a is not None and a.size else None


def propagate(mw, mb, sww, swb, sbb, lam, lam_rows, var, var_rows, inv_batch, coef, coef_rows, active, d, n_blocks,
              first_step, n_steps, every, first_record, partial):
    """``fastdecay._cpu.expected.propagate`` on the GPU of ``mw`` (``n_blocks`` must be 1:
    a block of threads covers part of one trajectory and adds its sums atomically)."""
    n = inv_batch.shape[0]
    if n * d == 0 or n_steps == 0:
        return
    if n_blocks != 1 or partial.shape[1] != 1:
        raise ValueError(f"the GPU kernel records into one column block, got n_blocks={n_blocks}")
    device = rt.device_of(mw)
    # a block covers coordinates of one trajectory: no wider than d needs, in whole warps (the
    # record sums are warp reductions), so that few coordinates leave few threads idle
    threads = min(_plan.THREADS, 32 * ((int(d) + 31) // 32))
    tiles = (int(d) + threads - 1) // threads
    if n * tiles > _MAX_BLOCKS:  # (a block a trajectory's tile, and no grid-stride loop)
        raise ValueError(f"the GPU's expected dynamics take at most {_MAX_BLOCKS:,} blocks of trajectories, got {n:,} "
                         f"trajectories of {d} coordinates ({n * tiles:,} blocks): split the batch")
    with rt.context(device):
        tables = [rt.constant(a, device) for a in (lam, lam_rows, var, var_rows, inv_batch, coef_rows)]
        coef = rt.xp.asarray(coef)  # a new table every chunk: copied, not cached
        mask = rt.xp.asarray(active) if active.size else None  # likewise
        args = [("ptr", a) for a in (mw, _null_if_empty(mb), sww, _null_if_empty(swb), _null_if_empty(sbb))]
        args += [("ptr", tables[0]), ("ptr", tables[1]), ("ptr", tables[2]), ("ptr", tables[3]),
                 ("ptr", tables[4]), ("ptr", coef), ("ptr", tables[5]), ("ptr", mask),
                 ("i64", n), ("i64", int(d)), ("i64", tiles), ("i64", int(first_step)), ("i64", int(n_steps)),
                 ("i64", int(every)), ("i64", int(first_record)), ("ptr", _null_if_empty(partial)),
                 ("i64", partial.shape[2])]
        rt.launch("expected.cu", "expected_propagate", n * tiles, threads, args, device)


def weighted_sums(sww, lam, lam_rows, d, out):
    """out[i] = sum_k lam_k sww[i, k], on the GPU of ``sww``."""
    n = out.shape[0]
    device = rt.device_of(sww)
    with rt.context(device):
        table = rt.constant(lam, device).reshape(-1, int(d))
        rows = rt.constant(lam_rows, device)
        out[...] = (table[rows] * sww.reshape(n, int(d))).sum(axis=1)


def zeros(shape, device):
    with rt.context(device):
        return rt.xp.zeros(shape, dtype=np.float64)


def to_device(array, device):
    with rt.context(device):
        return rt.xp.asarray(array)
