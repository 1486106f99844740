"""Fixtures shared by the test modules."""

import pytest


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch's intra-op threads on one core: tiny models only contend with two or more
    (badly so on a loaded machine: a 5-layer MLP's backward went from 0.7 ms to 18 ms)."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def repeated_steps(monkeypatch):
    """The list that records, for every ``fastdecay._fused.Call.again`` (a ``fastdecay.torch``
    group's step checked by what can change since its last), whether it gave a launch (True)
    or sent the step to the full check (False)."""
    from fastdecay import _fused

    again, taken = _fused.Call.again, []

    def counted(self, *args, **kwargs):
        launch = again(self, *args, **kwargs)
        taken.append(launch is not None)
        return launch

    monkeypatch.setattr(_fused.Call, "again", counted)
    return taken


@pytest.fixture
def signed_cosine():
    """``signed_cosine(lr, total_steps, min_lr)``: ``fd.cosine`` whose table holds lr and min_lr
    with their signs (a factory holds -0.0 as +0.0; a table given to ``fd.Schedule`` keeps its
    bits, and the kernels' rate checks must tell -0.0 from 0.0 there)."""
    import numpy as np

    import fastdecay as fd
    from fastdecay._layout import P0

    def made(lr, total_steps, min_lr=0.0):
        table = np.array(fd.cosine(abs(lr), total_steps, min_lr=abs(min_lr)).segments)
        table[..., P0], table[..., P0 + 2] = lr, min_lr
        return fd.Schedule(table, "cosine")

    return made


# This file is loaded as a plugin (its fixtures); --doctest-modules would also import it
# as a module named "conftest", which clashes with bench/conftest.py.
collect_ignore = ["conftest.py"]
# Files that tests/test_types.py hands to mypy (type-checked, never run).
collect_ignore_glob = ["typed/*"]

