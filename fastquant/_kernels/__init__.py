"""Numba kernels: bare loops, one module per family (convert, count, collect, radix, sample, minmax, groups; shared
pieces in _common). The passes that call them live in :mod:`fastquant._passes`; this module re-exports the families
the passes use.

Every kernel reads a 1-D C-contiguous float32 or float64 array ``x`` holding a stretch of the logical
``(A, G, B)`` array in C order, starting at flat offset ``start``: element ``i`` belongs to group
``((start + i) // B) % G``. Two loop shapes cover the layouts that matter:

- *runs* (``B`` large, e.g. one group per image plane, or the whole array as one group): each contiguous run of
  ``B`` elements has one group, and the inner loop over the run is a plain loop with scalar parameters;
- *lanes* (``G * B`` small, e.g. H×W×3 with one group per channel): the group pattern repeats with period
  ``P = G * B``; the data is processed in blocks of ``L`` (a multiple of ``P``) with per-lane parameters, so the
  inner loop is an elementwise loop that vectorizes.

Parallel kernels split the work into ``n_chunks`` pieces (passed in, never read from numba inside a kernel, so
``cache=True`` holds) and accumulate into per-chunk rows merged afterwards: no shared accumulators inside prange,
and results that do not depend on the thread count.
"""

from __future__ import annotations

from .._jit import kernel_lock
from .collect import collect_lanes, gather_regions, scan_lanes, scan_runs
from .convert import convert_count_lanes, convert_count_runs, convert_lanes, convert_runs
from .count import count_lanes, count_runs
from .groups import compact_segments, select_segments
from .radix import radix_hist
from .sample import strided_sample

__all__ = [
    "collect_lanes",
    "compact_segments",
    "convert_count_lanes",
    "convert_count_runs",
    "convert_lanes",
    "convert_runs",
    "gather_regions",
    "count_lanes",
    "count_runs",
    "kernel_lock",
    "radix_hist",
    "scan_lanes",
    "scan_runs",
    "select_segments",
    "strided_sample",
]
