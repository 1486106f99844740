"""Launch plans of the GPU kernels: which arguments, in which C types, over which grid.

Needs neither CuPy nor a GPU: the CuPy wrappers turn a plan into a launch, and
the host test (tests/test_cuda_host.py) runs the very same kernel bodies on the
CPU from the very same plan, so argument order, null pointers, chunk tables and
path choices are checked on every CI run.

A plan's arguments are ``(ctype, value)`` pairs: ``"ptr"`` (an array, or None
for a null pointer), ``"i32"``, ``"u32"``, ``"i64"``, ``"u64"``, ``"f64"``.
"""

import numpy as np

from .._rules import FLAG_SLOTS, FUSED, NUMBER_SLOTS, RULES

# must equal CHUNK and N_FIELDS in kernels/updates.cu (the host test checks)
CHUNK = 1 << 12
N_FIELDS = 8
THREADS = 256
TABLE_CHUNK = 16384  # steps of a schedule row per block of the table kernel (TABLE_CHUNK in schedule.cu)

# type codes of scalars the update kernels read from device memory (SC_* in updates.cu)
SC_NONE, SC_F32, SC_F64, SC_I32, SC_I64, SC_BOOL = range(6)
SCALAR_CODES = {"float32": SC_F32, "float64": SC_F64, "int32": SC_I32, "int64": SC_I64, "bool": SC_BOOL}


def tensor_table(rows):
    """The update kernels' tensor table from ``rows`` of (param, grad, buf0, buf1, buf2, size)
    or (param, grad, buf0, buf1, buf2, size, compensation) addresses (0 where unused):
    int64 ``(n, N_FIELDS)`` with each tensor's first chunk, and the total chunk count."""
    table = np.zeros((len(rows), N_FIELDS), dtype=np.int64)
    first = 0
    for k, row in enumerate(rows):
        table[k, :6] = row[:6]
        table[k, 6] = first
        table[k, 7] = row[6] if len(row) > 6 else 0
        first += (int(row[5]) + CHUNK - 1) // CHUNK
    return table, first


def group_table(addresses, sizes):
    """``tensor_table`` from a plan's address table (rows param, grad, buf0, buf1, buf2,
    compensation; one column per tensor) and sizes, without a Python loop per tensor."""
    n = sizes.shape[0]
    table = np.empty((n, N_FIELDS), dtype=np.int64)
    table[:, :5] = addresses[:5].T
    table[:, 5] = sizes
    chunks = (sizes + CHUNK - 1) // CHUNK
    table[:, 6] = np.cumsum(chunks) - chunks
    table[:, 7] = addresses[5]
    return table, int(chunks.sum())


def kernel_suffix(param, state):
    """The entry-point suffix of kernels/updates.cu for parameters stored as ``param`` and
    state as ``state`` (dtype names): ``f32``, ``bf16_f32``, ..."""
    short = {"float32": "f32", "float64": "f64", "bfloat16": "bf16", "float16": "f16"}
    return short[param] if state == param else f"{short[param]}_{short[state]}"


def update_blocks(n_chunks, multiprocessors):
    """Blocks of an update launch: enough to fill the device, never more than the chunks."""
    return max(1, min(int(n_chunks), 8 * int(multiprocessors)))


def scalar_ref(value, device_array_dtype=None):
    """(ptr-or-None, code, value) for a step / grad_scale / found_inf: a device array is
    read inside the kernel (``device_array_dtype`` names its dtype), a number passed by value."""
    if device_array_dtype is None:
        return None, SC_NONE, float(value)
    return value, SCALAR_CODES[str(device_array_dtype)], 0.0


def option_slots(fused, options):
    """(numbers, flags) of a fused update's ``options`` (the values of ``fused.options``, a
    ``fastdecay._rules.Fused`` row, in order) as every fused entry point takes them: the
    "f64" options in order then zeros (NUMBER_SLOTS doubles), the "bool" and "i32" ones in
    order then zeros (FLAG_SLOTS ints). ValueError for a row with more options of a kind
    than the entry points have slots, or a count of values that is not the row's.

    >>> option_slots(FUSED["adam"], (0.999, 1e-8, True, False, True))
    ((0.999, 1e-08, 0.0, 0.0), (1, 0, 1, 0, 0, 0))
    """
    if len(options) != len(fused.options):
        raise ValueError(f"the {fused.kernel} kernels take {len(fused.options)} options "
                         f"{fused.option_names}, got {len(options)}: {options!r}")
    numbers = [float(value) for (_, kind), value in zip(fused.options, options) if kind == "f64"]
    flags = [int(bool(value)) if kind == "bool" else int(value)
             for (_, kind), value in zip(fused.options, options) if kind != "f64"]
    if len(numbers) > NUMBER_SLOTS or len(flags) > FLAG_SLOTS:
        raise ValueError(f"the {fused.kernel} kernels have {len(numbers)} f64 and {len(flags)} bool/i32 options; "
                         f"the fused entry points take at most {NUMBER_SLOTS} and {FLAG_SLOTS} "
                         "(fastdecay._rules.NUMBER_SLOTS, FLAG_SLOTS; FD_FUSED_ARGS in kernels/updates.cu)")
    return (tuple(numbers) + (0.0,) * (NUMBER_SLOTS - len(numbers)),
            tuple(flags) + (0,) * (FLAG_SLOTS - len(flags)))


STEP_VALUE = 9  # position in ``fused_args`` of the step passed by value (the one argument a repeated launch changes)


def fused_args(kernel, table, n_chunks, tables, step_ref, options, grad_scale_ref, found_inf_ref, compensated=False):
    """Arguments of ``<kernel>_<suffix>`` (FD_FUSED_ARGS in kernels/updates.cu: one list for
    every kernel of ``fastdecay._rules.FUSED``): ``table``, ``n_chunks`` from
    ``tensor_table`` / ``group_table`` on the device; ``tables`` the (lr, weight decay,
    scheduled coefficient) device arrays of shape (1, segments, WIDTH); ``step_ref``,
    ``grad_scale_ref``, ``found_inf_ref`` ``scalar_ref`` triples; ``options`` the values of
    ``FUSED[kernel].options`` in order (``option_slots``)."""
    numbers, flags = option_slots(FUSED[kernel], options)
    lr_table, wd_table, aux_table = tables
    return [
        ("ptr", table), ("i32", table.shape[0]), ("i64", n_chunks),
        ("ptr", lr_table), ("i32", lr_table.shape[1]), ("ptr", wd_table), ("i32", wd_table.shape[1]),
        ("ptr", step_ref[0]), ("i32", step_ref[1]), ("f64", step_ref[2]),
        ("ptr", aux_table), ("i32", aux_table.shape[1]),
        *(("f64", x) for x in numbers), *(("i32", f) for f in flags),
        ("i32", int(bool(compensated))),
        ("ptr", grad_scale_ref[0]), ("i32", grad_scale_ref[1]), ("f64", grad_scale_ref[2]),
        ("ptr", found_inf_ref[0]), ("i32", found_inf_ref[1]),
    ]


COEF_STRIDE = 12  # row length of the simulations' shared coefficient table (COEF_STRIDE in update_math.cuh)
BIAS_CODES = tuple(r.code for r in RULES if r.bias_correction)  # the rules with Adam's bias corrections


def simulate_scratch(opt, lr_rows, wd_rows, mom_rows, n_steps):
    """Shapes of the per-chunk scratch the simulation kernels need, or None: the
    shared coefficient table ``(n_steps, COEF_STRIDE)`` in the run's dtype (rates and
    momentum shared by every trajectory) and Adam's bias corrections ``(n_steps, 2)``
    float64 (beta1 shared; a per-trajectory beta1 makes its own in each thread)."""
    shared = lr_rows.size == 0 and wd_rows.size == 0 and mom_rows.size == 0
    coef = (max(int(n_steps), 1), COEF_STRIDE) if shared else None
    bias = (max(int(n_steps), 1), 2) if int(opt) in BIAS_CODES and mom_rows.size == 0 else None
    return coef, bias


def _ptr_or_null(a):
    return ("ptr", a if a is not None and a.size else None)


def simulate_plan(w, buf, sq, lam, d, opt, lr_table, lr_rows, lr_ratio, lr_state, wd_table, wd_rows, wd_ratio,
                  wd_state, mom_table, mom_rows, mom_ratio, mom_state, step_scalars, beta2, eps, on_drop, noise, seed,
                  offset, first_step, n_steps, every, rec_loss, rec_disp, rec_lr, coef=None, bias=None):
    """Launches of one chunk from the arguments of ``fastdecay._cpu.simulate.simulate_chunk``
    (the shared call shape) and the scratch of ``simulate_scratch`` (``coef``, ``bias``):
    ``[(kernel, arguments, threads), ...]`` in order (kernel without its dtype suffix),
    the per-step coefficient kernel first where there is scratch to fill. Empty
    arrays (no buffer, shared rates, no recording) become null pointers."""
    d = int(d)
    n = lam.shape[0] // d
    every = int(every)
    # One thread a trajectory where its coordinates must cooperate: recording sums
    # over them (in the CPU's order), and per-trajectory rates carry one state per
    # trajectory between chunks (read by every coordinate, written once).
    per_trajectory = d > 1 and (every > 0 or lr_rows.size > 0 or wd_rows.size > 0 or mom_rows.size > 0)
    launches = []
    if (coef is not None or bias is not None) and int(n_steps) > 0:
        launches.append(("simulate_coefficients", [
            ("ptr", step_scalars), ("i64", int(first_step)), ("i64", int(n_steps)), ("i32", int(opt)),
            ("f64", beta2), ("f64", eps), ("i32", int(coef is not None)),
            _ptr_or_null(coef), _ptr_or_null(bias),
        ], int(n_steps)))
    if coef is not None and every == 0:
        # shared rates, no recording: the lean kernels (one loop per kind of step without
        # noise; with noise, the draws)
        launches.append(("simulate_noisy" if noise != 0.0 else "simulate_fast", [
            _ptr_or_null(w), _ptr_or_null(buf), _ptr_or_null(sq), _ptr_or_null(lam), ("i64", n * d),
            ("i32", int(opt)), ("i64", int(first_step)), ("i64", int(n_steps)), _ptr_or_null(coef),
            ("i64", d), ("f64", noise), ("u64", int(seed)), ("u64", int(offset)),
        ], n * d))
        return launches
    launches.append(("simulate_trajectories" if per_trajectory else "simulate", [
        _ptr_or_null(w), _ptr_or_null(buf), _ptr_or_null(sq), _ptr_or_null(lam),
        ("i64", n), ("i64", d), ("i32", int(opt)),
        ("ptr", lr_table), ("i32", lr_table.shape[1]), _ptr_or_null(lr_rows), _ptr_or_null(lr_ratio),
        _ptr_or_null(lr_state),
        ("ptr", wd_table), ("i32", wd_table.shape[1]), _ptr_or_null(wd_rows), _ptr_or_null(wd_ratio),
        _ptr_or_null(wd_state),
        ("ptr", mom_table), ("i32", mom_table.shape[1]), _ptr_or_null(mom_rows), _ptr_or_null(mom_ratio),
        _ptr_or_null(mom_state),
        ("ptr", step_scalars), ("f64", beta2), ("f64", eps),
        ("i32", int(on_drop)), ("f64", noise), ("u64", int(seed)), ("u64", int(offset)),
        ("i64", int(first_step)), ("i64", int(n_steps)), ("i64", every),
        _ptr_or_null(rec_loss), _ptr_or_null(rec_disp), _ptr_or_null(rec_lr),
        ("i64", rec_loss.shape[1] if every > 0 else 0),
        _ptr_or_null(coef), _ptr_or_null(bias),
    ], n if per_trajectory else n * d))
    return launches


def table_grid(rows, n):
    """(blocks on x, blocks on y) of the schedule-table kernel: chunks of a row, rows."""
    return max(1, min((int(n) + TABLE_CHUNK - 1) // TABLE_CHUNK, 1 << 20)), max(1, min(int(rows), 65535))


def blocks_for(threads, limit=1 << 20):
    """Blocks of THREADS threads covering ``threads`` (grid-stride beyond ``limit``)."""
    return max(1, min((int(threads) + THREADS - 1) // THREADS, limit))


# Above this size a read-only array is cached by identity, not content: hashing the
# 720 kB table of 10,000 schedules took longer than writing their 800 MB table.
_BY_IDENTITY_BYTES = 1 << 16


def _owner(array):
    """The array owning the memory of the host array ``array``."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def frozen(array):
    """Whether the host array ``array`` and the array owning its memory are read-only (a
    schedule's table, a constant rate's): its content then never changes, and its identity
    stands for it."""
    return not array.flags.writeable and not _owner(array).flags.writeable


def constant_key(array):
    """(key, owner) of a host array in the runtime's cache of device copies: by content
    for small arrays; for large read-only ones by the identity of the read-only array
    owning the memory (a schedule's segment table), which the cache keeps alive.

    >>> import fastdecay as fd
    >>> s = fd.exponential(0.1, gamma=np.linspace(0.9, 0.99, 10_000))
    >>> constant_key(s.rows())[0] == constant_key(s.rows())[0]    # by identity: no hashing of 720 kB
    True
    >>> t = fd.exponential(0.1, gamma=np.linspace(0.9, 0.99, 10_000))
    >>> constant_key(s.rows())[0] == constant_key(t.rows())[0]    # equal content, another table
    False
    >>> constant_key(np.ones(3))[0] == constant_key(np.ones(3))[0]  # small: by content
    True
    """
    if array.nbytes >= _BY_IDENTITY_BYTES and frozen(array):
        owner = _owner(array)
        address = array.__array_interface__["data"][0]
        return ("id", id(owner), address, array.dtype.str, array.shape, array.strides), owner
    array = np.ascontiguousarray(array)
    return ("content", array.dtype.str, array.shape, array.tobytes()), None
