"""Fast API vs the spec over the array generator: every dtype, byte order, layout, contents, shape and axis.

- ``to_uint8``: bit for bit with ``fastquant.reference.to_uint8`` for ``method="exact"`` and for limits that
  are not percentiles (given vmin/vmax, the dtype's nominal range, finite min/max for one-sided limits);
  within +-1 grey level for ``method="approx"`` with percentile limits.
- ``percentile(method="exact")``: equal (``==``, NaN equal to NaN) to the reference and to
  ``numpy.percentile(finite_values, numpy.asarray(q, dtype=numpy.float64))`` computed here slice by slice.
- ``percentile(method="approx")``: between the two order statistics the exact value interpolates, and within
  its documented bound of the exact value.
- Approximate results are the same bytes on the NumPy and the Numba path.

Each test runs on both dispatch paths (``path`` fixture); any warning fails a test.
"""

from __future__ import annotations

import numpy as np
import pytest
from arrays import SAMPLED_KNOBS, cases, sampled_cases
from support import (
    assert_approx_percentile,
    assert_identical,
    assert_uint8_result,
    assert_within_one,
    force_path,
    kept_shape,
    lower,
    numpy_percentile,
    value_dtype,
)

import fastquant
import fastquant._plan
from fastquant import reference

pytestmark = pytest.mark.filterwarnings("error")

CASES = cases(seed=20240611)
IDS = [c[0] for c in CASES]

Q_FORMS = {
    "scalar": 50,
    "scalar-float": 12.5,
    "list": [0, 5, 50, 95, 100],
    "2d": [[0.0, 33.3], [99.9, 100.0]],
}


def _limit_values(x: np.ndarray) -> tuple[float, float]:
    """Two absolute limits a < b taken from the data, so that some elements equal a limit exactly."""
    values = x.astype(value_dtype(x.dtype)).astype(np.float64).ravel()
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return -0.5, 0.5
    a = float(np.quantile(finite, 0.3, method="lower"))
    b = float(np.quantile(finite, 0.8, method="higher"))
    if b <= a:
        b = a + max(1.0, abs(a) * 2.0**-20)
    return a, b


def limit_options(x: np.ndarray, axes: tuple) -> list[tuple[str, dict]]:
    """(label, keyword arguments) of the limit modes checked on `x`.

    Percentile limits are the expensive ones on the Numba path (radix passes over tiny inputs), so (5, 95)
    runs on three axis choices and the other pairs on one each.
    """
    a, b = _limit_values(x)
    axis = axes[1]  # the first real axis choice (per channel, per image, per row ...)
    options = [
        ("default", {}),
        ("default-axis", {"axis": axis}),
        ("fixed", {"vmin": a, "vmax": b}),
        ("fixed-equal", {"vmin": a, "vmax": a}),
        ("fixed-axis-nan", {"vmin": a, "vmax": b, "axis": axis, "nan": 7}),
        ("fixed-wide", {"vmin": -1e30, "vmax": 1e30}),
        ("p0-100", {"percentiles": (0, 100), "axis": axis}),
        ("p50-50", {"percentiles": (50, 50)}),
        ("p-odd-nan", {"percentiles": (2.5, 99.75), "axis": axes[-1], "nan": 255}),
    ]
    for axis in axes:
        options += [
            ("vmin-only", {"vmin": a, "axis": axis}),
            ("vmax-only", {"vmax": b, "axis": axis}),
        ]
    options += [("p5-95", {"percentiles": (5, 95), "axis": axis}) for axis in axes[:3]]
    return options


_reference_cache: dict[tuple, np.ndarray] = {}


def reference_to_uint8(case_id: str, x: np.ndarray, kwargs: dict) -> np.ndarray:
    """reference.to_uint8, computed once per case and options (both paths and methods compare to it)."""
    key = (case_id, repr(sorted(kwargs.items())))
    if key not in _reference_cache:
        _reference_cache[key] = reference.to_uint8(x, **kwargs)
    return _reference_cache[key]


@pytest.mark.parametrize(("case_id", "x", "axes"), CASES, ids=IDS)
def test_to_uint8_matches_reference(case_id, x, axes, path):
    for label, kwargs in limit_options(x, axes):
        expected = reference_to_uint8(case_id, x, kwargs)
        for method in ("exact", "approx"):
            context = f"{case_id} [{path}] method={method} {label} {kwargs}"
            result = fastquant.to_uint8(x, method=method, **kwargs)
            assert_uint8_result(result, x.shape, context)
            if method == "approx" and "percentiles" in kwargs:
                assert_within_one(result, expected, context)
            else:
                assert_identical(result, expected, context)


@pytest.mark.parametrize(("case_id", "x", "axes"), CASES, ids=IDS)
def test_to_uint8_out(case_id, x, axes, path):
    """`out` (C order, Fortran order or a strided view) is filled and returned; nothing else is written."""
    kwargs = {"percentiles": (5, 95), "axis": axes[1], "method": "exact", "nan": 3}
    expected = reference_to_uint8(case_id, x, {k: v for k, v in kwargs.items() if k != "method"})
    buffers = {
        "C": np.full(x.shape, 77, dtype=np.uint8),
        "F": np.full(x.shape, 77, dtype=np.uint8, order="F"),
    }
    big = np.full(tuple(2 * n + 1 for n in x.shape), 77, dtype=np.uint8)
    buffers["strided"] = big[(slice(1, None, 2),) * x.ndim + (Ellipsis,)]
    for name, out in buffers.items():
        context = f"{case_id} [{path}] out={name}"
        result = fastquant.to_uint8(x, out=out, **kwargs)
        assert result is out, context
        assert_identical(out, expected, context)
    gaps = big.copy()
    gaps[(slice(1, None, 2),) * x.ndim + (Ellipsis,)] = 77
    assert np.all(gaps == 77), f"{case_id} [{path}]: wrote outside the strided out view"


def percentile_calls(axes: tuple) -> list[tuple[object, str, object]]:
    """(axis, q label, q): a list of q on every axis; scalar and 2-D q on two of them."""
    calls = [(axis, "list", Q_FORMS["list"]) for axis in axes]
    calls += [(None, "scalar", Q_FORMS["scalar"]), (axes[1], "scalar-float", Q_FORMS["scalar-float"])]
    calls += [(axes[-1], "2d", Q_FORMS["2d"])]
    return calls


_numpy_cache: dict[tuple, np.ndarray] = {}


@pytest.mark.parametrize(("case_id", "x", "axes"), CASES, ids=IDS)
def test_percentile_exact_matches_numpy_and_reference(case_id, x, axes, path):
    for axis, q_name, q in percentile_calls(axes):
        context = f"{case_id} [{path}] axis={axis} q={q_name}"
        key = (case_id, repr(axis), q_name)
        if key not in _numpy_cache:
            _numpy_cache[key] = direct = numpy_percentile(x, q, axis)
            # The spec itself must satisfy the definition (checked once, not per path).
            np.testing.assert_array_equal(
                reference.percentile(x, q, axis=axis), direct, err_msg=f"reference {context}", strict=True
            )
        direct = _numpy_cache[key]
        result = fastquant.percentile(x, q, axis=axis, method="exact")
        assert isinstance(result, np.ndarray), context
        assert result.dtype == np.float64, context
        assert result.shape == np.shape(q) + kept_shape(x.shape, axis), context
        np.testing.assert_array_equal(result, direct, err_msg=context, strict=True)


@pytest.mark.parametrize(("case_id", "x", "axes"), CASES, ids=IDS)
def test_percentile_approx_within_bound(case_id, x, axes, path):
    for axis in (None, axes[-1]):
        q = Q_FORMS["list"]
        result = fastquant.percentile(x, q, axis=axis, method="approx")
        assert_approx_percentile(result, x, q, axis, f"{case_id} [{path}] axis={axis}")


@pytest.mark.parametrize(("case_id", "x", "axes"), CASES, ids=IDS)
def test_approx_same_bytes_on_both_paths(case_id, x, axes):
    """The issue: "Results, approximate ones included, are deterministic: ... which internal path ran"."""
    results = {}
    for path in ("numpy", "numba"):
        with pytest.MonkeyPatch.context() as mp:
            force_path(mp, path)
            results[path] = [
                fastquant.to_uint8(x, percentiles=(5, 95), axis=axis, method="approx") for axis in (None, axes[1])
            ] + [fastquant.percentile(x, [1, 50, 99], axis=axes[1], method="approx")]
    for a, b in zip(results["numpy"], results["numba"], strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape, case_id
        assert a.tobytes() == b.tobytes(), f"{case_id}: approx differs between the NumPy and Numba paths"


SAMPLED = sampled_cases(seed=20261201)


@pytest.mark.parametrize(("case_id", "x", "axis"), SAMPLED, ids=[c[0] for c in SAMPLED])
def test_sampled_paths_match_reference(case_id, x, axis, monkeypatch, numba_path):
    """At sizes that reach the sampled paths (knobs lowered): exact bytes and percentiles equal the reference,
    approx is within one level; the trace shows which algorithm ran, and the bracket step must have resolved
    the large-group layouts."""
    lower(monkeypatch, **SAMPLED_KNOBS)
    with fastquant._plan.recording() as trace:
        exact = fastquant.to_uint8(x, percentiles=(5, 95), axis=axis, method="exact")
        approx = fastquant.to_uint8(x, percentiles=(5, 95), axis=axis, method="approx")
        values = fastquant.percentile(x, [1, 50, 99], axis=axis)
    assert_identical(exact, reference.to_uint8(x, percentiles=(5, 95), axis=axis), case_id)
    assert_within_one(approx, exact, case_id)
    np.testing.assert_array_equal(values, reference.percentile(x, [1, 50, 99], axis=axis))
    chosen = {event for event, _ in trace if event in ("bracket", "sort", "radix")}
    if case_id.endswith("columns"):
        assert "sort" in chosen, trace
    else:
        assert ("bracket", {"resolved": True}) in trace, trace
    if not case_id.endswith("columns"):
        assert any(e == "approx" and d.get("proved") is not None for e, d in trace), trace


def test_single_rank_selection_at_the_ends():
    """fastquant._select.select (the NumPy path's and the radix regions' selection) takes the minimum and the
    maximum (percentiles 0 and 100: grid's default limits) by argmin/argmax, and every other rank by a partition;
    any mix of them, with ties, equals sorting."""
    from fastquant._select import select

    rng = np.random.default_rng(70)
    for trial in range(400):
        n = int(rng.integers(1, 80))
        values = np.round(rng.standard_normal(n), int(rng.integers(0, 3)))
        ranks = set(rng.integers(0, n, int(rng.integers(1, 6))).tolist())
        ranks |= {0} if trial % 2 else set()
        ranks |= {n - 1} if trial % 3 else set()
        ranks = sorted(ranks)
        assert select(values.copy(), ranks) == np.sort(values)[ranks].tolist()
