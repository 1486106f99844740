"""Optimizer steps as a training loop sees them: new gradient tensors every step (as each
backward makes them), hundreds of steps in a row, the mean and the worst step next to the
median, and the garbage collector's full collections counted.

    python bench/steps_in_training.py [--model tiny-2000x256] [--steps 300] [--threads 1]

A median of steps hides what a training run pays in total: a pause of the garbage
collector every few dozen steps (a full collection traverses every object of the
process) moves the mean and the worst step, not the median. This script times
``fastdecay.torch.AdamW.step()`` and torch 2.x ``AdamW(fused=True)`` on the same parameter
list (``bench_updates.MODELS``: shapes only, random values), alternating in blocks of 10
steps, each step after giving every parameter a new gradient tensor from a pool (the
gradients' values are fixed; the tensors are new to the optimizer, as autograd's are).
Prints milliseconds per step (wall clock), alone and with the making of the new gradients
(a collection runs wherever the allocation that trips it happens: the iteration's figure
charges it to the loop, whichever line allocates), and the number of generation-2
collections during each optimizer's iterations.
"""

import argparse
import gc
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_updates import MODELS, _tensors  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=list(MODELS), default="tiny-2000x256")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    import numba

    import fastdecay.torch as fdt

    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    shapes = MODELS[args.model]()
    start = _tensors(shapes, 0)
    pool = [_tensors(shapes, 1 + k) for k in range(3)]  # gradient values, copied into new tensors
    optimizers = {}
    for name in ("fastdecay", "torch-fused"):
        params = [torch.nn.Parameter(t.clone()) for t in start]
        if name == "torch-fused":
            opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2, fused=True)
        else:
            opt = fdt.AdamW(params, lr=1e-3, weight_decay=1e-2)
        optimizers[name] = (params, opt)
    collections = {name: 0 for name in optimizers}
    current = [None]

    def count(phase, info):
        if phase == "start" and info["generation"] == 2 and current[0] is not None:
            collections[current[0]] += 1

    gc.callbacks.append(count)
    times = {name: [] for name in optimizers}
    step = 0
    try:
        while step < args.steps + 10:  # the first block (state made, kernels loaded) is not counted
            for name, (params, opt) in optimizers.items():
                for k in range(10):
                    current[0] = name if step >= 10 else None
                    t0 = time.perf_counter()
                    grads = [g.clone() for g in pool[(step + k) % 3]]  # new tensors, as a backward makes
                    for p, g in zip(params, grads):
                        p.grad = g
                    del grads
                    t1 = time.perf_counter()
                    opt.step()
                    t2 = time.perf_counter()
                    current[0] = None
                    if step >= 10:
                        times[name].append((t2 - t1, t2 - t0))
            step += 10
    finally:
        gc.callbacks.remove(count)
    print(f"{args.model}: {len(shapes)} tensors, {sum(int(np.prod(s)) for s in shapes):,} elements, "
          f"{args.steps} steps each, {args.threads} thread(s), torch {torch.__version__}")
    for name, t in times.items():
        t = np.array(t) * 1e3
        print(f"  {name:12s} step: median {np.median(t[:, 0]):6.2f} ms, mean {t[:, 0].mean():6.2f} ms, "
              f"max {t[:, 0].max():6.1f} ms;  new gradients + step: median {np.median(t[:, 1]):6.2f} ms, "
              f"mean {t[:, 1].mean():6.2f} ms;  full collections {collections[name]}")
    fd, tf = np.array(times["fastdecay"]), np.array(times["torch-fused"])
    print(f"  torch fused / fastdecay: step median {np.median(tf[:, 0]) / np.median(fd[:, 0]):.2f}x, "
          f"step mean {tf[:, 0].mean() / fd[:, 0].mean():.2f}x, "
          f"new gradients + step mean {tf[:, 1].mean() / fd[:, 1].mean():.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
