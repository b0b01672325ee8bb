"""fastquant's own PNG writer: 8-bit grey, grey+alpha, RGB and RGBA, filtered by rows and deflated by ISA-L.

Layout of a file: signature, IHDR, one uncompressed iTXt chunk per ``text`` entry, IDAT chunks, IEND.

Filter. Every row gets filter type 2 (Up: each byte minus the byte above it; zeros above the first row). Measured
on issue 7's benchmark data (2048² prediction maps, a smooth field plus noise) at ISA-L level 1, against Pillow's
``compress_level=1`` (zlib level 1, adaptive filter per row): None 1.21×, Sub 0.92×, Up 0.94×, Average 0.90×,
Paeth 0.95× Pillow's bytes, all at the same encoding speed; but Pillow and OpenCV decode Up files 1.4× faster than
Average and Sub ones and 1.9× faster than Paeth ones (Up's reconstruction has no dependency along the row). So Up:
the fastest to write and to read, and already smaller than Pillow's files.

Filtering runs in bands of about :data:`_BAND_BYTES` filtered bytes, each compressed right after it is filtered,
while it is still in cache; a band's filtered rows are one reused ``(h, 1 + row bytes)`` buffer, and the last raw
row of a band is kept for the Up filter of the next band's first row. Images of at least
``fastquant._plan.current().numba_min_size`` samples (H·W·C bytes of levels, the element count ``to_uint8``
uses for its own choice) are filtered by a Numba kernel (:mod:`fastquant._kernels.png`, imported only then),
smaller ones by NumPy, byte for byte the same: a one-shot save of a small image never imports numba.

Compression. ``compress_level`` 0 is zlib's stored level; 1-3 are ISA-L's levels 1-3 (``isal.isal_zlib``,
imported when first used), or zlib's where ``isal`` is not installed; 4-9 are zlib's (:func:`deflate_backend`).
The compressor's output is buffered and written as IDAT chunks of at least :data:`_IDAT_TARGET` bytes (the last
one may be smaller) and at most :data:`_IDAT_MAX`, so a streamed image never holds more than about one chunk of
compressed data, and an image of any size (over 2**31 bytes of filtered data too) is split across IDATs.

Threads. A writer has no shared state: several threads may each write their own file at once. ISA-L's and zlib's
deflate, the CRCs and the Numba filter release the GIL.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import numbers
import os
import struct
import zlib
from types import ModuleType
from typing import BinaryIO

import numpy as np

from . import _plan

SIGNATURE = b"\x89PNG\r\n\x1a\n"

_FILTER_UP = 2  # PNG filter type of every row
_BAND_BYTES = 1 << 18  # filtered bytes per band (L2-resident between the filter and the deflate)
_IDAT_TARGET = 1 << 20  # compressed bytes gathered before an IDAT chunk is written
_IDAT_MAX = (1 << 31) - 1  # the PNG limit on a chunk's length
_MAX_SIDE = (1 << 31) - 1  # the PNG limit on width and height
# ISA-L's history window: 4 KiB, not deflate's largest 32 KiB. On Up-filtered rows ISA-L's level 1 finds
# nothing worth the longer distances: measured against 15 bits, 2048² prediction maps compress 14 % faster
# and 2.5 % smaller (8 slices: 79.1 -> 67.8 ms, 13.42 -> 13.09 MB), viridis RGB 4 % faster and 1.6 %
# smaller, class labels 2.6 % smaller and 6 % slower (10.5 -> 11.1 ms), noise the same. Decoders take any
# window (the zlib header says which).
_ISAL_WINDOW_BITS = 12
_ZLIB_MEM_LEVEL = 9  # as Pillow's PNG encoder (zlib's largest hash: faster and smaller than the default 8)

ACCEPTED_LEVELS = "0-9 (0: stored; 1-3: ISA-L, or zlib without isal; 4-9: zlib)"


@dataclasses.dataclass(frozen=True)
class _PixelFormat:
    """How samples of one pixel are stored: IHDR's bit depth and colour type, and the bytes a pixel takes.

    The one place that knows them; 16-bit and palette images would be more entries (and a PLTE chunk)."""

    channels: int
    color_type: int
    bit_depth: int = 8

    @property
    def bytes_per_pixel(self) -> int:
        return self.channels * self.bit_depth // 8


_FORMAT_BY_CHANNELS = {
    1: _PixelFormat(channels=1, color_type=0),  # grey
    2: _PixelFormat(channels=2, color_type=4),  # grey + alpha
    3: _PixelFormat(channels=3, color_type=2),  # RGB
    4: _PixelFormat(channels=4, color_type=6),  # RGBA
}
ACCEPTED_SHAPES = "(H, W) or (H, W, C) with C in 1..4 (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA), H, W >= 1"


# --- compression -------------------------------------------------------------------------------------------------


def _isal_zlib() -> ModuleType | None:
    """``isal.isal_zlib``, or None where it cannot be imported (imported on each call: a dict lookup once loaded,
    and `import fastquant` never pays for it)."""
    try:
        return importlib.import_module("isal.isal_zlib")
    except ImportError:
        return None


def check_compress_level(compress_level: int) -> int:
    """`compress_level` as an int; TypeError if it is not one (bool included), ValueError outside 0-9."""
    if isinstance(compress_level, (bool, np.bool_)) or not isinstance(compress_level, numbers.Integral):
        raise TypeError(
            f"compress_level must be an int, got {type(compress_level).__name__}; accepted: {ACCEPTED_LEVELS}"
        )
    if not 0 <= compress_level <= 9:
        raise ValueError(f"compress_level={compress_level!r} is not accepted; accepted: {ACCEPTED_LEVELS}")
    return int(compress_level)


def deflate_backend(compress_level: int) -> str:
    """The deflate implementation that `compress_level` uses here: ``"isal"`` or ``"zlib"``.

    Parameters
    ----------
    compress_level : int
        0-9, as in zlib.

    Returns
    -------
    str
        ``"isal"`` for levels 1-3 where ``isal`` can be imported, else ``"zlib"``.

    Raises
    ------
    TypeError
        If `compress_level` is not an int (bool included).
    ValueError
        If it is outside 0-9.
    """
    level = check_compress_level(compress_level)
    return "isal" if 1 <= level <= 3 and _isal_zlib() is not None else "zlib"


def _compressor(level: int):
    """A zlib-format (RFC 1950) compressor object for `level` (already checked), and the CRC-32 function to use."""
    isal_zlib = _isal_zlib()
    # ISA-L's CRC-32 is about 20x zlib 1.2's; both give the same values and release the GIL.
    crc32 = zlib.crc32 if isal_zlib is None else isal_zlib.crc32
    if 1 <= level <= 3 and isal_zlib is not None:
        return isal_zlib.compressobj(level, isal_zlib.DEFLATED, _ISAL_WINDOW_BITS), crc32
    return zlib.compressobj(level, zlib.DEFLATED, 15, _ZLIB_MEM_LEVEL), crc32


# --- chunks ------------------------------------------------------------------------------------------------------


def _write_chunk(file: BinaryIO, kind: bytes, data: bytes, crc32) -> None:
    file.write(struct.pack(">I4s", len(data), kind))
    file.write(data)
    file.write(struct.pack(">I", crc32(data, crc32(kind))))


def _itxt(keyword: str, text: str) -> bytes:
    """An uncompressed iTXt chunk's data: keyword, no language tag or translated keyword, UTF-8 text."""
    return keyword.encode("latin-1") + b"\0\0\0\0\0" + text.encode("utf-8")


def _check_text(text: dict[str, str] | None) -> list[tuple[str, str]]:
    if text is None:
        return []
    if not isinstance(text, dict):
        raise TypeError(f"text must be a dict of str to str, got {type(text).__name__}")
    entries = []
    for keyword, value in text.items():
        if not isinstance(keyword, str) or not isinstance(value, str):
            raise TypeError(f"text must map str to str, got {type(keyword).__name__}: {type(value).__name__}")
        if not 1 <= len(keyword) <= 79:
            raise ValueError(f"text keyword {keyword!r} has {len(keyword)} characters; accepted: 1-79")
        bad = [c for c in keyword if not (" " <= c <= "~" or "\xa1" <= c <= "\xff")]
        if bad:
            raise ValueError(
                f"text keyword {keyword!r} has {bad[0]!r}; "
                "accepted: printable Latin-1 (space to '~', '\\xa1' to '\\xff')"
            )
        if keyword != keyword.strip(" ") or "  " in keyword:
            raise ValueError(f"text keyword {keyword!r}: no leading, trailing or consecutive spaces are accepted")
        if "\0" in value:
            raise ValueError(f"text for {keyword!r} contains a NUL character, which PNG text cannot hold")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"text for {keyword!r} is not encodable as UTF-8: {exc}") from None
        entries.append((keyword, value))
    return entries


def _check_side(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 1 <= value <= _MAX_SIDE:
        raise ValueError(f"{name}={value!r} is not accepted; accepted: 1..2**31-1")
    return int(value)


# --- filters -----------------------------------------------------------------------------------------------------


def _filter_up_numpy(rows: np.ndarray, previous: np.ndarray, out: np.ndarray) -> None:
    """NumPy twin of :func:`fastquant._kernels.png.filter_up` (same arguments, same bytes)."""
    np.subtract(rows[0], previous, out=out[0, 1:])  # uint8 arithmetic wraps modulo 256, as PNG's does
    np.subtract(rows[1:], rows[:-1], out=out[1 : len(rows), 1:])


def _row_filter(samples: int):
    if samples >= max(_plan.current().numba_min_size, 1):
        from ._kernels import png as png_kernels

        return png_kernels.filter_up
    return _filter_up_numpy


# --- the writer --------------------------------------------------------------------------------------------------


class PngStream:
    """Write a PNG band by band: the header at construction, rows with :meth:`write_rows`, the end with :meth:`close`.

    Parameters
    ----------
    file : binary file object
        Destination, with ``write``; written sequentially, never seeked, and not closed.
    height, width : int
        Image size, 1..2**31-1 each.
    channels : int
        1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA); 8 bits per sample.
    compress_level : int, default 1
        0-9 as in zlib: 0 stored, 1-3 ISA-L (zlib where ``isal`` is not installed), 4-9 zlib
        (:func:`deflate_backend`).
    text : dict of str to str, optional
        Written as uncompressed iTXt chunks (UTF-8) before the image data, e.g. ``{"fastquant": json}``. Keywords:
        1-79 printable Latin-1 characters, no leading, trailing or consecutive spaces; texts without NUL.

    Raises
    ------
    TypeError
        For a non-int size, channel count or level (bool included), or `text` that does not map str to str.
    ValueError
        For a size, channel count or level out of range, or an invalid keyword or text. Nothing is written then.

    Notes
    -----
    Used as a context manager, the stream is closed when the block ends without an exception; after an exception
    it is abandoned (no IEND: the partial file does not decode). Streams in different threads run concurrently.
    """

    def __init__(
        self,
        file: BinaryIO,
        height: int,
        width: int,
        channels: int,
        *,
        compress_level: int = 1,
        text: dict[str, str] | None = None,
        bit_depth: int = 8,
        palette: np.ndarray | None = None,
        transparent: int | None = None,
    ):
        height, width = _check_side("height", height), _check_side("width", width)
        if isinstance(channels, (bool, np.bool_)) or not isinstance(channels, numbers.Integral):
            raise TypeError(f"channels must be an int, got {type(channels).__name__}")
        pixel = _FORMAT_BY_CHANNELS.get(int(channels))
        if pixel is None:
            raise ValueError(f"channels={channels!r} is not accepted; accepted: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA")
        if bit_depth not in (8, 16):
            raise ValueError(f"bit_depth={bit_depth!r} is not accepted; accepted: 8 or 16")
        if palette is not None:
            palette = _check_palette(palette, transparent, channels, bit_depth)
            pixel = _PixelFormat(channels=1, color_type=3)
        elif transparent is not None:
            raise ValueError("transparent= needs a palette")
        elif bit_depth == 16:
            pixel = _PixelFormat(channels=pixel.channels, color_type=pixel.color_type, bit_depth=16)
        level = check_compress_level(compress_level)
        entries = _check_text(text)
        self.bit_depth = bit_depth

        self._file = file
        self.height, self.width, self.channels = height, width, pixel.channels
        self._row_bytes = width * pixel.bytes_per_pixel
        self._rows_written = 0
        self._closed = False
        self._compressor, self._crc32 = _compressor(level)
        self._filter = _row_filter(height * width * pixel.channels)
        self._band_rows = min(height, max(1, _BAND_BYTES // (1 + self._row_bytes)))
        self._filtered: np.ndarray | None = None  # (band rows, 1 + row bytes), allocated at the first band
        self._previous = np.zeros(self._row_bytes, np.uint8)  # the raw row above the next one
        self._pending: list[memoryview] = []  # compressor outputs not yet in an IDAT chunk, in order
        self._pending_size = 0

        file.write(SIGNATURE)
        # width, height, bit depth, colour type, compression 0 (deflate), filter method 0, no interlace
        ihdr = struct.pack(">IIBBBBB", width, height, pixel.bit_depth, pixel.color_type, 0, 0, 0)
        _write_chunk(file, b"IHDR", ihdr, self._crc32)
        if palette is not None:
            _write_chunk(file, b"PLTE", palette.tobytes(), self._crc32)
            if transparent is not None:  # alpha of palette entries 0..transparent: only `transparent` is clear
                alpha = np.full(transparent + 1, 255, np.uint8)
                alpha[transparent] = 0
                _write_chunk(file, b"tRNS", alpha.tobytes(), self._crc32)
        for keyword, value in entries:
            _write_chunk(file, b"iTXt", _itxt(keyword, value), self._crc32)

    def write_rows(self, rows: np.ndarray) -> None:
        """Filter, compress and write the next ``h`` rows.

        Parameters
        ----------
        rows : numpy.ndarray
            uint8 of shape ``(h, width, channels)``, or ``(h, width)`` for one channel; any strides, any ``h``
            (0 writes nothing) as long as the rows written stay within `height`.

        Raises
        ------
        TypeError
            If `rows` is not a uint8 array.
        ValueError
            If its shape does not match the stream, if it would exceed `height` rows, or if the stream is closed.
        """
        if self._closed:
            raise ValueError("write_rows on a closed PngStream")
        sample = np.uint16 if self.bit_depth == 16 else np.uint8
        if not isinstance(rows, np.ndarray) or rows.dtype != sample:
            kind = rows.dtype if isinstance(rows, np.ndarray) else type(rows).__name__
            raise TypeError(f"rows must be a {np.dtype(sample)} numpy array, got {kind}")
        grey_2d = rows.ndim == 2 and self.channels == 1 and rows.shape[1] == self.width
        if not (grey_2d or rows.ndim == 3 and rows.shape[1:] == (self.width, self.channels)):
            accepted = f"(h, {self.width}, {self.channels})" + (f" or (h, {self.width})" if self.channels == 1 else "")
            raise ValueError(f"rows has shape {rows.shape}; accepted: {accepted}")
        h = rows.shape[0]
        if self._rows_written + h > self.height:
            raise ValueError(
                f"rows has {h} rows, but only {self.height - self._rows_written} "
                f"of the image's {self.height} rows remain"
            )
        if self._filtered is None and h:
            self._filtered = np.empty((self._band_rows, 1 + self._row_bytes), np.uint8)
            self._filtered[:, 0] = _FILTER_UP
        # The compressor gets whole bands of `_band_rows` image rows (and the rest at the image's end), wherever
        # the caller's bands begin and end: ISA-L's output depends on how its input is split, and the file must
        # not. Rows wait in the filtered buffer until their band is complete.
        start = 0
        while start < h:
            filled = self._rows_written % self._band_rows
            take = min(h - start, self._band_rows - filled)
            # C-contiguous for the kernel (one compiled signature); a copy only for strided input, one band long.
            if self.bit_depth == 16:  # PNG's samples are big-endian; the Up filter works on bytes
                band = np.ascontiguousarray(rows[start : start + take], dtype=">u2").view(np.uint8)
                band = band.reshape(take, self._row_bytes)
            else:
                band = np.ascontiguousarray(rows[start : start + take]).reshape(take, self._row_bytes)
            self._filter(band, self._previous, self._filtered[filled : filled + take])
            self._previous[:] = band[-1]
            start += take
            self._rows_written += take
            filled += take
            if filled == self._band_rows or self._rows_written == self.height:
                self._add(self._compressor.compress(self._filtered[:filled]))

    def close(self) -> None:
        """Write the rest of the compressed data and IEND (a second call does nothing; the file stays open).

        Raises
        ------
        ValueError
            If fewer rows than `height` were written; the stream is then abandoned without IEND.
        """
        if self._closed:
            return
        self._closed = True
        if self._rows_written != self.height:
            raise ValueError(f"{self._rows_written} of the image's {self.height} rows were written")
        self._add(self._compressor.flush(), final=True)
        _write_chunk(self._file, b"IEND", b"", self._crc32)

    def __enter__(self) -> PngStream:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._closed = True

    def _add(self, compressed: bytes, final: bool = False) -> None:
        """Keep a compressor output; write IDAT chunks once there are enough (all that is left if `final`)."""
        if compressed:
            self._pending.append(memoryview(compressed))
            self._pending_size += len(compressed)
        if self._pending_size >= _IDAT_TARGET or (final and self._pending_size):
            self._write_idats()

    def _write_idats(self) -> None:
        # The outputs are written as they are, a chunk's CRC accumulated over them: gathering them into one buffer
        # first would copy every compressed byte once more, with the GIL held.
        file, crc32, pieces = self._file, self._crc32, self._pending
        while self._pending_size:
            size = min(self._pending_size, _IDAT_MAX)
            file.write(struct.pack(">I4s", size, b"IDAT"))
            crc, left = crc32(b"IDAT"), size
            while left:
                piece = pieces[0]
                if len(piece) > left:
                    piece, pieces[0] = piece[:left], piece[left:]
                else:
                    pieces.pop(0)
                file.write(piece)
                crc = crc32(piece, crc)
                left -= len(piece)
            file.write(struct.pack(">I", crc))
            self._pending_size -= size


def _check_palette(palette, transparent, channels: int, bit_depth: int) -> np.ndarray:
    """A palette image's PLTE entries: (K, 3) uint8, 1 <= K <= 256; `transparent` an index below K."""
    if channels != 1 or bit_depth != 8:
        raise ValueError("a palette image has one 8-bit channel of indexes; accepted: channels=1, bit_depth=8")
    palette = np.asarray(palette)
    if palette.dtype != np.uint8 or palette.ndim != 2 or palette.shape[1] != 3 or not 1 <= palette.shape[0] <= 256:
        raise ValueError(f"palette of shape {palette.shape}, dtype {palette.dtype}; accepted: (K, 3) uint8, K <= 256")
    if transparent is not None and not (isinstance(transparent, numbers.Integral) and 0 <= transparent < len(palette)):
        raise ValueError(f"transparent={transparent!r} is not a palette index; accepted: 0..{len(palette) - 1}")
    return np.ascontiguousarray(palette)


def _check_levels(levels: np.ndarray) -> None:
    if not isinstance(levels, np.ndarray):
        raise TypeError(f"levels must be a uint8 numpy array, got {type(levels).__name__}")
    if levels.dtype != np.uint8:
        raise TypeError(f"levels must be a uint8 numpy array, got {levels.dtype}")
    if not (levels.ndim == 2 or levels.ndim == 3 and levels.shape[2] in _FORMAT_BY_CHANNELS):
        raise ValueError(f"levels has shape {levels.shape}; accepted: {ACCEPTED_SHAPES}")
    if levels.shape[0] == 0 or levels.shape[1] == 0:
        raise ValueError(f"levels has shape {levels.shape}, an empty image; accepted: {ACCEPTED_SHAPES}")


def write_png(
    file: BinaryIO, levels: np.ndarray, *, compress_level: int = 1, text: dict[str, str] | None = None
) -> None:
    """Write `levels` to `file` as an 8-bit PNG.

    Parameters
    ----------
    file : binary file object
        Destination, with ``write``; written sequentially from its current position, and not closed.
    levels : numpy.ndarray
        uint8 of shape ``(H, W)`` or ``(H, W, C)``, C = 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA); any
        strides; ``H, W >= 1``.
    compress_level : int, default 1
        0-9 as in zlib: 0 stored, 1-3 ISA-L (zlib where ``isal`` is not installed), 4-9 zlib.
    text : dict of str to str, optional
        Uncompressed iTXt chunks written before the image data (see :class:`PngStream`).

    Raises
    ------
    TypeError
        If `levels` is not a uint8 array, or for a non-int level or non-str text.
    ValueError
        For a shape that is not accepted (named in the message), an empty side, a level outside 0-9 or an invalid
        text keyword. All checks run before anything is written.
    """
    _check_levels(levels)
    height, width = levels.shape[:2]
    channels = levels.shape[2] if levels.ndim == 3 else 1
    with PngStream(file, height, width, channels, compress_level=compress_level, text=text) as stream:
        stream.write_rows(levels)


def write_indexed_png(
    file: BinaryIO,
    indexes: np.ndarray,
    palette: np.ndarray,
    *,
    transparent: int | None = None,
    compress_level: int = 1,
    text: dict[str, str] | None = None,
) -> None:
    """Write (H, W) uint8 `indexes` as a palette ('P') PNG: PLTE from `palette` ((K, 3) uint8), and with
    `transparent` a tRNS chunk making that one index fully transparent. Indexes of K or more are a ValueError."""
    if not isinstance(indexes, np.ndarray) or indexes.dtype != np.uint8 or indexes.ndim != 2 or 0 in indexes.shape:
        raise ValueError("indexes must be a non-empty (H, W) uint8 array")
    palette = _check_palette(palette, transparent, 1, 8)
    if int(indexes.max()) >= len(palette):
        raise ValueError(f"indexes go up to {int(indexes.max())}, beyond the palette's {len(palette)} colours")
    height, width = indexes.shape
    with PngStream(
        file, height, width, 1, compress_level=compress_level, text=text, palette=palette, transparent=transparent
    ) as stream:
        stream.write_rows(indexes)


def write_png16(file: BinaryIO, samples: np.ndarray, *, compress_level: int = 1, text=None) -> None:
    """Write uint16 samples, (H, W) or (H, W, C) with C in 1..4, as a 16-bit PNG (grey, grey+alpha, RGB, RGBA)."""
    if not isinstance(samples, np.ndarray) or samples.dtype != np.uint16:
        raise TypeError("samples must be a uint16 numpy array")
    if not (samples.ndim == 2 or samples.ndim == 3 and samples.shape[2] in _FORMAT_BY_CHANNELS) or 0 in samples.shape:
        raise ValueError(f"samples has shape {samples.shape}; accepted: {ACCEPTED_SHAPES}")
    channels = samples.shape[2] if samples.ndim == 3 else 1
    with PngStream(
        file, samples.shape[0], samples.shape[1], channels, compress_level=compress_level, text=text, bit_depth=16
    ) as stream:
        stream.write_rows(samples)


def encode_png(levels: np.ndarray, *, compress_level: int = 1, text: dict[str, str] | None = None) -> bytes:
    """The bytes :func:`write_png` writes for these arguments."""
    buffer = io.BytesIO()
    write_png(buffer, levels, compress_level=compress_level, text=text)
    return buffer.getvalue()


# --- reading text back -------------------------------------------------------------------------------------------


def _read_exactly(file: BinaryIO, size: int) -> bytes:
    data = file.read(size)
    if len(data) != size:
        raise ValueError("truncated PNG: the file ends inside a chunk")
    return data


def _skip(file: BinaryIO, size: int) -> None:
    """Move past `size` bytes without keeping them (image data can be gigabytes)."""
    if file.seekable():
        file.seek(size, os.SEEK_CUR)
        return
    while size:
        size -= len(_read_exactly(file, min(size, 1 << 20)))


def _decode_text(kind: bytes, data: bytes) -> tuple[str, str]:
    keyword, sep, rest = data.partition(b"\0")
    if not sep:
        raise ValueError(f"malformed {kind.decode()} chunk: no NUL after the keyword")
    if kind == b"tEXt":
        return keyword.decode("latin-1"), rest.decode("latin-1")
    if kind == b"zTXt":
        return keyword.decode("latin-1"), zlib.decompress(rest[1:]).decode("latin-1")
    compressed = rest[:1] == b"\1"
    _language, _, rest = rest[2:].partition(b"\0")
    _translated, _, value = rest.partition(b"\0")
    return keyword.decode("latin-1"), (zlib.decompress(value) if compressed else value).decode("utf-8")


def read_text(file_or_path: str | os.PathLike[str] | BinaryIO) -> dict[str, str]:
    """The text chunks (tEXt, zTXt and iTXt) of a PNG, as ``{keyword: text}``.

    Parameters
    ----------
    file_or_path : str, os.PathLike or binary file object
        The PNG; a file object is read from its current position (the signature). Image data is skipped, not read,
        where the file can seek.

    Returns
    -------
    dict of str to str
        In file order; of repeated keywords, the last one.

    Raises
    ------
    ValueError
        If it is not a PNG, is truncated, or a text chunk is malformed or fails its CRC.
    """
    if isinstance(file_or_path, (str, os.PathLike)):
        with open(file_or_path, "rb") as file:
            return read_text(file)
    file = file_or_path
    if file.read(len(SIGNATURE)) != SIGNATURE:
        raise ValueError("not a PNG file: the signature does not match")
    texts = {}
    while True:
        length, kind = struct.unpack(">I4s", _read_exactly(file, 8))
        if kind == b"IEND":
            return texts
        if kind not in (b"tEXt", b"zTXt", b"iTXt"):
            _skip(file, length + 4)
            continue
        data = _read_exactly(file, length)
        (crc,) = struct.unpack(">I", _read_exactly(file, 4))
        if zlib.crc32(data, zlib.crc32(kind)) != crc:
            raise ValueError(f"{kind.decode()} chunk fails its CRC")
        keyword, value = _decode_text(kind, data)
        texts[keyword] = value
