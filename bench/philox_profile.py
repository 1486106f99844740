"""Where the noise generator's time goes, on one core: each of ``fill_normal_quads``'s
three loops alone, its pieces (the logarithm, the square root), the same work as one
loop, the multiplier's throughput, and the vector instructions of each loop.

    python bench/philox_profile.py [--ghz 3.66]

Cycles are CPU seconds (``time.thread_time``, best of 7, 4,000 passes over 512 lanes)
times ``--ghz`` (the core's clock under load; measure it on the machine, e.g. with a
chain of dependent one-cycle integer operations), reported a draw: a lane of a pass is
one Philox counter and four draws. Compiled fresh (no cache), for this process's Numba
target (``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` apply: the AVX2 build on an AVX-512
machine is ``NUMBA_CPU_NAME=haswell NUMBA_CPU_FEATURES=<simulate_roofline.HASWELL_FEATURES>``).
"""

import argparse
import math
import re
import sys
import time

import numpy as np
from numba import njit

from fastdecay._cpu.philox import fill_normal_quads, log_u1, philox4x32_10, radius, sincos_turn
from fastdecay._cpu.simulate import noise_lanes

MASK = np.uint64(0xFFFFFFFF)
S32 = np.uint64(32)
LANES = 512
PASSES = 4000
DRAWS = 4  # a lane of a pass: one counter, four draws


@njit(error_model="numpy")
def philox_loop(passes, lane_trajectory, lane_coordinate, w0, w1, w2, w3):
    """The first loop: the Philox words, kept as 32-bit words."""
    for p in range(passes):
        for j in range(w0.shape[0]):
            t = lane_trajectory[j]
            x0, x1, x2, x3 = philox4x32_10(t & MASK, t >> S32, np.uint64(p), lane_coordinate[j], np.uint64(1),
                                           np.uint64(0))
            w0[j] = np.uint32(x0)
            w1[j] = np.uint32(x1)
            w2[j] = np.uint32(x2)
            w3[j] = np.uint32(x3)


def both(fn):
    """A loop applying ``fn`` (compiled, inlined) to the two words of each lane, ``passes`` times."""
    @njit(error_model="numpy")
    def loop(passes, a, b, ra, rb):
        for _ in range(passes):
            for j in range(ra.shape[0]):
                ra[j] = fn(a[j])
                rb[j] = fn(b[j])
    return loop


radius_loop = both(radius)          # the second loop: the two radii sqrt(-2 ln u1) of a counter
log_loop = both(log_u1)             # the two logarithms alone
sqrt_loop = both(njit(lambda x: np.sqrt(x)))   # the two float32 square roots alone


@njit(error_model="numpy")
def angle_loop(passes, a, b, ra, rb, z0, z1, z2, z3):
    """The third loop: two sine-cosine pairs of 2 pi u2, times the radii."""
    for _ in range(passes):
        for j in range(z0.shape[0]):
            c, s = sincos_turn(a[j])
            z0[j] = ra[j] * c
            z1[j] = ra[j] * s
            c, s = sincos_turn(b[j])
            z2[j] = rb[j] * c
            z3[j] = rb[j] * s


@njit(error_model="numpy")
def one_loop_fill(seed, first, lane_trajectory, lane_coordinate, quad, z0, z1, z2, z3):
    """The same draws as fill_normal_quads in a single loop."""
    for j in range(z0.shape[0]):
        t = first + lane_trajectory[j]
        x0, x1, x2, x3 = philox4x32_10(t & MASK, t >> S32, quad, lane_coordinate[j], seed & MASK, seed >> S32)
        r = radius(x0)
        c, s = sincos_turn(x1)
        z0[j] = r * c
        z1[j] = r * s
        r = radius(x2)
        c, s = sincos_turn(x3)
        z2[j] = r * c
        z3[j] = r * s


def passes_of(fill):
    @njit
    def run(passes, lane_trajectory, lane_coordinate, z0, z1, z2, z3):
        for p in range(passes):
            fill(np.uint64(1), np.uint64(0), lane_trajectory, lane_coordinate, np.uint64(p), z0, z1, z2, z3)
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
    cycles = args.ghz * 1e9 / (PASSES * LANES * DRAWS)   # cycles a draw per CPU-second of a run

    rng = np.random.default_rng(0)
    lane_trajectory, lane_coordinate = noise_lanes(1)
    lane_trajectory, lane_coordinate = lane_trajectory[:LANES], lane_coordinate[:LANES]
    a, b = (rng.integers(0, 2**32, LANES, dtype=np.uint64).astype(np.uint32) for _ in range(2))
    xa, xb = (rng.uniform(0.0, 45.0, LANES).astype(np.float32) for _ in range(2))
    ra, rb = (np.empty(LANES, np.float32) for _ in range(2))
    words = [np.empty(LANES, np.uint32) for _ in range(4)]
    zs = [np.empty(LANES, np.float32) for _ in range(4)]
    one = [np.empty(LANES, np.float32) for _ in range(4)]
    u1 = rng.integers(0, 2**32, LANES, dtype=np.uint64)

    rows = [
        ("Philox words (loop 1)", seconds(philox_loop, lane_trajectory, lane_coordinate, *words)),
        ("two radii sqrt(-2 ln u1) (loop 2)", seconds(radius_loop, a, b, ra, rb)),
        ("  of it: the two logarithms alone", seconds(log_loop, a, b, ra, rb)),
        ("  of it: the two square roots alone", seconds(sqrt_loop, xa, xb, ra, rb)),
        ("two angles and four products (loop 3)", seconds(angle_loop, a, b, ra, rb, *zs)),
        ("fill_normal_quads (three loops)", seconds(passes_of(fill_normal_quads), lane_trajectory, lane_coordinate,
                                                   *zs)),
        ("the same in one loop", seconds(passes_of(one_loop_fill), lane_trajectory, lane_coordinate, *one)),
        ("8 products a lane, i.e. 2 a draw (Philox takes 5 a draw)", seconds(multiplies, u1, np.empty(LANES,
                                                                                                     np.uint64))),
    ]
    assert all(np.array_equal(x.view(np.uint32), y.view(np.uint32)) for x, y in zip(zs, one))
    for label, s in rows:
        print(f"{label:58s} {s * cycles:6.2f} cycles a draw")
    three, single = rows[5][1], rows[6][1]
    print(f"three loops: {DRAWS * PASSES * LANES / three / 1e9:.3f}e9 draws/s a core, one loop "
          f"{DRAWS * PASSES * LANES / single / 1e9:.3f}e9 ({single / three:.2f}x the time)")
    fresh = njit(error_model="numpy")(fill_normal_quads.py_func)
    fresh(np.uint64(1), np.uint64(0), lane_trajectory, lane_coordinate, np.uint64(0), *zs)
    for n_all, n_vector in vector_loops(fresh):
        print(f"fill_normal_quads vector loop: {n_all} instructions, {n_vector} on vector registers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
