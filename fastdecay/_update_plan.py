"""Launch plans of the fused updates: the arrays of a call validated once, their address table kept.

``fastdecay.updates`` hands every call's arrays here as *streams*: one list per
role (the parameters, the gradients, each state buffer, the compensation
buffers), each list one array per parameter. ``plan_for`` returns a ``Plan``:

- **checked**: every array is a NumPy / CuPy array or a CPU / CUDA torch tensor
  with real memory (not ``meta``, fake, nested or sparse; NumPy arrays in the
  machine's byte order), of one backend and device; parameters float32, float64,
  float16 or bfloat16; gradients and compensation buffers of their parameter's
  dtype, state buffers of the state dtype; every array of a parameter's shape;
  written arrays writeable;
- **laid out**: a parameter whose arrays are all dense (non-overlapping, no
  gaps) with the same strides is updated on its storage as a flat run of
  elements, whatever the order (C, Fortran, channels_last, transposed); any
  other parameter (a strided slice, or state in another layout than its
  parameter) is copied to contiguous temporaries, updated there and copied back;
- **free of harmful overlap**: no written array overlaps itself (an expanded or
  broadcast view) or shares memory with another array of the call, except that a
  gradient may be its own parameter (the same memory, element for element: each
  element is read before it is written). Read-only gradients may share memory
  with each other (one gradient for two parameters). Anything else — a state
  that is its parameter, exp_avg that is exp_avg_sq, one state for two
  parameters, a parameter twice, a gradient overlapping its parameter at an
  offset — would make the result depend on the order of the writes, and is
  refused naming both arrays;
- **grouped**: one kernel launch per (parameter dtype, state dtype), with the
  int64 address table (``fastdecay._cpu.updates.ROWS`` rows) and sizes ready.

Plans are cached by the identity of the parameter list's arrays (weak
references: a plan never keeps an array alive, and dies with any of its
arrays). A later call with the same arrays re-checks only what can change
cheaply — identity of every array; the data pointer of torch tensors (moved by
``p.data = ...``), their shape and layout (``t_()``, ``resize_()``,
``unsqueeze_()``, ``as_strided_()`` change them in place: shape and contiguity
where the plan's tensors are row-major, else shape and strides), dtype
(``x.data = x.data.view(torch.float16)`` re-types a bfloat16 tensor in place)
and pending neg bit; dtype, shape, strides (and, written ones, the writeable
flag) of NumPy arrays, kept gradients included — and launches; gradients that
are new objects (torch makes a new ``.grad`` each backward) are checked for
type, dtype, device, shape, strides, neg bit and overlap, a few attribute reads
each. From a plan's third call, one pass of a ``tensor_guard`` (torch's own
C++ guard of compiled graphs) stands for the torch tensors' attribute passes
but the data pointers; where it fails, the passes decide. Anything else that
differs builds a new plan.
"""

import sys
import weakref
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from itertools import chain
from operator import attrgetter

import numpy as np

from . import _validate as V
from ._arrays import CUPY, NUMPY, TORCH_CPU, TORCH_CUDA, backend_of, plain_torch_types, torch_storage_problem

PARAM_DTYPES = ("float32", "float64", "float16", "bfloat16")
STATE_DTYPES = ("float32", "bfloat16")
LOW_PRECISION = ("float16", "bfloat16")
ROWS = 6  # param, grad, buf0, buf1, buf2, compensation (fastdecay._cpu.updates.ROWS, kernels/updates.cu)
GRAD = 1
_MAX_PLANS = 16
_PLAIN_TENSOR_SET = frozenset()  # torch.Tensor, torch.nn.Parameter, ... (set when torch is in use)
_DTYPE, _SHAPE = attrgetter("dtype"), attrgetter("shape")
_IS_CPU, _IS_NESTED = attrgetter("is_cpu"), attrgetter("is_nested")
# torch.Tensor.is_contiguous, .stride and .is_neg (set when torch is in use)
_TENSOR_IS_CONTIGUOUS = _TENSOR_STRIDE = _TENSOR_IS_NEG = None
_TENSOR_GUARDS = None  # torch's TensorGuards class (``tensor_guard``); False where torch has none


def label(name, k, listed):
    return f"{name}[{k}]" if listed else name


def state_dtype_for(param_dtype, state_dtype):
    """The dtype state buffers of a ``param_dtype`` parameter are stored in."""
    if state_dtype is None:
        return "float32" if param_dtype in LOW_PRECISION else param_dtype
    return state_dtype


# ----------------------------------------------------------------------------- one array


class _Info:
    """What the plan needs to know of one array."""

    __slots__ = ("address", "size", "itemsize", "dtype", "array_dtype", "shape", "strides", "byte_strides", "dense",
                 "device")

    def span(self):
        """(lo, hi) byte addresses that may hold the array's elements ((0, 0) when empty)."""
        if self.size == 0:
            return 0, 0
        lo = hi = 0
        for n, st in zip(self.shape, self.strides):
            reach = (n - 1) * st
            if reach < 0:
                lo += reach
            else:
                hi += reach
        return self.address + lo * self.itemsize, self.address + (hi + 1) * self.itemsize

    def row_major(self):
        """Whether the elements lie in row-major (C) order, as ``torch.Tensor.is_contiguous``
        tells: the strides of the dimensions longer than one are those of a C array."""
        expected = 1
        for n, st in zip(reversed(self.shape), reversed(self.strides)):
            if n != 1:
                if st != expected:
                    return False
                expected *= n
        return True

    def layout(self):
        """The strides of the dimensions longer than one: equal for two arrays of one shape
        exactly when their elements lie in the same order."""
        return tuple(st for n, st in zip(self.shape, self.strides) if n != 1)


def _may_overlap_itself(shape, strides):
    """True unless every element has its own memory: sorted by stride, each dimension's
    stride must pass the reach of the smaller ones (a sufficient test, as torch's and
    NumPy's quick ones; a stride of 0 on a dimension longer than one always fails it). An
    empty array has no elements to share."""
    if 0 in shape:
        return False
    reach = 0
    for st, n in sorted((abs(st), n) for n, st in zip(shape, strides) if n != 1):
        if st <= reach:
            return True
        reach += (n - 1) * st
    return False


def _dense(shape, strides):
    """True when the elements fill one gap-free run (any order of the dimensions)."""
    expected = 1
    for st, n in sorted((st, n) for n, st in zip(shape, strides) if n != 1):
        if st != expected:
            return False
        expected *= n
    return True


def _torch_info(x):
    problem = torch_storage_problem(x)
    if problem is not None:
        raise TypeError(problem)
    if x.is_neg() or x.is_conj():
        raise TypeError("a tensor without a pending conj/neg bit (call .resolve_neg()/.resolve_conj())")
    info = _Info()
    info.dtype = str(x.dtype)[len("torch."):]
    info.array_dtype = x.dtype
    info.shape = tuple(x.shape)
    info.strides = tuple(x.stride())
    info.size = x.numel()
    info.itemsize = x.element_size()
    info.address = x.data_ptr()
    info.dense = _dense(info.shape, info.strides)
    info.device = x.get_device() if x.is_cuda else None
    # a tensor made under torch.inference_mode() takes no in-place update outside it (torch refuses)
    return info, not (x.is_inference() and not sys.modules["torch"].is_inference_mode_enabled())


def _array_info(x, backend):
    if not x.dtype.isnative:
        raise TypeError(f"an array in the machine's byte order, got dtype {x.dtype.str} "
                        "(convert it with .astype(x.dtype.newbyteorder('=')))")
    info = _Info()
    info.dtype = x.dtype.name
    info.array_dtype = x.dtype  # compared on later calls (``dtype.name`` is a slow property in NumPy)
    info.shape = tuple(x.shape)
    info.itemsize = x.itemsize
    info.size = int(x.size)
    if any(st % x.itemsize for st in x.strides):
        raise TypeError(f"an array whose strides are whole elements, got strides {x.strides} (bytes)")
    info.byte_strides = x.strides  # compared on later calls (the strides setter changes them in place)
    info.strides = tuple(st // x.itemsize for st in x.strides)
    info.dense = _dense(info.shape, info.strides)
    if backend == CUPY:
        info.address, info.device, writeable = x.data.ptr, x.device.id, True
    else:
        info.address, info.device, writeable = x.ctypes.data, None, x.flags.writeable
    return info, writeable


def _inspect(x, name, backend, param_name):
    """(_Info, writeable) of ``x``, or TypeError naming ``name``."""
    b = backend_of(x)
    if b == NUMPY and not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy, CuPy or torch array, got {type(x).__name__}: {V.shown(x)}")
    if b != backend:
        raise TypeError(f"{name} must be the same kind of array as {param_name} ({backend}), got {b}; "
                        "mixed array types or devices in one call are not supported")
    try:
        if b in (TORCH_CPU, TORCH_CUDA):
            return _torch_info(x)
        return _array_info(x, b)
    except TypeError as err:
        raise TypeError(f"{name} must be {err}") from None


# ----------------------------------------------------------------------------- overlap


def _check_overlaps(spans, names, written, allowed, layouts=None):
    """Refuse a written array that shares memory with any other.

    ``spans``: int (n, 2) byte ranges; ``names``: labels; ``written``: bool (n,);
    ``allowed``: for each array the index of the one written array it may coincide
    with exactly (a gradient and its own parameter), or -1; ``layouts``: a function of no
    arguments giving each array's (address, shape, strides in elements, itemsize), called
    only where two ranges meet, to decide exactly whether they share a byte (strided views
    that interleave, ``a[::2]`` and ``a[1::2]``, share none); without it, ranges that meet
    are refused.
    """
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    keep = spans[:, 1] > spans[:, 0]
    idx = np.flatnonzero(keep & written)
    order = idx[np.argsort(spans[idx, 0], kind="stable")]
    lo, hi = spans[order, 0], spans[order, 1]

    made = []

    def share(a, b):
        if layouts is None:
            return True
        if not made:
            made.append(layouts())
        return not _share_no_byte(made[0][a], made[0][b])

    # (sorted by start, some two ranges meet exactly where some neighbours do)
    interleaved = bool(np.any(lo[1:] < hi[:-1]))
    if interleaved:
        for pos, a in enumerate(order):
            for b in order[pos + 1:]:
                if spans[b, 0] >= spans[a, 1]:
                    break
                if share(a, b):
                    _refuse(names[b], names[a])
    reads = np.flatnonzero(keep & ~written)
    if reads.size == 0 or order.size == 0:
        return
    last = np.searchsorted(lo, spans[reads, 1], side="left")  # the first written span starting at or after its end
    if interleaved:  # (written ranges that interleave: their ends are not in order; a rare layout)
        first = np.zeros_like(last)
    else:
        first = np.searchsorted(hi, spans[reads, 0], side="right")  # the first written span ending after the read starts
    for j in np.flatnonzero(last > first):
        r = reads[j]
        for w in order[first[j]:last[j]]:
            if spans[w, 1] <= spans[r, 0]:
                continue  # (ends before the read starts)
            if allowed[r] == w and np.array_equal(spans[r], spans[w]):
                continue
            if share(r, w):
                _refuse(names[r], names[w])


_OVERLAP_WORK = 100_000  # NumPy's bound on the search for a shared byte (beyond it: refused as sharing)


def _share_no_byte(a, b):
    """Whether arrays of layouts ``a`` and ``b`` ((address, shape, strides in elements,
    itemsize)) share no byte: NumPy's exact test on views made from the addresses alone
    (no memory is read, so a GPU address serves as well)."""
    try:
        return not np.shares_memory(_address_view(*a), _address_view(*b), max_work=_OVERLAP_WORK)
    except np.exceptions.TooHardError:
        return False


class _AddressView:
    """An ``__array_interface__`` over an address: a NumPy view whose memory is never read."""

    def __init__(self, address, shape, strides, itemsize):
        self.__array_interface__ = {"version": 3, "data": (address, True), "shape": tuple(shape),
                                    "strides": tuple(st * itemsize for st in strides), "typestr": f"|V{itemsize}"}


def _address_view(address, shape, strides, itemsize):
    return np.asarray(_AddressView(address, shape, strides, itemsize))


def _refuse(name, other):
    raise ValueError(
        f"{name} overlaps {other} in memory: a written array (parameter, state or compensation buffer) must not "
        "share memory with any other array of the call, except a gradient that is its own parameter; pass "
        "separate arrays (e.g. .clone() / .copy())"
    )


# ----------------------------------------------------------------------------- plans


class Group:
    """Tensors updated by one kernel launch: one storage combination, all laid out directly."""

    __slots__ = ("param", "state", "index", "whole", "addresses", "sizes", "first_block", "parts", "n_elements",
                 "device", "launch")

    def __init__(self, param, state, index, addresses, sizes, device, whole):
        self.param, self.state, self.index, self.device = param, state, index, device
        self.whole = whole  # the group holds every tensor of the call, in order (index is 0, 1, ...)
        self.addresses = addresses
        self.sizes = sizes
        self.n_elements = int(sizes.sum())
        self.first_block = None  # the CPU backend's block layout, made once on first use
        self.parts = None  # and its runs of blocks, by thread count
        self.launch = None  # the GPU backend's prepared launches (``fastdecay._gpu.updates``), made on first use


class Plan:
    """The checked arrays of one call (see the module docstring)."""

    def __init__(self, backend, listed, names, rows, infos, state_of, direct, copied, spans, span_names,
                 span_written, span_allowed):
        self.backend = backend
        self.listed = listed
        self.names = names  # stream names, in stream order
        self.rows = rows  # address-table row of each stream
        self.infos = infos  # per stream, per tensor
        self.state_of = state_of  # state dtype per tensor
        self.copied = copied  # tensors updated through contiguous copies
        self.groups = []
        self.ids = None
        self.refs = []
        self.grad_refs = []
        self.pointers = None  # per stream, the data addresses the plan was built on
        self.kept = None  # the streams of written arrays (all but the gradients), and the gradients' stream
        self.grad_stream = None
        self.kept_pointers = None  # torch tensors: the written tensors' addresses, stream after stream
        self.kept_dtypes = None  # and their torch dtypes
        # torch tensors: ``tensor_guard``s of the written tensors and of the gradients, made
        # once the passes above have accepted them (None: not made, or torch has none)
        self.kept_guard = None
        self.grad_guard = None
        self.torch = backend in (TORCH_CPU, TORCH_CUDA)
        self._written = (spans, span_names, span_written, span_allowed)
        self.grad_overlap = None  # _GradOverlap, made at the first call with new gradients
        params = infos[0]
        self.grad_checks = [(p.dtype, p.shape, p.strides) for p in params]
        self.param_sizes = np.array([p.size for p in params], dtype=np.int64)
        self.param_offsets = np.array([[lo - p.address, hi - p.address] if p.size else [0, 0]
                                       for p, (lo, hi) in ((p, p.span()) for p in params)],
                                      dtype=np.int64).reshape(-1, 2)
        self.torch_dtypes = None  # torch tensors: the parameters' torch dtypes, shapes, strides, devices
        self.shapes = [p.shape for p in params]
        self.strides = [p.strides for p in params]
        # every parameter in row-major order: a new gradient's layout is then one C-level
        # bool a tensor (is_contiguous), no tuple of strides made for each
        self.row_major = all(p.row_major() for p in params)
        self.devices = [p.device for p in params]
        self.data_ptr = None  # torch.Tensor.data_ptr (torch tensors)
        self.torch_layouts = None  # torch tensors: per stream, what _same_torch_layout compares
        by_kind = {}
        for k in direct:
            by_kind.setdefault((params[k].dtype, state_of[k]), []).append(k)
        for (param, state), index in by_kind.items():
            addresses = np.zeros((ROWS, len(index)), dtype=np.int64)
            for s, row in enumerate(rows):
                addresses[row] = [infos[s][k].address for k in index]
            sizes = np.array([params[k].size for k in index], dtype=np.int64)
            self.groups.append(Group(param, state, np.array(index, dtype=np.int64), addresses, sizes,
                                     params[index[0]].device, len(index) == len(params)))


def build(backend, listed, streams, state_dtype):
    """A new ``Plan`` over ``streams``: [(name, row, arrays, role)] with role "param" (first),
    "grad", "state" or "comp"; or a named ValueError / TypeError. ``state_dtype``: the
    option (None, "float32", "bfloat16"), or a list of each tensor's state dtype."""
    params = streams[0][2]
    pname = streams[0][0]
    infos = []
    written_flags = []
    for name, row, arrays, role in streams:
        column = []
        for k, x in enumerate(arrays):
            lab = label(name, k, listed)
            info, writeable = _inspect(x, lab, backend, pname)
            if role != "grad" and not writeable:
                torch_tensor = backend in (TORCH_CPU, TORCH_CUDA)
                what = "an inference tensor (made under torch.inference_mode())" if torch_tensor else "a read-only array"
                raise ValueError(f"{lab} must be writeable (it is updated in place), got {what}")
            if role != "grad" and not info.dense and _may_overlap_itself(info.shape, info.strides):
                raise ValueError(f"{lab} must not overlap itself in memory (it is updated in place), got shape "
                                 f"{info.shape} with strides {info.strides} (elements): an expanded, broadcast "
                                 "or other self-overlapping view; pass a copy (.clone() / .copy())")
            column.append(info)
        infos.append(column)
        written_flags.append(role != "grad")
    if backend in (TORCH_CUDA, CUPY):
        # one launch per group runs on one device: a pointer of another GPU's memory in its
        # table would be read and written from the wrong device, unordered with that device's work
        first = infos[0][0].device if infos[0] else None
        for k, p in enumerate(infos[0]):
            if p.device != first:
                raise ValueError(f"{label(pname, k, listed)} is on GPU {p.device} but {label(pname, 0, listed)} is on "
                                 f"GPU {first}: one call updates the tensors of one device (one call per device)")
    state_of = []
    for k, p in enumerate(infos[0]):
        if p.dtype not in PARAM_DTYPES:
            raise TypeError(f"{label(pname, k, listed)} must be float32, float64, float16 or bfloat16, "
                            f"got dtype {p.dtype}")
        state = state_dtype[k] if isinstance(state_dtype, list) else state_dtype_for(p.dtype, state_dtype)
        if p.dtype == "float64" and state != "float64":
            raise ValueError(f"state_dtype must be None for float64 parameters ({label(pname, k, listed)}), "
                             f"got {V.shown(state_dtype)}")
        state_of.append(state)
    direct, copied = [], []
    for k, p in enumerate(infos[0]):
        same_layout = p.dense
        for (name, _, arrays, role), column in zip(streams[1:], infos[1:]):
            x = column[k]
            lab = label(name, k, listed)
            want = state_of[k] if role == "state" else p.dtype
            if x.dtype != want:
                whose = "the state dtype" if role == "state" else "the dtype of its parameter"
                raise TypeError(f"{lab} must have {whose} ({want}), got {x.dtype}")
            if x.shape != p.shape:
                raise ValueError(f"{lab} must have the shape of its parameter {p.shape}, got {x.shape}")
            if backend in (TORCH_CUDA, CUPY) and x.device != p.device:
                raise ValueError(f"{lab} must be on its parameter's device {p.device}, got {x.device}")
            same_layout = same_layout and x.dense and x.layout() == p.layout()
        (direct if same_layout else copied).append(k)
    # overlap: spans of every array in stream order (the parameters, then the gradients: _GRADS)
    spans, names, written, allowed = [], [], [], []
    for s, ((name, _, arrays, role), column) in enumerate(zip(streams, infos)):
        for k, x in enumerate(column):
            spans.append(x.span())
            names.append(label(name, k, listed))
            written.append(written_flags[s])
            allowed.append(k if role == "grad" else -1)  # a gradient may coincide with its parameter (index k)
    spans = np.array(spans, dtype=np.int64).reshape(-1, 2)
    written = np.array(written, dtype=bool)
    _check_overlaps(spans, names, written, allowed,
                    lambda: [(x.address, x.shape, x.strides, x.itemsize) for column in infos for x in column])
    plan = Plan(backend, listed, [s[0] for s in streams], [s[1] for s in streams], infos, state_of, direct,
                copied, spans, names, written, allowed)
    plan.pointers = [[x.address for x in column] for column in infos]
    plan.kept = [s for s, (_, _, _, role) in enumerate(streams) if role != "grad"]
    plan.grad_stream = next(s for s, (_, _, _, role) in enumerate(streams) if role == "grad")
    if plan.torch:
        global _PLAIN_TENSOR_SET, _TENSOR_IS_CONTIGUOUS, _TENSOR_STRIDE, _TENSOR_IS_NEG
        _PLAIN_TENSOR_SET = frozenset(plain_torch_types())
        tensor = sys.modules["torch"].Tensor
        _TENSOR_IS_CONTIGUOUS, _TENSOR_STRIDE, _TENSOR_IS_NEG = tensor.is_contiguous, tensor.stride, tensor.is_neg
        plan.torch_dtypes = [x.dtype for x in params]
        plan.torch_layouts = [_torch_layout(column) for column in infos]
        plan.kept_pointers = [x for s in plan.kept for x in plan.pointers[s]]
        plan.kept_dtypes = [x.dtype for s in plan.kept for x in streams[s][2]]
        plan.data_ptr = sys.modules["torch"].Tensor.data_ptr
    return plan


# ----------------------------------------------------------------------------- the cache

_PLANS = OrderedDict()


def _forget(key):
    def callback(_ref, key=key):
        _PLANS.pop(key, None)

    return callback


def stream_ids(streams):
    return tuple(tuple(map(id, arrays)) for _, _, arrays, _ in streams)


def plan_for(backend, listed, streams, state_dtype, options_key):
    """The plan of ``streams`` (see ``_build``), from the cache when its arrays are the
    same as a recent call's and nothing that matters changed."""
    ids = stream_ids(streams)
    # every array but the gradients is in the key: two optimizers over the same parameters
    # (their own states) keep a plan each instead of replacing each other's
    kept = tuple(i for i, (_, _, _, role) in zip(ids, streams) if role != "grad")
    key = (options_key, backend, state_dtype, kept, tuple(s[0] for s in streams))
    plan = _PLANS.get(key)
    if plan is not None and still_valid(plan, ids[plan.grad_stream], streams):
        return plan
    plan = build(backend, listed, streams, state_dtype)
    plan.ids = ids
    # written inference tensors (accepted inside torch.inference_mode()): the plan holds only there
    plan.inference = plan.torch and any(x.is_inference() for _, _, arrays, role in streams if role != "grad"
                                        for x in arrays)
    plan.grad_refs = _weak(next(arrays for _, _, arrays, role in streams if role == "grad"))
    try:
        callback = _forget(key)
        plan.refs = [weakref.ref(x, callback) for _, _, arrays, role in streams if role != "grad" for x in arrays]
    except TypeError:  # an array type without weak references: never cached
        return plan
    _PLANS[key] = plan
    _PLANS.move_to_end(key)
    while len(_PLANS) > _MAX_PLANS:
        _PLANS.popitem(last=False)
    return plan


def still_valid(plan, grad_ids, streams, grads_of_params=False):
    """Re-check a cached plan against this call's arrays (the cheap checks); new gradients
    are checked and written into the plan's tables. False: build a new plan. (The ids of
    every array but the gradients are in the cache key: those are the plan's arrays;
    ``grad_ids`` are the gradients'.)
    ``grads_of_params``: the gradients are the parameters' ``.grad`` (see ``_new_torch_grads``)."""
    if plan.inference and not sys.modules["torch"].is_inference_mode_enabled():
        return False
    data_ptr = plan.data_ptr
    if plan.torch:
        # every written tensor in one pass a check (a short list's cost is the passes, not the tensors)
        kept = list(chain.from_iterable(streams[s][2] for s in plan.kept))
        if list(map(data_ptr, kept)) != plan.kept_pointers:
            return False
        if not _passes(plan.kept_guard, kept):
            if not all(_same_torch_layout(plan, s, streams[s][2]) for s in plan.kept):
                return False
            # (the dtypes: ``x.data = x.data.view(torch.float16)`` re-types a bfloat16 parameter or
            # state, ``.view(torch.int32)`` a float32 one, at the same address with the same layout;
            # ``p.data = torch._neg_view(p.data)`` leaves a pending sign bit the kernels would not apply)
            if list(map(_DTYPE, kept)) != plan.kept_dtypes or any(map(_TENSOR_IS_NEG, kept)):
                return False
            plan.kept_guard = tensor_guard(kept)
    elif not all(_same_arrays(plan, s, streams[s][2], written=True) for s in plan.kept):
        return False
    g = plan.grad_stream
    grads = streams[g][2]
    # the same ids are the same gradients only while the plan's gradients are alive (an id is
    # reused once its object is freed, as a temporary gradient of the last call is); with no
    # references kept (None: the gradients were new at the last call) they are checked again
    if (grad_ids == plan.ids[g] and plan.grad_refs is not None and not any(map(_dead, plan.grad_refs))
            and (_same_torch_grads(plan, g, grads) if plan.torch else _same_arrays(plan, g, grads, written=False))):
        return True
    return _new_grads(plan, g, grads, grad_ids, grads_of_params)


def _same_torch_grads(plan, g, grads):
    """Whether the plan's own gradient tensors (the same objects, alive) are still at their
    addresses, laid out and typed as accepted: its ``grad_guard``, else the passes, which then
    record one (``zero_grad(set_to_none=False)`` keeps the gradients from step to step)."""
    if list(map(plan.data_ptr, grads)) != plan.pointers[g]:
        return False
    if _passes(plan.grad_guard, grads):
        return True
    if not (_same_torch_layout(plan, g, grads) and list(map(_DTYPE, grads)) == plan.torch_dtypes
            and not any(map(_TENSOR_IS_NEG, grads))):
        return False
    plan.grad_guard = tensor_guard(grads)
    return True


def _same_arrays(plan, s, arrays, written):
    """Whether the NumPy / CuPy arrays of stream ``s`` kept the dtype, shape, strides (and,
    ``written`` NumPy ones, the writeable flag) the plan was built on: the ``shape``,
    ``strides`` and ``dtype`` setters change them in place."""
    numpy = written and plan.backend == NUMPY
    for x, info in zip(arrays, plan.infos[s]):
        if (x.dtype != info.array_dtype or x.shape != info.shape or x.strides != info.byte_strides
                or numpy and not x.flags.writeable):
            return False
    return True


def _torch_layout(infos):
    """(shapes, strides) of a stream's tensors for ``_same_torch_layout``: strides None when
    every tensor is row-major."""
    return [x.shape for x in infos], None if all(x.row_major() for x in infos) else [x.strides for x in infos]


def _same_torch_layout(plan, s, arrays):
    """Whether the torch tensors of stream ``s`` kept the shape and strides the plan was built
    on: in-place ``t_()``, ``resize_()``, ``unsqueeze_()``, ``as_strided_()`` or ``p.data =
    p.data.t()`` change them and keep the data pointer. A stream all in row-major order costs
    its shapes and a C-level bool a tensor (contiguous with the same shape: the same strides);
    any other, its shapes and strides. (From a plan's third call its ``tensor_guard`` stands for
    these passes; they run where it fails.)"""
    shapes, strides = plan.torch_layouts[s]
    if list(map(_SHAPE, arrays)) != shapes:
        return False
    if strides is None:
        return all(map(_TENSOR_IS_CONTIGUOUS, arrays))
    return list(map(_TENSOR_STRIDE, arrays)) == strides


def _new_grads(plan, g, grads, grad_ids, grads_of_params=False):
    """Check gradients that differ from the plan's and put their addresses in its tables.

    Every check is one C-level pass over the list (``map``), about half a microsecond a
    gradient in all; any gradient that is not plainly like its parameter (another type, dtype, device,
    shape, strides, a pending neg/conj bit, no memory) sends the call to the full check,
    which names what is wrong or accepts another layout."""
    if not plan.torch:
        return False  # NumPy / CuPy: the full check (new arrays are rare there)
    try:
        return _new_torch_grads(plan, g, grads, grad_ids, grads_of_params)
    except RuntimeError:
        # a tensor without strides or memory (sparse, MKL-DNN, nested) refuses the queries
        # below with torch's own words: the full check names it
        return False


def _new_torch_grads(plan, g, grads, grad_ids, grads_of_params):
    # gradients like the last accepted ones in every respect the passes below check (so like
    # their parameters) pass the plan's guard in one C-level pass. Not a nested tensor: the
    # guard reads a tensor's strides before anything else, and a nested tensor's (a plain
    # torch.Tensor, strided layout) raise a C++ error that ends the process. The ``.grad`` of
    # the plan's parameters cannot be one (torch refuses a nested tensor as the gradient of
    # a dense one, assigned or through ``.data`` / ``set_``), so it is looked for only in
    # gradients passed as a list
    try:
        guarded = (plan.grad_guard is not None and (grads_of_params or not any(map(_IS_NESTED, grads)))
                   and _passes(plan.grad_guard, grads))
    except AttributeError:  # (a gradient that is no tensor: the passes below send it to the full check)
        guarded = False
    if not guarded:
        torch = sys.modules["torch"]
        if (not set(map(type, grads)) <= _PLAIN_TENSOR_SET or list(map(_DTYPE, grads)) != plan.torch_dtypes
                or list(map(_SHAPE, grads)) != plan.shapes
                or not (plan.row_major and all(map(torch.Tensor.is_contiguous, grads)))
                and list(map(torch.Tensor.stride, grads)) != plan.strides
                or any(map(torch.Tensor.is_neg, grads))):
            return False  # (no conj bit to check: torch sets it on complex tensors only, and these are real)
        if plan.backend == TORCH_CPU:
            if not all(map(_IS_CPU, grads)):
                return False
        elif list(map(torch.Tensor.get_device, grads)) != plan.devices:
            return False
    addresses = list(map(plan.data_ptr, grads))
    if plan.grad_overlap is None:
        plan.grad_overlap = _GradOverlap(plan)
    # (one int64 array of them for the overlap check and the address tables, where the list is long)
    at = None if plan.grad_overlap.short else np.array(addresses, dtype=np.int64)
    meets = plan.grad_overlap.meets_written(addresses, at)
    if meets is None:
        return False  # a gradient without memory: the full check names it
    if meets:
        # a gradient shares memory with a written array (or is its own parameter, which is
        # allowed): the full check of every span decides, and names the clash
        spans, names, written, allowed = plan._written
        spans = spans.copy()
        n = len(addresses)
        at = np.array(addresses, dtype=np.int64)
        spans[n:2 * n] = np.where(plan.param_sizes[:, None] > 0, at[:, None] + plan.param_offsets, 0)

        def layouts():  # (the new gradients laid out as their parameters, at their own addresses)
            kept = [(x.address, x.shape, x.strides, x.itemsize) for column in plan.infos for x in column]
            params = plan.infos[0]
            kept[n:2 * n] = [(a, p.shape, p.strides, p.itemsize) for a, p in zip(addresses, params)]
            return kept

        _check_overlaps(spans, names, written, allowed, layouts)
    for group in plan.groups:
        if at is not None:
            group.addresses[GRAD] = at if group.whole else at[group.index]
        else:
            group.addresses[GRAD] = addresses if group.whole else [addresses[k] for k in group.index]
    plan.pointers[g] = addresses
    plan.torch_layouts[g] = plan.torch_layouts[0]  # accepted above: laid out as their parameters
    # Weak references only once the same gradients come back (kept between calls, as with
    # zero_grad(set_to_none=False)): a model's backward makes new gradient tensors every step,
    # and a weak reference to each of them, every step, is one more object per tensor for
    # Python's garbage collector to count and, every few steps, to traverse with the whole heap.
    reused = grad_ids == plan.ids[g]
    ids = list(plan.ids)
    ids[g] = grad_ids
    plan.ids = tuple(ids)
    plan.grad_refs = _weak(grads) if reused else None
    if not guarded:
        plan.grad_guard = tensor_guard(grads)
    return True


class _GradOverlap:
    """The overlap check of new gradients against a plan's written arrays, whose spans do not
    change while the plan holds (their addresses are checked on every call): the written
    spans sorted once, so a call's new gradients cost two binary searches each over them
    instead of sorting every span again: ``bisect`` on Python lists for a short list of
    tensors (a few NumPy calls cost more than its whole loop), NumPy's ``searchsorted`` for
    a long one."""

    # gradients checked by the Python loop up to here. Back to back the loop costs ~0.27 us a
    # gradient and NumPy's calls ~7.5 us in all; but a training loop's step runs right after a
    # backward pass, which leaves NumPy's code cold: there (a transformer's 28 gradients, line by
    # line) NumPy's five calls took ~140 us against ~45 us for the loop, ~1.2 us a gradient
    SHORT = 128

    def __init__(self, plan):
        spans, _, written, _ = plan._written
        keep = np.flatnonzero((spans[:, 1] > spans[:, 0]) & written)
        order = keep[np.argsort(spans[keep, 0], kind="stable")]
        # disjoint (the plan's full check refused any overlap among them): sorted by start, so by end too
        self.written_lo, self.written_hi = spans[order, 0], spans[order, 1]
        self.nonempty = np.flatnonzero(plan.param_sizes > 0)  # a gradient of an empty parameter spans nothing
        self.lo_offset, self.hi_offset = plan.param_offsets[self.nonempty, 0], plan.param_offsets[self.nonempty, 1]
        self.short = len(plan.param_sizes) <= self.SHORT
        if self.short:
            self.lo_list, self.hi_list = self.written_lo.tolist(), self.written_hi.tolist()
            self.offsets = list(zip(self.nonempty.tolist(), self.lo_offset.tolist(), self.hi_offset.tolist()))

    def meets_written(self, addresses, at=None):
        """Whether a gradient at the addresses ``addresses`` (a list of ints; each laid out as its
        parameter) shares a byte with a written array; None where one has no memory (address 0).
        ``at``: the same addresses as an int64 array, where the caller has made it."""
        if self.short:
            lo_list, hi_list = self.lo_list, self.hi_list
            for k, lo_offset, hi_offset in self.offsets:
                at = addresses[k]
                if not at:
                    return None
                # the first written span ending after the gradient starts, and the first starting at or after its end
                if bisect_left(lo_list, at + hi_offset) > bisect_right(hi_list, at + lo_offset):
                    return True
            return False
        at = (np.array(addresses, dtype=np.int64) if at is None else at)[self.nonempty]
        if not at.all():
            return None
        first = np.searchsorted(self.written_hi, at + self.lo_offset, side="right")
        last = np.searchsorted(self.written_lo, at + self.hi_offset, side="left")
        return bool(np.any(last > first))


def tensor_guard(tensors):
    """One C-level check that torch tensors are still what ``tensors`` are now: torch's
    ``TensorGuards``, the guard of its compiled graphs, which compares each tensor's exact
    type, dispatch keys (its device type, sparse, neg / conj bits, inference), dtype, device
    index, requires_grad, sizes and strides with those recorded here. It costs one attribute
    read's time a tensor (~75 ns), where the passes it stands for cost that each. A function
    of a list of tensors (True: every one as recorded, in order), or None where this torch
    has no such class or refuses the tensors: the caller keeps its passes.

    Never hand it a nested tensor (``is_nested``; a plain ``torch.Tensor`` of strided
    layout): it reads each tensor's strides before its type's keys, and a nested tensor's
    strides raise a C++ error the guard does not catch, which ends the process. Sparse,
    MKL-DNN, quantized, meta and functorch tensors fail it as they should (tested)."""
    global _TENSOR_GUARDS
    if _TENSOR_GUARDS is None:
        try:
            from torch._C._dynamo.guards import TensorGuards as _TENSOR_GUARDS
        except ImportError:  # (a torch without it)
            _TENSOR_GUARDS = False
    if _TENSOR_GUARDS is False:
        return None
    try:
        check = _TENSOR_GUARDS(*tensors, dynamic_dims_sizes=None, dynamic_dims_strides=None).check
    except (TypeError, RuntimeError):  # (another signature, or a tensor it cannot record)
        return None
    return lambda now: check(*now)


def _passes(guard, tensors):
    """Whether ``tensors`` pass ``guard`` (a ``tensor_guard``, or None: they do not)."""
    if guard is None:
        return False
    try:
        return guard(tensors)
    except (TypeError, RuntimeError):  # (another count of tensors)
        return False


def _dead(ref):
    return ref() is None


def _weak(arrays):
    try:
        return list(map(weakref.ref, arrays))
    except TypeError:
        return [lambda: None]  # never alive: the gradients are checked again on every call
