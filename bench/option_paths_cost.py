"""ns an element of the fused updates under every precision option: compensation, a gradient
scale that is not a power of two (3.0), AMSGrad, for float32, float64 and bfloat16 parameters
(bfloat16 with float32 state), AdamW / SGD with momentum / Lion, 1e6 elements, NumPy arrays,
both threads, median of 30 calls after two warm-up calls (the first compiles). What a rarely
taken option costs next to the plain step. Run it once per source tree to compare trees:

    PYTHONPATH=$PWD python bench/option_paths_cost.py [filter ...]

(``filter``: substrings of the row labels, e.g. ``"fp32 comp=1"``.)
"""

import sys
import time

import ml_dtypes
import numpy as np

import fastdecay as fd

N = 1_000_000
DTYPES = {"fp32": (np.float32, np.float32), "fp64": (np.float64, np.float64), "bf16": (ml_dtypes.bfloat16, np.float32)}


def median_ns_per_element(call, reps=30):
    call(0)
    call(1)
    times = []
    for r in range(reps):
        t0 = time.perf_counter()
        call(r + 2)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) / N * 1e9


def main(filters):
    rng = np.random.default_rng(0)
    for name, (dtype, state) in DTYPES.items():
        for compensated in (False, True):
            for scale in (None, 3.0):
                for amsgrad in (False, True):
                    label = f"{name} comp={int(compensated)} scale={scale} amsgrad={int(amsgrad)}"
                    if filters and not any(f in label for f in filters):
                        continue
                    p = rng.standard_normal(N).astype(dtype)
                    g = (rng.standard_normal(N) * 1e-2).astype(dtype)
                    m, v, vmax = (np.zeros(N, state) for _ in range(3))
                    kw = dict(compensated=compensated, grad_scale=scale,
                              compensation_buffer=np.zeros(N, dtype) if compensated else None)
                    adamw = median_ns_per_element(lambda t: fd.adamw_step(
                        p, g, m, v, step=t, lr=1e-3, amsgrad=amsgrad, max_exp_avg_sq=vmax if amsgrad else None,
                        **kw))
                    row = f"{label:36s} adamw {adamw:6.3f}"
                    if not amsgrad:
                        sgd = median_ns_per_element(lambda t: fd.sgd_step(p, g, step=t, lr=1e-3, momentum=0.9,
                                                                          momentum_buffer=m, **kw))
                        lion = median_ns_per_element(lambda t: fd.lion_step(p, g, m, step=t, lr=1e-4, **kw))
                        row += f"  sgd {sgd:6.3f}  lion {lion:6.3f}"
                    print(row, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
