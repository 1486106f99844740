"""A finished sweep: ``SweepResult`` (arrays on the grid axes, a summary table,
figures) and ``load_sweep`` (the result of a sweep directory)."""

from __future__ import annotations

import dataclasses
import inspect
import os
from typing import TYPE_CHECKING, Any, Mapping, cast

import numpy as np
from numpy.typing import NDArray

from .. import schedules as S
from .._typing import FloatArray

from .config import SweepConfigError, build_schedule, chunk_plan, momentum_label, result_arrays, sweep_mode
from ._store import MANIFEST, atomic_write, describe_bad, read_chunks, read_manifest

if TYPE_CHECKING:
    import pandas
    import xarray

    from .config import ChunkPlan

__all__ = ["SweepResult", "load_sweep", "CorruptSweepError"]


@dataclasses.dataclass
class SweepResult:
    """A finished sweep, the grid axes first: ``w`` has shape
    ``(n_optimizers, n_schedules, n_curvatures)``; with ``every``, ``loss``,
    ``displacement`` and ``lr`` add the recorded steps ``steps`` as a last axis.

    ``schedules`` and ``optimizers`` are the labels of the grid points; ``config``
    (the normalised config) holds their parameters, which ``to_dataframe()`` and
    ``to_xarray()`` spread into columns / coordinates. ``diverged`` marks the
    trajectories whose final weight is not finite, the definition ``fd.simulate``
    uses too.

    An expected-dynamics sweep (``mode = "expected"``) holds exact expectations
    (``fd.expected_loss``): ``w`` is the mean E w_N, ``second_moment`` is E w_N², ``loss``
    the expected loss at the recorded steps and ``lr`` the rate there (no
    ``displacement``); there a trajectory diverged when E w_N² is not finite.

    >>> import fastdecay as fd
    >>> res = fd.sweep({"run": {"steps": 20, "every": 10}, "curvatures": {"values": [0.5, 2.0, 50.0]},
    ...                 "schedule": {"kind": "constant", "lr": [0.1, 0.5]}}, progress=False)
    >>> res.optimizers, res.schedules, res.w.shape, res.loss.shape
    (['gd'], ['constant(lr=0.1)', 'constant(lr=0.5)'], (1, 2, 3), (1, 2, 3, 3))
    >>> int((abs(res.w) > 1).sum()), int(res.diverged.sum())    # λ = 50 grew, but stayed finite
    (2, 0)
    """

    curvatures: FloatArray
    schedules: list[str]
    optimizers: list[str]
    w: np.ndarray
    steps: NDArray[np.int64] | None = None
    loss: np.ndarray | None = None
    displacement: np.ndarray | None = None
    lr: np.ndarray | None = None
    config: dict[str, Any] | None = None
    config_hash: str | None = None
    out: str | None = None
    second_moment: np.ndarray | None = None

    @property
    def mode(self) -> str:
        """``"monte_carlo"`` (``fd.simulate`` trajectories) or ``"expected"`` (``fd.expected_loss``)."""
        return sweep_mode(self.config) if self.config is not None else "monte_carlo"

    @property
    def diverged(self) -> NDArray[np.bool_]:
        """Boolean array of ``w``'s shape: the trajectory diverged, that is its final weight
        is not finite (it overflowed to ±inf, or became nan). The one definition of
        divergence in fastdecay: ``fd.simulate(...).diverged`` counts the same
        trajectories, and the summary's ``diverged`` column counts these. A trajectory that
        grew but stayed finite is not counted; compare ``|w|`` with ``|w_0|`` for that
        (the summary's ``|w_N| < |w_0|`` column). In an expected-dynamics sweep: E w_N² is
        not finite."""
        return ~np.isfinite(self.w if self.second_moment is None else self.second_moment)

    def summary(self) -> str:
        """A text table: per optimizer setting and schedule, over the curvatures: the median
        final loss ½λw_N², the largest |w_N|, on how many curvatures the trajectory ended
        closer to the minimum than it started, and how many diverged (final weight not
        finite, as ``diverged``). An expected-dynamics sweep shows the expected loss and
        the root mean square sqrt(E w_N²) in place of |w_N|. A diverged trajectory counts
        as infinitely far from the minimum (inf, not nan, in the median and the max)."""
        w0 = self._start_size()
        expected = self.second_moment is not None
        size, final_loss, diverged = self._size(), self._final_loss(), self.diverged
        # a diverged trajectory (nan as well as inf) counts as infinitely far: the median
        # stays the finite majority's, the max says inf
        size, final_loss = (np.where(np.isnan(x), np.inf, x) for x in (size, final_loss))
        w_n = "rms w_N" if expected else "|w_N|"
        start = "rms w_0" if expected and self.config and self.config["run"].get("w0_var") else "|w_0|"
        head = ("optimizer", "schedule", f"median {'E ' if expected else ''}loss_N", f"max {w_n}", f"{w_n} < {start}",
                "diverged")
        rows = []
        lam = self.curvatures
        for o, opt in enumerate(self.optimizers):
            for s, sched in enumerate(self.schedules):
                contracted = int(np.sum(np.isfinite(size[o, s]) & (size[o, s] < w0)))
                rows.append((opt, sched, f"{np.median(final_loss[o, s]):.3e}", f"{np.max(size[o, s]):.3e}",
                             f"{contracted}/{lam.size}", str(int(np.sum(diverged[o, s])))))
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        lines = ["  ".join(h.ljust(wd) if i < 2 else h.rjust(wd) for i, (h, wd) in enumerate(zip(head, widths)))]
        lines.append("  ".join("-" * wd for wd in widths))
        for r in rows:
            lines.append("  ".join(c.ljust(wd) if i < 2 else c.rjust(wd) for i, (c, wd) in enumerate(zip(r, widths))))
        what = "E w_N^2 not finite" if expected else "w_N not finite (overflowed)"
        lines.append(f"over {lam.size} curvatures {lam.min():g} .. {lam.max():g}; diverged: {what}"
                     + ("; exact expectations (mode = 'expected')" if expected else ""))
        return "\n".join(lines)

    def _start_size(self) -> float:
        """How far the trajectories start from the minimum: |w_0|, or the root mean square
        sqrt(w_0² + w0_var) of an expected-dynamics sweep's random start."""
        if not self.config:
            return 1.0
        run = self.config["run"]
        return float(np.sqrt(run["w0"] ** 2 + run.get("w0_var", 0.0)))

    def _size(self) -> FloatArray:
        """|w_N|, or sqrt(E w_N²) in an expected-dynamics sweep (float64)."""
        if self.second_moment is not None:
            return np.sqrt(self.second_moment.astype(np.float64))
        return np.abs(self.w.astype(np.float64))

    def _axis_columns(self) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
        """``(optimizer columns, schedule columns)``: for each, a dict of name -> a list
        with one value per grid point of that axis: its label, its kind and every parameter
        (its default where the config leaves it out, ``None`` where a kind has no such
        parameter; list-valued parameters as tuples)."""
        opt_cols: dict[str, list[Any]] = {"optimizer": list(self.optimizers)}
        sched_cols: dict[str, list[Any]] = {"schedule": list(self.schedules)}
        if self.config is None:
            return opt_cols, sched_cols
        opts, scheds = self.config["optimizers"], self.config["schedules"]
        opt_cols["optimizer_kind"] = [e["kind"] for e in opts]
        # momentum and beta1: a number, or its text ("companion", "cosine(lr=0.95,...)") for a schedule
        for key in ("momentum", "eps", "weight_decay", "on_drop", "noise"):
            opt_cols[f"optimizer_{key}"] = [_momentum_column(e[key]) if key == "momentum" else e[key] for e in opts]
        opt_cols["optimizer_beta1"] = [_momentum_column(e["betas"][0]) for e in opts]
        opt_cols["optimizer_beta2"] = [e["betas"][1] for e in opts]
        opt_cols["optimizer_batch_size"] = [e.get("batch_size", 1) for e in opts]
        sched_cols["schedule_kind"] = [e["kind"] for e in scheds]
        names = []
        for e in scheds:
            names += [k for k in e["params"] if k not in names]
        for key in names:
            sched_cols[f"schedule_{key}"] = [_column_value(_schedule_parameter(e, key)) for e in scheds]
        sched_cols["schedule_warmup"] = [e["warmup"] for e in scheds]
        return opt_cols, sched_cols

    def to_dataframe(self, *, final: bool = False) -> pandas.DataFrame:
        """The sweep as a long pandas ``DataFrame``: one row per trajectory and recorded
        step (``final=True``, or a sweep without ``every``: one row per trajectory).

        Columns: one per grid axis and parameter: ``optimizer`` (the label),
        ``optimizer_kind``, ``optimizer_momentum``, ``optimizer_beta1``, ``optimizer_beta2``,
        ``optimizer_eps``, ``optimizer_weight_decay``, ``optimizer_on_drop``,
        ``optimizer_noise``, ``optimizer_batch_size``; ``schedule`` (the label),
        ``schedule_kind``, one ``schedule_<parameter>`` column per parameter of any
        schedule kind in the sweep (NaN/None where a kind has no such parameter;
        list-valued ones as tuples) and ``schedule_warmup``; ``curvature``. Then the
        values: per recorded step ``step``, ``loss`` (½λw_t²), ``displacement``
        (|w_t − w_{t−1}|), ``lr`` (η_t); per trajectory ``w`` (final weight),
        ``final_loss`` (½λw_N²); and ``diverged`` in both. An expected-dynamics sweep has
        no ``displacement``, and ``second_moment`` (E w_N²) next to ``w`` (E w_N).

        pandas is imported here (``pip install pandas``), not with fastdecay.

        >>> import fastdecay as fd
        >>> res = fd.sweep({"run": {"steps": 20, "every": 10}, "curvatures": {"values": [0.5, 2.0]},
        ...                 "schedule": {"kind": "step", "lr": 0.1, "gamma": 0.5, "period": [5, 10]}},
        ...                progress=False)
        >>> df = res.to_dataframe()
        >>> df[["schedule_period", "curvature", "step", "loss"]].head(3)
           schedule_period  curvature  step      loss
        0                5        0.5     0  0.250000
        1                5        0.5    10  0.116204
        2                5        0.5    20  0.096242
        >>> res.to_dataframe(final=True).groupby("schedule_period")["final_loss"].median().round(4).to_dict()
        {5: 0.0568, 10: 0.0277}
        """
        pd = _need("pandas", "to_dataframe")
        steps = None if final else self.steps
        shape = self.w.shape + ((steps.size,) if steps is not None else ())
        index = np.indices(shape).reshape(len(shape), -1)
        o, s, c = index[0], index[1], index[2]
        columns = {}
        opt_cols, sched_cols = self._axis_columns()
        for cols, at in ((opt_cols, o), (sched_cols, s)):
            for name, values in cols.items():
                columns[name] = _column(pd, values)[at]
        columns["curvature"] = self.curvatures[c]
        if steps is not None:
            columns["step"] = steps[index[3]]
            for name in self._recorded():
                columns[name] = getattr(self, name).reshape(-1)
            columns["diverged"] = self.diverged[o, s, c]
        else:
            columns["w"] = self.w.reshape(-1)
            if self.second_moment is not None:
                columns["second_moment"] = self.second_moment.reshape(-1)
            columns["final_loss"] = self._final_loss().reshape(-1)
            columns["diverged"] = self.diverged.reshape(-1)
        return pd.DataFrame(columns)

    def to_xarray(self) -> xarray.Dataset:
        """The sweep as an ``xarray.Dataset`` on the dimensions ``optimizer``, ``schedule``
        (the labels), ``curvature`` and, with ``every``, ``step``.

        Variables: ``w``, ``final_loss``, ``diverged`` (optimizer, schedule, curvature) and
        ``loss``, ``displacement``, ``lr`` (…, step). The parameters are coordinates along
        their axis, named as ``to_dataframe``'s columns (``optimizer_kind``,
        ``optimizer_momentum``, …, ``schedule_kind``, ``schedule_period``, …), so
        ``ds.loss.sel(schedule="step(period=10)")`` or
        ``ds.swap_dims(schedule="schedule_period")`` work. xarray is imported here
        (``pip install xarray``), not with fastdecay.
        """
        xr = _need("xarray", "to_xarray")
        dims = ("optimizer", "schedule", "curvature")
        coords: dict[str, Any] = {"curvature": np.asarray(self.curvatures)}
        opt_cols, sched_cols = self._axis_columns()
        for dim, cols in (("optimizer", opt_cols), ("schedule", sched_cols)):
            for name, values in cols.items():
                coords[name] = (dim, _coordinate(values))
        data: dict[str, Any] = {"w": (dims, self.w)}
        if self.second_moment is not None:
            data["second_moment"] = (dims, self.second_moment)
        data.update(final_loss=(dims, self._final_loss()), diverged=(dims, self.diverged))
        if self.steps is not None:
            coords["step"] = np.asarray(self.steps)
            for name in self._recorded():
                data[name] = (dims + ("step",), getattr(self, name))
        attrs = {"config_hash": self.config_hash or "", "mode": self.mode}
        if self.config is not None:
            attrs.update(steps=self.config["run"]["steps"], w0=self.config["run"]["w0"], seed=self.config["run"]["seed"],
                         dtype=self.config["run"]["dtype"])
        return xr.Dataset(data, coords=coords, attrs=attrs)

    def _recorded(self) -> list[str]:
        return [name for name in ("loss", "displacement", "lr") if getattr(self, name) is not None]

    def _final_loss(self) -> FloatArray:
        """½λw_N², or ½λ E w_N² in an expected-dynamics sweep (float64)."""
        with np.errstate(over="ignore", invalid="ignore"):
            return 0.5 * self.curvatures[None, None, :] * self._size() ** 2

    def plot(self, out_dir: str | os.PathLike[str], max_figures: int = 8) -> list[str]:
        """Figures into ``out_dir``: the schedules, final |w| against curvature per
        optimizer setting, and (with ``every``) loss trajectories at three curvatures."""
        from .. import plots

        paths = []
        n = int(self.config["run"]["steps"]) + 1 if self.config else 1000
        config = cast("dict[str, Any]", self.config)  # (a result without its config has no schedules to draw)
        schedules = {_text(e["label"]): build_schedule(e) for e in config["schedules"]}
        labels = [_text(label) for label in self.schedules]
        paths.append(plots.save(plots.lr_curves(schedules, n, title="Sweep schedules"),
                                os.path.join(out_dir, "lr.png")))
        for o, opt in enumerate(self.optimizers[:max_figures]):
            expected = self.second_moment is not None
            fig = plots.final_vs_curvature(self.curvatures, self._size()[o], labels=labels,
                                           ylabel=r"final $\sqrt{E\,w_N^2}$" if expected else r"final $|w_N|$",
                                           title=f"Final {'rms ' if expected else '|'}w{'' if expected else '|'} "
                                                 f"against curvature, {_text(opt)}",
                                           reference=self._start_size())
            paths.append(plots.save(fig, os.path.join(out_dir, f"final_w_{o}.png")))
        if self.loss is not None:
            picks = sorted({0, self.curvatures.size // 2, self.curvatures.size - 1})
            for o, opt in enumerate(self.optimizers[:max_figures]):
                view = dataclasses.replace(self, loss=np.moveaxis(self.loss[o][:, picks], 1, 0))
                fig = plots.loss_curves(view, labels=labels,
                                        panels=[f"curvature {self.curvatures[c]:.3g}" for c in picks],
                                        title=f"{'Expected loss' if self.second_moment is not None else 'Loss'} "
                                              f"trajectories, {_text(opt)}", diverged=self.diverged[o][:, picks].T)
                paths.append(plots.save(fig, os.path.join(out_dir, f"loss_{o}.png")))
        return paths


def _text(label: str) -> str:
    """A config's label as plain text in a figure: matplotlib reads ``$...$`` as math (a
    lone or unbalanced ``$`` failed the whole figure step)."""
    return label.replace("$", r"\$")


def _momentum_column(v: Any) -> object:
    return v if isinstance(v, (int, float)) else momentum_label(v)


def _schedule_parameter(entry: Mapping[str, Any], key: str) -> Any:
    """Parameter ``key`` of a normalised config's schedule entry: as given, else its kind's
    default (a config leaves defaults out), None where the kind has no such parameter."""
    if key in entry["params"]:
        return entry["params"][key]
    parameter = inspect.signature(S.SCHEDULE_KINDS[entry["kind"]]).parameters.get(key)
    return None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default


def _column_value(v: object) -> object:
    return tuple(v) if isinstance(v, list) else v


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _column(pd: Any, values: list[Any]) -> Any:
    """``values`` (one per grid point) as an array to index: integers with gaps as pandas'
    nullable ``Int64``, other numbers with gaps as NaN, the rest as they are."""
    if any(v is None for v in values) and all(v is None or _is_int(v) for v in values):
        return pd.array(values, dtype="Int64")
    return _coordinate(values)


def _coordinate(values: list[Any]) -> np.ndarray:
    """A 1-D coordinate array of ``values`` (an object array where they are tuples, strings
    of any length or mixed with ``None``; NaN for a missing number)."""
    if values and all(isinstance(v, bool) for v in values):
        return np.array(values, dtype=bool)
    if all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values) and \
            any(v is not None for v in values):
        return np.array([np.nan if v is None else v for v in values])
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _need(module: str, method: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"SweepResult.{method}() needs {module}, which is not installed: pip install {module}") \
            from None


def assemble(plan: ChunkPlan, chunk_arrays: Mapping[int, Mapping[str, np.ndarray]]) -> SweepResult:
    """A SweepResult from ``{k: arrays}`` covering every chunk."""
    n_opt, n_s, n_c = plan.shape
    config = plan.config
    names = result_arrays(config)
    n_rec = config["run"]["steps"] // config["run"]["every"] + 1 if config["run"]["every"] is not None else 0
    dtype = np.dtype(config["run"]["dtype"])
    grid = {name: np.empty((n_opt, n_s * n_c) + ((n_rec,) if kind == "recorded" else ()), dtype=dtype)
            for name, kind in names.items()}
    steps = None
    for k, (o, start, stop) in enumerate(plan.chunks):
        a = chunk_arrays[k]
        if (int(a["optimizer"]), int(a["start"]), int(a["stop"])) != (o, start, stop):
            raise SweepConfigError(f"chunk {k} holds trajectories {int(a['start'])}..{int(a['stop'])} of optimizer "
                                   f"{int(a['optimizer'])}, expected {start}..{stop} of {o}: a corrupt sweep directory")
        for name in names:
            grid[name][o, start:stop] = a[name]
        if n_rec:
            steps = a["steps"]
    shaped = {name: v.reshape((n_opt, n_s, n_c) + v.shape[2:]) for name, v in grid.items()}
    return SweepResult(
        curvatures=plan.curvatures.copy(), schedules=[e["label"] for e in config["schedules"]],
        optimizers=[e["label"] for e in config["optimizers"]], steps=steps, config=config, config_hash=plan.hash,
        **shaped,
    )


def save_result(out_dir: str, res: SweepResult) -> None:
    arrays: dict[str, Any] = {"curvatures": res.curvatures, "w": res.w, "schedules": np.array(res.schedules),
              "optimizers": np.array(res.optimizers)}
    for name in ("second_moment", "steps", "loss", "displacement", "lr"):
        if getattr(res, name) is not None:
            arrays[name] = getattr(res, name)
    atomic_write(os.path.join(out_dir, "results.npz"), lambda f: np.savez(f, **arrays))
    atomic_write(os.path.join(out_dir, "summary.txt"), lambda f: f.write((res.summary() + "\n").encode()))


class CorruptSweepError(SweepConfigError):
    """A sweep directory whose chunk files are missing or damaged. ``bad`` maps each such
    chunk's index to the reason; ``fastdecay sweep CONFIG --out DIR --resume`` (or
    ``fd.sweep(..., resume=True)``) recomputes exactly those chunks."""

    def __init__(self, out_dir: str, bad: Mapping[int, str], n_chunks: int) -> None:
        self.out_dir = out_dir
        self.bad = dict(bad)
        super().__init__(f"{out_dir}: {len(bad)} of {n_chunks} chunks cannot be used: {describe_bad(bad)}; "
                         "run the sweep again with --resume to recompute them")


def load_sweep(out_dir: str | os.PathLike[str]) -> SweepResult:
    """The ``SweepResult`` of a sweep directory (what ``fd.sweep(config, out)`` wrote).

    Every chunk file is checked against the SHA-256 the manifest recorded when it was
    written (a chunk without one must load and hold the trajectories it should);
    ``CorruptSweepError`` names each missing, truncated, empty or garbled chunk.

    >>> import shutil, tempfile, fastdecay as fd
    >>> out = tempfile.mkdtemp()
    >>> res = fd.sweep({"run": {"steps": 20}, "curvatures": {"values": [0.5, 2.0]},
    ...                 "schedule": {"kind": "constant", "lr": [0.1, 0.5]}}, out, progress=False, plots=False)
    >>> back = fd.load_sweep(out)
    >>> back.schedules, back.w.round(4).tolist(), back.out == out, back.config_hash == res.config_hash
    (['constant(lr=0.1)', 'constant(lr=0.5)'], [[[0.3585, 0.0115], [0.0032, 0.0]]], True, True)
    >>> shutil.rmtree(out)
    """
    out_dir = os.fspath(out_dir)
    manifest = read_manifest(out_dir)
    if manifest is None:
        raise SweepConfigError(f"{out_dir} holds no fastdecay sweep ({MANIFEST} is missing)")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("config"), dict):
        raise SweepConfigError(f"{os.path.join(out_dir, MANIFEST)} holds no sweep config; not a fastdecay sweep "
                               "directory?")
    plan = chunk_plan(manifest["config"])
    if manifest.get("config_hash") != plan.hash:
        raise SweepConfigError(f"{os.path.join(out_dir, MANIFEST)}: its config does not hash to its config_hash "
                               "(edited by hand?)")
    arrays, _, bad = read_chunks(out_dir, plan, manifest)
    if bad:
        raise CorruptSweepError(out_dir, bad, len(plan.chunks))
    res = assemble(plan, arrays)
    res.out = out_dir
    return res
