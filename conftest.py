"""Root pytest configuration: what to collect where optional pieces are missing, and how the
worker processes of a parallel run wait for work."""

import importlib.util
import os
import pathlib

# Under pytest-xdist (``make test``: two worker processes on two cores) each worker's OpenMP
# threads (Numba's omp threading layer, torch's intra-op pool) spin for a while after every
# parallel region, waiting for the next: with the other worker's threads on the same cores, the
# spinning holds a core that a thread of the other process needs. Passive waiting (the threads
# sleep at once) took the torch, update and simulation tests from 141 s to 61 s of wall time here.
# libgomp reads this when it loads, before any test imports Numba's pool or torch; a value the
# user set stands.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
