"""Noisy simulations on one thread by CPU time, for one source tree (run it once per tree,
alternating: ``PYTHONPATH=<tree> python noisy_ab.py <label>``): ``fd.simulate`` with
noise 0.1 and without, GD / heavy-ball momentum / AdamW, float64 and float32, 100,000
one-coordinate trajectories x 200 steps under one shared exponential schedule (the
``bench/noisy_cpu_time.py`` runs, fastdecay's rows alone); best of 5 by the thread's CPU
time, in M trajectory-steps per CPU-second."""

import sys
import time

import numpy as np

import fastdecay as fd

N, STEPS = 100_000, 200


def best_cpu_seconds(call, repeats=5):
    call()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.thread_time()
        call()
        best = min(best, time.thread_time() - t0)
    return best


def main():
    lam = np.random.default_rng(0).uniform(0.01, 1.0, (N, 1))
    schedule = fd.exponential(0.05, gamma=0.99)
    out = []
    for optimizer in ("gd", "momentum", "adamw"):
        for dtype in ("float64", "float32"):
            rates = []
            for noise in (0.1, 0.0):
                def call():
                    fd.simulate(lam, schedule, steps=STEPS, optimizer=optimizer, noise=noise, seed=1, dtype=dtype,
                                weight_decay=0.01 if optimizer == "adamw" else 0.0, threads=1)
                rates.append(N * STEPS / best_cpu_seconds(call) / 1e6)
            out.append(f"{optimizer} {dtype} noisy {rates[0]:.0f} noiseless {rates[1]:.0f}")
    print(sys.argv[1], " | ".join(out), "M trajectory-steps/s")


if __name__ == "__main__":
    main()
