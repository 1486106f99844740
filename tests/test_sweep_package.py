"""``fastdecay.sweep``: the function ``fd.sweep`` and the package of the same name.

The attribute ``fastdecay.sweep`` is the function; the package (modules ``config``,
``run``, ``result``) is reached with ``from fastdecay.sweep import ...``. Each case
runs in a fresh interpreter, because what an import statement binds depends on
what was imported before it.
"""

import json
import subprocess
import sys
import textwrap

import pytest


def fresh(code):
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("first", [
    "import fastdecay as fd",
    "import fastdecay.sweep; import fastdecay as fd",
    "from fastdecay.sweep import load_sweep; import fastdecay as fd",
    "import fastdecay.sweep.result; import fastdecay as fd",
    "from fastdecay.sweep import config; import fastdecay as fd",
])
def test_fd_sweep_stays_the_function_whatever_is_imported_first(first):
    got = fresh(f"""
        import importlib, inspect, json, sys
        {first}
        package = importlib.import_module("fastdecay.sweep")
        from fastdecay.sweep import SweepResult, load_sweep, parse_config, sweep
        from fastdecay.sweep import config, result, run
        res = fd.sweep({{"run": {{"steps": 3}}, "curvatures": {{"values": [1.0]}},
                        "schedule": {{"kind": "constant", "lr": 0.1}}}}, progress=False)
        print(json.dumps({{
            "fd.sweep is a function": inspect.isfunction(fd.sweep),
            "same function": fd.sweep is sweep is package.sweep is run.sweep,
            "package is a module": inspect.ismodule(package) and sys.modules["fastdecay.sweep"] is package,
            "names": [fd.load_sweep is load_sweep, fd.SweepResult is SweepResult is result.SweepResult,
                      parse_config is config.parse_config],
            "ran": type(res).__name__,
            "all": sorted(package.__all__),
        }}))
        """)
    assert got["fd.sweep is a function"] and got["same function"] and got["package is a module"]
    assert got["names"] == [True, True, True] and got["ran"] == "SweepResult"
    assert {"sweep", "load_sweep", "SweepResult", "SweepConfigError", "parse_config", "run_chunk"} <= set(got["all"])


def test_import_as_binds_the_function_as_documented():
    """``import fastdecay.sweep as sw`` gives the function (the attribute wins) and
    ``import fastdecay.sweep.config as c`` fails: the package docstring says so and
    recommends ``from fastdecay.sweep import ...``."""
    got = fresh("""
        import inspect, json, sys
        import fastdecay.sweep as sw
        try:
            import fastdecay.sweep.config as c
            dotted = "imported"
        except ImportError:
            dotted = "ImportError"
        doc = sys.modules["fastdecay.sweep"].__doc__
        print(json.dumps([inspect.isfunction(sw), dotted, "import fastdecay.sweep as sw" in doc,
                          "from fastdecay.sweep import load_sweep" in doc]))
        """)
    assert got == [True, "ImportError", True, True]


def test_run_chunk_pickles_by_reference_for_dask_workers():
    import pickle

    from fastdecay.sweep import run_chunk, sweep

    assert pickle.loads(pickle.dumps(run_chunk)) is run_chunk
    assert pickle.loads(pickle.dumps(sweep)) is sweep
    assert run_chunk.__module__ == "fastdecay.sweep.run"
