"""A non-editable build carries the CUDA sources and the typing marker.

The kernels live at the repository's top level (``kernels/``); the wheel maps
them to ``fastdecay/kernels`` (hatchling ``force-include`` in pyproject.toml),
where ``fastdecay._gpu._source.kernel_dir`` finds them with importlib.resources.
"""

import importlib.util
import pathlib
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

if importlib.util.find_spec("hatchling") is None:
    pytest.skip("hatchling (the build backend) is not installed: cannot build a wheel offline",
                allow_module_level=True)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (built,) = out.glob("fastdecay-*.whl")
    return built


def test_wheel_carries_kernels_and_typing_marker(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {p.name for p in (ROOT / "kernels").iterdir() if p.suffix in (".cu", ".cuh")}
    assert sources, "no CUDA sources in kernels/"
    assert {f"fastdecay/kernels/{s}" for s in sources} <= names
    assert "fastdecay/py.typed" in names
    assert "fastdecay/_gpu/_source.py" in names


def test_installed_wheel_finds_its_own_kernels(wheel, tmp_path):
    """Unpacked elsewhere (as pip installs it), the loader reads the kernels from the package."""
    zipfile.ZipFile(wheel).extractall(tmp_path)
    code = (
        "import fastdecay._gpu._source as s, pathlib; "
        "d = s.kernel_dir(); print(d); "
        "assert d == pathlib.Path(s.__file__).parent.parent / 'kernels', d; "
        "assert 'lr_at' in s.translation_unit('schedule.cu')"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         )  # the current directory comes first on sys.path
    assert run.returncode == 0, run.stdout + run.stderr
    assert str(tmp_path) in run.stdout
