// The update rules, per step and per element: the CUDA twin of fastdecay/_cpu/rules.py.
//
// (a) Per-step scalars in float64, computed once per call (per thread on the
//     GPU, from a step counter that may live in device memory).
// (b) Per-element rules templated on the element type: every scalar already
//     cast to T, so float32 runs float32 math (and 16-bit storage, loaded to
//     float32 by Storage<>). Same operations in the same order as the Numba
//     rules (torch's single-tensor SGD and Adam): explicit fma() where the Numba
//     rules have one, no contraction anywhere else (--fmad=false; a host build
//     with -ffp-contract=off), so the host build reproduces the CPU backend bit
//     for bit.
// (c) The fused updates' rule structs (SgdRule, AdamRule, LionRule, at the end):
//     (a) and (b) as the one generic body of kernels/updates.cu runs them.
#pragma once

#include "common.cuh"
#include "schedule.cuh"

namespace fastdecay {

// The codes of fastdecay/_rules.py (tests/test_cuda_host.py compares them): what the
// momentum buffer does at a learning-rate drop, and the simulations' update rules.
enum { ON_DROP_KEEP = 0, ON_DROP_RESET = 1, ON_DROP_RESCALE = 2 };
enum {
    RULE_GD = 0, RULE_MOMENTUM = 1, RULE_LR_IN_BUFFER = 2, RULE_NESTEROV = 3, RULE_ADAM = 4, RULE_ADAMW = 5,
    RULE_LION = 6
};

// ----------------------------------------------------------------------------- element storage
//
// The CUDA twin of fastdecay/_cpu/storage.py: float64 and float32 tensors compute in
// their own type; bfloat16 and float16 tensors (16-bit storage types below, the bits
// of torch's / CuPy's elements) load to float32 and round to nearest even on store.

struct bf16 { unsigned short bits; };
struct f16 { unsigned short bits; };

FD_HD float float_of_bits(u32 b) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(b);
#else
    float f;
    __builtin_memcpy(&f, &b, 4);
    return f;
#endif
}

FD_HD u32 bits_of_float(float f) {
#ifdef __CUDA_ARCH__
    return __float_as_uint(f);
#else
    u32 b;
    __builtin_memcpy(&b, &f, 4);
    return b;
#endif
}

FD_HD float bf16_to_float(bf16 x) { return float_of_bits((u32)x.bits << 16); }

// Round to nearest even (NaN stays a quiet NaN): c10::BFloat16, __float2bfloat16_rn.
FD_HD bf16 float_to_bf16(float f) {
    bf16 out;
    if (f != f) {
        out.bits = 0x7FC0;
        return out;
    }
    const u32 b = bits_of_float(f);
    out.bits = (unsigned short)((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
    return out;
}

FD_HD float f16_to_float(f16 x) {
#ifdef __CUDA_ARCH__
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(x.bits));
    return f;
#else
    const u32 sign = (u32)(x.bits & 0x8000u) << 16;
    const u32 exponent = (x.bits >> 10) & 0x1Fu, mantissa = x.bits & 0x3FFu;
    if (exponent == 0x1F) return float_of_bits(sign | 0x7F800000u | (mantissa << 13));
    if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
        const float magnitude = (float)mantissa * 5.9604644775390625e-8f;
        return sign ? -magnitude : magnitude;
    }
    return float_of_bits(sign | ((exponent + 112u) << 23) | (mantissa << 13));
#endif
}

// Round to nearest even, overflow to infinity: IEEE binary16 (cvt.rn.f16.f32, torch's Half).
FD_HD f16 float_to_f16(float f) {
    f16 out;
#ifdef __CUDA_ARCH__
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(out.bits) : "f"(f));
#else
    const u32 b = bits_of_float(f);
    const u32 sign = (b >> 16) & 0x8000u, magnitude = b & 0x7FFFFFFFu;
    if (magnitude > 0x7F800000u) {
        out.bits = (unsigned short)(sign | 0x7E00u);  // NaN
    } else if (magnitude >= 0x477FF000u) {
        out.bits = (unsigned short)(sign | 0x7C00u);  // 65520 and above (and inf): inf
    } else if (magnitude < 0x38800000u) {             // below 2^-14: a subnormal (or zero) in float16
        const float units = float_of_bits(magnitude) * 16777216.0f;  // in units of 2^-24, exact
        u32 r = (u32)units;
        const float rest = units - (float)r;
        if (rest > 0.5f || (rest == 0.5f && (r & 1u))) ++r;
        out.bits = (unsigned short)(sign | r);
    } else {
        const u32 rebiased = magnitude - 0x38000000u;  // exponent bias 127 -> 15
        out.bits = (unsigned short)(sign | ((rebiased + 0xFFFu + ((rebiased >> 13) & 1u)) >> 13));
    }
#endif
    return out;
}

// Storage<T>: the math type of a stored type, and the load / store between them.
template <typename T>
struct Storage {
    typedef T Math;
    static FD_HD T load(T x) { return x; }
    static FD_HD T store(T x) { return x; }
};
template <>
struct Storage<bf16> {
    typedef float Math;
    static FD_HD float load(bf16 x) { return bf16_to_float(x); }
    static FD_HD bf16 store(float x) { return float_to_bf16(x); }
};
template <>
struct Storage<f16> {
    typedef float Math;
    static FD_HD float load(f16 x) { return f16_to_float(x); }
    static FD_HD f16 store(float x) { return float_to_f16(x); }
};

// Store an updated parameter `updated` (math type) over its old value `old`; with
// compensation, Kahan summation keeps in `comp` what rounding to P dropped.
template <typename P>
FD_HD void store_param(P& w, P& comp, typename Storage<P>::Math old, typename Storage<P>::Math updated,
                       bool compensated) {
    typedef typename Storage<P>::Math M;
    if (compensated) {
        const M y = (updated - old) + Storage<P>::load(comp);
        const P stored = Storage<P>::store(old + y);
        const M c = y - (Storage<P>::load(stored) - old);
        // a weight or a step that is not finite is stored as without compensation, with none
        // kept: inf - inf would make an infinite weight nan at its next step
        const bool finite = c - c == M(0);
        w = finite ? stored : Storage<P>::store(updated);
        comp = Storage<P>::store(finite ? c : M(0));
    } else {
        w = Storage<P>::store(updated);
    }
}

// Factor applied to the momentum buffer before its update at step t (on_drop).
FD_HD double buffer_scale_at(const double* lr_table, int lr_segments, i64 row, double t, int on_drop) {
    if (on_drop == ON_DROP_KEEP) return 1.0;
    double ratio = drop_ratio(lr_table, lr_segments, row, t);
    if (ratio == 1.0) return 1.0;
    if (on_drop == ON_DROP_RESET) return 0.0;
    return ratio;
}

struct SgdScalars {
    double sign, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf, neg_lr;
};

FD_HD SgdScalars sgd_scalars(double lr, double wd, bool first, double buffer_scale, double momentum,
                             double dampening, bool nesterov, bool decoupled, bool maximize, bool lr_in_buffer) {
    SgdScalars c;
    c.sign = maximize ? -1.0 : 1.0;
    c.l2 = decoupled ? 0.0 : wd;
    c.shrink = decoupled ? 1.0 - lr * wd : 1.0;
    const bool in_buffer = lr_in_buffer && momentum != 0.0;
    double gain = first ? 1.0 : 1.0 - dampening;
    if (in_buffer) gain = gain * lr;
    c.grad_gain = gain;
    c.buf_decay = momentum * buffer_scale;
    c.nest_grad = in_buffer ? lr : 1.0;
    c.nest_buf = nesterov ? momentum : 0.0;
    c.neg_lr = in_buffer ? -1.0 : -lr;
    return c;
}

struct AdamScalars {
    double sign, l2, shrink, w1, beta2, w2, neg_step_size, bc2_sqrt, eps;
};

// Adam's bias corrections at step t: 1 - beta1^(t+1) and (1 - beta2^(t+1))**0.5.
FD_HD void adam_bias(double t, double beta1, double beta2, double* bias_correction1, double* bc2_sqrt) {
    const double n = t + 1.0;
    *bias_correction1 = 1.0 - pow(beta1, n);
    const double bias_correction2 = 1.0 - pow(beta2, n);
    *bc2_sqrt = sqrt(bias_correction2);  // (correctly rounded, as torch's fused std::sqrt; pow(x, 0.5) is not)
}

// adam_scalars with the bias corrections already computed (a simulation computes
// them once per step for every trajectory).
FD_HD AdamScalars adam_scalars_biased(double lr, double wd, double bias_correction1, double bc2_sqrt, double beta1,
                                      double beta2, double eps, bool decoupled, bool maximize) {
    AdamScalars c;
    c.sign = maximize ? -1.0 : 1.0;
    c.l2 = decoupled ? 0.0 : wd;
    c.shrink = decoupled ? 1.0 - lr * wd : 1.0;
    c.neg_step_size = -(lr / bias_correction1);
    c.bc2_sqrt = bc2_sqrt;
    c.w1 = 1.0 - beta1;
    c.beta2 = beta2;
    c.w2 = 1.0 - beta2;
    c.eps = eps;
    return c;
}

FD_HD AdamScalars adam_scalars(double lr, double wd, double t, double beta1, double beta2, double eps,
                               bool decoupled, bool maximize) {
    double bias_correction1, bc2_sqrt;
    adam_bias(t, beta1, beta2, &bias_correction1, &bc2_sqrt);
    return adam_scalars_biased(lr, wd, bias_correction1, bc2_sqrt, beta1, beta2, eps, decoupled, maximize);
}

// Lion's per-step scalars (its weight decay is decoupled): shrink = 1 - lr*wd,
// w1 = 1 - beta1, w2 = 1 - beta2.
struct LionScalars {
    double sign, shrink, beta1, w1, beta2, w2, neg_lr;
};

FD_HD LionScalars lion_scalars(double lr, double wd, double beta1, double beta2, bool maximize) {
    LionScalars c;
    c.sign = maximize ? -1.0 : 1.0;
    c.shrink = 1.0 - lr * wd;
    c.beta1 = beta1;
    c.w1 = 1.0 - beta1;
    c.beta2 = beta2;
    c.w2 = 1.0 - beta2;
    c.neg_lr = -lr;
    return c;
}

// The SGD scalars cast once to the element type.
// Rows of N_COEF element-type values: the form a simulation stores them in, once
// per step, for every thread to read; rows are COEF_STRIDE long (48 bytes of
// float32, 96 of float64: whole 16-byte vectors).
enum { N_COEF = 9, COEF_STRIDE = 12 };

template <typename T>
struct SgdCoef {
    T sign, l2, shrink, buf_decay, grad_gain, nest_grad, nest_buf, neg_lr;
    FD_HD explicit SgdCoef(const SgdScalars& c)
        : sign((T)c.sign), l2((T)c.l2), shrink((T)c.shrink), buf_decay((T)c.buf_decay),
          grad_gain((T)c.grad_gain), nest_grad((T)c.nest_grad), nest_buf((T)c.nest_buf), neg_lr((T)c.neg_lr) {}
    FD_HD explicit SgdCoef(const T* r)
        : sign(r[0]), l2(r[1]), shrink(r[2]), buf_decay(r[3]), grad_gain(r[4]), nest_grad(r[5]), nest_buf(r[6]),
          neg_lr(r[7]) {}
    FD_HD void store(T* r) const {
        r[0] = sign; r[1] = l2; r[2] = shrink; r[3] = buf_decay; r[4] = grad_gain; r[5] = nest_grad;
        r[6] = nest_buf; r[7] = neg_lr; r[8] = (T)0;
    }
};

template <typename T>
struct AdamCoef {
    T sign, l2, shrink, w1, beta2, w2, neg_step_size, bc2_sqrt, eps;
    FD_HD explicit AdamCoef(const AdamScalars& c)
        : sign((T)c.sign), l2((T)c.l2), shrink((T)c.shrink), w1((T)c.w1), beta2((T)c.beta2), w2((T)c.w2),
          neg_step_size((T)c.neg_step_size), bc2_sqrt((T)c.bc2_sqrt), eps((T)c.eps) {}
    FD_HD explicit AdamCoef(const T* r)
        : sign(r[0]), l2(r[1]), shrink(r[2]), w1(r[3]), beta2(r[4]), w2(r[5]), neg_step_size(r[6]), bc2_sqrt(r[7]),
          eps(r[8]) {}
    FD_HD void store(T* r) const {
        r[0] = sign; r[1] = l2; r[2] = shrink; r[3] = w1; r[4] = beta2; r[5] = w2; r[6] = neg_step_size;
        r[7] = bc2_sqrt; r[8] = eps;
    }
};

// One element of SGD / heavy ball / Nesterov: updates w (and buf with momentum).
template <typename T>
FD_HD void sgd_element(T& w, T g, T& buf, const SgdCoef<T>& c, bool use_momentum, bool nesterov, bool first) {
    g = c.sign * g;
    if (c.l2 != (T)0) g = fma(c.l2, w, g);  // as torch: no term when 0 (an inf w keeps an inf g)
    T d;
    if (use_momentum) {
        if (first) buf = c.grad_gain * g;
        else buf = fma(c.grad_gain, g, c.buf_decay * buf);
        d = nesterov ? fma(c.nest_buf, buf, c.nest_grad * g) : buf;
    } else {
        d = g;
    }
    w = w * c.shrink;
    w = fma(c.neg_lr, d, w);
}

// One element of Adam / AdamW / AMSGrad: updates w, m, v (and vmax with amsgrad).
template <typename T>
FD_HD void adam_element(T& w, T g, T& m, T& v, T& vmax, const AdamCoef<T>& c, bool amsgrad, bool first) {
    g = c.sign * g;
    w = w * c.shrink;
    if (c.l2 != (T)0) g = fma(c.l2, w, g);  // as torch: no term when 0 (an inf w keeps an inf g)
    // torch's lerp: m + w1 (g - m) below a weight of 0.5, g - (1 - w1) (g - m) from it
    const bool small = c.w1 < (T)0.5;
    if (first) {
        m = small ? c.w1 * g : fma(c.w1 - (T)1, g, g);
        v = c.w2 * g * g;
    } else {
        m = small ? fma(c.w1, g - m, m) : fma(c.w1 - (T)1, g - m, g);
        v = fma(c.w2 * g, g, v * c.beta2);  // (torch's addcmul_: one rounding of the product's sum)
    }
    // (the CPU simulations compute sqrt(.) / bc2_sqrt as rules.root_over: a hoisted reciprocal
    // and two FMAs, the same bits as this division)
    T denom;
    if (amsgrad) {
        if (first || v > vmax || v != v) vmax = v;  // (a nan v is kept, as torch.maximum keeps it)
        denom = sqrt(vmax) / c.bc2_sqrt + c.eps;
    } else {
        denom = sqrt(v) / c.bc2_sqrt + c.eps;
    }
    w = w + c.neg_step_size * m / denom;
}

template <typename T>
struct LionCoef {
    T sign, shrink, beta1, w1, beta2, w2, neg_lr;
    FD_HD explicit LionCoef(const LionScalars& c)
        : sign((T)c.sign), shrink((T)c.shrink), beta1((T)c.beta1), w1((T)c.w1), beta2((T)c.beta2), w2((T)c.w2),
          neg_lr((T)c.neg_lr) {}
    FD_HD explicit LionCoef(const T* r)
        : sign(r[0]), shrink(r[1]), beta1(r[2]), w1(r[3]), beta2(r[4]), w2(r[5]), neg_lr(r[6]) {}
    FD_HD void store(T* r) const {
        r[0] = sign; r[1] = shrink; r[2] = beta1; r[3] = w1; r[4] = beta2; r[5] = w2; r[6] = neg_lr;
        r[7] = (T)0; r[8] = (T)0;
    }
};

// torch's sign: 1, -1, or x itself (0, -0, NaN).
template <typename T>
FD_HD T sign_of(T x) {
    return x > (T)0 ? (T)1 : (x < (T)0 ? (T)-1 : x);
}

// One element of Lion (Chen et al. 2023): updates w and m, as lion-pytorch in torch ops.
template <typename T>
FD_HD void lion_element(T& w, T g, T& m, const LionCoef<T>& c, bool first) {
    g = c.sign * g;
    w = w * c.shrink;
    T direction;
    if (first) {
        direction = c.w1 * g;
        m = c.w2 * g;
    } else {
        direction = fma(c.w1, g, c.beta1 * m);
        m = fma(c.w2, g, c.beta2 * m);
    }
    w = fma(c.neg_lr, sign_of(direction), w);
}

// ----------------------------------------------------------------------------- fused rules
//
// What the one generic body of the fused updates (fused_body<Rule, P, S> in
// kernels/updates.cu) needs of a rule: a struct template over the math type M, named
// after its kernel in fastdecay/_rules.py FUSED ("sgd" -> SgdRule; the entry points are
// generated from the table by fastdecay/_gpu/_source.py). Every entry point takes the
// same arguments: the rule's "f64" options arrive in order as x[0], x[1], ... and its
// "bool" / "i32" options as f[0], f[1], ... (OPTIONS names them in the table's order;
// tests/test_cuda_host.py compares). A rule is built once per call from a FusedStep
// (the per-step scalars are float64, then cast to M once) and has:
//   uses(k)           whether state buffer k (BUF0..BUF2) is read and written under these options;
//   element(w, g, b)  the update of one element in M: parameter w, unscaled gradient g,
//                     the three buffers b[0..2] (0 and ignored where unused).

enum { NUMBER_SLOTS = 4, FLAG_SLOTS = 6 };  // fastdecay/_rules.py NUMBER_SLOTS, FLAG_SLOTS

// The inputs of a fused rule's per-step coefficients: the rates at the step (row 0 of
// each table, as the Numba kernels read them) and the lr table (for its drops).
struct FusedStep {
    const double* lr_table;
    int lr_segments;
    double step, lr, wd;
    double scheduled;  // FUSED[kernel].scheduled (momentum, beta1) at the step, read as lr is
    double x[NUMBER_SLOTS];
    int f[FLAG_SLOTS];
};

// SGD / heavy ball / Nesterov: the momentum buffer only where the momentum at the step is nonzero;
// its content is ignored at the step first_step (x[1]: where torch creates it).
template <typename M>
struct SgdRule {
    static constexpr const char* OPTIONS = "dampening nesterov decoupled maximize lr_in_buffer on_drop first_step";
    bool momentum, nesterov, first;
    SgdCoef<M> c;
    FD_HD explicit SgdRule(const FusedStep& s)
        : momentum(s.scheduled != 0.0), nesterov(s.f[0] != 0), first(s.step == s.x[1]),
          c(sgd_scalars(s.lr, s.wd, first, buffer_scale_at(s.lr_table, s.lr_segments, 0, s.step, s.f[4]), s.scheduled,
                        s.x[0], s.f[0], s.f[1], s.f[2], s.f[3])) {}
    FD_HD bool uses(int k) const { return k == 0 && momentum; }
    FD_HD void element(M& w, M g, M* b) const { sgd_element<M>(w, g, b[0], c, momentum, nesterov, first); }
};

// Adam / AdamW / AMSGrad: exp_avg, exp_avg_sq, and max_exp_avg_sq only with amsgrad.
template <typename M>
struct AdamRule {
    static constexpr const char* OPTIONS = "beta2 eps decoupled maximize amsgrad";
    bool amsgrad, first;
    AdamCoef<M> c;
    FD_HD explicit AdamRule(const FusedStep& s)
        : amsgrad(s.f[2] != 0), first(s.step == 0.0),
          c(adam_scalars(s.lr, s.wd, s.step, s.scheduled, s.x[0], s.x[1], s.f[0], s.f[1])) {}
    FD_HD bool uses(int k) const { return k < 2 || amsgrad; }
    FD_HD void element(M& w, M g, M* b) const { adam_element<M>(w, g, b[0], b[1], b[2], c, amsgrad, first); }
};

// Lion: exp_avg.
template <typename M>
struct LionRule {
    static constexpr const char* OPTIONS = "beta2 maximize";
    bool first;
    LionCoef<M> c;
    FD_HD explicit LionRule(const FusedStep& s)
        : first(s.step == 0.0), c(lion_scalars(s.lr, s.wd, s.scheduled, s.x[0], s.f[0] != 0)) {}
    FD_HD bool uses(int k) const { return k == 0; }
    FD_HD void element(M& w, M g, M* b) const { lion_element<M>(w, g, b[0], c, first); }
};

}  // namespace fastdecay

// ============================================================================= the simulations' rules
// Everything kernels/simulate.cu (the batched quadratic simulations: grid, rates,
// noise, recording, chunks) knows of an update rule is here, the twin of section (d)
// of fastdecay/_cpu/rules.py. The simulation calls a rule only through
//
//   SimRule sim_rule(int code)           its flags, once per thread (loop-invariant)
//   sim_step_coefficients<T>(rule, ...)  per step of a chunk, once for every trajectory:
//                                        a row of shared coefficients, bias corrections
//   sim_element<T>(rule, ...)            one element, from a row of coefficients or from
//                                        the thread's own rates
//   sim_element_row<T>(rule, ...)        one element from a row (the lean kernel)
//   with_sim_kind(code, fn)              the lean kernel's kind of step, as a constant
//
// A simulation never maximizes, couples Adam's weight decay (AdamW's and Lion's are
// decoupled), has no dampening and no AMSGrad.
namespace fastdecay {

struct SimRule {
    // what the simulation reads (the RULES columns of fastdecay/_rules.py)
    bool buffer;   // keeps a buffer (momentum buffer / exp_avg): Rule.buffers
    bool second;   // keeps a second one (exp_avg_sq)
    bool bias;     // Adam's bias corrections, made once per step where beta1 is shared: Rule.bias_correction
    bool on_drop;  // on_drop scales its buffer: Rule.on_drop
    // the rules' own switches
    bool adam, decoupled, lion, momentum, nesterov, lr_in_buffer;
};

// The momentum family always keeps a buffer (the host runs a momentum that is the
// constant 0 as GD).
FD_HD SimRule sim_rule(int code) {
    SimRule r;
    r.adam = code == RULE_ADAM || code == RULE_ADAMW;
    r.decoupled = code == RULE_ADAMW;
    r.lion = code == RULE_LION;
    r.momentum = code == RULE_MOMENTUM || code == RULE_LR_IN_BUFFER || code == RULE_NESTEROV;
    r.nesterov = code == RULE_NESTEROV;
    r.lr_in_buffer = code == RULE_LR_IN_BUFFER;
    r.buffer = r.adam || r.lion || r.momentum;
    r.second = r.adam;
    r.bias = r.adam;
    r.on_drop = r.momentum;
    return r;
}

// The kinds of element step of the lean simulation kernel, for loops compiled once per
// kind (no per-step test of the rule's switches in them): fn(SimKind<code>{}) with a
// rule's code as a compile-time constant, SimKind<-1> where the code is none of these
// (the loop then reads the rule at run time). Rules whose steps differ only in their row
// of coefficients share a kind: the buffer's lr (lr_in_buffer) and AdamW's decoupled
// decay are in the row (sim_element_row reads adam, lion, momentum, nesterov).
template <int Code>
struct SimKind {
    static constexpr int code = Code;
};

template <typename F>
FD_HD void with_sim_kind(int code, F&& fn) {
    switch (code) {
        case RULE_GD: fn(SimKind<RULE_GD>{}); break;
        case RULE_MOMENTUM:
        case RULE_LR_IN_BUFFER: fn(SimKind<RULE_MOMENTUM>{}); break;
        case RULE_NESTEROV: fn(SimKind<RULE_NESTEROV>{}); break;
        case RULE_ADAM:
        case RULE_ADAMW: fn(SimKind<RULE_ADAM>{}); break;
        case RULE_LION: fn(SimKind<RULE_LION>{}); break;
        default: fn(SimKind<-1>{});
    }
}

FD_HD SgdScalars sim_sgd_scalars(const SimRule& r, double eta, double wd, bool first, double scale, double mom) {
    return sgd_scalars(eta, wd, first, scale, mom, 0.0, r.nesterov, false, false, r.lr_in_buffer);
}

// Whether a step of the momentum family with the shared coefficients `row` runs its
// momentum: a step whose momentum is 0 is a plain one that leaves the buffer as it is
// (torch's SGD), flagged in the row's slot 8 by sim_step_coefficients.
template <typename T>
FD_HD bool sim_momentum_on(const SimRule& r, const T* row) {
    return r.momentum && row[8] != (T)0;
}

// Step t of a chunk, once for all trajectories, from its shared rates: where the rule
// has bias corrections, bias[0], bias[1] (beta1 = mom); where `coef` is not null (every
// rate shared), the step's row of element-type coefficients. The same functions, in
// the same order, as a thread computing them itself (sim_element).
template <typename T>
FD_HD void sim_step_coefficients(const SimRule& r, i64 t, double eta, double wd, double scale, double mom,
                                 double beta2, double eps, T* coef, double* bias) {
    if (r.adam) {
        adam_bias((double)t, mom, beta2, &bias[0], &bias[1]);
        if (coef)
            AdamCoef<T>(adam_scalars_biased(eta, wd, bias[0], bias[1], mom, beta2, eps, r.decoupled, false))
                .store(coef);
    } else if (r.lion) {
        if (coef) LionCoef<T>(lion_scalars(eta, wd, mom, beta2, false)).store(coef);
    } else if (coef) {
        SgdCoef<T>(sim_sgd_scalars(r, eta, wd, t == 0, scale, mom)).store(coef);
        coef[8] = (T)(mom != 0.0);  // the step's momentum is on (sim_momentum_on)
    }
}

// Step t of one element: w, b (buffer), q (second buffer) in place, gradient g. `coef`
// is this step's row of shared coefficients, or null: then the rates eta, wd, mom and
// the buffer scale make them, with `bias` (this step's bias corrections, or null where
// beta1 is per trajectory: then computed here).
template <typename T>
FD_HD void sim_element(const SimRule& r, T& w, T g, T& b, T& q, i64 t, double eta, double wd, double mom,
                       double scale, double beta2, double eps, const T* coef, const double* bias) {
    const bool first = t == 0;
    if (r.adam) {
        const AdamCoef<T> c =
            coef ? AdamCoef<T>(coef)
            : bias ? AdamCoef<T>(adam_scalars_biased(eta, wd, bias[0], bias[1], mom, beta2, eps, r.decoupled, false))
                   : AdamCoef<T>(adam_scalars(eta, wd, (double)t, mom, beta2, eps, r.decoupled, false));
        T unused = w;
        adam_element<T>(w, g, b, q, unused, c, false, first);
    } else if (r.lion) {
        const LionCoef<T> c = coef ? LionCoef<T>(coef) : LionCoef<T>(lion_scalars(eta, wd, mom, beta2, false));
        lion_element<T>(w, g, b, c, first);
    } else {
        const SgdCoef<T> c = coef ? SgdCoef<T>(coef) : SgdCoef<T>(sim_sgd_scalars(r, eta, wd, first, scale, mom));
        const bool on = r.momentum && mom != 0.0;  // (a step at momentum 0 leaves the buffer as it is)
        T bb = on ? b : (T)0;
        sgd_element<T>(w, g, bb, c, on, r.nesterov, first);
        if (on) b = bb;
    }
}

// One element from a row of shared coefficients (a rule without a buffer gets b = 0 and
// leaves it unused).
template <typename T>
FD_HD void sim_element_row(const SimRule& r, T& w, T g, T& b, T& q, const T* row, bool first) {
    if (r.adam) {
        T unused = w;
        adam_element<T>(w, g, b, q, unused, AdamCoef<T>(row), false, first);
    } else if (r.lion) {
        lion_element<T>(w, g, b, LionCoef<T>(row), first);
    } else {
        sgd_element<T>(w, g, b, SgdCoef<T>(row), sim_momentum_on(r, row), r.nesterov, first);
    }
}

}  // namespace fastdecay
