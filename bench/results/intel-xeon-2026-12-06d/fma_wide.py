"""The roofline's FMA loop shape (bench/simulate_roofline.py: four GD steps a pass over a 512-element
tile in L1) compiled as LLVM chooses and with ``intrinsics.prefer_wide_vectors`` (512-bit vectors),
one core, best of 5 by CPU time, three rounds: what the noiseless simulation kernels could gain
on an Intel core with two 512-bit FMA units.

    PYTHONPATH=$PWD python bench/results/intel-xeon-2026-12-06d/fma_wide.py
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench/: the roofline's own loop
from simulate_roofline import best_thread_time, fma_loop_of  # noqa: E402

tile = np.random.default_rng(0).uniform(0.01, 1.0, 512)
etas = np.full(200, 1e-9)
rounds = 2000
for _ in range(3):
    for wide in (False, True):
        loop = fma_loop_of(wide)
        seconds = best_thread_time(lambda: loop(np.ones(512), tile, etas, rounds), 5)
        print("wide" if wide else "default", "%.2f G element-steps/s" % (512 * rounds * 200 / seconds / 1e9))
