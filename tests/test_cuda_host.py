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
import functools
import importlib
import inspect
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
from fastdecay import _validate as V

CXX = os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++") or shutil.which("c++")
if CXX is None:  # pragma: no cover - every supported CI image has one
    pytest.skip("no host C++ compiler (g++, clang++ or c++) in PATH", allow_module_level=True)

KERNELS = pathlib.Path(__file__).resolve().parents[1] / "kernels"

# The Philox normals' entry points, in the host build of every header (SHIM) and in the
# native build of philox.cuh alone (PHILOX_SHIM).
NORMALS_SHIM = r"""
extern "C" {
void fd_normals(u64 seed, const u64* trajectory, const u32* step, const u32* coordinate, float* out, i64 n) {
    for (i64 i = 0; i < n; ++i) out[i] = philox_normal(seed, trajectory[i], step[i], coordinate[i]);
}
void fd_log_u1(const u32* a, float* out, i64 n) { for (i64 i = 0; i < n; ++i) out[i] = log_u1(a[i]); }
void fd_sincos_turn(const u32* b, float* cos, float* sin, i64 n) {
    for (i64 i = 0; i < n; ++i) {
        const SinCos u = sincos_turn(b[i]);
        cos[i] = u.cos;
        sin[i] = u.sin;
    }
}
}
"""

SHIM = r"""
#include "schedule.cuh"
#include "philox.cuh"
#include "update_math.cuh"
using namespace fastdecay;

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
                           float* normals) {
    FD_EMULATE(philox_fill_body(gr, seed, first, step, n, d, words, normals))
}
void fd_kernel_step_increment(i64 n_blocks, i64 n_threads, void* step, int code, const void* found_inf, int inf_code) {
    (void)n_blocks; (void)n_threads;
    step_increment_body(step, code, found_inf, inf_code);
}
int fd_updates_layout(int i) {
    const int v[] = {CHUNK, N_FIELDS, TABLE_CHUNK, NUMBER_SLOTS, FLAG_SLOTS};
    return v[i];
}
// FUSED ENTRIES: host_fused_entries(), generated from fastdecay._rules.FUSED
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
void fd_kernel_simulate_noisy_f32(i64 n_blocks, i64 n_threads, FD_FAST_ARGS(float)) {
    FD_EMULATE(simulate_noisy_body<float>(gr, FD_FAST_PASS))
}
void fd_kernel_simulate_noisy_f64(i64 n_blocks, i64 n_threads, FD_FAST_ARGS(double)) {
    FD_EMULATE(simulate_noisy_body<double>(gr, FD_FAST_PASS))
}
void fd_kernel_simulate_coefficients_f32(i64 n_blocks, i64 n_threads, FD_COEF_ARGS(float)) {
    FD_EMULATE(coefficients_body<float>(gr, FD_COEF_PASS))
}
void fd_kernel_simulate_coefficients_f64(i64 n_blocks, i64 n_threads, FD_COEF_ARGS(double)) {
    FD_EMULATE(coefficients_body<double>(gr, FD_COEF_PASS))
}
void fd_kernel_simulate_f32(i64 n_blocks, i64 n_threads, FD_SIM_ARGS(float)) {
    FD_EMULATE((simulate_body<float, false>(gr, FD_SIM_PASS)))
}
void fd_kernel_simulate_f64(i64 n_blocks, i64 n_threads, FD_SIM_ARGS(double)) {
    FD_EMULATE((simulate_body<double, false>(gr, FD_SIM_PASS)))
}
void fd_kernel_simulate_trajectories_f32(i64 n_blocks, i64 n_threads, FD_SIM_ARGS(float)) {
    FD_EMULATE((simulate_body<float, true>(gr, FD_SIM_PASS)))
}
void fd_kernel_simulate_trajectories_f64(i64 n_blocks, i64 n_threads, FD_SIM_ARGS(double)) {
    FD_EMULATE((simulate_body<double, true>(gr, FD_SIM_PASS)))
}
int fd_rule_code(int i) {
    const int v[] = {ON_DROP_KEEP, ON_DROP_RESET, ON_DROP_RESCALE, RULE_GD, RULE_MOMENTUM, RULE_LR_IN_BUFFER,
                     RULE_NESTEROV, RULE_ADAM, RULE_ADAMW, RULE_LION};
    return v[i];
}
int fd_sim_rule(int code) {  // the simulation's flags of a rule, as bits
    const SimRule r = sim_rule(code);
    return (int)r.buffer | (int)r.second << 1 | (int)r.bias << 2 | (int)r.on_drop << 3;
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
}
"""


def host_fused_entries():
    """The host twins of the fused entry points (``fastdecay._gpu._source.fused_entries``):
    ``fd_kernel_<kernel>_<storage>(n_blocks, n_threads, <the entry point's arguments>)``
    runs the same body over an emulated grid; ``fd_options_<kernel>`` gives the option
    names the rule struct reads, in its order."""
    from fastdecay._gpu import _source

    lines = [f"void fd_kernel_{name}(i64 n_blocks, i64 n_threads, FD_FUSED_ARGS) {{\n"
             f"    FD_EMULATE((fused_body<{rule}, {param}, {state}>(gr, FD_FUSED_PASS)))\n}}"
             for name, rule, param, state in _source.fused_entries()]
    lines += [f"const char* fd_options_{kernel}() {{ return {_source.rule_struct(kernel)}<double>::OPTIONS; }}"
              for kernel in R.FUSED]
    return "\n".join(lines)


def _ptr(a):
    return a.ctypes.data_as(ctypes.c_void_p)


@pytest.fixture(scope="session")
def host(tmp_path_factory):
    """The headers built for the host once per session (each test worker's), loaded with ctypes.
    At -O1: the same arithmetic as -O2 (IEEE operations, no contraction), GCC's warnings that need
    an optimiser still on, and half the compile (-O2 took 11-13 s here, -O1 5-8 s);
    ``test_normals_of_the_native_build_equal_cpu_generator`` builds the noise at -O3."""
    build = tmp_path_factory.mktemp("cuda_host")
    (build / "shim.cpp").write_text(SHIM.replace("// FUSED ENTRIES", host_fused_entries() + "\n//") + NORMALS_SHIM)
    lib = build / "libfdhost.so"
    cmd = [CXX, "-std=c++17", "-O1", "-ffp-contract=off", "-fPIC", "-shared", "-Wall", "-Werror", "-Wno-unknown-pragmas",
           f"-I{KERNELS}", str(build / "shim.cpp"), "-o", str(lib), "-lm"]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, f"{' '.join(cmd)}\n{run.stderr}"
    dll = ctypes.CDLL(str(lib))
    for name in ("fd_lr_at", "fd_drop_ratio", "fd_philox", "fd_normals", "fd_log_u1", "fd_sincos_turn"):
        getattr(dll, name).restype = None
    dll.fd_layout.restype = ctypes.c_int
    dll.fd_rule_code.restype = ctypes.c_int
    dll.fd_sim_rule.restype = ctypes.c_int
    dll.fd_updates_layout.restype = ctypes.c_int
    for kernel in R.FUSED:
        getattr(dll, f"fd_options_{kernel}").restype = ctypes.c_char_p
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


def test_simulation_rule_flags_match_table(host):
    """kernels/update_math.cuh's sim_rule (what kernels/simulate.cu reads of a rule) has the
    table's columns: buffers kept, Adam's bias corrections, on_drop acting on the buffer."""
    from fastdecay._cpu import rules as cpu

    for r in R.RULES:
        want = (len(r.buffers) >= 1) | (len(r.buffers) == 2) << 1 | r.bias_correction << 2 | r.on_drop << 3
        assert host.fd_sim_rule(r.code) == want, r.name
        assert cpu.SIM_ON_DROP[r.code] == r.on_drop, r.name


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
        "cyclic_exp_growing": fd.cyclic(0.001, 0.1, 2, mode="exp_range", gamma=10.0),  # inf rates, base at the feet
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
        # drops on a segment boundary: a staircase factor falling where a warmup ends, a level
        # followed by a piece that starts lower (to 0)
        "staircase_at_warmup_end": fd.exponential(1.0, gamma=0.5, decay_steps=4, staircase=True)
        * fd.warmup(fd.constant(0.1), 4),
        "join_into_warmup": fd.join([fd.constant(0.02), fd.warmup(fd.constant(0.3), 3)], [5]),
        "join_into_warmup_scaled": fd.join([fd.multistep(0.02, 0.8, [50]), fd.warmup(fd.step(0.2, 0.8, 11), 3)], [36])
        * 0.5,
        # rates of 0 whose powers overflow within the 1,200 steps (0, not 0 * inf), and one that grows to inf
        "zero_rates_that_grow": fd.stack([fd.exponential(0.0, gamma=2.0), fd.step(0.0, 4.0, 1),
                                          fd.cosine_restarts(0.0, 1, cycle_decay=2.5), fd.exponential(1e-3, gamma=2.0),
                                          fd.exponential(0.0, gamma=1e300)]),
        "cosine_restarts_not_whole": fd.cosine_restarts(0.1, [1.1, 2.7, 3.3], period_mult=[1.0, 1.0, 1.1], min_lr=0.01),
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


@functools.cache
def _drop_ratio_loop():
    """A loop of the CPU backend's ``drop_ratio`` over points, compiled once a process."""
    from numba import njit

    from fastdecay._cpu import schedule as cpu

    @njit
    def many(table, rows, t, out):
        for i in range(out.shape[0]):
            out[i] = cpu.drop_ratio(table, rows[i], t[i])

    return many


def cpu_drop_ratios(table, rows, t):
    out = np.empty(t.shape)
    _drop_ratio_loop()(np.ascontiguousarray(table), rows.astype(np.int64), t.astype(np.float64), out)
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
        out = np.empty(n, dtype=np.float32)
        host.fd_normals(ctypes.c_uint64(seed), _ptr(trajectory), _ptr(step), _ptr(coordinate), _ptr(out),
                        ctypes.c_int64(n))
        want = np.array([normal(np.uint64(seed), trajectory[i], step[i], coordinate[i]) for i in range(n)],
                        dtype=np.float32)
        np.testing.assert_array_equal(out.view(np.uint32), want.view(np.uint32))
        assert abs(out.mean()) < 0.1 and abs(out.std() - 1.0) < 0.1



PHILOX_SHIM = r"""
#include "philox.cuh"
using namespace fastdecay;
""" + NORMALS_SHIM


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
    for name in ("fd_log_u1", "fd_sincos_turn", "fd_normals"):
        getattr(dll, name).restype = None
    dll.fd_normals.argtypes = [ctypes.c_uint64] + [ctypes.c_void_p] * 4 + [ctypes.c_int64]
    return dll


def _philox_words():
    """Philox words on the edges of the radius (a + 1 near powers of two, the rounding
    of a + 1 to 24 bits, the extremes) and of the angle (near every eighth of a turn),
    and random ones."""
    rng = np.random.default_rng(13)
    edges = [0, 1, 2, 2**24 - 2, 2**24 - 1, 2**24, 2**32 - 2**8, 2**32 - 129, 2**32 - 128, 2**32 - 2, 2**32 - 1]
    edges += [2**e + d for e in range(1, 32) for d in (-2, -1, 0, 1, 2)]
    eighths = (rng.integers(0, 8, 4000).astype(np.int64) << 29) + rng.integers(-2**12, 2**12, 4000)
    words = np.concatenate([edges, rng.integers(0, 2**32, 40_000), eighths % 2**32])
    return np.clip(words, 0, 2**32 - 1).astype(np.uint32)


@pytest.mark.parametrize("build", ["host", "philox_native"])
def test_log_u1_and_sincos_turn_equal_cpu_bit_for_bit(build, request):
    from numba import njit

    from fastdecay._cpu.philox import log_u1, sincos_turn

    @njit
    def cpu(words, logs, coss, sins):
        for i in range(words.shape[0]):
            logs[i] = log_u1(words[i])
            coss[i], sins[i] = sincos_turn(words[i])

    words = _philox_words()
    want = [np.empty(words.shape, dtype=np.float32) for _ in range(3)]
    cpu(words, *want)
    lib = request.getfixturevalue(build)
    got = [np.empty(words.shape, dtype=np.float32) for _ in range(3)]
    lib.fd_log_u1(_ptr(words), _ptr(got[0]), ctypes.c_int64(words.size))
    lib.fd_sincos_turn(_ptr(words), _ptr(got[1]), _ptr(got[2]), ctypes.c_int64(words.size))
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.view(np.uint32), w.view(np.uint32))  # signed zeros too


def test_normals_of_the_native_build_equal_cpu_generator(philox_native):
    from fastdecay._cpu.philox import fill_normals

    seed, first, step, n, d = 2**63 + 5, 2**35 - 100, 7, 3000, 4
    want = np.empty((n, d), dtype=np.float32)
    fill_normals(np.uint64(seed), np.uint64(first), np.uint32(step), d, want)
    trajectory = np.repeat(np.arange(n, dtype=np.uint64) + np.uint64(first), d)
    steps = np.full(n * d, step, dtype=np.uint32)
    coordinate = np.tile(np.arange(d, dtype=np.uint32), n)
    got = np.empty(n * d, dtype=np.float32)
    philox_native.fd_normals(ctypes.c_uint64(seed), _ptr(trajectory), _ptr(steps), _ptr(coordinate), _ptr(got),
                             ctypes.c_int64(n * d))
    np.testing.assert_array_equal(got.reshape(n, d), want)


# ----------------------------------------------------------------------------- update rules

SUFFIX = {np.float32: "f32", np.float64: "f64"}

TRAJECTORY_LR = fd.join([fd.step(0.1, 0.5, 7), fd.cosine(0.02, 50)], [30])
ADAM_LR = fd.warmup(fd.exponential(1e-2, gamma=0.97), 10)

# (kernel of fastdecay._rules.FUSED, public keyword options of its function; lr
# TRAJECTORY_LR unless given, the function's defaults for the rest)
UPDATE_CASES = [("sgd", case) for case in [
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
]] + [("adam", dict(lr=ADAM_LR, steps=80) | case) for case in [
    dict(),
    dict(decoupled=False, weight_decay=0.1),
    dict(amsgrad=True),
    dict(amsgrad=True, maximize=True, betas=(0.8, 0.99), eps=1e-6),
    dict(grad_scale=65536.0, weight_decay=0.0),
    dict(betas=(fd.one_cycle(0.1, 80, anneal_strategy="linear").momentum, 0.99)),
]] + [("lion", case) for case in [
    dict(),
    dict(maximize=True, weight_decay=0.1, betas=(0.95, 0.98)),
    dict(betas=(fd.one_cycle(0.1, 60).momentum, 0.99), grad_scale=8.0),
]]


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


class FusedCall:
    """One fused update as the public function takes it (``options``: its keyword options,
    lr, weight_decay and grad_scale among them) and as the GPU kernels take it (checked
    by the table's checker: the scheduled coefficient's table and the option values)."""

    def __init__(self, kernel, options):
        self.kernel = kernel
        self.fused = R.FUSED[kernel]
        self.function = getattr(fd, self.fused.function)
        defaults = inspect.signature(self.function).parameters
        options = dict(options)
        self.lr = options.pop("lr", TRAJECTORY_LR)
        self.weight_decay = options.pop("weight_decay", defaults["weight_decay"].default)
        self.grad_scale = options.pop("grad_scale", None)
        self.steps = options.pop("steps", 60)
        self.options = options
        names = inspect.signature(self.fused.check).parameters
        self.checked = self.fused.check(**{name: options.get(name, defaults[name].default) for name in names})
        self.tables = (np.ascontiguousarray(V.rate_table("lr", self.lr)),
                       np.ascontiguousarray(V.rate_table("weight_decay", self.weight_decay)),
                       np.ascontiguousarray(self.checked.table))
        self.needed = [key for key in self.fused.state_keys if self.checked.needed[key] is not None]

    def rows(self, params, grads, state):
        """Address-table rows of lists of arrays: ``state`` {state key: list of arrays}."""
        rows = []
        for k, (w, g) in enumerate(zip(params, grads)):
            row = [w.ctypes.data, g.ctypes.data, 0, 0, 0, w.size]
            for key, r in self.fused.state:
                if key in state:
                    row[r] = state[key][k].ctypes.data
            rows.append(tuple(row))
        return rows

    def host(self, host, params, grads, state, step, *, found_inf=None, n_blocks=1, n_threads=64):
        """The fused body of the GPU entry point on the host (every (block, thread) in turn);
        ``found_inf`` a 0-d array ("on the device") or None."""
        from fastdecay._gpu import _plan

        table, n_chunks = _plan.tensor_table(self.rows(params, grads, state))
        scale = 1.0 if self.grad_scale is None else self.grad_scale
        inf_ref = _plan.scalar_ref(0.0) if found_inf is None else _plan.scalar_ref(found_inf, found_inf.dtype)
        args = _plan.fused_args(self.kernel, table, n_chunks, self.tables, _plan.scalar_ref(step),
                                self.checked.values, _plan.scalar_ref(scale), inf_ref)
        run_plan(host, f"fd_kernel_{self.kernel}_{SUFFIX[params[0].dtype.type]}", args, n_blocks, n_threads)

    def cpu(self, params, grads, state, step):
        """The public function on the CPU backend (the buffers the options need)."""
        self.function(params, grads, **{key: state[key] for key in self.needed}, step=step, lr=self.lr,
                      weight_decay=self.weight_decay, grad_scale=self.grad_scale, **self.options)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", range(len(UPDATE_CASES)))
def test_fused_rules_equal_cpu_backend_over_a_trajectory(host, case, dtype):
    call = FusedCall(*UPDATE_CASES[case])
    rng = np.random.default_rng(case)
    n = 1037
    w_host = rng.standard_normal(n).astype(dtype)
    state_host = {key: np.abs(rng.standard_normal(n)).astype(dtype) for key in call.fused.state_keys}
    w_cpu, state_cpu = w_host.copy(), {key: x.copy() for key, x in state_host.items()}
    for step in range(call.steps):
        g = rng.standard_normal(n).astype(dtype) * dtype(call.grad_scale or 1.0)
        call.host(host, [w_host], [g], {key: [x] for key, x in state_host.items()}, step)
        call.cpu([w_cpu], [g], {key: [x] for key, x in state_cpu.items()}, step)
    assert_update_close(w_host, w_cpu, dtype)
    assert np.all(np.isfinite(w_host))
    for key in call.fused.state_keys:  # the buffers the options leave out are left alone
        assert_update_close(state_host[key], state_cpu[key], dtype)
    assert not np.array_equal(w_host, w_cpu * 0)


@pytest.mark.parametrize("kernel", list(R.FUSED))
def test_found_inf_changes_nothing(host, kernel):
    call = FusedCall(kernel, R.FUSED[kernel].example | dict(weight_decay=0.01))
    w, g, *buffers = (np.linspace(-1, 1, 33) + k for k in range(2 + len(call.fused.state_keys)))
    state = dict(zip(call.fused.state_keys, buffers))
    before = [a.copy() for a in (w, *buffers)]
    call.host(host, [w], [g], {key: [x] for key, x in state.items()}, 3, found_inf=np.array(1.0, np.float32))
    for a, b in zip((w, *buffers), before):
        np.testing.assert_array_equal(a, b)
    call.host(host, [w], [g], {key: [x] for key, x in state.items()}, 3)
    assert not np.array_equal(w, before[0])  # without found_inf the same call writes


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
    assert (host.fd_updates_layout(3), host.fd_updates_layout(4)) == (R.NUMBER_SLOTS, R.FLAG_SLOTS)


@pytest.mark.parametrize("kernel", list(R.FUSED))
def test_rule_structs_read_the_options_in_the_table_order(host, kernel):
    """The x[] / f[] slots each rule struct of update_math.cuh reads are the table's options in order."""
    names = getattr(host, f"fd_options_{kernel}")().decode().split()
    assert tuple(names) == R.FUSED[kernel].option_names


def _misaligned(rng, dtype, n, offset):
    """A float array of n elements whose data starts ``offset`` elements past 16-byte alignment."""
    base = rng.standard_normal(n + 8).astype(dtype)
    start = (-base.ctypes.data % 16) // base.itemsize + offset
    return base[start:start + n]


# options under which each fused update reads every buffer it has, its scheduled coefficient a schedule
_MOMENTUM = fd.cyclic(0.1, 1.0, 3).momentum
LIST_OPTIONS = {
    "sgd": dict(momentum=_MOMENTUM, nesterov=True, on_drop="rescale"),
    "adam": dict(betas=(_MOMENTUM, 0.99), eps=1e-8, decoupled=True, amsgrad=True),
    "lion": dict(betas=(_MOMENTUM, 0.99), maximize=True),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel", list(R.FUSED))
def test_update_kernels_on_tensor_lists_equal_cpu_backend(host, kernel, dtype):
    """The GPU update kernels' bodies (chunk table, 16-byte vector path, scalar tails,
    misaligned tensors, grid striding) over a list of odd-sized tensors, step after step."""
    from fastdecay._gpu import _plan

    lr = fd.warmup(fd.step(0.05, 0.5, 4), 3)
    call = FusedCall(kernel, LIST_OPTIONS.get(kernel, R.FUSED[kernel].example) | dict(lr=lr, weight_decay=0.01))
    rng = np.random.default_rng(5)
    sizes = [1, 7, _plan.CHUNK + 3, 3 * _plan.CHUNK - 1, 1000]
    offsets = [0, 1, 0, 0, 3]  # some tensors are not 16-byte aligned: scalar path
    gpu = [[_misaligned(rng, dtype, n, off) for _ in range(2 + len(call.needed))] for n, off in zip(sizes, offsets)]
    for t in gpu:
        for a in t[2:]:
            a[:] = np.abs(a)
    cpu_state = [[a.copy() for a in t] for t in gpu]

    def lists(tensors):
        return ([t[0] for t in tensors], [t[1] for t in tensors],
                {key: [t[2 + j] for t in tensors] for j, key in enumerate(call.needed)})

    for step in range(12):
        for t, c in zip(gpu, cpu_state):
            t[1][:] = c[1][:] = rng.standard_normal(t[1].shape[0]).astype(dtype)
        call.host(host, *lists(gpu), step, n_blocks=3, n_threads=64)
        call.cpu(*lists(cpu_state), step)
    for t, c in zip(gpu, cpu_state):
        for a, b in zip(t, c):
            assert_update_close(a, b, dtype)


def test_update_kernel_reads_step_and_found_inf_from_memory(host):
    """step, grad_scale and found_inf given as (device) scalars are read inside the kernel."""
    from fastdecay._gpu import _plan

    call = FusedCall("sgd", dict(lr=fd.exponential(0.1, gamma=0.5), weight_decay=0.0))
    w = np.ones(100)
    g = np.full(100, 8.0)
    table, n_chunks = _plan.tensor_table([(w.ctypes.data, g.ctypes.data, 0, 0, 0, 100)])
    step = np.array(3, dtype=np.int64)
    scale = np.array(4.0, dtype=np.float32)
    found_inf = np.array(0.0, dtype=np.float32)
    args = _plan.fused_args("sgd", table, n_chunks, call.tables, _plan.scalar_ref(step, step.dtype),
                            call.checked.values, _plan.scalar_ref(scale, scale.dtype),
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
    # shared rates with noise, no recording: the lean kernel draws (chunks of 25 steps start inside a
    # counter's four steps), d = 1 and d > 1
    dict(curvature=np.linspace(0.1, 3.0, 37)[:, None], schedule=fd.cosine(0.3, 100), optimizer="gd", noise=0.2,
         seed=3),
    dict(curvature=np.linspace(0.1, 3.0, 45).reshape(9, 5), schedule=fd.step(0.3, 0.5, 20), optimizer="momentum",
         on_drop="rescale", noise=0.1, seed=2**40),
    dict(curvature=np.linspace(0.1, 3.0, 24).reshape(8, 3), schedule=fd.cosine(0.05, 100), optimizer="adamw",
         weight_decay=0.01, noise=0.1),
    dict(curvature=np.linspace(0.1, 3.0, 40)[:, None], schedule=fd.cosine(0.02, 100), optimizer="lion",
         betas=(0.9, 0.99), noise=0.1),
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
    # the lean kernel's noiseless loops, one per kind of step: AdamW's (Adam's loop, its own coefficients)
    dict(curvature=np.linspace(0.1, 3.0, 40)[:, None], schedule=fd.cosine(0.05, 100), optimizer="adamw",
         weight_decay=0.01),
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


def test_simulate_kernel_reads_first_segments_and_vector_segments_as_the_cpu(host, monkeypatch):
    """The CUDA kernel's per-trajectory rates where the CPU's come from its vector loop
    (warmups before cosines; a line, a constant and a cosine joined) or from its anchor (a
    first exponential segment that does not hold its origin's step, hand-built: the anchor
    takes its lr only for a one-segment row, ``anchor_rate``): the same weights bit for bit,
    past the re-anchor at step 1,024."""
    from fastdecay._cpu import simulate as cpu
    from fastdecay._layout import COSINE, EXPONENTIAL, WIDTH

    def raw(*segments):
        table = np.zeros((len(segments), WIDTH))
        for k, seg in enumerate(segments):
            table[k, :len(seg)] = seg
        return fd.Schedule(table, "raw")

    cases = [
        (fd.stack([raw((0, 0, EXPONENTIAL, 0.05, 0.99, 1.0, 0.0), (0, 0, COSINE, 0.03, 500, 0.0)),
                   fd.cosine(0.05, 100)]), 5),
        (fd.stack([raw((0, 1024, EXPONENTIAL, 0.05, 0.9999, 1.0, 0.0), (500, 0, COSINE, 0.03, 2000, 0.0)),
                   fd.cosine(0.05, 100)]), 1030),
        (fd.stack([fd.warmup(fd.cosine(0.05, 400 + i), 10 + i % 3) for i in range(5)]
                  + [fd.join([fd.linear(0.01, 0.05, 20), fd.constant(0.05), fd.cosine(0.04, 500)], [20, 41])]), 1030),
    ]
    for schedule, steps in cases:
        lam = np.linspace(0.1, 1.5, schedule.size)[:, None]
        want = fd.simulate(lam, schedule, steps=steps, chunk_steps=500)
        with monkeypatch.context() as m:
            m.setattr(cpu, "simulate_chunk", _host_simulate_chunk(host, np.float64))
            got = fd.simulate(lam, schedule, steps=steps, chunk_steps=500)
        np.testing.assert_array_equal(got.w, want.w)


def test_simulate_rate_recurrence_equals_cpu_bit_for_bit(host, monkeypatch):
    """Per-trajectory rates (learning rate and weight decay) advance in the CUDA kernel by
    the CPU's recurrence, operation for operation: the same re-anchor period
    (SIM_REANCHOR), one multiplication a step for plain exponentials and constants,
    the closed form for other rows, the previous rate inside a step schedule's plateau.
    The carried rates agree bit for bit after every chunk of a 2300-step run (two
    re-anchors, chunk boundaries off the anchors), and so do the weights of per-trajectory
    AdamW with scheduled weight decay (Adam's sqrt(1 - beta2^(t+1)) correctly rounded on
    both: a pow(x, 0.5) in the kernel was an ulp off at steps 1269, 1270, ...)."""
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
    n = kw["curvature"].shape[0]  # (a state's first n are the rates; the CPU keeps more after them)
    for (lr_cpu, wd_cpu), (lr_gpu, wd_gpu) in zip(states["cpu"], states["gpu"]):
        np.testing.assert_array_equal(lr_gpu[:n], lr_cpu[:n])
        np.testing.assert_array_equal(wd_gpu[:n], wd_cpu[:n])
    # the recurrence stays within rounding of the closed form (two anchors passed)
    np.testing.assert_allclose(states["cpu"][-1][0][:n], lr.table(np.array([2299]))[:, 0], rtol=2e-13)
    np.testing.assert_array_equal(got.w, want.w)


@pytest.mark.parametrize("d", [1, 3])
def test_simulate_records_the_closed_form_rate_of_a_shared_schedule(host, monkeypatch, d):
    """A recorded rate is the schedule's closed form at the step on both backends, shared
    rates too (the kernel recorded the per-step scalar its recurrence made: ulps off)."""
    from fastdecay._cpu import simulate as cpu

    s = fd.exponential(0.6, gamma=0.98)
    kw = dict(curvature=np.ones((2, d)), schedule=s, optimizer="gd", steps=2100, every=10, chunk_steps=700)
    want = fd.simulate(**kw)
    monkeypatch.setattr(cpu, "simulate_chunk", _host_simulate_chunk(host, np.float64))
    got = fd.simulate(**kw)
    np.testing.assert_array_equal(want.lr[0], np.asarray(s(want.steps), dtype=np.float64))
    np.testing.assert_array_equal(got.lr, want.lr)
    np.testing.assert_array_equal(got.w, want.w)


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
        self.prepared = 0  # launches whose arguments were converted (not a prepared launch's repeat)

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

    def launch_stream(self, device, arrays):
        return None

    def capturing(self, stream=None):
        return False

    def value(self, kind, value):
        return kind, value

    def prepare(self, args):
        self.prepared += 1
        return tuple(args)

    def launch_values(self, file, name, grid, block, values, device, stream=None):
        self.launch(file, name, grid, block, values, device)

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


def test_gpu_schedule_wrappers_refuse_what_the_cpu_refuses(gpu_on_host):
    """Steps beyond 2**53 (which float64 no longer tells apart), a count beyond it, and a 0-d
    array as the count: refused as the CPU path refuses them, by the same exception type."""
    runtime, schedule, _, _ = gpu_on_host
    s = fd.step(0.1, 0.5, 3)
    for steps in (np.array([3, 2**53 + 2]), np.array([2.0**54])):
        with pytest.raises(ValueError, match=r"from 0 to 2\*\*53"):
            s(steps)
        with pytest.raises(ValueError, match=r"t must hold integer steps from 0 to 2\*\*53"):
            schedule.evaluate(s, steps)
        with pytest.raises(ValueError, match=r"n_or_steps must hold integer steps from 0 to 2\*\*53"):
            schedule.table(s, steps)
    for count, error in ((2**60, ValueError), (-1, ValueError), (np.array(3), TypeError), (5.0, TypeError),
                         (np.zeros((2, 2), np.int64), ValueError)):
        with pytest.raises(error) as cpu:
            s.table(count)
        with pytest.raises(error, match="n_or_steps") as gpu:
            schedule.table(s, count)
        assert type(gpu.value) is type(cpu.value)
    assert runtime.launches == []
    np.testing.assert_array_equal(schedule.evaluate(s, np.array([2**53])), s(np.array([2**53])))


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
    # (and rates of 0 whose powers, and the products' ratios a thread, overflow)
    for s in (fd.exponential(0.1, gamma=np.linspace(0.9, 0.99999, 5)), SCHEDULES["join"], SCHEDULES["warmup"],
              fd.stack([fd.exponential(0.0, gamma=2.0), fd.exponential(0.0, gamma=1e300), fd.step(0.0, 4.0, 1)]),
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
    runtime, _, updates, _ = gpu_on_host
    call = FusedCall("adam", dict(lr=fd.cosine(0.01, 30), weight_decay=0.1, betas=(0.9, 0.999), eps=1e-8))
    rng = np.random.default_rng(3)
    dtypes = [np.float32, np.float64, np.float32]
    sizes = [5, 20_001, 300]
    gpu = [[rng.standard_normal(n).astype(dt) for _ in range(4)] for n, dt in zip(sizes, dtypes)]
    for t in gpu:
        t[3][:] = np.abs(t[3])
    ref = [[a.copy() for a in t] for t in gpu]
    step = np.array(0, dtype=np.int64)  # "on the device"
    for k in range(25):
        for t, r in zip(gpu, ref):
            t[1][:] = r[1][:] = rng.standard_normal(t[1].size).astype(t[1].dtype)
        runtime.launches.clear()
        updates.fused_step("adam", [[t[j] for t in gpu] for j in range(4)] + [None], step=step, tables=call.tables,
                           options=call.checked.values, grad_scale=None, found_inf=None, increment_step=True)
        assert sorted(runtime.launches) == ["adam_f32", "adam_f64", "step_increment"]
        call.cpu([r[0] for r in ref], [r[1] for r in ref], dict(exp_avg=[r[2] for r in ref],
                                                                exp_avg_sq=[r[3] for r in ref]), k)
    assert int(step) == 25
    for t, r in zip(gpu, ref):
        for a, b in zip(t, r):
            assert_update_close(a, b, a.dtype.type)


def test_gpu_updates_wrapper_device_found_inf_and_grad_scale(gpu_on_host):
    _, _, updates, _ = gpu_on_host
    w, g, buf = np.linspace(-1, 1, 50), np.linspace(2, 3, 50), np.zeros(50)
    w_ref, buf_ref = w.copy(), buf.copy()
    call = FusedCall("sgd", dict(lr=0.1, momentum=0.9, grad_scale=8.0))
    kw = dict(tables=call.tables, options=call.checked.values)
    skip = np.array(1.0, dtype=np.float32)
    updates.fused_step("sgd", [[w], [g], [buf]], step=0, grad_scale=np.array(8.0, np.float32), found_inf=skip, **kw)
    np.testing.assert_array_equal(w, w_ref)
    np.testing.assert_array_equal(buf, buf_ref)
    step = np.array(0, dtype=np.int64)
    updates.fused_step("sgd", [[w], [g], [buf]], step=step, grad_scale=2.0, found_inf=skip, increment_step=True,
                       **kw)
    assert int(step) == 0  # a skipped update is not a step
    np.testing.assert_array_equal(w, w_ref)
    updates.fused_step("sgd", [[w], [g], [buf]], step=step, grad_scale=None, found_inf=1.0, increment_step=True,
                       **kw)  # found_inf as a number: the same
    assert int(step) == 0
    np.testing.assert_array_equal(w, w_ref)
    skip[...] = 0.0
    updates.fused_step("sgd", [[w], [g], [buf]], step=step, grad_scale=np.array(8.0, np.float32), found_inf=skip,
                       increment_step=True, **kw)
    assert int(step) == 1
    call.cpu([w_ref], [g], dict(momentum_buffer=[buf_ref]), 0)
    assert_update_close(w, w_ref, np.float64)
    assert_update_close(buf, buf_ref, np.float64)
    assert not np.array_equal(w, np.linspace(-1, 1, 50))


def test_gpu_updates_wrapper_refuses_mixed_devices_before_launch(gpu_on_host):
    runtime, _, updates, _ = gpu_on_host
    w = [np.ones(4), np.ones(4)]
    g = [np.ones(4), np.ones(4)]
    runtime.devices[id(w[1])] = 1
    call = FusedCall("sgd", dict(lr=0.1))
    kw = dict(tables=call.tables, options=call.checked.values, grad_scale=None, found_inf=None)
    with pytest.raises(ValueError, match=r"param\[1\] is on GPU 1 but param\[0\] is on GPU 0"):
        updates.fused_step("sgd", [w, g], step=0, **kw)
    del runtime.devices[id(w[1])]
    runtime.devices[id(g[0])] = 1
    with pytest.raises(ValueError, match=r"grad\[0\] is on GPU 1 but param\[0\] is on GPU 0"):
        updates.fused_step("sgd", [w, g], step=0, **kw)
    del runtime.devices[id(g[0])]
    step = np.array(3)
    runtime.devices[id(step)] = 2
    with pytest.raises(ValueError, match="step is on GPU 2"):
        updates.fused_step("sgd", [w, g], step=step, **kw)
    with pytest.raises(TypeError, match="grad_scale on the device must be"):
        updates.fused_step("sgd", [w, g], step=0, **(kw | dict(grad_scale=np.array(2.0, np.float16))))
    with pytest.raises(ValueError, match="increment_step"):
        updates.fused_step("sgd", [w, g], step=0, increment_step=True, **kw)
    assert runtime.launches == []  # every refusal came before any launch
    for a in w + g:
        np.testing.assert_array_equal(a, 1.0)


@pytest.mark.parametrize("compensated", [False, True])
@pytest.mark.parametrize("kernel", list(R.FUSED))
def test_gpu_fused_group_under_the_public_call_equals_cpu(gpu_on_host, monkeypatch, kernel, compensated):
    """The public function's checked call handing its plan's groups to the GPU backend's
    fused_group (the call shape both backends share): float32, float64 and float16
    parameters (state float32) in one list, Kahan compensation, found_inf as a number."""
    from fastdecay import _fused

    runtime, _, updates, _ = gpu_on_host
    call = FusedCall(kernel, LIST_OPTIONS.get(kernel, R.FUSED[kernel].example) | dict(weight_decay=0.01))
    rng = np.random.default_rng(11)
    dtypes = [np.float32, np.float64, np.float16]
    sizes = [3, 5000, 1001]

    def arrays():
        params = [rng.standard_normal(n).astype(dt) for n, dt in zip(sizes, dtypes)]
        state = {key: [np.abs(rng.standard_normal(n)).astype(np.float64 if dt == np.float64 else np.float32)
                       for n, dt in zip(sizes, dtypes)] for key in call.needed}
        comp = [np.zeros(n, dt) for n, dt in zip(sizes, dtypes)] if compensated else None
        return params, state, comp

    gpu = arrays()
    cpu = tuple(None if x is None else ({k: [a.copy() for a in v] for k, v in x.items()} if isinstance(x, dict)
                                        else [a.copy() for a in x]) for x in gpu)

    def step_with(arrays_, step, grads, **extra):
        params, state, comp = arrays_
        call.function(params, grads, **state, step=step, lr=call.lr, weight_decay=call.weight_decay,
                      compensated=compensated, compensation_buffer=comp, **call.options, **extra)

    for step in range(6):
        grads = [rng.standard_normal(n).astype(dt) for n, dt in zip(sizes, dtypes)]
        if step == 2:  # (weights made infinite or nan: stored as without compensation, none kept, then on)
            grads[2][:3] = [np.inf, np.nan, -np.inf]
        with monkeypatch.context() as m:
            m.setattr(_fused, "kernels", lambda kind, backend: updates)
            step_with(gpu, step, grads)
        step_with(cpu, step, grads)
    assert set(runtime.launches) == {f"{kernel}_f32", f"{kernel}_f64", f"{kernel}_f16_f32"}
    assert not np.isfinite(cpu[0][2][:3]).all() and np.isfinite(cpu[0][2][3:]).all()  # (Lion steps by signs)
    if compensated:  # the kernels kept what rounding float32 math to float16 storage dropped
        assert np.any(gpu[2][2] != 0)
    for got, want in zip(gpu, cpu):
        if isinstance(got, dict):
            got, want = sum(got.values(), []), sum(want.values(), [])
        for a, b in zip(got or [], want or []):
            assert_update_close(a, b, a.dtype.type)
    before = [a.copy() for a in gpu[0]]
    runtime.launches.clear()
    with monkeypatch.context() as m:
        m.setattr(_fused, "kernels", lambda kind, backend: updates)
        step_with(gpu, 6, grads, found_inf=1.0)
    assert runtime.launches == []
    for a, b in zip(gpu[0], before):
        np.testing.assert_array_equal(a, b)


def test_gpu_prepared_launch_is_reused_only_while_everything_it_was_made_from_holds(gpu_on_host, monkeypatch):
    """A group's launch arguments are converted once and reused by later calls that change
    only the step; new gradient addresses, another rate, other options or a device
    scalar in other memory make a new one (a few kept per group: gradients alternating
    between two sets reuse theirs). torch tensors (the plan is kept over new gradients),
    every step equal to the CPU backend's."""
    torch = pytest.importorskip("torch")
    from fastdecay import _fused

    runtime, _, updates, _ = gpu_on_host
    gen = torch.Generator().manual_seed(5)
    sizes = [7, 4099, 300]
    gpu = ([torch.randn(n, dtype=torch.float64, generator=gen) for n in sizes],
           [torch.zeros(n, dtype=torch.float64) for n in sizes], [torch.zeros(n, dtype=torch.float64) for n in sizes])
    cpu = tuple([a.clone() for a in x] for x in gpu)
    grad_sets = [[torch.randn(n, dtype=torch.float64, generator=gen) for n in sizes] for _ in range(2)]
    found_inf, moved = np.zeros((), np.float32), np.zeros((), np.float32)
    runtime.devices.update({id(found_inf): None, id(moved): None})  # on the parameters' "device" (None: the CPU)
    monkeypatch.setattr(runtime, "current_device", lambda: None)  # (where the launches run: the same)
    host_scalars = _fused._call_scalars
    lr = fd.cosine(0.1, 40)

    def device_found_inf(step, grad_scale, found_inf, backend):  # found_inf kept an array, as a device's is
        t, scale, _ = host_scalars(step, grad_scale, None, backend)
        return t, scale, found_inf

    def both(step, grads, **options):
        w, m, v = gpu
        runtime.launches.clear()
        with monkeypatch.context() as gpu_backend:
            gpu_backend.setattr(_fused, "kernels", lambda kind, backend: updates)
            gpu_backend.setattr(_fused, "_call_scalars", device_found_inf)
            fd.adamw_step(w, list(grads), m, v, step=step, **options)
        assert runtime.launches == ["adam_f64"]
        fd.adamw_step(cpu[0], list(grads), cpu[1], cpu[2], step=step, **options)

    made = []
    for step, (grads, options) in enumerate([
        (grad_sets[0], dict(lr=1e-2)), (grad_sets[0], dict(lr=1e-2)),  # the step alone changed: reused
        (grad_sets[1], dict(lr=1e-2)), (grad_sets[0], dict(lr=1e-2)), (grad_sets[1], dict(lr=1e-2)),  # two sets
        (grad_sets[0], dict(lr=2e-2)), (grad_sets[0], dict(lr=lr)), (grad_sets[0], dict(lr=lr)),
        (grad_sets[0], dict(lr=lr, betas=(0.8, 0.99))),
        (grad_sets[0], dict(lr=1e-2, found_inf=found_inf)), (grad_sets[0], dict(lr=1e-2, found_inf=found_inf)),
        (grad_sets[0], dict(lr=1e-2, found_inf=moved)),  # another device scalar
    ]):
        before = runtime.prepared
        both(step, grads, **options)
        made.append(runtime.prepared - before)
    assert made == [1, 0, 1, 0, 0, 1, 1, 0, 1, 1, 0, 1]
    for got, want in zip(gpu, cpu):
        for a, b in zip(got, want):
            assert_update_close(a.numpy(), b.numpy(), np.float64)


def test_gpu_optimizer_steps_repeated_by_what_changes_equal_cpu(gpu_on_host, monkeypatch, repeated_steps):
    """``fastdecay.torch.AdamW``'s repeated steps (``fastdecay._fused.Call.again``: the group's
    usual step checked by what can change) through the GPU backend: new gradients every step
    (two sets alternating) and a torch LR scheduler's new rate every step, every step launched
    by the GPU wrapper and equal to the same optimizer on the CPU backend; the prepared launch is
    made again only where the gradients' addresses or the rate table are new."""
    torch = pytest.importorskip("torch")
    from fastdecay import _fused
    from fastdecay.torch import AdamW

    runtime, _, updates, _ = gpu_on_host
    monkeypatch.setattr(runtime, "current_device", lambda: None)
    gen = torch.Generator().manual_seed(7)
    shapes = [(7,), (33, 5), (4099,)]
    start = [torch.randn(s, dtype=torch.float64, generator=gen) for s in shapes]
    grad_sets = [[torch.randn(s, dtype=torch.float64, generator=gen) for s in shapes] for _ in range(2)]
    runs = {}
    for backend in ("gpu", "cpu"):
        params = [torch.nn.Parameter(w.clone()) for w in start]
        opt = AdamW(params, lr=1e-2, weight_decay=0.1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (1 + t))
        weights, made = [], []
        for step in range(8):
            for p, g in zip(params, grad_sets[step % 2]):
                p.grad = g
            before = runtime.prepared
            runtime.launches.clear()
            with monkeypatch.context() as patch:
                if backend == "gpu":
                    patch.setattr(_fused, "kernels", lambda kind, b: updates)
                opt.step()
            assert runtime.launches == (["adam_f64"] if backend == "gpu" else [])
            made.append(runtime.prepared - before)
            sched.step()
            weights.append([p.detach().clone() for p in params])
        runs[backend] = weights
        if backend == "gpu":
            # a new rate every step: a new table, so a new prepared launch every step
            assert made == [1] * 8
            assert repeated_steps == [True] * 6  # steps 2-7 (the first two check in full: states made, then kept)
    for got, want in zip(runs["gpu"], runs["cpu"]):
        for a, b in zip(got, want):
            assert_update_close(a.numpy(), b.numpy(), np.float64)


@pytest.mark.parametrize("case", [0, 1, 2, 3, 4, 6, 11, 12, 13, 14])
def test_gpu_simulate_wrapper_equals_cpu(gpu_on_host, monkeypatch, case):
    from fastdecay._cpu import simulate as cpu

    runtime, _, _, simulate = gpu_on_host
    kw = dict(SIMULATIONS[case], steps=70, chunk_steps=25)
    want = fd.simulate(**kw)
    # (the CPU runs a recording run under one schedule as one class of its grouped kernels, which
    # have no GPU twin: here the call the GPU's replaces runs it)
    monkeypatch.setattr(importlib.import_module("fastdecay.simulate"), "_GROUP_SHARING_RECORDED", 10**9)
    monkeypatch.setattr(cpu, "simulate_chunk", simulate.simulate_chunk)
    got = fd.simulate(**kw)
    adam = kw["optimizer"] in ("adam", "adamw")
    mom = kw.get("betas", (None,))[0] if adam else kw.get("momentum")
    per_mom = isinstance(mom, fd.Schedule) and mom.size > 1
    shared = kw["schedule"].size == 1 and not per_mom and not (isinstance(kw.get("weight_decay"), fd.Schedule)
                                                               and kw["weight_decay"].size > 1)
    fast = shared and not kw.get("every")
    # the coefficient kernel fills the shared table and a shared beta1's bias corrections
    lean = "simulate_noisy_f64" if kw.get("noise") else "simulate_fast_f64"
    # a thread a trajectory where coordinates cooperate (d > 1 with recording or rates per trajectory)
    general = "simulate_trajectories_f64" if kw["curvature"].shape[1] > 1 and not shared or (
        kw["curvature"].shape[1] > 1 and kw.get("every")) else "simulate_f64"
    assert set(runtime.launches) == ({lean} if fast else {general}) | (
        {"simulate_coefficients_f64"} if shared or (adam and not per_mom) else set())
    assert_update_close(got.w, want.w, np.float64)
    if kw.get("every"):
        np.testing.assert_array_equal(got.lr, want.lr)
        assert_update_close(got.loss, want.loss, np.float64)


def test_gpu_philox_fill_equals_cpu_generator(gpu_on_host):
    from fastdecay._cpu.philox import fill_normals, philox4x32_10

    _, _, _, simulate = gpu_on_host
    seed, first, n, d = 2**40 + 17, 2**32 - 3, 9, 5
    for step in range(4_000_000_000, 4_000_000_004):  # the four draws of one counter
        words, normals = simulate.philox_fill(seed, first, step, n, d)
        want = np.empty((n, d), dtype=np.float32)
        fill_normals(np.uint64(seed), np.uint64(first), np.uint32(step), d, want)
        np.testing.assert_array_equal(normals.view(np.uint32), want.view(np.uint32))
        for i, k in [(0, 0), (3, 4), (8, 2)]:
            traj = first + i
            expect = philox4x32_10(traj & 0xFFFFFFFF, traj >> 32, step >> 2, k, seed & 0xFFFFFFFF, seed >> 32)
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
