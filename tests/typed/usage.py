"""Typical calls of fastdecay, as a user's typed code makes them: tests/test_types.py
runs mypy on this file (it is type-checked, never run) and expects no error.

Each ``check_*`` function is one use; the declared types of the assignments are what
the library promises to return.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray

import fastdecay as fd
import fastdecay.torch
from fastdecay.sweep import SweepResult, load_sweep, parse_config


def check_schedules() -> None:
    s: fd.Schedule = fd.warmup(fd.cosine(0.1, total_steps=1_000), 100)
    rate: float | NDArray[np.float64] = s(10)
    table: NDArray[np.float64] = s.table(1_000)
    table32: NDArray[np.float32] = s.table(1_000, dtype=np.float32)
    into: torch.Tensor = s.table(10, out=torch.empty(10))
    grid: fd.Schedule = fd.exponential(lr=0.1, gamma=np.linspace(0.9, 0.999, 8))
    shape: tuple[int, ...] = grid.batch_shape
    scaled: fd.Schedule = 0.5 * fd.step(0.1, 0.5, 10)
    product: fd.Schedule = fd.cosine(1.0, 100) * fd.linear(0.0, 1.0, 10)
    joined = fd.join([fd.constant(0.1), fd.exponential(0.1, rate=0.01)], [50])
    stacked = fd.stack([joined, fd.piecewise([10, 20], [0.1, 0.01, 0.001])])
    tensor_rates: torch.Tensor = stacked(torch.arange(5))
    half: float | NDArray[np.float64] = fd.half_life(fd.step(0.1, 0.5, 10))
    matched: fd.Schedule = fd.match_half_life(fd.step(0.1, 0.5, 10))
    momentum: fd.Schedule = fd.one_cycle(1.0, 100).momentum
    wd: fd.Schedule = fd.constant_shrinkage(fd.exponential(0.1, gamma=0.99), 0.01)
    tab: fd.Schedule = fd.from_function(lambda t: 0.1 / (1 + t), 100)
    print(rate, table, table32, into, shape, scaled, product, tensor_rates, half, matched, momentum, wd, tab)


def check_updates() -> None:
    w, g = np.ones(10, np.float32), np.ones(10, np.float32)
    m, v = np.zeros_like(w), np.zeros_like(w)
    fd.adamw_step(w, g, m, v, step=0, lr=fd.cosine(1e-3, 1_000), weight_decay=0.01)
    fd.adamw_step([w], [g], [m], [v], step=np.int64(3), lr=1e-3, betas=(0.9, 0.95))
    p = torch.zeros(3)
    fd.sgd_step(p, torch.ones(3), step=0, lr=0.1, momentum=0.9, momentum_buffer=torch.zeros(3), on_drop="rescale")


def check_simulate() -> None:
    res = fd.simulate(np.logspace(-2, 2, 5), fd.step(0.1, 0.5, 10), steps=100, optimizer="momentum", every=10)
    w: np.ndarray = res.w
    diverged: int = res.diverged
    onset = fd.stability_onset(fd.exponential(1.0, gamma=0.7), [1.0, 5.0], max_steps=100)
    escape: fd.EscapeProbability = fd.escape_probability(fd.constant(0.1), 1.0, 1.0, 10)
    expected: fd.ExpectedLoss = fd.expected_loss([1.0, 10.0], fd.constant(0.01), steps=100, noise=0.1)
    tensors = fd.simulate(torch.logspace(-2, 2, 5)[:, None], fd.constant(0.1), steps=50, every=10)
    w_tensor: torch.Tensor = tensors.w
    loss_tensor: torch.Tensor | None = tensors.loss
    to_target: int | NDArray[np.int64] = fd.steps_to_target([1.0, 10.0], fd.constant(0.01), 1e-3, steps=1_000)
    print(w, diverged, onset, escape.cumulative, expected.final_loss, w_tensor, loss_tensor, to_target)


def check_torch() -> None:
    model = torch.nn.Linear(4, 2)
    opt: torch.optim.Optimizer = fd.torch.AdamW(model.parameters(), lr=fd.cosine(1e-3, 1_000), weight_decay=0.01)
    sgd = fd.torch.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    scheduler = fd.torch.LRScheduler(sgd, fd.step(1.0, 0.5, 10))
    loss = model(torch.randn(8, 4)).square().mean()
    loss.backward()
    opt.step()
    scheduler.step()
    state: dict = opt.state_dict()
    print(state)


def check_sweeps(tmp: str) -> None:
    config = parse_config({"run": {"steps": 10}, "curvatures": {"values": [1.0]},
                           "schedule": [{"kind": "constant", "lr": 0.1}]})
    res: SweepResult = fd.sweep(config, tmp, progress=False)
    again: SweepResult = load_sweep(tmp)
    print(res.w, again.summary())


def check_plots() -> None:
    fig = fd.plots.lr_curves({"step": fd.step(0.1, 0.5, 10)}, 100)
    fd.plots.save(fig, "lr.png")
