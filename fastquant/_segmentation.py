"""The fast path of :func:`fastquant.labels`: a fused argmax over the class axis, in one pass over the scores.

A C-contiguous native array is read in place as the (outer, classes, inner) array around the class axis. Anything
else (float16, bool, byte-swapped, strided) is read in slabs of whole pixels, each made contiguous in a reused
size (at most 2**20 scores), so no temporary grows with the input. Small inputs take NumPy (the reference's rule
in fewer passes).
"""

from __future__ import annotations

import math

import numpy as np

from . import _colour
from ._plan import current

SLAB_SCORES = 1 << 20


def labels(x: np.ndarray, axis: int, dtype: np.dtype, threshold, ignore: int) -> np.ndarray:
    """labels for validated arguments."""
    if x.size < current().numba_min_size:
        return _labels_numpy(x, axis, dtype, threshold, ignore)
    from ._kernels import kernel_lock
    from ._kernels.labels import argmax_labels
    from ._passes import n_parts

    limit = -np.inf if threshold is None else float(threshold)
    out_shape = x.shape[:axis] + x.shape[axis + 1 :]
    out = np.empty(out_shape, dtype=dtype)
    classes = x.shape[axis]

    def run(block: np.ndarray, dest: np.ndarray) -> None:
        outer, inner = math.prod(block.shape[:axis]), math.prod(block.shape[axis + 1 :])
        with kernel_lock():
            argmax_labels(block.reshape(-1), outer, classes, inner, limit, ignore, dest.reshape(-1), n_parts())

    if _readable_in_place(x):
        run(x, out)
        return out
    native = x.dtype.newbyteorder("=")
    widened = {"f2": np.dtype(np.float32), "b1": np.dtype(np.uint8)}  # kinds the kernels cannot read
    kernel_dtype = widened.get(f"{native.kind}{native.itemsize}", native)
    for index in _colour.slabs(out_shape, max(1, SLAB_SCORES // classes)):
        full = index + (slice(None),) * (len(out_shape) - len(index))
        scores_index = full[:axis] + (slice(None),) + full[axis:]
        block = np.ascontiguousarray(x[scores_index], dtype=kernel_dtype)
        dest = np.empty(block.shape[:axis] + block.shape[axis + 1 :], dtype=dtype)
        run(block, dest)
        out[full] = dest
    return out


def _labels_numpy(x: np.ndarray, axis: int, dtype: np.dtype, threshold, ignore: int) -> np.ndarray:
    """reference.labels in fewer NumPy passes (small inputs; equal, tested): the best score by numpy.fmax, which
    skips NaN (NaN only where every score is), then the first class holding it."""
    s = np.moveaxis(x, axis, 0)
    best = np.fmax.reduce(s, axis=0)
    bad = np.isnan(best) if s.dtype.kind == "f" else np.zeros(best.shape, dtype=bool)
    winner = np.argmax(s == best, axis=0)
    if threshold is not None:
        bad |= best < threshold
    out = winner.astype(dtype)
    out[bad] = ignore
    return out


def _readable_in_place(x: np.ndarray) -> bool:
    return x.flags.c_contiguous and x.dtype.isnative and x.dtype.kind != "b" and x.dtype != np.float16
