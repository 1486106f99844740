// Shared by every kernel file and by the host build of the headers.
//
// Three compilers read these sources:
//   * NVRTC (through CuPy, at run time): no system headers at all, math
//     functions are built in, __CUDACC__ and __CUDACC_RTC__ are defined;
//   * nvcc (the compile test, tests/test_cuda_compile.py);
//   * the host C++ compiler (tests/test_cuda_host.py), where __host__ and
//     __device__ mean nothing and the math comes from <math.h>.
// So: no standard headers under CUDA, and fixed-width types spelled out.
#pragma once

#ifndef __CUDACC__
#include <math.h>
#ifndef __host__
#define __host__
#endif
#ifndef __device__
#define __device__
#endif
#ifndef __forceinline__
#define __forceinline__ inline __attribute__((always_inline))
#endif
#endif

#define FD_HD __host__ __device__ __forceinline__
// For the large math functions (a schedule primitive): one copy called from
// every site, rather than inlined everywhere, keeps kernels small and quick to build.
#ifdef __CUDACC__
#define FD_HD_CALL __host__ __device__ __noinline__
#else
#define FD_HD_CALL inline
#endif

namespace fastdecay {

typedef long long i64;
typedef unsigned long long u64;
typedef unsigned int u32;

FD_HD i64 min_i64(i64 a, i64 b) { return a < b ? a : b; }

// +inf: NVRTC has no <math.h> (and so no INFINITY or HUGE_VAL); its bits on the device.
FD_HD double infinity() {
#ifdef __CUDA_ARCH__
    return __longlong_as_double(0x7ff0000000000000LL);
#else
    return HUGE_VAL;
#endif
}

// The launch geometry a kernel body strides over. On the GPU it is the real
// grid; the host test runs the same bodies for every (block, thread) in turn,
// which is exact because no thread reads what another one writes.
struct Grid {
    i64 block, n_blocks, thread, n_threads;
    FD_HD i64 global() const { return block * n_threads + thread; }
    FD_HD i64 stride() const { return n_blocks * n_threads; }
};

// 16 bytes of T, for vector loads and stores (ld.global.v4.f32 / v2.f64).
template <typename T>
struct alignas(16) Vec {
    enum { N = 16 / sizeof(T) };
    T v[N];
};

#ifdef __CUDACC__
__device__ __forceinline__ Grid this_grid() {
    Grid g = {(i64)blockIdx.x, (i64)gridDim.x, (i64)threadIdx.x, (i64)blockDim.x};
    return g;
}
#endif

}  // namespace fastdecay
