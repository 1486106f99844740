"""The LLVM intrinsics the CPU kernels call by name (the update rules in ``rules``, the
Philox normals in ``philox``): a module of its own, below both, so that neither imports
the other for it."""

from numba.core import types
from numba.extending import intrinsic


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
