"""fastdecay.plots: one function per figure, each with labelled axes, a title and a legend."""

import re
import subprocess
import sys

import numpy as np
import pytest

import fastdecay as fd

plots = pytest.importorskip("fastdecay.plots")
plt = pytest.importorskip("matplotlib.pyplot")

SCHEDS = {"step": fd.step(0.05, 0.5, 25), "exponential": fd.exponential(0.05, half_life=25)}


def labelled(fig):
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert visible
    for ax in visible:
        assert ax.get_xlabel() and ax.get_ylabel(), (ax.get_xlabel(), ax.get_ylabel())
        assert ax.get_title() or fig.get_suptitle()
    assert any(ax.get_legend() is not None for ax in visible) or fig.legends
    return fig


def test_lr_curves_draw_the_rates(tmp_path):
    fig = labelled(plots.lr_curves(SCHEDS, 100, path=tmp_path / "sub" / "lr.png"))
    assert (tmp_path / "sub" / "lr.png").read_bytes()[:4] == b"\x89PNG"
    lines = fig.axes[0].get_lines()
    np.testing.assert_array_equal(lines[0].get_ydata(), SCHEDS["step"].table(100))
    assert [ln.get_label() for ln in lines] == ["step", "exponential"]


def test_a_batch_of_schedules_is_one_curve_each():
    fig = plots.lr_curves(fd.exponential(0.1, gamma=[0.9, 0.95, 0.99]), 50)
    assert len(fig.axes[0].get_lines()) == 3
    with pytest.raises(ValueError, match="labels"):
        plots.lr_curves(SCHEDS, 10, labels=["only one"])
    with pytest.raises(TypeError, match="Schedules"):
        plots.lr_curves([0.1], 10)


def test_stability_ceiling_marks_the_onsets():
    lam = np.array([1.0, 50.0, 100.0])
    fig = labelled(plots.stability_ceiling(SCHEDS, lam, 250))
    markers = [ln for ln in fig.axes[0].get_lines() if ln.get_marker() == "o" and len(ln.get_xdata())]
    onsets = fd.stability_onset(SCHEDS["step"], lam, max_steps=250)
    assert sorted(markers[0].get_xdata().tolist()) == sorted(int(t) for t in onsets if t > 0)


def test_trajectory_figures_from_a_simulation():
    lam = np.array([[[0.1], [10.0]]] * 2)
    res = fd.simulate(lam, fd.stack(list(SCHEDS.values()))[:, None], steps=100, every=5)

    class Panels:  # (panels, curves, steps): one panel per curvature
        steps = res.steps
        loss = np.moveaxis(res.loss, 1, 0)
        displacement = np.moveaxis(res.displacement, 1, 0)

    fig = labelled(plots.loss_curves(Panels, labels=list(SCHEDS), panels=["0.1", "10"]))
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2
    labelled(plots.displacement_signatures(Panels, labels=list(SCHEDS), panels=["0.1", "10"]))
    labelled(plots.final_vs_curvature([0.1, 10.0], np.abs(res.w[..., 0]), labels=list(SCHEDS), reference=1.0))


def test_adamw_figures():
    labelled(plots.adam_effective_step(SCHEDS, 200))
    fig = labelled(plots.weight_decay_shrinkage(SCHEDS["exponential"], 0.1, 200))
    per_step = [ln.get_ydata() for ln in fig.axes[0].get_lines()]
    lr = SCHEDS["exponential"].table(200)
    np.testing.assert_allclose(per_step[0], lr * 0.1)
    np.testing.assert_allclose(per_step[1], np.full(200, 0.05 * 0.1), rtol=1e-9)  # constant_shrinkage
    # any rate: one without a closed-form reciprocal tabulated over the steps drawn; a warmup from 0
    # with the rate its weight decay is relative to
    for lr, ref in ((fd.cosine(0.1, 1000), None), (fd.warmup(fd.cosine(0.1, 300), 20), 0.1)):
        fig = plots.weight_decay_shrinkage(lr, 0.01, 200, reference_lr=ref)
        shrink = fig.axes[0].get_lines()[1].get_ydata()
        np.testing.assert_allclose(shrink[1:], np.full(199, 0.01 * 0.1), rtol=1e-12)


def test_import_fastdecay_does_not_import_matplotlib():
    code = "import sys, fastdecay as fd; assert 'matplotlib' not in sys.modules; fd.plots; " \
           "assert 'matplotlib' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_overflowed_trajectories_are_marked_not_dropped():
    fig = plots.final_vs_curvature([1.0, 2.0, 3.0], [[1e-3, np.inf, 2.0], [np.nan, np.nan, np.nan]],
                                   labels=["a", "b"])
    marked = [ln for ln in fig.axes[0].get_lines() if ln.get_marker() == "x"]
    assert [ln.get_xdata().tolist() for ln in marked] == [[2.0], [1.0, 2.0, 3.0]]
    assert marked[0].get_ydata().tolist() == [2.0]  # at the largest finite value


def test_final_weights_are_drawn_in_curvature_order_with_zeros_marked():
    fig = plots.final_vs_curvature([100.0, 0.01, 1.0, 10.0], [[1e6, 1e-3, 1e-6, 0.0]], labels=["a"])
    curve = fig.axes[0].get_lines()[0]
    assert curve.get_xdata().tolist() == [0.01, 1.0, 100.0] and curve.get_ydata().tolist() == [1e-3, 1e-6, 1e6]
    (zeros,) = [ln for ln in fig.axes[0].get_lines() if ln.get_marker() == "v"]
    assert zeros.get_xdata().tolist() == [10.0] and zeros.get_ydata().tolist() == [1e-6]  # at the smallest value


@pytest.mark.parametrize("call, match", [
    (lambda: plots.final_vs_curvature([1, 2], [[1, 2], [3, 4]], labels=["a"]), r"values must have one row per label"),
    (lambda: plots.final_vs_curvature([], np.zeros((1, 0)), labels=["a"]), r"at least one curvature"),
    (lambda: plots.loss_curves(fd.simulate([1.0], 0.1, steps=5), labels=["a"]), r"result must hold a recorded loss"),
    (lambda: plots.loss_curves(fd.simulate(np.ones((2, 3, 1)), 0.1, steps=5, every=1), labels=["a", "b", "c"],
                               panels=["only one"]), r"panels must have one title per panel \(2\), got 1"),
    (lambda: plots.weight_decay_shrinkage(fd.constant([0.1, 0.2]), 0.01, 10), r"lr must be one schedule"),
    (lambda: plots.lr_curves({"grid": fd.constant([0.1, 0.2])}, 10), r"one schedule a curve, got batch_shape \(2,\) "
                                                                      r"for 'grid'"),
    (lambda: plots.stability_ceiling([fd.constant([0.1, 0.2])], [1.0], 10), r"one schedule a curve"),
], ids=["labels", "empty", "not recorded", "panel titles", "batch lr", "batch in a dict", "batch in a list"])
def test_inputs_a_figure_cannot_show_are_refused_by_name(call, match):
    with pytest.raises(ValueError, match=match):
        call()
    assert not plt.get_fignums()


def test_the_displacement_of_one_problem_is_one_curve():
    res = fd.simulate(np.array([1.0]), fd.exponential(0.1, gamma=0.9), steps=10, every=1)
    fig = plots.displacement_signatures(res, labels=["a"])
    assert fig.axes[0].get_lines()[0].get_ydata().shape == (11,)


def test_escape_probability_figure():
    fig = labelled(plots.escape_probability(SCHEDS, 0.025, 0.1, 100))
    cumulative = [ln.get_ydata() for ln in fig.axes[1].get_lines()]
    np.testing.assert_array_equal(cumulative[0], fd.escape_probability(SCHEDS["step"], 0.025, 0.1, 100).cumulative)
    assert cumulative[0][-1] > cumulative[1][-1]  # the step schedule holds its high rate longer


def test_escape_figure_panels_share_the_steps_and_the_legend_covers_no_curve():
    fig = plots.escape_probability(SCHEDS, 0.025, 0.1, 250)
    left, right = fig.axes[:2]
    assert left.get_xlim() == right.get_xlim() == (0.0, 249.0)
    assert left.get_legend() is None and right.get_legend() is None and len(fig.legends) == 1


def test_stability_figure_spends_its_height_on_curvatures_a_schedule_must_bring_back():
    lam = np.logspace(-2, 2, 13)
    fig = plots.stability_ceiling(SCHEDS, lam, 250)
    ax = fig.axes[0]
    bottom, top = ax.get_ylim()
    lowest_ceiling = 2.0 / 0.05
    assert bottom == pytest.approx(lowest_ceiling / 3.0) and top == pytest.approx(100.0 * 30.0)
    assert "stable from step 0" in " ".join(t.get_text() for t in ax.texts)


def test_demo_titles_write_symbols_as_math_text(tmp_path):
    from fastdecay import _demo

    _demo.draw(str(tmp_path), _demo.schedules())
    import matplotlib.image

    for png in sorted(tmp_path.glob("*.png")):
        assert matplotlib.image.imread(png).shape[0] > 100
    figs = [plots.lr_curves(SCHEDS, 10, title="x"), plots.adam_effective_step(SCHEDS, 10),
            plots.escape_probability(SCHEDS, 0.025, 0.1, 10), plots.weight_decay_shrinkage(SCHEDS["step"], 0.1, 10)]
    titles = [ax.get_title() for f in figs for ax in f.axes] + [f.get_suptitle() for f in figs]
    for title in titles:
        plain = re.sub(r"\$[^$]*\$", "", title)  # what is not math text
        for ascii_symbol in ("eta", "beta", "lambda", "<-", " B =", " c ="):
            assert ascii_symbol not in plain, title


def test_save_writes_the_format_its_extension_names(tmp_path):
    """It wrote PNG bytes into any name (x.pdf, x.txt); the command line's --plot likewise."""
    from fastdecay.cli import main

    fig = plots.lr_curves({"step": fd.step(0.1, 0.5, 10)}, 30)
    heads = {"x.pdf": b"%PDF", "x.svg": b"<?xml", "x.png": b"\x89PNG", "x": b"\x89PNG"}
    for name, head in heads.items():
        assert plots.save(fig, tmp_path / name) == str(tmp_path / name)
        assert (tmp_path / name).read_bytes().startswith(head), name
    with pytest.raises(ValueError, match=r"path must end in a figure format's extension \(.*\.pdf.*\) or none"):
        plots.save(fig, tmp_path / "sub" / "x.txt")
    assert not (tmp_path / "sub").exists()  # refused before the directory is made
    assert main(["schedule", "step", "--lr", "0.1", "--gamma", "0.5", "--period", "10", "--steps", "3",
                 "--plot", str(tmp_path / "rates.pdf")]) == 0
    assert (tmp_path / "rates.pdf").read_bytes().startswith(b"%PDF")
