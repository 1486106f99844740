"""A grid of momenta (or Adam's beta1s, or weight decays), one a trajectory, against JAX and NumPy
doing the same run: 200,000 one-coordinate quadratics x 100 steps, float64, a shared step schedule
(lr 0.05, halved every 30 steps), the hyperparameter taking 5 values in turn over the trajectories
(the layout a broadcast gives; ``--sorted``: each value's trajectories together, as a sweep lays
them out). ``--grid momentum``: heavy ball (torch's SGD with momentum; the values 0, 0.5, 0.8, 0.9,
0.95); ``--grid beta1``: AdamW (beta1 0.5-0.95, beta2 0.999, weight decay 0.01, Adam's bias
corrections a trajectory); ``--grid weight-decay``: gradient descent with an L2 weight decay
(0-0.1). fastdecay's timed call is the user's: ``fd.simulate(..., momentum=array)`` (``betas=(array,
beta2)``, ``weight_decay=array``) with its checks and the rates made of the array inside it. One thread
each (Numba ``threads=1``, XLA without its thread pool); best of 3 calls after a warm-up; the final
weights checked against fastdecay's (to 1e-9, 1e-12 absolute: each rounds in its own order).

    python bench/hyper_grid_peers.py [--rounds 3] [--grid momentum|beta1|weight-decay] [--sorted]
"""

import argparse
import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import numpy as np  # noqa: E402
from _peers import best_of_rounds, report  # noqa: E402

import fastdecay as fd  # noqa: E402

N, STEPS, LR, GAMMA, PERIOD = 200_000, 100, 0.05, 0.5, 30
BETA2, EPS, ADAMW_WD = 0.999, 1e-8, 0.01
VALUES = {"momentum": [0.0, 0.5, 0.8, 0.9, 0.95], "beta1": [0.5, 0.8, 0.9, 0.95, 0.99],
          "weight-decay": [0.0, 1e-3, 1e-2, 5e-2, 1e-1]}


def step_rate(xp, t):
    return LR * GAMMA ** xp.floor(t / PERIOD)


def update(xp, grid, lam, h, w, b, v, t):
    """One step of every trajectory at step ``t`` (a float): (w, b, v) after it; ``h`` the grid's values."""
    lr = step_rate(xp, t)
    if grid == "momentum":
        g = lam * w
        b = xp.where(t == 0.0, g, h * b + g)
        return w - lr * b, b, v
    if grid == "weight-decay":
        return w - lr * (lam * w + h * w), b, v
    g = lam * w
    b = h * b + (1.0 - h) * g
    v = BETA2 * v + (1.0 - BETA2) * g * g
    bc1, bc2 = 1.0 - h ** (t + 1.0), 1.0 - BETA2 ** (t + 1.0)
    w = w * (1.0 - lr * ADAMW_WD)
    return w - (lr / bc1) * b / (xp.sqrt(v) / xp.sqrt(bc2) + EPS), b, v


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--grid", choices=tuple(VALUES), default="momentum")
    parser.add_argument("--sorted", action="store_true")
    args = parser.parse_args(argv)
    grid = args.grid
    rng = np.random.default_rng(0)
    lam = rng.uniform(0.01, 1.0, N)
    which = np.arange(N) * 5 // N if args.sorted else np.arange(N) % 5
    h = np.asarray(VALUES[grid])[which]
    schedule = fd.step(lr=LR, gamma=GAMMA, period=PERIOD)
    optimizer = {"momentum": "momentum", "beta1": "adamw", "weight-decay": "gd"}[grid]

    def fastdecay_run():
        if grid == "momentum":
            kw = dict(momentum=h)
        elif grid == "beta1":
            kw = dict(betas=(h, BETA2), eps=EPS, weight_decay=ADAMW_WD)
        else:
            kw = dict(weight_decay=h)
        return fd.simulate(lam[:, None], schedule, steps=STEPS, optimizer=optimizer, threads=1, **kw).w[:, 0]

    def numpy_run():
        """``update`` in place, into buffers made once (temporaries of 1.6 MB a step, which the
        allocator may map afresh each time, made the same loop take 1-4x as long from run to run)."""
        w, b, v, g, tmp = np.ones(N), np.zeros(N), np.zeros(N), np.empty(N), np.empty(N)
        one_minus_h = 1.0 - h
        for t in range(STEPS):
            lr = step_rate(np, float(t))
            np.multiply(lam, w, out=g)
            if grid == "momentum":
                if t == 0:
                    b[:] = g
                else:
                    b *= h
                    b += g
                np.multiply(b, lr, out=tmp)
            elif grid == "weight-decay":
                np.multiply(h, w, out=tmp)
                tmp += g
                tmp *= lr
            else:
                b *= h
                np.multiply(g, one_minus_h, out=tmp)
                b += tmp
                v *= BETA2
                g *= g
                g *= 1.0 - BETA2
                v += g
                np.sqrt(v, out=g)
                g /= np.sqrt(1.0 - BETA2 ** (t + 1.0))
                g += EPS  # (the denominator)
                np.power(h, t + 1.0, out=tmp)
                np.subtract(1.0, tmp, out=tmp)  # (the bias correction 1 - beta1^(t+1))
                np.divide(lr, tmp, out=tmp)
                tmp *= b
                tmp /= g
                w *= 1.0 - lr * ADAMW_WD
            w -= tmp
        return w

    rows = {"fastdecay": fastdecay_run, "numpy": numpy_run}
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        jnp = jax.numpy

        @jax.jit
        def scan(lam, h, steps):
            def body(state, t):
                return update(jnp, grid, lam, h, *state, t), None
            zeros = jnp.zeros_like(lam)
            return jax.lax.scan(body, (jnp.ones_like(lam), zeros, zeros), steps)[0][0]

        args_j = (jnp.asarray(lam), jnp.asarray(h), jnp.arange(STEPS, dtype="float64"))
        rows["jax"] = lambda: np.asarray(scan(*args_j).block_until_ready())
    except ImportError:
        print("(JAX is not installed: pip install jax)")
    # (rounded in another order: to 1e-9, 1e-12 absolute)
    report(best_of_rounds(rows, args.rounds, lambda got, want: np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)), N * STEPS)

if __name__ == "__main__":
    main()
