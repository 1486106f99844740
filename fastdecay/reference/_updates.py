"""Plain-loop NumPy oracles of the fused updates (``fastdecay.sgd_step``, ``adamw_step``, ``lion_step``).

Each function runs a whole trajectory, one step at a time, in float64, with the
textbook formulas of torch's documentation, and the parts torch lacks spelled
out: a weight decay that changes per step, the lr-in-buffer momentum form, and
what the buffer does at a learning-rate drop. Rates come in as plain sequences
(``lrs[t]``, ``weight_decays[t]``) and the drop steps as a set, so nothing here
reads a schedule table or calls a kernel.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np

from .._typing import ArrayLike, FloatArray

# a gradient as a function of the weights and the step
GradFn = Callable[[FloatArray, int], ArrayLike]

__all__ = ["sgd_trajectory", "adamw_trajectory", "lion_trajectory"]


def _per_step(name: str, values: ArrayLike, steps: int) -> FloatArray:
    values = np.broadcast_to(np.asarray(values, dtype=np.float64), (steps,))
    if np.any(~np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"{name} must be finite and non-negative, got {values!r}")
    return values


def sgd_trajectory(w0: ArrayLike, grad_fn: GradFn, lrs: Sequence[float] | np.ndarray, *, weight_decays: ArrayLike = 0.0,
                   momentum: float = 0.0, dampening: float = 0.0, nesterov: bool = False, decoupled: bool = False,
                   maximize: bool = False, lr_in_buffer: bool = False, on_drop: str = "keep", drops: Iterable[int] = ()
                   ) -> FloatArray:
    """SGD with (heavy-ball or Nesterov) momentum for ``len(lrs)`` steps from ``w0``.

    ``grad_fn(w, t)`` gives the gradient at step t; ``lrs[t]`` and
    ``weight_decays[t]`` (or one number) are the rates; ``drops`` the steps
    where the learning rate falls discontinuously. At step t, with
    eta = lrs[t] and lam = weight_decays[t]::

        g = -grad if maximize else grad;  g += lam * w unless decoupled
        at a drop:  buf = 0 (on_drop "reset") or buf *= lrs[t] / lrs[t-1] ("rescale")
        heavy ball: buf = g at t = 0, else momentum * buf + (1 - dampening) * g
        lr_in_buffer: buf = eta * g at t = 0, else momentum * buf + (1 - dampening) * eta * g
        d = g + momentum * buf (nesterov; eta * g + momentum * buf in the buffer form), else buf
        w = w * (1 - eta * lam) if decoupled;  w = w - eta * d  (w - d in the buffer form)

    Returns the weights after every step, shape ``(len(lrs) + 1,) + w0.shape``.

    >>> sgd_trajectory(np.array([1.0]), lambda w, t: w, [0.5, 0.5])[:, 0].tolist()
    [1.0, 0.5, 0.25]
    """
    steps = len(lrs)
    lrs = _per_step("lrs", lrs, steps)
    wds = _per_step("weight_decays", weight_decays, steps)
    drops = {int(t) for t in drops}
    w = np.array(w0, dtype=np.float64)
    buf = None
    out = [w.copy()]
    in_buffer = lr_in_buffer and momentum != 0
    for t in range(steps):
        eta, lam = lrs[t], wds[t]
        g = np.array(grad_fn(w.copy(), t), dtype=np.float64)
        if maximize:
            g = -g
        if not decoupled and lam != 0:  # torch adds no term for a zero weight decay
            g = g + lam * w
        if momentum != 0:
            if buf is not None and t in drops and t > 0:
                if on_drop == "reset":
                    buf = np.zeros_like(buf)
                elif on_drop == "rescale":
                    buf = buf * (lrs[t] / lrs[t - 1])
            step_grad = eta * g if in_buffer else g
            if buf is None:
                buf = step_grad.copy()
            else:
                buf = momentum * buf + (1 - dampening) * step_grad
            d = step_grad + momentum * buf if nesterov else buf
        else:
            d = g
        if decoupled:
            w = w * (1 - eta * lam)
        w = w - d if in_buffer else w - eta * d
        out.append(w.copy())
    return np.array(out)


def adamw_trajectory(w0: ArrayLike, grad_fn: GradFn, lrs: Sequence[float] | np.ndarray, *, weight_decays: ArrayLike = 1e-2,
                     betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, amsgrad: bool = False,
                     maximize: bool = False, decoupled: bool = True) -> FloatArray:
    """Adam / AdamW / AMSGrad for ``len(lrs)`` steps from ``w0`` (zero moments at the start).

    At step t (n = t + 1), eta = lrs[t], lam = weight_decays[t]::

        g = -grad if maximize else grad
        w = w * (1 - eta * lam) if decoupled else (g += lam * w)
        m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g**2
        vmax = max(vmax, v) (amsgrad)
        w = w - eta / (1 - beta1**n) * m / (sqrt(v or vmax) / sqrt(1 - beta2**n) + eps)

    Returns the weights after every step, shape ``(len(lrs) + 1,) + w0.shape``.

    >>> w = adamw_trajectory(np.array([1.0]), lambda w, t: w, [0.1], weight_decays=0.0)
    >>> w[:, 0].round(6).tolist()
    [1.0, 0.9]
    """
    steps = len(lrs)
    lrs = _per_step("lrs", lrs, steps)
    wds = _per_step("weight_decays", weight_decays, steps)
    beta1, beta2 = betas
    w = np.array(w0, dtype=np.float64)
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    vmax = np.zeros_like(w)
    out = [w.copy()]
    for t in range(steps):
        eta, lam, n = lrs[t], wds[t], t + 1
        g = np.array(grad_fn(w.copy(), t), dtype=np.float64)
        if maximize:
            g = -g
        if decoupled:
            w = w * (1 - eta * lam)
        elif lam != 0:
            g = g + lam * w
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        vmax = np.maximum(vmax, v)
        second = vmax if amsgrad else v
        denom = np.sqrt(second) / np.sqrt(1 - beta2**n) + eps
        w = w - eta / (1 - beta1**n) * m / denom
        out.append(w.copy())
    return np.array(out)


def lion_trajectory(w0: ArrayLike, grad_fn: GradFn, lrs: Sequence[float] | np.ndarray, *,
                    weight_decays: ArrayLike = 0.0, betas: tuple[float, float] = (0.9, 0.99),
                    maximize: bool = False) -> FloatArray:
    """Lion (Chen et al. 2023) for ``len(lrs)`` steps from ``w0`` (zero moment at the start).

    At step t, eta = lrs[t], lam = weight_decays[t]::

        g = -grad if maximize else grad
        w = w * (1 - eta * lam)
        w = w - eta * sign(beta1 * m + (1 - beta1) * g)
        m = beta2 * m + (1 - beta2) * g

    Returns the weights after every step, shape ``(len(lrs) + 1,) + w0.shape``.

    >>> lion_trajectory(np.array([1.0, -1.0]), lambda w, t: w, [0.1, 0.1])[-1].tolist()
    [0.8, -0.8]
    """
    steps = len(lrs)
    lrs = _per_step("lrs", lrs, steps)
    wds = _per_step("weight_decays", weight_decays, steps)
    beta1, beta2 = betas
    w = np.array(w0, dtype=np.float64)
    m = np.zeros_like(w)
    out = [w.copy()]
    for t in range(steps):
        eta, lam = lrs[t], wds[t]
        g = np.array(grad_fn(w.copy(), t), dtype=np.float64)
        if maximize:
            g = -g
        w = w * (1 - eta * lam)
        w = w - eta * np.sign(beta1 * m + (1 - beta1) * g)
        m = beta2 * m + (1 - beta2) * g
        out.append(w.copy())
    return np.array(out)
