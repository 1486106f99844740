"""fd.simulate on one problem of 1e6 elements laid out as different batches: 1e6 trajectories
of one coordinate, one trajectory of 1e6 coordinates (one quadratic with a spectrum of 1e6
curvatures, the noisy quadratic model's setting), 1,000 x 1,000 and 10 x 100,000; GD under a
shared exponential schedule, noiseless (1,000 steps) and noisy (sigma 0.1, 100 steps), then the
one trajectory of 1e6 coordinates recorded (``every=``), on the default threads. Prints, per
layout, the best of ``--reps`` wall-clock times, the process's CPU time over the wall clock
(about the thread count when the threads share the work) and the element-steps a second.

    PYTHONPATH=<tree> python bench/simulate_shapes.py [--reps 3]
"""

import argparse
import platform
import time

import numpy as np

import fastdecay as fd

LAYOUTS = [(1_000_000, 1), (1_000_000,), (1_000, 1_000), (10, 100_000)]
RUNS = [("noiseless", 0.0, 1_000, None), ("noisy", 0.1, 100, None)]
RECORDED = [("noiseless", 0.0, 1_000, 100), ("noiseless", 0.0, 200, 10), ("noiseless", 0.0, 50, 1),
            ("noisy", 0.1, 100, 10)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    import numba

    print(f"# {platform.processor() or platform.machine()}, numba threads {numba.get_num_threads()}")
    lam = np.random.default_rng(0).uniform(0.1, 2.0, 1_000_000)
    schedule = fd.exponential(0.5, gamma=0.998)
    cases = [(run, shape) for run in RUNS for shape in LAYOUTS] + [(run, (1_000_000,)) for run in RECORDED]
    for (name, noise, steps, every), shape in cases:
        curvature = lam.reshape(shape)
        fd.simulate(curvature, schedule, steps=10, noise=noise, every=every)  # compile or load
        best = None
        for _ in range(args.reps):
            cpu, wall = time.process_time(), time.perf_counter()
            fd.simulate(curvature, schedule, steps=steps, noise=noise, every=every)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best = min(best or (wall, cpu), (wall, cpu))
        wall, cpu = best
        label = f"{name}, every={every}" if every else name
        print(f"{label:20s} {str(shape):15s} {steps:5d} steps {wall * 1e3:8.1f} ms  cpu/wall {cpu / wall:4.2f}  "
              f"{lam.size * steps / wall / 1e9:6.2f} G element-steps/s")


if __name__ == "__main__":
    main()
