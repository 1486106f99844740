"""The GPU backend against the CPU backend: schedules, fused updates, simulations,
CUDA-graph capture and bad input. Marked ``gpu``; skipped (at module level)
where CuPy or a CUDA device is missing, which is CI. Without a GPU the same
kernels are still compiled (tests/test_cuda_compile.py) and their bodies run
on the host against the CPU backend (tests/test_cuda_host.py).

Tolerances: schedules and noiseless float64 simulations within 1e-12 relative
(CUDA's pow/cos/log differ from glibc's in the last bit or two); float32
schedule tables within one float32 ulp, subnormals included (the kernels are
compiled without flush-to-zero); the Philox words and the normals of the noise
bit for bit (the normal's log and cos are fastdecay's own, fixed sequences of
correctly rounded operations, not CUDA's or glibc's); fused updates over 100
steps within 1e-10 (float64) and within torch's default float32 tolerances
(rtol 1.3e-6, atol 1e-5: what torch's fused-vs-forloop optimizer tests use).
"""

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

pytestmark = pytest.mark.gpu

try:
    import torch

    HAS_TORCH_CUDA = torch.cuda.is_available()
except ImportError:  # pragma: no cover
    torch = None
    HAS_TORCH_CUDA = False

needs_torch_cuda = pytest.mark.skipif(not HAS_TORCH_CUDA, reason="needs torch with CUDA")


def close(got, want, dtype):
    """float64 within 1e-10; float32 within torch's own float32 tolerances (the defaults
    of torch.testing.assert_close, which its fused-vs-forloop optimizer tests use)."""
    got = cp.asnumpy(got) if isinstance(got, cp.ndarray) else np.asarray(got)
    if np.dtype(dtype) == np.float64:
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    else:
        np.testing.assert_allclose(got, want, rtol=1.3e-6, atol=1e-5)


# ----------------------------------------------------------------------------- schedules

SCHEDULES = {
    "constant": fd.constant(0.3),
    "step": fd.step(0.1, 0.5, 7),
    "multistep": fd.multistep(1.0, 0.1, [3, 5, 5, 40]),
    "exponential": fd.exponential(0.1, gamma=np.linspace(0.9, 0.9999, 7)),
    "exponential_staircase": fd.exponential(0.1, half_life=11.0, decay_steps=4, staircase=True),
    "inverse_time": fd.inverse_time(0.5, 0.02, decay_steps=3, staircase=True),
    "polynomial_cycle": fd.polynomial(0.1, 37, power=0.5, end_lr=0.01, cycle=True),
    "cosine": fd.cosine(0.1, 300, min_lr=[0.0, 0.01]),
    "cosine_restarts_mult": fd.cosine_restarts(0.1, 7, period_mult=2, min_lr=0.0),
    "piecewise": fd.piecewise([10, 20, 300], [0.1, 0.05, 0.2, 0.001]),
    "warmup": fd.warmup(fd.cosine(0.1, 500), 50, start_lr=1e-4),
    "join": fd.join([fd.constant(0.1), fd.exponential(0.1, gamma=0.99), fd.linear(0.05, 0.0, 100)], [30, 400]),
    "one_cycle": fd.one_cycle(0.1, 1000),
    "cyclic_exp": fd.cyclic(0.001, 0.1, 25, mode="exp_range", gamma=0.999),
    "wsd": fd.wsd(0.1, 1000, warmup_steps=50, decay_steps=200),
    "stack": fd.stack([fd.step(0.1, 0.5, 10), fd.cosine(0.2, 100), fd.warmup(fd.constant(0.3), 5)]),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_call_on_device_matches_cpu(name):
    s = SCHEDULES[name]
    t = np.arange(3000).reshape((-1,) + (1,) * len(s.batch_shape))
    got = s(cp.asarray(t))
    assert isinstance(got, cp.ndarray) and got.dtype == np.float64
    np.testing.assert_allclose(cp.asnumpy(got), s(t), rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["stack", "exponential", "join", "cosine_restarts_mult"])
def test_schedule_table_on_device_matches_cpu(name, dtype):
    from fastdecay._gpu.schedule import table

    s = SCHEDULES[name]
    got = table(s, 5000, dtype=dtype)
    assert got.shape == s.batch_shape + (5000,) and got.dtype == dtype
    want = s.table(5000, dtype=np.float64)
    if dtype == np.float64:
        np.testing.assert_allclose(cp.asnumpy(got), want, rtol=1e-12)
    else:  # the float64 rate rounded once: within one float32 ulp of the CPU's, subnormals kept
        tiny = np.finfo(np.float32).smallest_subnormal
        np.testing.assert_allclose(cp.asnumpy(got), want.astype(np.float32), rtol=2.0**-23, atol=tiny)
        assert (cp.asnumpy(got)[want.astype(np.float32) > 0] > 0).all(), "subnormal rates flushed to zero"
    out = cp.full(s.batch_shape + (3,), cp.nan, dtype=dtype)
    assert table(s, cp.asarray([7, 0, 4999]), dtype=dtype, out=out) is out
    close(out, s.table(np.array([7, 0, 4999]), dtype=dtype), dtype)


def test_public_table_dispatches_device_out_and_steps():
    """``Schedule.table`` itself (not only the _gpu function) runs on the GPU for device ``out`` / steps."""
    s = SCHEDULES["stack"]
    out = cp.full(s.batch_shape + (400,), cp.nan)
    assert s.table(400, out=out) is out
    np.testing.assert_allclose(cp.asnumpy(out), s.table(400), rtol=1e-12)
    got = s.table(cp.asarray([9, 3, 399]))
    assert isinstance(got, cp.ndarray)
    np.testing.assert_allclose(cp.asnumpy(got), s.table(np.array([9, 3, 399])), rtol=1e-12)


def test_schedule_call_rejects_bad_device_steps():
    s = fd.step(0.1, 0.5, 3)
    with pytest.raises(ValueError, match="non-negative"):
        s(cp.asarray([1, -2]))
    with pytest.raises(ValueError, match="integer"):
        s(cp.asarray([1.5]))


@needs_torch_cuda
def test_schedule_call_on_cuda_tensor_returns_cuda_tensor():
    s = SCHEDULES["stack"]
    t = torch.arange(100, device="cuda")[:, None]
    got = s(t)
    assert isinstance(got, torch.Tensor) and got.is_cuda and got.dtype == torch.float64
    np.testing.assert_allclose(got.cpu().numpy(), s(np.arange(100)[:, None]), rtol=1e-12)


# ----------------------------------------------------------------------------- fused updates

SGD_CASES = [
    dict(),
    dict(momentum=0.9, momentum_buffer=True),
    dict(momentum=0.9, momentum_buffer=True, nesterov=True, weight_decay=0.01),
    dict(momentum=0.9, momentum_buffer=True, lr_in_buffer=True, on_drop="rescale"),
    dict(momentum=0.8, momentum_buffer=True, dampening=0.2, weight_decay=0.05, decoupled=True, maximize=True,
         on_drop="reset", grad_scale=512.0),
]
ADAM_CASES = [
    dict(),
    dict(decoupled=False, weight_decay=0.1),
    dict(amsgrad=True, max_exp_avg_sq=True),
    dict(amsgrad=True, max_exp_avg_sq=True, maximize=True, betas=(0.8, 0.99), eps=1e-6, grad_scale=1024.0),
]
SIZES = [1, 7, 16_385, 100_003]


def _state(rng, dtype, n_buffers):
    """Lists of host arrays (one per size) and matching device arrays; the second
    tensor is a misaligned view (offset by one element: the scalar path)."""
    host, dev = [], []
    for _ in range(n_buffers):
        h = [rng.standard_normal(n).astype(dtype) for n in SIZES]
        d = [cp.asarray(x) for x in h]
        base = cp.empty(SIZES[1] + 1, dtype=dtype)
        d[1] = base[1:]
        d[1][...] = cp.asarray(h[1])
        host.append(h)
        dev.append(d)
    return host, dev


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", range(len(SGD_CASES)))
def test_sgd_step_on_device_matches_cpu(case, dtype):
    rng = np.random.default_rng(case)
    kw = dict(SGD_CASES[case])
    buffered = kw.pop("momentum_buffer", False)
    host, dev = _state(rng, dtype, 2)
    lr = fd.warmup(fd.step(0.05, 0.5, 30), 10)
    for t in range(100):
        g = [rng.standard_normal(n).astype(dtype) * dtype(kw.get("grad_scale", 1.0)) for n in SIZES]
        fd.sgd_step(host[0], g, step=t, lr=lr, momentum_buffer=host[1] if buffered else None, **kw)
        fd.sgd_step(dev[0], [cp.asarray(x) for x in g], step=t, lr=lr, momentum_buffer=dev[1] if buffered else None,
                    **kw)
    for h, d in zip(host[0] + host[1], dev[0] + dev[1]):
        close(d, h, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", range(len(ADAM_CASES)))
def test_adamw_step_on_device_matches_cpu(case, dtype):
    rng = np.random.default_rng(10 + case)
    kw = dict(ADAM_CASES[case])
    ams = kw.pop("max_exp_avg_sq", False)
    host, dev = _state(rng, dtype, 4)
    lr = fd.cosine(1e-2, 100)
    wd = kw.pop("weight_decay", fd.exponential(1e-2, gamma=1.01))
    for t in range(100):
        g = [rng.standard_normal(n).astype(dtype) * dtype(kw.get("grad_scale", 1.0)) for n in SIZES]
        fd.adamw_step(host[0], g, host[1], host[2], step=t, lr=lr, weight_decay=wd,
                      max_exp_avg_sq=host[3] if ams else None, **kw)
        fd.adamw_step(dev[0], [cp.asarray(x) for x in g], dev[1], dev[2], step=t, lr=lr, weight_decay=wd,
                      max_exp_avg_sq=dev[3] if ams else None, **kw)
    for h, d in zip(sum(host[:3], []), sum(dev[:3], [])):
        close(d, h, dtype)


@needs_torch_cuda
@pytest.mark.parametrize("dtype", [torch.float32 if torch else None, torch.float64 if torch else None])
def test_adamw_step_on_cuda_tensors_matches_torch_fused(dtype):
    """fd.adamw_step on CUDA tensors against torch.optim.AdamW(fused=True), the lr set
    from the same schedule every step: within torch's fused-vs-foreach tolerance."""
    torch.manual_seed(0)
    shapes = [(1,), (7,), (129, 33), (100_003,)]
    params = [torch.randn(s, device="cuda", dtype=dtype) for s in shapes]
    ref = [p.clone().requires_grad_(True) for p in params]
    opt = torch.optim.AdamW(ref, lr=1e-2, weight_decay=1e-2, fused=True)
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    lr = fd.cosine(1e-2, 60)
    for t in range(60):
        grads = [torch.randn_like(p) for p in params]
        for p, g in zip(ref, grads):
            p.grad = g.clone()
        for group in opt.param_groups:
            group["lr"] = lr(t)
        opt.step()
        fd.adamw_step(params, grads, m, v, step=t, lr=lr, weight_decay=1e-2)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    for p, r in zip(params, ref):
        torch.testing.assert_close(p, r.detach(), **tol)


@needs_torch_cuda
def test_sgd_step_on_cuda_tensors_matches_torch_sgd():
    """fd.sgd_step (momentum, Nesterov, weight decay, a step schedule) against
    torch.optim.SGD on CUDA tensors, lr set from the schedule every step."""
    torch.manual_seed(1)
    params = [torch.randn(s, device="cuda", dtype=torch.float64) for s in [(3,), (1000, 17)]]
    ref = [p.clone().requires_grad_(True) for p in params]
    opt = torch.optim.SGD(ref, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
    bufs = [torch.empty_like(p) for p in params]
    lr = fd.step(0.1, 0.5, 20)
    for t in range(80):
        grads = [torch.randn_like(p) for p in params]
        for p, g in zip(ref, grads):
            p.grad = g.clone()
        for group in opt.param_groups:
            group["lr"] = lr(t)
        opt.step()
        fd.sgd_step(params, grads, step=t, lr=lr, momentum=0.9, momentum_buffer=bufs, nesterov=True,
                    weight_decay=1e-3)
    for p, r in zip(params, ref):
        torch.testing.assert_close(p, r.detach(), rtol=1e-10, atol=1e-12)


@needs_torch_cuda
@pytest.mark.parametrize("which", ["adamw", "sgd"])
def test_torch_adapters_train_on_cuda_as_torch_does(which):
    """fastdecay.torch.AdamW / SGD on a CUDA model against torch.optim with the lr set
    from the same schedule each step: the same weights after 60 steps of training."""
    import copy

    from fastdecay.torch import SGD, AdamW

    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(17, 33), torch.nn.Tanh(), torch.nn.Linear(33, 5))
    model = model.to(device="cuda", dtype=torch.float64)
    ref = copy.deepcopy(model)
    lr = fd.warmup(fd.cosine(1e-2, 60), 5)
    if which == "adamw":
        opt = AdamW(model.parameters(), lr=lr, weight_decay=0.05)
        ref_opt = torch.optim.AdamW(ref.parameters(), lr=0.0, weight_decay=0.05, fused=True)
    else:
        opt = SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=1e-3)
        ref_opt = torch.optim.SGD(ref.parameters(), lr=0.0, momentum=0.9, nesterov=True, weight_decay=1e-3)
    x = torch.randn(64, 17, device="cuda", dtype=torch.float64)
    y = torch.randn(64, 5, device="cuda", dtype=torch.float64)
    for t in range(60):
        for m, o in ((model, opt), (ref, ref_opt)):
            o.zero_grad()
            torch.nn.functional.mse_loss(m(x), y).backward()
        for group in ref_opt.param_groups:
            group["lr"] = lr(t)
        opt.step()
        ref_opt.step()
    assert next(iter(opt.state.values()))["step"] == 60
    for p, r in zip(model.parameters(), ref.parameters()):
        assert p.is_cuda
        torch.testing.assert_close(p, r, rtol=1e-9, atol=1e-11)


@needs_torch_cuda
def test_schedule_table_into_cuda_tensor():
    from fastdecay._gpu.schedule import table

    s = SCHEDULES["stack"]
    out = torch.empty(s.batch_shape + (300,), device="cuda", dtype=torch.float32)
    assert table(s, 300, out=out) is out
    np.testing.assert_allclose(out.cpu().numpy(), s.table(300, dtype=np.float32), rtol=1e-6)


def test_cuda_graph_replays_with_device_step():
    """A captured fused update reads the step from device memory: replaying the graph
    50 times follows the schedule exactly as 50 eager CPU calls do."""
    rng = np.random.default_rng(0)
    n = 10_001
    host = [rng.standard_normal(n) for _ in range(2)] + [np.zeros(n), np.zeros(n)]
    w, g, m, v = (cp.asarray(x) for x in host)
    step = cp.zeros((), dtype=cp.int64)
    lr = fd.step(1e-2, 0.5, 7)

    def body():
        fd.adamw_step(w, g, m, v, step=step, lr=lr, weight_decay=0.1)
        cp.add(step, 1, out=step)

    body()  # warm-up: compiles the kernels, caches the device tables
    w[...] = cp.asarray(host[0])
    step[...] = 0
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        body()
        graph = stream.end_capture()
    for _ in range(50):
        graph.launch(stream)
    stream.synchronize()
    assert int(step) == 50
    hw, hg, hm, hv = host
    for t in range(50):
        fd.adamw_step(hw, hg, hm, hv, step=t, lr=lr, weight_decay=0.1)
    close(w, hw, np.float64)


def test_cuda_graph_with_in_kernel_step_increment():
    """The internal increment_step option: the kernel advances its own step counter."""
    from fastdecay._gpu import updates as gpu

    lr_table = fd.exponential(0.1, gamma=0.5).rows()
    wd_table = fd.constant(0.0).rows()
    w = cp.ones(1000)
    g = cp.ones(1000)
    step = cp.zeros((), dtype=cp.int32)
    checked = R.FUSED["sgd"].check(momentum=0.0, dampening=0.0, nesterov=False, decoupled=False, maximize=False,
                                   lr_in_buffer=False, on_drop="keep")
    kw = dict(tables=(lr_table, wd_table, checked.table), options=checked.values, grad_scale=None, found_inf=None,
              increment_step=True)
    gpu.fused_step("sgd", [[w], [g]], step=step, **kw)  # warm-up, step 0: w = 1 - 0.1
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        gpu.fused_step("sgd", [[w], [g]], step=step, **kw)
        graph = stream.end_capture()
    for _ in range(4):
        graph.launch(stream)
    stream.synchronize()
    assert int(step) == 5
    np.testing.assert_allclose(cp.asnumpy(w), 1.0 - sum(0.1 * 0.5**t for t in range(5)), rtol=1e-15)


@needs_torch_cuda
def test_torch_cuda_graph_replays_with_device_step():
    torch.manual_seed(0)
    w = torch.randn(5000, device="cuda")
    g = torch.randn(5000, device="cuda")
    m, v = torch.zeros_like(w), torch.zeros_like(w)
    w0 = w.clone()
    step = torch.zeros((), dtype=torch.int64, device="cuda")
    lr = fd.warmup(fd.cosine(1e-2, 40), 5)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up on a side stream, as torch asks
        fd.adamw_step(w, g, m, v, step=step, lr=lr)
    torch.cuda.current_stream().wait_stream(side)
    w.copy_(w0)
    m.zero_()
    v.zero_()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fd.adamw_step(w, g, m, v, step=step, lr=lr)
        step += 1
    for _ in range(30):
        graph.replay()
    torch.cuda.synchronize()
    assert int(step) == 30
    hw, hg = w0.cpu().numpy(), g.cpu().numpy()
    hm, hv = np.zeros_like(hw), np.zeros_like(hw)
    for t in range(30):
        fd.adamw_step(hw, hg, hm, hv, step=t, lr=lr)
    close(w.cpu().numpy(), hw, np.float32)


# ----------------------------------------------------------------------------- simulations

SIMULATIONS = [
    dict(curvature=np.linspace(0.1, 3.0, 1001)[:, None], schedule=fd.step(0.5, 0.5, 90), optimizer="momentum",
         on_drop="rescale", every=50),
    dict(curvature=np.linspace(0.1, 3.0, 300).reshape(100, 3), schedule=fd.cosine(0.3, 400), optimizer="adamw",
         weight_decay=0.01, every=25),
    dict(curvature=np.linspace(0.1, 2.0, 400).reshape(100, 4), schedule=fd.exponential(0.2, gamma=[[0.999], [0.99]]),
         optimizer="nesterov"),
    dict(curvature=np.linspace(0.5, 2.0, 999)[:, None],
         schedule=fd.stack([fd.exponential(0.3, gamma=0.997), fd.multistep(0.3, 0.3, [200, 350]),
                            fd.constant(0.1)] * 333), optimizer="momentum_lr_in_buffer", on_drop="reset", every=10),
    dict(curvature=np.linspace(0.5, 2.0, 1000)[:, None], schedule=fd.constant(0.4), optimizer="gd"),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", range(len(SIMULATIONS)))
def test_simulate_on_device_matches_cpu(case, dtype):
    kw = dict(SIMULATIONS[case], steps=500, dtype=dtype)
    want = fd.simulate(**kw)
    got = fd.simulate(**(kw | dict(curvature=cp.asarray(kw["curvature"]))))
    assert isinstance(got.w, cp.ndarray)
    rtol, atol = (1e-12, 1e-14) if dtype == np.float64 else (1e-5, 1e-6)
    np.testing.assert_allclose(cp.asnumpy(got.w), want.w, rtol=rtol, atol=atol)
    if kw.get("every"):
        np.testing.assert_allclose(cp.asnumpy(got.lr), want.lr, rtol=1e-12 if dtype == np.float64 else 1e-7)
        np.testing.assert_allclose(cp.asnumpy(got.loss), want.loss, rtol=rtol, atol=atol)


def test_noise_draws_match_cpu_generator():
    from fastdecay._cpu.philox import fill_normals, philox4x32_10
    from fastdecay._gpu.simulate import philox_fill

    seed, first, n, d = 12345, 2**33 + 5, 1000, 3
    for step in (76, 77, 78, 79):  # the four draws of one counter
        words, normals = philox_fill(seed, first, step, n, d)
        want = np.empty((n, d), dtype=np.float32)
        fill_normals(np.uint64(seed), np.uint64(first), np.uint32(step), d, want)
        np.testing.assert_array_equal(cp.asnumpy(normals).view(np.uint32), want.view(np.uint32))
        words = cp.asnumpy(words)
        for i in range(0, n, 37):
            for k in range(d):
                traj = first + i
                expect = philox4x32_10(traj & 0xFFFFFFFF, traj >> 32, step >> 2, k, seed & 0xFFFFFFFF, seed >> 32)
                assert [int(x) for x in words[i, k]] == [int(x) for x in expect]


def test_noisy_simulation_matches_cpu():
    kw = dict(curvature=np.linspace(0.5, 2.0, 600).reshape(200, 3), schedule=fd.constant(0.1), optimizer="gd",
              noise=0.3, seed=9, steps=300, every=30, trajectory_offset=2**40)
    want = fd.simulate(**kw)
    got = fd.simulate(**(kw | dict(curvature=cp.asarray(kw["curvature"]))))
    np.testing.assert_allclose(cp.asnumpy(got.w), want.w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(cp.asnumpy(got.loss), want.loss, rtol=1e-12, atol=1e-14)


@needs_torch_cuda
def test_simulate_on_cuda_tensor_returns_cuda_tensors():
    kw = dict(SIMULATIONS[1], steps=200)
    want = fd.simulate(**kw)
    lam = torch.as_tensor(kw["curvature"], device="cuda")
    got = fd.simulate(**(kw | dict(curvature=lam)))
    for a in (got.w, got.loss, got.displacement, got.lr):
        assert isinstance(a, torch.Tensor) and a.device == lam.device
    np.testing.assert_allclose(got.w.cpu().numpy(), want.w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got.loss.cpu().numpy(), want.loss, rtol=1e-12, atol=1e-14)


@pytest.mark.skipif(N_GPUS < 2, reason="needs two GPUs")
def test_simulate_runs_on_the_curvature_device_not_the_current_one():
    kw = dict(SIMULATIONS[3], steps=100)
    want = fd.simulate(**kw)
    with cp.cuda.Device(1):
        lam = cp.asarray(kw["curvature"])
    with cp.cuda.Device(0):
        got = fd.simulate(**(kw | dict(curvature=lam)))
    assert got.w.device.id == 1 and got.loss.device.id == 1 and got.lr.device.id == 1
    np.testing.assert_allclose(cp.asnumpy(got.w), want.w, rtol=1e-12, atol=1e-14)
    if HAS_TORCH_CUDA:
        with cp.cuda.Device(0):
            got_t = fd.simulate(**(kw | dict(curvature=torch.as_tensor(kw["curvature"], device="cuda:1"))))
        assert got_t.w.device == torch.device("cuda:1") and got_t.loss.device == torch.device("cuda:1")
        np.testing.assert_allclose(got_t.w.cpu().numpy(), want.w, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- bad input, refused before any launch


def test_mixed_array_types_refused_and_nothing_written():
    w = cp.ones(10)
    with pytest.raises(TypeError, match="grad"):
        fd.sgd_step(w, np.ones(10), step=0, lr=0.1)
    with pytest.raises(TypeError, match="exp_avg"):
        fd.adamw_step(w, cp.ones(10), np.zeros(10), cp.zeros(10), step=0, lr=0.1)
    np.testing.assert_array_equal(cp.asnumpy(w), 1.0)


def test_unsupported_dtype_refused():
    # float16 and bfloat16 are storage types the kernels take; integers and complex are not
    for dtype in (cp.int32, cp.complex64):
        w = cp.ones(10, dtype=dtype)
        with pytest.raises(TypeError, match="param must be float32, float64, float16 or bfloat16, got dtype"):
            fd.sgd_step(w, cp.ones(10, dtype=dtype), step=0, lr=0.1)
        np.testing.assert_array_equal(cp.asnumpy(w), 1)


def test_device_step_of_unsupported_dtype_refused():
    w = cp.ones(10)
    with pytest.raises(TypeError, match="step"):
        fd.sgd_step(w, cp.ones(10), step=cp.zeros((), dtype=cp.float16), lr=0.1)
    np.testing.assert_array_equal(cp.asnumpy(w), 1.0)


@pytest.mark.skipif(N_GPUS < 2, reason="needs two GPUs")
def test_arrays_on_different_gpus_refused():
    with cp.cuda.Device(0):
        w0, g0 = cp.ones(10), cp.ones(10)
    with cp.cuda.Device(1):
        w1, g1 = cp.ones(10), cp.ones(10)
    with pytest.raises(ValueError, match="device|GPU"):
        fd.sgd_step(w0, g1, step=0, lr=0.1)
    with pytest.raises(ValueError, match="GPU"):
        fd.sgd_step([w0, w1], [g0, g1], step=0, lr=0.1)
    np.testing.assert_array_equal(cp.asnumpy(w0), 1.0)
    np.testing.assert_array_equal(cp.asnumpy(w1), 1.0)
