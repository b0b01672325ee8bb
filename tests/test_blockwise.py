"""Array-likes read in blocks (zarr, h5py, any object with shape, dtype and slicing): the same results as in
memory, bit for bit, within the read counts and memory cap of issue 7."""

from __future__ import annotations

import numpy as np
import pytest
from support import lower

import fastquant
from fastquant._plan import recording, tuning


class Counted:
    """An array-like over an ndarray that counts the elements read (and is not an ndarray)."""

    def __init__(self, x: np.ndarray, chunks=None):
        self.x = x
        self.shape = x.shape
        self.dtype = x.dtype
        self.read = 0
        if chunks is not None:
            self.chunks = chunks

    def __getitem__(self, index):
        piece = np.array(self.x[index])
        self.read += piece.size
        return piece


def _data(shape, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * (1000 if np.dtype(dtype).kind == "i" else 1)
    if np.dtype(dtype).kind == "f":
        x.reshape(-1)[::997] = np.nan
        x.reshape(-1)[5] = np.inf
    return x.astype(dtype)


MODES = [
    {"percentiles": (5, 95)},
    {"percentiles": (5, 95), "method": "exact"},
    {"percentiles": (1, 99), "axis": (1, 2)},
    {"percentiles": (2, 98), "axis": (0, 1), "method": "exact"},
    {"vmax": 1.0},
    {"vmin": -1.0, "axis": (1, 2)},
    {"vmin": -1.0, "vmax": 2.0},
    {},
]


@pytest.mark.parametrize("kw", MODES, ids=[str(sorted(m.items())) for m in MODES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_array_like_equals_in_memory(kw, dtype, monkeypatch):
    # Lowered knobs: small blocks (many per pass), and the engine at this size.
    lower(monkeypatch, numba_min_size=0, read_block=3000)
    x = _data((5, 96, 70), dtype)
    lazy = Counted(x, chunks=(1, 32, 70))
    with recording() as events:
        got = fastquant.to_uint8(lazy, max_memory="128MiB", **kw)
    assert ("source", {"dtype": "float32" if dtype != np.float64 else "float64", "direct": False, "chunked": True}) in [
        (e, d) for e, d in events
    ]
    np.testing.assert_array_equal(got, fastquant.to_uint8(x, **kw))
    lo, hi = fastquant.limits(Counted(x), **kw)
    lo_ref, hi_ref = fastquant.limits(x, **kw)
    np.testing.assert_array_equal(lo, lo_ref)
    np.testing.assert_array_equal(hi, hi_ref)


def test_small_blocks_are_many_blocks(monkeypatch):
    """The partition really splits the array (the bit-identity above is not one block in disguise)."""
    lower(monkeypatch, numba_min_size=0)
    x = _data((5, 96, 70))
    lazy = Counted(x)
    from fastquant import _source
    from fastquant._plan import make_plan

    plan = make_plan(x.shape, (0, 1, 2), True)
    source = _source.ChunkedSource(lazy, plan, 1000, (1, 32, 70))
    indexes = source.indexes()
    assert len(indexes) > 30
    assert all(i[1].start % 32 == 0 or i[1].start % 14 == 0 for i in indexes)  # chunk-aligned where a chunk fits


@pytest.mark.parametrize("axis", [None, (1, 2), (0, 2)])
def test_percentile_of_array_like(axis, monkeypatch):
    lower(monkeypatch, numba_min_size=0)
    x = _data((6, 80, 90), np.float64)
    got = fastquant.percentile(Counted(x), [0, 5, 50, 95, 100], axis=axis)
    np.testing.assert_array_equal(got, fastquant.percentile(x, [0, 5, 50, 95, 100], axis=axis))


@pytest.mark.parametrize(("dtype", "reads"), [(np.float32, 2), (np.float16, 2), (np.float64, 4)])
def test_exact_volume_limits_read_the_input_at_most(dtype, reads):
    """Issue 7: whole-volume exact limits take at most 2 reads (float32 and narrower), 4 for float64."""
    x = _data((4, 512, 640), dtype)  # 1.3 M elements: the engine path at the default knobs
    lazy = Counted(x)
    lo, hi = fastquant.limits(lazy, percentiles=(5, 95), method="exact")
    assert lazy.read <= reads * x.size
    finite = x[np.isfinite(x)].astype(np.float64 if dtype == np.float64 else np.float32)
    np.testing.assert_array_equal([lo.item(), hi.item()], np.percentile(finite, [5, 95]))


def test_per_slice_exact_limits_read_twice():
    x = _data((32, 256, 160))
    lazy = Counted(x)
    fastquant.limits(lazy, percentiles=(5, 95), axis=(1, 2), method="exact")
    assert lazy.read <= 2 * x.size


def test_out_may_be_an_array_like(monkeypatch):
    lower(monkeypatch, numba_min_size=0)
    x = _data((4, 64, 50))
    out = Counted(np.zeros(x.shape, np.uint8))
    out.__class__ = type("Writable", (Counted,), {"__setitem__": lambda s, i, v: s.x.__setitem__(i, v)})
    assert fastquant.to_uint8(Counted(x), percentiles=(5, 95), out=out) is out
    np.testing.assert_array_equal(out.x, fastquant.to_uint8(x, percentiles=(5, 95)))


def test_zarr_array(tmp_path):
    zarr = pytest.importorskip("zarr")
    x = _data((3, 700, 600))
    z = zarr.create_array(store=str(tmp_path / "x.zarr"), shape=x.shape, chunks=(1, 256, 256), dtype=x.dtype)
    z[...] = x
    for kw in ({"percentiles": (5, 95)}, {"percentiles": (5, 95), "axis": (1, 2), "method": "exact"}):
        np.testing.assert_array_equal(fastquant.to_uint8(z, **kw), fastquant.to_uint8(x, **kw))
    np.testing.assert_array_equal(fastquant.percentile(z, [5, 95]), fastquant.percentile(x, [5, 95]))


def test_h5py_dataset(tmp_path):
    h5py = pytest.importorskip("h5py")
    x = _data((3, 700, 600), np.float64)
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("pred", data=x, chunks=(1, 350, 600))
    with h5py.File(tmp_path / "x.h5", "r") as f:
        got = fastquant.to_uint8(f["pred"], percentiles=(5, 95), axis=(1, 2))
    np.testing.assert_array_equal(got, fastquant.to_uint8(x, percentiles=(5, 95), axis=(1, 2)))


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ("12 parsecs", ValueError, "not a size"),
        ("1MiB", ValueError, "below the minimum"),
        (2**20, ValueError, "below the minimum"),
        (True, TypeError, "size in bytes"),
        (1.5e9, TypeError, "size in bytes"),
    ],
)
def test_max_memory_is_checked(value, error, match):
    with pytest.raises(error, match=match):
        fastquant.to_uint8(np.zeros(4), max_memory=value)


@pytest.mark.parametrize(("text", "size"), [("512MiB", 512 << 20), ("2GiB", 2 << 30), ("1.5GB", 1_500_000_000)])
def test_max_memory_sizes(text, size):
    from fastquant._validate import check_memory

    assert check_memory(text) == size


def test_block_size_follows_max_memory():
    from fastquant._source import block_elements

    with tuning():
        small, large = block_elements(np.float32, 256 << 20), block_elements(np.float32, 1 << 30)
    assert large > 4 * small
    # two blocks in flight (as read, as kernels read it, as levels) stay within the cap
    assert 2 * large * (4 + 4 + 1) < (1 << 30)


@pytest.mark.parametrize("run", [1, 3, 16, 70])
@pytest.mark.parametrize("axis", [None, (1, 2), (0, 1)])
def test_sample_runs_are_the_same_over_blocks(run, axis, monkeypatch):
    """Samples in runs gather the elements their positions name (runs of `run` inner positions, one in every
    step_b; outer positions one in every step_a; sparse steps prime), the same in memory and over blocks of any
    size. Runs of whole rows (70) of an array-like read the sampled rows alone."""
    from fastquant import _passes, _source
    from fastquant._plan import make_plan

    x = _data((6, 50, 70))
    plan = make_plan(x.shape, (0, 1, 2) if axis is None else axis, True)
    sample = _passes.sample_pass(plan.layout, 16, np.float32, run)
    lay = plan.layout
    assert sample.run == min(run, lay.inner)
    assert (sample.step_a, sample.step_b) == ((17, 1) if lay.inner == 1 else (1, 17))  # stride 16 -> prime 17
    logical = np.ascontiguousarray(x.transpose(plan.perm)).reshape(lay.outer, lay.groups, lay.inner)
    b = np.arange(lay.inner)
    expected = logical[:: sample.step_a][:, :, (b // sample.run) % sample.step_b == 0]
    whole = _passes.run(sample, _source.ArraySource(x, plan))
    np.testing.assert_array_equal(whole, np.moveaxis(expected, 1, 0).reshape(lay.groups, -1))
    for block in (1000, 4321, 70):
        lazy = Counted(x)
        source = _source.ChunkedSource(lazy, plan, block)
        with recording() as trace:
            got = _passes.run(sample, source)
        np.testing.assert_array_equal(got, whole)
        rows_only = run == 70 and lay.inner > 70
        assert (source.sample_indexes(sample) is not None) == rows_only
        assert any(event == "sample" and "partial_read" in details for event, details in trace) == rows_only
        assert lazy.read == (got.size if rows_only else x.size)
    strided = _passes.run(sample, _source.ArraySource(np.asfortranarray(x), plan))  # the NumPy-indexing path
    np.testing.assert_array_equal(strided, whole)


@pytest.mark.parametrize("axis", [(1, 2), None])
def test_approx_samples_whole_rows_and_reads_them_alone(axis):
    """Issue 7: approx limits of an array-like take a partial read for the sample (whole rows at fixed positions,
    one row in 11 or more), then the write pass; the bytes equal the in-memory call's, which samples the same rows.
    """
    # 4 M-element slices: the approx rule samples about one element in 8 of each. All finite: non-finite values
    # can make the proof count -inf in one more pass.
    x = np.random.default_rng(7).standard_normal((8, 2048, 2048), dtype=np.float32)
    lazy = Counted(x)
    with recording() as trace:
        got = fastquant.to_uint8(lazy, percentiles=(5, 95), axis=axis)
    assert ("sample", {"run": 2048}) in trace and ("approx", {"proved": True}) in trace
    assert any(event == "sample" and details.get("partial_read") for event, details in trace)
    assert lazy.read <= x.size * (1 + 1 / 10)  # the sample (187 rows of 2048 per slice), then one write pass
    with recording() as memory_trace:
        np.testing.assert_array_equal(got, fastquant.to_uint8(x, percentiles=(5, 95), axis=axis))
    assert ("sample", {"run": 2048}) in memory_trace
    with recording() as swapped_trace:  # the gather of whole rows of byte-swapped words swaps them as it copies
        np.testing.assert_array_equal(got, fastquant.to_uint8(x.astype(">f4"), percentiles=(5, 95), axis=axis))
    assert ("swapped", {"pass_": "Sample"}) in swapped_trace


def test_whole_row_samples_touch_few_pages_of_a_memmap():
    """A memmap's sample is a partial read too: its slabs are views, and the gather reads only the pages of the
    sampled rows (runs of 16 one in 11 touched every 4 KiB page)."""
    from fastquant import _approx, _passes
    from fastquant._plan import make_plan

    cases = [((8, 2048, 2048), (1, 2)), ((32, 2048, 2048), (0, 1, 2)), ((21, 2000, 3000), (1, 2))]
    for shape, axis in [*cases, ((64, 1024, 500), (0, 1, 2))]:  # the last: runs of 3 rows of 500
        plan = make_plan(shape, axis, True)
        stride = _approx.sample_stride(plan.layout)
        sample = _passes.sample_pass(plan.layout, stride, np.float32, _approx.sample_run(plan.geometry, stride))
        assert sample.run % shape[-1] == 0 and sample.run >= 1024  # whole rows, at least a page of float32
        pages = np.unique(sample.inner_positions() * 4 // 4096)
        assert pages.size <= (plan.layout.inner * 4 // 4096) / 4
