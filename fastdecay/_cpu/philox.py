"""Philox4x32-10 (Salmon et al., SC'11; Random123) and the standard normals drawn from it.

A counter-based generator: the output is a pure function of a 128-bit counter
and a 64-bit key, so any number can be computed on its own, in any order, on
any thread or device. fastdecay's gradient noise is one standard normal per
(trajectory, step, coordinate)::

    counter = (trajectory & 0xffffffff, trajectory >> 32, step, coordinate)
    key     = (seed & 0xffffffff, seed >> 32)
    x0, x1, x2, x3 = philox4x32_10(counter, key)
    u1 = ((x0 << 21 | x1 >> 11) + 1) * 2**-53          # in (0, 1]
    u2 = (x2 << 21 | x3 >> 11) * 2**-53                # in [0, 1)
    xi = sqrt(-2 ln u1) * cos(2 pi u2)                  # Box-Muller

computed in float64 (rounded once to float32 for float32 runs). The GPU twin
(``kernels/philox.cuh``) draws the same numbers from the same definition.
``fastdecay.reference.philox4x32_10`` is a plain-Python version of the bijection.

>>> import numpy as np
>>> from fastdecay._cpu.philox import philox4x32_10
>>> [hex(int(x)) for x in philox4x32_10(0, 0, 0, 0, 0, 0)]  # Random123 kat_vectors
['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
"""

import math

import numpy as np
from numba import float64, int64, njit, prange, uint32, uint64, void

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_S21 = np.uint64(21)
_S11 = np.uint64(11)
_TWO_M53 = 2.0**-53
_TWO_PI = 2.0 * math.pi


@njit(cache=True)
def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """The Philox4x32 bijection with 10 rounds: four uint32 words of output
    (held in uint64) from a counter (c0..c3) and a key (k0, k1), all < 2**32."""
    c0 = np.uint64(c0)
    c1 = np.uint64(c1)
    c2 = np.uint64(c2)
    c3 = np.uint64(c3)
    k0 = np.uint64(k0)
    k1 = np.uint64(k1)
    for r in range(10):
        if r > 0:
            k0 = (k0 + _W0) & _MASK
            k1 = (k1 + _W1) & _MASK
        p0 = _M0 * c0
        p1 = _M1 * c2
        n0 = (p1 >> _S32) ^ c1 ^ k0
        n2 = (p0 >> _S32) ^ c3 ^ k1
        c0 = n0
        c1 = p1 & _MASK
        c2 = n2
        c3 = p0 & _MASK
    return c0, c1, c2, c3


@njit(cache=True)
def normal(seed, trajectory, step, coordinate):
    """The standard normal of (trajectory, step, coordinate) under ``seed`` (float64).

    ``seed`` and ``trajectory`` are uint64, ``step`` and ``coordinate`` below 2**32.
    """
    seed = np.uint64(seed)
    trajectory = np.uint64(trajectory)
    x0, x1, x2, x3 = philox4x32_10(
        trajectory & _MASK, trajectory >> _S32, np.uint64(step), np.uint64(coordinate),
        seed & _MASK, seed >> _S32,
    )
    u1 = (float((x0 << _S21) | (x1 >> _S11)) + 1.0) * _TWO_M53
    u2 = float((x2 << _S21) | (x3 >> _S11)) * _TWO_M53
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(_TWO_PI * u2)


@njit(void(uint64, uint64, uint32, int64, float64[:, ::1]), parallel=True, cache=True)
def fill_normals(seed, first_trajectory, step, n_coordinates, out):
    """out[i, c] = normal(seed, first_trajectory + i, step, c): the noise of one step,
    for tests and for callers that want the numbers the simulations use."""
    for i in prange(out.shape[0]):
        for c in range(n_coordinates):
            out[i, c] = normal(seed, first_trajectory + np.uint64(i), step, c)
