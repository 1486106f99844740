"""What a sweep costs over one ``fd.simulate`` call on the same grid, CPU.

Group ``sweep-overhead``: 64 step schedules x 1,024 curvatures (65,536 trajectories)
x 500 steps of heavy-ball momentum with gradient noise, float64, by

- ``fastdecay``: ``fd.sweep`` writing 8 chunks of 8,192 trajectories atomically to a
  fresh directory, then ``results.npz`` and ``summary.txt`` (no figures, no progress bar);
- ``fastdecay-in-memory``: ``fd.sweep`` without an output directory (chunking only);
- ``simulate-one-call``: one ``fd.simulate`` on the whole (schedules, curvatures) batch,
  the floor a sweep can reach on one machine.

Group ``sweep-expected``: the same grid as an expected-dynamics sweep (``mode =
"expected"``, ``fd.expected_loss`` per chunk, heavy-ball momentum, noise 0.01, batch
size 4): ``fd.sweep`` to disk and in memory against one ``fd.expected_loss`` call.

``steps_per_s`` is trajectory-steps per second from the median. Under
``--benchmark-disable`` (``make test``) each runs once on 4 x 64 trajectories x 20 steps.
"""

import itertools

import numpy as np
import pytest

import fastdecay as fd

GROUP = "sweep-overhead"


EXPECTED = "sweep-expected"


def config(smoke, mode="monte_carlo"):
    n_sched, n_curv, steps, chunk = (4, 64, 20, 64) if smoke else (64, 1024, 500, 8192)
    cfg = {
        "run": {"steps": steps, "chunk_size": chunk, "seed": 0},
        "curvatures": {"logspace": [-2, 2, n_curv]},
        "schedule": {"kind": "step", "lr": 0.02, "gamma": 0.5,
                     "period": [int(p) for p in np.linspace(steps / 10, steps, n_sched)]},
        "optimizer": {"kind": "momentum", "momentum": 0.9, "noise": 0.01},
    }
    if mode == "expected":
        del cfg["run"]["seed"]
        cfg["run"]["mode"] = "expected"
        cfg["optimizer"]["batch_size"] = 4
    return cfg


def record(benchmark, cfg, impl):
    n = len(cfg["schedule"]["period"]) * cfg["curvatures"]["logspace"][2]
    steps = cfg["run"]["steps"]
    benchmark.extra_info.update(impl=impl, trajectories=n, steps=steps, chunk_size=cfg["run"]["chunk_size"])
    if benchmark.stats is not None:
        benchmark.extra_info["steps_per_s"] = n * steps / benchmark.stats.stats.median


def timed(benchmark, fn, smoke, setup=None):
    if smoke:
        return benchmark.pedantic(fn, setup=setup, rounds=1, iterations=1)
    return benchmark.pedantic(fn, setup=setup, rounds=5, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group=GROUP)
def test_sweep_to_disk(benchmark, smoke, tmp_path):
    cfg = config(smoke)
    counter = itertools.count()

    def fresh_dir():
        return (tmp_path / f"run{next(counter)}",), {}

    res = timed(benchmark, lambda out: fd.sweep(cfg, out, progress=False, plots=False), smoke, setup=fresh_dir)
    record(benchmark, cfg, "fastdecay")
    assert np.isfinite(res.w).all()


@pytest.mark.benchmark(group=GROUP)
def test_sweep_in_memory(benchmark, smoke):
    cfg = config(smoke)
    res = timed(benchmark, lambda: fd.sweep(cfg, progress=False), smoke)
    record(benchmark, cfg, "fastdecay-in-memory")
    assert np.isfinite(res.w).all()


@pytest.mark.benchmark(group=GROUP)
def test_one_simulate_call(benchmark, smoke):
    cfg = config(smoke)
    periods = cfg["schedule"]["period"]
    lam = np.logspace(-2, 2, cfg["curvatures"]["logspace"][2])
    stacked = fd.stack([fd.step(0.02, 0.5, p) for p in periods])[:, None]
    curv = np.ascontiguousarray(np.broadcast_to(lam[None, :, None], (len(periods), lam.size, 1)))
    res = timed(benchmark, lambda: fd.simulate(curv, stacked, steps=cfg["run"]["steps"], optimizer="momentum",
                                               momentum=0.9, noise=0.01, seed=0), smoke)
    record(benchmark, cfg, "simulate-one-call")
    swept = fd.sweep(cfg, progress=False)
    np.testing.assert_array_equal(swept.w[0], res.w[..., 0])  # the same numbers, chunked or not


@pytest.mark.benchmark(group=EXPECTED)
def test_expected_sweep_to_disk(benchmark, smoke, tmp_path):
    cfg = config(smoke, "expected")
    counter = itertools.count()

    def fresh_dir():
        return (tmp_path / f"run{next(counter)}",), {}

    res = timed(benchmark, lambda out: fd.sweep(cfg, out, progress=False, plots=False), smoke, setup=fresh_dir)
    record(benchmark, cfg, "fastdecay-expected")
    assert np.isfinite(res.second_moment).all()


@pytest.mark.benchmark(group=EXPECTED)
def test_expected_sweep_in_memory(benchmark, smoke):
    cfg = config(smoke, "expected")
    res = timed(benchmark, lambda: fd.sweep(cfg, progress=False), smoke)
    record(benchmark, cfg, "fastdecay-expected-in-memory")
    assert np.isfinite(res.second_moment).all()


@pytest.mark.benchmark(group=EXPECTED)
def test_one_expected_loss_call(benchmark, smoke):
    cfg = config(smoke, "expected")
    periods = cfg["schedule"]["period"]
    lam = np.logspace(-2, 2, cfg["curvatures"]["logspace"][2])
    stacked = fd.stack([fd.step(0.02, 0.5, p) for p in periods])[:, None]
    curv = np.ascontiguousarray(np.broadcast_to(lam[None, :, None], (len(periods), lam.size, 1)))
    res = timed(benchmark, lambda: fd.expected_loss(curv, stacked, steps=cfg["run"]["steps"], optimizer="momentum",
                                                    momentum=0.9, noise=0.01, batch_size=4), smoke)
    record(benchmark, cfg, "expected_loss-one-call")
    swept = fd.sweep(cfg, progress=False)
    np.testing.assert_array_equal(swept.second_moment[0], res.second_moment[..., 0])  # chunked or not
