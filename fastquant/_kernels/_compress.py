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

``compress_sweep`` returns False, having done nothing, where the CPU the kernels are compiled for lacks AVX-512F or
for other dtypes (byte-swapped words); the caller then runs the portable sweep. The CPU features are Numba's own
(``NUMBA_CPU_FEATURES``, else the host's), part of its cache key (see ``_vbmi``).
"""

from __future__ import annotations

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


def _splat(builder, vector_type, value):
    vector = builder.insert_element(ir.Constant(vector_type, ir.Undefined), value, ir.Constant(_I32, 0))
    lanes = vector_type.count
    return builder.shuffle_vector(vector, vector, ir.Constant(ir.VectorType(_I32, lanes), [0] * lanes))


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
        bits = sig.args[0].dtype.bitwidth
        lanes = 512 // bits
        vector = ir.VectorType(context.get_value_type(sig.args[0].dtype), lanes)
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
        x_ptr = builder.bitcast(x_arr.data, vector.as_pointer())

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
            values = builder.load(builder.gep(x_ptr, [loop.index]), align=1)
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
        and x.dtype in (types.float32, types.float64)
        and thresholds.dtype == x.dtype
        and row.dtype == x.dtype
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
