"""Collecting kernels: bracket members per group, alone (lanes) or fused with the counts (scan_runs)."""

from __future__ import annotations

import sys

import numpy as np
from numba import prange
from numba.cpython.unsafe.numbers import trailing_zeros

from .._jit import inline, parallel, serial
from ._common import _FLUSH_BLOCKS, _chunk_bounds, _prefetch_span, chunk_partials, load
from ._compress import compress_lanes, compress_sweep, compress_usable, lane_width, staging

_LITTLE = sys.byteorder == "little"  # how the flag bytes sit in a word
_SPARSE, _MIDDLE, _DENSE = 0, 1, 2  # the member densities of scan_runs's pieces (see _density)
_LANES_DENSE_FROM = 0.006  # members per element of a block from which compress_lanes packs every vector (the
# two sweeps cost about the same at 0.4 % on 128 lanes, 0.8 % on 21, in scan_lanes alone)


@inline
def _lowest_flag(bits, w):
    # Flags are bytes of 0 or 1 read as words of eight: byte b of word w is bit 8b (little-endian) or 8(7 - b).
    # The element of the lowest set bit, and the word without it.
    shift = trailing_zeros(bits) >> 3
    return 8 * w + (shift if _LITTLE else 7 - shift), bits & (bits - np.uint64(1))


@inline
def _flagged_words(words, n_bytes, flagged):
    # The words of eight flag bytes among the first n_bytes that hold any set flag, listed branch-free into
    # flagged; returns how many. (Bytes past n_bytes in the last word may be stale: the callers skip them.)
    n_flagged = 0
    for w in range((n_bytes + 7) // 8):
        flagged[n_flagged] = w
        n_flagged += words[w] != 0
    return n_flagged


# --- collecting bracket members --------------------------------------------------------------------------------


@inline
def _lowest_flagged_byte(bits, w):
    # The element of the lowest nonzero flag byte of word w, and the word without that byte (a byte may hold
    # several bracket bits: it is visited once).
    shift = trailing_zeros(bits) >> 3
    cleared = bits & ~(np.uint64(0xFF) << np.uint64(8 * shift))
    return 8 * w + (shift if _LITTLE else 7 - shift), cleared


@inline
def _bracket_flag(v, l0, h0, l1, h1, bit0, bit1):
    # the flag bits of v for two brackets [l0, h0) and [l1, h1) (bit1 is 0 for a spare second bracket)
    return np.uint8(np.uint8((v >= l0) & (v < h0)) * bit0 | np.uint8((v >= l1) & (v < h1)) * bit1)


@inline
def _flag_rows8(x, flags, lanes, l0, h0, l1, h1, bit0, bit1, keep):
    # Two brackets' flags over eight rows of lanes at once: each bracket edge is loaded once per eight elements
    # (as _count_rows8). keep is 0 for the first pair of brackets (the flags start) and 0xFF after (they add).
    x0, x1, x2, x3 = x[:lanes], x[lanes : 2 * lanes], x[2 * lanes : 3 * lanes], x[3 * lanes : 4 * lanes]
    x4, x5, x6, x7 = x[4 * lanes : 5 * lanes], x[5 * lanes : 6 * lanes], x[6 * lanes : 7 * lanes], x[7 * lanes :]
    f0, f1, f2, f3 = flags[:lanes], flags[lanes : 2 * lanes], flags[2 * lanes : 3 * lanes], flags[3 * lanes : 4 * lanes]
    f4, f5, f6 = flags[4 * lanes : 5 * lanes], flags[5 * lanes : 6 * lanes], flags[6 * lanes : 7 * lanes]
    f7 = flags[7 * lanes : 8 * lanes]
    for j in range(lanes):
        a, b, c, d = l0[j], h0[j], l1[j], h1[j]
        f0[j] = (f0[j] & keep) | _bracket_flag(load(x0, j), a, b, c, d, bit0, bit1)
        f1[j] = (f1[j] & keep) | _bracket_flag(load(x1, j), a, b, c, d, bit0, bit1)
        f2[j] = (f2[j] & keep) | _bracket_flag(load(x2, j), a, b, c, d, bit0, bit1)
        f3[j] = (f3[j] & keep) | _bracket_flag(load(x3, j), a, b, c, d, bit0, bit1)
        f4[j] = (f4[j] & keep) | _bracket_flag(load(x4, j), a, b, c, d, bit0, bit1)
        f5[j] = (f5[j] & keep) | _bracket_flag(load(x5, j), a, b, c, d, bit0, bit1)
        f6[j] = (f6[j] & keep) | _bracket_flag(load(x6, j), a, b, c, d, bit0, bit1)
        f7[j] = (f7[j] & keep) | _bracket_flag(load(x7, j), a, b, c, d, bit0, bit1)


@serial
def _flag_lanes(x, flags, low, high, coded):
    # flags[i] = the bits of the brackets that hold x[i] (bit k for bracket k when coded, else 1 for any): two
    # brackets per sweep, eight rows of lanes at a time, then the remaining rows one at a time. x.size is a
    # multiple of the lane count. (H×W×C 2048²×21, two brackets: the sweep of one row at a time and one bracket
    # at a time took most of the pass.)
    n_brackets, lanes = low.shape
    full = x.size - x.size % (8 * lanes)
    for k in range(0, n_brackets, 2):
        k1 = min(k + 1, n_brackets - 1)
        bit0 = np.uint8(1 << k) if coded else np.uint8(1)
        bit1 = np.uint8(0) if k1 == k else (np.uint8(1 << k1) if coded else np.uint8(1))
        keep = np.uint8(0) if k == 0 else np.uint8(0xFF)
        l0, h0, l1, h1 = low[k], high[k], low[k1], high[k1]
        for r in range(0, full, 8 * lanes):
            _flag_rows8(x[r : r + 8 * lanes], flags[r : r + 8 * lanes], lanes, l0, h0, l1, h1, bit0, bit1, keep)
        for r in range(full, x.size, lanes):
            xs = x[r : r + lanes]
            fs = flags[r : r + lanes]
            for j in range(lanes):
                fs[j] = (fs[j] & keep) | _bracket_flag(load(xs, j), l0[j], h0[j], l1[j], h1[j], bit0, bit1)


@parallel
def collect_lanes(x, low, high, lane_groups, base, dest, n_chunks, block):
    """collect for a repeating lane pattern: low/high (B, L) per lane, lane_groups (L,) maps lanes to groups.

    Returns written[c, g, j]; chunk c copies the members of bracket j of group g to dest[c, base[g, j]:].
    Membership flags are computed per block with vectorized per-lane compares (_flag_lanes), one bit per bracket
    (up to eight brackets; beyond, the flag says "some bracket" and the brackets are tested again). Then, as in
    _gather_members, the words of eight flags that hold any are listed branch-free, and only their flagged
    elements are visited; the lane of an element comes from a table (no division). `block` is a multiple of the
    lane count. (Measured on H×W×C 2048²×21, 2 threads, 3 % members: 62 -> 34 ms, and
    27 -> 18 ms without members: the word-by-word scan and a division per member were most of the time.)
    """
    n_brackets, lanes = low.shape
    n_groups = base.shape[0]
    n_full = (x.size // lanes) * lanes
    coded = n_brackets <= 8
    written = chunk_partials(n_chunks, n_groups, n_brackets)
    for c in prange(n_chunks):
        begin, end = _chunk_bounds(n_full, n_chunks, c, lanes)
        member = np.zeros(block, dtype=np.uint8)
        words = member.view(np.uint64)
        flagged = np.empty(block // 8 + 1, dtype=np.int64)
        lane_of = np.empty(block, dtype=np.int32)
        for i in range(block):
            lane_of[i] = i % lanes
        row = dest[c]
        pos = written[c]
        for b in range(begin, end, block):
            xb = x[b : min(end, b + block)]
            _flag_lanes(xb, member, low, high, coded)
            n_flagged = _flagged_words(words, xb.size, flagged)  # flags past xb.size: skipped below
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
    n_flagged = _flagged_words(words, x.size, flagged)  # flags past x.size: the element loop stops there
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


@serial
def _gather_coded(x, words, flagged, thresholds, row, base, cap, written):
    # _gather_members for a group whose brackets are disjoint (an element is in one at most): the member's pair
    # is found branch-free (the sum of j over the pairs that hold it) and the member stored to that pair alone,
    # where _gather_members stores to every pair and advances each (7 percentiles of 16×16×512²: the
    # collection passes 133 -> 108 ms). Members land in the order of their positions, as there.
    n_flagged = _flagged_words(words, x.size, flagged)
    n_pairs = thresholds.size // 2
    for f in range(n_flagged):
        w = flagged[f]
        bits = words[w]
        while bits != 0:
            i, bits = _lowest_flag(bits, w)
            if i >= x.size:  # a stale flag past the piece's end
                continue
            v = load(x, i)
            p = 0
            for j in range(1, n_pairs):
                p += j * ((v >= thresholds[2 * j]) & (v < thresholds[2 * j + 1]))
            k = written[p]
            row[base[p] + min(k, cap[p])] = v
            written[p] = k + 1


@serial
def _disjoint_pairs(thresholds):
    # Whether the non-empty (low < high) pairs from 1 on overlap nowhere (ties at a bracket edge can make two
    # proposed brackets share a value)
    n_pairs = thresholds.size // 2
    for a in range(1, n_pairs):
        lo_a, hi_a = thresholds[2 * a], thresholds[2 * a + 1]
        if not lo_a < hi_a:
            continue
        for b in range(a + 1, n_pairs):
            lo_b, hi_b = thresholds[2 * b], thresholds[2 * b + 1]
            if lo_b < hi_b and lo_a < hi_b and lo_b < hi_a:
                return False
    return True


@inline
def _density(found, n):
    # The sweep for the next piece of scan_runs, by the share of members in the last one (measured on 21×1024²,
    # float32, 2 threads: compress skipping empty vectors is best below 0.3 %, flags then gather below 1.3 %,
    # compress of every vector above, where flags took up to 1.3 times as long)
    return _SPARSE if found * 333 < n else _MIDDLE if found * 77 < n else _DENSE


@serial
def _compress_run(x, thresholds, acc, row, base, cap, written, sparse):
    # One piece of scan_runs with compress_sweep (AVX-512): counts into acc, members into row, written advanced;
    # the tail past the whole vectors element by element. A pair with no capacity is counted, not collected (its
    # written count is its two counts' difference), and pair 0 of the first sweep is neither.
    pos = np.empty(3, dtype=np.int64)
    last = np.empty(3, dtype=np.int64)
    for t in range(0, thresholds.size, 6):
        for p in range(3):
            j = t // 2 + p
            collected = cap[j] > 0 and j > 0
            pos[p] = base[j] + written[j]
            last[p] = base[j] + cap[j] if collected else -1
        done = compress_sweep(x, thresholds, t, acc, row, pos, last, sparse)
        for i in range(done, x.size):
            v = load(x, i)
            for k in range(t, t + 6):
                acc[k] += v < thresholds[k]
            for p in range(3):
                if last[p] >= 0:
                    row[min(pos[p], last[p])] = v
                    pos[p] += (v >= thresholds[t + 2 * p]) & (v < thresholds[t + 2 * p + 1])
        for p in range(3):
            j = t // 2 + p
            if last[p] >= 0:
                written[j] = pos[p] - base[j]
            elif j > 0:
                written[j] += max(0, acc[2 * j + 1] - acc[2 * j])


@parallel
def scan_runs(x, start, n_groups, run, thresholds, base, cap, dest, n_chunks, block, count=True):
    """Count and collect in one pass over runs of `run` elements that share a group.

    thresholds[g] holds (low, high) pairs padded to a multiple of six: pair 0 is (lowest finite, inf), the
    others are brackets. Returns counts[c, g, t] = #{x < thresholds[g, t]} over chunk c, and written[c, g, j]
    = #{low_j <= x < high_j}; chunk c copies up to cap[c, g, j] members of bracket j of group g to
    dest[c, base[c, g, j]:], a region of cap[c, g, j] + 1 slots (per chunk: a chunk of a few planes needs
    regions for those alone). Counts and collected values do not depend on the thread count. x may be
    byte-swapped float32 words (see _common.load). With count False (a collecting pass, whose counts are known),
    the runs of groups with no capacity in a chunk are not read there, and their counts are left 0.
    """
    n = x.size
    n_thr = thresholds.shape[1]
    counts = chunk_partials(n_chunks, n_groups, n_thr)
    written = chunk_partials(n_chunks, n_groups, n_thr // 2)
    active = np.ones((n_chunks, n_groups), dtype=np.bool_)
    coded = np.empty(n_groups, dtype=np.bool_)
    for g in range(n_groups):
        for c in range(n_chunks):
            active[c, g] = count or cap[c, g].sum() > 0
        coded[g] = _disjoint_pairs(thresholds[g])
    for c in prange(n_chunks):
        begin, end = _chunk_bounds(n, n_chunks, c, 1)
        member = np.zeros(block, dtype=np.uint8)
        words = member.view(np.uint64)
        flagged = np.empty(block // 8 + 1, dtype=np.int64)
        acc = np.zeros(n_thr, dtype=np.int32)
        density = _MIDDLE
        i = begin
        while i < end:
            flat = start + i
            g = (flat // run) % n_groups
            stop = min(end, i + run - flat % run, i + block)
            if not active[c, g]:
                i = stop
                continue
            piece = x[i:stop]
            before = written[c, g].sum()
            if compress_usable(piece, thresholds[g], dest[c]) and density != _MIDDLE:
                _compress_run(
                    piece, thresholds[g], acc, dest[c], base[c, g], cap[c, g], written[c, g], density == _SPARSE
                )
            else:
                for t in range(0, n_thr, 6):
                    _sweep_run(piece, thresholds[g], t, acc, member, t == 0)
                if coded[g]:
                    _gather_coded(piece, words, flagged, thresholds[g], dest[c], base[c, g], cap[c, g], written[c, g])
                else:
                    _gather_members(
                        piece, member, words, flagged, thresholds[g], dest[c], base[c, g], cap[c, g], written[c, g]
                    )
            counts[c, g] += acc
            acc[:] = 0
            density = _density(written[c, g].sum() - before, piece.size)
            i = stop
    return counts, written


@inline
def _in_pair(below_low, below_high):
    # 1 where low <= x < high, from the int32 0/1 compares x < low and x < high
    return np.int32(below_high & ~below_low)


@inline
def _scan_rows8(x, flags, lanes, low, high, acc_low, acc_high, mask, keep):
    # One (low, high) pair over eight rows of lanes: counts of x < low and x < high per lane, and one flag byte
    # per lane whose bit r says low <= x < high for row r (times mask: 0 for pair 0, which is not collected),
    # added to the flags (keep 0: they start). All in int32 lanes, so that the loop vectorizes (with bool
    # temporaries and byte flags per element it did not: 130 ms against 15 for H×W×C 2048²×21).
    x0, x1, x2, x3 = x[:lanes], x[lanes : 2 * lanes], x[2 * lanes : 3 * lanes], x[3 * lanes : 4 * lanes]
    x4, x5, x6, x7 = x[4 * lanes : 5 * lanes], x[5 * lanes : 6 * lanes], x[6 * lanes : 7 * lanes], x[7 * lanes :]
    for j in range(lanes):
        t, u = low[j], high[j]
        v0, v1, v2, v3 = load(x0, j), load(x1, j), load(x2, j), load(x3, j)
        v4, v5, v6, v7 = load(x4, j), load(x5, j), load(x6, j), load(x7, j)
        l0, l1, l2, l3 = np.int32(v0 < t), np.int32(v1 < t), np.int32(v2 < t), np.int32(v3 < t)
        l4, l5, l6, l7 = np.int32(v4 < t), np.int32(v5 < t), np.int32(v6 < t), np.int32(v7 < t)
        h0, h1, h2, h3 = np.int32(v0 < u), np.int32(v1 < u), np.int32(v2 < u), np.int32(v3 < u)
        h4, h5, h6, h7 = np.int32(v4 < u), np.int32(v5 < u), np.int32(v6 < u), np.int32(v7 < u)
        below_low = np.int32(np.int32(l0 + l1) + np.int32(l2 + l3)) + np.int32(np.int32(l4 + l5) + np.int32(l6 + l7))
        below_high = np.int32(np.int32(h0 + h1) + np.int32(h2 + h3)) + np.int32(np.int32(h4 + h5) + np.int32(h6 + h7))
        acc_low[j] = np.int32(acc_low[j] + np.int32(below_low))
        acc_high[j] = np.int32(acc_high[j] + np.int32(below_high))
        bits = np.int32(_in_pair(l0, h0) | np.int32(_in_pair(l1, h1) << 1) | np.int32(_in_pair(l2, h2) << 2))
        bits = np.int32(bits | np.int32(_in_pair(l3, h3) << 3) | np.int32(_in_pair(l4, h4) << 4))
        bits = np.int32(bits | np.int32(_in_pair(l5, h5) << 5) | np.int32(_in_pair(l6, h6) << 6))
        bits = np.int32(bits | np.int32(_in_pair(l7, h7) << 7))
        flags[j] = np.uint8(np.int32(flags[j] & keep) | np.int32(bits & mask))


@serial
def _scan_lanes_block(x, flags, thresholds, acc):
    # Counts of x < each threshold per lane into acc (T, L), and the flags of the elements in a bracket (pairs 1
    # and up): one byte per lane and eight rows (bit r for row r), one pair per sweep, eight rows at a time
    # (_scan_rows8), then the remaining rows one at a time. Pair 0 goes first and clears the flags. x.size is a
    # multiple of the lane count.
    n_thr, lanes = thresholds.shape
    full = x.size - x.size % (8 * lanes)
    tail = full // 8  # flag bytes of the last, partial group of eight rows
    for t in range(0, n_thr, 2):
        mask = np.int32(0) if t == 0 else np.int32(0xFF)
        keep = np.int32(0) if t == 0 else np.int32(0xFF)
        low, high, acc_low, acc_high = thresholds[t], thresholds[t + 1], acc[t], acc[t + 1]
        for r in range(0, full, 8 * lanes):
            f = r // 8
            _scan_rows8(x[r : r + 8 * lanes], flags[f : f + lanes], lanes, low, high, acc_low, acc_high, mask, keep)
        for r in range(full, x.size, lanes):
            xs = x[r : r + lanes]
            fs = flags[tail : tail + lanes]
            row_bit = np.int32(1 << ((r - full) // lanes))
            for j in range(lanes):
                v = load(xs, j)
                below_low, below_high = np.int32(v < low[j]), np.int32(v < high[j])
                acc_low[j] = np.int32(acc_low[j] + below_low)
                acc_high[j] = np.int32(acc_high[j] + below_high)
                kept = np.int32(fs[j]) if t > 0 or r > full else np.int32(0)
                fs[j] = np.uint8(kept | (np.int32(row_bit * _in_pair(below_low, below_high)) & mask))


@serial
def _send_members(values, lanes, n, lane_groups, row, pair, base, cap, written, at, limit):
    # The n staged members of `pair` (compress_lanes) to their groups' regions, in staging order: each stored at
    # its region's next slot, or at the sink once the region is full (as _gather_members), written advanced.
    for g in range(base.shape[0]):
        at[g] = base[g, pair] + written[g, pair]
        limit[g] = base[g, pair] + cap[g, pair]
    for s in range(n):
        g = lane_groups[lanes[s]]
        k = at[g]
        row[min(k, limit[g])] = values[s]
        at[g] = k + 1
    for g in range(base.shape[0]):
        written[g, pair] = at[g] - base[g, pair]


@parallel
def scan_lanes(x, thresholds, lane_groups, base, cap, dest, n_chunks, block):
    """scan_runs for a repeating lane pattern: count and collect in one pass.

    thresholds (T, L) per lane, in (low, high) pairs as scan_runs's (pair 0 (lowest finite, inf), then the
    brackets, padded with (inf, inf)); lane_groups (L,) maps lanes to groups. Returns counts[c, t, j] =
    #{x < thresholds[t, j]} over the lane j elements of chunk c, and written[c, g, p] = #{low_p <= x < high_p}
    in group g; chunk c copies up to cap[g, p] members of pair p to dest[c, base[g, p]:], a region of
    cap[g, p] + 1 slots (the last a sink, as in _gather_members). `block` is a multiple of eight rows of lanes.
    Each block is counted and flagged in one sweep per pair (_scan_lanes_block); then the words of eight flag
    bytes that hold any are listed, and only their flagged elements visited. Where the CPU has AVX-512
    (_compress.compress_lanes), each vector of lanes is swept down the block's rows instead (counts in
    registers, members packed with their lane numbers into staging lists, then sent to their groups), with the
    next block prefetched meanwhile: H×W×C 2048²×21 exact, the pass 22.2-22.8 -> 14.1-15.2 ms; 1024²×128
    44.3-46.7 -> 32.7-34.1 ms. A block whose previous block had members in _LANES_DENSE_FROM of its elements or
    more takes the dense sweep (every vector packed, no branch): 1024²×128 (about 2 % members) 33.4-34.8 ->
    23.1-23.6 ms, 2048²×21 (about 1 %) 15.0-15.2 -> 13.6-14.6 ms (the pass, alternated runs).
    """
    n_thr, lanes = thresholds.shape
    n_groups, n_pairs = base.shape
    n_full = (x.size // lanes) * lanes
    counts = np.zeros((n_chunks, n_thr, lanes), dtype=np.int64)
    written = chunk_partials(n_chunks, n_groups, n_pairs)
    n_bytes = block // 8 + lanes  # flag bytes of a block, with room for a partial group of eight rows
    for c in prange(n_chunks):
        begin, end = _chunk_bounds(n_full, n_chunks, c, lanes)
        member = np.zeros(n_bytes + 8, dtype=np.uint8)
        words = member.view(np.uint64)
        flagged = np.empty(words.size, dtype=np.int64)
        lane_of = np.empty(member.size, dtype=np.int32)
        first_row = np.empty(member.size, dtype=np.int64)  # the element index of row 0 of a flag byte's rows
        for f in range(member.size):
            lane_of[f] = f % lanes
            first_row[f] = (f // lanes) * 8 * lanes + f % lanes
        acc = np.zeros((n_thr, lanes), dtype=np.int32)
        row = dest[c]
        pos = written[c]
        staged_values, staged_lanes = staging(x, block + 64)
        staged = np.zeros(3, dtype=np.int64)
        next_slot = np.empty(n_groups, dtype=np.int64)  # scratch of _send_members
        last_slot = np.empty(n_groups, dtype=np.int64)
        staged_total = 0
        for b in range(begin, end, block):
            xb = x[b : min(end, b + block)]
            if lane_width(xb) > 0:  # AVX-512: members packed with their lanes, then sent to their groups
                # The sweeps read the block lane by lane, down its rows: the next block is prefetched, a slice
                # per vector of lanes, so that it is in L2 when its sweeps start.
                ahead = -(-block // (lanes // lane_width(xb)))
                dense = staged_total >= _LANES_DENSE_FROM * block  # by the members of the previous block
                staged_total = 0
                for t in range(0, n_thr, 6):
                    staged[:] = 0
                    for j in range(0, lanes, lane_width(xb)):
                        if t == 0:
                            ahead_at = b + block + (j // lane_width(xb)) * ahead
                            _prefetch_span(x, ahead_at, min(end, ahead_at + ahead))
                        compress_lanes(
                            xb, xb.size // lanes, lanes, j, thresholds, t, acc, staged_values, staged_lanes, staged,
                            t == 0, dense,
                        )  # fmt: skip
                    staged_total += staged.sum()
                    for p in range(3):
                        if staged[p]:
                            _send_members(staged_values[p], staged_lanes[p], staged[p], lane_groups, row, t // 2 + p,
                                          base, cap, pos, next_slot, last_slot)  # fmt: skip
                if (b - begin) // block % _FLUSH_BLOCKS == _FLUSH_BLOCKS - 1 or b + block >= end:
                    counts[c] += acc
                    acc[:] = 0
                continue
            _scan_lanes_block(xb, member, thresholds, acc)
            if (b - begin) // block % _FLUSH_BLOCKS == _FLUSH_BLOCKS - 1 or b + block >= end:
                counts[c] += acc
                acc[:] = 0
            used = -(-xb.size // (8 * lanes)) * lanes  # flag bytes this block set
            n_flagged = _flagged_words(words, used, flagged)  # bytes past `used`: skipped below
            for f in range(n_flagged):
                w = flagged[f]
                bits = words[w]
                while bits != 0:
                    fb, bits = _lowest_flagged_byte(bits, w)
                    if fb >= used:
                        continue
                    j = lane_of[fb]
                    g = lane_groups[j]
                    rows = np.uint64(member[fb])
                    while rows != 0:
                        i = first_row[fb] + trailing_zeros(rows) * lanes
                        rows &= rows - np.uint64(1)
                        v = load(xb, i)
                        for p in range(1, n_pairs):  # branch-free: store, and advance only for a member
                            k = pos[g, p]
                            row[base[g, p] + min(k, cap[g, p])] = v
                            pos[g, p] = k + ((v >= thresholds[2 * p, j]) & (v < thresholds[2 * p + 1, j]))
    for i in range(n_full, x.size):
        j = i - n_full
        g = lane_groups[j]
        v = load(x, i)
        for t in range(n_thr):
            counts[0, t, j] += v < thresholds[t, j]
        for p in range(1, n_pairs):
            k = written[0, g, p]
            dest[0, base[g, p] + min(k, cap[g, p])] = v
            written[0, g, p] = k + ((v >= thresholds[2 * p, j]) & (v < thresholds[2 * p + 1, j]))
    return counts, written


@parallel
def gather_regions(dest, starts, lengths, at, values, n_parts):
    """values[at[s] :] = the regions dest[c, starts[c, s] : starts[c, s] + lengths[c, s]] of segment s, part c
    after part c (dest (P, W); starts, lengths (P, S); values room for all): the bracket members of many groups,
    each group's parts one after the other, for one selection call over all of them."""
    n_seg = at.size
    for c in prange(n_parts):
        first, last = _chunk_bounds(n_seg, n_parts, c, 1)
        for s in range(first, last):
            d = at[s]
            for part in range(dest.shape[0]):
                n = lengths[part, s]
                values[d : d + n] = dest[part, starts[part, s] : starts[part, s] + n]  # slices: a vector copy
                d += n
