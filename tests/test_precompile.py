"""``fastdecay compile``: after it, the calls that reach every kernel compile nothing.

Runs in subprocesses with a fresh NUMBA_CACHE_DIR, so the compile is really cold
and the check really loads from that cache (Numba reports a ``numba:compile``
event only when it compiles, not when it loads a cached kernel).
"""

import importlib.util
import os
import subprocess
import sys

import pytest

CHECK = """
from numba.core import event
recorder = event.RecordingListener()
event.register("numba:compile", recorder)
from fastdecay import _precompile
for family in _precompile.FAMILIES.values():
    family()
print(sum(1 for _, e in recorder.buffer if e.is_start))
"""


def _run(args, cache):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=600)


def test_compile_fills_the_cache_every_family_then_loads(tmp_path):
    done = _run(["-m", "fastdecay", "compile", "--jobs", "2"], tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for family in ("schedules", "updates", "simulate float64", "simulate float32", "all kernels cached"):
        assert any(line.startswith(family) for line in lines), done.stdout
    assert any(tmp_path.rglob("*.nbc")), "no kernel written to NUMBA_CACHE_DIR"
    check = _run(["-c", CHECK], tmp_path)
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "0", f"kernels compiled after `fastdecay compile`: {check.stdout}"


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed here")
def test_compile_gpu_without_cupy_says_what_to_install(tmp_path):
    done = _run(["-m", "fastdecay", "compile", "--gpu"], tmp_path)
    assert done.returncode == 2
    assert "fastdecay[gpu]" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not any(tmp_path.rglob("*.nbc")), "--gpu without CuPy must refuse before compiling anything"


STAMPED = """
from numba.core import event
recorder = event.RecordingListener()
event.register("numba:compile", recorder)
import fastdecay._cpu.simulate as S
assert type(S.prepare_rates._cache._impl.locator).__name__.startswith("_FastdecayPackage")
print(sum(1 for _, e in recorder.buffer if e.is_start))
"""


def test_editing_an_inlined_module_recompiles_the_kernels_that_inline_it(tmp_path):
    """The simulation kernels inline ``_cpu/rules.py``: an edit there (not in
    ``simulate.py``) must make them recompile rather than load the old code; an
    unchanged tree loads."""
    import shutil

    import fastdecay

    tree = tmp_path / "tree"
    shutil.copytree(os.path.dirname(fastdecay.__file__), tree / "fastdecay",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(tree))

    def compiles():
        done = subprocess.run([sys.executable, "-c", STAMPED], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=600)
        assert done.returncode == 0, done.stderr
        return int(done.stdout.split()[-1])

    assert compiles() > 0          # cold
    assert compiles() == 0         # loaded from the cache
    rules = tree / "fastdecay" / "_cpu" / "rules.py"
    rules.write_text(rules.read_text() + "\n# an edit\n")
    assert compiles() > 0          # the edit reaches the kernels of simulate.py
    assert compiles() == 0
