"""The colour paths of :func:`fastquant.colorize` that are not the engine's fused pass.

- small inputs (the NumPy path): the reference's rule with the NumPy path's faster limits;
- ``compat="matplotlib"``: matplotlib's own arithmetic (:func:`fastquant._levels.matplotlib_index`), slab by
  slab, so that no temporary grows with the input (about 20 bytes per element of a slab of 2**20).

The engine path (large inputs, fastquant's own mapping) is :func:`fastquant._engine.to_uint8` with a colour
table: the levels become colours in the conversion pass itself.
"""

from __future__ import annotations

import math

import numpy as np

from . import _numpy_path
from ._levels import DEFAULT_RULE, centred, matplotlib_index

SLAB_ELEMENTS = 1 << 20


def colours_numpy(x: np.ndarray, vmin, vmax, percentiles, axes, table: np.ndarray, rule=DEFAULT_RULE) -> np.ndarray:
    """colorize (fastquant's mapping) for validated arguments of an in-memory array, in NumPy."""
    lo, hi = centred(*_numpy_path.limits(x, vmin, vmax, percentiles, axes), rule.center)
    levels = _numpy_path.quantize(x, lo, hi, 0, None, rule)
    bad = np.isnan(lo) | np.isnan(hi)
    if x.dtype.kind == "f":
        bad = bad | np.isnan(x)
    return table[np.where(bad, np.intp(256), levels.astype(np.intp))]  # not uint8: 256 would wrap to 0


def colours_matplotlib(x, lo: np.ndarray, hi: np.ndarray, table: np.ndarray, out):
    """colorize with ``compat="matplotlib"`` for limits `lo`, `hi` (keepdims-shaped), slab by slab of `x` (an
    array or an array-like read by slices); `out` None or an array(-like) of ``x.shape + (C,)``."""
    shape = tuple(x.shape)
    target = np.empty(shape + (table.shape[1],), dtype=np.uint8) if out is None else out
    for index in slabs(shape, SLAB_ELEMENTS):
        full = index + (slice(None),) * (len(shape) - len(index))
        limit_index = tuple(s if n > 1 else slice(None) for s, n in zip(full, lo.shape, strict=True))
        values = np.asarray(x[index])
        levels, bad = matplotlib_index(values, lo[limit_index], hi[limit_index])
        levels[bad] = 256
        target[index] = table[levels]
    return target


def slabs(shape: tuple[int, ...], elements: int):
    """Indexes (tuples of slices) of C-order slabs of at most `elements` elements (one element at least)
    covering an array of `shape`: whole trailing axes, a range of one axis, single indexes before it."""
    if not shape:
        yield ()
        return
    axis = 0
    while axis < len(shape) - 1 and math.prod(shape[axis + 1 :]) > elements:
        axis += 1
    step = max(1, elements // max(1, math.prod(shape[axis + 1 :])))
    for lead in np.ndindex(*shape[:axis]):
        for start in range(0, shape[axis], step):
            yield tuple(slice(i, i + 1) for i in lead) + (slice(start, min(shape[axis], start + step)),)
