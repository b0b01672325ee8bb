"""center= and stretch=: the spec (``reference``) against hand-derived values and the stretch formulas, and the fast
paths (NumPy and engine, grey and colour, in memory and in blocks) equal to it bit for bit.

- center: limits ``c -+ max(c - lo, hi - c)``, given or data-derived, per slice;
- stretch: linear (and gamma 1.0) unchanged bit for bit; a non-linear stretch's level is its count of thresholds,
  within one level of ``rint(255 * S(t))`` and equal to it away from the thresholds; approx limits become exact.
"""

from __future__ import annotations

import numpy as np
import pytest
from arrays import SAMPLED_KNOBS, cases, sampled_cases
from support import lower

import fastquant
from fastquant import _levels, _plan, reference

CASES = [c for c in cases(seed=20261203) if c[1].size <= 1000][::4]
STRETCHES = ("sqrt", "log", "asinh", 0.4, 2.2)
FORMULAS = {
    "sqrt": np.sqrt,
    "log": lambda t: np.log(1000 * t + 1) / np.log(1001),
    "asinh": lambda t: np.arcsinh(t / 0.1) / np.arcsinh(1 / 0.1),
    0.4: lambda t: t**0.4,
    2.2: lambda t: t**2.2,
}


def test_center_limits_by_hand():
    x = np.array([-1.0, 0.0, 2.0, 3.0])
    lo, hi = reference.limits(x, percentiles=(0, 100), center=0.0)
    assert (lo.item(), hi.item()) == (-3.0, 3.0)
    lo, hi = reference.limits(x, center=0.0)  # the nominal [0, 1] of floats, centred
    assert (lo.item(), hi.item()) == (-1.0, 1.0)
    lo, hi = reference.limits(x, vmin=1.0, vmax=2.0, center=0.0)  # centre outside the limits
    assert (lo.item(), hi.item()) == (-2.0, 2.0)
    lo, hi = reference.limits(np.array([[1.0, 5.0], [np.nan, np.nan]]), axis=1, center=2.0, vmin=1.0)
    np.testing.assert_array_equal(lo.ravel(), [-1.0, np.nan])  # h = max(1, 3); an undefined slice stays NaN
    np.testing.assert_array_equal(hi.ravel(), [5.0, np.nan])
    levels = reference.to_uint8(np.array([-3.0, 0.0, 3.0, -1.5]), center=0.0, vmin=-1.0, vmax=3.0)
    assert levels.tolist() == [0, 128, 255, 64]  # the centre maps to the middle (127.5 rounds to even 128)


@pytest.mark.parametrize("stretch", STRETCHES)
def test_threshold_levels_follow_the_stretch(stretch):
    t = np.linspace(0, 1, 200_001)
    levels = reference.to_uint8(t, 0.0, 1.0, stretch=stretch).astype(int)
    direct = np.rint(255 * FORMULAS[stretch](t)).astype(int)
    assert np.abs(levels - direct).max() <= 1
    assert (levels == direct).mean() > 0.999  # they differ only next to a threshold (rounding of S^-1)
    assert np.all(np.diff(levels) >= 0) and levels[0] == 0 and levels[-1] == 255


def test_linear_and_gamma_one_are_todays_rule():
    x = np.random.default_rng(1).standard_normal(5000)
    base = reference.to_uint8(x, percentiles=(1, 99))
    for stretch in ("linear", 1.0, 1):
        np.testing.assert_array_equal(reference.to_uint8(x, percentiles=(1, 99), stretch=stretch), base)
        np.testing.assert_array_equal(fastquant.to_uint8(x, percentiles=(1, 99), stretch=stretch), base)


def test_thresholds_are_monotone_for_extreme_limits():
    for lo, hi in [(-1e308, 1e308), (1e16, 1e16 + 4), (0.0, 5e-324), (-1.0, -1.0)]:
        steps = _levels.thresholds(np.array(lo), np.array(hi), "log")
        assert np.all(np.isfinite(steps)) and np.all(np.diff(steps) >= 0), (lo, hi)
    x = np.array([-1e308, -1e300, 0.0, 1e300, 1e308])
    levels = reference.to_uint8(x, -1e308, 1e308, stretch="sqrt")
    assert levels.tolist() == [0, 180, 180, 180, 255]


@pytest.mark.parametrize(("cid", "x", "axes"), CASES, ids=[c[0] for c in CASES])
def test_fast_equals_reference(cid, x, axes, path):
    for axis in axes[:2]:
        for options in ({"percentiles": (5, 95)}, {"vmax": 0.5}, {}):
            for stretch, center in (("sqrt", None), ("linear", 0.25), (0.5, -1.0)):
                kwargs = dict(axis=axis, stretch=stretch, center=center, **options)
                expected = reference.to_uint8(x, **kwargs)
                np.testing.assert_array_equal(fastquant.to_uint8(x, **kwargs), expected, err_msg=f"{cid} {kwargs}")
                colours = fastquant.colorize(x, "RdBu", **kwargs)
                np.testing.assert_array_equal(colours, reference.colorize(x, "RdBu", **kwargs), err_msg=cid)


@pytest.mark.parametrize(("cid", "x", "axis"), sampled_cases(seed=8), ids=[c[0] for c in sampled_cases(seed=8)])
def test_sampled_paths(cid, x, axis, monkeypatch):
    """Large enough for the engine's sampled paths: a stretch takes the exact limits even in approx mode; a
    centre keeps the approx proof and is within one level of the exact centred levels."""
    lower(monkeypatch, numba_min_size=0, **SAMPLED_KNOBS)
    expected = reference.to_uint8(x, percentiles=(1, 99), axis=axis, stretch="log")
    for method in ("approx", "exact"):
        with _plan.recording() as trace:
            got = fastquant.to_uint8(x, percentiles=(1, 99), axis=axis, stretch="log", method=method)
        assert "thresholds" in {d.get("kernel") for e, d in trace if e == "convert"}, trace
        np.testing.assert_array_equal(got, expected, err_msg=f"{cid} {method}")
    exact = reference.to_uint8(x, percentiles=(1, 99), axis=axis, center=0.0)
    approx = fastquant.to_uint8(x, percentiles=(1, 99), axis=axis, center=0.0)
    assert np.abs(approx.astype(int) - exact).max() <= 1, cid
    lo, hi = fastquant.limits(x, percentiles=(1, 99), axis=axis, center=0.0)
    np.testing.assert_array_equal(fastquant.to_uint8(x, lo, hi, axis=axis), approx)  # the limits used
    np.testing.assert_allclose(np.nan_to_num(lo), np.nan_to_num(-hi))


@pytest.mark.parametrize(
    ("shape", "axis"), [((2048, 1024), None), ((1024, 1024, 3), (0, 1)), ((64, 128, 129), 0), ((700, 600), 1)]
)
def test_threshold_kernel_every_layout(shape, axis, monkeypatch):
    lower(monkeypatch, numba_min_size=0)
    rng = np.random.default_rng(12)
    x = rng.standard_normal(shape, dtype=np.float32)
    x.reshape(-1)[::101] = np.nan
    x.reshape(-1)[5:1000:7] = np.inf
    x.reshape(-1)[9:1000:7] = -np.inf
    if x.ndim == 3:
        x[1] = 0.5  # a constant slice
    for stretch in ("asinh", 3.0):
        kwargs = dict(percentiles=(3, 97), axis=axis, stretch=stretch, nan=7)
        got = fastquant.to_uint8(np.asfortranarray(x), **kwargs)
        np.testing.assert_array_equal(got, reference.to_uint8(x, **kwargs))
        colour = fastquant.colorize(x, "magma", percentiles=(3, 97), axis=axis, stretch=stretch, nan=(1, 2, 3, 4))
        expected = reference.colorize(x, "magma", percentiles=(3, 97), axis=axis, stretch=stretch, nan=(1, 2, 3, 4))
        np.testing.assert_array_equal(colour, expected)


def test_blockwise_and_out(monkeypatch):
    lower(monkeypatch, numba_min_size=0)

    class Lazy:  # an array-like read in blocks (shape, dtype, slicing)
        def __init__(self, a):
            self.a, self.shape, self.dtype = a, a.shape, a.dtype

        def __getitem__(self, index):
            return self.a[index]

    x = np.random.default_rng(4).standard_normal((40, 200, 300), dtype=np.float32)
    kwargs = dict(percentiles=(1, 99), axis=(1, 2), stretch="sqrt", center=0.0)
    expected = reference.to_uint8(x, **kwargs)
    np.testing.assert_array_equal(fastquant.to_uint8(Lazy(x), max_memory="128MiB", **kwargs), expected)
    out = np.zeros(x.shape[::-1], np.uint8).T
    assert fastquant.to_uint8(x, out=out, **kwargs) is out
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"stretch": "cube"}, ValueError, "stretch='cube' is not known"),
        ({"stretch": 0.0}, ValueError, "positive finite gamma"),
        ({"stretch": float("nan")}, ValueError, "positive finite gamma"),
        ({"stretch": True}, TypeError, "stretch=True"),
        ({"stretch": [2.0]}, TypeError, "stretch="),
        ({"center": float("inf")}, ValueError, "center=inf must be finite"),
        ({"center": "0"}, TypeError, "center='0'"),
    ],
)
def test_errors(kwargs, error, match):
    x = np.zeros(10)
    for fn in (fastquant.to_uint8, fastquant.colorize, reference.to_uint8):
        with pytest.raises(error, match=match):
            fn(x, **kwargs)


def test_compat_is_linear_only():
    with pytest.raises(ValueError, match="linear stretch"):
        fastquant.colorize(np.zeros(4), "viridis", stretch="sqrt", compat="matplotlib")


def test_compat_with_center_is_matplotlib():
    matplotlib = pytest.importorskip("matplotlib")
    from matplotlib.colors import Normalize

    x = np.random.default_rng(9).standard_normal((300, 200)).astype(np.float32) + 0.3
    x[::7, ::5] = np.nan
    lo, hi = fastquant.limits(x, percentiles=(2, 98), center=0.0)
    assert lo.item() == -hi.item()
    got = fastquant.colorize(x, "RdBu", percentiles=(2, 98), center=0.0, compat="matplotlib")
    expected = matplotlib.colormaps["RdBu"](Normalize(lo.item(), hi.item())(x), bytes=True)[..., :3]
    np.testing.assert_array_equal(got, expected)
