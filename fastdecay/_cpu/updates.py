"""Numba kernels of the fused updates: one parallel pass over every tensor of a call.

A call covers a list of same-dtype tensors (one tensor is a list of one). The
tensors reach the kernel as int64 arrays of data addresses; the kernel rebuilds
each as a 1-D view (``numba.carray`` on a pointer made from the address), so a
list of 200 tensors is one kernel launch with one explicit signature per dtype.
Work is split into blocks of ``BLOCK`` elements (a tensor's last block may be
shorter); ``first_block[k]`` is the index of tensor k's first block, and the
kernel runs ``prange`` over all blocks of all tensors. The inner loop over a
block is contiguous and calls the rule of ``rules.py`` with per-step scalars
cast to the element dtype, so it vectorizes at full SIMD width.

Options (momentum, nesterov, decoupled, ...) are run-time arguments: two
compiled kernels per rule (float32, float64), whatever the flags, each compiled
or loaded from the cache on first use (``kernel(py_func, dtype)``). The flags
that decide which arrays are read or how the buffer moves (momentum, amsgrad,
nesterov, the first step) pick one of a few copies of the inner loop, so no
loop carries a branch per element. The gradient is always divided by
``grad_scale`` (1 without one: exact), so scaled and unscaled calls run the
same instructions and give the same bits.

The kernels never allocate and never validate: ``fastdecay.updates`` has
checked every address, size, dtype and option before it calls them. A nonzero
``found_inf`` returns before anything is read or written.
"""

import numpy as np
from numba import boolean, carray, float32, float64, get_num_threads, int64, njit, prange, set_num_threads, types, void
from numba.extending import intrinsic

from .rules import (
    adam_element,
    adam_scalars,
    buffer_scale_at,
    scheduled_rates,
    sgd_element,
    sgd_scalars,
)
from .schedule import TABLE, lr_at

BLOCK = 1 << 15  # elements per parallel work item (128 KiB of float32 per stream)
SERIAL_BELOW = 1 << 16  # calls with fewer elements in all run on the calling thread

ADDRESSES = int64[::1]


@intrinsic
def _pointer_like(typingctx, address, like):
    """A typed data pointer (dtype of the array ``like``) from an integer address."""
    sig = types.CPointer(like.dtype)(address, like)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


@njit(cache=True, error_model="numpy")
def _view(address, n, like):
    """The 1-D array of ``n`` elements (dtype of ``like``) at ``address``."""
    return carray(_pointer_like(address, like), n)


@njit(cache=True, error_model="numpy")
def _tensor_of_block(first_block, b):
    """Index k of the tensor that owns global block ``b`` (first_block is sorted)."""
    lo = 0
    hi = first_block.shape[0] - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if first_block[mid] <= b:
            lo = mid
        else:
            hi = mid
    return lo


@njit(cache=True, error_model="numpy")
def _block_span(first_block, sizes, b, itemsize):
    """(k, n, offset) of global block ``b``: its tensor, its element count, its byte offset there."""
    k = _tensor_of_block(first_block, b)
    lo = (b - first_block[k]) * BLOCK
    return k, min(lo + BLOCK, sizes[k]) - lo, lo * itemsize


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _sgd_block(w, g, buf, grad_scale, sign, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf, neg_lr,
               use_momentum, nesterov, first):
    """``sgd_element`` over one contiguous block; the kernel passes the flags as constants.

    The gradient is always divided by ``grad_scale`` (exact for 1), so scaled and
    unscaled calls run the same instructions.
    """
    if use_momentum:
        for i in range(w.shape[0]):
            w[i], buf[i] = sgd_element(w[i], g[i] / grad_scale, buf[i], sign, l2, shrink, buf_decay, grad_gain,
                                       nest_grad, nest_buf, neg_lr, True, nesterov, first)
    else:
        for i in range(w.shape[0]):
            w[i], _ = sgd_element(w[i], g[i] / grad_scale, w[i], sign, l2, shrink, buf_decay, grad_gain,
                                  nest_grad, nest_buf, neg_lr, False, False, False)


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _adam_block(w, g, m, v, vmax, grad_scale, sign, l2, shrink, w1, beta2, w2, neg_step_size, bc2_sqrt, eps,
                amsgrad, first):
    """``adam_element`` over one contiguous block (``vmax`` untouched without amsgrad)."""
    if amsgrad:
        for i in range(w.shape[0]):
            w[i], m[i], v[i], vmax[i] = adam_element(w[i], g[i] / grad_scale, m[i], v[i], vmax[i], sign, l2, shrink,
                                                     w1, beta2, w2, neg_step_size, bc2_sqrt, eps, True, first)
    else:
        for i in range(w.shape[0]):
            w[i], m[i], v[i], _ = adam_element(w[i], g[i] / grad_scale, m[i], v[i], w[i], sign, l2, shrink,
                                               w1, beta2, w2, neg_step_size, bc2_sqrt, eps, False, first)


def _signatures(n_address_arrays, *extra):
    return {
        np.dtype(np.float32): void(types.Array(float32, 1, "C"), *(ADDRESSES,) * n_address_arrays, *extra),
        np.dtype(np.float64): void(types.Array(float64, 1, "C"), *(ADDRESSES,) * n_address_arrays, *extra),
    }


_COMPILED = {}


def kernel(py_func, dtype):
    """The compiled entry kernel ``py_func`` for ``dtype``: one explicit signature each,
    compiled (or loaded from the on-disk cache) on first use, so a float32-only program
    never loads the float64 kernels."""
    key = (py_func, dtype)
    compiled = _COMPILED.get(key)
    if compiled is None:
        signature = _SIGNATURES[py_func][dtype]
        compiled = njit(signature, parallel=True, cache=True, error_model="numpy", fastmath={"contract"})(py_func)
        _COMPILED[key] = compiled
    return compiled


# like, params, grads, buffers, sizes, first_block,
# lr_table, wd_table, step, momentum_table, dampening, nesterov, decoupled, maximize,
# lr_in_buffer, on_drop, grad_scale, found_inf
_SGD_SIGNATURES = _signatures(
    5, TABLE, TABLE, float64, TABLE, float64, boolean, boolean, boolean, boolean, int64, float64, float64
)


def sgd_kernel(like, params, grads, buffers, sizes, first_block,
               lr_table, wd_table, step, momentum_table, dampening, nesterov, decoupled, maximize,
               lr_in_buffer, on_drop, grad_scale, found_inf):
    """SGD / heavy ball / Nesterov over the tensors at ``params`` (see ``rules.sgd_element``).

    ``buffers`` holds the momentum buffers' addresses (ignored without momentum);
    the momentum is row 0 of ``momentum_table`` at ``step`` (a schedule, as lr; where it
    is 0 the buffers are not touched, as torch's SGD); ``grad_scale`` divides the
    gradients when it is not 1.
    """
    if found_inf != 0.0:
        return
    dtype = like.dtype.type
    itemsize = like.itemsize
    first = step == 0.0
    lr, wd = scheduled_rates(lr_table, wd_table, step)
    momentum = lr_at(momentum_table, 0, step)
    scale = buffer_scale_at(lr_table, 0, step, on_drop)
    c = sgd_scalars(lr, wd, first, scale, momentum, dampening, nesterov, decoupled, maximize, lr_in_buffer)
    sign, l2, shrink = dtype(c[0]), dtype(c[1]), dtype(c[2])
    buf_decay, grad_gain, nest_grad, nest_buf, neg_lr = dtype(c[3]), dtype(c[4]), dtype(c[5]), dtype(c[6]), dtype(c[7])
    grad_scale_t = dtype(grad_scale)  # in the element dtype
    use_momentum = momentum != 0.0
    for b in prange(first_block[first_block.shape[0] - 1]):
        k, n, offset = _block_span(first_block, sizes, b, itemsize)
        w = _view(params[k] + offset, n, like)
        g = _view(grads[k] + offset, n, like)
        if not use_momentum:
            _sgd_block(w, g, w, grad_scale_t, sign, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf, neg_lr,
                       False, False, False)
            continue
        buf = _view(buffers[k] + offset, n, like)
        if first:
            _sgd_block(w, g, buf, grad_scale_t, sign, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf, neg_lr,
                       True, nesterov, True)
        elif nesterov:
            _sgd_block(w, g, buf, grad_scale_t, sign, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf, neg_lr,
                       True, True, False)
        else:
            _sgd_block(w, g, buf, grad_scale_t, sign, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf, neg_lr,
                       True, False, False)


# like, params, grads, exp_avgs, exp_avg_sqs, sizes, first_block, max_exp_avg_sqs,
# lr_table, wd_table, step, beta1_table, beta2, eps, decoupled, maximize, amsgrad, grad_scale, found_inf
_ADAM_SIGNATURES = _signatures(
    7, TABLE, TABLE, float64, TABLE, float64, float64, boolean, boolean, boolean, float64, float64
)


def adam_kernel(like, params, grads, exp_avgs, exp_avg_sqs, sizes, first_block, max_exp_avg_sqs,
                lr_table, wd_table, step, beta1_table, beta2, eps, decoupled, maximize, amsgrad, grad_scale,
                found_inf):
    """Adam / AdamW / AMSGrad over the tensors at ``params`` (see ``rules.adam_element``).

    beta1 is row 0 of ``beta1_table`` at ``step`` (a schedule, as lr; the bias
    correction 1 - beta1^(step+1) uses the current beta1, as torch's Adam does);
    ``max_exp_avg_sqs`` is read only with ``amsgrad``; ``grad_scale`` divides
    the gradients when it is not 1.
    """
    if found_inf != 0.0:
        return
    dtype = like.dtype.type
    itemsize = like.itemsize
    first = step == 0.0
    lr, wd = scheduled_rates(lr_table, wd_table, step)
    beta1 = lr_at(beta1_table, 0, step)
    c = adam_scalars(lr, wd, step, beta1, beta2, eps, decoupled, maximize)
    sign, l2, shrink, w1, b2, w2 = dtype(c[0]), dtype(c[1]), dtype(c[2]), dtype(c[3]), dtype(c[4]), dtype(c[5])
    neg_step_size, bc2_sqrt, e = dtype(c[6]), dtype(c[7]), dtype(c[8])
    grad_scale_t = dtype(grad_scale)  # in the element dtype
    for b in prange(first_block[first_block.shape[0] - 1]):
        k, n, offset = _block_span(first_block, sizes, b, itemsize)
        w = _view(params[k] + offset, n, like)
        g = _view(grads[k] + offset, n, like)
        m = _view(exp_avgs[k] + offset, n, like)
        v = _view(exp_avg_sqs[k] + offset, n, like)
        if amsgrad:
            vmax = _view(max_exp_avg_sqs[k] + offset, n, like)
            if first:
                _adam_block(w, g, m, v, vmax, grad_scale_t, sign, l2, shrink, w1, b2, w2, neg_step_size, bc2_sqrt, e,
                            True, True)
            else:
                _adam_block(w, g, m, v, vmax, grad_scale_t, sign, l2, shrink, w1, b2, w2, neg_step_size, bc2_sqrt, e,
                            True, False)
        elif first:
            _adam_block(w, g, m, v, w, grad_scale_t, sign, l2, shrink, w1, b2, w2, neg_step_size, bc2_sqrt, e,
                        False, True)
        else:
            _adam_block(w, g, m, v, w, grad_scale_t, sign, l2, shrink, w1, b2, w2, neg_step_size, bc2_sqrt, e,
                        False, False)


_SIGNATURES = {sgd_kernel: _SGD_SIGNATURES, adam_kernel: _ADAM_SIGNATURES}


def block_layout(sizes):
    """``first_block`` for the kernels: cumulative block counts, length len(sizes) + 1."""
    if len(sizes) == 1:  # the common one-tensor call, without NumPy's per-call overheads
        return np.array([0, (int(sizes[0]) + BLOCK - 1) // BLOCK], dtype=np.int64)
    counts = (np.asarray(sizes, dtype=np.int64) + (BLOCK - 1)) // BLOCK
    first_block = np.empty(len(counts) + 1, dtype=np.int64)
    first_block[0] = 0
    np.cumsum(counts, out=first_block[1:])
    return first_block


# ----------------------------------------------------------------------------- wrappers (the internal call shape)

_LIKE = {np.dtype(np.float32): np.empty(0, np.float32), np.dtype(np.float64): np.empty(0, np.float64)}
_TORCH_DTYPES = {"torch.float32": np.dtype(np.float32), "torch.float64": np.dtype(np.float64)}


def _dtype(x):
    if isinstance(x, np.ndarray):
        return x.dtype
    return _TORCH_DTYPES[str(x.dtype)]


def _groups(params):
    """[(dtype, indices)] in first-seen order: one kernel launch per dtype (one, usually)."""
    first = _dtype(params[0])
    dtypes = [first] + [_dtype(p) for p in params[1:]]
    if all(d == first for d in dtypes):
        return [(first, range(len(params)))]
    groups = {}
    for k, d in enumerate(dtypes):
        groups.setdefault(d, []).append(k)
    return list(groups.items())


def _table(streams, index):
    """(addresses, first_block) for the tensors at ``index``: int64 (len(streams) + 1, n),
    each stream's data addresses then the sizes; and ``block_layout`` of the sizes."""
    n = len(index)
    out = np.empty((len(streams) + 1, n), dtype=np.int64)
    for j, k in enumerate(index):
        for r, arrays in enumerate(streams):
            x = arrays[k]
            out[r, j] = x.ctypes.data if isinstance(x, np.ndarray) else x.data_ptr()
        p = streams[0][k]
        out[-1, j] = p.size if isinstance(p, np.ndarray) else p.numel()
    return out, block_layout(out[-1])


def _launch(kernel, n_elements, *args):
    """Run ``kernel``; small calls on the calling thread alone, since waking the thread
    pool costs more than their work (milliseconds on a busy machine)."""
    if n_elements >= SERIAL_BELOW:
        kernel(*args)
        return
    threads = get_num_threads()
    if threads == 1:
        kernel(*args)
        return
    set_num_threads(1)
    try:
        kernel(*args)
    finally:
        set_num_threads(threads)


def sgd_step(params, grads, momentum_buffers, *, step, lr_table, wd_table, momentum_table, dampening, nesterov,
             decoupled, maximize, lr_in_buffer, on_drop, grad_scale, found_inf):
    """Run ``sgd_kernel`` over validated lists of NumPy arrays / CPU torch tensors.

    The internal call shape shared with ``fastdecay._gpu.updates.sgd_step``
    (documented in ``fastdecay.updates``; ``momentum_buffers`` is None without
    momentum); nothing here checks its input.
    """
    scale = 1.0 if grad_scale is None else float(grad_scale)
    inf = 0.0 if found_inf is None else float(found_inf)
    use_momentum = momentum_buffers is not None
    streams = (params, grads, momentum_buffers) if use_momentum else (params, grads)
    for dtype, index in _groups(params):
        t, first_block = _table(streams, index)
        buffers = t[2] if use_momentum else t[0]
        _launch(kernel(sgd_kernel, dtype), int(t[-1].sum()), _LIKE[dtype], t[0], t[1], buffers, t[-1], first_block,
                lr_table, wd_table, float(step), momentum_table, float(dampening), bool(nesterov),
                bool(decoupled), bool(maximize), bool(lr_in_buffer), int(on_drop), scale, inf)


def adamw_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *, step, lr_table, wd_table, beta1_table,
               beta2, eps, decoupled, maximize, amsgrad, grad_scale, found_inf):
    """Run ``adam_kernel`` over validated lists of NumPy arrays / CPU torch tensors.

    The internal call shape shared with ``fastdecay._gpu.updates.adamw_step``.
    """
    scale = 1.0 if grad_scale is None else float(grad_scale)
    inf = 0.0 if found_inf is None else float(found_inf)
    streams = (params, grads, exp_avgs, exp_avg_sqs) + ((max_exp_avg_sqs,) if amsgrad else ())
    for dtype, index in _groups(params):
        t, first_block = _table(streams, index)
        vmax = t[4] if amsgrad else t[0]
        _launch(kernel(adam_kernel, dtype), int(t[-1].sum()), _LIKE[dtype], t[0], t[1], t[2], t[3], t[-1],
                first_block, vmax, lr_table, wd_table, float(step), beta1_table, float(beta2), float(eps),
                bool(decoupled), bool(maximize), bool(amsgrad), scale, inf)
