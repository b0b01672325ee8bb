"""Numba kernels: bare loops, grouped by family. The passes that call them live in :mod:`fastquant._passes`.

Every kernel reads a 1-D C-contiguous float32 or float64 array ``x`` holding a stretch of the logical
``(A, G, B)`` array in C order, starting at flat offset ``start``: element ``i`` belongs to group
``((start + i) // B) % G``. Two loop shapes cover the layouts that matter:

- *runs* (``B`` large, e.g. one group per image plane, or the whole array as one group): each contiguous run of
  ``B`` elements has one group, and the inner loop over the run is a plain loop with scalar parameters;
- *lanes* (``G * B`` small, e.g. H×W×3 with one group per channel): the group pattern repeats with period
  ``P = G * B``; the data is processed in blocks of ``L`` (a multiple of ``P``) with per-lane parameters, so the
  inner loop is an elementwise loop that vectorizes.

Parallel kernels split the work into ``n_chunks`` pieces (passed in, never read from numba inside a kernel, so
``cache=True`` holds) and accumulate into per-chunk rows merged afterwards: no shared accumulators inside prange,
and results that do not depend on the thread count.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .._jit import inline, kernel_lock, parallel, serial  # noqa: F401  (kernel_lock: for the dispatcher)

_FLUSH_BLOCKS = 1 << 12  # blocks between flushes of int32 accumulators (block <= 2**16 elements)
_PREFETCH_AHEAD = 8192  # bytes between the data being converted and the data being prefetched
_PREFETCH_BLOCK = 256  # elements converted after each group of prefetches (16 cache lines of float32)

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


# --- conversion ------------------------------------------------------------------------------------------------


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
def _prefetch_ahead(x, begin, end):
    # Prefetch x[begin:end] shifted _PREFETCH_AHEAD bytes ahead. The hardware prefetcher alone leaves the
    # conversion ~10-15 % behind the floor kernel at full memory bandwidth; these explicit prefetches, a few
    # cache lines per block, close most of that gap.
    ahead = _PREFETCH_AHEAD // x.itemsize
    for j in range(begin + ahead, min(x.size, end + ahead), 64 // x.itemsize):
        _prefetch(x, j)


@serial
def _convert_run(x, out, lo, factor, lo_scaled, scale, nan_level):
    for begin in range(0, x.size, _PREFETCH_BLOCK):
        end = min(x.size, begin + _PREFETCH_BLOCK)
        _prefetch_ahead(x, begin, end)
        _convert_block(x[begin:end], out[begin:end], lo, factor, lo_scaled, scale, nan_level)


@inline
def _convert_block(x, out, lo, factor, lo_scaled, scale, nan_level):
    if factor == 1.0 and 0.0 < scale < np.inf and nan_level == 0.0:
        for i in range(x.size):
            out[i] = _level_clamped(np.float64(x[i]), lo, scale)
    elif factor == 1.0 and 0.0 < scale < np.inf:
        for i in range(x.size):
            out[i] = _level_clamped_nan(np.float64(x[i]), lo, scale, nan_level)
    else:
        for i in range(x.size):
            out[i] = _level(np.float64(x[i]), lo, factor, lo_scaled, scale, nan_level)


@serial
def _ordinary(factor, scale):
    """Whether every lane has an ordinary range: factor 1 and lo < hi (finite positive scale; lo == hi gives
    +-inf, -inf when hi - lo is -0.0)."""
    for j in range(factor.size):
        if factor[j] != 1.0 or not 0.0 < scale[j] < np.inf:
            return False
    return True


@serial
def _convert_lanes(x, out, lo, factor, lo_scaled, scale, nan_level, ordinary):
    # The parameters have one entry per lane; x.size is a multiple of the lane count. Slicing per block
    # keeps the indexes plain loop counters (x[base + j] needs a negative-index check that defeats
    # vectorization). Ordinary ranges (see _ordinary) read two parameters per element instead of four and
    # use the clamped level.
    lanes = lo.size
    if ordinary and nan_level == 0.0:
        for base in range(0, x.size, lanes):
            xs = x[base : base + lanes]
            dest = out[base : base + lanes]
            for j in range(lanes):
                dest[j] = _level_clamped(np.float64(xs[j]), lo[j], scale[j])
        return
    if ordinary:
        for base in range(0, x.size, lanes):
            xs = x[base : base + lanes]
            dest = out[base : base + lanes]
            for j in range(lanes):
                dest[j] = _level_clamped_nan(np.float64(xs[j]), lo[j], scale[j], nan_level)
        return
    for base in range(0, x.size, lanes):
        xs = x[base : base + lanes]
        dest = out[base : base + lanes]
        for j in range(lanes):
            dest[j] = _level(np.float64(xs[j]), lo[j], factor[j], lo_scaled[j], scale[j], nan_level)


@parallel
def convert_runs(x, out, start, n_groups, run, lo, factor, lo_scaled, scale, nan_level, n_chunks):
    """out[i] = level of x[i] with the limits of its group; runs of `run` elements share a group."""
    n = x.size
    for c in prange(n_chunks):
        begin, end = _chunk_bounds(n, n_chunks, c, 1)
        i = begin
        while i < end:
            flat = start + i
            g = (flat // run) % n_groups
            stop = min(end, i + run - flat % run)
            _convert_run(x[i:stop], out[i:stop], lo[g], factor[g], lo_scaled[g], scale[g], nan_level)
            i = stop


@parallel
def convert_lanes(x, out, lo, factor, lo_scaled, scale, nan_level, n_chunks):
    """Like convert_runs for a short repeating group pattern; lane params already rotated to x's start.

    x.size need not be a multiple of the lane count: the tail is done lane by lane.
    """
    lanes = lo.size
    n_full = (x.size // lanes) * lanes
    ordinary = _ordinary(factor, scale)
    for c in prange(n_chunks):
        begin, end = _chunk_bounds(n_full, n_chunks, c, lanes)
        _convert_lanes(x[begin:end], out[begin:end], lo, factor, lo_scaled, scale, nan_level, ordinary)
    for i in range(n_full, x.size):
        j = i - n_full
        out[i] = _level(np.float64(x[i]), lo[j], factor[j], lo_scaled[j], scale[j], nan_level)


# --- counting against thresholds -------------------------------------------------------------------------------


@serial
def _count_run(x, thresholds, counts):
    # Six thresholds per sweep, compared in one loop with int32 accumulators: a plain compare-and-add loop
    # over a short contiguous slice that LLVM vectorizes. (Numba widens int32 + int32 to int64; truncating
    # each sum keeps eight lanes per vector: 2.3x faster.) The caller pads the thresholds to a multiple of six
    # and keeps slices under 2**31 elements.
    for t in range(0, thresholds.size, 6):
        t0, t1, t2 = thresholds[t], thresholds[t + 1], thresholds[t + 2]
        t3, t4, t5 = thresholds[t + 3], thresholds[t + 4], thresholds[t + 5]
        c0 = c1 = c2 = c3 = c4 = c5 = np.int32(0)
        for i in range(x.size):
            v = x[i]
            c0 = np.int32(c0 + np.int32(v < t0))
            c1 = np.int32(c1 + np.int32(v < t1))
            c2 = np.int32(c2 + np.int32(v < t2))
            c3 = np.int32(c3 + np.int32(v < t3))
            c4 = np.int32(c4 + np.int32(v < t4))
            c5 = np.int32(c5 + np.int32(v < t5))
        counts[t] += c0
        counts[t + 1] += c1
        counts[t + 2] += c2
        counts[t + 3] += c3
        counts[t + 4] += c4
        counts[t + 5] += c5


@parallel
def count_runs(x, start, n_groups, run, thresholds, n_chunks, block):
    """counts[c, g, t] = #{i in chunk c of group g : x[i] < thresholds[g, t]} (NaN never counts)."""
    n = x.size
    counts = np.zeros((n_chunks, n_groups, thresholds.shape[1]), dtype=np.int64)
    for c in prange(n_chunks):
        begin, end = _chunk_bounds(n, n_chunks, c, 1)
        i = begin
        while i < end:
            flat = start + i
            g = (flat // run) % n_groups
            stop = min(end, i + run - flat % run, i + block)
            _count_run(x[i:stop], thresholds[g], counts[c, g])
            i = stop
    return counts


@serial
def _count_lanes(x, thresholds, counts):
    # thresholds/counts: (T, L); x.size is a multiple of L. Two thresholds per sweep share the loads of x.
    n_thr, lanes = thresholds.shape
    for t in range(0, n_thr - 1, 2):
        th0, th1 = thresholds[t], thresholds[t + 1]
        acc0, acc1 = counts[t], counts[t + 1]
        for base in range(0, x.size, lanes):
            xs = x[base : base + lanes]  # plain loop indexes vectorize (see _convert_lanes)
            for j in range(lanes):
                v = xs[j]
                acc0[j] = np.int32(acc0[j] + np.int32(v < th0[j]))
                acc1[j] = np.int32(acc1[j] + np.int32(v < th1[j]))
    if n_thr % 2:
        th, acc = thresholds[n_thr - 1], counts[n_thr - 1]
        for base in range(0, x.size, lanes):
            xs = x[base : base + lanes]
            for j in range(lanes):
                acc[j] = np.int32(acc[j] + np.int32(xs[j] < th[j]))


@parallel
def count_lanes(x, thresholds, n_chunks, block):
    """Per-lane counts[c, t, j] of x < thresholds[t, j] for a repeating lane pattern (tail: lane by lane).

    `block` (a multiple of the lane count) keeps each slice cache-resident across the T threshold loops. The
    int32 per-lane accumulators are flushed every _FLUSH_BLOCKS blocks (each gains at most block / lanes).
    """
    n_thr, lanes = thresholds.shape
    n_full = (x.size // lanes) * lanes
    counts = np.zeros((n_chunks, n_thr, lanes), dtype=np.int64)
    for c in prange(n_chunks):
        begin, end = _chunk_bounds(n_full, n_chunks, c, lanes)
        acc = np.zeros((n_thr, lanes), dtype=np.int32)
        for b in range(begin, end, block):
            _count_lanes(x[b : min(end, b + block)], thresholds, acc)
            if (b - begin) // block % _FLUSH_BLOCKS == _FLUSH_BLOCKS - 1 or b + block >= end:
                counts[c] += acc
                acc[:] = 0
    for i in range(n_full, x.size):
        j = i - n_full
        for t in range(n_thr):
            counts[0, t, j] += x[i] < thresholds[t, j]
    return counts


# --- conversion fused with counting (approximate limits proved in the same pass) ------------------------------


@serial
def _count_window_run(x, largest, windows, counts):
    # counts[0] += #{|x| <= largest} (the finite values: one compare, no -inf/inf pair), counts[1 + t] +=
    # #{x < windows[t]} for the four window edges. int32 sums, truncated so that they stay 8 lanes wide.
    w0, w1, w2, w3 = windows[0], windows[1], windows[2], windows[3]
    c0 = c1 = c2 = c3 = c4 = np.int32(0)
    for i in range(x.size):
        v = x[i]
        c0 = np.int32(c0 + np.int32(abs(v) <= largest))
        c1 = np.int32(c1 + np.int32(v < w0))
        c2 = np.int32(c2 + np.int32(v < w1))
        c3 = np.int32(c3 + np.int32(v < w2))
        c4 = np.int32(c4 + np.int32(v < w3))
    counts[0] += c0
    counts[1] += c1
    counts[2] += c2
    counts[3] += c3
    counts[4] += c4


@serial
def _count_window_lanes(x, largest, windows, counts):
    # _count_window_run per lane: windows (4, L) edges, counts (5, L); x.size is a multiple of L.
    lanes = windows.shape[1]
    finite = counts[0]
    for base in range(0, x.size, lanes):
        xs = x[base : base + lanes]  # plain loop indexes vectorize (see _convert_lanes)
        for j in range(lanes):
            finite[j] = np.int32(finite[j] + np.int32(abs(xs[j]) <= largest))
    for t in range(0, 4, 2):
        th0, th1 = windows[t], windows[t + 1]
        acc0, acc1 = counts[1 + t], counts[2 + t]
        for base in range(0, x.size, lanes):
            xs = x[base : base + lanes]
            for j in range(lanes):
                v = xs[j]
                acc0[j] = np.int32(acc0[j] + np.int32(v < th0[j]))
                acc1[j] = np.int32(acc1[j] + np.int32(v < th1[j]))


@parallel
def convert_count_runs(
    x, out, start, n_groups, run, lo, factor, lo_scaled, scale, nan_level, largest, windows, n_chunks, block
):
    """convert_runs fused with window counting: each cache-resident piece is converted, then counted.

    windows[g] holds four edges; returns counts[c, g] = (#finite, #{x < edge} for each edge) over chunk c.
    """
    n = x.size
    counts = np.zeros((n_chunks, n_groups, 5), dtype=np.int64)
    for c in prange(n_chunks):
        begin, end = _chunk_bounds(n, n_chunks, c, 1)
        i = begin
        while i < end:
            flat = start + i
            g = (flat // run) % n_groups
            stop = min(end, i + run - flat % run, i + block)
            _convert_run(x[i:stop], out[i:stop], lo[g], factor[g], lo_scaled[g], scale[g], nan_level)
            _count_window_run(x[i:stop], largest, windows[g], counts[c, g])
            i = stop
    return counts


@parallel
def convert_count_lanes(x, out, lo, factor, lo_scaled, scale, nan_level, largest, windows, n_chunks, block):
    """convert_lanes fused with window counting per lane (parameters and windows (4, L) rotated to x's start).

    Returns counts[c, :, j] = (#finite, #{x < edge} for each edge) of lane j over chunk c.
    """
    lanes = windows.shape[1]
    n_full = (x.size // lanes) * lanes
    ordinary = _ordinary(factor, scale)
    counts = np.zeros((n_chunks, 5, lanes), dtype=np.int64)
    for c in prange(n_chunks):
        begin, end = _chunk_bounds(n_full, n_chunks, c, lanes)
        acc = np.zeros((5, lanes), dtype=np.int32)
        for b in range(begin, end, block):
            e = min(end, b + block)
            _convert_lanes(x[b:e], out[b:e], lo, factor, lo_scaled, scale, nan_level, ordinary)
            _count_window_lanes(x[b:e], largest, windows, acc)
            if (b - begin) // block % _FLUSH_BLOCKS == _FLUSH_BLOCKS - 1 or e >= end:
                counts[c] += acc
                acc[:] = 0
    for i in range(n_full, x.size):
        j = i - n_full
        v = x[i]
        out[i] = _level(np.float64(v), lo[j], factor[j], lo_scaled[j], scale[j], nan_level)
        counts[0, 0, j] += abs(v) <= largest
        for t in range(4):
            counts[0, 1 + t, j] += v < windows[t, j]
    return counts


# --- collecting bracket members --------------------------------------------------------------------------------


@serial
def _group_at(flat, n_groups, run):
    return (flat // run) % n_groups, flat % run


@parallel
def collect_lanes(x, low, high, lane_groups, base, dest, n_chunks, block):
    """collect for a repeating lane pattern: low/high (B, L) per lane, lane_groups (L,) maps lanes to groups.

    Returns written[c, g, j]; chunk c copies the members of bracket j of group g to dest[c, base[g, j]:].
    Membership flags are computed per block with vectorized per-lane compares; only flagged elements are
    visited one by one. `block` is a multiple of the lane count.
    """
    n_brackets, lanes = low.shape
    n_groups = base.shape[0]
    n_full = (x.size // lanes) * lanes
    written = np.zeros((n_chunks, n_groups, n_brackets), dtype=np.int64)
    for c in prange(n_chunks):
        begin, end = _chunk_bounds(n_full, n_chunks, c, lanes)
        member = np.zeros(block, dtype=np.uint8)
        words = member.view(np.uint64)
        row = dest[c]
        pos = written[c]
        for b in range(begin, end, block):
            xb = x[b : min(end, b + block)]
            for r in range(0, xb.size, lanes):
                xs = xb[r : r + lanes]
                flags = member[r : r + lanes]
                for j in range(lanes):
                    flags[j] = 0
                for k in range(n_brackets):
                    low_k = low[k]
                    high_k = high[k]
                    for j in range(lanes):
                        v = xs[j]
                        flags[j] |= np.uint8((v >= low_k[j]) & (v < high_k[j]))
            for w in range((xb.size + 7) // 8):
                if words[w] == 0:
                    continue
                for i in range(8 * w, min(xb.size, 8 * w + 8)):
                    if member[i]:
                        v = xb[i]
                        j = i % lanes
                        g = lane_groups[j]
                        for k in range(n_brackets):
                            if v >= low[k, j] and v < high[k, j]:
                                row[base[g, k] + pos[g, k]] = v
                                pos[g, k] += 1
    for i in range(n_full, x.size):
        j = i - n_full
        g = lane_groups[j]
        v = x[i]
        for k in range(n_brackets):
            if v >= low[k, j] and v < high[k, j]:
                dest[0, base[g, k] + written[0, g, k]] = v
                written[0, g, k] += 1
    return written


# --- counting and collecting in one pass ---------------------------------------------------------------------


@serial
def _sweep_run(x, thresholds, t, counts, member, first):
    # Thresholds t..t+5 as three (low, high) pairs: counts of x < each threshold, and member[i] set where
    # low <= x[i] < high for a collected pair. Pair 0 of the first sweep is (lowest finite, inf), the finite
    # count: not collected. One plain loop of compares, adds and a byte store: LLVM vectorizes it.
    t0, t1, t2 = thresholds[t], thresholds[t + 1], thresholds[t + 2]
    t3, t4, t5 = thresholds[t + 3], thresholds[t + 4], thresholds[t + 5]
    c0 = c1 = c2 = c3 = c4 = c5 = np.int32(0)
    # The first sweep starts the flags and leaves pair 0 out; later sweeps add to them.
    kept = np.uint8(0) if first else np.uint8(1)
    for i in range(x.size):
        v = x[i]
        b0, b1, b2, b3, b4, b5 = v < t0, v < t1, v < t2, v < t3, v < t4, v < t5
        c0 = np.int32(c0 + np.int32(b0))
        c1 = np.int32(c1 + np.int32(b1))
        c2 = np.int32(c2 + np.int32(b2))
        c3 = np.int32(c3 + np.int32(b3))
        c4 = np.int32(c4 + np.int32(b4))
        c5 = np.int32(c5 + np.int32(b5))
        member[i] = (member[i] & kept) | np.uint8(((b1 & ~b0) & kept) | (b3 & ~b2) | (b5 & ~b4))
    counts[t] += c0
    counts[t + 1] += c1
    counts[t + 2] += c2
    counts[t + 3] += c3
    counts[t + 4] += c4
    counts[t + 5] += c5


@serial
def _gather_members(x, member, words, flagged, thresholds, row, base, cap, written):
    # Members are rare. First list the words of eight flags that hold any (branch-free), then copy the
    # elements of those words branch-free too: store each at its pair's next position and advance that only
    # for members, so nothing mispredicts. Each region has one slot past its capacity as a sink: a full
    # region keeps counting (written > cap tells the caller to collect again, sized exactly).
    n_flagged = 0
    for w in range((x.size + 7) // 8):  # flags past x.size are stale; the element loops stop at x.size
        flagged[n_flagged] = w
        n_flagged += words[w] != 0
    for f in range(n_flagged):
        w = flagged[f]
        stop = min(x.size, 8 * w + 8)
        for j in range(1, thresholds.size // 2):
            low, high = thresholds[2 * j], thresholds[2 * j + 1]
            region, limit, k = base[j], cap[j], written[j]
            for i in range(8 * w, stop):
                v = x[i]
                row[region + min(k, limit)] = v
                k += (v >= low) & (v < high)
            written[j] = k


@parallel
def scan_runs(x, start, n_groups, run, thresholds, base, cap, dest, n_chunks, block):
    """Count and collect in one pass over runs of `run` elements that share a group.

    thresholds[g] holds (low, high) pairs padded to a multiple of six: pair 0 is (lowest finite, inf), the
    others are brackets. Returns counts[c, g, t] = #{x < thresholds[g, t]} over chunk c, and written[c, g, j]
    = #{low_j <= x < high_j}; chunk c copies up to cap[g, j] members of bracket j of group g to
    dest[c, base[g, j]:], a region of cap[g, j] + 1 slots. Counts and collected values do not depend on the
    thread count.
    """
    n = x.size
    n_thr = thresholds.shape[1]
    counts = np.zeros((n_chunks, n_groups, n_thr), dtype=np.int64)
    written = np.zeros((n_chunks, n_groups, n_thr // 2), dtype=np.int64)
    for c in prange(n_chunks):
        begin, end = _chunk_bounds(n, n_chunks, c, 1)
        member = np.zeros(block, dtype=np.uint8)
        words = member.view(np.uint64)
        flagged = np.empty(block // 8 + 1, dtype=np.int64)
        acc = np.zeros(n_thr, dtype=np.int32)
        i = begin
        while i < end:
            flat = start + i
            g = (flat // run) % n_groups
            stop = min(end, i + run - flat % run, i + block)
            piece = x[i:stop]
            for t in range(0, n_thr, 6):
                _sweep_run(piece, thresholds[g], t, acc, member, t == 0)
            _gather_members(piece, member, words, flagged, thresholds[g], dest[c], base[g], cap[g], written[c, g])
            counts[c, g] += acc
            acc[:] = 0
            i = stop
    return counts, written


# --- order-preserving keys and radix histograms (the fallback that holds for every input) ---------------------


@parallel
def radix_hist(bits, start, n_groups, run, rows, n_rows, shift, prefix_shift, prefixes, use_prefix, n_chunks):
    """hist[c, rows[g], d] = #finite values of group g (rows[g] >= 0) in chunk c with key digit d.

    The digit is (key >> shift) & 0xFFFF. Only groups with a row are counted, so a pass over a few groups
    among many holds a few rows of 512 KiB.
    `bits` is the float array viewed as uint32/uint64. The key maps IEEE sign-magnitude to unsigned order
    (negatives: every bit flipped; positives: the sign bit flipped). With use_prefix, only keys with
    (key >> prefix_shift) == prefixes[g] count.
    """
    n = bits.size
    wide = bits.itemsize == 8
    top = np.uint64(63) if wide else np.uint64(31)
    exponent = np.uint64(0x7FF0000000000000) if wide else np.uint64(0x7F800000)
    ones = np.uint64(0xFFFFFFFFFFFFFFFF) if wide else np.uint64(0xFFFFFFFF)
    sign_bit = np.uint64(1) << top
    digit_shift = np.uint64(shift)
    pshift = np.uint64(prefix_shift)
    hist = np.zeros((n_chunks, n_rows, 65536), dtype=np.int64)
    for c in prange(n_chunks):
        begin, end = _chunk_bounds(n, n_chunks, c, 1)
        g, b = _group_at(start + begin, n_groups, run)
        h = hist[c]
        for i in range(begin, end):
            w = np.uint64(bits[i])
            r = rows[g]
            if r >= 0 and w & exponent != exponent:  # skip NaN and +-inf
                k = w ^ (ones if w >> top else sign_bit)
                if not use_prefix or (k >> pshift) == prefixes[g]:
                    h[r, (k >> digit_shift) & np.uint64(0xFFFF)] += 1
            b += 1
            if b == run:
                b = 0
                g = g + 1 if g + 1 < n_groups else 0
    return hist


# --- strided samples -------------------------------------------------------------------------------------------


@parallel
def strided_sample(x, a, n_groups, run, step_a, step_b, n_chunks):
    """sample[g, i * nb + j] = x[((i * step_a) * n_groups + g) * run + j * step_b] for the C-ordered (A, G, B)
    array x, i < ceil(A / step_a), j < nb = ceil(B / step_b)."""
    na = (a + step_a - 1) // step_a
    nb = (run + step_b - 1) // step_b
    sample = np.empty((n_groups, na * nb), dtype=x.dtype)
    for c in prange(n_chunks):
        begin, end = _chunk_bounds(na * nb, n_chunks, c, 1)
        for g in range(n_groups):
            dest = sample[g]
            i, j = begin // nb, begin % nb
            for k in range(begin, end):
                dest[k] = x[(i * step_a * n_groups + g) * run + j * step_b]
                j += 1
                if j == nb:
                    j = 0
                    i += 1
    return sample
