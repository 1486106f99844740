"""The GPU paths' host-side work that runs before (or beside) any device work, checked
without CuPy or a GPU: a NumPy subclass stands in for device arrays, and a small
stand-in module for CuPy where the runtime module itself is exercised. (The kernels'
bodies run on the host in tests/test_cuda_host.py; on a GPU in tests/test_gpu*.py.)"""

import contextlib
import importlib
import sys
import types

import numpy as np
import pytest

import fastdecay as fd


class _Device:
    id = 0


class DeviceArray(np.ndarray):
    """A NumPy array posing as one on GPU 0."""

    @property
    def device(self):
        return _Device()


def _on_gpu(monkeypatch, module):
    """``module``'s dispatch sees DeviceArray as a CuPy array."""
    original = module.backend_of
    monkeypatch.setattr(module, "backend_of", lambda x: "cupy" if isinstance(x, DeviceArray) else original(x))


def test_a_float32_run_on_the_gpu_refuses_values_beyond_float32_as_the_cpu_does(monkeypatch):
    """dtype=float32 with a float64 curvature or w0 beyond float32's range is refused by name
    on the GPU path too (it ran, and reported the trajectories as diverged), before any
    device work; values in range pass the check."""
    simulate = importlib.import_module("fastdecay.simulate")
    _on_gpu(monkeypatch, simulate)
    monkeypatch.setattr(simulate, "_device_curvature", lambda c: c)
    reached = []

    def no_device_work(*args, **kwargs):
        reached.append(True)
        raise RuntimeError("past the checks")

    monkeypatch.setattr(simulate, "_run", no_device_work)
    lam = np.array([[0.5], [2.0]]).view(DeviceArray)
    kw = dict(steps=3, dtype=np.float32)
    with pytest.raises(ValueError, match=r"w0 must be within float32's range with dtype=float32, got 1e\+39"):
        fd.simulate(lam, 0.1, w0=1e39, **kw)
    with pytest.raises(ValueError, match="curvature must be within float32's range .* on GPU 0"):
        fd.simulate(np.array([[0.5], [-1e39]]).view(DeviceArray), 0.1, **kw)
    assert reached == []
    with pytest.raises(RuntimeError, match="past the checks"):
        fd.simulate(lam, 0.1, w0=3e38, **kw)
    for value in (np.array([[1e39]]), 1e39):  # (as the CPU path refuses them)
        with pytest.raises(ValueError, match="float32's range"):
            fd.simulate(np.array([[0.5]]), 0.1, w0=value, **kw)


@pytest.mark.parametrize("name, value, accepted", [
    ("step", np.array(3, np.int16), False), ("step", np.array(3, np.uint64), False),
    ("step", np.array(3.0, np.float16), False), ("step", np.array(3, np.int32), True),
    ("step", np.array(3.0, np.float64), True), ("grad_scale", np.array(True), False),
    ("grad_scale", np.array(2, np.uint8), False), ("grad_scale", np.array(2, np.int8), False),
    ("grad_scale", np.array(8.0, np.float32), True), ("found_inf", np.array(False), True),
    ("found_inf", np.array(0, np.uint8), True), ("found_inf", np.array(0.0, np.float16), False)])
def test_device_scalars_of_a_dtype_the_gpu_kernels_cannot_read_are_refused_when_checked(monkeypatch, name, value,
                                                                                         accepted):
    """``step``, ``grad_scale`` and ``found_inf`` on the device: a dtype the kernels do not read
    is refused by name when the call is checked, before any launch (a boolean grad_scale was read
    as a scale of 0 or 1: False made every parameter inf)."""
    from fastdecay import _fused

    _on_gpu(monkeypatch, _fused)
    scalars = dict(step=0, grad_scale=None, found_inf=None) | {name: value.view(DeviceArray)}
    if accepted:
        checked = _fused._call_scalars(scalars["step"], scalars["grad_scale"], scalars["found_inf"], "cupy")
        assert checked[("step", "grad_scale", "found_inf").index(name)] is scalars[name]
        return
    with pytest.raises(TypeError, match=rf"{name} on the device must be of dtype int32, int64, float32(, float64, bool| or)"):
        _fused._call_scalars(scalars["step"], scalars["grad_scale"], scalars["found_inf"], "cupy")


@pytest.fixture
def runtime_on_a_stand_in(monkeypatch):
    """``fastdecay._gpu._runtime`` imported against a stand-in for CuPy (device copies are
    NumPy copies)."""
    stream = types.SimpleNamespace(is_capturing=lambda: False)
    cuda = types.SimpleNamespace(Device=lambda device: contextlib.nullcontext(),
                                 get_current_stream=lambda: stream)
    cupy = types.ModuleType("cupy")
    cupy.cuda = cuda
    cupy.asarray = lambda a: np.array(a)
    cupy.ndarray = np.ndarray
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.delitem(sys.modules, "fastdecay._gpu._runtime", raising=False)
    runtime = importlib.import_module("fastdecay._gpu._runtime")
    yield runtime
    sys.modules.pop("fastdecay._gpu._runtime", None)
    import fastdecay._gpu as package

    if hasattr(package, "_runtime"):
        delattr(package, "_runtime")


def test_the_cache_of_device_tables_is_bounded_in_bytes(runtime_on_a_stand_in, monkeypatch):
    """Large tables made afresh at every call (never asked for again) and large host arrays
    cached by content leave the cache once it holds ``_CONSTANTS_MAX_BYTES`` (device copies and
    content keys together): before, 512 of them were kept whatever their size. A table asked
    for again is the cached copy; the newest entry is kept whatever its size."""
    runtime = runtime_on_a_stand_in
    monkeypatch.setattr(runtime, "_CONSTANTS_MAX_BYTES", 1 << 20)
    kept = fd.exponential(0.1, gamma=np.linspace(0.9, 0.99, 2_000)).rows()  # 144 kB, by identity
    first = runtime.constant(kept, 0)
    assert runtime.constant(kept, 0) is first
    for k in range(40):  # fresh 144 kB tables and 160 kB host arrays (by content: they are writable)
        runtime.constant(fd.exponential(0.1, gamma=np.linspace(0.5, 0.9, 2_000) + 1e-6 * k).rows(), 0)
        runtime.constant(np.full(20_000, float(k)), 0)
        assert runtime._constants_bytes <= 1 << 20
        assert runtime._constants_bytes == sum(v.nbytes + (len(key[-1]) if key[1] == "content" else 0)
                                               for key, (_, v) in runtime._constants.items())
    assert len(runtime._constants) < 8
    huge = np.zeros(300_000)  # 2.4 MB: kept alone
    assert runtime.constant(huge, 0) is runtime.constant(huge, 0)
    assert len(runtime._constants) == 1
