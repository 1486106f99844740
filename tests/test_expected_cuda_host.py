"""kernels/expected.cu on the host: the kernel's body, built by the host C++ compiler
(every block and thread in turn), run through the CuPy wrapper
``fastdecay._gpu.expected`` on a NumPy stand-in runtime, gives what the Numba
kernels give — through the public fd.expected_loss and fd.steps_to_target.

Without a GPU this checks the kernel's arithmetic, its indexing (trajectory,
coordinate tile, rows of the tables, recorded columns), the wrapper's launch plan
and the Python layer's device path; the warp reduction of the recorded sums
(``add_to_record`` under ``__CUDA_ARCH__``) runs only on a GPU.
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
from fastdecay import expected as expected_module

CXX = os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++") or shutil.which("c++")
if CXX is None:  # pragma: no cover - every supported CI image has one
    pytest.skip("no host C++ compiler (g++, clang++ or c++) in PATH", allow_module_level=True)

KERNELS = pathlib.Path(__file__).resolve().parents[1] / "kernels"

SHIM = r"""
#include "expected.cu"
extern "C" void fd_kernel_expected_propagate(i64 n_blocks, i64 n_threads, FD_EXPECTED_ARGS) {
    for (i64 b = 0; b < n_blocks; ++b)
        for (i64 th = 0; th < n_threads; ++th) {
            const Grid gr = {b, n_blocks, th, n_threads};
            expected_body(gr, FD_EXPECTED_PASS);
        }
}
"""


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    build = tmp_path_factory.mktemp("expected_host")
    (build / "shim.cpp").write_text(SHIM)
    lib = build / "libexpected.so"
    cmd = [CXX, "-std=c++17", "-O2", "-ffp-contract=off", "-fPIC", "-shared", "-Wall", "-Werror",
           "-Wno-unknown-pragmas", f"-I{KERNELS}", str(build / "shim.cpp"), "-o", str(lib), "-lm"]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, f"{' '.join(cmd)}\n{run.stderr}"
    dll = ctypes.CDLL(str(lib))
    dll.fd_kernel_expected_propagate.restype = None
    return dll


_CTYPES = {"i32": ctypes.c_int32, "u32": ctypes.c_uint32, "i64": ctypes.c_int64, "u64": ctypes.c_uint64,
           "f64": ctypes.c_double}


class HostRuntime(types.ModuleType):
    """``fastdecay._gpu._runtime`` with NumPy arrays for device arrays and the kernel's
    body built for the host for launches."""

    def __init__(self, host):
        super().__init__("fastdecay._gpu._runtime")
        self.host = host
        self.xp = np
        self.launches = []

    def device_of(self, x):
        return 0

    def context(self, device, arrays=()):
        return contextlib.nullcontext()

    def constant(self, array, device):
        return np.ascontiguousarray(array)

    def launch(self, file, name, grid, block, args, device):
        assert file == "expected.cu"
        self.launches.append((name, grid, block))
        values = [ctypes.c_int64(grid), ctypes.c_int64(block)]
        for kind, value in args:
            if kind == "ptr":
                values.append(ctypes.c_void_p(None if value is None else value.ctypes.data))
            else:
                values.append(_CTYPES[kind](value))
        getattr(self.host, f"fd_kernel_{name}")(*values)


@pytest.fixture
def gpu_on_host(host, monkeypatch):
    """fd.expected_loss / fd.steps_to_target routed through the GPU wrapper and the
    kernel's host build; yields the runtime (its launches)."""
    import fastdecay._gpu as package

    runtime = HostRuntime(host)
    monkeypatch.setitem(sys.modules, "fastdecay._gpu._runtime", runtime)
    monkeypatch.setattr(package, "_runtime", runtime, raising=False)
    monkeypatch.delitem(sys.modules, "fastdecay._gpu.expected", raising=False)
    wrapper = importlib.import_module("fastdecay._gpu.expected")

    def gpu_backend(problem, curvature):
        backend = expected_module._GpuBackend.__new__(expected_module._GpuBackend)
        backend.kernels, backend.xp, backend.device = wrapper, np, 0
        return backend

    monkeypatch.setattr(expected_module, "_backend", gpu_backend)
    yield runtime
    sys.modules.pop("fastdecay._gpu.expected", None)
    if hasattr(package, "expected"):
        delattr(package, "expected")


def _close(got, want, rtol):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    err = np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-300)) if want.size else 0.0
    assert err <= rtol, f"max relative error {err:.3g} > {rtol:g}"


CASES = [
    dict(curvature=np.linspace(0.05, 2.0, 300), schedule=fd.step(0.4, 0.5, 25), optimizer="momentum",
         on_drop="rescale", noise=0.3, batch_size=[1.0, 8.0], every=7, w0_var=0.1),
    dict(curvature=1.0 / np.arange(1, 40), schedule=fd.stack([fd.cosine(0.5, 100), fd.exponential(0.3, gamma=0.99)]),
         optimizer="gd", noise=np.sqrt(1.0 / np.arange(1, 40)), batch_size=[[1.0], [4.0], [64.0]], every=1,
         weight_decay=fd.constant(0.01)),
    dict(curvature=np.linspace(0.1, 1.0, 513).reshape(1, 513), schedule=fd.multistep(0.3, 0.3, [30, 60]),
         optimizer="nesterov", on_drop="reset", noise=0.2, momentum=0.7, every=10),
    dict(curvature=np.array([[0.5, 1.0, 1.5], [2.0, 0.1, 0.01]]), schedule=fd.constant(0.2),
         optimizer="momentum_lr_in_buffer", noise=[0.1, 0.2, 0.3], w0=[1.0, -2.0, 0.5]),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_gpu_kernel_equals_cpu_kernel(gpu_on_host, monkeypatch, case):
    kw = dict(CASES[case], steps=100)
    monkeypatch.setattr(expected_module, "_COEF_NUMBERS", 6 * 4 * 37)  # several chunks
    gpu = fd.expected_loss(**kw)  # through the GPU wrapper and the kernel's host build
    assert gpu_on_host.launches and {name for name, _, _ in gpu_on_host.launches} == {"expected_propagate"}
    monkeypatch.setattr(expected_module, "_backend", lambda problem, curvature: expected_module._CpuBackend())
    cpu = fd.expected_loss(**kw)
    assert np.all(np.isfinite(cpu.final_loss))
    _close(gpu.final_loss, cpu.final_loss, 1e-13)
    # the mean may cross zero: its error against its spread sqrt(E w²)
    assert np.all(np.abs(gpu.mean - cpu.mean) <= 1e-13 * np.sqrt(cpu.second_moment))
    _close(gpu.second_moment, cpu.second_moment, 1e-13)
    if kw.get("every"):
        _close(gpu.loss, cpu.loss, 1e-13)


def test_gpu_steps_to_target_equals_cpu(gpu_on_host, monkeypatch):
    lam = 1.0 / np.arange(1, 300)
    kw = dict(noise=np.sqrt(lam), batch_size=2.0 ** np.arange(0, 6), steps=2000, optimizer="momentum", momentum=0.5)
    schedule = fd.constant(np.geomspace(0.02, 1.5, 7)[:, None])
    got = fd.steps_to_target(lam, schedule, 0.3, **kw)
    grid = {grid for _, grid, _ in gpu_on_host.launches}
    # the 7 rates propagated twice (noiseless, unit noise) serve the 6 batch sizes; one block of
    # 256 threads a (trajectory, tile of coordinates): 299 coordinates = 2 tiles
    assert grid == {7 * 2}
    monkeypatch.setattr(expected_module, "_backend", lambda problem, curvature: expected_module._CpuBackend())
    want = fd.steps_to_target(lam, schedule, 0.3, **kw)
    np.testing.assert_array_equal(got, want)
    assert (want > 0).any() and (want == -1).any()


@pytest.mark.parametrize("optimizer, lr, noise", [("gd", 1e300, 0.0), ("momentum", 5.0, 0.0), ("momentum", 5.0, 0.1),
                                                  ("nesterov", 1e300, 0.0)])
def test_a_diverging_run_s_second_moments_are_inf_on_both(gpu_on_host, monkeypatch, optimizer, lr, noise):
    """inf (not NaN) where the second moments leave float64's range, on the GPU's host build as
    on the CPU: 0 * inf (no noise beside a rate whose square overflows) and inf - inf made NaN."""
    kw = dict(curvature=[1.0, 0.01], schedule=fd.constant(lr), steps=3000, optimizer=optimizer, noise=noise,
              every=500)
    gpu = fd.expected_loss(**kw)
    monkeypatch.setattr(expected_module, "_backend", lambda problem, curvature: expected_module._CpuBackend())
    cpu = fd.expected_loss(**kw)
    for result in (gpu, cpu):
        assert not np.isnan(result.loss).any() and not np.isnan(result.second_moment).any()
        assert result.loss[-1] == np.inf and result.second_moment[0] == np.inf
