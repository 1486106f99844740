"""Backend from an array's type, without importing torch or cupy unasked.

A value can only be a torch tensor or a CuPy array if its module is already
imported, so we look at ``type(x).__module__`` and ``sys.modules`` and never
trigger an import ourselves (the array-api-compat habit).
"""

import sys

NUMPY = "numpy"
TORCH_CPU = "torch_cpu"
TORCH_CUDA = "torch_cuda"
CUPY = "cupy"


def is_torch(x):
    torch = sys.modules.get("torch")
    return torch is not None and type(x).__module__.startswith("torch") and isinstance(x, torch.Tensor)


def is_cupy(x):
    cupy = sys.modules.get("cupy")
    return cupy is not None and type(x).__module__.startswith("cupy") and isinstance(x, cupy.ndarray)


def backend_of(x):
    """``"numpy"`` (also for scalars and lists), ``"torch_cpu"``, ``"torch_cuda"`` or ``"cupy"``."""
    if is_torch(x):
        return TORCH_CUDA if x.is_cuda else TORCH_CPU
    if is_cupy(x):
        return CUPY
    return NUMPY


def to_numpy(x):
    """A NumPy view of a CPU torch tensor (zero-copy), or ``x`` itself otherwise."""
    if is_torch(x):
        if x.is_cuda:
            raise ValueError("a CUDA tensor cannot be viewed as a NumPy array; use the GPU path")
        return x.detach().numpy()
    return x
