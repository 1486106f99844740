// Philox4x32-10 (Salmon et al., SC'11; Random123) and the Box-Muller normal
// fastdecay adds to gradients: the GPU twin of fastdecay/_cpu/philox.py.
//
//   counter = (trajectory & 0xffffffff, trajectory >> 32, step, coordinate)
//   key     = (seed & 0xffffffff, seed >> 32)
//   x0, x1, x2, x3 = philox4x32_10(counter, key)
//   u1 = ((x0 << 21 | x1 >> 11) + 1) * 2**-53          in (0, 1]
//   u2 = (x2 << 21 | x3 >> 11) * 2**-53                in [0, 1)
//   xi = sqrt(-2 ln u1) * cos(2 pi u2)
//
// The four words are bit-identical to the CPU's everywhere. The normal is too
// where the host math library is the one Numba calls (the host test); on the
// GPU, CUDA's log and cos may differ from glibc's in the last bit.
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

// The standard normal of (trajectory, step, coordinate) under seed, in float64.
FD_HD double philox_normal(u64 seed, u64 trajectory, u32 step, u32 coordinate) {
    const Philox4 r = philox4x32_10((u32)trajectory, (u32)(trajectory >> 32), step, coordinate,
                                    (u32)seed, (u32)(seed >> 32));
    const double two_m53 = 1.1102230246251565e-16;  // 2**-53
    const double two_pi = 6.283185307179586;        // 2.0 * math.pi
    const double u1 = ((double)(((u64)r.x[0] << 21) | (r.x[1] >> 11)) + 1.0) * two_m53;
    const double u2 = (double)(((u64)r.x[2] << 21) | (r.x[3] >> 11)) * two_m53;
    return sqrt(-2.0 * log(u1)) * cos(two_pi * u2);
}

}  // namespace fastdecay
