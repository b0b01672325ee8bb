"""Shared pieces of the kernels: part bounds, the group walk, the level functions (inlined into the loops)."""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .._jit import inline, serial

_FLUSH_BLOCKS = 1 << 12  # blocks between flushes of int32 accumulators (block <= 2**16 elements)


# --- helpers ---------------------------------------------------------------------------------------------------


@serial
def _chunk_bounds(n, n_chunks, c, align):
    """[begin, end) of chunk c when n items are split into n_chunks pieces whose starts are multiples of align."""
    per = (n + n_chunks - 1) // n_chunks
    per = ((per + align - 1) // align) * align
    begin = min(n, c * per)
    return begin, min(n, begin + per)


@inline
def _level(v, lo, factor, lo_scaled, scale, nan_level):
    # Equals the spec's three-way rule: for lo < v < hi, t is the spec's value (in [0, 255] up to an ulp), and
    # for v >= hi it is within an ulp of 255 or above (the arithmetic is monotone in v), so capping at 255 and
    # forcing 0 at v <= lo (also lo == hi, where the caller makes the scale +inf) give the spec's levels. The
    # float -> uint8 cast then only ever sees values in [0, 255]. Selects rather than branches keep the loop
    # vectorized; the NaN test is on v (testing the result defeats vectorization). factor is 1 except for
    # extreme ranges (see reference.scale_terms).
    t = (v * factor - lo_scaled) * scale
    t = 255.0 if t > 255.0 else t
    t = 0.0 if v <= lo else t
    t = nan_level if v != v else t
    return np.uint8(np.rint(t))


@intrinsic
def _maxnum(typingctx, a, b):
    # IEEE maxNum (llvm.maxnum): the larger of a and b, and b when a is NaN. With a constant b it compiles to
    # one maxpd; Python's max(b, a), which must return b for NaN too, compiles to a compare and a mask.
    def codegen(context, builder, sig, args):
        double = ir.DoubleType()
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(double, [double, double]), "llvm.maxnum.f64"
        )
        return builder.call(fn, args)

    return types.float64(types.float64, types.float64), codegen


@inline
def _level_clamped(v, lo, scale):
    # _level for an ordinary range (factor 1, lo < hi: scale finite and > 0) and nan_level 0: clamping
    # (v - lo) * scale to [0, 255] gives the spec's levels (v <= lo gives t <= 0, v >= hi gives t >= 255 up
    # to an ulp), and a NaN t (only from NaN v) becomes 0 in the lower clamp. One maxpd and one minpd per
    # four elements: about 10 % less compute than _level, and the float -> uint8 cast sees [0, 255] only.
    t = _maxnum((v - lo) * scale, 0.0)
    t = 255.0 if 255.0 < t else t
    return np.uint8(np.rint(t))


@inline
def _level_clamped_nan(v, lo, scale, nan_level):
    # _level_clamped with a NaN level other than 0, tested on t (NaN exactly where v is).
    t = (v - lo) * scale
    return np.uint8(np.rint(min(255.0, max(0.0, t)))) if t == t else np.uint8(nan_level)


@serial
def _group_at(flat, n_groups, run):
    return (flat // run) % n_groups, flat % run
