"""The call contract of fd.sgd_step / fd.adamw_step: lists, torch zero-copy, grad_scale,
found_inf, and bad input that leaves every buffer byte-identical."""

import numpy as np
import pytest

import fastdecay as fd

torch = pytest.importorskip("torch")

SHAPES = [(3, 5), (257,), (), (0,), (70_001,), (2, 3, 4)]


def _arrays(shapes, dtype, seed, fill=None):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=s) if fill is None else np.full(s, fill)).astype(dtype) for s in shapes]


def _sgd_state(dtype=np.float64):
    return _arrays(SHAPES, dtype, 1), _arrays(SHAPES, dtype, 2), _arrays(SHAPES, dtype, 3)


SGD_KW = dict(lr=fd.step(0.1, 0.5, 3), momentum=0.9, nesterov=True, weight_decay=fd.linear(0.0, 0.1, 5))
ADAM_KW = dict(lr=fd.cosine(0.01, 10), weight_decay=0.1, amsgrad=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_list_is_the_same_as_one_call_per_array(dtype):
    ws, gs, bs = _sgd_state(dtype)
    singles = [(w.copy(), b.copy()) for w, b in zip(ws, bs)]
    for t in range(5):
        fd.sgd_step(ws, gs, step=t, momentum_buffer=bs, **SGD_KW)
        for (w, b), g in zip(singles, gs):
            fd.sgd_step(w, g, step=t, momentum_buffer=b, **SGD_KW)
    for (w, b), w_list, b_list in zip(singles, ws, bs):
        assert np.array_equal(w, w_list) and np.array_equal(b, b_list)
    ws, gs = _arrays(SHAPES, dtype, 4), _arrays(SHAPES, dtype, 5)
    state = [_arrays(SHAPES, dtype, 6 + k) for k in range(3)]
    singles = [[w.copy()] + [s[k].copy() for s in state] for k, w in enumerate(ws)]
    for t in range(5):
        fd.adamw_step(ws, gs, state[0], state[1], max_exp_avg_sq=state[2], step=t, **ADAM_KW)
        for (w, m, v, vm), g in zip(singles, gs):
            fd.adamw_step(w, g, m, v, max_exp_avg_sq=vm, step=t, **ADAM_KW)
    for k, (w, m, v, vm) in enumerate(singles):
        assert np.array_equal(w, ws[k]) and np.array_equal(m, state[0][k]) and np.array_equal(vm, state[2][k])


def test_a_list_may_mix_float32_and_float64():
    ws = [np.ones(10, np.float32), np.ones(7, np.float64)]
    gs = [np.full(10, 0.5, np.float32), np.full(7, 0.5)]
    fd.sgd_step(ws, gs, step=0, lr=0.1)
    assert ws[0].dtype == np.float32 and np.allclose(ws[0], 0.95) and np.allclose(ws[1], 0.95)


def test_torch_tensors_are_updated_in_place_zero_copy():
    p = torch.nn.Parameter(torch.randn(1001, dtype=torch.float32))
    g = torch.randn(1001)
    m, v = torch.zeros(1001), torch.zeros(1001)
    ptrs = [x.data_ptr() for x in (p, m, v)]
    expected = p.detach().numpy().copy()
    em, ev = np.zeros(1001, np.float32), np.zeros(1001, np.float32)
    fd.adamw_step(expected, g.numpy(), em, ev, step=0, lr=0.01)
    fd.adamw_step(p, g, m, v, step=torch.tensor(0), lr=0.01)
    assert [x.data_ptr() for x in (p, m, v)] == ptrs
    assert np.array_equal(p.detach().numpy(), expected) and np.array_equal(m.numpy(), em)
    buf = torch.empty(1001)
    fd.sgd_step([p], [g], step=0, lr=0.1, momentum=0.9, momentum_buffer=[buf])
    assert torch.equal(buf, g)  # first step: the buffer is the gradient


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grad_scale_divides_the_gradient(dtype):
    ws, gs, bs = _sgd_state(dtype)
    ws2, bs2 = [w.copy() for w in ws], [b.copy() for b in bs]
    for t in range(3):
        fd.sgd_step(ws, [np.array(g * dtype(1024.0)) for g in gs], step=t, momentum_buffer=bs, grad_scale=1024.0, **SGD_KW)
        fd.sgd_step(ws2, gs, step=t, momentum_buffer=bs2, **SGD_KW)
    assert all(np.array_equal(a, b) for a, b in zip(ws + bs, ws2 + bs2))
    w, m, v = (np.ones(300, dtype) for _ in range(3))
    w2, m2, v2 = w.copy(), m.copy(), v.copy()
    g = np.linspace(-1, 1, 300).astype(dtype)
    fd.adamw_step(w, g * dtype(8.0), m, v, step=0, lr=0.1, grad_scale=torch.tensor(8.0))
    fd.adamw_step(w2, g, m2, v2, step=0, lr=0.1)
    assert np.array_equal(w, w2) and np.array_equal(v, v2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1024.0, 2.0 ** -20, 3.0, 1000.0, 0.7])
def test_grad_scale_unscales_as_one_division(dtype, scale):
    """Every rule sees g / grad_scale rounded once, as torch's fused optimizers divide:
    powers of two by their exact inverse (the same bits, subnormal quotients included),
    other scales by a division; each rule's usual and general loop copies alike."""
    rng = np.random.default_rng(11)
    g = rng.standard_normal(1003).astype(dtype)
    g[:200] *= np.finfo(dtype).tiny  # quotients below the normal range round too
    unscaled = g / dtype(scale)
    assert unscaled.dtype == dtype
    if scale != 2.0 ** -20:  # a multiply by 2**20 is exact; every other scale rounds some quotient
        assert not np.array_equal(unscaled * dtype(scale), g)

    def runs(call, n_state, **kw):
        out = []
        for grad, extra in ((g, dict(grad_scale=scale)), (unscaled, {})):
            arrays = [np.linspace(-1, 1, g.size).astype(dtype)] + [np.zeros_like(g) for _ in range(n_state)]
            for t in range(3):
                call(arrays, grad, t, **kw, **extra)
            out.append(arrays)
        return out

    cases = {
        "sgd": (lambda a, grad, t, **kw: fd.sgd_step(a[0], grad, step=t, lr=0.1, **kw), 0, {}),
        "momentum, nesterov": (lambda a, grad, t, **kw: fd.sgd_step(a[0], grad, step=t, lr=0.1, momentum=0.9,
                                                                     momentum_buffer=a[1], **kw), 1,
                               dict(nesterov=True)),
        "adamw, amsgrad": (lambda a, grad, t, **kw: fd.adamw_step(a[0], grad, a[1], a[2], step=t, lr=0.1,
                                                                  max_exp_avg_sq=a[3], **kw), 3, dict(amsgrad=True)),
        "adamw": (lambda a, grad, t, **kw: fd.adamw_step(a[0], grad, a[1], a[2], step=t, lr=0.1, **kw), 2, {}),
        "lion": (lambda a, grad, t, **kw: fd.lion_step(a[0], grad, a[1], step=t, lr=0.1, **kw), 1, {}),
    }
    for name, (call, n_state, kw) in cases.items():
        scaled, plain = runs(call, n_state, **kw)
        for a, b in zip(scaled, plain):
            assert a.tobytes() == b.tobytes(), name


def _snapshot(arrays):
    return [np.asarray(a).tobytes() for a in arrays]


def _numpy_arrays(kw, keys):
    """Every NumPy array the call was given under ``keys`` (lists flattened)."""
    found = []
    for key in keys:
        value = kw.get(key)
        for x in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(x, np.ndarray):
                found.append(x)
    return found


@pytest.mark.parametrize("found_inf", [1.0, np.array(1.0, np.float32), "torch", np.inf, np.array(np.nan),
                                       "torch nan"])
@pytest.mark.parametrize("step", [0, 7])
def test_found_inf_changes_nothing(found_inf, step):
    if isinstance(found_inf, str):  # (inf and NaN are nonzero: the step is skipped)
        found_inf = torch.tensor(float("nan") if "nan" in found_inf else 1.0)
    ws, gs, bs = _sgd_state(np.float32)
    bs = [np.full_like(b, np.nan) for b in bs]  # a first-step buffer stays exactly as it was too
    before = _snapshot(ws + bs)
    fd.sgd_step(ws, gs, step=step, momentum_buffer=bs, found_inf=found_inf, **SGD_KW)
    assert _snapshot(ws + bs) == before
    m, v, vm = (_arrays(SHAPES, np.float32, 9 + k) for k in range(3))
    before = _snapshot(ws + m + v + vm)
    fd.adamw_step(ws, gs, m, v, max_exp_avg_sq=vm, step=step, found_inf=found_inf, **ADAM_KW)
    assert _snapshot(ws + m + v + vm) == before
    fd.adamw_step(ws, gs, m, v, max_exp_avg_sq=vm, step=step, found_inf=0.0, **ADAM_KW)
    assert _snapshot(ws + m + v + vm) != before


# ----------------------------------------------------------------------------- bad input


def _sgd_call(**changes):
    ws, gs, bs = _arrays([(4,), (5,)], np.float64, 1), _arrays([(4,), (5,)], np.float64, 2), \
        _arrays([(4,), (5,)], np.float64, 3)
    kw = dict(param=ws, grad=gs, step=3, lr=0.1, momentum=0.9, momentum_buffer=bs)
    kw.update(changes)
    return kw


def _adam_call(**changes):
    ws, gs = _arrays([(4,), (5,)], np.float32, 1), _arrays([(4,), (5,)], np.float32, 2)
    m, v, vm = (_arrays([(4,), (5,)], np.float32, 3 + k) for k in range(3))
    kw = dict(param=ws, grad=gs, exp_avg=m, exp_avg_sq=v, max_exp_avg_sq=vm, step=3, lr=0.1, amsgrad=True)
    kw.update(changes)
    return kw


BAD_SGD = [
    ("grad", ValueError, dict(grad=[np.ones(4), np.ones(6)])),
    ("grad", ValueError, dict(grad=[np.ones(4)])),
    ("grad", TypeError, dict(grad=[np.ones(4, np.float32), np.ones(5)])),
    ("grad", TypeError, dict(grad=np.ones(4))),
    ("momentum_buffer", ValueError, dict(momentum_buffer=None)),
    ("momentum_buffer", TypeError, dict(momentum_buffer=[np.ones(4), np.ones(5, np.float32)])),
    ("momentum_buffer", ValueError, dict(momentum_buffer=[np.ones(4), np.ones((5, 1))])),
    ("param", TypeError, dict(param=[np.ones(4, np.int64), np.ones(5)], grad=[np.ones(4, np.int64), np.ones(5)])),
    ("param", TypeError, dict(param=[[1.0] * 4, np.ones(5)])),
    ("grad", TypeError, dict(grad=[torch.ones(4, dtype=torch.float64), np.ones(5)])),
    ("nesterov", ValueError, dict(nesterov=True, dampening=0.1)),
    ("nesterov", ValueError, dict(nesterov=True, momentum=0.0)),
    ("nesterov", TypeError, dict(nesterov="yes")),
    ("lr", ValueError, dict(lr=-0.1)),
    ("lr", ValueError, dict(lr=float("nan"))),
    ("lr", ValueError, dict(lr=fd.exponential(0.1, gamma=[0.9, 0.8]))),
    ("weight_decay", ValueError, dict(weight_decay=-1e-4)),
    ("momentum", ValueError, dict(momentum=-0.5)),
    ("step", ValueError, dict(step=-1)),
    ("step", TypeError, dict(step=1.5)),
    ("step", TypeError, dict(step=True)),
    ("step", TypeError, dict(step=np.timedelta64(3))),  # (NumPy counts a time span as an integer)
    ("step", ValueError, dict(step=np.array([1, 2]))),
    ("step", ValueError, dict(step=torch.tensor(-2))),
    ("on_drop", ValueError, dict(on_drop="zero")),
    ("grad_scale", ValueError, dict(grad_scale=0.0)),
    ("found_inf", TypeError, dict(found_inf="no")),
]


@pytest.mark.parametrize("name, error, changes", BAD_SGD, ids=[f"{b[0]}-{k}" for k, b in enumerate(BAD_SGD)])
def test_bad_sgd_input_is_refused_before_any_write(name, error, changes):
    kw = _sgd_call(**changes)
    arrays = _numpy_arrays(kw, ("param", "grad", "momentum_buffer"))
    before = _snapshot(arrays)
    with pytest.raises(error, match=name):
        fd.sgd_step(kw.pop("param"), kw.pop("grad"), **kw)
    assert _snapshot(arrays) == before


BAD_ADAM = [
    ("betas", ValueError, dict(betas=(1.0, 0.999))),
    ("betas", ValueError, dict(betas=(0.9, -0.1))),
    ("betas", TypeError, dict(betas=0.9)),
    ("eps", ValueError, dict(eps=-1e-8)),
    ("weight_decay", ValueError, dict(weight_decay=-0.01)),
    ("max_exp_avg_sq", ValueError, dict(max_exp_avg_sq=None)),
    ("exp_avg", TypeError, dict(exp_avg=[np.ones(4), np.ones(5, np.float32)])),
    ("exp_avg_sq", ValueError, dict(exp_avg_sq=[np.ones(4, np.float32), np.ones(5, np.float32)[None, :]])),
    ("exp_avg", ValueError, dict(exp_avg=[np.ones(4, np.float32), np.ones(5, np.float32)], param=None)),
    ("amsgrad", TypeError, dict(amsgrad=1)),
    ("param", ValueError, dict()),  # read-only parameter, set below
]


@pytest.mark.parametrize("name, error, changes", BAD_ADAM, ids=[f"{b[0]}-{k}" for k, b in enumerate(BAD_ADAM)])
def test_bad_adam_input_is_refused_before_any_write(name, error, changes):
    kw = _adam_call(**changes)
    if kw["param"] is None:  # a state list longer than the parameters
        kw["param"] = _arrays([(4,)], np.float32, 1)
        kw["grad"] = kw["grad"][:1]
        kw["exp_avg_sq"] = kw["exp_avg_sq"][:1]
        kw["max_exp_avg_sq"] = kw["max_exp_avg_sq"][:1]
    if name == "param":
        kw["param"][1].setflags(write=False)
    arrays = _numpy_arrays(kw, ("param", "grad", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"))
    before = _snapshot(arrays)
    with pytest.raises(error, match=name):
        fd.adamw_step(kw.pop("param"), kw.pop("grad"), kw.pop("exp_avg"), kw.pop("exp_avg_sq"), **kw)
    assert _snapshot(arrays) == before


def test_remembered_option_checks_refuse_what_a_first_call_refuses():
    """Option checks are remembered for plain values (a training loop passes the same ones every
    step): a value refused stays refused after an accepted one that compares equal to it (1 and
    True, 0 and False), a betas list changed in place is checked again, and each call updates
    with its own options."""
    w, m, v = np.ones(3), np.zeros(3), np.zeros(3)
    for t in range(2):
        fd.adamw_step(w, np.ones(3), m, v, step=t, lr=0.1, amsgrad=False, betas=(0.9, 0.999))
    with pytest.raises(TypeError, match="amsgrad must be True or False, got 0"):
        fd.adamw_step(w, np.ones(3), m, v, step=2, lr=0.1, amsgrad=0, betas=(0.9, 0.999))
    betas = [0.9, 0.999]
    fd.adamw_step(w, np.ones(3), m, v, step=2, lr=0.1, betas=betas)
    betas[1] = 1.5
    before = (w.copy(), m.copy(), v.copy())
    with pytest.raises(ValueError, match="beta"):
        fd.adamw_step(w, np.ones(3), m, v, step=3, lr=0.1, betas=betas)
    assert all(np.array_equal(a, b) for a, b in zip((w, m, v), before))
    # another beta2 is another check and another update
    a, b = [np.ones(3), np.zeros(3), np.zeros(3)], [np.ones(3), np.zeros(3), np.zeros(3)]
    for t in range(3):
        fd.adamw_step(*a[:1], np.full(3, 0.5), *a[1:], step=t, lr=0.1, betas=(0.9, 0.999))
        fd.adamw_step(*b[:1], np.full(3, 0.5 + 0.5 * t), *b[1:], step=t, lr=0.1, betas=(0.9, 0.9))
    assert not np.array_equal(a[2], b[2])
    from fastdecay import _fused
    assert _fused._CHECKED  # the cache was used (plain values)


def test_error_messages_show_the_value():
    w = np.ones(3)
    with pytest.raises(ValueError, match=r"lr.*-0\.5"):
        fd.sgd_step(w, w.copy(), step=0, lr=-0.5)
    with pytest.raises(ValueError, match=r"step.*-3"):
        fd.sgd_step(w, w.copy(), step=-3, lr=0.1)
    with pytest.raises(TypeError, match=r"grad.*int64"):
        fd.sgd_step(w, np.ones(3, np.int64), step=0, lr=0.1)


def test_empty_list_is_a_no_op():
    assert fd.sgd_step([], [], step=0, lr=0.1) is None
    assert fd.adamw_step([], [], [], [], step=0, lr=0.1) is None


def test_non_finite_gradients_propagate_as_torch_does():
    w = np.ones(4)
    fd.sgd_step(w, np.array([np.inf, np.nan, 1.0, 1.0]), step=0, lr=0.1)
    assert np.isneginf(w[0]) and np.isnan(w[1]) and np.all(np.isfinite(w[2:]))


def test_torch_version_counters_move_as_with_torch_in_place_ops():
    """autograd sees the in-place write: a graph that saved the old weights refuses to backward."""
    w = torch.nn.Parameter(torch.ones(5))
    loss = (w * w).sum()  # saves w for backward
    m, v = torch.zeros(5), torch.zeros(5)
    before = w._version
    fd.adamw_step(w, torch.ones(5), m, v, step=0, lr=0.1)
    assert w._version > before and m._version > 0
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_on_drop_codes_agree_with_the_rules():
    from fastdecay._cpu import rules
    from fastdecay._rules import ON_DROP_CODES

    assert ON_DROP_CODES == rules.ON_DROP_CODES


def test_thread_count_and_blocking_never_change_results():
    """Elementwise kernels: 1 or 2 threads, parallel blocks or the serial small-call path,
    one list or one call per array — the same bits."""
    import numba

    shapes = [(200_003,), (70_001,), (5,)]
    results = []
    for threads in (1, numba.get_num_threads()):
        ws, gs = _arrays(shapes, np.float32, 1), _arrays(shapes, np.float32, 2)
        m, v = _arrays(shapes, np.float32, 3, fill=0.0), _arrays(shapes, np.float32, 4, fill=0.0)
        previous = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            for t in range(3):
                fd.adamw_step(ws, gs, m, v, step=t, lr=fd.cosine(1e-2, 10), weight_decay=0.1)
        finally:
            numba.set_num_threads(previous)
        results.append(np.concatenate(ws + m + v))
    assert np.array_equal(results[0], results[1])


def test_empty_lists_do_nothing_but_their_partners_are_still_checked():
    fd.adamw_step([], [], [], [], step=0, lr=0.1)  # nothing to do
    with pytest.raises(ValueError, match=r"grad must hold 0 arrays, one per parameter, got 1"):
        fd.sgd_step([], [np.ones(3)], step=0, lr=0.1)
    with pytest.raises(ValueError, match=r"exp_avg is required here \(always\), got None"):
        fd.adamw_step([], [], None, [], step=0, lr=0.1)


def test_a_list_of_non_arrays_names_the_first_element():
    with pytest.raises(TypeError, match=r"param\[0\] must be a NumPy, CuPy or torch array, got float: 1.0"):
        fd.sgd_step([1.0, 2.0], [1.0, 2.0], step=0, lr=0.1)
