"""Output sinks of bulk conversion, written safely, and the metadata they record.

A sink receives the N uint8 (or uint16: 16-bit levels, labels of many classes) images of one ``convert`` run,
each ``(H, W)`` grey, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA, whole (:meth:`Sink.write`) or in row bands
(:meth:`Sink.open_rows`), and writes one of:

- ``"png"``: one PNG per image in a directory, named by a template (``"{stem}_{index:04d}.png"``). Images may be
  written in any order, from several threads. The metadata is a ``fastquant`` iTXt chunk (JSON).
- ``"tiff"``: one multi-page TIFF (BigTIFF above 4 GiB - 32 MiB of pixels), one page per image, in strips of
  about 256 KiB, ``compression`` ``"zlib"``, ``"deflate"``, ``"lzw"``, ``"lzma"`` or ``"zstd"`` (lzw and zstd
  need ``imagecodecs``; zlib, deflate and zstd at ``compress_level``), no predictor. The whole series is one
  ``TiffWriter.write`` call fed strip by strip from a helper thread, so the layout is the one tifffile writes for
  a volume (uncompressed: contiguous and memory-mappable) and a page never needs to be in memory: row bands are
  streamed. The first page's ImageDescription is ``{"fastquant": metadata, "shape": [N, H, W(, C)]}`` (tifffile's
  "shaped" JSON, so tifffile reads the series back with exactly that shape); no DateTime tag.
- ``"zarr"``: a uint8 zarr v3 array (directory store) of shape ``(N, H, W[, C])``, one chunk per image (an image
  over 64 MiB is chunked in bands of whole rows, so that writing it in row bands buffers at most one chunk),
  ``compression`` ``"zstd"``, ``"gzip"`` or ``"blosc"`` at ``compress_level``; attributes
  ``{"fastquant": metadata}``, plus ``omero.channels[].window`` (start/end and min/max: the recorded limits) when
  the metadata has one (lo, hi) per channel or one for all.
- ``"npy"``: a uint8 ``.npy`` of shape ``(N, H, W[, C])``, the header numpy writes, then each image appended in
  order (plain writes rather than a memory map, so a full disk is an OSError, not a SIGBUS). .npy has no place for
  metadata: it goes to a sidecar ``<output>.json`` (``{"fastquant": metadata}``), renamed into place after the
  .npy, the old one removed before.

Single-file outputs (TIFF, zarr, npy) record the metadata given with image 0, and are written in index order.

Safety. Every file or directory is first written under a temporary name ``.fastquant-<random>.tmp`` in the
destination directory and renamed into place (``os.replace``) by :meth:`Sink.commit` once complete: nothing
incomplete ever has a final name. An error while writing a single-file output removes its temporary and
propagates; an error while writing a PNG removes that PNG's temporary, and :meth:`Sink.abort` removes the rest
(then the sink can be written again from the start). Temporaries are created at the first write, never by
:func:`make_sink`, which deletes nothing; without ``overwrite``, :meth:`Sink.commit` refuses to replace an
existing name (FileExistsError). :func:`remove_leftovers` deletes those of killed runs. Outputs carry no
timestamps: the same images and metadata give the same bytes. Renames are not fsynced (safe against a killed
process, not against a power cut).

This module is imported by ``import fastquant``: it imports NumPy and the standard library only, and everything
else (tifffile, zarr, the PNG writer, the input readers) when first used.
"""

from __future__ import annotations

import errno
import functools
import json
import math
import os
import string
import threading
import zlib
from typing import Any

import numpy as np

__all__ = ["FORMATS", "RowWriter", "Sink", "make_sink", "read_metadata", "remove_leftovers"]

FORMATS = ("png", "tiff", "zarr", "npy")
TEMP_PREFIX = ".fastquant-"
TEMP_SUFFIX = ".tmp"
ACCEPTED_OUTPUTS = (
    "a directory or a path without extension (PNG slices), .tif/.tiff (TIFF), .zarr (zarr) or .npy (npy); "
    "or pass format= ('png', 'tiff', 'zarr', 'npy')"
)
ACCEPTED_IMAGE_SHAPES = "(H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA, H, W >= 1"
_EXTENSION_FORMATS = {".tif": "tiff", ".tiff": "tiff", ".zarr": "zarr", ".npy": "npy"}
# lossless TIFF codecs: name -> (Compression tag, whether the codec takes compress_level as its level)
_TIFF_CODECS = {
    "zlib": (8, True),
    "deflate": (32946, True),
    "lzw": (5, False),
    "lzma": (34925, False),
    "zstd": (50000, True),
}
_ZARR_CODECS = ("zstd", "gzip", "blosc")
_TIFF_STRIP_BYTES = 1 << 18  # bytes of levels per TIFF strip (whole rows)
_ZARR_CHUNK_BYTES = 1 << 26  # images up to this size are one zarr chunk; larger ones, bands of whole rows
_BIGTIFF_BYTES = 2**32 - 2**25  # pixel bytes above which the TIFF is a BigTIFF
_TEMPLATE_FIELDS = ("stem", "index")


def _extra(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModuleNotFoundError(
            f"writing this output needs the {module} package, which is not installed: "
            f'pip install "fastquant-uint8[{extra}]"',
            name=module,
        ) from exc


def _dump(metadata: dict) -> str:
    """Metadata as canonical JSON (sorted keys): the same dict always gives the same bytes."""
    try:
        return json.dumps(metadata, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metadata must be JSON-serializable (no NaN or inf): {exc}") from exc


def _normalized(metadata) -> Any:
    """`metadata` as it reads back from JSON (tuples become lists, ...), for comparisons."""
    return json.loads(_dump(metadata))


# --------------------------------------------------------------------------------------------------------------
# temporaries


def _temp_name(directory: str) -> str:
    return os.path.join(directory, f"{TEMP_PREFIX}{os.urandom(8).hex()}{TEMP_SUFFIX}")


def _remove(path: str) -> None:
    """Delete a file or directory tree if it exists."""
    import shutil

    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


def _open_temp(temp: str, readable: bool = False):
    """The empty temporary file `temp` (made by :meth:`Sink._new_temp`), opened for writing (and reading).

    Not with ``open(temp, "wb")``: on ext4 a file opened with O_TRUNC starts its writeback when it is closed
    (``auto_da_alloc``), in the thread that closes it (about 1 % of a 32-slice PNG run)."""
    return open(temp, "r+b" if readable else "wb", opener=_without_truncation)


def _without_truncation(path: str, flags: int) -> int:
    return os.open(path, flags & ~os.O_TRUNC, 0o666)


def remove_leftovers(directory) -> list[str]:
    """Delete the ``.fastquant-*.tmp`` files and directories that killed runs left in `directory`.

    Parameters
    ----------
    directory : str or os.PathLike
        Not searched recursively; a directory that does not exist has none.

    Returns
    -------
    list of str
        The paths removed, sorted.

    Notes
    -----
    Call it only where no other conversion is running into the same directory: its temporaries look the same.
    """
    directory = os.fspath(directory)
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for entry in entries:
        if entry.name.startswith(TEMP_PREFIX) and entry.name.endswith(TEMP_SUFFIX):
            _remove(entry.path)
            removed.append(entry.path)
    return sorted(removed)


_RENAME_EXCHANGE = 2  # renameat2's flag (linux/fs.h)
_AT_FDCWD = -100


@functools.cache
def _renameat2():
    """libc's ``renameat2`` (Linux, glibc 2.28 or later), or None."""
    import sys

    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def _exchange(temp: str, final: str) -> bool:
    """Swap the files named `temp` and `final` in one atomic step; False where the system or the filesystem
    cannot (then nothing changed).

    Why not ``os.replace``: on ext4 a rename over an existing file first starts the writeback of the new one
    (``auto_da_alloc``) and frees the old one inside the rename, under the directory's lock: 1.1-1.5 ms per
    1.7 MB PNG, 36-49 ms for 32 in a row, against 17-20 ms for 32 exchanges each followed by the unlink of the
    old file (measured on the development machine)."""
    import ctypes

    rename = _renameat2()
    if rename is None:
        return False
    if rename(_AT_FDCWD, os.fsencode(temp), _AT_FDCWD, os.fsencode(final), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOENT, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False  # no RENAME_EXCHANGE here, or `final` went away meanwhile: os.replace does it
    raise OSError(code, os.strerror(code), final)


def _move_into_place(temp: str, final: str, overwrite: bool) -> None:
    """Rename `temp` to `final` (atomically when `final` is absent or a file being replaced by a file)."""
    if os.path.lexists(final) and not overwrite:
        raise FileExistsError(f"{final} exists (it appeared during the run); pass overwrite=True to replace it")
    replacing_tree = os.path.lexists(final) and (os.path.isdir(final) or os.path.isdir(temp))
    if not replacing_tree:
        if os.path.lexists(final) and _exchange(temp, final):
            os.unlink(temp)  # now the replaced file (a kill before this leaves it a leftover temporary)
            return
        os.replace(temp, final)
        return
    # os.replace cannot put a directory over a directory (or a file over one): move the old one aside first.
    aside = _temp_name(os.path.dirname(os.path.abspath(final)))
    os.rename(final, aside)
    try:
        os.replace(temp, final)
    except BaseException:
        os.rename(aside, final)
        raise
    _remove(aside)


# --------------------------------------------------------------------------------------------------------------
# sinks


class RowWriter:
    """Writes one image in bands of whole rows: :meth:`write_rows` in order, then :meth:`close`."""

    def write_rows(self, rows: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class Sink:
    """The output of one convert run (base class).

    Attributes
    ----------
    format : str
        ``"png"``, ``"tiff"``, ``"zarr"`` or ``"npy"``.
    names : list of str
        The final paths: one per image for PNG slices, else the single output path.
    sequential : bool
        True when images must be written in index order from one thread (TIFF, zarr, npy); False for PNG slices
        (any order, several threads).
    """

    format: str
    sequential: bool = True
    palette: np.ndarray | None = None  # PNG: write (H, W) uint8 indexes as a palette image with these colours
    transparent: int | None = None  # ... and this index transparent

    def __init__(
        self, output: str, count: int, image_shape: tuple[int, ...], compress_level: int, overwrite: bool,
        dtype=np.uint8,
    ):  # fmt: skip
        self.dtype = np.dtype(dtype)
        self.output = output
        self.count = count
        self.image_shape = image_shape
        self.compress_level = compress_level
        self.overwrite = overwrite
        self.names: list[str] = [output]
        self._lock = threading.Lock()
        self._temps: set[str] = set()

    # -- the interface --

    def status(self, index: int, expected: dict) -> str:
        """``"missing"`` (no final file), ``"same"`` (complete, its recorded metadata equals `expected`) or
        ``"different"`` (anything else, including an unreadable file)."""
        self._check_index(index)
        final = self.names[index if len(self.names) > 1 else 0]
        if not os.path.lexists(final):
            return "missing"
        try:
            recorded = self._recorded(final)
        except Exception:  # unreadable, truncated or foreign: not ours to resume
            return "different"
        return "same" if recorded is not None and recorded == _normalized(expected) else "different"

    def write(self, index: int, levels: np.ndarray, metadata: dict) -> None:
        """Write image `index` whole."""
        raise NotImplementedError

    def open_rows(self, index: int, metadata: dict) -> RowWriter:
        """Start image `index`, to be written in bands of rows (for images bigger than memory)."""
        raise NotImplementedError

    def commit(self, indexes=None) -> None:
        """Rename finished temporaries into place."""
        raise NotImplementedError

    def abort(self) -> None:
        """Remove every temporary this sink made (final names are never touched); the sink can start again."""
        with self._lock:
            temps, self._temps = self._temps, set()
        for temp in temps:
            _remove(temp)

    # -- shared pieces --

    def _recorded(self, final: str):
        raise NotImplementedError

    def _check_index(self, index) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < self.count:
            raise IndexError(f"image index {index!r} is out of range; accepted: 0 <= index < {self.count}")
        return int(index)

    def _check_levels(self, levels, rows: bool = False) -> np.ndarray:
        if not isinstance(levels, np.ndarray) or levels.dtype != self.dtype:
            kind = levels.dtype if isinstance(levels, np.ndarray) else type(levels).__name__
            raise TypeError(f"levels must be a {self.dtype} numpy array, got {kind}")
        expected = self.image_shape[1:] if rows else self.image_shape
        got = levels.shape[1:] if rows else levels.shape
        if got != expected or (rows and levels.ndim != len(self.image_shape)):
            accepted = f"(h, {', '.join(map(str, expected))})" if rows else str(self.image_shape)
            raise ValueError(f"{'rows' if rows else 'levels'} has shape {levels.shape}; accepted: {accepted}")
        return levels

    def _new_temp(self, directory: str, *, folder: bool = False) -> str:
        """Create a fresh temporary (file or directory) in `directory` and register it."""
        while True:
            temp = _temp_name(directory)
            with self._lock:  # registered before it exists: an abort() in another thread never misses it
                self._temps.add(temp)
            try:
                if folder:
                    os.mkdir(temp)
                else:
                    os.close(os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
                return temp
            except FileExistsError:
                self._forget(temp)  # another's: try another name
            except BaseException:
                self._forget(temp)
                raise

    def _forget(self, temp: str) -> None:
        with self._lock:
            self._temps.discard(temp)


# -- PNG slices --


class _PngSink(Sink):
    format = "png"
    sequential = False

    def __init__(self, output, count, image_shape, compress_level, overwrite, names, dtype=np.uint8):
        super().__init__(output, count, image_shape, compress_level, overwrite, dtype)
        self.names = names
        self._finished: dict[int, str] = {}
        self._open: set[Any] = set()

    def _text(self, metadata: dict) -> dict[str, str]:
        return {"fastquant": _dump(metadata)}

    def _recorded(self, final: str):
        from . import _png

        return json.loads(_png.read_text(final)["fastquant"])

    def write(self, index, levels, metadata) -> None:
        from . import _png

        index = self._check_index(index)
        levels = self._check_levels(levels)
        text = self._text(metadata)
        temp = self._new_temp(self.output)
        try:
            with _open_temp(temp) as f:
                if self.palette is not None:
                    _png.write_indexed_png(
                        f, levels, self.palette, transparent=self.transparent, compress_level=self.compress_level,
                        text=text,
                    )  # fmt: skip
                elif self.dtype == np.uint16:
                    _png.write_png16(f, levels, compress_level=self.compress_level, text=text)
                else:
                    _png.write_png(f, levels, compress_level=self.compress_level, text=text)
        except BaseException:
            self._forget(temp)
            _remove(temp)
            raise
        self._finish(index, temp)

    def open_rows(self, index, metadata) -> RowWriter:
        index = self._check_index(index)
        return _PngRows(self, index, self._text(metadata))

    def _finish(self, index: int, temp: str) -> None:
        with self._lock:
            previous = self._finished.pop(index, None)
            self._finished[index] = temp
        if previous is not None:  # written again (e.g. after a failed proof): the new one wins
            self._forget(previous)
            _remove(previous)

    def commit(self, indexes=None) -> None:
        with self._lock:
            chosen = sorted(self._finished) if indexes is None else [self._check_index(i) for i in indexes]
            missing = [i for i in chosen if i not in self._finished]
            if missing:
                raise ValueError(f"commit: image {missing[0]} was not written (or was committed already)")
            items = [(i, self._finished.pop(i)) for i in chosen]

        def move(item: tuple[int, str]) -> None:
            _move_into_place(item[1], self.names[item[0]], self.overwrite)
            self._forget(item[1])

        failures: list = []
        if self.overwrite and len(items) > 1:
            # Each move over an existing output unlinks the old file (see _exchange): 0.5-0.6 ms for a 1.7 MB
            # PNG on ext4, mostly waiting, so a few threads overlap them. (Measured on a 32-slice run: one thread
            # is as fast since the exchange, 286 vs 288 ms; they were added for os.replace, slower over a file.)
            import concurrent.futures

            with concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="fastquant-commit") as pool:
                futures = [pool.submit(move, item) for item in items]
            failures = [(item, f.exception()) for item, f in zip(items, futures, strict=True) if f.exception()]
        else:
            for position, item in enumerate(items):
                try:
                    move(item)
                except BaseException as error:
                    failures = [(other, error) for other in items[position:]]  # the rest are not tried
                    break
        if failures:
            with self._lock:  # what was not moved stays a temporary, for abort()
                for (i, temp), _ in failures:
                    self._finished[i] = temp
            raise failures[0][1]

    def abort(self) -> None:
        with self._lock:
            streams, self._open = self._open, set()
            self._finished = {}
        for stream in streams:
            stream.file.close()
        super().abort()


class _PngRows(RowWriter):
    def __init__(self, sink: _PngSink, index: int, text: dict[str, str]):
        from . import _png

        self.sink, self.index = sink, index
        height, width, *channels = sink.image_shape
        self.temp = sink._new_temp(sink.output)
        try:
            self.file = _open_temp(self.temp)
            self.stream = _png.PngStream(
                self.file, height, width, channels[0] if channels else 1, compress_level=sink.compress_level,
                text=text, bit_depth=8 * sink.dtype.itemsize, palette=sink.palette, transparent=sink.transparent,
            )  # fmt: skip
        except BaseException:
            self._discard()
            raise
        with sink._lock:
            sink._open.add(self)

    def write_rows(self, rows) -> None:
        try:
            self.stream.write_rows(self.sink._check_levels(rows, rows=True))
        except BaseException:
            self._discard()
            raise

    def close(self) -> None:
        try:
            self.stream.close()
            self.file.close()
        except BaseException:
            self._discard()
            raise
        with self.sink._lock:
            self.sink._open.discard(self)
        self.sink._finish(self.index, self.temp)

    def _discard(self) -> None:
        file = getattr(self, "file", None)
        if file is not None:
            file.close()
        with self.sink._lock:
            self.sink._open.discard(self)
        self.sink._forget(self.temp)
        _remove(self.temp)


# -- single-file outputs: the shared order and commit logic --


class _OneFileSink(Sink):
    """TIFF, zarr and npy: one output written in index order, renamed into place when all N images are in."""

    def __init__(self, output, count, image_shape, compress_level, overwrite, dtype=np.uint8):
        super().__init__(output, count, image_shape, compress_level, overwrite, dtype)
        self.directory = os.path.dirname(os.path.abspath(output))
        self._reset()

    def _reset(self) -> None:
        self._next = 0  # the next image to write
        self._temp: str | None = None
        self._metadata: dict | None = None
        self._rows: RowWriter | None = None

    def _check_order(self, index: int) -> None:
        """ValueError unless `index` is the next image (a mistake of the caller: nothing is discarded)."""
        if self._rows is not None:
            raise ValueError(f"image {self._next - 1} is still being written in bands; close its row writer first")
        if index != 0 and index != self._next:
            raise ValueError(
                f"a {self.format} output is written in index order: expected image {self._next}, got {index}"
            )

    def _start(self, index: int, metadata: dict) -> None:
        """At image 0, create the temporary (`_create`)."""
        if index == 0:
            if self._temp is not None:  # written again from the start (e.g. after a failed proof)
                self.abort()
            self._metadata = _normalized(metadata)
            self._create()
        self._next = index + 1

    def write(self, index, levels, metadata) -> None:
        index = self._check_index(index)
        levels = self._check_levels(levels)
        self._check_order(index)
        self._guarded(self._start, index, metadata)
        self._guarded(self._write, index, levels)

    def open_rows(self, index, metadata) -> RowWriter:
        index = self._check_index(index)
        self._check_order(index)
        self._guarded(self._start, index, metadata)
        self._rows = self._guarded(self._open_rows, index)
        return self._rows

    def commit(self, indexes=None) -> None:
        if self._temp is None:
            return  # nothing written (e.g. every image skipped by a resume)
        if self._rows is not None or self._next != self.count:
            done = self._next - (self._rows is not None)
            self.abort()
            raise ValueError(f"commit: {done} of the {self.count} images were written; the output was discarded")
        self._guarded(self._finish)
        self._guarded(self._before_move)
        self._guarded(_move_into_place, self._temp, self.output, self.overwrite)
        self._forget(self._temp)
        self._after_commit()
        self._reset()

    def abort(self) -> None:
        self._close_quietly()
        self._reset()
        super().abort()

    def _guarded(self, function, *args):
        """Run `function`; on any error remove the temporaries (the output is then abandoned) and re-raise."""
        try:
            return function(*args)
        except BaseException:
            self.abort()
            raise

    def _rows_done(self) -> None:
        self._rows = None

    # per format
    def _create(self) -> None:
        raise NotImplementedError

    def _write(self, index: int, levels: np.ndarray) -> None:
        raise NotImplementedError

    def _open_rows(self, index: int) -> RowWriter:
        raise NotImplementedError

    def _finish(self) -> None:
        """Flush and close the temporary."""

    def _before_move(self) -> None:
        """Before the rename (npy: remove the old sidecar)."""

    def _after_commit(self) -> None:
        """After the rename (npy: the sidecar)."""

    def _close_quietly(self) -> None:
        """Release open handles without raising."""


class _BufferedRows(RowWriter):
    """Regroups bands into blocks of `block_rows` rows (the image's last block may be shorter) for
    `emit(start, rows)`; bands are passed through as they are when `block_rows` is None. Only the rows of an
    unfinished block are copied."""

    def __init__(self, sink: _OneFileSink, block_rows: int | None, emit, close=None):
        self.sink, self.block_rows, self.emit, self.on_close = sink, block_rows, emit, close
        self.height = sink.image_shape[0]
        self.written = 0  # rows handed to emit
        self.pending: list[np.ndarray] = []
        self.pending_rows = 0
        self.closed = False

    def write_rows(self, rows) -> None:
        if self.closed:
            raise ValueError("write_rows on a closed row writer")
        rows = self.sink._check_levels(rows, rows=True)
        if self.written + self.pending_rows + len(rows) > self.height:
            self.sink.abort()
            raise ValueError(
                f"{self.written + self.pending_rows + len(rows)} rows exceed the image's {self.height} rows"
            )
        self.sink._guarded(self._take, rows)

    def _take(self, rows: np.ndarray) -> None:
        if self.block_rows is None:
            self.emit(self.written, rows)
            self.written += len(rows)
            return
        position, n = 0, len(rows)
        while position < n:
            target = min(self.block_rows, self.height - self.written)  # the rows of the next block
            if not self.pending_rows and n - position >= target:
                self.emit(self.written, rows[position : position + target])
                self.written += target
                position += target
                continue
            take = min(target - self.pending_rows, n - position)
            self.pending.append(np.array(rows[position : position + take]))  # the caller may reuse its buffer
            self.pending_rows += take
            position += take
            if self.pending_rows == target:
                block = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
                self.pending, self.pending_rows = [], 0
                self.emit(self.written, block)
                self.written += target

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.written != self.height:
            self.sink.abort()
            raise ValueError(f"{self.written + self.pending_rows} of the image's {self.height} rows were written")
        if self.on_close is not None:
            self.sink._guarded(self.on_close)
        self.sink._rows_done()


# -- TIFF --


class _TiffSink(_OneFileSink):
    """One ``TiffWriter.write`` call for the whole (N, H, W[, C]) series, running in a helper thread and pulling
    encoded strips from a small queue that :meth:`write` and the row writers fill, in order. This is the layout
    tifffile itself writes for a volume (uncompressed: the first IFD, all pixel data contiguous, then the other
    IFDs; compressed: IFDs and strips interleaved), so its readers take the series as it is, and no page ever needs
    to be in memory whole."""

    format = "tiff"

    def __init__(self, output, count, image_shape, compress_level, overwrite, compression, dtype=np.uint8):
        super().__init__(output, count, image_shape, compress_level, overwrite, dtype)
        self.tifffile = _extra("tifffile", "tiff")
        self.compression = compression
        self._encoder = _tiff_encoder(self.tifffile, compression, compress_level)
        height, width, *channels = image_shape
        samples = channels[0] if channels else 1
        self.rows_per_strip = max(1, min(height, _TIFF_STRIP_BYTES // (width * samples * self.dtype.itemsize)))
        self.strips = math.ceil(height / self.rows_per_strip)
        self.bigtiff = count * math.prod(image_shape) * self.dtype.itemsize > _BIGTIFF_BYTES
        self._options = {
            "shape": (count, *image_shape),
            "dtype": self.dtype,
            "photometric": "minisblack" if samples == 1 else "rgb",
            "planarconfig": None if samples == 1 else "contig",
            "extrasamples": ("unassalpha",) if samples == 4 else None,
            "rowsperstrip": self.rows_per_strip,
            "compression": None if compression is None else _TIFF_CODECS[compression][0],
            "metadata": None,  # tifffile adds no JSON of its own: the description is ours
            "software": "fastquant",
            "datetime": None,  # no DateTime tag: the same images give the same bytes
        }
        self._file = None
        self._writer = None
        self._thread: threading.Thread | None = None

    def _create(self) -> None:
        import queue

        self._temp = self._new_temp(self.directory)
        self._file = _open_temp(self._temp, readable=True)
        self._writer = self.tifffile.TiffWriter(self._file, bigtiff=self.bigtiff, byteorder="<")
        self._queue: queue.Queue = queue.Queue(maxsize=4)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        description = _dump({"fastquant": self._metadata, "shape": [self.count, *self.image_shape]})
        writer = self._writer

        def run() -> None:
            try:
                writer.write(self._pull(), description=description, **self._options)
            except BaseException as exc:  # handed to the producer at its next call
                self._error = exc

        self._thread = threading.Thread(target=run, name="fastquant-tiff-writer", daemon=True)
        self._thread.start()

    def _pull(self):
        import queue

        stop = self._stop
        for _ in range(self.count * self.strips):
            while True:
                try:
                    item = self._queue.get(timeout=0.05)
                    break
                except queue.Empty:
                    if stop.is_set():
                        raise RuntimeError("the TIFF output was abandoned") from None
            yield item

    def _put(self, strip: np.ndarray) -> None:
        import queue

        encoded = self._encoder(np.ascontiguousarray(strip))
        while True:
            if self._error is not None or not self._thread.is_alive():
                self._raise()
            try:
                self._queue.put(encoded, timeout=0.05)
                return
            except queue.Full:
                continue

    def _raise(self) -> None:
        self._thread.join()
        raise self._error or RuntimeError("the TIFF writer stopped early")

    def _write(self, index, levels) -> None:
        for start in range(0, len(levels), self.rows_per_strip):
            self._put(levels[start : start + self.rows_per_strip])

    def _open_rows(self, index) -> RowWriter:
        return _BufferedRows(self, self.rows_per_strip, lambda start, rows: self._put(rows))

    def _finish(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error
        self._writer.close()
        self._file.close()
        self._writer = self._file = self._thread = None

    def _close_quietly(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        for closer in (self._writer, self._file):
            if closer is not None:
                try:
                    closer.close()
                except Exception:  # abandoning a broken file: its temporary is removed next
                    pass
        self._writer = self._file = self._thread = None

    def _recorded(self, final: str):
        with self.tifffile.TiffFile(final) as tif:
            described = json.loads(tif.pages[0].description)
            if tuple(tif.series[0].shape) != (self.count, *self.image_shape) or len(tif.pages) != self.count:
                return None
            return described["fastquant"]


def _tiff_encoder(tifffile, compression: str | None, level: int):
    """A function strip -> bytes for `compression`; checked on a tiny strip now (missing codecs fail here)."""
    if compression is None:
        return lambda strip: strip.tobytes()
    tag, takes_level = _TIFF_CODECS[compression]
    try:
        codec = tifffile.TIFF.COMPRESSORS[tag]
        args = {"level": level} if takes_level else {}
        codec(np.zeros((1, 1, 1), np.uint8), **args)
    except (KeyError, ImportError) as exc:
        raise ModuleNotFoundError(
            f"TIFF compression {compression!r} needs the imagecodecs package, which is not installed: "
            "pip install imagecodecs (zlib, deflate and lzma work without it)",
            name="imagecodecs",
        ) from exc
    return lambda strip: codec(strip, **args)


# -- zarr --


class _ZarrSink(_OneFileSink):
    format = "zarr"

    def __init__(self, output, count, image_shape, compress_level, overwrite, compression, dtype=np.uint8):
        super().__init__(output, count, image_shape, compress_level, overwrite, dtype)
        self.zarr = _extra("zarr", "zarr")
        self.compression = compression
        self.compressors = _zarr_compressors(self.zarr, compression, compress_level)
        height, width, *channels = image_shape
        row_bytes = width * (channels[0] if channels else 1) * self.dtype.itemsize
        self.chunk_rows = height if height * row_bytes <= _ZARR_CHUNK_BYTES else max(1, _ZARR_CHUNK_BYTES // row_bytes)
        self._array = None

    def _create(self) -> None:
        self._temp = self._new_temp(self.directory, folder=True)
        store = self.zarr.storage.LocalStore(self._temp)
        self._array = self.zarr.create_array(
            store=store,
            shape=(self.count, *self.image_shape),
            chunks=(1, self.chunk_rows, *self.image_shape[1:]),
            dtype=self.dtype.name,
            compressors=self.compressors,
            fill_value=0,
            zarr_format=3,
            attributes=_zarr_attributes(self._metadata, self.image_shape),
            # Every chunk is written: zarr's default first tests each chunk for being all fill value, which made
            # uncompressed writes ~8x slower (0.85 s against 0.10 s for 32 chunks of 4 MiB), and an all-zero image
            # is then a file like any other.
            config={"write_empty_chunks": True},
        )

    def _write(self, index, levels) -> None:
        self._array[index] = levels

    def _open_rows(self, index) -> RowWriter:
        def emit(start: int, rows: np.ndarray) -> None:
            self._array[index, start : start + len(rows)] = rows

        return _BufferedRows(self, self.chunk_rows, emit)

    def _finish(self) -> None:
        self._array = None

    def _close_quietly(self) -> None:
        self._array = None

    def _recorded(self, final: str):
        array = self.zarr.open_array(self.zarr.storage.LocalStore(final, read_only=True), mode="r")
        if tuple(array.shape) != (self.count, *self.image_shape) or np.dtype(array.dtype) != self.dtype:
            return None
        return array.attrs["fastquant"]


def _zarr_compressors(zarr, compression: str | None, level: int):
    if compression is None:
        return None
    codecs = zarr.codecs
    if compression == "zstd":
        return codecs.ZstdCodec(level=level)
    if compression == "gzip":
        return _timeless_gzip_codec(codecs.GzipCodec)(level=level)
    return codecs.BloscCodec(cname="zstd", clevel=level, shuffle="noshuffle")


@functools.cache  # one class per zarr codec class, not one per sink
def _timeless_gzip_codec(gzip_codec: type) -> type:
    """zarr's gzip codec, writing 0 where numcodecs writes the clock: the gzip header's MTIME field (RFC 1952).
    Outputs carry no timestamps, so the same input and options give the same bytes. It is stored as the standard
    ``"gzip"`` codec, which any zarr reader decodes."""
    import gzip

    from numcodecs import GZip  # a dependency of zarr

    class TimelessGZip(GZip):
        def encode(self, buf):
            return gzip.compress(np.ascontiguousarray(buf).reshape(-1).view(np.uint8), self.level, mtime=0)

    class TimelessGzipCodec(gzip_codec):
        @functools.cached_property
        def _gzip_codec(self):
            return TimelessGZip(self.level)

    return TimelessGzipCodec


def _zarr_attributes(metadata: dict, image_shape: tuple[int, ...]) -> dict:
    """``{"fastquant": metadata}`` (the float limits used, per group), plus OME-NGFF ``omero.channels[].window``
    for viewers. The window is in stored-value units, so it spans the levels 0..255: the float limits it stands
    for are those in ``fastquant.limits``."""
    channels = image_shape[2] if len(image_shape) == 3 else 1
    window = {"start": 0, "end": 255, "min": 0, "max": 255}
    return {
        "fastquant": metadata,
        "omero": {"channels": [{"active": True, "window": dict(window)} for _ in range(channels)]},
    }


# -- npy --


class _NpySink(_OneFileSink):
    format = "npy"

    def __init__(self, output, count, image_shape, compress_level, overwrite, dtype=np.uint8):
        super().__init__(output, count, image_shape, compress_level, overwrite, dtype)
        self.sidecar = output + ".json"
        self._file = None

    def _create(self) -> None:
        self._temp = self._new_temp(self.directory)
        self._file = _open_temp(self._temp)
        header = {"descr": self.dtype.str, "fortran_order": False, "shape": (self.count, *self.image_shape)}
        np.lib.format.write_array_header_1_0(self._file, header)  # what numpy.save and open_memmap write
        self._crc = 0

    def _append(self, levels: np.ndarray) -> None:
        data = np.ascontiguousarray(levels).data
        self._file.write(data)
        self._crc = zlib.crc32(data, self._crc)

    def _write(self, index, levels) -> None:
        self._append(levels)

    def _open_rows(self, index) -> RowWriter:
        def emit(start: int, rows: np.ndarray) -> None:
            self._append(rows)

        return _BufferedRows(self, None, emit)  # appended as they come

    def _finish(self) -> None:
        self._file.close()
        self._file = None

    def _close_quietly(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None

    def _before_move(self) -> None:
        # The sidecar, with the CRC-32 of the new data, goes into place first: a crash between the two renames
        # leaves the new sidecar beside no .npy (resume: missing) or beside an older .npy (its CRC differs:
        # different), never an .npy that reads as complete under metadata it was not made with.
        if os.path.lexists(self.output) and not self.overwrite:
            raise FileExistsError(f"{self.output} exists (it appeared during the run); pass overwrite=True")
        temp = self._new_temp(self.directory)
        try:
            with open(temp, "w", encoding="utf-8") as f:
                f.write(_dump({"fastquant": self._metadata, "crc32": self._crc}) + "\n")
            _move_into_place(temp, self.sidecar, True)
        except BaseException:
            self._forget(temp)
            _remove(temp)
            raise
        self._forget(temp)

    def _after_commit(self) -> None:
        pass

    def _recorded(self, final: str):
        from ._inputs import _read_npy_header

        with open(final, "rb") as f:
            shape, fortran, dtype = _read_npy_header(f, repr(final))
            offset = f.tell()
        complete = os.path.getsize(final) == offset + math.prod(shape) * dtype.itemsize
        if tuple(shape) != (self.count, *self.image_shape) or dtype != self.dtype or fortran or not complete:
            return None
        if not os.path.exists(self.sidecar):
            return None
        with open(self.sidecar, encoding="utf-8") as f:
            recorded = json.load(f)
        crc = 0
        with open(final, "rb") as f:
            f.seek(offset)
            while chunk := f.read(1 << 24):
                crc = zlib.crc32(chunk, crc)
        return recorded["fastquant"] if recorded.get("crc32") == crc else None


# --------------------------------------------------------------------------------------------------------------
# making a sink


def make_sink(
    output,
    *,
    format: str | None,
    count: int,
    image_shape: tuple[int, ...],
    name: str = "{stem}_{index:04d}.png",
    stem: str = "image",
    compress_level: int = 1,
    compression: str | None = None,
    overwrite: bool = False,
    dtype=np.uint8,
    palette: np.ndarray | None = None,
    transparent: int | None = None,
) -> Sink:
    """Check the output options and return the sink that will write them. Nothing is created or deleted on disk
    except the output directory of PNG slices (and missing parent directories).

    Parameters
    ----------
    output : str or os.PathLike
        A directory for PNG slices, or the TIFF, zarr or npy path.
    format : {"png", "tiff", "zarr", "npy"} or None
        None: from `output`: ``.zarr`` or an existing zarr store → zarr; another existing directory or a path
        without extension → PNG slices; ``.tif``/``.tiff`` → TIFF; ``.npy`` → npy.
    count : int
        The number of images N (>= 1).
    image_shape : tuple of int
        ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``.
    name : str
        PNG file name template with the fields ``stem`` and ``index``; each name must be a plain file name.
    stem : str
        The value of ``{stem}``.
    compress_level : int
        0-9: the PNG deflate level, and the level of the zlib/deflate/zstd (TIFF) or zstd/gzip/blosc (zarr) codec.
    compression : str or None
        TIFF: ``"zlib"``, ``"deflate"``, ``"lzw"``, ``"lzma"`` or ``"zstd"``; zarr: ``"zstd"``, ``"gzip"`` or
        ``"blosc"``; None: uncompressed. PNG and npy take None only.
    overwrite : bool
        Whether :meth:`Sink.commit` may replace existing outputs. Without it, the caller decides what to do about
        existing names with :meth:`Sink.status`.
    dtype : uint8 or uint16
        The samples (16-bit PNG, TIFF, zarr or npy for uint16).
    palette, transparent : (K, 3) uint8 and int, optional
        PNG only: (H, W) uint8 images are label indexes, written as palette PNGs (``transparent``: the index
        made transparent). Other formats store the indexes.

    Raises
    ------
    ValueError, TypeError
        A bad option, named in the message with what is accepted.
    ImportError
        tifffile or zarr is missing (the message names the extra), or imagecodecs for lzw/zstd TIFF.
    """
    if not isinstance(output, (str, os.PathLike)):
        raise TypeError(f"output must be a str or os.PathLike, got {type(output).__name__}")
    output = os.fspath(output)
    fmt = _output_format(output, format)
    count = _check_count(count)
    image_shape = _check_image_shape(image_shape)
    if isinstance(compress_level, bool) or not isinstance(compress_level, (int, np.integer)):
        raise TypeError(f"compress_level={compress_level!r} must be an int in 0-9")
    if not 0 <= compress_level <= 9:
        raise ValueError(f"compress_level={compress_level!r} is outside 0-9")
    compress_level = int(compress_level)
    compression = _check_compression(fmt, compression)
    overwrite = bool(overwrite)

    if fmt == "png":
        if os.path.lexists(output) and not os.path.isdir(output):
            raise ValueError(f"output {output!r} exists and is not a directory; PNG slices are written into one")
        names = _png_names(output, name, stem, count)
        os.makedirs(output, exist_ok=True)
        sink = _PngSink(output, count, image_shape, compress_level, overwrite, names, dtype)
        sink.palette, sink.transparent = palette, transparent
        return sink
    if fmt != "zarr" and os.path.isdir(output):
        raise ValueError(f"output {output!r} is a directory; a {fmt} output is a file (pass a file path)")
    if fmt == "tiff":
        sink: Sink = _TiffSink(output, count, image_shape, compress_level, overwrite, compression, dtype)
    elif fmt == "zarr":
        sink = _ZarrSink(output, count, image_shape, compress_level, overwrite, compression, dtype)
    else:
        sink = _NpySink(output, count, image_shape, compress_level, overwrite, dtype)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    return sink


def _output_format(output: str, format) -> str:
    if format is not None:
        if not isinstance(format, str) or format.lower() not in FORMATS:
            raise ValueError(f"format={format!r} is not supported; accepted: {', '.join(map(repr, FORMATS))} or None")
        return format.lower()
    ext = os.path.splitext(os.path.normpath(output))[1].lower()
    if ext == ".zarr" or any(os.path.exists(os.path.join(output, m)) for m in ("zarr.json", ".zarray", ".zgroup")):
        return "zarr"  # an existing zarr store too, whatever its name
    if os.path.isdir(output):
        return "png"
    if not ext:
        return "png"
    fmt = _EXTENSION_FORMATS.get(ext)
    if fmt is None:
        raise ValueError(f"output {output!r} has extension {ext!r}; accepted: {ACCEPTED_OUTPUTS}")
    return fmt


def _check_count(count) -> int:
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)):
        raise TypeError(f"count={count!r} must be an int >= 1")
    if count < 1:
        raise ValueError(f"count={count!r}; accepted: at least one image")
    return int(count)


def _check_image_shape(image_shape) -> tuple[int, ...]:
    try:
        shape = tuple(int(n) for n in image_shape)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"image_shape={image_shape!r} must be a tuple of ints; accepted: {ACCEPTED_IMAGE_SHAPES}"
        ) from exc
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (3, 4)) or min(shape[:2], default=0) < 1:
        raise ValueError(f"image_shape={image_shape!r}; accepted: {ACCEPTED_IMAGE_SHAPES}")
    return shape


def _check_compression(fmt: str, compression) -> str | None:
    if compression is None:
        return None
    if not isinstance(compression, str):
        raise TypeError(f"compression={compression!r} must be a codec name (str) or None")
    name = compression.lower()
    accepted = {"tiff": tuple(_TIFF_CODECS), "zarr": _ZARR_CODECS}.get(fmt, ())
    if name not in accepted:
        what = f"one of {', '.join(map(repr, accepted))} or None" if accepted else "None only (PNG has compress_level)"
        if fmt == "npy":
            what = "None only (.npy is uncompressed)"
        raise ValueError(f"compression={compression!r} is not supported for {fmt} output; accepted: {what}")
    return name


def _png_names(output: str, template, stem: str, count: int) -> list[str]:
    """The N file names of the template, each a plain file name, all different; ValueError naming the template."""
    if not isinstance(template, str):
        raise TypeError(f"name={template!r} must be a str such as '{{stem}}_{{index:04d}}.png'")
    accepted = "fields {stem} and {index} only, e.g. '{stem}_{index:04d}.png'"
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"name template {template!r} is malformed ({exc}); accepted: {accepted}") from exc
    for _literal, field, spec, _conversion in parsed:
        if field is None:
            continue
        if field not in _TEMPLATE_FIELDS:
            raise ValueError(f"name template {template!r} has the field {{{field}}}; accepted: {accepted}")
        if spec and ("{" in spec or "}" in spec):
            raise ValueError(f"name template {template!r} has a nested field in {spec!r}; accepted: {accepted}")
    names = []
    seen: dict[str, int] = {}
    for index in range(count):
        try:
            formatted = template.format(stem=stem, index=index)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise ValueError(f"name template {template!r} cannot be formatted ({exc}); accepted: {accepted}") from exc
        separators = [s for s in (os.sep, os.altsep, "/") if s]
        if (
            not formatted
            or formatted in (".", "..")
            or any(s in formatted for s in separators)
            or os.path.isabs(formatted)
            or "\0" in formatted
        ):
            raise ValueError(
                f"name template {template!r} gives {formatted!r} for image {index}: a name template cannot write "
                "outside the output directory; accepted: a plain file name (no path separators, not '.' or '..')"
            )
        if formatted.startswith(TEMP_PREFIX):
            raise ValueError(
                f"name template {template!r} gives {formatted!r}, which looks like fastquant's temporaries "
                f"({TEMP_PREFIX}*); a name template cannot write outside the output directory's own names"
            )
        if formatted in seen:
            raise ValueError(
                f"name template {template!r} gives {formatted!r} for images {seen[formatted]} and {index}; "
                "accepted: a template giving every image its own name (use {index})"
            )
        seen[formatted] = index
        names.append(os.path.join(output, formatted))
    return names


# --------------------------------------------------------------------------------------------------------------
# reading metadata back

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel (3: palette indexes)


def read_metadata(path, *, dataset: str | None = None) -> dict:
    """What a file holds, and the metadata fastquant recorded in it.

    Parameters
    ----------
    path : str or os.PathLike
        Any input :func:`fastquant._inputs.open_input` reads, a PNG, or a directory of PNGs.
    dataset : str, optional
        As for the input: the member, array or dataset inside an ``.npz``, zarr group or HDF5 file.

    Returns
    -------
    dict
        ``format`` (the input kind, or ``"png"``), ``shape`` (list), ``dtype`` (str), ``chunks`` (list or None);
        ``fastquant`` (the recorded metadata) when there is any: a PNG's ``fastquant`` text chunk, a TIFF's first
        ImageDescription, zarr attributes, an ``.npy``'s sidecar ``<path>.json``; ``dataset`` where one was chosen.
        For a directory of PNGs: the first one's (in natural order), plus ``count``.
    """
    from . import _inputs

    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path) and not any(os.path.exists(os.path.join(path, m)) for m in _inputs._ZARR_MARKERS):
        pngs = sorted(
            (e.path for e in os.scandir(path) if e.name.lower().endswith(".png") and not e.name.startswith(".")),
            key=_inputs.natural_key,
        )
        if pngs:
            info = _png_info(pngs[0])
            info["count"] = len(pngs)
            return info
    elif os.path.isfile(path) and _is_png(path):
        return _png_info(path)
    with _inputs.open_input(path, dataset=dataset) as opened:
        info: dict[str, Any] = {
            "format": opened.kind,
            "shape": [int(n) for n in opened.shape],
            "dtype": str(opened.dtype),
            "chunks": None if opened.chunks is None else [int(n) for n in opened.chunks],
        }
        if opened.dataset is not None:
            info["dataset"] = opened.dataset
        recorded = _recorded_in(opened)
    if recorded is not None:
        info["fastquant"] = recorded
    return info


def _recorded_in(opened) -> Any:
    """The metadata fastquant recorded in an opened input, or None."""
    try:
        if opened.kind == "tiff":
            import tifffile

            with tifffile.TiffFile(opened.path) as tif:
                description = tif.pages[0].description
            found = json.loads(description) if description.startswith("{") else None
            return found.get("fastquant") if isinstance(found, dict) else None
        if opened.kind == "zarr":
            return dict(opened.array.attrs).get("fastquant")
        if opened.kind == "npy" and os.path.isfile(opened.path + ".json"):
            with open(opened.path + ".json", encoding="utf-8") as f:
                found = json.load(f)
            return found.get("fastquant") if isinstance(found, dict) else None
    except (ValueError, OSError, AttributeError, IndexError):  # a foreign or damaged description/sidecar
        return None
    return None


def _is_png(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(8) == _PNG_SIGNATURE
    except OSError:
        return False


def _png_info(path: str) -> dict:
    from . import _png

    with open(path, "rb") as f:
        head = f.read(33)
    if len(head) < 29 or head[12:16] != b"IHDR":
        raise ValueError(f"{path!r} is not a valid PNG file: it has no IHDR chunk")
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    bit_depth, color_type = head[24], head[25]
    channels = _PNG_CHANNELS.get(color_type)
    if channels is None:
        raise ValueError(f"{path!r} is not a valid PNG file: colour type {color_type}")
    info: dict[str, Any] = {
        "format": "png",
        "shape": [height, width] if channels == 1 else [height, width, channels],
        "dtype": "uint16" if bit_depth == 16 else "uint8",
        "chunks": None,
    }
    try:
        text = _png.read_text(path).get("fastquant")
        if text is not None:
            info["fastquant"] = json.loads(text)
    except ValueError:  # truncated, or a text chunk that is not fastquant's JSON
        pass
    return info
