"""Benchmark data of the bulk-conversion cases (issue 7): prediction-like float32 volumes, written once per run.

A slice is a smooth field plus noise through a sigmoid, as a segmentation network's output: a low-rank field
(a product of sines and a dozen separable Gaussian blobs, logits up to about ±12) plus standard-normal noise of
0.1 on the logits. Its levels with 5th..95th percentile limits compress to about 4 bits per pixel with Pillow's
``compress_level=1``, as real predictions do (pure noise takes 7-8). Slice ``z`` depends on ``(seed, z)`` only,
so a volume of fewer slices is the first slices of a larger one, and the data can be generated again slice by
slice (the memory case's NumPy reference does). Files go to one scratch directory per process (removed at exit),
on the same disk as the system's temporary directory, and are cached by their parameters.

Importing this module imports NumPy only (zarr on first use).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np

AMPLITUDE = 12.0  # largest |logit| of the smooth field
NOISE = 0.1  # standard deviation of the noise on the logits
BLOBS = 12


def prediction_slice(z: int, side: int, seed: int, out: np.ndarray | None = None) -> np.ndarray:
    """Slice `z` (side × side float32 probabilities in (0, 1)) of the volume of `seed`."""
    rng = np.random.default_rng([seed, z])
    t = np.linspace(0.0, 1.0, side)
    rows, cols = np.empty((BLOBS + 1, side)), np.empty((BLOBS + 1, side))
    f = rng.uniform(1.0, 4.0, 2)
    rows[0] = 0.5 * AMPLITUDE * np.sin(2 * np.pi * (f[0] * t + rng.uniform()))
    cols[0] = np.cos(2 * np.pi * (f[1] * t + rng.uniform()))
    for k in range(1, BLOBS + 1):
        cy, cx = rng.uniform(0.0, 1.0, 2)
        width = rng.uniform(0.03, 0.15)
        rows[k] = AMPLITUDE * rng.uniform(-1.0, 1.0) * np.exp(-0.5 * ((t - cy) / width) ** 2)
        cols[k] = np.exp(-0.5 * ((t - cx) / width) ** 2)
    field = np.matmul(rows.T.astype(np.float32), cols.astype(np.float32), out=out)
    field += NOISE * rng.standard_normal((side, side), dtype=np.float32)
    np.negative(field, out=field)  # sigmoid, in place: 1 / (1 + exp(-field))
    np.exp(field, out=field)
    field += 1.0
    return np.reciprocal(field, out=field)


@functools.cache
def scratch() -> Path:
    """This process's scratch directory (created on first use, removed at exit)."""
    path = Path(tempfile.mkdtemp(prefix="fastquant-bench-data-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def output_path(name: str) -> Path:
    """A path for a candidate's output in the scratch directory (its parent exists; the path is not removed)."""
    path = scratch() / "out" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def read_through(path: Path) -> None:
    """Read a file from start to end (into the page cache; the bytes are discarded)."""
    buffer = bytearray(16 << 20)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buffer):
            pass


@functools.cache
def npy(slices: int, side: int, seed: int) -> Path:
    """A `slices` × side × side float32 ``.npy`` of prediction slices, written slice by slice."""
    path = scratch() / f"prediction-{slices}x{side}x{side}-{seed}.npy"
    volume = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(slices, side, side))
    for z in range(slices):
        prediction_slice(z, side, seed, out=volume[z])
    volume.flush()
    del volume
    return path


@functools.cache
def zarr_store(slices: int, side: int, seed: int, chunk: int) -> Path:
    """The same volume as a zarr v3 directory store, uncompressed, in chunks of 1 × `chunk` × `chunk`."""
    import zarr

    path = scratch() / f"prediction-{slices}x{side}x{side}-{seed}.zarr"
    array = zarr.create_array(
        store=str(path),
        shape=(slices, side, side),
        chunks=(1, chunk, chunk),
        dtype="float32",
        compressors=None,
        fill_value=0.0,
    )
    buffer = np.empty((side, side), np.float32)
    for z in range(slices):
        array[z] = prediction_slice(z, side, seed, out=buffer)
    return path
