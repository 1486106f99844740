"""Zhang et al. 2019 ("Which Algorithmic Choices Matter at Which Batch Sizes? Insights
From a Noisy Quadratic Model", NeurIPS 2019), reproduced with exact expectations.

The noisy quadratic model (NQM): d = 10,000 coordinates with curvature λ_k = 1/k
and gradient-noise variance σ_k² = λ_k per example, so a batch of B examples sees
the gradient λ_k w_k + (σ_k/√B) ξ. For every batch size B = 2^0 … 2^16 this finds
the number of steps to bring the expected loss to a fixed target (10 % of the
loss at w0 = 1) at the best constant learning rate, for plain SGD and for heavy
ball momentum (β = 0.9): one ``fd.steps_to_target`` call per optimizer searches
a grid of rates x every batch size, and ``fd.batch_size_scaling`` takes the best
rate at each batch size and the critical batch size.

What the paper reports, and this reproduces: perfect scaling at small batches
(doubling B halves the steps: log-log slope ≈ −1), diminishing returns past a
critical batch size, and momentum (which allows a larger effective step where the
noise no longer limits it) pushing the critical batch size higher than plain SGD,
while at small batches it gains nothing.

    python examples/nqm_batch_size.py [--dim 10000] [--out docs/nqm_batch_size.png]

The rate grid of each batch size spans fractions of the rate whose stationary
loss (in closed form, ``stationary_loss``) equals the target — above it the target
is out of reach — capped below the stability limit 2(1 + β)/λ_max.
"""

import argparse
import sys
import time

import numpy as np

import fastdecay as fd


def nqm(dim):
    """(curvature λ_k = 1/k, noise σ_k = sqrt(λ_k)) of the NQM with ``dim`` coordinates."""
    lam = 1.0 / np.arange(1, dim + 1)
    return lam, np.sqrt(lam)


def stationary_loss(eta, lam, noise, batch_size, momentum):
    """The expected loss heavy ball (plain SGD for momentum 0) settles at with the constant
    rate ``eta``: Σ_k η σ_k² (1 + β) / (2B (1 − β) (2(1 + β) − η λ_k)) (the NQM paper's
    stationary variance; ``fd.expected_loss`` converges to it)."""
    beta = momentum
    return np.sum(eta * noise**2 * (1 + beta) / (2.0 * batch_size * (1 - beta) * (2.0 * (1 + beta) - eta * lam)))


def rate_grid(lam, noise, sizes, target, *, momentum, n_rates=8):
    """(n_rates, n_sizes) learning rates: fractions 0.2 … 0.95 of the largest rate at each
    batch size whose stationary loss is below the target (bisection), itself capped at
    0.95 of the stability limit 2(1 + β)/λ_max."""
    cap = 0.95 * 2.0 * (1.0 + momentum) / float(lam.max())
    limit = np.empty(len(sizes))
    for j, b in enumerate(sizes):
        lo, hi = 0.0, cap
        if stationary_loss(cap, lam, noise, b, momentum) < target:
            lo = cap
        for _ in range(60 if lo < cap else 0):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if stationary_loss(mid, lam, noise, b, momentum) < target else (lo, mid)
        limit[j] = lo
    return np.geomspace(0.2, 0.95, n_rates)[:, None] * limit[None, :]


def batch_size_curve(lam, noise, sizes, target, *, momentum=0.0, max_steps=100_000, n_rates=8):
    """Steps to ``target`` against batch size at the best rate of the grid:
    (BatchScaling, best rate per batch size, seconds)."""
    rates = rate_grid(lam, noise, sizes, target, momentum=momentum, n_rates=n_rates)
    optimizer = "momentum" if momentum else "gd"
    start = time.perf_counter()
    steps = fd.steps_to_target(lam, fd.constant(rates), target, steps=max_steps, optimizer=optimizer,
                               momentum=momentum, noise=noise, batch_size=sizes)
    seconds = time.perf_counter() - start
    scaling = fd.batch_size_scaling(sizes, steps)
    best_rate = np.where(scaling.best >= 0, rates[np.maximum(scaling.best, 0), np.arange(len(sizes))], np.nan)
    return scaling, best_rate, seconds


def figure(curves, dim, path):
    """Steps to target and best rate against batch size, one line per optimizer."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    left, right = fig.subplots(1, 2)
    for (label, (scaling, best_rate, _)), color in zip(curves.items(), ("C0", "C3")):
        sizes, steps = scaling.batch_size, scaling.steps.astype(float)
        steps[steps < 0] = np.nan
        left.loglog(sizes, steps, "o-", color=color, label=f"{label} (critical B ≈ {scaling.critical_batch_size:.0f})")
        left.loglog(sizes, scaling.min_examples / sizes, ":", color=color, lw=1)
        left.axvline(scaling.critical_batch_size, color=color, lw=0.8, ls="--")
        right.loglog(sizes, best_rate, "o-", color=color, label=label)
    fewest = min(scaling.min_steps for scaling, _, _ in curves.values())
    left.set_ylim(bottom=0.5 * fewest)
    left.set_xlabel("batch size B")
    left.set_ylabel("steps to reach the target expected loss")
    left.set_title(f"NQM: λ_k = 1/k, σ_k² = λ_k, d = {dim}")
    left.legend(fontsize=8)
    left.text(0.02, 0.03, "dotted: perfect scaling (steps ∝ 1/B); dashed: critical batch size",
              transform=left.transAxes, fontsize=7)
    right.set_xlabel("batch size B")
    right.set_ylabel("best constant learning rate η")
    right.set_title("best η ∝ B until curvature caps it\n(heavy ball's effective rate is η/(1 − β))", fontsize=10)
    right.legend(fontsize=8)
    fig.tight_layout()
    from fastdecay.plots import save  # (creates the figure's folder)

    save(fig, path, dpi=110)


def main(argv=None, out=print):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=10_000, help="coordinates of the NQM (default 10,000)")
    parser.add_argument("--max-batch-log2", type=int, default=16, help="largest batch size 2^k (default 16)")
    parser.add_argument("--rates", type=int, default=8, help="learning rates searched per batch size")
    parser.add_argument("--max-steps", type=int, default=100_000)
    parser.add_argument("--out", default="docs/nqm_batch_size.png", help="figure path ('' for none)")
    args = parser.parse_args(argv)
    lam, noise = nqm(args.dim)
    target = 0.1 * 0.5 * float(np.sum(lam))  # 10 % of the loss at w0 = 1
    sizes = 2.0 ** np.arange(0, args.max_batch_log2 + 1)
    curves = {}
    for label, momentum in (("SGD", 0.0), ("heavy ball β = 0.9", 0.9)):
        curves[label] = batch_size_curve(lam, noise, sizes, target, momentum=momentum, max_steps=args.max_steps,
                                         n_rates=args.rates)
    out(f"NQM d = {args.dim}, target expected loss {target:.4f} (10 % of the start)")
    out(f"{'B':>7} " + " ".join(f"{label:>22}" for label in curves))
    for j, b in enumerate(sizes):
        cells = []
        for scaling, best_rate, _ in curves.values():
            cells.append(f"{scaling.steps[j]:>8d} steps lr {best_rate[j]:7.4f}")
        out(f"{int(b):>7d} " + " ".join(f"{c:>22}" for c in cells))
    for label, (scaling, _, seconds) in curves.items():
        out(f"{label}: slope at the smallest batches {scaling.slope[0]:.2f}, critical batch size "
            f"{scaling.critical_batch_size:.1f}, {seconds:.1f} s for {scaling.batch_size.size} batch sizes x "
            f"{args.rates} rates")
    if args.out:
        figure(curves, args.dim, args.out)
        out(f"figure: {args.out}")
    return curves


if __name__ == "__main__":
    main(sys.argv[1:])
