"""``fastdecay demo``: half-life-matched step vs exponential decay on a batch of quadratics.

One schedule of each kind, all starting at ETA0: ``fd.step(ETA0, 0.5, HALF_LIFE)``,
its half-life-matched exponential ``fd.match_half_life(step)`` and, for reference,
``fd.cosine(ETA0, STEPS)``, on the 1-D quadratics ½λw² for curvatures λ from
0.01 to 100, started at w_0 = 1. ETA0 puts the largest curvatures above the
stability edge η_0·λ = 2 at the start, so each schedule has to bring them back.

Per curvature the table shows:

- ``t*``: the stability onset ``fd.stability_onset`` (first step with η_t·λ < 2);
- ``|w_N|``: the distance from the minimum after STEPS steps of gradient descent
  (``fd.simulate``);
- ``div``: the discretization divergence ``fd.discretization_divergence`` —
  |w_N| of the step schedule over that of its matched exponential;
- ``overshoot``: heavy-ball momentum in the lr-in-buffer form
  (v ← βv + η_t g, w ← w − v, β = 0.9) under the step schedule, with the momentum
  buffer kept, reset or rescaled by η_t/η_{t−1} at the first drop: the peak |w|
  over the half-life after the drop divided by the peak |w| over the half-life
  before it (below 1: the drop keeps contracting; above 1: the iterate swings out
  further than it was before the drop).
"""

import os
import sys
import time

import numpy as np

import fastdecay as fd

ETA0 = 0.05
HALF_LIFE = 25
STEPS = 250
TABLE_CURVATURES = np.logspace(-2, 2, 13)
FIGURE_CURVATURES = np.logspace(-2, 2, 81)
PANEL_CURVATURES = np.array([0.01, 1.0, 100.0])
MOMENTUM = 0.9
WEIGHT_DECAY = 0.1
ESCAPE_BARRIER = 0.025  # barrier / c = 0.25: p_0 = exp(-5) at eta_0 = 0.05
ESCAPE_C = 0.1


def schedules():
    """The three schedules of the demo, by label."""
    step = fd.step(ETA0, 0.5, HALF_LIFE)
    return {
        f"step (gamma 0.5 every {HALF_LIFE})": step,
        f"exponential (half-life {HALF_LIFE})": fd.match_half_life(step),
        f"cosine over {STEPS} (reference)": fd.cosine(ETA0, STEPS),
    }


def _gd(scheds, curvatures, every=None):
    """Plain GD for every schedule x curvature: ``fd.simulate`` on a (schedules, curvatures) batch."""
    stacked = fd.stack(list(scheds.values()))[:, None]
    lam = np.broadcast_to(np.asarray(curvatures, dtype=np.float64)[None, :, None], (stacked.size, len(curvatures), 1))
    return fd.simulate(np.ascontiguousarray(lam), stacked, steps=STEPS, every=every)


def _overshoot(step_schedule, curvatures):
    """Peak |w| over the half-life after the first drop / over the half-life before it,
    for keep / reset / rescale (shape (3, n_curvatures)), and the trajectories."""
    drop = HALF_LIFE
    lam = np.asarray(curvatures, dtype=np.float64)[:, None]
    ratios, runs = [], []
    for policy in ("keep", "reset", "rescale"):
        res = fd.simulate(lam, step_schedule, steps=min(STEPS, 2 * drop + 1), optimizer="momentum_lr_in_buffer",
                          momentum=MOMENTUM, on_drop=policy, every=1)
        w = np.sqrt(2.0 * res.loss / lam)  # |w_t| from the recorded loss ½λw²
        before = w[:, drop - HALF_LIFE + 1: drop + 1].max(axis=1)
        after = w[:, drop + 1: drop + HALF_LIFE + 1].max(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios.append(after / before)
        runs.append(res)
    return np.array(ratios), runs


def signed_weights(res, curvatures):
    """w_t of 1-D trajectories recorded every step, from what ``fd.simulate`` records:
    |w_t| = sqrt(2 loss_t / λ), and the sign flips at step t where the displacement
    m_t = |w_t − w_{t−1}| is |w_t| + |w_{t−1}| rather than ||w_t| − |w_{t−1}||."""
    lam = np.asarray(curvatures, dtype=np.float64).reshape(-1, 1)
    size = np.sqrt(2.0 * res.loss / lam)
    m = res.displacement
    flips = np.abs(m[:, 1:] - (size[:, 1:] + size[:, :-1])) < np.abs(m[:, 1:] - np.abs(size[:, 1:] - size[:, :-1]))
    sign = np.concatenate([np.ones((size.shape[0], 1)), np.cumprod(np.where(flips, -1.0, 1.0), axis=1)], axis=1)
    return size * sign


def _fmt(x, width):
    if not np.isfinite(x):
        return f"{'inf' if x > 0 else 'nan':>{width}}"
    return f"{x:>{width}.2e}"


def table(scheds, curvatures, final_w, onsets, divergence, overshoot):
    """The demo table as text (one row per curvature)."""
    short = ["step", "exp", "cos"]
    head1 = f"{'':>8} | {'stability onset t*':^20} | {'final |w_N| (GD)':^29} | {'div':^8} | " \
            f"{'momentum at 1st drop':^20}"
    head2 = f"{'lambda':>8} | " + " ".join(f"{s:>6}" for s in short) + " | " + " ".join(f"{s:>9}" for s in short) \
        + f" | {'step/exp':>8} | " + " ".join(f"{p:>6}" for p in ("keep", "reset", "resc."))
    lines = [head1, head2, "-" * len(head2)]
    for c, lam in enumerate(curvatures):
        cells = [f"{lam:>8.3g}", "|", " ".join(f"{int(onsets[k, c]):>6}" for k in range(3)), "|",
                 " ".join(_fmt(final_w[k, c], 9) for k in range(3)), "|", _fmt(divergence[c], 8), "|",
                 " ".join(f"{overshoot[p, c]:>6.3f}" for p in range(3))]
        lines.append(" ".join(cells))
    return "\n".join(lines)


# a first computation slower than this compiled its kernels: the run says so (on stderr) and why
COMPILING_AFTER = 1.0


def run(out_dir="demo-out", plots=True, out=sys.stdout, note=sys.stderr):
    """Run the demo: print the table and (with ``plots``) write the figures to ``out_dir``;
    where the kernels compile on this first use, ``note`` says so while they do."""
    started = time.perf_counter()
    scheds = schedules()
    labels = list(scheds)
    step = scheds[labels[0]]
    stacked = fd.stack(list(scheds.values()))
    # the heading first: on a machine's first run the table takes about a minute (compiling)
    out.write(f"fastdecay demo: gradient descent on 1/2 lambda w^2 from w_0 = 1, {STEPS} steps, eta_0 = {ETA0} "
              f"(eta_0 lambda > 2, unstable at the start, for lambda > {2 / ETA0:g})\n")
    out.write("schedules: " + "; ".join(f"{k} = {v!r}" for k, v in scheds.items()) + "\n\n")
    out.flush()

    lam = TABLE_CURVATURES
    onsets = np.asarray(fd.stability_onset(stacked[:, None], lam[None, :], max_steps=STEPS))
    if time.perf_counter() - started > COMPILING_AFTER:
        note.write("fastdecay demo: compiling the CPU kernels on their first use on this machine (about a minute "
                   "in all, once: later runs load them; `fastdecay compile` does it ahead of time)\n")
        note.flush()
    res = _gd(scheds, lam)
    final_w = np.abs(res.w[..., 0])
    divergence = np.asarray(fd.discretization_divergence(step, lam, STEPS))
    overshoot, _ = _overshoot(step, lam)

    out.write(table(scheds, lam, final_w, onsets, divergence, overshoot) + "\n\n")
    out.write("t*: first step with eta_t lambda < 2 (0: stable from the start).  div: discretization divergence, "
              "|w_N| step / |w_N| matched exponential.\n"
              f"momentum at 1st drop: v <- {MOMENTUM} v + eta_t g, w <- w - v under the step schedule, buffer kept / "
              "reset / rescaled at the first drop:\n"
              f"peak |w| over the {HALF_LIFE} steps after the drop / over the {HALF_LIFE} steps before it.\n")
    if plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            out.write("\nno figures: matplotlib is not installed (pip install 'fastdecay[plot]')\n")
            plots = False
    if plots:
        figures = draw(out_dir, scheds)
        out.write(f"\nfigures in {out_dir}/: {', '.join(os.path.basename(f) for f in figures)}\n")
    out.write(f"done in {time.perf_counter() - started:.1f} s\n")
    return 0


def draw(out_dir, scheds):
    """Write the demo's PNG figures into ``out_dir``; returns their paths."""
    from . import plots

    os.makedirs(out_dir, exist_ok=True)
    labels = list(scheds)
    step = scheds[labels[0]]
    paths = []

    def save(fig, name):
        paths.append(plots.save(fig, os.path.join(out_dir, name)))

    save(plots.lr_curves(scheds, STEPS, title=rf"Learning rates $\eta_t$: step vs half-life-matched exponential "
                                              rf"($\eta_0$ = {ETA0})"),
         "lr.png")
    save(plots.stability_ceiling(scheds, TABLE_CURVATURES, STEPS), "stability.png")

    panels = PANEL_CURVATURES
    traj = _gd(scheds, panels, every=1)
    view = _Panels(traj, panels)
    names = [f"curvature $\\lambda$ = {v:g}" for v in panels]
    save(plots.displacement_signatures(view, labels=labels, panels=names,
                                       title=r"Displacement signatures $m_t = |w_t - w_{t-1}|$: step schedule "
                                             "plateaus and drops, exponential declines geometrically"),
         "displacement.png")
    save(plots.loss_curves(view, labels=labels, panels=names,
                           title=r"Loss $\frac{1}{2}\lambda w_t^2$ under gradient descent"), "loss.png")

    dense = _gd(scheds, FIGURE_CURVATURES)
    save(plots.final_vs_curvature(FIGURE_CURVATURES, np.abs(dense.w[..., 0]), labels=labels, reference=1.0,
                                  title=rf"Distance from the minimum $|w_N|$ after $N$ = {STEPS} steps of gradient "
                                        "descent"),
         "final_w.png")

    mid = np.array([10.0])
    _, runs = _overshoot(step, mid)
    steps = runs[0].steps
    w = np.stack([signed_weights(r, mid)[0] for r in runs])
    save(plots.momentum_after_drop(steps, w, labels=["keep", "reset", "rescale"], drop=HALF_LIFE,
                                   title=rf"Momentum buffer at the first drop ($v \leftarrow {MOMENTUM}\,v + \eta_t g$, "
                                         rf"step schedule, curvature $\lambda$ = {mid[0]:g})"),
         "momentum.png")

    save(plots.escape_probability(scheds, ESCAPE_BARRIER, ESCAPE_C, STEPS), "escape.png")

    fig, axes = plots._figure(1, 3, width=15.0, height=4.6)
    plots.adam_effective_step(scheds, STEPS, ax=axes[0])
    exp = scheds[labels[1]]
    plots.weight_decay_shrinkage(exp, WEIGHT_DECAY, STEPS, ax=axes[1:],
                                 labels=(f"constant weight_decay = {WEIGHT_DECAY}",
                                         f"fd.constant_shrinkage(lr, {WEIGHT_DECAY})"))
    fig.suptitle(r"AdamW: effective step $S_t$ of each schedule; decoupled weight decay under the exponential "
                 r"rate $\eta_t$")
    save(fig, "adamw.png")
    return paths


class _Panels:
    """A (schedules, curvatures, steps) simulation seen as panels per curvature."""

    def __init__(self, res, curvatures):
        self.steps = res.steps
        self.loss = np.moveaxis(res.loss, 1, 0)
        self.displacement = np.moveaxis(res.displacement, 1, 0)
