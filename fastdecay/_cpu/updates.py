"""The fused updates' launcher on the CPU: one parallel pass over every tensor of a call.

Nothing here names an update rule. The kernels are written per rule in
``rules.py`` (``<kernel>_kernel``, next to the rule's per-element function) and
their argument lists come from the table of rules (``fastdecay._rules.FUSED``:
the scheduled coefficient and the typed ``options``); this module compiles them
(``kernel``), lays out the blocks and launches them (``fused_group``, the call
shape both backends share).

A call covers a list of tensors of one storage combination (parameter dtype,
state dtype); one tensor is a list of one. The tensors reach the kernel as an
int64 table of data addresses, one row per stream (``ROWS``: parameter,
gradient, three state buffers, compensation buffer; 0 where a stream is
absent); the kernel rebuilds each as a 1-D view (``storage.view``: a
``numba.carray`` on a pointer made from the address), so a list of 2,000
tensors is one kernel launch with one explicit signature per storage
combination. Work is split into blocks of ``BLOCK`` elements (a tensor's last
block may be shorter); ``first_block[k]`` is the index of tensor k's first
block. The blocks are cut into one run a thread with about equal element counts
(``part_layout``: a model's list has many short blocks, its small tensors, and
an equal count of blocks a thread gave one thread ~10 % more than an even share on
ResNet lists), and the kernel runs ``prange`` over the runs. The inner
loop over a block is contiguous and calls the rule with per-step scalars cast
to the math dtype, so it vectorizes at full SIMD width.

Storage and math (``storage.py``): float64 and float32 tensors compute in their
own dtype; float16 and bfloat16 tensors are loaded to float32, updated there and
rounded back on store. State buffers may be stored in another dtype than the
parameter (float32 or bfloat16 moments for 16-bit parameters). With
``compensated`` each parameter has a Kahan buffer in its own dtype holding what
the last stores rounded away: the update y = (w_new - w) + c is added to w, and
c keeps y - (stored - w), so small updates of a bfloat16 parameter accumulate
instead of vanishing.

Options (momentum, nesterov, decoupled, ...) are run-time arguments: one
compiled kernel per rule and storage combination, whatever the flags, compiled
or loaded from the cache on first use (``kernel(kernel_name, param, state)``),
and a second one for the calls with a compensation buffer or a gradient scale
that is not a power of two (``rules.takes_general_kernel``; ``kernel(...,
general=True)``), compiled only where a program makes such a call.

The kernels never allocate and never validate: ``fastdecay.updates`` has
checked every address, size, dtype, layout, overlap and option before it calls
them. A nonzero ``found_inf`` returns before anything is read or written.

Thread safety, forked processes and interrupts: ``launch`` goes through
``fastdecay._cpu.parallel`` as every parallel kernel of the package does.
"""

import numpy as np
from numba import boolean, float32, float64, int64, njit, types, void

from .. import _rules as R
from . import parallel, rules
from .schedule import TABLE
from .storage import BLOCK, COMP, ROWS  # noqa: F401 (BLOCK, ROWS: the layout, re-exported)

SERIAL_BELOW = 1 << 16  # calls with fewer elements in all run on the calling thread

ADDRESSES = types.Array(int64, 2, "C", readonly=True)
SIZES = types.Array(int64, 1, "C", readonly=True)

# storage dtype name -> (NumPy view dtype, Numba view type, math dtype)
STORAGE = {
    "float64": (np.float64, float64, np.float64),
    "float32": (np.float32, float32, np.float32),
    "bfloat16": (np.uint16, types.uint16, np.float32),
    "float16": (np.int16, types.int16, np.float32),
}
_LIKE = {name: np.empty(0, view) for name, (view, _, _) in STORAGE.items()}
_MATH_LIKE = {name: np.empty(0, math) for name, (_, _, math) in STORAGE.items()}

# the Numba type of each kernel option type of fastdecay._rules (Fused.options)
OPTION_TYPES = {"f64": float64, "bool": boolean, "i32": int64}


def signature(kernel_name, param, state):
    """The explicit signature of ``rules.<kernel_name>_kernel`` for parameters stored as
    ``param`` and state as ``state``: (like_param, like_state, like_math, addresses, sizes,
    first_block, parts, lr_table, wd_table, step, scheduled table, *options, compensated,
    grad_scale, found_inf), the options typed by the table (``fastdecay._rules.FUSED``)."""
    _, param_type, math = STORAGE[param]
    _, state_type, _ = STORAGE[state]
    math_type = float64 if math is np.float64 else float32
    options = tuple(OPTION_TYPES[kind] for _, kind in R.FUSED[kernel_name].options)
    return void(types.Array(param_type, 1, "C"), types.Array(state_type, 1, "C"), types.Array(math_type, 1, "C"),
                ADDRESSES, SIZES, SIZES, SIZES, TABLE, TABLE, float64, TABLE, *options, boolean, float64, float64)


_COMPILED = {}


def kernel(kernel_name, param, state, general=False):
    """The compiled kernel ``rules.<kernel_name>_kernel`` (``general``:
    ``rules.<kernel_name>_general_kernel``) for one storage combination (dtype names): one
    explicit signature each, compiled (or loaded from the on-disk cache) on first use, so a
    float32-only program never loads the others."""
    key = (kernel_name, param, state, general)
    compiled = _COMPILED.get(key)
    if compiled is None:
        py_func = getattr(rules, f"{kernel_name}_general_kernel" if general else f"{kernel_name}_kernel")
        compiled = njit(signature(kernel_name, param, state), parallel=True, cache=True,
                        error_model="numpy")(py_func)
        _COMPILED[key] = compiled
    return compiled


def block_layout(sizes):
    """``first_block`` for the kernels: cumulative block counts, length len(sizes) + 1."""
    counts = (np.asarray(sizes, dtype=np.int64) + (BLOCK - 1)) // BLOCK
    first_block = np.empty(len(counts) + 1, dtype=np.int64)
    first_block[0] = 0
    np.cumsum(counts, out=first_block[1:])
    return first_block


def part_layout(sizes, first_block, parts):
    """``parts`` runs of consecutive blocks with about equal element counts (within a block),
    as the kernels' ``parts``: run p is blocks ``parts[p]`` to ``parts[p + 1] - 1``."""
    sizes = np.asarray(sizes, dtype=np.int64)
    n_blocks = int(first_block[-1])
    elements = np.full(n_blocks, BLOCK, dtype=np.int64)
    has_blocks = first_block[1:] > first_block[:-1]
    last = first_block[1:][has_blocks] - 1  # each tensor's last block holds the rest
    elements[last] = sizes[has_blocks] - (last - first_block[:-1][has_blocks]) * BLOCK
    ends = np.cumsum(elements)
    total = int(ends[-1]) if n_blocks else 0
    bounds = np.empty(parts + 1, dtype=np.int64)
    bounds[0], bounds[-1] = 0, n_blocks
    # run p ends with the block that reaches (p + 1) / parts of the elements
    bounds[1:-1] = np.searchsorted(ends, total * np.arange(1, parts, dtype=np.int64) // parts, side="left") + 1
    np.minimum(bounds, n_blocks, out=bounds)
    return bounds


# ----------------------------------------------------------------------------- launching

def threads_for(n_elements):
    """The threads ``launch`` runs a call of ``n_elements`` on (its runs of blocks: ``part_layout``):
    small calls on the calling thread alone, since waking the thread pool costs more than their
    work (milliseconds on a busy machine)."""
    return parallel.thread_count() if n_elements >= SERIAL_BELOW else 1


def fused_launch(kernel_name, param, state, addresses, sizes, first_block, parts, n_elements, *, step, tables,
                 options, compensated, grad_scale, found_inf, threads=None):
    """``rules.<kernel_name>_kernel`` over the tensors of one storage combination (``param``,
    ``state``: dtype names), as ``fastdecay._update_plan`` plans them: ``addresses`` int64
    (ROWS, n), ``sizes`` int64 (n,), ``first_block`` from ``block_layout(sizes)``, ``parts``
    from ``part_layout`` (one run for each of ``threads_for(n_elements)``),
    ``n_elements`` their sum; ``tables`` the (lr, weight decay, scheduled coefficient)
    tables, read-only float64 ``(1, segments, WIDTH)``; ``options`` the values of
    ``fastdecay._rules.FUSED[kernel_name].options`` in order (Python numbers, checked);
    ``threads`` the count ``parts`` was made for (default ``threads_for(n_elements)``). The
    launch goes through ``parallel.launch`` (turns taken under the ``workqueue`` layer, forked
    children refused, the caller's count restored)."""
    scale = 1.0 if grad_scale is None else float(grad_scale)
    inf = 0.0 if found_inf is None else float(found_inf)
    lr_table, wd_table, scheduled_table = tables
    parallel.launch(kernel(kernel_name, param, state, rules.takes_general_kernel(compensated, scale)),
                    (_LIKE[param], _LIKE[state], _MATH_LIKE[param], addresses, sizes, first_block, parts,
                     lr_table, wd_table, float(step), scheduled_table, *options, compensated, scale, inf),
                    threads_for(n_elements) if threads is None else threads)


def fused_group(kernel_name, group, arrays, *, step, tables, options, compensated, grad_scale, found_inf):
    """``fused_launch`` over one group of a ``fastdecay._update_plan.Plan`` (``arrays``: unused
    here; the GPU backend takes its stream from them). The internal call shape both
    backends share (``fastdecay._fused``)."""
    if group.first_block is None:
        group.first_block = block_layout(group.sizes)
        group.parts = {}
    threads = threads_for(group.n_elements)
    parts = group.parts.get(threads)
    if parts is None:
        parts = group.parts[threads] = part_layout(group.sizes, group.first_block, threads)
    fused_launch(kernel_name, group.param, group.state, group.addresses, group.sizes, group.first_block, parts,
                 group.n_elements, step=step, tables=tables, options=options, compensated=compensated,
                 grad_scale=grad_scale, found_inf=found_inf, threads=threads)


# ----------------------------------------------------------------------------- lists of arrays (tests, simple callers)


def _dtype_name(x):
    return str(x.dtype).replace("torch.", "")


def _address(x):
    return x.ctypes.data if isinstance(x, np.ndarray) else x.data_ptr()


def _size(x):
    return x.numel() if not isinstance(x, np.ndarray) else x.size


def fused_step(kernel_name, streams, *, step, tables, grad_scale=None, found_inf=None, state_dtype=None,
               compensation=None, **options):
    """``fused_launch`` over lists of contiguous NumPy arrays / CPU torch tensors, one launch
    per parameter dtype: ``streams`` one list per address-table row from the parameters to
    BUF2 (None where absent), ``tables`` (lr, weight decay, scheduled coefficient),
    ``options`` by the names of ``fastdecay._rules.FUSED[kernel_name].options``. Nothing
    here checks its input (tests and benchmarks call it)."""
    values = tuple(options.pop(name) for name in R.FUSED[kernel_name].option_names)
    if options:
        raise TypeError(f"unexpected options for {kernel_name}: {sorted(options)}")
    params = streams[0]
    groups = {}
    for k, p in enumerate(params):
        groups.setdefault(_dtype_name(p), []).append(k)
    for param, index in groups.items():
        addresses = np.zeros((ROWS, len(index)), dtype=np.int64)
        for j, k in enumerate(index):
            for r, arrays in enumerate(streams):
                if arrays is not None:
                    addresses[r, j] = _address(arrays[k])
            if compensation is not None:
                addresses[COMP, j] = _address(compensation[k])
        sizes = np.array([_size(params[k]) for k in index], dtype=np.int64)
        state = param if state_dtype is None else state_dtype
        first_block, n_elements = block_layout(sizes), int(sizes.sum())
        parts = part_layout(sizes, first_block, threads_for(n_elements))
        fused_launch(kernel_name, param, state, addresses, sizes, first_block, parts, n_elements, step=step,
                     tables=tables, options=values, compensated=compensation is not None, grad_scale=grad_scale,
                     found_inf=found_inf)
