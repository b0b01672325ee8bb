"""Approximate percentile limits: estimates from a fixed sample, proved within one grey level by counts.

The limits ``lo_a <= hi_a`` are the percentiles of a fixed sample of each group (positions set by the shape),
computed as the exact path computes them, so a group sampled whole gets the exact limits. The proof: with
``d = tolerance * (hi_a - lo_a) / 255``, each exact limit lies within ``d`` of its estimate when #finite below
``lo_a - d`` is at most the lower rank the interpolation uses and #finite below (just above) ``lo_a + d``
exceeds the upper one (the same for hi). The level functions of the estimated and the exact limits are then
clamped affine maps that differ by at most ``255 * d / (hi_a - lo_a) < 1`` before rounding, hence by at most one
level after it. The counts come from the conversion pass itself (:class:`fastquant._passes.Convert` with
windows) or, for :func:`fastquant.limits`, from a counting pass.

Whether approx applies depends on the values, dtype and shape only: every source is sampled at the same logical
positions, so C, Fortran, strided and byte-swapped copies of the same array give the same bytes.
"""

from __future__ import annotations

import numpy as np

from . import _passes
from ._plan import current, note
from ._select import compact_rows, interpolate, interpolation_plan, needed_ranks, select_segments


def sample_stride(layout) -> int | None:
    """About one element in this many of each group is sampled for the estimates; None where approx does not
    apply to this layout (then the exact limits are the approximate ones): more than ``Tuning.max_approx_groups``
    groups, or groups too small to sample sparsely. Set by the shape alone."""
    tun = current()
    stride = min(tun.sample_stride, layout.group_size // tun.approx_sample)
    if layout.groups > tun.max_approx_groups or stride < tun.approx_min_stride:
        return None  # the sample would be a sizeable copy of the data: use exact limits
    return stride


def sample_run(geometry, stride: int) -> int:
    """The length of the sample's runs of consecutive inner elements: whole rows (of the last axis) where each
    group spans rows and its sample holds at least ``Tuning.min_sample_runs`` runs, else ``Tuning.sample_run``.

    Whole rows make the sample a partial read of storage: about one page of a memmap in `step` (the prime step
    between sampled runs, 11 or more), and only the sampled rows of a chunked source (see
    :meth:`fastquant._source.ChunkedSource.sample_indexes`). Rows, not tiles or chunks: on issue 7's prediction
    volume, one row in 11 estimates each slice's 5th and 95th percentiles within 0.14 of the proof tolerance
    (the worst of 32 slices), where one band of 16 rows in 11 came within 3.3 and one 256² tile in 11 within 40:
    spatially clustered samples of smooth maps fail the proof, and then cost a second conversion."""
    tun, lay = current(), geometry.layout
    first_inner = geometry.kept[-1] + 1 if geometry.kept else 0
    if len(geometry.shape) - first_inner < 2:
        return tun.sample_run  # one row is the whole inner extent
    width = geometry.shape[-1]
    run = width * -(-max(tun.sample_row, 1) // max(width, 1))
    if lay.group_size < run * stride * max(tun.min_sample_runs, 1):
        return tun.sample_run
    return run


def estimates(source, percentiles: np.ndarray):
    """(lo, hi, windows) of the sampled limits and their proof windows (G, 4 edges), or None where approx does not
    apply: the layout's rule (:func:`sample_stride`), a group with fewer than two finite sampled values, or a
    range too wide for the windows."""
    tun, lay = current(), source.layout
    stride = sample_stride(lay)
    if stride is None:
        return None
    run = sample_run(source.geometry, stride)
    note("sample", run=run)
    sample = _passes.run(_passes.sample_pass(lay, stride, source.dtype, run), source)
    quantiles = np.true_divide(percentiles, 100)
    # The sample's own percentiles, computed as the exact path computes them: where the sample is the whole group
    # (small groups), the estimates are the exact limits and so is the result. The sample is scratch: its finite
    # values are compacted in place and selected there, all groups in one parallel call (NumPy's partition, one
    # group per thread, took 63 ms for 21 groups of 2**19).
    flat, starts, finite = compact_rows(np.ascontiguousarray(sample))
    if (finite < 2).any():
        return None
    ranks = [needed_ranks(int(n), quantiles) for n in finite]
    values = select_segments(flat, starts, finite, ranks)
    found = [
        interpolate(int(n), quantiles, dict(zip(r, v, strict=True)), source.stats_dtype)
        for n, r, v in zip(finite, ranks, values, strict=True)
    ]
    sampled = np.array(found).T  # (2, G)
    lo, hi = sampled[0], np.maximum(sampled[0], sampled[1])
    dtype = source.dtype
    with np.errstate(all="ignore"):
        tolerance = tun.approx_tolerance * (hi - lo) / 255
        if not np.isfinite(tolerance).all():
            return None
        windows = np.empty((lay.groups, 4), dtype=dtype)
        for i, centre in enumerate((lo, hi)):
            windows[:, 2 * i] = _at_or_above(centre - tolerance, dtype)
            windows[:, 2 * i + 1] = np.nextafter(_at_or_below(centre + tolerance, dtype), dtype.type(np.inf))
    return lo, hi, windows


def prove(source, counts: np.ndarray, percentiles: np.ndarray, minus_inf: np.ndarray | None = None) -> bool:
    """Whether the window counts (G, 5: finite, then below each edge, -inf included) prove the estimates.

    #(-inf) lies between 0 and the number of non-finite values: with both bounds the proof is sound, and exact
    when all values are finite. If it fails only for that slack, one more pass counts -inf (or `minus_inf`, the
    exact counts, is given).
    """
    quantiles = np.true_divide(percentiles, 100)
    finite = counts[:, 0]
    if (finite == 0).any():
        return False
    if minus_inf is not None:
        return _window_proof(counts, minus_inf, minus_inf, quantiles)
    non_finite = source.layout.group_size - finite
    if _window_proof(counts, np.zeros_like(non_finite), non_finite, quantiles):
        return True
    if not non_finite.any():
        return False
    lowest = np.full((source.layout.groups, 1), np.finfo(source.dtype).min, dtype=source.dtype)
    note("approx", counted_minus_inf=True)
    minus_inf = _passes.run(_passes.CountBelow(lowest), source)[:, 0]
    return _window_proof(counts, minus_inf, minus_inf, quantiles)


def window_thresholds(source, windows: np.ndarray) -> np.ndarray:
    """Thresholds for a counting pass that gives what the conversion pass counts, with -inf counted exactly:
    (lowest finite, inf, the four edges)."""
    thresholds = np.empty((source.layout.groups, 6), dtype=source.dtype)
    thresholds[:, 0] = np.finfo(source.dtype).min
    thresholds[:, 1] = np.inf
    thresholds[:, 2:] = windows
    return thresholds


def limits(source, percentiles: np.ndarray):
    """The proved approximate limits (lo, hi), or None (then the exact limits are the approximate ones)."""
    found = estimates(source, percentiles)
    if found is None:
        return None
    lo, hi, windows = found
    below = _passes.run(_passes.CountBelow(window_thresholds(source, windows)), source)
    minus_inf = below[:, 0]
    counts = np.column_stack([below[:, 1] - minus_inf, below[:, 2:]])
    proved = prove(source, counts, percentiles, minus_inf)
    note("approx", proved=proved)
    return (lo, hi) if proved else None


def _window_proof(counts: np.ndarray, fewest_minus_inf, most_minus_inf, quantiles: np.ndarray) -> bool:
    """Whether both order statistics behind each limit lie in its window, given bounds on #(-inf) per group.

    #finite below the low edge must be at most the lower rank (so its upper bound, with the fewest -inf, is
    tested) and #finite below the high edge must exceed the upper rank (its lower bound, with the most -inf).
    """
    for g in range(counts.shape[0]):
        prev_rank, next_rank, _ = interpolation_plan(int(counts[g, 0]), quantiles)
        for i in range(2):
            below = counts[g, 1 + 2 * i] - fewest_minus_inf[g]
            through = counts[g, 2 + 2 * i] - most_minus_inf[g]
            if below > min(prev_rank[i], next_rank[i]) or through <= max(prev_rank[i], next_rank[i]):
                return False
    return True


def _at_or_above(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The smallest `dtype` values >= `values` (float64); beyond the largest finite value: inf."""
    with np.errstate(over="ignore"):
        rounded = values.astype(dtype)
    return np.where(rounded < values, np.nextafter(rounded, dtype.type(np.inf)), rounded)


def _at_or_below(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The largest `dtype` values <= `values` (float64); beyond the largest finite value: inf."""
    with np.errstate(over="ignore"):
        rounded = values.astype(dtype)
    return np.where(rounded > values, np.nextafter(rounded, dtype.type(-np.inf)), rounded)
