"""Level kernels beyond the fused 8-bit linear ones: 16-bit linear levels, and the levels of a non-linear stretch
(counts of per-group thresholds), over the ``(A, G, B)`` walk of the run kernels (any layout, runs of ``B``).

A stretch level is the number of the group's thresholds ``<= x`` (between the limits). A per-group table of
guesses, indexed by the element's bucket of the range, gives a level that is then moved up or down until
``thresholds[level - 1] <= x < thresholds[level]``: the exact count for any guess (so rounding in the bucket index
cannot change a level), in about one step for the usual stretches. No transcendental function per element.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .._jit import inline, parallel, serial
from ._common import PAINT_BLOCK, _chunk_bounds, _maxnum, level_target, paint, scratch_for
from .convert import _PREFETCH_BLOCK, _prefetch_ahead


@inline
def _level16(v, lo, factor, lo_scaled, scale, nan_level):
    # _common._level with 65535 levels: the same argument (capping at the top and forcing 0 at v <= lo give the
    # spec's three-way rule; the cast sees [0, 65535] only).
    t = (v * factor - lo_scaled) * scale
    t = 65535.0 if t > 65535.0 else t
    t = 0.0 if v <= lo else t
    t = nan_level if v != v else t
    return np.uint16(np.rint(t))


@inline
def _level16_clamped(v, lo, scale):
    # _level16 for an ordinary range (factor 1, lo < hi) and NaN level 0: as _common._level_clamped.
    t = _maxnum((v - lo) * scale, 0.0)
    t = 65535.0 if 65535.0 < t else t
    return np.uint16(np.rint(t))


@serial
def _levels16_run(x, out, lo, factor, lo_scaled, scale, nan_level):
    ordinary = factor == 1.0 and 0.0 < scale < np.inf and nan_level == 0.0
    for begin in range(0, x.size, _PREFETCH_BLOCK):
        end = min(x.size, begin + _PREFETCH_BLOCK)
        _prefetch_ahead(x, begin, end)
        xs, dest = x[begin:end], out[begin:end]
        if ordinary:
            for i in range(xs.size):
                dest[i] = _level16_clamped(np.float64(xs[i]), lo, scale)
        else:
            for i in range(xs.size):
                dest[i] = _level16(np.float64(xs[i]), lo, factor, lo_scaled, scale, nan_level)


@parallel
def levels16_runs(x, out, n_groups, run, lo, factor, lo_scaled, scale, nan_level, n_chunks):
    """out[i] (uint16) = 16-bit level of x[i] with the limits of its group ((i // run) % n_groups)."""
    n = x.size
    for c in prange(n_chunks):
        begin, end = _chunk_bounds(n, n_chunks, c, 1)
        i = begin
        while i < end:
            g = (i // run) % n_groups
            stop = min(end, i + run - i % run)
            _levels16_run(x[i:stop], out[i:stop], lo[g], factor[g], lo_scaled[g], scale[g], nan_level)
            i = stop


@inline
def _threshold_level(v, lo, hi, steps, guesses, bucket_scale, nan_level):
    top = steps.size
    if v != v:
        return nan_level
    if v <= lo:
        return 0
    if v >= hi:
        return top
    b = (v - lo) * bucket_scale
    bucket = np.int64(min(max(b, 0.0), guesses.size - 1.0))
    level = np.int64(guesses[bucket])
    while level < top and v >= steps[level]:
        level += 1
    while level > 0 and v < steps[level - 1]:
        level -= 1
    return level


@serial
def _threshold_run(x, out, lo, hi, steps, guesses, bucket_scale, nan_level, lut):
    scratch = scratch_for(out, lut, PAINT_BLOCK)
    for begin in range(0, x.size, PAINT_BLOCK):
        end = min(x.size, begin + PAINT_BLOCK)
        levels = level_target(out, scratch, begin, end, lut)
        xs = x[begin:end]
        for i in range(xs.size):
            levels[i] = _threshold_level(np.float64(xs[i]), lo, hi, steps, guesses, bucket_scale, nan_level)
        paint(xs, levels, out[begin:end], lut)


@parallel
def threshold_runs(x, out, n_groups, run, lo, hi, steps, guesses, bucket_scale, nan_level, n_chunks, lut=None):
    """out[i] = the number of thresholds steps[g] (non-decreasing, (G, T)) at or below x[i], 0 at or below lo[g]
    and T at or above hi[g], `nan_level` for NaN; g = (i // run) % n_groups. guesses (G, K): a level near the
    count at each of K buckets of [lo, hi), bucket_scale = K / (hi - lo) (0 where that is not finite).

    With a colour table `lut` (see ``_common``), out is (n, C) uint8 and receives the colours of the levels.
    """
    n = x.size
    for c in prange(n_chunks):
        begin, end = _chunk_bounds(n, n_chunks, c, 1)
        i = begin
        while i < end:
            g = (i // run) % n_groups
            stop = min(end, i + run - i % run)
            _threshold_run(x[i:stop], out[i:stop], lo[g], hi[g], steps[g], guesses[g], bucket_scale[g], nan_level, lut)
            i = stop
