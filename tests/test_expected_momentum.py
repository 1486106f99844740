"""Scheduled momentum in fd.expected_loss (and fd.steps_to_target on top of it): the
moment recurrence takes the step's momentum. Against the hand-written recurrence
(fastdecay.reference), noiseless fd.simulate, and the average of many noisy
fd.simulate runs (Monte Carlo, within 4 standard errors)."""

import numpy as np
import pytest

import fastdecay as fd
from fastdecay.reference import expected_moments

MOMENTUM_RULES = ["momentum", "momentum_lr_in_buffer", "nesterov"]


def _close(got, want, rtol, atol=0.0):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    err = np.abs(got - want)
    bound = rtol * np.abs(want) + atol
    assert np.all(err <= bound), f"max error {np.max(err - bound):.3g} beyond rtol {rtol:g} / atol"


@pytest.mark.parametrize("optimizer", MOMENTUM_RULES)
@pytest.mark.parametrize("on_drop", ["keep", "reset", "rescale"])
def test_scheduled_momentum_matches_reference_recurrence(optimizer, on_drop):
    rng = np.random.default_rng(5)
    lam, sigma, w0 = rng.uniform(0.05, 2.5, 6), rng.uniform(0.1, 0.8, 6), rng.uniform(-1.5, 1.5, 6)
    steps = 160
    lr = fd.multistep(0.3, 0.4, [60, 110])
    mom = fd.cyclic(0.01, 0.3, 19, base_momentum=0.6, max_momentum=0.95).momentum
    kw = dict(steps=steps, optimizer=optimizer, momentum=mom, noise=sigma, batch_size=2.0, w0=w0, w0_var=0.1,
              weight_decay=0.01, on_drop=on_drop)
    res = fd.expected_loss(lam, lr, every=1, **kw)
    loss, mean, second = expected_moments(lam, lr, drops=(60, 110), **kw)
    _close(res.loss, loss, rtol=1e-12, atol=1e-14 * np.max(loss))
    _close(res.mean, mean, rtol=0, atol=1e-12 * np.max(np.sqrt(second)))
    _close(res.second_moment, second, rtol=1e-12)
    # the schedule matters: a constant momentum gives another answer
    const, _, _ = expected_moments(lam, lr, drops=(60, 110), **(kw | dict(momentum=0.95)))
    assert np.max(np.abs(loss - const) / loss) > 0.01


@pytest.mark.parametrize("optimizer", MOMENTUM_RULES)
@pytest.mark.parametrize("on_drop", ["keep", "reset", "rescale"])
@pytest.mark.parametrize("mom", [fd.piecewise([7], [0.0, 0.9]), fd.linear(0.0, 0.9, 30),
                                 fd.piecewise([20, 45], [0.9, 0.0, 0.8])], ids=["starts-at-0", "ramp-from-0", "0-between"])
def test_momentum_that_is_0_at_some_steps_starts_its_buffer_as_torch_does(optimizer, on_drop, mom):
    """A step at momentum 0 is a plain step that leaves the buffer as it is, and the buffer
    starts from the gradient at the first step with momentum (torch's SGD): the oracle's
    recurrence agrees with the plain-loop oracle without noise, and with ``fd.expected_loss``
    with noise (it took step 0 as the buffer's start and made a 0-momentum step the gradient)."""
    from fastdecay.reference import simulate_quadratic

    lam, steps = np.array([0.3, 1.1, 2.0]), 80
    lr = fd.multistep(0.3, 0.5, [10, 50])
    kw = dict(steps=steps, optimizer=optimizer, momentum=mom, weight_decay=0.01, on_drop=on_drop)
    loss, _, _ = expected_moments(lam, lr, w0=1.0, drops=(10, 50), **kw)
    want = np.array([0.5 * np.sum(lam * w * w) for w in simulate_quadratic(
        lam, lr, w0=1.0, drops=(10, 50), **kw)[0]])
    _close(loss, want, rtol=1e-12, atol=1e-15)
    sigma = np.array([0.2, 0.5, 0.1])
    loss, _, second = expected_moments(lam, lr, noise=sigma, w0=1.0, drops=(10, 50), **kw)
    res = fd.expected_loss(lam, lr, noise=sigma, every=1, **kw)
    _close(res.loss, loss, rtol=1e-12, atol=1e-14 * np.max(loss))
    _close(res.second_moment, second, rtol=1e-12)


def test_a_batch_of_momentum_schedules_broadcasts_with_batch_sizes():
    """Momentum schedules on one axis, batch sizes on another: each element is its
    own single call (and the oracle's)."""
    lam = np.array([0.2, 1.0, 2.0])
    moms = [fd.one_cycle(0.4, 120).momentum, fd.constant(0.5), fd.exponential(0.95, gamma=0.99)]
    sizes = np.array([1.0, 8.0])
    kw = dict(steps=120, optimizer="nesterov", noise=np.sqrt(lam))
    res = fd.expected_loss(lam, fd.one_cycle(0.4, 120), momentum=fd.stack(moms)[:, None], batch_size=sizes, **kw)
    assert res.final_loss.shape == (3, 2)
    for i, m in enumerate(moms):
        for j, b in enumerate(sizes):
            one = fd.expected_loss(lam, fd.one_cycle(0.4, 120), momentum=m, batch_size=b, **kw)
            np.testing.assert_array_equal(res.final_loss[i, j], one.final_loss)
            loss, _, _ = expected_moments(lam, fd.one_cycle(0.4, 120), momentum=m, batch_size=b, **kw)
            _close(one.final_loss, loss[-1], rtol=1e-12)


@pytest.mark.parametrize("optimizer", MOMENTUM_RULES)
def test_noiseless_scheduled_momentum_equals_simulate(optimizer):
    rng = np.random.default_rng(12)
    lam = rng.uniform(0.05, 3.0, (4, 5))
    lr = fd.one_cycle(0.3, 300)
    mom = fd.stack([lr.momentum, fd.cyclic(0.01, 0.3, 40).momentum, fd.constant(0.9), fd.cosine(0.95, 300, min_lr=0.5)])
    w0 = rng.uniform(-1, 1, (4, 5))
    kw = dict(steps=300, optimizer=optimizer, momentum=mom, w0=w0, weight_decay=0.003, every=3)
    sim = fd.simulate(lam, lr, **kw)
    res = fd.expected_loss(lam, lr, **kw)
    # an oscillating run's weights are differences of larger terms: where the loss dips
    # (1e-5 below its neighbours and more), rounding is measured against the largest loss
    # within 3 recorded steps (9 steps) on either side
    pad = np.pad(sim.loss, ((0, 0), (3, 3)), mode="edge")
    local = np.lib.stride_tricks.sliding_window_view(pad, 7, axis=1).max(axis=-1)
    _close(res.loss, sim.loss, rtol=1e-12, atol=1e-12 * local)
    _close(res.mean, sim.w, rtol=1e-12, atol=1e-14)


def test_constant_momentum_schedules_give_the_number_s_bits():
    lam = np.linspace(0.1, 2.0, 9)
    kw = dict(steps=200, noise=0.3, batch_size=[1.0, 4.0], every=10)
    for optimizer in MOMENTUM_RULES:
        want = fd.expected_loss(lam, fd.step(0.3, 0.5, 40), optimizer=optimizer, momentum=0.8, **kw).loss
        got = fd.expected_loss(lam, fd.step(0.3, 0.5, 40), optimizer=optimizer, momentum=fd.constant(0.8), **kw).loss
        np.testing.assert_array_equal(got, want)
        zero = fd.expected_loss(lam, fd.step(0.3, 0.5, 40), optimizer=optimizer, momentum=fd.constant(0.0), **kw)
        np.testing.assert_array_equal(zero.loss, fd.expected_loss(lam, fd.step(0.3, 0.5, 40), **kw).loss)


def test_steps_to_target_with_scheduled_momentum_is_the_first_crossing():
    lam = 1.0 / np.arange(1, 31)
    s = fd.one_cycle(0.5, 2000)
    moms = fd.stack([s.momentum, fd.constant(0.9)])[:, None]
    kw = dict(optimizer="momentum", momentum=moms, noise=np.sqrt(lam), batch_size=np.array([1.0, 16.0]))
    got = fd.steps_to_target(lam, s, 0.1, steps=2000, **kw)
    loss = fd.expected_loss(lam, s, steps=2000, every=1, **kw).loss
    below = loss <= 0.1
    np.testing.assert_array_equal(got, np.where(below.any(axis=-1), np.argmax(below, axis=-1), -1))
    assert got.shape == (2, 2) and (got > 0).any()


TRAJECTORIES = 200_000


@pytest.mark.parametrize("optimizer", MOMENTUM_RULES)
def test_average_of_noisy_simulations_within_4_standard_errors(optimizer):
    """The Monte Carlo check of test_expected_montecarlo, with a cycled momentum."""
    lam, steps, every, batch = np.array([0.4, 1.5]), 60, 5, 4.0
    sigma = np.sqrt(lam)
    s = fd.one_cycle(0.5, steps)
    kw = dict(optimizer=optimizer, momentum=s.momentum, weight_decay=0.01)
    w0 = np.random.default_rng(2).normal(0.5, 0.3, (TRAJECTORIES, lam.size))  # a random start
    loss = 0.0
    for k in range(lam.size):  # each coordinate its own batch of one-coordinate runs
        res = fd.simulate(np.full((TRAJECTORIES, 1), lam[k]), s, steps=steps, every=every, w0=w0[:, k:k + 1],
                          noise=sigma[k] / np.sqrt(batch), seed=200 + k, **kw)
        loss = loss + res.loss
    mean, se = loss.mean(axis=0), loss.std(axis=0, ddof=1) / np.sqrt(TRAJECTORIES)
    model = dict(steps=steps, every=every, noise=sigma, w0=0.5, w0_var=0.09, **kw)
    exact = fd.expected_loss(lam, s, batch_size=batch, **model)
    z = np.abs(mean - exact.loss) / se
    assert np.all(z <= 4.0), f"z-scores {np.round(z, 2)}"
    wrong = fd.expected_loss(lam, s, batch_size=2 * batch, **model)
    assert np.max(np.abs(mean - wrong.loss) / se) > 8.0


def test_bad_momentum_names_itself():
    with pytest.raises(ValueError, match="momentum"):
        fd.expected_loss([1.0], 0.1, steps=3, optimizer="momentum", momentum=-0.5)
    with pytest.raises(ValueError, match="momentum batch_shape"):
        fd.expected_loss(np.ones((4, 2)), 0.1, steps=3, optimizer="momentum", momentum=fd.constant([0.9, 0.8, 0.7]))
