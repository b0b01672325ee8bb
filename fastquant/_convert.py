"""``fastquant.convert``: a prediction volume to a folder of images, a TIFF stack, a uint8 zarr or .npy, out of core.

The job, in the order it runs:

1. check every option, open the input (:mod:`fastquant._inputs`) and the output (:mod:`fastquant._outputs`)
   before anything is written;
2. the limits, from the engine's passes over blocks of the input (a :class:`fastquant._source.ChunkedSource`):
   the same passes, selections and approx proof as the in-memory API, so that every image equals
   ``to_uint8(volume, ..., axis=A)[i]`` bit for bit, where ``A`` is the set of axes that ``limits`` reduces over;
3. the write pass: each image (or band of rows of one, when an image does not fit the memory cap) is read,
   converted, and handed to the sink; PNG slices of whole images are read, converted and encoded by each of
   ``workers`` threads (:meth:`_Writer._convert_and_encode`), other outputs are fed by one converting thread;
4. files appear under their final names only when their limits are final: exact and fixed limits at once, approx
   ones once the write pass has proved them (a failed proof, rare, rewrites with the exact limits).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import math
import operator
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _threading, _validate
from ._levels import Rule, centred
from ._plan import current, make_plan, note

LIMITS_MODES = ("volume", "slice", "channel", "slice-channel")
DEFAULT_NAME = "{stem}_{index:04d}.png"
_COLOUR_COUNTS = {1: "gray", 3: "RGB", 4: "RGBA"}


@dataclasses.dataclass
class Summary:
    """What :func:`convert` did: the input, the output, the limits and options used, and how long it took."""

    input: str
    output: str
    format: str
    shape: tuple[int, ...]
    dtype: str
    images: int
    written: int
    skipped: int
    image_shape: tuple[int, ...]
    limits: dict
    options: dict
    seconds: float
    bytes_read: int
    names: list[str]

    def to_dict(self) -> dict:
        """The summary as JSON-serializable data (``fastquant convert --json`` prints it)."""
        return dataclasses.asdict(self)


def convert(
    source: Any,
    output: str | os.PathLike[str],
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    percentiles: tuple[float, float] | None = None,
    method: str = "approx",
    nan: int = 0,
    limits: str | None = None,
    center: float | None = None,
    stretch: str | float = "linear",
    bits: int = 8,
    cmap: str | None = None,
    nan_color: Sequence[int] | None = None,
    compat: str | None = None,
    composite: str | None = None,
    labels: bool = False,
    threshold: float | None = None,
    palette: str | None = None,
    slice_axis: int | None = None,
    channel_axis: int | None = None,
    channels: Sequence[int] | None = None,
    dataset: str | None = None,
    format: str | None = None,
    name: str = DEFAULT_NAME,
    compress_level: int = 1,
    compression: str | None = None,
    workers: int | None = None,
    max_memory: int | str = "1GiB",
    overwrite: bool = False,
    resume: bool = False,
    quiet: bool = True,
) -> Summary:
    """Convert a volume to images: PNG slices, a multi-page TIFF, a zarr array or a ``.npy``; grey levels (8 or
    16 bits), colours of a colormap, a composite of channels, or segmentation labels.

    Parameters
    ----------
    source : path or array-like
        A ``.npy`` (memory-mapped), ``.npz`` (one member), TIFF, zarr (v2/v3, directory or zip), HDF5 file, a
        directory or glob of ``.npy``/``.tif`` files (one slice or sub-volume each, natural order), or an
        array-like (``shape``, NumPy ``dtype``, slicing: a NumPy array or memmap, a zarr array, an h5py dataset).
        It is read in blocks, never whole, and never modified.
    output : path
        A directory (PNG slices, created if needed), or a ``.tif``/``.tiff``, ``.zarr`` or ``.npy`` path.
    vmin, vmax, percentiles, method, nan
        The limits, as for :func:`fastquant.to_uint8` (scalars here).
    limits : {"volume", "slice", "channel", "slice-channel"}
        Which elements share one pair of data-derived limits: the whole volume (the default: the same mapping in
        every image, so images are comparable), each slice, each channel, or each channel of each slice. With
        `composite` the default is ``"channel"`` (and the limits must be per channel).
    center, stretch
        As for :func:`fastquant.to_uint8`: limits symmetric about `center`; a non-linear stretch.
    bits : {8, 16}
        Levels as uint8, or as uint16 (:func:`fastquant.to_uint16`: 16-bit PNG, TIFF, zarr or npy).
    cmap, nan_color, compat
        Colour grey images with a colormap (:func:`fastquant.colorize`): a shipped map's name; `nan_color` the
        colour of NaN (3 or 4 ints; 4 gives RGBA images); ``compat="matplotlib"`` matplotlib's bytes.
    composite : {"sum", "max", "weighted"}, optional
        Combine the channels of `channel_axis` into RGB (:func:`fastquant.composite`, default colours), each with
        its own limits.
    labels : bool
        Write the class of the largest score along `channel_axis` (:func:`fastquant.labels`): uint8 label
        images (uint16 beyond 255 classes); no limits. `threshold`: pixels whose best score is below it get 255
        (65535). `palette` (``"voc"``, ``"glasbey"`` or the path of a text file of K lines ``R G B``): PNG slices
        are palette images with that colours and index 255 transparent.
    slice_axis : int, optional
        The axis iterated to make images (default 0, or the first axis that is not `channel_axis`).
    channel_axis : int, optional
        The channel axis: 1 channel gives gray images, 3 RGB, 4 RGBA.
    channels : sequence of int, optional
        The channels to use (1, 3 or 4 of them, in this order), e.g. ``(0, 2, 5)`` for RGB from 3 of 6 classes.
        Limits are computed over the selected channels only.
    dataset : str, optional
        The HDF5 dataset, zarr array path or npz member.
    format : {"png", "tiff", "zarr", "npy"}, optional
        Default: from `output`'s extension (a directory means PNG slices).
    name : str
        File name template of PNG slices, with fields ``stem`` (the input's name) and ``index``.
    compress_level : int
        0-9 as in zlib (PNG): 1-3 use ISA-L (zlib where isal is missing), 4-9 zlib. Default 1.
    compression : str, optional
        TIFF or zarr codec (e.g. ``"zlib"``, ``"zstd"``); default none.
    workers : int, optional
        Threads that encode images (default: the cores available to the process).
    max_memory : int or str
        Cap on the memory the job uses besides imports (default ``"1GiB"``; e.g. ``"512MiB"``).
    overwrite : bool
        Replace existing outputs. Without it (or `resume`), an existing output is an error.
    resume : bool
        Skip outputs that are complete and were made from the same input (path, size, mtime, shape, dtype) with
        the same options; refuse when anything differs.
    quiet : bool
        No progress bar (it is shown on a terminal's stderr only).

    Returns
    -------
    Summary

    Raises
    ------
    FileNotFoundError
        A missing input.
    TypeError, ValueError
        Bad options, an unsupported or unreadable input, an existing output without `overwrite` or `resume`,
        a resume whose recorded input or options differ. Nothing is written before these checks.
    OSError
        Writing failed (e.g. the disk is full); no partial file is left under a final name.

    Examples
    --------
    >>> import numpy as np, fastquant
    >>> vol = np.random.default_rng(0).random((4, 64, 64), dtype=np.float32)
    >>> summary = fastquant.convert(vol, "slices", percentiles=(5, 95))  # doctest: +SKIP
    >>> summary.written  # doctest: +SKIP
    4
    """
    from . import _inputs, _outputs

    started = time.perf_counter()
    options = _check_options(
        vmin=vmin, vmax=vmax, percentiles=percentiles, method=method, nan=nan, limits=limits,
        compress_level=compress_level, compression=compression, name=name, channels=channels,
    )  # fmt: skip
    options.update(
        _check_mapping(
            options, center=center, stretch=stretch, bits=bits, cmap=cmap, nan_color=nan_color, compat=compat,
            composite=composite, labels=labels, threshold=threshold, palette=palette, limits=limits,
        )
    )  # fmt: skip
    workers = _check_workers(workers)
    memory = _validate.check_memory(max_memory)
    if overwrite and resume:
        raise ValueError("overwrite=True and resume=True contradict each other; give one of them")

    with _inputs.open_input(source, dataset=dataset) as opened:
        job = _Job.make(opened, options, slice_axis, channel_axis)
        stem = _stem(opened)
        palette_colours = job.palette_colours()
        sink = _outputs.make_sink(
            output, format=format, count=job.count, image_shape=job.image_shape, name=name, stem=stem,
            compress_level=compress_level, compression=compression, overwrite=overwrite, dtype=job.dtype,
            palette=palette_colours, transparent=None if palette_colours is None else 255,
        )  # fmt: skip
        if palette_colours is not None and sink.format != "png":
            raise ValueError(f"palette= colours PNG slices; a {sink.format} output stores the label indexes")
        if not (overwrite or resume):
            existing = [n for n in sink.names if os.path.lexists(n)]
            if existing:
                raise ValueError(
                    f"{existing[0]} exists ({len(existing)} of the outputs do); pass overwrite=True "
                    "(--overwrite) to replace them or resume=True (--resume) to finish an interrupted run"
                )
        for directory in {os.path.dirname(os.path.abspath(n)) for n in sink.names}:
            _outputs.remove_leftovers(directory)
        writer = _Writer(job, sink, opened.identity(), options, workers, memory, resume, quiet)
        try:
            lo, hi = writer.run()
        except BaseException:
            sink.abort()
            raise
    return Summary(
        input=os.fspath(opened.path) if opened.path else "<array>",
        output=os.fspath(output),
        format=sink.format,
        shape=tuple(int(n) for n in job.volume.shape),
        dtype=str(np.dtype(job.volume.dtype)),
        images=job.count,
        written=writer.written,
        skipped=writer.skipped,
        image_shape=job.image_shape,
        limits=job.limits_record(lo, hi),
        options=options,
        seconds=round(time.perf_counter() - started, 6),
        bytes_read=writer.bytes_read,
        names=[os.fspath(n) for n in sink.names],
    )


# --- options --------------------------------------------------------------------------------------------------


def _check_options(*, vmin, vmax, percentiles, method, nan, limits, compress_level, compression, name, channels):
    """The options that define the output bytes, checked and normalized (recorded in every output)."""
    for value, label in ((vmin, "vmin"), (vmax, "vmax")):
        if value is not None and np.ndim(value) != 0:
            raise ValueError(f"{label}={value!r}: convert takes scalar limits (per-channel limits: limits='channel')")
    vmin_checked, vmax_checked, percentiles = _validate.check_limits(vmin, vmax, percentiles)
    _validate.check_method(method)
    nan = _validate.check_nan(nan)
    if limits is None:
        limits = "volume"  # _check_mapping makes it "channel" for a composite
    if not isinstance(limits, str) or limits not in LIMITS_MODES:
        raise ValueError(f"limits={limits!r} is not supported; accepted: {', '.join(LIMITS_MODES)}")
    if isinstance(compress_level, bool) or not isinstance(compress_level, int):
        raise TypeError(f"compress_level={compress_level!r} must be an int in 0-9")
    if not 0 <= compress_level <= 9:
        raise ValueError(f"compress_level={compress_level!r} is outside 0-9")
    if compression is not None and not isinstance(compression, str):
        raise TypeError(f"compression={compression!r} must be a codec name such as 'zlib' or 'zstd'")
    if not isinstance(name, str):
        raise TypeError(f"name={name!r} must be a str such as {DEFAULT_NAME!r}")
    if channels is not None:
        channels = _check_channels(channels)
    return {
        "vmin": None if vmin is None else float(vmin_checked.reshape(-1)[0]),
        "vmax": None if vmax is None else float(vmax_checked.reshape(-1)[0]),
        "percentiles": None if percentiles is None else [float(p) for p in percentiles],
        "method": method,
        "nan": nan,
        "limits": limits,
        "channels": channels,
        "compress_level": compress_level,
        "compression": compression,
    }


def _check_mapping(
    options: dict, *, center, stretch, bits, cmap, nan_color, compat, composite, labels, threshold, palette, limits
) -> dict:
    """The options that say how values become pixels (levels, colours, composite, labels), checked together."""
    from . import _colormaps

    center = _validate.check_center(center)
    stretch = _validate.check_stretch(stretch)
    bits = _validate.integer(bits, "bits", "8 or 16")
    if bits not in (8, 16):
        raise ValueError(f"bits={bits!r} is not accepted; accepted: 8 or 16")
    if not isinstance(labels, (bool, np.bool_)):
        raise TypeError(f"labels={labels!r} must be True or False")
    if composite is not None and composite not in ("sum", "max", "weighted"):
        raise ValueError(f"composite={composite!r} is not known; accepted: 'sum', 'max' or 'weighted'")
    chosen = [name for name, on in (("cmap", cmap is not None), ("composite", composite), ("labels", labels)) if on]
    if len(chosen) > 1:
        raise ValueError(f"{' and '.join(chosen)} exclude each other; accepted: one of cmap, composite, labels")
    if cmap is not None:
        if not isinstance(cmap, str):
            raise TypeError(f"cmap={cmap!r} must be the name of a shipped colormap ({', '.join(_colormaps.SHIPPED)})")
        _colormaps.colour_table(cmap, compat)
        _colormaps.check_stretch_compat(stretch, compat)
    elif compat is not None or nan_color is not None:
        raise ValueError("compat and nan_color apply to colour maps; accepted: together with cmap")
    nan_color = None if nan_color is None else list(_colormaps.check_nan_colour(nan_color))
    if bits == 16 and (cmap is not None or composite or labels):
        raise ValueError(f"bits=16 applies to grey or RGB levels, not to {chosen[0]}; accepted: bits=8 with it")
    if (composite or labels) and (stretch != "linear" or center is not None):
        raise ValueError(f"center and stretch apply to levels and colour maps, not to {chosen[0]}")
    if composite:
        limits = "channel" if limits is None else limits
        if limits not in ("channel", "slice-channel"):
            raise ValueError("composite takes limits per channel; accepted: limits='channel' or 'slice-channel'")
        options["limits"] = limits
    if labels:
        given = [k for k in ("vmin", "vmax", "percentiles") if options[k] is not None]
        if given:
            raise ValueError(f"labels are the largest score's class: {given[0]} does not apply to them")
        threshold = None if threshold is None else _validate._finite_scalar(threshold, "threshold")
    elif threshold is not None or palette is not None:
        raise ValueError("threshold and palette apply to labels; accepted: together with labels=True")
    if palette is not None and not isinstance(palette, (str, os.PathLike)):
        raise TypeError(f"palette={palette!r} must be 'voc', 'glasbey' or the path of a palette file")
    if palette is not None:
        read_palette(os.fspath(palette))  # a bad file is an error before anything is written
    return {
        "center": center,
        "stretch": stretch,
        "bits": bits,
        "cmap": cmap,
        "nan_color": nan_color,
        "compat": compat,
        "composite": composite,
        "labels": bool(labels),
        "threshold": threshold,
        "palette": None if palette is None else os.fspath(palette),
    }


def read_palette(palette: str) -> np.ndarray:
    """A palette by name ("voc", "glasbey") or from a text file of K <= 256 lines "R G B" (or "R,G,B")."""
    from . import _colormaps

    if palette in _colormaps.PALETTES:
        return _colormaps.palette_table(palette)
    try:
        with open(palette, encoding="utf-8") as f:
            rows = [line.replace(",", " ").split() for line in f if line.strip() and not line.startswith("#")]
        values = np.array([[int(v) for v in row] for row in rows])
    except OSError as exc:
        raise ValueError(f"palette={palette!r} is neither 'voc', 'glasbey' nor a readable file ({exc})") from None
    except ValueError:
        raise ValueError(f"palette file {palette!r}: each line must be three ints 'R G B'") from None
    shaped = values.ndim == 2 and values.shape[1] == 3 and 1 <= len(values) <= 256
    if not shaped or values.min() < 0 or values.max() > 255:
        raise ValueError(f"palette file {palette!r} must hold 1 to 256 lines of three ints 'R G B' in 0..255")
    padded = np.zeros((256, 3), dtype=np.uint8)  # 256 entries, so that the ignore index 255 can be transparent
    padded[: len(values)] = values
    return _colormaps.palette_table(padded)


def _check_channels(channels) -> list[int]:
    message = f"channels={channels!r} must be a sequence of ints such as (0, 1, 2)"
    if isinstance(channels, str) or not hasattr(channels, "__iter__"):
        raise TypeError(message)
    channels = list(channels)
    if any(isinstance(c, bool) for c in channels):
        raise TypeError(message)
    try:
        picked = [operator.index(c) for c in channels]
    except TypeError as exc:
        raise TypeError(message) from exc
    if len(picked) not in _COLOUR_COUNTS:
        raise ValueError(f"channels={channels!r} picks {len(picked)} channels; accepted: 1 (gray), 3 (RGB), 4 (RGBA)")
    return picked


def _check_workers(workers) -> int:
    if workers is None:
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise TypeError(f"workers={workers!r} must be an int >= 1")
    if workers < 1:
        raise ValueError(f"workers={workers!r} must be at least 1")
    return workers


def _stem(opened) -> str:
    if not opened.path:
        return "image"
    base = os.path.basename(os.path.normpath(os.fspath(opened.path)))
    stem = base.split(".")[0] if not base.startswith(".") else base
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in stem) or "image"


# --- the job's geometry ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Job:
    """The volume to convert (channels selected), its axes, and the reduction axes of its limits."""

    volume: Any  # array-like: the input, or a channel selection of it
    chunks: tuple[int, ...] | None
    sequential: bool
    slice_axis: int
    channel_axis: int | None
    image_axes: tuple[int, int]  # rows, columns
    axes: tuple[int, ...]  # reduced by the limits (to_uint8's `axis`)
    options: dict

    @classmethod
    def make(cls, opened, options: dict, slice_axis, channel_axis) -> _Job:
        shape = tuple(int(n) for n in opened.array.shape)
        ndim = len(shape)
        name = repr(os.fspath(opened.path)) if opened.path else "the input"
        if ndim < 3:
            raise ValueError(f"{name} has shape {shape}; accepted: a volume of 3 or more axes (slices of images)")
        channel_axis = None if channel_axis is None else _axis(channel_axis, ndim, "channel_axis")
        if slice_axis is None:
            slice_axis = 0 if channel_axis != 0 else 1
        slice_axis = _axis(slice_axis, ndim, "slice_axis")
        if slice_axis == channel_axis:
            raise ValueError(f"slice_axis={slice_axis} and channel_axis={channel_axis} must differ")
        image_axes = tuple(a for a in range(ndim) if a not in (slice_axis, channel_axis))
        if len(image_axes) != 2:
            raise ValueError(
                f"{name} has shape {shape}: with slice_axis={slice_axis} and channel_axis={channel_axis}, each "
                f"image would have {len(image_axes)} axes ({[shape[a] for a in image_axes]}); accepted: 2 "
                "(give channel_axis for a 4-D input, or pick another slice_axis)"
            )
        if 0 in shape:
            raise ValueError(f"{name} has shape {shape}, which holds no image")
        volume = _Reading(opened.array, opened.path)
        picked = options["channels"]
        if picked is not None:
            if channel_axis is None:
                raise ValueError("channels needs channel_axis (--channel-axis)")
            n = shape[channel_axis]
            bad = [c for c in picked if not -n <= c < n]
            if bad:
                raise ValueError(f"channels={picked}: {bad[0]} is out of range for {n} channels")
            volume = _ChannelSelection(volume, channel_axis, [c % n for c in picked])
        mixed = options["composite"] or options["labels"]  # any number of channels (classes)
        if mixed and channel_axis is None:
            raise ValueError(f"{'composite' if options['composite'] else 'labels'} needs channel_axis (--channel-axis)")
        if options["cmap"] is not None and channel_axis is not None and volume.shape[channel_axis] != 1:
            raise ValueError(
                f"cmap colours grey images; the channel axis has {volume.shape[channel_axis]} channels (pick one "
                "with channels, or give no channel_axis)"
            )
        if picked is None and not mixed and channel_axis is not None and shape[channel_axis] not in _COLOUR_COUNTS:
            raise ValueError(
                f"the channel axis {channel_axis} has {shape[channel_axis]} channels; accepted: 1 (gray), 3 (RGB) or "
                "4 (RGBA); pick 1, 3 or 4 of them with channels (--channels I,J,K)"
            )
        mode = options["limits"]
        if mode in ("channel", "slice-channel") and channel_axis is None:
            raise ValueError(f"limits={mode!r} needs channel_axis (--channel-axis)")
        kept = {"volume": (), "slice": (slice_axis,), "channel": (channel_axis,), "slice-channel": ()}[mode]
        if mode == "slice-channel":
            kept = (slice_axis, channel_axis)
        axes = tuple(a for a in range(ndim) if a not in kept)
        chunks = opened.chunks if picked is None else None
        return cls(volume, chunks, opened.sequential, slice_axis, channel_axis, image_axes, axes, options)

    @property
    def count(self) -> int:
        return int(self.volume.shape[self.slice_axis])

    @property
    def image_shape(self) -> tuple[int, ...]:
        rows, cols = (int(self.volume.shape[a]) for a in self.image_axes)
        opts = self.options
        if opts["labels"]:
            return (rows, cols)
        if opts["composite"]:
            return (rows, cols, 3)
        if opts["cmap"] is not None:
            return (rows, cols, self.colour_table().shape[1])
        channels = 1 if self.channel_axis is None else int(self.volume.shape[self.channel_axis])
        return (rows, cols) if channels == 1 else (rows, cols, channels)

    @property
    def dtype(self) -> np.dtype:
        """The images' samples: uint16 for 16-bit levels and for labels of more than 255 classes."""
        if self.options["labels"]:
            return np.dtype(np.uint8 if self.volume.shape[self.channel_axis] <= 255 else np.uint16)
        return np.dtype(np.uint16 if self.options["bits"] == 16 else np.uint8)

    def colour_table(self) -> np.ndarray:
        """The (257, C) colour table of `cmap` (row 256: the NaN colour)."""
        from . import _colormaps

        opts = self.options
        nan_colour = (0, 0, 0) if opts["nan_color"] is None else tuple(opts["nan_color"])
        return _colormaps.lookup_table(_colormaps.colour_table(opts["cmap"], opts["compat"]), nan_colour)

    def palette_colours(self) -> np.ndarray | None:
        return None if self.options["palette"] is None else read_palette(self.options["palette"])

    def limits_record(self, lo: np.ndarray, hi: np.ndarray) -> dict:
        """The limits used, as recorded in every output: the reduced axes and one (lo, hi) per group."""
        return {
            "axis": list(self.axes),
            "lo": [None if math.isnan(v) else float(v) for v in np.asarray(lo, dtype=np.float64).reshape(-1)],
            "hi": [None if math.isnan(v) else float(v) for v in np.asarray(hi, dtype=np.float64).reshape(-1)],
        }


def _axis(axis, ndim: int, label: str) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{label}={axis!r} must be an int")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{label}={axis} is out of range for an input of {ndim} axes")
    return int(axis) % ndim


class _Reading:
    """An input array-like whose read errors (a truncated file, a corrupt chunk: whatever the format's library
    raises) become a ValueError that names the input."""

    def __init__(self, array, path):
        self.array, self.path = array, path
        self.shape = tuple(array.shape)
        self.dtype = np.dtype(array.dtype)
        self.chunks = getattr(array, "chunks", None)
        self.mapped = isinstance(array, np.ndarray)  # reads are views of memory (see ChunkedSource.sample_indexes)

    def __getitem__(self, index):
        try:
            return self.array[index]
        except (MemoryError, OSError):
            raise
        except Exception as exc:  # the format library's own errors (numcodecs, tifffile, h5py, ...)
            name = repr(os.fspath(self.path)) if self.path else "the input"
            raise ValueError(f"cannot read {name} ({type(exc).__name__}: {exc}); is it truncated or corrupt?") from exc


class _ChannelSelection:
    """An array-like view of some channels of another, in the given order (read by slicing, then taking)."""

    def __init__(self, array, axis: int, picked: list[int]):
        self.array, self.axis, self.picked = array, axis, picked
        shape = list(array.shape)
        shape[axis] = len(picked)
        self.shape = tuple(shape)
        self.dtype = np.dtype(array.dtype)

    def __getitem__(self, index):
        index = tuple(index)
        wanted = self.picked[index[self.axis]]
        first, last = min(wanted), max(wanted)
        spanning = list(index)
        spanning[self.axis] = slice(first, last + 1)
        block = np.asarray(self.array[tuple(spanning)])
        return np.take(block, [c - first for c in wanted], axis=self.axis)


# --- the limit passes and the write pass ----------------------------------------------------------------------


class _Writer:
    """Runs the limits and the write pass of one job into one sink."""

    def __init__(self, job: _Job, sink, identity: dict, options: dict, workers: int, memory: int, resume, quiet):
        self.job, self.sink, self.identity, self.options = job, sink, identity, options
        self.workers, self.memory, self.resume, self.quiet = workers, memory, resume, quiet
        self.written = self.skipped = self.bytes_read = 0
        self.skip: set[int] = set()

    def run(self) -> tuple[np.ndarray, np.ndarray]:
        from . import _approx, _engine
        from ._source import ChunkedSource, block_elements

        job, opts = self.job, self.options
        vmin, vmax, percentiles = _validate.check_limits(
            opts["vmin"], opts["vmax"], opts["percentiles"], job.volume.shape, job.axes
        )
        grouped = percentiles is not None or (vmin is None) != (vmax is None)
        plan = make_plan(tuple(job.volume.shape), job.axes, grouped)
        self.plan = plan
        self.source = ChunkedSource(job.volume, plan, block_elements(job.volume.dtype, self.memory), job.chunks)
        self.itemsize = np.dtype(job.volume.dtype).itemsize
        dtype = np.dtype(job.volume.dtype)
        method, nan = opts["method"], opts["nan"]
        self.rule = Rule(255 if opts["bits"] == 8 else 65535, opts["stretch"], opts["center"])
        self.kind = "labels" if opts["labels"] else "composite" if opts["composite"] else "levels"
        if opts["cmap"] is not None and opts["compat"] is not None:
            self.kind = "compat"
        self.lut = job.colour_table() if self.kind == "levels" and opts["cmap"] is not None else None
        if self.kind != "levels":
            return self._run_mapped(vmin, vmax, percentiles, method, dtype)
        if not self.rule.fused:
            method = "exact"  # no approx proof for 16-bit levels or a non-linear stretch (see to_uint8)
        if percentiles is not None and method == "approx":
            found = _approx.estimates(self.source, np.array(percentiles))
            if found is not None:
                found = (*centred(found[0], found[1], self.rule.center), found[2])
            if found is not None and self.resume and self._made_otherwise(*found[:2]):
                # Outputs of an earlier run that do not match the estimates were written with the exact limits
                # after a failed proof (deterministic: this run's proof would fail too), or are foreign: the exact
                # path below resumes the former and refuses the latter.
                note("approx", resumed_exact=True)
                found = None
            if found is not None:
                lo, hi, windows = found
                self._prepare(lo, hi)
                proved = self._write(
                    lo, hi, nan, windows, commit_each=False,
                    proof=lambda counts: _approx.prove(self.source, counts, np.array(percentiles)),
                )  # fmt: skip
                note("approx", proved=proved)
                if proved:
                    self.sink.commit()
                    return lo, hi
                self.sink.abort()
                self.written = self.skipped = 0
        lo, hi = centred(*_engine.exact_limits(self.source, dtype, vmin, vmax, percentiles), self.rule.center)
        self._prepare(lo, hi)
        self._write(lo, hi, nan, None, commit_each=not self.sink.sequential)
        self.sink.commit()
        return lo, hi

    def _run_mapped(self, vmin, vmax, percentiles, method, dtype) -> tuple[np.ndarray, np.ndarray]:
        """Labels (no limits), composites and matplotlib-compatible colours: the limits first (approx: proved by a
        pass of their own), then a write pass that maps each image in NumPy or its own kernel."""
        from . import _approx, _engine

        if self.kind == "labels":
            lo = hi = np.zeros(0)
        else:
            found = None
            if percentiles is not None and method == "approx":
                found = _approx.limits(self.source, np.array(percentiles))
            if found is None:
                found = _engine.exact_limits(self.source, dtype, vmin, vmax, percentiles)
            lo, hi = centred(*found, self.rule.center)
        self._prepare(lo, hi)
        self._write(lo, hi, 0, None, commit_each=not self.sink.sequential)
        self.sink.commit()
        return lo, hi

    def _mapped_image(self, index, lo, hi) -> np.ndarray:
        """The image rows of a write-pass block for labels, composite and compat colours (read from the volume in
        its own dtype, so that matplotlib's float16 arithmetic is matplotlib's)."""
        from . import _colour, _composite, _segmentation

        job, opts = self.job, self.options
        physical = [None] * len(index)
        for k, p in enumerate(self.plan.perm):
            physical[p] = index[k]
        block = np.asarray(job.volume[tuple(physical)])
        order = [job.slice_axis, *job.image_axes] + ([job.channel_axis] if job.channel_axis is not None else [])
        image = block.transpose(order)[0]
        if self.kind == "labels":
            ignore = int(np.iinfo(job.dtype).max)
            return _segmentation.labels(image, 2, job.dtype, opts["threshold"], ignore)
        slice_lo, slice_hi = self._slice_limits(lo, hi, physical[job.slice_axis].start)
        if self.kind == "composite":
            weights = _composite.colour_weights(None, image.shape[2])
            return _composite._blend_kernel(
                np.ascontiguousarray(image), slice_lo, slice_hi, weights, 2, opts["composite"]
            )
        grey = image if image.ndim == 2 else image[:, :, 0]
        one = (1, 1)
        return _colour.colours_matplotlib(grey, slice_lo.reshape(one), slice_hi.reshape(one), job.colour_table(), None)

    def _slice_limits(self, lo, hi, i: int):
        """The limits of image i: (C,) per channel, or (1,) for all of it."""
        job = self.job
        shape = _validate.keepdims_shape(tuple(job.volume.shape), job.axes)
        where = [0] * len(shape)
        where[job.slice_axis] = i if shape[job.slice_axis] > 1 else 0
        if job.channel_axis is not None:
            where[job.channel_axis] = slice(None)
        pick = tuple(where)
        return (np.atleast_1d(np.asarray(v, dtype=np.float64).reshape(shape)[pick]) for v in (lo, hi))

    # -- per image metadata and resume --

    def metadata(self, index: int, lo, hi) -> dict:
        from . import __version__

        return {
            "fastquant": __version__,
            "input": self.identity,
            "options": self.options,
            "slice_axis": self.job.slice_axis,
            "channel_axis": self.job.channel_axis,
            "limits": self.job.limits_record(lo, hi),
            "index": index,
            "count": self.job.count,
        }

    def _made_otherwise(self, lo, hi) -> bool:
        """Whether an existing output differs from what these limits would make."""
        indexes = range(self.job.count) if not self.sink.sequential else [0]
        return any(self.sink.status(i, self.metadata(i, lo, hi)) == "different" for i in indexes)

    def _prepare(self, lo, hi) -> None:
        """With resume: which images are complete and the same (skipped), and a refusal where one differs."""
        self.lo, self.hi = lo, hi
        self.skip = set()
        if not self.resume:
            return
        indexes = range(self.job.count) if not self.sink.sequential else [0]
        for i in indexes:
            status = self.sink.status(i, self.metadata(i, lo, hi))
            if status == "same":
                self.skip.add(i)
            elif status == "different":
                name = self.sink.names[min(i, len(self.sink.names) - 1)]
                raise ValueError(
                    f"resume: {name} was made from another input or with other options; "
                    "pass overwrite=True (--overwrite) to replace it"
                )
        if self.sink.sequential and self.skip:
            self.skip = set(range(self.job.count))

    # -- the write pass --

    def _write(self, lo, hi, nan: int, windows, commit_each: bool, proof=None):
        """Convert every image (the proof counts too, with `windows`) and hand it to the sink.

        `proof(counts)`, when given, is called as soon as the last image is converted, while the encoders may
        still be busy: once it holds, the images are committed as they finish (on a sink that can commit images
        one by one), so that their renames overlap the last encodes instead of following them. Returns what
        `proof` returned (None without one)."""
        from . import _engine

        job, source = self.job, self.source
        everything_skipped = len(self.skip) == job.count
        if everything_skipped and windows is None:
            self.skipped = job.count
            return None
        band_rows = self._band_rows()
        pool = None
        if not self.sink.sequential and band_rows >= job.image_shape[0] and self.workers > 1:
            pool = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="fastquant-encode")
        in_flight: list[concurrent.futures.Future] = []
        limit = threading.BoundedSemaphore(self.workers + 1)
        progress = _progress(job.count, self.quiet)
        state: dict[int, Any] = {}

        done = threading.Lock()
        each = {"commit": commit_each}  # switched on by a holding proof
        uncommitted: list[int] = []  # finished before the switch

        def finish(i: int) -> None:
            with done:
                if each["commit"]:
                    self.sink.commit([i])
                else:
                    uncommitted.append(i)
                self.written += 1
                progress.update(1)

        def skip(i: int) -> None:  # an image that resume keeps, converted for the proof counts only
            with done:
                self.skipped += 1
                progress.update(1)

        def commit_from_now() -> None:
            with done:
                each["commit"] = True
                ready = uncommitted[:]
                uncommitted.clear()
            if ready:
                self.sink.commit(ready)

        buffers = _engine.Buffers()

        def encode(i: int, image: np.ndarray, levels: np.ndarray) -> None:
            try:
                self.sink.write(i, image, self.metadata(i, lo, hi))
            finally:
                if levels is not None:  # `image` is a view of it (or a copy); the PNG sink is done with both
                    buffers.give(levels)
                limit.release()

        def emit(index, levels) -> None:
            # levels: a block's levels (or colours) in logical order; None for the mapped kinds (made here)
            i, start, stop = self._image_of(index)
            self.bytes_read += math.prod(s.stop - s.start for s in index) * self.itemsize
            if i in self.skip:
                if stop == job.image_shape[0]:
                    self.skipped += 1
                    progress.update(1)
                return
            band = self._mapped_image(index, lo, hi) if levels is None else self._to_image(levels)
            if start == 0 and stop == job.image_shape[0]:
                if pool is None:
                    self.sink.write(i, band, self.metadata(i, lo, hi))
                    finish(i)
                    return
                limit.acquire()
                future = pool.submit(encode, i, np.ascontiguousarray(band), levels)
                future.add_done_callback(lambda f, i=i: not f.cancelled() and f.exception() is None and finish(i))
                in_flight.append(future)
                return
            if start == 0:
                state[i] = self.sink.open_rows(i, self.metadata(i, lo, hi))
            state[i].write_rows(np.ascontiguousarray(band))
            if stop == job.image_shape[0]:
                state.pop(i).close()
                finish(i)

        if pool is not None and self.kind == "levels" and not job.sequential:
            try:
                return self._convert_and_encode(pool, lo, hi, nan, windows, proof, band_rows, buffers, finish,
                                                skip, commit_from_now)  # fmt: skip
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
                progress.close()

        # Beside the encoders the conversion runs in this thread alone: parallel kernels competing with them for
        # the cores made the job slower (32×2048² to PNG, 2 workers: median 436 -> 416 ms, best 406 -> 370 ms).
        threads = _threading.one_thread() if pool is not None else contextlib.nullcontext()
        note("write", path="encoders" if pool is not None else "one thread", workers=self.workers)
        try:
            if self.kind == "levels":
                with threads:
                    counts = _engine.convert_blocks(
                        source, lo, hi, nan, emit, windows, indexes=self._indexes(band_rows), lut=self.lut,
                        rule=self.rule, allocate=buffers.take,
                    )  # fmt: skip
            else:
                counts = None
                for index in self._indexes(band_rows):
                    emit(index, None)
            proved = None if proof is None else proof(counts)
            if proved and not self.sink.sequential:
                commit_from_now()
            for future in in_flight:
                future.result()
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            progress.close()
        return proved

    def _convert_and_encode(
        self, pool, lo, hi, nan, windows, proof, band_rows, buffers, finish, skip, commit_from_now
    ):  # fmt: skip
        """The write pass of whole images into PNG slices: each of the `pool`'s workers takes the next image,
        converts it (one thread) and encodes it, while this thread waits to prove approx limits as soon as the
        last image is converted, so that the commits overlap the last encodes. Returns what `proof` returned.

        Why not one converting thread feeding the encoders: three busy threads on two cores, a hand-off per
        image, and a last image encoded by one worker while the other waits (32×2048² to PNG, 2 workers,
        alternated in-process: median 285-287 -> 268-270 ms, best 261-271 -> 245 ms)."""
        from . import _engine
        from ._source import block_shape

        source = self.source
        indexes = self._indexes(band_rows)  # one block per image
        self.bytes_read += sum(math.prod(s.stop - s.start for s in index) for index in indexes) * self.itemsize
        colours = () if self.lut is None else (self.lut.shape[1],)  # a colormap's colours on a trailing axis
        shapes = [block_shape(index, source.geometry.shape) + colours for index in indexes]
        claim = threading.Lock()
        state = {"next": 0, "converted": 0, "stop": False}
        all_converted = threading.Event()
        partials: list = []

        def work() -> None:
            try:
                with _threading.one_thread():  # the other workers have the other cores
                    pass_ = _engine.convert_pass(lo, hi, nan, None, windows, self.lut, self.rule)
                    partial = pass_.create()
                    partials.append((pass_, partial))
                    while True:
                        with claim:
                            k = state["next"]
                            if k >= len(indexes) or state["stop"]:
                                return
                            state["next"] = k + 1
                        (block,) = source.blocks(indexes=[indexes[k]])
                        levels = buffers.take(shapes[k], self.rule.dtype)
                        _engine.convert_into(pass_, partial, block, levels)
                        del block
                        with claim:
                            state["converted"] += 1
                            if state["converted"] == len(indexes):
                                all_converted.set()
                        i = self._image_of(indexes[k])[0]
                        if i in self.skip:
                            skip(i)
                        else:
                            self.sink.write(i, np.ascontiguousarray(self._to_image(levels)), self.metadata(i, lo, hi))
                            finish(i)
                        buffers.give(levels)
            except BaseException:
                with claim:
                    state["stop"] = True
                all_converted.set()  # wakes the waiting thread, which raises this
                raise

        note("write", path="workers", workers=self.workers)
        futures = [pool.submit(work) for _ in range(self.workers)]
        try:
            proved = None
            if proof is not None:
                all_converted.wait()
                if state["converted"] == len(indexes):
                    pass_, _ = partials[0]
                    proved = proof(pass_.finalize(pass_.combine([p for _, p in partials])))
                    if proved:
                        commit_from_now()
            for future in futures:
                future.result()
        finally:
            with claim:
                state["stop"] = True
        return proved

    def _band_rows(self) -> int:
        """Rows of an image read and converted at once: the whole image when it (and the images waiting to be
        encoded) fit in the memory cap, else bands."""
        rows, cols, *rest = self.job.image_shape
        if current().band_rows:
            return min(rows, current().band_rows)
        job = self.job
        read = cols * (1 if job.channel_axis is None else int(job.volume.shape[job.channel_axis]))  # samples in
        pixels = cols * (rest[0] if rest else 1) * job.dtype.itemsize  # bytes out
        kernel = 8 if self.source.dtype.itemsize == 8 else 4
        per_row_read = read * (self.itemsize + kernel) + pixels
        budget = self.memory - (96 << 20)
        # whole images: each worker may hold one read and converted (see _convert_and_encode), or one thread
        # reads while up to workers + 1 images wait for the encoders
        whole = rows * (max(1, self.workers) * per_row_read + pixels * 3 * (self.workers + 1))
        if whole <= budget:
            return rows
        return max(1, min(rows, budget // (2 * (per_row_read + pixels * 3))))

    def _indexes(self, band_rows: int) -> list[tuple[slice, ...]]:
        """The write pass's blocks (logical order): each image, or its bands of `band_rows` rows, in order."""
        job = self.job
        shape = job.volume.shape
        row_axis = job.image_axes[0]
        blocks = []
        for i in range(job.count):
            for start in range(0, shape[row_axis], band_rows):
                physical = [slice(0, n) for n in shape]
                physical[job.slice_axis] = slice(i, i + 1)
                physical[row_axis] = slice(start, min(shape[row_axis], start + band_rows))
                blocks.append(tuple(physical[p] for p in self.plan.perm))
        return blocks

    def _image_of(self, index) -> tuple[int, int, int]:
        """(image, first row, end row) of a write-pass block."""
        physical = [None] * len(index)
        for k, p in enumerate(self.plan.perm):
            physical[p] = index[k]
        rows = physical[self.job.image_axes[0]]
        return physical[self.job.slice_axis].start, rows.start, rows.stop

    def _to_image(self, levels: np.ndarray) -> np.ndarray:
        """A block's levels (logical order) as image rows: (rows, cols) or (rows, cols, channels)."""
        job = self.job
        colour = levels.ndim > len(self.plan.perm)  # colours of a colormap on a trailing axis
        inverse = tuple(np.argsort(self.plan.perm).tolist()) + ((len(self.plan.perm),) if colour else ())
        physical = levels.transpose(inverse)
        order = [job.slice_axis, *job.image_axes] + ([job.channel_axis] if job.channel_axis is not None else [])
        if colour and job.channel_axis is not None:  # a single channel coloured: (.., 1, C) -> (.., C)
            physical = np.take(physical, 0, axis=job.channel_axis)
            order = [a - (a > job.channel_axis) for a in order[:-1]]
        order += [physical.ndim - 1] if colour else []
        image = physical.transpose(order)[0]
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        return image


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, quiet: bool):
    """A tqdm bar on stderr when it is a terminal (and not `quiet`)."""
    if quiet or not sys.stderr.isatty():
        return _NoProgress()
    from tqdm import tqdm

    return tqdm(total=total, unit="image", file=sys.stderr, leave=False)
