"""Exact expected loss (fd.expected_loss) against noiseless fd.simulate and against
a Monte Carlo estimate of the same expected loss, on the CPU.

The problem: the noisy quadratic model with d = 10,000 coordinates (λ_k = 1/k,
σ_k² = λ_k), a batch of 1,000 exponential schedules (one per trajectory) and
1,000 steps: 10^10 coordinate-steps. Groups (one table each in ``bench/report.py``):

- ``expected-gd`` / ``expected-momentum``: ``fastdecay`` is fd.expected_loss (the
  moments of every coordinate under the noise, exact); ``simulate-noiseless`` is
  fd.simulate of the same schedules and coordinates without noise (one trajectory
  each, the same rule). ``x faster`` is the ratio of coordinate-step rates (target:
  expected_loss at >= 0.5x the noiseless simulation). The two are also timed in
  alternation in one benchmark (``interleaved``), robust to a shared machine's
  drift: its ``extra_info["ratio"]`` is expected's rate over simulate's.
- ``monte-carlo-1%``: what a Monte Carlo estimate of every schedule's final
  expected loss to 1 % relative standard error costs. The loss of one noisy run is
  a sum of independent Gaussian squares, so its variance is exact from the
  moments: Var = Σ_k λ_k² (v_k²/2 + m_k² v_k) (v = E w² − m²), and the runs needed
  are N = Var / (0.01 E loss)², the largest over the schedules. The row times noisy
  fd.simulate runs on a subset of the schedules (one run each) and ``scale`` =
  (schedules x N) / subset extrapolates to the full estimate (target:
  expected_loss >= 100x faster).

``steps_per_s`` is coordinate-steps per second from the median. Under
``--benchmark-disable`` (``make test``) each runs once on 20 schedules x 500
coordinates x 50 steps.
"""

import time

import numpy as np
import pytest

import fastdecay as fd

LR = 0.5
MOMENTUM = 0.9


def sizes(smoke):
    """(schedules, coordinates, steps)."""
    return (20, 500, 50) if smoke else (1_000, 10_000, 1_000)


@pytest.fixture(scope="module")
def problem(request):
    smoke = bool(request.config.getoption("benchmark_disable", False))
    n_schedules, d, steps = sizes(smoke)
    lam = 1.0 / np.arange(1, d + 1)
    schedules = fd.exponential(LR, gamma=np.linspace(0.99, 0.9999, n_schedules))
    return lam, np.sqrt(lam), schedules, steps, smoke


def record(benchmark, *, impl, work, **extra):
    benchmark.extra_info.update(impl=impl, coordinate_steps=work, **extra)
    if benchmark.stats is not None:
        benchmark.extra_info["steps_per_s"] = work / benchmark.stats.stats.median


def run(benchmark, fn, smoke, rounds=3):
    fn()  # compiles (or loads Numba's cache)
    if smoke:
        return benchmark(fn)
    return benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=0)


OPTIMIZERS = {"gd": dict(optimizer="gd"), "momentum": dict(optimizer="momentum", momentum=MOMENTUM)}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_expected_loss(benchmark, problem, name):
    lam, noise, schedules, steps, smoke = problem
    benchmark.group = f"expected-{name}"
    res = run(benchmark, lambda: fd.expected_loss(lam, schedules, steps=steps, noise=noise, **OPTIMIZERS[name]),
              smoke)
    assert np.all(np.isfinite(res.final_loss)) and np.all(res.final_loss > 0)
    record(benchmark, impl="fastdecay", work=schedules.size * lam.size * steps)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_simulate_noiseless(benchmark, problem, name):
    lam, noise, schedules, steps, smoke = problem
    benchmark.group = f"expected-{name}"
    res = run(benchmark, lambda: fd.simulate(lam, schedules, steps=steps, **OPTIMIZERS[name]), smoke)
    assert res.diverged == 0
    record(benchmark, impl="simulate-noiseless", work=schedules.size * lam.size * steps)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_expected_and_simulate_interleaved(benchmark, problem, name):
    """expected_loss and noiseless simulate timed in turns: the ratio of their rates."""
    lam, noise, schedules, steps, smoke = problem
    benchmark.group = f"expected-{name}-interleaved"
    times = {"expected": [], "simulate": []}

    def both():
        start = time.perf_counter()
        fd.expected_loss(lam, schedules, steps=steps, noise=noise, **OPTIMIZERS[name])
        middle = time.perf_counter()
        fd.simulate(lam, schedules, steps=steps, **OPTIMIZERS[name])
        times["expected"].append(middle - start)
        times["simulate"].append(time.perf_counter() - middle)

    run(benchmark, both, smoke)
    ratio = float(np.median(times["simulate"]) / np.median(times["expected"]))
    record(benchmark, impl="fastdecay-interleaved", work=2 * schedules.size * lam.size * steps, ratio=ratio)
    assert ratio > 0


def runs_for_one_percent(res, lam):
    """Noisy runs a Monte Carlo estimate needs for 1 % relative standard error of every
    schedule's final loss (exact variance of a sum of independent Gaussian squares)."""
    mean, second = np.asarray(res.mean), np.asarray(res.second_moment)
    var = np.maximum(second - mean**2, 0.0)
    loss_var = np.sum(lam**2 * (0.5 * var**2 + mean**2 * var), axis=-1)
    return int(np.ceil(np.max(loss_var / (0.01 * np.asarray(res.final_loss)) ** 2)))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_monte_carlo_to_one_percent(benchmark, problem, name):
    lam, noise, schedules, steps, smoke = problem
    benchmark.group = f"expected-{name}"
    exact = fd.expected_loss(lam, schedules, steps=steps, noise=noise, **OPTIMIZERS[name])
    needed = runs_for_one_percent(exact, lam)
    subset = max(1, schedules.size // 100)
    # (fd.simulate takes one σ for all coordinates; a noisy run costs the same whatever σ is)
    run(benchmark, lambda: fd.simulate(lam, schedules[:subset], steps=steps, noise=1.0, **OPTIMIZERS[name]), smoke,
        rounds=1)
    record(benchmark, impl="monte-carlo-1%", work=schedules.size * needed * lam.size * steps,
           scale=schedules.size * needed / subset, runs_per_schedule=needed)
    if benchmark.stats is not None:  # the rate over the work the full estimate would do
        benchmark.extra_info["steps_per_s"] = (subset * lam.size * steps) / benchmark.stats.stats.median
    assert needed >= 1
