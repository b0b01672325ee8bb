"""Fast public API: validation, path choice, layout handling and the algorithms that drive the kernels.

Path choice depends on the input's size only: below ``NUMBA_MIN_SIZE`` elements NumPy does the work (the
reference's algorithm with cheaper selections and fewer passes: ``_to_uint8_numpy``, ``_percentile_numpy``), so
a small one-shot conversion never imports numba; above it the Numba kernels of :mod:`fastquant._kernels`.

Layout. Limits are computed per *group*: the index over the kept (non-reduced) axes. When the kept axes are adjacent,
the array is, in C order, an ``(A, G, B)`` array and element ``i`` belongs to group ``(i // B) % G``; that is all a
kernel needs to know. Other axis combinations take the NumPy path.

Data. Kernels read 1-D contiguous native float32 or float64. A C-contiguous input of such a dtype is read in place;
anything else (other dtypes, byte order, strides) is converted in chunks of ``_STREAM_CHUNK`` elements, so no
input-sized temporary is ever made. float32 holds every value of float16, bool and 8/16-bit integers exactly; wider
integers go through float64.

Exact percentiles (``_order_statistics``):

1. *Bracket* (C-contiguous input): a strided sample proposes, per group and percentile, an interval ``[a, b)``
   that should contain the needed order statistics; one counting pass over all the data proves or refutes it
   (and counts the finite values); a second pass collects the few values inside proven intervals, and a selection
   among them gives the exact order statistics.
2. *Radix* (fallback, and every other input): histograms of 16-bit digits of the float's order-preserving
   integer key, most significant first, each pass restricted to the keys that share the already-known prefix.
   Two passes for float32, four for float64; exact for every input.

The order statistics then go through NumPy's own linear interpolation formula, so results equal
``numpy.percentile`` bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from . import _checks, reference

NUMBA_MIN_SIZE = 1 << 20
_STREAM_CHUNK = 1 << 20
_SAMPLE_STRIDE = 256  # one element in this many is sampled to propose brackets
_MIN_SAMPLE = 1 << 14  # groups smaller than this many sampled elements skip the bracket step
_APPROX_SAMPLE = 1 << 18  # sampled elements per group that propose approximate limits
_APPROX_MIN_STRIDE = 16  # at most this share of the data is sampled (smaller groups: exact limits)
_APPROX_TOLERANCE = 0.9  # proved limit error, in grey levels of the proposed range (must stay below 1)
_MAX_CANDIDATES = 1 << 23  # bracket members collected at most (32 MiB of float32)
_MAX_LANES = 64  # repeating group patterns up to this period use the per-lane kernels
_LANE_BLOCK = 512  # about this many lanes (a multiple of the period): one parameter per element of a block
_MAX_APPROX_GROUPS = 64  # more groups than this: approximate limits are the exact ones
_RADIX_GROUPS = 16  # groups per radix pass (bounds histogram memory at 8 MiB per chunk)
_COUNT_BLOCK = 1 << 12  # elements per counting step (L1-resident across threshold sweeps)
_CONVERT_BLOCK = 1 << 12  # elements per convert-then-count step (L1-resident)
_SCAN_BLOCK = 1 << 14  # bytes of input per counting-and-collecting step (L1-resident)


# --- public functions ------------------------------------------------------------------------------------------


def to_uint8(
    x,
    vmin: float | None = None,
    vmax: float | None = None,
    *,
    percentiles: tuple[float, float] | None = None,
    axis: int | tuple[int, ...] | None = None,
    method: str = "approx",
    nan: int = 0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Quantize a float (or integer/bool) array to uint8 with clipping, scaling and rounding.

    Parameters
    ----------
    x : array_like
        bool, integer or float16/32/64 data of any shape, byte order and strides. Never modified.
    vmin, vmax : float, optional
        Absolute limits. Values ``<= vmin`` map to 0, values ``>= vmax`` to 255. Giving only one of them takes
        the other from the data's finite minimum or maximum over `axis` (if that leaves ``vmin > vmax``, the
        upper limit becomes ``vmin``). Neither (and no `percentiles`): the dtype's nominal range, ``[0, 1]`` for
        floats, the full range for integers, ``False -> 0, True -> 255`` for bool.
    percentiles : (float, float), optional
        ``(low, high)`` in percent: limits are these percentiles of the finite values over `axis`.
        Cannot be combined with `vmin`/`vmax`.
    axis : int or tuple of int, optional
        Axes over which data-derived limits are computed (None: the whole array). ``axis=(0, 1)`` gives
        per-channel limits for an H×W×C image. Without data-derived limits it changes nothing.
    method : {"approx", "exact"}
        How percentile limits are computed. "exact" equals :func:`fastquant.reference.to_uint8` bit for bit.
        "approx" is within one grey level of it at every pixel, for every input: for slices of at least
        2**22 elements its limits are the percentiles of a fixed sample of each slice (2**18 or more
        elements at positions set by the shape), and the conversion pass proves that each exact limit lies
        within 0.9 * (hi - lo) / 255 of them; where it cannot, and for smaller slices, the exact limits are
        used. The result depends only on the values, dtype and shape (not on memory layout, byte order,
        thread count or call history).
    nan : int
        Grey level for NaN, and for every element of a slice without finite values when limits are data-derived.
    out : numpy.ndarray, optional
        uint8 array of ``x``'s shape to write into.

    Returns
    -------
    numpy.ndarray
        uint8 array of ``x``'s shape (C-contiguous), or `out`.

    Notes
    -----
    Per element, with limits ``lo <= hi`` and in float64: NaN -> `nan`; ``x <= lo`` -> 0; else ``x >= hi`` -> 255;
    else ``rint((x - lo) * (255 / (hi - lo)))`` (round half to even). A constant map becomes 0.
    """
    x = _checks.real_array(x)
    vmin, vmax, percentiles = _checks.check_limits(vmin, vmax, percentiles)
    _checks.check_method(method)
    nan = _checks.check_nan(nan)
    axes = _checks.normalize_axis(axis, x.ndim)
    _checks.check_out(out, x.shape)
    if not _use_numba(x):
        return _to_uint8_numpy(x, vmin, vmax, percentiles, axes, nan, out)

    data_derived = percentiles is not None or (vmin is None) != (vmax is None)
    layout = _Layout.of(x.shape, axes if data_derived else tuple(range(x.ndim)))
    if layout is None or (percentiles is not None and not _streamable(x, layout)):
        return _to_uint8_numpy(x, vmin, vmax, percentiles, axes, nan, out)
    source = _Source(x)
    if out is None:
        out = np.empty(x.shape, dtype=np.uint8)
    if percentiles is not None and method == "approx" and layout.groups <= _MAX_APPROX_GROUPS:
        if _approx_convert(source, layout, np.array(percentiles, dtype=np.float64), nan, out):
            return out
    if percentiles is not None:
        lo, hi = _percentiles(source, layout, np.array(percentiles, dtype=np.float64))
    elif vmin is None and vmax is None:
        lo, hi = (np.array([v]) for v in _checks.nominal_limits(x.dtype))
    elif not data_derived:
        lo, hi = np.array([vmin]), np.array([vmax])
    else:
        data_lo, data_hi = _finite_minmax(source, layout)
        lo = data_lo if vmin is None else np.full(layout.groups, vmin)
        hi = data_hi if vmax is None else np.full(layout.groups, vmax)
    hi = np.where(lo > hi, lo, hi)
    _convert(source, layout, lo, hi, nan, out)
    return out


def percentile(x, q, axis: int | tuple[int, ...] | None = None, *, method: str = "exact") -> np.ndarray:
    """Percentiles of the finite values of `x`, over `axis`.

    Parameters
    ----------
    x : array_like
        bool, integer or float16/32/64 data. NaN and ±inf are ignored. float16 is treated as its exact float32
        values, integers and bool as their exact float64 values.
    q : float or array_like of float
        Percentiles in [0, 100].
    axis : int or tuple of int, optional
        Axes to reduce (None: all).
    method : {"exact", "approx"}
        "exact" equals ``numpy.percentile(finite_values, numpy.asarray(q, dtype=float64))`` (method "linear")
        exactly. "approx" is within 0 of it: it currently runs the same exact algorithm (the bound is tested).

    Returns
    -------
    numpy.ndarray
        float64, shape ``q.shape + kept axes``; 0-d for a scalar `q` and ``axis=None``. NaN for a slice without
        finite values (no warning).
    """
    x = _checks.real_array(x)
    q = _checks.check_q(q)
    _checks.check_method(method)
    axes = _checks.normalize_axis(axis, x.ndim)
    layout = _Layout.of(x.shape, axes) if _use_numba(x) else None
    if layout is None or not _streamable(x, layout):
        return _percentile_numpy(x, q, axes)
    values = np.stack(_percentiles(_Source(x), layout, q.reshape(-1)))
    kept_shape = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    return values.reshape(q.shape + kept_shape)


# --- layout and data access -----------------------------------------------------------------------------------


def _use_numba(x: np.ndarray) -> bool:
    return x.size >= max(NUMBA_MIN_SIZE, 1) and x.ndim > 0


def _streamable(x: np.ndarray, layout: _Layout) -> bool:
    """Percentiles of many groups need random access: only a directly readable input has it."""
    return layout.groups <= _RADIX_GROUPS or _Source(x).direct


class _Layout:
    """The input seen in C order as (A, G, B): G groups, each reduced over A and B."""

    def __init__(self, a: int, groups: int, run: int):
        self.a, self.groups, self.run = a, groups, run

    @classmethod
    def of(cls, shape: tuple[int, ...], axes: tuple[int, ...]) -> _Layout | None:
        kept = [i for i in range(len(shape)) if i not in axes]
        if not kept:
            return cls(1, 1, math.prod(shape))
        if kept != list(range(kept[0], kept[-1] + 1)):
            return None
        return cls(
            math.prod(shape[: kept[0]]), math.prod(shape[kept[0] : kept[-1] + 1]), math.prod(shape[kept[-1] + 1 :])
        )

    @property
    def period(self) -> int:
        return self.groups * self.run

    def lane_groups(self, lanes: int) -> np.ndarray:
        return (np.arange(lanes) // self.run) % self.groups


class _Source:
    """Where kernels read the data from: the array itself, or converted chunks of it."""

    def __init__(self, x: np.ndarray):
        self.x = x
        narrow = x.dtype.kind == "b" or x.dtype.itemsize <= 2 or x.dtype == np.float32
        self.dtype = np.dtype(np.float32 if narrow else np.float64)
        self.stats_dtype = _checks.percentile_dtype(x.dtype)
        self.direct = x.flags.c_contiguous and x.dtype == self.dtype  # == is False for swapped byte order
        self.size = x.size

    def chunks(self):
        """Yield (flat start, 1-D contiguous chunk) covering the data in C order."""
        if self.direct:
            yield 0, self.x.reshape(-1)
            return
        it = np.nditer(
            self.x,
            flags=["external_loop", "buffered", "zerosize_ok"],
            op_flags=[["readonly", "contig", "aligned"]],
            op_dtypes=[self.dtype],
            casting="unsafe",
            order="C",
            buffersize=_STREAM_CHUNK,
        )
        start = 0
        with it:
            for chunk in it:
                yield start, chunk
                start += chunk.size


def _kernels():
    from . import _kernels  # imports numba: only on the first large input

    return _kernels


def _n_chunks() -> int:
    import numba

    return numba.get_num_threads()


# --- conversion -----------------------------------------------------------------------------------------------


def _to_uint8_numpy(
    x: np.ndarray, vmin, vmax, percentiles, axes: tuple[int, ...], nan: int, out: np.ndarray | None
) -> np.ndarray:
    """to_uint8 with NumPy only (small inputs, and axis combinations the kernels do not handle)."""
    if percentiles is None:
        lo, hi = reference.limits(x, vmin, vmax, None, axes)
    else:  # reference.limits, with the faster selection of _percentile_numpy
        shape = _checks.keepdims_shape(x.shape, axes)
        lo, hi = (p.reshape(shape) for p in _percentile_numpy(x, np.array(percentiles), axes))
        hi = np.where(lo > hi, lo, hi)
    return _quantize_numpy(x, lo, hi, nan, out)


def _percentile_numpy(x: np.ndarray, q: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """reference.percentile, with single-rank selections (_select) in place of numpy.percentile's multi-rank
    partition: the same order statistics and NumPy's interpolation step for step, so the same values
    (tested), several times faster."""
    values = x.astype(_checks.percentile_dtype(x.dtype), copy=False)
    kept = [i for i in range(x.ndim) if i not in axes]
    kept_shape = tuple(x.shape[i] for i in kept)
    rows = np.transpose(values, kept + list(axes)).reshape(math.prod(kept_shape), math.prod(x.shape[i] for i in axes))
    quantiles = np.true_divide(q.reshape(-1), 100)  # NumPy's own step, so virtual indexes match bit for bit
    result = np.full((rows.shape[0], quantiles.size), np.nan)
    for i, row in enumerate(rows):
        finite = row[np.isfinite(row)]  # a copy: _select reorders it
        if finite.size:
            result[i] = _selected_percentiles(finite, quantiles, values.dtype)
    result += 0.0  # +0.0 for a zero, as the reference
    return np.moveaxis(result, 0, -1).reshape(q.shape + kept_shape)


def _quantize_numpy(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, nan: int, out: np.ndarray | None):
    """reference.quantize in fewer NumPy passes where the limits are ordinary (equal bit for bit).

    Ordinary: lo < hi with hi - lo finite and 255 / (hi - lo) a normal float64 (reference.scale_terms' factor
    1), so t = (x - lo) * (255 / (hi - lo)) is the reference's arithmetic. Rounding t and then clipping it
    to [0, 255] gives the reference's three-way rule: x <= lo gives t <= 0, and x >= hi gives t >= 255 up to
    an ulp. t is NaN exactly where x is. Other limits (equal, extreme, undefined) take the reference's rule.
    """
    with np.errstate(all="ignore"):
        span = hi - lo
        ordinary = bool(np.all(np.isfinite(span) & (span >= 2.0**-1013)))
        if ordinary:
            t = x.astype(np.float64, order="C")
            np.subtract(t, lo, out=t)
            np.multiply(t, 255.0 / span, out=t)
    if ordinary:
        np.rint(t, out=t)
        np.clip(t, 0.0, 255.0, out=t)
        np.copyto(t, float(nan), where=np.isnan(t))
        levels = t.astype(np.uint8)
    else:
        levels = reference.quantize(x, lo, hi, nan)
    if out is None:
        return levels
    out[...] = levels
    return out


def _convert(source: _Source, layout: _Layout, lo, hi, nan: int, out: np.ndarray) -> None:
    # A group whose limits are undefined (no finite data) maps entirely to `nan`; the kernels need finite
    # limits, so such groups get placeholder limits and are overwritten afterwards.
    undefined = np.isnan(lo) | np.isnan(hi)
    lo = np.where(undefined, 0.0, lo)
    hi = np.where(undefined, 0.0, hi)
    _convert_finite(source, layout, lo, hi, nan, out)
    if undefined.any():
        cube = out.reshape(layout.a, layout.groups, layout.run)  # a copy only for a non-contiguous out
        cube[:, undefined, :] = nan
        if not np.shares_memory(cube, out):
            out[...] = cube.reshape(out.shape)


def _convert_finite(
    source: _Source, layout: _Layout, lo, hi, nan: int, out: np.ndarray, windows: np.ndarray | None = None
) -> np.ndarray | None:
    """Convert with finite limits. With `windows` (G, 4 edges), also count in the same pass and return (G, 5):
    the finite values and the values below each edge, per group."""
    k = _kernels()
    hi = np.where(hi == lo, lo, hi)  # equal limits (0.0 and -0.0 too) -> scale +inf, never -inf (kernels' rule)
    params = [lo, *reference.scale_terms(lo, hi)]
    n_chunks = _n_chunks()
    nan_level = float(nan)
    lanes = _lane_count(layout)
    counts = None if windows is None else np.zeros((layout.groups, 5), dtype=np.int64)
    if windows is not None:
        largest = np.finfo(source.dtype).max
    if lanes:
        lane_groups = layout.lane_groups(lanes)
        lane_params = [p[lane_groups] for p in params]
        if windows is not None:
            lane_windows = np.ascontiguousarray(windows[lane_groups].T)  # (4, L)
            block = _CONVERT_BLOCK // lanes * lanes

    def run(start, chunk, dest):
        with k.kernel_lock():
            if lanes:
                shift = start % lanes
                rotated = [np.roll(p, -shift) for p in lane_params]
                if windows is None:
                    k.convert_lanes(chunk, dest, *rotated, nan_level, n_chunks)
                    return
                part = k.convert_count_lanes(
                    chunk,
                    dest,
                    *rotated,
                    nan_level,
                    largest,
                    np.ascontiguousarray(np.roll(lane_windows, -shift, axis=1)),
                    n_chunks,
                    block,
                )
                np.add.at(counts, np.roll(lane_groups, -shift), part.sum(axis=0).T)
            elif windows is None:
                k.convert_runs(chunk, dest, start, layout.groups, layout.run, *params, nan_level, n_chunks)
            else:
                counts[...] += k.convert_count_runs(
                    chunk,
                    dest,
                    start,
                    layout.groups,
                    layout.run,
                    *params,
                    nan_level,
                    largest,
                    windows,
                    n_chunks,
                    _CONVERT_BLOCK,
                ).sum(axis=0)

    if source.direct and out.flags.c_contiguous:
        run(0, source.x.reshape(-1), out.reshape(-1))
        return counts
    it = np.nditer(
        [source.x, out],
        flags=["external_loop", "buffered", "zerosize_ok"],
        op_flags=[["readonly", "contig", "aligned"], ["writeonly", "contig", "aligned"]],
        op_dtypes=[source.dtype, np.uint8],
        casting="unsafe",
        order="C",
        buffersize=_STREAM_CHUNK,
    )
    start = 0
    with it:
        for chunk, dest in it:
            run(start, chunk, dest)
            start += chunk.size
    return counts


# --- approximate percentile limits ----------------------------------------------------------------------------


def _approx_convert(source: _Source, layout: _Layout, percentiles: np.ndarray, nan: int, out: np.ndarray) -> bool:
    """Convert with limits estimated from a sample and prove them in the same pass; False if unproved.

    Proved means: each exact limit lies within d = _APPROX_TOLERANCE * (hi_a - lo_a) / 255 of its estimate.
    The level functions of the estimated and the exact limits are clamped affine maps of x, so they then
    differ by at most 255 * d / (hi_a - lo_a) < 1 before rounding, hence by at most one level after it.
    The counts prove it: #finite below lo_a - d is at most the lower rank that the interpolation uses, and
    #finite below (just above) lo_a + d exceeds the upper one, so both neighbours lie in that window. The pass
    counts the finite values (|x| <= largest) and the values below each window edge (-inf included).
    """
    sample = _approx_sample(source.x, layout, source.dtype)
    if sample is None:
        return False
    dtype = source.dtype
    quantiles = np.true_divide(percentiles, 100)
    estimates = np.empty((2, layout.groups))
    for g in range(layout.groups):
        finite = sample[g][np.isfinite(sample[g])]
        if finite.size < 2:
            return False
        # The sample's own percentiles, computed as the exact path computes them: where the sample is the whole
        # group (small groups), the estimates are the exact limits and so is the result.
        estimates[:, g] = _selected_percentiles(finite, quantiles, source.stats_dtype)
    lo, hi = estimates[0], np.maximum(estimates[0], estimates[1])
    with np.errstate(all="ignore"):
        tolerance = _APPROX_TOLERANCE * (hi - lo) / 255
    if not np.isfinite(tolerance).all():
        return False
    windows = np.empty((layout.groups, 4), dtype=dtype)
    for i, centre in enumerate((lo, hi)):
        windows[:, 2 * i] = _at_or_above(centre - tolerance, dtype)
        windows[:, 2 * i + 1] = np.nextafter(_at_or_below(centre + tolerance, dtype), dtype.type(np.inf))
    counts = _convert_finite(source, layout, lo, hi, nan, out, windows)
    finite = counts[:, 0]
    if (finite == 0).any():
        return False
    # x < edge counts -inf too. #(-inf) lies between 0 and the number of non-finite values: with both bounds
    # the proof is sound, and exact when all values are finite. If it fails only for that slack, one more
    # pass counts -inf.
    non_finite = layout.a * layout.run - finite
    if _window_proof(counts, np.zeros_like(non_finite), non_finite, quantiles):
        return True
    if not non_finite.any():
        return False
    lowest = np.full((layout.groups, 6), np.finfo(dtype).min, dtype=dtype)
    negative_infinite = _count_below(source, layout, lowest)[:, 0]
    return _window_proof(counts, negative_infinite, negative_infinite, quantiles)


def _window_proof(counts: np.ndarray, fewest_minus_inf, most_minus_inf, quantiles: np.ndarray) -> bool:
    """Whether both order statistics behind each limit lie in its window, given bounds on #(-inf) per group.

    counts: (G, 5) from _convert_finite. #finite below the low edge must be at most the lower rank (so its
    upper bound, with the fewest -inf, is tested) and #finite below the high edge must exceed the upper rank
    (its lower bound, with the most -inf).
    """
    for g in range(counts.shape[0]):
        prev_rank, next_rank, _ = _interpolation_plan(int(counts[g, 0]), quantiles)
        for i in range(2):
            below = counts[g, 1 + 2 * i] - fewest_minus_inf[g]
            through = counts[g, 2 + 2 * i] - most_minus_inf[g]
            if below > min(prev_rank[i], next_rank[i]) or through <= max(prev_rank[i], next_rank[i]):
                return False
    return True


def _at_or_above(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The smallest `dtype` values >= `values` (float64)."""
    rounded = values.astype(dtype)
    return np.where(rounded < values, np.nextafter(rounded, dtype.type(np.inf)), rounded)


def _at_or_below(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The largest `dtype` values <= `values` (float64)."""
    rounded = values.astype(dtype)
    return np.where(rounded > values, np.nextafter(rounded, dtype.type(-np.inf)), rounded)


def _approx_sample(x: np.ndarray, layout: _Layout, dtype: np.dtype) -> np.ndarray | None:
    """About _APPROX_SAMPLE elements of every group at fixed logical positions, as `dtype`: (G, m); None
    for groups under _APPROX_MIN_STRIDE * _APPROX_SAMPLE elements.

    The positions depend only on the shape, so every memory layout and dtype of the same values gives the
    same sample (and the same approximate result).
    """
    per_group = layout.a * layout.run
    stride = min(_SAMPLE_STRIDE, per_group // _APPROX_SAMPLE)
    if stride < _APPROX_MIN_STRIDE:  # the sample would be a sizeable copy of the data: use exact limits
        return None
    return _strided_sample(x, layout, stride, dtype)


def _lane_count(layout: _Layout) -> int:
    """Lane block length for a short repeating group pattern, or 0 to use the per-run kernels."""
    if layout.groups == 1 or layout.period > _MAX_LANES or layout.run >= 16:
        return 0
    # Long enough for the loops over lanes to vectorize well, and a multiple of 32 where possible, so that
    # they have no scalar remainder.
    unit = math.lcm(layout.period, 32)
    return unit * max(1, _LANE_BLOCK // unit)


def _finite_minmax(source: _Source, layout: _Layout):
    k = _kernels()
    n_chunks = _n_chunks()
    acc = np.empty((0, layout.groups, 2))
    for start, chunk in source.chunks():
        with k.kernel_lock():
            part = k.finite_minmax(chunk, start, layout.groups, layout.run, n_chunks)
        acc = np.concatenate([acc, part])
    lo, hi = acc[:, :, 0].min(axis=0), acc[:, :, 1].max(axis=0)
    empty = lo > hi  # no finite value in the group
    return np.where(empty, np.nan, lo), np.where(empty, np.nan, hi)


# --- percentiles ----------------------------------------------------------------------------------------------


def _percentiles(source: _Source, layout: _Layout, q: np.ndarray):
    """Exact percentiles q (1-D) of each group: a list of len(q) float64 arrays of shape (G,)."""
    quantiles = np.true_divide(q, 100)  # NumPy's own step, so virtual indexes match bit for bit
    counts, stats = _order_statistics(source, layout, quantiles)
    result = np.full((q.size, layout.groups), np.nan)
    for g in range(layout.groups):
        if counts[g]:
            result[:, g] = _interpolate(int(counts[g]), quantiles, stats[g], source.stats_dtype)
    result += 0.0  # +0.0 for a zero, as the reference
    return list(result)


def _interpolate(n: int, quantiles: np.ndarray, order_statistics: dict, dtype: np.dtype) -> np.ndarray:
    """NumPy's "linear" percentiles of n values from their order statistics (rank -> value for every rank of
    _needed_ranks), interpolated in `dtype` as NumPy does."""
    prev_rank, next_rank, gamma = _interpolation_plan(n, quantiles)
    prev = np.array([order_statistics[r] for r in prev_rank], dtype=dtype)
    nxt = np.array([order_statistics[r] for r in next_rank], dtype=dtype)
    return _lerp(prev, nxt, gamma)


def _selected_percentiles(finite: np.ndarray, quantiles: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Percentiles of a non-empty 1-D array of finite values, by single-rank selections (reorders it)."""
    ranks = _needed_ranks(finite.size, quantiles)
    return _interpolate(finite.size, quantiles, dict(zip(ranks, _select(finite, ranks), strict=True)), dtype)


def _interpolation_plan(n: int, quantiles: np.ndarray):
    """NumPy's "linear" method: neighbour ranks and weights, with its exact arithmetic and edge rules."""
    virtual = (n - 1) * quantiles
    prev = np.floor(virtual)
    nxt = prev + 1
    above = virtual >= n - 1
    prev[above] = -1
    nxt[above] = -1
    gamma = virtual - prev
    prev_rank = np.where(prev < 0, n - 1, prev).astype(np.int64)
    next_rank = np.where(nxt < 0, n - 1, nxt).astype(np.int64)
    return prev_rank, next_rank, gamma


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    # numpy.lib._function_base_impl._lerp, step for step: the difference is taken in the data's dtype.
    diff = b - a
    result = np.add(a, diff * t)
    np.subtract(b, diff * (1 - t), out=result, where=t >= 0.5, casting="unsafe", dtype=np.float64)
    return result.astype(np.float64)


def _needed_ranks(n: int, quantiles: np.ndarray) -> list[int]:
    prev_rank, next_rank, _ = _interpolation_plan(n, quantiles)
    return sorted(set(prev_rank.tolist()) | set(next_rank.tolist()))


def _order_statistics(source: _Source, layout: _Layout, quantiles: np.ndarray):
    """Finite count per group, and per group a dict rank -> value for every rank the interpolation needs."""
    counts = stats = None
    if source.direct:
        counts, stats = _bracketed(source, layout, quantiles)
        if stats is None and layout.groups > _RADIX_GROUPS:
            return _sorted(source, layout, quantiles)
    if stats is None:
        counts, stats = np.zeros(layout.groups, dtype=np.int64), [None] * layout.groups
    missing = [g for g in range(layout.groups) if stats[g] is None]
    if missing:
        _radix(source, layout, quantiles, missing, counts, stats)
    return counts, stats


def _sorted(source: _Source, layout: _Layout, quantiles: np.ndarray):
    """Many groups (direct source): sort each group's finite values in parallel, one group per task."""
    k = _kernels()
    with k.kernel_lock():
        counts, prev, nxt = k.sorted_select(source.x.reshape(-1), layout.a, layout.groups, layout.run, quantiles)
    stats = []
    for g in range(layout.groups):
        found = {}
        if counts[g]:
            prev_rank, next_rank, _ = _interpolation_plan(int(counts[g]), quantiles)
            found.update(zip(prev_rank.tolist(), prev[g], strict=True))
            found.update(zip(next_rank.tolist(), nxt[g], strict=True))
        stats.append(found)
    return counts, stats


def _sample(source: _Source, layout: _Layout) -> np.ndarray | None:
    """A strided sample of every group, shape (G, m), or None when the groups are too small to bother."""
    if layout.a * layout.run // _SAMPLE_STRIDE < _MIN_SAMPLE:
        return None
    return _strided_sample(source.x, layout, _SAMPLE_STRIDE, source.dtype)


def _strided_sample(x: np.ndarray, layout: _Layout, stride: int, dtype: np.dtype) -> np.ndarray:
    """Every group's elements at logical positions (a, b) = (i * step_a, j * step_b) with step_a * step_b
    about `stride`, as `dtype`: (G, m). The positions depend only on the shape (not on layout or dtype)."""
    step_b = min(layout.run, stride)
    step_a = max(1, stride // step_b)
    if x.flags.c_contiguous and x.dtype == dtype:  # == is False for swapped byte order
        # One element per cache line or page: a parallel kernel keeps more of these misses in flight.
        k = _kernels()
        with k.kernel_lock():
            return k.strided_sample(x.reshape(-1), layout.a, layout.groups, layout.run, step_a, step_b, _n_chunks())
    if x.flags.c_contiguous:
        picked = x.reshape(layout.a, layout.groups, layout.run)[::step_a, :, ::step_b]
    else:
        a, g, b = np.meshgrid(
            np.arange(0, layout.a, step_a),
            np.arange(layout.groups),
            np.arange(0, layout.run, step_b),
            indexing="ij",
            sparse=True,
        )
        flat = (a * layout.groups + g) * layout.run + b
        # Unravelled as 1-D: NumPy 2.4 mis-unravels (n, g, 1) index arrays past 8192 elements (numpy#31980).
        picked = x[np.unravel_index(flat.reshape(-1), x.shape)].reshape(flat.shape)
    return np.moveaxis(picked, 1, 0).reshape(layout.groups, -1).astype(dtype, copy=False)


def _bracketed(source: _Source, layout: _Layout, quantiles: np.ndarray):
    """Sample, propose brackets, count and collect (one pass for runs), select. None if no sample."""
    sample = _sample(source, layout)
    if sample is None:
        return None, None
    low, high, expected = _propose_brackets(sample, quantiles, source.dtype, layout.a * layout.run)
    groups, n_brackets = low.shape
    if n_brackets == 0:
        return None, None
    if _lane_count(layout) and layout.groups > 1:
        below, members = _count_then_collect(source, layout, low, high)
    else:
        below, members = _scan(source, layout, low, high, expected)
    if below is None:
        return None, None
    counts = below[:, 1] - below[:, 0]
    rank_low = below[:, 2::2][:, :n_brackets] - below[:, :1]  # finite values below each bracket
    rank_high = below[:, 3::2][:, :n_brackets] - below[:, :1]

    stats: list[dict | None] = [None] * groups
    for g in range(groups):
        if counts[g] == 0:
            stats[g] = {}
            continue
        by_bracket: dict[int, list[int]] = {}
        for r in _needed_ranks(int(counts[g]), quantiles):
            inside = np.nonzero((rank_low[g] <= r) & (r < rank_high[g]))[0]
            if inside.size == 0:
                by_bracket = None  # the sample misled us: this group goes to radix
                break
            by_bracket.setdefault(int(inside[0]), []).append(r)
        if by_bracket is None:
            continue
        found = {}
        for j, ranks in by_bracket.items():
            values = members(g, j, int(rank_high[g, j] - rank_low[g, j]))
            if values is None:
                found = None
                break
            offsets = [r - int(rank_low[g, j]) for r in ranks]
            found.update(zip(ranks, _select(values, offsets), strict=True))
        stats[g] = found
    return counts, stats


def _select(values: np.ndarray, ranks: list[int]) -> list:
    """values[ranks] of sorted(values), for sorted ranks; reorders `values` in place.

    One single-rank partition per distinct rank, each over what lies above the previous one: NumPy's
    partition with several ranks at once is about 15x slower than with one.
    """
    picked = {}
    start = 0
    for r in sorted(set(ranks)):
        part = values[start:]
        if r == start + 1 and start in picked:  # the next order statistic: the minimum of what lies above
            part = part[1:]
            where = int(np.argmin(part))
            part[0], part[where] = part[where], part[0]
        else:
            part.partition(r - start)
        picked[r] = values[r]
        start = r
    return [picked[r] for r in ranks]


def _propose_brackets(sample: np.ndarray, quantiles: np.ndarray, dtype: np.dtype, group_size: int):
    """Per group, value brackets likely to hold the needed order statistics, from a sample (G, m).

    Returns low, high (G, B) in `dtype` (padding brackets [inf, inf) hold nothing) and the expected number of
    members of each bracket in the whole group (from the sample's share, with a margin).
    """
    lowest, highest = np.finfo(dtype).min, dtype.type(np.inf)
    brackets = []
    for g in range(sample.shape[0]):
        finite = sample[g][np.isfinite(sample[g])]
        m = finite.size
        group_brackets = []
        if m >= 2:
            spans = []
            for p in np.unique(quantiles):
                centre = p * (m - 1)
                margin = 4.0 * math.sqrt(m * p * (1 - p)) + 4  # misses ~1 in 15 000 brackets
                spans.append((math.floor(centre - margin), math.ceil(centre + margin) + 1))
            spans.sort()
            merged = [list(spans[0])]
            for s, e in spans[1:]:
                if s <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], e)
                else:
                    merged.append([s, e])
            kth = sorted({i for s, e in merged for i in (s, e) if 0 <= i < m})
            at = dict(zip(kth, _select(finite, kth), strict=True))
            for s, e in merged:
                low = at[s] if s >= 0 else lowest
                high = np.nextafter(at[e], highest) if e < m else highest
                share = (min(e, m) - max(s, 0) + 1) / m
                group_brackets.append((dtype.type(low), dtype.type(high), share))
        brackets.append(group_brackets)
    n_brackets = max((len(b) for b in brackets), default=0)
    low = np.full((len(brackets), n_brackets), highest, dtype=dtype)
    high = np.full((len(brackets), n_brackets), highest, dtype=dtype)
    expected = np.zeros((len(brackets), n_brackets), dtype=np.int64)
    for g, group_brackets in enumerate(brackets):
        for j, (lo_j, hi_j, share) in enumerate(group_brackets):
            low[g, j], high[g, j] = lo_j, hi_j
            expected[g, j] = int(1.5 * share * group_size) + 1024
    return low, high, expected


def _thresholds(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """(G, T) thresholds: (lowest finite, inf), then each bracket's (low, high); padded with inf to 6k."""
    groups, n_brackets = low.shape
    n_thr = -(-(2 + 2 * n_brackets) // 6) * 6
    thresholds = np.full((groups, n_thr), np.inf, dtype=low.dtype)
    thresholds[:, 0] = np.finfo(low.dtype).min  # x < lowest finite: -inf
    thresholds[:, 2 : 2 + 2 * n_brackets : 2] = low
    thresholds[:, 3 : 3 + 2 * n_brackets : 2] = high
    return thresholds


def _scan(source: _Source, layout: _Layout, low, high, expected):
    """One pass that counts below every threshold and collects bracket members (runs layout, direct source).

    Returns (G, T) counts and members(g, j, size) -> values of bracket j of group g (None if too many).
    Regions are sized from the sample's estimate; a bracket that overflowed them is collected again, exactly.
    """
    k = _kernels()
    n_chunks = _n_chunks()
    groups, n_brackets = low.shape
    thresholds = _thresholds(low, high)
    n_pairs = thresholds.shape[1] // 2
    cap = np.zeros((groups, n_pairs), dtype=np.int64)
    per_chunk = expected if groups > 1 else -(-expected // n_chunks)
    cap[:, 1 : 1 + n_brackets] = np.where(np.isinf(low) & np.isinf(high), 0, per_chunk)
    if cap.sum() * n_chunks > _MAX_CANDIDATES:
        return None, None
    slots = cap + 1  # one sink slot per region (see _kernels._gather_members)
    base = np.zeros_like(cap)
    base.reshape(-1)[1:] = np.cumsum(slots.reshape(-1))[:-1]
    dest = np.empty((n_chunks, int(slots.sum())), dtype=source.dtype)
    x = source.x.reshape(-1)
    with k.kernel_lock():
        counts, written = k.scan_runs(
            x, 0, layout.groups, layout.run, thresholds, base, cap, dest, n_chunks, _SCAN_BLOCK // source.dtype.itemsize
        )
    below = counts.sum(axis=0)

    def members(g: int, j: int, size: int):
        pair = j + 1
        if (written[:, g, pair] <= cap[g, pair]).all():
            return np.concatenate(
                [dest[c, base[g, pair] : base[g, pair] + written[c, g, pair]] for c in range(n_chunks)]
            )
        if size > _MAX_CANDIDATES:
            return None
        return _collect_one(source, layout, g, low[g, j], high[g, j], size)

    return below, members


def _count_then_collect(source: _Source, layout: _Layout, low, high):
    """Lanes layout: a counting pass, then one collecting pass sized exactly by the counts."""
    below = _count_below(source, layout, _thresholds(low, high))
    n_brackets = low.shape[1]
    sizes = below[:, 3 : 3 + 2 * n_brackets : 2] - below[:, 2 : 2 + 2 * n_brackets : 2]
    if sizes.sum() > _MAX_CANDIDATES:
        return None, None
    k = _kernels()
    n_chunks = _n_chunks()
    base = np.zeros_like(sizes)
    base.reshape(-1)[1:] = np.cumsum(sizes.reshape(-1))[:-1]
    dest = np.empty((n_chunks, max(int(sizes.sum()), 1)), dtype=source.dtype)
    lanes = _lane_count(layout)
    lane_groups = layout.lane_groups(lanes)
    with k.kernel_lock():
        written = k.collect_lanes(
            source.x.reshape(-1),
            np.ascontiguousarray(low[lane_groups].T),
            np.ascontiguousarray(high[lane_groups].T),
            lane_groups,
            base,
            dest,
            n_chunks,
            _COUNT_BLOCK // lanes * lanes,
        )

    def members(g: int, j: int, size: int):
        return np.concatenate([dest[c, base[g, j] : base[g, j] + written[c, g, j]] for c in range(n_chunks)])

    return below, members


def _collect_one(source: _Source, layout: _Layout, g: int, low, high, size: int) -> np.ndarray:
    """The members of one bracket of group g (exactly `size` of them), by a collecting pass."""
    k = _kernels()
    n_chunks = _n_chunks()
    lows = np.full((layout.groups, 1), np.inf, dtype=source.dtype)
    highs = np.full((layout.groups, 1), np.inf, dtype=source.dtype)
    lows[g, 0], highs[g, 0] = low, high
    base = np.zeros((layout.groups, 1), dtype=np.int64)
    dest = np.empty((n_chunks, max(size, 1)), dtype=source.dtype)
    with k.kernel_lock():
        written = k.collect(source.x.reshape(-1), 0, layout.groups, layout.run, lows, highs, base, dest, n_chunks)
    return np.concatenate([dest[c, : written[c, g, 0]] for c in range(n_chunks)])


def _count_below(source: _Source, layout: _Layout, thresholds: np.ndarray) -> np.ndarray:
    """(G, T) counts of x < thresholds[g, t] over each group (any source: streamed in chunks if need be)."""
    k = _kernels()
    n_chunks = _n_chunks()
    n_thr = thresholds.shape[1]
    result = np.zeros(thresholds.shape, dtype=np.int64)
    lanes = _lane_count(layout) if layout.groups > 1 else 0
    if lanes:
        lane_groups = layout.lane_groups(lanes)
        lane_thresholds = np.ascontiguousarray(thresholds[lane_groups].T)  # (T, L)
    else:
        padded = np.empty((layout.groups, -(-n_thr // 6) * 6), dtype=thresholds.dtype)
        padded[:, :n_thr] = thresholds
        padded[:, n_thr:] = thresholds[:, -1:]
    for start, chunk in source.chunks():
        with k.kernel_lock():
            if lanes:
                shift = start % lanes
                per_lane = k.count_lanes(
                    chunk,
                    np.ascontiguousarray(np.roll(lane_thresholds, -shift, axis=1)),
                    n_chunks,
                    _COUNT_BLOCK // lanes * lanes,
                ).sum(axis=0)  # (T, L)
                np.add.at(result, np.roll(lane_groups, -shift), per_lane.T)
            else:
                counts = k.count_runs(chunk, start, layout.groups, layout.run, padded, n_chunks, _COUNT_BLOCK)
                result += counts.sum(axis=0)[:, :n_thr]
    return result


def _radix(source: _Source, layout: _Layout, quantiles, groups: list[int], counts, stats) -> None:
    """Exact order statistics of `groups` by most-significant-digit radix selection on the float keys."""
    k = _kernels()
    n_chunks = _n_chunks()
    key_bits = 8 * source.dtype.itemsize
    bits_dtype = np.uint32 if key_bits == 32 else np.uint64
    shifts = list(range(key_bits - 16, -1, -16))

    def histogram(g_lo, g_hi, shift, prefix_shift, prefixes, use_prefix):
        total = np.zeros((g_hi - g_lo, 65536), dtype=np.int64)
        for start, chunk in source.chunks():
            with k.kernel_lock():
                part = k.radix_hist(
                    chunk.view(bits_dtype),
                    start,
                    layout.groups,
                    layout.run,
                    g_lo,
                    g_hi,
                    shift,
                    prefix_shift,
                    prefixes,
                    use_prefix,
                    n_chunks,
                )
            total += part.sum(axis=0)
        return total

    for batch_start in range(0, len(groups), _RADIX_GROUPS):
        batch = groups[batch_start : batch_start + _RADIX_GROUPS]
        g_lo, g_hi = batch[0], batch[-1] + 1  # contiguous span covering the batch
        no_prefix = np.zeros(layout.groups, dtype=np.uint64)
        top = histogram(g_lo, g_hi, shifts[0], 0, no_prefix, False)
        # per (group, rank): [prefix so far, rank within prefix]
        pending = {}
        for g in batch:
            n = int(top[g - g_lo].sum())
            counts[g] = n
            stats[g] = {}
            if n == 0:
                continue
            cumulative = np.cumsum(top[g - g_lo])
            for r in _needed_ranks(n, quantiles):
                digit = int(np.searchsorted(cumulative, r, side="right"))
                before = int(cumulative[digit - 1]) if digit else 0
                pending[(g, r)] = [digit, r - before]
        for level, shift in enumerate(shifts[1:], start=1):
            prefix_shift = shift + 16
            while any(len(state) == 2 for state in pending.values()):
                # one pass serves one prefix per group
                prefixes = np.zeros(layout.groups, dtype=np.uint64)
                chosen = {}
                for (g, _), state in pending.items():
                    if len(state) == 2 and g not in chosen:
                        chosen[g] = state[0]
                        prefixes[g] = state[0]
                hist = histogram(g_lo, g_hi, shift, prefix_shift, prefixes, True)
                for (g, _), state in pending.items():
                    if len(state) == 2 and chosen.get(g) == state[0]:
                        cumulative = np.cumsum(hist[g - g_lo])
                        digit = int(np.searchsorted(cumulative, state[1], side="right"))
                        before = int(cumulative[digit - 1]) if digit else 0
                        state[:] = [(state[0] << 16) | digit, state[1] - before, level]
            for state in pending.values():
                del state[2:]
        for (g, r), (key, _) in pending.items():
            stats[g][r] = _key_to_value(key, source.dtype)


def _key_to_value(key: int, dtype: np.dtype):
    bits = 8 * dtype.itemsize
    sign_bit = 1 << (bits - 1)
    raw = key ^ sign_bit if key & sign_bit else key ^ ((1 << bits) - 1)
    return np.array(raw, dtype=np.uint32 if bits == 32 else np.uint64).view(dtype)[()]
