"""The +-1 grey level bound of ``method="approx"`` on adversarial inputs, on the Numba path, at sizes where the
sampling-based fast path runs; and exactness of ``method="exact"`` (vs the reference) and of
``percentile(method="exact")`` (vs NumPy) on the same inputs.

The inputs are the issue's list (outliers of +-1e30, values packed in [1000, 1001], two-valued data,
denormals, signed zeros, many ties) plus inputs aimed at a strided sample: data periodic with the sampling
stride, image columns that a row-major sample of an H x W x 3 image keeps hitting, a narrow peak with far
tails, mostly-NaN data.

Sizes. The engine samples one element in (up to) ``sample_stride`` once a group has at least
``sample_stride * min_sample`` elements (2 Mi with the defaults of ``fastquant._plan.Tuning``);
``method="approx"`` samples about ``approx_sample`` elements of groups of at least ``approx_min_stride`` times
that (4 Mi). Most tests lower
these knobs so that the sampling paths run on ~0.3-1 M elements per group and the suite stays fast;
``test_sampling_path_runs`` checks that they really do, and the ``*_default_thresholds`` tests repeat the worst
inputs at the untouched thresholds.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
from support import assert_approx_percentile, assert_identical, assert_within_one, lower, numpy_percentile

import fastquant
import fastquant._plan
import fastquant._select
from fastquant import reference

pytestmark = pytest.mark.filterwarnings("error")

N = 600_000  # elements per global-limits input: above the lowered sampling threshold
HW = (512, 512)  # per channel: 262 144 elements per group
PERCENTILE_PAIRS = [(5, 95), (0, 100), (1, 99), (0.1, 99.9), (50, 50), (2.5, 97.5)]
Q = [0, 0.1, 1, 2.5, 5, 25, 50, 75, 95, 97.5, 99, 99.9, 100]
LOWERED_MIN_SAMPLE = 1024
LOWERED_APPROX_SAMPLE = 1 << 17


@pytest.fixture
def sampling_sizes(monkeypatch, numba_path):
    """Numba path, with sampling from 256 Ki elements per group (fails loudly if the knobs move)."""
    stride = fastquant._plan.current().sample_stride
    lower(monkeypatch, min_sample=LOWERED_MIN_SAMPLE, approx_sample=LOWERED_APPROX_SAMPLE, approx_min_stride=2)
    assert stride * LOWERED_MIN_SAMPLE <= HW[0] * HW[1] <= N


def _float32_bits(bits: np.ndarray) -> np.ndarray:
    return bits.astype(np.uint32).view(np.float32)


def _build(name: str, n: int = N) -> np.ndarray:
    """The adversarial input `name` with n elements (1-D, C-contiguous), from a fixed seed."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    normal = rng.standard_normal(n)
    if name == "outliers-1e30":
        x = normal.astype(np.float32)
        x[rng.choice(n, 600, replace=False)] = np.float32(1e30) * rng.choice([-1, 1], 600)
        return x
    if name == "outliers-float64":
        x = normal.copy()
        x[rng.choice(n, 300, replace=False)] = rng.choice([-1e300, 1e300, -1e30, 1e30], 300)
        return x
    if name == "packed-1000-1001":
        return (1000 + rng.random(n)).astype(np.float32)
    if name == "packed-float64":
        return 1000 + rng.random(n) * 1e-9  # ~4 million float64 steps between the ends
    if name == "two-valued":
        # 5% zeros exactly: the 5th percentile interpolates between the two values
        x = np.ones(n, dtype=np.float32)
        x[rng.choice(n, n // 20, replace=False)] = 0
        return x
    if name == "two-valued-adjacent":
        one = np.float32(1)
        return np.where(rng.random(n) < 0.5, one, np.nextafter(one, np.float32(2))).astype(np.float32)
    if name == "denormals-float32":
        bits = rng.integers(0, 2**23, n) | (rng.integers(0, 2, n) << 31)
        return _float32_bits(bits)
    if name == "denormals-float64":
        bits = rng.integers(0, 2**52, n, dtype=np.uint64) | (rng.integers(0, 2, n, dtype=np.uint64) << 63)
        return bits.view(np.float64)
    if name == "signed-zeros":
        x = np.where(rng.random(n) < 0.5, np.float32(-0.0), np.float32(0.0)).astype(np.float32)
        few = rng.choice(n, n // 10, replace=False)
        x[few] = rng.uniform(-1e-3, 1e-3, few.size)
        return x
    if name == "ties":
        return rng.integers(0, 5, n).astype(np.float32)
    if name == "periodic-256":
        # element 0 of every 256: a sample with stride 256 from index 0 sees only the spike
        pattern = rng.standard_normal(256).astype(np.float32)
        pattern[0] = 100
        return np.tile(pattern, n // 256 + 1)[:n]
    if name == "periodic-4096":
        pattern = np.sort(rng.standard_normal(4096)).astype(np.float32)
        return np.tile(pattern, n // 4096 + 1)[:n]
    if name == "mostly-nan":
        x = normal.astype(np.float32)
        u = rng.random(n)
        x[u < 0.6] = np.nan
        x[(u >= 0.6) & (u < 0.65)] = np.inf
        x[(u >= 0.65) & (u < 0.7)] = -np.inf
        return x
    if name == "wide-float32":
        return (rng.choice([-1, 1], n) * 10.0 ** rng.uniform(-38, 38, n)).astype(np.float32)
    if name == "wide-float64":
        return rng.choice([-1, 1], n) * 10.0 ** rng.uniform(-300, 300, n)
    if name == "peak-with-tails":
        x = (rng.random(n) * 1e-6).astype(np.float32)
        tails = rng.choice(n, n // 50, replace=False)
        x[tails] = rng.choice([-1e20, 1e20], tails.size) * rng.random(tails.size)
        return x
    if name == "sorted":
        return np.sort(normal).astype(np.float32)
    if name == "reverse-sorted":
        return np.sort(normal)[::-1].astype(np.float32)
    if name == "negative-only":
        return -(1 + rng.random(n)).astype(np.float32)
    if name == "constant-but-one":
        x = np.full(n, 0.5, dtype=np.float32)
        x[n // 3] = 1e30
        return x
    if name == "float16":
        return (normal * 100).astype(np.float16)
    if name == "uint16":
        return rng.integers(0, 2**16, n).astype(np.uint16)
    if name == "int64-huge":
        return rng.integers(-(2**62), 2**62, n)
    raise ValueError(name)


GLOBAL_INPUTS = [
    "outliers-1e30",
    "outliers-float64",
    "packed-1000-1001",
    "packed-float64",
    "two-valued",
    "two-valued-adjacent",
    "denormals-float32",
    "denormals-float64",
    "signed-zeros",
    "ties",
    "periodic-256",
    "periodic-4096",
    "mostly-nan",
    "wide-float32",
    "wide-float64",
    "peak-with-tails",
    "sorted",
    "reverse-sorted",
    "negative-only",
    "constant-but-one",
    "float16",
    "uint16",
    "int64-huge",
]

_inputs: dict[tuple, np.ndarray] = {}


def adversarial(name: str, n: int = N) -> np.ndarray:
    key = (name, n)
    if key not in _inputs:
        x = _build(name, n)
        x.setflags(write=False)  # shared between tests: nobody may write into it
        _inputs[key] = x
    return _inputs[key]


def _check_conversion(x, percentiles, axis, context):
    expected = reference.to_uint8(x, percentiles=percentiles, axis=axis)
    exact = fastquant.to_uint8(x, percentiles=percentiles, axis=axis, method="exact")
    assert_identical(exact, expected, f"exact {context}")
    approx = fastquant.to_uint8(x, percentiles=percentiles, axis=axis, method="approx")
    assert_within_one(approx, exact, f"approx vs exact {context}")
    again = fastquant.to_uint8(x, percentiles=percentiles, axis=axis, method="approx")
    assert approx.tobytes() == again.tobytes(), f"approx not deterministic {context}"


@pytest.mark.parametrize("name", GLOBAL_INPUTS)
def test_global_limits(name, sampling_sizes):
    x = adversarial(name)
    for percentiles in PERCENTILE_PAIRS:
        _check_conversion(x, percentiles, None, f"{name} {percentiles}")


@pytest.mark.parametrize("name", GLOBAL_INPUTS)
def test_percentile_exact_equals_numpy(name, sampling_sizes):
    x = adversarial(name)
    direct = numpy_percentile(x, Q)
    np.testing.assert_array_equal(fastquant.percentile(x, Q, method="exact"), direct, err_msg=name)
    assert_approx_percentile(fastquant.percentile(x, Q, method="approx"), x, Q, None, name)


def _hwc(kind: str) -> np.ndarray:
    """H x W x 3 images whose channels are three different adversaries, or one column-structured trap."""
    n = HW[0] * HW[1]
    if kind == "mixed-channels":
        chans = [adversarial(name, n) for name in ("denormals-float32", "packed-1000-1001", "outliers-1e30")]
        return np.stack(chans, axis=-1).reshape(*HW, 3)
    if kind == "columns":
        # every pixel of columns 0 and 256 (the ones a stride-256 row-major sample of the channel-interleaved
        # image lands on) differs from the rest of the image
        rng = np.random.default_rng(17)
        x = rng.standard_normal((*HW, 3)).astype(np.float32)
        x[:, ::256, :] = 50.0
        return x
    if kind == "channel-scales":
        rng = np.random.default_rng(19)
        x = rng.standard_normal((*HW, 3)).astype(np.float32)
        return x * np.array([1e-30, 1.0, 1e30], dtype=np.float32)
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["mixed-channels", "columns", "channel-scales"])
def test_per_channel_hwc(kind, sampling_sizes):
    x = _hwc(kind)
    for percentiles in [(5, 95), (0.1, 99.9), (0, 100)]:
        _check_conversion(x, percentiles, (0, 1), f"{kind} {percentiles}")
    np.testing.assert_array_equal(
        fastquant.percentile(x, Q, axis=(0, 1), method="exact"), numpy_percentile(x, Q, (0, 1))
    )


def test_per_image_and_channel_nchw(sampling_sizes):
    names = ["periodic-256", "two-valued", "signed-zeros", "ties"]
    n = HW[0] * HW[1]
    planes = [adversarial(name, n).reshape(HW) for name in names]
    x = np.stack(planes).reshape(2, 2, *HW)
    for percentiles in [(5, 95), (1, 99)]:
        _check_conversion(x, percentiles, (2, 3), f"nchw {percentiles}")
    np.testing.assert_array_equal(
        fastquant.percentile(x, Q, axis=(2, 3), method="exact"), numpy_percentile(x, Q, (2, 3))
    )


def test_sampling_path_runs(sampling_sizes):
    """Guard for the sizes above: the bracket step resolves a normal input (exact), and approximate limits
    are proposed from a sample and proved in the conversion pass (approx)."""
    with fastquant._plan.recording() as trace:
        fastquant.to_uint8(adversarial("sorted"), percentiles=(5, 95), method="exact")
        fastquant.to_uint8(_hwc("channel-scales"), percentiles=(5, 95), axis=(0, 1), method="approx")
        fastquant.to_uint8(adversarial("sorted"), percentiles=(5, 95), method="approx")
    chosen = [(event, details) for event, details in trace if event in ("bracket", "approx", "radix", "sort")]
    assert chosen == [("bracket", {"resolved": True}), ("approx", {"proved": True}), ("approx", {"proved": True})]


def test_exact_when_collection_regions_overflow(monkeypatch, sampling_sizes):
    """Regions sized from the sample can be too small; the overflowing brackets are collected again."""
    original = fastquant._select.propose_brackets

    def tiny_regions(*args, **kwargs):
        low, high, expected = original(*args, **kwargs)
        return low, high, np.ones_like(expected)

    monkeypatch.setattr(fastquant._select, "propose_brackets", tiny_regions)
    x = adversarial("sorted")
    with fastquant._plan.recording() as trace:
        np.testing.assert_array_equal(fastquant.percentile(x, Q), numpy_percentile(x, Q))
    assert [d for e, d in trace if e == "collect"], trace
    assert ("bracket", {"resolved": True}) in trace


def _approx_results(trace) -> list[bool]:
    return [details["proved"] for event, details in trace if event == "approx" and "proved" in details]


@pytest.mark.parametrize("layout", ["global", "hwc"])
def test_approx_proved_with_non_finite_values(layout, monkeypatch, sampling_sizes):
    """NaN and +-inf make the window counts ambiguous (-inf lies below every edge); the proof still holds
    (after counting -inf) and the result stays within one level of the exact one."""
    rng = np.random.default_rng(11)
    shape = (1000, 700) if layout == "global" else (1000, 700, 3)
    x = rng.standard_normal(shape).astype(np.float32)
    flat = x.reshape(-1)
    picks = rng.permutation(flat.size)
    flat[picks[: flat.size // 20]] = np.nan
    flat[picks[flat.size // 20 : flat.size // 20 * 2]] = -np.inf
    flat[picks[flat.size // 20 * 2 : flat.size // 20 * 3]] = np.inf
    axis = None if layout == "global" else (0, 1)
    with fastquant._plan.recording() as trace:
        approx = fastquant.to_uint8(x, percentiles=(5, 95), axis=axis, nan=7)
    results = _approx_results(trace)
    exact = reference.to_uint8(x, percentiles=(5, 95), axis=axis, nan=7)
    assert_within_one(approx, exact, f"non-finite {layout}")
    assert (approx != exact).any()  # the sample's limits were used
    assert results == [True]


def test_approx_unproved_limits_fall_back_to_exact(monkeypatch, sampling_sizes):
    """With no tolerance the proof fails on continuous data; the result is then the exact conversion."""
    lower(monkeypatch, approx_tolerance=0.0)
    with fastquant._plan.recording() as trace:
        for x, axis in [(adversarial("sorted"), None), (_hwc("channel-scales"), (0, 1))]:
            approx = fastquant.to_uint8(x, percentiles=(5, 95), axis=axis, method="approx")
            assert_identical(approx, reference.to_uint8(x, percentiles=(5, 95), axis=axis), f"fallback {axis}")
    assert _approx_results(trace) == [False, False]


def test_approx_proved_limits_differ_from_exact_within_one(sampling_sizes):
    """When the proof holds, the approximate limits are the sample's: some levels differ, none by more than 1."""
    x = np.random.default_rng(7).standard_normal((1000, 700, 3)).astype(np.float32)  # sampled 1 in 5
    approx = fastquant.to_uint8(x, percentiles=(5, 95), axis=(0, 1), method="approx")
    exact = fastquant.to_uint8(x, percentiles=(5, 95), axis=(0, 1), method="exact")
    assert_within_one(approx, exact, "proved approx")
    assert (approx != exact).any()


def _layout_variants(x: np.ndarray) -> dict[str, np.ndarray]:
    """Fortran order, a strided view and swapped byte order of the same values as x."""
    padded = np.empty(x.shape[:-1] + (2 * x.shape[-1],), dtype=x.dtype)
    padded[..., ::2] = x
    return {"fortran": np.asfortranarray(x), "strided": padded[..., ::2], "swapped": x.astype(x.dtype.newbyteorder())}


@pytest.mark.parametrize("name", ["sorted", "outliers-1e30", "mostly-nan", "hwc-mixed-channels"])
def test_approx_same_bytes_for_every_memory_layout(name, sampling_sizes):
    """The approximate result depends on the values only: C order, Fortran order, a strided view and
    swapped byte order of the same array give the same bytes (per-channel samples hold > 8192 elements:
    numpy/numpy#31980 mis-unravels (n, g, 1) index arrays past that)."""
    if name.startswith("hwc-"):
        x, axis = _hwc(name.removeprefix("hwc-")), (0, 1)
    else:
        x, axis = adversarial(name).reshape(600, -1), None
    expected = fastquant.to_uint8(x, percentiles=(5, 95), axis=axis)
    for label, variant in _layout_variants(x).items():
        got = fastquant.to_uint8(variant, percentiles=(5, 95), axis=axis)
        assert got.tobytes() == expected.tobytes(), f"{name} {label}"


@pytest.mark.parametrize("name", ["periodic-256", "outliers-1e30", "packed-1000-1001", "two-valued"])
def test_global_limits_default_thresholds(name, numba_path):
    """The worst inputs again at the untouched sampling thresholds (> _SAMPLE_STRIDE * _MIN_SAMPLE)."""
    n = fastquant._plan.current().sample_stride * fastquant._plan.current().min_sample + 12_345
    x = adversarial(name, n)
    for percentiles in [(5, 95), (0.1, 99.9)]:
        _check_conversion(x, percentiles, None, f"{name} n={n} {percentiles}")
    np.testing.assert_array_equal(fastquant.percentile(x, Q), numpy_percentile(x, Q), err_msg=name)
    _inputs.pop((name, n))  # 17-34 MB each


@pytest.mark.parametrize("layout", ["planes", "lanes"])
def test_exact_when_members_exceed_one_collection(layout, monkeypatch, sampling_sizes):
    """Many percentiles of many groups: the brackets' members do not fit the cap at once, so they are
    collected in batches, a pass each (not handed to the per-group sort of every group), and stay exact."""
    lower(monkeypatch, max_candidates=1 << 20)
    rng = np.random.default_rng(23)
    shape, axis = ((24, *HW), (1, 2)) if layout == "planes" else ((*HW, 24), (0, 1))
    x = rng.standard_normal(shape).astype(np.float32)
    q = [1, 5, 25, 50, 75, 95, 99]
    with fastquant._plan.recording() as trace:
        result = fastquant.percentile(x, q, axis=axis, method="exact")
    np.testing.assert_array_equal(result, numpy_percentile(x, q, axis=axis))
    events = [event for event, _ in trace if event in ("bracket", "collect", "radix", "sort")]
    assert events.count("collect") >= 2, trace
    assert events[-1] == "bracket" and "sort" not in events and "radix" not in events, events
    assert ("bracket", {"resolved": True}) in trace


def test_bracket_larger_than_a_collection_goes_to_radix(monkeypatch, sampling_sizes):
    """A group whose one bracket holds more members than a whole batch takes radix selection; the others are
    still collected in batches, and every group is exact."""
    lower(monkeypatch, max_candidates=1 << 17)  # a batch: 64 Ki members on 2 parts, 128 Ki on 1
    rng = np.random.default_rng(29)
    x = rng.standard_normal((4, *HW)).astype(np.float32)
    x[2] = np.where(rng.random(HW) < 0.9, np.float32(0.5), x[2])  # 90 % ties: one bracket holds most of it
    q = [1, 5, 25, 50, 75, 95, 99]
    with fastquant._plan.recording() as trace:
        result = fastquant.percentile(x, q, axis=(1, 2), method="exact")
    np.testing.assert_array_equal(result, numpy_percentile(x, q, axis=(1, 2)))
    assert ("radix", {"groups": [2]}) in trace, trace
    assert [d for e, d in trace if e == "collect"], trace


def test_planes_past_the_in_cache_selection_take_brackets(numba_path):
    """Groups just larger than the per-group selection in cache (2**17 values) take the bracket step at the
    default thresholds, exactly: with a larger minimum sample they took that selection's own bracketed path over
    the rows, 30 times slower (64 planes of 384²: 165 ms, 5.3 ms now)."""
    from fastquant._kernels import groups

    side = math.isqrt(groups._TILE) + 2  # 364² = 132 496 values per plane
    assert side * side > groups._TILE and fastquant._plan.current().min_sample * 16 <= side * side
    x = np.random.default_rng(31).standard_normal((9, side, side)).astype(np.float32)
    with fastquant._plan.recording() as trace:
        result = fastquant.percentile(x, Q, axis=(1, 2), method="exact")
    np.testing.assert_array_equal(result, numpy_percentile(x, Q, (1, 2)))
    events = [event for event, _ in trace if event in ("bracket", "radix", "sort")]
    assert events == ["bracket"] and ("bracket", {"resolved": True}) in trace, trace
