"""The files of a sweep directory: ``sweep.json`` (the manifest: format, config hash,
the normalised config), ``chunks/chunk-NNNNNN.npz`` (one per chunk), each written
atomically (a temporary file, then a rename)."""

import json
import os
import re

import numpy as np

from .config import FORMAT, SweepConfigError

MANIFEST = "sweep.json"
CHUNK_DIR = "chunks"
_CHUNK_NAME = re.compile(r"^chunk-(\d{6})\.npz$")


def atomic_write(path, write):
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


def write_chunk(out_dir, arrays):
    path = os.path.join(out_dir, CHUNK_DIR, f"chunk-{int(arrays['chunk']):06d}.npz")
    atomic_write(path, lambda f: np.savez(f, **arrays))
    return path


def done_chunks(out_dir):
    folder = os.path.join(out_dir, CHUNK_DIR)
    if not os.path.isdir(folder):
        return set()
    return {int(m.group(1)) for name in os.listdir(folder) if (m := _CHUNK_NAME.match(name))}


def read_manifest(out_dir):
    path = os.path.join(out_dir, MANIFEST)
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SweepConfigError(f"{path} is unreadable ({exc}); not a fastdecay sweep directory?") from None


def prepare_out(out_dir, config, digest, resume, config_text):
    """Check ``out_dir`` against the config (nothing written) and return a function that
    creates it. Refuses another config's results, or an existing sweep without resume."""
    manifest = read_manifest(out_dir) if os.path.isdir(out_dir) else None
    if manifest is not None:
        if manifest.get("config_hash") != digest:
            raise SweepConfigError(
                f"{out_dir} holds the results of another config (hash {str(manifest.get('config_hash'))[:12]}, "
                f"this config {digest[:12]}); choose another --out"
            )
        if not resume:
            raise SweepConfigError(
                f"{out_dir} already holds this sweep ({len(done_chunks(out_dir))} chunks done); "
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
            from .. import __version__

            doc = {"format": FORMAT, "config_hash": digest, "fastdecay": __version__, "config": config}
            atomic_write(os.path.join(out_dir, MANIFEST), lambda f: f.write(json.dumps(doc, indent=1).encode()))
            if config_text is not None:
                atomic_write(os.path.join(out_dir, "config.toml"), lambda f: f.write(config_text.encode()))

    return create

