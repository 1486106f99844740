"""The files of a sweep directory: ``sweep.json`` (the manifest: format, config hash,
the normalised config, and the SHA-256 of every chunk file written), and
``chunks/chunk-NNNNNN.npz`` (one per chunk), each written atomically (a temporary
file, then a rename). A resumed sweep and ``load_sweep`` check every chunk against its
checksum before they trust it."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from typing import IO, Any, Callable, Mapping

import numpy as np

from .._version import NOISE_STREAM, __version__
from .config import FORMAT, ChunkPlan, Config, SweepConfigError, draws_noise, result_arrays

MANIFEST = "sweep.json"
LOCK = "sweep.lock"  # held by the run writing the directory (``_lock``)
CHUNK_DIR = "chunks"
_CHUNK_NAME = re.compile(r"^chunk-(\d{6})\.npz$")


def atomic_write(path: str, write: Callable[[IO[bytes]], object]) -> None:
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


def chunk_name(k: int) -> str:
    return f"chunk-{k:06d}.npz"


def write_chunk(out_dir: str, arrays: Mapping[str, Any]) -> str:
    """Write one chunk's arrays atomically; returns the SHA-256 of the file's bytes (what
    ``record_chunk`` puts in the manifest)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    atomic_write(os.path.join(out_dir, CHUNK_DIR, chunk_name(int(arrays["chunk"]))), lambda f: f.write(data))
    return hashlib.sha256(data).hexdigest()


def record_chunk(out_dir: str, manifest: dict[str, Any], k: int, digest: str) -> None:
    """Add chunk ``k``'s checksum to the manifest and rewrite it atomically. A chunk
    file is written before its checksum: a run killed in between leaves a complete
    file without a checksum, which ``read_chunk`` checks by its content instead."""
    manifest.setdefault("chunks", {})[str(k)] = digest
    write_manifest(out_dir, manifest)


def done_chunks(out_dir: str) -> set[int]:
    folder = os.path.join(out_dir, CHUNK_DIR)
    if not os.path.isdir(folder):
        return set()
    return {int(m.group(1)) for name in os.listdir(folder) if (m := _CHUNK_NAME.match(name))}


class BadChunk(Exception):
    """A chunk file that is missing or cannot be trusted; the message says why."""


def _check_content(plan: ChunkPlan, k: int, arrays: Mapping[str, np.ndarray]) -> str | None:
    """Why the arrays of chunk ``k`` do not fit the plan, or None."""
    o, start, stop = plan.chunks[k]
    run = plan.config["run"]
    try:
        ident = tuple(int(arrays[name]) for name in ("chunk", "optimizer", "start", "stop"))
    except (KeyError, TypeError, ValueError) as exc:
        return f"no chunk identity ({type(exc).__name__}: {exc})"
    if ident != (k, o, start, stop):
        return f"holds trajectories {ident[2]}..{ident[3]} of optimizer {ident[1]}, expected {start}..{stop} of {o}"
    dtype = np.dtype(run["dtype"])
    n_rec = run["steps"] // run["every"] + 1 if run["every"] is not None else 0
    shapes = {name: ((stop - start,) if kind == "trajectory" else (stop - start, n_rec), dtype)
              for name, kind in result_arrays(plan.config).items()}
    if n_rec:
        shapes["steps"] = ((n_rec,), np.dtype(np.int64))
    for name, (shape, dtype) in shapes.items():
        a = arrays.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            got = "nothing" if a is None else f"{a.dtype} {a.shape}"
            return f"array {name!r} should be {dtype} {shape}, got {got}"
    return None


def read_chunk(out_dir: str, k: int, plan: ChunkPlan, manifest: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], str]:
    """The arrays of chunk ``k`` and the SHA-256 of its file, or ``BadChunk``.

    A checksum recorded in the manifest must match the file's bytes; a file without one
    (written by a run killed before it recorded the checksum, or by a sweep from before
    checksums were kept) must load and hold exactly the trajectories and shapes that
    chunk ``k`` of ``plan`` should."""
    path = os.path.join(out_dir, CHUNK_DIR, chunk_name(k))
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise BadChunk("missing") from None
    except OSError as exc:
        raise BadChunk(f"unreadable ({exc.strerror or exc})") from None
    digest = hashlib.sha256(data).hexdigest()
    recorded = (manifest.get("chunks") or {}).get(str(k))
    if not data:
        raise BadChunk("empty (0 bytes)")
    if recorded is not None and recorded != digest:
        raise BadChunk(f"corrupt: its SHA-256 {digest[:12]}... is not the {recorded[:12]}... recorded when it "
                       f"was written ({len(data)} bytes now; truncated or overwritten)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    except Exception as exc:  # whatever a damaged .npz raises: BadZipFile, EOFError, ValueError, OSError, ...
        raise BadChunk(f"unreadable as .npz ({type(exc).__name__}: {exc})") from None
    problem = _check_content(plan, k, arrays)
    if problem is not None:
        raise BadChunk(f"wrong content: {problem}")
    return arrays, digest


def read_chunks(out_dir: str, plan: ChunkPlan, manifest: Mapping[str, Any], *, keep: bool = True
                ) -> tuple[dict[int, dict[str, np.ndarray]], dict[int, str], dict[int, str]]:
    """Every chunk of ``plan``: ``(arrays, digests, bad)`` with ``arrays[k]`` (only with
    ``keep``) and ``digests[k]`` of each good chunk and ``bad[k]`` the reason for each
    other one."""
    arrays, digests, bad = {}, {}, {}
    for k in range(len(plan.chunks)):
        try:
            a, digests[k] = read_chunk(out_dir, k, plan, manifest)
        except BadChunk as exc:
            bad[k] = str(exc)
            continue
        if keep:
            arrays[k] = a
    return arrays, digests, bad


def describe_bad(bad: Mapping[int, str], limit: int = 5) -> str:
    """``chunk-000003.npz (missing), chunk-000007.npz (empty (0 bytes))`` for the first
    ``limit`` bad chunks, and how many more."""
    shown = [f"{chunk_name(k)} ({why})" for k, why in sorted(bad.items())[:limit]]
    more = len(bad) - limit
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def write_manifest(out_dir: str, manifest: Mapping[str, Any]) -> None:
    atomic_write(os.path.join(out_dir, MANIFEST), lambda f: f.write(json.dumps(manifest, indent=1).encode()))


def read_manifest(out_dir: str) -> Any:
    path = os.path.join(out_dir, MANIFEST)
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SweepConfigError(f"{path} is unreadable ({exc}); not a fastdecay sweep directory?") from None


def _check_noise_stream(out_dir: str, manifest: dict[str, Any], config: Config) -> None:
    """Refuse to resume a noisy Monte Carlo sweep begun under another noise stream: its
    finished chunks drew other numbers than new ones would (a directory without the
    record was begun under stream 1)."""
    started = manifest.get("noise_stream", 1)
    if draws_noise(config) and started != NOISE_STREAM:
        raise SweepConfigError(
            f"{out_dir} holds a noisy sweep begun by a fastdecay with another gradient-noise stream (stream "
            f"{started}; this version draws stream {NOISE_STREAM}): its chunks and new ones would not be one "
            "sample; run the sweep again into another --out"
        )


def _lock(out_dir: str) -> IO[bytes] | None:
    """The open lock file of ``out_dir``, held (an exclusive ``flock``) until it is closed: one
    run at a time writes a sweep directory (a second one would delete the first's chunk files
    in flight as a killed run's leftovers). None where the system has no ``fcntl``."""
    try:
        import fcntl
    except ImportError:  # (Windows: no lock)
        return None
    f = open(os.path.join(out_dir, LOCK), "ab")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise SweepConfigError(f"another fastdecay sweep is running in {out_dir}; wait for it to end (or stop it), "
                               "then run again with --resume") from None
    return f


def _started_only(out_dir: str) -> bool:
    """Whether ``out_dir`` holds only what a sweep writes before its manifest: its chunk folder
    (empty, or with a killed write's temporary files), its lock and temporary files (a run
    killed, or stopped with Ctrl-C, while it wrote its first manifest: a large config's takes a
    while). Such a directory is the start of a sweep, and a run (resumed or not) takes it over;
    chunk files come only after the manifest."""
    for name in os.listdir(out_dir):
        if name == CHUNK_DIR and os.path.isdir(os.path.join(out_dir, name)):
            if any(".tmp-" not in inner for inner in os.listdir(os.path.join(out_dir, name))):
                return False
        elif name != LOCK and ".tmp-" not in name:
            return False
    return True


def prepare_out(out_dir: str, config: Config, digest: str, resume: bool, config_text: str | None
                ) -> Callable[[], tuple[dict[str, Any], IO[bytes] | None]]:
    """Check ``out_dir`` against the config (nothing written) and return a function that
    creates it and takes its lock (``_lock``). Refuses another config's results, or an
    existing sweep without resume."""
    manifest = read_manifest(out_dir) if os.path.isdir(out_dir) else None
    if manifest is not None:
        if manifest.get("config_hash") != digest:
            raise SweepConfigError(
                f"{out_dir} holds the results of another config (hash {str(manifest.get('config_hash'))[:12]}, "
                f"this config {digest[:12]}); choose another --out"
            )
        if not resume:
            raise SweepConfigError(
                f"{out_dir} already holds this sweep ({len(done_chunks(out_dir))} chunk files, each checked on "
                "resume); pass --resume to continue it, or choose another --out"
            )
        _check_noise_stream(out_dir, manifest, config)
    elif os.path.exists(out_dir):
        if not os.path.isdir(out_dir):
            raise SweepConfigError(f"--out {out_dir} exists and is not a directory")
        if os.listdir(out_dir) and not _started_only(out_dir):
            lock = _lock(out_dir) if os.path.exists(os.path.join(out_dir, LOCK)) else None
            if lock is not None:  # (_lock refuses while a run that is starting there holds it)
                lock.close()
            raise SweepConfigError(f"--out {out_dir} is not empty and holds no fastdecay sweep; choose another --out")

    def create() -> tuple[dict[str, Any], IO[bytes] | None]:
        """Create the directory (or tidy a resumed one) and lock it; returns (its manifest,
        the lock, to close when the run ends)."""
        try:
            os.makedirs(os.path.join(out_dir, CHUNK_DIR), exist_ok=True)
        except OSError as exc:
            raise SweepConfigError(f"--out {out_dir} cannot be created: {exc.strerror or exc}") from None
        lock = _lock(out_dir)
        try:
            if manifest is None and read_manifest(out_dir) is not None:  # (a run that started meanwhile)
                raise SweepConfigError(f"another fastdecay sweep started in {out_dir} meanwhile; run again with "
                                       "--resume to continue it")
            for folder in (out_dir, os.path.join(out_dir, CHUNK_DIR)):
                for name in os.listdir(folder):
                    if ".tmp-" in name:  # left by a killed run (a live one holds the lock)
                        os.remove(os.path.join(folder, name))
            if manifest is not None:
                return manifest, lock
            doc = {"format": FORMAT, "config_hash": digest, "fastdecay": __version__, "noise_stream": NOISE_STREAM,
                   "config": config, "checksum": "sha256", "chunks": {}}
            write_manifest(out_dir, doc)
            if config_text is not None:
                atomic_write(os.path.join(out_dir, "config.toml"), lambda f: f.write(config_text.encode()))
            return doc, lock
        except BaseException:
            if lock is not None:
                lock.close()
            raise

    return create

