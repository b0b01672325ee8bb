"""Counting kernels: values below thresholds per group (runs) or per lane."""

from __future__ import annotations

import numpy as np
from numba import prange

from .._jit import inline, parallel, serial
from ._common import _FLUSH_BLOCKS, _chunk_bounds, chunk_partials, load

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
            v = load(x, i)
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
    """counts[c, g, t] = #{i in chunk c of group g : x[i] < thresholds[g, t]} (NaN never counts; x may be
    byte-swapped float32 words, see _common.load)."""
    n = x.size
    counts = chunk_partials(n_chunks, n_groups, thresholds.shape[1])
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


@inline
def _below8(v0, v1, v2, v3, v4, v5, v6, v7, t):
    # #{v_r < t} of eight values, as int32 (int32 sums stay 8 lanes wide, as in _count_window_run)
    low = np.int32(v0 < t) + np.int32(v1 < t) + np.int32(v2 < t) + np.int32(v3 < t)
    return np.int32(low + np.int32(v4 < t) + np.int32(v5 < t) + np.int32(v6 < t) + np.int32(v7 < t))


@inline
def _count_rows8(x, lanes, th0, th1, acc0, acc1):
    # Two thresholds per lane over eight rows of lanes at once: each accumulator and threshold is loaded once
    # per eight elements.
    x0, x1, x2, x3 = x[:lanes], x[lanes : 2 * lanes], x[2 * lanes : 3 * lanes], x[3 * lanes : 4 * lanes]
    x4, x5, x6, x7 = x[4 * lanes : 5 * lanes], x[5 * lanes : 6 * lanes], x[6 * lanes : 7 * lanes], x[7 * lanes :]
    for j in range(lanes):
        v0, v1, v2, v3 = load(x0, j), load(x1, j), load(x2, j), load(x3, j)
        v4, v5, v6, v7 = load(x4, j), load(x5, j), load(x6, j), load(x7, j)
        acc0[j] = np.int32(acc0[j] + _below8(v0, v1, v2, v3, v4, v5, v6, v7, th0[j]))
        acc1[j] = np.int32(acc1[j] + _below8(v0, v1, v2, v3, v4, v5, v6, v7, th1[j]))


@serial
def _count_lanes(x, thresholds, counts):
    # thresholds/counts: (T, L); x.size is a multiple of L. Two thresholds per sweep share the loads of x, eight
    # rows of lanes at a time (_count_rows8), then the remaining rows one at a time. An odd last threshold is
    # swept with a spare accumulator.
    n_thr, lanes = thresholds.shape
    full = x.size - x.size % (8 * lanes)
    spare = np.zeros(lanes, dtype=np.int32)
    for t in range(0, n_thr, 2):
        th0, acc0 = thresholds[t], counts[t]
        th1, acc1 = (thresholds[t + 1], counts[t + 1]) if t + 1 < n_thr else (th0, spare)
        for base in range(0, full, 8 * lanes):
            _count_rows8(x[base : base + 8 * lanes], lanes, th0, th1, acc0, acc1)
        for base in range(full, x.size, lanes):
            xs = x[base : base + lanes]  # plain loop indexes vectorize (see _convert_lanes)
            for j in range(lanes):
                v = load(xs, j)
                acc0[j] = np.int32(acc0[j] + np.int32(v < th0[j]))
                acc1[j] = np.int32(acc1[j] + np.int32(v < th1[j]))


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
            counts[0, t, j] += load(x, i) < thresholds[t, j]
    return counts
