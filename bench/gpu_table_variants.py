"""Why does the GPU schedule table write slower than a fill? Variants timed in one run.

    python bench/gpu_table_variants.py [--only NAME]

A 10,000 x 10,000 float64 table of exponential schedules (800 MB), each variant
timed with CUDA events (median of 20), against CuPy's fill of the same array:

- ``library``: ``fastdecay._gpu.schedule.table`` (the kernel in kernels/schedule.cu);
- ``store-geometry``: the library's launch geometry (one block row per schedule,
  TABLE_CHUNK steps per block, a thread every 256th step) storing a constant:
  the access pattern alone, no math;
- ``store-geometry-2-blocks``: the same, held to 2 resident blocks per SM by
  dynamic shared memory (the library kernel's occupancy: 82 registers a thread
  leave room for 2 blocks of 256 threads);
- ``bounded``: the library body with ``__launch_bounds__(256, 6)`` (<= 40 registers);
- ``bounded-4``: with ``__launch_bounds__(256, 4)`` (<= 64 registers);
- ``unbounded``: with no launch bounds (82 registers: 2 blocks a multiprocessor);
- ``memset``: ``cudaMemsetAsync`` of the table, a write-bandwidth ceiling;
- ``flat``: a grid-stride over the whole table, each thread a run of 8 consecutive
  steps of one row (closed-form anchor, then products), stores strided by 8.

Prints one line per variant: median device time, GB/s, fraction of the fill.
"""

import argparse

import numpy as np

ROWS, N = 10_000, 10_000

VARIANTS = r"""
using namespace fastdecay;

extern "C" __global__ void store_geometry(double* out, i64 n_rows, i64 n) {
    for (i64 r = blockIdx.y; r < n_rows; r += gridDim.y) {
        double* row = out + r * n;
        for (i64 lo = blockIdx.x * (i64)16384; lo < n; lo += gridDim.x * (i64)16384) {
            const i64 hi = min_i64(lo + 16384, n);
            for (i64 i = lo + threadIdx.x; i < hi; i += blockDim.x) row[i] = 0.5;
        }
    }
}

extern "C" __global__ void store_geometry_3(double* out, i64 n_rows, i64 n) {
    extern __shared__ char pad[];
    if (threadIdx.x == 100000) pad[0] = 0;
    for (i64 r = blockIdx.y; r < n_rows; r += gridDim.y) {
        double* row = out + r * n;
        for (i64 lo = blockIdx.x * (i64)16384; lo < n; lo += gridDim.x * (i64)16384) {
            const i64 hi = min_i64(lo + 16384, n);
            for (i64 i = lo + threadIdx.x; i < hi; i += blockDim.x) row[i] = 0.5;
        }
    }
}

// the library's table body under three register budgets
#define TABLE_VARIANT(NAME, BOUNDS)                                                                          \
    extern "C" __global__ void BOUNDS NAME(const double* table, int n_segments, i64 n_rows, double first,     \
                                           double* out, i64 n) {                                             \
        for (i64 r = blockIdx.y; r < n_rows; r += gridDim.y) {                                               \
            const double* row_table = table + r * (i64)n_segments * WIDTH;                                   \
            for (i64 lo = blockIdx.x * (i64)16384; lo < n; lo += gridDim.x * (i64)16384)                     \
                table_chunk<double>(row_table, n_segments, first, out + r * n, lo, min_i64(lo + 16384, n),   \
                                    threadIdx.x, blockDim.x);                                                \
        }                                                                                                    \
    }
TABLE_VARIANT(bounded, __launch_bounds__(256, 6))
TABLE_VARIANT(bounded_4, __launch_bounds__(256, 4))
TABLE_VARIANT(unbounded, )

// each thread: RUN consecutive steps of one row (anchor + products), grid-stride over runs
extern "C" __global__ void flat(const double* table, int n_segments, i64 n_rows, double* out, i64 n) {
    const int RUN = 8;
    const i64 runs_per_row = (n + RUN - 1) / RUN;
    for (i64 k = blockIdx.x * (i64)blockDim.x + threadIdx.x; k < n_rows * runs_per_row;
         k += (i64)gridDim.x * blockDim.x) {
        const i64 r = k / runs_per_row, lo = (k % runs_per_row) * RUN;
        table_chunk<double>(table + r * (i64)n_segments * WIDTH, n_segments, 0.0, out + r * n, lo,
                            min_i64(lo + RUN, n), 0, 1);
    }
}
"""


def main():
    # imported here: pytest's doctest collection imports this file on machines without CuPy
    import cupy as cp
    from cupyx.profiler import benchmark

    import fastdecay as fd
    from fastdecay._gpu import _plan, _source
    from fastdecay._gpu.schedule import table

    parser = argparse.ArgumentParser()
    parser.add_argument("--only")
    only = parser.parse_args().only
    s = fd.exponential(0.1, gamma=np.linspace(0.9, 0.9999, ROWS))
    out = cp.empty((ROWS, N))
    want = s.table(N)
    tbl = cp.asarray(s.rows())
    src = _source.translation_unit("schedule.cu") + VARIANTS
    module = cp.RawModule(code=src, options=_source.OPTIONS)
    grid = _plan.table_grid(ROWS, N)
    occupancy_2 = module.get_function("store_geometry_3")
    occupancy_2.max_dynamic_shared_size_bytes = 100_000
    runs = {
        "library": lambda: table(s, N, out=out),
        "store-geometry": lambda: module.get_function("store_geometry")(grid, (256,), (out, np.int64(ROWS), np.int64(N))),
        "store-geometry-2-blocks": lambda: occupancy_2(grid, (256,), (out, np.int64(ROWS), np.int64(N)),
                                                       shared_mem=100_000),
        "bounded": lambda: module.get_function("bounded")(
            grid, (256,), (tbl, np.int32(1), np.int64(ROWS), np.float64(0), out, np.int64(N))),
        "bounded-4": lambda: module.get_function("bounded_4")(
            grid, (256,), (tbl, np.int32(1), np.int64(ROWS), np.float64(0), out, np.int64(N))),
        "unbounded": lambda: module.get_function("unbounded")(
            grid, (256,), (tbl, np.int32(1), np.int64(ROWS), np.float64(0), out, np.int64(N))),
        "memset": lambda: out.data.memset_async(0, out.nbytes),
        "flat": lambda: module.get_function("flat")(
            (132 * 16,), (256,), (tbl, np.int32(1), np.int64(ROWS), out, np.int64(N))),
        "fill": lambda: out.fill(1.0),
    }
    if only:
        runs = {only: runs[only]}
    print(f"{'variant':<26} {'median':>9} {'GB/s':>8} {'of fill':>8}  check")
    fill_s = None
    for name, run in list(runs.items())[::-1] if not only else runs.items():
        out.fill(cp.nan)
        run()
        cp.cuda.Device().synchronize()
        if name in ("library", "bounded", "bounded-4", "unbounded", "flat"):
            w = cp.asarray(want)
            bad = int(cp.count_nonzero(~(cp.abs(out - w) <= 1e-12 * cp.abs(w) + 1e-300)))
            check = f"{bad} values off by > 1e-12"
            del w
        else:
            check = "-"
        t = float(np.median(benchmark(run, n_repeat=20, n_warmup=2).gpu_times[0]))
        fill_s = t if name == "fill" else fill_s
        frac = f"{fill_s / t:8.0%}" if fill_s else "-"
        print(f"{name:<26} {t * 1e6:7.0f} us {out.nbytes / t / 1e9:8.0f} {frac:>8}  {check}")


if __name__ == "__main__":
    main()
