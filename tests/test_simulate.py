"""fd.simulate against the plain-loop oracle (fastdecay.reference) and torch.optim:
whole trajectories over hundreds of steps, odd sizes, every optimizer and option."""

import importlib
import math
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import fastdecay as fd
from fastdecay import _layout as L
from fastdecay._rules import NAMES
from fastdecay.reference import simulate_quadratic

ROOT = pathlib.Path(__file__).resolve().parents[1]

OPTIMIZERS = list(NAMES)  # every update rule of the table
RTOL = 1e-10


def _reference_batch(lam, schedules, steps, drops=None, **kw):
    """Iterates (n, steps + 1, d) of each trajectory from the oracle."""
    lam = np.asarray(lam)
    out = []
    for i in range(lam.shape[0]):
        s = schedules[i] if isinstance(schedules, list) else schedules
        dr = drops[i] if isinstance(drops, list) else (drops or ())
        w, _ = simulate_quadratic(lam[i], s, steps=steps, drops=dr, trajectory=i, **kw)
        out.append(w)
    return np.array(out)


def _close(got, want, rtol=RTOL, atol=1e-15):
    """Relative error within rtol, where values are not below atol (weights start near 1;
    a trajectory the oracle sends to exactly 0 may end at 1e-86 after rounding)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want)
    scale = np.maximum(np.abs(want), atol / rtol)
    err = np.max(np.abs(got - want) / scale) if want.size else 0.0
    assert err <= rtol, f"max relative error {err:.3g} > {rtol:g}"


def _check_recording(res, lam, ref, every):
    """res.loss / displacement / lr at steps 0, every, ... against the oracle's iterates."""
    loss = 0.5 * np.sum(lam[:, None, :] * ref**2, axis=-1)
    disp = np.concatenate([np.zeros((ref.shape[0], 1)), np.linalg.norm(np.diff(ref, axis=1), axis=-1)], axis=1)
    _close(res.loss, loss[:, ::every])
    # displacement: relative where it is not tiny against the weights
    _close(res.displacement[:, 1:], disp[:, ::every][:, 1:], rtol=1e-8)
    assert np.all(res.displacement[:, 0] == 0)


STEP_DROPS = list(range(9, 1000, 9))


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("kind", ["exponential", "step"])
def test_matches_reference_shared_schedule(optimizer, kind):
    rng = np.random.default_rng(7)
    lam = rng.uniform(0.05, 3.0, (13, 3))
    lam[0, 0] = -0.2  # a saddle direction
    if kind == "exponential":
        s, drops = fd.exponential(lr=0.3, gamma=0.99), ()
    else:
        s, drops = fd.step(lr=0.3, gamma=0.5, period=9), STEP_DROPS
    w0 = rng.normal(size=(13, 3))
    steps, every = 301, 7
    res = fd.simulate(lam, s, steps=steps, optimizer=optimizer, w0=w0, momentum=0.8, every=every)
    ref = np.array([simulate_quadratic(lam[i], s, steps=steps, optimizer=optimizer, w0=w0[i], momentum=0.8,
                                       drops=drops)[0] for i in range(13)])
    _close(res.w, ref[:, -1])
    _check_recording(res, lam, ref, every)
    assert res.steps.tolist() == list(range(0, steps + 1, every))
    _close(res.lr, s.table(np.arange(0, steps + 1, every))[None].repeat(13, 0))
    assert res.diverged == 0


@pytest.mark.parametrize("optimizer", ["momentum", "momentum_lr_in_buffer", "nesterov"])
@pytest.mark.parametrize("on_drop", ["keep", "reset", "rescale"])
@pytest.mark.parametrize("per_trajectory", [False, True])
def test_on_drop_matches_reference(optimizer, on_drop, per_trajectory):
    lam = np.array([[0.3], [1.0], [2.5], [0.05], [3.0]])  # all stable, also for Nesterov
    if per_trajectory:
        sched = [fd.step(0.4, 0.3, 10), fd.multistep(0.4, 0.2, [7, 30, 31]), fd.exponential(0.4, gamma=0.98),
                 fd.piecewise([5, 50], [0.4, 0.1, 0.2]), fd.step(0.2, 0.5, 4)]
        drops = [range(10, 500, 10), [7, 30, 31], (), [5], range(4, 500, 4)]
        s = fd.stack(sched)
    else:
        sched, drops, s = fd.step(0.4, 0.3, 10), [range(10, 500, 10)] * 5, fd.step(0.4, 0.3, 10)
    res = fd.simulate(lam, s, steps=120, optimizer=optimizer, on_drop=on_drop, momentum=0.9)
    ref = _reference_batch(lam, sched, 120, drops, optimizer=optimizer, on_drop=on_drop, momentum=0.9)
    _close(res.w, ref[:, -1])


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_per_trajectory_mixed_kinds_noise_and_scheduled_weight_decay(optimizer):
    rng = np.random.default_rng(3)
    scheds = [fd.step(0.3, 0.5, 7), fd.exponential(0.3, gamma=0.98), fd.cosine(0.3, 100), fd.constant(0.2),
              fd.exponential(0.25, gamma=0.97, decay_steps=3, staircase=True),
              fd.warmup(fd.exponential(0.3, gamma=0.99), 5), fd.exponential(0.3, gamma=0.9, decay_steps=2.5),
              fd.linear(0.3, 0.01, 80), fd.one_cycle(0.5, 150)]
    drops = [range(7, 999, 7), (), (), (), range(3, 999, 3), (), (), (), ()]
    lam = rng.uniform(0.05, 2.0, (len(scheds), 2))
    wd = fd.exponential(0.01, gamma=1.002)   # an increasing weight-decay schedule
    res = fd.simulate(lam, fd.stack(scheds), steps=211, optimizer=optimizer, weight_decay=wd, noise=0.05,
                      seed=11, every=10, chunk_steps=37)
    ref = _reference_batch(lam, scheds, 211, drops, optimizer=optimizer, weight_decay=wd, noise=0.05, seed=11)
    _close(res.w, ref[:, -1])
    _check_recording(res, lam, ref, 10)
    _close(res.lr, np.array([s.table(np.arange(0, 212, 10)) for s in scheds]))


def test_per_trajectory_weight_decay_and_exponential_rates_many_steps():
    """Per-trajectory exponential rates run by recurrence past several re-anchors (1024 steps)."""
    lam = np.linspace(0.01, 0.2, 11)[:, None]
    s = fd.exponential(lr=0.5, gamma=np.linspace(0.999, 0.9999, 11))
    wd = fd.stack([fd.constant(1e-3 * k) for k in range(11)])
    res = fd.simulate(lam, s, steps=2500, weight_decay=wd, optimizer="adamw", every=500)
    ref = _reference_batch(lam, [s[i] for i in range(11)], 2500, optimizer="adamw",
                           weight_decay=[1e-3 * k for k in range(11)][0])
    # weight decay differs per trajectory: run the oracle one by one
    ref = np.array([simulate_quadratic(lam[i], s[i], steps=2500, optimizer="adamw", weight_decay=1e-3 * i)[0]
                    for i in range(11)])
    _close(res.w, ref[:, -1], rtol=1e-9)
    _close(res.lr, s.table(np.arange(0, 2501, 500)))


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_a_weight_decay_a_trajectory_gives_the_bits_of_each_trajectory_run_alone(optimizer, noise):
    """A grid of weight decays at one coordinate runs in the per-trajectory vector loops (the
    shared learning rate read as copies) or, where the rule's buffer follows the drops of a
    rate in closed form, in the element loop; either way each trajectory gets the bits it
    gets run alone with its one weight decay (shared rates' loops), float64 and float32,
    constant and scheduled weight decays, a staircase and an exponential rate, several
    chunks and tiles, and the weight decay's rates past an anchor (step 1,024)."""
    rng = np.random.default_rng(5)
    n = 1_500                                      # two tiles, an odd last one
    lam = rng.uniform(0.0, 2.0, (n, 1))
    decays = {"constant": fd.constant(rng.uniform(0.0, 0.05, n)),
              "exponential": fd.exponential(rng.uniform(0.0, 0.05, n), gamma=rng.uniform(0.999, 1.001, n))}
    rates = {"staircase": fd.step(0.05, 0.5, 9), "exponential": fd.exponential(0.05, gamma=0.999)}
    picks = [0, 1, 1_023, 1_024, n - 1]
    for dtype in (np.float64, np.float32):
        for (rate_name, lr), (decay_name, wd) in zip(rates.items(), decays.items()):
            steps = 30 if rate_name == "staircase" else 1_030
            kw = dict(steps=steps, optimizer=optimizer, noise=noise, seed=4, dtype=dtype, momentum=0.9)
            for on_drop in ("keep", "reset"):
                batch = fd.simulate(lam, lr, weight_decay=wd, on_drop=on_drop, chunk_steps=7, **kw).w
                for i in picks:
                    alone = fd.simulate(lam[i:i + 1], lr, weight_decay=wd[i], on_drop=on_drop, trajectory_offset=i,
                                        **kw).w
                    np.testing.assert_array_equal(batch[i], alone[0],
                                                  err_msg=f"{dtype.__name__} {rate_name} {decay_name} {on_drop} {i}")


@pytest.mark.parametrize("optimizer, on_drop", [("gd", "keep"), ("momentum", "reset"), ("nesterov", "rescale"),
                                               ("adamw", "keep")])
def test_a_grid_of_staircases_gives_the_bits_of_each_schedule_run_alone(optimizer, on_drop):
    """A schedule a trajectory in closed form keeps its rate inside a plateau (the loop reads the
    row's fields) and, under on_drop, looks for a drop only where a plateau starts: each
    trajectory of a grid of step schedules (whole and fractional periods), staircase exponentials
    and inverse times (two gammas whose powers share the memo's slots), a warmed-up step,
    multisteps and a join gets the bits of its schedule run
    alone (the shared rates' loops, the closed form at every step), past the rates' anchor at
    step 1,024, with noise and recording."""
    kinds = [lambda i: fd.step(0.05, 0.5, 3 + i % 17), lambda i: fd.step(0.05, 0.7, 1.1 + (i % 7) * 0.37),
             lambda i: fd.exponential(0.05, gamma=0.9, decay_steps=2.5 + i % 3, staircase=True),
             lambda i: fd.inverse_time(0.05, 0.5, decay_steps=4.5, staircase=True),
             lambda i: fd.warmup(fd.step(0.05, 0.5, 9), 7), lambda i: fd.multistep(0.05, 0.3, [5, 40, 300 + i, 1100]),
             lambda i: fd.join([fd.constant(0.05), fd.step(0.04, 0.5, 13)], [33]),
             # gammas 0.5 and 0.75 share the memo's slots of an exponent (its key is both)
             lambda i: fd.step(0.05, (0.5, 0.75)[i // 10 % 2], 3 + i % 4),
             # rows that agree in their first segment and differ after it
             lambda i: fd.multistep(0.05, 0.5, [7, 20 + i % 3])]
    _assert_a_grid_gives_each_schedule_s_bits(kinds, optimizer, on_drop)


@pytest.mark.parametrize("optimizer, on_drop", [("gd", "keep"), ("momentum", "reset"), ("adamw", "keep")])
def test_a_grid_of_smooth_schedules_gives_the_bits_of_each_schedule_run_alone(optimizer, on_drop):
    """A one-segment schedule a trajectory read in closed form every step (a grid of cosines,
    polynomials, cosine restarts, cyclic, inverse square roots; the loop reads the row's fields)
    and a tabulated and a product row beside them (the table read whole): each trajectory gets
    the bits of its schedule run alone."""
    kinds = [lambda i: fd.cosine(0.05, 90 + i % 37, min_lr=0.001 * (i % 3)),
             lambda i: fd.polynomial(0.05, 500 + i % 11, power=2.0),
             lambda i: fd.cosine_restarts(0.05, 40 + i % 5, period_mult=2, min_lr=0.002, cycle_decay=0.7,
                                          decay_amplitude=i % 2 == 1),
             lambda i: fd.cyclic(0.01, 0.05, 20 + i % 7),
             lambda i: fd.inverse_sqrt(0.05, 10 + i % 4),
             lambda i: fd.tabulated(np.linspace(0.05, 0.01, 50 + i % 9)),
             lambda i: fd.product(fd.cosine(0.05, 700), fd.step(1.0, 0.5, 100 + i % 3))]
    _assert_a_grid_gives_each_schedule_s_bits(kinds, optimizer, on_drop)


@pytest.mark.parametrize("optimizer, every", [("gd", None), ("lion", None), ("momentum", 97)])
def test_segments_of_the_vector_loop_give_the_bits_of_each_schedule_run_alone(optimizer, every):
    """Segments that a vector loop computes at every step from their fields (cosines, lines,
    constants; the others' lanes left alone): one-segment cosines and lines, a warmup before a
    cosine, a step schedule joined to a cosine (the table read whole before it), a cosine
    joined to a constant, a line, a constant and a cosine joined, a cosine whose origin is not
    0; in tiles shared with rates that advance by a ratio (exponentials), step schedules (read
    at their changes), polynomials of power 2 (read at every step), and consecutive copies;
    the runs of a grid of rates alone (no recording) and the general one (recorded): each
    trajectory gets the bits of its schedule run alone, past the anchor at step 1,024."""
    from fastdecay._layout import COSINE, WIDTH

    shifted = np.zeros((1, WIDTH))
    shifted[0, :6] = (0.0, 7.5, COSINE, 0.04, 300.0, 0.002)  # start, origin, kind, lr, T, end
    kinds = [lambda i: fd.cosine(0.05, 90 + i % 37, min_lr=0.001 * (i % 3)),
             lambda i: fd.exponential(0.05, gamma=0.99 + 0.001 * (i % 5)),
             lambda i: fd.cosine(0.03, 1_000 + i % 50),
             lambda i: fd.step(0.05, 0.5, 20 + i % 7),
             lambda i: fd.warmup(fd.cosine(0.05, 400 + i % 13), 10 + i % 3),
             lambda i: fd.Schedule(shifted, "cosine"),
             lambda i: fd.join([fd.step(0.05, 0.5, 7), fd.cosine(0.02, 200 + i % 5)], [30 + i % 4]),
             lambda i: fd.join([fd.cosine(0.05, 60 + i % 3), fd.constant(0.001)], [60]),
             lambda i: fd.linear(0.05, 0.001 * (i % 4), 300 + i % 7),
             lambda i: fd.join([fd.linear(0.01, 0.05, 20), fd.constant(0.05 - 0.001 * (i % 3)), fd.cosine(0.04, 500)],
                               [20, 40 + i % 5]),
             lambda i: fd.polynomial(0.05, 200 + i % 3, power=2.0)]
    rng = np.random.default_rng(4)
    n = 1_100                                      # two tiles
    own = [i if i < 600 else 600 + (i - 600) // 3 for i in range(n)]
    schedules = [kinds[j % len(kinds)](j) for j in own]
    lam = rng.uniform(0.0, 2.0, (n, 1))
    kw = dict(steps=1_030, optimizer=optimizer, every=every)
    batch = fd.simulate(lam, fd.stack(schedules), chunk_steps=400, **kw)
    for i in [*range(13), 1_020, 1_021, 1_022, 1_023, 1_024, 1_025, 1_026, n - 1]:
        alone = fd.simulate(lam[i:i + 1], schedules[i], trajectory_offset=i, **kw)
        np.testing.assert_array_equal(batch.w[i], alone.w[0], err_msg=f"trajectory {i}")
        if every:
            np.testing.assert_array_equal(batch.lr[i], alone.lr[0], err_msg=f"trajectory {i}")


def test_an_exponential_first_segment_that_does_not_hold_the_step_is_not_read_at_its_origin():
    """A grid's rates at step 0 and at every 1,024th step (the closed form, ``_anchor``) take the
    lr of a first segment that is an exponential at its origin only where it holds that step:
    not where a later segment starting at 0 wins, nor where its origin lies in a later segment."""
    from fastdecay._layout import COSINE, EXPONENTIAL, WIDTH

    def raw(*segments):
        table = np.zeros((len(segments), WIDTH))
        for k, seg in enumerate(segments):
            table[k, :len(seg)] = seg
        return fd.Schedule(table, "raw")

    for s, steps in [(raw((0, 0, EXPONENTIAL, 0.05, 0.99, 1.0, 0.0), (0, 0, COSINE, 0.03, 500, 0.0)), 5),
                     (raw((0, 1024, EXPONENTIAL, 0.05, 0.9999, 1.0, 0.0), (500, 0, COSINE, 0.03, 2000, 0.0)), 1030)]:
        lam = np.ones((2, 1))
        batch = fd.simulate(lam, fd.stack([s, fd.cosine(0.05, 100)]), steps=steps)
        alone = fd.simulate(lam[:1], s, steps=steps)
        np.testing.assert_array_equal(batch.w[0], alone.w[0])


def test_consecutive_copies_of_a_schedule_share_their_row_bit_for_bit(signed_cosine):
    """``share_equal_rows``: a trajectory follows the row before its own where the two rows are
    the same bits (not a row further back; not a min_lr of -0.0 beside one of 0.0; not a
    multistep whose later milestone differs)."""
    from fastdecay._cpu.simulate import share_equal_rows

    s = fd.stack([fd.cosine(0.1, 10), fd.cosine(0.1, 10), fd.cosine(0.1, 11), fd.cosine(0.1, 10),
                  signed_cosine(0.1, 10, min_lr=-0.0), signed_cosine(0.1, 10, min_lr=-0.0), fd.cosine(0.1, 10),
                  fd.multistep(0.1, 0.5, [5, 9]), fd.multistep(0.1, 0.5, [5, 10]), fd.multistep(0.1, 0.5, [5, 10])])
    rows = np.arange(10)
    share_equal_rows(s.rows(), rows)
    assert rows.tolist() == [0, 0, 2, 3, 4, 4, 6, 7, 8, 8]


@pytest.mark.parametrize("optimizer, weight_decay, noise, dtype", [
    ("gd", 0.0, 0.0, np.float64), ("nesterov", 0.01, 0.0, np.float64), ("momentum_lr_in_buffer", 0.0, 0.0, np.float64),
    ("adamw", 0.01, 0.1, np.float64), ("adamw", 0.01, 0.0, np.float32), ("lion", 0.0, 0.0, np.float32),
    ("momentum", 0.0, 0.1, np.float32)])
def test_a_grid_of_few_schedules_over_many_curvatures_reads_them_by_class_with_each_schedule_s_bits(
        monkeypatch, optimizer, weight_decay, noise, dtype):
    """Rate classes: where trajectories outnumber the distinct rows of a learning-rate grid sixteen
    times or more (most of them read in closed form), each distinct row's rate is computed once a
    step. Without noise the trajectories run laid out class by class, each class as its schedule
    alone (``_cpu.simulate.simulate_groups``; no reordering where they are laid out so already);
    with noise in their places, reading their class's rate (``class_rates``; the SGD family's
    blocks of four steps gather it in the steps' loop for GD, into arrays first with momentum).
    Rows of every kind a trajectory's rate can take (vector segments, step schedules,
    exponentials, polynomials, joins) in a shuffled order, over three tiles, past the anchor at
    step 1,024, in chunks (and in chunks cut to fit the classes' rates), with and without weight
    decay, every rule: each trajectory gets the bits of its schedule run alone, and the classes
    were taken."""
    import importlib

    from fastdecay._cpu import simulate as cpu

    kinds = [lambda j: fd.cosine(0.05, 90 + j, min_lr=0.001 * j),
             lambda j: fd.step(0.05, 0.5, 20 + j),
             lambda j: fd.warmup(fd.cosine(0.05, 400 + j), 10 + j),
             lambda j: fd.exponential(0.05, gamma=0.99 + 0.001 * j),
             lambda j: fd.join([fd.step(0.05, 0.5, 7), fd.cosine(0.02, 200 + j)], [30 + j]),
             lambda j: fd.linear(0.05, 0.001 * j, 300 + j),
             lambda j: fd.polynomial(0.05, 200 + j, power=2.0),
             lambda j: fd.constant(0.01 * (j + 1))]
    distinct = [kind(j) for kind in kinds for j in range(3)]  # 24 rows
    rng = np.random.default_rng(7)
    n = 2_500
    own = rng.integers(0, len(distinct), n)
    lam = rng.uniform(0.0, 2.0, (n, 1))
    grid = fd.stack([distinct[k] for k in own])
    calls, layouts = [], []
    kernel = "class_rates" if noise else "simulate_groups"  # (each called once a chunk)
    spied, group_bounds = getattr(cpu, kernel), cpu.group_bounds
    monkeypatch.setattr(cpu, kernel, lambda *a: (calls.append(a[-2] if noise else a[15]), spied(*a)))
    monkeypatch.setattr(cpu, "group_bounds", lambda *a: layouts.append(group_bounds(*a)) or layouts[-1])
    kw = dict(steps=1_030, optimizer=optimizer, weight_decay=weight_decay, noise=noise, seed=3, dtype=dtype)
    batch = fd.simulate(lam, grid, chunk_steps=400, **kw)
    assert calls == [400, 400, 230]
    assert layouts == ([] if noise else [False])  # (with noise, ~104 a class: below its threshold, not grouped)
    module = importlib.import_module("fastdecay.simulate")
    monkeypatch.setattr(module, "_CLASS_RATES_MAX", 24 * 150)  # chunks of at most 150 steps
    cut = fd.simulate(lam, grid, chunk_steps=400, **kw)
    assert max(calls[3:]) == 150 and sum(calls[3:]) == 1_030
    np.testing.assert_array_equal(cut.w, batch.w)
    for k in range(len(distinct)):
        for i in np.flatnonzero(own == k)[:2]:
            alone = fd.simulate(lam[i:i + 1], distinct[k], trajectory_offset=int(i), **kw)
            np.testing.assert_array_equal(batch.w[i], alone.w[0], err_msg=f"trajectory {i}, schedule {k}")
    # laid out class by class already (as a sweep lays out its schedules): run in place (with
    # noise, ~104 trajectories a class keep the lanes; each trajectory's draws its own either way)
    by_class = np.argsort(own, kind="stable")
    laid_out = fd.simulate(lam[by_class], fd.stack([distinct[k] for k in own[by_class]]), **kw)
    assert layouts[-1] is True if not noise else len(layouts) == 0
    if not noise:
        np.testing.assert_array_equal(laid_out.w, batch.w[by_class])
    for p in (0, 1, 600, n - 1):
        alone = fd.simulate(lam[by_class[p]:by_class[p] + 1], distinct[own[by_class[p]]], trajectory_offset=p, **kw)
        np.testing.assert_array_equal(laid_out.w[p], alone.w[0], err_msg=f"place {p}")
    if not noise:
        w0 = rng.uniform(-1.0, 1.0, (n, 1))  # a starting point a trajectory, laid out with them
        started = fd.simulate(lam, grid, w0=w0, **kw)
        for i in (0, 1, 2, n - 1):
            alone = fd.simulate(lam[i:i + 1], distinct[own[i]], w0=w0[i:i + 1], **kw)
            np.testing.assert_array_equal(started.w[i], alone.w[0], err_msg=f"trajectory {i}")


@pytest.mark.parametrize("rows, n, noise, on_drop, way", [
    ("closed", 2_500, 0.0, "keep", "grouped"), ("closed", 1_000, 0.0, "keep", "lanes"),
    ("closed", 1_000, 0.1, "keep", "lanes"), ("closed", 300, 0.0, "keep", None),
    ("exponential", 5_000, 0.0, "keep", "grouped"), ("exponential", 2_500, 0.0, "keep", None),
    ("exponential", 5_000, 0.1, "keep", "grouped"), ("closed", 5_000, 0.1, "keep", "grouped"),
    ("closed", 2_500, 0.0, "reset", "grouped"), ("closed", 2_500, 0.0, "rescale", "grouped"),
    ("closed", 1_000, 0.0, "reset", None), ("sorted", 5_000, 0.1, "keep", "grouped"),
    ("sorted", 2_500, 0.1, "keep", "lanes")])
def test_which_grids_run_by_rate_classes(monkeypatch, rows, n, noise, on_drop, way):
    """A grid of 24 distinct rows: without noise over 64 trajectories a row or more it runs grouped
    by class (exponentials over 192 or more; the momentum's buffer reset or rescaled at each class's
    drops as a schedule alone does), and with noise over 192 or more, laid out by class or not; over
    16 or more a row its lanes read the classes' rates where most rows are read in closed form and
    the buffer is kept at drops; below, neither. Each way, every trajectory has the bits of its
    schedule run alone."""
    from fastdecay._cpu import simulate as cpu

    if rows == "exponential":
        distinct = [fd.exponential(0.05, gamma=0.99 - 0.001 * j) for j in range(24)]
    else:
        distinct = [fd.step(0.05, 0.5, 20 + j) if j % 2 else fd.cosine(0.05, 90 + j) for j in range(24)]
    own = np.arange(n) * 24 // n if rows == "sorted" else np.arange(n) % 24
    lam = np.random.default_rng(1).uniform(0.0, 2.0, (n, 1))
    taken = []
    for kernel in ("simulate_groups", "class_rates"):
        spied = getattr(cpu, kernel)
        monkeypatch.setattr(cpu, kernel, lambda *a, _k=kernel, _f=spied: (taken.append(_k), _f(*a)))
    kw = dict(steps=300, optimizer="momentum", noise=noise, seed=5, on_drop=on_drop)
    batch = fd.simulate(lam, fd.stack([distinct[k] for k in own]), **kw)
    assert set(taken) == {"grouped": {"simulate_groups", "class_rates"}, "lanes": {"class_rates"}, None: set()}[way]
    for i in (0, 1, 23, n - 1):
        alone = fd.simulate(lam[i:i + 1], distinct[own[i]], trajectory_offset=i, **kw)
        np.testing.assert_array_equal(batch.w[i], alone.w[0], err_msg=f"trajectory {i}")


def _spy_class_rates(monkeypatch):
    """The number of classes of each ``class_rates`` call from here on (a list that grows)."""
    from fastdecay._cpu import simulate as cpu

    sizes = []
    spied = cpu.class_rates
    monkeypatch.setattr(cpu, "class_rates", lambda *a: (sizes.append(a[1].shape[0]), spied(*a)))
    return sizes


def _assert_read_by_classes(monkeypatch, schedules, lam, expected, **kw):
    """``fd.simulate(lam, fd.stack(schedules), **kw)`` reads rate classes (``class_rates``) or not,
    as ``expected``, and trajectories 0, 7 and the last have the bits of their schedule alone."""
    sizes = _spy_class_rates(monkeypatch)
    batch = fd.simulate(lam, fd.stack(schedules), **kw)
    assert bool(sizes) == expected, schedules[0]
    for i in (0, 7, len(schedules) - 1):
        alone = fd.simulate(lam[i:i + 1], schedules[i], **kw)
        np.testing.assert_array_equal(batch.w[i], alone.w[0], err_msg=f"{schedules[0]}, trajectory {i}")


@pytest.mark.parametrize("family, optimizer, noise, dtype", [
    ("step", "gd", 0.0, np.float64), ("step", "momentum", 0.0, np.float64), ("step", "nesterov", 0.0, np.float32),
    ("step", "adamw", 0.0, np.float64), ("step", "gd", 0.1, np.float32), ("step", "momentum", 0.1, np.float64),
    ("step", "lion", 0.0, np.float64), ("to zero", "gd", 0.0, np.float64), ("to zero", "momentum", 0.0, np.float32),
    ("to zero", "adamw", 0.1, np.float64)])
def test_schedules_with_an_lr_a_trajectory_read_their_shapes_with_each_schedule_s_bits(
        monkeypatch, family, optimizer, noise, dtype):
    """A grid of one-segment schedules with an lr of its own a trajectory (a random search over lr, two
    trajectories at lr 0, one of them under a power that overflows) across 9 shapes: step schedules
    (periods and gammas), or cosines, lines and polynomials that end at 0 beside them. The lanes read
    each shape's rate at lr 1 (``class_rates`` over 9 rows) times their lr, and every trajectory has
    the bits of its schedule run alone, and of the run that reads each lane's rate in closed form."""
    module = importlib.import_module("fastdecay.simulate")
    n = 2_100  # (past two tiles)
    rng = np.random.default_rng(11)
    lr = 10.0 ** rng.uniform(-3.0, -1.0, n)
    lr[[5, 17]] = 0.0
    steps = [lambda lr, g=g, p=p: fd.step(lr, gamma=g, period=p)
             for g, p in ((0.5, 7.0), (0.5, 13.0), (0.3, 20.0), (0.9, 3.0), (0.5, 50.0), (0.1, 31.0), (0.7, 11.0),
                          (0.5, 1.0), (8.0, 1.0))]  # the last grows past float64 at step 342
    if family == "to zero":
        steps[:6] = [lambda lr: fd.cosine(lr, 300), lambda lr: fd.cosine(lr, 97.5), lambda lr: fd.linear(lr, 0.0, 250),
                     lambda lr: fd.polynomial(lr, 180, power=2.0), lambda lr: fd.polynomial(lr, 40, power=0.5,
                                                                                                cycle=True),
                     lambda lr: fd.cosine(lr, 1e6)]
    own = np.arange(n) % len(steps)
    own[own == 8] = 7  # (the growing shape for trajectory 17 alone, at lr 0)
    own[17] = 8
    grid = fd.stack([steps[k](lr[i]) for i, k in enumerate(own)])
    lam = rng.uniform(0.0, 2.0, (n, 1))
    sizes = _spy_class_rates(monkeypatch)
    kw = dict(steps=400, optimizer=optimizer, noise=noise, seed=4, dtype=dtype, weight_decay=0.01, chunk_steps=150)
    batch = fd.simulate(lam, grid, **kw)
    assert sizes and set(sizes) == {len(steps)}
    assert batch.w[17, 0] == batch.w[5, 0] == 1.0 and np.isfinite(batch.w).all()  # (lr 0: never moved)
    monkeypatch.setattr(module, "_lr_shapes", lambda *a: None)
    by_lane = fd.simulate(lam, grid, **kw)
    assert len(sizes) == 3  # (no classes: each lane's rate in closed form)
    np.testing.assert_array_equal(batch.w, by_lane.w)
    for i in (0, 1, 5, 17, 1_023, 1_024, n - 1):
        alone = fd.simulate(lam[i:i + 1], steps[own[i]](lr[i]), trajectory_offset=i, **kw)
        np.testing.assert_array_equal(batch.w[i], alone.w[0], err_msg=f"trajectory {i}")


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "nesterov", "momentum_lr_in_buffer"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_a_tile_s_classes_read_a_run_at_a_time_give_the_gathered_bits(optimizer, weight_decay):
    """A tile whose lanes' classes never decrease reads them a run of one class at a time
    (``rules._sgd_class_runs_block``: each run's four rates once, no gather): runs of 1 to 100
    lanes, the last to the tile's end, scales of 0 beside a rate that overflowed to inf (``scaled``
    keeps 0), with and without weight decay, every SGD-family rule: the weights and buffers are
    the bits of the block that gathers each lane's rate (``_sgd_class_block``), and moved."""
    from fastdecay._cpu import lanes, rules

    rng = np.random.default_rng(5)
    runs = [1, 40, 3, 100, 59]
    classes = np.repeat(np.arange(len(runs)), runs)
    n = classes.shape[0]
    rates = rng.uniform(0.0, 0.2, (8, len(runs), 1))
    rates[5, 2, 0] = np.inf
    scales = rng.uniform(0.5, 2.0, n)
    scales[[0, 41, 42, 150]] = 0.0  # (lanes 41 and 42: class 2, whose rate is inf at step 5)
    lam = rng.uniform(0.0, 2.0, n)
    step_scalars = np.zeros((9, lanes.N_SCALARS))
    step_scalars[:, lanes.WD], step_scalars[:, lanes.SCALE], step_scalars[:, lanes.MOM] = weight_decay, 1.0, 0.9
    use_momentum, nesterov, in_buffer = optimizer != "gd", optimizer == "nesterov", optimizer.endswith("buffer")
    for read_only in (lam, rates, classes, step_scalars):  # (as the kernels pass them: the same compilations)
        read_only.setflags(write=False)
    w0, buf0 = rng.uniform(-1.0, 1.0, n), rng.uniform(-0.1, 0.1, n)
    w_gathered, buf_gathered, w_runs, buf_runs = w0.copy(), buf0.copy(), w0.copy(), buf0.copy()
    etas = tuple(np.empty(n) for _ in range(4))
    for s in (0, 4):
        rules._sgd_class_block(w_gathered, buf_gathered, lam, rates, classes, scales, etas, step_scalars, s,
                               use_momentum, nesterov, in_buffer)
        rules._sgd_class_runs_block(w_runs, buf_runs, lam, rates, classes, scales, step_scalars, s, use_momentum,
                                    nesterov, in_buffer)
    np.testing.assert_array_equal(w_runs, w_gathered)
    np.testing.assert_array_equal(buf_runs, buf_gathered)
    assert not np.array_equal(w_runs, w0) and np.isfinite(w_runs[scales == 0.0]).all()


def test_a_tile_s_runs_of_one_class_are_found_by_their_ends():
    """``class_run_end`` (a binary search) finds where each run of a never-decreasing ``classes``
    ends, as ``np.searchsorted`` does; ``_in_class_runs`` takes a tile's classes where they never
    decrease and their runs average ``CLASS_RUN_LANES`` lanes or more."""
    from numba import njit

    from fastdecay._cpu import rules
    from fastdecay._cpu import simulate as cpu

    run_end, in_runs = njit(rules.class_run_end.py_func), njit(cpu._in_class_runs.py_func)
    rng = np.random.default_rng(2)
    for sizes in ([1], [5], [1, 1, 1], [3, 1, 7], list(rng.integers(1, 50, 40))):
        classes = np.repeat(np.arange(len(sizes)) * 3, sizes)  # (classes need not be consecutive numbers)
        j = 0
        while j < classes.shape[0]:
            end = run_end(classes, j)
            assert end == np.searchsorted(classes, classes[j], side="right"), (sizes, j)
            j = end
        for j in range(classes.shape[0]):  # (from inside a run too)
            assert run_end(classes, j) == np.searchsorted(classes, classes[j], side="right")
    runs = cpu.CLASS_RUN_LANES
    assert in_runs(np.repeat(np.arange(4), runs))
    assert in_runs(np.full(1024, 7)) and not in_runs(np.zeros(1, np.int64))  # (one lane: the gather)
    assert not in_runs(np.repeat(np.arange(4), runs - 1))  # (runs a lane too short on average)
    falling = np.repeat(np.arange(4), runs)
    falling[-1] = 0
    assert not in_runs(falling)


def test_lanes_of_an_lr_a_trajectory_run_laid_out_by_shape(monkeypatch):
    """A noiseless grid of an lr a trajectory over few shapes, in turn (trajectory i of shape i %
    9), runs laid out shape by shape (``_RUN_LANES_REGROUP`` lanes a shape or more), so that each
    tile reads its shapes' rates a run at a time: the trajectories' weights, from a starting
    point each, come back in their places with the bits of the run that keeps them in place (the
    gather) and of each lane's closed form. Laid out by shape already (a sweep's order), a grid
    runs in place; with noise (a lane's draws follow its place), or with fewer lanes a shape, it
    runs in place. A warmup before the shapes (phases) lays out every phase's lanes."""
    from fastdecay._cpu import simulate as cpu

    module = importlib.import_module("fastdecay.simulate")
    n = 3_001  # (three tiles and a lane: runs of ~333 lanes, tiles of several runs)
    rng = np.random.default_rng(13)
    lr = 10.0 ** rng.uniform(-3.0, -1.0, n)
    periods = np.arange(n) % 9 + 3.0
    lam = rng.uniform(0.0, 2.0, (n, 1))
    w0 = rng.uniform(-1.0, 1.0, (n, 1))
    layouts = []
    spied = cpu.regroup
    monkeypatch.setattr(cpu, "regroup", lambda *a: (layouts.append(a[5]), spied(*a)))
    for optimizer, dtype in (("gd", np.float64), ("nesterov", np.float32), ("momentum", np.float64)):
        kw = dict(steps=150, optimizer=optimizer, dtype=dtype, weight_decay=0.01, chunk_steps=70)
        grid = fd.step(lr, gamma=0.5, period=periods)
        layouts.clear()
        by_shape = fd.simulate(lam, grid, w0=w0, **kw)
        assert layouts == [True] * 4 + [False]  # (curvatures, weights, classes, scales in; weights out)
        monkeypatch.setattr(module, "_RUN_LANES_REGROUP", 10**9)
        in_place = fd.simulate(lam, grid, w0=w0, **kw)
        monkeypatch.setattr(module, "_lr_shapes", lambda *a: None)
        closed_form = fd.simulate(lam, grid, w0=w0, **kw)
        monkeypatch.undo()
        monkeypatch.setattr(cpu, "regroup", lambda *a: (layouts.append(a[5]), spied(*a)))
        assert layouts == [True] * 4 + [False]  # (neither of those two laid out)
        np.testing.assert_array_equal(by_shape.w, in_place.w)
        np.testing.assert_array_equal(by_shape.w, closed_form.w)
        assert not np.array_equal(by_shape.w, w0.astype(dtype))
        order = np.argsort(periods, kind="stable")  # (a sweep's order: laid out already)
        laid_out = fd.simulate(lam[order], fd.step(lr[order], gamma=0.5, period=periods[order]), w0=w0[order], **kw)
        np.testing.assert_array_equal(laid_out.w, by_shape.w[order])
        assert layouts == [True] * 4 + [False]
    fd.simulate(lam, fd.step(lr, gamma=0.5, period=periods), steps=20, noise=0.1)
    fd.simulate(lam[:500], fd.step(lr[:500], gamma=0.5, period=periods[:500]), steps=20)  # (~56 lanes a shape)
    assert layouts == [True] * 4 + [False]
    # a warmup, then cosines of 9 lengths (phases, ``_lr_phases``): every phase's lanes laid out by
    # the cosines' shapes, the warmup's whole rows too
    grid = fd.warmup(fd.cosine(lr, total_steps=periods + 87.0), 10)
    for optimizer in ("gd", "momentum"):
        kw = dict(steps=120, optimizer=optimizer, chunk_steps=50)
        layouts.clear()
        by_shape = fd.simulate(lam, grid, w0=w0, **kw)
        assert len(layouts) > 5 and layouts[-1] is False and all(layouts[:-1])
        monkeypatch.setattr(module, "_RUN_LANES_REGROUP", 10**9)
        in_place = fd.simulate(lam, grid, w0=w0, **kw)
        monkeypatch.setattr(module, "_lr_phases", lambda *a: None)
        closed_form = fd.simulate(lam, grid, w0=w0, **kw)
        monkeypatch.undo()
        np.testing.assert_array_equal(by_shape.w, in_place.w)
        np.testing.assert_array_equal(by_shape.w, closed_form.w)
        for i in (0, 1, 2_000, n - 1):
            alone = fd.simulate(lam[i:i + 1], grid[i], w0=w0[i:i + 1], **kw)
            np.testing.assert_array_equal(by_shape.w[i], alone.w[0], err_msg=f"trajectory {i}")
        monkeypatch.setattr(cpu, "regroup", lambda *a: (layouts.append(a[5]), spied(*a)))


def test_which_grids_of_an_lr_a_trajectory_read_their_shapes(monkeypatch):
    """Shapes are read where every row's rate is its lr times its shape (a warmup's cosine too: its
    phase, ``_lr_phases``): not for a cosine or a line that ends above 0, or an inverse-time decay; not for a cosine whose lr is so
    small (or large) that lr (1 + c) / 2 would round otherwise than lr ((1 + c) / 2); nor where the
    shapes are not 16 times fewer than the trajectories. Each run has its schedules' bits."""
    n = 400
    lr = 0.01 * (1.0 + 1e-3 * np.arange(n))
    lam = np.random.default_rng(3).uniform(0.0, 2.0, (n, 1))
    kw = dict(steps=120, optimizer="momentum")
    cases = [(lambda k, lr: fd.cosine(lr, 50 + k % 5), True), (lambda k, lr: fd.cosine(lr, 50 + k % 5, min_lr=1e-4), False),
             (lambda k, lr: fd.linear(lr, 1e-4 * (k % 2), 60), False),
             (lambda k, lr: fd.warmup(fd.cosine(lr, 50 + k % 5), 10), True),  # (in phases: the cosine's)
             (lambda k, lr: fd.inverse_time(lr, 0.5, decay_steps=10, staircase=True), False),
             (lambda k, lr: fd.cosine(lr * 1e-290 if k == 7 else lr, 50 + k % 5), False),
             (lambda k, lr: fd.cosine(lr, 50 + k % 30), False)]  # (30 shapes: 13 trajectories a shape)
    for make, shaped in cases:
        _assert_read_by_classes(monkeypatch, [make(k, lr[k]) for k in range(n)], lam, shaped, **kw)


# schedules a grid scales by an lr a trajectory: warmups of three lengths before a cosine (their
# segments start at different steps), a cosine times an exponential (products of two factors), a
# line; and a join whose pieces are products of their own numbers (2 before step 30, 3 after)
SCALED_SCHEDULES = [fd.warmup(fd.cosine(0.05, 200), w) for w in (5, 17, 40)] + [
    fd.cosine(0.05, 150) * fd.exponential(1.0, gamma=0.99), fd.linear(0.05, 0.01, 300),
    fd.join([fd.cosine(0.05, 100) * 2.0, fd.cosine(0.02, 300) * 3.0], [30])]


@pytest.mark.parametrize("optimizer, noise, dtype", [("gd", 0.0, np.float64), ("momentum", 0.0, np.float32),
                                                     ("adamw", 0.1, np.float64), ("nesterov", 0.1, np.float32)])
def test_schedules_scaled_by_an_lr_a_trajectory_read_their_classes_with_each_product_s_bits(monkeypatch, optimizer,
                                                                                          noise, dtype):
    """``fd.stack(schedules)[which] * lrs``: products whose last factor is each trajectory's lr. The
    lanes read each schedule's rate once a step (``class_rates`` over the rows without their lr)
    times their lr: five schedules, and rows of their own for an lr of exactly 1 (which a product
    leaves out), an lr of 0 (not read as a scale) and three trajectories of the join (its pieces
    scaled by different numbers: no one scale). Every trajectory has the bits of its product run
    alone, and of the run that reads each lane's product in closed form."""
    module = importlib.import_module("fastdecay.simulate")
    n = 2_100  # (past two tiles)
    rng = np.random.default_rng(12)
    lrs = 10.0 ** rng.uniform(-1.0, 1.0, n)
    lrs[3], lrs[8], lrs[11] = 1.0, 1e-300, 0.0  # (1e-300: products past the normal range)
    which = np.arange(n) % 5
    which[[2, 500, 1_500]] = 5
    grid = fd.stack(SCALED_SCHEDULES)[which] * lrs
    lam = rng.uniform(0.0, 2.0, (n, 1))
    sizes = _spy_class_rates(monkeypatch)
    kw = dict(steps=320, optimizer=optimizer, noise=noise, seed=4, dtype=dtype, weight_decay=0.01, chunk_steps=150)
    batch = fd.simulate(lam, grid, **kw)
    assert sizes and set(sizes) == {5 + 1 + 1 + 3}
    assert batch.w[11, 0] == 1.0 and np.isfinite(batch.w).all()  # (lr 0: never moved)
    monkeypatch.setattr(module, "_product_shapes", lambda *a: None)
    by_lane = fd.simulate(lam, grid, **kw)
    assert len(sizes) == 3  # (no classes: each lane's product in closed form)
    np.testing.assert_array_equal(batch.w, by_lane.w)
    for i in (0, 1, 2, 3, 5, 8, 11, 500, 1_023, 1_024, n - 1):
        alone = fd.simulate(lam[i:i + 1], SCALED_SCHEDULES[which[i]] * lrs[i], trajectory_offset=i, **kw)
        np.testing.assert_array_equal(batch.w[i], alone.w[0], err_msg=f"trajectory {i}")


def test_products_are_classed_by_their_rows_without_their_scale_as_those_rows_are_made():
    """``scaled_product_classes`` classes a table's rows by their rows without their scale as it
    makes them, keeping only each class's: the classes, scales and class rows that
    ``scaled_products`` then ``rate_classes`` over its whole table of such rows give. Over scaled
    products in turn (a product of products among them), a row whose scale is exactly 1 (which a
    product leaves out: no scale), rows that are no scaled product, and a tabulated factor; rows
    a class's first row but for their scale (classed without making their rows: each piece's scale
    the same, finite, not 0, else not), in turn after an odd row (so a period less than the
    classes); -1 where there would be more classes than its rows hold, or where no row is a scaled
    product."""
    from fastdecay import _layout as L
    from fastdecay._cpu import simulate as cpu
    from fastdecay.simulate import _kept_words

    rng = np.random.default_rng(8)
    lrs = rng.uniform(0.1, 2.0, 300)
    lrs[7] = 1.0
    lrs[40:300:50] = 0.0
    makes = [lambda k: SCALED_SCHEDULES[k % 6] * lrs[k],
             lambda k: (SCALED_SCHEDULES[k % 3] * lrs[k]) * (fd.cosine(1.0, 80) * 2.0) if k % 4 else fd.cosine(0.05, 90),
             lambda k: fd.product(SCALED_SCHEDULES[k % 3], fd.tabulated([1.0, 0.5, 0.25] * 7), lrs[k])]
    warmups = np.array(fd.stack([SCALED_SCHEDULES[k % 3] * lrs[k] for k in range(lrs.shape[0])]).rows())
    pieces = np.flatnonzero(np.isfinite(warmups[0, :, L.START]) & (warmups[0, :, L.KIND] == L.PRODUCT))
    scale_rows = (warmups[0, pieces, L.P0] + warmups[0, pieces, L.P0 + 1] - 1).astype(int)
    assert len(scale_rows) == 2
    warmups[9::13, scale_rows[1], L.P0] *= 1.5  # (pieces scaled unlike each other: no scaled product)
    warmups[11::17, scale_rows[0], L.P0 + 2] = 7.0  # (another word of the scale's row: another class)
    warmups.flags.writeable = False
    for make in makes + [None]:
        table = warmups if make is None else fd.stack([make(k) for k in range(lrs.shape[0])]).rows()
        n, most = table.shape[0], 100
        reads = np.empty(table.shape[1], np.int64)
        unit, want_scales = np.empty_like(table), np.empty(n)
        assert cpu.scaled_products(table, unit, want_scales, reads) > 0
        want_classes, want_first, want_sizes = (np.empty(n, np.int64), np.empty(most, np.int64),
                                                np.empty(most, np.int64))
        slots = np.empty(1 << (2 * most).bit_length(), np.int64)
        count = cpu.rate_classes(unit, want_classes, want_first, want_sizes, slots, 0, _kept_words(unit), -1,
                                 np.empty(0, np.int64), np.empty((0, n)))
        assert 0 < count < most
        classes, first, sizes, scales = (np.empty(n, np.int64), np.empty(most, np.int64), np.empty(most, np.int64),
                                         np.empty(n))
        units = np.empty((most + 1,) + table.shape[1:])
        class_rows, masks = np.empty(3 * most, np.int64), np.empty((most + 1, table[0].size), np.uint64)
        assert cpu.scaled_product_classes(table, classes, units, first, sizes, scales, slots, reads, class_rows,
                                          masks) == count
        np.testing.assert_array_equal(classes, want_classes)
        np.testing.assert_array_equal(sizes[:count], want_sizes[:count])
        np.testing.assert_array_equal(first[:count], np.arange(count))
        np.testing.assert_array_equal(units[:count].view(np.uint64), unit[want_first[:count]].view(np.uint64))
        np.testing.assert_array_equal(scales, want_scales)
        assert cpu.scaled_product_classes(table, classes, units[:count], first, sizes, scales, slots, reads,
                                          class_rows, masks) == -1
    plain = fd.stack([fd.cosine(0.05, 90 + k % 3) for k in range(100)]).rows()
    units = np.empty((11,) + plain.shape[1:])
    assert cpu.scaled_product_classes(plain, np.empty(100, np.int64), units, np.empty(10, np.int64),
                                      np.empty(10, np.int64), np.empty(100), np.empty(32, np.int64),
                                      np.empty(plain.shape[1], np.int64), np.empty(30, np.int64),
                                      np.empty((11, plain[0].size), np.uint64)) == -1


def test_which_scaled_grids_read_their_schedules_once_a_step(monkeypatch):
    """Products are read by the rows without their last number where that number is each row's
    one scale (a product of products, and with a tabulated factor, too): not where a factor folds
    the lr into its own fields (a step schedule's piece, whose ``(lr c) gamma ** e`` is no
    product), not where the rows without it are not 16 times fewer than the trajectories, not for
    a product of two schedules without a number, not where the number's row is read as another
    factor too (a table by hand). Each run has its products' bits."""
    n = 400
    lrs = 0.5 + 1e-3 * np.arange(n)
    lam = np.random.default_rng(3).uniform(0.0, 2.0, (n, 1))
    kw = dict(steps=120, optimizer="momentum")
    def shared_number(k):  # (a table by hand: both pieces read the row of the number, the second twice)
        t = np.zeros((5, L.WIDTH))
        t[0, [L.START, L.KIND, L.P0, L.P0 + 1]] = 0, L.PRODUCT, 2, 2  # the cosine times row 3
        t[1, [L.START, L.KIND, L.P0, L.P0 + 1]] = 50, L.PRODUCT, 3, 2  # row 3 times row 4
        t[2, [L.START, L.KIND, L.P0, L.P0 + 1]] = np.nan, L.COSINE, 0.05, 100
        t[3:, [L.START, L.KIND, L.P0]] = np.nan, L.CONSTANT, lrs[k]
        return fd.Schedule(t, "by hand")

    cases = [(lambda k: SCALED_SCHEDULES[k % 5] * lrs[k], True),
             # (a product of products: the inner one's factors, carried along unread, hold the lr)
             (lambda k: (SCALED_SCHEDULES[k % 3] * lrs[k]) * (fd.cosine(1.0, 80) * 2.0), True),
             (lambda k: fd.product(SCALED_SCHEDULES[k % 3], fd.tabulated([1.0, 0.5, 0.25] * 7), lrs[k]), True),
             (lambda k: fd.warmup(fd.step(0.05, 0.5, 20 + k % 3), 10) * lrs[k], False),
             (lambda k: fd.warmup(fd.cosine(0.05, 100), 1 + k % 30) * lrs[k], False),  # (30 rows: 13 trajectories a row)
             (lambda k: fd.cosine(0.05, 100) * fd.cosine(lrs[k], 80 + k % 3), False),
             (shared_number, False)]
    for make, scaled in cases:
        _assert_read_by_classes(monkeypatch, [make(k) for k in range(n)], lam, scaled, **kw)


@pytest.mark.parametrize("family, optimizer, noise, dtype", [
    ("warmup-cosine", "gd", 0.0, np.float64), ("warmup-cosine", "momentum", 0.1, np.float32),
    ("warmup-cosine", "adamw", 0.0, np.float64), ("warmup-step", "nesterov", 0.0, np.float64),
    ("wsd", "gd", 0.1, np.float64), ("wsd", "lion", 0.0, np.float64)])
def test_warmups_with_an_lr_a_trajectory_run_in_phases_with_each_schedule_s_bits(monkeypatch, family, optimizer, noise,
                                                                                dtype):
    """A grid with an lr a trajectory whose rows change kind at the same steps (a linear warmup,
    then a cosine or a step schedule; warmup, stable, decay) runs in phases: a warmup from 0 read by
    its line's shape (a rising line: ``(0 - lr) x + lr``), one from another start and the stable
    phase lane by lane in closed form, the cosine's (the step schedule's, the decay's) read by their
    shapes at lr 1 (``class_rates``; chunks cut at the phases' starts). Every trajectory has the
    bits of its schedule run alone, and of the run without phases."""
    from fastdecay._cpu import simulate as cpu

    module = importlib.import_module("fastdecay.simulate")
    n = 1_200
    rng = np.random.default_rng(5)
    lr = 10.0 ** rng.uniform(-3.0, -1.0, n)
    lr[3] = 0.0
    own = np.arange(n) % 5
    make = {"warmup-cosine": lambda lr, k: fd.warmup(fd.cosine(lr, 150.0 + 7 * k), 12),
            "warmup-step": lambda lr, k: fd.warmup(fd.step(lr, 0.5, 11 + 3 * k), 12, start_lr=1e-4),
            "wsd": lambda lr, k: fd.wsd(lr, 300, warmup_steps=20, decay_steps=60,
                                        decay="cosine" if k % 2 else "linear")}[family]
    schedules = [make(lr[i], own[i]) for i in range(n)]
    lam = rng.uniform(0.0, 2.0, (n, 1))
    sizes = []
    spied = cpu.class_rates
    monkeypatch.setattr(cpu, "class_rates", lambda *a: (sizes.append((a[4], a[5])), spied(*a)))
    kw = dict(steps=300, optimizer=optimizer, noise=noise, seed=7, dtype=dtype, weight_decay=0.01, chunk_steps=64)
    batch = fd.simulate(lam, fd.stack(schedules), **kw)
    # (the first step read by classes, and how many: a warmup from 0 from step 0)
    first_shaped, shaped = {"warmup-cosine": (0, 300), "warmup-step": (12, 288), "wsd": (0, 20 + 60)}[family]
    assert sizes and sizes[0][0] == first_shaped and sum(count for _, count in sizes) == shaped
    monkeypatch.setattr(module, "_lr_phases", lambda *a: None)
    whole = fd.simulate(lam, fd.stack(schedules), **kw)
    np.testing.assert_array_equal(batch.w, whole.w)
    for i in (0, 3, 599, n - 1):
        alone = fd.simulate(lam[i:i + 1], schedules[i], trajectory_offset=i, **kw)
        np.testing.assert_array_equal(batch.w[i], alone.w[0], err_msg=f"trajectory {i}")


@pytest.mark.parametrize("optimizer, noise, dtype", [("gd", 0.0, np.float64), ("momentum", 0.0, np.float32),
                                                     ("nesterov", 0.1, np.float64), ("adamw", 0.0, np.float64)])
def test_rising_lines_with_an_lr_a_trajectory_read_their_shapes_with_each_schedule_s_bits(monkeypatch, optimizer,
                                                                                          noise, dtype):
    """Lines and polynomials from 0 to an lr of its own a trajectory (linear warmups alone over a
    random search of lrs; powers 2 and 0.5, a cycling one) over 5 shapes: the lanes read each
    shape's x (``class_rates`` over 5 rows) and compute ``(0 - lr) x + lr``, the closed form's own
    operations, with lrs of 0, -0.0, a tiny one and a large one: every trajectory has the
    bits of each lane's closed form and of its schedule alone. A line from another start is no
    such shape."""
    module = importlib.import_module("fastdecay.simulate")
    n = 2_100
    rng = np.random.default_rng(17)
    lr = 10.0 ** rng.uniform(-3.0, -1.0, n)
    lr[[5, 6, 7, 8]] = 0.0, -0.0, 1e-300, 2.5  # (-0.0: held as 0.0 by the factories, which refuse lrs below 0)
    shapes = [lambda lr: fd.linear(0.0, lr, 300), lambda lr: fd.linear(0.0, lr, 97.5),
              lambda lr: fd.polynomial(0.0, 180, end_lr=lr, power=2.0),
              lambda lr: fd.polynomial(0.0, 40, end_lr=lr, power=0.5, cycle=True), lambda lr: fd.linear(0.0, lr, 7)]
    own = np.arange(n) % len(shapes)
    grid = fd.stack([shapes[k](lr[i]) for i, k in enumerate(own)])
    lam = rng.uniform(0.0, 2.0, (n, 1))
    sizes = _spy_class_rates(monkeypatch)
    kw = dict(steps=400, optimizer=optimizer, noise=noise, seed=2, dtype=dtype, weight_decay=0.01, chunk_steps=150)
    batch = fd.simulate(lam, grid, **kw)
    assert sizes and set(sizes) == {len(shapes)}
    assert batch.w[5, 0] == batch.w[6, 0] == 1.0  # (lr 0 never moves)
    monkeypatch.setattr(module, "_lr_shapes", lambda *a: None)
    by_lane = fd.simulate(lam, grid, **kw)
    assert len(sizes) == 3  # (no classes: each lane's rate in closed form)
    np.testing.assert_array_equal(batch.w, by_lane.w)
    for i in (0, 1, 5, 6, 7, 8, 1_023, n - 1):
        alone = fd.simulate(lam[i:i + 1], grid[i], trajectory_offset=i, **kw)
        np.testing.assert_array_equal(batch.w[i], alone.w[0], err_msg=f"trajectory {i}")
    monkeypatch.undo()
    sizes = _spy_class_rates(monkeypatch)
    fd.simulate(lam, fd.stack([fd.linear(1e-4, lr[i], 50 + own[i]) for i in range(n)]), **kw)
    assert not sizes


def test_phases_take_segments_of_closed_forms_only():
    """``_lr_phases`` runs a warmup's grid in phases where every row's segments are closed forms
    (cosines, step schedules, lines; one kind a segment or mixed), not where any row's segment is
    a plain exponential (which a lone row advances by its ratio), whichever row it is."""
    module = importlib.import_module("fastdecay.simulate")
    n = 64
    lr = 0.05 * (1.0 + 1e-3 * np.arange(n))
    after = [lambda k, lr: fd.cosine(lr, 90 + k % 3), lambda k, lr: fd.step(lr, 0.5, 20 + k % 3),
             lambda k, lr: fd.linear(lr, 0.0, 80)]
    for kinds, phased in (([0], True), ([1], True), ([0, 1, 2], True)):
        grid = fd.stack([fd.warmup(after[kinds[k % len(kinds)]](k, lr[k]), 10) for k in range(n)])
        assert (module._lr_phases(grid, (n,), n, 100) is not None) == phased, kinds
    for plain in (0, n - 1, n // 2):
        rows = [fd.warmup(fd.exponential(lr[k], gamma=0.99) if k == plain else fd.cosine(lr[k], 90 + k % 3), 10)
                for k in range(n)]
        assert module._lr_phases(fd.stack(rows), (n,), n, 100) is None, plain


def test_phases_need_every_row_s_segments_to_start_where_the_first_row_s_do():
    """``_lr_phases`` runs phases only where every row's segments start at the first row's steps:
    not where one row's warmup is longer, or one row has a segment more (the others' padding starts
    at inf), whichever row it is; its one pass over the rows (``segments_like_first_row``) also
    tells which segments are of one kind."""
    from fastdecay import _layout as L
    from fastdecay._cpu import simulate as cpu

    module = importlib.import_module("fastdecay.simulate")
    n = 64
    lr = 0.05 * (1.0 + 1e-3 * np.arange(n))
    assert module._lr_phases(fd.stack([fd.warmup(fd.cosine(lr[k], 90), 10) for k in range(n)]), (n,), n, 100)
    for odd in (0, n // 2, n - 1):
        longer = fd.stack([fd.warmup(fd.cosine(lr[k], 90), 12 if k == odd else 10) for k in range(n)])
        assert module._lr_phases(longer, (n,), n, 100) is None, odd
        more = fd.stack([fd.join([fd.linear(0.0, lr[k], 10), fd.cosine(lr[k], 60), fd.constant(0.001)], [10, 70])
                         if k == odd else fd.warmup(fd.cosine(lr[k], 90), 10) for k in range(n)])
        assert module._lr_phases(more, (n,), n, 100) is None, odd
    mixed = fd.stack([fd.warmup(fd.cosine(lr[k], 90) if k % 2 else fd.step(lr[k], 0.5, 20), 10) for k in range(n)])
    one_kind = np.zeros(2, np.bool_)
    assert cpu.segments_like_first_row(mixed.rows(), one_kind)
    assert one_kind.tolist() == [True, False]
    table = np.array(mixed.rows())
    table[5, 1, L.START] = np.nan
    table.flags.writeable = False  # (the kernels take the tables read-only)
    assert not cpu.segments_like_first_row(table, one_kind)


def _assert_same_phases(got, want):
    """Two ``_lr_phases`` answers are the same phases: steps, classes, scales and lanes, bit for bit."""
    assert (got is None) == (want is None)
    if got is None:
        return
    assert [(p.start, p.stop, p.classes is None) for p in got] == [(p.start, p.stop, p.classes is None) for p in want]
    for g, w in zip(got, want):
        # (the lanes' table, rows, ratios and state; a class lanes' state is scratch but for its scales, last)
        n = g.source[1].shape[0]
        for k, (a, b) in enumerate(zip(g.source, w.source)):
            if k == 3 and g.classes is not None:
                a, b = a[-n:], b[-n:]
            np.testing.assert_array_equal(np.asarray(a).view(np.uint8), np.asarray(b).view(np.uint8))
        if g.classes is not None:
            np.testing.assert_array_equal(g.classes.classes, w.classes.classes)
            np.testing.assert_array_equal(g.classes.scales.view(np.uint64), w.classes.scales.view(np.uint64))
            assert g.classes.rises == w.classes.rises
            for a, b in zip(g.classes.source, w.classes.source):
                np.testing.assert_array_equal(np.asarray(a).view(np.uint8), np.asarray(b).view(np.uint8))


def test_phases_classed_by_whole_rows_are_each_phase_s_classes(monkeypatch):
    """``_lr_phases`` classes the rows whole but for their lrs (``_phases_by_whole_rows``: one pass
    over the table) and gets the phases, classes, scales and lanes that classing each phase's
    segment apart gives: a warmup then cosines of 5 lengths, warmup-stable-decay (a constant
    between, cosine or linear decays), a warmup from another start before step schedules (a
    phase without shapes, its words left out too), lrs of 0 among them. A plain exponential in one
    row: no phases, told by the first rows. Where the whole rows make more classes than pay (a
    warmup's length a row but for two: no phases either way), or a segment whose end was left out
    is an exponential in a row (a step schedule before the cosine, where the others warm up by a
    line), or a phase sampled as shapes has none after all (one row's cosine to a floor), each
    phase is classed apart, with the same answer."""
    module = importlib.import_module("fastdecay.simulate")
    n = 800
    rng = np.random.default_rng(23)
    lr = 10.0 ** rng.uniform(-3.0, -1.0, n)
    lr[[4, 9]] = 0.0
    own = np.arange(n) % 5
    grids = {
        "warmup-cosine": [fd.warmup(fd.cosine(lr[i], 90 + own[i]), 10) for i in range(n)],
        "wsd": [fd.wsd(lr[i], 300, warmup_steps=20, decay_steps=60, decay="cosine" if own[i] % 2 else "linear")
                for i in range(n)],
        "warmup-step": [fd.warmup(fd.step(lr[i], 0.5, 11 + 3 * own[i]), 12, start_lr=1e-4) for i in range(n)],
        "warmup-lengths": [fd.warmup(fd.cosine(lr[i], 90), 10 if i in (0, 1) else 10 + i) for i in range(n)],
        "one-plain": [fd.warmup(fd.exponential(lr[i], gamma=0.99) if i == 401 else fd.cosine(lr[i], 90), 10)
                      for i in range(n)],
        "one-floor": [fd.warmup(fd.cosine(lr[i], 90, min_lr=1e-5 if i == 401 else 0.0), 10) for i in range(n)],
        "one-step-warmup": [fd.join([fd.step(1e-4, 0.9, 3), fd.cosine(lr[i], 90)], [10]) if i == 401
                            else fd.warmup(fd.cosine(lr[i], 90), 10, start_lr=1e-4) for i in range(n)],
    }
    # the answer of the whole rows (None: classed apart), and whether there are phases
    whole_rows = {"warmup-cosine": True, "wsd": True, "warmup-step": True, "warmup-lengths": None, "one-plain": False,
                  "one-floor": None, "one-step-warmup": None}
    phased = {"warmup-cosine": True, "wsd": True, "warmup-step": True, "warmup-lengths": False, "one-plain": False,
              "one-floor": True, "one-step-warmup": True}
    by_rows = module._phases_by_whole_rows
    answers: list = []
    monkeypatch.setattr(module, "_phases_by_whole_rows", lambda *a: answers.append(by_rows(*a)) or answers[-1])
    for name, rows in grids.items():
        grid = fd.stack(rows)
        answers.clear()
        got = module._lr_phases(grid, (n,), n, 300)
        assert (got is not None) == phased[name], name
        assert len(answers) == 1, name
        assert answers[0] is None if whole_rows[name] is None else answers[0] is False if whole_rows[name] is False \
            else isinstance(answers[0], list), (name, answers[0])
        with monkeypatch.context() as apart:
            apart.setattr(module, "_phases_by_whole_rows", lambda *a: None)
            _assert_same_phases(got, module._lr_phases(grid, (n,), n, 300))


def test_phases_start_at_the_first_step_of_their_segment_and_are_few(monkeypatch):
    """A segment that starts between two steps (a table built by hand: 29.5) holds from the next
    step on, in phases too (the phase began a step early, at the next segment's rate); a schedule of
    more than ``_PHASES_MOST`` segments runs without phases. The bits of the run without phases."""
    from fastdecay import _layout as L
    from fastdecay._cpu import simulate as cpu

    module = importlib.import_module("fastdecay.simulate")
    n = 32
    lr = np.linspace(0.05, 0.1, n)
    table = np.zeros((n, 2, L.WIDTH))
    table[:, 0, L.KIND], table[:, 0, L.P0] = L.CONSTANT, 0.001 * np.arange(1, n + 1)
    table[:, 1, :L.P0 + 3] = 29.5, 29.0, L.COSINE, 0.0, 100.0, 0.0  # a cosine to 0 from 29.5
    table[:, 1, L.P0] = lr
    hand = fd.Schedule(table, "by hand")
    many = fd.stack([fd.join([fd.constant(lr[i]), fd.cosine(lr[i], 40), fd.constant(0.01), fd.cosine(lr[i], 30),
                              fd.linear(lr[i], 0.0, 50)], [10, 50, 60, 90]) for i in range(n)])
    lam = np.linspace(0.1, 1.9, n)[:, None]
    calls = []
    spied = cpu.class_rates
    monkeypatch.setattr(cpu, "class_rates", lambda *a: (calls.append(a[4]), spied(*a)))
    got = [fd.simulate(lam, s, steps=120, optimizer="momentum") for s in (hand, many)]
    assert calls and set(calls) == {30}  # (the hand-built table's cosine from step 30; none for the five segments)
    monkeypatch.setattr(module, "_lr_phases", lambda *a: None)
    for s, g in zip((hand, many), got):
        np.testing.assert_array_equal(g.w, fd.simulate(lam, s, steps=120, optimizer="momentum").w)
    alone = fd.simulate(lam[:1], hand[0], steps=120, optimizer="momentum")
    np.testing.assert_array_equal(got[0].w[0], alone.w[0])


def test_shapes_are_not_read_where_scaled_would_round_otherwise_than_the_closed_form(monkeypatch, signed_cosine):
    """A cosine's or polynomial's closed form is 0 + lr y: ``scaled(lr, y)`` only while y is finite
    and lr is not -0.0. Not read by shapes, and each trajectory with its schedule's bits: a
    polynomial whose origin is past 0 (x > 1 before it, whose power overflows: NaN at lr 0), and
    a grid of cosines with an lr of -0.0 (whose closed form is +0.0)."""
    from fastdecay import _layout as L
    from fastdecay._cpu import simulate as cpu

    def shifted(lr, origin):
        row = np.zeros((1, L.WIDTH))
        row[0, L.ORIGIN], row[0, L.KIND] = origin, L.POLYNOMIAL
        row[0, L.P0:L.P0 + 5] = (lr, 0.001, 200.0, 0.0, 0.0)  # lr, T, power, end 0, no cycle
        return fd.Schedule(row, "polynomial")

    n = 64
    lr = 0.01 * (1.0 + np.arange(n) / n)
    lr[5] = 0.0
    lam = np.ones((n, 1))
    signed = lr.copy()
    signed[5] = -0.0
    calls = []
    spied = cpu.class_rates
    monkeypatch.setattr(cpu, "class_rates", lambda *a: (calls.append(1), spied(*a)))
    for schedules, w0 in (([shifted(lr[i], 50.0 + i % 3) for i in range(n)], 1.0),
                          ([signed_cosine(signed[i], 50.0 + i % 3) for i in range(n)], -0.0)):
        kw = dict(steps=10, optimizer="gd", w0=w0)
        batch = fd.simulate(lam, fd.stack(schedules), **kw)
        assert calls == []
        for i in (0, 5, n - 1):
            alone = fd.simulate(lam[i:i + 1], schedules[i], trajectory_offset=i, **kw)
            np.testing.assert_array_equal(batch.w[i], alone.w[0])
            assert np.isnan(alone.w[0, 0]) or np.signbit(batch.w[i, 0]) == np.signbit(alone.w[0, 0])
        if w0 == 1.0:
            assert np.isnan(batch.w[5, 0]) and batch.diverged == n  # (0 * inf at lr 0, as the closed form)
    # the same grids with origin 0 and an lr of +0.0 are read by their shapes
    fd.simulate(lam, fd.stack([shifted(lr[i], 0.0) for i in range(n)]), steps=10)
    fd.simulate(lam, fd.stack([fd.cosine(lr[i], 50.0 + i % 3) for i in range(n)]), steps=10)
    assert len(calls) == 2


@pytest.mark.parametrize("d, n, noise, optimizer, sorted_", [
    (3, 200, 0.0, "momentum", False), (1_100, 4, 0.0, "adamw", False), (5, 200, 0.1, "nesterov", True),
    (5, 200, 0.1, "adam", False), (1_100, 4, 0.1, "gd", False), (3, 200, 0.0, "lion", False)])
def test_a_grid_over_trajectories_of_several_coordinates_runs_grouped_with_each_schedule_s_bits(
        monkeypatch, d, n, noise, optimizer, sorted_):
    """A few schedules over trajectories of ``d`` coordinates (one longer than a tile among them)
    run grouped by class, each trajectory's coordinates moved together (a starting point a
    coordinate), with noise laid out by class already or not (each element draws its
    trajectory's normals wherever it runs): every trajectory has the bits of its schedule run
    alone."""
    distinct, own, lam, w0 = _few_schedules_over(n, d, sorted_, 4, 20, 90)
    taken = _spy_on_groups(monkeypatch, 4)  # (their d)
    kw = dict(steps=300, optimizer=optimizer, noise=noise, seed=5, weight_decay=0.01, chunk_steps=128)
    batch = fd.simulate(lam, fd.stack([distinct[j] for j in own]), w0=w0, **kw)
    assert taken and set(taken) == {d}
    for i in sorted({0, 1, n // 2, n - 1}):
        alone = fd.simulate(lam[i:i + 1], distinct[own[i]], w0=w0[i:i + 1], trajectory_offset=i, **kw)
        np.testing.assert_array_equal(batch.w[i], alone.w[0], err_msg=f"trajectory {i}")


_RECORDED = ("w", "loss", "displacement", "lr")


def _few_schedules_over(n, d, sorted_, k, period, total):
    """(k step schedules and cosines, 2 below 8 trajectories; the schedule of each of ``n``
    trajectories, one after another or sorted by schedule; their curvatures and starting points of
    ``d`` coordinates)."""
    distinct = [fd.step(0.05, 0.5, period + j) if j % 2 else fd.cosine(0.05, total + j)
                for j in range(2 if n < 8 else k)]
    own = np.arange(n) * len(distinct) // n if sorted_ else np.arange(n) % len(distinct)
    rng = np.random.default_rng(d)
    return distinct, own, rng.uniform(0.0, 2.0, (n, d)), rng.uniform(-1.0, 1.0, (n, d))


def _spy_on_groups(monkeypatch, argument):
    """The list that gets argument ``argument`` of each call of ``simulate_groups``."""
    from fastdecay._cpu import simulate as cpu

    taken = []
    spied = cpu.simulate_groups
    monkeypatch.setattr(cpu, "simulate_groups", lambda *a: (taken.append(a[argument]), spied(*a)))
    return taken


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adamw", "lion"])
@pytest.mark.parametrize("d, n, noise, sorted_", [(1, 700, 0.0, False), (3, 200, 0.0, False), (1, 700, 0.1, True),
                                                 (1, 700, 0.1, False), (3, 200, 0.1, False), (1_100, 4, 0.0, False)])
def test_a_recording_grid_runs_grouped_with_each_trajectory_s_records_alone(monkeypatch, optimizer, d, n, noise,
                                                                            sorted_):
    """A grid of a few schedules over many curvatures, recorded, runs grouped by class (32 elements
    a class or more): each class's stretch records as its schedule alone, into the trajectories'
    own rows (with noise, each element draws its trajectory's normals, laid out by
    class already or not). Weights, losses, displacements and rates are the bits of each
    trajectory's schedule run alone, and of the same grid run without grouping (the general
    kernel), with chunks that end between and on recorded steps."""
    import importlib

    distinct, own, lam, w0 = _few_schedules_over(n, d, sorted_, 5, 7, 40)
    taken = _spy_on_groups(monkeypatch, 16)  # (their every)
    grid = fd.stack([distinct[j] for j in own])
    # (chunks that end inside a Philox counter, between and on recorded steps)
    for every, chunk in ((1, 5), (3, 13), (9, None)) if noise else ((1, 8), (5, 13), (7, None)):
        kw = dict(steps=53, optimizer=optimizer, noise=noise, seed=5, weight_decay=0.01, every=every,
                  chunk_steps=chunk)
        taken.clear()
        batch = fd.simulate(lam, grid, w0=w0, **kw)
        assert taken and set(taken) == {every}
        assert np.isfinite(batch.loss).all()
        for i in sorted({0, 1, n // 2, n - 1}):
            alone = fd.simulate(lam[i:i + 1], distinct[own[i]], w0=w0[i:i + 1], trajectory_offset=i, **kw)
            for field in _RECORDED:
                np.testing.assert_array_equal(getattr(batch, field)[i], getattr(alone, field)[0],
                                              err_msg=f"every={every} trajectory {i} {field}")
        with monkeypatch.context() as m:
            m.setattr(importlib.import_module("fastdecay.simulate"), "_GROUP_SHARING_RECORDED", 10**9)
            m.setattr(importlib.import_module("fastdecay.simulate"), "_GROUP_SHARING_RECORDED_NOISY", 10**9)
            taken.clear()
            general = fd.simulate(lam, grid, w0=w0, **kw)
            assert not taken
        for field in _RECORDED:
            np.testing.assert_array_equal(getattr(batch, field), getattr(general, field),
                                          err_msg=f"every={every} {field}")


@pytest.mark.parametrize("n, d, sorted_, noise, every, grouped", [
    (24 * 32, 1, False, 0.0, 1, True), (24 * 31, 1, False, 0.0, 6, False), (24 * 64, 1, True, 0.1, 8, True),
    (24 * 64, 1, False, 0.1, 1, True), (24 * 63, 1, False, 0.1, 8, False), (24 * 64, 1, False, 0.1, 3, True),
    (24 * 8, 5, False, 0.1, 2, True), (24 * 7, 5, False, 0.1, 2, False), (24 * 7, 5, False, 0.0, 2, True)])
def test_which_recording_grids_run_grouped(monkeypatch, n, d, sorted_, noise, every, grouped):
    """A recorded grid of 24 distinct rows runs grouped from 32 elements a row (with noise, from 64
    trajectories a row of one coordinate, laid out by class or not, recording however often; of
    several coordinates, from 8 trajectories a row); else the general kernel runs it. The records
    are each trajectory's alone either way."""
    distinct = [fd.step(0.05, 0.5, 20 + j) if j % 2 else fd.exponential(0.05, gamma=0.99 - 0.001 * j)
                for j in range(24)]
    own = np.arange(n) * 24 // n if sorted_ else np.arange(n) % 24
    lam = np.random.default_rng(1).uniform(0.0, 2.0, (n, d))
    taken = _spy_on_groups(monkeypatch, 16)
    kw = dict(steps=60, optimizer="nesterov", noise=noise, seed=5, every=every)
    batch = fd.simulate(lam, fd.stack([distinct[k] for k in own]), **kw)
    assert bool(taken) == grouped
    for i in (0, 1, 23, n - 1):
        alone = fd.simulate(lam[i:i + 1], distinct[own[i]], trajectory_offset=i, **kw)
        for field in _RECORDED:
            np.testing.assert_array_equal(getattr(batch, field)[i], getattr(alone, field)[0],
                                          err_msg=f"trajectory {i} {field}")


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("noise", [0.0, 0.2])
def test_a_recording_run_of_one_schedule_is_one_class_with_the_bits_of_copies_a_trajectory(
        monkeypatch, optimizer, noise):
    """A recording run under one schedule (trajectories of up to a tile's coordinates) runs as one
    class of the grouped kernels: its records are those of the same schedule given as a copy a
    trajectory (which the general kernel runs trajectory by trajectory), on odd sizes, in chunks
    that end between and on recorded steps, with the buffer reset at drops."""
    import importlib

    taken = _spy_on_groups(monkeypatch, 16)  # (their every)
    s = fd.step(0.3 if optimizer in ("gd", "momentum", "nesterov", "momentum_lr_in_buffer") else 0.01, 0.5, 7)
    for d, n in ((1, 2_049), (3, 401), (1_024, 3)):
        lam = np.random.default_rng(d).uniform(-0.05, 2.0, (n, d))
        for dtype in (np.float64, np.float32):
            for every, chunk in ((1, 8), (4, 9)):
                kw = dict(steps=30, optimizer=optimizer, noise=noise, seed=3, weight_decay=0.01, every=every,
                          chunk_steps=chunk, dtype=dtype, on_drop="reset")
                taken.clear()
                shared = fd.simulate(lam, s, **kw)
                assert taken and set(taken) == {every}
                taken.clear()
                with monkeypatch.context() as m:  # (copies of one row are one class: not grouped here)
                    m.setattr(importlib.import_module("fastdecay.simulate"), "_GROUP_SHARING_RECORDED", 10**9)
                    m.setattr(importlib.import_module("fastdecay.simulate"), "_GROUP_SHARING_RECORDED_NOISY", 10**9)
                    copies = fd.simulate(lam, fd.stack([s] * n), **kw)
                assert not taken
                for field in _RECORDED:
                    np.testing.assert_array_equal(getattr(shared, field), getattr(copies, field),
                                                  err_msg=f"d={d} {dtype.__name__} every={every} {field}")


# a grid of hyperparameters a trajectory (each a few values, distinct or as schedules), and the
# learning-rate schedules some grids cross them with
_HYPER_GRIDS = {
    "momentum": dict(momentum=[0.0, 0.5, 0.9]),
    "momentum schedules": dict(momentum=[fd.constant(0.9), fd.linear(0.5, 0.95, 40), fd.cosine(0.9, 30)]),
    "weight decay": dict(weight_decay=[0.0, 1e-3, 0.05]),
    "beta1": dict(betas=[0.5, 0.9, 0.95]),
    "beta1 schedules": dict(betas=[fd.constant(0.9), fd.linear(0.8, 0.95, 40)]),
    "momentum and weight decay": dict(momentum=[0.5, 0.9], weight_decay=[0.0, 0.05]),
    "beta1 and weight decay": dict(betas=[0.5, 0.9], weight_decay=[0.0, 0.05]),
}
_GRID_SCHEDULES = [fd.step(0.05, 0.5, 7), fd.cosine(0.05, 50)]
_NO_GROUPS = ("_GROUP_SHARING", "_GROUP_SHARING_CHEAP_LANES", "_GROUP_SHARING_RECORDED",
              "_GROUP_SHARING_RECORDED_NOISY", "_GROUP_SHARING_MOMENTA", "_GROUP_SHARING_MOMENTA_NOISY")


def _hyper_grid(grid, n, sorted_, with_schedules):
    """(the keyword arguments of a grid over ``n`` trajectories, each trajectory's own as one run
    alone takes them, its learning-rate schedule): each hyperparameter's values in turn (and the
    schedules' after them, ``with_schedules``), or sorted by class."""
    axes = [(name, values) for name, values in _HYPER_GRIDS[grid].items()]
    if with_schedules:
        axes.append(("schedule", _GRID_SCHEDULES))
    sizes = [len(values) for _, values in axes]
    order = np.arange(n) * math.prod(sizes) // n if sorted_ else np.arange(n)
    own = {}
    width = 1
    for name, values in axes:
        own[name] = order // width % len(values)
        width *= len(values)
    batch, alone = {}, [dict() for _ in range(n)]
    for name, values in axes:
        picked = [values[k] for k in own[name]]
        if any(isinstance(v, fd.Schedule) for v in values):
            batch[name] = fd.stack(picked)
        else:
            batch[name] = fd.constant(np.array(picked)) if name == "betas" else np.array(picked)
        for i in range(n):
            alone[i][name] = picked[i]
    if "betas" in batch:
        batch["betas"] = (batch["betas"], 0.999)
        for a in alone:
            a["betas"] = (a["betas"], 0.999)
    schedules = [a.pop("schedule", _GRID_SCHEDULES[0]) for a in alone]
    return batch, alone, batch.pop("schedule", _GRID_SCHEDULES[0]), schedules


@pytest.mark.parametrize("optimizer, grid, with_schedules", [
    ("momentum", "momentum", False), ("nesterov", "momentum", True),
    ("momentum_lr_in_buffer", "momentum schedules", False),
    ("momentum", "momentum schedules", True), ("gd", "weight decay", False), ("momentum", "weight decay", True),
    ("adamw", "beta1", False), ("adam", "beta1 schedules", True), ("lion", "beta1", False),
    ("momentum", "momentum and weight decay", False), ("adamw", "beta1 and weight decay", True)])
@pytest.mark.parametrize("d, noise, every, sorted_, on_drop", [
    (1, 0.0, None, False, "keep"), (1, 0.1, None, False, "reset"), (3, 0.0, 5, False, "keep"),
    (1, 0.1, 8, True, "keep"), (1, 0.0, None, True, "rescale")])
def test_a_grid_of_momenta_or_weight_decays_runs_grouped_with_each_trajectory_s_bits(
        monkeypatch, optimizer, grid, with_schedules, d, noise, every, sorted_, on_drop):
    """A grid of momenta, weight decays or beta1s (numbers or schedules; alone or across a grid of
    learning-rate schedules) over many curvatures runs grouped by the combination of its rows, each
    class as its rates alone (with noise, each element draws its trajectory's normals, laid out by
    class already or not; recorded; the momentum's buffer kept, reset or rescaled at its class's
    drops): weights and records are the bits of each trajectory run alone with its own values, and
    of the whole grid on the general kernel."""
    n = (1_600 if noise and d == 1 else 1_200) // d  # (at least 192 a class with noise, 64 else: up to 8 classes)
    batch, alone, schedule, schedules = _hyper_grid(grid, n, sorted_, with_schedules)
    rng = np.random.default_rng(d)
    lam, w0 = rng.uniform(0.0, 2.0, (n, d)), rng.uniform(-1.0, 1.0, (n, d))
    kw = dict(steps=60, optimizer=optimizer, noise=noise, seed=5, every=every, on_drop=on_drop, chunk_steps=23)
    fields = _RECORDED if every else ("w",)
    taken = _spy_on_groups(monkeypatch, 4)  # (their d)
    grouped = fd.simulate(lam, schedule, w0=w0, **batch, **kw)
    assert taken and set(taken) == {d}
    for i in sorted({0, 1, 2, 7, n // 2, n - 1}):
        one = fd.simulate(lam[i:i + 1], schedules[i], w0=w0[i:i + 1], trajectory_offset=i, **alone[i], **kw)
        for field in fields:
            np.testing.assert_array_equal(getattr(grouped, field)[i], getattr(one, field)[0],
                                          err_msg=f"trajectory {i} {field}")
    with monkeypatch.context() as m:
        for name in _NO_GROUPS:
            m.setattr(importlib.import_module("fastdecay.simulate"), name, 10**9)
        taken.clear()
        general = fd.simulate(lam, schedule, w0=w0, **batch, **kw)
        assert not taken
    for field in fields:
        np.testing.assert_array_equal(getattr(grouped, field), getattr(general, field), err_msg=field)


@pytest.mark.parametrize("grid, n, d, noise, every, grouped", [
    ("momentum", 48, 1, 0.0, None, True), ("momentum", 47, 1, 0.0, None, False),
    ("momentum", 96, 1, 0.1, None, True), ("momentum", 95, 1, 0.1, None, False),
    ("momentum", 64, 3, 0.0, None, True), ("momentum", 63, 3, 0.0, None, False),
    ("momentum", 96, 1, 0.0, 4, True), ("momentum", 95, 1, 0.0, 4, False),
    ("momentum", 192, 1, 0.1, 8, True), ("momentum", 191, 1, 0.1, 8, False), ("momentum", 192, 1, 0.1, 1, True),
    ("weight decay", 192, 1, 0.0, None, True), ("weight decay", 191, 1, 0.0, None, False),
    ("weight decay", 576, 1, 0.1, None, True), ("weight decay", 575, 1, 0.1, None, False)])
def test_which_grids_of_momenta_run_grouped(monkeypatch, grid, n, d, noise, every, grouped):
    """Three momenta over many curvatures of one coordinate run grouped where they outnumber them 16
    times (32 with noise; the other way computes each trajectory's coefficients every step); over
    several coordinates, and three weight decays, where their elements outnumber them 64 times (192
    with noise at one coordinate), as a grid of learning-rate schedules does; recorded, 32 times (64
    with noise). Below, the general kernel (or a weight decay's
    vector loops) runs them. The results are each trajectory's alone either way."""
    batch, alone, schedule, _ = _hyper_grid(grid, n, False, False)
    lam = np.random.default_rng(2).uniform(0.0, 2.0, (n, d))
    taken = _spy_on_groups(monkeypatch, 4)
    kw = dict(steps=40, optimizer="momentum", noise=noise, seed=5, every=every)
    res = fd.simulate(lam, schedule, **batch, **kw)
    assert bool(taken) == grouped
    assert res.loss is None or np.isfinite(res.loss).all()
    for i in (0, 1, 2, n - 1):
        one = fd.simulate(lam[i:i + 1], schedule, trajectory_offset=i, **alone[i], **kw)
        np.testing.assert_array_equal(res.w[i], one.w[0], err_msg=f"trajectory {i}")


@pytest.mark.parametrize("name", ["schedule", "momentum", "weight_decay"])
@pytest.mark.parametrize("values", ["few", "one", "each its own"])
@pytest.mark.parametrize("noise, every", [(0.0, None), (0.1, None), (0.1, 4), (0.0, 3)])
def test_an_array_of_rates_runs_as_its_batch_of_constants(name, values, noise, every):
    """An array of learning rates, momenta or weight decays over many trajectories (1,100 members
    broadcast over 3 x 1,100 curvatures) is held by its distinct values where they are few; a run
    of it has the bits of the same values given as a batch of constants (``fd.constant(array)``,
    a table row a member) on the path that runs it (grouped by value; the general kernel's lanes,
    recording often with noise), where every member is the same (a shared rate) and where each is
    its own (a constant a member)."""
    rng = np.random.default_rng(11)
    numbers = {"few": np.resize([0.02, 0.05, 0.0, 0.03], 1_100), "one": np.full(1_100, 0.04),
               "each its own": rng.uniform(0.0, 0.05, 1_100)}[values]
    if name == "momentum":
        numbers = numbers * 18.0  # (momenta up to 0.9)
    lam = rng.uniform(0.0, 2.0, (3, 1_100, 1))
    kw = dict(steps=30, optimizer="momentum", noise=noise, seed=2, every=every, weight_decay=0.01, momentum=0.5)
    schedule = fd.step(0.05, 0.5, 7)

    def run(rate):  # (the learning rate, or the named rate with the step schedule)
        if name == "schedule":
            return fd.simulate(lam, rate, **kw)
        return fd.simulate(lam, schedule, **{**kw, name: rate})

    array = numbers[None, :]  # (shape (1, 1100): broadcast over the curvatures' first axis)
    as_array, as_table = run(array), run(fd.constant(array))
    for field in _RECORDED if every else ("w",):
        np.testing.assert_array_equal(getattr(as_array, field), getattr(as_table, field), err_msg=field)
    assert as_array.w.shape == (3, 1_100, 1)
    if values == "one":  # (the number itself)
        np.testing.assert_array_equal(as_array.w, run(float(numbers[0])).w)


def test_a_schedule_batch_broadcast_over_a_leading_dimension_of_one():
    """A schedule batch of shape (3,) over trajectories of shape (1, 3): the rows of the
    trajectories are a copy (NumPy's broadcast to a leading 1 is a read-only view), and the run is
    the first of the same over (2, 3)."""
    s = fd.stack([fd.cosine(0.1, 10), fd.step(0.1, 0.5, 3), fd.cosine(0.1, 10)])
    one = fd.simulate(np.ones((1, 3, 1)), s, steps=10)
    two = fd.simulate(np.ones((2, 3, 1)), s, steps=10)
    np.testing.assert_array_equal(one.w[0], two.w[0])


def test_distinct_values_number_the_values_by_their_bits():
    """``distinct_values``: equal bits share a number (-0.0 is not 0.0), numbered in order of first
    appearance with where each first appears, in any layout (values in turn, runs of one value,
    scattered); -1 past the limit."""
    from fastdecay._cpu.simulate import distinct_values

    def number(values, most):
        values = np.array(values, dtype=np.float64)
        values.flags.writeable = False
        index, first = np.empty(values.size, np.int64), np.empty(most, np.int64)
        count = distinct_values(values, index, first, np.empty(1 << (2 * most).bit_length(), np.int64))
        return count, index.tolist(), first[:max(count, 0)].tolist()

    assert number([0.5, 0.0, -0.0, 0.5, 0.9, 0.0], 4) == (4, [0, 1, 2, 0, 3, 1], [0, 1, 2, 4])
    assert number([0.5, 0.0, -0.0, 0.5, 0.9, 0.0], 3)[0] == -1
    turns = np.resize([0.1, 0.2, 0.3], 300)
    count, index, first = number(turns, 8)
    assert (count, first) == (3, [0, 1, 2]) and index == (np.arange(300) % 3).tolist()
    runs = np.repeat([0.3, 0.1, 0.2], 100)
    count, index, first = number(runs, 8)
    assert (count, first) == (3, [0, 100, 200]) and index == (np.arange(300) // 100).tolist()
    scattered = np.random.default_rng(0).choice([1.0, 2.0, 3.0, 4.0, 5.0], 1_000)
    count, index, first = number(scattered, 5)
    assert count == 5 and (scattered[first][index] == scattered).all()
    assert sorted(scattered[first].tolist()) == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_rate_classes_number_the_rows_by_their_bits(signed_cosine):
    """``rate_classes``: rows of the same bits share a class (NaN payloads compared as bits), a
    min_lr of -0.0 is not one of 0.0, a later segment that differs makes another class; classes
    are numbered in order of first appearance with their first rows; -1 past the limit, and past
    another for a table whose sampled rows all advance by a ratio (exponentials, constants); by the
    words a mask keeps (a segment's, but for an lr), taking the words left out of every row."""
    from fastdecay._cpu.simulate import rate_classes
    from fastdecay._layout import COSINE, WIDTH
    from fastdecay.simulate import _kept_words

    def number(table, classes, first, sizes, slots, most_if_ratios, skip, segment):
        """``rate_classes`` by segment ``segment``'s words (-1: every segment's) but its word ``skip``
        (-1: none), taking that word of each row too."""
        skips = () if skip < 0 else (skip,)
        taken = np.full((len(skips), table.shape[0]), np.nan)
        count = rate_classes(table, classes, first, sizes, slots, most_if_ratios, _kept_words(table, segment, skips),
                             segment, np.array(skips, np.int64), taken)
        if count >= 0 and skips:
            np.testing.assert_array_equal(taken[0], table[:, max(segment, 0), skip])
        return count

    s = fd.stack([fd.cosine(0.1, 10), fd.step(0.1, 0.5, 3), fd.cosine(0.1, 10), signed_cosine(0.1, 10, min_lr=-0.0),
                  fd.multistep(0.1, 0.5, [5, 9]), fd.multistep(0.1, 0.5, [5, 10]), fd.step(0.1, 0.5, 3),
                  fd.multistep(0.1, 0.5, [5, 10]), signed_cosine(0.1, 10, min_lr=-0.0)])
    classes, first, sizes = np.empty(s.size, np.int64), np.empty(9, np.int64), np.empty(9, np.int64)
    slots = np.empty(32, np.int64)
    assert number(s.rows(), classes, first, sizes, slots, 0, -1, -1) == 5
    assert classes.tolist() == [0, 1, 0, 2, 3, 4, 1, 4, 2]
    assert first[:5].tolist() == [0, 1, 3, 4, 5]
    assert sizes[:5].tolist() == [2, 2, 2, 1, 2]
    assert number(s.rows(), classes, first[:4], sizes[:4], slots[:16], 0, -1, -1) == -1
    payloads = np.zeros((3, 2, WIDTH))
    payloads[:, 0, :6] = (0.0, 0.0, COSINE, 0.1, 10.0, 0.0)
    payloads[:, 1] = np.nan  # (a side row's fields)
    payloads[2, 1, 4] = np.float64(np.uint64(0x7FF8000000000001).view(np.float64))  # another NaN
    assert number(payloads, classes, first, sizes, slots, 0, -1, -1) == 2
    assert classes[:3].tolist() == [0, 0, 1]
    exponentials = fd.stack([fd.exponential(0.1, gamma=0.9), fd.constant(0.1)] * 4)
    assert number(exponentials.rows(), classes, first, sizes, slots, 0, -1, -1) == -1
    assert number(exponentials.rows(), classes, first, sizes, slots, 2, -1, -1) == 2  # (2 of ratios)
    assert classes[:8].tolist() == [0, 1] * 4 and sizes[:2].tolist() == [4, 4]
    assert number(exponentials.rows(), classes, first, sizes, slots, 1, -1, -1) == -1
    in_order = fd.stack([fd.cosine(0.1, 10)] * 3 + [fd.step(0.1, 0.5, 3)] * 2 + [fd.cosine(0.1, 11)])
    assert number(in_order.rows(), classes, first, sizes, slots, 0, -1, -1) == 3
    assert classes[:6].tolist() == [0, 0, 0, 1, 1, 2]
    # skipping the first segment's lr (``P0``): rows equal but for it share a class, others do not
    from fastdecay._layout import P0
    shapes = fd.stack([fd.step(0.1, 0.5, 3), fd.step(0.2, 0.5, 3), fd.step(0.1, 0.5, 4), fd.step(0.3, 0.5, 3),
                       fd.step(0.1, 0.25, 3), fd.step(0.0, 0.5, 4)])
    assert number(shapes.rows(), classes, first, sizes, slots, 0, -1, -1) == 6
    assert number(shapes.rows(), classes, first, sizes, slots, 0, P0, -1) == 3
    assert classes[:6].tolist() == [0, 0, 1, 0, 2, 1] and sizes[:3].tolist() == [3, 2, 1]
    # by one segment's words alone (a phase): warmups of two lengths before cosines of three, an lr
    # a row; the cosines' segment (1) but for its lr makes 3 classes, the warmups' (0) 2
    phases = fd.stack([fd.warmup(fd.cosine(0.1 + 0.01 * k, 50 + k % 3), 10 + k % 2) for k in range(9)])
    assert number(phases.rows(), classes, first, sizes, slots, 0, -1, -1) == 9
    assert number(phases.rows(), classes, first, sizes, slots, 0, P0, 1) == 6  # (the origins: 10 or 11)
    same_start = fd.stack([fd.warmup(fd.cosine(0.1 + 0.01 * k, 50 + k % 3), 10) for k in range(9)])
    assert number(same_start.rows(), classes, first, sizes, slots, 0, P0, 1) == 3
    assert classes[:9].tolist() == [0, 1, 2] * 3 and first[:3].tolist() == [0, 1, 2]
    assert number(same_start.rows(), classes, first, sizes, slots, 0, P0 + 3, 0) == 1  # (the warmups but for their ends)
    assert number(same_start.rows(), classes, first, sizes, slots, 0, -1, 0) == 9  # (each lr its end)


def _assert_a_grid_gives_each_schedule_s_bits(kinds, optimizer, on_drop):
    """... and where consecutive trajectories follow copies of one schedule, as a sweep's do
    (trajectories 600 on, in threes; 1,023 - 1,025 across the tiles' boundary), read once."""
    rng = np.random.default_rng(2)
    n = 1_100                                      # two tiles
    own = [i if i < 600 else 600 + (i - 600) // 3 for i in range(n)]
    schedules = [kinds[j % len(kinds)](j) for j in own]
    lam = rng.uniform(0.0, 2.0, (n, 1))
    kw = dict(steps=1_030, optimizer=optimizer, on_drop=on_drop, noise=0.05, seed=3, every=103)
    batch = fd.simulate(lam, fd.stack(schedules), chunk_steps=400, **kw)
    for i in [0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 17, 25, 26, 1_022, 1_023, 1_024, 1_025, 1_026, n - 1]:
        alone = fd.simulate(lam[i:i + 1], schedules[i], trajectory_offset=i, **kw)
        for got, want in ((batch.w, alone.w), (batch.loss, alone.loss), (batch.lr, alone.lr)):
            np.testing.assert_array_equal(got[i], want[0], err_msg=f"trajectory {i}")


@pytest.mark.parametrize("origin, decay_steps", [(0.0, 3.0), (0.0, 1.1), (0.0, 0.1), (7.0, 2.5), (0.0, 1 / 3),
                                                  (-2.5, 0.37), (0.0, 7.000000001), (0.0, 1e-3), (5.0, 1e300),
                                                  (2.0**45, 3.0), (2.0**52 - 40, 7.0)])
def test_a_staircase_is_read_again_at_the_first_step_its_closed_form_changes(origin, decay_steps):
    """``next_change`` (where a grid of step schedules reads a rate again) is the first step after
    t where floor((s - origin) / decay_steps), in the closed form's float arithmetic, passes its
    value at t, found by brute force; t + 1 before the origin and where steps pass 2**52; and
    ``plateau_continues``, asked at every step by a buffer that follows drops, by the same."""
    from fastdecay._cpu.schedule import EXPONENTIAL, next_change, plateau_continues

    def plateau(s):
        return math.floor((s - origin) / decay_steps)

    start = max(math.floor(origin) - 5, 0.0) if origin < 2.0**40 else origin - 5
    for t in np.arange(start, start + 300):
        t = float(t)
        if t < origin or plateau(t) + 1 >= 2**52 or origin + (plateau(t) + 1) * decay_steps >= 2.0**52:
            want = t + 1.0
        else:
            want = t + 1.0
            while plateau(want) == plateau(t):
                want += 1.0
        assert next_change(EXPONENTIAL, 1.0, decay_steps, origin, True, t) == want, t
        # the per-step test of a momentum buffer's drops, by the same brute force
        assert plateau_continues(EXPONENTIAL, 1.0, decay_steps, origin, True, t + 1.0) == (
            t >= origin and plateau(t + 1.0) == plateau(t)), t
    # a smooth or a joined schedule is read every step
    assert next_change(EXPONENTIAL, 0.0, decay_steps, origin, True, origin + 3.0) == origin + 4.0
    assert next_change(EXPONENTIAL, 1.0, decay_steps, origin, False, origin + 3.0) == origin + 4.0


def test_broadcasting_schedule_grid_against_curvature_grid():
    gammas = np.array([0.9, 0.97, 0.995])[:, None]         # schedule batch (3, 1)
    lam = np.array([0.1, 0.7, 1.3, 3.0])[None, :, None]     # curvature (1, 4, 1)
    s = fd.exponential(lr=0.5, gamma=gammas)
    res = fd.simulate(lam, s, steps=60, every=20)
    assert res.w.shape == (3, 4, 1) and res.loss.shape == (3, 4, 4)
    for a in range(3):
        for b in range(4):
            single = fd.simulate(lam[0, b], fd.exponential(lr=0.5, gamma=gammas[a, 0]), steps=60, every=20)
            np.testing.assert_array_equal(res.w[a, b], single.w)
            np.testing.assert_array_equal(res.loss[a, b], single.loss)


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(1, 9), d=st.integers(1, 4), steps=st.integers(0, 70),
    optimizer=st.sampled_from(OPTIMIZERS), noise=st.sampled_from([0.0, 0.1]),
    every=st.sampled_from([None, 1, 3, 200]), per=st.booleans(),
)
# once flaky (1 ulp) when the kernels let LLVM contract a*b + c into fused multiply-adds
# (each loop fused differently); n = 1 with per=True runs the shared path
@example(n=2, d=1, steps=1, optimizer="nesterov", noise=0.0, every=None, per=True)
@example(n=1, d=1, steps=3, optimizer="nesterov", noise=0.0, every=None, per=True)
@example(n=5, d=1, steps=7, optimizer="momentum_lr_in_buffer", noise=0.0, every=3, per=True)
@example(n=4, d=1, steps=9, optimizer="adam", noise=0.0, every=None, per=True)
def test_batch_equals_stack_of_singles(n, d, steps, optimizer, noise, every, per):
    """A trajectory's result does not depend on the batch it runs in.

    Bit for bit through the same path: a batch with per-trajectory rates (a
    schedule of size > 1) against a batch of two copies of one trajectory, a
    shared schedule (size 1) against the single trajectory; and across the two
    paths (shared schedule vs per-trajectory rows of the same schedule) bit for bit
    too, Adam included: no kernel contracts a*b + c into a fused multiply-add.
    """
    rng = np.random.default_rng(n * 100 + d)
    lam = rng.uniform(-0.1, 2.0, (n, d))
    s = fd.exponential(lr=0.2, gamma=rng.uniform(0.9, 1.0, n)) if per else fd.step(0.2, 0.5, 5)
    kw = dict(steps=steps, optimizer=optimizer, noise=noise, every=every, seed=5)
    res = fd.simulate(lam, s, **kw)
    for i in range(n):
        s_i = s[i] if per else s
        shared = fd.simulate(lam[i], s_i, trajectory_offset=i, **kw)      # shared-schedule path
        # per-trajectory path: a batch of two copies (a size-2 schedule)
        pair = fd.simulate(lam[[i, i]], fd.stack([s_i, s_i]), trajectory_offset=i, **kw)
        pair = fd.SimulationResult(*(None if a is None or np.ndim(a) == 0 else a[0] for a in
                                     (pair.w, None, pair.loss, pair.displacement, pair.lr)))
        one, other = (pair, shared) if per and n > 1 else (shared, pair)
        np.testing.assert_array_equal(res.w[i], one.w)
        if every:
            np.testing.assert_array_equal(res.loss[i], one.loss)
            np.testing.assert_array_equal(res.displacement[i], one.displacement)
            np.testing.assert_array_equal(res.lr[i], one.lr)
            np.testing.assert_array_equal(res.lr[i], other.lr)   # rates: one recurrence on both paths
        np.testing.assert_array_equal(res.w[i], other.w)
        if every:
            np.testing.assert_array_equal(res.loss[i], other.loss)
            np.testing.assert_array_equal(res.displacement[i], other.displacement)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("noise", [0.0, 0.2])
def test_trajectories_of_many_coordinates_give_the_same_bits_alone_in_a_batch_and_recorded(optimizer, noise):
    """Under shared rates, without recording, the loops run over tiles of 1,024 elements
    whatever d: a trajectory of 1,500 coordinates starts inside a tile and spans two or
    three, and one trajectory is shared by the threads. Its result is the same, bit for
    bit, alone (its tiles start at its coordinate 0), in a batch, on one thread, in
    one-step chunks and recorded. Recorded, its steps between the recorded ones run in
    those tiles too, a recorded step trajectory by trajectory: the recording equals that
    of per-trajectory rows of the same schedule (whole trajectories at every step)."""
    import numba

    rng = np.random.default_rng(7)
    n, d, steps = 3, 1_500, 23
    lam = rng.uniform(-0.05, 2.0, (n, d))
    lr = 0.3 if optimizer in ("gd", "momentum", "nesterov", "momentum_lr_in_buffer") else 0.01
    s = fd.step(lr, 0.5, 7)
    for dtype in (np.float64, np.float32):
        kw = dict(steps=steps, optimizer=optimizer, noise=noise, weight_decay=0.01, seed=3, dtype=dtype)
        base = fd.simulate(lam, s, **kw)
        assert np.isfinite(base.w).all()
        for i in range(n):
            alone = fd.simulate(lam[i], s, trajectory_offset=i, **kw)
            np.testing.assert_array_equal(alone.w, base.w[i], err_msg=f"{dtype.__name__} trajectory {i}")
        for extra in (dict(threads=1), dict(chunk_steps=1), dict(every=steps), dict(every=5, chunk_steps=8),
                      dict(every=1), dict(every=4, threads=1)):
            other = fd.simulate(lam, s, **kw, **extra)
            np.testing.assert_array_equal(other.w, base.w, err_msg=f"{dtype.__name__} {extra}")
            if "every" in extra:
                rows = fd.simulate(lam, fd.stack([s] * n), **kw, **extra)   # per-trajectory rows
                for field in ("w", "loss", "displacement", "lr"):
                    np.testing.assert_array_equal(getattr(other, field), getattr(rows, field),
                                                  err_msg=f"{dtype.__name__} {extra} {field}")
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS  # restored


@pytest.mark.parametrize("noise", [0.0, 0.2])
def test_the_kernel_of_every_path_gives_the_bits_of_the_two_short_kernels(monkeypatch, noise):
    """Two kinds of run take a kernel of their own, compiled in a fraction of the time: one
    schedule without recording (the element tiles' loops alone), and one coordinate with a
    learning-rate schedule a trajectory and nothing else per trajectory, without recording
    (the per-trajectory vector loops alone). The kernel of every path runs those runs too,
    in tiles of whole trajectories, with the same bits: every rule, one and several
    coordinates (a trajectory longer than a tile among them), grids of schedules that advance
    by a ratio a step and of others (a staircase, a cosine: read by rate classes in the rates
    kernel, trajectory by trajectory in the other; not grouped by class, which runs neither
    kernel), a momentum buffer that follows the drops of exponential rates, float64 and float32,
    several chunks."""
    import importlib

    from fastdecay._cpu import simulate as cpu

    module = importlib.import_module("fastdecay.simulate")
    monkeypatch.setattr(module, "_GROUP_SHARING", 10**9)
    monkeypatch.setattr(module, "_GROUP_SHARING_CHEAP_LANES", 10**9)

    shared = fd.step(0.05, 0.5, 9)
    grids = {"mixed": fd.stack([fd.exponential(0.05, gamma=0.9), fd.constant(0.02), shared] * 500),
             "cosine": fd.stack([fd.cosine(0.05, 21), fd.exponential(0.05, gamma=0.9)] * 750),
             "exponential": fd.stack([fd.exponential(0.05, gamma=0.9), fd.constant(0.02)] * 750)}
    chosen = cpu.kernel_path
    runs, taken = {}, []
    for forced in (False, True):
        def choice(*args, forced=forced):
            taken.append((forced, chosen(*args)))
            return "every" if forced else taken[-1][1]

        monkeypatch.setattr(cpu, "kernel_path", choice)
        if forced:  # (the grids of few rows read them by their classes in the rates kernel: not here)
            monkeypatch.setattr(module, "_CLASS_SHARING", 10**9)
        for optimizer in OPTIMIZERS:
            for dtype in (np.float64, np.float32):
                kw = dict(steps=21, optimizer=optimizer, noise=noise, weight_decay=0.01, seed=9, dtype=dtype,
                          chunk_steps=8)
                for d in (1, 7, 1_100):
                    lam = np.random.default_rng(d).uniform(0.0, 2.0, (max(1, 3_000 // d), d))
                    runs.setdefault((optimizer, dtype, d), []).append(fd.simulate(lam, shared, **kw).w)
                lam = np.random.default_rng(1).uniform(0.0, 2.0, (1_500, 1))
                for name, grid in grids.items():
                    runs.setdefault((optimizer, dtype, name), []).append(
                        fd.simulate(lam, grid, **kw).w)
                runs.setdefault((optimizer, dtype, "drops followed"), []).append(
                    fd.simulate(lam, grids["exponential"], on_drop="rescale", **kw).w)
    assert {path for forced, path in taken if not forced} == {"elementwise", "rates"}
    for key, (short, every_path) in runs.items():
        assert np.isfinite(short).all(), key
        np.testing.assert_array_equal(every_path, short, err_msg=str(key))


@pytest.mark.parametrize("optimizer", ["gd", "nesterov", "adamw"])
@pytest.mark.parametrize("per", [False, True])
def test_chunking_threads_and_recording_do_not_change_results(optimizer, per):
    import numba

    rng = np.random.default_rng(0)
    lam = rng.uniform(0.0, 2.0, (3001, 1))       # several tiles, an odd last one
    s = fd.exponential(lr=0.3, gamma=rng.uniform(0.95, 1.0, 3001)) if per else fd.step(0.3, 0.5, 13)
    kw = dict(steps=150, optimizer=optimizer, noise=0.02, seed=1)
    base = fd.simulate(lam, s, **kw)
    for extra in (dict(chunk_steps=1), dict(chunk_steps=17), dict(threads=1), dict(every=4, chunk_steps=64)):
        other = fd.simulate(lam, s, **kw, **extra)
        np.testing.assert_array_equal(other.w, base.w, err_msg=str(extra))
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS  # restored
    numba.set_num_threads(1)
    try:
        np.testing.assert_array_equal(fd.simulate(lam, s, **kw).w, base.w)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "nesterov", "momentum_lr_in_buffer", "adamw", "lion"])
@pytest.mark.parametrize("per", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_noiseless_step_blocks_give_the_bits_of_one_step_a_pass(optimizer, per, weight_decay):
    """Noiseless runs take their steps in blocks (several steps a pass over a tile, the
    state in registers); one-step chunks, recording every step and the rates' anchor at
    step 1,024 take one step a pass. Every way gives the same bits, float64 and float32."""
    rng = np.random.default_rng(3)
    n = 1_500                                     # two tiles, an odd last one
    lam = rng.uniform(0.0, 2.0, (n, 1))
    lr = 0.3 if optimizer in ("gd", "momentum", "nesterov", "momentum_lr_in_buffer") else 0.01
    s = fd.exponential(lr=lr, gamma=rng.uniform(0.995, 1.0, n)) if per else fd.exponential(lr=lr, gamma=0.998)
    for dtype in (np.float64, np.float32):
        kw = dict(steps=1_030, optimizer=optimizer, weight_decay=weight_decay, dtype=dtype)
        base = fd.simulate(lam, s, **kw)
        assert np.isfinite(base.w).all()
        for extra in (dict(chunk_steps=1), dict(chunk_steps=7), dict(every=1), dict(every=3, chunk_steps=101)):
            other = fd.simulate(lam, s, **kw, **extra)
            np.testing.assert_array_equal(other.w, base.w, err_msg=f"{dtype.__name__} {extra}")


def test_trajectory_offset_draws_the_noise_of_the_whole_batch():
    lam = np.linspace(0.1, 1.0, 40).reshape(20, 2)
    whole = fd.simulate(lam, 0.1, steps=30, noise=0.3, seed=99, optimizer="momentum")
    part = fd.simulate(lam[12:], 0.1, steps=30, noise=0.3, seed=99, optimizer="momentum", trajectory_offset=12)
    np.testing.assert_array_equal(part.w, whole.w[12:])
    other_seed = fd.simulate(lam, 0.1, steps=30, noise=0.3, seed=100, optimizer="momentum")
    assert not np.any(other_seed.w == whole.w)


def test_noise_statistics_of_gd_stationary_variance():
    """GD with constant rate on ½λw² plus N(0, σ²) gradient noise: Var w_∞ = η σ² / (λ (2 − ηλ))."""
    lam, eta, sigma = 1.0, 0.1, 1.0
    res = fd.simulate(np.full((20000, 1), lam), eta, steps=300, noise=sigma, w0=0.0, seed=3)
    var = eta * sigma**2 / (lam * (2 - eta * lam))
    assert abs(res.w.var() / var - 1) < 0.05
    assert abs(res.w.mean()) < 5 * np.sqrt(var / 20000)


def test_divergence_is_counted_and_confined():
    lam = np.array([[0.5], [3.0], [1.0], [50.0]])   # |1 - 3|^1100 and |1 - 50|^1100 overflow
    res = fd.simulate(lam, 1.0, steps=1100, every=100)
    assert res.diverged == 2
    assert np.all(np.isfinite(res.w[[0, 2]])) and not np.any(np.isfinite(res.w[[1, 3]]))
    assert np.all(np.isfinite(res.loss[[0, 2]]))


def test_finite_values_whose_sum_overflows_are_finite():
    # the finiteness checks sum first (one pass): a sum of finite values that overflows
    # must neither refuse the curvature nor count the trajectories as diverged
    big = np.finfo(np.float64).max
    res = fd.simulate(np.array([[big], [big], [1.0]]), 0.0, steps=3)        # the curvature's sum overflows
    assert res.diverged == 0 and res.w.tolist() == [[1.0], [1.0], [1.0]]
    res = fd.simulate(np.ones((3, 1)), 0.0, steps=3, w0=[[big], [big], [1.0]])   # the weights' sum overflows
    assert res.diverged == 0 and res.w[0, 0] == big
    res = fd.simulate(np.ones((3, 2)), 0.0, steps=3, w0=[[big, big], [1.0, 1.0], [1.0, -big]])
    assert res.diverged == 0
    with pytest.raises(ValueError, match="curvature"):
        fd.simulate(np.array([[big], [-big], [np.nan]]), 0.1, steps=1)


def test_negative_curvature_grows_without_error():
    res = fd.simulate(np.array([-0.5, 0.5]), 0.1, steps=10)
    np.testing.assert_allclose(res.w, [1.05**10, 0.95**10], rtol=1e-14)


def test_steps_zero_and_scalar_problem_shapes():
    res = fd.simulate([2.0, 3.0], 0.1, steps=0, every=1, w0=[1.0, -2.0])
    assert res.w.tolist() == [1.0, -2.0]
    assert res.steps.tolist() == [0] and res.loss.tolist() == [0.5 * (2 + 12)]
    assert res.displacement.tolist() == [0.0] and res.lr.tolist() == [0.1]
    assert fd.simulate(np.ones((2, 3, 4)), 0.1, steps=3).w.shape == (2, 3, 4)
    assert fd.simulate(np.ones((0, 4)), 0.1, steps=3, every=1).loss.shape == (0, 4)


def test_float32_runs_in_float32_and_no_worse_than_torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(2)
    rng = np.random.default_rng(1)
    lam = rng.uniform(0.01, 1.5, (257, 1))
    s = fd.step(0.5, 0.5, 50)
    steps = 300
    for optimizer in ("gd", "momentum", "adamw"):
        kw = dict(steps=steps, optimizer=optimizer, weight_decay=0.01 if optimizer == "adamw" else 0.0)
        truth = fd.simulate(lam, s, **kw).w
        ours = fd.simulate(lam, s, dtype=np.float32, **kw).w
        assert ours.dtype == np.float32
        p = torch.nn.Parameter(torch.ones(257, 1, dtype=torch.float32))
        lam_t = torch.from_numpy(lam.astype(np.float32))
        if optimizer == "adamw":
            opt = torch.optim.AdamW([p], lr=0.5, weight_decay=0.01, foreach=False)
        else:
            opt = torch.optim.SGD([p], lr=0.5, momentum=0.9 if optimizer == "momentum" else 0.0, foreach=False)
        for t in range(steps):
            opt.param_groups[0]["lr"] = s(t)
            p.grad = lam_t * p.detach()
            opt.step()
        err_ours = np.max(np.abs(ours - truth))
        err_torch = np.max(np.abs(p.detach().numpy() - truth))
        assert err_ours <= max(2 * err_torch, 1e-6), (optimizer, err_ours, err_torch)


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "nesterov", "adam", "adamw"])  # torch has no lr-in-buffer
def test_float64_matches_torch_optim(optimizer):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    lam = rng.uniform(0.01, 1.5, (31, 3))
    s = fd.multistep(0.4, 0.3, [40, 90])
    steps, wd = 200, 0.02
    res = fd.simulate(lam, s, steps=steps, optimizer=optimizer, weight_decay=wd, momentum=0.85)
    p = torch.nn.Parameter(torch.ones(31, 3, dtype=torch.float64))
    if optimizer == "adam":
        opt = torch.optim.Adam([p], lr=0.4, weight_decay=wd, foreach=False)
    elif optimizer == "adamw":
        opt = torch.optim.AdamW([p], lr=0.4, weight_decay=wd, foreach=False)
    else:
        opt = torch.optim.SGD([p], lr=0.4, weight_decay=wd, foreach=False,
                              momentum=0.0 if optimizer == "gd" else 0.85, nesterov=optimizer == "nesterov")
    lam_t = torch.from_numpy(lam)
    for t in range(steps):
        opt.param_groups[0]["lr"] = s(t)
        p.grad = lam_t * p.detach()
        opt.step()
    _close(res.w, p.detach().numpy())


def test_torch_tensor_in_torch_tensor_out():
    torch = pytest.importorskip("torch")
    lam = torch.linspace(0.1, 1.0, 6, dtype=torch.float64).reshape(3, 2)
    res = fd.simulate(lam, fd.constant(0.2), steps=5, every=5)
    assert isinstance(res.w, torch.Tensor) and isinstance(res.loss, torch.Tensor)
    np.testing.assert_array_equal(res.w.numpy(), fd.simulate(lam.numpy(), 0.2, steps=5).w)
    assert fd.simulate(lam, 0.2, steps=5, dtype=torch.float32).w.dtype == torch.float32


def test_progress_is_called_between_chunks():
    calls = []
    fd.simulate(np.ones((5, 1)), 0.1, steps=25, chunk_steps=10, progress=lambda a, b: calls.append((a, b)))
    assert calls == [(10, 25), (20, 25), (25, 25)]


def test_default_chunks_are_sized_by_time():
    """Without chunk_steps the first chunk is short (about 2e6 element-steps) and the
    next ones aim at about 0.25 s each at the measured rate, growing at most 4x a
    chunk (unless the rest of the run fits in the aim: then it is the last chunk) and
    never past 65,536 steps; a short noiseless SGD-family run under shared rates is
    one chunk."""
    module = importlib.import_module("fastdecay.simulate")
    calls = []
    n = 2**14
    fd.simulate(np.ones((n, 1)), 0.1, steps=20_000, progress=lambda a, b: calls.append(a))
    sizes = np.diff([0] + calls)
    assert calls[-1] == 20_000 and sizes[0] == module._FIRST_CHUNK_ELEMENT_STEPS // n
    # How many chunks the run takes depends on the machine's speed (a fast one runs the
    # rest in one chunk): check the rule on every chunk but the last, whatever their count.
    assert np.all(sizes[1:-1] <= module._CHUNK_GROWTH * sizes[:-2])
    assert np.all(sizes <= module._CHUNK_STEPS_MAX)
    assert module._next_chunk(100, 0.025) == 400            # 10x faster than the aim: at most 4x more steps
    assert module._next_chunk(100, 2.5) == 10               # 10x slower: a tenth
    assert module._next_chunk(1, 60.0) == 1                 # never below one step
    assert module._next_chunk(60_000, 0.001) == module._CHUNK_STEPS_MAX
    assert module._next_chunk(100, 0.025, remaining=900) == 900    # the rest fits in the aim: one chunk
    assert module._next_chunk(100, 0.025, remaining=1001) == 400   # it does not: at most 4x
    assert module._next_chunk(100, 1e-9, remaining=70_000) == 400  # beyond the step cap: grows as before
    calls.clear()
    fd.simulate(np.ones((n, 1)), 0.1, steps=300, every=300, progress=lambda a, b: calls.append(a))
    assert calls == [module._FIRST_CHUNK_ELEMENT_STEPS // n, 300]   # a short run: the first chunk, then the rest
    # a noiseless SGD-family run under shared rates that the floor rate finishes within the
    # aim is one chunk; the first run above (3.3e8 element-steps) is not
    assert n * 20_000 > module._SGD_VECTOR_FLOOR_RATE * module._CHUNK_SECONDS >= n * 300
    for kw in (dict(), dict(optimizer="nesterov", momentum=0.9)):
        calls.clear()
        fd.simulate(np.ones((n, 1)), 0.1, steps=300, progress=lambda a, b: calls.append(a), **kw)
        assert calls == [300]


SIGINT_SCRIPT = """
import signal, sys, time, numpy as np, fastdecay as fd
# Ctrl-C as in a terminal, whatever this process inherited (a shell's background job, as some
# CI runners start the suite, ignores SIGINT, and children inherit that)
signal.signal(signal.SIGINT, signal.default_int_handler)
def progress(done, total):
    print(time.monotonic(), done, flush=True)
try:
    fd.simulate(np.ones((200_000, 1)), 0.1, steps=2**31, noise=0.1, optimizer="adamw", progress=progress)
except KeyboardInterrupt:
    print("interrupted", time.monotonic(), flush=True)
    sys.exit(3)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_ends_a_long_noisy_run_within_a_second_or_two():
    """A SIGINT to a process inside a long noisy simulation (2**31 steps) becomes a
    KeyboardInterrupt between chunks, within about a second: chunks are sized by
    measured time, so even on a loaded machine none runs much over 0.25 s."""
    proc = subprocess.Popen([sys.executable, "-c", SIGINT_SCRIPT], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        lines = [proc.stdout.readline() for _ in range(8)]  # compiled, and a few timed chunks run
        assert all(lines), lines
        time.sleep(0.1)  # into the next chunk
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 3, out
    ended = float(out.split("interrupted")[1].split()[0])
    assert ended - sent < 1.5, f"KeyboardInterrupt {ended - sent:.2f} s after the signal"


def test_final_only_memory_is_o_batch():
    """No batch x steps array: a 2000-step final-only run allocates about what a 1-step run does."""
    import tracemalloc

    lam = np.linspace(0.1, 1.0, 50_000)[:, None]
    s = fd.exponential(lr=0.1, gamma=np.linspace(0.99, 0.999, 50_000))
    fd.simulate(lam, s, steps=3)  # compile
    peaks = []
    for steps in (1, 2000):
        tracemalloc.start()
        fd.simulate(lam, s, steps=steps)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < peaks[0] + 1_000_000, peaks
    assert peaks[1] < 8 * 50_000 * 8, peaks    # a few O(batch) float64 arrays


def test_import_fastdecay_stays_light():
    code = ("import sys, fastdecay as fd; "
            "assert 'numba' not in sys.modules and 'torch' not in sys.modules, sorted(sys.modules)")
    import subprocess

    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs, exc, needle", [
    (dict(optimizer="sgd"), ValueError, "optimizer"),
    (dict(optimizer=None), ValueError, "optimizer"),
    (dict(steps=-1), ValueError, "steps"),
    (dict(steps=2.5), ValueError, "steps"),
    (dict(steps="10"), TypeError, "steps"),
    (dict(steps=True), TypeError, "steps"),
    (dict(steps=np.timedelta64(5)), TypeError, "steps must be an integer, got the time"),
    (dict(every=np.timedelta64(1)), TypeError, "every must be an integer, got the time"),
    (dict(every=0), ValueError, "every"),
    (dict(every=1.5), ValueError, "every"),
    (dict(noise=-0.1), ValueError, "noise"),
    (dict(noise=float("nan")), ValueError, "noise"),
    (dict(betas=(0.9, 1.0)), ValueError, "betas[1]"),
    (dict(betas=(-0.1, 0.9)), ValueError, "betas[0]"),
    (dict(betas=0.9), TypeError, "betas"),
    (dict(momentum=-0.5), ValueError, "momentum"),
    (dict(eps=-1.0), ValueError, "eps"),
    (dict(on_drop="zero"), ValueError, "on_drop"),
    (dict(weight_decay=-0.1), ValueError, "weight_decay"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=2**64), ValueError, "seed"),
    (dict(dtype=np.int32), TypeError, "dtype"),
    (dict(w0=np.ones(3)), ValueError, "w0"),
    (dict(w0=np.nan), ValueError, "w0"),
    (dict(every=None, chunk_steps=0), ValueError, "chunk_steps"),
    (dict(progress=5), TypeError, "progress"),
    (dict(threads=0), ValueError, "threads"),
    (dict(trajectory_offset=-3), ValueError, "trajectory_offset"),
])
def test_bad_arguments_name_themselves(kwargs, exc, needle):
    args = dict(steps=10)
    args.update(kwargs)
    with pytest.raises(exc, match=needle.replace("[", r"\[").replace("]", r"\]")):
        fd.simulate(np.ones((4, 2)), fd.constant(0.1), **args)


@pytest.mark.parametrize("curvature, needle", [
    (np.array([[1.0, np.inf]]), "curvature"),
    (np.array([[1.0, np.nan]]), "curvature"),
    (np.float64(1.0), "curvature"),
    (np.ones((3, 0)), "curvature"),
    ("abc", "curvature"),
])
def test_bad_curvature(curvature, needle):
    with pytest.raises((ValueError, TypeError), match=needle):
        fd.simulate(curvature, 0.1, steps=3)


def test_a_masked_curvature_is_checked_under_its_mask_too():
    """A masked array's sum skips what the mask hides: the data the run would read is checked."""
    with pytest.raises(ValueError, match=r"(?s)curvature must be finite.*first bad element nan"):
        fd.simulate(np.ma.array([1.0, np.nan, np.inf], mask=[0, 1, 1]), 0.1, steps=3)
    np.testing.assert_array_equal(fd.simulate(np.ma.array([1.0, 2.0]), 0.1, steps=3).w,
                                  fd.simulate(np.array([1.0, 2.0]), 0.1, steps=3).w)


def test_values_beyond_float32_are_refused_in_a_float32_run():
    """Finite as given, inf as the run would hold them."""
    with pytest.raises(ValueError, match=r"curvature must be within float32's range with dtype=float32, got 1e\+39"):
        fd.simulate([1.0, 1e39], 0.1, steps=1, dtype=np.float32)
    with pytest.raises(ValueError, match=r"w0 must be within float32's range with dtype=float32, got -1e\+39"):
        fd.simulate([1.0], 0.1, steps=1, w0=-1e39, dtype=np.float32)
    with pytest.raises(ValueError, match=r"noise must be within float32's range with dtype=float32, got 1e\+300"):
        fd.simulate([1.0], 0.1, steps=1, noise=1e300, dtype=np.float32)
    assert np.isfinite(fd.simulate([1e38], 1e-38, steps=1, dtype=np.float32).w).all()


def test_a_noise_that_rounds_to_0_in_float32_is_refused_in_a_float32_run():
    """It ran noiseless, silently (sigma held in float32 as the weights are)."""
    with pytest.raises(ValueError, match=r"noise must not round to 0 in float32 with dtype=float32 .*got 1e-50"):
        fd.simulate([1.0], 0.1, steps=1, noise=1e-50, dtype=np.float32)
    tiny = float(np.finfo(np.float32).smallest_subnormal)
    noisy = fd.simulate([0.0], 1.0, steps=1, noise=tiny, w0=0.0, dtype=np.float32)  # the smallest float32: runs
    assert noisy.w.dtype == np.float32 and noisy.w[0] != 0.0
    assert fd.simulate([1.0], 0.1, steps=1, noise=1e-50).w.dtype == np.float64  # float64 holds it


def test_batches_that_cannot_fit_in_memory_are_refused_by_name_before_any_work():
    """A curvature batch broadcast against a schedule batch: 200,000 x 200,000 trajectories."""
    lam, s = np.ones((200_000, 1, 1)), fd.constant(np.full(200_000, 0.1))
    where = r"curvature of shape \(200000, 1, 1\) with the schedule's batch_shape \(200000,\) .* asks for a result"
    with pytest.raises(ValueError, match=where):
        fd.simulate(lam, s, steps=1)
    with pytest.raises(ValueError, match=where):
        fd.expected_loss(lam, s, steps=1)
    with pytest.raises(ValueError, match=where):
        fd.steps_to_target(lam, s, 0.1, steps=1)
    with pytest.raises(ValueError, match=r"the schedule's batch_shape \(200000,\) with curvature \(200000, 1\) asks"):
        fd.stability_onset(s, lam[..., 0], max_steps=3)
    with pytest.raises(ValueError, match=r"chunk_steps=2147483648 asks for a result of shape \(2147483649, "):
        fd.simulate([1.0], 0.1, steps=2**31, chunk_steps=2**31)


def test_schedule_batch_must_broadcast_with_curvature_batch():
    with pytest.raises(ValueError, match="schedule batch_shape"):
        fd.simulate(np.ones((4, 2)), fd.exponential(lr=0.1, gamma=[0.9, 0.99, 0.999]), steps=3)
    with pytest.raises(ValueError, match="weight_decay"):
        fd.simulate(np.ones((4, 2)), 0.1, weight_decay=fd.constant([0.1, 0.2, 0.3]), steps=3)
    with pytest.raises(ValueError, match="schedule"):
        fd.simulate(np.ones((4, 2)), -0.1, steps=3)


def test_recordings_that_cannot_fit_in_memory_are_refused_by_name_before_any_work():
    with pytest.raises(ValueError, match=r"every=1 asks for a result of shape \(3, 4096, 1000001\)"):
        fd.simulate(np.ones((4096, 1)), 0.01, steps=10**6, every=1)
    with pytest.raises(ValueError, match=r"every=1 asks for a result of shape \(2, 40960, 1000001\)"):
        fd.expected_loss(np.ones((40960, 1)), 0.01, steps=10**6, every=1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_simulated_adam_is_the_fused_updates_bit_for_bit(optimizer, dtype):
    """The simulations run Adam's rule as the fused updates do: 300 steps of a step schedule
    with weight decay on 37 quadratics give the same bits both ways (the gradient lambda * w
    computed here as the simulation computes it). Both divide the root by its bias correction
    through a hoisted reciprocal and two FMAs (``rules.root_over``); torch's division is the
    reference of ``test_adam_is_torch_s_fused_adam_bit_for_bit``."""
    rng = np.random.default_rng(5)
    lam = rng.uniform(0.01, 3.0, 37).astype(dtype)
    s, steps = fd.step(0.05, 0.5, 70), 300
    res = fd.simulate(lam[:, None], s, steps=steps, optimizer=optimizer, weight_decay=0.01, dtype=dtype)
    w, m, v = np.ones(37, dtype), np.zeros(37, dtype), np.zeros(37, dtype)
    for t in range(steps):
        fd.adamw_step(w, lam * w, m, v, step=t, lr=s, weight_decay=0.01, decoupled=optimizer == "adamw")
    np.testing.assert_array_equal(res.w[:, 0], w)
    assert np.all(np.abs(w) < 0.5)  # (the weights moved: a run that did nothing would pass)


@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_a_recording_run_of_trajectories_longer_than_a_tile_records_each_step_it_ran(noise):
    """Trajectories longer than a tile under one schedule, recorded (a kernel of their own: the steps
    between recorded ones in element tiles, each recorded step trajectory by trajectory): the final
    weights have the bits of the run without recording, whatever the chunks and threads, and
    each recorded loss, displacement and rate is the one of the run stopped at that step."""
    rng = np.random.default_rng(11)
    lam = rng.uniform(0.0, 2.0, (3, 1_100))
    s = fd.step(0.05, 0.5, 9)
    kw = dict(optimizer="adamw", noise=noise, seed=3, weight_decay=0.01)
    plain = fd.simulate(lam, s, steps=23, **kw)
    runs = [fd.simulate(lam, s, steps=23, every=5, **kw, **extra)
            for extra in ({}, dict(chunk_steps=7), dict(chunk_steps=5, threads=1))]
    for run in runs:
        np.testing.assert_array_equal(run.w, plain.w)
        for field in ("loss", "displacement", "lr"):
            np.testing.assert_array_equal(getattr(run, field), getattr(runs[0], field))
    run = runs[0]
    assert list(run.steps) == [0, 5, 10, 15, 20]
    for j, t in enumerate(run.steps):
        w_t = fd.simulate(lam, s, steps=int(t), **kw).w
        np.testing.assert_allclose(run.loss[..., j], 0.5 * (lam * w_t ** 2).sum(-1), rtol=1e-12)
        np.testing.assert_allclose(run.lr[..., j], s(int(t)), rtol=1e-15)
        if t > 0:
            w_prev = fd.simulate(lam, s, steps=int(t) - 1, **kw).w
            np.testing.assert_allclose(run.displacement[..., j], np.linalg.norm(w_t - w_prev, axis=-1), rtol=1e-12)
