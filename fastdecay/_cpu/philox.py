"""Philox4x32-10 (Salmon et al., SC'11; Random123) and the standard normals drawn from it.

A counter-based generator: the output is a pure function of a 128-bit counter
and a 64-bit key, so any number can be computed on its own, in any order, on
any thread or device. fastdecay's gradient noise is one standard normal per
(trajectory, step, coordinate); steps 2p and 2p + 1 share one Philox counter
and take the two outputs of one Box-Muller transform::

    counter = (trajectory & 0xffffffff, trajectory >> 32, step >> 1, coordinate)
    key     = (seed & 0xffffffff, seed >> 32)
    x0, x1, x2, x3 = philox4x32_10(counter, key)
    k = (x0 << 21 | x1 >> 11) + 1                       # u1 = k * 2**-53 in (0, 1]
    j = x2 << 21 | x3 >> 11                             # u2 = j * 2**-53 in [0, 1)
    r = sqrt(-2 ln u1)                                  # Box-Muller
    xi = r * cos(2 pi u2)  at an even step,  r * sin(2 pi u2)  at an odd one

computed in float64 (rounded once to float32 for float32 runs). The two draws
of a pair are independent standard normals (Box-Muller's two outputs), so each
step still gets one independent normal per trajectory and coordinate; a pair
costs one Philox call and one logarithm.

Same bits on every backend. ``ln``, ``cos`` and ``sin`` here are not the math
library's (glibc's and CUDA's differ in the last bit) but ``log_unit(k)`` and
``sincos_two_pi(j)`` below: fdlibm's ``__ieee754_log`` and ``__kernel_sin`` /
``__kernel_cos`` polynomials (Sun Microsystems 1993; the k_sin/k_cos
evaluation order of FreeBSD msun), with the argument reduction done exactly in
integers on k and j (sin(2 pi u2) is cos(2 pi (u2 - 1/4)): the same reduction
one quadrant on, exactly ``cos_two_pi((j - 2**51) mod 2**53)``). They use
only +, -, *, / and sqrt, each correctly rounded by IEEE 754, in a fixed order
and never fused into a multiply-add, plus exact steps (integer and sign-bit
operations, conversions of integers below 2**53, scalings by powers of two, and
one fused multiply-add whose result is exact, the error of a product), so the
Numba build, the host C++ build of ``kernels/philox.cuh`` (``-ffp-contract=off``)
and its CUDA build (``__dadd_rn``/``__dmul_rn``/``__ddiv_rn``/``__dsqrt_rn``,
never contracted) give the same bits; where the two sides take different exact
steps (the CPU reads the exponent from float(k)'s bits, the header counts
leading zeros; the CPU forms the product's error with the fused multiply-add,
the header with Dekker's exact product), the values are equal by construction
and ``tests/test_cuda_host.py`` compares them bit for bit. These functions are
compiled without ``fastmath``, as every kernel here is (``tests/test_philox.py``
checks the draws made inside the simulation against standalone ones). Free of
libm calls and branch-free after if-conversion, the loops of
``fill_normal_pairs`` (what the simulations call, once per tile every second
step) vectorise across lanes: Philox's 32x32->64 multiplies become
``vpmuludq``, both branches of ``log_unit`` and both sin/cos kernels are
computed and selected; every function here is inlined into those loops
(``inline="always"``), where LLVM vectorises it with the operations and their
order unchanged, so the vector draws equal the scalar ones bit for bit.

Accuracy, measured against long double on 4e6 arguments each (random, near 1,
tiny, near powers of two, near quarter and eighth turns): ``log_unit`` within
0.87 ulp, ``cos_two_pi`` within 0.78 ulp (the sine is the same function a quarter turn
on). Against the libm Box-Muller (``fastdecay.reference.philox_normal``) the
normals differ by at most 5.3e-15 absolute (|xi| <= 8.6); the larger relative
differences sit where cos(2 pi u2) or sin(2 pi u2) is near zero, where libm's
form is the less accurate one (its argument 2 pi u2 is rounded first).

``fastdecay.reference.philox4x32_10`` is a plain-Python version of the bijection.

>>> import numpy as np
>>> from fastdecay._cpu.philox import philox4x32_10
>>> [hex(int(x)) for x in philox4x32_10(0, 0, 0, 0, 0, 0)]  # Random123 kat_vectors
['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
>>> from fastdecay._cpu.philox import cos_two_pi, log_unit, sincos_two_pi
>>> log_unit(2**52), cos_two_pi(2**52)    # ln(1/2) and cos(pi), u1 = u2 = 1/2
(-0.6931471805599453, -1.0)
>>> sincos_two_pi(2**51)                  # a quarter turn: (cos, sin) = (-0, 1)
(-0.0, 1.0)
"""

import math
from fractions import Fraction

import numpy as np
from numba import config, float64, int64, njit, prange, uint32, uint64, void
from numba.core.codegen import get_host_cpu_features
from numba.core.extending import overload

from . import parallel
from .intrinsics import fma

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_S21 = np.uint64(21)
_S11 = np.uint64(11)
_ONE = np.uint64(1)

# Every constant is spelled in hex so that no decimal-to-binary conversion can
# differ between Python, NVRTC and the host compiler; kernels/philox.cuh has the
# same literals (tests/test_philox.py reads them back and compares).
_TWO_M51 = float.fromhex("0x1p-51")
_TWO_M52 = float.fromhex("0x1p-52")
_TWO_M53 = float.fromhex("0x1p-53")
# fdlibm e_log.c: ln2 = LN2_HI + LN2_LO, LN2_HI with 32 bits so k * LN2_HI is exact
_LN2_HI = float.fromhex("0x1.62e42feep-1")           # 3fe62e42 fee00000
_LN2_LO = float.fromhex("0x1.a39ef35793c76p-33")     # 3dea39ef 35793c76
_LG1 = float.fromhex("0x1.5555555555593p-1")         # 3FE55555 55555593
_LG2 = float.fromhex("0x1.999999997fa04p-2")         # 3FD99999 9997FA04
_LG3 = float.fromhex("0x1.2492494229359p-2")         # 3FD24924 94229359
_LG4 = float.fromhex("0x1.c71c51d8e78afp-3")         # 3FCC71C5 1D8E78AF
_LG5 = float.fromhex("0x1.7466496cb03dep-3")         # 3FC74664 96CB03DE
_LG6 = float.fromhex("0x1.39a09d078c69fp-3")         # 3FC39A09 D078C69F
_LG7 = float.fromhex("0x1.2f112df3e5244p-3")         # 3FC2F112 DF3E5244
# fdlibm k_sin.c / k_cos.c: sin and cos on [-pi/4, pi/4], |error of the polynomial| < 2**-58
_S1 = float.fromhex("-0x1.5555555555549p-3")         # BFC55555 55555549
_S2 = float.fromhex("0x1.111111110f8a6p-7")          # 3F811111 1110F8A6
_S3 = float.fromhex("-0x1.a01a019c161d5p-13")        # BF2A01A0 19C161D5
_S4 = float.fromhex("0x1.71de357b1fe7dp-19")         # 3EC71DE3 57B1FE7D
_S5 = float.fromhex("-0x1.ae5e68a2b9cebp-26")        # BE5AE5E6 8A2B9CEB
_S6 = float.fromhex("0x1.5d93a5acfd57cp-33")         # 3DE5D93A 5ACFD57C
_C1 = float.fromhex("0x1.555555555554cp-5")          # 3FA55555 5555554C
_C2 = float.fromhex("-0x1.6c16c16c15177p-10")        # BF56C16C 16C15177
_C3 = float.fromhex("0x1.a01a019cb1590p-16")         # 3EFA01A0 19CB1590
_C4 = float.fromhex("-0x1.27e4f809c52adp-22")        # BE927E4F 809C52AD
_C5 = float.fromhex("0x1.1ee9ebdb4b1c4p-29")         # 3E21EE9E BDB4B1C4
_C6 = float.fromhex("-0x1.8fae9be8838d4p-37")        # BDA8FAE9 BE8838D4
# pi/2 = PIO2_HI + PIO2_LO; PIO2_HI = PIO2_A + PIO2_B with PIO2_A of 27 bits and
# PIO2_B of 20, so that their products with 26-bit halves of t are exact (Dekker)
_PIO2_HI = float.fromhex("0x1.921fb54442d18p+0")
_PIO2_LO = float.fromhex("0x1.1a62633145c07p-54")
_PIO2_A = float.fromhex("0x1.921fb54p+0")
_PIO2_B = float.fromhex("0x1.10b46p-30")
# the same two times 2**-51 (exact): sincos_two_pi multiplies them by the integer |r| = |t| 2**51
_PIO2_HI_51 = _PIO2_HI * _TWO_M51
_PIO2_LO_51 = _PIO2_LO * _TWO_M51
# float64 bit fields
_FRACTION = np.uint64(0x000FFFFFFFFFFFFF)
_S52 = np.uint64(52)
_S63 = np.uint64(63)
_BITS_OF_2_52 = np.uint64(0x4330000000000000)   # the bits of 2**52: an integer below 2**52 ORed in adds it
_TWO_52 = float.fromhex("0x1p52")
_TWO_32 = float.fromhex("0x1p32")


def _fma(a, b, c):
    """a * b + c rounded once: the fused multiply-add (Python twin: exact rationals, one
    rounding). Used only where the result is exact, so it equals any other exact way of
    computing it (the CUDA header's Dekker product)."""
    return float(Fraction(a) * Fraction(b) + Fraction(c))


@overload(_fma)
def _fma_numba(a, b, c):
    return lambda a, b, c: fma(a, b, c)


@njit(cache=True, inline="always")
def _bits(x):
    """The IEEE 754 bits of the float64 ``x`` as a uint64 (the same code in Python and Numba)."""
    return np.float64(x).view(np.uint64)


@njit(cache=True, inline="always")
def _from_bits(b):
    """The float64 whose IEEE 754 bits are the uint64 ``b``."""
    return np.uint64(b).view(np.float64)


def _exact_float(i):
    """float64 of an integer 0 <= i <= 2**53 (exact): Python twin of the overload below."""
    return float(i)


def _packed_integer_conversions():
    """Whether Numba compiles for a CPU with AVX-512DQ, whose packed 64-bit integer to
    float64 conversion is one instruction (AVX2 has none: LLVM converts lane by lane)."""
    features = config.CPU_FEATURES if config.CPU_FEATURES is not None else get_host_cpu_features()
    return "+avx512dq" in features.split(",")


@njit(cache=True, inline="always")
def _float_by_halves(i):
    """float64 of an integer 0 <= i <= 2**53 by bit operations and exact subtractions: each
    32-bit half ORed into the bits of 2**52 is 2**52 plus that half, exactly (AVX2's form)."""
    i = np.uint64(i)
    high = _from_bits((i >> _S32) | _BITS_OF_2_52) - _TWO_52
    low = _from_bits((i & _MASK) | _BITS_OF_2_52) - _TWO_52
    return high * _TWO_32 + low                   # exact: the sum is i <= 2**53


@overload(_exact_float)
def _exact_float_numba(i):
    if _packed_integer_conversions():
        return lambda i: float(i)
    return lambda i: _float_by_halves(i)


@njit(cache=True, inline="always")
def _flip_sign(x, flip):
    """-x where ``flip`` (a bool), else x: the sign bit exclusive-ored, exactly Python's negation."""
    return _from_bits(_bits(x) ^ (np.uint64(flip) << _S63))


# ``inline="always"``: Numba inlines these bodies into every jitted caller, so the
# loop of ``fill_normal_pairs`` sees straight-line code it can vectorise (compiled
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
def log_unit(k):
    """ln(k * 2**-53) for an integer 1 <= k <= 2**53: fdlibm's ``__ieee754_log``
    on the bits of float(k) (exact: k has at most 53 significant bits), no libm.

    k * 2**-53 = 2**e * x with x in [sqrt(1/2), sqrt(2)), f = x - 1 (exact),
    s = f / (2 + f), ln(1 + f) = 2 atanh(s) = f - s (f - R(s**2)) with fdlibm's
    degree-14 polynomial R (|error| < 2**-58.45), plus e ln2 in two parts.
    """
    b = _bits(np.float64(k))                     # k = 2**(E - 1023) * 1.fraction
    hx = (b >> _S32) & np.uint64(0xFFFFF)        # fdlibm's high word of the mantissa
    halve = hx >= np.uint64(0x6A09C)             # 1.fraction >= ~sqrt(2): halve it (fdlibm's threshold)
    # x = 1.fraction or half of it: the fraction's bits under the exponent of 1 or of 1/2
    x = _from_bits((b & _FRACTION) | ((np.uint64(0x3FE) if halve else np.uint64(0x3FF)) << _S52))
    e = np.int64(b >> _S52) - 1076 + (1 if halve else 0)   # k 2**-53 = x 2**e (1076 = 1023 + 53)
    f = x - 1.0
    s = f / (2.0 + f)
    dk = float(e)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    r = t2 + t1
    if np.uint64(0x6147A) <= hx <= np.uint64(0x6B851):   # |f| near its largest: the half-square form
        hfsq = 0.5 * f * f
        return dk * _LN2_HI - ((hfsq - (s * (hfsq + r) + dk * _LN2_LO)) - f)
    return dk * _LN2_HI - ((s * (f - r) - dk * _LN2_LO) - f)


@njit(cache=True, error_model="numpy", inline="always")
def sincos_two_pi(j):
    """(cos(2 pi u), sin(2 pi u)) for u = j 2**-53, an integer 0 <= j < 2**53.

    The reduction is exact in integers: j 2**-53 = n/4 + t/4 with n the nearest
    quarter turn and |t| <= 1/2, so the angle is n pi/2 + theta, theta = (pi/2) t
    in [-pi/4, pi/4]; |theta| = x + y, x = |t| PIO2_HI rounded, y = (|t| PIO2_HI - x)
    + |t| PIO2_LO with the first term exact (one fused multiply-add: the error of a
    product is a float64 here, the value Dekker's exact product gives in
    ``kernels/philox.cuh``). fdlibm's kernel cos (``c``) and kernel sin (``sn``) of
    x + y, then each output picks one by its quadrant and sign: cos(n pi/2 + theta)
    is c, -sin(theta), -c, sin(theta) for n mod 4 = 0, 1, 2, 3, and sin(n pi/2 + theta)
    = cos((n - 1) pi/2 + theta). Both kernels are always computed and the choices
    are selects and sign-bit flips (no branch: the loop vectorises).
    """
    j = np.int64(j)
    n = (j + (1 << 50)) >> 51                    # nearest quarter turn, 0 .. 4
    r = j - (n << 51)                            # t = r 2**-51, -2**50 <= r < 2**50
    a = _exact_float(abs(r))                     # |t| 2**51; the constants carry the 2**-51
    x = a * _PIO2_HI_51
    y = _fma(a, _PIO2_HI_51, -x) + a * _PIO2_LO_51
    z = x * x
    w = z * z
    # cos(theta), fdlibm k_cos.c
    rc = z * (_C1 + z * (_C2 + z * _C3)) + w * w * (_C4 + z * (_C5 + z * _C6))
    hz = 0.5 * z
    v = 1.0 - hz
    c = v + (((1.0 - v) - hz) + (z * rc - x * y))
    # sin(|theta|), fdlibm k_sin.c with a tail
    rs = _S2 + z * (_S3 + z * _S4) + z * w * (_S5 + z * _S6)
    vs = z * x
    sn = x - ((z * (0.5 * y - vs * rs) - y) - vs * _S1)
    sin_theta = _flip_sign(sn, r < 0)
    odd = (n & 1) != 0
    return _flip_sign(sin_theta if odd else c, ((n + 1) & 2) != 0), _flip_sign(c if odd else sin_theta, (n & 2) != 0)


@njit(cache=True, error_model="numpy")
def cos_two_pi(j):
    """cos(2 pi j 2**-53) for an integer 0 <= j < 2**53: the first output of ``sincos_two_pi``."""
    return sincos_two_pi(j)[0]


@njit(cache=True, inline="always")
def _uniform_integers(x0, x1, x2, x3):
    """(k, j) from the four Philox words: u1 = k 2**-53 in (0, 1], u2 = j 2**-53 in [0, 1)."""
    return ((x0 << _S21) | (x1 >> _S11)) + _ONE, (x2 << _S21) | (x3 >> _S11)


@njit(cache=True, error_model="numpy", inline="always")
def _radius(k):
    """Box-Muller's radius sqrt(-2 ln u1), u1 = k 2**-53 (k an integer or its exact float64)."""
    return math.sqrt(-2.0 * log_unit(k))


@njit(cache=True, error_model="numpy")
def normal(seed, trajectory, step, coordinate):
    """The standard normal of (trajectory, step, coordinate) under ``seed`` (float64).

    ``seed`` and ``trajectory`` are uint64, ``step`` and ``coordinate`` below 2**32.
    """
    seed = np.uint64(seed)
    trajectory = np.uint64(trajectory)
    step = np.uint64(step)
    x0, x1, x2, x3 = philox4x32_10(
        trajectory & _MASK, trajectory >> _S32, step >> _ONE, np.uint64(coordinate), seed & _MASK, seed >> _S32,
    )
    k, j = _uniform_integers(x0, x1, x2, x3)
    c, s = sincos_two_pi(j)
    return _radius(k) * (s if step & _ONE else c)


@njit(cache=True, error_model="numpy")
def fill_normal_pairs(seed, first_trajectory, lane_trajectory, lane_coordinate, pair, even, odd):
    """The draws of steps 2 pair and 2 pair + 1 for lanes j = 0 .. len(even) - 1:
    lane j is coordinate ``lane_coordinate[j]`` of trajectory ``first_trajectory +
    lane_trajectory[j]``; ``even[j]`` gets ``normal(seed, that trajectory, 2 pair, that
    coordinate)`` and ``odd[j]`` the one of step 2 pair + 1. ``seed``,
    ``first_trajectory``, ``pair`` and the lane arrays are uint64; ``even`` and
    ``odd`` are float64 (two distinct arrays), and hold the intermediate values too.

    The simulation kernels' noise, bit-identical to ``normal``, in three vector
    loops over the lanes: the Philox words, kept as the uniforms' integers (k as
    its exact float64 in ``even``, j as integer bits in ``odd``); then the radius,
    in place; then the angle and the two products. One loop doing all three ran
    13% slower on Zen 4 with AVX-512 (0.37 against 0.43e9 draws/s a core), most
    likely because each lane's operations form one long chain of dependent
    vector operations (the division and the square root in it) that the
    out-of-order window cannot overlap across iterations.
    """
    k0 = seed & _MASK
    k1 = seed >> _S32
    n = even.shape[0]
    odd_bits = odd.view(np.uint64)   # j needs no conversion (a packed one costs a scalar loop on AVX2)
    for j in range(n):
        trajectory = first_trajectory + lane_trajectory[j]
        x0, x1, x2, x3 = philox4x32_10(trajectory & _MASK, trajectory >> _S32, pair, lane_coordinate[j], k0, k1)
        k, u = _uniform_integers(x0, x1, x2, x3)
        even[j] = _exact_float(k)
        odd_bits[j] = u
    for j in range(n):
        even[j] = _radius(even[j])
    for j in range(n):
        c, s = sincos_two_pi(odd_bits[j])
        r = even[j]
        even[j] = r * c
        odd_bits[j] = _bits(r * s)


@parallel.entry
@njit(void(uint64, uint64, uint32, int64, float64[:, ::1]), parallel=True, cache=True)
def fill_normals(seed, first_trajectory, step, n_coordinates, out):
    """out[i, c] = normal(seed, first_trajectory + i, step, c): the noise of one step,
    for tests and for callers that want the numbers the simulations use."""
    for i in prange(out.shape[0]):
        for c in range(n_coordinates):
            out[i, c] = normal(seed, first_trajectory + np.uint64(i), step, c)
