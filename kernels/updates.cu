// Fused scheduled optimizer updates on the GPU: SGD / heavy ball / Nesterov,
// Adam / AdamW / AMSGrad and Lion over a list of tensors in one launch.
//
// The tensors of a call come as a table on the device, one row of N_FIELDS
// int64 per tensor: the data addresses of the parameter, the gradient and up
// to three state buffers, the element count, the index of the tensor's first
// chunk, and the address of its compensation buffer (Kahan, with compensated).
// Parameters and gradients are stored as P, state buffers as S (Storage<> in
// update_math.cuh: float64, float32, or bfloat16 / float16 computed in float32). Each tensor is cut into chunks of CHUNK elements; blocks stride
// over the chunks of all tensors (grid-stride), threads over the elements of a
// chunk, with 16-byte vector loads and stores where every array of the tensor
// is 16-byte aligned (chunk starts are multiples of the vector width).
//
// The step, the gradient scale and found_inf may live in device memory
// (ScalarRef: an address and a type code), read by every thread at the start,
// so a captured CUDA graph replays with the step's current rate. Per-step
// scalars are float64 (update_math.cuh), per-element math in the tensor dtype.
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

// ----------------------------------------------------------------------------- SGD

// Vector loads where every array of the tensor is 16-byte aligned and the parameter
// and state types have one size (a vector of each then covers the same elements).
template <typename P, typename S>
FD_HD bool vector_path(const i64* d, bool buf0, bool buf1, bool buf2, bool comp) {
    return sizeof(P) == sizeof(S) && aligned16(d[F_PARAM]) && aligned16(d[F_GRAD]) && (!buf0 || aligned16(d[F_BUF0])) &&
           (!buf1 || aligned16(d[F_BUF1])) && (!buf2 || aligned16(d[F_BUF2])) && (!comp || aligned16(d[F_COMP]));
}

// One element of SGD on stored values: load, update in the math type, store.
template <typename P, typename S>
FD_HD void sgd_stored(P& w, P g, S& buf, P& comp, const SgdCoef<typename Storage<P>::Math>& c,
                      const Unscale<typename Storage<P>::Math>& unscale, bool use_momentum, bool nest, bool first,
                      bool compensated) {
    typedef typename Storage<P>::Math M;
    const M old = Storage<P>::load(w);
    M wm = old;
    M b = use_momentum ? (M)Storage<S>::load(buf) : (M)0;
    sgd_element<M>(wm, unscale(Storage<P>::load(g)), b, c, use_momentum, nest, first);
    if (use_momentum) buf = Storage<S>::store(b);
    store_param<P>(w, comp, old, wm, compensated);
}

template <typename P, typename S>
__host__ __device__ void sgd_body(Grid gr, const i64* __restrict__ tensors, int n_tensors, i64 n_chunks,
                           const double* __restrict__ lr_table, int lr_segments,
                           const double* __restrict__ wd_table, int wd_segments,
                           const void* step_ptr, int step_code, double step_value,
                           const double* __restrict__ momentum_table, int momentum_segments,
                           double dampening, int nesterov, int decoupled, int maximize,
                           int lr_in_buffer, int on_drop, int compensated,
                           const void* grad_scale_ptr, int grad_scale_code, double grad_scale_value,
                           const void* found_inf_ptr, int found_inf_code) {
    typedef typename Storage<P>::Math M;
    if (read_scalar(found_inf_ptr, found_inf_code, 0.0) != 0.0) return;
    const double step = read_scalar(step_ptr, step_code, step_value);
    const Unscale<M> unscale(read_scalar(grad_scale_ptr, grad_scale_code, grad_scale_value));
    const bool first = step == 0.0;
    const double momentum = lr_at(momentum_table, momentum_segments, 0, step);  // scheduled, as lr
    const SgdCoef<M> c(sgd_step_scalars(lr_table, lr_segments, wd_table, wd_segments, step, momentum, dampening,
                                        nesterov, decoupled, maximize, lr_in_buffer, on_drop));
    const bool use_momentum = momentum != 0.0;
    const bool nest = nesterov != 0;
    const bool comp_on = compensated != 0;
    typedef Vec<P> VP;
    typedef Vec<S> VS;

    for (i64 chunk = gr.block; chunk < n_chunks; chunk += gr.n_blocks) {
        const ChunkSpan span = chunk_span(tensors, n_tensors, chunk);
        const i64* d = span.tensor;
        const i64 lo = span.lo, hi = span.hi;
        P* __restrict__ w = (P*)d[F_PARAM];
        const P* __restrict__ g = (const P*)d[F_GRAD];
        S* __restrict__ buf = (S*)d[F_BUF0];
        P* __restrict__ comp = (P*)d[F_COMP];
        i64 start = lo;
        if (vector_path<P, S>(d, use_momentum, false, false, comp_on)) {
            const i64 n_vec = (hi - lo) / VP::N;
            for (i64 j = gr.thread; j < n_vec; j += gr.n_threads) {
                const i64 i = lo + j * VP::N;
                VP wv = *(const VP*)(w + i);
                const VP gv = *(const VP*)(g + i);
                VS bv;
                VP cv;
                if (use_momentum) bv = *(const VS*)(buf + i);
                if (comp_on) cv = *(const VP*)(comp + i);
#pragma unroll
                for (int e = 0; e < VP::N; ++e) {
                    S b = use_momentum ? bv.v[e] : S();
                    P ce = comp_on ? cv.v[e] : P();
                    sgd_stored<P, S>(wv.v[e], gv.v[e], b, ce, c, unscale, use_momentum, nest, first, comp_on);
                    if (use_momentum) bv.v[e] = b;
                    if (comp_on) cv.v[e] = ce;
                }
                *(VP*)(w + i) = wv;
                if (use_momentum) *(VS*)(buf + i) = bv;
                if (comp_on) *(VP*)(comp + i) = cv;
            }
            start = lo + n_vec * VP::N;
        }
        for (i64 i = start + gr.thread; i < hi; i += gr.n_threads) {
            P wi = w[i];
            S b = use_momentum ? buf[i] : S();
            P ce = comp_on ? comp[i] : P();
            sgd_stored<P, S>(wi, g[i], b, ce, c, unscale, use_momentum, nest, first, comp_on);
            w[i] = wi;
            if (use_momentum) buf[i] = b;
            if (comp_on) comp[i] = ce;
        }
    }
}

// ----------------------------------------------------------------------------- Adam

// One element of Adam on stored values: load, update in the math type, store.
template <typename P, typename S>
FD_HD void adam_stored(P& w, P g, S& m, S& v, S& vmax, P& comp, const AdamCoef<typename Storage<P>::Math>& c,
                       const Unscale<typename Storage<P>::Math>& unscale, bool ams, bool first, bool compensated) {
    typedef typename Storage<P>::Math M;
    const M old = Storage<P>::load(w);
    M wm = old, mm = Storage<S>::load(m), vm = Storage<S>::load(v);
    M xm = ams ? (M)Storage<S>::load(vmax) : (M)0;
    adam_element<M>(wm, unscale(Storage<P>::load(g)), mm, vm, xm, c, ams, first);
    m = Storage<S>::store(mm);
    v = Storage<S>::store(vm);
    if (ams) vmax = Storage<S>::store(xm);
    store_param<P>(w, comp, old, wm, compensated);
}

template <typename P, typename S>
__host__ __device__ void adam_body(Grid gr, const i64* __restrict__ tensors, int n_tensors, i64 n_chunks,
                            const double* __restrict__ lr_table, int lr_segments,
                            const double* __restrict__ wd_table, int wd_segments,
                            const void* step_ptr, int step_code, double step_value,
                            const double* __restrict__ beta1_table, int beta1_segments,
                            double beta2, double eps, int decoupled, int maximize, int amsgrad, int compensated,
                            const void* grad_scale_ptr, int grad_scale_code, double grad_scale_value,
                            const void* found_inf_ptr, int found_inf_code) {
    typedef typename Storage<P>::Math M;
    if (read_scalar(found_inf_ptr, found_inf_code, 0.0) != 0.0) return;
    const double step = read_scalar(step_ptr, step_code, step_value);
    const Unscale<M> unscale(read_scalar(grad_scale_ptr, grad_scale_code, grad_scale_value));
    const bool first = step == 0.0;
    const double beta1 = lr_at(beta1_table, beta1_segments, 0, step);  // scheduled, as lr
    const AdamCoef<M> c(adam_step_scalars(lr_table, lr_segments, wd_table, wd_segments, step, beta1, beta2, eps,
                                          decoupled, maximize));
    const bool ams = amsgrad != 0;
    const bool comp_on = compensated != 0;
    typedef Vec<P> VP;
    typedef Vec<S> VS;

    for (i64 chunk = gr.block; chunk < n_chunks; chunk += gr.n_blocks) {
        const ChunkSpan span = chunk_span(tensors, n_tensors, chunk);
        const i64* d = span.tensor;
        const i64 lo = span.lo, hi = span.hi;
        P* __restrict__ w = (P*)d[F_PARAM];
        const P* __restrict__ g = (const P*)d[F_GRAD];
        S* __restrict__ m = (S*)d[F_BUF0];
        S* __restrict__ v = (S*)d[F_BUF1];
        S* __restrict__ vmax = (S*)d[F_BUF2];
        P* __restrict__ comp = (P*)d[F_COMP];
        i64 start = lo;
        if (vector_path<P, S>(d, true, true, ams, comp_on)) {
            const i64 n_vec = (hi - lo) / VP::N;
            for (i64 j = gr.thread; j < n_vec; j += gr.n_threads) {
                const i64 i = lo + j * VP::N;
                VP wv = *(const VP*)(w + i);
                const VP gv = *(const VP*)(g + i);
                VS mv = *(const VS*)(m + i);
                VS vv = *(const VS*)(v + i);
                VS xv;
                VP cv;
                if (ams) xv = *(const VS*)(vmax + i);
                if (comp_on) cv = *(const VP*)(comp + i);
#pragma unroll
                for (int e = 0; e < VP::N; ++e) {
                    S x = ams ? xv.v[e] : S();
                    P ce = comp_on ? cv.v[e] : P();
                    adam_stored<P, S>(wv.v[e], gv.v[e], mv.v[e], vv.v[e], x, ce, c, unscale, ams, first, comp_on);
                    if (ams) xv.v[e] = x;
                    if (comp_on) cv.v[e] = ce;
                }
                *(VP*)(w + i) = wv;
                *(VS*)(m + i) = mv;
                *(VS*)(v + i) = vv;
                if (ams) *(VS*)(vmax + i) = xv;
                if (comp_on) *(VP*)(comp + i) = cv;
            }
            start = lo + n_vec * VP::N;
        }
        for (i64 i = start + gr.thread; i < hi; i += gr.n_threads) {
            P wi = w[i];
            S mi = m[i], vi = v[i];
            S x = ams ? vmax[i] : S();
            P ce = comp_on ? comp[i] : P();
            adam_stored<P, S>(wi, g[i], mi, vi, x, ce, c, unscale, ams, first, comp_on);
            w[i] = wi;
            m[i] = mi;
            v[i] = vi;
            if (ams) vmax[i] = x;
            if (comp_on) comp[i] = ce;
        }
    }
}

// ----------------------------------------------------------------------------- Lion

// One element of Lion on stored values: load, update in the math type, store.
template <typename P, typename S>
FD_HD void lion_stored(P& w, P g, S& m, P& comp, const LionCoef<typename Storage<P>::Math>& c,
                       const Unscale<typename Storage<P>::Math>& unscale, bool first, bool compensated) {
    typedef typename Storage<P>::Math M;
    const M old = Storage<P>::load(w);
    M wm = old, mm = Storage<S>::load(m);
    lion_element<M>(wm, unscale(Storage<P>::load(g)), mm, c, first);
    m = Storage<S>::store(mm);
    store_param<P>(w, comp, old, wm, compensated);
}

template <typename P, typename S>
__host__ __device__ void lion_body(Grid gr, const i64* __restrict__ tensors, int n_tensors, i64 n_chunks,
                            const double* __restrict__ lr_table, int lr_segments,
                            const double* __restrict__ wd_table, int wd_segments,
                            const void* step_ptr, int step_code, double step_value,
                            const double* __restrict__ beta1_table, int beta1_segments, double beta2, int maximize,
                            int compensated, const void* grad_scale_ptr, int grad_scale_code,
                            double grad_scale_value, const void* found_inf_ptr, int found_inf_code) {
    typedef typename Storage<P>::Math M;
    if (read_scalar(found_inf_ptr, found_inf_code, 0.0) != 0.0) return;
    const double step = read_scalar(step_ptr, step_code, step_value);
    const Unscale<M> unscale(read_scalar(grad_scale_ptr, grad_scale_code, grad_scale_value));
    const bool first = step == 0.0;
    const double lr = lr_at(lr_table, lr_segments, 0, step);
    const double wd = lr_at(wd_table, wd_segments, 0, step);
    const double beta1 = lr_at(beta1_table, beta1_segments, 0, step);  // scheduled, as lr
    const LionCoef<M> c(lion_scalars(lr, wd, beta1, beta2, maximize != 0));
    const bool comp_on = compensated != 0;
    typedef Vec<P> VP;
    typedef Vec<S> VS;

    for (i64 chunk = gr.block; chunk < n_chunks; chunk += gr.n_blocks) {
        const ChunkSpan span = chunk_span(tensors, n_tensors, chunk);
        const i64* d = span.tensor;
        const i64 lo = span.lo, hi = span.hi;
        P* __restrict__ w = (P*)d[F_PARAM];
        const P* __restrict__ g = (const P*)d[F_GRAD];
        S* __restrict__ m = (S*)d[F_BUF0];
        P* __restrict__ comp = (P*)d[F_COMP];
        i64 start = lo;
        if (vector_path<P, S>(d, true, false, false, comp_on)) {
            const i64 n_vec = (hi - lo) / VP::N;
            for (i64 j = gr.thread; j < n_vec; j += gr.n_threads) {
                const i64 i = lo + j * VP::N;
                VP wv = *(const VP*)(w + i);
                const VP gv = *(const VP*)(g + i);
                VS mv = *(const VS*)(m + i);
                VP cv;
                if (comp_on) cv = *(const VP*)(comp + i);
#pragma unroll
                for (int e = 0; e < VP::N; ++e) {
                    P ce = comp_on ? cv.v[e] : P();
                    lion_stored<P, S>(wv.v[e], gv.v[e], mv.v[e], ce, c, unscale, first, comp_on);
                    if (comp_on) cv.v[e] = ce;
                }
                *(VP*)(w + i) = wv;
                *(VS*)(m + i) = mv;
                if (comp_on) *(VP*)(comp + i) = cv;
            }
            start = lo + n_vec * VP::N;
        }
        for (i64 i = start + gr.thread; i < hi; i += gr.n_threads) {
            P wi = w[i];
            S mi = m[i];
            P ce = comp_on ? comp[i] : P();
            lion_stored<P, S>(wi, g[i], mi, ce, c, unscale, first, comp_on);
            w[i] = wi;
            m[i] = mi;
            if (comp_on) comp[i] = ce;
        }
    }
}

// ----------------------------------------------------------------------------- entry points

#define FD_SGD_ARGS                                                                                         \
    const i64 *tensors, int n_tensors, i64 n_chunks, const double *lr_table, int lr_segments,               \
        const double *wd_table, int wd_segments, const void *step_ptr, int step_code, double step_value,   \
        const double *momentum_table, int momentum_segments, double dampening, int nesterov,               \
        int decoupled, int maximize, int lr_in_buffer, int on_drop, int compensated,                       \
        const void *grad_scale_ptr, int grad_scale_code, double grad_scale_value,                          \
        const void *found_inf_ptr, int found_inf_code
#define FD_SGD_PASS                                                                                         \
    tensors, n_tensors, n_chunks, lr_table, lr_segments, wd_table, wd_segments, step_ptr, step_code,       \
        step_value, momentum_table, momentum_segments, dampening, nesterov, decoupled, maximize,            \
        lr_in_buffer, on_drop, compensated,                                                                \
        grad_scale_ptr, grad_scale_code, grad_scale_value, found_inf_ptr, found_inf_code
#define FD_ADAM_ARGS                                                                                        \
    const i64 *tensors, int n_tensors, i64 n_chunks, const double *lr_table, int lr_segments,               \
        const double *wd_table, int wd_segments, const void *step_ptr, int step_code, double step_value,   \
        const double *beta1_table, int beta1_segments, double beta2, double eps, int decoupled,            \
        int maximize, int amsgrad, int compensated,                                                        \
        const void *grad_scale_ptr, int grad_scale_code, double grad_scale_value, const void *found_inf_ptr, \
        int found_inf_code
#define FD_ADAM_PASS                                                                                        \
    tensors, n_tensors, n_chunks, lr_table, lr_segments, wd_table, wd_segments, step_ptr, step_code,       \
        step_value, beta1_table, beta1_segments, beta2, eps, decoupled, maximize, amsgrad, compensated,     \
        grad_scale_ptr,                                                                                    \
        grad_scale_code, grad_scale_value, found_inf_ptr, found_inf_code

#define FD_LION_ARGS                                                                                        \
    const i64 *tensors, int n_tensors, i64 n_chunks, const double *lr_table, int lr_segments,               \
        const double *wd_table, int wd_segments, const void *step_ptr, int step_code, double step_value,   \
        const double *beta1_table, int beta1_segments, double beta2, int maximize, int compensated,        \
        const void *grad_scale_ptr, int grad_scale_code, double grad_scale_value, const void *found_inf_ptr, \
        int found_inf_code
#define FD_LION_PASS                                                                                        \
    tensors, n_tensors, n_chunks, lr_table, lr_segments, wd_table, wd_segments, step_ptr, step_code,       \
        step_value, beta1_table, beta1_segments, beta2, maximize, compensated, grad_scale_ptr,              \
        grad_scale_code, grad_scale_value, found_inf_ptr, found_inf_code

#ifdef __CUDACC__
extern "C" {

// One entry point per rule and (parameter, state) storage: <rule>_<param> where the
// state is stored like the parameter, <rule>_<param>_<state> otherwise.
#define FD_UPDATE_ENTRIES(P, S, NAME)                                                                          \
    __global__ void __launch_bounds__(256) sgd_##NAME(FD_SGD_ARGS) { sgd_body<P, S>(this_grid(), FD_SGD_PASS); } \
    __global__ void __launch_bounds__(256) adam_##NAME(FD_ADAM_ARGS) { adam_body<P, S>(this_grid(), FD_ADAM_PASS); } \
    __global__ void __launch_bounds__(256) lion_##NAME(FD_LION_ARGS) { lion_body<P, S>(this_grid(), FD_LION_PASS); }
FD_UPDATE_ENTRIES(float, float, f32)
FD_UPDATE_ENTRIES(double, double, f64)
FD_UPDATE_ENTRIES(float, bf16, f32_bf16)
FD_UPDATE_ENTRIES(bf16, float, bf16_f32)
FD_UPDATE_ENTRIES(bf16, bf16, bf16)
FD_UPDATE_ENTRIES(f16, float, f16_f32)
FD_UPDATE_ENTRIES(f16, bf16, f16_bf16)

// Advance a device step counter by one (launched after an update on the same
// stream, so a captured graph counts its own replays), unless found_inf is
// nonzero: a skipped update (GradScaler found an inf) does not count as a step.
__global__ void step_increment(void* step, int code, const void* found_inf_ptr, int found_inf_code) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    step_increment_body(step, code, found_inf_ptr, found_inf_code);
}

}  // extern "C"
#endif  // __CUDACC__
