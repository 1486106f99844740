"""Plain-Python oracles for the batched simulations (see fastdecay.reference).

One trajectory at a time, one step at a time, each update rule written out as
torch's documentation writes it. ``fastdecay.simulate`` must agree with these.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Union

import numpy as np

from .._float32 import fma as _fma
from .._rules import NAMES as OPTIMIZERS  # the update rules fastdecay knows
from .._typing import ArrayLike, FloatArray

# a rate given as a number or as a function of the step
RateFn = Union[float, Callable[[int], float]]

__all__ = ["philox4x32_10", "philox_normal", "simulate_quadratic", "OPTIMIZERS"]

_MASK = 0xFFFFFFFF


def philox4x32_10(counter: tuple[int, int, int, int], key: tuple[int, int]) -> tuple[int, int, int, int]:
    """Philox4x32 with 10 rounds on Python integers (Salmon et al. 2011, Random123).

    >>> [hex(x) for x in philox4x32_10((0, 0, 0, 0), (0, 0))]
    ['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
    """
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for _ in range(10):
        hi0, lo0 = divmod(0xD2511F53 * c0, 1 << 32)
        hi1, lo1 = divmod(0xCD9E8D57 * c2, 1 << 32)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = (k0 + 0x9E3779B9) & _MASK
        k1 = (k1 + 0xBB67AE85) & _MASK
    return c0, c1, c2, c3


_F32 = np.float32


def _bits(x: np.float32) -> int:
    return int(_F32(x).view(np.uint32))


def _from_bits(b: int) -> np.float32:
    return np.uint32(b).view(np.float32)


def _log_u1(a: int) -> np.float32:
    """ln(float32(a + 1) 2**-32): FreeBSD's logf (e_logf.c, its general form) on the
    bits of float32(a + 1), the exponent less 32; NumPy float32 scalars (one rounding
    an operation) and exact fused multiply-adds."""
    ix = _bits(_F32(a + 1))
    m = ix & 0x7FFFFF
    i = (m + (0x95F64 << 3)) & 0x800000              # 1.m >= ~sqrt(2): x is halved
    x = _from_bits(m | (i ^ 0x3F800000))             # in [sqrt(1/2), sqrt(2))
    e = (ix >> 23) - 127 + (i >> 23) - 32
    f = x - _F32(1.0)
    s = f / (_F32(2.0) + f)
    dk = _F32(e)
    z = s * s
    w = z * z
    lg1, lg2, lg3, lg4 = (_F32(float.fromhex(h)) for h in ("0x1.555554p-1", "0x1.999c26p-2", "0x1.23d3dcp-2",
                                                           "0x1.f13c4cp-3"))
    r = z * _fma(w, lg3, lg1) + w * _fma(w, lg4, lg2)
    ln2_hi, ln2_lo = _F32(float.fromhex("0x1.62e3p-1")), _F32(float.fromhex("0x1.2fefa2p-17"))
    return dk * ln2_hi - ((s * (f - r) - dk * ln2_lo) - f)


def _sincos_turn(b: int) -> tuple[np.float32, np.float32]:
    """(cos, sin) of 2 pi b 2**-32: b = n 2**30 + r exactly (n the nearest quarter turn),
    theta = float32(r) float32(pi/2) 2**-30, Cephes' sinf and cosf polynomials by
    exact fused multiply-adds, then the quadrant's choice and sign."""
    n = (b + (1 << 29)) >> 30
    x = _F32(b - (n << 30)) * _F32(float.fromhex("0x1.921fb6p-30"))
    z = x * x
    s1, s2, s3 = (_F32(float.fromhex(h)) for h in ("-0x1.555546p-3", "0x1.11073cp-7", "-0x1.9943f2p-13"))
    c1, c2, c3 = (_F32(float.fromhex(h)) for h in ("0x1.55554ap-5", "-0x1.6c0c34p-10", "0x1.99eb9cp-16"))
    sin = _fma(_fma(_fma(s3, z, s2), z, s1), z * x, x)
    cos = _fma(_fma(_fma(c3, z, c2), z, c1), z * z, _fma(_F32(-0.5), z, _F32(1.0)))
    quadrant = n % 4
    return ((cos, -sin, -cos, sin)[quadrant], (sin, cos, -sin, -cos)[quadrant])


def philox_normal(seed: int, trajectory: int, step: int, coordinate: int) -> float:
    """The standard normal fastdecay adds to gradient coordinate ``coordinate`` of
    trajectory ``trajectory`` at step ``step`` under ``seed``, by its definition
    (``fastdecay._cpu.philox``), one float32 operation at a time: steps 4q .. 4q + 3
    share the Philox counter (trajectory, q, coordinate); words (a, b) = (x0, x1) give
    the cos and the sin output of one Box-Muller transform (steps 4q, 4q + 1), (x2, x3)
    those of another (steps 4q + 2, 4q + 3): u1 = float32(a + 1) 2**-32, u2 = b 2**-32,
    r = sqrt(-2 ln u1), with FreeBSD's logf and Cephes' sinf and cosf. Returned as the
    float it is (a float32 value); the float64 libm Box-Muller of the same words is
    within 5e-7 max(1, |xi|) of it.

    >>> philox_normal(0, 0, 0, 0)
    0.9911375641822815
    """
    words = philox4x32_10((trajectory & _MASK, trajectory >> 32, step >> 2, coordinate), (seed & _MASK, seed >> 32))
    a, b = words[2:] if step & 2 else words[:2]
    r = np.sqrt(_F32(-2.0) * _log_u1(a))
    return float(r * _sincos_turn(b)[step & 1])


def _value(x: RateFn, t: int) -> float:
    return float(x(t)) if callable(x) else float(x)


def simulate_quadratic(curvature: ArrayLike, lr: RateFn, *, steps: int, optimizer: str = "gd", w0: ArrayLike = 1.0,
                       momentum: float = 0.9, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                       weight_decay: RateFn = 0.0, on_drop: str = "keep", drops: Iterable[int] = (),
                       noise: float = 0.0, seed: int = 0, trajectory: int = 0) -> tuple[FloatArray, FloatArray]:
    """Every iterate of one trajectory on f(w) = 1/2 sum_i curvature_i w_i^2.

    ``lr``, ``weight_decay``, ``momentum`` and ``betas[0]`` are floats or callables of
    the step (a Schedule is one; Adam's bias correction takes the step's beta1, as
    torch's Adam does when a scheduler cycles it); ``drops`` lists the steps where the rate falls discontinuously (where
    ``on_drop`` acts). Returns ``(w, lrs)``: ``w`` of shape ``(steps + 1, d)`` (row t
    is w_t) and ``lrs`` of shape ``(steps,)``.

    >>> w, _ = simulate_quadratic([1.0, 2.0], 0.25, steps=2)
    >>> w[-1].tolist()   # (1 - 0.25 * lambda)^2
    [0.5625, 0.25]
    """
    lam = np.asarray(curvature, dtype=np.float64).reshape(-1)
    d = lam.shape[0]
    w = np.broadcast_to(np.asarray(w0, dtype=np.float64), (d,)).copy()
    history = [w.copy()]
    lrs = []
    buf = np.zeros(d)   # torch's momentum_buffer, or v of the lr-in-buffer form, or Adam's / Lion's exp_avg
    sq = np.zeros(d)    # Adam's exp_avg_sq
    beta2 = betas[1]
    drops = set(int(t) for t in drops)
    started = False  # whether the momentum buffer exists (made at the first step with momentum)
    for t in range(steps):
        eta = _value(lr, t)
        wd = _value(weight_decay, t)
        mu = _value(momentum, t)
        beta1 = _value(betas[0], t)
        lrs.append(eta)
        g = lam * w
        if noise:
            g = g + noise * np.array([philox_normal(seed, trajectory, t, c) for c in range(d)])
        if optimizer in ("adamw", "lion"):
            w = w * (1.0 - eta * wd)        # decoupled: shrink with the old weights first
        elif wd:
            g = g + wd * w                  # torch: weight decay added to the gradient
        momentum_rule = optimizer in ("momentum", "momentum_lr_in_buffer", "nesterov")
        if optimizer == "gd" or momentum_rule and mu == 0:
            # (torch's SGD at momentum 0: a plain step, the buffer left as it is, or not made yet)
            w = w - eta * g
        elif momentum_rule:
            if t in drops and t > 0:
                if on_drop == "reset":
                    buf = np.zeros(d)
                elif on_drop == "rescale":
                    buf = buf * (eta / _value(lr, t - 1))
            step_grad = eta * g if optimizer == "momentum_lr_in_buffer" else g
            # torch makes the buffer the (step's) gradient at the first step with momentum
            buf = step_grad.copy() if not started else mu * buf + step_grad
            started = True
            if optimizer == "momentum_lr_in_buffer":
                w = w - buf                                # v_t = mu v + eta_t g, w -= v
            else:
                w = w - eta * (g + mu * buf if optimizer == "nesterov" else buf)
        elif optimizer in ("adam", "adamw"):
            buf = beta1 * buf + (1.0 - beta1) * g
            sq = beta2 * sq + (1.0 - beta2) * g * g
            bc1 = 1.0 - beta1 ** (t + 1)
            bc2 = 1.0 - beta2 ** (t + 1)
            w = w - (eta / bc1) * buf / (np.sqrt(sq) / math.sqrt(bc2) + eps)
        elif optimizer == "lion":
            w = w - eta * np.sign(beta1 * buf + (1.0 - beta1) * g)
            buf = beta2 * buf + (1.0 - beta2) * g             # exp_avg, zero at step 0
        else:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        history.append(w.copy())
    return np.array(history), np.array(lrs)
