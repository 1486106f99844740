"""The CUDA headers' math, checked on the host: no GPU needed.

``kernels/schedule.cuh``, ``kernels/philox.cuh`` and ``kernels/update_math.cuh``
are ``__host__ __device__`` code. Here the host C++ compiler builds them (with
``__host__``/``__device__`` defined away) into a small shared library that ctypes
drives, and the results are compared with the Numba CPU backend and
``fastdecay.reference`` on random inputs. Both sides use the same float64
operations in the same order and the same libm, so they agree bit for bit
(``assert_array_equal``) unless a comment says otherwise.
"""

import ctypes
import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

import fastdecay as fd
from fastdecay import _layout as L

CXX = os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++") or shutil.which("c++")
if CXX is None:  # pragma: no cover - every supported CI image has one
    pytest.skip("no host C++ compiler (g++, clang++ or c++) in PATH", allow_module_level=True)

KERNELS = pathlib.Path(__file__).resolve().parents[1] / "kernels"

SHIM = r"""
#include "schedule.cuh"
#include "philox.cuh"
using namespace fastdecay;
extern "C" {
int fd_layout(int i) {
    const int v[] = {WIDTH, START, ORIGIN, KIND, P0, KIND_CONSTANT, KIND_EXPONENTIAL, KIND_INVERSE_TIME,
                     KIND_POLYNOMIAL, KIND_COSINE, KIND_COSINE_RESTARTS, KIND_CYCLIC, KIND_ONE_MINUS_POWER};
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
    for name in ("fd_lr_at", "fd_drop_ratio", "fd_philox", "fd_normals"):
        getattr(dll, name).restype = None
    dll.fd_layout.restype = ctypes.c_int
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
             "POLYNOMIAL", "COSINE", "COSINE_RESTARTS", "CYCLIC", "ONE_MINUS_POWER"]
    assert [host.fd_layout(i) for i in range(len(names))] == [getattr(L, n) for n in names]
    assert set(L.KIND_NAMES) == {getattr(L, n) for n in names[5:]}, "a primitive kind the header does not know"


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
    }


SCHEDULES = factory_schedules()


def cpu_points(table, rows, t):
    from fastdecay._cpu import schedule as cpu

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
            kind = int(rng.integers(0, 8))
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
                L.COSINE_RESTARTS: [lr, float(rng.integers(1, 60)), rng.choice([1.0, 1.5, 2.0, 3.0]), end],
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
