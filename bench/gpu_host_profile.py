"""Where a GPU step's host time goes: ``fd.adamw_step`` and ``fastdecay.torch.AdamW`` on
ResNet-18's parameter list (62 CUDA tensors, float32), whose kernel takes a fraction of
the step, so the host's work sets the step time.

    python bench/gpu_host_profile.py [OUT_DIR]     (needs CuPy and torch with CUDA)

Prints (and writes to OUT_DIR/host_profile.txt): the wall-clock time per step (ten
steps between two synchronizations, median of 11 rounds), the same with the device
synchronized after each step, the cost of each CUDA-side call the launch path makes
(torch's current stream, CuPy's stream wrapper, the device context, the capture
query, one launch of an empty kernel, the calls a cached launch would make instead), and
cProfile's top functions over 300 steps of each, by own time and by cumulative time. Each
step is timed twice: with the same gradient tensors every step, and with new gradient
tensors every step (three sets in turn, as autograd's new ``.grad`` tensors reuse the
caching allocator's blocks).
"""

import cProfile
import io
import os
import pstats
import sys
import time

import numpy as np


def per_call(fn, iters=2000):
    """Median seconds per call of ``fn`` over 7 rounds of ``iters`` calls (host time)."""
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        times.append((time.perf_counter() - t0) / iters)
    return float(np.median(times))


def main():
    import cupy as cp
    import torch

    import fastdecay as fd
    from fastdecay._gpu import _runtime as rt
    from fastdecay.torch import AdamW

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_updates import MODELS

    out_dir = sys.argv[1] if len(sys.argv) > 1 else "."
    lines = []

    def say(text):
        print(text, flush=True)
        lines.append(text)

    shapes = MODELS["resnet18"]()
    gen = torch.Generator(device="cuda").manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, device="cuda", generator=gen)) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, device="cuda", generator=gen) * 1e-3
    grads = [p.grad for p in params]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    count = [1]

    def functional():
        fd.adamw_step(params, grads, m, v, step=count[0], lr=1e-3, weight_decay=1e-2)
        count[0] += 1

    adapter = AdamW(params, lr=1e-3, weight_decay=1e-2).step
    fused = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2, fused=True).step
    # new gradient tensors every step: three sets in turn (new objects at each call)
    grad_sets = [[torch.randn(p.shape, device="cuda", generator=gen) * 1e-3 for p in params] for _ in range(3)]
    turn = [0]

    def new_grads():
        turn[0] = (turn[0] + 1) % 3
        for p, g in zip(params, grad_sets[turn[0]]):
            p.grad = g
        return grad_sets[turn[0]]

    def functional_new():
        fd.adamw_step(params, new_grads(), m, v, step=count[0], lr=1e-3, weight_decay=1e-2)
        count[0] += 1

    def adapter_new():
        new_grads()
        adapter()

    def fused_new():
        new_grads()
        fused()

    steps = {"fd.adamw_step": functional, "fastdecay.torch.AdamW": adapter, "torch fused": fused,
             "fd.adamw_step, new grads": functional_new, "fastdecay.torch.AdamW, new grads": adapter_new,
             "torch fused, new grads": fused_new}
    for fn in steps.values():
        fn()
    torch.cuda.synchronize()
    say(f"{torch.cuda.get_device_name(0)}, ResNet-18 list: {len(shapes)} tensors, float32")
    for name, fn in steps.items():
        def ten():
            for _ in range(10):
                fn()
            torch.cuda.synchronize()

        def synced():
            fn()
            torch.cuda.synchronize()

        say(f"{name:>34}: {per_call(ten, 20) / 10 * 1e6:8.1f} us a step (10 between syncs), "
            f"{per_call(synced, 200) * 1e6:8.1f} us synchronized each step")

    stream = torch.cuda.current_stream()
    empty = cp.RawKernel('extern "C" __global__ void nothing() {}', "nothing")
    empty((1,), (1,), ())
    def device_context():
        with cp.cuda.Device(0):
            pass

    def launch_context():
        with rt.context(0, params):
            pass

    handle = stream.cuda_stream
    cp_stream = cp.cuda.ExternalStream(handle, 0)
    table = np.arange(62 * 8, dtype=np.int64).reshape(62, 8)
    values = (np.uint64(0),) * 8 + (np.int32(1),) * 12 + (np.float64(1.0),) * 8
    many = cp.RawKernel('extern "C" __global__ void many(' + ", ".join(
        f"unsigned long long a{i}" for i in range(8)) + ", " + ", ".join(f"int b{i}" for i in range(12)) + ", "
        + ", ".join(f"double c{i}" for i in range(8)) + ") {}", "many")
    many((1,), (1,), values)
    raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)

    calls = {
        "torch.cuda.current_stream()": lambda: torch.cuda.current_stream(params[0].device),
        "torch._C._cuda_getCurrentRawStream(0)": lambda: raw_stream(0),
        "cp.cuda.ExternalStream(handle, 0)": lambda: cp.cuda.ExternalStream(handle, 0),
        "an empty launch, stream= given": lambda: empty((1,), (1,), (), stream=cp_stream),
        "a 28-argument launch, prepared values": lambda: many((1,), (1,), values, stream=cp_stream),
        "28 arguments converted (np scalars)": lambda: tuple(np.float64(1.0) for _ in range(28)),
        "cp.asarray(62 x 8 int64 table)": lambda: cp.asarray(table),
        "table.tobytes() + hash": lambda: hash(table.tobytes()),
        "cp.cuda.runtime.getDevice()": cp.cuda.runtime.getDevice,
        "rt.stream_for(params)": lambda: rt.stream_for(params),
        "with cp.cuda.Device(0)": device_context,
        "with rt.context(0, params)": launch_context,
        "rt.capturing()": rt.capturing,
        "an empty kernel's launch (CuPy)": lambda: empty((1,), (1,), ()),
        "torch: an empty tensor op (zero_ on 1 element)": lambda: m[0].view(-1)[:1].zero_(),
        "stream.synchronize() when idle": stream.synchronize,
    }
    torch.cuda.synchronize()
    for name, fn in calls.items():
        try:
            say(f"{name:>48}: {per_call(fn) * 1e6:8.2f} us")
        except Exception as e:  # a call this CuPy or torch lacks: say so, go on
            say(f"{name:>48}: failed ({e!r})")
    torch.cuda.synchronize()
    for name, fn in steps.items():
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(300):
            fn()
        torch.cuda.synchronize()
        profile.disable()
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(25)
        pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats("fastdecay", 30)
        say(f"\n--- cProfile, 300 steps of {name} (by own time, then cumulative)\n" + text.getvalue())
    with open(os.path.join(out_dir, "host_profile.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
