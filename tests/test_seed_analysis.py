"""The seed analysis (step vs exponential decay on quadratics) as executable checks.

Each statement is checked three ways where it applies: fd.simulate's recorded
trajectories, the plain loops of fastdecay.reference, and the closed form the
analysis states. GD on ½λw² multiplies w by (1 − η_t λ) each step, so the
displacement is m_{t+1} = ‖w_{t+1} − w_t‖ = η_t |λ| ‖w_t‖.
"""

import numpy as np
import pytest

import fastdecay as fd
from fastdecay.reference import simulate_quadratic


def _reference_displacement(lam, s, steps, **kw):
    w, _ = simulate_quadratic([lam], s, steps=steps, **kw)
    return np.abs(np.diff(w[:, 0]))


U = 2.0**-53


def _assert_ratio(ratio, exact, res, lam):
    """m_{t+1}/m_t against its closed form, to rounding: a displacement is a difference of two
    weights, so its absolute error is a few ulps of |w| (large relative to m in flat directions)."""
    w = np.sqrt(2 * res.loss / lam)                      # |w_t|, d = 1
    m = res.displacement[:, 1:]
    rel = 4 * U * (w[:, 1:-1] + w[:, :-2]) / m[:, :-1] + 4 * U * (w[:, 2:] + w[:, 1:-1]) / m[:, 1:]
    assert np.all(np.abs(ratio - exact) <= (rel + 1e-13) * np.abs(exact))


# ----------------------------------------------------------------------------- displacement signatures


def test_exponential_displacement_ratio_follows_alpha():
    """Exponential decay η_t = η0 α^t: m_{t+1}/m_t = α |1 − η_{t−1} λ| exactly, ≈ α in flat directions."""
    alpha, eta0 = 0.97, 0.1
    s = fd.exponential(lr=eta0, gamma=alpha)
    lam = np.array([[1e-4], [0.05], [1.0]])
    res = fd.simulate(lam, s, steps=200, every=1)
    m = res.displacement[:, 1:]                         # m_1 .. m_200
    ratio = m[:, 1:] / m[:, :-1]                        # m_{t+1} / m_t for t = 1 .. 199
    eta = s.table(200)
    exact = alpha * np.abs(1 - eta[None, :-1] * lam)    # α |1 − η_{t−1} λ|, t − 1 = 0 .. 198
    _assert_ratio(ratio, exact, res, lam)
    assert np.max(np.abs(ratio[0] - alpha)) < 1e-5      # flat direction: the signature is α itself
    # the oracle's displacements agree (to a few ulps of |w|)
    for i, li in enumerate(lam[:, 0]):
        np.testing.assert_allclose(m[i], _reference_displacement(li, s, 200), rtol=1e-12, atol=8 * U)


def test_step_displacement_plateaus_and_drops_by_gamma():
    """Step decay: inside a plateau m_{t+1}/m_t = |1 − η λ| (≈ 1 when flat); across a drop it is
    γ |1 − η λ|: the displacement falls by γ at each boundary."""
    gamma, period, eta0 = 0.5, 25, 0.1
    s = fd.step(lr=eta0, gamma=gamma, period=period)
    lam = np.array([[1e-5], [0.3]])
    res = fd.simulate(lam, s, steps=100, every=1)
    m = res.displacement[:, 1:]
    ratio = m[:, 1:] / m[:, :-1]                        # index k: m_{k+2}/m_{k+1}, rates η_{k+1}/η_k
    eta = s.table(100)
    drop = eta[1:100] / eta[0:99]
    exact = drop * np.abs(1 - eta[None, 0:99] * lam)
    _assert_ratio(ratio, exact, res, lam)
    boundaries = np.flatnonzero(drop != 1.0)
    assert (boundaries + 1).tolist() == [25, 50, 75]
    flat = ratio[0]
    assert np.all(np.abs(flat[np.setdiff1d(np.arange(99), boundaries)] - 1) < 1e-5)   # plateaus
    np.testing.assert_allclose(flat[boundaries], gamma, rtol=1e-5)                    # drops by γ
    for i, li in enumerate(lam[:, 0]):
        np.testing.assert_allclose(m[i], _reference_displacement(li, s, 100), rtol=1e-12, atol=8 * U)


# ----------------------------------------------------------------------------- momentum at a drop


G = 1e-6       # curvature at w0 = 1: a gradient that changes by < 3e-5 (relative) over the run
CONST_G = 1e-4  # tolerance of the constant-gradient closed forms; displacements of ~1e-7 carry ~2e-9


def _momentum_run(optimizer, on_drop, steps=200, drop_at=100, gamma=0.1, beta=0.9, eta=0.01, g=G):
    """A nearly constant gradient g: curvature g at w ≈ 1."""
    s = fd.multistep(eta, gamma, [drop_at])
    res = fd.simulate(np.array([[g]]), s, steps=steps, optimizer=optimizer, momentum=beta, on_drop=on_drop,
                      every=1)
    ref, _ = simulate_quadratic([g], s, steps=steps, optimizer=optimizer, momentum=beta, on_drop=on_drop,
                                drops=[drop_at])
    np.testing.assert_allclose(res.displacement[0, 1:], np.abs(np.diff(ref[:, 0])), rtol=1e-10, atol=8 * U)
    return res.displacement[0, 1:]   # m_{t+1} = step taken by update t


@pytest.mark.parametrize("optimizer", ["momentum_lr_in_buffer", "momentum"])
def test_momentum_steady_state_is_eta_g_over_one_minus_beta(optimizer):
    beta, eta, g = 0.9, 0.01, G
    m = _momentum_run(optimizer, "keep", beta=beta, eta=eta, g=g)
    # before the drop the step converges to η g / (1 − β), geometrically: η g (1 − β^(t+1)) / (1 − β)
    t = np.arange(100)
    np.testing.assert_allclose(m[:100], eta * g * (1 - beta ** (t + 1)) / (1 - beta), rtol=CONST_G)
    np.testing.assert_allclose(m[99], eta * g / (1 - beta), rtol=CONST_G)


def test_lr_in_buffer_overshoots_after_a_drop_with_keep_but_not_with_reset_or_rescale():
    beta, eta, g, gamma = 0.9, 0.01, G, 0.1
    new_steady = gamma * eta * g / (1 - beta)
    keep = _momentum_run("momentum_lr_in_buffer", "keep", beta=beta, eta=eta, g=g, gamma=gamma)
    reset = _momentum_run("momentum_lr_in_buffer", "reset", beta=beta, eta=eta, g=g, gamma=gamma)
    rescale = _momentum_run("momentum_lr_in_buffer", "rescale", beta=beta, eta=eta, g=g, gamma=gamma)
    old_v = eta * g * (1 - beta**100) / (1 - beta)
    k = np.arange(100)
    # keep: the buffer carries the old rate's velocity, decaying as β^k onto the new steady state
    np.testing.assert_allclose(keep[100:], new_steady + (old_v - new_steady) * beta ** (k + 1), rtol=CONST_G)
    assert keep[100] / new_steady > 8.0          # (β + γ(1 − β)) / (γ) ≈ 9.1: a large transient overshoot
    # reset: starts from zero and climbs to the new steady state from below, never above it
    np.testing.assert_allclose(reset[100:], new_steady * (1 - beta ** (k + 1)), rtol=CONST_G)
    assert np.all(reset[100:] <= new_steady * (1 + CONST_G))
    # rescale: the buffer is multiplied by γ, and is at the new steady state at once
    np.testing.assert_allclose(rescale[100:], gamma * old_v * beta ** (k + 1) + new_steady * (1 - beta ** (k + 1)),
                               rtol=CONST_G)
    assert np.max(rescale[100:]) <= new_steady * (1 + CONST_G)


def test_heavy_ball_step_size_follows_the_rate_at_a_drop_with_keep():
    """torch's form (w ← w − η_t b) keeps the buffer in gradient units: with keep the step falls
    by exactly γ at the drop, no overshoot; rescale multiplies the buffer by γ too, an undershoot."""
    gamma = 0.1
    keep = _momentum_run("momentum", "keep", gamma=gamma)
    rescale = _momentum_run("momentum", "rescale", gamma=gamma)
    beta = 0.9
    np.testing.assert_allclose(keep[100] / keep[99], gamma * (beta * (1 - beta**100) + (1 - beta)) /
                               (1 - beta**100), rtol=CONST_G)
    assert rescale[100] < keep[100]


# ----------------------------------------------------------------------------- scheduled weight decay


@pytest.mark.parametrize("optimizer", ["adamw", "gd"])
def test_constant_shrinkage_keeps_the_per_step_shrink_constant(optimizer):
    """With zero curvature only weight decay moves w: w_t = Π (1 − η_τ λ_τ). Under
    fd.constant_shrinkage η_t λ_t = η_0 λ_0, so w_t = (1 − η_0 λ_0)^t, while a constant λ shrinks
    less and less as η decays (torch's AdamW)."""
    lr = fd.exponential(lr=0.1, gamma=0.98)
    wd0 = 0.05
    wd = fd.constant_shrinkage(lr, wd0)
    eta = lr.table(300)
    for steps in (1, 10, 150, 300):
        sched = fd.simulate(np.zeros(2), lr, steps=steps, optimizer=optimizer, weight_decay=wd).w
        const = fd.simulate(np.zeros(2), lr, steps=steps, optimizer=optimizer, weight_decay=wd0).w
        np.testing.assert_allclose(sched, (1 - 0.1 * wd0) ** steps, rtol=1e-12)
        np.testing.assert_allclose(const, np.prod(1 - eta[:steps] * wd0), rtol=1e-12)
        ref, _ = simulate_quadratic([0.0], lr, steps=steps, optimizer=optimizer, weight_decay=wd)
        np.testing.assert_allclose(sched[0], ref[-1, 0], rtol=1e-12)
    assert const[0] > sched[0]


# ----------------------------------------------------------------------------- the stability ceiling


def test_stability_ceiling_two_over_eta():
    """GD contracts direction λ exactly when λ < 2/η_t: at a constant rate just below the ceiling
    converges and just above diverges; under decay a direction above 2/η_0 grows until
    fd.stability_onset and contracts from then on."""
    eta = 0.1
    ceiling = 2 / eta
    res = fd.simulate(np.array([[ceiling * 0.999], [ceiling * 1.001]]), eta, steps=5000)
    assert abs(res.w[0, 0]) < 0.1 and abs(res.w[1, 0]) > 10

    s = fd.stack([fd.exponential(lr=1.0, gamma=0.7), fd.step(lr=1.0, gamma=0.1, period=10),
                  fd.cosine(0.5, 60, min_lr=0.01), fd.exponential(lr=0.5, gamma=0.9, decay_steps=4, staircase=True)])
    lam = np.array([0.5, 3.0, 5.0, 12.0, 30.0])
    onset = fd.stability_onset(s[:, None], lam, max_steps=80)
    res = fd.simulate(lam[None, :, None], s[:, None], steps=80, every=1)
    loss = res.loss                                         # (4, 5, 81): ½ λ w_t²
    shrinking = loss[..., 1:] < loss[..., :-1]              # |w_{t+1}| < |w_t|  <=>  η_t λ < 2
    ceiling_t = 2.0 / s.table(80)[:, None, :]
    np.testing.assert_array_equal(shrinking, lam[None, :, None] < ceiling_t)
    first = np.where(shrinking.any(-1), shrinking.argmax(-1), -1)
    np.testing.assert_array_equal(first, onset)
    assert onset[0, 2] == 3 and onset[1, 2] == 10           # the seed's example, inside the grid
    # the oracle agrees on the iterates of one grown-then-contracted direction
    w, _ = simulate_quadratic([12.0], s[1], steps=80)
    np.testing.assert_allclose(np.sqrt(2 * loss[1, 3] / 12.0), np.abs(w[:, 0]), rtol=1e-12)
