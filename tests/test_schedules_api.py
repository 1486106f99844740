"""The schedule value: relating step and exponential decay, immutability,
pickling, torch tensors in and out, and every bad input of the contract."""

import copy
import math
import pickle
import warnings

import numpy as np
import pytest

import fastdecay as fd
from fastdecay import reference as ref

# ----------------------------------------------------------------------------- relating schedules


def test_half_life_of_step_exponential_inverse_time():
    assert fd.half_life(fd.step(0.1, 0.5, 10)) == 10.0
    assert fd.half_life(fd.step(0.1, 0.25, 10)) == pytest.approx(5.0, rel=1e-15)
    assert fd.half_life(fd.exponential(0.1, rate=0.01)) == pytest.approx(math.log(2) / 0.01, rel=1e-15)
    assert fd.half_life(fd.exponential(0.1, half_life=37.5)) == pytest.approx(37.5, rel=1e-14)
    assert fd.half_life(fd.exponential(0.1, gamma=0.9, decay_steps=4)) == pytest.approx(
        4 * math.log(2) / -math.log(0.9), rel=1e-15
    )
    assert fd.half_life(fd.inverse_time(1.0, 0.5, decay_steps=3)) == 6.0
    assert fd.half_life(fd.exponential(0.1, gamma=1.0)) == math.inf
    assert fd.half_life(fd.exponential(0.1, gamma=1.1)) == math.inf
    # the rate does halve there
    for s in (fd.exponential(0.3, rate=0.0123), fd.inverse_time(2.0, 0.1, decay_steps=2)):
        assert s.table(np.array([0]))[0] / 2 == pytest.approx(
            ref.schedule_lr(s, fd.half_life(s)), rel=1e-12
        )


def test_half_life_broadcasts_over_the_batch():
    s = fd.step(np.array([0.1, 0.2, 0.3]), np.array([[0.5], [0.25]]), 10)
    h = fd.half_life(s)
    assert h.shape == s.batch_shape == (2, 3)
    np.testing.assert_allclose(h, [[10.0] * 3, [5.0] * 3], rtol=1e-15)


def test_match_endpoint_seed_example():
    """Step decay by 0.5 every 10 epochs over 30 epochs ↔ exponential rate ln 2 / 10 ≈ 0.0693."""
    s = fd.step(0.1, 0.5, 10)
    e = fd.match_endpoint(s, 30)
    assert e.kind == "exponential"
    assert -math.log(float(e.params["gamma"])) == pytest.approx(math.log(2) / 10, rel=1e-14)
    assert e(30) == pytest.approx(s(30), rel=1e-14)
    assert e(0) == s(0)


def test_match_endpoint_of_any_schedule_and_batches():
    s = fd.stack([fd.cosine(1.0, 100, min_lr=0.01), fd.multistep(1.0, 0.1, [20, 40]), fd.cosine_restarts(1.0, 30)])
    e = fd.match_endpoint(s, 50)
    assert e.batch_shape == (3,)
    np.testing.assert_allclose(e.table(np.array([50]))[:, 0], s.table(np.array([50]))[:, 0], rtol=1e-13)
    np.testing.assert_array_equal(e.lr0(), s.lr0())


def test_match_half_life_both_ways():
    e = fd.match_half_life(fd.step(0.1, 0.5, 10))
    assert e.kind == "exponential" and e.params["lr"] == 0.1
    assert fd.half_life(e) == pytest.approx(10.0, rel=1e-14)
    # they agree at every multiple of the half-life
    for t in (0, 10, 20, 70):
        assert e(t) == pytest.approx(fd.step(0.1, 0.5, 10)(t), rel=1e-13)
    st = fd.match_half_life(fd.exponential(0.2, rate=math.log(2) / 25))
    assert st.kind == "step"
    assert float(st.params["gamma"]) == 0.5
    assert float(st.params["period"]) == pytest.approx(25.0, rel=1e-14)
    # a step schedule with gamma 0.25 every 10 has a half-life of 5
    assert fd.half_life(fd.match_half_life(fd.step(1.0, 0.25, 10))) == pytest.approx(5.0, rel=1e-14)


def test_match_half_life_refuses_what_it_cannot_match():
    with pytest.raises(ValueError, match="s must be a step or exponential"):
        fd.match_half_life(fd.cosine(1.0, 10))
    with pytest.raises(ValueError, match="never halves"):
        fd.match_half_life(fd.exponential(1.0, gamma=1.0))
    with pytest.raises(ValueError, match="staircase"):
        fd.match_half_life(fd.exponential(1.0, gamma=0.5, decay_steps=10, staircase=True))
    with pytest.raises(TypeError, match="s must be a fastdecay Schedule"):
        fd.match_half_life(0.1)


@pytest.mark.parametrize("gamma, period", [(0.5, 10), (0.1, 30), (0.9, 7), (0.97, 1)])
def test_quantization_gap_is_the_log_ratio_and_in_range(gamma, period):
    s = fd.step(0.1, gamma, period)
    t = np.arange(500)
    gap = fd.quantization_gap(s, t)
    np.testing.assert_allclose(gap, ref.quantization_gap_log(t, 0.1, gamma, period), rtol=1e-9, atol=1e-12)
    rate = -math.log(gamma) / period
    assert np.all(gap >= 0.0)
    assert np.all(gap < rate * period)
    assert np.all(gap[::period] == 0.0)
    assert gap[period - 1] == pytest.approx(rate * (period - 1), rel=1e-14)


@pytest.mark.parametrize("period", [1.1, 1.3, 2.2, 7.7, 2.5])
@pytest.mark.parametrize("gamma", [0.5, 0.9, 1.5])
def test_quantization_gap_of_a_fractional_period_counts_the_drops_as_the_schedule_does(gamma, period):
    """The schedule drops at floor(t / period) of the rounded quotient: at t = 11 a period of
    1.1 has dropped 10 times, where the exact remainder of 11 by the float 1.1 is almost a
    period. The gap is the log ratio of the two schedules' own rates at every step."""
    s = fd.step(0.3, gamma, period)
    t = np.arange(3000)
    rate = -math.log(gamma) / period
    gap = fd.quantization_gap(s, t)
    rates = s(t)
    kept = (rates > 1e-250) & (rates < 1e250)
    direct = np.log(rates[kept]) - (math.log(0.3) - rate * t[kept])
    np.testing.assert_allclose(gap[kept], direct, rtol=0, atol=1e-12 * max(1.0, abs(rate * period)))
    low, high = sorted((0.0, rate * period))
    assert np.all((gap >= low) & (gap <= high))
    if period == 1.1:
        assert fd.quantization_gap(s, 11) == 0.0


def test_quantization_gap_answers_in_the_steps_array_type():
    torch = pytest.importorskip("torch")
    s = fd.step(0.1, 0.5, 10)
    for t in (torch.arange(13), torch.tensor(5)):
        gap = fd.quantization_gap(s, t)
        assert isinstance(gap, torch.Tensor) and gap.dtype == torch.float64 and gap.shape == t.shape
        np.testing.assert_array_equal(gap.numpy(), fd.quantization_gap(s, t.numpy()))
    assert isinstance(fd.quantization_gap(s, 5), float)


def test_quantization_gap_refuses_non_step():
    with pytest.raises(ValueError, match="s must be a step schedule"):
        fd.quantization_gap(fd.exponential(0.1, gamma=0.9), 3)
    with pytest.raises(TypeError, match="s must be a fastdecay Schedule"):
        fd.quantization_gap(0.1, 3)
    with pytest.raises(ValueError, match="t must be a non-negative step"):
        fd.quantization_gap(fd.step(0.1, 0.5, 10), -1)


# ----------------------------------------------------------------------------- the value


def test_schedule_is_immutable():
    lr = np.array([0.1, 0.2])
    s = fd.exponential(lr, gamma=0.9)
    before = s.table(20)
    with pytest.raises(AttributeError, match="immutable"):
        s.kind = "step"
    with pytest.raises(AttributeError, match="immutable"):
        s._segments = None
    with pytest.raises(AttributeError, match="immutable"):
        del s._kind
    with pytest.raises(ValueError):
        s.segments[0, 0, 3] = 5.0
    with pytest.raises(ValueError):
        s.rows()[0, 0, 3] = 5.0
    for table in (s.segments, s.rows()):  # nor can they be made writeable
        with pytest.raises(ValueError, match="WRITEABLE"):
            table.setflags(write=True)
    # params are a copy, and never alias the caller's arrays
    s.params["lr"] = 3.0
    lr[0] = 100.0
    assert float(s.params["lr"][0]) == 0.1
    with pytest.raises(ValueError):
        s.params["lr"][0] = 7.0
    np.testing.assert_array_equal(s.table(20), before)


def test_pickle_and_copy_round_trip():
    for s in (
        fd.step(0.1, 0.5, 10),
        fd.exponential(np.array([0.1, 0.2]), gamma=np.array([0.9, 0.99])),
        fd.warmup(fd.join([fd.cosine(1.0, 30), fd.wsd(0.5, 100, decay="1-sqrt")], [30]), 5),
        fd.stack([fd.cyclic(0.1, 1.0, 5, mode="exp_range", gamma=0.99), fd.one_cycle(1.0, 100)]),
    ):
        for back in (pickle.loads(pickle.dumps(s)), copy.deepcopy(s), copy.copy(s)):
            assert back.kind == s.kind and back.batch_shape == s.batch_shape
            np.testing.assert_array_equal(back.segments, s.segments)
            np.testing.assert_array_equal(back.table(300), s.table(300))
            assert repr(back) == repr(s) and back == s
            assert not back.segments.flags.writeable


def test_schedules_are_values_equal_by_kind_and_table():
    """Two schedules made alike are equal and hash alike (dict keys, sets, a checkpoint's
    schedule against the one saved); a different rate, kind or batch is not equal; a schedule
    never equals a number or an array."""
    s = fd.warmup(fd.cosine(1.0, 30), 5)
    same = fd.warmup(fd.cosine(1.0, 30), 5)
    assert s is not same and s == same and not s != same and hash(s) == hash(same)
    assert len({s, same, pickle.loads(pickle.dumps(s))}) == 1
    batch = fd.step(0.1, 0.5, np.array([10, 20]))
    assert batch[1] == fd.step(0.1, 0.5, 20) and batch[0] != batch[1]
    assert batch == fd.step(0.1, 0.5, [10, 20]) and batch != fd.step(0.1, 0.5, [10, 21])
    assert fd.cosine(1.0, 30) != fd.cosine(1.0, 31) and fd.cosine(1.0, 30) != fd.cosine(0.5, 30)
    assert fd.constant(0.1) != fd.stack([fd.constant(0.1)])  # a batch of one is not a scalar schedule
    assert fd.multistep(0.1, 0.5, [10]) != fd.step(0.1, 0.5, 10)  # another kind
    assert (fd.constant(0.1) == 0.1) is False and (fd.constant(0.1) != np.float64(0.1)) is True


def test_repr_names_the_factory():
    assert repr(fd.step(0.1, 0.5, 10)) == "fd.step(lr=0.1, gamma=0.5, period=10)"
    assert "batch_shape=(3,)" in repr(fd.cosine(np.ones(3), 10))


def test_indexing_a_batch():
    s = fd.exponential(np.array([0.1, 0.2, 0.3]), gamma=0.9)
    np.testing.assert_array_equal(s[1].table(10), s.table(10)[1])
    assert s[1:].batch_shape == (2,)
    assert repr(s[1:]) == "fd.exponential(lr=[0.2, 0.3], gamma=0.9, decay_steps=1, staircase=False, batch_shape=(2,))"
    assert repr(fd.stack([s, s])[0]) == "fd.Schedule(kind='stack', batch_shape=(3,))"  # the table only
    assert ref.schedule_lr(s[1], 3) == pytest.approx(s[1](3), rel=1e-15)   # its own arguments: lr 0.2
    with pytest.raises(ValueError, match="no factory arguments"):
        ref.schedule_lr(fd.stack([s, s])[0], 3)
    with pytest.raises(TypeError, match="scalar schedule"):
        fd.constant(1.0)[0]


def test_torch_tensors_in_and_out():
    torch = pytest.importorskip("torch")
    s = fd.cosine(1.0, 100)
    t = torch.arange(0, 150)
    got = s(t)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64 and got.shape == (150,)
    np.testing.assert_array_equal(got.numpy(), s(np.arange(150)))
    # tensors as parameters, as steps and as out=
    b = fd.exponential(torch.tensor([0.1, 0.2]), gamma=torch.tensor(0.9))
    out = torch.zeros(2, 50, dtype=torch.float32)
    assert b.table(50, out=out) is out
    np.testing.assert_array_equal(out.numpy(), b.table(50, dtype=np.float32))
    np.testing.assert_array_equal(b.table(torch.tensor([3, 1])), b.table(np.array([3, 1])))
    with pytest.raises(ValueError, match="t must be a non-negative step"):
        s(torch.tensor([1, -1]))


def test_scalar_and_array_steps_broadcast_with_the_batch():
    s = fd.step(np.array([0.1, 0.2]), 0.5, 10)
    assert s(5).shape == (2,)
    assert s(np.array([[0], [10], [20]])).shape == (3, 2)
    np.testing.assert_allclose(s(np.array([0, 20])), [0.1, 0.2 * 0.25])
    with pytest.raises(ValueError, match="does not broadcast"):
        s(np.arange(3))


def test_as_schedule():
    s = fd.cosine(1.0, 10)
    assert fd.schedules.as_schedule(s) is s
    c = fd.schedules.as_schedule(0.25)
    assert c.kind == "constant" and c(1000) == 0.25
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        fd.schedules.as_schedule(-1.0, "weight_decay")


@pytest.mark.parametrize("value", [0.0, -0.0, 0.9, 3, 0, 2**60, 5e-324])
def test_as_schedule_keeps_a_number_s_constant_with_its_bits(value):
    """A Python number is made once a name and value and kept (the simulations take a momentum,
    a weight decay and a beta1 a call): the kept constant has the bits of ``fd.constant`` of
    that number (an int as the float it rounds to; -0.0 as +0.0, the same parameter), under
    each name."""
    as_schedule = fd.schedules.as_schedule
    kept = as_schedule(value, "momentum")
    assert as_schedule(value, "momentum") is kept
    want = fd.constant(value).rows()
    for got in (kept, as_schedule(value, "weight_decay")):
        assert got.rows().tobytes() == want.tobytes()
    assert kept(7) == float(value) and not np.signbit(kept(7))
    if value == 0.0:  # 0.0, -0.0 and 0: one constant, +0.0
        assert as_schedule(-0.0 if not np.signbit(float(value)) else 0.0, "momentum") == kept


def test_a_negative_zero_parameter_is_held_as_zero():
    """-0.0 passes every ">= 0" check, so it is the same parameter as 0.0: schedules made with
    either are equal (their tables bit for bit, their hashes) and give +0.0."""
    assert fd.constant(-0.0) == fd.constant(0.0) and hash(fd.constant(-0.0)) == hash(fd.constant(0.0))
    assert not np.signbit(fd.constant(-0.0)(3))
    assert fd.constant(np.array([-0.0, 0.5])) == fd.constant(np.array([0.0, 0.5]))
    assert fd.linear(1.0, -0.0, 10) == fd.linear(1.0, 0.0, 10)
    assert not np.any(np.signbit(fd.linear(1.0, -0.0, 10).table(12)))
    assert fd.step(-0.0, 0.5, 10) == fd.step(0.0, 0.5, 10)


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), -3])
def test_as_schedule_refuses_a_bad_number_at_every_call(value):
    for _ in range(2):  # (a refused value is not kept)
        with pytest.raises(ValueError, match=r"^weight_decay must be"):
            fd.schedules.as_schedule(value, "weight_decay")
    with pytest.raises(ValueError, match=r"^momentum must be"):
        fd.simulate([1.0], 0.1, steps=1, optimizer="momentum", momentum=value)


# ----------------------------------------------------------------------------- bad input

BAD = [
    # (factory call, exception, text the message must contain)
    (lambda: fd.constant(-0.1), ValueError, "lr must be >= 0, got"),
    (lambda: fd.constant(math.nan), ValueError, "lr must be"),
    (lambda: fd.constant(math.inf), ValueError, "lr must be"),
    (lambda: fd.constant(np.array([0.1, -1.0])), ValueError, "first bad element -1.0"),
    (lambda: fd.constant("0.1"), TypeError, "lr must be a number"),
    (lambda: fd.constant(None), TypeError, "lr must be a number"),
    (lambda: fd.constant(True), TypeError, "lr must be a number, got the boolean"),
    # a boolean inside a list (NumPy would read it as 1.0), and a time span (NumPy counts it an integer)
    (lambda: fd.tabulated([True, 0.1]), TypeError, "values must hold numbers, got the boolean True"),
    (lambda: fd.exponential(0.1, gamma=[0.9, [True]]), TypeError, "gamma must hold numbers, got the boolean"),
    (lambda: fd.step([0.1, np.True_], 0.5, 10), TypeError, "lr must hold numbers, got the boolean"),
    (lambda: fd.step(0.1, 0.5, 10)([True, 3]), TypeError, "t must hold numbers, got the boolean True"),
    (lambda: fd.step(0.1, 0.5, 10)(np.timedelta64(5)), TypeError, "t must be an integer step"),
    (lambda: fd.step(0.1, 0.5, 10).table(np.timedelta64(5)), TypeError, "n_or_steps must be an integer, got the time"),
    (lambda: fd.step(np.timedelta64(1, "s"), 0.5, 10), TypeError, "lr must be a number"),
    (lambda: fd.constant(fd.constant(0.1)), TypeError, "lr must be a number or an array of numbers, got a schedule"),
    (lambda: fd.step(0.1, 0.0, 10), ValueError, "gamma must be > 0, got 0.0"),
    (lambda: fd.step(0.1, -0.5, 10), ValueError, "gamma must be > 0"),
    (lambda: fd.step(0.1, 0.5, 0), ValueError, "period must be >= 1, got 0"),
    (lambda: fd.step(0.1, 0.5, math.nan), ValueError, "period must be"),
    (lambda: fd.step(-0.1, 0.5, 10), ValueError, "lr must be >= 0"),
    (lambda: fd.multistep(0.1, 0.5, [-1, 10]), ValueError, "milestones must be non-negative"),
    (lambda: fd.multistep(0.1, 0.5, [1.5]), ValueError, "milestones must hold integer steps"),
    (lambda: fd.multistep(0.1, 0.5, 10), TypeError, "milestones must be a sequence"),
    (lambda: fd.multistep(0.1, 0.0, [10]), ValueError, "gamma must be > 0"),
    (lambda: fd.exponential(0.1), ValueError, "give exactly one of gamma, rate, half_life; got none"),
    (lambda: fd.exponential(0.1, gamma=0.9, rate=0.1), ValueError, "got ['gamma', 'rate']"),
    (lambda: fd.exponential(0.1, gamma=0.9, rate=0.1, half_life=3), ValueError, "give exactly one"),
    (lambda: fd.exponential(0.1, gamma=0.0), ValueError, "gamma must be > 0"),
    (lambda: fd.exponential(0.1, rate=-0.1), ValueError, "rate must be >= 0, got -0.1"),
    (lambda: fd.exponential(0.1, rate=math.inf), ValueError, "rate must be"),
    (lambda: fd.exponential(0.1, half_life=0), ValueError, "half_life must be > 0"),
    (lambda: fd.exponential(0.1, gamma=0.9, decay_steps=0), ValueError, "decay_steps must be >= 1, got 0"),
    (lambda: fd.exponential(0.1, gamma=0.9, staircase="yes"), TypeError, "staircase must be True or False"),
    (lambda: fd.exponential([0.1, 0.2], gamma=[0.9, 0.8, 0.7]), ValueError, "lr (2,), gamma (3,)"),
    (lambda: fd.inverse_time(0.1, -1.0), ValueError, "rate must be >= 0"),
    (lambda: fd.inverse_time(0.1, 1.0, decay_steps=0.5), ValueError, "decay_steps must be >= 1, got 0.5"),
    (lambda: fd.polynomial(0.1, 0), ValueError, "total_steps must be >= 1, got 0"),
    (lambda: fd.polynomial(0.1, 10, power=0.0), ValueError, "power must be > 0"),
    (lambda: fd.polynomial(0.1, 10, end_lr=-1.0), ValueError, "end_lr must be >= 0"),
    (lambda: fd.polynomial(0.1, 10, cycle=1), TypeError, "cycle must be True or False"),
    (lambda: fd.cosine(0.1, 0), ValueError, "total_steps must be >= 1"),
    (lambda: fd.cosine(0.1, 10, min_lr=-0.01), ValueError, "min_lr must be >= 0"),
    (lambda: fd.cosine_restarts(0.1, 0), ValueError, "period must be >= 1"),
    (lambda: fd.cosine_restarts(0.1, 10, period_mult=0.5), ValueError, "period_mult must be >= 1"),
    (lambda: fd.linear(0.0, 1.0, 0), ValueError, "total_steps must be >= 1"),
    (lambda: fd.linear(-1.0, 1.0, 10), ValueError, "start_lr must be >= 0"),
    (lambda: fd.piecewise([10, 5], [1.0, 0.5, 0.1]), ValueError, "boundaries must be strictly increasing"),
    (lambda: fd.piecewise([5, 5], [1.0, 0.5, 0.1]), ValueError, "boundaries must be strictly increasing"),
    (lambda: fd.piecewise([-5, 5], [1.0, 0.5, 0.1]), ValueError, "boundaries must be non-negative"),
    (lambda: fd.piecewise([5, 10], [1.0, 0.5]), ValueError, "values must have len(boundaries) + 1 = 3 entries, got 2"),
    (lambda: fd.piecewise([5], [1.0, -0.5]), ValueError, "values[1] must be >= 0"),
    (lambda: fd.piecewise([5], 1.0), TypeError, "values must be a sequence"),
    (lambda: fd.warmup(0.1, 10), TypeError, "schedule must be a fastdecay Schedule"),
    (lambda: fd.warmup(fd.constant(0.1), -1), ValueError, "steps must be an integer >= 0, got -1"),
    (lambda: fd.warmup(fd.constant(0.1), 2.5), ValueError, "steps must be an integer"),
    (lambda: fd.warmup(fd.constant(0.1), 5, start_lr=-1), ValueError, "start_lr must be >= 0"),
    (lambda: fd.join([fd.constant(0.1), fd.constant(0.2)], []), ValueError, "boundaries must have len(schedules) - 1 = 1"),
    (lambda: fd.join([fd.constant(0.1), fd.constant(0.2)], [5, 10]), ValueError, "boundaries must have len"),
    (lambda: fd.join([fd.constant(0.1)] * 3, [10, 5]), ValueError, "boundaries must be strictly increasing"),
    (lambda: fd.join([fd.constant(0.1)] * 2, [-3]), ValueError, "boundaries must be non-negative"),
    (lambda: fd.join([], []), ValueError, "schedules must hold at least one schedule"),
    (lambda: fd.join([fd.constant(0.1), 0.2], [5]), TypeError, "schedules[1] must be a fastdecay Schedule"),
    (lambda: fd.join([fd.constant(np.ones(2)), fd.constant(np.ones(3))], [5]), ValueError, "schedules[0] (2,)"),
    (lambda: fd.one_cycle(1.0, 0), ValueError, "total_steps must be an integer >= 1"),
    (lambda: fd.one_cycle(1.0, 100, pct_start=1.0), ValueError, "pct_start must be >= 0 and < 1"),
    (lambda: fd.one_cycle(1.0, 100, pct_start=-0.1), ValueError, "pct_start must be >= 0"),
    (lambda: fd.one_cycle(1.0, 10, pct_start=0.1), ValueError, "pct_start * total_steps must not be 1"),
    (lambda: fd.one_cycle(1.0, 100, div_factor=0), ValueError, "div_factor must be > 0"),
    (lambda: fd.one_cycle(1.0, 100, final_div_factor=-1), ValueError, "final_div_factor must be > 0"),
    (lambda: fd.one_cycle(-1.0, 100), ValueError, "max_lr must be >= 0"),
    (lambda: fd.cyclic(0.1, 1.0, 10, mode="sawtooth"), ValueError, "mode must be one of"),
    (lambda: fd.cyclic(0.1, 1.0, 0), ValueError, "step_size_up must be >= 1"),
    (lambda: fd.cyclic(0.1, 1.0, 10, step_size_down=0), ValueError, "step_size_down must be >= 1"),
    (lambda: fd.cyclic(-0.1, 1.0, 10), ValueError, "base_lr must be >= 0"),
    (lambda: fd.cyclic(0.1, 1.0, 10, mode="exp_range", gamma=0), ValueError, "gamma must be > 0"),
    (lambda: fd.inverse_sqrt(0.1, 0), ValueError, "warmup_steps must be >= 1"),
    (lambda: fd.inverse_sqrt(-0.1, 10), ValueError, "lr must be >= 0"),
    (lambda: fd.wsd(0.1, 100, decay="exp"), ValueError, "decay must be one of"),
    (lambda: fd.wsd(0.1, 0), ValueError, "total_steps must be an integer >= 1"),
    (lambda: fd.wsd(0.1, 100, warmup_steps=-1), ValueError, "warmup_steps must be an integer >= 0"),
    (lambda: fd.wsd(0.1, 100, decay_steps=0), ValueError, "decay_steps must be an integer >= 1"),
    (lambda: fd.wsd(0.1, 100, warmup_steps=50, decay_steps=60), ValueError, "must not exceed total_steps"),
    (lambda: fd.stack([]), ValueError, "schedules must hold at least one schedule"),
    (lambda: fd.stack([fd.constant(0.1), "x"]), TypeError, "schedules[1] must be a fastdecay Schedule"),
    (lambda: fd.stack([fd.constant(np.ones(2)), fd.constant(np.ones(3))]), ValueError, "do not broadcast"),
    (lambda: fd.half_life(fd.cosine(1.0, 10)), ValueError, "s must be a step or exponential schedule"),
    (lambda: fd.half_life(0.5), TypeError, "s must be a fastdecay Schedule"),
    (lambda: fd.match_endpoint(fd.step(0.1, 0.5, 10), 0), ValueError, "steps must be integer steps from 1 to 2**53, got 0"),
    (lambda: fd.match_endpoint(fd.linear(0.0, 1.0, 10), 5), ValueError, "s must have positive rates"),
    (lambda: fd.match_endpoint(fd.linear(0.1, 1.0, 10), 5), ValueError, "s must not grow between step 0 and steps"),
    (lambda: fd.match_endpoint(0.1, 5), TypeError, "s must be a fastdecay Schedule"),
]


@pytest.mark.parametrize("call, exc, text", BAD, ids=[b[2][:40] for b in BAD])
def test_bad_input_raises_naming_the_argument(call, exc, text):
    with pytest.raises(exc) as info:
        call()
    assert text in str(info.value)


EVAL_BAD = [
    (lambda s: s(-1), ValueError, "t must be a non-negative step, got -1"),
    (lambda s: s(np.int64(-3)), ValueError, "t must be a non-negative step"),
    (lambda s: s(np.array([0, 5, -2])), ValueError, "t must be a non-negative step, got -2"),
    (lambda s: s([0.0, -1.0]), ValueError, "t must be a non-negative step"),
    (lambda s: s(1.5), ValueError, "t must be an integer step, got 1.5"),
    (lambda s: s(np.array([1.0, math.nan])), ValueError, "t must be an integer step, got nan"),
    (lambda s: s(np.array([[1.0], [-2.5]])), ValueError, "t must be an integer step, got -2.5"),
    (lambda s: s(math.inf), ValueError, "t must be an integer step"),
    (lambda s: s("3"), TypeError, "t must be an integer step or an array of steps"),
    (lambda s: s(None), TypeError, "t must be an integer step"),
    (lambda s: s(True), TypeError, "t must be an integer step"),
    (lambda s: s(np.array([True])), TypeError, "t must be an integer step or an array of steps, got dtype bool"),
    (lambda s: s.table(-1), ValueError, "n_or_steps must be >= 0, got -1"),
    (lambda s: s.table(np.array([3, -1])), ValueError, "n_or_steps must be a non-negative step"),
    (lambda s: s.table(np.zeros((2, 2), dtype=int)), ValueError, "n_or_steps must be a step count or a 1-D array"),
    (lambda s: s.table(2.5), ValueError, "n_or_steps must be an integer step"),
    (lambda s: s.table(5, dtype=np.int32), TypeError, "dtype must be float32 or float64"),
    (lambda s: s.table(5, out=np.zeros(4)), ValueError, "out must have shape (5,), got (4,)"),
    (lambda s: s.table(5, out=np.zeros(5, dtype=np.int64)), TypeError, "out must be float32 or float64"),
    (lambda s: s.table(5, out=np.zeros(10)[::2]), ValueError, "out must be a C-contiguous array, got strides (16,)"),
    (lambda s: s.table(5, out=[0.0] * 5), TypeError, "out must be a NumPy array"),
]


@pytest.mark.parametrize("call, exc, text", EVAL_BAD, ids=[b[2][:40] for b in EVAL_BAD])
def test_bad_evaluation_raises(call, exc, text):
    with pytest.raises(exc) as info:
        call(fd.cosine(1.0, 10))
    assert text in str(info.value)


def test_refused_table_leaves_out_untouched():
    s = fd.exponential(np.array([0.1, 0.2]), gamma=0.9)
    out = np.full((2, 3), 7.0)
    with pytest.raises(ValueError):
        s.table(np.array([1, -1, 2]), out=out)
    with pytest.raises(TypeError):
        s.table(np.array([1, 2, 3]), out=out.astype(np.int64))
    np.testing.assert_array_equal(out, 7.0)
    readonly = np.full((2, 3), 7.0)
    readonly.setflags(write=False)
    with pytest.raises(ValueError, match="writeable"):
        s.table(3, out=readonly)
    np.testing.assert_array_equal(readonly, 7.0)


def test_an_index_selects_schedules_of_the_batch_only():
    """``s[index]`` indexes the batch's axes: an Ellipsis spans the batch, an index that
    would reach the table's segment or column axes is refused (it reordered segments or
    columns into a schedule of wrong rates, whose params disagreed with its table)."""
    s = fd.step([1.0, 2.0], 0.5, 2)
    np.testing.assert_array_equal(s[..., ::-1].table(4), s[::-1].table(4))
    assert s[..., ::-1] == fd.step([2.0, 1.0], 0.5, 2)
    m = fd.multistep([1.0, 2.0], 0.5, [1, 3])
    p = fd.piecewise([3], [np.array([1.0, 0.2]), np.array([0.5, 0.1])])
    for bad in (lambda: m[:, ::-1], lambda: m[0, 0], lambda: p[:, 0], lambda: s[..., 0, 0]):
        with pytest.raises(IndexError, match=r"must select whole schedules of batch_shape \(2,\)"):
            bad()
    grid = fd.step(np.ones((2, 3)), 0.5, np.arange(1.0, 7.0).reshape(2, 3))
    assert grid[..., 1] == fd.step(np.ones(2), 0.5, [2.0, 5.0]) and grid[None].batch_shape == (1, 2, 3)
    assert grid[grid.params["period"] > 2.5].batch_shape == (4,)


def test_one_cycle_and_cyclic_schedules_differ_by_their_momentum_companion():
    """Equality and the hash take a one_cycle's or cyclic's momentum companion in: two such
    schedules of the same rates that cycle different momenta are different keys (they were
    one)."""
    a, b = fd.one_cycle(1.0, 100), fd.one_cycle(1.0, 100, base_momentum=0.5, max_momentum=0.6)
    assert a != b and len({a, b}) == 2 and a == fd.one_cycle(1.0, 100) and hash(a) == hash(fd.one_cycle(1.0, 100))
    c, d = fd.cyclic(0.1, 1.0, 10), fd.cyclic(0.1, 1.0, 10, base_momentum=0.1, max_momentum=0.2)
    assert c != d and len({c, d}) == 2
    assert pickle.loads(pickle.dumps(b)) == b != a


@pytest.mark.parametrize("origin", [float("nan"), float("inf"), -1e300, 2.0**60])
def test_a_table_with_an_origin_beyond_any_step_is_refused(origin):
    table = fd.cosine(1.0, 10).segments.copy()
    table[0, 1] = origin
    with pytest.raises(ValueError, match="origin must be a finite step within 2\\*\\*53"):
        fd.Schedule(table, "cosine")


def test_a_factory_s_schedule_of_extreme_values_pickles_and_copies():
    """A pickle (and ``copy.deepcopy``) holds a schedule as it was made: a factory's table of
    extreme values (an infinite product of huge constants) is not one ``fd.Schedule`` accepts
    from elsewhere, and pickling it failed on the check."""
    with np.errstate(over="ignore"):
        made = [fd.constant(1e200) * fd.constant(1e200), fd.multistep(1.0, 1e300, [1, 2, 3])]
    for s in made:
        with pytest.raises(ValueError, match="segments must be a schedule's table"):
            fd.Schedule(s.segments, s.kind)
        for back in (pickle.loads(pickle.dumps(s)), copy.deepcopy(s)):
            assert back == s and np.array_equal(back.table(5), s.table(5))


@pytest.mark.parametrize("segments", ["abc", fd.cosine(1.0, 10).segments.astype(complex), [[object()] * 9]],
                         ids=["text", "complex", "objects"])
def test_a_table_of_other_than_real_numbers_is_refused_by_name(segments):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (a complex table was cast to its real part with NumPy's warning)
        with pytest.raises(TypeError, match="^segments must be an array of real numbers"):
            fd.Schedule(segments, "cosine")
