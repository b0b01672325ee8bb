"""The small-group kernels (fastquant._kernels.groups) against NumPy and the reference."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from fastquant import reference
from fastquant._kernels import _compress, groups
from fastquant._levels import scale_terms

QUANTILES = np.array([0.05, 0.95, 0.5, 0.0, 1.0, 1 / 3, 0.999])
# seeded with np.random.default_rng(list of ints) per case (hash() of strings changes between runs)
# (A, G, B): tiny, one group, one row, short runs, many groups, groups larger than the tile (bracketed path)
LAYOUTS = [(1, 1, 1), (7, 5, 1), (1, 9, 3), (64, 300, 1), (10, 33, 3), (300, 2, 7), (5000, 4, 1), (700, 3, 200)]


def _data(rng, size, dtype, kind):
    x = rng.standard_normal(size)
    if kind == "ties":
        x = np.round(x, 1)
    elif kind == "zeros":
        x = np.where(rng.random(size) < 0.5, 0.0, -0.0) * (rng.random(size) < 0.6) + x * (rng.random(size) < 0.4)
    x = x.astype(dtype)
    x[rng.random(size) < 0.05] = np.nan
    x[rng.random(size) < 0.02] = np.inf
    x[rng.random(size) < 0.02] = -np.inf
    return x


def _same(a, b):
    # bit-identical except that a zero order statistic may be either sign
    a = np.where(a == 0, 0.0, a)
    b = np.where(b == 0, 0.0, b)
    return np.array_equal(a, b, equal_nan=True)


def _numpy_stats(x, a, g, b, quantiles):
    # the order statistics numpy.percentile(method="linear") interpolates between
    y = x.reshape(a, g, b)
    counts, prev, nxt = [], [], []
    for j in range(g):
        v = np.sort(y[:, j, :][np.isfinite(y[:, j, :])])
        counts.append(v.size)
        if v.size == 0:
            prev.append(np.full(quantiles.size, np.nan))
            nxt.append(np.full(quantiles.size, np.nan))
            continue
        virtual = (v.size - 1) * quantiles
        p = np.where(virtual >= v.size - 1, v.size - 1, np.floor(virtual)).astype(np.int64)
        q = np.where(virtual >= v.size - 1, v.size - 1, p + 1)
        prev.append(v[p])
        nxt.append(v[q])
    return np.array(counts), np.array(prev, dtype=x.dtype), np.array(nxt, dtype=x.dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", ["normal", "ties", "zeros"])
def test_group_select_matches_numpy(dtype, layout, kind):
    a, g, b = layout
    seed = [np.dtype(dtype).itemsize, *layout, ["normal", "ties", "zeros"].index(kind)]
    rng = np.random.default_rng(seed)
    x = _data(rng, a * g * b, dtype, kind)
    expected = _numpy_stats(x, a, g, b, QUANTILES)
    for n_parts in (1, 2, 3):
        got = groups.group_select(x, a, g, b, QUANTILES, n_parts)
        assert np.array_equal(got[0], expected[0])
        assert _same(got[1], expected[1]) and _same(got[2], expected[2])
        assert got[1].dtype == expected[1].dtype
    counts, prev, nxt = _numpy_stats(x, a, g, b, QUANTILES)
    assert np.array_equal(got[0], counts) and _same(got[1], prev) and _same(got[2], nxt)


EXTREME_LAYOUTS = [(64, 300, 1), (64, 1030, 1), (16, 40, 4), (3, 700, 1), (120, 17, 1)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", EXTREME_LAYOUTS)
@pytest.mark.parametrize("kind", ["normal", "ties", "zeros"])
@pytest.mark.parametrize("quantiles", [(0.05, 0.95), (0.0, 0.01, 0.99, 1.0), (0.95, 0.1)])
def test_group_select_extremes(dtype, layout, kind, quantiles):
    # few extreme ranks per small group: the row-wise chains of smallest and largest values (_select_extremes)
    a, g, b = layout
    quantiles = np.array(quantiles)
    side = np.zeros(quantiles.size, dtype=np.int64)
    n_low, n_high = groups._extremes_plan(a * b, quantiles, side)
    assert n_low + n_high <= groups._EXTREMES_MAX
    seed = [np.dtype(dtype).itemsize, *layout, ["normal", "ties", "zeros"].index(kind), quantiles.size]
    rng = np.random.default_rng(seed)
    x = _data(rng, a * g * b, dtype, kind)
    x.reshape(a, g, b)[:, 3, :] = np.nan  # a group without finite values
    x.reshape(a, g, b)[: a - 2, 5, :] = np.inf  # a group with only a few finite values
    counts, prev, nxt = _numpy_stats(x, a, g, b, quantiles)
    for n_parts in (1, 2, 3):
        got = groups.group_select(x, a, g, b, quantiles, n_parts)
        assert np.array_equal(got[0], counts) and _same(got[1], prev) and _same(got[2], nxt)
        assert got[1].dtype == x.dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["normal", "ties", "zeros", "sorted"])
def test_group_select_counted(dtype, kind):
    # groups of thousands in cache (counting against a sample, collecting one interval per rank): columns
    a, g, b = 3000, 40, 1
    rng = np.random.default_rng([np.dtype(dtype).itemsize, ["normal", "ties", "zeros", "sorted"].index(kind)])
    x = _data(rng, a * g * b, dtype, "normal" if kind == "sorted" else kind)
    if kind == "sorted":
        x = np.sort(x)  # each column ascending, columns interleaved
    y = x.reshape(a, g)
    y[:, 7] = 1.5  # a constant column: one interval holding every value
    y[: a // 2, 8] = np.nan
    y[:, 9] = np.round(y[:, 9] * 2) / 2  # heavy ties
    for quantiles in (np.array([0.05, 0.95]), QUANTILES):
        counts, prev, nxt = _numpy_stats(x, a, g, b, quantiles)
        for n_parts in (1, 2):
            got = groups.group_select(x, a, g, b, quantiles, n_parts)
            assert np.array_equal(got[0], counts) and _same(got[1], prev) and _same(got[2], nxt)


def test_group_select_empty_groups_and_sorted_values():
    rng = np.random.default_rng(7)
    a, g, b = 40, 6, 2
    x = np.sort(rng.standard_normal(a * g * b)).astype(np.float32)
    y = x.reshape(a, g, b)
    y[:, 1, :] = np.nan
    y[:, 4, :] = np.inf
    got = groups.group_select(x, a, g, b, QUANTILES, 2)
    expected = _numpy_stats(x, a, g, b, QUANTILES)
    assert np.array_equal(got[0], expected[0])
    assert _same(got[1], expected[1]) and _same(got[2], expected[2])
    assert got[0][1] == 0 and np.isnan(got[1][1]).all()


def test_bracket_misses_fall_back_to_radix():
    # Large groups whose sampled rows hold one value and the others random: every bracket from the sample
    # misses, so the radix fallback gives the answer.
    rng = np.random.default_rng(11)
    a, g, b = 1 << 18, 2, 1
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal(a * g * b).astype(dtype)
        step = -(-a // (1 << 14))
        x.reshape(a, g)[::step] = 0.25
        low, high, _ = groups._sample_brackets(x, a, g, b, QUANTILES, 2)
        got = groups.group_select(x, a, g, b, QUANTILES, 2)
        expected = _numpy_stats(x, a, g, b, QUANTILES)
        assert np.array_equal(got[0], expected[0])
        assert _same(got[1], expected[1]) and _same(got[2], expected[2])
        # the median's bracket is [0.25, 0.25] from the constant sample: it holds the median of neither group
        assert (low[:, 2] == 0.25).all() and (high[:, 2] == 0.25).all()
        assert not ((got[1][:, 2] == 0.25) | (got[2][:, 2] == 0.25)).any()


def test_radix_ranks():
    rng = np.random.default_rng(5)
    x = _data(rng, 3 * 4 * 50, np.float64, "ties")
    y = x.reshape(50, 4, 3)
    pair_group = np.array([0, 0, 2, 3, 3, 3])
    ranks = []
    sorted_groups = {g: np.sort(y[:, g, :][np.isfinite(y[:, g, :])]) for g in range(4)}
    for g in pair_group:
        ranks.append(rng.integers(sorted_groups[g].size))
    values = groups._radix_ranks(x, 50, 4, 3, pair_group, np.array(ranks), 2)
    assert _same(values, np.array([sorted_groups[g][r] for g, r in zip(pair_group, ranks, strict=True)]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", [(7, 5, 1), (64, 300, 1), (10, 33, 3), (300, 2, 7), (3, 20000, 1), (2, 5000, 4)])
@pytest.mark.parametrize("ranges", ["ordinary", "extreme"])
@pytest.mark.parametrize("nan", [0, 77])
def test_convert_rows_matches_reference(dtype, layout, ranges, nan):
    a, g, b = layout
    rng = np.random.default_rng(9)
    x = _data(rng, a * g * b, dtype, "ties")
    lo = rng.uniform(-1.5, 0.0, g)
    hi = lo + rng.uniform(0.1, 2.0, g)
    if ranges == "extreme":
        hi[::3] = lo[::3]  # lo == hi
        lo[1::3], hi[1::3] = 1.0, 1.0 + 2.0**-1020  # tiny span: rescaled (factor != 1)
    factor, lo_scaled, scale = (np.ascontiguousarray(t, dtype=np.float64) for t in scale_terms(lo, hi))
    out = np.empty(x.size, dtype=np.uint8)
    groups.convert_rows(x, out, a, g, b, lo, factor, lo_scaled, scale, float(nan), 2)
    shape = (1, g, 1)
    expected = reference.quantize(x.reshape(a, g, b), lo.reshape(shape), hi.reshape(shape), nan)
    assert np.array_equal(out.reshape(a, g, b), expected)


# --- selection in many segments at once (samples of groups, bracket members) -----------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["normal", "ties", "zeros"])
def test_compact_and_select_segments_match_sorting(dtype, kind):
    rng = np.random.default_rng([60, np.dtype(dtype).itemsize, len(kind)])
    # lengths: empty, tiny, below the bracketed size, the bracketed size, the counted size and above
    lengths = np.array([0, 1, 2, 17, groups._BRACKET_FROM - 1, groups._BRACKET_FROM, groups._COUNTED_FROM, 40_000])
    values = _data(rng, int(lengths.sum()), dtype, kind)
    original = values.copy()
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    counts = groups.compact_segments(values, starts, lengths, 2)
    ranks = np.zeros((lengths.size, 5), dtype=np.int64)
    expected = []
    for s, (start, n) in enumerate(zip(starts, lengths, strict=True)):
        segment = original[start : start + n]
        finite = np.sort(segment[np.isfinite(segment)])
        assert counts[s] == finite.size
        # compacted in place, in order
        assert np.array_equal(values[start : start + counts[s]], segment[np.isfinite(segment)])
        if finite.size:
            ranks[s] = np.sort(rng.integers(0, finite.size, 5))
            ranks[s, 1] = ranks[s, 0]  # a repeated rank
        expected.append(finite[ranks[s]] if finite.size else np.full(5, np.nan))
    found = groups.select_segments(values, starts, counts, ranks, 2)
    assert _same(found, np.array(expected))
    # the result does not depend on the part count
    values2 = original.copy()
    counts2 = groups.compact_segments(values2, starts, lengths, 1)
    assert _same(groups.select_segments(values2, starts, counts2, ranks, 3), found)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["random", "sorted", "reversed", "misleading sample", "two values", "image rows"])
def test_select_segments_of_large_segments(dtype, order):
    """Segments from groups._SAMPLED_FROM on take the sampled-interval selection: every order of the values,
    and a sample that misleads it (the strided positions it reads hold the largest values, so its intervals miss
    and the ranks fall back to counting over the segment), give the sorted values' ranks. A grid-like order (a
    smooth image's rows, as an approx sample holds them) is what the scattered sample positions are for."""
    rng = np.random.default_rng([61, np.dtype(dtype).itemsize, len(order)])
    n = groups._SAMPLED_FROM + 12_345
    values = rng.standard_normal(n).astype(dtype)
    if order == "sorted":
        values.sort()
    elif order == "reversed":
        values[::-1].sort()
    elif order == "misleading sample":
        positions = [groups._scattered(t, n) for t in range(groups._SAMPLED_SIZE)]
        values[positions] = 100 + np.arange(len(positions))
    elif order == "two values":
        values = np.where(rng.random(n) < 0.3, 1.0, 2.0).astype(dtype)
    elif order == "image rows":  # a smooth field row by row, then noise
        side = int(np.sqrt(n))
        y, x = np.mgrid[0:side, 0:side] / side
        field = np.sin(7 * x) * np.cos(5 * y) + 0.05 * rng.standard_normal((side, side))
        values[: side * side] = field.reshape(-1)
    expected_sorted = np.sort(values)
    ranks = np.array([[0, 1, n // 20, n // 20 + 1, n // 2, n // 2, n - n // 20, n - 2, n - 1]], dtype=np.int64)
    found = groups.select_segments(values.copy(), np.zeros(1, np.int64), np.array([n], np.int64), ranks, 1)
    assert _same(found[0], expected_sorted[ranks[0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_select_from_the_previous_groups_values_when_all_are_equal(dtype):
    # Groups of one value, the same in each: the prior interval is [v, the next value up in the dtype), whose
    # members (every value) fit, so every group after the first is selected from its prior.
    g, n = 40, groups._PRIOR_CAP - 100
    x = np.full((g, n), 0.1, dtype=dtype)
    quantiles = np.array([0.05, 0.95])
    prev, nxt, selected = _select_rows(x, quantiles)
    assert (prev == dtype(0.1)).all() and (nxt == dtype(0.1)).all()
    assert selected == (g - 1 if _compress.HAS_COMPRESS else 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["alike", "shifted", "mixed sizes"])
def test_select_segments_from_the_previous_segments_values(dtype, kind):
    # Segments alike (approx samples of the channels of one image): from the second on, each is selected from
    # intervals around the previous one's values of its ranks; ones unlike it (shifted by 50) miss and fall back
    # to the sampled or counted selection. Values exact either way, for each part count.
    rng = np.random.default_rng([62, np.dtype(dtype).itemsize, len(kind)])
    sizes = [groups._SAMPLED_FROM + 999] * 6 + [groups._COUNTED_FROM + 5] * 6
    if kind == "mixed sizes":
        sizes = rng.permutation(sizes).tolist()
    segments = [rng.standard_normal(size) for size in sizes]
    if kind == "shifted":
        segments = [seg + 50 * (i % 2) for i, seg in enumerate(segments)]
    values = np.concatenate(segments).astype(dtype)
    lengths = np.array(sizes, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    q = np.array([0.05, 0.5, 0.95])  # three intervals (more: selected without a prior)
    ranks = np.sort(np.concatenate([np.floor((lengths[:, None] - 1) * q), np.ceil((lengths[:, None] - 1) * q)], 1))
    ranks = ranks.astype(np.int64)
    for n_parts in (1, 2):
        found, selected = groups._select_segments(values.copy(), starts, lengths, ranks, n_parts)
        for i, seg in enumerate(segments):
            assert _same(found[i], np.sort(seg.astype(dtype))[ranks[i]]), i
        if not _compress.HAS_COMPRESS:
            assert selected == 0
        elif kind == "shifted":
            assert selected == 0
        elif kind == "alike":  # all but each part's first segment
            assert selected == len(sizes) - n_parts, selected
        else:  # the intervals scale with the sizes (wider after a smaller segment); a few more miss
            assert selected >= (len(sizes) - n_parts) // 2, selected


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_parts", [1, 3])
def test_interpolate_pairs_is_numpy_percentile(dtype, n_parts):
    # The kernel that turns group_select's order statistics into percentiles: each group's values against
    # numpy.percentile of that group's finite values (0 to 9 finite values, ties, signed zeros, each quantile)
    rng = np.random.default_rng([20, 7, np.dtype(dtype).itemsize, n_parts])
    n_groups, width = 400, 9
    x = _data(rng, n_groups * width, dtype, "zeros").reshape(n_groups, width)
    tied = rng.random(n_groups) < 0.3
    x[tied] = np.round(x[tied])
    x[:5] = np.nan  # groups without finite values
    x[5, 1:] = np.nan  # one finite value
    percentiles = QUANTILES * 100
    quantiles = np.true_divide(percentiles, 100)  # as fastquant._select.percentiles and numpy.percentile divide
    counts, prev, nxt = _numpy_stats(x.T.reshape(-1), width, n_groups, 1, quantiles)
    out = np.full((quantiles.size, n_groups), -1.0)
    groups.interpolate_pairs(counts.astype(np.int64), prev, nxt, quantiles, out, n_parts)
    for g in range(n_groups):
        finite = x[g][np.isfinite(x[g])]
        want = np.percentile(finite, percentiles) if finite.size else np.full(quantiles.size, np.nan)
        assert np.array_equal(out[:, g], np.asarray(want, dtype=np.float64) + 0.0, equal_nan=True), g
    assert not np.signbit(out[out == 0]).any()  # + 0.0: no negative zero, as the reference


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("where", [0.05, 0.5, 0.95])
def test_select_segments_with_intervals_near_the_collection_room(dtype, where):
    # Ties at the rank fill its interval with about the room of a collection part (_MID // 2 values, one slot of
    # which is the branch-free collection's spare): from a little below to a little above it, the members are
    # collected (counted path: segments of 1024 to 32767 values; sampled path: 32768 and more) or the ranks are
    # selected in place, and every rank equals NumPy's, for ranks near the middle and near the ends.
    room = groups._MID // 2
    rng = np.random.default_rng([20261207, int(where * 100), np.dtype(dtype).itemsize])
    segments = []
    for n, ties in [(20000, t) for t in range(room - 400, room + 200, 23)] + [(40000, room - 300), (40000, room)]:
        v = rng.uniform(-1.0, 1.0, n)
        at = int(where * (n - ties))
        v[np.argsort(v)[at : at + ties]] = 0.25  # a run of ties at the rank (values in place, order random)
        segments.append(v.astype(dtype))
    values = np.concatenate(segments)
    lengths = np.array([s.size for s in segments], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    # and a rank far from it, so that both collection parts are in use (an overflowing part would spill into the
    # other's values)
    far = 0.99 if where < 0.9 else 0.01
    ranks = np.array(
        [sorted([int(where * (n - 1)), int(where * (n - 1)) + 1, int(far * (n - 1))]) for n in lengths.tolist()],
        dtype=np.int64,
    )
    for n_parts in (1, 2):
        found = groups.select_segments(values.copy(), starts, lengths, ranks, n_parts)
        for s, seg in enumerate(segments):
            np.testing.assert_array_equal(found[s], np.sort(seg)[ranks[s]], err_msg=f"segment {s}, {seg.size}")


@numba.njit
def _select_rows(x, quantiles):
    # _select_group over the rows of x (G, n), in order, as one part of _select_in_cache selects its groups:
    # (prev, next, number of groups selected from their prior)
    n_q = quantiles.size
    ranks = np.empty(2 * n_q, dtype=np.int64)
    slots = np.empty(2 * n_q, dtype=np.int64)
    ordered = np.empty(2 * n_q, dtype=np.int64)
    found = np.empty(2 * n_q, dtype=x.dtype)
    ends = np.empty(2 * n_q * 130 + 2, dtype=np.int64)
    sample, mid, sub, sub_found = groups._scratch(2 * n_q, x.dtype)
    prior = groups._prior_memory(2 * n_q, x.dtype, groups._PRIOR_CAP)
    prev = np.full((x.shape[0], n_q), np.nan, dtype=x.dtype)
    nxt = np.full((x.shape[0], n_q), np.nan, dtype=x.dtype)
    for r in range(x.shape[0]):
        values = x[r].copy()
        n = groups._keep_finite(values)
        if n:
            groups._select_group(values, n, quantiles, ranks, slots, ordered, found, ends, sample, mid, sub,
                                 sub_found, prev[r], nxt[r], prior)  # fmt: skip
    return prev, nxt, prior[2][3]


def _row_stats(x, quantiles):
    _, prev, nxt = _numpy_stats(np.ascontiguousarray(x.T).ravel(), x.shape[1], x.shape[0], 1, quantiles)
    return prev, nxt


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "kind, quantiles, hits",
    [
        ("normal", (0.05, 0.95), "most"),  # two intervals, one sweep
        ("normal", (0.01, 0.5, 0.99), "most"),  # three
        ("normal", (0.05, 0.051, 0.95), "most"),  # close ranks share an interval
        ("normal", tuple(QUANTILES), "none"),  # more than three intervals: every group by _select_counted
        ("nan", (0.05, 0.95), "most"),  # finite counts (so ranks) differ from group to group
        ("drifting", (0.05, 0.95), "some"),  # each group wider and shifted: priors miss, then back off
        ("alternating", (0.05, 0.95), "few"),  # every prior misses
        ("ties", (0.05, 0.95), "most"),  # values of one decimal: intervals full of ties
        ("constant", (0.05, 0.95), "few"),  # one value per group, another in each: every prior misses
    ],
)
def test_select_from_the_previous_groups_values(dtype, kind, quantiles, hits):
    # Groups of one array alike (per column of a map): each group's ranks are selected among the members of
    # intervals around the previous group's values of them; misses fall back to the counted selection, and the
    # values are exact either way.
    g, n = 240, 3000
    rng = np.random.default_rng([np.dtype(dtype).itemsize, len(kind), len(quantiles)])
    x = rng.standard_normal((g, n))
    if kind == "nan":
        x[rng.random((g, n)) < rng.random((g, 1)) * 0.3] = np.nan
    elif kind == "drifting":
        x = x * 1.08 ** np.arange(g)[:, None] + 0.05 * np.arange(g)[:, None]
    elif kind == "alternating":
        x[1::2] += 100.0
    elif kind == "ties":
        x = np.round(x, 1)
    elif kind == "constant":
        x = np.repeat(np.round(rng.standard_normal((g, 1)), 2), n, axis=1)
    x = x.astype(dtype)
    quantiles = np.array(quantiles)
    prev, nxt, selected = _select_rows(x, quantiles)
    expected_prev, expected_next = _row_stats(x, quantiles)
    assert _same(prev, expected_prev) and _same(nxt, expected_next)
    if not _compress.HAS_COMPRESS:  # no AVX-512 sweep: every group by _select_counted
        assert selected == 0
    elif hits == "most":
        assert selected >= 0.9 * (g - 1), selected
    elif hits == "none":
        assert selected == 0
    elif hits == "some":
        assert 0 < selected < 0.9 * (g - 1), selected
    else:
        assert selected < 0.1 * g, selected


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 63, 64, 65, 1000, 8192, 8200])
def test_collect_two_keeps_each_intervals_members_in_order(dtype, n):
    # The members of [l0, u0) to the low part and of [l1, u1) to the high part, each in input order, whatever
    # their density (blocks of 64 without members are skipped, members of the others found through a bit mask)
    # and where they fall (the tail after the last whole block, a block's first and last value), ties on the
    # edges included; an infinite empty second interval collects nothing.
    rng = np.random.default_rng([n, np.dtype(dtype).itemsize])
    v = np.round(rng.standard_normal(n), 2).astype(dtype)
    v[0] = v[-1] = 0.5
    part = np.full(n + 1, np.nan, dtype=dtype)
    other = np.full(n + 1, np.nan, dtype=dtype)
    for l0, u0, l1, u1 in [
        (-0.3, 0.5, 1.0, 1.2),
        (-9.0, 0.0, 0.0, 9.0),
        (0.5, 0.51, np.inf, np.inf),
        (2.0, 2.0, 3.0, 2.0),
    ]:
        l0, u0, l1, u1 = (np.array(e, dtype=dtype)[()] for e in (l0, u0, l1, u1))
        c0, c1 = groups._collect_two(v, n, l0, u0, l1, u1, part, other)
        low = v[(v >= l0) & (v < u0)]
        high = v[(v >= l1) & (v < u1)]
        assert (c0, c1) == (low.size, high.size)
        np.testing.assert_array_equal(part[:c0], low)
        np.testing.assert_array_equal(other[:c1], high)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["normal", "ties", "constant", "descending"])
def test_sorted_count_sample_is_the_sorted_strided_sample(dtype, kind):
    # The counted selection's sample (ranked by one vectorized count per value, ties ordered by position) is the
    # strided sample sorted.
    s = groups._COUNT_SAMPLE
    rng = np.random.default_rng([s, np.dtype(dtype).itemsize, len(kind)])
    for n in (1024, 3000, 8192):
        v = rng.standard_normal(n)
        if kind == "ties":
            v = np.round(v)
        elif kind == "constant":
            v[:] = -0.5
        elif kind == "descending":
            v = np.sort(v)[::-1].copy()
        v = v.astype(dtype)
        sample = np.full(groups._COUNT_SAMPLE + groups._BRACKET_SAMPLE, np.nan, dtype=dtype)
        groups._sorted_count_sample(v, n, sample)
        strided = v[((2 * np.arange(s) + 1) * n) // (2 * s)]
        np.testing.assert_array_equal(sample[:s], np.sort(strided))
