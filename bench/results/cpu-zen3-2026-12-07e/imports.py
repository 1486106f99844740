import time, sys
t = time.perf_counter()
import numpy, numba, torch, jax, jax.numpy, hypothesis, matplotlib.pyplot, dask, distributed, pytest, xdist, ml_dtypes
import fastdecay, fastdecay.torch
print(f"{time.perf_counter()-t:.2f}")
