"""labels: the fused argmax equals ``reference.labels`` (itself checked against numpy.argmax where no NaN or
threshold is involved), for every layout the kernel reads; and labels are saved as palette or 16-bit PNGs that
independent decoders (Pillow, OpenCV) read back."""

from __future__ import annotations

import numpy as np
import pytest
from support import lower

import fastquant
from fastquant import _colormaps, reference


def _scores(shape, dtype="float32", seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    if x.dtype.kind == "f":
        flat = np.moveaxis(x, 0, -1).reshape(-1, shape[0])
        flat[::7] = np.nan  # all NaN
        flat[3::11, ::2] = np.nan  # some NaN
        flat[5::13] = -np.inf  # ties at -inf
        flat[6::13, 1:] = -np.inf
        flat[2::17, 0] = np.inf
        x = np.moveaxis(flat.reshape(np.moveaxis(x, 0, -1).shape), -1, 0).copy()
    x.reshape(-1)[::19] = x.reshape(-1)[1::19]  # ties between classes
    return x


LAYOUTS = {
    "chw": (lambda x: x, 0),
    "hwc": (lambda x: np.ascontiguousarray(np.moveaxis(x, 0, -1)), -1),
    "nchw": (lambda x: x.reshape(2, x.shape[0], x.shape[1] // 2, x.shape[2]), 1),
    "fortran": (np.asfortranarray, 0),
    "swapped": (lambda x: x.astype(x.dtype.newbyteorder()), 0),
    "strided": (lambda x: x[:, ::2, ::-1], 0),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int16", "uint8", "int64"])
def test_labels_equal_reference(layout, dtype, monkeypatch):
    lower(monkeypatch, numba_min_size=0)  # the kernel, whatever the size
    make, axis = LAYOUTS[layout]
    x = make(_scores((5, 64, 300), dtype))
    for threshold in (None, 0.5):
        got = fastquant.labels(x, channel_axis=axis, threshold=threshold)
        expected = reference.labels(x, channel_axis=axis, threshold=threshold)
        assert got.dtype == np.uint8 and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", ["float32", "float16", "int16", "bool"])
def test_small_numpy_path_equals_reference(layout, dtype):
    make, axis = LAYOUTS[layout]
    x = make(_scores((4, 20, 30), dtype))  # below numba_min_size: the NumPy path
    for threshold in (None, 0.5):
        got = fastquant.labels(x, channel_axis=axis, threshold=threshold)
        np.testing.assert_array_equal(got, reference.labels(x, channel_axis=axis, threshold=threshold))


@pytest.mark.parametrize("classes", [2, 3, 4, 6, 9, 21])
def test_every_class_count(classes, monkeypatch):
    """The kernel sweeps four class planes at a time, then the rest one by one: every remainder."""
    lower(monkeypatch, numba_min_size=0)
    x = _scores((classes, 40, 300))
    for layout in ("chw", "hwc"):
        make, axis = LAYOUTS[layout]
        got = fastquant.labels(make(x), channel_axis=axis, threshold=0.2)
        np.testing.assert_array_equal(got, reference.labels(x, threshold=0.2))


def test_reference_is_numpy_argmax_without_nan():
    x = np.random.default_rng(1).standard_normal((7, 30, 40))
    x[:, ::3] = x[0, ::3]  # ties: lowest class
    np.testing.assert_array_equal(reference.labels(x), np.argmax(x, axis=0))


def test_nan_never_wins_and_ignore(monkeypatch):
    x = np.array([[np.nan, 0.1, np.nan, -np.inf], [0.5, np.nan, np.nan, -np.inf], [0.5, 0.05, np.nan, -np.inf]])
    for size in (0, 1 << 40):
        lower(monkeypatch, numba_min_size=size)  # kernel, then NumPy
        assert fastquant.labels(x).tolist() == [1, 0, 255, 0]
        assert fastquant.labels(x, threshold=0.2, ignore=9).tolist() == [1, 9, 9, 9]


def test_many_classes_are_uint16(monkeypatch):
    lower(monkeypatch, numba_min_size=0)
    x = np.random.default_rng(2).random((300, 20, 30), dtype=np.float32)
    got = fastquant.labels(x)
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, np.argmax(x, axis=0))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"channel_axis": 3}, ValueError, "out of range"),
        ({"channel_axis": 0.5}, TypeError, "must be an int"),
        ({"ignore": 2}, ValueError, "could be a class index"),
        ({"ignore": 256}, ValueError, "does not fit uint8"),
        ({"threshold": np.nan}, ValueError, "finite"),
        ({"threshold": "a"}, TypeError, "real scalar"),
    ],
)
def test_errors(kwargs, error, match):
    x = np.zeros((3, 4, 4), np.float32)
    for impl in (fastquant, reference):
        with pytest.raises(error, match=match):
            impl.labels(x, **kwargs)
    with pytest.raises(ValueError, match="0-d"):
        fastquant.labels(np.float32(1))


def test_palette_png_and_16_bit_png(tmp_path):
    cv2 = pytest.importorskip("cv2")
    from PIL import Image

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 21, (123, 77)).astype(np.uint8)
    labels[:5] = 255
    fastquant.save(tmp_path / "l.png", labels, palette="voc")
    with Image.open(tmp_path / "l.png") as image:
        assert image.mode == "P" and image.info["transparency"] == 255
        np.testing.assert_array_equal(np.asarray(image), labels)
        palette = np.array(image.getpalette()).reshape(-1, 3)
        np.testing.assert_array_equal(palette[:256], _colormaps.voc_palette())
        rgba = np.asarray(image.convert("RGBA"))
    assert (rgba[:5, :, 3] == 0).all() and (rgba[5:, :, 3] == 255).all()
    np.testing.assert_array_equal(rgba[5:, :, :3], _colormaps.voc_palette()[labels[5:]])
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    fastquant.save(tmp_path / "c.png", labels % 3, palette=colours)  # 3 colours: no transparent index
    decoded = cv2.imread(str(tmp_path / "c.png"), cv2.IMREAD_COLOR)[..., ::-1]
    np.testing.assert_array_equal(decoded, colours[labels % 3])
    with pytest.raises(ValueError, match="beyond the palette"):
        fastquant.save(tmp_path / "bad.png", labels, palette=colours)
    with pytest.raises(ValueError, match="not a palette index"):
        fastquant.save(tmp_path / "bad.png", labels % 3, palette=colours, ignore=3)
    assert not (tmp_path / "bad.png").exists()
    wide = rng.integers(0, 65535, (50, 60)).astype(np.uint16)
    fastquant.save(tmp_path / "w.png", wide, palette="voc")
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "w.png"), cv2.IMREAD_UNCHANGED), wide)
    with pytest.raises(ValueError, match="accepted: \\(H, W\\) uint8"):
        fastquant.save(tmp_path / "f.png", wide.astype(np.float32), palette="voc")
