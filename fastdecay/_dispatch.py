"""The one backend switch: which kernels run a call, from its arrays' kind.

``backend_of(x)`` (``fastdecay._arrays``) names the kind of an array without
importing torch or CuPy; ``kernels(kind, backend)`` gives the module of that
kind of kernel for that backend: ``fastdecay._cpu`` (Numba) for NumPy arrays,
CPU torch tensors and plain numbers, ``fastdecay._gpu`` (CuPy; imported only
here, only for device arrays) for CuPy arrays and CUDA torch tensors. Schedules,
fused updates, simulations and expected dynamics all take their kernels from
here; the two modules of one kind take the same calls.

>>> import numpy as np
>>> kernels("updates", backend_of(np.ones(3))).__name__
'fastdecay._cpu.updates'
"""

from __future__ import annotations

from types import ModuleType

from ._arrays import (  # noqa: F401 (re-exported: the backends' names)
    CUPY,
    NUMPY,
    TORCH_CPU,
    TORCH_CUDA,
    backend_of,
    is_cupy,
    is_torch,
    plain_torch_types,
    to_numpy,
    torch_storage_problem,
)

KINDS = ("schedule", "updates", "simulate", "expected")
HOST = (NUMPY, TORCH_CPU)


def on_device(backend: str) -> bool:
    """True for the GPU backends (CuPy arrays, CUDA torch tensors)."""
    return backend not in HOST


def kernels(kind: str, backend: str) -> ModuleType:
    """The kernel module of ``kind`` (one of ``KINDS``) for ``backend`` (found once, then
    from a cache: a fused update asks on every call)."""
    module = _FOUND.get((kind, backend))
    if module is None:
        module = _FOUND[kind, backend] = _find(kind, backend)
    return module


_FOUND: dict[tuple[str, str], ModuleType] = {}


def _find(kind: str, backend: str) -> ModuleType:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if backend in HOST:
        if kind == "schedule":
            from ._cpu import schedule_tables as module
        elif kind == "updates":
            from ._cpu import updates as module
        elif kind == "simulate":
            from ._cpu import simulate as module
        else:
            from ._cpu import expected as module
        return module
    # the GPU twins import CuPy (or say how to install it): only for device arrays
    if kind == "schedule":
        from ._gpu import schedule as module
    elif kind == "updates":
        from ._gpu import updates as module
    elif kind == "simulate":
        from ._gpu import simulate as module
    else:
        from ._gpu import expected as module
    return module
