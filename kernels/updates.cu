// Fused scheduled optimizer updates on the GPU over a list of tensors in one
// launch: one generic body, fused_body<Rule, P, S>, for every rule of
// fastdecay/_rules.py FUSED (SGD / heavy ball / Nesterov, Adam / AdamW / AMSGrad,
// Lion, ...). A rule is a struct of update_math.cuh (its per-step coefficients,
// the state buffers it uses, its element update); this file names none: the
// entry points, one per rule and storage with one argument list for all
// (FD_FUSED_ARGS), are generated from the table by fastdecay/_gpu/_source.py.
//
// The tensors of a call come as a table on the device, one row of N_FIELDS
// int64 per tensor: the data addresses of the parameter, the gradient and up
// to three state buffers, the element count, the index of the tensor's first
// chunk, and the address of its compensation buffer (Kahan, with compensated).
// Parameters and gradients are stored as P, state buffers as S (Storage<> in
// update_math.cuh: float64, float32, or bfloat16 / float16 computed in
// float32). Each tensor is cut into chunks of CHUNK elements; blocks stride
// over the chunks of all tensors (grid-stride), threads over the elements of a
// chunk, with 16-byte vector loads and stores where every array of the tensor
// the rule uses is 16-byte aligned (chunk starts are multiples of the vector width).
//
// The step, the gradient scale and found_inf may live in device memory
// (an address and a type code, SC_*), read by every thread at the start, so a
// captured CUDA graph replays with the step's current rate. Per-step scalars
// are float64 (update_math.cuh), per-element math in the tensor dtype.
// The kernels never allocate and never validate.
#include "schedule.cuh"
#include "update_math.cuh"

using namespace fastdecay;

enum {
    F_PARAM = 0, F_GRAD = 1, F_BUF0 = 2, F_BUF1 = 3, F_BUF2 = 4, F_SIZE = 5, F_FIRST_CHUNK = 6, F_COMP = 7,
    N_FIELDS = 8
};
// Small chunks (4 vector iterations of a 256-thread block) keep the last wave of a
// launch short: 1e8 float32 is ~24,000 chunks over ~1,000 resident blocks.
enum { CHUNK = 1 << 12 };

// type codes of scalars read from device memory (SC_NONE: use the value passed)
enum { SC_NONE = 0, SC_F32 = 1, SC_F64 = 2, SC_I32 = 3, SC_I64 = 4, SC_BOOL = 5 };

FD_HD double read_scalar(const void* p, int code, double value) {
    switch (code) {
    case SC_F32: return (double)*(const float*)p;
    case SC_F64: return *(const double*)p;
    case SC_I32: return (double)*(const int*)p;
    case SC_I64: return (double)*(const i64*)p;
    case SC_BOOL: return (double)*(const unsigned char*)p;
    default: return value;
    }
}

// Add one to a scalar counter of type `code` (SC_BOOL/SC_NONE: nothing).
FD_HD void increment_scalar(void* p, int code) {
    switch (code) {
    case SC_F32: *(float*)p += 1.0f; break;
    case SC_F64: *(double*)p += 1.0; break;
    case SC_I32: *(int*)p += 1; break;
    case SC_I64: *(i64*)p += 1; break;
    default: break;
    }
}

FD_HD void step_increment_body(void* step, int code, const void* found_inf_ptr, int found_inf_code) {
    if (read_scalar(found_inf_ptr, found_inf_code, 0.0) != 0.0) return;
    increment_scalar(step, code);
}

// Global chunk `chunk` of a call: the table row of the tensor that owns it and
// its elements [lo, hi) in that tensor (the first-chunk column is sorted).
struct ChunkSpan {
    const i64* tensor;
    i64 lo, hi;
};

FD_HD ChunkSpan chunk_span(const i64* tensors, int n_tensors, i64 chunk) {
    int k = 0, end = n_tensors;
    while (end - k > 1) {
        const int mid = (k + end) / 2;
        if (tensors[mid * N_FIELDS + F_FIRST_CHUNK] <= chunk) k = mid;
        else end = mid;
    }
    const i64* d = tensors + k * N_FIELDS;
    const i64 lo = (chunk - d[F_FIRST_CHUNK]) * CHUNK;
    return ChunkSpan{d, lo, min_i64(lo + (i64)CHUNK, d[F_SIZE])};
}

// The gradient divided by GradScaler's scale; untouched where the scale is 1.
template <typename T>
struct Unscale {
    T scale;
    bool scaled;
    FD_HD explicit Unscale(double grad_scale) : scale((T)grad_scale), scaled(grad_scale != 1.0) {}
    FD_HD T operator()(T g) const { return scaled ? g / scale : g; }
};

FD_HD bool aligned16(i64 address) { return (address & 15) == 0; }

// ----------------------------------------------------------------------------- the fused body

// Vector loads where every array of the tensor is 16-byte aligned and the parameter
// and state types have one size (a vector of each then covers the same elements).
template <typename P, typename S>
FD_HD bool vector_path(const i64* d, const bool* use, bool comp) {
    return sizeof(P) == sizeof(S) && aligned16(d[F_PARAM]) && aligned16(d[F_GRAD]) &&
           (!use[0] || aligned16(d[F_BUF0])) && (!use[1] || aligned16(d[F_BUF1])) &&
           (!use[2] || aligned16(d[F_BUF2])) && (!comp || aligned16(d[F_COMP]));
}

// One element on stored values: load (the buffers the rule uses), update in the math
// type, store (compensated with `compensated`).
template <typename P, typename S, typename R>
FD_HD void update_stored(const R& rule, const bool* use, P& w, P g, S* b, P& comp,
                         const Unscale<typename Storage<P>::Math>& unscale, bool compensated) {
    typedef typename Storage<P>::Math M;
    const M old = Storage<P>::load(w);
    M wm = old;
    M bm[3];
#pragma unroll
    for (int k = 0; k < 3; ++k) bm[k] = use[k] ? (M)Storage<S>::load(b[k]) : (M)0;
    rule.element(wm, unscale(Storage<P>::load(g)), bm);
#pragma unroll
    for (int k = 0; k < 3; ++k)
        if (use[k]) b[k] = Storage<S>::store(bm[k]);
    store_param<P>(w, comp, old, wm, compensated);
}

// Every fused update: Rule<M> (update_math.cuh) over the chunks of a call's tensors.
// The arguments are the same for every rule (FD_FUSED_ARGS below): the rule's
// options come as x0..x3 (its "f64" options in order) and f0..f5 (its "bool"/"i32").
template <template <typename> class Rule, typename P, typename S>
__host__ __device__ void fused_body(Grid gr, const i64* __restrict__ tensors, int n_tensors, i64 n_chunks,
                                    const double* __restrict__ lr_table, int lr_segments,
                                    const double* __restrict__ wd_table, int wd_segments,
                                    const void* step_ptr, int step_code, double step_value,
                                    const double* __restrict__ aux_table, int aux_segments,
                                    double x0, double x1, double x2, double x3,
                                    int f0, int f1, int f2, int f3, int f4, int f5, int compensated,
                                    const void* grad_scale_ptr, int grad_scale_code, double grad_scale_value,
                                    const void* found_inf_ptr, int found_inf_code) {
    typedef typename Storage<P>::Math M;
    if (read_scalar(found_inf_ptr, found_inf_code, 0.0) != 0.0) return;
    const double step = read_scalar(step_ptr, step_code, step_value);
    const Unscale<M> unscale(read_scalar(grad_scale_ptr, grad_scale_code, grad_scale_value));
    const FusedStep in = {lr_table, lr_segments, step, lr_at(lr_table, lr_segments, 0, step),
                          lr_at(wd_table, wd_segments, 0, step),
                          lr_at(aux_table, aux_segments, 0, step),  // scheduled, as lr
                          {x0, x1, x2, x3}, {f0, f1, f2, f3, f4, f5}};
    const Rule<M> rule(in);
    const bool use[3] = {rule.uses(0), rule.uses(1), rule.uses(2)};
    const bool comp_on = compensated != 0;
    typedef Vec<P> VP;
    typedef Vec<S> VS;

    for (i64 chunk = gr.block; chunk < n_chunks; chunk += gr.n_blocks) {
        const ChunkSpan span = chunk_span(tensors, n_tensors, chunk);
        const i64* d = span.tensor;
        const i64 lo = span.lo, hi = span.hi;
        P* __restrict__ w = (P*)d[F_PARAM];
        const P* __restrict__ g = (const P*)d[F_GRAD];
        S* __restrict__ buf[3] = {(S*)d[F_BUF0], (S*)d[F_BUF1], (S*)d[F_BUF2]};
        P* __restrict__ comp = (P*)d[F_COMP];
        i64 start = lo;
        if (vector_path<P, S>(d, use, comp_on)) {
            const i64 n_vec = (hi - lo) / VP::N;
            for (i64 j = gr.thread; j < n_vec; j += gr.n_threads) {
                const i64 i = lo + j * VP::N;
                VP wv = *(const VP*)(w + i);
                const VP gv = *(const VP*)(g + i);
                VS bv[3];
                VP cv;
#pragma unroll
                for (int k = 0; k < 3; ++k)
                    if (use[k]) bv[k] = *(const VS*)(buf[k] + i);
                if (comp_on) cv = *(const VP*)(comp + i);
#pragma unroll
                for (int e = 0; e < VP::N; ++e) {
                    S b[3];
#pragma unroll
                    for (int k = 0; k < 3; ++k) b[k] = use[k] ? bv[k].v[e] : S();
                    P ce = comp_on ? cv.v[e] : P();
                    update_stored<P, S>(rule, use, wv.v[e], gv.v[e], b, ce, unscale, comp_on);
#pragma unroll
                    for (int k = 0; k < 3; ++k)
                        if (use[k]) bv[k].v[e] = b[k];
                    if (comp_on) cv.v[e] = ce;
                }
                *(VP*)(w + i) = wv;
#pragma unroll
                for (int k = 0; k < 3; ++k)
                    if (use[k]) *(VS*)(buf[k] + i) = bv[k];
                if (comp_on) *(VP*)(comp + i) = cv;
            }
            start = lo + n_vec * VP::N;
        }
        for (i64 i = start + gr.thread; i < hi; i += gr.n_threads) {
            P wi = w[i];
            S b[3];
#pragma unroll
            for (int k = 0; k < 3; ++k) b[k] = use[k] ? buf[k][i] : S();
            P ce = comp_on ? comp[i] : P();
            update_stored<P, S>(rule, use, wi, g[i], b, ce, unscale, comp_on);
            w[i] = wi;
#pragma unroll
            for (int k = 0; k < 3; ++k)
                if (use[k]) buf[k][i] = b[k];
            if (comp_on) comp[i] = ce;
        }
    }
}

// ----------------------------------------------------------------------------- entry points

// The argument list of every fused entry point, <kernel>_<storage> for every kernel of
// fastdecay/_rules.py FUSED: generated by fastdecay/_gpu/_source.py (appended to this
// file's translation unit) as
//   extern "C" __global__ void __launch_bounds__(256) sgd_f32(FD_FUSED_ARGS) {
//       fused_body<SgdRule, float, float>(this_grid(), FD_FUSED_PASS); }
// with <storage> f32, f64 (state stored like the parameter) or <param>_<state>
// (f32_bf16, bf16_f32, bf16, f16_f32, f16_bf16). fastdecay/_gpu/_plan.py fused_args
// passes them.
#define FD_FUSED_ARGS                                                                                       \
    const i64 *tensors, int n_tensors, i64 n_chunks, const double *lr_table, int lr_segments,               \
        const double *wd_table, int wd_segments, const void *step_ptr, int step_code, double step_value,   \
        const double *aux_table, int aux_segments, double x0, double x1, double x2, double x3, int f0,     \
        int f1, int f2, int f3, int f4, int f5, int compensated, const void *grad_scale_ptr,               \
        int grad_scale_code, double grad_scale_value, const void *found_inf_ptr, int found_inf_code
#define FD_FUSED_PASS                                                                                       \
    tensors, n_tensors, n_chunks, lr_table, lr_segments, wd_table, wd_segments, step_ptr, step_code,       \
        step_value, aux_table, aux_segments, x0, x1, x2, x3, f0, f1, f2, f3, f4, f5, compensated,          \
        grad_scale_ptr, grad_scale_code, grad_scale_value, found_inf_ptr, found_inf_code

#ifdef __CUDACC__
extern "C" {

// Advance a device step counter by one (launched after an update on the same
// stream, so a captured graph counts its own replays), unless found_inf is
// nonzero: a skipped update (GradScaler found an inf) does not count as a step.
__global__ void step_increment(void* step, int code, const void* found_inf_ptr, int found_inf_code) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    step_increment_body(step, code, found_inf_ptr, found_inf_code);
}

}  // extern "C"
#endif  // __CUDACC__
