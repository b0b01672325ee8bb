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


def _run_members(x, group_of, thresholds):
    """NumPy's members of every pair of every group: sizes (G, P) and expected[g][p] (the values, in order)."""
    groups, n_pairs = thresholds.shape[0], thresholds.shape[1] // 2
    sizes = np.zeros((groups, n_pairs), dtype=np.int64)
    expected = [[None] * n_pairs for _ in range(groups)]
    for g in range(groups):
        xs = x[group_of == g]
        for p in range(n_pairs):
            expected[g][p] = xs[(xs >= thresholds[g, 2 * p]) & (xs < thresholds[g, 2 * p + 1])]
            sizes[g, p] = expected[g][p].size
    return sizes, expected


def _every_part(parts, base, cap):
    """scan_runs's per-part (base, cap) with the same regions in every part."""
    return np.repeat(base[None], parts, axis=0), np.repeat(cap[None], parts, axis=0)


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
    group_of = (np.arange(n) // run) % groups
    sizes, expected = _run_members(x, group_of, thresholds)
    cap = sizes.copy()
    cap[:, 0] = 0
    if n_brackets:
        cap[0, 1] = sizes[0, 1] // 3  # too small in every part: it overflows, and keeps counting
    base = np.zeros_like(cap)
    base.reshape(-1)[1:] = np.cumsum((cap + 1).reshape(-1))[:-1]
    dest = np.full((parts, int((cap + 1).sum())), -7.0, dtype=np.float32)
    block = 8 * int(rng.integers(12, 400))  # flag bytes are read as words of eight
    counts, written = scan_runs(x, 0, groups, run, thresholds, *_every_part(parts, base, cap), dest, parts, block)
    below = np.stack([(x[group_of == g][:, None] < thresholds[g]).sum(axis=0) for g in range(groups)])
    np.testing.assert_array_equal(counts.sum(axis=0), below)
    assert_regions(written, dest, base, cap, sizes, expected)


def _quantile_brackets(x, share, dtype):
    """Two disjoint brackets around the 5th and 95th percentiles of x holding about `share` of it each."""
    finite = np.sort(x[np.isfinite(x)])
    edges = [finite[int(q * (finite.size - 1))] for q in (0.05 - share / 2, 0.05 + share / 2, 0.95 - share / 2)]
    edges.append(finite[int((0.95 + share / 2) * (finite.size - 1))])
    return np.array(edges, dtype=dtype)


# member shares of each of two brackets: below, between and above the shares where scan_runs changes its sweep
# (compress skipping empty vectors, flags and gather, compress of every vector: collect._density)
SHARES = [0.0004, 0.004, 0.03]


@pytest.mark.parametrize("parts", [1, 2])
@pytest.mark.parametrize("share", SHARES)
@pytest.mark.parametrize("dtype", ["float32", "float64", ">f4"])
def test_scan_runs_collects_the_same_members_at_every_density(dtype, share, parts):
    """scan_runs against NumPy over pieces of every member density, float32, float64 and byte-swapped float32
    words (the compress sweeps where the CPU has AVX-512, swapping the words in the register): the counts, every
    member, a region that overflows and keeps counting, and a pair with no capacity, which is counted only."""
    rng = np.random.default_rng([SHARES.index(share), parts, len(dtype)])
    groups, run, outer = 3, 20011, 2  # runs not a multiple of the vector width or of the block
    n = outer * groups * run
    kernel_dtype = np.float64 if dtype == "float64" else np.float32
    x = rng.standard_normal(n).astype(kernel_dtype)
    x[rng.integers(0, n, n // 100)] = np.nan
    x[rng.integers(0, n, 7)] = np.inf
    x[rng.integers(0, n, 7)] = -np.inf
    group_of = (np.arange(n) // run) % groups
    thresholds = np.full((groups, 12), np.inf, dtype=kernel_dtype)  # two sweeps of three pairs
    thresholds[:, 0] = np.finfo(kernel_dtype).min
    for g in range(groups):
        edges = _quantile_brackets(x[group_of == g], share, kernel_dtype)
        thresholds[g, 2:6] = edges
        thresholds[g, 6:8] = edges[2], (edges[2] + edges[3]) / 2  # inside the second (a member goes to both)
    n_pairs = 6
    sizes, expected = _run_members(x, group_of, thresholds)
    cap = sizes.copy()
    cap[:, 0] = 0
    cap[0, 1] = sizes[0, 1] // 3  # overflows in every part
    cap[1, 3] = 0  # counted, not collected
    base = np.zeros_like(cap)
    base.reshape(-1)[1:] = np.cumsum((cap + 1).reshape(-1))[:-1]
    dest = np.full((parts, int((cap + 1).sum())), -7.0, dtype=kernel_dtype)
    data = x.astype(">f4").view(np.uint32) if dtype == ">f4" else x
    counts, written = scan_runs(data, 0, groups, run, thresholds, *_every_part(parts, base, cap), dest, parts, 4096)
    # the pieces' member share (2.5 brackets' worth) picks the sweep this case is named for
    found = int(sizes[:, 1:].sum() / (n - n // 100) * 4096)
    assert collect._density(found, 4096) == {0.0004: collect._SPARSE, 0.004: collect._MIDDLE}.get(share, collect._DENSE)
    below = np.stack([(x[group_of == g][:, None] < thresholds[g]).sum(axis=0) for g in range(groups)])
    np.testing.assert_array_equal(counts.sum(axis=0), below)
    assert written.sum(axis=0)[:, 1:].tolist() == sizes[:, 1:].tolist()
    assert sizes[0, 1] > 0 and np.all(written[:, 0, 1] > cap[0, 1])
    for g in range(groups):
        for p in range(1, n_pairs):
            if cap[g, p] == 0 or (g, p) == (0, 1):
                continue
            got = np.concatenate([dest[c, base[g, p] : base[g, p] + written[c, g, p]] for c in range(parts)])
            np.testing.assert_array_equal(np.sort(got), np.sort(expected[g][p]))


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64", ">f4"])
def test_compress_sweep_counts_and_packs_members_in_order(dtype, sparse):
    """The AVX-512 sweep alone: the counts of its whole vectors, each collected pair's members in the order of
    their positions, whole-vector stores while they fit and the sink once a region is full."""
    import numba

    from fastquant._kernels import _compress

    if not _compress.HAS_COMPRESS:
        pytest.skip("the CPU the kernels are compiled for has no AVX-512F")
    sweep = numba.njit(
        lambda x, thr, t, acc, row, pos, last, sparse: _compress.compress_sweep(x, thr, t, acc, row, pos, last, sparse)
    )
    rng = np.random.default_rng([int(sparse), len(dtype)])
    value_dtype = np.float64 if dtype == "float64" else np.float32
    x = rng.standard_normal(1000 + 7).astype(value_dtype)  # a tail the sweep leaves
    x[rng.integers(0, x.size, 20)] = np.nan
    data = x.astype(">f4").view(np.uint32) if dtype == ">f4" else x  # byte-swapped words: swapped in the register
    thresholds = np.array([-0.5, 0.5, -1.0, 0.0, 1.2, 1.3, 9.0, 9.0], dtype=value_dtype)  # t = 2: pairs 1-3
    lanes = 64 // x.itemsize
    done = x.size // lanes * lanes
    members = [x[:done][(x[:done] >= thresholds[2 + 2 * p]) & (x[:done] < thresholds[3 + 2 * p])] for p in range(3)]
    tight = members[0].size // 2  # pair 1 overflows its region (the last slot is the sink)
    start = np.array([0, tight + 1, 4000], dtype=np.int64)
    last = np.array([tight, start[1] + members[1].size + 20, -1], dtype=np.int64)  # pair 3: not collected
    row = np.full(4200, -7.0, dtype=value_dtype)
    acc = np.array([5, 0, 0, 0, 0, 0, 0, 0], dtype=np.int32)
    pos = start.copy()
    assert sweep(data, thresholds, 2, acc, row, pos, last, sparse) == done
    below = (x[:done, None] < thresholds[2:]).sum(axis=0)
    assert acc.tolist() == [5, 0, *below.tolist()]
    assert pos.tolist() == [members[0].size, start[1] + members[1].size, start[2]]
    np.testing.assert_array_equal(row[:tight], members[0][:tight])
    np.testing.assert_array_equal(row[start[1] : pos[1]], members[1])
    assert np.all(row[start[2] :] == -7.0)  # nothing stored for an uncollected pair


@pytest.mark.parametrize("parts", [1, 2, 3])
@pytest.mark.parametrize("layout", [(1, 6, 1000), (1, 5, 999), (3, 4, 100), (2, 7, 333), (1, 2, 5)])
def test_part_regions_give_each_part_room_for_the_groups_it_reads(layout, parts):
    """scan_runs with per-part regions (Scan over planes): each part has room for the groups of its elements and
    none for others, regions do not overlap, and the members of every group are all collected; a part without
    room for a group it reads counts it and marks it overflowed (written > cap) without touching other regions."""
    from fastquant._kernels._common import _chunk_bounds
    from fastquant._passes import part_regions
    from fastquant._plan import Layout

    outer, groups, inner = layout
    n = outer * groups * inner
    rng = np.random.default_rng([outer, groups, inner, parts])
    x = rng.standard_normal(n).astype(np.float32)
    group_of = (np.arange(n) // inner) % groups
    thresholds = np.full((groups, 6), np.inf, dtype=np.float32)
    thresholds[:, 0] = np.finfo(np.float32).min
    thresholds[:, 2:6] = [-1.5, -0.5, 0.5, 1.5]
    sizes = np.zeros((groups, 3), dtype=np.int64)
    for p in (1, 2):
        inside = (x >= thresholds[0, 2 * p]) & (x < thresholds[0, 2 * p + 1])
        sizes[:, p] = np.bincount(group_of[inside], minlength=groups)
    cap, base, width = part_regions(Layout(outer, groups, inner), parts, sizes)
    for c in range(parts):
        begin, end = _chunk_bounds(n, parts, c, 1)
        touched = np.zeros(groups, dtype=bool)
        touched[group_of[begin:end]] = True
        np.testing.assert_array_equal(cap[c], np.where(touched[:, None], sizes, 0))
        slots = sorted((int(base[c, g, p]), int(cap[c, g, p]) + 1) for g in range(groups) for p in range(3))
        assert all(a + m <= b for (a, m), (b, _) in zip(slots, slots[1:], strict=False))  # disjoint
        assert slots[-1][0] + slots[-1][1] <= width
    dest = np.full((parts, width), -7.0, dtype=np.float32)
    counts, written = scan_runs(x, 0, groups, inner, thresholds, base, cap, dest, parts, 4096)
    assert np.all(written <= cap)  # room for every member in the part that reads it
    for g in range(groups):
        for p in (1, 2):
            got = np.concatenate([dest[c, base[c, g, p] : base[c, g, p] + written[c, g, p]] for c in range(parts)])
            xs = x[group_of == g]
            inside = (xs >= thresholds[g, 2 * p]) & (xs < thresholds[g, 2 * p + 1])
            np.testing.assert_array_equal(np.sort(got), np.sort(xs[inside]))
    # no room for group 0 in part 0 (which reads its first element): counted there and marked overflowed, and
    # every other region as before
    kept = [dest[c, base[c, g, p] : base[c, g, p] + written[c, g, p]].copy() for c, g, p in np.ndindex(written.shape)]
    short = cap.copy()
    short[0, 0] = 0
    dest[:] = -7.0
    _, short_written = scan_runs(x, 0, groups, inner, thresholds, base, short, dest, parts, 4096)
    np.testing.assert_array_equal(short_written, written)
    overflowed = short_written[0, 0, 1:] > short[0, 0, 1:]
    np.testing.assert_array_equal(overflowed, written[0, 0, 1:] > 0)  # wherever part 0 met members of group 0
    assert n < 100 or overflowed.all()
    for (c, g, p), values in zip(np.ndindex(written.shape), kept, strict=True):
        if (c, g) != (0, 0):
            np.testing.assert_array_equal(dest[c, base[c, g, p] : base[c, g, p] + written[c, g, p]], values)


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("first", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compress_lanes_counts_per_lane_and_stages_members_with_their_lanes(dtype, first, dense):
    """The AVX-512 lane sweep alone, one vector of lanes down the rows of a block: counts per lane below six
    per-lane thresholds, and each pair's members staged with their lane numbers (not pair 0 on a first sweep),
    by both sweeps (sparse: stores where a vector has members; dense: every vector)."""
    import numba

    from fastquant._kernels import _compress

    if not _compress.HAS_COMPRESS:
        pytest.skip("the CPU the kernels are compiled for has no AVX-512F")
    sweep = numba.njit(
        lambda x, rows, stride, j, thr, t, acc, sv, sl, st, first, dense: _compress.compress_lanes(
            x, rows, stride, j, thr, t, acc, sv, sl, st, first, dense
        )
    )
    rng = np.random.default_rng([int(first), len(dtype), int(dense)])
    lanes, rows = 96, 37
    width = 64 // np.dtype(dtype).itemsize
    x = rng.standard_normal(rows * lanes).astype(dtype)
    x[rng.integers(0, x.size, 50)] = np.nan
    low = rng.uniform(-2.0, 1.0, (3, lanes))
    thresholds = np.stack([low, low + rng.uniform(0.0, 1.0, (3, lanes))], axis=1).reshape(6, lanes).astype(dtype)
    thresholds = np.concatenate([np.full((6, lanes), 9.0, dtype=dtype), thresholds])  # t = 6
    acc = np.ones((12, lanes), dtype=np.int32)
    index = np.int32 if dtype == "float32" else np.int64
    staged_values = np.full((3, x.size + width), -7.0, dtype=dtype)
    staged_lanes = np.full((3, x.size + width), -1, dtype=index)
    staged = np.array([0, 5, 0], dtype=np.int64)  # pair 1's list already holds 5
    j = width * 2
    sweep(x, rows, lanes, j, thresholds, 6, acc, staged_values, staged_lanes, staged, first, dense)
    block = x.reshape(rows, lanes)[:, j : j + width]
    below = (block[:, None, :] < thresholds[6:, j : j + width]).sum(axis=0)
    np.testing.assert_array_equal(acc[6:, j : j + width], 1 + below)
    assert np.all(acc[:6] == 1) and np.all(np.delete(acc[6:], np.s_[j : j + width], axis=1) == 1)
    lane_of = np.broadcast_to(np.arange(j, j + width), block.shape)
    for p in range(3):
        inside = (block >= thresholds[6 + 2 * p, j : j + width]) & (block < thresholds[7 + 2 * p, j : j + width])
        if p == 0 and first:
            inside[:] = False
        start = 5 if p == 1 else 0
        assert staged[p] == start + inside.sum()
        got = sorted(
            zip(staged_lanes[p, start : staged[p]].tolist(), staged_values[p, start : staged[p]].tolist(), strict=True)
        )
        assert got == sorted(zip(lane_of[inside].tolist(), block[inside].tolist(), strict=True))
    assert np.all(staged_values[1, :5] == -7.0)  # what was staged before stays


def test_portable_sweeps_where_the_cpu_has_no_avx512(tmp_path):
    """On a CPU without AVX-512F the scans keep their flags and gather (the compress sweeps compile to nothing
    there): this file's scan tests, run in a subprocess whose kernels are compiled for the host minus AVX-512
    (NUMBA_CPU_FEATURES), still match NumPy."""
    import os
    import subprocess
    import sys

    from numba.core.codegen import get_host_cpu_features

    features = get_host_cpu_features()
    if "+avx512f" not in features.split(","):
        pytest.skip("the host has no AVX-512F: the default run already takes the portable sweeps")
    without = ",".join(f.replace("+avx512", "-avx512") for f in features.split(","))
    env = dict(os.environ, NUMBA_CPU_FEATURES=without, NUMBA_CACHE_DIR=str(tmp_path), FASTQUANT_PORTABLE_CHILD="1")
    chosen = "every_density and 0.03 and (float32 or f4) or scan_lanes_counts and 21x1x1x2 or portable_child_runs"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rp", "-p", "no:cacheprovider", __file__, "-k", chosen],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    passed = [line for line in result.stdout.splitlines() if line.startswith("PASSED")]
    assert any("portable_child_runs_without_compress" in line for line in passed), result.stdout[-2000:]
    assert sum("every_density" in line for line in passed) == 4 and any("scan_lanes" in line for line in passed)


def test_portable_child_runs_without_compress():
    """In the child of the test above: the compress sweeps are off (else a no-op here)."""
    import os

    from fastquant._kernels import _compress

    if os.environ.get("FASTQUANT_PORTABLE_CHILD") != "1":
        pytest.skip("runs in the child of test_portable_sweeps_where_the_cpu_has_no_avx512")
    assert not _compress.HAS_COMPRESS


@pytest.mark.parametrize("n_parts", [1, 3])
def test_gather_regions_concatenates_each_segments_parts_in_order(n_parts):
    # Segment s is the regions of every part c, part after part; empty regions, a segment with no members and
    # regions at a row's end included.
    rng = np.random.default_rng([70, n_parts])
    parts, width, n_seg = 2, 300, 9
    dest = rng.standard_normal((parts, width)).astype(np.float32)
    starts = rng.integers(0, width - 40, (parts, n_seg))
    lengths = rng.integers(0, 40, (parts, n_seg))
    lengths[:, 4] = 0
    starts[1, 7], lengths[1, 7] = width - 5, 5
    total = lengths.sum(axis=0)
    at = np.concatenate([[0], np.cumsum(total)[:-1]]).astype(np.int64)
    values = np.full(int(total.sum()), np.nan, dtype=np.float32)
    collect.gather_regions(dest, starts, lengths, at, values, n_parts)
    expected = [dest[c, starts[c, s] : starts[c, s] + lengths[c, s]] for s in range(n_seg) for c in range(parts)]
    np.testing.assert_array_equal(values, np.concatenate(expected))
