"""Philox4x32-10 (Salmon et al., SC'11; Random123) and the standard normals drawn from it.

A counter-based generator: the output is a pure function of a 128-bit counter
and a 64-bit key, so any number can be computed on its own, in any order, on
any thread or device. fastdecay's gradient noise is one standard normal per
(trajectory, step, coordinate); steps 4q .. 4q + 3 share one Philox counter and
take the outputs of two Box-Muller transforms, one from each half of its four words::

    counter = (trajectory & 0xffffffff, trajectory >> 32, step >> 2, coordinate)
    key     = (seed & 0xffffffff, seed >> 32)
    x0, x1, x2, x3 = philox4x32_10(counter, key)
    (a, b) = (x0, x1) at steps 4q, 4q + 1;  (x2, x3) at steps 4q + 2, 4q + 3
    u1 = float32(a + 1) * 2**-32                        # in (0, 1]: a + 1 rounded to 24 bits
    u2 = b * 2**-32                                     # in [0, 1)
    r = sqrt(-2 ln u1)                                  # Box-Muller
    xi = r * cos(2 pi u2)  at steps 4q, 4q + 2;  r * sin(2 pi u2)  at steps 4q + 1, 4q + 3

computed in float32: a float32 run adds xi as it is, a float64 run adds it widened
(exactly), so a seed gives the same noise at either precision. The draws of one
counter are independent standard normals (each Box-Muller output pair is, and the
two pairs use disjoint words), so every step gets one independent normal per
trajectory and coordinate; four draws cost one Philox call, two logarithms, two
square roots and two sine-cosine pairs. |xi| <= sqrt(64 ln 2) = 6.66 (u1 >= 2**-32),
the bound of CUDA's curand normals (a 53-bit uniform's is 8.57): a standard normal
lies beyond 6.66 with probability 2.7e-11. This is stream 2 (``fastdecay._version.
NOISE_STREAM``, which sweep directories record); stream 1, before 2026-12-04, drew
float64 normals from 53-bit uniforms, two a counter, at half the speed on the CPU and
a quarter on an H200 (``bench/RESULTS.md``).

Same bits on every backend. ``ln``, ``cos`` and ``sin`` here are not the math
library's (glibc's and CUDA's differ in the last bit) but ``log_u1(a)`` and
``sincos_turn(b)`` below: FreeBSD's ``logf`` (e_logf.c, its general form) on the
bits of float32(a + 1), and Cephes' ``sinf`` / ``cosf`` polynomials on [-pi/4, pi/4]
with the argument reduction done exactly in integers on b (the nearest quarter turn
n and the remainder r = b - n 2**30; theta = float32(r) * float32(pi/2) 2**-30).
They use only float32 +, -, *, / and sqrt, each correctly rounded by IEEE 754 and
never contracted into a multiply-add, explicit fused multiply-adds (rounded once on
every backend: LLVM's ``llvm.fma.f32``, CUDA's ``__fmaf_rn``, C's ``fmaf``),
conversions of integers (rounded once, to nearest), integer and bit operations and
sign flips, so the Numba build, the host C++ build of ``kernels/philox.cuh`` and
its CUDA build give the same bits (``tests/test_philox.py`` checks Numba against the
reference's plain-Python evaluation, ``tests/test_cuda_host.py`` the header against Numba, and
``tests/test_gpu.py`` the device against both). Compiled without ``fastmath``, as
every kernel here is. Free of libm calls and branch-free after if-conversion, the
loops of ``fill_normal_quads`` (what the simulations call, once per tile every
fourth step) vectorise across lanes (the transform's 16 float32 lanes a zmm register,
8 a ymm; Philox's products in 64-bit lanes, half as many); every
function here is inlined into those loops (``inline="always"``), where LLVM
vectorises it with the operations and their order unchanged, so the vector draws
equal the scalar ones bit for bit.

Accuracy, measured against float64 libm on the same words (``tests/test_philox.py``,
``test_accuracy_against_float64_libm``, 2e6 random words and the edges): the radius
within 1.03 float32 ulps, cos and sin within 1.22e-7, the normals within 2.3e-7
absolute where |xi| <= 1 and 3.5 float32 ulps of |xi| beyond.

``fastdecay.reference.philox4x32_10`` is a plain-Python version of the bijection and
``fastdecay.reference.philox_normal`` this definition evaluated one NumPy float32
operation at a time.

>>> import numpy as np
>>> from fastdecay._cpu.philox import philox4x32_10
>>> [hex(int(x)) for x in philox4x32_10(0, 0, 0, 0, 0, 0)]  # Random123 kat_vectors
['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
>>> from fastdecay._cpu.philox import log_u1, sincos_turn
>>> float(log_u1(2**31 - 1)), float(log_u1(2**32 - 1))   # ln(1/2) and ln(1)
(-0.6931471824645996, 0.0)
>>> [float(v) for v in sincos_turn(2**30)]                # a quarter turn: (cos, sin) = (-0, 1)
[-0.0, 1.0]
"""

import numpy as np
from numba import float32, int64, njit, prange, uint32, uint64, void
from numba.core.extending import overload

from .. import _float32
from . import compiled_at_first_call, parallel
from .intrinsics import fma, prefer_wide_vectors

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_ONE = np.uint64(1)
_TWO = np.uint64(2)

# Every constant is spelled in hex so that no decimal-to-binary conversion can
# differ between Python, NVRTC and the host compiler; kernels/philox.cuh has the
# same literals (tests/test_philox.py reads them back and compares). Module-level
# float32 scalars are float32 constants in the compiled code (a Python float
# would widen the arithmetic to float64).
_F = np.float32
# FreeBSD e_logf.c: ln2 = LN2_HI + LN2_LO, LN2_HI with 17 bits so e * LN2_HI is exact
_LN2_HI = _F(float.fromhex("0x1.62e3p-1"))           # 3f317180
_LN2_LO = _F(float.fromhex("0x1.2fefa2p-17"))        # 3717f7d1
_LG1 = _F(float.fromhex("0x1.555554p-1"))            # 0xaaaaaa.0p-24
_LG2 = _F(float.fromhex("0x1.999c26p-2"))            # 0xccce13.0p-25
_LG3 = _F(float.fromhex("0x1.23d3dcp-2"))            # 0x91e9ee.0p-25
_LG4 = _F(float.fromhex("0x1.f13c4cp-3"))            # 0xf89e26.0p-26
# Cephes sinf.c / cosf.c: sin and cos on [-pi/4, pi/4]
_S1 = _F(float.fromhex("-0x1.555546p-3"))            # -1.6666654611e-1
_S2 = _F(float.fromhex("0x1.11073cp-7"))             # 8.3321608736e-3
_S3 = _F(float.fromhex("-0x1.9943f2p-13"))           # -1.9515295891e-4
_C1 = _F(float.fromhex("0x1.55554ap-5"))             # 4.166664568298827e-2
_C2 = _F(float.fromhex("-0x1.6c0c34p-10"))           # -1.388731625493765e-3
_C3 = _F(float.fromhex("0x1.99eb9cp-16"))            # 2.443315711809948e-5
_PIO2_M30 = _F(float.fromhex("0x1.921fb6p-30"))      # float32(pi/2) * 2**-30 (a quarter turn is 2**30)
_ONE_F = _F(1.0)
_TWO_F = _F(2.0)
_MINUS_HALF = _F(-0.5)
_MINUS_TWO = _F(-2.0)
# an integer below 2**52 ORed into the bits of 2**52 is 2**52 plus it, exactly
_BITS_OF_2_52 = np.uint64(0x4330000000000000)
_TWO_52 = float.fromhex("0x1p52")


def _fma(a, b, c):
    """a * b + c rounded once to float32 (Python twin: exact rationals, one rounding;
    all three arguments are float32)."""
    return _float32.fma(a, b, c)


@overload(_fma)
def _fma_numba(a, b, c):
    return lambda a, b, c: fma(a, b, c)


@njit(cache=True, inline="always")
def _float_bits(x):
    """The IEEE 754 bits of the float32 ``x`` as an int64 (0 .. 2**32 - 1)."""
    return np.int64(np.float32(x).view(np.uint32))


@njit(cache=True, inline="always")
def _float_from_bits(b):
    """The float32 whose IEEE 754 bits are ``b`` (an integer below 2**32)."""
    return np.uint32(b).view(np.float32)


@njit(cache=True, inline="always")
def _word_plus_one(a):
    """float32(a + 1) for a Philox word a (0 <= a < 2**32): the exact float64 of a + 1
    (bit operations and one exact subtraction; AVX2 has no packed 64-bit integer
    conversion), rounded once to float32."""
    exact = np.uint64((np.uint64(a) + _ONE) | _BITS_OF_2_52).view(np.float64) - _TWO_52
    return np.float32(exact)


# ``inline="always"``: Numba inlines these bodies into every jitted caller, so the
# loop of ``fill_normal_quads`` sees straight-line code it can vectorise (compiled
# with the caller's options: every caller here is free of ``fastmath``).
@njit(cache=True, inline="always")
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


@njit(cache=True, error_model="numpy", inline="always")
def log_u1(a):
    """ln u1, u1 = float32(a + 1) * 2**-32 in (0, 1], for a Philox word 0 <= a < 2**32,
    in float32: FreeBSD's ``logf`` (e_logf.c) on the bits of float32(a + 1), its
    general form only (no branch), the exponent less 32.

    u1 = 2**e x with x in [sqrt(1/2), sqrt(2)), f = x - 1 (exact), s = f / (2 + f),
    ln(1 + f) = f - s (f - R(s**2)) with e_logf.c's degree-8 polynomial R (its two
    halves with one fused multiply-add each), plus e ln2 in two parts.
    """
    ix = _float_bits(_word_plus_one(a))
    m = ix & 0x7FFFFF
    i = (m + (0x95F64 << 3)) & 0x800000          # the mantissa 1.m >= ~sqrt(2): halve x
    x = _float_from_bits(m | (i ^ 0x3F800000))    # 1.m, or half of it
    e = (ix >> 23) - 127 + (i >> 23) - 32
    f = x - _ONE_F
    s = f / (_TWO_F + f)
    dk = np.float32(np.int32(e))
    z = s * s
    w = z * z
    t1 = w * _fma(w, _LG4, _LG2)
    t2 = z * _fma(w, _LG3, _LG1)
    r = t2 + t1
    return dk * _LN2_HI - ((s * (f - r) - dk * _LN2_LO) - f)


@njit(cache=True, error_model="numpy", inline="always")
def radius(a):
    """Box-Muller's radius sqrt(-2 ln u1), u1 = float32(a + 1) * 2**-32 (float32)."""
    return np.sqrt(_MINUS_TWO * log_u1(a))


@njit(cache=True, error_model="numpy", inline="always")
def sincos_turn(b):
    """(cos(2 pi u2), sin(2 pi u2)) for u2 = b 2**-32, a Philox word 0 <= b < 2**32, in float32.

    The reduction is exact in integers: b = n 2**30 + r with n the nearest quarter
    turn (0 .. 4) and -2**29 <= r < 2**29, so the angle is n pi/2 + theta with theta =
    float32(r) * float32(pi/2) 2**-30 in [-pi/4, pi/4] (two roundings). Cephes'
    polynomials give sin(theta) = theta + theta z (S1 + z (S2 + z S3)) and cos(theta) =
    (1 - z/2) + z**2 (C1 + z (C2 + z C3)), z = theta**2, by fused multiply-adds; then
    each output picks one by its quadrant and sign: cos(n pi/2 + theta) is c, -s, -c,
    s and sin(n pi/2 + theta) is s, c, -s, -c for n mod 4 = 0, 1, 2, 3 (selects, no
    branch: the loop vectorises).
    """
    j = np.int64(b)
    n = (j + (1 << 29)) >> 30                     # nearest quarter turn, 0 .. 4
    x = np.float32(np.int32(j - (n << 30))) * _PIO2_M30
    z = x * x
    s = _fma(_fma(_fma(_S3, z, _S2), z, _S1), z * x, x)
    c = _fma(_fma(_fma(_C3, z, _C2), z, _C1), z * z, _fma(_MINUS_HALF, z, _ONE_F))
    odd = (n & 1) != 0
    cos = s if odd else c
    sin = c if odd else s
    return (-cos if ((n + 1) & 2) != 0 else cos), (-sin if (n & 2) != 0 else sin)


@njit(cache=True, error_model="numpy")
def normal(seed, trajectory, step, coordinate):
    """The standard normal of (trajectory, step, coordinate) under ``seed`` (float32).

    ``seed`` and ``trajectory`` are uint64, ``step`` and ``coordinate`` below 2**32.
    """
    seed = np.uint64(seed)
    trajectory = np.uint64(trajectory)
    step = np.uint64(step)
    x0, x1, x2, x3 = philox4x32_10(
        trajectory & _MASK, trajectory >> _S32, step >> _TWO, np.uint64(coordinate), seed & _MASK, seed >> _S32,
    )
    second = (step >> _ONE) & _ONE
    c, s = sincos_turn(x3 if second else x1)
    return radius(x2 if second else x0) * (s if step & _ONE else c)


@njit(cache=True, error_model="numpy")
def fill_normal_quads(seed, first_trajectory, lane_trajectory, lane_coordinate, quad, z0, z1, z2, z3):
    """The draws of steps 4 quad .. 4 quad + 3 for lanes j = 0 .. len(z0) - 1: lane j
    is coordinate ``lane_coordinate[j]`` of trajectory ``first_trajectory +
    lane_trajectory[j]``; ``z0[j]`` gets ``normal(seed, that trajectory, 4 quad, that
    coordinate)``, ``z1[j]`` the one of step 4 quad + 1, and so on. ``seed``,
    ``first_trajectory``, ``quad`` and the lane arrays are uint64; ``z0`` .. ``z3`` are
    four distinct contiguous float32 arrays, which hold the intermediate values too.

    The simulation kernels' noise, bit-identical to ``normal``, in three vector loops
    over the lanes (as the float64 generator before it, whose one-loop form ran 13%
    slower on Zen 4: each lane's operations form one long chain of dependent vector
    operations, the division and the square root in it): the Philox words, kept as
    bits (the angles' words in z1 and z3, the radii's in z0 and z2); then the two
    radii, in place; then the angles and the four products. The loops ask for 512-bit
    vectors (``intrinsics.prefer_wide_vectors``), which LLVM does not choose by itself on
    Intel's AVX-512 cores: their integer multiplies, adds and bit operations pace them, and
    there the generator then runs ~1.4x faster (bench/philox_profile.py: 6.7-7.1 -> 4.4-4.9
    cycles a draw, bench/RESULTS.md).
    """
    prefer_wide_vectors()
    k0 = seed & _MASK
    k1 = seed >> _S32
    n = z0.shape[0]
    w0, w1, w2, w3 = z0.view(np.uint32), z1.view(np.uint32), z2.view(np.uint32), z3.view(np.uint32)
    for j in range(n):
        trajectory = first_trajectory + lane_trajectory[j]
        x0, x1, x2, x3 = philox4x32_10(trajectory & _MASK, trajectory >> _S32, quad, lane_coordinate[j], k0, k1)
        w0[j] = np.uint32(x0)
        w1[j] = np.uint32(x1)
        w2[j] = np.uint32(x2)
        w3[j] = np.uint32(x3)
    for j in range(n):
        z0[j] = radius(w0[j])
        z2[j] = radius(w2[j])
    for j in range(n):
        c, s = sincos_turn(w1[j])
        r = z0[j]
        z0[j] = r * c
        z1[j] = r * s
        c, s = sincos_turn(w3[j])
        r = z2[j]
        z2[j] = r * c
        z3[j] = r * s


@parallel.entry
@compiled_at_first_call(void(uint64, uint64, uint32, int64, float32[:, ::1]), parallel=True, cache=True)
def fill_normals(seed, first_trajectory, step, n_coordinates, out):
    """out[i, c] = normal(seed, first_trajectory + i, step, c): the noise of one step,
    for tests and for callers that want the numbers the simulations use."""
    for i in prange(out.shape[0]):
        for c in range(n_coordinates):
            out[i, c] = normal(seed, first_trajectory + np.uint64(i), step, c)
