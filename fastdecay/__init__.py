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
]
