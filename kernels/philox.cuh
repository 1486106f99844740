// Philox4x32-10 (Salmon et al., SC'11; Random123) and the Box-Muller normals
// fastdecay adds to gradients: the GPU twin of fastdecay/_cpu/philox.py.
// Steps 2p and 2p + 1 share one counter and take the two outputs of one
// Box-Muller transform:
//
//   counter = (trajectory & 0xffffffff, trajectory >> 32, step >> 1, coordinate)
//   key     = (seed & 0xffffffff, seed >> 32)
//   x0, x1, x2, x3 = philox4x32_10(counter, key)
//   k = (x0 << 21 | x1 >> 11) + 1                       u1 = k * 2**-53 in (0, 1]
//   j = x2 << 21 | x3 >> 11                             u2 = j * 2**-53 in [0, 1)
//   r = sqrt(-2 ln u1)
//   xi = r * cos(2 pi u2) at an even step, r * sin(2 pi u2) at an odd one
//
// Bit-identical to the CPU everywhere: the words trivially, the normal because
// ln, cos and sin are not the math library's (CUDA's differ from glibc's in the
// last bit) but log_unit and sincos_two_pi below, fdlibm's polynomials with an exact
// integer argument reduction, the operations of fastdecay/_cpu/philox.py in
// the same order (two exact steps are taken differently there, with equal
// values: the exponent read from float(k)'s bits instead of a leading-zero
// count, and the error of x = t PIO2_HI by one exact fused multiply-add instead
// of Dekker's product). They use only +, -, *, / and sqrt, each correctly rounded
// by IEEE 754, and never a fused multiply-add: on the device through the
// __dadd_rn / __dsub_rn / __dmul_rn / __ddiv_rn / __dsqrt_rn intrinsics
// (never contracted, whatever --fmad says), on the host through plain
// operators, so a host build must use -ffp-contract=off (tests/test_cuda_host.py
// does; x86-64 without -mfma cannot contract anyway). Every constant is a hex
// literal, as in philox.py.
#pragma once

#include "common.cuh"

namespace fastdecay {

struct Philox4 {
    u32 x[4];
};

FD_HD Philox4 philox4x32_10(u32 c0, u32 c1, u32 c2, u32 c3, u32 k0, u32 k1) {
    const u64 M0 = 0xD2511F53ull, M1 = 0xCD9E8D57ull;
    const u32 W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
#pragma unroll
    for (int r = 0; r < 10; ++r) {
        if (r > 0) {
            k0 += W0;
            k1 += W1;
        }
        const u64 p0 = M0 * (u64)c0;
        const u64 p1 = M1 * (u64)c2;
        const u32 n0 = (u32)(p1 >> 32) ^ c1 ^ k0;
        const u32 n2 = (u32)(p0 >> 32) ^ c3 ^ k1;
        c0 = n0;
        c1 = (u32)p1;
        c2 = n2;
        c3 = (u32)p0;
    }
    Philox4 out;
    out.x[0] = c0;
    out.x[1] = c1;
    out.x[2] = c2;
    out.x[3] = c3;
    return out;
}

// Correctly rounded float64 operations that no compiler fuses into an FMA.
namespace rn {
#ifdef __CUDA_ARCH__
__device__ __forceinline__ double add(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ double sub(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ double mul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ double div(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ double sqrt(double a) { return __dsqrt_rn(a); }
__device__ __forceinline__ int clz64(i64 a) { return __clzll(a); }
#else
inline double add(double a, double b) { return a + b; }
inline double sub(double a, double b) { return a - b; }
inline double mul(double a, double b) { return a * b; }
inline double div(double a, double b) { return a / b; }
inline double sqrt(double a) { return ::sqrt(a); }
inline int clz64(i64 a) { return __builtin_clzll((u64)a); }  // a > 0
#endif
}  // namespace rn

// ln(k * 2**-53) for an integer 1 <= k <= 2**53: fdlibm's __ieee754_log with the
// exponent and mantissa taken from the integer. k * 2**-53 = 2**e * x with x in
// [sqrt(1/2), sqrt(2)), f = x - 1 (exact), s = f / (2 + f),
// ln(1 + f) = f - s (f - R(s**2)), plus e ln2 in two parts.
FD_HD double log_unit(i64 k) {
    const double LN2_HI = 0x1.62e42feep-1, LN2_LO = 0x1.a39ef35793c76p-33;
    const double LG1 = 0x1.5555555555593p-1, LG2 = 0x1.999999997fa04p-2, LG3 = 0x1.2492494229359p-2,
                 LG4 = 0x1.c71c51d8e78afp-3, LG5 = 0x1.7466496cb03dep-3, LG6 = 0x1.39a09d078c69fp-3,
                 LG7 = 0x1.2f112df3e5244p-3;
    const double TWO_M52 = 0x1p-52, TWO_M53 = 0x1p-53;
    using namespace rn;
    const int lz = clz64(k);                          // 10 .. 63
    const i64 m = lz >= 11 ? k << (lz - 11) : k >> 1; // top bit at bit 52, exact
    int e = 10 - lz;                                  // k 2**-53 = (m 2**-52) 2**e
    const int hx = (int)((m >> 32) & 0xFFFFF);        // fdlibm's high word of the mantissa
    double x;
    if (hx >= 0x6A09C) {                              // x >= ~sqrt(2): halve it
        x = mul((double)m, TWO_M53);
        e += 1;
    } else {
        x = mul((double)m, TWO_M52);
    }
    const double f = sub(x, 1.0);
    const double s = div(f, add(2.0, f));
    const double dk = (double)e;
    const double z = mul(s, s);
    const double w = mul(z, z);
    // t1 = w * (LG2 + w * (LG4 + w * LG6)), t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)))
    const double t1 = mul(w, add(LG2, mul(w, add(LG4, mul(w, LG6)))));
    const double t2 = mul(z, add(LG1, mul(w, add(LG3, mul(w, add(LG5, mul(w, LG7)))))));
    const double r = add(t2, t1);
    if (hx >= 0x6147A && hx <= 0x6B851) {
        // hfsq = 0.5 * f * f; dk * LN2_HI - ((hfsq - (s * (hfsq + r) + dk * LN2_LO)) - f)
        const double hfsq = mul(mul(0.5, f), f);
        return sub(mul(dk, LN2_HI), sub(sub(hfsq, add(mul(s, add(hfsq, r)), mul(dk, LN2_LO))), f));
    }
    // dk * LN2_HI - ((s * (f - r) - dk * LN2_LO) - f)
    return sub(mul(dk, LN2_HI), sub(sub(mul(s, sub(f, r)), mul(dk, LN2_LO)), f));
}

// cos(n pi/2 + theta) from c = cos(theta) and sn = sin(|theta|): +-c on even
// quarters, +-sn on odd ones. The CPU's _quadrant.
FD_HD double quadrant(i64 n, double c, double sn, bool negative) {
    const int q = (int)(n & 3);
    if (q == 0) return c;
    if (q == 2) return -c;
    return (q == 1) != negative ? -sn : sn;
}

struct SinCos {
    double cos, sin;
};

// (cos(2 pi u), sin(2 pi u)) for u = j 2**-53, an integer 0 <= j < 2**53. Exact
// reduction in integers: j 2**-53 = n/4 + t/4, n the nearest quarter turn,
// |t| <= 1/2; theta = (pi/2) t = x + y (x = t PIO2_HI rounded, y its error by
// Dekker's product plus t PIO2_LO); fdlibm's kernel cos and kernel sin of x + y,
// then each output picks one by its quadrant (the sine by n - 1: sin a = cos(a - pi/2)).
FD_HD SinCos sincos_two_pi(i64 j) {
    const double S1 = -0x1.5555555555549p-3, S2 = 0x1.111111110f8a6p-7, S3 = -0x1.a01a019c161d5p-13,
                 S4 = 0x1.71de357b1fe7dp-19, S5 = -0x1.ae5e68a2b9cebp-26, S6 = 0x1.5d93a5acfd57cp-33;
    const double C1 = 0x1.555555555554cp-5, C2 = -0x1.6c16c16c15177p-10, C3 = 0x1.a01a019cb1590p-16,
                 C4 = -0x1.27e4f809c52adp-22, C5 = 0x1.1ee9ebdb4b1c4p-29, C6 = -0x1.8fae9be8838d4p-37;
    const double PIO2_HI = 0x1.921fb54442d18p+0, PIO2_LO = 0x1.1a62633145c07p-54;
    const double PIO2_A = 0x1.921fb54p+0, PIO2_B = 0x1.10b46p-30;
    const double TWO_M51 = 0x1p-51;
    using namespace rn;
    const i64 n = (j + (1ll << 50)) >> 51;            // nearest quarter turn, 0 .. 4
    const i64 r = j - (n << 51);                      // t = r 2**-51, -2**50 <= r < 2**50
    const bool negative = r < 0;
    const i64 a = negative ? -r : r;
    const i64 ah = (a >> 26) << 26;                   // t = th + tl: 25 and 26 significant bits
    const double th = mul((double)ah, TWO_M51);
    const double tl = mul((double)(a - ah), TWO_M51);
    const double t = mul((double)a, TWO_M51);
    const double x = mul(t, PIO2_HI);
    // y = ((((th * PIO2_A - x) + th * PIO2_B) + tl * PIO2_A) + tl * PIO2_B) + t * PIO2_LO
    const double y = add(add(add(add(sub(mul(th, PIO2_A), x), mul(th, PIO2_B)), mul(tl, PIO2_A)), mul(tl, PIO2_B)),
                         mul(t, PIO2_LO));
    const double z = mul(x, x);
    const double w = mul(z, z);
    // cos(theta), fdlibm k_cos.c: rc = z * (C1 + z * (C2 + z * C3)) + w * w * (C4 + z * (C5 + z * C6))
    const double rc = add(mul(z, add(C1, mul(z, add(C2, mul(z, C3))))),
                          mul(mul(w, w), add(C4, mul(z, add(C5, mul(z, C6))))));
    const double hz = mul(0.5, z);
    const double v = sub(1.0, hz);
    // c = v + (((1 - v) - hz) + (z * rc - x * y))
    const double c = add(v, add(sub(sub(1.0, v), hz), sub(mul(z, rc), mul(x, y))));
    // sin(|theta|), fdlibm k_sin.c: rs = S2 + z * (S3 + z * S4) + z * w * (S5 + z * S6)
    const double rs = add(add(S2, mul(z, add(S3, mul(z, S4)))), mul(mul(z, w), add(S5, mul(z, S6))));
    const double vs = mul(z, x);
    // sn = x - ((z * (0.5 * y - vs * rs) - y) - vs * S1)
    const double sn = sub(x, sub(sub(mul(z, sub(mul(0.5, y), mul(vs, rs))), y), mul(vs, S1)));
    SinCos out;
    out.cos = quadrant(n, c, sn, negative);
    out.sin = quadrant(n + 3, c, sn, negative);
    return out;
}

// cos(2 pi j 2**-53) for an integer 0 <= j < 2**53.
FD_HD double cos_two_pi(i64 j) { return sincos_two_pi(j).cos; }

// The four Philox words of the pair counter (trajectory, pair, coordinate).
FD_HD Philox4 philox_pair_words(u64 seed, u64 trajectory, u32 pair, u32 coordinate) {
    return philox4x32_10((u32)trajectory, (u32)(trajectory >> 32), pair, coordinate, (u32)seed, (u32)(seed >> 32));
}

// The normals of steps 2 pair (.cos) and 2 pair + 1 (.sin) for (trajectory, coordinate)
// under seed, in float64: r cos(2 pi u2) and r sin(2 pi u2), r = sqrt(-2 ln u1).
FD_HD SinCos philox_normal_pair(u64 seed, u64 trajectory, u32 pair, u32 coordinate) {
    const Philox4 x = philox_pair_words(seed, trajectory, pair, coordinate);
    const i64 k = (i64)((((u64)x.x[0] << 21) | (x.x[1] >> 11)) + 1);
    const i64 j = (i64)(((u64)x.x[2] << 21) | (x.x[3] >> 11));
    const double r = rn::sqrt(rn::mul(-2.0, log_unit(k)));
    const SinCos u = sincos_two_pi(j);
    SinCos out;
    out.cos = rn::mul(r, u.cos);
    out.sin = rn::mul(r, u.sin);
    return out;
}

// The standard normal of (trajectory, step, coordinate) under seed, in float64.
FD_HD double philox_normal(u64 seed, u64 trajectory, u32 step, u32 coordinate) {
    const SinCos p = philox_normal_pair(seed, trajectory, step >> 1, coordinate);
    return (step & 1u) ? p.sin : p.cos;
}

}  // namespace fastdecay
