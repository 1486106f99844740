"""Sweep configs: the TOML format, its checks (every error names the key and its line),
the normalised config (a plain JSON-able dict) and its hash, and the chunk plan.

``parse_config`` turns a TOML path or a dict into the normalised config;
``config_hash`` is what a sweep directory remembers; ``chunk_plan`` cuts the grid
into the chunks that are files on disk and tasks on a Dask cluster.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import itertools
import json
import os
import re
import sys
from typing import Any, Callable, Mapping, cast

import numpy as np

from .. import _validate as V
from .. import schedules as S
from .._rules import LINEAR as EXPECTED_OPTIMIZERS  # the linear rules: exact moments
from .._rules import BY_NAME as RULES_BY_NAME
from .._rules import NAMES as OPTIMIZERS
from .._rules import ON_DROP, first_step_reaching
from .._typing import FloatArray

_FLOAT32_MAX = float(np.finfo(np.float32).max)

__all__ = ["SweepConfigError", "parse_config", "config_hash", "build_schedule", "build_momentum", "ChunkPlan",
           "chunk_plan", "sweep_mode", "draws_noise", "result_arrays", "FORMAT", "OPTIMIZERS", "ON_DROP", "MODES",
           "EXPECTED_OPTIMIZERS", "COMPANION", "momentum_label"]

FORMAT = 1
MODES = ("monte_carlo", "expected")
# ``momentum = "companion"`` (or ``betas = ["companion", beta2]``): each schedule's own momentum
# companion (``fd.one_cycle(...).momentum``, ``fd.cyclic(...).momentum``), torch's cycle_momentum
COMPANION = "companion"


# A normalised sweep config (``parse_config``): a plain, JSON-able dict.
Config = dict[str, Any]


class SweepConfigError(ValueError):
    """A sweep config (or output directory) that cannot run; the message names the key
    and, for a file, the line.

    >>> import fastdecay as fd
    >>> try:
    ...     fd.sweep({"run": {"steps": 10, "every": 20}, "curvatures": {"values": [1.0]},
    ...               "schedule": {"kind": "constant", "lr": 0.1}}, progress=False)
    ... except fd.SweepConfigError as err:
    ...     print(err)
    run.every: must be <= steps (10), got 20
    """


# ----------------------------------------------------------------------------- config


_LIST_VALUED = {"milestones", "boundaries", "values"}  # parameters whose single value is a list
_RUN_KEYS = {"steps", "every", "chunk_size", "seed", "w0", "w0_var", "dtype", "mode"}
_OPT_KEYS = {"kind", "label", "momentum", "betas", "eps", "weight_decay", "on_drop", "noise", "batch_size"}
_OPT_DEFAULTS = {"momentum": 0.9, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0, "on_drop": "keep",
                 "noise": 0.0}


class _Locator:
    """Line numbers of keys in the TOML text (tomllib reports positions only for syntax
    errors); plain ``key = value`` lines under ``[table]`` / ``[[table]]`` headers."""

    _header = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?")

    def __init__(self, text: str | None, path: str | None) -> None:
        self.path = path
        self.lines = text.splitlines() if text is not None else None

    def line(self, table: str | None = None, index: int | None = None, key: str | None = None) -> int | None:
        if self.lines is None:
            return None
        current: tuple[str, int | None] | None = None
        count: dict[str, int] = {}
        header_line = None
        for number, raw in enumerate(self.lines, start=1):
            m = self._header.match(raw)
            if m:
                name = m.group(2).strip("\"' ")
                k = count.get(name, -1) + 1 if m.group(1) == "[[" else 0
                count[name] = k
                current = (name, k if m.group(1) == "[[" else None)
                if current == (table, index):
                    header_line = number
                continue
            here = (current == (table, index)) if table is not None else current is None
            if here and key is not None and re.match(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=", raw):
                return number
        return header_line

    def error(self, problem: str, table: str | None = None, index: int | None = None, key: str | None = None
              ) -> SweepConfigError:
        where = table or ""
        if index is not None:
            where += f"[{index}]"
        if key is not None:
            where += f".{key}" if where else key
        line = self.line(table, index, key)
        prefix = f"{self.path}:{line}: " if self.path and line else (f"{self.path}: " if self.path else "")
        return SweepConfigError(f"{prefix}{where}: {problem}" if where else f"{prefix}{problem}")


def _checked(loc: _Locator, table: str | None, index: int | None, key: str, check: Callable[..., Any], value: object, *,
             name: str | None = None, **bounds: Any) -> Any:
    """``check(name, value, **bounds)``, a check of ``fastdecay._validate`` (``name``
    defaults to the key); a refusal becomes a ``SweepConfigError`` naming the key and
    its line."""
    name = key if name is None else name
    try:
        return check(name, value, **bounds)
    except (TypeError, ValueError) as exc:
        text = str(exc)
        if name == key and text.startswith(f"{key} "):
            text = text[len(key) + 1:]
        raise loc.error(text, table, index, key) from None


def _toml_number(x: object) -> bool:
    """A TOML integer or float (not a boolean): what reads as one grid value of a number
    parameter. Its range and type are checked by ``fastdecay._validate``."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_keys(loc: _Locator, table: str | None, index: int | None, given: Mapping[str, Any], allowed: set[str]
                ) -> None:
    for key in given:
        if key not in allowed:
            raise loc.error(f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})", table, index, key)


def _axis(value: Any, single: Callable[[Any], bool]) -> list[Any] | None:
    """The grid axis of a config value: a list of values unless it is one ``single`` value."""
    if single(value):
        return [value]
    if isinstance(value, list) and value and all(single(v) for v in value):
        return value
    return None


def _scalar_param(x: object) -> bool:
    return _toml_number(x) or isinstance(x, (bool, str))


def _list_param(x: object) -> bool:
    return isinstance(x, list) and all(_toml_number(v) for v in x)


def _normalise_run(loc: _Locator, run: Any) -> dict[str, Any]:
    if not isinstance(run, dict):
        raise loc.error(f"must be a table, got {run!r}", "run")
    _check_keys(loc, "run", None, run, _RUN_KEYS)
    if "steps" not in run:
        raise loc.error("missing required key 'steps' (updates per trajectory)", "run")
    out = {}
    for key, default, low, high in (("steps", None, 1, 2**32), ("every", None, 1, None),
                                    ("chunk_size", 4096, 1, None), ("seed", 0, 0, 2**63)):
        value = run.get(key, default)
        out[key] = None if value is None else _checked(loc, "run", None, key, V.integer, value, low=low, high=high)
    if out["every"] is not None and out["every"] > out["steps"]:
        raise loc.error(f"must be <= steps ({out['steps']}), got {out['every']!r}", "run", None, "every")
    w0 = out["w0"] = _checked(loc, "run", None, "w0", V.real, run.get("w0", 1.0))
    dtype = _checked(loc, "run", None, "dtype", V.choice, run.get("dtype", "float64"), options=("float64", "float32"))
    out["dtype"] = dtype
    if dtype == "float32" and not abs(w0) <= _FLOAT32_MAX:
        raise loc.error(f"must be within float32's range with dtype = 'float32', got {w0!r}", "run", None, "w0")
    # mode and w0_var enter the normalised config only when they differ from the default
    # (a Monte Carlo sweep's config, and so its hash, is what it was before they existed)
    mode = _checked(loc, "run", None, "mode", V.choice, run.get("mode", "monte_carlo"), options=MODES)
    w0_var = _checked(loc, "run", None, "w0_var", V.real, run.get("w0_var", 0.0), low=0.0)
    if mode == "expected":
        out["mode"] = mode
        if dtype != "float64":
            raise loc.error("expected-dynamics sweeps compute in float64; remove dtype or set it to 'float64'",
                            "run", None, "dtype")
        if "seed" in run:
            raise loc.error("has no effect with mode = 'expected' (exact moments, no random numbers); remove it",
                            "run", None, "seed")
        if w0_var:
            out["w0_var"] = float(w0_var)
    elif "w0_var" in run:
        raise loc.error("a random start (its variance) needs mode = 'expected'; Monte Carlo sweeps start at w0",
                        "run", None, "w0_var")
    return out


def _normalise_curvatures(loc: _Locator, cur: Any, dtype: str) -> list[float]:
    if not isinstance(cur, dict):
        raise loc.error(f"must be a table, got {cur!r}", "curvatures")
    _check_keys(loc, "curvatures", None, cur, {"values", "logspace", "linspace"})
    given = [k for k in ("values", "logspace", "linspace") if k in cur]
    if len(given) != 1:
        raise loc.error(f"give exactly one of values, logspace, linspace; got {given or 'none'}", "curvatures")
    key = given[0]
    v = cur[key]
    if key == "values":
        if not isinstance(v, list) or not v:
            raise loc.error(f"must be a non-empty list of numbers, got {v!r}", "curvatures", None, key)
        lam = _checked(loc, "curvatures", None, key, V.real_array, v, low=0.0)
        if lam.ndim != 1:
            raise loc.error(f"must be a flat list of numbers, got {v!r}", "curvatures", None, key)
    else:
        if not (isinstance(v, list) and len(v) == 3):
            raise loc.error(f"must be [start, stop, count] with an integer count, got {v!r}", "curvatures", None, key)
        start, stop = (_checked(loc, "curvatures", None, key, V.real, x, name=f"{key}[{i}]") for i, x in enumerate(v[:2]))
        count = _checked(loc, "curvatures", None, key, V.integer, v[2], name=f"{key}[2] (the count)", low=1)
        # (the config holds them as a list of Python floats: ~32 bytes each)
        _checked(loc, "curvatures", None, key, V.fits_in_memory, count, shape=(count,), itemsize=32,
                 name=f"{key}[2] (the count)")
        lam = (np.logspace if key == "logspace" else np.linspace)(start, stop, count)
    if not np.all(np.isfinite(lam)) or np.any(lam < 0):
        raise loc.error(f"curvatures must be finite and >= 0, got {v!r}", "curvatures", None, key)
    if dtype == "float32" and np.any(lam > _FLOAT32_MAX):
        raise loc.error(f"curvatures must be within float32's range with dtype = 'float32', got {float(lam.max())!r}",
                        "curvatures", None, key)
    return [float(x) for x in lam]


def _label(base: str, varying: Mapping[str, Any]) -> str:
    if not varying:
        return base
    inner = ", ".join(f"{k}={v:g}" if _toml_number(v) else f"{k}={v}" for k, v in varying.items())
    return f"{base}({inner})"


def _expand(loc: _Locator, table: str, index: int, spec: Mapping[str, Any], fixed_keys: set[str],
            single_of: Callable[[str], Callable[[Any], bool]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The grid of one [[table]]: (params, varying params) for each product point."""
    names, axes = [], []
    for key, value in spec.items():
        if key in fixed_keys:
            continue
        axis = _axis(value, single_of(key))
        if axis is None:
            raise loc.error(f"must be a value or a non-empty list of values, got {value!r}", table, index, key)
        names.append(key)
        axes.append(axis)
    points = []
    for combo in itertools.product(*axes):
        params = dict(zip(names, combo))
        varying = {k: v for k, v, ax in zip(names, combo, axes) if len(ax) > 1}
        points.append((params, varying))
    return points


def _normalise_schedules(loc: _Locator, specs: Any) -> list[dict[str, Any]]:
    if isinstance(specs, dict):
        specs = [specs]
    if not isinstance(specs, list) or not specs:
        raise loc.error("give at least one [[schedule]] table", "schedule")
    kinds = S.SCHEDULE_KINDS
    out = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict):
            raise loc.error(f"must be a table, got {spec!r}", "schedule", i)
        kind = spec.get("kind")
        if isinstance(kind, str):
            kind = kind.replace("-", "_")  # the command line's spelling ("one-cycle") too
        if kind is None:
            raise loc.error(f"missing required key 'kind' (one of {', '.join(kinds)})", "schedule", i)
        if kind not in kinds:
            raise loc.error(f"unknown kind {kind!r} (one of {', '.join(kinds)})", "schedule", i, "kind")
        factory = kinds[kind]
        params = inspect.signature(factory).parameters
        _check_keys(loc, "schedule", i, spec, set(params) | {"kind", "label", "warmup"})
        label = spec.get("label", kind)
        if not isinstance(label, str):
            raise loc.error(f"must be a string, got {label!r}", "schedule", i, "label")
        warmup = _checked(loc, "schedule", i, "warmup", V.integer, spec.get("warmup", 0), low=0)
        points = _expand(loc, "schedule", i, spec, {"kind", "label", "warmup"},
                         lambda key: _list_param if key in _LIST_VALUED else _scalar_param)
        for p in params.values():
            if p.default is inspect.Parameter.empty and p.name not in spec:
                raise loc.error(f"missing required key {p.name!r} for kind {kind!r}", "schedule", i)
        for point, varying in points:
            entry = {"kind": kind, "params": point, "warmup": warmup, "label": _label(label, varying)}
            try:
                build_schedule(entry)
            except (ValueError, TypeError) as exc:
                bad = next((k for k in point if str(exc).startswith(k)), None)
                raise loc.error(str(exc), "schedule", i, bad) from None
            out.append(entry)
    for e, lab in zip(out, _unique([e["label"] for e in out])):
        e["label"] = lab
    return out


def _unique(labels: list[str]) -> list[str]:
    """The labels with every one given more than once numbered by its position (``a#0``,
    ``a#3``), skipping numbers that would make another label: a label names one grid
    point (the summary's rows, ``to_xarray().sel``, ``to_dataframe().groupby``).

    >>> _unique(["a#1", "a", "a", "b"])
    ['a#1', 'a#2', 'a#3', 'b']
    """
    taken = set(labels)
    out = []
    for k, lab in enumerate(labels):
        if labels.count(lab) > 1:
            n = k
            while f"{lab}#{n}" in taken:
                n += 1
            lab = f"{lab}#{n}"
            taken.add(lab)
        out.append(lab)
    return out


def build_schedule(entry: Mapping[str, Any]) -> S.Schedule:
    """The ``fd.Schedule`` of one entry of a normalised config's ``"schedules"`` list."""
    schedule = S.SCHEDULE_KINDS[entry["kind"]](**entry["params"])
    if entry["warmup"]:
        schedule = S.warmup(schedule, entry["warmup"])
    return schedule


def _check_optimizer(loc: _Locator, i: int, point: Mapping[str, Any], run: Mapping[str, Any],
                     schedules: list[dict[str, Any]]) -> dict[str, Any]:
    """One optimizer setting (of ``[[optimizer]]`` table i) with its values checked against the
    normalised ``run`` and ``schedules`` (floats; ``batch_size`` an int; a scheduled momentum
    or beta1 at each of the run's steps; a companion where each schedule has one); the key
    that is wrong is named."""
    mode, steps = run.get("mode", "monte_carlo"), run["steps"]
    kind = point["kind"]
    if kind not in OPTIMIZERS:
        raise loc.error(f"unknown kind {kind!r} (one of {', '.join(OPTIMIZERS)})", "optimizer", i, "kind")
    if mode == "expected" and kind not in EXPECTED_OPTIMIZERS:
        raise loc.error(f"{kind!r} has no exact expected dynamics (its update is not linear in the gradient noise); "
                        f"with mode = 'expected' use one of {', '.join(EXPECTED_OPTIMIZERS)}, or estimate it in a "
                        "Monte Carlo sweep", "optimizer", i, "kind")

    def check(key: str, check: Callable[..., Any], **bounds: Any) -> Any:
        return _checked(loc, "optimizer", i, key, check, point[key], **bounds)

    out = dict(point)
    out["momentum"] = _momentum_value(loc, i, "momentum", point["momentum"], check, 1.0, steps)
    betas = point["betas"]
    if isinstance(betas, list) and len(betas) == 2 and isinstance(betas[0], (str, dict)):
        beta1 = _momentum_value(loc, i, "betas", betas[0], check, 1.0, steps)
        out["betas"] = [beta1, check("betas", lambda name, value: V.betas((0.0, value[1]), name))[1]]
    else:
        out["betas"] = list(check("betas", lambda name, value: V.betas(value, name)))
    out["eps"] = check("eps", V.real, low=0.0, low_open=True)
    out["weight_decay"] = check("weight_decay", V.real, low=0.0)
    out["noise"] = check("noise", V.real, low=0.0)
    if run["dtype"] == "float32" and out["noise"] > _FLOAT32_MAX:
        raise loc.error(f"must be within float32's range with dtype = 'float32', got {out['noise']!r}", "optimizer",
                        i, "noise")
    out["on_drop"] = check("on_drop", V.choice, options=ON_DROP)
    if "batch_size" in point:
        out["batch_size"] = check("batch_size", V.integer, low=1)
    _check_companions(loc, i, out, schedules)
    return out


def _momentum_value(loc: _Locator, i: int, key: str, value: Any, check: Callable[..., Any], high: float,
                    steps: int) -> Any:
    """A momentum (``key`` "momentum") or Adam beta1 (``key`` "betas", its first entry) of one
    optimizer setting: a number in [0, 1), ``"companion"``, or a schedule table
    ``{kind = ..., <parameters>, warmup = ...}`` (normalised as a ``[[schedule]]`` entry)."""
    if value == COMPANION:
        return value
    if not isinstance(value, (str, dict)):
        if key == "betas":
            return value  # a number: checked with beta2 by V.betas
        return check(key, V.real, low=0.0, high=1.0, high_open=True)
    if isinstance(value, str):
        raise loc.error(f"must be a number, {COMPANION!r} or a schedule table {{kind = ..., ...}}, got {value!r}",
                        "optimizer", i, key)
    kinds = S.SCHEDULE_KINDS
    kind = value.get("kind")
    if isinstance(kind, str):
        kind = kind.replace("-", "_")  # the command line's spelling ("one-cycle") too
    if kind not in kinds:
        raise loc.error(f"a schedule table needs kind = one of {', '.join(kinds)}, got {kind!r}", "optimizer", i,
                        key)
    known = set(inspect.signature(kinds[kind]).parameters) | {"kind", "warmup"}
    unknown = sorted(set(value) - known)
    if unknown:
        raise loc.error(f"unknown parameter {unknown[0]!r} of kind {kind!r} (allowed: {', '.join(sorted(known))})",
                        "optimizer", i, key)
    entry = {"kind": kind, "params": {k: v for k, v in value.items() if k not in ("kind", "warmup")},
             "warmup": value.get("warmup", 0)}
    try:
        schedule = build_schedule(entry)
    except (ValueError, TypeError) as exc:
        raise loc.error(f"{exc}", "optimizer", i, key) from None
    if schedule.batch_shape != ():
        raise loc.error(f"a schedule table gives one schedule (list the values of a grid as a list of tables), got "
                        f"batch_shape {schedule.batch_shape}", "optimizer", i, key)
    t = first_step_reaching(schedule.rows(), high, 0, max(steps, 1))
    if t is not None:
        raise loc.error(f"must stay below {high:g} at every step, got a schedule reaching {float(schedule(t))!r} at "
                        f"step {t}", "optimizer", i, key)
    return entry


def momentum_label(value: Any) -> str:
    """A normalised momentum (or beta1) value as labels and tables show it: the number,
    ``"companion"``, or ``kind(parameters)`` of a schedule table."""
    if isinstance(value, dict):
        parts = [f"{k}={v:g}" if _toml_number(v) else f"{k}={v}" for k, v in value["params"].items()]
        if value.get("warmup"):
            parts.append(f"warmup={value['warmup']}")  # (two tables apart only by it are two settings)
        return f"{value['kind']}({','.join(parts)})"
    return f"{value:g}" if _toml_number(value) else str(value)


def build_momentum(value: Any, plan: ChunkPlan, rows: np.ndarray) -> Any:
    """The momentum (or Adam beta1) of one normalised optimizer setting for trajectories
    whose schedules are ``rows`` (indices into the config's schedules) of ``plan``: the
    number, its schedule, or the batch of those schedules' momentum companions."""
    if isinstance(value, dict):
        return build_schedule(value)
    if value == COMPANION:
        return plan.companions[rows]
    return value


def _companion(entry: dict[str, Any]) -> S.Schedule | None:
    """The momentum companion of a normalised schedule entry, or None."""
    if entry["warmup"]:
        return None
    try:
        return build_schedule(entry).momentum
    except AttributeError:
        return None


def _check_companions(loc: _Locator, i: int, opt: Mapping[str, Any], schedules: list[dict[str, Any]]) -> None:
    """Every schedule has a momentum companion where a setting of ``[[optimizer]]`` table i asks
    for it."""
    for key, value in (("momentum", opt["momentum"]), ("betas", opt["betas"][0])):
        if value != COMPANION or key not in RULES_BY_NAME[opt["kind"]].options:
            continue  # not a companion, or an option this rule does not read
        for e in schedules:
            if _companion(e) is None:
                raise loc.error(f"{COMPANION!r} takes each schedule's momentum companion, which only one_cycle "
                                f"and cyclic schedules without warmup have; schedule {e['label']!r} has none",
                                "optimizer", i, key)


def _check_read(loc: _Locator, i: int, spec: Mapping[str, Any]) -> None:
    """Refuse a grid over a key of ``[[optimizer]]`` table i that none of its kinds reads
    (``on_drop`` for Adam, ``momentum`` for GD, ...): its settings would differ in name only.
    (One such value is harmless, and accepted.)"""
    kinds = spec["kind"] if isinstance(spec["kind"], list) else [spec["kind"]]
    rules = [RULES_BY_NAME[k] for k in kinds if isinstance(k, str) and k in RULES_BY_NAME]
    if len(rules) != len(kinds):
        return  # (an unknown kind: _check_optimizer names it)
    for key in ("momentum", "betas", "eps", "on_drop"):
        value = spec.get(key)
        grid = isinstance(value, list) and (key != "betas" or bool(value) and isinstance(value[0], list))
        if grid and not any(r.on_drop if key == "on_drop" else key in r.options for r in rules):
            raise loc.error(f"is a grid over a setting that {', '.join(kinds)} does not read; give one value or remove "
                            "it", "optimizer", i, key)


def _normalise_optimizers(loc: _Locator, specs: Any, run: Mapping[str, Any],
                          schedules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if specs is None:
        specs = [{"kind": "gd"}]
    if isinstance(specs, dict):
        specs = [specs]
    if not isinstance(specs, list) or not specs:
        raise loc.error("must be a list of [[optimizer]] tables", "optimizer")
    out = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict):
            raise loc.error(f"must be a table, got {spec!r}", "optimizer", i)
        _check_keys(loc, "optimizer", i, spec, _OPT_KEYS)
        spec = dict(spec)
        label = spec.pop("label", None)
        if label is not None and not isinstance(label, str):
            raise loc.error(f"must be a string, got {label!r}", "optimizer", i, "label")
        spec.setdefault("kind", "gd")
        _check_read(loc, i, spec)

        def momentum_single(x: Any) -> bool:
            return not isinstance(x, list)  # checked (and explained) by _momentum_value

        def single_of(key: str) -> Callable[[Any], bool]:
            if key == "betas":
                return lambda x: isinstance(x, list) and len(x) == 2 and momentum_single(x[0]) and _toml_number(x[1])
            if key == "momentum":
                return momentum_single
            return _scalar_param

        for point, varying in _expand(loc, "optimizer", i, spec, set(), single_of):
            full = _check_optimizer(loc, i, {**_OPT_DEFAULTS, **point}, run, schedules)
            if full.get("batch_size") == 1:  # the default: left out, as in configs without the key
                del full["batch_size"]
            shown = {k: v for k, v in varying.items() if k != "kind"}
            if "betas" in shown:
                shown["betas"] = "/".join(momentum_label(x) for x in full["betas"])
            if "momentum" in shown:
                shown["momentum"] = momentum_label(full["momentum"])
            base = label or full["kind"]
            if label is None and RULES_BY_NAME[full["kind"]].on_drop and "on_drop" in spec:
                shown.setdefault("on_drop", full["on_drop"])
            full["label"] = _label(base, shown)
            out.append(full)
    for e, lab in zip(out, _unique([e["label"] for e in out])):
        e["label"] = lab
    return out


def _python_values(value: Any) -> Any:
    """A dict config with NumPy numbers and arrays as the Python numbers and lists TOML gives
    (a grid made with ``np.logspace``, a count as ``np.int64``)."""
    if isinstance(value, dict):
        return {k: _python_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_python_values(v) for v in value)
    if isinstance(value, (np.generic, np.ndarray)) and value.dtype.kind in "biuf":
        return value.tolist()
    return value


def parse_config(config: str | os.PathLike[str] | dict[str, Any], *, path: str | None = None) -> Config:
    """The normalised sweep config (a plain dict, JSON-able) from a path, TOML text's
    parsed dict, or a dict; raises ``SweepConfigError`` naming the key (and line).

    >>> parse_config({"run": {"steps": 10}, "curvatures": {"values": [1.0]},
    ...               "schedule": {"kind": "constant", "lr": 0.1}})["optimizers"][0]["kind"]
    'gd'
    """
    text = None
    if isinstance(config, (str, os.PathLike)):
        path = os.fspath(config)
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as exc:
            raise SweepConfigError(f"cannot read config {path!r}: {exc.strerror or exc}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SweepConfigError(f"{path}: not UTF-8 text ({exc})") from None
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # Python 3.10
            import tomli as tomllib
        try:
            table = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SweepConfigError(f"{path}: invalid TOML: {exc}") from None
    elif not isinstance(config, dict):
        raise TypeError(f"config must be a path or a dict, got {type(config).__name__}: {config!r}")
    elif config.get("format") == FORMAT and "schedules" in config:  # already normalised
        return _renormalised(config)
    else:
        table = _python_values(config)
    loc = _Locator(text, path)
    _check_keys(loc, None, None, table, {"out", "run", "curvatures", "schedule", "optimizer"})
    out_dir = table.get("out")
    if out_dir is not None and not isinstance(out_dir, str):
        raise loc.error(f"must be a string, got {out_dir!r}", None, None, "out")

    def need(name: str) -> Any:
        if name not in table:
            raise loc.error(f"missing required table [{name}]" if name != "schedule" else "missing [[schedule]] tables")
        return table[name]

    run = _normalise_run(loc, need("run"))
    curvatures = _normalise_curvatures(loc, need("curvatures"), run["dtype"])
    schedules = _normalise_schedules(loc, need("schedule"))
    optimizers = _normalise_optimizers(loc, table.get("optimizer"), run, schedules)
    return {
        "format": FORMAT,
        "run": run,
        "curvatures": curvatures,
        "schedules": schedules,
        "optimizers": optimizers,
        "out": out_dir,
    }


def _renormalised(config: dict[str, Any]) -> Config:
    """A config given in its normalised form (a sweep's ``config``, ``sweep.json``'s), checked
    before anything is written: its keys, its run table and curvatures as a config's would be
    normalised, each schedule built, each optimizer a table of a known kind (a normalised
    config edited by hand, with ``steps = -5`` or a key missing, failed inside the run after
    its directory was written)."""
    given = cast(Config, json.loads(json.dumps(config)))
    loc = _Locator(None, None)
    missing = {"run", "curvatures", "schedules", "optimizers"} - set(given)
    if missing:
        raise SweepConfigError(f"a normalised sweep config needs the keys {sorted(missing)}")
    run = dict(given["run"]) if isinstance(given["run"], dict) else given["run"]
    if isinstance(run, dict) and run.get("mode") == "expected":
        run.pop("seed", None)  # (normalised to its default; a config in expected mode may not give it)
    again = _normalise_run(loc, run)
    if {k: v for k, v in again.items() if k != "seed"} != {k: v for k, v in given["run"].items() if k != "seed"}:
        raise SweepConfigError(f"run must be a normalised run table, got {given['run']!r}")
    if _normalise_curvatures(loc, {"values": given["curvatures"]}, again["dtype"]) != given["curvatures"]:
        raise SweepConfigError(f"curvatures must be a list of curvatures, got {given['curvatures']!r}")
    for name in ("schedules", "optimizers"):
        entries = given[name]
        if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
            raise SweepConfigError(f"{name} must be a non-empty list of tables, got {entries!r}")
    for i, entry in enumerate(given["schedules"]):
        try:
            build_schedule(entry)
        except (ValueError, TypeError, KeyError) as exc:
            raise SweepConfigError(f"schedules[{i}] is not a normalised schedule ({type(exc).__name__}: {exc})") from None
    for i, entry in enumerate(given["optimizers"]):
        if entry.get("kind") not in RULES_BY_NAME or not isinstance(entry.get("label"), str):
            raise SweepConfigError(f"optimizers[{i}] must be a normalised optimizer table (a known kind and a label), "
                                   f"got {entry!r}")
    return given


def sweep_mode(config: Config) -> str:
    """``"monte_carlo"`` or ``"expected"``: what a normalised config's chunks compute."""
    return config["run"].get("mode", "monte_carlo")


def draws_noise(config: Config) -> bool:
    """Whether a normalised config's chunks draw gradient noise (Monte Carlo with noise)."""
    return sweep_mode(config) == "monte_carlo" and any(float(o.get("noise", 0.0)) > 0.0 for o in config["optimizers"])


def result_arrays(config: Config) -> dict[str, str]:
    """The arrays each chunk of a normalised config computes (beyond its identity and
    ``steps``): name -> ``"trajectory"`` (one value per trajectory) or ``"recorded"``
    (one per trajectory and recorded step), in the order they are kept."""
    expected = sweep_mode(config) == "expected"
    names = {"w": "trajectory"}
    if expected:
        names["second_moment"] = "trajectory"
    if config["run"]["every"] is not None:
        names["loss"] = "recorded"
        if not expected:
            names["displacement"] = "recorded"
        names["lr"] = "recorded"
    return names


def config_hash(normalised: Config) -> str:
    """SHA-256 of everything in the normalised config that shapes the results
    (not ``out``): two runs with the same hash write the same chunks."""
    body = {k: v for k, v in normalised.items() if k != "out"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


# ----------------------------------------------------------------------------- the plan


@dataclasses.dataclass(frozen=True)
class ChunkPlan:
    """How a normalised config is cut into chunks: ``chunks[k]`` is (optimizer index,
    first, end) of chunk ``k``, a run of trajectories of one optimizer setting in the
    flat (schedule, curvature) order ``schedule * n_curvatures + curvature``."""

    config: Config
    hash: str
    curvatures: FloatArray
    schedule: S.Schedule  # the stacked batch, batch_shape (n_schedules,)
    chunks: tuple[tuple[int, int, int], ...]  # (optimizer index, first flat index, end) per chunk

    @functools.cached_property
    def companions(self) -> S.Schedule:
        """The schedules' momentum companions, stacked like ``schedule`` (``parse_config``
        has checked that each has one where an optimizer asks for them)."""
        found = [_companion(e) for e in self.config["schedules"]]
        companions = [c for c in found if c is not None]
        if len(companions) != len(found):
            raise SweepConfigError("'companion' momentum needs one_cycle or cyclic schedules without warmup")
        return S.stack(companions)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(optimizers, schedules, curvatures) of the grid."""
        return (len(self.config["optimizers"]), len(self.config["schedules"]), len(self.curvatures))

    def chunk_trajectory_steps(self, k: int) -> int:
        _, start, stop = self.chunks[k]
        return (stop - start) * self.config["run"]["steps"]


_PLANS: dict[str, ChunkPlan] = {}


def chunk_plan(config: Config) -> ChunkPlan:
    """The ``ChunkPlan`` of a normalised config (the last one is cached: every chunk of a
    sweep, and every Dask task on one worker, asks for the same plan)."""
    key = config_hash(config)
    plan = _PLANS.get(key)
    if plan is None:
        n_opt, n_s, n_c = len(config["optimizers"]), len(config["schedules"]), len(config["curvatures"])
        size = config["run"]["chunk_size"]
        per = n_s * n_c
        chunks = tuple((o, a, min(a + size, per)) for o in range(n_opt) for a in range(0, per, size))
        stacked = S.stack([build_schedule(e) for e in config["schedules"]])
        plan = ChunkPlan(config, key, np.asarray(config["curvatures"], dtype=np.float64), stacked, chunks)
        _PLANS.clear()
        _PLANS[key] = plan
    return plan

