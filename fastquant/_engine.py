"""The engine path (large inputs): limits from the passes, then the conversion pass, for an in-memory array.

This is one driver of the passes (:mod:`fastquant._passes`) and selections (:mod:`fastquant._select`); bulk
conversion and a Dask backend are others. Every data-derived limit is per group of the plan's layout.
"""

from __future__ import annotations

import threading

import numpy as np

from . import _approx, _passes, _select, _validate
from ._levels import DEFAULT_RULE, Rule, centred, scale_terms
from ._plan import Plan, note
from ._source import ArraySource, ChunkedSource, block_shape


def to_uint8(
    x: np.ndarray,
    plan: Plan,
    vmin,
    vmax,
    percentiles,
    method: str,
    nan: int,
    out: np.ndarray | None,
    lut=None,
    rule: Rule = DEFAULT_RULE,
):
    """to_uint8 for validated arguments. An `out` that shares memory with `x` is written once, at the end, from
    a staged output: the limits and a failed approx proof re-read the input.

    With a (257, C) colour table `lut` (see :class:`fastquant._passes.Convert`) the output has a trailing axis of
    C and holds the colours of the levels, made in the same pass (`nan` is then unused). `rule`: 16-bit levels,
    a stretch, a centre (approx limits apply to the fused 8-bit linear rule only: others take the exact limits).
    """
    source = ArraySource(x, plan)
    method = method if rule.fused else "exact"
    # may_share_memory: a bounds test (exact overlap tests can take exponential time); at worst one extra copy
    staged = out is not None and np.may_share_memory(out, x)
    shape = x.shape if lut is None else x.shape + (lut.shape[1],)
    target = np.empty(shape, dtype=rule.dtype) if out is None or staged else out
    levels_view = target.transpose(plan.perm if lut is None else tuple(plan.perm) + (x.ndim,))
    if lut is not None or not _one_sided_fused(source, vmin, vmax, percentiles, nan, levels_view, rule):
        levels_with_limits(
            source, x.dtype, vmin, vmax, percentiles, method, nan,
            lambda lo, hi, windows: convert(source, lo, hi, nan, levels_view, windows, lut, rule), rule.center,
        )  # fmt: skip
    if staged:
        out[...] = target
        return out
    return target


def _one_sided_fused(source, vmin, vmax, percentiles, nan: int, levels_view, rule: Rule) -> bool:
    """Write the levels of one-sided limits with the fused pass where it applies (see
    :class:`fastquant._passes.OneSidedConvert`); False when it does not, or when a range needs rescaling."""
    one_sided = percentiles is None and (vmin is None) != (vmax is None)
    if not (one_sided and rule.fused and rule.center is None and source.direct and levels_view.flags.c_contiguous):
        return False
    if not _passes.OneSidedConvert.applies(source.layout):
        return False
    given = np.ascontiguousarray(np.reshape(vmin if vmax is None else vmax, -1), dtype=np.float64)
    pass_ = _passes.OneSidedConvert(given, vmax is not None, float(nan), levels_view.reshape(-1))
    return _passes.run(pass_, source)


def source_for(x, plan: Plan, block_elements: int | None = None, chunks=None):
    """An in-memory array's source, or a block source over an array-like (blocks of `block_elements`)."""
    if isinstance(x, np.ndarray):
        return ArraySource(x, plan)
    return ChunkedSource(x, plan, block_elements, chunks)


def limits(x, plan: Plan, vmin, vmax, percentiles, method: str, block_elements=None, chunks=None, center=None):
    """The (G,) limits to_uint8 uses: for approx the proved estimates, or the exact limits (then centred)."""
    source = source_for(x, plan, block_elements, chunks)
    if percentiles is not None and method == "approx":
        found = _approx.limits(source, np.array(percentiles))
        if found is not None:
            return centred(*found, center)
    return centred(*exact_limits(source, np.dtype(x.dtype), vmin, vmax, percentiles), center)


def percentile(x, plan: Plan, q: np.ndarray, block_elements=None, chunks=None) -> np.ndarray:
    """Exact percentiles: (q.size, G)."""
    return _select.percentiles(source_for(x, plan, block_elements, chunks), q.reshape(-1))


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
    # In place: every branch above made fresh arrays (a million groups: each temporary costs about a millisecond)
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    np.copyto(hi, lo, where=lo > hi)
    undefined = np.isnan(lo) | np.isnan(hi)  # no finite value to derive a limit from: both limits NaN
    if undefined.any():
        lo[undefined] = hi[undefined] = np.nan
    return lo, hi


def _group_limits(limit: np.ndarray, groups: int) -> np.ndarray:
    """A keepdims-shaped given limit as one value per group (a single group: the limits are uniform)."""
    flat = limit.reshape(-1)
    return np.full(groups, flat[0]) if flat.size == 1 else flat.copy()


def convert(source, lo, hi, nan: int, levels_view: np.ndarray, windows=None, lut=None, rule: Rule = DEFAULT_RULE):
    """The conversion pass (with the approx proof counts when `windows` is given; colours with `lut`)."""
    return _passes.run(convert_pass(lo, hi, nan, levels_view, windows, lut, rule), source)


def convert_blocks(
    source, lo, hi, nan: int, emit, windows=None, indexes=None, lut=None, rule: Rule = DEFAULT_RULE,
    allocate=np.empty,
):  # fmt: skip
    """The conversion pass over a block source, each block's levels (logical order; colours on a trailing axis
    with `lut`) handed to ``emit(index, levels)`` as soon as they are made, instead of written into one output
    array. ``allocate(shape, dtype)`` makes the array of each block's levels (a :class:`Buffers` reuses them)."""
    pass_ = convert_pass(lo, hi, nan, None, windows, lut, rule)
    partial = pass_.create()
    channels = () if lut is None else (lut.shape[1],)
    for block in source.blocks(indexes=indexes):
        shape = block_shape(block.index, source.geometry.shape) + channels
        levels = allocate(shape, rule.dtype)
        convert_into(pass_, partial, block, levels)
        emit(block.index, levels)
    return pass_.finalize(partial)


def convert_into(pass_, partial, block, levels: np.ndarray) -> None:
    """Append `block` to the conversion pass `pass_` (made by :func:`convert_pass`, one per thread), its levels
    written into `levels` (the block's shape, logical order)."""
    pass_.out = _Window(block.index, levels)
    pass_.append(partial, block)


class Buffers:
    """Arrays handed out again once given back, so that a write pass does not take fresh memory for every block.

    Fresh memory costs its first touch: the kernel zeroes each page (a 4 MiB array of levels is two huge
    pages) and unmaps it on release; for the 32 images of a 2048² volume that was about 13 ms of CPU time.
    Thread-safe: encoder threads give back what the converting thread takes."""

    def __init__(self):
        self._free: dict[tuple, list[np.ndarray]] = {}
        self._lock = threading.Lock()

    def take(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        """An uninitialised C-contiguous array of this shape and dtype."""
        key = (tuple(shape), np.dtype(dtype))
        with self._lock:
            free = self._free.get(key)
            if free:
                return free.pop()
        return np.empty(shape, dtype=dtype)

    def give(self, array: np.ndarray) -> None:
        """Take `array` back (made by :meth:`take`; its owner no longer uses it)."""
        with self._lock:
            self._free.setdefault((array.shape, array.dtype), []).append(array)


class _Window:
    """The output of one block, standing in for the whole output array that the Convert pass indexes."""

    def __init__(self, index: tuple[slice, ...], levels: np.ndarray):
        self.index, self.levels = index, levels

    def __getitem__(self, index: tuple[slice, ...]) -> np.ndarray:
        assert index == self.index, "a block's window serves that block only"
        return self.levels


def convert_pass(lo, hi, nan: int, levels_view, windows=None, lut=None, rule: Rule = DEFAULT_RULE):
    """The Convert pass for per-group limits (NaN limits: the group maps to `nan`, or to ``lut[256]``); for a
    rule other than 8-bit linear levels, the ConvertGeneral pass."""
    # A group whose limits are undefined (no finite data) maps entirely to `nan`; the kernels need finite limits,
    # so such groups get placeholder limits and are overwritten block by block.
    undefined = np.isnan(lo) | np.isnan(hi)
    if not rule.fused:
        assert windows is None, "approx limits are proved for the fused rule only"
        lo, hi = np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64)
        nan_level = nan if lut is None else 0
        return _passes.ConvertGeneral(lo, hi, rule.top, rule.stretch, nan_level, levels_view, undefined, lut)
    lo, hi = np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64)  # copies: the caller keeps its limits
    if undefined.any():
        lo[undefined] = hi[undefined] = 0.0
    np.copyto(hi, lo, where=hi == lo)  # equal limits (0.0 and -0.0 too) -> scale +inf, never -inf (kernels' rule)
    factor, lo_scaled, scale = scale_terms(lo, hi)
    nan_level = float(nan) if lut is None else 0.0  # colour: NaN is told apart by the kernels (lut[256])
    return _passes.Convert(lo, factor, lo_scaled, scale, nan_level, levels_view, undefined, windows, lut)


def levels_with_limits(source, dtype, vmin, vmax, percentiles, method: str, nan: int, write_all, center=None):
    """Convert a block source with its limits: ``write_all(lo, hi, windows)`` runs the conversion pass (and
    returns the proof counts when `windows` is given). Approx: the sampled estimates are proved by the pass that
    writes with them; a failed proof writes again with the exact limits. Returns the limits used (centred about
    `center` when given: the proof concerns the percentiles, the levels use the centred limits)."""
    if percentiles is not None and method == "approx":
        found = _approx.estimates(source, np.array(percentiles))
        if found is not None:
            lo, hi, windows = found
            lo, hi = centred(lo, hi, center)
            counts = write_all(lo, hi, windows)
            proved = _approx.prove(source, counts, np.array(percentiles))
            note("approx", proved=proved)
            if proved:
                return lo, hi
    lo, hi = centred(*exact_limits(source, dtype, vmin, vmax, percentiles), center)
    write_all(lo, hi, None)
    return lo, hi


def to_uint8_blocks(
    array, plan: Plan, block_elements: int, chunks, vmin, vmax, percentiles, method, nan, out, lut=None,
    rule: Rule = DEFAULT_RULE,
):  # fmt: skip
    """to_uint8 of an array-like read block by block (`out`: any array-like of its shape that takes
    ``out[index] = levels``, or None for a new array); colours on a trailing axis with `lut`."""
    source = ChunkedSource(array, plan, block_elements, chunks)
    method = method if rule.fused else "exact"
    shape = tuple(array.shape) + (() if lut is None else (lut.shape[1],))
    target = np.empty(shape, dtype=rule.dtype) if out is None else out
    inverse = tuple(np.argsort(plan.perm).tolist()) + (() if lut is None else (len(plan.perm),))

    buffers = Buffers()

    def emit(index, levels):
        physical = [slice(None)] * len(target.shape)
        for k, p in enumerate(plan.perm):
            physical[p] = index[k]
        target[tuple(physical)] = levels.transpose(inverse)
        buffers.give(levels)

    def write_all(lo, hi, windows):
        return convert_blocks(source, lo, hi, nan, emit, windows, lut=lut, rule=rule, allocate=buffers.take)

    levels_with_limits(source, np.dtype(array.dtype), vmin, vmax, percentiles, method, nan, write_all, rule.center)
    return target
