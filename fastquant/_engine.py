"""The engine path (large inputs): limits from the passes, then the conversion pass, for an in-memory array.

This is one driver of the passes (:mod:`fastquant._passes`) and selections (:mod:`fastquant._select`); bulk
conversion and a Dask backend are others. Every data-derived limit is per group of the plan's layout.
"""

from __future__ import annotations

import numpy as np

from . import _approx, _passes, _select, _validate
from ._levels import scale_terms
from ._plan import Plan, note
from ._source import ArraySource


def to_uint8(x: np.ndarray, plan: Plan, vmin, vmax, percentiles, method: str, nan: int, out: np.ndarray | None):
    """to_uint8 for validated arguments. An `out` that shares memory with `x` is written once, at the end, from
    a staged output: the limits and a failed approx proof re-read the input."""
    source = ArraySource(x, plan)
    # may_share_memory: a bounds test (exact overlap tests can take exponential time); at worst one extra copy
    staged = out is not None and np.may_share_memory(out, x)
    target = np.empty(x.shape, dtype=np.uint8) if out is None or staged else out
    levels_view = target.transpose(plan.perm)
    converted = False
    if percentiles is not None and method == "approx":
        found = _approx.estimates(source, np.array(percentiles))
        if found is not None:
            lo, hi, windows = found
            counts = convert(source, lo, hi, nan, levels_view, windows)
            converted = _approx.prove(source, counts, np.array(percentiles))
            note("approx", proved=converted)
    if not converted:
        lo, hi = exact_limits(source, x.dtype, vmin, vmax, percentiles)
        convert(source, lo, hi, nan, levels_view)
    if staged:
        out[...] = target
        return out
    return target


def limits(x: np.ndarray, plan: Plan, vmin, vmax, percentiles, method: str):
    """The (G,) limits to_uint8 uses: for approx the proved estimates, or the exact limits."""
    source = ArraySource(x, plan)
    if percentiles is not None and method == "approx":
        found = _approx.limits(source, np.array(percentiles))
        if found is not None:
            return found
    return exact_limits(source, x.dtype, vmin, vmax, percentiles)


def percentile(x: np.ndarray, plan: Plan, q: np.ndarray) -> np.ndarray:
    """Exact percentiles: (q.size, G)."""
    return _select.percentiles(ArraySource(x, plan), q.reshape(-1))


def exact_limits(source, dtype: np.dtype, vmin, vmax, percentiles):
    """(lo, hi) per group, hi >= lo; NaN for a group without finite values where the limits are data-derived."""
    groups = source.layout.groups
    if percentiles is not None:
        lo, hi = _select.percentiles(source, np.array(percentiles, dtype=np.float64))
    elif vmin is None and vmax is None:
        lo, hi = (np.full(groups, v) for v in _validate.nominal_limits(dtype))
    elif vmin is not None and vmax is not None:
        lo, hi = _group_limits(vmin, groups), _group_limits(vmax, groups)
    else:
        data_lo, data_hi = _passes.run(_passes.FiniteMinMax(groups), source)
        lo = data_lo if vmin is None else _group_limits(vmin, groups)
        hi = data_hi if vmax is None else _group_limits(vmax, groups)
    hi = np.where(lo > hi, lo, hi)
    undefined = np.isnan(lo) | np.isnan(hi)  # no finite value to derive a limit from: both limits NaN
    return np.where(undefined, np.nan, lo), np.where(undefined, np.nan, hi)


def _group_limits(limit: np.ndarray, groups: int) -> np.ndarray:
    """A keepdims-shaped given limit as one value per group (a single group: the limits are uniform)."""
    flat = limit.reshape(-1)
    return np.full(groups, flat[0]) if flat.size == 1 else flat.copy()


def convert(source, lo, hi, nan: int, levels_view: np.ndarray, windows=None):
    """The conversion pass (with the approx proof counts when `windows` is given)."""
    # A group whose limits are undefined (no finite data) maps entirely to `nan`; the kernels need finite limits,
    # so such groups get placeholder limits and are overwritten block by block.
    undefined = np.isnan(lo) | np.isnan(hi)
    lo = np.where(undefined, 0.0, lo)
    hi = np.where(undefined, 0.0, hi)
    hi = np.where(hi == lo, lo, hi)  # equal limits (0.0 and -0.0 too) -> scale +inf, never -inf (kernels' rule)
    factor, lo_scaled, scale = scale_terms(lo, hi)
    pass_ = _passes.Convert(lo, factor, lo_scaled, scale, float(nan), levels_view, undefined, windows)
    return _passes.run(pass_, source)
