"""fastquant.save: round trips (read back by Pillow), option routing, and every error case."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import fastquant
import fastquant._api
import fastquant._png
from fastquant import reference

H, W = 37, 53  # odd, non-square: catches transposed or padded rows


def _data(shape, seed=0):
    """Standard-normal data, a different scale and offset per channel, with a few NaN and ±inf."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    if len(shape) == 3:
        x = x * np.arange(1, shape[2] + 1, dtype=np.float32) * 3 + np.arange(shape[2])
    x.reshape(-1)[rng.choice(x.size, 5, replace=False)] = [np.nan, np.nan, np.inf, -np.inf, np.nan]
    return x


def _read(path_or_file) -> tuple[str, np.ndarray]:
    with Image.open(path_or_file) as im:
        return im.mode, np.asarray(im)


def _expected(x, **options) -> np.ndarray:
    levels = reference.to_uint8(x, **options)
    return levels[..., 0] if levels.ndim == 3 and levels.shape[2] == 1 else levels


ROUND_TRIPS = [
    pytest.param((H, W), "L", {}, id="2d-nominal"),
    pytest.param((H, W), "L", {"percentiles": (5, 95), "nan": 7}, id="2d-percentiles"),
    pytest.param((H, W), "L", {"vmin": -1.5}, id="2d-vmin-only"),
    pytest.param((H, W, 1), "L", {"percentiles": (1, 99)}, id="hw1-percentiles"),
    pytest.param((H, W, 3), "RGB", {"percentiles": (5, 95), "axis": (0, 1)}, id="rgb-per-channel"),
    pytest.param((H, W, 3), "RGB", {"percentiles": (5, 95)}, id="rgb-shared"),
    pytest.param((H, W, 3), "RGB", {"vmin": -2, "vmax": 2, "nan": 255}, id="rgb-fixed"),
    pytest.param((H, W, 4), "RGBA", {"percentiles": (5, 95), "axis": (0, 1)}, id="rgba-per-channel"),
]


@pytest.mark.parametrize("method", ["exact", "approx"])
@pytest.mark.parametrize("shape, mode, options", ROUND_TRIPS)
def test_png_round_trip(tmp_path, shape, mode, options, method, path):
    """On both internal paths of to_uint8 (the `path` fixture forces each)."""
    x = _data(shape)
    x_before = x.copy()
    target = tmp_path / "out.png"
    fastquant.save(target, x, method=method, **options)

    got_mode, pixels = _read(target)
    assert got_mode == mode
    assert pixels.shape == (H, W) + ((shape[2],) if mode != "L" else ())
    expected = _expected(x, **options)
    if method == "exact":
        np.testing.assert_array_equal(pixels, expected)
    else:
        # the approximate mode is within one grey level of the spec, and is what to_uint8 returns
        assert np.max(np.abs(pixels.astype(int) - expected)) <= 1
        np.testing.assert_array_equal(pixels, _expected_fast(x, method=method, **options))
    np.testing.assert_array_equal(x, x_before)  # input not modified


def _expected_fast(x, **options):
    levels = fastquant.to_uint8(x, **options)
    return levels[..., 0] if levels.ndim == 3 and levels.shape[2] == 1 else levels


def test_options_reach_to_uint8(tmp_path):
    # Per-channel and shared limits give different images here (channels have different scales),
    # so a dropped `axis` or `percentiles` cannot go unnoticed by the round trips above.
    x = _data((H, W, 3))
    fastquant.save(tmp_path / "per.png", x, percentiles=(5, 95), axis=(0, 1), method="exact")
    fastquant.save(tmp_path / "shared.png", x, percentiles=(5, 95), method="exact")
    fastquant.save(tmp_path / "nominal.png", x, method="exact")
    per, shared, nominal = (_read(tmp_path / f"{n}.png")[1] for n in ("per", "shared", "nominal"))
    assert not np.array_equal(per, shared)
    assert not np.array_equal(shared, nominal)


@pytest.mark.parametrize(
    "x",
    [
        pytest.param(np.random.default_rng(1).random((H, W)) > 0.5, id="bool"),
        pytest.param(np.random.default_rng(2).integers(-(2**15), 2**15, (H, W), np.int16), id="int16"),
        pytest.param(np.random.default_rng(3).random((H, W, 3)).astype(">f8"), id="big-endian"),
        pytest.param(
            np.random.default_rng(4).random((W, H, 3), np.float32).transpose(1, 0, 2),
            id="transposed",
        ),
        pytest.param(np.random.default_rng(5).random((H, W), np.float32)[::-1, ::-1], id="negative-strides"),
    ],
)
def test_dtypes_and_layouts(tmp_path, x):
    fastquant.save(tmp_path / "a.png", x, method="exact")
    _, pixels = _read(tmp_path / "a.png")
    np.testing.assert_array_equal(pixels, reference.to_uint8(x))


def test_nested_list(tmp_path):
    x = [[0.0, 0.25, 0.5], [0.75, 1.0, np.nan]]
    fastquant.save(tmp_path / "a.png", x, nan=9)
    np.testing.assert_array_equal(_read(tmp_path / "a.png")[1], [[0, 64, 128], [191, 255, 9]])


def test_out_option_goes_to_to_uint8(tmp_path):
    x = _data((H, W, 3))
    out = np.zeros((H, W, 3), np.uint8)
    fastquant.save(tmp_path / "a.png", x, percentiles=(5, 95), method="exact", out=out)
    expected = reference.to_uint8(x, percentiles=(5, 95))
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(_read(tmp_path / "a.png")[1], expected)


@pytest.mark.parametrize("suffix", [".tif", ".tiff"])
@pytest.mark.parametrize("shape, mode", [((H, W), "L"), ((H, W, 3), "RGB"), ((H, W, 4), "RGBA")])
def test_tiff_round_trip(tmp_path, suffix, shape, mode):
    x = _data(shape)
    path = tmp_path / f"out{suffix}"
    fastquant.save(path, x, percentiles=(5, 95), axis=(0, 1), method="exact")
    with Image.open(path) as im:
        assert im.format == "TIFF"
        assert im.mode == mode
        pixels = np.asarray(im)
    np.testing.assert_array_equal(pixels, _expected(x, percentiles=(5, 95), axis=(0, 1)))


def test_tiff_compression_passes_through(tmp_path):
    x = _data((H, W, 3))
    fastquant.save(tmp_path / "a.tif", x, compression="tiff_lzw", percentiles=(5, 95), method="exact")
    with Image.open(tmp_path / "a.tif") as im:
        assert im.info["compression"] == "tiff_lzw"
        np.testing.assert_array_equal(np.asarray(im), reference.to_uint8(x, percentiles=(5, 95)))


def test_compress_level_changes_size_not_pixels(tmp_path):
    # smooth data compresses well, so levels 0 and 9 differ a lot in size
    x = np.add.outer(np.linspace(0, 1, 200), np.linspace(0, 1, 300)) / 2
    fastquant.save(tmp_path / "fast.png", x, compress_level=0)
    fastquant.save(tmp_path / "small.png", x, compress_level=9)
    assert (tmp_path / "fast.png").stat().st_size > 2 * (tmp_path / "small.png").stat().st_size
    np.testing.assert_array_equal(_read(tmp_path / "fast.png")[1], _read(tmp_path / "small.png")[1])
    np.testing.assert_array_equal(_read(tmp_path / "fast.png")[1], reference.to_uint8(x))


def test_bytesio_with_format():
    x = _data((H, W, 3))
    buffer = io.BytesIO()
    fastquant.save(buffer, x, format="PNG", percentiles=(5, 95), axis=(0, 1), method="exact")
    assert buffer.getvalue().startswith(b"\x89PNG\r\n\x1a\n")
    buffer.seek(0)
    mode, pixels = _read(buffer)
    assert mode == "RGB"
    np.testing.assert_array_equal(pixels, reference.to_uint8(x, percentiles=(5, 95), axis=(0, 1)))


def test_lowercase_format_and_format_overrides_extension(tmp_path):
    x = _data((H, W))
    fastquant.save(tmp_path / "no_extension", x, format="png", vmin=-1, vmax=1)
    fastquant.save(tmp_path / "named.tif", x, format="PNG", vmin=-1, vmax=1)
    for name in ("no_extension", "named.tif"):
        with Image.open(tmp_path / name) as im:
            assert im.format == "PNG"
            np.testing.assert_array_equal(np.asarray(im), reference.to_uint8(x, vmin=-1, vmax=1))


def test_named_file_object_takes_format_from_its_name(tmp_path):
    x = _data((H, W))
    with open(tmp_path / "a.tiff", "wb") as f:
        fastquant.save(f, x, vmin=-1, vmax=1)
    with Image.open(tmp_path / "a.tiff") as im:
        assert im.format == "TIFF"
        np.testing.assert_array_equal(np.asarray(im), reference.to_uint8(x, vmin=-1, vmax=1))


def test_jpeg_grey_and_rgb_are_written(tmp_path):
    # lossy, but a format that holds L and RGB: written, right mode and size
    for shape, mode in (((H, W), "L"), ((H, W, 3), "RGB")):
        fastquant.save(tmp_path / "a.jpg", _data(shape), quality=95)
        with Image.open(tmp_path / "a.jpg") as im:
            assert (im.format, im.mode, im.size) == ("JPEG", mode, (W, H))


# ------------------------------------------------------------------------------------------------
# errors: each is raised before the destination is opened, and before any conversion


@pytest.fixture
def no_conversion(monkeypatch):
    """Fail the test if save() converts anything (errors must come first)."""

    def forbidden(*args, **kwargs):
        raise AssertionError("to_uint8 was called before the error was detected")

    monkeypatch.setattr(fastquant._api, "to_uint8", forbidden)


BAD_SHAPES = [(H, W, 2), (H, W, 5), (H,), (2, H, W, 3), (), (0, W), (H, 0, 3)]


@pytest.mark.parametrize("shape", BAD_SHAPES, ids=str)
def test_bad_shape(tmp_path, shape, no_conversion):
    path = tmp_path / "a.png"
    with pytest.raises(ValueError, match=r"accepted: .*\(H, W, 3\)|accepted: H >= 1 and W >= 1") as info:
        fastquant.save(path, np.zeros(shape, np.float32))
    assert str(shape) in str(info.value)
    assert not path.exists()


def test_bad_shape_message_lists_every_accepted_shape(tmp_path):
    with pytest.raises(ValueError) as info:
        fastquant.save(tmp_path / "a.png", np.zeros((4, 4, 2)))
    for accepted in ("(H, W)", "(H, W, 1)", "'L'", "(H, W, 3)", "'RGB'", "(H, W, 4)", "'RGBA'"):
        assert accepted in str(info.value)


FORMAT_ERRORS = [
    pytest.param("a.jpg", (H, W, 4), {}, "JPEG", id="rgba-as-jpeg"),
    pytest.param("a.jpeg", (H, W, 4), {}, "JPEG", id="rgba-as-jpeg-long-ext"),
    pytest.param("a.png", (H, W, 4), {"format": "JPEG"}, "JPEG", id="rgba-format-jpeg"),
    pytest.param("a.gif", (H, W, 3), {}, "GIF", id="rgb-as-gif-palette"),
    pytest.param("a.bmp", (H, W, 4), {}, "BMP", id="rgba-as-bmp-alpha-lost"),
    pytest.param("a.ppm", (H, W, 4), {}, "PPM", id="rgba-as-ppm-alpha-lost"),
    pytest.param("a.xbm", (H, W), {}, "XBM", id="grey-as-xbm"),
    pytest.param("a.psd", (H, W), {}, "PSD", id="read-only-extension"),
    pytest.param("a.png", (H, W), {"format": "PSD"}, "PSD", id="read-only-format"),
    pytest.param("a.png", (H, W), {"format": "NOPE"}, "NOPE", id="unknown-format"),
    pytest.param("a.xyz", (H, W), {}, r"\.xyz", id="unknown-extension"),
    pytest.param("a", (H, W), {}, "format=", id="no-extension"),
]


@pytest.mark.parametrize("name, shape, options, match", FORMAT_ERRORS)
def test_format_errors_leave_no_file(tmp_path, name, shape, options, match, no_conversion):
    path = tmp_path / name
    with pytest.raises(ValueError, match=match):
        fastquant.save(path, np.zeros(shape, np.float32), **options)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, shape, options, match", FORMAT_ERRORS[:3])
def test_errors_leave_an_existing_file_untouched(tmp_path, name, shape, options, match, no_conversion):
    path = tmp_path / name
    path.write_bytes(b"previous content")
    with pytest.raises(ValueError, match=match):
        fastquant.save(path, np.zeros(shape, np.float32), **options)
    assert path.read_bytes() == b"previous content"


def test_bad_shape_leaves_an_existing_file_untouched(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"previous content")
    with pytest.raises(ValueError, match="accepted"):
        fastquant.save(path, np.zeros((H, W, 2)))
    assert path.read_bytes() == b"previous content"


def test_invalid_conversion_option_leaves_no_file(tmp_path):
    path = tmp_path / "a.png"
    with pytest.raises(ValueError, match="percentiles"):
        fastquant.save(path, _data((H, W)), percentiles=(95, 5))
    with pytest.raises(ValueError, match="nan"):
        fastquant.save(path, _data((H, W)), nan=256)
    with pytest.raises(TypeError):
        fastquant.save(path, np.zeros((H, W), complex))
    assert not path.exists()


def test_pillow_writer_failure_removes_new_file(tmp_path):
    # Errors inside Pillow's writer come after the file is opened; Pillow removes a file it created.
    path = tmp_path / "a.jpg"
    with pytest.raises(ValueError, match="quality"):
        fastquant.save(path, _data((H, W)), quality="bogus")
    assert not path.exists()


def test_png_writer_failure_removes_new_file(tmp_path, monkeypatch):
    # An error while fastquant's PNG writer writes (disk full, say) comes after the file is opened
    # and the header written; the file the call created is removed, as Pillow does for its formats.
    def fail(self, rows):
        raise OSError("no space left on device")

    monkeypatch.setattr(fastquant._png.PngStream, "write_rows", fail)
    path = tmp_path / "a.png"
    with pytest.raises(OSError, match="no space"):
        fastquant.save(path, _data((H, W)))
    assert not path.exists()


def test_png_is_written_by_fastquant():
    x = _data((H, W, 3))
    buffer = io.BytesIO()
    fastquant.save(buffer, x, format="PNG", percentiles=(5, 95), compress_level=4)
    assert buffer.getvalue() == fastquant._png.encode_png(fastquant.to_uint8(x, percentiles=(5, 95)), compress_level=4)


def test_png_default_compress_level_is_1():
    x = _data((H, W))
    buffer = io.BytesIO()
    fastquant.save(buffer, x, format="PNG")
    assert buffer.getvalue() == fastquant._png.encode_png(fastquant.to_uint8(x), compress_level=1)


@pytest.mark.parametrize(
    "options, error, match",
    [
        pytest.param({"compress_level": 99}, ValueError, r"compress_level=99 .*0-9", id="level-99"),
        pytest.param({"compress_level": -1}, ValueError, r"compress_level=-1 .*0-9", id="level-negative"),
        pytest.param({"compress_level": "1"}, TypeError, "compress_level", id="level-str"),
        pytest.param({"compress_level": True}, TypeError, "compress_level", id="level-bool"),
        pytest.param({"optimize": True}, ValueError, r"'optimize'.*accepted for PNG: .*compress_level", id="optimize"),
        pytest.param({"dpi": (72, 72), "pnginfo": None}, ValueError, r"'dpi', 'pnginfo'", id="two-pillow-options"),
    ],
)
def test_png_options_are_checked_before_the_file(tmp_path, options, error, match, no_conversion):
    # fastquant's PNG writer takes compress_level only; Pillow's other PNG options are refused rather than
    # silently ignored, and every check runs before the destination is opened.
    path = tmp_path / "a.png"
    path.write_bytes(b"previous content")
    with pytest.raises(error, match=match):
        fastquant.save(path, _data((H, W)), **options)
    assert path.read_bytes() == b"previous content"
    with pytest.raises(error, match=match):
        fastquant.save(tmp_path / "new.png", _data((H, W)), **options)
    assert not (tmp_path / "new.png").exists()


def test_file_object_without_format(no_conversion):
    with pytest.raises(ValueError, match="format="):
        fastquant.save(io.BytesIO(), np.zeros((H, W)))


def test_text_file_object(tmp_path, no_conversion):
    with open(tmp_path / "a.png", "w") as f, pytest.raises(TypeError, match="binary"):
        fastquant.save(f, np.zeros((H, W)))
    assert (tmp_path / "a.png").read_bytes() == b""


@pytest.mark.parametrize("path", [123, None, ["a.png"]])
def test_bad_path_type(path, no_conversion):
    with pytest.raises(TypeError, match="path must be"):
        fastquant.save(path, np.zeros((H, W)))


def test_bad_format_type(tmp_path, no_conversion):
    with pytest.raises(TypeError, match="format"):
        fastquant.save(tmp_path / "a.png", np.zeros((H, W)), format=3)
    assert not (tmp_path / "a.png").exists()


def test_import_fastquant_does_not_import_pillow():
    # PIL.Image costs 20-30 ms; `import fastquant` has an 80 ms budget and save() imports it lazily
    code = "import sys, fastquant; print([m for m in sys.modules if m.split('.')[0] == 'PIL'])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
