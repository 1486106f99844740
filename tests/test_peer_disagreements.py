"""Where fastdecay used to disagree with a peer library, a test against the peer itself:
torch's OneCycleLR settings with a warm-up shorter than a step, MultiStepLR's unsorted and
repeated milestones, and what adamw_step matches (torch) and how Keras' AdamW differs."""

import math

import numpy as np
import pytest
import torch

import fastdecay as fd


def _torch_rates(make_scheduler, steps, lr=1.0):
    """The rates torch's scheduler gives at steps 0 .. steps-1 (float64 parameters)."""
    opt = torch.optim.SGD([torch.zeros(1, dtype=torch.float64, requires_grad=True)], lr=lr)
    sched = make_scheduler(opt)
    rates = []
    for _ in range(steps):
        rates.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return np.array(rates)


@pytest.mark.parametrize("total_steps, pct_start, three_phase, anneal", [
    (10, 0.05, False, "cos"),     # warm-up ends before step 0: torch starts part-way down
    (10, 0.0, False, "cos"),
    (10, 0.05, False, "linear"),
    (7, 0.1, False, "cos"),       # pct * T = 0.7
    (10, 0.15, False, "cos"),     # the warm-up ends between steps 0 and 1
    (10, 0.05, True, "cos"),
    (25, 0.02, True, "linear"),
    (100, 0.3, False, "cos"),
    (1, 0.5, False, "cos"),
])
def test_one_cycle_accepts_what_torch_computes_and_gives_its_rates(total_steps, pct_start, three_phase, anneal):
    kwargs = dict(pct_start=pct_start, div_factor=25.0, final_div_factor=1e4, anneal_strategy=anneal,
                  three_phase=three_phase)
    want = _torch_rates(lambda o: torch.optim.lr_scheduler.OneCycleLR(
        o, max_lr=0.8, total_steps=total_steps, cycle_momentum=False, **kwargs), total_steps)
    got = fd.one_cycle(0.8, total_steps, **kwargs).table(total_steps)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("total_steps, pct_start, three_phase", [(10, 0.05, False), (10, 0.0, False), (25, 0.02, True)])
def test_one_cycle_momentum_companion_follows_torch_for_short_warmups_too(total_steps, pct_start, three_phase):
    opt = torch.optim.SGD([torch.zeros(1, dtype=torch.float64, requires_grad=True)], lr=1.0, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.8, total_steps=total_steps, pct_start=pct_start,
                                                three_phase=three_phase, base_momentum=0.8, max_momentum=0.95)
    want = []
    for _ in range(total_steps):
        want.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step()
    s = fd.one_cycle(0.8, total_steps, pct_start=pct_start, three_phase=three_phase, base_momentum=0.8,
                     max_momentum=0.95)
    np.testing.assert_allclose(s.momentum.table(total_steps), want, rtol=1e-13)


@pytest.mark.parametrize("total_steps, pct_start, three_phase", [(10, 0.1, False), (20, 0.05, True)])
def test_one_cycle_refuses_only_where_torch_divides_by_zero(total_steps, pct_start, three_phase):
    with pytest.raises(ZeroDivisionError):
        _torch_rates(lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o, max_lr=0.8, total_steps=total_steps, pct_start=pct_start, three_phase=three_phase,
            cycle_momentum=False), total_steps)
    with pytest.raises(ValueError, match="pct_start \\* total_steps must not be 1"):
        fd.one_cycle(0.8, total_steps, pct_start=pct_start, three_phase=three_phase)


@pytest.mark.parametrize("milestones", [[5, 3], [8, 2, 5], [3, 3, 6], [6, 3, 3, 3]])
def test_multistep_takes_milestones_as_torch_does(milestones):
    """Unsorted milestones are sorted; a repeated milestone multiplies by gamma once per
    repetition (torch's Counter)."""
    want = _torch_rates(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=milestones, gamma=0.5), 12)
    got = fd.multistep(1.0, 0.5, milestones).table(12)
    np.testing.assert_allclose(got, want, rtol=1e-15)


def test_multistep_repr_shows_the_sorted_milestones():
    assert fd.multistep(1.0, 0.5, [8, 2]).params["milestones"].tolist() == [2.0, 8.0]


def _keras_adamw(w, grad, steps, *, lr, betas, eps, weight_decay):
    """keras/src/optimizers/adamw.py + adam.py update_step, written out (Keras 3): weight
    decay w -= w * wd * lr first; then alpha = lr * sqrt(1 - b2^n) / (1 - b1^n) and
    w -= m * alpha / (sqrt(v) + eps): eps is added before the bias correction."""
    b1, b2 = betas
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t in range(steps):
        g = grad(w)
        w = w - w * weight_decay * lr
        n = t + 1
        alpha = lr * math.sqrt(1 - b2**n) / (1 - b1**n)
        m += (g - m) * (1 - b1)
        v += (g * g - v) * (1 - b2)
        w = w - m * alpha / (np.sqrt(v) + eps)
    return w


@pytest.mark.parametrize("eps, keras_gap", [(1e-3, (1e-3, 3e-2)), (1e-8, (1e-8, 1e-6))])
def test_adamw_step_is_torch_adamw_and_keras_differs_by_the_documented_size(eps, keras_gap):
    lam = np.array([1.0, 3.0, 0.2])
    w0 = np.array([1.0, -0.5, 2.0])
    kw = dict(lr=1e-2, betas=(0.9, 0.999), eps=eps, weight_decay=0.05)

    w, m, v = w0.copy(), np.zeros(3), np.zeros(3)
    for t in range(50):
        fd.adamw_step(w, lam * w, m, v, step=t, **kw)

    p = torch.tensor(w0, requires_grad=True)
    opt = torch.optim.AdamW([p], **kw)
    for _ in range(50):
        opt.zero_grad()
        (0.5 * (torch.tensor(lam) * p * p).sum()).backward()
        opt.step()
    np.testing.assert_allclose(w, p.detach().numpy(), rtol=1e-13)

    keras = _keras_adamw(w0.copy(), lambda x: lam * x, 50, **kw)
    gap = np.max(np.abs(w - keras) / np.abs(keras))
    low, high = keras_gap
    assert low < gap < high, gap
