"""to_uint16 and save(bits=16): 65535 levels by to_uint8's rules (the spec against hand-derived values; the fast
paths equal to it bit for bit, approx equal to exact), written as 16-bit PNG and TIFF and read back as uint16 by
independent decoders (OpenCV, Pillow, tifffile)."""

from __future__ import annotations

import numpy as np
import pytest
from arrays import SAMPLED_KNOBS, cases, sampled_cases
from support import lower

import fastquant
from fastquant import _plan, reference

CASES = [c for c in cases(seed=20261216) if c[1].size <= 1000][::3]


def test_reference_by_hand():
    x = np.array([-1.0, 0.0, 0.25, 0.5, 1.0, 2.0, np.nan, np.inf, -np.inf])
    got = reference.to_uint16(x, nan=9)
    assert got.dtype == np.uint16
    assert got.tolist() == [0, 0, 16384, 32768, 65535, 65535, 9, 65535, 0]  # 16383.75 -> 16384, 32767.5 -> 32768
    assert reference.to_uint16(np.array([2.0, 3.0]), vmin=2.0, vmax=2.0).tolist() == [0, 65535]
    tiny = np.array([0.0, 1e-310, 2e-310])  # a span whose 65535 / span overflows: rescaled, still fractions
    assert reference.to_uint16(tiny, vmin=0.0, vmax=2e-310).tolist() == [0, 32768, 65535]


def test_levels_refine_to_uint8():
    x = np.random.default_rng(3).standard_normal(20000)
    wide = reference.to_uint16(x, percentiles=(1, 99)).astype(np.int64)
    narrow = reference.to_uint8(x, percentiles=(1, 99)).astype(np.int64)
    assert np.abs(wide / 257 - narrow).max() <= 0.5 + 1e-9  # 65535 = 257 * 255: the same rule, finer steps


@pytest.mark.parametrize(("cid", "x", "axes"), CASES, ids=[c[0] for c in CASES])
def test_fast_equals_reference(cid, x, axes, path):
    for axis in axes[:2]:
        for options in ({"percentiles": (5, 95)}, {"vmin": -0.5}, {}, {"stretch": "sqrt", "center": 0.0}):
            expected = reference.to_uint16(x, axis=axis, nan=40000, **options)
            got = fastquant.to_uint16(x, axis=axis, nan=40000, **options)
            assert got.dtype == np.uint16 and got.shape == x.shape
            np.testing.assert_array_equal(got, expected, err_msg=f"{cid} axis={axis} {options}")


@pytest.mark.parametrize(("cid", "x", "axis"), sampled_cases(seed=5), ids=[c[0] for c in sampled_cases(seed=5)])
def test_approx_is_exact(cid, x, axis, monkeypatch):
    """A sample cannot prove limits to 1/65535 of the range: approx runs the exact limits."""
    lower(monkeypatch, numba_min_size=0, **SAMPLED_KNOBS)
    expected = reference.to_uint16(x, percentiles=(1, 99), axis=axis)
    with _plan.recording() as trace:
        got = fastquant.to_uint16(x, percentiles=(1, 99), axis=axis, method="approx")
    assert "levels16" in {d.get("kernel") for e, d in trace if e == "convert"}, trace
    assert not any(e == "approx" for e, _ in trace), trace
    np.testing.assert_array_equal(got, expected, err_msg=cid)


def test_out_blockwise_and_large(monkeypatch):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1100, 1000), dtype=np.float32)
    x[::9, ::7] = np.nan
    expected = reference.to_uint16(x, percentiles=(1, 99))
    np.testing.assert_array_equal(fastquant.to_uint16(x, percentiles=(1, 99)), expected)  # through the threshold
    out = np.zeros(x.shape[::-1], np.uint16).T
    assert fastquant.to_uint16(x, percentiles=(1, 99), out=out) is out
    np.testing.assert_array_equal(out, expected)

    class Lazy:
        def __init__(self, a):
            self.a, self.shape, self.dtype = a, a.shape, a.dtype

        def __getitem__(self, index):
            return self.a[index]

    np.testing.assert_array_equal(fastquant.to_uint16(Lazy(x), percentiles=(1, 99), max_memory="128MiB"), expected)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"nan": 65536}, ValueError, "nan=65536 is outside 0..65535"),
        ({"nan": 1.5}, TypeError, "nan=1.5 must be an int in 0..65535"),
        ({"out": np.zeros(4, np.uint8)}, ValueError, "out has dtype uint8; accepted: uint16"),
        ({"percentiles": (5, 1)}, ValueError, "percentiles"),
    ],
)
def test_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        fastquant.to_uint16(np.zeros(4), **kwargs)


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("ext", ["png", "tif"])
def test_save_bits_16(channels, ext, tmp_path):
    cv2 = pytest.importorskip("cv2")
    tifffile = pytest.importorskip("tifffile")
    rng = np.random.default_rng(channels)
    x = rng.standard_normal((37, 53, channels)).astype(np.float32)
    x = x[..., 0] if channels == 1 else x
    path = tmp_path / f"image.{ext}"
    fastquant.save(path, x, bits=16, percentiles=(1, 99), axis=(0, 1) if channels > 1 else None)
    expected = fastquant.to_uint16(x, percentiles=(1, 99), axis=(0, 1) if channels > 1 else None)
    if ext == "tif":
        back = tifffile.imread(path)
    else:
        back = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if channels > 1:  # OpenCV gives BGR(A)
            back = back[..., [2, 1, 0, 3][:channels]]
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, expected)
    if ext == "png" and channels == 1:
        from PIL import Image

        with Image.open(path) as image:
            np.testing.assert_array_equal(np.asarray(image), expected)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bits": 12}, "bits=12 is not accepted; accepted: 8 or 16"),
        ({"bits": 16, "cmap": "viridis"}, "colormaps are 8-bit"),
        ({"bits": 16, "format": "JPEG"}, "bits=16 is written as PNG or TIFF"),
        ({"bits": 16, "optimize": True}, "'optimize' not supported"),
    ],
)
def test_save_bits_errors_touch_nothing(kwargs, match, tmp_path):
    path = tmp_path / "x.png"
    with pytest.raises(ValueError, match=match):
        fastquant.save(path, np.zeros((4, 4)), **kwargs)
    assert not path.exists()
