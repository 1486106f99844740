"""Root pytest configuration: what to collect where optional pieces are missing."""

import importlib.util
import pathlib
import os

collect_ignore_glob = []



def _cuda_device_usable():
    """CuPy installed and a CUDA device it can use (not just the package)."""
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver, a driver too old for CuPy's CUDA, or no device
        return False


# The GPU wrappers import cupy at module level and their doctests run kernels: only
# where a device is there to run them; a new wrapper is covered without editing this list.
# (_source and _plan need neither: always.)
if not _cuda_device_usable():
    _host_only = {"_source.py", "_plan.py", "__init__.py"}
    collect_ignore_glob += [
        f"fastdecay/_gpu/{path.name}"
        for path in (pathlib.Path(__file__).parent / "fastdecay" / "_gpu").glob("*.py")
        if path.name not in _host_only
    ]

# Hypothesis: CI runs (CI=true) are reproducible: examples derived from each test's
# source, no example database, no deadline (numba compiles inside the first
# example). Local runs keep the default random profile, which explores more
# inputs over time; a failure prints the example and the seed to reproduce it.
try:
    from hypothesis import settings as _hypothesis_settings
except ImportError:  # hypothesis is a test dependency; the doctests run without it
    pass
else:
    _hypothesis_settings.register_profile("ci", deadline=None, derandomize=True, database=None, print_blob=True)
    if os.environ.get("CI"):
        _hypothesis_settings.load_profile("ci")
