"""Schedules at the edges of their domain: the largest steps, sub-batches, arrays on the
left of ``*``, values a caller still holds, levels that broadcast."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

import fastdecay as fd

BIG = 2**53  # the largest step: every integer up to it is exact in the kernels' float64


@pytest.mark.parametrize("schedule, want", [
    (fd.step(0.1, 0.5, 1), 0.0),                                   # 0.5**(2**53) underflows to 0
    (fd.exponential(0.1, gamma=0.5, staircase=True), 0.0),
    (fd.polynomial(0.1, 1, cycle=True), 0.0),                      # at the end of its cycle
    (fd.tabulated([0.3, 0.2, 0.1]), 0.1),                          # held at the last value
    (fd.cosine_restarts(0.1, 1), 0.1),                             # every step starts a cycle
    (fd.cosine_restarts(0.1, 2), 0.1),                             # 2**53 is even: a cycle's start
    (fd.multistep(0.1, 0.5, [10, 20]), 0.025),
    (fd.inverse_time(1.0, 1.0), 1.0 / (1.0 + 2.0**53)),
])
def test_the_largest_step_gives_the_closed_form(schedule, want):
    """Near 2**63 the kernels' floor(t / period) overflowed int64 (inf, negative rates, a
    rate twice lr, a SystemError); steps now stop at 2**53, where the closed form holds."""
    assert schedule(BIG) == want
    assert schedule(np.array([BIG])).tolist() == [want]
    assert schedule.table(np.array([0, BIG], dtype=np.uint64))[-1] == want


def test_steps_beyond_the_largest_are_refused_in_every_form():
    s = fd.step(0.1, 0.5, 10)
    # (integer arrays compared as integers: BIG + 1 is BIG in float64)
    for t in (BIG + 1, np.uint64(2**63), np.array([1e20]), torch.tensor([2**62]), np.array([BIG + 1]),
              np.array([BIG + 1], dtype=np.uint64), torch.tensor([BIG + 1])):
        with pytest.raises(ValueError, match=r"t must (be an integer step|hold integer steps) from 0 to 2\*\*53"):
            s(t)


def test_match_endpoint_names_its_steps():
    with pytest.raises(ValueError, match=r"steps must be an integer step from 0 to 2\*\*53, got 1152921504606846976"):
        fd.match_endpoint(fd.step(0.1, 0.5, 10), 2**60)
    with pytest.raises(ValueError, match=r"do not broadcast: s\.batch_shape \(3,\), steps \(2,\)"):
        fd.match_endpoint(fd.step(0.1, np.array([0.5, 0.6, 0.7]), 10), np.array([10, 20]))


def test_quantization_gap_is_exact_at_large_steps_and_never_negative():
    s = fd.step(0.1, 0.5, 2.5)
    t = np.array([9007199253740997, 2**53 - 1, 2**53 - 3, 123456789012345])
    got = fd.quantization_gap(s, t)
    rate = -np.log(0.5) / 2.5
    # against the schedule's own count of drops, floor(t / 2.5) of the rounded quotient (at the
    # first step it has run ahead of the exact quotient: on its plateau's first step, gap 0)
    counts = [math.floor(float(x) / 2.5) for x in t]
    exact = [Fraction(int(x)) - Fraction(5, 2) * k for x, k in zip(t, counts)]
    want = [rate * float(e) if e >= 0 else 0.0 for e in exact]
    assert exact[0] < 0 and all(e >= 0 for e in exact[1:])
    np.testing.assert_allclose(got, want, rtol=1e-15)
    assert np.all(got >= 0) and np.all(got < rate * 2.5)
    flat = fd.quantization_gap(fd.step(0.1, 1.0, 3), np.arange(7))
    assert np.all(flat == 0.0) and not np.any(np.signbit(flat))   # gamma = 1: no gap, and not -0


def test_half_life_of_an_exponential_held_at_end_lr():
    assert fd.half_life(fd.exponential(0.1, gamma=0.5, end_lr=0.08)) == np.inf   # 0.1, 0.08, 0.08, ...
    assert fd.half_life(fd.exponential(0.1, gamma=0.5, end_lr=0.05)) == 1.0       # reaches 0.05 first
    batch = fd.half_life(fd.exponential(0.1, gamma=[0.5, 0.5], end_lr=[0.08, 0.01]))
    assert batch.tolist() == [np.inf, 1.0]
    with pytest.raises(ValueError, match="never halves"):
        fd.match_half_life(fd.exponential(0.1, gamma=0.5, end_lr=0.08))
    with pytest.raises(ValueError, match="stops at end_lr, which no step schedule does"):
        fd.match_half_life(fd.exponential(0.1, gamma=0.5, end_lr=0.01))
    with pytest.raises(ValueError, match=r"halves in under one step \(half-life 0.5\)"):
        fd.match_half_life(fd.exponential(0.1, half_life=0.5))


def test_an_array_times_a_schedule_is_the_product_schedule():
    s = fd.cosine(0.1, 100)
    scale = np.array([1.0, 0.5])
    left, right = scale * s, s * scale
    assert isinstance(left, fd.Schedule) and left.batch_shape == (2,)
    np.testing.assert_array_equal(left.table(50), right.table(50))
    np.testing.assert_array_equal(left.table(50)[1], 0.5 * s.table(50))


def test_a_sub_batch_keeps_its_own_arguments():
    b = fd.step(0.1, np.array([0.5, 0.25]), np.array([[10], [20]]))
    for i, j in [(0, 0), (1, 1), (1, 0)]:
        one = b[i, j]
        assert repr(one) == repr(fd.step(0.1, [0.5, 0.25][j], [10, 20][i]))
        assert fd.half_life(one) == fd.half_life(b)[i, j]
        assert fd.quantization_gap(one, 7) == fd.quantization_gap(b, 7)[i, j]
        np.testing.assert_array_equal(fd.match_half_life(one).table(40), fd.match_half_life(b).table(40)[i, j])
        np.testing.assert_array_equal(fd.constant_shrinkage(one, 0.01).table(40),
                                      fd.constant_shrinkage(b, 0.01).table(40)[i, j])
    assert fd.half_life(b[1]).tolist() == fd.half_life(b)[1].tolist()
    cycles = fd.one_cycle(np.array([0.1, 0.2]), 100)
    np.testing.assert_array_equal(cycles[1].momentum.table(100), fd.one_cycle(0.2, 100).momentum.table(100))
    tri = fd.cyclic(0.01, np.array([0.1, 0.2]), 10)
    np.testing.assert_array_equal(tri[0].momentum.table(30), fd.cyclic(0.01, 0.1, 10).momentum.table(30))
    # kinds whose arguments are not one number a schedule keep the table only, as before
    stacked = fd.stack([fd.constant(0.1), fd.cosine(0.1, 10)])
    assert stacked[1].table(10).tolist() == fd.cosine(0.1, 10).table(10).tolist()
    assert stacked[1].params == {}


def test_piecewise_levels_of_different_shapes_broadcast():
    s = fd.piecewise([2], [np.array([1.0, 0.5]), 0.1])
    assert s.batch_shape == (2,)
    assert s.table(4).tolist() == [[1.0, 1.0, 0.1, 0.1], [0.5, 0.5, 0.1, 0.1]]
    assert fd.piecewise([2], [[1.0, 0.5], 0.1]).table(4).tolist() == s.table(4).tolist()
    assert fd.piecewise([2], [np.ones((2, 1)), np.array([0.1, 0.2, 0.3])]).batch_shape == (2, 3)


def test_a_schedule_never_shares_what_its_caller_can_still_change():
    segments = fd.step(0.1, 0.5, 10).segments.copy()
    s = fd.Schedule(segments, "step")
    assert segments.flags.writeable and s.segments is not segments   # the caller's array is left alone
    segments[...] = 99.0
    assert s(0) == 0.1
    milestones = [10, 20]
    p = fd.Schedule(fd.multistep(0.1, 0.5, milestones).segments, "multistep", {"milestones": milestones})
    milestones.append(30)
    p.params["milestones"].append(40)
    assert p.params["milestones"] == [10, 20]
    pw = fd.piecewise([2], [0.3, 0.1])
    pw.params["values"].append(0.25)
    assert len(pw.params["values"]) == 2 and "0.25" not in repr(pw)


def test_a_table_at_a_tensor_of_steps_is_a_tensor():
    s = fd.cosine(0.1, 100)
    got = s.table(torch.tensor([0, 10, 25]))
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    assert got.tolist() == s.table(np.array([0, 10, 25])).tolist()
    assert s.table(torch.tensor([3]), dtype=np.float32).dtype == torch.float32


def test_repr_of_piecewise_levels_of_several_shapes():
    s = fd.piecewise([10, 20], [0.3, np.array([0.2, 0.1]), 0.05])
    assert repr(s) == "fd.piecewise(boundaries=[10., 20.], values=[0.3, [0.2, 0.1], 0.05], batch_shape=(2,))"
    with pytest.raises(ValueError, match=r"lr must be a number or a scalar schedule .* got batch_shape \(2,\)"):
        fd.sgd_step(np.ones(3), np.ones(3), step=0, lr=s)


def test_reference_of_a_stack_of_one_broadcasts_against_the_steps():
    import fastdecay.reference as ref

    s = fd.stack([fd.step(1.0, 0.5, 2)])
    t = np.arange(6)
    assert ref.schedule_lr(s, t).tolist() == s(t).tolist() == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_from_function_schedules_of_lambdas_pickle_by_their_rates():
    """A lambda does not pickle; the schedule's rates are all in its table, so the schedule
    (alone, or inside another) pickles without it, and a picklable function goes along."""
    import pickle

    s = fd.from_function(lambda t: 0.1 / (1 + t), 50)
    for x in (s, fd.warmup(s, 5), s * fd.cosine(1.0, 60)):
        y = pickle.loads(pickle.dumps(x))
        assert y.kind == x.kind
        np.testing.assert_array_equal(y.table(70), x.table(70))
    assert pickle.loads(pickle.dumps(fd.from_function(np.sqrt, 4))).params["function"] is np.sqrt


def test_cyclic_exp_range_growing_past_overflow_gives_base_lr_at_its_feet_not_nan():
    """gamma > 1 overflows gamma^t to inf; a cycle's foot (the triangle's 0) is base_lr there,
    not 0 * inf = NaN, for the rate and its momentum companion, at single steps and in tables."""
    s = fd.cyclic(0.01, 0.1, 2, mode="exp_range", gamma=10.0)
    feet = np.arange(0, 401, 4)
    np.testing.assert_array_equal(s(feet), 0.01)
    np.testing.assert_array_equal(s.table(401)[feet], 0.01)
    assert not np.isnan(s.table(401)).any() and s(398) == np.inf
    np.testing.assert_array_equal(s.momentum(feet), 0.9)
    from fastdecay import reference

    np.testing.assert_array_equal(s(np.arange(401)), reference.cyclic_lr(np.arange(401), 0.01, 0.1, 2, mode="exp_range",
                                                                           gamma=10.0))


@pytest.mark.parametrize("make, alone", [
    (lambda: fd.cyclic(0.1, 1.0, [3, 5], max_momentum=[[0.9], [0.95]]),
     lambda i, j: fd.cyclic(0.1, 1.0, [3, 5][j], max_momentum=[0.9, 0.95][i])),
    (lambda: fd.one_cycle(1.0, 100, base_momentum=[[0.8, 0.7]]),
     lambda i, j: fd.one_cycle(1.0, 100, base_momentum=[0.8, 0.7][j])),
], ids=["cyclic", "one_cycle"])
def test_momenta_given_as_arrays_shape_the_batch_of_rate_and_momentum_alike(make, alone):
    """A momentum array is a parameter like the others: the rate schedule's batch holds it,
    and its members (``s[i, j]``) are the schedules made alone, momentum included."""
    s = make()
    assert s.batch_shape == s.momentum.batch_shape and len(s.batch_shape) == 2
    for i, j in np.ndindex(s.batch_shape):
        one = alone(i, j)
        np.testing.assert_array_equal(s[i, j].table(40), one.table(40))
        np.testing.assert_array_equal(s[i, j].momentum.table(40), one.momentum.table(40))
        np.testing.assert_array_equal(s.momentum.table(40)[i, j], one.momentum.table(40))


def test_parameters_that_cannot_make_a_schedule_are_refused_by_name():
    with pytest.raises(ValueError, match=r"rate must leave gamma = e\*\*-rate above 0 .*got 10000\.0"):
        fd.exponential(0.1, rate=1e4)  # (gamma=0 itself is refused)
    with pytest.raises(ValueError, match=r"half_life must leave gamma = 2\*\*\(-1/half_life\) above 0 .*got 1e-310"):
        fd.exponential(0.1, half_life=1e-310)
    assert 0 < fd.exponential(0.1, rate=700).params["gamma"] < 1e-300
    with pytest.raises(ValueError, match=r"do not broadcast: start_lr \(3,\), schedule\.batch_shape \(2,\)"):
        fd.warmup(fd.constant([1.0, 2.0]), 2, start_lr=[0.0, 0.5, 0.1])
    for count in (2.0, np.float64(2), torch.tensor(3)):
        with pytest.raises(TypeError, match=r"n_or_steps must be a step count \(an int\) or a 1-D array of steps"):
            fd.cosine(1.0, 10).table(count)


def test_products_take_empty_batches_and_torch_numbers():
    """``*`` and ``fd.product`` on a batch of 0 schedules give a batch of 0 (as the factories do);
    a torch number or tensor scales as a NumPy one does."""
    empty = fd.step(0.1, np.array([]), 10)
    s = fd.step(0.1, 0.5, 10)
    for made in (empty * s, 2 * empty, np.array([]) * s):
        assert made.batch_shape == (0,) and made.table(3).shape == (0, 3)
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal((s * torch.tensor(2.0)).table(30), (s * 2.0).table(30))
    np.testing.assert_array_equal((torch.tensor([1.0, 2.0]) * s).table(30), (np.array([1.0, 2.0]) * s).table(30))
    np.testing.assert_array_equal(fd.product(s, torch.tensor(0.5)).table(30), fd.product(s, 0.5).table(30))


def test_the_oracle_broadcasts_a_batch_of_tables_with_an_axis_of_1():
    from fastdecay import reference

    s = fd.tabulated(np.array([[[1.0, 0.5, 0.25]], [[2.0, 1.0, 0.5]]]))   # batch_shape (2, 1)
    t = np.arange(4).reshape(4, 1, 1) * np.ones((1, 1, 3), dtype=int)
    np.testing.assert_array_equal(reference.schedule_lr(s, t), s(t))


def test_match_endpoint_refuses_an_integer_step_past_2_53_before_rounding_it():
    with pytest.raises(ValueError, match=r"steps must be an integer step from 0 to 2\*\*53, got 9007199254740993"):
        fd.match_endpoint(fd.constant(0.1), 2**53 + 1)


def test_from_function_names_the_step_whose_rates_change_shape():
    with pytest.raises(ValueError, match=r"got shape \(2,\) at step 0 and \(3,\) at step 4"):
        fd.from_function(lambda t: [0.1, 0.2] if t < 4 else [0.1, 0.2, 0.3], 6)


def test_cos_pi_is_within_one_unit_in_the_last_place_of_cos_pi_x():
    """The cosines' ``cos_pi`` (a polynomial that vectorizes, where libm's ``cos`` is a call an
    element) against cos(pi x) to 50 digits: within one ulp of the result on [0, 1] and near
    its quarter points (densely where its cosine's polynomial meets its sine's), on negative
    and large x (its reduction is exact, so x = 1e6 + 1/3 is as accurate as 1/3), where
    cos(math.pi * x) is off by up to 1e-10."""
    from fastdecay._cpu.schedule import cos_pi

    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    rng = np.random.default_rng(5)
    near = np.concatenate([q + rng.uniform(-1e-3, 1e-3, 300) for q in (0.0, 0.25, 0.5, 0.75, 1.0)])
    xs = np.concatenate([rng.uniform(0.0, 1.0, 3_000), near, rng.uniform(0.2, 0.3, 3_000), -rng.uniform(0.0, 4.0, 300),
                         rng.uniform(-1e6, 1e6, 300), [1e-300, 5e-324, 0.125, 1 / 3, 0.24607581639377252]])
    worst = 0.0
    for x in xs:
        exact = mpmath.cos(mpmath.pi * mpmath.mpf(float(x)))
        got = cos_pi(float(x))
        worst = max(worst, float(abs(mpmath.mpf(got) - exact)) / math.ulp(float(exact)))
    assert worst < 0.75, worst  # (0.72 the largest in a scan of 13e6 points; 1.05 before the sum of two doubles)


def test_cos_pi_reduces_exactly():
    """cos(pi x) where it is exact, and its symmetries bit for bit: periodic in 2, even,
    cos(pi (1 - x)) = -cos(pi x); 1 for every x >= 2**53 (all even integers); NaN for a
    non-finite x."""
    from fastdecay._cpu.schedule import cos_pi

    for x, want in [(0.0, 1.0), (0.5, 0.0), (1.0, -1.0), (1.5, 0.0), (2.0, 1.0), (3.0, -1.0), (-1.0, -1.0),
                    (2.0**53, 1.0), (2.0**53 + 2.0, 1.0), (1e300, 1.0), (0.25, math.sqrt(0.5))]:
        assert cos_pi(x) == want, x
    x = np.arange(2**12) / 2**11  # [0, 2), every step exact
    c = np.array([cos_pi(v) for v in x])
    assert np.array_equal(c, [cos_pi(v + 2.0) for v in x])
    assert np.array_equal(c, [cos_pi(v - 6.0) for v in x])
    assert np.array_equal(c, [cos_pi(-v) for v in x])
    half = x[x <= 1.0]
    assert np.array_equal([-cos_pi(1.0 - v) for v in half], c[: half.size])
    assert all(math.isnan(cos_pi(v)) for v in (math.inf, -math.inf, math.nan))


ZERO_RATES_THAT_GROW = {
    "exponential": fd.exponential(0.0, gamma=2.0),                     # 2**t overflows from t = 1024
    "step": fd.step(0.0, 4.0, 1),
    "staircase": fd.exponential(0.0, gamma=1e10, decay_steps=3, staircase=True),
    "cosine_restarts": fd.cosine_restarts(0.0, 1, cycle_decay=2.5),    # a cycle a step
    "cosine_restarts_min_lr": fd.cosine_restarts(0.0, 1, min_lr=0.0, cycle_decay=2.5, decay_amplitude=True),
    "exponential_gamma_1e300": fd.exponential(0.0, gamma=1e300),       # its ratio a step overflows too
    # with a cap (end_lr): never reached by a rate of 0 (it was reached where 0 * 2**1024 overflowed
    # in the factory's search of the crossing, which put end_lr from step 1024 on)
    "exponential_end_lr": fd.exponential(0.0, gamma=2.0, end_lr=0.5),
    "staircase_end_lr": fd.exponential(0.0, gamma=1e10, decay_steps=3, staircase=True, end_lr=1.0),
}


@pytest.mark.parametrize("name", sorted(ZERO_RATES_THAT_GROW))
def test_a_rate_of_0_stays_0_where_its_growing_power_overflows(name):
    """lr 0 with a gamma (or cycle decay) above 1 was 0 * inf = NaN from the step where the
    power overflowed, on every path (the weights then NaN); torch's ExponentialLR keeps 0."""
    from fastdecay import reference

    s = ZERO_RATES_THAT_GROW[name]
    t = np.arange(1500)
    for rates in (s(t), s.table(1500), s.table(1500, dtype=np.float32), s(float(BIG)),
                  reference.schedule_lr(s, t)):
        assert np.all(np.asarray(rates) == 0.0), name
    # beside a rate that does grow: its own overflow is +inf, the zero row's 0
    both = fd.stack([s, fd.exponential(1e-3, gamma=2.0)]).table(1100)
    assert np.all(both[0] == 0.0) and both[1, -1] == np.inf
    # a run at rate 0 leaves its weights where they start, shared, per trajectory, noisy
    for schedule in (s, fd.stack([s, s])):
        res = fd.simulate(np.array([[1.0], [2.0]]), schedule, steps=1200, w0=0.5, every=100)
        assert np.all(res.w == 0.5) and np.all(res.lr == 0.0)
    noisy = fd.simulate(np.array([[1.0]]), s, steps=1200, w0=0.5, noise=0.1, seed=3)
    assert np.all(noisy.w == 0.5)
    w = np.ones(5)
    fd.sgd_step(w, np.ones(5), step=1300, lr=s, momentum=0.9, momentum_buffer=np.ones(5))
    assert np.all(w == 1.0)


def test_a_rate_of_0_with_a_growing_gamma_is_torch_s():
    w = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    opt = torch.optim.SGD([w], lr=0.0)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=2.0)
    for _ in range(1100):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == fd.exponential(0.0, gamma=2.0)(1100) == 0.0


@pytest.mark.parametrize("period, mult", [(1.1, 1.0), (1.3, 1.0), (2.7, 1.0), (1.1, 1.5), (3.3, 1.1), (1.05, 1.05)])
def test_cosine_restarts_with_a_period_that_is_not_whole_restart_where_the_docstring_says(period, mult):
    """Cycle k starts at period * k (found as floor(t / period) in float64, Keras's form) or at
    period * (mult**k - 1) / (mult - 1): the kernels, the tables and the oracle agree (the oracle
    summed the cycle lengths, which for period 1.1 put ~100 of 3,000 steps a cycle off)."""
    from fastdecay import reference

    s = fd.cosine_restarts(1.0, period, period_mult=mult, min_lr=0.01)
    t = np.arange(3000)
    want = reference.cosine_restarts_lr(t, 1.0, period, mult, min_lr=0.01)
    np.testing.assert_allclose(s(t), want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(s.table(3000), want, rtol=1e-12, atol=1e-15)
    if period == 1.1 and mult == 1.0:
        assert s(11) == s(22) == 1.0 and s(10) < 0.99


def test_the_relations_refuse_a_table_without_its_parameters_by_name():
    """A table given to fd.Schedule keeps no lr / gamma / period: a KeyError before."""
    for s in (fd.Schedule(fd.step(0.1, 0.5, 10).segments, "step"),
              fd.Schedule(fd.exponential(0.1, gamma=0.9).segments, "exponential"),
              fd.Schedule(fd.inverse_time(0.1, 0.5).segments, "inverse_time")):
        calls = [lambda: fd.half_life(s)]
        if s.kind != "inverse_time":
            calls.append(lambda: fd.match_half_life(s))
        if s.kind == "step":
            calls += [lambda: fd.quantization_gap(s, 5), lambda: fd.discretization_divergence(s, 1.0, 5)]
        for call in calls:
            with pytest.raises(ValueError, match=f"s must be made by fd.{s.kind} .*keeps no"):
                call()


def test_match_endpoint_reaches_a_rate_whose_ratio_to_lr_overflows():
    e = fd.match_endpoint(fd.step(1e300, 1e-310, 1), 1)  # lr / s(1) = 1e310: ln of each instead
    assert math.isclose(e(1), 1e-10, rel_tol=1e-12)
    with pytest.raises(ValueError, match=r"s must fall by less than a factor of e\*\*745 a step .* s\(1\) = 1e-300"):
        fd.match_endpoint(fd.piecewise([1], [1e300, 1e-300]), 1)


@pytest.mark.parametrize("steps", [2**53 + 1, np.array(2**53 + 1), np.array([5, 2**53 + 1]), torch.tensor(2**53 + 1), 0,
                                   np.array([3, 0])])
def test_match_endpoint_refuses_steps_out_of_range_in_any_array_type(steps):
    """An integer array or tensor past 2**53 was rounded to 2**53 and accepted."""
    with pytest.raises(ValueError, match="steps must .*integer steps? from [01] to 2\\*\\*53"):
        fd.match_endpoint(fd.constant(np.ones(2)), steps)


def test_match_endpoint_names_the_batch_entry_it_cannot_match():
    with pytest.raises(ValueError, match=r"positive rates .* s\(0\) = 0.0 and s\(5\) = 0.0 \(batch entry \(1,\)\)"):
        fd.match_endpoint(fd.constant(np.array([1.0, 0.0])), 5)
    with pytest.raises(ValueError, match=r"not grow .* s\(0\) = 1.0 and s\(5\) = 7.59375 \(batch entry \(1,\)\)"):
        fd.match_endpoint(fd.exponential(1.0, gamma=np.array([0.5, 1.5])), 5)
    with pytest.raises(ValueError, match=r"staircase=False.*got fd.exponential"):
        fd.match_half_life(fd.exponential(1.0, gamma=0.9, staircase=True))


@pytest.mark.filterwarnings("error")
def test_the_diagnostics_warn_of_nothing_at_the_float_range_s_ends():
    """barrier / c and rate x curvature that overflow are answers (no escape, above the ceiling),
    not RuntimeWarnings."""
    assert fd.escape_probability(fd.constant(1.0), 1e300, 1e-300, 2).cumulative.tolist() == [0.0, 0.0]
    assert fd.stability_onset(fd.constant(1e308), 1e308, max_steps=10) == -1


def test_a_warmup_of_0_steps_takes_any_start_lr_in_any_shape():
    """No warmup has no ramp to start at start_lr: an exponential one refused start_lr 0."""
    assert fd.warmup(fd.constant(1.0), 0, shape="exponential") == fd.constant(1.0)
    with pytest.raises(ValueError, match="shape must be one of"):
        fd.warmup(fd.constant(1.0), 0, shape="bogus")
    s = fd.wsd(1.0, 100, warmup_steps=[0, 4], start_lr=[0.0, 0.1], warmup_shape="exponential")
    np.testing.assert_allclose(s.table(5), [[1.0] * 5, [0.1, 0.1 * 10**0.25, 0.1 * 10**0.5, 0.1 * 10**0.75, 1.0]],
                               rtol=1e-14)
    with pytest.raises(ValueError, match="an exponential warmup needs start_lr > 0"):
        fd.wsd(1.0, 100, warmup_steps=[0, 4], warmup_shape="exponential")  # the second ramp starts at 0


def test_factory_inputs_whose_rates_would_be_nan_are_refused_by_name():
    with pytest.raises(ValueError, match=r"num_cycles must keep 2 · num_cycles · total_steps finite, got num_cycles "
                                         r"1e\+308 with total_steps 10"):
        fd.cosine(1.0, 10, num_cycles=1e308)
    assert np.isfinite(fd.cosine(1.0, 10, num_cycles=1e300)(np.arange(12))).all()
    with pytest.raises(ValueError, match=r"timescale must be at least 2\*\*-1022 \(its reciprocal finite\)"):
        fd.inverse_sqrt(1.0, 4, timescale=1e-320)
    with pytest.raises(ValueError, match=r"closed must be 'left' or 'right', got array\(\['left'\]"):
        fd.piecewise([10], [1.0, 0.5], closed=np.array(["left"]))


def test_a_table_s_dtype_is_out_s_and_a_dtype_given_too_must_agree():
    """dtype= beside out= of another dtype was dropped without a word."""
    s = fd.exponential(1.0, gamma=0.9)
    with pytest.raises(ValueError, match="dtype must be out's dtype float64 .*got float32"):
        s.table(3, out=np.empty(3), dtype=np.float32)
    out = np.full(3, np.nan, np.float32)
    with pytest.raises(ValueError, match="dtype must be out's dtype float32 .*got float64"):
        s.table(3, out=out, dtype="float64")
    assert np.isnan(out).all()  # refused before the write
    assert s.table(3, out=out) is out and s.table(3, out=out, dtype=np.float32) is out
    np.testing.assert_array_equal(out, s.table(3, dtype=np.float32))
    assert s.table(3, out=torch.empty(3), dtype=torch.float32).dtype == torch.float32
    b = fd.exponential([1.0, 2.0], gamma=0.5)
    with pytest.raises(ValueError, match=r"out must be a C-contiguous array, got strides \(8, 16\)"):
        b.table(3, out=np.empty((3, 2)).T)
    frozen = np.empty((2, 3))
    frozen.setflags(write=False)
    with pytest.raises(ValueError, match="out must be a writeable array, got a read-only one"):
        b.table(3, out=frozen)


def test_a_segment_the_kernels_never_read_is_refused():
    """A segment after a padding segment (start inf) or after a side row was accepted and skipped."""
    t = np.zeros((3, 9))
    t[0, 3] = 1.0
    t[1, 0] = np.inf
    t[2, 0], t[2, 3] = 5.0, 0.5
    with pytest.raises(ValueError, match=r"a segment after a padding segment .* is never read, got a start of 5.0 "
                                         r"\(segment 2\)"):
        fd.Schedule(t, "custom")
    data = fd.tabulated([1.0, 2.0, 3.0]).segments
    with pytest.raises(ValueError, match="is never read, got a start of 5.0"):
        fd.Schedule(np.concatenate([data, [[5, 5, 0, 0.5, 0, 0, 0, 0, 0]]]), "custom")
    t[2, 0] = np.inf  # padding after padding: the kernels' own form
    assert fd.Schedule(t, "custom").table(8).tolist() == [1.0] * 8


def test_a_cycled_schedule_s_params_must_give_its_momentum():
    """one_cycle / cyclic params that are not the factory's arguments made ==, hash and .momentum
    raise a TypeError naming a private function; now refused at construction, naming params."""
    s = fd.one_cycle(1.0, 10)
    with pytest.raises(ValueError, match=r"params of a one_cycle schedule must be fd.one_cycle's arguments, which give its momentum, got \{'note': 'x'\}$"):
        fd.Schedule(s.segments, "one_cycle", {"note": "x"})
    with pytest.raises(ValueError, match=r"params of a cyclic schedule must be fd.cyclic's arguments"):
        fd.Schedule(fd.cyclic(0.1, 1.0, 3).segments, "cyclic", {"base_lr": 0.1})
    again = fd.Schedule(s.segments, "one_cycle", s.params)
    assert again == s and hash(again) == hash(s) and again.momentum == s.momentum
    bare = fd.Schedule(s.segments, "one_cycle")  # no params: no companion, equal by its table
    assert bare != s and bare == fd.Schedule(s.segments, "one_cycle")


def test_an_exponential_floor_reached_past_2_53_steps_is_found_without_hanging():
    """``end_lr`` reached only after more than 2**53 steps (gamma a few ulps from 1): the bisection
    for the first step at the floor ends where no whole step lies between two neighbouring floats
    (it looped forever there), in a subprocess so that a regression fails instead of hanging."""
    import math
    import subprocess
    import sys

    code = ("import fastdecay as fd\n"
            "for g, e in ((1 - 2.0**-52, 1e-300), (1 + 2.0**-52, 1e300)):\n"
            "    print(repr(float(fd.exponential(1.0, gamma=g, end_lr=e).segments[1, 0])))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    down, up = map(float, run.stdout.split())
    for crossing, g, e in ((down, 1 - 2.0**-52, 1e-300), (up, 1 + 2.0**-52, 1e300)):
        assert crossing > 2.0**53
        assert math.isclose(crossing, math.log(e) / math.log(g), rel_tol=1e-3)


def test_a_table_made_in_order_is_normalised_as_the_sort_would(monkeypatch):
    """``_normalise`` skips the sort, the gather and the renumbering where every row's starts are
    already in a stable sort's order: the same table as the sort's path, for tables in order and
    out of it (two starts swapped; a side row before a segment), with unused (inf) columns,
    side rows (NaN) and pointers into them, and no rows."""
    from fastdecay import _layout as L
    from fastdecay import schedules as S

    rng = np.random.default_rng(7)

    def table(rows, disorder):
        t = rng.uniform(0.0, 1.0, (rows, 5, L.WIDTH))
        starts = np.sort(rng.integers(0, 6, (rows, 3)).astype(float), axis=-1)
        if disorder == "swapped":
            starts[rows // 2, :2] = 5.0, 1.0
        t[..., :3, L.START] = starts
        t[..., 2, L.START] = np.inf  # a column no row runs ...
        t[:1, 1, L.START] = np.inf  # ... and one only the other rows run
        t[..., 3:, L.START] = np.nan  # two side rows, the second segment's factors
        if disorder == "side row first":
            t[rows // 3, 0, L.START] = np.nan
        t[..., :3, L.KIND] = L.CONSTANT
        t[..., 1, L.KIND] = L.PRODUCT
        t[..., 1, L.P0], t[..., 1, L.P0 + 1] = 3.0, 2.0
        t[..., 3:, L.KIND] = L.CONSTANT
        return t

    for rows, disorder in ((40, None), (40, "swapped"), (40, "side row first"), (1, None), (0, None)):
        t = table(rows, disorder)
        got = S._normalise(t.copy())
        with monkeypatch.context() as m:
            m.setattr(S, "_in_order", lambda starts: False)
            want = S._normalise(t.copy())
        assert S._in_order(t[..., L.START]) == (disorder is None)
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)
        if disorder is None:  # (the unused column dropped, and with one row the column it leaves)
            assert got.shape == ((rows, 4, L.WIDTH) if rows > 1 else (rows, 3 * rows, L.WIDTH))
        if disorder is None and rows > 1:
            assert (got[..., 1, L.P0] == 2.0).all()  # the pointer moved with the dropped column


def test_a_batch_s_product_is_each_row_s_product():
    """``product`` multiplies the rows of one structure together, as arrays: every row of a batch's
    product is the product of that row's factors made alone (padded as a stack pads), for a batch
    of seven shapes (tables, products, warmups, joins) scaled by an array whose members are 1 in
    some rows (no constant factor row there) and not in others, in either order of the factors."""
    from fastdecay import _layout as L

    rng = np.random.default_rng(3)
    shapes = [fd.step(1.0, 0.5, 3), fd.warmup(fd.cosine(1.0, 9), 2), fd.tabulated([1.0, 0.5, 0.25]), fd.constant(0.3),
              fd.exponential(0.2, gamma=0.9), fd.warmup(fd.step(0.3, 0.7, 10), 5) * fd.linear(1.0, 0.5, 40),
              fd.join([fd.constant(0.02), fd.warmup(fd.constant(0.3), 3)], [50]) * fd.step(1.0, 0.3, 100)]
    which = rng.integers(0, len(shapes), 300)
    c = rng.choice([1.0, 0.5, 1.0 + 2.0**-52, 3.0], 300)
    for scale_first in (False, True):
        batch = c * fd.stack(shapes)[which] if scale_first else fd.stack(shapes)[which] * c
        n = batch.segments.shape[-2]
        for i in range(len(which)):
            alone = (c[i] * shapes[which[i]] if scale_first else shapes[which[i]] * c[i]).segments
            padding = np.zeros((n - len(alone), L.WIDTH))
            padding[:, L.START] = np.inf
            np.testing.assert_array_equal(batch.segments[i], np.concatenate([alone, padding]), err_msg=f"row {i}")
    assert len({len((shapes[w] * x).segments) for w, x in zip(which, c)}) > len(shapes)  # (c = 1 changes a shape)


def test_rows_classed_by_a_hash_are_classed_by_their_bits_even_where_hashes_collide():
    """``_classes_of_rows`` (a product's rows by structure) gives rows of the same bits one class
    and rows of other bits others, with its hash and with one under which every row collides
    (weights 0: the fallback to the rows themselves); -0.0 and 0.0, and NaNs, by their bits."""
    from fastdecay import schedules as S

    rng = np.random.default_rng(5)
    distinct = rng.uniform(0.0, 1.0, (6, 4))
    distinct[1] = distinct[0]
    distinct[1, 2] = -0.0 if distinct[0, 2] == 0.0 else np.nan  # (differs from row 0 by its bits)
    distinct[3] = distinct[2]
    distinct[3, 0] = 0.0
    distinct[2, 0] = -0.0
    which = rng.integers(0, 6, 500)
    rows = distinct[which]
    for weights in (None, np.zeros(4, dtype=np.uint64)):
        class_of = S._classes_of_rows(rows, weights)
        same_bits = (rows.view(np.uint64)[:, None] == rows.view(np.uint64)[None]).all(axis=-1)
        np.testing.assert_array_equal(class_of[:, None] == class_of[None], same_bits)
        assert sorted(set(class_of.tolist())) == list(range(len(set(which.tolist()))))
    assert S._classes_of_rows(np.zeros((0, 4))).shape == (0,)
