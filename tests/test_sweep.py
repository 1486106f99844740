"""fastdecay sweep: the TOML format and its errors, chunking, atomic resumable results."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import fastdecay as fd
from fastdecay.sweep import SweepConfigError, config_hash, parse_config
from fastdecay.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SMALL = """
[run]
steps = 120
every = 10
chunk_size = 5
seed = 7

[curvatures]
logspace = [-1, 1.5, 7]

[[schedule]]
kind = "step"
lr = 0.1
gamma = 0.5
period = [20, 40]

[[schedule]]
kind = "exponential"
lr = 0.1
half_life = 20

[[optimizer]]
kind = "momentum"
on_drop = ["keep", "rescale"]
noise = 0.05
"""


def write(tmp_path, text, name="cfg.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_grid_matches_one_whole_simulate_call():
    cfg = parse_config({"run": {"steps": 80, "chunk_size": 4, "seed": 3, "every": 8},
                           "curvatures": {"values": [0.3, 1.0, 5.0]},
                           "schedule": [{"kind": "step", "lr": 0.2, "gamma": 0.5, "period": [10, 30]},
                                        {"kind": "cosine", "lr": 0.2, "total_steps": 80}],
                           "optimizer": {"kind": "nesterov", "momentum": 0.8, "noise": 0.1}})
    res = fd.sweep(cfg, progress=False)
    # the same grid as one batch (schedules, curvatures): trajectory index = s * n_c + c
    stacked = fd.stack([fd.step(0.2, 0.5, 10), fd.step(0.2, 0.5, 30), fd.cosine(0.2, 80)])[:, None]
    lam = np.broadcast_to(np.array([0.3, 1.0, 5.0])[None, :, None], (3, 3, 1)).copy()
    whole = fd.simulate(lam, stacked, steps=80, optimizer="nesterov", momentum=0.8, noise=0.1, seed=3, every=8)
    np.testing.assert_array_equal(res.w[0], whole.w[..., 0])
    np.testing.assert_array_equal(res.loss[0], whole.loss)
    np.testing.assert_array_equal(res.displacement[0], whole.displacement)
    np.testing.assert_array_equal(res.steps, whole.steps)
    assert res.schedules == ["step(period=10)", "step(period=30)", "cosine"]


def test_chunk_size_never_changes_results(tmp_path):
    cfg = parse_config(write(tmp_path, SMALL))
    a = fd.sweep(cfg, progress=False)
    cfg["run"]["chunk_size"] = 1000
    b = fd.sweep(cfg, progress=False)
    assert a.w.shape == (2, 3, 7) and a.loss.shape == (2, 3, 7, 13)
    np.testing.assert_array_equal(a.w, b.w)
    np.testing.assert_array_equal(a.loss, b.loss)
    assert a.optimizers == ["momentum(on_drop=keep)", "momentum(on_drop=rescale)"]
    assert not np.array_equal(a.w[0], a.w[1])  # the two on_drop settings really differ


def test_cli_writes_chunks_results_summary_and_figures(tmp_path, capsys):
    cfg = write(tmp_path, SMALL)
    out = tmp_path / "out"
    assert main(["sweep", str(cfg), "--out", str(out)]) == 0
    stdout, stderr = capsys.readouterr()
    assert "traj-step/s" in stderr  # the progress bar's rate
    assert "median loss_N" in stdout and "momentum(on_drop=rescale)" in stdout
    chunks = sorted(os.listdir(out / "chunks"))
    # 2 optimizer settings x ceil(3 * 7 / 5) = 5 chunks each
    assert chunks == [f"chunk-{k:06d}.npz" for k in range(10)]
    manifest = json.loads((out / "sweep.json").read_text())
    assert manifest["config_hash"] == config_hash(parse_config(cfg))
    with np.load(out / "results.npz") as z:
        expected = fd.sweep(parse_config(cfg), progress=False)
        np.testing.assert_array_equal(z["w"], expected.w)
        np.testing.assert_array_equal(z["loss"], expected.loss)
    loaded = fd.load_sweep(out)
    np.testing.assert_array_equal(loaded.w, expected.w)
    assert (out / "summary.txt").read_text().startswith("optimizer")
    for name in ("lr.png", "final_w_0.png", "final_w_1.png", "loss_0.png"):
        assert (out / "figures" / name).read_bytes()[:4] == b"\x89PNG"


def test_a_second_run_into_a_directory_being_written_is_refused_and_touches_nothing(tmp_path, capsys):
    """A run holds ``sweep.lock``; another run (resumed, or fresh at the same moment) would
    delete its chunk files in flight as a killed run's leftovers."""
    fcntl = pytest.importorskip("fcntl")
    cfg = write(tmp_path, SMALL)
    out = tmp_path / "out"
    assert main(["sweep", str(cfg), "--out", str(out), "--no-plots", "--no-progress"]) == 0
    (out / "chunks" / "chunk-000003.npz.tmp-99999").write_bytes(b"a chunk being written")
    capsys.readouterr()
    with open(out / "sweep.lock", "ab") as held:  # the first run, still running
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(["sweep", str(cfg), "--out", str(out), "--resume", "--no-plots", "--no-progress"]) == 2
        assert "another fastdecay sweep is running in" in capsys.readouterr().err
        assert (out / "chunks" / "chunk-000003.npz.tmp-99999").exists()
        fresh = tmp_path / "fresh"  # a fresh run that has just made its directory and lock
        (fresh / "chunks").mkdir(parents=True)
        with open(fresh / "sweep.lock", "ab") as other:
            fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            assert main(["sweep", str(cfg), "--out", str(fresh), "--no-plots", "--no-progress"]) == 2
            assert "another fastdecay sweep is running in" in capsys.readouterr().err
    # once it has ended: resumed, its leftovers tidied
    assert main(["sweep", str(cfg), "--out", str(out), "--resume", "--no-plots", "--no-progress"]) == 0
    assert not (out / "chunks" / "chunk-000003.npz.tmp-99999").exists()


def test_out_dir_of_another_config_is_refused(tmp_path, capsys):
    cfg = write(tmp_path, SMALL)
    out = tmp_path / "out"
    assert main(["sweep", str(cfg), "--out", str(out), "--no-plots", "--no-progress"]) == 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    capsys.readouterr()
    # same config without --resume
    assert main(["sweep", str(cfg), "--out", str(out), "--no-progress"]) == 2
    assert "--resume" in capsys.readouterr().err
    # another config, even with --resume
    other = write(tmp_path, SMALL.replace("seed = 7", "seed = 8"), "other.toml")
    assert main(["sweep", str(other), "--out", str(out), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "another config" in err and err.count("\n") == 1
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    # a non-empty directory that is not a sweep
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("mine")
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "junk"), "--no-progress"]) == 2
    assert sorted(os.listdir(tmp_path / "junk")) == ["notes.txt"]
    # the same config with --resume: nothing left to run, results rewritten identically
    assert main(["sweep", str(cfg), "--out", str(out), "--resume", "--no-progress", "--no-plots"]) == 0
    assert "0 of 10 chunks run" in capsys.readouterr().out


BAD = [
    ("[run]\nsteps = 10\nstepz = 3\n", 3, "run.stepz: unknown key 'stepz'"),
    ("[run]\nsteps = 'ten'\n", 2, "run.steps: must be an integer, got 'ten'"),
    ("[run]\nsteps = 10\nevery = 0\n", 3, "run.every: must be >= 1"),
    ("[run]\nsteps = 10\ndtype = 'float16'\n", 3, "run.dtype"),
    ("[run]\nsteps = 10\n[curvatures]\nvalues = [1.0, -2.0]\n", 4, "curvatures.values"),
    ("[run]\nsteps = 10\n[curvatures]\nlogspace = [-2, 2]\n", 4, "curvatures.logspace"),
    ("[run]\nsteps = 10\n[curvatures]\nlogspace = [0, 1, 1000000000000]\n", 4,
     "curvatures.logspace: logspace[2] (the count)=1000000000000 asks for"),
    ("[run]\nsteps = 10\n[curvatures]\nvalues = [1.0]\n[[schedule]]\nkind = 'exponential'\nlr = 0.1\n"
     "gamma = 0.9\n[[schedule]]\nkind = 'step'\nlr = 0.1\ngamma = [0.5, -0.5]\nperiod = 10\n", 12,
     "schedule[1].gamma: gamma must be > 0"),
    ("[run]\nsteps = 10\n[curvatures]\nvalues = [1.0]\n[[schedule]]\nkind = 'stepp'\nlr = 0.1\n", 6,
     "schedule[0].kind: unknown kind 'stepp'"),
    ("[run]\nsteps = 10\n[curvatures]\nvalues = [1.0]\n[[schedule]]\nkind = 'step'\nlr = 0.1\nperiod = 5\n", 5,
     "missing required key 'gamma'"),
    ("[run]\nsteps = 10\n[curvatures]\nvalues = [1.0]\n[[schedule]]\nkind = 'constant'\nlr = 0.1\nlr_min = 0\n", 8,
     "schedule[0].lr_min: unknown key"),
    ("[run]\nsteps = 10\n[curvatures]\nvalues = [1.0]\n[[schedule]]\nkind = 'constant'\nlr = 0.1\n"
     "[[optimizer]]\nkind = 'momentum'\nmomentum = 1.5\n", 10, "optimizer[0].momentum: must be >= 0 and < 1, got 1.5"),
    ("[run]\nsteps = 10\n[curvatures]\nvalues = [1.0]\n[[schedule]]\nkind = 'constant'\nlr = 0.1\n"
     "[[optimizer]]\nkind = 'adam'\nbetas = [0.9]\n", 10, "optimizer[0].betas"),
    ("[run]\nsteps = 10\n[curvatures]\nvalues = [1.0]\n[[schedule]]\nkind = 'constant'\nlr = 0.1\n"
     "[[optimizer]]\nkind = 'sgd'\n", 9, "optimizer[0].kind: unknown kind 'sgd'"),
    ("[run]\nsteps = 10\n[curvatures]\nvalues = [1.0]\n[[schedule]]\nkind = 'constant'\nlr = 0.1\n"
     "[[optimizer]]\nkind = 'momentum'\non_drop = ['keep', 'drop']\n", 10, "optimizer[0].on_drop"),
    ("[run\nsteps = 10\n", None, "invalid TOML"),
    ("[run]\nsteps = 10\n", None, "missing required table [curvatures]"),
]


@pytest.mark.parametrize("text, line, needle", BAD)
def test_bad_config_names_key_and_line_exits_2_writes_nothing(tmp_path, capsys, text, line, needle):
    cfg = write(tmp_path, text)
    out = tmp_path / "out"
    assert main(["sweep", str(cfg), "--out", str(out), "--no-progress"]) == 2
    stdout, err = capsys.readouterr()
    assert stdout == "" and err.count("\n") == 1 and needle in err, err
    if line is not None:
        assert f"cfg.toml:{line}:" in err, err
    assert not out.exists()
    with pytest.raises(SweepConfigError, match=needle.split(":")[-1].strip()[:20].replace("[", r"\[")
                       .replace("(", r"\(").replace(")", r"\)")):
        parse_config(cfg)


def test_example_config_parses_and_documents_every_key():
    cfg = parse_config(os.path.join(ROOT, "examples", "sweep.toml"))
    assert len(cfg["schedules"]) == 9 and len(cfg["optimizers"]) == 4 and len(cfg["curvatures"]) == 81


def test_missing_config_file_is_exit_2(tmp_path, capsys):
    assert main(["sweep", str(tmp_path / "nope.toml"), "--no-progress"]) == 2
    assert "cannot read config" in capsys.readouterr().err


KILLABLE = """
[run]
steps = 400000
chunk_size = 2
seed = 1

[curvatures]
values = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8]

[[schedule]]
kind = "step"
lr = 0.05
gamma = 0.5
period = [50000, 100000]

[[optimizer]]
kind = "momentum"
noise = 0.01
"""


def test_killed_sweep_resumes_without_lost_or_duplicated_chunks(tmp_path):
    cfg = write(tmp_path, KILLABLE)
    out = tmp_path / "out"
    chunks = out / "chunks"
    n_chunks = 8
    cmd = [sys.executable, "-m", "fastdecay", "sweep", str(cfg), "--out", str(out), "--no-plots", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if chunks.is_dir() and len([p for p in os.listdir(chunks) if p.endswith(".npz")]) >= 2:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    done = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in chunks.glob("chunk-*.npz")}
    assert 2 <= len(done) < n_chunks, f"the kill should land mid-run, found {sorted(done)}"
    assert not (out / "results.npz").exists()

    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{n_chunks - len(done)} of {n_chunks} chunks run" in resumed.stdout
    names = sorted(os.listdir(chunks))
    assert names == [f"chunk-{k:06d}.npz" for k in range(n_chunks)]  # none lost, no temporary left over
    for name, stamp in done.items():  # finished chunks were not recomputed
        p = chunks / name
        assert (p.stat().st_ino, p.stat().st_mtime_ns) == stamp
    reference = fd.sweep(parse_config(cfg), progress=False)
    with np.load(out / "results.npz") as z:
        np.testing.assert_array_equal(z["w"], reference.w)


def test_out_from_the_config_is_relative_to_it_and_final_weights_only_plot(tmp_path, capsys):
    sub = tmp_path / "configs"
    sub.mkdir()
    cfg = write(sub, 'out = "results"\n[run]\nsteps = 50\n[curvatures]\nvalues = [0.5, 5.0]\n'
                     '[[schedule]]\nkind = "exponential"\nlr = 0.1\nrate = [0.01, 0.05]\n')
    cwd = os.getcwd()
    os.chdir(tmp_path)  # the directory comes from the config's location, not from here
    try:
        assert main(["sweep", str(cfg), "--no-progress"]) == 0
    finally:
        os.chdir(cwd)
    out = sub / "results"
    assert sorted(os.listdir(out / "figures")) == ["final_w_0.png", "lr.png"]  # no loss figure without every
    res = fd.load_sweep(out)
    assert res.loss is None and res.w.shape == (1, 2, 2)
    np.testing.assert_allclose(np.abs(res.w[0, :, 0]), [(1 - 0.1 * 0.5 * np.exp(-r * np.arange(50))).prod()
                                                        for r in (0.01, 0.05)], rtol=1e-12)


def test_dry_run_describes_and_writes_nothing(tmp_path, capsys):
    cfg = write(tmp_path, SMALL)
    out = tmp_path / "out"
    assert main(["sweep", str(cfg), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "2 optimizer settings x 3 schedules x 7 curvatures" in text and "10 chunks" in text
    assert config_hash(parse_config(cfg))[:16] in text
    assert not out.exists()


@pytest.mark.parametrize("table, key, value, needle", [
    ("run", "w0", 1 + 2j, "run.w0: must be a real number, got the complex number (1+2j)"),
    ("run", "steps", True, "run.steps: must be an integer, got the boolean True"),
    ("run", "seed", 2**63, "run.seed: must be < 2**63"),
    ("optimizer", "noise", float("nan"), "optimizer[0].noise: must be a finite number >= 0, got nan"),
    ("optimizer", "momentum", 0.9j, "optimizer[0].momentum: must be a real number, got the complex number 0.9j"),
    ("optimizer", "eps", 0.0, "optimizer[0].eps: must be > 0, got 0.0"),
])
def test_dict_config_values_go_through_the_shared_checks(table, key, value, needle):
    """Values a dict config can hold and TOML cannot (complex numbers, NaN) are refused by
    the library's one validation module, with the key named."""
    cfg = {"run": {"steps": 10}, "curvatures": {"values": [1.0]}, "schedule": {"kind": "constant", "lr": 0.1},
           "optimizer": {"kind": "adam"}}
    cfg[table][key] = value
    with pytest.raises(SweepConfigError) as info:
        parse_config(cfg)
    assert str(info.value) == needle or str(info.value).startswith(needle), str(info.value)


def test_every_grid_point_has_a_label_of_its_own():
    """Two [[optimizer]] tables of one kind were both labelled "momentum" (the summary,
    to_xarray().sel and to_dataframe().groupby mixed them); a user's "a#1" next to two
    "a" made a second "a#1"."""
    cfg = {"run": {"steps": 5}, "curvatures": {"values": [1.0]},
           "schedule": [{"kind": "constant", "lr": 0.1, "label": "a#1"}, {"kind": "constant", "lr": 0.2, "label": "a"},
                        {"kind": "constant", "lr": 0.3, "label": "a"}],
           "optimizer": [{"kind": "momentum", "momentum": 0.5}, {"kind": "momentum", "momentum": 0.9}, {"kind": "gd"}]}
    config = parse_config(cfg)
    assert [s["label"] for s in config["schedules"]] == ["a#1", "a#2", "a#3"]
    assert [o["label"] for o in config["optimizers"]] == ["momentum#0", "momentum#1", "gd"]
    r = fd.sweep(cfg, progress=False)
    ds = r.to_xarray()
    np.testing.assert_array_equal(ds.w.sel(optimizer="momentum#1").values, r.w[1])
    assert r.to_dataframe().groupby("optimizer").size().to_dict() == {"gd": 3, "momentum#0": 3, "momentum#1": 3}


def test_a_nested_list_of_curvatures_is_refused_by_key():
    cfg = {"run": {"steps": 5}, "curvatures": {"values": [[1.0, 2.0]]}, "schedule": {"kind": "constant", "lr": 0.1}}
    with pytest.raises(SweepConfigError, match=r"curvatures.values: must be a flat list of numbers, got \[\[1.0, 2.0\]\]"):
        parse_config(cfg)


def test_kinds_take_the_command_line_spelling_too():
    """``kind = "one-cycle"`` is ``one_cycle`` (the command line takes both), in schedules and
    in an optimizer's scheduled momentum."""
    base = {"run": {"steps": 20}, "curvatures": {"values": [1.0]}}
    hyphen = parse_config(dict(base, schedule=[{"kind": "one-cycle", "max_lr": 0.1, "total_steps": 20}],
                               optimizer=[{"kind": "momentum", "momentum": {"kind": "inverse-sqrt", "lr": 0.9, "warmup_steps": 2}}]))
    under = parse_config(dict(base, schedule=[{"kind": "one_cycle", "max_lr": 0.1, "total_steps": 20}],
                              optimizer=[{"kind": "momentum", "momentum": {"kind": "inverse_sqrt", "lr": 0.9, "warmup_steps": 2}}]))
    assert hyphen["schedules"] == under["schedules"] and hyphen["optimizers"] == under["optimizers"]


def test_sweep_without_matplotlib_says_it_drew_no_figures(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    out = tmp_path / "out"
    assert main(["sweep", str(write(tmp_path, SMALL)), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "no figures: matplotlib is not installed" in printed
    assert (out / "results.npz").exists() and not (out / "figures").exists()
    assert main(["sweep", str(write(tmp_path, SMALL)), "--out", str(tmp_path / "b"), "--no-progress",
                 "--no-plots"]) == 0
    assert "no figures" not in capsys.readouterr().out  # asked for none: nothing to say


def test_summary_counts_a_diverged_trajectory_as_infinitely_far():
    """One of five curvatures overflows (nan after inf - inf): the median is the other four's
    order statistic, the max inf, not nan for the whole row."""
    res = fd.sweep({"run": {"steps": 400, "dtype": "float32"}, "curvatures": {"values": [0.1, 0.5, 1, 2, 300]},
                    "schedule": {"kind": "constant", "lr": 0.1}}, progress=False)
    assert int(res.diverged.sum()) == 1
    row = res.summary().splitlines()[2].split()
    loss = 0.5 * res.curvatures * res.w[0, 0].astype(np.float64) ** 2
    assert float(row[2]) == pytest.approx(np.sort(loss)[2], rel=1e-3)  # (the median of five, one infinite)
    assert row[3] == "inf" and row[4] == "4/5" and row[5] == "1"


def _toml(tmp_path, text):
    path = tmp_path / "cfg.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_momentum_schedule_s_warmup_is_in_its_label_and_column():
    """Two momentum tables apart only by their warmup are two settings in the labels and the
    frame's ``optimizer_momentum`` column (a groupby merged them)."""
    pytest.importorskip("pandas")
    cfg = {"run": {"steps": 40}, "curvatures": {"values": [1.0]}, "schedule": {"kind": "constant", "lr": 0.1},
           "optimizer": {"kind": "momentum", "momentum": [{"kind": "constant", "lr": 0.9},
                                                           {"kind": "constant", "lr": 0.9, "warmup": 10}]}}
    res = fd.sweep(cfg, progress=False)
    frame = res.to_dataframe(final=True)
    assert frame["optimizer_momentum"].tolist() == ["constant(lr=0.9)", "constant(lr=0.9,warmup=10)"]
    assert len(set(res.optimizers)) == 2 and "warmup=10" in res.optimizers[1]
    want = fd.simulate([1.0], 0.1, steps=40, optimizer="momentum", momentum=fd.warmup(fd.constant(0.9), 10))
    assert res.w[1, 0, 0] == want.w[0]


@pytest.mark.parametrize("line, key, text", [
    (4, "w0", "[run]\nsteps = 10\ndtype = 'float32'\nw0 = 1e39\n[curvatures]\nvalues = [1.0]\n"),
    (5, "values", "[run]\nsteps = 10\ndtype = 'float32'\n[curvatures]\nvalues = [1.0, 1e39]\n"),
    (10, "noise", "[run]\nsteps = 10\ndtype = 'float32'\n[curvatures]\nvalues = [1.0]\n"
                  "[[schedule]]\nkind = 'constant'\nlr = 0.1\n[[optimizer]]\nnoise = 1e39\n"),
])
def test_float32_ranges_are_checked_with_the_config(tmp_path, capsys, line, key, text):
    """A float32 sweep's w0, curvatures and noise beyond float32 are refused by --dry-run with
    the key and line (they failed at run time, leaving a directory the fixed config could not use)."""
    if "[[schedule]]" not in text:
        text += "[[schedule]]\nkind = 'constant'\nlr = 0.1\n"
    path = _toml(tmp_path, text)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"cfg.toml:{line}:" in err and f".{key}: " in err and "within float32's range" in err, err
    assert not (tmp_path / "out").exists()


def test_a_companion_error_names_its_own_table_and_line(tmp_path):
    """The settings a grid expands into do not shift the table an error names."""
    path = _toml(tmp_path, """\
        [run]
        steps = 50
        [curvatures]
        values = [1.0]
        [[schedule]]
        kind = "step"
        lr = 0.1
        gamma = 0.5
        period = 10
        [[optimizer]]
        kind = "gd"
        noise = [0.1, 0.2, 0.3]
        [[optimizer]]
        kind = "momentum"
        momentum = "companion"
        [[optimizer]]
        kind = "nesterov"
        momentum = 0.9
        """)
    with pytest.raises(SweepConfigError, match=r"cfg.toml:15: optimizer\[1\]\.momentum: 'companion' takes"):
        parse_config(path)


def test_a_grid_over_a_setting_the_optimizer_does_not_read_is_refused():
    cfg = {"run": {"steps": 10}, "curvatures": {"values": [1.0]}, "schedule": {"kind": "constant", "lr": 0.1}}
    with pytest.raises(SweepConfigError, match=r"optimizer\[0\]\.on_drop: is a grid over a setting that adam does "
                                               r"not read"):
        parse_config({**cfg, "optimizer": {"kind": "adam", "on_drop": ["keep", "reset"]}})
    parse_config({**cfg, "optimizer": {"kind": "adam", "on_drop": "keep"}})  # one value: harmless
    parse_config({**cfg, "optimizer": {"kind": ["adam", "momentum"], "on_drop": ["keep", "reset"]}})


def test_labels_with_dollar_signs_draw_as_text(tmp_path):
    """A config's label is plain text in the figures: a lone ``$`` failed the figure step."""
    pytest.importorskip("matplotlib")
    cfg = {"run": {"steps": 20, "every": 5}, "curvatures": {"values": [0.5, 1.0]},
           "schedule": [{"kind": "constant", "lr": 0.1, "label": "cost $x^^2$ run"},
                        {"kind": "constant", "lr": 0.2, "label": "budget $5"}],
           "optimizer": {"kind": "gd", "label": "gd $"}}
    fd.sweep(cfg, tmp_path / "out", progress=False)
    assert sorted(os.listdir(tmp_path / "out" / "figures")) == ["final_w_0.png", "loss_0.png", "lr.png"]


def test_an_expected_sweep_s_summary_compares_with_the_rms_start():
    """With a random start, "closer than it started" compares with sqrt(w0² + w0_var)."""
    cfg = {"run": {"steps": 40, "mode": "expected", "w0": 0.0, "w0_var": 1.0}, "curvatures": {"values": [0.1, 1.0]},
           "schedule": {"kind": "constant", "lr": 0.1}}
    summary = fd.sweep(cfg, progress=False).summary()
    assert "rms w_N < rms w_0" in summary and " 2/2 " in summary, summary


def test_a_dict_config_takes_numpy_numbers_and_arrays():
    """A config made in Python may hold NumPy numbers and arrays: the same config as Python's."""
    plain = {"run": {"steps": 10, "seed": 3}, "curvatures": {"values": [0.5, 1.0]},
             "schedule": {"kind": "step", "lr": 0.1, "gamma": 0.5, "period": [2, 5]},
             "optimizer": {"kind": "momentum", "momentum": 0.9, "batch_size": 4, "noise": 0.1}}
    numpy = {"run": {"steps": np.int64(10), "seed": np.uint8(3)}, "curvatures": {"values": np.array([0.5, 1.0])},
             "schedule": {"kind": "step", "lr": np.float64(0.1), "gamma": np.float64(0.5),
                          "period": [np.int64(2), np.int64(5)]},
             "optimizer": {"kind": "momentum", "momentum": np.float64(0.9), "batch_size": np.int64(4),
                           "noise": np.float64(0.1)}}
    assert parse_config(numpy) == parse_config(plain)


@pytest.mark.parametrize("options, error, match", [
    (dict(out=""), SweepConfigError, r"^--out must be a directory path, got ''"),
    (dict(out=3), TypeError, r"^out must be a directory path .* got 3"),
    (dict(client="tcp://127.0.0.1:8786"), TypeError, r"^client must be a dask.distributed.Client .* got "
                                                      r"'tcp://127.0.0.1:8786'"),
    (dict(client=42), TypeError, r"^client must be a dask.distributed.Client"),
    (dict(scheduler=42), TypeError, r"^scheduler must be a Dask scheduler's address \(a str\), got 42"),
    (dict(scheduler="tcp://127.0.0.1:8786", connect_timeout=-1), ValueError, r"^connect_timeout must be > 0, got -1"),
    (dict(scheduler="tcp://127.0.0.1:8786", connect_timeout=float("nan")), ValueError, r"^connect_timeout must be"),
    (dict(scheduler="tcp://127.0.0.1:8786", connect_timeout=float("inf")), ValueError, r"^connect_timeout must be"),
    (dict(connect_timeout=0), ValueError, r"^connect_timeout must be > 0, got 0"),
    (dict(echo=42), TypeError, r"^echo must be a text stream"),
], ids=["out-empty", "out-int", "client-address", "client-int", "scheduler-int", "timeout-negative", "timeout-nan",
        "timeout-inf", "timeout-0", "echo-int"])
def test_bad_run_options_are_refused_before_anything_is_written(tmp_path, monkeypatch, options, error, match):
    """``sweep``'s options beside the config are checked first: nothing is written (an empty
    ``out`` wrote the sweep into the current directory; a client that is not one wrote the
    directory, then failed, and the right call was refused as a sweep already there)."""
    monkeypatch.chdir(tmp_path)
    cfg = {"run": {"steps": 5}, "curvatures": {"values": [1.0]}, "schedule": {"kind": "constant", "lr": 0.1}}
    options = {"out": tmp_path / "out", **options}
    with pytest.raises(error, match=match):
        fd.sweep(cfg, progress=False, plots=False, **options)
    assert list(tmp_path.iterdir()) == []


def test_a_normalised_config_is_checked_before_anything_is_written(tmp_path):
    """A sweep's own normalised config runs again as it is; one edited by hand is refused
    naming what is wrong, with nothing written (``steps = -5`` wrote the directory, then failed
    inside the run; a missing key was a KeyError)."""
    cfg = {"run": {"steps": 8, "every": 4}, "curvatures": {"values": [0.5, 2.0]},
           "schedule": {"kind": "step", "lr": 0.1, "gamma": 0.5, "period": [2, 4]},
           "optimizer": {"kind": "momentum", "momentum": {"kind": "cosine", "lr": 0.9, "total_steps": 8}}}
    first = fd.sweep(cfg, progress=False, plots=False)
    again = fd.sweep(first.config, tmp_path / "again", progress=False, plots=False)
    np.testing.assert_array_equal(again.loss, first.loss)
    c = first.config
    for bad, match in [
        (dict(c, run=dict(c["run"], steps=-5)), r"run\.steps: must be >= 1, got -5"),
        ({k: v for k, v in c.items() if k != "optimizers"}, r"needs the keys \['optimizers'\]"),
        (dict(c, curvatures=[1.0, float("nan")]), "curvatures"),
        (dict(c, schedules=[dict(c["schedules"][0], params={"lr": -1.0, "gamma": 0.5, "period": 2})]),
         r"schedules\[0\] is not a normalised schedule \(ValueError: lr must be >= 0"),
        (dict(c, optimizers=[dict(c["optimizers"][0], kind="sgdx")]), r"optimizers\[0\] must be a normalised"),
    ]:
        with pytest.raises(SweepConfigError, match=match):
            fd.sweep(bad, tmp_path / "bad", progress=False, plots=False)
        assert not (tmp_path / "bad").exists()
