"""Where the noise generator's time goes, on one core: each of ``fill_normal_pairs``'s
three loops alone, the same work as one loop, the multiplier's throughput, and the
vector instructions of each loop.

    python bench/philox_profile.py [--ghz 3.66]

Cycles are CPU seconds (``time.thread_time``, best of 7, 4,000 passes over 512
lanes) times ``--ghz`` (the core's clock under load; measure it on the machine, e.g.
with a chain of dependent one-cycle integer operations). Compiled fresh (no cache),
for this process's Numba target (``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` apply).
"""

import argparse
import math
import re
import sys
import time

import numpy as np
from numba import njit

from fastdecay._cpu.philox import (_radius, _uniform_integers, fill_normal_pairs, log_unit, philox4x32_10,
                                   sincos_two_pi)
from fastdecay._cpu.simulate import noise_lanes

MASK = np.uint64(0xFFFFFFFF)
S32 = np.uint64(32)
LANES = 512
PASSES = 4000


@njit(error_model="numpy")
def philox_loop(passes, lane_trajectory, lane_coordinate, k_out, j_out):
    """The first loop: Philox words and the uniforms' integers."""
    for p in range(passes):
        for j in range(k_out.shape[0]):
            t = lane_trajectory[j]
            x0, x1, x2, x3 = philox4x32_10(t & MASK, t >> S32, np.uint64(p), lane_coordinate[j], np.uint64(1),
                                           np.uint64(0))
            k, u = _uniform_integers(x0, x1, x2, x3)
            k_out[j] = float(k)
            j_out[j] = u


def elementwise(fn):
    """A loop over the lanes applying ``fn`` (compiled, inlined), ``passes`` times."""
    @njit(error_model="numpy")
    def loop(passes, xs, out):
        for _ in range(passes):
            for j in range(out.shape[0]):
                out[j] = fn(xs[j])
    return loop


log_loop = elementwise(log_unit)
radius_loop = elementwise(_radius)                  # the second loop: sqrt(-2 ln u1)
sqrt_loop = elementwise(njit(lambda x: math.sqrt(x)))


@njit(error_model="numpy")
def angle_loop(passes, js, r, even, odd):
    """The third loop: sin and cos of 2 pi u2, times the radius."""
    for _ in range(passes):
        for j in range(even.shape[0]):
            c, s = sincos_two_pi(js[j])
            even[j] = r[j] * c
            odd[j] = r[j] * s


@njit(error_model="numpy")
def one_loop_fill(seed, first, lane_trajectory, lane_coordinate, pair, even, odd):
    """The same draws as fill_normal_pairs in a single loop."""
    for j in range(even.shape[0]):
        t = first + lane_trajectory[j]
        x0, x1, x2, x3 = philox4x32_10(t & MASK, t >> S32, pair, lane_coordinate[j], seed & MASK, seed >> S32)
        k, u = _uniform_integers(x0, x1, x2, x3)
        r = _radius(k)
        c, s = sincos_two_pi(u)
        even[j] = r * c
        odd[j] = r * s


def passes_of(fill):
    @njit
    def run(passes, lane_trajectory, lane_coordinate, even, odd):
        for p in range(passes):
            fill(np.uint64(1), np.uint64(0), lane_trajectory, lane_coordinate, np.uint64(p), even, odd)
    return run


@njit
def multiplies(passes, a, out):
    """Eight independent 32x32->64 products a lane (``vpmuludq``) and their xor."""
    m = np.uint64(0xD2511F53)
    for _ in range(passes):
        for j in range(a.shape[0]):
            x = a[j] & MASK
            out[j] = ((x * m) ^ (x * (m + np.uint64(2))) ^ (x * (m + np.uint64(4))) ^ (x * (m + np.uint64(6)))
                      ^ (x * (m + np.uint64(8))) ^ (x * (m + np.uint64(10))) ^ (x * (m + np.uint64(12)))
                      ^ (x * (m + np.uint64(14))))


def seconds(fn, *args):
    fn(1, *args)
    best = math.inf
    for _ in range(7):
        t0 = time.thread_time()
        fn(PASSES, *args)
        best = min(best, time.thread_time() - t0)
    return best


def vector_loops(dispatcher):
    """(instructions, vector instructions) of each vectorised loop in the dispatcher's assembly."""
    lines = "\n".join(dispatcher.inspect_asm(sig) for sig in dispatcher.signatures).split("\n")
    labels = {line[:-1]: i for i, line in enumerate(lines) if re.match(r"^\.LBB\d+_\d+:", line)}
    loops = []
    for i, line in enumerate(lines):
        jump = re.match(r"\s+j\w+\s+(\.LBB\d+_\d+)", line)
        if jump and labels.get(jump.group(1), i) < i:
            body = lines[labels[jump.group(1)] + 1:i + 1]
            vector = sum(bool(re.search(r"%[yz]mm", b)) for b in body)
            if vector > 10 and 2 * vector > len(body):   # the vector bodies, not the scalar remainders
                loops.append((len(body), vector))
    return loops


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ghz", type=float, default=3.66)
    args = parser.parse_args(argv)
    cycles = args.ghz * 1e9 / (PASSES * LANES)   # cycles a lane per CPU-second of a run

    rng = np.random.default_rng(0)
    lane_trajectory, lane_coordinate = noise_lanes(1)
    ks = rng.integers(1, 2**53, LANES).astype(np.float64)
    js = rng.integers(0, 2**53, LANES, dtype=np.int64).astype(np.uint64)
    xs = rng.uniform(0.0, 80.0, LANES)
    f1, f2, f3, f4 = (np.empty(LANES) for _ in range(4))
    u1 = np.empty(LANES, np.uint64)

    rows = [
        ("Philox + the uniforms' integers (loop 1), a pair", seconds(philox_loop, lane_trajectory, lane_coordinate,
                                                                     f1, u1)),
        ("radius sqrt(-2 ln u1) (loop 2), a pair", seconds(radius_loop, ks, f1)),
        ("  of it: log_unit alone", seconds(log_loop, ks, f1)),
        ("  of it: the square root alone", seconds(sqrt_loop, xs, f1)),
        ("angle and products (loop 3), a pair", seconds(angle_loop, js, xs, f1, f2)),
        ("fill_normal_pairs (three loops), a pair", seconds(passes_of(fill_normal_pairs), lane_trajectory,
                                                            lane_coordinate, f1, f2)),
        ("the same in one loop, a pair", seconds(passes_of(one_loop_fill), lane_trajectory, lane_coordinate,
                                                 f3, f4)),
        ("8 independent vpmuludq a lane (multiplier throughput)", seconds(multiplies, u1, np.empty(LANES,
                                                                                                 np.uint64))),
    ]
    assert np.array_equal(f1.view(np.uint64), f3.view(np.uint64)) and np.array_equal(f2.view(np.uint64),
                                                                                    f4.view(np.uint64))
    for label, s in rows:
        print(f"{label:58s} {s * cycles:6.2f} cycles")
    three, one = rows[5][1], rows[6][1]
    print(f"three loops: {2 * PASSES * LANES / three / 1e9:.3f}e9 draws/s a core, one loop "
          f"{2 * PASSES * LANES / one / 1e9:.3f}e9 ({one / three:.2f}x the time)")
    fresh = njit(error_model="numpy")(fill_normal_pairs.py_func)
    fresh(np.uint64(1), np.uint64(0), lane_trajectory, lane_coordinate, np.uint64(0), f1, f2)
    for n_all, n_vector in vector_loops(fresh):
        print(f"fill_normal_pairs vector loop: {n_all} instructions, {n_vector} on vector registers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
