"""What a different noise stream would cost: a measurement, not fastdecay's stream.

fastdecay's gradient noise is Box-Muller on Philox4x32-10 with 53-bit uniforms
(``fastdecay._cpu.philox``). This script times, on one core, the vectorised fast path of a
counter-based **ziggurat** on the same Philox words (NumPy's float64 ziggurat: 256 layers,
one 64-bit word a draw: 8 bits of layer, 1 of sign, 52 of magnitude; two draws a Philox
counter, as today), beside ``philox.fill_normal_pairs`` for the same number of draws:

- ``words``: Philox and the two 64-bit words a counter (the part both streams share);
- ``ziggurat fast path``: layer tables gathered, one multiply and one compare a draw; the
  ~1 % of draws outside their layer's rectangle are only counted here (a real stream would
  redraw them from further counters in a scalar pass, with an exponential or a logarithm:
  their cost is estimated from the rejection rate in the output, not measured).

    python bench/stream_prototype.py [--ghz 2.81] [--lanes 1024]

Cycles a draw are CPU seconds (``time.thread_time``, best of 7) times ``--ghz``.
"""

import math
import sys

import numpy as np
from numba import njit

from fastdecay._cpu.philox import _MASK, _S32, fill_normal_pairs, philox4x32_10
from philox_profile import PASSES, passes_of, seconds  # bench/ is on sys.path (the script's folder)
from philox_variants import lanes_and_clock


def ziggurat_tables(layers=256, r=3.6541528853610088, v=0.00492867323399):
    """(ki, wi) of Marsaglia and Tsang's ziggurat for the normal's right half, NumPy's float64
    constants' construction (52-bit magnitudes): a draw in layer i is accepted when its
    magnitude is below ki[i], and its value is magnitude * wi[i]."""
    m1 = 2.0**52
    ki = np.zeros(layers, np.uint64)
    wi = np.zeros(layers)
    dn = tn = r
    q = v / math.exp(-0.5 * dn * dn)
    ki[0] = np.uint64((dn / q) * m1)
    wi[0] = q / m1
    wi[layers - 1] = dn / m1
    for i in range(layers - 2, 0, -1):
        dn = math.sqrt(-2.0 * math.log(v / dn + math.exp(-0.5 * dn * dn)))
        ki[i + 1] = np.uint64((dn / tn) * m1)
        tn = dn
        wi[i] = dn / m1
    return ki, wi


@njit(error_model="numpy")
def words(passes, lane_trajectory, lane_coordinate, w0, w1):
    """Philox words as two 64-bit words a counter."""
    for p in range(passes):
        for j in range(w0.shape[0]):
            t = lane_trajectory[j]
            x0, x1, x2, x3 = philox4x32_10(t & _MASK, t >> _S32, np.uint64(p), lane_coordinate[j], np.uint64(1),
                                           np.uint64(0))
            w0[j] = (x0 << _S32) | x1
            w1[j] = (x2 << _S32) | x3


@njit(error_model="numpy")
def ziggurat_fast(passes, w, ki, wi, out):
    """The fast path on the words ``w``; returns the count of draws left for the slow path
    (their ``out`` is NaN)."""
    rejected = 0
    for _ in range(passes):
        rejected = 0
        for j in range(out.shape[0]):
            r = w[j]
            idx = r & np.uint64(0xFF)
            negative = (r >> np.uint64(8)) & np.uint64(1)
            rabs = (r >> np.uint64(9)) & np.uint64(0x000FFFFFFFFFFFFF)
            x = float(rabs) * wi[idx]
            x = -x if negative else x
            ok = rabs < ki[idx]
            out[j] = x if ok else np.nan
            rejected += 0 if ok else 1
    return rejected


def main(argv=None):
    args, lane_trajectory, lane_coordinate = lanes_and_clock(__doc__, argv)
    n = args.lanes
    per_draw = args.ghz * 1e9 / (PASSES * 2 * n)  # cycles a draw per CPU-second (two draws a lane)
    ki, wi = ziggurat_tables()
    w0, w1 = np.empty(n, np.uint64), np.empty(n, np.uint64)
    even, odd, out = np.empty(n), np.empty(n), np.empty(2 * n)
    both = np.empty(2 * n, np.uint64)
    words(1, lane_trajectory, lane_coordinate, w0, w1)
    both[:n], both[n:] = w0, w1
    rejected = ziggurat_fast(1, both, ki, wi, out)
    accepted = out[~np.isnan(out)]
    for _ in range(3):
        box_muller = seconds(passes_of(fill_normal_pairs), lane_trajectory, lane_coordinate, even, odd) * per_draw
        shared = seconds(words, lane_trajectory, lane_coordinate, w0, w1) * per_draw
        fast = seconds(ziggurat_fast, both, ki, wi, out) * per_draw
        print(f"Box-Muller (fastdecay's stream) {box_muller:.2f} cycles a draw; Philox words {shared:.2f} + "
              f"ziggurat fast path {fast:.2f} = {shared + fast:.2f} ({box_muller / (shared + fast):.2f}x)")
    print(f"left for the slow path: {rejected} of {2 * n} draws ({rejected / (2 * n):.2%}); accepted draws: "
          f"mean {accepted.mean():+.3f}, sd {accepted.std():.3f} (the rectangles alone, not yet normal)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
