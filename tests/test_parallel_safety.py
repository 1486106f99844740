"""Numba's parallel kernels under the process and thread models users bring: forked
worker processes, several Python threads under the ``workqueue`` layer, and Ctrl-C
between setting and restoring a call's thread count (``fastdecay._cpu.parallel``)."""

import multiprocessing
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

import fastdecay as fd
from fastdecay._cpu import parallel


def _child(queue):
    queue.put(fd.cosine(0.1, 100)(1))  # one schedule at one step: a serial kernel, no thread pool
    try:
        queue.put(("ok", float(fd.cosine(0.1, 100).table(3)[1])))  # a parallel kernel
    except Exception as exc:  # noqa: BLE001 (reported to the parent)
        queue.put((type(exc).__name__, str(exc)))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_process_forked_after_the_kernels_ran_gets_a_named_error_or_works():
    """GNU OpenMP kills a forked child at its first parallel region; fastdecay's parallel
    kernels in such a child raise a RuntimeError naming the way out instead (on a fork-safe
    layer they run), while a scalar schedule at one step (a serial kernel) runs either way.
    The child lives to report."""
    fd.cosine(0.1, 100).table(5000)  # a parallel kernel in this process
    layer = numba.threading_layer()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue,))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0, f"the forked child died (exit code {child.exitcode}) under the {layer!r} layer"
    assert queue.get(timeout=5) == fd.cosine(0.1, 100)(1)
    kind, value = queue.get(timeout=5)
    if layer == "omp" and sys.platform.startswith("linux"):
        assert kind == "RuntimeError" and "'spawn' or 'forkserver'" in value
    else:
        assert kind == "ok" and value == pytest.approx(float(fd.cosine(0.1, 100)(1)))


def test_spawned_workers_run_the_kernels():
    from concurrent.futures import ProcessPoolExecutor

    fd.cosine(0.1, 100).table(5000)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        got = pool.submit(fd.simulate, np.ones((3, 1)), 0.1, steps=5).result(timeout=300)
    np.testing.assert_array_equal(got.w, fd.simulate(np.ones((3, 1)), 0.1, steps=5).w)


def test_an_interrupted_restore_of_the_thread_count_is_made_at_the_next_call(monkeypatch):
    """Ctrl-C inside a small call's restore of the caller's thread count left Numba on one
    thread for good; the next launch now restores it first, and launches nested in a call
    that is still running keep that call's count."""
    threads = numba.get_num_threads()
    if threads < 2:
        pytest.skip("needs two Numba threads")
    real = parallel._set_count  # (numba.set_num_threads, or the C function behind it once the pool started)
    calls, seen = [], []

    def interrupted_restore(n):
        calls.append(n)
        if len(calls) == 2:  # run_on's restore: the interrupt lands before it sets anything
            raise KeyboardInterrupt
        real(n)

    monkeypatch.setattr(parallel, "_set_count", interrupted_restore)
    with pytest.raises(KeyboardInterrupt):
        parallel.run_on(1, lambda: seen.append(numba.get_num_threads()))
    monkeypatch.setattr(parallel, "_set_count", real)
    try:
        assert seen == [1] and numba.get_num_threads() == 1 and len(parallel._interrupted.stack) == 1
        s = fd.cosine(0.1, 100)
        s(np.arange(3))  # a small call: one thread inside it, the caller's count restored before it
        assert numba.get_num_threads() == threads and not parallel._interrupted.stack
        # nested launches keep the count of a run_on still running
        inside = []
        parallel.run_on(1, lambda: (s.table(10), inside.append(numba.get_num_threads())))
        assert inside == [1] and numba.get_num_threads() == threads and not parallel._interrupted.stack
    finally:
        real(threads)
        parallel._interrupted.stack = []


def test_threads_launching_every_kind_of_kernel_under_workqueue_take_turns():
    """Under Numba's workqueue layer (not thread-safe) schedules, tables, simulations,
    expected dynamics and fused updates launched from four threads at once run, with the
    results of serial calls."""
    code = textwrap.dedent("""
        import threading, numba, numpy as np, fastdecay as fd
        s = fd.cosine(0.1, 1000)
        lam = np.linspace(0.1, 1, 3000)[:, None]
        def work(k, out):
            w = np.ones(5000); m = np.zeros(5000); v = np.zeros(5000)
            for t in range(30):
                fd.adamw_step(w, np.full(5000, 0.01), m, v, step=t, lr=s)
            out[k] = (s(k), s.table(3000).sum(), fd.simulate(lam, s, steps=50).w.sum(),
                      fd.expected_loss(lam[:, 0], s, steps=50).final_loss, w.sum())
        serial = {}
        work(0, serial)
        out = {}
        threads = [threading.Thread(target=work, args=(k, out)) for k in range(4)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert numba.threading_layer() == "workqueue", numba.threading_layer()
        assert all(out[k][1:] == serial[0][1:] for k in range(4)), (out, serial)
        print("ok")
    """)
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
