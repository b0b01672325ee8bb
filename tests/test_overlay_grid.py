"""overlay, grid and the glasbey palette.

- overlay and grid equal ``reference.overlay`` / ``reference.grid`` bit for bit on both dispatch paths (NumPy, and the
  Numba blend kernels / the engine forced with ``numba_min_size=0``), for gray and RGB images, labels with ignore,
  float maps with NaN, per-tile and shared limits, colour grids, N×C×H×W; the reference itself is checked against
  values computed by hand from the rules.
- the glasbey palette: 256 distinct colours, more distinct than VOC's first 32 in CIELAB, reproduced by
  ``tools/make_glasbey.py``, and written by ``save(palette="glasbey")`` as the PNG's PLTE.
"""

from __future__ import annotations

import importlib.util
import math
import pathlib

import numpy as np
import pytest
from support import lower

import fastquant
from fastquant import _colormaps, reference

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _rng(seed=0):
    return np.random.default_rng(seed)


def _image(shape, seed=0):
    return _rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _map(shape, dtype="float32", seed=1):
    x = _rng(seed).standard_normal(shape).astype(dtype)
    x[::5, ::3] = np.nan
    x[1::7, ::4] = np.inf
    return x


def _labels(shape, classes=21, dtype=np.uint8, ignore=255, seed=2):
    labels = _rng(seed).integers(0, classes, shape).astype(dtype)
    if ignore is not None:
        labels[::4, 1::3] = ignore
    return labels


# --- glasbey -------------------------------------------------------------------------------------------------


def _lab(rgb):
    """CIELAB of sRGB bytes (D65), written out independently of tools/make_glasbey.py."""
    c = np.asarray(rgb, dtype=np.float64) / 255
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array(
        [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
    )
    xyz = lin @ m.T / m.sum(axis=1)
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz * (29 / 6) ** 2 / 3 + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def _min_distance(colours):
    lab = _lab(colours)
    d = np.sqrt(((lab[:, None] - lab[None]) ** 2).sum(-1))
    return d[np.triu_indices(len(lab), 1)].min()


def test_glasbey_palette():
    table = _colormaps.palette_table("glasbey")
    assert table.dtype == np.uint8 and table.shape == (256, 3)
    assert len(np.unique(table, axis=0)) == 256
    assert table[0].tolist() == [0, 0, 0]  # the documented first colour
    assert _min_distance(table[:32]) > _min_distance(_colormaps.voc_palette()[:32])
    np.testing.assert_array_equal(_colormaps.colour_table("glasbey"), table)
    table[1] = 7  # a copy: the stored table is unchanged
    assert _colormaps.palette_table("glasbey")[1].tolist() != [7, 7, 7]
    with pytest.raises(ValueError, match="no matplotlib counterpart"):
        _colormaps.colour_table("glasbey", "matplotlib")
    with pytest.raises(ValueError, match="'voc', 'glasbey'"):
        _colormaps.palette_table("tab20")
    assert "glasbey" in _colormaps.SHIPPED and "glasbey" in _colormaps.ACCEPTED_CMAPS


def test_glasbey_is_what_the_generator_makes():
    spec = importlib.util.spec_from_file_location("make_glasbey", ROOT / "tools" / "make_glasbey.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    np.testing.assert_array_equal(module.glasbey(), _colormaps.palette_table("glasbey"))
    np.testing.assert_allclose(module.srgb_to_lab(np.array([[255, 255, 255]])), [[100, 0, 0]], atol=1e-6)


def test_glasbey_colorize_and_overlay():
    table = _colormaps.palette_table("glasbey")
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_array_equal(fastquant.colorize(levels, "glasbey"), table[levels])
    image = _image((16, 16))
    got = fastquant.overlay(image, levels, alpha=1.0, palette="glasbey", ignore=-1)
    np.testing.assert_array_equal(got, table[levels])


def test_save_glasbey_palette_png(tmp_path):
    from PIL import Image

    labels = _labels((20, 30), classes=40)
    fastquant.save(tmp_path / "g.png", labels, palette="glasbey")
    with Image.open(tmp_path / "g.png") as image:
        assert image.mode == "P"
        palette = np.array(image.getpalette(), dtype=np.uint8).reshape(-1, 3)
        np.testing.assert_array_equal(palette[:256], _colormaps.palette_table("glasbey"))
        np.testing.assert_array_equal(np.asarray(image), labels)


# --- overlay -------------------------------------------------------------------------------------------------


def _by_hand(image, colours, keep, alpha):
    """The issue's rule, element by element in Python floats (float64)."""
    rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image
    out = np.empty(rgb.shape, dtype=np.uint8)
    for index in np.ndindex(*rgb.shape):
        i = float(rgb[index])
        out[index] = i if keep[index[:2]] else round((1 - alpha) * i + alpha * float(colours[index]))  # half even
    return out


@pytest.mark.parametrize("gray", [True, False])
def test_overlay_reference_is_the_rule(gray):
    image = _image((9, 11) if gray else (9, 11, 3))
    labels = _labels((9, 11))
    voc = _colormaps.voc_palette()
    for alpha in (0.0, 0.25, 0.5, 1 / 3, 1.0):
        got = reference.overlay(image, labels, alpha=alpha)
        np.testing.assert_array_equal(got, _by_hand(image, voc[labels], labels == 255, alpha))
    heat = _map((9, 11), "float64")
    colours = reference.colorize(heat, "magma", percentiles=(5, 95))
    keep = np.isnan(heat)
    got = reference.overlay(image, heat, alpha=0.4, cmap="magma", percentiles=(5, 95))
    np.testing.assert_array_equal(got, _by_hand(image, colours, keep, 0.4))


def test_overlay_rounds_half_to_even():
    image = np.array([[1, 3, 5, 255]], dtype=np.uint8)
    labels = np.zeros((1, 4), dtype=np.uint8)  # voc 0: black
    assert fastquant.overlay(image, labels, alpha=0.5)[0, :, 0].tolist() == [0, 2, 2, 128]


CASES = {
    "gray-uint8": ((40, 50), lambda: _labels((40, 50)), {}),
    "rgb-uint8": ((40, 50, 3), lambda: _labels((40, 50)), {"alpha": 0.3}),
    "rgb-glasbey": ((40, 50, 3), lambda: _labels((40, 50), classes=200), {"palette": "glasbey", "alpha": 0.7}),
    "uint16": ((40, 50, 3), lambda: _labels((40, 50), dtype=np.uint16, ignore=65535), {}),
    "int32-negative-ignore": ((40, 50), lambda: _labels((40, 50), dtype=np.int32, ignore=-1), {"ignore": -1}),
    "int64-no-ignore": ((40, 50, 3), lambda: _labels((40, 50), dtype=np.int64, ignore=None), {}),
    "small-palette": (
        (40, 50),
        lambda: _labels((40, 50), classes=5, ignore=9),
        {"palette": np.eye(5, 3, dtype=np.uint8) * 200, "ignore": 9},
    ),  # fmt: skip
    "map-f32": ((40, 50, 3), lambda: _map((40, 50)), {}),
    "map-f64-gray": ((40, 50), lambda: _map((40, 50), "float64"), {"cmap": "turbo", "alpha": 0.6}),
    "map-percentiles": ((40, 50, 3), lambda: _map((40, 50)), {"percentiles": (2, 98), "method": "exact"}),
    "map-limits": ((40, 50), lambda: _map((40, 50), "float16"), {"vmin": -1, "vmax": 2, "cmap": "gray"}),
    "map-all-nan": ((40, 50, 3), lambda: np.full((40, 50), np.nan), {}),
    "map-undefined-limits": ((40, 50), lambda: _map((40, 50)), {"vmin": np.nan, "vmax": np.nan}),
}


@pytest.mark.parametrize("case", CASES)
def test_overlay_equals_reference(case, path):
    shape, make, options = CASES[case]
    image, values = _image(shape), make()
    expected = reference.overlay(image, values, **options)
    got = fastquant.overlay(image, values, **options)
    assert got.dtype == np.uint8 and got.shape == shape[:2] + (3,) and got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)
    for alpha, want in ((0.0, np.broadcast_to(image[..., None], got.shape) if image.ndim == 2 else image), (1.0, None)):
        result = fastquant.overlay(image, values, **{**options, "alpha": alpha})
        np.testing.assert_array_equal(result, reference.overlay(image, values, **{**options, "alpha": alpha}))
        if want is not None:
            np.testing.assert_array_equal(result, want)


def test_overlay_alpha_one_is_the_colours(path):
    image = _image((30, 20, 3))
    labels = _labels((30, 20))
    got = fastquant.overlay(image, labels, alpha=1)
    keep = labels == 255
    np.testing.assert_array_equal(got[~keep], _colormaps.voc_palette()[labels[~keep]])
    np.testing.assert_array_equal(got[keep], image[keep])
    heat = _map((30, 20))
    got = fastquant.overlay(image, heat, alpha=1.0, cmap="viridis")
    colours = fastquant.colorize(heat, "viridis")
    nan = np.isnan(heat)
    np.testing.assert_array_equal(got[~nan], colours[~nan])
    np.testing.assert_array_equal(got[nan], image[nan])


@pytest.mark.parametrize(
    "layout",
    [
        lambda a: a[::2, ::-1],
        np.asfortranarray,
        lambda a: a.astype(a.dtype.newbyteorder()) if a.dtype.itemsize > 1 else a,
    ],
)
def test_overlay_layouts(layout, path):
    image = _image((60, 40, 3))
    for values in (_labels((60, 40), dtype=np.uint16, ignore=65535), _map((60, 40))):
        i, v = layout(image), layout(values)
        np.testing.assert_array_equal(fastquant.overlay(i, v, alpha=0.45), reference.overlay(i, v, alpha=0.45))


def test_overlay_saves(tmp_path):
    from PIL import Image

    blended = fastquant.overlay(_image((20, 30)), _map((20, 30)), alpha=0.5)
    fastquant.save(tmp_path / "o.png", blended)
    with Image.open(tmp_path / "o.png") as image:
        assert image.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(image), blended)


@pytest.mark.parametrize("impl", ["fast", "numba", "reference"])
def test_overlay_errors(impl, monkeypatch):
    if impl == "numba":
        lower(monkeypatch, numba_min_size=0)
    call = reference.overlay if impl == "reference" else fastquant.overlay
    image, labels = _image((8, 9)), _labels((8, 9))
    cases = [
        ((image.astype(np.float32), labels), {}, TypeError, r"fastquant\.to_uint8"),
        ((image[..., None], labels), {}, ValueError, r"image has shape \(8, 9, 1\)"),
        ((image, labels[:, :5]), {}, ValueError, r"\(8, 5\) and image has shape \(8, 9\)"),
        ((image, labels > 3), {}, TypeError, "bool"),
        ((image, labels.astype(complex)), {}, TypeError, "complex"),
        ((image, labels), {"alpha": 1.5}, ValueError, "outside"),
        ((image, labels), {"alpha": float("nan")}, ValueError, "outside"),
        ((image, labels), {"alpha": "0.5"}, TypeError, "alpha"),
        ((image, labels), {"alpha": True}, TypeError, "alpha"),
        ((image, labels), {"ignore": 2.5}, TypeError, "ignore"),
        ((image, labels), {"vmin": 0.0}, ValueError, "vmin apply to float maps"),
        ((image, _map((8, 9))), {"ignore": 3}, ValueError, "applies to integer labels"),
        ((image, _map((8, 9))), {"cmap": np.ones((256, 4))}, ValueError, "alpha"),
        ((image, _map((8, 9))), {"cmap": "nope"}, ValueError, "not a shipped colormap"),
        ((image, labels), {"palette": "nope"}, ValueError, "'voc', 'glasbey'"),
        ((image, labels), {"palette": np.zeros((21, 3), np.uint8), "ignore": -1}, ValueError, "label 255, not an"),
        ((image, labels), {"palette": np.zeros((20, 3), np.uint8), "ignore": 255}, ValueError, "label 20,"),
        ((image, labels.astype(np.int16) - 3), {}, ValueError, "label -3,"),
    ]
    for args, options, error, message in cases:
        with pytest.raises(error, match=message):
            call(*args, **options)


# --- grid ----------------------------------------------------------------------------------------------------


def _stack(shape, dtype="float32", seed=3):
    x = _rng(seed).standard_normal(shape).astype(dtype) * np.arange(1, shape[-3] + 1).reshape(-1, 1, 1)
    x[..., 1, 2] = np.nan
    return x


def _expected_grid(x, tile_levels, ncols, padding, fill, channels=0):
    """The layout by hand: tile t at (t // ncols, t % ncols), `padding` between and around."""
    h, w = x.shape[-2:]
    tiles = math.prod(x.shape[:-2])
    nrows = -(-tiles // ncols)
    shape = (nrows * (h + padding) + padding, ncols * (w + padding) + padding) + ((channels,) if channels else ())
    out = np.empty(shape, np.uint8)
    out[...] = fill
    for t, levels in enumerate(tile_levels):
        r, c = divmod(t, ncols)
        out[padding + r * (h + padding) :][:h, padding + c * (w + padding) :][:, :w] = levels
    return out


def test_grid_reference_is_the_layout():
    x = _stack((5, 6, 7))
    tiles = [reference.to_uint8(t, percentiles=(0, 100)) for t in x]
    np.testing.assert_array_equal(reference.grid(x), _expected_grid(x, tiles, 3, 2, 0))
    lo, hi = np.nanmin(x), np.nanmax(x)
    shared = [reference.to_uint8(t, lo, hi) for t in x]
    got = reference.grid(x, ncols=2, padding=3, pad_value=9, shared_limits=True)
    np.testing.assert_array_equal(got, _expected_grid(x, shared, 2, 3, 9))
    colours = [reference.colorize(t, "magma", -1.0, 1.0) for t in x]
    got = reference.grid(x, cmap="magma", vmin=-1, vmax=1, pad_value=(1, 2, 3))
    np.testing.assert_array_equal(got, _expected_grid(x, colours, 3, 2, (1, 2, 3), 3))


GRID_CASES = {
    "chw": ((5, 6, 7), {}),
    "chw-square": ((9, 8, 8), {"padding": 0}),
    "chw-ncols": ((5, 6, 7), {"ncols": 4, "padding": 1, "pad_value": 200}),
    "chw-wide": ((3, 6, 7), {"ncols": 5}),
    "nchw": ((2, 3, 6, 7), {}),
    "nchw-ncols": ((2, 3, 6, 7), {"ncols": 4}),
    "shared": ((2, 3, 6, 7), {"shared_limits": True}),
    "shared-percentiles": ((5, 6, 7), {"shared_limits": True, "percentiles": (5, 95), "method": "exact"}),
    "percentiles": ((2, 3, 6, 7), {"percentiles": (10, 90), "method": "exact", "nan": 77}),
    "vmin-per-channel": ((2, 3, 6, 7), {"vmin": np.array([-1.0, -2.0, 0.0]), "vmax": 2.0}),
    "vmin-per-tile": ((2, 3, 6, 7), {"vmin": -np.arange(6.0).reshape(2, 3), "ncols": 4}),
    "vmax-only": ((5, 6, 7), {"vmax": 0.5}),
    "nominal": ((5, 6, 7), {"vmin": 0, "vmax": 1}),
    "cmap": ((5, 6, 7), {"cmap": "viridis", "pad_value": 255}),
    "cmap-nchw": ((2, 3, 6, 7), {"cmap": "RdBu", "ncols": 2, "pad_value": (10, 20, 30), "nan": (1, 2, 3)}),
    "cmap-rgba": ((5, 6, 7), {"cmap": "gray", "nan": (0, 0, 0, 0), "pad_value": (1, 2, 3, 4)}),
    "cmap-shared": ((5, 6, 7), {"cmap": "turbo", "shared_limits": True, "percentiles": (1, 99), "method": "exact"}),
    "int16": ((4, 6, 7), {"dtype": "int16"}),
    "nan-tile": ((4, 6, 7), {"nan_tile": True}),
}


@pytest.mark.parametrize("case", GRID_CASES)
def test_grid_equals_reference(case, path):
    shape, options = GRID_CASES[case]
    options = dict(options)
    dtype = options.pop("dtype", "float32")
    x = _stack(shape) if dtype == "float32" else _rng(4).integers(-300, 300, shape).astype(dtype)
    if options.pop("nan_tile", False):
        x[1] = np.nan
    expected = reference.grid(x, **options)
    got = fastquant.grid(x, **options)
    assert got.dtype == np.uint8 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)
    channels, tiles = shape[-3], math.prod(shape[:-2])
    ncols = options.get("ncols", channels if len(shape) == 4 else math.ceil(math.sqrt(channels)))
    padding = options.get("padding", 2)
    nrows = -(-tiles // ncols)
    assert got.shape[:2] == (nrows * (shape[-2] + padding) + padding, ncols * (shape[-1] + padding) + padding)
    assert got.ndim == (3 if "cmap" in options else 2)


def test_grid_layouts(path):
    x = _stack((2, 3, 12, 14))
    for view in (x[:, :, ::2, ::-2], np.asfortranarray(x), x.astype(">f8"), x.transpose(1, 0, 2, 3)):
        np.testing.assert_array_equal(fastquant.grid(view), reference.grid(view))
        np.testing.assert_array_equal(fastquant.grid(view, ncols=5), reference.grid(view, ncols=5))


def test_grid_per_tile_and_shared_limits(path):
    x = np.stack([np.full((4, 4), 1.0), np.full((4, 4), 3.0)])
    x[:, 0, 0] = 0.0
    per_tile = fastquant.grid(x, ncols=2, padding=0)
    assert per_tile[1, 1] == 255 and per_tile[1, 5] == 255  # each tile 0 .. its max
    shared = fastquant.grid(x, ncols=2, padding=0, shared_limits=True)
    assert shared[1, 1] == 85 and shared[1, 5] == 255 and shared[0, 4] == 0  # 1/3 of the input's range


def test_grid_padding_and_empty_slots():
    x = _stack((3, 4, 5))
    g = fastquant.grid(x, ncols=2, padding=1, pad_value=7)
    assert g.shape == (2 * 5 + 1, 2 * 6 + 1)
    assert (g[0] == 7).all() and (g[:, 0] == 7).all() and (g[5] == 7).all() and (g[:, 6] == 7).all()
    assert (g[6:10, 7:12] == 7).all()  # the empty fourth slot
    c = fastquant.grid(x, ncols=2, padding=1, cmap="magma", pad_value=(1, 2, 3))
    assert c.shape == g.shape + (3,) and (c[6:10, 7:12] == [1, 2, 3]).all()


@pytest.mark.parametrize("call", [fastquant.grid, reference.grid])
def test_grid_errors(call):
    x = _stack((3, 4, 5))
    cases = [
        ((x[0],), {}, ValueError, r"accepted: \(C, H, W\) or \(N, C, H, W\)"),
        ((x[None, None],), {}, ValueError, r"accepted: \(C, H, W\)"),
        ((x[:, :0],), {}, ValueError, "empty side"),
        ((x.astype(complex),), {}, TypeError, "complex"),
        ((x,), {"ncols": 0}, ValueError, "ncols"),
        ((x,), {"ncols": 2.0}, TypeError, "ncols"),
        ((x,), {"padding": -1}, ValueError, "padding"),
        ((x,), {"pad_value": 256}, ValueError, "pad_value"),
        ((x,), {"pad_value": (1, 2, 3)}, TypeError, "pad_value"),
        ((x,), {"cmap": "magma", "pad_value": (1, 2)}, ValueError, "pad_value"),
        ((x,), {"cmap": "magma", "pad_value": (1, 2, 3, 4)}, ValueError, "pad_value"),
        ((x,), {"shared_limits": 1}, TypeError, "shared_limits"),
        ((x,), {"shared_limits": True, "vmin": np.zeros(3)}, ValueError, "shared_limits=True"),
        ((x,), {"axis": 0}, TypeError, r"'axis'; accepted: vmin, vmax, percentiles, method, nan"),
        ((x,), {"out": np.zeros(3)}, TypeError, "'out'"),
        ((x,), {"vmin": 2, "vmax": 1}, ValueError, "greater than"),
        ((x,), {"percentiles": (5, 200)}, ValueError, "percentiles"),
        ((x,), {"method": "fast"}, ValueError, "method"),
        ((x,), {"cmap": "nope"}, ValueError, "not a shipped colormap"),
    ]
    for args, options, error, message in cases:
        with pytest.raises(error, match=message):
            call(*args, **options)
