"""Conversion kernels: levels of every element, with scalar (runs) or per-lane parameters; fused with the
approx proof counts."""

from __future__ import annotations

import numpy as np
from numba import prange

from .._jit import inline, parallel, serial
from ._common import (
    _FLUSH_BLOCKS,
    PAINT_BLOCK,
    _chunk_bounds,
    _level,
    _level_clamped,
    _level_clamped_nan,
    _maxnum32,
    _minnum32,
    _prefetch,
    chunk_partials,
    float32_edge,
    level_target,
    load,
    native_block,
    paint,
    put_level,
    scratch_for,
    swap_scratch,
)
from .count import _below8

_PREFETCH_AHEAD = 8192  # bytes between the data being converted and the data being prefetched
_PREFETCH_BLOCK = 256  # elements converted after each group of prefetches (16 cache lines of float32)


# --- conversion ------------------------------------------------------------------------------------------------


@inline
def _prefetch_ahead(x, begin, end):
    # Prefetch x[begin:end] shifted _PREFETCH_AHEAD bytes ahead. The hardware prefetcher alone leaves the
    # conversion ~10-15 % behind the floor kernel at full memory bandwidth; these explicit prefetches, a few
    # cache lines per block, close most of that gap.
    ahead = _PREFETCH_AHEAD // x.itemsize
    for j in range(begin + ahead, min(x.size, end + ahead), 64 // x.itemsize):
        _prefetch(x, j)


@serial
def _convert_run(x, out, lo, factor, lo_scaled, scale, nan_level, lut, native):
    # `lut`: None (out holds levels), or a colour table (see _common): each block's levels are painted.
    # `native`: swap_scratch(x, _PREFETCH_BLOCK): byte-swapped words are read through load, and swapped into it
    # for the paint (colour only).
    scratch = scratch_for(out, lut, _PREFETCH_BLOCK)
    edge = float32_edge(x, lo, factor, scale, nan_level)
    lo32, scale32 = np.float32(lo), np.float32(scale)
    for begin in range(0, x.size, _PREFETCH_BLOCK):
        end = min(x.size, begin + _PREFETCH_BLOCK)
        _prefetch_ahead(x, begin, end)
        levels = level_target(out, scratch, begin, end, lut)
        if edge == 0.0 or _levels_float32(x[begin:end], levels, lo32, scale32, edge):
            _convert_block(x[begin:end], levels, lo, factor, lo_scaled, scale, nan_level)
        if lut is not None:
            paint(native_block(x, begin, end, native), levels, out[begin:end], lut)


@inline
def _levels_float32(x, out, lo32, scale32, edge):
    # The levels of an ordinary range (see float32_edge) in float32 arithmetic, twice the lanes per vector of
    # float64: the conversion is compute-bound in float64 once memory is idle. Returns whether some element came
    # within the error bound of a rounding edge; the caller then redoes the block in float64, so the levels
    # always equal the float64 ones. The flag is a bool OR: int accumulators widen to int64 and halve the speed.
    near = False
    for i in range(x.size):
        t = _minnum32(_maxnum32((load(x, i) - lo32) * scale32, np.float32(0.0)), np.float32(255.0))
        r = np.rint(t)
        near = near | (abs(t - r) > edge)
        out[i] = np.uint8(np.int32(r))
    return near


@inline
def _levels_float32_lanes(x, out, lo32, scale32, edge):
    # _levels_float32 with one limit and scale per element (lo32[i], scale32[i] for x[i]); `edge` is the
    # smallest edge of the lanes (see _common.float32_lane_edge).
    near = False
    for i in range(x.size):
        t = _minnum32(_maxnum32((x[i] - lo32[i]) * scale32[i], np.float32(0.0)), np.float32(255.0))
        r = np.rint(t)
        near = near | (abs(t - r) > edge)
        out[i] = np.uint8(np.int32(r))
    return near


@inline
def _convert_block(x, out, lo, factor, lo_scaled, scale, nan_level):
    # x: values, or byte-swapped words (load)
    if factor == 1.0 and 0.0 < scale < np.inf and nan_level == 0.0:
        for i in range(x.size):
            out[i] = _level_clamped(np.float64(load(x, i)), lo, scale)
    elif factor == 1.0 and 0.0 < scale < np.inf:
        for i in range(x.size):
            out[i] = _level_clamped_nan(np.float64(load(x, i)), lo, scale, nan_level)
    else:
        for i in range(x.size):
            out[i] = _level(np.float64(load(x, i)), lo, factor, lo_scaled, scale, nan_level)


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
                dest[j] = _level_clamped(np.float64(load(xs, j)), lo[j], scale[j])
        return
    if ordinary:
        for base in range(0, x.size, lanes):
            xs = x[base : base + lanes]
            dest = out[base : base + lanes]
            for j in range(lanes):
                dest[j] = _level_clamped_nan(np.float64(load(xs, j)), lo[j], scale[j], nan_level)
        return
    for base in range(0, x.size, lanes):
        xs = x[base : base + lanes]
        dest = out[base : base + lanes]
        for j in range(lanes):
            dest[j] = _level(np.float64(load(xs, j)), lo[j], factor[j], lo_scaled[j], scale[j], nan_level)


@serial
def _convert_lanes_to(x, out, lo, factor, lo_scaled, scale, nan_level, ordinary, lut):
    # _convert_lanes into out (grey), or block by block into a scratch buffer whose levels are painted (colour).
    if lut is None:
        _convert_lanes(x, out, lo, factor, lo_scaled, scale, nan_level, ordinary)
        return
    step = max(1, PAINT_BLOCK // lo.size) * lo.size
    scratch = np.empty(step, dtype=np.uint8)
    native = swap_scratch(x, step)  # the paint reads values (byte-swapped words are swapped for it)
    for begin in range(0, x.size, step):
        end = min(x.size, begin + step)
        _convert_lanes(x[begin:end], scratch[: end - begin], lo, factor, lo_scaled, scale, nan_level, ordinary)
        paint(native_block(x, begin, end, native), scratch[: end - begin], out[begin:end], lut)


@parallel
def convert_runs(x, out, start, n_groups, run, lo, factor, lo_scaled, scale, nan_level, n_chunks, lut=None):
    """out[i] = level of x[i] with the limits of its group; runs of `run` elements share a group.

    With a colour table `lut` ((513,) uint32, see ``_common``), out is (n, C) uint8 and receives the colour of
    each level instead (of NaN where x is NaN); so for every conversion kernel.
    """
    n = x.size
    for c in prange(n_chunks):
        begin, end = _chunk_bounds(n, n_chunks, c, 1)
        native = swap_scratch(x, _PREFETCH_BLOCK)
        i = begin
        while i < end:
            flat = start + i
            g = (flat // run) % n_groups
            stop = min(end, i + run - flat % run)
            _convert_run(x[i:stop], out[i:stop], lo[g], factor[g], lo_scaled[g], scale[g], nan_level, lut, native)
            i = stop


@parallel
def convert_lanes(x, out, lo, factor, lo_scaled, scale, nan_level, n_chunks, lut=None):
    """Like convert_runs for a short repeating group pattern; lane params already rotated to x's start.

    x.size need not be a multiple of the lane count: the tail is done lane by lane.
    """
    lanes = lo.size
    n_full = (x.size // lanes) * lanes
    ordinary = _ordinary(factor, scale)
    for c in prange(n_chunks):
        begin, end = _chunk_bounds(n_full, n_chunks, c, lanes)
        _convert_lanes_to(x[begin:end], out[begin:end], lo, factor, lo_scaled, scale, nan_level, ordinary, lut)
    for i in range(n_full, x.size):
        j = i - n_full
        v = load(x, i)
        put_level(out, i, _level(np.float64(v), lo[j], factor[j], lo_scaled[j], scale[j], nan_level), v, lut)


# --- conversion fused with counting (approximate limits proved in the same pass) ------------------------------


@serial
def _count_window_run(x, largest, windows, counts):
    # counts[0] += #{|x| <= largest} (the finite values: one compare, no -inf/inf pair), counts[1 + t] +=
    # #{x < windows[t]} for the four window edges. int32 sums, truncated so that they stay 8 lanes wide.
    w0, w1, w2, w3 = windows[0], windows[1], windows[2], windows[3]
    c0 = c1 = c2 = c3 = c4 = np.int32(0)
    for i in range(x.size):
        v = load(x, i)
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
def _convert_count_run(x, out, lo, factor, lo_scaled, scale, nan_level, lut, native, largest, windows, counts):
    # _convert_run and _count_window_run in one loop where the float32 levels apply: the counts' compares then
    # share the conversion's loads and registers (21×2048², approx: 18.7 -> 14.0 ms for the pass, against
    # convert-then-count per L1 block of 4096). Elsewhere (float64 levels) each block of _PREFETCH_BLOCK is
    # converted, then counted while in L1.
    scratch = scratch_for(out, lut, _PREFETCH_BLOCK)
    edge = float32_edge(x, lo, factor, scale, nan_level)
    lo32, scale32 = np.float32(lo), np.float32(scale)
    for begin in range(0, x.size, _PREFETCH_BLOCK):
        end = min(x.size, begin + _PREFETCH_BLOCK)
        _prefetch_ahead(x, begin, end)
        levels = level_target(out, scratch, begin, end, lut)
        if edge == 0.0:
            _convert_block(x[begin:end], levels, lo, factor, lo_scaled, scale, nan_level)
            _count_window_run(x[begin:end], largest, windows, counts)
        elif _levels_counted32(x[begin:end], levels, lo32, scale32, edge, largest, windows, counts):
            _convert_block(x[begin:end], levels, lo, factor, lo_scaled, scale, nan_level)
        if lut is not None:
            paint(native_block(x, begin, end, native), levels, out[begin:end], lut)


@inline
def _levels_counted32(x, out, lo32, scale32, edge, largest, windows, counts):
    # _levels_float32 and _count_window_run of one block (at most 2**31 elements: int32 sums) in one loop
    near = False
    w0, w1, w2, w3 = windows[0], windows[1], windows[2], windows[3]
    c0 = c1 = c2 = c3 = c4 = np.int32(0)
    for i in range(x.size):
        v = load(x, i)
        t = _minnum32(_maxnum32((v - lo32) * scale32, np.float32(0.0)), np.float32(255.0))
        r = np.rint(t)
        near = near | (abs(t - r) > edge)
        out[i] = np.uint8(np.int32(r))
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
    return near


@inline
def _window_rows8(x, lanes, largest, w0, w1, w2, w3, a0, a1, a2, a3, a4):
    # _count_window_lanes over eight rows of lanes at once: each accumulator and window edge is loaded once per
    # eight elements (H×W×C 2048²×21, the counts alone: 19.5 -> 14.5 ms against one row per sweep).
    x0, x1, x2, x3 = x[:lanes], x[lanes : 2 * lanes], x[2 * lanes : 3 * lanes], x[3 * lanes : 4 * lanes]
    x4, x5, x6, x7 = x[4 * lanes : 5 * lanes], x[5 * lanes : 6 * lanes], x[6 * lanes : 7 * lanes], x[7 * lanes :]
    for j in range(lanes):
        v0, v1, v2, v3 = load(x0, j), load(x1, j), load(x2, j), load(x3, j)
        v4, v5, v6, v7 = load(x4, j), load(x5, j), load(x6, j), load(x7, j)
        a0[j] = np.int32(a0[j] + _within8(v0, v1, v2, v3, v4, v5, v6, v7, largest))
        a1[j] = np.int32(a1[j] + _below8(v0, v1, v2, v3, v4, v5, v6, v7, w0[j]))
        a2[j] = np.int32(a2[j] + _below8(v0, v1, v2, v3, v4, v5, v6, v7, w1[j]))
        a3[j] = np.int32(a3[j] + _below8(v0, v1, v2, v3, v4, v5, v6, v7, w2[j]))
        a4[j] = np.int32(a4[j] + _below8(v0, v1, v2, v3, v4, v5, v6, v7, w3[j]))


@inline
def _within8(v0, v1, v2, v3, v4, v5, v6, v7, largest):
    # #{|v_r| <= largest} of eight values (the finite ones), as int32
    low = np.int32(abs(v0) <= largest) + np.int32(abs(v1) <= largest) + np.int32(abs(v2) <= largest)
    low = np.int32(low + np.int32(abs(v3) <= largest) + np.int32(abs(v4) <= largest))
    return np.int32(low + np.int32(abs(v5) <= largest) + np.int32(abs(v6) <= largest) + np.int32(abs(v7) <= largest))


@serial
def _count_window_lanes(x, largest, windows, counts):
    # _count_window_run per lane: windows (4, L) edges, counts (5, L); x.size is a multiple of L. Eight rows of
    # lanes per sweep (_window_rows8), then the remaining rows one at a time.
    lanes = windows.shape[1]
    w0, w1, w2, w3 = windows[0], windows[1], windows[2], windows[3]
    a0, a1, a2, a3, a4 = counts[0], counts[1], counts[2], counts[3], counts[4]
    full = x.size - x.size % (8 * lanes)
    for base in range(0, full, 8 * lanes):
        _window_rows8(x[base : base + 8 * lanes], lanes, largest, w0, w1, w2, w3, a0, a1, a2, a3, a4)
    for base in range(full, x.size, lanes):
        xs = x[base : base + lanes]  # plain loop indexes vectorize (see _convert_lanes)
        for j in range(lanes):
            v = load(xs, j)
            a0[j] = np.int32(a0[j] + np.int32(abs(v) <= largest))
            a1[j] = np.int32(a1[j] + np.int32(v < w0[j]))
            a2[j] = np.int32(a2[j] + np.int32(v < w1[j]))
            a3[j] = np.int32(a3[j] + np.int32(v < w2[j]))
            a4[j] = np.int32(a4[j] + np.int32(v < w3[j]))


@parallel
def convert_count_runs(
    x, out, start, n_groups, run, lo, factor, lo_scaled, scale, nan_level, largest, windows, n_chunks, lut=None
):
    """convert_runs fused with window counting (see _convert_count_run).

    windows[g] holds four edges; returns counts[c, g] = (#finite, #{x < edge} for each edge) over chunk c.
    """
    n = x.size
    counts = chunk_partials(n_chunks, n_groups, 5)  # added to after every block: chunks 128 bytes apart
    for c in prange(n_chunks):
        begin, end = _chunk_bounds(n, n_chunks, c, 1)
        native = swap_scratch(x, _PREFETCH_BLOCK)
        i = begin
        while i < end:
            flat = start + i
            g = (flat // run) % n_groups
            stop = min(end, i + run - flat % run)
            _convert_count_run(x[i:stop], out[i:stop], lo[g], factor[g], lo_scaled[g], scale[g], nan_level, lut,
                               native, largest, windows[g], counts[c, g])  # fmt: skip
            i = stop
    return counts


@parallel
def convert_count_lanes(x, out, lo, factor, lo_scaled, scale, nan_level, largest, windows, n_chunks, block, lut=None):
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
            _convert_lanes_to(x[b:e], out[b:e], lo, factor, lo_scaled, scale, nan_level, ordinary, lut)
            _count_window_lanes(x[b:e], largest, windows, acc)
            if (b - begin) // block % _FLUSH_BLOCKS == _FLUSH_BLOCKS - 1 or e >= end:
                counts[c] += acc
                acc[:] = 0
    for i in range(n_full, x.size):
        j = i - n_full
        v = load(x, i)
        put_level(out, i, _level(np.float64(v), lo[j], factor[j], lo_scaled[j], scale[j], nan_level), v, lut)
        counts[0, 0, j] += abs(v) <= largest
        for t in range(4):
            counts[0, 1 + t, j] += v < windows[t, j]
    return counts
