"""The GPU paths added after the first GPU runs, on a device against the CPU backend
on the same data: 16-bit parameters (float16, bfloat16) with float32 or bfloat16 state
and Kahan compensation, every fused rule (SGD, Adam, Lion) with scheduled momentum /
beta1 and weight decay, any dense layout (channels_last, transposed, offset views),
launch plans reused and invalidated on CUDA tensors, the torch adapters on a bfloat16
channels_last model and their checkpoints, and the simulations of every rule with
noise, per-trajectory rates and scheduled momentum, and the expected dynamics.

Marked ``gpu``; skipped (at module level) without CuPy and a CUDA device, which is
CI. Without a GPU the same kernel bodies run on the host against the CPU backend
(tests/test_cuda_host.py, bit for bit) and compile under NVRTC
(tests/test_cuda_compile.py).

Tolerances: the kernels are compiled without contraction (``--fmad=false``) and
without flush-to-zero, and both backends round the same operations in the same
order, so updates agree to float32 rounding (rtol 1e-6) and 16-bit parameters to one
unit in the last place of their dtype; float64 simulations within 1e-12 relative
(CUDA's pow/exp/cos differ from glibc's in the last bit or two), float32 ones within
1e-5.
"""

import io

import numpy as np
import pytest

import fastdecay as fd
from fastdecay import _rules as R

cp = pytest.importorskip("cupy", reason="the GPU tests need CuPy: pip install 'fastdecay[gpu]'")
try:
    N_GPUS = cp.cuda.runtime.getDeviceCount()
except Exception:  # no driver, or no device
    N_GPUS = 0
if N_GPUS == 0:
    pytest.skip("no CUDA device", allow_module_level=True)
torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("needs torch with CUDA", allow_module_level=True)
DEVICE = "cuda"

pytestmark = pytest.mark.gpu

STEPS = 40
EPS = {torch.float32: 1e-6, torch.float16: 2.0**-10, torch.bfloat16: 2.0**-7}


def assert_same(got, want, dtype):
    """Device result ``got`` against CPU result ``want`` (torch tensors): float64 within
    1e-12, float32 within 1e-6, 16-bit within one unit in the last place of the dtype."""
    got, want = got.detach().cpu().double(), want.detach().cpu().double()
    assert got.shape == want.shape
    assert bool(torch.isfinite(got).all()), "non-finite values on the device"
    rtol = 1e-12 if dtype == torch.float64 else EPS[dtype]
    torch.testing.assert_close(got, want, rtol=rtol, atol=rtol * 1e-3)


# ----------------------------------------------------------------------------- fused updates

# shapes and layouts: a single element, an odd length, a partial block, a channels_last
# 4-d tensor, a transposed matrix and a view one element into its storage
def _make(shape_kind, gen, dtype, device, fill=None):
    if shape_kind == "one":
        x = torch.randn(1, generator=gen)
    elif shape_kind == "odd":
        x = torch.randn(1037, generator=gen)
    elif shape_kind == "blocks":
        x = torch.randn(20_011, generator=gen)
    elif shape_kind == "channels_last":
        x = torch.randn(6, 5, 7, 3, generator=gen)
    elif shape_kind == "transposed":
        x = torch.randn(33, 17, generator=gen)
    else:  # "offset"
        x = torch.randn(1001, generator=gen)
    if fill is not None:
        x = torch.full_like(x, fill)
    x = x.to(dtype)
    if shape_kind == "channels_last":
        return x.to(device).contiguous(memory_format=torch.channels_last)
    if shape_kind == "transposed":
        return x.t().contiguous().to(device).t()  # column-major storage, dense
    if shape_kind == "offset":
        base = torch.empty(x.numel() + 1, dtype=dtype, device=device)
        base[1:] = x.to(device)
        return base[1:]
    return x.to(device)


KINDS = ["one", "odd", "blocks", "channels_last", "transposed", "offset"]

RULE_ARGS = {
    "sgd": (fd.sgd_step, 1, dict(lr=fd.warmup(fd.step(0.05, 0.5, 15), 5), momentum=fd.linear(0.8, 0.95, STEPS),
                                 nesterov=True, weight_decay=fd.exponential(1e-3, gamma=0.99))),
    "adam": (fd.adamw_step, 2, dict(lr=fd.cosine(1e-2, STEPS), betas=(fd.linear(0.85, 0.95, STEPS), 0.99),
                                    weight_decay=fd.exponential(1e-2, gamma=1.01))),
    "lion": (fd.lion_step, 1, dict(lr=fd.cosine(1e-3, STEPS), betas=(0.9, 0.99), weight_decay=0.1)),
}


def _train(rule, device, dtype, state_dtype, compensated, extra=None):
    """STEPS fused steps of ``rule`` on every layout in KINDS; returns params, states and
    compensation buffers (device tensors)."""
    fn, n_state, kw = RULE_ARGS[rule]
    kw = dict(kw, **(extra or {}))
    gen = torch.Generator().manual_seed(7)
    sd = torch.bfloat16 if state_dtype == "bfloat16" else (torch.float32 if dtype != torch.float64 else dtype)
    params = [_make(k, gen, dtype, device) for k in KINDS]
    states = [[_make(k, gen, sd, device, fill=0.0) for k in KINDS] for _ in range(n_state)]
    comp = [_make(k, gen, dtype, device, fill=0.0) for k in KINDS] if compensated else None
    grad_gen = torch.Generator().manual_seed(8)
    for t in range(STEPS):
        grads = [_make(k, grad_gen, dtype, device) for k in KINDS]
        if rule == "sgd":
            fn(params, grads, step=t, momentum_buffer=states[0], state_dtype=state_dtype, compensated=compensated,
               compensation_buffer=comp, **kw)
        else:
            fn(params, grads, *states, step=t, state_dtype=state_dtype, compensated=compensated,
               compensation_buffer=comp, **kw)
    return params, states, comp


CONFIGS = [
    (torch.float64, None, False),
    (torch.float32, None, False),
    (torch.float32, "bfloat16", False),
    (torch.bfloat16, None, False),
    (torch.bfloat16, "bfloat16", False),
    (torch.bfloat16, None, True),
    (torch.float16, None, False),
    (torch.float16, None, True),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{str(c[0])[6:]}-{c[1]}-{'kahan' if c[2] else 'plain'}")
@pytest.mark.parametrize("rule", sorted(RULE_ARGS))
def test_fused_rule_on_device_matches_cpu_on_every_layout(rule, config):
    dtype, state_dtype, compensated = config
    got = _train(rule, DEVICE, dtype, state_dtype, compensated)
    want = _train(rule, "cpu", dtype, state_dtype, compensated)
    for g_list, w_list in zip([got[0], *got[1], *([got[2]] if compensated else [])],
                              [want[0], *want[1], *([want[2]] if compensated else [])]):
        for g, w in zip(g_list, w_list):
            assert g.device.type == "cuda" and g.stride() == w.stride()
            assert_same(g, w, g.dtype)


def test_grad_scale_and_found_inf_on_device_tensors():
    """AMP's unscale-and-skip: grad_scale and found_inf as 0-d CUDA tensors; a step with
    found_inf = 1 changes nothing, on the device as on the CPU."""
    results = {}
    for device in ("cpu", DEVICE):
        gen = torch.Generator().manual_seed(3)
        w = torch.randn(5003, generator=gen).to(device)
        m, v = torch.zeros_like(w), torch.zeros_like(w)
        scale = torch.tensor(1024.0, device=device)
        for t in range(20):
            g = (torch.randn(5003, generator=gen) * 1024.0).to(device)
            inf = torch.tensor(float(t % 7 == 3), device=device)
            before = w.clone()
            fd.adamw_step(w, g, m, v, step=t, lr=fd.cosine(1e-2, 20), grad_scale=scale, found_inf=inf)
            if t % 7 == 3:
                assert torch.equal(w, before)
        results[device] = (w, m, v)
    for got, want in zip(results[DEVICE], results["cpu"]):
        assert_same(got, want, torch.float32)


def test_bf16_adamw_on_device_matches_torch_fused_cuda():
    """bfloat16 parameters and bfloat16 state (what torch's fused AdamW keeps for a
    bfloat16 model) against torch.optim.AdamW(fused=True) on CUDA over STEPS steps: no
    further from the float64 trajectory (the same start and gradients, nothing rounded)
    than torch's is. Rounding to bfloat16 every step, the two part by an ulp where a
    value lands near a rounding boundary, and such a flip then carries on (7 of 1,728
    elements beyond torch's bfloat16 tolerances after 40 steps, H200), so closeness to
    torch is checked loosely and accuracy against float64."""
    gen = torch.Generator().manual_seed(11)
    shapes = [(1,), (1037,), (64, 3, 3, 3), (20_011,)]
    w0 = [torch.randn(s, generator=gen).bfloat16().cuda() for s in shapes]
    grads = [[torch.randn(s, generator=gen).bfloat16().cuda() for s in shapes] for _ in range(STEPS)]
    hyper = dict(lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1)
    ref = [w.clone().requires_grad_() for w in w0]
    opt = torch.optim.AdamW(ref, fused=True, **hyper)
    exact = [w.double().cpu().requires_grad_() for w in w0]
    opt64 = torch.optim.AdamW(exact, foreach=False, **hyper)
    ours = [w.clone() for w in w0]
    m = [torch.zeros_like(w) for w in w0]
    v = [torch.zeros_like(w) for w in w0]
    for t in range(STEPS):
        for p, p64, g in zip(ref, exact, grads[t]):
            p.grad = g.clone()
            p64.grad = g.double().cpu()
        opt.step()
        opt64.step()
        fd.adamw_step(ours, grads[t], m, v, step=t, **hyper, state_dtype="bfloat16")
    for a, b, x in zip(ours, ref, exact):
        torch.testing.assert_close(a, b.detach(), rtol=0.1, atol=2e-3)
        ours_err = (a.double().cpu() - x.detach()).abs()
        torch_err = (b.detach().double().cpu() - x.detach()).abs()
        assert ours_err.mean() <= 1.5 * torch_err.mean() + 1e-6, (ours_err.mean(), torch_err.mean())
        assert ours_err.max() <= 2.0 * torch_err.max() + 1e-6, (ours_err.max(), torch_err.max())


def test_launch_plan_on_device_follows_new_storage_and_new_gradients():
    """Repeated calls on the same CUDA lists reuse their launch plan (a device table of
    pointers); a parameter given new storage (``p.data = ...``), a gradient replaced by
    a new tensor and a state buffer swapped must be followed, never written through
    the old pointers. Checked step by step against the same sequence on the CPU."""
    results = {}
    for device in ("cpu", DEVICE):
        gen = torch.Generator().manual_seed(5)
        ps = [torch.randn(n, generator=gen).to(device) for n in (3, 1037, 4099)]
        ms = [torch.zeros_like(p) for p in ps]
        vs = [torch.zeros_like(p) for p in ps]
        grads = [torch.randn(p.shape, generator=gen).to(device) for p in ps]
        old = []
        for t in range(30):
            if t == 10:
                old.append(ps[1].clone())
                keep = ps[1].data
                ps[1].data = ps[1].data.clone()  # new storage, same tensor object
                keep.fill_(123.0)  # the old storage must not be written again
                old.append(keep)
            if t == 15:
                grads[2] = torch.randn(grads[2].shape, generator=gen).to(device)
            if t == 20:
                ms[0] = ms[0].clone()
            for g in grads:
                g.mul_(0.9).add_(0.1)
            fd.adamw_step(ps, grads, ms, vs, step=t, lr=fd.cosine(1e-2, 30), weight_decay=1e-2)
        assert bool((old[1] == 123.0).all())
        results[device] = ps + ms + vs
    for got, want in zip(results[DEVICE], results["cpu"]):
        assert_same(got, want, torch.float32)


def test_many_tiny_tensors_in_one_call_on_device():
    """2,000 tensors of 1-300 elements (one launch for the group): every tensor updated
    as on the CPU, the plan reused over 5 steps."""
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 300, 2000)
    results = {}
    for device in ("cpu", DEVICE):
        gen = torch.Generator().manual_seed(2)
        ps = [torch.randn(int(n), generator=gen).to(device) for n in sizes]
        bufs = [torch.zeros_like(p) for p in ps]
        gs = [torch.randn(int(n), generator=gen).to(device) for n in sizes]
        for t in range(5):
            fd.sgd_step(ps, gs, step=t, lr=0.1, momentum=0.9, momentum_buffer=bufs, weight_decay=1e-2)
        results[device] = ps + bufs
    for got, want in zip(results[DEVICE], results["cpu"]):
        assert_same(got, want, torch.float32)


def _convnet(dtype):
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, padding=1),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4)).to(device=DEVICE, dtype=dtype)


def test_torch_adamw_on_bf16_channels_last_cuda_model_matches_torch_fused():
    """fastdecay.torch.AdamW (state_dtype="bfloat16") on a bfloat16 channels_last conv
    net on CUDA against torch's fused AdamW on a copy: same weights within torch's
    bfloat16 tolerances after 30 steps, parameters kept in their layout."""
    from fastdecay.torch import AdamW

    model = _convnet(torch.bfloat16).to(memory_format=torch.channels_last)
    ref = _convnet(torch.bfloat16).to(memory_format=torch.channels_last)
    ref.load_state_dict(model.state_dict())
    opt = AdamW(model.parameters(), lr=fd.warmup(fd.cosine(3e-3, 30), 5), weight_decay=1e-2, state_dtype="bfloat16")
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=3e-3, weight_decay=1e-2, fused=True)
    sched = fd.warmup(fd.cosine(3e-3, 30), 5)
    gen = torch.Generator().manual_seed(1)
    for t in range(30):
        x = torch.randn(4, 3, 8, 8, generator=gen).to(DEVICE, torch.bfloat16).contiguous(
            memory_format=torch.channels_last)
        y = torch.randn(4, 4, generator=gen).to(DEVICE, torch.bfloat16)
        for net, o in ((model, opt), (ref, ref_opt)):
            o.zero_grad()
            torch.nn.functional.mse_loss(net(x).float(), y.float()).backward()
        for group in ref_opt.param_groups:
            group["lr"] = sched(t)
        opt.step()
        ref_opt.step()
    for p, r in zip(model.parameters(), ref.parameters()):
        assert p.is_cuda and p.stride() == r.stride()
        torch.testing.assert_close(p, r, rtol=5e-2, atol=5e-3)


def test_torch_checkpoint_round_trip_on_cuda_with_weights_only():
    """A fastdecay.torch.AdamW state on CUDA (bfloat16 params, compensated) saved and read
    back with torch.load's default weights_only=True into a fresh optimizer: the next
    steps equal those of the optimizer that was never saved."""
    from fastdecay.torch import AdamW

    def make():
        model = _convnet(torch.bfloat16)
        return model, AdamW(model.parameters(), lr=fd.cosine(1e-2, 20), compensated=True)

    model, opt = make()
    gen = torch.Generator().manual_seed(4)
    batches = [(torch.randn(4, 3, 8, 8, generator=gen).to(DEVICE, torch.bfloat16),
                torch.randn(4, 4, generator=gen).to(DEVICE, torch.bfloat16)) for _ in range(20)]

    def train(m, o, part):
        for x, y in part:
            o.zero_grad()
            torch.nn.functional.mse_loss(m(x).float(), y.float()).backward()
            o.step()

    train(model, opt, batches[:10])
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, map_location=DEVICE)  # weights_only=True by default
    model2, opt2 = make()
    model2.load_state_dict(saved["model"])
    opt2.load_state_dict(saved["opt"])
    train(model, opt, batches[10:])
    train(model2, opt2, batches[10:])
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)


# ----------------------------------------------------------------------------- simulations

SIM_CURVATURE = {1: np.linspace(0.05, 2.0, 997)[:, None], 3: np.linspace(0.05, 2.0, 999).reshape(333, 3)}


def _sim_cases():
    cases = []
    for opt in R.NAMES:
        for d in (1, 3):
            for per_trajectory in (False, True):
                cases.append((opt, d, per_trajectory))
    return cases


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", _sim_cases(), ids=lambda c: f"{c[0]}-d{c[1]}-{'per' if c[2] else 'shared'}")
def test_noisy_simulation_of_every_rule_on_device_matches_cpu(case, dtype):
    """Every rule, d = 1 and 3, shared and per-trajectory rates, with noise, weight decay
    and (SGD family, Adam's beta1) a scheduled momentum: the device draws the CPU's
    normals, so the runs agree to rounding; recorded rows too."""
    opt, d, per_trajectory = case
    lam = SIM_CURVATURE[d]
    n = lam.shape[0]
    lr = 0.05 if opt not in ("adam", "adamw", "lion") else 0.01
    if per_trajectory:
        schedule = fd.exponential(lr, gamma=np.linspace(0.99, 0.999, n))
    else:
        schedule = fd.warmup(fd.step(lr, 0.5, 60), 10)
    kw = dict(curvature=lam, schedule=schedule, steps=200, optimizer=opt, noise=0.2, seed=17, every=25,
              weight_decay=fd.exponential(1e-3, gamma=0.99), dtype=dtype, trajectory_offset=3)
    if opt in ("adam", "adamw", "lion"):
        kw["betas"] = (fd.linear(0.85, 0.95, 200), 0.99)
    elif opt != "gd":
        kw["momentum"] = fd.linear(0.8, 0.95, 200)
    want = fd.simulate(**kw)
    got = fd.simulate(**(kw | dict(curvature=cp.asarray(lam))))
    assert isinstance(got.w, cp.ndarray) and got.diverged == want.diverged
    rtol, atol = (1e-12, 1e-14) if dtype == np.float64 else (1e-5, 1e-6)
    np.testing.assert_allclose(cp.asnumpy(got.w), want.w, rtol=rtol, atol=atol)
    np.testing.assert_allclose(cp.asnumpy(got.loss), want.loss, rtol=rtol, atol=atol)
    np.testing.assert_allclose(cp.asnumpy(got.displacement), want.displacement, rtol=rtol, atol=atol)


@pytest.mark.parametrize("on_drop", ["keep", "reset", "rescale"])
def test_on_drop_in_simulation_on_device_matches_cpu(on_drop):
    kw = dict(curvature=np.linspace(0.1, 1.5, 501)[:, None], steps=300, optimizer="momentum", momentum=0.9,
              schedule=fd.join([fd.constant(0.02), fd.warmup(fd.constant(0.3), 3)], [50]) * fd.step(1.0, 0.3, 100),
              on_drop=on_drop, noise=0.05, every=10)
    want = fd.simulate(**kw)
    got = fd.simulate(**(kw | dict(curvature=cp.asarray(kw["curvature"]))))
    np.testing.assert_allclose(cp.asnumpy(got.w), want.w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(cp.asnumpy(got.loss), want.loss, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "nesterov"])
def test_expected_loss_on_device_matches_cpu(optimizer):
    lam = np.geomspace(1e-3, 1.0, 300)
    schedules = fd.stack([fd.exponential(0.5, gamma=0.995), fd.step(0.5, 0.3, 100), fd.cosine(0.5, 400)])
    kw = dict(schedule=schedules[:, None], steps=400, optimizer=optimizer, noise=np.sqrt(lam),
              batch_size=np.array([1.0, 8.0, 64.0])[:, None, None], every=20)
    if optimizer != "gd":
        kw["momentum"] = 0.9
        kw["schedule"] = fd.stack([fd.exponential(0.05, gamma=0.995), fd.step(0.05, 0.3, 100),
                                   fd.cosine(0.05, 400)])[:, None]
    want = fd.expected_loss(lam, **kw)
    got = fd.expected_loss(cp.asarray(lam), **(kw | dict(noise=cp.asarray(kw["noise"]))))
    np.testing.assert_allclose(cp.asnumpy(got.loss), want.loss, rtol=1e-11, atol=1e-300)
    np.testing.assert_allclose(cp.asnumpy(got.final_loss), want.final_loss, rtol=1e-11, atol=1e-300)
    target = 0.5 * float(np.asarray(want.final_loss).max()) * 1.5
    kw.pop("every")
    np.testing.assert_array_equal(
        cp.asnumpy(cp.asarray(fd.steps_to_target(cp.asarray(lam), target=target, **kw))),
        np.asarray(fd.steps_to_target(lam, target=target, **kw)))


# ----------------------------------------------------------------------------- CUDA graphs, devices


def test_captured_graph_keeps_its_tables_after_many_other_calls():
    """A captured update reads the device tables of its capture at every replay: 600 eager
    calls with other tables afterwards (more than the cache of device tables keeps) must
    not free them. Replays then follow the schedule as eager CPU calls do."""
    rng = np.random.default_rng(1)
    n = 4099
    host = [rng.standard_normal(n), rng.standard_normal(n), np.zeros(n), np.zeros(n)]
    w, g, m, v = (cp.asarray(x) for x in host)
    step = cp.zeros((), dtype=cp.int64)
    lr = fd.cosine(1e-2, 40)

    def body():
        fd.adamw_step(w, g, m, v, step=step, lr=lr, weight_decay=0.1)
        cp.add(step, 1, out=step)

    body()  # warm-up: the tables go to the device
    w[...], m[...], v[...], step[...] = cp.asarray(host[0]), 0, 0, 0
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        body()
        graph = stream.end_capture()
    others = [cp.ones(7) for _ in range(3)]
    for k in range(600):  # another lr table each call
        fd.sgd_step(others[0], others[1], step=0, lr=1e-3 * (1 + k / 1000))
    cp.cuda.Device().synchronize()
    cp.get_default_memory_pool().free_all_blocks()
    junk = cp.full(1 << 20, np.nan)  # reuses freed device memory, if any was freed
    for _ in range(40):
        graph.launch(stream)
    stream.synchronize()
    del junk
    hw, hg, hm, hv = host
    for t in range(40):
        fd.adamw_step(hw, hg, hm, hv, step=t, lr=lr, weight_decay=0.1)
    np.testing.assert_allclose(cp.asnumpy(w), hw, rtol=1e-10, atol=1e-12)


def test_capture_of_a_call_never_made_before_is_refused_by_name():
    """Tables are copied to the device before a capture, not during it (a captured copy from
    the host would read a buffer after it is gone): a first call inside a capture is
    refused with what to do, and nothing is recorded in its place."""
    w, g, m, v = cp.ones(1001), cp.ones(1001), cp.zeros(1001), cp.zeros(1001)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        try:
            with pytest.raises(RuntimeError, match="before the capture"):
                fd.adamw_step(w, g, m, v, step=0, lr=fd.exponential(0.123, gamma=0.977))
        finally:
            stream.end_capture()
    np.testing.assert_array_equal(cp.asnumpy(w), 1.0)


@pytest.mark.skipif(N_GPUS < 2, reason="needs two GPUs")
def test_torch_adamw_over_a_model_split_across_two_gpus():
    """One parameter group over two GPUs (a model split across devices): one call a device,
    the same weights as torch's fused AdamW on the same split model."""
    from fastdecay.torch import AdamW

    torch.manual_seed(0)
    a, b = torch.nn.Linear(16, 32).to("cuda:0"), torch.nn.Linear(32, 4).to("cuda:1")
    ra, rb = torch.nn.Linear(16, 32).to("cuda:0"), torch.nn.Linear(32, 4).to("cuda:1")
    ra.load_state_dict(a.state_dict())
    rb.load_state_dict(b.state_dict())
    opt = AdamW([*a.parameters(), *b.parameters()], lr=1e-2)
    ref = torch.optim.AdamW([*ra.parameters(), *rb.parameters()], lr=1e-2, fused=True)
    gen = torch.Generator().manual_seed(1)
    for _ in range(20):
        x, y = torch.randn(8, 16, generator=gen), torch.randn(8, 4, generator=gen)
        for (l1, l2), o in (((a, b), opt), ((ra, rb), ref)):
            o.zero_grad()
            torch.nn.functional.mse_loss(l2(l1(x.to("cuda:0")).relu().to("cuda:1")), y.to("cuda:1")).backward()
            o.step()
    for p, r in zip([*a.parameters(), *b.parameters()], [*ra.parameters(), *rb.parameters()]):
        assert p.device == r.device
        torch.testing.assert_close(p, r)
