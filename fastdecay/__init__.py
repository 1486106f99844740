"""fastdecay: learning-rate schedules, fused scheduled optimizer updates and batched
quadratic-trajectory simulations on Numba (CPU) and CuPy (GPU) kernels.

``import fastdecay`` imports numpy only; Numba kernels load on first use, and
torch or CuPy only when the caller passes their arrays.
"""

from .schedules import (
    Schedule,
    constant,
    cosine,
    cosine_restarts,
    cyclic,
    exponential,
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
    quantization_gap,
    stack,
    step,
    warmup,
    wsd,
)
from .simulate import SimulationResult, simulate
from .diagnostics import (
    EscapeProbability,
    adam_effective_step,
    discretization_divergence,
    escape_probability,
    stability_onset,
)

from .updates import adamw_step, constant_shrinkage, sgd_step

from ._sweep import SweepConfigError, SweepResult, load_sweep, sweep

__version__ = "0.1.0"

__all__ = [
    "sgd_step",
    "adamw_step",
    "constant_shrinkage",
    "Schedule",
    "constant",
    "cosine",
    "cosine_restarts",
    "cyclic",
    "exponential",
    "half_life",
    "inverse_sqrt",
    "inverse_time",
    "join",
    "linear",
    "match_endpoint",
    "match_half_life",
    "multistep",
    "one_cycle",
    "piecewise",
    "polynomial",
    "quantization_gap",
    "stack",
    "step",
    "warmup",
    "wsd",
    "simulate",
    "SimulationResult",
    "stability_onset",
    "escape_probability",
    "EscapeProbability",
    "adam_effective_step",
    "discretization_divergence",
    "sweep",
    "load_sweep",
    "SweepResult",
    "SweepConfigError",
]


def __getattr__(name):
    """``fd.plots`` imports matplotlib on first use, not with ``import fastdecay``."""
    if name == "plots":
        import importlib

        return importlib.import_module(".plots", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
