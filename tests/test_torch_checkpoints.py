"""fastdecay.torch checkpoints: plain data (torch.load with weights_only=True), schedules
rebuilt exactly, and state dicts exchanged with torch's own SGD / Adam / AdamW mid-training
continuing on the trajectory of a run that never stopped."""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fastdecay as fd  # noqa: E402
from fastdecay.torch import SGD, Adam, AdamW, LRScheduler  # noqa: E402
from fastdecay.torch import _decode_schedule, _encode_schedule  # noqa: E402

BEFORE, AFTER = 40, 110
pytestmark = pytest.mark.usefixtures("one_torch_thread")
  # steps before the checkpoint, steps after it
WARMUP_COSINE = fd.warmup(fd.cosine(2e-2, BEFORE + AFTER, min_lr=1e-4), 15)


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(11, 17), torch.nn.Tanh(), torch.nn.Linear(17, 3),
                               torch.nn.Tanh(), torch.nn.Linear(3, 1)).double()


def _groups(model):
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    return [{"params": weights}, {"params": biases, "weight_decay": 0.0}]


def _batches():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(BEFORE + AFTER, 32, 11, generator=g, dtype=torch.float64)
    return x, torch.sin(x.sum(-1, keepdim=True))


def _train(model, opt, start, stop, sched=None):
    """Steps start .. stop - 1 on their own batches; the parameters after each step."""
    x, y = _batches()
    out = []
    for t in range(start, stop):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x[t]), y[t]).backward()
        opt.step()
        if sched is not None:
            sched.step()
        out.append(torch.cat([p.detach().flatten() for p in model.parameters()]).clone())
    return torch.stack(out).numpy()


def _close(a, b, rtol=1e-10):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.max(np.abs(b)))


def _save_load(obj, path):
    torch.save(obj, path)
    return torch.load(path)  # torch's default: weights_only=True


def _resumed_model(model):
    other = _model(seed=99)
    other.load_state_dict(copy.deepcopy(model.state_dict()))
    return other


# ----------------------------------------------------------------------------- plain data


def _all_kinds():
    return [
        fd.constant(0.1), fd.step(0.1, 0.5, 3), fd.multistep(0.1, 0.1, [3, 7]),
        fd.exponential(0.1, gamma=0.9, decay_steps=4, staircase=True), fd.inverse_time(0.1, 0.5),
        fd.polynomial(0.1, 50, power=2.0), fd.cosine(1e-3, 100, min_lr=1e-5), fd.cosine_restarts(0.1, 10, period_mult=2),
        fd.linear(0.0, 0.1, 30), fd.piecewise([3, 6], [0.1, 0.01, 0.001]), WARMUP_COSINE,
        fd.join([fd.constant(0.1), fd.linear(0.1, 0.0, 10)], [5]), fd.one_cycle(0.1, 100),
        fd.cyclic(0.01, 0.1, 10, mode="triangular2"), fd.inverse_sqrt(0.1, 10), fd.wsd(0.1, 100, warmup_steps=10),
        fd.constant_shrinkage(fd.cosine(1.0, 4), 0.1, total_steps=4),
        fd.constant_shrinkage(fd.exponential(0.1, gamma=0.5), 0.01),
        fd.constant_shrinkage(fd.inverse_time(0.1, 0.5, staircase=True), 0.01),
        fd.tabulated(np.linspace(0.1, 0.0, 40)), WARMUP_COSINE * fd.step(1.0, 0.5, 30) * 0.5,
    ]


@pytest.mark.parametrize("schedule", _all_kinds(), ids=lambda s: s.kind)
def test_every_schedule_survives_a_weights_only_file(schedule, tmp_path):
    back = _decode_schedule(_save_load(_encode_schedule(schedule), tmp_path / "s.pt"), "s")
    assert np.array_equal(back.segments, schedule.segments, equal_nan=True)  # side rows start at NaN
    assert repr(back) == repr(schedule) and back.kind == schedule.kind and back == schedule
    t = np.arange(300)
    assert np.array_equal(back(t), schedule(t))


def test_a_schedule_with_parameters_that_are_not_plain_data_keeps_its_rates(tmp_path):
    odd = fd.from_function(lambda t: 0.1 / (1 + t), 30)  # its params hold the function
    encoding = _save_load(_encode_schedule(odd), tmp_path / "s.pt")
    assert encoding["params"] is None
    back = _decode_schedule(encoding, "s")
    assert np.array_equal(back.table(50), odd.table(50)) and back.kind == "tabulated"


@pytest.mark.parametrize("bad", [None, {"kind": "cosine"}, {"fastdecay_schedule": 2},
                                 {"fastdecay_schedule": 1, "kind": "cosine", "segments": [[0.0] * 9]}])
def test_a_bad_encoding_is_refused_by_name(bad):
    with pytest.raises(ValueError, match=r"where\['lr'\]"):
        _decode_schedule(bad, "where['lr']")


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=WARMUP_COSINE, momentum=0.9, nesterov=True, weight_decay=fd.linear(0.0, 1e-3, 100)),
    lambda ps: SGD(ps, lr=fd.multistep(0.05, 0.3, [50, 70]), momentum=0.9, on_drop="rescale", lr_in_buffer=True),
    lambda ps: AdamW(ps, lr=WARMUP_COSINE, weight_decay=fd.constant_shrinkage(WARMUP_COSINE, 0.05, total_steps=150,
                                                                              reference_lr=2e-2), amsgrad=True),
    lambda ps: Adam(ps, lr=fd.exponential(1e-2, gamma=0.99), weight_decay=1e-3),
], ids=["sgd-nesterov", "sgd-lr-in-buffer", "adamw-amsgrad", "adam"])
def test_weights_only_round_trip_resumes_bit_identically(make, tmp_path):
    model = _model()
    opt = make(_groups(model))
    _train(model, opt, 0, BEFORE)
    saved = _save_load(opt.state_dict(), tmp_path / "opt.pt")
    resumed_model = _resumed_model(model)
    uninterrupted = _train(model, opt, BEFORE, BEFORE + AFTER)

    resumed = make(_groups(resumed_model))
    resumed.load_state_dict(saved)
    for mine, theirs in zip(resumed.param_groups, opt.param_groups):
        for key in ("lr", "weight_decay"):
            assert type(mine[key]) is type(theirs[key])
            if isinstance(theirs[key], fd.Schedule):
                assert mine[key] == theirs[key] and repr(mine[key]) == repr(theirs[key])
    assert np.array_equal(_train(resumed_model, resumed, BEFORE, BEFORE + AFTER), uninterrupted)


def test_state_dict_numbers_are_the_rates_of_the_next_update():
    model = _model()
    wd = fd.linear(0.0, 1e-2, 100)
    opt = AdamW(_groups(model), lr=WARMUP_COSINE, weight_decay=wd)
    _train(model, opt, 0, 7)
    groups = opt.state_dict()["param_groups"]
    assert groups[0]["lr"] == WARMUP_COSINE(7) and groups[0]["weight_decay"] == wd(7)
    assert set(groups[0]["schedules"]) == {"lr", "weight_decay"}
    assert groups[1]["weight_decay"] == 0.0 and set(groups[1]["schedules"]) == {"lr"}
    assert groups[0]["decoupled_weight_decay"] is True
    assert isinstance(opt.param_groups[0]["lr"], fd.Schedule)  # the live groups keep their schedules


# ----------------------------------------------------------------------------- fastdecay -> torch


@pytest.mark.parametrize("ours, theirs, kw", [
    (AdamW, torch.optim.AdamW, dict(weight_decay=1e-2, amsgrad=True)),
    (Adam, torch.optim.Adam, dict(weight_decay=1e-3)),
    (AdamW, torch.optim.Adam, dict(weight_decay=1e-2)),  # torch's Adam reads decoupled_weight_decay
    (SGD, torch.optim.SGD, dict(momentum=0.9, nesterov=True, weight_decay=1e-3)),
    (SGD, torch.optim.SGD, dict(momentum=0.8, dampening=0.1)),
], ids=["adamw", "adam", "adamw-into-adam", "sgd-nesterov", "sgd-dampening"])
def test_fastdecay_checkpoint_continues_in_torch(ours, theirs, kw, tmp_path):
    model = _model()
    opt = ours(_groups(model), lr=WARMUP_COSINE, **kw)
    _train(model, opt, 0, BEFORE)
    saved = _save_load(opt.state_dict(), tmp_path / "opt.pt")
    resumed_model = _resumed_model(model)
    uninterrupted = _train(model, opt, BEFORE, BEFORE + AFTER)

    ref_kw = {k: v for k, v in kw.items() if k != "weight_decay"}
    ref = theirs(_groups(resumed_model), lr=0.123, foreach=False, **ref_kw)
    ref.load_state_dict(saved)
    assert ref.param_groups[0]["lr"] == WARMUP_COSINE(BEFORE)
    sched = LRScheduler(ref, WARMUP_COSINE, last_epoch=BEFORE - 1)  # keeps the rate on the schedule
    _close(_train(resumed_model, ref, BEFORE, BEFORE + AFTER, sched), uninterrupted)


# ----------------------------------------------------------------------------- torch -> fastdecay


@pytest.mark.parametrize("theirs, ours, kw", [
    (torch.optim.AdamW, AdamW, dict(weight_decay=1e-2, amsgrad=True)),
    (torch.optim.Adam, Adam, dict(weight_decay=1e-3)),
    (torch.optim.Adam, AdamW, dict(weight_decay=1e-3, decoupled_weight_decay=True)),
    (torch.optim.SGD, SGD, dict(momentum=0.9, nesterov=True, weight_decay=1e-3)),
    (torch.optim.SGD, SGD, dict(momentum=0.8, dampening=0.1)),
    (torch.optim.SGD, SGD, dict()),
], ids=["adamw", "adam", "adam-decoupled", "sgd-nesterov", "sgd-dampening", "sgd-plain"])
def test_torch_checkpoint_continues_in_fastdecay(theirs, ours, kw, tmp_path):
    model = _model()
    ref = theirs(_groups(model), lr=0.02, foreach=False, **kw)
    sched = LRScheduler(ref, WARMUP_COSINE)
    _train(model, ref, 0, BEFORE, sched)
    saved = _save_load({"opt": ref.state_dict(), "sched": sched.state_dict()}, tmp_path / "ckpt.pt")
    resumed_models = [_resumed_model(model), _resumed_model(model)]
    uninterrupted = _train(model, ref, BEFORE, BEFORE + AFTER, sched)

    # two ways to carry on: torch's way (a scheduler restored from its state dict) ...
    opt = ours(_groups(resumed_models[0]), lr=0.5)
    opt.load_state_dict(copy.deepcopy(saved["opt"]))  # as torch's, a load takes the dict's tensors as they are
    resumed_sched = LRScheduler(opt, fd.constant(1.0))
    resumed_sched.load_state_dict(saved["sched"])
    assert [g["lr"] for g in opt.param_groups] == [WARMUP_COSINE(BEFORE)] * 2
    _close(_train(resumed_models[0], opt, BEFORE, BEFORE + AFTER, resumed_sched), uninterrupted)
    # ... or the schedule inside the optimizer, read in the kernel at the restored step counts
    opt = ours(_groups(resumed_models[1]), lr=0.5)
    opt.load_state_dict(saved["opt"])
    if theirs is torch.optim.SGD:  # torch's SGD counts no steps: set the count the schedule is at
        for p in resumed_models[1].parameters():
            opt.state[p]["step"] = torch.tensor(float(BEFORE))
    for group in opt.param_groups:
        group["lr"] = WARMUP_COSINE
    _close(_train(resumed_models[1], opt, BEFORE, BEFORE + AFTER), uninterrupted)


def test_old_torch_state_dicts_get_torch_defaults():
    """Keys older torch versions did not save are filled in as torch's __setstate__ fills them."""
    model = _model()
    ref = torch.optim.Adam(_groups(model), lr=1e-2, foreach=False)
    _train(model, ref, 0, 5)
    old = ref.state_dict()
    for group in old["param_groups"]:
        for key in ("maximize", "foreach", "capturable", "differentiable", "fused", "decoupled_weight_decay",
                    "amsgrad"):
            group.pop(key)
    for s in old["state"].values():
        s["step"] = float(s["step"])  # torch < 1.12 kept a number
    for cls, decoupled in ((Adam, False), (AdamW, True)):
        opt = cls(_groups(_resumed_model(model)), lr=0.5)
        opt.load_state_dict(old)
        for group in opt.param_groups:
            assert group["maximize"] is False and group["amsgrad"] is False and group["decoupled"] is decoupled
            assert "decoupled_weight_decay" not in group
        steps = {float(s["step"]) for s in opt.state.values()}
        assert steps == {5.0} and all(isinstance(s["step"], torch.Tensor) for s in opt.state.values())

    sgd = torch.optim.SGD(_groups(model), lr=0.1, momentum=0.9)
    _train(model, sgd, 0, 2)
    old = sgd.state_dict()
    for group in old["param_groups"]:
        for key in ("nesterov", "maximize", "foreach", "differentiable", "fused"):
            group.pop(key)
    opt = SGD(_groups(_resumed_model(model)), lr=0.5)
    opt.load_state_dict(old)
    assert all(g["nesterov"] is False and g["on_drop"] == "keep" and g["decoupled"] is False for g in opt.param_groups)
    assert {float(s["step"]) for s in opt.state.values()} == {1.0}  # a momentum buffer: updated at least once


def test_a_bad_checkpoint_is_refused_before_anything_changes():
    model = _model()
    opt = AdamW(_groups(model), lr=WARMUP_COSINE)
    _train(model, opt, 0, 3)
    good = opt.state_dict()
    before = copy.deepcopy(opt.state_dict())

    def refused(edit, error, match):
        bad = copy.deepcopy(good)
        edit(bad)
        with pytest.raises(error, match=match):
            opt.load_state_dict(bad)
        after = opt.state_dict()
        assert after["param_groups"][0]["schedules"]["lr"]["kind"] == "warmup"
        for k, s in before["state"].items():
            assert all(torch.equal(v, after["state"][k][key]) for key, v in s.items())

    refused(lambda sd: sd["param_groups"][1].update(lr=-1.0, schedules={}), ValueError,
            r"state_dict\['param_groups'\]\[1\]: lr must be")
    refused(lambda sd: sd["param_groups"][1]["schedules"].update(lr={"kind": "cosine"}), ValueError,
            r"state_dict\['param_groups'\]\[1\]\['schedules'\]\['lr'\] must be a fastdecay schedule")
    refused(lambda sd: sd["param_groups"][0].update(betas=(0.9, 1.5)), ValueError,
            r"state_dict\['param_groups'\]\[0\]: betas\[1\] must be")
    refused(lambda sd: sd["param_groups"][0].pop("eps"), ValueError, r"state_dict\['param_groups'\]\[0\] must hold 'eps'")
    refused(lambda sd: sd["param_groups"].pop(), ValueError, "1 param groups, the optimizer 2")
    refused(lambda sd: sd["state"][1].update(step=torch.tensor([3.0, 3.0])), TypeError,
            r"state_dict\['state'\]\[1\]\['step'\] must be a step count .* got tensor\(\[3\., 3\.\]\)")
    refused(lambda sd: sd["state"][0].update(step="3"), TypeError,
            r"state_dict\['state'\]\[0\]\['step'\] must be a step count .* got '3'")
    for count in (float("nan"), float("inf"), -3.0, 1.5, 2.0**60):  # counts no step could have left
        refused(lambda sd: sd["state"][2].update(step=torch.tensor(count)), ValueError,
                r"state_dict\['state'\]\[2\]\['step'\] must be a whole number of steps")
    damaged = _encode_schedule(WARMUP_COSINE)
    damaged["segments"][1, 4] = float("nan")
    refused(lambda sd: sd["param_groups"][1]["schedules"].update(lr=damaged), ValueError,
            r"state_dict\['param_groups'\]\[1\]\['schedules'\]\['lr'\]\['segments'\] must be a schedule's")


def _damaged_tables():
    """(name, schedule, edit of its encoded segments, what the refusal says): tables no factory
    makes, each of which the kernels would read out of bounds, as a rate below 0 or as NaN."""
    tab = fd.tabulated([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])  # two data rows after its segment
    prod = fd.cosine(1.0, 100) * fd.tabulated([0.1, 0.2])  # a product segment, its factors, a data row

    def put(*index_value):
        def edit(segments):
            for index, value in zip(index_value[::2], index_value[1::2]):
                segments[index] = value
        return edit

    return [
        ("pointer-far-out", tab, put((0, 3), 1e8), "tabulated segment must point at data rows"),
        ("pointer-one-past", tab, put((0, 3), 2.0), "tabulated segment must point at data rows"),
        ("pointer-at-itself", tab, put((0, 3), 0.0), "tabulated segment must point at data rows"),
        ("pointer-fraction", tab, put((0, 3), 1.5), "tabulated segment must point at data rows"),
        ("count-too-large", tab, put((0, 4), 13.0), "tabulated segment must point at data rows"),
        ("count-zero", tab, put((0, 4), 0.0), "tabulated segment must point at data rows"),
        ("factor-past-end", prod, put((0, 4), 9.0), "product segment must point at factor rows"),
        ("factor-a-data-row", prod, put((0, 3), 3.0), "product segment must point at factor rows"),
        ("negative-lr", fd.cosine(0.1, 100), put((0, 3), -0.1), r"parameter p0 of kind cosine must be >= 0, got -0\.1"),
        ("negative-table-value", tab, put((1, 5), -0.3), r"table value must be >= 0, got -0\.3"),
        ("zero-period", fd.step(0.1, 0.5, 10), put((0, 5), 0.0), "parameter p2 of kind exponential must be > 0"),
        ("staircase-flag", fd.step(0.1, 0.5, 10), put((0, 6), 0.5), "parameter p3 of kind exponential must be flag"),
        ("infinite-parameter", fd.cosine(0.1, 100), put((0, 4), float("inf")), "parameter p1 must be finite"),
        ("unknown-kind", fd.cosine(0.1, 100), put((0, 2), 99.0), r"kind 99\.0 is not a primitive's code"),
        ("data-as-segment", fd.cosine(0.1, 100), put((0, 2), 10.0), r"kind 10\.0 is not a primitive's code"),
        ("first-start", fd.cosine(0.1, 100), put((0, 0), 5.0), "first segment of every row must start at 0"),
        ("falling-starts", fd.multistep(0.1, 0.5, [3, 7]), put((2, 0), 1.0), "segment starts must not fall"),
        ("tiny-half-cycle", fd.cyclic(0.1, 1.0, 10), put((0, 5), 1e-300, (0, 6), 1e-300),
         "parameter p2 of kind cyclic must be >= 1"),  # (its rates were -1e300)
        ("inverse-time-power", fd.inverse_time(0.0, 0.5), put((0, 7), -2000.0),
         "parameter p4 of kind inverse_time must be >= -1"),  # (a division by 0 when evaluated)
        ("far-origin", fd.cyclic(0.1, 1.0, 10), put((0, 1), -1e300), "origin must be a finite step"),
    ]


@pytest.mark.parametrize("name, schedule, edit, says", _damaged_tables(), ids=[d[0] for d in _damaged_tables()])
def test_a_checkpoint_schedule_the_kernels_cannot_read_is_refused_at_load(name, schedule, edit, says, tmp_path):
    """A checkpoint (read with ``weights_only=True``) whose schedule table no factory makes is
    refused by ``load_state_dict``, naming it, with the optimizer unchanged; before, a pointer
    out of range crashed the process at the next step, a negated rate moved the weights uphill
    and an unknown kind made them NaN."""
    w = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    saved = SGD([w], lr=schedule, momentum=0.9).state_dict()
    edit(saved["param_groups"][0]["schedules"]["lr"]["segments"])
    bad = _save_load(saved, tmp_path / "bad.pt")
    w2 = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = SGD([w2], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"^state_dict\['param_groups'\]\[0\]\['schedules'\]\['lr'\]\['segments'\]: "
                       r"segments must be a schedule's table: .*" + says):
        opt.load_state_dict(bad)
    assert opt.param_groups[0]["lr"] == 0.1 and not opt.state
    with pytest.raises(ValueError, match="segments must be a schedule's table: .*" + says):  # the public constructor
        fd.Schedule(bad["param_groups"][0]["schedules"]["lr"]["segments"].numpy(), schedule.kind)


@pytest.mark.parametrize("schedule", _all_kinds(), ids=lambda s: s.kind)
def test_every_factory_s_table_is_one_the_constructor_accepts(schedule):
    made = fd.Schedule(schedule.segments, schedule.kind, schedule.params)
    assert made == schedule and np.array_equal(made.table(300), schedule.table(300))
    batch = fd.stack([schedule, fd.tabulated([0.3, 0.2, 0.1]) * schedule, fd.constant(0.0)])
    assert fd.Schedule(batch.segments, "stack") == batch


def test_a_momentum_buffer_without_a_step_count_is_one_update_as_torch_keeps_it():
    """A state with a momentum buffer and no step count (set by hand; torch's SGD keeps none)
    is a parameter updated once: the live optimizer carries the buffer on as torch does and as
    the same state loaded does (it was replaced by the gradient, as at a first step)."""
    def step_from(kind):
        w = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
        opt = (torch.optim.SGD if kind == "torch" else SGD)([w], lr=0.1, momentum=0.9)
        state = {"momentum_buffer": torch.full((3,), 5.0, dtype=torch.float64)}
        if kind == "loaded":
            saved = opt.state_dict()
            saved["state"] = {0: state}
            opt.load_state_dict(saved)
        else:
            opt.state[w] = state
        for _ in range(3):
            w.grad = torch.ones(3, dtype=torch.float64)
            opt.step()
        return w.detach().clone(), opt.state[w]["momentum_buffer"].clone()

    want_w, want_buf = step_from("torch")
    for kind in ("live", "loaded"):
        w, buf = step_from(kind)
        assert torch.equal(w, want_w) and torch.equal(buf, want_buf), kind


# ----------------------------------------------------------------------------- the scheduler


def test_lr_scheduler_state_dict_is_plain_data_and_restores_the_rate_at_once(tmp_path):
    schedule = fd.join([fd.linear(0.0, 0.1, 10), fd.cosine(0.1, 50)], [10])
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = LRScheduler(opt, schedule)
    for _ in range(23):
        opt.step()
        sched.step()
    saved = _save_load(sched.state_dict(), tmp_path / "sched.pt")

    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    resumed = LRScheduler(opt2, fd.constant(0.5))  # the checkpoint's schedule replaces this one
    assert opt2.param_groups[0]["lr"] == 0.5
    resumed.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == schedule(23) == resumed.get_last_lr()[0]
    assert repr(resumed.schedules[0]) == repr(schedule)
    for t in range(24, 60):
        opt2.step()
        resumed.step()
        assert opt2.param_groups[0]["lr"] == schedule(t)


_L = torch.optim.lr_scheduler
_COMPOSED = {  # an LRScheduler inside torch's composite schedulers, in either place
    "sequential, first": lambda opt, s: _L.SequentialLR(opt, [LRScheduler(opt, s), _L.ExponentialLR(opt, 0.9)],
                                                         milestones=[6]),
    "sequential, second": lambda opt, s: _L.SequentialLR(opt, [_L.ExponentialLR(opt, 0.9), LRScheduler(opt, s)],
                                                          milestones=[6]),
    "chained, first": lambda opt, s: _L.ChainedScheduler([LRScheduler(opt, s), _L.ExponentialLR(opt, 0.9)]),
    "chained, second": lambda opt, s: _L.ChainedScheduler([_L.ExponentialLR(opt, 0.9), LRScheduler(opt, s)]),
}


@pytest.mark.parametrize("at", [3, 9])
@pytest.mark.parametrize("composed", list(_COMPOSED))
def test_lr_scheduler_inside_torch_s_composite_schedulers_resumes_the_uninterrupted_rates(composed, at, tmp_path):
    """The optimizer's state dict restores the rate the composite made; loading the
    scheduler's state must not overwrite it with the LRScheduler's own rate."""
    schedule = fd.step(0.1, 0.5, 2)

    def made():
        opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(3))], lr=0.1)
        return opt, _COMPOSED[composed](opt, schedule)

    opt, sched = made()
    uninterrupted, saved = [], None
    for t in range(14):
        if t == at:
            saved = _save_load({"opt": opt.state_dict(), "sched": sched.state_dict()}, tmp_path / "ck.pt")
        uninterrupted.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    opt, sched = made()
    opt.load_state_dict(saved["opt"])
    sched.load_state_dict(saved["sched"])
    resumed = []
    for t in range(at, 14):
        resumed.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert resumed == uninterrupted[at:]
    assert len(set(uninterrupted)) > 5  # (the rates move: the check can fail)


def test_lr_scheduler_keeps_a_tensor_lr_a_tensor_when_loading():
    """As torch's schedulers do: a compiled step reads the same lr tensor every step."""
    opt = torch.optim.Adam([torch.nn.Parameter(torch.ones(3))], lr=torch.tensor(0.01, dtype=torch.float64))
    lr = opt.param_groups[0]["lr"]
    sched = LRScheduler(opt, fd.cosine(0.01, 10))
    for _ in range(3):
        opt.step()
        sched.step()
    saved = sched.state_dict()
    fresh = LRScheduler(opt, fd.constant(0.02))
    assert float(lr) == 0.02
    fresh.load_state_dict(saved)
    assert opt.param_groups[0]["lr"] is lr and float(lr) == fd.cosine(0.01, 10)(3)


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=fd.one_cycle(0.05, 150), momentum=fd.one_cycle(0.05, 150).momentum, nesterov=True),
    lambda ps: AdamW(ps, lr=fd.one_cycle(1e-2, 150), betas=(fd.one_cycle(1e-2, 150).momentum, 0.999)),
], ids=["sgd-momentum", "adamw-beta1"])
def test_scheduled_momentum_and_beta1_travel_as_plain_data(make, tmp_path):
    """A schedule inside betas is encoded member by member; torch's optimizers get numbers."""
    model = _model()
    opt = make(_groups(model))
    _train(model, opt, 0, BEFORE)
    saved = _save_load(opt.state_dict(), tmp_path / "opt.pt")
    group = saved["param_groups"][0]
    key = "momentum" if isinstance(opt, SGD) else "betas"
    assert key in group["schedules"]
    plain = group[key] if key == "momentum" else group[key][0]
    assert isinstance(plain, float) and 0.8 < plain < 0.96
    resumed_model = _resumed_model(model)
    uninterrupted = _train(model, opt, BEFORE, BEFORE + AFTER)
    resumed = make(_groups(resumed_model))
    resumed.load_state_dict(saved)
    assert np.array_equal(_train(resumed_model, resumed, BEFORE, BEFORE + AFTER), uninterrupted)
    theirs = (torch.optim.SGD if key == "momentum" else torch.optim.AdamW)(_groups(_model()), lr=0.1)
    theirs.load_state_dict(saved)  # numbers where torch reads numbers


def test_a_checkpoint_loaded_under_inference_mode_steps_on_as_torch_s_does():
    """State loaded inside ``torch.inference_mode()`` (step counts apart: a parameter without a
    gradient at one step) is made outside it, so the next step writes it: the step torch's
    Adam takes, where the counts were inference tensors and the step failed half done."""
    results = []
    for make in (torch.optim.Adam, Adam):
        ps = [torch.nn.Parameter(torch.full((3,), 1.0 + k)) for k in range(2)]
        opt = make(ps, lr=0.1)
        for p in ps:
            p.grad = torch.ones(3)
        opt.step()
        ps[1].grad = None
        opt.step()
        saved = copy.deepcopy(opt.state_dict())
        fresh = [torch.nn.Parameter(torch.full((3,), 1.0 + k)) for k in range(2)]
        opt = make(fresh, lr=0.1)
        with torch.inference_mode():
            opt.load_state_dict(saved)
        for p in fresh:
            p.grad = torch.ones(3)
        opt.step()
        results.append([p.detach().clone() for p in fresh] + [opt.state[p]["step"].clone() for p in fresh])
    for theirs, ours in zip(*results):
        assert torch.equal(theirs, ours)


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=np.float64(0.1) * np.sqrt(256 / 256), momentum=np.float64(0.9), dampening=np.float32(0)),
    lambda ps: AdamW(ps, lr=np.array(1e-3), betas=(np.float64(0.9), np.float32(0.999)), eps=np.float64(1e-8),
                     weight_decay=np.float64(0.01)),
    lambda ps: Adam(ps, lr=np.float32(1e-3), betas=(fd.linear(0.8, 0.9, 10), np.float64(0.99))),
], ids=["sgd", "adamw", "adam-scheduled-beta1"])
def test_numpy_numbers_as_hyperparameters_save_as_plain_data(make, tmp_path):
    """Rates computed with NumPy are plain Python numbers in the state dicts of the optimizer
    and of both schedulers, which ``torch.load``'s default ``weights_only=True`` reads (it
    refuses NumPy's scalars); also a NumPy number set in a group after construction."""
    from fastdecay.torch import ReduceLROnPlateau

    w = torch.nn.Parameter(torch.ones(3))
    opt = make([w])
    opt.add_param_group({"params": [torch.nn.Parameter(torch.ones(2))], "lr": np.float64(0.2)})
    w.grad = torch.ones(3)
    opt.step()
    plateau = ReduceLROnPlateau(opt, factor=np.float64(0.5), min_lr=[np.float64(1e-4), np.float32(0.0)],
                                eps=np.float64(1e-9), threshold=np.float32(1e-3))
    plateau.step(np.float64(1.0))
    opt.param_groups[0]["weight_decay"] = np.float64(0.0)  # a user's edit after construction
    sched = LRScheduler(opt, fd.cosine(np.float64(0.1), 100))
    for name, obj in (("optimizer", opt), ("plateau", plateau), ("scheduler", sched)):
        back = _save_load(obj.state_dict(), tmp_path / f"{name}.pt")
        assert isinstance(back, dict)
    loaded = make([torch.nn.Parameter(torch.ones(3))])
    loaded.add_param_group({"params": [torch.nn.Parameter(torch.ones(2))]})
    loaded.load_state_dict(_save_load(opt.state_dict(), tmp_path / "again.pt"))
    assert [g["lr"] for g in loaded.param_groups] == [g["lr"] for g in opt.param_groups]


@pytest.mark.parametrize("make, error, match", [
    (lambda ps: Adam(ps, amsgrad=1), TypeError, r"param_groups\[0\]: amsgrad must be True or False, got 1"),
    (lambda ps: Adam(ps, decoupled_weight_decay=1), TypeError, "decoupled_weight_decay must be True or False"),
    (lambda ps: AdamW(ps, maximize=0), TypeError, r"param_groups\[0\]: maximize must be True or False, got 0"),
    (lambda ps: SGD(ps, lr=0.1, lr_in_buffer=1, momentum=0.9), TypeError, "lr_in_buffer must be True or False"),
    (lambda ps: SGD(ps, lr=0.1, decoupled="yes"), TypeError, "decoupled must be True or False"),
])
def test_options_are_checked_when_the_optimizer_is_made(make, error, match):
    """A bad option is refused by the constructor, not at every step after it."""
    with pytest.raises(error, match=match):
        make([torch.nn.Parameter(torch.ones(2))])


@pytest.mark.parametrize("group, error, match", [
    ({"momentum": -1.0}, ValueError, r"param_groups\[1\]: momentum must be"),
    ({"lr_in_buffer": 1}, TypeError, r"param_groups\[1\]: lr_in_buffer must be True or False"),
    ({"momentum": fd.stack([fd.constant(0.9)] * 2)}, ValueError, r"param_groups\[1\]: momentum must be"),
])
def test_add_param_group_refuses_a_bad_group_and_does_not_add_it(group, error, match):
    w = torch.nn.Parameter(torch.ones(2))
    opt = SGD([w], lr=0.1, momentum=0.9)
    with pytest.raises(error, match=match):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.ones(3))], **group})
    assert len(opt.param_groups) == 1
    w.grad = torch.ones(2)
    opt.step()  # the optimizer steps on as it was
    assert torch.allclose(w.detach(), torch.full((2,), 0.9))
