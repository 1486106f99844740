"""Fused optimizer updates with a scheduled learning rate and weight decay.

``sgd_step``, ``adamw_step`` and ``lion_step`` update parameters and optimizer
state in place, in one pass over memory, with ``lr``, ``weight_decay`` and the
momentum (Adam's and Lion's beta1) read from schedules at ``step`` (the number
of updates already applied) inside the kernel. The rules themselves live once,
in ``fastdecay/_cpu/rules.py`` (mirrored in CUDA); every call is checked
completely before anything is written (``fastdecay._fused``).

>>> import numpy as np, fastdecay as fd
>>> w, g = np.array([1.0, -2.0]), np.array([0.5, 0.5])
>>> fd.sgd_step(w, g, step=0, lr=0.1)
>>> w
array([ 0.95, -2.05])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

from . import _fused as F
from ._typing import Arrays, DeviceArray, Real
from .schedules import Rate, Schedule

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["sgd_step", "adamw_step", "lion_step"]

# ``step``: the updates already applied, an int or a 0-d integer array on the parameters' device
Step = Union[int, DeviceArray]
# ``grad_scale`` / ``found_inf``: a number or a 0-d (one-element) array on the parameters' device
Scalar = Union[Real, DeviceArray]
# ``state_dtype``: None, "float32" or "bfloat16" (or the NumPy / torch dtype of that name)
StateDtype = Union[str, "np.dtype", "torch.dtype", None]


def sgd_step(param: Arrays, grad: Arrays, *, step: Step, lr: Rate, momentum: Rate = 0.0,
             momentum_buffer: Arrays | None = None, dampening: float = 0.0, nesterov: bool = False,
             weight_decay: Rate = 0.0, decoupled: bool = False, maximize: bool = False, lr_in_buffer: bool = False,
             on_drop: str = "keep", grad_scale: Scalar | None = None, found_inf: Scalar | None = None,
             state_dtype: StateDtype = None, compensated: bool = False, compensation_buffer: Arrays | None = None
             ) -> None:
    """One fused SGD / heavy-ball / Nesterov step in place, at step ``step`` of the schedules.

    With g the gradient (negated under ``maximize``, divided by ``grad_scale``),
    eta = lr(step) and lambda = weight_decay(step)::

        g   <- g + lambda*w                              (decoupled=False: torch's L2; none when lambda = 0)
        buf <- g  at step 0;  momentum*buf + (1 - dampening)*g  later
        d   <- g + momentum*buf (nesterov) | buf (momentum > 0) | g
        w   <- w*(1 - eta*lambda)                        (decoupled=True)
        w   <- w - eta*d

    torch ``torch.optim.SGD(lr, momentum, dampening, weight_decay, nesterov,
    maximize)`` with defaults (its lr and weight decay cannot be scheduled per
    step in the kernel, nor decoupled); optax ``sgd`` + ``add_decayed_weights``.

    ``lr_in_buffer=True``: buf <- momentum*buf + (1 - dampening)*eta*g (eta*g at
    step 0), w <- w - d with d = buf (or eta*g + momentum*buf with nesterov), so
    a learning-rate drop slows the buffer's old content too. ``on_drop``
    ("keep", "reset", "rescale") acts on the buffer where the lr schedule drops
    discontinuously at ``step``: zero it, or multiply it by eta_t/eta_{t-1},
    before its update. ``momentum`` may be a scalar schedule too, read at ``step``
    in the kernel like ``lr`` (``fd.one_cycle(...).momentum`` is torch's
    ``OneCycleLR(cycle_momentum=True)``); where it is 0 the buffer is left alone,
    and "step 0" above is the first step at which it is not 0 (where torch's SGD
    makes the buffer: a schedule that ramps up from 0 starts it at step 1).

    ``param``, ``grad`` and ``momentum_buffer`` are arrays of one shape and
    device, or lists of such (one fused call). Parameters (and gradients) are
    float32, float64, float16 or bfloat16; 16-bit ones are computed in float32
    with the momentum buffer in float32 (``state_dtype="bfloat16"`` stores it in
    bfloat16). ``compensated=True`` adds a Kahan ``compensation_buffer`` (one per
    parameter, its dtype, zero at the start) that keeps what rounding the
    parameter drops: a 16-bit one's (float32 and float64 parameters are updated
    in their own precision, which leaves the buffer at zero except where a step
    changes a weight's sign or its size by more than a factor of two). Any dense
    layout works (C, Fortran, channels_last) when a
    parameter's arrays share it; other layouts are copied. Arrays that are
    written must not share memory with other arrays (a gradient may be its own
    parameter). A nonzero ``found_inf`` makes the call change nothing. Returns
    None. Repeated calls on the same arrays reuse the checks of the first.

    >>> import numpy as np, fastdecay as fd
    >>> w, buf = np.ones(3), np.zeros(3)
    >>> for t in range(2):
    ...     fd.sgd_step(w, np.full(3, 1.0), step=t, lr=fd.step(0.1, 0.5, 1),
    ...                 momentum=0.9, momentum_buffer=buf)
    >>> w.round(4), buf.round(4)
    (array([0.805, 0.805, 0.805]), array([1.9, 1.9, 1.9]))
    """
    F.checked("sgd", param, grad, dict(momentum_buffer=momentum_buffer), step=step, lr=lr, weight_decay=weight_decay,
              grad_scale=grad_scale, found_inf=found_inf, state_dtype=state_dtype, compensated=compensated,
              compensation_buffer=compensation_buffer, momentum=momentum, dampening=dampening, nesterov=nesterov,
              decoupled=decoupled, maximize=maximize, lr_in_buffer=lr_in_buffer, on_drop=on_drop)()
    return None


def adamw_step(param: Arrays, grad: Arrays, exp_avg: Arrays, exp_avg_sq: Arrays, *, step: Step, lr: Rate,
               betas: tuple[float | Schedule, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: Rate = 1e-2,
               amsgrad: bool = False, max_exp_avg_sq: Arrays | None = None, maximize: bool = False,
               decoupled: bool = True, grad_scale: Scalar | None = None, found_inf: Scalar | None = None,
               state_dtype: StateDtype = None, compensated: bool = False, compensation_buffer: Arrays | None = None
               ) -> None:
    """One fused Adam / AdamW / AMSGrad step in place, at step ``step`` of the schedules.

    With g the gradient (negated under ``maximize``, divided by ``grad_scale``),
    eta = lr(step), lambda = weight_decay(step) and n = step + 1::

        w <- w*(1 - eta*lambda)        decoupled=True (AdamW), with the old weights
        g <- g + lambda*w              decoupled=False (Adam's L2; none when lambda = 0, as torch)
        m <- beta1*m + (1 - beta1)*g;  v <- beta2*v + (1 - beta2)*g^2   (zero state at step 0)
        vmax <- max(vmax, v)           amsgrad
        w <- w - eta/(1 - beta1^n) * m / (sqrt(v or vmax)/sqrt(1 - beta2^n) + eps)

    Matches torch ``torch.optim.AdamW`` (``decoupled=False``: ``torch.optim.Adam``),
    with the same argument names, and optax ``adamw`` (``eps_root=0``, weight decay
    applied to the old weights, as here). Keras ``AdamW`` differs: it adds eps to
    sqrt(v) *before* the bias correction, so its effective eps is
    eps/sqrt(1 - beta2^n), larger in early steps. With eps = 1e-3 the weights after
    50 steps on a quadratic differ from these by about 1 % (relative); with the
    default eps = 1e-8 by about 1e-7. ``betas[0]`` may be a scalar schedule, read at
    ``step`` in the kernel (the bias correction uses the current beta1, as torch does
    when a scheduler cycles it); its value at each call's step must be in [0, 1).
    The state's content is ignored at step 0 (torch creates it then).

    Parameters (and gradients) are float32, float64, float16 or bfloat16; 16-bit
    ones are computed in float32 with the moments stored in float32 by default,
    ``state_dtype="bfloat16"`` stores them in bfloat16 (torch's fused AdamW on
    16-bit parameters keeps them in the parameter dtype). ``compensated=True``
    adds a Kahan ``compensation_buffer`` (one per parameter, in its dtype, zero at
    the start) so that updates too small for a bfloat16 weight accumulate
    instead of vanishing (optimi, torchdistx ``AnyPrecisionAdamW``): weight plus
    compensation hold about 16 significant bits, so a run tracks its float32 twin
    closely while the steps stay above ~2**-16 of the weights (measured, AdamW,
    weights in [1, 2), 500 steps of a cosine from lr: off by 0.6 % of how far the
    float32 run moved at lr 1e-4, by 16-30 % at 1e-5 and 1e-6, where the
    uncompensated bfloat16 run does not move at all). Layouts,
    memory sharing and ``found_inf`` as in ``sgd_step``. Returns None.

    >>> import numpy as np, fastdecay as fd
    >>> w, m, v = np.ones(2), np.empty(2), np.empty(2)
    >>> fd.adamw_step(w, np.array([0.5, -0.5]), m, v, step=0, lr=0.1, weight_decay=0.0)
    >>> w.round(6)
    array([0.9, 1.1])
    """
    F.checked("adam", param, grad, dict(exp_avg=exp_avg, exp_avg_sq=exp_avg_sq, max_exp_avg_sq=max_exp_avg_sq),
              step=step, lr=lr, weight_decay=weight_decay, grad_scale=grad_scale, found_inf=found_inf,
              state_dtype=state_dtype, compensated=compensated, compensation_buffer=compensation_buffer, betas=betas,
              eps=eps, decoupled=decoupled, maximize=maximize, amsgrad=amsgrad)()
    return None


def lion_step(param: Arrays, grad: Arrays, exp_avg: Arrays, *, step: Step, lr: Rate,
              betas: tuple[float | Schedule, float] = (0.9, 0.99), weight_decay: Rate = 0.0, maximize: bool = False,
              grad_scale: Scalar | None = None, found_inf: Scalar | None = None, state_dtype: StateDtype = None,
              compensated: bool = False, compensation_buffer: Arrays | None = None) -> None:
    """One fused Lion step in place (Chen et al. 2023, "Symbolic Discovery of Optimization
    Algorithms"), at step ``step`` of the schedules.

    With g the gradient (negated under ``maximize``, divided by ``grad_scale``),
    eta = lr(step), lambda = weight_decay(step) and m the ``exp_avg`` state (zero at
    step 0)::

        w <- w*(1 - eta*lambda)                       (decoupled weight decay)
        w <- w - eta*sign(beta1*m + (1 - beta1)*g)
        m <- beta2*m + (1 - beta2)*g

    The update has the same size eta in every coordinate, so Lion's rates are
    typically 3-10x smaller than AdamW's and its weight decay 3-10x larger.
    lion-pytorch ``Lion(params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0)``
    (the same operations) and optax ``lion`` (which adds ``weight_decay * w`` to
    the signed update instead of shrinking first: equal up to rounding); torch has
    no Lion. ``betas[0]`` may be a scalar schedule, read at ``step`` in the kernel.
    Dtypes, ``state_dtype``, ``compensated``, layouts, memory sharing and
    ``found_inf`` as in ``adamw_step``. Returns None.

    >>> import numpy as np, fastdecay as fd
    >>> w, m = np.ones(3), np.empty(3)
    >>> fd.lion_step(w, np.array([0.5, -0.5, 0.0]), m, step=0, lr=0.1)
    >>> w, m.round(3)
    (array([0.9, 1.1, 1. ]), array([ 0.005, -0.005,  0.   ]))
    """
    F.checked("lion", param, grad, dict(exp_avg=exp_avg), step=step, lr=lr, weight_decay=weight_decay,
              grad_scale=grad_scale, found_inf=found_inf, state_dtype=state_dtype, compensated=compensated,
              compensation_buffer=compensation_buffer, betas=betas, maximize=maximize)()
    return None
