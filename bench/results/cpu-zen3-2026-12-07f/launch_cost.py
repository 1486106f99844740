import time, threading, concurrent.futures as cf, numpy as np, numba
from numba import njit
@njit(nogil=True)
def part(a, lo, hi):
    for i in range(lo, hi):
        a[i] += 1.0
a = np.zeros(2); part(a, 0, 1)
pool = cf.ThreadPoolExecutor(1)
def threads(a):
    f = pool.submit(part, a, 1, 2); part(a, 0, 1); f.result()

class Worker:
    def __init__(self):
        self.go = threading.Lock(); self.go.acquire()
        self.done = threading.Lock(); self.done.acquire()
        self.task = None
        threading.Thread(target=self.loop, daemon=True).start()
    def loop(self):
        while True:
            self.go.acquire()
            fn, args = self.task
            try: fn(*args)
            finally: self.done.release()
    def submit(self, fn, *args):
        self.task = (fn, args); self.go.release()
    def wait(self):
        self.done.acquire()
w = Worker()
def locks(a):
    w.submit(part, a, 1, 2); part(a, 0, 1); w.wait()
def report(rows):
    """2,000 launches a round, best and median of 5 rounds, each row."""
    for name, fn in rows:
        best = []
        for r in range(5):
            t = time.perf_counter()
            for _ in range(2000): fn(a)
            best.append((time.perf_counter() - t) / 2000 * 1e6)
        print(f"{name:42s} {min(best):6.1f} us (median {sorted(best)[2]:.1f})")
report((("ThreadPoolExecutor", threads), ("lock handoff", locks), ("one call", lambda a: part(a, 0, 2))))

class WorkerE:
    def __init__(self):
        self.go = threading.Lock(); self.go.acquire()
        self.done = threading.Event()
        self.task = None
        threading.Thread(target=self.loop, daemon=True).start()
    def loop(self):
        while True:
            self.go.acquire()
            fn, args = self.task
            try: fn(*args)
            finally: self.done.set()
    def submit(self, fn, *args):
        self.task = (fn, args); self.done.clear(); self.go.release()
    def wait(self):
        self.done.wait()
we = WorkerE()
def event(a):
    we.submit(part, a, 1, 2); part(a, 0, 1); we.wait()
report((("lock + event", event), ("lock handoff", locks), ("ThreadPoolExecutor", threads)))
