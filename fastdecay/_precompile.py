"""``fastdecay compile``: fill the kernel caches ahead of the first real call.

Numba compiles each CPU kernel the first time it runs and keeps the machine
code on disk (``cache=True``), so a fresh install pays seconds to tens of
seconds on its first schedule table, update or simulation. This runs the
public calls that reach every kernel signature (the fused updates' 16-bit
storage kernels through the launcher those calls use: NumPy has no bfloat16
without ml_dtypes), one family of kernels per worker process (the families
compile in parallel), so an image build or a job's set-up step can pay that once. ``gpu=True`` also compiles the CUDA
kernels for the current device into fastdecay's cubin cache.

Numba's cache lives beside the installed package (``__pycache__``) unless
``NUMBA_CACHE_DIR`` says otherwise: the user who runs this must be able to
write there, and the processes that use the kernels must see the same place.
"""

import concurrent.futures
import multiprocessing
import os
import time

import numpy as np


def _schedules():
    import fastdecay as fd

    s = fd.stack([fd.step(0.1, 0.5, 3), fd.cosine(0.1, 9), fd.warmup(fd.exponential(0.1, gamma=0.9), 2)])
    for dtype in (np.float64, np.float32):
        s.table(5, dtype=dtype)
        s.table(np.array([4, 1]), dtype=dtype)
    s(np.arange(3)[:, None])
    s(2)
    fd.cosine(0.1, 9)(2)  # one schedule at one step (rate_at)
    fd.stability_onset(s, np.array([1.0, 5.0])[:, None], max_steps=10)
    fd.escape_probability(s, 1.0, 0.5, 10)
    fd.adam_effective_step(s, 10)
    fd.discretization_divergence(fd.step(0.1, 0.5, 3), np.array([1.0, 5.0]), 10)
    fd.constant_shrinkage(fd.cosine(0.1, 10), 0.01, total_steps=10)


def _updates():
    import fastdecay as fd
    from ._rules import FUSED

    # two kernels per fused update and storage dtype, the plain and the general one (a
    # compensation buffer, a gradient scale to divide by); the options are run-time arguments
    lr = fd.cosine(0.1, 10)
    for dtype in (np.float64, np.float32):
        w, g = ([np.ones(9, dtype), np.ones(3, dtype)] for _ in range(2))
        for fused in FUSED.values():
            update = getattr(fd, fused.function)
            state = {key: [np.zeros(9, dtype), np.zeros(3, dtype)] for key in fused.state_keys
                     if key not in fused.optional}
            update(w, g, **state, step=0, lr=lr, weight_decay=lr, **fused.example)
            one = {key: value[0] for key, value in state.items()}
            update(w[0], g[0], **one, step=1, lr=0.1, grad_scale=2.0, **fused.example)
            update(w[0], g[0], **one, step=2, lr=0.1, grad_scale=3.0, compensated=True,
                   compensation_buffer=np.zeros(9, dtype), **fused.example)


def _updates_16bit(param):
    """The fused updates' kernels for 16-bit storage with ``param`` parameters: float32 or bfloat16
    state, each rule, plain and general (bfloat16 parameters also: float32 parameters with
    bfloat16 state). Compiled as a launch asks for them (``_cpu.updates.kernel``): a NumPy call
    cannot make every one of these (bfloat16 arrays need ml_dtypes or torch)."""
    from ._cpu import updates as kernels
    from ._rules import FUSED
    from ._update_plan import STATE_DTYPES

    combinations = [(param, state) for state in STATE_DTYPES]
    if param == "bfloat16":
        combinations.append(("float32", "bfloat16"))
    for name in FUSED:
        for param_dtype, state in combinations:
            for general in (False, True):
                kernels.kernel(name, param_dtype, state, general)


def _simulate(dtype):
    import fastdecay as fd
    from ._rules import NAMES

    lam = np.ones((2, 3))
    shared, per_trajectory = fd.step(0.1, 0.5, 3), fd.stack([fd.constant(0.1), fd.exponential(0.1, gamma=0.9)])
    # three kernels per noise setting (``fastdecay._cpu.simulate.kernel_path``): one schedule
    # without recording, a schedule a trajectory of one coordinate without recording, the rest
    for optimizer in NAMES:
        for noise in (0.0, 0.1):
            fd.simulate(lam, shared, steps=4, optimizer=optimizer, dtype=dtype, noise=noise)
            fd.simulate(lam[:, :1], per_trajectory, steps=4, optimizer=optimizer, dtype=dtype, noise=noise)
            fd.simulate(lam, per_trajectory, steps=4, optimizer=optimizer, dtype=dtype, every=2, noise=noise,
                        weight_decay=per_trajectory)
    # a grid of few schedules over many curvatures: run class by class, a kernel of its own (64
    # trajectories a class; with noise, 192)
    grid = fd.stack([fd.step(0.1, 0.5, 3), fd.cosine(0.1, 8)])
    fd.simulate(np.ones((64, 2, 1)), grid, steps=4, dtype=dtype)
    fd.simulate(np.ones((192, 2, 1)), grid, steps=4, dtype=dtype, noise=0.1)
    # ... recording (32 trajectories a class; with noise, 64), a kernel of
    # its own, which a recording run under one schedule takes too (its one class)
    fd.simulate(np.ones((32, 2, 1)), grid, steps=4, dtype=dtype, every=2)
    fd.simulate(np.ones((64, 2, 1)), grid, steps=8, dtype=dtype, every=2, noise=0.1)
    # recording trajectories longer than a tile (d > 1024) under shared rates: a kernel of its own
    long = np.ones((1, 1025))
    fd.simulate(long, shared, steps=4, dtype=dtype, every=2)
    fd.simulate(long, shared, steps=4, dtype=dtype, every=2, noise=0.1)


def _simulate_planning():
    """The kernels compiled at their first call (``fastdecay._cpu.CompiledAtFirstCall``), each at
    its one signature: the simulations' planning passes (the rates' preparing pass, rate classes,
    the classes of scaled products, an array's distinct values, ...), which only some grids
    reach, and the standalone noise (``philox.fill_normals``)."""
    from ._cpu import CompiledAtFirstCall, philox, simulate
    from ._cpu.parallel import Kernel

    for module in (simulate, philox):
        for value in vars(module).values():
            kernel = value.dispatcher if isinstance(value, Kernel) else value
            if isinstance(kernel, CompiledAtFirstCall):
                kernel.dispatcher()


def _expected():
    import fastdecay as fd

    lam = np.array([1.0, 0.5])
    for optimizer in ("gd", "momentum"):
        fd.expected_loss(lam, fd.step(0.1, 0.5, 3), steps=4, optimizer=optimizer, noise=0.1, every=2)
    fd.steps_to_target(lam, fd.constant(0.1), 0.1, steps=4)


def _cuda():
    from ._gpu import _runtime as rt
    from ._gpu import _source

    device = rt.current_device()
    for file in _source.KERNELS:
        rt.module(file, device)


# the longest first (the workers take them in this order: on 2 cores the two simulation families run
# beside each other, the rest after them, the 16-bit storage split in two so that neither worker
# ends long after the other)
FAMILIES = {
    "simulate float64": lambda: _simulate(np.float64),
    "simulate float32": lambda: _simulate(np.float32),
    "updates bfloat16": lambda: _updates_16bit("bfloat16"),
    "updates float16": lambda: _updates_16bit("float16"),
    "updates": _updates,
    "schedules": _schedules,
    "simulate planning": _simulate_planning,
    "expected": _expected,
}


def _run(name):
    start = time.perf_counter()
    (FAMILIES[name] if name != "cuda" else _cuda)()
    return name, time.perf_counter() - start


def precompile(*, jobs=None, gpu=False, out=None):
    """Compile every CPU kernel (and with ``gpu`` the CUDA kernels) into the on-disk caches.

    ``jobs`` worker processes (default: one per family, at most the CPU count);
    ``out`` a callable given one line per family as it finishes. Returns
    ``{family: seconds}``; a worker's exception propagates.
    """
    names = list(FAMILIES) + (["cuda"] if gpu else [])
    jobs = max(1, min(len(names), jobs or os.cpu_count() or 1))
    seconds = {}
    # spawn: each worker a fresh interpreter, none inheriting a half-initialised Numba
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        for future in concurrent.futures.as_completed([pool.submit(_run, name) for name in names]):
            name, took = future.result()
            seconds[name] = took
            if out is not None:
                out(f"{name:<18} {took:6.1f} s")
    return seconds
