"""Schedules as data and products: ``fd.tabulated``, ``fd.from_function``, ``a * b`` /
``fd.product``, against torch's LambdaLR, MultiplicativeLR and ChainedScheduler and
against ``fastdecay.reference``; their drops; their use in fused updates and
simulations (the kernels read the table's side rows)."""

import functools
import pickle

import numpy as np
import pytest

import fastdecay as fd
from fastdecay import _layout as L
from fastdecay import reference as ref

from test_schedules_torch import RTOL, check, torch_rates

torch = pytest.importorskip("torch")
S = torch.optim.lr_scheduler


def compare_reference(s, n, rtol=1e-13):
    """s.table(n), s(t) and a shuffled table against the reference (batch on the leading axes)."""
    t = np.arange(n).reshape((n,) + (1,) * len(s.batch_shape))
    want = np.moveaxis(ref.schedule_lr(s, t), 0, -1)
    np.testing.assert_allclose(s.table(n), want, rtol=rtol, atol=1e-300)
    np.testing.assert_allclose(np.moveaxis(s(t), 0, -1), want, rtol=rtol, atol=1e-300)
    steps = np.random.default_rng(0).permutation(n)
    np.testing.assert_allclose(s.table(steps), want[..., steps], rtol=rtol, atol=1e-300)


# ----------------------------------------------------------------------------- tabulated


@pytest.mark.parametrize("n", [1, 5, 6, 7, 613])
def test_tabulated_holds_values_then_last(n):
    values = np.random.default_rng(n).uniform(0.0, 1.0, n)
    s = fd.tabulated(values)
    got = s.table(n + 40)
    np.testing.assert_array_equal(got[:n], values)
    np.testing.assert_array_equal(got[n:], values[-1])
    assert s(n + 10**6) == values[-1]
    assert s.table(n + 3, dtype=np.float32).dtype == np.float32
    compare_reference(s, n + 40, rtol=0.0)


def test_tabulated_batch_of_tables_and_stack_with_closed_forms():
    values = np.random.default_rng(1).uniform(0.0, 1.0, (3, 2, 17))
    s = fd.tabulated(values)
    assert s.batch_shape == (3, 2)
    np.testing.assert_array_equal(s.table(17), values)
    np.testing.assert_array_equal(s[1].table(17), values[1])
    mixed = fd.stack([fd.tabulated(values[0, 0]), fd.cosine(0.3, 50), fd.tabulated(np.arange(40.0))])
    compare_reference(mixed, 90)


def test_tabulated_inside_compositions():
    table = fd.tabulated(np.linspace(1.0, 0.1, 25))
    for s in (fd.warmup(table, 7), fd.join([fd.constant(0.5), table, fd.tabulated([0.3, 0.2])], [10, 30]),
              fd.warmup(fd.join([table, table], [12]), 3), fd.stack([fd.warmup(table, 4), table])):
        compare_reference(s, 80)


def test_from_function_is_lambdalr():
    lam = lambda epoch: 0.97**epoch * (1 + 0.5 * np.sin(epoch / 7.0))  # noqa: E731
    expected = torch_rates(lambda o: S.LambdaLR(o, lr_lambda=lam), 0.2, 400)
    s = fd.from_function(lambda t: 0.2 * lam(t), 400)
    check(s, expected)
    assert s.kind == "tabulated" and s.params["values"].shape == (400,)


def test_from_function_cumulative_product_is_multiplicativelr():
    factor = lambda epoch: 0.95 if epoch % 3 else 1.02  # noqa: E731
    expected = torch_rates(lambda o: S.MultiplicativeLR(o, lr_lambda=factor), 0.1, 300)
    # MultiplicativeLR multiplies by factor(epoch) at epochs 1, 2, ...
    rates = 0.1 * np.cumprod([1.0] + [factor(t) for t in range(1, 300)])
    check(fd.tabulated(rates), expected)


def test_from_function_batch():
    s = fd.from_function(lambda t: np.array([0.1, 0.2]) / (1 + t), 10)
    assert s.batch_shape == (2,)
    np.testing.assert_allclose(s.table(12)[:, 11], [0.01, 0.02])


@pytest.mark.parametrize(
    "values, error, match",
    [
        ([], ValueError, "values must hold at least one"),
        (0.1, TypeError, "values must be an array"),
        ("0.1", TypeError, "values must be an array"),
        ([0.1, -0.2], ValueError, "values must be >= 0"),
        ([0.1, np.nan], ValueError, "values must be"),
        ([[0.1, 0.2], [0.3]], TypeError, "values must be a number"),
    ],
)
def test_tabulated_bad_input(values, error, match):
    with pytest.raises(error, match=match):
        fd.tabulated(values)


def test_from_function_bad_input():
    with pytest.raises(TypeError, match="f must be a callable"):
        fd.from_function([0.1], 3)
    with pytest.raises(ValueError, match="steps must be"):
        fd.from_function(lambda t: 0.1, 0)
    with pytest.raises(ValueError, match=r"f must return finite non-negative rates: f\(2\) must be >= 0"):
        fd.from_function(lambda t: 0.1 - 0.1 * t, 4)
    with pytest.raises(ValueError, match="f must return rates of one shape"):
        fd.from_function(lambda t: np.ones(t % 2 + 2), 4)


# ----------------------------------------------------------------------------- products


def factors():
    return {
        "step": fd.step(1.0, 0.5, 7),
        "multistep": fd.multistep(1.0, 0.3, [5, 40, 41]),
        "cosine": fd.cosine(0.2, 90, min_lr=0.01),
        "one_cycle": fd.one_cycle(0.1, 120),
        "warmup_cosine": fd.warmup(fd.cosine(1.0, 60), 10),
        "cyclic": fd.cyclic(0.5, 1.0, 9, mode="triangular2"),
        "exp_batch": fd.exponential(1.0, gamma=[0.99, 0.95, 0.9]),
        "tabulated": fd.tabulated(np.linspace(2.0, 0.5, 33)),
        "join": fd.join([fd.constant(1.0), fd.linear(1.0, 0.0, 50)], [20]),
    }


FACTORS = factors()
PAIRS = [(a, b) for a in FACTORS for b in FACTORS if a <= b]


@pytest.mark.parametrize("a, b", PAIRS)
def test_product_of_any_two_kinds_is_their_rates_multiplied(a, b):
    s = FACTORS[a] * FACTORS[b]
    assert s.batch_shape == np.broadcast_shapes(FACTORS[a].batch_shape, FACTORS[b].batch_shape)
    n = 150
    np.testing.assert_allclose(s.table(n), FACTORS[a].table(n) * FACTORS[b].table(n), rtol=1e-14, atol=1e-300)
    compare_reference(s, n)


def test_products_nest_flatten_and_compose():
    a, b, c = FACTORS["cosine"], FACTORS["tabulated"], FACTORS["step"]
    three = fd.product(a, b, c)
    nested = (a * b) * c
    np.testing.assert_allclose(nested.table(200), three.table(200), rtol=1e-15)
    # a flattened product has one level of factors: every factor row is a primitive
    kinds = nested.segments[..., L.KIND]
    factor_rows = np.isnan(nested.segments[..., L.START]) & (kinds != L.DATA)
    assert not np.any(kinds[factor_rows] == L.PRODUCT)
    for s in (fd.warmup(nested, 13), fd.join([nested, a * 2.0], [60]), fd.stack([nested, c, b * c]), 0.5 * nested):
        compare_reference(s, 220)


def test_constants_fold_into_the_primitive():
    s = 0.1 * fd.step(1.0, 0.5, 10)
    assert s.segments.shape == (1, L.WIDTH) and s.segments[0, L.KIND] == L.EXPONENTIAL
    assert s(25) == pytest.approx(0.025, rel=1e-15)
    levels = fd.multistep(1.0, 0.5, [3]) * fd.piecewise([2], [1.0, 3.0])
    assert set(levels.segments[..., L.KIND].ravel()) == {L.CONSTANT}
    assert levels.table(5).tolist() == [1.0, 1.0, 3.0, 1.5, 1.5]


def test_product_is_chainedscheduler():
    def make(o):
        return S.ChainedScheduler([S.StepLR(o, step_size=9, gamma=0.5), S.ExponentialLR(o, gamma=0.99)])

    expected = torch_rates(make, 0.3, 300)
    check(fd.step(0.3, 0.5, 9) * fd.exponential(1.0, gamma=0.99), expected)


def test_product_bad_input():
    with pytest.raises(TypeError, match=r"schedules\[1\] must be a fastdecay Schedule or a rate"):
        fd.product(fd.constant(1.0), "x")
    with pytest.raises(ValueError, match=r"schedules\[0\] must be >= 0"):
        fd.product(-1.0, fd.constant(1.0))
    with pytest.raises(ValueError, match="at least one"):
        fd.product()
    with pytest.raises(ValueError, match="do not broadcast"):
        fd.exponential(1.0, gamma=[0.9, 0.8]) * fd.exponential(1.0, gamma=[0.9, 0.8, 0.7])
    with pytest.raises(TypeError):
        fd.constant(1.0) * "x"


def test_pickle_and_repr():
    s = fd.tabulated([0.3, 0.2]) * fd.step(1.0, 0.5, 3)
    again = pickle.loads(pickle.dumps(s))
    np.testing.assert_array_equal(again.table(10), s.table(10))
    assert repr(s).startswith("fd.product(")


# ----------------------------------------------------------------------------- drops


@functools.cache
def _drop_ratio_loop():
    """A loop of the CPU backend's ``drop_ratio`` over steps 0, 1, ..., compiled once a process."""
    from numba import njit

    from fastdecay._cpu import schedule as cpu

    @njit
    def many(table, out):
        for t in range(out.shape[0]):
            out[t] = cpu.drop_ratio(table, 0, float(t))

    return many


def drop_ratios(s, n):
    out = np.empty(n)
    _drop_ratio_loop()(s.rows(), out)
    return out


def test_drops_of_tables_and_products():
    steps = fd.step(1.0, 0.5, 10)
    tabulated_steps = fd.tabulated(steps.table(45))
    np.testing.assert_array_equal(drop_ratios(tabulated_steps, 60), drop_ratios(steps, 45).tolist() + [1.0] * 15)
    # a smooth curve as a table never drops
    assert np.all(drop_ratios(fd.tabulated(fd.cosine(1.0, 300).table(300)), 310) == 1.0)
    assert np.all(drop_ratios(fd.tabulated(fd.exponential(1.0, gamma=0.5).table(30)), 40) == 1.0)
    # step x cosine drops at the step's plateaus only, by the product's ratio there
    s = steps * fd.cosine(1.0, 100)
    ratios = drop_ratios(s, 100)
    rates = s.table(100)
    expected = np.ones(100)
    expected[10::10] = rates[10::10] / rates[9:-1:10]
    np.testing.assert_allclose(ratios, expected, rtol=1e-15)
    # products of levels drop at every fall of either factor
    levels = fd.multistep(1.0, 0.5, [3, 8]) * fd.piecewise([5], [1.0, 0.5])
    assert drop_ratios(levels, 10).tolist() == [1, 1, 1, 0.5, 1, 0.5, 1, 1, 0.5, 1]


# ----------------------------------------------------------------------------- in the kernels


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sgd_step_reads_tables_and_products_in_the_kernel(dtype):
    lr = fd.warmup(fd.tabulated(np.linspace(0.1, 0.01, 40)), 5) * fd.step(1.0, 0.7, 11)
    rng = np.random.default_rng(3)
    w0 = rng.normal(size=37).astype(dtype)
    curvature = rng.uniform(0.1, 2.0, 37)
    w, buf = w0.copy(), np.zeros_like(w0)
    for t in range(60):
        grad = (curvature * w).astype(dtype)
        fd.sgd_step(w, grad, step=t, lr=lr, momentum=0.9, momentum_buffer=buf, on_drop="rescale")
    rates = lr.table(60)
    drops = {t for t in range(1, 60) if rates[t] < rates[t - 1] and t % 11 == 0}
    want = ref.sgd_trajectory(w0.astype(np.float64), lambda w, t: curvature * w, rates, momentum=0.9,
                              on_drop="rescale", drops=drops)[-1]
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(w, want, rtol=tol, atol=tol)


def test_simulate_with_a_table_equals_the_closed_form():
    curvature = np.random.default_rng(4).uniform(0.01, 1.5, (6, 9))
    closed = fd.cosine(0.5, 300) * fd.step(1.0, 0.8, 50)
    table = fd.tabulated(closed.table(301))
    for optimizer in ("gd", "momentum", "adam"):
        a = fd.simulate(curvature, closed, steps=300, optimizer=optimizer, every=50)
        b = fd.simulate(curvature, table, steps=300, optimizer=optimizer, every=50)
        np.testing.assert_allclose(b.w, a.w, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(b.lr, a.lr, rtol=1e-15)
