"""fastdecay.torch.ReduceLROnPlateau against torch's on the same metric sequences: the same
rates with a constant lr, the cut factor times the schedule with a scheduled one, and a
checkpoint that carries the cuts."""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.optim.lr_scheduler import ReduceLROnPlateau as TorchPlateau  # noqa: E402

import fastdecay as fd  # noqa: E402
from fastdecay.torch import SGD, AdamW, ReduceLROnPlateau  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

EPOCHS, STEPS_PER_EPOCH = 60, 5
OPTIONS = [
    dict(),
    dict(mode="max", factor=0.5, patience=2, threshold=0.05, threshold_mode="abs"),
    dict(factor=0.3, patience=1, cooldown=2, min_lr=1e-3),
    dict(factor=0.5, patience=0, min_lr=[1e-4, 0.02], eps=1e-3),
]


def _metrics(seed=0):
    """A loss that improves for a third of the epochs, then stalls in noise."""
    rng = np.random.default_rng(seed)
    return list(np.maximum(np.linspace(1.0, -1.0, EPOCHS), 0.3) + 0.02 * rng.standard_normal(EPOCHS))


def _params():
    return [{"params": [torch.nn.Parameter(torch.zeros(3))]}, {"params": [torch.nn.Parameter(torch.zeros(2))]}]


@pytest.mark.parametrize("kw", OPTIONS, ids=range(len(OPTIONS)))
def test_constant_lr_gives_torchs_rates_bit_for_bit(kw):
    torch_opt = torch.optim.SGD(_params(), lr=0.1)
    ours_torch_opt = torch.optim.SGD(_params(), lr=0.1)
    fused_opt = SGD(_params(), lr=0.1)
    ref = TorchPlateau(torch_opt, **kw)
    ours = [ReduceLROnPlateau(ours_torch_opt, **kw), ReduceLROnPlateau(fused_opt, **kw)]
    cuts = 0
    for metric in _metrics():
        ref.step(metric)
        for sched in ours:
            sched.step(metric)
            assert sched.get_last_lr() == ref.get_last_lr()
            assert [g["lr"] for g in sched.optimizer.param_groups] == [g["lr"] for g in torch_opt.param_groups]
            assert (sched.best, sched.num_bad_epochs, sched.cooldown_counter) == (
                ref.best, ref.num_bad_epochs, ref.cooldown_counter)
        cuts += ref.get_last_lr()[0] < 0.1
    assert cuts > 0  # the sequence does make it cut
    assert ours[1].state_dict().keys() == ref.state_dict().keys()


def _with_plateau(kw, base):
    """(fastdecay SGD on ``base`` with our plateau, torch SGD whose lr is set each step to
    base(t) times the cut factor a torch plateau computes on a dummy optimizer of lr 1)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(9, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1)).double()
    twin = copy.deepcopy(model)
    ours = SGD(model.parameters(), lr=base, momentum=0.9)
    plateau = ReduceLROnPlateau(ours, **kw)
    ref = torch.optim.SGD(twin.parameters(), lr=base(0), momentum=0.9, foreach=False)
    dummy = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    ref_plateau = TorchPlateau(dummy, **kw)
    return model, ours, plateau, twin, ref, ref_plateau, dummy


@pytest.mark.parametrize("kw", OPTIONS[:3], ids=range(3))
def test_scheduled_lr_is_the_cut_factor_times_the_schedule(kw):
    base = fd.warmup(fd.cosine(0.05, EPOCHS * STEPS_PER_EPOCH), 12)
    # min_lr and eps judge the group's rate (tested below), the dummy's lr is the factor alone
    kw = {k: v for k, v in kw.items() if k != "min_lr"} | {"eps": 0.0}
    model, ours, plateau, twin, ref, ref_plateau, dummy = _with_plateau(kw, base)
    g = torch.Generator().manual_seed(1)
    mine, theirs = [], []
    for epoch, metric in enumerate(_metrics(1)):
        for k in range(STEPS_PER_EPOCH):
            t = epoch * STEPS_PER_EPOCH + k
            x = torch.randn(8, 9, generator=g, dtype=torch.float64)
            factor = dummy.param_groups[0]["lr"]
            assert ours.param_groups[0]["lr"](t) == base(t) * factor
            ref.param_groups[0]["lr"] = base(t) * factor
            for m, opt, out in ((model, ours, mine), (twin, ref, theirs)):
                opt.zero_grad()
                m(x).pow(2).mean().backward()
                opt.step()
                out.append(torch.cat([p.detach().flatten() for p in m.parameters()]).clone())
        plateau.step(metric)
        ref_plateau.step(metric)
        assert plateau.get_last_lr()[0] == pytest.approx(base((epoch + 1) * STEPS_PER_EPOCH)
                                                         * dummy.param_groups[0]["lr"], rel=1e-15, abs=0)
    assert dummy.param_groups[0]["lr"] < 1e-2  # several cuts happened
    cut = ours.param_groups[0]["lr"]
    assert cut.kind == "product" and len(cut.params["schedules"]) == 2  # the cuts stay one factor
    np.testing.assert_allclose(torch.stack(mine).numpy(), torch.stack(theirs).numpy(), rtol=1e-10, atol=1e-12)


def test_min_lr_bounds_the_scheduled_rate_at_the_cut():
    base = fd.exponential(0.1, gamma=0.99)
    opt = SGD(_params(), lr=base)
    plateau = ReduceLROnPlateau(opt, factor=0.1, patience=0, min_lr=[0.02, 0.0])
    p = [g["params"][0] for g in opt.param_groups]
    for _ in range(5):  # five updates: the groups' step count is 5
        for q in p:
            q.grad = torch.ones_like(q)
        opt.step()
    plateau.step(1.0)
    plateau.step(1.0)  # no improvement: one cut
    rates = [g["lr"](5) for g in opt.param_groups]
    assert rates[0] == pytest.approx(0.02, rel=1e-15) and rates[1] == pytest.approx(base(5) * 0.1, rel=1e-15)
    assert plateau.get_last_lr() == rates
    plateau.step(1.0)  # group 0 is at its floor: within eps, no cut; group 1 cut again
    assert opt.param_groups[0]["lr"](5) == rates[0]
    assert opt.param_groups[1]["lr"](5) == pytest.approx(base(5) * 0.01, rel=1e-15)


def test_cuts_travel_with_the_optimizer_checkpoint(tmp_path):
    base = fd.warmup(fd.cosine(1e-2, 200), 10)
    model = torch.nn.Linear(4, 1).double()
    opt = AdamW(model.parameters(), lr=base)
    plateau = ReduceLROnPlateau(opt, factor=0.5, patience=1)
    x = torch.randn(16, 4, dtype=torch.float64)

    def run(model, opt, plateau, epochs):
        for _ in range(epochs):
            for _ in range(5):
                opt.zero_grad()
                loss = model(x).pow(2).mean()
                loss.backward()
                opt.step()
            plateau.step(1.0)  # a flat metric: cuts every other epoch
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    run(model, opt, plateau, 6)
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "plateau": plateau.state_dict()},
               tmp_path / "ckpt.pt")
    uninterrupted = run(model, opt, plateau, 6)
    saved = torch.load(tmp_path / "ckpt.pt")  # weights_only=True
    model2 = torch.nn.Linear(4, 1).double()
    model2.load_state_dict(saved["model"])
    opt2 = AdamW(model2.parameters(), lr=base)
    opt2.load_state_dict(saved["opt"])
    plateau2 = ReduceLROnPlateau(opt2, factor=0.5, patience=1)
    plateau2.load_state_dict(saved["plateau"])
    assert opt2.param_groups[0]["lr"](30) == base(30) * 0.25  # two cuts so far
    assert torch.equal(run(model2, opt2, plateau2, 6), uninterrupted)
