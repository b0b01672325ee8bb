"""Finite minimum and maximum per group at memory speed (one-sided limits: the lower limit is the finite minimum).

``x`` is a 1-D C-contiguous float32 or float64 array holding the logical ``(A, G, B)`` array in C order (element
``(a, g, b)`` at ``(a * G + g) * B + b``). Three loop shapes, each returning ``(parts, G, 2)`` float64 (per part,
the (min, max) of the finite values of each group, ``(inf, -inf)`` where the part has none; :func:`merge_parts`
reduces the parts; the columns kernel returns one part, already merged):

- :func:`finite_minmax_runs`: ``B`` large (one group per plane, or the whole array as one group, G = 1, B = N):
  the flat array is split into ``n_parts`` pieces, each run of one group reduced by a vectorized loop;
- :func:`finite_minmax_lanes`: a short repeating pattern (period ``G * B`` up to ~8192, e.g. H×W×C per channel):
  per-lane accumulators over blocks of ``L`` lanes (``L`` a multiple of the period), folded to groups at the end;
- :func:`finite_minmax_columns`: long rows (period ``G * B`` large with ``B`` small, e.g. per pixel of a stack):
  column tiles, each reduced over all ``A`` rows with per-column accumulators that stay in cache.

:func:`finite_minmax` picks one of them for a layout and merges the parts.

How the loops vectorize without fast-math: each value is mapped to an unsigned *key* in which the order of the
finite values is the float order (-0.0 just below +0.0) and the non-finite values are moved out of the way by a
wrapping add: in the *min key* the finite values come first (``[0, 2E)``, ``E`` = the bits of +inf) and +inf,
NaNs and -inf above them; in the *max key* +inf, NaNs and -inf come first and the finite values last
(``[2**bits - 2E, 2**bits)``). The minimum of min keys is then the key of the finite minimum whenever the group
has a finite value, and the maximum of max keys that of the finite maximum: a plain unsigned min/max reduction
(``vpminud``/``vpmaxud``, a shift, a mask, a xor and an add per vector) with no select and no float compare, so
LLVM vectorizes it, and the result is exact (including the sign of a zero: -0.0 < +0.0 always) whatever the order
of the reduction or the number of parts. A key outside the finite range decodes to a non-finite value, reported
as (inf, -inf).
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .._jit import inline, parallel, serial
from ._common import _chunk_bounds, load

_LANES_BYTES = 16384  # lanes kernel: at least this many bytes of keys per accumulator (amortizes a pass's setup)
_TILE = 8192  # about this many columns per tile in the columns kernel (4096 to 32768 time the same on 64×1024²)
_LANES_MAX_PERIOD = 8192  # finite_minmax: longest period for the lanes kernel (two accumulators of 32 KiB)
_MIN_RUN = 2048  # finite_minmax: shortest run for the runs kernel (one reduction call per run)


# --- keys ------------------------------------------------------------------------------------------------------


def _key_type(float_type):
    return types.uint32 if float_type.bitwidth == 32 else types.uint64


def _order_bits(builder, bits, width):
    # The float's bits with every bit but the sign flipped for negative values (an involution): read as a signed
    # integer, the result is in float order (-0.0 just below +0.0), with the NaNs beyond the infinities.
    it = ir.IntType(width)
    sign = builder.ashr(bits, ir.Constant(it, width - 1))
    return builder.xor(bits, builder.and_(sign, ir.Constant(it, (1 << (width - 1)) - 1)))


def _inf_bits(width):
    return 0x7F800000 if width == 32 else 0x7FF0000000000000


@intrinsic
def _min_key(typingctx, v):
    # finite v -> [0, 2E) in float order; +inf -> 2E, +NaN, -NaN, -inf above it.
    if not isinstance(v, types.Float):
        return None

    def codegen(context, builder, sig, args):
        width = sig.args[0].bitwidth
        it = ir.IntType(width)
        k = _order_bits(builder, builder.bitcast(args[0], it), width)
        return builder.add(k, ir.Constant(it, _inf_bits(width)))

    return _key_type(v)(v), codegen


@intrinsic
def _max_key(typingctx, v):
    # finite v -> [2**width - 2E, 2**width) in float order; +inf -> 0, then NaNs and -inf below the finite keys.
    if not isinstance(v, types.Float):
        return None

    def codegen(context, builder, sig, args):
        width = sig.args[0].bitwidth
        it = ir.IntType(width)
        k = _order_bits(builder, builder.bitcast(args[0], it), width)
        return builder.sub(k, ir.Constant(it, _inf_bits(width)))

    return _key_type(v)(v), codegen


def _decoder(sign):
    @intrinsic
    def decode(typingctx, key):
        # The float64 value of a min key (sign +1) or a max key (sign -1): the inverse of _min_key/_max_key,
        # widened (exact). Keys outside the finite range decode to +-inf or NaN.
        if not isinstance(key, types.Integer) or key.bitwidth not in (32, 64):
            return None
        width = key.bitwidth

        def codegen(context, builder, sig, args):
            it = ir.IntType(width)
            k = builder.sub(args[0], ir.Constant(it, sign * _inf_bits(width) % (1 << width)))
            ft = ir.FloatType() if width == 32 else ir.DoubleType()
            value = builder.bitcast(_order_bits(builder, k, width), ft)
            return builder.fpext(value, ir.DoubleType()) if width == 32 else value

        return types.float64(key), codegen

    return decode


_min_value = _decoder(1)
_max_value = _decoder(-1)


def _unsigned(name):
    @intrinsic
    def op(typingctx, a, b):
        if not isinstance(a, types.Integer) or a != b:
            return None

        def codegen(context, builder, sig, args):
            ty = context.get_value_type(sig.args[0])
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ty, [ty, ty]), f"llvm.{name}.i{sig.args[0].bitwidth}"
            )
            return builder.call(fn, args)

        return a(a, b), codegen

    return op


_umin = _unsigned("umin")
_umax = _unsigned("umax")


@intrinsic
def _key_bounds(typingctx, v):
    # (all ones, zero) in the key type of float v: the identities of the min-key and max-key reductions.
    if not isinstance(v, types.Float):
        return None
    kt = _key_type(v)

    def codegen(context, builder, sig, args):
        it = ir.IntType(sig.args[0].bitwidth)
        return context.make_tuple(builder, sig.return_type, [ir.Constant(it, -1), ir.Constant(it, 0)])

    return types.UniTuple(kt, 2)(v), codegen


@serial
def _store(acc, lo_keys, hi_keys):
    # acc[g] = decoded (min, max) of key rows, (inf, -inf) where no finite value was seen.
    for g in range(acc.shape[0]):
        lo = _min_value(lo_keys[g])
        hi = _max_value(hi_keys[g])
        acc[g, 0] = lo if lo - lo == 0 else np.inf
        acc[g, 1] = hi if hi - hi == 0 else -np.inf


# --- runs: B large -----------------------------------------------------------------------------------------------


@serial
def _run_keys(x, lo, hi):
    # A plain unsigned min/max reduction: LLVM vectorizes and interleaves it (independent vector accumulators).
    for i in range(x.size):
        v = load(x, i)  # byte-swapped words too (see _common.load)
        lo = _umin(lo, _min_key(v))
        hi = _umax(hi, _max_key(v))
    return lo, hi


@parallel
def _runs(x, n_groups, run, acc):
    n = x.size
    n_parts = acc.shape[0]
    for c in prange(n_parts):
        begin, end = _chunk_bounds(n, n_parts, c, 1)
        none_lo, none_hi = _key_bounds(load(x, 0))
        lo_keys = np.full(n_groups, none_lo)
        hi_keys = np.full(n_groups, none_hi)
        i = begin
        while i < end:
            g = (i // run) % n_groups
            stop = min(end, i + run - i % run)
            lo, hi = _run_keys(x[i:stop], lo_keys[g], hi_keys[g])
            lo_keys[g] = lo
            hi_keys[g] = hi
            i = stop
        _store(acc[c], lo_keys, hi_keys)


def _parts(n_parts, n_groups):
    # Outputs are allocated by NumPy: the same (2, 2**20, 2) array allocated inside the kernel cost 10 ms of page
    # faults on first touch (more than the per-pixel reduction itself), NumPy's about 1 ms. Every entry is written
    # by the kernel: no fill (a strided fill of 2**20 groups costs about 3 ms).
    return np.empty((n_parts, n_groups, 2), dtype=np.float64)


def finite_minmax_runs(x, n_groups, run, n_parts):
    """(n_parts, G, 2) float64: acc[c, g] = (min, max) of the finite values of group g in part c of the flat array,
    (inf, -inf) when there are none.

    For the runs layout (B large): runs of `run` (= B) contiguous elements share a group, group
    (i // run) % n_groups; n_groups = 1, run = x.size is the global case. The parts are equal pieces of the flat
    array, and each run in a part is one vectorized reduction (runs of a few thousand elements and more).
    """
    acc = _parts(n_parts, n_groups)
    if x.size:
        _runs(x, n_groups, run, acc)
    else:
        acc[..., 0] = np.inf
        acc[..., 1] = -np.inf
    return acc


# --- lanes: short repeating pattern ------------------------------------------------------------------------------


@inline
def _lanes_block(xs, lo, hi):
    # Elementwise over a block of lanes (plain loop indexes: vectorizes).
    for j in range(lo.size):
        v = load(xs, j)
        lo[j] = _umin(lo[j], _min_key(v))
        hi[j] = _umax(hi[j], _max_key(v))


@inline
def _rows8(x, base, stride, lanes):
    # The eight blocks of lanes at base + k * stride (k < 8).
    return (
        x[base : base + lanes],
        x[base + stride : base + stride + lanes],
        x[base + 2 * stride : base + 2 * stride + lanes],
        x[base + 3 * stride : base + 3 * stride + lanes],
        x[base + 4 * stride : base + 4 * stride + lanes],
        x[base + 5 * stride : base + 5 * stride + lanes],
        x[base + 6 * stride : base + 6 * stride + lanes],
        x[base + 7 * stride : base + 7 * stride + lanes],
    )


@inline
def _min8(v0, v1, v2, v3, v4, v5, v6, v7):
    # The smallest min key of eight values, as a tree of independent operations.
    m01 = _umin(_min_key(v0), _min_key(v1))
    m23 = _umin(_min_key(v2), _min_key(v3))
    m45 = _umin(_min_key(v4), _min_key(v5))
    m67 = _umin(_min_key(v6), _min_key(v7))
    return _umin(_umin(m01, m23), _umin(m45, m67))


@inline
def _max8(v0, v1, v2, v3, v4, v5, v6, v7):
    # The largest max key of eight values, as a tree of independent operations.
    n01 = _umax(_max_key(v0), _max_key(v1))
    n23 = _umax(_max_key(v2), _max_key(v3))
    n45 = _umax(_max_key(v4), _max_key(v5))
    n67 = _umax(_max_key(v6), _max_key(v7))
    return _umax(_umax(n01, n23), _umax(n45, n67))


@inline
def _lanes_block8(x, base, stride, lo, hi):
    # Eight blocks (at base + k * stride) per pass over the accumulators: an eighth of the accumulator loads and
    # stores per element, and a reduction tree of independent vector operations (1.4x faster than one block per
    # pass on H×W×21).
    x0, x1, x2, x3, x4, x5, x6, x7 = _rows8(x, base, stride, lo.size)
    for j in range(lo.size):
        v0, v1, v2, v3 = load(x0, j), load(x1, j), load(x2, j), load(x3, j)
        v4, v5, v6, v7 = load(x4, j), load(x5, j), load(x6, j), load(x7, j)
        lo[j] = _umin(lo[j], _min8(v0, v1, v2, v3, v4, v5, v6, v7))
        hi[j] = _umax(hi[j], _max8(v0, v1, v2, v3, v4, v5, v6, v7))


@inline
def _lanes_side_block8(x, base, stride, keys, low):
    # _lanes_block8 for one side: the min keys (low) or the max keys into `keys`, when the other limit is given.
    x0, x1, x2, x3, x4, x5, x6, x7 = _rows8(x, base, stride, keys.size)
    if low:
        for j in range(keys.size):
            v0, v1, v2, v3 = load(x0, j), load(x1, j), load(x2, j), load(x3, j)
            v4, v5, v6, v7 = load(x4, j), load(x5, j), load(x6, j), load(x7, j)
            keys[j] = _umin(keys[j], _min8(v0, v1, v2, v3, v4, v5, v6, v7))
    else:
        for j in range(keys.size):
            v0, v1, v2, v3 = load(x0, j), load(x1, j), load(x2, j), load(x3, j)
            v4, v5, v6, v7 = load(x4, j), load(x5, j), load(x6, j), load(x7, j)
            keys[j] = _umax(keys[j], _max8(v0, v1, v2, v3, v4, v5, v6, v7))


@serial
def _lanes_blocks(x, lo, hi):
    # x.size is a multiple of lo.size.
    lanes = lo.size
    n_blocks = x.size // lanes
    base = 0
    for _ in range(n_blocks // 8):
        _lanes_block8(x, base, lanes, lo, hi)
        base += 8 * lanes
    for _ in range(n_blocks % 8):
        _lanes_block(x[base : base + lanes], lo, hi)
        base += lanes


@parallel
def _lanes(x, lane_groups, n_groups, acc):
    lanes = lane_groups.size
    n_full = (x.size // lanes) * lanes
    n_parts = acc.shape[0]
    for c in prange(n_parts):
        begin, end = _chunk_bounds(n_full, n_parts, c, lanes)
        none_lo, none_hi = _key_bounds(load(x, 0))
        lo = np.full(lanes, none_lo)
        hi = np.full(lanes, none_hi)
        _lanes_blocks(x[begin:end], lo, hi)
        if c == n_parts - 1:
            for j in range(x.size - n_full):
                v = load(x, n_full + j)
                lo[j] = _umin(lo[j], _min_key(v))
                hi[j] = _umax(hi[j], _max_key(v))
        lo_keys = np.full(n_groups, none_lo)
        hi_keys = np.full(n_groups, none_hi)
        for j in range(lanes):
            g = lane_groups[j]
            lo_keys[g] = _umin(lo_keys[g], lo[j])
            hi_keys[g] = _umax(hi_keys[g], hi[j])
        _store(acc[c], lo_keys, hi_keys)


def finite_minmax_lanes(x, lane_groups, n_groups, n_parts):
    """(n_parts, G, 2) float64: acc[c, g] = (min, max) of the finite values of group g in part c, (inf, -inf)
    when there are none, for a short repeating group pattern (period G * B up to ~8192, e.g. H×W×C per channel).

    lane_groups[j] (int64) is the group of x[k * L + j] for every k (L = lane_groups.size, a multiple of the
    period; see :func:`lane_groups`). x.size need not be a multiple of L: the tail is done lane by lane. The
    parts are runs of whole blocks; each keeps per-lane key accumulators (eight blocks per pass over them) and
    folds them to groups at the end.
    """
    acc = _parts(n_parts, n_groups)
    if x.size:
        _lanes(x, np.ascontiguousarray(lane_groups, dtype=np.int64), n_groups, acc)
    else:
        acc[..., 0] = np.inf
        acc[..., 1] = -np.inf
    return acc


def lane_groups(n_groups, run, itemsize=4):
    """Group of each lane for finite_minmax_lanes: L = the smallest multiple of lcm(G * B, 16) (whole vectors per
    block: no scalar remainder in the inner loop) of at least _LANES_BYTES // itemsize lanes."""
    period = n_groups * run
    unit = int(np.lcm(period, 16))
    lanes = unit * max(1, -(-(_LANES_BYTES // itemsize) // unit))
    return (np.arange(lanes, dtype=np.int64) // run) % n_groups


# --- columns: long rows -----------------------------------------------------------------------------------------


@serial
def _fold_store(lo, hi, out, g0, run, merge):
    # out[g0 + q] = decoded (min, max) of the columns q * run ... (q + 1) * run - 1 of a tile; with `merge`,
    # merged with the (min, max) already there (-0.0 below +0.0, as the keys order them).
    for q in range(lo.size // run):
        m = lo[q * run]
        n = hi[q * run]
        for b in range(1, run):
            m = _umin(m, lo[q * run + b])
            n = _umax(n, hi[q * run + b])
        low = _min_value(m)
        high = _max_value(n)
        low = low if low - low == 0 else np.inf
        high = high if high - high == 0 else -np.inf
        if merge:
            seen_low, seen_high = out[g0 + q, 0], out[g0 + q, 1]
            if not (low < seen_low or (low == seen_low and math.copysign(1.0, low) < 0.0)):
                low = seen_low
            if not (high > seen_high or (high == seen_high and math.copysign(1.0, high) > 0.0)):
                high = seen_high
        out[g0 + q, 0] = low
        out[g0 + q, 1] = high


@parallel
def _columns(x, outer, n_groups, run, width, out, n_parts, merge):
    period = n_groups * run
    n_tiles = (period + width - 1) // width
    for c in prange(n_parts):
        t0, t1 = _chunk_bounds(n_tiles, n_parts, c, 1)
        none_lo, none_hi = _key_bounds(x[0])
        lo = np.full(width, none_lo)
        hi = np.full(width, none_hi)
        for t in range(t0, t1):
            k0 = t * width
            k1 = min(period, k0 + width)
            lo_t = lo[: k1 - k0]
            hi_t = hi[: k1 - k0]
            lo_t[:] = none_lo
            hi_t[:] = none_hi
            for a in range(0, outer - 7, 8):
                _lanes_block8(x, a * period + k0, period, lo_t, hi_t)
            for a in range(outer - outer % 8, outer):
                _lanes_block(x[a * period + k0 : a * period + k1], lo_t, hi_t)
            _fold_store(lo_t, hi_t, out, k0 // run, run, merge)


def finite_minmax_columns(x, outer, n_groups, run, n_parts, into=None):
    """(1, G, 2) float64: the (min, max) of the finite values of each group, (inf, -inf) when there are none, for
    long rows (period G * B large, B small: e.g. per pixel of a stack, A×H×W with one group per pixel). With
    `into` (G, 2), they are merged into it instead (no temporary: a million groups' merge cost 9 ms in NumPy).

    x holds `outer` (= A) rows of G * B. The columns are cut into tiles of whole groups (about _TILE columns);
    the parts share out the tiles, each reducing a tile over all A rows (eight rows per pass) with per-column key
    accumulators in L1, so a part owns its groups and the result comes merged (one part).
    """
    out = _parts(1, n_groups) if into is None else into[None]
    if x.size:
        width = run * max(1, _TILE // run)
        _columns(x, outer, n_groups, run, width, out[0], n_parts, into is not None)
    elif into is None:
        out[..., 0] = np.inf
        out[..., 1] = -np.inf
    return out


# --- dispatch ---------------------------------------------------------------------------------------------------


@serial
def _merge(acc, out):
    n_parts, n_groups, _ = acc.shape
    for g in range(n_groups):
        lo = _min_key(np.inf)
        hi = _max_key(-np.inf)
        for c in range(n_parts):
            lo = _umin(lo, _min_key(acc[c, g, 0]))
            hi = _umax(hi, _max_key(acc[c, g, 1]))
        out[g, 0] = _min_value(lo)
        out[g, 1] = _max_value(hi)


def merge_parts(acc):
    """(G, 2) float64: the (min, max) over the parts of an (n_parts, G, 2) result (exact and independent of the
    order: -0.0 is below +0.0)."""
    if acc.shape[0] == 1:
        return acc[0]
    out = np.empty(acc.shape[1:], dtype=np.float64)
    _merge(acc, out)
    return out


def finite_minmax(x, outer, n_groups, run, n_parts, into=None):
    """(G, 2) float64: the finite (min, max) per group of the C-ordered (A, G, B) array x, (inf, -inf) for none;
    with `into` (G, 2) float64, merged into it (and returned).

    Runs of at least _MIN_RUN elements: :func:`finite_minmax_runs`; else periods up to _LANES_MAX_PERIOD:
    :func:`finite_minmax_lanes`; else :func:`finite_minmax_columns`.
    """
    if run >= _MIN_RUN or x.size == 0:
        acc = finite_minmax_runs(x, n_groups, run, n_parts)
    elif n_groups * run <= _LANES_MAX_PERIOD:
        acc = finite_minmax_lanes(x, lane_groups(n_groups, run, x.itemsize), n_groups, n_parts)
    elif into is not None:
        finite_minmax_columns(x, outer, n_groups, run, n_parts, into)
        return into
    else:
        acc = finite_minmax_columns(x, outer, n_groups, run, n_parts)
    local = merge_parts(acc)
    if into is None:
        return local
    merged = merge_parts(np.stack([into, local]))
    into[...] = merged
    return into
