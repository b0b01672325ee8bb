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
    # Run by run (a copy of up to run_len consecutive elements each): no division per element, which made an
    # element-by-element gather of runs slower than single elements at a smaller stride.
    na = (a + step_a - 1) // step_a
    period = run_len * step_b
    nb = (run // period) * run_len + min(run_len, run % period)
    runs = (nb + run_len - 1) // run_len  # per outer position; the last may be partial
    sample = np.empty((n_groups, na * nb), dtype=x.dtype)
    if run_len == 1 and run >= 16:
        # Single elements of long inner extents (planes, rows): group by group, each read in increasing order. With
        # the groups innermost, one sampled position of 256 planes of 2**18 was 256 reads 1 MiB apart (a TLB miss
        # each): 49 ms for N x C x H x W 16 x 16 x 512², against 11 ms so.
        for c in prange(n_chunks):
            begin, end = _chunk_bounds(na * nb, n_chunks, c, 1)
            for g in range(n_groups):
                i, j = begin // nb, begin % nb
                for k in range(begin, end):
                    sample[g, k] = x[(i * step_a * n_groups + g) * run + j * step_b]
                    j += 1
                    if j == nb:
                        j = 0
                        i += 1
        return sample
    if run_len == 1:
        # Single elements: an element loop (a one-element slice copy each is several times slower), the groups
        # innermost, so that the groups of one outer position (a pixel's channels) are read together.
        for c in prange(n_chunks):
            begin, end = _chunk_bounds(na * nb, n_chunks, c, 1)
            i, j = begin // nb, begin % nb
            for k in range(begin, end):
                first = i * step_a * n_groups * run + j * step_b
                for g in range(n_groups):
                    sample[g, k] = x[first + g * run]
                j += 1
                if j == nb:
                    j = 0
                    i += 1
        return sample
    for c in prange(n_chunks):
        begin, end = _chunk_bounds(na * runs, n_chunks, c, 1)
        for g in range(n_groups):
            u = begin
            while u < end:  # the runs of outer position i from run r0 on, up to the chunk's end
                i, r0 = u // runs, u % runs
                r1 = min(runs, r0 + end - u)
                source = (i * step_a * n_groups + g) * run
                for r in range(r0, r1):
                    at = r * run_len
                    m = min(run_len, nb - at)
                    sample[g, i * nb + at : i * nb + at + m] = x[source + r * period : source + r * period + m]
                u += r1 - r0
    return sample
