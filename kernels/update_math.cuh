// The update rules, per step and per element: the CUDA twin of fastdecay/_cpu/rules.py.
//
// (a) Per-step scalars in float64, computed once per call (per thread on the
//     GPU, from a step counter that may live in device memory).
// (b) Per-element rules templated on the element type: every scalar already
//     cast to T, so float32 runs float32 math. Same operations in the same
//     order as the Numba rules (torch's single-tensor SGD and Adam), so with
//     FMA contraction off the host build reproduces the CPU backend bit for bit.
#pragma once

#include "common.cuh"
#include "schedule.cuh"

namespace fastdecay {

enum { ON_DROP_KEEP = 0, ON_DROP_RESET = 1, ON_DROP_RESCALE = 2 };

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
    *bc2_sqrt = pow(bias_correction2, 0.5);
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

// Everything an update kernel computes once per call from the step (as the
// Numba kernels do: row 0 of the lr and weight-decay tables).
FD_HD SgdScalars sgd_step_scalars(const double* lr_table, int lr_segments, const double* wd_table, int wd_segments,
                                  double step, double momentum, double dampening, bool nesterov, bool decoupled,
                                  bool maximize, bool lr_in_buffer, int on_drop) {
    const double lr = lr_at(lr_table, lr_segments, 0, step);
    const double wd = lr_at(wd_table, wd_segments, 0, step);
    const double scale = buffer_scale_at(lr_table, lr_segments, 0, step, on_drop);
    return sgd_scalars(lr, wd, step == 0.0, scale, momentum, dampening, nesterov, decoupled, maximize, lr_in_buffer);
}

FD_HD AdamScalars adam_step_scalars(const double* lr_table, int lr_segments, const double* wd_table, int wd_segments,
                                    double step, double beta1, double beta2, double eps, bool decoupled,
                                    bool maximize) {
    const double lr = lr_at(lr_table, lr_segments, 0, step);
    const double wd = lr_at(wd_table, wd_segments, 0, step);
    return adam_scalars(lr, wd, step, beta1, beta2, eps, decoupled, maximize);
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
    g = g + c.l2 * w;
    T d;
    if (use_momentum) {
        if (first) buf = c.grad_gain * g;
        else buf = c.buf_decay * buf + c.grad_gain * g;
        d = nesterov ? c.nest_grad * g + c.nest_buf * buf : buf;
    } else {
        d = g;
    }
    w = w * c.shrink;
    w = w + c.neg_lr * d;
}

// One element of Adam / AdamW / AMSGrad: updates w, m, v (and vmax with amsgrad).
template <typename T>
FD_HD void adam_element(T& w, T g, T& m, T& v, T& vmax, const AdamCoef<T>& c, bool amsgrad, bool first) {
    g = c.sign * g;
    w = w * c.shrink;
    g = g + c.l2 * w;
    if (first) {
        m = c.w1 * g;
        v = c.w2 * g * g;
    } else {
        m = m + c.w1 * (g - m);
        v = v * c.beta2 + c.w2 * g * g;
    }
    T denom;
    if (amsgrad) {
        if (first || v > vmax) vmax = v;
        denom = sqrt(vmax) / c.bc2_sqrt + c.eps;
    } else {
        denom = sqrt(v) / c.bc2_sqrt + c.eps;
    }
    w = w + c.neg_step_size * m / denom;
}

}  // namespace fastdecay
