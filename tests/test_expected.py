"""fd.expected_loss against the hand-written moment recurrence (fastdecay.reference),
against noiseless fd.simulate, and its broadcasting, chunking and bad-input checks;
fd.steps_to_target, fd.batch_size_scaling and fd.adam_compensating_decay."""

import math

import numpy as np
import pytest

import fastdecay as fd
from fastdecay import expected as expected_module
from fastdecay._rules import LINEAR
from fastdecay.reference import expected_moments

OPTIMIZERS = list(LINEAR)  # the rules with an exact linear form
STEPS = 150

SCHEDULES = {
    # name: (schedule, steps where the rate drops discontinuously)
    "exponential": (fd.exponential(0.3, gamma=0.99), ()),
    "step": (fd.step(0.3, 0.5, 9), range(9, STEPS, 9)),
    "multistep": (fd.multistep(0.4, 0.3, [40, 100]), (40, 100)),
    "warmup_cosine": (fd.warmup(fd.cosine(0.3, 200), 20, start_lr=0.01), ()),
}


def _close(got, want, rtol, atol=0.0):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    err = np.abs(got - want)
    bound = rtol * np.abs(want) + atol
    assert np.all(err <= bound), f"max error {np.max(err - bound):.3g} beyond rtol {rtol:g} / atol {atol:g}"


def _problem(seed=3, d=7):
    rng = np.random.default_rng(seed)
    lam = rng.uniform(0.05, 2.5, d)
    lam[0] = -0.05  # a saddle direction: its moments grow, still exact
    return lam, rng.uniform(0.1, 0.8, d), rng.uniform(-1.5, 1.5, d)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("kind,on_drop", [("exponential", "keep"), ("warmup_cosine", "keep"), ("step", "keep"),
                                          ("step", "reset"), ("step", "rescale"), ("multistep", "reset"),
                                          ("multistep", "rescale")])
def test_matches_reference_recurrence(optimizer, kind, on_drop):
    """Every recorded loss, and the final mean and second moment, against the oracle's
    hand-written 2x2 matrices: per-coordinate noise, batch size, a random start, a
    scheduled weight decay, each on_drop policy at the drops of a step schedule."""
    lam, sigma, w0 = _problem()
    schedule, drops = SCHEDULES[kind]
    wd = fd.exponential(0.01, gamma=1.005)
    kw = dict(steps=STEPS, optimizer=optimizer, momentum=0.85, noise=sigma, batch_size=3.0, w0=w0, w0_var=0.2,
              weight_decay=wd, on_drop=on_drop)
    res = fd.expected_loss(lam, schedule, every=1, **kw)
    loss, mean, second = expected_moments(lam, schedule, drops=drops, **kw)
    # the saddle direction's negative term cancels part of the loss: errors also
    # measured against the run's largest loss
    _close(res.loss, loss, rtol=1e-12, atol=1e-14 * np.max(loss))
    _close(res.final_loss, loss[-1], rtol=1e-12, atol=1e-14 * np.max(loss))
    scale = np.sqrt(second)  # the mean may cross zero: errors relative to its spread
    _close(res.mean, mean, rtol=0, atol=1e-12 * np.max(scale))
    _close(res.second_moment, second, rtol=1e-12)
    assert res.steps.tolist() == list(range(STEPS + 1))
    # the noise and the start's variance matter: this is not the noiseless answer
    quiet, _, _ = expected_moments(lam, schedule, drops=drops, **(kw | dict(noise=0.0, w0_var=0.0)))
    assert np.max(np.abs(loss - quiet) / loss) > 0.05


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_noiseless_equals_simulate(optimizer):
    """Without noise (and w0_var = 0) the mean is the trajectory and the second moment
    its square: fd.simulate's loss at every step and its final weights, to 1e-12, for
    a batch of per-trajectory schedules (a step schedule with on_drop among them) and
    per-trajectory curvatures."""
    rng = np.random.default_rng(11)
    lam = rng.uniform(0.05, 3.0, (4, 5))
    schedules = fd.stack([fd.exponential(0.2, gamma=0.995), fd.step(0.25, 0.5, 30), fd.one_cycle(0.3, 300),
                          fd.piecewise([50, 120], [0.2, 0.05, 0.1])])
    w0 = rng.uniform(-1, 1, (4, 5))
    kw = dict(steps=300, optimizer=optimizer, momentum=0.9, w0=w0, weight_decay=0.003, on_drop="rescale", every=3)
    sim = fd.simulate(lam, schedules, **kw)
    res = fd.expected_loss(lam, schedules, **kw)
    # relative 1e-12; where an oscillating run has decayed by 1e-20 and more, rounding that
    # cancels differently in the two evaluations is measured against the starting loss
    tiny = 1e-30 * sim.loss[:, :1]
    _close(res.loss, sim.loss, rtol=1e-12, atol=tiny)
    _close(res.final_loss, sim.loss[:, -1], rtol=1e-12, atol=tiny[:, 0])
    _close(res.mean, sim.w, rtol=1e-12, atol=1e-14)
    _close(res.second_moment, sim.w**2, rtol=1e-12, atol=1e-28)
    assert np.all(sim.loss[:, -1] < 0.5 * sim.loss[:, 0])  # they did move


def test_noiseless_shared_schedule_on_drop_each_policy():
    lam = np.linspace(0.1, 2.0, 9)
    for on_drop in ("keep", "reset", "rescale"):
        kw = dict(steps=200, optimizer="nesterov", momentum=0.8, on_drop=on_drop, every=1)
        sim = fd.simulate(lam, fd.step(0.5, 0.3, 25), **kw)
        res = fd.expected_loss(lam, fd.step(0.5, 0.3, 25), **kw)
        _close(res.loss, sim.loss, rtol=1e-12)


def test_closed_form_stationary_variance_of_gd():
    """Constant-rate GD: E w_t² = a^(2t) w0² + q η² (1 − a^(2t)) / (1 − a²), a = 1 − ηλ."""
    lam, eta, sigma, B, t = np.array([0.3, 1.0, 1.7]), 0.4, 0.7, 5.0, 80
    res = fd.expected_loss(lam, eta, steps=t, noise=sigma, batch_size=B, w0=2.0)
    a = 1 - eta * lam
    want = a ** (2 * t) * 4.0 + sigma**2 / B * eta**2 * (1 - a ** (2 * t)) / (1 - a**2)
    _close(res.second_moment, want, rtol=1e-13)
    _close(res.mean, a**t * 2.0, rtol=1e-13)
    assert res.final_loss == pytest.approx(0.5 * np.sum(lam * want), rel=1e-13)


def test_broadcast_grid_equals_single_calls():
    """Schedules x batch sizes x curvature sets in one call: each element is the call
    made for it alone."""
    lam = np.array([[0.1, 0.5, 2.0], [0.2, 0.3, 1.0]])[:, None, None, :]        # (2, 1, 1, 3)
    lrs = np.array([0.05, 0.2, 0.6])
    schedule = fd.step(lrs[:, None], 0.5, 15)                                     # batch (3, 1)
    sizes = np.array([1.0, 4.0, 32.0, 100.0])                                     # (4,)
    noise = np.sqrt(np.abs(lam))
    kw = dict(steps=60, optimizer="momentum", momentum=0.7, on_drop="reset", every=20)
    res = fd.expected_loss(lam, schedule, noise=noise, batch_size=sizes, **kw)
    assert res.loss.shape == (2, 3, 4, 4) and res.mean.shape == (2, 3, 4, 3) and res.final_loss.shape == (2, 3, 4)
    for c in range(2):
        for j in range(3):
            for b in range(4):
                one = fd.expected_loss(lam[c, 0, 0], fd.step(lrs[j], 0.5, 15), noise=noise[c, 0, 0],
                                       batch_size=sizes[b], **kw)
                _close(res.loss[c, j, b], one.loss, rtol=1e-14)
                _close(res.second_moment[c, j, b], one.second_moment, rtol=1e-14)
                _close(res.mean[c, j, b], one.mean, rtol=1e-14)


def test_rate_rows_of_the_same_bits_share_their_coefficients(monkeypatch):
    """A grid of a few momenta and weight decays across two schedules over many curvatures (a rate
    row a trajectory) computes each distinct combination's coefficients once: as many coefficient
    rows as combinations, the bits of a coefficient row a trajectory, and each trajectory the loss of
    its own call."""
    from fastdecay._cpu import expected as kernels

    n = 600
    rng = np.random.default_rng(3)
    lam = rng.uniform(0.0, 2.0, (n, 2))
    momenta, wds = np.resize([0.0, 0.5, 0.9], n), np.resize([0.0, 0.01], n)  # 6 pairs, in turn
    schedules = [fd.step(0.3, 0.5, 7), fd.cosine(0.3, 40)]
    which = np.arange(n) // 300
    grid = fd.stack([schedules[k] for k in which])
    rows = []
    spied = kernels.step_coefficients
    monkeypatch.setattr(kernels, "step_coefficients", lambda *a: (rows.append(a[-1].shape[0]), spied(*a))[1])
    kw = dict(steps=60, optimizer="momentum", noise=0.3, batch_size=4.0, every=10, on_drop="reset")
    shared = fd.expected_loss(lam, grid, momentum=momenta, weight_decay=wds, **kw)
    assert rows and set(rows) == {12}
    rows.clear()
    monkeypatch.setattr(expected_module, "_distinct_rate_rows", lambda schedules, rates, coef_rows: (*rates, coef_rows))
    each = fd.expected_loss(lam, grid, momentum=momenta, weight_decay=wds, **kw)
    assert rows and set(rows) == {n}
    for field in ("loss", "mean", "second_moment"):
        np.testing.assert_array_equal(getattr(shared, field), getattr(each, field), err_msg=field)
    for i in (0, 1, 5, 299, 300, n - 1):
        one = fd.expected_loss(lam[i], schedules[which[i]], momentum=momenta[i], weight_decay=wds[i], **kw)
        _close(shared.loss[i], one.loss, rtol=1e-14)


@pytest.mark.parametrize("hash_", ["mixed", "colliding"])
def test_schedule_rows_are_classed_by_their_bits(monkeypatch, hash_, signed_cosine):
    """``_classes_of_rows``: rows of the same bits share a class, rows that differ in any word do not
    (a min_lr of -0.0 is not 0.0, a later segment counts), whatever the hash: with every row hashed
    alike (a multiplier of 0) the rows are compared whole."""
    if hash_ == "colliding":
        monkeypatch.setattr(expected_module, "_ROW_HASH", np.uint64(0))
    rows = [fd.cosine(0.1, 10), fd.step(0.1, 0.5, 3), fd.cosine(0.1, 10), signed_cosine(0.1, 10, min_lr=-0.0),
            fd.multistep(0.1, 0.5, [5, 9]), fd.multistep(0.1, 0.5, [5, 10]), fd.step(0.1, 0.5, 3),
            fd.multistep(0.1, 0.5, [5, 10])]
    table = fd.stack(rows).rows()
    classes, count = expected_module._classes_of_rows(table)
    assert count == 5
    for a in range(len(rows)):
        for b in range(len(rows)):
            assert (classes[a] == classes[b]) == (table[a].tobytes() == table[b].tobytes()), (a, b)


def test_chunks_and_coordinate_splits_do_not_change_results(monkeypatch):
    """Short chunks (coefficients recomputed per chunk) give the same bits; splitting a
    trajectory's coordinates over tiles changes only the loss's summation order."""
    lam = np.linspace(0.01, 1.0, 700)
    kw = dict(steps=97, optimizer="momentum_lr_in_buffer", noise=0.3, batch_size=[1.0, 7.0], every=4,
              weight_decay=fd.cosine(0.01, 97))
    want = fd.expected_loss(lam, fd.warmup(fd.step(0.3, 0.7, 10), 5), **kw)
    monkeypatch.setattr(expected_module, "_COEF_NUMBERS", 6 * 2 * 13)
    got = fd.expected_loss(lam, fd.warmup(fd.step(0.3, 0.7, 10), 5), **kw)
    np.testing.assert_array_equal(got.second_moment, want.second_moment)
    np.testing.assert_array_equal(got.loss, want.loss)
    monkeypatch.setattr(expected_module, "_TILES_PER_THREAD", 1000)  # two trajectories: split d over tiles
    split = fd.expected_loss(lam, fd.warmup(fd.step(0.3, 0.7, 10), 5), **kw)
    np.testing.assert_array_equal(split.second_moment, want.second_moment)
    _close(split.loss, want.loss, rtol=1e-14)


def test_without_every_and_scalar_batch():
    res = fd.expected_loss(np.array([1.0, 2.0]), 0.1, steps=10)
    assert res.loss is None and res.steps is None
    assert isinstance(res.final_loss, float)
    assert res.final_loss == pytest.approx(0.5 * (0.9**20 + 2 * 0.8**20), rel=1e-14)
    zero = fd.expected_loss([3.0], 0.1, steps=0, every=5, w0=2.0)
    assert zero.steps.tolist() == [0] and zero.loss.tolist() == [6.0] and zero.final_loss == 6.0


def test_torch_cpu_input_gives_tensors():
    torch = pytest.importorskip("torch")
    lam = torch.tensor([0.5, 1.5], dtype=torch.float64)
    res = fd.expected_loss(lam, fd.constant(0.1), steps=5, noise=0.1, batch_size=[1, 2], every=5)
    want = fd.expected_loss(lam.numpy(), fd.constant(0.1), steps=5, noise=0.1, batch_size=[1, 2], every=5)
    assert isinstance(res.loss, torch.Tensor) and isinstance(res.mean, torch.Tensor)
    np.testing.assert_array_equal(res.loss.numpy(), want.loss)


def test_divergence_is_reported_not_raised():
    res = fd.expected_loss([4.0], 1.0, steps=2000, noise=1.0)
    assert not np.isfinite(res.final_loss)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_adam_is_refused_with_a_pointer_to_monte_carlo(optimizer):
    with pytest.raises(ValueError, match=r"optimizer='adam.*fd\.simulate"):
        fd.expected_loss([1.0], 0.1, steps=3, optimizer=optimizer)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(optimizer="sgd"), ValueError, "optimizer must be one of"),
    (dict(on_drop="zero"), ValueError, "on_drop must be one of"),
    (dict(steps=-1), ValueError, "steps must be >= 0"),
    (dict(steps=2.5), ValueError, "steps must be an integer"),
    (dict(every=0), ValueError, "every must be >= 1"),
    (dict(noise=-0.1), ValueError, "noise must be >= 0"),
    (dict(noise=[0.1, 0.2, 0.3]), ValueError, r"noise of shape \(3,\) must broadcast"),
    (dict(batch_size=0), ValueError, "batch_size must be > 0"),
    (dict(batch_size=[1, 2, 3]), ValueError, "batch_size shape"),
    (dict(w0=np.nan), ValueError, "w0 must be finite"),
    (dict(w0_var=-1.0), ValueError, "w0_var must be >= 0"),
    (dict(momentum="high"), TypeError, "momentum must be a number"),
    (dict(weight_decay=-0.1), ValueError, "weight_decay must be >= 0"),
    (dict(schedule=fd.constant([0.1, 0.2, 0.3])), ValueError, "schedule batch_shape"),
    (dict(curvature=[[]]), ValueError, "curvature must have shape"),
    (dict(curvature=[np.inf, 1.0]), ValueError, "curvature must be finite"),
    (dict(curvature="flat"), TypeError, "curvature must be a number"),
])
def test_bad_input_names_the_argument(kwargs, error, match):
    args = dict(curvature=np.ones((2, 2)), schedule=fd.constant(0.1), steps=5) | kwargs
    with pytest.raises(error, match=match):
        fd.expected_loss(args.pop("curvature"), args.pop("schedule"), **args)


# ----------------------------------------------------------------------------- steps to target


def test_steps_to_target_is_the_first_crossing_of_expected_loss():
    lam = 1.0 / np.arange(1, 41)
    lrs = np.array([0.05, 0.3, 1.0, 2.5])[:, None]                 # 2.5 diverges on λ = 1
    sizes = np.array([1.0, 4.0, 64.0])
    kw = dict(optimizer="momentum", momentum=0.5, noise=np.sqrt(lam), batch_size=sizes)
    target = 0.12
    got = fd.steps_to_target(lam, fd.constant(lrs), target, steps=3000, **kw)
    loss = fd.expected_loss(lam, fd.constant(lrs), steps=3000, every=1, **kw).loss
    below = loss <= target
    want = np.where(below.any(axis=-1), np.argmax(below, axis=-1), -1)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.int64 and (got == -1).any() and (got > 0).any()
    assert np.all(got[-1] == -1)  # the divergent rate never gets there


def test_steps_to_target_start_per_element_targets_and_chunks(monkeypatch):
    lam = np.array([1.0, 0.1])
    assert fd.steps_to_target(lam, 0.1, 0.55, steps=10) == 0            # ½ (1 + 0.1) = 0.55 at the start
    assert fd.steps_to_target(lam, 0.1, 0.01, steps=10) == -1
    targets = np.array([0.5, 0.1, 0.04])
    want = [fd.steps_to_target(lam, 0.5, t, steps=500) for t in targets]
    np.testing.assert_array_equal(fd.steps_to_target(lam, 0.5, targets, steps=500, batch_size=[1, 1, 1]), want)
    monkeypatch.setattr(expected_module, "_COEF_NUMBERS", 6 * 7)       # chunks of 7 steps
    np.testing.assert_array_equal(fd.steps_to_target(lam, 0.5, targets, steps=500, batch_size=[1, 1, 1]), want)
    with pytest.raises(ValueError, match="target must be >= 0"):
        fd.steps_to_target(lam, 0.5, -1.0, steps=5)
    with pytest.raises(ValueError, match=r"target of shape \(2,\) must broadcast"):
        fd.steps_to_target(lam, 0.5, [0.1, 0.2], steps=5, batch_size=[1, 2, 3])


def test_batch_size_scaling_of_the_mccandlish_law():
    """S(B) = S_min (1 + B*/B): slope −B*/(B + B*) locally; on the grid B_0 .. B_max the
    critical batch size is (B* + B_0) S_min / S(B_max)."""
    sizes = 2.0 ** np.arange(0, 15)
    s_min, b_star = 100.0, 512.0
    exact = s_min * (1 + b_star / sizes)
    steps = np.round(np.stack([exact * 1.5, exact, exact * 3])).astype(np.int64)
    steps[1, 3] = -1                                       # the best setting missed one batch size
    got = fd.batch_size_scaling(sizes, steps)
    assert got.steps[3] == steps[0, 3] and got.best[3] == 0
    assert got.best[[0, 1, 2, 4]].tolist() == [1, 1, 1, 1]
    assert got.critical_batch_size == pytest.approx((b_star + 1) * s_min / np.round(exact[-1]), rel=1e-12)
    assert got.critical_batch_size == pytest.approx(b_star, rel=0.05)
    np.testing.assert_allclose(got.slope, np.diff(np.log(got.steps)) / np.log(2.0), rtol=1e-12)
    assert got.slope[0] < -0.99 and -0.05 < got.slope[-1] < 0  # perfect scaling, then next to none
    none = fd.batch_size_scaling([1, 2], np.array([[-1, -1]]))
    assert none.steps.tolist() == [-1, -1] and none.best.tolist() == [-1, -1] and np.isnan(none.critical_batch_size)
    with pytest.raises(ValueError, match="last axis"):
        fd.batch_size_scaling([1, 2, 4], np.ones((3, 2), dtype=int))
    with pytest.raises(ValueError, match="batch_size must be > 0"):
        fd.batch_size_scaling([0, 2], np.ones(2, dtype=int))
    with pytest.raises(TypeError, match="integer step counts"):
        fd.batch_size_scaling([1, 2], np.array([1.5, 2.0]))


# ----------------------------------------------------------------------------- Adam's compensating decay


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.9, 0.99), (0.5, 0.9999), (0.95, 0.95)])
@pytest.mark.parametrize("steps", [10, 1000, 20_000])
def test_adam_compensating_decay_is_the_log_least_squares_line(steps, betas):
    b1, b2 = betas
    t = np.arange(steps)
    log_factor = np.log((1 - b1 ** (t + 1)) / np.sqrt(1 - b2 ** (t + 1)))
    slope, intercept = np.polyfit(t, log_factor, 1)
    fit = fd.adam_compensating_decay(steps, betas=betas)
    assert fit.rate == pytest.approx(slope, rel=1e-9, abs=1e-15)
    assert fit.effective_step == pytest.approx(np.exp(intercept), rel=1e-9)
    residual = log_factor - intercept - slope * t
    assert fit.residual == pytest.approx(np.sqrt(np.mean(residual**2)), rel=1e-7)
    # compensated, Adam's step varies less (in the log domain) than under a constant rate
    assert fit.residual <= np.std(log_factor) + 1e-15


def test_adam_compensating_decay_bad_input():
    with pytest.raises(ValueError, match="steps must be >= 2"):
        fd.adam_compensating_decay(1)
    with pytest.raises(ValueError, match=r"betas\[1\] must be in \[0, 1\)"):
        fd.adam_compensating_decay(10, betas=(0.9, 1.0))


# ----------------------------------------------------------------------------- batch-size grids as two runs


def test_batch_size_grid_as_noiseless_plus_unit_noise_equals_one_run_per_size(monkeypatch):
    """S = S_rest + S_noise / B: a grid over batch sizes from two propagations (the
    noiseless run from (w0, w0_var) and the run with σ² from w0 = 0) equals one
    propagation per batch size, for moments, recorded losses and steps to target;
    noise and starts that vary along the batch-size axis included."""
    lam = np.linspace(0.05, 1.5, 23)
    schedules = fd.stack([fd.step(0.4, 0.5, 20), fd.cosine(0.3, 80)])[:, None]       # (2, 1)
    sizes = np.array([1.0, 3.0, 16.0, 250.0])                                          # (4,)
    calls = []
    original = expected_module._Moments

    def counting(problem, backend):
        calls.append(problem.n)
        return original(problem, backend)

    monkeypatch.setattr(expected_module, "_Moments", counting)
    cases = [  # (arguments, trajectories propagated: the grid is 2 schedules x 4 batch sizes)
        (dict(noise=np.sqrt(lam), w0_var=0.3, w0=-0.7), [2, 2]),
        (dict(noise=np.linspace(0.1, 0.5, 2)[:, None, None] * np.ones(23), w0=np.linspace(1, 2, 23)), [2, 2]),
        (dict(noise=0.0, w0=np.linspace(-1, 1, 4)[:, None], w0_var=np.linspace(0, 1, 23)), [8]),  # w0 along B
        (dict(noise=0.2, w0=np.linspace(-1, 1, 2)[:, None, None], w0_var=np.linspace(0, 1, 23)), [2, 2]),
        (dict(noise=np.linspace(0.1, 0.5, 4)[:, None] * np.ones(23)), [8]),                # noise along B
    ]
    for case, propagated in cases:
        kw = dict(steps=80, optimizer="nesterov", momentum=0.6, on_drop="rescale", batch_size=sizes, **case)
        calls.clear()
        split = fd.expected_loss(lam, schedules, every=8, **kw)
        assert calls == propagated
        monkeypatch.setattr(expected_module, "_SPLIT_BY_BATCH", False)
        calls.clear()
        direct = fd.expected_loss(lam, schedules, every=8, **kw)
        assert calls == [8]
        monkeypatch.setattr(expected_module, "_SPLIT_BY_BATCH", True)
        for name in ("final_loss", "second_moment", "loss"):
            _close(getattr(split, name), getattr(direct, name), rtol=1e-13)
        spread = np.sqrt(direct.second_moment)
        _close(split.mean, direct.mean, rtol=0, atol=1e-14 * np.max(spread))
    target = 0.5 * split.loss[..., 4]          # reached around step 32
    got = fd.steps_to_target(lam, schedules, target, **kw)
    monkeypatch.setattr(expected_module, "_SPLIT_BY_BATCH", False)
    np.testing.assert_array_equal(got, fd.steps_to_target(lam, schedules, target, **kw))
    assert np.all(got > 0)


def test_an_empty_batch_gives_empty_results():
    empty = np.ones((0, 3))
    assert fd.expected_loss(empty, 0.1, steps=5).final_loss.shape == (0,)
    hit = fd.steps_to_target(empty, 0.1, 0.1, steps=5)
    assert hit.shape == (0,) and hit.dtype == np.int64


# ----------------------------------------------------------------------------- edges found by use


@pytest.mark.parametrize("momentum", [np.zeros(2), np.zeros((3, 1)), fd.constant(np.zeros(4)), np.full(0, 0.9)])
def test_a_batch_of_momenta_keeps_its_axes_when_all_are_zero(momentum):
    """All-zero momenta run as GD (bit for bit), but their batch axes stay in the result's
    shape, as in fd.simulate and as any other batch does."""
    lam = np.array([1.0, 2.0])
    shape = momentum.batch_shape if isinstance(momentum, fd.Schedule) else momentum.shape
    r = fd.expected_loss(lam, 0.1, steps=10, optimizer="momentum", momentum=momentum, noise=0.1)
    n = fd.steps_to_target(lam, 0.1, 0.5, steps=10, optimizer="momentum", momentum=momentum)
    sim = fd.simulate(lam, 0.1, steps=10, optimizer="momentum", momentum=momentum)
    assert np.shape(r.final_loss) == shape and r.mean.shape == shape + (2,) and np.shape(n) == shape
    assert sim.w.shape == shape + (2,)
    gd = fd.expected_loss(lam, 0.1, steps=10, noise=0.1)
    assert np.all(r.final_loss == gd.final_loss)


@pytest.mark.parametrize("empty", ["schedule", "weight_decay", "momentum"])
def test_steps_to_target_of_an_empty_batch_of_rates_is_empty(empty):
    kw = dict(schedule=0.1, weight_decay=0.0, momentum=0.9)
    kw[empty] = np.full(0, 0.1)
    n = fd.steps_to_target(np.array([1.0]), target=0.1, steps=10, optimizer="momentum", **kw)
    assert n.shape == (0,) and n.dtype == np.int64


def test_every_beyond_the_run_records_step_zero_only():
    lam = np.array([1.0])
    for every in (11, 2**63, 10**30):
        assert fd.expected_loss(lam, 0.1, steps=10, every=every).steps.tolist() == [0]
        assert fd.simulate(lam, 0.1, steps=10, every=every).steps.tolist() == [0]


@pytest.mark.parametrize("lr", [fd.exponential(0.1, gamma=0.5), fd.step(0.1, 0.5, 2),
                                fd.exponential(0.1, gamma=0.99, decay_steps=1, staircase=True),
                                fd.multistep(0.1, 0.5, list(range(1, 1200))),
                                fd.piecewise([1, 2, 3], [0.1, 1e-200, 1e-310, 0.05])])
def test_constant_shrinkage_of_a_vanishing_rate_stays_finite(lr):
    """λ_t = wd · η_0 / η_t overflowed to inf while η_t was subnormal, and inf · 0 made every
    later update NaN; λ_t is now 0 from where η_t leaves the normal numbers."""
    wd = fd.constant_shrinkage(lr, 0.01)
    t = np.r_[0:10, 10:200_000:7]
    lam_t, eta = wd(t), lr(t)
    assert np.all(np.isfinite(lam_t))
    normal = eta >= np.finfo(np.float64).tiny
    np.testing.assert_allclose(eta[normal] * lam_t[normal], 0.01 * 0.1, rtol=1e-10)  # (pow at t ~ 1e5: ~t ulp)
    assert np.all(lam_t[~normal] == 0.0) and np.any(~normal)
    steps = 3_000 if lr.params.get("gamma", 0.5) == 0.5 else 80_000
    for optimizer in ("gd", "adamw"):
        assert np.all(np.isfinite(fd.simulate(np.array([1.0]), lr, steps=steps, optimizer=optimizer,
                                              weight_decay=wd).w))
    assert np.isfinite(fd.expected_loss(np.array([1.0]), lr, steps=steps, weight_decay=wd, noise=0.1).final_loss)


def test_constant_shrinkage_of_a_multistep_to_0_is_0_there_not_inf():
    """A multistep whose rate underflows (1e-200 twice: 1e-201, then 0) gets lambda 0 from the
    level below float64's normal numbers, as step does: inf there made decoupled updates NaN."""
    ms, st = fd.multistep(0.1, 1e-200, [1, 2]), fd.step(0.1, 1e-200, 1)
    np.testing.assert_array_equal(fd.constant_shrinkage(ms, 0.01).table(4), fd.constant_shrinkage(st, 0.01).table(4))
    w = np.ones(4)
    for t in range(3):
        fd.sgd_step(w, np.ones(4), step=t, lr=ms, weight_decay=fd.constant_shrinkage(ms, 0.01), decoupled=True)
    assert np.isfinite(w).all()
    # where no level underflows: the multistep of the reciprocal, as before
    assert fd.constant_shrinkage(fd.multistep(0.1, 0.5, [3, 6]), 0.01).kind == "multistep"


def test_constant_shrinkage_tabulated_takes_a_grid_of_weight_decays_along_the_batch():
    """An array of weight decays is a batch of schedules on every path: on the tabulated one
    (cosine, warmup, ...) it lay along the steps, mixing the decays into one schedule."""
    wd = np.array([0.0, 0.01, 0.02, 0.03, 0.04])
    lr = fd.cosine(0.1, 8)
    lam = fd.constant_shrinkage(lr, wd, total_steps=4)
    assert lam.batch_shape == (5,)
    np.testing.assert_allclose(lam.table(4), wd[:, None] * 0.1 / lr.table(4), rtol=1e-15)
    lam = fd.constant_shrinkage(fd.stack([lr, fd.cosine(0.2, 8)]), wd[:, None], total_steps=4)  # (5, 1) x (2,)
    assert lam.batch_shape == (5, 2)
    with pytest.raises(ValueError, match=r"do not broadcast: lr's batch \(2,\), reference_lr \(3,\)"):
        fd.constant_shrinkage(fd.stack([lr, lr]), 0.01, total_steps=4, reference_lr=[0.1, 0.2, 0.3])


def test_batch_size_scaling_at_step_0_repeated_sizes_no_settings_and_tensors():
    """A target met at the start (0 steps) has no critical batch size (nan, was inf) and no
    slope (nan, was inf); a repeated batch size is refused by name (was a slope of -inf); no
    settings at all reach nothing (was NumPy's argmin error); a tensor comes back a tensor."""
    import torch

    s = fd.batch_size_scaling([1, 2, 4], [0, 5, 3])
    assert s.min_steps == 0.0 and math.isnan(s.critical_batch_size)
    assert math.isnan(s.slope[0]) and s.slope[1] == pytest.approx(np.log(3 / 5) / np.log(2))
    with pytest.raises(ValueError, match=r"batch_size must not repeat a batch size, got 2.0 more than once in \[1, 2, 2, 4\]"):
        fd.batch_size_scaling([1, 2, 2, 4], [40, 20, 19, 10])
    none = fd.batch_size_scaling([1.0, 2.0, 4.0], np.zeros((0, 3), np.int64))
    assert none.steps.tolist() == none.best.tolist() == [-1, -1, -1] and np.isnan(none.slope).all()
    assert math.isnan(none.critical_batch_size)
    t = fd.batch_size_scaling(torch.tensor([1.0, 2.0]), torch.tensor([10, 5]))
    assert all(isinstance(x, torch.Tensor) for x in (t.batch_size, t.steps, t.best, t.slope))
    assert t.steps.tolist() == [10, 5] and t.slope.tolist() == [pytest.approx(-1.0)] and t.critical_batch_size == 2.0


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "nesterov", "momentum_lr_in_buffer"])
def test_a_diverging_run_s_loss_is_inf_not_nan(optimizer):
    """E w² past float64's range was NaN (0 * inf: no noise beside a rate whose square overflows;
    inf - inf in the momentum rules' cross terms); steps_to_target reads it as not reached."""
    for lr, noise in ((1e300, 0.0), (5.0, 0.0), (5.0, 0.1)):
        res = fd.expected_loss([1.0, 0.01], lr, steps=3000, optimizer=optimizer, noise=noise, every=1000)
        assert not np.isnan(res.loss).any() and not np.isnan(res.second_moment).any(), (lr, noise)
        assert res.loss[-1] == np.inf and res.second_moment[0] == np.inf
        if lr == 5.0:
            assert np.isfinite(res.second_moment[1])  # the stable coordinate: 5 * 0.01 < 2
    assert fd.steps_to_target([1.0, 0.01], 5.0, 0.1, steps=300, optimizer=optimizer) == -1
