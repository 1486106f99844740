"""The update rules fastdecay knows: one row each, the one list every layer reads.

A **rule** is what ``fd.simulate(optimizer=...)``, ``fd.expected_loss`` and sweep
configs name (``"gd"``, ``"momentum"``, ``"adamw"``, ...): its kernel code, the
state buffers it keeps (under torch's state keys), the ``simulate`` options it
reads, how its weight decay acts, whether it has an exact expected-dynamics
(linear) form, whether ``on_drop`` acts on its buffer, and which fused update
runs it. A **fused update** (``FUSED``) is one in-place public function
(``fd.sgd_step``, ``fd.adamw_step``, ``fd.lion_step``): its kernel name (the
``<kernel>_group`` functions of the CPU and GPU backends, the ``<kernel>_<dtype>``
entry points of ``kernels/updates.cu``), its state buffers with their torch keys
and rows in the launch plans' address table, the ``fastdecay.torch`` classes
over it, and its option checker.

The per-element arithmetic is not here: it is written once per backend
(``fastdecay/_cpu/rules.py``, ``kernels/update_math.cuh``). The integer codes
below are compiled into the CPU kernels (this file is part of their cache stamp,
``fastdecay/_cpu/__init__.py``) and mirrored by the ``RULE_*`` and ``ON_DROP_*``
enums of ``kernels/update_math.cuh`` (``tests/test_cuda_host.py`` compares them).

>>> [r.name for r in RULES if r.linear]
['gd', 'momentum', 'momentum_lr_in_buffer', 'nesterov']
>>> FUSED["adam"].state_keys
('exp_avg', 'exp_avg_sq', 'max_exp_avg_sq')
"""

from dataclasses import dataclass, field

from . import _validate as V

__all__ = ["Rule", "Fused", "RULES", "BY_NAME", "NAMES", "LINEAR", "FUSED", "ON_DROP", "ON_DROP_CODES",
           "sgd_options", "adam_options", "lion_options"]

# ----------------------------------------------------------------------------- kernel codes

# what the momentum buffer does where the lr drops discontinuously (ON_DROP_* in update_math.cuh)
ON_DROP_KEEP, ON_DROP_RESET, ON_DROP_RESCALE = 0, 1, 2
ON_DROP_CODES = {"keep": ON_DROP_KEEP, "reset": ON_DROP_RESET, "rescale": ON_DROP_RESCALE}
ON_DROP = tuple(ON_DROP_CODES)

# the simulation kernels' rule codes (RULE_* in update_math.cuh)
GD, MOMENTUM, LR_IN_BUFFER, NESTEROV, ADAM, ADAMW, LION = range(7)

# rows of the fused updates' address table (fastdecay._update_plan, fastdecay._cpu.updates, kernels/updates.cu)
PARAM_ROW, GRAD_ROW, BUF0_ROW, BUF1_ROW, BUF2_ROW, COMP_ROW = range(6)


# ----------------------------------------------------------------------------- option checkers


def sgd_options(momentum, dampening, nesterov, on_drop):
    """(momentum, dampening, nesterov, on_drop code) of SGD, checked together."""
    nesterov = V.flag("nesterov", nesterov)
    code = ON_DROP_CODES.get(on_drop) if type(on_drop) is str else None
    if code is None:
        V.choice("on_drop", on_drop, ON_DROP)  # raises, naming on_drop
    momentum = V.real("momentum", momentum, low=0.0)
    dampening = V.real("dampening", dampening)
    if nesterov and (momentum <= 0.0 or dampening != 0.0):
        raise ValueError(
            f"nesterov=True needs momentum > 0 and dampening == 0, got momentum={momentum!r}, dampening={dampening!r}"
        )
    return momentum, dampening, nesterov, code


def adam_options(betas, eps):
    """(beta1, beta2, eps) of Adam / AdamW as floats, checked."""
    beta1, beta2 = V.betas(betas)
    return beta1, beta2, V.real("eps", eps, low=0.0)


def lion_options(betas):
    """(beta1, beta2) of Lion as floats, each in [0, 1), checked."""
    return V.betas(betas)


# ----------------------------------------------------------------------------- the tables


@dataclass(frozen=True)
class Fused:
    """One fused in-place update: ``fd.<function>``, kernels ``<kernel>_*``."""

    kernel: str  # "sgd": _cpu/_gpu updates.sgd_group, kernels/updates.cu sgd_<dtype>
    function: str  # the public function, fastdecay.<function>
    state: tuple  # ((torch state key, address-table row), ...): every buffer the update may use
    torch_classes: tuple  # the fastdecay.torch optimizers that step through it
    check: object  # option checker (numbers in, checked numbers out)
    example: dict = field(default_factory=dict)  # options under which it uses every buffer but the optional ones
    optional: tuple = ()  # state keys used only under an option (amsgrad's max_exp_avg_sq)

    @property
    def state_keys(self):
        return tuple(key for key, _ in self.state)


FUSED = {
    "sgd": Fused("sgd", "sgd_step", (("momentum_buffer", BUF0_ROW),), ("SGD",), sgd_options,
                 example=dict(momentum=0.9)),
    "adam": Fused("adam", "adamw_step", (("exp_avg", BUF0_ROW), ("exp_avg_sq", BUF1_ROW),
                                         ("max_exp_avg_sq", BUF2_ROW)), ("Adam", "AdamW"), adam_options,
                  optional=("max_exp_avg_sq",)),
    "lion": Fused("lion", "lion_step", (("exp_avg", BUF0_ROW),), ("Lion",), lion_options),
}


@dataclass(frozen=True)
class Rule:
    """One update rule as the simulations, expected dynamics and sweeps name it."""

    name: str  # fd.simulate(optimizer=name), sweep configs, fd.expected_loss
    code: int  # the simulation kernels' code
    fused: str  # key of FUSED: the fused update that runs this rule
    buffers: tuple  # the simulation's state buffers (torch state keys), at most two
    options: tuple  # the fd.simulate keywords it reads
    decoupled: bool  # weight decay shrinks the weights (else it is added to the gradient)
    linear: bool  # exact expected dynamics (fd.expected_loss): linear in (w, buffer, gradient)
    on_drop: bool  # on_drop acts on its momentum buffer
    bias_correction: bool  # Adam's per-step bias corrections (the GPU simulation's scratch)


RULES = (
    Rule("gd", GD, "sgd", (), (), False, True, False, False),
    Rule("momentum", MOMENTUM, "sgd", ("momentum_buffer",), ("momentum",), False, True, True, False),
    Rule("momentum_lr_in_buffer", LR_IN_BUFFER, "sgd", ("momentum_buffer",), ("momentum",), False, True, True,
         False),
    Rule("nesterov", NESTEROV, "sgd", ("momentum_buffer",), ("momentum",), False, True, True, False),
    Rule("adam", ADAM, "adam", ("exp_avg", "exp_avg_sq"), ("betas", "eps"), False, False, False, True),
    Rule("adamw", ADAMW, "adam", ("exp_avg", "exp_avg_sq"), ("betas", "eps"), True, False, False, True),
    Rule("lion", LION, "lion", ("exp_avg",), ("betas",), True, False, False, False),
)

BY_NAME = {r.name: r for r in RULES}
NAMES = tuple(BY_NAME)
LINEAR = tuple(r.name for r in RULES if r.linear)
CODES = {r.name: r.code for r in RULES}
