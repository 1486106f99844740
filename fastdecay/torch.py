"""torch.optim adapters: SGD and AdamW stepping through the fused kernels, and an LR scheduler.

Imported on demand (``import fastdecay.torch``); ``import fastdecay`` never imports torch.

``SGD`` and ``AdamW`` are ``torch.optim.Optimizer`` subclasses with torch's
argument names and param groups. ``lr`` and ``weight_decay`` may be fastdecay
schedules (per group), read inside the kernel at each parameter's step count,
so the weight decay can follow any schedule — torch cannot schedule it
(pytorch/pytorch#22343). Each ``step()`` is one fused call per param group
(per dtype): CPU tensors run the Numba kernels, CUDA tensors the GPU kernels.

State uses torch's keys: ``step`` (a 0-d float tensor, as torch keeps it),
``momentum_buffer``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``, so
``state_dict()`` / ``load_state_dict()`` resume bit-identically. A state dict
whose groups hold schedules pickles them: ``torch.load(..., weights_only=False)``
reads it back (``weights_only=True`` refuses unknown classes).

``GradScaler`` works as with torch's fused optimizers: the scaler hands the
step ``grad_scale`` and ``found_inf`` and a step with an inf/NaN gradient
changes nothing, not even the step count.

>>> import torch, fastdecay as fd
>>> from fastdecay.torch import AdamW
>>> model = torch.nn.Linear(3, 1)
>>> opt = AdamW(model.parameters(), lr=fd.cosine(1e-2, 100),
...             weight_decay=fd.linear(0.0, 0.1, 100))
>>> model(torch.ones(2, 3)).sum().backward()
>>> opt.step()
>>> int(opt.state[model.weight]["step"])
1
"""

import abc

import torch
from torch.optim.lr_scheduler import LRScheduler as _TorchLRScheduler

from .schedules import Schedule
from .updates import _adam_options, _schedule_table, _sgd_options, adamw_step, sgd_step

__all__ = ["SGD", "AdamW", "LRScheduler"]


def _scalar_dtype():
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _check_hyper(name, value):
    """lr / weight_decay: a non-negative float or a scalar schedule (validated now, not at step 1)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a number or a scalar schedule, got a tensor of shape {tuple(value.shape)}")
        value = float(value)
    _schedule_table(name, value)
    return value


def _no_differentiable(differentiable, capturable=False):
    if differentiable:
        raise ValueError("differentiable=True is not supported by the fused fastdecay optimizers")
    if capturable:
        raise ValueError("capturable=True is not supported; the fused kernels read the step count per call")


class _Fused(torch.optim.Optimizer, metaclass=abc.ABCMeta):
    """What SGD and AdamW share: hyperparameter checks, state creation, the grouped step.

    A subclass names its state buffers (``_buffer_names``) and makes the fused
    call for one group's parameters at one step count (``_launch``).
    """

    _step_supports_amp_scaling = True  # GradScaler passes grad_scale / found_inf (as for fused=True)

    def add_param_group(self, param_group):
        for key in ("lr", "weight_decay"):
            if key in param_group:
                param_group[key] = _check_hyper(key, param_group[key])
        super().add_param_group(param_group)

    @abc.abstractmethod
    def _buffer_names(self, group):
        """The state buffers (torch's keys) a parameter of ``group`` has."""

    def _init_state(self, p, group):
        state = self.state[p]
        state["step"] = torch.zeros((), dtype=_scalar_dtype())
        for name in self._buffer_names(group):
            # zeros as torch makes them; the kernels ignore the content at step 0 anyway
            state[name] = torch.zeros_like(p, memory_format=torch.contiguous_format)

    @abc.abstractmethod
    def _launch(self, group, params, grads, states, step, grad_scale):
        """One fused call over ``params`` of ``group`` that share the step count ``step``."""

    def _amp(self):
        grad_scale = getattr(self, "grad_scale", None)
        found_inf = getattr(self, "found_inf", None)
        if found_inf is not None and float(found_inf) != 0.0:
            return grad_scale, True
        return grad_scale, False

    @torch.no_grad()
    def step(self, closure=None):
        """One fused update of every parameter with a gradient; returns the closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        grad_scale, skip = self._amp()
        if skip:
            return loss
        for group in self.param_groups:
            by_step = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                state = self.state[p]
                if len(state) == 0:
                    self._init_state(p, group)
                grad = p.grad if p.grad.is_contiguous() else p.grad.contiguous()
                by_step.setdefault(int(state["step"]), []).append((p, grad, state))
            for t, items in by_step.items():
                params = [p for p, _, _ in items]
                grads = [g for _, g, _ in items]
                states = [s for _, _, s in items]
                self._launch(group, params, grads, states, t, grad_scale)
                for s in states:
                    s["step"] += 1
        return loss


class SGD(_Fused):
    """torch ``SGD`` through the fused kernel (``fastdecay.sgd_step``); ``lr`` and
    ``weight_decay`` may be schedules.

    Arguments as ``torch.optim.SGD(params, lr, momentum, dampening, weight_decay,
    nesterov, *, maximize)``, plus ``decoupled`` (shrink w by 1 - lr*wd instead of
    L2), ``lr_in_buffer`` and ``on_drop`` (see ``fastdecay.sgd_step``).
    ``foreach`` and ``fused`` are accepted for drop-in use and ignored (this is
    always fused). A schedule's step is the number of updates the parameter has
    had (``state["step"]``).

    >>> import torch, fastdecay as fd
    >>> w = torch.nn.Parameter(torch.ones(2))
    >>> opt = SGD([w], lr=fd.step(0.1, 0.5, 1), momentum=0.9)
    >>> for _ in range(2):
    ...     w.grad = torch.ones(2)
    ...     opt.step()
    >>> w.detach()
    tensor([0.8050, 0.8050])
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, decoupled=False, lr_in_buffer=False, on_drop="keep", foreach=None,
                 differentiable=False, fused=None):
        _no_differentiable(differentiable)
        lr = _check_hyper("lr", lr)
        weight_decay = _check_hyper("weight_decay", weight_decay)
        _sgd_options(momentum, dampening, nesterov, on_drop)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, decoupled=decoupled, lr_in_buffer=lr_in_buffer,
                        on_drop=on_drop, foreach=foreach, differentiable=False, fused=fused)
        super().__init__(params, defaults)

    def _buffer_names(self, group):
        return ("momentum_buffer",) if group["momentum"] != 0 else ()

    def _launch(self, group, params, grads, states, step, grad_scale):
        momentum = group["momentum"]
        sgd_step(
            params, grads, step=step, lr=group["lr"], momentum=momentum,
            momentum_buffer=[s["momentum_buffer"] for s in states] if momentum != 0 else None,
            dampening=group["dampening"], nesterov=group["nesterov"], weight_decay=group["weight_decay"],
            decoupled=group["decoupled"], maximize=group["maximize"], lr_in_buffer=group["lr_in_buffer"],
            on_drop=group["on_drop"], grad_scale=grad_scale,
        )


class AdamW(_Fused):
    """torch ``AdamW`` (``decoupled=False``: torch ``Adam``) through the fused kernel
    (``fastdecay.adamw_step``); ``lr`` and ``weight_decay`` may be schedules.

    Arguments as ``torch.optim.AdamW(params, lr, betas, eps, weight_decay, amsgrad,
    *, maximize)``; ``foreach`` and ``fused`` are accepted and ignored.
    ``weight_decay=fd.constant_shrinkage(lr, wd)`` keeps lr*wd constant.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, decoupled=True, foreach=None, capturable=False, differentiable=False, fused=None):
        _no_differentiable(differentiable, capturable)
        lr = _check_hyper("lr", lr)
        weight_decay = _check_hyper("weight_decay", weight_decay)
        beta1, beta2, _ = _adam_options(betas, eps)
        betas = (beta1, beta2)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                        decoupled=decoupled, foreach=foreach, capturable=False, differentiable=False, fused=fused)
        super().__init__(params, defaults)

    def _buffer_names(self, group):
        return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if group["amsgrad"] else ("exp_avg", "exp_avg_sq")

    def _launch(self, group, params, grads, states, step, grad_scale):
        amsgrad = group["amsgrad"]
        adamw_step(
            params, grads, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], step=step,
            lr=group["lr"], betas=group["betas"], eps=group["eps"], weight_decay=group["weight_decay"],
            amsgrad=amsgrad, max_exp_avg_sq=[s["max_exp_avg_sq"] for s in states] if amsgrad else None,
            maximize=group["maximize"], decoupled=group["decoupled"], grad_scale=grad_scale,
        )


class LRScheduler(_TorchLRScheduler):
    """A torch LR scheduler that sets every group's lr to ``schedule(last_epoch)``.

    For torch's own optimizers (and any ``torch.optim.Optimizer``): the rate is
    the closed form at the scheduler's step count, so resuming from
    ``state_dict()`` at any step, or constructing with ``last_epoch=k``, gives
    exactly the rate a run that never stopped has. ``schedule`` is one scalar
    schedule, or a list of them, one per param group.

    >>> import torch, fastdecay as fd
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=1.0)
    >>> sched = LRScheduler(opt, fd.step(0.1, 0.5, 2))
    >>> for _ in range(3):
    ...     opt.step()
    ...     sched.step()
    >>> sched.get_last_lr()
    [0.05]
    """

    def __init__(self, optimizer, schedule, last_epoch=-1):
        groups = len(optimizer.param_groups)
        schedules = list(schedule) if isinstance(schedule, (list, tuple)) else [schedule] * groups
        if len(schedules) != groups:
            raise ValueError(f"schedule must be one schedule or one per param group ({groups}), got {len(schedules)}")
        for k, s in enumerate(schedules):
            if not isinstance(s, Schedule):
                raise TypeError(f"schedule[{k}] must be a fastdecay Schedule, got {s!r}")
            if s.batch_shape != ():
                raise ValueError(f"schedule[{k}] must be a scalar schedule, got batch_shape {s.batch_shape}")
        self.schedules = schedules
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [s(max(self.last_epoch, 0)) for s in self.schedules]

    def _get_closed_form_lr(self):
        return self.get_lr()
