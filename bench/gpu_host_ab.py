"""A GPU step's wall-clock time on real models' parameter lists, for comparing two versions
of fastdecay's host path in one call on one machine: run it once per version (each from
its own tree, ``PYTHONPATH`` = that tree), alternating, and compare the ratios to torch's
fused AdamW measured in the same process.

    PYTHONPATH=<tree> python bench/gpu_host_ab.py LABEL [OUT_DIR]    (needs CuPy and torch with CUDA)

For each list (``bench_updates.MODELS``: ResNet-18, ResNet-50, GPT-2 small, BERT-base,
2,000 x 256; float32, and ResNet-18 with bfloat16 parameters and state): ``fd.adamw_step``,
``fastdecay.torch.AdamW`` and ``torch.optim.AdamW(fused=True)`` on the same tensors, with the
same gradient tensors every step and with new gradient tensors every step (three sets in
turn, as autograd's new ``.grad`` tensors reuse the caching allocator's blocks). Each
figure is the median over 11 interleaved rounds of ten steps between two device
synchronizations. Prints one JSON line per row (appended to OUT_DIR/gpu-host-ab.jsonl).
"""

import json
import os
import sys
import time

import numpy as np


def main():
    import torch

    import fastdecay as fd
    from fastdecay.torch import AdamW

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_updates import MODELS

    label = sys.argv[1]
    out_dir = sys.argv[2] if len(sys.argv) > 2 else "."
    device = os.environ.get("FASTDECAY_AB_DEVICE", "cuda")  # "cpu": a dry run of the script itself
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    cases = [(m, "fp32") for m in ("resnet18", "resnet50", "gpt2-small", "bert-base", "tiny-2000x256")]
    cases.append(("resnet18", "bf16-state-bf16"))
    only = os.environ.get("FASTDECAY_AB_MODELS")
    if only:
        cases = [c for c in cases if c[0] in only.split(",")]
    for model, config in cases:
        dtype = torch.float32 if config == "fp32" else torch.bfloat16
        state_dtype = None if config == "fp32" else "bfloat16"
        gen = torch.Generator(device=device).manual_seed(0)
        shapes = MODELS[model]()
        params = [torch.nn.Parameter(torch.randn(s, device=device, generator=gen).to(dtype)) for s in shapes]
        grad_sets = [[(torch.randn(s, device=device, generator=gen) * 1e-3).to(dtype) for s in shapes]
                     for _ in range(3)]
        sdt = torch.bfloat16 if state_dtype else torch.float32
        m = [torch.zeros(s, device=device, dtype=sdt) for s in shapes]
        v = [torch.zeros(s, device=device, dtype=sdt) for s in shapes]
        for p, g in zip(params, grad_sets[0]):
            p.grad = g
        adapter = AdamW(params, lr=1e-3, weight_decay=1e-2, state_dtype=state_dtype)
        fused = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2, fused=True)
        count = [1]
        turn = [0]

        def set_grads(new):
            if new:
                turn[0] = (turn[0] + 1) % 3
            grads = grad_sets[turn[0]]
            for p, g in zip(params, grads):
                p.grad = g
            return grads

        def functional(new):
            def step():
                fd.adamw_step(params, set_grads(new), m, v, step=count[0], lr=1e-3, weight_decay=1e-2,
                              state_dtype=state_dtype)
                count[0] += 1
            return step

        def optimizer(opt, new):
            def step():
                set_grads(new)
                opt.step()
            return step

        for new in (False, True):
            fns = {"fd.adamw_step": functional(new), "fastdecay.torch.AdamW": optimizer(adapter, new),
                   "torch fused": optimizer(fused, new)}
            for fn in fns.values():
                fn()
                fn()
            times = {k: [] for k in fns}
            for _ in range(11):
                for k, fn in fns.items():
                    sync()
                    t0 = time.perf_counter()
                    for _ in range(10):
                        fn()
                    sync()
                    times[k].append((time.perf_counter() - t0) / 10)
            us = {k: round(float(np.median(t)) * 1e6, 1) for k, t in times.items()}
            row = dict(label=label, model=model, config=config, tensors=len(shapes),
                       grads="new each step" if new else "the same", us=us,
                       fd_vs_fused=round(us["torch fused"] / us["fd.adamw_step"], 3),
                       adapter_vs_fused=round(us["torch fused"] / us["fastdecay.torch.AdamW"], 3))
            print(json.dumps(row), flush=True)
            with open(os.path.join(out_dir, "gpu-host-ab.jsonl"), "a") as f:
                f.write(json.dumps(row) + "\n")
        del params, grad_sets, m, v, adapter, fused
        if device == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
