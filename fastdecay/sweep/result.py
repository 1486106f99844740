"""A finished sweep: ``SweepResult`` (arrays on the grid axes, a summary table,
figures) and ``load_sweep`` (the result of a sweep directory)."""

import dataclasses
import os

import numpy as np

from .config import SweepConfigError, build_schedule, chunk_plan
from ._store import MANIFEST, atomic_write, describe_bad, read_chunks, read_manifest

__all__ = ["SweepResult", "load_sweep", "CorruptSweepError"]


@dataclasses.dataclass
class SweepResult:
    """A finished sweep, the grid axes first: ``w`` has shape
    ``(n_optimizers, n_schedules, n_curvatures)``; with ``every``, ``loss``,
    ``displacement`` and ``lr`` add the recorded steps ``steps`` as a last axis."""

    curvatures: np.ndarray
    schedules: list
    optimizers: list
    w: np.ndarray
    steps: np.ndarray = None
    loss: np.ndarray = None
    displacement: np.ndarray = None
    lr: np.ndarray = None
    config: dict = None
    config_hash: str = None
    out: str = None

    def summary(self):
        """A text table: per optimizer setting and schedule, over the curvatures: the median
        final loss ½λw_N², the largest |w_N|, on how many curvatures the trajectory ended
        closer to the minimum than it started, and how many diverged (|w_N| non-finite or
        above 1e6 |w_0|)."""
        w0 = abs(self.config["run"]["w0"]) if self.config else 1.0
        head = ("optimizer", "schedule", "median loss_N", "max |w_N|", "|w_N| < |w_0|", "diverged")
        rows = []
        lam = self.curvatures
        for o, opt in enumerate(self.optimizers):
            for s, sched in enumerate(self.schedules):
                w = np.abs(self.w[o, s].astype(np.float64))
                finite = np.isfinite(w)
                with np.errstate(over="ignore", invalid="ignore"):
                    loss = 0.5 * lam * w * w
                contracted = int(np.sum(finite & (w < w0)))
                rows.append((opt, sched, f"{np.median(loss):.3e}", f"{np.max(w):.3e}",
                             f"{contracted}/{lam.size}", str(int(np.sum(~finite | (w > 1e6 * max(w0, 1e-300)))))))
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        lines = ["  ".join(h.ljust(wd) if i < 2 else h.rjust(wd) for i, (h, wd) in enumerate(zip(head, widths)))]
        lines.append("  ".join("-" * wd for wd in widths))
        for r in rows:
            lines.append("  ".join(c.ljust(wd) if i < 2 else c.rjust(wd) for i, (c, wd) in enumerate(zip(r, widths))))
        lines.append(f"over {lam.size} curvatures {lam.min():g} .. {lam.max():g}; diverged: |w_N| non-finite "
                     "or > 1e6 |w_0|")
        return "\n".join(lines)

    def plot(self, out_dir, max_figures=8):
        """Figures into ``out_dir``: the schedules, final |w| against curvature per
        optimizer setting, and (with ``every``) loss trajectories at three curvatures."""
        from .. import plots

        paths = []
        n = int(self.config["run"]["steps"]) + 1 if self.config else 1000
        schedules = {e["label"]: build_schedule(e) for e in self.config["schedules"]}
        paths.append(plots.save(plots.lr_curves(schedules, n, title="Sweep schedules"),
                                os.path.join(out_dir, "lr.png")))
        for o, opt in enumerate(self.optimizers[:max_figures]):
            fig = plots.final_vs_curvature(self.curvatures, np.abs(self.w[o]), labels=self.schedules,
                                           title=f"Final |w| against curvature, {opt}",
                                           reference=abs(self.config["run"]["w0"]))
            paths.append(plots.save(fig, os.path.join(out_dir, f"final_w_{o}.png")))
        if self.loss is not None:
            picks = sorted({0, self.curvatures.size // 2, self.curvatures.size - 1})
            for o, opt in enumerate(self.optimizers[:max_figures]):
                view = dataclasses.replace(self, loss=np.moveaxis(self.loss[o][:, picks], 1, 0))
                fig = plots.loss_curves(view, labels=self.schedules,
                                        panels=[f"curvature {self.curvatures[c]:.3g}" for c in picks],
                                        title=f"Loss trajectories, {opt}")
                paths.append(plots.save(fig, os.path.join(out_dir, f"loss_{o}.png")))
        return paths


def assemble(plan, chunk_arrays):
    """A SweepResult from ``{k: arrays}`` covering every chunk."""
    n_opt, n_s, n_c = plan.shape
    config = plan.config
    dtype = np.dtype(config["run"]["dtype"])
    w = np.empty((n_opt, n_s * n_c), dtype=dtype)
    every = config["run"]["every"]
    series = {}
    steps = None
    for k, (o, start, stop) in enumerate(plan.chunks):
        a = chunk_arrays[k]
        if (int(a["optimizer"]), int(a["start"]), int(a["stop"])) != (o, start, stop):
            raise SweepConfigError(f"chunk {k} holds trajectories {int(a['start'])}..{int(a['stop'])} of optimizer "
                                   f"{int(a['optimizer'])}, expected {start}..{stop} of {o}: a corrupt sweep directory")
        w[o, start:stop] = a["w"]
        if every is not None:
            steps = a["steps"]
            for name in ("loss", "displacement", "lr"):
                if name not in series:
                    series[name] = np.empty((n_opt, n_s * n_c, steps.size), dtype=a[name].dtype)
                series[name][o, start:stop] = a[name]
    shaped = {name: v.reshape(n_opt, n_s, n_c, -1) for name, v in series.items()}
    return SweepResult(
        curvatures=plan.curvatures.copy(), schedules=[e["label"] for e in config["schedules"]],
        optimizers=[e["label"] for e in config["optimizers"]], w=w.reshape(n_opt, n_s, n_c), steps=steps,
        config=config, config_hash=plan.hash, **shaped,
    )


def save_result(out_dir, res):
    arrays = {"curvatures": res.curvatures, "w": res.w, "schedules": np.array(res.schedules),
              "optimizers": np.array(res.optimizers)}
    for name in ("steps", "loss", "displacement", "lr"):
        if getattr(res, name) is not None:
            arrays[name] = getattr(res, name)
    atomic_write(os.path.join(out_dir, "results.npz"), lambda f: np.savez(f, **arrays))
    atomic_write(os.path.join(out_dir, "summary.txt"), lambda f: f.write((res.summary() + "\n").encode()))


class CorruptSweepError(SweepConfigError):
    """A sweep directory whose chunk files are missing or damaged. ``bad`` maps each such
    chunk's index to the reason; ``fastdecay sweep CONFIG --out DIR --resume`` (or
    ``fd.sweep(..., resume=True)``) recomputes exactly those chunks."""

    def __init__(self, out_dir, bad, n_chunks):
        self.out_dir = out_dir
        self.bad = dict(bad)
        super().__init__(f"{out_dir}: {len(bad)} of {n_chunks} chunks cannot be used: {describe_bad(bad)}; "
                         "run the sweep again with --resume to recompute them")


def load_sweep(out_dir):
    """The ``SweepResult`` of a sweep directory (what ``fd.sweep(config, out)`` wrote).

    Every chunk file is checked against the SHA-256 the manifest recorded when it was
    written (a chunk without one must load and hold the trajectories it should);
    ``CorruptSweepError`` names each missing, truncated, empty or garbled chunk.
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
