"""The CUDA headers' math, checked on the host: no GPU needed.

``kernels/schedule.cuh``, ``kernels/philox.cuh`` and ``kernels/update_math.cuh``
are ``__host__ __device__`` code. Here the host C++ compiler builds them (with
``__host__``/``__device__`` defined away) into a small shared library that ctypes
drives, and the results are compared with the Numba CPU backend and
``fastdecay.reference`` on random inputs. Both sides use the same float64
operations in the same order and the same libm, so they agree bit for bit
(``assert_array_equal``) unless a comment says otherwise. The builds use
``-ffp-contract=off``: no a*b + c fused into an FMA that the CPU side does not
fuse (the Philox normals need it; ``philox.cuh`` uses no libm but sqrt).
"""

import contextlib
import ctypes
import importlib
import os
import pathlib
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

import fastdecay as fd
from fastdecay import _layout as L
from fastdecay import _rules as R

CXX = os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++") or shutil.which("c++")
if CXX is None:  # pragma: no cover - every supported CI image has one
    pytest.skip("no host C++ compiler (g++, clang++ or c++) in PATH", allow_module_level=True)

KERNELS = pathlib.Path(__file__).resolve().parents[1] / "kernels"

SHIM = r"""
#include "schedule.cuh"
#include "philox.cuh"
#include "update_math.cuh"
using namespace fastdecay;

// The per-element loops of kernels/updates.cu without the GPU's chunking and vector loads.
template <typename T>
void sgd_loop(T* w, const T* g, T* buf, i64 n, const double* lr, int lr_seg, const double* wd, int wd_seg,
              double step, const double* mom, int mom_seg, double dampening, int nesterov, int decoupled,
              int maximize, int lr_in_buffer, int on_drop, double grad_scale, double found_inf) {
    if (found_inf != 0.0) return;
    const double momentum = lr_at(mom, mom_seg, 0, step);
    const SgdCoef<T> c(sgd_step_scalars(lr, lr_seg, wd, wd_seg, step, momentum, dampening, nesterov, decoupled,
                                        maximize, lr_in_buffer, on_drop));
    const T inv = (T)grad_scale;
    const bool use_momentum = momentum != 0.0;
    for (i64 i = 0; i < n; ++i) {
        T b = use_momentum ? buf[i] : (T)0;
        sgd_element<T>(w[i], grad_scale != 1.0 ? g[i] / inv : g[i], b, c, use_momentum, nesterov != 0, step == 0.0);
        if (use_momentum) buf[i] = b;
    }
}

template <typename T>
void adam_loop(T* w, const T* g, T* m, T* v, T* vmax, i64 n, const double* lr, int lr_seg, const double* wd,
               int wd_seg, double step, const double* b1, int b1_seg, double beta2, double eps, int decoupled,
               int maximize, int amsgrad, double grad_scale, double found_inf) {
    if (found_inf != 0.0) return;
    const double beta1 = lr_at(b1, b1_seg, 0, step);
    const AdamCoef<T> c(adam_step_scalars(lr, lr_seg, wd, wd_seg, step, beta1, beta2, eps, decoupled, maximize));
    const T inv = (T)grad_scale;
    for (i64 i = 0; i < n; ++i) {
        T x = amsgrad ? vmax[i] : (T)0;
        adam_element<T>(w[i], grad_scale != 1.0 ? g[i] / inv : g[i], m[i], v[i], x, c, amsgrad != 0, step == 0.0);
        if (amsgrad) vmax[i] = x;
    }
}

#include "updates.cu"
#include "simulate.cu"

// Every (block, thread) of a launch in turn: the kernels' own bodies on the host.
#define FD_EMULATE(call)                                                                             \
    for (i64 b = 0; b < n_blocks; ++b)                                                               \
        for (i64 th = 0; th < n_threads; ++th) {                                                     \
            const Grid gr = {b, n_blocks, th, n_threads};                                            \
            call;                                                                                    \
        }

#include "schedule.cu"

extern "C" {
void fd_kernel_schedule_points_f64(i64 n_blocks, i64 n_threads, const double* table, int n_segments, const i64* rows,
                                   const double* steps, double* out, i64 n) {
    FD_EMULATE(schedule_points<double>(gr, table, n_segments, rows, steps, out, n))
}
void fd_kernel_schedule_points_f32(i64 n_blocks, i64 n_threads, const double* table, int n_segments, const i64* rows,
                                   const double* steps, float* out, i64 n) {
    FD_EMULATE(schedule_points<float>(gr, table, n_segments, rows, steps, out, n))
}
void fd_kernel_schedule_table_f64(i64 n_blocks, i64 n_threads, i64 n_blocks_y, const double* table, int n_segments,
                                  i64 n_rows, double first, const double* steps, double* out, i64 n) {
    for (i64 y = 0; y < n_blocks_y; ++y)
        FD_EMULATE(schedule_table<double>(gr, y, n_blocks_y, table, n_segments, n_rows, first, steps, out, n))
}
void fd_kernel_schedule_table_f32(i64 n_blocks, i64 n_threads, i64 n_blocks_y, const double* table, int n_segments,
                                  i64 n_rows, double first, const double* steps, float* out, i64 n) {
    for (i64 y = 0; y < n_blocks_y; ++y)
        FD_EMULATE(schedule_table<float>(gr, y, n_blocks_y, table, n_segments, n_rows, first, steps, out, n))
}
void fd_kernel_philox_fill(i64 n_blocks, i64 n_threads, u64 seed, u64 first, u32 step, i64 n, i64 d, u32* words,
                           double* normals) {
    FD_EMULATE(philox_fill_body(gr, seed, first, step, n, d, words, normals))
}
void fd_kernel_step_increment(i64 n_blocks, i64 n_threads, void* step, int code, const void* found_inf, int inf_code) {
    (void)n_blocks; (void)n_threads;
    step_increment_body(step, code, found_inf, inf_code);
}
int fd_updates_layout(int i) { return i == 0 ? (int)CHUNK : i == 1 ? (int)N_FIELDS : (int)TABLE_CHUNK; }
#define FD_HOST_UPDATES(P, S, NAME)                                                                  \
    void fd_kernel_sgd_##NAME(i64 n_blocks, i64 n_threads, FD_SGD_ARGS) {                            \
        FD_EMULATE((sgd_body<P, S>(gr, FD_SGD_PASS)))                                                \
    }                                                                                                \
    void fd_kernel_adam_##NAME(i64 n_blocks, i64 n_threads, FD_ADAM_ARGS) {                          \
        FD_EMULATE((adam_body<P, S>(gr, FD_ADAM_PASS)))                                              \
    }                                                                                                \
    void fd_kernel_lion_##NAME(i64 n_blocks, i64 n_threads, FD_LION_ARGS) {                          \
        FD_EMULATE((lion_body<P, S>(gr, FD_LION_PASS)))                                              \
    }
FD_HOST_UPDATES(float, float, f32)
FD_HOST_UPDATES(double, double, f64)
FD_HOST_UPDATES(float, bf16, f32_bf16)
FD_HOST_UPDATES(bf16, float, bf16_f32)
FD_HOST_UPDATES(bf16, bf16, bf16)
FD_HOST_UPDATES(f16, float, f16_f32)
FD_HOST_UPDATES(f16, bf16, f16_bf16)
void fd_bf16_round_trip(const float* x, unsigned short* bits, float* back, i64 n) {
    for (i64 i = 0; i < n; ++i) {
        bits[i] = float_to_bf16(x[i]).bits;
        back[i] = bf16_to_float(float_to_bf16(x[i]));
    }
}
void fd_f16_round_trip(const float* x, unsigned short* bits, float* back, i64 n) {
    for (i64 i = 0; i < n; ++i) {
        bits[i] = float_to_f16(x[i]).bits;
        back[i] = f16_to_float(float_to_f16(x[i]));
    }
}
void fd_kernel_simulate_fast_f32(i64 n_blocks, i64 n_threads, FD_FAST_ARGS(float)) {
    FD_EMULATE(simulate_fast_body<float>(gr, FD_FAST_PASS))
}
void fd_kernel_simulate_fast_f64(i64 n_blocks, i64 n_threads, FD_FAST_ARGS(double)) {
    FD_EMULATE(simulate_fast_body<double>(gr, FD_FAST_PASS))
}
void fd_kernel_simulate_coefficients_f32(i64 n_blocks, i64 n_threads, FD_COEF_ARGS(float)) {
    FD_EMULATE(coefficients_body<float>(gr, FD_COEF_PASS))
}
void fd_kernel_simulate_coefficients_f64(i64 n_blocks, i64 n_threads, FD_COEF_ARGS(double)) {
    FD_EMULATE(coefficients_body<double>(gr, FD_COEF_PASS))
}
void fd_kernel_simulate_f32(i64 n_blocks, i64 n_threads, FD_SIM_ARGS(float)) {
    FD_EMULATE(simulate_body<float>(gr, FD_SIM_PASS))
}
void fd_kernel_simulate_f64(i64 n_blocks, i64 n_threads, FD_SIM_ARGS(double)) {
    FD_EMULATE(simulate_body<double>(gr, FD_SIM_PASS))
}
void fd_sgd_f32(float* w, const float* g, float* b, i64 n, const double* lr, int ls, const double* wd, int ws,
                double step, const double* mom, int ms, double damp, int nest, int dec, int maxi, int lib, int od,
                double gs, double fi) {
    sgd_loop<float>(w, g, b, n, lr, ls, wd, ws, step, mom, ms, damp, nest, dec, maxi, lib, od, gs, fi);
}
void fd_sgd_f64(double* w, const double* g, double* b, i64 n, const double* lr, int ls, const double* wd, int ws,
                double step, const double* mom, int ms, double damp, int nest, int dec, int maxi, int lib, int od,
                double gs, double fi) {
    sgd_loop<double>(w, g, b, n, lr, ls, wd, ws, step, mom, ms, damp, nest, dec, maxi, lib, od, gs, fi);
}
void fd_adam_f32(float* w, const float* g, float* m, float* v, float* x, i64 n, const double* lr, int ls,
                 const double* wd, int ws, double step, const double* b1, int b1s, double b2, double eps, int dec,
                 int maxi, int ams, double gs, double fi) {
    adam_loop<float>(w, g, m, v, x, n, lr, ls, wd, ws, step, b1, b1s, b2, eps, dec, maxi, ams, gs, fi);
}
void fd_adam_f64(double* w, const double* g, double* m, double* v, double* x, i64 n, const double* lr, int ls,
                 const double* wd, int ws, double step, const double* b1, int b1s, double b2, double eps, int dec,
                 int maxi, int ams, double gs, double fi) {
    adam_loop<double>(w, g, m, v, x, n, lr, ls, wd, ws, step, b1, b1s, b2, eps, dec, maxi, ams, gs, fi);
}
int fd_rule_code(int i) {
    const int v[] = {ON_DROP_KEEP, ON_DROP_RESET, ON_DROP_RESCALE, RULE_GD, RULE_MOMENTUM, RULE_LR_IN_BUFFER,
                     RULE_NESTEROV, RULE_ADAM, RULE_ADAMW, RULE_LION};
    return v[i];
}
int fd_layout(int i) {
    const int v[] = {WIDTH, START, ORIGIN, KIND, P0, KIND_CONSTANT, KIND_EXPONENTIAL, KIND_INVERSE_TIME,
                     KIND_POLYNOMIAL, KIND_COSINE, KIND_COSINE_RESTARTS, KIND_CYCLIC, KIND_ONE_MINUS_POWER,
                     KIND_TABULATED, KIND_PRODUCT, KIND_COSINE_POWER};
    return v[i];
}
void fd_lr_at(const double* table, int n_segments, const i64* rows, const double* t, double* out, i64 n) {
    for (i64 i = 0; i < n; ++i) out[i] = lr_at(table, n_segments, rows[i], t[i]);
}
void fd_drop_ratio(const double* table, int n_segments, const i64* rows, const double* t, double* out, i64 n) {
    for (i64 i = 0; i < n; ++i) out[i] = drop_ratio(table, n_segments, rows[i], t[i]);
}
void fd_philox(const u32* counters, const u32* keys, u32* out, i64 n) {
    for (i64 i = 0; i < n; ++i) {
        Philox4 r = philox4x32_10(counters[4 * i], counters[4 * i + 1], counters[4 * i + 2], counters[4 * i + 3],
                                  keys[2 * i], keys[2 * i + 1]);
        for (int j = 0; j < 4; ++j) out[4 * i + j] = r.x[j];
    }
}
void fd_normals(u64 seed, const u64* trajectory, const u32* step, const u32* coordinate, double* out, i64 n) {
    for (i64 i = 0; i < n; ++i) out[i] = philox_normal(seed, trajectory[i], step[i], coordinate[i]);
}
void fd_log_unit(const i64* k, double* out, i64 n) { for (i64 i = 0; i < n; ++i) out[i] = log_unit(k[i]); }
void fd_cos_two_pi(const i64* j, double* out, i64 n) { for (i64 i = 0; i < n; ++i) out[i] = cos_two_pi(j[i]); }
void fd_sin_two_pi(const i64* j, double* out, i64 n) {
    for (i64 i = 0; i < n; ++i) out[i] = sincos_two_pi(j[i]).sin;
}
}
"""


def _ptr(a):
    return a.ctypes.data_as(ctypes.c_void_p)


@pytest.fixture(scope="session")
def host(tmp_path_factory):
    """The headers built for the host once per session, loaded with ctypes."""
    build = tmp_path_factory.mktemp("cuda_host")
    (build / "shim.cpp").write_text(SHIM)
    lib = build / "libfdhost.so"
    cmd = [CXX, "-std=c++17", "-O2", "-ffp-contract=off", "-fPIC", "-shared", "-Wall", "-Werror", "-Wno-unknown-pragmas",
           f"-I{KERNELS}", str(build / "shim.cpp"), "-o", str(lib), "-lm"]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, f"{' '.join(cmd)}\n{run.stderr}"
    dll = ctypes.CDLL(str(lib))
    for name in ("fd_lr_at", "fd_drop_ratio", "fd_philox", "fd_normals", "fd_log_unit", "fd_cos_two_pi",
                 "fd_sin_two_pi"):
        getattr(dll, name).restype = None
    dll.fd_layout.restype = ctypes.c_int
    dll.fd_rule_code.restype = ctypes.c_int
    dll.fd_updates_layout.restype = ctypes.c_int
    P, I64, INT, D = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_double
    for dt in ("f32", "f64"):
        getattr(dll, f"fd_sgd_{dt}").argtypes = [P, P, P, I64, P, INT, P, INT, D, P, INT, D] + [INT] * 5 + [D, D]
        getattr(dll, f"fd_adam_{dt}").argtypes = [P] * 5 + [I64, P, INT, P, INT, D, P, INT, D, D, INT, INT, INT, D, D]
        getattr(dll, f"fd_sgd_{dt}").restype = None
        getattr(dll, f"fd_adam_{dt}").restype = None
    dll.fd_normals.argtypes = [ctypes.c_uint64] + [ctypes.c_void_p] * 4 + [ctypes.c_int64]
    return dll


def host_eval(host, fn, table, rows, t):
    table = np.ascontiguousarray(table, dtype=np.float64)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    t = np.ascontiguousarray(t, dtype=np.float64)
    out = np.empty(t.shape)
    getattr(host, fn)(_ptr(table), ctypes.c_int(table.shape[1]), _ptr(rows), _ptr(t), _ptr(out),
                      ctypes.c_int64(t.size))
    return out


def test_layout_constants_match_python(host):
    names = ["WIDTH", "START", "ORIGIN", "KIND", "P0", "CONSTANT", "EXPONENTIAL", "INVERSE_TIME",
             "POLYNOMIAL", "COSINE", "COSINE_RESTARTS", "CYCLIC", "ONE_MINUS_POWER", "TABULATED", "PRODUCT",
             "COSINE_POWER"]
    assert [host.fd_layout(i) for i in range(len(names))] == [getattr(L, n) for n in names]
    assert set(L.KIND_NAMES) == {getattr(L, n) for n in names[5:]}, "a primitive kind the header does not know"


def test_rule_codes_match_python(host):
    names = ["ON_DROP_KEEP", "ON_DROP_RESET", "ON_DROP_RESCALE", "GD", "MOMENTUM", "LR_IN_BUFFER", "NESTEROV",
             "ADAM", "ADAMW", "LION"]
    assert [host.fd_rule_code(i) for i in range(len(names))] == [getattr(R, n) for n in names]
    assert sorted(r.code for r in R.RULES) == [getattr(R, n) for n in names[3:]], "a rule the header does not know"
    assert [R.ON_DROP_CODES[k] for k in R.ON_DROP] == [0, 1, 2]


# ----------------------------------------------------------------------------- schedules


def factory_schedules():
    """Every factory and composition, with batches and awkward parameters."""
    return {
        "constant": fd.constant(0.3),
        "step": fd.step(0.1, 0.5, 7),
        "multistep": fd.multistep(1.0, 0.1, [3, 5, 5, 40]),
        "exponential": fd.exponential(0.1, gamma=np.linspace(0.9, 0.9999, 7)),
        "exponential_rate": fd.exponential(0.2, rate=0.013, decay_steps=3.5),
        "exponential_staircase": fd.exponential(0.1, half_life=11.0, decay_steps=4, staircase=True),
        "inverse_time": fd.inverse_time(0.5, 0.02, decay_steps=3, staircase=True),
        "polynomial": fd.polynomial(0.1, 123, power=2.5, end_lr=0.001),
        "polynomial_cycle": fd.polynomial(0.1, 37, power=0.5, end_lr=0.01, cycle=True),
        "cosine": fd.cosine(0.1, 300, min_lr=[0.0, 0.01]),
        "cosine_restarts": fd.cosine_restarts(0.1, 10, period_mult=1, min_lr=0.001),
        "cosine_restarts_mult": fd.cosine_restarts(0.1, 7, period_mult=2, min_lr=0.0),
        "cosine_restarts_mult3": fd.cosine_restarts(0.05, 3, period_mult=3),
        "linear": fd.linear(0.001, 0.1, 77),
        "piecewise": fd.piecewise([10, 20, 300], [0.1, 0.05, 0.2, 0.001]),
        "warmup": fd.warmup(fd.cosine(0.1, 500), 50, start_lr=1e-4),
        "join": fd.join([fd.constant(0.1), fd.exponential(0.1, gamma=0.99), fd.linear(0.05, 0.0, 100)], [30, 400]),
        "one_cycle": fd.one_cycle(0.1, 1000),
        "cyclic": fd.cyclic(0.001, 0.1, 20),
        "cyclic_tri2": fd.cyclic(0.001, 0.1, 20, step_size_down=13, mode="triangular2"),
        "cyclic_exp": fd.cyclic(0.001, 0.1, 25, mode="exp_range", gamma=0.999),
        "inverse_sqrt": fd.inverse_sqrt(0.1, 100),
        "wsd": fd.wsd(0.1, 1000, warmup_steps=50, decay_steps=200),
        "stack": fd.stack([fd.step(0.1, 0.5, 10), fd.cosine(0.2, 100), fd.warmup(fd.constant(0.3), 5)]),
        "tabulated": fd.tabulated(np.abs(np.sin(np.arange(2 * 613).reshape(2, 613) / 50.0))),
        "tabulated_steps": fd.join([fd.cosine(0.1, 50), fd.tabulated(fd.step(0.1, 0.5, 30).table(700))], [40]),
        "product": fd.warmup(fd.one_cycle(0.1, 1000) * fd.tabulated(np.linspace(1.0, 0.5, 300)), 20)
        * fd.step(1.0, 0.5, [90, 200]),
        "product_of_levels": fd.multistep(1.0, 0.5, [30, 200]) * fd.piecewise([100], [1.0, 0.3]),
        "one_cycle_three_phase_linear": fd.one_cycle(0.1, 1000, three_phase=True, anneal_strategy="linear"),
        "one_cycle_momentum": fd.one_cycle(0.1, 777, pct_start=0.25, three_phase=True).momentum,
        "cyclic_momentum": fd.cyclic(0.001, 0.1, 20, mode="exp_range", gamma=0.999).momentum,
        "cosine_cycles_exponent": fd.cosine(0.1, 300, min_lr=0.01, num_cycles=[0.5, 1.5], exponent=[2.0, 0.7]),
        "cosine_restarts_decay": fd.cosine_restarts(0.1, 7, period_mult=2, min_lr=0.01, cycle_decay=0.8,
                                                    decay_amplitude=True, cycle_limit=5),
        "cosine_restarts_timm": fd.cosine_restarts(0.1, 50, min_lr=1e-3, cycle_decay=[0.5, 0.9], cycle_limit=7),
        "exponential_end": fd.exponential(0.1, gamma=[0.99, 0.9, 1.01], staircase=True, decay_steps=3,
                                          end_lr=[0.01, 0.05, 0.2]),
        "warmup_no_prefix": fd.warmup(fd.multistep(0.1, 0.5, [5, 60]), 30, start_lr=1e-3, shape="exponential",
                                      prefix=False),
        "wsd_cosine_warmup": fd.wsd(0.1, 1000, warmup_steps=50, decay_steps=200, warmup_shape="cosine"),
        "piecewise_right": fd.piecewise([10, 20, 300], [0.1, 0.05, 0.2, 0.001], closed="right"),
        "inverse_sqrt_timescale": fd.inverse_sqrt(0.1, 100, timescale=1000),
        "stack_with_tables": fd.stack([fd.tabulated([0.3, 0.2, 0.1]), fd.cosine(0.1, 90) * fd.step(1.0, 0.5, 9)]),
    }


SCHEDULES = factory_schedules()


def cpu_points(table, rows, t):
    from fastdecay._cpu import schedule_tables as cpu

    table = np.ascontiguousarray(table)
    table.setflags(write=False)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    t = np.ascontiguousarray(t, dtype=np.float64)
    rows.setflags(write=False)
    t.setflags(write=False)
    out = np.empty(t.shape)
    cpu.eval_points(table, rows, t, out)
    return out


def cpu_drop_ratios(table, rows, t):
    from numba import njit

    from fastdecay._cpu import schedule as cpu

    @njit
    def many(table, rows, t, out):
        for i in range(out.shape[0]):
            out[i] = cpu.drop_ratio(table, rows[i], t[i])

    out = np.empty(t.shape)
    many(np.ascontiguousarray(table), rows.astype(np.int64), t.astype(np.float64), out)
    return out


def all_points(table, n_steps):
    rows = np.repeat(np.arange(table.shape[0], dtype=np.int64), n_steps)
    t = np.tile(np.arange(n_steps, dtype=np.float64), table.shape[0])
    return rows, t


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_lr_at_equals_cpu_backend_for_every_factory(host, name):
    s = SCHEDULES[name]
    table = s.rows()
    rows, t = all_points(table, 1200)
    got = host_eval(host, "fd_lr_at", table, rows, t)
    np.testing.assert_array_equal(got, cpu_points(table, rows, t))
    # and the public closed form (s(t) through the CPU backend), shaped as the batch
    t_public = np.arange(1200).reshape((1200,) + (1,) * len(s.batch_shape))
    public = np.moveaxis(np.asarray(s(t_public)), 0, -1)
    np.testing.assert_array_equal(got.reshape(s.batch_shape + (1200,)), public)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_lr_at_matches_reference_closed_forms(host, name):
    """Against the plain-NumPy oracle, written from the definitions rather than the table:
    independent arithmetic, so agreement to float64 rounding (rtol 1e-12)."""
    from fastdecay import reference

    s = SCHEDULES[name]
    table = s.rows()
    rows, t = all_points(table, 1200)
    got = host_eval(host, "fd_lr_at", table, rows, t).reshape(s.batch_shape + (1200,))
    t_ref = np.arange(1200).reshape((1200,) + (1,) * len(s.batch_shape))
    want = np.moveaxis(reference.schedule_lr(s, t_ref), 0, -1)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_drop_ratio_equals_cpu_backend(host, name):
    table = SCHEDULES[name].rows()
    rows, t = all_points(table, 600)
    got = host_eval(host, "fd_drop_ratio", table, rows, t)
    np.testing.assert_array_equal(got, cpu_drop_ratios(table, rows, t))


def random_tables(rng, n_rows, n_segments):
    """Rows of random segments of every primitive, parameters anywhere in their valid range."""
    table = np.zeros((n_rows, n_segments, L.WIDTH))
    for r in range(n_rows):
        starts = np.sort(rng.integers(1, 1500, n_segments - 1))
        table[r, :, L.START] = np.concatenate([[0], starts])
        for k in range(n_segments):
            kind = int(rng.choice([0, 1, 2, 3, 4, 5, 6, 7, L.COSINE_POWER]))
            origin = table[r, k, L.START] - rng.choice([0.0, 0.0, rng.integers(0, 50), rng.uniform(0.0, 3.0)])
            lr = rng.uniform(1e-4, 1.0)
            T = float(rng.choice([rng.integers(1, 400), rng.uniform(1.0, 400.0)]))
            end = rng.uniform(0.0, lr)
            p = {
                L.CONSTANT: [lr],
                L.EXPONENTIAL: [lr, rng.uniform(0.5, 1.1), rng.choice([1.0, 3.0, 7.5]), rng.integers(0, 2)],
                L.INVERSE_TIME: [lr, rng.uniform(0.0, 0.5), rng.choice([1.0, 4.0]), rng.integers(0, 2),
                                 rng.choice([0.5, 1.0, 2.0])],
                L.POLYNOMIAL: [lr, T, rng.uniform(0.2, 4.0), end, rng.integers(0, 2)],
                L.COSINE: [lr, T, end],
                L.COSINE_RESTARTS: [lr, float(rng.integers(1, 60)), rng.choice([1.0, 1.5, 2.0, 3.0]), end,
                                    rng.choice([1.0, 0.8]), rng.choice([1.0, 0.5])],
                L.COSINE_POWER: [lr, T, end, rng.choice([1.0, 2.0, 3.0, rng.uniform(0.5, 4.0)]), rng.uniform(0.5, 3.0)],
                L.CYCLIC: [end, lr, float(rng.integers(1, 40)), float(rng.integers(1, 40)),
                           rng.choice([1.0, 0.5]), rng.choice([1.0, rng.uniform(0.99, 1.0)])],
                L.ONE_MINUS_POWER: [lr, T, rng.uniform(0.2, 3.0), end],
            }[kind]
            table[r, k, L.ORIGIN] = origin
            table[r, k, L.KIND] = kind
            table[r, k, L.P0:L.P0 + len(p)] = p
    if n_segments > 1:  # padding of a stack: unused trailing segments start at +inf
        table[0, -1, L.START] = np.inf
    return table


def test_lr_at_equals_cpu_backend_on_random_tables(host):
    rng = np.random.default_rng(20261125)
    for n_segments in (1, 2, 5):
        table = random_tables(rng, 64, n_segments)
        rows = rng.integers(0, 64, 20_000)
        t = rng.integers(0, 3000, 20_000).astype(np.float64)
        t[:64] = table[rows[:64] % 64, 0, L.START]  # the exact segment starts
        got = host_eval(host, "fd_lr_at", table, rows, t)
        want = cpu_points(table, rows, t)
        assert np.isfinite(want).all()
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(host_eval(host, "fd_drop_ratio", table, rows, t),
                                      cpu_drop_ratios(table, rows, t))


# ----------------------------------------------------------------------------- philox

KNOWN_ANSWERS = [  # Random123 kat_vectors: counter, key -> output
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


def host_philox(host, counters, keys):
    counters = np.ascontiguousarray(counters, dtype=np.uint32)
    keys = np.ascontiguousarray(keys, dtype=np.uint32)
    out = np.empty_like(counters)
    host.fd_philox(_ptr(counters), _ptr(keys), _ptr(out), ctypes.c_int64(counters.shape[0]))
    return out


def test_philox_known_answers(host):
    counters = np.array([c for c, _, _ in KNOWN_ANSWERS])
    keys = np.array([k for _, k, _ in KNOWN_ANSWERS])
    want = np.array([o for _, _, o in KNOWN_ANSWERS], dtype=np.uint32)
    np.testing.assert_array_equal(host_philox(host, counters, keys), want)


def test_philox_words_equal_cpu_generator(host):
    from fastdecay._cpu.philox import philox4x32_10

    rng = np.random.default_rng(7)
    counters = rng.integers(0, 2**32, (500, 4), dtype=np.uint64)
    keys = rng.integers(0, 2**32, (500, 2), dtype=np.uint64)
    want = np.array([[int(x) for x in philox4x32_10(*c, *k)] for c, k in zip(counters, keys)], dtype=np.uint32)
    np.testing.assert_array_equal(host_philox(host, counters, keys), want)


def test_normals_equal_cpu_generator_bit_for_bit(host):
    from fastdecay._cpu.philox import normal

    rng = np.random.default_rng(11)
    n = 4000
    trajectory = rng.integers(0, 2**63, n, dtype=np.uint64)
    trajectory[:100] = np.arange(100)
    step = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    coordinate = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    for seed in (0, 12345, 2**64 - 1):
        out = np.empty(n)
        host.fd_normals(ctypes.c_uint64(seed), _ptr(trajectory), _ptr(step), _ptr(coordinate), _ptr(out),
                        ctypes.c_int64(n))
        want = np.array([normal(np.uint64(seed), trajectory[i], step[i], coordinate[i]) for i in range(n)])
        np.testing.assert_array_equal(out, want)
        assert abs(out.mean()) < 0.1 and abs(out.std() - 1.0) < 0.1



PHILOX_SHIM = r"""
#include "philox.cuh"
using namespace fastdecay;
extern "C" {
void fd_log_unit(const i64* k, double* out, i64 n) { for (i64 i = 0; i < n; ++i) out[i] = log_unit(k[i]); }
void fd_cos_two_pi(const i64* j, double* out, i64 n) { for (i64 i = 0; i < n; ++i) out[i] = cos_two_pi(j[i]); }
void fd_sin_two_pi(const i64* j, double* out, i64 n) {
    for (i64 i = 0; i < n; ++i) out[i] = sincos_two_pi(j[i]).sin;
}
void fd_normals(u64 seed, const u64* trajectory, const u32* step, const u32* coordinate, double* out, i64 n) {
    for (i64 i = 0; i < n; ++i) out[i] = philox_normal(seed, trajectory[i], step[i], coordinate[i]);
}
}
"""


@pytest.fixture(scope="module")
def philox_native(tmp_path_factory):
    """philox.cuh alone, optimised for this CPU (-O3 -march=native: FMA instructions
    available, loops vectorised) with -ffp-contract=off, the flag the header asks for."""
    build = tmp_path_factory.mktemp("philox_native")
    (build / "philox.cpp").write_text(PHILOX_SHIM)
    lib = build / "libphilox.so"
    cmd = [CXX, "-std=c++17", "-O3", "-march=native", "-ffp-contract=off", "-fPIC", "-shared", "-Wall", "-Werror",
           "-Wno-unknown-pragmas", f"-I{KERNELS}", str(build / "philox.cpp"), "-o", str(lib), "-lm"]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, f"{' '.join(cmd)}\n{run.stderr}"
    dll = ctypes.CDLL(str(lib))
    for name in ("fd_log_unit", "fd_cos_two_pi", "fd_sin_two_pi", "fd_normals"):
        getattr(dll, name).restype = None
    dll.fd_normals.argtypes = [ctypes.c_uint64] + [ctypes.c_void_p] * 4 + [ctypes.c_int64]
    return dll


def _philox_arguments():
    rng = np.random.default_rng(13)
    ks = np.concatenate([[1, 2, 3, 2**52 - 1, 2**52, 2**52 + 1, 2**53 - 1, 2**53],
                         rng.integers(1, 2**53, 20_000), rng.integers(1, 2**24, 2000),
                         2**53 - rng.integers(0, 2**24, 2000),
                         [2**e + d for e in range(1, 53) for d in (-1, 0, 1)]]).astype(np.int64)
    quarter = rng.integers(0, 5, 4000).astype(np.int64) << 51
    js = np.concatenate([[0, 1, 2**50 - 1, 2**50, 2**51 - 1, 2**51, 2**51 + 1, 2**52, 3 * 2**51, 2**53 - 1],
                         rng.integers(0, 2**53, 20_000), quarter + rng.integers(-2**20, 2**20, 4000)])
    return ks, np.clip(js, 0, 2**53 - 1).astype(np.int64)


@pytest.mark.parametrize("build", ["host", "philox_native"])
def test_log_unit_and_cos_two_pi_equal_cpu_bit_for_bit(build, request):
    from numba import njit

    from fastdecay._cpu.philox import log_unit, sincos_two_pi

    @njit
    def cpu(ks, js, logs, coss, sins):
        for i in range(ks.shape[0]):
            logs[i] = log_unit(ks[i])
        for i in range(js.shape[0]):
            coss[i], sins[i] = sincos_two_pi(js[i])

    ks, js = _philox_arguments()
    want_log, want_cos, want_sin = np.empty(ks.shape), np.empty(js.shape), np.empty(js.shape)
    cpu(ks, js, want_log, want_cos, want_sin)
    lib = request.getfixturevalue(build)
    got_log, got_cos, got_sin = np.empty(ks.shape), np.empty(js.shape), np.empty(js.shape)
    lib.fd_log_unit(_ptr(ks), _ptr(got_log), ctypes.c_int64(ks.size))
    lib.fd_cos_two_pi(_ptr(js), _ptr(got_cos), ctypes.c_int64(js.size))
    lib.fd_sin_two_pi(_ptr(js), _ptr(got_sin), ctypes.c_int64(js.size))
    np.testing.assert_array_equal(got_log.view(np.uint64), want_log.view(np.uint64))  # signed zeros too
    np.testing.assert_array_equal(got_cos.view(np.uint64), want_cos.view(np.uint64))
    np.testing.assert_array_equal(got_sin.view(np.uint64), want_sin.view(np.uint64))


def test_normals_of_the_native_build_equal_cpu_generator(philox_native):
    from fastdecay._cpu.philox import fill_normals

    seed, first, step, n, d = 2**63 + 5, 2**35 - 100, 7, 3000, 4
    want = np.empty((n, d))
    fill_normals(np.uint64(seed), np.uint64(first), np.uint32(step), d, want)
    trajectory = np.repeat(np.arange(n, dtype=np.uint64) + np.uint64(first), d)
    steps = np.full(n * d, step, dtype=np.uint32)
    coordinate = np.tile(np.arange(d, dtype=np.uint32), n)
    got = np.empty(n * d)
    philox_native.fd_normals(ctypes.c_uint64(seed), _ptr(trajectory), _ptr(steps), _ptr(coordinate), _ptr(got),
                             ctypes.c_int64(n * d))
    np.testing.assert_array_equal(got.reshape(n, d), want)


# ----------------------------------------------------------------------------- update rules

ON_DROP = R.ON_DROP_CODES
SUFFIX = {np.float32: "f32", np.float64: "f64"}

SGD_CASES = [
    dict(momentum=0.0),
    dict(momentum=0.9),
    dict(momentum=0.9, nesterov=True),
    dict(momentum=0.8, dampening=0.3, weight_decay=0.01),
    dict(momentum=0.9, weight_decay=0.05, decoupled=True, maximize=True),
    dict(momentum=0.9, lr_in_buffer=True),
    dict(momentum=0.9, lr_in_buffer=True, nesterov=True),
    dict(momentum=0.9, on_drop="reset", grad_scale=1024.0),
    dict(momentum=0.9, on_drop="rescale", weight_decay=0.01),
    dict(momentum=0.0, weight_decay=0.02, grad_scale=3.0),
    dict(momentum=fd.one_cycle(0.1, 60, three_phase=True).momentum, nesterov=True),
    dict(momentum=fd.tabulated(np.linspace(0.0, 0.9, 30)), dampening=0.1, on_drop="rescale"),
]
ADAM_CASES = [
    dict(),
    dict(decoupled=False, weight_decay=0.1),
    dict(amsgrad=True),
    dict(amsgrad=True, maximize=True, betas=(0.8, 0.99), eps=1e-6),
    dict(grad_scale=65536.0, weight_decay=0.0),
    dict(betas=(fd.one_cycle(0.1, 80, anneal_strategy="linear").momentum, 0.99)),
]


def assert_update_close(got, want, dtype):
    """Bit for bit: neither side lets the compiler contract a*b + c (the CPU kernels
    compile without ``fastmath``, the CUDA code with ``--fmad=false``, this build with
    ``-ffp-contract=off``), and the multiply-adds the rules want are explicit ``fma``
    on both (one rounding everywhere)."""
    np.testing.assert_array_equal(got, want)


def _float32_close(got, want, dtype):
    """torch's default float32 tolerance."""
    np.testing.assert_allclose(got, want, rtol=1.3e-6, atol=1e-5)


def _tables(lr, wd):
    return (np.ascontiguousarray(fd.schedules.as_schedule(lr).rows()), np.ascontiguousarray(fd.schedules.as_schedule(wd, "weight_decay").rows()))


def _state(rng, dtype, n, n_buffers):
    return [rng.standard_normal(n).astype(dtype) for _ in range(n_buffers)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", range(len(SGD_CASES)))
def test_sgd_rules_equal_cpu_backend_over_a_trajectory(host, case, dtype):
    from fastdecay._cpu import updates as cpu

    opts = dict(momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, decoupled=False, maximize=False,
                lr_in_buffer=False, on_drop="keep", grad_scale=1.0) | SGD_CASES[case]
    lr = fd.join([fd.step(0.1, 0.5, 7), fd.cosine(0.02, 50)], [30])
    lr_t, wd_t = _tables(lr, opts["weight_decay"])
    rng = np.random.default_rng(case)
    n = 1037
    w_host, buf_host = _state(rng, dtype, n, 2)
    w_cpu, buf_cpu = w_host.copy(), buf_host.copy()
    fn = getattr(host, f"fd_sgd_{SUFFIX[dtype]}")
    mom_t = np.ascontiguousarray(fd.schedules.as_schedule(opts["momentum"], "momentum").rows())
    for step in range(60):
        g = rng.standard_normal(n).astype(dtype) * dtype(opts["grad_scale"])
        fn(_ptr(w_host), _ptr(g), _ptr(buf_host), n, _ptr(lr_t), lr_t.shape[1], _ptr(wd_t), wd_t.shape[1],
           float(step), _ptr(mom_t), mom_t.shape[1], opts["dampening"], opts["nesterov"], opts["decoupled"],
           opts["maximize"], opts["lr_in_buffer"], ON_DROP[opts["on_drop"]], opts["grad_scale"], 0.0)
        cpu.fused_step("sgd", [[w_cpu], [g], [buf_cpu]], step=step, tables=(lr_t, wd_t, mom_t),
                     dampening=opts["dampening"], nesterov=opts["nesterov"], decoupled=opts["decoupled"],
                     maximize=opts["maximize"], lr_in_buffer=opts["lr_in_buffer"], on_drop=ON_DROP[opts["on_drop"]],
                     grad_scale=opts["grad_scale"], found_inf=None)
    assert_update_close(w_host, w_cpu, dtype)
    if isinstance(opts["momentum"], fd.Schedule) or opts["momentum"]:
        assert_update_close(buf_host, buf_cpu, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", range(len(ADAM_CASES)))
def test_adam_rules_equal_cpu_backend_over_a_trajectory(host, case, dtype):
    from fastdecay._cpu import updates as cpu

    opts = dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, decoupled=True, maximize=False, amsgrad=False,
                grad_scale=1.0) | ADAM_CASES[case]
    lr = fd.warmup(fd.exponential(1e-2, gamma=0.97), 10)
    lr_t, wd_t = _tables(lr, opts["weight_decay"])
    rng = np.random.default_rng(100 + case)
    n = 1037
    host_state = _state(rng, dtype, n, 4)
    host_state[3] = np.abs(host_state[3])
    cpu_state = [x.copy() for x in host_state]
    fn = getattr(host, f"fd_adam_{SUFFIX[dtype]}")
    b1, b2 = opts["betas"]
    b1_t = np.ascontiguousarray(fd.schedules.as_schedule(b1, "beta1").rows())
    for step in range(80):
        g = rng.standard_normal(n).astype(dtype) * dtype(opts["grad_scale"])
        w, m, v, x = host_state
        fn(_ptr(w), _ptr(g), _ptr(m), _ptr(v), _ptr(x), n, _ptr(lr_t), lr_t.shape[1], _ptr(wd_t), wd_t.shape[1],
           float(step), _ptr(b1_t), b1_t.shape[1], b2, opts["eps"], opts["decoupled"], opts["maximize"],
           opts["amsgrad"], opts["grad_scale"], 0.0)
        w, m, v, x = cpu_state
        cpu.fused_step("adam", [[w], [g], [m], [v], [x]], step=step, tables=(lr_t, wd_t, b1_t), beta2=b2,
                       eps=opts["eps"], decoupled=opts["decoupled"], maximize=opts["maximize"],
                       amsgrad=opts["amsgrad"], grad_scale=opts["grad_scale"], found_inf=None)
    for got, want in zip(host_state, cpu_state):
        assert_update_close(got, want, dtype)
    assert np.all(np.isfinite(host_state[0]))


def test_found_inf_changes_nothing(host):
    lr_t, wd_t = _tables(0.1, 0.01)
    w, g, m, v, x = (np.linspace(-1, 1, 33) + k for k in range(5))
    before = [a.copy() for a in (w, m, v, x)]
    beta1_t, momentum_t = _tables(0.9, 0.9)
    host.fd_adam_f64(_ptr(w), _ptr(g), _ptr(m), _ptr(v), _ptr(x), 33, _ptr(lr_t), 1, _ptr(wd_t), 1, 3.0,
                     _ptr(beta1_t), 1, 0.999, 1e-8, 1, 0, 1, 1.0, 1.0)
    host.fd_sgd_f64(_ptr(w), _ptr(g), _ptr(m), 33, _ptr(lr_t), 1, _ptr(wd_t), 1, 3.0, _ptr(momentum_t), 1, 0.0,
                    0, 0, 0, 0, 0, 1.0, 1.0)
    for a, b in zip((w, m, v, x), before):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- kernel bodies from the GPU plans

_CTYPES = {"i32": ctypes.c_int, "u32": ctypes.c_uint32, "i64": ctypes.c_int64, "u64": ctypes.c_uint64,
           "f64": ctypes.c_double}


def run_plan(host, name, args, n_blocks, n_threads):
    """Run the kernel body ``name`` over an emulated grid with the plan's arguments
    (arrays here are NumPy: their addresses stand in for device pointers)."""
    values = [ctypes.c_int64(n_blocks), ctypes.c_int64(n_threads)]
    for kind, value in args:
        if kind == "ptr":
            values.append(ctypes.c_void_p(None if value is None else value.ctypes.data))
        else:
            values.append(_CTYPES[kind](value))
    fn = getattr(host, name)
    fn.restype = None
    fn(*values)


def test_plan_constants_match_kernels(host):
    from fastdecay._gpu import _plan

    assert host.fd_updates_layout(0) == _plan.CHUNK
    assert host.fd_updates_layout(1) == _plan.N_FIELDS
    assert host.fd_updates_layout(2) == _plan.TABLE_CHUNK


def _misaligned(rng, dtype, n, offset):
    """A float array of n elements whose data starts ``offset`` elements past 16-byte alignment."""
    base = rng.standard_normal(n + 8).astype(dtype)
    start = (-base.ctypes.data % 16) // base.itemsize + offset
    return base[start:start + n]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rule", list(R.FUSED))
def test_update_kernels_on_tensor_lists_equal_cpu_backend(host, rule, dtype):
    """The GPU update kernels' bodies (chunk table, 16-byte vector path, scalar tails,
    misaligned tensors, grid striding) over a list of odd-sized tensors, step after step."""
    from fastdecay._cpu import updates as cpu
    from fastdecay._gpu import _plan

    rng = np.random.default_rng(5)
    sizes = [1, 7, _plan.CHUNK + 3, 3 * _plan.CHUNK - 1, 1000]
    offsets = [0, 1, 0, 0, 3]  # some tensors are not 16-byte aligned: scalar path
    n_state = 5 if rule == "adam" else 3  # w, g, buf | w, g, m, v, vmax | w, g, m
    gpu = [[_misaligned(rng, dtype, n, off) for _ in range(n_state)] for n, off in zip(sizes, offsets)]
    for t in gpu:
        if rule == "adam":
            t[3][:] = np.abs(t[3])
            t[4][:] = np.abs(t[4])
    cpu_state = [[a.copy() for a in t] for t in gpu]
    lr = fd.warmup(fd.step(0.05, 0.5, 4), 3)
    lr_t, wd_t = _tables(lr, 0.01)
    mom_t = np.ascontiguousarray(fd.cyclic(0.1, 1.0, 3).momentum.rows())  # momentum / beta1 scheduled
    step_ref = _plan.scalar_ref(0)
    for step in range(12):
        for t, c in zip(gpu, cpu_state):
            t[1][:] = c[1][:] = rng.standard_normal(t[1].shape[0]).astype(dtype)
        rows = [(t[0].ctypes.data, t[1].ctypes.data, t[2].ctypes.data,
                 t[3].ctypes.data if rule == "adam" else 0, t[4].ctypes.data if rule == "adam" else 0,
                 t[0].size) for t in gpu]
        table, n_chunks = _plan.tensor_table(rows)
        step_ref = _plan.scalar_ref(step)
        one, none = _plan.scalar_ref(1.0), _plan.scalar_ref(0.0)
        if rule == "sgd":
            args = _plan.sgd_args(table, n_chunks, lr_t, wd_t, step_ref, mom_t, 0.0, True, False, False, False, 2,
                                  one, none)
            cpu.fused_step("sgd", [[c[j] for c in cpu_state] for j in range(3)],
                         step=step, tables=(lr_t, wd_t, mom_t), dampening=0.0, nesterov=True,
                         decoupled=False, maximize=False, lr_in_buffer=False, on_drop=2, grad_scale=None,
                         found_inf=None)
        elif rule == "lion":
            args = _plan.lion_args(table, n_chunks, lr_t, wd_t, step_ref, mom_t, 0.99, step % 3 == 1, one, none)
            cpu.fused_step("lion", [[c[j] for c in cpu_state] for j in range(3)],
                          step=step, tables=(lr_t, wd_t, mom_t), beta2=0.99,
                          maximize=step % 3 == 1, grad_scale=None, found_inf=None)
        else:
            args = _plan.adam_args(table, n_chunks, lr_t, wd_t, step_ref, mom_t, 0.99, 1e-8, True, False, True,
                                   one, none)
            cpu.fused_step("adam", [[c[j] for c in cpu_state] for j in range(5)], step=step,
                           tables=(lr_t, wd_t, mom_t), beta2=0.99, eps=1e-8, decoupled=True, maximize=False,
                           amsgrad=True, grad_scale=None, found_inf=None)
        run_plan(host, f"fd_kernel_{rule}_{SUFFIX[dtype]}", args, n_blocks=3, n_threads=64)
    for t, c in zip(gpu, cpu_state):
        for a, b in zip(t, c):
            assert_update_close(a, b, dtype)


def test_update_kernel_reads_step_and_found_inf_from_memory(host):
    """step, grad_scale and found_inf given as (device) scalars are read inside the kernel."""
    from fastdecay._gpu import _plan

    lr_t, wd_t = _tables(fd.exponential(0.1, gamma=0.5), 0.0)
    w = np.ones(100)
    g = np.full(100, 8.0)
    table, n_chunks = _plan.tensor_table([(w.ctypes.data, g.ctypes.data, 0, 0, 0, 100)])
    step = np.array(3, dtype=np.int64)
    scale = np.array(4.0, dtype=np.float32)
    found_inf = np.array(0.0, dtype=np.float32)
    args = _plan.sgd_args(table, n_chunks, lr_t, wd_t, _plan.scalar_ref(step, step.dtype), _tables(0.0, 0.0)[0], 0.0,
                          False, False,
                          False, False, 0, _plan.scalar_ref(scale, scale.dtype),
                          _plan.scalar_ref(found_inf, found_inf.dtype))
    run_plan(host, "fd_kernel_sgd_f64", args, 2, 32)
    np.testing.assert_array_equal(w, 1.0 - 0.1 * 0.5**3 * 8.0 / 4.0)
    found_inf[...] = 1.0
    run_plan(host, "fd_kernel_sgd_f64", args, 2, 32)  # skipped: nothing changes
    np.testing.assert_array_equal(w, 1.0 - 0.1 * 0.5**3 * 8.0 / 4.0)


SIMULATIONS = [
    dict(curvature=np.linspace(0.1, 3.0, 37)[:, None], schedule=fd.step(0.5, 0.5, 9), optimizer="momentum",
         on_drop="rescale", every=7),
    dict(curvature=np.linspace(0.1, 3.0, 24).reshape(8, 3), schedule=fd.cosine(0.3, 40), optimizer="adamw",
         weight_decay=0.01, noise=0.1, every=5),
    dict(curvature=np.linspace(0.1, 2.0, 20).reshape(5, 4), schedule=fd.exponential(0.2, gamma=[[0.9], [0.99]]),
         optimizer="nesterov", noise=0.05),
    dict(curvature=np.linspace(0.5, 2.0, 30)[:, None],
         schedule=fd.stack([fd.exponential(0.3, gamma=0.97), fd.multistep(0.3, 0.3, [20, 50]), fd.constant(0.1)]
                           * 10), optimizer="momentum_lr_in_buffer", on_drop="reset", every=10),
    dict(curvature=np.linspace(0.5, 2.0, 6).reshape(3, 2),
         schedule=fd.stack([fd.exponential(0.3, gamma=0.97), fd.multistep(0.3, 0.3, [20, 50]), fd.cosine(0.1, 90)]),
         optimizer="adam", weight_decay=fd.exponential(0.01, gamma=1.01)),
    dict(curvature=np.linspace(0.5, 2.0, 50)[:, None], schedule=fd.constant(0.4), optimizer="gd", noise=0.3,
         seed=7, every=1),
    # shared rates, no noise, no recording: the lean kernel, every optimizer
    dict(curvature=np.linspace(0.1, 3.0, 45).reshape(15, 3), schedule=fd.warmup(fd.step(0.3, 0.5, 20), 10),
         optimizer="momentum", on_drop="rescale"),
    dict(curvature=np.linspace(0.1, 3.0, 40)[:, None], schedule=fd.cosine(0.2, 100), optimizer="nesterov",
         weight_decay=0.01),
    dict(curvature=np.linspace(0.1, 3.0, 40)[:, None], schedule=fd.one_cycle(0.2, 100), optimizer="adam",
         weight_decay=fd.exponential(0.01, gamma=0.99)),
    dict(curvature=np.linspace(0.1, 3.0, 40)[:, None], schedule=fd.constant(0.1), optimizer="momentum_lr_in_buffer"),
    dict(curvature=np.linspace(0.1, 3.0, 40)[:, None], schedule=fd.step(0.1, 0.9, 7), optimizer="gd"),
    # scheduled momentum / beta1: shared (the lean kernel and recording), per trajectory (d = 1 and d > 1)
    dict(curvature=np.linspace(0.1, 3.0, 40)[:, None], schedule=fd.one_cycle(0.3, 100), optimizer="nesterov",
         momentum=fd.one_cycle(0.3, 100).momentum),
    dict(curvature=np.linspace(0.1, 3.0, 45).reshape(15, 3), schedule=fd.one_cycle(0.05, 100), optimizer="adamw",
         betas=(fd.one_cycle(0.05, 100).momentum, 0.99), weight_decay=0.01, every=6),
    dict(curvature=np.linspace(0.1, 2.0, 20)[:, None], schedule=fd.multistep(0.3, 0.5, [30, 60]),
         optimizer="momentum_lr_in_buffer", on_drop="rescale", noise=0.1,
         momentum=fd.stack([fd.cyclic(0.01, 0.3, 11).momentum, fd.constant(0.7)] * 10)),
    dict(curvature=np.linspace(0.1, 2.0, 24).reshape(6, 4), schedule=fd.cosine(0.05, 100), optimizer="adam",
         betas=(fd.stack([fd.one_cycle(0.05, 100).momentum, fd.exponential(0.95, gamma=0.99)] * 3), 0.999)),
    dict(curvature=np.linspace(0.1, 2.0, 24).reshape(8, 3), schedule=fd.exponential(0.2, gamma=[[0.97], [0.99]]),
         optimizer="momentum", momentum=fd.cyclic(0.01, 0.3, 11).momentum, every=9),
    # Lion: the lean kernel, recording with d > 1, per-trajectory rates with noise, scheduled beta1
    dict(curvature=np.linspace(0.1, 3.0, 40)[:, None], schedule=fd.cosine(0.02, 100), optimizer="lion",
         betas=(0.9, 0.99), weight_decay=0.1),
    dict(curvature=np.linspace(0.1, 3.0, 45).reshape(15, 3), schedule=fd.warmup(fd.step(0.03, 0.5, 20), 10),
         optimizer="lion", betas=(0.95, 0.98), every=7),
    dict(curvature=np.linspace(0.1, 2.0, 20)[:, None], schedule=fd.exponential(0.02, gamma=np.linspace(0.97, 0.999, 20)),
         optimizer="lion", betas=(0.9, 0.99), noise=0.1, weight_decay=fd.linear(0.0, 0.2, 100)),
    dict(curvature=np.linspace(0.1, 2.0, 24).reshape(6, 4), schedule=fd.cosine(0.02, 100), optimizer="lion",
         betas=(fd.stack([fd.one_cycle(0.05, 100).momentum, fd.constant(0.9)] * 3), 0.99)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", range(len(SIMULATIONS)))
def test_simulate_kernel_equals_cpu_backend(host, monkeypatch, case, dtype):
    """fd.simulate with the CPU kernel swapped for the GPU kernel's body (run on the host
    from the GPU plan): the same call shape, chunk by chunk (per-trajectory rates carried
    across chunks, noise, recording): the same weights bit for bit; the recorded loss
    and displacement of a float32 run to float32 rounding (the device squares x in
    float32 before widening, the CPU widens first)."""
    from fastdecay._cpu import simulate as cpu
    from fastdecay._gpu import _plan

    kw = dict(SIMULATIONS[case], steps=100, dtype=dtype, chunk_steps=33)
    want = fd.simulate(**kw)

    def gpu_chunk(*args):
        opt, lr_rows, wd_rows, mom_rows, n_steps = args[5], args[7], args[11], args[15], args[26]
        coef_shape, bias_shape = _plan.simulate_scratch(opt, lr_rows, wd_rows, mom_rows, n_steps)
        coef = np.full(coef_shape, np.nan, dtype=dtype) if coef_shape else None
        bias = np.full(bias_shape, np.nan) if bias_shape else None
        for kernel, plan, threads in _plan.simulate_plan(*args, coef, bias):
            run_plan(host, f"fd_kernel_{kernel}_{SUFFIX[dtype]}", plan, n_blocks=2, n_threads=max(1, threads // 3))

    monkeypatch.setattr(cpu, "simulate_chunk", gpu_chunk)
    got = fd.simulate(**kw)
    assert np.isfinite(want.w).all()
    assert_update_close(got.w, want.w, dtype)
    if kw.get("every"):
        close = assert_update_close if dtype == np.float64 else _float32_close
        close(got.loss, want.loss, dtype)
        close(got.displacement, want.displacement, dtype)
        np.testing.assert_array_equal(got.lr, want.lr)  # rates: the same float64 operations, exactly


def _host_simulate_chunk(host, dtype):
    """The GPU plan of one simulation chunk, run by the kernels' bodies built for the host."""
    from fastdecay._gpu import _plan

    def gpu_chunk(*args):
        opt, lr_rows, wd_rows, mom_rows, n_steps = args[5], args[7], args[11], args[15], args[26]
        coef_shape, bias_shape = _plan.simulate_scratch(opt, lr_rows, wd_rows, mom_rows, n_steps)
        coef = np.full(coef_shape, np.nan, dtype=dtype) if coef_shape else None
        bias = np.full(bias_shape, np.nan) if bias_shape else None
        for kernel, plan, threads in _plan.simulate_plan(*args, coef, bias):
            run_plan(host, f"fd_kernel_{kernel}_{SUFFIX[dtype]}", plan, n_blocks=2, n_threads=max(1, threads // 3))

    return gpu_chunk


def test_simulate_rate_recurrence_equals_cpu_bit_for_bit(host, monkeypatch):
    """Per-trajectory rates (learning rate and weight decay) advance in the CUDA kernel by
    the CPU's recurrence, operation for operation: the same re-anchor period
    (SIM_REANCHOR), one multiplication a step for plain exponentials and constants,
    the closed form for other rows, the previous rate inside a step schedule's plateau.
    The carried rates agree bit for bit after every chunk of a 2300-step run (two
    re-anchors, chunk boundaries off the anchors); the weights to 1e-12 (per-trajectory
    AdamW with scheduled weight decay is not yet bit-identical between the two)."""
    import re

    from fastdecay._cpu import simulate as cpu

    period = re.search(r"REANCHOR = (\d+)", (KERNELS / "simulate.cu").read_text())
    assert period and int(period.group(1)) == cpu.SIM_REANCHOR
    lr = fd.stack([fd.exponential(0.3, gamma=0.9993), fd.exponential(0.2, gamma=0.999, decay_steps=2.5),
                   fd.step(0.3, 0.7, 300), fd.exponential(0.3, gamma=0.99, decay_steps=7, staircase=True),
                   fd.multistep(0.3, 0.5, [100, 1500]), fd.cosine(0.3, 2300), fd.constant(0.1),
                   fd.exponential(0.25, gamma=0.9997)])
    wd = fd.stack([fd.exponential(1e-3, gamma=1.0003), fd.step(1e-3, 0.5, 500), fd.constant(2e-3),
                   fd.exponential(1e-3, gamma=0.9991)] * 2)
    kw = dict(curvature=np.linspace(0.1, 1.0, 8)[:, None], schedule=lr, weight_decay=wd, optimizer="adamw",
              steps=2300, chunk_steps=700)
    states = {}

    def recording(name, chunk):
        def run(*args):
            chunk(*args)
            states.setdefault(name, []).append((args[9].copy(), args[13].copy()))  # lr_state, wd_state
        return run

    monkeypatch.setattr(cpu, "simulate_chunk", recording("cpu", cpu.simulate_chunk))
    want = fd.simulate(**kw)
    monkeypatch.setattr(cpu, "simulate_chunk", recording("gpu", _host_simulate_chunk(host, np.float64)))
    got = fd.simulate(**kw)
    assert len(states["cpu"]) == len(states["gpu"]) == 4
    for (lr_cpu, wd_cpu), (lr_gpu, wd_gpu) in zip(states["cpu"], states["gpu"]):
        np.testing.assert_array_equal(lr_gpu, lr_cpu)
        np.testing.assert_array_equal(wd_gpu, wd_cpu)
    # the recurrence stays within rounding of the closed form (two anchors passed)
    np.testing.assert_allclose(states["cpu"][-1][0], lr.table(np.array([2299]))[:, 0], rtol=2e-13)
    np.testing.assert_allclose(got.w, want.w, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- the CuPy wrappers on a host runtime


class HostRuntime(types.ModuleType):
    """``fastdecay._gpu._runtime`` with NumPy arrays for device arrays and the kernels'
    bodies (built for the host) for launches: the wrappers' own code, run without a GPU.
    ``devices`` maps ``id(array)`` to a pretend device number (default 0)."""

    def __init__(self, host):
        super().__init__("fastdecay._gpu._runtime")
        self.host = host
        self.xp = np
        self.devices = {}
        self.launches = []

    def is_torch(self, x):
        return False

    def device_of(self, x):
        return self.devices.get(id(x), 0)

    def pointer(self, x):
        return x.ctypes.data

    def as_array(self, x):
        return x

    def context(self, device, arrays=()):
        return contextlib.nullcontext()

    def constant(self, array, device):
        return np.ascontiguousarray(array)

    def empty(self, shape, dtype, device):
        return np.empty(shape, dtype)

    def current_device(self):
        return 0

    def multiprocessors(self, device):
        return 2

    def launch(self, file, name, grid, block, args, device):
        self.launches.append(name)
        values = [ctypes.c_int64(grid[0] if isinstance(grid, tuple) else grid), ctypes.c_int64(block)]
        if isinstance(grid, tuple):
            values.append(ctypes.c_int64(grid[1]))
        for kind, value in args:
            if kind == "ptr":
                values.append(ctypes.c_void_p(None if value is None else value.ctypes.data))
            else:
                values.append(_CTYPES[kind](value))
        fn = getattr(self.host, f"fd_kernel_{name}")
        fn.restype = None
        fn(*values)


@pytest.fixture
def gpu_on_host(host, monkeypatch):
    """The wrapper modules imported against a HostRuntime: (runtime, schedule, updates, simulate)."""
    import fastdecay._gpu as package

    runtime = HostRuntime(host)
    monkeypatch.setitem(sys.modules, "fastdecay._gpu._runtime", runtime)
    monkeypatch.setattr(package, "_runtime", runtime, raising=False)
    modules = []
    for name in ("schedule", "updates", "simulate"):
        monkeypatch.delitem(sys.modules, f"fastdecay._gpu.{name}", raising=False)
        modules.append(importlib.import_module(f"fastdecay._gpu.{name}"))
    yield (runtime, *modules)
    for name in ("schedule", "updates", "simulate"):
        sys.modules.pop(f"fastdecay._gpu.{name}", None)
        if hasattr(package, name):
            delattr(package, name)


@pytest.mark.parametrize("name", ["stack", "join", "cyclic_tri2", "exponential", "warmup"])
def test_gpu_evaluate_equals_cpu(gpu_on_host, name):
    runtime, schedule, _, _ = gpu_on_host
    s = SCHEDULES[name]
    t = np.arange(0, 700, 3).reshape((-1,) + (1,) * len(s.batch_shape))
    np.testing.assert_array_equal(schedule.evaluate(s, t), s(t))
    np.testing.assert_array_equal(schedule.evaluate(s, np.array(17)), s(17))
    np.testing.assert_array_equal(schedule.evaluate(s, t.astype(np.float32)), s(t))
    assert runtime.launches and set(runtime.launches) == {"schedule_points_f64"}


def test_gpu_evaluate_rejects_bad_steps(gpu_on_host):
    _, schedule, _, _ = gpu_on_host
    s = fd.step(0.1, 0.5, 3)
    with pytest.raises(ValueError, match="non-negative"):
        schedule.evaluate(s, np.array([1, -2]))
    with pytest.raises(ValueError, match="integer"):
        schedule.evaluate(s, np.array([1.5]))
    with pytest.raises(TypeError, match="dtype bool"):
        schedule.evaluate(s, np.array([True]))
    with pytest.raises(ValueError, match="broadcast"):
        schedule.evaluate(fd.exponential(0.1, gamma=[0.9, 0.8]), np.arange(3))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gpu_table_equals_cpu(gpu_on_host, dtype):
    from fastdecay._gpu import _plan

    _, schedule, _, _ = gpu_on_host
    s = SCHEDULES["stack"]
    got = schedule.table(s, 1000, dtype=dtype)
    assert got.shape == s.batch_shape + (1000,) and got.dtype == dtype
    np.testing.assert_array_equal(got, s(np.arange(1000)[:, None]).T.astype(dtype))  # closed forms, rounded once
    np.testing.assert_allclose(got, s.table(1000, dtype=dtype), rtol=1e-12 if dtype == np.float64 else 1e-7)
    # long rows of several segments: chunks, products inside exponential segments, segment changes mid-chunk
    for s in (fd.exponential(0.1, gamma=np.linspace(0.9, 0.99999, 5)), SCHEDULES["join"], SCHEDULES["warmup"],
              fd.stack([fd.join([fd.exponential(0.1, gamma=0.999), fd.step(0.05, 0.9, 100)], [5000]),
                        fd.multistep(0.1, 0.5, [16383, 16384, 20000])])):
        n = 2 * _plan.TABLE_CHUNK + 17
        got = schedule.table(s, n, dtype=np.float64)
        want = s(np.arange(n).reshape((-1,) + (1,) * len(s.batch_shape)))
        np.testing.assert_allclose(got, np.moveaxis(np.asarray(want), 0, -1), rtol=1e-13, atol=1e-300)
    steps = np.array([5, 0, 999, 123])
    out = np.full(s.batch_shape + (4,), np.nan, dtype=dtype)
    assert schedule.table(s, steps, dtype=dtype, out=out) is out
    np.testing.assert_array_equal(out, s.table(steps, dtype=dtype))
    with pytest.raises(ValueError, match="shape"):
        schedule.table(s, 5, out=np.empty((3, 4)))


def test_gpu_updates_wrapper_lists_dtypes_device_step(gpu_on_host):
    """Mixed-dtype lists (one launch per dtype), a device step read in the kernel and
    advanced by it, against the CPU backend."""
    from fastdecay._cpu import updates as cpu

    runtime, _, updates, _ = gpu_on_host
    rng = np.random.default_rng(3)
    dtypes = [np.float32, np.float64, np.float32]
    sizes = [5, 20_001, 300]
    gpu = [[rng.standard_normal(n).astype(dt) for _ in range(4)] for n, dt in zip(sizes, dtypes)]
    for t in gpu:
        t[3][:] = np.abs(t[3])
    ref = [[a.copy() for a in t] for t in gpu]
    lr_t, wd_t = _tables(fd.cosine(0.01, 30), 0.1)
    step = np.array(0, dtype=np.int64)  # "on the device"
    for k in range(25):
        for t, r in zip(gpu, ref):
            t[1][:] = r[1][:] = rng.standard_normal(t[1].size).astype(t[1].dtype)
        runtime.launches.clear()
        updates.adamw_step(*([t[j] for t in gpu] for j in range(4)), None, step=step, lr_table=lr_t, wd_table=wd_t,
                           beta1_table=_tables(0.9, 0.9)[0], beta2=0.999, eps=1e-8, decoupled=True, maximize=False, amsgrad=False,
                           grad_scale=None, found_inf=None, increment_step=True)
        assert sorted(runtime.launches) == ["adam_f32", "adam_f64", "step_increment"]
        cpu.fused_step("adam", [*([r[j] for r in ref] for j in range(4)), None], step=k,
                       tables=(lr_t, wd_t, _tables(0.9, 0.9)[0]), beta2=0.999, eps=1e-8, decoupled=True, maximize=False, amsgrad=False,
                       grad_scale=None, found_inf=None)
    assert int(step) == 25
    for t, r in zip(gpu, ref):
        for a, b in zip(t, r):
            assert_update_close(a, b, a.dtype.type)


def test_gpu_updates_wrapper_device_found_inf_and_grad_scale(gpu_on_host):
    from fastdecay._cpu import updates as cpu

    _, _, updates, _ = gpu_on_host
    w, g, buf = np.linspace(-1, 1, 50), np.linspace(2, 3, 50), np.zeros(50)
    w_ref, buf_ref = w.copy(), buf.copy()
    lr_t, wd_t = _tables(0.1, 0.0)
    kw = dict(lr_table=lr_t, wd_table=wd_t, momentum_table=_tables(0.9, 0.9)[0], dampening=0.0, nesterov=False,
              decoupled=False,
              maximize=False, lr_in_buffer=False, on_drop=0)
    skip = np.array(1.0, dtype=np.float32)
    updates.sgd_step([w], [g], [buf], step=0, grad_scale=np.array(8.0, np.float32), found_inf=skip, **kw)
    np.testing.assert_array_equal(w, w_ref)
    np.testing.assert_array_equal(buf, buf_ref)
    step = np.array(0, dtype=np.int64)
    updates.sgd_step([w], [g], [buf], step=step, grad_scale=2.0, found_inf=skip, increment_step=True, **kw)
    assert int(step) == 0  # a skipped update is not a step
    np.testing.assert_array_equal(w, w_ref)
    skip[...] = 0.0
    updates.sgd_step([w], [g], [buf], step=step, grad_scale=np.array(8.0, np.float32), found_inf=skip,
                     increment_step=True, **kw)
    assert int(step) == 1
    options = {key: value for key, value in kw.items() if not key.endswith("_table")}
    cpu.fused_step("sgd", [[w_ref], [g], [buf_ref]], step=0, grad_scale=8.0, found_inf=0.0,
                   tables=(kw["lr_table"], kw["wd_table"], kw["momentum_table"]), **options)
    assert_update_close(w, w_ref, np.float64)
    assert not np.array_equal(w, np.linspace(-1, 1, 50))


def test_gpu_updates_wrapper_refuses_mixed_devices_before_launch(gpu_on_host):
    runtime, _, updates, _ = gpu_on_host
    w = [np.ones(4), np.ones(4)]
    g = [np.ones(4), np.ones(4)]
    runtime.devices[id(w[1])] = 1
    lr_t, wd_t = _tables(0.1, 0.0)
    kw = dict(lr_table=lr_t, wd_table=wd_t, momentum_table=_tables(0.0, 0.0)[0], dampening=0.0, nesterov=False,
              decoupled=False,
              maximize=False, lr_in_buffer=False, on_drop=0, grad_scale=None, found_inf=None)
    with pytest.raises(ValueError, match=r"param\[1\] is on GPU 1 but param\[0\] is on GPU 0"):
        updates.sgd_step(w, g, None, step=0, **kw)
    del runtime.devices[id(w[1])]
    step = np.array(3)
    runtime.devices[id(step)] = 2
    with pytest.raises(ValueError, match="step is on GPU 2"):
        updates.sgd_step(w, g, None, step=step, **kw)
    with pytest.raises(TypeError, match="grad_scale on the device must be"):
        updates.sgd_step(w, g, None, step=0, **(kw | dict(grad_scale=np.array(2.0, np.float16))))
    with pytest.raises(ValueError, match="increment_step"):
        updates.sgd_step(w, g, None, step=0, increment_step=True, **kw)
    assert runtime.launches == []  # every refusal came before any launch
    for a in w + g:
        np.testing.assert_array_equal(a, 1.0)


@pytest.mark.parametrize("case", [0, 1, 2, 3, 4, 6, 11, 12, 13, 14])
def test_gpu_simulate_wrapper_equals_cpu(gpu_on_host, monkeypatch, case):
    from fastdecay._cpu import simulate as cpu

    runtime, _, _, simulate = gpu_on_host
    kw = dict(SIMULATIONS[case], steps=70, chunk_steps=25)
    want = fd.simulate(**kw)
    monkeypatch.setattr(cpu, "simulate_chunk", simulate.simulate_chunk)
    got = fd.simulate(**kw)
    adam = kw["optimizer"] in ("adam", "adamw")
    mom = kw.get("betas", (None,))[0] if adam else kw.get("momentum")
    per_mom = isinstance(mom, fd.Schedule) and mom.size > 1
    shared = kw["schedule"].size == 1 and not per_mom and not (isinstance(kw.get("weight_decay"), fd.Schedule)
                                                               and kw["weight_decay"].size > 1)
    fast = shared and not kw.get("noise") and not kw.get("every")
    # the coefficient kernel fills the shared table and a shared beta1's bias corrections
    assert set(runtime.launches) == ({"simulate_fast_f64"} if fast else {"simulate_f64"}) | (
        {"simulate_coefficients_f64"} if shared or (adam and not per_mom) else set())
    assert_update_close(got.w, want.w, np.float64)
    if kw.get("every"):
        np.testing.assert_array_equal(got.lr, want.lr)
        assert_update_close(got.loss, want.loss, np.float64)


def test_gpu_philox_fill_equals_cpu_generator(gpu_on_host):
    from fastdecay._cpu.philox import fill_normals, philox4x32_10

    _, _, _, simulate = gpu_on_host
    seed, first, n, d = 2**40 + 17, 2**32 - 3, 9, 5
    for step in (4_000_000_000, 4_000_000_001):  # the cos and the sin draw of one pair
        words, normals = simulate.philox_fill(seed, first, step, n, d)
        want = np.empty((n, d))
        fill_normals(np.uint64(seed), np.uint64(first), np.uint32(step), d, want)
        np.testing.assert_array_equal(normals, want)
        for i, k in [(0, 0), (3, 4), (8, 2)]:
            traj = first + i
            expect = philox4x32_10(traj & 0xFFFFFFFF, traj >> 32, step >> 1, k, seed & 0xFFFFFFFF, seed >> 32)
            assert [int(x) for x in words[i, k]] == [int(x) for x in expect]


# ----------------------------------------------------------------------------- import hygiene


def _python(code):
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def test_import_fastdecay_never_imports_cupy():
    code = ("import sys, numpy as np, fastdecay as fd; fd.step(0.1, 0.5, 3)(np.arange(5)); "
            "w = np.ones(3); fd.sgd_step(w, np.ones(3), step=0, lr=0.1); "
            "import fastdecay._gpu, fastdecay._gpu._source, fastdecay._gpu._plan; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('cupy', 'cupy_backends')))")
    assert _python(code).strip() == "[]"


@pytest.mark.parametrize("module", ["schedule", "updates", "simulate", "_runtime"])
def test_gpu_modules_without_cupy_say_what_to_install(module):
    """With CuPy absent (forced here, whether or not it is installed) the GPU modules,
    and so the public calls that reach them for device arrays, raise ImportError naming
    the extra to install."""
    code = (
        "import sys; sys.modules['cupy'] = None\n"
        "try:\n"
        f"    import fastdecay._gpu.{module}\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = _python(code)
    assert "pip install 'fastdecay[gpu]'" in out and "CuPy" in out, out


@pytest.mark.parametrize("kind", ["schedule", "updates", "simulate", "expected"])
def test_public_dispatch_of_device_arrays_without_cupy(kind):
    """A CUDA torch tensor reaches the GPU backend through the one backend switch
    (fastdecay._dispatch.kernels); without CuPy that is the clear ImportError (the tensor
    itself needs a GPU, so the switch is called directly)."""
    code = (
        "import sys; sys.modules['cupy'] = None\n"
        "from fastdecay import _dispatch\n"
        "print(_dispatch.kernels(%r, 'numpy').__name__)\n"
        "try:\n"
        "    _dispatch.kernels(%r, 'torch_cuda')\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    ) % (kind, kind)
    out = _python(code)
    assert out.startswith("fastdecay._cpu.") and "fastdecay[gpu]" in out, out
