"""Sweep results into pandas and xarray (long format, parameters as columns), and the one
definition of a diverged trajectory."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastdecay as fd

pd = pytest.importorskip("pandas")
xr = pytest.importorskip("xarray")

CONFIG = {
    "run": {"steps": 40, "every": 8, "chunk_size": 5, "seed": 2},
    "curvatures": {"logspace": [-1, 1, 3]},
    "schedule": [
        {"kind": "step", "lr": 0.1, "gamma": 0.5, "period": [10, 20]},
        {"kind": "multistep", "lr": 0.1, "gamma": 0.1, "milestones": [[10, 30], [20, 25]], "warmup": 4},
        {"kind": "exponential", "lr": [0.05, 0.1], "half_life": 15, "staircase": True},
    ],
    "optimizer": [{"kind": "momentum", "on_drop": ["keep", "rescale"], "noise": 0.01},
                  {"kind": "adamw", "betas": [0.8, 0.99], "weight_decay": 0.01}],
}


@pytest.fixture(scope="module")
def res():
    return fd.sweep(CONFIG, progress=False)


def test_long_dataframe_has_one_row_per_trajectory_and_step_with_parameters_as_columns(res):
    df = res.to_dataframe()
    n_opt, n_s, n_c, n_t = res.loss.shape
    assert (n_opt, n_s, n_c, n_t) == (3, 6, 3, 6)
    assert len(df) == n_opt * n_s * n_c * n_t
    for name in ("optimizer", "optimizer_kind", "optimizer_momentum", "optimizer_beta1", "optimizer_beta2",
                 "optimizer_eps", "optimizer_weight_decay", "optimizer_on_drop", "optimizer_noise", "schedule",
                 "schedule_kind", "schedule_lr", "schedule_gamma", "schedule_period", "schedule_milestones",
                 "schedule_half_life", "schedule_staircase", "schedule_warmup", "curvature", "step", "loss",
                 "displacement", "lr", "diverged"):
        assert name in df.columns, name
    assert "w" not in df.columns  # the final weight is a per-trajectory value: final=True
    # every value sits on the row of its own grid point
    for (o, s, c, t) in [(0, 0, 0, 0), (1, 3, 2, 5), (2, 5, 1, 3), (2, 4, 0, 2)]:
        row = df.iloc[((o * n_s + s) * n_c + c) * n_t + t]
        assert row["optimizer"] == res.optimizers[o] and row["schedule"] == res.schedules[s]
        assert row["curvature"] == res.curvatures[c] and row["step"] == res.steps[t]
        assert row["loss"] == res.loss[o, s, c, t] and row["displacement"] == res.displacement[o, s, c, t]
        assert row["lr"] == res.lr[o, s, c, t]
    # the parameters themselves, not label strings
    step_rows = df[df.schedule_kind == "step"]
    assert sorted(step_rows.schedule_period.unique()) == [10, 20]
    assert step_rows.schedule_milestones.isna().all() and df.schedule_period.dtype == "Int64"
    assert set(df[df.schedule_kind == "multistep"].schedule_milestones) == {(10, 30), (20, 25)}
    assert set(df[df.schedule_kind == "multistep"].schedule_warmup) == {4}
    assert sorted(df[df.schedule_kind == "exponential"].schedule_lr.unique()) == [0.05, 0.1]
    assert set(df.optimizer_on_drop[df.optimizer_kind == "momentum"]) == {"keep", "rescale"}
    adamw = df[df.optimizer_kind == "adamw"]
    assert set(adamw.optimizer_beta1) == {0.8} and set(adamw.optimizer_beta2) == {0.99}
    assert set(adamw.optimizer_weight_decay) == {0.01}
    # a pivot back onto the grid gives the arrays
    back = df.pivot_table(index=["optimizer_on_drop", "optimizer_kind", "schedule_period", "curvature"],
                          columns="step", values="loss").loc[("keep", "momentum", 20)]
    np.testing.assert_array_equal(back.to_numpy(), res.loss[0, 1])


def test_final_dataframe_and_a_sweep_without_every(res):
    df = res.to_dataframe(final=True)
    assert len(df) == res.w.size and "step" not in df.columns
    np.testing.assert_array_equal(df.w.to_numpy(), res.w.reshape(-1))
    np.testing.assert_allclose(df.final_loss.to_numpy(), 0.5 * np.tile(res.curvatures, res.w.size // 3)
                               * res.w.reshape(-1) ** 2, rtol=1e-15)
    plain = fd.sweep({**CONFIG, "run": {"steps": 40}}, progress=False)
    assert plain.steps is None
    assert plain.to_dataframe().equals(plain.to_dataframe(final=True))


def test_xarray_dataset_on_the_grid_axes(res):
    ds = res.to_xarray()
    assert ds.loss.dims == ("optimizer", "schedule", "curvature", "step")
    assert ds.w.dims == ("optimizer", "schedule", "curvature")
    np.testing.assert_array_equal(ds.loss.values, res.loss)
    np.testing.assert_array_equal(ds.w.values, res.w)
    np.testing.assert_array_equal(ds.step.values, res.steps)
    np.testing.assert_array_equal(ds.curvature.values, res.curvatures)
    assert list(ds.schedule.values) == res.schedules and list(ds.optimizer.values) == res.optimizers
    sel = ds.loss.sel(schedule="step(period=20)", optimizer=res.optimizers[1])
    np.testing.assert_array_equal(sel.values, res.loss[1, 1])
    period = ds.schedule_period.values
    assert period[:2].tolist() == [10, 20] and np.isnan(period[2:]).all()
    assert ds.schedule_staircase.values.tolist()[4:] == [True, True]
    assert ds.optimizer_kind.values.tolist() == ["momentum", "momentum", "adamw"]
    assert ds.attrs["steps"] == 40 and ds.attrs["config_hash"] == res.config_hash
    # the coordinates turn into an index
    by_period = ds.isel(schedule=[0, 1]).swap_dims(schedule="schedule_period")
    np.testing.assert_array_equal(by_period.w.sel(schedule_period=20).values, res.w[:, 1])
    # and the dataframe of the dataset is the long format
    assert len(ds.loss.to_dataframe()) == res.loss.size


def test_a_loaded_sweep_gives_the_same_frames(res, tmp_path):
    fd.sweep(CONFIG, tmp_path / "out", progress=False, plots=False)
    loaded = fd.load_sweep(tmp_path / "out")
    assert loaded.to_dataframe().equals(res.to_dataframe())
    assert loaded.to_xarray().identical(res.to_xarray())


@pytest.mark.parametrize("module, method", [("pandas", "to_dataframe"), ("xarray", "to_xarray")])
def test_without_the_library_a_clear_import_error(module, method):
    code = textwrap.dedent(f"""
        import sys
        sys.modules[{module!r}] = None  # as if it were not installed
        import fastdecay as fd
        res = fd.sweep({{"run": {{"steps": 5}}, "curvatures": {{"values": [1.0]}},
                        "schedule": {{"kind": "constant", "lr": 0.1}}}}, progress=False)
        try:
            res.{method}()
        except ImportError as exc:
            print(exc)
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"SweepResult.{method}() needs {module}, which is not installed: pip install {module}"


def test_import_fastdecay_and_a_sweep_import_neither_pandas_nor_xarray():
    code = textwrap.dedent("""
        import sys
        import fastdecay as fd
        fd.sweep({"run": {"steps": 5}, "curvatures": {"values": [1.0]},
                  "schedule": {"kind": "constant", "lr": 0.1}}, progress=False)
        print("pandas" in sys.modules, "xarray" in sys.modules)
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.split() == ["False", "False"], done.stderr


def test_diverged_is_a_non_finite_final_weight_in_simulate_and_in_sweeps():
    """Plain GD with lr 1 on λ = 0.5 contracts; on λ = 2.5 it grows by 1.5 a step, to
    1e193 after 1,100 steps (finite: grown, not diverged); on λ = 3 it overflows to inf
    (diverged). One definition, the same count everywhere."""
    lam = [0.5, 2.5, 3.0]
    with np.errstate(over="ignore"):
        sim = fd.simulate(np.array(lam)[:, None], 1.0, steps=1100)
    swept = fd.sweep({"run": {"steps": 1100}, "curvatures": {"values": lam},
                      "schedule": {"kind": "constant", "lr": 1.0}}, progress=False)
    np.testing.assert_array_equal(swept.w[0, 0], sim.w[:, 0])
    assert 1e190 < abs(swept.w[0, 0, 1]) < np.inf
    assert sim.diverged == 1
    assert swept.diverged.tolist() == [[[False, False, True]]]
    summary = swept.summary().splitlines()
    assert summary[0].split()[-1] == "diverged" and summary[2].split()[-1] == "1"
    assert "diverged: w_N not finite" in summary[-1]
    assert swept.to_dataframe().diverged.tolist() == [False, False, True]


def test_a_schedule_parameter_left_at_its_default_shows_its_default():
    """A config leaves a factory's defaults out: the frames show the default (one-cycle's
    pct_start 0.3), not NaN as for a kind without the parameter."""
    pytest.importorskip("pandas")
    cfg = {"run": {"steps": 10}, "curvatures": {"values": [1.0]},
           "schedule": [{"kind": "one_cycle", "max_lr": 0.1, "total_steps": 10, "pct_start": 0.25, "label": "a"},
                        {"kind": "one_cycle", "max_lr": 0.1, "total_steps": 10, "label": "b"},
                        {"kind": "step", "lr": 0.1, "gamma": 0.5, "period": 5}]}
    df = fd.sweep(cfg, progress=False, plots=False).to_dataframe(final=True)
    pct = df.groupby("schedule", sort=False)["schedule_pct_start"].first()
    assert pct["a"] == 0.25 and pct["b"] == 0.3 and np.isnan(pct["step"])
