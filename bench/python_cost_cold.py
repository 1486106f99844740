"""What a step's Python costs when the caches are cold, as a large update's kernels or a
backward pass leave them: ``fd.adamw_step`` and ``fastdecay.torch.AdamW.step()`` on a model's
parameter list (``bench_updates.MODELS``, bfloat16 parameters and state by default) with the
kernel launch replaced by nothing, timed warm (steps back to back) and cold (40 MB streamed
through the caches before each step), round-robin, medians in microseconds.

    python bench/python_cost_cold.py [--model resnet18] [--dtype bfloat16|float32] [--rounds 60]

The kernels are not run: what is timed is the checks, the launch plan's re-check and the
optimizer's bookkeeping (gradients, states, step counts), i.e. the part of a step that runs
as Python. A large step's kernel streams more than the caches hold, so in training this
Python runs cold.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_updates import MODELS, ModelCase  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=list(MODELS), default="resnet18")
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args(argv)
    from fastdecay._cpu import parallel

    dtype = getattr(torch, args.dtype)
    case = ModelCase(MODELS[args.model](), dtype, "bfloat16" if dtype == torch.bfloat16 else None)
    steps = {"fd.adamw_step": case.functional(), "fastdecay.torch.AdamW": case.fastdecay_optimizer()}
    for step in steps.values():  # kernels loaded, states made, launch plans built
        step()
        step()
    parallel.launch = lambda kernel, launch_args, n_threads=None: None  # the Python alone from here
    junk = np.ones(40_000_000 // 8)
    for cold in (False, True):
        times = {k: [] for k in steps}
        for _ in range(args.rounds):
            for name, step in steps.items():
                if cold:
                    junk += 1.0
                t0 = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - t0)
        shown = ", ".join(f"{k} {statistics.median(v) * 1e6:.0f} us" for k, v in times.items())
        print(f"{args.model}, {args.dtype}, {len(case.params)} tensors, {'cold' if cold else 'warm'}: {shown}")


if __name__ == "__main__":
    main()
