"""Radix histograms of the order-preserving keys (the fallback that holds for every input)."""

from __future__ import annotations

import numpy as np
from numba import prange

from .._jit import parallel
from ._common import _chunk_bounds, _group_at

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
