"""N processes on the machine's cores, each running the same fastdecay work at once (small
simulations and AdamW steps: many parallel launches); prints each process's wall time.
OMP_WAIT_POLICY and NUMBA_NUM_THREADS are the caller's.
    PYTHONPATH=<tree> python two_procs.py 2"""
import os, subprocess, sys, time
WORK = r'''
import time, numpy as np, fastdecay as fd
lam = np.linspace(0.1, 1.0, 20000)[:, None]
s = fd.exponential(0.1, gamma=0.99)
w, g, m, v = (np.zeros(200_000, np.float32) for _ in range(4))
fd.simulate(lam, s, steps=10, optimizer="momentum"); fd.adamw_step(w, g, m, v, step=0, lr=s)
t = time.perf_counter()
for k in range(200):
    fd.simulate(lam, s, steps=50, optimizer="momentum")      # small runs: many parallel launches
    for j in range(10):
        fd.adamw_step(w, g, m, v, step=j, lr=s)
print(f"{time.perf_counter() - t:.2f}")
'''
if __name__ == "__main__":
    n = int(sys.argv[1])
    procs = [subprocess.Popen([sys.executable, "-c", WORK], stdout=subprocess.PIPE, text=True) for _ in range(n)]
    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}",
          f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', '(unset)')}", n, "processes:", [p.communicate()[0].strip() for p in procs])
