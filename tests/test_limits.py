"""Limits as values (issue 6, section 5): array limits, and ``fastquant.limits`` / ``fastquant.reference.limits``.

- ``vmin`` and ``vmax`` accept arrays that broadcast to the kept shape: ``x.shape`` with the `axis` axes set to 1
  (H x W x 3 with ``axis=(0, 1)``: a scalar, shape ``(3,)`` or ``(1, 1, 3)``), with the scalar checks per element
  (numeric, no strings or bools, finite, ``vmin <= vmax`` elementwise). The one non-finite value accepted is NaN as
  a pair (vmin and vmax both NaN for a group), which maps the group to `nan`. Another shape -> ValueError naming
  the shape and the accepted one.
- ``fastquant.limits(x, vmin=None, vmax=None, *, percentiles=None, axis=None, method="approx")`` returns the
  float64 ``(lo, hi)`` that ``to_uint8`` with the same arguments uses, keepdims-shaped, so that
  ``to_uint8(x, vmin=lo, vmax=hi, axis=axis)`` gives the same bytes (for method "approx" too: the proved estimates
  or the exact fallback). A group without finite values has NaN limits.
- ``fastquant.reference.limits`` has the same signature and gives the spec's limits, equal to
  ``fastquant.limits(..., method="exact")`` bit for bit.

Layouts: small ones (the NumPy path) and ones above 2**20 elements (the Numba path; ``large-global`` and
``large-hwc`` have groups of 2**22 elements, where approx samples), per channel, per column, float64, and a
channel without any finite value. Expected values come from per-group calls with scalar limits (the established
API) and from plain NumPy, never from the code under test alone. These tests fail until the API exists.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest
from support import assert_identical, assert_within_one, numpy_percentile

import fastquant
import fastquant.reference

pytestmark = pytest.mark.filterwarnings("error")

NAN_LEVEL = 7

# name: (shape, axis, dtype, index of a channel (last axis) without finite values, or None)
LAYOUTS = {
    "small-global": ((23, 37), None, "float32", None),
    "small-hwc": ((13, 19, 3), (0, 1), "float32", None),
    "small-chw": ((3, 7, 9), (1, 2), "float32", None),
    "small-columns": ((23, 37), 0, "float32", None),
    "small-float64-hwc": ((11, 7, 2), (0, 1), "float64", None),
    "small-no-finite-channel": ((13, 19, 4), (0, 1), "float32", 2),
    "large-global": ((2048, 2048), None, "float32", None),
    "large-hwc": ((2048, 2048, 3), (0, 1), "float32", None),
    "large-chw": ((3, 1024, 1024), (1, 2), "float32", None),
    "large-columns": ((2048, 1024), 0, "float32", None),
    "large-float64-hwc": ((1024, 1024, 2), (0, 1), "float64", None),
    "large-no-finite-channel": ((1024, 1024, 4), (0, 1), "float32", 2),
}
SMALL = [name for name in LAYOUTS if name.startswith("small")]
NO_FINITE = [name for name, spec in LAYOUTS.items() if spec[3] is not None]


def keepdims(shape: tuple[int, ...], axis) -> tuple[int, ...]:
    axes = range(len(shape)) if axis is None else ((axis,) if isinstance(axis, int) else axis)
    axes = {a % len(shape) for a in axes}
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


@functools.cache
def data(name: str) -> np.ndarray:
    """Seeded standard normal with 1 % NaN and 1 % +-inf (read-only, shared by the tests)."""
    shape, _, dtype, no_finite = LAYOUTS[name]
    rng = np.random.default_rng([20250612, list(LAYOUTS).index(name)])
    x = rng.standard_normal(shape, dtype=np.float32).astype(dtype)
    u = rng.random(shape)
    x[u < 0.01] = np.nan
    x[(u >= 0.01) & (u < 0.015)] = np.inf
    x[(u >= 0.015) & (u < 0.02)] = -np.inf
    if no_finite is not None:
        x[..., no_finite] = np.where(
            u[..., no_finite] < 0.5, np.nan, np.where(u[..., no_finite] < 0.75, np.inf, -np.inf)
        )
    x.setflags(write=False)
    return x


@functools.cache
def array_limits(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Seeded per-group limits, keepdims-shaped: lo in [-1, 0], hi = lo + [0.5, 2]."""
    shape, axis, _, _ = LAYOUTS[name]
    rng = np.random.default_rng([20250613, list(LAYOUTS).index(name)])
    kd = keepdims(shape, axis)
    lo = rng.uniform(-1, 0, kd)
    hi = lo + rng.uniform(0.5, 2, kd)
    lo.setflags(write=False)
    hi.setflags(write=False)
    return lo, hi


MODES = ("percentiles", "percentiles-0-100", "vmin-only", "vmax-only", "fixed", "nominal", "array", "array-vmin-only")


def mode_kwargs(name: str, mode: str) -> dict:
    lo, hi = array_limits(name)
    return {
        "percentiles": {"percentiles": (5, 95)},
        "percentiles-0-100": {"percentiles": (0, 100)},
        "vmin-only": {"vmin": -0.5},
        "vmax-only": {"vmax": 1.0},
        "fixed": {"vmin": -1.0, "vmax": 1.0},
        "nominal": {},
        "array": {"vmin": lo, "vmax": hi},
        "array-vmin-only": {"vmin": lo},
    }[mode]


def assert_same_bits(got, expected, context: str) -> None:
    """float64 arrays of the same shape, NaN at the same places, and the same bits elsewhere."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.dtype == np.float64, f"{context}: dtype {got.dtype}"
    assert got.shape == expected.shape, f"{context}: shape {got.shape} != {expected.shape}"
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(got), nan, err_msg=f"{context}: NaN places")
    same = got[~nan].view(np.uint64) == expected[~nan].view(np.uint64)
    assert same.all(), (
        f"{context}: {int((~same).sum())} limits differ: {got[~nan][~same][:5]} vs {expected[~nan][~same][:5]}"
    )


def per_group_levels(x: np.ndarray, axis, vmin=None, vmax=None, nan: int = NAN_LEVEL) -> np.ndarray:
    """The spec with array limits, built from scalar limits: reference.to_uint8 on each group's slice with that
    group's vmin/vmax (None: from the slice's data). A group whose vmin and vmax are both NaN -> `nan`."""
    kd = keepdims(x.shape, axis)
    lo = None if vmin is None else np.broadcast_to(np.asarray(vmin).astype(np.float64), kd)
    hi = None if vmax is None else np.broadcast_to(np.asarray(vmax).astype(np.float64), kd)
    key = (id(x), axis, nan, None if lo is None else lo.tobytes(), None if hi is None else hi.tobytes())
    if key in _per_group_cache:
        return _per_group_cache[key]
    out = np.empty(x.shape, dtype=np.uint8)
    for group in np.ndindex(*kd):
        where = tuple(slice(None) if n == 1 else g for g, n in zip(group, kd, strict=True))
        g_lo = None if lo is None else float(lo[group])
        g_hi = None if hi is None else float(hi[group])
        if g_lo is not None and g_hi is not None and np.isnan(g_lo) and np.isnan(g_hi):
            out[where] = nan
        else:
            out[where] = fastquant.reference.to_uint8(x[where], vmin=g_lo, vmax=g_hi, nan=nan)
    _per_group_cache[key] = out
    return out


_per_group_cache: dict = {}  # keyed by id(x): only for the cached, never freed arrays of data()


@functools.cache
def reference_levels(name: str, mode: str) -> np.ndarray:
    x, axis = data(name), LAYOUTS[name][1]
    if mode.startswith("array"):
        kwargs = mode_kwargs(name, mode)
        return per_group_levels(x, axis, kwargs.get("vmin"), kwargs.get("vmax"))
    return fastquant.reference.to_uint8(x, axis=axis, nan=NAN_LEVEL, **mode_kwargs(name, mode))


@functools.cache
def reference_limits(name: str, mode: str):
    x, axis = data(name), LAYOUTS[name][1]
    return fastquant.reference.limits(x, axis=axis, **mode_kwargs(name, mode))


# --- fastquant.limits: shape, dtype, round trip ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["approx", "exact"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(LAYOUTS))
def test_limits_are_float64_keepdims_pair(name, mode, method):
    x, axis = data(name), LAYOUTS[name][1]
    result = fastquant.limits(x, axis=axis, method=method, **mode_kwargs(name, mode))
    assert isinstance(result, tuple) and len(result) == 2, f"limits returned {type(result)}"
    lo, hi = result
    for side, value in (("lo", lo), ("hi", hi)):
        assert isinstance(value, np.ndarray) and value.dtype == np.float64, f"{side}: {type(value)} {value.dtype}"
        assert value.shape == keepdims(x.shape, axis), f"{side}: shape {value.shape}, want keepdims"
    defined = ~(np.isnan(lo) | np.isnan(hi))
    assert (lo[defined] <= hi[defined]).all(), f"{name} {mode}: lo > hi somewhere"
    np.testing.assert_array_equal(np.isnan(lo), np.isnan(hi), err_msg="NaN limits come in pairs")


@pytest.mark.parametrize("method", ["approx", "exact"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(LAYOUTS))
def test_to_uint8_with_the_returned_limits_gives_the_same_bytes(name, mode, method):
    x, axis = data(name), LAYOUTS[name][1]
    kwargs = mode_kwargs(name, mode)
    lo, hi = fastquant.limits(x, axis=axis, method=method, **kwargs)
    direct = fastquant.to_uint8(x, axis=axis, method=method, nan=NAN_LEVEL, **kwargs)
    again = fastquant.to_uint8(x, vmin=lo, vmax=hi, axis=axis, nan=NAN_LEVEL)
    context = f"{name}, {mode}, method={method!r}"
    assert_identical(again, direct, f"{context}: to_uint8(x, vmin=lo, vmax=hi) vs to_uint8(x, <same args>)")
    # keepdims limits broadcast against x: no axis needed to pass them back
    plain = fastquant.to_uint8(x, vmin=lo, vmax=hi, nan=NAN_LEVEL)
    assert_identical(plain, direct, f"{context}: to_uint8(x, vmin=lo, vmax=hi) without axis")
    if method == "exact" or "percentiles" not in kwargs:
        assert_identical(direct, reference_levels(name, mode), f"{context}: vs the spec")
    else:
        assert_within_one(direct, reference_levels(name, mode), f"{context}: vs the spec")


# --- fastquant.reference.limits: the spec --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(LAYOUTS))
def test_reference_limits_equal_exact_limits_bit_for_bit(name, mode):
    x, axis = data(name), LAYOUTS[name][1]
    ref_lo, ref_hi = reference_limits(name, mode)
    lo, hi = fastquant.limits(x, axis=axis, method="exact", **mode_kwargs(name, mode))
    assert_same_bits(lo, ref_lo, f"{name}, {mode}: lo")
    assert_same_bits(hi, ref_hi, f"{name}, {mode}: hi")


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_reference_limits_follow_the_spec(name):
    """Percentile limits are numpy.percentile of each group's finite values; one-sided ones the finite min/max
    (hi raised to lo where they cross); fixed and array ones are broadcast as given; no finite value -> NaN."""
    x, axis = data(name), LAYOUTS[name][1]
    kd = keepdims(x.shape, axis)
    lo, hi = reference_limits(name, "percentiles")
    assert_same_bits(lo, numpy_percentile(x, 5, axis).reshape(kd), f"{name}: lo = 5th percentile")
    assert_same_bits(hi, numpy_percentile(x, 95, axis).reshape(kd), f"{name}: hi = 95th percentile")

    values, finite = x.astype(np.float64), np.isfinite(x)
    has_finite = finite.any(axis=axis, keepdims=True)
    data_min = np.where(has_finite, np.min(values, axis=axis, keepdims=True, where=finite, initial=np.inf), np.nan)
    data_max = np.where(has_finite, np.max(values, axis=axis, keepdims=True, where=finite, initial=-np.inf), np.nan)
    # One side from the data, the other given: the upper limit is raised to the lower one where they cross, and a
    # group without finite values has NaN for both (a NaN pair, which to_uint8 accepts back).
    lo, hi = reference_limits(name, "vmax-only")
    assert_same_bits(lo, data_min.reshape(kd), f"{name}: vmax=1, lo = finite minimum")
    assert_same_bits(hi, np.where(has_finite, np.maximum(data_min, 1.0), np.nan).reshape(kd), f"{name}: vmax=1, hi")
    lo, hi = reference_limits(name, "vmin-only")
    assert_same_bits(lo, np.where(has_finite, -0.5, np.nan).reshape(kd), f"{name}: vmin=-0.5, lo")
    assert_same_bits(hi, np.where(has_finite, np.maximum(data_max, -0.5), np.nan).reshape(kd), f"{name}: vmin=-0.5, hi")

    lo, hi = reference_limits(name, "fixed")
    assert_same_bits(lo, np.full(kd, -1.0), f"{name}: fixed lo")
    assert_same_bits(hi, np.full(kd, 1.0), f"{name}: fixed hi")
    lo, hi = reference_limits(name, "nominal")
    assert_same_bits(lo, np.zeros(kd), f"{name}: nominal lo (floats: [0, 1])")
    assert_same_bits(hi, np.ones(kd), f"{name}: nominal hi")
    lo, hi = reference_limits(name, "array")
    assert_same_bits(lo, array_limits(name)[0], f"{name}: array lo")
    assert_same_bits(hi, array_limits(name)[1], f"{name}: array hi")


def test_reference_limits_signature_and_nominal_integer_limits():
    x = np.arange(12, dtype=np.uint8).reshape(3, 4)
    lo, hi = fastquant.reference.limits(x)
    assert_same_bits(lo, np.zeros((1, 1)), "uint8 nominal lo")
    assert_same_bits(hi, np.full((1, 1), 255.0), "uint8 nominal hi")
    lo, hi = fastquant.reference.limits(x, 2, None, axis=1, method="exact")  # vmin, vmax positional
    assert_same_bits(lo, np.full((3, 1), 2.0), "vmin=2 per row")
    assert_same_bits(hi, np.array([[3.0], [7.0], [11.0]]), "row maxima")
    lo, hi = fastquant.limits(x, 2, None, axis=1)
    assert_same_bits(hi, np.array([[3.0], [7.0], [11.0]]), "row maxima (fast)")
    with pytest.raises(TypeError):
        fastquant.limits(x, None, None, (5, 95))  # percentiles is keyword-only
    with pytest.raises(TypeError):
        fastquant.reference.limits(x, None, None, (5, 95))


# --- a group without finite values -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["approx", "exact"])
@pytest.mark.parametrize("mode", ["percentiles", "vmin-only", "vmax-only"])
@pytest.mark.parametrize("name", NO_FINITE)
def test_group_without_finite_values_has_nan_limits_that_map_back_to_nan(name, mode, method):
    x, axis = data(name), LAYOUTS[name][1]
    channel = LAYOUTS[name][3]
    lo, hi = fastquant.limits(x, axis=axis, method=method, **mode_kwargs(name, mode))
    expected_nan = np.zeros(lo.shape, dtype=bool)
    expected_nan[..., channel] = True
    np.testing.assert_array_equal(np.isnan(lo), expected_nan, err_msg=f"{name}, {mode}: lo NaN only for the channel")
    np.testing.assert_array_equal(np.isnan(hi), expected_nan, err_msg=f"{name}, {mode}: hi NaN only for the channel")
    levels = fastquant.to_uint8(x, vmin=lo, vmax=hi, axis=axis, nan=NAN_LEVEL)
    assert (levels[..., channel] == NAN_LEVEL).all(), "NaN limits map the group (its +-inf too) to `nan`"
    assert_identical(levels, fastquant.to_uint8(x, axis=axis, method=method, nan=NAN_LEVEL, **mode_kwargs(name, mode)))


# --- array limits --------------------------------------------------------------------------------------------------


def accepted_forms(name: str) -> dict[str, tuple]:
    """(vmin, vmax) in every form that broadcasts to the kept shape: keepdims, squeezed where that still broadcasts,
    nested lists, a scalar for one side, float32 and integer arrays."""
    lo, hi = array_limits(name)
    forms = {
        "keepdims": (lo, hi),
        "lists": (lo.tolist(), hi.tolist()),
        "float32": (lo.astype(np.float32), hi.astype(np.float32)),
    }
    squeezed = lo.reshape([n for n in lo.shape if n != 1] or [1])
    try:
        np.broadcast_to(squeezed, lo.shape)
        forms["squeezed"] = (squeezed, hi.reshape(squeezed.shape))
    except ValueError:
        pass
    forms["scalar-vmin"] = (-1.5, hi)  # every hi is >= -0.5
    forms["scalar-vmax"] = (lo, 1.5)
    forms["integers"] = (np.floor(lo).astype(np.int64), np.ceil(hi).astype(np.int16))
    return forms


FORMS = ("keepdims", "lists", "float32", "squeezed", "scalar-vmin", "scalar-vmax", "integers")


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", list(LAYOUTS))
def test_array_limits_equal_per_group_scalar_limits(name, form):
    forms = accepted_forms(name)
    if form not in forms:
        pytest.skip(f"{name}: the squeezed shape does not broadcast to the kept shape")
    x, axis = data(name), LAYOUTS[name][1]
    vmin, vmax = forms[form]
    expected = per_group_levels(x, axis, vmin, vmax)
    for api in apis(name):
        got = api.to_uint8(x, vmin=vmin, vmax=vmax, axis=axis, nan=NAN_LEVEL)
        assert_identical(got, expected, f"{api.__name__}.to_uint8, {name}, {form} limits")
    lo, hi = fastquant.limits(x, vmin=vmin, vmax=vmax, axis=axis)
    kd = keepdims(x.shape, axis)
    assert_same_bits(lo, np.broadcast_to(np.asarray(vmin).astype(np.float64), kd), f"{form}: lo as given")
    assert_same_bits(hi, np.broadcast_to(np.asarray(vmax).astype(np.float64), kd), f"{form}: hi as given")


def apis(name: str):
    """The fast API, and on small layouts the reference too (the spec's array limits; it is slow on large ones)."""
    return (fastquant, fastquant.reference) if name in SMALL else (fastquant,)


@pytest.mark.parametrize("side", ["vmin", "vmax"])
@pytest.mark.parametrize("name", list(LAYOUTS))
def test_one_array_limit_with_the_other_from_the_data(name, side):
    x, axis = data(name), LAYOUTS[name][1]
    lo, hi = array_limits(name)
    given = {"vmin": lo} if side == "vmin" else {"vmax": hi}
    expected = per_group_levels(x, axis, **given)
    for api in apis(name):
        assert_identical(api.to_uint8(x, axis=axis, nan=NAN_LEVEL, **given), expected, f"{api.__name__}, {side} array")


@pytest.mark.parametrize("name", ["small-hwc", "large-hwc", "small-columns", "large-columns"])
def test_nan_pair_maps_the_group_to_nan(name):
    x, axis = data(name), LAYOUTS[name][1]
    lo, hi = (a.copy() for a in array_limits(name))
    flat_lo, flat_hi = lo.reshape(-1), hi.reshape(-1)
    flat_lo[1::2] = np.nan  # every other group: a NaN pair
    flat_hi[1::2] = np.nan
    expected = per_group_levels(x, axis, lo, hi)
    for api in apis(name):
        assert_identical(api.to_uint8(x, vmin=lo, vmax=hi, axis=axis, nan=NAN_LEVEL), expected, f"{api.__name__}")


# --- array limits: errors --------------------------------------------------------------------------------------

ERROR_X = {"small": (13, 19, 3), "numba": (512, 1024, 3)}  # per channel: axis=(0, 1), kept shape (1, 1, 3)


def bad_limits():
    ok = np.array([0.0, 0.1, 0.2])
    top = np.array([1.0, 1.1, 1.2])
    return [
        # (id, kwargs, axis, exception, regex)
        ("shape-4", {"vmin": np.zeros(4), "vmax": 1.0}, (0, 1), ValueError, r"\(4,\).*\(1, 1, 3\)"),
        ("shape-3x1", {"vmin": np.zeros((3, 1)), "vmax": 1.0}, (0, 1), ValueError, r"\(3, 1\).*\(1, 1, 3\)"),
        ("shape-full", {"vmin": np.zeros((13, 19, 3)), "vmax": 1.0}, (0, 1), ValueError, r"vmin"),
        ("axis-none", {"vmin": np.zeros(4), "vmax": top}, None, ValueError, r"\(4,\).*broadcast"),
        ("axis-other", {"vmin": ok, "vmax": top}, (1, 2), ValueError, r"\(3,\)"),
        ("vmax-shape", {"vmin": ok, "vmax": np.ones(2)}, (0, 1), ValueError, r"vmax.*\(2,\)"),
        ("vmin-above-vmax", {"vmin": ok, "vmax": np.array([1.0, 0.05, 1.2])}, (0, 1), ValueError, r"vmin.*vmax"),
        ("vmin-above-scalar-vmax", {"vmin": ok, "vmax": 0.15}, (0, 1), ValueError, r"vmin.*vmax"),
        ("nan-unpaired", {"vmin": np.array([0.0, np.nan, 0.2]), "vmax": top}, (0, 1), ValueError, r"vmin.*finite|NaN"),
        ("nan-one-sided", {"vmin": np.array([0.0, np.nan, 0.2])}, (0, 1), ValueError, r"vmin"),
        (
            "nan-crossed",
            {"vmin": np.array([np.nan, 0.1, 0.2]), "vmax": np.array([1.0, np.nan, 1.2])},
            (0, 1),
            ValueError,
            r"vmin|vmax",
        ),
        ("inf", {"vmin": np.array([0.0, -np.inf, 0.2]), "vmax": top}, (0, 1), ValueError, r"vmin.*finite"),
        (
            "inf-pair",
            {"vmin": np.array([0.0, -np.inf, 0.2]), "vmax": np.array([1.0, np.inf, 1.2])},
            (0, 1),
            ValueError,
            r"finite",
        ),
        ("str-array", {"vmin": np.array(["0", "0", "0"]), "vmax": top}, (0, 1), TypeError, r"vmin"),
        ("str-in-list", {"vmin": [0.0, "0.1", 0.2], "vmax": top}, (0, 1), TypeError, r"vmin"),
        ("bytes-array", {"vmin": ok, "vmax": np.array([b"1", b"1", b"1"])}, (0, 1), TypeError, r"vmax"),
        ("bool-array", {"vmin": np.array([False, False, True]), "vmax": top}, (0, 1), TypeError, r"vmin"),
        ("complex-array", {"vmin": ok + 0j, "vmax": top}, (0, 1), TypeError, r"vmin"),
        ("object-array", {"vmin": np.array([0.0, None, 0.2], dtype=object), "vmax": top}, (0, 1), TypeError, r"vmin"),
        ("with-percentiles", {"vmin": ok, "percentiles": (5, 95)}, (0, 1), ValueError, r"not both"),
    ]


BAD = bad_limits()


CALLS = {
    "to_uint8": lambda x, **kw: fastquant.to_uint8(x, **kw),
    "reference.to_uint8": lambda x, **kw: fastquant.reference.to_uint8(x, **kw),
    "limits": lambda x, **kw: fastquant.limits(x, **kw),
    "reference.limits": lambda x, **kw: fastquant.reference.limits(x, **kw),
}


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("size", list(ERROR_X))
@pytest.mark.parametrize(("kwargs", "axis", "error", "match"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_array_limits_are_rejected(call, size, kwargs, axis, error, match):
    x = np.random.default_rng(20250614).standard_normal(ERROR_X[size], dtype=np.float32)
    with pytest.raises(error, match=match):
        CALLS[call](x, axis=axis, **kwargs)


def test_bad_shape_message_names_the_shape_and_the_accepted_ones():
    x = np.zeros((13, 19, 3), dtype=np.float32)
    with pytest.raises(ValueError) as info:
        fastquant.to_uint8(x, vmin=np.zeros(4), vmax=1.0, axis=(0, 1))
    message = str(info.value)
    assert "vmin" in message and "(4,)" in message, message
    assert "(1, 1, 3)" in message, f"the accepted (kept) shape is not named: {message}"
    assert re.search(r"accepted|broadcast", message), message


@pytest.mark.parametrize("name", SMALL)
def test_limits_validation_matches_to_uint8(name):
    x, axis = data(name), LAYOUTS[name][1]
    for kwargs, error in (
        ({"vmin": 0.0, "percentiles": (5, 95)}, ValueError),
        ({"percentiles": (95, 5)}, ValueError),
        ({"vmin": 2.0, "vmax": 1.0}, ValueError),
        ({"vmin": "0.5"}, TypeError),
        ({"method": "fast", "percentiles": (5, 95)}, ValueError),
    ):
        for fn in (fastquant.limits, fastquant.reference.limits):
            with pytest.raises(error):
                fn(x, axis=axis, **kwargs)
    with pytest.raises(ValueError, match="axis"):
        fastquant.limits(x, percentiles=(5, 95), axis=5)
