"""Plain-NumPy oracle of the exact expected dynamics (see fastdecay.reference).

One problem at a time, one step at a time: the 2x2 matrix A_t and vector c_t of
each update rule written out by hand from the rule as torch documents it, then
m <- A m and S <- A S A^T + q c c^T per coordinate. ``fastdecay.expected_loss``
must agree with this.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from .._typing import ArrayLike, FloatArray
from ._simulate import RateFn, _value

__all__ = ["expected_moments"]


def _step_matrix(optimizer: str, lam: float, eta: float, wd: float, momentum: float, scale: float
                 ) -> tuple[FloatArray, FloatArray]:
    """(A, c) of one coordinate: (w', b') = A (w, b) + c * xi for the gradient lam*w + xi.

    ``scale`` multiplies the old buffer (0 at the first step with momentum, where torch's
    buffer starts from the gradient; the on_drop factor where the rate drops). A momentum
    rule's step at momentum 0 is a plain step that leaves the buffer as it is.
    """
    h = lam + wd                      # coupled weight decay: the gradient gains wd*w
    mu = momentum * scale
    if optimizer == "gd":
        return np.array([[1.0 - eta * h, 0.0], [0.0, 0.0]]), np.array([-eta, 0.0])
    if momentum == 0.0:               # torch's SGD at momentum 0: a plain step, the buffer left as it is
        return np.array([[1.0 - eta * h, 0.0], [0.0, 1.0]]), np.array([-eta, 0.0])
    if optimizer == "momentum":       # b' = mu b + g,  w' = w - eta b'
        return np.array([[1.0 - eta * h, -eta * mu], [h, mu]]), np.array([-eta, 1.0])
    if optimizer == "momentum_lr_in_buffer":   # b' = mu b + eta g,  w' = w - b'
        return np.array([[1.0 - eta * h, -mu], [eta * h, mu]]), np.array([-eta, eta])
    if optimizer == "nesterov":       # b' = mu b + g,  w' = w - eta (g + momentum b')
        return (np.array([[1.0 - eta * (1.0 + momentum) * h, -eta * momentum * mu], [h, mu]]),
                np.array([-eta * (1.0 + momentum), 1.0]))
    raise ValueError(f"optimizer must be gd, momentum, momentum_lr_in_buffer or nesterov, got {optimizer!r}")


def expected_moments(curvature: ArrayLike, lr: RateFn, *, steps: int, optimizer: str = "gd", momentum: float = 0.9,
                     noise: float = 0.0, batch_size: int = 1, w0: ArrayLike = 1.0, w0_var: ArrayLike = 0.0,
                     weight_decay: RateFn = 0.0, on_drop: str = "keep", drops: Iterable[int] = ()
                     ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Exact moments of noisy SGD on f(w) = 1/2 sum_k curvature_k w_k^2, gradient noise
    ``noise``/sqrt(``batch_size``) per coordinate.

    ``lr``, ``weight_decay`` and ``momentum`` are floats or callables of the step; ``drops`` lists
    the steps where the rate falls (where ``on_drop`` acts on the buffer). Returns
    ``(loss, mean, second_moment)``: the expected loss E[1/2 sum lam w^2] at steps
    0 .. steps (shape (steps + 1,)), and E w, E w^2 per coordinate at the end.

    >>> loss, mean, second = expected_moments([1.0], 0.5, steps=1, noise=1.0, w0=2.0)
    >>> loss.tolist(), mean.tolist(), second.tolist()
    ([2.0, 0.625], [1.0], [1.25])
    """
    lam = np.asarray(curvature, dtype=np.float64).reshape(-1)
    d = lam.shape[0]
    q = np.broadcast_to(np.asarray(noise, dtype=np.float64) ** 2 / batch_size, (d,))
    m0 = np.broadcast_to(np.asarray(w0, dtype=np.float64), (d,))
    m = np.zeros((d, 2))
    m[:, 0] = m0
    S = np.zeros((d, 2, 2))
    S[:, 0, 0] = m0**2 + np.broadcast_to(np.asarray(w0_var, dtype=np.float64), (d,))
    drops = set(int(t) for t in drops)
    losses = [0.5 * np.sum(lam * S[:, 0, 0])]
    started = False  # whether the momentum buffer exists (made at the first step with momentum, as torch)
    for t in range(steps):
        eta = _value(lr, t)
        wd = _value(weight_decay, t)
        mu = _value(momentum, t)
        scale = 1.0 if started else 0.0
        if t in drops and t > 0 and started:
            if on_drop == "reset":
                scale = 0.0
            elif on_drop == "rescale":
                scale = eta / _value(lr, t - 1)
        started = started or mu != 0.0
        for k in range(d):
            A, c = _step_matrix(optimizer, lam[k], eta, wd, mu, scale)
            m[k] = A @ m[k]
            S[k] = A @ S[k] @ A.T + q[k] * np.outer(c, c)
        losses.append(0.5 * np.sum(lam * S[:, 0, 0]))
    return np.array(losses), m[:, 0].copy(), S[:, 0, 0].copy()
