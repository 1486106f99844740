"""Find the CUDA sources and assemble one translation unit per kernel file.

Needs neither CuPy nor a GPU (the compile and host tests use it too).

The sources live in the repository's top-level ``kernels/``; a wheel carries
them as ``fastdecay/kernels`` (hatchling ``force-include``), found here through
``importlib.resources``; an editable install falls back to the source tree.
:func:`translation_unit` inlines the ``#include "..."`` of local headers (each
once, as ``#pragma once`` would) and puts a ``#line`` directive before every
piece, so NVRTC's messages name the real file and line, and CuPy's cache key
(the source text) changes whenever any header does.

>>> src = translation_unit("schedule.cu")
>>> src.splitlines()[0].startswith('#line 1 "') and "lr_at" in src
True
"""

import functools
import importlib.resources
import pathlib
import re

# Every .cu file and the extern "C" kernels the wrappers launch from it.
KERNELS = {
    "schedule.cu": (
        "schedule_points_f64",
        "schedule_points_f32",
        "schedule_table_f64",
        "schedule_table_f32",
    ),
    "updates.cu": ("sgd_f32", "sgd_f64", "adam_f32", "adam_f64", "step_increment"),
    "simulate.cu": (
        "simulate_f32", "simulate_f64", "simulate_fast_f32", "simulate_fast_f64", "simulate_coefficients_f32",
        "simulate_coefficients_f64", "philox_fill",
    ),
}

# Options for NVRTC (and nvcc in the compile test): no fused multiply-add, so
# the float64 schedule math rounds as the CPU's does.
OPTIONS = ("-std=c++17", "--fmad=false")

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


def translation_unit(name, directory=None):
    """The source of kernel file ``name`` (in ``directory``, by default the
    package's kernels) with its local headers inlined."""
    out = []
    _expand(pathlib.Path(directory or kernel_dir()) / name, set(), out)
    return "\n".join(out) + "\n"
