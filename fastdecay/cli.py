"""The ``fastdecay`` command line (also ``python -m fastdecay``).

::

    fastdecay schedule KIND [--PARAM VALUE ...] --steps N [--every K] [--format table|csv|json] [--plot FILE.png]
    fastdecay demo [--out DIR]
    fastdecay sweep CONFIG.toml [--out DIR] [--resume] [--scheduler ADDRESS]
    fastdecay compile [--jobs N] [--gpu]

Bad arguments give exit status 2, before anything is written, and one line on
stderr naming the problem and the (sub-)command's help; malformed arguments
(unknown options, missing or invalid ones) print that sub-command's usage first. List options take spaces, commas or both: ``--milestones 30 80`` or
``--milestones 30,80``.

>>> main(["schedule", "exponential", "--lr", "0.1", "--gamma", "0.9", "--steps", "2"])
step       lr
   0  0.10000
   1  0.09000
   2  0.08100
0
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import math
import os
import sys
import time
from typing import IO, Any, Callable, NoReturn, Sequence

import numpy as np

from . import _validate as V
from . import schedules as S

__all__ = ["main", "build_parser", "SCHEDULE_KINDS"]


class CommandLineError(Exception):
    """A bad argument (exit status 2): one line naming the problem, after the usage of the
    (sub-)command when the arguments themselves are malformed."""

    def __init__(self, message: str, usage: str | None = None) -> None:
        super().__init__(message)
        self.usage = usage


class _Parser(argparse.ArgumentParser):
    """argparse whose errors carry this (sub-)command's usage and end in one line:
    ``fastdecay schedule step: error: ... (see fastdecay schedule step --help)``."""

    def error(self, message: str) -> NoReturn:
        raise CommandLineError(f"{self.prog}: error: {message} (see {self.prog} --help)", self.format_usage())


def _fail(args: argparse.Namespace, message: object) -> CommandLineError:
    """CommandLineError for a bad value found after parsing (the arguments were well
    formed, so no usage): one line pointing to the help of the sub-command ``args`` ran."""
    parser = getattr(args, "command_parser", None)
    prog = parser.prog if parser else "fastdecay"
    return CommandLineError(f"{prog}: error: {message} (see {prog} --help)")


# ----------------------------------------------------------------------------- fastdecay schedule

# The factories the command line offers, by KIND: the registry beside the factories.
SCHEDULE_KINDS = S.SCHEDULE_KINDS

_SUMMARY = {
    "constant": "lr",
    "step": "lr * gamma^floor(t / period)  (torch StepLR)",
    "multistep": "lr * gamma^(milestones passed)  (torch MultiStepLR)",
    "exponential": "lr * gamma^(t / decay_steps); or rate=, half_life=  (torch ExponentialLR)",
    "inverse_time": "lr / (1 + rate * t / decay_steps)  (Keras InverseTimeDecay)",
    "polynomial": "(lr - end_lr) (1 - t/T)^power + end_lr  (Keras PolynomialDecay)",
    "cosine": "cosine from lr to min_lr over total_steps  (torch CosineAnnealingLR)",
    "cosine_restarts": "SGDR cycles  (torch CosineAnnealingWarmRestarts)",
    "linear": "straight line from start_lr to end_lr  (optax linear_schedule)",
    "piecewise": "constant values between boundaries  (optax piecewise_constant_schedule)",
    "one_cycle": "cosine up then down  (torch OneCycleLR)",
    "cyclic": "triangle between base_lr and max_lr  (torch CyclicLR)",
    "inverse_sqrt": "warmup, then lr sqrt(warmup_steps / t)  (Transformer)",
    "wsd": "warmup-stable-decay",
    "tabulated": "the given per-step rates, the last held  (torch LambdaLR as data)",
}

# Parameters that take a list (space- or comma-separated, or both), and their element type.
_LIST_PARAMS = {"milestones": int, "boundaries": int, "values": float}
_CHOICES = S.SCHEDULE_CHOICES
_HELP = {
    "lr": "initial learning rate eta_0",
    "gamma": "decay factor per period (or per decay_steps)",
    "period": "steps between drops",
    "milestones": "steps at which the rate is multiplied by gamma, e.g. 30 80 (or 30,80)",
    "rate": "decay rate (exponential: gamma = exp(-rate); inverse_time: eta_0 / (1 + rate t))",
    "half_life": "steps for the rate to halve (gamma = 2^(-1/half_life))",
    "decay_steps": "steps per factor of gamma",
    "staircase": "floor the exponent (decay in steps)",
    "total_steps": "length of the decay in steps",
    "power": "polynomial power",
    "end_lr": "final learning rate",
    "cycle": "restart the decay every total_steps (Keras PolynomialDecay(cycle=True))",
    "min_lr": "floor of the rate",
    "period_mult": "factor by which each cycle grows",
    "start_lr": "rate at step 0",
    "boundaries": "steps where the value changes, e.g. 100 200 (or 100,200)",
    "values": "rates, one more than boundaries, e.g. 0.1 0.01 0.001 (or 0.1,0.01,0.001)",
    "max_lr": "peak learning rate",
    "pct_start": "fraction of total_steps spent increasing",
    "div_factor": "initial rate = max_lr / div_factor",
    "final_div_factor": "final rate = initial rate / final_div_factor",
    "base_lr": "lowest rate of the cycle",
    "step_size_up": "steps from base_lr to max_lr",
    "step_size_down": "steps from max_lr back to base_lr (default step_size_up)",
    "mode": "amplitude policy",
    "warmup_steps": "steps of linear warmup",
    "decay": "shape of the final decay",
    "anneal_strategy": "shape of each phase: half cosine or line (torch anneal_strategy)",
    "three_phase": "rise, fall back to the initial rate, then anneal to the final rate (torch three_phase)",
    "base_momentum": "lowest momentum of the cycle (printed with --momentum)",
    "max_momentum": "highest momentum of the cycle (printed with --momentum)",
    "num_cycles": "waves of the cosine over total_steps (0.5: down once; transformers num_cycles)",
    "exponent": "power of the cosine's (1 + cos)/2 factor (optax exponent)",
    "cycle_decay": "factor on each cycle's peak (timm cycle_decay, Keras m_mul)",
    "decay_amplitude": "decay the peak's height above min_lr, not the peak (Keras m_mul)",
    "cycle_limit": "cycles before the rate stays at min_lr (timm cycle_limit)",
    "timescale": "steps of the decay's time scale: lr sqrt(timescale / (t + timescale - warmup_steps))",
    "closed": "which side of a boundary takes the next value: left (at it, optax) or right (after it, Keras)",
    "warmup_shape": "shape of the warmup (its own, and the --warmup one)",
    ("exponential", "end_lr"): "the rate stops at this value (optax end_value)",
    ("tabulated", "values"): "rates, one a step, e.g. 0.1 0.2 0.15 (or 0.1,0.2,0.15)",
    ("inverse_time", "rate"): "k in eta_0 / (1 + k t / decay_steps)",
    ("inverse_time", "decay_steps"): "steps per unit of k t",
    ("wsd", "total_steps"): "length of the whole schedule",
    ("wsd", "decay_steps"): "length of the final decay (default 20%% of total_steps)",
    ("cosine_restarts", "period"): "length of the first cycle",
    ("inverse_sqrt", "warmup_steps"): "steps of linear warmup; then lr sqrt(warmup_steps / t)",
    ("wsd", "warmup_steps"): "steps of warmup from start_lr, shaped by --warmup-shape",
}


def _list_of(kind_name: str, element: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    def parse(text: str) -> list[Any]:
        try:
            return [element(x) for x in text.replace(" ", "").split(",") if x != ""]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {kind_name}s separated by commas or spaces, got {text!r}") from None

    parse.__name__ = f"list of {kind_name}s"
    return parse


class _Concatenate(argparse.Action):
    """``--milestones 3 6``, ``--milestones 3,6`` and ``--milestones 3, 6`` alike: the
    lists parsed from each word, joined into one."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, [x for part in values for x in part])


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _file_path(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("expected a file name, got ''")
    return text


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _description(doc: str | None) -> str:
    """A factory's docstring without its doctest examples, as one paragraph."""
    text = inspect.cleandoc(doc or "").split(">>>")[0]
    return " ".join(text.split()).replace("``", "")


class _HelpFormatter(argparse.HelpFormatter):
    """Shows an option once (``--total-steps N``), not once per accepted spelling."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings:
            return super()._format_action_invocation(action)
        shown = ", ".join(o for o in action.option_strings if "_" not in o)
        if action.nargs == 0:
            return shown
        return f"{shown} {self._format_args(action, self._get_default_metavar_for_optional(action))}"


def _add_factory_options(parser: argparse.ArgumentParser, kind: str, factory: Callable[..., S.Schedule]) -> None:
    """One ``--param`` option per factory argument; required ones without default."""
    for p in inspect.signature(factory).parameters.values():
        flags = [f"--{p.name.replace('_', '-')}"] + ([f"--{p.name}"] if "_" in p.name else [])
        help_ = _HELP.get((kind, p.name), _HELP.get(p.name, ""))
        required = p.default is inspect.Parameter.empty
        if isinstance(p.default, bool):
            parser.add_argument(*flags, dest=p.name, action="store_true", help=help_)
            continue
        if (kind, p.name) in _CHOICES:
            choices = _CHOICES[(kind, p.name)]
            help_ = f"{help_} (default {p.default})"
            parser.add_argument(*flags, dest=p.name, choices=choices, default=p.default, help=help_)
            continue
        kwargs: dict[str, Any] = {"dest": p.name, "metavar": "N" if "steps" in p.name else p.name.upper(), "required": required}
        if p.name in _LIST_PARAMS:
            kwargs["type"] = _list_of(_LIST_PARAMS[p.name].__name__, _LIST_PARAMS[p.name])
            kwargs["nargs"] = "+"
            kwargs["action"] = _Concatenate
        else:
            kwargs["type"] = float
        if not required:
            kwargs["default"] = p.default
            if p.default is not None:
                help_ = f"{help_} (default {p.default:g})" if help_ else f"default {p.default:g}"

        parser.add_argument(*flags, help=help_, **kwargs)


def _add_schedule_command(commands: Any) -> None:
    sched = commands.add_parser(
        "schedule",
        help="print a learning-rate schedule, one row a step",
        description="Print the rate of a schedule at steps 0 to N (one row a step). "
        "Each KIND takes its factory's arguments as options: `fastdecay schedule KIND --help`.",
        epilog="example: fastdecay schedule exponential --lr 0.1 --gamma 0.9 --steps 10",
    )
    sched.set_defaults(command_parser=sched)
    kinds = sched.add_subparsers(dest="kind", metavar="KIND", parser_class=_Parser)
    kinds.required = True
    for kind, factory in SCHEDULE_KINDS.items():
        p = kinds.add_parser(
            kind,
            aliases=[kind.replace("_", "-")] if "_" in kind else [],
            formatter_class=_HelpFormatter,
            help=_SUMMARY[kind],
            description=f"fd.{kind}: {_description(factory.__doc__)}",
        )
        # the factory's name whichever spelling (one_cycle, one-cycle) was typed
        p.set_defaults(kind=kind, command_parser=p)
        _add_factory_options(p, kind, factory)
        common = p.add_argument_group("output")
        common.add_argument("--steps", type=_nonnegative_int, required=True, metavar="N", help="last step shown")
        common.add_argument("--every", type=_positive_int, default=1, metavar="K", help="show steps 0, K, 2K, ... <= N")
        common.add_argument("--format", choices=("table", "csv", "json"), default="table",
                            help="default table (json writes a rate that is not finite as null)")
        common.add_argument("--plot", type=_file_path, metavar="FILE.png", help="also draw the rates into this figure (.png, .pdf, .svg, ...; needs matplotlib)")
        common.add_argument(
            "--warmup", type=_nonnegative_int, default=0, metavar="W",
            help="prepend a warmup from 0 (or --warmup-start-lr) over W steps (fd.warmup)",
        )
        # (defaults None: given without --warmup, they are refused rather than ignored)
        if "warmup_shape" not in inspect.signature(factory).parameters:  # wsd has its own
            common.add_argument("--warmup-shape", dest="added_warmup_shape", choices=S.SCHEDULE_CHOICES[("wsd", "warmup_shape")],
                                default=None, help="shape of the --warmup (default linear)")
        common.add_argument("--warmup-start-lr", type=float, default=None, metavar="LR", help="default 0")
        common.add_argument(
            "--no-warmup-prefix", dest="warmup_prefix", action="store_const", const=False, default=None,
            help="the warmup replaces the schedule's first W steps instead of delaying it (timm warmup_prefix=False)",
        )
        if kind in ("one_cycle", "cyclic"):
            common.add_argument(
                "--momentum", action="store_true",
                help="also print the momentum torch cycles with this rate (cycle_momentum=True)",
            )


def _build_schedule(args: argparse.Namespace) -> S.Schedule:
    factory = SCHEDULE_KINDS[args.kind]
    kwargs = {name: getattr(args, name) for name in inspect.signature(factory).parameters}
    given = [flag for flag, value in (("--warmup-shape", getattr(args, "added_warmup_shape", None)),
                                      ("--warmup-start-lr", args.warmup_start_lr),
                                      ("--no-warmup-prefix", args.warmup_prefix)) if value is not None]
    if given and not args.warmup:
        raise ValueError(f"{', '.join(given)} {'shapes' if len(given) == 1 else 'shape'} the added warmup: "
                         f"give --warmup W too")
    schedule = factory(**kwargs)
    if args.warmup:
        # (a kind with a warmup of its own, wsd, takes --warmup-shape as its option: the same shape)
        shape = str(getattr(args, "added_warmup_shape", None) or getattr(args, "warmup_shape", None) or "linear")
        start_lr = 0.0 if args.warmup_start_lr is None else args.warmup_start_lr
        try:
            schedule = S.warmup(schedule, args.warmup, start_lr=start_lr, shape=shape,
                                prefix=args.warmup_prefix is None)
        except ValueError as err:  # (named by its flag: the factory's start_lr can be a flag of its own)
            raise ValueError(f"--warmup-start-lr / --warmup: {err}") from None
    return schedule


def _fixed_decimals(rates: np.ndarray) -> int | None:
    """Decimals that show the smallest nonzero rate with 4 significant digits (at least 5),
    or None when that would take more than 12 (then scientific notation)."""
    finite = np.abs(rates[np.isfinite(rates) & (rates != 0)])
    if finite.size == 0:
        return 5
    decimals = max(5, 3 - math.floor(math.log10(finite.min())))
    return decimals if decimals <= 12 and finite.max() < 1e6 else None


def _print_schedule(schedule: S.Schedule, steps: np.ndarray, columns: dict[str, np.ndarray], fmt: str, out: IO[str]
                    ) -> None:
    """One row a step: the step and each of ``columns`` (name -> values: lr, and momentum
    when asked)."""
    if fmt == "json":
        doc = {"schedule": repr(schedule), "step": steps.tolist()}
        # JSON has no inf or NaN: a rate that is not finite (an overflowing growth) is null
        doc.update({name: [x if math.isfinite(x) else None for x in values.tolist()]
                    for name, values in columns.items()})
        out.write(json.dumps(doc, allow_nan=False) + "\n")
        return
    if fmt == "csv":
        out.write(",".join(["step", *columns]) + "\n")
        for t, row in zip(steps.tolist(), zip(*(v.tolist() for v in columns.values()))):
            out.write(",".join([str(t)] + [repr(x) for x in row]) + "\n")
        return
    width_t = max(4, len(str(int(steps[-1]))) if steps.size else 4)
    cells, widths = [], []
    for name, values in columns.items():
        decimals = _fixed_decimals(values)
        cells.append([f"{r:.{decimals}f}" if decimals is not None else f"{r:.6e}" for r in values.tolist()])
        widths.append(max([len(name)] + [len(c) for c in cells[-1]]))
    out.write("  ".join([f"{'step':>{width_t}}"] + [f"{n:>{w}}" for n, w in zip(columns, widths)]) + "\n")
    for i, t in enumerate(steps.tolist()):
        out.write("  ".join([f"{t:>{width_t}}"] + [f"{c[i]:>{w}}" for c, w in zip(cells, widths)]) + "\n")


def _run_schedule(args: argparse.Namespace, out: IO[str]) -> int:
    try:
        schedule = _build_schedule(args)
    except (ValueError, TypeError) as exc:
        raise _fail(args, exc) from None
    every = min(args.every, args.steps + 1)  # (steps 0, K, 2K, ... <= N: a K beyond N shows step 0 alone)
    count = args.steps // every + 1
    try:
        V.fits_in_memory("--steps", args.steps, (count, 3), 8)  # the steps, the rates and the text of a row
    except ValueError as exc:
        raise _fail(args, exc) from None
    if args.steps > V.MAX_STEP:
        raise _fail(args, f"--steps must be at most 2**53 (the largest step a schedule is evaluated at), got "
                          f"{args.steps}")
    steps = np.arange(count, dtype=np.int64) * every  # (in integers: arange's float length can drop N)
    columns = {"lr": np.asarray(schedule(steps), dtype=np.float64)}
    if getattr(args, "momentum", False):
        if args.warmup:
            raise _fail(args, "--momentum cannot be combined with --warmup")
        columns["momentum"] = np.asarray(schedule.momentum(steps), dtype=np.float64)
    if args.plot:
        try:
            from . import plots
        except ImportError as exc:
            raise _fail(args, f"--plot {exc}") from None
        try:
            plots.lr_curves({repr(schedule): schedule}, args.steps + 1, path=args.plot)
        except (OSError, ValueError) as exc:
            raise _fail(args, f"cannot write --plot {args.plot!r}: {exc}") from None
    _print_schedule(schedule, steps, columns, args.format, out)
    return 0


# ----------------------------------------------------------------------------- demo and sweep


def _add_demo_command(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="step vs exponential decay on quadratics: a table and PNG figures",
        description="Step decay against its half-life-matched exponential (and a cosine for "
        "reference) on a batch of quadratics with curvatures 0.01-100. Prints a table per curvature "
        "(stability onset, final |w|, discretization divergence, momentum overshoot after the first "
        "drop with keep/reset/rescale) and writes labelled PNG figures to DIR.",
    )
    demo.set_defaults(command_parser=demo)
    demo.add_argument("--out", default="demo-out", metavar="DIR", help="where the figures go (default demo-out)")
    demo.add_argument("--no-plots", action="store_true", help="print the table only")


def _add_sweep_command(commands: Any) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="a simulation sweep from a TOML file: chunked, resumable, local or on Dask",
        description="Run every schedule x optimizer setting x curvature of a TOML config (see "
        "examples/sweep.toml) in chunks, each written atomically to DIR/chunks as it finishes; "
        "a summary table and figures at the end.",
    )
    sweep.set_defaults(command_parser=sweep)
    sweep.add_argument("config", metavar="CONFIG.toml", help="the sweep description")
    sweep.add_argument("--out", metavar="DIR", help="results directory (default: the config's `out`, else CONFIG-out)")
    sweep.add_argument("--resume", action="store_true", help="continue a sweep of the same config in DIR")
    sweep.add_argument("--scheduler", metavar="ADDRESS", help="run the chunks on this Dask scheduler (tcp://host:8786)")
    sweep.add_argument(
        "--connect-timeout", type=_positive_float, default=5.0, metavar="S",
        help="seconds to wait for the Dask scheduler (default 5)",
    )
    sweep.add_argument("--dry-run", action="store_true", help="check the config and print what would run; write nothing")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep.add_argument("--no-plots", action="store_true", help="no figures at the end")


def _add_compile_command(commands: Any) -> None:
    compile_ = commands.add_parser(
        "compile",
        help="compile every kernel into the on-disk caches now, not at first use",
        description="Run the calls that reach every CPU kernel (schedules, updates, simulations in float32 "
        "and float64), one family per worker process, so Numba's on-disk cache holds them all: the first "
        "real call then loads instead of compiling. For image builds and job set-up. Numba's cache is "
        "beside the installed package unless NUMBA_CACHE_DIR is set.",
    )
    compile_.set_defaults(command_parser=compile_)
    compile_.add_argument("--jobs", type=_positive_int, metavar="N", help="worker processes (default: CPU count)")
    compile_.add_argument("--gpu", action="store_true",
                          help="also compile the CUDA kernels for the current GPU (needs CuPy and a device)")


def _cuda_devices() -> int:
    import cupy

    try:
        return cupy.cuda.runtime.getDeviceCount()
    except Exception:  # no driver, or one too old for CuPy's CUDA
        return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the whole command line."""
    from ._version import __version__

    parser = _Parser(
        prog="fastdecay",
        description="Learning-rate schedules, fused scheduled optimizer updates and batched quadratic "
        "simulations. `fastdecay COMMAND --help` for each command.",
    )
    parser.add_argument("--version", action="version", version=f"fastdecay {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    _add_schedule_command(commands)
    _add_demo_command(commands)
    _add_sweep_command(commands)
    _add_compile_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fastdecay`` console script; returns the exit status."""
    out = sys.stdout
    try:
        parser = build_parser()
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # reported by the sub-command that was given them, with its usage
            (getattr(args, "command_parser", None) or parser).error(f"unrecognized arguments: {' '.join(unknown)}")
        if args.command == "schedule":
            return _run_schedule(args, out)
        if args.command == "demo":
            from . import _demo

            if not args.no_plots:  # before the table, not after it
                try:
                    os.makedirs(args.out, exist_ok=True)
                except OSError as exc:
                    message = f"cannot write the figures into --out {args.out}: {exc.strerror or exc}"
                    raise _fail(args, message) from None
            try:
                return _demo.run(out_dir=args.out, plots=not args.no_plots, out=out)
            except OSError as exc:  # a figure that cannot be written (a read-only folder, a folder of its name)
                where = exc.filename or args.out
                raise _fail(args, f"cannot write the figures into --out {args.out} ({where}: "
                                  f"{exc.strerror or exc})") from None
        if args.command == "compile":
            from . import _precompile
            from ._gpu import INSTALL_HINT

            if args.gpu and importlib.util.find_spec("cupy") is None:
                raise _fail(args, f"--gpu: {INSTALL_HINT}")
            if args.gpu and _cuda_devices() == 0:
                raise _fail(args, "--gpu: CuPy sees no CUDA device here")

            start = time.perf_counter()
            _precompile.precompile(jobs=args.jobs, gpu=args.gpu, out=lambda line: print(line, file=out, flush=True))
            print(f"{'all kernels cached':<18} {time.perf_counter() - start:6.1f} s (wall)", file=out)
            return 0
        if args.command == "sweep":
            from .sweep import SweepConfigError
            from .sweep.run import run_cli

            try:
                return run_cli(args, out=out)
            except SweepConfigError as exc:
                raise _fail(args, exc) from None
    except CommandLineError as exc:
        if exc.usage:
            print(exc.usage.rstrip(), file=sys.stderr)
        print(str(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fastdecay: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `fastdecay schedule ... | head`: stop quietly, as other command-line tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
