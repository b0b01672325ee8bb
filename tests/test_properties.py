"""Hypothesis property tests: the fast API equals the reference on arbitrary small arrays.

Arrays of float16/32/64 (either byte order) with NaN, +-inf, subnormals and signed zeros, and of integers and
bool; random shapes (0-d and empty included), axes, percentiles, q and limits. Both dispatch paths. The
profile (conftest) is derandomized and has no deadline.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from support import (
    PATHS,
    assert_approx_percentile,
    assert_identical,
    assert_within_one,
    force_path,
    numpy_percentile,
)

import fastquant
from fastquant import reference

pytestmark = pytest.mark.filterwarnings("error")

# Mostly non-empty arrays of 1-3 dimensions (0-d input never reaches the Numba path); 0-d and empty 1 in 8.
shapes = st.integers(0, 7).flatmap(
    lambda k: (
        hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=2)
        if k == 0
        else hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=8)
    )
)
float_dtypes = hnp.floating_dtypes(sizes=(16, 32, 64), endianness="?")
int_dtypes = st.one_of(
    hnp.integer_dtypes(endianness="?"), hnp.unsigned_integer_dtypes(endianness="?"), hnp.boolean_dtypes()
)
SPECIALS = st.sampled_from([0.0, -0.0, float("nan"), float("inf"), float("-inf")])


def _magnitudes(low: float, high: float):
    """Floats with low <= |v| <= high, either sign."""
    return st.tuples(st.floats(low, high), st.booleans()).map(lambda t: -t[0] if t[1] else t[0])


# Known spec-level holes are kept out of these properties and tested on their own (test_semantics:
# test_extreme_float64_ranges): 255 / (hi - lo) overflows float64 when hi - lo < ~1.4e-306 or
# hi - lo > ~1.8e308, and NumPy's float32 interpolation overflows when b - a > ~3.4e38.
ELEMENTS = {
    2: st.one_of(SPECIALS, st.floats(width=16, allow_nan=False, allow_infinity=False)),
    4: st.one_of(SPECIALS, _magnitudes(2.0**-149, 1e38).map(np.float32).map(float)),
    8: st.one_of(SPECIALS, _magnitudes(1e-280, 1e300)),
}


@st.composite
def float_arrays(draw, dtypes=float_dtypes):
    """Float arrays (any byte order) with NaN, +-inf, signed zeros, subnormals (float16/32) and ties."""
    dtype = draw(dtypes)
    shape = draw(shapes)
    elements = ELEMENTS[dtype.itemsize]
    if draw(st.booleans()):  # few distinct values: ties, and limits equal to elements
        elements = st.sampled_from(draw(st.lists(elements, min_size=1, max_size=4)))
    return draw(hnp.arrays(dtype, shape, elements=elements))


@st.composite
def axes(draw, ndim: int):
    if ndim == 0 or draw(st.booleans()):
        return None
    chosen = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim))
    if len(chosen) == 1 and draw(st.booleans()):
        return chosen[0] - ndim * draw(st.integers(0, 1))  # an int, possibly negative
    return tuple(chosen)


percent = st.floats(0, 100, allow_nan=False)
percentile_pairs = st.tuples(percent, percent).map(sorted).map(tuple)
q_values = st.one_of(percent, st.lists(percent, min_size=1, max_size=5))
finite64 = st.one_of(st.just(0.0), _magnitudes(1e-280, 1e30))


@st.composite
def limit_kwargs(draw, x: np.ndarray, kind: str):
    """Limits of the given kind; absolute ones often equal to elements of `x` (ties with the limits, and limits
    inside the data's range rather than far outside it)."""
    values = np.asarray(x, dtype=np.float64).ravel()
    finite = values[np.isfinite(values)]
    limit = finite64
    if finite.size and np.all(np.abs(finite[finite != 0]) >= 1e-280):  # keep clear of the known hole
        limit = st.one_of(finite64, st.sampled_from(finite.tolist()))
    if kind == "both":
        a, b = sorted(draw(st.tuples(limit, limit)))
        return {"vmin": a, "vmax": b}
    if kind == "vmin":
        return {"vmin": draw(limit)}
    if kind == "vmax":
        return {"vmax": draw(limit)}
    if kind == "percentiles":
        return {"percentiles": draw(percentile_pairs)}
    return {}


LIMIT_KINDS = ("none", "both", "vmin", "vmax", "percentiles")
any_arrays = st.one_of(float_arrays(), float_arrays(), hnp.arrays(int_dtypes, shapes))  # 2/3 floats


@pytest.mark.parametrize("kind", LIMIT_KINDS)
@pytest.mark.parametrize("path", PATHS)
@given(data=st.data(), x=any_arrays)
def test_to_uint8_matches_reference(path, kind, data, x):
    axis = data.draw(axes(x.ndim), label="axis")
    kwargs = data.draw(limit_kwargs(x, kind), label="limits")
    nan = data.draw(st.integers(0, 255), label="nan")
    expected = reference.to_uint8(x, axis=axis, nan=nan, **kwargs)
    with pytest.MonkeyPatch.context() as mp:
        force_path(mp, path)
        exact = fastquant.to_uint8(x, axis=axis, nan=nan, method="exact", **kwargs)
        approx = fastquant.to_uint8(x, axis=axis, nan=nan, method="approx", **kwargs)
    assert exact.dtype == np.uint8 and exact.shape == x.shape and exact.flags.c_contiguous
    assert_identical(exact, expected, "exact")
    if "percentiles" in kwargs:
        assert_within_one(approx, expected, "approx")
    else:
        assert_identical(approx, expected, "approx, limits not from percentiles")


@pytest.mark.parametrize("path", PATHS)
@given(data=st.data(), x=any_arrays, q=q_values)
def test_percentile_matches_numpy(path, data, x, q):
    axis = data.draw(axes(x.ndim), label="axis")
    direct = numpy_percentile(x, q, axis)
    np.testing.assert_array_equal(reference.percentile(x, q, axis=axis), direct, strict=True)
    with pytest.MonkeyPatch.context() as mp:
        force_path(mp, path)
        result = fastquant.percentile(x, q, axis=axis, method="exact")
        approx = fastquant.percentile(x, q, axis=axis, method="approx")
    np.testing.assert_array_equal(result, direct, strict=True)
    assert_approx_percentile(approx, x, q, axis, "approx")


@given(x=float_arrays(hnp.floating_dtypes(sizes=(32, 64))), pair=percentile_pairs)
def test_approx_same_on_both_paths(x, pair):
    assume(x.ndim > 0)
    results = []
    for path in PATHS:
        with pytest.MonkeyPatch.context() as mp:
            force_path(mp, path)
            results.append(
                (
                    fastquant.to_uint8(x, percentiles=pair, axis=-1, method="approx").tobytes(),
                    fastquant.percentile(x, list(pair), axis=-1, method="approx").tobytes(),
                )
            )
    assert results[0] == results[1]


@given(x=float_arrays(hnp.floating_dtypes(sizes=(32, 64))), lo=finite64, hi=finite64)
def test_monotone_in_x_with_fixed_limits(x, lo, hi):
    """A property the spec implies: with fixed limits the levels never decrease as x increases."""
    lo, hi = min(lo, hi), max(lo, hi)
    with pytest.MonkeyPatch.context() as mp:
        force_path(mp, "numba")
        levels = fastquant.to_uint8(x, vmin=lo, vmax=hi, nan=0)
    values = x.astype(np.float64).ravel()
    order = np.argsort(values, kind="stable")
    finite_or_inf = ~np.isnan(values[order])
    ranked = levels.ravel()[order][finite_or_inf]
    assert np.all(np.diff(ranked.astype(np.int64)) >= 0)
