"""What other work just before a step does to it: ``fd.adamw_step`` and torch's fused AdamW on
the small transformer's parameter list (``bench_train.TinyTransformer``: 28 tensors, 302k
float32 elements), each timed back to back, right after a torch matmul (torch's OpenMP
threads then spin for a while), and right after 64 MB streamed through the caches (the
step's 4.8 MB then come from memory), on Numba's and torch's default thread counts and on
one Numba thread.

    python bench/step_after_torch_work.py [--rounds 200]

Medians in milliseconds, each row twice. A training step follows a backward pass, which
leaves both behind it.
"""

import argparse
import os
import statistics
import sys
import time

import numba
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_train as BT  # noqa: E402

import fastdecay as fd  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    params = list(BT.TinyTransformer().parameters())
    grads = [torch.randn_like(p) * 1e-3 for p in params]
    m, v = [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
    copies = [torch.nn.Parameter(p.detach().clone()) for p in params]
    for c, g in zip(copies, grads):
        c.grad = g.clone()
    fused = torch.optim.AdamW(copies, lr=1e-3, fused=True)
    count = [0]

    def fd_step():
        fd.adamw_step(params, grads, m, v, step=count[0], lr=1e-3)
        count[0] += 1

    a, b = torch.randn(512, 512), torch.randn(512, 512)
    junk = np.ones(64_000_000 // 8)
    before = {"back to back": None, "after a matmul": lambda: torch.mm(a, b),
              "after 64 MB streamed": lambda: junk.__iadd__(1.0)}

    def median_ms(fn, first):
        times = []
        for _ in range(args.rounds):
            if first is not None:
                first()
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e3

    fd_step()
    fused.step()
    print(f"{len(params)} tensors, {sum(p.numel() for p in params):,} elements; Numba layer "
          f"{numba.threading_layer()}, torch threads {torch.get_num_threads()}")
    for threads in (numba.get_num_threads(), 1):
        numba.set_num_threads(threads)
        for name, first in before.items():
            for _ in range(2):
                print(f"  {name:>22}, Numba threads {threads}: fd.adamw_step {median_ms(fd_step, first):.3f} ms, "
                      f"torch fused {median_ms(fused.step, first):.3f} ms")


if __name__ == "__main__":
    main()
