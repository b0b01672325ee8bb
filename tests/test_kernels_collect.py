"""The lane-pattern collecting kernel (fastquant._kernels.collect.collect_lanes) against NumPy: every member of
every bracket (as a multiset: the selection among them does not depend on their order), whatever the part count,
block length, bracket count or overlap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastquant._kernels.collect import collect_lanes

# (groups, inner, lane multiple, brackets): one bracket, two (the usual), three, eight (the widest coded flag) and
# nine (past the coded flags: membership is tested again)
CASES = [(1, 1, 1, 1), (3, 1, 1, 2), (21, 1, 1, 2), (5, 3, 2, 3), (7, 2, 1, 8), (4, 1, 3, 9), (2, 5, 1, 2)]


def members_by_numpy(x, low, high, lane_groups, n_groups):
    """members[g][k]: the values of group g in bracket k (low <= v < high of their lane)."""
    lanes = lane_groups.size
    lane = np.arange(x.size) % lanes
    out = [[None] * low.shape[0] for _ in range(n_groups)]
    for g in range(n_groups):
        for k in range(low.shape[0]):
            inside = (x >= low[k, lane]) & (x < high[k, lane]) & (lane_groups[lane] == g)
            out[g][k] = x[inside]
    return out


@pytest.mark.parametrize("parts", [1, 2, 3])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c)))
def test_collect_lanes_gathers_every_member(case, parts):
    groups, inner, multiple, n_brackets = case
    rng = np.random.default_rng(abs(hash((case, parts))) % 2**32)
    lanes = math.lcm(groups * inner, 32) * multiple
    lane_groups = ((np.arange(lanes) // inner) % groups).astype(np.int64)
    n = lanes * int(rng.integers(40, 90)) + int(rng.integers(0, lanes))  # a tail shorter than the pattern
    x = rng.standard_normal(n).astype(np.float32)
    x[rng.integers(0, n, n // 50)] = np.nan  # never a member
    low = rng.uniform(-2.0, 1.5, (n_brackets, lanes)).astype(np.float32)  # brackets overlap at random
    high = (low + rng.uniform(0.0, 1.0, (n_brackets, lanes))).astype(np.float32)
    expected = members_by_numpy(x, low, high, lane_groups, groups)
    # regions as large as the whole bracket, per part (a part's members go to its own row of dest)
    sizes = np.array([[expected[g][k].size for k in range(n_brackets)] for g in range(groups)], dtype=np.int64)
    base = np.zeros_like(sizes)
    base.reshape(-1)[1:] = np.cumsum(sizes.reshape(-1))[:-1]
    dest = np.full((parts, max(1, int(sizes.sum()))), -7.0, dtype=np.float32)
    block = lanes * int(rng.integers(1, 6))
    written = collect_lanes(x, low, high, lane_groups, base, dest, parts, block)
    assert written.sum(axis=0).tolist() == sizes.tolist()
    for g in range(groups):
        for k in range(n_brackets):
            got = np.concatenate([dest[c, base[g, k] : base[g, k] + written[c, g, k]] for c in range(parts)])
            np.testing.assert_array_equal(np.sort(got), np.sort(expected[g][k]))
