// Batched quadratic trajectories on the GPU: the twin of fastdecay/_cpu/simulate.py
// (simulate_chunk), with the same arguments and the same arithmetic.
//
// Trajectory i minimises f(w) = 1/2 sum_k lam_k w_k^2 over d coordinates,
// stored row-major in flat arrays of n * d elements. Without recording (or with
// d == 1) each thread owns one element (trajectory x coordinate) and runs the
// whole time loop of the chunk with its weight, buffer, second moment and
// rates in registers: nothing but the per-step shared scalars is read inside
// the loop. With recording and d > 1 a thread owns one trajectory, so the
// loss and displacement sums over coordinates run in the CPU's order.
//
// Rates are shared (step_scalars: lr, weight decay, buffer scale and momentum (Adam's
// beta1) per step of the chunk, computed on the host) or per trajectory (rows[i] of
// the table; the momentum too), by
// the CPU's recurrence operation for operation (fastdecay/_cpu/simulate.py,
// _advance_rates): plain exponential/constant rows advance by one multiplication
// a step and return to the closed form at every multiple of REANCHOR global
// steps (SIM_REANCHOR there); other rows take the closed form at every step,
// except inside a plateau of a one-segment staircase exponential (a step
// schedule), where the rate is the previous one (the same exponent, no pow).
// Noise: philox_normal(seed, offset + i, t, k), the CPU's numbers (float32); a thread
// that owns an element draws the four steps 4q .. 4q + 3 of a Philox counter at once
// and keeps them in registers (StepDraws, philox.cuh).
// The update rule is reached only through the simulations' section of update_math.cuh
// (SimRule sim_rule(code), sim_step_coefficients, sim_element, sim_element_row): this
// file names no rule.
#include "schedule.cuh"
#include "philox.cuh"
#include "update_math.cuh"

using namespace fastdecay;

enum { SS_LR = 0, SS_WD = 1, SS_SCALE = 2, SS_MOM = 3, N_SCALARS = 4 };
enum { REANCHOR = 1024 };  // = SIM_REANCHOR of fastdecay/_cpu/simulate.py

// What every thread needs, passed by value.
struct RateSource {
    const double* table;
    int segments;
    const i64* rows;      // null: shared (step_scalars)
    const double* ratio;  // per-step factor, NaN where the closed form is used
    double* state;        // current rate of each trajectory, carried between chunks
};

// The closed-form rate of `row` at step t; exactly lr at the origin of a one-segment
// exponential (no pow for gamma**0). The CPU's _anchor.
FD_HD double anchor_rate(const double* table, int segments, i64 row, double t) {
    const double* seg = table + row * (i64)segments * WIDTH;
    if ((segments == 1 || isinf(seg[WIDTH + START])) && (int)seg[KIND] == KIND_EXPONENTIAL && t == seg[ORIGIN])
        return seg[P0];
    return lr_at(table, segments, row, t);
}

// lr_at(row, t) for t >= 1 given `previous`, the rate at t - 1: inside a plateau of a
// one-segment staircase exponential that is `previous` (the closed form's exponent is
// the same), so the pow is skipped.
FD_HD double closed_form_rate(const double* table, int segments, i64 row, double t, double previous) {
    const double* seg = table + row * (i64)segments * WIDTH;
    if ((segments == 1 || isinf(seg[WIDTH + START])) && (int)seg[KIND] == KIND_EXPONENTIAL &&
        seg[P0 + 3] != 0.0) {
        const double tau = t - seg[ORIGIN];
        if (tau >= 1.0 && floor(tau / seg[P0 + 2]) == floor((tau - 1.0) / seg[P0 + 2])) return previous;
    }
    return lr_at(table, segments, row, t);
}

// The rate of trajectory i at global step t, from its value `current` at t - 1 (at
// t == 0 `current` is already the rate at step 0: the host's prepare_rates). The
// CPU's _advance_rates' values: the CPU reads a closed form again only at the step
// ``next_change`` gave (a staircase exponential's or inverse time's next plateau) and
// computes cosine, line and constant segments in a vector loop from fields it keeps; here
// every rate is the closed form (lr_at) but for a staircase exponential's plateau test,
// which skips the pow (the same values; two divisions cost a GPU less than a second array).
FD_HD double advance_rate(const RateSource& src, i64 i, i64 t, double current) {
    if (t == 0) return current;
    if (t % REANCHOR != 0) {
        const double r = src.ratio[i];
        if (r == r) return current * r;
        return closed_form_rate(src.table, src.segments, src.rows[i], (double)t, current);
    }
    return anchor_rate(src.table, src.segments, src.rows[i], (double)t);
}

// The rates of trajectory i at step t (chunk step s): learning rate, weight decay and
// momentum (Adam's beta1), each from its own row advanced by advance_rate (carried in
// cur[0..2]) or the shared per-step scalars.
struct Rates {
    double eta, wd, mom;
};

FD_HD Rates step_rates(const RateSource& lr, const RateSource& wdr, const RateSource& momr,
                       const double* __restrict__ ss, i64 i, i64 s, i64 t, double* cur) {
    if (lr.rows) cur[0] = advance_rate(lr, i, t, cur[0]);
    if (wdr.rows) cur[1] = advance_rate(wdr, i, t, cur[1]);
    if (momr.rows) cur[2] = advance_rate(momr, i, t, cur[2]);
    Rates r;
    r.eta = lr.rows ? cur[0] : ss[s * N_SCALARS + SS_LR];
    r.wd = wdr.rows ? cur[1] : ss[s * N_SCALARS + SS_WD];
    r.mom = momr.rows ? cur[2] : ss[s * N_SCALARS + SS_MOM];
    return r;
}

// The carried rates of trajectory i at the start of a chunk, and their store at its end.
FD_HD void load_rates(const RateSource& lr, const RateSource& wdr, const RateSource& momr, i64 i, double* cur) {
    cur[0] = lr.rows ? lr.state[i] : 0.0;
    cur[1] = wdr.rows ? wdr.state[i] : 0.0;
    cur[2] = momr.rows ? momr.state[i] : 0.0;
}

FD_HD void store_rates(const RateSource& lr, const RateSource& wdr, const RateSource& momr, i64 i,
                       const double* cur) {
    if (lr.rows) lr.state[i] = cur[0];
    if (wdr.rows) wdr.state[i] = cur[1];
    if (momr.rows) momr.state[i] = cur[2];
}

// The learning rate recorded at step t: the closed form of the trajectory's own row (row 0
// when shared), as the CPU records it (the shared per-step scalar, made by the rates'
// recurrence, is an ulp or a few off the closed form).
FD_HD double recorded_lr(const RateSource& lr, i64 i, i64 t) {
    return lr_at(lr.table, lr.segments, lr.rows ? lr.rows[i] : 0, (double)t);
}

// Recorded row r: loss ½ Σ λ x² (from twice_loss), displacement √(Σ δ²), the rate;
// the sums start at 0.0 as the CPU's _tally does (so -0.0 records as 0.0).
template <typename T>
FD_HD void write_record(T* rec_loss, T* rec_disp, T* rec_lr, i64 r, double twice_loss, double disp_sq,
                        double rate) {
    rec_loss[r] = (T)(0.5 * twice_loss);
    rec_disp[r] = (T)sqrt(disp_sq);
    rec_lr[r] = (T)rate;
}

// The rule (update_math.cuh: SimRule, sim_*) and the run's options.
struct Options {
    SimRule rule;
    int on_drop;
    double beta2, eps, noise;
    u64 seed, offset;
};

// Per step s of the chunk, once for all trajectories: the rule's bias corrections
// (bias[2s], bias[2s + 1]) and, where the rates are shared, the element-type
// coefficients of the update (coef[s * COEF_STRIDE ...]).
template <typename T>
FD_HD void step_coefficients(i64 s, const double* ss, i64 first_step, const Options& o, bool shared, T* coef,
                             double* bias) {
    const double* row = ss + s * N_SCALARS;
    sim_step_coefficients<T>(o.rule, first_step + s, row[SS_LR], row[SS_WD], row[SS_SCALE], row[SS_MOM], o.beta2,
                             o.eps, shared ? coef + s * COEF_STRIDE : nullptr, bias ? bias + 2 * s : nullptr);
}

// One step of one element: w, b (buffer), q (second buffer) in place; z is the
// element's draw of this step (float32, widened exactly for T = double; unused without noise).
// `coef` is this step's row of shared coefficients, or null: then the thread's own
// rates r (per-trajectory schedules) make them, with `bias` where the rule has bias
// corrections (null where beta1 is per trajectory: then the thread computes its own).
template <typename T>
FD_HD void step_element(T& w, T& b, T& q, T lam, float z, i64 i, i64 t, const Rates& r, double scale_shared,
                        const T* coef, const double* bias, const RateSource& lr, const Options& o) {
    T g = lam * w;
    if (o.noise != 0.0) g = g + (T)o.noise * (T)z;
    double scale = scale_shared;
    if (!coef && lr.rows) {
        // a plain exponential or constant row never drops discontinuously
        scale = 1.0;
        if (o.rule.on_drop && o.on_drop != 0) {
            const double ratio = lr.ratio[i];
            if (!(ratio == ratio)) scale = buffer_scale_at(lr.table, lr.segments, lr.rows[i], (double)t, o.on_drop);
        }
    }
    sim_element<T>(o.rule, w, g, b, q, t, r.eta, r.wd, r.mom, scale, o.beta2, o.eps, coef, bias);
}

// One thread per element (trajectory x coordinate), the time loop in registers.
// Records (d == 1 only) loss, displacement and rate at every `every`-th step.
template <typename T>
__host__ __device__ void simulate_elements(Grid gr, T* w_, T* buf_, T* sq_, const T* lam_, i64 n, i64 d,
                                             RateSource lr, RateSource wdr, RateSource momr,
                                             const double* __restrict__ ss,
                                             const T* __restrict__ coef, const double* __restrict__ bias, Options o,
                                             i64 first_step, i64 n_steps, i64 every, T* rec_loss, T* rec_disp,
                                             T* rec_lr, i64 n_rec) {
    const bool has_buf = o.rule.buffer, has_sq = o.rule.second;  // the buffers are empty where the rule has none
    for (i64 j = gr.global(); j < n * d; j += gr.stride()) {
        const i64 i = j / d, k = j - i * d;
        T w = w_[j];
        const T lam = lam_[j];
        T b = (has_buf && buf_) ? buf_[j] : (T)0;
        T q = has_sq ? sq_[j] : (T)0;
        double cur[3];
        load_rates(lr, wdr, momr, i, cur);
        StepDraws draws;
        if (every > 0 && first_step == 0) {
            const double x = (double)w;
            write_record(rec_loss, rec_disp, rec_lr, i * n_rec, 0.0 + (double)lam * (x * x), 0.0,
                         recorded_lr(lr, i, 0));
        }
        for (i64 s = 0; s < n_steps; ++s) {
            const i64 t = first_step + s;
            const Rates r = step_rates(lr, wdr, momr, ss, i, s, t, cur);
            const float z = o.noise != 0.0 ? draws.at(o.seed, o.offset + (u64)i, (u32)k, t, s == 0) : 0.0f;
            const T before = w;
            step_element<T>(w, b, q, lam, z, i, t, r, ss[s * N_SCALARS + SS_SCALE],
                            coef ? coef + s * COEF_STRIDE : nullptr, bias ? bias + 2 * s : nullptr, lr, o);
            if (every > 0 && (t + 1) % every == 0) {
                const i64 r = i * n_rec + (t + 1) / every;
                const double delta = (double)w - (double)before;
                const double x = (double)w;
                write_record(rec_loss, rec_disp, rec_lr, r, 0.0 + (double)lam * (x * x), 0.0 + delta * delta,
                             recorded_lr(lr, i, t + 1));
            }
        }
        w_[j] = w;
        if (has_buf && buf_) buf_[j] = b;
        if (has_sq) sq_[j] = q;
        if (k == 0) store_rates(lr, wdr, momr, i, cur);
    }
}

// One thread per trajectory (recording with d > 1): coordinates in a loop, the
// state in global memory, sums over coordinates in the CPU's order.
template <typename T>
__host__ __device__ void simulate_trajectories(Grid gr, T* w_, T* buf_, T* sq_, const T* lam_, i64 n, i64 d,
                                                 RateSource lr, RateSource wdr, RateSource momr,
                                                 const double* __restrict__ ss,
                                                 const T* __restrict__ coef, const double* __restrict__ bias,
                                                 Options o, i64 first_step, i64 n_steps, i64 every, T* rec_loss,
                                                 T* rec_disp, T* rec_lr, i64 n_rec) {
    const bool has_buf = o.rule.buffer, has_sq = o.rule.second;
    for (i64 i = gr.global(); i < n; i += gr.stride()) {
        double cur[3];
        load_rates(lr, wdr, momr, i, cur);
        if (every > 0 && first_step == 0) {
            double loss = 0.0;
            for (i64 k = 0; k < d; ++k) {
                const double x = (double)w_[i * d + k];
                loss += (double)lam_[i * d + k] * (x * x);
            }
            write_record(rec_loss, rec_disp, rec_lr, i * n_rec, loss, 0.0, recorded_lr(lr, i, 0));
        }
        for (i64 s = 0; s < n_steps; ++s) {
            const i64 t = first_step + s;
            const Rates r = step_rates(lr, wdr, momr, ss, i, s, t, cur);
            const bool record = every > 0 && (t + 1) % every == 0;
            double disp = 0.0, loss = 0.0;
            for (i64 k = 0; k < d; ++k) {
                const i64 j = i * d + k;
                T w = w_[j];
                T b = (has_buf && buf_) ? buf_[j] : (T)0;
                T q = has_sq ? sq_[j] : (T)0;
                const T before = w;
                const float z = o.noise != 0.0 ? philox_normal(o.seed, o.offset + (u64)i, (u32)t, (u32)k) : 0.0f;
                step_element<T>(w, b, q, lam_[j], z, i, t, r, ss[s * N_SCALARS + SS_SCALE],
                                coef ? coef + s * COEF_STRIDE : nullptr, bias ? bias + 2 * s : nullptr, lr, o);
                w_[j] = w;
                if (has_buf && buf_) buf_[j] = b;
                if (has_sq) sq_[j] = q;
                if (record) {
                    const double delta = (double)w - (double)before;
                    const double x = (double)w;
                    disp += delta * delta;
                    loss += (double)lam_[j] * (x * x);
                }
            }
            if (record) {
                const i64 r = i * n_rec + (t + 1) / every;
                write_record(rec_loss, rec_disp, rec_lr, r, loss, disp, recorded_lr(lr, i, t + 1));
            }
        }
        store_rates(lr, wdr, momr, i, cur);
    }
}

// The noise of one step, as the simulations draw it: for trajectory i < n and
// coordinate k < d, the four Philox words of its counter (step >> 2) and
// the standard normal of (seed, first_trajectory + i, step, k) (for tests, and
// for callers who want the very numbers a simulation used).
__host__ __device__ inline void philox_fill_body(Grid gr, u64 seed, u64 first_trajectory, u32 step, i64 n, i64 d,
                                                 u32* __restrict__ words, float* __restrict__ normals) {
    for (i64 j = gr.global(); j < n * d; j += gr.stride()) {
        const i64 i = j / d, k = j - i * d;
        const u64 trajectory = first_trajectory + (u64)i;
        const Philox4 r = philox_quad_words(seed, trajectory, step >> 2, (u32)k);
        for (int e = 0; e < 4; ++e) words[4 * j + e] = r.x[e];
        normals[j] = philox_normal(seed, trajectory, step, (u32)k);
    }
}

#define FD_SIM_ARGS(T)                                                                                          \
    T *w, T *buf, T *sq, const T *lam, i64 n, i64 d, int opt, const double *lr_table, int lr_segments,         \
        const i64 *lr_rows, const double *lr_ratio, double *lr_state, const double *wd_table, int wd_segments,  \
        const i64 *wd_rows, const double *wd_ratio, double *wd_state, const double *mom_table,                 \
        int mom_segments, const i64 *mom_rows, const double *mom_ratio, double *mom_state,                     \
        const double *step_scalars, double beta2, double eps, int on_drop, double noise, u64 seed, u64 offset, \
        i64 first_step, i64 n_steps, i64 every, T *rec_loss, T *rec_disp, T *rec_lr, i64 n_rec,                \
        const T *coef, const double *bias

// The two ways of the general kernel are kernels of their own (the plan picks one): each
// then has the registers its own loop needs. Together, ptxas gave the pair 80 registers
// and ~1 kB of spills a thread (float32); the element way alone spills nothing.
template <typename T, bool PerTrajectory>
__host__ __device__ void simulate_body(Grid gr, FD_SIM_ARGS(T)) {
    const RateSource lr = {lr_table, lr_segments, lr_rows, lr_ratio, lr_state};
    const RateSource wdr = {wd_table, wd_segments, wd_rows, wd_ratio, wd_state};
    const RateSource momr = {mom_table, mom_segments, mom_rows, mom_ratio, mom_state};
    const Options o = {sim_rule(opt), on_drop, beta2, eps, noise, seed, offset};
    if constexpr (PerTrajectory)
        simulate_trajectories<T>(gr, w, buf, sq, lam, n, d, lr, wdr, momr, step_scalars, coef, bias, o, first_step,
                                 n_steps, every, rec_loss, rec_disp, rec_lr, n_rec);
    else
        simulate_elements<T>(gr, w, buf, sq, lam, n, d, lr, wdr, momr, step_scalars, coef, bias, o, first_step,
                             n_steps, every, rec_loss, rec_disp, rec_lr, n_rec);
}

// The common cases on their own (kernels of their own, so they keep few registers: the
// general kernels above carry each thread's own rates): rates shared by every trajectory
// (the coefficient table), no recording. One thread per element, the time loop in registers; each step
// reads one row of coefficients (the same address for every thread: a cached
// broadcast). Two kernels, so that each has the registers of its own loop:
// simulate_fast (no noise) compiles its loop once per kind of step (Code: with_sim_kind):
// no per-step test of noise or of the rule's switches in it (a GD step is its arithmetic
// and its row's loads); simulate_noisy (Code = -1: the rule read from opt, its cost is
// the draws) draws as simulate_elements does (StepDraws) and adds noise * z to the
// gradient in step_element's order.
template <typename T, bool Noisy, int Code>
__host__ __device__ void simulate_fast_loop(Grid gr, T* __restrict__ w_, T* __restrict__ buf_, T* __restrict__ sq_,
                                            const T* __restrict__ lam_, i64 total, int opt, i64 first_step,
                                            i64 n_steps, const T* __restrict__ coef, i64 d, double noise, u64 seed,
                                            u64 offset) {
    const SimRule rule = sim_rule(Code < 0 ? opt : Code);
    const bool has_buf = rule.buffer, has_sq = rule.second;
    const T sigma = (T)noise;
    for (i64 j = gr.global(); j < total; j += gr.stride()) {
        T w = w_[j];
        const T lam = lam_[j];
        T b = has_buf ? buf_[j] : (T)0;
        T q = has_sq ? sq_[j] : (T)0;
        StepDraws draws;
        i64 i = 0, k = 0;  // trajectory and coordinate of the element (for its draws)
        if constexpr (Noisy) {
            i = j / d;
            k = j - i * d;
        }
        for (i64 s = 0; s < n_steps; ++s) {
            const i64 t = first_step + s;
            T g = lam * w;
            if constexpr (Noisy) g = g + sigma * (T)draws.at(seed, offset + (u64)i, (u32)k, t, s == 0);
            Vec<T> row[COEF_STRIDE / Vec<T>::N];  // this step's coefficients, in whole vectors
            const Vec<T>* src = (const Vec<T>*)(coef + s * COEF_STRIDE);
#pragma unroll
            for (int v = 0; v < COEF_STRIDE / Vec<T>::N; ++v) row[v] = src[v];
            sim_element_row<T>(rule, w, g, b, q, row[0].v, t == 0);
        }
        w_[j] = w;
        if (has_buf) buf_[j] = b;
        if (has_sq) sq_[j] = q;
    }
}

#define FD_FAST_ARGS(T)                                                                                         \
    T *w, T *buf, T *sq, const T *lam, i64 total, int opt, i64 first_step, i64 n_steps, const T *coef, i64 d, \
        double noise, u64 seed, u64 offset
#define FD_FAST_PASS w, buf, sq, lam, total, opt, first_step, n_steps, coef, d, noise, seed, offset

// simulate_fast: noise is 0 (the plan sends noisy runs to simulate_noisy); a loop per
// kind of step (with_sim_kind).
template <typename T>
__host__ __device__ void simulate_fast_body(Grid gr, FD_FAST_ARGS(T)) {
    with_sim_kind(opt, [&](auto kind) { simulate_fast_loop<T, false, decltype(kind)::code>(gr, FD_FAST_PASS); });
}

template <typename T>
__host__ __device__ void simulate_noisy_body(Grid gr, FD_FAST_ARGS(T)) {
    simulate_fast_loop<T, true, -1>(gr, FD_FAST_PASS);
}

// The per-step table of a chunk (step_coefficients), one thread a step.
#define FD_COEF_ARGS(T)                                                                                         \
    const double *step_scalars, i64 first_step, i64 n_steps, int opt, double beta2, double eps, int shared,     \
        T *coef, double *bias
#define FD_COEF_PASS step_scalars, first_step, n_steps, opt, beta2, eps, shared, coef, bias

template <typename T>
__host__ __device__ void coefficients_body(Grid gr, FD_COEF_ARGS(T)) {
    const Options o = {sim_rule(opt), 0, beta2, eps, 0.0, 0, 0};
    for (i64 s = gr.global(); s < n_steps; s += gr.stride())
        step_coefficients<T>(s, step_scalars, first_step, o, shared != 0, coef, bias);
}

#define FD_SIM_PASS                                                                                             \
    w, buf, sq, lam, n, d, opt, lr_table, lr_segments, lr_rows, lr_ratio, lr_state, wd_table, wd_segments,     \
        wd_rows, wd_ratio, wd_state, mom_table, mom_segments, mom_rows, mom_ratio, mom_state, step_scalars,    \
        beta2, eps, on_drop, noise, seed, offset, first_step, n_steps, every, rec_loss, rec_disp, rec_lr,      \
        n_rec, coef, bias

#ifdef __CUDACC__
extern "C" {
__global__ void __launch_bounds__(256) simulate_f32(FD_SIM_ARGS(float)) {
    simulate_body<float, false>(this_grid(), FD_SIM_PASS);
}
__global__ void __launch_bounds__(256) simulate_f64(FD_SIM_ARGS(double)) {
    simulate_body<double, false>(this_grid(), FD_SIM_PASS);
}
__global__ void __launch_bounds__(256) simulate_trajectories_f32(FD_SIM_ARGS(float)) {
    simulate_body<float, true>(this_grid(), FD_SIM_PASS);
}
__global__ void __launch_bounds__(256) simulate_trajectories_f64(FD_SIM_ARGS(double)) {
    simulate_body<double, true>(this_grid(), FD_SIM_PASS);
}
__global__ void __launch_bounds__(256) simulate_fast_f32(FD_FAST_ARGS(float)) {
    simulate_fast_body<float>(this_grid(), FD_FAST_PASS);
}
__global__ void __launch_bounds__(256) simulate_fast_f64(FD_FAST_ARGS(double)) {
    simulate_fast_body<double>(this_grid(), FD_FAST_PASS);
}
__global__ void __launch_bounds__(256) simulate_noisy_f32(FD_FAST_ARGS(float)) {
    simulate_noisy_body<float>(this_grid(), FD_FAST_PASS);
}
__global__ void __launch_bounds__(256) simulate_noisy_f64(FD_FAST_ARGS(double)) {
    simulate_noisy_body<double>(this_grid(), FD_FAST_PASS);
}
__global__ void simulate_coefficients_f32(FD_COEF_ARGS(float)) {
    coefficients_body<float>(this_grid(), FD_COEF_PASS);
}
__global__ void simulate_coefficients_f64(FD_COEF_ARGS(double)) {
    coefficients_body<double>(this_grid(), FD_COEF_PASS);
}
__global__ void philox_fill(u64 seed, u64 first_trajectory, u32 step, i64 n, i64 d, u32* words, float* normals) {
    philox_fill_body(this_grid(), seed, first_trajectory, step, n, d, words, normals);
}
}
#endif  // __CUDACC__
