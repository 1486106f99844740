"""Schedules against the formulas Keras and optax document, and against
``fastdecay.reference`` (closed forms that never read the segment table), for
every kind and for nested compositions; ``s(t)``, ``s.table(n)`` and
``s.table(steps)`` agree; the re-anchored exponential table stays within 1e-13
of the closed form; evaluation has no state (any order gives the same rates).
"""

import math

import numpy as np
import pytest

import fastdecay as fd
from fastdecay import reference as ref

STEPS = np.arange(0, 600)


# ----------------------------------------------------------------------------- Keras / optax documented formulas
# Each lambda is the formula from the Keras / optax documentation, written out per step in Python.


def keras_exponential(lr, decay_steps, rate, staircase):
    # keras.optimizers.schedules.ExponentialDecay: lr * decay_rate ^ (step / decay_steps)
    return lambda t: lr * rate ** ((t // decay_steps) if staircase else (t / decay_steps))


def keras_inverse_time(lr, decay_steps, rate, staircase):
    # keras.optimizers.schedules.InverseTimeDecay: lr / (1 + decay_rate * step / decay_steps)
    return lambda t: lr / (1 + rate * ((t // decay_steps) if staircase else (t / decay_steps)))


def keras_polynomial(lr, decay_steps, end, power, cycle):
    # keras.optimizers.schedules.PolynomialDecay
    def f(step):
        ds = decay_steps
        if cycle:
            ds = decay_steps * (math.ceil(step / decay_steps) if step > 0 else 1)
        else:
            step = min(step, decay_steps)
        return (lr - end) * (1 - step / ds) ** power + end

    return f


def keras_piecewise(boundaries, values):
    # keras.optimizers.schedules.PiecewiseConstantDecay: values[0] while step <= boundaries[0], ...
    def f(step):
        for b, v in zip(boundaries, values):
            if step <= b:
                return v
        return values[-1]

    return f


def keras_cosine(lr, decay_steps, alpha):
    # keras.optimizers.schedules.CosineDecay (no warmup)
    def f(step):
        step = min(step, decay_steps)
        cosine_decay = 0.5 * (1 + math.cos(math.pi * step / decay_steps))
        return lr * ((1 - alpha) * cosine_decay + alpha)

    return f


def keras_cosine_restarts(lr, first_decay_steps, t_mul, alpha, m_mul=1.0):
    # keras.optimizers.schedules.CosineDecayRestarts, its documented algorithm
    # (keras/src/optimizers/schedules/learning_rate_schedule.py, CosineDecayRestarts.__call__)
    def f(step):
        completed = step / first_decay_steps
        if t_mul == 1.0:
            i = math.floor(completed)
            completed -= i
        else:
            i = math.floor(math.log(1 - completed * (1 - t_mul)) / math.log(t_mul))
            sum_r = (1 - t_mul**i) / (1 - t_mul)
            completed = (completed - sum_r) / t_mul**i
        return lr * ((1 - alpha) * 0.5 * m_mul**i * (1 + math.cos(math.pi * completed)) + alpha)

    return f


def optax_polynomial(init, end, power, transition_steps):
    # optax.polynomial_schedule: count clipped to [0, transition_steps]
    def f(count):
        count = min(max(count, 0), transition_steps)
        frac = 1 - count / transition_steps
        return (init - end) * frac**power + end

    return f


def optax_linear(init, end, transition_steps):
    return optax_polynomial(init, end, 1, transition_steps)


def optax_warmup_cosine(init, peak, warmup_steps, decay_steps, end):
    # optax.warmup_cosine_decay_schedule: linear init -> peak over warmup_steps, then cosine
    # from peak to end over decay_steps - warmup_steps
    def f(t):
        if t < warmup_steps:
            return init + (peak - init) * t / warmup_steps
        c = min(t - warmup_steps, decay_steps - warmup_steps) / (decay_steps - warmup_steps)
        return end + (peak - end) * 0.5 * (1 + math.cos(math.pi * c))

    return f


def optax_piecewise_constant(init, boundaries_and_scales):
    # optax.piecewise_constant_schedule: multiply by scale once count >= boundary
    def f(count):
        v = init
        for b, scale in sorted(boundaries_and_scales.items()):
            if count >= b:
                v *= scale
        return v

    return f


FORMULA_CASES = {
    "keras exponential": (fd.exponential(0.1, gamma=0.96, decay_steps=10), keras_exponential(0.1, 10, 0.96, False)),
    "keras exponential staircase": (
        fd.exponential(0.1, gamma=0.5, decay_steps=7, staircase=True),
        keras_exponential(0.1, 7, 0.5, True),
    ),
    "keras exponential fractional decay_steps": (
        fd.exponential(0.1, gamma=0.8, decay_steps=2.5),
        keras_exponential(0.1, 2.5, 0.8, False),
    ),
    "optax exponential": (fd.exponential(1.0, gamma=0.9, decay_steps=3), lambda c: 1.0 * 0.9 ** (c / 3)),
    "keras inverse time": (fd.inverse_time(0.1, 0.5, decay_steps=1.0), keras_inverse_time(0.1, 1.0, 0.5, False)),
    "keras inverse time staircase": (
        fd.inverse_time(0.1, 0.5, decay_steps=9, staircase=True),
        keras_inverse_time(0.1, 9, 0.5, True),
    ),
    "keras polynomial": (
        fd.polynomial(0.1, 300, power=0.5, end_lr=0.01),
        keras_polynomial(0.1, 300, 0.01, 0.5, False),
    ),
    "keras polynomial cycle": (
        fd.polynomial(0.1, 70, power=2.0, end_lr=0.001, cycle=True),
        keras_polynomial(0.1, 70, 0.001, 2.0, True),
    ),
    "optax polynomial": (fd.polynomial(0.5, 400, power=3.0, end_lr=0.05), optax_polynomial(0.5, 0.05, 3.0, 400)),
    "optax linear": (fd.linear(0.0, 0.7, 250), optax_linear(0.0, 0.7, 250)),
    "keras piecewise (switches after the boundary)": (
        fd.piecewise([101, 301], [1.0, 0.5, 0.1]),
        keras_piecewise([100, 300], [1.0, 0.5, 0.1]),
    ),
    "optax piecewise constant": (
        fd.piecewise([100, 300], [1.0, 0.5, 0.5 * 0.2]),
        optax_piecewise_constant(1.0, {100: 0.5, 300: 0.2}),
    ),
    "keras cosine": (fd.cosine(0.3, 400, min_lr=0.3 * 0.1), keras_cosine(0.3, 400, 0.1)),
    "keras cosine restarts": (
        fd.cosine_restarts(0.3, 20, period_mult=2.0, min_lr=0.3 * 0.05),
        keras_cosine_restarts(0.3, 20, 2.0, 0.05),
    ),
    "keras cosine restarts t_mul 1": (
        fd.cosine_restarts(0.3, 33, min_lr=0.0),
        keras_cosine_restarts(0.3, 33, 1.0, 0.0),
    ),
    "optax warmup cosine": (
        fd.warmup(fd.cosine(1.0, 500 - 50, min_lr=1e-3), 50, start_lr=0.01),
        optax_warmup_cosine(0.01, 1.0, 50, 500, 1e-3),
    ),
    "optax join_schedules": (
        fd.join([fd.linear(0.0, 1.0, 30), fd.exponential(1.0, gamma=0.99)], [30]),
        lambda t: optax_linear(0.0, 1.0, 30)(t) if t < 30 else 0.99 ** (t - 30),
    ),
}


@pytest.mark.parametrize("name", FORMULA_CASES)
def test_documented_keras_optax_formula(name):
    s, formula = FORMULA_CASES[name]
    expected = np.array([formula(int(t)) for t in STEPS], dtype=np.float64)
    np.testing.assert_allclose(s(STEPS), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(s.table(len(STEPS)), expected, rtol=1e-12, atol=1e-15)


# ----------------------------------------------------------------------------- reference vs kernels, every kind


def every_kind():
    """One or more schedules of every factory, including nested compositions."""
    cases = {
        "constant": fd.constant(0.3),
        "step": fd.step(0.1, 0.5, 7),
        "step fractional period": fd.step(0.1, 0.7, 2.5),
        "multistep": fd.multistep(1.0, 0.1, [3, 5, 5, 100]),
        "exponential gamma": fd.exponential(0.1, gamma=0.97),
        "exponential rate staircase": fd.exponential(0.1, rate=0.01, decay_steps=3.5, staircase=True),
        "exponential half_life": fd.exponential(0.1, half_life=13),
        "exponential growth": fd.exponential(1e-3, gamma=1.01),
        "inverse_time": fd.inverse_time(1.0, 0.3, decay_steps=7),
        "inverse_time staircase": fd.inverse_time(1.0, 0.3, decay_steps=7, staircase=True),
        "polynomial": fd.polynomial(1.0, 100, power=2.0, end_lr=0.01),
        "polynomial cycle": fd.polynomial(1.0, 37, power=0.5, end_lr=0.01, cycle=True),
        "cosine": fd.cosine(1.0, 123, min_lr=0.1),
        "cosine_restarts mult 2": fd.cosine_restarts(1.0, 10, period_mult=2, min_lr=0.01),
        "cosine_restarts mult 1": fd.cosine_restarts(1.0, 7),
        "cosine_restarts mult 3": fd.cosine_restarts(1.0, 3, period_mult=3),
        "cosine_restarts mult 1.5": fd.cosine_restarts(1.0, 4, period_mult=1.5),
        "linear up": fd.linear(0.0, 1.0, 50),
        "linear down": fd.linear(1.0, 0.2, 50),
        "piecewise": fd.piecewise([0, 10, 20], [1, 2, 3, 4]),
        "piecewise 2": fd.piecewise([10, 20], [1, 2, 3]),
        "one_cycle": fd.one_cycle(1.0, 400),
        "one_cycle odd": fd.one_cycle(2.0, 333, pct_start=0.25, div_factor=10, final_div_factor=100),
        "cyclic": fd.cyclic(0.1, 1.0, 10),
        "cyclic triangular2": fd.cyclic(0.1, 1.0, 10, step_size_down=5, mode="triangular2"),
        "cyclic exp_range": fd.cyclic(0.1, 1.0, 10, mode="exp_range", gamma=0.99),
        "inverse_sqrt": fd.inverse_sqrt(1.0, 40),
        "inverse_sqrt start": fd.inverse_sqrt(1.0, 40, start_lr=0.1),
        "inverse_sqrt fractional warmup": fd.inverse_sqrt(1.0, 12.5),
        "wsd linear": fd.wsd(1.0, 300, warmup_steps=20),
        "wsd cosine": fd.wsd(1.0, 300, warmup_steps=20, decay="cosine", end_lr=0.1),
        "wsd 1-sqrt": fd.wsd(1.0, 300, decay="1-sqrt", decay_steps=100),
        "wsd no stable phase": fd.wsd(1.0, 100, warmup_steps=40, decay_steps=60, decay="cosine", start_lr=0.2),
        "warmup cosine": fd.warmup(fd.cosine(1.0, 100), 20, start_lr=0.1),
        "warmup step": fd.warmup(fd.step(1.0, 0.5, 30), 15),
        "join three": fd.join(
            [fd.constant(1.0), fd.exponential(0.5, gamma=0.99), fd.step(0.3, 0.5, 10)], [50, 100]
        ),
        "join at 0": fd.join([fd.constant(1.0), fd.cosine(0.5, 50)], [0]),
        "nested warmup/join": fd.warmup(
            fd.join([fd.warmup(fd.cosine(1.0, 30), 5), fd.one_cycle(0.5, 50)], [35]), 10
        ),
        "join of joins": fd.join(
            [fd.join([fd.linear(0.0, 1.0, 10), fd.cosine_restarts(1.0, 8, period_mult=2)], [10]),
             fd.join([fd.constant(0.01), fd.wsd(0.2, 100, warmup_steps=10, decay="1-sqrt")], [5])],
            [120],
        ),
        "join with a later boundary than the first part's length": fd.join(
            [fd.multistep(1.0, 0.5, [5, 10, 400]), fd.inverse_sqrt(0.4, 10)], [200]
        ),
        "stack": fd.stack([fd.cosine(1.0, 10), fd.step(1.0, 0.5, 3), fd.wsd(1.0, 50, warmup_steps=5)]),
        "batched exponential": fd.exponential(np.array([[0.1], [0.2]]), gamma=np.linspace(0.9, 0.999, 5)),
        "batched one_cycle": fd.one_cycle(np.array([1.0, 0.5]), np.array([100, 257])),
        "batched warmup": fd.warmup(fd.cosine(np.array([1.0, 2.0, 3.0]), 100), 10, start_lr=np.array([0.0, 0.1, 0.2])),
        "stack of batches": fd.stack([fd.cosine(np.array([1.0, 2.0]), 50), fd.inverse_sqrt(1.0, np.array([5.0, 9.0]))]),
    }
    return cases


CASES = every_kind()


@pytest.mark.parametrize("name", CASES)
def test_reference_equals_kernels(name):
    s = CASES[name]
    n = len(STEPS)
    expected = ref.schedule_lr(s, STEPS.reshape((n,) + (1,) * len(s.batch_shape)))
    expected = np.moveaxis(expected, 0, -1)  # batch_shape + (n,)
    np.testing.assert_allclose(s.table(n), expected, rtol=1e-12, atol=1e-15)
    t = STEPS.reshape((n,) + (1,) * len(s.batch_shape))
    np.testing.assert_allclose(np.moveaxis(s(t), 0, -1), expected, rtol=1e-12, atol=1e-15)


def test_every_factory_is_covered():
    kinds = {s.kind for s in CASES.values()}
    assert kinds >= {
        "constant", "step", "multistep", "exponential", "inverse_time", "polynomial", "cosine", "cosine_restarts",
        "linear", "piecewise", "warmup", "join", "one_cycle", "cyclic", "inverse_sqrt", "wsd", "stack",
    }


@pytest.mark.parametrize("name", CASES)
def test_call_table_and_steps_agree(name):
    """s(t), s.table(steps) (closed forms, point by point) and s.table(n) (exponentials
    by re-anchored products) agree to 1e-13; out= writes the same numbers; float32 is
    the float64 result rounded once."""
    s = CASES[name]
    n = 257
    table = s.table(n)
    assert table.shape == s.batch_shape + (n,)
    assert table.dtype == np.float64
    rng = np.random.default_rng(0)
    steps = rng.permutation(n)[:100]
    at_steps = s.table(steps)
    np.testing.assert_allclose(at_steps, table[..., steps], rtol=1e-13, atol=0)
    np.testing.assert_array_equal(s.table(np.sort(steps)), np.sort(steps) * 0 + at_steps[..., np.argsort(steps)])
    for t in (0, 1, 100, n - 1):
        np.testing.assert_array_equal(s(t), s.table(np.array([t]))[..., 0])
        np.testing.assert_allclose(s(t), table[..., t], rtol=1e-13, atol=0)
    out = np.full(s.batch_shape + (n,), np.nan)
    assert s.table(n, out=out) is out
    np.testing.assert_array_equal(out, table)
    t32 = s.table(n, dtype=np.float32)
    assert t32.dtype == np.float32
    np.testing.assert_array_equal(t32, table.astype(np.float32))
    out32 = np.zeros(s.batch_shape + (n,), np.float32)
    s.table(n, out=out32)
    np.testing.assert_array_equal(out32, t32)
    np.testing.assert_array_equal(s.table(steps, dtype=np.float32), at_steps.astype(np.float32))
    np.testing.assert_array_equal(s.lr0(), table[..., 0])


@pytest.mark.parametrize("name", [name for name, s in CASES.items() if s.batch_shape == ()])
def test_scalar_call_is_the_array_call_bit_for_bit(name):
    """One schedule at one int step takes its own path (the kernels' lr_at called directly,
    no arrays): the same bits as the array call at every step here, boundaries and the
    largest steps included, for int and NumPy integer steps."""
    s = CASES[name]
    steps = np.concatenate([STEPS, [10**6, 2**40 + 3, 2**53 - 1, 2**53]])
    expected = s(steps)
    got = np.array([s(int(t)) for t in steps])
    np.testing.assert_array_equal(got, expected)
    assert all(type(s(np.int64(t))) is float and s(np.int64(t)) == s(int(t)) for t in steps[::50])


def test_table_of_zero_steps_and_empty_steps():
    s = fd.exponential(np.array([0.1, 0.2]), gamma=0.9)
    assert s.table(0).shape == (2, 0)
    assert s.table(np.array([], dtype=np.int64)).shape == (2, 0)
    assert s(np.zeros((0, 2), dtype=np.int64)).shape == (0, 2)


def test_scalar_call_returns_python_float():
    s = fd.cosine(1.0, 10)
    assert type(s(3)) is float
    assert type(s(np.int64(3))) is float
    assert isinstance(s([3]), np.ndarray) and s([3]).shape == (1,)


# ----------------------------------------------------------------------------- precision and statelessness


@pytest.mark.parametrize("decay_steps", [1, 3, 2.5])
def test_reanchored_exponential_within_1e13_over_100k_steps(decay_steps):
    """The table kernel runs exponentials as a product re-anchored every 64 steps; the
    result stays within 1e-13 relative of the closed form lr · gamma^(t/decay_steps)
    over 100,000 steps, rates down to ~1e-297 (kept in the normal float range).

    The closed form is evaluated in extended precision (x87 long double): in float64
    the rounding of t/decay_steps alone moves gamma^(t/decay_steps) by up to
    |ln rate| · 2^-53 ≈ 8e-14 relative when the rate has decayed to 1e-297.
    """
    if np.finfo(np.longdouble).eps > 1e-18:
        pytest.skip("needs an extended-precision long double (x86)")
    n = 100_000
    gammas = np.array([0.9999, 0.99999, 0.995, 0.9995, 1.0001, 0.9932]) ** decay_steps
    lrs = np.array([0.1, 1.0, 3e-4, 7.0, 0.01, 1e-2])
    s = fd.exponential(lrs, gamma=gammas, decay_steps=decay_steps)
    table = s.table(n)
    t = np.arange(n, dtype=np.longdouble)
    closed = lrs[:, None].astype(np.longdouble) * gammas[:, None].astype(np.longdouble) ** (t / decay_steps)
    assert np.all(closed > 1e-300)
    rel = float(np.max(np.abs(table.astype(np.longdouble) / closed - 1)))
    assert rel < 1e-13, rel
    # the float64 closed form, computed the obvious way, agrees within its own rounding
    closed64 = lrs[:, None] * gammas[:, None] ** (np.arange(n) / decay_steps)
    np.testing.assert_allclose(table, closed64, rtol=(1e-13 if decay_steps == 1 else 2e-13), atol=0)
    np.testing.assert_allclose(s(np.arange(n - 1000, n)[:, None]).T, closed64[:, -1000:], rtol=2e-13)


def test_no_drift_far_out():
    """Step 10^7 by the table kernel (starting from 0) equals the closed form there."""
    s = fd.exponential(1.0, gamma=1 - 1e-6)
    big = s.table(np.array([10_000_000]))[0]
    assert big == pytest.approx((1 - 1e-6) ** 10_000_000, rel=1e-14)
    assert s(10_000_000) == big


@pytest.mark.parametrize("name", ["nested warmup/join", "join of joins", "cosine_restarts mult 2", "stack"])
def test_evaluation_order_does_not_matter(name):
    s = CASES[name]
    n = 400
    table = s.table(n)
    rng = np.random.default_rng(1)
    order = rng.permutation(n)
    t = order.reshape((n,) + (1,) * len(s.batch_shape))
    shuffled = np.moveaxis(s(t), 0, -1)
    np.testing.assert_array_equal(shuffled, table[..., order])
    # repeated and interleaved evaluation changes nothing
    for _ in range(3):
        np.testing.assert_array_equal(s.table(n), table)
        np.testing.assert_array_equal(s(np.full((5,) + s.batch_shape, 123, dtype=np.int64))[0], table[..., 123])


# ----------------------------------------------------------------------------- drops (momentum on_drop)


def drops(s, n):
    from fastdecay._cpu import schedule as kernels

    table = s.rows()
    ratios = np.array([kernels.drop_ratio(table, 0, float(t)) for t in range(n)])
    return {int(t): ratios[t] for t in np.flatnonzero(ratios != 1.0)}


def test_drop_ratio_at_discontinuous_falls():
    assert drops(fd.step(1.0, 0.5, 10), 35) == {10: 0.5, 20: 0.5, 30: 0.5}
    assert drops(fd.multistep(1.0, 0.1, [3, 5, 5]), 10) == pytest.approx({3: 0.1, 5: 0.1 * 0.1})
    assert drops(fd.piecewise([2, 4, 6], [1.0, 0.5, 2.0, 0.1]), 10) == {2: 0.5, 6: 0.05}
    assert drops(fd.exponential(1.0, gamma=0.5, decay_steps=2.5, staircase=True), 10) == {3: 0.5, 5: 0.5, 8: 0.5}
    assert drops(fd.inverse_time(1.0, 1.0, decay_steps=4, staircase=True), 9) == {4: 0.5, 8: 2 / 3}
    assert drops(fd.join([fd.constant(1.0), fd.step(0.5, 0.5, 10)], [5]), 30) == {5: 0.5, 15: 0.5, 25: 0.5}
    assert drops(fd.join([fd.step(1.0, 0.5, 10), fd.constant(0.5)], [10]), 30) == {10: 0.5}
    got = drops(fd.join([fd.exponential(1.0, gamma=0.9), fd.exponential(0.1, gamma=0.9)], [10]), 30)
    assert got == pytest.approx({10: 0.1 / 0.9**9})


@pytest.mark.parametrize("s", [
    fd.one_cycle(1.0, 100), fd.one_cycle(1.0, 333, pct_start=0.25), fd.one_cycle(1.0, 1000, pct_start=0.123),
    fd.warmup(fd.cosine(1.0, 50), 10, start_lr=2.0), fd.warmup(fd.exponential(1.0, gamma=0.9), 10),
    fd.join([fd.linear(1.0, 0.5, 10), fd.linear(0.5, 0.0, 100)], [10]),
    fd.join([fd.cosine(1.0, 10), fd.constant(0.5)], [5]),
    fd.wsd(1.0, 100, warmup_steps=10), fd.wsd(1.0, 100, decay="cosine"), fd.wsd(1.0, 100, decay="1-sqrt"),
    fd.inverse_sqrt(1.0, 10.5), fd.cosine_restarts(1.0, 10, period_mult=2), fd.cyclic(0.1, 1.0, 10),
    fd.polynomial(1.0, 10, cycle=True), fd.exponential(1.0, gamma=0.5), fd.cosine(1.0, 30),
], ids=repr)
def test_no_drop_where_the_rate_is_continuous(s):
    assert drops(s, 1100) == {}


def test_drops_on_a_segment_boundary():
    """A staircase factor that falls where another factor's segment ends (a warmup's end),
    and a level followed by a piece that starts lower, fall discontinuously: the buffer
    policies act there (they were taken for pieces that meet)."""
    stair = fd.exponential(1.0, gamma=0.5, decay_steps=4, staircase=True)
    assert drops(stair * fd.warmup(fd.constant(0.1), 4), 14) == pytest.approx({4: 0.05 / 0.075, 8: 0.5, 12: 0.5})
    assert drops(fd.join([fd.constant(0.02), fd.warmup(fd.constant(0.3), 3)], [5]), 12) == {5: 0.0}
    assert drops(fd.join([fd.constant(0.5), fd.linear(0.3, 0.0, 10)], [5]), 20) == {5: 0.3 / 0.5}
    scaled = fd.join([fd.multistep(0.02, 0.8, [50]), fd.warmup(fd.step(0.2, 0.8, 11), 3)], [36]) * 0.5
    assert drops(scaled, 60) == pytest.approx({36: 0.0, 50: 0.8})   # the same through a product
    # pieces that meet on the step stay free of drops
    assert drops(fd.join([fd.linear(1.0, 0.5, 5), fd.linear(0.5, 0.0, 10)], [5]), 20) == {}
    assert drops(fd.join([fd.linear(1.0, 0.5, 5), fd.step(0.5, 0.5, 3)], [5]), 12) == {8: 0.5, 11: 0.5}  # the step's own


def test_on_drop_acts_at_a_staircase_fall_on_a_warmups_end():
    s = fd.exponential(1.0, gamma=0.5, decay_steps=4, staircase=True) * fd.warmup(fd.constant(0.1), 4)
    w, buf = np.ones(1), np.zeros(1)
    seen = []
    for t in range(10):
        fd.sgd_step(w, np.ones(1), step=t, lr=s, momentum=0.5, momentum_buffer=buf, on_drop="reset")
        seen.append(float(buf[0]))
    assert seen == [1.0, 1.5, 1.75, 1.875, 1.0, 1.5, 1.75, 1.875, 1.0, 1.5]   # reset at 4 and 8


def test_warmup_into_step_keeps_the_step_drops():
    assert drops(fd.warmup(fd.step(1.0, 0.9, 5), 10), 30) == pytest.approx({15: 0.9, 20: 0.9, 25: 0.9})


@pytest.mark.parametrize("s", [
    fd.cosine(1.0, 10_000), fd.cosine(0.3, 777, min_lr=1e-3), fd.one_cycle(1.0, 10_000),
    fd.warmup(fd.cosine(2.0, 5_000), 300), fd.wsd(1.0, 10_000, decay="cosine", decay_steps=3_000),
    fd.cosine(np.array([1.0, 0.5]), np.array([100_000, 4_321]), min_lr=1e-6),
], ids=repr)
def test_long_cosine_tables_within_1e13_of_the_closed_form(s):
    """Long cosine segments are filled by rotation re-anchored every 64 steps: within
    1e-13 relative of the closed form s(t) everywhere, and exactly min_lr from T on."""
    n = 110_000
    table = s.table(n)
    closed = np.moveaxis(s(np.arange(n).reshape((n,) + (1,) * len(s.batch_shape))), 0, -1)
    np.testing.assert_allclose(table, closed, rtol=1e-13, atol=0)
    np.testing.assert_array_equal(table[..., -1], closed[..., -1])
    np.testing.assert_array_equal(s.table(n, dtype=np.float32), table.astype(np.float32))


@pytest.mark.parametrize("s", [
    fd.cosine_restarts(1.0, 500, period_mult=2, min_lr=0.01), fd.cosine_restarts(0.5, 7),
    fd.cosine_restarts(1.0, 300, period_mult=1.5), fd.cosine_restarts(1.0, 1000),
    fd.join([fd.constant(0.1), fd.cosine_restarts(1.0, 250, period_mult=3)], [77]),
], ids=repr)
def test_cosine_restarts_tables_within_1e13_of_the_closed_form(s):
    """Restarts are filled cycle by cycle (the cycle decided exactly as the closed form
    decides it, long cycles rotated): within 1e-13 of s(t), restarts on the same steps."""
    n = 60_000
    table, closed = s.table(n), s(np.arange(n))
    np.testing.assert_allclose(table, closed, rtol=1e-13, atol=0)
    restarts = np.flatnonzero(np.diff(closed) > 0) + 1
    np.testing.assert_array_equal(np.flatnonzero(np.diff(table) > 0) + 1, restarts)


@pytest.mark.parametrize("s", [
    fd.linear(0.1, 1.0, 1_000), fd.polynomial(1.0, 5_000, end_lr=0.01), fd.warmup(fd.constant(1.0), 2_000),
    fd.inverse_time(1.0, 0.01), fd.cyclic(0.1, 1.0, 250),
    fd.cyclic(0.1, 1.0, 37, step_size_down=99), fd.cyclic(0.1, 1.0, 10, step_size_down=7, mode="triangular2"),
    fd.cyclic(0.1, 1.0, 2.5, step_size_down=1.25, mode="triangular2"), fd.wsd(1.0, 10_000, warmup_steps=500, decay="1-sqrt"),
    fd.wsd(1.0, 10_000, warmup_steps=500), fd.step(1.0, 0.5, 100), fd.multistep(1.0, 0.5, [10, 3_000]),
], ids=repr)
def test_vectorised_table_paths_equal_the_closed_form_exactly(s):
    """Lines, inverse time, triangles, plateaus: the table kernel does the closed form's
    own float operations, so the numbers are identical."""
    n = 12_000
    np.testing.assert_array_equal(s.table(n), s(np.arange(n)))


def test_inverse_sqrt_table_within_an_ulp_of_the_closed_form():
    """The table takes sqrt(y) where the closed form takes y ** 0.5 (libm pow, not always
    correctly rounded), then divides: at most two ulps apart."""
    s = fd.inverse_sqrt(1.0, 100)
    n = 12_000
    table, closed = s.table(n), s(np.arange(n))
    assert np.all(np.abs(table - closed) <= 2 * np.spacing(closed))
