"""Fused updates against torch's single-tensor optimizers, trajectory by trajectory.

Random quadratics f(w) = 1/2 sum(lambda_i w_i^2) with odd sizes, hundreds of
steps. float64 must agree with torch to 1e-10 relative to the trajectory's
scale; float32 must be no worse than torch's own float32 path against the
float64 truth.
"""

import numpy as np
import pytest

import fastdecay as fd

torch = pytest.importorskip("torch")

STEPS = 300
SIZES = (257, 278_011)


def _problem(n, seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 3.0, n), rng.normal(size=n)


def _torch_run(opt_cls, curv, w0, steps, dtype, lr_fn=None, **kw):
    """torch's single-tensor path (foreach=False) on the quadratic; per-step lr via lr_fn."""
    p = torch.tensor(w0, dtype=dtype, requires_grad=True)
    lam = torch.tensor(curv, dtype=dtype)
    opt = opt_cls([p], foreach=False, **kw)
    for t in range(steps):
        if lr_fn is not None:
            opt.param_groups[0]["lr"] = lr_fn(t)
        p.grad = lam * p.detach()
        opt.step()
    return p.detach().numpy().astype(np.float64)


def _ours_sgd(curv, w0, steps, dtype, **kw):
    w = w0.astype(dtype)
    lam = curv.astype(dtype)
    buf = np.full_like(w, np.nan)  # content ignored at step 0
    for t in range(steps):
        fd.sgd_step(w, lam * w, step=t, momentum_buffer=buf, **kw)
    return w.astype(np.float64)


def _ours_adam(curv, w0, steps, dtype, **kw):
    w = w0.astype(dtype)
    lam = curv.astype(dtype)
    m, v, vmax = (np.full_like(w, np.nan) for _ in range(3))
    for t in range(steps):
        fd.adamw_step(w, lam * w, m, v, step=t, max_exp_avg_sq=vmax, **kw)
    return w.astype(np.float64)


def _close64(ours, ref):
    """Within 1e-10 relative to the trajectory's scale (elements near 0 have no relative error)."""
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10 * np.max(np.abs(ref)))


SGD_CASES = [
    dict(),
    dict(weight_decay=0.05),
    dict(maximize=True),
    dict(momentum=0.9),
    dict(momentum=0.9, dampening=0.3),
    dict(momentum=0.9, nesterov=True),
    dict(momentum=0.9, nesterov=True, weight_decay=0.05),
    dict(momentum=0.5, dampening=0.5, weight_decay=0.05, maximize=True),
    dict(momentum=0.9, nesterov=True, maximize=True),
]


def _ids(case):
    return ",".join(f"{k}={v}" for k, v in case.items()) or "defaults"


def _cases(cases, big):
    """Every case at the small odd size; the ones at indices ``big`` at the large odd size too."""
    small = [pytest.param(c, SIZES[0], id=f"{_ids(c)}-{SIZES[0]}") for c in cases]
    return small + [pytest.param(cases[k], SIZES[1], id=f"{_ids(cases[k])}-{SIZES[1]}") for k in big]


@pytest.mark.parametrize("case, n", _cases(SGD_CASES, big=(0, 4, 6)))
def test_sgd_matches_torch_float64(case, n):
    curv, w0 = _problem(n, 1)
    lr = 0.05
    if case.get("maximize"):
        curv = -curv * 0.2  # maximise a concave quadratic: still converges
    ref = _torch_run(torch.optim.SGD, curv, w0, STEPS, torch.float64, lr=lr, **case)
    ours = _ours_sgd(curv, w0, STEPS, np.float64, lr=lr, **case)
    _close64(ours, ref)


ADAM_CASES = [
    dict(),
    dict(amsgrad=True),
    dict(weight_decay=0.0),
    dict(weight_decay=0.1, maximize=True),
    dict(decoupled=False, weight_decay=0.05),
    dict(decoupled=False, weight_decay=0.05, amsgrad=True),
    dict(betas=(0.5, 0.9), eps=1e-3, amsgrad=True),
]


def _torch_adam(case):
    kw = dict(case)
    cls = torch.optim.AdamW if kw.pop("decoupled", True) else torch.optim.Adam
    if cls is torch.optim.AdamW:
        kw.setdefault("weight_decay", 1e-2)
    return cls, kw


@pytest.mark.parametrize("case, n", _cases(ADAM_CASES, big=(0, 5)))
def test_adam_matches_torch_float64(case, n):
    curv, w0 = _problem(n, 2)
    if case.get("maximize"):
        curv = -curv
    cls, kw = _torch_adam(case)
    ref = _torch_run(cls, curv, w0, STEPS, torch.float64, lr=0.01, **kw)
    ours = _ours_adam(curv, w0, STEPS, np.float64, lr=0.01, **case)
    _close64(ours, ref)


def _err(x, truth):
    return np.linalg.norm(x - truth) / np.linalg.norm(truth)


@pytest.mark.parametrize(
    "which, case",
    [
        ("sgd", dict(momentum=0.9)),
        ("sgd", dict(momentum=0.9, nesterov=True, weight_decay=0.05)),
        ("adam", dict()),
        ("adam", dict(amsgrad=True, decoupled=False, weight_decay=0.05)),
    ],
)
def test_float32_no_worse_than_torch_float32(which, case):
    curv, w0 = _problem(SIZES[1], 3)
    if which == "sgd":
        truth = _torch_run(torch.optim.SGD, curv, w0, STEPS, torch.float64, lr=0.05, **case)
        t32 = _torch_run(torch.optim.SGD, curv, w0, STEPS, torch.float32, lr=0.05, **case)
        o32 = _ours_sgd(curv, w0, STEPS, np.float32, lr=0.05, **case)
    else:
        cls, kw = _torch_adam(case)
        truth = _torch_run(cls, curv, w0, STEPS, torch.float64, lr=0.01, **kw)
        t32 = _torch_run(cls, curv, w0, STEPS, torch.float32, lr=0.01, **kw)
        o32 = _ours_adam(curv, w0, STEPS, np.float32, lr=0.01, **case)
    # The rules fuse the multiply-adds torch's vectorized kernels fuse (add with alpha, lerp)
    # and round the rest: the error sizes agree to a few percent.
    ours_err, torch_err = _err(o32, truth), _err(t32, truth)
    assert ours_err <= 1.03 * torch_err, (ours_err, torch_err)


def test_scheduled_lr_matches_torch_schedulers():
    """Schedules evaluated in the kernel equal torch's StepLR and CosineAnnealingLR steps."""
    curv, w0 = _problem(1001, 4)
    for sched, make in [
        (fd.step(0.05, 0.5, 40), lambda o: torch.optim.lr_scheduler.StepLR(o, 40, 0.5)),
        (fd.cosine(0.01, STEPS), lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, STEPS)),
    ]:
        for which in ("sgd", "adam"):
            p = torch.tensor(w0, requires_grad=True)
            lam = torch.tensor(curv)
            opt = (torch.optim.SGD([p], lr=sched(0), momentum=0.9, foreach=False) if which == "sgd"
                   else torch.optim.AdamW([p], lr=sched(0), foreach=False))
            s = make(opt)
            w = w0.copy()
            buf, m, v = np.empty_like(w), np.empty_like(w), np.empty_like(w)
            for t in range(STEPS):
                p.grad = lam * p.detach()
                opt.step()
                s.step()
                if which == "sgd":
                    fd.sgd_step(w, curv * w, step=t, lr=sched, momentum=0.9, momentum_buffer=buf)
                else:
                    fd.adamw_step(w, curv * w, m, v, step=t, lr=sched)
            _close64(w, p.detach().numpy())


def test_schedule_in_kernel_equals_the_rate_as_a_number():
    """lr and weight_decay schedules read inside the kernel give the bits of the same rates passed as floats."""
    curv, w0 = _problem(999, 5)
    lr, wd = fd.warmup(fd.cosine(0.1, 200), 20), fd.linear(0.0, 0.2, 150)
    a, b = w0.copy(), w0.copy()
    ma, va, mb, vb = (np.empty_like(w0) for _ in range(4))
    for t in range(200):
        fd.adamw_step(a, curv * a, ma, va, step=t, lr=lr, weight_decay=wd)
        fd.adamw_step(b, curv * b, mb, vb, step=t, lr=lr(t), weight_decay=wd(t))
    assert np.array_equal(a, b)
    a, b = w0.copy(), w0.copy()
    ba, bb = np.empty_like(w0), np.empty_like(w0)
    for t in range(200):
        fd.sgd_step(a, curv * a, step=t, lr=lr, weight_decay=wd, momentum=0.9, momentum_buffer=ba, decoupled=True)
        fd.sgd_step(b, curv * b, step=t, lr=lr(t), weight_decay=wd(t), momentum=0.9, momentum_buffer=bb,
                    decoupled=True)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("step_kind", ["numpy", "torch", "float_tensor"])
def test_step_as_a_0d_array(step_kind):
    make = {
        "numpy": lambda t: np.array(t, dtype=np.int64),
        "torch": lambda t: torch.tensor(t, dtype=torch.int32),
        "float_tensor": lambda t: torch.tensor(float(t)),  # torch's own state["step"] is a float tensor
    }[step_kind]
    curv, w0 = _problem(300, 6)
    a, b = w0.copy(), w0.copy()
    ma, va, mb, vb = (np.empty_like(w0) for _ in range(4))
    lr = fd.exponential(0.05, gamma=0.99)
    for t in range(20):
        fd.adamw_step(a, curv * a, ma, va, step=t, lr=lr)
        fd.adamw_step(b, curv * b, mb, vb, step=make(t), lr=lr)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("which", ["sgd", "momentum", "adam"])
def test_a_zero_weight_decay_adds_no_term_as_torch(which):
    """torch adds weight_decay * w to the gradient only when the decay is nonzero, so an
    infinite weight keeps a finite gradient (0 * inf would be NaN); so does fastdecay,
    bit for bit with torch on weights with infinities and signed zeros."""
    w0 = np.array([np.inf, -np.inf, 0.0, -0.0, 1.5, -2.0])
    grad = np.array([1.0, -1.0, 0.5, -0.5, 0.25, 3.0])
    p = torch.tensor(w0, requires_grad=True)
    if which == "adam":
        opt = torch.optim.Adam([p], lr=0.1, weight_decay=0.0, foreach=False)
    else:
        opt = torch.optim.SGD([p], lr=0.1, momentum=0.9 if which == "momentum" else 0.0, weight_decay=0.0,
                              foreach=False)
    w = w0.copy()
    state = [np.zeros_like(w) for _ in range(3)]
    for t in range(3):
        p.grad = torch.tensor(grad)
        opt.step()
        if which == "adam":
            fd.adamw_step(w, grad, state[0], state[1], step=t, lr=0.1, weight_decay=0.0, decoupled=False)
        else:
            fd.sgd_step(w, grad, step=t, lr=0.1, momentum=0.9 if which == "momentum" else 0.0,
                        momentum_buffer=state[0] if which == "momentum" else None)
    np.testing.assert_array_equal(w, p.detach().numpy())
    assert np.isinf(w[:2]).all()
    np.testing.assert_array_equal(np.signbit(w), np.signbit(p.detach().numpy()))


def test_the_threads_runs_of_blocks_hold_about_equal_element_counts():
    """A model's list is many short blocks (its small tensors) and long tensors of whole
    blocks: each thread's run of blocks holds its share of the elements within two blocks,
    where an equal count of blocks a thread would not."""
    from fastdecay._cpu.updates import BLOCK, block_layout, part_layout

    rng = np.random.default_rng(3)
    sizes = np.concatenate([rng.integers(1, 300, 400), [0], rng.integers(BLOCK, 40 * BLOCK, 30), [5, 0]])
    per_block = np.array([min(BLOCK, n - lo) for n in sizes for lo in range(0, n, BLOCK)])
    first_block = block_layout(sizes)
    assert first_block[-1] == per_block.size
    half = per_block.size // 2
    assert abs(per_block[:half].sum() - per_block[half:].sum()) > 10 * BLOCK  # blocks by count: lopsided
    for parts in (1, 2, 3, 7, 16):
        bounds = part_layout(sizes, first_block, parts)
        assert bounds.shape == (parts + 1,) and bounds[0] == 0 and bounds[-1] == per_block.size
        assert np.all(np.diff(bounds) >= 0)
        runs = [per_block[a:b].sum() for a, b in zip(bounds[:-1], bounds[1:])]
        assert sum(runs) == sizes.sum() and max(runs) - min(runs) <= 2 * BLOCK, (parts, runs)
    tiny = np.array([10, 0], dtype=np.int64)  # more threads than blocks: empty runs
    assert list(part_layout(tiny, block_layout(tiny), 4)) == [0, 1, 1, 1, 1]
    empty = np.zeros(3, dtype=np.int64)
    assert list(part_layout(empty, block_layout(empty), 2)) == [0, 0, 0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("options", [dict(), dict(amsgrad=True), dict(maximize=True, weight_decay=0.1),
                                     dict(decoupled=False, weight_decay=0.01), dict(betas=(0.5, 0.999)),
                                     dict(betas=(0.3, 0.99), amsgrad=True), dict(betas=(0.0, 0.999))],
                         ids=["adamw", "amsgrad", "maximize", "adam-l2", "beta1-0.5", "beta1-0.3", "beta1-0"])
def test_adam_is_torch_s_fused_adam_bit_for_bit(options, dtype):
    """On the CPU torch's fused Adam / AdamW (and its addcmul_) compute v beta2 + (1 - beta2) g g
    as one fused multiply-add of w2 g times g onto v beta2, and the first moment by ``lerp``,
    measured from g where the weight 1 - beta1 is 0.5 or more; so does fastdecay: 200 steps of
    gradients over four decades on 1,001 elements give torch's bits, weights and state, but
    for the last 9 elements: torch's vector loop leaves them (1001 mod 16) to scalar code that
    rounds the multiply and the add apart, 1 ulp off its own vector lanes at times."""
    gen = torch.Generator().manual_seed(3)
    grads = [torch.randn(1001, generator=gen, dtype=dtype) * 10.0 ** torch.randint(-2, 2, (1001,), generator=gen)
             for _ in range(200)]
    decoupled = options.pop("decoupled", True)
    p = torch.nn.Parameter(torch.linspace(-1.0, 1.0, 1001, dtype=dtype))
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    opt = cls([p], lr=1e-3, fused=True, **{"weight_decay": 0.01, **options})
    w = p.detach().clone().numpy()
    m, v, vmax = (np.zeros_like(w) for _ in range(3))
    for t, g in enumerate(grads):
        p.grad = g.clone()
        opt.step()
        fd.adamw_step(w, g.numpy(), m, v, step=t, lr=1e-3, decoupled=decoupled,
                      max_exp_avg_sq=vmax if options.get("amsgrad") else None, **{"weight_decay": 0.01, **options})
    state = opt.state[p]
    pairs = [(w, p.detach()), (m, state["exp_avg"]), (v, state["exp_avg_sq"])]
    if options.get("amsgrad"):
        pairs.append((vmax, state["max_exp_avg_sq"]))
    for ours, theirs in pairs:
        np.testing.assert_array_equal(ours[:992], theirs.numpy()[:992])
        np.testing.assert_allclose(ours[992:], theirs.numpy()[992:], rtol=1e-6 if dtype == torch.float32 else 1e-14)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("options", [dict(), dict(momentum=0.9), dict(momentum=0.9, dampening=0.3, weight_decay=0.01),
                                     dict(momentum=0.9, nesterov=True, weight_decay=0.01, maximize=True)],
                         ids=["plain", "momentum", "dampening", "nesterov"])
def test_sgd_is_torch_s_sgd_bit_for_bit(options, dtype):
    """200 steps of gradients over four decades on 1,001 elements: torch's single-tensor SGD's
    bits, weights and momentum buffer."""
    gen = torch.Generator().manual_seed(4)
    grads = [torch.randn(1001, generator=gen, dtype=dtype) * 10.0 ** torch.randint(-2, 2, (1001,), generator=gen)
             for _ in range(200)]
    p = torch.nn.Parameter(torch.linspace(-1.0, 1.0, 1001, dtype=dtype))
    opt = torch.optim.SGD([p], lr=1e-2, foreach=False, **options)
    w = p.detach().clone().numpy()
    buf = np.zeros_like(w)
    for t, g in enumerate(grads):
        p.grad = g.clone()
        opt.step()
        fd.sgd_step(w, g.numpy(), step=t, lr=1e-2, momentum_buffer=buf if "momentum" in options else None,
                    **options)
    np.testing.assert_array_equal(w, p.detach().numpy())
    if "momentum" in options:
        np.testing.assert_array_equal(buf, opt.state[p]["momentum_buffer"].numpy())
