"""Exact float32 rounding in plain Python, for the Python evaluations of the noise stream
(``fastdecay.reference.philox_normal`` and the Python twins of ``fastdecay._cpu.philox``):
the float32 nearest a rational, and the fused multiply-add rounded once."""

import math
from fractions import Fraction

import numpy as np


def nearest(q: Fraction) -> np.float32:
    """The float32 nearest the rational ``q``, ties to even (normal and subnormal range)."""
    if q == 0:
        return np.float32(0.0)
    a = abs(q)
    e = a.numerator.bit_length() - a.denominator.bit_length()   # 2**(e-1) < a < 2**(e+1)
    if a < Fraction(2) ** e:
        e -= 1                                                    # now 2**e <= a < 2**(e+1)
    e = max(e, -126)                                              # subnormals: a fixed quantum
    m = round(a / Fraction(2) ** (e - 23))                        # Fraction rounds half to even
    return np.float32(math.copysign(m * 2.0 ** (e - 23), q))


def fma(a: np.float32, b: np.float32, c: np.float32) -> np.float32:
    """a b + c of three float32 values, rounded once to float32."""
    return nearest(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)))
