"""Type aliases of the public signatures (read by type checkers; nothing here runs a kernel).

``import fastdecay`` stays light: torch and CuPy types are named only under
``TYPE_CHECKING`` in the modules that use them (a type checker reads them,
Python never imports them for it).

- ``RealArrayLike``: a real number, an array (NumPy, a CPU torch tensor, anything
  with ``__array__``) or nested lists of them, up to three levels: what the
  schedule factories, simulations and diagnostics take for their parameters. A
  string is not one (NumPy's ``ArrayLike`` would admit it).
- ``FloatArray``: a float64 NumPy array, what most functions return.
- ``DeviceArray``: an array a fused update reads or writes in place, matched by
  its shape and dtype: a NumPy array, a CuPy array, a torch tensor.
- ``Arrays``: one ``DeviceArray`` or a sequence of them (one fused call over all).
- ``Real``: one real number: anything ``float()`` accepts (a Python or NumPy
  number, a 0-d array or tensor).
- ``Shape``: a tuple of ints.

The rate type, a number or a ``Schedule`` (``fastdecay.schedules.Rate``), lives
with ``Schedule``.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, SupportsFloat, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

__all__ = ["ArrayLike", "DTypeLike", "RealArrayLike", "FloatArray", "DeviceArray", "Arrays", "Real", "Shape"]

FloatArray = NDArray[np.float64]
Shape = tuple[int, ...]
Real = SupportsFloat


class SupportsArray(Protocol):
    """Anything NumPy converts with ``__array__`` (NumPy arrays, CPU torch tensors)."""

    def __array__(self) -> np.ndarray: ...


_RealLeaf = Union[SupportsFloat, SupportsArray]
RealArrayLike = Union[_RealLeaf, Sequence[_RealLeaf], Sequence[Sequence[_RealLeaf]], Sequence[Sequence[Sequence[_RealLeaf]]]]


class DeviceArray(Protocol):
    """A NumPy array, a CuPy array or a torch tensor: what has a shape and a dtype."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> Any: ...


Arrays = Union[DeviceArray, Sequence[DeviceArray]]
