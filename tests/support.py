"""Helpers shared by the correctness tests (no pytest import, so benchmarks may use them too).

- expected values computed directly from the issue's rules with plain NumPy, independently of
  ``fastquant.reference``;
- comparison helpers with readable failure messages;
- :func:`force_path`, which pins the fast API to its NumPy or its Numba path.
"""

from __future__ import annotations

import dataclasses
import math
import sys

import numpy as np

import fastquant._plan

PATHS = ("numpy", "numba")
NEVER = sys.maxsize  # a NUMBA_MIN_SIZE no input reaches


def force_path(monkeypatch, path: str) -> None:
    """Make every call of the fast API take `path` ("numpy" or "numba") whatever the input size.

    `monkeypatch` is a ``pytest.MonkeyPatch``; the threshold is ``fastquant._plan.Tuning.numba_min_size``, set
    through the tuning seam and restored when the test ends.
    """
    if path not in PATHS:
        raise ValueError(path)
    lower(monkeypatch, numba_min_size=0 if path == "numba" else NEVER)


def lower(monkeypatch, **knobs) -> None:
    """Change engine knobs (fields of ``fastquant._plan.Tuning``) for the rest of a test (restored after it)."""
    monkeypatch.setattr(fastquant._plan, "_tuning", dataclasses.replace(fastquant._plan.current(), **knobs))


def value_dtype(dtype: np.dtype) -> np.dtype:
    """The issue's rule: float16 -> its exact float32 values; float32/64 as is; integers and bool -> float64."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f" and dtype.itemsize <= 4:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def axes_tuple(axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(sorted(a % ndim for a in axis))


def kept_shape(shape: tuple[int, ...], axis) -> tuple[int, ...]:
    axes = axes_tuple(axis, len(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def slices(x: np.ndarray, axis):
    """Yield ``(index into the kept axes, finite values of that slice as a 1-D array)``."""
    axes = axes_tuple(axis, x.ndim)
    kept = [i for i in range(x.ndim) if i not in axes]
    values = np.asarray(x).astype(value_dtype(np.asarray(x).dtype))
    for idx in np.ndindex(*[x.shape[i] for i in kept]):
        where = [slice(None)] * x.ndim
        for i, j in zip(kept, idx, strict=True):
            where[i] = j
        s = values[tuple(where)].ravel()
        yield idx, s[np.isfinite(s)]


def numpy_percentile(x, q, axis=None) -> np.ndarray:
    """``numpy.percentile(finite_values, numpy.asarray(q, dtype=numpy.float64))`` per slice, as the issue states.

    Shape: q's shape, then the kept axes. NaN for a slice without finite values.
    """
    x = np.asarray(x)
    q = np.asarray(q, dtype=np.float64)
    out = np.empty(q.shape + kept_shape(x.shape, axis), dtype=np.float64)
    for idx, finite in slices(x, axis):
        out[(Ellipsis,) + idx] = np.percentile(finite, q) if finite.size else np.nan
    return out


def order_statistic_bracket(x, q, axis=None) -> tuple[np.ndarray, np.ndarray]:
    """(s[floor(h)], s[ceil(h)]) per slice with s the sorted finite values and h = (n - 1) * q / 100.

    The exact (linear) percentile lies between them; so must any approximation that claims to pick or
    interpolate order statistics. h is computed in exact rational arithmetic.
    """
    x = np.asarray(x)
    q = np.asarray(q, dtype=np.float64)
    shape = q.shape + kept_shape(x.shape, axis)
    lower = np.full(shape, np.nan)
    upper = np.full(shape, np.nan)
    for idx, finite in slices(x, axis):
        if not finite.size:
            continue
        s = np.sort(finite).astype(np.float64)
        for qi in np.ndindex(*q.shape):
            h = (len(s) - 1) * float(q[qi]) / 100.0
            lower[qi + idx] = s[math.floor(h)]
            upper[qi + idx] = s[min(len(s) - 1, math.ceil(h))]
    return lower, upper


def assert_uint8_result(result, shape, context: str = "") -> None:
    """The output contract: a C-contiguous uint8 ndarray of the input's shape."""
    assert isinstance(result, np.ndarray), f"{context}: got {type(result)}"
    assert result.dtype == np.uint8, f"{context}: dtype {result.dtype}"
    assert result.shape == tuple(shape), f"{context}: shape {result.shape} != {tuple(shape)}"
    assert result.flags.c_contiguous, f"{context}: not C-contiguous"


def assert_identical(result: np.ndarray, expected: np.ndarray, context: str = "") -> None:
    """Bit-for-bit equality of two uint8 arrays, with a readable summary of the first mismatches."""
    if np.array_equal(result, expected):
        return
    diff = np.argwhere(result != expected)
    first = [(tuple(int(i) for i in d), int(result[tuple(d)]), int(expected[tuple(d)])) for d in diff[:5]]
    raise AssertionError(
        f"{context}: {len(diff)} of {result.size} levels differ; first (index, got, expected): {first}"
    )


def assert_within_one(result: np.ndarray, expected: np.ndarray, context: str = "") -> None:
    """|result - expected| <= 1 grey level everywhere."""
    err = np.abs(result.astype(np.int64) - expected.astype(np.int64))
    if err.size and err.max() > 1:
        worst = np.unravel_index(np.argmax(err), err.shape)
        raise AssertionError(
            f"{context}: max error {err.max()} grey levels at {tuple(int(i) for i in worst)} "
            f"(got {int(result[worst])}, exact {int(expected[worst])}); {int((err > 1).sum())} pixels off by > 1"
        )


APPROX_PERCENTILE_BOUND = 0.0
"""The error bound (in value) of ``percentile(method="approx")`` documented in its docstring: "within 0 of" the
exact result. Update together with the docstring."""


def assert_approx_percentile(result, x, q, axis, context: str = "") -> None:
    """``percentile(method="approx")`` contract: float64 of the exact result's shape, NaN exactly where a slice
    has no finite value, between the two order statistics the exact value interpolates (a bound any
    approximation that picks or interpolates order statistics meets), and within the documented bound.
    """
    exact = numpy_percentile(x, q, axis)
    assert isinstance(result, np.ndarray) and result.dtype == np.float64, context
    assert result.shape == exact.shape, f"{context}: shape {result.shape} != {exact.shape}"
    lower, upper = order_statistic_bracket(x, q, axis)
    empty = np.isnan(lower)
    np.testing.assert_array_equal(np.isnan(result), empty, err_msg=f"{context}: NaN exactly where no finite value")
    ok = ((lower <= result) & (result <= upper)) | empty
    assert np.all(ok), (
        f"{context}: approx outside [s[floor(h)], s[ceil(h)]]: {result[~ok][:5]} vs {lower[~ok][:5]}..{upper[~ok][:5]}"
    )
    if APPROX_PERCENTILE_BOUND == 0:
        np.testing.assert_array_equal(result, exact, err_msg=f"{context}: documented bound is 0")
    else:
        with np.errstate(invalid="ignore"):
            err = np.abs(result - exact)
        assert np.all((err <= APPROX_PERCENTILE_BOUND) | empty), f"{context}: max error {np.nanmax(err)}"
