"""The schedule options on the command line: ``fastdecay schedule one-cycle --three-phase
...``, the momentum column, warmup shapes, tables; each printed rate is the schedule's."""

import json

import numpy as np
import pytest

import fastdecay as fd
from fastdecay.cli import main


def csv_columns(capsys, *argv):
    code = main(["schedule", *argv, "--format", "csv"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    names = lines[0].split(",")
    values = np.array([[float(x) for x in line.split(",")] for line in lines[1:]])
    return {name: values[:, k] for k, name in enumerate(names)}


def test_one_cycle_three_phase_linear_with_momentum(capsys):
    cols = csv_columns(capsys, "one-cycle", "--max-lr", "0.5", "--total-steps", "120", "--pct-start", "0.25",
                       "--three-phase", "--anneal-strategy", "linear", "--base-momentum", "0.8", "--steps", "130",
                       "--momentum")
    s = fd.one_cycle(0.5, 120, pct_start=0.25, three_phase=True, anneal_strategy="linear", base_momentum=0.8)
    assert cols["step"].tolist() == list(range(131))
    np.testing.assert_array_equal(cols["lr"], s(np.arange(131)))
    np.testing.assert_array_equal(cols["momentum"], s.momentum(np.arange(131)))
    # the underscore spelling is the same command
    assert csv_columns(capsys, "one_cycle", "--max-lr", "0.5", "--total-steps", "120", "--steps", "5")["lr"].size == 6


def test_cyclic_momentum_table_and_json(capsys):
    argv = ["cyclic", "--base-lr", "0.01", "--max-lr", "0.1", "--step-size-up", "5", "--steps", "20", "--momentum"]
    assert main(["schedule", *argv]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["step", "lr", "momentum"]
    assert out[1].split() == ["0", "0.01000", "0.90000"] and out[6].split() == ["5", "0.10000", "0.80000"]
    assert main(["schedule", *argv, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    np.testing.assert_array_equal(doc["momentum"], fd.cyclic(0.01, 0.1, 5).momentum(np.arange(21)))


def test_new_options_of_each_kind(capsys):
    cases = [
        (["cosine", "--lr", "1", "--total-steps", "50", "--num-cycles", "1.5", "--exponent", "2"],
         fd.cosine(1.0, 50, num_cycles=1.5, exponent=2.0)),
        (["cosine-restarts", "--lr", "1", "--period", "10", "--period-mult", "2", "--min-lr", "0.1",
          "--cycle-decay", "0.5", "--decay-amplitude", "--cycle-limit", "3"],
         fd.cosine_restarts(1.0, 10, period_mult=2, min_lr=0.1, cycle_decay=0.5, decay_amplitude=True,
                            cycle_limit=3)),
        (["exponential", "--lr", "1", "--gamma", "0.9", "--end-lr", "0.2"], fd.exponential(1.0, gamma=0.9, end_lr=0.2)),
        (["inverse-sqrt", "--lr", "1", "--warmup-steps", "10", "--timescale", "40"],
         fd.inverse_sqrt(1.0, 10, timescale=40)),
        (["piecewise", "--boundaries", "5,9", "--values", "1,0.5,0.1", "--closed", "right"],
         fd.piecewise([5, 9], [1.0, 0.5, 0.1], closed="right")),
        (["wsd", "--lr", "1", "--total-steps", "60", "--warmup-steps", "10", "--start-lr", "0.01",
          "--warmup-shape", "exponential"], fd.wsd(1.0, 60, warmup_steps=10, start_lr=0.01, warmup_shape="exponential")),
        (["tabulated", "--values", "0.3,0.2,0.25"], fd.tabulated([0.3, 0.2, 0.25])),
        (["cosine", "--lr", "1", "--total-steps", "50", "--warmup", "8", "--warmup-shape", "cosine",
          "--warmup-start-lr", "0.1", "--no-warmup-prefix"],
         fd.warmup(fd.cosine(1.0, 50), 8, start_lr=0.1, shape="cosine", prefix=False)),
    ]
    for argv, s in cases:
        cols = csv_columns(capsys, *argv, "--steps", "70")
        np.testing.assert_array_equal(cols["lr"], s(np.arange(71)), err_msg=" ".join(argv))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["cosine", "--lr", "1", "--total-steps", "9", "--steps", "3", "--momentum"], "unrecognized arguments: --momentum"),
        (["one-cycle", "--max-lr", "1", "--total-steps", "99", "--steps", "3", "--momentum", "--warmup", "3"],
         "--momentum cannot be combined with --warmup"),
        (["one-cycle", "--max-lr", "1", "--total-steps", "99", "--steps", "3", "--anneal-strategy", "cosine"],
         "invalid choice: 'cosine'"),
        (["cosine", "--lr", "1", "--total-steps", "9", "--steps", "3", "--warmup", "3", "--warmup-shape",
          "exponential"], "an exponential warmup needs start_lr > 0"),
        (["tabulated", "--values", "0.1,-1", "--steps", "3"], "values must be >= 0"),
        (["step", "--lr", "0.1", "--gamma", "0.5", "--period", "3", "--steps", "3", "--plot", ""],
         "argument --plot: expected a file name, got ''"),  # (it printed the table and drew nothing)
    ],
)
def test_bad_options_exit_2_with_one_line(capsys, argv, message):
    assert main(["schedule", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    *usage, line = err.rstrip("\n").split("\n")
    assert message in line and line.startswith("fastdecay schedule ")
    # malformed options come after the sub-command's usage; bad values are one line
    assert not usage or usage[0].startswith(f"usage: fastdecay schedule {argv[0].replace('-', '_')} ")


def test_sweep_configs_take_the_new_keys():
    """A sweep's [[schedule]] tables take every factory argument as a key (lists are grid axes)."""
    from fastdecay.sweep.config import build_schedule, parse_config

    specs = [
        ({"kind": "one_cycle", "max_lr": 0.5, "total_steps": 100, "three_phase": True, "anneal_strategy": "linear"},
         fd.one_cycle(0.5, 100, three_phase=True, anneal_strategy="linear")),
        ({"kind": "cosine", "lr": 0.3, "total_steps": 80, "num_cycles": 1.0, "exponent": 2.0},
         fd.cosine(0.3, 80, num_cycles=1.0, exponent=2.0)),
        ({"kind": "cosine_restarts", "lr": 0.3, "period": 20, "cycle_decay": 0.5, "cycle_limit": 3},
         fd.cosine_restarts(0.3, 20, cycle_decay=0.5, cycle_limit=3)),
        ({"kind": "exponential", "lr": 0.3, "gamma": 0.95, "end_lr": 0.05}, fd.exponential(0.3, gamma=0.95, end_lr=0.05)),
        ({"kind": "piecewise", "boundaries": [10, 50], "values": [0.3, 0.1, 0.01], "closed": "right"},
         fd.piecewise([10, 50], [0.3, 0.1, 0.01], closed="right")),
        ({"kind": "wsd", "lr": 0.3, "total_steps": 100, "warmup_steps": 10, "warmup_shape": "cosine"},
         fd.wsd(0.3, 100, warmup_steps=10, warmup_shape="cosine")),
        ({"kind": "inverse_sqrt", "lr": 0.3, "warmup_steps": 10, "timescale": 100},
         fd.inverse_sqrt(0.3, 10, timescale=100)),
        ({"kind": "tabulated", "values": [0.3, 0.2, 0.1]}, fd.tabulated([0.3, 0.2, 0.1])),
    ]
    config = parse_config({"run": {"steps": 10}, "curvatures": {"values": [1.0]},
                           "schedule": [spec for spec, _ in specs]})
    assert len(config["schedules"]) == len(specs)
    for entry, (_, want) in zip(config["schedules"], specs):
        np.testing.assert_array_equal(build_schedule(entry).table(150), want.table(150))
    grid = parse_config({"run": {"steps": 10}, "curvatures": {"values": [1.0]},
                         "schedule": {"kind": "one_cycle", "max_lr": 0.5, "total_steps": 100,
                                      "anneal_strategy": ["cos", "linear"], "three_phase": [False, True]}})
    assert len(grid["schedules"]) == 4


def test_an_every_beyond_every_integer_shows_step_0(capsys):
    """``--every`` past 2**63 (past N) shows step 0 alone, as any K > N does."""
    from fastdecay.cli import main

    assert main(["schedule", "step", "--lr", "0.1", "--gamma", "0.5", "--period", "10", "--steps", "5",
                 "--every", str(2**63)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert rows[-1][0] == "0" and len(rows) == 2


@pytest.mark.parametrize("shape", ["linear", "cosine", "exponential"])
def test_wsd_s_warmup_shape_shapes_the_added_warmup_too(capsys, shape):
    """wsd has a warmup shape of its own: ``--warmup-shape`` is that option, and it shapes a
    ``--warmup`` added before it too (it stayed linear, whatever the flag said)."""
    cols = csv_columns(capsys, "wsd", "--lr", "0.1", "--total-steps", "20", "--start-lr", "0.02", "--warmup", "4",
                       "--warmup-start-lr", "0.01", "--warmup-shape", shape, "--steps", "24")
    want = fd.warmup(fd.wsd(0.1, 20, start_lr=0.02, warmup_shape=shape), 4, start_lr=0.01, shape=shape)
    np.testing.assert_array_equal(cols["lr"], want(np.arange(25)))


def test_a_bad_added_warmup_is_named_by_its_flag(capsys):
    assert main(["schedule", "wsd", "--lr", "0.1", "--total-steps", "10", "--warmup", "2", "--warmup-start-lr", "-1",
                 "--steps", "3"]) == 2
    assert "error: --warmup-start-lr / --warmup: start_lr must be >= 0" in capsys.readouterr().err


@pytest.mark.parametrize("flags, named", [
    (["--warmup-start-lr", "0.05"], "--warmup-start-lr shapes"),
    (["--warmup-shape", "cosine"], "--warmup-shape shapes"),
    (["--no-warmup-prefix"], "--no-warmup-prefix shapes"),
    (["--warmup-start-lr", "0.05", "--no-warmup-prefix"], "--warmup-start-lr, --no-warmup-prefix shape"),
])
def test_an_option_of_the_added_warmup_without_warmup_is_refused(capsys, flags, named):
    """They were read only with --warmup W: without it the plain schedule came out, exit 0."""
    assert main(["schedule", "step", "--lr", "0.1", "--gamma", "0.5", "--period", "10", "--steps", "3", *flags]) == 2
    assert f"error: {named} the added warmup: give --warmup W too" in capsys.readouterr().err
    cols = csv_columns(capsys, "step", "--lr", "0.1", "--gamma", "0.5", "--period", "10", "--steps", "6",
                       "--warmup", "3", *flags)
    want = fd.warmup(fd.step(0.1, 0.5, 10), 3, start_lr=0.05 if "--warmup-start-lr" in flags else 0.0,
                     shape="cosine" if "cosine" in flags else "linear", prefix="--no-warmup-prefix" not in flags)
    np.testing.assert_array_equal(cols["lr"], want(np.arange(7)))
