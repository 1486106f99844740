"""Lion (Chen et al. 2023) as a fused update, in fastdecay.torch and against two references:
the plain-NumPy oracle (``fastdecay.reference.lion_trajectory``) and lion-pytorch's update
written out in torch ops (torch has no Lion):

    p.mul_(1 - lr * wd)
    update = exp_avg.clone().mul_(beta1).add(grad, alpha=1 - beta1).sign_()
    p.add_(update, alpha=-lr)
    exp_avg.mul_(beta2).add_(grad, alpha=1 - beta2)

Trajectories are whole runs (hundreds of steps, odd sizes) on a noisy quadratic, so the
gradient depends on the weights and any difference compounds.
"""

import copy
import io

import numpy as np
import pytest
import torch

import fastdecay as fd
from fastdecay import reference as ref
from fastdecay.torch import Lion

STEPS = 300
N = 1037
LAM = np.linspace(0.1, 3.0, N)
NOISE = np.random.default_rng(0).standard_normal((STEPS, N))


def grad_fn(w, t):
    return LAM * w + 0.1 * NOISE[t]


def lion_pytorch_trajectory(w0, lrs, wds, betas, dtype):
    """lion-pytorch's update_fn, step by step, in torch ops on ``dtype`` tensors."""
    beta1, beta2 = betas
    p = torch.tensor(w0, dtype=dtype)
    exp_avg = torch.zeros_like(p)
    lam = torch.tensor(LAM, dtype=dtype)
    noise = torch.tensor(NOISE, dtype=dtype)
    for t in range(len(lrs)):
        grad = lam * p + 0.1 * noise[t]
        lr, wd = float(lrs[t]), float(wds[t])
        p.mul_(1 - lr * wd)
        update = exp_avg.clone().mul_(beta1).add(grad, alpha=1 - beta1).sign_()
        p.add_(update, alpha=-lr)
        exp_avg.mul_(beta2).add_(grad, alpha=1 - beta2)
    return p.numpy().astype(np.float64), exp_avg.numpy().astype(np.float64)


def fused_trajectory(w0, lr, wd, betas, dtype, **options):
    w = np.array(w0, dtype=dtype)
    m = np.empty_like(w)
    for t in range(STEPS):
        fd.lion_step(w, grad_fn(w.astype(np.float64), t).astype(dtype), m, step=t, lr=lr, weight_decay=wd,
                     betas=betas, **options)
    return w.astype(np.float64), m.astype(np.float64)


LR = fd.warmup(fd.cosine(3e-3, STEPS), 20)
WD = fd.linear(0.0, 0.5, STEPS)
W0 = np.random.default_rng(1).standard_normal(N)


@pytest.mark.parametrize("betas", [(0.9, 0.99), (0.95, 0.98), (0.0, 0.5)])
def test_float64_trajectory_equals_the_oracle_and_lion_pytorch(betas):
    lrs, wds = LR.table(STEPS), WD.table(STEPS)
    got, m = fused_trajectory(W0, LR, WD, betas, np.float64)
    oracle = ref.lion_trajectory(W0, grad_fn, lrs, weight_decays=wds, betas=betas)[-1]
    torch_w, torch_m = lion_pytorch_trajectory(W0, lrs, wds, betas, torch.float64)
    np.testing.assert_allclose(got, oracle, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got, torch_w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(m, torch_m, rtol=1e-12, atol=1e-14)
    assert np.abs(got - W0).max() > 0.1  # the run moved the weights


def test_float32_no_worse_than_lion_pytorch_float32():
    lrs, wds = LR.table(STEPS), WD.table(STEPS)
    exact = ref.lion_trajectory(W0, grad_fn, lrs, weight_decays=wds)[-1]
    ours, _ = fused_trajectory(W0, LR, WD, (0.9, 0.99), np.float32)
    theirs, _ = lion_pytorch_trajectory(W0, lrs, wds, (0.9, 0.99), torch.float32)
    ours_err, torch_err = np.abs(ours - exact).max(), np.abs(theirs - exact).max()
    assert ours_err <= 1.03 * torch_err + 1e-6, (ours_err, torch_err)


def test_maximize_grad_scale_and_scheduled_beta1_match_the_oracle():
    beta1 = fd.one_cycle(0.1, STEPS).momentum
    lrs, wds = LR.table(STEPS), WD.table(STEPS)
    w = W0.copy()
    m = np.empty_like(w)
    for t in range(STEPS):
        fd.lion_step(w, -4.0 * grad_fn(w, t), m, step=t, lr=LR, weight_decay=WD, betas=(beta1, 0.99),
                     maximize=True, grad_scale=4.0)
    # the oracle with a per-step beta1: one step at a time
    want = W0.copy()
    m_ref = np.zeros_like(want)
    for t in range(STEPS):
        b1 = beta1(t)
        g = grad_fn(want, t)
        want = want * (1 - lrs[t] * wds[t]) - lrs[t] * np.sign(b1 * m_ref + (1 - b1) * g)
        m_ref = 0.99 * m_ref + 0.01 * g
    np.testing.assert_allclose(w, want, rtol=1e-12, atol=1e-14)


def test_sign_of_zero_and_nan():
    w, m = np.ones(3), np.empty(3)
    fd.lion_step(w, np.array([0.0, np.nan, -1.0]), m, step=0, lr=0.5)
    assert w[0] == 1.0 and np.isnan(w[1]) and w[2] == 1.5


def test_list_of_arrays_is_one_call_equal_to_single_calls():
    rng = np.random.default_rng(3)
    shapes = [(7,), (3, 5), (1,), (2049,)]
    ws = [rng.standard_normal(s) for s in shapes]
    gs = [rng.standard_normal(s) for s in shapes]
    ms = [rng.standard_normal(s) for s in shapes]
    singles = [(w.copy(), m.copy()) for w, m in zip(ws, ms)]
    for t in range(3):
        fd.lion_step(ws, gs, ms, step=t, lr=0.01, weight_decay=0.1)
        for (w, m), g in zip(singles, gs):
            fd.lion_step(w, g, m, step=t, lr=0.01, weight_decay=0.1)
    for (w, m), w_list, m_list in zip(singles, ws, ms):
        np.testing.assert_array_equal(w, w_list)
        np.testing.assert_array_equal(m, m_list)


@pytest.mark.parametrize("bad, error, match", [
    (dict(betas=(1.0, 0.99)), ValueError, "betas"),
    (dict(betas=(0.9,)), (ValueError, TypeError), "betas"),
    (dict(lr=-1.0), ValueError, "lr"),
    (dict(weight_decay=float("nan")), ValueError, "weight_decay"),
    (dict(maximize="yes"), TypeError, "maximize"),
    (dict(step=-1), ValueError, "step"),
    (dict(exp_avg=np.zeros(4)), ValueError, "exp_avg"),
    (dict(exp_avg=np.zeros(5, np.float32)), TypeError, "exp_avg"),
    (dict(compensation_buffer=np.zeros(5)), ValueError, "compensation_buffer"),
])
def test_bad_input_names_the_argument_and_writes_nothing(bad, error, match):
    w, g, m = np.arange(5.0), np.ones(5), np.full(5, 0.25)
    args = dict(exp_avg=m, step=3, lr=0.1) | bad
    before = [a.copy() for a in (w, g, args["exp_avg"])]
    with pytest.raises(error, match=match):
        fd.lion_step(w, g, **args)
    for a, b in zip((w, g, args["exp_avg"]), before):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- fastdecay.torch.Lion


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(7, 13), torch.nn.Tanh(), torch.nn.Linear(13, 3)).double()


def _train(opt, model, steps, seed=1):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(5, 7, generator=gen, dtype=torch.float64)
        opt.zero_grad()
        model(x).pow(2).sum().backward()
        opt.step()


def test_torch_lion_equals_lion_pytorch_with_schedules():
    lr, wd = fd.warmup(fd.cosine(1e-2, 200), 10), fd.linear(0.0, 0.3, 200)
    ours, theirs = _model(), _model()
    opt = Lion(ours.parameters(), lr=lr, weight_decay=wd, betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(1)
    state = {p: torch.zeros_like(p) for p in theirs.parameters()}
    for t in range(200):
        x = torch.randn(5, 7, generator=gen, dtype=torch.float64)
        for model in (ours, theirs):
            for p in model.parameters():
                p.grad = None
            model(x).pow(2).sum().backward()
        opt.step()
        with torch.no_grad():
            for p in theirs.parameters():
                p.mul_(1 - lr(t) * wd(t))
                update = state[p].clone().mul_(0.9).add(p.grad, alpha=1 - 0.9).sign_()
                p.add_(update, alpha=-lr(t))
                state[p].mul_(0.99).add_(p.grad, alpha=1 - 0.99)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    for p, q in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(opt.state[p]["exp_avg"], state[q], rtol=1e-12, atol=1e-14)
        assert int(opt.state[p]["step"]) == 200


def test_torch_lion_checkpoint_resumes_bit_identically():
    lr = fd.step(1e-2, 0.5, 17)
    beta1 = fd.cyclic(0.1, 1.0, 9).momentum
    straight = _model()
    opt = Lion(straight.parameters(), lr=lr, weight_decay=0.1, betas=(beta1, 0.98))
    _train(opt, straight, 40)
    weights = copy.deepcopy(straight.state_dict())
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    _train(opt, straight, 30, seed=2)

    resumed = _model(seed=5)
    resumed.load_state_dict(weights)
    opt2 = Lion(resumed.parameters(), lr=1.0)
    buffer.seek(0)
    opt2.load_state_dict(torch.load(buffer, weights_only=True))
    group = opt2.param_groups[0]
    assert [group["lr"](t) for t in range(0, 80, 7)] == [lr(t) for t in range(0, 80, 7)]
    assert [group["betas"][0](t) for t in range(0, 80, 7)] == [beta1(t) for t in range(0, 80, 7)]
    _train(opt2, resumed, 30, seed=2)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_torch_lion_refuses_bad_options_and_steps_that_would_not_fit():
    model = _model()
    with pytest.raises(ValueError, match="betas"):
        Lion(model.parameters(), betas=(0.9, 1.5))
    with pytest.raises(ValueError, match="lr"):
        Lion(model.parameters(), lr=-1e-3)
    opt = Lion(model.parameters(), lr=1e-3)
    _train(opt, model, 1)
    p = next(model.parameters())
    opt.state[p]["exp_avg"] = torch.zeros(3, dtype=torch.float64)  # the wrong shape
    before = [q.detach().clone() for q in model.parameters()]
    with pytest.raises(ValueError, match="exp_avg"):
        _train(opt, model, 1)
    for q, b in zip(model.parameters(), before):
        torch.testing.assert_close(q.detach(), b, rtol=0, atol=0)
