"""fastdecay.torch: the optimizers train a model to torch's weights, resume bit-identically,
work with GradScaler; LRScheduler gives the closed form at any step, resumed or not."""

import copy
import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fastdecay as fd  # noqa: E402
from fastdecay.torch import SGD, Adam, AdamW, LRScheduler  # noqa: E402

STEPS = 120
pytestmark = pytest.mark.usefixtures("one_torch_thread")



def _model(dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(13, 31), torch.nn.Tanh(), torch.nn.Linear(31, 7),
                               torch.nn.Tanh(), torch.nn.Linear(7, 1)).to(dtype)


def _data(dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 13, generator=g, dtype=dtype)
    return x, torch.sin(x.sum(1, keepdim=True))


def _train(model, opt, sched=None, steps=STEPS, dtype=torch.float64):
    x, y = _data(dtype)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        if sched is not None:
            sched.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()]).numpy()


def _close(a, b, rtol=1e-10):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.max(np.abs(b)))


def _groups(model, **extra):
    """Two param groups: weights, and biases with their own settings."""
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    return [{"params": weights}, {"params": biases, **extra}]


@pytest.mark.parametrize("kw", [
    dict(momentum=0.9, weight_decay=1e-3),
    dict(momentum=0.9, nesterov=True, weight_decay=1e-3),
    dict(momentum=0.8, dampening=0.2, maximize=False),
    dict(),
])
def test_sgd_trains_like_torch_with_torch_schedulers(kw):
    ours_model, ref_model = _model(), _model()
    ours = SGD(_groups(ours_model, lr=0.05), lr=0.1, foreach=False, **kw)
    ref = torch.optim.SGD(_groups(ref_model, lr=0.05), lr=0.1, foreach=False, **kw)
    a = _train(ours_model, ours, torch.optim.lr_scheduler.StepLR(ours, 30, 0.5))
    b = _train(ref_model, ref, torch.optim.lr_scheduler.StepLR(ref, 30, 0.5))
    _close(a, b)


@pytest.mark.parametrize("cls, kw", [
    ("AdamW", dict()),
    ("AdamW", dict(weight_decay=0.1, amsgrad=True)),
    ("Adam", dict(weight_decay=1e-2)),
    ("AdamW", dict(betas=(0.8, 0.99), eps=1e-6, maximize=False)),
])
def test_adamw_trains_like_torch_with_torch_schedulers(cls, kw):
    ours_model, ref_model = _model(), _model()
    ours = AdamW(_groups(ours_model, lr=3e-3), lr=1e-2, decoupled=cls == "AdamW", **kw)
    ref = getattr(torch.optim, cls)(_groups(ref_model, lr=3e-3), lr=1e-2, foreach=False, **kw)
    a = _train(ours_model, ours, torch.optim.lr_scheduler.CosineAnnealingLR(ours, STEPS))
    b = _train(ref_model, ref, torch.optim.lr_scheduler.CosineAnnealingLR(ref, STEPS))
    _close(a, b)


def test_schedules_inside_the_optimizer_equal_torch_schedulers():
    ours_model, ref_model = _model(), _model()
    ours = SGD(ours_model.parameters(), lr=fd.step(0.1, 0.5, 30), momentum=0.9)
    ref = torch.optim.SGD(ref_model.parameters(), lr=0.1, momentum=0.9, foreach=False)
    _close(_train(ours_model, ours), _train(ref_model, ref, torch.optim.lr_scheduler.StepLR(ref, 30, 0.5)))
    ours_model, ref_model = _model(), _model()
    ours = AdamW(ours_model.parameters(), lr=fd.cosine(1e-2, STEPS))
    ref = torch.optim.AdamW(ref_model.parameters(), lr=1e-2, foreach=False)
    _close(_train(ours_model, ours),
           _train(ref_model, ref, torch.optim.lr_scheduler.CosineAnnealingLR(ref, STEPS)))


def test_float32_model_matches_torch_float32():
    ours_model, ref_model = _model(torch.float32), _model(torch.float32)
    ours = AdamW(ours_model.parameters(), lr=1e-2)
    ref = torch.optim.AdamW(ref_model.parameters(), lr=1e-2, foreach=False)
    _close(_train(ours_model, ours, dtype=torch.float32), _train(ref_model, ref, dtype=torch.float32), rtol=1e-4)


def test_scheduled_weight_decay_matches_the_oracle_step_by_step():
    """A weight-decay schedule in the optimizer is the one fd.adamw_step reads (torch has none)."""
    model = _model()
    lr, wd = fd.exponential(1e-2, gamma=0.99), fd.constant_shrinkage(fd.exponential(1e-2, gamma=0.99), 0.05)
    opt = AdamW(model.parameters(), lr=lr, weight_decay=wd)
    mirror = [p.detach().clone().numpy() for p in model.parameters()]
    state = [[np.zeros_like(w), np.zeros_like(w)] for w in mirror]
    x, y = _data()
    for t in range(30):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        grads = [p.grad.numpy().copy() for p in model.parameters()]
        opt.step()
        for w, g, (m, v) in zip(mirror, grads, state):
            fd.adamw_step(w, g, m, v, step=t, lr=lr(t), weight_decay=wd(t))
        # the mirror evaluates the gradient at the adapter's weights: copy them back
        for w, p in zip(mirror, model.parameters()):
            assert np.array_equal(w, p.detach().numpy())


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=fd.multistep(0.1, 0.1, [7]), momentum=0.9, nesterov=True,
                   weight_decay=fd.linear(0.0, 1e-2, 20), on_drop="rescale", lr_in_buffer=True),
    lambda ps: AdamW(ps, lr=fd.warmup(fd.cosine(1e-2, 30), 5), weight_decay=0.05, amsgrad=True),
])
def test_state_dict_round_trip_resumes_bit_identically(make):
    model = _model()
    opt = make(model.parameters())
    _train(model, opt, steps=10)
    saved_model = copy.deepcopy(model.state_dict())
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    uninterrupted = _train(model, opt, steps=10)

    resumed_model = _model(seed=123)
    resumed_model.load_state_dict(saved_model)
    resumed = make(resumed_model.parameters())
    buffer.seek(0)
    resumed.load_state_dict(torch.load(buffer, weights_only=False))
    assert np.array_equal(_train(resumed_model, resumed, steps=10), uninterrupted)


def test_state_uses_torch_keys():
    model = _model()
    opt = AdamW(model.parameters(), amsgrad=True)
    _train(model, opt, steps=1)
    ref_model = _model()
    ref = torch.optim.AdamW(ref_model.parameters(), amsgrad=True)
    _train(ref_model, ref, steps=1)
    assert set(opt.state_dict()["state"][0]) == set(ref.state_dict()["state"][0])
    # and torch's AdamW carries on from our state (its own keys, its own step tensor)
    ref.load_state_dict(opt.state_dict())
    m2 = _model()
    opt2 = SGD(m2.parameters(), momentum=0.9)
    _train(m2, opt2, steps=1)
    assert set(opt2.state_dict()["state"][0]) == {"step", "momentum_buffer"}


def test_grad_scaler_skips_inf_steps_and_unscales():
    model, ref_model = _model(torch.float32), _model(torch.float32)
    opt = AdamW(model.parameters(), lr=1e-2)
    ref = AdamW(ref_model.parameters(), lr=1e-2)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    x, y = _data(torch.float32)
    for t in range(5):
        for m, o, use in ((model, opt, True), (ref_model, ref, False)):
            o.zero_grad()
            loss = torch.nn.functional.mse_loss(m(x), y)
            if use:
                scaler.scale(loss).backward()
                scaler.step(o)
                scaler.update()
            else:
                loss.backward()
                o.step()
    a = torch.cat([p.detach().flatten() for p in model.parameters()])
    b = torch.cat([p.detach().flatten() for p in ref_model.parameters()])
    assert torch.equal(a, b)  # 1024 is a power of two: unscaling is exact
    # an inf gradient: nothing moves, not the weights, the moments or the step count
    before = copy.deepcopy(opt.state_dict()), [p.detach().clone() for p in model.parameters()]
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    scaler.scale(loss).backward()
    next(model.parameters()).grad[0, 0] = float("inf")
    scaler.step(opt)
    scaler.update()
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before[1]))
    after = opt.state_dict()["state"]
    for k, st in before[0]["state"].items():
        assert all(torch.equal(st[key], after[k][key]) for key in st)


def test_lr_scheduler_matches_torch_and_resumes_exactly():
    schedule = fd.step(0.1, 0.5, 7)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    ref_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    ours = LRScheduler(opt, schedule)
    ref = torch.optim.lr_scheduler.StepLR(ref_opt, 7, 0.5)
    seen = []
    for _ in range(40):
        assert ours.get_last_lr() == pytest.approx(ref.get_last_lr(), rel=1e-15)
        seen.append(opt.param_groups[0]["lr"])
        opt.step(), ref_opt.step()
        ours.step(), ref.step()
    assert seen == [schedule(t) for t in range(40)]
    # resume from the scheduler's state dict at step 23
    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = LRScheduler(opt2, schedule)
    for _ in range(23):
        opt2.step()
        sched.step()
    state = sched.state_dict()
    opt3 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    resumed = LRScheduler(opt3, schedule)
    resumed.load_state_dict(state)
    for t in range(24, 60):
        opt3.step()
        resumed.step()
        assert opt3.param_groups[0]["lr"] == schedule(t)
    # or constructed at last_epoch=k (torch needs initial_lr in the groups)
    opt4 = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "initial_lr": 0.1}], lr=0.1)
    at = LRScheduler(opt4, schedule, last_epoch=30)
    assert opt4.param_groups[0]["lr"] == schedule(31)
    assert at.last_epoch == 31


def test_lr_scheduler_one_schedule_per_group_and_bad_input():
    p, q = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p]}, {"params": [q]}], lr=1.0)
    LRScheduler(opt, [fd.constant(0.1), fd.exponential(0.2, gamma=0.5)])
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.2]
    with pytest.raises(ValueError, match="schedule"):
        LRScheduler(opt, [fd.constant(0.1)])
    with pytest.raises(TypeError, match="schedule"):
        LRScheduler(opt, 0.1)


def test_adapters_refuse_bad_hyperparameters():
    ps = _model().parameters
    with pytest.raises(ValueError, match="lr"):
        SGD(ps(), lr=-1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        AdamW(ps(), weight_decay=fd.exponential(0.1, gamma=[0.5, 0.9]))
    with pytest.raises(ValueError, match="nesterov"):
        SGD(ps(), lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        AdamW(ps(), betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="differentiable"):
        AdamW(ps(), differentiable=True)
    # the constructors run the functions' own checks (fastdecay.updates), at construction
    with pytest.raises(ValueError, match="momentum"):
        SGD(ps(), lr=0.1, momentum=-0.5)
    with pytest.raises(TypeError, match="momentum"):
        SGD(ps(), lr=0.1, momentum="0.9")
    with pytest.raises(ValueError, match="on_drop"):
        SGD(ps(), lr=0.1, momentum=0.9, on_drop="zero")
    with pytest.raises(ValueError, match="eps"):
        AdamW(ps(), eps=float("inf"))
    with pytest.raises(TypeError, match="betas"):
        AdamW(ps(), betas=(0.9,))


def _snapshot(model, opt):
    """Everything a step could write: parameters, the state (buffers and step counts)."""
    params = [p.detach().clone() for p in model.parameters()]
    state = {id(p): {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in s.items()}
             for p, s in opt.state.items()}
    return params, state


def _assert_unchanged(model, opt, snapshot):
    params, state = snapshot
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), params))
    assert {id(p) for p in opt.state} == set(state)
    for p, s in opt.state.items():
        assert set(s) == set(state[id(p)])
        for k, v in s.items():
            if isinstance(v, torch.Tensor):  # exactly equal, a NaN (a bad step count) to a NaN
                torch.testing.assert_close(v, state[id(p)][k], rtol=0, atol=0, equal_nan=True)
            else:
                assert v == state[id(p)][k]


@pytest.mark.parametrize("cls", [SGD, AdamW])
def test_a_refused_step_changes_nothing_in_any_group(cls):
    """A bad tensor in the second group is found before the first group is touched."""
    model = _model()
    opt = cls(_groups(model, lr=0.05), lr=0.1, **({"momentum": 0.9} if cls is SGD else {}))
    _train(model, opt, steps=3)
    bias = opt.param_groups[1]["params"][0]
    key = "momentum_buffer" if cls is SGD else "exp_avg_sq"
    opt.state[bias][key] = torch.zeros(bias.numel() + 1, dtype=bias.dtype)  # a state that does not fit
    x, y = _data()
    opt.zero_grad()
    torch.nn.functional.mse_loss(model(x), y).backward()
    before = _snapshot(model, opt)
    with pytest.raises(ValueError, match=rf"the {key} state of param_groups\[1\]\.params\[0\] must have the shape"):
        opt.step()
    _assert_unchanged(model, opt, before)


def test_a_refused_first_step_creates_no_state():
    """Fresh optimizer, a parameter the kernels cannot take in group 1: no state appears in group 0."""
    model = _model()
    odd = torch.nn.Parameter(torch.zeros(3, dtype=torch.complex128))
    opt = AdamW([{"params": list(model.parameters())}, {"params": [torch.nn.Parameter(torch.zeros(2)), odd]}])
    for p in chain_params(opt):
        p.grad = torch.ones_like(p)
    before = _snapshot(model, opt)
    with pytest.raises(TypeError, match=r"param_groups\[1\]\.params\[1\] must be float"):
        opt.step()
    _assert_unchanged(model, opt, before)
    assert len(opt.state) == 0


def test_a_bad_option_set_on_a_group_is_refused_before_any_write():
    model = _model()
    opt = SGD(_groups(model, lr=0.05), lr=0.1, momentum=0.9)
    _train(model, opt, steps=2)
    opt.param_groups[1]["lr"] = -1.0  # set by hand, after construction
    before = _snapshot(model, opt)
    with pytest.raises(ValueError, match=r"param_groups\[1\]: lr must be"):
        opt.step()
    _assert_unchanged(model, opt, before)
    opt.param_groups[1]["lr"] = 0.05
    opt.param_groups[1]["momentum"] = "0.9"
    with pytest.raises(TypeError, match=r"param_groups\[1\]: momentum must be a real number"):
        opt.step()
    _assert_unchanged(model, opt, before)


def test_an_option_element_in_an_error_is_not_taken_for_a_tensor():
    model = _model()
    opt = Adam(_groups(model, lr=0.05), lr=0.1)
    _train(model, opt, steps=1)
    opt.param_groups[1]["betas"] = (1.5, 0.99)  # set by hand
    before = _snapshot(model, opt)
    with pytest.raises(ValueError, match=r"^param_groups\[1\]: betas\[0\] must be in \[0, 1\), got 1.5$"):
        opt.step()
    _assert_unchanged(model, opt, before)


@pytest.mark.parametrize("count, error, match", [
    (torch.tensor(2.5), ValueError, "must hold a whole number of steps from 0 to 2\\*\\*53, got 2.5"),
    (torch.tensor(float("nan")), ValueError, "must hold a whole number of steps .*got nan"),
    (torch.tensor(float("inf")), ValueError, "must hold a whole number of steps .*got inf"),
    (torch.tensor(-1.0), ValueError, "must hold a whole number of steps .*got -1.0"),
    (2, TypeError, "must be a 0-d tensor .*got int: 2"),
])
def test_a_step_count_set_by_hand_is_checked_by_name(count, error, match):
    model = _model()
    opt = AdamW(_groups(model, lr=0.05), lr=0.1)
    _train(model, opt, steps=2)
    opt.state[opt.param_groups[1]["params"][0]]["step"] = count
    before = _snapshot(model, opt)
    with pytest.raises(error, match=r"the step state of param_groups\[1\]\.params\[0\] " + match):
        opt.step()
    _assert_unchanged(model, opt, before)


@pytest.mark.parametrize("cls", [SGD, AdamW])
def test_a_parameter_transposed_in_place_keeps_following_torch(cls):
    """``p.data = p.data.t()`` keeps the data pointer: the step after it must not reuse the
    layout of the steps before it."""
    torch.manual_seed(0)
    ours = torch.nn.Parameter(torch.randn(4, 4, dtype=torch.float64))
    theirs = torch.nn.Parameter(ours.detach().clone())
    kw = {"momentum": 0.9} if cls is SGD else {}
    opts = [cls([ours], lr=0.1, **kw), getattr(torch.optim, cls.__name__)([theirs], lr=0.1, foreach=False, **kw)]
    for k in range(6):
        if k == 3:
            ours.data, theirs.data = ours.data.t(), theirs.data.t()
        g = torch.randn(4, 4, dtype=torch.float64)
        ours.grad, theirs.grad = g.clone(), g.clone()
        for opt in opts:
            opt.step()
        torch.testing.assert_close(ours.detach(), theirs.detach(), rtol=1e-14, atol=1e-15)


def test_a_parameter_shrunk_in_place_under_a_kept_gradient_is_refused():
    """A parameter made smaller at the same address while its old gradient object is kept
    (``zero_grad(set_to_none=False)``): refused by name, as torch refuses it, never written
    through the old size."""
    w = torch.nn.Parameter(torch.zeros(10))
    opt = SGD([w], lr=1.0)
    w.grad = torch.ones(10)
    opt.step()
    opt.step()  # the same gradient object: the plan's fast path
    w.data = w.data[:5]
    storage = torch.tensor([]).set_(w.untyped_storage()).clone()
    with pytest.raises(ValueError, match=r"param_groups\[0\]\.params\[0\]\.grad must have the shape of its parameter"):
        opt.step()
    assert torch.equal(torch.tensor([]).set_(w.untyped_storage()), storage)


def test_sparse_gradient_refused_naming_the_parameter():
    w = torch.nn.Parameter(torch.zeros(4, 2))
    v = torch.nn.Parameter(torch.zeros(4, 2))
    opt = SGD([{"params": [v]}, {"params": [w]}], lr=0.1)
    v.grad = torch.ones(4, 2)
    w.grad = torch.ones(4, 2).to_sparse()
    with pytest.raises(TypeError, match=r"param_groups\[1\]\.params\[0\]\.grad must be a dense tensor"):
        opt.step()
    assert torch.equal(v, torch.zeros(4, 2)) and len(opt.state) == 0


def chain_params(opt):
    return [p for g in opt.param_groups for p in g["params"]]


def _trajectory(model, opt, steps, dtype, scaler=None):
    """Parameters after each of ``steps`` updates on fresh batches (a noisy regression)."""
    g = torch.Generator().manual_seed(3)
    out = []
    for _ in range(steps):
        x = torch.randn(16, 13, generator=g, dtype=torch.float64).to(dtype)  # the same data in both dtypes
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), torch.sin(x.sum(1, keepdim=True)))
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        out.append(torch.cat([p.detach().flatten() for p in model.parameters()]).double())
    return torch.stack(out).numpy()


ADAM_OPTIONS = [dict(), dict(weight_decay=1e-2), dict(amsgrad=True, weight_decay=1e-3), dict(maximize=True),
                dict(betas=(0.8, 0.95), eps=1e-6, decoupled_weight_decay=True, weight_decay=0.1)]


@pytest.mark.parametrize("kw", ADAM_OPTIONS, ids=lambda kw: "-".join(kw) or "defaults")
def test_adam_follows_torch_adam_for_hundreds_of_steps(kw):
    """float64: torch's trajectory to 1e-10; float32: no further from torch's float64 run than torch's float32."""
    steps = 300
    ours = _trajectory(m := _model(), Adam(m.parameters(), lr=3e-3, **kw), steps, torch.float64)
    ref64 = _trajectory(m := _model(), torch.optim.Adam(m.parameters(), lr=3e-3, foreach=False, **kw), steps,
                        torch.float64)
    _close(ours, ref64)
    ours32 = _trajectory(m := _model(torch.float32), Adam(m.parameters(), lr=3e-3, **kw), steps, torch.float32)
    ref32 = _trajectory(m := _model(torch.float32), torch.optim.Adam(m.parameters(), lr=3e-3, foreach=False, **kw),
                        steps, torch.float32)
    ours_err, torch_err = np.abs(ours32 - ref64).max(), np.abs(ref32 - ref64).max()
    assert 0 < ours_err <= 1.5 * torch_err, (ours_err, torch_err)


def test_adam_defaults_are_torchs():
    opt = Adam([torch.nn.Parameter(torch.zeros(1))])
    ref = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    for key in ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"):
        assert opt.defaults[key] == ref.defaults[key], key
    assert opt.defaults["decoupled"] is False and AdamW([torch.nn.Parameter(torch.zeros(1))]).defaults["decoupled"]


@pytest.mark.parametrize("kw", [dict(), dict(amsgrad=True, maximize=True, weight_decay=1e-2)])
def test_adam_with_grad_scaler_equals_the_unscaled_run(kw):
    """A power-of-two scale unscales exactly inside the kernel; an inf step is skipped whole."""
    steps = 40
    plain = _trajectory(m := _model(torch.float32), Adam(m.parameters(), lr=1e-2, **kw), steps, torch.float32)
    model = _model(torch.float32)
    opt = Adam(model.parameters(), lr=1e-2, **kw)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12, growth_interval=10)
    scaled = _trajectory(model, opt, steps, torch.float32, scaler)
    assert np.array_equal(scaled, plain)


def test_a_gradient_laid_out_unlike_its_parameter_is_taken_contiguous():
    g = torch.arange(12.0, dtype=torch.float64).reshape(4, 3)
    w, ref = torch.nn.Parameter(torch.ones(3, 4, dtype=torch.float64)), torch.ones(3, 4, dtype=torch.float64)
    w.grad = g.t()  # a transposed view: strides (1, 3)
    SGD([w], lr=0.1).step()
    assert torch.allclose(w.detach(), ref - 0.1 * g.t(), rtol=0, atol=1e-15) and not w.grad.is_contiguous()


def test_parameters_at_different_step_counts_in_one_group_follow_torch():
    """A parameter left without a gradient on some steps lags in step count (and bias correction):
    one group, several fused calls, one per step count."""
    ours_model, ref_model = _model(), _model()
    ours = AdamW(ours_model.parameters(), lr=1e-2, amsgrad=True)
    ref = torch.optim.AdamW(ref_model.parameters(), lr=1e-2, amsgrad=True, foreach=False)
    x, y = _data()
    for t in range(60):
        for model, opt in ((ours_model, ours), (ref_model, ref)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            if t % 3 == 1:
                model[0].bias.grad = None  # skipped this step
            if t % 5 == 2:
                model[2].weight.grad = None
            opt.step()
    assert int(ours.state[ours_model[0].bias]["step"]) == int(ref.state[ref_model[0].bias]["step"]) == 40
    assert int(ours.state[ours_model[2].weight]["step"]) == 48
    _close(torch.cat([p.detach().flatten() for p in ours_model.parameters()]).numpy(),
           torch.cat([p.detach().flatten() for p in ref_model.parameters()]).numpy())


def test_step_counts_made_together_are_counted_together_and_stay_each_parameters_own():
    """New states' step counts are views of one tensor (one add a step); a count set by
    hand or loaded from a checkpoint is its own tensor, and every count stays right."""
    ps = [torch.nn.Parameter(torch.ones(n)) for n in (3, 5, 7)]
    opt = AdamW(ps, lr=1e-3)
    for p in ps:
        p.grad = torch.ones_like(p)
    for _ in range(4):
        opt.step()
    counts = [opt.state[p]["step"] for p in ps]
    assert [float(c) for c in counts] == [4.0] * 3
    assert counts[0]._base is not None and all(c._base is counts[0]._base for c in counts)
    ps[1].grad = None  # skips a step: the others count, it does not
    opt.step()
    assert [float(opt.state[p]["step"]) for p in ps] == [5.0, 4.0, 5.0]
    opt.state[ps[2]]["step"] = torch.tensor(10.0)  # by hand: its own tensor from now on
    ps[1].grad = torch.ones_like(ps[1])
    opt.step()
    assert [float(opt.state[p]["step"]) for p in ps] == [6.0, 5.0, 11.0]
    again = AdamW(ps, lr=1e-3)
    again.load_state_dict(opt.state_dict())
    again.step()
    assert [float(again.state[p]["step"]) for p in ps] == [7.0, 6.0, 12.0]
    assert [float(opt.state[p]["step"]) for p in ps] == [6.0, 5.0, 11.0]  # the loaded copy counts alone


@pytest.mark.parametrize("how", ["data", "set_"])
@pytest.mark.parametrize("which", [[0], [1], [0, 1]])
def test_a_step_count_given_other_memory_in_place_is_read_and_advanced_as_torch_does(how, which):
    """``state["step"].data = ...`` (or ``.set_``) gives a count other memory and keeps the
    tensor object (and its ``_base``, for the counts made together): that count is read and
    advanced as torch reads it, the others still together."""
    models = []
    for cls in (AdamW, torch.optim.AdamW):
        ps = [torch.nn.Parameter(torch.ones(3, dtype=torch.float64)) for _ in range(3)]
        opt = cls(ps, lr=0.1)
        for i in range(4):
            for p in ps:
                p.grad = torch.full_like(p, 0.5 + i)
            opt.step()
            if i == 0:
                for k in which:
                    count = opt.state[ps[k]]["step"]
                    moved = torch.tensor(100.0 + k, dtype=count.dtype)
                    if how == "set_":
                        count.set_(moved)
                    else:
                        count.data = moved
        models.append((ps, opt))
    (ours, ours_opt), (ref, ref_opt) = models
    assert [float(ours_opt.state[p]["step"]) for p in ours] == [float(ref_opt.state[p]["step"]) for p in ref]
    assert float(ours_opt.state[ours[which[0]]]["step"]) == 103.0 + which[0]
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("cls", [AdamW, SGD])
def test_grad_scaler_leaves_the_gradients_unscaled_as_torch_fused_does(cls):
    """After ``scaler.step(opt)`` the gradients hold their unscaled values (gradient-norm
    logging after the step reads them), as torch's fused optimizers leave them."""
    model, ref_model = _model(torch.float32), _model(torch.float32)
    kw = dict(lr=1e-2) if cls is AdamW else dict(lr=1e-2, momentum=0.9)
    opt = cls(model.parameters(), **kw)
    ref = getattr(torch.optim, cls.__name__)(ref_model.parameters(), fused=True, **kw)
    x, y = _data(torch.float32)
    for m, o in ((model, opt), (ref_model, ref)):
        scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
        for _ in range(3):
            o.zero_grad()
            scaler.scale(torch.nn.functional.mse_loss(m(x), y)).backward()
            scaler.step(o)
            scaler.update()
    for p, q in zip(model.parameters(), ref_model.parameters()):
        # (the weights differ in float32's last bits after two steps, so do the gradients)
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-3, atol=1e-6)
        torch.testing.assert_close(p, q)


def test_torch_compile_runs_the_step_eagerly_with_the_same_result():
    """torch.compile of a step (or of a training step calling it): the step runs as Python (a
    graph break), with the eager step's result."""
    results = []
    for compiled in (False, True):
        model = _model(torch.float64)
        opt = AdamW(model.parameters(), lr=fd.cosine(1e-2, 10), weight_decay=0.1)
        step = torch.compile(opt.step, backend="eager") if compiled else opt.step
        x, y = _data(torch.float64)
        for _ in range(3):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            step()
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(results[0], results[1])


def test_a_torch_scheduler_on_a_schedule_lr_is_refused_before_any_write():
    model = _model(torch.float64)
    opt = AdamW(model.parameters(), lr=fd.cosine(1e-2, 100))
    torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
    x, y = _data(torch.float64)
    torch.nn.functional.mse_loss(model(x), y).backward()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(TypeError, match=r"param_groups\[0\]\['lr'\] is a fastdecay schedule, and a torch LR sched"):
        opt.step()
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before)) and not opt.state


def test_torch_s_plateau_scheduler_on_a_schedule_lr_says_what_to_use():
    """torch's ReduceLROnPlateau reads the lr as a number at its first cut."""
    w = torch.nn.Parameter(torch.ones(3))
    opt = AdamW([w], lr=fd.cosine(0.1, 10))
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0)
    w.grad = torch.ones(3)
    opt.step()
    plateau.step(1.0)
    with pytest.raises(TypeError, match=r"a schedule is not one number: its rate at step t is schedule\(t\) \(here "
                                        r"fd\.cosine\(.*fastdecay\.torch\.ReduceLROnPlateau cuts a scheduled lr"):
        plateau.step(1.0)


@pytest.mark.parametrize("composite", ["chained", "plateau"])
def test_lr_scheduler_composes_with_torch_s_schedulers_as_lambda_lr(composite):
    """It sets the rate outright each step: what torch's LambdaLR of the same rates does."""
    schedule = fd.step(0.1, 0.5, 3)
    seen = []
    for kind in ("lambda", "fastdecay"):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(3))], lr=0.1)
        first = (torch.optim.lr_scheduler.LambdaLR(opt, lambda t: schedule(t) / 0.1) if kind == "lambda"
                 else LRScheduler(opt, schedule))
        if composite == "chained":
            chained = torch.optim.lr_scheduler.ChainedScheduler([first, torch.optim.lr_scheduler.ExponentialLR(opt, 0.9)])
            after = lambda: chained.step()  # noqa: E731
        else:
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.1)
            after = lambda: (first.step(), plateau.step(1.0))  # noqa: E731
        rates = []
        for _ in range(10):
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            after()
        seen.append(rates)
    np.testing.assert_allclose(seen[1], seen[0], rtol=1e-15)
    assert len(set(np.round(seen[1], 12))) > 3


def test_torch_schedulers_chain_after_lr_scheduler_from_the_optimizer_s_base_rate():
    """A fastdecay warm-up then torch's cosine (SequentialLR): the cosine starts from the
    optimizer's lr, as after torch's own LinearLR warm-up."""
    rates = []
    for warmup in ("fastdecay", "torch"):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        first = (LRScheduler(opt, fd.linear(0.01, 0.1, 10)) if warmup == "fastdecay" else
                 torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=10))
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 90)
        chained = torch.optim.lr_scheduler.SequentialLR(opt, [first, cosine], milestones=[10])
        seen = []
        for _ in range(30):
            seen.append(opt.param_groups[0]["lr"])
            opt.step()
            chained.step()
        rates.append(seen)
    np.testing.assert_allclose(rates[0][10:], rates[1][10:], rtol=1e-12)
    assert rates[0][10] == pytest.approx(0.1)


def test_state_dict_post_hooks_see_the_plain_data_returned():
    import json

    opt = AdamW(_model(torch.float64).parameters(), lr=fd.cosine(1e-2, 100))
    seen = []
    opt.register_state_dict_post_hook(lambda o, sd: seen.append(json.dumps(sd["param_groups"][0]["lr"])))
    sd = opt.state_dict()
    assert seen == [json.dumps(sd["param_groups"][0]["lr"])] and isinstance(sd["param_groups"][0]["lr"], float)


def test_lr_scheduler_keeps_the_base_of_a_tensor_lr_apart_from_the_rate_it_writes():
    """torch writes a tensor lr in place each step; the base rate ``initial_lr`` must not follow."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=torch.tensor(0.5))
    sched = LRScheduler(opt, fd.cosine(0.5, 4))
    for _ in range(3):
        opt.step()
        sched.step()
    assert float(opt.param_groups[0]["initial_lr"]) == 0.5
    assert float(opt.param_groups[0]["lr"]) == pytest.approx(fd.cosine(0.5, 4)(3))


def _buffer_key(opt):
    return "exp_avg" if "betas" in opt.defaults else "momentum_buffer"


# changes a user (or a library) makes between two steps, each made to fastdecay's optimizer and
# torch's alike: the step after it must see it as torch does
_CHANGES = {
    "lr": lambda opt, ps: opt.param_groups[0].update(lr=0.03),
    "weight_decay": lambda opt, ps: opt.param_groups[0].update(weight_decay=0.3),
    "momentum": lambda opt, ps: opt.param_groups[0].update(
        **({"betas": (0.8, 0.99)} if "betas" in opt.defaults else {"momentum": 0.5})),
    "maximize": lambda opt, ps: opt.param_groups[0].update(maximize=True),
    "buffer replaced": lambda opt, ps: opt.state[ps[1]].update(
        {_buffer_key(opt): opt.state[ps[1]][_buffer_key(opt)].clone() * 0.5}),
    "buffer given other memory": lambda opt, ps: setattr(
        opt.state[ps[1]][_buffer_key(opt)], "data", opt.state[ps[1]][_buffer_key(opt)].clone() * 0.5),
    "buffer written in place": lambda opt, ps: opt.state[ps[1]][_buffer_key(opt)].mul_(0.5),
    "parameter given other memory": lambda opt, ps: setattr(ps[0], "data", ps[0].detach().clone() * 2),
    "gradient dropped": lambda opt, ps: setattr(ps[2], "grad", None),
    "gradient strided": lambda opt, ps: setattr(
        ps[1], "grad", torch.zeros(2 * ps[1].numel(), dtype=ps[1].dtype)[::2].view(ps[1].shape).copy_(ps[1].grad)),
    "parameter appended": lambda opt, ps: opt.param_groups[0]["params"].append(ps[3]),
    "state reloaded": lambda opt, ps: opt.load_state_dict(copy.deepcopy(opt.state_dict())),
    "one step count set": lambda opt, ps: opt.state[ps[0]]["step"].fill_(10) if "step" in opt.state[ps[0]] else None,
    # (the same count in other memory: a step that read the counts' old memory would advance that,
    # leaving this count behind from then on; torch's SGD keeps no count)
    "step count replaced": lambda opt, ps: _with_count(opt, ps[1], lambda c: opt.state[ps[1]].update(step=c.clone())),
    "step count given other memory": lambda opt, ps: _with_count(opt, ps[1], lambda c: setattr(c, "data", c.clone())),
    "step count set_": lambda opt, ps: _with_count(opt, ps[2], lambda c: c.set_(c.clone())),
}


def _with_count(opt, p, change):
    if "step" in opt.state[p]:
        change(opt.state[p]["step"])


@pytest.mark.parametrize("grads", ["new", "kept"])
@pytest.mark.parametrize("change", sorted(_CHANGES))
@pytest.mark.parametrize("kind", ["adamw", "sgd", "lion"])
def test_a_repeated_step_sees_every_change_between_steps_as_torch_does(kind, change, grads, repeated_steps,
                                                                       monkeypatch):
    """After its first step a group's step is checked by what can have changed since
    (``fastdecay._fused.Call.again``): each change below, made between two steps, gives torch's
    weights at every step after it (for Lion, which torch lacks, those of the same optimizer
    checked in full every step), with gradients new every step (autograd's) or kept and
    written in place (``zero_grad(set_to_none=False)``); the steps around it take that path
    (step counts kept apart, as a checkpoint's, are joined into one tensor again)."""
    from fastdecay import torch as fdt

    taken = repeated_steps
    shapes = [(7,), (3, 5), (2, 1, 3), (4,)]
    runs, counts = [], []
    for ours in (True, False):
        ps = [torch.nn.Parameter(torch.linspace(-1, 1, int(np.prod(s)), dtype=torch.float64).reshape(s))
              for s in shapes]
        group = dict(params=ps[:3])
        if kind == "adamw":
            opt = (AdamW if ours else torch.optim.AdamW)([group], lr=0.1, weight_decay=0.05, foreach=False)
        elif kind == "sgd":
            opt = (SGD if ours else torch.optim.SGD)([group], lr=0.1, momentum=0.9, weight_decay=0.05,
                                                     foreach=False)
        else:
            opt = fdt.Lion([group], lr=0.1, weight_decay=0.05)
            if not ours:  # the reference: no repeats, every step checked in full
                monkeypatch.setattr(fdt._Repeat, "of", staticmethod(lambda *args: None))
        weights = []
        for step in range(8):
            for k, p in enumerate(ps):
                value = torch.cos(torch.arange(p.numel(), dtype=p.dtype) * (step + 1) + k).reshape(p.shape)
                if grads == "kept" and p.grad is not None:
                    p.grad.copy_(value)
                else:
                    p.grad = value
            if step == 4:
                _CHANGES[change](opt, ps)
            opt.step()
            weights.append(torch.cat([p.detach().flatten() for p in ps]).clone())
        runs.append(weights)
        counts.append([float(opt.state[p]["step"]) for p in ps if "step" in opt.state[p]])
    for step, (a, b) in enumerate(zip(*runs)):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-14, msg=f"step {step} after the change {change!r}")
    if kind != "sgd":  # (torch's SGD keeps no step count)
        assert counts[0] == counts[1], change
    # steps 2 and 3 are repeats, and steps 6 and 7 too, unless the change leaves the parameters
    # at different step counts (a call for each count) or a gradient strided unlike its parameter
    lasting = change in ("gradient dropped", "parameter appended", "one step count set") or (
        change == "gradient strided" and grads == "kept")
    assert taken[:2] == [True, True] and (lasting or taken[-2:] == [True, True]), taken


@pytest.mark.parametrize("how", ["replaced", "data"])
def test_a_repeated_step_refuses_a_buffer_replaced_by_a_view_of_other_dtype_before_any_write(how):
    """A state buffer replaced by a view of its own memory in another dtype (a new tensor, or
    the same one re-typed in place by ``.data =``) has the address and layout the group's last
    step was checked with: the repeated step still refuses it, naming it, and writes nothing."""
    ps = [torch.nn.Parameter(torch.linspace(-1, 1, n, dtype=torch.float64)) for n in (5, 3)]
    opt = AdamW(ps, lr=0.1)
    for _ in range(3):
        for p in ps:
            p.grad = torch.ones_like(p)
        opt.step()
    if how == "replaced":
        opt.state[ps[1]]["exp_avg"] = opt.state[ps[1]]["exp_avg"].view(torch.int64)
    else:
        opt.state[ps[1]]["exp_avg"].data = opt.state[ps[1]]["exp_avg"].data.view(torch.int64)
    before = [p.detach().clone() for p in ps] + [opt.state[p]["exp_avg_sq"].clone() for p in ps]
    with pytest.raises(TypeError, match=r"exp_avg state of param_groups\[0\]\.params\[1\]"):
        opt.step()
    after = [p.detach() for p in ps] + [opt.state[p]["exp_avg_sq"] for p in ps]
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert [float(opt.state[p]["step"]) for p in ps] == [3.0, 3.0]


def test_equal_step_counts_kept_apart_are_joined_in_their_dtype():
    """Step counts that are tensors of their own (a checkpoint's) and all equal become the
    elements of one tensor at the next step, in their own dtype: float64 counts past 2**24 stay
    exact (float32 would round them), and they count on together from there."""
    ps = [torch.nn.Parameter(torch.ones(n, dtype=torch.float64)) for n in (3, 4)]
    opt = AdamW(ps, lr=1e-3)
    for p in ps:
        p.grad = torch.ones_like(p)
    opt.step()
    big = 2 ** 24 + 1
    for p in ps:
        opt.state[p]["step"] = torch.tensor(float(big), dtype=torch.float64)
    for _ in range(2):
        opt.step()
    counts = [opt.state[p]["step"] for p in ps]
    assert [c.dtype for c in counts] == [torch.float64] * 2
    assert [c.item() for c in counts] == [float(big + 2)] * 2
    assert counts[0]._base is not None and counts[1]._base is counts[0]._base
    opt.state[ps[0]]["step"] = torch.tensor(5.0)  # float32 beside a float64 count: kept apart
    opt.state[ps[1]]["step"] = torch.tensor(5.0, dtype=torch.float64)
    opt.step()
    assert [opt.state[p]["step"].item() for p in ps] == [6.0, 6.0]
    assert [opt.state[p]["step"].dtype for p in ps] == [torch.float32, torch.float64]


@pytest.mark.parametrize("key", ["lr", "weight_decay"])
def test_a_rate_tensor_written_in_place_every_step_is_read_anew_as_torch_reads_it(key, repeated_steps):
    """A group's rate given as a tensor and written in place between steps (as torch's LR
    schedulers write a tensor lr: ``fill_``) is the same object step after step: the repeated
    step reads its value anew, and the weights follow torch's AdamW."""
    runs = []
    for cls in (AdamW, torch.optim.AdamW):
        p = torch.nn.Parameter(torch.linspace(-1, 1, 7, dtype=torch.float64))
        opt = cls([p], lr=0.1, weight_decay=0.1, foreach=False)
        opt.param_groups[0][key] = torch.tensor(0.1, dtype=torch.float64)
        weights = []
        for step in range(6):
            p.grad = torch.cos(torch.arange(7, dtype=torch.float64) * (step + 1))
            opt.step()
            opt.param_groups[0][key].fill_(0.1 / (step + 2))
            weights.append(p.detach().clone())
        runs.append(weights)
    for a, b in zip(*runs):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-14)
    assert repeated_steps[-3:] == [True] * 3


@pytest.mark.parametrize("how", ["constructor", "add_param_group"])
@pytest.mark.parametrize("cls, theirs", [(SGD, torch.optim.SGD), (AdamW, torch.optim.AdamW)], ids=["sgd", "adamw"])
def test_a_tensor_lr_given_to_the_optimizer_is_kept_and_read_at_every_step(cls, theirs, how):
    """torch keeps a tensor lr given to the constructor (or to ``add_param_group``) as the
    group's lr, the caller's object: writing it in place changes the next step. So does
    fastdecay, and the weights are torch's."""
    runs = []
    for make in (cls, theirs):
        p = torch.nn.Parameter(torch.linspace(-1, 1, 7, dtype=torch.float64))
        lr = torch.tensor(0.1, dtype=torch.float64)
        if how == "constructor":
            opt = make([p], lr=lr, weight_decay=0.01)
        else:
            opt = make([torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))], lr=0.5, weight_decay=0.01)
            opt.add_param_group({"params": [p], "lr": lr})
        assert opt.param_groups[-1]["lr"] is lr
        weights = []
        for step in range(5):
            p.grad = torch.cos(torch.arange(7, dtype=torch.float64) * (step + 1))
            opt.step()
            lr.fill_(0.0 if step == 1 else 0.1 / (step + 2))
            weights.append(p.detach().clone())
        assert torch.equal(weights[2], weights[1])  # the step at lr 0 left p as it was
        runs.append(weights)
    for a, b in zip(*runs):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-14)
    with pytest.raises(ValueError, match="lr must be"):
        cls([torch.nn.Parameter(torch.zeros(2))], lr=torch.tensor(-0.1))


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW], ids=["sgd", "adam", "adamw"])
def test_a_parameter_put_in_a_second_group_in_place_is_refused_before_any_write(cls):
    """torch's constructor and add_param_group refuse a parameter in two groups; a ``params``
    list edited in place gets past them (torch then updates it twice). The step refuses it,
    naming both groups, and writes nothing, also once the groups' steps are repeated ones."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.nn.Parameter(torch.randn(5, generator=gen)), torch.nn.Parameter(torch.randn(3, generator=gen))
    opt = cls([{"params": [a]}, {"params": [b]}], lr=0.1, **({"momentum": 0.9} if cls is SGD else {}))
    for _ in range(4):  # past the first steps: the groups' usual steps are repeated
        a.grad, b.grad = torch.randn(5, generator=gen), torch.randn(3, generator=gen)
        opt.step()
    opt.param_groups[1]["params"].append(a)
    before = [t.detach().clone() for t in (a, b, *(v for p in (a, b) for v in opt.state[p].values()))]
    with pytest.raises(ValueError, match=r"param_groups\[1\]\.params\[1\] is also in param_groups\[0\]"):
        opt.step()
    after = [t.detach() for t in (a, b, *(v for p in (a, b) for v in opt.state[p].values()))]
    assert all(torch.equal(x, y) for x, y in zip(before, after))
    opt.param_groups[1]["params"].pop()
    opt.step()  # and steps again once it is in one group
    assert not torch.equal(a.detach(), before[0])


def test_step_hooks_run_as_torchs_and_the_profiler_annotation_only_while_profiling(monkeypatch):
    """The step's wrapper runs torch's hooks as torch's does (global and the optimizer's, pre-
    hooks before and post-hooks after, a pre-hook's new arguments used, a bad return refused)
    and makes torch's profiler annotation only while a profiler runs: outside one, torch's
    own optimizer enters it on every step and fastdecay's does not."""
    import torch.autograd.profiler as autograd_profiler
    from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

    entered = []

    class Recorded(autograd_profiler.record_function):
        def __enter__(self):
            entered.append(self.name)
            return super().__enter__()

    monkeypatch.setattr(autograd_profiler, "record_function", Recorded)
    calls = {}
    for name, cls in (("ours", AdamW), ("torch", torch.optim.AdamW)):
        p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
        opt = cls([p], lr=0.1)
        log = calls[name] = []
        handles = [register_optimizer_step_pre_hook(lambda o, a, k, log=log: log.append(("global pre", len(a)))),
                   register_optimizer_step_post_hook(lambda o, a, k, log=log: log.append(("global post", len(a)))),
                   opt.register_step_pre_hook(lambda o, a, k, log=log: log.append(("pre", len(a)))),
                   opt.register_step_post_hook(lambda o, a, k, log=log: log.append(("post", len(a))))]
        # a pre-hook that hands the step a closure: the step returns its loss
        handles.append(opt.register_step_pre_hook(lambda o, a, k: ((o, lambda: 7.0), k)))
        p.grad = torch.ones(3, dtype=torch.float64)
        entered.clear()
        assert opt.step() == 7.0
        log.append(("annotations", len(entered)))
        calls[name] = log = list(log)  # (the first step's; the hooks go on logging below)
        with torch.profiler.profile() as prof:
            opt.step()
        assert f"Optimizer.step#{cls.__name__}.step" in {e.name for e in prof.events()}
        bad = opt.register_step_pre_hook(lambda o, a, k: "not arguments")
        with pytest.raises(RuntimeError, match="must return None or a tuple"):
            opt.step()
        for handle in handles + [bad]:
            handle.remove()
        calls[name].append(("weights", p.detach().tolist()))
    assert calls["torch"][:-1] == [("global pre", 1), ("pre", 1), ("post", 2), ("global post", 2), ("annotations", 1)]
    assert calls["ours"][:-1] == calls["torch"][:-2] + [("annotations", 0)]
    assert calls["ours"][-1][1] == pytest.approx(calls["torch"][-1][1], rel=1e-14)


def test_step_runs_without_autograd_and_restores_the_callers_mode(monkeypatch):
    """``step()`` runs with autograd off (as under ``torch.no_grad()``), its closure with it on,
    and leaves the caller's mode as it found it, after a refused step too."""
    p = torch.nn.Parameter(torch.ones(3))
    opt = SGD([p], lr=0.1, momentum=0.9)
    inside, in_closure = [], []
    check = opt._check_no_torch_scheduler_on_schedules
    monkeypatch.setattr(opt, "_check_no_torch_scheduler_on_schedules",
                        lambda: (inside.append(torch.is_grad_enabled()), check())[1])

    def closure():
        in_closure.append(torch.is_grad_enabled())
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    for mode in (True, False, True):
        with torch.set_grad_enabled(mode):
            assert opt.step(closure).item() > 0
            assert torch.is_grad_enabled() is mode
    assert inside == [False] * 3 and in_closure == [True] * 3
    opt.state[p]["step"] = torch.tensor(-1.0)
    with pytest.raises(ValueError, match="step state"):
        opt.step()
    assert torch.is_grad_enabled()


@pytest.mark.parametrize("make, key", [(Adam, "differentiable"), (Adam, "capturable"), (AdamW, "differentiable"),
                                       (AdamW, "capturable"), (lambda ps: SGD(ps, lr=0.1), "differentiable")])
def test_a_group_s_own_differentiable_or_capturable_is_refused_as_the_keyword_is(make, key):
    """Given in a group (the constructor's or add_param_group's) it was kept and not honoured:
    the step ran under no_grad (torch's SGD has no capturable)."""
    p, q = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    with pytest.raises(ValueError, match=rf"param_groups\[0\]: {key}=True is not supported"):
        make([dict(params=[p], **{key: True})])
    opt = make([p])
    with pytest.raises(ValueError, match=rf"param_groups\[1\]: {key}=True is not supported"):
        opt.add_param_group(dict(params=[q], **{key: True}))
    assert len(opt.param_groups) == 1


def test_add_param_group_names_a_bad_betas_and_a_bad_lr_with_its_group():
    p, q = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = Adam([p])
    for bad in (None, 0.9, (0.9,)):
        with pytest.raises(TypeError, match=r"param_groups\[1\]: betas must be a pair \(beta1, beta2\)"):
            opt.add_param_group(dict(params=[q], betas=bad))
    with pytest.raises(ValueError, match=r"param_groups\[1\]: lr must be >= 0, got -1"):
        opt.add_param_group(dict(params=[q], lr=-1.0))
    assert len(opt.param_groups) == 1


@pytest.mark.parametrize("last_epoch, error, message", [
    (1.5, TypeError, r"last_epoch must be an integer step \(-1: none taken yet\), got 1.5"),
    ("3", TypeError, r"last_epoch must be an integer step .*got '3'"),
    (True, TypeError, r"last_epoch must be an integer step .*got True"),
    (-2, ValueError, r"last_epoch must be >= -1, got -2"),
])
def test_lr_scheduler_refuses_a_bad_last_epoch_before_touching_the_optimizer(last_epoch, error, message):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=1.0)
    with pytest.raises(error, match=message):
        LRScheduler(opt, fd.constant(0.1), last_epoch=last_epoch)
    assert "initial_lr" not in opt.param_groups[0]


def test_one_schedule_drives_param_groups_added_later_too():
    """It was expanded to the groups there were: a later group failed with zip()'s message."""
    p, q = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = SGD([p], lr=0.1)
    sched = LRScheduler(opt, fd.exponential(0.1, gamma=0.5))
    opt.step()
    sched.step()
    opt.add_param_group(dict(params=[q]))
    for _ in range(2):
        opt.step()
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == [0.1 * 0.5**3] * 2 == sched.get_last_lr()
    again = LRScheduler(SGD([dict(params=[p]), dict(params=[q])], lr=0.1), fd.constant(1.0))
    again.load_state_dict(torch.load(_saved(sched.state_dict()), weights_only=True))
    assert again.get_last_lr() == sched.get_last_lr()
    listed = LRScheduler(opt, [fd.constant(0.1), fd.constant(0.2)])
    opt.add_param_group(dict(params=[torch.nn.Parameter(torch.ones(1))]))
    with pytest.raises(ValueError, match="the optimizer has 3 param groups and this scheduler a schedule for 2"):
        listed.step()


def _saved(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer
