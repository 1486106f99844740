"""fastdecay is typed (it ships ``py.typed``): mypy checks the package with the settings in
pyproject.toml, checks a file of typical user calls (tests/typed/usage.py) without an
error, and finds the wrong calls below as errors; every public function and method is
annotated.

One mypy run covers the package, the usage file and the wrong calls (its cache in a
temporary folder: a cold run, most of it reading torch's and NumPy's annotations;
measured 17 s of CPU, 16.6 s wall at load 2.3 on two cores, 45-63 s wall at load 6-7).
"""

import inspect
import pathlib
import re
import sys
import time

import pytest

mypy_api = pytest.importorskip("mypy.api")

ROOT = pathlib.Path(__file__).resolve().parent.parent
USAGE = ROOT / "tests" / "typed" / "usage.py"

_SETUP = """\
import numpy as np
import torch
import fastdecay as fd
import fastdecay.torch
w, g, m, v = (np.zeros(4, np.float32) for _ in range(4))
model = torch.nn.Linear(2, 2)
"""

# name: (one wrong line of user code, a piece of the error mypy must report on that line)
WRONG_CALLS = {
    "string_where_a_schedule_goes": (
        'fd.warmup("cosine", 100)',
        'Argument 1 to "warmup" has incompatible type "str"; expected "Schedule"',
    ),
    "string_as_a_schedule_parameter": (
        'fd.cosine("0.1", total_steps=100)',
        'Argument 1 to "cosine" has incompatible type "str"',
    ),
    "schedule_times_a_string": (
        'fd.constant(0.1) * "2"',
        'Unsupported operand types for * ("Schedule" and "str")',
    ),
    "rate_given_as_a_string": (
        'fd.adamw_step(w, g, m, v, step=0, lr="0.1")',
        'Argument "lr" to "adamw_step" has incompatible type "str"',
    ),
    "optimizer_rate_given_as_a_string": (
        'fastdecay.torch.AdamW(model.parameters(), lr="fast")',
        'Argument "lr" to "AdamW" has incompatible type "str"',
    ),
    "a_list_of_numbers_is_not_an_array_to_update": (
        "fd.sgd_step([1.0, 2.0], g, step=0, lr=0.1)",
        'List item 0 has incompatible type "float"; expected "DeviceArray"',
    ),
    "misspelt_result_field": (
        "fd.simulate([1.0], fd.constant(0.1), steps=10).weights",
        'has no attribute "weights"',
    ),
    "a_result_array_of_torch_input_is_a_tensor": (
        "fd.simulate(torch.ones(3), 0.1, steps=10).w.tolist(1)",
        'Too many arguments for "tolist" of "TensorBase"',
    ),
    "a_float32_table_is_not_float64": (
        "x: np.ndarray[tuple[int, ...], np.dtype[np.float64]] = fd.constant(0.1).table(4, dtype=np.float32)",
        'Incompatible types in assignment',
    ),
    "step_count_as_a_string": (
        'fd.stability_onset(fd.constant(0.1), [1.0], max_steps="100")',
        'Argument "max_steps" to "stability_onset" has incompatible type "str"; expected "int"',
    ),
}

_LINE = re.compile(r"^(?P<path>[^:\n]+):(?P<line>\d+): (?P<severity>error|note): (?P<message>.*)$")


@pytest.fixture(scope="module")
def mypy_report(tmp_path_factory):
    """{path: [(line, message), ...]} of every error of one mypy run over the package, the
    usage file and one file per wrong call; plus the run's status and seconds."""
    folder = tmp_path_factory.mktemp("typed")
    wrong_files = {}
    for name, (line, _) in WRONG_CALLS.items():
        path = folder / f"wrong_{name}.py"
        path.write_text(_SETUP + line + "\n")
        wrong_files[name] = (path, _SETUP.count("\n") + 1)
    args = [
        "--config-file", str(ROOT / "pyproject.toml"),
        "--cache-dir", str(folder / "mypy-cache"),
        "--python-executable", sys.executable,
        "--no-error-summary",
        "--hide-error-context",
        "--show-error-codes",
        str(ROOT / "fastdecay"),
        str(USAGE),
        *(str(p) for p, _ in wrong_files.values()),
    ]
    start, cpu_start = time.perf_counter(), time.process_time()
    stdout, stderr, status = mypy_api.run(args)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    errors = {}
    for text in stdout.splitlines():
        match = _LINE.match(text)
        if match and match["severity"] == "error":
            path = str(pathlib.Path(match["path"]).resolve())
            errors.setdefault(path, []).append((int(match["line"]), match["message"]))
    return {"errors": errors, "stdout": stdout, "stderr": stderr, "status": status, "seconds": seconds,
            "cpu_seconds": cpu_seconds, "wrong_files": wrong_files}


def test_the_package_and_typical_calls_type_check(mypy_report):
    assert not mypy_report["stderr"].strip(), mypy_report["stderr"]
    wrong = {str(p.resolve()) for p, _ in mypy_report["wrong_files"].values()}
    ours = {path: found for path, found in mypy_report["errors"].items() if path not in wrong}
    shown = "\n".join(f"{path}:{line}: {message}" for path, found in ours.items() for line, message in found)
    assert not ours, f"mypy finds errors in the package or in tests/typed/usage.py:\n{shown}"
    # the wrong calls are the run's only errors (so the status is 1 only for them)
    assert mypy_report["status"] == (1 if mypy_report["errors"] else 0)
    print(f"mypy over the package, the usage file and {len(WRONG_CALLS)} wrong calls: "
          f"{mypy_report['seconds']:.1f} s wall, {mypy_report['cpu_seconds']:.1f} s CPU")


@pytest.mark.parametrize("name", list(WRONG_CALLS))
def test_a_wrong_call_is_a_type_error(mypy_report, name):
    path, line = mypy_report["wrong_files"][name]
    expected = WRONG_CALLS[name][1]
    found = mypy_report["errors"].get(str(path.resolve()), [])
    assert [(n, m) for n, m in found if n != line] == [], f"errors outside the wrong line: {found}"
    assert any(expected in m for n, m in found if n == line), (
        f"mypy should report {expected!r} on line {line} of the wrong call "
        f"{WRONG_CALLS[name][0]!r}; it reported: {found or 'nothing'}"
    )


def _public_callables():
    """(qualified name, function) of every public function and method reachable from the
    public modules' ``__all__`` (classes: their own public methods and properties, and
    ``__init__`` / ``__call__`` / ``__mul__`` where they define them)."""
    import importlib

    import fastdecay

    modules = ["fastdecay", "fastdecay.schedules", "fastdecay.diagnostics", "fastdecay.reference",
               "fastdecay.plots", "fastdecay.torch", "fastdecay.updates", "fastdecay.simulate",
               "fastdecay.expected", "fastdecay.cli"]
    found = {}
    for module_name in modules:
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
        if module_name == "fastdecay.cli":
            names = ["main", "build_parser"]
        for name in names:
            value = getattr(module, name)
            if inspect.isfunction(value) and value.__module__.startswith("fastdecay"):
                found[f"{value.__module__}.{value.__qualname__}"] = value
            elif inspect.isclass(value) and value.__module__.startswith("fastdecay"):
                for attr, member in vars(value).items():
                    if attr.startswith("_") and attr not in ("__init__", "__call__", "__mul__", "__rmul__",
                                                             "__getitem__"):
                        continue
                    if isinstance(member, property):
                        member = member.fget
                    elif isinstance(member, (staticmethod, classmethod)):
                        member = member.__func__
                    if inspect.isfunction(member):
                        found[f"{value.__module__}.{value.__qualname__}.{attr}"] = member
    sweep = importlib.import_module("fastdecay.sweep")  # (fd.sweep is the function)
    for name in sweep.__all__:
        value = getattr(sweep, name)
        if inspect.isfunction(value):
            found[f"{value.__module__}.{value.__qualname__}"] = value
        elif inspect.isclass(value):
            for attr, member in vars(value).items():
                member = member.fget if isinstance(member, property) else member
                if inspect.isfunction(member) and (not attr.startswith("_") or attr == "__init__"):
                    found[f"{value.__module__}.{value.__qualname__}.{attr}"] = member
    return found


def test_every_public_function_and_method_is_annotated():
    functions = _public_callables()
    assert len(functions) > 100 and "fastdecay.schedules.Schedule.table" in functions
    missing = []
    for name, function in sorted(functions.items()):
        annotations = function.__annotations__
        for p in inspect.signature(function).parameters.values():
            if p.name not in ("self", "cls") and p.name not in annotations:
                missing.append(f"{name}: parameter {p.name}")
        if "return" not in annotations:
            missing.append(f"{name}: return")
    assert not missing, "not annotated:\n" + "\n".join(missing)


def test_the_package_ships_its_marker_and_the_test_extra_installs_mypy():
    import tomllib

    assert (ROOT / "fastdecay" / "py.typed").is_file()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert any(re.match(r"mypy\b", req) for req in project["project"]["optional-dependencies"]["test"])
    assert project["tool"]["mypy"]["python_version"] == "3.10"  # the oldest Python the package supports
