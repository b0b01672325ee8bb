"""Each row of the issue's semantics table, on small inputs whose expected output is derived by hand.

Every test runs on the fast API's NumPy path, its Numba path (forced on these tiny inputs) and on
``fastquant.reference`` (the ``impl`` fixture): a hand-derived expectation the reference fails would mean the
spec and the issue disagree. Expected values are literals, or come from :func:`level`, a scalar transcription
of the per-element rule in Python floats (IEEE float64, ``round`` is half to even).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("error")

NAN = float("nan")
INF = float("inf")


def level(x: float, lo: float, hi: float, nan: int = 0) -> int:
    """The issue's rule for one element: NaN -> nan; x <= lo -> 0; else x >= hi -> 255; else rint."""
    if math.isnan(x) or math.isnan(lo) or math.isnan(hi):
        return nan
    if x <= lo:
        return 0
    if x >= hi:
        return 255
    return round((x - lo) * (255 / (hi - lo)))


def levels(values, lo: float, hi: float, nan: int = 0) -> np.ndarray:
    return np.array([level(float(v), lo, hi, nan) for v in values], dtype=np.uint8)


# --- per-element rule with absolute limits ---------------------------------------------------------------------


def test_clip_scale_round(impl):
    x = np.array([-1.0, 0.0, 0.125, 0.25, 0.5, 0.75, 0.999, 1.0, 2.0])
    # 0.125*255 = 31.875 -> 32 and 0.25*255 = 63.75 -> 64 (truncation would give 31, 63); 0.999 -> 254.745 -> 255
    expected = np.array([0, 0, 32, 64, 128, 191, 255, 255, 255], dtype=np.uint8)
    np.testing.assert_array_equal(impl.to_uint8(x, vmin=0.0, vmax=1.0), expected)
    np.testing.assert_array_equal(impl.to_uint8(x, vmin=0.0, vmax=1.0, method="exact"), expected)
    np.testing.assert_array_equal(levels(x, 0.0, 1.0), expected)  # the scalar model agrees


def test_scaling_uses_limits(impl):
    x = np.array([-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0])
    expected = levels(x, -2.0, 2.0)
    np.testing.assert_array_equal(expected, [0, 0, 64, 128, 191, 255, 255])  # 63.75, 127.5, 191.25
    np.testing.assert_array_equal(impl.to_uint8(x, vmin=-2, vmax=2), expected)


@pytest.mark.parametrize(
    ("vmin", "vmax", "x", "expected"),
    [
        # lo=0, hi=1: k/255 * 255 is exactly k in float64 for these k (asserted below)
        (
            0.0,
            1.0,
            [k / 255 for k in (0.5, 1.5, 2.5, 3.5, 100.5, 127.5, 253.5, 254.5)],
            [0, 2, 2, 4, 100, 128, 254, 254],
        ),
        (0.0, 255.0, [0.5, 1.5, 2.5, 253.5, 254.5], [0, 2, 2, 254, 254]),  # scale exactly 1
        (0.0, 510.0, [1.0, 3.0, 5.0, 7.0, 509.0], [0, 2, 2, 4, 254]),  # scale exactly 0.5
        (-255.0, 0.0, [-254.5, -253.5, -0.5], [0, 2, 254]),  # x - lo exact
    ],
)
def test_round_half_to_even(impl, vmin, vmax, x, expected):
    x = np.array(x, dtype=np.float64)
    halves = (x - vmin) * (255 / (vmax - vmin))
    assert np.all(halves % 1 == 0.5), "premise: every scaled value is exactly k + 1/2"
    np.testing.assert_array_equal(impl.to_uint8(x, vmin=vmin, vmax=vmax), expected)
    np.testing.assert_array_equal(impl.to_uint8(x, vmin=vmin, vmax=vmax, method="exact"), expected)


def test_tiny_values_and_denormals(impl):
    x = np.array([5e-324, -5e-324, 1e-300, 0.0, -0.0, 1.0 / 510, 1.0 / 509])
    # 1/510 * 255 = 0.5 -> 0 (half to even); 1/509 * 255 = 0.50098 -> 1
    np.testing.assert_array_equal(impl.to_uint8(x, vmin=0, vmax=1), [0, 0, 0, 0, 0, 0, 1])
    expected = levels(x, -1e-300, 1e-300)
    assert expected[2] == 255 and expected[4] == expected[3]  # x == hi; -0.0 == 0.0
    np.testing.assert_array_equal(impl.to_uint8(x, vmin=-1e-300, vmax=1e-300), expected)


@pytest.mark.parametrize(
    ("vmin", "vmax", "x", "expected"),
    [
        # hi - lo = 2**-1070 (subnormal): 255 / (hi - lo) overflows float64, yet the levels are plain
        # fractions of the range: 1/8, 1/4, 1/2 of it -> 31.875, 63.75, 127.5 -> 32, 64, 128
        (0.0, 2.0**-1070, [2.0**-1073, 2.0**-1072, 2.0**-1071], [32, 64, 128]),
        (-(2.0**-1071), 2.0**-1071, [-(2.0**-1072), 0.0, 2.0**-1072], [64, 128, 191]),
        # hi - lo = 2**1024 overflows to inf: 1/4, 1/2, 3/4 of the range -> 63.75, 127.5, 191.25
        (-(2.0**1023), 2.0**1023, [-(2.0**1022), 0.0, 2.0**1022], [64, 128, 191]),
    ],
    ids=["subnormal-range", "subnormal-symmetric", "range-above-float64-max"],
)
def test_extreme_float64_ranges(impl, vmin, vmax, x, expected):
    # The rule gives a level in 0..255 for every lo < x < hi; evaluating 255 / (hi - lo) literally in
    # float64 overflows here (to inf, or to 0 for hi - lo = inf), which must not leak into the levels.
    x = np.array(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = impl.to_uint8(x, vmin=vmin, vmax=vmax, method="exact")
    np.testing.assert_array_equal(result, expected)


def test_limits_compared_before_scaling(impl):
    # x == lo -> 0 and x == hi -> 255 exactly, even where the scaled value would round differently
    lo, hi = 0.1, 0.7
    x = np.array([lo, np.nextafter(lo, 1), np.nextafter(hi, 0), hi])
    np.testing.assert_array_equal(impl.to_uint8(x, vmin=lo, vmax=hi), [0, 0, 255, 255])


def test_infinities_saturate(impl):
    x = np.array([-INF, INF, 0.5])
    np.testing.assert_array_equal(impl.to_uint8(x), [0, 255, 128])
    np.testing.assert_array_equal(impl.to_uint8(x, vmin=-1e300, vmax=1e300), [0, 255, 128])
    np.testing.assert_array_equal(impl.to_uint8(x, percentiles=(0, 100)), [0, 255, 0])


@pytest.mark.parametrize("nan", [0, 1, 200, 255])
def test_nan_level(impl, nan):
    x = np.array([NAN, 0.0, 1.0, NAN])
    expected = [nan, 0, 255, nan]
    np.testing.assert_array_equal(impl.to_uint8(x, nan=nan), expected)
    np.testing.assert_array_equal(impl.to_uint8(x, percentiles=(0, 100), nan=nan), expected)
    np.testing.assert_array_equal(impl.to_uint8(x, vmin=0, nan=nan), expected)


def test_nan_default_is_zero(impl):
    np.testing.assert_array_equal(impl.to_uint8(np.array([NAN, 1.0])), [0, 255])


def test_equal_limits(impl):
    # lo == hi: x <= lo -> 0 is checked first, so x == lo -> 0 and only x > hi -> 255
    x = np.array([0.4, 0.5, 0.6, -INF, INF, NAN])
    np.testing.assert_array_equal(impl.to_uint8(x, vmin=0.5, vmax=0.5, nan=3), [0, 0, 255, 0, 255, 3])
    np.testing.assert_array_equal(impl.to_uint8(x, vmin=0.5, vmax=0.5, method="exact", nan=3), [0, 0, 255, 0, 255, 3])


@pytest.mark.parametrize("nan", [0, 3])
def test_equal_limits_of_opposite_zero_signs(impl, nan):
    # vmin = 0.0, vmax = -0.0: equal limits whose difference is -0.0 (255 / -0.0 = -inf)
    x = np.array([-0.0, 0.0, 1e-300, -1e-300, 2.0, -2.0, NAN, INF, -INF])
    expected = [0, 0, 255, 0, 255, 0, nan, 255, 0]
    np.testing.assert_array_equal(impl.to_uint8(x, vmin=0.0, vmax=-0.0, nan=nan), expected)
    np.testing.assert_array_equal(
        impl.to_uint8(x.astype(np.float32), vmin=-0.0, vmax=0.0, nan=nan), [0, 0, 0, 0, 255, 0, nan, 255, 0]
    )  # 1e-300 is 0.0 in float32


@pytest.mark.parametrize("method", ["approx", "exact"])
def test_constant_map_is_zero(impl, method):
    x = np.full((5, 7), 0.25, dtype=np.float32)
    np.testing.assert_array_equal(impl.to_uint8(x, percentiles=(5, 95), method=method), np.zeros((5, 7)))
    np.testing.assert_array_equal(impl.to_uint8(x, percentiles=(5, 95), axis=1, method=method), np.zeros((5, 7)))
    np.testing.assert_array_equal(impl.to_uint8(x, vmin=0.25), np.zeros((5, 7)))
    np.testing.assert_array_equal(impl.to_uint8(x, vmax=0.25), np.zeros((5, 7)))
    # a constant map with infinities: limits from the finite values only
    y = np.array([0.25, INF, -INF, 0.25, NAN], dtype=np.float32)
    np.testing.assert_array_equal(impl.to_uint8(y, percentiles=(5, 95), method=method, nan=9), [0, 255, 0, 0, 9])


# --- default limits per dtype ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_default_limits_float(impl, dtype):
    x = np.array([-0.5, 0.0, 0.25, 0.5, 1.0, 1.5], dtype=dtype)
    np.testing.assert_array_equal(impl.to_uint8(x), [0, 0, 64, 128, 255, 255])


@pytest.mark.parametrize(
    ("dtype", "values", "expected"),
    [
        ("int8", [-128, -1, 0, 127], [0, 127, 128, 255]),  # scale 255/255 = 1: x + 128
        ("uint8", [0, 1, 128, 254, 255], [0, 1, 128, 254, 255]),  # identity
        ("int16", [-32768, 0, 32767], [0, 128, 255]),  # 32768/257 = 127.502 -> 128
        ("uint16", [0, 257, 32767, 32768, 65535], [0, 1, 127, 128, 255]),  # x / 257
        ("int32", [-(2**31), 0, 2**31 - 1], [0, 128, 255]),
        ("uint32", [0, 2**31, 2**32 - 1], [0, 128, 255]),
        # 64-bit: in float64, hi - lo = 2**64 and 2**63 * 255 / 2**64 = 127.5 exactly -> 128 (even);
        # 2**63 - 1 becomes 2**63 == hi -> 255
        ("int64", [-(2**63), -1, 0, 2**63 - 1], [0, 128, 128, 255]),
        ("uint64", [0, 2**63, 2**64 - 1], [0, 128, 255]),
    ],
)
def test_default_limits_integer(impl, dtype, values, expected):
    x = np.array(values, dtype=dtype)
    np.testing.assert_array_equal(impl.to_uint8(x), expected)
    swapped = x.astype(x.dtype.newbyteorder())
    np.testing.assert_array_equal(impl.to_uint8(swapped), expected)


def test_default_limits_bool(impl):
    x = np.array([[False, True], [True, False]])
    np.testing.assert_array_equal(impl.to_uint8(x), [[0, 255], [255, 0]])
    # bool as the numbers 0 and 1 under explicit limits: 1 * 255 / 2 = 127.5 -> 128
    np.testing.assert_array_equal(impl.to_uint8(x, vmin=0, vmax=2), [[0, 128], [128, 0]])


def test_integer_input_with_limits(impl):
    x = np.array([100, 150, 200, 250], dtype=np.uint8)
    np.testing.assert_array_equal(impl.to_uint8(x, vmin=100, vmax=200), levels(x, 100, 200))
    # 255 / 100 rounds to just below 2.55 in float64, so 50 * it is 127.4999... -> 127, not 128
    np.testing.assert_array_equal(levels(x, 100, 200), [0, 127, 255, 255])
    x = np.array([-(2**62), 0, 2**62], dtype=np.int64)
    np.testing.assert_array_equal(impl.to_uint8(x, percentiles=(0, 100)), [0, 128, 255])


# --- one-sided limits (matplotlib rule) --------------------------------------------------------------------------


def test_vmin_only_takes_finite_max(impl):
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, INF, NAN])
    expected = [0, 0, 85, 170, 255, 255, 0]  # hi = 5: (x - 2) * 85
    np.testing.assert_array_equal(impl.to_uint8(x, vmin=2), expected)


def test_vmax_only_takes_finite_min(impl):
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, -INF, NAN])
    expected = [0, 85, 170, 255, 255, 0, 0]  # lo = 1: (x - 1) * 85
    np.testing.assert_array_equal(impl.to_uint8(x, vmax=4), expected)


def test_one_sided_crossing_sets_hi_to_lo(impl):
    # vmin above the data's max: hi = lo = 10, so finite x <= 10 -> 0 and only +inf -> 255
    x = np.array([1.0, 2.0, 3.0, INF, -INF])
    np.testing.assert_array_equal(impl.to_uint8(x, vmin=10), [0, 0, 0, 255, 0])
    # vmax below the data's min: lo = 2 > hi = -1, so hi = lo = 2: x == 2 -> 0, x > 2 -> 255
    x = np.array([2.0, 3.0, 4.0])
    np.testing.assert_array_equal(impl.to_uint8(x, vmax=-1), [0, 255, 255])


def test_one_sided_per_axis(impl):
    x = np.array([[0.0, 1.0, 2.0], [10.0, 20.0, 40.0]])
    # vmin=0, per row hi = 2 and 40
    expected = np.array([levels(x[0], 0, 2), levels(x[1], 0, 40)])
    np.testing.assert_array_equal(expected, [[0, 128, 255], [64, 128, 255]])
    np.testing.assert_array_equal(impl.to_uint8(x, vmin=0, axis=1), expected)
    # vmax=30, per column lo = 0, 1, 2
    expected = np.array([levels(x[:, j], x[0, j], 30) for j in range(3)]).T
    np.testing.assert_array_equal(impl.to_uint8(x, vmax=30, axis=0), expected)


# --- percentile limits ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["approx", "exact"])
def test_percentile_limits(impl, method):
    x = np.arange(101.0)  # the p-th percentile is p
    expected = levels(x, 5.0, 95.0)
    np.testing.assert_array_equal(impl.to_uint8(x, percentiles=(5, 95), method="exact"), expected)
    result = impl.to_uint8(x, percentiles=(5, 95), method=method)
    assert np.all(np.abs(result.astype(int) - expected.astype(int)) <= 1)
    # NaN and infinities do not move the limits
    y = np.concatenate([x, [NAN, INF, -INF, NAN]])
    np.testing.assert_array_equal(
        impl.to_uint8(y, percentiles=(5, 95), method="exact", nan=7), np.concatenate([expected, [7, 255, 0, 7]])
    )


def test_percentile_limits_interpolate(impl):
    x = np.array([0.0, 10.0, 20.0, 30.0])  # h = 3 * 0.25 = 0.75 -> 7.5; 3 * 0.75 = 2.25 -> 22.5
    np.testing.assert_array_equal(impl.to_uint8(x, percentiles=(25, 75), method="exact"), levels(x, 7.5, 22.5))
    np.testing.assert_array_equal(levels(x, 7.5, 22.5), [0, 42, 212, 255])  # 42.5 -> 42, 212.5 -> 212


@pytest.mark.parametrize("method", ["approx", "exact"])
def test_per_channel_percentiles(impl, method):
    h, w = 6, 5
    base = np.arange(h * w, dtype=np.float32).reshape(h, w)
    x = np.stack([base, 10 * base - 7, -base], axis=-1)  # channel c spans its own range
    result = impl.to_uint8(x, percentiles=(0, 100), axis=(0, 1), method=method)
    for c in range(3):
        ch = x[..., c].astype(np.float64)
        np.testing.assert_array_equal(result[..., c], levels(ch.ravel(), ch.min(), ch.max()).reshape(h, w))
    # per image and channel of an N x C x H x W batch
    batch = np.stack([np.moveaxis(x, -1, 0), np.moveaxis(x, -1, 0)[::-1] * 3])
    result = impl.to_uint8(batch, percentiles=(0, 100), axis=(2, 3), method=method)
    for n in range(2):
        for c in range(3):
            plane = batch[n, c].astype(np.float64)
            np.testing.assert_array_equal(result[n, c], levels(plane.ravel(), plane.min(), plane.max()).reshape(h, w))


@pytest.mark.parametrize("kwargs", [{"percentiles": (0, 100)}, {"percentiles": (5, 95)}, {"vmin": 0}, {"vmax": 1}])
def test_no_finite_value_in_slice_gives_nan_level(impl, kwargs):
    # Data-derived limits of a slice without finite values are NaN: every element -> nan, infinities included.
    x = np.array([[NAN, INF, -INF, NAN], [0.0, 0.25, 0.5, 1.0], [INF, INF, -INF, -INF]])
    for method in ("approx", "exact"):
        result = impl.to_uint8(x, axis=1, nan=9, method=method, **kwargs)
        np.testing.assert_array_equal(result[0], [9, 9, 9, 9], err_msg=f"{kwargs} {method}")
        np.testing.assert_array_equal(result[2], [9, 9, 9, 9], err_msg=f"{kwargs} {method}")
        whole = impl.to_uint8(x[[0, 2]], nan=9, method=method, **kwargs)  # axis=None
        np.testing.assert_array_equal(whole, np.full((2, 4), 9), err_msg=f"{kwargs} {method}")


def test_no_finite_value_with_absolute_limits(impl):
    # absolute limits do not depend on the data: infinities still saturate
    x = np.array([NAN, INF, -INF])
    np.testing.assert_array_equal(impl.to_uint8(x, vmin=0, vmax=1, nan=9), [9, 255, 0])
    np.testing.assert_array_equal(impl.to_uint8(x, nan=9), [9, 255, 0])


# --- axis ------------------------------------------------------------------------------------------------------------


def test_axis_without_data_limits_changes_nothing(impl):
    x = np.random.default_rng(3).uniform(-0.5, 1.5, size=(4, 5, 3))
    plain = impl.to_uint8(x)
    np.testing.assert_array_equal(plain, levels(x.ravel(), 0, 1).reshape(x.shape))
    for axis in (0, -1, (0, 1), (1, 2), ()):
        np.testing.assert_array_equal(impl.to_uint8(x, axis=axis), plain)
        np.testing.assert_array_equal(
            impl.to_uint8(x, vmin=0.2, vmax=0.6, axis=axis), levels(x.ravel(), 0.2, 0.6).reshape(x.shape)
        )


def test_axis_selects_reduced_axes(impl):
    x = np.array([[0.0, 10.0], [5.0, 20.0], [10.0, 30.0]])
    per_column = impl.to_uint8(x, percentiles=(0, 100), axis=0, method="exact")
    np.testing.assert_array_equal(per_column, [[0, 0], [128, 128], [255, 255]])
    per_row = impl.to_uint8(x, percentiles=(0, 100), axis=1, method="exact")
    np.testing.assert_array_equal(per_row, [[0, 255], [0, 255], [0, 255]])
    np.testing.assert_array_equal(impl.to_uint8(x, percentiles=(0, 100), axis=-1, method="exact"), per_row)
    whole = impl.to_uint8(x, percentiles=(0, 100), axis=(0, 1), method="exact")
    np.testing.assert_array_equal(whole, levels(x.ravel(), 0, 30).reshape(3, 2))
    np.testing.assert_array_equal(impl.to_uint8(x, percentiles=(0, 100), method="exact"), whole)


# --- output ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (0,), (3, 0), (4,), (3, 5), (2, 3, 4)])
def test_output_is_c_contiguous_uint8_of_input_shape(impl, shape):
    x = np.linspace(-0.5, 1.5, math.prod(shape)).reshape(shape).copy(order="F")
    for kwargs in ({}, {"percentiles": (5, 95)}, {"vmin": 0.1}):
        result = impl.to_uint8(x, **kwargs)
        assert isinstance(result, np.ndarray)
        assert result.dtype == np.uint8 and result.shape == shape and result.flags.c_contiguous
        assert result.flags.writeable


def test_out_is_filled_and_returned(impl):
    x = np.array([[0.0, 0.5], [1.0, NAN]])
    out = np.full((2, 2), 42, dtype=np.uint8)
    result = impl.to_uint8(x, out=out, nan=5)
    assert result is out
    np.testing.assert_array_equal(out, [[0, 128], [255, 5]])
    # a non-contiguous out (a Fortran-order view) is filled just the same
    big = np.full((2, 4), 42, dtype=np.uint8)
    view = big[:, ::2]
    assert impl.to_uint8(x, out=view, nan=5) is view
    np.testing.assert_array_equal(big, [[0, 42, 128, 42], [255, 42, 5, 42]])


def test_out_may_be_the_uint8_input(impl):
    x = np.array([10, 20, 30, 40, 50], dtype=np.uint8)
    expected = levels(x, 20, 40)
    assert impl.to_uint8(x, vmin=20, vmax=40, out=x) is x
    np.testing.assert_array_equal(x, expected)


# --- percentile -----------------------------------------------------------------------------------------------


def test_percentile_values_and_shapes(impl):
    x = np.arange(12.0).reshape(3, 4)
    r = impl.percentile(x, [0, 50, 100], axis=1)
    np.testing.assert_array_equal(r, [[0, 4, 8], [1.5, 5.5, 9.5], [3, 7, 11]])  # (q, rows)
    r = impl.percentile(x, [0, 50, 100], axis=0)
    np.testing.assert_array_equal(r, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]])
    r = impl.percentile(x, 50)
    assert isinstance(r, np.ndarray) and r.shape == () and r.dtype == np.float64 and r == 5.5
    r = impl.percentile(x, [[25, 75], [0, 100]], axis=(0, 1))
    np.testing.assert_array_equal(r, [[2.75, 8.25], [0, 11]])
    r = impl.percentile(np.arange(24.0).reshape(2, 3, 4), [50], axis=(0, 2))
    assert r.shape == (1, 3)
    np.testing.assert_array_equal(r, [[7.5, 11.5, 15.5]])


def test_percentile_of_finite_values_only(impl):
    x = np.array([NAN, INF, 3.0, 1.0, -INF, 2.0, NAN])
    np.testing.assert_array_equal(impl.percentile(x, [0, 50, 100]), [1.0, 2.0, 3.0])


@pytest.mark.parametrize("method", ["approx", "exact"])
def test_percentile_no_finite_value_is_nan_without_warning(impl, method):
    x = np.array([[NAN, INF, -INF, NAN, NAN], [0.0, 10.0, 20.0, 30.0, 40.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = impl.percentile(x, [25, 75], axis=1, method=method)
        empty = impl.percentile(np.empty((0, 3)), 50, axis=0, method=method)
        all_nan = impl.percentile(np.full(5, NAN, dtype=np.float32), 50, method=method)
    np.testing.assert_array_equal(r, [[NAN, 10.0], [NAN, 30.0]])
    np.testing.assert_array_equal(empty, [NAN, NAN, NAN])
    assert all_nan.shape == () and np.isnan(all_nan)


def test_percentile_signed_zero(impl):
    r = impl.percentile(np.array([-0.0, 0.0, -0.0]), [0, 50, 100])
    np.testing.assert_array_equal(r, [0.0, 0.0, 0.0])  # == semantics: -0.0 == 0.0


def test_percentile_float32_values_interpolated_as_numpy_does(impl):
    # NumPy takes b - a in the data's dtype: float32(2**-30 - (-1)) rounds to 1.0, so the median of
    # float32 [-1, 2**-30] is 2**-30 - 0.5; for float64 data it is 2**-31 - 0.5.
    r32 = impl.percentile(np.array([-1.0, 2.0**-30], dtype=np.float32), 50)
    r64 = impl.percentile(np.array([-1.0, 2.0**-30], dtype=np.float64), 50)
    assert r32 == 2.0**-30 - 0.5
    assert r64 == 2.0**-31 - 0.5


def test_percentile_float16_as_float32(impl):
    # in float16, 65504 - (-65504) overflows to inf (median -inf); as float32 values it is 131008
    x = np.array([-65504, 65504], dtype=np.float16)
    np.testing.assert_array_equal(impl.percentile(x, [25, 50, 75]), [-32752.0, 0.0, 32752.0])


@pytest.mark.parametrize(
    ("values", "dtype", "q", "expected"),
    [
        ([-128, 127], "int8", 50, -0.5),  # no int8 wrap-around
        ([250, 255], "uint8", 50, 252.5),
        ([0, 65535], "uint16", 50, 32767.5),
        ([-(2**63), 2**63 - 1], "int64", 50, 0.0),  # float64: -2**63 + 2**64 / 2
        ([0, 2**64 - 1], "uint64", 100, 2.0**64),
        ([2**53 + 1, 2**53 + 1], "int64", 50, 2.0**53),  # the float64 value of 2**53 + 1
        ([False, True, True], "bool", 25, 0.5),
    ],
)
def test_percentile_integers_as_float64(impl, values, dtype, q, expected):
    x = np.array(values, dtype=dtype)
    r = impl.percentile(x, q)
    assert r.dtype == np.float64 and r == expected
    assert impl.percentile(x.astype(x.dtype.newbyteorder()), q) == expected


def test_percentile_default_method_is_exact(impl):
    x = np.random.default_rng(5).standard_normal(1001).astype(np.float32)
    np.testing.assert_array_equal(impl.percentile(x, [1, 50, 99]), impl.percentile(x, [1, 50, 99], method="exact"))
    finite = x.astype(np.float32)
    np.testing.assert_array_equal(
        impl.percentile(x, [1, 50, 99]), np.percentile(finite, np.asarray([1, 50, 99], dtype=np.float64))
    )


# --- no warnings -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "x",
    [
        np.full((4, 4), NAN),
        np.full((4, 4), INF),
        np.array([[NAN, INF], [-INF, 1.0]]),
        np.full((4, 4), 3.0),
        np.zeros((0, 4)),
        np.array(NAN),
    ],
    ids=["all-nan", "all-inf", "mixed", "constant", "empty", "0d-nan"],
)
def test_no_warnings(impl, x):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kwargs in ({}, {"percentiles": (5, 95)}, {"vmin": 0}, {"vmax": 0}, {"vmin": 1, "vmax": 1}):
            for method in ("approx", "exact"):
                impl.to_uint8(x, method=method, **kwargs)
                if x.ndim:
                    impl.to_uint8(x, method=method, axis=-1, **kwargs)
        impl.percentile(x, [0, 50, 100])
        if x.ndim:
            impl.percentile(x, 50, axis=-1)
