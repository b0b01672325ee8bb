"""Chunking invariance: the engine's passes over random partitions of an array into blocks, run by several
"workers" whose partials are merged in random orders, give bit for bit the one-call in-memory result.

Blocks are irregular hyper-rectangles of the logical array (cut at random points of every axis, 1-element
pieces included, misaligned with the groups), visited in random order. Each case also asserts, through the
engine's trace, that the algorithm it names really ran on the partitioned source.
"""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest
from support import lower

import fastquant
import fastquant._passes as passes
from fastquant import _approx, _engine, _plan, _select
from fastquant._source import ArraySource, PartitionSource

pytestmark = pytest.mark.filterwarnings("error")

Q = np.array([0.0, 1.0, 5.0, 37.5, 50.0, 95.0, 100.0])


def random_partition(shape, rng, axes=None):
    """Blocks from random cuts of each axis (of `axes`, default all): a shuffled list of index tuples (about 30
    to 80 blocks, a 1-element piece at the start of every cut axis)."""
    pieces = {1: 30, 2: 5, 3: 3}.get(len(shape), 2)
    cuts = []
    for axis, n in enumerate(shape):
        if axes is not None and axis not in axes or n == 1:
            cuts.append([0, n])
            continue
        inner = sorted(set(rng.integers(1, n, size=min(pieces, n - 1)).tolist()) | {1})
        cuts.append([0, *inner, n])
    blocks = [
        tuple(slice(a, b) for a, b in choice)
        for choice in itertools.product(*[list(zip(c[:-1], c[1:], strict=True)) for c in cuts])
    ]
    rng.shuffle(blocks)
    return blocks


class ShuffledDriver:
    """passes.run replaced: blocks dealt to random workers, partials combined in a random nested order."""

    def __init__(self, rng):
        self.rng = rng
        self.passes = []

    def __call__(self, pass_, source):
        self.passes.append(type(pass_).__name__)
        assert not pass_.whole, "a whole-array pass on a partitioned source"
        workers = [pass_.create() for _ in range(3)]
        for block in source.blocks(aligned=pass_.aligned):
            pass_.append(workers[int(self.rng.integers(len(workers)))], block)
        order = self.rng.permutation(len(workers))
        merged = pass_.combine([workers[order[0]], pass_.combine([workers[i] for i in order[1:]])])
        return pass_.finalize(merged)


def layouts():
    rng = np.random.default_rng(20261201)

    def data(shape, dtype=np.float32, specials=True):
        x = rng.standard_normal(shape).astype(dtype) * 3
        if specials:
            flat = x.reshape(-1)
            picks = rng.choice(flat.size, flat.size // 50, replace=False)
            flat[picks[::3]] = np.nan
            flat[picks[1::3]] = -np.inf
            flat[picks[2::3]] = np.inf
            flat[: flat.size // 7] = np.round(flat[: flat.size // 7])  # ties
        return x

    return [
        ("global-2d", data((300, 301)), None),
        ("global-f64", data((40, 50, 60), np.float64), None),
        ("per-channel-chw", data((3, 200, 170)), (1, 2)),
        ("per-channel-hwc", data((180, 190, 3)), (0, 1)),
        ("per-column", data((400, 70)), 0),
        ("per-image-nchw", data((2, 3, 120, 110), np.float64), (2, 3)),
        ("non-adjacent-kept", data((4, 90, 3, 80)), (1, 3)),
        ("one-group-empty", np.where(np.arange(3)[:, None, None] == 1, np.nan, data((3, 150, 160))), (1, 2)),
    ]


LAYOUTS = layouts()


def _axes(x, axis):
    return fastquant._validate.normalize_axis(axis, x.ndim)


def sources(x, axis, rng):
    axes = _axes(x, axis)
    plan = _plan.make_plan(x.shape, axes, True)
    memory = ArraySource(np.ascontiguousarray(x), plan)
    kept = plan.geometry.kept
    partition = PartitionSource(
        x, plan, random_partition(plan.geometry.shape, rng), random_partition(plan.geometry.shape, rng, axes=kept)
    )
    return memory, partition


@pytest.fixture
def sampled(monkeypatch, numba_path):
    """Sampling from small groups, so brackets and approx limits run on these sizes."""
    lower(
        monkeypatch,
        sample_stride=8,
        min_sample=32,
        min_bracket_stride=2,
        approx_sample=1024,
        approx_min_stride=2,
        stream_block=4096,
    )


@pytest.mark.parametrize("name, x, axis", LAYOUTS, ids=[c[0] for c in LAYOUTS])
@pytest.mark.parametrize("algorithm", ["bracket", "bracket-overflow", "radix", "sort"])
def test_exact_percentiles_do_not_depend_on_blocks(name, x, axis, algorithm, monkeypatch, sampled):
    if algorithm == "bracket-overflow":  # ScanBlocks keeps at most 3 members per region: they overflow
        scan = _select.BracketSelection._scan

        def small_regions(self, thresholds):
            found = scan(self, thresholds)
            if isinstance(found, passes.ScanBlocks):
                found.cap = np.minimum(found.cap, 3)
            return found

        monkeypatch.setattr(_select.BracketSelection, "_scan", small_regions)
    if algorithm == "radix":
        if _plan.make_plan(x.shape, _axes(x, axis), True).layout.groups > 16:
            pytest.skip("radix selection serves up to 16 groups (more take the per-group selection)")
        lower(monkeypatch, min_sample=1 << 40)  # no sample: radix for every group
    elif algorithm == "sort":
        lower(monkeypatch, min_sample=1 << 40, radix_groups=0)  # no sample: per-group selection
    rng = np.random.default_rng(zlib.crc32(f"{name}-{algorithm}".encode()))
    memory, partition = sources(x, axis, rng)
    expected = _select.percentiles(memory, Q)
    driver = ShuffledDriver(rng)
    monkeypatch.setattr(passes, "run", driver)
    with _plan.recording() as trace:
        got = _select.percentiles(partition, Q)
    np.testing.assert_array_equal(got, expected)
    assert got.tobytes() == expected.tobytes()
    events = [e for e, _ in trace]
    if algorithm.startswith("bracket"):
        assert ("bracket", {"resolved": True}) in trace, trace
        # Runs layouts count and collect in one pass over the blocks; lane patterns count, then collect.
        lanes = memory.layout.lane_count(_plan.current()) and memory.layout.groups > 1
        counting = ["CountBelow", "Collect"] if lanes else ["ScanBlocks"]
        if algorithm == "bracket-overflow" and not lanes:
            counting.append("Collect")  # the regions that overflowed, collected again exactly
        assert driver.passes == ["Sample", *counting], driver.passes
    else:
        assert algorithm in events, trace
        assert ("RadixHistogram" if algorithm == "radix" else "GroupSort") in driver.passes


@pytest.mark.parametrize("name, x, axis", LAYOUTS, ids=[c[0] for c in LAYOUTS])
def test_limits_and_conversion_do_not_depend_on_blocks(name, x, axis, monkeypatch, sampled):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    memory, partition = sources(x, axis, rng)
    pct = np.array([5.0, 95.0])
    vmax = np.ones(memory.layout.groups)
    one_sided = [_engine.exact_limits(memory, x.dtype, None, vmax, None)]
    approx = [_approx.limits(memory, pct)]
    expected_out = np.empty(x.shape, np.uint8)
    lo, hi = _engine.exact_limits(memory, x.dtype, None, None, (5.0, 95.0))
    expected_counts = _engine.convert(memory, lo, hi, 3, expected_out.transpose(memory.perm), windows=None)
    driver = ShuffledDriver(rng)
    monkeypatch.setattr(passes, "run", driver)
    with _plan.recording() as trace:
        one_sided.append(_engine.exact_limits(partition, x.dtype, None, vmax, None))
        approx.append(_approx.limits(partition, pct))
        got_out = np.full(x.shape, 77, np.uint8)
        got_counts = _engine.convert(partition, lo, hi, 3, got_out.transpose(partition.perm))
    for a, b in zip(*one_sided, strict=True):
        assert a.tobytes() == b.tobytes()
    assert (approx[0] is None) == (approx[1] is None)
    if approx[0] is not None:
        assert ("approx", {"proved": True}) in trace
        for a, b in zip(*approx, strict=True):
            assert a.tobytes() == b.tobytes()
    assert got_counts is None and expected_counts is None
    np.testing.assert_array_equal(got_out, expected_out)
    assert "FiniteMinMax" in driver.passes and "Convert" in driver.passes


@pytest.mark.parametrize("name, x, axis", [c for c in LAYOUTS if c[0] in ("global-2d", "per-channel-hwc")])
def test_approx_proof_counts_do_not_depend_on_blocks(name, x, axis, monkeypatch, sampled):
    """The fused convert-and-count pass of approx: the same window counts and bytes from any partition."""
    rng = np.random.default_rng(7)
    memory, partition = sources(x, axis, rng)
    pct = np.array([5.0, 95.0])
    lo, hi, windows = _approx.estimates(memory, pct)
    expected_out = np.empty(x.shape, np.uint8)
    expected = _engine.convert(memory, lo, hi, 0, expected_out.transpose(memory.perm), windows)
    monkeypatch.setattr(passes, "run", ShuffledDriver(rng))
    got_lo, got_hi, got_windows = _approx.estimates(partition, pct)
    assert got_lo.tobytes() == lo.tobytes() and got_windows.tobytes() == windows.tobytes()
    got_out = np.empty(x.shape, np.uint8)
    got = _engine.convert(partition, lo, hi, 0, got_out.transpose(partition.perm), windows)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got_out, expected_out)


def test_partials_pickle():
    """Partials and passes are plain data: a distributed backend ships them between processes."""
    import pickle

    thresholds = np.array([[0.0, 1.0, np.inf]], dtype=np.float32)
    for pass_ in [
        passes.CountBelow(thresholds),
        passes.FiniteMinMax(3),
        passes.RadixHistogram(np.array([0, 2]), 3, 16, 0, np.zeros(2, np.uint64), False),
        passes.GroupSort(3, np.array([0.5]), np.dtype(np.float32)),
    ]:
        clone = pickle.loads(pickle.dumps(pass_))
        partial = pickle.loads(pickle.dumps(clone.create()))
        assert type(clone) is type(pass_)
        assert partial is not None
