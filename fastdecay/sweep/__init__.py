"""Large simulation sweeps: every schedule × optimizer setting × curvature of a TOML file.

A sweep is a grid. Its trajectories (one per schedule, optimizer setting and
curvature, each the 1-D quadratic f(w) = ½λw²) are cut into chunks of
``run.chunk_size`` trajectories; each chunk is one ``fd.simulate`` call (or one
``fd.expected_loss`` call), one file ``DIR/chunks/chunk-NNNNNN.npz`` written
atomically (temporary file, then ``os.replace``) as soon as it is done, its SHA-256
recorded in the manifest ``DIR/sweep.json``, and, with a Dask cluster, one task. A
killed sweep loses at most the chunks in flight; ``--resume`` (``resume=True``)
checks every chunk file against its checksum and runs the missing and damaged ones
(naming the damaged ones). ``load_sweep`` checks them too and names any chunk it
cannot use. The directory remembers the hash of the normalised config and refuses
results of another one.

Noise is keyed by (seed, trajectory, step, coordinate), where the trajectory's
index is its flat position ``schedule * n_curvatures + curvature`` in the grid
of one optimizer setting (every optimizer setting sees the same noise: common
random numbers). Each chunk passes its first index as ``trajectory_offset``, so
the numbers, and hence the results, do not depend on the chunking, on the
machine or on Dask: a cluster gives bit-identical results to a local run.

The config format (``examples/sweep.toml`` is a documented example)::

    out = "sweep-out"           # optional default output directory

    [run]
    steps = 2000                # updates per trajectory (required)
    every = 20                  # record loss, displacement, lr every k steps (optional)
    chunk_size = 4096           # trajectories per chunk (default 4096)
    seed = 0                    # noise seed (default 0)
    w0 = 1.0                    # starting weight (default 1.0)
    dtype = "float64"           # or "float32"
    # mode = "expected"         # exact expected dynamics (fd.expected_loss) instead of
    #                           # Monte Carlo trajectories; then also w0_var = 0.0 (a random start)

    [curvatures]                # exactly one of:
    logspace = [-2, 2, 41]      # 10^-2 .. 10^2, 41 values
    # linspace = [0.1, 10, 100] # or values = [0.01, 0.1, 1.0]

    [[schedule]]                # one table per schedule family
    kind = "step"               # any `fastdecay schedule` KIND
    lr = 0.02
    gamma = 0.5
    period = [100, 200]         # a list makes a grid axis
    # label = "step", warmup = 100

    [[optimizer]]               # one table per optimizer family (default: gd)
    kind = "momentum"           # gd, momentum, momentum_lr_in_buffer, nesterov, adam, adamw
    momentum = 0.9
    on_drop = ["keep", "reset", "rescale"]
    # noise = 0.0, weight_decay = 0.0, betas = [0.9, 0.999], eps = 1e-8,
    # batch_size = [1, 8, 64]   # gradient noise is noise / sqrt(batch_size)
    # momentum (and betas[0]) may be "companion" (each schedule's own cycled momentum,
    # one_cycle and cyclic schedules) or a schedule table, e.g.
    # momentum = {kind = "cosine", lr = 0.95, total_steps = 1000, min_lr = 0.85}

With ``mode = "expected"`` each trajectory is the exact expectation over the gradient
noise (``fd.expected_loss``: gd, momentum, momentum_lr_in_buffer and nesterov; Adam is
refused): ``w`` holds E w_N, ``second_moment`` E w_N², ``loss`` the expected loss.
Chunks, files, resume and Dask work as for Monte Carlo sweeps.

In Python, ``fd.sweep(config)`` takes a path or a dict of the same structure:

>>> import fastdecay as fd
>>> cfg = {"run": {"steps": 50, "chunk_size": 4}, "curvatures": {"values": [0.1, 1.0, 10.0]},
...        "schedule": [{"kind": "step", "lr": 0.1, "gamma": 0.5, "period": [10, 20]}]}
>>> res = fd.sweep(cfg, progress=False)
>>> res.w.shape, res.schedules
((1, 2, 3), ['step(period=10)', 'step(period=20)'])

The package is ``fastdecay.sweep``, in three public modules: ``config`` (the TOML
format, ``parse_config``, ``config_hash``, ``chunk_plan``), ``run`` (``sweep``,
``run_chunk``, ``describe``) and ``result`` (``SweepResult``, ``load_sweep``); this
package re-exports their public names.

One name, two things: the attribute ``fastdecay.sweep`` is the *function* (``fd.sweep(config)``
runs a sweep), because ``import fastdecay`` binds it after loading this package.
Reach the package's contents by ``from fastdecay.sweep import load_sweep, parse_config``
(or ``from fastdecay.sweep import config``, ``importlib.import_module("fastdecay.sweep")``);
``import fastdecay.sweep as sw`` binds the function too (Python looks the attribute up
before the module) and ``import fastdecay.sweep.config as c`` fails, so use the ``from``
form. A callable module would hide this, at the
price of a module object that pretends to be a function; one name for the common call
(``fd.sweep``) and plain ``from`` imports for the rest is the simpler rule.
"""

from .config import SweepConfigError, chunk_plan, config_hash, parse_config
from .result import CorruptSweepError, SweepResult, load_sweep
from .run import SchedulerUnreachable, describe, run_chunk, sweep

__all__ = ["sweep", "load_sweep", "describe", "SweepResult", "SweepConfigError", "CorruptSweepError",
           "SchedulerUnreachable",
           "parse_config", "config_hash", "chunk_plan", "run_chunk"]
