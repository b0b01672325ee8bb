"""The blend kernels of :func:`fastquant.overlay`: ``out = table[image byte, colour byte]`` per channel.

``table`` is the (256, 256) uint8 table ``rint((1 - alpha) * i + alpha * c)`` made once per call in float64 (see
:func:`fastquant._figures.blend_table`), so the kernels only look bytes up: exact, and no float arithmetic per pixel.
The image is gray (1 byte a pixel, used for all three channels) or RGB (3 bytes a pixel); the output is RGB.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .._jit import parallel, serial
from ._common import _chunk_bounds

_ALIGN = 64  # pixels: the parts' starts, so that no two parts write the same cache line of the output


@serial
def _blend_labels_part(image, channels, labels, palette, has_ignore, ignore, table, out, p0, p1):
    # Pixels [p0, p1) of blend_labels; returns how many labels there are not palette indexes.
    size = palette.shape[0]
    count = 0
    for p in range(p0, p1):
        label = labels[p]
        if has_ignore and label == ignore:
            for k in range(3):
                out[3 * p + k] = image[channels * p + (k if channels == 3 else 0)]
        elif label < 0 or label >= size:
            count += 1
        elif channels == 3:
            for k in range(3):
                out[3 * p + k] = table[image[3 * p + k], palette[label, k]]
        else:
            g = image[p]
            for k in range(3):
                out[3 * p + k] = table[g, palette[label, k]]
    return count


@parallel
def blend_labels(image, channels, labels, palette, has_ignore, ignore, table, out, n_parts):
    """out[p] = table[image[p], palette[labels[p]]] per channel; the image where ``labels[p] == ignore``. Returns
    the number of labels that are not palette indexes (their pixels are left unwritten: the caller raises)."""
    n = labels.shape[0]
    bad = np.zeros(n_parts, dtype=np.int64)
    for part in prange(n_parts):
        p0, p1 = _chunk_bounds(n, n_parts, part, _ALIGN)
        bad[part] = _blend_labels_part(image, channels, labels, palette, has_ignore, ignore, table, out, p0, p1)
    return bad.sum()


@serial
def _blend_colours_part(image, channels, colours, table, out, p0, p1):
    for p in range(p0, p1):
        keep = colours[4 * p + 3] == 0
        for k in range(3):
            i = image[channels * p + (k if channels == 3 else 0)]
            out[3 * p + k] = i if keep else table[i, colours[4 * p + k]]


@parallel
def blend_colours(image, channels, colours, table, out, n_parts):
    """out[p] = table[image[p], colours[p]] per channel for RGBA `colours`; the image where the alpha is 0."""
    n = colours.shape[0] // 4
    for part in prange(n_parts):
        p0, p1 = _chunk_bounds(n, n_parts, part, _ALIGN)
        _blend_colours_part(image, channels, colours, table, out, p0, p1)
