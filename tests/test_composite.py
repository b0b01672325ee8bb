"""composite: the fused kernel equals ``reference.composite`` bit for bit, for every layout and dtype the kernel
reads (in place or in slabs), every mode, NaN/inf/constant/empty channels and given or data-derived limits; and
the reference equals the issue's rule computed by hand on tiny cases."""

from __future__ import annotations

import numpy as np
import pytest
from support import NEVER, lower

import fastquant
from fastquant import reference

MODES = ("sum", "max", "weighted")


def _channels(shape, dtype="float32", seed=0):
    """Channels first (C, ...): normal values with NaN, +-inf, a constant channel and (floats) an all-NaN one."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2.0 + 0.5
    if np.dtype(dtype).kind in "iu":
        x = np.clip(x * 30 + 60, 0, 120)
    if np.dtype(dtype).kind == "b":
        x = x > 0.5
    x = x.astype(dtype)
    flat = x.reshape(shape[0], -1)
    flat[min(1, shape[0] - 1)] = flat[min(1, shape[0] - 1), 0]  # a constant channel
    if x.dtype.kind == "f":
        flat[0, ::7] = np.nan
        flat[0, 3::11] = np.inf
        flat[0, 5::13] = -np.inf
        if shape[0] > 3:
            flat[3] = np.nan  # no finite value: NaN limits, t = 0
    return x


LAYOUTS = {  # (C, H, W) -> (array, channel_axis)
    "chw": (lambda x: x, 0),
    "hwc": (lambda x: np.ascontiguousarray(np.moveaxis(x, 0, -1)), -1),
    "nchw": (lambda x: np.ascontiguousarray(np.stack([x[:, ::2], x[:, 1::2]])), 1),
    "hcw": (lambda x: np.ascontiguousarray(np.moveaxis(x, 0, 1))[..., :40], 1),  # planes of 40 < 64 pixels
    "fortran": (np.asfortranarray, 0),
    "swapped": (lambda x: x.astype(x.dtype.newbyteorder()), 0),
    "strided": (lambda x: x[:, ::2, ::-1], 0),
    "hwc_strided": (lambda x: np.moveaxis(x, 0, -1)[::-1, 1::3], 2),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int16", "uint8", "int64", "bool"])
def test_kernel_equals_reference(layout, dtype, monkeypatch):
    lower(monkeypatch, numba_min_size=0)  # the kernel, whatever the size
    make, axis = LAYOUTS[layout]
    x = make(_channels((5, 48, 130), dtype))
    limit_options = [{"percentiles": (1, 99)}, {}, {"percentiles": (0, 100), "method": "exact"}]
    if dtype != "bool":
        limit_options.append({"vmin": [-1, 0, 1, 2, 3], "vmax": [2, 3, 4, 5, 90]})
    for mode in MODES:
        for kwargs in limit_options:
            got = fastquant.composite(x, channel_axis=axis, mode=mode, **kwargs)
            expected = reference.composite(x, channel_axis=axis, mode=mode, **kwargs)
            assert got.dtype == np.uint8 and got.flags.c_contiguous
            out_shape = np.delete(np.array(x.shape), axis % x.ndim).tolist()
            assert list(got.shape) == out_shape + [3]
            np.testing.assert_array_equal(got, expected, err_msg=f"{mode} {kwargs}")


@pytest.mark.parametrize("path", ["numpy", "kernel"])
def test_colours_given_and_finer_limits(path, monkeypatch):
    lower(monkeypatch, numba_min_size=0 if path == "kernel" else NEVER)
    x = _channels((4, 30, 70), "float64", seed=1)
    nchw = np.stack([x, x[:, ::-1] * 3.0 + 1.0])  # 2 images with different ranges
    colours = [(10, 200, 30), "orange", "#3366ff", "white"]
    for mode in MODES:
        for kwargs in (
            {"axis": (2, 3), "percentiles": (2, 98)},  # limits per (image, channel)
            {"axis": (2, 3), "vmin": -np.ones((2, 4, 1, 1)), "vmax": np.arange(8.0).reshape(2, 4, 1, 1) + 1},
            {"axis": 3, "percentiles": (5, 95)},  # per (image, channel, row)
            {"percentiles": (1, 99)},
        ):
            got = fastquant.composite(nchw, colours, channel_axis=1, mode=mode, **kwargs)
            expected = reference.composite(nchw, colours, channel_axis=1, mode=mode, **kwargs)
            np.testing.assert_array_equal(got, expected, err_msg=f"{mode} {kwargs}")
    array = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [7, 8, 9]], dtype=np.uint8)
    np.testing.assert_array_equal(
        fastquant.composite(x, array, channel_axis=0), reference.composite(x, array.astype(np.int64), channel_axis=0)
    )


def _hand(values, limits, colours, mode):
    """The issue's rule for one pixel, in Python floats: values[c], limits[c] = (lo, hi), colours[c] = RGB."""
    ts = []
    for v, (lo, hi) in zip(values, limits, strict=True):
        if np.isnan(v) or np.isnan(lo) or np.isnan(hi) or v <= lo:
            ts.append(0.0)
        elif v >= hi:
            ts.append(1.0)
        elif np.isinf(hi - lo):
            ts.append((v * 0.5 - lo * 0.5) / (hi * 0.5 - lo * 0.5))
        else:
            ts.append((v - lo) / (hi - lo))
    out = []
    for k in range(3):
        acc, total = 0.0, 0.0
        for t, colour in zip(ts, colours, strict=True):
            term = t * (colour[k] / 255.0)
            acc = max(acc, term) if mode == "max" else acc + term
            total += t
        if mode == "sum":
            level = 255.0 * min(1.0, acc)
        elif mode == "max":
            level = 255.0 * acc
        else:
            level = 0.0 if total == 0.0 else 255.0 * acc / total
        out.append(int(np.rint(level)))
    return out


@pytest.mark.parametrize("mode", MODES)
def test_reference_is_the_rule_by_hand(mode, monkeypatch):
    # 3 channels x 6 pixels; limits (0, 4), (1, 1) (constant), (-1.5e308, 1.5e308) (the span overflows)
    x = np.array(
        [
            [0.0, 1.0, 2.0, 3.0, np.nan, 5.0],
            [0.5, 1.0, 1.5, np.inf, 1.0, -np.inf],
            [0.0, 1e308, -1e308, 7.5e307, 1.5e308, -2e308],
        ]
    )
    limits = [(0.0, 4.0), (1.0, 1.0), (-1.5e308, 1.5e308)]
    colours = [(255, 0, 0), (0, 200, 55), (30, 60, 255)]
    vmin, vmax = [lo for lo, _ in limits], [hi for _, hi in limits]
    expected = [_hand(x[:, p], limits, colours, mode) for p in range(x.shape[1])]
    assert reference.composite(x, colours, channel_axis=0, vmin=vmin, vmax=vmax, mode=mode).tolist() == expected
    for size in (0, NEVER):  # kernel, then NumPy
        lower(monkeypatch, numba_min_size=size)
        assert fastquant.composite(x, colours, channel_axis=0, vmin=vmin, vmax=vmax, mode=mode).tolist() == expected


def test_rounding_clamping_and_all_zero(monkeypatch):
    for size in (0, NEVER):
        lower(monkeypatch, numba_min_size=size)
        x = np.array([[0.5, 1.0, 0.0], [0.5, 1.0, 0.0]])  # 127.5 -> 128 (half to even); 1 + 1 -> clamped
        assert fastquant.composite(x, ["white", "red"], channel_axis=0, vmin=0, vmax=1).tolist() == [
            [255, 128, 128],
            [255, 255, 255],
            [0, 0, 0],
        ]
        assert fastquant.composite(x, ["white", "red"], channel_axis=0, vmin=0, vmax=1, mode="max").tolist() == [
            [128, 128, 128],
            [255, 255, 255],
            [0, 0, 0],
        ]
        weighted = fastquant.composite(x, ["white", "red"], channel_axis=0, vmin=0, vmax=1, mode="weighted")
        assert weighted.tolist() == [[255, 128, 128], [255, 128, 128], [0, 0, 0]]  # s == 0 -> black


def test_default_colours(monkeypatch):
    lower(monkeypatch, numba_min_size=0)
    for n, names in (
        (1, ["white"]),
        (2, ["magenta", "green"]),
        (3, ["red", "green", "blue"]),
        (8, ["red", "green", "blue", "cyan", "magenta", "yellow", "red", "green"]),
    ):
        one_hot = np.eye(n).reshape(n, n, 1)  # pixel c: channel c at 1, the others 0
        got = fastquant.composite(one_hot, channel_axis=0, vmin=0, vmax=1)
        expected = [[list(fastquant._composite.COLOUR_NAMES[name])] for name in names]
        assert got.tolist() == expected
        assert reference.composite(one_hot, channel_axis=0, vmin=0, vmax=1).tolist() == expected


def test_large_through_the_real_threshold():
    x = _channels((4, 1100, 1100), "float32", seed=2)  # above numba_min_size: the kernel in place
    for kwargs in ({"channel_axis": 0}, {"channel_axis": 0, "mode": "weighted", "method": "exact"}):
        got = fastquant.composite(x, percentiles=(1, 99), **kwargs)
        np.testing.assert_array_equal(got, reference.composite(x, percentiles=(1, 99), **kwargs))
    hwc = np.ascontiguousarray(np.moveaxis(x[:, :300], 0, -1))
    got = fastquant.composite(hwc, ["red", "green", "blue", "yellow"], percentiles=(1, 99), mode="max")
    np.testing.assert_array_equal(
        got, reference.composite(hwc, ["red", "green", "blue", "yellow"], percentiles=(1, 99), mode="max")
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mode": "add"}, ValueError, "mode='add' is not a blending mode"),
        ({"mode": None}, ValueError, "accepted: 'sum', 'max', 'weighted'"),
        ({"colors": ["red", "green"]}, ValueError, "2 colours; accepted: 3"),
        ({"colors": ["red", "green", "mauve"]}, ValueError, "colour 'mauve' is unknown"),
        ({"colors": ["red", "green", (0, 256, 0)]}, ValueError, "out of range"),
        ({"colors": ["red", "green", (0, 1.5, 0)]}, TypeError, "RGB triple of ints"),
        ({"colors": ["red", "green", (0, 1)]}, TypeError, "RGB triple of ints"),
        ({"colors": ["red", "green", 3]}, TypeError, "must be a name"),
        ({"colors": "red"}, TypeError, "single string"),
        ({"colors": np.ones((3, 3))}, TypeError, "dtype float64"),
        ({"colors": np.ones((2, 3), np.uint8)}, ValueError, r"accepted: \(3, 3\)"),
        ({"channel_axis": 3}, ValueError, "out of range"),
        ({"channel_axis": 0.5}, TypeError, "must be an int"),
        ({"channel_axis": True}, TypeError, "must be an int"),
        ({"axis": (0, 2)}, ValueError, "includes the channel axis 2"),
        ({"axis": 5}, ValueError, "out of bounds"),
        ({"percentiles": (99, 1)}, ValueError, "low <= high"),
        ({"vmin": [0, 1]}, ValueError, "shape"),
        ({"method": "fast"}, ValueError, "fast"),
    ],
)
def test_errors(kwargs, error, match):
    x = np.zeros((4, 5, 3), np.float32)
    for impl in (fastquant, reference):
        with pytest.raises(error, match=match):
            impl.composite(x, **kwargs)


def test_zero_d_and_no_channels():
    for impl in (fastquant, reference):
        with pytest.raises(ValueError, match="0-d"):
            impl.composite(np.float32(1))
        with pytest.raises(ValueError, match="no channels"):
            impl.composite(np.zeros((4, 0)))
        with pytest.raises(TypeError, match="dtype complex"):
            impl.composite(np.zeros((4, 3), complex))
