// Philox4x32-10 (Salmon et al., SC'11; Random123) and the Box-Muller normals
// fastdecay adds to gradients: the GPU twin of fastdecay/_cpu/philox.py.
// Steps 4q .. 4q + 3 share one counter and take the outputs of two Box-Muller
// transforms, one from each half of its words:
//
//   counter = (trajectory & 0xffffffff, trajectory >> 32, step >> 2, coordinate)
//   key     = (seed & 0xffffffff, seed >> 32)
//   x0, x1, x2, x3 = philox4x32_10(counter, key)
//   (a, b) = (x0, x1) at steps 4q, 4q + 1;  (x2, x3) at steps 4q + 2, 4q + 3
//   u1 = float32(a + 1) * 2**-32 in (0, 1],  u2 = b * 2**-32 in [0, 1)
//   r = sqrt(-2 ln u1)
//   xi = r cos(2 pi u2) at steps 4q, 4q + 2;  r sin(2 pi u2) at steps 4q + 1, 4q + 3
//
// in float32 (a float64 run widens xi exactly). Bit-identical to the CPU
// everywhere: the words trivially, the normal because ln, cos and sin are not the
// math library's (CUDA's differ from glibc's in the last bit) but log_u1 and
// sincos_turn below, FreeBSD's logf and Cephes' sinf/cosf polynomials with an exact
// integer argument reduction, the operations of fastdecay/_cpu/philox.py in the
// same order. They use only float32 +, -, *, / and sqrt, each correctly rounded by
// IEEE 754 and never contracted, and explicit fused multiply-adds (one rounding on
// every backend): on the device through the __fadd_rn / __fsub_rn / __fmul_rn /
// __fdiv_rn / __fsqrt_rn / __fmaf_rn intrinsics (never contracted, whatever --fmad
// says; nor flushed to zero: _source.OPTIONS has no -ftz), on the host through plain
// operators and fmaf, so a host build must use -ffp-contract=off
// (tests/test_cuda_host.py does). Every constant is a hex literal, as in philox.py.
#pragma once

#include "common.cuh"

namespace fastdecay {

struct Philox4 {
    u32 x[4];
};

// The high and low words of the 32 x 32 -> 64-bit product: on the device a
// __umulhi and a 32-bit multiply (a 64-bit multiply there is emulated by several
// 32-bit ones, and the 64-bit shifts and xors around it by pairs), on the host the
// 64-bit product.
FD_HD void mul_hi_lo(u32 a, u32 b, u32& hi, u32& lo) {
#ifdef __CUDA_ARCH__
    hi = __umulhi(a, b);
    lo = a * b;
#else
    const u64 p = (u64)a * b;
    hi = (u32)(p >> 32);
    lo = (u32)p;
#endif
}

FD_HD Philox4 philox4x32_10(u32 c0, u32 c1, u32 c2, u32 c3, u32 k0, u32 k1) {
    const u32 M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
    const u32 W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
#pragma unroll
    for (int r = 0; r < 10; ++r) {
        if (r > 0) {
            k0 += W0;
            k1 += W1;
        }
        u32 hi0, lo0, hi1, lo1;
        mul_hi_lo(M0, c0, hi0, lo0);
        mul_hi_lo(M1, c2, hi1, lo1);
        c0 = hi1 ^ c1 ^ k0;
        c2 = hi0 ^ c3 ^ k1;
        c1 = lo1;
        c3 = lo0;
    }
    Philox4 out;
    out.x[0] = c0;
    out.x[1] = c1;
    out.x[2] = c2;
    out.x[3] = c3;
    return out;
}

// Correctly rounded float32 operations that no compiler fuses into an FMA, the
// one fused multiply-add, and the conversions and bit casts the transform takes.
namespace rn {
#ifdef __CUDA_ARCH__
__device__ __forceinline__ float add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float sub(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float div(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ float sqrt(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ float fma(float a, float b, float c) { return __fmaf_rn(a, b, c); }
__device__ __forceinline__ float from_u32(u32 a) { return __uint2float_rn(a); }
__device__ __forceinline__ float from_i32(int a) { return __int2float_rn(a); }
__device__ __forceinline__ u32 bits(float a) { return __float_as_uint(a); }
__device__ __forceinline__ float from_bits(u32 a) { return __uint_as_float(a); }
#else
inline float add(float a, float b) { return a + b; }
inline float sub(float a, float b) { return a - b; }
inline float mul(float a, float b) { return a * b; }
inline float div(float a, float b) { return a / b; }
inline float sqrt(float a) { return ::sqrtf(a); }
inline float fma(float a, float b, float c) { return ::fmaf(a, b, c); }
inline float from_u32(u32 a) { return (float)(double)a; }  // the double is exact: one rounding
inline float from_i32(int a) { return (float)a; }
inline u32 bits(float a) {
    u32 b;
    __builtin_memcpy(&b, &a, sizeof b);
    return b;
}
inline float from_bits(u32 a) {
    float f;
    __builtin_memcpy(&f, &a, sizeof f);
    return f;
}
#endif
}  // namespace rn

// ln u1, u1 = float32(a + 1) 2**-32 in (0, 1], for a Philox word a: FreeBSD's logf
// (e_logf.c, its general form) on the bits of float32(a + 1), the exponent less 32.
// u1 = 2**e x with x in [sqrt(1/2), sqrt(2)), f = x - 1 (exact), s = f / (2 + f),
// ln(1 + f) = f - s (f - R(s**2)), plus e ln2 in two parts.
FD_HD float log_u1(u32 a) {
    const float LN2_HI = 0x1.62e3p-1f, LN2_LO = 0x1.2fefa2p-17f;
    const float LG1 = 0x1.555554p-1f, LG2 = 0x1.999c26p-2f, LG3 = 0x1.23d3dcp-2f, LG4 = 0x1.f13c4cp-3f;
    using namespace rn;
    // float32(a + 1): a + 1 wraps to 0 only for a = 2**32 - 1, whose a + 1 is 2**32 exactly
    const int ix = (int)bits(a == 0xFFFFFFFFu ? 0x1p32f : from_u32(a + 1u));
    const int m = ix & 0x7FFFFF;
    const int i = (m + (0x95F64 << 3)) & 0x800000;    // the mantissa 1.m >= ~sqrt(2): halve x
    const float x = from_bits((u32)(m | (i ^ 0x3F800000)));
    const int e = (ix >> 23) - 127 + (i >> 23) - 32;
    const float f = sub(x, 1.0f);
    const float s = div(f, add(2.0f, f));
    const float dk = from_i32(e);
    const float z = mul(s, s);
    const float w = mul(z, z);
    const float t1 = mul(w, fma(w, LG4, LG2));
    const float t2 = mul(z, fma(w, LG3, LG1));
    const float r = add(t2, t1);
    // dk * LN2_HI - ((s * (f - r) - dk * LN2_LO) - f)
    return sub(mul(dk, LN2_HI), sub(sub(mul(s, sub(f, r)), mul(dk, LN2_LO)), f));
}

struct SinCos {
    float cos, sin;
};

// (cos(2 pi u2), sin(2 pi u2)) for u2 = b 2**-32, a Philox word b. Exact reduction in
// integers: b = n 2**30 + r, n the nearest quarter turn (0 .. 4), -2**29 <= r < 2**29;
// theta = float32(r) * float32(pi/2) 2**-30 in [-pi/4, pi/4]; Cephes' sinf and cosf
// polynomials by fused multiply-adds; then each output picks one by its quadrant.
FD_HD SinCos sincos_turn(u32 b) {
    const float S1 = -0x1.555546p-3f, S2 = 0x1.11073cp-7f, S3 = -0x1.9943f2p-13f;
    const float C1 = 0x1.55554ap-5f, C2 = -0x1.6c0c34p-10f, C3 = 0x1.99eb9cp-16f;
    const float PIO2_M30 = 0x1.921fb6p-30f;
    using namespace rn;
    // in 32-bit words: n, the nearest quarter turn, modulo 4 (b + 2**29 wraps past the
    // last eighth of a turn, where n = 4 = 0 mod 4), and r = b - n 2**30 as a signed word
    const u32 n = (b + (1u << 29)) >> 30;
    const float x = mul(from_i32((int)(b - (n << 30))), PIO2_M30);
    const float z = mul(x, x);
    const float s = fma(fma(fma(S3, z, S2), z, S1), mul(z, x), x);
    const float c = fma(fma(fma(C3, z, C2), z, C1), mul(z, z), fma(-0.5f, z, 1.0f));
    const bool odd = (n & 1) != 0;
    const float cos = odd ? s : c;
    const float sin = odd ? c : s;
    SinCos out;
    out.cos = ((n + 1) & 2) ? -cos : cos;
    out.sin = (n & 2) ? -sin : sin;
    return out;
}

// Box-Muller's radius sqrt(-2 ln u1), u1 = float32(a + 1) 2**-32.
FD_HD float radius(u32 a) { return rn::sqrt(rn::mul(-2.0f, log_u1(a))); }

// The four Philox words of the counter (trajectory, quad, coordinate).
FD_HD Philox4 philox_quad_words(u64 seed, u64 trajectory, u32 quad, u32 coordinate) {
    return philox4x32_10((u32)trajectory, (u32)(trajectory >> 32), quad, coordinate, (u32)seed, (u32)(seed >> 32));
}

// The normals of steps 4 quad .. 4 quad + 3 for (trajectory, coordinate) under seed.
struct Quad {
    float z[4];
};

FD_HD Quad philox_normal_quad(u64 seed, u64 trajectory, u32 quad, u32 coordinate) {
    const Philox4 x = philox_quad_words(seed, trajectory, quad, coordinate);
    Quad out;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const float r = radius(x.x[2 * h]);
        const SinCos u = sincos_turn(x.x[2 * h + 1]);
        out.z[2 * h] = rn::mul(r, u.cos);
        out.z[2 * h + 1] = rn::mul(r, u.sin);
    }
    return out;
}

// A thread's draws for one (trajectory, coordinate) in a time loop: the four steps of
// a Philox counter are drawn at the first of them (or at a chunk's first step) and
// kept in registers; at(...) is the draw of step t.
struct StepDraws {
    float z0 = 0.0f, z1 = 0.0f, z2 = 0.0f, z3 = 0.0f;

    FD_HD float at(u64 seed, u64 trajectory, u32 coordinate, i64 t, bool first) {
        if (first || (t & 3) == 0) {
            const Quad p = philox_normal_quad(seed, trajectory, (u32)(t >> 2), coordinate);
            z0 = p.z[0];
            z1 = p.z[1];
            z2 = p.z[2];
            z3 = p.z[3];
        }
        const int u = (int)(t & 3);  // selects, not an indexed array (which would live in local memory)
        return u == 0 ? z0 : u == 1 ? z1 : u == 2 ? z2 : z3;
    }
};

// The standard normal of (trajectory, step, coordinate) under seed (one Box-Muller
// transform: the half of the counter's words that step reads).
FD_HD float philox_normal(u64 seed, u64 trajectory, u32 step, u32 coordinate) {
    const Philox4 x = philox_quad_words(seed, trajectory, step >> 2, coordinate);
    const bool second = (step & 2u) != 0;
    const float r = radius(second ? x.x[2] : x.x[0]);
    const SinCos u = sincos_turn(second ? x.x[3] : x.x[1]);
    return rn::mul(r, (step & 1u) ? u.sin : u.cos);
}

}  // namespace fastdecay
