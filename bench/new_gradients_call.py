"""What one ``fd.adamw_step`` call costs when every gradient is a new tensor, as each backward
makes them: 28, 200 and 2,000 float32 tensors of 256, one thread, the launch plan reused,
two gradient sets alternating; best of 7 rounds of 100 calls (the kernel included).

    PYTHONPATH=<tree> python bench/new_gradients_call.py
"""

import time

import numba
import torch

import fastdecay as fd


def main():
    numba.set_num_threads(1)
    torch.set_num_threads(1)
    for n in (28, 200, 2000):
        params = [torch.randn(256) for _ in range(n)]
        exp_avg, exp_avg_sq = [torch.zeros(256) for _ in range(n)], [torch.zeros(256) for _ in range(n)]
        grads = [[torch.randn(256) for _ in range(n)] for _ in range(2)]
        for k in range(3):
            fd.adamw_step(params, grads[k % 2], exp_avg, exp_avg_sq, step=1, lr=1e-3)
        best = float("inf")
        for _ in range(7):
            t0 = time.perf_counter()
            for k in range(100):
                fd.adamw_step(params, grads[k % 2], exp_avg, exp_avg_sq, step=1, lr=1e-3)
            best = min(best, (time.perf_counter() - t0) / 100)
        print(f"{n} tensors, new gradients each call: {best * 1e6:.1f} us ({best * 1e6 / n:.2f} us a tensor)")


if __name__ == "__main__":
    main()
