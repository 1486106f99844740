"""Find the CUDA sources and assemble one translation unit per kernel file.

Needs neither CuPy nor a GPU (the compile and host tests use it too).

The sources live in the repository's top-level ``kernels/``; a wheel carries
them as ``fastdecay/kernels`` (hatchling ``force-include``), found here through
``importlib.resources``; an editable install falls back to the source tree.
:func:`translation_unit` inlines the ``#include "..."`` of local headers (each
once, as ``#pragma once`` would) and puts a ``#line`` directive before every
piece, so NVRTC's messages name the real file and line, and CuPy's cache key
(the source text) changes whenever any header does. The fused updates' entry
points are not in ``kernels/updates.cu``: :func:`fused_entry_source` generates
them from the table of rules (``fastdecay._rules.FUSED``), one per rule and
storage, and :func:`translation_unit` appends them to that file's source.

>>> src = translation_unit("schedule.cu")
>>> src.splitlines()[0].startswith('#line 1 "') and "lr_at" in src
True
"""

import functools
import hashlib
import importlib.resources
import os
import pathlib
import re

from .._rules import FUSED

# The storage combinations of the fused updates: entry-point suffix -> (parameter
# type, state type) of kernels/update_math.cuh (Storage<>); the state is stored like
# the parameter where the suffix names one type (``fastdecay._gpu._plan.kernel_suffix``).
FUSED_STORAGE = {
    "f32": ("float", "float"),
    "f64": ("double", "double"),
    "f32_bf16": ("float", "bf16"),
    "bf16_f32": ("bf16", "float"),
    "bf16": ("bf16", "bf16"),
    "f16_f32": ("f16", "float"),
    "f16_bf16": ("f16", "bf16"),
}


def rule_struct(kernel):
    """The struct template of ``kernels/update_math.cuh`` holding the rule of fused kernel
    ``kernel`` (a key of ``fastdecay._rules.FUSED``): ``"sgd"`` -> ``SgdRule``."""
    return kernel.capitalize() + "Rule"


def fused_entries():
    """``(entry point, rule struct, parameter type, state type)`` of every fused update:
    every kernel of ``fastdecay._rules.FUSED`` in every storage of ``FUSED_STORAGE``."""
    return [(f"{kernel}_{suffix}", rule_struct(kernel), param, state)
            for kernel in FUSED for suffix, (param, state) in FUSED_STORAGE.items()]


def fused_entry_source():
    """The ``extern "C"`` entry points of the fused updates, appended to the translation
    unit of ``updates.cu``: one line each, every one with the argument list
    ``FD_FUSED_ARGS`` around ``fused_body<Rule, P, S>``.

    >>> print(fused_entry_source().splitlines()[3])  # doctest: +NORMALIZE_WHITESPACE
    __global__ void __launch_bounds__(256) sgd_f32(FD_FUSED_ARGS) {
        fused_body<SgdRule, float, float>(this_grid(), FD_FUSED_PASS); }
    """
    lines = ['#line 1 "fastdecay/_gpu/_source.py: fused_entry_source()"', "#ifdef __CUDACC__", 'extern "C" {']
    for name, rule, param, state in fused_entries():
        lines.append(f"__global__ void __launch_bounds__(256) {name}(FD_FUSED_ARGS) {{ "
                     f"fused_body<{rule}, {param}, {state}>(this_grid(), FD_FUSED_PASS); }}")
    lines += ['}  // extern "C"', "#endif  // __CUDACC__"]
    return "\n".join(lines) + "\n"


# Every .cu file and the extern "C" kernels the wrappers launch from it.
KERNELS = {
    "schedule.cu": (
        "schedule_points_f64",
        "schedule_points_f32",
        "schedule_table_f64",
        "schedule_table_f32",
    ),
    "updates.cu": tuple(name for name, _, _, _ in fused_entries()) + ("step_increment",),
    "simulate.cu": (
        "simulate_f32", "simulate_f64", "simulate_trajectories_f32", "simulate_trajectories_f64",
        "simulate_fast_f32", "simulate_fast_f64", "simulate_noisy_f32", "simulate_noisy_f64",
        "simulate_coefficients_f32", "simulate_coefficients_f64", "philox_fill",
    ),
    "expected.cu": ("expected_propagate",),
}

# Options for NVRTC (and nvcc in the compile test): no fused multiply-add, so
# the float64 schedule math rounds as the CPU's does, and float32 subnormals kept
# (no flush to zero), as on the CPU and in torch's CUDA kernels. cupy.RawModule
# would append -ftz=true to any options, so fastdecay compiles with NVRTC itself
# (``fastdecay._gpu._runtime.module``) and caches the binary with ``cached_binary``.
OPTIONS = ("-std=c++17", "--fmad=false", "-ftz=false")

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$')


@functools.cache
def kernel_dir():
    """The folder holding the ``.cu``/``.cuh`` sources (installed or source tree)."""
    try:
        installed = importlib.resources.files("fastdecay").joinpath("kernels")
        if installed.is_dir() and installed.joinpath("schedule.cuh").is_file():
            return pathlib.Path(str(installed))
    except (ModuleNotFoundError, TypeError):  # pragma: no cover
        pass
    tree = pathlib.Path(__file__).resolve().parents[2] / "kernels"
    if tree.joinpath("schedule.cuh").is_file():
        return tree
    raise FileNotFoundError(
        f"fastdecay's CUDA sources are missing: looked in the package (fastdecay/kernels) and in {tree}"
    )


def _expand(path, seen, out):
    if path.name in seen:
        return
    seen.add(path.name)
    out.append(f'#line 1 "{path.as_posix()}"')
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = _INCLUDE.match(line)
        if match:
            _expand(path.parent / match.group(1), seen, out)
            out.append(f'#line {number + 1} "{path.as_posix()}"')
        elif line.strip() == "#pragma once":
            out.append("")  # keeps the line count; inclusion is deduplicated here
        else:
            out.append(line)


# Generated source appended to a kernel file's translation unit.
_GENERATED = {"updates.cu": fused_entry_source}


def translation_unit(name, directory=None):
    """The source of kernel file ``name`` (in ``directory``, by default the
    package's kernels) with its local headers inlined, and for ``updates.cu`` the
    fused entry points generated from the table of rules (``fused_entry_source``)."""
    out = []
    _expand(pathlib.Path(directory or kernel_dir()) / name, set(), out)
    generated = _GENERATED.get(name)
    return "\n".join(out) + "\n" + (generated() if generated else "")


def cache_dir():
    """Where compiled kernels are kept: ``$FASTDECAY_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/fastdecay/cuda`` (``~/.cache/fastdecay/cuda``)."""
    root = os.environ.get("FASTDECAY_CACHE_DIR")
    if root:
        return pathlib.Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "fastdecay" / "cuda"


def cached_binary(source, options, target, compiler, compile):
    """The compiled ``source`` from the disk cache, else ``compile()``'s bytes (then cached).

    The key covers everything the binary depends on: the source (headers inlined),
    the options, the target architecture and the compiler's identity. Writes are
    atomic (a temporary file renamed), so processes compiling at once are safe; an
    unwritable cache only means compiling in every process.

    >>> import tempfile
    >>> calls = []
    >>> with tempfile.TemporaryDirectory() as d:
    ...     os.environ["FASTDECAY_CACHE_DIR"] = d
    ...     first = cached_binary("src", ("-O3",), "90", "nvrtc 13.0", lambda: calls.append(1) or b"cubin")
    ...     again = cached_binary("src", ("-O3",), "90", "nvrtc 13.0", lambda: calls.append(1) or b"other")
    ...     del os.environ["FASTDECAY_CACHE_DIR"]
    >>> first, again, len(calls)
    (b'cubin', b'cubin', 1)
    """
    key = hashlib.sha256("\0".join((compiler, str(target), *options, source)).encode()).hexdigest()
    path = cache_dir() / f"{key}.bin"
    try:
        return path.read_bytes()
    except OSError:
        pass
    binary = bytes(compile())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temporary.write_bytes(binary)
        os.replace(temporary, path)
    except OSError:  # read-only or full: compile again next time
        pass
    return binary
