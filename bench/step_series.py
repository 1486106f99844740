"""The time of each optimizer step in a row, on one model's parameter list: how steady
torch's fused AdamW and ``fastdecay.torch.AdamW`` are, step by step (a median hides it).

    python bench/step_series.py torch|fastdecay [--model gpt2-small] [--steps 12] [--threads N]

The list is one of ``bench_updates.MODELS`` (shapes only, random values, gradients fixed);
AdamW(lr=1e-3, weight_decay=1e-2). Prints the milliseconds of every step (the first one
makes the state).
"""

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_updates import MODELS, _tensors  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("optimizer", choices=["torch", "fastdecay"])
    parser.add_argument("--model", choices=list(MODELS), default="gpt2-small")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        import numba

        torch.set_num_threads(args.threads)
        numba.set_num_threads(args.threads)
    shapes = MODELS[args.model]()
    params = [torch.nn.Parameter(t) for t in _tensors(shapes, 0)]
    for p, g in zip(params, _tensors(shapes, 1)):
        p.grad = g
    if args.optimizer == "torch":
        opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2, fused=True)
    else:
        from fastdecay.torch import AdamW

        opt = AdamW(params, lr=1e-3, weight_decay=1e-2)
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        opt.step()
        times.append(round((time.perf_counter() - t0) * 1e3))
    print(f"{args.optimizer} {args.model} ({len(shapes)} tensors), threads {torch.get_num_threads()}: ms per step {times}")


if __name__ == "__main__":
    main()
