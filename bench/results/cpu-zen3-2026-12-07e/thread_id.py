import threading, numba, numpy as np
from numba import njit, prange
@njit(nogil=True)
def tid():
    return numba.get_thread_id()
@njit(parallel=True)
def warm(a):
    for i in prange(a.shape[0]):
        a[i] = numba.get_thread_id()
a = np.zeros(64); warm(a); print("layer", numba.threading_layer(), "pool ids", sorted(set(a.astype(int))))
out = {}
def run(k): out[k] = tid()
ts = [threading.Thread(target=run, args=(k,)) for k in range(3)]
[t.start() for t in ts]; [t.join() for t in ts]
print("python threads:", out, "main:", tid())
