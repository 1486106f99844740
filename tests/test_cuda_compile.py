"""Every CUDA kernel file compiles with nvcc for sm_80 and sm_90: no GPU needed.

The sources compiled are exactly what the GPU backend hands to NVRTC
(``fastdecay._gpu._source.translation_unit``: local headers inlined behind
``#line`` directives, the same options), so a syntax or type error in
``kernels/`` fails CI even on machines without a GPU. Skipped where no nvcc is
installed.
"""

import concurrent.futures
import ctypes
import ctypes.util
import glob
import os
import sys
import pathlib
import re
import shutil
import subprocess

import pytest

from fastdecay._gpu import _source

NVCC = shutil.which("nvcc") or next(
    (str(p) for p in [pathlib.Path(os.environ.get("CUDA_HOME", "/usr/local/cuda")) / "bin" / "nvcc"] if p.exists()),
    None,
)
if NVCC is None:
    pytest.skip("nvcc not found (not in PATH, nor in $CUDA_HOME/bin): the CUDA compile check needs the CUDA toolkit",
                allow_module_level=True)

ARCHS = ("80", "90")


def _supported_archs():
    run = subprocess.run([NVCC, "--list-gpu-arch"], capture_output=True, text=True)
    return set(re.findall(r"compute_(\d+)", run.stdout))


def _nvcc(args, cwd):
    run = subprocess.run([NVCC, *_source.OPTIONS, *args], capture_output=True, text=True, cwd=cwd)
    return run.returncode, run.stdout + run.stderr


@pytest.fixture(scope="module")
def archs():
    supported = _supported_archs()
    missing = [a for a in ARCHS if a not in supported]
    if missing:
        pytest.skip(f"{NVCC} cannot target sm_{', sm_'.join(missing)} (supports {sorted(supported)})")
    return ARCHS


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, archs):
    """Every kernel file built once, in parallel: one front-end pass to PTX for the oldest
    architecture, kept (the entry points are read from it), and machine code for every
    architecture from that PTX, in one fatbin. One PTX serves them all because the sources
    never read ``__CUDA_ARCH__`` to choose code (``test_nvrtc_compiles_what_cupy_will_compile``
    checks that, and compiles the front end for the newest architecture as CuPy does); a front
    end an architecture and a second one for the PTX cost twice the CPU here."""
    assert all(re.search(r"__CUDA_ARCH__\s*[<>=!]", _source.translation_unit(name)) is None
               for name in _source.KERNELS), "code for some architectures only: compile a PTX for each"
    build = tmp_path_factory.mktemp("nvcc")
    jobs = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(_source.KERNELS)) as pool:
        for name in _source.KERNELS:
            src = build / name
            src.write_text(_source.translation_unit(name))
            keep = build / f"{src.stem}.keep"
            keep.mkdir()
            gencode = f"-gencode=arch=compute_{archs[0]},code=[{','.join(f'sm_{a}' for a in archs)}]"
            jobs[name] = pool.submit(_nvcc, ["--fatbin", "-Werror", "all-warnings", "--keep", "--keep-dir", keep.name,
                                             gencode, name, "-o", f"{src.stem}.fatbin"], build)
    return build, {name: job.result() for name, job in jobs.items()}


def _ptx(build, name):
    """The PTX the fatbin of kernel file ``name`` was assembled from."""
    return (build / f"{pathlib.Path(name).stem}.keep" / f"{pathlib.Path(name).stem}.ptx").read_text()


def test_every_kernel_file_is_registered():
    on_disk = {p.name for p in _source.kernel_dir().glob("*.cu")}
    assert on_disk == set(_source.KERNELS), "kernels/*.cu and fastdecay._gpu._source.KERNELS disagree"


@pytest.mark.parametrize("name", sorted(_source.KERNELS))
def test_compiles_for_sm80_and_sm90(compiled, name):
    build, results = compiled
    rc, log = results[name]
    assert rc == 0, f"nvcc failed on {name}:\n{log}"
    fatbin = (build / name).with_suffix(".fatbin").read_bytes()
    for arch in ("sm_80", "sm_90"):
        assert arch.encode() in fatbin, f"{name}: no {arch} code in the fatbin"
        stem = pathlib.Path(name).stem
        assert (build / f"{stem}.keep" / f"{stem}.{arch}.cubin").stat().st_size > 0, f"{name}: no {arch} cubin"


@pytest.mark.parametrize("name", sorted(_source.KERNELS))
def test_entry_points_are_the_ones_the_wrappers_launch(compiled, name):
    build, results = compiled
    rc, log = results[name]
    assert rc == 0, f"nvcc failed on {name}:\n{log}"
    ptx = _ptx(build, name)
    entries = set(re.findall(r"\.entry\s+(\w+)\s*\(", ptx))
    assert entries == set(_source.KERNELS[name])


def _entry_parameters(ptx):
    """{entry point: (PTX type of each parameter, ...)} of a PTX module."""
    return {name: tuple(re.findall(r"\.param\s+\.(\w+)", params))
            for name, params in re.findall(r"\.entry\s+(\w+)\s*\(([^)]*)\)", ptx)}


def test_every_fused_entry_point_takes_the_one_argument_list_the_plan_passes(compiled):
    """Every rule's entry points, in every storage, compile to the same parameter list, and
    it is the list ``fastdecay._gpu._plan.fused_args`` passes (ptr and i64 as .u64, i32 as
    .u32, f64 as .f64): a new rule needs no argument list of its own."""
    import numpy as np

    from fastdecay import _rules as R
    from fastdecay._gpu import _plan

    build, results = compiled
    assert results["updates.cu"][0] == 0, results["updates.cu"][1]
    entries = _entry_parameters(_ptx(build, "updates.cu"))
    ptx_type = {"ptr": "u64", "i64": "u64", "i32": "u32", "f64": "f64"}
    table = np.zeros((1, _plan.N_FIELDS), np.int64)
    rates = np.zeros((1, 1, 8))
    ref = _plan.scalar_ref(0)
    for kernel, fused in R.FUSED.items():
        values = tuple(0.0 if kind == "f64" else 0 for _, kind in fused.options)
        args = _plan.fused_args(kernel, table, 1, (rates, rates, rates), ref, values, ref, ref)
        want = tuple(ptx_type[kind] for kind, _ in args)
        for name, _, _, _ in _source.fused_entries():
            if name.startswith(f"{kernel}_"):
                assert entries[name] == want, name
    assert len({entries[name] for name, _, _, _ in _source.fused_entries()}) == 1


def test_errors_point_at_the_header_and_line(tmp_path, archs):
    """The #line directives the loader writes make compiler messages name the real file."""
    (tmp_path / "broken.cuh").write_text("#pragma once\n\n__device__ int f() { return undeclared_name; }\n")
    (tmp_path / "k.cu").write_text('#include "broken.cuh"\nextern "C" __global__ void k(int* o) { *o = f(); }\n')
    build = tmp_path / "build"
    build.mkdir()
    (build / "k.cu").write_text(_source.translation_unit("k.cu", tmp_path))
    rc, log = _nvcc(["--ptx", f"-arch=compute_{archs[0]}", "k.cu"], build)
    assert rc != 0
    assert f"{(tmp_path / 'broken.cuh').as_posix()}(3)" in log, log


def _find_nvrtc():
    """libnvrtc from the CUDA toolkit, the system, or the nvidia-cuda-nvrtc wheels."""
    roots = [os.path.join(p, "nvidia") for p in sys.path if os.path.isdir(os.path.join(p, "nvidia"))]
    home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
    patterns = [os.path.join(home, "lib64", "libnvrtc.so*")]
    patterns += [os.path.join(r, "*", "lib", "libnvrtc.so*") for r in roots]
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            if "builtins" not in path and "alt" not in os.path.basename(path):
                return path
    return ctypes.util.find_library("nvrtc")


NVRTC = _find_nvrtc()


@pytest.mark.skipif(NVRTC is None, reason="libnvrtc not found (CUDA toolkit lib64 or the nvidia-cuda-nvrtc wheel): "
                    "the nvcc check above still ran")
@pytest.mark.parametrize("name", sorted(_source.KERNELS))
def test_nvrtc_compiles_what_cupy_will_compile(name):
    """The run-time compiler CuPy uses has no system headers: the translation units
    must compile there too, with the loader's options. One compile, to PTX: the
    sources read ``__CUDA_ARCH__`` only to tell device code from host code, so the
    front end sees the same code for every architecture, and the machine code for
    sm_80 and sm_90 is checked by nvcc above (``test_compiles_for_sm80_and_sm90``)."""
    by_arch = re.search(r"__CUDA_ARCH__\s*[<>=!]", _source.translation_unit(name))
    assert by_arch is None, f"{name} has code for some architectures only: compile it for each"
    # the wheel's libnvrtc finds its builtins library only through the loader's
    # search path: load that first, globally
    for builtins in sorted(glob.glob(os.path.join(os.path.dirname(NVRTC), "libnvrtc-builtins.so*"))):
        ctypes.CDLL(builtins, mode=ctypes.RTLD_GLOBAL)
    lib = ctypes.CDLL(NVRTC)
    src = _source.translation_unit(name).encode()
    # the options CuPy's compile_using_nvrtc adds to the loader's (CuPy 13/14), for PTX
    arch = f"compute_{ARCHS[-1]}"
    prog = ctypes.c_void_p()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), src, name.encode(), 0, None, None) == 0
    opts = [o.encode() for o in (*_source.OPTIONS, f"-arch={arch}", "--device-as-default-execution-space")]
    rc = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(prog, log)
    ptx = None
    if rc == 0:
        lib.nvrtcGetPTXSize(prog, ctypes.byref(size))
        buf = ctypes.create_string_buffer(size.value)
        assert lib.nvrtcGetPTX(prog, buf) == 0
        ptx = buf.value.decode()
    lib.nvrtcDestroyProgram(ctypes.byref(prog))
    assert rc == 0, f"NVRTC ({NVRTC}) failed on {name} for {arch}:\n{log.value.decode()}"
    # float32 subnormals are kept, as on the CPU (CuPy's RawModule would flush them:
    # -ftz=true). (libdevice's float64 division seeds with rcp.approx.ftz.f64: not f32.)
    flushing = re.findall(r"^\s*([a-z]+(?:\.[a-z0-9]+)*\.ftz(?:\.[a-z0-9]+)*\.f32\b[^;]*)", ptx, re.M)
    assert not flushing, f"flush-to-zero float32 instructions in {name}: {flushing[:3]}"
