"""The update rules, written once: SGD / heavy-ball / Nesterov, Adam / AdamW / AMSGrad and Lion.

Every CPU kernel that updates weights calls these small Numba functions: the
fused updates (``fastdecay/_cpu/updates.py``, launching the kernels of section (c))
and the batched simulations (``fastdecay/_cpu/simulate.py``, calling each rule's
loops through the interface of section (d)); the CUDA kernels
(``kernels/update_math.cuh``, included by ``kernels/updates.cu`` and
``kernels/simulate.cu``) mirror them line for line. They carry no signatures:
LLVM inlines them into the calling loop, where loop-invariant arguments fold.
A rule's code lives here and in ``update_math.cuh`` only: neither the fused
launchers nor the simulation engine name a rule.

Two layers, kept separate so a caller may bring its own learning rate (a
simulation advances per-trajectory rates by recurrence):

(a) Per-step scalars, float64, computed once per call (or once per trajectory
    per step)::

        lr_t, wd_t = scheduled_rates(lr_table, wd_table, t)          # row 0 of each table
        scale      = buffer_scale_at(lr_table, row, t, on_drop)       # on_drop: ON_DROP_*
        c = sgd_scalars(lr_t, wd_t, first, scale, momentum, dampening,
                        nesterov, decoupled, maximize, lr_in_buffer)
            # -> (sign, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf, neg_lr)
        c = adam_scalars(lr_t, wd_t, t, beta1, beta2, eps, decoupled, maximize)
            # -> (sign, l2, shrink, w1, beta2, w2, neg_step_size, bc2_sqrt, eps)
        c = lion_scalars(lr_t, wd_t, beta1, beta2, maximize)
            # -> (sign, shrink, beta1, w1, beta2, w2, neg_lr)

    ``t`` is the step as float64 (updates already applied, from 0); ``first``
    is ``t == 0``. Tables are ``(rows, segments, WIDTH)`` (``fastdecay._layout``).

(b) Per-element rules: every float argument already cast to the element dtype
    (float32 keeps float32 math), flags as booleans; they return new values::

        w, buf = sgd_element(w, g, buf, sign, l2, shrink, buf_decay, grad_gain,
                             nest_grad, nest_buf, neg_lr, use_momentum, nesterov, first)
        w, m, v, vmax = adam_element(w, g, m, v, vmax, sign, l2, shrink, w1, beta2, w2,
                                     neg_step_size, bc2_sqrt, eps, amsgrad, first, by_reciprocal)
        w, m = lion_element(w, g, m, sign, shrink, beta1, w1, beta2, w2, neg_lr, first)

    At ``first`` the buffers' content is never read (torch's lazily created
    state): the momentum buffer starts from the gradient (``grad_gain * g``),
    Adam's moments (and AMSGrad's max) from zero. Without ``use_momentum`` /
    ``amsgrad`` the returned ``buf`` / ``vmax`` is the input, unchanged; the
    caller then never loads or stores it.

The arithmetic follows torch's single-tensor path (``torch.optim.sgd._single_tensor_sgd``,
``torch.optim.adam._single_tensor_adam``) operation by operation, so float64
trajectories agree to rounding:

SGD, with g <- -g under ``maximize`` and g <- g + wd*w (coupled weight decay)::

    buf <- g                               at the first step (torch clones the gradient)
    buf <- momentum*s*buf + (1-dampening)*g   later (s: the on_drop factor, 1 unless the lr drops)
    (a step whose momentum is 0 is a plain one, d = g, that leaves buf as it is: torch's SGD
    reads ``momentum != 0``; the first step is the first whose momentum is not 0)
    d   <- g + momentum*buf  (nesterov)  |  buf  (heavy ball)  |  g  (no momentum)
    w   <- w*(1 - lr*wd)                   (decoupled only; the old weights, as AdamW)
    w   <- w - lr*d

``lr_in_buffer`` moves the rate into the buffer: buf <- momentum*s*buf + (1-dampening)*lr*g
(first step: lr*g), d as above with g scaled by lr, and w <- w - d.

Adam, with g <- -g under ``maximize``::

    w <- w*(1 - lr*wd)                      decoupled (AdamW), before the moments
    g <- g + wd*w                           coupled (Adam's L2), otherwise
    m <- m + (1-beta1)*(g - m)              torch's lerp_
    v <- fma((1-beta2)*g, g, v*beta2)       torch's mul_ + addcmul_ (one rounding of the sum)
    vmax <- max(vmax, v)                    AMSGrad: the max of the raw second moment
    w <- w + (-lr/(1-beta1^(t+1))) * m / (sqrt(v or vmax)/sqrt(1-beta2^(t+1)) + eps)

All functions here compile with ``error_model="numpy"`` (a division by zero is
IEEE, not a Python exception: that branch would stop vectorization) and without
``fastmath``: the compiler never contracts a*b + c on its own. Where torch's CPU
kernels use a fused multiply-add (``vec::fmadd`` in ``add(x, alpha=a)``, ``lerp``),
the rule says so explicitly with ``fma`` (one rounding, the same on every CPU,
in CUDA's ``fma`` and in C++'s ``std::fma``); everywhere else each operation
rounds once, in the written order. Left to the compiler (``fastmath={"contract"}``),
LLVM fused differently in a fresh compile and in the object code Numba caches, so
two processes (a sweep's Dask workers and the client) gave results 1 ulp apart.
Callers should use the same options.

Coefficients that make a term vanish are exact (``1*x``, ``x + 0*y``
round to ``x`` for finite values), so one rule covers every flag combination
with loop-invariant branches only.

Editing this file recompiles every kernel that inlines it: the cached kernels of
this package are stamped with a hash of all its files (``fastdecay/_cpu/__init__``).
"""

import math
from collections import namedtuple

import numpy as np
from numba import njit, prange
from numba.core import types
from numba.extending import overload

from .._layout import KIND, ORIGIN, P0
from .._rules import ADAM, ADAMW, GD, LION, LR_IN_BUFFER, MOMENTUM, NESTEROV, RULES
from .._rules import ON_DROP_CODES, ON_DROP_KEEP, ON_DROP_RESCALE, ON_DROP_RESET  # noqa: F401 (re-exported)
from .intrinsics import fma, prefer_wide_vectors, wide_vectors
from .lanes import (LR, MOM, SCALE, WD, draws_of_step, gradient, lane_slice, one_like, record_row, tally,
                    tile_span)
from .schedule import class_lane_rate, drop_ratio, lr_at, one_segment, plateau_continues
from .storage import (BUF0, BUF1, BUF2, COMP, GRAD, PARAM, block_span, for_sixteen_bit, high_half, in_bfloat16_pairs,
                      is_bfloat16, low_half, narrow, pair_of, pairs_view, sixteen_bit, store_param, store_param_pair,
                      view, widen)

# The per-step coefficients, field for field the structs SgdScalars / AdamScalars of
# kernels/update_math.cuh (a namedtuple compiles to the same plain tuple).
SgdScalars = namedtuple("SgdScalars", "sign l2 shrink buf_decay grad_gain nest_grad nest_buf neg_lr")
AdamScalars = namedtuple("AdamScalars", "sign l2 shrink w1 beta2 w2 neg_step_size bc2_sqrt eps")
LionScalars = namedtuple("LionScalars", "sign shrink beta1 w1 beta2 w2 neg_lr")


def sign_of(x):
    """1, -1 or x itself (0, -0 or NaN), in the type of ``x`` (torch's ``sign``)."""
    return 1.0 if x > 0 else (-1.0 if x < 0 else x)


@overload(sign_of)
def _sign_of_impl(x):
    if isinstance(x, types.Float):  # the constants in x's type: float32 stays float32
        one, minus_one = x.cast_python_value(1.0), x.cast_python_value(-1.0)

        def impl(x):
            if x > 0:
                return one
            if x < 0:
                return minus_one
            return x

        return impl
    return None


# ----------------------------------------------------------------------------- (a) per-step scalars


@njit(cache=True, error_model="numpy")
def scheduled_rates(lr_table, wd_table, t):
    """(lr_t, wd_t): row 0 of the learning-rate and weight-decay tables at step ``t``."""
    return lr_at(lr_table, np.int64(0), t), lr_at(wd_table, np.int64(0), t)


@njit(cache=True, error_model="numpy")
def buffer_scale_at(lr_table, row, t, on_drop):
    """Factor applied to the momentum buffer before its update at step ``t``.

    1 unless the rate of schedule ``row`` drops discontinuously at ``t``; there
    0 for ``ON_DROP_RESET`` and eta_t/eta_{t-1} for ``ON_DROP_RESCALE``.
    """
    if on_drop == ON_DROP_KEEP:
        return 1.0
    ratio = drop_ratio(lr_table, row, t)
    if ratio == 1.0:
        return 1.0
    if on_drop == ON_DROP_RESET:
        return 0.0
    return ratio


@njit(cache=True, error_model="numpy")
def sgd_scalars(lr, wd, first, buffer_scale, momentum, dampening, nesterov, decoupled, maximize, lr_in_buffer):
    """Per-step coefficients of ``sgd_element`` (float64).

    Returns ``SgdScalars(sign, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf, neg_lr)``:
    gradient sign (-1 under maximize), coupled weight decay (0 if decoupled),
    decoupled shrink 1 - lr*wd (1 if coupled), the buffer's decay
    momentum*buffer_scale and the gradient's gain into it ((1-dampening), times
    lr with lr_in_buffer; 1 or lr at the first step), the Nesterov direction
    nest_grad*g + nest_buf*buf, and -lr (-1 with lr_in_buffer and momentum).
    """
    sign = -1.0 if maximize else 1.0
    l2 = 0.0 if decoupled else wd
    shrink = 1.0 - lr * wd if decoupled else 1.0
    in_buffer = lr_in_buffer and momentum != 0.0
    gain = 1.0 if first else 1.0 - dampening
    if in_buffer:
        gain = gain * lr
    buf_decay = momentum * buffer_scale
    nest_grad = lr if in_buffer else 1.0
    nest_buf = momentum if nesterov else 0.0
    neg_lr = -1.0 if in_buffer else -lr
    return SgdScalars(sign, l2, shrink, buf_decay, gain, nest_grad, nest_buf, neg_lr)


@njit(cache=True, error_model="numpy")
def adam_bias(t, beta1, beta2):
    """Adam's bias corrections at step ``t``: (1 - beta1^(t+1), sqrt(1 - beta2^(t+1))), the
    root correctly rounded, as torch's fused kernels take it (Python's and C's
    pow(x, 0.5) is not always). A simulation whose trajectories share beta1 computes
    them once a step for all of them."""
    n = t + 1.0
    bias_correction1 = 1.0 - beta1**n
    bias_correction2 = 1.0 - beta2**n
    return bias_correction1, math.sqrt(bias_correction2)


@njit(cache=True, error_model="numpy")
def adam_scalars_biased(lr, wd, bias_correction1, bc2_sqrt, beta1, beta2, eps, decoupled, maximize):
    """``adam_scalars`` with the bias corrections of ``adam_bias`` given."""
    sign = -1.0 if maximize else 1.0
    l2 = 0.0 if decoupled else wd
    shrink = 1.0 - lr * wd if decoupled else 1.0
    neg_step_size = -(lr / bias_correction1)
    return AdamScalars(sign, l2, shrink, 1.0 - beta1, beta2, 1.0 - beta2, neg_step_size, bc2_sqrt, eps)


@njit(cache=True, error_model="numpy")
def adam_scalars(lr, wd, t, beta1, beta2, eps, decoupled, maximize):
    """Per-step coefficients of ``adam_element`` (float64), bias corrections at ``t + 1``.

    Returns ``AdamScalars(sign, l2, shrink, w1, beta2, w2, neg_step_size, bc2_sqrt, eps)``
    with w1 = 1 - beta1, w2 = 1 - beta2, neg_step_size = -lr/(1 - beta1^(t+1)),
    bc2_sqrt = sqrt(1 - beta2^(t+1)) (torch's Python-float arithmetic, ``adam_bias``).
    """
    bias_correction1, bc2_sqrt = adam_bias(t, beta1, beta2)
    return adam_scalars_biased(lr, wd, bias_correction1, bc2_sqrt, beta1, beta2, eps, decoupled, maximize)


@njit(cache=True, error_model="numpy")
def lion_scalars(lr, wd, beta1, beta2, maximize):
    """Per-step coefficients of ``lion_element`` (float64): ``LionScalars(sign, shrink,
    beta1, w1, beta2, w2, neg_lr)`` with shrink = 1 - lr*wd (Lion's weight decay is
    decoupled), w1 = 1 - beta1, w2 = 1 - beta2."""
    sign = -1.0 if maximize else 1.0
    return LionScalars(sign, 1.0 - lr * wd, beta1, 1.0 - beta1, beta2, 1.0 - beta2, -lr)


# ----------------------------------------------------------------------------- (b) per-element rules


@njit(cache=True, error_model="numpy")
def sgd_element(w, g, buf, sign, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf, neg_lr,
                use_momentum, nesterov, first):
    """One element of SGD / heavy ball / Nesterov: returns the new ``(w, buf)``.

    The multiply-adds are torch's (``add(x, alpha=a)`` is ``fmadd``; ``mul_`` rounds
    first): g + l2 w, buf_decay buf (rounded) + grad_gain g, nest_grad g (rounded) +
    nest_buf buf, w + neg_lr d."""
    g = sign * g
    if l2 != 0.0:  # as torch: no weight-decay term when it is 0 (an inf w keeps an inf g)
        g = fma(l2, w, g)
    if use_momentum:
        if first:
            buf = grad_gain * g
        else:
            buf = fma(grad_gain, g, buf_decay * buf)
        if nesterov:
            d = fma(nest_buf, buf, nest_grad * g)
        else:
            d = buf
    else:
        d = g
    if shrink != 1.0:  # loop-invariant: a select, not a multiply by 1 per element
        w = w * shrink
    return fma(neg_lr, d, w), buf


@njit(cache=True, error_model="numpy")
def root_over(root, b):
    """``root / b``, bit for bit the division, for the square root ``root`` of a second moment
    (>= 0, or inf, or NaN) and Adam's ``b = sqrt(1 - beta2^(t+1))`` in (0, 1], in two FMAs and
    two multiplies instead of a division, the operation that paces Adam's loops: with
    ``y = 1/b`` rounded (loop-invariant: LLVM hoists it), q = y*root, r = root - q*b exactly
    (an FMA), q + r*y rounded is the correctly rounded quotient (Markstein's theorem: y within
    half an ulp of 1/b, q within an ulp of root/b, nothing underflows: a nonzero root is at
    least the root of the smallest subnormal, ~2e-162 in float64 and ~4e-23 in float32, far
    above the normal range's floor, and b <= 1 keeps q >= root). An infinite root makes r NaN:
    q, inf, is the quotient then (as it is for a NaN root, NaN)."""
    y = one_like(b) / b
    q = root * y
    exact = fma(fma(-q, b, root), y, q)
    return exact if exact == exact else q


@njit(cache=True, error_model="numpy")
def adam_element(w, g, m, v, vmax, sign, l2, shrink, w1, beta2, w2, neg_step_size, bc2_sqrt, eps,
                 amsgrad, first, by_reciprocal):
    """One element of Adam / AdamW / AMSGrad: returns the new ``(w, m, v, vmax)``.

    Fused as torch fuses on the CPU: g + l2 w (``add(x, alpha=a)``), m + w1 (g - m) with a
    weight w1 = 1 - beta1 below 0.5 and g - (1 - w1) (g - m) from 0.5 on (``lerp``, each one
    multiply-add; at the first step m is 0), v beta2 + w2 g g as one multiply-add of (w2 g) g
    onto v beta2 (``addcmul_``; the same bits as torch's fused Adam / AdamW, whose vector
    loop does so), and w + neg_step m / denom rounding each operation. ``by_reciprocal`` (a constant of
    the calling loop) divides the root by ``bc2_sqrt`` through ``root_over``, the same bits:
    the simulations, whose Adam loops the divider paces, run 1.3x faster so, and so do the
    fused updates' loops on CPUs whose divider paces them (an Intel Xeon, AVX-512 and AVX2
    builds alike: a float32 element in cache ~0.85 -> ~0.55 ns, float16 parameters ~0.72 ->
    ~0.55; streaming on Zen 4 no change). Loops over bfloat16 parameters divide: their
    conversions, integer arithmetic, pace them, and the reciprocal's two FMAs cost more than the
    division there (on the Xeon bfloat16 with float32 state ~0.82 -> ~0.90 ns; 5-8 % lost on
    Zen 4), except the pair loops in 512-bit vectors (``_adam_pair_loop``), which gain with it."""
    g = sign * g
    if shrink != 1.0:
        w = w * shrink
    if l2 != 0.0:  # as torch: no weight-decay term when it is 0 (an inf w keeps an inf g)
        g = fma(l2, w, g)
    small = w1 < 0.5  # (torch's lerp: which end it measures from)
    if first:
        m = w1 * g if small else fma(w1 - one_like(w1), g, g)
        v = w2 * g * g
    else:
        m = fma(w1, g - m, m) if small else fma(w1 - one_like(w1), g - m, g)
        v = fma(w2 * g, g, v * beta2)  # (torch's addcmul_: one rounding of the product's sum)
    if amsgrad:
        if first or v > vmax or v != v:  # (a nan v is kept, as torch.maximum keeps it)
            vmax = v
        root = math.sqrt(vmax)
    else:
        root = math.sqrt(v)
    denom = (root_over(root, bc2_sqrt) if by_reciprocal else root / bc2_sqrt) + eps
    w = w + neg_step_size * m / denom
    return w, m, v, vmax


@njit(cache=True, error_model="numpy")
def lion_element(w, g, m, sign, shrink, beta1, w1, beta2, w2, neg_lr, first):
    """One element of Lion (Chen et al. 2023): returns the new ``(w, m)``.

    As lion-pytorch writes it in torch ops: w <- w*shrink (``mul_``), the direction
    sign(beta1 m + w1 g) (``mul_(beta1).add(g, alpha=w1)``: a fused multiply-add),
    w <- w + neg_lr*sign (``add_(alpha=-lr)``), m <- beta2 m + w2 g (fused likewise).
    At ``first`` the moment's content is never read (zero, as a new state). The sign
    of 0 is 0 and of NaN is NaN (a NaN gradient poisons the weight, as in torch)."""
    g = sign * g
    if shrink != 1.0:
        w = w * shrink
    if first:
        c = w1 * g
        m = w2 * g
    else:
        c = fma(w1, g, beta1 * m)
        m = fma(w2, g, beta2 * m)
    return fma(neg_lr, sign_of(c), w), m


# ----------------------------------------------------------------------------- (c) the fused kernels
# Two per rule, found by name (``<kernel>_kernel`` and ``<kernel>_general_kernel``, the
# kernel of fastdecay._rules.FUSED; ``_kernels_of``) and compiled by
# ``fastdecay._cpu.updates.kernel`` with one explicit signature per storage combination:
# the arguments (like, like_state, like_math, addresses, sizes, first_block, parts,
# lr_table, wd_table, step, <scheduled>_table, <Fused.options in order>, compensated,
# grad_scale, found_inf). Each runs ``prange`` over the parts (runs of blocks with about
# equal element counts, one a thread: ``fastdecay._cpu.updates.part_layout``), each part
# over its blocks, and calls its block loop, whose flags (momentum, nesterov, amsgrad,
# the first step) pick one of a few copies of the inner loop, so no loop carries a branch
# per element. The plain kernel runs the usual calls: no compensation buffer, no scale or
# a power of two (GradScaler's scales: the gradient is unscaled by a multiply that equals
# the division). The general kernel runs the rest (``takes_general_kernel``), compiled
# only for a program that makes such a call: compensation of 16-bit parameters in copies
# of their own (``storage.for_sixteen_bit``), everything else in one copy of the loop
# per compensation flag, the other flags (and the division) read at run time. Inside a
# kernel (a function too large for LLVM to unswitch its loops), a store under a flag read
# at run time kept the loop scalar: compensated AdamW steps of float32 parameters 4.3-4.4 ns
# an element, and of bfloat16 ones with AMSGrad 5.4-5.5 ns, against 0.26 and 0.48-0.51 in
# copies where the compensation is a constant (SGD's and Lion's loops in some processes and
# not in others; bench/RESULTS.md); selects under the other flags do not.
# Where parameters and state are bfloat16, the copies run in pairs of elements
# (``storage.in_bfloat16_pairs``) and only an odd last element, or a tensor not 4-byte
# aligned, takes the element loop.


def _kernels_of(kernel_of, rule):
    """(``<rule>_kernel``, ``<rule>_general_kernel``) from the factory ``kernel_of(general)``
    of a rule's kernel: ``general`` is a constant of each closure, so Numba drops the
    branch a kernel never takes before it compiles anything (a branch never taken but
    compiled costs seconds of every first use), and a program that never compensates
    nor divides its gradients never compiles the general copies. Named for the on-disk
    cache and for profiles."""
    plain, general = kernel_of(False), kernel_of(True)
    for function, name in ((plain, f"{rule}_kernel"), (general, f"{rule}_general_kernel")):
        function.__name__ = function.__qualname__ = name
    return plain, general


@njit(cache=True, error_model="numpy")
def unscale_by_inverse(grad_scale):
    """Whether g / grad_scale equals g * (1 / grad_scale) in float32 and float64 for every g:
    so when grad_scale is a power of two whose inverse is a normal float32 (both sides then
    round the same real number; 1 without a scale)."""
    fraction, exponent = math.frexp(grad_scale)
    return fraction == 0.5 and -125 <= exponent <= 127


@njit(cache=True, error_model="numpy")
def unscaling(grad_scale, dtype):
    """(factor, divide) of a fused kernel: what ``unscale`` takes for ``grad_scale`` in the
    math ``dtype``: its exact inverse where ``unscale_by_inverse`` (divide False), else the
    scale to divide by (only the general kernels divide: ``takes_general_kernel``)."""
    divide = not unscale_by_inverse(grad_scale)
    return (dtype(grad_scale) if divide else dtype(1.0 / grad_scale)), divide


def takes_general_kernel(compensated, grad_scale):
    """Whether a fused call runs its rule's general kernel (``<rule>_general_kernel``) rather
    than the plain one: with a compensation buffer, or a gradient scale to divide by (not a
    power of two: ``unscale_by_inverse``). Python, for the launcher."""
    return compensated or (grad_scale != 1.0 and not unscale_by_inverse.py_func(grad_scale))


@njit(cache=True, error_model="numpy", inline="always")
def unscale(g, factor, divide):
    """The unscaled gradient: g / factor with ``divide``, else g * factor (``unscaling``).
    Division as torch's fused optimizers do it (``grad / grad_scale``), the multiply only where
    it gives the same bits, so the hot loops need no divide for it (a float32 AdamW element
    in cache on Zen 4: 0.57-0.61 ns with the division, 0.50-0.53 ns without; RESULTS.md)."""
    if divide:
        return g / factor
    return g * factor


@njit(cache=True, error_model="numpy")
def _sgd_block(w, g, buf, comp, factor, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf, neg_lr,
               use_momentum, nesterov, first, compensated, divide):
    """``sgd_element`` over one contiguous block; the kernel passes the flags as constants
    (but in its general copy). ``factor``, ``divide``: see ``unscale``."""
    if use_momentum:
        for i in range(w.shape[0]):
            old = widen(w[i])
            gi = unscale(widen(g[i]), factor, divide)
            new, b = sgd_element(old, gi, widen(buf[i]), one_like(old), l2, shrink, buf_decay, grad_gain, nest_grad,
                                 nest_buf, neg_lr, True, nesterov, first)
            buf[i] = narrow(b, buf[i])
            store_param(w, comp, i, old, new, compensated)
    else:
        for i in range(w.shape[0]):
            old = widen(w[i])
            gi = unscale(widen(g[i]), factor, divide)
            new, _ = sgd_element(old, gi, old, one_like(old), l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf,
                                 neg_lr, False, False, False)
            store_param(w, comp, i, old, new, compensated)


@njit(cache=True, error_model="numpy")
def _sgd_pair_loop(w, g, buf, comp, factor, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf, neg_lr,
                   nesterov, first, compensated):
    prefer_wide_vectors()  # (its conversions pace it: 20-30 % faster in 512-bit vectors, bench/RESULTS.md)
    for i in range(w.shape[0]):
        wi, gi, bi = w[i], g[i], buf[i]
        old0, old1 = low_half(wi), high_half(wi)
        new0, b0 = sgd_element(old0, unscale(low_half(gi), factor, False), low_half(bi), one_like(old0), l2, shrink,
                               buf_decay, grad_gain, nest_grad, nest_buf, neg_lr, True, nesterov, first)
        new1, b1 = sgd_element(old1, unscale(high_half(gi), factor, False), high_half(bi), one_like(old1), l2, shrink,
                               buf_decay, grad_gain, nest_grad, nest_buf, neg_lr, True, nesterov, first)
        buf[i] = pair_of(b0, b1)
        store_param_pair(w, comp, i, old0, old1, new0, new1, compensated)


@njit(cache=True, error_model="numpy")
def _sgd_pairs(addresses, k, at, n, first, nesterov, compensated, factor, l2, shrink, buf_decay, grad_gain,
               nest_grad, nest_buf, neg_lr):
    """``sgd_element`` with momentum over the bfloat16 pairs (``storage.PAIR``) of tensor ``k``
    from byte ``at`` (``storage.in_bfloat16_pairs``): both halves of each pair, in the copies
    of the element loops (``sgd_kernel``)."""
    w, g, buf = (pairs_view(addresses[PARAM, k] + at, n), pairs_view(addresses[GRAD, k] + at, n),
                 pairs_view(addresses[BUF0, k] + at, n))
    if compensated:
        _sgd_pair_loop(w, g, buf, pairs_view(addresses[COMP, k] + at, n), factor, l2, shrink, buf_decay,
                       grad_gain, nest_grad, nest_buf, neg_lr, nesterov, first, True)
    elif first:
        _sgd_pair_loop(w, g, buf, w, factor, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf, neg_lr,
                       nesterov, True, False)
    elif nesterov:
        _sgd_pair_loop(w, g, buf, w, factor, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf, neg_lr,
                       True, False, False)
    else:
        _sgd_pair_loop(w, g, buf, w, factor, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf, neg_lr,
                       False, False, False)


sgd_pairs = in_bfloat16_pairs(_sgd_pairs)


@njit(cache=True, error_model="numpy")
def _sgd_kahan(w, g, buf, comp, factor, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf, neg_lr,
               use_momentum, nesterov, first):
    """The copy of ``_sgd_block`` with a compensation buffer (16-bit parameters: ``sgd_kahan``)."""
    _sgd_block(w, g, buf, comp, factor, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf, neg_lr,
               use_momentum, nesterov, first, True, False)


sgd_kahan = for_sixteen_bit(_sgd_kahan)


def _sgd_kernel_of(general):
    """``sgd_kernel`` (``general`` False) or ``sgd_general_kernel`` (True): see ``_kernels_of``."""

    def kernel(like, like_state, like_math, addresses, sizes, first_block, parts,
               lr_table, wd_table, step, momentum_table, dampening, nesterov, decoupled, maximize,
               lr_in_buffer, on_drop, first_step, compensated, grad_scale, found_inf):
        """SGD / heavy ball / Nesterov over the tensors of ``addresses`` (see ``rules.sgd_element``).

        Rows: PARAM, GRAD, BUF0 (the momentum buffers; read only with momentum),
        COMP (the compensation buffers; read only when ``compensated``). The momentum is
        row 0 of ``momentum_table`` at ``step`` (a schedule, as lr; where it is 0 the
        buffers are not touched, as torch's SGD). At ``first_step`` the buffers' content is
        ignored (the step where torch creates them: 0, or the first step of a momentum
        schedule that is not 0).
        """
        if found_inf != 0.0:
            return
        dtype = like_math.dtype.type
        first = step == first_step
        lr, wd = scheduled_rates(lr_table, wd_table, step)
        momentum = lr_at(momentum_table, np.int64(0), step)
        scale = buffer_scale_at(lr_table, np.int64(0), step, on_drop)
        c = sgd_scalars(lr, wd, first, scale, momentum, dampening, nesterov, decoupled, maximize, lr_in_buffer)
        sign, l2, shrink = dtype(c.sign), dtype(c.l2), dtype(c.shrink)
        buf_decay, grad_gain, nest_grad = dtype(c.buf_decay), dtype(c.grad_gain), dtype(c.nest_grad)
        nest_buf, neg_lr = dtype(c.nest_buf), dtype(c.neg_lr)
        factor, divide = unscaling(grad_scale, dtype)
        factor = factor * sign  # (maximize's sign, exact: +-g * f or g / +-f, so the loops carry no multiply by 1)
        kahan = compensated and sixteen_bit(like) and not divide  # (copies of their own: ``storage.sixteen_bit``)
        use_momentum = momentum != 0.0
        for part in prange(parts.shape[0] - 1):
            for b in range(parts[part], parts[part + 1]):
                k, n, lo = block_span(first_block, sizes, b)
                w = view(addresses[PARAM, k], sizes[k], like)[lo:lo + n]
                g = view(addresses[GRAD, k], sizes[k], like)[lo:lo + n]
                # (without momentum never touched: an empty array of the state's type)
                buf = view(addresses[BUF0, k], sizes[k], like_state)[lo:lo + n] if use_momentum else like_state
                if general:
                    comp = view(addresses[COMP, k], sizes[k], like)[lo:lo + n] if compensated else w
                    if kahan:
                        if not use_momentum:
                            sgd_kahan(like, w, g, w, comp, factor, l2, shrink, buf_decay, grad_gain, nest_grad,
                                      nest_buf, neg_lr, False, False, False)
                            continue
                        done = sgd_pairs(like, like_state, addresses, k, lo, n, (PARAM, GRAD, BUF0, COMP), first,
                                         nesterov, True, factor, l2, shrink, buf_decay, grad_gain, nest_grad,
                                         nest_buf, neg_lr)
                        if done < n:  # (bfloat16 pairs' odd last element)
                            sgd_kahan(like, w[done:], g[done:], buf[done:], comp[done:], factor, l2, shrink,
                                      buf_decay, grad_gain, nest_grad, nest_buf, neg_lr, True, nesterov, first)
                    elif compensated:  # (the flags but compensation read at run time: ``_kernels_of``)
                        _sgd_block(w, g, buf, comp, factor, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf,
                                   neg_lr, use_momentum, nesterov, first, True, divide)
                    else:
                        _sgd_block(w, g, buf, w, factor, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf,
                                   neg_lr, use_momentum, nesterov, first, False, divide)
                    continue
                if not use_momentum:
                    _sgd_block(w, g, w, w, factor, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf,
                               neg_lr, False, False, False, False, False)
                    continue
                done = sgd_pairs(like, like_state, addresses, k, lo, n, (PARAM, GRAD, BUF0, COMP), first, nesterov,
                                 False, factor, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf, neg_lr)
                if done == n:
                    continue
                w, g, buf = w[done:], g[done:], buf[done:]  # (bfloat16 pairs' odd last element)
                if first:
                    _sgd_block(w, g, buf, w, factor, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf,
                               neg_lr, True, nesterov, True, False, False)
                elif nesterov:
                    _sgd_block(w, g, buf, w, factor, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf,
                               neg_lr, True, True, False, False, False)
                else:
                    _sgd_block(w, g, buf, w, factor, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf,
                               neg_lr, True, False, False, False, False)

    return kernel


sgd_kernel, sgd_general_kernel = _kernels_of(_sgd_kernel_of, "sgd")


@njit(cache=True, error_model="numpy")
def _adam_block(w, g, m, v, vmax, comp, factor, l2, shrink, w1, beta2, w2, neg_step_size, bc2_sqrt, eps,
                amsgrad, first, compensated, divide):
    """``adam_element`` over one contiguous block (``vmax`` untouched without amsgrad); the root
    divided by its bias correction through the reciprocal (``root_over``) but for bfloat16
    parameters, whose conversions pace the loop (see ``adam_element``)."""
    by_reciprocal = not is_bfloat16(w)
    if amsgrad:
        for i in range(w.shape[0]):
            old = widen(w[i])
            gi = unscale(widen(g[i]), factor, divide)
            new, mi, vi, xi = adam_element(old, gi, widen(m[i]), widen(v[i]), widen(vmax[i]), one_like(old), l2, shrink,
                                           w1, beta2, w2, neg_step_size, bc2_sqrt, eps, True, first, by_reciprocal)
            m[i] = narrow(mi, m[i])
            v[i] = narrow(vi, v[i])
            vmax[i] = narrow(xi, vmax[i])
            store_param(w, comp, i, old, new, compensated)
    else:
        for i in range(w.shape[0]):
            old = widen(w[i])
            mi, vi = widen(m[i]), widen(v[i])
            gi = unscale(widen(g[i]), factor, divide)
            new, mi, vi, _ = adam_element(old, gi, mi, vi, vi, one_like(old), l2, shrink, w1, beta2, w2, neg_step_size,
                                          bc2_sqrt, eps, False, first, by_reciprocal)
            m[i] = narrow(mi, m[i])
            v[i] = narrow(vi, v[i])
            store_param(w, comp, i, old, new, compensated)


@njit(cache=True, error_model="numpy")
def _adam_pair_loop(w, g, m, v, comp, factor, l2, shrink, w1, beta2, w2, neg_step_size, bc2_sqrt, eps, first,
                    compensated):
    # 512-bit vectors where the build has them, and then the root divided through the reciprocal:
    # in 256-bit vectors the pair loop's conversions pace it and the reciprocal's FMAs cost more
    # than the division, in 512-bit ones it is 10-20 % faster with both (bench/RESULTS.md)
    prefer_wide_vectors()
    by_reciprocal = wide_vectors()
    for i in range(w.shape[0]):
        wi, gi, mi, vi = w[i], g[i], m[i], v[i]
        old0, old1 = low_half(wi), high_half(wi)
        new0, m0, v0, _ = adam_element(old0, unscale(low_half(gi), factor, False), low_half(mi), low_half(vi),
                                       low_half(vi), one_like(old0), l2, shrink, w1, beta2, w2, neg_step_size, bc2_sqrt,
                                       eps, False, first, by_reciprocal)
        new1, m1, v1, _ = adam_element(old1, unscale(high_half(gi), factor, False), high_half(mi), high_half(vi),
                                       high_half(vi), one_like(old1), l2, shrink, w1, beta2, w2, neg_step_size,
                                       bc2_sqrt, eps, False, first, by_reciprocal)
        m[i], v[i] = pair_of(m0, m1), pair_of(v0, v1)
        store_param_pair(w, comp, i, old0, old1, new0, new1, compensated)


@njit(cache=True, error_model="numpy")
def _adam_pairs(addresses, k, at, n, first, compensated, factor, l2, shrink, w1, beta2, w2, neg_step_size,
                bc2_sqrt, eps):
    """``adam_element`` over the bfloat16 pairs (``storage.PAIR``) of tensor ``k`` from byte
    ``at`` (``storage.in_bfloat16_pairs``): both halves of each pair, without AMSGrad, with or
    without compensation."""
    w, g = pairs_view(addresses[PARAM, k] + at, n), pairs_view(addresses[GRAD, k] + at, n)
    m, v = pairs_view(addresses[BUF0, k] + at, n), pairs_view(addresses[BUF1, k] + at, n)
    if compensated:
        _adam_pair_loop(w, g, m, v, pairs_view(addresses[COMP, k] + at, n), factor, l2, shrink, w1, beta2, w2,
                        neg_step_size, bc2_sqrt, eps, first, True)
    else:
        _adam_pair_loop(w, g, m, v, w, factor, l2, shrink, w1, beta2, w2, neg_step_size, bc2_sqrt, eps, first,
                        False)


adam_pairs = in_bfloat16_pairs(_adam_pairs)


@njit(cache=True, error_model="numpy")
def _adam_kahan(w, g, m, v, comp, factor, l2, shrink, w1, beta2, w2, neg_step_size, bc2_sqrt, eps, first):
    """The copies of ``_adam_block`` with a compensation buffer (16-bit parameters: ``adam_kahan``)."""
    if first:
        _adam_block(w, g, m, v, v, comp, factor, l2, shrink, w1, beta2, w2, neg_step_size, bc2_sqrt, eps,
                    False, True, True, False)
    else:
        _adam_block(w, g, m, v, v, comp, factor, l2, shrink, w1, beta2, w2, neg_step_size, bc2_sqrt, eps,
                    False, False, True, False)


adam_kahan = for_sixteen_bit(_adam_kahan)


def _adam_kernel_of(general):
    """``adam_kernel`` (``general`` False) or ``adam_general_kernel`` (True): see ``_kernels_of``."""

    def kernel(like, like_state, like_math, addresses, sizes, first_block, parts,
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
        beta1 = lr_at(beta1_table, np.int64(0), step)
        c = adam_scalars(lr, wd, step, beta1, beta2, eps, decoupled, maximize)
        sign, l2, shrink, w1, b2, w2 = (dtype(c.sign), dtype(c.l2), dtype(c.shrink), dtype(c.w1), dtype(c.beta2),
                                        dtype(c.w2))
        neg_step_size, bc2_sqrt, e = dtype(c.neg_step_size), dtype(c.bc2_sqrt), dtype(c.eps)
        factor, divide = unscaling(grad_scale, dtype)
        factor = factor * sign  # (maximize's sign, exact: +-g * f or g / +-f, so the loops carry no multiply by 1)
        # (copies of their own: ``storage.sixteen_bit``)
        kahan = compensated and sixteen_bit(like) and not (divide or amsgrad)
        for part in prange(parts.shape[0] - 1):
            for b in range(parts[part], parts[part + 1]):
                k, n, lo = block_span(first_block, sizes, b)
                w = view(addresses[PARAM, k], sizes[k], like)[lo:lo + n]
                g = view(addresses[GRAD, k], sizes[k], like)[lo:lo + n]
                m = view(addresses[BUF0, k], sizes[k], like_state)[lo:lo + n]
                v = view(addresses[BUF1, k], sizes[k], like_state)[lo:lo + n]
                vmax = view(addresses[BUF2, k], sizes[k], like_state)[lo:lo + n] if amsgrad else v
                if general:
                    comp = view(addresses[COMP, k], sizes[k], like)[lo:lo + n] if compensated else w
                    if kahan:
                        done = adam_pairs(like, like_state, addresses, k, lo, n, (PARAM, GRAD, BUF0, BUF1, COMP),
                                          first, True, factor, l2, shrink, w1, b2, w2, neg_step_size, bc2_sqrt, e)
                        if done < n:  # (bfloat16 pairs' odd last element)
                            adam_kahan(like, w[done:], g[done:], m[done:], v[done:], comp[done:], factor, l2, shrink,
                                       w1, b2, w2, neg_step_size, bc2_sqrt, e, first)
                    elif compensated:  # (the flags but compensation read at run time: ``_kernels_of``)
                        _adam_block(w, g, m, v, vmax, comp, factor, l2, shrink, w1, b2, w2, neg_step_size,
                                    bc2_sqrt, e, amsgrad, first, True, divide)
                    else:
                        _adam_block(w, g, m, v, vmax, w, factor, l2, shrink, w1, b2, w2, neg_step_size,
                                    bc2_sqrt, e, amsgrad, first, False, divide)
                    continue
                if amsgrad:
                    if first:
                        _adam_block(w, g, m, v, vmax, w, factor, l2, shrink, w1, b2, w2, neg_step_size,
                                    bc2_sqrt, e, True, True, False, False)
                    else:
                        _adam_block(w, g, m, v, vmax, w, factor, l2, shrink, w1, b2, w2, neg_step_size,
                                    bc2_sqrt, e, True, False, False, False)
                    continue
                done = adam_pairs(like, like_state, addresses, k, lo, n, (PARAM, GRAD, BUF0, BUF1, COMP), first,
                                  False, factor, l2, shrink, w1, b2, w2, neg_step_size, bc2_sqrt, e)
                if done == n:
                    continue
                w, g, m, v = w[done:], g[done:], m[done:], v[done:]  # (bfloat16 pairs' odd last element)
                if first:
                    _adam_block(w, g, m, v, v, w, factor, l2, shrink, w1, b2, w2, neg_step_size, bc2_sqrt, e,
                                False, True, False, False)
                else:
                    _adam_block(w, g, m, v, v, w, factor, l2, shrink, w1, b2, w2, neg_step_size, bc2_sqrt, e,
                                False, False, False, False)

    return kernel


adam_kernel, adam_general_kernel = _kernels_of(_adam_kernel_of, "adam")


@njit(cache=True, error_model="numpy")
def _lion_block(w, g, m, comp, factor, shrink, beta1, w1, beta2, w2, neg_lr, first, compensated, divide):
    """``lion_element`` over one contiguous block."""
    for i in range(w.shape[0]):
        old = widen(w[i])
        gi = unscale(widen(g[i]), factor, divide)
        new, mi = lion_element(old, gi, widen(m[i]), one_like(old), shrink, beta1, w1, beta2, w2, neg_lr, first)
        m[i] = narrow(mi, m[i])
        store_param(w, comp, i, old, new, compensated)


@njit(cache=True, error_model="numpy")
def _lion_pair_loop(w, g, m, comp, factor, shrink, beta1, w1, beta2, w2, neg_lr, first, compensated):
    prefer_wide_vectors()  # (its conversions pace it: 20-30 % faster in 512-bit vectors, bench/RESULTS.md)
    for i in range(w.shape[0]):
        wi, gi, mi = w[i], g[i], m[i]
        old0, old1 = low_half(wi), high_half(wi)
        new0, m0 = lion_element(old0, unscale(low_half(gi), factor, False), low_half(mi), one_like(old0), shrink, beta1,
                                w1, beta2, w2, neg_lr, first)
        new1, m1 = lion_element(old1, unscale(high_half(gi), factor, False), high_half(mi), one_like(old1), shrink,
                                beta1, w1, beta2, w2, neg_lr, first)
        m[i] = pair_of(m0, m1)
        store_param_pair(w, comp, i, old0, old1, new0, new1, compensated)


@njit(cache=True, error_model="numpy")
def _lion_pairs(addresses, k, at, n, first, compensated, factor, shrink, beta1, w1, beta2, w2, neg_lr):
    """``lion_element`` over the bfloat16 pairs (``storage.PAIR``) of tensor ``k`` from byte
    ``at`` (``storage.in_bfloat16_pairs``): both halves of each pair, with or without compensation."""
    w, g, m = (pairs_view(addresses[PARAM, k] + at, n), pairs_view(addresses[GRAD, k] + at, n),
               pairs_view(addresses[BUF0, k] + at, n))
    if compensated:
        _lion_pair_loop(w, g, m, pairs_view(addresses[COMP, k] + at, n), factor, shrink, beta1, w1, beta2, w2,
                        neg_lr, first, True)
    else:
        _lion_pair_loop(w, g, m, w, factor, shrink, beta1, w1, beta2, w2, neg_lr, first, False)


lion_pairs = in_bfloat16_pairs(_lion_pairs)


@njit(cache=True, error_model="numpy")
def _lion_kahan(w, g, m, comp, factor, shrink, beta1, w1, beta2, w2, neg_lr, first):
    """The copy of ``_lion_block`` with a compensation buffer (16-bit parameters: ``lion_kahan``)."""
    _lion_block(w, g, m, comp, factor, shrink, beta1, w1, beta2, w2, neg_lr, first, True, False)


lion_kahan = for_sixteen_bit(_lion_kahan)


def _lion_kernel_of(general):
    """``lion_kernel`` (``general`` False) or ``lion_general_kernel`` (True): see ``_kernels_of``."""

    def kernel(like, like_state, like_math, addresses, sizes, first_block, parts,
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
        c = lion_scalars(lr, wd, lr_at(beta1_table, np.int64(0), step), beta2, maximize)
        sign, shrink, beta1, w1, b2, w2, neg_lr = (dtype(c.sign), dtype(c.shrink), dtype(c.beta1), dtype(c.w1),
                                                   dtype(c.beta2), dtype(c.w2), dtype(c.neg_lr))
        factor, divide = unscaling(grad_scale, dtype)
        factor = factor * sign  # (maximize's sign, exact: +-g * f or g / +-f, so the loops carry no multiply by 1)
        kahan = compensated and sixteen_bit(like) and not divide  # (copies of their own: ``storage.sixteen_bit``)
        for part in prange(parts.shape[0] - 1):
            for b in range(parts[part], parts[part + 1]):
                k, n, lo = block_span(first_block, sizes, b)
                w = view(addresses[PARAM, k], sizes[k], like)[lo:lo + n]
                g = view(addresses[GRAD, k], sizes[k], like)[lo:lo + n]
                m = view(addresses[BUF0, k], sizes[k], like_state)[lo:lo + n]
                if general:
                    comp = view(addresses[COMP, k], sizes[k], like)[lo:lo + n] if compensated else w
                    if kahan:
                        done = lion_pairs(like, like_state, addresses, k, lo, n, (PARAM, GRAD, BUF0, COMP), first,
                                          True, factor, shrink, beta1, w1, b2, w2, neg_lr)
                        if done < n:  # (bfloat16 pairs' odd last element)
                            lion_kahan(like, w[done:], g[done:], m[done:], comp[done:], factor, shrink, beta1, w1, b2,
                                       w2, neg_lr, first)
                    elif compensated:  # (the flags but compensation read at run time: ``_kernels_of``)
                        _lion_block(w, g, m, comp, factor, shrink, beta1, w1, b2, w2, neg_lr, first, True, divide)
                    else:
                        _lion_block(w, g, m, w, factor, shrink, beta1, w1, b2, w2, neg_lr, first, False, divide)
                    continue
                done = lion_pairs(like, like_state, addresses, k, lo, n, (PARAM, GRAD, BUF0, COMP), first, False,
                                  factor, shrink, beta1, w1, b2, w2, neg_lr)
                if done == n:
                    continue
                w, g, m = w[done:], g[done:], m[done:]  # (bfloat16 pairs' odd last element)
                if first:
                    _lion_block(w, g, m, w, factor, shrink, beta1, w1, b2, w2, neg_lr, True, False, False)
                else:
                    _lion_block(w, g, m, w, factor, shrink, beta1, w1, b2, w2, neg_lr, False, False, False)

    return kernel


lion_kernel, lion_general_kernel = _kernels_of(_lion_kernel_of, "lion")

# ----------------------------------------------------------------------------- (d) the simulations
# The batched quadratic simulations (``fastdecay/_cpu/simulate.py``: tiles, blocks of
# tiles, rates, noise, recording, chunks) reach a rule only through the four
# ``simulate_*`` functions at the end of this section, each an if-chain on the rule
# code (Numba dispatches by code, not by a table):
#
#   simulate_shared_steps(opt, ...)       tiles b0 .. b1 - 1, steps s0 .. s1 - 1, shared
#                                          rates (rows of step_scalars), no recording:
#                                          the rule's tile and step loops
#   simulate_per_trajectory_lr(opt, ...)  one step of a tile of one-coordinate
#                                          trajectories with their own learning rates
#                                          (and weight decays, or a shared one)
#   simulate_per_trajectory_block(...)    STEP_BLOCK noiseless steps of such a tile in
#                                          one pass (the SGD family; others a step a pass),
#                                          at exponential rates or at rate classes' rates
#   simulate_generic_step(opt, ...)       one step of trajectories at their own rates,
#                                          any d, recording: per element (d = 1) a branch
#                                          per rule, per trajectory its coordinates' loop
#
# and the table's column SIM_ON_DROP[opt] (on_drop scales the rule's buffer), read at
# compile time by code. A simulation never maximizes, couples Adam's weight decay
# (AdamW's and Lion's are decoupled), has no dampening and no AMSGrad. Each rule's
# loops are written out with the element rule inside, the choice of rule outside them
# or on loop-invariant flags, so each keeps the loops it was tuned with
# (bench/RESULTS.md, "noiseless path"): no call that takes an array inside a tile's
# step loop (each would count references on arrays every thread shares), no call per
# element to a function that picks the rule (LLVM no longer unswitches and
# vectorizes such a loop: 3-30x slower, measured).

# flags passed as constants to a function that other callers give run-time flags: NumPy bools, not the
# literals True / False (Numba compiles a function once more for each literal argument: with such
# second copies ``fastdecay compile`` took a fifth more CPU time, bench/RESULTS.md)
RUN_TRUE, RUN_FALSE = np.bool_(True), np.bool_(False)
SIM_ON_DROP = np.zeros(max(r.code for r in RULES) + 1, dtype=np.bool_)
for _rule in RULES:
    SIM_ON_DROP[_rule.code] = _rule.on_drop
SIM_ON_DROP.flags.writeable = False


@njit(cache=True)
def _sgd_sim(x, g, b, l2, buf_decay, gain, nest_grad, nest_buf, neg_lr, use_momentum, nesterov, in_buffer, first):
    """``sgd_element`` with the coefficients of ``sgd_scalars`` as a simulation uses them.

    A simulation never maximizes, couples its weight decay and has no dampening,
    so sign, shrink and (without lr_in_buffer) grad_gain and nest_grad are exactly
    1: they go in as a compile-time constant 1 of the element type and LLVM folds
    ``1*g`` to ``g``. Every SGD-family call site of the simulation goes through
    here, and nothing is contracted into a fused multiply-add (``rules``), so a
    trajectory gets the same bits on the shared-schedule, per-trajectory and
    generic paths, whatever its batch, in a fresh compile and from Numba's cache.
    ``in_buffer`` is lr_in_buffer with momentum on (then gain = nest_grad = lr).
    """
    one = one_like(x)
    if in_buffer:
        return sgd_element(x, g, b, one, l2, one, buf_decay, gain, nest_grad, nest_buf, neg_lr, use_momentum,
                           nesterov, first)
    return sgd_element(x, g, b, one, l2, one, buf_decay, one, one, nest_buf, neg_lr, use_momentum, nesterov, first)


@njit(cache=True)
def _sgd_coords(w, buf, lam, c, use_momentum, nesterov, in_buffer, first, z, sigma, record):
    """``_sgd_sim`` over one trajectory's coordinates (z: their draws, or None); (sum of squared
    moves, 2 x loss) when recording."""
    dt = w.dtype.type
    l2, buf_decay = dt(c.l2), dt(c.buf_decay)
    gain, nest_grad, nest_buf, neg_lr = dt(c.grad_gain), dt(c.nest_grad), dt(c.nest_buf), dt(c.neg_lr)
    zero = dt(0.0)
    disp = 0.0
    loss = 0.0
    if record:
        for k in range(w.shape[0]):
            x = w[k]
            g = gradient(lam[k], x, z, sigma, k)
            b = buf[k] if use_momentum else zero
            xn, b = _sgd_sim(x, g, b, l2, buf_decay, gain, nest_grad, nest_buf, neg_lr, use_momentum, nesterov,
                             in_buffer, first)
            w[k] = xn
            if use_momentum:
                buf[k] = b
            if record:
                dd, ll = tally(lam[k], x, xn)
                disp += dd
                loss += ll
    elif use_momentum:
        for k in range(w.shape[0]):
            x = w[k]
            w[k], buf[k] = _sgd_sim(x, gradient(lam[k], x, z, sigma, k), buf[k], l2, buf_decay, gain, nest_grad,
                                    nest_buf, neg_lr, True, nesterov, in_buffer, first)
    else:
        for k in range(w.shape[0]):
            x = w[k]
            w[k], _ = _sgd_sim(x, gradient(lam[k], x, z, sigma, k), zero, l2, buf_decay, gain, nest_grad, nest_buf,
                               neg_lr, False, False, False, first)
    return disp, loss


# Noiseless steps under shared rates run STEP_BLOCK steps in one pass over a tile: an
# element's state stays in registers across the block (one load and store of w, and of
# the buffer, a block instead of a step), so the loop is bound by its arithmetic instead
# of by L1 traffic (bench/RESULTS.md, "Steps in blocks"). Every element gets the same
# operations in the same order as one step a pass: the same bits.
STEP_BLOCK = 4


@njit(cache=True)
def _sgd_coefficients(step_scalars, s, t, nesterov, in_buffer, x):
    """Row s of ``step_scalars`` (step t) as ``_sgd_sim``'s coefficients, in x's type:
    (l2, buf_decay, grad_gain, nest_grad, nest_buf, neg_lr)."""
    dt = type(x)
    c = sgd_scalars(step_scalars[s, LR], step_scalars[s, WD], t == 0, step_scalars[s, SCALE],
                    step_scalars[s, MOM], 0.0, nesterov, False, False, in_buffer)
    return dt(c.l2), dt(c.buf_decay), dt(c.grad_gain), dt(c.nest_grad), dt(c.nest_buf), dt(c.neg_lr)


@njit(inline="always")
def _sgd_noiseless(x, lam, b, k, use_momentum, nesterov, buffer_in, first):
    """One noiseless step of one element with coefficients ``k`` (``_sgd_coefficients``)."""
    return _sgd_sim(x, gradient(lam, x, None, 0.0, np.int64(0)), b, k[0], k[1], k[2], k[3], k[4], k[5], use_momentum,
                    nesterov, buffer_in, first)


@njit(inline="always")
def _sgd_block_loop(w, buf, lam, k0, k1, k2, k3, use_momentum, nesterov, buffer_in):
    """The block's loop for one case of the flags (constants where ``_sgd_block_loops``
    inlines it, so each case is a loop of its own that vectorizes)."""
    zero = lam.dtype.type(0.0)
    for i in range(w.shape[0]):
        x, a = w[i], lam[i]
        b = buf[i] if use_momentum else zero  # GD: buf empty, never read
        x, b = _sgd_noiseless(x, a, b, k0, use_momentum, nesterov, buffer_in, False)
        x, b = _sgd_noiseless(x, a, b, k1, use_momentum, nesterov, buffer_in, False)
        x, b = _sgd_noiseless(x, a, b, k2, use_momentum, nesterov, buffer_in, False)
        w[i], b = _sgd_noiseless(x, a, b, k3, use_momentum, nesterov, buffer_in, False)
        if use_momentum:
            buf[i] = b


@njit(inline="always")
def _sgd_block_loops(w, buf, lam, k0, k1, k2, k3, use_momentum, nesterov, buffer_in):
    if use_momentum and nesterov:
        _sgd_block_loop(w, buf, lam, k0, k1, k2, k3, True, True, buffer_in)
    elif use_momentum:
        _sgd_block_loop(w, buf, lam, k0, k1, k2, k3, True, False, buffer_in)
    else:
        _sgd_block_loop(w, buf, lam, k0, k1, k2, k3, False, False, False)


@njit(inline="always")
def _without_l2(k):
    """Coefficients ``k`` with l2 a constant 0: ``sgd_element``'s weight-decay test then
    folds away at compile time (as a run-time test inside a loop LLVM keeps it as a
    select beside the multiply-add: measured ~10-30 % slower)."""
    return (type(k[1])(0.0), k[1], k[2], k[3], k[4], k[5])


@njit(inline="always")
def _sgd_step_block(w, buf, lam, k0, k1, k2, k3, use_momentum, nesterov, buffer_in):
    """STEP_BLOCK (4) noiseless steps, none the first, of a tile's elements: the state
    in registers across them (inlined: a call would count references on the arrays)."""
    if k0[0] == 0.0 and k1[0] == 0.0 and k2[0] == 0.0 and k3[0] == 0.0:
        _sgd_block_loops(w, buf, lam, _without_l2(k0), _without_l2(k1), _without_l2(k2), _without_l2(k3),
                         use_momentum, nesterov, buffer_in)
    else:
        _sgd_block_loops(w, buf, lam, k0, k1, k2, k3, use_momentum, nesterov, buffer_in)


@njit(inline="always")
def _sgd_noiseless_block(w, buf, lam, step_scalars, s, t, use_momentum, nesterov, in_buffer):
    """Steps s .. s + STEP_BLOCK - 1 (step t first, not step 0) of a tile in one block."""
    zero = lam.dtype.type(0.0)
    _sgd_step_block(w, buf, lam, _sgd_coefficients(step_scalars, s, t, nesterov, in_buffer, zero),
                    _sgd_coefficients(step_scalars, s + 1, t + 1, nesterov, in_buffer, zero),
                    _sgd_coefficients(step_scalars, s + 2, t + 2, nesterov, in_buffer, zero),
                    _sgd_coefficients(step_scalars, s + 3, t + 3, nesterov, in_buffer, zero),
                    use_momentum, nesterov, in_buffer and use_momentum)


def sgd_block_if_noiseless(noise_scratch, w, buf, lam, step_scalars, s, t, use_momentum, nesterov, in_buffer):
    """Steps s .. s + STEP_BLOCK - 1 (step t first, not step 0) of a tile in one block
    (``_sgd_noiseless_block``) when the run is noiseless (``noise_scratch`` None); True
    when done. In compiled code the choice is made by the type of ``noise_scratch`` (the
    overload below), so a noisy kernel holds none of the block's code (a branch on
    ``is None`` inside the loops was compiled into both, measured: +5 s of a cold compile)."""
    if noise_scratch is not None:
        return False
    _sgd_noiseless_block(w, buf, lam, step_scalars, s, t, use_momentum, nesterov, in_buffer)
    return True


@overload(sgd_block_if_noiseless)
def _sgd_block_if_noiseless_impl(noise_scratch, w, buf, lam, step_scalars, s, t, use_momentum, nesterov, in_buffer):
    if not isinstance(noise_scratch, types.NoneType):
        return lambda noise_scratch, w, buf, lam, step_scalars, s, t, use_momentum, nesterov, in_buffer: False

    def impl(noise_scratch, w, buf, lam, step_scalars, s, t, use_momentum, nesterov, in_buffer):
        # (its multiply-adds pace it: 1.4-2x faster in 512-bit vectors where the core has two 512-bit
        # FMA units, bench/RESULTS.md; this function, not its caller, holds the block's loop)
        prefer_wide_vectors()
        _sgd_noiseless_block(w, buf, lam, step_scalars, s, t, use_momentum, nesterov, in_buffer)
        return True

    return impl


@njit(inline="always")
def _sgd_tile_step(w, buf, lam, z, sigma, k, t, use_momentum, nesterov, buffer_in):
    """Step t of a tile's elements with coefficients ``k`` (``_sgd_coefficients``) and
    draws z (or None): one loop for each case of the flags, so each vectorizes."""
    l2, buf_decay, gain, nest_grad, nest_buf, neg_lr = k
    zero = lam.dtype.type(0.0)
    if use_momentum:
        if t == 0:
            for i in range(w.shape[0]):
                x = w[i]
                w[i], buf[i] = _sgd_sim(x, gradient(lam[i], x, z, sigma, i), buf[i], l2, buf_decay, gain,
                                        nest_grad, nest_buf, neg_lr, True, nesterov, buffer_in, True)
        elif nesterov:
            for i in range(w.shape[0]):
                x = w[i]
                w[i], buf[i] = _sgd_sim(x, gradient(lam[i], x, z, sigma, i), buf[i], l2, buf_decay, gain,
                                        nest_grad, nest_buf, neg_lr, True, True, buffer_in, False)
        else:
            for i in range(w.shape[0]):
                x = w[i]
                w[i], buf[i] = _sgd_sim(x, gradient(lam[i], x, z, sigma, i), buf[i], l2, buf_decay, gain,
                                        nest_grad, nest_buf, neg_lr, True, False, buffer_in, False)
    else:
        for i in range(w.shape[0]):
            x = w[i]
            w[i], _ = _sgd_sim(x, gradient(lam[i], x, z, sigma, i), zero, l2, buf_decay, gain, nest_grad,
                               nest_buf, neg_lr, False, False, False, False)


@njit(inline="always")
def _momentum_throughout(step_scalars, s, use_momentum):
    """Whether steps s .. s + STEP_BLOCK - 1 all run the rule's momentum (a step at momentum 0
    is a plain one that leaves the buffer as it is: not in a block's loop), or none does."""
    if not use_momentum:
        return True
    return (step_scalars[s, MOM] != 0.0 and step_scalars[s + 1, MOM] != 0.0 and step_scalars[s + 2, MOM] != 0.0
            and step_scalars[s + 3, MOM] != 0.0)


@njit(cache=True)
def _sgd_shared_steps(w_all, buf_all, lam_all, tile, b0, b1, d, step_scalars, first_step, s0, s1, drawn,
                      use_momentum, nesterov, in_buffer, noise_scratch, seed, offset, lane_trajectory,
                      lane_coordinate, sigma):
    """Steps ``first_step + s`` for s in [s0, s1) of tiles b0 .. b1 - 1 (``tile`` elements
    each) under shared rates, no recording: tile by tile, per step the coefficients of
    row s of ``step_scalars`` and one vector loop over the tile's elements (any d: with
    shared rates every element takes the same update); without noise, past step 0, in
    blocks of STEP_BLOCK steps a loop. The draws of the four steps of a Philox counter
    are made at the first of them, and at s0 unless ``drawn`` (one tile whose draws of step
    s0's counter this thread holds already: its call before ended inside that counter).

    The tile and step loops are here, around the element loops, and the element loops
    are written out in them: no call that takes an array inside these loops but the
    block's (each would count references on the arrays every thread shares, atomically:
    twice a tile-step inside the step loop, and contended between threads), so a block
    of tiles costs one call and a step block one more. The slices start at index 0 (no
    negative-index wraparound in the loop, so LLVM vectorizes it); the coefficients go
    through ``_sgd_sim`` as on every other path (bit-identical results). ``in_buffer``
    is lr_in_buffer for ``sgd_scalars``; the element rule takes it with momentum on only."""
    prefer_wide_vectors()  # (the steps outside blocks; the blocks' loops ask in their own function)
    dt = w_all.dtype.type
    zero = dt(0.0)
    buffer_in = in_buffer and use_momentum
    for b in range(b0, b1):
        e0, e1, zs, first_trajectory, lanes_t, lanes_c = tile_span(
            b, tile, w_all.shape[0], d, noise_scratch, offset, lane_trajectory, lane_coordinate)
        w, buf, lam = w_all[e0:e1], buf_all[e0:e1], lam_all[e0:e1]  # GD: buf empty, never read
        s = s0
        while s < s1:
            t = first_step + s
            if (t != 0 and s + STEP_BLOCK <= s1 and _momentum_throughout(step_scalars, s, use_momentum)
                    and sgd_block_if_noiseless(noise_scratch, w, buf, lam, step_scalars, s, t, use_momentum, nesterov,
                                               in_buffer)):
                s += STEP_BLOCK
                continue
            z = draws_of_step(zs, seed, first_trajectory, lanes_t, lanes_c, t, s == s0 and not drawn)
            on = use_momentum and step_scalars[s, MOM] != 0.0  # (a step at momentum 0 leaves the buffer as it is)
            _sgd_tile_step(w, buf, lam, z, sigma, _sgd_coefficients(step_scalars, s, t, nesterov, in_buffer, zero), t,
                           on, nesterov, buffer_in and on)
            s += 1


@njit(cache=True)
def _fast_sgd_per_trajectory(w, buf, lam, lr_state, lr_ratio, advance, wd, wds, per_wd, mom, nesterov, in_buffer,
                             use_momentum, first, z, sigma):
    """d == 1, per-trajectory learning rates, the weight decay shared (``wd``) or a
    trajectory's own (``wds[i]`` with ``per_wd``). With ``advance`` every rate first moves
    one step (lr_state *= lr_ratio) in the same pass."""
    if use_momentum:
        if advance:
            _sgd_per_trajectory_loop(w, buf, lam, lr_state, lr_ratio, True, wd, wds, per_wd, mom, nesterov, in_buffer,
                                     True, first, z, sigma)
        else:
            _sgd_per_trajectory_loop(w, buf, lam, lr_state, lr_ratio, False, wd, wds, per_wd, mom, nesterov, in_buffer,
                                     True, first, z, sigma)
    elif advance:
        _sgd_per_trajectory_loop(w, buf, lam, lr_state, lr_ratio, True, wd, wds, per_wd, 0.0, False, False, False,
                                 False, z, sigma)
    else:
        _sgd_per_trajectory_loop(w, buf, lam, lr_state, lr_ratio, False, wd, wds, per_wd, 0.0, False, False, False,
                                 False, z, sigma)


@njit(cache=True)
def _sgd_per_trajectory_loop(w, buf, lam, lr_state, lr_ratio, advance, wd, wds, per_wd, mom, nesterov, in_buffer,
                             use_momentum, first, z, sigma):
    dt = w.dtype.type
    zero = dt(0.0)
    for i in range(w.shape[0]):
        eta = lr_state[i]
        if advance:
            eta *= lr_ratio[i]
            lr_state[i] = eta
        c = sgd_scalars(eta, wds[i] if per_wd else wd, first, 1.0, mom, 0.0, nesterov, False, False, in_buffer)
        x = w[i]
        b = buf[i] if use_momentum else zero
        xn, b = _sgd_sim(x, gradient(lam[i], x, z, sigma, i), b, dt(c.l2), dt(c.buf_decay), dt(c.grad_gain),
                         dt(c.nest_grad), dt(c.nest_buf), dt(c.neg_lr), use_momentum, nesterov,
                         in_buffer and use_momentum, first)
        w[i] = xn
        if use_momentum:
            buf[i] = b


# how a block of per-trajectory steps reads its rates (``_sgd_pt_steps``): each advanced by its
# ratio; rate classes' gathered in the steps' loop (where that loop does not vectorize anyway: GD);
# rate classes' gathered first into four arrays, so that the steps' loop vectorizes (momentum);
# one class's rates for every lane, read once a block (a run of the tile's lanes of one class:
# the steps' loop vectorizes with no gather)
BY_RATIO, BY_CLASS, BY_GATHERED_CLASS, BY_ONE_CLASS = 0, 1, 2, 3
ZERO_WDS = (0.0, 0.0, 0.0, 0.0)  # a block without weight decay: l2 a constant 0 (``_without_l2``)
_NO_RATES, _NO_CLASSES = np.zeros((0, 0, 1)), np.zeros(0, np.int64)  # (compile-time constants)


def _sgd_steps_reading(read):
    """``_sgd_pt_steps`` for one way of reading the rates, ``read``, a constant of the closure: Numba
    drops the other ways' branches before it compiles (as an argument, every block compiled all
    four: the class blocks 3x longer)."""

    @njit(inline="always")
    def _sgd_pt_steps(w, buf, lam, lr_state, lr_ratio, rates, classes, s, etas, wds, moms, use_momentum, nesterov,
                      in_buffer):
        """The four steps of ``_sgd_per_trajectory_block`` with the block's weight decays
        ``wds`` and momenta ``moms`` (tuples), each step as ``_sgd_per_trajectory_loop``
        with ``advance``; ``read`` says where step q's rate comes from: BY_RATIO the
        trajectory's rate advanced by its ratio, BY_CLASS scaled(lr_state[i], rates[s + q, classes[i], 0])
        (rate classes: ``lr_state`` the trajectories' scales, 1 where a class is a row, ``lr_ratio``
        unread), BY_GATHERED_CLASS etas[q][i] (``lr_state`` and ``lr_ratio`` unread), BY_ONE_CLASS
        scaled(lr_state[i], rates[s + q, classes[0], 0]) (every lane of class classes[0]); where
        ``rates`` is two wide, the classes are rising lines' (``class_lane_rate``) in place of
        ``scaled``."""
        dt = w.dtype.type
        zero = dt(0.0)
        buffer_in = in_buffer and use_momentum
        rises = rates.shape[2] == 2  # (rising lines' classes: ``class_lane_rate``)
        one_class = (0.0, 0.0, 0.0, 0.0)
        if read == BY_ONE_CLASS:  # (read here, not in the lanes' loop: a load there may alias the stores)
            k = classes[0]
            one_class = (rates[s, k, 0], rates[s + 1, k, 0], rates[s + 2, k, 0], rates[s + 3, k, 0])
        for i in range(w.shape[0]):
            x, a = w[i], lam[i]
            b = buf[i] if use_momentum else zero
            k = classes[i] if read == BY_CLASS else 0
            eta = lr_state[i] if read == BY_RATIO else 0.0
            r = lr_ratio[i] if read == BY_RATIO else 0.0
            scale = lr_state[i] if read == BY_CLASS or read == BY_ONE_CLASS else 1.0
            for q in range(STEP_BLOCK):  # unrolled: four steps in registers
                if read == BY_RATIO:
                    eta *= r
                elif read == BY_CLASS:
                    eta = class_lane_rate(scale, rates[s + q, k, 0], rises)
                elif read == BY_ONE_CLASS:
                    eta = class_lane_rate(scale, one_class[q], rises)
                else:
                    eta = etas[q][i]
                c = sgd_scalars(eta, wds[q], False, 1.0, moms[q], 0.0, nesterov, False, False, in_buffer)
                x, b = _sgd_sim(x, gradient(a, x, None, 0.0, np.int64(0)), b, dt(c.l2), dt(c.buf_decay),
                                dt(c.grad_gain), dt(c.nest_grad), dt(c.nest_buf), dt(c.neg_lr), use_momentum, nesterov,
                                buffer_in, False)
            if read == BY_RATIO:
                lr_state[i] = eta
            w[i] = x
            if use_momentum:
                buf[i] = b

    return _sgd_pt_steps


def _sgd_block_reading(read):
    """``_sgd_steps_reading(read)`` at the weight decays and momenta of steps s .. s + 3 of
    ``step_scalars``, its flags made constants of each call (so each rule's loop is compiled on its
    own): without weight decay in the block, its l2 is a constant 0 (``_without_l2``)."""
    steps = _sgd_steps_reading(read)

    @njit(inline="always")
    def _sgd_pt_block(w, buf, lam, lr_state, lr_ratio, rates, classes, s, etas, step_scalars, use_momentum, nesterov,
                      in_buffer):
        wds, moms, no_wd = _block_scalars(step_scalars, s)
        if no_wd:
            if not use_momentum:
                steps(w, buf, lam, lr_state, lr_ratio, rates, classes, s, etas, ZERO_WDS, moms, False, False, False)
            elif nesterov:
                steps(w, buf, lam, lr_state, lr_ratio, rates, classes, s, etas, ZERO_WDS, moms, True, True, in_buffer)
            else:
                steps(w, buf, lam, lr_state, lr_ratio, rates, classes, s, etas, ZERO_WDS, moms, True, False,
                      in_buffer)
        elif not use_momentum:
            steps(w, buf, lam, lr_state, lr_ratio, rates, classes, s, etas, wds, moms, False, False, False)
        elif nesterov:
            steps(w, buf, lam, lr_state, lr_ratio, rates, classes, s, etas, wds, moms, True, True, in_buffer)
        else:
            steps(w, buf, lam, lr_state, lr_ratio, rates, classes, s, etas, wds, moms, True, False, in_buffer)

    return _sgd_pt_block


_sgd_steps_by_class = _sgd_steps_reading(BY_CLASS)
_sgd_block_by_ratio, _sgd_block_gathered, _sgd_block_one_class = (
    _sgd_block_reading(read) for read in (BY_RATIO, BY_GATHERED_CLASS, BY_ONE_CLASS))


@njit(cache=True)
def _sgd_per_trajectory_block(w, buf, lam, lr_state, lr_ratio, step_scalars, s, use_momentum, nesterov, in_buffer):
    """STEP_BLOCK (4) noiseless steps s .. s + 3, none the first, of a tile of
    one-coordinate trajectories at their own exponential rates (each advanced by
    lr_ratio a step), the weight decay and momentum of ``step_scalars``: the state and
    the rate in registers across the steps."""
    prefer_wide_vectors()  # (GD 1.2-1.4x, momentum 1.0-1.4x faster a core in 512-bit vectors, bench/RESULTS.md)
    # (constants stand in for the classes' arrays, unread)
    _sgd_block_by_ratio(w, buf, lam, lr_state, lr_ratio, _NO_RATES, _NO_CLASSES, s, (w, w, w, w), step_scalars,
                        use_momentum, nesterov, in_buffer)


@njit(cache=True)
def _sgd_class_block(w, buf, lam, rates, classes, scales, etas, step_scalars, s, use_momentum, nesterov,
                     in_buffer):
    """``_sgd_per_trajectory_block`` at the rates of rate classes: scaled(scales[i],
    rates[s + q, classes[i], 0]) trajectory i's at step s + q, read in the steps' loop for GD;
    with momentum gathered first into the four arrays ``etas`` (the tile's scratch), so that the
    steps' loop reads them in order and vectorizes (it does not with the gather inside)."""
    # (w stands in for the ratios, unread; GD's two loops written out: through a block function its
    # momentum branches would be compiled too, unreachable, 2 s more)
    if not use_momentum:
        wds, moms, no_wd = _block_scalars(step_scalars, s)
        if no_wd:
            _sgd_steps_by_class(w, buf, lam, scales, w, rates, classes, s, etas, ZERO_WDS, moms, False, False, False)
        else:
            _sgd_steps_by_class(w, buf, lam, scales, w, rates, classes, s, etas, wds, moms, False, False, False)
        return
    e0, e1, e2, e3 = etas
    rises = rates.shape[2] == 2
    for i in range(w.shape[0]):
        k, c = classes[i], scales[i]
        e0[i], e1[i] = class_lane_rate(c, rates[s, k, 0], rises), class_lane_rate(c, rates[s + 1, k, 0], rises)
        e2[i], e3[i] = class_lane_rate(c, rates[s + 2, k, 0], rises), class_lane_rate(c, rates[s + 3, k, 0], rises)
    _sgd_block_gathered(w, buf, lam, w, w, rates, classes, s, etas, step_scalars, True, nesterov, in_buffer)


@njit(cache=True)
def _sgd_class_runs_block(w, buf, lam, rates, classes, scales, step_scalars, s, use_momentum, nesterov, in_buffer):
    """``_sgd_class_block`` of a tile whose classes never decrease (its trajectories laid out
    class by class: ``fastdecay.simulate`` lays them out so for the block's sake), a run of lanes
    of one class at a time: each run's four rates read once, each lane's
    scaled(scales[i], rate), so that the steps' loop vectorizes without a gather (the same bits)."""
    prefer_wide_vectors()
    n = w.shape[0]
    j0 = 0
    while j0 < n:
        j1 = class_run_end(classes, j0)
        # (buf is empty for GD: any slice of it is, and is not read)
        _sgd_block_one_class(w[j0:j1], buf[j0:j1], lam[j0:j1], scales[j0:j1], w, rates, classes[j0:j1], s,
                             (w, w, w, w), step_scalars, use_momentum, nesterov, in_buffer)
        j0 = j1


@njit(inline="always")
def class_run_end(classes, j0):
    """The end of the run of classes[j0] in ``classes``, which never decrease: the first place
    after j0 of another class (a binary search), or the length."""
    k, hi = classes[j0], classes.shape[0]
    if classes[hi - 1] == k:
        return hi
    lo = j0 + 1  # classes[lo - 1] == k, classes[hi - 1] > k
    hi -= 1
    while lo < hi:
        mid = (lo + hi) // 2
        if classes[mid] == k:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(inline="always")
def _block_scalars(step_scalars, s):
    """(weight decays, momenta, whether every weight decay is 0) of steps s .. s + 3."""
    wds = (step_scalars[s, WD], step_scalars[s + 1, WD], step_scalars[s + 2, WD], step_scalars[s + 3, WD])
    moms = (step_scalars[s, MOM], step_scalars[s + 1, MOM], step_scalars[s + 2, MOM], step_scalars[s + 3, MOM])
    return wds, moms, wds[0] == 0.0 and wds[1] == 0.0 and wds[2] == 0.0 and wds[3] == 0.0


@njit(cache=True)
def _adam_sim(x, g, m, v, l2, shrink, w1, beta2, w2, neg_step_size, bc2_sqrt, eps, first):
    """``adam_element`` as a simulation uses it: never maximizing (sign a compile-time
    1, so ``1*g`` folds away as in ``_sgd_sim``), no AMSGrad. Returns the new (w, m, v)."""
    w, m, v, _ = adam_element(x, g, m, v, x, one_like(x), l2, shrink, w1, beta2, w2, neg_step_size, bc2_sqrt, eps,
                              False, first, True)
    return w, m, v


@njit(cache=True)
def _adam_coords(w, m, v, lam, c, first, z, sigma, record):
    """``_adam_sim`` over one trajectory's coordinates (z: their draws, or None); (sum of squared
    moves, 2 x loss) when recording."""
    dt = w.dtype.type
    l2, shrink, w1, b2, w2 = dt(c.l2), dt(c.shrink), dt(c.w1), dt(c.beta2), dt(c.w2)
    neg_step, bc2_sqrt, e = dt(c.neg_step_size), dt(c.bc2_sqrt), dt(c.eps)
    disp = 0.0
    loss = 0.0
    if record:
        for k in range(w.shape[0]):
            x = w[k]
            g = gradient(lam[k], x, z, sigma, k)
            xn, m[k], v[k] = _adam_sim(x, g, m[k], v[k], l2, shrink, w1, b2, w2, neg_step, bc2_sqrt, e, first)
            w[k] = xn
            if record:
                dd, ll = tally(lam[k], x, xn)
                disp += dd
                loss += ll
    else:
        for k in range(w.shape[0]):
            x = w[k]
            w[k], m[k], v[k] = _adam_sim(x, gradient(lam[k], x, z, sigma, k), m[k], v[k], l2, shrink, w1, b2, w2,
                                         neg_step, bc2_sqrt, e, first)
    return disp, loss


@njit(inline="always")
def _adam_tile_step(w, m, v, lam, z, sigma, k, first):
    """One step of a tile's elements under Adam's coefficients ``k`` (l2, shrink, w1,
    beta2, w2, neg_step_size, bc2_sqrt, eps) and draws z (or None)."""
    l2, shrink, w1, b2, w2, neg_step, bc2_sqrt, e = k
    if first:
        for i in range(w.shape[0]):
            x = w[i]
            w[i], m[i], v[i] = _adam_sim(x, gradient(lam[i], x, z, sigma, i), m[i], v[i], l2, shrink, w1, b2, w2,
                                         neg_step, bc2_sqrt, e, True)
    else:
        for i in range(w.shape[0]):
            x = w[i]
            w[i], m[i], v[i] = _adam_sim(x, gradient(lam[i], x, z, sigma, i), m[i], v[i], l2, shrink, w1, b2, w2,
                                         neg_step, bc2_sqrt, e, False)


@njit(cache=True)
def _adam_shared_steps(w_all, m_all, v_all, lam_all, tile, b0, b1, d, step_scalars, first_step, s0, s1, drawn, beta2,
                       eps, decoupled, noise_scratch, seed, offset, lane_trajectory, lane_coordinate, sigma):
    """``_sgd_shared_steps`` for Adam / AdamW: per tile-step the coefficients of
    ``adam_scalars`` (beta1: the MOM column) and one vector loop over the tile."""
    dt = w_all.dtype.type
    for b in range(b0, b1):
        e0, e1, zs, first_trajectory, lanes_t, lanes_c = tile_span(
            b, tile, w_all.shape[0], d, noise_scratch, offset, lane_trajectory, lane_coordinate)
        w, m, v, lam = w_all[e0:e1], m_all[e0:e1], v_all[e0:e1], lam_all[e0:e1]
        for s in range(s0, s1):
            t = first_step + s
            z = draws_of_step(zs, seed, first_trajectory, lanes_t, lanes_c, t, s == s0 and not drawn)
            c = adam_scalars(step_scalars[s, LR], step_scalars[s, WD], float(t), step_scalars[s, MOM], beta2, eps,
                             decoupled, False)
            k = (dt(c.l2), dt(c.shrink), dt(c.w1), dt(c.beta2), dt(c.w2), dt(c.neg_step_size), dt(c.bc2_sqrt),
                 dt(c.eps))
            _adam_tile_step(w, m, v, lam, z, sigma, k, t == 0)


@njit(cache=True)
def _fast_adam_per_trajectory(w, m, v, lam, lr_state, lr_ratio, advance, wd, wds, per_wd, t, beta1, beta2, eps,
                              decoupled, z, sigma):
    first = t == 0
    dt = w.dtype.type
    tf = float(t)
    for i in range(w.shape[0]):
        eta = lr_state[i]
        if advance:
            eta *= lr_ratio[i]
            lr_state[i] = eta
        c = adam_scalars(eta, wds[i] if per_wd else wd, tf, beta1, beta2, eps, decoupled, False)
        x = w[i]
        w[i], m[i], v[i] = _adam_sim(x, gradient(lam[i], x, z, sigma, i), m[i], v[i], dt(c.l2), dt(c.shrink), dt(c.w1),
                                     dt(c.beta2), dt(c.w2), dt(c.neg_step_size), dt(c.bc2_sqrt), dt(c.eps), first)


@njit(cache=True)
def _lion_coords(w, m, lam, c, first, z, sigma, record):
    """``lion_element`` over one trajectory's coordinates (or a tile's elements; z: their
    draws, or None), never maximizing (sign a compile-time 1, as in ``_sgd_sim``), with ``c``
    the step's ``LionScalars``; (sum of squared moves, 2 x loss) when recording."""
    prefer_wide_vectors()  # (1.3-1.7x faster a tile-step in 512-bit vectors on Intel's AVX-512 cores)
    dt = w.dtype.type
    shrink, beta1, w1, beta2, w2, neg_lr = dt(c.shrink), dt(c.beta1), dt(c.w1), dt(c.beta2), dt(c.w2), dt(c.neg_lr)
    disp = 0.0
    loss = 0.0
    for k in range(w.shape[0]):
        x = w[k]
        xn, m[k] = lion_element(x, gradient(lam[k], x, z, sigma, k), m[k], one_like(x), shrink, beta1, w1, beta2,
                                w2, neg_lr, first)
        w[k] = xn
        if record:
            dd, ll = tally(lam[k], x, xn)
            disp += dd
            loss += ll
    return disp, loss


@njit(cache=True)
def _lion_shared_steps(w_all, m_all, lam_all, tile, b0, b1, d, step_scalars, first_step, s0, s1, drawn, beta2,
                       noise_scratch, seed, offset, lane_trajectory, lane_coordinate, sigma):
    """``_sgd_shared_steps`` for Lion (its element loop is ``_lion_coords``, called a
    tile-step)."""
    for b in range(b0, b1):
        e0, e1, zs, first_trajectory, lanes_t, lanes_c = tile_span(
            b, tile, w_all.shape[0], d, noise_scratch, offset, lane_trajectory, lane_coordinate)
        w, m, lam = w_all[e0:e1], m_all[e0:e1], lam_all[e0:e1]
        for s in range(s0, s1):
            t = first_step + s
            z = draws_of_step(zs, seed, first_trajectory, lanes_t, lanes_c, t, s == s0 and not drawn)
            c = lion_scalars(step_scalars[s, LR], step_scalars[s, WD], step_scalars[s, MOM], beta2, False)
            _lion_coords(w, m, lam, c, t == 0, z, sigma, False)


@njit(cache=True)
def _lion_per_trajectory(w, m, lam, lr_state, lr_ratio, advance, wd, wds, per_wd, beta1, beta2, first, z, sigma):
    """d == 1, per-trajectory learning rates, the weight decay shared or a trajectory's own
    (as ``_fast_sgd_per_trajectory``), a shared beta1. With
    ``advance`` every rate first moves one step (lr_state *= lr_ratio) in the same pass."""
    dt = w.dtype.type
    for i in range(w.shape[0]):
        eta = lr_state[i]
        if advance:
            eta *= lr_ratio[i]
            lr_state[i] = eta
        c = lion_scalars(eta, wds[i] if per_wd else wd, beta1, beta2, False)
        x = w[i]
        w[i], m[i] = lion_element(x, gradient(lam[i], x, z, sigma, i), m[i], one_like(x), dt(c.shrink), dt(c.beta1),
                                  dt(c.w1), dt(c.beta2), dt(c.w2), dt(c.neg_lr), first)


@njit(cache=True)
def simulate_shared_steps(opt, w, buf, sq, lam, tile, b0, b1, d, step_scalars, first_step, s0, s1, drawn, beta2, eps,
                          noise_scratch, seed, offset, lane_trajectory, lane_coordinate, sigma):
    """Steps s0 .. s1 - 1 of tiles b0 .. b1 - 1 (``tile`` elements each) under shared
    rates (row s of ``step_scalars``: lr, wd, buffer scale, momentum or beta1), no
    recording: the tile and step loops of rule ``opt``. ``drawn``: one tile (b1 = b0 + 1)
    whose draws of step s0's Philox counter this thread holds already (the caller's call
    before, on the same tile, ended inside that counter): not drawn again."""
    if opt == LION:
        _lion_shared_steps(w, buf, lam, tile, b0, b1, d, step_scalars, first_step, s0, s1, drawn, beta2,
                           noise_scratch, seed, offset, lane_trajectory, lane_coordinate, sigma)
    elif opt == ADAM or opt == ADAMW:
        _adam_shared_steps(w, buf, sq, lam, tile, b0, b1, d, step_scalars, first_step, s0, s1, drawn, beta2, eps,
                           opt == ADAMW, noise_scratch, seed, offset, lane_trajectory, lane_coordinate, sigma)
    else:
        _sgd_shared_steps(w, buf, lam, tile, b0, b1, d, step_scalars, first_step, s0, s1, drawn,
                          opt == MOMENTUM or opt == LR_IN_BUFFER or opt == NESTEROV, opt == NESTEROV,
                          opt == LR_IN_BUFFER, noise_scratch, seed, offset, lane_trajectory, lane_coordinate, sigma)


@njit(inline="always")
def simulate_per_trajectory_lr(opt, w, buf, sq, lam, lr_state, lr_ratio, advance, wd, wds, per_wd, mom, t, beta2, eps,
                               z, sigma):
    """Step t of a tile of one-coordinate trajectories (the slices w, buf, sq, lam,
    lr_state, lr_ratio, wds of the tile; z its draws or None), each at its own learning rate
    ``lr_state[i]`` (first advanced in the same pass, lr_state *= lr_ratio, with
    ``advance``), the weight decay shared, ``wd``, or with ``per_wd`` its own, ``wds[i]``
    (advanced by the caller), and the shared momentum / beta1 ``mom``; the buffer scale is
    1 (the engine sends here no tile whose rates drop)."""
    if opt == LION:
        _lion_per_trajectory(w, buf, lam, lr_state, lr_ratio, advance, wd, wds, per_wd, mom, beta2, t == 0, z, sigma)
    elif opt == ADAM or opt == ADAMW:
        _fast_adam_per_trajectory(w, buf, sq, lam, lr_state, lr_ratio, advance, wd, wds, per_wd, t, mom, beta2, eps,
                                  opt == ADAMW, z, sigma)
    else:
        # (a step at momentum 0 is a plain one that leaves the buffer as it is)
        _fast_sgd_per_trajectory(w, buf, lam, lr_state, lr_ratio, advance, wd, wds, per_wd, mom, opt == NESTEROV,
                                 opt == LR_IN_BUFFER,
                                 (opt == MOMENTUM or opt == LR_IN_BUFFER or opt == NESTEROV) and mom != 0.0, t == 0, z,
                                 sigma)


@njit(inline="always")
def _per_trajectory_noiseless_block(opt, w, buf, sq, lam, lr_state, lr_ratio, rates, classes, scales, etas,
                                    by_class, in_runs, step_scalars, s, first_step, beta2, eps):
    if (opt == GD or opt == MOMENTUM or opt == LR_IN_BUFFER or opt == NESTEROV) and _momentum_throughout(
            step_scalars, s, opt != GD):
        if by_class and in_runs:
            _sgd_class_runs_block(w, buf, lam, rates, classes, scales, step_scalars, s, opt != GD, opt == NESTEROV,
                                  opt == LR_IN_BUFFER)
        elif by_class:
            _sgd_class_block(w, buf, lam, rates, classes, scales, etas, step_scalars, s, opt != GD, opt == NESTEROV,
                             opt == LR_IN_BUFFER)
        else:
            _sgd_per_trajectory_block(w, buf, lam, lr_state, lr_ratio, step_scalars, s, opt != GD, opt == NESTEROV,
                                      opt == LR_IN_BUFFER)
        return True
    if by_class:
        return False  # (the other rules' steps at their classes' rates: a step a pass)
    for q in range(STEP_BLOCK):  # (shared weight decays: lr_ratio stands in for a per-trajectory array, unread)
        simulate_per_trajectory_lr(opt, w, buf, sq, lam, lr_state, lr_ratio, RUN_TRUE, step_scalars[s + q, WD],
                                   lr_ratio, RUN_FALSE, step_scalars[s + q, MOM], first_step + s + q, beta2, eps, None,
                                   0.0)
    return True


def simulate_per_trajectory_block(noise_scratch, opt, w, buf, sq, lam, lr_state, lr_ratio, rates, classes, scales,
                                  etas, by_class, in_runs, step_scalars, s, first_step, beta2, eps):
    """Steps s .. s + STEP_BLOCK - 1 of a tile as ``simulate_per_trajectory_lr`` with
    ``advance`` at each (none of them the first step or an anchor of the rates), when
    the run is noiseless (``noise_scratch`` None): the SGD family in one pass
    (``_sgd_per_trajectory_block``), the other rules a step a pass; True when done, False
    in a noisy run. With ``by_class`` the rates are the classes' of ``rates`` (rate classes:
    ``classes`` the tile's, scaled(scales[i], rates[s + q, classes[i], 0]) trajectory i's at
    step s + q; ``etas`` four arrays of the tile's length to gather them into; ``in_runs``: the
    tile's classes never decrease, and are read a run of one class at a time), in one pass for
    the SGD family, else not done here (False). In compiled code the choice of
    noise is made by the type of ``noise_scratch`` (the overload below): a noisy kernel holds
    none of this code."""
    if noise_scratch is not None:
        return False
    return _per_trajectory_noiseless_block(opt, w, buf, sq, lam, lr_state, lr_ratio, rates, classes, scales, etas,
                                           by_class, in_runs, step_scalars, s, first_step, beta2, eps)


@overload(simulate_per_trajectory_block)
def _simulate_per_trajectory_block_impl(noise_scratch, opt, w, buf, sq, lam, lr_state, lr_ratio, rates, classes,
                                        scales, etas, by_class, in_runs, step_scalars, s, first_step, beta2, eps):
    if not isinstance(noise_scratch, types.NoneType):
        return (lambda noise_scratch, opt, w, buf, sq, lam, lr_state, lr_ratio, rates, classes, scales, etas,
                by_class, in_runs, step_scalars, s, first_step, beta2, eps: False)

    def impl(noise_scratch, opt, w, buf, sq, lam, lr_state, lr_ratio, rates, classes, scales, etas, by_class,
             in_runs, step_scalars, s, first_step, beta2, eps):
        return _per_trajectory_noiseless_block(opt, w, buf, sq, lam, lr_state, lr_ratio, rates, classes, scales, etas,
                                               by_class, in_runs, step_scalars, s, first_step, beta2, eps)

    return impl


@njit(cache=True)
def simulate_generic_step(w, buf, sq, lam, i0, i1, d, opt, t, eta_shared, wd_shared, scale_shared, mom_shared, per_lr,
                  per_wd, per_mom, lr_table, lr_rows, lr_ratio, lr_state, wd_state, mom_state, beta2, eps, on_drop,
                  z, sigma, record, rec_j, rec_loss, rec_disp, rec_rows):
    """One step of trajectories [i0, i1) at their own rates, any d, any option (noise,
    recording into row ``record_row(rec_rows, i)``, first step): per-trajectory scalars, then a loop over the trajectory's d
    coordinates. The engine's generic step, here with its rules' branches: the choice of
    rule is made by loop-invariant flags inside the element loop, which LLVM unswitches
    (so each rule's loop vectorizes); a call per element to a rule function, or a rule
    function inlined with the arrays, would not (measured 3-30x slower). ``z`` holds
    the step's draws of the tile's lanes (element (i, k) is lane (i - i0) d + k), or None.
    The momentum (Adam's beta1) of a trajectory is ``mom_state[i]`` or ``mom_shared``.

    Nothing inside the element loops calls a function that takes an array unless it must
    (a trajectory's own rate that drops, under ``on_drop``): such a call is not inlined
    and counts references on its arrays, atomically, each element (it made this loop ~15 ns
    an element). Adam's bias corrections are computed once a step unless beta1 is a
    trajectory's own."""
    dt = w.dtype.type
    first = t == 0
    tf = float(t)
    adam = opt == ADAM or opt == ADAMW
    lion = opt == LION
    use_momentum = opt == MOMENTUM or opt == LR_IN_BUFFER or opt == NESTEROV
    nesterov = opt == NESTEROV
    # a trajectory's own rate may drop where it is not a plain exponential (NaN ratio)
    drops = per_lr and use_momentum and on_drop != 0
    bias1_shared, bc2_sqrt_shared = adam_bias(tf, mom_shared, beta2)
    if d == 1:
        # one element a trajectory (the noisy runs of sweeps): the elements in one flat loop
        in_buffer = opt == LR_IN_BUFFER
        zero = dt(0.0)
        for i in range(i0, i1):
            eta = lr_state[i] if per_lr else eta_shared
            wd = wd_state[i] if per_wd else wd_shared
            mom = mom_state[i] if per_mom else mom_shared
            x = w[i]
            g = gradient(lam[i], x, z, sigma, i - i0)
            if adam:
                bias1, bc2_sqrt = adam_bias(tf, mom, beta2) if per_mom else (bias1_shared, bc2_sqrt_shared)
                c = adam_scalars_biased(eta, wd, bias1, bc2_sqrt, mom, beta2, eps, opt == ADAMW, False)
                w[i], buf[i], sq[i] = _adam_sim(x, g, buf[i], sq[i], dt(c.l2), dt(c.shrink), dt(c.w1), dt(c.beta2),
                                                dt(c.w2), dt(c.neg_step_size), dt(c.bc2_sqrt), dt(c.eps), first)
            elif lion:
                c = lion_scalars(eta, wd, mom, beta2, False)
                w[i], buf[i] = lion_element(x, g, buf[i], one_like(x), dt(c.shrink), dt(c.beta1), dt(c.w1),
                                            dt(c.beta2), dt(c.w2), dt(c.neg_lr), first)
            else:
                scale = 1.0 if per_lr else scale_shared
                if drops and not lr_ratio[i] == lr_ratio[i]:
                    row = lr_rows[i]
                    if not plateau_continues(lr_table[row, 0, KIND], lr_table[row, 0, P0 + 3],
                                             lr_table[row, 0, P0 + 2], lr_table[row, 0, ORIGIN],
                                             one_segment(lr_table, row), tf):
                        scale = buffer_scale_at(lr_table, row, tf, on_drop)
                c = sgd_scalars(eta, wd, first, scale, mom, 0.0, nesterov, False, False, in_buffer)
                on = use_momentum and mom != 0.0  # (a step at momentum 0 leaves the buffer as it is)
                b = buf[i] if on else zero
                w[i], b = _sgd_sim(x, g, b, dt(c.l2), dt(c.buf_decay), dt(c.grad_gain), dt(c.nest_grad),
                                   dt(c.nest_buf), dt(c.neg_lr), on, nesterov, in_buffer and on, first)
                if on:
                    buf[i] = b
            if record:
                dd, ll = tally(lam[i], x, w[i])
                r = record_row(rec_rows, i)
                rec_disp[r, rec_j] = dt(math.sqrt(0.0 + dd))
                rec_loss[r, rec_j] = dt(0.5 * (0.0 + ll))
        return
    for i in range(i0, i1):
        eta = lr_state[i] if per_lr else eta_shared
        wd = wd_state[i] if per_wd else wd_shared
        mom = mom_state[i] if per_mom else mom_shared
        # the trajectory's coordinates as slices indexed from 0 (the plain loops vectorize)
        wi = w[i * d:(i + 1) * d]
        li = lam[i * d:(i + 1) * d]
        zi = lane_slice(z, (i - i0) * d, (i - i0 + 1) * d)
        if adam:
            bias1, bc2_sqrt = adam_bias(tf, mom, beta2) if per_mom else (bias1_shared, bc2_sqrt_shared)
            c = adam_scalars_biased(eta, wd, bias1, bc2_sqrt, mom, beta2, eps, opt == ADAMW, False)
            disp, loss = _adam_coords(wi, buf[i * d:(i + 1) * d], sq[i * d:(i + 1) * d], li, c, first, zi, sigma,
                                      record)
        elif lion:
            c = lion_scalars(eta, wd, mom, beta2, False)
            disp, loss = _lion_coords(wi, buf[i * d:(i + 1) * d], li, c, first, zi, sigma, record)
        else:
            scale = 1.0 if per_lr else scale_shared
            if drops and not lr_ratio[i] == lr_ratio[i]:
                scale = buffer_scale_at(lr_table, lr_rows[i], tf, on_drop)
            c = sgd_scalars(eta, wd, first, scale, mom, 0.0, nesterov, False, False, opt == LR_IN_BUFFER)
            on = use_momentum and mom != 0.0  # (a step at momentum 0 leaves the buffer as it is)
            disp, loss = _sgd_coords(wi, buf[i * d:(i + 1) * d], li, c, on, nesterov, opt == LR_IN_BUFFER and on,
                                     first, zi, sigma, record)
        if record:
            r = record_row(rec_rows, i)
            rec_disp[r, rec_j] = dt(math.sqrt(disp))
            rec_loss[r, rec_j] = dt(0.5 * loss)
