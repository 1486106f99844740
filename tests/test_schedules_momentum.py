"""Scheduled momentum and Adam β1: ``momentum=`` (SGD) and ``betas[0]`` (Adam / AdamW)
take schedules, read in the kernel at the step like ``lr``; against torch's
``OneCycleLR`` / ``CyclicLR`` with ``cycle_momentum=True`` (which set the group's
momentum or β1 before each step) and against plain loops."""

import numpy as np
import pytest

import fastdecay as fd

torch = pytest.importorskip("torch")
import fastdecay.torch as fdt  # noqa: E402

from test_torch_adapters import _train  # noqa: E402

S = torch.optim.lr_scheduler


def model_and_data(dtype, seed=0):
    """A small model on the data of test_torch_adapters (13 features, one output)."""
    gen = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(13, 11), torch.nn.Tanh(), torch.nn.Linear(11, 1)).to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=dtype) * 0.5)
    return model, dtype


def train(model, dtype, opt, steps, sched=None):
    return torch.from_numpy(_train(model, opt, sched, steps=steps, dtype=dtype))


def tolerances(dtype):
    # float64: tight; float32: torch's own float32 tolerances (torch.testing defaults)
    return dict(rtol=1e-9, atol=1e-11) if dtype == torch.float64 else dict(rtol=1.3e-6, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_with_one_cycle_momentum_is_torch_onecyclelr(dtype, three_phase, nesterov):
    steps = 150
    model, dtype_ = model_and_data(dtype)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=1e-3)
    sched = S.OneCycleLR(opt, max_lr=0.1, total_steps=steps, three_phase=three_phase, base_momentum=0.8,
                         max_momentum=0.95)
    want = train(model, dtype_, opt, steps, sched)

    model, dtype_ = model_and_data(dtype)
    s = fd.one_cycle(0.1, steps, three_phase=three_phase, base_momentum=0.8, max_momentum=0.95)
    opt = fdt.SGD(model.parameters(), lr=s, momentum=s.momentum, nesterov=nesterov, weight_decay=1e-3)
    got = train(model, dtype_, opt, steps)
    torch.testing.assert_close(got, want, **tolerances(dtype))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("adamw", [False, True])
def test_adam_with_one_cycle_beta1_is_torch_onecyclelr(dtype, adamw):
    steps = 120
    make = torch.optim.AdamW if adamw else torch.optim.Adam
    model, dtype_ = model_and_data(dtype, seed=1)
    opt = make(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=1e-2)
    sched = S.OneCycleLR(opt, max_lr=1e-2, total_steps=steps, anneal_strategy="linear")
    want = train(model, dtype_, opt, steps, sched)

    model, dtype_ = model_and_data(dtype, seed=1)
    s = fd.one_cycle(1e-2, steps, anneal_strategy="linear")
    opt = (fdt.AdamW if adamw else fdt.Adam)(model.parameters(), lr=s, betas=(s.momentum, 0.99), weight_decay=1e-2)
    got = train(model, dtype_, opt, steps)
    torch.testing.assert_close(got, want, **tolerances(dtype))


def test_sgd_with_cyclic_momentum_is_torch_cycliclr():
    steps = 200
    model, dtype_ = model_and_data(torch.float64, seed=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = S.CyclicLR(opt, base_lr=0.01, max_lr=0.2, step_size_up=13, mode="triangular2")
    want = train(model, dtype_, opt, steps, sched)

    model, dtype_ = model_and_data(torch.float64, seed=2)
    s = fd.cyclic(0.01, 0.2, 13, mode="triangular2")
    got = train(model, dtype_, fdt.SGD(model.parameters(), lr=s, momentum=s.momentum), steps)
    torch.testing.assert_close(got, want, **tolerances(torch.float64))


def sgd_loop(w, grad_fn, lrs, momenta, dampening=0.0):
    """Heavy ball with a per-step momentum, written out (torch's SGD update)."""
    buf = None
    for t, (lr, mu) in enumerate(zip(lrs, momenta)):
        g = grad_fn(w)
        buf = g.copy() if buf is None else mu * buf + (1 - dampening) * g
        w = w - lr * buf
    return w


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sgd_step_momentum_schedule_against_a_loop(dtype):
    rng = np.random.default_rng(5)
    curvature = rng.uniform(0.1, 2.0, 41)
    lr = fd.cosine(0.2, 90)
    momentum = fd.tabulated(rng.uniform(0.0, 0.95, 90))
    w0 = rng.normal(size=41)
    w, buf = w0.astype(dtype), np.zeros(41, dtype)
    for t in range(90):
        fd.sgd_step(w, (curvature * w).astype(dtype), step=t, lr=lr, momentum=momentum, momentum_buffer=buf,
                    dampening=0.1)
    want = sgd_loop(w0, lambda v: curvature * v, lr.table(90), momentum.table(90), dampening=0.1)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(w, want, rtol=tol, atol=tol)


def test_adamw_step_beta1_schedule_is_torch_with_betas_set_each_step():
    rng = np.random.default_rng(6)
    beta1 = fd.cyclic(0.8, 0.95, 7).momentum * 1.0  # a product: any schedule works
    w = torch.tensor(rng.normal(size=23))
    p = torch.nn.Parameter(w.clone())
    opt = torch.optim.AdamW([p], lr=1e-2, betas=(0.9, 0.999), weight_decay=0.05)
    ours, m, v = w.numpy().copy(), np.zeros(23), np.zeros(23)
    for t in range(60):
        g = rng.normal(size=23)
        opt.param_groups[0]["betas"] = (beta1(t), 0.999)
        p.grad = torch.tensor(g)
        opt.step()
        fd.adamw_step(ours, g, m, v, step=t, lr=1e-2, betas=(beta1, 0.999), weight_decay=0.05)
    np.testing.assert_allclose(ours, p.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("nesterov", [False, True], ids=["heavy ball", "nesterov"])
@pytest.mark.parametrize("momentum", [fd.linear(0.0, 0.9, 10), fd.piecewise([5], [0.0, 0.8])],
                         ids=["ramp from 0", "0 for 5 steps"])
def test_a_momentum_schedule_that_starts_at_0_starts_the_buffer_where_torch_makes_it(momentum, nesterov):
    """torch's SGD makes the momentum buffer (a copy of the gradient) at the first step whose
    momentum is not 0; the buffer's content before that step is never read. With nesterov,
    torch's steps at momentum 0 are plain (its constructor wants momentum > 0, set here first)."""
    rng = np.random.default_rng(8)
    w0 = rng.normal(size=17)
    dampening = 0.0 if nesterov else 0.3
    p = torch.nn.Parameter(torch.tensor(w0))
    opt = torch.optim.SGD([p], lr=0.05, momentum=0.9 if nesterov else 0.0, dampening=dampening, nesterov=nesterov,
                          foreach=False)
    ours, buf = w0.copy(), np.full(17, 123.0)  # content that must not matter
    for t in range(40):
        g = rng.normal(size=17)
        opt.param_groups[0]["momentum"] = float(momentum(t))
        p.grad = torch.tensor(g)
        opt.step()
        fd.sgd_step(ours, g, step=t, lr=0.05, momentum=momentum, momentum_buffer=buf, dampening=dampening,
                    nesterov=nesterov)
        np.testing.assert_allclose(ours, p.detach().numpy(), rtol=1e-13, atol=1e-15)
    # fastdecay.torch.SGD with the schedule: the same
    q = torch.nn.Parameter(torch.tensor(w0))
    ours_opt = fdt.SGD([q], lr=0.05, momentum=momentum, dampening=dampening, nesterov=nesterov)
    rng = np.random.default_rng(8)
    rng.normal(size=17)
    for t in range(40):
        q.grad = torch.tensor(rng.normal(size=17))
        ours_opt.step()
    np.testing.assert_allclose(q.detach().numpy(), p.detach().numpy(), rtol=1e-13, atol=1e-15)


def test_a_scheduled_coefficient_is_checked_at_each_calls_step():
    """A schedule valid at step 0 that leaves its range later is refused at the first step
    where it does, naming the step, with nothing written."""
    w, m, v = np.ones(3), np.zeros(3), np.zeros(3)
    rising = (fd.linear(0.5, 1.5, 10), 0.99)
    for t in range(5):
        fd.adamw_step(w, np.ones(3), m, v, step=t, lr=0.1, betas=rising)
    before = (w.copy(), m.copy(), v.copy())
    with pytest.raises(ValueError, match=r"betas\[0\] must be in \[0, 1\), got 1.0 \(the betas\[0\] schedule's "
                                         r"value at step 5\)"):
        fd.adamw_step(w, np.ones(3), m, v, step=5, lr=0.1, betas=rising)
    with pytest.raises(ValueError, match=r"at step 7\)"):
        fd.lion_step(w, np.ones(3), m, step=7, lr=0.1, betas=rising)
    for a, b in zip((w, m, v), before):
        np.testing.assert_array_equal(a, b)


def test_momentum_switched_on_during_training_or_loaded_unmade_starts_like_torch():
    """A buffer made after step 0 (the group's momentum raised mid-run, or a torch checkpoint
    holding ``momentum_buffer: None``) starts from the gradient, with dampening, as torch's."""
    torch.manual_seed(0)
    ours = torch.nn.Parameter(torch.randn(6, dtype=torch.float64))
    theirs = torch.nn.Parameter(ours.detach().clone())
    opts = [fdt.SGD([ours], lr=0.1), torch.optim.SGD([theirs], lr=0.1, foreach=False)]
    for k in range(8):
        if k == 3:
            for opt in opts:
                opt.param_groups[0].update(momentum=0.9, dampening=0.5)
        g = torch.randn(6, dtype=torch.float64)
        ours.grad, theirs.grad = g.clone(), g.clone()
        for opt in opts:
            opt.step()
        torch.testing.assert_close(ours.detach(), theirs.detach(), rtol=1e-14, atol=1e-15)
    saved = {"state": {0: {"momentum_buffer": None}},
             "param_groups": [dict(lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.0, nesterov=False,
                                   maximize=False, foreach=None, differentiable=False, fused=None, params=[0])]}
    opts = [fdt.SGD([ours], lr=0.1, momentum=0.9), torch.optim.SGD([theirs], lr=0.1, momentum=0.9, foreach=False)]
    for opt in opts:
        opt.load_state_dict(saved)
    for _ in range(4):
        g = torch.randn(6, dtype=torch.float64)
        ours.grad, theirs.grad = g.clone(), g.clone()
        for opt in opts:
            opt.step()
        torch.testing.assert_close(ours.detach(), theirs.detach(), rtol=1e-14, atol=1e-15)


def test_scheduled_momentum_bad_input_changes_nothing():
    w, buf = np.ones(4), np.full(4, 7.0)
    batch = fd.constant([0.9, 0.8])
    with pytest.raises(ValueError, match="momentum must be a number or a scalar schedule"):
        fd.sgd_step(w, np.ones(4), step=0, lr=0.1, momentum=batch, momentum_buffer=buf)
    with pytest.raises(ValueError, match="momentum_buffer is required here"):
        fd.sgd_step(w, np.ones(4), step=0, lr=0.1, momentum=fd.constant(0.9))
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0, got momentum=0.0"):
        fd.sgd_step(w, np.ones(4), step=0, lr=0.1, momentum=0.0, momentum_buffer=buf, nesterov=True)
    with pytest.raises(ValueError, match="nesterov=True needs dampening == 0, got dampening=0.1"):
        fd.sgd_step(w, np.ones(4), step=0, lr=0.1, momentum=fd.linear(0.0, 0.9, 10), momentum_buffer=buf,
                    nesterov=True, dampening=0.1)
    with pytest.raises(ValueError, match=r"betas\[0\] must be"):
        fd.adamw_step(w, np.ones(4), np.zeros(4), np.zeros(4), step=0, lr=0.1, betas=(batch, 0.999))
    with pytest.raises(ValueError, match=r"betas\[0\] must be in \[0, 1\)"):
        fd.adamw_step(w, np.ones(4), np.zeros(4), np.zeros(4), step=0, lr=0.1, betas=(fd.constant(1.5), 0.999))
    assert np.all(w == 1.0) and np.all(buf == 7.0)


def test_torch_state_dict_round_trip_with_scheduled_momentum():
    model, dtype_ = model_and_data(torch.float64, seed=3)
    s = fd.one_cycle(0.2, 50)
    opt = fdt.SGD(model.parameters(), lr=s, momentum=s.momentum)
    train(model, dtype_, opt, 5)
    state = opt.state_dict()
    assert state["param_groups"][0]["momentum"] == s.momentum(5)
    again = fdt.SGD(model.parameters(), lr=0.1, momentum=0.5)
    again.load_state_dict(state)
    assert isinstance(again.param_groups[0]["momentum"], fd.Schedule)
    np.testing.assert_array_equal(again.param_groups[0]["momentum"].table(50), s.momentum.table(50))


_STARTS = [fd.piecewise([37], [0.0, 0.9]), fd.step(lr=0.0, gamma=0.5, period=10), fd.linear(0.0, 0.9, 10),
           fd.linear(0.0, 0.9, 10) * fd.piecewise([45], [0.0, 1.0]), fd.tabulated([0.0] * 50 + [0.5]),
           fd.warmup(fd.constant(0.9), 5), fd.cyclic(0.0, 0.9, 4), fd.constant(0.9), fd.constant(0.0),
           fd.join([fd.constant(0.0), fd.constant(0.0), fd.cosine(0.9, 100)], [20, 60]),
           fd.polynomial(0.0, 100, end_lr=0.5), fd.one_cycle(1.0, 100).momentum,
           fd.tabulated([0.0, 0.0, 0.0]) * fd.constant(0.5), fd.join([fd.tabulated([0.0] * 7), fd.cyclic(0.0, 0.5, 3)], [30])]


@pytest.mark.parametrize("momentum", _STARTS, ids=range(len(_STARTS)))
def test_the_momentum_buffer_starts_at_the_first_step_a_plain_scan_finds(momentum):
    """Where the buffer starts (its content ignored, as torch creates it) is the first step
    whose momentum is not 0: the segment-wise search gives a plain scan's answer."""
    from fastdecay import _rules

    table = np.ascontiguousarray(momentum.segments.reshape(1, -1, momentum.segments.shape[-1]))
    values = momentum(np.arange(200))
    for begin in (0, 3, 41):
        later = np.flatnonzero(values[begin:])
        expected = begin + int(later[0]) if later.size else None
        assert _rules.first_nonzero_step(table, begin, 200) == expected


def test_a_momentum_held_at_0_for_a_very_long_time_starts_without_a_scan_of_its_steps():
    """A momentum that is 0 up to step 10**12 (a run resumed there, or at 2**53 - 1) finds where
    its buffer starts from its segments, not step by step (which took hours), and starts
    there as torch does: the buffer's content ignored at that step."""
    from fastdecay import _rules

    _rules._MOMENTUM_STARTS.clear()
    momentum = fd.piecewise([10**12], [0.0, 0.9])
    for step, buf_after in ((10**12 - 1, 7.0), (10**12, 1.0), (10**12 + 1, 0.9 + 1.0)):
        w, buf = np.ones(3), np.full(3, 7.0)
        if step == 10**12 + 1:
            buf = np.ones(3)  # the buffer made at 10**12
        fd.sgd_step(w, np.ones(3), step=step, lr=0.1, momentum=momentum, momentum_buffer=buf)
        assert np.array_equal(buf, np.full(3, buf_after)), step
    w, buf = np.ones(3), np.zeros(3)
    fd.sgd_step(w, np.ones(3), step=2**53 - 1, lr=0.1, momentum=fd.step(lr=0.0, gamma=0.5, period=10),
                momentum_buffer=buf)  # a momentum of 0 throughout: plain steps
    assert np.array_equal(w, np.full(3, 0.9)) and not buf.any()
