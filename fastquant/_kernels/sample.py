"""Samples at fixed logical positions: short runs of consecutive elements, one run in every few."""

from __future__ import annotations

import numpy as np
from numba import prange

from .._jit import parallel
from ._common import _chunk_bounds

# --- strided samples -------------------------------------------------------------------------------------------


@parallel
def strided_sample(x, a, n_groups, run, step_a, step_b, run_len, n_chunks):
    """sample[g, i * nb + j] = x[((i * step_a) * n_groups + g) * run + b_j] for the C-ordered (A, G, B) array x,
    i < ceil(A / step_a): the sampled inner positions b_j are runs of `run_len` consecutive positions, one run in
    every `step_b` (b_j = (j // run_len) * run_len * step_b + j % run_len; nb of them, see Sample.shape)."""
    na = (a + step_a - 1) // step_a
    period = run_len * step_b
    nb = (run // period) * run_len + min(run_len, run % period)
    sample = np.empty((n_groups, na * nb), dtype=x.dtype)
    for c in prange(n_chunks):
        begin, end = _chunk_bounds(na * nb, n_chunks, c, 1)
        for g in range(n_groups):
            dest = sample[g]
            i, j = begin // nb, begin % nb
            for k in range(begin, end):
                dest[k] = x[(i * step_a * n_groups + g) * run + (j // run_len) * period + j % run_len]
                j += 1
                if j == nb:
                    j = 0
                    i += 1
    return sample
