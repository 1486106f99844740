"""The bfloat16 pair loops' cost an element on one thread (parameters and state bfloat16:
``state_dtype="bfloat16"``), in cache and streaming, for one source tree (run it once per tree,
alternating: ``PYTHONPATH=<tree> python pair_cost_ab.py <label>``): AdamW (weight decay 0.01),
SGD (momentum 0.9, weight decay 0.01) and Lion through ``fd.*_step`` at step 5. In cache: the
slope between 8,192 and 73,728 elements; streaming: one call on 4e6 elements; best of 9 rounds."""

import sys

import numba
import torch
from element_cost_ab import best_seconds  # (this script's directory: the same timing)

import fastdecay as fd


def seconds(rule, n):
    p, g = torch.randn(n).bfloat16(), (torch.randn(n) * 1e-3).bfloat16()
    m, v = torch.zeros(n, dtype=torch.bfloat16), torch.zeros(n, dtype=torch.bfloat16)
    bf16 = "bfloat16"
    calls = {"adamw": lambda: fd.adamw_step(p, g, m, v, lr=1e-3, step=5, weight_decay=0.01, state_dtype=bf16),
             "sgd": lambda: fd.sgd_step(p, g, momentum_buffer=m, lr=1e-3, step=5, momentum=0.9, weight_decay=0.01,
                                        state_dtype=bf16),
             "lion": lambda: fd.lion_step(p, g, m, lr=1e-4, step=5, weight_decay=0.01, state_dtype=bf16)}
    return best_seconds(calls[rule], max(5, 4_000_000 // n))


def main():
    numba.set_num_threads(1)
    torch.set_num_threads(1)
    out = []
    for rule in ("adamw", "sgd", "lion"):
        small, large, stream = (seconds(rule, n) for n in (8192, 73_728, 4_000_000))
        out.append(f"{rule} cache {(large - small) / 65_536 * 1e9:.3f} stream {stream / 4e6 * 1e9:.3f}")
    print(sys.argv[1], " | ".join(out), "ns/element")


if __name__ == "__main__":
    main()
