"""A grid of step schedules, one a trajectory, against JAX and NumPy doing the same run: gradient
descent on 200,000 one-coordinate quadratics x 100 steps, float64, periods 5-41 (the
step-vs-exponential comparison's own batch); with ``--grid cosine`` a grid of cosines instead
(total steps 90-126, the closed form read at every step); ``--grid warmup-cosine`` the same
cosines after a 10-step linear warmup (two segments a row); ``--grid warmup-lengths`` one cosine
of 90 steps after 37 linear warmups of 5-41 steps (the rows' segments start at different
steps). One thread each (Numba
``threads=1``, XLA without its thread pool); best of 3 calls after a warm-up; the final
weights checked against fastdecay's. ``--sweep`` lays the 37 schedules out as a sweep does,
each for consecutive trajectories (its curvatures), instead of one after another. 37 distinct
schedules over 200,000 trajectories: fastdecay reads them by rate classes (each distinct row's rate
once a step); ``--distinct`` gives every trajectory a schedule of its own (its lr scaled by
1 + i 1e-9): step schedules fastdecay reads by their 37 shapes at lr 1, each trajectory's rate its
lr times its shape's (``_lr_shapes``), and cosines likewise (with ``--grid warmup-cosine`` in two
phases, ``_lr_phases``: the warmup's 10 steps trajectory by trajectory, then the cosines' shapes);
``--distinct-gamma`` scales
each step schedule's gamma instead (37 x 5,405 shapes, 200,000 distinct: read trajectory by
trajectory). ``--every K`` records every K-th step
(K divides 100) as ``fd.simulate(..., every=K)`` returns them, a row a trajectory: the loss, the
displacement |w_t - w_(t-1)| and the rate, each implementation into arrays of that shape (JAX's scan
stacks its records a step a row: transposed inside the jitted function), the losses checked too;
``--shared`` gives every trajectory the grid's first schedule (one shared schedule). The row
``fd+grid`` is fastdecay's call with the grid's schedules made in it (the factories, the
stack, the product by the lrs): what a user who makes the grid for each run waits for.

    python bench/step_grid_peers.py [--rounds 3] [--grid step|cosine|warmup-cosine|warmup-lengths] [--sweep] [--distinct]
                                    [--distinct-gamma] [--every K] [--shared]
"""

import argparse
import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import numpy as np  # noqa: E402
from _peers import best_of_rounds, report  # noqa: E402

import fastdecay as fd  # noqa: E402

N, STEPS, LR, GAMMA, WARMUP = 200_000, 100, 0.05, 0.5, 10


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--grid", choices=("step", "cosine", "warmup-cosine", "warmup-lengths"), default="step")
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--distinct", action="store_true")
    parser.add_argument("--distinct-gamma", action="store_true")
    parser.add_argument("--every", type=int, default=None)
    parser.add_argument("--shared", action="store_true")
    args = parser.parse_args(argv)
    every = args.every
    if every is not None and (every < 1 or STEPS % every):
        parser.error(f"--every must divide {STEPS}")
    rng = np.random.default_rng(0)
    lam = rng.uniform(0.01, 1.0, N)
    lr = LR * (1.0 + 1e-9 * np.arange(N)) if args.distinct else LR
    which = np.repeat(np.arange(37), -(-N // 37))[:N] if args.sweep else np.arange(N) % 37
    if args.shared:
        which = np.zeros(1, dtype=np.int64)
    gamma = GAMMA * (1.0 + 1e-9 * np.arange(N)) if args.distinct_gamma else GAMMA
    if args.distinct_gamma and args.grid != "step":
        parser.error("--distinct-gamma is for the step grid")
    if args.grid == "step":
        period = (which + 5).astype(np.float64)

        def make_grid():
            return fd.step(lr=lr, gamma=gamma, period=period)

        def rate(xp, t, period):
            return lr * gamma ** xp.floor(t / period)
    elif args.grid == "cosine":
        period = (which + 90).astype(np.float64)

        def make_grid():
            return fd.cosine(lr=lr, total_steps=period)

        def rate(xp, t, period):
            return lr * (1.0 + xp.cos(np.pi * xp.minimum(t, period) / period)) / 2.0
    elif args.grid == "warmup-lengths":
        period = (which + 5).astype(np.float64)  # (here: each row's warmup length)

        def rate(xp, t, period):
            after = xp.maximum(t - period, 0.0)
            cosine = lr * (1.0 + xp.cos(np.pi * xp.minimum(after, 90.0) / 90.0)) / 2.0
            return xp.where(t < period, lr * t / period, cosine)

        def make_grid():
            lengths = fd.stack([fd.warmup(fd.cosine(lr=LR, total_steps=90), k + 5) for k in range(37)])
            return lengths[which] if np.ndim(lr) == 0 else lengths[which] * (lr / LR)
    else:
        period = (which + 90).astype(np.float64)

        def make_grid():
            return fd.warmup(fd.cosine(lr=lr, total_steps=period), WARMUP)

        def rate(xp, t, period):
            after = xp.maximum(t - WARMUP, 0.0)
            cosine = lr * (1.0 + xp.cos(np.pi * xp.minimum(after, period) / period)) / 2.0
            return xp.where(t < WARMUP, lr * t / WARMUP, cosine)
    made = make_grid
    if args.shared:
        def made():
            return make_grid()[0]
    grid = made()

    def fastdecay_run():
        res = fd.simulate(lam[:, None], grid, steps=STEPS, threads=1, every=every)
        return res.w[:, 0] if every is None else (res.w[:, 0], res.loss)

    def fastdecay_making_the_grid():  # (what a user's call waits for: the schedules made too)
        res = fd.simulate(lam[:, None], made(), steps=STEPS, threads=1, every=every)
        return res.w[:, 0] if every is None else (res.w[:, 0], res.loss)

    rows = {"fastdecay": fastdecay_run, "fd+grid": fastdecay_making_the_grid}

    def numpy_run():
        w = np.ones(N)
        if every is None:
            for t in range(STEPS):
                w -= rate(np, float(t), period) * (lam * w)
            return w
        n_rec = STEPS // every + 1
        loss, disp, rates = (np.empty((N, n_rec)) for _ in range(3))
        loss[:, 0], disp[:, 0], rates[:, 0] = 0.5 * lam * w * w, 0.0, rate(np, 0.0, period)
        for t in range(STEPS):
            new = w - rate(np, float(t), period) * (lam * w)
            if (t + 1) % every == 0:
                j = (t + 1) // every
                loss[:, j], disp[:, j], rates[:, j] = 0.5 * lam * new * new, np.abs(new - w), \
                    rate(np, float(t + 1), period)
            w = new
        return w, loss

    rows["numpy"] = numpy_run
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        jnp = jax.numpy

        @jax.jit
        def scan(lam, period, steps):
            def body(w, t):
                return w - rate(jnp, t, period) * (lam * w), None
            return jax.lax.scan(body, jnp.ones_like(lam), steps)[0]

        @jax.jit
        def scan_recorded(lam, period):
            def one(w, t):
                return w - rate(jnp, t, period) * (lam * w)

            def between(w, j):  # steps (j - 1) every .. j every - 1, the last recorded
                t0 = (j - 1) * every
                before = jax.lax.fori_loop(0, every - 1, lambda k, w: one(w, (t0 + k).astype("float64")), w)
                new = one(before, (t0 + every - 1).astype("float64"))
                lr_j = jnp.broadcast_to(rate(jnp, (j * every).astype("float64"), period), lam.shape)
                return new, (0.5 * lam * new * new, jnp.abs(new - before), lr_j)

            w0 = jnp.ones_like(lam)
            w, recs = jax.lax.scan(between, w0, jnp.arange(1, STEPS // every + 1))
            first = (0.5 * lam * w0 * w0, jnp.zeros_like(lam), jnp.broadcast_to(rate(jnp, 0.0, period), lam.shape))
            loss, disp, rates = (jnp.concatenate([f[None], r]).T for f, r in zip(first, recs))
            return w, loss, disp, rates

        args_j = (jnp.asarray(lam), jnp.asarray(period), jnp.arange(STEPS, dtype="float64"))
        if every is None:
            rows["jax"] = lambda: np.asarray(scan(*args_j).block_until_ready())
        else:
            def jax_recorded():
                out = jax.block_until_ready(scan_recorded(*args_j[:2]))
                return np.asarray(out[0]), np.asarray(out[1])
            rows["jax"] = jax_recorded
    except ImportError:
        print("(JAX is not installed: pip install jax)")
    def check(got, want):  # (the weights, and with recording the losses too)
        for g, w in zip(got if every else [got], want if every else [want]):
            np.testing.assert_allclose(g, w, rtol=1e-12)

    report(best_of_rounds(rows, args.rounds, check), N * STEPS)

if __name__ == "__main__":
    main()
