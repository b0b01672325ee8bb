"""Shared pieces of the kernels: part bounds, the group walk, the level functions (inlined into the loops)."""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .._jit import inline, serial
from ._vbmi import vbmi_paint

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
def chunk_partials(n_chunks, rows, width):
    """int64 zeros (n_chunks, rows, width) whose chunks' rows lie at least 128 bytes apart.

    Each chunk's thread adds to its own rows, often (per block, or per member); rows of two chunks in one cache
    line make the threads trade it (false sharing: the Convert pass with window counts of 8192², 13.5 -> 6.8 ms).
    """
    pad = (16 + width - 1) // width  # spare rows after each chunk's: at least 16 int64
    return np.zeros((n_chunks, rows + pad, width), dtype=np.int64)[:, :rows]


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


def _float_intrinsic(name, bits):
    # IEEE maxNum/minNum (llvm.maxnum/minnum) of two floats of `bits`: the other operand when one is NaN.
    llvm_type = ir.DoubleType() if bits == 64 else ir.FloatType()
    numba_type = types.float64 if bits == 64 else types.float32

    @intrinsic
    def fn(typingctx, a, b):
        def codegen(context, builder, sig, args):
            decl = ir.FunctionType(llvm_type, [llvm_type, llvm_type])
            return builder.call(cgutils.get_or_insert_function(builder.module, decl, f"llvm.{name}.f{bits}"), args)

        return numba_type(numba_type, numba_type), codegen

    return fn


# With a constant b, _maxnum compiles to one maxpd; Python's max(b, a), which must return b for NaN too, to a
# compare and a mask.
_maxnum = _float_intrinsic("maxnum", 64)
_maxnum32 = _float_intrinsic("maxnum", 32)
_minnum32 = _float_intrinsic("minnum", 32)


def _is_float32(x):
    """Whether x holds float32 values (a compile-time constant): float32, or its byte-swapped words (uint32)."""


@overload(_is_float32, inline="always")
def _is_float32_overload(x):
    answer = x.dtype in (types.float32, types.uint32)
    return lambda x: answer


@intrinsic
def _prefetch(typingctx, arr, index):
    # llvm.prefetch (read, high locality, data cache) of the cache line that holds arr[index].
    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        byte_ptr = ir.IntType(8).as_pointer()
        address = builder.bitcast(builder.gep(data, [args[1]]), byte_ptr)
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32]), "llvm.prefetch.p0"
        )
        builder.call(fn, [address, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(arr, index), codegen


@inline
def _prefetch_span(x, begin, end):
    # Prefetch the cache lines of x[begin:end] (clamped to x).
    for j in range(max(0, begin), min(x.size, end), 64 // x.itemsize):
        _prefetch(x, j)


# --- byte-swapped float32 read in place ------------------------------------------------------------------------
# A byte-swapped float32 array reaches the kernels that read it in place as its words (a uint32 view): a uint32
# `x` always means that. Loops that read each value once take it through load (swapped in the register: the
# hardware prefetcher streams the words as it streams native floats). Swapping a block into a buffer first and then
# using it serializes memory and compute: a count-and-collect sweep of 8192² over copied 4096-value blocks took
# 15 ms, over the array itself 8.4 ms. Only the colour paint, which needs the values of a block its conversion
# already read, swaps blocks into L1 (native_block). Native arrays pass through both unchanged.


@intrinsic
def _swapped_float32(typingctx, word):
    # The float32 whose bytes are those of `word` reversed (llvm.bswap, then a bitcast): one byte shuffle.
    if word != types.uint32:
        return None

    def codegen(context, builder, sig, args):
        i32 = ir.IntType(32)
        bswap = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i32, [i32]), "llvm.bswap.i32")
        return builder.bitcast(builder.call(bswap, args), ir.FloatType())

    return types.float32(types.uint32), codegen


def load(x, i):
    """x[i] as a value: itself, or for byte-swapped words (uint32) the float32 they hold."""


@overload(load, inline="always")
def _load(x, i):
    if x.dtype == types.uint32:
        return lambda x, i: _swapped_float32(x[i])
    return lambda x, i: x[i]


def copy_run(out, d, x, s, m):
    """out[d:d + m] = the values of x[s:s + m] (see load): a slice copy for native floats. An element loop took
    the approx sample of whole rows of 21 x 2048² 6.1 ms, the slice copy 2.2 ms (runs of 16 elements: 4.4)."""


@overload(copy_run, inline="always")
def _copy_run(out, d, x, s, m):
    if x.dtype == types.uint32:

        def swapped(out, d, x, s, m):
            for k in range(m):
                out[d + k] = _swapped_float32(x[s + k])

        return swapped

    def native(out, d, x, s, m):
        out[d : d + m] = x[s : s + m]

    return native


def swap_scratch(x, size):
    """Scratch for native_block: `size` float32 for byte-swapped words, else nothing (an empty view of x)."""


@overload(swap_scratch, inline="always")
def _swap_scratch(x, size):
    if x.dtype == types.uint32:
        return lambda x, size: np.empty(size, dtype=np.float32)
    return lambda x, size: x[:0]


@serial
def _swap_words(words, values):
    # values[i] = the float32 of words[i] swapped (one vector byte shuffle per 8 values)
    for i in range(words.size):
        values[i] = _swapped_float32(words[i])


def native_block(x, begin, end, scratch):
    """x[begin:end] as values: the slice itself, or byte-swapped words swapped into scratch[: end - begin]."""


@overload(native_block, inline="always")
def _native_block(x, begin, end, scratch):
    if x.dtype == types.uint32:

        def swapped(x, begin, end, scratch):
            values = scratch[: end - begin]
            _swap_words(x[begin:end], values)
            return values

        return swapped
    return lambda x, begin, end, scratch: x[begin:end]


@inline
def float32_edge(x, lo, factor, scale, nan_level):
    """The largest |t - rint(t)| at which float32 levels are proved equal to float64 ones, or 0 (not usable).

    Usable for float32 x, an ordinary range (factor 1, lo < hi), NaN level 0, and moderate limits. For such v,
    with T = (v - lo) scale exact, lo32 = f32(lo) and scale32 = f32(scale), the float32 value
    t32 = f32(f32(v - lo32) scale32) has |t32 - T| <= 2**-24 (3.01 |T| + 1.01 |lo| scale) (three roundings
    and the rounding of lo), and the float64 t within 2**-52 |T|. So where |T| <= 256 the two differ by at most
    d = 2**-24 (3.01 * 256 + 1.01 |lo| scale) + 2**-44, and where t32, clamped to [0, 255], is more than d
    from a half-integer, both round to the same level (|T| > 256 clamps both to the same end; overflow to
    +-inf keeps the sign; NaN goes to 0 in both; 2**-140 covers the absolute error of subnormal
    results). The edge returned is 0.5 - d rounded down to a float32.
    """
    if not _is_float32(x) or factor != 1.0 or nan_level != 0.0:
        return np.float32(0.0)
    if not (1e-30 < scale < 1e30 and abs(lo) < 1e30):
        return np.float32(0.0)
    return _edge_for(abs(lo) * scale)


@inline
def _edge_for(worst):
    # float32_edge's edge where |lo| scale = worst (0 when the margin is too wide to be worth it)
    margin = 2.0**-24 * (3.01 * 256.0 + 1.01 * worst) + 2.0**-44 + 2.0**-140
    if margin > 0.05:
        return np.float32(0.0)
    edge = np.float32(0.5 - margin)
    if np.float64(edge) > 0.5 - margin:
        edge = np.nextafter(edge, np.float32(0.0))
    return edge


@serial
def float32_lane_edge(x, lo, factor, scale, nan_level):
    """float32_edge for per-lane (or per-group) parameters: one edge that holds for every lane (that of the
    largest |lo| scale), or 0 when some lane is not usable. One vectorized loop over the lanes."""
    if not _is_float32(x) or nan_level != 0.0:
        return np.float32(0.0)
    usable = True
    worst = 0.0
    for j in range(lo.size):
        s, size = scale[j], abs(lo[j])
        usable = usable & (factor[j] == 1.0) & (1e-30 < s) & (s < 1e30) & (size < 1e30)
        worst = _maxnum(worst, size * s)
    return _edge_for(worst) if usable else np.float32(0.0)


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


# --- colour: levels to colours ----------------------------------------------------------------------------------
# A colour table is (513,) uint32: entry k holds the colour of level k as little-endian bytes (R | G << 8 | B << 16
# | A << 24), entry 256 the colour of NaN; words 257.. hold the same colours as four planes of 256 bytes, one per
# channel, for the VBMI paint (see _vbmi). Colour output is (n, C) uint8 with C = 3 or 4. The grey kernels take
# `lut=None`; the overloads below are resolved when a kernel is typed, so a None table compiles to the grey code.

PAINT_BLOCK = 1024  # elements whose levels are made in a scratch buffer (in L1) and then painted


@inline
def _paint(x, levels, out, lut):
    # out[j] = colour of levels[j] (NaN x[j]: entry 256). With VBMI the whole 64-pixel blocks are painted by
    # byte permutes (see _vbmi); the rest here. Levels in a uint16 scratch (scratch_for) get NaN's 256 in one
    # vectorized loop first, so that the lookups read the levels only (RGB, one thread: 1.0 -> 0.64 ns per
    # element); uint8 levels are tested against x per lookup. For RGB the colours of four elements are stored as
    # three 32-bit words (three byte stores per element were twice as slow); for RGBA one word per element.
    _paint_from(x, levels, out, lut, vbmi_paint(x, levels, out, lut))


@inline
def _paint_from(x, levels, out, lut, done):
    # the scalar paint of elements done.. (done: a multiple of 4; 0 paints everything, as on CPUs without VBMI)
    m = x.size
    flat = out.reshape(-1)
    if levels.itemsize == 2:
        for j in range(done, m):
            levels[j] = levels[j] | (np.uint16(x[j] != x[j]) << np.uint16(8))
    if out.shape[1] == 4:
        words = flat.view(np.uint32)
        for j in range(done, m):
            words[j] = lut[_lut_index(levels, x, j)]
        return
    quads = m // 4
    words = flat[: 12 * quads].view(np.uint32)
    for q in range(done // 4, quads):
        j = 4 * q
        a0 = lut[_lut_index(levels, x, j)]
        a1 = lut[_lut_index(levels, x, j + 1)]
        a2 = lut[_lut_index(levels, x, j + 2)]
        a3 = lut[_lut_index(levels, x, j + 3)]
        words[3 * q] = a0 | (a1 << np.uint32(24))
        words[3 * q + 1] = (a1 >> np.uint32(8)) | (a2 << np.uint32(16))
        words[3 * q + 2] = (a2 >> np.uint32(16)) | (a3 << np.uint32(8))
    for j in range(max(done, 4 * quads), m):
        out_word = lut[_lut_index(levels, x, j)]
        for c in range(out.shape[1]):
            out[j, c] = np.uint8((out_word >> np.uint32(8 * c)) & np.uint32(255))


@inline
def _lut_index(levels, x, j):
    # the table entry of element j: uint16 levels already hold NaN's 256, uint8 levels are told NaN by x
    if levels.itemsize == 2:
        return np.int64(levels[j])
    return np.int64(levels[j]) + 256 * np.int64(x[j] != x[j])


@inline
def _store_colour(out, i, level, v, lut):
    word = lut[np.int64(level) + 256 * np.int64(v != v)]
    for c in range(out.shape[1]):
        out[i, c] = np.uint8((word >> np.uint32(8 * c)) & np.uint32(255))


def _grey(lut):
    return isinstance(lut, (types.NoneType, types.Omitted))


def put_level(out, i, level, v, lut):
    """out[i] = level, or with a colour table the colour of `level` (of NaN where v is NaN): for scalar tails."""


@overload(put_level, inline="always")
def _put_level(out, i, level, v, lut):
    if _grey(lut):

        def store_level(out, i, level, v, lut):
            out[i] = level

        return store_level
    return lambda out, i, level, v, lut: _store_colour(out, i, level, v, lut)


def level_target(out, scratch, begin, end, lut):
    """Where a block's levels go: out[begin:end] (grey), or the scratch buffer (colour; then paint them)."""


@overload(level_target, inline="always")
def _level_target(out, scratch, begin, end, lut):
    if _grey(lut):
        return lambda out, scratch, begin, end, lut: out[begin:end]
    return lambda out, scratch, begin, end, lut: scratch[: end - begin]


def paint(x, levels, out, lut):
    """Nothing (grey: the levels are the output), or out = the colours of the levels (see _paint)."""


@overload(paint, inline="always")
def _paint_overload(x, levels, out, lut):
    if _grey(lut):
        return lambda x, levels, out, lut: None
    return lambda x, levels, out, lut: _paint(x, levels, out, lut)


def scratch_for(out, lut, size):
    """A uint16 buffer of `size` for a block's levels (colour), or an empty view of out (grey: no allocation)."""


@overload(scratch_for, inline="always")
def _scratch_for(out, lut, size):
    if _grey(lut):
        return lambda out, lut, size: out[:0]
    return lambda out, lut, size: np.empty(size, dtype=np.uint16)  # room for NaN's entry 256 (see _paint)
