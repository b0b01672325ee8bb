"""The kernel of :func:`fastquant.composite`: each channel's value times its colour, combined into RGB, in one pass.

The arithmetic is :func:`fastquant.reference.blend`'s, operation for operation in float64 and in the same order
(channels c = 0..N-1 accumulated in turn), so the bytes are the same.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .._jit import inline, parallel, serial
from ._common import _chunk_bounds

_PIXEL_BLOCK = 512  # pixels whose rows (5 float64, 3 bytes: 21.5 KiB) stay in L1 while the channels stream past
_MIN_PLANE = 64  # channel planes shorter than this (channels last, or nearly): pixel by pixel
_MAX = 1  # the mode codes: the index in fastquant._composite.MODES ("sum", "max", "weighted")
_WEIGHTED = 2


@inline
def _value(v, lo, hi, factor, lo_scaled, span):
    # t of the spec: 0 for NaN or v <= lo, else 1 for v >= hi, else (v*f - lo*f) / (hi*f - lo*f), f = 1 (x * 1.0
    # is x exactly) or 0.5 where hi - lo overflows. A channel without limits comes with lo = hi = inf. Selects only.
    v = np.float64(v)
    t = (v * factor - lo_scaled) / span
    t = 1.0 if v >= hi else t
    t = 0.0 if v <= lo else t
    return 0.0 if v != v else t


@inline
def _byte(level):
    level = 255.0 if level > 255.0 else level
    level = 0.0 if level < 0.0 else level
    return np.uint8(np.rint(level))


@inline
def _store(out, k, r, g, b, s, mode):
    # out[k:k+3] = the pixel's bytes from its accumulators (sum or max of t * w, s the sum of t).
    if mode == _WEIGHTED:
        if s == 0.0:
            out[k] = out[k + 1] = out[k + 2] = 0
        else:
            out[k] = _byte((255.0 * r) / s)
            out[k + 1] = _byte((255.0 * g) / s)
            out[k + 2] = _byte((255.0 * b) / s)
    elif mode == _MAX:
        out[k] = _byte(255.0 * r)
        out[k + 1] = _byte(255.0 * g)
        out[k + 2] = _byte(255.0 * b)
    else:
        out[k] = _byte(255.0 * min(1.0, r))
        out[k + 1] = _byte(255.0 * min(1.0, g))
        out[k + 2] = _byte(255.0 * min(1.0, b))


@serial
def _pixels(x, channels, inner, params, weights, mode, out, p0, p1):
    # Pixels [p0, p1) of the flat pixel index a * inner + b, each with its channels at stride `inner`.
    for p in range(p0, p1):
        a = p // inner
        base = a * channels * inner + (p - a * inner)
        r = g = b = s = 0.0
        for c in range(channels):
            t = _value(x[base + c * inner], params[c, 0], params[c, 1], params[c, 2], params[c, 3], params[c, 4])
            if mode == _MAX:
                r = max(r, t * weights[c, 0])
                g = max(g, t * weights[c, 1])
                b = max(b, t * weights[c, 2])
            else:
                r += t * weights[c, 0]
                g += t * weights[c, 1]
                b += t * weights[c, 2]
                s += t
        _store(out, 3 * p, r, g, b, s, mode)


@serial
def _values(plane, t, terms):
    # t[j] = the value of plane[j] for the channel's (lo, hi, factor, lo * factor, span) terms
    lo, hi, factor, lo_scaled, span = terms[0], terms[1], terms[2], terms[3], terms[4]
    for j in range(plane.size):
        t[j] = _value(plane[j], lo, hi, factor, lo_scaled, span)


@serial
def _block(x, first, step, stride, m, params, weights, mode, acc, levels, out, p0):
    # m pixels, pixel p0 + j of the output; channel c of pixel j at x[first + c * step + j * stride]. Every channel in
    # turn: its values t into acc[4], then t * w added (or maxed) into the accumulators acc[0..2] and t into acc[3];
    # then the levels of each component, then interleaved into out. Each loop is elementwise over L1-resident rows.
    t = acc[4, :m]
    for k in range(4):
        row = acc[k, :m]
        for j in range(m):
            row[j] = 0.0
    for c in range(params.shape[0]):
        start = first + c * step
        if stride == 1:  # a contiguous slice is its own (vectorizable) specialization of _values
            _values(x[start : start + m], t, params[c])
        else:
            _values(x[start : start + m * stride : stride], t, params[c])
        for k in range(3):
            w = weights[c, k]
            if w == 0.0:  # adds +0 to (or takes the max with) an accumulator >= +0: changes nothing
                continue
            row = acc[k, :m]
            if mode == _MAX:
                for j in range(m):
                    u = t[j] * w
                    row[j] = u if u > row[j] else row[j]
            else:
                for j in range(m):
                    row[j] += t[j] * w
        if mode == _WEIGHTED:
            row = acc[3, :m]
            for j in range(m):
                row[j] += t[j]
    s = acc[3, :m]
    for k in range(3):
        row = acc[k, :m]
        dest = levels[k, :m]
        if mode == _WEIGHTED:
            for j in range(m):
                dest[j] = 0 if s[j] == 0.0 else _byte((255.0 * row[j]) / s[j])
        elif mode == _MAX:
            for j in range(m):
                dest[j] = _byte(255.0 * row[j])
        else:
            for j in range(m):
                dest[j] = _byte(255.0 * min(1.0, row[j]))
    dest = out[3 * p0 : 3 * (p0 + m)]
    r, g, b = levels[0], levels[1], levels[2]
    for j in range(m):
        dest[3 * j] = r[j]
        dest[3 * j + 1] = g[j]
        dest[3 * j + 2] = b[j]


@parallel
def composite_pixels(x, outer, channels, inner, params, weights, mode, out, n_parts):
    """out (flat, C-ordered (outer, inner, 3) uint8) = the composite of the C-ordered (outer, channels, inner)
    array x (flat). params: (channels, 5) float64 rows (lo, hi, factor, lo * factor, hi * factor - lo * factor),
    lo = hi = inf for a channel without limits; weights: (channels, 3) float64 colours / 255; mode: 0 sum,
    1 max, 2 weighted."""
    if 1 < inner < _MIN_PLANE:  # short planes: pixel by pixel
        n_pixels = outer * inner
        for part in prange(n_parts):
            p0, p1 = _chunk_bounds(n_pixels, n_parts, part, 1)
            _pixels(x, channels, inner, params, weights, mode, out, p0, p1)
        return
    # Blocks of pixels: along a row of `inner` pixels (channel planes), or of `outer` pixels (channels last)
    row = outer if inner == 1 else inner
    blocks_per_row = (row + _PIXEL_BLOCK - 1) // _PIXEL_BLOCK
    n_blocks = (1 if inner == 1 else outer) * blocks_per_row
    for part in prange(n_parts):
        k0, k1 = _chunk_bounds(n_blocks, n_parts, part, 1)
        acc = np.empty((5, _PIXEL_BLOCK), dtype=np.float64)
        levels = np.empty((3, _PIXEL_BLOCK), dtype=np.uint8)
        for k in range(k0, k1):
            a = k // blocks_per_row
            b0 = (k % blocks_per_row) * _PIXEL_BLOCK
            m = min(row, b0 + _PIXEL_BLOCK) - b0
            if inner == 1:
                _block(x, b0 * channels, 1, channels, m, params, weights, mode, acc, levels, out, b0)
            else:
                _block(
                    x, a * channels * inner + b0, inner, 1, m, params, weights, mode, acc, levels, out, a * inner + b0
                )
