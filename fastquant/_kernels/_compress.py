"""Counting and collecting with AVX-512 compress: one sweep of three (low, high) pairs, a vector at a time.

scan_runs counts the elements below six thresholds and copies the members of each pair (low <= x < high) to the
pair's region. Its portable form flags the members in a byte per element, then visits the flagged ones: a member
costs a branch and a few scalar operations, and at the densities that brackets proposed from a sample have (about
1.4 % of a group per bracket) that visit was a third of the pass. Here each vector of 16 float32 (8 float64) is
compared with the six thresholds, the counts are per-lane masked adds, and the members of a pair are
packed to the front of a register (vcompressps, the register form: the memory form is microcoded on AMD) and the
whole register stored at the pair's next position, which then advances by the member count. The lanes past the
members are garbage, overwritten by the next store or left past the region's written count, where nothing reads.

A region of cap + 1 slots (the last a sink, as in the portable kernel) takes whole-register stores while they fit;
nearer its end each packed lane is stored at min(position, last slot), so that a full region keeps counting.
Members land in the order of their positions, as in the portable kernel, so both give the same bytes.

Two loops: ``sparse`` tests each pair's mask and skips the pack and store where it is empty (fewer instructions
when members are rare, a mispredicted branch per vector when they are not); otherwise every vector is packed and
stored branch-free. The caller picks by the members of the previous block.

Lane patterns (H×W×C): a vector holds consecutive lanes, of several groups, so ``compress_lanes`` packs each
pair's members together with their lane numbers into a staging list, which the caller sends to the groups'
regions; it sweeps one vector of lanes down a block's rows, its counts in registers, sparse or dense as above
(two compiled sweeps: the caller picks one per block).

``compress_usable`` and ``lane_width`` say (at compile time) whether these run: not where the CPU the kernels
are compiled for lacks AVX-512F; byte-swapped float32 words (uint32) are swapped in the register (one shuffle per
vector, so that big-endian data keeps the speed of native data). The CPU features are Numba's own
(``NUMBA_CPU_FEATURES``, else the host's), part of its cache key (see ``_vbmi``).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils, config
from numba.core.codegen import get_host_cpu_features
from numba.extending import intrinsic, overload

_I1, _I32, _I64 = ir.IntType(1), ir.IntType(32), ir.IntType(64)


def _has_avx512f() -> bool:
    features = config.CPU_FEATURES if config.CPU_FEATURES is not None else get_host_cpu_features()
    return "+avx512f" in set(features.split(","))


HAS_COMPRESS = _has_avx512f()
_KERNEL_DTYPES = (types.float32, types.float64, types.uint32)  # uint32: byte-swapped float32 words


def _splat(builder, vector_type, value):
    vector = builder.insert_element(ir.Constant(vector_type, ir.Undefined), value, ir.Constant(_I32, 0))
    lanes = vector_type.count
    return builder.shuffle_vector(vector, vector, ir.Constant(ir.VectorType(_I32, lanes), [0] * lanes))


def _value_type(dtype):
    """The numba type of the values x holds: float32 for byte-swapped float32 words (uint32, see _common.load)."""
    return types.float32 if dtype == types.uint32 else dtype


def _load_vector(builder, address, x_dtype, vector):
    # The values of a vector at `address` (an element pointer of x): byte-swapped words are swapped in the register
    if x_dtype != types.uint32:
        return builder.load(builder.bitcast(address, vector.as_pointer()), align=1)
    words_type = ir.VectorType(_I32, vector.count)
    words = builder.load(builder.bitcast(address, words_type.as_pointer()), align=1)
    bswap = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(words_type, [words_type]), f"llvm.bswap.v{vector.count}i32"
    )
    return builder.bitcast(builder.call(bswap, [words]), vector)


def _element_pointer(builder, array, index):
    return builder.gep(array.data, [index if isinstance(index, ir.Value) else ir.Constant(_I64, index)])


@intrinsic
def _sweep_vectors(typingctx, x, n_vectors, thresholds, t, acc, row, pos, last, sparse):
    """Over the first n_vectors whole vectors of x: acc[t + k] += #{x < thresholds[t + k]} (k < 6), and for each
    pair p < 3 with last[p] >= 0, the members of [thresholds[t + 2p], thresholds[t + 2p + 1]) stored from
    row[pos[p]] on (none past row[last[p]]), pos[p] advanced by their number. Data pointers only: the caller
    checks contiguity and sizes."""
    sig = types.void(x, n_vectors, thresholds, t, acc, row, pos, last, sparse)

    def codegen(context, builder, sig, args):
        arrays = {k: context.make_array(sig.args[k])(context, builder, args[k]) for k in (0, 2, 4, 5, 6, 7)}
        x_arr, thr_arr, acc_arr, row_arr, pos_arr, last_arr = (arrays[k] for k in (0, 2, 4, 5, 6, 7))
        x_dtype = sig.args[0].dtype
        bits = x_dtype.bitwidth
        lanes = 512 // bits
        vector = ir.VectorType(context.get_value_type(_value_type(x_dtype)), lanes)
        mask_type, bits_type, count_vector = ir.VectorType(_I1, lanes), ir.IntType(lanes), ir.VectorType(_I32, lanes)
        module = builder.module
        compress = cgutils.get_or_insert_function(
            module,
            ir.FunctionType(vector, [vector, vector, mask_type]),
            f"llvm.x86.avx512.mask.compress.v{lanes}f{bits}",
        )
        ctpop = cgutils.get_or_insert_function(module, ir.FunctionType(bits_type, [bits_type]), f"llvm.ctpop.i{lanes}")
        reduce_add = cgutils.get_or_insert_function(
            module, ir.FunctionType(_I32, [count_vector]), f"llvm.vector.reduce.add.v{lanes}i32"
        )
        t = builder.sext(args[3], _I64) if args[3].type.width < 64 else args[3]
        offsets = [builder.add(t, ir.Constant(_I64, k)) for k in range(6)]
        thresholds = [_splat(builder, vector, builder.load(_element_pointer(builder, thr_arr, o))) for o in offsets]
        # per-lane counts (one masked add per compare), summed once at the end; a piece is far below 2**31
        counts = [cgutils.alloca_once_value(builder, ir.Constant(count_vector, [0] * lanes)) for _ in range(6)]
        one, zero = ir.Constant(count_vector, [1] * lanes), ir.Constant(count_vector, [0] * lanes)
        last = [builder.load(_element_pointer(builder, last_arr, p)) for p in range(3)]
        starts = [builder.load(_element_pointer(builder, pos_arr, p)) for p in range(3)]
        positions = [cgutils.alloca_once_value(builder, start) for start in starts]
        collected = [builder.icmp_signed(">=", last[p], ir.Constant(_I64, 0)) for p in range(3)]
        sparse = builder.icmp_unsigned("!=", args[8], ir.Constant(args[8].type, 0))

        def store_members(p, values, member):
            number = builder.zext(builder.call(ctpop, [builder.bitcast(member, bits_type)]), _I64)
            packed = builder.call(compress, [values, ir.Constant(vector, ir.Undefined), member])
            position = builder.load(positions[p])
            fits = builder.icmp_signed("<=", builder.add(position, ir.Constant(_I64, lanes - 1)), last[p])
            with builder.if_else(fits, likely=True) as (whole, near_end):
                with whole:
                    destination = builder.bitcast(_element_pointer(builder, row_arr, position), vector.as_pointer())
                    builder.store(packed, destination, align=1)
                with near_end:  # each lane at min(position, last): the sink takes what does not fit
                    for j in range(lanes):
                        at = builder.add(position, ir.Constant(_I64, j))
                        at = builder.select(builder.icmp_signed("<", at, last[p]), at, last[p])
                        lane = builder.extract_element(packed, ir.Constant(_I32, j))
                        builder.store(lane, _element_pointer(builder, row_arr, at))
            builder.store(builder.add(position, number), positions[p])

        with cgutils.for_range(builder, args[1]) as loop:
            address = builder.gep(x_arr.data, [builder.mul(loop.index, ir.Constant(_I64, lanes))])
            values = _load_vector(builder, address, x_dtype, vector)
            below = [builder.fcmp_ordered("<", values, threshold) for threshold in thresholds]  # NaN: never
            for k in range(6):
                builder.store(builder.add(builder.load(counts[k]), builder.select(below[k], one, zero)), counts[k])
            for p in range(3):
                with builder.if_then(collected[p]):
                    member = builder.and_(builder.not_(below[2 * p]), below[2 * p + 1])
                    with builder.if_else(sparse) as (skip_empty, always):
                        with skip_empty:
                            empty = builder.icmp_unsigned("==", builder.bitcast(member, bits_type), bits_type(0))
                            with builder.if_then(builder.not_(empty)):
                                store_members(p, values, member)
                        with always:
                            store_members(p, values, member)
        for k in range(6):
            pointer = _element_pointer(builder, acc_arr, offsets[k])
            builder.store(
                builder.add(builder.load(pointer), builder.call(reduce_add, [builder.load(counts[k])])), pointer
            )
        for p in range(3):
            builder.store(builder.load(positions[p]), _element_pointer(builder, pos_arr, p))
        return context.get_dummy_value()

    return sig, codegen


def compress_usable(x, thresholds, row):
    """Whether compress_sweep runs for these arrays' types (a compile-time constant)."""


def _usable(x, thresholds, row) -> bool:
    return (
        HAS_COMPRESS
        and isinstance(x, types.Array)
        and x.dtype in _KERNEL_DTYPES
        and thresholds.dtype == _value_type(x.dtype)
        and row.dtype == _value_type(x.dtype)
    )


@overload(compress_usable, inline="always")
def _compress_usable(x, thresholds, row):
    answer = _usable(x, thresholds, row)
    return lambda x, thresholds, row: answer


def compress_sweep(x, thresholds, t, acc, row, pos, last, sparse):
    """Count and collect over x's whole vectors (see _sweep_vectors): acc (int32) += the counts, pos (3,) int64
    advanced; returns how many elements were done (a multiple of the vector width; 0 where compress_usable is
    False)."""


@overload(compress_sweep, inline="always")
def _compress_sweep(x, thresholds, t, acc, row, pos, last, sparse):
    usable = _usable(x, thresholds, row) and acc.dtype == types.int32 and pos.dtype == last.dtype == types.int64
    if not usable:
        return lambda x, thresholds, t, acc, row, pos, last, sparse: 0
    lanes = 512 // x.dtype.bitwidth

    def sweep(x, thresholds, t, acc, row, pos, last, sparse):
        contiguous = (
            x.strides[0] == x.itemsize
            and thresholds.strides[0] == thresholds.itemsize
            and row.strides[0] == row.itemsize
        )
        n_vectors = x.size // lanes if contiguous and t + 6 <= thresholds.size else 0
        if n_vectors > 0:
            _sweep_vectors(x, n_vectors, thresholds, t, acc, row, pos, last, sparse)
        return n_vectors * lanes

    return sweep


# --- lane patterns ------------------------------------------------------------------------------------------------
# A vector of a lane pattern's row holds consecutive lanes, of several groups: its members are packed with their
# lane numbers into a staging list per pair (two compresses), and the caller sends each to its group's region.


def _lane_sweep(dense: bool):
    """The code of _sweep_lanes_sparse or _sweep_lanes_dense (see there)."""

    def codegen(context, builder, sig, args):
        x_arr, thr_arr, acc_arr, values_arr, lanes_arr, staged_arr = (
            context.make_array(sig.args[k])(context, builder, args[k]) for k in (0, 4, 6, 7, 8, 9)
        )
        x_dtype = sig.args[0].dtype
        bits = x_dtype.bitwidth
        width = 512 // bits
        element = context.get_value_type(_value_type(x_dtype))
        vector, mask_type = ir.VectorType(element, width), ir.VectorType(_I1, width)
        bits_type, count_vector = ir.IntType(width), ir.VectorType(_I32, width)
        index_type = ir.IntType(bits)  # lane numbers packed as integers of the values' width
        index_vector = ir.VectorType(index_type, width)
        module = builder.module
        compress = cgutils.get_or_insert_function(
            module,
            ir.FunctionType(vector, [vector, vector, mask_type]),
            f"llvm.x86.avx512.mask.compress.v{width}f{bits}",
        )
        compress_index = cgutils.get_or_insert_function(
            module,
            ir.FunctionType(index_vector, [index_vector, index_vector, mask_type]),
            f"llvm.x86.avx512.mask.compress.v{width}i{bits}",
        )
        ctpop = cgutils.get_or_insert_function(module, ir.FunctionType(bits_type, [bits_type]), f"llvm.ctpop.i{width}")
        as_i64 = [builder.sext(a, _I64) if a.type.width < 64 else a for a in (args[1], args[2], args[3], args[5])]
        rows, stride, j, t = as_i64
        n_lanes = builder.extract_value(thr_arr.shape, 1)  # thresholds and acc are (T, L), C order
        starts = [builder.add(builder.mul(builder.add(t, ir.Constant(_I64, k)), n_lanes), j) for k in range(6)]
        thresholds = [
            builder.load(builder.bitcast(_element_pointer(builder, thr_arr, s), vector.as_pointer()), align=1)
            for s in starts
        ]
        counts = [cgutils.alloca_once_value(builder, ir.Constant(count_vector, [0] * width)) for _ in range(6)]
        one = ir.Constant(count_vector, [1] * width)
        staged_row = builder.extract_value(values_arr.shape, 1)
        positions = [
            cgutils.alloca_once_value(builder, builder.load(_element_pointer(builder, staged_arr, p))) for p in range(3)
        ]
        skip_pair0 = builder.icmp_unsigned("!=", args[10], ir.Constant(args[10].type, 0))
        j_index = builder.trunc(j, index_type) if bits < 64 else j
        lane_numbers = builder.add(
            _splat(builder, index_vector, j_index), ir.Constant(index_vector, list(range(width)))
        )
        x_data = x_arr.data
        undefined_values, undefined_index = ir.Constant(vector, ir.Undefined), ir.Constant(index_vector, ir.Undefined)

        with cgutils.for_range(builder, rows) as loop:
            offset = builder.add(builder.mul(loop.index, stride), j)
            values = _load_vector(builder, builder.gep(x_data, [offset]), x_dtype, vector)
            below = [builder.fcmp_ordered("<", values, threshold) for threshold in thresholds]  # NaN: never
            for k in range(6):
                count = builder.load(counts[k])
                builder.store(builder.select(below[k], builder.add(count, one), count), counts[k])
            for p in range(3):
                member = builder.and_(builder.not_(below[2 * p]), below[2 * p + 1])
                if dense:  # straight-line code: no branch (a runtime flag kept the branches, and cost as much)
                    present = builder.not_(skip_pair0) if p == 0 else ir.Constant(_I1, 1)
                else:
                    present = builder.icmp_unsigned("!=", builder.bitcast(member, bits_type), bits_type(0))
                    if p == 0:
                        present = builder.and_(present, builder.not_(skip_pair0))
                with builder.if_then(present, likely=not dense):
                    position = builder.load(positions[p])
                    at = builder.add(builder.mul(ir.Constant(_I64, p), staged_row), position)
                    packed = builder.call(compress, [values, undefined_values, member])
                    destination = builder.bitcast(_element_pointer(builder, values_arr, at), vector.as_pointer())
                    builder.store(packed, destination, align=1)
                    packed_lanes = builder.call(compress_index, [lane_numbers, undefined_index, member])
                    lane_pointer = builder.bitcast(_element_pointer(builder, lanes_arr, at), index_vector.as_pointer())
                    builder.store(packed_lanes, lane_pointer, align=1)
                    number = builder.zext(builder.call(ctpop, [builder.bitcast(member, bits_type)]), _I64)
                    builder.store(builder.add(position, number), positions[p])
        for k in range(6):
            pointer = builder.bitcast(_element_pointer(builder, acc_arr, starts[k]), count_vector.as_pointer())
            builder.store(builder.add(builder.load(pointer, align=1), builder.load(counts[k])), pointer, align=1)
        for p in range(3):
            builder.store(builder.load(positions[p]), _element_pointer(builder, staged_arr, p))
        return context.get_dummy_value()

    return codegen


@intrinsic
def _sweep_lanes_sparse(typingctx, x, rows, stride, j, thresholds, t, acc, staged_values, staged_lanes, staged, first):
    """Over rows r < rows of the vector x[r * stride + j :][:width] (width lanes): acc[t + k, j:][:width] +=
    the counts below thresholds[t + k, j:][:width] (k < 6), and for each pair p < 3 (not pair 0 when `first`) the
    members packed onto staged_values[p, staged[p]:] with their lanes (j + lane) onto staged_lanes[p, ...], staged[p]
    advanced. A pair is packed and stored only where a vector holds one of its members. Data pointers only: the
    caller checks sizes (a staging row takes stride * rows + width values)."""
    sig = types.void(x, rows, stride, j, thresholds, t, acc, staged_values, staged_lanes, staged, first)
    return sig, _lane_sweep(False)


@intrinsic
def _sweep_lanes_dense(typingctx, x, rows, stride, j, thresholds, t, acc, staged_values, staged_lanes, staged, first):
    """_sweep_lanes_sparse packing and storing every vector, branch-free (the stores past a pair's members are
    overwritten by the next): where members are not rare, the test of each vector mispredicts. scan_lanes alone,
    in one process, 128 lanes with 1.65 % members 29.6 -> 21.2 ms, 21 lanes 18.2 -> 13.2 ms; with 0.41 % both
    about equal; without members the sparse sweep is 10-15 % faster."""
    sig = types.void(x, rows, stride, j, thresholds, t, acc, staged_values, staged_lanes, staged, first)
    return sig, _lane_sweep(True)


def lane_width(x):
    """Lanes per vector of compress_lanes for x's dtype (0 where compress_lanes does not run: CPU, dtype)."""


@overload(lane_width, inline="always")
def _lane_width(x):
    width = 512 // x.dtype.bitwidth if HAS_COMPRESS and x.dtype in _KERNEL_DTYPES else 0
    return lambda x: width


def compress_lanes(x, rows, stride, j, thresholds, t, acc, staged_values, staged_lanes, staged, first, dense):
    """_sweep_lanes_dense if `dense`, else _sweep_lanes_sparse, for lane_width(x) > 0 (see there)."""


@overload(compress_lanes, inline="always")
def _compress_lanes(x, rows, stride, j, thresholds, t, acc, staged_values, staged_lanes, staged, first, dense):
    usable = (
        HAS_COMPRESS
        and x.dtype in _KERNEL_DTYPES
        and thresholds.dtype == _value_type(x.dtype)
        and staged_values.dtype == _value_type(x.dtype)
        and acc.dtype == types.int32
        and staged.dtype == types.int64
        and staged_lanes.dtype == (types.int32 if x.dtype.bitwidth == 32 else types.int64)
    )
    if not usable:
        return lambda x, rows, stride, j, thresholds, t, acc, staged_values, staged_lanes, staged, first, dense: None

    def sweep(x, rows, stride, j, thresholds, t, acc, staged_values, staged_lanes, staged, first, dense):
        if dense:
            _sweep_lanes_dense(x, rows, stride, j, thresholds, t, acc, staged_values, staged_lanes, staged, first)
        else:
            _sweep_lanes_sparse(x, rows, stride, j, thresholds, t, acc, staged_values, staged_lanes, staged, first)

    return sweep


def staging(x, size):
    """The staging lists of compress_lanes for x's dtype: values (3, size) and lane numbers (3, size), integers
    of the values' width (a size of 1 where lane_width(x) is 0)."""


@overload(staging, inline="always")
def _staging(x, size):
    width = 512 // x.dtype.bitwidth if HAS_COMPRESS and x.dtype in _KERNEL_DTYPES else 0
    index = np.int32 if x.dtype.bitwidth == 32 else np.int64
    dtype = _value_type(x.dtype)

    def make(x, size):
        n = size if width else 1
        return np.empty((3, n), dtype=dtype), np.empty((3, n), dtype=index)

    return make
