"""``fastdecay compile``: after it, the calls that reach every kernel compile nothing.

Runs in subprocesses, so the check really loads from the cache (Numba reports a
``numba:compile`` event only when it compiles, not when it loads a cached
kernel). The command over every family runs on the package's own cache, as a
user's does: what it compiles there the rest of the suite loads instead of
compiling again (the suite's cold start is every kernel once). A cold compile
into a fresh NUMBA_CACHE_DIR, worker processes writing it, is checked on the
expected-dynamics family alone (the shortest to compile).
"""

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
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

# every kernel the CPU modules declare with its signature, whichever calls reach it: the ones
# compiled at import (importing each module) and the ones compiled at their first call (forced
# here); the names of those that compiled rather than load from the cache
DECLARED = """
import importlib, pkgutil
from numba.core import event
recorder = event.RecordingListener()
event.register("numba:compile", recorder)
from fastdecay import _cpu
from fastdecay._cpu.parallel import Kernel
for info in pkgutil.iter_modules(_cpu.__path__):
    module = importlib.import_module(f"fastdecay._cpu.{info.name}")
    for value in vars(module).values():
        kernel = value.dispatcher if isinstance(value, Kernel) else value
        if isinstance(kernel, _cpu.CompiledAtFirstCall):
            kernel.dispatcher()
print(sorted({e.data["dispatcher"].py_func.__qualname__ for _, e in recorder.buffer if e.is_start}))
"""

# public calls of 16-bit storage (which ``fastdecay compile`` reaches through the launcher, not
# through these calls): they load the kernels that family compiled
CALLS_16BIT = """
import ml_dtypes
import numpy as np
import fastdecay as fd
for dtype in (np.float16, ml_dtypes.bfloat16):
    w = np.ones(9, dtype)
    for state in (np.float32, ml_dtypes.bfloat16):
        fd.adamw_step(w, w.copy(), np.zeros(9, state), np.zeros(9, state), step=0, lr=0.1,
                      state_dtype=np.dtype(state).name)
    fd.sgd_step(w, w.copy(), step=1, lr=0.1, compensated=True, compensation_buffer=np.zeros(9, dtype))
"""


def _run(args, cache):
    """``python args`` with NUMBA_CACHE_DIR=cache (None: the package's own cache)."""
    env = dict(os.environ)
    env.pop("NUMBA_CACHE_DIR", None)
    if cache is not None:
        env["NUMBA_CACHE_DIR"] = str(cache)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=900)


def test_compile_fills_the_cache_every_family_then_loads():
    done = _run(["-m", "fastdecay", "compile", "--jobs", "2"], None)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for family in ("schedules", "updates", "updates bfloat16", "updates float16", "simulate float64",
                   "simulate float32", "simulate planning", "expected", "all kernels cached"):
        assert any(re.fullmatch(rf"{family}\s+[\d.]+ s.*", line) for line in lines), (family, done.stdout)
    check = _run(["-c", CHECK.replace("print(sum", CALLS_16BIT + "print(sum")], None)
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "0", f"kernels compiled after `fastdecay compile`: {check.stdout}"
    declared = _run(["-c", DECLARED], None)
    assert declared.returncode == 0, declared.stderr
    assert declared.stdout.strip() == "[]", f"declared kernels `fastdecay compile` left out: {declared.stdout}"


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed here")
def test_compile_gpu_without_cupy_says_what_to_install(tmp_path):
    done = _run(["-m", "fastdecay", "compile", "--gpu"], tmp_path)
    assert done.returncode == 2
    assert "fastdecay[gpu]" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not any(tmp_path.rglob("*.nbc")), "--gpu without CuPy must refuse before compiling anything"


COLD = """
from fastdecay import _precompile
_precompile.FAMILIES = {"expected": _precompile.FAMILIES["expected"]}
print(_precompile.precompile(jobs=2))
"""

# (a step schedule, as the family's calls take: a run after the family's cold compile loads everything)
STAMPED = """
import sys
from numba.core import event
recorder = event.RecordingListener()
event.register("numba:compile", recorder)
import numpy as np, fastdecay as fd
import fastdecay._cpu.expected as E
assert type(E.propagate._cache._impl.locator).__name__.startswith("_FastdecayPackage")
res = fd.expected_loss(np.logspace(-1, 2, 7), fd.step(0.05, 0.5, 20), steps=60, optimizer="momentum",
                       momentum=0.9, noise=0.3, every=1)
np.save(sys.argv[1], res.loss)
print(sum(1 for _, e in recorder.buffer if e.is_start))
"""


def _in_tree(tmp_path, tree, code, *args):
    """``python -c code args`` in a fresh interpreter on the package in ``tree`` and the cache
    ``tmp_path/cache``; its last line of output."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(tree))
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout.split("\n")[-2]


def _stamped(tmp_path, tree):
    """Runs ``STAMPED`` (import the expected-dynamics kernels, whose signatures are explicit, so
    importing compiles or loads them; then a noisy momentum run) on the package in ``tree``: the
    kernels it compiled, and the losses."""
    out = tmp_path / "losses.npy"
    compiled = int(_in_tree(tmp_path, tree, STAMPED, str(out)))
    return compiled, np.load(out)


def test_a_cold_compile_a_cached_kernel_and_a_compile_after_an_edit_give_the_same_bits(tmp_path):
    """On a copy of the package and a cache of its own: ``fastdecay compile``'s expected-dynamics
    family into the empty cache (a worker process writes it), then ``STAMPED`` three times. The
    first loads what the worker compiled and compiles nothing (a sweep's Dask workers load what
    the client compiled). Then an edit to ``_cpu/rules.py``, which the expected-dynamics kernels
    inline (as the simulations and the fused updates do), not ``expected.py``: the second
    compiles them again rather than load the old code, the third loads. The edit is a comment,
    so all three give the same bits: a fresh compile and a cached kernel agree. (With fused
    multiply-adds left to LLVM, a fresh compile and Numba's cached object code once fused
    differently, 1 ulp apart: ``test_no_kernel_leaves_multiply_adds_to_the_compiler`` keeps that
    option out.) One test, not two: a cold compile of these kernels takes ~10 s."""
    import shutil

    import fastdecay

    tree = tmp_path / "tree"
    shutil.copytree(os.path.dirname(fastdecay.__file__), tree / "fastdecay",
                    ignore=shutil.ignore_patterns("__pycache__"))
    assert "expected" in _in_tree(tmp_path, tree, COLD)
    assert any((tmp_path / "cache").rglob("*.nbc")), "no kernel written to NUMBA_CACHE_DIR"
    runs = [_stamped(tmp_path, tree)]
    rules = tree / "fastdecay" / "_cpu" / "rules.py"
    rules.write_text(rules.read_text() + "\n# an edit\n")
    runs += [_stamped(tmp_path, tree), _stamped(tmp_path, tree)]
    assert [compiled > 0 for compiled, _ in runs] == [False, True, False], [compiled for compiled, _ in runs]
    for _, losses in runs[1:]:
        np.testing.assert_array_equal(losses, runs[0][1])


def test_no_kernel_leaves_multiply_adds_to_the_compiler():
    """No Numba decorator or call in the package passes ``fastmath``: with
    ``fastmath={"contract"}`` LLVM chose which a*b + c to fuse differently in a fresh
    compile and in the object code Numba caches (a sweep's workers and its client 1 ulp
    apart on AdamW), and differently from torch and the CUDA build. Where a rule wants one
    rounding it calls ``fma`` (``fastdecay/_cpu/intrinsics.py``)."""
    import ast

    import fastdecay

    package = pathlib.Path(fastdecay.__file__).parent
    files = sorted(package.rglob("*.py"))
    assert package / "_cpu" / "rules.py" in files
    passing = [f"{path.relative_to(package)}:{node.lineno}"
               for path in files for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, ast.Call) and any(k.arg == "fastmath" for k in node.keywords)]
    assert not passing, f"fastmath passed at {passing}"


# Kernels that a caller specialises on purpose for a constant flag (each case a loop of its own,
# with the untaken branches dropped before LLVM sees them), beside callers that pass the flag at run
# time: the element rules, the fused updates' blocks and pair loops, the step loops' own copies.
SPECIALISED_BY_FLAG = {
    "sgd_scalars", "adam_scalars", "adam_scalars_biased", "lion_scalars", "sgd_element", "adam_element",
    "_sgd_sim", "_adam_sim", "_sgd_block", "_adam_block", "_lion_block", "_sgd_pair_loop",
    "_sgd_per_trajectory_loop", "_lion_coords",
}


def _kernel_calls_with_literals(package):
    """[(callee, argument position, what is passed, file:line)] for the calls inside the CPU kernels
    to a kernel Numba compiles on its own (not inlined) that pass an integer literal (a number, a
    module constant, or a variable that starts as one, such as a loop's ``s = 0``), or a literal
    True / False at a position where another call passes a run-time value."""
    import ast
    import collections

    def kind(decorator):
        call = decorator if isinstance(decorator, ast.Call) else None
        name = getattr(call.func if call else decorator, "id", None)
        if name not in ("njit", "compiled_at_first_call"):
            return None
        inline = call is not None and any(k.arg == "inline" and getattr(k.value, "value", None) == "always"
                                          for k in call.keywords)
        return "inline" if inline else "called"

    trees = {path: ast.parse(path.read_text()) for path in sorted((package / "_cpu").glob("*.py"))
             if path.name != "__init__.py"}
    # functions compiled where a kernel is made: njit(signature, ...)(function), or (a if c else b)
    compiled_later = {name.id for tree in trees.values() for call in ast.walk(tree)
                      if isinstance(call, ast.Call) and isinstance(call.func, ast.Call)
                      and getattr(call.func.func, "id", None) == "njit" and call.args
                      for name in ast.walk(call.args[0]) if isinstance(name, ast.Name)}
    called, constants, kernels = set(), {}, []
    for path, tree in trees.items():
        for node in tree.body:
            if isinstance(node, ast.Assign):  # module constants: NAME = 3, A, B = 0, 1
                names = node.targets[0].elts if isinstance(node.targets[0], ast.Tuple) else node.targets
                values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
                constants.update({n.id: v.value for n, v in zip(names, values) if isinstance(n, ast.Name)
                                  and isinstance(v, ast.Constant) and isinstance(v.value, int)})
            if isinstance(node, ast.FunctionDef):
                kinds = {kind(d) for d in node.decorator_list}
                if "called" in kinds:
                    called.add(node.name)
                # a kernel's body: a decorated function, one compiled where a kernel is made, or one
                # defined inside another (the kernels made by closures, the overloads' implementations)
                kernels += [(path, f) for f in ast.walk(node) if isinstance(f, ast.FunctionDef)
                            and (f is not node or kinds & {"inline", "called"} or f.name in compiled_later)]
    passed = collections.defaultdict(list)
    for path, kernel in kernels:
        starts_as_int = {n.targets[0].id for n in ast.walk(kernel) if isinstance(n, ast.Assign)
                         and isinstance(n.targets[0], ast.Name) and isinstance(n.value, ast.Constant)
                         and type(n.value.value) is int}
        for call in ast.walk(kernel):
            if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) in called):
                continue
            for i, arg in enumerate(call.args):
                value = (arg.value if isinstance(arg, ast.Constant)
                         else constants.get(arg.id) if isinstance(arg, ast.Name) else None)
                what = ("run time" if value is None or not isinstance(value, int)
                        else f"literal {value}" if isinstance(value, bool)
                        else f"integer {ast.unparse(arg)}")
                if what == "run time" and isinstance(arg, ast.Name) and arg.id in starts_as_int:
                    what = f"{arg.id}, which starts as an integer literal"
                passed[call.func.id, i].append((what, f"{path.name}:{call.lineno}"))
    found = []
    for (callee, i), sites in sorted(passed.items()):
        run_time = any(what == "run time" for what, _ in sites)
        for what, where in sites:
            on_purpose = what.startswith("literal") and (not run_time or callee in SPECIALISED_BY_FLAG)
            if what != "run time" and not on_purpose:
                found.append((callee, i, what, where))
    return found


def test_no_kernel_call_compiles_a_kernel_again_for_a_literal():
    """Numba compiles a function once for each literal argument it is called with (``f(x, 0)`` and
    ``f(x, n)`` are two compilations; so is ``s = 0`` then ``f(x, s)`` in a loop that advances s,
    typed first as the literal), so a literal passed to the step loops compiled them twice over
    (``fastdecay compile`` took a fifth more CPU time with such copies: bench/RESULTS.md, "A cold
    compile without second copies"). Kernels pass NumPy scalars there (``np.int64(0)``, ``TILE``, ``RUN_TRUE``); a flag
    passed as a literal on purpose, for a loop of that case, is in SPECIALISED_BY_FLAG."""
    import fastdecay

    package = pathlib.Path(fastdecay.__file__).parent
    found = _kernel_calls_with_literals(package)
    assert not found, "calls that compile a kernel again for a literal argument: " + "; ".join(
        f"{callee} argument {i} given {what} at {where}" for callee, i, what, where in found)


def test_the_literal_check_finds_the_calls_it_is_about(tmp_path):
    """The check above on a copy of the kernels with a literal put back in each way it looks for."""
    import shutil

    import fastdecay

    tree = tmp_path / "fastdecay"
    shutil.copytree(pathlib.Path(fastdecay.__file__).parent / "_cpu", tree / "_cpu",
                    ignore=shutil.ignore_patterns("__pycache__"))
    simulate = tree / "_cpu" / "simulate.py"
    for before, after, want in [
            ("lam, TILE, b_lo", "lam, TILE_ELEMENTS, b_lo", ("simulate_shared_steps", 5, "integer TILE_ELEMENTS")),
            ("    s = np.int64(0)\n    while", "    s = 0\n    while", ("simulate_shared_steps", 11, "s, which")),
            ("out, np.int64(LR))", "out, LR)", ("_shared_rates", 5, "integer LR")),
            ("sigma, RUN_TRUE, rec_j", "sigma, True, rec_j", ("simulate_generic_step", 27, "literal True")),
            # (in a kernel made by njit(...)(a if c else b): the grouped ones)
            ("RUN_FALSE, RUN_FALSE, RUN_FALSE, table", "False, False, False, table",
             ("_shared_tile_steps", 12, "literal False"))]:
        text = simulate.read_text()
        assert before in text
        simulate.write_text(text.replace(before, after, 1))
        found = _kernel_calls_with_literals(tree)
        assert any(f[:2] == want[:2] and f[2].startswith(want[2]) for f in found), (want, found)
        simulate.write_text(text)
    assert not _kernel_calls_with_literals(tree)


PRIVATE_CACHE = """
import warnings
from numba.core import caching

def refuse(self):
    raise OSError("read-only")

# the package's directory and the user's cache directory cannot be written
caching.InTreeCacheLocator.ensure_cache_path = refuse
caching.UserWideCacheLocator.ensure_cache_path = refuse
import fastdecay as fd
with warnings.catch_warnings(record=True) as seen:
    warnings.simplefilter("always")
    print(fd.step(0.1, 0.5, 10)(25))
print(sum("fastdecay: neither NUMBA_CACHE_DIR" in str(w.message) for w in seen))
"""


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="the private directory is named by the user's id")
def test_kernels_cache_in_a_private_temporary_directory_where_nothing_else_can_be_written(tmp_path):
    """Where neither NUMBA_CACHE_DIR, the package's directory nor ~/.cache can be written,
    Numba alone refuses every cached kernel; fastdecay caches them in a directory of the
    user's own under the temporary directory (0700), says so once, and does not use one
    that others can write (a fresh private one instead)."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["TMPDIR"] = str(tmp_path)
    shared = tmp_path / f"fastdecay-numba-cache-{os.getuid()}"
    shared.mkdir()
    shared.chmod(0o777)  # writable by others: not trusted with compiled code
    for trusted in (False, True):
        if trusted:
            shared.rmdir()
        done = subprocess.run([sys.executable, "-c", PRIVATE_CACHE], env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["0.025", "1"]
        assert any(shared.rglob("*.nbi")) == trusted
        if trusted:
            assert shared.stat().st_mode & 0o777 == 0o700
        else:
            fresh = [p for p in tmp_path.glob("fastdecay-numba-cache-*") if p != shared]
            assert len(fresh) == 1 and any(fresh[0].rglob("*.nbi")) and fresh[0].stat().st_mode & 0o777 == 0o700


def test_a_kernel_compiled_at_first_call_copies_and_reads_its_dispatcher():
    """``compiled_at_first_call`` kernels copy (a copy being made has no dispatcher yet: its private
    attributes are not looked up on the dispatcher, which once looped into the compile lock and hung)
    and give the dispatcher's attributes."""
    code = ("import copy\nfrom fastdecay._cpu import simulate\n"
            "kernel = copy.copy(simulate.distinct_values)\n"
            "print(len(kernel.signatures), kernel.__name__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "distinct_values"]
