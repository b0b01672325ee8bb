"""The float32 levels of the run conversion (fastquant._kernels.convert) against the reference, at rounding edges.

Float32 input with an ordinary range is converted in float32 arithmetic, and blocks where an element comes within
the proved error bound of a rounding edge are redone in float64 (see ``_common.float32_edge``). These tests put
many elements on and next to the edges, where plain float32 arithmetic gets levels wrong.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastquant as fq
from fastquant import _plan, reference
from fastquant._kernels._common import float32_edge, float32_lane_edge

# (vmin, vmax): unit range, probabilities, a narrow range far from 0, a wide one, a negative and a narrow one
RANGES = [(-2.0, 2.0), (0.0, 1.0), (1000.3, 1003.7), (-3.0e4, 5.0e4), (-1.0e-3, -2.5e-4), (0.1, 0.1001)]


def _edge_heavy(rng, lo, hi, size):
    # float32 values within 40 ulps of every half-level edge lo + (k - 1/2) / scale, plus uniform values and
    # the specials
    scale = 255.0 / (hi - lo)
    centres = (lo + (np.arange(257) - 0.5) / scale).astype(np.float32)
    bits = centres.view(np.int32)[:, None] + rng.integers(-40, 41, size=(centres.size, 128), dtype=np.int32)
    specials = np.array([np.nan, np.inf, -np.inf, 3e38, -3e38, 0.0, -0.0, lo, hi], dtype=np.float32)
    uniform = rng.uniform(lo - (hi - lo), hi + (hi - lo), size).astype(np.float32)
    x = np.concatenate([bits.reshape(-1).view(np.float32), specials, uniform])
    return np.ascontiguousarray(np.resize(rng.permutation(x), size))


def _plain_float32(x, lo, hi):
    scale = np.float32(255.0 / (hi - lo))
    t = np.clip(np.nan_to_num((x - np.float32(lo)) * scale, nan=0.0), 0, 255)
    return np.rint(t).astype(np.uint8)


@pytest.mark.parametrize("lo,hi", RANGES)
def test_float32_levels_equal_the_reference_at_rounding_edges(lo, hi):
    rng = np.random.default_rng(7)
    x = _edge_heavy(rng, lo, hi, 1 << 20)
    assert float32_edge(x, lo, 1.0, 255.0 / (hi - lo), 0.0) > 0.4  # the float32 path is taken for this range
    with np.errstate(all="ignore"):
        plain = _plain_float32(x, lo, hi)
    expected = reference.to_uint8(x, vmin=lo, vmax=hi)
    assert np.count_nonzero(plain != expected) > 0  # float32 arithmetic alone is wrong here: the fallback matters
    with _plan.recording() as events:
        got = fq.to_uint8(x, vmin=lo, vmax=hi)
    assert ("convert", {"kernel": "runs", "colour": False}) in events
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    "dtype,lo,factor,scale,nan_level",
    [
        (np.float64, 0.0, 1.0, 255.0, 0.0),  # float64 input keeps float64 arithmetic
        (np.float32, 0.0, 1.0, 255.0, 7.0),  # a NaN level other than 0
        (np.float32, 0.0, 0.5, 255.0, 0.0),  # an extreme range (factor != 1)
        (np.float32, 1.0e31, 1.0, 1.0, 0.0),  # limits beyond the bound's domain
        (np.float32, 0.0, 1.0, np.inf, 0.0),  # lo == hi
        (np.float32, 1.0e6, 1.0, 255.0, 0.0),  # |lo| scale so large that the margin exceeds 0.05
        (np.float32, 3.7, 1.0, 255.0 / 1e-5, 0.0),  # a range narrow for its distance from 0: the same
    ],
)
def test_float32_path_is_off_where_the_bound_does_not_hold(dtype, lo, factor, scale, nan_level):
    assert float32_edge(np.zeros(4, dtype=dtype), lo, factor, scale, nan_level) == 0.0


def test_float32_path_far_from_zero_equals_the_reference():
    # |lo| scale near the 0.05 margin limit: many blocks fall back, the levels still match
    rng = np.random.default_rng(11)
    lo, hi = 2.0e4, 2.0e4 + 16.0
    x = _edge_heavy(rng, lo, hi, 1 << 20)
    assert 0.4 < float32_edge(x, lo, 1.0, 255.0 / (hi - lo), 0.0) < 0.49
    np.testing.assert_array_equal(fq.to_uint8(x, vmin=lo, vmax=hi), reference.to_uint8(x, vmin=lo, vmax=hi))


# --- per-group limits along rows (fastquant._kernels.groups.convert_rows) --------------------------------------


def test_float32_row_levels_equal_the_reference_at_rounding_edges():
    # 6144 columns, each with limits of its own (the ranges above, in turn): too many groups for the lane
    # kernels, so the per-column conversion runs row by row with per-element parameters in float32
    rows, per_range = 256, 1024
    rng = np.random.default_rng(12)
    x = np.empty((rows, len(RANGES) * per_range), dtype=np.float32)
    lo = np.empty(x.shape[1])
    hi = np.empty(x.shape[1])
    for r, (low, high) in enumerate(RANGES):
        x[:, r :: len(RANGES)] = _edge_heavy(rng, low, high, rows * per_range).reshape(rows, per_range)
        lo[r :: len(RANGES)], hi[r :: len(RANGES)] = low, high
    scale = 255.0 / (hi - lo)
    assert float32_lane_edge(x, lo, np.ones_like(lo), scale, 0.0) > 0.4  # the float32 path is taken
    with np.errstate(all="ignore"):
        plain = _plain_float32(x, lo, hi)
    expected = reference.to_uint8(x, vmin=lo, vmax=hi)
    assert np.count_nonzero(plain != expected) > 0
    with _plan.recording() as events:
        got = fq.to_uint8(x, vmin=lo, vmax=hi)
    assert ("convert", {"kernel": "rows", "colour": False}) in events
    np.testing.assert_array_equal(got, expected)


def test_float32_lane_edge_is_the_smallest_lane_edge():
    rng = np.random.default_rng(13)
    x = np.zeros(4, dtype=np.float32)
    lo = rng.uniform(-100.0, 100.0, 500)
    scale = 255.0 / rng.uniform(0.1, 100.0, 500)  # |lo| scale up to 2.55e5: margins up to 0.016
    ones = np.ones_like(lo)
    edges = [float32_edge(x, lo[j], 1.0, scale[j], 0.0) for j in range(lo.size)]
    assert 0.0 < min(edges) < max(edges)  # the lanes' edges differ: the smallest one must be the answer
    assert float32_lane_edge(x, lo, ones, scale, 0.0) == min(edges)
    # one lane outside the bound (lo == hi, an extreme range, NaN level, float64 input) turns the path off
    assert float32_lane_edge(x, lo, ones, np.where(np.arange(500) == 7, np.inf, scale), 0.0) == 0.0
    assert float32_lane_edge(x, lo, np.where(np.arange(500) == 7, 0.5, ones), scale, 0.0) == 0.0
    assert float32_lane_edge(x, lo, ones, scale, 3.0) == 0.0
    assert float32_lane_edge(x.astype(np.float64), lo, ones, scale, 0.0) == 0.0
