import time, numpy as np
t0 = time.perf_counter()
import fastdecay as fd
t1 = time.perf_counter()
g = fd.stack([fd.step(0.1, 0.5, 3), fd.cosine(0.1, 8)])
fd.simulate(np.ones((64, 2, 1)), g, steps=4)
t2 = time.perf_counter()
fd.simulate(np.ones((64, 2, 1)), g, steps=4, noise=0.1, optimizer="momentum")  # not in order: lanes (rates kernel)
t3 = time.perf_counter()
fd.simulate(np.ones((2, 64, 1)), g[:, None], steps=4, noise=0.1)  # in order: grouped, noisy
t4 = time.perf_counter()
print(f"import {t1-t0:.1f} s, first grouped {t2-t1:.1f} s, noisy lanes (rates kernel) {t3-t2:.1f} s, noisy grouped {t4-t3:.1f} s")
