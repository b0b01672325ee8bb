"""Baselines that fastquant is measured against (benchmark code, not part of the package).

- ``seed_example1/2/3``: the computation of the seed document's three examples, written out
  here so the benchmarks time exactly what a user of that recipe pays (two separate
  ``np.percentile`` calls, ``np.clip``, the float temporaries, truncating ``astype``). They
  stop at the uint8 array: no ``Image.fromarray``, as the issue's performance targets
  prescribe. They keep the seed's defects on purpose (truncation, wrap-around, division by zero
  on constant input): they are timing baselines, never references for correctness.
- ``floor``: the memory traffic any conversion must do, one parallel read of float32 and one
  write of uint8 per element.
- ``fastpercentile_percentile``: the PyPI ``fastpercentile`` package, the exact-percentile
  competitor.

Importing this module imports NumPy only; Numba and fastpercentile are imported on first use,
so the baselines can be used in import-time and one-shot measurements without paying for them.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "fastpercentile_percentile",
    "floor",
    "floor_kernel",
    "seed_example1",
    "seed_example2",
    "seed_example3",
]


def seed_example1(probability_map: np.ndarray) -> np.ndarray:
    """Seed Example 1: scale a [0, 1] probability map by 255 and truncate to uint8.

    Parameters
    ----------
    probability_map : numpy.ndarray
        Float array, nominally in [0, 1].

    Returns
    -------
    numpy.ndarray
        uint8 array of the same shape (values outside [0, 1] wrap around, as in the seed).
    """
    return (probability_map * 255).astype(np.uint8)


def _clip_scale_truncate(values: np.ndarray, low, high) -> np.ndarray:
    # The seed's sequence of operations, one full-size temporary per step.
    clipped = np.clip(values, low, high)
    unit = (clipped - low) / (high - low)
    return (unit * 255).astype(np.uint8)


def seed_example2(feature_map: np.ndarray) -> np.ndarray:
    """Seed Example 2: clip to the 5th..95th percentile, scale to 0..255, truncate to uint8.

    Parameters
    ----------
    feature_map : numpy.ndarray
        Float array of any shape; one pair of limits for the whole array.

    Returns
    -------
    numpy.ndarray
        uint8 array of the same shape.
    """
    # Two separate percentile calls, as in the seed: each one partitions a full copy of the data.
    low = np.percentile(feature_map, 5)
    high = np.percentile(feature_map, 95)
    return _clip_scale_truncate(feature_map, low, high)


def seed_example3(segmentation_map: np.ndarray) -> np.ndarray:
    """Seed Example 3: per-channel 5th..95th percentile limits of an H×W×C map, then as Example 2.

    Parameters
    ----------
    segmentation_map : numpy.ndarray
        Float array of shape (H, W, C).

    Returns
    -------
    numpy.ndarray
        uint8 array of shape (H, W, C).
    """
    low = np.percentile(segmentation_map, 5, axis=(0, 1))
    high = np.percentile(segmentation_map, 95, axis=(0, 1))
    return _clip_scale_truncate(segmentation_map, low, high)


_FLOOR_KERNEL = None


def floor_kernel():
    """The floor kernel ``kernel(bits_uint32_1d, out_uint8_1d)``, compiled/loaded on first use."""
    global _FLOOR_KERNEL
    if _FLOOR_KERNEL is None:
        import numba

        @numba.njit(parallel=True, cache=True)
        def _floor(bits, out):
            for i in numba.prange(bits.size):
                out[i] = np.uint8(bits[i] >> 24)

        _FLOOR_KERNEL = _floor
    return _FLOOR_KERNEL


def floor(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The floor: read every float32 of `x` once, write one byte per element into `out`.

    Parameters
    ----------
    x : numpy.ndarray
        C-contiguous float32 array (viewed as uint32 without a copy).
    out : numpy.ndarray
        Preallocated C-contiguous uint8 array with ``x``'s number of elements.

    Returns
    -------
    numpy.ndarray
        `out`, holding the top byte of each element's bit pattern.
    """
    if x.dtype != np.float32 or not x.flags.c_contiguous:
        raise ValueError("the floor kernel takes a C-contiguous float32 array")
    if out.dtype != np.uint8 or not out.flags.c_contiguous or out.size != x.size:
        raise ValueError("out must be a C-contiguous uint8 array with as many elements as x")
    floor_kernel()(x.reshape(-1).view(np.uint32), out.reshape(-1))
    return out


def fastpercentile_percentile(x: np.ndarray, q, axis=None, *, skip_nan: bool = False) -> np.ndarray:
    """Percentiles of `x` with the PyPI package ``fastpercentile``, in NumPy's layout.

    Parameters
    ----------
    x : numpy.ndarray
        float32 or float64 array.
    q : float or sequence of float
        Percentiles in [0, 100].
    axis : None, int or tuple of int
        None for one set of percentiles over the whole array; per channel of H×W×C is
        ``axis=(0, 1)``.
    skip_nan : bool
        False: ``fastpercentile.percentile`` (NaN propagates; its fastest path). True:
        ``fastpercentile.nanpercentile`` (NaN skipped, like fastquant; measured ~10 % slower).

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``np.shape(q) + kept axes`` (fastpercentile returns a Python
        float for a scalar `q` with ``axis=None``; it is wrapped so results compare like
        fastquant's).

    Notes
    -----
    fastquant skips NaN and ±inf; on finite data (the benchmarks' standard-normal arrays) both
    variants answer the same question. fastpercentile matches ``numpy.percentile`` "to within
    float rounding": its interpolated values can differ from NumPy's by an ulp, while
    fastquant's exact method must equal NumPy's.
    """
    import fastpercentile

    fn = fastpercentile.nanpercentile if skip_nan else fastpercentile.percentile
    return np.asarray(fn(x, q, axis=axis), dtype=np.float64)
