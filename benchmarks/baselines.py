"""Baselines that fastquant is measured against (benchmark code, not part of the package).

- ``seed_example2/3``: the seed document's recipes as written (two ``np.percentile`` calls, ``np.clip``,
  float temporaries, truncating ``astype``), stopping at the uint8 array as the targets prescribe. They keep
  the seed's defects on purpose: they are timing baselines, never references for correctness.
- ``floor``: the memory traffic any conversion must do, one parallel read of float32 and one write of uint8
  per element, into a preallocated output.
- ``fastpercentile_percentile``: the PyPI ``fastpercentile`` package, the exact-percentile competitor.

Importing this module imports NumPy only; Numba and fastpercentile load on first use.
"""

from __future__ import annotations

import functools

import numpy as np


def _clip_scale_truncate(values: np.ndarray, low, high) -> np.ndarray:
    unit = (np.clip(values, low, high) - low) / (high - low)  # one full-size temporary per step
    return (unit * 255).astype(np.uint8)


def seed_example2(feature_map: np.ndarray) -> np.ndarray:
    """Seed Example 2: global 5th..95th percentile limits, then clip, scale and truncate."""
    return _clip_scale_truncate(feature_map, np.percentile(feature_map, 5), np.percentile(feature_map, 95))


def seed_example3(segmentation_map: np.ndarray) -> np.ndarray:
    """Seed Example 3: per-channel limits of an H×W×C map, then as Example 2."""
    low = np.percentile(segmentation_map, 5, axis=(0, 1))
    high = np.percentile(segmentation_map, 95, axis=(0, 1))
    return _clip_scale_truncate(segmentation_map, low, high)


@functools.cache
def floor_kernel():
    """The floor kernel ``kernel(bits_uint32_1d, out_uint8_1d)``, compiled or loaded from cache on first use."""
    import numba

    @numba.njit(parallel=True, cache=True)
    def _floor(bits, out):
        for i in numba.prange(bits.size):
            out[i] = np.uint8(bits[i] >> 24)

    return _floor


def floor(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Read every float32 of C-contiguous `x` once (as uint32) and write its top byte into `out`."""
    if x.dtype != np.float32 or not x.flags.c_contiguous:
        raise ValueError("the floor kernel takes a C-contiguous float32 array")
    if out.dtype != np.uint8 or not out.flags.c_contiguous or out.size != x.size:
        raise ValueError("out must be a C-contiguous uint8 array with as many elements as x")
    floor_kernel()(x.reshape(-1).view(np.uint32), out.reshape(-1))
    return out


def fastpercentile_percentile(x: np.ndarray, q, axis=None) -> np.ndarray:
    """``fastpercentile.percentile`` as a float64 array in NumPy's layout (its fastest path: NaN propagates).

    On the benchmarks' finite data this answers fastquant's question (which skips NaN and ±inf).
    fastpercentile matches NumPy "to within float rounding", so its values can differ by an ulp.
    """
    import fastpercentile

    return np.asarray(fastpercentile.percentile(x, q, axis=axis), dtype=np.float64)
