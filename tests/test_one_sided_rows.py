"""The fused one-sided pass for long rows (``fastquant._passes.OneSidedConvert``: per pixel across channels).

Its levels equal the spec's bit for bit, and the trace shows that it ran (or that it handed over to the pair of
passes where a range needs rescaling): finite minima or maxima over rows with NaN, infinities and signed zeros,
undefined pixels, pixels whose whole range is beyond the given limit, array limits with NaN entries (from
``fastquant.limits``), a nonzero NaN level, and a row count that is not a multiple of eight.
"""

from __future__ import annotations

import numpy as np
import pytest
from support import force_path

import fastquant
import fastquant._plan
from fastquant import reference

pytestmark = pytest.mark.filterwarnings("error")

SHAPE = (11, 96, 100)  # 9600 groups of 11 along axis 0: a period above the lanes kernels', rows of 11 (8 + 3)


def _values(dtype, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(SHAPE).astype(dtype)
    flat = x.reshape(SHAPE[0], -1)
    flat[:, :40] = np.nan  # undefined pixels
    flat[:, 40:80] += 10.0  # every value above vmax=1 (and below vmin=-1 for the other side: see below)
    flat[:, 80:120] -= 10.0
    flat[3, 120:400] = np.nan
    flat[5, 400:600] = np.inf
    flat[6, 600:800] = -np.inf
    flat[:, 800:900] = 0.0
    flat[2, 800:850] = -0.0
    return x


def _fused_ran(events) -> bool:
    return any(e == "convert" and d.get("kernel") == "one-sided rows" for e, d in events)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("side", ["vmax", "vmin"])
@pytest.mark.parametrize("nan", [0, 7])
def test_levels_equal_the_spec(monkeypatch, dtype, side, nan):
    force_path(monkeypatch, "numba")
    x = _values(dtype)
    kw = {side: 1.0 if side == "vmax" else -1.0}
    with fastquant._plan.recording() as events:
        got = fastquant.to_uint8(x, **kw, axis=0, nan=nan)
    assert _fused_ran(events)
    np.testing.assert_array_equal(got, reference.to_uint8(x, **kw, axis=0, nan=nan))


@pytest.mark.parametrize("side", ["vmax", "vmin"])
def test_array_limits_with_undefined_groups(monkeypatch, side):
    force_path(monkeypatch, "numba")
    x = _values(np.float32, seed=6)
    lo, hi = fastquant.limits(x, axis=0)  # NaN for the undefined pixels
    kw = {"vmax": hi + 0.5} if side == "vmax" else {"vmin": lo - 0.5}
    with fastquant._plan.recording() as events:
        got = fastquant.to_uint8(x, **kw, axis=0)
    assert _fused_ran(events)
    np.testing.assert_array_equal(got, reference.to_uint8(x, **kw, axis=0))


def test_rescaled_spans_take_the_pair_of_passes(monkeypatch):
    force_path(monkeypatch, "numba")
    x = np.random.default_rng(7).uniform(1.0, 2.0, SHAPE) * 1e-309  # subnormal spans: rescaled
    with fastquant._plan.recording() as events:
        got = fastquant.to_uint8(x, vmax=3e-309, axis=0)
    assert _fused_ran(events)
    assert any(e == "convert" and d.get("kernel") == "rows" for e, d in events)  # written again
    np.testing.assert_array_equal(got, reference.to_uint8(x, vmax=3e-309, axis=0))


@pytest.mark.parametrize("side", ["vmax", "vmin"])
def test_tiles_after_a_tile_with_undefined_groups(monkeypatch, side):
    # A part's tiles share their scratch: a tile with an empty range (state 1) but no undefined group, after one
    # with undefined groups, must not take the earlier tile's undefined groups as its own.
    force_path(monkeypatch, "numba")
    x = _values(np.float32, seed=8)
    flat = x.reshape(SHAPE[0], -1)
    for first in (1500, 5000):  # empty ranges in a later tile of the first part, for tiles of 1024 or 4096 groups
        flat[:, first : first + 10] += 10.0 if side == "vmax" else -10.0
    kw = {side: 1.0 if side == "vmax" else -1.0}
    with fastquant._plan.recording() as events:
        got = fastquant.to_uint8(x, **kw, axis=0)
    assert _fused_ran(events)
    np.testing.assert_array_equal(got, reference.to_uint8(x, **kw, axis=0))
