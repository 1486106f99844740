"""Noisy simulations by CPU time: fastdecay on one thread against NumPy and JAX, the
same loops as ``bench/bench_simulate.py``'s noisy groups, timed by the CPU time they
use rather than by the wall clock, so the ratios hold on a machine others load.

    python bench/noisy_cpu_time.py [--out FILE.json] [--repeats 5] [--n 100000] [--steps 200]

For each optimizer (GD, heavy-ball momentum, AdamW) and dtype, in turns (round r times
every implementation once, then round r + 1): ``fd.simulate(..., noise=0.1,
threads=1)`` and the noiseless call by the calling thread's CPU time
(``time.thread_time``), NumPy's loop (``Generator.standard_normal`` each step) by its
thread's CPU time, JAX's ``lax.scan`` (``jax.random.normal`` of ``fold_in(key, t)``)
by the whole process's CPU time (``time.process_time``: XLA runs on its own threads).
Best of the rounds. Rates are trajectory-steps per CPU-second: what one core gives;
fastdecay's threads multiply it on an otherwise idle machine (NumPy's loop is
single-threaded; JAX's CPU time counts every thread it used). Writes the rates, the
CPU model, flags and load average to ``--out``.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SIGMA = 0.1


def machine():
    info = {"python": platform.python_version(), "loadavg_before": os.getloadavg()}
    text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("Model name", "CPU(s)"):
            info[key.strip()] = value.strip()
        if key.strip() == "Flags":
            info["vector flags"] = " ".join(f for f in value.split() if f.startswith(("avx", "fma")))
    return info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args(argv)

    import jax

    jax.config.update("jax_enable_x64", True)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import fastdecay as fd
    from bench_simulate import BETAS, EPS, GAMMA, LR, MOMENTUM, WD, _noisy_loop, jax_optimizer

    info = machine()
    n, steps = args.n, args.steps
    lam = np.random.default_rng(1).uniform(0.01, 1.0, (n, 1))
    schedule = fd.exponential(lr=LR, gamma=GAMMA)
    cases = [(opt, dt) for opt in ("gd", "momentum", "adamw") for dt in ("float64", "float32")]

    def fd_call(optimizer, dtype, noise):
        return lambda: fd.simulate(lam, schedule, steps=steps, optimizer=optimizer, momentum=MOMENTUM, betas=BETAS,
                                   eps=EPS, weight_decay=WD if optimizer == "adamw" else 0.0, dtype=dtype,
                                   noise=noise, seed=11, threads=1)

    def numpy_call(optimizer, dtype):
        lam_x = lam.ravel().astype(dtype)

        def call():
            rng = np.random.default_rng(3)
            return _noisy_loop((np.empty_like, lambda x, out: np.sqrt(x, out=out)), optimizer, lam_x, steps, dtype,
                               lambda z: rng.standard_normal(out=z, dtype=z.dtype))
        return call

    def jax_call(optimizer, dtype):
        f = jax_optimizer(jax, optimizer, SIGMA, dtype)
        lam_j = jax.numpy.asarray(lam.ravel().astype(dtype))
        idx = jax.numpy.arange(steps, dtype=dtype)
        key = jax.random.PRNGKey(3)
        return lambda: f(lam_j, idx, key).block_until_ready()

    impls = {}
    for optimizer, dtype in cases:
        impls[optimizer, dtype] = {
            "fastdecay": (fd_call(optimizer, dtype, SIGMA), time.thread_time),
            "fastdecay-noiseless": (fd_call(optimizer, dtype, 0.0), time.thread_time),
            "numpy": (numpy_call(optimizer, dtype), time.thread_time),
            "jax": (jax_call(optimizer, dtype), time.process_time),
        }
    best = {case: {name: float("inf") for name in row} for case, row in impls.items()}
    for case, row in impls.items():          # warm-up: compile everything first
        for fn, _ in row.values():
            fn()
    for _ in range(args.repeats):
        for case, row in impls.items():
            for name, (fn, clock) in row.items():
                t0 = clock()
                fn()
                best[case][name] = min(best[case][name], clock() - t0)
    info["loadavg_after"] = os.getloadavg()
    rates = {f"{opt} {dt}": {name: n * steps / s for name, s in row.items()} for (opt, dt), row in best.items()}
    print(f"{info.get('Model name')}, load {info['loadavg_before']} -> {info['loadavg_after']}")
    print("M trajectory-steps per CPU-second; fd/numpy, fd/jax: fastdecay's rate over theirs; noise cost: "
          "fastdecay's noiseless rate over its noisy one")
    print(f"{'case':18s} {'fastdecay':>10s} {'noiseless':>10s} {'numpy':>10s} {'jax':>10s} {'fd/numpy':>9s} "
          f"{'fd/jax':>7s} {'noise cost':>11s}")
    for case, r in rates.items():
        print(f"{case:18s} {r['fastdecay'] / 1e6:10.1f} {r['fastdecay-noiseless'] / 1e6:10.1f} "
              f"{r['numpy'] / 1e6:10.1f} {r['jax'] / 1e6:10.1f} {r['fastdecay'] / r['numpy']:9.2f} "
              f"{r['fastdecay'] / r['jax']:7.2f} {r['fastdecay-noiseless'] / r['fastdecay']:10.1f}x")
    if args.out:
        Path(args.out).write_text(json.dumps({"machine": info, "n": n, "steps": steps, "sigma": SIGMA,
                                              "rates": rates}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
