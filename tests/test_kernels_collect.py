"""The collecting kernels (fastquant._kernels.collect: collect_lanes, and scan_lanes and scan_runs, which count
too) against NumPy: every member of every bracket (as a multiset: the selection among them does not depend on
their order), whatever the part count, block length, bracket count or overlap; the counts below each threshold,
and regions capped (a full region keeps counting)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastquant._kernels import collect
from fastquant._kernels.collect import collect_lanes, scan_lanes, scan_runs

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


def assert_regions(written, dest, base, cap, sizes, expected) -> None:
    """Every pair from 1 on of every group wrote its members (a multiset, over the parts' rows of dest), except
    region (0, 1), the one made too small, which overflowed and kept counting."""
    parts, groups, n_pairs = written.shape
    assert written.sum(axis=0)[:, 1:].tolist() == sizes[:, 1:].tolist()
    for g in range(groups):
        for p in range(1, n_pairs):
            if np.any(written[:, g, p] > cap[g, p]):
                assert (g, p) == (0, 1), "only the small region overflows"
                continue
            got = np.concatenate([dest[c, base[g, p] : base[g, p] + written[c, g, p]] for c in range(parts)])
            np.testing.assert_array_equal(np.sort(got), np.sort(expected[g][p]))


# (groups, inner, lane multiple, brackets) for scan_lanes: none (pair 0 alone), one, two (the usual), three
SCAN_CASES = [(1, 1, 1, 2), (3, 1, 1, 0), (21, 1, 1, 2), (5, 3, 2, 3), (2, 5, 1, 1), (128, 1, 4, 2)]


@pytest.mark.parametrize("dtype", ["float32", "float64", ">f4"])
@pytest.mark.parametrize("parts", [1, 2, 3])
@pytest.mark.parametrize("case", SCAN_CASES, ids=lambda c: "x".join(map(str, c)))
def test_scan_lanes_counts_and_gathers_every_member(case, parts, dtype):
    groups, inner, multiple, n_brackets = case
    rng = np.random.default_rng(abs(hash((case, parts, dtype))) % 2**32)
    lanes = math.lcm(groups * inner, 32) * multiple
    lane_groups = ((np.arange(lanes) // inner) % groups).astype(np.int64)
    rows = int(rng.integers(40, 90))  # not a multiple of eight rows: partial groups of eight at block ends
    n = lanes * rows + int(rng.integers(0, lanes))  # and a tail shorter than the pattern
    x = rng.standard_normal(n).astype(np.float64 if dtype == "float64" else np.float32)
    x[rng.integers(0, n, n // 50)] = np.nan  # never a member, never below a threshold
    x[rng.integers(0, n, 5)] = -np.inf
    kernel_dtype = x.dtype
    low = rng.uniform(-2.0, 1.5, (n_brackets, lanes)).astype(kernel_dtype)  # brackets overlap at random
    high = (low + rng.uniform(0.0, 1.0, (n_brackets, lanes))).astype(kernel_dtype)
    pad = (-(2 + 2 * n_brackets)) % 6  # as bracket_thresholds: pair 0, the brackets, (inf, inf) to a multiple of 6
    thresholds = np.concatenate(
        [
            np.stack([np.full(lanes, np.finfo(kernel_dtype).min), np.full(lanes, np.inf)]),
            np.stack([low, high], axis=1).reshape(-1, lanes),
            np.full((pad, lanes), np.inf),
        ]
    ).astype(kernel_dtype)
    n_pairs = thresholds.shape[0] // 2
    expected = members_by_numpy(x, thresholds[0::2], thresholds[1::2], lane_groups, groups)
    sizes = np.array([[expected[g][p].size for p in range(n_pairs)] for g in range(groups)], dtype=np.int64)
    cap = sizes.copy()
    cap[:, 0] = 0  # pair 0 is counted, never collected
    if n_brackets:
        cap[0, 1] = sizes[0, 1] // 3  # one region too small in every part: it overflows, and keeps counting
    base = np.zeros_like(cap)
    base.reshape(-1)[1:] = np.cumsum((cap + 1).reshape(-1))[:-1]
    dest = np.full((parts, int((cap + 1).sum())), -7.0, dtype=kernel_dtype)
    block = 8 * lanes * int(rng.integers(1, 4))
    data = x.astype(">f4").view(np.uint32) if dtype == ">f4" else x
    counts, written = scan_lanes(data, thresholds, lane_groups, base, cap, dest, parts, block)
    lane = np.arange(n) % lanes
    n_thr = thresholds.shape[0]
    below = np.stack([np.bincount(lane, weights=x < thresholds[t, lane], minlength=lanes) for t in range(n_thr)])
    np.testing.assert_array_equal(counts.sum(axis=0), below)
    assert_regions(written, dest, base, cap, sizes, expected)


# (groups, inner run, brackets) for scan_runs; per group, the brackets are disjoint (each member's pair is found
# and it is stored there alone) or overlap (every member is copied to every pair that holds it)
RUNS_CASES = [(1, 5000, 2), (3, 700, 2), (4, 300, 7), (6, 1000, 1), (2, 64, 0)]


def _runs_thresholds(rng, groups, n_brackets, overlapping):
    """bracket_thresholds-shaped (G, T): pair 0 (lowest finite, inf), the brackets, (inf, inf) to a multiple of 6;
    the groups in `overlapping` get brackets that share values, the others disjoint ones (some empty)."""
    pad = (-(2 + 2 * n_brackets)) % 6
    rows = []
    for g in range(groups):
        if g in overlapping:
            low = rng.uniform(-2.0, 1.0, n_brackets)
            high = low + rng.uniform(0.3, 1.5, n_brackets)
            low[0], high[0] = min(low[0], low[-1] - 0.1), max(high[0], low[-1] + 0.5)  # holds the last's low edge
        else:
            edges = np.sort(rng.uniform(-2.5, 2.5, 2 * n_brackets))
            low, high = edges[0::2], edges[1::2]
            if n_brackets > 2:
                low[1] = high[1] = np.inf  # an empty bracket between others (as a batch of collect leaves it)
            order = rng.permutation(n_brackets)  # in no particular order
            low, high = low[order], high[order]
        pairs = np.stack([low, high], axis=1).reshape(-1)
        rows.append(np.concatenate([[np.finfo(np.float32).min, np.inf], pairs, np.full(pad, np.inf)]))
    return np.array(rows, dtype=np.float32)


@pytest.mark.parametrize("parts", [1, 2, 3])
@pytest.mark.parametrize("case", RUNS_CASES, ids=lambda c: "x".join(map(str, c)))
def test_scan_runs_counts_and_gathers_every_member(case, parts):
    groups, run, n_brackets = case
    rng = np.random.default_rng(abs(hash((case, parts))) % 2**32)
    outer = int(rng.integers(2, 5))
    n = outer * groups * run
    x = rng.standard_normal(n).astype(np.float32)
    x[rng.integers(0, n, n // 50)] = np.nan
    x[rng.integers(0, n, 5)] = -np.inf
    x[rng.integers(0, n, n // 20)] = np.float32(0.5)  # ties, some at a bracket edge below
    overlapping = set(range(1, groups, 2)) if n_brackets > 1 else set()
    thresholds = _runs_thresholds(rng, groups, n_brackets, overlapping)
    if n_brackets:
        thresholds[0, 2] = np.float32(0.5)  # a bracket's low edge on the tied value
    assert [collect._disjoint_pairs(thresholds[g]) for g in range(groups)] == [
        g not in overlapping for g in range(groups)
    ]  # both gathers run
    n_pairs = thresholds.shape[1] // 2
    group_of = (np.arange(n) // run) % groups
    sizes = np.zeros((groups, n_pairs), dtype=np.int64)
    expected = [[None] * n_pairs for _ in range(groups)]
    for g in range(groups):
        xs = x[group_of == g]
        for p in range(n_pairs):
            expected[g][p] = xs[(xs >= thresholds[g, 2 * p]) & (xs < thresholds[g, 2 * p + 1])]
            sizes[g, p] = expected[g][p].size
    cap = sizes.copy()
    cap[:, 0] = 0
    if n_brackets:
        cap[0, 1] = sizes[0, 1] // 3  # too small in every part: it overflows, and keeps counting
    base = np.zeros_like(cap)
    base.reshape(-1)[1:] = np.cumsum((cap + 1).reshape(-1))[:-1]
    dest = np.full((parts, int((cap + 1).sum())), -7.0, dtype=np.float32)
    block = 8 * int(rng.integers(12, 400))  # flag bytes are read as words of eight
    counts, written = scan_runs(x, 0, groups, run, thresholds, base, cap, dest, parts, block)
    below = np.stack([(x[group_of == g][:, None] < thresholds[g]).sum(axis=0) for g in range(groups)])
    np.testing.assert_array_equal(counts.sum(axis=0), below)
    assert_regions(written, dest, base, cap, sizes, expected)
