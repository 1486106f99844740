"""The fused AdamW's cost per element on one thread: in cache and streaming from memory.

In cache: the slope between two sizes that fit in L2 (36,864 and 4,096 elements a tensor,
so the per-call cost cancels); streaming: one call on 8e6 elements. Storage combinations
float32, bfloat16 parameters with bfloat16 state, bfloat16 parameters with float32 state;
torch tensors through ``fd.adamw_step`` (step 5, no gradient scale). Run it once per source
tree to compare trees (``PYTHONPATH=<tree>``); best of 7 rounds a size.

    PYTHONPATH=$PWD python bench/fused_element_cost.py
"""

import time

import numba
import torch

import fastdecay as fd

SMALL, LARGE, STREAM = 4096, 36_864, 8_000_000


def best_call_seconds(param_dtype, state_dtype, n):
    p = torch.randn(n).to(param_dtype)
    g = (torch.randn(n) * 1e-3).to(param_dtype)
    m, v = torch.zeros(n, dtype=state_dtype), torch.zeros(n, dtype=state_dtype)
    chosen = "bfloat16" if state_dtype == torch.bfloat16 else None

    def call():
        fd.adamw_step(p, g, m, v, lr=1e-3, step=5, state_dtype=chosen)

    call()
    reps = max(3, 3_000_000 // n)
    best = float("inf")
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(reps):
            call()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def main():
    numba.set_num_threads(1)
    torch.set_num_threads(1)
    for name, param, state in (("float32", torch.float32, torch.float32),
                               ("bf16 params, bf16 state", torch.bfloat16, torch.bfloat16),
                               ("bf16 params, fp32 state", torch.bfloat16, torch.float32)):
        small, large, stream = (best_call_seconds(param, state, n) for n in (SMALL, LARGE, STREAM))
        print(f"{name:26s} in cache {(large - small) / (LARGE - SMALL) * 1e9:.3f} ns/element, "
              f"streaming {stream / STREAM * 1e9:.3f} ns/element")


if __name__ == "__main__":
    main()
