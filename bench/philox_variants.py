"""Two rearrangements of the noise generator's loops that keep its bits, timed against
``philox.fill_normal_pairs`` on one core (neither is used: see bench/RESULTS.md, "The
kernels on AVX2 hardware").

    python bench/philox_variants.py [--ghz 2.81] [--lanes 1024]

- ``jammed``: the Philox loop and the angle loop take two lanes an iteration, one from
  each half of the tile (two independent chains of vector operations in flight);
- ``radius split``: the radius loop as ``-2 ln u1`` in one loop and the square root in
  another (a shorter chain of dependent operations a loop).

Cycles a pair of draws are CPU seconds (``time.thread_time``, best of 7, 4,000 passes) times
``--ghz``; every variant's draws are compared with ``fill_normal_pairs``'s bit for bit.
"""

import argparse
import math
import sys

import numpy as np
from numba import njit

from fastdecay._cpu.philox import (_MASK, _S32, _bits, _exact_float, _radius, _uniform_integers,
                                   fill_normal_pairs, log_unit, philox4x32_10, sincos_two_pi)
from fastdecay._cpu.simulate import noise_lanes
from philox_profile import PASSES, passes_of, seconds  # bench/ is on sys.path (the script's folder)


@njit(error_model="numpy", inline="always")
def _integers(first_trajectory, lane_trajectory, lane_coordinate, pair, j, k0, k1):
    trajectory = first_trajectory + lane_trajectory[j]
    x0, x1, x2, x3 = philox4x32_10(trajectory & _MASK, trajectory >> _S32, pair, lane_coordinate[j], k0, k1)
    return _uniform_integers(x0, x1, x2, x3)


@njit(error_model="numpy")
def fill_jammed(seed, first_trajectory, lane_trajectory, lane_coordinate, pair, even, odd):
    """``fill_normal_pairs`` with lanes j and j + n // 2 in one iteration of loops 1 and 3."""
    k0 = seed & _MASK
    k1 = seed >> _S32
    n = even.shape[0]
    h = n // 2
    odd_bits = odd.view(np.uint64)
    for j in range(h):
        k, u = _integers(first_trajectory, lane_trajectory, lane_coordinate, pair, j, k0, k1)
        k2, u2 = _integers(first_trajectory, lane_trajectory, lane_coordinate, pair, j + h, k0, k1)
        even[j], odd_bits[j] = _exact_float(k), u
        even[j + h], odd_bits[j + h] = _exact_float(k2), u2
    for j in range(2 * h, n):
        k, u = _integers(first_trajectory, lane_trajectory, lane_coordinate, pair, j, k0, k1)
        even[j], odd_bits[j] = _exact_float(k), u
    for j in range(n):
        even[j] = _radius(even[j])
    for j in range(h):
        c, s = sincos_two_pi(odd_bits[j])
        c2, s2 = sincos_two_pi(odd_bits[j + h])
        r, r2 = even[j], even[j + h]
        even[j], odd_bits[j] = r * c, _bits(r * s)
        even[j + h], odd_bits[j + h] = r2 * c2, _bits(r2 * s2)
    for j in range(2 * h, n):
        c, s = sincos_two_pi(odd_bits[j])
        r = even[j]
        even[j], odd_bits[j] = r * c, _bits(r * s)


@njit(error_model="numpy")
def radius_one_loop(passes, ks, out):
    for _ in range(passes):
        for j in range(out.shape[0]):
            out[j] = _radius(ks[j])


@njit(error_model="numpy")
def radius_split(passes, ks, out):
    for _ in range(passes):
        for j in range(out.shape[0]):
            out[j] = -2.0 * log_unit(ks[j])
        for j in range(out.shape[0]):
            out[j] = math.sqrt(out[j])


def cycles(fn, args, per, ghz):
    """Best of 7 runs of ``fn(PASSES, *args)`` (``philox_profile.seconds``), in cycles per ``per`` items."""
    return seconds(fn, *args) * ghz * 1e9 / (PASSES * per)


def lanes_and_clock(doc, argv):
    """(args, lane_trajectory, lane_coordinate) for a script timing ``args.lanes`` lanes of
    one-coordinate noise at ``args.ghz`` (the options of this script and of stream_prototype.py)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--ghz", type=float, default=2.81)
    parser.add_argument("--lanes", type=int, default=1024)
    args = parser.parse_args(argv)
    lane_trajectory, lane_coordinate = (x[:args.lanes] for x in noise_lanes(1))
    return args, lane_trajectory, lane_coordinate


def main(argv=None):
    args, lane_trajectory, lane_coordinate = lanes_and_clock(__doc__, argv)
    n = args.lanes
    even, odd, even_j, odd_j = (np.empty(n) for _ in range(4))
    ks = np.random.default_rng(0).integers(1, 2**53, n).astype(np.float64)
    r1, r2 = np.empty(n), np.empty(n)
    for _ in range(3):
        base = cycles(passes_of(fill_normal_pairs), (lane_trajectory, lane_coordinate, even, odd), n, args.ghz)
        jam = cycles(passes_of(fill_jammed), (lane_trajectory, lane_coordinate, even_j, odd_j), n, args.ghz)
        one = cycles(radius_one_loop, (ks, r1), n, args.ghz)
        split = cycles(radius_split, (ks, r2), n, args.ghz)
        assert np.array_equal(even.view(np.uint64), even_j.view(np.uint64))
        assert np.array_equal(odd.view(np.uint64), odd_j.view(np.uint64))
        assert np.array_equal(r1.view(np.uint64), r2.view(np.uint64))
        print(f"fill_normal_pairs {base:.2f}, jammed {jam:.2f} cycles a pair ({base / jam:.3f}x); "
              f"radius loop {one:.2f}, split {split:.2f} ({one / split:.3f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
