"""The CuPy side of the GPU backend: compile, cache, launch. Imports CuPy.

Everything the wrappers (``schedule``, ``updates``, ``simulate``) need from
CuPy goes through this module, so the host test can stand a NumPy-backed
runtime in its place and run the wrappers' logic against the kernels' bodies
compiled for the CPU (tests/test_cuda_host.py).

- ``module(file, device)``: the loaded module of one kernel file, compiled by
  NVRTC through CuPy with ``_source.OPTIONS`` exactly (``cupy.RawModule`` would add
  ``-ftz=true``), cached on disk (``_source.cached_binary``), loaded once per device.
- ``launch(file, name, grid, block, args, device)``: one launch from a plan's
  ``(ctype, value)`` arguments (``fastdecay._gpu._plan``); ``prepare(args)`` converts
  them once and ``launch_values`` launches from that, on a given stream (a fused
  update's repeated launch: ``fastdecay._gpu.updates``).
- ``launch_stream(device, arrays)``: the stream a launch over ``arrays`` goes to
  (torch's current one for torch tensors), from a cache by torch's raw handle.
- ``constant(array, device)``: a device copy of a read-only host array
  (schedule tables, tensor tables), cached by content (by identity when large),
  so repeated calls and CUDA-graph capture after a warm-up neither allocate nor copy.
"""

import collections
import contextlib
import functools
import sys

import numpy as np

from . import _plan, _source, require_cupy

cp = require_cupy()
xp = cp

# The cache of device copies of host tables holds at most this many entries and bytes (device
# copies and content keys together): a table made afresh at every call (a large batch of
# schedules, the expected dynamics' per-call tables) never hits again, and would otherwise be
# kept on the host and the device until 512 newer ones pushed it out
_CONSTANTS_MAX = 512
_CONSTANTS_MAX_BYTES = 256 << 20
_constants = collections.OrderedDict()
_constants_bytes = 0
# Entries a captured CUDA graph reads: a graph keeps their addresses for every replay, so
# they are never evicted (the LRU cache above would free them to CuPy's pool after 512 others).
_captured = {}


@functools.cache
def module(file, device):
    """The compiled kernels of ``kernels/<file>``, loaded on device number ``device``."""
    from cupy.cuda import compiler

    source = _source.translation_unit(file)
    dev = cp.cuda.Device(device)
    with dev:
        arch = dev.compute_capability
        nvrtc = ".".join(map(str, cp.cuda.nvrtc.getVersion()))

        def compile():
            # cubin for this architecture where NVRTC knows it, else PTX the driver finishes
            out = compiler.compile_using_nvrtc(source, options=_source.OPTIONS, arch=arch, filename=file)
            out = out[0] if isinstance(out, tuple) else out  # (binary, name mapping) in CuPy 12-14
            return out.encode() + b"\0" if isinstance(out, str) else out  # PTX text: NUL-terminated

        binary = _source.cached_binary(source, _source.OPTIONS, arch, f"nvrtc {nvrtc} cupy {cp.__version__}", compile)
        loaded = cp.cuda.function.Module()
        loaded.load(binary)
    return loaded


@functools.cache
def function(file, name, device):
    return module(file, device).get_function(name)


@functools.cache
def multiprocessors(device):
    return cp.cuda.Device(device).attributes["MultiProcessorCount"]


def is_torch(x):
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def device_of(x):
    """Device number of a CuPy array or CUDA torch tensor."""
    if is_torch(x):
        return x.device.index if x.device.index is not None else 0
    return x.device.id


def pointer(x):
    """Data address of a CuPy array or torch tensor."""
    return x.data_ptr() if is_torch(x) else x.data.ptr


def as_array(x):
    """A CuPy view of a CuPy array or CUDA torch tensor (zero-copy, DLPack)."""
    return cp.from_dlpack(x) if is_torch(x) else x


def stream_for(arrays):
    """The stream to launch on: torch's current stream for torch tensors (so torch's
    own ordering and CUDA-graph capture see the launch), else CuPy's current one."""
    for x in arrays:
        if is_torch(x):
            import torch

            stream = torch.cuda.current_stream(x.device)
            if hasattr(cp.cuda.Stream, "from_external") and hasattr(stream, "__cuda_stream__"):
                return cp.cuda.Stream.from_external(stream)  # CuPy >= 14 (ExternalStream is deprecated)
            return cp.cuda.ExternalStream(stream.cuda_stream, device_of(x))
    return None


_STREAMS = {}  # (device, torch's raw stream handle) -> CuPy's wrapper of that stream
_raw_stream = None  # torch's current raw stream handle by device (set at the first call)


def _torch_raw_stream():
    import torch

    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)  # one C call (~0.1 us; current_stream() ~4 us)
    if raw is not None:
        return raw
    return lambda device: torch.cuda.current_stream(device).cuda_stream


def launch_stream(device, arrays):
    """The stream ``stream_for(arrays)`` gives (None: CuPy's current stream), its CuPy
    wrapper kept by torch's raw stream handle. A wrapper does not own its stream, so one
    kept past the life of its stream is never used for another: the handle is the key."""
    global _raw_stream
    if not arrays or not is_torch(arrays[0]):
        return None
    if _raw_stream is None:
        _raw_stream = _torch_raw_stream()
    key = (device, _raw_stream(device))
    stream = _STREAMS.get(key)
    if stream is None:
        stream = stream_for(arrays)
        if len(_STREAMS) >= 64:
            _STREAMS.clear()
        _STREAMS[key] = stream
    return stream


def constant(array, device):
    """A cached device copy of the host array ``array`` (read-only by contract)."""
    key, owner = _plan.constant_key(array)
    key = (device,) + key
    in_capture = capturing()
    hit = _constants.get(key)
    if hit is None or hit[0] is not owner:
        hit = _captured.get(key)
    if hit is not None and hit[0] is owner:
        if key in _constants:
            _constants.move_to_end(key)
        if in_capture:
            _captured[key] = hit
        return hit[1]
    if in_capture:
        # a copy from the host cannot be captured (its source would have to outlive the graph):
        # the tables must be on the device before capture
        raise RuntimeError("a CUDA graph is being captured, and this call's tensor or schedule tables are not on the "
                           "device yet: make the same call once before the capture (a warm-up with the tensors, "
                           "schedules and options the graph will use), so that the capture finds them there")
    with cp.cuda.Device(device):
        value = cp.asarray(np.ascontiguousarray(array))
    _keep(key, owner, value)
    return value


def _keep(key, owner, value):
    """Cache ``value`` under ``key`` (dropping an entry of the same key), then drop the least
    recently used entries past ``_CONSTANTS_MAX`` entries or ``_CONSTANTS_MAX_BYTES`` bytes (the
    newest is kept, whatever its size: the call that made it reads it)."""
    global _constants_bytes
    old = _constants.pop(key, None)
    if old is not None:
        _constants_bytes -= _entry_bytes(key, old[1])
    _constants[key] = (owner, value)
    _constants_bytes += _entry_bytes(key, value)
    while len(_constants) > 1 and (len(_constants) > _CONSTANTS_MAX or _constants_bytes > _CONSTANTS_MAX_BYTES):
        dropped_key, (_, dropped) = _constants.popitem(last=False)
        _constants_bytes -= _entry_bytes(dropped_key, dropped)


def _entry_bytes(key, value):
    """An entry's bytes: its device copy, and the host bytes a content key holds."""
    return int(value.nbytes) + (len(key[-1]) if key[1] == "content" else 0)


def capturing(stream=None):
    """Whether ``stream`` (None: the current stream) is capturing a CUDA graph."""
    try:
        return bool((stream if stream is not None else cp.cuda.get_current_stream()).is_capturing())
    except Exception:  # a CuPy without the query, or a stream it cannot ask
        return False


def current_device():
    return cp.cuda.runtime.getDevice()


def empty(shape, dtype, device):
    with cp.cuda.Device(device):
        return cp.empty(shape, dtype=dtype)


_CTYPES = {"i32": np.int32, "u32": np.uint32, "i64": np.int64, "u64": np.uint64, "f64": np.float64}


def value(kind, x):
    """One plan argument ``(kind, x)`` as a launch takes it (``prepare``)."""
    if kind != "ptr":
        return _CTYPES[kind](x)
    if x is None:
        return np.uint64(0)
    if isinstance(x, cp.ndarray):
        return x
    return np.uint64(pointer(x))


@contextlib.contextmanager
def context(device, arrays=()):
    """Work on ``device``, on torch's current stream where ``arrays`` hold torch tensors
    (so torch's ordering and CUDA-graph capture see every allocation and launch)."""
    stream = stream_for(arrays)
    with cp.cuda.Device(device):
        if stream is None:
            yield
        else:
            with stream:
                yield


def prepare(args):
    """A plan's arguments as a launch takes them (``launch_values``): converted once, so a
    repeated launch pays none of it (device arrays stay arrays: their addresses are read
    at each launch, and the values hold them alive)."""
    return tuple(value(kind, x) for kind, x in args)


def launch_values(file, name, grid, block, values, device, stream=None):
    """Launch kernel ``name`` of ``kernels/<file>`` with ``prepare``'d arguments on
    ``stream`` (None: the current stream), device ``device`` current."""
    kernel = function(file, name, device)
    grid = grid if isinstance(grid, tuple) else (grid,)
    if stream is None:
        kernel(grid, (block,), values)
    else:
        kernel(grid, (block,), values, stream=stream)


def launch(file, name, grid, block, args, device):
    """Launch kernel ``name`` of ``kernels/<file>`` with a plan's arguments on the
    current stream (inside ``context``)."""
    launch_values(file, name, grid, block, prepare(args), device)
