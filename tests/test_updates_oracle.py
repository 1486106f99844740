"""What torch lacks, against the plain-loop oracle (fastdecay.reference): scheduled weight
decay (increasing too), constant shrinkage, lr_in_buffer, on_drop at learning-rate drops."""

import numpy as np
import pytest

import fastdecay as fd
from fastdecay import reference as ref

STEPS = 300


def _problem(n, seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 3.0, n), rng.normal(size=n)


def _close(ours, expected):
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-10 * np.max(np.abs(expected)))


def _run_sgd(curv, w0, lr, wd, steps=STEPS, dtype=np.float64, **kw):
    w = w0.astype(dtype)
    buf = np.full_like(w, np.nan)
    for t in range(steps):
        fd.sgd_step(w, curv.astype(dtype) * w, step=t, lr=lr, weight_decay=wd, momentum_buffer=buf, **kw)
    return w


def _run_adam(curv, w0, lr, wd, steps=STEPS, **kw):
    w = w0.copy()
    m, v, vmax = (np.full_like(w, np.nan) for _ in range(3))
    for t in range(steps):
        fd.adamw_step(w, curv * w, m, v, step=t, lr=lr, weight_decay=wd, max_exp_avg_sq=vmax, **kw)
    return w


def _rates(s, steps=STEPS):
    return ref.schedule_lr(s, np.arange(steps)) if isinstance(s, fd.Schedule) else np.full(steps, float(s))


def _drops(s, steps=STEPS):
    """Steps where a step/multistep/piecewise schedule falls (from its closed form, not the kernel)."""
    r = _rates(s, steps)
    return [t for t in range(1, steps) if r[t] < r[t - 1]]


WD_SCHEDULES = {
    "linear_up": fd.linear(0.0, 0.2, 200),  # Megatron-style increasing weight decay
    "cosine_down": fd.cosine(0.1, STEPS),
    "shrinkage_exp": fd.constant_shrinkage(fd.exponential(0.05, gamma=0.995), 0.02),
    "step_up": fd.step(0.01, 2.0, 100),
}


@pytest.mark.parametrize("wd_name", list(WD_SCHEDULES))
@pytest.mark.parametrize("decoupled", [True, False])
def test_scheduled_weight_decay_sgd(wd_name, decoupled):
    curv, w0 = _problem(257, 1)
    lr, wd = fd.exponential(0.05, gamma=0.995), WD_SCHEDULES[wd_name]
    ours = _run_sgd(curv, w0, lr, wd, momentum=0.9, decoupled=decoupled)
    expected = ref.sgd_trajectory(w0, lambda w, t: curv * w, _rates(lr), weight_decays=_rates(wd), momentum=0.9,
                                  decoupled=decoupled)[-1]
    _close(ours, expected)


@pytest.mark.parametrize("wd_name", list(WD_SCHEDULES))
@pytest.mark.parametrize("decoupled, amsgrad", [(True, False), (False, False), (True, True)])
def test_scheduled_weight_decay_adam(wd_name, decoupled, amsgrad):
    curv, w0 = _problem(257, 2)
    lr, wd = fd.warmup(fd.cosine(0.01, STEPS), 30), WD_SCHEDULES[wd_name]
    ours = _run_adam(curv, w0, lr, wd, decoupled=decoupled, amsgrad=amsgrad)
    expected = ref.adamw_trajectory(w0, lambda w, t: curv * w, _rates(lr), weight_decays=_rates(wd),
                                    decoupled=decoupled, amsgrad=amsgrad)[-1]
    _close(ours, expected)


def test_constant_shrinkage_keeps_the_decoupled_shrink_constant():
    """With constant_shrinkage the product eta_t * lambda_t, hence the AdamW shrink, never moves."""
    for lr, kw in [
        (fd.exponential(0.1, gamma=0.99), {}),
        (fd.exponential(0.1, gamma=0.9, decay_steps=7, staircase=True), {}),
        (fd.step(0.1, 0.5, 30), {}),
        (fd.multistep(0.1, 0.1, [50, 120]), {}),
        (fd.piecewise([40, 90], [0.1, 0.03, 0.001]), {}),
        (fd.inverse_time(0.1, 0.05), {}),
        (fd.inverse_time(0.1, 0.5, decay_steps=10, staircase=True), {}),
        (fd.cosine(0.1, 250, min_lr=1e-3), {"total_steps": 300}),
        (fd.warmup(fd.cosine(0.1, 200, min_lr=1e-4), 20, start_lr=1e-3), {"total_steps": 300}),
        (fd.one_cycle(0.1, 300), {"total_steps": 300}),
    ]:
        wd = fd.constant_shrinkage(lr, 0.02, **kw)
        t = np.arange(STEPS)
        np.testing.assert_allclose(lr(t) * wd(t), 0.02 * lr(0), rtol=1e-12, err_msg=repr(lr))


def test_constant_shrinkage_closed_forms_and_batches():
    wd = fd.constant_shrinkage(fd.exponential(0.1, rate=0.01), 1e-3)
    assert wd.segments.shape[-2] == 2   # the growing exponential, then 0 where the rate is no normal number
    np.testing.assert_allclose(wd(np.arange(100)), 1e-3 * np.exp(0.01 * np.arange(100)), rtol=1e-12)
    assert fd.constant_shrinkage(fd.step(0.1, 0.5, 10), 1e-3).segments.shape[-2] == 2
    assert fd.constant_shrinkage(0.1, 1e-3)(1000) == 1e-3
    batch = fd.exponential(0.1, gamma=np.array([0.9, 0.99]))
    wd = fd.constant_shrinkage(batch, 1e-2)
    assert wd.batch_shape == (2,)
    np.testing.assert_allclose(batch.table(50) * wd.table(50), 1e-3, rtol=1e-12)
    # a cosine to 0: lambda is 0 where eta is 0, and a held value after the table
    lr = fd.cosine(0.1, 10)
    wd = fd.constant_shrinkage(lr, 1e-2, total_steps=12)
    assert wd(10) == 0.0 and wd(500) == 0.0
    np.testing.assert_allclose(lr(np.arange(10)) * wd(np.arange(10)), 1e-3, rtol=1e-12)
    # reference_lr: the peak after a warmup from zero
    lr = fd.warmup(fd.constant(0.1), 5)
    wd = fd.constant_shrinkage(lr, 1e-2, total_steps=10, reference_lr=0.1)
    np.testing.assert_allclose(lr(np.arange(1, 10)) * wd(np.arange(1, 10)), 1e-3, rtol=1e-12)


def test_constant_shrinkage_rejects():
    with pytest.raises(ValueError, match="total_steps"):
        fd.constant_shrinkage(fd.cosine(0.1, 100), 1e-2)
    with pytest.raises(ValueError, match="weight_decay"):
        fd.constant_shrinkage(fd.cosine(0.1, 100), -1.0, total_steps=10)
    with pytest.raises(ValueError, match="lr"):
        fd.constant_shrinkage(-0.1, 1e-2)


LR_WITH_DROPS = {
    "step": fd.step(0.05, 0.3, 60),
    "multistep": fd.multistep(0.05, 0.2, [70, 150, 151]),
    "piecewise": fd.piecewise([50, 120, 200], [0.05, 0.08, 0.01, 0.002]),  # a rise, then falls
    "staircase_exp": fd.exponential(0.05, gamma=0.5, decay_steps=75, staircase=True),
}


@pytest.mark.parametrize("lr_name", list(LR_WITH_DROPS))
@pytest.mark.parametrize("on_drop", ["keep", "reset", "rescale"])
@pytest.mark.parametrize("lr_in_buffer, nesterov", [(False, False), (True, False), (True, True), (False, True)])
def test_momentum_at_lr_drops(lr_name, on_drop, lr_in_buffer, nesterov):
    curv, w0 = _problem(257, 3)
    lr = LR_WITH_DROPS[lr_name]
    drops = _drops(lr)
    assert drops  # the schedule really drops inside the run
    kw = dict(momentum=0.9, nesterov=nesterov, lr_in_buffer=lr_in_buffer, on_drop=on_drop)
    ours = _run_sgd(curv, w0, lr, 0.01, **kw)
    expected = ref.sgd_trajectory(w0, lambda w, t: curv * w, _rates(lr), weight_decays=0.01, drops=drops, **kw)[-1]
    _close(ours, expected)


def test_lr_in_buffer_with_dampening_and_a_constant_rate_is_torch_heavy_ball():
    """With a constant rate the buffer form is the same iteration as torch's (up to rounding)."""
    curv, w0 = _problem(257, 4)
    a = _run_sgd(curv, w0, 0.05, 0.0, momentum=0.8, dampening=0.25, lr_in_buffer=True)
    b = _run_sgd(curv, w0, 0.05, 0.0, momentum=0.8, dampening=0.25)
    _close(a, b)


def test_on_drop_changes_only_what_it_should():
    """keep == plain heavy ball; reset and rescale differ from keep only after the first drop."""
    curv, w0 = _problem(101, 5)
    lr = fd.step(0.05, 0.1, 40)
    keep = _run_sgd(curv, w0, lr, 0.0, steps=40, momentum=0.9)
    for on_drop in ("reset", "rescale"):
        assert np.array_equal(_run_sgd(curv, w0, lr, 0.0, steps=40, momentum=0.9, on_drop=on_drop), keep)
        assert not np.array_equal(_run_sgd(curv, w0, lr, 0.0, steps=41, momentum=0.9, on_drop=on_drop),
                                  _run_sgd(curv, w0, lr, 0.0, steps=41, momentum=0.9))
    # a smooth exponential never drops discontinuously: on_drop changes nothing
    smooth = fd.exponential(0.05, gamma=0.97)
    base = _run_sgd(curv, w0, smooth, 0.0, steps=100, momentum=0.9)
    for on_drop in ("reset", "rescale"):
        assert np.array_equal(_run_sgd(curv, w0, smooth, 0.0, steps=100, momentum=0.9, on_drop=on_drop), base)


def test_float32_tracks_the_oracle():
    """float32 kernels follow the float64 oracle to float32 accuracy on the schedule features."""
    curv, w0 = _problem(4097, 6)
    lr = fd.step(0.05, 0.3, 60)
    kw = dict(momentum=0.9, lr_in_buffer=True, on_drop="rescale", decoupled=True)
    ours = _run_sgd(curv, w0, lr, fd.linear(0.0, 0.1, 200), dtype=np.float32, **kw)
    expected = ref.sgd_trajectory(w0, lambda w, t: curv * w, _rates(lr), weight_decays=_rates(fd.linear(0.0, 0.1, 200)),
                                  drops=_drops(lr), **kw)[-1]
    assert np.linalg.norm(ours - expected) <= 1e-5 * np.linalg.norm(expected)
