"""Fused updates (fd.sgd_step, fd.adamw_step, fd.lion_step) against torch's fused, foreach and
single-tensor optimizers, plain NumPy and ``jax.jit`` (up to 2e7 elements), and against a
streaming kernel with the same memory pattern (the ceiling).
torch has no Lion: its row is lion-pytorch's update written with torch's foreach ops
(``torch_foreach_lion``), the fastest way to write it in torch without a custom kernel.

Each benchmark times ``fastdecay`` with pytest-benchmark and, in the same run and
interleaved round by round, torch's three CPU paths, NumPy, JAX and the ceiling; medians,
GB/s moved and ratios go to ``benchmark.extra_info``. Bytes moved per float32
element: SGD reads w, g and writes w (12); SGD+momentum also reads and writes
the buffer (20), as Lion does with its moment (20); AdamW reads w, g, m, v and writes
w, m, v (28).

Run: ``flock /tmp/fastdecay-bench.lock .venv/bin/python -m pytest bench/bench_updates.py
--benchmark-only --benchmark-columns=median,iqr -q -s`` (``-s`` prints the summary lines).
"""

import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
from numba import float32, njit, prange, void

import fastdecay as fd
from fastdecay._cpu.updates import BLOCK

torch = pytest.importorskip("torch")
torch.set_num_threads(2)

BYTES = {"sgd": 12, "sgd_momentum": 20, "adamw": 28, "lion": 20}
ARRAYS = {"sgd": 2, "sgd_momentum": 3, "adamw": 4, "lion": 3}  # w, g, then state

F32 = float32[::1]


# ----------------------------------------------------------------------------- the ceiling: same streams, no math


@njit(void(F32, F32, float32), parallel=True, cache=True)
def _stream_r2_w1(w, g, c):
    n = w.shape[0]
    for b in prange((n + BLOCK - 1) // BLOCK):
        lo, hi = b * BLOCK, min(n, (b + 1) * BLOCK)
        wb, gb = w[lo:hi], g[lo:hi]
        for i in range(hi - lo):
            wb[i] = wb[i] + c * gb[i]


@njit(void(F32, F32, F32, float32), parallel=True, cache=True)
def _stream_r3_w2(w, g, u, c):
    n = w.shape[0]
    for b in prange((n + BLOCK - 1) // BLOCK):
        lo, hi = b * BLOCK, min(n, (b + 1) * BLOCK)
        wb, gb, ub = w[lo:hi], g[lo:hi], u[lo:hi]
        for i in range(hi - lo):
            x = ub[i] * c + gb[i]
            ub[i] = x
            wb[i] = wb[i] + x


@njit(void(F32, F32, F32, F32, float32), parallel=True, cache=True)
def _stream_r4_w3(w, g, u, v, c):
    n = w.shape[0]
    for b in prange((n + BLOCK - 1) // BLOCK):
        lo, hi = b * BLOCK, min(n, (b + 1) * BLOCK)
        wb, gb, ub, vb = w[lo:hi], g[lo:hi], u[lo:hi], v[lo:hi]
        for i in range(hi - lo):
            x = ub[i] * c + gb[i]
            y = vb[i] * c + gb[i]
            ub[i] = x
            vb[i] = y
            wb[i] = wb[i] + x + y


CEILING = {"sgd": _stream_r2_w1, "sgd_momentum": _stream_r3_w2, "adamw": _stream_r4_w3, "lion": _stream_r3_w2}


def torch_foreach_lion(params, grads, exp_avgs, *, lr=1e-4, weight_decay=1e-2, betas=(0.9, 0.99)):
    """lion-pytorch's update over lists of tensors with torch's foreach ops (torch has no Lion)."""
    beta1, beta2 = betas
    torch._foreach_mul_(params, 1 - lr * weight_decay)
    update = torch._foreach_mul(exp_avgs, beta1)
    torch._foreach_add_(update, grads, alpha=1 - beta1)
    torch._foreach_sign_(update)
    torch._foreach_add_(params, update, alpha=-lr)
    torch._foreach_mul_(exp_avgs, beta2)
    torch._foreach_add_(exp_avgs, grads, alpha=1 - beta2)


# ----------------------------------------------------------------------------- set-ups


def _tensors(shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g) * 0.01 for s in shapes]


def _transformer_shapes(d, layers, vocab, context):
    """A GPT-style model's parameter shapes: ~200 tensors of mixed sizes."""
    shapes = [(vocab, d), (context, d)]
    for _ in range(layers):
        shapes += [(d,), (d,), (3 * d, d), (3 * d,), (d, d), (d,), (d,), (d,), (4 * d, d), (4 * d,), (d, 4 * d), (d,)]
    return shapes + [(d,), (d,)]


class Case:
    """Parameters, grads and state for one op: ours and torch's on separate copies."""

    def __init__(self, op, shapes):
        self.op = op
        self.n = sum(int(np.prod(s)) for s in shapes)
        self.params = _tensors(shapes, 0)
        self.grads = _tensors(shapes, 1)
        self.state = [[torch.zeros(s) for s in shapes] for _ in range(ARRAYS[op] - 2)]
        self.torch_params = [torch.nn.Parameter(p.clone()) for p in self.params]
        for p, g in zip(self.torch_params, self.grads):
            p.grad = g.clone()
        self.step = 1

    def ours(self, lr=1e-3, weight_decay=1e-2):
        if self.op == "lion":
            fd.lion_step(self.params, self.grads, self.state[0], step=self.step, lr=lr, weight_decay=weight_decay)
        elif self.op == "adamw":
            fd.adamw_step(self.params, self.grads, self.state[0], self.state[1], step=self.step, lr=lr,
                          weight_decay=weight_decay)
        else:
            momentum = 0.9 if self.op == "sgd_momentum" else 0.0
            fd.sgd_step(self.params, self.grads, step=self.step, lr=lr, weight_decay=weight_decay,
                        momentum=momentum, momentum_buffer=self.state[0] if momentum else None)
        self.step += 1

    def kernel_only(self):
        """The compiled kernel launched directly with a prebuilt address table (flat case): the
        cost of the kernel without fastdecay's per-call checks and launch plan."""
        from fastdecay._cpu import updates as cpu
        from fastdecay._validate import constant_table as _constant_table

        streams = [self.params, self.grads] + self.state
        addresses = np.zeros((cpu.ROWS, len(self.params)), dtype=np.int64)
        for r, arrays in enumerate(streams):
            addresses[r] = [x.data_ptr() for x in arrays]
        sizes = np.array([p.numel() for p in self.params], dtype=np.int64)
        first_block = cpu.block_layout(sizes)
        parts = cpu.part_layout(sizes, first_block, cpu.threads_for(self.n))
        lr, wd = _constant_table(1e-3), _constant_table(1e-2)
        common = dict(step=3.0, compensated=False, grad_scale=None, found_inf=None)
        if self.op == "lion":  # options in the order of fastdecay._rules.FUSED["lion"].options
            tables, options, kernel = (lr, wd, _constant_table(0.9)), (0.99, False), "lion"
        elif self.op == "adamw":
            tables, options, kernel = (lr, wd, _constant_table(0.9)), (0.999, 1e-8, True, False, False), "adam"
        else:
            momentum = 0.9 if self.op == "sgd_momentum" else 0.0
            tables, options, kernel = (lr, wd, _constant_table(momentum)), (0.0, False, False, False, False, 0, 0.0), "sgd"
        return lambda: cpu.fused_launch(kernel, "float32", "float32", addresses, sizes, first_block, parts, self.n,
                                        tables=tables, options=options, **common)

    def ours_per_tensor(self):
        """The same update as one fastdecay call per tensor: what the single launch saves."""
        for k in range(len(self.params)):
            if self.op == "lion":
                fd.lion_step(self.params[k], self.grads[k], self.state[0][k], step=self.step, lr=1e-3,
                             weight_decay=1e-2)
            elif self.op == "adamw":
                fd.adamw_step(self.params[k], self.grads[k], self.state[0][k], self.state[1][k], step=self.step,
                              lr=1e-3, weight_decay=1e-2)
            else:
                momentum = 0.9 if self.op == "sgd_momentum" else 0.0
                fd.sgd_step(self.params[k], self.grads[k], step=self.step, lr=1e-3, weight_decay=1e-2,
                            momentum=momentum, momentum_buffer=self.state[0][k] if momentum else None)
        self.step += 1

    def torch_optimizer(self, **path):
        if self.op == "lion":  # foreach ops only: torch has no Lion, fused or single-tensor
            params = [p.detach() for p in self.torch_params]
            grads = [p.grad for p in self.torch_params]
            exp_avgs = [torch.zeros_like(p) for p in params]
            return lambda: torch_foreach_lion(params, grads, exp_avgs, lr=1e-3, weight_decay=1e-2)
        if self.op == "adamw":
            opt = torch.optim.AdamW(self.torch_params, lr=1e-3, weight_decay=1e-2, **path)
        else:
            momentum = 0.9 if self.op == "sgd_momentum" else 0.0
            opt = torch.optim.SGD(self.torch_params, lr=1e-3, weight_decay=1e-2, momentum=momentum, **path)
        opt.step()  # creates the state (torch's first step differs)
        return opt.step

    def numpy_step(self):
        """The same update in plain NumPy on copies of the arrays, in place (``out=`` ufuncs and
        one scratch array a tensor): what a hand-written NumPy loop over the list costs."""
        ws = [p.clone().numpy() for p in self.params]
        gs = [g.clone().numpy() for g in self.grads]
        states = [[s.clone().numpy() for s in column] for column in self.state]
        scratch = [np.empty_like(w) for w in ws]
        t = [self.step]
        update = _NUMPY_UPDATES[self.op]
        self.numpy_weights = ws

        def run():
            for k, (w, g, tmp) in enumerate(zip(ws, gs, scratch)):
                update(w, g, [column[k] for column in states], tmp, t[0])
            t[0] += 1

        return run

    def jax_step(self):
        """The same update as one ``jax.jit`` over the whole list (``_jax_run``)."""
        run, self.jax_weights = _jax_run(self.op, self.params, self.grads, self.state, self.step)
        return run

    def ceiling(self):
        """The streaming kernel over flat buffers of the same total size: the machine's
        bandwidth for this access pattern (a list's ceiling is its flat equivalent)."""
        arrays = [torch.full((self.n,), 0.5).numpy() for _ in range(ARRAYS[self.op])]
        kernel = CEILING[self.op]

        def run():
            kernel(*arrays, np.float32(0.5))

        return run


# The updates of ``Case.ours`` (lr 1e-3, weight decay 1e-2; momentum 0.9; Adam's betas (0.9,
# 0.999), eps 1e-8; Lion's (0.9, 0.99)) in plain NumPy, in place: (w, g, state, scratch, t),
# t the updates made before this one (fastdecay's ``step``)
_LR, _WD = 1e-3, 1e-2


def _numpy_sgd(w, g, state, tmp, t):
    np.multiply(w, _WD, out=tmp)  # L2: g + wd * w, as torch's SGD
    tmp += g
    if state:
        buf = state[0]
        if t > 0:
            buf *= 0.9
            buf += tmp
        else:
            buf[...] = tmp
        np.multiply(buf, _LR, out=tmp)
    else:
        tmp *= _LR
    w -= tmp


def _numpy_adamw(w, g, state, tmp, t):
    m, v = state
    w *= 1 - _LR * _WD
    m *= 0.9
    np.multiply(g, 0.1, out=tmp)
    m += tmp
    v *= 0.999
    np.multiply(g, g, out=tmp)
    tmp *= 0.001
    v += tmp
    np.sqrt(v, out=tmp)
    tmp /= (1 - 0.999 ** (t + 1)) ** 0.5
    tmp += 1e-8
    np.divide(m, tmp, out=tmp)
    tmp *= _LR / (1 - 0.9 ** (t + 1))
    w -= tmp


def _numpy_lion(w, g, state, tmp, t):
    m = state[0]
    w *= 1 - _LR * _WD
    np.multiply(m, 0.9, out=tmp)
    tmp += 0.1 * g
    np.sign(tmp, out=tmp)
    tmp *= _LR
    w -= tmp
    m *= 0.99
    m += 0.01 * g


_NUMPY_UPDATES = {"sgd": _numpy_sgd, "sgd_momentum": _numpy_sgd, "adamw": _numpy_adamw, "lion": _numpy_lion}


def _jax_sgd(w, g, state, t):
    import jax.numpy as jnp

    d = g + _WD * w
    if not state:
        return w - _LR * d, []
    buf = jnp.where(t > 0, 0.9 * state[0] + d, d)
    return w - _LR * buf, [buf]


def _jax_adamw(w, g, state, t):
    import jax.numpy as jnp

    m, v = state
    w = w * (1 - _LR * _WD)
    m = 0.9 * m + 0.1 * g
    v = 0.999 * v + 0.001 * g * g
    denom = jnp.sqrt(v) / jnp.sqrt(1 - 0.999 ** (t + 1)) + 1e-8
    return w - (_LR / (1 - 0.9 ** (t + 1))) * m / denom, [m, v]


def _jax_lion(w, g, state, t):
    import jax.numpy as jnp

    m = state[0]
    w = w * (1 - _LR * _WD) - _LR * jnp.sign(0.9 * m + 0.1 * g)
    return w, [0.99 * m + 0.01 * g]


_JAX_UPDATES = {"sgd": _jax_sgd, "sgd_momentum": _jax_sgd, "adamw": _jax_adamw, "lion": _jax_lion}


def _jax_run(op, params, grads, state, step):
    """(run, weights): ``run()`` makes ``op``'s update (``_JAX_UPDATES``) as one ``jax.jit`` over
    the whole list (XLA fuses each tensor's update into one loop), the parameters and state
    donated (updated in their buffers where XLA can), on copies of the float32 tensors, and
    waits for its results; ``weights()`` the parameters as NumPy arrays."""
    import jax
    import jax.numpy as jnp

    ws = [jnp.asarray(p.detach().numpy()) for p in params]
    gs = [jnp.asarray(g.numpy()) for g in grads]
    states = [[jnp.asarray(s.numpy()) for s in column] for column in state]
    update = _JAX_UPDATES[op]

    def step_all(ws, gs, states, t):
        new = [update(w, g, [column[k] for column in states], t) for k, (w, g) in enumerate(zip(ws, gs))]
        return [w for w, _ in new], [[st[c] for _, st in new] for c in range(len(states))]

    jitted = jax.jit(step_all, donate_argnums=(0, 2))
    held = {"ws": ws, "states": states, "t": step}

    def run():
        held["ws"], held["states"] = jitted(held["ws"], gs, held["states"], jnp.float32(held["t"]))
        jax.block_until_ready((held["ws"], held["states"]))
        held["t"] += 1

    return run, lambda: [np.asarray(w) for w in held["ws"]]


def _interleaved_medians(fns, rounds, min_seconds):
    """Median seconds per call of each fn, timed round-robin so drift hits all alike.

    Each turn first makes one untimed call: torch and Numba run separate OpenMP
    runtimes whose threads spin for a while after a parallel region, and the first
    call after switching would pay for the other runtime's spinning threads.
    """
    times = {k: [] for k in fns}
    start = time.perf_counter()
    r = 0
    while r < rounds or (time.perf_counter() - start < min_seconds and r < 20 * rounds):
        for k, fn in fns.items():
            fn()
            for _ in range(2):
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
        r += 1
    return {k: statistics.median(v) for k, v in times.items()}


def record(benchmark, *, impl, nbytes, elements, **extra):
    """extra_info for bench/report.py: impl, GB/s moved and elements per second from the median."""
    benchmark.extra_info.update(impl=impl, bytes=nbytes, elements=elements, **extra)
    if benchmark.stats is not None:
        median = benchmark.stats.stats.median
        benchmark.extra_info["gbps"] = nbytes / median / 1e9
        benchmark.extra_info["steps_per_s"] = elements / median


IMPLS = ["fastdecay", "torch-fused", "torch-foreach", "torch-single", "ceiling:stream"]
TORCH_PATHS = {"torch-fused": dict(fused=True), "torch-foreach": dict(foreach=True),
               "torch-single": dict(foreach=False)}


def _run(benchmark, smoke, case, impl, group, interleave):
    """Time ``impl`` on ``case`` (one row of ``group``); the fastdecay row also times every
    baseline interleaved with itself (``interleave``), so its ratios come from one stretch."""
    if case.op == "lion" and impl in ("torch-fused", "torch-single"):
        pytest.skip("torch has no Lion: its row is the foreach-ops Lion (torch-foreach)")
    benchmark.group = group
    if impl == "fastdecay":
        fn = case.ours
    elif impl == "fastdecay-per-tensor-calls":
        fn = case.ours_per_tensor
    elif impl == "fastdecay-kernel-only":
        fn = case.kernel_only()
    elif impl.startswith("ceiling"):
        fn = case.ceiling()
    else:
        fn = case.torch_optimizer(**TORCH_PATHS[impl])
    fn()  # compile, create state, fault pages in
    rounds = 1 if smoke else (7 if case.n >= 50_000_000 else 15)
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=0 if smoke else 1)
    moved = BYTES[case.op] * case.n
    extra = {"tensors": len(case.params), "bytes_per_element": BYTES[case.op]}
    if impl == "fastdecay" and interleave:
        fns = {"fastdecay": fn, **{k: f() for k, f in interleave.items()}}
        med = _interleaved_medians(fns, rounds=1 if smoke else rounds, min_seconds=0 if smoke else 2.0)
        for k, sec in med.items():
            extra[f"interleaved_{k}_ms"] = round(sec * 1e3, 4)
            if k != "fastdecay":
                extra[f"interleaved_speedup_vs_{k}"] = round(sec / med["fastdecay"], 3)
        ceilings = [sec for k, sec in med.items() if k.startswith("ceiling")]
        if ceilings:
            extra["ceiling_gbps"] = moved / min(ceilings) / 1e9
            extra["interleaved_fraction_of_ceiling"] = round(min(ceilings) / med["fastdecay"], 3)
            if "fastdecay-kernel-only" in med:
                extra["interleaved_kernel_only_fraction_of_ceiling"] = round(
                    min(ceilings) / med["fastdecay-kernel-only"], 3)
        print(f"\n{group}: " + ", ".join(f"{k}={v}" for k, v in extra.items() if k.startswith("interleaved")))
    record(benchmark, impl=impl, nbytes=moved, elements=case.n, **extra)


def _has_jax():
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


def _baselines(case, with_per_tensor=False):
    """Callables that build each baseline's step function (for the interleaved comparison):
    torch's paths, plain NumPy and ``jax.jit`` (where JAX is installed, and up to 2e7
    elements: each keeps its own copy of the arrays), the ceiling."""
    out = {k: (lambda kw=kw: case.torch_optimizer(**kw)) for k, kw in TORCH_PATHS.items()
           if case.op != "lion" or k == "torch-foreach"}
    if case.n <= 20_000_000:
        out["numpy"] = case.numpy_step
        if _has_jax():
            out["jax"] = case.jax_step
    out["ceiling:stream"] = case.ceiling
    out["fastdecay-kernel-only"] = case.kernel_only
    if with_per_tensor:
        out["fastdecay-per-tensor-calls"] = lambda: case.ours_per_tensor
    return out


@pytest.mark.parametrize("op", list(BYTES))
def test_numpy_and_jax_baselines_make_fastdecays_update(op):
    """The NumPy and JAX rows compute the update fastdecay's row does (float32, three steps on
    odd sizes, torch's formulas): a faster row that skipped work would not be a comparison.
    (NumPy within a few float32 roundings; JAX's AdamW within ~1e-5 of the step's size: XLA's
    float32 square root and division on the CPU are not IEEE's correctly rounded ones.)"""
    pytest.importorskip("jax")
    case = Case(op, [(37,), (5, 11)])
    runs = [case.numpy_step(), case.jax_step()]
    for _ in range(3):
        for run in runs:
            run()
        case.ours()
    want = [p.numpy() for p in case.params]
    for got, atol in ((case.numpy_weights, 1e-8), (case.jax_weights(), 1e-7)):  # (steps of ~1e-3)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=0, atol=atol)
    assert not np.allclose(want[0], _tensors([(37,)], 0)[0].numpy(), rtol=1e-7, atol=0)  # the weights moved


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("op", list(BYTES))
@pytest.mark.parametrize("n", [1_000_000, 20_000_000, 100_000_000], ids=["1e6", "2e7", "1e8"])
def test_flat_buffer(benchmark, smoke, op, n, impl):
    if smoke:
        if n != 1_000_000:
            pytest.skip("smoke mode (--benchmark-disable): the 1e6 size stands in for the large ones")
        n = 10_007
    if n >= 100_000_000 and impl in ("torch-foreach", "torch-single") and op != "adamw":
        pytest.skip("one tensor: torch's foreach and single paths cost the same minute twice; see 2e7")
    case = Case(op, [(n,)])
    interleave = _baselines(case) if impl == "fastdecay" else None
    if interleave and n >= 100_000_000 and op != "adamw":
        interleave.pop("torch-single")
    _run(benchmark, smoke, case, impl, f"updates-{op}-flat-{n:.0e}", interleave)


@pytest.mark.parametrize("impl", IMPLS + ["fastdecay-per-tensor-calls"])
@pytest.mark.parametrize("op", list(BYTES))
def test_transformer_param_list(benchmark, smoke, op, impl):
    """196 tensors of a small GPT's shapes (d_model 256, 16 layers; 14.8M elements) in one call."""
    shapes = _transformer_shapes(32, 16, 100, 64) if smoke else _transformer_shapes(256, 16, 8000, 512)
    case = Case(op, shapes)
    interleave = _baselines(case, with_per_tensor=True) if impl == "fastdecay" else None
    _run(benchmark, smoke, case, impl, f"updates-{op}-list-{len(shapes)}-tensors", interleave)


@pytest.mark.parametrize("op", ["sgd_momentum", "adamw"])
def test_scheduled_lr_and_weight_decay_cost(benchmark, smoke, op):
    """Schedules read in the kernel against plain floats: the cost of scheduling."""
    n = 10_007 if smoke else 20_000_000
    case = Case(op, [(n,)])
    lr = fd.warmup(fd.cosine(1e-3, 10_000), 100)
    wd = fd.constant_shrinkage(fd.exponential(1e-3, gamma=0.9995), 1e-2)
    fns = {"constants": lambda: case.ours(1e-3, 1e-2), "scheduled": lambda: case.ours(lr, wd)}
    for fn in fns.values():
        fn()
    benchmark.group = f"updates-{op}-schedule-cost"
    benchmark.pedantic(fns["scheduled"], rounds=1 if smoke else 15, iterations=1)
    med = _interleaved_medians(fns, rounds=1 if smoke else 31, min_seconds=0 if smoke else 3.0)
    overhead = med["scheduled"] / med["constants"] - 1.0
    record(benchmark, impl="fastdecay", nbytes=BYTES[op] * n, elements=n)
    benchmark.extra_info.update({"constants_ms": round(med["constants"] * 1e3, 4),
                                 "scheduled_ms": round(med["scheduled"] * 1e3, 4),
                                 "schedule_overhead_pct": round(100 * overhead, 2)})
    print(f"\n{op} n={n}: scheduled vs constants overhead {100 * overhead:+.2f} %")


_COLD = """
import time
t0 = time.perf_counter()
import numpy as np
import fastdecay as fd
t1 = time.perf_counter()
w, g, m, v = (np.ones(1000, np.float32) for _ in range(4))
fd.adamw_step(w, g, m, v, step=0, lr=1e-3)
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def _cold_runs(runs, env=None):
    out = []
    for _ in range(runs):
        res = subprocess.run([sys.executable, "-c", _COLD], capture_output=True, text=True, env=env, check=True)
        out.append(tuple(float(x) for x in res.stdout.split()))
    return out


def test_cold_start(benchmark, smoke):
    """Fresh process, Numba cache warm: seconds of the first adamw_step beyond ``import fastdecay``.

    Outside smoke mode also the cold compile (an empty NUMBA_CACHE_DIR).
    """
    _cold_runs(1)  # make sure the on-disk cache is warm
    runs = []
    benchmark.group = "updates-cold-start"
    benchmark.extra_info["impl"] = "fastdecay"
    # the timed unit is a whole fresh interpreter; the figures that matter are in extra_info
    benchmark.pedantic(lambda: runs.extend(_cold_runs(1)), rounds=1 if smoke else 7, iterations=1)
    first = statistics.median(r[1] for r in runs)
    info = {"import_fastdecay_s": round(statistics.median(r[0] for r in runs), 3), "first_adamw_step_s": round(first, 3)}
    if not smoke:
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            info["cold_compile_first_adamw_step_s"] = round(_cold_runs(1, env)[0][1], 2)
    benchmark.extra_info.update(info)
    print(f"\ncold start: {info}")


# ----------------------------------------------------------------------------- real models' parameter lists


def _resnet_shapes(blocks, bottleneck):
    """torchvision ResNet parameter shapes (convolutions, batch-norm weight and bias, fc)."""
    shapes = [(64, 3, 7, 7), (64,), (64,)]
    inplanes = 64
    for layer, count in enumerate(blocks):
        planes = 64 * 2**layer
        out = planes * 4 if bottleneck else planes
        for b in range(count):
            if bottleneck:
                shapes += [(planes, inplanes, 1, 1), (planes,), (planes,), (planes, planes, 3, 3), (planes,), (planes,),
                           (out, planes, 1, 1), (out,), (out,)]
            else:
                shapes += [(planes, inplanes, 3, 3), (planes,), (planes,), (planes, planes, 3, 3), (planes,), (planes,)]
            if b == 0 and (inplanes != out or layer > 0):
                shapes += [(out, inplanes, 1, 1), (out,), (out,)]
            inplanes = out
    return shapes + [(1000, inplanes), (1000,)]


def _gpt2_shapes(d=768, layers=12, vocab=50257, context=1024):
    shapes = [(vocab, d), (context, d)]
    for _ in range(layers):
        shapes += [(d,), (d,), (d, 3 * d), (3 * d,), (d, d), (d,), (d,), (d,), (d, 4 * d), (4 * d,), (4 * d, d), (d,)]
    return shapes + [(d,), (d,)]


def _bert_shapes(d=768, layers=12, vocab=30522, context=512):
    shapes = [(vocab, d), (context, d), (2, d), (d,), (d,)]
    for _ in range(layers):
        shapes += [(d, d), (d,)] * 4 + [(d,), (d,), (4 * d, d), (4 * d,), (d, 4 * d), (d,), (d,), (d,)]
    return shapes + [(d, d), (d,)]


MODELS = {
    "resnet18": lambda: _resnet_shapes([2, 2, 2, 2], False),  # 62 tensors, 11.7M
    "resnet50": lambda: _resnet_shapes([3, 4, 6, 3], True),  # 161 tensors, 25.6M
    "gpt2-small": _gpt2_shapes,  # 148 tensors, 124.4M
    "bert-base": _bert_shapes,  # 199 tensors, 109.5M (with the pooler)
    "tiny-2000x256": lambda: [(256,)] * 2000,
}
# (parameter dtype, state dtype of fastdecay, Kahan compensation); torch keeps its state in the
# parameter dtype. With compensation, optimi's AdamW (kahan_sum=True, its bfloat16 default, state in
# the parameter dtype) is timed too where installed: the peer that does the same thing.
CONFIGS = {"fp32": (torch.float32, None, False), "bf16-state-fp32": (torch.bfloat16, None, False),
           "bf16-state-bf16": (torch.bfloat16, "bfloat16", False),
           "bf16-state-bf16-kahan": (torch.bfloat16, "bfloat16", True)}


class ModelCase:
    """One model's parameters and gradients, shared by every optimizer timed on them (each keeps
    its own state); the values drift by at most lr per step, which the timing does not see."""

    def __init__(self, shapes, dtype, state_dtype, compensated=False):
        self.n = sum(int(np.prod(s)) for s in shapes)
        self.compensated = compensated
        self.compensation = [torch.zeros(s, dtype=dtype) for s in shapes] if compensated else None
        self.params = [torch.nn.Parameter(t.to(dtype)) for t in _tensors(shapes, 0)]
        for p, g in zip(self.params, _tensors(shapes, 1)):
            p.grad = g.to(dtype)
        self.grads = [p.grad for p in self.params]
        self.state_dtype = state_dtype
        sdt = torch.bfloat16 if state_dtype == "bfloat16" else (torch.float32 if dtype != torch.float64 else dtype)
        self.exp_avg = [torch.zeros(s, dtype=sdt) for s in shapes]
        self.exp_avg_sq = [torch.zeros(s, dtype=sdt) for s in shapes]
        self.step = 1

    def functional(self):
        """``fd.adamw_step`` over the whole list (one call, the launch plan reused)."""
        def run():
            fd.adamw_step(self.params, self.grads, self.exp_avg, self.exp_avg_sq, step=self.step, lr=1e-3,
                          weight_decay=1e-2, state_dtype=self.state_dtype, compensated=self.compensated,
                          compensation_buffer=self.compensation)
            self.step += 1
        return run

    def fastdecay_optimizer(self):
        from fastdecay.torch import AdamW

        opt = AdamW(self.params, lr=1e-3, weight_decay=1e-2, state_dtype=self.state_dtype,
                    compensated=self.compensated)
        opt.step()
        return opt.step

    def optimi_optimizer(self):
        """optimi's AdamW with Kahan summation (its default for bfloat16 parameters), torch's
        hyperparameters, its for-loop implementation: on the CPU the faster of its two (ResNet-18
        in bfloat16, 2026-12-04: 19.0 ms a step against 22.8 ms for its foreach one)."""
        import optimi

        opt = optimi.AdamW(self.params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, kahan_sum=True,
                           foreach=False)
        opt.step()
        return opt.step

    def torch_optimizer(self, params=None, **path):
        opt = torch.optim.AdamW(self.params if params is None else params, lr=1e-3, weight_decay=1e-2, **path)
        opt.step()
        return opt.step

    def torch_fp32_fused(self):
        """torch's fused AdamW on float32 copies of the parameters (the bfloat16 targets' baseline)."""
        params = [torch.nn.Parameter(p.detach().float()) for p in self.params]
        for p, q in zip(params, self.params):
            p.grad = q.grad.float()
        return self.torch_optimizer(params, fused=True)


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("model", list(MODELS))
def test_model_param_list_adamw(benchmark, smoke, model, config):
    """AdamW over a real model's parameter list: ``fd.adamw_step`` and ``fastdecay.torch.AdamW``
    against torch's fused and foreach AdamW on the same tensors (and, float32 lists up to 3e7
    elements, one ``jax.jit`` of AdamW over copies), interleaved in one run.

    Targets: >= 1.2x torch fused on the model lists, >= 2x on the 2,000 tiny tensors, and
    bfloat16 parameters with bfloat16 state >= 1.6x torch fused on float32. With Kahan
    compensation (``-kahan``) optimi's compensated AdamW runs beside them where installed.
    """
    shapes = MODELS[model]()
    if smoke:
        shapes = [tuple(max(1, d // 64) for d in s) for s in shapes[:40]]
    dtype, state_dtype, compensated = CONFIGS[config]
    case = ModelCase(shapes, dtype, state_dtype, compensated)
    fns = {"fastdecay": case.functional(), "fastdecay.torch.AdamW": case.fastdecay_optimizer(),
           "torch-fused": case.torch_optimizer(fused=True), "torch-foreach": case.torch_optimizer(foreach=True)}
    if compensated and importlib.util.find_spec("optimi") is not None:
        fns["optimi-kahan"] = case.optimi_optimizer()
    if dtype != torch.float32:
        fns["torch-fused-fp32"] = case.torch_fp32_fused()
    elif case.n <= 30_000_000 and _has_jax():  # (a copy of every array; GPT-2 and BERT left out)
        fns["jax"] = _jax_run("adamw", case.params, case.grads, [case.exp_avg, case.exp_avg_sq], case.step)[0]
    fns["fastdecay"]()  # compile (or load) the kernel, build the launch plan
    benchmark.group = f"updates-adamw-model-{model}-{config}"
    rounds = 1 if smoke else (7 if case.n > 50_000_000 else 15)
    benchmark.pedantic(fns["fastdecay"], rounds=rounds, iterations=1, warmup_rounds=0)
    med = _interleaved_medians(fns, rounds=rounds, min_seconds=0 if smoke else 2.0)
    extra = {"tensors": len(shapes), "elements": case.n}
    for k, sec in med.items():
        extra[f"interleaved_{k}_ms"] = round(sec * 1e3, 4)
    for ours in ("fastdecay", "fastdecay.torch.AdamW"):
        for k in med:
            if k.startswith(("torch", "optimi")) or k == "jax":
                extra[f"speedup_{ours}_vs_{k}"] = round(med[k] / med[ours], 3)
    benchmark.extra_info.update(impl="fastdecay", **extra)
    print(f"\n{benchmark.group}: " + ", ".join(f"{k}={v}" for k, v in extra.items()))


def test_launch_plan_overhead_per_tensor(benchmark, smoke):
    """What a repeated ``fd.adamw_step`` on 2,000 tensors costs beyond the kernel: the call with
    the launch plan reused (new gradient tensors every step, as autograd makes them) against
    the kernel launched directly on the same address table."""
    from fastdecay._cpu import updates as cpu
    from fastdecay._validate import constant_table as _constant_table

    count = 200 if smoke else 2000
    case = ModelCase([(256,)] * count, torch.float32, None)
    fresh = [[g.clone() for g in case.grads] for _ in range(2)]
    k = [0]

    def call():
        k[0] ^= 1
        fd.adamw_step(case.params, fresh[k[0]], case.exp_avg, case.exp_avg_sq, step=5, lr=1e-3)

    streams = [case.params, fresh[0], case.exp_avg, case.exp_avg_sq]
    addresses = np.zeros((cpu.ROWS, count), dtype=np.int64)
    for r, arrays in enumerate(streams):
        addresses[r] = [x.data_ptr() for x in arrays]
    sizes = np.full(count, 256, dtype=np.int64)
    first_block = cpu.block_layout(sizes)
    parts = cpu.part_layout(sizes, first_block, cpu.threads_for(int(sizes.sum())))
    table = _constant_table(1e-3)

    def kernel():
        cpu.fused_launch("adam", "float32", "float32", addresses, sizes, first_block, parts, int(sizes.sum()), step=5.0,
                         tables=(table, _constant_table(1e-2), _constant_table(0.9)),
                         options=(0.999, 1e-8, True, False, False), compensated=False, grad_scale=None,
                         found_inf=None)

    call()
    call()
    kernel()
    benchmark.group = "updates-adamw-launch-plan-overhead"
    benchmark.pedantic(call, rounds=1 if smoke else 31, iterations=1)
    med = _interleaved_medians({"call": call, "kernel": kernel}, rounds=1 if smoke else 51,
                               min_seconds=0 if smoke else 2.0)
    per_tensor_us = (med["call"] - med["kernel"]) / count * 1e6
    benchmark.extra_info.update(impl="fastdecay", tensors=count, call_ms=round(med["call"] * 1e3, 4),
                                kernel_ms=round(med["kernel"] * 1e3, 4),
                                overhead_per_tensor_us=round(per_tensor_us, 3))
    print(f"\nlaunch plan: {count} tensors, call {med['call'] * 1e3:.3f} ms, kernel {med['kernel'] * 1e3:.3f} ms, "
          f"{per_tensor_us:.3f} us per tensor beyond the kernel")


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
@pytest.mark.parametrize("tensors", [1, 8, 28, 64, 256])
def test_optimizer_step_fixed_cost(benchmark, smoke, tensors, optimizer):
    """``optimizer.step()`` as a training loop of a small model calls it: ``tensors`` float32
    parameters of 4,096 elements, a new gradient tensor for every parameter before each step
    (from two alternating sets, as autograd makes new ones each backward; the assignment is
    not timed), ``fastdecay.torch.AdamW`` (or ``SGD`` with momentum 0.9) against torch's fused
    and foreach optimizer and against ``fd.adamw_step`` (``fd.sgd_step``) on the same lists,
    round-robin in one run: medians in microseconds. Where a step's kernel is a few
    microseconds, what is measured is each optimizer's per-step Python (checks, launch, step
    counts) and torch's own ``step`` wrapper (hooks, and torch's profiler annotation, which
    fastdecay's optimizers make only while a profiler runs). Torch and Numba run on one thread
    each here (a call of fewer than 16 of these tensors runs on the calling thread anyway):
    with two, torch's OpenMP threads spinning beside Numba's on a 2-core machine made torch's
    foreach steps take milliseconds a tensor, which is not what this measures."""
    import numba

    threads = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    try:
        _fixed_cost(benchmark, smoke, tensors, optimizer)
    finally:
        torch.set_num_threads(threads[0])
        numba.set_num_threads(threads[1])


def _fixed_cost(benchmark, smoke, tensors, optimizer):
    from fastdecay.torch import SGD, AdamW

    size = 4096
    shapes = [(size,)] * tensors
    sets = {}

    def model(name):
        params = [torch.nn.Parameter(t) for t in _tensors(shapes, 0)]
        grads = [_tensors(shapes, 1 + k) for k in range(2)]
        for p, g in zip(params, grads[0]):
            p.grad = g
        sets[name] = (params, grads)
        return params

    lr, wd = 1e-3, 1e-2
    if optimizer == "adamw":
        ours, theirs, hyper = AdamW, torch.optim.AdamW, dict(lr=lr, weight_decay=wd)
    else:
        ours, theirs, hyper = SGD, torch.optim.SGD, dict(lr=lr, weight_decay=wd, momentum=0.9)
    name = f"fastdecay.torch.{ours.__name__}"
    functional_name = f"fd.{optimizer}_step"
    steps = {name: ours(model(name), **hyper).step,
             "torch-fused": theirs(model("torch-fused"), fused=True, **hyper).step,
             "torch-foreach": theirs(model("torch-foreach"), foreach=True, **hyper).step}
    params = model(functional_name)
    state = [[torch.zeros(s) for s in shapes] for _ in range(2 if optimizer == "adamw" else 1)]
    count = [0]

    def functional():
        count[0] += 1
        grads = [p.grad for p in params]
        if optimizer == "adamw":
            fd.adamw_step(params, grads, state[0], state[1], step=count[0], lr=lr, weight_decay=wd)
        else:
            fd.sgd_step(params, grads, step=count[0], lr=lr, weight_decay=wd, momentum=0.9,
                        momentum_buffer=state[0])

    steps[functional_name] = functional
    for step in steps.values():  # states made, kernels loaded, launch plans built
        step()
        step()
    rounds = 3 if smoke else 400
    times = {k: [] for k in steps}
    for r in range(rounds):
        for key, step in steps.items():
            ps, grads = sets[key]
            for p, g in zip(ps, grads[r % 2]):
                p.grad = g
            t0 = time.perf_counter()
            step()
            times[key].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    benchmark.group = f"updates-{optimizer}-step-fixed-cost"
    benchmark.pedantic(steps[name], rounds=1 if smoke else 21, iterations=1)
    extra = {"tensors": tensors, "elements": tensors * size}
    for k, sec in med.items():
        extra[f"interleaved_{k}_us"] = round(sec * 1e6, 2)
    for mine in (name, functional_name):
        for k in ("torch-fused", "torch-foreach"):
            extra[f"speedup_{mine}_vs_{k}"] = round(med[k] / med[mine], 3)
    benchmark.extra_info.update(impl="fastdecay", **extra)
    print(f"\n{benchmark.group}: " + ", ".join(f"{k}={v}" for k, v in extra.items()))


# ----------------------------------------------------------------------------- the general kernels' options

GENERAL_OPTIONS = {  # AdamW options the general kernels run (fastdecay._cpu.rules.takes_general_kernel)
    "grad-scale-3": dict(grad_scale=3.0),
    "compensated": dict(compensated=True),
    "amsgrad-compensated": dict(amsgrad=True, compensated=True),
}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("option", list(GENERAL_OPTIONS))
def test_adamw_general_kernel_options(benchmark, smoke, option, dtype):
    """AdamW on 1e6 elements with an option the general kernel runs (a gradient scale that is
    not a power of two, a compensation buffer, AMSGrad with compensation), interleaved with
    the plain step on the same arrays and torch's fused AdamW with what it has of the option
    (``grad_scale`` as ``GradScaler`` hands it, ``amsgrad``; no compensation) on float32
    copies: what the option costs, medians of interleaved rounds."""
    n = 10_000 if smoke else 1_000_000
    param = getattr(torch, dtype)
    options = GENERAL_OPTIONS[option]
    w, g = _tensors([(n,)], 0)[0].to(param), _tensors([(n,)], 1)[0].to(param)
    m, v, vmax = (torch.zeros(n) for _ in range(3))
    comp = torch.zeros(n, dtype=param)
    count = [0]

    def ours(**kw):
        def step():
            count[0] += 1
            if kw.get("amsgrad"):
                kw["max_exp_avg_sq"] = vmax
            if kw.get("compensated"):
                kw["compensation_buffer"] = comp
            fd.adamw_step(w, g, m, v, step=count[0], lr=1e-6, weight_decay=1e-2, **kw)
        return step

    twin = torch.nn.Parameter(w.float().clone())
    twin.grad = g.float().clone()
    opt = torch.optim.AdamW([twin], lr=1e-6, weight_decay=1e-2, fused=True, amsgrad=bool(options.get("amsgrad")))
    if "grad_scale" in options:  # (as GradScaler.step hands them to a fused optimizer)
        opt.grad_scale, opt.found_inf = torch.tensor(options["grad_scale"]), torch.tensor(0.0)
    fns = {"fastdecay": ours(**options), "fastdecay-plain": ours(), "torch-fused": opt.step}
    for fn in fns.values():
        fn()
        fn()
    benchmark.group = f"updates-adamw-general-{option}-{dtype}"
    benchmark.pedantic(fns["fastdecay"], rounds=1 if smoke else 15, iterations=1)
    med = _interleaved_medians(fns, rounds=1 if smoke else 15, min_seconds=0 if smoke else 2.0)
    extra = {f"interleaved_{k}_ns_per_element": round(sec / n * 1e9, 4) for k, sec in med.items()}
    extra["option_cost_vs_plain"] = round(med["fastdecay"] / med["fastdecay-plain"], 3)
    extra["speedup_vs_torch_fused"] = round(med["torch-fused"] / med["fastdecay"], 3)
    benchmark.extra_info.update(impl="fastdecay", elements=n, **extra)
    print(f"\n{benchmark.group}: " + ", ".join(f"{k}={v}" for k, v in extra.items()))
