"""Every error case of the issue: the exception type, and a message that names the bad value.

Run against the fast API on both paths and against the reference (``impl`` fixture): both must reject
the same inputs. The inputs are large enough for nothing here (validation happens before any data is
touched), and a few cases repeat on empty and 0-d inputs, where a fast path might return early.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("error")

X = np.linspace(-1.0, 2.0, 12).reshape(3, 4)
READ_ONLY_OUT = np.zeros((3, 4), dtype=np.uint8)
READ_ONLY_OUT.setflags(write=False)

# (id, keyword arguments to to_uint8, exception type, regex the message must match)
TO_UINT8_ERRORS = [
    ("percentiles-above-100", {"percentiles": (5, 101)}, ValueError, r"percentiles=\(5, 101\).*100"),
    ("percentiles-below-0", {"percentiles": (-1, 50)}, ValueError, r"percentiles=\(-1, 50\).*0 <="),
    ("percentiles-reversed", {"percentiles": (95, 5)}, ValueError, r"percentiles=\(95, 5\).*low <= high"),
    ("percentiles-nan", {"percentiles": (float("nan"), 50)}, ValueError, r"percentiles\[0\]=nan.*finite"),
    ("percentiles-inf", {"percentiles": (5, float("inf"))}, ValueError, r"percentiles\[1\]=inf.*finite"),
    ("percentiles-not-pair", {"percentiles": (5, 50, 95)}, ValueError, r"percentiles=\(5, 50, 95\).*pair"),
    ("percentiles-scalar", {"percentiles": 5}, ValueError, r"percentiles=5 .*pair"),
    ("vmin-above-vmax", {"vmin": 2, "vmax": 1}, ValueError, r"vmin=2(\.0)? .*vmax=1(\.0)?"),
    ("vmin-nan", {"vmin": float("nan")}, ValueError, r"vmin=nan .*finite"),
    ("vmax-inf", {"vmax": float("inf")}, ValueError, r"vmax=inf .*finite"),
    ("vmin-minus-inf", {"vmin": -np.inf, "vmax": 1.0}, ValueError, r"vmin=-inf .*finite"),
    ("vmax-np-nan", {"vmin": 0.0, "vmax": np.float32("nan")}, ValueError, r"vmax=(np\.float32\()?nan"),
    (
        "vmin-array-shape",
        {"vmin": np.array([0.0, 1.0])},
        ValueError,
        r"vmin/vmax have shapes \[\(2,\)\]; accepted with axis=None: .*broadcast to x.s shape \(3, 4\)",
    ),
    ("both-kinds-vmin", {"vmin": 0.0, "percentiles": (5, 95)}, ValueError, r"vmin/vmax.*percentiles.*not both"),
    ("both-kinds-vmax", {"vmax": 1.0, "percentiles": (5, 95)}, ValueError, r"vmin/vmax.*percentiles.*not both"),
    ("nan-256", {"nan": 256}, ValueError, r"nan=256 .*0\.\.255"),
    ("nan-negative", {"nan": -1}, ValueError, r"nan=-1 .*0\.\.255"),
    ("nan-float", {"nan": 1.5}, TypeError, r"nan=1\.5 .*int"),
    ("nan-integral-float", {"nan": 7.0}, TypeError, r"nan=7\.0 .*int"),
    ("nan-bool", {"nan": True}, TypeError, r"nan=True .*int"),
    ("nan-string", {"nan": "0"}, TypeError, r"nan='0' .*int"),
    ("axis-too-large", {"axis": 2, "percentiles": (5, 95)}, ValueError, r"axis 2 .*dimension 2"),
    ("axis-too-negative", {"axis": -3, "vmin": 0}, ValueError, r"axis -3 .*dimension 2"),
    ("axis-tuple-out-of-range", {"axis": (0, 5)}, ValueError, r"axis 5 .*dimension 2"),
    ("axis-repeated", {"axis": (1, -1), "percentiles": (5, 95)}, ValueError, r"repeated axis"),
    ("axis-float", {"axis": 1.0}, TypeError, r"axis=1\.0 "),
    ("method-unknown", {"method": "fast"}, ValueError, r"method='fast' .*'approx' or 'exact'"),
    ("method-case", {"method": "Exact"}, ValueError, r"method='Exact' .*'approx' or 'exact'"),
    ("method-none", {"method": None}, ValueError, r"method=None .*'approx' or 'exact'"),
    ("out-dtype", {"out": np.zeros((3, 4), dtype=np.float32)}, ValueError, r"out has dtype float32.*uint8"),
    ("out-int8", {"out": np.zeros((3, 4), dtype=np.int8)}, ValueError, r"out has dtype int8.*uint8"),
    ("out-shape", {"out": np.zeros((4, 3), dtype=np.uint8)}, ValueError, r"out has shape \(4, 3\).*\(3, 4\)"),
    ("out-flat", {"out": np.zeros(12, dtype=np.uint8)}, ValueError, r"out has shape \(12,\).*\(3, 4\)"),
    ("out-read-only", {"out": READ_ONLY_OUT}, ValueError, r"out is read-only"),
    ("out-list", {"out": [[0] * 4] * 3}, TypeError, r"out must be a numpy\.ndarray.*list"),
]

PERCENTILE_ERRORS = [
    ("q-above-100", {"q": 101}, ValueError, r"q=101 .*\[0, 100\].*101"),
    ("q-negative", {"q": -0.5}, ValueError, r"q=-0\.5 .*\[0, 100\]"),
    ("q-one-bad-in-list", {"q": [5, 50, 100.5]}, ValueError, r"q=\[5, 50, 100\.5\] .*\[100\.5\]"),
    ("q-2d", {"q": [[0, 10], [200, 50]]}, ValueError, r"\[200\.0\]"),
    ("q-nan", {"q": float("nan")}, ValueError, r"q=nan .*\[0, 100\]"),
    ("q-inf", {"q": [float("inf")]}, ValueError, r"q=\[inf\] .*\[0, 100\]"),
    ("q-string", {"q": "fifty"}, TypeError, r"q='fifty' "),
    ("q-fraction-confusion", {"q": [0.05, 95]}, None, None),  # valid: percent, not fraction
    ("axis-too-large", {"q": 50, "axis": 2}, ValueError, r"axis 2 .*dimension 2"),
    ("axis-repeated", {"q": 50, "axis": (0, 0)}, ValueError, r"repeated axis"),
    ("method-unknown", {"q": 50, "method": "linear"}, ValueError, r"method='linear' .*'approx' or 'exact'"),
]

BAD_INPUTS = [
    ("complex128", np.ones((3, 4), dtype=np.complex128), r"x has dtype complex128"),
    ("complex64", np.ones(5, dtype=np.complex64), r"x has dtype complex64"),
    ("complex-list", [[1 + 2j, 0j]], r"x has dtype complex128"),
    ("object", np.array([1.0, None], dtype=object), r"x has dtype object"),
    ("object-numbers", np.array([1.0, 2.0], dtype=object), r"x has dtype object"),
    ("str", np.array(["0.5", "1"]), r"x has dtype <U3"),
    ("str-list", ["a", "b"], r"x has dtype <U1"),
    ("bytes", np.array([b"ab"]), r"x has dtype \|S2"),
    ("datetime", np.array(["2024-01-01"], dtype="datetime64[D]"), r"x has dtype datetime64\[D\]"),
    ("timedelta", np.array([1, 2], dtype="timedelta64[s]"), r"x has dtype timedelta64\[s\]"),
    ("structured", np.zeros(3, dtype=[("a", "f4")]), r"x has dtype"),
    ("longdouble", np.ones(3, dtype=np.longdouble), r"x has dtype float128|x has dtype float96"),
]


def _params(table):
    return [pytest.param(*row[1:], id=row[0]) for row in table]


@pytest.mark.parametrize(("kwargs", "exc", "match"), _params(TO_UINT8_ERRORS))
def test_to_uint8_errors(impl, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        impl.to_uint8(X, **kwargs)


@pytest.mark.parametrize(("kwargs", "exc", "match"), _params(PERCENTILE_ERRORS))
def test_percentile_errors(impl, kwargs, exc, match):
    if exc is None:
        result = impl.percentile(X, **kwargs)
        assert result.shape == (2,) and result[0] < result[1]
        return
    with pytest.raises(exc, match=match):
        impl.percentile(X, **kwargs)


@pytest.mark.parametrize(("x", "match"), _params(BAD_INPUTS))
def test_bad_input_dtype_is_type_error(impl, x, match):
    if np.dtype(np.longdouble).itemsize <= 8 and np.asarray(x).dtype == np.longdouble:
        pytest.skip("longdouble is float64 on this platform")
    with pytest.raises(TypeError, match=match):
        impl.to_uint8(x)
    with pytest.raises(TypeError, match=match):
        impl.to_uint8(x, percentiles=(5, 95), method="exact")
    with pytest.raises(TypeError, match=match):
        impl.percentile(x, 50)


@pytest.mark.parametrize(
    "x",
    [np.zeros((0, 4)), np.array(0.5), np.zeros((3, 4), dtype=np.float32), np.ones((2, 2), dtype=bool)],
    ids=["empty", "0d", "float32", "bool"],
)
@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"percentiles": (5, 101)}, ValueError, r"percentiles=\(5, 101\)"),
        ({"vmin": 1, "vmax": 0}, ValueError, r"vmin=1(\.0)? .*vmax=0(\.0)?"),
        ({"vmin": 0, "percentiles": (5, 95)}, ValueError, r"not both"),
        ({"nan": 300}, ValueError, r"nan=300"),
        ({"method": "fastest"}, ValueError, r"method='fastest'"),
        ({"out": np.zeros(7, dtype=np.uint8)}, ValueError, r"out has shape \(7,\)"),
    ],
    ids=["percentiles", "vmin>vmax", "both", "nan", "method", "out"],
)
def test_errors_do_not_depend_on_the_data(impl, x, kwargs, exc, match):
    """Validation comes first: empty, 0-d, or data for which a fast path may take a shortcut."""
    with pytest.raises(exc, match=match):
        impl.to_uint8(x, **kwargs)


def test_axis_error_on_0d(impl):
    with pytest.raises(ValueError, match=r"axis 0 .*dimension 0"):
        impl.to_uint8(np.array(1.0), percentiles=(5, 95), axis=0)
    with pytest.raises(ValueError, match=r"axis 0 .*dimension 0"):
        impl.percentile(np.array(1.0), 50, axis=0)


def test_failed_call_leaves_out_untouched(impl):
    out = np.full((3, 4), 9, dtype=np.uint8)
    with pytest.raises(ValueError, match=re.escape("percentiles=(5, 101)")):
        impl.to_uint8(X, percentiles=(5, 101), out=out)
    np.testing.assert_array_equal(out, np.full((3, 4), 9))
