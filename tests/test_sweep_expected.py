"""Expected-dynamics sweeps: ``mode = "expected"`` runs ``fd.expected_loss`` over the grid,
with ``batch_size`` as a grid axis; chunked, resumable, on disk, the same config checks."""

import math

import numpy as np
import pytest

import fastdecay as fd
from fastdecay.cli import main
from fastdecay.sweep import CorruptSweepError, SweepConfigError, parse_config

CONFIG = {
    "run": {"mode": "expected", "steps": 150, "every": 10, "chunk_size": 4, "w0": 1.5},
    "curvatures": {"logspace": [-1, 1, 5]},
    "schedule": [{"kind": "step", "lr": 0.1, "gamma": 0.5, "period": [30, 60]},
                 {"kind": "cosine", "lr": 0.1, "total_steps": 150}],
    "optimizer": [{"kind": "momentum", "momentum": 0.8, "noise": 0.2, "batch_size": [1, 4, 32],
                   "on_drop": "rescale"},
                  {"kind": "nesterov", "noise": 0.2, "weight_decay": 0.01}],
}
LAM = np.logspace(-1, 1, 5)
SCHEDULES = [fd.step(0.1, 0.5, 30), fd.step(0.1, 0.5, 60), fd.cosine(0.1, 150)]


@pytest.fixture(scope="module")
def res():
    return fd.sweep(CONFIG, progress=False)


def direct(optimizer, batch_size, **kw):
    """The same grid as one fd.expected_loss call: (schedules, curvatures) batch."""
    return fd.expected_loss(np.broadcast_to(LAM[None, :, None], (3, 5, 1)).copy(), fd.stack(SCHEDULES)[:, None],
                            steps=150, optimizer=optimizer, noise=0.2, batch_size=batch_size, w0=1.5, every=10, **kw)


def test_grid_equals_expected_loss_on_the_whole_batch(res):
    assert res.mode == "expected"
    assert res.optimizers == ["momentum(batch_size=1, on_drop=rescale)", "momentum(batch_size=4, on_drop=rescale)",
                              "momentum(batch_size=32, on_drop=rescale)", "nesterov"]
    assert res.w.shape == res.second_moment.shape == (4, 3, 5) and res.loss.shape == (4, 3, 5, 16)
    assert res.displacement is None
    for o, b in enumerate((1, 4, 32)):
        whole = direct("momentum", b, momentum=0.8, on_drop="rescale")
        np.testing.assert_array_equal(res.loss[o], whole.loss)  # chunks of 4 rows: the same numbers
        np.testing.assert_array_equal(res.w[o], whole.mean[..., 0])
        np.testing.assert_array_equal(res.second_moment[o], whole.second_moment[..., 0])
    whole = direct("nesterov", 1, weight_decay=0.01)
    np.testing.assert_array_equal(res.loss[3], whole.loss)
    np.testing.assert_array_equal(res.steps, np.arange(0, 151, 10))
    np.testing.assert_array_equal(res.lr[0, :, 0], fd.stack(SCHEDULES).table(res.steps))
    np.testing.assert_allclose(res.to_dataframe(final=True).final_loss.to_numpy(),
                               (0.5 * LAM * res.second_moment).reshape(-1), rtol=1e-15)


def test_larger_batches_lower_the_noise_floor(res):
    """σ²/B noise: the expected loss falls with B; the mean E w_N is the noiseless run
    whatever B (the rules are linear), and E w_N² lies above its square."""
    final = res.loss[:3, :, :, -1]
    assert np.all(final[0] > final[1]) and np.all(final[1] > final[2])
    noiseless = fd.expected_loss(LAM, SCHEDULES[0], steps=150, optimizer="momentum", momentum=0.8, w0=1.5,
                                 on_drop="rescale")
    for o in range(3):
        np.testing.assert_allclose(res.w[o, 0], noiseless.mean, rtol=1e-12)
        assert np.all(res.second_moment[o, 0] > noiseless.second_moment)


def test_chunking_does_not_change_the_numbers(res):
    other = fd.sweep({**CONFIG, "run": {**CONFIG["run"], "chunk_size": 1000}}, progress=False)
    np.testing.assert_array_equal(other.loss, res.loss)
    np.testing.assert_array_equal(other.second_moment, res.second_moment)


def test_batch_size_is_a_column_and_a_coordinate(res):
    df = res.to_dataframe()
    assert sorted(df.optimizer_batch_size.unique()) == [1, 4, 32]
    assert "displacement" not in df.columns and {"loss", "lr", "step"} <= set(df.columns)
    final = res.to_dataframe(final=True)
    assert {"w", "second_moment", "final_loss", "diverged"} <= set(final.columns)
    ds = res.to_xarray()
    assert ds.attrs["mode"] == "expected"
    assert ds.optimizer_batch_size.values.tolist() == [1, 4, 32, 1]
    np.testing.assert_array_equal(ds.second_moment.values, res.second_moment)


def test_on_disk_resume_and_load(res, tmp_path):
    out = tmp_path / "out"
    first = fd.sweep(CONFIG, out, progress=False, plots=True)
    np.testing.assert_array_equal(first.loss, res.loss)
    assert {"lr.png", "final_w_0.png", "loss_0.png"} <= {p.name for p in (out / "figures").iterdir()}
    assert "median E loss_N" in (out / "summary.txt").read_text()
    (out / "chunks" / "chunk-000002.npz").write_bytes(b"garbage")
    with pytest.raises(CorruptSweepError, match=r"chunk-000002\.npz"):
        fd.load_sweep(out)
    with pytest.warns(RuntimeWarning, match="chunk-000002.npz: corrupt"):
        again = fd.sweep(CONFIG, out, resume=True, progress=False, plots=False)
    np.testing.assert_array_equal(again.loss, res.loss)
    loaded = fd.load_sweep(out)
    np.testing.assert_array_equal(loaded.second_moment, res.second_moment)
    with np.load(out / "results.npz") as z:
        np.testing.assert_array_equal(z["second_moment"], res.second_moment)


def test_random_start_variance():
    cfg = {"run": {"mode": "expected", "steps": 40, "w0": 0.0, "w0_var": 4.0},
           "curvatures": {"values": [0.5]}, "schedule": {"kind": "constant", "lr": 0.1}}
    got = fd.sweep(cfg, progress=False)
    # plain GD from a random start of variance 4: E w_N² = 4 (1 - ηλ)^(2N), E w_N = 0
    assert got.w[0, 0, 0] == 0.0
    assert math.isclose(got.second_moment[0, 0, 0], 4.0 * 0.95 ** 80, rel_tol=1e-13)


def test_monte_carlo_batch_size_divides_the_noise():
    """The same key in a Monte Carlo sweep: fd.simulate with noise / sqrt(batch_size)."""
    cfg = {"run": {"steps": 60, "seed": 3}, "curvatures": {"values": [0.5, 2.0]},
           "schedule": {"kind": "constant", "lr": 0.1},
           "optimizer": {"kind": "momentum", "noise": 0.4, "batch_size": [1, 16]}}
    got = fd.sweep(cfg, progress=False)
    for o, b in enumerate((1, 16)):
        sim = fd.simulate(np.array([[0.5], [2.0]]), 0.1, steps=60, optimizer="momentum", noise=0.4 / math.sqrt(b),
                          seed=3)
        np.testing.assert_array_equal(got.w[o, 0], sim.w[:, 0])


def test_defaults_keep_the_config_hash():
    """batch_size = 1 and mode = "monte_carlo" are the defaults: a config that spells them out
    is the same sweep (same hash) as one written before these keys existed."""
    plain = {"run": {"steps": 10}, "curvatures": {"values": [1.0]}, "schedule": {"kind": "constant", "lr": 0.1}}
    spelled = {"run": {"steps": 10, "mode": "monte_carlo"}, "curvatures": {"values": [1.0]},
               "schedule": {"kind": "constant", "lr": 0.1}, "optimizer": {"kind": "gd", "batch_size": 1}}
    assert parse_config(plain) == parse_config(spelled)
    assert "batch_size" not in parse_config(spelled)["optimizers"][0] and "mode" not in parse_config(plain)["run"]


HEAD = "[run]\nmode = 'expected'\nsteps = 10\n[curvatures]\nvalues = [1.0]\n[[schedule]]\nkind = 'constant'\nlr = 0.1\n"
BAD = [
    (HEAD + "[[optimizer]]\nkind = 'adamw'\n", 10, "optimizer[0].kind: 'adamw' has no exact expected dynamics"),
    (HEAD + "[[optimizer]]\nkind = 'momentum'\nbatch_size = [1, 0]\n", 11, "optimizer[0].batch_size: must be >= 1, got 0"),
    (HEAD + "[[optimizer]]\nkind = 'gd'\nbatch_size = 2.5\n", 11, "optimizer[0].batch_size: must be an integer"),
    (HEAD.replace("steps = 10\n", "steps = 10\ndtype = 'float32'\n"), 4, "run.dtype: expected-dynamics sweeps"),
    (HEAD.replace("steps = 10\n", "steps = 10\nseed = 3\n"), 4, "run.seed: has no effect with mode = 'expected'"),
    (HEAD.replace("mode = 'expected'", "mode = 'exact'"), 2, "run.mode: must be one of ('monte_carlo', 'expected'), got 'exact'"),
    (HEAD.replace("mode = 'expected'\n", "w0_var = 1.0\n"), 2, "run.w0_var: a random start (its variance) needs"),
    (HEAD.replace("steps = 10\n", "steps = 10\nw0_var = -1.0\n"), 4, "run.w0_var: must be >= 0, got -1.0"),
]


@pytest.mark.parametrize("text, line, needle", BAD)
def test_bad_expected_config_names_key_and_line(tmp_path, capsys, text, line, needle):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(text)
    out = tmp_path / "out"
    assert main(["sweep", str(cfg), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert needle in err and f"cfg.toml:{line}:" in err and err.count("\n") == 1, err
    assert not out.exists()
    with pytest.raises(SweepConfigError):
        parse_config(cfg)


def test_cli_dry_run_says_expected(tmp_path, capsys):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(HEAD + "[[optimizer]]\nkind = 'nesterov'\nnoise = 0.1\nbatch_size = [1, 2, 4]\n")
    assert main(["sweep", str(cfg), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "3 optimizer settings x 1 schedules x 1 curvatures" in text and "exact expected dynamics" in text


def test_example_expected_config_parses():
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cfg = parse_config(os.path.join(root, "examples", "sweep_expected.toml"))
    assert cfg["run"]["mode"] == "expected" and len(cfg["curvatures"]) == 41
    assert len(cfg["schedules"]) == 5 and len(cfg["optimizers"]) == 8
    assert sorted({e.get("batch_size", 1) for e in cfg["optimizers"]}) == [1, 8, 64, 512]


def test_chunks_as_rectangles_cover_their_trajectories_in_order():
    from fastdecay.sweep.run import _rectangles

    rng = np.random.default_rng(0)
    for n_c in (1, 2, 5, 7):
        for _ in range(200):
            start, stop = sorted(rng.integers(0, 6 * n_c + 1, size=2))
            if start == stop:
                continue
            flat = [s * n_c + c for s0, s1, c0, c1 in _rectangles(start, stop, n_c)
                    for s in range(s0, s1) for c in range(c0, c1)]
            assert flat == list(range(start, stop)), (start, stop, n_c)
            assert len(_rectangles(start, stop, n_c)) <= 3
