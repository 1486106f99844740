"""Per-core roofline of the simulation kernels: each path's rate next to the
measured ceiling of its loop shape, on this CPU's widest vectors and on AVX2.

    python bench/simulate_roofline.py [--out bench/simulate_roofline] [--quick]

Every rate is trajectory-steps (element-steps) per second of **one core**: the
call runs with ``threads=1`` and is timed by the calling thread's CPU time
(``time.thread_time``; the OpenMP layer runs a one-thread region on the calling
thread), best of several calls, so a machine shared with other jobs slows the
figures less than wall-clock timing would. The ceilings, measured the same way:

- ``L1 loop-shape ceiling``: the GD loop shape (two loads, one multiply-add, one
  store an element) over one 512-element tile that stays in L1 for every step,
  compiled with ``fastmath`` (the best code LLVM makes of it): no schedule, no
  call overhead; what one core can do for this loop at all.
- ``FMA ceiling, four steps a pass``: the same loop shape with four steps a pass over
  the tile (each element's weight kept in a register across them, as the kernel's
  noiseless blocks do: one load of w and a, one store, per four steps), ``fastmath``:
  bound by the multiply-adds (two operations an element-step), not by L1.
- ``FMA ceiling, four steps a pass, 512-bit``: the same in 512-bit vectors
  (``prefer_wide_vectors``, as the kernel's noiseless blocks ask for; measured where the
  build has AVX-512): the ceiling of those blocks on a core with two 512-bit FMA units.
- ``noise generator alone``: ``philox.fill_normal_quads`` filling one tile's four
  rows again and again (per draw): the ceiling of a noisy step.

The same script runs itself again for AVX2 (``NUMBA_CPU_NAME=haswell`` with
``NUMBA_CPU_FEATURES`` set to Haswell's features, AVX2 and FMA, no AVX-512; a fresh
Numba cache) and draws both. The feature list matters: ``NUMBA_CPU_NAME`` alone
keeps the host's features, so on an AVX-512 machine it builds AVX-512 code with
Haswell's scheduling model. Writes ``<out>.json`` (rates, the
CPU model and flags, the load average) and ``<out>.png``.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PATHS = [
    # label, optimizer, dtype, noise, per-trajectory schedules
    ("GD float64", "gd", "float64", 0.0, False),
    ("GD float32", "gd", "float32", 0.0, False),
    ("GD per-trajectory float64", "gd", "float64", 0.0, True),
    ("momentum float64", "momentum", "float64", 0.0, False),
    ("momentum per-trajectory float64", "momentum", "float64", 0.0, True),
    ("AdamW float64", "adamw", "float64", 0.0, False),
    ("noisy GD float64", "gd", "float64", 0.1, False),
    ("noisy GD float32", "gd", "float32", 0.1, False),
    ("noisy momentum float64", "momentum", "float64", 0.1, False),
    ("noisy AdamW float64", "adamw", "float64", 0.1, False),
]


# LLVM's feature list of the Haswell CPU (AVX2, FMA, BMI): what an AVX2-only machine offers
HASWELL_FEATURES = "+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+f16c,+fma,+fsgsbase,+lzcnt,+movbe,+popcnt,+sse4.2"


def naive_tiled_gd(parallel):
    """The 15-line tiled Numba loop of GD with shared rates (``w[j] *= 1 - a[j] * eta``,
    tiles of 512, ``prange`` over tiles): the bar for the kernel's noiseless path."""
    import numba
    from numba import njit

    @njit(parallel=parallel, cache=False)
    def naive(w, a, etas):
        for b in numba.prange((w.shape[0] + 511) // 512):
            i0 = b * 512
            i1 = min(i0 + 512, w.shape[0])
            ww = w[i0:i1]
            aa = a[i0:i1]
            for t in range(etas.shape[0]):
                eta = etas[t]
                for j in range(ww.shape[0]):
                    ww[j] *= 1 - aa[j] * eta

    return naive


def naive_tiled_momentum(parallel):
    """The same tiled loop for heavy-ball momentum (``b = m*b + a*w; w -= eta*b``, the
    buffer starting at the first gradient as torch's does): the bar a rule with one more
    stream (the buffer: three loads, two stores an element) and two more operations sets."""
    import numba
    from numba import njit

    @njit(parallel=parallel, cache=False)
    def naive(w, b, a, etas, m):
        for blk in numba.prange((w.shape[0] + 511) // 512):
            i0 = blk * 512
            i1 = min(i0 + 512, w.shape[0])
            ww = w[i0:i1]
            bb = b[i0:i1]
            aa = a[i0:i1]
            for t in range(etas.shape[0]):
                eta = etas[t]
                mt = m if t > 0 else 0.0
                for j in range(ww.shape[0]):
                    bj = mt * bb[j] + aa[j] * ww[j]
                    bb[j] = bj
                    ww[j] -= eta * bj

    return naive


def naive_tiled_adamw(parallel):
    """The same tiled loop for AdamW (torch's formula, no schedule object: ``w *= 1 - eta*wd;
    m += (1-b1)(g - m); v = b2 v + (1-b2) g^2; w -= eta/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)``):
    its square root and two divisions an element set the bar of that rule."""
    import math

    import numba
    from numba import njit

    @njit(parallel=parallel, cache=False, error_model="numpy")
    def naive(w, m, v, a, etas, wd, b1, b2, eps):
        for blk in numba.prange((w.shape[0] + 511) // 512):
            i0 = blk * 512
            i1 = min(i0 + 512, w.shape[0])
            ww = w[i0:i1]
            mm = m[i0:i1]
            vv = v[i0:i1]
            aa = a[i0:i1]
            for t in range(etas.shape[0]):
                eta = etas[t]
                shrink = 1.0 - eta * wd
                step = eta / (1.0 - b1 ** (t + 1))
                bc2 = math.sqrt(1.0 - b2 ** (t + 1))
                for j in range(ww.shape[0]):
                    x = ww[j] * shrink
                    g = aa[j] * ww[j]
                    mj = mm[j] + (1.0 - b1) * (g - mm[j])
                    vj = b2 * vv[j] + (1.0 - b2) * g * g
                    mm[j] = mj
                    vv[j] = vj
                    ww[j] = x - step * mj / (math.sqrt(vj) / bc2 + eps)

    return naive


def fma_loop_of(wide=False):
    """The FMA ceiling's loop: four GD steps a pass over a tile, ``rounds`` times over the steps
    ``etas``; with ``wide`` in the 512-bit vectors ``fastdecay._cpu.intrinsics.prefer_wide_vectors``
    asks for (a constant of the compiled function)."""
    from numba import njit

    from fastdecay._cpu.intrinsics import prefer_wide_vectors

    @njit(fastmath=True, cache=False)
    def fma_loop(w, a, etas, rounds):
        if wide:
            prefer_wide_vectors()
        for _ in range(rounds):
            for t in range(0, etas.shape[0] - 3, 4):
                e0, e1, e2, e3 = etas[t], etas[t + 1], etas[t + 2], etas[t + 3]
                for j in range(w.shape[0]):
                    x, aj = w[j], a[j]
                    x = x * (1.0 - aj * e0)
                    x = x * (1.0 - aj * e1)
                    x = x * (1.0 - aj * e2)
                    w[j] = x * (1.0 - aj * e3)

    return fma_loop


def best_thread_time(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.thread_time()
        fn()
        times.append(time.thread_time() - start)
    return min(times)


def measure(quick):
    """{label: element-steps per second of one core} for this process's Numba target."""
    import numba
    from numba import njit

    import fastdecay as fd
    from fastdecay._cpu.intrinsics import wide_vectors
    from fastdecay._cpu.philox import fill_normal_quads
    from fastdecay._cpu.simulate import noise_lanes

    numba.set_num_threads(1)
    repeats = 3 if quick else 7
    n, steps = (100_000, 50) if quick else (1_000_000, 200)
    n_noisy = n // 10
    rng = np.random.default_rng(0)
    rates = {}

    @njit(fastmath=True, cache=False)
    def l1_loop(w, a, etas, rounds):
        for _ in range(rounds):
            for t in range(etas.shape[0]):
                eta = etas[t]
                for j in range(w.shape[0]):
                    w[j] *= 1.0 - a[j] * eta

    tile = rng.uniform(0.01, 1.0, 512)
    etas = np.full(steps, 1e-9)
    rounds = n // 512
    seconds = best_thread_time(lambda: l1_loop(np.ones(512), tile, etas, rounds), repeats)
    rates["L1 loop-shape ceiling"] = 512 * rounds * steps / seconds

    fma_loop = fma_loop_of()
    seconds = best_thread_time(lambda: fma_loop(np.ones(512), tile, etas, rounds), repeats)
    rates["FMA ceiling, four steps a pass"] = 512 * rounds * (steps - steps % 4) / seconds
    if wide_vectors():
        wide_loop = fma_loop_of(wide=True)
        seconds = best_thread_time(lambda: wide_loop(np.ones(512), tile, etas, rounds), repeats)
        rates["FMA ceiling, four steps a pass, 512-bit"] = 512 * rounds * (steps - steps % 4) / seconds

    lane_trajectory, lane_coordinate = noise_lanes(1)
    zs = [np.empty(512, np.float32) for _ in range(4)]

    @njit(cache=False)
    def fill_many(quads, lane_trajectory, lane_coordinate, z0, z1, z2, z3):
        for q in range(quads):
            fill_normal_quads(np.uint64(1), np.uint64(0), lane_trajectory, lane_coordinate, np.uint64(q), z0, z1, z2,
                              z3)

    quads = n_noisy * steps // (4 * 512)
    seconds = best_thread_time(lambda: fill_many(quads, lane_trajectory[:512], lane_coordinate[:512], *zs), repeats)
    rates["noise generator alone"] = quads * 4 * 512 / seconds
    if os.environ.get("NUMBA_CPU_FEATURES") == HASWELL_FEATURES:
        asm = "\n".join(fill_normal_quads.inspect_asm(sig) for sig in fill_normal_quads.signatures)
        assert "zmm" not in asm, "the AVX2 build holds AVX-512 registers"

    naive = naive_tiled_gd(parallel=True)
    lam = rng.uniform(0.01, 1.0, (n, 1))
    a = lam.ravel().copy()
    etas = 0.5 * 0.99 ** np.arange(steps)
    seconds = best_thread_time(lambda: naive(np.ones(n), a, etas), repeats)
    rates["naive tiled Numba GD"] = n * steps / seconds

    shared = fd.exponential(lr=0.5, gamma=0.99)
    for label, optimizer, dtype, noise, per in PATHS:
        m = n_noisy if noise else n
        schedule = fd.exponential(lr=0.5, gamma=np.linspace(0.98, 0.999, m)) if per else shared
        kw = dict(steps=steps, optimizer=optimizer, dtype=dtype, noise=noise, threads=1,
                  weight_decay=0.01 if optimizer == "adamw" else 0.0)
        seconds = best_thread_time(lambda: fd.simulate(lam[:m], schedule, **kw), repeats)
        rates[label] = m * steps / seconds
    return rates


def machine():
    info = {"python": platform.python_version(), "loadavg_before": os.getloadavg()}
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "CPU(s)", "L1d cache", "L2 cache"):
                info[key.strip()] = value.strip()
            if key.strip() == "Flags":
                info["vector flags"] = " ".join(f for f in value.split() if f.startswith(("avx", "fma", "sse4")))
    except OSError:
        info["lscpu"] = "unavailable"
    import llvmlite.binding as ll
    import numba

    info["numba"] = numba.__version__
    info["llvm host cpu"] = ll.get_host_cpu_name()
    return info


def draw(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = list(results["rates"])
    labels = [k for k in results["rates"][targets[0]] if "ceiling" not in k and "alone" not in k]
    fig, axes = plt.subplots(1, len(targets), figsize=(6.2 * len(targets), 5.2), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, target in zip(axes, targets):
        rates = results["rates"][target]
        y = np.arange(len(labels))
        values = np.array([rates[k] for k in labels]) / 1e9
        colors = ["tab:orange" if k.startswith("noisy") else "tab:gray" if k.startswith("naive") else "tab:blue"
                  for k in labels]
        ax.barh(y, values, color=colors)
        for yy, v in zip(y, values):
            ax.text(v, yy, f" {v:.2f}", va="center", fontsize=8)
        ceiling = rates["L1 loop-shape ceiling"] / 1e9
        noise_ceiling = rates["noise generator alone"] / 1e9
        ax.axvline(ceiling, color="k", ls="--", lw=1)
        ax.text(ceiling, len(labels) - 0.4, f"L1 loop-shape ceiling\n{ceiling:.2f}", ha="right", va="top",
                fontsize=8)
        wide = "FMA ceiling, four steps a pass, 512-bit" in rates  # (the kernel's blocks are in 512-bit vectors)
        fma_ceiling = rates.get("FMA ceiling, four steps a pass" + (", 512-bit" if wide else ""))
        if fma_ceiling:
            ax.axvline(fma_ceiling / 1e9, color="tab:red", ls="--", lw=1)
            what = "FMA ceiling, 4 steps a pass" + (", 512-bit" if wide else "")
            ax.text(fma_ceiling / 1e9, len(labels) - 1.4, f"{what}\n{fma_ceiling / 1e9:.2f}",
                    ha="right", va="top", fontsize=8, color="tab:red")
        ax.axvline(noise_ceiling, color="tab:orange", ls=":", lw=1)
        ax.text(noise_ceiling, -0.6, f"noise generator alone {noise_ceiling:.2f}", ha="left", va="bottom",
                fontsize=8, color="tab:orange")
        ax.set_xscale("log")
        ax.set_xlabel("G trajectory-steps / s, one core")
        ax.set_title(target, fontsize=10)
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=9)
    fig.suptitle(f"fd.simulate per core on {results['machine'].get('Model name', 'this CPU')}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).with_name("simulate_roofline")))
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer repeats (a smoke run)")
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_only:
        print(json.dumps(measure(args.quick)))
        return 0
    results = {"machine": machine(), "rates": {}}
    import llvmlite.binding as ll

    results["rates"][f"native ({ll.get_host_cpu_name()})"] = measure(args.quick)
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CPU_NAME="haswell", NUMBA_CPU_FEATURES=HASWELL_FEATURES, NUMBA_CACHE_DIR=cache)
        cmd = [sys.executable, __file__, "--measure-only"] + (["--quick"] if args.quick else [])
        run = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if run.returncode != 0:
            raise SystemExit(run.stderr)
        avx2 = json.loads(run.stdout.strip().splitlines()[-1])
        results["rates"]["AVX2 (NUMBA_CPU_NAME=haswell and its features)"] = avx2
    results["machine"]["loadavg_after"] = os.getloadavg()
    Path(args.out + ".json").write_text(json.dumps(results, indent=1))
    draw(results, args.out + ".png")
    for target, rates in results["rates"].items():
        print(target)
        for k, v in rates.items():
            print(f"  {k:32s} {v / 1e9:7.3f} G/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
