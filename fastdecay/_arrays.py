"""What kind of array a value is, without importing torch or cupy unasked.

A value can only be a torch tensor or a CuPy array if its module is already
imported, so we look at ``type(x).__module__`` and ``sys.modules`` and never
trigger an import ourselves (the array-api-compat habit).
"""

from __future__ import annotations

import sys
from typing import Any

NUMPY = "numpy"
TORCH_CPU = "torch_cpu"
TORCH_CUDA = "torch_cuda"
CUPY = "cupy"


def is_torch(x: object) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and type(x).__module__.startswith("torch") and isinstance(x, torch.Tensor)


def is_cupy(x: object) -> bool:
    cupy = sys.modules.get("cupy")
    return cupy is not None and type(x).__module__.startswith("cupy") and isinstance(x, cupy.ndarray)


def backend_of(x: Any) -> str:
    """``"numpy"`` (also for scalars and lists), ``"torch_cpu"``, ``"torch_cuda"`` or ``"cupy"``."""
    if is_torch(x):
        return TORCH_CUDA if x.is_cuda else TORCH_CPU
    if is_cupy(x):
        return CUPY
    return NUMPY


def in_type_of(sources: tuple[Any, ...], result: Any) -> Any:
    """``result`` (a NumPy array or a Python number, computed on the host) in the array type
    of the first torch tensor or CuPy array among ``sources``: a tensor on that tensor's
    device (zero-copy on the CPU), a CuPy array; unchanged when they are all NumPy or
    plain numbers."""
    for x in sources:
        if is_torch(x):
            return sys.modules["torch"].as_tensor(result, device=x.device)
        if is_cupy(x):
            return sys.modules["cupy"].asarray(result)
    return result


def to_numpy(x: Any) -> Any:
    """A NumPy view of a CPU torch tensor (zero-copy), or ``x`` itself otherwise."""
    if is_torch(x):
        if x.is_cuda:
            raise ValueError("a CUDA tensor cannot be viewed as a NumPy array; use the GPU path")
        return x.detach().numpy()
    return x


def plain_torch_types() -> tuple[type, ...]:
    """The torch tensor classes whose ``data_ptr`` is always real memory (torch imported)."""
    torch = sys.modules["torch"]
    buffer = getattr(torch.nn.parameter, "Buffer", None)
    return tuple(t for t in (torch.Tensor, torch.nn.Parameter, buffer) if isinstance(t, type))


def torch_storage_problem(x: Any) -> str | None:
    """Why a kernel cannot read torch tensor ``x`` through its data pointer ("a ... tensor,
    got ..."), or None. Refuses devices other than CPU and CUDA (``meta``, ``mps``, ...),
    nested and sparse tensors, and tensors without memory (FakeTensor, functional
    wrappers): a raw pointer into any of them would crash or corrupt memory."""
    device = x.device.type
    if device not in ("cpu", "cuda"):
        return f"a CPU or CUDA tensor, got a tensor on device {x.device}"
    if x.is_nested:
        return "a dense tensor, got a nested tensor"
    torch = sys.modules["torch"]
    if x.layout is not torch.strided:
        return f"a strided (dense) tensor, got layout {x.layout}"
    if type(x) not in plain_torch_types():
        fake = sys.modules.get("torch._subclasses.fake_tensor")
        if fake is not None and fake.is_fake(x):
            return f"a tensor with memory, got a fake tensor ({type(x).__name__})"
    try:
        address = x.data_ptr()
    except RuntimeError:
        address = 0
    if address == 0 and x.numel() != 0:
        return f"a tensor with memory, got a {type(x).__name__} without a data pointer"
    return None
