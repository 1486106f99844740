"""Benchmarks double as smoke tests: under ``--benchmark-disable`` (``make test``)
each runs once on small inputs; ``make bench`` runs them for real at full size."""

import pytest


@pytest.fixture
def smoke(request):
    """True when benchmarks are disabled (``make test``): use small sizes."""
    return bool(request.config.getoption("benchmark_disable", False))
