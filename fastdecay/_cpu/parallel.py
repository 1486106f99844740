"""Launching Numba's parallel kernels from Python: what every launch needs, in one place.

- Numba's ``workqueue`` threading layer (its fallback where neither OpenMP nor TBB is
  found) is not thread-safe: a second launch from another Python thread aborts the
  process. Under it, launches take turns (one lock); under ``omp`` and ``tbb`` they run
  at once.
- GNU OpenMP (the ``omp`` layer on Linux) cannot run in a process forked after it
  started: libgomp kills such a child at its first parallel region. A forked child
  gets a RuntimeError naming the way out instead (start workers with ``spawn`` or
  ``forkserver``, or use a fork-safe layer).
- A call that runs on fewer threads than the caller's count (small work, a ``threads=``
  option) sets Numba's per-thread count and restores it after; where an interrupt
  (Ctrl-C) lands between the two, the next launch restores it first. Once the pool has
  started, the count is read and set through Numba's own C functions (``thread_count``),
  not its public ones, which repeat their checks on every call (~0.6 us each, up to four
  a small optimizer step).

Kernels wrapped by ``entry`` are called as before (``kernel(*args)``) and keep their
dispatcher's attributes.
"""

import os
import sys
import threading

import numba

_LOCK = threading.Lock()
_serialize = None  # unknown until the first launch tells which threading layer Numba chose
_forked_after_omp = False
_interrupted = threading.local()  # .stack: [(the caller's thread count, the frame of the run_on that set another)]

FORK_MESSAGE = (
    "this process was forked after fastdecay's kernels ran on GNU OpenMP (Numba's 'omp' threading layer), which "
    "cannot run in a forked child (it would be killed): start worker processes with the 'spawn' or 'forkserver' "
    "method (multiprocessing.get_context('spawn'), ProcessPoolExecutor(mp_context=...), "
    "DataLoader(multiprocessing_context='spawn')), or use a fork-safe threading layer (pip install tbb, or "
    "NUMBA_THREADING_LAYER=workqueue)"
)


_get_count = numba.get_num_threads  # Numba's C functions once its pool has started (_use_raw_counts)
_set_count = numba.set_num_threads


def _use_raw_counts():
    """Read and set the calling thread's count through the C functions behind Numba's public
    ``get_num_threads`` / ``set_num_threads``, once its pool has started (the first launch):
    what the public ones check on every call (the pool started, an int from 1 to
    NUMBA_NUM_THREADS) holds here, since the counts set are 1, counts Numba returned, or a
    ``threads=`` option checked against NUMBA_NUM_THREADS by the caller. Numba versions
    without those names keep the public functions."""
    global _get_count, _set_count
    from numba.np.ufunc import parallel as pool

    get, set_ = getattr(pool, "_get_num_threads", None), getattr(pool, "_set_num_threads", None)
    if getattr(pool, "_is_initialized", False) and callable(get) and callable(set_):
        _get_count, _set_count = get, set_


def thread_count():
    """The calling thread's Numba thread count (``numba.get_num_threads()``)."""
    return _get_count()


def _after_fork_in_child():
    global _LOCK, _forked_after_omp
    _LOCK = threading.Lock()  # (a lock another thread held at the fork stays held in the child)
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel ran before the fork: the child starts its own pool
        return
    _forked_after_omp = layer == "omp" and sys.platform.startswith("linux")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _restore_interrupted():
    """Restore the counts that calls interrupted in their restore left set: an entry whose
    ``_run_on`` frame is no longer running (one still running is a caller of this launch:
    its count stays until it returns)."""
    stack = getattr(_interrupted, "stack", None)
    if not stack:
        return
    running = set()
    frame = sys._getframe(1)
    while frame is not None:
        running.add(id(frame))
        frame = frame.f_back
    while stack and id(stack[-1][1]) not in running:
        _set_count(stack[-1][0])  # (set, then forget: an interrupt here leaves the entry)
        stack.pop()


def run_on(n, fn, *args):
    """``fn(*args)`` on ``n`` Numba threads, the caller's count restored after."""
    _restore_interrupted()
    before = _get_count()
    if n == before:
        return fn(*args)
    return _run_on(n, before, fn, args)


def run_small(fn, work, *args, below):
    """``fn(*args)`` (a parallel kernel) on the calling thread alone where ``work`` (elements
    to write, or element-steps) is below ``below``: waking the thread pool costs more than
    such work (milliseconds on a busy machine), and a second, serial compile would cost more
    at first use. Larger work uses every Numba thread."""
    if work >= below:
        return fn(*args)
    return run_on(1, fn, *args)


def _run_on(n, before, fn, args):
    stack = getattr(_interrupted, "stack", None)
    if stack is None:
        stack = _interrupted.stack = []
    depth = len(stack)
    stack.append((before, sys._getframe()))
    try:
        _set_count(n)
        return fn(*args)
    finally:
        _set_count(before)
        del stack[depth:]  # this call's entry (and any a nested call left behind)


def launch(kernel, args, n_threads=None):
    """``kernel(*args)`` for a parallel Numba dispatcher, on ``n_threads`` threads (default:
    the caller's count), taking turns with other Python threads under ``workqueue``; what the
    kernel returns."""
    if _forked_after_omp:
        raise RuntimeError(FORK_MESSAGE)
    _restore_interrupted()
    if n_threads is not None:
        before = _get_count()
        if n_threads != before:
            return _run_on(n_threads, before, _launch, (kernel, args))
    return _launch(kernel, args)


def _launch(kernel, args):
    global _serialize
    if _serialize is False:
        return kernel(*args)
    with _LOCK:
        result = kernel(*args)
        if _serialize is None:
            _serialize = numba.threading_layer() == "workqueue"
            _use_raw_counts()
        return result


class Kernel:
    """A parallel Numba dispatcher called through ``launch``; its attributes are the dispatcher's."""

    __slots__ = ("dispatcher",)

    def __init__(self, dispatcher):
        self.dispatcher = dispatcher

    def __call__(self, *args):
        return launch(self.dispatcher, args)

    def __getattr__(self, name):
        return getattr(self.dispatcher, name)


def entry(dispatcher):
    """``dispatcher`` (``njit(..., parallel=True)``) as a kernel called from Python through ``launch``."""
    return Kernel(dispatcher)
