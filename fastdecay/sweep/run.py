"""Running a sweep: ``sweep`` (locally or on a Dask cluster, chunk by chunk, resumable),
``run_chunk`` (the unit of work of one chunk, a Dask task), ``describe`` (the plan,
without running it) and the ``fastdecay sweep`` command."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from concurrent.futures import CancelledError
from typing import IO, TYPE_CHECKING, Any, Callable, Iterable, Mapping

import numpy as np

from .. import _validate as V
from .._version import NOISE_STREAM
from .config import (Config, SweepConfigError, build_momentum, chunk_plan, config_hash, draws_noise, parse_config,
                     sweep_mode)
from ._store import CHUNK_DIR, chunk_name, prepare_out, read_chunks, record_chunk, write_chunk
from .result import SweepResult, assemble, load_sweep, save_result

if TYPE_CHECKING:
    from distributed import Client

    from .config import ChunkPlan

__all__ = ["sweep", "run_chunk", "describe", "SchedulerUnreachable"]


class SchedulerUnreachable(ConnectionError):
    """The Dask scheduler did not answer within the connect timeout, or was lost mid-sweep."""


def _rectangles(start: int, stop: int, n_c: int) -> list[tuple[int, int, int, int]]:
    """Trajectories ``start .. stop`` of the flat order ``schedule * n_c + curvature`` as at
    most three rectangles ``(first schedule, end, first curvature, end)``, in that order."""
    s0, c0 = divmod(start, n_c)
    s1, c1 = divmod(stop, n_c)
    if s0 == s1:
        return [(s0, s0 + 1, c0, c1)]
    out = []
    if c0:
        out.append((s0, s0 + 1, c0, n_c))
        s0 += 1
    if s1 > s0:
        out.append((s0, s1, 0, n_c))
    if c1:
        out.append((s1, s1 + 1, 0, c1))
    return out


def run_chunk(config: Config, k: int, progress: Callable[[int, int], object] | None = None) -> dict[str, np.ndarray]:
    """Compute chunk ``k`` of a normalised config; a dict of arrays (what its file holds,
    and for a Monte Carlo chunk ``noise_stream``, the stream its noise came from, which the
    sweep checks and drops).

    A Monte Carlo sweep runs ``fd.simulate`` on the chunk's trajectories (gradient noise
    ``noise / sqrt(batch_size)``); an expected-dynamics sweep (``mode = "expected"``) runs
    ``fd.expected_loss`` on them, and stores the mean E w_N as ``w`` and E w_N² as
    ``second_moment``. This is the unit of work of a Dask task; it depends on nothing
    but its arguments. ``progress(steps_done, steps_total)`` is called between parts of
    a Monte Carlo chunk."""
    plan = chunk_plan(config)
    o, start, stop = plan.chunks[k]
    run, opt = config["run"], config["optimizers"][o]
    n_c = len(plan.curvatures)
    batch_size = opt.get("batch_size", 1)
    out = {"chunk": np.int64(k), "optimizer": np.int64(o), "start": np.int64(start), "stop": np.int64(stop)}
    if sweep_mode(config) == "expected":
        from ..expected import expected_loss

        parts = []
        for s0, s1, c0, c1 in _rectangles(start, stop, n_c):
            # (schedules, curvatures) rectangles: each schedule row serves all its curvatures
            # (expected_loss prepares its per-step coefficients once per schedule row)
            lam = np.broadcast_to(plan.curvatures[c0:c1][None, :, None], (s1 - s0, c1 - c0, 1)).copy()
            rows = plan.schedule[np.arange(s0, s1)][:, None]
            momentum = build_momentum(opt["momentum"], plan, np.arange(s0, s1))
            if getattr(momentum, "batch_shape", ()):
                momentum = momentum[:, None]  # the companions of the rectangle's schedules, like the rates
            res = expected_loss(
                lam, rows, steps=run["steps"], optimizer=opt["kind"], momentum=momentum, noise=opt["noise"],
                batch_size=batch_size, w0=run["w0"], w0_var=run.get("w0_var", 0.0), weight_decay=opt["weight_decay"],
                on_drop=opt["on_drop"], every=run["every"],
            )
            part = {"w": res.mean.reshape(-1), "second_moment": res.second_moment.reshape(-1)}
            if res.steps is not None and res.loss is not None:  # (recorded: every is given)
                part.update(steps=res.steps, loss=res.loss.reshape(-1, res.steps.size),
                            lr=np.broadcast_to(rows.table(res.steps), res.loss.shape).reshape(-1, res.steps.size))
            parts.append(part)
        out.update({name: np.concatenate([p[name] for p in parts]) for name in ("w", "second_moment")})
        if run["every"] is not None:
            out.update(steps=parts[0]["steps"], loss=np.concatenate([p["loss"] for p in parts]),
                       lr=np.concatenate([p["lr"] for p in parts]))
        return out
    from ..simulate import simulate

    index = np.arange(start, stop, dtype=np.int64)
    dtype = np.dtype(run["dtype"])
    curvature = plan.curvatures[index % n_c][:, None].astype(dtype)
    schedule = plan.schedule[index // n_c]
    kwargs: dict[str, Any] = {}
    if progress is not None:
        kwargs["progress"] = progress
    noise = opt["noise"] if batch_size == 1 else opt["noise"] / math.sqrt(batch_size)
    schedule_index = index // n_c
    sim = simulate(
        curvature, schedule, steps=run["steps"], optimizer=opt["kind"], w0=run["w0"],
        momentum=build_momentum(opt["momentum"], plan, schedule_index),
        betas=(build_momentum(opt["betas"][0], plan, schedule_index), opt["betas"][1]), eps=opt["eps"],
        weight_decay=opt["weight_decay"], on_drop=opt["on_drop"],
        noise=noise, seed=run["seed"], every=run["every"], dtype=dtype, trajectory_offset=start, **kwargs,
    )
    out["w"] = np.ascontiguousarray(sim.w[:, 0])
    if run["every"] is not None:
        out.update(steps=sim.steps, loss=sim.loss, displacement=sim.displacement, lr=sim.lr)
    out["noise_stream"] = np.int64(NOISE_STREAM)  # checked and dropped by the sweep (not stored)
    return out


def _check_chunk_stream(arrays: dict[str, np.ndarray], config: Config) -> None:
    """Drop a Monte Carlo chunk's record of the noise stream it drew, after checking it:
    a Dask worker with another fastdecay (another stream; none recorded: stream 1) would
    put other numbers into a noisy sweep, unseen."""
    started = int(arrays.pop("noise_stream", 1))
    if draws_noise(config) and started != NOISE_STREAM:
        raise RuntimeError(
            f"chunk {int(arrays['chunk'])} was computed by a fastdecay with another gradient-noise stream "
            f"(stream {started}; this one draws stream {NOISE_STREAM}): every Dask worker must run this "
            "fastdecay version"
        )


class _Progress:
    """A tqdm bar in trajectory-steps (rate in trajectory-steps/s), or nothing."""

    def __init__(self, total: int, initial: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, initial=initial, unit="traj-step", unit_scale=True,
                                desc="sweep", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)

    def update(self, n: int) -> None:
        if self.bar is not None and n:
            self.bar.update(n)

    def note(self, line: str) -> None:
        """A line above the bar (on stderr)."""
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _connect(scheduler: str, timeout: float) -> Client:
    try:
        from distributed import Client
    except ImportError:
        raise SweepConfigError("--scheduler needs dask.distributed: pip install 'fastdecay[distributed]'") from None
    try:
        # the address first: a Client refused halfway through its start waits in its finaliser
        from distributed.comm.addressing import normalize_address, parse_address, parse_host_port

        scheme, location = parse_address(normalize_address(scheduler))
        if scheme in ("tcp", "tls"):
            parse_host_port(location)
    except ValueError as exc:
        raise SweepConfigError(f"--scheduler {scheduler!r} is not a Dask scheduler address ({exc})") from None
    try:
        return Client(scheduler, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise SchedulerUnreachable(
            f"cannot reach the Dask scheduler at {scheduler!r} within {timeout:g} s ({type(exc).__name__}: {exc})"
        ) from None
    except ValueError as exc:
        raise SweepConfigError(f"--scheduler {scheduler!r} is not a Dask scheduler address ({exc})") from None


def _run_local(plan: ChunkPlan, todo: Iterable[int], on_done: Callable[[dict[str, np.ndarray]], None], bar: _Progress
               ) -> None:
    for k in todo:
        n = plan.chunks[k][2] - plan.chunks[k][1]
        seen = [0]

        def progress(done: int, total: int, n: int = n, seen: list[int] = seen) -> None:
            bar.update(n * (done - seen[0]))
            seen[0] = done

        arrays = run_chunk(plan.config, k, progress=progress)
        bar.update(n * (plan.config["run"]["steps"] - seen[0]))
        on_done(arrays)


def _run_dask(plan: ChunkPlan, todo: Iterable[int], on_done: Callable[[dict[str, np.ndarray]], None], bar: _Progress,
              client: Client, timeout: float) -> None:
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
    except (CancelledError, OSError) as exc:
        # the scheduler lost: its tasks cancelled, or the connection a result was coming on
        # closed (distributed's CommClosedError is an OSError); or the tasks cancelled from elsewhere
        raise SchedulerUnreachable(
            f"the sweep's tasks on the Dask scheduler {client.scheduler.address} were cancelled or lost their "
            f"connection ({getattr(exc, 'reason', None) or exc}); the chunks finished are kept: run it again with "
            "--resume"
        ) from None
    except BaseException:
        client.cancel(futures)
        raise


def _verify_for_resume(out: str, plan: ChunkPlan, manifest: dict[str, Any]) -> tuple[set[int], list[str]]:
    """Check every chunk file of a resumed sweep; returns (the good chunks, lines that
    say which chunks are recomputed and why). A complete chunk without a recorded
    checksum (the run was killed between writing it and recording it) gets one."""
    _, digests, bad = read_chunks(out, plan, manifest, keep=False)
    recorded = manifest.get("chunks") or {}
    notes = []
    for k, digest in digests.items():
        if recorded.get(str(k)) != digest:
            record_chunk(out, manifest, k, digest)
    damaged = {k: why for k, why in bad.items() if why != "missing"}
    for k, why in sorted(damaged.items()):
        notes.append(f"sweep: {os.path.join(out, CHUNK_DIR, chunk_name(k))}: {why}; recomputing it")
    return set(digests), notes


def _check_run_options(out: Any, client: Any, scheduler: Any, connect_timeout: Any, echo: Any) -> None:
    """``sweep``'s options other than the config, checked before anything is written."""
    if out is not None:
        if not isinstance(out, (str, os.PathLike)) or not isinstance(os.fspath(out), str):
            raise TypeError(f"out must be a directory path (a str or os.PathLike), got {V.shown(out)}")
        if not os.fspath(out):
            raise SweepConfigError("--out must be a directory path, got ''")
    if client is not None and not (callable(getattr(client, "submit", None))
                                   and callable(getattr(client, "wait_for_workers", None))):
        raise TypeError(f"client must be a dask.distributed.Client (to connect one, pass scheduler=<address>), "
                        f"got {V.shown(client)}")
    if scheduler is not None and not isinstance(scheduler, str):
        raise TypeError(f"scheduler must be a Dask scheduler's address (a str), got {V.shown(scheduler)}")
    V.real("connect_timeout", connect_timeout, low=0.0, low_open=True)
    if echo is not None and not callable(getattr(echo, "write", None)):
        raise TypeError(f"echo must be a text stream (with a write method) or None, got {V.shown(echo)}")


def sweep(config: str | os.PathLike[str] | dict[str, Any], out: str | os.PathLike[str] | None = None, *,
          resume: bool = False, client: Client | None = None, scheduler: str | None = None,
          connect_timeout: float = 5.0, progress: bool = True, plots: bool | None = None, echo: IO[str] | None = None
          ) -> SweepResult:
    """Run a sweep (a TOML path or a dict, see the module docstring) and return its SweepResult.

    - ``out``: results directory (chunks, ``results.npz``, ``summary.txt``, figures);
      default the config's ``out``; ``None`` with no ``out`` in the config runs in
      memory and writes nothing.
    - ``resume``: continue the sweep in ``out`` (same config hash). Every chunk file
      there is checked first (its SHA-256 against the manifest); the missing ones and
      the damaged ones (truncated, empty, garbled: each named on the progress output,
      or in ``echo``, or as a ``RuntimeWarning``) are computed again, the others kept.
      Without ``resume`` an ``out`` that holds a sweep is refused.
    - ``client``: a ``dask.distributed.Client``; each chunk becomes a task on its
      cluster. ``scheduler`` (an address) connects one, waiting at most
      ``connect_timeout`` seconds (``SchedulerUnreachable`` otherwise).
    - ``progress``: a tqdm bar on stderr in trajectory-steps/s. ``plots``: draw the
      figures into ``out/figures`` (default: when matplotlib is installed and
      ``out`` is given). ``echo``: a stream that receives the summary table.

    >>> import os, shutil, tempfile, fastdecay as fd
    >>> cfg = {"run": {"steps": 20, "chunk_size": 2}, "curvatures": {"values": [0.5, 2.0]},
    ...        "schedule": {"kind": "step", "lr": 0.1, "gamma": 0.5, "period": [5, 10]}}
    >>> out = tempfile.mkdtemp()
    >>> res = fd.sweep(cfg, out, progress=False, plots=False)
    >>> sorted(os.listdir(out)), res.w.shape
    (['chunks', 'results.npz', 'summary.txt', 'sweep.json', 'sweep.lock'], (1, 2, 2))
    >>> fd.load_sweep(out).w.round(4).tolist()
    [[[0.6205, 0.1319], [0.4648, 0.0374]]]
    >>> shutil.rmtree(out)
    """
    _check_run_options(out, client, scheduler, connect_timeout, echo)
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
    plan = chunk_plan(normalised)
    out_dir = None if out is None else os.fspath(out)
    create = prepare_out(out_dir, normalised, digest, resume, text) if out_dir is not None else None
    own_client = lock = None
    if client is None and scheduler is not None:
        client = own_client = _connect(scheduler, connect_timeout)
    try:
        chunks: dict[int, dict[str, np.ndarray]] = {}
        done: set[int] = set()
        notes: list[str] = []
        if out_dir is not None and create is not None:  # (create is made exactly when out_dir is given)
            manifest, lock = create()
            if resume:
                done, notes = _verify_for_resume(out_dir, plan, manifest)

        def on_done(arrays: dict[str, np.ndarray]) -> None:
            _check_chunk_stream(arrays, normalised)
            k = int(arrays["chunk"])
            if out_dir is not None:
                record_chunk(out_dir, manifest, k, write_chunk(out_dir, arrays))
            else:
                chunks[k] = arrays

        todo = [k for k in range(len(plan.chunks)) if k not in done]
        total = sum(plan.chunk_trajectory_steps(k) for k in range(len(plan.chunks)))
        bar = _Progress(total, total - sum(plan.chunk_trajectory_steps(k) for k in todo), progress)
        for line in notes:
            if progress:
                bar.note(line)
            elif echo is not None:
                echo.write(line + "\n")
            else:
                warnings.warn(line, RuntimeWarning, stacklevel=2)
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
        if lock is not None:
            lock.close()  # (and with it the lock)
    if out_dir is not None:
        res = load_sweep(out_dir)
        save_result(out_dir, res)
    else:
        res = assemble(plan, chunks)
    if echo is not None:
        work = sum(plan.chunk_trajectory_steps(k) for k in todo)
        rate = f", {work / elapsed:.3g} trajectory-steps/s" if elapsed > 0 and work else ""
        echo.write(f"{len(todo)} of {len(plan.chunks)} chunks run in {elapsed:.1f} s{rate}"
                   f"{' (resumed)' if done else ''}\n\n")
        echo.write(res.summary() + "\n")
    if out_dir is not None:
        no_matplotlib = False
        if plots is None:
            try:
                import matplotlib  # noqa: F401

                plots = True
            except ImportError:
                plots, no_matplotlib = False, True
        if plots:
            figures = res.plot(os.path.join(out_dir, "figures"))
            if echo is not None:
                echo.write(f"\nresults: {os.path.join(out_dir, 'results.npz')}, figures: {', '.join(figures)}\n")
        elif no_matplotlib and echo is not None:
            echo.write(f"\nresults: {os.path.join(out_dir, 'results.npz')}; no figures: matplotlib is not installed "
                       "(pip install 'fastdecay[plot]')\n")
    return res


def describe(config: str | os.PathLike[str] | dict[str, Any]) -> str:
    """What a sweep will run, without running it (``fastdecay sweep --dry-run``)."""
    config = parse_config(config)
    plan = chunk_plan(config)
    n_opt, n_s, n_c = plan.shape
    run = config["run"]
    lam = plan.curvatures
    lines = [
        f"{n_opt} optimizer settings x {n_s} schedules x {n_c} curvatures ({lam.min():g} .. {lam.max():g}) "
        f"= {n_opt * n_s * n_c} trajectories x {run['steps']} steps = {n_opt * n_s * n_c * run['steps']:.4g} "
        f"trajectory-steps, {run['dtype']}",
        ("exact expected dynamics (fd.expected_loss): expected loss, E w and E w^2 per trajectory"
         if sweep_mode(config) == "expected" else "Monte Carlo trajectories (fd.simulate)"),
        f"{len(plan.chunks)} chunks of up to {run['chunk_size']} trajectories"
        + (f"; recording every {run['every']} steps" if run["every"] else "; final weights only"),
        f"config hash {plan.hash[:16]}",
        "optimizers: " + ", ".join(e["label"] for e in config["optimizers"]),
        "schedules:  " + ", ".join(e["label"] for e in config["schedules"]),
    ]
    return "\n".join(lines)


def run_cli(args: argparse.Namespace, out: IO[str] = sys.stdout) -> int:
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
