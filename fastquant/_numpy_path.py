"""The NumPy path for small inputs: the reference's algorithm with cheaper selections and fewer passes.

Below ``Tuning.numba_min_size`` elements this path does the work, so a one-shot conversion of a small map never
imports numba. It is tested equal to :mod:`fastquant.reference` (bit for bit), and never imports the engine.
"""

from __future__ import annotations

import math

import numpy as np

from . import _validate, reference
from ._levels import DEFAULT_RULE, centred, plain_span
from ._select import lerp, selected_percentiles

MANY_ROWS = 4  # at least this many rows of at most SHORT_ROW values: all rows sorted at once
SHORT_ROW = 1 << 12


def to_uint8(
    x: np.ndarray, vmin, vmax, percentiles, axes: tuple[int, ...], nan: int, out: np.ndarray | None, rule=DEFAULT_RULE
):
    """to_uint8 (to_uint16 with ``rule.top`` 65535) for validated arguments."""
    lo, hi = centred(*limits(x, vmin, vmax, percentiles, axes), rule.center)
    return quantize(x, lo, hi, nan, out, rule)


def limits(x: np.ndarray, vmin, vmax, percentiles, axes: tuple[int, ...]):
    """reference limits, with the faster selection of :func:`percentile` for percentile limits."""
    if percentiles is None:
        return reference._limits(x, vmin, vmax, None, axes)
    shape = _validate.keepdims_shape(x.shape, axes)
    lo, hi = (p.reshape(shape) for p in percentile(x, np.array(percentiles), axes))
    return lo, np.where(lo > hi, lo, hi)


def percentile(x: np.ndarray, q: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """reference.percentile, with single-rank selections in place of numpy.percentile's multi-rank partition:
    the same order statistics and NumPy's interpolation step for step, so the same values (tested), several
    times faster."""
    values = x.astype(_validate.percentile_dtype(x.dtype), copy=False)
    kept = [i for i in range(x.ndim) if i not in axes]
    kept_shape = tuple(x.shape[i] for i in kept)
    rows = np.transpose(values, kept + list(axes)).reshape(math.prod(kept_shape), math.prod(x.shape[i] for i in axes))
    quantiles = np.true_divide(q.reshape(-1), 100)  # NumPy's own step, so virtual indexes match bit for bit
    result = np.full((rows.shape[0], quantiles.size), np.nan)
    if quantiles.size and rows.shape[0] >= MANY_ROWS and rows.shape[1] <= SHORT_ROW:
        result = _sorted_rows_percentiles(rows, quantiles)
    elif quantiles.size:
        for i, row in enumerate(rows):
            finite = row[np.isfinite(row)]  # a copy: the selection reorders it
            if finite.size:
                result[i] = selected_percentiles(finite, quantiles, values.dtype)
    result += 0.0  # +0.0 for a zero, as the reference
    return np.moveaxis(result, 0, -1).reshape(q.shape + kept_shape)


def _sorted_rows_percentiles(rows: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Percentiles of many short rows at once: every row sorted (non-finite values as NaN, last), then NumPy's
    interpolation of the same order statistics, element for element (no Python loop per row)."""
    ordered = np.where(np.isfinite(rows), rows, np.nan)
    ordered.sort(axis=1)
    n = np.count_nonzero(~np.isnan(ordered), axis=1)[:, None]
    virtual = (n - 1) * quantiles[None, :]  # interpolation_plan's arithmetic
    above = virtual >= n - 1
    prev = np.floor(virtual)
    prev_rank = np.clip(np.where(above, n - 1, prev), 0, None).astype(np.int64)
    next_rank = np.clip(np.where(above, n - 1, prev + 1), 0, None).astype(np.int64)
    lower = np.take_along_axis(ordered, prev_rank, axis=1)
    upper = np.take_along_axis(ordered, next_rank, axis=1)
    with np.errstate(invalid="ignore"):
        result = lerp(lower, upper, np.where(above, virtual + 1, virtual - prev))
    result[n[:, 0] == 0] = np.nan
    return result


def quantize(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, nan: int, out: np.ndarray | None, rule=DEFAULT_RULE):
    """reference.quantize in fewer NumPy passes where the limits are ordinary (equal bit for bit).

    Ordinary: lo < hi with top / (hi - lo) a normal float64 (the scale terms' factor 1), so
    t = (x - lo) * (top / (hi - lo)) is the reference's arithmetic. Rounding t and then clipping it to [0, top]
    gives the reference's three-way rule: x <= lo gives t <= 0, and x >= hi gives t >= top up to an ulp. t is NaN
    exactly where x is. Other limits (equal, extreme, undefined) and non-linear stretches take the reference's rule.
    """
    top = rule.top
    if rule.stretch == "linear" and bool(np.all(plain_span(lo, hi, top))):
        with np.errstate(all="ignore"):
            t = x.astype(np.float64, order="C")
            np.subtract(t, lo, out=t)
            np.multiply(t, float(top) / (hi - lo), out=t)
        np.rint(t, out=t)
        np.clip(t, 0.0, float(top), out=t)
        np.copyto(t, float(nan), where=np.isnan(t))
        levels = t.astype(rule.dtype)
    else:
        levels = reference.quantize(x, lo, hi, nan, top, rule.stretch)
    if out is None:
        return levels
    out[...] = levels
    return out
