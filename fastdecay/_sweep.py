"""Large simulation sweeps: every schedule × optimizer setting × curvature of a TOML file.

A sweep is a grid. Its trajectories (one per schedule, optimizer setting and
curvature, each the 1-D quadratic f(w) = ½λw²) are cut into chunks of
``run.chunk_size`` trajectories; each chunk is one ``fd.simulate`` call, one
file ``DIR/chunks/chunk-NNNNNN.npz`` written atomically (temporary file, then
``os.replace``) as soon as it is done, and, with a Dask cluster, one task. A
killed sweep loses at most the chunks in flight; ``--resume`` (``resume=True``)
runs only the missing ones. The directory remembers the hash of the normalised
config and refuses results of another one.

Noise is keyed by (seed, trajectory, step, coordinate), where the trajectory's
index is its flat position ``schedule * n_curvatures + curvature`` in the grid
of one optimizer setting (every optimizer setting sees the same noise: common
random numbers). Each chunk passes its first index as ``trajectory_offset``, so
the numbers, and hence the results, do not depend on the chunking, on the
machine or on Dask: a cluster gives bit-identical results to a local run.

The config format (``examples/sweep.toml`` is a documented example)::

    out = "sweep-out"           # optional default output directory

    [run]
    steps = 2000                # updates per trajectory (required)
    every = 20                  # record loss, displacement, lr every k steps (optional)
    chunk_size = 4096           # trajectories per chunk (default 4096)
    seed = 0                    # noise seed (default 0)
    w0 = 1.0                    # starting weight (default 1.0)
    dtype = "float64"           # or "float32"

    [curvatures]                # exactly one of:
    logspace = [-2, 2, 41]      # 10^-2 .. 10^2, 41 values
    # linspace = [0.1, 10, 100] # or values = [0.01, 0.1, 1.0]

    [[schedule]]                # one table per schedule family
    kind = "step"               # any `fastdecay schedule` KIND
    lr = 0.02
    gamma = 0.5
    period = [100, 200]         # a list makes a grid axis
    # label = "step", warmup = 100

    [[optimizer]]               # one table per optimizer family (default: gd)
    kind = "momentum"           # gd, momentum, momentum_lr_in_buffer, nesterov, adam, adamw
    momentum = 0.9
    on_drop = ["keep", "reset", "rescale"]
    # noise = 0.0, weight_decay = 0.0, betas = [0.9, 0.999], eps = 1e-8

In Python, ``fd.sweep(config)`` takes a path or a dict of the same structure:

>>> import fastdecay as fd
>>> cfg = {"run": {"steps": 50, "chunk_size": 4}, "curvatures": {"values": [0.1, 1.0, 10.0]},
...        "schedule": [{"kind": "step", "lr": 0.1, "gamma": 0.5, "period": [10, 20]}]}
>>> res = fd.sweep(cfg, progress=False)
>>> res.w.shape, res.schedules
((1, 2, 3), ['step(period=10)', 'step(period=20)'])
"""

import dataclasses
import hashlib
import inspect
import itertools
import json
import math
import os
import re
import sys
import time

import numpy as np

from . import schedules as S

__all__ = ["sweep", "load_sweep", "describe", "SweepResult", "SweepConfigError", "SchedulerUnreachable", "parse_config", "run_chunk"]

FORMAT = 1
OPTIMIZERS = ("gd", "momentum", "momentum_lr_in_buffer", "nesterov", "adam", "adamw")
ON_DROP = ("keep", "reset", "rescale")
MANIFEST = "sweep.json"
CHUNK_DIR = "chunks"
_CHUNK_NAME = re.compile(r"^chunk-(\d{6})\.npz$")


class SweepConfigError(ValueError):
    """A sweep config (or output directory) that cannot run; the message names the key
    and, for a file, the line."""


class SchedulerUnreachable(ConnectionError):
    """The Dask scheduler did not answer within the connect timeout."""


# ----------------------------------------------------------------------------- config


def _schedule_kinds():
    from .cli import SCHEDULE_KINDS

    return SCHEDULE_KINDS


_LIST_VALUED = {"milestones", "boundaries", "values"}  # parameters whose single value is a list
_RUN_KEYS = {"steps", "every", "chunk_size", "seed", "w0", "dtype"}
_OPT_KEYS = {"kind", "label", "momentum", "betas", "eps", "weight_decay", "on_drop", "noise"}
_OPT_DEFAULTS = {"momentum": 0.9, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0, "on_drop": "keep",
                 "noise": 0.0}


class _Locator:
    """Line numbers of keys in the TOML text (tomllib reports positions only for syntax
    errors); plain ``key = value`` lines under ``[table]`` / ``[[table]]`` headers."""

    _header = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?")

    def __init__(self, text, path):
        self.path = path
        self.lines = text.splitlines() if text is not None else None

    def line(self, table=None, index=None, key=None):
        if self.lines is None:
            return None
        current, count, header_line = None, {}, None
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

    def error(self, problem, table=None, index=None, key=None):
        where = table or ""
        if index is not None:
            where += f"[{index}]"
        if key is not None:
            where += f".{key}" if where else key
        line = self.line(table, index, key)
        prefix = f"{self.path}:{line}: " if self.path and line else (f"{self.path}: " if self.path else "")
        return SweepConfigError(f"{prefix}{where}: {problem}" if where else f"{prefix}{problem}")


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _check_keys(loc, table, index, given, allowed):
    for key in given:
        if key not in allowed:
            raise loc.error(f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})", table, index, key)


def _axis(value, single):
    """The grid axis of a config value: a list of values unless it is one ``single`` value."""
    if single(value):
        return [value]
    if isinstance(value, list) and value and all(single(v) for v in value):
        return value
    return None


def _scalar_param(x):
    return _is_number(x) or isinstance(x, (bool, str))


def _list_param(x):
    return isinstance(x, list) and all(_is_number(v) for v in x)


def _normalise_run(loc, run):
    if not isinstance(run, dict):
        raise loc.error(f"must be a table, got {run!r}", "run")
    _check_keys(loc, "run", None, run, _RUN_KEYS)
    if "steps" not in run:
        raise loc.error("missing required key 'steps' (updates per trajectory)", "run")
    out = {}
    for key, default, low in (("steps", None, 1), ("every", None, 1), ("chunk_size", 4096, 1), ("seed", 0, 0)):
        value = run.get(key, default)
        if value is None:
            out[key] = None
            continue
        if not _is_int(value):
            raise loc.error(f"must be an integer, got {value!r}", "run", None, key)
        if value < low:
            raise loc.error(f"must be >= {low}, got {value!r}", "run", None, key)
        out[key] = value
    if out["every"] is not None and out["every"] > out["steps"]:
        raise loc.error(f"must be <= steps ({out['steps']}), got {out['every']!r}", "run", None, "every")
    if out["steps"] >= 2**32:
        raise loc.error(f"must be < 2**32, got {out['steps']!r}", "run", None, "steps")
    if out["seed"] >= 2**63:
        raise loc.error(f"must be < 2**63, got {out['seed']!r}", "run", None, "seed")
    w0 = run.get("w0", 1.0)
    if not _is_number(w0) or not math.isfinite(w0):
        raise loc.error(f"must be a finite number, got {w0!r}", "run", None, "w0")
    out["w0"] = float(w0)
    dtype = run.get("dtype", "float64")
    if dtype not in ("float64", "float32"):
        raise loc.error(f"must be 'float64' or 'float32', got {dtype!r}", "run", None, "dtype")
    out["dtype"] = dtype
    return out


def _normalise_curvatures(loc, cur):
    if not isinstance(cur, dict):
        raise loc.error(f"must be a table, got {cur!r}", "curvatures")
    _check_keys(loc, "curvatures", None, cur, {"values", "logspace", "linspace"})
    given = [k for k in ("values", "logspace", "linspace") if k in cur]
    if len(given) != 1:
        raise loc.error(f"give exactly one of values, logspace, linspace; got {given or 'none'}", "curvatures")
    key = given[0]
    v = cur[key]
    if key == "values":
        if not isinstance(v, list) or not v or not all(_is_number(x) for x in v):
            raise loc.error(f"must be a non-empty list of numbers, got {v!r}", "curvatures", None, key)
        lam = np.asarray(v, dtype=np.float64)
    else:
        if not (isinstance(v, list) and len(v) == 3 and all(_is_number(x) for x in v) and _is_int(v[2])):
            raise loc.error(f"must be [start, stop, count] with an integer count, got {v!r}", "curvatures", None, key)
        if v[2] < 1:
            raise loc.error(f"count must be >= 1, got {v[2]!r}", "curvatures", None, key)
        lam = (np.logspace if key == "logspace" else np.linspace)(float(v[0]), float(v[1]), int(v[2]))
    if not np.all(np.isfinite(lam)) or np.any(lam < 0):
        raise loc.error(f"curvatures must be finite and >= 0, got {v!r}", "curvatures", None, key)
    return [float(x) for x in lam]


def _label(base, varying):
    if not varying:
        return base
    inner = ", ".join(f"{k}={v:g}" if _is_number(v) else f"{k}={v}" for k, v in varying.items())
    return f"{base}({inner})"


def _expand(loc, table, index, spec, fixed_keys, single_of):
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


def _normalise_schedules(loc, specs):
    if isinstance(specs, dict):
        specs = [specs]
    if not isinstance(specs, list) or not specs:
        raise loc.error("give at least one [[schedule]] table", "schedule")
    kinds = _schedule_kinds()
    out = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict):
            raise loc.error(f"must be a table, got {spec!r}", "schedule", i)
        kind = spec.get("kind")
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
        warmup = spec.get("warmup", 0)
        if not _is_int(warmup) or warmup < 0:
            raise loc.error(f"must be an integer >= 0, got {warmup!r}", "schedule", i, "warmup")
        points = _expand(loc, "schedule", i, spec, {"kind", "label", "warmup"},
                         lambda key: _list_param if key in _LIST_VALUED else _scalar_param)
        for p in params.values():
            if p.default is inspect.Parameter.empty and p.name not in spec:
                raise loc.error(f"missing required key {p.name!r} for kind {kind!r}", "schedule", i)
        for point, varying in points:
            entry = {"kind": kind, "params": point, "warmup": warmup, "label": _label(label, varying)}
            try:
                _build_schedule(entry)
            except (ValueError, TypeError) as exc:
                bad = next((k for k in point if str(exc).startswith(k)), None)
                raise loc.error(str(exc), "schedule", i, bad) from None
            out.append(entry)
    labels = [e["label"] for e in out]
    for k, lab in enumerate(labels):
        if labels.count(lab) > 1:
            labels[k] = f"{lab}#{k}"
    for e, lab in zip(out, labels):
        e["label"] = lab
    return out


def _build_schedule(entry):
    schedule = _schedule_kinds()[entry["kind"]](**entry["params"])
    if entry["warmup"]:
        schedule = S.warmup(schedule, entry["warmup"])
    return schedule


def _check_optimizer(loc, i, point):
    """Range checks of one optimizer setting; the key that is wrong is named."""
    kind = point["kind"]
    m = point["momentum"]
    if not _is_number(m) or not 0.0 <= m < 1.0:
        raise loc.error(f"must be a number in [0, 1), got {m!r}", "optimizer", i, "momentum")
    b = point["betas"]
    if not (isinstance(b, list) and len(b) == 2 and all(_is_number(x) and 0.0 <= x < 1.0 for x in b)):
        raise loc.error(f"must be [beta1, beta2] with each in [0, 1), got {b!r}", "optimizer", i, "betas")
    for key, low_open in (("eps", True), ("weight_decay", False), ("noise", False)):
        v = point[key]
        if not _is_number(v) or not math.isfinite(v) or (v <= 0 if low_open else v < 0):
            raise loc.error(f"must be a finite number {'>' if low_open else '>='} 0, got {v!r}", "optimizer", i, key)
    if point["on_drop"] not in ON_DROP:
        raise loc.error(f"must be one of {ON_DROP}, got {point['on_drop']!r}", "optimizer", i, "on_drop")
    if kind not in OPTIMIZERS:
        raise loc.error(f"unknown kind {kind!r} (one of {', '.join(OPTIMIZERS)})", "optimizer", i, "kind")


def _normalise_optimizers(loc, specs):
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

        def single_of(key):
            if key == "betas":
                return lambda x: isinstance(x, list) and len(x) == 2 and all(_is_number(v) for v in x)
            return _scalar_param

        for point, varying in _expand(loc, "optimizer", i, spec, set(), single_of):
            full = {**_OPT_DEFAULTS, **point}
            _check_optimizer(loc, i, full)
            full = {k: (float(v) if _is_number(v) else v) for k, v in full.items()}
            full["betas"] = [float(x) for x in full["betas"]]
            shown = {k: v for k, v in varying.items() if k != "kind"}
            if "betas" in shown:
                shown["betas"] = "/".join(f"{x:g}" for x in shown["betas"])
            base = label or full["kind"]
            if label is None and full["kind"] in ("momentum", "momentum_lr_in_buffer", "nesterov") and "on_drop" in spec:
                shown.setdefault("on_drop", full["on_drop"])
            full["label"] = _label(base, shown)
            out.append(full)
    return out


def parse_config(config, *, path=None):
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
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib
        try:
            config = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SweepConfigError(f"{path}: invalid TOML: {exc}") from None
    elif not isinstance(config, dict):
        raise TypeError(f"config must be a path or a dict, got {type(config).__name__}: {config!r}")
    elif config.get("format") == FORMAT and "schedules" in config:  # already normalised
        return json.loads(json.dumps(config))
    loc = _Locator(text, path)
    _check_keys(loc, None, None, config, {"out", "run", "curvatures", "schedule", "optimizer"})
    out_dir = config.get("out")
    if out_dir is not None and not isinstance(out_dir, str):
        raise loc.error(f"must be a string, got {out_dir!r}", None, None, "out")

    def need(name):
        if name not in config:
            raise loc.error(f"missing required table [{name}]" if name != "schedule" else "missing [[schedule]] tables")
        return config[name]

    run = _normalise_run(loc, need("run"))
    curvatures = _normalise_curvatures(loc, need("curvatures"))
    schedules = _normalise_schedules(loc, need("schedule"))
    return {
        "format": FORMAT,
        "run": run,
        "curvatures": curvatures,
        "schedules": schedules,
        "optimizers": _normalise_optimizers(loc, config.get("optimizer")),
        "out": out_dir,
    }


def config_hash(normalised):
    """SHA-256 of everything in the normalised config that shapes the results
    (not ``out``): two runs with the same hash write the same chunks."""
    body = {k: v for k, v in normalised.items() if k != "out"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


# ----------------------------------------------------------------------------- the plan


@dataclasses.dataclass(frozen=True)
class _Plan:
    config: dict
    hash: str
    curvatures: np.ndarray
    schedule: S.Schedule  # the stacked batch, batch_shape (n_schedules,)
    chunks: tuple  # (optimizer index, first flat index, end) per chunk

    @property
    def shape(self):
        return (len(self.config["optimizers"]), len(self.config["schedules"]), len(self.curvatures))

    def chunk_trajectory_steps(self, k):
        _, start, stop = self.chunks[k]
        return (stop - start) * self.config["run"]["steps"]


_PLANS = {}


def _plan(config):
    key = config_hash(config)
    plan = _PLANS.get(key)
    if plan is None:
        n_opt, n_s, n_c = len(config["optimizers"]), len(config["schedules"]), len(config["curvatures"])
        size = config["run"]["chunk_size"]
        per = n_s * n_c
        chunks = tuple((o, a, min(a + size, per)) for o in range(n_opt) for a in range(0, per, size))
        stacked = S.stack([_build_schedule(e) for e in config["schedules"]])
        plan = _Plan(config, key, np.asarray(config["curvatures"], dtype=np.float64), stacked, chunks)
        _PLANS.clear()
        _PLANS[key] = plan
    return plan


def run_chunk(config, k, progress=None):
    """Simulate chunk ``k`` of a normalised config; a dict of arrays (what its file holds).

    This is the unit of work of a Dask task; it depends on nothing but its arguments."""
    from .simulate import simulate

    plan = _plan(config)
    o, start, stop = plan.chunks[k]
    run, opt = config["run"], config["optimizers"][o]
    n_c = len(plan.curvatures)
    index = np.arange(start, stop, dtype=np.int64)
    dtype = np.dtype(run["dtype"])
    curvature = plan.curvatures[index % n_c][:, None].astype(dtype)
    schedule = plan.schedule[index // n_c]
    kwargs = {}
    if progress is not None:
        kwargs["progress"] = progress
    res = simulate(
        curvature, schedule, steps=run["steps"], optimizer=opt["kind"], w0=run["w0"], momentum=opt["momentum"],
        betas=tuple(opt["betas"]), eps=opt["eps"], weight_decay=opt["weight_decay"], on_drop=opt["on_drop"],
        noise=opt["noise"], seed=run["seed"], every=run["every"], dtype=dtype, trajectory_offset=start, **kwargs,
    )
    out = {"chunk": np.int64(k), "optimizer": np.int64(o), "start": np.int64(start), "stop": np.int64(stop),
           "w": np.ascontiguousarray(res.w[:, 0])}
    if run["every"] is not None:
        out.update(steps=res.steps, loss=res.loss, displacement=res.displacement, lr=res.lr)
    return out


# ----------------------------------------------------------------------------- files


def _atomic_write(path, write):
    """``write(file)`` into a temporary file beside ``path``, then rename it over ``path``:
    a reader (or a resumed sweep) sees the whole file or none."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _write_chunk(out_dir, arrays):
    path = os.path.join(out_dir, CHUNK_DIR, f"chunk-{int(arrays['chunk']):06d}.npz")
    _atomic_write(path, lambda f: np.savez(f, **arrays))
    return path


def _done_chunks(out_dir):
    folder = os.path.join(out_dir, CHUNK_DIR)
    if not os.path.isdir(folder):
        return set()
    return {int(m.group(1)) for name in os.listdir(folder) if (m := _CHUNK_NAME.match(name))}


def _read_manifest(out_dir):
    path = os.path.join(out_dir, MANIFEST)
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SweepConfigError(f"{path} is unreadable ({exc}); not a fastdecay sweep directory?") from None


def _prepare_out(out_dir, config, digest, resume, config_text):
    """Check ``out_dir`` against the config (nothing written) and return a function that
    creates it. Refuses another config's results, or an existing sweep without resume."""
    manifest = _read_manifest(out_dir) if os.path.isdir(out_dir) else None
    if manifest is not None:
        if manifest.get("config_hash") != digest:
            raise SweepConfigError(
                f"{out_dir} holds the results of another config (hash {str(manifest.get('config_hash'))[:12]}, "
                f"this config {digest[:12]}); choose another --out"
            )
        if not resume:
            raise SweepConfigError(
                f"{out_dir} already holds this sweep ({len(_done_chunks(out_dir))} chunks done); "
                "pass --resume to continue it, or choose another --out"
            )
    elif os.path.exists(out_dir):
        if not os.path.isdir(out_dir):
            raise SweepConfigError(f"--out {out_dir} exists and is not a directory")
        if os.listdir(out_dir):
            raise SweepConfigError(f"--out {out_dir} is not empty and holds no fastdecay sweep; choose another --out")

    def create():
        os.makedirs(os.path.join(out_dir, CHUNK_DIR), exist_ok=True)
        for name in os.listdir(os.path.join(out_dir, CHUNK_DIR)):
            if ".tmp-" in name:  # left by a killed run
                os.remove(os.path.join(out_dir, CHUNK_DIR, name))
        if manifest is None:
            from . import __version__

            doc = {"format": FORMAT, "config_hash": digest, "fastdecay": __version__, "config": config}
            _atomic_write(os.path.join(out_dir, MANIFEST), lambda f: f.write(json.dumps(doc, indent=1).encode()))
            if config_text is not None:
                _atomic_write(os.path.join(out_dir, "config.toml"), lambda f: f.write(config_text.encode()))

    return create


# ----------------------------------------------------------------------------- results


@dataclasses.dataclass
class SweepResult:
    """A finished sweep, the grid axes first: ``w`` has shape
    ``(n_optimizers, n_schedules, n_curvatures)``; with ``every``, ``loss``,
    ``displacement`` and ``lr`` add the recorded steps ``steps`` as a last axis."""

    curvatures: np.ndarray
    schedules: list
    optimizers: list
    w: np.ndarray
    steps: np.ndarray = None
    loss: np.ndarray = None
    displacement: np.ndarray = None
    lr: np.ndarray = None
    config: dict = None
    config_hash: str = None
    out: str = None

    def summary(self):
        """A text table: per optimizer setting and schedule, over the curvatures: the median
        final loss ½λw_N², the largest |w_N|, on how many curvatures the trajectory ended
        closer to the minimum than it started, and how many diverged (|w_N| non-finite or
        above 1e6 |w_0|)."""
        w0 = abs(self.config["run"]["w0"]) if self.config else 1.0
        head = ("optimizer", "schedule", "median loss_N", "max |w_N|", "|w_N| < |w_0|", "diverged")
        rows = []
        lam = self.curvatures
        for o, opt in enumerate(self.optimizers):
            for s, sched in enumerate(self.schedules):
                w = np.abs(self.w[o, s].astype(np.float64))
                finite = np.isfinite(w)
                with np.errstate(over="ignore", invalid="ignore"):
                    loss = 0.5 * lam * w * w
                contracted = int(np.sum(finite & (w < w0)))
                rows.append((opt, sched, f"{np.median(loss):.3e}", f"{np.max(w):.3e}",
                             f"{contracted}/{lam.size}", str(int(np.sum(~finite | (w > 1e6 * max(w0, 1e-300)))))))
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        lines = ["  ".join(h.ljust(wd) if i < 2 else h.rjust(wd) for i, (h, wd) in enumerate(zip(head, widths)))]
        lines.append("  ".join("-" * wd for wd in widths))
        for r in rows:
            lines.append("  ".join(c.ljust(wd) if i < 2 else c.rjust(wd) for i, (c, wd) in enumerate(zip(r, widths))))
        lines.append(f"over {lam.size} curvatures {lam.min():g} .. {lam.max():g}; diverged: |w_N| non-finite "
                     "or > 1e6 |w_0|")
        return "\n".join(lines)

    def plot(self, out_dir, max_figures=8):
        """Figures into ``out_dir``: the schedules, final |w| against curvature per
        optimizer setting, and (with ``every``) loss trajectories at three curvatures."""
        from . import plots

        paths = []
        n = int(self.config["run"]["steps"]) + 1 if self.config else 1000
        schedules = {e["label"]: _build_schedule(e) for e in self.config["schedules"]}
        paths.append(plots.save(plots.lr_curves(schedules, n, title="Sweep schedules"),
                                os.path.join(out_dir, "lr.png")))
        for o, opt in enumerate(self.optimizers[:max_figures]):
            fig = plots.final_vs_curvature(self.curvatures, np.abs(self.w[o]), labels=self.schedules,
                                           title=f"Final |w| against curvature, {opt}",
                                           reference=abs(self.config["run"]["w0"]))
            paths.append(plots.save(fig, os.path.join(out_dir, f"final_w_{o}.png")))
        if self.loss is not None:
            picks = sorted({0, self.curvatures.size // 2, self.curvatures.size - 1})
            for o, opt in enumerate(self.optimizers[:max_figures]):
                view = dataclasses.replace(self, loss=np.moveaxis(self.loss[o][:, picks], 1, 0))
                fig = plots.loss_curves(view, labels=self.schedules,
                                        panels=[f"curvature {self.curvatures[c]:.3g}" for c in picks],
                                        title=f"Loss trajectories, {opt}")
                paths.append(plots.save(fig, os.path.join(out_dir, f"loss_{o}.png")))
        return paths


def _assemble(plan, chunk_arrays):
    """A SweepResult from ``{k: arrays}`` covering every chunk."""
    n_opt, n_s, n_c = plan.shape
    config = plan.config
    dtype = np.dtype(config["run"]["dtype"])
    w = np.empty((n_opt, n_s * n_c), dtype=dtype)
    every = config["run"]["every"]
    series = {}
    steps = None
    for k, (o, start, stop) in enumerate(plan.chunks):
        a = chunk_arrays[k]
        if (int(a["optimizer"]), int(a["start"]), int(a["stop"])) != (o, start, stop):
            raise SweepConfigError(f"chunk {k} holds trajectories {int(a['start'])}..{int(a['stop'])} of optimizer "
                                   f"{int(a['optimizer'])}, expected {start}..{stop} of {o}: a corrupt sweep directory")
        w[o, start:stop] = a["w"]
        if every is not None:
            steps = a["steps"]
            for name in ("loss", "displacement", "lr"):
                if name not in series:
                    series[name] = np.empty((n_opt, n_s * n_c, steps.size), dtype=a[name].dtype)
                series[name][o, start:stop] = a[name]
    shaped = {name: v.reshape(n_opt, n_s, n_c, -1) for name, v in series.items()}
    return SweepResult(
        curvatures=plan.curvatures.copy(), schedules=[e["label"] for e in config["schedules"]],
        optimizers=[e["label"] for e in config["optimizers"]], w=w.reshape(n_opt, n_s, n_c), steps=steps,
        config=config, config_hash=plan.hash, **shaped,
    )


def _save_result(out_dir, res):
    arrays = {"curvatures": res.curvatures, "w": res.w, "schedules": np.array(res.schedules),
              "optimizers": np.array(res.optimizers)}
    for name in ("steps", "loss", "displacement", "lr"):
        if getattr(res, name) is not None:
            arrays[name] = getattr(res, name)
    _atomic_write(os.path.join(out_dir, "results.npz"), lambda f: np.savez(f, **arrays))
    _atomic_write(os.path.join(out_dir, "summary.txt"), lambda f: f.write((res.summary() + "\n").encode()))


def load_sweep(out_dir):
    """The SweepResult of a finished (or partly finished: missing chunks raise) sweep directory."""
    manifest = _read_manifest(out_dir)
    if manifest is None:
        raise SweepConfigError(f"{out_dir} holds no fastdecay sweep ({MANIFEST} is missing)")
    plan = _plan(manifest["config"])
    missing = sorted(set(range(len(plan.chunks))) - _done_chunks(out_dir))
    if missing:
        raise SweepConfigError(f"{out_dir}: {len(missing)} of {len(plan.chunks)} chunks missing "
                               f"(first {missing[0]}); run the sweep again with --resume")
    arrays = {}
    for k in range(len(plan.chunks)):
        with np.load(os.path.join(out_dir, CHUNK_DIR, f"chunk-{k:06d}.npz")) as z:
            arrays[k] = {name: z[name] for name in z.files}
    res = _assemble(plan, arrays)
    res.out = out_dir
    return res


# ----------------------------------------------------------------------------- running


class _Progress:
    """A tqdm bar in trajectory-steps (rate in trajectory-steps/s), or nothing."""

    def __init__(self, total, initial, enabled):
        self.bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, initial=initial, unit="traj-step", unit_scale=True,
                                desc="sweep", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)

    def update(self, n):
        if self.bar is not None and n:
            self.bar.update(n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _connect(scheduler, timeout):
    try:
        from distributed import Client
    except ImportError:
        raise SweepConfigError("--scheduler needs dask.distributed: pip install 'fastdecay[distributed]'") from None
    try:
        return Client(scheduler, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise SchedulerUnreachable(
            f"cannot reach the Dask scheduler at {scheduler!r} within {timeout:g} s ({type(exc).__name__}: {exc})"
        ) from None
    except ValueError as exc:
        raise SweepConfigError(f"--scheduler {scheduler!r} is not a Dask scheduler address ({exc})") from None


def _run_local(plan, todo, on_done, bar):
    for k in todo:
        n = plan.chunks[k][2] - plan.chunks[k][1]
        seen = [0]

        def progress(done, total, n=n, seen=seen):
            bar.update(n * (done - seen[0]))
            seen[0] = done

        arrays = run_chunk(plan.config, k, progress=progress)
        bar.update(n * (plan.config["run"]["steps"] - seen[0]))
        on_done(arrays)


def _run_dask(plan, todo, on_done, bar, client, timeout):
    from distributed import as_completed

    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise SchedulerUnreachable(f"the Dask scheduler {client.scheduler.address} has no workers after {timeout:g} s") \
            from None

    futures = [client.submit(run_chunk, plan.config, k, key=f"fastdecay-sweep-{plan.hash[:16]}-{k}", pure=False)
               for k in todo]
    try:
        for future in as_completed(futures, loop=client.loop):
            arrays = future.result()
            on_done(arrays)
            bar.update(plan.chunk_trajectory_steps(int(arrays["chunk"])))
    except BaseException:
        client.cancel(futures)
        raise


def sweep(config, out=None, *, resume=False, client=None, scheduler=None, connect_timeout=5.0, progress=True,
          plots=None, echo=None):
    """Run a sweep (a TOML path or a dict, see the module docstring) and return its SweepResult.

    - ``out``: results directory (chunks, ``results.npz``, ``summary.txt``, figures);
      default the config's ``out``; ``None`` with no ``out`` in the config runs in
      memory and writes nothing.
    - ``resume``: continue the sweep in ``out`` (same config hash), running only the
      missing chunks. Without it an ``out`` that holds a sweep is refused.
    - ``client``: a ``dask.distributed.Client``; each chunk becomes a task on its
      cluster. ``scheduler`` (an address) connects one, waiting at most
      ``connect_timeout`` seconds (``SchedulerUnreachable`` otherwise).
    - ``progress``: a tqdm bar on stderr in trajectory-steps/s. ``plots``: draw the
      figures into ``out/figures`` (default: when matplotlib is installed and
      ``out`` is given). ``echo``: a stream that receives the summary table.
    """
    text = None
    path = None
    if isinstance(config, (str, os.PathLike)):
        path = os.fspath(config)
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            pass
    normalised = parse_config(config)
    if out is None and normalised["out"] is not None:
        base = os.path.dirname(path) if path else ""
        out = os.path.join(base, normalised["out"])
    digest = config_hash(normalised)
    plan = _plan(normalised)
    create = _prepare_out(os.fspath(out), normalised, digest, resume, text) if out is not None else None
    own_client = None
    if client is None and scheduler is not None:
        client = own_client = _connect(scheduler, connect_timeout)
    try:
        chunks = {}
        done = set()
        if out is not None:
            out = os.fspath(out)
            create()
            done = _done_chunks(out) & set(range(len(plan.chunks)))

        def on_done(arrays):
            k = int(arrays["chunk"])
            if out is not None:
                _write_chunk(out, arrays)
            else:
                chunks[k] = arrays

        todo = [k for k in range(len(plan.chunks)) if k not in done]
        total = sum(plan.chunk_trajectory_steps(k) for k in range(len(plan.chunks)))
        bar = _Progress(total, total - sum(plan.chunk_trajectory_steps(k) for k in todo), progress)
        started = time.perf_counter()
        try:
            if client is not None:
                _run_dask(plan, todo, on_done, bar, client, connect_timeout)
            else:
                _run_local(plan, todo, on_done, bar)
        finally:
            bar.close()
        elapsed = time.perf_counter() - started
    finally:
        if own_client is not None:
            own_client.close()
    if out is not None:
        res = load_sweep(out)
        _save_result(out, res)
    else:
        res = _assemble(plan, chunks)
    if echo is not None:
        work = sum(plan.chunk_trajectory_steps(k) for k in todo)
        rate = f", {work / elapsed:.3g} trajectory-steps/s" if elapsed > 0 and work else ""
        echo.write(f"{len(todo)} of {len(plan.chunks)} chunks run in {elapsed:.1f} s{rate}"
                   f"{' (resumed)' if done else ''}\n\n")
        echo.write(res.summary() + "\n")
    if out is not None:
        if plots is None:
            try:
                import matplotlib  # noqa: F401

                plots = True
            except ImportError:
                plots = False
        if plots:
            figures = res.plot(os.path.join(out, "figures"))
            if echo is not None:
                echo.write(f"\nresults: {os.path.join(out, 'results.npz')}, figures: {', '.join(figures)}\n")
    return res


def describe(config):
    """What a sweep will run, without running it (``fastdecay sweep --dry-run``)."""
    config = parse_config(config)
    plan = _plan(config)
    n_opt, n_s, n_c = plan.shape
    run = config["run"]
    lam = plan.curvatures
    lines = [
        f"{n_opt} optimizer settings x {n_s} schedules x {n_c} curvatures ({lam.min():g} .. {lam.max():g}) "
        f"= {n_opt * n_s * n_c} trajectories x {run['steps']} steps = {n_opt * n_s * n_c * run['steps']:.4g} "
        f"trajectory-steps, {run['dtype']}",
        f"{len(plan.chunks)} chunks of up to {run['chunk_size']} trajectories"
        + (f"; recording every {run['every']} steps" if run["every"] else "; final weights only"),
        f"config hash {plan.hash[:16]}",
        "optimizers: " + ", ".join(e["label"] for e in config["optimizers"]),
        "schedules:  " + ", ".join(e["label"] for e in config["schedules"]),
    ]
    return "\n".join(lines)


def run_cli(args, out=sys.stdout):
    """``fastdecay sweep`` (see ``fastdecay sweep --help``); returns the exit status."""
    config_path = args.config
    out_dir = args.out
    normalised = parse_config(config_path)
    if out_dir is None and normalised["out"] is None:
        out_dir = f"{os.path.splitext(os.path.basename(config_path))[0]}-out"
    if args.dry_run:
        out.write(describe(normalised) + "\n")
        return 0
    try:
        sweep(config_path, out_dir, resume=args.resume, scheduler=args.scheduler,
              connect_timeout=args.connect_timeout, progress=not args.no_progress,
              plots=False if args.no_plots else None, echo=out)
    except SchedulerUnreachable as exc:
        raise SweepConfigError(str(exc)) from None
    return 0
