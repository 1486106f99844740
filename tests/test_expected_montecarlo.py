"""fd.expected_loss against Monte Carlo: the average loss of many noisy fd.simulate
trajectories (Philox noise, an independent code path) agrees with the exact
expectation within 4 standard errors at every recorded step, for each optimizer
and several schedules, including a step schedule under each on_drop policy.
2e5 trajectories a case (about a second each on two cores); each case also checks
that a wrong model (twice the batch size, or the wrong on_drop policy) is rejected."""

import numpy as np
import pytest

import fastdecay as fd

TRAJECTORIES = 200_000
STEPS = 60
EVERY = 5
LAM = np.array([0.3, 1.0, 2.2])
SIGMA = np.sqrt(LAM)          # the NQM's noise, σ_k² = λ_k
BATCH = 4.0

SCHEDULES = {
    "exponential": (fd.exponential(0.45, gamma=0.98), "keep"),
    "step_keep": (fd.step(0.45, 0.4, 15), "keep"),
    "step_reset": (fd.step(0.45, 0.4, 15), "reset"),
    "step_rescale": (fd.step(0.45, 0.4, 15), "rescale"),
    "warmup_cosine": (fd.warmup(fd.cosine(0.45, 50), 10), "keep"),
}
CASES = [(opt, name) for opt in ("gd", "momentum", "momentum_lr_in_buffer", "nesterov") for name in SCHEDULES
         if not (opt == "gd" and SCHEDULES[name][1] != "keep")]


def _monte_carlo(schedule, w0, **kw):
    """(mean, standard error) of the recorded loss over TRAJECTORIES noisy runs.

    fd.simulate takes one σ for all coordinates, and the coordinates of a diagonal
    quadratic evolve independently: each coordinate k runs as its own batch of
    one-coordinate trajectories with noise σ_k/√B (its own seed), and a
    trajectory's loss is the sum of its coordinates' losses."""
    loss = 0.0
    for k, (lam, sigma) in enumerate(zip(LAM, SIGMA)):
        res = fd.simulate(np.full((TRAJECTORIES, 1), lam), schedule, steps=STEPS, every=EVERY,
                          noise=sigma / np.sqrt(BATCH), w0=w0[:, k:k + 1], seed=100 + k, **kw)
        loss = loss + res.loss
    return loss.mean(axis=0), loss.std(axis=0, ddof=1) / np.sqrt(TRAJECTORIES)


@pytest.mark.parametrize("optimizer,name", CASES)
def test_average_of_noisy_simulations_within_4_standard_errors(optimizer, name):
    schedule, on_drop = SCHEDULES[name]
    kw = dict(optimizer=optimizer, momentum=0.8, on_drop=on_drop, weight_decay=0.01)
    rng = np.random.default_rng(1)
    w0 = rng.normal(0.5, 0.3, (TRAJECTORIES, LAM.size))        # a random start: mean 0.5, variance 0.09
    mean, se = _monte_carlo(schedule, w0, **kw)
    exact = fd.expected_loss(LAM, schedule, steps=STEPS, every=EVERY, noise=SIGMA, batch_size=BATCH, w0=0.5,
                             w0_var=0.09, **kw)
    z = np.abs(mean - exact.loss) / se
    assert np.all(z <= 4.0), f"z-scores {np.round(z, 2)}"
    # the test can fail: a model with twice the batch size (half the noise) is rejected
    wrong = fd.expected_loss(LAM, schedule, steps=STEPS, every=EVERY, noise=SIGMA, batch_size=2 * BATCH, w0=0.5,
                             w0_var=0.09, **kw)
    assert np.max(np.abs(mean - wrong.loss) / se) > 8.0
    if on_drop != "keep":  # and the policy matters: the model that keeps the buffer is rejected
        kept = fd.expected_loss(LAM, schedule, steps=STEPS, every=EVERY, noise=SIGMA, batch_size=BATCH, w0=0.5,
                                w0_var=0.09, **(kw | dict(on_drop="keep")))
        assert np.max(np.abs(mean - kept.loss) / se) > 8.0
