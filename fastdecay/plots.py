"""Figures of schedules and simulations, one function per figure (matplotlib, Agg).

Not imported by ``import fastdecay``; ``import fastdecay.plots`` (or the first
use of ``fd.plots``) imports matplotlib, which is the optional extra
``fastdecay[plot]``. Every function draws on a new ``matplotlib.figure.Figure``
(no pyplot state, no GUI backend), saves it as PNG when ``path`` is given, and
returns it.

``schedules`` arguments take a Schedule (a batch gives one curve per member),
a list of schedules, or a dict ``{label: schedule}``.

>>> import fastdecay as fd, fastdecay.plots
>>> fig = fd.plots.lr_curves({"step": fd.step(0.1, 0.5, 10), "exponential": fd.exponential(0.1, half_life=10)}, 50)
>>> [ax.get_ylabel() for ax in fig.axes]
['learning rate $\\\\eta_t$']
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping, Protocol, Sequence, Union

import numpy as np

try:
    from matplotlib import ticker, transforms
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("fastdecay.plots needs matplotlib: pip install 'fastdecay[plot]'") from exc

from . import schedules as S
from ._typing import ArrayLike, FloatArray, RealArrayLike

# the ``schedules`` argument: a Schedule (a batch is one curve per member), a list of
# schedules, or {label: schedule}
Schedules = Union[S.Schedule, Sequence[S.Schedule], Mapping[str, S.Schedule]]


class LossRecord(Protocol):
    """A result with recorded steps and losses (``fd.simulate(..., every=k)``, ``fd.expected_loss``)."""

    @property
    def steps(self) -> Any: ...

    @property
    def loss(self) -> Any: ...


class DisplacementRecord(Protocol):
    """A result with recorded steps and displacements (``fd.simulate(..., every=k)``)."""

    @property
    def steps(self) -> Any: ...

    @property
    def displacement(self) -> Any: ...

__all__ = [
    "lr_curves",
    "stability_ceiling",
    "trajectories",
    "loss_curves",
    "displacement_signatures",
    "final_vs_curvature",
    "adam_effective_step",
    "weight_decay_shrinkage",
    "momentum_after_drop",
    "escape_probability",
    "save",
]

_STYLE = ("-", "--", "-.", ":")


def _legend(label: str) -> str:
    """``label`` as a legend shows it: matplotlib leaves out labels that start with "_", so such
    a user's label (a schedule or optimizer named "_zero") gets a zero-width space before it."""
    return "\u200b" + label if isinstance(label, str) and label.startswith("_") else label


def _figure(nrows: int = 1, ncols: int = 1, *, width: float = 8.0, height: float = 4.8, sharex: bool = False
            ) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    axes = fig.subplots(nrows, ncols, sharex=sharex, squeeze=False).ravel()
    for ax in axes:
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", alpha=0.12)
    return fig, axes


def save(fig: Figure, path: str | os.PathLike[str], *, dpi: float | None = None) -> str:
    """Write ``fig`` to ``path`` (directories created) in the format its extension names
    (``.png``, ``.pdf``, ``.svg``, ...; PNG without one) and return the path."""
    path = os.fspath(path)
    extension = os.path.splitext(path)[1][1:].lower()
    formats = fig.canvas.get_supported_filetypes()
    if extension and extension not in formats:
        raise ValueError(f"path must end in a figure format's extension ({', '.join('.' + f for f in sorted(formats))}) "
                         f"or none (PNG), got {path!r}")
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, format=extension or "png", dpi=dpi)
    return path


def _finish(fig: Figure, path: str | os.PathLike[str] | None) -> Figure:
    if path is not None:
        save(fig, path)
    return fig


def _labelled(schedules: Schedules, labels: Iterable[str] | None = None) -> list[tuple[str, S.Schedule]]:
    """``[(label, scalar Schedule), ...]`` from a Schedule, list or dict."""
    if isinstance(schedules, S.Schedule):
        if schedules.batch_shape == ():
            items: list[tuple[str, Any]] = [(repr(schedules), schedules)]
        else:
            flat = S.Schedule._made(schedules.rows(), schedules.kind)
            items = [(f"{schedules.kind}[{i}]", flat[i]) for i in range(flat.size)]
    elif isinstance(schedules, dict):
        items = list(schedules.items())
    else:
        items = [(repr(s), s) for s in schedules]
    if labels is not None:
        labels = list(labels)
        if len(labels) != len(items):
            raise ValueError(f"labels must have one entry per schedule ({len(items)}), got {len(labels)}")
        items = [(lab, s) for lab, (_, s) in zip(labels, items)]
    for lab, s in items:
        if not isinstance(s, S.Schedule):
            raise TypeError(f"schedules must be fastdecay Schedules, got {s!r} for {lab!r}")
        if s.batch_shape != ():
            raise ValueError(f"schedules must be one schedule a curve, got batch_shape {s.batch_shape} for {lab!r} "
                             "(give the batch itself, whose members are drawn one a curve, or index it)")
    return items


_MAX_POINTS = 20_000


def _steps_shown(steps: int) -> np.ndarray:
    """The steps a curve over ``0 .. steps-1`` is drawn at: all of them, or an even
    subset of ``_MAX_POINTS`` for long horizons (a figure has fewer pixels anyway)."""
    steps = int(steps)
    if steps <= _MAX_POINTS:
        return np.arange(steps)
    return np.unique(np.linspace(0, steps - 1, _MAX_POINTS).round().astype(np.int64))


def _positive(y: ArrayLike) -> FloatArray:
    """``y`` with non-positive and non-finite entries masked, for log axes."""
    y = np.asarray(y, dtype=np.float64)
    return np.where((y > 0) & np.isfinite(y), y, np.nan)


def lr_curves(schedules: Schedules, steps: int, *, labels: Iterable[str] | None = None, log: bool = True,
              title: str = "Learning-rate schedules", path: str | os.PathLike[str] | None = None) -> Figure:
    """The rate η_t of each schedule for t < ``steps`` (log scale by default)."""
    fig, (ax,) = _figure()
    t = _steps_shown(steps)
    for k, (label, s) in enumerate(_labelled(schedules, labels)):
        ax.plot(t, _positive(s.table(t)), _STYLE[k % 4], lw=1.8, label=_legend(label), drawstyle="steps-post")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step $t$")
    ax.set_ylabel(r"learning rate $\eta_t$")
    ax.set_title(title)
    ax.legend(loc="best", fontsize="small")
    return _finish(fig, path)


def stability_ceiling(schedules: Schedules, curvatures: RealArrayLike, steps: int, *,
                      labels: Iterable[str] | None = None, path: str | os.PathLike[str] | None = None,
                      title: str = r"Stability ceiling $2/\eta_t$ against the curvatures") -> Figure:
    """2/η_t of each schedule (gradient descent on curvature λ is stable while
    λ < 2/η_t), with the curvatures as horizontal lines and each one's stability
    onset t* (first step with η_t·λ < 2) marked."""
    from .diagnostics import stability_onset

    fig, (ax,) = _figure(width=10.0, height=4.4)
    t = _steps_shown(steps)
    lam = np.sort(np.asarray(curvatures, dtype=np.float64).ravel())
    items = _labelled(schedules, labels)
    colors = [f"C{k}" for k in range(len(items))]
    lowest = np.inf  # the lowest ceiling: curvatures below it are stable from step 0
    for k, (label, s) in enumerate(items):
        with np.errstate(divide="ignore"):
            ceiling = 2.0 / s.table(t)
        lowest = min(lowest, float(np.min(ceiling, initial=np.inf)))
        ax.plot(t, ceiling, _STYLE[k % 4], color=colors[k], lw=2.0, label=f"$2/\\eta_t$, {label}")
        onset = np.asarray(stability_onset(s, lam, max_steps=int(steps)))
        late = onset > 0
        ax.plot(onset[late], lam[late], "o", color=colors[k], ms=5, mfc="white", mew=1.5)
    # the height goes to the curvatures a schedule has to bring under its ceiling; those
    # below every ceiling are stable from step 0 and only counted in a note
    positive = lam[lam > 0]
    low = positive.min() if positive.size else 1.0
    if np.isfinite(lowest) and lowest > 0:
        low = max(low, lowest)
    bottom = low / 3.0
    top = max(positive.max() if positive.size else 1.0, low) * 30.0
    inside = lam[(lam >= bottom) & (lam <= top)]
    shown = inside if inside.size <= 12 else inside[np.unique(np.linspace(0, inside.size - 1, 12).round().astype(int))]
    for v in shown:
        ax.axhline(v, color="0.55", lw=0.7, ls=":")
    ax.plot([], [], "o", color="0.3", mfc="white", mew=1.5, label=r"stability onset $t^*$ ($\eta_t\lambda < 2$ from here)")
    ax.plot([], [], ":", color="0.55", label=r"curvatures $\lambda$")
    ax.set_yscale("log")
    ax.set_ylim(bottom, top)
    ax.set_xlim(0, max(int(steps) - 1, 1))
    ax.set_xlabel("step $t$")
    ax.set_ylabel(r"curvature $\lambda$  /  ceiling $2/\eta_t$")
    ax.set_title(title)
    note = r"above a schedule's curve $\eta_t\lambda > 2$: gradient descent diverges there"
    below = int(np.sum(lam < bottom))
    if below:
        note += f"\n{below} curvatures below {bottom:.3g} (not shown) are stable from step 0"
    ax.text(0.99, 0.03, note, transform=ax.transAxes, ha="right", va="bottom", fontsize="small", color="0.25",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8})
    fig.legend(loc="outside right center", fontsize="small")  # beside the axes: it covers no curve
    return _finish(fig, path)


def trajectories(steps: ArrayLike, values: ArrayLike, *, labels: Iterable[str], ylabel: str, title: str,
                 log: bool = True, path: str | os.PathLike[str] | None = None, ax: Axes | None = None,
                 legend: bool = True, diverged: ArrayLike | None = None) -> Figure | Axes:
    """Curves ``values[k]`` against ``steps``, one per label (a generic helper).

    Non-finite values (an overflow to inf, or nan) are left out of the curve, and an
    ``x`` at the top of the axes marks the step where each such stretch begins; on a log
    axis the limits come from the finite positive values. ``diverged`` (one flag per
    curve) names the curves that ended diverged in a note on the axes. Returns the new
    figure, or ``ax`` where one was given."""
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    labels = list(labels)
    if values.shape[0] != len(labels):
        raise ValueError(f"values must have one row per label ({len(labels)}), got shape {values.shape}")
    steps = np.asarray(steps)
    fig = None
    if ax is None:
        fig, (ax,) = _figure()
    if log:  # limits from the data below: matplotlib's autoscale margins overflow near 1e308
        ax.set_yscale("log")
        ax.set_autoscaley_on(False)
    top = transforms.blended_transform_factory(ax.transData, ax.transAxes)
    marked = False
    for k, (label, y) in enumerate(zip(labels, values)):
        shown = _positive(y) if log else np.where(np.isfinite(y), y, np.nan)
        (line,) = ax.plot(steps, shown, _STYLE[k % 4], lw=1.6, label=_legend(label))
        bad = ~np.isfinite(y)
        starts = bad & ~np.concatenate(([False], bad[:-1]))
        if starts.any():
            ax.plot(steps[starts], np.full(int(starts.sum()), 0.97), "x", color=line.get_color(), ms=7, mew=1.6,
                    transform=top, clip_on=False)
            marked = True
    if log:
        _log_limits(ax, values)
    notes = []
    if marked:
        notes.append("x: not finite from here on (overflow), drawn at the top")
    if diverged is not None:
        names = [lab for lab, d in zip(labels, np.asarray(diverged, dtype=bool).reshape(-1)) if d]
        if names:
            shown_names = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            notes.append(f"diverged (final weight not finite): {shown_names}")
    if notes:
        ax.text(0.02, 0.03, "\n".join(notes), transform=ax.transAxes, fontsize="x-small", va="bottom",
                bbox=dict(boxstyle="round", fc="white", ec="0.7", alpha=0.85))
    ax.set_xlabel("step $t$")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if legend:
        ax.legend(loc="best", fontsize="small")
    return _finish(fig, path) if fig is not None else ax


def _log_limits(ax: Axes, values: ArrayLike) -> None:
    """Log-axis limits from the finite positive ``values``, whole decades within
    1e-300 .. 1e300; over more than 12 decades, major ticks a round number of decades apart
    and no minor ticks (matplotlib's log locator probes decades past 1e308 there)."""
    y = np.asarray(values, dtype=np.float64)
    y = y[(y > 0) & np.isfinite(y)]
    if y.size == 0:
        ax.set_ylim(0.1, 10.0)
        return
    low = max(np.floor(np.log10(y.min())), -300.0)
    high = min(np.ceil(np.log10(y.max())), 300.0)
    if high <= low:
        high = low + 1.0
    ax.set_ylim(10.0 ** low, 10.0 ** high)
    if high - low > 12:
        stride = next(k for k in (2, 5, 10, 20, 25, 50, 100) if k * 8 >= high - low)
        first = np.ceil(low / stride) * stride
        ax.yaxis.set_major_locator(ticker.FixedLocator((10.0 ** np.arange(first, high + 1, stride)).tolist()))
        ax.yaxis.set_minor_locator(ticker.NullLocator())


def _panels(result: Any, attribute: str, panel_labels: Sequence[str] | None, curve_labels: Iterable[str],
            ylabel: str, title: str, path: str | os.PathLike[str] | None, diverged: ArrayLike | None = None
            ) -> Figure:
    """One panel per leading index of ``result.<attribute>`` (shape (panels, curves, n));
    ``diverged`` of shape (panels, curves) flags the curves that diverged."""
    recorded = getattr(result, attribute, None)
    if recorded is None or getattr(result, "steps", None) is None:
        raise ValueError(f"result must hold a recorded {attribute} (fd.simulate(..., every=k)), got {type(result).__name__}"
                         f" without one")
    values = np.asarray(recorded, dtype=np.float64)
    if values.ndim == 1:  # (one problem: a curvature of shape (d,))
        values = values[None]
    if values.ndim == 2:
        values = values[None]
    n = values.shape[0]
    if panel_labels is not None and len(panel_labels) != n:
        raise ValueError(f"panels must have one title per panel ({n}), got {len(panel_labels)}")
    if diverged is not None:
        diverged = np.asarray(diverged, dtype=bool).reshape(n, values.shape[1])
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = _figure(rows, cols, width=4.6 * cols + 0.6, height=3.6 * rows + 0.9)
    for k in range(n):
        trajectories(result.steps, values[k], labels=curve_labels, ylabel=ylabel,
                     title=panel_labels[k] if panel_labels else "", ax=axes[k], legend=False,
                     diverged=None if diverged is None else diverged[k])
    for ax in axes[n:]:
        ax.set_visible(False)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=min(len(names), 3), fontsize="small")
    fig.suptitle(title)
    return _finish(fig, path)


def loss_curves(result: LossRecord, *, labels: Iterable[str], panels: Sequence[str] | None = None,
                path: str | os.PathLike[str] | None = None, title: str = "Loss $f(w_t)$",
                diverged: ArrayLike | None = None) -> Figure:
    """Loss trajectories of a ``fd.simulate(..., every=k)`` result.

    ``result.loss`` of shape ``(n_curves, n_recorded)`` is one panel; shape
    ``(n_panels, n_curves, n_recorded)`` draws one panel per leading index, titled
    by ``panels``. Non-finite losses (overflow) are left out and marked at the top of
    the panel; ``diverged`` (a flag per curve, or per panel and curve) names the
    trajectories whose final weight is not finite."""
    return _panels(result, "loss", panels, labels, r"loss $\frac{1}{2}\lambda w_t^2$", title, path, diverged)


def displacement_signatures(result: DisplacementRecord, *, labels: Iterable[str], panels: Sequence[str] | None = None,
                            path: str | os.PathLike[str] | None = None,
                            title: str = r"Displacement signatures $m_t = \|w_t - w_{t-1}\|$") -> Figure:
    """Displacement m_t of a ``fd.simulate(..., every=k)`` result: a step schedule
    shows plateaus and drops, an exponential a geometric decline. Shapes as in
    ``loss_curves``."""
    return _panels(result, "displacement", panels, labels, r"displacement $m_t$", title, path)


def final_vs_curvature(curvatures: ArrayLike, values: ArrayLike, *, labels: Iterable[str],
                       ylabel: str = r"final $|w_N|$", title: str = "Final weights against curvature",
                       reference: float | None = None, path: str | os.PathLike[str] | None = None) -> Figure:
    """One curve per label of ``values[k]`` (per curvature) against the curvature (log-log),
    in increasing curvature. Values that overflowed (inf, nan) are marked ``x`` at the top,
    values of exactly 0 (an underflow) ``v`` at the bottom. ``reference`` draws a horizontal
    line (for example |w_0|)."""
    lam = np.asarray(curvatures, dtype=np.float64).reshape(-1)
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    labels = list(labels)
    if lam.size == 0 or values.ndim != 2 or values.shape != (len(labels), lam.size):
        raise ValueError(f"values must have one row per label and one column per curvature ({len(labels)}, "
                         f"{lam.size}), got shape {values.shape} (at least one curvature)")
    order = np.argsort(lam, kind="stable")  # a line through the points in the curvature's order
    lam, values = lam[order], values[:, order]
    fig, (ax,) = _figure()
    shown = _positive(values)
    top = float(np.nanmax(shown)) if np.isfinite(shown).any() else 1.0  # where overflowed points are marked
    bottom = float(np.nanmin(shown)) if np.isfinite(shown).any() else 1.0  # where zeros are marked
    for k, (label, y) in enumerate(zip(labels, values)):
        finite, zero = np.isfinite(y), y == 0.0
        drawn = finite & ~zero
        ax.plot(lam[drawn], _positive(y[drawn]), _STYLE[k % 4], marker=".", lw=1.6, label=_legend(label))
        if not finite.all():
            ax.plot(lam[~finite], np.full((~finite).sum(), top), "x", color=f"C{k}", ms=8,
                    label=_legend(f"{label}: overflow (inf/nan), drawn at the top"))
        if zero.any():
            ax.plot(lam[zero], np.full(zero.sum(), bottom), "v", color=f"C{k}", ms=7,
                    label=_legend(f"{label}: exactly 0 (underflow), drawn at the bottom"))
    if reference is not None:
        ax.axhline(reference, color="0.4", lw=0.9, ls=":", label=f"start $|w_0|$ = {reference:g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"curvature $\lambda$")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="best", fontsize="small")
    return _finish(fig, path)


def adam_effective_step(schedules: Schedules, steps: int, *, betas: tuple[float, float] = (0.9, 0.999),
                        labels: Iterable[str] | None = None, path: str | os.PathLike[str] | None = None,
                        ax: Axes | None = None) -> Figure | Axes:
    """Adam's effective step S_t = η_t (1 − β1^(t+1)) / sqrt(1 − β2^(t+1)) of each schedule
    (the new figure, or ``ax`` where one was given)."""
    from .diagnostics import adam_effective_step as effective

    fig = None
    if ax is None:
        fig, (ax,) = _figure()
    t = np.arange(int(steps))
    for k, (label, s) in enumerate(_labelled(schedules, labels)):
        ax.plot(t, _positive(effective(s, int(steps), betas=betas)), _STYLE[k % 4], lw=1.6, label=_legend(label))
    ax.set_yscale("log")
    ax.set_xlabel("step $t$")
    ax.set_ylabel(r"$S_t = \eta_t (1-\beta_1^{t+1}) / \sqrt{1-\beta_2^{t+1}}$")
    ax.set_title(rf"Adam effective step $S_t$, $(\beta_1, \beta_2)$ = {tuple(betas)}")
    ax.legend(loc="best", fontsize="small")
    return _finish(fig, path) if fig is not None else ax


def weight_decay_shrinkage(lr: S.Schedule | RealArrayLike, weight_decay: float, steps: int, *,
                           reference_lr: float | None = None,
                           labels: Sequence[str] = ("constant weight decay", "constant_shrinkage"),
                           path: str | os.PathLike[str] | None = None, ax: Sequence[Axes] | None = None
                           ) -> Figure | Sequence[Axes]:
    """Decoupled (AdamW) weight decay under a decaying lr: the per-step shrinkage
    η_t·λ_t and the cumulative factor ∏(1 − η_t·λ_t) applied to the weights, for a
    constant ``weight_decay`` against ``fd.constant_shrinkage(lr, weight_decay,
    reference_lr=reference_lr)`` over the steps drawn (any lr schedule: one without a
    closed-form reciprocal is tabulated over them; a warmup from 0 needs
    ``reference_lr``), on the new figure, or ``ax``, two axes, where they were given."""
    from .schedules import constant_shrinkage

    lr = S.as_schedule(lr, "lr")
    if lr.batch_shape != ():
        raise ValueError(f"lr must be one schedule, got batch_shape {lr.batch_shape}")
    n = int(steps)
    eta = lr.table(n)
    constant = np.full(n, float(weight_decay))
    scheduled = constant_shrinkage(lr, weight_decay, total_steps=max(n - 1, 0), reference_lr=reference_lr).table(n)
    fig = None
    if ax is None:
        fig, axes = _figure(1, 2, width=11.0, height=4.4)
    else:
        axes = ax
    t = np.arange(n)
    for k, (label, wd) in enumerate(zip(labels, (constant, scheduled))):
        per_step = eta * wd
        axes[0].plot(t, _positive(per_step), _STYLE[k], lw=1.8, label=_legend(label))
        axes[1].plot(t, np.cumprod(1.0 - per_step), _STYLE[k], lw=1.8, label=_legend(label))
    axes[0].set_yscale("log")
    axes[0].set_xlabel("step $t$")
    axes[0].set_ylabel(r"shrinkage per step $\eta_t \lambda_t$")
    axes[0].set_title(r"Per-step weight-decay shrinkage $\eta_t \lambda_t$")
    axes[1].set_xlabel("step $t$")
    axes[1].set_ylabel(r"$\prod_{s<t} (1 - \eta_s \lambda_s)$")
    axes[1].set_title(r"Total shrinkage of the weights by step $t$")
    for a in axes[:2]:
        a.legend(loc="best", fontsize="small")
    return _finish(fig, path) if fig is not None else axes


def momentum_after_drop(steps: ArrayLike, values: ArrayLike, *, labels: Iterable[str], drop: float,
                        ylabel: str = r"$w_t$", title: str = "Momentum after the first drop", log: bool = False,
                        path: str | os.PathLike[str] | None = None) -> Figure:
    """Trajectories around the first lr drop (a vertical line at ``drop``), one per
    momentum policy (keep / reset / rescale); signed weights on a linear axis by default."""
    fig, (ax,) = _figure()
    trajectories(steps, values, labels=labels, ylabel=ylabel, title=title, ax=ax, log=log)
    if not log:
        ax.axhline(0.0, color="0.3", lw=0.8)
    ax.axvline(drop, color="0.4", lw=0.9, ls=":")
    ax.text(drop, 0.02, " first drop", transform=ax.get_xaxis_transform(), fontsize="small", color="0.3")
    return _finish(fig, path)


def escape_probability(schedules: Schedules, barrier: float, c: float, steps: int, *,
                       labels: Iterable[str] | None = None, path: str | os.PathLike[str] | None = None) -> Figure:
    """``fd.escape_probability`` of each schedule: the per-step chance
    p_t = exp(−barrier / (c·η_t)) of hopping a barrier (log scale) and the chance of
    at least one escape by step t."""
    from .diagnostics import escape_probability as escape

    fig, axes = _figure(1, 2, width=11.0, height=4.6, sharex=True)
    t = np.arange(int(steps))
    top = 0.0
    for k, (label, s) in enumerate(_labelled(schedules, labels)):
        r = escape(s, barrier, c, int(steps))
        axes[0].plot(t, _positive(r.per_step), _STYLE[k % 4], lw=1.6, label=_legend(label))
        axes[1].plot(t, r.cumulative, _STYLE[k % 4], lw=1.6, label=_legend(label))
        top = max(top, float(np.max(r.per_step, initial=0.0)))
    axes[0].set_yscale("log")
    if top > 0:  # p_t falls like exp(-1/eta_t): show twelve decades below the largest
        axes[0].set_ylim(top * 1e-12, min(1.0, top * 3.0))
    axes[0].set_ylabel(r"$p_t = \exp(-B / (c\,\eta_t))$")
    axes[0].set_title(r"Chance of escaping the basin at step $t$")
    axes[1].set_ylabel(r"$P$(at least one escape by step $t$)")
    axes[1].set_title(r"Chance of an escape by step $t$")
    for ax in axes:
        ax.set_xlabel("step $t$")
        ax.set_xlim(0, max(int(steps) - 1, 1))  # both panels over the same steps
    handles, names = axes[0].get_legend_handles_labels()  # one legend, below the panels: it covers no curve
    fig.legend(handles, names, loc="outside lower center", ncols=min(len(names), 3), fontsize="small")
    fig.suptitle(rf"Escape over a barrier $B$ = {barrier:g} with noise scale $c$ = {c:g}")
    return _finish(fig, path)
