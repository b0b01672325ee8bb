"""The lane-pattern counting kernels against NumPy: count_lanes (#{x < threshold} per lane) and the window counts
of convert_count_lanes (#finite and #{x < edge} per lane, with the same levels as convert_lanes), whatever the
part count, the counting step (whole steps of eight rows, remainders of fewer, a tail shorter than the pattern),
the threshold count (odd or even) and the byte order."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastquant._kernels.convert import convert_count_lanes, convert_lanes
from fastquant._kernels.count import count_lanes

# (groups, inner, rows per counting step): steps of 8 and 24 rows (the eight-row loops alone), 13 (eight rows
# and then five single ones) and 3 (single rows only)
CASES = [(21, 1, 8), (21, 1, 24), (3, 2, 13), (128, 1, 3), (1, 1, 8)]


def lane_data(case, parts, dtype=np.float32):
    groups, inner, rows = case
    rng = np.random.default_rng(abs(hash((case, parts, np.dtype(dtype).str))) % 2**32)
    lanes = math.lcm(groups * inner, 32)
    n = lanes * int(rng.integers(50, 120)) + int(rng.integers(0, lanes))  # a tail shorter than the pattern
    x = rng.standard_normal(n).astype(dtype)
    for special in (np.nan, np.inf, -np.inf):
        x[rng.integers(0, n, n // 100)] = special
    lane_groups = (np.arange(lanes) // inner) % groups
    return x, lanes, lane_groups, rows * lanes, rng


def below_by_numpy(x, thresholds):
    """counts[t, j] = #{x[i] < thresholds[t, j] : i % L == j} (L = thresholds.shape[1])."""
    lanes = thresholds.shape[1]
    lane = np.arange(x.size) % lanes
    return np.stack([np.bincount(lane, weights=x < row[lane], minlength=lanes) for row in thresholds]).astype(int)


@pytest.mark.parametrize("n_thresholds", [1, 2, 5, 6])
@pytest.mark.parametrize("parts", [1, 2, 3])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c)))
def test_count_lanes_is_numpy(case, parts, n_thresholds):
    x, lanes, lane_groups, step, rng = lane_data(case, parts)
    per_group = np.sort(rng.standard_normal((case[0], n_thresholds)).astype(np.float32), axis=1)
    per_group[:, 0] = np.inf  # +inf: every value but NaN and +inf counts
    thresholds = np.ascontiguousarray(per_group[lane_groups].T)
    counts = count_lanes(x, thresholds, parts, step).sum(axis=0)
    np.testing.assert_array_equal(counts, below_by_numpy(x, thresholds))


@pytest.mark.parametrize(
    ("dtype", "swapped"),
    [(np.float32, False), (np.float32, True), (np.float64, False)],  # byte-swapped words: float32 only
    ids=["float32", "float32-swapped", "float64"],
)
@pytest.mark.parametrize("parts", [1, 2])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c)))
def test_window_counts_of_convert_count_lanes_are_numpy(case, parts, dtype, swapped):
    x, lanes, lane_groups, step, rng = lane_data(case, parts, dtype)
    lo = rng.uniform(-1.5, -0.5, case[0])[lane_groups]
    hi = rng.uniform(0.5, 1.5, case[0])[lane_groups]
    scale = 255.0 / (hi - lo)
    params = (lo, np.ones(lanes), lo * scale, scale)
    edges = np.sort(rng.standard_normal((case[0], 4)), axis=1).astype(dtype)
    windows = np.ascontiguousarray(edges[lane_groups].T)
    data = x.byteswap().view(np.uint32) if swapped else x
    levels = np.empty(x.size, np.uint8)
    largest = np.finfo(dtype).max
    counts = convert_count_lanes(data, levels, *params, 0.0, largest, windows, parts, step).sum(axis=0)
    expected_levels = np.empty(x.size, np.uint8)
    convert_lanes(x, expected_levels, *params, 0.0, parts)
    np.testing.assert_array_equal(levels, expected_levels)
    finite = np.bincount(np.arange(x.size) % lanes, weights=np.isfinite(x), minlength=lanes).astype(int)
    np.testing.assert_array_equal(counts[0], finite)
    np.testing.assert_array_equal(counts[1:], below_by_numpy(x, windows))
