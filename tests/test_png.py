"""fastquant's PNG writer (fastquant._png): every file decodes, through Pillow and OpenCV, to exactly its levels.

Files are also walked chunk by chunk here, independently of the writer (signature, lengths, CRCs, order, IHDR, the
filter byte of every row), and the two filter implementations (NumPy for small images, Numba for large ones) are
forced in turn and must give the same bytes.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

import fastquant
import fastquant._plan
from fastquant import _png

COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}
NEVER = sys.maxsize  # a numba_min_size no image reaches


# --- an independent reader ---------------------------------------------------------------------------------------


def walk_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, data) chunks of a PNG, checking the signature, every length and CRC, and the chunk order."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        assert length < 2**31
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind}"
        chunks.append((kind, body))
        pos += 12 + length
    assert pos == len(data)
    kinds = [kind for kind, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and chunks[-1][1] == b""
    idats = [i for i, kind in enumerate(kinds) if kind == b"IDAT"]
    assert idats and idats == list(range(idats[0], idats[-1] + 1)), "IDAT chunks must be consecutive"
    assert set(kinds[1 : idats[0]]) <= {b"iTXt"} and idats[-1] == len(kinds) - 2
    return chunks


def check_structure(data: bytes, levels: np.ndarray) -> None:
    """IHDR describes `levels`; the image data inflates to one Up-filtered row per image row."""
    chunks = walk_chunks(data)
    height, width = levels.shape[:2]
    channels = levels.shape[2] if levels.ndim == 3 else 1
    assert chunks[0][1] == struct.pack(">IIBBBBB", width, height, 8, COLOR_TYPES[channels], 0, 0, 0)
    filtered = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    rows = np.frombuffer(filtered, np.uint8).reshape(height, 1 + width * channels)
    assert (rows[:, 0] == 2).all()
    # Up filter undone: each row is the running sum (mod 256) of the filtered rows above it
    unfiltered = np.cumsum(rows[:, 1:], axis=0, dtype=np.uint64).astype(np.uint8)
    np.testing.assert_array_equal(unfiltered, levels.reshape(height, -1))


def pillow_pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def opencv_pixels(path, channels: int) -> np.ndarray:
    """The image as OpenCV reads it, back in our channel order (it gives BGR/BGRA; grey+alpha as BGRA)."""
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert pixels is not None, "OpenCV could not read the file"
    if channels == 2:
        assert pixels.shape[2] == 4 and (pixels[..., :3] == pixels[..., :1]).all()  # grey in B, G and R
        return pixels[..., [0, 3]]
    if channels == 3:
        return pixels[..., ::-1]
    if channels == 4:
        return pixels[..., [2, 1, 0, 3]]
    return pixels


def check_decodes(data: bytes, levels: np.ndarray, tmp_path) -> None:
    """Pillow and OpenCV both read `data` as exactly `levels` (Pillow verifies the CRCs as it loads)."""
    check_structure(data, levels)
    path = tmp_path / "check.png"
    path.write_bytes(data)
    channels = levels.shape[2] if levels.ndim == 3 else 1
    expected = levels[..., 0] if channels == 1 and levels.ndim == 3 else levels
    np.testing.assert_array_equal(pillow_pixels(path), expected)
    np.testing.assert_array_equal(opencv_pixels(path, channels), expected)


def encode_both_paths(levels: np.ndarray, **options) -> bytes:
    """The file, which the NumPy and the Numba filter must write byte for byte the same."""
    with fastquant._plan.tuning(numba_min_size=NEVER):
        by_numpy = _png.encode_png(levels, **options)
    with fastquant._plan.tuning(numba_min_size=0):
        by_numba = _png.encode_png(levels, **options)
    assert by_numpy == by_numba
    return by_numba


# --- images ------------------------------------------------------------------------------------------------------


def make_levels(shape, content: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if content == "constant":
        return np.full(shape, 173, np.uint8)
    if content == "noise":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    # smooth gradient, a different direction per channel, wrapping through 255 -> 0 on the way
    h, w = shape[:2]
    channels = shape[2] if len(shape) == 3 else 1
    yy, xx = np.mgrid[0:h, 0:w]
    planes = [(3 * yy + (c + 1) * xx + 40 * c) % 256 for c in range(channels)]
    return np.stack(planes, axis=-1).reshape(shape).astype(np.uint8)


SIDES = [(1, 1), (1, 37), (29, 1), (5, 3), (11, 7), (13, 9), (17, 1023)]
CHANNELS = [None, 1, 2, 3, 4]  # None: a 2-D (H, W) array


@pytest.mark.parametrize("content", ["constant", "noise", "gradient"])
@pytest.mark.parametrize("channels", CHANNELS, ids=lambda c: "2d" if c is None else f"c{c}")
@pytest.mark.parametrize("side", SIDES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_round_trip(tmp_path, side, channels, content):
    shape = side if channels is None else side + (channels,)
    levels = make_levels(shape, content)
    check_decodes(encode_both_paths(levels), levels, tmp_path)


@pytest.mark.parametrize("level", range(10))
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_every_compress_level(tmp_path, level, channels):
    levels = make_levels((33, 47, channels), "gradient") ^ make_levels((33, 47, channels), "noise") & 3
    data = encode_both_paths(levels, compress_level=level)
    check_decodes(data, levels, tmp_path)
    if level == 0:  # stored: at least one byte per sample and per row
        assert len(data) > 33 * (1 + 47 * channels)


def test_compression_levels_compress():
    levels = make_levels((64, 200, 3), "gradient")
    sizes = [len(_png.encode_png(levels, compress_level=level)) for level in (0, 1, 9)]
    assert sizes[0] > 4 * sizes[1] and sizes[1] >= sizes[2]


def test_deflate_backends():
    assert _png.deflate_backend(0) == "zlib"  # stored, as zlib writes it
    assert [_png.deflate_backend(level) for level in (1, 2, 3)] == ["isal"] * 3  # isal is a dependency
    assert [_png.deflate_backend(level) for level in range(4, 10)] == ["zlib"] * 6
    assert _png.deflate_backend(np.int64(2)) == "isal"


def test_isal_levels_use_a_4_kib_window():
    # the zlib header (RFC 1950) of the IDAT stream: CINFO, the window's log2 minus 8, in the high nibble
    levels = make_levels((40, 70), "gradient")
    for level, window_bits in ((1, 12), (3, 12), (6, 15)):
        chunks = dict(walk_chunks(_png.encode_png(levels, compress_level=level)))
        assert (chunks[b"IDAT"][0] >> 4) + 8 == window_bits


@pytest.fixture
def without_isal(monkeypatch):
    """Make `isal` unimportable, as on a platform without a wheel for it."""
    monkeypatch.setitem(sys.modules, "isal", None)
    monkeypatch.setitem(sys.modules, "isal.isal_zlib", None)


def test_zlib_fallback_without_isal(tmp_path, without_isal):
    assert [_png.deflate_backend(level) for level in range(10)] == ["zlib"] * 10
    levels = make_levels((40, 61, 3), "noise") // 16 + make_levels((40, 61, 3), "gradient")
    for level in (1, 2, 3):
        data = encode_both_paths(levels, compress_level=level, text={"fastquant": "{}"})
        check_decodes(data, levels, tmp_path)
        assert _png.read_text(io.BytesIO(data)) == {"fastquant": "{}"}


# --- streaming ---------------------------------------------------------------------------------------------------


def stream(levels: np.ndarray, band_heights, **options) -> bytes:
    height, width = levels.shape[:2]
    channels = levels.shape[2] if levels.ndim == 3 else 1
    buffer = io.BytesIO()
    png = _png.PngStream(buffer, height, width, channels, **options)
    start = 0
    for h in band_heights:
        png.write_rows(levels[start : start + h])
        start += h
    png.close()
    return buffer.getvalue()


def band_partition(height: int, band: int) -> list[int]:
    return [band] * (height // band) + ([height % band] if height % band else [])


@pytest.mark.parametrize("band", [1, 7, 50], ids=lambda b: f"bands-of-{b}")
@pytest.mark.parametrize("shape", [(50, 23), (50, 23, 1), (50, 23, 2), (50, 9, 3), (50, 31, 4)], ids=str)
@pytest.mark.parametrize("filter_path", ["numpy", "numba"])
def test_streamed_bands_give_the_same_file(tmp_path, shape, band, filter_path):
    levels = make_levels(shape, "gradient") ^ (make_levels(shape, "noise") & 7)
    options = {"compress_level": 2, "text": {"fastquant": '{"slice": 3}'}}
    with fastquant._plan.tuning(numba_min_size=NEVER if filter_path == "numpy" else 0):
        whole = _png.encode_png(levels, **options)
        assert stream(levels, band_partition(50, band), **options) == whole
    check_decodes(whole, levels, tmp_path)


def test_irregular_bands_and_empty_bands():
    rng = np.random.default_rng(3)
    levels = make_levels((97, 45, 3), "noise")
    heights = [0, 5, 0, 1, 30, 2, 0, 40, 19]
    assert sum(heights) == 97
    for _ in range(3):
        assert stream(levels, heights) == _png.encode_png(levels)
        rng.shuffle(heights)


def test_bands_of_a_strided_source():
    # bands cut from a transposed, reversed, channel-sliced array: the rows a converter gets from a volume
    volume = make_levels((31, 40, 5), "noise")
    levels = volume.transpose(1, 0, 2)[::-1, :, 1:4]
    expected = _png.encode_png(np.ascontiguousarray(levels))
    assert stream(levels, [3, 17, 20]) == expected
    assert _png.encode_png(levels) == expected


@pytest.mark.parametrize("band_bytes", [1, 64, 1000])
def test_internal_bands(tmp_path, monkeypatch, band_bytes):
    # the writer filters and compresses in bands of about _BAND_BYTES; the first row of each band is filtered
    # against the last row of the previous one
    monkeypatch.setattr(_png, "_BAND_BYTES", band_bytes)
    levels = make_levels((61, 20, 2), "gradient") ^ (make_levels((61, 20, 2), "noise") & 1)
    data = encode_both_paths(levels)
    check_decodes(data, levels, tmp_path)
    assert stream(levels, [13, 48]) == data


@pytest.mark.parametrize(
    "layout",
    [
        pytest.param(lambda a: a, id="c-contiguous"),
        pytest.param(lambda a: a.transpose(1, 0, 2), id="transposed"),
        pytest.param(lambda a: a[::-1, ::-2], id="negative-strides"),
        pytest.param(lambda a: a[:, 3:40], id="column-crop"),
        pytest.param(lambda a: np.asfortranarray(a), id="fortran"),
        pytest.param(lambda a: a[..., :3], id="channel-slice"),
        pytest.param(lambda a: a[..., 2], id="one-channel"),
    ],
)
def test_any_strides(tmp_path, layout):
    levels = layout(make_levels((48, 48, 4), "noise"))
    levels.flags.writeable = False  # read-only input is fine too
    data = encode_both_paths(levels)
    assert data == _png.encode_png(np.ascontiguousarray(levels))
    check_decodes(data, levels, tmp_path)


# --- IDAT chunks -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target, limit", [(100, 64), (10**9, 50), (1, 1), (64, 1000)])
def test_idat_splitting(tmp_path, monkeypatch, target, limit):
    # Small stand-ins for the 1 MiB gathering target and the 2**31 - 1 chunk limit: compressor outputs are both
    # merged into chunks and split across them, and the chunks still make one zlib stream.
    monkeypatch.setattr(_png, "_IDAT_TARGET", target)
    monkeypatch.setattr(_png, "_IDAT_MAX", limit)
    monkeypatch.setattr(_png, "_BAND_BYTES", 300)
    levels = make_levels((40, 70, 3), "noise")
    data = encode_both_paths(levels, compress_level=1)
    sizes = [len(body) for kind, body in walk_chunks(data) if kind == b"IDAT"]
    assert max(sizes) <= limit
    assert len(sizes) >= sum(sizes) / limit
    check_decodes(data, levels, tmp_path)
    assert stream(levels, [1, 39]) == data


def test_small_outputs_are_merged():
    # about 1 MiB of compressed noise: a few IDAT chunks, each but the last at least _IDAT_TARGET long
    levels = make_levels((1024, 1200), "noise")
    sizes = [len(body) for kind, body in walk_chunks(_png.encode_png(levels)) if kind == b"IDAT"]
    assert len(sizes) <= 3
    assert all(size >= _png._IDAT_TARGET for size in sizes[:-1])


class VerifyingSink:
    """A write-only file that checks a PNG as it arrives (CRCs, chunk limit, each row against `expected_rows`)
    without keeping it: for images too large to hold twice."""

    def __init__(self, row_bytes: int, expected_rows):
        self.buffer, self.signature_seen = bytearray(), False
        self.inflate = zlib.decompressobj()
        self.row_bytes, self.expected_rows, self.rows = row_bytes, expected_rows, 0
        self.filtered = bytearray()
        self.idat_bytes = 0
        self.previous = np.zeros(row_bytes, np.uint8)
        self.ended = False

    def write(self, data) -> int:
        self.buffer += data
        if not self.signature_seen and len(self.buffer) >= 8:
            assert self.buffer[:8] == _png.SIGNATURE
            del self.buffer[:8]
            self.signature_seen = True
        while self.signature_seen and len(self.buffer) >= 12:
            length, kind = struct.unpack(">I4s", self.buffer[:8])
            assert length < 2**31
            if len(self.buffer) < 12 + length:
                break
            body = bytes(self.buffer[8 : 8 + length])
            assert zlib.crc32(kind + body) == struct.unpack(">I", self.buffer[8 + length : 12 + length])[0]
            del self.buffer[: 12 + length]
            if kind == b"IDAT":
                self.idat_bytes += length
                self._rows(self.inflate.decompress(body))
            self.ended = kind == b"IEND"
        return len(data)

    def _rows(self, data: bytes) -> None:
        self.filtered += data
        n = 1 + self.row_bytes
        complete = len(self.filtered) // n
        if not complete:
            return
        rows = np.frombuffer(self.filtered, np.uint8, complete * n).reshape(complete, n)
        assert (rows[:, 0] == 2).all()
        raw = self.expected_rows(self.rows, complete)
        assert np.array_equal(rows[:, 1:], raw - np.concatenate([self.previous[None], raw[:-1]]))  # Up, mod 256
        self.previous, self.rows = raw[-1].copy(), self.rows + complete
        del rows  # releases the buffer's export, so that it can shrink
        del self.filtered[: complete * n]


def test_over_2_31_bytes_of_image_data():
    # Stored (level 0), so the IDAT data itself exceeds 2**31 bytes: 32769 rows of 65536 grey pixels, written in
    # bands, checked as they arrive (about 10 s, little memory).
    height, width = 32769, 65536
    assert height * (1 + width) > 2**31

    columns = (np.arange(width) % 251).astype(np.uint8)

    def rows(start: int, count: int) -> np.ndarray:
        return (np.arange(start, start + count) * 7 % 256).astype(np.uint8)[:, None] + columns  # wraps mod 256

    sink = VerifyingSink(width, rows)
    png = _png.PngStream(sink, height, width, 1, compress_level=0)
    for start in range(0, height, 1000):
        png.write_rows(rows(start, min(1000, height - start)))
    png.close()
    assert sink.ended and sink.rows == height and sink.idat_bytes > 2**31


# --- text --------------------------------------------------------------------------------------------------------


def test_text_chunks(tmp_path):
    record = json.dumps({"vmin": [0.1, 0.2], "percentiles": [5, 95], "source": "vol.zarr", "note": "µ ✓ 𝛼"})
    text = {"fastquant": record, "Comment": "ünïcödé ✓", "Title": "", "Latin ÿ keyword": "x", "k" * 79: "long"}
    levels = make_levels((9, 11, 3), "gradient")
    data = encode_both_paths(levels, text=text)
    check_decodes(data, levels, tmp_path)

    chunks = walk_chunks(data)
    itxt = [body for kind, body in chunks if kind == b"iTXt"]
    assert len(itxt) == len(text)
    assert [kind for kind, _ in chunks].index(b"iTXt") < [kind for kind, _ in chunks].index(b"IDAT")
    assert all(body.split(b"\0", 1)[1][:2] == b"\0\0" for body in itxt)  # uncompressed

    path = tmp_path / "text.png"
    path.write_bytes(data)
    assert _png.read_text(path) == text
    assert _png.read_text(str(path)) == text
    assert _png.read_text(io.BytesIO(data)) == text
    with Image.open(path) as im:
        assert im.text == text
    assert json.loads(_png.read_text(path)["fastquant"]) == json.loads(record)


def test_read_text_of_pillow_files(tmp_path):
    # tEXt, zTXt and compressed iTXt, as another writer makes them
    info = PngImagePlugin.PngInfo()
    info.add_text("plain", "latin-1 é")
    info.add_text("zipped", "z" * 500, zip=True)
    info.add_itxt("international", "ünïcödé ✓" * 50, lang="de", tkey="Übersetzt", zip=True)
    path = tmp_path / "pillow.png"
    Image.new("L", (3, 2)).save(path, pnginfo=info)
    assert _png.read_text(path) == {"plain": "latin-1 é", "zipped": "z" * 500, "international": "ünïcödé ✓" * 50}


class Unseekable(io.RawIOBase):
    def __init__(self, data: bytes):
        self.inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self.inner.readinto(buffer)


def test_read_text_unseekable_and_after_the_image(monkeypatch):
    monkeypatch.setattr(_png, "_IDAT_MAX", 1000)  # several IDAT chunks to skip
    data = _png.encode_png(make_levels((60, 60), "noise"), text={"a": "1"})
    # a text chunk after the image data is valid PNG too
    extra = b"zTXt"
    body = b"late\0\0" + zlib.compress(b"after")
    late = struct.pack(">I", len(body)) + extra + body + struct.pack(">I", zlib.crc32(extra + body))
    data = data[:-12] + late + data[-12:]
    assert _png.read_text(io.BufferedReader(Unseekable(data))) == {"a": "1", "late": "after"}
    assert _png.read_text(io.BytesIO(data)) == {"a": "1", "late": "after"}


def test_read_text_errors():
    data = _png.encode_png(np.zeros((2, 2), np.uint8), text={"key": "value"})
    with pytest.raises(ValueError, match="not a PNG"):
        _png.read_text(io.BytesIO(b"GIF89a" + data))
    with pytest.raises(ValueError, match="truncated"):
        _png.read_text(io.BytesIO(data[:-6]))
    at = data.index(b"value")
    with pytest.raises(ValueError, match="CRC"):
        _png.read_text(io.BytesIO(data[:at] + b"VALUE" + data[at + 5 :]))


@pytest.mark.parametrize(
    "text, error, match",
    [
        pytest.param({"": "x"}, ValueError, "1-79", id="empty-keyword"),
        pytest.param({"k" * 80: "x"}, ValueError, "1-79", id="long-keyword"),
        pytest.param({" lead": "x"}, ValueError, "leading", id="leading-space"),
        pytest.param({"trail ": "x"}, ValueError, "trailing", id="trailing-space"),
        pytest.param({"dou  ble": "x"}, ValueError, "consecutive", id="double-space"),
        pytest.param({"tab\there": "x"}, ValueError, "Latin-1", id="control-character"),
        pytest.param({"del\x7f": "x"}, ValueError, "Latin-1", id="delete"),
        pytest.param({"nbsp\xa0": "x"}, ValueError, "Latin-1", id="no-break-space"),
        pytest.param({"euro €": "x"}, ValueError, "Latin-1", id="not-latin-1"),
        pytest.param({"k": "a\0b"}, ValueError, "NUL", id="nul-in-text"),
        pytest.param({"k": "\ud800"}, ValueError, "UTF-8", id="lone-surrogate"),
        pytest.param({1: "x"}, TypeError, "str", id="int-keyword"),
        pytest.param({"k": b"x"}, TypeError, "str", id="bytes-text"),
        pytest.param([("k", "x")], TypeError, "dict", id="not-a-dict"),
    ],
)
def test_bad_text(text, error, match):
    buffer = io.BytesIO()
    with pytest.raises(error, match=match):
        _png.write_png(buffer, np.zeros((2, 2), np.uint8), text=text)
    with pytest.raises(error, match=match):
        _png.PngStream(buffer, 2, 2, 1, text=text)
    assert buffer.getvalue() == b""  # nothing written


# --- errors ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "levels",
    [
        pytest.param(np.zeros((4, 4), np.float32), id="float32"),
        pytest.param(np.zeros((4, 4), np.int8), id="int8"),
        pytest.param(np.zeros((4, 4), np.uint16), id="uint16"),
        pytest.param(np.zeros((4, 4), bool), id="bool"),
        pytest.param([[0, 1], [2, 3]], id="list"),
    ],
)
def test_wrong_type(levels):
    buffer = io.BytesIO()
    with pytest.raises(TypeError, match="uint8"):
        _png.write_png(buffer, levels)
    assert buffer.getvalue() == b""


@pytest.mark.parametrize("shape", [(5,), (), (2, 3, 5), (2, 3, 0), (2, 3, 4, 1), (0, 5), (5, 0, 3), (0, 0)], ids=str)
def test_wrong_shape(shape):
    buffer = io.BytesIO()
    with pytest.raises(ValueError, match="accepted: .*C in 1..4") as info:
        _png.write_png(buffer, np.zeros(shape, np.uint8))
    assert str(shape) in str(info.value)
    assert buffer.getvalue() == b""


@pytest.mark.parametrize(
    "level, error",
    [(10, ValueError), (-1, ValueError), (True, TypeError), (1.0, TypeError), ("1", TypeError), (None, TypeError)],
)
def test_bad_compress_level(level, error):
    buffer = io.BytesIO()
    with pytest.raises(error, match="compress_level") as info:
        _png.write_png(buffer, np.zeros((2, 2), np.uint8), compress_level=level)
    assert "0-9" in str(info.value)
    with pytest.raises(error, match="compress_level"):
        _png.deflate_backend(level)
    with pytest.raises(error, match="compress_level"):
        _png.PngStream(buffer, 2, 2, 1, compress_level=level)
    assert buffer.getvalue() == b""


@pytest.mark.parametrize(
    "args, error, match",
    [
        pytest.param((0, 4, 1), ValueError, "height=0", id="no-rows"),
        pytest.param((4, 0, 1), ValueError, "width=0", id="no-columns"),
        pytest.param((4, 2**31, 1), ValueError, "width", id="too-wide"),
        pytest.param((4, 4, 0), ValueError, "channels=0", id="no-channels"),
        pytest.param((4, 4, 5), ValueError, "channels=5", id="five-channels"),
        pytest.param((4.0, 4, 1), TypeError, "height", id="float-height"),
        pytest.param((4, True, 1), TypeError, "width", id="bool-width"),
        pytest.param((4, 4, "3"), TypeError, "channels", id="str-channels"),
    ],
)
def test_bad_stream(args, error, match):
    buffer = io.BytesIO()
    with pytest.raises(error, match=match):
        _png.PngStream(buffer, *args)
    assert buffer.getvalue() == b""


def test_bad_rows():
    png = _png.PngStream(io.BytesIO(), 4, 5, 3)
    with pytest.raises(TypeError, match="uint8"):
        png.write_rows(np.zeros((1, 5, 3), np.float64))
    for shape in [(1, 5), (1, 6, 3), (1, 5, 4), (5, 3), (1, 1, 5, 3)]:
        with pytest.raises(ValueError, match=r"accepted: \(h, 5, 3\)") as info:
            png.write_rows(np.zeros(shape, np.uint8))
        assert str(shape) in str(info.value)
    png.write_rows(np.zeros((3, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="only 1 of the image's 4 rows remain"):
        png.write_rows(np.zeros((2, 5, 3), np.uint8))
    grey = _png.PngStream(io.BytesIO(), 4, 5, 1)
    with pytest.raises(ValueError, match=r"accepted: \(h, 5, 1\) or \(h, 5\)"):
        grey.write_rows(np.zeros((1, 4), np.uint8))


def test_close():
    buffer = io.BytesIO()
    png = _png.PngStream(buffer, 4, 5, 1)
    png.write_rows(np.zeros((3, 5), np.uint8))
    with pytest.raises(ValueError, match="3 of the image's 4 rows"):
        png.close()
    assert not buffer.getvalue().endswith(struct.pack(">I4sI", 0, b"IEND", zlib.crc32(b"IEND")))
    png.close()  # the stream is finished: nothing more happens
    with pytest.raises(ValueError, match="closed"):
        png.write_rows(np.zeros((1, 5), np.uint8))

    buffer = io.BytesIO()
    with _png.PngStream(buffer, 1, 1, 1) as png:
        png.write_rows(np.zeros((1, 1), np.uint8))
    assert buffer.getvalue() == _png.encode_png(np.zeros((1, 1), np.uint8))
    png.close()  # closing twice writes nothing more
    assert buffer.getvalue() == _png.encode_png(np.zeros((1, 1), np.uint8))

    buffer = io.BytesIO()
    with pytest.raises(KeyError), _png.PngStream(buffer, 2, 1, 1) as png:
        raise KeyError("abandoned")  # no complaint about missing rows, no IEND
    assert b"IEND" not in buffer.getvalue()


# --- threads, paths, cold start ----------------------------------------------------------------------------------


@pytest.mark.parametrize("filter_path", ["numpy", "numba"])
def test_threads_give_the_serial_bytes(filter_path):
    images = [make_levels((70 + i, 50, 1 + i % 4), "noise", seed=i) // (1 + i) for i in range(8)]
    with fastquant._plan.tuning(numba_min_size=NEVER if filter_path == "numpy" else 0):
        serial = [_png.encode_png(image, compress_level=1 + i % 5) for i, image in enumerate(images)]
        with ThreadPoolExecutor(4) as pool:
            threaded = list(pool.map(lambda i: _png.encode_png(images[i], compress_level=1 + i % 5), range(8)))
    assert threaded == serial


def test_filter_path_follows_the_image_size():
    threshold = fastquant._plan.current().numba_min_size
    side = int(threshold**0.5)
    assert side * side == threshold  # 2**20 samples: a 1024² grey image
    assert _png.PngStream(io.BytesIO(), side, side - 1, 1)._filter is _png._filter_up_numpy
    assert _png.PngStream(io.BytesIO(), side, side, 1)._filter is not _png._filter_up_numpy
    assert _png.PngStream(io.BytesIO(), side, side // 2, 2)._filter is not _png._filter_up_numpy


def run_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_import_fastquant_loads_no_numba_isal_or_tqdm():
    code = "import sys, fastquant; print(sorted({m.split('.')[0] for m in sys.modules} & {'numba', 'isal', 'tqdm'}))"
    assert run_python(code) == "[]"


def test_one_shot_png_save_loads_neither_numba_nor_pillow(tmp_path):
    # a 512² map saved as PNG in a fresh process: filtered by NumPy, compressed by isal, no Pillow involved
    path = tmp_path / "map.png"
    code = (
        "import sys, numpy as np, fastquant\n"
        "x = np.random.default_rng(0).standard_normal((512, 512), dtype=np.float32)\n"
        f"fastquant.save({str(path)!r}, x, percentiles=(5, 95))\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'numba', 'PIL', 'isal'}))"
    )
    assert run_python(code) == "['isal']"
    x = np.random.default_rng(0).standard_normal((512, 512), dtype=np.float32)
    np.testing.assert_array_equal(pillow_pixels(path), fastquant.to_uint8(x, percentiles=(5, 95)))
