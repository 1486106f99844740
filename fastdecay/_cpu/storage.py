"""Element storage of the fused-update kernels: 16-bit floats loaded to and stored from float32.

Numba's CPU target has no float16 or bfloat16 arrays, so the kernels see 16-bit
tensors through integer views of the same memory, and the view's type says what
the bits are:

=============  ==============  ==================  ==================================
stored dtype   Numba view      math (``widen``)    store (``narrow``)
=============  ==============  ==================  ==================================
float64        float64         float64             as is
float32        float32         float32             as is
bfloat16       uint16          float32 (exact)     round to nearest even (NaN stays NaN)
float16        int16           float32 (exact)     round to nearest even (LLVM ``fptrunc``)
=============  ==============  ==================  ==================================

bfloat16 is the upper half of a float32, so widening is a shift and narrowing
adds ``0x7FFF`` plus the lowest kept bit before dropping the low half: the
rounding of torch's ``c10::BFloat16`` and of CUDA's ``__float2bfloat16_rn``.
float16 goes through LLVM's ``half`` type (one ``vcvtph2ps`` / ``vcvtps2ph`` with
F16C, vectorized). Both functions are inlined where they are called.

Where every stream of a loop is bfloat16, the kernels read two elements at once as one
``uint32`` (``PAIR``: ``pairs_view``): ``low_half`` / ``high_half`` widen each half and
``pair_of`` narrows two values into one, with the same rounding as ``narrow``. Each
operation then works on 32-bit lanes as a float32 loop does, where element by element
the vectorized loop widens and narrows with cross-lane moves (``vpmovzxwd`` in,
``vpmovdw`` and an insert out): on one Zen 4 core a bfloat16 load, multiply and store
took 0.18-0.21 ns an element that way against 0.085 ns in pairs, an AdamW element in
cache 0.585 against 0.518 ns, SGD with momentum over 1e6 elements 0.33 against 0.27 ns
(bench/RESULTS.md, "bfloat16 in pairs"). Other storage, an odd last element and tensors
not 4-byte aligned take the element loops (``in_bfloat16_pairs``). The pair loops ask for
512-bit vectors (``intrinsics.prefer_wide_vectors``), which LLVM does not choose on Intel's
AVX-512 cores by itself: there the conversions' integer operations pace them, and twice the
lanes an operation made AdamW's pairs 10-20 % and SGD's and Lion's 20-35 % faster
(bench/RESULTS.md, "bfloat16 pairs in 512-bit vectors").

>>> import numpy as np
>>> from numba import njit, float32
>>> @njit
... def round_trip(x, like):
...     return widen(narrow(float32(x), like))
>>> float(round_trip(1.0 + 2.0**-9, np.uint16(0)))   # bfloat16: 8 significant bits, ties to even
1.0
>>> float(round_trip(1.0 + 2.0**-11, np.int16(0)))   # float16: 11 significant bits
1.0
"""

import numpy as np
from llvmlite import ir
from numba import carray, njit, types
from numba.extending import intrinsic, overload

from .lanes import one_like

BLOCK = 1 << 15  # elements per parallel work item of a fused update (128 KiB of float32 per stream)

# rows of a fused update's address table (fastdecay._rules *_ROW, fastdecay._update_plan)
PARAM, GRAD, BUF0, BUF1, BUF2, COMP = range(6)
ROWS = 6

BFLOAT16 = types.uint16  # the view type of bfloat16 storage
FLOAT16 = types.int16  # the view type of float16 storage

_I16, _I32, _F32, _HALF = ir.IntType(16), ir.IntType(32), ir.FloatType(), ir.HalfType()


@intrinsic
def widen(typingctx, x):
    """The value of one stored element in the math type (float32 for 16-bit storage)."""
    if x == BFLOAT16:
        def codegen(context, builder, signature, args):
            bits = builder.shl(builder.zext(args[0], _I32), ir.Constant(_I32, 16))
            return builder.bitcast(bits, _F32)

        return types.float32(x), codegen
    if x == FLOAT16:
        def codegen(context, builder, signature, args):
            return builder.fpext(builder.bitcast(args[0], _HALF), _F32)

        return types.float32(x), codegen
    if x in (types.float32, types.float64):
        def codegen(context, builder, signature, args):
            return args[0]

        return x(x), codegen
    return None


def _rounded_bfloat16(builder, value):
    """(the float32 ``value``'s bits with the rounding to bfloat16 added: its upper half is the
    bfloat16, whether it is NaN): round to nearest, ties to even."""
    bits = builder.bitcast(value, _I32)
    lowest_kept = builder.and_(builder.lshr(bits, ir.Constant(_I32, 16)), ir.Constant(_I32, 1))
    rounded = builder.add(builder.add(bits, ir.Constant(_I32, 0x7FFF)), lowest_kept)
    return rounded, builder.fcmp_unordered("uno", value, value)


@intrinsic
def narrow(typingctx, value, like):
    """``value`` (the math type) rounded to the storage type of ``like`` (a scalar of the view type)."""
    if like == BFLOAT16 and value == types.float32:
        def codegen(context, builder, signature, args):
            rounded, is_nan = _rounded_bfloat16(builder, args[0])
            upper = builder.trunc(builder.lshr(rounded, ir.Constant(_I32, 16)), _I16)
            return builder.select(is_nan, ir.Constant(_I16, 0x7FC0), upper)

        return like(value, like), codegen
    if like == FLOAT16 and value == types.float32:
        def codegen(context, builder, signature, args):
            return builder.bitcast(builder.fptrunc(args[0], _HALF), _I16)

        return like(value, like), codegen
    if like in (types.float32, types.float64) and value == like:
        def codegen(context, builder, signature, args):
            return args[0]

        return like(value, like), codegen
    return None


# ----------------------------------------------------------------------------- bfloat16 in pairs
PAIR = types.uint32  # two bfloat16 elements: element 2i in the low half, 2i + 1 in the high (little-endian)
_HIGH = ir.Constant(_I32, 0xFFFF0000)


@intrinsic
def low_half(typingctx, pair):
    """The first bfloat16 element of ``pair`` (the lower address) as float32."""
    if pair != PAIR:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(builder.shl(args[0], ir.Constant(_I32, 16)), _F32)

    return types.float32(pair), codegen


@intrinsic
def high_half(typingctx, pair):
    """The second bfloat16 element of ``pair`` as float32."""
    if pair != PAIR:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(builder.and_(args[0], _HIGH), _F32)

    return types.float32(pair), codegen


@intrinsic
def pair_of(typingctx, low, high):
    """Two float32 values rounded to bfloat16 as ``narrow`` rounds them, packed into one ``PAIR``."""
    if low != types.float32 or high != types.float32:
        return None

    def codegen(context, builder, signature, args):
        rounded, is_nan = _rounded_bfloat16(builder, args[0])
        low16 = builder.select(is_nan, ir.Constant(_I32, 0x7FC0), builder.lshr(rounded, ir.Constant(_I32, 16)))
        rounded, is_nan = _rounded_bfloat16(builder, args[1])
        high16 = builder.select(is_nan, ir.Constant(_I32, 0x7FC00000), builder.and_(rounded, _HIGH))
        return builder.or_(low16, high16)

    return PAIR(low, high), codegen


# ----------------------------------------------------------------------------- tensors by address, in blocks
# A fused update reaches its tensors as an int64 table of data addresses (one row per
# stream: ROWS) and cuts them into blocks of BLOCK elements; ``first_block[k]`` is the
# index of tensor k's first block (``fastdecay._cpu.updates.block_layout``).


@intrinsic
def pointer_like(typingctx, address, like):
    """A typed data pointer (dtype of the array ``like``) from an integer address."""
    sig = types.CPointer(like.dtype)(address, like)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


@njit(cache=True, error_model="numpy")
def view(address, n, like):
    """The 1-D array of ``n`` elements (dtype of ``like``) at ``address``."""
    return carray(pointer_like(address, like), n)


_LIKE_PAIRS = np.empty(0, np.uint32)


@njit(cache=True, error_model="numpy")
def pairs_view(address, n):
    """The ``n // 2`` pairs of bfloat16 elements (``PAIR``) from ``address`` (4-byte aligned)."""
    return carray(pointer_like(address, _LIKE_PAIRS), n // 2)


def in_bfloat16_pairs(loop):
    """The function that runs ``loop`` over a block in bfloat16 pairs, for a kernel's usual copies:
    ``pairs(like, like_state, addresses, k, lo, n, rows, first, *args)`` calls
    ``loop(addresses, k, 2 * lo, n, first, *args)`` (``first`` a constant: one copy of the loop
    each) and returns how many elements of the block (tensor ``k``, ``n`` elements from ``lo``)
    it updated from its start: ``n`` rounded down to even where parameters and state are
    bfloat16 (``like``, ``like_state``) and the streams of ``rows`` start 4-byte aligned, else
    0; the caller's element loop does the rest. In compiled code the storage is told by type
    (the overload below): other kernels hold none of this code."""

    def pairs(like, like_state, addresses, k, lo, n, rows, first, *args):
        return 0

    @overload(pairs)
    def _pairs_impl(like, like_state, addresses, k, lo, n, rows, first, *args):
        if like.dtype != BFLOAT16 or like_state.dtype != BFLOAT16:
            return lambda like, like_state, addresses, k, lo, n, rows, first, *args: 0

        def impl(like, like_state, addresses, k, lo, n, rows, first, *args):
            for row in rows:
                if addresses[row, k] & 3:  # (a stream the call has not: address 0)
                    return 0
            # (a block starts at an even element: each stream's pairs are aligned as its start)
            if first:
                loop(addresses, k, 2 * lo, n, True, *args)
            else:
                loop(addresses, k, 2 * lo, n, False, *args)
            return n - n % 2

        return impl

    return pairs


@njit(cache=True, error_model="numpy")
def tensor_of_block(first_block, b):
    """Index k of the tensor that owns global block ``b`` (first_block is sorted)."""
    lo = 0
    hi = first_block.shape[0] - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if first_block[mid] <= b:
            lo = mid
        else:
            hi = mid
    return lo


@njit(cache=True, error_model="numpy")
def block_span(first_block, sizes, b):
    """(k, n, lo) of global block ``b``: its tensor, its element count, its first element there."""
    k = tensor_of_block(first_block, b)
    lo = (b - first_block[k]) * BLOCK
    return k, min(lo + BLOCK, sizes[k]) - lo, lo


def sixteen_bit(like):
    """Whether parameters stored as ``like`` (a view array) are float16 or bfloat16: the storage
    whose kernels keep copies of their loops for a compensation buffer (with float32 or
    float64 parameters one takes the general copy). A compile-time constant in compiled code."""
    return like.dtype in (np.uint16, np.int16)


_SIXTEEN_BIT = (BFLOAT16, FLOAT16)  # the view types of 16-bit storage


def is_bfloat16(like):
    """Whether ``like`` (a view array) holds bfloat16 elements, whose conversions are integer
    arithmetic in the loops (float16's are one instruction each with F16C). A compile-time
    constant in compiled code."""
    return like.dtype == np.uint16


@overload(is_bfloat16)
def _is_bfloat16_impl(like):
    value = like.dtype == BFLOAT16
    return lambda like: value


@overload(sixteen_bit)
def _sixteen_bit_impl(like):
    value = like.dtype in _SIXTEEN_BIT
    return lambda like: value


def for_sixteen_bit(loop):
    """The function ``call(like, *args)`` that runs ``loop(*args)`` in kernels over 16-bit
    parameters (``like``, see ``sixteen_bit``) and is nothing in the others: chosen by type
    (the overload below), so a float32 or float64 kernel holds none of its code (a branch
    that is never taken is still compiled: +2 s a kernel, measured)."""

    def call(like, *args):
        if sixteen_bit(like):
            loop(*args)

    @overload(call)
    def _call_impl(like, *args):
        if like.dtype in _SIXTEEN_BIT:
            return lambda like, *args: loop(*args)
        return lambda like, *args: None

    return call


_BFLOAT16_TO_INF = np.uint32(0x7F7F8000).view(np.float32)  # bfloat16's largest, 0x7F7F, plus half an ulp
_FLOAT16_TO_INF = np.float32(65520.0)  # float16's largest, 65504, plus half an ulp


def rounds_to_inf(x):
    """The smallest magnitude (in the math type) that ``narrow`` rounds to infinity in the
    storage of the scalar ``x`` (a view type, or a ``PAIR`` of bfloat16): half an ulp past
    the largest finite value, where round-to-nearest-even goes up (that value's significand
    is odd); inf for float32 and float64, stored as computed. A compile-time constant in
    compiled code (Python twin of the overload below)."""
    dtype = np.asarray(x).dtype
    if dtype in (np.uint16, np.uint32):
        return _BFLOAT16_TO_INF
    if dtype == np.int16:
        return _FLOAT16_TO_INF
    return dtype.type(np.inf)


@overload(rounds_to_inf)
def _rounds_to_inf_impl(x):
    if x == BFLOAT16 or x == PAIR:
        bound = _BFLOAT16_TO_INF
    elif x == FLOAT16:
        bound = _FLOAT16_TO_INF
    elif isinstance(x, types.Float):
        bound = x.cast_python_value(np.inf)
    else:
        return None
    return lambda x: bound


@njit(cache=True, error_model="numpy")
def store_param(w, comp, i, old, new, compensated):
    """Store the updated parameter ``new`` (math dtype) over ``old`` (its value before the step)."""
    if compensated:
        y = (new - old) + widen(comp[i])
        total = old + y
        # where the weight or its step is not finite (|total| rounds to inf, or is nan), it is
        # stored as without compensation, with none kept: the Kahan sum's inf - inf would make
        # an infinite weight nan at its next step
        finite = abs(total) < rounds_to_inf(w[i])
        stored = narrow(total if finite else new, w[i])
        w[i] = stored
        comp[i] = narrow(y - (widen(stored) - old) if finite else one_like(y) - one_like(y), w[i])
    else:
        w[i] = narrow(new, w[i])




@njit(cache=True, error_model="numpy")
def store_param_pair(w, comp, i, old0, old1, new0, new1, compensated):
    """``store_param`` of a ``PAIR`` of bfloat16 parameters (and of their compensation)."""
    if compensated:
        y0 = (new0 - old0) + low_half(comp[i])
        y1 = (new1 - old1) + high_half(comp[i])
        total0, total1 = old0 + y0, old1 + y1
        bound = rounds_to_inf(w[i])  # (as in ``store_param``: bfloat16's)
        finite0, finite1 = abs(total0) < bound, abs(total1) < bound
        stored = pair_of(total0 if finite0 else new0, total1 if finite1 else new1)
        w[i] = stored
        zero = one_like(y0) - one_like(y0)
        comp[i] = pair_of(y0 - (low_half(stored) - old0) if finite0 else zero,
                          y1 - (high_half(stored) - old1) if finite1 else zero)
    else:
        w[i] = pair_of(new0, new1)
