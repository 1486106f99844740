"""The fused AdamW's cost an element on one thread, in cache and streaming, for one source tree
(run it once per tree, alternating: ``PYTHONPATH=<tree> python element_cost_ab.py <label>``).

In cache: the slope between 8,192 and 73,728 elements (the per-call cost cancels); streaming:
one call on 4e6 elements. Storage: float32; bfloat16 parameters and state (the pair loops);
bfloat16 and float16 parameters with float32 state (the element loops). torch tensors through
``fd.adamw_step`` at step 5; best of 9 rounds a size. With ``--torch`` torch's fused AdamW
(``torch._fused_adamw_``, float32) is timed the same way beside it."""

import sys
import time

import numba
import torch

import fastdecay as fd


def best_seconds(call, reps):
    call()
    best = float("inf")
    for _ in range(9):
        t0 = time.perf_counter()
        for _ in range(reps):
            call()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def seconds(n, param_dtype, state_dtype, torch_fused):
    p, g = torch.randn(n).to(param_dtype), (torch.randn(n) * 1e-3).to(param_dtype)
    m, v = torch.zeros(n, dtype=state_dtype), torch.zeros(n, dtype=state_dtype)
    reps = max(5, 4_000_000 // n)
    if torch_fused:
        lists = [p.float()], [g.float()], [m.float()], [v.float()], [], [torch.tensor(5.0)]
        return best_seconds(lambda: torch._fused_adamw_(*lists, lr=1e-3, beta1=0.9, beta2=0.999, weight_decay=0.01,
                                                         eps=1e-8, amsgrad=False, maximize=False), reps)
    chosen = "bfloat16" if state_dtype == torch.bfloat16 else None
    return best_seconds(lambda: fd.adamw_step(p, g, m, v, lr=1e-3, step=5, state_dtype=chosen), reps)


def main():
    numba.set_num_threads(1)
    torch.set_num_threads(1)
    label, torch_fused = sys.argv[1], "--torch" in sys.argv
    out = []
    for param, state in ((torch.float32, torch.float32), (torch.bfloat16, torch.bfloat16),
                         (torch.bfloat16, torch.float32), (torch.float16, torch.float32)):
        small, large, stream = (seconds(n, param, state, torch_fused) for n in (8192, 73_728, 4_000_000))
        out.append(f"{str(param)[6:]}/{str(state)[6:]} cache {(large - small) / 65_536 * 1e9:.3f} "
                   f"stream {stream / 4e6 * 1e9:.3f}")
        if torch_fused:
            break
    print(label, " | ".join(out), "ns/element")


if __name__ == "__main__":
    main()
