"""Scheduled momentum and Adam beta1 in fd.simulate: ``momentum=`` (the SGD family) and
``betas[0]`` (Adam / AdamW) as schedules, shared or one per trajectory, read at every
step like the rate; against the plain-loop oracle (fastdecay.reference), torch's
SGD / Adam / AdamW driven by OneCycleLR / CyclicLR with ``cycle_momentum=True``, and
the same run with the schedule shared or repeated per trajectory (bit for bit)."""

import re

import numpy as np
import pytest

import fastdecay as fd
from fastdecay.reference import simulate_quadratic

SGD_FAMILY = ["momentum", "momentum_lr_in_buffer", "nesterov"]
RTOL = 1e-10


def _close(got, want, rtol=RTOL, atol=1e-15):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want)
    scale = np.maximum(np.abs(want), atol / rtol)
    err = np.max(np.abs(got - want) / scale)
    assert err <= rtol, f"max relative error {err:.3g} > {rtol:g}"


def _oracle(lam, steps, schedules, momenta=None, betas=None, drops=(), **kw):
    """Final weights (n, d) of each trajectory from the oracle; ``schedules``, ``momenta``
    and ``betas`` are one value per trajectory (lists) or shared."""
    out = []
    for i in range(lam.shape[0]):
        pick = (lambda x: x[i] if isinstance(x, list) else x)
        extra = {}
        if momenta is not None:
            extra["momentum"] = pick(momenta)
        if betas is not None:
            extra["betas"] = (pick(betas), 0.999)
        w, _ = simulate_quadratic(lam[i], pick(schedules), steps=steps, drops=pick(drops), trajectory=i, **kw,
                                  **extra)
        out.append(w[-1])
    return np.array(out)


@pytest.mark.parametrize("optimizer", SGD_FAMILY)
@pytest.mark.parametrize("d", [1, 3])
def test_shared_momentum_schedule_matches_oracle(optimizer, d):
    steps = 300
    lam = np.linspace(0.05, 1.9, 7 * d).reshape(7, d)
    s = fd.one_cycle(0.4, steps)
    res = fd.simulate(lam, s, steps=steps, optimizer=optimizer, momentum=s.momentum, weight_decay=0.01, every=11)
    _close(res.w, _oracle(lam, steps, s, momenta=s.momentum, optimizer=optimizer, weight_decay=0.01))
    np.testing.assert_array_equal(res.lr, s.table(np.arange(0, steps + 1, 11))[None, :].repeat(7, 0))


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
@pytest.mark.parametrize("d", [1, 2])
def test_shared_beta1_schedule_matches_oracle(optimizer, d):
    steps = 250
    lam = np.linspace(0.05, 1.9, 5 * d).reshape(5, d)
    s = fd.one_cycle(0.05, steps, anneal_strategy="linear")
    res = fd.simulate(lam, s, steps=steps, optimizer=optimizer, betas=(s.momentum, 0.999), weight_decay=0.02)
    _close(res.w, _oracle(lam, steps, s, betas=s.momentum, optimizer=optimizer, weight_decay=0.02))


def _momentum_batch(n):
    """n momentum schedules of mixed kinds: cycled, constant, exponential, cosine."""
    kinds = [fd.one_cycle(0.3, 200).momentum, fd.constant(0.8), fd.exponential(0.95, gamma=0.995),
             fd.cyclic(0.01, 0.3, 17, base_momentum=0.7).momentum, fd.cosine(0.9, 150, min_lr=0.5)]
    return [kinds[i % len(kinds)] for i in range(n)]


@pytest.mark.parametrize("optimizer", SGD_FAMILY + ["adam", "adamw"])
@pytest.mark.parametrize("d", [1, 3])
@pytest.mark.parametrize("per_lr", [False, True])
def test_per_trajectory_momentum_matches_oracle(optimizer, d, per_lr):
    steps, n = 200, 9
    lam = np.linspace(0.05, 1.5, n * d).reshape(n, d)
    mom = _momentum_batch(n)
    lrs = [fd.exponential(0.3, gamma=g) for g in np.linspace(0.97, 0.999, n)] if per_lr else fd.constant(0.2)
    lr_arg = fd.stack(lrs) if per_lr else lrs
    adam = optimizer in ("adam", "adamw")
    kw = dict(betas=(fd.stack(mom), 0.999)) if adam else dict(momentum=fd.stack(mom))
    res = fd.simulate(lam, lr_arg, steps=steps, optimizer=optimizer, weight_decay=0.01, **kw)
    want = _oracle(lam, steps, lrs, optimizer=optimizer, weight_decay=0.01,
                   **(dict(betas=mom) if adam else dict(momenta=mom)))
    _close(res.w, want)


@pytest.mark.parametrize("optimizer", SGD_FAMILY)
@pytest.mark.parametrize("on_drop", ["keep", "reset", "rescale"])
@pytest.mark.parametrize("per_trajectory", [False, True])
def test_on_drop_with_scheduled_momentum_matches_oracle(optimizer, on_drop, per_trajectory):
    steps, n = 240, 6
    lam = np.linspace(0.1, 1.8, n)[:, None]
    lr = fd.multistep(0.3, 0.4, [50, 120, 200])
    cyc = fd.cyclic(0.01, 0.3, 23, base_momentum=0.6, max_momentum=0.95).momentum
    mom = fd.stack([cyc] * n) if per_trajectory else cyc
    res = fd.simulate(lam, lr, steps=steps, optimizer=optimizer, momentum=mom, on_drop=on_drop, every=10)
    _close(res.w, _oracle(lam, steps, lr, momenta=cyc, optimizer=optimizer, on_drop=on_drop,
                          drops=(50, 120, 200)))


@pytest.mark.parametrize("optimizer", SGD_FAMILY + ["adamw"])
@pytest.mark.parametrize("d", [1, 4])
@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_per_trajectory_copies_equal_the_shared_schedule_bit_for_bit(optimizer, d, noise):
    """The generic (per-trajectory) loops and the vector (shared) loops use one rule."""
    steps, n = 130, 11
    lam = np.linspace(0.05, 1.5, n * d).reshape(n, d)
    s = fd.one_cycle(0.3, steps)
    key = "betas" if optimizer == "adamw" else "momentum"
    wrap = (lambda m: (m, 0.999)) if optimizer == "adamw" else (lambda m: m)
    kw = dict(steps=steps, optimizer=optimizer, noise=noise, weight_decay=0.01, chunk_steps=40)
    shared = fd.simulate(lam, s, **kw, **{key: wrap(s.momentum)})
    per = fd.simulate(lam, s, **kw, **{key: wrap(fd.stack([s.momentum] * n))})
    np.testing.assert_array_equal(per.w, shared.w)
    # and the recording paths
    shared = fd.simulate(lam, s, every=7, **kw, **{key: wrap(s.momentum)})
    per = fd.simulate(lam, s, every=7, **kw, **{key: wrap(fd.stack([s.momentum] * n))})
    np.testing.assert_array_equal(per.w, shared.w)
    np.testing.assert_array_equal(per.loss, shared.loss)


@pytest.mark.parametrize("optimizer", SGD_FAMILY + ["adam"])
def test_a_constant_momentum_schedule_gives_the_number_s_bits(optimizer):
    lam = np.linspace(0.05, 1.5, 12).reshape(4, 3)
    s = fd.step(0.3, 0.5, 30)
    key = "betas" if optimizer == "adam" else "momentum"
    wrap = (lambda m: (m, 0.999)) if optimizer == "adam" else (lambda m: m)
    kw = dict(steps=100, optimizer=optimizer, on_drop="rescale")
    np.testing.assert_array_equal(fd.simulate(lam, s, **kw, **{key: wrap(fd.constant(0.85))}).w,
                                  fd.simulate(lam, s, **kw, **{key: wrap(0.85)}).w)
    per_constant = fd.simulate(lam, s, **kw, **{key: wrap(fd.constant(np.full(4, 0.85)))}).w
    np.testing.assert_array_equal(per_constant, fd.simulate(lam, s, **kw, **{key: wrap(0.85)}).w)


@pytest.mark.parametrize("optimizer", SGD_FAMILY)
def test_momentum_zero_is_gradient_descent(optimizer):
    lam = np.linspace(0.05, 1.5, 12).reshape(4, 3)
    gd = fd.simulate(lam, fd.cosine(0.3, 50), steps=50).w
    for zero in (0.0, fd.constant(0.0)):
        np.testing.assert_array_equal(fd.simulate(lam, fd.cosine(0.3, 50), steps=50, optimizer=optimizer,
                                                  momentum=zero).w, gd)


def test_an_array_of_momenta_is_a_batch_of_constants():
    lam = np.full((3, 1), 0.7)
    res = fd.simulate(lam, 0.1, steps=60, optimizer="momentum", momentum=np.array([0.0, 0.5, 0.9]))
    for i, m in enumerate([0.0, 0.5, 0.9]):
        np.testing.assert_array_equal(res.w[i], fd.simulate(lam[i], 0.1, steps=60, optimizer="momentum",
                                                            momentum=m).w)


def test_chunking_and_threads_do_not_change_scheduled_momentum_runs():
    lam = np.linspace(0.05, 1.5, 40).reshape(20, 2)
    mom = fd.stack(_momentum_batch(20))
    kw = dict(steps=150, optimizer="nesterov", momentum=mom, noise=0.05, seed=3)
    want = fd.simulate(lam, fd.one_cycle(0.3, 150), **kw).w
    np.testing.assert_array_equal(fd.simulate(lam, fd.one_cycle(0.3, 150), chunk_steps=17, threads=1, **kw).w, want)


# ----------------------------------------------------------------------------- torch


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_with_one_cycle_momentum_is_torch_onecyclelr(nesterov):
    torch = pytest.importorskip("torch")
    steps = 300
    lam = np.random.default_rng(3).uniform(0.01, 1.5, (23, 3))
    p = torch.nn.Parameter(torch.ones(23, 3, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=1e-3, foreach=False)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=steps, base_momentum=0.8,
                                                max_momentum=0.95)
    lam_t = torch.from_numpy(lam)
    for _ in range(steps):
        p.grad = lam_t * p.detach()
        opt.step()
        sched.step()
    s = fd.one_cycle(0.5, steps, base_momentum=0.8, max_momentum=0.95)
    res = fd.simulate(lam, s, steps=steps, optimizer="nesterov" if nesterov else "momentum", momentum=s.momentum,
                      weight_decay=1e-3)
    _close(res.w, p.detach().numpy(), rtol=1e-9)


@pytest.mark.parametrize("adamw", [False, True])
def test_adam_with_one_cycle_beta1_is_torch_onecyclelr(adamw):
    torch = pytest.importorskip("torch")
    steps = 250
    lam = np.random.default_rng(4).uniform(0.01, 1.5, (17, 2))
    p = torch.nn.Parameter(torch.ones(17, 2, dtype=torch.float64))
    make = torch.optim.AdamW if adamw else torch.optim.Adam
    opt = make([p], lr=1e-3, betas=(0.9, 0.99), weight_decay=1e-2, foreach=False)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=steps, three_phase=True)
    lam_t = torch.from_numpy(lam)
    for _ in range(steps):
        p.grad = lam_t * p.detach()
        opt.step()
        sched.step()
    s = fd.one_cycle(0.05, steps, three_phase=True)
    res = fd.simulate(lam, s, steps=steps, optimizer="adamw" if adamw else "adam", betas=(s.momentum, 0.99),
                      weight_decay=1e-2)
    _close(res.w, p.detach().numpy(), rtol=1e-9)


def test_sgd_with_cyclic_momentum_is_torch_cycliclr():
    torch = pytest.importorskip("torch")
    steps = 200
    lam = np.random.default_rng(5).uniform(0.01, 1.5, (13, 1))
    p = torch.nn.Parameter(torch.ones(13, 1, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, foreach=False)
    sched = torch.optim.lr_scheduler.CyclicLR(opt, base_lr=0.01, max_lr=0.4, step_size_up=13, mode="triangular2")
    lam_t = torch.from_numpy(lam)
    for _ in range(steps):
        p.grad = lam_t * p.detach()
        opt.step()
        sched.step()
    s = fd.cyclic(0.01, 0.4, 13, mode="triangular2")
    res = fd.simulate(lam, s, steps=steps, optimizer="momentum", momentum=s.momentum)
    _close(res.w, p.detach().numpy(), rtol=1e-9)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs, exc, needle", [
    (dict(optimizer="momentum", momentum=np.array([0.9, -0.1, 0.5, 0.5])), ValueError, "momentum"),
    (dict(optimizer="momentum", momentum="0.9"), TypeError, "momentum"),
    (dict(optimizer="adam", betas=(fd.constant(1.0), 0.999)), ValueError, r"betas\[0\]"),
    (dict(optimizer="adam", betas=(fd.constant(0.9), 1.5)), ValueError, r"betas\[1\]"),
    (dict(optimizer="momentum", momentum=fd.constant([0.9, 0.8, 0.7])), ValueError, "momentum"),
    (dict(optimizer="adamw", betas=(fd.constant([0.9, 0.8, 0.7]), 0.999)), ValueError, "betas"),
])
def test_bad_momentum_names_itself(kwargs, exc, needle):
    with pytest.raises(exc, match=needle):
        fd.simulate(np.ones((4, 2)), fd.constant(0.1), steps=10, **kwargs)


# ----------------------------------------------------------------------------- the curvature read in place


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("run_dtype", [np.float64, np.float32])
def test_a_float_curvature_array_is_read_where_it_is_never_written(dtype, run_dtype):
    """A float32 / float64 NumPy curvature is checked and read without a float64 copy: the
    same bits as the copied (list) input, the caller's array unchanged and still writeable,
    a strided view too; a non-finite one is still refused before any work."""
    lam = np.linspace(0.05, 1.5, 24, dtype=dtype).reshape(8, 3)
    kw = dict(steps=50, optimizer="nesterov", momentum=fd.one_cycle(0.3, 50).momentum, dtype=run_dtype)
    want = fd.simulate(lam.tolist(), fd.one_cycle(0.3, 50), **kw).w
    before = lam.copy()
    np.testing.assert_array_equal(fd.simulate(lam, fd.one_cycle(0.3, 50), **kw).w, want)
    np.testing.assert_array_equal(lam, before)
    assert lam.flags.writeable
    wide = np.zeros((8, 6), dtype=dtype)
    wide[:, ::2] = lam
    np.testing.assert_array_equal(fd.simulate(wide[:, ::2], fd.one_cycle(0.3, 50), **kw).w, want)
    lam[2, 1] = np.nan
    with pytest.raises(ValueError, match="curvature must be finite"):
        fd.simulate(lam, fd.one_cycle(0.3, 50), **kw)


# momenta that are 0 at some steps: a ramp from 0, and stretches of 0 between momentum
_ZERO_AT_TIMES = [fd.linear(0.0, 0.9, 10), fd.piecewise([5, 12, 21], [0.0, 0.9, 0.0, 0.8])]


def _sgd_step_loop(lam, lrs, momenta, steps, optimizer, weight_decay, noise=0.0, seed=0):
    """Final weights and losses of each trajectory (row of ``lam``) by ``fd.sgd_step`` on its own
    (torch's SGD, bit for bit: tests/test_updates.py): the rule the simulations take."""
    ws, losses = [], []
    for i in range(lam.shape[0]):
        w, buf = np.ones(lam.shape[1]), np.zeros(lam.shape[1])
        loss = [0.5 * np.sum(lam[i] * w * w)]
        for t in range(steps):
            g = lam[i] * w
            if noise:
                g = g + noise * np.array([fd.reference.philox_normal(seed, i, t, k) for k in range(lam.shape[1])])
            fd.sgd_step(w, g, step=t, lr=lrs[i], momentum=momenta[i], momentum_buffer=buf, weight_decay=weight_decay,
                        nesterov=optimizer == "nesterov", lr_in_buffer=optimizer == "momentum_lr_in_buffer")
            loss.append(0.5 * np.sum(lam[i] * w * w))
        ws.append(w)
        losses.append(loss)
    return np.array(ws), np.array(losses)


@pytest.mark.parametrize("optimizer", SGD_FAMILY)
@pytest.mark.parametrize("path", ["shared", "shared d=1", "per-trajectory lr", "per-trajectory momentum",
                                  "per-trajectory momentum d=3", "recorded", "noisy"])
def test_a_momentum_that_is_0_at_some_steps_takes_torch_s_plain_steps_on_every_path(optimizer, path):
    """Where the momentum is 0 the step is plain and the buffer is left as it is; the buffer
    starts (as the gradient, or η g in the lr-in-buffer form) at the first step whose
    momentum is not 0, as torch's SGD makes it: ``fd.simulate`` and ``fd.expected_loss``
    take ``fd.sgd_step``'s steps on every engine path, and the oracle says the same."""
    steps, d = 37, (1 if path in ("shared d=1", "per-trajectory lr", "per-trajectory momentum") else 3)
    lam = np.array([[0.5, 1.5, 3.0][:d], [2.0, 0.25, 1.0][:d]])
    n = lam.shape[0]
    shared_lr, shared_mom = 0.1, _ZERO_AT_TIMES[1]
    lrs, momenta = [shared_lr] * n, [shared_mom] * n
    lr, momentum = shared_lr, shared_mom
    if path == "per-trajectory lr":
        lrs = [0.1, 0.3]
        lr = fd.constant(np.array(lrs))
    if path.startswith("per-trajectory momentum"):
        momenta = _ZERO_AT_TIMES
        momentum = fd.stack(_ZERO_AT_TIMES)
    noise = 0.3 if path == "noisy" else 0.0
    every = 1 if path in ("recorded", "noisy") else None
    want_w, want_loss = _sgd_step_loop(lam, lrs, momenta, steps, optimizer, 0.01, noise=noise)
    res = fd.simulate(lam, lr, steps=steps, optimizer=optimizer, momentum=momentum, weight_decay=0.01, noise=noise,
                      every=every)
    np.testing.assert_array_equal(res.w, want_w)
    if every:
        _close(res.loss, want_loss, rtol=1e-14)
    w_oracle = _oracle(lam, steps, lrs, momenta=momenta, optimizer=optimizer, weight_decay=0.01, noise=noise)
    _close(w_oracle, want_w, rtol=1e-12)
    if not noise:  # the expected loss of a noiseless run is its loss
        expected = fd.expected_loss(lam, lr, steps=steps, optimizer=optimizer, momentum=momentum, weight_decay=0.01,
                                    every=1)
        _close(expected.loss, want_loss, rtol=1e-10)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "lion"])
@pytest.mark.parametrize("values", ["few", "each its own"])
def test_an_array_of_beta1s_is_a_batch_of_constants(optimizer, values):
    """betas[0] as an array (or list) is a batch of constants, as an array of momenta is: the bits
    of the same values as ``fd.constant``, broadcast with the curvatures; one at 1 or above, below
    0 or not finite is refused naming itself."""
    rng = np.random.default_rng(4)
    beta1 = np.resize([0.5, 0.9, 0.0, 0.95], 1_200) if values == "few" else rng.uniform(0.0, 0.99, 1_200)
    lam = rng.uniform(0.0, 2.0, (2, 1_200, 1))
    kw = dict(steps=40, optimizer=optimizer, weight_decay=0.01, noise=0.1, seed=1)
    as_array = fd.simulate(lam, 0.01, betas=(beta1, 0.99), **kw)
    as_schedule = fd.simulate(lam, 0.01, betas=(fd.constant(beta1), 0.99), **kw)
    np.testing.assert_array_equal(as_array.w, as_schedule.w)
    listed = fd.simulate(lam[:, :3], 0.01, betas=(beta1[:3].tolist(), 0.99), **kw)
    np.testing.assert_array_equal(listed.w, fd.simulate(lam[:, :3], 0.01, betas=(fd.constant(beta1[:3]), 0.99), **kw).w)
    for bad, needle in ((1.0, "betas[0] must be in [0, 1), got an array holding 1.0"),
                        (-0.5, "betas[0] must be >= 0"), (np.nan, "betas[0] must be a finite number")):
        with pytest.raises(ValueError, match=re.escape(needle)):
            fd.simulate(lam, 0.01, betas=(np.append(beta1[:-1], bad), 0.99), **kw)
    with pytest.raises(ValueError, match=re.escape("betas[1] must be in [0, 1), got 1.0")):
        fd.simulate(lam, 0.01, betas=(beta1, 1.0), **kw)


def test_a_batch_of_beta1s_is_checked_at_each_distinct_row():
    """A batch of beta1s over many trajectories (a grid of a few values, or each its own) is checked
    at its distinct rows, a constant's by its value: one member at 1.0 among 20,000 is refused
    naming its value, one at 0.99 runs; so does a member that reaches 1 later among constants."""
    values = np.resize([0.5, 0.9], 20_000)
    lam = np.ones((20_000, 1))
    values[12_345] = 1.0
    with pytest.raises(ValueError, match=r"betas\[0\] must be in \[0, 1\) at every step, got a schedule reaching "
                                         r"1\.0 at step 0"):
        fd.simulate(lam, 0.01, steps=5, optimizer="adamw", betas=(fd.constant(values), 0.999))
    values[12_345] = 0.99
    assert np.isfinite(fd.simulate(lam, 0.01, steps=5, optimizer="adamw", betas=(fd.constant(values), 0.999)).w).all()
    own = np.random.default_rng(0).uniform(0.0, 0.999, 20_000)  # each its own
    assert np.isfinite(fd.simulate(lam, 0.01, steps=5, optimizer="lion", betas=(fd.constant(own), 0.99)).w).all()
    batch = fd.stack([fd.constant(0.9)] * 50 + [fd.linear(0.5, 1.2, 50)] + [fd.constant(0.5)] * 50)
    with pytest.raises(ValueError, match="reaching 1.004 at step 36"):
        fd.simulate(np.ones((101, 1)), 0.01, steps=40, optimizer="adam", betas=(batch, 0.999))


def test_a_beta1_schedule_that_reaches_1_during_the_run_is_refused_naming_the_step():
    """betas[0] is checked at every step of the run, as the number is (a β1 of 1 makes Adam's
    bias correction 0 and the run NaN): a ramp that reaches 1 at step 10 runs for 10 steps
    and is refused for 11, naming the step; a batch names its first member's step; a cycle
    that stays below 1 runs however long (its bound is read from its parameters)."""
    ramp = fd.linear(0.9, 1.0, 10)
    res = fd.simulate([1.0, 2.0], 0.01, steps=10, optimizer="adam", betas=(ramp, 0.999))
    assert np.isfinite(res.w).all()
    with pytest.raises(ValueError, match=r"betas\[0\] must be in \[0, 1\) at every step, got a schedule reaching "
                                         r"1\.0 at step 10"):
        fd.simulate([1.0, 2.0], 0.01, steps=11, optimizer="adam", betas=(ramp, 0.999))
    batch = fd.stack([fd.constant(0.9), fd.linear(0.5, 1.2, 50)])
    with pytest.raises(ValueError, match="reaching 1.004 at step 36"):
        fd.simulate(np.ones((2, 1)), 0.01, steps=40, optimizer="adamw", betas=(batch, 0.999))
    with pytest.raises(ValueError, match="at step 70"):
        fd.simulate([1.0], 0.01, steps=100, optimizer="lion", betas=(fd.exponential(0.5, gamma=1.01), 0.99))
    from fastdecay import _rules

    assert _rules.first_step_reaching(fd.one_cycle(1.0, 10**9).momentum.rows(), 1.0, 0, 2**32) is None
    assert _rules.first_step_reaching(fd.exponential(0.5, gamma=1.0000001).rows(), 1.0, 0, 2**32) == 6931473
