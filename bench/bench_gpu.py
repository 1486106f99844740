"""GPU benchmarks: fused AdamW against torch ``fused=True``, batched simulations and
schedule tables, each against a bandwidth ceiling measured in the same run.

Skipped (module level) without CuPy and a CUDA device. Every timed call ends
with a device synchronize, so the wall-clock medians pytest-benchmark reports
are device times plus the host's overhead (validation, launch); each call is
then timed again with CUDA events (``cupyx.profiler.benchmark``), and GB/s and
steps/s come from that device-time median (``extra_info["device_median_s"]``).

Group ``gpu-adamw`` (N float32 parameters, default 1e8; ``FASTDECAY_BENCH_GPU_N=1e9``
for the large case, 16 GB of state per implementation):

- ``fastdecay``: ``fd.adamw_step`` on CuPy arrays, scheduled lr and weight decay;
- ``torch-fused``: ``torch.optim.AdamW(fused=True)`` on the same N (skipped without torch CUDA);
- ``ceiling:d2d-copy``: a device-to-device copy of 14 bytes per element (28 bytes moved,
  the traffic of one AdamW step: read w, g, m, v; write w, m, v).

Group ``gpu-simulate``: 10 million float32 trajectories (d = 1) x 1,000 steps of
gradient descent under a step schedule; ``fastdecay`` is the public ``fd.simulate``
(validation, host-side preparation and transfers included), ``fastdecay-kernel``
the kernel alone on prepared device arrays. Reported as trajectory-steps/s.

Group ``gpu-schedule-table``: a table of 10,000 exponential schedules x 10,000 steps
(float64, 800 MB) written in place, against ``ceiling:memset`` (cudaMemsetAsync of the
same array) and CuPy's ``fill`` (an elementwise kernel: about half the memset rate).

Under ``--benchmark-disable`` each runs once on small sizes.
"""

import os

import numpy as np
import pytest

import fastdecay as fd

cp = pytest.importorskip("cupy", reason="the GPU benchmarks need CuPy: pip install 'fastdecay[gpu]'")
try:
    N_GPUS = cp.cuda.runtime.getDeviceCount()
except Exception:
    N_GPUS = 0
if N_GPUS == 0:
    pytest.skip("no CUDA device", allow_module_level=True)

try:
    import torch

    HAS_TORCH_CUDA = torch.cuda.is_available()
except ImportError:  # pragma: no cover
    HAS_TORCH_CUDA = False

pytestmark = pytest.mark.gpu

ROUNDS = 10


@pytest.fixture(autouse=True)
def release_device_memory():
    """Hand CuPy's cached blocks back between benchmarks (the 1e9 case needs the room)."""
    yield
    cp.get_default_memory_pool().free_all_blocks()
    if HAS_TORCH_CUDA:
        torch.cuda.empty_cache()


def synced(fn, *args, **kwargs):
    def run():
        out = fn(*args, **kwargs)
        cp.cuda.Device().synchronize()
        return out

    return run


def timed(benchmark, smoke, run):
    """Wall-clock rounds through pytest-benchmark, then (not in smoke mode) the same
    call timed with CUDA events on the current stream: its median device time."""
    run()  # compile / warm the caches outside the timing
    result = benchmark.pedantic(run, rounds=1 if smoke else ROUNDS, iterations=1, warmup_rounds=0 if smoke else 1)
    if not smoke:
        from cupyx.profiler import benchmark as device_benchmark

        device = device_benchmark(run, n_repeat=2 * ROUNDS, n_warmup=1)
        benchmark.extra_info["device_median_s"] = float(np.median(device.gpu_times[0]))
    return result


def record(benchmark, *, impl, nbytes=None, elements=None, **extra):
    benchmark.extra_info.update(impl=impl, device=cp.cuda.runtime.getDeviceProperties(0)["name"].decode(), **extra)
    if benchmark.stats is not None:
        median = benchmark.extra_info.get("device_median_s") or benchmark.stats.stats.median
        if nbytes is not None:
            benchmark.extra_info["gbps"] = nbytes / median / 1e9
        if elements is not None:
            benchmark.extra_info["steps_per_s"] = elements / median


# ----------------------------------------------------------------------------- fused AdamW


def adamw_size(smoke):
    return 100_000 if smoke else int(float(os.environ.get("FASTDECAY_BENCH_GPU_N", "1e8")))


ADAMW_BYTES = 28  # per element: read w, g, m, v (16) + write w, m, v (12), float32


def test_gpu_fastdecay_adamw(benchmark, smoke):
    n = adamw_size(smoke)
    w, g = cp.ones(n, dtype=cp.float32), cp.full(n, 1e-3, dtype=cp.float32)
    m, v = cp.zeros(n, dtype=cp.float32), cp.zeros(n, dtype=cp.float32)
    lr = fd.warmup(fd.cosine(1e-3, 10_000), 100)
    state = {"t": 1}

    def step():
        fd.adamw_step(w, g, m, v, step=state["t"], lr=lr, weight_decay=1e-2)
        state["t"] += 1

    benchmark.group = "gpu-adamw"
    timed(benchmark, smoke, synced(step))
    record(benchmark, impl="fastdecay", nbytes=ADAMW_BYTES * n, elements=n)
    assert bool(cp.isfinite(w).all())


@pytest.mark.skipif(not HAS_TORCH_CUDA, reason="needs torch with CUDA")
def test_gpu_torch_fused_adamw(benchmark, smoke):
    n = adamw_size(smoke)
    p = torch.ones(n, dtype=torch.float32, device="cuda", requires_grad=True)
    p.grad = torch.full_like(p, 1e-3)
    opt = torch.optim.AdamW([p], lr=1e-3, weight_decay=1e-2, fused=True)

    def step():
        opt.step()
        torch.cuda.synchronize()

    benchmark.group = "gpu-adamw"
    timed(benchmark, smoke, step)
    record(benchmark, impl="torch-fused", nbytes=ADAMW_BYTES * n, elements=n)


def test_gpu_ceiling_d2d_copy(benchmark, smoke):
    n = adamw_size(smoke)
    src = cp.ones(n * ADAMW_BYTES // 2, dtype=cp.uint8)
    dst = cp.empty_like(src)
    benchmark.group = "gpu-adamw"
    timed(benchmark, smoke, synced(cp.copyto, dst, src))
    record(benchmark, impl="ceiling:d2d-copy", nbytes=2 * src.nbytes, elements=n)


# ----------------------------------------------------------------------------- simulation


def simulate_size(smoke):
    return (10_000, 50) if smoke else (10_000_000, 1_000)


def test_gpu_fastdecay_simulate(benchmark, smoke):
    n, steps = simulate_size(smoke)
    curvature = cp.linspace(0.01, 1.0, n, dtype=cp.float32).reshape(n, 1)
    s = fd.step(0.5, 0.5, max(1, steps // 10))
    benchmark.group = "gpu-simulate"
    result = timed(benchmark, smoke, synced(fd.simulate, curvature, s, steps=steps, dtype=np.float32))
    record(benchmark, impl="fastdecay", elements=n * steps, trajectories=n, steps=steps)
    assert result.w.shape == (n, 1) and result.diverged == 0


def test_gpu_fastdecay_simulate_kernel(benchmark, smoke):
    """The kernel alone: the arguments ``fd.simulate`` hands it, prepared once on the device."""
    from fastdecay._cpu import simulate as cpu
    from fastdecay._gpu.simulate import simulate_chunk

    n, steps = simulate_size(smoke)
    s = fd.step(0.5, 0.5, max(1, steps // 10))
    lam = cp.linspace(0.01, 1.0, n, dtype=cp.float32)
    w = cp.ones(n, dtype=cp.float32)
    empty_f32 = cp.empty(0, dtype=cp.float32)
    empty_i, empty_f = cp.empty(0, dtype=cp.int64), cp.empty(0, dtype=cp.float64)
    table = cp.asarray(s.rows())
    wd_table = cp.asarray(fd.constant(0.0).rows())
    scalars = np.empty((steps + 1, cpu.N_SCALARS))
    cpu.shared_step_scalars(s.rows(), fd.constant(0.0).rows(), fd.constant(0.0).rows(), 0, 0, steps, scalars)
    scalars = cp.asarray(scalars)
    rec = cp.empty((0, 0), dtype=cp.float32)
    args = (w, empty_f32, empty_f32, lam, 1, cpu.OPTIMIZER_CODES["gd"],
            table, empty_i, empty_f, empty_f, wd_table, empty_i, empty_f, empty_f, wd_table, empty_i, empty_f, empty_f,
            scalars, 0.999, 1e-8, 0, 0.0, np.uint64(0), np.uint64(0), 0, steps, 0, rec, rec, rec)
    benchmark.group = "gpu-simulate"
    timed(benchmark, smoke, synced(simulate_chunk, *args))
    record(benchmark, impl="fastdecay-kernel", elements=n * steps, trajectories=n, steps=steps)


# ----------------------------------------------------------------------------- schedule tables


def table_size(smoke):
    return (100, 1_000) if smoke else (10_000, 10_000)


@pytest.fixture(scope="module")
def table_out(request):
    smoke = bool(request.config.getoption("benchmark_disable", False))
    rows, n = table_size(smoke)
    out = cp.ones((rows, n), dtype=cp.float64)
    yield out
    del out


def test_gpu_fastdecay_schedule_table(benchmark, smoke, table_out):
    from fastdecay._gpu.schedule import table

    rows, n = table_out.shape
    s = fd.exponential(0.1, gamma=np.linspace(0.9, 0.9999, rows))
    benchmark.group = "gpu-schedule-table"
    timed(benchmark, smoke, synced(table, s, n, out=table_out))
    record(benchmark, impl="fastdecay", nbytes=table_out.nbytes, elements=table_out.size)
    got = cp.asnumpy(table_out[:, [0, n - 1]])
    # (below 1e-300 the rates are float64 subnormals, whose relative precision is gone)
    np.testing.assert_allclose(got[:, 1], 0.1 * np.linspace(0.9, 0.9999, rows) ** (n - 1), rtol=1e-12, atol=1e-300)


def test_gpu_ceiling_fill(benchmark, smoke, table_out):
    """CuPy's fill: an elementwise kernel, NOT a bandwidth ceiling on an H100 (about
    half of cudaMemset's rate there); kept as the everyday baseline."""
    benchmark.group = "gpu-schedule-table"
    timed(benchmark, smoke, synced(table_out.fill, 1.0))
    record(benchmark, impl="fill (cupy)", nbytes=table_out.nbytes, elements=table_out.size)


def test_gpu_ceiling_memset(benchmark, smoke, table_out):
    """cudaMemsetAsync of the same 800 MB: the write-bandwidth ceiling."""
    benchmark.group = "gpu-schedule-table"
    timed(benchmark, smoke, synced(table_out.data.memset_async, 0, table_out.nbytes))
    record(benchmark, impl="ceiling:memset", nbytes=table_out.nbytes, elements=table_out.size)
