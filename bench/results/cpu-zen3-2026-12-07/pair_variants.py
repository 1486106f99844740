"""The bfloat16 AdamW pair loop on one core, 4,096 elements in L1, ns an element, best of 7 x 4,000
calls a round, four rounds: as the kernels build it (the root divided by the bias correction),
through the hoisted reciprocal (``rules.root_over``), and two loops that round wrongly, to see
what the rounding costs: without the NaN test, and truncating instead of rounding. The loops
call the kernels' own ``adam_element``, ``low_half`` / ``high_half`` and ``pair_of``.

    PYTHONPATH=<tree> python pair_variants.py
"""
import time

import numpy as np
import torch
from llvmlite import ir
from numba import njit
from numba.extending import intrinsic

from fastdecay._cpu.intrinsics import prefer_wide_vectors
from fastdecay._cpu.rules import adam_element, one_like, unscale
from fastdecay._cpu.storage import _HIGH, _I32, PAIR, _rounded_bfloat16, high_half, low_half, pair_of


@intrinsic
def pair_without_nan_test(typingctx, low, high):
    def codegen(context, builder, signature, args):
        r0, _ = _rounded_bfloat16(builder, args[0])
        r1, _ = _rounded_bfloat16(builder, args[1])
        return builder.or_(builder.lshr(r0, ir.Constant(_I32, 16)), builder.and_(r1, _HIGH))
    return PAIR(low, high), codegen


@intrinsic
def pair_truncated(typingctx, low, high):
    def codegen(context, builder, signature, args):
        r0, r1 = builder.bitcast(args[0], _I32), builder.bitcast(args[1], _I32)
        return builder.or_(builder.lshr(r0, ir.Constant(_I32, 16)), builder.and_(r1, _HIGH))
    return PAIR(low, high), codegen


def pair_loop(pack, by_reciprocal):
    @njit(error_model="numpy")
    def loop(w, g, m, v, factor, l2, shrink, w1, beta2, w2, neg_step_size, bc2_sqrt, eps):
        prefer_wide_vectors()
        for i in range(w.shape[0]):
            wi, gi, mi, vi = w[i], g[i], m[i], v[i]
            old0, old1 = low_half(wi), high_half(wi)
            new0, m0, v0, _ = adam_element(old0, unscale(low_half(gi), factor, False), low_half(mi), low_half(vi),
                                           low_half(vi), one_like(old0), l2, shrink, w1, beta2, w2, neg_step_size,
                                           bc2_sqrt, eps, False, False, by_reciprocal)
            new1, m1, v1, _ = adam_element(old1, unscale(high_half(gi), factor, False), high_half(mi), high_half(vi),
                                           high_half(vi), one_like(old1), l2, shrink, w1, beta2, w2, neg_step_size,
                                           bc2_sqrt, eps, False, False, by_reciprocal)
            m[i], v[i], w[i] = pack(m0, m1), pack(v0, v1), pack(new0, new1)
    return loop


def ns_an_element(loop, pairs=2048, calls=4000):
    f32 = np.float32

    @njit
    def repeat(calls, w, g, m, v):
        for _ in range(calls):
            loop(w, g, m, v, f32(1), f32(0), f32(0.99999), f32(0.1), f32(0.999), f32(0.001), f32(-1e-3), f32(0.5),
                 f32(1e-8))

    def bits(t):
        return t.bfloat16().view(torch.int32).numpy().view(np.uint32).copy()

    w, g = bits(torch.randn(2 * pairs)), bits(torch.randn(2 * pairs) * 1e-3)
    m, v = bits(torch.randn(2 * pairs) * 1e-3), bits(torch.rand(2 * pairs) * 1e-6)
    repeat(1, w, g, m, v)
    best = np.inf
    for _ in range(7):
        t0 = time.perf_counter()
        repeat(calls, w, g, m, v)
        best = min(best, time.perf_counter() - t0)
    return best / calls / (2 * pairs) * 1e9


loops = {"as built": pair_loop(pair_of, False), "reciprocal": pair_loop(pair_of, True),
         "no NaN test": pair_loop(pair_without_nan_test, False), "truncated": pair_loop(pair_truncated, False)}
for _ in range(4):
    print(" | ".join(f"{name} {ns_an_element(loop):.3f}" for name, loop in loops.items()), "ns an element", flush=True)
