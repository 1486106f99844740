// Exact expected dynamics of noisy SGD on quadratics on the GPU: the twin of
// fastdecay/_cpu/expected.py (propagate), with the same arguments and arithmetic.
//
// Each element (trajectory i, coordinate k) carries the first moments (mw, mb)
// and second moments (sww, swb, sbb) of its (weight, momentum buffer). One step
// with coefficients c = (WW, WG, WB, BW, BG, BB) (the update rule's response to a
// unit weight, gradient and buffer, computed on the host by
// fastdecay/_cpu/expected.py: step_coefficients) and noise variance q is
//
//     A = [[WW + lam WG, WB], [BW + lam BG, BB]],   m' = A m,   S' = A S A^T + q (WG, BG)(WG, BG)^T
//
// A block holds consecutive coordinates of one trajectory, one thread each, the
// time loop in registers; the recorded sums sum_k lam_k S_ww,k are reduced over a
// warp and added to partial[i, 0, column] (one atomic add a warp). On the host
// build (tests) every thread adds its own term.
#include "common.cuh"

using namespace fastdecay;

enum { WW = 0, WG = 1, WB = 2, BW = 3, BG = 4, BB = 5, N_COEF = 6 };

// A second moment: x, or inf where it has left float64's range and its arithmetic made NaN
// (inf - inf, 0 * inf); every input is finite, so a NaN here is an overflow. The CPU's _second.
FD_HD double second_moment(double x) { return x == x ? x : infinity(); }

// Add `value` of every thread of the warp into *slot (all lanes of a warp share the
// slot and reach this call together).
FD_HD void add_to_record(double* slot, double value) {
#ifdef __CUDA_ARCH__
    for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_down_sync(0xffffffffu, value, offset);
    if ((threadIdx.x & 31) == 0) atomicAdd(slot, value);
#else
    *slot += value;
#endif
}

struct ExpectedArgs {
    double *mw, *mb, *sww, *swb, *sbb;             // (n*d) state; mb, swb, sbb null without a buffer
    const double *lam, *var;                      // (rows, d) tables
    const i64 *lam_rows, *var_rows;               // (n) their row per trajectory
    const double* inv_batch;                      // (n)
    const double* coef;                           // (rate rows, n_steps, N_COEF)
    const i64* coef_rows;                         // (n)
    const unsigned char* active;                  // (n), or null: every trajectory
    i64 n, d, tiles, first_step, n_steps, every, first_record;
    double* partial;                              // (n, 1, n_columns)
    i64 n_columns;
};

// Block b of the launch: trajectory b / tiles, coordinates (b % tiles) * n_threads + thread.
__host__ __device__ inline void expected_body(const Grid& gr, const ExpectedArgs& a) {
    const i64 i = gr.block / a.tiles;
    if (i >= a.n || (a.active && a.active[i] == 0)) return;  // the whole block alike
    const i64 k = (gr.block - i * a.tiles) * gr.n_threads + gr.thread;
    const bool live = k < a.d;  // threads past d keep the warp whole for the record sums
    const i64 j = i * a.d + k;
    const bool buffered = a.mb != nullptr;
    const double lam = live ? a.lam[a.lam_rows[i] * a.d + k] : 0.0;
    const double q = live ? a.var[a.var_rows[i] * a.d + k] * a.inv_batch[i] : 0.0;
    double mw = live ? a.mw[j] : 0.0, sww = live ? a.sww[j] : 0.0;
    double mb = live && buffered ? a.mb[j] : 0.0;
    double swb = live && buffered ? a.swb[j] : 0.0;
    double sbb = live && buffered ? a.sbb[j] : 0.0;
    const double* c = a.coef + a.coef_rows[i] * a.n_steps * N_COEF;
    for (i64 s = 0; s < a.n_steps; ++s, c += N_COEF) {
        const double a11 = c[WW] + lam * c[WG];
        if (buffered) {
            const double a21 = c[BW] + lam * c[BG];
            const double x = mw, y = mb;
            mw = a11 * x + c[WB] * y;
            mb = a21 * x + c[BB] * y;
            const double u1 = a11 * sww + c[WB] * swb, u2 = a11 * swb + c[WB] * sbb;
            const double v1 = a21 * sww + c[BB] * swb, v2 = a21 * swb + c[BB] * sbb;
            sww = second_moment(u1 * a11 + u2 * c[WB] + (q != 0.0 ? c[WG] * c[WG] * q : 0.0));
            swb = u1 * a21 + u2 * c[BB] + (q != 0.0 ? c[WG] * c[BG] * q : 0.0);
            sbb = second_moment(v1 * a21 + v2 * c[BB] + (q != 0.0 ? c[BG] * c[BG] * q : 0.0));
        } else {
            mw = a11 * mw;
            sww = second_moment(a11 * a11 * sww + (q != 0.0 ? c[WG] * c[WG] * q : 0.0));
        }
        const i64 t = a.first_step + s + 1;
        if (a.every > 0 && t % a.every == 0)
            add_to_record(a.partial + i * a.n_columns + (t / a.every - a.first_record), lam * sww);
    }
    if (!live) return;
    a.mw[j] = mw;
    a.sww[j] = sww;
    if (buffered) {
        a.mb[j] = mb;
        a.swb[j] = swb;
        a.sbb[j] = sbb;
    }
}

#define FD_EXPECTED_ARGS                                                                                         \
    double *mw, double *mb, double *sww, double *swb, double *sbb, const double *lam, const i64 *lam_rows,       \
        const double *var, const i64 *var_rows, const double *inv_batch, const double *coef,                    \
        const i64 *coef_rows, const unsigned char *active, i64 n, i64 d, i64 tiles, i64 first_step, i64 n_steps, \
        i64 every, i64 first_record, double *partial, i64 n_columns
#define FD_EXPECTED_PASS                                                                                        \
    ExpectedArgs{mw, mb, sww, swb, sbb, lam, var, lam_rows, var_rows, inv_batch, coef, coef_rows, active, n, d, \
                 tiles, first_step, n_steps, every, first_record, partial, n_columns}

#ifdef __CUDACC__
extern "C" __global__ void expected_propagate(FD_EXPECTED_ARGS) { expected_body(this_grid(), FD_EXPECTED_PASS); }
#endif
