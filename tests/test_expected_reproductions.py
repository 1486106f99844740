"""The two published results of examples/, at sizes that run in seconds: their
qualitative claims hold on fd.expected_loss / fd.steps_to_target.

- Zhang et al. 2019 (examples/nqm_batch_size.py): perfect scaling at small
  batches, diminishing returns past a critical batch size, momentum raising it.
- Ge, Kakade, Kidambi, Netrapalli 2019 (examples/step_decay_ge2019.py): the best
  1/t decay's gap to the best step decay grows with κ; step decay stays within a
  small factor of the best constant-then-decay schedule.
"""

import importlib.util
import os

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(ROOT, "examples", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def nqm_curves():
    nqm = load_example("nqm_batch_size")
    lam, noise = nqm.nqm(400)
    target = 0.1 * 0.5 * float(np.sum(lam))
    sizes = 2.0 ** np.arange(0, 11)
    return {momentum: nqm.batch_size_curve(lam, noise, sizes, target, momentum=momentum, max_steps=50_000,
                                           n_rates=6)[0]
            for momentum in (0.0, 0.9)}


def test_nqm_perfect_scaling_at_small_batches(nqm_curves):
    for scaling in nqm_curves.values():
        assert np.all(scaling.steps > 0), "every batch size reached the target at its best rate"
        # doubling the batch halves the steps: log-log slope about -1 over the first doublings
        assert np.all((scaling.slope[:3] < -0.85) & (scaling.slope[:3] > -1.15)), scaling.slope


def test_nqm_diminishing_returns_past_the_critical_batch_size(nqm_curves):
    sgd = nqm_curves[0.0]
    sizes = sgd.batch_size
    assert sizes[0] < sgd.critical_batch_size < sizes[-1]
    beyond = sizes[:-1] >= 4 * sgd.critical_batch_size  # doublings that start past 4x the critical size
    assert beyond.any() and np.all(sgd.slope[beyond] > -0.25), sgd.slope
    # past the critical batch size the steps stay within a small factor of the fewest
    assert sgd.steps[-1] <= 1.1 * sgd.min_steps


def test_nqm_momentum_raises_the_critical_batch_size(nqm_curves):
    sgd, heavy = nqm_curves[0.0], nqm_curves[0.9]
    assert heavy.critical_batch_size > 2 * sgd.critical_batch_size
    # no gain where the noise limits the step; several times fewer steps at large batches
    assert heavy.steps[0] == pytest.approx(sgd.steps[0], rel=0.1)
    assert heavy.steps[-1] * 2.5 < sgd.steps[-1]


def test_ge2019_polynomial_gap_grows_with_kappa_and_step_decay_is_near_best():
    ge = load_example("step_decay_ge2019")
    kappas = (10.0, 100.0, 1000.0)
    results = [ge.best_final_losses(k, 5000) for k in kappas]
    poly_over_step = [r["polynomial (1/t)"][0] / r["step decay"][0] for r in results]
    step_over_best = [r["step decay"][0] / r["constant, then 1/t"][0] for r in results]
    assert all(a < b for a, b in zip(poly_over_step, poly_over_step[1:])), poly_over_step
    assert poly_over_step[0] < 1.3 and poly_over_step[-1] > 1.8, poly_over_step
    assert max(step_over_best) < 1.5, step_over_best
