"""Collecting kernels: bracket members per group, alone (lanes) or fused with the counts (scan_runs)."""

from __future__ import annotations

import sys

import numpy as np
from numba import prange
from numba.cpython.unsafe.numbers import trailing_zeros

from .._jit import inline, parallel, serial
from ._common import _chunk_bounds, load

_LITTLE = sys.byteorder == "little"  # how the flag bytes sit in a word


@inline
def _lowest_flag(bits, w):
    # Flags are bytes of 0 or 1 read as words of eight: byte b of word w is bit 8b (little-endian) or 8(7 - b).
    # The element of the lowest set bit, and the word without it.
    shift = trailing_zeros(bits) >> 3
    return 8 * w + (shift if _LITTLE else 7 - shift), bits & (bits - np.uint64(1))


# --- collecting bracket members --------------------------------------------------------------------------------


@inline
def _lowest_flagged_byte(bits, w):
    # The element of the lowest nonzero flag byte of word w, and the word without that byte (a byte may hold
    # several bracket bits: it is visited once).
    shift = trailing_zeros(bits) >> 3
    cleared = bits & ~(np.uint64(0xFF) << np.uint64(8 * shift))
    return 8 * w + (shift if _LITTLE else 7 - shift), cleared


@parallel
def collect_lanes(x, low, high, lane_groups, base, dest, n_chunks, block):
    """collect for a repeating lane pattern: low/high (B, L) per lane, lane_groups (L,) maps lanes to groups.

    Returns written[c, g, j]; chunk c copies the members of bracket j of group g to dest[c, base[g, j]:].
    Membership flags are computed per block with vectorized per-lane compares, one bit per bracket (up to eight
    brackets; beyond, the flag says "some bracket" and the brackets are tested again). Then, as in
    _gather_members, the words of eight flags that hold any are listed branch-free, and only their flagged
    elements are visited; the lane of an element comes from a table (no division). `block` is a multiple of the
    lane count. (Measured on H×W×C 2048²×21, 2 threads, 3 % members: 62 -> 34 ms, and
    27 -> 18 ms without members: the word-by-word scan and a division per member were most of the time.)
    """
    n_brackets, lanes = low.shape
    n_groups = base.shape[0]
    n_full = (x.size // lanes) * lanes
    coded = n_brackets <= 8
    written = np.zeros((n_chunks, n_groups, n_brackets), dtype=np.int64)
    for c in prange(n_chunks):
        begin, end = _chunk_bounds(n_full, n_chunks, c, lanes)
        member = np.zeros(block, dtype=np.uint8)
        words = member.view(np.uint64)
        flagged = np.empty(block // 8 + 1, dtype=np.int64)
        lane_of = np.empty(block, dtype=np.int64)
        for i in range(block):
            lane_of[i] = i % lanes
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
                    bit = np.uint8(1 << k) if coded else np.uint8(1)
                    for j in range(lanes):
                        v = load(xs, j)
                        flags[j] |= np.uint8((v >= low_k[j]) & (v < high_k[j])) * bit
            n_flagged = 0
            for w in range((xb.size + 7) // 8):  # flags past xb.size are stale; the element loop skips them
                flagged[n_flagged] = w
                n_flagged += words[w] != 0
            for f in range(n_flagged):
                w = flagged[f]
                bits = words[w]
                while bits != 0:
                    i, bits = _lowest_flagged_byte(bits, w)
                    if i >= xb.size:
                        continue
                    v = load(xb, i)
                    j = lane_of[i]
                    g = lane_groups[j]
                    if coded:
                        m = np.uint64(member[i])
                        while m != 0:
                            k = trailing_zeros(m)
                            row[base[g, k] + pos[g, k]] = v
                            pos[g, k] += 1
                            m &= m - np.uint64(1)
                    else:
                        for k in range(n_brackets):
                            if v >= low[k, j] and v < high[k, j]:
                                row[base[g, k] + pos[g, k]] = v
                                pos[g, k] += 1
    for i in range(n_full, x.size):
        j = i - n_full
        g = lane_groups[j]
        v = load(x, i)
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
        v = load(x, i)
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
    # Members are rare. First list the words of eight flags that hold any (branch-free), then visit only the
    # flagged elements of those words, lowest first (the set bits of the word, by trailing zeros), and copy each
    # to every pair it belongs to, branch-free: store at the pair's next position and advance that only for a
    # member. Each region has one slot past its capacity as a sink: a full region keeps counting (written > cap
    # tells the caller to collect again, sized exactly). Members land in the order of their positions, as when
    # every element of a flagged word was visited (measured: 12 -> 3.4 ms for 21 x 1024**2 with 3 % members).
    n_flagged = 0
    for w in range((x.size + 7) // 8):  # flags past x.size are stale; the element loop stops at x.size
        flagged[n_flagged] = w
        n_flagged += words[w] != 0
    for f in range(n_flagged):
        w = flagged[f]
        bits = words[w]  # flags are 0 or 1: byte b of the word is bit 8b (little-endian) or 8(7 - b)
        while bits != 0:
            i, bits = _lowest_flag(bits, w)
            if i >= x.size:  # a stale flag past the piece's end
                continue
            v = load(x, i)
            for j in range(1, thresholds.size // 2):
                k = written[j]
                row[base[j] + min(k, cap[j])] = v
                written[j] = k + ((v >= thresholds[2 * j]) & (v < thresholds[2 * j + 1]))


@parallel
def scan_runs(x, start, n_groups, run, thresholds, base, cap, dest, n_chunks, block):
    """Count and collect in one pass over runs of `run` elements that share a group.

    thresholds[g] holds (low, high) pairs padded to a multiple of six: pair 0 is (lowest finite, inf), the
    others are brackets. Returns counts[c, g, t] = #{x < thresholds[g, t]} over chunk c, and written[c, g, j]
    = #{low_j <= x < high_j}; chunk c copies up to cap[g, j] members of bracket j of group g to
    dest[c, base[g, j]:], a region of cap[g, j] + 1 slots. Counts and collected values do not depend on the
    thread count. x may be byte-swapped float32 words (see _common.load).
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
