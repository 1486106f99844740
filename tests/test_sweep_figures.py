"""The sweep's loss figure where trajectories overflow: non-finite values left out and
marked, diverged runs named, limits from the finite data, no overflow warning."""

import warnings

import numpy as np
import pytest

import fastdecay as fd

pytest.importorskip("matplotlib")
from fastdecay import plots  # noqa: E402

# plain GD on λ = 300: lr 0.005 contracts, lr 0.05 overflows to inf (diverged), step(period=10)
# drops to a stable rate after growing 10 steps, step(period=300) overflows before its drop
CONFIG = {"run": {"steps": 400, "every": 5}, "curvatures": {"values": [0.1, 1.0, 300.0]},
          "schedule": [{"kind": "constant", "lr": [0.005, 0.05]},
                       {"kind": "step", "lr": 0.1, "gamma": 0.01, "period": [10, 300]}]}


@pytest.fixture(scope="module")
def res():
    return fd.sweep(CONFIG, progress=False)


def test_the_grid_really_overflows(res):
    assert res.diverged[0, :, 2].tolist() == [False, True, False, True]
    assert not res.diverged[0, :, :2].any()
    assert np.isinf(res.loss[0, 1, 2]).any() and np.isfinite(res.loss[0, 2, 2]).all()


def test_sweep_figures_draw_without_warnings(res, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's "overflow encountered in exp" included
        paths = res.plot(tmp_path)
    assert sorted(p.rsplit("/", 1)[-1] for p in paths) == ["final_w_0.png", "loss_0.png", "lr.png"]
    for p in paths:
        with open(p, "rb") as f:
            assert f.read(4) == b"\x89PNG"


def test_loss_panel_masks_non_finite_values_and_marks_them(res):
    import dataclasses

    view = dataclasses.replace(res, loss=np.moveaxis(res.loss[0], 1, 0))  # (curvature, schedule, step)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plots.loss_curves(view, labels=res.schedules, panels=["0.1", "1", "300"], diverged=res.diverged[0].T)
        fig.canvas.draw()  # tick locators and layout run at draw time
    stiff = fig.axes[2]
    low, high = stiff.get_ylim()
    assert np.isfinite([low, high]).all() and 0 < low < high <= 1e300
    finite = res.loss[0, :, 2][np.isfinite(res.loss[0, :, 2]) & (res.loss[0, :, 2] > 0)]
    assert low <= finite.min() * 10 and high >= min(finite.max(), 1e300)  # not the (1, 10) of a failed autoscale
    curves = [line for line in stiff.get_lines() if line.get_linestyle() != "None"]
    marks = [line for line in stiff.get_lines() if line.get_marker() == "x"]
    assert len(curves) == 4
    for k, line in enumerate(curves):
        y = np.asarray(line.get_ydata(), dtype=np.float64)
        bad = ~np.isfinite(res.loss[0, k, 2])
        assert np.isnan(y[bad]).all() and np.isfinite(y[~bad & (res.loss[0, k, 2] > 0)]).all()
    # one x per stretch of non-finite losses, where it begins, in the curve's colour
    first_bad = {k: res.steps[np.argmax(~np.isfinite(res.loss[0, k, 2]))] for k in (1, 3)}
    assert sorted(float(m.get_xdata()[0]) for m in marks) == sorted(float(v) for v in first_bad.values())
    assert {m.get_color() for m in marks} == {curves[1].get_color(), curves[3].get_color()}
    notes = " ".join(t.get_text() for t in stiff.texts)
    assert "not finite from here on" in notes
    assert "diverged (final weight not finite): constant(lr=0.05), step(period=300)" in notes
    # the panels where nothing overflowed carry no note and no mark
    for ax in fig.axes[:2]:
        assert not ax.texts and not [line for line in ax.get_lines() if line.get_marker() == "x"]


def test_a_label_that_starts_with_an_underscore_is_in_the_legend():
    """matplotlib leaves a label starting with "_" out of legends: a schedule labelled "_zero"
    was drawn without its legend entry (a sweep's lr figure)."""
    fig = plots.lr_curves({"_zero": fd.constant(1e-3), "linear": fd.linear(0.1, 0.0, 50)}, 50)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert [t.lstrip("\u200b") for t in texts] == ["_zero", "linear"]
