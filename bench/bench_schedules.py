"""Schedule tables on the CPU: fastdecay against NumPy's closed form, torch's
schedulers and the machine's write bandwidth, all measured in one run.

Group ``schedule-table-exponential``: a table of 10,000 exponential schedules
(a grid of gammas) x 10,000 steps, float64 (800 MB written), by

- ``fastdecay``: ``s.table(n, out=preallocated)`` (re-anchored products, rows in parallel);
- ``numpy``: the fastest NumPy closed form found, ``exp(outer(ln gamma, t)) * lr`` in place
  (``numpy-pow``: ``lr * gamma[:, None] ** t``, also in place, for reference);
- ``torch-closed-form``: the same with torch tensor ops in place (two threads);
- ``torch-schedulers``: stepping torch ``ExponentialLR`` schedulers, one per gamma, on a
  subset (100 schedulers x 10,000 steps), reported per element and scaled to the full table;
- ``ceiling:numba-fill`` and ``ceiling:numpy-copyto``: writing a constant into the same array,
  the write-bandwidth ceiling of this machine.

Group ``schedule-table-exponential-float32``: the same table in float32 (400 MB),
fastdecay (computed in float64, rounded once) against NumPy's float32 exp form and a
float32 fill.

Group ``schedule-table-mixed``: a stack of 10,000 schedules of mixed kinds (cosine,
one-cycle, step, exponential, warmup-cosine, wsd, cyclic, inverse_sqrt) x 10,000 steps,
fastdecay against NumPy closed forms grouped by kind.

Group ``schedule-table-per-kind``: 2,000 schedules of one kind x 10,000 steps each, the
cost of a step by kind (the peers' options, products and per-step tables included).

Under ``--benchmark-disable`` (``make test``) every benchmark runs once on a small table.
"""

import math
import warnings

import numpy as np
import pytest
from numba import njit, prange

import fastdecay as fd

GROUP_EXP = "schedule-table-exponential"
GROUP_MIXED = "schedule-table-mixed"


def sizes(smoke):
    """(schedules, steps) of the full table."""
    return (64, 500) if smoke else (10_000, 10_000)


def record(benchmark, *, impl, nbytes, elements, scale=1.0, **extra):
    """extra_info for bench/report.py: impl, GB/s written and elements (schedule-steps)
    per second from the median; ``scale`` = full-size elements / measured elements."""
    benchmark.extra_info.update(impl=impl, bytes=nbytes, elements=elements, scale=scale, **extra)
    if benchmark.stats is not None:
        median = benchmark.stats.stats.median
        benchmark.extra_info["gbps"] = nbytes / median / 1e9
        benchmark.extra_info["steps_per_s"] = elements / median


def interleaved_ceiling(benchmark, run, out, rounds=7):
    """The write ceiling measured in turns with ``run`` (the machine is shared: load
    drifts between benchmarks, not within a few alternating rounds): extra_info
    ``ceiling_gbps`` (best fill) and ``fraction_of_ceiling`` (best fill time / best run time)."""
    import time

    fill_times, run_times = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        numba_fill(out, out.dtype.type(1.0))
        fill_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        run()
        run_times.append(time.perf_counter() - start)
    benchmark.extra_info["ceiling_gbps"] = out.nbytes / min(fill_times) / 1e9
    benchmark.extra_info["fraction_of_ceiling"] = min(fill_times) / min(run_times)


@pytest.fixture(scope="module")
def out_buffer(request):
    """One preallocated, touched output shared by every benchmark of the module."""
    smoke = bool(request.config.getoption("benchmark_disable", False))
    rows, n = sizes(smoke)
    buf = np.ones((rows, n))
    return buf


def exponential_grid(rows):
    # decays from 1 to at most 0.99 per step: after 10,000 steps every rate is still a
    # normal float (>= 2e-45 of lr), so no row is written as zeros or subnormals
    gammas = np.linspace(0.99, 0.99999, rows)
    lrs = np.full(rows, 0.1)
    return lrs, gammas


# ----------------------------------------------------------------------------- exponential table


def test_fastdecay_exponential_table(benchmark, smoke, out_buffer):
    rows, n = out_buffer.shape
    lrs, gammas = exponential_grid(rows)
    s = fd.exponential(lrs, gamma=gammas)
    s.table(n, out=out_buffer)  # compile / load outside the timing
    benchmark.group = GROUP_EXP
    result = benchmark(s.table, n, out=out_buffer)
    record(benchmark, impl="fastdecay", nbytes=out_buffer.nbytes, elements=out_buffer.size)
    if not smoke:
        interleaved_ceiling(benchmark, lambda: s.table(n, out=out_buffer), out_buffer)
    t = np.array([0, 1, n // 2, n - 1])
    np.testing.assert_allclose(result[:, t], lrs[:, None] * gammas[:, None] ** t, rtol=1e-13, atol=1e-300)


def numpy_exp_closed_form(lrs, gammas, out):
    n = out.shape[1]
    np.multiply.outer(np.log(gammas), np.arange(n, dtype=np.float64), out=out)
    np.exp(out, out=out)
    out *= lrs[:, None]
    return out


def numpy_pow_closed_form(lrs, gammas, out):
    n = out.shape[1]
    np.power(gammas[:, None], np.arange(n, dtype=np.float64)[None, :], out=out)
    out *= lrs[:, None]
    return out


@pytest.mark.parametrize("form", ["exp", "pow"])
def test_numpy_exponential_table(benchmark, smoke, out_buffer, form):
    rows, n = out_buffer.shape
    lrs, gammas = exponential_grid(rows)
    fn = numpy_exp_closed_form if form == "exp" else numpy_pow_closed_form
    benchmark.group = GROUP_EXP
    result = benchmark.pedantic(fn, args=(lrs, gammas, out_buffer), rounds=1 if smoke else 3, iterations=1)
    record(benchmark, impl="numpy" if form == "exp" else "numpy-pow", nbytes=out_buffer.nbytes,
           elements=out_buffer.size)
    np.testing.assert_allclose(result[:, -1], lrs * gammas ** (n - 1), rtol=1e-11)


def test_torch_closed_form_exponential_table(benchmark, smoke, out_buffer):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(2)
    rows, n = out_buffer.shape
    lrs, gammas = exponential_grid(rows)
    out = torch.from_numpy(out_buffer)
    lr_t = torch.from_numpy(lrs)[:, None]
    g_t = torch.from_numpy(gammas)[:, None]
    t = torch.arange(n, dtype=torch.float64)[None, :]

    def run():
        torch.pow(g_t, t, out=out)
        out.mul_(lr_t)
        return out

    benchmark.group = GROUP_EXP
    benchmark.pedantic(run, rounds=1 if smoke else 3, iterations=1)
    record(benchmark, impl="torch-closed-form", nbytes=out_buffer.nbytes, elements=out_buffer.size)
    np.testing.assert_allclose(out_buffer[:, -1], lrs * gammas ** (n - 1), rtol=1e-11)


def test_torch_schedulers_exponential_table(benchmark, smoke, out_buffer):
    """Stepping torch ExponentialLR schedulers on a subset of the grid (the rate read from
    the optimizer before each step, as a training loop sees it), scaled to the full table."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(2)
    rows, n = out_buffer.shape
    lrs, gammas = exponential_grid(rows)
    k = 4 if smoke else 100
    pick = np.linspace(0, rows - 1, k).astype(int)
    sub = np.empty((k, n))

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scheduler.step() without optimizer.step()
            for row, j in enumerate(pick):
                opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=float(lrs[j]))
                sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=float(gammas[j]))
                group = opt.param_groups[0]
                dest = sub[row]
                for i in range(n):
                    dest[i] = group["lr"]
                    sched.step()
        return sub

    benchmark.group = GROUP_EXP
    benchmark.pedantic(run, rounds=1 if smoke else 3, iterations=1)
    record(benchmark, impl="torch-schedulers", nbytes=sub.nbytes, elements=sub.size, scale=out_buffer.size / sub.size)
    np.testing.assert_allclose(sub, fd.exponential(lrs[pick], gamma=gammas[pick]).table(n), rtol=1e-11, atol=1e-300)


@njit(parallel=True, cache=True)
def numba_fill(out, value):
    """Write ``value`` everywhere, rows in parallel: the write-bandwidth ceiling."""
    for r in prange(out.shape[0]):
        row = out[r]
        for i in range(row.shape[0]):
            row[i] = value


def test_ceiling_numba_fill(benchmark, smoke, out_buffer):
    numba_fill(out_buffer, 1.0)
    benchmark.group = GROUP_EXP
    benchmark(numba_fill, out_buffer, 1.0)
    record(benchmark, impl="ceiling:numba-fill", nbytes=out_buffer.nbytes, elements=out_buffer.size)
    assert np.all(out_buffer[:, -1] == 1.0)


def test_ceiling_numpy_copyto(benchmark, smoke, out_buffer):
    benchmark.group = GROUP_EXP
    benchmark(np.copyto, out_buffer, 2.0)
    record(benchmark, impl="ceiling:numpy-copyto", nbytes=out_buffer.nbytes, elements=out_buffer.size)
    assert out_buffer[0, 0] == 2.0


# ----------------------------------------------------------------------------- float32 table

GROUP_EXP32 = "schedule-table-exponential-float32"


@pytest.fixture(scope="module")
def out_buffer32(request):
    smoke = bool(request.config.getoption("benchmark_disable", False))
    return np.ones(sizes(smoke), dtype=np.float32)


def test_fastdecay_exponential_table_float32(benchmark, smoke, out_buffer32):
    rows, n = out_buffer32.shape
    lrs, gammas = exponential_grid(rows)
    s = fd.exponential(lrs, gamma=gammas)
    s.table(n, out=out_buffer32)
    benchmark.group = GROUP_EXP32
    result = benchmark(s.table, n, out=out_buffer32)
    record(benchmark, impl="fastdecay", nbytes=out_buffer32.nbytes, elements=out_buffer32.size)
    if not smoke:
        interleaved_ceiling(benchmark, lambda: s.table(n, out=out_buffer32), out_buffer32)
    np.testing.assert_array_equal(result[:8], s[:8].table(n).astype(np.float32))


def test_numpy_exponential_table_float32(benchmark, smoke, out_buffer32):
    rows, n = out_buffer32.shape
    lrs, gammas = exponential_grid(rows)
    log_g = np.log(gammas).astype(np.float32)
    t = np.arange(n, dtype=np.float32)

    def run():
        np.multiply.outer(log_g, t, out=out_buffer32)
        np.exp(out_buffer32, out=out_buffer32)
        np.multiply(out_buffer32, lrs[:, None].astype(np.float32), out=out_buffer32)
        return out_buffer32

    benchmark.group = GROUP_EXP32
    benchmark.pedantic(run, rounds=1 if smoke else 3, iterations=1)
    record(benchmark, impl="numpy-float32", nbytes=out_buffer32.nbytes, elements=out_buffer32.size)
    assert np.isfinite(out_buffer32[0, -1])


def test_ceiling_numba_fill_float32(benchmark, smoke, out_buffer32):
    numba_fill(out_buffer32, np.float32(1.0))
    benchmark.group = GROUP_EXP32
    benchmark(numba_fill, out_buffer32, np.float32(1.0))
    record(benchmark, impl="ceiling:numba-fill", nbytes=out_buffer32.nbytes, elements=out_buffer32.size)
    assert np.all(out_buffer32[:, -1] == 1.0)


# ----------------------------------------------------------------------------- mixed kinds

MIXED_KINDS = ("cosine", "one_cycle", "step", "exponential", "warmup_cosine", "wsd", "cyclic", "inverse_sqrt")


def mixed_members(rows, n):
    """(kind, parameter) per row: kinds in turn, a parameter grid within each kind."""
    kinds = [MIXED_KINDS[r % len(MIXED_KINDS)] for r in range(rows)]
    u = (np.arange(rows) // len(MIXED_KINDS)) / max(1, rows // len(MIXED_KINDS))  # in [0, 1)
    return kinds, u


def mixed_schedule(rows, n):
    kinds, u = mixed_members(rows, n)
    by_kind = {}
    for r, k in enumerate(kinds):
        by_kind.setdefault(k, []).append(r)
    parts = {}
    for k, rs in by_kind.items():
        x = u[rs]
        lr = 0.05 + 0.1 * x
        if k == "cosine":
            parts[k] = fd.cosine(lr, n, min_lr=1e-4)
        elif k == "one_cycle":
            parts[k] = fd.one_cycle(lr, n, pct_start=0.3)
        elif k == "step":
            parts[k] = fd.step(lr, 0.5, np.maximum(1.0, np.round(n / 8 * (0.5 + x))))
        elif k == "exponential":
            parts[k] = fd.exponential(lr, gamma=1.0 - 10.0 ** (-2.0 - 2.0 * x))
        elif k == "warmup_cosine":
            parts[k] = fd.warmup(fd.cosine(lr, n - n // 10), n // 10)
        elif k == "wsd":
            parts[k] = fd.wsd(lr, n, warmup_steps=n // 20, decay="1-sqrt")
        elif k == "cyclic":
            parts[k] = fd.cyclic(lr / 10, lr, max(1, n // 20), mode="triangular2")
        elif k == "inverse_sqrt":
            parts[k] = fd.inverse_sqrt(lr, max(1, n // 25))
    order = []
    members = []
    for k, rs in by_kind.items():
        for j, r in enumerate(rs):
            order.append(r)
            members.append(parts[k][j])
    stacked = [None] * rows
    for r, m in zip(order, members):
        stacked[r] = m
    return fd.stack(stacked), kinds, u


def numpy_mixed(kinds, u, out):
    """NumPy closed forms, one vectorised expression per kind over its rows."""
    rows, n = out.shape
    t = np.arange(n, dtype=np.float64)[None, :]
    kinds = np.asarray(kinds)
    for k in MIXED_KINDS:
        rs = np.flatnonzero(kinds == k)
        if not rs.size:
            continue
        x = u[rs][:, None]
        lr = 0.05 + 0.1 * x
        if k == "cosine":
            v = 1e-4 + (lr - 1e-4) * (1 + np.cos(np.pi * np.minimum(t, n) / n)) / 2
        elif k == "one_cycle":
            up = 0.3 * n - 1
            init, final = lr / 25, lr / 25 / 1e4
            a = init + (lr - init) * (1 - np.cos(np.pi * np.minimum(t, up) / up)) / 2
            b = final + (lr - final) * (1 + np.cos(np.pi * np.clip(t - up, 0, n - 1 - up) / (n - 1 - up))) / 2
            v = np.where(t <= up, a, b)
        elif k == "step":
            v = lr * 0.5 ** np.floor(t / np.maximum(1.0, np.round(n / 8 * (0.5 + x))))
        elif k == "exponential":
            v = lr * (1.0 - 10.0 ** (-2.0 - 2.0 * x)) ** t
        elif k == "warmup_cosine":
            w, T = n // 10, n - n // 10
            v = np.where(t < w, lr * t / w, lr * (1 + np.cos(np.pi * np.minimum(t - w, T) / T)) / 2)
        elif k == "wsd":
            w, d = n // 20, round(0.2 * n)
            v = np.where(t < w, lr * t / w, np.where(t < n - d, lr, lr * (1 - np.sqrt(np.clip((t - (n - d)) / d, 0, 1)))))
        elif k == "cyclic":
            half = max(1, n // 20)
            cycle = np.floor(1 + t / (2 * half))
            xx = np.abs(t / half - 2 * cycle + 1)
            v = lr / 10 + (lr - lr / 10) * np.maximum(0, 1 - xx) * 0.5 ** (cycle - 1)
        else:
            w = max(1, n // 25)
            with np.errstate(divide="ignore"):
                v = np.where(t < w, lr * t / w, lr * np.sqrt(w / np.maximum(t, 1)))
        out[rs] = v
    return out


def test_fastdecay_mixed_table(benchmark, smoke, out_buffer):
    rows, n = out_buffer.shape
    s, kinds, u = mixed_schedule(rows, n)
    s.table(n, out=out_buffer)
    benchmark.group = GROUP_MIXED
    result = benchmark(s.table, n, out=out_buffer)
    record(benchmark, impl="fastdecay", nbytes=out_buffer.nbytes, elements=out_buffer.size)
    check = np.empty((min(rows, 64), n))
    numpy_mixed(kinds[: check.shape[0]], u[: check.shape[0]], check)
    np.testing.assert_allclose(result[: check.shape[0]], check, rtol=1e-9, atol=1e-15)


def test_numpy_mixed_table(benchmark, smoke, out_buffer):
    rows, n = out_buffer.shape
    kinds, u = mixed_members(rows, n)
    benchmark.group = GROUP_MIXED
    benchmark.pedantic(numpy_mixed, args=(kinds, u, out_buffer), rounds=1, iterations=1)
    record(benchmark, impl="numpy", nbytes=out_buffer.nbytes, elements=out_buffer.size)
    assert math.isfinite(out_buffer[-1, -1])


# ----------------------------------------------------------------------------- per kind

GROUP_KINDS = "schedule-table-per-kind"


def per_kind_schedules(rows, n):
    lr = np.linspace(0.05, 0.15, rows)
    return {
        "constant": fd.constant(lr),
        "step": fd.step(lr, 0.5, max(1, n // 10)),
        "exponential": fd.exponential(lr, gamma=0.999),
        "linear": fd.linear(lr, 0.0, n),
        "wsd-1-sqrt": fd.wsd(lr, n, warmup_steps=n // 20, decay="1-sqrt"),
        "cosine": fd.cosine(lr, n),
        "one_cycle": fd.one_cycle(lr, n),
        "cyclic-triangular2": fd.cyclic(lr / 10, lr, max(1, n // 20), mode="triangular2"),
        "inverse_sqrt": fd.inverse_sqrt(lr, max(1, n // 25)),
        "polynomial-power-2": fd.polynomial(lr, n, power=2.0),
        "cosine_restarts": fd.cosine_restarts(lr, max(1, n // 100), period_mult=2),
        "cosine-num_cycles-exponent": fd.cosine(lr, n, num_cycles=1.5, exponent=2.0),
        "cosine_restarts-cycle_decay": fd.cosine_restarts(lr, max(1, n // 100), period_mult=2, cycle_decay=0.8),
        "product-cosine-x-step": fd.cosine(lr, n) * fd.step(1.0, 0.5, max(1, n // 10)),
        "tabulated": fd.tabulated(fd.cosine(lr, n).table(n)),
    }


@pytest.mark.parametrize("kind", list(per_kind_schedules(1, 10)))
def test_fastdecay_table_per_kind(benchmark, smoke, kind):
    """2,000 schedules of one kind x 10,000 steps, float64: the cost of a step by kind."""
    rows, n = (16, 500) if smoke else (2_000, 10_000)
    s = per_kind_schedules(rows, n)[kind]
    out = np.empty((rows, n))
    s.table(n, out=out)
    benchmark.group = GROUP_KINDS
    benchmark(s.table, n, out=out)
    record(benchmark, impl=kind, nbytes=out.nbytes, elements=out.size)
    if benchmark.stats is not None:
        benchmark.extra_info["ns_per_step"] = benchmark.stats.stats.median / out.size * 1e9
    np.testing.assert_allclose(out[:, :: max(1, n // 97)], s(np.arange(0, n, max(1, n // 97))[:, None]).T, rtol=1e-13)
