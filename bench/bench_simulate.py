"""Batched quadratic simulations on the CPU: fastdecay against the same loop in
NumPy, torch and JAX, all measured in one run.

1,000,000 scalar trajectories (d = 1, curvatures spread over [0.01, 1]) x 200 steps,
float64, final weights only. Groups (one table each in ``bench/report.py``):

- ``simulate-gd-shared``: GD, one exponential schedule shared by every trajectory
  (fastdecay also reports the memory its call allocated above the inputs);
- ``simulate-gd-per-trajectory``: GD, one exponential schedule per trajectory
  (a grid of gammas: fastdecay advances each rate by one multiplication a step);
- ``simulate-gd-step-grid-one-each`` / ``-sweep``: GD, one step schedule per trajectory
  (gamma 0.5, 37 periods 5-41, one after another or as a sweep lays them out: each for
  consecutive trajectories), fastdecay on one thread against NumPy and JAX evaluating
  every trajectory's closed form each step; ``simulate-gd-cosine-grid-one-each`` /
  ``-sweep`` the same with cosines (37 total steps 90-126);
- ``simulate-gd-step-grid-one-each-recorded``: the step grid recording every 10th step (the
  loss, the displacement and the rate, a row a trajectory, as ``fd.simulate(..., every=10)``
  returns them), fastdecay on one thread against NumPy and JAX recording the same;
- ``simulate-momentum-grid-one-each``: heavy ball at 5 momenta (0-0.95) in turn over the
  trajectories, a shared step schedule (halved every 30 steps), fastdecay on one thread (its call
  given the momenta as an array) against NumPy and JAX doing the same loop;
- ``simulate-momentum``: torch heavy-ball momentum 0.9, the shared schedule;
- ``simulate-adamw``: AdamW (weight decay 0.01), the shared schedule;
- ``simulate-small-call``: momentum on 1,000 trajectories x 10 steps, a call repeated (a
  notebook's or a search's loop of small runs): the fixed cost of a call, its checks and
  its kernel's launch, against NumPy's loop and a call of JAX's jitted function.

The GD groups also time ``fastdecay-1-thread`` (``threads=1``): the per-core rate;
the shared GD group also times ``naive-numba-loop``, a 15-line tiled Numba loop
(``w[j] *= 1 - a[j] * eta``, tiles of 512, ``prange`` over tiles): the bar the
kernel's noiseless path must clear (it runs no schedule logic, no checks).

Noisy groups, 100,000 trajectories x 200 steps, noise sigma = 0.1 on every
gradient, float64 and float32 (``simulate-noisy-<optimizer>-<dtype>``): fastdecay
against NumPy (``Generator.standard_normal`` into a buffer each step), torch
(``torch.randn`` into a buffer each step) and JAX (``jax.random.normal`` of
``fold_in(key, t)`` inside the ``lax.scan``), each doing the same noisy loop; the
row ``fastdecay-noiseless`` is the same call without noise (noise's cost is the
ratio of the two). Different generators draw different numbers, so the
baselines are checked by distribution: for every implementation w_N minus
fastdecay's noiseless w_N has the mean of fastdecay's own noisy run (within 5
standard errors; zero in expectation for GD and momentum, whose dynamics are
linear) and its variance within 10% (a few % sampling error at 100,000).

Baselines, each the fastest straightforward form we found:

- ``numpy``: a Python loop over steps, each step in-place whole-batch ufuncs;
- ``torch``: the same with torch tensors (2 threads); for momentum and AdamW,
  ``torch.optim.SGD`` / ``torch.optim.AdamW`` with ``foreach``/``fused`` on the
  1,000,000-element parameter (the gradient λ·w written in place each step);
- ``jax``: ``jax.jit`` of a ``lax.scan`` over steps (float64 via ``jax_enable_x64``),
  skipped where JAX is not installed (it is not a test dependency).

``steps_per_s`` is trajectory-steps per second from the median. Under
``--benchmark-disable`` (``make test``) each runs once on 2,000 trajectories x 20 steps.
"""

import importlib.util
import tracemalloc

import numpy as np
import pytest

import fastdecay as fd

GAMMA = 0.99
LR = 0.5
WD = 0.01
BETAS = (0.9, 0.999)
EPS = 1e-8
MOMENTUM = 0.9

HAS_JAX = importlib.util.find_spec("jax") is not None
SIGMA = 0.1


def sizes(smoke):
    """(trajectories, steps)."""
    return (2_000, 20) if smoke else (1_000_000, 200)


@pytest.fixture(scope="module")
def problem(request):
    smoke = bool(request.config.getoption("benchmark_disable", False))
    n, steps = sizes(smoke)
    lam = np.random.default_rng(0).uniform(0.01, 1.0, (n, 1))
    gammas = np.linspace(0.98, 0.999, n)
    return lam, gammas, steps


def record(benchmark, *, impl, n, steps, **extra):
    benchmark.extra_info.update(impl=impl, trajectories=n, steps=steps, **extra)
    if benchmark.stats is not None:
        benchmark.extra_info["steps_per_s"] = n * steps / benchmark.stats.stats.median


def run(benchmark, fn, smoke):
    """One warm-up call (compiles), then the timed rounds; the last result."""
    fn()
    if smoke:
        return benchmark(fn)
    return benchmark.pedantic(fn, rounds=7, iterations=1, warmup_rounds=0)


def closed_form_gd(lam, lr_of_step, steps):
    """|w_N| of GD from w0 = 1 by the product of (1 − η_t λ)."""
    return np.prod(1 - np.outer(lam.ravel(), 1.0) * lr_of_step(np.arange(steps))[None, :], axis=1)


# ----------------------------------------------------------------------------- (a) GD, shared schedule

GROUP_A = "simulate-gd-shared"


def test_fastdecay_gd_shared(benchmark, problem, smoke):
    lam, _, steps = problem
    s = fd.exponential(lr=LR, gamma=GAMMA)
    benchmark.group = GROUP_A
    res = run(benchmark, lambda: fd.simulate(lam, s, steps=steps), smoke)
    # memory above the inputs: everything the call allocates (NumPy's allocations are traced)
    tracemalloc.start()
    fd.simulate(lam, s, steps=steps)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    record(benchmark, impl="fastdecay", n=lam.shape[0], steps=steps, peak_alloc_mb=peak / 1e6)
    np.testing.assert_allclose(res.w[:64, 0], closed_form_gd(lam[:64], lambda t: LR * GAMMA**t, steps),
                               rtol=1e-12)


def test_fastdecay_gd_shared_one_thread(benchmark, problem, smoke):
    """The same on one thread: the per-core rate, and the parallel speed-up against the row above."""
    lam, _, steps = problem
    s = fd.exponential(lr=LR, gamma=GAMMA)
    benchmark.group = GROUP_A
    res = run(benchmark, lambda: fd.simulate(lam, s, steps=steps, threads=1), smoke)
    record(benchmark, impl="fastdecay-1-thread", n=lam.shape[0], steps=steps)
    np.testing.assert_array_equal(res.w, fd.simulate(lam, s, steps=steps).w)


def numpy_gd_shared(lam, steps):
    lam = lam.ravel()
    w = np.ones_like(lam)
    g = np.empty_like(lam)
    rates = LR * GAMMA ** np.arange(steps)
    for t in range(steps):
        np.multiply(lam, w, out=g)
        g *= rates[t]
        w -= g
    return w


def test_numpy_gd_shared(benchmark, problem, smoke):
    lam, _, steps = problem
    benchmark.group = GROUP_A
    w = run(benchmark, lambda: numpy_gd_shared(lam, steps), smoke)
    record(benchmark, impl="numpy", n=lam.shape[0], steps=steps)
    np.testing.assert_allclose(w[:64], closed_form_gd(lam[:64], lambda t: LR * GAMMA**t, steps), rtol=1e-12)


def test_naive_numba_loop_gd_shared(benchmark, problem, smoke):
    lam, _, steps = problem
    a = lam.ravel().copy()
    etas = LR * GAMMA ** np.arange(steps)
    from simulate_roofline import naive_tiled_gd  # bench/ is on sys.path under pytest

    naive = naive_tiled_gd(parallel=True)
    benchmark.group = GROUP_A

    def call():
        w = np.ones_like(a)
        naive(w, a, etas)
        return w

    w = run(benchmark, call, smoke)
    record(benchmark, impl="naive-numba-loop", n=lam.shape[0], steps=steps)
    np.testing.assert_allclose(w[:64], closed_form_gd(lam[:64], lambda t: LR * GAMMA**t, steps), rtol=1e-12)


def _torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(2)
    return torch


def torch_gd(torch, lam, steps, gammas=None):
    w = torch.ones_like(lam)
    g = torch.empty_like(lam)
    if gammas is None:
        rates = (LR * GAMMA ** np.arange(steps)).tolist()
        for t in range(steps):
            torch.mul(lam, w, out=g)
            w.sub_(g, alpha=rates[t])
    else:
        lr = torch.full_like(lam, LR)
        for _ in range(steps):
            torch.mul(lam, w, out=g)
            g.mul_(lr)
            w.sub_(g)
            lr.mul_(gammas)
    return w


def test_torch_gd_shared(benchmark, problem, smoke):
    torch = _torch()
    lam, _, steps = problem
    lam_t = torch.from_numpy(lam.ravel())
    benchmark.group = GROUP_A
    w = run(benchmark, lambda: torch_gd(torch, lam_t, steps), smoke)
    record(benchmark, impl="torch", n=lam.shape[0], steps=steps, threads=torch.get_num_threads())
    np.testing.assert_allclose(w.numpy()[:64], closed_form_gd(lam[:64], lambda t: LR * GAMMA**t, steps),
                               rtol=1e-12)


def _jax():
    if not HAS_JAX:
        pytest.skip("JAX is not installed (optional baseline: pip install jax)")
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def jax_gd(jax, per_trajectory):
    jnp = jax.numpy

    @jax.jit
    def simulate(lam, gammas, steps_index):
        def body(carry, t):
            w, lr = carry
            if per_trajectory:
                return (w - lr * (lam * w), lr * gammas), None
            return (w - (LR * GAMMA**t) * (lam * w), lr), None

        lr0 = jnp.full_like(lam, LR)
        (w, _), _ = jax.lax.scan(body, (jnp.ones_like(lam), lr0), steps_index)
        return w

    return simulate


def test_jax_gd_shared(benchmark, problem, smoke):
    jax = _jax()
    lam, gammas, steps = problem
    f = jax_gd(jax, False)
    lam_j, g_j, idx = jax.numpy.asarray(lam.ravel()), jax.numpy.asarray(gammas), jax.numpy.arange(steps,
                                                                                                    dtype="float64")
    benchmark.group = GROUP_A
    w = run(benchmark, lambda: f(lam_j, g_j, idx).block_until_ready(), smoke)
    record(benchmark, impl="jax", n=lam.shape[0], steps=steps)
    np.testing.assert_allclose(np.asarray(w)[:64], closed_form_gd(lam[:64], lambda t: LR * GAMMA**t, steps),
                               rtol=1e-11)


# ----------------------------------------------------------------------------- (b) GD, per-trajectory schedules

GROUP_B = "simulate-gd-per-trajectory"


def _per_trajectory_truth(lam, gammas, steps, k=64):
    t = np.arange(steps)
    return np.prod(1 - lam[:k] * (LR * gammas[:k, None] ** t[None, :]), axis=1)


def test_fastdecay_gd_per_trajectory(benchmark, problem, smoke):
    lam, gammas, steps = problem
    s = fd.exponential(lr=LR, gamma=gammas)
    benchmark.group = GROUP_B
    res = run(benchmark, lambda: fd.simulate(lam, s, steps=steps), smoke)
    record(benchmark, impl="fastdecay", n=lam.shape[0], steps=steps)
    np.testing.assert_allclose(res.w[:64, 0], _per_trajectory_truth(lam, gammas, steps), rtol=1e-12)


def test_fastdecay_gd_per_trajectory_one_thread(benchmark, problem, smoke):
    lam, gammas, steps = problem
    s = fd.exponential(lr=LR, gamma=gammas)
    benchmark.group = GROUP_B
    res = run(benchmark, lambda: fd.simulate(lam, s, steps=steps, threads=1), smoke)
    record(benchmark, impl="fastdecay-1-thread", n=lam.shape[0], steps=steps)
    np.testing.assert_allclose(res.w[:64, 0], _per_trajectory_truth(lam, gammas, steps), rtol=1e-12)


def numpy_gd_per_trajectory(lam, gammas, steps):
    lam = lam.ravel()
    w = np.ones_like(lam)
    g = np.empty_like(lam)
    lr = np.full_like(lam, LR)
    for _ in range(steps):
        np.multiply(lam, w, out=g)
        g *= lr
        w -= g
        lr *= gammas
    return w


def test_numpy_gd_per_trajectory(benchmark, problem, smoke):
    lam, gammas, steps = problem
    benchmark.group = GROUP_B
    w = run(benchmark, lambda: numpy_gd_per_trajectory(lam, gammas, steps), smoke)
    record(benchmark, impl="numpy", n=lam.shape[0], steps=steps)
    np.testing.assert_allclose(w[:64], _per_trajectory_truth(lam, gammas, steps), rtol=1e-12)


def test_torch_gd_per_trajectory(benchmark, problem, smoke):
    torch = _torch()
    lam, gammas, steps = problem
    lam_t, g_t = torch.from_numpy(lam.ravel()), torch.from_numpy(gammas)
    benchmark.group = GROUP_B
    w = run(benchmark, lambda: torch_gd(torch, lam_t, steps, g_t), smoke)
    record(benchmark, impl="torch", n=lam.shape[0], steps=steps, threads=torch.get_num_threads())
    np.testing.assert_allclose(w.numpy()[:64], _per_trajectory_truth(lam, gammas, steps), rtol=1e-12)


def test_jax_gd_per_trajectory(benchmark, problem, smoke):
    jax = _jax()
    lam, gammas, steps = problem
    f = jax_gd(jax, True)
    lam_j, g_j = jax.numpy.asarray(lam.ravel()), jax.numpy.asarray(gammas)
    idx = jax.numpy.arange(steps, dtype="float64")
    benchmark.group = GROUP_B
    w = run(benchmark, lambda: f(lam_j, g_j, idx).block_until_ready(), smoke)
    record(benchmark, impl="jax", n=lam.shape[0], steps=steps)
    np.testing.assert_allclose(np.asarray(w)[:64], _per_trajectory_truth(lam, gammas, steps), rtol=1e-11)


# ----------------------------------------------------------------------------- (b2) GD, a grid of step schedules or cosines

STEP_GAMMA = 0.5
GRIDS = ["step", "cosine"]
STEP_LAYOUTS = ["one-each", "sweep"]


def _grid_periods(n, grid, layout):
    """37 periods (step: 5-41) or total steps (cosine: 90-126), one after another or each for
    consecutive trajectories."""
    which = np.repeat(np.arange(37), -(-n // 37))[:n] if layout == "sweep" else np.arange(n) % 37
    return (which + (5 if grid == "step" else 90)).astype(np.float64)


def _grid_schedule(grid, period):
    return fd.step(LR, STEP_GAMMA, period) if grid == "step" else fd.cosine(LR, period)


def _grid_rate(xp, grid, t, period):
    if grid == "step":
        return LR * STEP_GAMMA ** xp.floor(t / period)
    return LR * (1.0 + xp.cos(np.pi * xp.minimum(t, period) / period)) / 2.0


def _grid_truth(lam, grid, period, steps):
    """|w_N| of 64 trajectories spread over the batch, and their indices."""
    k = np.linspace(0, lam.shape[0] - 1, 64).astype(np.int64)
    t = np.arange(steps, dtype=np.float64)
    return np.prod(1 - lam[k] * _grid_rate(np, grid, t[None, :], period[k, None]), axis=1), k


@pytest.mark.parametrize("layout", STEP_LAYOUTS)
@pytest.mark.parametrize("grid", GRIDS)
def test_fastdecay_gd_grid_one_thread(benchmark, problem, smoke, grid, layout):
    lam, _, steps = problem
    period = _grid_periods(lam.shape[0], grid, layout)
    s = _grid_schedule(grid, period)
    benchmark.group = f"simulate-gd-{grid}-grid-{layout}"
    res = run(benchmark, lambda: fd.simulate(lam, s, steps=steps, threads=1), smoke)
    record(benchmark, impl="fastdecay-1-thread", n=lam.shape[0], steps=steps)
    truth, k = _grid_truth(lam, grid, period, steps)
    np.testing.assert_allclose(res.w[k, 0], truth, rtol=1e-12)


@pytest.mark.parametrize("layout", STEP_LAYOUTS)
@pytest.mark.parametrize("grid", GRIDS)
def test_numpy_gd_grid(benchmark, problem, smoke, grid, layout):
    lam, _, steps = problem
    period = _grid_periods(lam.shape[0], grid, layout)
    x = lam.ravel()

    def loop():
        w = np.ones_like(x)
        for t in range(steps):
            w -= _grid_rate(np, grid, float(t), period) * (x * w)
        return w

    benchmark.group = f"simulate-gd-{grid}-grid-{layout}"
    w = run(benchmark, loop, smoke)
    record(benchmark, impl="numpy", n=lam.shape[0], steps=steps)
    truth, k = _grid_truth(lam, grid, period, steps)
    np.testing.assert_allclose(w[k], truth, rtol=1e-12)


@pytest.mark.parametrize("layout", STEP_LAYOUTS)
@pytest.mark.parametrize("grid", GRIDS)
def test_jax_gd_grid(benchmark, problem, smoke, grid, layout):
    jax = _jax()
    jnp = jax.numpy
    lam, _, steps = problem
    period = _grid_periods(lam.shape[0], grid, layout)

    @jax.jit
    def scan(lam, period, steps_index):
        def body(w, t):
            return w - _grid_rate(jnp, grid, t, period) * (lam * w), None
        return jax.lax.scan(body, jnp.ones_like(lam), steps_index)[0]

    args = (jnp.asarray(lam.ravel()), jnp.asarray(period), jnp.arange(steps, dtype="float64"))
    benchmark.group = f"simulate-gd-{grid}-grid-{layout}"
    w = run(benchmark, lambda: scan(*args).block_until_ready(), smoke)
    record(benchmark, impl="jax", n=lam.shape[0], steps=steps)
    truth, k = _grid_truth(lam, grid, period, steps)
    np.testing.assert_allclose(np.asarray(w)[k], truth, rtol=1e-11)


# ----------------------------------------------------------------------------- (b3) the step grid, recorded

GROUP_RECORDED = "simulate-gd-step-grid-one-each-recorded"
EVERY = 10


def _recorded_truth(lam, period, steps):
    """The last recorded loss 1/2 lam w_N^2 of ``_grid_truth``'s trajectories, and their indices."""
    w, k = _grid_truth(lam, "step", period, steps)
    return 0.5 * lam[k, 0] * w * w, k


def test_fastdecay_gd_grid_recorded_one_thread(benchmark, problem, smoke):
    lam, _, steps = problem
    period = _grid_periods(lam.shape[0], "step", "one-each")
    s = _grid_schedule("step", period)
    benchmark.group = GROUP_RECORDED
    res = run(benchmark, lambda: fd.simulate(lam, s, steps=steps, threads=1, every=EVERY), smoke)
    record(benchmark, impl="fastdecay-1-thread", n=lam.shape[0], steps=steps, every=EVERY)
    truth, k = _recorded_truth(lam, period, steps)
    np.testing.assert_allclose(res.loss[k, -1], truth, rtol=1e-12)


def test_numpy_gd_grid_recorded(benchmark, problem, smoke):
    lam, _, steps = problem
    period = _grid_periods(lam.shape[0], "step", "one-each")
    x = lam.ravel()

    def loop():
        n_rec = steps // EVERY + 1
        w = np.ones_like(x)
        loss, disp, rates = (np.empty((x.shape[0], n_rec)) for _ in range(3))
        loss[:, 0], disp[:, 0], rates[:, 0] = 0.5 * x * w * w, 0.0, _grid_rate(np, "step", 0.0, period)
        for t in range(steps):
            new = w - _grid_rate(np, "step", float(t), period) * (x * w)
            if (t + 1) % EVERY == 0:
                j = (t + 1) // EVERY
                loss[:, j], disp[:, j] = 0.5 * x * new * new, np.abs(new - w)
                rates[:, j] = _grid_rate(np, "step", float(t + 1), period)
            w = new
        return loss

    benchmark.group = GROUP_RECORDED
    loss = run(benchmark, loop, smoke)
    record(benchmark, impl="numpy", n=lam.shape[0], steps=steps, every=EVERY)
    truth, k = _recorded_truth(lam, period, steps)
    np.testing.assert_allclose(loss[k, -1], truth, rtol=1e-12)


def test_jax_gd_grid_recorded(benchmark, problem, smoke):
    """JAX's scan stacks the records a step a row: transposed inside the jitted function, to the
    trajectory-a-row arrays the others return."""
    jax = _jax()
    jnp = jax.numpy
    lam, _, steps = problem
    period = _grid_periods(lam.shape[0], "step", "one-each")

    @jax.jit
    def scan(lam, period):
        def one(w, t):
            return w - _grid_rate(jnp, "step", t, period) * (lam * w)

        def between(w, j):  # steps (j - 1) EVERY .. j EVERY - 1, the last recorded
            t0 = (j - 1) * EVERY
            before = jax.lax.fori_loop(0, EVERY - 1, lambda q, w: one(w, (t0 + q).astype("float64")), w)
            new = one(before, (t0 + EVERY - 1).astype("float64"))
            return new, (0.5 * lam * new * new, jnp.abs(new - before),
                         _grid_rate(jnp, "step", (j * EVERY).astype("float64"), period))

        w0 = jnp.ones_like(lam)
        _, recs = jax.lax.scan(between, w0, jnp.arange(1, steps // EVERY + 1))
        first = (0.5 * lam * w0 * w0, jnp.zeros_like(lam), _grid_rate(jnp, "step", 0.0, period))
        return tuple(jnp.concatenate([f[None], r]).T for f, r in zip(first, recs))

    args = (jnp.asarray(lam.ravel()), jnp.asarray(period))
    benchmark.group = GROUP_RECORDED
    loss, _, _ = run(benchmark, lambda: jax.block_until_ready(scan(*args)), smoke)
    record(benchmark, impl="jax", n=lam.shape[0], steps=steps, every=EVERY)
    truth, k = _recorded_truth(lam, period, steps)
    np.testing.assert_allclose(np.asarray(loss)[k, -1], truth, rtol=1e-11)


# ----------------------------------------------------------------------------- (b4) a grid of momenta

GROUP_MOMENTA = "simulate-momentum-grid-one-each"
MOMENTA = (0.0, 0.5, 0.8, 0.9, 0.95)


def _momenta(n):
    """The momentum of each of ``n`` trajectories: ``MOMENTA`` in turn."""
    return np.asarray(MOMENTA)[np.arange(n) % len(MOMENTA)]


def _momentum_grid_loop(xp, lam, h, steps):
    """Heavy ball (torch's SGD with momentum) at momentum ``h`` a trajectory under the step schedule."""
    w, b = xp.ones_like(lam), xp.zeros_like(lam)
    for t in range(steps):
        g = lam * w
        b = g if t == 0 else h * b + g
        w = w - _grid_rate(xp, "step", float(t), 30.0) * b
    return w


def _momentum_grid_truth(lam, h, steps):
    """w_N of 64 trajectories spread over the batch (the plain loop on them alone), and their indices."""
    k = np.linspace(0, lam.shape[0] - 1, 64).astype(np.int64)
    return _momentum_grid_loop(np, lam[k, 0], h[k], steps), k


def test_fastdecay_momentum_grid_one_thread(benchmark, problem, smoke):
    """The user's call: the momenta as an array, checked and held by its distinct values inside it."""
    lam, _, steps = problem
    h = _momenta(lam.shape[0])
    s = fd.step(LR, STEP_GAMMA, 30)
    benchmark.group = GROUP_MOMENTA
    res = run(benchmark, lambda: fd.simulate(lam, s, steps=steps, optimizer="momentum", momentum=h, threads=1), smoke)
    record(benchmark, impl="fastdecay-1-thread", n=lam.shape[0], steps=steps)
    truth, k = _momentum_grid_truth(lam, h, steps)
    np.testing.assert_allclose(res.w[k, 0], truth, rtol=1e-9, atol=1e-12)  # (rounded in another order)


def test_numpy_momentum_grid(benchmark, problem, smoke):
    lam, _, steps = problem
    h = _momenta(lam.shape[0])
    x = lam.ravel()

    def loop():  # (in place: the fastest NumPy form)
        w, b = np.ones_like(x), np.empty_like(x)
        g = np.empty_like(x)
        for t in range(steps):
            np.multiply(x, w, out=g)
            if t == 0:
                b[:] = g
            else:
                b *= h
                b += g
            w -= _grid_rate(np, "step", float(t), 30.0) * b
        return w

    benchmark.group = GROUP_MOMENTA
    w = run(benchmark, loop, smoke)
    record(benchmark, impl="numpy", n=lam.shape[0], steps=steps)
    truth, k = _momentum_grid_truth(lam, h, steps)
    np.testing.assert_allclose(w[k], truth, rtol=1e-9, atol=1e-12)


def test_jax_momentum_grid(benchmark, problem, smoke):
    jax = _jax()
    jnp = jax.numpy
    lam, _, steps = problem
    h = _momenta(lam.shape[0])

    @jax.jit
    def scan(lam, h, steps_index):
        def body(state, t):
            w, b = state
            g = lam * w
            b = jnp.where(t == 0.0, g, h * b + g)
            return (w - _grid_rate(jnp, "step", t, 30.0) * b, b), None
        return jax.lax.scan(body, (jnp.ones_like(lam), jnp.zeros_like(lam)), steps_index)[0][0]

    args = (jnp.asarray(lam.ravel()), jnp.asarray(h), jnp.arange(steps, dtype="float64"))
    benchmark.group = GROUP_MOMENTA
    w = run(benchmark, lambda: scan(*args).block_until_ready(), smoke)
    record(benchmark, impl="jax", n=lam.shape[0], steps=steps)
    truth, k = _momentum_grid_truth(lam, h, steps)
    np.testing.assert_allclose(np.asarray(w)[k], truth, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- (c) momentum and AdamW

GROUP_MOM = "simulate-momentum"
GROUP_ADAMW = "simulate-adamw"


def _reference_w(lam, optimizer, steps, k=32):
    """The plain-loop oracle on the first k trajectories."""
    from fastdecay.reference import simulate_quadratic

    s = fd.exponential(lr=LR, gamma=GAMMA)
    kw = dict(momentum=MOMENTUM, weight_decay=WD if optimizer == "adamw" else 0.0)
    return np.array([simulate_quadratic(lam[i], s, steps=steps, optimizer=optimizer, **kw)[0][-1, 0]
                     for i in range(k)])


@pytest.mark.parametrize("optimizer, group", [("momentum", GROUP_MOM), ("adamw", GROUP_ADAMW)])
def test_fastdecay_optimizer(benchmark, problem, smoke, optimizer, group):
    lam, _, steps = problem
    s = fd.exponential(lr=LR, gamma=GAMMA)
    kw = dict(momentum=MOMENTUM, weight_decay=WD if optimizer == "adamw" else 0.0)
    benchmark.group = group
    res = run(benchmark, lambda: fd.simulate(lam, s, steps=steps, optimizer=optimizer, **kw), smoke)
    record(benchmark, impl="fastdecay", n=lam.shape[0], steps=steps)
    np.testing.assert_allclose(res.w[:32, 0], _reference_w(lam, optimizer, steps), rtol=1e-10)


def numpy_optimizer(lam, optimizer, steps):
    lam = lam.ravel()
    w = np.ones_like(lam)
    g = np.empty_like(lam)
    a = np.zeros_like(lam)
    b = np.zeros_like(lam)
    tmp = np.empty_like(lam)
    beta1, beta2 = BETAS
    for t in range(steps):
        lr = LR * GAMMA**t
        np.multiply(lam, w, out=g)
        if optimizer == "momentum":
            if t == 0:
                a[:] = g
            else:
                a *= MOMENTUM
                a += g
            np.multiply(a, lr, out=tmp)
            w -= tmp
        else:
            w *= 1 - lr * WD
            a *= beta1
            a += (1 - beta1) * g            # exp_avg
            b *= beta2
            np.multiply(g, g, out=tmp)
            tmp *= 1 - beta2
            b += tmp                        # exp_avg_sq
            np.sqrt(b, out=tmp)
            tmp /= np.sqrt(1 - beta2 ** (t + 1))
            tmp += EPS
            np.divide(a, tmp, out=tmp)
            tmp *= lr / (1 - beta1 ** (t + 1))
            w -= tmp
    return w


@pytest.mark.parametrize("optimizer, group", [("momentum", GROUP_MOM), ("adamw", GROUP_ADAMW)])
def test_numpy_optimizer(benchmark, problem, smoke, optimizer, group):
    lam, _, steps = problem
    benchmark.group = group
    w = run(benchmark, lambda: numpy_optimizer(lam, optimizer, steps), smoke)
    record(benchmark, impl="numpy", n=lam.shape[0], steps=steps)
    np.testing.assert_allclose(w[:32], _reference_w(lam, optimizer, steps), rtol=1e-10)


def torch_optimizer(torch, lam, optimizer, steps, flavour):
    p = torch.nn.Parameter(torch.ones_like(lam))
    p.grad = torch.empty_like(lam)
    if optimizer == "momentum":
        opt = torch.optim.SGD([p], lr=LR, momentum=MOMENTUM, **{flavour: True})
    else:
        opt = torch.optim.AdamW([p], lr=LR, betas=BETAS, eps=EPS, weight_decay=WD, **{flavour: True})
    group = opt.param_groups[0]
    with torch.no_grad():
        for t in range(steps):
            group["lr"] = LR * GAMMA**t
            torch.mul(lam, p, out=p.grad)
            opt.step()
    return p.detach()


@pytest.mark.parametrize("flavour", ["foreach", "fused"])
@pytest.mark.parametrize("optimizer, group", [("momentum", GROUP_MOM), ("adamw", GROUP_ADAMW)])
def test_torch_optimizer(benchmark, problem, smoke, optimizer, group, flavour):
    torch = _torch()
    lam, _, steps = problem
    lam_t = torch.from_numpy(lam.ravel())
    benchmark.group = group
    w = run(benchmark, lambda: torch_optimizer(torch, lam_t, optimizer, steps, flavour), smoke)
    record(benchmark, impl=f"torch-{flavour}", n=lam.shape[0], steps=steps, threads=torch.get_num_threads())
    np.testing.assert_allclose(w.numpy()[:32], _reference_w(lam, optimizer, steps), rtol=1e-10)


def jax_optimizer(jax, optimizer, sigma=0.0, dtype="float64"):
    """``simulate(lam, steps_index, key)``: the loop under ``jax.jit(lax.scan)``; with
    ``sigma`` the gradient gets sigma times ``jax.random.normal`` of ``fold_in(key, t)``."""
    jnp = jax.numpy
    beta1, beta2 = BETAS

    @jax.jit
    def simulate(lam, steps_index, key):
        def body(carry, t):
            w, a, b = carry
            lr = LR * GAMMA**t
            g = lam * w
            if sigma:
                g = g + sigma * jax.random.normal(jax.random.fold_in(key, t.astype("int32")), lam.shape, dtype=dtype)
            if optimizer == "gd":
                return (w - lr * g, a, b), None
            if optimizer == "momentum":
                a = jnp.where(t == 0, g, MOMENTUM * a + g)
                return (w - lr * a, a, b), None
            w = w * (1 - lr * WD)
            a = beta1 * a + (1 - beta1) * g
            b = beta2 * b + (1 - beta2) * g * g
            denom = jnp.sqrt(b) / jnp.sqrt(1 - beta2 ** (t + 1)) + EPS
            return (w - lr / (1 - beta1 ** (t + 1)) * a / denom, a, b), None

        zeros = jnp.zeros_like(lam)
        (w, _, _), _ = jax.lax.scan(body, (jnp.ones_like(lam), zeros, zeros), steps_index)
        return w

    return simulate


@pytest.mark.parametrize("optimizer, group", [("momentum", GROUP_MOM), ("adamw", GROUP_ADAMW)])
def test_jax_optimizer(benchmark, problem, smoke, optimizer, group):
    jax = _jax()
    lam, _, steps = problem
    f = jax_optimizer(jax, optimizer)
    lam_j, idx = jax.numpy.asarray(lam.ravel()), jax.numpy.arange(steps, dtype="float64")
    key = jax.random.PRNGKey(0)
    benchmark.group = group
    w = run(benchmark, lambda: f(lam_j, idx, key).block_until_ready(), smoke)
    record(benchmark, impl="jax", n=lam.shape[0], steps=steps)
    np.testing.assert_allclose(np.asarray(w)[:32], _reference_w(lam, optimizer, steps), rtol=1e-10)


# ----------------------------------------------------------------------------- (d) noisy GD, momentum, AdamW


def noisy_sizes(smoke):
    """(trajectories, steps) of the noisy groups."""
    return (2_000, 20) if smoke else (100_000, 200)


NOISY = [(opt, dt) for opt in ("gd", "momentum", "adamw") for dt in ("float64", "float32")]


def _noisy_group(optimizer, dtype):
    return f"simulate-noisy-{optimizer}-{dtype}"


@pytest.fixture(scope="module")
def noisy_problem(request):
    """Curvatures, and fastdecay's noiseless and noisy w_N of every case (the check)."""
    smoke = bool(request.config.getoption("benchmark_disable", False))
    n, steps = noisy_sizes(smoke)
    lam = np.random.default_rng(1).uniform(0.01, 1.0, (n, 1))
    return lam, steps, {}


def _fd_kwargs(optimizer, dtype, steps):
    return dict(steps=steps, optimizer=optimizer, momentum=MOMENTUM, betas=BETAS, eps=EPS,
                weight_decay=WD if optimizer == "adamw" else 0.0, dtype=dtype)


def _check_noisy(w, lam, optimizer, dtype, steps, truth):
    """w_N of a noisy implementation against fastdecay's noiseless and noisy runs: the
    deviation from the noiseless w_N has fastdecay's mean (within 5 standard errors of
    the difference of two means) and variance (within 10%)."""
    if (optimizer, dtype) not in truth:
        s = fd.exponential(lr=LR, gamma=GAMMA)
        kw = _fd_kwargs(optimizer, dtype, steps)
        quiet = fd.simulate(lam, s, **kw).w[:, 0].astype(np.float64)
        noisy = fd.simulate(lam, s, noise=SIGMA, seed=7, **kw).w[:, 0].astype(np.float64)
        truth[optimizer, dtype] = quiet, np.mean(noisy - quiet), np.var(noisy - quiet)
    quiet, mean, var = truth[optimizer, dtype]
    dev = np.asarray(w, dtype=np.float64).ravel() - quiet
    assert np.all(np.isfinite(dev))
    assert abs(dev.mean() - mean) < 5 * np.sqrt(2 * var / dev.size) + 1e-6, (dev.mean(), mean, var)
    tolerance = 0.1 if dev.size >= 50_000 else 0.25
    assert abs(np.var(dev) / var - 1) < tolerance, (np.var(dev), var)


@pytest.mark.parametrize("optimizer, dtype", NOISY)
def test_fastdecay_noisy(benchmark, noisy_problem, smoke, optimizer, dtype):
    lam, steps, truth = noisy_problem
    s = fd.exponential(lr=LR, gamma=GAMMA)
    benchmark.group = _noisy_group(optimizer, dtype)
    res = run(benchmark, lambda: fd.simulate(lam, s, noise=SIGMA, seed=11, **_fd_kwargs(optimizer, dtype, steps)),
              smoke)
    record(benchmark, impl="fastdecay", n=lam.shape[0], steps=steps, dtype=dtype)
    _check_noisy(res.w, lam, optimizer, dtype, steps, truth)


@pytest.mark.parametrize("optimizer, dtype", NOISY)
def test_fastdecay_noiseless_beside_noisy(benchmark, noisy_problem, smoke, optimizer, dtype):
    """The same call without noise: noise's cost is the ratio of the two rows."""
    lam, steps, _ = noisy_problem
    s = fd.exponential(lr=LR, gamma=GAMMA)
    benchmark.group = _noisy_group(optimizer, dtype)
    res = run(benchmark, lambda: fd.simulate(lam, s, **_fd_kwargs(optimizer, dtype, steps)), smoke)
    record(benchmark, impl="fastdecay-noiseless", n=lam.shape[0], steps=steps, dtype=dtype)
    assert res.w.dtype == np.dtype(dtype) and np.all(np.isfinite(res.w))


def _noisy_loop(xp_ops, optimizer, lam, steps, dtype, draw):
    """The noisy loop in whole-batch in-place operations, shared by NumPy and torch:
    ``draw(z)`` fills z with standard normals; ``xp_ops`` = (empty_like, sqrt_into)."""
    empty_like, sqrt_into = xp_ops
    w = empty_like(lam)
    w[...] = 1.0
    g, z, a, b, tmp = (empty_like(lam) for _ in range(5))
    a[...] = 0.0
    b[...] = 0.0
    beta1, beta2 = BETAS
    for t in range(steps):
        lr = LR * GAMMA**t
        draw(z)
        z *= SIGMA
        g[...] = lam
        g *= w
        g += z
        if optimizer == "gd":
            g *= lr
            w -= g
        elif optimizer == "momentum":
            if t == 0:
                a[...] = g
            else:
                a *= MOMENTUM
                a += g
            tmp[...] = a
            tmp *= lr
            w -= tmp
        else:
            w *= 1 - lr * WD
            a *= beta1
            g *= 1 - beta1
            a += g
            g /= 1 - beta1                 # back to the gradient
            b *= beta2
            g *= g
            g *= 1 - beta2
            b += g
            sqrt_into(b, tmp)
            tmp /= np.sqrt(1 - beta2 ** (t + 1))
            tmp += EPS
            g[...] = a
            g /= tmp
            g *= lr / (1 - beta1 ** (t + 1))
            w -= g
    return w


@pytest.mark.parametrize("optimizer, dtype", NOISY)
def test_numpy_noisy(benchmark, noisy_problem, smoke, optimizer, dtype):
    lam, steps, truth = noisy_problem
    lam_x = lam.ravel().astype(dtype)
    benchmark.group = _noisy_group(optimizer, dtype)

    def call():
        rng = np.random.default_rng(3)
        draw = (lambda z: rng.standard_normal(out=z, dtype=z.dtype))
        return _noisy_loop((np.empty_like, lambda x, out: np.sqrt(x, out=out)), optimizer, lam_x, steps, dtype, draw)

    w = run(benchmark, call, smoke)
    record(benchmark, impl="numpy", n=lam.shape[0], steps=steps, dtype=dtype)
    _check_noisy(w, lam, optimizer, dtype, steps, truth)


@pytest.mark.parametrize("optimizer, dtype", NOISY)
def test_torch_noisy(benchmark, noisy_problem, smoke, optimizer, dtype):
    torch = _torch()
    lam, steps, truth = noisy_problem
    lam_t = torch.from_numpy(lam.ravel().astype(dtype))
    benchmark.group = _noisy_group(optimizer, dtype)

    def call():
        gen = torch.Generator().manual_seed(3)
        draw = (lambda z: torch.randn(z.shape, generator=gen, dtype=z.dtype, out=z))
        return _noisy_loop((torch.empty_like, lambda x, out: torch.sqrt(x, out=out)), optimizer, lam_t, steps,
                           dtype, draw)

    w = run(benchmark, call, smoke)
    record(benchmark, impl="torch", n=lam.shape[0], steps=steps, dtype=dtype, threads=torch.get_num_threads())
    _check_noisy(w.numpy(), lam, optimizer, dtype, steps, truth)


@pytest.mark.parametrize("optimizer, dtype", NOISY)
def test_jax_noisy(benchmark, noisy_problem, smoke, optimizer, dtype):
    jax = _jax()
    lam, steps, truth = noisy_problem
    f = jax_optimizer(jax, optimizer, SIGMA, dtype)
    lam_j = jax.numpy.asarray(lam.ravel().astype(dtype))
    idx = jax.numpy.arange(steps, dtype=dtype)
    key = jax.random.PRNGKey(3)
    benchmark.group = _noisy_group(optimizer, dtype)
    w = run(benchmark, lambda: f(lam_j, idx, key).block_until_ready(), smoke)
    record(benchmark, impl="jax", n=lam.shape[0], steps=steps, dtype=dtype)
    _check_noisy(np.asarray(w), lam, optimizer, dtype, steps, truth)


# ----------------------------------------------------------------------------- (e) a small call: the per-call cost

GROUP_SMALL = "simulate-small-call"
SMALL = (1_000, 10)  # (trajectories, steps): a call whose run is a few microseconds, mostly its fixed cost


def run_small(benchmark, fn, smoke):
    """As ``run``, with many rounds of many calls: a call takes tens of microseconds."""
    fn()
    if smoke:
        return benchmark(fn)
    return benchmark.pedantic(fn, rounds=200, iterations=20, warmup_rounds=2)


@pytest.fixture(scope="module")
def small_problem():
    n, steps = SMALL
    return np.random.default_rng(0).uniform(0.01, 1.0, (n, 1)), steps


def test_fastdecay_small_call(benchmark, small_problem, smoke):
    lam, steps = small_problem
    s = fd.exponential(lr=LR, gamma=GAMMA)
    benchmark.group = GROUP_SMALL
    res = run_small(benchmark, lambda: fd.simulate(lam, s, steps=steps, optimizer="momentum", momentum=MOMENTUM),
                    smoke)
    record(benchmark, impl="fastdecay", n=lam.shape[0], steps=steps)
    np.testing.assert_allclose(res.w[:32, 0], _reference_w(lam, "momentum", steps), rtol=1e-12)


def test_fastdecay_small_call_one_thread(benchmark, small_problem, smoke):
    lam, steps = small_problem
    s = fd.exponential(lr=LR, gamma=GAMMA)
    benchmark.group = GROUP_SMALL
    res = run_small(benchmark, lambda: fd.simulate(lam, s, steps=steps, optimizer="momentum", momentum=MOMENTUM,
                                                   threads=1), smoke)
    record(benchmark, impl="fastdecay-1-thread", n=lam.shape[0], steps=steps)
    np.testing.assert_allclose(res.w[:32, 0], _reference_w(lam, "momentum", steps), rtol=1e-12)


def test_numpy_small_call(benchmark, small_problem, smoke):
    lam, steps = small_problem
    benchmark.group = GROUP_SMALL
    w = run_small(benchmark, lambda: numpy_optimizer(lam, "momentum", steps), smoke)
    record(benchmark, impl="numpy", n=lam.shape[0], steps=steps)
    np.testing.assert_allclose(w[:32], _reference_w(lam, "momentum", steps), rtol=1e-12)


def test_jax_small_call(benchmark, small_problem, smoke):
    jax = _jax()
    lam, steps = small_problem
    f = jax_optimizer(jax, "momentum")
    lam_j, idx = jax.numpy.asarray(lam.ravel()), jax.numpy.arange(steps, dtype="float64")
    key = jax.random.PRNGKey(0)
    benchmark.group = GROUP_SMALL
    w = run_small(benchmark, lambda: f(lam_j, idx, key).block_until_ready(), smoke)
    record(benchmark, impl="jax", n=lam.shape[0], steps=steps)
    np.testing.assert_allclose(np.asarray(w)[:32], _reference_w(lam, "momentum", steps), rtol=1e-12)
