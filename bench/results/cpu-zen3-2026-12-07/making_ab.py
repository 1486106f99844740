"""A batch's schedules made from arrays of 1e6 (and 2e5) members: best and median of 5 calls after
one, or that one where it took seconds (``PYTHONPATH=<tree> python making_ab.py <label> [n]``)."""
import sys
import time

import numpy as np

import fastdecay as fd

for n in (1_000_000, 200_000) if len(sys.argv) < 3 else (int(sys.argv[2]),):
    gammas = np.linspace(0.98, 0.999, n)
    lrs = np.linspace(0.1, 0.5, n)
    cases = {
        "exponential(0.5, gamma=gammas)": lambda: fd.exponential(lr=0.5, gamma=gammas),
        "cosine(lrs, 100)": lambda: fd.cosine(lrs, 100),
        "step(lrs, 0.5, 30)": lambda: fd.step(lrs, 0.5, 30),
        "warmup(cosine(lrs, 100), 10)": lambda: fd.warmup(fd.cosine(lrs, 100), 10),
        "multistep(lrs, 0.1, [30, 60])": lambda: fd.multistep(lrs, 0.1, [30, 60]),
        "join([constant(lrs), cosine(lrs, 90)], [10])": lambda: fd.join([fd.constant(lrs), fd.cosine(lrs, 90)], [10]),
        "stack(37 warmups)[which] * lrs": lambda: fd.stack([fd.warmup(fd.cosine(0.05, 90), k + 5) for k in range(37)])[
            np.arange(n) % 37] * lrs,
    }
    for name, make in cases.items():
        t0 = time.perf_counter()
        make()
        times = [time.perf_counter() - t0]
        if times[0] > 2.0:  # (a call of seconds: that one call, not five more)
            print(f"{sys.argv[1]} n={n:>9,} {name:46s} one call {times[0]:7.1f} s", flush=True)
            continue
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            make()
            times.append(time.perf_counter() - t0)
        print(f"{sys.argv[1]} n={n:>9,} {name:46s} best {min(times) * 1e3:7.1f} ms  median {sorted(times)[2] * 1e3:7.1f} ms",
              flush=True)
