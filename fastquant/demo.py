"""The fastquant demo (the main job): a generated prediction volume to PNG slices, then the seed's three cases.

Run it as ``fastquant demo``, ``fastquant-demo`` (an alias) or ``python -m fastquant.demo``; ``--help`` lists
the options.

0. ``volume/``: a Z×H×W float32 probability volume (64×1024×1024 by default: smooth blobs plus noise through a
   sigmoid, as a segmentation network's output), saved as a temporary ``.npy`` and converted by
   :func:`fastquant.convert` with whole-volume 5th..95th percentile limits into one PNG per slice.
1. ``probability.png``: a probability map in [0, 1] → grey image, the float range [0, 1] as limits.
2. ``feature.png``: a standard-normal feature map → clipped to its 5th..95th percentiles → grey.
3. ``channels.png``: an H×W×3 map → 5th..95th percentiles per channel (``axis=(0, 1)``) → RGB.

Conversions use ``method="exact"`` so that the limits printed (from :func:`fastquant.percentile`)
are exactly the limits the images were made with.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

import fastquant

PERCENTILES = (5.0, 95.0)


def _probability_map(rng: np.random.Generator, size: int) -> np.ndarray:
    # Smooth blobs plus noise through a sigmoid: looks like a segmentation network's output.
    t = np.linspace(0.0, 6.0 * np.pi, size, dtype=np.float32)
    field = 4.0 * np.sin(t)[:, None] * np.cos(0.7 * t)[None, :]
    field += rng.standard_normal((size, size), dtype=np.float32)
    return 1.0 / (1.0 + np.exp(-field))


def _feature_map(rng: np.random.Generator, size: int) -> np.ndarray:
    return rng.standard_normal((size, size), dtype=np.float32)


def _channel_map(rng: np.random.Generator, size: int) -> np.ndarray:
    # Channels on very different scales (as logits of different classes often are): shared limits
    # would leave some channels nearly flat, per-channel limits stretch each one.
    scale = np.array([1.0, 10.0, 0.1], dtype=np.float32)
    offset = np.array([0.0, -5.0, 3.0], dtype=np.float32)
    return rng.standard_normal((size, size, 3), dtype=np.float32) * scale + offset


def _volume(rng: np.random.Generator, slices: int, size: int) -> np.ndarray:
    # Blobs that drift through the slices, plus noise, through a sigmoid; generated slice by slice (no float64
    # temporaries of the volume's size).
    t = np.linspace(0.0, 6.0 * np.pi, size, dtype=np.float32)
    volume = np.empty((slices, size, size), dtype=np.float32)
    for z in range(slices):
        phase = np.float32(2.0 * np.pi * z / max(slices, 1))
        field = 4.0 * np.sin(t + phase)[:, None] * np.cos(0.7 * t - phase)[None, :]
        field += rng.standard_normal((size, size), dtype=np.float32)
        np.negative(field, out=field)
        np.exp(field, out=field)
        field += 1.0
        np.reciprocal(field, out=volume[z])
    return volume


def _convert_volume(rng: np.random.Generator, slices: int, size: int, out: Path) -> None:
    """Step 0: a generated volume in a temporary .npy, converted to PNG slices by fastquant.convert."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="fastquant-demo-") as tmp:
        source = Path(tmp) / "prediction.npy"
        np.save(source, _volume(rng, slices, size))
        summary = fastquant.convert(source, out, percentiles=PERCENTILES, limits="volume", overwrite=True)
    mib = summary.bytes_read / 2**20
    lo, hi = summary.limits["lo"][0], summary.limits["hi"][0]
    print(
        f"{out}/\n"
        f"    prediction volume, whole-volume {PERCENTILES[0]:g}/{PERCENTILES[1]:g} percentile limits "
        f"(fastquant.convert)\n"
        f"    in:     shape {summary.shape}, {summary.dtype} (.npy, memory-mapped)\n"
        f"    limits: [{lo:.6g}, {hi:.6g}]\n"
        f"    out:    {summary.written} PNG slices {summary.image_shape[1]}x{summary.image_shape[0]}, mode L, "
        f"in {summary.seconds:.2f} s ({mib / summary.seconds:.0f} MiB/s read)"
    )


def _format_limits(lo, hi) -> str:
    lo, hi = np.atleast_1d(lo), np.atleast_1d(hi)
    pairs = [f"[{a:.6g}, {b:.6g}]" for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]
    return pairs[0] if len(pairs) == 1 else "per channel " + ", ".join(pairs)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastquant demo",
        description="Convert a generated prediction volume to PNG slices (fastquant.convert, whole-volume "
        "percentile limits), then write the seed's three use cases (probability map, feature map with 5/95 "
        "percentile clipping, 3-channel map with per-channel limits) as PNG files from "
        "generated data.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("fastquant-demo"),
        help="output directory, created if needed (default: ./fastquant-demo)",
    )
    parser.add_argument("--size", type=int, default=1024, help="images are SIZE x SIZE pixels (default: 1024)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--slices", type=int, default=64, help="slices of the generated volume (default: 64; 0 skips it)"
    )
    return parser


def main(argv: Sequence[str | os.PathLike[str]] | None = None) -> int:
    """Generate the three seed cases, write them as PNG files and print what was done.

    Parameters
    ----------
    argv : sequence of str or os.PathLike, optional
        Command-line arguments without the program name (default: ``sys.argv[1:]``): ``--out DIR``
        (default ``./fastquant-demo``), ``--size N`` (default 1024) and ``--seed S`` (default 0).

    Returns
    -------
    int
        The exit status, 0 on success.
    """
    args = _parser().parse_args(None if argv is None else [os.fspath(a) for a in argv])
    if args.size < 1:
        _parser().error(f"--size must be at least 1, got {args.size}")
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)

    low, high = PERCENTILES
    prob = _probability_map(rng, args.size)
    feat = _feature_map(rng, args.size)
    chan = _channel_map(rng, args.size)
    # (file name, description, data, save options, limits actually used)
    cases = [
        (
            "probability.png",
            "probability map, float range [0, 1] as limits",
            prob,
            {},
            (0.0, 1.0),
        ),
        (
            "feature.png",
            f"feature map, {low:g}/{high:g} percentile limits",
            feat,
            {"percentiles": PERCENTILES},
            fastquant.percentile(feat, PERCENTILES),
        ),
        (
            "channels.png",
            f"{chan.shape[2]}-channel map, per-channel {low:g}/{high:g} percentiles",
            chan,
            {"percentiles": PERCENTILES, "axis": (0, 1)},
            fastquant.percentile(chan, PERCENTILES, axis=(0, 1)),
        ),
    ]

    if args.slices < 0:
        _parser().error(f"--slices must be at least 0, got {args.slices}")
    print(f"fastquant {fastquant.__version__} demo: {args.size}x{args.size}, seed {args.seed}, writing to {args.out}")
    if args.slices:
        _convert_volume(np.random.default_rng(args.seed), args.slices, args.size, args.out / "volume")
    for name, description, data, options, (lo, hi) in cases:
        path = args.out / name
        fastquant.save(path, data, method="exact", **options)
        with Image.open(path) as written:  # report what is in the file, not what we meant to write
            mode = written.mode
        print(
            f"{path}\n"
            f"    {description}\n"
            f"    in:     shape {data.shape}, {data.dtype}\n"
            f"    limits: {_format_limits(lo, hi)}\n"
            f"    out:    PNG, mode {mode} (8 bits per channel)"
        )
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
