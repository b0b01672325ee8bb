"""The plan of a call: the layout of the groups, the path that runs it, and every tuning knob, in one place.

Layout. Limits are computed per *group*: the index over the kept (non-reduced) axes. The engine sees the input in a
*logical* axis order in which the kept axes are adjacent (the input's own order when they already are, else the
kept axes first), so in C order it is an ``(outer, groups, inner)`` array: element ``(a, g, b)`` belongs to group
``g``. Blocks of any source are sub-arrays of that logical array (:mod:`fastquant._source`).

Path. Below ``Tuning.numba_min_size`` elements NumPy does the work (:mod:`fastquant._numpy_path`), so a small
one-shot conversion never imports numba; above it the engine and its kernels. The choice depends on the size only.

Tuning. :class:`Tuning` holds every knob; :func:`tuning` lowers or raises them for a block of code (the seam the
tests use, instead of patching module globals). :func:`recording` collects a trace of what the engine chose and
did, so a test can assert that the path it names really ran.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator

import numpy as np


@dataclasses.dataclass(frozen=True)
class Tuning:
    """Every size threshold and block length of the engine (defaults are the measured ones)."""

    numba_min_size: int = 1 << 20  # inputs this large (elements) take the engine; smaller ones NumPy
    stream_block: int = 1 << 20  # elements per block read from a source that kernels cannot read in place
    read_block: int = 0  # elements per block read from an array-like (0: as many as `max_memory` allows)
    band_rows: int = 0  # rows per band of an image that `fastquant.convert` writes (0: from `max_memory`)
    sample_stride: int = 256  # about one element in this many (at most; 257: steps are primes) proposes brackets
    sample_run: int = 16  # approx samples are runs of this many consecutive inner elements, one run in a prime
    # number of runs (11 or more): one cache line of float32 in 11 or more is read, where single elements at stride
    # 16 touched every line (measured at one in 17: the approx sample of 32×2048² went from 25 ms to 5 ms, with
    # smaller limit errors; see sample_pass). Where groups hold many rows, the runs are whole rows instead:
    sample_row: int = 1024  # approx samples of image rows are runs of whole rows, at least this many elements (a
    # page of float32), so that a memmap or a row-chunked source is read in part (see _approx.sample_run)
    min_sample_runs: int = 128  # whole-row runs only where each group's sample holds at least this many runs
    min_sample: int = 1 << 13  # sampled elements per group that propose brackets (about this many at least), so
    # that groups from 2**17 (those too large for the per-group selection in cache) take brackets: with 2**14,
    # 64 planes of 384² took the per-group selection's own bracketed path, 165 ms, and take 5.3 ms now; N×C×H×W
    # 16×16×512² 32 -> 26 ms, C×H×W 21×1024² 6.9 -> 6.4 ms (exact; AVX-512 compress makes more members cheap)
    lane_min_sample: int = 1 << 15  # the same for lane patterns, whose members cost more to gather (scattered
    # one or two per word of flags). Exact limits, alternated in one process, min of 7: H×W×C 1024²×128 74.9 ms
    # with 2**14, 71.6 with 2**15, 82.1 with 2**16; H×W×C 2048²×21 43.9, 41.0, 38.6
    lane_sample_stride: int = 32  # and larger lane groups sample one element in this many, up to lane_max_sample
    lane_max_sample: int = 1 << 17  # per group: H×W×C 2048²×21 exact (groups of 2**22) 44.1-45.6 -> 35.9-36.8 ms
    # with 2**17 instead of 2**15; H×W×C 1024²×128 (2**20: 2**15 either way) as before; 4096²×3 (2**24: 2**17
    # instead of 2**16) 17.2-18.5 ms either way
    min_bracket_stride: int = 16  # groups too small for a sample this sparse skip the bracket step
    approx_sample: int = 1 << 19  # about this many sampled elements per group propose approximate limits. With
    # 2**18 the proof window of a limit of iid normal data lies 2.8 sigma of the estimate away, so a call with 21
    # channels fails the proof (then the exact limits and a second conversion) about 1 time in 5 in theory, 1 in
    # 12 seeded calls measured; 2**19 (1.45x for the smallest groups, whose step is 11) puts it at 3.4-3.9 sigma
    approx_min_stride: int = 8  # at most this share of the data is sampled (smaller groups: exact limits)
    approx_tolerance: float = 0.9  # proved limit error, in grey levels of the proposed range (must stay below 1)
    max_approx_groups: int = 64  # more groups than this: approximate limits are the exact ones
    max_candidates: int = 1 << 23  # bracket members collected at most (32 MiB of float32)
    radix_groups: int = 16  # groups per radix pass at most (histogram rows of 512 KiB per part)
    memory_budget: int = 64 << 20  # bytes of scratch (histograms, regions) a call may use besides its output
    max_lanes: int = 4096  # repeating group patterns up to this period use the per-lane kernels (measured: 64 -> 4096
    # took H×W×128 exact limits from 1.75 s to 0.17 s)
    lane_block: int = 512  # about this many lanes (a multiple of the period): one parameter per element of a block
    count_block: int = 1 << 12  # elements per counting step (L1-resident across threshold sweeps)
    lane_count_block: int = 1 << 14  # elements per counting step of the lane kernels, in steps of 8 rows of lanes
    # (L2-resident: H×W×21 conversion with window counts took 23.1 ms in steps of 8 rows, 19.8 ms in steps of 24)
    scan_block: int = 1 << 14  # bytes of input per counting-and-collecting step (L1-resident)


# Process-wide (not per thread or context): a test that lowers a knob lowers it for the threads it starts too.
_tuning = Tuning()
_trace: list | None = None


def current() -> Tuning:
    """The knobs in force."""
    return _tuning


@contextlib.contextmanager
def tuning(**changes) -> Iterator[Tuning]:
    """Run a block with some knobs changed, e.g. ``with tuning(numba_min_size=0): ...`` (tests, experiments).
    Not for concurrent use: the knobs are process-wide."""
    global _tuning
    previous = _tuning
    _tuning = dataclasses.replace(previous, **changes)
    try:
        yield _tuning
    finally:
        _tuning = previous


@contextlib.contextmanager
def recording() -> Iterator[list[tuple[str, dict]]]:
    """Collect the engine's trace (``(event, details)`` pairs) for a block of code."""
    global _trace
    previous, events = _trace, []
    _trace = events
    try:
        yield events
    finally:
        _trace = previous


def note(event: str, **details) -> None:
    """Add an event to the trace, if one is being recorded (cheap otherwise)."""
    if _trace is not None:
        _trace.append((event, details))


@dataclasses.dataclass(frozen=True)
class Layout:
    """The logical array in C order as (outer, groups, inner): `groups` groups, each reduced over the others."""

    outer: int
    groups: int
    inner: int

    @property
    def group_size(self) -> int:
        return self.outer * self.inner

    @property
    def period(self) -> int:
        return self.groups * self.inner

    def lane_groups(self, lanes: int) -> np.ndarray:
        return (np.arange(lanes) // self.inner) % self.groups

    def bracket_stride(self, tuning: Tuning) -> int:
        """The sampling stride of the bracket step (0: groups too small for it): sparse for large groups, denser
        for smaller ones, so every sample holds at least ``min_sample`` elements."""
        stride = min(tuning.sample_stride, self.group_size // max(tuning.min_sample, 1))
        if stride < max(tuning.min_bracket_stride, 1):
            return 0
        if self.lane_count(tuning):  # denser: narrower brackets, fewer members to gather (see lane_min_sample)
            target = self.group_size // max(tuning.lane_sample_stride, 1)
            target = min(max(target, tuning.lane_min_sample), tuning.lane_max_sample)
            stride = max(tuning.min_bracket_stride, min(stride, self.group_size // max(target, 1)))
        return stride

    def lane_count(self, tuning: Tuning) -> int:
        """Lane block length for a short repeating group pattern, or 0 to use the per-run kernels."""
        if self.groups == 1 or self.period > tuning.max_lanes or self.inner >= 16:
            return 0
        # Long enough for the loops over lanes to vectorize well, and a multiple of 32 where possible, so that
        # they have no scalar remainder.
        unit = math.lcm(self.period, 32)
        return unit * max(1, tuning.lane_block // unit)


@dataclasses.dataclass(frozen=True)
class Geometry:
    """How a logical array of `shape` (kept axes adjacent, at `kept[0]..kept[-1]`) splits into groups."""

    shape: tuple[int, ...]  # logical shape
    kept: tuple[int, ...]  # logical positions of the kept axes (adjacent)

    @property
    def layout(self) -> Layout:
        return self.local_layout(self.shape)

    def local_layout(self, shape: tuple[int, ...]) -> Layout:
        """The (outer, groups, inner) of a block of this `shape` (logical axis order)."""
        if not self.kept:
            return Layout(1, 1, math.prod(shape))
        first, last = self.kept[0], self.kept[-1]
        return Layout(math.prod(shape[:first]), math.prod(shape[first : last + 1]), math.prod(shape[last + 1 :]))

    def _part_axes(self, part: str) -> range:
        first, last = (self.kept[0], self.kept[-1]) if self.kept else (0, -1)  # no kept axes: all inner
        return {"outer": range(0, first), "groups": range(first, last + 1), "inner": range(last + 1, len(self.shape))}[
            part
        ]

    def id_run(self, index: tuple[slice, ...], part: str) -> tuple[int, int] | None:
        """(first global index, count) when a block's positions along `part` are one run of global indexes (in C
        order: single positions, then one partial axis, then full axes), else None."""
        axes = list(self._part_axes(part))
        start, partial = 0, False
        for k in axes:
            lo, hi, step = index[k].indices(self.shape[k])
            if step != 1:
                return None
            if partial and (lo, hi) != (0, self.shape[k]):
                return None
            if hi - lo != 1 and not partial:
                partial = True
            start = start * self.shape[k] + lo
        return start, math.prod(len(range(*index[k].indices(self.shape[k]))) for k in axes)

    def ids(self, index: tuple[slice, ...], part: str) -> np.ndarray:
        """Global indexes, in C order, of a block's local outer positions, groups or inner positions (`part`)."""
        first, last = (self.kept[0], self.kept[-1]) if self.kept else (0, -1)  # no kept axes: all inner
        axes = {"outer": range(0, first), "groups": range(first, last + 1), "inner": range(last + 1, len(self.shape))}
        ranges = [np.arange(*index[k].indices(self.shape[k])) for k in axes[part]]
        if not ranges:
            return np.zeros(1, dtype=np.int64)
        grids = np.meshgrid(*ranges, indexing="ij")
        return np.ravel_multi_index(grids, [self.shape[k] for k in axes[part]]).reshape(-1).astype(np.int64)


@dataclasses.dataclass(frozen=True)
class Plan:
    """What runs a call: the path, and for the engine the logical axis order and its geometry."""

    path: str  # "numpy" or "engine"
    perm: tuple[int, ...]  # logical axis order: logical axis k is input axis perm[k]
    geometry: Geometry

    @property
    def layout(self) -> Layout:
        return self.geometry.layout


def make_plan(shape: tuple[int, ...], axes: tuple[int, ...], grouped: bool) -> Plan:
    """The plan for an input of `shape` whose limits are reduced over `axes` (when they differ by group:
    data-derived, or given as arrays)."""
    size = math.prod(shape)
    path = "engine" if size >= max(current().numba_min_size, 1) and len(shape) > 0 else "numpy"
    kept = [i for i in range(len(shape)) if i not in axes] if grouped else []
    if kept and kept != list(range(kept[0], kept[-1] + 1)):
        perm = tuple(kept + [i for i in range(len(shape)) if i not in kept])  # kept axes first
        kept = list(range(len(kept)))
    else:
        perm = tuple(range(len(shape)))
    logical = tuple(shape[i] for i in perm)
    plan = Plan(path, perm, Geometry(logical, tuple(kept)))
    note("plan", path=path, layout=plan.layout, transposed=perm != tuple(range(len(shape))))
    return plan
