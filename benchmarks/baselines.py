"""Baselines that fastquant is measured against (benchmark code, not part of the package).

- ``seed_example2/3``: the seed document's recipes as written (two ``np.percentile`` calls, ``np.clip``,
  float temporaries, truncating ``astype``), stopping at the uint8 array as the targets prescribe. They keep
  the seed's defects on purpose: they are timing baselines, never references for correctness.
- ``floor``: the memory traffic any conversion must do, one parallel read of float32 and one write of uint8
  per element, into a preallocated output.
- ``fastpercentile_percentile``: the PyPI ``fastpercentile`` package, the exact-percentile competitor.
- Bulk conversion of a Z×H×W ``.npy`` to PNG slices (issue 7): ``naive_convert`` (seed Example 2 per slice, Pillow
  at its default level), ``peer_convert`` (the tuned peer: memmap, ``np.percentile`` per slice, ``cv2.imwrite`` at
  PNG level 1 in a thread pool) and ``raw_convert`` (``fastquant.to_uint8`` per slice, raw bytes to one file); and
  ``Discard``, a file object that counts the bytes written to it and keeps none.

Importing this module imports NumPy only; Numba, fastpercentile, Pillow and OpenCV load on first use.
"""

from __future__ import annotations

import concurrent.futures
import functools
import io
import os

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


def slice_name(outdir, z: int) -> str:
    return os.path.join(outdir, f"slice_{z:04d}.png")


def naive_convert(path, outdir) -> None:
    """The naive loop: ``np.load`` the volume, then per slice seed Example 2 and ``Image.save`` (default level)."""
    from PIL import Image

    os.makedirs(outdir, exist_ok=True)
    volume = np.load(path)
    for z in range(volume.shape[0]):
        Image.fromarray(seed_example2(volume[z])).save(slice_name(outdir, z))


def peer_convert(path, outdir, workers: int) -> None:
    """The tuned peer: a read-only memmap; per slice, in a pool of `workers` threads, one ``np.percentile`` call
    for both limits, clip, scale and round in place in float32, and ``cv2.imwrite`` at PNG level 1."""
    import cv2

    os.makedirs(outdir, exist_ok=True)
    volume = np.load(path, mmap_mode="r")

    def one(z: int) -> None:
        x = volume[z]
        lo, hi = np.percentile(x, [5, 95])
        unit = np.subtract(x, np.float32(lo), dtype=np.float32)
        unit *= np.float32(255.0 / (hi - lo)) if hi > lo else np.float32(0.0)
        np.clip(unit, 0.0, 255.0, out=unit)
        np.rint(unit, out=unit)
        if not cv2.imwrite(slice_name(outdir, z), unit.astype(np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 1]):
            raise OSError(f"cv2.imwrite failed for slice {z}")

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(volume.shape[0])))


def raw_convert(path, output) -> None:
    """Quantize and write raw: ``fastquant.to_uint8(slice, percentiles=(5, 95))`` per slice of a memmap, each
    appended to one file as raw bytes."""
    import fastquant

    volume = np.load(path, mmap_mode="r")
    with open(output, "wb") as f:
        for z in range(volume.shape[0]):
            f.write(fastquant.to_uint8(volume[z], percentiles=(5, 95)).data)


class Discard(io.RawIOBase):
    """A binary file object that counts the bytes written to it and keeps none (a sink for encoders)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        n = memoryview(data).nbytes
        self.count += n
        return n


@functools.cache
def class_sum_kernel():
    """The labels read floor: ``kernel(scores_C_by_n, out_n)`` sums each pixel's C scores into out (float32)."""
    import numba

    @numba.njit(parallel=True, cache=True)
    def _sum(scores, out):
        classes, n = scores.shape
        for part in numba.prange(2):
            begin, end = part * n // 2, (part + 1) * n // 2
            dest = out[begin:end]
            dest[:] = 0
            for c in range(classes):
                row = scores[c, begin:end]
                for j in range(row.size):
                    dest[j] += row[j]

    return _sum


def class_sum(scores: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Read every score of C-contiguous C×H×W `scores` once, summing per pixel into the H×W float32 `out`."""
    class_sum_kernel()(scores.reshape(scores.shape[0], -1), out.reshape(-1))
    return out


def pillow_palette_png(labels: np.ndarray, palette: np.ndarray) -> bytes:
    """labels as a 'P' PNG by Pillow (its default level), to memory."""
    import io

    from PIL import Image

    image = Image.fromarray(labels, mode="P")
    image.putpalette(palette.reshape(-1).tolist())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", transparency=255)
    return buffer.getvalue()
