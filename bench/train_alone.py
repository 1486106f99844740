"""One optimizer's step inside a plain training loop, one model in the process: the
optimizer step timed right after each backward pass (as a training loop calls it), then
the same step back to back (warm caches, no backward in between), for torch's fused AdamW or
``fastdecay.torch.AdamW`` (``bench_train``'s models and data; a new process per optimizer).

    python bench/train_alone.py torch|fastdecay [--model transformer|convnet-channels_last] [--steps 400]

``bench/bench_train.py`` interleaves the two optimizers step by step in one process (two
models), which spreads machine load evenly but also leaves both steps colder than a plain
loop does; this script shows the step as a plain loop sees it.
"""

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_train as BT  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("optimizer", choices=["torch", "fastdecay"])
    parser.add_argument("--model", choices=list(BT.MODELS), default="transformer")
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args(argv)
    make, task, batch = BT.MODELS[args.model]
    torch.manual_seed(0)
    model = make()
    if args.model.endswith("channels_last"):
        model = model.to(memory_format=torch.channels_last)
    x, y = task(args.steps, batch, torch.Generator().manual_seed(1))
    schedule = BT.fd.warmup(BT.fd.cosine(BT.LR, args.steps - BT.WARMUP), BT.WARMUP)  # as bench_train
    if args.optimizer == "torch":  # the rate set by fastdecay's scheduler, timed with the step
        opt = torch.optim.AdamW(model.parameters(), lr=BT.LR, weight_decay=BT.WEIGHT_DECAY, fused=True)
        scheduler = BT.fdt.LRScheduler(opt, schedule)
        step = lambda: (opt.step(), scheduler.step())  # noqa: E731
    else:
        opt = BT.fdt.AdamW(model.parameters(), lr=schedule, weight_decay=BT.WEIGHT_DECAY)
        step = opt.step
    in_loop = []
    for i in range(args.steps):
        opt.zero_grad()
        BT._loss(model, x[i], y[i]).backward()
        t0 = time.perf_counter()
        step()
        in_loop.append(time.perf_counter() - t0)
    back_to_back = []
    for _ in range(200):
        t0 = time.perf_counter()
        step()
        back_to_back.append(time.perf_counter() - t0)
    print(f"{args.optimizer} on {args.model} ({sum(p.numel() for p in model.parameters()):,} params, "
          f"{len(list(model.parameters()))} tensors, torch threads {torch.get_num_threads()}): optimizer step "
          f"{statistics.median(in_loop[20:]) * 1e3:.3f} ms after each backward, "
          f"{statistics.median(back_to_back) * 1e3:.3f} ms back to back")


if __name__ == "__main__":
    main()
