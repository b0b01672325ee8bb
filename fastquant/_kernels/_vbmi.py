"""Painting levels with AVX-512 VBMI: 64 table lookups per byte permute, for the colour kernels' hot loop.

A (256,)-entry byte table fits in four 64-byte registers, and VBMI's two-table byte permute (vpermi2b) looks up 64
indexes in 128 entries at once: two permutes and a select on the index's high bit give 64 bytes of one channel.
The channels are then interleaved into RGB(A) pixels by constant byte shuffles (vpermt2b) and stored whole. The
scalar paint of ``_common`` does one 32-bit table load per pixel and stitches words; this does about 7 instructions
per 64 pixels and channel, so the paint costs its stores and little else.

``vbmi_paint`` paints the longest prefix of whole 64-pixel blocks and returns its length, or returns 0 where the
CPU the kernels are compiled for lacks VBMI, where the arrays are not contiguous, or for other dtypes; the scalar
paint does the rest. The CPU features are Numba's own (``NUMBA_CPU_FEATURES``, else the host's), and they are
part of Numba's cache key, so cached code never runs on a CPU it was not compiled for.

The table: the packed colour table (see ``_common``) carries, after its 257 words, four planes of 256 bytes at
byte offset ``PLANES``: plane c holds channel c of every level.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils, config
from numba.core.codegen import get_host_cpu_features
from numba.extending import intrinsic, overload

PLANES = 257 * 4  # byte offset of the channel planes in the packed table
_BLOCK = 64  # pixels per vector block (one 64-byte register of levels)

_I8, _I32, _I64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
_BYTES = ir.VectorType(_I8, _BLOCK)
_MASK = ir.VectorType(_I32, _BLOCK)


def _has_vbmi() -> bool:
    features = config.CPU_FEATURES if config.CPU_FEATURES is not None else get_host_cpu_features()
    enabled = set(features.split(","))
    return {"+avx512f", "+avx512bw", "+avx512vbmi"} <= enabled


HAS_VBMI = _has_vbmi()


def _interleave_plan(channels: int) -> list[list[list[int]]]:
    """Per output register k (bytes 64k..64k+63 of the block's pixels), the masks of the shuffles that build it:
    the first picks channels 0 and 1 from (col0, col1), each next one keeps the lanes so far and adds channel c."""
    plan = []
    for k in range(channels):
        pixel = [(_BLOCK * k + b) // channels for b in range(_BLOCK)]
        channel = [(_BLOCK * k + b) % channels for b in range(_BLOCK)]
        first = [pixel[b] + _BLOCK * (channel[b] == 1) if channel[b] < 2 else 0 for b in range(_BLOCK)]
        steps = [first]
        for c in range(2, channels):
            steps.append([_BLOCK + pixel[b] if channel[b] == c else b for b in range(_BLOCK)])
        plan.append(steps)
    return plan


def _permute(builder, low, index, high):
    # vpermi2b: lane i = (high if bit 6 of index[i] else low)[index[i] & 63]
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(_BYTES, [_BYTES, _BYTES, _BYTES]), "llvm.x86.avx512.vpermi2var.qi.512"
    )
    return builder.call(fn, [low, index, high])


def _splat(builder, byte):
    vector = builder.insert_element(ir.Constant(_BYTES, ir.Undefined), byte, ir.Constant(_I32, 0))
    return builder.shuffle_vector(vector, vector, ir.Constant(_MASK, [0] * _BLOCK))


def _make_paint_blocks(channels: int):
    plan = _interleave_plan(channels)

    @intrinsic
    def paint_blocks(typingctx, x, levels, out, lut, blocks):
        # out[j] = colour of levels[j] (of NaN where x[j] is NaN) for j < 64 * blocks: data pointers only, the
        # caller checks contiguity and sizes.
        def codegen(context, builder, sig, args):
            x_ty, levels_ty, out_ty, lut_ty, _ = sig.args
            x_arr, levels_arr, out_arr, lut_arr = (
                context.make_array(ty)(context, builder, value)
                for ty, value in zip(sig.args[:4], args[:4], strict=True)
            )
            float_vector = ir.VectorType(context.get_value_type(x_ty.dtype), _BLOCK)
            level_vector = ir.VectorType(ir.IntType(levels_ty.dtype.bitwidth), _BLOCK)
            lut_bytes = builder.bitcast(lut_arr.data, _I8.as_pointer())
            planes = [
                [
                    builder.load(
                        builder.bitcast(
                            builder.gep(lut_bytes, [ir.Constant(_I64, PLANES + 256 * c + _BLOCK * q)]),
                            _BYTES.as_pointer(),
                        ),
                        align=1,
                    )
                    for q in range(4)
                ]
                for c in range(channels)
            ]
            nan_word = builder.load(builder.gep(lut_arr.data, [ir.Constant(_I64, 256)]))
            nan_colour = [
                _splat(builder, builder.trunc(builder.lshr(nan_word, ir.Constant(_I32, 8 * c)), _I8))
                for c in range(channels)
            ]
            x_ptr = builder.bitcast(x_arr.data, float_vector.as_pointer())
            levels_ptr = builder.bitcast(levels_arr.data, level_vector.as_pointer())
            out_ptr = builder.bitcast(out_arr.data, _BYTES.as_pointer())
            zero = ir.Constant(_BYTES, [0] * _BLOCK)
            with cgutils.for_range(builder, args[4]) as loop:
                i = loop.index
                values = builder.load(builder.gep(x_ptr, [i]), align=1)
                index = builder.load(builder.gep(levels_ptr, [i]), align=1)
                if levels_ty.dtype.bitwidth != 8:
                    index = builder.trunc(index, _BYTES)  # levels are <= 255 (NaN is told by x)
                nan = builder.fcmp_unordered("uno", values, values)
                upper = builder.icmp_signed("<", index, zero)  # level >= 128
                colours = []
                for c in range(channels):
                    t = planes[c]
                    colour = builder.select(
                        upper, _permute(builder, t[2], index, t[3]), _permute(builder, t[0], index, t[1])
                    )
                    colours.append(builder.select(nan, nan_colour[c], colour))
                first = builder.mul(i, ir.Constant(_I64, channels))
                for k, steps in enumerate(plan):
                    pixels = builder.shuffle_vector(colours[0], colours[1], ir.Constant(_MASK, steps[0]))
                    for c, mask in enumerate(steps[1:], start=2):
                        pixels = builder.shuffle_vector(pixels, colours[c], ir.Constant(_MASK, mask))
                    builder.store(pixels, builder.gep(out_ptr, [builder.add(first, ir.Constant(_I64, k))]), align=1)
            return context.get_dummy_value()

        return types.void(x, levels, out, lut, blocks), codegen

    return paint_blocks


_paint_rgb_blocks = _make_paint_blocks(3)
_paint_rgba_blocks = _make_paint_blocks(4)


def vbmi_paint(x, levels, out, lut):
    """Paint the whole 64-pixel blocks of x/levels into out (n, C); return how many pixels were painted."""


@overload(vbmi_paint, inline="always")
def _vbmi_paint(x, levels, out, lut):
    usable = (
        HAS_VBMI
        and isinstance(x.dtype, types.Float)
        and x.dtype.bitwidth in (32, 64)
        and levels.dtype in (types.uint8, types.uint16)
        and out.ndim == 2
    )
    if not usable:
        return lambda x, levels, out, lut: 0

    def paint_vector(x, levels, out, lut):
        n = x.size
        contiguous = (
            x.strides[0] == x.itemsize
            and levels.strides[0] == levels.itemsize
            and out.strides[1] == 1
            and out.strides[0] == out.shape[1]
            and levels.size >= n
            and out.shape[0] >= n
            and lut.size >= PLANES // 4 + 256
        )
        blocks = n // _BLOCK if contiguous else 0
        if blocks == 0:
            return 0
        if out.shape[1] == 3:
            _paint_rgb_blocks(x, levels, out, lut, blocks)
        elif out.shape[1] == 4:
            _paint_rgba_blocks(x, levels, out, lut, blocks)
        else:
            return 0
        return blocks * _BLOCK

    return paint_vector
