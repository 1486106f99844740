"""fastdecay: learning-rate schedules, fused scheduled optimizer updates and batched
quadratic-trajectory simulations on Numba (CPU) and CuPy (GPU) kernels.

``import fastdecay`` imports numpy only; Numba kernels load on first use, and
torch or CuPy only when the caller passes their arrays.
"""

from typing import TYPE_CHECKING

from .schedules import (
    Schedule,
    constant,
    cosine,
    cosine_restarts,
    constant_shrinkage,
    cyclic,
    exponential,
    from_function,
    half_life,
    inverse_sqrt,
    inverse_time,
    join,
    linear,
    match_endpoint,
    match_half_life,
    multistep,
    one_cycle,
    piecewise,
    polynomial,
    product,
    quantization_gap,
    stack,
    step,
    tabulated,
    warmup,
    wsd,
)
from .updates import adamw_step, lion_step, sgd_step
from .simulate import SimulationResult, simulate
from .diagnostics import (
    EscapeProbability,
    adam_effective_step,
    discretization_divergence,
    escape_probability,
    stability_onset,
)
from .expected import (
    AdamCompensatingDecay,
    BatchScaling,
    ExpectedLoss,
    adam_compensating_decay,
    batch_size_scaling,
    expected_loss,
    steps_to_target,
)
from .sweep import SweepConfigError, SweepResult, load_sweep, sweep  # binds fd.sweep to the function (see fastdecay/sweep/__init__.py)

from ._version import __version__

if TYPE_CHECKING:
    from . import plots as plots  # for type checkers; at run time __getattr__ below imports it on first use

__all__ = [
    # schedules
    "Schedule",
    "constant",
    "step",
    "multistep",
    "exponential",
    "inverse_time",
    "polynomial",
    "cosine",
    "cosine_restarts",
    "linear",
    "piecewise",
    "warmup",
    "join",
    "one_cycle",
    "cyclic",
    "inverse_sqrt",
    "wsd",
    "stack",
    "tabulated",
    "from_function",
    "product",
    "half_life",
    "match_endpoint",
    "match_half_life",
    "quantization_gap",
    # fused updates
    "sgd_step",
    "adamw_step",
    "lion_step",
    "constant_shrinkage",
    # simulation and diagnostics
    "simulate",
    "SimulationResult",
    "stability_onset",
    "escape_probability",
    "EscapeProbability",
    "adam_effective_step",
    "discretization_divergence",
    # expected dynamics of noisy SGD on quadratics
    "expected_loss",
    "ExpectedLoss",
    "steps_to_target",
    "batch_size_scaling",
    "BatchScaling",
    "adam_compensating_decay",
    "AdamCompensatingDecay",
    # sweeps
    "sweep",
    "load_sweep",
    "SweepResult",
    "SweepConfigError",
]


if not TYPE_CHECKING:  # (type checkers see `plots` imported above, and no other attribute)

    def __getattr__(name):
        """``fd.plots`` imports matplotlib on first use, not with ``import fastdecay``."""
        if name == "plots":
            import importlib

            return importlib.import_module(".plots", __name__)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
