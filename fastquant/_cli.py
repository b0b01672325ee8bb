"""The ``fastquant`` command: ``convert``, ``info`` and ``demo``, thin layers over the Python API.

``fastquant convert INPUT OUTPUT [options]`` is :func:`fastquant.convert` (option ``--x-y`` is argument ``x_y``);
``fastquant info PATH`` is :func:`fastquant.read_metadata`; ``fastquant demo`` is the main job. Exit status: 0 on
success, 1 on an error (one line on stderr, no traceback), 2 on a usage error (argparse's rule).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

PROG = "fastquant"


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line plus the usage (exit 2)."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _channels(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of channel indexes, e.g. 0,1,2"
        ) from None


def _colour(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a colour R,G,B or R,G,B,A of ints 0..255") from None


def _stretch(text: str):
    try:
        return float(text)
    except ValueError:
        return text  # a name, checked by convert


def parser() -> argparse.ArgumentParser:
    """The parser of the ``fastquant`` command (its ``--help`` documents every option)."""
    top = _Parser(prog=PROG, description="Exact, fast conversion of float volumes to 8-bit images.")
    top.add_argument("--version", action="store_true", help="print the version and exit")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    conv = commands.add_parser(
        "convert",
        help="convert a volume to PNG slices, a TIFF stack, a uint8 zarr or .npy",
        description="Convert a prediction volume (.npy, .npz, TIFF, zarr, HDF5, or a directory/glob of .npy/.tif "
        "files) to 8-bit images, out of core. Each image equals fastquant.to_uint8(volume, ..., axis=A)[i], where A "
        "is the set of axes --limits reduces over.",
    )
    conv.add_argument("input", metavar="INPUT", help="the volume: a file, a zarr store, or a directory or glob")
    conv.add_argument("output", metavar="OUTPUT", help="a directory (PNG slices), or a .tif/.tiff, .zarr or .npy")
    lim = conv.add_argument_group("limits (as in fastquant.to_uint8)")
    lim.add_argument("--vmin", type=float, metavar="X", help="values <= X map to 0")
    lim.add_argument("--vmax", type=float, metavar="X", help="values >= X map to 255")
    lim.add_argument(
        "--percentiles", type=float, nargs=2, metavar=("LOW", "HIGH"), help="limits from percentiles of the data"
    )
    lim.add_argument(
        "--method", choices=("approx", "exact"), default="approx",
        help="percentile limits: approx (within one level of exact, proved; default) or exact",
    )  # fmt: skip
    lim.add_argument("--nan", type=int, default=0, metavar="LEVEL", help="level of NaN (default 0)")
    lim.add_argument(
        "--limits", choices=("volume", "slice", "channel", "slice-channel"),
        help="which elements share one pair of data-derived limits (default: volume, the same mapping in every "
        "image; channel with --composite)",
    )  # fmt: skip
    lim.add_argument("--center", type=float, metavar="C", help="limits symmetric about C (signed maps)")
    lim.add_argument(
        "--stretch", type=_stretch, default="linear", metavar="NAME|GAMMA",
        help="linear (default), sqrt, log, asinh, or a gamma such as 0.5",
    )  # fmt: skip
    col = conv.add_argument_group("colour, channels, labels")
    col.add_argument("--cmap", metavar="NAME", help="colour gray images with a colormap, e.g. viridis, RdBu")
    col.add_argument("--nan-color", type=_colour, metavar="R,G,B[,A]", help="colour of NaN with --cmap")
    col.add_argument("--compat", choices=("matplotlib",), help="--cmap with matplotlib's exact bytes")
    col.add_argument(
        "--composite", nargs="?", const="sum", choices=("sum", "max", "weighted"),
        help="combine the channels of --channel-axis into RGB, each with its own limits (default mode: sum)",
    )  # fmt: skip
    col.add_argument("--labels", action="store_true", help="write the class of the largest score along --channel-axis")
    col.add_argument("--threshold", type=float, metavar="T", help="--labels: a best score below T gets label 255")
    col.add_argument(
        "--palette", metavar="voc|glasbey|FILE", help="--labels: palette PNGs (FILE: lines 'R G B'), 255 transparent"
    )
    col.add_argument("--bits", type=int, choices=(8, 16), default=8, help="bits per sample of levels (default 8)")
    ax = conv.add_argument_group("axes and channels")
    ax.add_argument(
        "--slice-axis", type=int, metavar="N", help="the axis iterated to make images (default 0, or the first axis "
        "that is not the channel axis)"
    )  # fmt: skip
    ax.add_argument(
        "--channel-axis", type=int, metavar="N", help="the channel axis: 1 channel gives gray, 3 RGB, 4 RGBA"
    )
    ax.add_argument("--channels", type=_channels, metavar="I,J,K", help="pick 1, 3 or 4 channels, in this order")
    src = conv.add_argument_group("input")
    src.add_argument("--dataset", metavar="NAME", help="HDF5 dataset, zarr array path or npz member")
    out = conv.add_argument_group("output")
    out.add_argument("--format", choices=("png", "tiff", "zarr", "npy"), help="default: from OUTPUT's extension")
    out.add_argument(
        "--name", default="{stem}_{index:04d}.png", metavar="TEMPLATE",
        help="PNG file names, with fields {stem} and {index} (default: {stem}_{index:04d}.png)",
    )  # fmt: skip
    out.add_argument(
        "--compress-level", type=int, default=1, metavar="N",
        help="PNG deflate level 0-9 as in zlib (default 1): 1-3 use ISA-L, 4-9 zlib",
    )  # fmt: skip
    out.add_argument("--compression", metavar="NAME", help="TIFF or zarr codec, e.g. zlib, zstd (default: none)")
    run = conv.add_argument_group("running")
    run.add_argument("--workers", type=int, metavar="N", help="encoding threads (default: the cores available)")
    run.add_argument(
        "--max-memory", default="1GiB", metavar="SIZE", help="memory cap, e.g. 512MiB, 2GiB (default 1GiB)"
    )
    files = conv.add_argument_group("files")
    files.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    files.add_argument(
        "--resume", action="store_true",
        help="skip outputs that are complete and made from the same input with the same options",
    )  # fmt: skip
    rep = conv.add_argument_group("reporting")
    rep.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    rep.add_argument("--quiet", action="store_true", help="no progress bar and no report")

    info = commands.add_parser(
        "info",
        help="shape, dtype and chunks of an input; the limits and options recorded in an output",
        description="Print what fastquant.read_metadata returns for PATH, as JSON.",
    )
    info.add_argument("path", metavar="PATH")
    info.add_argument("--dataset", metavar="NAME", help="HDF5 dataset, zarr array path or npz member")

    commands.add_parser(
        "demo",
        help="the main job: convert a generated prediction volume, then the seed's three cases",
        description="Generate a prediction volume, convert it with whole-volume percentile limits, write the "
        "seed's three cases, and print what was done and how fast. Options after 'demo' go to the demo.",
        add_help=False,
    )
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fastquant`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo"]:
        from . import demo

        return demo.main(argv[1:])
    args = parser().parse_args(argv)
    if args.version:
        from . import __version__

        print(__version__)
        return 0
    if args.command is None:
        parser().print_help(sys.stderr)
        return 2
    try:
        if args.command == "convert":
            return _convert(args)
        return _info(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout closed early (`fastquant info x | head`): Python's documented remedy
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ValueError, TypeError, OSError, ImportError) as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return " ".join(text.split())


def _convert(args) -> int:
    from ._convert import convert

    summary = convert(
        args.input,
        args.output,
        vmin=args.vmin,
        vmax=args.vmax,
        percentiles=None if args.percentiles is None else tuple(args.percentiles),
        method=args.method,
        nan=args.nan,
        limits=args.limits,
        center=args.center,
        stretch=args.stretch,
        bits=args.bits,
        cmap=args.cmap,
        nan_color=args.nan_color,
        compat=args.compat,
        composite=args.composite,
        labels=args.labels,
        threshold=args.threshold,
        palette=args.palette,
        slice_axis=args.slice_axis,
        channel_axis=args.channel_axis,
        channels=args.channels,
        dataset=args.dataset,
        format=args.format,
        name=args.name,
        compress_level=args.compress_level,
        compression=args.compression,
        workers=args.workers,
        max_memory=args.max_memory,
        overwrite=args.overwrite,
        resume=args.resume,
        quiet=args.quiet or args.json,
    )
    if args.json:
        print(json.dumps(summary.to_dict(), sort_keys=True))
    elif not args.quiet:
        mib = summary.bytes_read / 2**20
        rate = mib / summary.seconds if summary.seconds else float("inf")
        print(
            f"{summary.input} {list(summary.shape)} {summary.dtype} -> {summary.output} ({summary.format}): "
            f"{summary.written} written, {summary.skipped} skipped, of {summary.images} images "
            f"{list(summary.image_shape)}, in {summary.seconds:.2f} s ({rate:.0f} MiB/s read)"
        )
    return 0


def _info(args) -> int:
    from ._outputs import read_metadata

    path = os.fspath(args.path)
    found = read_metadata(path) if args.dataset is None else read_metadata(path, dataset=args.dataset)
    print(json.dumps(found, sort_keys=True, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
