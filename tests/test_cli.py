"""The ``fastdecay`` command line: schedule printing, help, and bad-argument handling."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import fastdecay as fd
from fastdecay.cli import SCHEDULE_KINDS, main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def table_rows(out):
    rows = [line.split() for line in out.strip().splitlines()[1:]]
    return np.array([int(r[0]) for r in rows]), np.array([float(r[1]) for r in rows])


def test_exponential_matches_torch_exponential_lr(capsys):
    code, out, err = run_cli(capsys, "schedule", "exponential", "--lr", "0.1", "--gamma", "0.9", "--steps", "10")
    assert code == 0 and err == ""
    steps, rates = table_rows(out)
    assert steps.tolist() == list(range(11))
    param = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([param], lr=0.1)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
    expected = [opt.param_groups[0]["lr"]]
    for _ in range(10):
        opt.step()
        sched.step()
        expected.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(rates, expected, rtol=2e-4)  # the table shows 4 significant digits
    assert "0.03487" in out.splitlines()[-1] and out.splitlines()[1].split() == ["0", "0.10000"]


def test_csv_and_json_are_full_precision(capsys):
    argv = ["schedule", "step", "--lr", "0.1", "--gamma", "0.5", "--period", "7", "--steps", "40", "--every", "3"]
    code, out, _ = run_cli(capsys, *argv, "--format", "csv")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0] == "step,lr"
    steps = np.array([int(x.split(",")[0]) for x in lines[1:]])
    rates = np.array([float(x.split(",")[1]) for x in lines[1:]])
    np.testing.assert_array_equal(steps, np.arange(0, 41, 3))
    np.testing.assert_array_equal(rates, fd.step(0.1, 0.5, 7)(steps))
    code, out, _ = run_cli(capsys, *argv, "--format", "json")
    doc = json.loads(out)
    assert doc["step"] == steps.tolist() and doc["lr"] == rates.tolist()


@pytest.mark.parametrize(
    "kind, args, factory",
    [
        ("constant", ["--lr", "0.3"], lambda: fd.constant(0.3)),
        ("multistep", ["--lr", "1", "--gamma", "0.1", "--milestones", "3,5"], lambda: fd.multistep(1, 0.1, [3, 5])),
        ("exponential", ["--lr", "1", "--half-life", "4", "--staircase", "--decay-steps", "2"],
         lambda: fd.exponential(1, half_life=4, staircase=True, decay_steps=2)),
        ("inverse_time", ["--lr", "1", "--rate", "0.5"], lambda: fd.inverse_time(1, 0.5)),
        ("polynomial", ["--lr", "1", "--total_steps", "7", "--power", "2", "--cycle"],
         lambda: fd.polynomial(1, 7, power=2.0, cycle=True)),
        ("cosine", ["--lr", "1", "--total-steps", "9", "--min-lr", "0.1"], lambda: fd.cosine(1, 9, min_lr=0.1)),
        ("cosine_restarts", ["--lr", "1", "--period", "4", "--period-mult", "2"],
         lambda: fd.cosine_restarts(1, 4, period_mult=2)),
        ("linear", ["--start-lr", "0", "--end-lr", "1", "--total-steps", "8"], lambda: fd.linear(0, 1, 8)),
        ("piecewise", ["--boundaries", "2,5", "--values", "1,0.5,0.1"], lambda: fd.piecewise([2, 5], [1, 0.5, 0.1])),
        ("one_cycle", ["--max-lr", "1", "--total-steps", "20"], lambda: fd.one_cycle(1, 20)),
        ("cyclic", ["--base-lr", "0.1", "--max-lr", "1", "--step-size-up", "3", "--mode", "triangular2"],
         lambda: fd.cyclic(0.1, 1, 3, mode="triangular2")),
        ("inverse_sqrt", ["--lr", "1", "--warmup-steps", "4"], lambda: fd.inverse_sqrt(1, 4)),
        ("wsd", ["--lr", "1", "--total-steps", "20", "--warmup-steps", "2", "--decay", "cosine"],
         lambda: fd.wsd(1, 20, warmup_steps=2, decay="cosine")),
    ],
)
def test_every_kind_prints_its_closed_form(capsys, kind, args, factory):
    code, out, err = run_cli(capsys, "schedule", kind, *args, "--steps", "25", "--format", "csv")
    assert code == 0, err
    rates = np.array([float(x.split(",")[1]) for x in out.strip().splitlines()[1:]])
    np.testing.assert_array_equal(rates, factory().table(26))


def test_every_factory_is_offered():
    composite = {"join", "stack", "warmup"}  # take schedules, not numbers (warmup is --warmup)
    offered = set(SCHEDULE_KINDS) | composite
    factories = {"constant", "step", "multistep", "exponential", "inverse_time", "polynomial", "cosine",
                 "cosine_restarts", "linear", "piecewise", "one_cycle", "cyclic", "inverse_sqrt", "wsd"}
    assert factories | composite <= offered


def test_warmup_option(capsys):
    code, out, _ = run_cli(capsys, "schedule", "cosine", "--lr", "1", "--total-steps", "10", "--warmup", "4",
                           "--steps", "14", "--format", "json")
    assert code == 0
    np.testing.assert_array_equal(json.loads(out)["lr"], fd.warmup(fd.cosine(1, 10), 4).table(15))


def test_tiny_rates_stay_readable(capsys):
    code, out, _ = run_cli(capsys, "schedule", "exponential", "--lr", "1", "--gamma", "0.01", "--steps", "9")
    assert code == 0
    _, rates = table_rows(out)
    np.testing.assert_allclose(rates, fd.exponential(1, gamma=0.01).table(10), rtol=1e-5)


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["schedule", "step", "--lr", "0.1", "--gamma", "-1", "--period", "3", "--steps", "3"], "gamma must be > 0"),
        (["schedule", "step", "--lr", "0.1", "--steps", "3"], "--gamma"),
        (["schedule", "exponential", "--lr", "0.1", "--steps", "3"], "exactly one of gamma, rate, half_life"),
        (["schedule", "exponential", "--lr", "x", "--gamma", "0.9", "--steps", "3"], "invalid float value: 'x'"),
        (["schedule", "exponential", "--lr", "0.1", "--gamma", "0.9", "--steps", "-1"], "--steps"),
        (["schedule", "exponential", "--lr", "0.1", "--gamma", "0.9", "--steps", "3", "--every", "0"], "--every"),
        (["schedule", "multistep", "--lr", "1", "--gamma", "0.1", "--milestones", "5,-3", "--steps", "3"],
         "milestones must be non-negative"),
        (["schedule", "piecewise", "--boundaries", "2", "--values", "1", "--steps", "3"], "values must have"),
        (["schedule", "nope", "--steps", "3"], "invalid choice: 'nope'"),
        (["schedule", "cyclic", "--base-lr", "0", "--max-lr", "1", "--step-size-up", "2", "--mode", "x",
          "--steps", "3"], "--mode"),
        (["schedule", "constant", "--lr", "0.1", "--steps", str(2**53 + 1), "--every", str(2**52)],
         "--steps must be at most 2**53"),
        ([], "COMMAND"),
        (["sweep"], "CONFIG.toml"),
        (["sweep", "x.toml", "--connect-timeout", "-1"], "--connect-timeout"),
    ],
)
def test_bad_arguments_exit_2_with_the_sub_commands_usage_and_one_error_line(capsys, argv, needle):
    """Malformed options: the sub-command's usage, then one line; a bad value in well-formed
    options (found by the library's checks): one line. Both point to the sub-command's help."""
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert out == ""
    assert_usage_then_error(err, _prog(argv), needle, usage=needle not in BAD_VALUES)


BAD_VALUES = {"gamma must be > 0", "exactly one of gamma, rate, half_life", "milestones must be non-negative",
              "values must have", "--steps must be at most 2**53"}


@pytest.mark.parametrize("last, every", [(2**53, 3002399751580331), (2**53, 2**53), (2**53 - 1, 2**52 - 1)])
def test_huge_steps_print_every_kth_step_up_to_the_last(capsys, last, every):
    code, out, _ = run_cli(capsys, "schedule", "linear", "--start-lr", "1", "--end-lr", "0", "--total-steps",
                           str(2**53), "--steps", str(last), "--every", str(every))
    steps, rates = table_rows(out)
    assert code == 0 and steps.tolist() == list(range(0, last + 1, every))
    np.testing.assert_allclose(rates, fd.linear(1, 0, 2**53)(steps), rtol=1e-5)


def _prog(argv):
    """The (sub-)command that owns an error in ``argv``: fastdecay, fastdecay schedule, fastdecay schedule KIND."""
    words = ["fastdecay"]
    if argv and argv[0] in ("schedule", "demo", "sweep", "compile"):
        words.append(argv[0])
        if argv[0] == "schedule" and len(argv) > 1 and argv[1].replace("-", "_") in SCHEDULE_KINDS:
            words.append(argv[1])
    return " ".join(words)


def assert_usage_then_error(err, prog, needle, usage=True):
    """stderr is the usage of ``prog`` (when ``usage``) and one line ``prog: error: ... (see
    prog --help)``."""
    lines = err.rstrip("\n").split("\n")
    if not usage:
        assert len(lines) == 1, err
    else:
        assert err.startswith(f"usage: {prog} ") or err.startswith(f"usage: {prog}\n"), err
    assert lines[-1].startswith(f"{prog}: error: ") and lines[-1].endswith(f"(see {prog} --help)"), err
    assert needle in lines[-1], err
    assert all(line.startswith(" ") for line in lines[1:-1]), err  # the usage's continuation lines


@pytest.mark.parametrize("argv, needle", [
    (["schedule", "multistep", "--lr", "1", "--gamma", "0.1", "--milestones", "3", "6", "--steps", "7", "--bogus"],
     "unrecognized arguments: --bogus"),
    (["demo", "--bogus"], "unrecognized arguments: --bogus"),
    (["sweep", "x.toml", "--resume", "now"], "unrecognized arguments: now"),
])
def test_unrecognized_arguments_are_reported_by_their_sub_command(capsys, argv, needle):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert_usage_then_error(err, _prog(argv), needle)


@pytest.mark.parametrize("kind, spaced, commas", [
    ("multistep", ["--lr", "1", "--gamma", "0.5", "--milestones", "6", "3", "3"], ["--lr", "1", "--gamma", "0.5",
                                                                                    "--milestones", "6,3,3"]),
    ("piecewise", ["--boundaries", "2", "5", "--values", "1", "0.5", "0.1"], ["--boundaries", "2,5", "--values",
                                                                              "1,0.5,", "0.1"]),
])
def test_lists_take_spaces_commas_or_both(capsys, kind, spaced, commas):
    code_a, out_a, _ = run_cli(capsys, "schedule", kind, *spaced, "--steps", "8", "--format", "csv")
    code_b, out_b, _ = run_cli(capsys, "schedule", kind, *commas, "--steps", "8", "--format", "csv")
    assert code_a == code_b == 0 and out_a == out_b
    rates = [float(line.split(",")[1]) for line in out_a.strip().splitlines()[1:]]
    factory = SCHEDULE_KINDS[kind]
    want = factory(1.0, 0.5, [6, 3, 3]) if kind == "multistep" else factory([2, 5], [1.0, 0.5, 0.1])
    assert rates == want.table(9).tolist()


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["sweep", "--help"], ["schedule", "--help"]]
                         + [["schedule", kind, "--help"] for kind in SCHEDULE_KINDS])
def test_help_speaks_of_the_library_only(capsys, argv):
    with pytest.raises(SystemExit):
        main(argv)
    text = " ".join(capsys.readouterr().out.split()).lower()
    for internal in ("api contract", "main job", "seed analysis", "seed's", "the issue", "api.md"):
        assert internal not in text, (argv, internal)


def test_plot_option_writes_png_and_bad_path_is_exit_2(capsys, tmp_path):
    png = tmp_path / "rates.png"
    code, out, _ = run_cli(capsys, "schedule", "step", "--lr", "0.1", "--gamma", "0.5", "--period", "10",
                           "--steps", "50", "--plot", str(png))
    assert code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "a-file").write_text("")
    code, out, err = run_cli(capsys, "schedule", "constant", "--lr", "1", "--steps", "5",
                             "--plot", str(tmp_path / "a-file" / "x.png"))
    assert code == 2 and out == ""
    assert_usage_then_error(err, "fastdecay schedule constant", "--plot", usage=False)


def test_outputs_that_cannot_be_written_or_held_are_exit_2_before_any_work(capsys, tmp_path):
    code, out, err = run_cli(capsys, "schedule", "constant", "--lr", "0.1", "--steps", "99999999999999999999")
    assert code == 2 and out == ""
    assert_usage_then_error(err, "fastdecay schedule constant", "--steps=99999999999999999999 asks for", usage=False)
    (tmp_path / "a-file").write_text("")
    code, out, err = run_cli(capsys, "demo", "--out", str(tmp_path / "a-file"))
    assert code == 2 and out == ""  # refused before the table
    assert_usage_then_error(err, "fastdecay demo", "cannot write the figures into --out", usage=False)
    config = tmp_path / "tiny.toml"
    config.write_text('[run]\nsteps = 10\n[curvatures]\nvalues = [1.0]\n[[schedule]]\nkind = "constant"\nlr = 0.2\n')
    code, out, err = run_cli(capsys, "sweep", str(config), "--out", str(tmp_path / "a-file" / "sub"))
    assert code == 2
    assert_usage_then_error(err, "fastdecay sweep", "cannot be created: Not a directory", usage=False)
    assert not (tmp_path / "a-file").is_dir()


@pytest.mark.parametrize("argv", [["--help"], ["schedule", "--help"], ["schedule", "wsd", "--help"],
                                  ["demo", "--help"], ["sweep", "--help"]])
def test_help_everywhere(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    assert "usage: fastdecay" in capsys.readouterr().out


def test_python_dash_m_and_console_script_agree():
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "fastdecay"]
    assert script.load() is main
    cmd = ["schedule", "exponential", "--lr", "0.1", "--gamma", "0.9", "--steps", "10"]
    via_m = subprocess.run([sys.executable, "-m", "fastdecay", *cmd], capture_output=True, text=True, check=True)
    assert via_m.stdout.splitlines()[-1].split() == ["10", "0.03487"]
    installed = os.path.join(os.path.dirname(sys.executable), "fastdecay")
    if os.path.exists(installed):  # the script pip wrote next to this interpreter
        via_script = subprocess.run([installed, *cmd], capture_output=True, text=True, check=True)
        assert via_script.stdout == via_m.stdout
    bad = subprocess.run([sys.executable, "-m", "fastdecay", "schedule", "step", "--steps", "1"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert_usage_then_error(bad.stderr, "fastdecay schedule step", "--gamma")


def test_demo_prints_the_table_and_writes_labelled_figures(tmp_path, capsys):
    from fastdecay import _demo

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    rows = [line for line in text.splitlines() if line[:8].strip() and line.count("|") == 4]
    body = [r for r in rows if r.split("|")[0].strip().replace(".", "").replace("e-", "").isdigit()]
    assert len(body) == len(_demo.TABLE_CURVATURES)
    lam = np.array([float(r.split("|")[0]) for r in body])
    np.testing.assert_allclose(lam, _demo.TABLE_CURVATURES, rtol=5e-3)
    # stability onsets and divergence are the library's, not recomputed by the demo
    scheds = list(_demo.schedules().values())
    onset = np.array([[int(x) for x in r.split("|")[1].split()] for r in body]).T
    expected = np.asarray(fd.stability_onset(fd.stack(scheds)[:, None], _demo.TABLE_CURVATURES[None, :],
                                             max_steps=_demo.STEPS))
    np.testing.assert_array_equal(onset, expected)
    assert onset[0, -1] > onset[1, -1] > 0  # the step schedule leaves the unstable region later
    div = np.array([float(r.split("|")[3]) for r in body])
    np.testing.assert_allclose(div, fd.discretization_divergence(scheds[0], _demo.TABLE_CURVATURES, _demo.STEPS),
                               rtol=1e-2)
    final = np.array([[float(x) for x in r.split("|")[2].split()] for r in body])
    np.testing.assert_allclose(final[:, 0] / final[:, 1], div, rtol=2e-2)  # |w_N| step / exp, from fd.simulate
    for name in ("lr", "stability", "displacement", "loss", "final_w", "momentum", "escape", "adamw"):
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000, name


def test_demo_recovers_signed_weights_from_the_recording():
    from fastdecay import _demo

    lam = np.array([0.3, 4.0, 10.0])
    sched = fd.step(0.05, 0.5, 25)
    kw = dict(optimizer="momentum_lr_in_buffer", momentum=0.9, on_drop="keep")
    rec = fd.simulate(lam[:, None], sched, steps=60, every=1, **kw)
    w = _demo.signed_weights(rec, lam)
    for t in (1, 7, 26, 43, 60):
        np.testing.assert_allclose(w[:, t], fd.simulate(lam[:, None], sched, steps=t, **kw).w[:, 0], rtol=1e-9)


def test_json_writes_rates_that_are_not_finite_as_null(capsys):
    code, out, _ = run_cli(capsys, "schedule", "exponential", "--lr", "1", "--gamma", "10", "--steps", "400",
                           "--every", "100", "--format", "json")
    assert code == 0 and "Infinity" not in out
    assert json.loads(out)["lr"] == [1.0, 1e100, 1e200, 1e300, None]


def test_demo_figure_that_cannot_be_written_is_exit_2(tmp_path, capsys):
    (tmp_path / "lr.png").mkdir()  # the first figure's path is taken by a folder
    code, out, err = run_cli(capsys, "demo", "--out", str(tmp_path))
    assert code == 2
    assert "cannot write the figures into --out" in err and "lr.png" in err and "Traceback" not in err
    assert "stability onset" in out  # the table came first


def test_compile_jobs_must_be_positive(capsys):
    code, _, err = run_cli(capsys, "compile", "--jobs", "-3")
    assert code == 2 and "expected a positive integer, got '-3'" in err
