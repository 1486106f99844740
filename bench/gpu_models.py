"""GPU figures for the work users bring, in one process: AdamW over real models'
parameter lists (issue 12) and noisy simulations (issue 13), each against torch (and
JAX for the simulations) on the same data, interleaved.

    python bench/gpu_models.py [OUT_DIR]        (needs CuPy and torch with CUDA; JAX optional)

Part 1, parameter lists (the shapes of bench/bench_updates.py: ResNet-18, ResNet-50,
GPT-2 small, BERT-base, 2,000 x 256), float32, bfloat16 parameters with float32 state
and bfloat16 with bfloat16 state: ``fd.adamw_step`` on the whole list,
``fastdecay.torch.AdamW``, torch's ``AdamW(fused=True)`` and ``foreach=True`` on the
same tensors (and torch fused on float32 copies, the bfloat16 rows' baseline). Each
figure is the median over interleaved rounds of wall-clock time per step (ten steps
between two device synchronizations: the host's validation and launches included,
as a training loop sees them). GB/s counts each parameter, gradient and state element
read once and each parameter and state element written once; the ceiling is a
device-to-device copy measured in the same run. Kernel launches per step are counted
with torch's profiler.

Part 2, simulations: 10 million float32 trajectories (d = 1) x 1,000 steps of GD,
heavy ball and AdamW, with and without noise (sigma = 0.1), through the public
``fd.simulate`` (allocation and preparation included), median of 5 calls; noisy GD
also in float64, with a rate per trajectory and recorded every 100 steps (median of 3),
in torch (``randn`` each step, eager) and in JAX (``lax.scan`` with
``jax.random.normal``). Reported as trajectory-steps/s.

Prints one table per part and writes ``gpu-models-simulate.json`` (``gpu-PARTS.json``) to OUT_DIR (default .).

    python bench/gpu_models.py OUT_DIR models      (one part: models or simulate)
"""

import json
import os
import sys
import time

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX shares the card with torch and CuPy

import numpy as np

import fastdecay as fd

cp = torch = MODELS = None  # imported by main(): the test suite collects this file without a GPU

CONFIGS = None  # {name: (parameter dtype, state dtype of fastdecay)}, set by main()


def sync():
    torch.cuda.synchronize()
    cp.cuda.Device().synchronize()


def interleaved(fns, rounds, iters):
    """{name: median seconds per call}: every round times each function over ``iters``
    calls between two synchronizations, functions alternating."""
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            for _ in range(iters):
                fn()
            sync()
            times[k].append((time.perf_counter() - t0) / iters)
    return {k: float(np.median(v)) for k, v in times.items()}


def copy_ceiling(nbytes):
    """Bytes read + written per second by a device-to-device copy of ``nbytes`` / 2."""
    src = torch.ones(int(nbytes // 2), dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    sec = interleaved({"copy": lambda: dst.copy_(src)}, rounds=7, iters=10)["copy"]
    del src, dst
    return nbytes / sec


def kernels_per_step(fn):
    from torch.profiler import ProfilerActivity, profile

    sync()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        sync()
    return sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)


def model_rows():
    rows = []
    for model, shapes_of in MODELS.items():
        shapes = shapes_of()
        n = sum(int(np.prod(s)) for s in shapes)
        for config, (dtype, state_dtype) in CONFIGS.items():
            gen = torch.Generator(device="cuda").manual_seed(0)
            params = [torch.nn.Parameter(torch.randn(s, device="cuda", generator=gen).to(dtype)) for s in shapes]
            for p in params:
                p.grad = torch.randn(p.shape, device="cuda", generator=gen).to(dtype) * 1e-3
            sdt = torch.bfloat16 if state_dtype == "bfloat16" else torch.float32
            m = [torch.zeros(s, device="cuda", dtype=sdt) for s in shapes]
            v = [torch.zeros(s, device="cuda", dtype=sdt) for s in shapes]
            grads = [p.grad for p in params]
            count = [1]

            def functional():
                fd.adamw_step(params, grads, m, v, step=count[0], lr=1e-3, weight_decay=1e-2,
                              state_dtype=state_dtype)
                count[0] += 1

            from fastdecay.torch import AdamW

            fns = {"fastdecay": functional,
                   "fastdecay.torch.AdamW": AdamW(params, lr=1e-3, weight_decay=1e-2, state_dtype=state_dtype).step,
                   "torch-fused": torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2, fused=True).step,
                   "torch-foreach": torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2, foreach=True).step}
            if dtype != torch.float32:
                copies = [torch.nn.Parameter(p.detach().float()) for p in params]
                for c, p in zip(copies, params):
                    c.grad = p.grad.float()
                fns["torch-fused-fp32"] = torch.optim.AdamW(copies, lr=1e-3, weight_decay=1e-2, fused=True).step
            for fn in fns.values():
                fn()  # compile / load kernels, build launch plans, make torch's state
            launches = {k: kernels_per_step(fn) for k, fn in fns.items() if k != "torch-foreach"}
            med = interleaved(fns, rounds=11, iters=10)
            psize = 4 if dtype == torch.float32 else 2
            ssize = 2 if state_dtype == "bfloat16" else 4
            nbytes = n * (2 * psize + psize + 4 * ssize)
            row = dict(model=model, config=config, tensors=len(shapes), elements=n, bytes_per_step=nbytes,
                       ms={k: round(s * 1e3, 4) for k, s in med.items()}, launches=launches,
                       fastdecay_tbps=nbytes / med["fastdecay"] / 1e12,
                       speedup_vs_torch_fused=med["torch-fused"] / med["fastdecay"],
                       adapter_speedup_vs_torch_fused=med["torch-fused"] / med["fastdecay.torch.AdamW"])
            if "torch-fused-fp32" in med:
                row["speedup_vs_torch_fused_fp32"] = med["torch-fused-fp32"] / med["fastdecay"]
            rows.append(row)
            print(json.dumps(row), flush=True)
            del params, grads, m, v, fns
            torch.cuda.empty_cache()
            cp.get_default_memory_pool().free_all_blocks()
    return rows


SIM_N, SIM_STEPS, SIGMA = 10_000_000, 1_000, 0.1
SIM_SCHEDULES = {"gd": fd.exponential(0.5, gamma=0.999), "momentum": fd.exponential(0.05, gamma=0.999),
                 "adamw": fd.exponential(1e-3, gamma=0.999)}


def median_call(fn, reps=5):
    fn()
    sync()
    out = []
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        out.append(time.perf_counter() - t0)
    return float(np.median(out))


def simulation_rows():
    rows = []
    lam32 = cp.linspace(0.01, 1.0, SIM_N, dtype=cp.float32).reshape(SIM_N, 1)
    work = SIM_N * SIM_STEPS
    for opt, schedule in SIM_SCHEDULES.items():
        for noise in (0.0, SIGMA):
            sec = median_call(lambda: fd.simulate(lam32, schedule, steps=SIM_STEPS, optimizer=opt, noise=noise,
                                                  seed=1, dtype=np.float32))
            rows.append(dict(impl="fastdecay", optimizer=opt, dtype="float32", noise=noise, seconds=sec,
                             steps_per_s=work / sec))
            print(json.dumps(rows[-1]), flush=True)
    lam64 = lam32.astype(cp.float64)
    sec = median_call(lambda: fd.simulate(lam64, SIM_SCHEDULES["gd"], steps=SIM_STEPS, noise=SIGMA, seed=1))
    rows.append(dict(impl="fastdecay", optimizer="gd", dtype="float64", noise=SIGMA, seconds=sec,
                     steps_per_s=work / sec))
    print(json.dumps(rows[-1]), flush=True)
    del lam64
    # noisy runs that take the general simulation kernel (which spills registers): a rate
    # per trajectory, and recording (every 100 steps)
    general = {"per-trajectory exponential": dict(schedule=fd.exponential(0.5, gamma=np.linspace(0.998, 0.9995,
                                                                                                 SIM_N))),
               "recorded every 100 steps": dict(schedule=SIM_SCHEDULES["gd"], every=100)}
    for label, kw in general.items():
        try:
            sec = median_call(lambda: fd.simulate(lam32, steps=SIM_STEPS, noise=SIGMA, seed=1, dtype=np.float32, **kw),
                              reps=3)
        except Exception as e:  # a row that fails is said so; the others stand
            print(f"{label} failed: {e!r}", flush=True)
            continue
        rows.append(dict(impl=f"fastdecay, {label}", optimizer="gd", dtype="float32", noise=SIGMA, seconds=sec,
                         steps_per_s=work / sec))
        print(json.dumps(rows[-1]), flush=True)

    rates = SIM_SCHEDULES["gd"].table(SIM_STEPS)
    lam_t = torch.linspace(0.01, 1.0, SIM_N, device="cuda")

    def torch_gd():
        w = torch.ones(SIM_N, device="cuda")
        for t in range(SIM_STEPS):
            lr = float(rates[t])
            z = torch.randn(SIM_N, device="cuda")
            w.addcmul_(lam_t, w, value=-lr).add_(z, alpha=-lr * SIGMA)
        return w

    sec = median_call(torch_gd, reps=3)
    rows.append(dict(impl="torch eager (randn each step)", optimizer="gd", dtype="float32", noise=SIGMA, seconds=sec,
                     steps_per_s=work / sec))
    print(json.dumps(rows[-1]), flush=True)
    del lam_t
    torch.cuda.empty_cache()
    try:
        import jax
        import jax.numpy as jnp

        lam_j = jnp.linspace(0.01, 1.0, SIM_N, dtype=jnp.float32)
        rates_j = jnp.asarray(rates, dtype=jnp.float32)

        @jax.jit
        def jax_gd(key):
            def body(w, xs):
                t, lr = xs
                z = jax.random.normal(jax.random.fold_in(key, t), (SIM_N,), jnp.float32)
                return w - lr * (lam_j * w + SIGMA * z), None

            w, _ = jax.lax.scan(body, jnp.ones(SIM_N, jnp.float32), (jnp.arange(SIM_STEPS), rates_j))
            return w

        key = jax.random.PRNGKey(0)
        sec = median_call(lambda: jax_gd(key).block_until_ready(), reps=3)
        rows.append(dict(impl=f"jax {jax.__version__} lax.scan", optimizer="gd", dtype="float32", noise=SIGMA,
                         seconds=sec, steps_per_s=work / sec))
        print(json.dumps(rows[-1]), flush=True)
    except Exception as e:  # JAX missing or without a GPU backend: the row is left out, said so
        print(f"jax baseline skipped: {e!r}", flush=True)
    return rows


def main():
    global cp, torch, MODELS, CONFIGS
    import cupy as cp
    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_updates import MODELS  # the shapes, one source of truth

    CONFIGS = {"fp32": (torch.float32, None), "bf16-state-fp32": (torch.bfloat16, None),
               "bf16-state-bf16": (torch.bfloat16, "bfloat16")}
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out_dir, exist_ok=True)
    name = torch.cuda.get_device_name(0)
    ceiling = copy_ceiling(4e9)
    print(f"{name}: device-to-device copy {ceiling / 1e12:.2f} TB/s (read + write)", flush=True)
    result = dict(device=name, torch=torch.__version__, cupy=cp.__version__, copy_bytes_per_s=ceiling)
    parts = sys.argv[2].split(",") if len(sys.argv) > 2 else ["models", "simulate"]
    if "models" in parts:
        result["models"] = model_rows()
    if "simulate" in parts:
        result["simulate"] = simulation_rows()
    with open(os.path.join(out_dir, f"gpu-{'-'.join(parts)}.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(f"\n{name}, copy ceiling {ceiling / 1e12:.2f} TB/s")
    for r in result.get("models", []):
        ms = r["ms"]
        print(f"{r['model']:>14} {r['config']:>16} {r['tensors']:>5} t | fd {ms['fastdecay']:8.3f} ms "
              f"adapter {ms['fastdecay.torch.AdamW']:8.3f} fused {ms['torch-fused']:8.3f} foreach "
              f"{ms['torch-foreach']:8.3f} | {r['speedup_vs_torch_fused']:.2f}x / {r['adapter_speedup_vs_torch_fused']:.2f}x"
              f" fused | {r['fastdecay_tbps'] / ceiling * 1e12:4.0%} of copy | launches "
              f"{r['launches'].get('fastdecay')}/{r['launches'].get('fastdecay.torch.AdamW')}/"
              f"{r['launches'].get('torch-fused')}")
    for r in result.get("simulate", []):
        print(f"{r['impl']:>32} {r['optimizer']:>8} {r['dtype']} noise {r['noise']:.1f}: {r['seconds'] * 1e3:9.2f} ms"
              f"  {r['steps_per_s']:.3g} trajectory-steps/s")


if __name__ == "__main__":
    main()
