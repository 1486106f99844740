"""Numba kernels of the fused updates: one parallel pass over every tensor of a call.

A call covers a list of tensors of one storage combination (parameter dtype,
state dtype); one tensor is a list of one. The tensors reach the kernel as an
int64 table of data addresses, one row per stream (``ROWS``: parameter,
gradient, three state buffers, compensation buffer; 0 where a stream is
absent); the kernel rebuilds each as a 1-D view (``numba.carray`` on a pointer
made from the address), so a list of 2,000 tensors is one kernel launch with
one explicit signature per storage combination. Work is split into blocks of
``BLOCK`` elements (a tensor's last block may be shorter); ``first_block[k]`` is
the index of tensor k's first block, and the kernel runs ``prange`` over all
blocks of all tensors. The inner loop over a block is contiguous and calls the
rule of ``rules.py`` with per-step scalars cast to the math dtype, so it
vectorizes at full SIMD width.

Storage and math (``storage.py``): float64 and float32 tensors compute in their
own dtype; float16 and bfloat16 tensors are loaded to float32, updated there and
rounded back on store. State buffers may be stored in another dtype than the
parameter (float32 or bfloat16 moments for 16-bit parameters). With
``compensated`` each parameter has a Kahan buffer in its own dtype holding what
the last stores rounded away: the update y = (w_new - w) + c is added to w, and
c keeps y - (stored - w), so small updates of a bfloat16 parameter accumulate
instead of vanishing.

Options (momentum, nesterov, decoupled, ...) are run-time arguments: one
compiled kernel per rule and storage combination, whatever the flags, compiled
or loaded from the cache on first use (``kernel(py_func, param, state)``). The
flags that decide which arrays are read or how the buffer moves (momentum,
amsgrad, nesterov, the first step, compensation) pick one of a few copies of
the inner loop, so no loop carries a branch per element. The gradient is always
divided by ``grad_scale`` (1 without one: exact), so scaled and unscaled calls
run the same instructions and give the same bits.

The kernels never allocate and never validate: ``fastdecay.updates`` has
checked every address, size, dtype, layout, overlap and option before it calls
them. A nonzero ``found_inf`` returns before anything is read or written.

Thread safety: Numba's ``workqueue`` threading layer (used where neither TBB
nor OpenMP is available) aborts the process when two threads launch parallel
kernels at once; ``launch`` serializes parallel launches under a lock when that
layer is the one in use, and lets them run concurrently on the others.
"""

import threading

import numba
import numpy as np
from numba import boolean, carray, float32, float64, get_num_threads, int64, njit, prange, set_num_threads, types, void
from numba.extending import intrinsic

from .rules import (
    adam_element,
    adam_scalars,
    buffer_scale_at,
    lion_element,
    lion_scalars,
    scheduled_rates,
    sgd_element,
    sgd_scalars,
)
from .schedule import TABLE, lr_at
from .storage import narrow, widen

BLOCK = 1 << 15  # elements per parallel work item (128 KiB of float32 per stream)
SERIAL_BELOW = 1 << 16  # calls with fewer elements in all run on the calling thread

# rows of the address table
PARAM, GRAD, BUF0, BUF1, BUF2, COMP = range(6)
ROWS = 6

ADDRESSES = types.Array(int64, 2, "C", readonly=True)
SIZES = types.Array(int64, 1, "C", readonly=True)

# storage dtype name -> (NumPy view dtype, Numba view type, math dtype)
STORAGE = {
    "float64": (np.float64, float64, np.float64),
    "float32": (np.float32, float32, np.float32),
    "bfloat16": (np.uint16, types.uint16, np.float32),
    "float16": (np.int16, types.int16, np.float32),
}
_LIKE = {name: np.empty(0, view) for name, (view, _, _) in STORAGE.items()}
_MATH_LIKE = {name: np.empty(0, math) for name, (_, _, math) in STORAGE.items()}


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
def _block_span(first_block, sizes, b):
    """(k, n, lo) of global block ``b``: its tensor, its element count, its first element there."""
    k = _tensor_of_block(first_block, b)
    lo = (b - first_block[k]) * BLOCK
    return k, min(lo + BLOCK, sizes[k]) - lo, lo


@njit(cache=True, error_model="numpy")
def _store_param(w, comp, i, old, new, compensated):
    """Store the updated parameter ``new`` (math dtype) over ``old`` (its value before the step)."""
    if compensated:
        y = (new - old) + widen(comp[i])
        stored = narrow(old + y, w[i])
        w[i] = stored
        comp[i] = narrow(y - (widen(stored) - old), w[i])
    else:
        w[i] = narrow(new, w[i])


@njit(cache=True, error_model="numpy")
def _sgd_block(w, g, buf, comp, grad_scale, sign, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf, neg_lr,
               use_momentum, nesterov, first, compensated):
    """``sgd_element`` over one contiguous block; the kernel passes the flags as constants.

    The gradient is always divided by ``grad_scale`` (exact for 1), so scaled and
    unscaled calls run the same instructions.
    """
    if use_momentum:
        for i in range(w.shape[0]):
            old = widen(w[i])
            new, b = sgd_element(old, widen(g[i]) / grad_scale, widen(buf[i]), sign, l2, shrink, buf_decay,
                                 grad_gain, nest_grad, nest_buf, neg_lr, True, nesterov, first)
            buf[i] = narrow(b, buf[i])
            _store_param(w, comp, i, old, new, compensated)
    else:
        for i in range(w.shape[0]):
            old = widen(w[i])
            new, _ = sgd_element(old, widen(g[i]) / grad_scale, old, sign, l2, shrink, buf_decay, grad_gain,
                                 nest_grad, nest_buf, neg_lr, False, False, False)
            _store_param(w, comp, i, old, new, compensated)


@njit(cache=True, error_model="numpy")
def _adam_block(w, g, m, v, vmax, comp, grad_scale, sign, l2, shrink, w1, beta2, w2, neg_step_size, bc2_sqrt, eps,
                amsgrad, first, compensated):
    """``adam_element`` over one contiguous block (``vmax`` untouched without amsgrad)."""
    if amsgrad:
        for i in range(w.shape[0]):
            old = widen(w[i])
            new, mi, vi, xi = adam_element(old, widen(g[i]) / grad_scale, widen(m[i]), widen(v[i]), widen(vmax[i]),
                                           sign, l2, shrink, w1, beta2, w2, neg_step_size, bc2_sqrt, eps, True, first)
            m[i] = narrow(mi, m[i])
            v[i] = narrow(vi, v[i])
            vmax[i] = narrow(xi, vmax[i])
            _store_param(w, comp, i, old, new, compensated)
    else:
        for i in range(w.shape[0]):
            old = widen(w[i])
            mi, vi = widen(m[i]), widen(v[i])
            new, mi, vi, _ = adam_element(old, widen(g[i]) / grad_scale, mi, vi, vi, sign, l2, shrink, w1, beta2,
                                          w2, neg_step_size, bc2_sqrt, eps, False, first)
            m[i] = narrow(mi, m[i])
            v[i] = narrow(vi, v[i])
            _store_param(w, comp, i, old, new, compensated)


@njit(cache=True, error_model="numpy")
def _lion_block(w, g, m, comp, grad_scale, sign, shrink, beta1, w1, beta2, w2, neg_lr, first, compensated):
    """``lion_element`` over one contiguous block."""
    for i in range(w.shape[0]):
        old = widen(w[i])
        new, mi = lion_element(old, widen(g[i]) / grad_scale, widen(m[i]), sign, shrink, beta1, w1, beta2, w2, neg_lr,
                               first)
        m[i] = narrow(mi, m[i])
        _store_param(w, comp, i, old, new, compensated)


def _signature(param, state, *extra):
    """(like_param, like_state, like_math, addresses, sizes, first_block, *extra) for one storage combination."""
    _, param_type, math = STORAGE[param]
    _, state_type, _ = STORAGE[state]
    math_type = float64 if math is np.float64 else float32
    return void(types.Array(param_type, 1, "C"), types.Array(state_type, 1, "C"), types.Array(math_type, 1, "C"),
                ADDRESSES, SIZES, SIZES, *extra)


_COMPILED = {}


def kernel(py_func, param, state):
    """The compiled entry kernel ``py_func`` for parameters stored as ``param`` and state as
    ``state`` (dtype names): one explicit signature each, compiled (or loaded from the
    on-disk cache) on first use, so a float32-only program never loads the others."""
    key = (py_func, param, state)
    compiled = _COMPILED.get(key)
    if compiled is None:
        signature = _signature(param, state, *_EXTRA[py_func])
        compiled = njit(signature, parallel=True, cache=True, error_model="numpy")(py_func)
        _COMPILED[key] = compiled
    return compiled


def sgd_kernel(like, like_state, like_math, addresses, sizes, first_block,
               lr_table, wd_table, step, momentum_table, dampening, nesterov, decoupled, maximize,
               lr_in_buffer, on_drop, compensated, grad_scale, found_inf):
    """SGD / heavy ball / Nesterov over the tensors of ``addresses`` (see ``rules.sgd_element``).

    Rows: PARAM, GRAD, BUF0 (the momentum buffers; read only with momentum),
    COMP (the compensation buffers; read only when ``compensated``). The momentum is
    row 0 of ``momentum_table`` at ``step`` (a schedule, as lr; where it is 0 the
    buffers are not touched, as torch's SGD).
    """
    if found_inf != 0.0:
        return
    dtype = like_math.dtype.type
    first = step == 0.0
    lr, wd = scheduled_rates(lr_table, wd_table, step)
    momentum = lr_at(momentum_table, 0, step)
    scale = buffer_scale_at(lr_table, 0, step, on_drop)
    c = sgd_scalars(lr, wd, first, scale, momentum, dampening, nesterov, decoupled, maximize, lr_in_buffer)
    sign, l2, shrink = dtype(c.sign), dtype(c.l2), dtype(c.shrink)
    buf_decay, grad_gain, nest_grad = dtype(c.buf_decay), dtype(c.grad_gain), dtype(c.nest_grad)
    nest_buf, neg_lr = dtype(c.nest_buf), dtype(c.neg_lr)
    grad_scale_t = dtype(grad_scale)  # in the math dtype
    use_momentum = momentum != 0.0
    for b in prange(first_block[first_block.shape[0] - 1]):
        k, n, lo = _block_span(first_block, sizes, b)
        w = _view(addresses[PARAM, k], sizes[k], like)[lo:lo + n]
        g = _view(addresses[GRAD, k], sizes[k], like)[lo:lo + n]
        comp = _view(addresses[COMP, k], sizes[k], like)[lo:lo + n] if compensated else w
        if not use_momentum:
            if compensated:
                _sgd_block(w, g, w, comp, grad_scale_t, sign, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf,
                           neg_lr, False, False, False, True)
            else:
                _sgd_block(w, g, w, w, grad_scale_t, sign, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf,
                           neg_lr, False, False, False, False)
            continue
        buf = _view(addresses[BUF0, k], sizes[k], like_state)[lo:lo + n]
        if compensated:  # one copy of the loop, flags read at run time (compensation is the rarer path)
            _sgd_block(w, g, buf, comp, grad_scale_t, sign, l2, shrink, buf_decay, grad_gain, nest_grad,
                       nest_buf, neg_lr, True, nesterov, first, True)
        elif first:
            _sgd_block(w, g, buf, w, grad_scale_t, sign, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf,
                       neg_lr, True, nesterov, True, False)
        elif nesterov:
            _sgd_block(w, g, buf, w, grad_scale_t, sign, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf,
                       neg_lr, True, True, False, False)
        else:
            _sgd_block(w, g, buf, w, grad_scale_t, sign, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf,
                       neg_lr, True, False, False, False)


def adam_kernel(like, like_state, like_math, addresses, sizes, first_block,
                lr_table, wd_table, step, beta1_table, beta2, eps, decoupled, maximize, amsgrad, compensated,
                grad_scale, found_inf):
    """Adam / AdamW / AMSGrad over the tensors of ``addresses`` (see ``rules.adam_element``).

    Rows: PARAM, GRAD, BUF0 (exp_avg), BUF1 (exp_avg_sq), BUF2 (max_exp_avg_sq;
    read only with ``amsgrad``), COMP (read only when ``compensated``). beta1 is row 0
    of ``beta1_table`` at ``step`` (a schedule, as lr; the bias correction
    1 - beta1^(step+1) uses the current beta1, as torch's Adam does).
    """
    if found_inf != 0.0:
        return
    dtype = like_math.dtype.type
    first = step == 0.0
    lr, wd = scheduled_rates(lr_table, wd_table, step)
    beta1 = lr_at(beta1_table, 0, step)
    c = adam_scalars(lr, wd, step, beta1, beta2, eps, decoupled, maximize)
    sign, l2, shrink, w1, b2, w2 = dtype(c.sign), dtype(c.l2), dtype(c.shrink), dtype(c.w1), dtype(c.beta2), dtype(c.w2)
    neg_step_size, bc2_sqrt, e = dtype(c.neg_step_size), dtype(c.bc2_sqrt), dtype(c.eps)
    grad_scale_t = dtype(grad_scale)  # in the math dtype
    for b in prange(first_block[first_block.shape[0] - 1]):
        k, n, lo = _block_span(first_block, sizes, b)
        w = _view(addresses[PARAM, k], sizes[k], like)[lo:lo + n]
        g = _view(addresses[GRAD, k], sizes[k], like)[lo:lo + n]
        m = _view(addresses[BUF0, k], sizes[k], like_state)[lo:lo + n]
        v = _view(addresses[BUF1, k], sizes[k], like_state)[lo:lo + n]
        vmax = _view(addresses[BUF2, k], sizes[k], like_state)[lo:lo + n] if amsgrad else v
        comp = _view(addresses[COMP, k], sizes[k], like)[lo:lo + n] if compensated else w
        if compensated:  # one copy of the loop, flags read at run time (compensation is the rarer path)
            _adam_block(w, g, m, v, vmax, comp, grad_scale_t, sign, l2, shrink, w1, b2, w2, neg_step_size,
                        bc2_sqrt, e, amsgrad, first, True)
        elif amsgrad:
            if first:
                _adam_block(w, g, m, v, vmax, w, grad_scale_t, sign, l2, shrink, w1, b2, w2, neg_step_size,
                            bc2_sqrt, e, True, True, False)
            else:
                _adam_block(w, g, m, v, vmax, w, grad_scale_t, sign, l2, shrink, w1, b2, w2, neg_step_size,
                            bc2_sqrt, e, True, False, False)
        elif first:
            _adam_block(w, g, m, v, v, w, grad_scale_t, sign, l2, shrink, w1, b2, w2, neg_step_size, bc2_sqrt, e,
                        False, True, False)
        else:
            _adam_block(w, g, m, v, v, w, grad_scale_t, sign, l2, shrink, w1, b2, w2, neg_step_size, bc2_sqrt, e,
                        False, False, False)


def lion_kernel(like, like_state, like_math, addresses, sizes, first_block,
                lr_table, wd_table, step, beta1_table, beta2, maximize, compensated, grad_scale, found_inf):
    """Lion over the tensors of ``addresses`` (see ``rules.lion_element``).

    Rows: PARAM, GRAD, BUF0 (exp_avg), COMP (read only when ``compensated``). beta1 is
    row 0 of ``beta1_table`` at ``step`` (a schedule, as lr).
    """
    if found_inf != 0.0:
        return
    dtype = like_math.dtype.type
    first = step == 0.0
    lr, wd = scheduled_rates(lr_table, wd_table, step)
    c = lion_scalars(lr, wd, lr_at(beta1_table, 0, step), beta2, maximize)
    sign, shrink, beta1, w1, b2, w2, neg_lr = (dtype(c.sign), dtype(c.shrink), dtype(c.beta1), dtype(c.w1),
                                               dtype(c.beta2), dtype(c.w2), dtype(c.neg_lr))
    grad_scale_t = dtype(grad_scale)  # in the math dtype
    for b in prange(first_block[first_block.shape[0] - 1]):
        k, n, lo = _block_span(first_block, sizes, b)
        w = _view(addresses[PARAM, k], sizes[k], like)[lo:lo + n]
        g = _view(addresses[GRAD, k], sizes[k], like)[lo:lo + n]
        m = _view(addresses[BUF0, k], sizes[k], like_state)[lo:lo + n]
        comp = _view(addresses[COMP, k], sizes[k], like)[lo:lo + n] if compensated else w
        if compensated:
            _lion_block(w, g, m, comp, grad_scale_t, sign, shrink, beta1, w1, b2, w2, neg_lr, first, True)
        elif first:
            _lion_block(w, g, m, w, grad_scale_t, sign, shrink, beta1, w1, b2, w2, neg_lr, True, False)
        else:
            _lion_block(w, g, m, w, grad_scale_t, sign, shrink, beta1, w1, b2, w2, neg_lr, False, False)


# after (like, like_state, like_math, addresses, sizes, first_block):
_EXTRA = {
    # lr_table, wd_table, step, momentum_table, dampening, nesterov, decoupled, maximize, lr_in_buffer,
    # on_drop, compensated, grad_scale, found_inf
    sgd_kernel: (TABLE, TABLE, float64, TABLE, float64, boolean, boolean, boolean, boolean, int64, boolean,
                 float64, float64),
    # lr_table, wd_table, step, beta1_table, beta2, eps, decoupled, maximize, amsgrad, compensated, grad_scale,
    # found_inf
    adam_kernel: (TABLE, TABLE, float64, TABLE, float64, float64, boolean, boolean, boolean, boolean, float64,
                  float64),
    # lr_table, wd_table, step, beta1_table, beta2, maximize, compensated, grad_scale, found_inf
    lion_kernel: (TABLE, TABLE, float64, TABLE, float64, boolean, boolean, float64, float64),
}


def block_layout(sizes):
    """``first_block`` for the kernels: cumulative block counts, length len(sizes) + 1."""
    counts = (np.asarray(sizes, dtype=np.int64) + (BLOCK - 1)) // BLOCK
    first_block = np.empty(len(counts) + 1, dtype=np.int64)
    first_block[0] = 0
    np.cumsum(counts, out=first_block[1:])
    return first_block


# ----------------------------------------------------------------------------- launching

_PARALLEL_LOCK = threading.Lock()
_serialize = None  # unknown until the first parallel launch tells which threading layer Numba chose


def _parallel(kernel, args):
    """Run a parallel kernel, one at a time under the ``workqueue`` layer (not thread-safe)."""
    global _serialize
    if _serialize is False:
        kernel(*args)
        return
    with _PARALLEL_LOCK:
        kernel(*args)
        if _serialize is None:
            _serialize = numba.threading_layer() == "workqueue"


def launch(kernel, n_elements, args):
    """Run ``kernel``; small calls on the calling thread alone, since waking the thread
    pool costs more than their work (milliseconds on a busy machine)."""
    if n_elements >= SERIAL_BELOW:
        _parallel(kernel, args)
        return
    threads = get_num_threads()
    if threads == 1:
        _parallel(kernel, args)
        return
    set_num_threads(1)  # per calling thread in Numba
    try:
        _parallel(kernel, args)
    finally:
        set_num_threads(threads)


def sgd_launch(param, state, addresses, sizes, first_block, n_elements, *, step, lr_table, wd_table, momentum_table,
               dampening, nesterov, decoupled, maximize, lr_in_buffer, on_drop, compensated, grad_scale, found_inf):
    """``sgd_kernel`` over the tensors of one storage combination (``param``, ``state``: dtype
    names), as ``fastdecay.updates`` plans them: ``addresses`` int64 (ROWS, n), ``sizes``
    int64 (n,), ``first_block`` from ``block_layout(sizes)``, ``n_elements`` their sum;
    schedule tables (lr, weight decay, momentum / beta1) read-only float64 ``(1, segments,
    WIDTH)``; scalars as Python numbers."""
    scale = 1.0 if grad_scale is None else float(grad_scale)
    inf = 0.0 if found_inf is None else float(found_inf)
    launch(kernel(sgd_kernel, param, state), n_elements,
           (_LIKE[param], _LIKE[state], _MATH_LIKE[param], addresses, sizes, first_block,
            lr_table, wd_table, float(step), momentum_table, float(dampening), bool(nesterov), bool(decoupled),
            bool(maximize), bool(lr_in_buffer), int(on_drop), bool(compensated), scale, inf))


def adam_launch(param, state, addresses, sizes, first_block, n_elements, *, step, lr_table, wd_table, beta1_table,
                beta2, eps, decoupled, maximize, amsgrad, compensated, grad_scale, found_inf):
    """``adam_kernel`` over the tensors of one storage combination (see ``sgd_launch``)."""
    scale = 1.0 if grad_scale is None else float(grad_scale)
    inf = 0.0 if found_inf is None else float(found_inf)
    launch(kernel(adam_kernel, param, state), n_elements,
           (_LIKE[param], _LIKE[state], _MATH_LIKE[param], addresses, sizes, first_block,
            lr_table, wd_table, float(step), beta1_table, float(beta2), float(eps), bool(decoupled),
            bool(maximize), bool(amsgrad), bool(compensated), scale, inf))


def lion_launch(param, state, addresses, sizes, first_block, n_elements, *, step, lr_table, wd_table, beta1_table,
                beta2, maximize, compensated, grad_scale, found_inf):
    """``lion_kernel`` over the tensors of one storage combination (see ``sgd_launch``)."""
    scale = 1.0 if grad_scale is None else float(grad_scale)
    inf = 0.0 if found_inf is None else float(found_inf)
    launch(kernel(lion_kernel, param, state), n_elements,
           (_LIKE[param], _LIKE[state], _MATH_LIKE[param], addresses, sizes, first_block,
            lr_table, wd_table, float(step), beta1_table, float(beta2), bool(maximize), bool(compensated), scale, inf))


def _blocks(group):
    if group.first_block is None:
        group.first_block = block_layout(group.sizes)
    return group.first_block


def sgd_group(group, arrays, **options):
    """``sgd_launch`` over one group of a ``fastdecay._update_plan.Plan`` (``arrays``: unused
    here; the GPU backend takes its stream from them)."""
    sgd_launch(group.param, group.state, group.addresses, group.sizes, _blocks(group), group.n_elements, **options)


def adam_group(group, arrays, **options):
    """``adam_launch`` over one group of a plan (see ``sgd_group``)."""
    adam_launch(group.param, group.state, group.addresses, group.sizes, _blocks(group), group.n_elements, **options)


def lion_group(group, arrays, **options):
    """``lion_launch`` over one group of a plan (see ``sgd_group``)."""
    lion_launch(group.param, group.state, group.addresses, group.sizes, _blocks(group), group.n_elements, **options)


# ----------------------------------------------------------------------------- lists of arrays (tests, simple callers)


def _dtype_name(x):
    return str(x.dtype).replace("torch.", "")


def _address(x):
    return x.ctypes.data if isinstance(x, np.ndarray) else x.data_ptr()


def _size(x):
    return x.size if isinstance(x, np.ndarray) else x.numel()


def _lists_launch(launcher, streams, state_dtype, compensation, **options):
    """``launcher`` over lists of contiguous arrays (``streams``: one list per row up to
    BUF2, None where absent), one launch per parameter dtype."""
    params = streams[0]
    groups = {}
    for k, p in enumerate(params):
        groups.setdefault(_dtype_name(p), []).append(k)
    for param, index in groups.items():
        addresses = np.zeros((ROWS, len(index)), dtype=np.int64)
        for j, k in enumerate(index):
            for r, arrays in enumerate(streams):
                if arrays is not None:
                    addresses[r, j] = _address(arrays[k])
            if compensation is not None:
                addresses[COMP, j] = _address(compensation[k])
        sizes = np.array([_size(params[k]) for k in index], dtype=np.int64)
        state = param if state_dtype is None else state_dtype
        launcher(param, state, addresses, sizes, block_layout(sizes), int(sizes.sum()),
                 compensated=compensation is not None, **options)


def sgd_step(params, grads, momentum_buffers, *, state_dtype=None, compensation=None, **options):
    """``sgd_launch`` over lists of contiguous NumPy arrays / CPU torch tensors, one launch per
    dtype; ``options`` as ``sgd_launch`` takes them. Nothing here checks its input."""
    use_momentum = momentum_buffers is not None
    _lists_launch(sgd_launch, [params, grads, momentum_buffers if use_momentum else None], state_dtype,
                  compensation, **options)


def adamw_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *, state_dtype=None, compensation=None,
               **options):
    """``adam_launch`` over lists of contiguous NumPy arrays / CPU torch tensors (see ``sgd_step``)."""
    maxes = max_exp_avg_sqs if options["amsgrad"] else None
    _lists_launch(adam_launch, [params, grads, exp_avgs, exp_avg_sqs, maxes], state_dtype, compensation, **options)


def lion_step(params, grads, exp_avgs, *, state_dtype=None, compensation=None, **options):
    """``lion_launch`` over lists of contiguous NumPy arrays / CPU torch tensors (see ``sgd_step``)."""
    _lists_launch(lion_launch, [params, grads, exp_avgs], state_dtype, compensation, **options)
