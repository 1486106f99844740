"""The GPU backend: CuPy wrappers around the CUDA C++ kernels in ``kernels/``.

Importing this package does not import CuPy; its modules ``schedule``,
``updates`` and ``simulate`` do, through :func:`require_cupy`, which says what
to install when CuPy is missing. ``fastdecay`` reaches them only for CuPy arrays
and CUDA torch tensors, so ``import fastdecay`` never imports CuPy.
"""

INSTALL_HINT = (
    "the GPU backend needs CuPy: install the gpu extra, "
    "pip install 'fastdecay[gpu]' (CUDA 12) or 'fastdecay[gpu-cuda13]' (CUDA 13)"
)


def require_cupy():
    """The ``cupy`` module, or ImportError saying how to install it."""
    try:
        import cupy
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(f"{INSTALL_HINT} ({error})") from error
    return cupy
