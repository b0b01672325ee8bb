"""Strided samples at fixed logical positions."""

from __future__ import annotations

import numpy as np
from numba import prange

from .._jit import parallel
from ._common import _chunk_bounds

# --- strided samples -------------------------------------------------------------------------------------------


@parallel
def strided_sample(x, a, n_groups, run, step_a, step_b, n_chunks):
    """sample[g, i * nb + j] = x[((i * step_a) * n_groups + g) * run + j * step_b] for the C-ordered (A, G, B)
    array x, i < ceil(A / step_a), j < nb = ceil(B / step_b)."""
    na = (a + step_a - 1) // step_a
    nb = (run + step_b - 1) // step_b
    sample = np.empty((n_groups, na * nb), dtype=x.dtype)
    for c in prange(n_chunks):
        begin, end = _chunk_bounds(na * nb, n_chunks, c, 1)
        for g in range(n_groups):
            dest = sample[g]
            i, j = begin // nb, begin % nb
            for k in range(begin, end):
                dest[k] = x[(i * step_a * n_groups + g) * run + j * step_b]
                j += 1
                if j == nb:
                    j = 0
                    i += 1
    return sample
