"""Benchmarks double as smoke tests: under ``--benchmark-disable`` (``make test``)
each runs once on small inputs; ``make bench`` runs them for real at full size."""

import pytest

# the recorded runs' raw output and the ad hoc scripts that made it: not collected (``--doctest-modules``
# would import the scripts, which run at import)
collect_ignore_glob = ["results/*"]


@pytest.fixture
def smoke(request):
    """True when benchmarks are disabled (``make test``): use small sizes."""
    return bool(request.config.getoption("benchmark_disable", False))
