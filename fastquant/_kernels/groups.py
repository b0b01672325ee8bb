"""Kernels for many small groups and short inner runs: per-group selection in cache, and row-wise conversion.

The input is the same as for the other kernels: a 1-D C-contiguous float32 or float64 array ``x`` holding the whole
logical ``(A, G, B)`` array (``outer``, ``groups``, ``inner``) in C order; element ``(a, g, b)`` is at flat index
``(a * G + g) * B + b``. These kernels are for the layouts where the run and lane kernels of
:mod:`fastquant._kernels` walk one tiny run at a time: ``B`` small with a period ``G * B`` too large for lanes
(per column of a map, per pixel across channels, H×W×C with many channels).

- :func:`group_select`: exact order statistics per group. Groups of at most ``_TILE`` values are transposed a
  block of groups at a time into a cache-sized buffer (a tile of the ``(A, G·B)`` matrix) so that each group's
  values are contiguous, and selected there (a quickselect that targets the ranks it needs, no full sort; groups
  of ``_COUNTED_FROM`` or more by counting passes against a sorted sample, or, where the previous group's values
  of the same ranks bracket them, from one AVX-512 sweep over intervals around those values). Larger
  groups take a sample, bracket each needed rank, count and collect the bracket members in one pass over the
  rows, and select among the members; a bracket that misses (adversarial order, heavy ties) falls back to a
  radix selection over the rows, 8 key bits per pass.
- :func:`convert_rows`: conversion with per-group parameters, vectorized along a row of ``G * B``.

Parallel kernels take ``n_parts`` (never read from numba inside a kernel) and accumulate into per-part rows merged
afterwards; results never depend on the part count.
"""

from __future__ import annotations

import numpy as np
from numba import prange
from numba.cpython.unsafe.numbers import trailing_zeros

from .._jit import inline, parallel, serial
from .._levels import MIN_PLAIN_SPAN as _MIN_PLAIN_SPAN
from ._common import (
    PAINT_BLOCK,
    _chunk_bounds,
    _level,
    _level_clamped,
    _level_clamped_nan,
    _prefetch_span,
    float32_lane_edge,
    paint,
)
from ._compress import compress_sweep, compress_usable
from .convert import _PREFETCH_AHEAD, _PREFETCH_BLOCK, _levels_float32_lanes
from .minmax import _fold_store, _key_bounds, _lanes_block, _lanes_side_block8, _max_value, _min_value

_ROW_TILE = 1 << 12  # elements of a row converted across all rows at once (its parameters: 128 KiB)
_ROW_WHOLE = 1 << 14  # rows up to this long are converted whole, row after row (their float32 parameters stay in
# L2; per column of 8192² took 14.2-14.4 ms so, 16.0-16.8 ms in tiles); longer rows in tiles of _ROW_TILE
_TILE = 1 << 17  # values of the per-part selection buffer (512 KiB of float32): groups up to this size are in cache
_LINE = 16  # float32 values per cache line: group blocks start at multiples of this when they can
_SORTED_BELOW = 16  # windows this small are insertion-sorted
_TARGETED_FROM = 256  # windows this large get a pivot from a sorted sample near the target rank
_PIVOT_SAMPLE = 31  # values in that sample
_BRACKET_FROM = 2048  # groups this large are first narrowed to a bracket of their values
_BRACKET_SAMPLE = 127  # sorted sample values that place the brackets
_BRACKET_HALF = 3  # sample positions on each side of a rank
_MID = 1 << 13  # bracket members per part (more: the rank is selected in place)
_BIG_SAMPLE = 1 << 14  # sample values per group for the bracketed path (groups larger than _TILE)
_BRACKET_SIGMAS = 5.0  # bracket half-width around a sample rank, in standard deviations of the sample quantile
_RADIX_PAIRS = 1024  # (group, rank) pairs per radix batch: histograms of _RADIX_PAIRS * 256 per part
_COUNTED_FROM = 1024  # groups this large (in cache) are selected by counting against sample values, then collecting
_COUNT_SAMPLE = 63  # sorted sample values whose counts place each rank between two consecutive ones
_REFINE_ROUNDS = 3  # rounds of two interpolated thresholds per rank group after the sample (a counting pass each)
_REFINED = 24  # values of an interval small enough to collect (the collection visits each block of 64 holding one)
_SAMPLED_FROM = 1 << 15  # segments this large (select_segments) are first narrowed by brackets from a large sample
_SAMPLED_SIZE = 2047  # values of that sample (sorted)
_SAMPLED_SIGMAS = 4.5  # half-width of the thresholds' span around a rank's sample position, in standard deviations
_SAMPLED_STEPS = 8  # thresholds per run of ranks, counted in one pass
_SAMPLED_BLOCK = 1 << 11  # values counted against every threshold at a time (L1-resident)
_WIDE = 1 << 20  # values of the transposition buffer when groups are large (4 MiB of float32: wide blocks of rows)
_TRANSPOSE_AHEAD = 32  # rows the transposition prefetches ahead (per column of 8192², transposition: 24.6 -> 21.4 ms)
_MICRO = 32  # side of the square tiles of the transposition (32: 108 -> 98 ms per column of 8192², against 16)
_EXTREMES_MAX = 24  # chains of kept extremes (smallest plus largest) up to this length take the row-wise kernel
_EXTREMES_WIDTH = 512  # groups per tile of the row-wise extremes kernel (its chains stay in L1)
_PRIOR_SIGMAS = 3.0  # half-width of an interval around the previous group's value of a rank, in standard deviations
# of the difference between two iid groups' values of that rank (binomial, in ranks): in 4096 groups of 8192
# standard-normal values, 1 miss at 3 and 65 at 2.5 (a miss costs a sweep more); at 4, more members to select in
_PRIOR_CAP = 1 << 11  # members per prior interval at most (more: the group is selected without its prior)
_PRIOR_BACKOFF = 64  # after consecutive misses, up to this many groups are selected without a prior


# --- selection in a contiguous buffer ---------------------------------------------------------------------------


@serial
def _insertion_sort(v, lo, hi):
    for i in range(lo + 1, hi):
        t = v[i]
        j = i - 1
        while j >= lo and v[j] > t:
            v[j + 1] = v[j]
            j -= 1
        v[j + 1] = t


@inline
def _partition_below(v, lo, hi, pivot):
    # Branch-free Lomuto: afterwards v[lo:j] < pivot <= v[j:hi] (no mispredictions on random data).
    j = lo
    for i in range(lo, hi):
        t = v[i]
        v[i] = v[j]
        v[j] = t
        j += t < pivot
    return j


@inline
def _partition_equal(v, lo, hi, pivot):
    # For v[lo:hi] >= pivot: afterwards v[lo:j] == pivot < v[j:hi].
    j = lo
    for i in range(lo, hi):
        t = v[i]
        v[i] = v[j]
        v[j] = t
        j += t <= pivot
    return j


@serial
def _pivot(v, lo, hi, k, sample):
    # Small windows: median of three. Large ones: a value of a sorted strided sample just past the target rank on
    # the side of the window's nearer end, so that one pass leaves a short window holding k.
    size = hi - lo
    if size < _TARGETED_FROM:
        a, b, c = v[lo], v[lo + size // 2], v[hi - 1]
        if a > b:
            a, b = b, a
        if b > c:
            b = c
        return a if a > b else b
    s = _PIVOT_SAMPLE
    for t in range(s):
        sample[t] = v[lo + ((2 * t + 1) * size) // (2 * s)]
    _insertion_sort(sample, 0, s)
    f = (k - lo + 0.5) / size * s
    if f < 0.5 * s:
        return sample[min(s - 1, int(f) + 2)]
    return sample[max(0, int(f) - 2)]


@serial
def _select_permuting(v, n, ranks, m, found, ends, sample):
    """found[i] = the value of rank ranks[i] (ascending, < n) among v[:n], which is permuted.

    ends is a stack of window ends: everything before ends[t] is <= everything from ends[t] on, so each rank is
    searched only between the previous rank and the nearest end past it.
    """
    top = 0
    ends[0] = n
    previous = -1
    for i in range(m):
        k = ranks[i]
        if k == previous:
            found[i] = found[i - 1]
            continue
        lo = previous + 1
        while ends[top] <= k:
            lo = max(lo, ends[top])
            top -= 1
        hi = ends[top]
        rounds = 0
        while True:
            size = hi - lo
            if size <= _SORTED_BELOW:
                _insertion_sort(v, lo, hi)
                break
            if k == lo:  # the window's minimum
                best = lo
                for t in range(lo + 1, hi):
                    best = t if v[t] < v[best] else best
                v[lo], v[best] = v[best], v[lo]
                break
            if rounds > 64:  # adversarial pivots: sort the window (bounded n log n)
                v[lo:hi] = np.sort(v[lo:hi])
                break
            rounds += 1
            pivot = _pivot(v, lo, hi, k, sample)
            j = _partition_below(v, lo, hi, pivot)
            if k < j:
                hi = j
                top += 1
                ends[top] = hi
                continue
            if j == lo:  # the pivot is the window's minimum: split off the values equal to it
                e = _partition_equal(v, lo, hi, pivot)
                if k < e:
                    top += 1
                    ends[top] = e
                    break
                lo = e
            else:
                lo = j
        found[i] = v[k]
        previous = k


@serial
def _select_ranks(v, n, ranks, m, found, ends, sample, mid, sub, sub_found):
    """found[i] = the value of rank ranks[i] (ascending, < n) among v[:n].

    Large groups: per rank not yet found, a bracket of two values of a sorted strided sample around it; one
    branch-free pass counts the values below the bracket and copies its members to mid, and every rank that
    falls among the members is selected there (a few percent of the values). Ranks a bracket misses (rare:
    adversarial orders) are selected in v itself by _select_permuting.
    """
    if n < _BRACKET_FROM:
        _select_permuting(v, n, ranks, m, found, ends, sample)
        return
    s = _BRACKET_SAMPLE
    for t in range(s):
        sample[t] = v[((2 * t + 1) * n) // (2 * s)]
    _insertion_sort(sample, 0, s)
    cap = mid.size - 1
    done = np.zeros(m, dtype=np.bool_)
    for i in range(m):
        if done[i]:
            continue
        k = ranks[i]
        centre = (k + 0.5) / n * (s + 1) - 1.0
        lo_idx = int(np.floor(centre)) - _BRACKET_HALF
        hi_idx = int(np.ceil(centre)) + _BRACKET_HALF
        low = sample[lo_idx] if lo_idx >= 0 else -np.inf
        high = sample[hi_idx] if hi_idx < s else np.inf
        below = 0
        count = 0
        for t in range(n):
            e = v[t]
            mid[min(count, cap)] = e
            below += e < low
            count += (e >= low) & (e <= high)
        if count > cap or not below <= k < below + count:
            continue
        n_sub = 0
        for j in range(i, m):
            if not done[j] and below <= ranks[j] < below + count:
                sub[n_sub] = ranks[j] - below
                n_sub += 1
        _select_permuting(mid, count, sub, n_sub, sub_found, ends, sample)
        n_sub = 0
        for j in range(i, m):
            if not done[j] and below <= ranks[j] < below + count:
                found[j] = sub_found[n_sub]
                done[j] = True
                n_sub += 1
    n_left = 0
    for i in range(m):
        if not done[i]:
            sub[n_left] = ranks[i]
            n_left += 1
    if n_left:
        _select_permuting(v, n, sub, n_left, sub_found, ends, sample)
        n_left = 0
        for i in range(m):
            if not done[i]:
                found[i] = sub_found[n_left]
                n_left += 1


@inline
def _count_below(v, n, t):
    # #{v[:n] < t}: one vectorized pass (n is at most a tile). Numba widens int32 + int32 to int64; truncating
    # each sum keeps eight lanes per vector (as count._count_run).
    c = np.int32(0)
    for i in range(n):
        c = np.int32(c + np.int32(v[i] < t))
    return np.int64(c)


@serial
def _count_at(v, n, sample, s, i, memo):
    # #{v < sample[i]} with sample[s] standing for +inf, memoized per call of _select_counted
    if i >= s:
        return n
    if memo[i] < 0:
        memo[i] = _count_below(v, n, sample[i])
    return memo[i]


@serial
def _sorted_count_sample(v, n, sample):
    # sample[:_COUNT_SAMPLE] = the strided sample of the finite values v[:n], sorted. By rank: each value's place
    # is the number of values before it in (value, position) order, counted for all of them at once by one
    # vectorized compare per value (constant trip counts over the sample padded with +inf to 64); 0.86 -> 0.35 us
    # against an insertion sort, whose inner loop mispredicts once per value.
    s = _COUNT_SAMPLE
    work = sample[s + 1 : 2 * s + 2]  # the rest of the scratch: _PIVOT_SAMPLE and _BRACKET_SAMPLE are larger
    for t in range(s):
        work[t] = v[((2 * t + 1) * n) // (2 * s)]
    work[s] = np.inf
    places = np.zeros(_COUNT_SAMPLE + 1, dtype=np.int32)
    for j in range(_COUNT_SAMPLE + 1):
        e = work[j]
        for i in range(_COUNT_SAMPLE + 1):
            t = work[i]
            places[i] += np.int32((e < t) | ((e == t) & (j < i)))
    for i in range(s):
        sample[places[i]] = work[i]


@inline
def _refine(v, n, lo, hi, c_lo, c_hi, kf, kl, box):
    # One narrowing of [lo, hi) (c_lo = #{v < lo}, c_hi = #{v < hi}) around the ranks kf..kl: two thresholds
    # interpolated d ranks outside them (d shrinks with the interval), each counted over v[:n] in v's dtype (box,
    # a one-slot array of it) and kept where the ranks stay inside. Returns (lo, hi, c_lo, c_hi, moved).
    span = c_hi - c_lo
    d = max(2, span >> 4)
    moved = False
    box[0] = lo + (hi - lo) * ((kf - d + 0.5 - c_lo) / span)
    t = np.float64(box[0])
    if lo < t < hi:
        c_t = _count_below(v, n, box[0])
        if c_t <= kf:
            lo = t
            c_lo = c_t
            moved = True
    box[0] = lo + (hi - lo) * ((kl + 1 + d + 0.5 - c_lo) / (c_hi - c_lo))
    t = np.float64(box[0])
    if lo < t < hi:
        c_t = _count_below(v, n, box[0])
        if c_t > kl:
            hi = t
            c_hi = c_t
            moved = True
    return lo, hi, c_lo, c_hi, moved


@serial
def _select_counted(v, n, ranks, m, found, ends, sample, mid, sub, sub_found):
    """found[i] = the value of rank ranks[i] (ascending, < n) among the finite values v[:n] (n >= _COUNTED_FROM).

    A sorted strided sample of _COUNT_SAMPLE values; per rank, a search over the sample (vectorized counting
    passes, starting around the rank's expected sample position) for the two consecutive sample values lo < hi
    with #{v < lo} <= rank < #{v < hi}. The values in [lo, hi) (about n / 64) are collected in one pass and the
    rank is selected among them. Ranks whose interval has more values than mid holds (heavy ties) are selected
    by _select_ranks.
    """
    s = _COUNT_SAMPLE
    _sorted_count_sample(v, n, sample)
    memo = np.full(s, -1, dtype=np.int64)
    upper = np.empty(m, dtype=np.int64)  # per rank: index i of the interval [sample[i - 1], sample[i])
    for r in range(m):
        k = ranks[r]
        # smallest i in [0, s] with count(i) > k (count(s) = n > k): gallop from the expected position, bisect
        centre = int((k + 0.5) / n * (s + 1))
        lo = max(0, min(s, centre - 1))  # count(lo - 1) <= k is what we need at the low end
        hi = max(0, min(s, centre + 1))
        step = 2
        while lo > 0 and _count_at(v, n, sample, s, lo - 1, memo) > k:
            lo = max(0, lo - step)
            step *= 2
        step = 2
        while _count_at(v, n, sample, s, hi, memo) <= k:
            hi = min(s, hi + step)
            step *= 2
        # now count(lo - 1) <= k (or lo == 0) and count(hi) > k: bisect for the smallest such i in [lo, hi]
        while lo < hi:
            h = (lo + hi) // 2
            if _count_at(v, n, sample, s, h, memo) > k:
                hi = h
            else:
                lo = h + 1
        upper[r] = lo
    # rank groups (consecutive ranks in one interval), each narrowed by interpolated thresholds: [lo, hi) with
    # below = #{v < lo} and size = #{lo <= v < hi} values
    box = sample[sample.size - 1 :]  # thresholds in v's dtype (compared exactly as the counting pass does)
    # interval edges: values of v's dtype or infinite, so the collection compares in v's dtype (float32 bounds
    # halved the cost of its block tests); entry m is the empty interval [inf, inf)
    lo_v = np.full(m + 1, np.inf, dtype=v.dtype)
    hi_v = np.full(m + 1, np.inf, dtype=v.dtype)
    below = np.empty(m, dtype=np.int64)
    size = np.empty(m, dtype=np.int64)
    bounds = np.empty(m + 1, dtype=np.int64)
    n_g = 0
    r = 0
    while r < m:
        i0 = upper[r]
        e = r
        while e < m and upper[e] == i0:
            e += 1
        c_lo = _count_at(v, n, sample, s, i0 - 1, memo) if i0 > 0 else 0
        c_hi = _count_at(v, n, sample, s, i0, memo)
        lo = np.float64(sample[i0 - 1]) if i0 > 0 else -np.inf
        hi = np.float64(sample[i0]) if i0 < s else np.inf
        kf = ranks[r]
        kl = ranks[e - 1]
        for _ in range(_REFINE_ROUNDS):
            # narrowed while the interval is wide and finite (see _refine)
            span = c_hi - c_lo
            if span <= _REFINED or not (-np.inf < lo and hi < np.inf):
                break
            lo, hi, c_lo, c_hi, moved = _refine(v, n, lo, hi, c_lo, c_hi, kf, kl, box)
            if not moved:
                break
        lo_v[n_g] = lo
        hi_v[n_g] = hi
        below[n_g] = c_lo
        size[n_g] = c_hi - c_lo
        bounds[n_g] = r
        n_g += 1
        r = e
    bounds[n_g] = m
    cap = mid.size // 2
    low_part = mid[:cap]
    high_part = mid[cap : 2 * cap]
    for q in range(0, n_g, 2):
        two = q + 1 < n_g
        r, e0 = bounds[q], bounds[q + 1]
        e1 = bounds[q + 2] if two else e0
        # heavy ties: select these ranks in v itself (a part holds at most cap - 1 members: one slot is the sink)
        if size[q] >= cap or (two and size[q + 1] >= cap):
            _select_ranks(v, n, ranks[r:e1], e1 - r, sub_found, ends, sample[s:], mid, sub, found[r:e1])
            found[r:e1] = sub_found[: e1 - r]
            continue
        l0, u0 = lo_v[q], hi_v[q]
        # One pass collects both rank groups' members (_collect_two: blocks without one skipped). A single rank
        # group takes the empty second interval.
        l1, u1 = (lo_v[q + 1], hi_v[q + 1]) if two else (lo_v[m], hi_v[m])
        c0, c1 = _collect_two(v, n, l0, u0, l1, u1, low_part, high_part)
        for j in range(r, e0):
            sub[j - r] = ranks[j] - below[q]
        _select_permuting(low_part, c0, sub, e0 - r, sub_found, ends, sample[s:])
        found[r:e0] = sub_found[: e0 - r]
        if two:
            for j in range(e0, e1):
                sub[j - e0] = ranks[j] - below[q + 1]
            _select_permuting(high_part, c1, sub, e1 - e0, sub_found, ends, sample[s:])
            found[e0:e1] = sub_found[: e1 - e0]


@serial
def _select_prior(v, n, ranks, m, found, prior, n_prior, spacing, sweep, row, acc, pos, last, ends, sample, tmp, sub,
                  sub_found):  # fmt: skip
    """found[i] = the value of rank ranks[i] (ascending, < n) among the finite values v[:n], from intervals around
    prior[i], the previous group's value of the same rank among its n_prior values (groups of one array tend to
    be alike): one AVX-512 sweep counts the values below up to three intervals and collects their members, and
    each rank is selected among its interval's members. Returns False (found undefined) where there are more than
    three intervals, a rank lies outside its interval or an interval holds more than cap members (tmp.size - 1);
    the caller then selects it.

    An interval spans _PRIOR_SIGMAS standard deviations of the difference between the two groups' values of its
    ranks (sample quantiles of n_prior and n iid values) on each side, converted to values by spacing[i] (values
    per unit of quantile near rank i, so that groups of other sizes can use it; updated here from the members).
    Ranks whose intervals overlap share one. Each interval is half-open, [sweep[2p], sweep[2p + 1]).
    """
    cap = tmp.size - 1
    first = np.empty(4, dtype=np.int64)  # per interval: its first rank (first[p + 1]: the next one's)
    n_pairs = 0
    r = 0
    while r < m:
        if n_pairs == 3:
            return False
        lo = np.inf
        hi = -np.inf
        e = r
        while e < m:
            k = ranks[e]
            p = k / n  # the difference of two sample quantiles, of n_prior and n values, in ranks of n
            half = (_PRIOR_SIGMAS * n * np.sqrt(p * (1.0 - p) * (1.0 / n_prior + 1.0 / n)) + 4.0) * spacing[e] / n
            if e > r and prior[e] - half > hi:
                break
            lo = min(lo, prior[e] - half)
            hi = max(hi, prior[e] + half)
            e += 1
        sweep[2 * n_pairs] = lo
        sweep[2 * n_pairs + 1] = hi
        if not sweep[2 * n_pairs + 1] > prior[e - 1]:  # rounded down to the last value itself (or NaN spacing)
            sweep[6] = np.inf  # the next value up in prior's dtype (a float64 inf would step in float64)
            sweep[2 * n_pairs + 1] = np.nextafter(prior[e - 1], sweep[6])
        first[n_pairs] = r
        n_pairs += 1
        r = e
    first[n_pairs] = m
    for p in range(3):
        pos[p] = p * (cap + 1)
        last[p] = pos[p] + cap if p < n_pairs else -1
        if p >= n_pairs:
            sweep[2 * p] = np.inf
            sweep[2 * p + 1] = np.inf
    acc[:] = 0
    done = compress_sweep(v[:n], sweep, 0, acc, row, pos, last, False)
    for j in range(done, n):  # the remainder, one value at a time
        t = v[j]
        for k in range(6):
            acc[k] += t < sweep[k]
        for p in range(n_pairs):
            if (t >= sweep[2 * p]) & (t < sweep[2 * p + 1]):
                row[min(pos[p], last[p])] = t
                pos[p] += 1
    for p in range(n_pairs):
        below, end = acc[2 * p], acc[2 * p + 1]
        if end - below > cap or not (below <= ranks[first[p]] and ranks[first[p + 1] - 1] < end):
            return False
    for p in range(n_pairs):
        below, end = acc[2 * p], acc[2 * p + 1]
        lo, hi = np.float64(sweep[2 * p]), np.float64(sweep[2 * p + 1])
        r, e = first[p], first[p + 1]
        for j in range(r, e):
            sub[j - r] = ranks[j] - below
        members = row[p * (cap + 1) : p * (cap + 1) + end - below]
        _select_interval(members, end - below, lo, hi, sub, e - r, sub_found, ends, sample, tmp, sweep[6:])
        found[r:e] = sub_found[: e - r]
        for j in range(r, e):
            spacing[j] = (hi - lo) / (end - below) * n
    return True


@serial
def _select_interval(v, n, lo, hi, ranks, m, found, ends, sample, tmp, box):
    # found[i] = the value of rank ranks[i] (ascending, < n) among v[:n], all in [lo, hi): interpolated thresholds
    # narrow the interval around the ranks (a vectorized count over v each, as _select_counted's refinement), then
    # its values are copied to tmp (n + 1 slots, branch-free) and the ranks selected there. Against a quickselect
    # of all of v, whose partitions mispredict on about half the values: 0.48 -> 0.35 us per interval of 167
    # values (per column of 8192²).
    c_lo = 0
    c_hi = n
    kf = ranks[0]
    kl = ranks[m - 1]
    while c_hi - c_lo > _REFINED:
        lo, hi, c_lo, c_hi, moved = _refine(v, n, lo, hi, c_lo, c_hi, kf, kl, box)
        if not moved:
            break
    k = 0
    for j in range(n):
        t = v[j]
        tmp[k] = t
        k += (t >= lo) & (t < hi)
    for i in range(m):
        ranks[i] -= c_lo
    _select_permuting(tmp, k, ranks, m, found, ends, sample)


@serial
def _sample_spacing(sample, s, n, ranks, m, spacing):
    # spacing[i] = values per unit of quantile near rank ranks[i] of n, from the sorted sample[:s] of the n values
    # (the count sample of _select_counted, the large one of _select_sampled)
    # The span of 8 or more gaps around the rank's place (the count sample's 63 values gave, with 3 gaps, spacings
    # half the true one often enough that 2 in 5 of the next groups missed)
    half = max(4, s // 128)
    for i in range(m):
        c = int((ranks[i] + 0.5) / n * (s + 1))
        j0 = max(0, c - half)
        j1 = min(s - 1, c + half)
        spacing[i] = (np.float64(sample[j1]) - np.float64(sample[j0])) * (s + 1) / (j1 - j0)


@serial
def _prior_memory(m, dtype, cap):
    # Per-part state of _select_prior across groups for m ranks, intervals of up to cap members (see _from_prior)
    return (
        np.empty(m, dtype=dtype),  # the previous group's values of the ranks
        np.empty(m),  # values per unit of quantile near each rank
        np.zeros(5, dtype=np.int64),  # control
        np.empty(7, dtype=dtype),  # the sweep's thresholds (and a slot for _select_interval's)
        np.empty(3 * (cap + 1), dtype=dtype),  # its members
        np.zeros(6, dtype=np.int32),
        np.zeros(3, dtype=np.int64),
        np.zeros(3, dtype=np.int64),
        np.empty(cap + 1, dtype=dtype),  # _select_interval's copy of an interval's narrowed members
    )


@inline
def _from_prior(v, n, ranks, m, found, prior, ends, sample, sub, sub_found):
    # _select_prior where the previous group's values are known and no backoff is running; False: not selected.
    # control: [a previous group's values are known, groups left to select without them, the backoff, the groups
    # selected from their prior so far (for tests), the previous group's finite count]
    values_of, spacing, control, sweep, row, acc, pos, last, tmp = prior
    done = False
    if compress_usable(v, sweep, row) and control[0] == 1 and control[1] == 0:
        done = _select_prior(v, n, ranks, m, found, values_of, control[4], spacing, sweep, row, acc, pos, last, ends,
                             sample[_COUNT_SAMPLE:], tmp, sub, sub_found)  # fmt: skip
        control[2] = 0 if done else max(1, min(2 * control[2], _PRIOR_BACKOFF))
        control[1] = control[2]
        control[3] += done
    elif control[1] > 0:
        control[1] -= 1
    return done


@inline
def _remember(prior, found, m, n):
    # found[:m], of n values, becomes the next group's prior (its spacing is set by whichever selection ran)
    prior[0][:m] = found[:m]
    prior[2][0] = 1
    prior[2][4] = n


@serial
def _scratch(m, dtype):
    # Per-part scratch of _select_ranks for up to m ranks: pivot/bracket sample, bracket members, sub-ranks.
    # (the sample has room for a count sample followed by a pivot/bracket one, used by _select_counted)
    sample = np.empty(_COUNT_SAMPLE + max(_PIVOT_SAMPLE, _BRACKET_SAMPLE), dtype=dtype)
    return sample, np.empty(_MID + 1, dtype=dtype), np.empty(m, dtype=np.int64), np.empty(m, dtype=dtype)


@inline
def _rank_plan(n, quantiles, ranks, slots):
    # NumPy's virtual index (the float64 steps of numpy.percentile): ranks[2j] = prev, ranks[2j + 1] = next, then
    # slots = the order that sorts the ranks (insertion sort: at most a few dozen entries, no allocation).
    n_q = quantiles.size
    for j in range(n_q):
        virtual = (n - 1) * quantiles[j]
        if virtual >= n - 1:
            p = n - 1
            q = n - 1
        else:
            p = int(np.floor(virtual))
            q = p + 1
        ranks[2 * j] = p
        ranks[2 * j + 1] = q
    for i in range(2 * n_q):
        slots[i] = i
    for i in range(1, 2 * n_q):
        t = slots[i]
        j = i - 1
        while j >= 0 and ranks[slots[j]] > ranks[t]:
            slots[j + 1] = slots[j]
            j -= 1
        slots[j + 1] = t


@inline
def _select_group(
    values, n, quantiles, ranks, slots, ordered, found, ends, sample, mid, sub, sub_found, prev_row, next_row, prior
):
    # The prev/next order statistics of values[:n] for every quantile, written to prev_row/next_row. `prior`
    # (_prior_memory) carries the previous group's values of the ranks from one call to the next.
    _rank_plan(n, quantiles, ranks, slots)
    m = 2 * quantiles.size
    for i in range(m):
        ordered[i] = ranks[slots[i]]
    if n >= _COUNTED_FROM:
        if not _from_prior(values, n, ordered, m, found, prior, ends, sample, sub, sub_found):
            _select_counted(values, n, ordered, m, found, ends, sample, mid, sub, sub_found)
            _sample_spacing(sample, _COUNT_SAMPLE, n, ordered, m, prior[1])
        _remember(prior, found, m, n)
    else:
        _select_ranks(values, n, ordered, m, found, ends, sample, mid, sub, sub_found)
    for i in range(m):
        s = slots[i]
        if s % 2 == 0:
            prev_row[s // 2] = found[i]
        else:
            next_row[s // 2] = found[i]


@inline
def _keep_finite(values):
    # Compact the finite values to the front (branch-free) and return their count.
    finite = True  # a bool AND vectorizes at full width (an int64 count at half)
    for i in range(values.size):
        t = values[i]
        finite = finite & (t - t == 0)
    if finite:
        return np.int64(values.size)
    n = 0
    for i in range(values.size):
        t = values[i]
        values[n] = t
        n += t - t == 0
    return n


@serial
def _block_size(groups, size):
    # Groups per transposed block: as many as fit the tile, a multiple of a cache line of groups when possible
    # (rows of a block then read whole lines). Large groups take a wider buffer (_WIDE): with only a line or two
    # of groups per block, every row read would be a separate short burst (a TLB miss and a DRAM line each).
    tile = _WIDE if size >= _COUNTED_FROM else _TILE
    per = max(1, tile // max(1, size))
    if per >= _LINE:
        per = per // _LINE * _LINE
    return min(groups, per)


@serial
def _transpose_rows(x, period, g0, width, outer, buf, stride):
    # buf[t * stride + a] = x[a * period + g0 + t] for t < width, a < outer, in square tiles of _MICRO: each
    # tile row is one contiguous (vector) load of _MICRO values, stored to _MICRO group columns. Loading
    # columns (strided scalar loads) and storing rows made the whole selection of per column of 8192² 1.4x as slow.
    for a0 in range(0, outer, _MICRO):
        a1 = min(outer, a0 + _MICRO)
        for t0 in range(0, width, _MICRO):
            t1 = min(width, t0 + _MICRO)
            if t1 - t0 == _MICRO:
                for a in range(a0, a1):
                    if t0 == 0:  # the hardware prefetcher does not follow the jumps between the rows' stretches
                        ahead = (a + _TRANSPOSE_AHEAD) * period + g0
                        _prefetch_span(x, ahead, ahead + width)
                    row = x[a * period + g0 + t0 : a * period + g0 + t0 + _MICRO]
                    d = t0 * stride + a
                    for t in range(_MICRO):
                        buf[d + t * stride] = row[t]
            else:
                for a in range(a0, a1):
                    src = a * period + g0
                    for t in range(t0, t1):
                        buf[t * stride + a] = x[src + t]


@parallel
def _select_in_cache(x, outer, groups, inner, quantiles, n_parts):
    size = outer * inner
    per = _block_size(groups, size)
    n_blocks = (groups + per - 1) // per
    n_q = quantiles.size
    period = groups * inner
    stride = size + _LINE  # a padded stride: the per-group write streams of the transposition do not alias in L1
    counts = np.zeros(groups, dtype=np.int64)
    prev = np.full((groups, n_q), np.nan, dtype=x.dtype)
    nxt = np.full((groups, n_q), np.nan, dtype=x.dtype)
    for c in prange(n_parts):
        first, last = _chunk_bounds(n_blocks, n_parts, c, 1)
        buf = np.empty(per * stride, dtype=x.dtype)
        ranks = np.empty(2 * n_q, dtype=np.int64)
        slots = np.empty(2 * n_q, dtype=np.int64)
        ordered = np.empty(2 * n_q, dtype=np.int64)
        found = np.empty(2 * n_q, dtype=x.dtype)
        ends = np.empty(2 * n_q * 130 + 2, dtype=np.int64)
        sample, mid, sub, sub_found = _scratch(2 * n_q, x.dtype)
        prior = _prior_memory(2 * n_q, x.dtype, _PRIOR_CAP)
        for blk in range(first, last):
            g0 = blk * per
            width = min(groups, g0 + per) - g0
            # transpose the tile: group t's values to buf[t * size : (t + 1) * size]
            if inner == 1:
                _transpose_rows(x, period, g0, width, outer, buf, stride)
            else:
                for a in range(outer):
                    row = x[a * period + g0 * inner : a * period + (g0 + width) * inner]
                    for t in range(width):
                        dest = buf[t * stride + a * inner : t * stride + (a + 1) * inner]
                        src = row[t * inner : (t + 1) * inner]
                        for b in range(inner):
                            dest[b] = src[b]
            for t in range(width):
                values = buf[t * stride : t * stride + size]
                n = _keep_finite(values)
                g = g0 + t
                counts[g] = n
                if n:
                    _select_group(
                        values,
                        n,
                        quantiles,
                        ranks,
                        slots,
                        ordered,
                        found,
                        ends,
                        sample,
                        mid,
                        sub,
                        sub_found,
                        prev[g],
                        nxt[g],
                        prior,
                    )
    return counts, prev, nxt


@parallel
def compact_segments(values, starts, lengths, n_parts):
    """Move the finite values of each segment ``values[starts[s] : starts[s] + lengths[s]]`` to its front (in
    place, order kept) and return their counts."""
    n_seg = starts.size
    counts = np.zeros(n_seg, dtype=np.int64)
    for c in prange(n_parts):
        first, last = _chunk_bounds(n_seg, n_parts, c, 1)
        for s in range(first, last):
            counts[s] = _keep_finite(values[starts[s] : starts[s] + lengths[s]])
    return counts


@serial
def _select_sampled(v, n, ranks, m, found, big, members, bracket_ranks, bracket_found, ends, sample, mid, sub,
                    sub_found):  # fmt: skip
    """found[i] = the value of rank ranks[i] (ascending, < n) among the finite values v[:n] (n >= _SAMPLED_FROM).

    _select_counted locates each rank by a dozen or more counting passes over v. Here a sorted sample of
    _SAMPLED_SIZE values at scattered positions (_scattered) gives, per run of nearby ranks (at most two runs per
    round), _SAMPLED_STEPS thresholds spread over the sample positions within _SAMPLED_SIGMAS standard deviations
    of the runs' expected positions. One vectorized pass counts the values below every threshold: each run's ranks
    then lie in a known interval [lo, hi) of two consecutive thresholds (about 1/200 of v), which two counts of
    thresholds interpolated just outside the ranks narrow further. One more pass collects the interval's members
    (skipping blocks of 64 without one), among which the ranks are selected. An interval too large for `members`
    (heavy ties, a misleading sample) leaves its ranks to _select_counted on v.
    """
    s = big.size
    for t in range(s):
        big[t] = v[_scattered(t, n)]
    big.sort()
    steps = _SAMPLED_STEPS
    thresholds = np.empty(2 * steps, dtype=v.dtype)
    counts = np.zeros(2 * steps, dtype=np.int64)
    edges = np.empty(4, dtype=v.dtype)  # lo0, hi0, lo1, hi1
    pair = np.empty(4, dtype=v.dtype)  # refining thresholds (in v's dtype: compared as the counting pass does)
    refined = np.zeros(4, dtype=np.int64)  # the counts below them
    bounds = np.empty(4, dtype=v.dtype)  # each run's [lo, hi) from the first count
    below = np.zeros(2, dtype=np.int64)
    size = np.zeros(2, dtype=np.int64)
    firsts = np.zeros(3, dtype=np.int64)
    cap = members.size // 2
    r = 0
    while r < m:
        n_b = 0
        firsts[0] = r
        while r < m and n_b < 2:
            lo_i, hi_i = _sample_span(ranks[r], n, s)
            e = r + 1
            while e < m:
                lo_e, hi_e = _sample_span(ranks[e], n, s)
                if lo_e > hi_i:
                    break
                hi_i = max(hi_i, hi_e)
                e += 1
            lo_i = max(0, min(s - 1, lo_i))
            hi_i = max(lo_i, min(s - 1, hi_i))
            for j in range(steps):
                thresholds[n_b * steps + j] = big[lo_i + ((hi_i - lo_i) * j) // (steps - 1)]
            n_b += 1
            firsts[n_b] = e
            r = e
        n_t = n_b * steps
        counts[:] = 0
        for begin in range(0, n, _SAMPLED_BLOCK):  # a block in L1 against every threshold
            end = min(n, begin + _SAMPLED_BLOCK)
            block = v[begin:end]
            for j in range(n_t):
                counts[j] += _count_below(block, end - begin, thresholds[j])
        for q in range(2):
            edges[2 * q] = np.inf  # an empty interval (no finite value is >= inf)
            edges[2 * q + 1] = -np.inf
        for q in range(n_b):
            k0 = ranks[firsts[q]]
            k1 = ranks[firsts[q + 1] - 1]
            lo = -np.inf
            hi = np.inf
            c_lo = np.int64(0)
            c_hi = np.int64(n)
            for j in range(q * steps, (q + 1) * steps):  # counts rise with j: the last at most k0, first above k1
                if counts[j] <= k0:
                    lo = thresholds[j]
                    c_lo = counts[j]
            for j in range((q + 1) * steps - 1, q * steps - 1, -1):
                if counts[j] > k1:
                    hi = thresholds[j]
                    c_hi = counts[j]
            bounds[2 * q] = lo
            bounds[2 * q + 1] = hi
            below[q] = c_lo
            size[q] = c_hi  # the count below hi, until the refinement
            # refining thresholds: two interpolated just outside the ranks (the values are locally about uniform
            # between two consecutive thresholds), as in _select_counted; NaN: none (NaN < x is false)
            pair[2 * q] = np.nan
            pair[2 * q + 1] = np.nan
            span = c_hi - c_lo
            if span > _REFINED and -np.inf < lo and hi < np.inf:
                d = max(2, span >> 4)
                pair[2 * q] = lo + (hi - lo) * ((k0 - d + 0.5 - c_lo) / span)
                pair[2 * q + 1] = lo + (hi - lo) * ((k1 + 1 + d + 0.5 - c_lo) / span)
                for j in range(2 * q, 2 * q + 2):
                    if not (lo < pair[j] < hi):
                        pair[j] = np.nan
        # every run's refining thresholds counted in one more pass (one pass each measured ~0.2 ms more per
        # segment of 2**19)
        refined[:] = 0
        for begin in range(0, n, _SAMPLED_BLOCK):
            end = min(n, begin + _SAMPLED_BLOCK)
            block = v[begin:end]
            for j in range(2 * n_b):
                if pair[j] == pair[j]:
                    refined[j] += _count_below(block, end - begin, pair[j])
        for q in range(n_b):
            k0 = ranks[firsts[q]]
            k1 = ranks[firsts[q + 1] - 1]
            lo = bounds[2 * q]
            hi = bounds[2 * q + 1]
            c_lo = below[q]
            c_hi = size[q]
            if pair[2 * q] == pair[2 * q] and refined[2 * q] <= k0:
                lo = pair[2 * q]
                c_lo = refined[2 * q]
            if pair[2 * q + 1] == pair[2 * q + 1] and refined[2 * q + 1] > k1:
                hi = pair[2 * q + 1]
                c_hi = refined[2 * q + 1]
            below[q] = c_lo
            size[q] = c_hi - c_lo
            if size[q] < cap:  # room for the members and _collect_range's spare slot
                edges[2 * q] = lo
                edges[2 * q + 1] = hi
        l0, u0, l1, u1 = edges[0], edges[1], edges[2], edges[3]
        low_part = members[:cap]
        high_part = members[cap : 2 * cap]
        if size[0] < cap or (n_b == 2 and size[1] < cap):
            _collect_two(v, n, l0, u0, l1, u1, low_part, high_part)
        for q in range(n_b):
            k0, k1 = firsts[q], firsts[q + 1]
            part = low_part if q == 0 else high_part
            if size[q] < cap:
                for j in range(k0, k1):
                    bracket_ranks[j - k0] = ranks[j] - below[q]
                if size[q] >= _COUNTED_FROM:
                    _select_counted(part, size[q], bracket_ranks, k1 - k0, bracket_found, ends, sample, mid, sub,
                                    sub_found)  # fmt: skip
                else:
                    _select_ranks(part, size[q], bracket_ranks, k1 - k0, bracket_found, ends, sample, mid, sub,
                                  sub_found)  # fmt: skip
            else:  # heavy ties or a misleading sample: these ranks by counting over v itself
                for j in range(k0, k1):
                    bracket_ranks[j - k0] = ranks[j]
                _select_counted(v, n, bracket_ranks, k1 - k0, bracket_found, ends, sample, mid, sub, sub_found)
            for j in range(k0, k1):
                found[j] = bracket_found[j - k0]


@inline
def _scattered(t, n):
    # Position t of _select_sampled's sample: a 64-bit mix of t (splitmix64's finalizer), reduced modulo n. Evenly
    # spaced positions are a grid on images (an approx sample keeps the rows' order), and on issue 7's prediction
    # volume their quantiles were many binomial sigmas off, so most intervals missed: scattered ones behave as an
    # iid sample.
    z = np.uint64(t + 1) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return np.int64(z % np.uint64(n))


@serial
def _collect_two(v, n, l0, u0, l1, u1, low_part, high_part):
    # The values of v[:n] in [l0, u0) to low_part and those in [l1, u1) to high_part (disjoint intervals), in
    # order; each part has room for one value more than its members (see _collect_range). Blocks of 64 without a
    # member (most: the intervals hold a small share) are skipped by one vectorized test each; in a block with
    # members, a 64-bit mask of them is built branch-free and its set bits visited. Per column of 8192² (about 35
    # members per interval): 5.0 -> 1.2 us per group, against the block's values stored branch-free one by one.
    d0 = 0
    d1 = 0
    full = n - n % 64
    for i in range(0, full, 64):
        hit = False  # a bool OR vectorizes at full width (an int32 sum of the tests took twice as long)
        for j in range(64):  # a constant trip count: vectorized (a variable one measured 4x slower)
            t = v[i + j]
            hit = hit | (((t >= l0) & (t < u0)) | ((t >= l1) & (t < u1)))
        if hit:
            mask = np.uint64(0)
            for j in range(64):
                t = v[i + j]
                mask |= np.uint64(((t >= l0) & (t < u0)) | ((t >= l1) & (t < u1))) << np.uint64(j)
            while mask:
                t = v[i + trailing_zeros(mask)]
                if (t >= l0) & (t < u0):
                    low_part[d0] = t
                    d0 += 1
                else:
                    high_part[d1] = t
                    d1 += 1
                mask &= mask - np.uint64(1)
    return _collect_range(v, full, n, l0, u0, l1, u1, low_part, high_part, d0, d1)


@inline
def _collect_range(v, begin, end, l0, u0, l1, u1, low_part, high_part, d0, d1):
    # _collect_two's members among v[begin:end], appended at d0 and d1; returns the new counts. Branch-free: each
    # value is stored at both next free slots, which advance only past a member (so each part needs one slot
    # more than its members). Branches on the bracket tests mispredicted on about half of the values for ranks
    # near the middle of a segment (bracket members of 3860 values: 15 us per segment, 2.2 branch-free).
    for j in range(begin, end):
        t = v[j]
        low_part[d0] = t
        high_part[d1] = t
        d0 += np.int64((t >= l0) & (t < u0))
        d1 += np.int64((t >= l1) & (t < u1))
    return d0, d1


@serial
def _sample_span(k, n, s):
    # Sample positions [lo, hi] (lo < 0: from -inf; hi >= s: to +inf) that bracket rank k of n with high
    # probability: the rank's expected position among s sorted sample values, widened by _SAMPLED_SIGMAS
    # standard deviations of a sample quantile (binomial) and two positions of slack.
    p = (k + 0.5) / n
    centre = p * (s + 1) - 1.0
    half = _SAMPLED_SIGMAS * np.sqrt(s * p * (1.0 - p)) + 2.0
    return int(np.floor(centre - half)), int(np.ceil(centre + half))


def select_segments(values, starts, lengths, ranks, n_parts):
    """found[s, i] = the value of rank ranks[s, i] among the finite values ``values[starts[s] : starts[s] +
    lengths[s]]`` (each segment is reordered), for ranks ascending along each row (repeats allowed) and below
    the segment's length; a segment of length 0 gets NaN. The segments (samples of groups, bracket members of
    many groups) are selected in parallel, each with the in-cache selection of the small-group path; a segment
    of _COUNTED_FROM values or more first from intervals around the previous segment's values (_select_prior)."""
    return _select_segments(values, starts, lengths, ranks, n_parts)[0]


@parallel
def _select_segments(values, starts, lengths, ranks, n_parts):
    # select_segments, and the number of segments selected from their prior (for tests)
    n_seg, m = ranks.shape
    found = np.full((n_seg, m), np.nan, dtype=values.dtype)
    hits = np.zeros(n_parts, dtype=np.int64)
    for c in prange(n_parts):
        first, last = _chunk_bounds(n_seg, n_parts, c, 1)
        ends = np.empty(m * 130 + 2, dtype=np.int64)
        sample, mid, sub, sub_found = _scratch(m, values.dtype)
        row = np.empty(m, dtype=values.dtype)
        wanted = np.empty(m, dtype=np.int64)
        big = np.empty(_SAMPLED_SIZE, dtype=values.dtype)
        longest = 0
        for s in range(first, last):
            longest = max(longest, lengths[s])
        # two interval buffers of 1/64 of the longest segment each (an interval holds about 1/200 of it)
        members = np.empty(2 * max(_MID, longest // 64), dtype=values.dtype)
        bracket_ranks = np.empty(m, dtype=np.int64)
        bracket_found = np.empty(m, dtype=values.dtype)
        # a prior interval of a segment after one as large holds at most about 4.3 sqrt(n) values (more after a
        # smaller one, whose values of the ranks are less precise: after one of 1024 values, 3 n / 32 at most)
        prior = _prior_memory(m, values.dtype, max(_PRIOR_CAP, int(32 * np.sqrt(longest))))
        for s in range(first, last):
            n = lengths[s]
            if n == 0:
                continue
            for i in range(m):
                wanted[i] = ranks[s, i]
            v = values[starts[s] : starts[s] + n]
            if n >= _COUNTED_FROM and _from_prior(v, n, wanted, m, row, prior, ends, sample, sub, sub_found):
                pass
            elif n >= _SAMPLED_FROM:
                _select_sampled(v, n, wanted, m, row, big, members, bracket_ranks, bracket_found, ends, sample, mid,
                                sub, sub_found)  # fmt: skip
                _sample_spacing(big, big.size, n, wanted, m, prior[1])
            elif n >= _COUNTED_FROM:
                _select_counted(v, n, wanted, m, row, ends, sample, mid, sub, sub_found)
                _sample_spacing(sample, _COUNT_SAMPLE, n, wanted, m, prior[1])
            else:
                _select_ranks(v, n, wanted, m, row, ends, sample, mid, sub, sub_found)
            if n >= _COUNTED_FROM:
                _remember(prior, row, m, n)
            for i in range(m):
                found[s, i] = row[i]
        hits[c] = prior[2][3]
    return found, hits.sum()


# --- small groups, few extreme ranks: chains of the smallest and largest values, row by row ---------------------


@serial
def _extremes_plan(size, quantiles, side):
    """Chain lengths (smallest, largest) for every count of finite values n <= size; side[j] = 0 when quantile j
    is read from the smallest values, 1 from the largest (the shorter chain)."""
    n_low = 0
    n_high = 0
    for j in range(quantiles.size):
        low_need = 0
        high_need = 0
        for n in range(1, size + 1):
            virtual = (n - 1) * quantiles[j]
            if virtual >= n - 1:
                p = n - 1
                q = n - 1
            else:
                p = int(np.floor(virtual))
                q = p + 1
            low_need = max(low_need, q + 1)
            high_need = max(high_need, n - p)
            if min(low_need, high_need) > _EXTREMES_MAX:  # the needs only grow with n: too long already
                break
        if low_need <= high_need:
            side[j] = 0
            n_low = max(n_low, low_need)
        else:
            side[j] = 1
            n_high = max(n_high, high_need)
    return n_low, n_high


@parallel
def _select_extremes(x, outer, groups, inner, quantiles, side, n_low, n_high, n_parts):
    """group_select for small groups whose ranks are all among the n_low smallest or n_high largest finite values.

    Rows are read in tiles of _EXTREMES_WIDTH groups; per group two sorted chains (ascending smallest, descending
    largest) take each value by a compare-exchange per link, vectorized across the groups of the tile.
    """
    n_q = quantiles.size
    period = groups * inner
    w = _EXTREMES_WIDTH
    n_tiles = (groups + w - 1) // w
    counts = np.zeros(groups, dtype=np.int64)
    prev = np.full((groups, n_q), np.nan, dtype=x.dtype)
    nxt = np.full((groups, n_q), np.nan, dtype=x.dtype)
    for c in prange(n_parts):
        first, last = _chunk_bounds(n_tiles, n_parts, c, 1)
        low = np.empty((max(1, n_low), w), dtype=x.dtype)
        high = np.empty((max(1, n_high), w), dtype=x.dtype)
        up = np.empty(w, dtype=x.dtype)
        down = np.empty(w, dtype=x.dtype)
        fin = np.empty(w, dtype=np.int64)
        for tile in range(first, last):
            g0 = tile * w
            width = min(groups, g0 + w) - g0
            low[:, :] = np.inf
            high[:, :] = -np.inf
            fin[:] = 0
            for a in range(outer):
                for b in range(inner):
                    row = x[a * period + g0 * inner + b : a * period + (g0 + width) * inner]
                    for t in range(width):
                        v = row[t * inner]
                        f = v - v == 0
                        fin[t] += f
                        up[t] = v if f else np.inf
                        down[t] = v if f else -np.inf
                    for i in range(n_low):
                        link = low[i]
                        for t in range(width):
                            s = link[t]
                            u = up[t]
                            link[t] = s if s < u else u
                            up[t] = u if s < u else s
                    for i in range(n_high):
                        link = high[i]
                        for t in range(width):
                            s = link[t]
                            u = down[t]
                            link[t] = s if s > u else u
                            down[t] = u if s > u else s
            for t in range(width):
                g = g0 + t
                n = fin[t]
                counts[g] = n
                if n == 0:
                    continue
                for j in range(n_q):
                    virtual = (n - 1) * quantiles[j]
                    if virtual >= n - 1:
                        p = n - 1
                        q = n - 1
                    else:
                        p = int(np.floor(virtual))
                        q = p + 1
                    if side[j] == 0:
                        prev[g, j] = low[p, t]
                        nxt[g, j] = low[q, t]
                    else:
                        prev[g, j] = high[n - 1 - p, t]
                        nxt[g, j] = high[n - 1 - q, t]
    return counts, prev, nxt


# --- large groups: sample, brackets, one counting and collecting pass -------------------------------------------


@parallel
def _sample_brackets(x, outer, groups, inner, quantiles, n_parts):
    """Per group: a strided sample of about _BIG_SAMPLE values (whole rows, so each block of groups reads each
    sampled row once), and per quantile a bracket [low, high] of sample values around the quantile's sample rank,
    with the fraction of the sample it spans."""
    size = outer * inner
    step = max(1, -(-size // _BIG_SAMPLE))  # in group-flat index (a * inner + b) units
    n_s = -(-size // step)
    per = max(1, min(groups, _TILE // n_s))
    n_blocks = (groups + per - 1) // per
    n_q = quantiles.size
    big = np.finfo(x.dtype).max
    low = np.empty((groups, n_q), dtype=x.dtype)
    high = np.empty((groups, n_q), dtype=x.dtype)
    share = np.zeros((groups, n_q), dtype=np.float64)
    for c in prange(n_parts):
        first, last = _chunk_bounds(n_blocks, n_parts, c, 1)
        buf = np.empty(per * n_s, dtype=x.dtype)
        ranks = np.empty(2 * n_q, dtype=np.int64)
        slots = np.empty(2 * n_q, dtype=np.int64)
        found = np.empty(2 * n_q, dtype=x.dtype)
        ends = np.empty(2 * n_q * 130 + 2, dtype=np.int64)
        sample, mid, sub, sub_found = _scratch(2 * n_q, x.dtype)
        for blk in range(first, last):
            g0 = blk * per
            width = min(groups, g0 + per) - g0
            for s in range(n_s):
                flat = s * step
                a, b = flat // inner, flat % inner
                base = (a * groups + g0) * inner + b
                for t in range(width):
                    buf[t * n_s + s] = x[base + t * inner]
            for t in range(width):
                g = g0 + t
                values = buf[t * n_s : (t + 1) * n_s]
                n = _keep_finite(values)
                if n == 0:  # no finite value seen: brackets that cover every finite value
                    for j in range(n_q):
                        low[g, j] = -big
                        high[g, j] = big
                        share[g, j] = 1.0
                    continue
                for j in range(n_q):
                    q = quantiles[j]
                    target = (n - 1) * q
                    d = int(np.ceil(_BRACKET_SIGMAS * np.sqrt(n * q * (1.0 - q)))) + 2
                    ranks[2 * j] = int(np.floor(target)) - d
                    ranks[2 * j + 1] = int(np.ceil(target)) + 1 + d
                m = 0
                for i in range(2 * n_q):  # the in-range ranks, sorted
                    r = ranks[i]
                    if 0 <= r < n:
                        k = m
                        while k > 0 and slots[k - 1] > r:
                            slots[k] = slots[k - 1]
                            k -= 1
                        slots[k] = r
                        m += 1
                _select_ranks(values, n, slots, m, found, ends, sample, mid, sub, sub_found)
                for j in range(n_q):
                    r0, r1 = ranks[2 * j], ranks[2 * j + 1]
                    low[g, j] = -big
                    high[g, j] = big
                    for i in range(m):
                        if slots[i] == r0:
                            low[g, j] = found[i]
                        if slots[i] == r1:
                            high[g, j] = found[i]
                    share[g, j] = (min(r1, n - 1) - max(r0, 0) + 1) / n
    return low, high, share


@serial
def _bracket_runs(row, inner, fin, below, flags, low_t, high_t):
    # _bracket_pass for one row with inner > 1: scalar bracket bounds per run of inner values.
    n_q, groups = low_t.shape
    for g in range(groups):
        seg = row[g * inner : (g + 1) * inner]
        mark = flags[g * inner : (g + 1) * inner]
        n = 0
        for b in range(inner):
            t = seg[b]
            n += t - t == 0
            mark[b] = 0
        fin[g] += n
        for j in range(n_q):
            lo, hi = low_t[j, g], high_t[j, g]
            under = 0
            for b in range(inner):
                t = seg[b]
                under += (t < lo) & (t > -np.inf)
                mark[b] |= np.uint8((t >= lo) & (t <= hi))
            below[j, g] += under


@parallel
def _bracket_pass(x, outer, groups, inner, low_t, high_t, base, cap, dest, n_parts):
    """One pass over the rows: finite[c, g], below[c, j, g] = #{x < low[j, g]} and the members
    low <= x <= high of bracket (j, g), copied to dest[c, base[j, g] + k] for k < cap[j, g]; written[c, j, g]
    counts them all (more than cap: the region overflowed). low_t/high_t/base/cap are (Q, G)."""
    n_q = low_t.shape[0]
    period = groups * inner
    finite = np.zeros((n_parts, groups), dtype=np.int64)
    below = np.zeros((n_parts, n_q, groups), dtype=np.int64)
    written = np.zeros((n_parts, n_q, groups), dtype=np.int64)
    for c in prange(n_parts):
        a0, a1 = _chunk_bounds(outer, n_parts, c, 1)
        flags = np.zeros(-(-period // 8) * 8, dtype=np.uint8)
        words = flags.view(np.uint64)
        fin = finite[c]
        region = dest[c]
        done = written[c]
        for a in range(a0, a1):
            row = x[a * period : (a + 1) * period]
            if inner == 1:
                for g in range(groups):
                    t = row[g]
                    fin[g] += t - t == 0
                    flags[g] = 0
                for j in range(n_q):
                    lo_j, hi_j, bel = low_t[j], high_t[j], below[c, j]
                    for g in range(groups):
                        t = row[g]
                        bel[g] += (t < lo_j[g]) & (t > -np.inf)  # finite values only: -inf is not below
                        flags[g] |= np.uint8((t >= lo_j[g]) & (t <= hi_j[g]))
            else:
                _bracket_runs(row, inner, fin, below[c], flags, low_t, high_t)
            for w in range(words.size):
                if words[w] == 0:
                    continue
                for i in range(8 * w, min(period, 8 * w + 8)):
                    if flags[i]:
                        t = row[i]
                        g = i // inner
                        for j in range(n_q):
                            if t >= low_t[j, g] and t <= high_t[j, g]:
                                k = done[j, g]
                                if k < cap[j, g]:
                                    region[base[j, g] + k] = t
                                done[j, g] = k + 1
    return finite, below, written


@parallel
def _finish_brackets(quantiles, finite, below, written, base, cap, dest, n_parts):
    """Per group: counts, and prev/next from the collected members where each quantile's ranks fell inside its
    bracket; missing[g, j] marks those that did not (or whose regions overflowed)."""
    parts, n_q, groups = below.shape
    counts = np.zeros(groups, dtype=np.int64)
    prev = np.full((groups, n_q), np.nan, dtype=dest.dtype)
    nxt = np.full((groups, n_q), np.nan, dtype=dest.dtype)
    missing = np.zeros((groups, n_q), dtype=np.bool_)
    for c in prange(n_parts):
        g0, g1 = _chunk_bounds(groups, n_parts, c, 1)
        ranks = np.empty(2, dtype=np.int64)
        found = np.empty(2, dtype=dest.dtype)
        ends = np.empty(2 * 130 + 2, dtype=np.int64)
        sample, mid, sub, sub_found = _scratch(2, dest.dtype)
        for g in range(g0, g1):
            n = 0
            for p in range(parts):
                n += finite[p, g]
            counts[g] = n
            if n == 0:
                continue
            for j in range(n_q):
                virtual = (n - 1) * quantiles[j]
                if virtual >= n - 1:
                    r0 = n - 1
                    r1 = n - 1
                else:
                    r0 = int(np.floor(virtual))
                    r1 = r0 + 1
                under = 0
                total = 0
                overflow = False
                for p in range(parts):
                    under += below[p, j, g]
                    total += written[p, j, g]
                    overflow |= written[p, j, g] > cap[j, g]
                if overflow or r0 < under or r1 >= under + total:
                    missing[g, j] = True
                    continue
                members = np.empty(total, dtype=dest.dtype)
                k = 0
                for p in range(parts):
                    w = written[p, j, g]
                    members[k : k + w] = dest[p, base[j, g] : base[j, g] + w]
                    k += w
                ranks[0] = r0 - under
                ranks[1] = r1 - under
                _select_ranks(members, total, ranks, 2, found, ends, sample, mid, sub, sub_found)
                prev[g, j] = found[0]
                nxt[g, j] = found[1]
    return counts, prev, nxt, missing


# --- radix fallback: exact ranks over the rows, 8 key bits per pass ----------------------------------------------


@inline
def _key(t, wide):
    # Order-preserving unsigned key of a float's bits (negatives: every bit flipped; positives: the sign bit).
    if wide:
        w = np.uint64(t)
        return w ^ (np.uint64(0xFFFFFFFFFFFFFFFF) if w >> np.uint64(63) else np.uint64(0x8000000000000000))
    w = np.uint64(t)
    return w ^ (np.uint64(0xFFFFFFFF) if w >> np.uint64(31) else np.uint64(0x80000000))


@parallel
def _radix_pass(bits, outer, groups, inner, first_pair, last_pair, prefix, shift, n_parts):
    """hist[c, p, d] = #finite values of pair p's group (pairs first_pair[g]:last_pair[g]) whose key matches
    prefix[p] above bit shift + 8, with digit d at bit shift."""
    n_pairs = prefix.size
    wide = bits.itemsize == 8
    exponent = np.uint64(0x7FF0000000000000) if wide else np.uint64(0x7F800000)
    period = groups * inner
    hist = np.zeros((n_parts, n_pairs, 256), dtype=np.int64)
    digit = np.uint64(shift)
    above = np.uint64(shift + 8)
    top = 64 if wide else 32
    for c in prange(n_parts):
        a0, a1 = _chunk_bounds(outer, n_parts, c, 1)
        h = hist[c]
        for a in range(a0, a1):
            for g in range(groups):
                p0, p1 = first_pair[g], last_pair[g]
                if p0 == p1:
                    continue
                for b in range(inner):
                    w = np.uint64(bits[a * period + g * inner + b])
                    if w & exponent == exponent:
                        continue
                    k = _key(w, wide)
                    d = (k >> digit) & np.uint64(255)
                    for p in range(p0, p1):
                        if shift + 8 >= top or (k >> above) == prefix[p]:
                            h[p, d] += 1
    return hist


def _radix_ranks(x, outer, groups, inner, pair_group, pair_rank, n_parts):
    """Values of rank pair_rank[p] among the finite values of group pair_group[p] (pairs sorted by group)."""
    wide = x.itemsize == 8
    bits = x.view(np.uint64 if wide else np.uint32)
    n_bits = 64 if wide else 32
    values = np.empty(pair_group.size, dtype=x.dtype)
    for s in range(0, pair_group.size, _RADIX_PAIRS):
        pg = pair_group[s : s + _RADIX_PAIRS]
        rank = pair_rank[s : s + _RADIX_PAIRS].astype(np.int64)
        first = np.searchsorted(pg, np.arange(groups), side="left").astype(np.int64)
        last = np.searchsorted(pg, np.arange(groups), side="right").astype(np.int64)
        prefix = np.zeros(pg.size, dtype=np.uint64)
        for shift in range(n_bits - 8, -1, -8):
            hist = _radix_pass(bits, outer, groups, inner, first, last, prefix, shift, n_parts).sum(axis=0)
            cum = np.cumsum(hist, axis=1)
            d = np.argmax(cum > rank[:, None], axis=1)
            rank = rank - np.where(d > 0, cum[np.arange(pg.size), np.maximum(d - 1, 0)], 0)
            prefix = (prefix << np.uint64(8)) | d.astype(np.uint64)
        top = np.uint64(1) << np.uint64(n_bits - 1)
        ones = np.uint64((1 << n_bits) - 1)
        raw = np.where(prefix & top, prefix ^ top, prefix ^ ones)
        values[s : s + pg.size] = raw.astype(np.uint64 if wide else np.uint32).view(x.dtype)
    return values


def _select_bracketed(x, outer, groups, inner, quantiles, n_parts):
    n_q = quantiles.size
    size = outer * inner
    low, high, share = _sample_brackets(x, outer, groups, inner, quantiles, n_parts)
    # per-part capacity: the bracket's share of the group, spread over the parts, with a margin
    cap = (np.ceil(share.T * size * 1.25 / n_parts) + 256).astype(np.int64)
    cap = np.minimum(cap, -(-size // 1))
    base = np.zeros((n_q, groups), dtype=np.int64)
    flat = cap.reshape(-1)
    base.reshape(-1)[1:] = np.cumsum(flat)[:-1]
    dest = np.empty((n_parts, int(flat.sum())), dtype=x.dtype)
    low_t = np.ascontiguousarray(low.T)
    high_t = np.ascontiguousarray(high.T)
    finite, below, written = _bracket_pass(x, outer, groups, inner, low_t, high_t, base, cap, dest, n_parts)
    counts, prev, nxt, missing = _finish_brackets(quantiles, finite, below, written, base, cap, dest, n_parts)
    del dest
    if missing.any():
        g_idx, j_idx = np.nonzero(missing)
        n = counts[g_idx]
        virtual = (n - 1) * quantiles[j_idx]
        top = virtual >= n - 1
        r0 = np.where(top, n - 1, np.floor(np.where(top, 0.0, virtual)).astype(np.int64))
        r1 = np.where(top, n - 1, r0 + 1)
        pair_group = np.repeat(g_idx, 2)
        pair_rank = np.stack([r0, r1], axis=1).reshape(-1)
        values = _radix_ranks(x, outer, groups, inner, pair_group, pair_rank, n_parts).reshape(-1, 2)
        prev[g_idx, j_idx] = values[:, 0]
        nxt[g_idx, j_idx] = values[:, 1]
    return counts, prev, nxt


def group_select(x, outer, groups, inner, quantiles, n_parts):
    """Per group of the C-ordered (A, G, B) array x: finite count and the order statistics NumPy's "linear"
    method interpolates between, over the finite values of each group (NaN for a group without any).

    Returns (counts[G], prev[G, Q], next[G, Q]); prev/next are NaN for a group without finite values. Extra
    memory: the output, about n_parts * _TILE values (n_parts * _WIDE for groups of _COUNTED_FROM or more), and
    for groups larger than _TILE the bracket members (a few percent of the input for two percentiles). Small
    groups whose ranks are all near the ends (few chain links) are read row by row (_select_extremes).
    """
    quantiles = np.ascontiguousarray(quantiles, dtype=np.float64)
    size = outer * inner
    if size <= _TILE:
        side = np.zeros(quantiles.size, dtype=np.int64)
        n_low, n_high = _extremes_plan(size, quantiles, side)
        if n_low + n_high <= _EXTREMES_MAX:
            return _select_extremes(x, outer, groups, inner, quantiles, side, n_low, n_high, n_parts)
        return _select_in_cache(x, outer, groups, inner, quantiles, n_parts)
    return _select_bracketed(x, outer, groups, inner, quantiles, n_parts)


@parallel
def interpolate_pairs(counts, prev, following, quantiles, out, n_parts):
    """NumPy's "linear" percentiles from group_select's result: out[j, g] (float64) for finite count counts[g]
    and the order statistics prev[g, j] <= following[g, j] (in the dtype NumPy interpolates in), step for step as
    fastquant._select.lerp and the gamma of fastquant._select.percentiles compute them (the difference in that
    dtype, the rest in float64), then + 0.0. NaN where the statistics are NaN (a group without finite values).
    One pass over the groups, where the same steps as NumPy array operations on a million groups took 60 ms."""
    groups = counts.size
    for c in prange(n_parts):
        begin, end = _chunk_bounds(groups, n_parts, c, 1)
        for g in range(begin, end):
            n = counts[g]
            for j in range(quantiles.size):
                virtual = (n - 1) * quantiles[j]
                gamma = virtual + 1 if virtual >= n - 1 else virtual - np.floor(virtual)
                a, b = prev[g, j], following[g, j]
                diff = b - a
                if gamma >= 0.5:
                    value = np.float64(b) - np.float64(diff) * (1 - gamma)
                else:
                    value = np.float64(a) + np.float64(diff) * gamma
                out[j, g] = value + 0.0


# --- finite min / max per group -------------------------------------------------------------------------------


# --- conversion with per-group parameters along rows -----------------------------------------------------------


@inline
def _convert_row(row, dest, lo, factor, lo_scaled, scale, nan_level, mode, lo32, scale32, edge, x, ahead):
    # One row of G (inner == 1), per-element parameters from contiguous arrays, in blocks of _PREFETCH_BLOCK,
    # each after prefetching x[ahead + b : ahead + e] (a stretch that a later call converts). Mode 0 (ordinary
    # ranges, NaN level 0) is done in float32 arithmetic where `edge` allows it, each block redone in float64
    # when some element came near a rounding edge (see convert._levels_float32), so the levels are always the
    # float64 ones: 0.25 -> 0.15 ns per element in cache on one thread, and per column of 8192² 20 -> 15 ms.
    for b in range(0, row.size, _PREFETCH_BLOCK):
        e = min(row.size, b + _PREFETCH_BLOCK)
        _prefetch_span(x, ahead + b, ahead + e)
        xs, ds, lb, sb = row[b:e], dest[b:e], lo[b:e], scale[b:e]
        if mode == 0:
            if edge == 0.0 or _levels_float32_lanes(xs, ds, lo32[b:e], scale32[b:e], edge):
                for g in range(xs.size):
                    ds[g] = _level_clamped(np.float64(xs[g]), lb[g], sb[g])
        elif mode == 1:
            for g in range(xs.size):
                ds[g] = _level_clamped_nan(np.float64(xs[g]), lb[g], sb[g], nan_level)
        else:
            fb, lsb = factor[b:e], lo_scaled[b:e]
            for g in range(xs.size):
                ds[g] = _level(np.float64(xs[g]), lb[g], fb[g], lsb[g], sb[g], nan_level)


@serial
def _convert_row_to(row, dest, lo, factor, lo_scaled, scale, nan_level, mode, lo32, scale32, edge, x, ahead, lut):
    # _convert_row into dest (grey), or piece by piece into a scratch buffer whose levels are painted (colour).
    if lut is None:
        _convert_row(row, dest, lo, factor, lo_scaled, scale, nan_level, mode, lo32, scale32, edge, x, ahead)
        return
    scratch = np.empty(PAINT_BLOCK, dtype=np.uint8)
    for b in range(0, row.size, PAINT_BLOCK):
        e = min(row.size, b + PAINT_BLOCK)
        levels = scratch[: e - b]
        _convert_row(
            row[b:e], levels, lo[b:e], factor[b:e], lo_scaled[b:e], scale[b:e], nan_level, mode, lo32[b:e],
            scale32[b:e], edge, x, ahead + b,
        )  # fmt: skip
        paint(row[b:e], levels, dest[b:e], lut)


@serial
def _expand(values, inner):
    # Per-group parameters repeated inner times: one entry per element of a row of G * inner.
    out = np.empty(values.size * inner, dtype=np.float64)
    for g in range(values.size):
        out[g * inner : (g + 1) * inner] = values[g]
    return out


@serial
def _float32_params(lo, scale, b0, b1, edge):
    # lo[b0:b1] and scale[b0:b1] as float32 for the float32 levels (empty when edge is 0: not used). Per tile,
    # in the thread that converts it: a serial pass over a million groups' parameters cost more than it saved.
    n = b1 - b0 if edge > 0.0 else 0
    lo32 = np.empty(n, dtype=np.float32)
    scale32 = np.empty(n, dtype=np.float32)
    for j in range(n):
        lo32[j] = lo[b0 + j]
        scale32[j] = scale[b0 + j]
    return lo32, scale32


@parallel
def convert_rows(x, out, outer, groups, inner, lo, factor, lo_scaled, scale, nan_level, n_parts, lut=None):
    """out[i] = level of x[i] with the parameters of its group, row by row of G * inner elements.

    Every group ordinary (factor 1, finite positive scale) takes the clamped level (mode 0, or 1 with a nonzero
    NaN level); any other range takes the general rule for the whole call (mode 2). With inner > 1 the
    parameters are expanded once to a row's length (G * inner values each).
    """
    ordinary = True
    for g in range(groups):
        if factor[g] != 1.0 or not 0.0 < scale[g] < np.inf:
            ordinary = False
    mode = 2
    if ordinary:
        mode = 0 if nan_level == 0.0 else 1
    if inner == 1:
        lo_r, factor_r, lo_scaled_r, scale_r = lo, factor, lo_scaled, scale
    else:
        lo_r, factor_r = _expand(lo, inner), _expand(factor, inner)
        lo_scaled_r, scale_r = _expand(lo_scaled, inner), _expand(scale, inner)
    # float32 arithmetic for mode 0 where every group allows it (see _common.float32_lane_edge)
    edge = float32_lane_edge(x, lo, factor, scale, nan_level) if mode == 0 else np.float32(0.0)
    period = groups * inner
    if period <= _ROW_WHOLE:
        lo32, scale32 = _float32_params(lo_r, scale_r, 0, period, edge)
        ahead = _PREFETCH_AHEAD // x.itemsize
        for c in prange(n_parts):
            a0, a1 = _chunk_bounds(outer, n_parts, c, 1)
            if mode == 0 and lut is None:  # a literal mode 0 (see _convert_tile)
                _convert_tile(
                    x, out, a0 * period, period, period, a1 - a0, lo_r, factor_r, lo_scaled_r, scale_r, nan_level,
                    0, lo32, scale32, edge, ahead,
                )  # fmt: skip
                continue
            for a in range(a0, a1):
                row = x[a * period : (a + 1) * period]
                dest = out[a * period : (a + 1) * period]
                _convert_row_to(
                    row, dest, lo_r, factor_r, lo_scaled_r, scale_r, nan_level, mode, lo32, scale32, edge, x,
                    a * period + ahead, lut,
                )  # fmt: skip
        return
    # Long rows (a million groups per row): tiles of the row, each over every row, so that a tile's parameters
    # stay in cache instead of streaming all the parameters once per row. Each row's stretch prefetches the
    # same stretch of the next row (the hardware prefetcher does not follow the jumps between rows).
    n_tiles = (period + _ROW_TILE - 1) // _ROW_TILE
    for c in prange(n_parts):
        t0, t1 = _chunk_bounds(n_tiles, n_parts, c, 1)
        for t in range(t0, t1):
            b0, b1 = t * _ROW_TILE, min(period, (t + 1) * _ROW_TILE)
            lo32, scale32 = _float32_params(lo_r, scale_r, b0, b1, edge)
            if mode == 0 and lut is None:  # a literal mode 0 (see _convert_tile)
                _convert_tile(
                    x, out, b0, b1 - b0, period, outer, lo_r[b0:b1], factor_r[b0:b1], lo_scaled_r[b0:b1],
                    scale_r[b0:b1], nan_level, 0, lo32, scale32, edge, period,
                )  # fmt: skip
                continue
            for a in range(outer):
                base = a * period
                _convert_row_to(
                    x[base + b0 : base + b1], out[base + b0 : base + b1], lo_r[b0:b1], factor_r[b0:b1],
                    lo_scaled_r[b0:b1], scale_r[b0:b1], nan_level, mode, lo32, scale32, edge, x,
                    base + period + b0, lut,
                )  # fmt: skip


# --- one-sided limits and conversion fused, for long rows -----------------------------------------------------

_FUSED_TILE = 1 << 20  # bytes of input per tile of minmax_convert_rows, in tiles of 1024 to 4096 columns. Without the
# next tile's prefetch, wider tiles are faster where rows are few (64×1024² vmax=1: 15.0-15.5 ms with 1024 columns,
# 12.8-13.0 with 4096; 16×4096²: 19-22 -> 17-18) and slower where they are many (256×512²: 16-18 -> 19-21 ms)
_FUSED_MIN_WIDTH = 1 << 10
_FUSED_MAX_WIDTH = 1 << 12


@inline
def _single_term(q, lo, hi, defined, lo_c, factor_c, lo_scaled_c, scale_c):
    # Group q's terms from its limits (defined: both are not NaN), as _tile_terms makes them; returns the span.
    hi = lo if lo > hi else hi
    span = (0.0 if hi == lo else hi - lo) if defined else 0.0
    terms_lo = lo if defined else 0.0
    lo_c[q] = terms_lo
    factor_c[q] = 1.0
    lo_scaled_c[q] = terms_lo * 1.0
    scale_c[q] = 255.0 / span
    return span


@serial
def _single_terms(keys_lo, keys_hi, limit, upper_given, limits, lo_c, factor_c, lo_scaled_c, scale_c):
    # _tile_terms for groups of one column each and one given limit: the same terms, in a loop over the groups
    # with selects instead of branches and one loop per side, so that it vectorizes (1.3 ns per group instead of
    # 4.3). The limits are written only where the caller reads them (limits[q, 0]: NaN if undefined, else 0).
    nonpositive = False
    rescaled = False
    if upper_given:
        for q in range(lo_c.size):
            data = _min_value(keys_lo[q])
            defined = (data - data == 0.0) & (limit == limit)  # some finite value, and a limit that is not NaN
            span = _single_term(q, data, limit, defined, lo_c, factor_c, lo_scaled_c, scale_c)
            nonpositive = nonpositive | (not span > 0.0)
            rescaled = rescaled | ((span > 0.0) & (not (span < np.inf and span >= _MIN_PLAIN_SPAN)))
    else:
        for q in range(lo_c.size):
            data = _max_value(keys_hi[q])
            defined = (data - data == 0.0) & (limit == limit)
            span = _single_term(q, limit, data, defined, lo_c, factor_c, lo_scaled_c, scale_c)
            nonpositive = nonpositive | (not span > 0.0)
            rescaled = rescaled | ((span > 0.0) & (not (span < np.inf and span >= _MIN_PLAIN_SPAN)))
    if nonpositive:  # state 1 (an undefined group makes it so), when the caller reads limits[q, 0]
        for q in range(lo_c.size):
            data = _min_value(keys_lo[q]) if upper_given else _max_value(keys_hi[q])
            limits[q, 0] = 0.0 if (data - data == 0.0) & (limit == limit) else np.nan
    return 2 if rescaled else (1 if nonpositive else 0)


@serial
def _tile_terms(keys_lo, keys_hi, g0, run, given, upper_given, limits, lo_c, factor_c, lo_scaled_c, scale_c):
    # The conversion terms of the groups of a tile from their key accumulators and the given limit, step for
    # step as _engine.exact_limits, _engine.convert_pass and _levels.scale_terms make them (see
    # minmax_convert_rows), expanded to the tile's columns. limits[q, 0] is NaN for an undefined group (then the
    # state is not 0; with state 0 the limits may be left unwritten).
    # Returns 0 (ordinary: every group factor 1 and 0 < scale < inf), 1 (some group has an empty range, scale
    # inf) or 2 (some group needs a rescaled span: the caller takes the two passes).
    if run == 1 and given.size == 1:
        return _single_terms(keys_lo, keys_hi, given[0], upper_given, limits, lo_c, factor_c, lo_scaled_c, scale_c)
    state = 0
    _fold_store(keys_lo, keys_hi, limits, 0, run, False)
    one = given.size == 1
    for q in range(keys_lo.size // run):
        data_lo, data_hi = limits[q, 0], limits[q, 1]
        # no finite value: (inf, -inf); only the side that is not given is reduced
        empty = (data_lo == np.inf) if upper_given else (data_hi == -np.inf)
        limit = given[0] if one else given[g0 + q]
        if upper_given:
            lo, hi = (np.nan if empty else data_lo), limit
        else:
            lo, hi = limit, (np.nan if empty else data_hi)
        if lo > hi:
            hi = lo
        if lo != lo or hi != hi:
            limits[q, 0] = np.nan
            terms_lo, span = 0.0, 0.0  # placeholders: the group's columns are overwritten with the NaN level
        else:
            limits[q, 0], limits[q, 1] = lo, hi
            # hi == lo (0.0 and -0.0 too): the span is +0.0 and the scale +inf, as convert_pass makes them
            terms_lo, span = lo, (0.0 if hi == lo else hi - lo)
        if not (span > 0.0):
            state = max(state, 1)
        elif not (span < np.inf and span >= _MIN_PLAIN_SPAN):
            state = 2
        scale = 255.0 / span
        for b in range(q * run, (q + 1) * run):
            lo_c[b], factor_c[b], lo_scaled_c[b], scale_c[b] = terms_lo, 1.0, terms_lo * 1.0, scale
    return state


@inline
def _convert_tile(
    x, out, k0, n, period, outer, lo, factor, lo_scaled, scale, nan_level, mode, lo32, scale32, edge, ahead
):
    # convert_rows' loop over the rows of one tile of columns (k0 ... k0 + n), each row prefetching the row at
    # `ahead` elements from it. Called with a literal mode 0 where it applies: with a mode only known at run time
    # the loops of _convert_row did not vectorize as well (64×1024², fused: 15.1 -> 10.5 ms).
    for a in range(outer):
        base = a * period + k0
        _convert_row(
            x[base : base + n], out[base : base + n], lo, factor, lo_scaled, scale, nan_level, mode, lo32, scale32,
            edge, x, base + ahead,
        )  # fmt: skip


@parallel
def minmax_convert_rows(x, out, outer, n_groups, run, given, upper_given, nan_level, n_parts):
    """One-sided limits and the conversion in one read of x, for long rows (per pixel across channels): the
    fused form of finite_minmax_columns followed by convert_rows, for a whole (A, G, B) array.

    upper_given: the upper limits are `given` ((G,) or (1,) float64) and the lower ones the groups' finite
    minima; else the lower limits are given and the upper ones the finite maxima. A lower limit above the upper
    one raises the upper one to it; a group without finite values (or with a NaN given limit) is undefined: its
    elements become nan_level. The columns are cut into tiles of whole groups (1024 to 4096 columns, see
    _FUSED_TILE); each part reduces a tile over all rows, makes its groups' terms, and converts the tile right after
    (from whatever cache level still holds it).

    Returns 2 when some group needs a rescaled span (span below _levels.MIN_PLAIN_SPAN or infinite; out is then
    incomplete and the caller converts with the general terms), else 0.
    """
    period = n_groups * run
    columns = min(_FUSED_MAX_WIDTH, max(_FUSED_MIN_WIDTH, _FUSED_TILE // max(1, outer * x.itemsize)))
    width = run * max(1, columns // run)
    n_tiles = (period + width - 1) // width
    worst = np.zeros(n_parts, dtype=np.int64)
    for c in prange(n_parts):
        t0, t1 = _chunk_bounds(n_tiles, n_parts, c, 1)
        none_lo, none_hi = _key_bounds(x[0])
        keys_lo = np.full(width, none_lo)
        keys_hi = np.full(width, none_hi)
        lo_c = np.empty(width)
        factor_c = np.empty(width)
        lo_scaled_c = np.empty(width)
        scale_c = np.empty(width)
        limits = np.empty((width // run, 2))
        for t in range(t0, t1):
            k0 = t * width
            n = min(period, k0 + width) - k0
            lo_t, hi_t = keys_lo[:n], keys_hi[:n]
            lo_t[:] = none_lo
            hi_t[:] = none_hi
            # only the side that is not given (64×1024²: 12.5-13.3 -> 12.3-12.5 ms)
            for a in range(0, outer - 7, 8):
                _lanes_side_block8(x, a * period + k0, period, lo_t if upper_given else hi_t, upper_given)
            for a in range(outer - outer % 8, outer):
                _lanes_block(x[a * period + k0 : a * period + k0 + n], lo_t, hi_t)
            tile_limits = limits[: n // run]
            lo_n, factor_n, lo_scaled_n, scale_n = lo_c[:n], factor_c[:n], lo_scaled_c[:n], scale_c[:n]
            state = _tile_terms(
                lo_t, hi_t, k0 // run, run, given, upper_given, tile_limits, lo_n, factor_n, lo_scaled_n, scale_n
            )
            worst[c] = max(worst[c], state)
            if state == 2:
                continue
            # No prefetch of the part's next tile as this one is converted: the 64 rows of a 64×1024² tile alias
            # in cache (a power-of-two stride), so the prefetched lines evicted each other (18.0-20.1 ms with it,
            # 15.8-19.0 without, alternated in one process)
            ahead = -x.size
            if state == 0 and nan_level == 0.0:
                edge = float32_lane_edge(x, lo_n, factor_n, scale_n, nan_level)
                lo32, scale32 = _float32_params(lo_n, scale_n, 0, n, edge)
                _convert_tile(
                    x, out, k0, n, period, outer, lo_n, factor_n, lo_scaled_n, scale_n, nan_level, 0, lo32,
                    scale32, edge, ahead,
                )  # fmt: skip
            else:
                mode = 2 if state == 1 else 1
                lo32, scale32 = _float32_params(lo_n, scale_n, 0, n, np.float32(0.0))
                _convert_tile(
                    x, out, k0, n, period, outer, lo_n, factor_n, lo_scaled_n, scale_n, nan_level, mode, lo32,
                    scale32, np.float32(0.0), ahead,
                )  # fmt: skip
            for q in range(n // run if state != 0 else 0):  # an undefined group makes the state 1
                if tile_limits[q, 0] != tile_limits[q, 0]:
                    for a in range(outer):
                        base = a * period + k0 + q * run
                        out[base : base + run] = np.uint8(nan_level)
    state = 0
    for c in range(n_parts):
        state = max(state, worst[c])
    return 2 if state == 2 else 0
