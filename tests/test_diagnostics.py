"""The seed's diagnostics against straightforward loops and the simulations."""

import math

import numpy as np
import pytest

import fastdecay as fd
from fastdecay import diagnostics
from fastdecay.reference import simulate_quadratic


def test_stability_onset_seed_example():
    """λ = 5 contracts at t* = 3 under 0.7^t but only at the first drop, t* = 10, under step decay
    0.1 every 10 (both from lr 1: η_t λ < 2 needs η_t < 0.4)."""
    assert fd.stability_onset(fd.exponential(lr=1.0, gamma=0.7), 5.0, max_steps=100) == 3
    assert fd.stability_onset(fd.step(lr=1.0, gamma=0.1, period=10), 5.0, max_steps=100) == 10


def _onset_loop(rates, lam, contracting=False):
    for t, r in enumerate(rates):
        if r * lam < 2 and (r * lam > 0 or not contracting):  # contracting: |1 - r lam| < 1
            return t
    return -1


def test_stability_onset_vectorised_against_loop(monkeypatch):
    monkeypatch.setattr(diagnostics, "_BLOCK_ELEMENTS", 64)  # many blocks of steps
    s = fd.stack([fd.exponential(lr=1.0, gamma=0.9), fd.step(lr=2.0, gamma=0.5, period=7),
                  fd.cosine(1.5, 40), fd.constant(0.3)])
    lam = np.array([0.5, 2.5, 5.0, 40.0, -1.0, 0.0])
    rates = s.table(60)
    for contracting in (False, True):
        got = fd.stability_onset(s[:, None], lam, max_steps=60, contracting=contracting)
        assert got.shape == (4, 6) and got.dtype == np.int64
        want = [[_onset_loop(rates[i], l, contracting) for l in lam] for i in range(4)]
        assert got.tolist() == want
        assert got[3, 3] == -1  # 0.3 x 40 stays above 2
        # curvature <= 0: below the ceiling 2/eta_t from step 0, but it never contracts
        assert np.all(got[:, 4:] == (-1 if contracting else 0))


def test_stability_onset_of_flat_and_negative_curvature_and_zero_rates():
    """The first step with eta_t * lambda < 2: a curvature <= 0 or a rate of 0 is there at
    once; with contracting=True the first step with 0 < eta_t * lambda < 2 (|1 - eta_t lambda| < 1)."""
    assert fd.stability_onset(fd.step(0.1, 0.5, 10), [-1.0, 0.0, 5.0], max_steps=10).tolist() == [0, 0, 0]
    assert fd.stability_onset(fd.step(0.1, 0.5, 10), [-1.0, 0.0, 5.0], max_steps=10,
                              contracting=True).tolist() == [-1, -1, 0]
    warm = fd.warmup(fd.constant(0.1), 5)  # step 0 at rate 0: below every ceiling, and contracts nothing
    assert fd.stability_onset(warm, 1.0, max_steps=10) == 0
    assert fd.stability_onset(warm, 1.0, max_steps=10, contracting=True) == 1
    to_zero = fd.piecewise([10], [1.0, 0.0])  # 1 x 5 until step 10, then 0
    assert fd.stability_onset(to_zero, 5.0, max_steps=20) == 10
    assert fd.stability_onset(to_zero, 5.0, max_steps=20, contracting=True) == -1
    with pytest.raises(TypeError, match="contracting must be True or False, got 1"):
        fd.stability_onset(warm, 1.0, max_steps=10, contracting=1)


def test_stability_onset_zero_steps_and_bad_input():
    assert fd.stability_onset(fd.constant(1.0), 1.0, max_steps=0) == -1
    with pytest.raises(TypeError, match="schedule"):
        fd.stability_onset(0.1, 1.0, max_steps=5)
    with pytest.raises(ValueError, match="max_steps"):
        fd.stability_onset(fd.constant(1.0), 1.0, max_steps=-1)
    with pytest.raises(ValueError, match="max_steps"):
        fd.stability_onset(fd.constant(1.0), 1.0, max_steps=2.5)
    with pytest.raises(TypeError, match="max_steps"):
        fd.stability_onset(fd.constant(1.0), 1.0, max_steps="5")
    with pytest.raises(ValueError, match="curvature"):
        fd.stability_onset(fd.constant(1.0), [1.0, np.nan], max_steps=5)
    with pytest.raises(ValueError, match="batch_shape"):
        fd.stability_onset(fd.constant([1.0, 2.0]), [1.0, 2.0, 3.0], max_steps=5)


def test_escape_probability_against_loop(monkeypatch):
    monkeypatch.setattr(diagnostics, "_BLOCK_ELEMENTS", 10)
    s = fd.stack([fd.exponential(lr=0.5, gamma=0.95), fd.step(lr=0.5, gamma=0.5, period=5)])
    barrier = np.array([0.01, 0.1, 1.0])
    r = fd.escape_probability(s[:, None], barrier, c=2.0, steps=30)
    assert r.per_step.shape == r.cumulative.shape == (2, 3, 30)
    rates = s.table(30)
    for i in range(2):
        for j, b in enumerate(barrier):
            p = [math.exp(-b / (2.0 * rates[i, t])) for t in range(30)]
            survive, cum = 1.0, []
            for q in p:
                survive *= 1 - q
                cum.append(1 - survive)
            np.testing.assert_allclose(r.per_step[i, j], p, rtol=1e-14)
            np.testing.assert_allclose(r.cumulative[i, j], cum, rtol=1e-12)
    assert np.all(np.diff(r.cumulative, axis=-1) >= 0)
    # a decaying rate freezes the iterate: the per-step chance falls
    assert np.all(np.diff(r.per_step[0], axis=-1) < 0)


def test_escape_probability_edges_and_bad_input():
    r = fd.escape_probability(fd.linear(1.0, 0.0, 2), barrier=[0.0, 1.0], c=1.0, steps=3)
    assert r.per_step[0].tolist() == [1.0, 1.0, 1.0]       # no barrier: always escapes
    assert r.per_step[1, 2] == 0.0                          # zero rate: never escapes
    assert r.cumulative[0].tolist() == [1.0, 1.0, 1.0]
    # a positive barrier over a huge c underflows to a ratio of 0: a zero rate still never escapes
    warm = fd.warmup(fd.constant(1.0), 2)  # rates 0, 0.5, 1
    assert fd.escape_probability(warm, [1e-200, 0.0], 1e200, 3).per_step.tolist() == [[0.0, 1.0, 1.0],
                                                                                       [1.0, 1.0, 1.0]]
    with pytest.raises(ValueError, match="barrier"):
        fd.escape_probability(fd.constant(1.0), barrier=-1.0, c=1.0, steps=3)
    with pytest.raises(ValueError, match="c must"):
        fd.escape_probability(fd.constant(1.0), barrier=1.0, c=0.0, steps=3)
    with pytest.raises(ValueError, match="steps"):
        fd.escape_probability(fd.constant(1.0), barrier=1.0, c=1.0, steps=-2)


def test_adam_effective_step_is_uncorrected_adams_step_under_a_constant_gradient():
    s = fd.stack([fd.constant(0.1), fd.exponential(lr=0.1, gamma=0.99)])
    betas = (0.9, 0.99)
    got = fd.adam_effective_step(s, 50, betas=betas)
    assert got.shape == (2, 50)
    rates = s.table(50)
    m = v = 0.0
    for t in range(50):
        m = betas[0] * m + (1 - betas[0]) * 1.0     # constant gradient 1
        v = betas[1] * v + (1 - betas[1]) * 1.0
        np.testing.assert_allclose(got[:, t], rates[:, t] * m / math.sqrt(v), rtol=1e-12)
    # late on the factor tends to 1: the external schedule alone
    late = fd.adam_effective_step(fd.constant(1.0), 20000, betas=betas)[-1]
    assert abs(late - 1.0) < 1e-12


def test_adam_effective_step_bad_betas():
    for betas, needle in [((0.9, 1.0), r"betas\[1\]"), ((1.2, 0.9), r"betas\[0\]"), (0.9, "betas")]:
        with pytest.raises((ValueError, TypeError), match=needle):
            fd.adam_effective_step(fd.constant(1.0), 5, betas=betas)


def test_discretization_divergence_against_simulations():
    gammas = np.array([0.5, 0.1])[:, None]
    s = fd.step(lr=0.2, gamma=gammas, period=10)            # batch (2, 1)
    lam = np.array([0.3, 1.0, 4.0, 9.0])                     # 9 * 0.2 = 1.8: oscillating but stable
    got = fd.discretization_divergence(s, lam, 60)
    assert got.shape == (2, 4)
    e = fd.match_half_life(s)
    w_step = fd.simulate(lam[None, :, None], s, steps=60).w[..., 0]
    w_exp = fd.simulate(lam[None, :, None], e, steps=60).w[..., 0]
    np.testing.assert_allclose(got, np.abs(w_step) / np.abs(w_exp), rtol=1e-10)
    # and the plain loop
    for i, g in enumerate(gammas[:, 0]):
        one = fd.step(lr=0.2, gamma=g, period=10)
        for j, lj in enumerate(lam):
            ws, _ = simulate_quadratic([lj], one, steps=60)
            we, _ = simulate_quadratic([lj], fd.match_half_life(one), steps=60)
            assert abs(got[i, j] - abs(ws[-1, 0]) / abs(we[-1, 0])) <= 1e-10 * got[i, j]


def test_discretization_divergence_stays_finite_where_both_underflow():
    # |w_N| underflows to 0 in both runs; the log-sum ratio does not
    r = fd.discretization_divergence(fd.step(lr=0.5, gamma=0.9, period=100), 1.0, 5000)
    assert np.isfinite(r) and r > 0


def test_discretization_divergence_bad_input():
    with pytest.raises(ValueError, match="step schedule"):
        fd.discretization_divergence(fd.exponential(lr=0.1, gamma=0.9), 1.0, 10)
    with pytest.raises(TypeError, match="s must"):
        fd.discretization_divergence(0.1, 1.0, 10)
    with pytest.raises(ValueError, match="curvature"):
        fd.discretization_divergence(fd.step(0.1, 0.5, 10), np.inf, 10)


# ----------------------------------------------------------------------------- huge step counts


def test_discretization_divergence_with_any_steps_stops_once_the_rest_cannot_matter():
    s = fd.step(np.array([0.1, 1.0]), np.array([0.5, 0.9]), np.array([10, 30]))
    lam = np.array([[0.0], [1.0], [-3.0], [10.0], [20.0], [45.0]])
    full = fd.discretization_divergence(s, lam, 20_000)  # long past where the rates vanish
    huge = fd.discretization_divergence(s, lam, 2**63 - 1)
    np.testing.assert_allclose(huge, full, rtol=1e-15, atol=0.0)
    assert np.isnan(huge[3, 0]) == np.isnan(full[3, 0])  # both trajectories hit 0 there: nan on both


def test_discretization_divergence_refuses_work_it_cannot_finish():
    with pytest.raises(ValueError, match=r"steps=9223372036854775807 would need about .* rate evaluations"):
        fd.discretization_divergence(fd.step(1.0, 1.0 - 1e-12, 10), 1.0, 2**63 - 1)


@pytest.mark.parametrize("schedule", [
    fd.constant(1.0),
    fd.polynomial(1.0, 256, end_lr=0.45),    # reaches its end exactly at a block boundary
    fd.cosine(1.0, 300, min_lr=0.5),
    fd.warmup(fd.cosine(1.0, 100, min_lr=0.45), 10, start_lr=0.5),
    fd.multistep(1.0, 0.5, [3, 700]),        # settles only after its last milestone
    fd.piecewise([5, 600], [1.0, 0.3, 0.6]),
    fd.exponential(0.5, gamma=1.001),        # grows: what is not stable at a step never will be
    fd.tabulated(np.linspace(1.0, 0.45, 300)),
    fd.inverse_time(1.0, 0.01),              # falls to 0: every positive curvature decides
    fd.cosine(1.0, 300, min_lr=0.5, num_cycles=1.5),
    2.0 * fd.polynomial(0.5, 100, end_lr=0.25),                      # products of such rates: no factor falls
    fd.linear(1.0, 0.5, 40) * fd.cosine(1.0, 90, min_lr=0.9),
    fd.tabulated([1.0, 0.5, 0.45]) * fd.exponential(1.0, gamma=1.0001),
    fd.stack([fd.step(1.0, 0.5, 10) * fd.linear(1.0, 0.5, 40), fd.warmup(fd.cosine(1.0, 30, min_lr=0.45), 5) * 1.0]),
])
def test_stability_onset_with_a_huge_max_steps_stops_where_the_rate_settles(schedule, monkeypatch):
    lam = np.array([1.0, 3.0, 4.2, 5.0, 7.0]).reshape((5,) + (1,) * len(schedule.batch_shape))
    table = schedule.table(2000).reshape(-1, 2000)  # (a stack: one row a schedule; lam down the first axis)
    want = np.array([[_onset_loop(row, l) for row in table] for l in lam.ravel()]).reshape(
        np.broadcast_shapes(lam.shape, schedule.batch_shape)).tolist()
    read = diagnostics._rate_blocks

    def few_blocks(*args):  # where the search would not stop, fail at once instead of reading 2**63 steps
        for n, block in enumerate(read(*args)):
            assert n < 100, "read past where every rate settled"
            yield block

    monkeypatch.setattr(diagnostics, "_rate_blocks", few_blocks)
    assert fd.stability_onset(schedule, lam, max_steps=2**63 - 1).tolist() == want
    assert fd.stability_onset(schedule, lam, max_steps=2000).tolist() == want


@pytest.mark.parametrize("schedule", [fd.exponential(1.0, gamma=0.9), fd.step(1.0, 0.5, 7), fd.inverse_sqrt(1.0, 5),
                                      fd.cyclic(0.5, 3.0, 10)])
def test_a_curvature_that_never_contracts_is_decided_at_once(schedule, monkeypatch):
    """With contracting=True a curvature <= 0 never contracts (-1), whatever the schedule: it is
    decided before any rate is read, not after max_steps of them (a zero among the eigenvalues
    made a huge max_steps never return)."""
    read = diagnostics._rate_blocks

    def few_blocks(*args):
        for n, block in enumerate(read(*args)):
            assert n < 100, "read past where every value was decided"
            yield block

    monkeypatch.setattr(diagnostics, "_rate_blocks", few_blocks)
    got = fd.stability_onset(schedule, [0.0, -2.0, 0.1], max_steps=2**63 - 1, contracting=True)
    assert got.tolist() == [-1, -1, _onset_loop(schedule.table(100), 0.1, contracting=True)]
    assert fd.stability_onset(schedule, [0.0, -1e-300], max_steps=2**63 - 1, contracting=True).tolist() == [-1, -1]


@pytest.mark.parametrize("call", [
    lambda: fd.escape_probability(fd.constant(1.0), 1.0, 1.0, 2**63 - 1),
    lambda: fd.adam_effective_step(fd.constant(1.0), 2**63 - 1),
])
def test_results_that_cannot_fit_in_memory_are_refused_naming_steps(call):
    with pytest.raises(ValueError, match=r"^steps=9223372036854775807 asks for a result of shape"):
        call()


@pytest.mark.parametrize("call, error, needle", [
    (lambda: fd.stability_onset(fd.constant(1.0), 1.0, max_steps=10**400), ValueError, "max_steps must be < 2**63"),
    (lambda: fd.escape_probability(fd.constant(1.0), 1.0, 1.0, 10**400), ValueError, "steps must be < 2**63"),
    (lambda: fd.escape_probability(fd.constant(1.0), 10**400, 1.0, 3), ValueError, "barrier must be a finite"),
    (lambda: fd.discretization_divergence(fd.step(0.1, 0.5, 10), 1.0, 2.5), ValueError, "steps must be an integer"),
])
def test_huge_or_fractional_counts_name_the_argument(call, error, needle):
    with pytest.raises(error) as info:
        call()
    assert needle in str(info.value)


def test_torch_arguments_get_torch_results():
    torch = pytest.importorskip("torch")
    s = fd.stack([fd.step(lr=1.0, gamma=0.5, period=3), fd.exponential(lr=1.0, gamma=0.8)])
    lam = np.array([[0.5], [3.0], [7.0]])
    onset = fd.stability_onset(s, torch.tensor(lam), max_steps=50)
    assert isinstance(onset, torch.Tensor) and onset.dtype == torch.int64
    np.testing.assert_array_equal(onset.numpy(), fd.stability_onset(s, lam, max_steps=50))
    r = fd.escape_probability(s, torch.tensor([1.0, 2.0])[:, None], 1.0, 6)
    want = fd.escape_probability(s, np.array([1.0, 2.0])[:, None], 1.0, 6)
    for got, expected in zip(r, want):
        assert isinstance(got, torch.Tensor)
        np.testing.assert_array_equal(got.numpy(), expected)
    step = fd.step(lr=0.1, gamma=0.5, period=10)
    d = fd.discretization_divergence(step, torch.tensor([1.0, 2.0]), 10)
    assert isinstance(d, torch.Tensor)
    np.testing.assert_array_equal(d.numpy(), fd.discretization_divergence(step, np.array([1.0, 2.0]), 10))
