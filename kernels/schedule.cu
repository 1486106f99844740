// Schedule evaluation on the GPU: rates at arbitrary (row, step) points, and
// tables of consecutive steps. float64 math, rounded once to the output dtype.
#include "schedule.cuh"

using namespace fastdecay;

// out[i] = lr_at(table, rows[i], steps[i]) for i < n (grid-stride).
template <typename T>
__host__ __device__ void schedule_points(Grid gr, const double* __restrict__ table, int n_segments,
                                const i64* __restrict__ rows, const double* __restrict__ steps,
                                T* __restrict__ out, i64 n) {
    for (i64 i = gr.global(); i < n; i += gr.stride()) {
        out[i] = (T)lr_at(table, n_segments, rows[i], steps[i]);
    }
}

// Steps lo + thread, lo + thread + n_threads, ... < hi of one schedule row, from
// first + i. A thread walks its steps in increasing order, so the segment index
// only moves forward; inside a plain exponential segment each step is the last
// times gamma ** (n_threads / decay_steps), one multiplication (at most
// TABLE_CHUNK / n_threads - 1 = 63 of them after a closed-form anchor: within
// ~32 ulp, 7e-15 relative);
// every other primitive is its closed form.
// The first index i < hi with first + i >= the start of the segment after k, else hi
// (segment starts and `first` are whole steps: exact). The loop below compares
// indices with it, so a step inside a segment costs no int-to-double conversion.
FD_HD i64 next_boundary(const double* row_table, int n_segments, int k, double first, i64 hi) {
    if (k + 1 >= n_segments) return hi;
    const double d = ceil(row_table[(k + 1) * WIDTH + START] - first);
    return d < (double)hi ? (i64)d : hi;  // an infinite start (padding) never comes
}

template <typename T>
FD_HD void table_chunk(const double* row_table, int n_segments, double first, T* out_row, i64 lo, i64 hi,
                       i64 thread, i64 n_threads) {
    i64 i = lo + thread;
    if (i >= hi) return;
    int k = segment_of(row_table, n_segments, first + (double)i);
    const double* seg = row_table + k * WIDTH;
    double v = segment_rate(row_table, k, first + (double)i);
    // (a rate of 0 by its closed form: its ratio may overflow, 0 * inf)
    bool product = (int)seg[KIND] == KIND_EXPONENTIAL && seg[P0 + 3] == 0.0 && seg[P0] != 0.0;
    double ratio = product ? pow(seg[P0 + 1], (double)n_threads / seg[P0 + 2]) : 1.0;
    i64 boundary = next_boundary(row_table, n_segments, k, first, hi);
    out_row[i] = (T)v;
    for (i += n_threads; i < hi; i += n_threads) {
        if (i >= boundary) {
            const double t = first + (double)i;
            while (k + 1 < n_segments && row_table[(k + 1) * WIDTH + START] <= t) ++k;
            seg = row_table + k * WIDTH;
            product = (int)seg[KIND] == KIND_EXPONENTIAL && seg[P0 + 3] == 0.0 && seg[P0] != 0.0;
            ratio = product ? pow(seg[P0 + 1], (double)n_threads / seg[P0 + 2]) : 1.0;
            boundary = next_boundary(row_table, n_segments, k, first, hi);
            v = segment_rate(row_table, k, t);
        } else if (product) {
            v *= ratio;
        } else {
            v = segment_rate(row_table, k, first + (double)i);
        }
        out_row[i] = (T)v;
    }
}

// 64 steps a thread: the two float64 pow of a thread's anchor and ratio are
// spread over many stores (with 16 steps a thread they held the table kernel to
// 56% of the write bandwidth of a fill on an H100).
enum { TABLE_CHUNK = 16384 };

// out[r, i] = rate of schedule r at steps ? steps[i] : first + i, r < n_rows, i < n.
// Rows on the y axis of the grid (strided). Consecutive steps: blocks on x take
// chunks of TABLE_CHUNK steps (strided), threads every n_threads-th step of a
// chunk (coalesced stores). Given steps: any order, closed form, grid-stride.
template <typename T>
__host__ __device__ void schedule_table(Grid gr, i64 row0, i64 row_stride, const double* __restrict__ table,
                                        int n_segments, i64 n_rows, double first, const double* __restrict__ steps,
                                        T* __restrict__ out, i64 n) {
    for (i64 r = row0; r < n_rows; r += row_stride) {
        T* out_row = out + r * n;
        if (steps) {
            for (i64 i = gr.global(); i < n; i += gr.stride()) out_row[i] = (T)lr_at(table, n_segments, r, steps[i]);
            continue;
        }
        const double* row_table = table + r * (i64)n_segments * WIDTH;
        for (i64 lo = gr.block * (i64)TABLE_CHUNK; lo < n; lo += gr.n_blocks * (i64)TABLE_CHUNK)
            table_chunk<T>(row_table, n_segments, first, out_row, lo, min_i64(lo + TABLE_CHUNK, n), gr.thread,
                           gr.n_threads);
    }
}

#ifdef __CUDACC__
extern "C" {

__global__ void schedule_points_f64(const double* table, int n_segments, const i64* rows,
                                    const double* steps, double* out, i64 n) {
    schedule_points<double>(this_grid(), table, n_segments, rows, steps, out, n);
}

__global__ void schedule_points_f32(const double* table, int n_segments, const i64* rows,
                                    const double* steps, float* out, i64 n) {
    schedule_points<float>(this_grid(), table, n_segments, rows, steps, out, n);
}

// At most 64 registers a thread (the pow of the closed forms asks for 82): four
// resident blocks of 256 instead of two, to hide the latency of the product chain.
__global__ void __launch_bounds__(256, 4) schedule_table_f64(const double* table, int n_segments, i64 n_rows, double first,
                                   const double* steps, double* out, i64 n) {
    schedule_table<double>(this_grid(), blockIdx.y, gridDim.y, table, n_segments, n_rows, first, steps, out, n);
}

__global__ void __launch_bounds__(256, 4) schedule_table_f32(const double* table, int n_segments, i64 n_rows, double first,
                                   const double* steps, float* out, i64 n) {
    schedule_table<float>(this_grid(), blockIdx.y, gridDim.y, table, n_segments, n_rows, first, steps, out, n);
}

}  // extern "C"
#endif  // __CUDACC__
