"""Every schedule against its torch scheduler, stepped hundreds of times.

torch's schedulers are stepped the way a training loop steps them
(``optimizer.step(); scheduler.step()``) and the learning rate the optimizer
holds before update t is compared with ``s(t)`` and ``s.table(n)[t]``. torch
computes most of them in chained form (each rate from the previous one), which
drifts by an ulp or so a step, so the tolerance is relative 1e-11 (plus a tiny
absolute floor where rates approach zero).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.optim import lr_scheduler as S  # noqa: E402

import fastdecay as fd  # noqa: E402

RTOL = 1e-11


def torch_rates(make_scheduler, lr, n):
    """The lr torch's optimizer uses for updates 0 .. n-1 under the scheduler."""
    param = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([param], lr=lr)
    sched = make_scheduler(opt)
    rates = []
    for _ in range(n):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(rates, dtype=np.float64)


def check(s, expected, *, atol=0.0):
    n = len(expected)
    steps = np.arange(n)
    np.testing.assert_allclose(s(steps), expected, rtol=RTOL, atol=atol)
    np.testing.assert_allclose(s.table(n), expected, rtol=RTOL, atol=atol)
    # a few scattered scalar calls, out of order
    for t in (n - 1, 0, n // 3, n // 2):
        np.testing.assert_allclose(s(t), expected[t], rtol=RTOL, atol=atol)


@pytest.mark.parametrize("lr, gamma, period", [(0.1, 0.5, 10), (0.3, 0.9, 7), (1.0, 0.1, 1), (0.05, 1.2, 13)])
def test_step_is_steplr(lr, gamma, period):
    expected = torch_rates(lambda o: S.StepLR(o, step_size=period, gamma=gamma), lr, 400)
    check(fd.step(lr, gamma, period), expected)


@pytest.mark.parametrize("milestones", [[30, 80, 250], [1, 2, 3], [5, 5, 90], []])
def test_multistep_is_multisteplr(milestones):
    expected = torch_rates(lambda o: S.MultiStepLR(o, milestones=milestones, gamma=0.3), 0.2, 300)
    check(fd.multistep(0.2, 0.3, milestones), expected)


@pytest.mark.parametrize("gamma", [0.99, 0.9, 0.5, 1.001])
def test_exponential_is_exponentiallr(gamma):
    n = 500
    expected = torch_rates(lambda o: S.ExponentialLR(o, gamma=gamma), 0.1, n)
    check(fd.exponential(0.1, gamma=gamma), expected, atol=1e-300)
    # the rate and half-life forms are the same schedule
    check(fd.exponential(0.1, rate=-np.log(gamma)) if gamma < 1 else fd.exponential(0.1, gamma=gamma), expected)
    if gamma < 1:
        check(fd.exponential(0.1, half_life=np.log(2) / -np.log(gamma)), expected, atol=1e-300)


@pytest.mark.parametrize("T, eta_min", [(100, 0.0), (257, 0.01), (1, 0.0)])
def test_cosine_is_cosineannealinglr_up_to_t_max(T, eta_min):
    # torch is periodic after T_max; fastdecay clamps (Keras/optax): compare up to T_max
    expected = torch_rates(lambda o: S.CosineAnnealingLR(o, T_max=T, eta_min=eta_min), 0.5, T + 1)
    check(fd.cosine(0.5, T, min_lr=eta_min), expected, atol=1e-15)
    assert fd.cosine(0.5, T, min_lr=eta_min)(T + 50) == pytest.approx(eta_min, abs=1e-16)


@pytest.mark.parametrize("T0, mult, eta_min", [(10, 1, 0.0), (10, 2, 0.001), (3, 3, 0.0), (7, 1, 0.05), (1, 2, 0.0)])
def test_cosine_restarts_is_cosineannealingwarmrestarts(T0, mult, eta_min):
    expected = torch_rates(lambda o: S.CosineAnnealingWarmRestarts(o, T_0=T0, T_mult=mult, eta_min=eta_min), 0.5, 700)
    check(fd.cosine_restarts(0.5, T0, period_mult=mult, min_lr=eta_min), expected, atol=1e-15)


@pytest.mark.parametrize("start, end, T", [(0.1, 1.0, 50), (1.0, 0.25, 37), (0.5, 0.5, 10), (1.0 / 3, 1.0, 1)])
def test_linear_is_linearlr_as_factors(start, end, T):
    base = 0.2
    expected = torch_rates(lambda o: S.LinearLR(o, start_factor=start, end_factor=end, total_iters=T), base, 200)
    check(fd.linear(base * start, base * end, T), expected, atol=1e-16)


@pytest.mark.parametrize("T, power", [(100, 1.0), (100, 2.0), (73, 0.5), (1, 3.0)])
def test_polynomial_is_polynomiallr(T, power):
    expected = torch_rates(lambda o: S.PolynomialLR(o, total_iters=T, power=power), 0.3, 250)
    check(fd.polynomial(0.3, T, power=power), expected, atol=1e-15)


@pytest.mark.parametrize(
    "T, pct, div, final_div",
    [(100, 0.3, 25.0, 1e4), (333, 0.25, 25.0, 1e4), (1000, 0.123, 10.0, 100.0), (57, 0.45, 5.0, 1e3), (10, 0.5, 2.0, 2.0)],
)
def test_one_cycle_is_onecyclelr(T, pct, div, final_div):
    expected = torch_rates(
        lambda o: S.OneCycleLR(
            o, max_lr=0.8, total_steps=T, pct_start=pct, anneal_strategy="cos", cycle_momentum=False,
            div_factor=div, final_div_factor=final_div, three_phase=False,
        ),
        0.8,
        T,
    )
    s = fd.one_cycle(0.8, T, pct_start=pct, div_factor=div, final_div_factor=final_div)
    check(s, expected, atol=1e-15)
    # held at the final rate after the last step (torch refuses to step further)
    assert s(T + 10) == pytest.approx(expected[-1], rel=1e-12)


@pytest.mark.parametrize("mode, up, down, gamma", [
    ("triangular", 10, None, 1.0),
    ("triangular", 7, 3, 1.0),
    ("triangular2", 10, 15, 1.0),
    ("triangular2", 4, None, 1.0),
    ("exp_range", 10, None, 0.995),
    ("exp_range", 6, 11, 0.98),
])
def test_cyclic_is_cycliclr(mode, up, down, gamma):
    expected = torch_rates(
        lambda o: S.CyclicLR(
            o, base_lr=0.01, max_lr=0.3, step_size_up=up, step_size_down=down, mode=mode, gamma=gamma,
            cycle_momentum=False,
        ),
        0.01,
        400,
    )
    check(fd.cyclic(0.01, 0.3, up, step_size_down=down, mode=mode, gamma=gamma), expected, atol=1e-16)


def test_warmup_then_cosine_is_sequentiallr():
    base, W, T = 0.4, 20, 180
    expected = torch_rates(
        lambda o: S.SequentialLR(
            o,
            [S.LinearLR(o, start_factor=0.05, end_factor=1.0, total_iters=W), S.CosineAnnealingLR(o, T_max=T)],
            milestones=[W],
        ),
        base,
        W + T + 1,
    )
    check(fd.warmup(fd.cosine(base, T), W, start_lr=0.05 * base), expected, atol=1e-15)


def test_join_is_sequentiallr():
    base = 0.5
    expected = torch_rates(
        lambda o: S.SequentialLR(
            o,
            [S.ConstantLR(o, factor=1.0, total_iters=0), S.ExponentialLR(o, gamma=0.97), S.StepLR(o, 25, 0.5)],
            milestones=[40, 150],
        ),
        base,
        400,
    )
    s = fd.join([fd.constant(base), fd.exponential(base, gamma=0.97), fd.step(base, 0.5, 25)], [40, 150])
    check(s, expected)


def lambda_rates(fn, lr, n):
    return torch_rates(lambda o: S.LambdaLR(o, lambda t: fn(t) / lr), lr, n)


def test_piecewise_is_lambdalr():
    boundaries, values = [10, 35, 90], [0.3, 0.1, 0.2, 0.01]
    expected = lambda_rates(lambda t: values[sum(t >= b for b in boundaries)], 0.3, 150)
    check(fd.piecewise(boundaries, values), expected)


def test_inverse_time_is_lambdalr():
    expected = lambda_rates(lambda t: 0.2 / (1 + 0.05 * t / 3), 0.2, 300)
    check(fd.inverse_time(0.2, 0.05, decay_steps=3), expected)
    expected = lambda_rates(lambda t: 0.2 / (1 + 0.05 * (t // 3)), 0.2, 300)
    check(fd.inverse_time(0.2, 0.05, decay_steps=3, staircase=True), expected)


def test_inverse_sqrt_is_lambdalr():
    W = 40
    expected = lambda_rates(lambda t: 0.1 * t / W if t < W else 0.1 * (W / t) ** 0.5, 0.1, 400)
    check(fd.inverse_sqrt(0.1, W), expected)


@pytest.mark.parametrize("decay", ["linear", "cosine", "1-sqrt"])
def test_wsd_is_lambdalr(decay):
    lr, T, W, D, end = 0.1, 300, 25, 60, 0.001
    shape = {
        "linear": lambda x: 1 - x,
        "cosine": lambda x: (1 + np.cos(np.pi * x)) / 2,
        "1-sqrt": lambda x: 1 - np.sqrt(x),
    }[decay]

    def rate(t):
        if t < W:
            return lr * t / W
        if t < T - D:
            return lr
        return end + (lr - end) * shape(min((t - (T - D)) / D, 1.0))

    expected = lambda_rates(rate, lr, 350)
    check(fd.wsd(lr, T, warmup_steps=W, decay_steps=D, end_lr=end, decay=decay), expected, atol=1e-16)


def test_lr_scheduler_resumes_exactly():
    """torch's chained ExponentialLR drifts and resumes from a state dict by replaying;
    the closed form is the same at step 10,000 whatever came before (pytorch#32296)."""
    s = fd.exponential(0.1, gamma=0.999)
    chained = torch_rates(lambda o: S.ExponentialLR(o, gamma=0.999), 0.1, 10_000)
    exact = 0.1 * 0.999 ** np.arange(10_000)
    ours = s.table(10_000)
    assert np.max(np.abs(ours / exact - 1)) < 1e-13
    # torch's chained product is further from the closed form than we are
    assert np.max(np.abs(chained / exact - 1)) > np.max(np.abs(ours / exact - 1))
