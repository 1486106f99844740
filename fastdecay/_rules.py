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

import math
from dataclasses import dataclass, field

import numpy as np

from . import _layout as L
from . import _validate as V

__all__ = ["Rule", "Fused", "Checked", "RULES", "BY_NAME", "NAMES", "LINEAR", "FUSED", "ON_DROP", "ON_DROP_CODES",
           "OPTION_TYPES", "NUMBER_SLOTS", "FLAG_SLOTS", "sgd_options", "adam_options", "lion_options",
           "sgd_momentum", "adam_betas", "lion_betas", "uses_momentum"]

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


def sgd_options(momentum, dampening, nesterov, on_drop, *, scheduled=False):
    """(momentum, dampening, nesterov, on_drop code) of SGD, checked together. A ``scheduled``
    momentum (its value at step 0 given) may be 0 with nesterov: the schedule may ramp up from
    0, and Nesterov's step at a momentum of 0 is the plain one, g + 0 * buf."""
    nesterov = V.flag("nesterov", nesterov)
    code = ON_DROP_CODES.get(on_drop) if type(on_drop) is str else None
    if code is None:
        V.choice("on_drop", on_drop, ON_DROP)  # raises, naming on_drop
    momentum = V.real("momentum", momentum, low=0.0)
    dampening = V.real("dampening", dampening)
    if nesterov and dampening != 0.0:
        raise ValueError(f"nesterov=True needs dampening == 0, got dampening={dampening!r}")
    if nesterov and momentum <= 0.0 and not scheduled:
        raise ValueError(f"nesterov=True needs momentum > 0, got momentum={momentum!r}")
    return momentum, dampening, nesterov, code


def adam_options(betas, eps):
    """(beta1, beta2, eps) of Adam / AdamW as floats, checked."""
    beta1, beta2 = V.betas(betas)
    return beta1, beta2, V.real("eps", eps, low=0.0)


def lion_options(betas):
    """(beta1, beta2) of Lion as floats, each in [0, 1), checked."""
    return V.betas(betas)


def sgd_momentum(momentum, dampening, nesterov, on_drop):
    """(momentum table, dampening, nesterov, on_drop code) of SGD: ``momentum`` a number >= 0
    (nesterov needs it > 0) or a scalar schedule (checked as a number at its step-0 value,
    which may be 0 with nesterov: a ramp from 0)."""
    if isinstance(momentum, V.ScheduleBase):
        table = V.rate_table("momentum", momentum)
        # (its value at step 0 as the kernels read it: ``lr0()`` would tabulate, ~50 us a call)
        _, dampening, nesterov, code = sgd_options(scheduled_value(table, 0), dampening, nesterov, on_drop,
                                                   scheduled=True)
        return table, dampening, nesterov, code
    momentum, dampening, nesterov, code = sgd_options(momentum, dampening, nesterov, on_drop)
    return V.constant_table(momentum), dampening, nesterov, code


def _beta1_table(betas, check):
    """(beta1 table, rest of ``check``'s result): ``betas[0]`` a number in [0, 1) or a scalar
    schedule (its step-0 value checked as the number would be; ``Checked.at_step`` checks
    its value at each call's step)."""
    if _scheduled_beta1(betas):
        table = V.rate_table("betas[0]", betas[0])
        return (table, *check((scheduled_value(table, 0), betas[1]))[1:])  # (step 0's value: see sgd_momentum)
    checked = check(betas)
    return (V.constant_table(checked[0]), *checked[1:])


def _scheduled_beta1(betas):
    return isinstance(betas, (tuple, list)) and len(betas) == 2 and isinstance(betas[0], V.ScheduleBase)


def scheduled_value(table, step):
    """The scheduled coefficient (row 0 of ``table``) at a host ``step``, as the kernels read it."""
    from ._cpu.schedule_tables import rate_at  # the kernels' own evaluation, compiled on first use

    return rate_at(table, float(step))


def _beta1_at_step(table, step, check):
    """Check a ``betas[0]`` schedule at the call's ``step`` with ``check(value)``: a schedule
    in [0, 1) at step 0 may pass 1 later (a rising ramp), refused there as the number would
    be, naming the step. A step on the device (read in the kernel) is not known here."""
    if not isinstance(step, int):
        return
    try:
        check(scheduled_value(table, step))
    except ValueError as err:
        raise ValueError(f"{err} (the betas[0] schedule's value at step {step})") from None


_MOMENTUM_STARTS: dict = {}  # momentum table bytes -> (its first step that is not 0, or None; steps looked at)
_DEVICE_SCAN = 1 << 20


def momentum_start(table, step):
    """The step at which SGD's momentum buffer starts, its content ignored there: the first
    step whose momentum (row 0 of ``table``) is not 0, where torch's SGD creates the buffer
    (0 for a momentum that is not 0 at step 0). Looked for up to the call's ``step`` (an
    int: a later start does not matter there, where the momentum is 0 and the buffer is
    not read), or up to 2**20 steps for a step on the device; remembered per schedule."""
    key = table.tobytes()
    found, looked = _MOMENTUM_STARTS.get(key, (None, 0))
    limit = step + 1 if isinstance(step, int) else _DEVICE_SCAN
    if found is None and looked < limit:
        found = first_nonzero_step(table, looked, limit)
        looked = limit
    if len(_MOMENTUM_STARTS) >= 256:
        _MOMENTUM_STARTS.clear()
    _MOMENTUM_STARTS[key] = (found, looked)
    if found is not None:
        return found
    if isinstance(step, int):
        return step + 1  # not started by this step
    raise ValueError(f"momentum: the schedule is 0 for its first {_DEVICE_SCAN} steps, so the step at which its "
                     "momentum buffer starts is not known for a step given as a device array; pass step as an int")


# primitives that are 0 wherever their parameters at these positions (after P0) are all 0
_ZERO_WHEN = {L.CONSTANT: (0,), L.EXPONENTIAL: (0,), L.INVERSE_TIME: (0,), L.POLYNOMIAL: (0, 3), L.COSINE: (0, 2),
              L.COSINE_RESTARTS: (0, 3), L.CYCLIC: (0, 1), L.ONE_MINUS_POWER: (0, 3), L.COSINE_POWER: (0, 2)}


def first_nonzero_step(table, begin, end, row=0):
    """The first integer step in [begin, end) where schedule ``row`` of ``table`` is not 0, or None.

    Segment by segment: a span where the primitive is 0 by its parameters (a level of 0, a
    product with such a factor, table values of 0) is skipped whole, so a momentum held at
    0 for 10**9 steps costs its segments, not its steps; any other span is evaluated by the
    kernels in growing blocks from its start (a primitive that is not 0 throughout is not 0
    a step or two into its span: the first block decides)."""
    return _first_step(table, row, begin, end, lambda values: values != 0.0,
                       lambda rows, segment, a, b: _upper_bound(rows, segment, a, b) == 0.0)


def first_step_reaching(table, level, begin, end, row=0):
    """The first integer step in [begin, end) where schedule ``row`` of ``table`` is >= ``level``
    (or NaN), or None: a span whose primitive stays below ``level`` by its parameters (a
    ramp's, a cycle's or a table's largest value) is skipped whole, any other evaluated."""
    return _first_step(table, row, begin, end, lambda values: ~(values < level),
                       lambda rows, segment, a, b: _upper_bound(rows, segment, a, b) < level)


def _first_step(table, row, begin, end, hit, skip):
    """The first integer step in [begin, end) whose value passes ``hit`` (a vectorized test),
    or None; a segment's span where ``skip(rows, segment, a, b)`` says none can is not read."""
    from ._cpu.schedule_tables import fill_table, run_small

    rows = table[row]
    starts = rows[:, L.START]
    segments = np.flatnonzero(np.isfinite(starts)).tolist()  # (not the side rows, not the padding)
    for n, j in enumerate(segments):
        a = max(begin, math.ceil(starts[j]))
        b = min(end, math.ceil(starts[segments[n + 1]]) if n + 1 < len(segments) else end)
        if a >= b or skip(rows, rows[j], a, b):
            continue
        block = 64
        while a < b:
            out = np.empty((1, min(block, b - a)))
            run_small(fill_table, out.size, table[row:row + 1], float(a), out)
            found = np.flatnonzero(hit(out[0]))
            if found.size:
                return a + int(found[0])
            a += out.shape[1]
            block = min(block * 4, 1 << 20)
    return None


def _upper_bound(rows, segment, a, b):
    """An upper bound of ``segment`` (a segment or factor row of a schedule's ``rows``) at the
    integer steps of [a, b), from its parameters alone; inf where none is known so (a rate
    that grows: an exponential's gamma above 1, a cycle whose amplitude grows)."""
    kind = int(segment[L.KIND])
    p = segment[L.P0:]
    if kind in _ZERO_WHEN and all(p[i] == 0.0 for i in _ZERO_WHEN[kind]):
        return 0.0
    if kind == L.CONSTANT:
        return p[0]
    if kind == L.EXPONENTIAL:
        return p[0] if p[1] <= 1.0 else math.inf
    if kind == L.INVERSE_TIME:
        return p[0] if p[1] >= 0.0 and p[4] >= 0.0 else math.inf
    if kind in (L.POLYNOMIAL, L.ONE_MINUS_POWER):  # from lr to end
        return max(p[0], p[3])
    if kind in (L.COSINE, L.COSINE_POWER):
        return max(p[0], p[2])
    if kind == L.COSINE_RESTARTS:  # cycles that never grow: within their first's range
        return max(p[0], p[3]) if p[4] <= 1.0 and p[5] <= 1.0 else math.inf
    if kind == L.CYCLIC:
        return max(p[0], p[1]) if p[4] <= 1.0 and p[5] <= 1.0 else math.inf
    if kind == L.PRODUCT:  # rates are >= 0: the product of the factors' bounds (0 with a factor of 0)
        first, count = int(p[0]), int(p[1])
        bounds = [_upper_bound(rows, rows[first + k], a, b) for k in range(count)]
        return 0.0 if 0.0 in bounds else math.prod(bounds)
    if kind == L.TABULATED:
        first, count = int(p[0]), int(p[1])
        # the values read over the span: v[min(max(floor(t - origin), 0), n - 1)]
        lo, hi = (min(max(math.floor(t - segment[L.ORIGIN]), 0), count - 1) for t in (a, b - 1))
        values = rows[first:first + (count + L.VALUES_PER_ROW - 1) // L.VALUES_PER_ROW, L.P0:].reshape(-1)
        return float(values[lo:hi + 1].max())
    return math.inf


def adam_betas(betas, eps):
    """(beta1 table, beta2, eps) of Adam / AdamW (``betas[0]`` may be a scalar schedule)."""
    return _beta1_table(betas, lambda b: adam_options(b, eps))


def lion_betas(betas):
    """(beta1 table, beta2) of Lion (``betas[0]`` may be a scalar schedule)."""
    return _beta1_table(betas, lion_options)


def uses_momentum(momentum_table):
    """False only for the constant momentum 0 (then no buffer is read or written)."""
    return not (momentum_table.shape[-2] == 1 and momentum_table[0, 0, L.KIND] == L.CONSTANT
                and momentum_table[0, 0, L.P0] == 0.0)


@dataclass(frozen=True)
class Checked:
    """A fused update's options, checked: what the kernels take after the lr and weight-decay tables."""

    table: object  # the scheduled coefficient (Fused.scheduled) as a (1, segments, WIDTH) table
    values: tuple  # the values of Fused.options, in that order (those of a call at step 0)
    needed: dict  # state key -> why the call needs that buffer, or None where the options leave it out
    at_step: object = None  # step -> values, where a scheduled coefficient makes them depend on the step

    def values_at(self, step):
        """``values`` for a call at ``step`` (an int, or an array read on the device): a
        scheduled coefficient's value there checked as the number would be, and what
        depends on it (SGD's ``first_step``) found."""
        return self.values if self.at_step is None else self.at_step(step)


def sgd_checked(momentum, dampening, nesterov, decoupled, maximize, lr_in_buffer, on_drop):
    """``Checked`` of ``fd.sgd_step``'s options (the momentum buffer is needed with momentum > 0)."""
    table, dampening, nesterov, code = sgd_momentum(momentum, dampening, nesterov, on_drop)
    flags = (dampening, nesterov, V.flag("decoupled", decoupled), V.flag("maximize", maximize),
             V.flag("lr_in_buffer", lr_in_buffer), code)
    needed = dict(momentum_buffer="momentum > 0" if uses_momentum(table) else None)
    if not isinstance(momentum, V.ScheduleBase):
        return Checked(table, flags + (0.0,), needed)

    def at_step(step):  # (a schedule's values are >= 0: only where its buffer starts depends on the step)
        return flags + (float(momentum_start(table, step)),)

    return Checked(table, flags + (float(momentum_start(table, 0)),), needed, at_step)


def _beta1_checked(table, betas, values, needed, check):
    """``Checked`` of Adam's or Lion's options: a ``betas[0]`` schedule checked at each call's step."""
    if not _scheduled_beta1(betas):
        return Checked(table, values, needed)

    def at_step(step):
        _beta1_at_step(table, step, lambda value: check((value, betas[1])))
        return values

    return Checked(table, values, needed, at_step)


def adam_checked(betas, eps, decoupled, maximize, amsgrad):
    """``Checked`` of ``fd.adamw_step``'s options (max_exp_avg_sq needed with amsgrad)."""
    amsgrad = V.flag("amsgrad", amsgrad)
    maximize = V.flag("maximize", maximize)
    decoupled = V.flag("decoupled", decoupled)
    table, beta2, eps = adam_betas(betas, eps)
    needed = dict(exp_avg="always", exp_avg_sq="always", max_exp_avg_sq="amsgrad=True" if amsgrad else None)
    return _beta1_checked(table, betas, (beta2, eps, decoupled, maximize, amsgrad), needed,
                          lambda b: adam_options(b, eps))


def lion_checked(betas, maximize):
    """``Checked`` of ``fd.lion_step``'s options."""
    maximize = V.flag("maximize", maximize)
    table, beta2 = lion_betas(betas)
    return _beta1_checked(table, betas, (beta2, maximize), dict(exp_avg="always"), lion_options)


# ----------------------------------------------------------------------------- the tables

# The kernels' option arguments: after (tensors, lr table, weight-decay table, step, the
# scheduled coefficient's table) every fused kernel takes its Fused.options in order, typed
# "f64" (a float), "bool" or "i32" (a small integer code). The CUDA entry points have one
# argument list for every rule: NUMBER_SLOTS doubles (the f64 options in order, then zeros)
# and FLAG_SLOTS ints (the bool and i32 options in order, then zeros).
OPTION_TYPES = ("f64", "bool", "i32")
NUMBER_SLOTS, FLAG_SLOTS = 4, 6


@dataclass(frozen=True)
class Fused:
    """One fused in-place update: ``fd.<function>``, kernels ``<kernel>_*``."""

    kernel: str  # "sgd": _cpu/rules.sgd_kernel, kernels: SgdRule in update_math.cuh, updates.cu sgd_<dtype>
    function: str  # the public function, fastdecay.<function>
    state: tuple  # ((torch state key, address-table row), ...): every buffer the update may use
    torch_classes: tuple  # the fastdecay.torch optimizers that step through it
    check: object  # options checker: public keyword options in, a Checked out
    scheduled: str  # the public name of the coefficient read from a schedule like lr ("momentum", "betas[0]")
    options: tuple  # ((name, type), ...): the kernels' option arguments in order (OPTION_TYPES)
    example: dict = field(default_factory=dict)  # options under which it uses every buffer but the optional ones
    optional: tuple = ()  # state keys used only under an option (amsgrad's max_exp_avg_sq)

    @property
    def state_keys(self):
        return tuple(key for key, _ in self.state)

    @property
    def option_names(self):
        return tuple(name for name, _ in self.options)


FUSED = {
    "sgd": Fused("sgd", "sgd_step", (("momentum_buffer", BUF0_ROW),), ("SGD",), sgd_checked, "momentum",
                 (("dampening", "f64"), ("nesterov", "bool"), ("decoupled", "bool"), ("maximize", "bool"),
                  ("lr_in_buffer", "bool"), ("on_drop", "i32"), ("first_step", "f64")),
                 example=dict(momentum=0.9)),
    "adam": Fused("adam", "adamw_step", (("exp_avg", BUF0_ROW), ("exp_avg_sq", BUF1_ROW),
                                         ("max_exp_avg_sq", BUF2_ROW)), ("Adam", "AdamW"), adam_checked, "betas[0]",
                  (("beta2", "f64"), ("eps", "f64"), ("decoupled", "bool"), ("maximize", "bool"),
                   ("amsgrad", "bool")),
                  optional=("max_exp_avg_sq",)),
    "lion": Fused("lion", "lion_step", (("exp_avg", BUF0_ROW),), ("Lion",), lion_checked, "betas[0]",
                  (("beta2", "f64"), ("maximize", "bool"))),
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
