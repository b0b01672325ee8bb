"""The finite min/max kernels (fastquant._kernels.minmax) against NumPy, on random (A, G, B) layouts."""

from __future__ import annotations

import numpy as np
import pytest

from fastquant._kernels import minmax

# (A, G, B): tiny, global, planes, odd runs, short patterns (lanes, with and without a tail), long rows (columns)
LAYOUTS = [
    (1, 1, 1),
    (1, 1, 100_003),
    (3, 1, 4099),
    (1, 7, 5000),
    (5, 3, 2049),
    (4, 5, 777),
    (2001, 3, 1),
    (333, 7, 3),
    (97, 64, 1),
    (41, 2, 100),
    (9, 8192, 1),
    (3, 2731, 3),
    (19, 9000, 1),
    (11, 4001, 5),
    (2, 30_000, 1),
]
PARTS = [1, 2, 3]
DTYPES = [np.float32, np.float64]


def _data(rng, size, dtype, kind):
    x = rng.standard_normal(size) * 10.0 ** rng.integers(-3, 4)
    if kind == "zeros":  # signed zeros, some groups' minimum or maximum a zero of either sign
        x = np.abs(x) * np.where(rng.random(size) < 0.5, 1.0, 0.0)
        x = np.where(rng.random(size) < 0.3, -0.0, x)
        x[rng.random(size) < 0.2] *= -1.0
    x = x.astype(dtype)
    info = np.finfo(dtype)
    special = np.array(
        [np.nan, -np.nan, np.inf, -np.inf, info.max, -info.max, info.smallest_subnormal, -info.smallest_subnormal],
        dtype=dtype,
    )
    if kind in ("special", "zeros"):
        x[rng.random(size) < 0.05] = np.nan
        x[rng.random(size) < 0.02] = np.inf
        x[rng.random(size) < 0.02] = -np.inf
        pick = rng.random(size) < 0.01
        x[pick] = special[rng.integers(0, special.size, int(pick.sum()))]
        # NaNs with payloads and the sign bit set
        bits = x.view(np.uint32 if dtype == np.float32 else np.uint64)
        pick = rng.random(size) < 0.01
        bits[pick] = np.iinfo(bits.dtype).max - rng.integers(0, 1000, int(pick.sum())).astype(bits.dtype)
    return x


def _blank_groups(rng, x, a, g, b):
    # a few groups with no finite value: all NaN, all inf, or a mix of NaN and +-inf
    y = x.reshape(a, g, b)
    for j in rng.choice(g, size=min(g, 3), replace=False):
        kind = int(rng.integers(0, 3))
        if kind == 0:
            y[:, j, :] = np.nan
        elif kind == 1:
            y[:, j, :] = np.inf if rng.random() < 0.5 else -np.inf
        else:
            y[:, j, :] = rng.choice(np.array([np.nan, np.inf, -np.inf], dtype=x.dtype), size=(a, b))


def _numpy(x, a, g, b):
    y = x.reshape(a, g, b)
    finite = np.isfinite(y)
    lo = np.where(finite, y, np.inf).min(axis=(0, 2)).astype(np.float64)
    hi = np.where(finite, y, -np.inf).max(axis=(0, 2)).astype(np.float64)
    has_neg_zero = ((y == 0) & np.signbit(y)).any(axis=(0, 2))
    has_pos_zero = ((y == 0) & ~np.signbit(y)).any(axis=(0, 2))
    return np.stack([lo, hi], axis=1), has_neg_zero, has_pos_zero


def _check(got, x, a, g, b):
    want, has_neg_zero, has_pos_zero = _numpy(x, a, g, b)
    assert got.shape == (g, 2) and got.dtype == np.float64
    np.testing.assert_array_equal(got, want)  # == on values: 0.0 == -0.0
    # signed zeros: IEEE minimum/maximum order -0.0 below +0.0, whatever the order of the reduction
    zero_lo = got[:, 0] == 0
    np.testing.assert_array_equal(np.signbit(got[zero_lo, 0]), has_neg_zero[zero_lo])
    zero_hi = got[:, 1] == 0
    np.testing.assert_array_equal(~np.signbit(got[zero_hi, 1]), has_pos_zero[zero_hi])


def _cases():
    for i, layout in enumerate(LAYOUTS):
        for dtype in DTYPES:
            for kind in ("plain", "special", "zeros"):
                yield pytest.param(i, layout, dtype, kind, id=f"{layout}-{np.dtype(dtype).name}-{kind}")


def _case_data(seed, index, layout, dtype, kind):
    # the data of one case of _cases(): values of `kind`, and for all but plain ones some groups blanked
    a, g, b = layout
    rng = np.random.default_rng([seed, index, np.dtype(dtype).itemsize, len(kind)])
    x = _data(rng, a * g * b, dtype, kind)
    if kind != "plain":
        _blank_groups(rng, x, a, g, b)
    return x


def _kernels(x, a, g, b, n_parts):
    results = {
        "dispatch": minmax.finite_minmax(x, a, g, b, n_parts),
        "lanes": minmax.merge_parts(minmax.finite_minmax_lanes(x, minmax.lane_groups(g, b, x.itemsize), g, n_parts)),
        "columns": minmax.merge_parts(minmax.finite_minmax_columns(x, a, g, b, n_parts)),
    }
    if b >= 16 or x.size <= 1 << 16:  # the runs kernel is for long runs (one call per run), correct for any
        results["runs"] = minmax.merge_parts(minmax.finite_minmax_runs(x, g, b, n_parts))
    return results


@pytest.mark.parametrize(("index", "layout", "dtype", "kind"), list(_cases()))
def test_against_numpy(index, layout, dtype, kind):
    a, g, b = layout
    x = _case_data(20240601, index, layout, dtype, kind)
    first = None
    for n_parts in PARTS:
        for name, got in _kernels(x, a, g, b, n_parts).items():
            _check(got, x, a, g, b)
            bits = got.view(np.uint64)
            if first is None:
                first = bits
            # identical bits (zero signs included) whatever the kernel and the number of parts
            assert np.array_equal(bits, first), (name, n_parts)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_parts", PARTS)
def test_parts_shape_and_empty_parts(dtype, n_parts):
    # per-part results: (n_parts, G, 2); a part without values of a group reports (inf, -inf)
    rng = np.random.default_rng([7, n_parts, np.dtype(dtype).itemsize])
    x = rng.standard_normal(3 * 5000).astype(dtype)
    acc = minmax.finite_minmax_runs(x, 3, 5000, n_parts)
    assert acc.shape == (n_parts, 3, 2)
    want, _, _ = _numpy(x, 1, 3, 5000)
    np.testing.assert_array_equal(minmax.merge_parts(acc), want)
    for c in range(n_parts):
        begin = min(x.size, c * -(-x.size // n_parts))
        end = min(x.size, (c + 1) * -(-x.size // n_parts))
        for g in range(3):
            seg = x[max(begin, g * 5000) : min(end, (g + 1) * 5000)]
            if seg.size:
                assert tuple(acc[c, g]) == (seg.min(), seg.max())
            else:
                assert tuple(acc[c, g]) == (np.inf, -np.inf)
    # fewer values than lanes: all in the tail
    lanes = minmax.finite_minmax_lanes(x[:6], minmax.lane_groups(3, 1), 3, n_parts)
    assert lanes.shape == (n_parts, 3, 2)
    np.testing.assert_array_equal(minmax.merge_parts(lanes), _numpy(x[:6], 2, 3, 1)[0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width_groups", [1, 3, 16])
def test_columns_small_tiles(dtype, width_groups):
    # many tiles per part (tile width a few groups), rows in eights and a remainder
    rng = np.random.default_rng([11, width_groups, np.dtype(dtype).itemsize])
    a, g, b = 21, 37, 3
    x = _data(rng, a * g * b, dtype, "special")
    _blank_groups(rng, x, a, g, b)
    want, _, _ = _numpy(x, a, g, b)
    for n_parts in PARTS:
        out = np.empty((g, 2))
        minmax._columns(x, a, g, b, width_groups * b, out, n_parts, False)
        np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize(("index", "layout", "dtype", "kind"), [c for c in _cases() if c.values[1][0] > 1])
def test_merging_into_a_partial_equals_one_call(index, layout, dtype, kind):
    # finite_minmax(..., into=partial) over the two halves of the rows (A > 1) equals one call on all of them, bit
    # for bit (-0.0 below +0.0 across the halves too), on every path (the columns one merges in the kernel)
    a, g, b = layout
    x = _case_data(20261207, index, layout, dtype, kind)
    half = (a // 2) * g * b
    for n_parts in PARTS:
        partial = np.tile([np.inf, -np.inf], (g, 1))
        for piece, rows in ((x[:half], a // 2), (x[half:], a - a // 2)):
            assert minmax.finite_minmax(piece, rows, g, b, n_parts, into=partial) is partial
        _check(partial, x, a, g, b)
        assert np.array_equal(partial.view(np.uint64), minmax.finite_minmax(x, a, g, b, n_parts).view(np.uint64))


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_and_all_nan(dtype):
    x = np.empty(0, dtype=dtype)
    for got in (
        minmax.finite_minmax(x, 0, 4, 2, 2),
        minmax.merge_parts(minmax.finite_minmax_lanes(x, minmax.lane_groups(4, 2), 4, 2)),
        minmax.merge_parts(minmax.finite_minmax_columns(x, 0, 4, 2, 2)),
    ):
        np.testing.assert_array_equal(got, np.tile([np.inf, -np.inf], (4, 1)))
    x = np.full(3 * 4 * 5000, np.nan, dtype=dtype)
    for a, g, b in [(3, 4, 5000), (3 * 5000, 4, 1), (3, 4 * 5000, 1)]:
        np.testing.assert_array_equal(minmax.finite_minmax(x, a, g, b, 3), np.tile([np.inf, -np.inf], (g, 1)))


def test_lane_groups():
    for g, b in [(1, 1), (3, 1), (21, 1), (128, 1), (5, 7), (8192, 1)]:
        lanes = minmax.lane_groups(g, b, 4)
        assert lanes.size % (g * b) == 0 and lanes.size % 16 == 0 and lanes.size >= 4096
        np.testing.assert_array_equal(lanes, (np.arange(lanes.size) // b) % g)
