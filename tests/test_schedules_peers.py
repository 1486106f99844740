"""The schedule options of torch, optax, Keras, timm and transformers, each against the
peer that has it: torch's schedulers run here; optax, Keras, timm and transformers are
not installed in the test environment, so their schedules are written out below as
their sources write them (the file and function are named at each), and compared over
hundreds of steps with fastdecay's closed form, table and reference."""

import math

import numpy as np
import pytest

import fastdecay as fd
from fastdecay import reference as ref

from test_schedules_formulas import keras_cosine_restarts
from test_schedules_torch import RTOL, check

torch = pytest.importorskip("torch")
S = torch.optim.lr_scheduler


def check_all(s, expected, *, rtol=RTOL, atol=0.0):
    """s(t), s.table(n) and the reference against the peer's rates ``expected``."""
    check(s, expected, atol=atol)
    np.testing.assert_allclose(ref.schedule_lr(s, np.arange(len(expected))), expected, rtol=rtol, atol=atol)


def torch_rates_and_momenta(make_scheduler, n, *, adam=False):
    """The lr and momentum (or Adam beta1) torch's optimizer holds before updates 0 .. n-1."""
    param = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.Adam([param], lr=0.1) if adam else torch.optim.SGD([param], lr=0.1, momentum=0.9)
    sched = make_scheduler(opt)
    rates, momenta = [], []
    for _ in range(n):
        group = opt.param_groups[0]
        rates.append(group["lr"])
        momenta.append(group["betas"][0] if adam else group["momentum"])
        opt.step()
        sched.step()
    return np.array(rates), np.array(momenta)


# ----------------------------------------------------------------------------- torch


@pytest.mark.parametrize("anneal", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("T, pct", [(100, 0.3), (457, 0.25), (90, 0.45), (1000, 0.1)])
def test_one_cycle_options_and_momentum_are_onecyclelr(anneal, three_phase, T, pct):
    def make(o):
        return S.OneCycleLR(o, max_lr=0.8, total_steps=T, pct_start=pct, anneal_strategy=anneal, div_factor=20.0,
                            final_div_factor=300.0, three_phase=three_phase, base_momentum=0.8, max_momentum=0.97)

    rates, momenta = torch_rates_and_momenta(make, T)
    s = fd.one_cycle(0.8, T, pct_start=pct, anneal_strategy=anneal, div_factor=20.0, final_div_factor=300.0,
                     three_phase=three_phase, base_momentum=0.8, max_momentum=0.97)
    check_all(s, rates)
    check_all(s.momentum, momenta)
    # held after the end (torch raises there)
    assert s(T + 50) == pytest.approx(rates[-1], rel=1e-12)


def test_one_cycle_momentum_defaults_and_adam_beta1():
    rates, betas = torch_rates_and_momenta(lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=200), 200, adam=True)
    s = fd.one_cycle(0.1, 200)
    check_all(s, rates)
    check_all(s.momentum, betas)


@pytest.mark.parametrize("mode, gamma", [("triangular", 1.0), ("triangular2", 1.0), ("exp_range", 0.997)])
def test_cyclic_momentum_is_cycliclr(mode, gamma):
    def make(o):
        return S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=17, step_size_down=9, mode=mode, gamma=gamma,
                          base_momentum=0.75, max_momentum=0.92)

    rates, momenta = torch_rates_and_momenta(make, 300)
    s = fd.cyclic(0.01, 0.1, 17, step_size_down=9, mode=mode, gamma=gamma, base_momentum=0.75, max_momentum=0.92)
    check_all(s, rates)
    check_all(s.momentum, momenta)


def test_momentum_companion_only_for_cycles():
    with pytest.raises(AttributeError, match="only one_cycle and cyclic"):
        fd.cosine(1.0, 10).momentum
    with pytest.raises(ValueError, match="max_momentum must be"):
        fd.one_cycle(1.0, 100, max_momentum=1.5)
    with pytest.raises(ValueError, match="base_momentum must be"):
        fd.cyclic(0.1, 1.0, 5, base_momentum=-0.1)


def test_one_cycle_bad_options():
    with pytest.raises(ValueError, match="anneal_strategy must be one of"):
        fd.one_cycle(1.0, 100, anneal_strategy="cosine")
    with pytest.raises(TypeError, match="three_phase must be True or False"):
        fd.one_cycle(1.0, 100, three_phase=1)
    with pytest.raises(ValueError, match=r"pct_start must be below \(total_steps \+ 1\) / \(2 \* total_steps\) with three_phase"):
        fd.one_cycle(1.0, 100, pct_start=0.6, three_phase=True)


# ----------------------------------------------------------------------------- transformers


def transformers_cosine_with_warmup(step, *, num_warmup_steps, num_training_steps, num_cycles):
    """transformers/optimization.py, _get_cosine_schedule_with_warmup_lr_lambda."""
    if step < num_warmup_steps:
        return float(step) / float(max(1, num_warmup_steps))
    progress = float(step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))


def transformers_inverse_sqrt(step, *, num_warmup_steps, timescale=None):
    """transformers/optimization.py, _get_inverse_sqrt_schedule_lr_lambda (timescale
    defaulting as get_inverse_sqrt_schedule does)."""
    if timescale is None:
        timescale = num_warmup_steps or 10_000
    if step < num_warmup_steps:
        return float(step) / float(max(1, num_warmup_steps))
    shift = timescale - num_warmup_steps
    return 1.0 / math.sqrt((step + shift) / timescale)


@pytest.mark.parametrize("num_cycles", [0.5, 1.0, 2.5, 0.25])
@pytest.mark.parametrize("warmup_steps", [0, 30])
def test_cosine_num_cycles_is_transformers(num_cycles, warmup_steps):
    T = 400
    expected = 0.3 * np.array([transformers_cosine_with_warmup(t, num_warmup_steps=warmup_steps, num_training_steps=T,
                                                               num_cycles=num_cycles) for t in range(T + 1)])
    s = fd.warmup(fd.cosine(0.3, T - warmup_steps, num_cycles=num_cycles), warmup_steps)
    check_all(s, expected, atol=1e-15)


@pytest.mark.parametrize("warmup_steps, timescale", [(100, None), (100, 1000), (40, 10), (1, 500)])
def test_inverse_sqrt_timescale_is_transformers(warmup_steps, timescale):
    expected = 0.01 * np.array([transformers_inverse_sqrt(t, num_warmup_steps=warmup_steps, timescale=timescale)
                                for t in range(600)])
    check_all(fd.inverse_sqrt(0.01, warmup_steps, timescale=timescale), expected)


# ----------------------------------------------------------------------------- optax


def optax_cosine_decay(count, *, init_value, decay_steps, alpha=0.0, exponent=1.0):
    """optax/schedules/_schedule.py, cosine_decay_schedule."""
    count = min(count, decay_steps)
    cosine_decay = 0.5 * (1 + math.cos(math.pi * count / decay_steps))
    decayed = (1 - alpha) * cosine_decay**exponent + alpha
    return init_value * decayed


def optax_exponential_decay(count, *, init_value, transition_steps, decay_rate, staircase=False, end_value=None):
    """optax/schedules/_schedule.py, exponential_decay (transition_begin 0)."""
    p = count / transition_steps
    if staircase:
        p = math.floor(p)
    value = init_value if count <= 0 else init_value * decay_rate**p
    if end_value is not None:
        value = max(value, end_value) if decay_rate < 1.0 else min(value, end_value)
    return value


@pytest.mark.parametrize("exponent, alpha", [(1.0, 0.0), (2.0, 0.1), (0.5, 0.0), (3.7, 0.25)])
def test_cosine_exponent_is_optax(exponent, alpha):
    expected = np.array([optax_cosine_decay(t, init_value=0.2, decay_steps=333, alpha=alpha, exponent=exponent)
                         for t in range(400)])
    check_all(fd.cosine(0.2, 333, min_lr=0.2 * alpha, exponent=exponent), expected, atol=1e-16)


@pytest.mark.parametrize(
    "rate, steps, staircase, end",
    [(0.9, 1, False, 0.01), (0.5, 7, True, 0.003), (0.97, 2.5, False, 0.05), (1.01, 1, False, 0.5),
     (1.2, 3, True, 1.0), (0.9, 1, False, 0.0), (0.8, 1, False, 2.0)],
)
def test_exponential_end_value_is_optax(rate, steps, staircase, end):
    expected = np.array([optax_exponential_decay(t, init_value=0.4, transition_steps=steps, decay_rate=rate,
                                                 staircase=staircase, end_value=end) for t in range(500)])
    s = fd.exponential(0.4, gamma=rate, decay_steps=steps, staircase=staircase, end_lr=end)
    check_all(s, expected)


def test_exponential_end_value_batch():
    gammas = np.array([0.9, 0.99, 1.02])
    ends = np.array([0.01, 0.05, 0.3])
    s = fd.exponential(0.1, gamma=gammas, end_lr=ends)
    expected = [[optax_exponential_decay(t, init_value=0.1, transition_steps=1, decay_rate=g, end_value=e)
                 for t in range(300)] for g, e in zip(gammas, ends)]
    np.testing.assert_allclose(s.table(300), expected, rtol=RTOL)


# ----------------------------------------------------------------------------- Keras


def keras_piecewise_constant(step, boundaries, values):
    """keras/src/optimizers/schedules/learning_rate_schedule.py, PiecewiseConstantDecay:
    values[0] for step <= boundaries[0], values[i] for boundaries[i-1] < step <= boundaries[i],
    values[-1] for step > boundaries[-1]."""
    for b, v in zip(boundaries, values):
        if step <= b:
            return v
    return values[-1]


@pytest.mark.parametrize("t_mul, m_mul, alpha", [(2.0, 1.0, 0.0), (2.0, 0.8, 0.1), (1.0, 0.5, 0.0), (1.5, 0.9, 0.3)])
def test_cosine_restarts_m_mul_is_keras(t_mul, m_mul, alpha):
    keras = keras_cosine_restarts(0.5, 20, t_mul, alpha, m_mul=m_mul)
    expected = np.array([keras(t) for t in range(600)])
    s = fd.cosine_restarts(0.5, 20, period_mult=t_mul, min_lr=0.5 * alpha, cycle_decay=m_mul, decay_amplitude=True)
    # Keras finds the cycle with logarithms; compare where both put a step in the same cycle (all steps here)
    check_all(s, expected, rtol=1e-10, atol=1e-15)


def test_piecewise_right_closed_is_keras():
    boundaries, values = [10, 25, 26, 300], [1.0, 0.5, 0.3, 0.2, 0.01]
    expected = np.array([keras_piecewise_constant(t, boundaries, values) for t in range(400)])
    check_all(fd.piecewise(boundaries, values, closed="right"), expected)
    with pytest.raises(ValueError, match="closed must be 'left' or 'right'"):
        fd.piecewise(boundaries, values, closed="both")


# ----------------------------------------------------------------------------- timm


def timm_cosine(t, *, base_lr, t_initial, lr_min=0.0, cycle_mul=1.0, cycle_decay=1.0, cycle_limit=1, warmup_t=0,
                warmup_lr_init=0.0, warmup_prefix=False):
    """timm/scheduler/cosine_lr.py, CosineLRScheduler._get_lr (k_decay 1)."""
    if t < warmup_t:
        return warmup_lr_init + t * (base_lr - warmup_lr_init) / warmup_t
    if warmup_prefix:
        t = t - warmup_t
    if cycle_mul != 1:
        i = math.floor(math.log(1 - t / t_initial * (1 - cycle_mul), cycle_mul))
        t_i = cycle_mul**i * t_initial
        t_curr = t - (1 - cycle_mul**i) / (1 - cycle_mul) * t_initial
    else:
        i = t // t_initial
        t_i = t_initial
        t_curr = t - (t_initial * i)
    gamma = cycle_decay**i
    lr_max = base_lr * gamma
    if i < cycle_limit:
        return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * t_curr / t_i))
    return lr_min


@pytest.mark.parametrize("cycle_mul, cycle_decay, cycle_limit", [(1.0, 0.5, 3), (2.0, 0.7, 4), (1.0, 1.0, 1),
                                                                (1.5, 0.9, 100)])
@pytest.mark.parametrize("warmup_t, warmup_prefix", [(0, False), (25, False), (25, True)])
def test_cosine_restarts_cycle_decay_limit_and_warmup_prefix_are_timm(cycle_mul, cycle_decay, cycle_limit, warmup_t,
                                                                      warmup_prefix):
    kw = dict(base_lr=0.1, t_initial=40, lr_min=1e-3, cycle_mul=cycle_mul, cycle_decay=cycle_decay,
              cycle_limit=cycle_limit)
    expected = np.array([timm_cosine(t, warmup_t=warmup_t, warmup_lr_init=1e-4, warmup_prefix=warmup_prefix, **kw)
                         for t in range(700)])
    s = fd.cosine_restarts(0.1, 40, period_mult=cycle_mul, min_lr=1e-3, cycle_decay=cycle_decay,
                           cycle_limit=cycle_limit)
    s = fd.warmup(s, warmup_t, start_lr=1e-4, prefix=warmup_prefix)
    check_all(s, expected, rtol=1e-10, atol=1e-16)


@pytest.mark.parametrize("cycle_mul", [1.0, 1.5])
def test_cosine_restarts_with_a_cycle_limit_of_any_size_is_made_at_once(cycle_mul):
    """A limit of 10**12 or 10**30 cycles: found in closed form (no array of that many cycle
    lengths), the rates of the unlimited schedule up to the limit, min_lr from it on."""
    free = fd.cosine_restarts(0.1, 4, period_mult=cycle_mul, min_lr=1e-3)
    for limit in (10**12, 10**30):
        s = fd.cosine_restarts(0.1, 4, period_mult=cycle_mul, min_lr=1e-3, cycle_limit=limit)
        np.testing.assert_array_equal(s.table(700), free.table(700))
    if cycle_mul == 1.0:  # the limit's first step, 4e12: still reached
        s = fd.cosine_restarts(0.1, 4, min_lr=1e-3, cycle_limit=10**12)
        steps = np.array([4 * 10**12 - 3, 4 * 10**12 - 1, 4 * 10**12, 4 * 10**12 + 2])
        np.testing.assert_array_equal(s(steps)[:2], free(steps)[:2])
        np.testing.assert_array_equal(s(steps)[2:], [1e-3, 1e-3])
        assert free(steps[3]) > 1e-2


# ----------------------------------------------------------------------------- warmup shapes


@pytest.mark.parametrize("shape", ["linear", "cosine", "exponential"])
def test_warmup_shapes(shape):
    """Linear (optax linear_schedule), half cosine (optax cosine_onecycle's rising phase:
    start + (peak − start)(1 − cos(π·x))/2) and geometric (start · (peak/start)^x) warmups
    over W steps, x = t/W, then the schedule."""
    W, start, peak = 37, 1e-4, 0.3
    x = np.minimum(np.arange(300), W) / W
    ramp = {"linear": start + (peak - start) * x, "cosine": start + (peak - start) * (1 - np.cos(np.pi * x)) / 2,
            "exponential": start * (peak / start) ** x}[shape]
    main = fd.cosine(peak, 200)
    expected = np.where(np.arange(300) < W, ramp, main(np.maximum(np.arange(300) - W, 0)))
    check_all(fd.warmup(main, W, start_lr=start, shape=shape), expected, atol=1e-16)
    wsd = fd.wsd(peak, 300, warmup_steps=W, decay_steps=60, start_lr=start, warmup_shape=shape)
    expected = np.where(np.arange(300) < W, ramp, np.where(np.arange(300) < 240, peak, peak * (300 - np.arange(300)) / 60))
    check_all(wsd, expected, atol=1e-16)


def test_warmup_bad_shapes():
    with pytest.raises(ValueError, match="shape must be one of"):
        fd.warmup(fd.constant(1.0), 5, shape="quadratic")
    with pytest.raises(ValueError, match="warmup_shape must be one of"):
        fd.wsd(1.0, 100, warmup_steps=5, warmup_shape="cos")
    with pytest.raises(ValueError, match="an exponential warmup needs start_lr > 0"):
        fd.warmup(fd.constant(1.0), 5, shape="exponential")
    with pytest.raises(TypeError, match="prefix must be True or False"):
        fd.warmup(fd.constant(1.0), 5, prefix="no")


def test_knobs_bad_input():
    with pytest.raises(ValueError, match="num_cycles must be > 0"):
        fd.cosine(1.0, 10, num_cycles=0)
    with pytest.raises(ValueError, match="exponent must be > 0"):
        fd.cosine(1.0, 10, exponent=-1)
    with pytest.raises(ValueError, match="cycle_decay must be >= 0"):
        fd.cosine_restarts(1.0, 10, cycle_decay=-0.5)
    with pytest.raises(ValueError, match="cycle_limit must be an integer >= 1"):
        fd.cosine_restarts(1.0, 10, cycle_limit=0)
    with pytest.raises(ValueError, match="timescale must be > 0"):
        fd.inverse_sqrt(1.0, 10, timescale=0)
    with pytest.raises(ValueError, match="end_lr must be >= 0"):
        fd.exponential(1.0, gamma=0.9, end_lr=-1.0)
