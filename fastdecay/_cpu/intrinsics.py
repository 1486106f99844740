"""The LLVM intrinsics the CPU kernels call by name (the update rules in ``rules``, the
Philox normals in ``philox``), and what they ask of LLVM's code generation
(``prefer_wide_vectors``): a module of its own, below both, so that neither imports the
other for it."""

from numba.core import config as numba_config
from numba.core import types
from numba.core.codegen import get_host_cpu_features
from numba.extending import intrinsic, overload


@intrinsic
def fma(typingctx, a, b, c):
    """a*b + c rounded once (LLVM's ``llvm.fma``: one instruction on FMA hardware),
    in the widest float type of the three."""
    if not all(isinstance(x, types.Float) for x in (a, b, c)):
        return None
    out = max((a, b, c), key=lambda x: x.bitwidth)

    def codegen(context, builder, signature, args):
        args = [context.cast(builder, v, t, out) for v, t in zip(args, signature.args)]
        return builder.fma(*args)

    return out(a, b, c), codegen


@intrinsic
def prefer_wide_vectors(typingctx):
    """Asks LLVM to vectorize the calling function's loops in 512-bit registers where the CPU has
    them (the function attribute ``"prefer-vector-width"="512"``; nothing without AVX-512).

    LLVM prefers 256-bit vectors on Intel's AVX-512 server cores, whose 512-bit operations issue
    on two ports where 256-bit ones issue on three (for AMD's Zen 4 it chooses 512 bits itself,
    and the attribute changes nothing there). Loops paced by the divider or by memory gain
    nothing from wider vectors; loops paced by integer vector operations or by multiply-adds in
    cache do. On such a core: the bfloat16 pair loops (their conversions) 10-35 % faster, the
    Philox normals ~1.4x, the noiseless SGD family's blocks of steps 1.4-2x (two 512-bit FMA
    units), the per-trajectory blocks 1.0-1.4x, Lion's tile-steps 1.3-1.7x, the expected
    dynamics' moment loops 1.2-1.4x (bench/RESULTS.md: "bfloat16 pairs in 512-bit vectors", "The
    Philox normals in 512-bit vectors", "The noiseless blocks in 512-bit vectors").

    The attribute belongs to the LLVM function that holds the loop: an ``@overload``'s
    implementation is a function of its own, not its caller's. llvmlite knows no such attribute
    by name, so it is added to the function's attribute set as LLVM's own text; it is a hint, and
    where a version of llvmlite refuses it the loop keeps LLVM's choice (a test checks that it
    reaches the machine code)."""

    def codegen(context, builder, signature, args):
        try:
            set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        except Exception:  # (a hint: without it the same bits, in LLVM's preferred width)
            pass
        return context.get_dummy_value()

    return types.none(), codegen


def wide_vectors():
    """Whether the kernels are built for a CPU with AVX-512 (the target features Numba compiles
    for: ``NUMBA_CPU_FEATURES``, else the host's), where ``prefer_wide_vectors`` gives loops
    512-bit vectors. A compile-time constant in compiled code; Numba's cache keeps a kernel per
    set of target features, so a cached kernel holds the value of its own."""
    return _target_has_avx512()


def _target_has_avx512():
    features = numba_config.CPU_FEATURES
    if features is None:
        features = get_host_cpu_features()
    return "+avx512f" in features.split(",")


@overload(wide_vectors)
def _wide_vectors_impl():
    value = _target_has_avx512()
    return lambda: value
