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

// out[r, i] = lr_at(table, r, steps ? steps[i] : first + i) for r < n_rows, i < n.
// Rows on the y axis of the grid (strided), steps on x (grid-stride, coalesced).
template <typename T>
__host__ __device__ void schedule_table(Grid gr, i64 row0, i64 row_stride, const double* __restrict__ table, int n_segments, i64 n_rows,
                               double first, const double* __restrict__ steps,
                               T* __restrict__ out, i64 n) {
    for (i64 r = row0; r < n_rows; r += row_stride) {
        T* out_row = out + r * n;
        for (i64 i = gr.global(); i < n; i += gr.stride()) {
            const double t = steps ? steps[i] : first + (double)i;
            out_row[i] = (T)lr_at(table, n_segments, r, t);
        }
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

__global__ void schedule_table_f64(const double* table, int n_segments, i64 n_rows, double first,
                                   const double* steps, double* out, i64 n) {
    schedule_table<double>(this_grid(), blockIdx.y, gridDim.y, table, n_segments, n_rows, first, steps, out, n);
}

__global__ void schedule_table_f32(const double* table, int n_segments, i64 n_rows, double first,
                                   const double* steps, float* out, i64 n) {
    schedule_table<float>(this_grid(), blockIdx.y, gridDim.y, table, n_segments, n_rows, first, steps, out, n);
}

}  // extern "C"
#endif  // __CUDACC__
