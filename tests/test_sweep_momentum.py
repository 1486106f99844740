"""Scheduled momentum and Adam beta1 in sweep configs: ``momentum`` (and ``betas[0]``) as
a schedule table or ``"companion"`` (each schedule's own momentum companion, torch's
cycle_momentum), in Monte Carlo and expected-dynamics sweeps; the same numbers as the
direct fd.simulate / fd.expected_loss calls; bad values name the key and its line."""

import textwrap

import numpy as np
import pytest

import fastdecay as fd
from fastdecay.cli import main
from fastdecay.sweep.config import SweepConfigError, parse_config

LAM = [0.3, 1.0, 2.5]
ONE_CYCLES = [fd.one_cycle(0.2, 60), fd.one_cycle(0.4, 60)]


def _grid(schedules):
    """(curvature, stacked schedules) of the sweep grid as one batch (schedule, curvature)."""
    lam = np.broadcast_to(np.array(LAM)[None, :, None], (len(schedules), len(LAM), 1)).copy()
    return lam, fd.stack(schedules)[:, None]


def _config(optimizer, **run):
    return {"run": {"steps": 60, "every": 6, "chunk_size": 4, "seed": 5, **run}, "curvatures": {"values": LAM},
            "schedule": [{"kind": "one_cycle", "max_lr": [0.2, 0.4], "total_steps": 60}], "optimizer": optimizer}


def test_companion_momentum_is_each_schedule_s_own():
    res = fd.sweep(_config({"kind": "nesterov", "momentum": "companion", "noise": 0.1}), progress=False)
    lam, stacked = _grid(ONE_CYCLES)
    companions = fd.stack([s.momentum for s in ONE_CYCLES])[:, None]
    whole = fd.simulate(lam, stacked, steps=60, optimizer="nesterov", momentum=companions, noise=0.1, seed=5, every=6)
    np.testing.assert_array_equal(res.w[0], whole.w[..., 0])
    np.testing.assert_array_equal(res.loss[0], whole.loss)
    assert res.optimizers == ["nesterov"]
    # the companion mattered: a constant momentum gives other numbers
    other = fd.simulate(lam, stacked, steps=60, optimizer="nesterov", momentum=0.9, noise=0.1, seed=5, every=6)
    assert not np.array_equal(other.w[..., 0], res.w[0])


def test_momentum_schedule_table_and_a_grid_of_momenta():
    table = {"kind": "cosine", "lr": 0.95, "total_steps": 60, "min_lr": 0.8}
    res = fd.sweep(_config({"kind": "momentum", "momentum": [0.9, table, "companion"]}), progress=False)
    assert res.optimizers == ["momentum(momentum=0.9)",
                              "momentum(momentum=cosine(lr=0.95,total_steps=60,min_lr=0.8))",
                              "momentum(momentum=companion)"]
    lam, stacked = _grid(ONE_CYCLES)
    companions = fd.stack([s.momentum for s in ONE_CYCLES])[:, None]
    for k, mom in enumerate([0.9, fd.cosine(0.95, 60, min_lr=0.8), companions]):
        whole = fd.simulate(lam, stacked, steps=60, optimizer="momentum", momentum=mom, seed=5, every=6)
        np.testing.assert_array_equal(res.w[k], whole.w[..., 0])
    frame = res.to_dataframe(final=True)
    assert set(frame["optimizer_momentum"]) == {0.9, "cosine(lr=0.95,total_steps=60,min_lr=0.8)", "companion"}


def test_adam_beta1_companion():
    res = fd.sweep(_config({"kind": "adamw", "betas": ["companion", 0.99], "weight_decay": 0.01}), progress=False)
    lam, stacked = _grid(ONE_CYCLES)
    beta1 = fd.stack([s.momentum for s in ONE_CYCLES])[:, None]
    whole = fd.simulate(lam, stacked, steps=60, optimizer="adamw", betas=(beta1, 0.99), weight_decay=0.01, every=6)
    np.testing.assert_array_equal(res.w[0], whole.w[..., 0])
    assert res.to_dataframe(final=True)["optimizer_beta1"].iloc[0] == "companion"


def test_expected_sweep_with_companion_momentum():
    cfg = _config({"kind": "momentum", "momentum": "companion", "noise": 0.2, "batch_size": 4}, mode="expected")
    del cfg["run"]["seed"]
    res = fd.sweep(cfg, progress=False)
    lam, stacked = _grid(ONE_CYCLES)
    companions = fd.stack([s.momentum for s in ONE_CYCLES])[:, None]
    want = fd.expected_loss(lam, stacked, steps=60, optimizer="momentum", momentum=companions, noise=0.2,
                            batch_size=4, every=6)
    np.testing.assert_allclose(res.loss[0], want.loss, rtol=1e-13)
    np.testing.assert_allclose(res.w[0], want.mean[..., 0], rtol=1e-13)


def test_toml_inline_tables(tmp_path):
    path = tmp_path / "cfg.toml"
    path.write_text(textwrap.dedent("""
        [run]
        steps = 40
        [curvatures]
        values = [1.0]
        [[schedule]]
        kind = "cyclic"
        base_lr = 0.01
        max_lr = 0.3
        step_size_up = 10
        [[optimizer]]
        kind = "momentum"
        momentum = {kind = "exponential", lr = 0.95, gamma = 0.99}
        [[optimizer]]
        kind = "adam"
        betas = ["companion", 0.999]
    """))
    cfg = parse_config(path)
    assert cfg["optimizers"][0]["momentum"] == {"kind": "exponential", "params": {"lr": 0.95, "gamma": 0.99},
                                                "warmup": 0}
    assert cfg["optimizers"][1]["betas"] == ["companion", 0.999]
    res = fd.sweep(cfg, progress=False)
    s = fd.cyclic(0.01, 0.3, 10)
    want = fd.simulate([[1.0]], s, steps=40, optimizer="adam", betas=(s.momentum, 0.999))
    np.testing.assert_array_equal(res.w[1, 0], want.w[0])


BASE = "[run]\nsteps = 10\n[curvatures]\nvalues = [1.0]\n[[schedule]]\nkind = 'step'\nlr = 0.1\ngamma = 0.5\nperiod = 3\n"


@pytest.mark.parametrize("optimizer, line, needle", [
    ("kind = 'momentum'\nmomentum = 'companion'\n", 12, "optimizer[0].momentum: 'companion' takes each schedule's"),
    ("kind = 'momentum'\nmomentum = 'cycled'\n", 12, "optimizer[0].momentum: must be a number, 'companion' or"),
    ("kind = 'momentum'\nmomentum = {kind = 'cosin', lr = 0.9}\n", 12, "needs kind = one of"),
    ("kind = 'momentum'\nmomentum = {kind = 'cosine', lr = 0.9, steps = 5}\n", 12, "unknown parameter 'steps'"),
    ("kind = 'momentum'\nmomentum = {kind = 'cosine', lr = -0.9, total_steps = 5}\n", 12, "lr must be >= 0"),
    ("kind = 'adam'\nbetas = [{kind = 'constant', lr = 1.0}, 0.999]\n", 12, "optimizer[0].betas: must stay below 1"),
    ("kind = 'momentum'\nmomentum = {kind = 'constant', lr = 1.5}\n", 12, "optimizer[0].momentum: must stay below 1"),
    ("kind = 'adam'\nbetas = [{kind = 'linear', start_lr = 0.9, end_lr = 1.0, total_steps = 8}, 0.999]\n", 12,
     "optimizer[0].betas: must stay below 1 at every step, got a schedule reaching 1.0 at step 8"),
    ("kind = 'adam'\nbetas = ['companion', 0.999]\n", 12, "optimizer[0].betas: 'companion'"),
])
def test_bad_momentum_names_key_and_line(tmp_path, capsys, optimizer, line, needle):
    path = tmp_path / "cfg.toml"
    path.write_text(BASE + "[[optimizer]]\n" + optimizer)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert needle in err and f"cfg.toml:{line}:" in err, err
    assert not out.exists()
    with pytest.raises(SweepConfigError):
        parse_config(path)


def test_a_numeric_momentum_keeps_its_config_hash():
    """Configs written before schedules were allowed normalise (and hash) as they did."""
    from fastdecay.sweep.config import config_hash

    cfg = parse_config(_config({"kind": "momentum", "momentum": 0.8}))
    assert cfg["optimizers"][0]["momentum"] == 0.8 and cfg["optimizers"][0]["betas"] == [0.9, 0.999]
    # the hash this config had on main before momentum schedules (fastdecay 02f418c)
    assert config_hash(cfg) == "f411af1d081927c401dd7cab579bfed3c5263d2d80a716288714af5fabe56a92"
