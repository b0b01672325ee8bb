"""Samples at fixed logical positions: short runs of consecutive elements, one run in every few."""

from __future__ import annotations

from numba import prange

from .._jit import parallel
from ._common import _chunk_bounds, _prefetch, copy_run, load

_SAMPLE_AHEAD = 8  # outer positions prefetched ahead by strided_sample's single-element gather
_SAMPLE_SPAN = 256  # at most this many elements per position prefetched (then the hardware prefetcher does)

# --- strided samples -------------------------------------------------------------------------------------------


@parallel
def strided_sample(x, a, n_groups, run, step_a, step_b, run_len, n_chunks, sample, g0=0, c0=0):
    """sample[g0 + g, c0 + i * nb + j] = x[((i * step_a) * n_groups + g) * run + b_j] for the C-ordered (A, G, B)
    array x, i < ceil(A / step_a): the sampled inner positions b_j are runs of `run_len` consecutive positions, one
    run in every `step_b` (b_j = (j // run_len) * run_len * step_b + j % run_len; nb of them, see Sample.shape).

    `sample` is the output (rows from g0, columns from c0: a block's place in the whole sample), allocated by the
    caller: NumPy's allocation of a large array gets huge pages, where one made here (4 KiB pages, faulted in on
    first write) took 4 times as long as the gather (21 channels of 2048², 11 M values: 43 ms against 10 ms, and
    5.4 ms into a buffer already touched). x may be byte-swapped float32 words (see _common.load)."""
    # Run by run (a copy of up to run_len consecutive elements each): no division per element, which made an
    # element-by-element gather of runs slower than single elements at a smaller stride. Element loops, not slice
    # assignments: a slice copy of 16 values costs more than the copy itself.
    na = (a + step_a - 1) // step_a
    period = run_len * step_b
    nb = (run // period) * run_len + min(run_len, run % period)
    runs = (nb + run_len - 1) // run_len  # per outer position; the last may be partial
    if run_len == 1 and run >= 16:
        # Single elements of long inner extents (planes, rows): group by group, each read in increasing order. With
        # the groups innermost, one sampled position of 256 planes of 2**18 was 256 reads 1 MiB apart (a TLB miss
        # each): 49 ms for N x C x H x W 16 x 16 x 512², against 11 ms so.
        for c in prange(n_chunks):
            begin, end = _chunk_bounds(na * nb, n_chunks, c, 1)
            for g in range(n_groups):
                i, j = begin // nb, begin % nb
                for k in range(begin, end):
                    sample[g0 + g, c0 + k] = load(x, (i * step_a * n_groups + g) * run + j * step_b)
                    j += 1
                    if j == nb:
                        j = 0
                        i += 1
        return sample
    if run_len == 1:
        # Single elements: an element loop (a one-element slice copy each is several times slower), the groups
        # innermost, so that the groups of one outer position (a pixel's channels) are read together.
        # The lines of a position _SAMPLE_AHEAD outer steps on are prefetched where its groups span a few lines:
        # reads a few lines apart defeat the hardware prefetcher (one pixel's 21 channels in 11 of 2048²: 16.8 ->
        # 8.6 ms); wider spans are sequential enough for it.
        ahead = _SAMPLE_AHEAD * step_a * n_groups * run
        span = n_groups * run if n_groups * run <= _SAMPLE_SPAN else 0
        for c in prange(n_chunks):
            begin, end = _chunk_bounds(na * nb, n_chunks, c, 1)
            i, j = begin // nb, begin % nb
            for k in range(begin, end):
                first = i * step_a * n_groups * run + j * step_b
                if first + ahead + span <= x.size:
                    for e in range(0, span, 64 // x.itemsize):
                        _prefetch(x, first + ahead + e)
                    if span:
                        _prefetch(x, first + ahead + span - 1)
                for g in range(n_groups):
                    sample[g0 + g, c0 + k] = load(x, first + g * run)
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
                row = sample[g0 + g, c0:]
                for r in range(r0, r1):
                    at = r * run_len
                    m = min(run_len, nb - at)
                    s, d = source + r * period, i * nb + at
                    if m == 16:  # the usual run length, unrolled to one vector copy (a variable-length loop: 10x)
                        for k in range(16):
                            row[d + k] = load(x, s + k)
                    else:
                        copy_run(row, d, x, s, m)
                u += r1 - r0
    return sample
