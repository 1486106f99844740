"""The rounds and the report of the comparisons with JAX and NumPy (``step_grid_peers.py``,
``hyper_grid_peers.py``): each implementation's best of 3 calls after a warm-up, the
implementations in turn a round, every result checked against the first's."""

import time


def best_of_rounds(rows, rounds, check):
    """{name: [the best of 3 calls of each round, seconds]} of ``rows`` ({name: call}); each round
    runs every row in turn, a warm-up call and 3 timed ones, and ``check(result, reference)`` of
    each row's last result against the first row's."""
    best = {name: [] for name in rows}
    for _ in range(rounds):
        reference = None
        for name, run in rows.items():
            run()
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                result = run()
                times.append(time.perf_counter() - t0)
            reference = result if reference is None else reference
            check(result, reference)
            best[name].append(min(times))
    return best


def report(best, trajectory_steps):
    """Print each row's times and rates, and fastdecay's speed against JAX (where timed) and NumPy."""
    for name, times in best.items():
        rates = ", ".join(f"{trajectory_steps / t / 1e9:.2f}" for t in times)
        print(f"{name:10s} " + " / ".join(f"{t * 1e3:.1f}" for t in times) + f" ms   ({rates} G trajectory-steps/s)")
    for name in (n for n in best if n not in ("jax", "numpy")):
        if "jax" in best:
            print(f"{name} / JAX speed: " + " / ".join(f"{j / f:.2f}x" for f, j in zip(best[name], best["jax"])))
        print(f"{name} / NumPy speed: " + " / ".join(f"{n_ / f:.2f}x" for f, n_ in zip(best[name], best["numpy"])))
