"""The argmax kernel of :func:`fastquant.labels`: the winning class per pixel, in one pass over the scores."""

from __future__ import annotations

import numpy as np
from numba import prange

from .._jit import inline, parallel, serial
from ._common import _chunk_bounds

_PIXEL_BLOCK = 2048  # pixels whose running maxima stay in L1 while the class planes stream past


@serial
def _argmax_planes(x, a, classes, inner, b0, b1, best, winner):
    # Pixels [b0, b1) of outer index a, every class plane in turn: `best` the largest score so far (in the
    # scores' own type, so integers compare exactly), `winner` its class. best starts as class 0's score; a later
    # score takes over when strictly larger (so ties go to the lowest class, as numpy.argmax), or while best is
    # still NaN (so NaN never wins over a number, and -inf can). Selects only.
    m = b1 - b0
    first = x[a * classes * inner + b0 : a * classes * inner + b0 + m]
    for j in range(m):
        best[j] = first[j]
        winner[j] = 0
    c = 1
    while c + 3 < classes:  # four planes per sweep: best and winner are read and written once per four scores
        base = (a * classes + c) * inner + b0
        p0 = x[base : base + m]
        p1 = x[base + inner : base + inner + m]
        p2 = x[base + 2 * inner : base + 2 * inner + m]
        p3 = x[base + 3 * inner : base + 3 * inner + m]
        for j in range(m):
            b, w = best[j], winner[j]
            b, w = _take(p0[j], b, w, c)
            b, w = _take(p1[j], b, w, c + 1)
            b, w = _take(p2[j], b, w, c + 2)
            b, w = _take(p3[j], b, w, c + 3)
            best[j] = b
            winner[j] = w
        c += 4
    while c < classes:
        base = (a * classes + c) * inner + b0
        plane = x[base : base + m]
        for j in range(m):
            best[j], winner[j] = _take(plane[j], best[j], winner[j], c)
        c += 1


@inline
def _take(v, b, w, c):
    # the rule for one more score v of class c: it takes over when strictly larger, or while best is NaN (any
    # score then: a NaN one changes nothing). Selects only.
    take = (v > b) | (b != b)
    return (v if take else b), (np.int32(c) if take else w)


@parallel
def argmax_labels(x, outer, classes, inner, threshold, ignore, out, n_parts):
    """out[a, b] = the class c maximizing x[a, c, b] over the C-ordered (A, C, B) array x (flat), or `ignore`
    where every score is NaN or the maximum is below `threshold` (-inf: no threshold)."""
    if inner == 1:  # classes last (H x W x C): each pixel's scores are contiguous
        for part in prange(n_parts):
            a0, a1 = _chunk_bounds(outer, n_parts, part, 1)
            for a in range(a0, a1):
                scores = x[a * classes : (a + 1) * classes]
                best, winner = scores[0], 0
                for c in range(1, classes):
                    v = scores[c]
                    if v > best or (best != best and v == v):
                        best, winner = v, c
                out[a] = winner if best == best and not best < threshold else ignore
        return
    blocks_per_row = (inner + _PIXEL_BLOCK - 1) // _PIXEL_BLOCK
    n_blocks = outer * blocks_per_row
    for part in prange(n_parts):
        k0, k1 = _chunk_bounds(n_blocks, n_parts, part, 1)
        best = np.empty(_PIXEL_BLOCK, dtype=x.dtype)
        winner = np.empty(_PIXEL_BLOCK, dtype=np.int32)
        for k in range(k0, k1):
            a = k // blocks_per_row
            b0 = (k % blocks_per_row) * _PIXEL_BLOCK
            b1 = min(inner, b0 + _PIXEL_BLOCK)
            _argmax_planes(x, a, classes, inner, b0, b1, best, winner)
            dest = out[a * inner + b0 : a * inner + b1]
            for j in range(b1 - b0):
                keep = best[j] == best[j] and not best[j] < threshold  # NaN: every score was NaN
                dest[j] = winner[j] if keep else ignore
