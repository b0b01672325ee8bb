"""The passes over the data, each split as create / append / combine / finalize (as datashader's reductions).

A pass reads blocks (:mod:`fastquant._source`) and keeps a *partial* result per group: counts against thresholds,
radix-digit histograms under a known prefix, finite min/max, samples, collected bracket members, approx proof
counts. ``create()`` makes an empty partial; ``append(partial, block)`` adds one block; ``combine(partials)``
merges partials of disjoint blocks (sums, minima, maxima, placements: associative and commutative); and
``finalize(partial)`` gives the pass's answer. The answer does not depend on the block boundaries, on the merge
order or on the thread count. Partials are NumPy arrays (picklable), of size O(groups x thresholds) plus
collected members up to a cap, never growing with the data.

A pass with ``aligned = True`` needs blocks that hold whole groups; one with ``whole = True`` needs the whole array
in one block (a direct in-memory source: it is a fused fast path with an equivalent blockwise pair of passes).
The in-memory driver is :func:`run`; bulk conversion and a Dask backend are other drivers of the same pieces.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ._plan import Layout, current, note
from ._source import Block

RADIX_BITS = 16  # bits per radix digit
RADIX_BINS = 1 << RADIX_BITS
SWEEP = 6  # thresholds per counting sweep of the run kernels
ROW_RUNS = 16  # runs shorter than this (and periods too long for lanes) are converted row by row
SMALL_BLOCK = 1 << 16  # blocks smaller than this get one histogram per call, not one per thread


def kernels():
    """The Numba kernels (imports numba: only on the first large input)."""
    from . import _kernels

    return _kernels


def n_parts() -> int:
    """prange pieces of a kernel call: the thread count (read outside the kernels, so cache=True holds)."""
    import numba

    return numba.get_num_threads()


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def part_regions(layout: Layout, parts: int, cap: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The regions of scan_runs's parts over a whole runs-layout array: part c has room `cap` for the groups its
    elements hold and none for the others (one plane in 256: half the memory of room for every group in every
    part). Returns cap (parts, G, P), base (parts, G, P) into the part's row of dest (each region has a sink slot
    past its cap) and the rows' width. A part that meets a group it has no room for counts it and overflows, so
    that its members are collected again: a wrong guess costs a pass, never a wrong answer."""
    from ._kernels._common import _chunk_bounds

    n = layout.outer * layout.groups * layout.inner
    per_part = np.zeros((parts,) + cap.shape, dtype=np.int64)
    for c in range(parts):
        begin, end = _chunk_bounds(n, parts, c, 1)
        if end <= begin:
            continue
        first, last = begin // layout.inner, (end - 1) // layout.inner  # the runs the part's elements touch
        if last - first + 1 >= layout.groups:
            per_part[c] = cap
        else:
            groups = np.arange(first, last + 1) % layout.groups
            per_part[c, groups] = cap[groups]
    slots = (per_part + 1).reshape(parts, -1)
    base = (np.cumsum(slots, axis=1) - slots).reshape(per_part.shape)
    return per_part, base, int(slots.sum(axis=1).max())


def shared_regions(parts: int, cap: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """part_regions where every part has room `cap` for every group."""
    slots = cap + 1
    base = np.zeros_like(cap)
    base.reshape(-1)[1:] = np.cumsum(slots.reshape(-1))[:-1]
    return np.repeat(cap[None], parts, axis=0), np.repeat(base[None], parts, axis=0), int(slots.sum())


def lane_count_step(tun, lanes: int) -> int:
    """Elements per counting step of the lane kernels: whole multiples of eight rows of lanes (their counting
    loops take eight rows at a time), about ``lane_count_block``."""
    return round_up(max(1, tun.lane_count_block // lanes), 8) * lanes


def run(pass_, source):
    """Run one pass over every block of an in-memory `source` and finalize it (an in-memory array runs a pass's
    random-access version where it has one)."""
    if getattr(source, "swapped", False) and pass_.reads_swapped(source.layout):
        note("swapped", pass_=type(pass_).__name__)
        partial = pass_.create()
        pass_.append(partial, source.swapped_block())
        return pass_.finalize(partial)
    if pass_.whole or (source.random_access and hasattr(pass_, "fused")):
        return pass_.fused(source)
    partial = pass_.create()
    sampled = source.sample_indexes(pass_) if isinstance(pass_, Sample) and hasattr(source, "sample_indexes") else None
    blocks = source.blocks(aligned=pass_.aligned) if sampled is None else source.blocks(indexes=sampled)
    for block in blocks:
        pass_.append(partial, block)
    return pass_.finalize(partial)


def drive(selection, source) -> None:
    """Run a selection's passes until it is done (the in-memory driver of the state machines)."""
    while (pass_ := selection.next_pass()) is not None:
        selection.consume(run(pass_, source))


class Pass:
    aligned = False
    whole = False

    def reads_swapped(self, layout: Layout) -> bool:
        """Whether append() takes a block of byte-swapped float32 words on this layout (its kernels swap as they
        read: one read of the array in place, where a native copy of every slab took as long as the pass)."""
        return False

    def combine(self, partials: list):
        raise NotImplementedError

    def finalize(self, partial):
        return partial


# --- finite minimum and maximum (one-sided limits) -------------------------------------------------------------


@dataclasses.dataclass
class FiniteMinMax(Pass):
    """(lo, hi) per group: the finite minimum and maximum, NaN for a group without finite values."""

    groups: int

    def reads_swapped(self, layout: Layout) -> bool:
        from ._kernels import minmax

        # the runs and lanes kernels (see minmax.finite_minmax), not the columns one
        return layout.inner >= minmax._MIN_RUN or layout.period <= minmax._LANES_MAX_PERIOD

    def create(self) -> np.ndarray:
        partial = np.empty((self.groups, 2))
        partial[:, 0], partial[:, 1] = np.inf, -np.inf
        return partial

    def append(self, partial: np.ndarray, block: Block) -> None:
        k, lay = kernels(), block.layout
        from ._kernels import minmax

        into = partial if block.all_groups else None  # in place: per-pixel limits have a million groups
        with k.kernel_lock():
            local = minmax.finite_minmax(block.data, lay.outer, lay.groups, lay.inner, n_parts(), into)
        if block.all_groups:
            return
        rows = partial[block.group_ids]
        merged = np.stack([np.minimum(rows[:, 0], local[:, 0]), np.maximum(rows[:, 1], local[:, 1])], axis=1)
        partial[block.group_ids] = merged

    def combine(self, partials: list) -> np.ndarray:
        stacked = np.stack(partials)
        return np.stack([stacked[:, :, 0].min(axis=0), stacked[:, :, 1].max(axis=0)], axis=1)

    def finalize(self, partial: np.ndarray):
        empty = partial[:, 0] > partial[:, 1]
        return np.where(empty, np.nan, partial[:, 0]), np.where(empty, np.nan, partial[:, 1])


# --- counts below thresholds ----------------------------------------------------------------------------------


@dataclasses.dataclass
class CountBelow(Pass):
    """(G, T) counts of x < thresholds[g, t] per group (NaN never counts)."""

    thresholds: np.ndarray  # (G, T), in the kernel dtype

    def reads_swapped(self, layout: Layout) -> bool:
        return True  # count_runs and count_lanes

    def create(self) -> np.ndarray:
        return np.zeros(self.thresholds.shape, dtype=np.int64)

    def append(self, partial: np.ndarray, block: Block) -> None:
        k, lay, tun = kernels(), block.layout, current()
        thresholds = self.thresholds[block.group_ids]
        n_thr = thresholds.shape[1]
        lanes = lay.lane_count(tun)
        with k.kernel_lock():
            if lanes:
                lane_groups = lay.lane_groups(lanes)
                per_lane = k.count_lanes(
                    block.data,
                    np.ascontiguousarray(thresholds[lane_groups].T),
                    n_parts(),
                    lane_count_step(tun, lanes),
                ).sum(axis=0)  # (T, L)
                local = np.zeros((lay.groups, n_thr), dtype=np.int64)
                np.add.at(local, lane_groups, per_lane.T)
            else:
                padded = np.empty((lay.groups, round_up(n_thr, SWEEP)), dtype=thresholds.dtype)
                padded[:, :n_thr] = thresholds
                padded[:, n_thr:] = thresholds[:, -1:]
                counts = k.count_runs(block.data, 0, lay.groups, lay.inner, padded, n_parts(), tun.count_block)
                local = counts.sum(axis=0)[:, :n_thr]
        partial[block.group_ids] += local

    def combine(self, partials: list) -> np.ndarray:
        return np.sum(partials, axis=0)


# --- collected bracket members --------------------------------------------------------------------------------


@dataclasses.dataclass
class Members:
    """Collected values: region r = (g, j) holds written[g, j] values at values[base[g, j]:]."""

    values: np.ndarray
    written: np.ndarray

    def region(self, base: np.ndarray, g: int, j: int) -> np.ndarray:
        return self.values[base[g, j] : base[g, j] + self.written[g, j]]


@dataclasses.dataclass
class Collect(Pass):
    """The members of brackets [low, high) per group, whose exact sizes a counting pass gave."""

    low: np.ndarray  # (G, J) in the kernel dtype; [inf, inf) collects nothing
    high: np.ndarray
    sizes: np.ndarray  # (G, J) int64

    def reads_swapped(self, layout: Layout) -> bool:
        return True  # scan_runs and collect_lanes

    @property
    def base(self) -> np.ndarray:
        base = np.zeros_like(self.sizes)
        base.reshape(-1)[1:] = np.cumsum(self.sizes.reshape(-1))[:-1]
        return base

    def create(self) -> Members:
        return Members(np.empty(int(self.sizes.sum()), dtype=self.low.dtype), np.zeros_like(self.sizes))

    def append(self, partial: Members, block: Block) -> None:
        k, lay, tun = kernels(), block.layout, current()
        ids = block.group_ids
        low, high, sizes = self.low[ids], self.high[ids], self.sizes[ids]
        parts = n_parts()
        local_base = np.zeros_like(sizes)
        local_base.reshape(-1)[1:] = np.cumsum(sizes.reshape(-1))[:-1]
        # Each part writes its own row of a region per bracket: positions never depend on scheduling.
        lanes = lay.lane_count(tun)
        with k.kernel_lock():
            if lanes:
                region_base = local_base
                dest = np.empty((parts, max(int(sizes.sum()), 1)), dtype=low.dtype)
                lane_groups = lay.lane_groups(lanes)
                written = k.collect_lanes(
                    block.data,
                    np.ascontiguousarray(low[lane_groups].T),
                    np.ascontiguousarray(high[lane_groups].T),
                    lane_groups,
                    local_base,
                    dest,
                    parts,
                    lane_count_step(tun, lanes),
                )
            else:  # the fused scan's branch-free gather, with regions as large as the whole brackets
                n_brackets = low.shape[1]
                cap = np.zeros((lay.groups, round_up(2 + 2 * n_brackets, SWEEP) // 2), dtype=np.int64)
                cap[:, 1 : 1 + n_brackets] = sizes
                part_cap, scan_base, width = shared_regions(parts, cap)
                dest = np.empty((parts, width), dtype=low.dtype)
                _, scanned = k.scan_runs(
                    block.data, 0, lay.groups, lay.inner, bracket_thresholds(low, high), scan_base, part_cap, dest,
                    parts, tun.scan_block // block.data.itemsize, False,
                )  # fmt: skip
                written = scanned[:, :, 1 : 1 + n_brackets]
                region_base = scan_base[0, :, 1 : 1 + n_brackets]
        base = self.base
        for li, g in enumerate(ids.tolist()):
            for j in range(low.shape[1]):
                for c in range(parts):
                    n = int(written[c, li, j])
                    if n:
                        at = base[g, j] + partial.written[g, j]
                        partial.values[at : at + n] = dest[c, region_base[li, j] : region_base[li, j] + n]
                        partial.written[g, j] += n

    def combine(self, partials: list) -> Members:
        merged = self.create()
        base = self.base
        for part in partials:
            for g, j in zip(*np.nonzero(part.written), strict=True):
                n = part.written[g, j]
                at = base[g, j] + merged.written[g, j]
                merged.values[at : at + n] = part.region(base, g, j)
                merged.written[g, j] += n
        return merged


@dataclasses.dataclass
class Scan(Pass):
    """Counting and collecting fused in one pass (runs or lanes layout, whole direct or byte-swapped array):
    CountBelow(thresholds) and the members of each bracket, up to `cap` per part (a region that overflows is
    collected again exactly)."""

    thresholds: np.ndarray  # (G, T): pair 0 (lowest finite, inf), then brackets; T a multiple of SWEEP
    cap: np.ndarray  # (G, T // 2) members per part and pair
    whole = True

    @staticmethod
    def regions(layout: Layout, parts: int, cap: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """The parts' regions for `cap`: per part for several groups in runs (part_regions), else the same for
        every part; each has a sink slot past its cap (see _kernels._gather_members)."""
        if layout.groups > 1 and not layout.lane_count(current()):
            return part_regions(layout, parts, cap)
        return shared_regions(parts, cap)

    def fused(self, source):
        """(below (G, T), the :class:`BracketMembers` collected)."""
        k, lay, tun = kernels(), source.layout, current()
        parts = n_parts()
        swapped = getattr(source, "swapped", False)
        if swapped:
            note("swapped", pass_=type(self).__name__)
        data = source.swapped_block().data if swapped else source.flat
        lanes = lay.lane_count(tun) if lay.groups > 1 else 0
        part_cap, base, width = self.regions(lay, parts, self.cap)
        dest = np.empty((parts, width), dtype=source.dtype)
        with k.kernel_lock():
            if lanes:
                lane_groups = lay.lane_groups(lanes)
                counts, written = k.scan_lanes(
                    data, np.ascontiguousarray(self.thresholds[lane_groups].T), lane_groups, base[0], self.cap, dest,
                    parts, lane_count_step(tun, lanes),
                )  # fmt: skip
                below = np.zeros(self.thresholds.shape, dtype=np.int64)
                np.add.at(below, lane_groups, counts.sum(axis=0).T)
            else:
                counts, written = k.scan_runs(
                    data, 0, lay.groups, lay.inner, self.thresholds, base, part_cap, dest, parts,
                    tun.scan_block // source.dtype.itemsize,
                )  # fmt: skip
                below = counts.sum(axis=0)
        return below, BracketMembers(dest, base, written, (written > part_cap).any(axis=0).tolist())


@dataclasses.dataclass
class ScanBlocks(Pass):
    """:class:`Scan` over blocks of any source: CountBelow(thresholds) and the members of each bracket, up to
    `cap` in all per group and pair; a region with more members than that is marked overflowed (its members
    are then collected again exactly). The members are a multiset whose selection does not depend on the order
    they arrive in, so the answer does not depend on the blocks or the merge order."""

    thresholds: np.ndarray  # (G, T) as for Scan
    cap: np.ndarray  # (G, T // 2) members kept at most per group and pair (all blocks together)

    def reads_swapped(self, layout: Layout) -> bool:
        return True  # scan_runs

    def _base(self) -> np.ndarray:
        base = np.zeros_like(self.cap)
        base.reshape(-1)[1:] = np.cumsum(self.cap.reshape(-1))[:-1]
        return base

    def create(self):
        below = np.zeros(self.thresholds.shape, dtype=np.int64)
        written = np.zeros(self.cap.shape, dtype=np.int64)
        return below, np.empty(int(self.cap.sum()), dtype=self.thresholds.dtype), written

    def append(self, partial, block: Block) -> None:
        below, values, written = partial
        k, lay, tun = kernels(), block.layout, current()
        ids = block.group_ids
        room = np.maximum(self.cap[ids] - written[ids], 0)  # what each region can still take
        parts = n_parts() if block.data.size >= SMALL_BLOCK else 1
        part_room, part_base, width = shared_regions(parts, room)  # a sink slot per region past its room
        local_base = part_base[0]
        dest = np.empty((parts, width), dtype=block.dtype)
        with k.kernel_lock():
            counts, found = k.scan_runs(
                block.data, 0, lay.groups, lay.inner, self.thresholds[ids], part_base, part_room, dest, parts,
                tun.scan_block // block.data.itemsize,
            )  # fmt: skip
        below[ids] += counts.sum(axis=0)
        base = self._base()
        total = found.sum(axis=0)  # (g', pairs): members of this block
        for li, g in enumerate(ids.tolist()):
            for pair in np.nonzero(total[li])[0].tolist():
                if written[g, pair] + total[li, pair] > self.cap[g, pair]:
                    written[g, pair] = self.cap[g, pair] + 1  # overflowed: more than the cap in all
                    continue
                for c in range(parts):
                    n = int(found[c, li, pair])
                    at = base[g, pair] + written[g, pair]
                    values[at : at + n] = dest[c, local_base[li, pair] : local_base[li, pair] + n]
                    written[g, pair] += n

    def combine(self, partials: list):
        below, values, written = self.create()
        base = self._base()
        for part_below, part_values, part_written in partials:
            below += part_below
            for g, pair in zip(*np.nonzero(part_written), strict=True):
                n = part_written[g, pair]
                if written[g, pair] + n > self.cap[g, pair]:
                    written[g, pair] = self.cap[g, pair] + 1
                    continue
                at = base[g, pair] + written[g, pair]
                values[at : at + n] = part_values[base[g, pair] : base[g, pair] + n]
                written[g, pair] += n
        return below, values, written

    def finalize(self, partial):
        """(below (G, T), the :class:`BracketMembers` collected), as Scan's."""
        below, values, written = partial
        return below, BracketMembers(values[None], self._base()[None], written[None], (written > self.cap).tolist())


@dataclasses.dataclass
class BracketMembers:
    """The bracket members a counting-and-collecting pass kept: in part c, those of group g and pair p (bracket
    p - 1) are ``dest[c, base[c, g, p] : base[c, g, p] + written[c, g, p]]``, except where overflowed[g][p] (some
    part had no room: they are collected again)."""

    dest: np.ndarray  # (parts, width)
    base: np.ndarray  # (parts, G, pairs) int64
    written: np.ndarray  # (parts, G, pairs) int64
    overflowed: list  # (G, pairs) bools (Python lists: looked up once per group and bracket)

    def gather(self, wanted: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The members of each (group, bracket) of `wanted` (none overflowed), one after the other in one
        buffer, in one kernel call: (values, starts, lengths). Where 512 regions were sliced and concatenated
        one by one, N×C×H×W 16×16×512² spent about 2 ms in Python."""
        groups = np.array([g for g, _ in wanted], dtype=np.int64)
        pairs = np.array([j + 1 for _, j in wanted], dtype=np.int64)
        starts = np.ascontiguousarray(self.base[:, groups, pairs])  # (parts, S)
        lengths = np.ascontiguousarray(self.written[:, groups, pairs])
        total = lengths.sum(axis=0)
        at = np.zeros(len(wanted), dtype=np.int64)
        np.cumsum(total[:-1], out=at[1:])
        values = np.empty(int(total.sum()), dtype=self.dest.dtype)
        k = kernels()
        with k.kernel_lock():
            k.gather_regions(self.dest, starts, lengths, at, values, n_parts())
        return values, at, total


def bracket_thresholds(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """(G, T) thresholds for the scan: (lowest finite, inf), then each bracket's (low, high); padded with inf to a
    multiple of the sweep width."""
    groups, n_brackets = low.shape
    thresholds = np.full((groups, round_up(2 + 2 * n_brackets, SWEEP)), np.inf, dtype=low.dtype)
    thresholds[:, 0] = np.finfo(low.dtype).min  # x < lowest finite: -inf
    thresholds[:, 2 : 2 + 2 * n_brackets : 2] = low
    thresholds[:, 3 : 3 + 2 * n_brackets : 2] = high
    return thresholds


# --- radix-digit histograms -----------------------------------------------------------------------------------


@dataclasses.dataclass
class RadixHistogram(Pass):
    """hist[r, d]: the finite values of group rows[r] whose order-preserving key has digit d at `shift`, among
    the keys whose bits above `prefix_shift` equal prefixes[r] (all keys when use_prefix is False)."""

    rows: np.ndarray  # global groups, one histogram row each
    groups: int
    shift: int
    prefix_shift: int
    prefixes: np.ndarray  # (R,) uint64
    use_prefix: bool

    def create(self) -> np.ndarray:
        return np.zeros((self.rows.size, RADIX_BINS), dtype=np.int64)

    def append(self, partial: np.ndarray, block: Block) -> None:
        slot = np.full(self.groups, -1, dtype=np.int64)
        slot[self.rows] = np.arange(self.rows.size)
        local = slot[block.group_ids]
        if (local < 0).all():
            return
        k, lay = kernels(), block.layout
        prefixes = np.where(local >= 0, self.prefixes[np.maximum(local, 0)], 0).astype(np.uint64)
        bits = block.data.view(np.uint32 if block.data.itemsize == 4 else np.uint64)
        with k.kernel_lock():
            part = k.radix_hist(
                bits, 0, lay.groups, lay.inner, local, self.rows.size, self.shift, self.prefix_shift, prefixes,
                self.use_prefix, n_parts() if block.data.size >= SMALL_BLOCK else 1,
            )  # fmt: skip
        partial += part.sum(axis=0)

    def combine(self, partials: list) -> np.ndarray:
        return np.sum(partials, axis=0)


# --- samples ----------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Sample(Pass):
    """Every group's elements at logical positions (a, b): a = i * step_a, and b in runs of `run` consecutive inner
    positions, one run in every step_b (so a sample reads whole cache lines, not one element from each):
    (G, na * nb)."""

    layout: Layout
    step_a: int
    step_b: int
    dtype: np.dtype
    run: int = 1

    def reads_swapped(self, layout: Layout) -> bool:
        return True  # a whole block is gathered by strided_sample

    @property
    def shape(self) -> tuple[int, int]:
        na = -(-self.layout.outer // self.step_a)
        period = self.run * self.step_b
        nb = (self.layout.inner // period) * self.run + min(self.run, self.layout.inner % period)
        return na, nb

    def inner_positions(self) -> np.ndarray:
        """The sampled inner positions b, increasing."""
        # Built run by run, not by filtering every inner position: the inner extent can be the whole array.
        period = self.run * self.step_b
        b = (np.arange(0, self.layout.inner, period)[:, None] + np.arange(self.run)[None, :]).reshape(-1)
        return b[b < self.layout.inner]

    def create(self):
        na, nb = self.shape
        return np.empty((self.layout.groups, na * nb), dtype=self.dtype), np.zeros((self.layout.groups, na * nb), bool)

    def append(self, partial, block: Block) -> None:
        values, filled = partial
        lay = block.layout
        nb = self.shape[1]
        outer = block.geometry.id_run(block.index, "outer")
        if lay.inner == self.layout.inner and outer is not None and outer[0] % self.step_a == 0:
            # Whole inner extents from a sampled outer position on (slabs of whole planes, whole rows): the
            # in-memory gather kernel on the block, as if it were the whole array.
            first = outer[0] // self.step_a
            columns = slice(first * nb, first * nb + -(-lay.outer // self.step_a) * nb)
            rows = block.group_rows
            # Gathered straight into the partial where the block's groups are a run of its rows (what sources cut)
            if isinstance(rows, slice):
                target, g0, c0 = values, rows.start, columns.start
            else:
                target, g0, c0 = np.empty((lay.groups, columns.stop - columns.start), self.dtype), 0, 0
            k = kernels()
            with k.kernel_lock():
                k.strided_sample(
                    block.data, lay.outer, lay.groups, lay.inner, self.step_a, self.step_b, self.run,
                    n_parts() if block.data.size >= SMALL_BLOCK else 1, target, g0, c0,
                )  # fmt: skip
            if not isinstance(rows, slice):
                values[rows, columns] = target
            filled[rows, columns] = True
            return
        take_a, sampled_a = block.sampled("outer", self.step_a)
        take_b, sampled_b = block.sampled("inner", self.step_b, self.run)
        if sampled_a.size == 0 or sampled_b.size == 0:
            return
        cube = block.data.reshape(lay.outer, lay.groups, lay.inner)[take_a]
        if np.size(take_b) != lay.inner:  # else the block holds sampled positions only (ChunkedSource.sample_indexes)
            cube = cube[:, :, take_b]
        picked = np.moveaxis(cube, 1, 0).reshape(lay.groups, -1)  # (g', a' b')
        columns = (sampled_a[:, None] * nb + sampled_b).reshape(-1)
        rows = block.group_rows
        if isinstance(rows, slice) and columns[-1] - columns[0] + 1 == columns.size and (np.diff(columns) > 0).all():
            # One run of columns (a block of sampled rows): slice copies, not advanced indexing
            values[rows, columns[0] : columns[-1] + 1] = picked
            filled[rows, columns[0] : columns[-1] + 1] = True
            return
        rows = block.group_ids[:, None]
        values[rows, columns[None, :]] = picked
        filled[rows, columns[None, :]] = True

    def combine(self, partials: list):
        values, filled = self.create()
        for v, f in partials:
            values[f] = v[f]
            filled |= f
        return values, filled

    def finalize(self, partial) -> np.ndarray:
        return partial[0]

    def fused(self, source) -> np.ndarray:
        """The sample of an in-memory source, read at its positions: by one parallel gather of the runs from a
        direct source, else by NumPy indexing of the logical view."""
        lay = self.layout
        if source.direct:
            k = kernels()
            sample = np.empty((lay.groups, math.prod(self.shape)), dtype=self.dtype)
            with k.kernel_lock():
                k.strided_sample(
                    source.flat,
                    lay.outer,
                    lay.groups,
                    lay.inner,
                    self.step_a,
                    self.step_b,
                    self.run,
                    n_parts(),
                    sample,
                )
            return sample
        a, g, b = np.meshgrid(
            np.arange(0, lay.outer, self.step_a), np.arange(lay.groups), self.inner_positions(),
            indexing="ij", sparse=True,
        )  # fmt: skip
        flat = ((a * lay.groups + g) * lay.inner + b).reshape(-1)
        # Unravelled as 1-D: NumPy 2.4 mis-unravels (n, g, 1) index arrays past 8192 elements (numpy#31980).
        picked = source.view[np.unravel_index(flat, source.view.shape)].reshape(a.shape[0], lay.groups, -1)
        return np.moveaxis(picked, 1, 0).reshape(lay.groups, -1).astype(self.dtype)


def sample_pass(layout: Layout, stride: int, dtype: np.dtype, run: int = 1) -> Sample:
    """The sample of every group at fixed logical positions, about one element in `stride`, in runs of `run`
    consecutive inner positions where the inner extent allows. The positions depend only on the shape (not on the
    memory layout, byte order or source).

    Sparse steps are primes (:func:`_sparse_step`): a power-of-two period divides the row length of most images,
    and then every sampled position falls in the same few columns (a stride of 256 on 2048-wide slices sees 8
    columns; runs of 16, one in 16, see 8 column bands). On issue 7's prediction volume such aligned samples put
    the 5th and 95th percentiles 5-7 sigma from the exact ones; prime steps walk across the columns row after row
    (0.2-0.3 sigma), and runs of 16, one in 17, estimate its slice limits within 0.02-0.04 of the approx
    tolerance, where single elements one in 16 came within 0.07 (and aligned runs were 8.8 times over it). The
    approx limits take runs of whole rows where groups span many rows (:func:`fastquant._approx.sample_run`)."""
    run = max(1, min(layout.inner, run))
    step_b = _sparse_step(min(stride, -(-layout.inner // run)))
    step_a = _sparse_step(max(1, stride // step_b))
    return Sample(layout, step_a, step_b, np.dtype(dtype), run)


def _sparse_step(step: int) -> int:
    """`step` below 8 (dense samples cover every column anyway), else the smallest prime at least `step`: image
    sides are products of small primes, so a prime period of 11 or more (16 * 17 for runs of 16) rarely divides
    a row."""
    if step < 8:
        return step
    while any(step % d == 0 for d in range(2, int(step**0.5) + 1)):
        step += 1
    return step


# --- per-group selection of small groups ---------------------------------------------------------------------


@dataclasses.dataclass
class GroupSort(Pass):
    """Per group: finite count and the order statistics NumPy's interpolation needs (blocks of whole groups)."""

    groups: int
    quantiles: np.ndarray
    dtype: np.dtype
    aligned = True

    def create(self):
        n_q = self.quantiles.size
        return (
            np.full(self.groups, -1, dtype=np.int64),
            np.full((self.groups, n_q), np.nan, dtype=self.dtype),
            np.full((self.groups, n_q), np.nan, dtype=self.dtype),
        )

    def append(self, partial, block: Block) -> None:
        k, lay = kernels(), block.layout
        from ._kernels import groups as group_kernels

        with k.kernel_lock():
            counts, prev, nxt = group_kernels.group_select(
                block.data, lay.outer, lay.groups, lay.inner, self.quantiles, n_parts()
            )
        rows = block.group_rows  # a slice where the groups are one run: copies, not advanced indexing (28 ms for 2**20)
        partial[0][rows], partial[1][rows], partial[2][rows] = counts, prev, nxt

    def combine(self, partials: list):
        merged = self.create()
        for counts, prev, nxt in partials:
            done = counts >= 0
            merged[0][done], merged[1][done], merged[2][done] = counts[done], prev[done], nxt[done]
        return merged


# --- conversion -----------------------------------------------------------------------------------------------


def packed_colours(table: np.ndarray) -> np.ndarray:
    """The kernels' form of a (257, C) uint8 colour table: (513,) uint32. Words 0..256 are the C bytes of each row
    little-endian (byte c of the word is channel c), as the kernels store whole words; words 257..512 are four
    planes of 256 bytes, plane c holding channel c of rows 0..255, for the byte-permute paint (_kernels._vbmi)."""
    padded = np.zeros((table.shape[0], 4), dtype=np.uint8)
    padded[:, : table.shape[1]] = table
    planes = np.ascontiguousarray(padded[:256].T)
    return np.concatenate([padded.reshape(-1), planes.reshape(-1)]).view("<u4").astype(np.uint32)


@dataclasses.dataclass
class Convert(Pass):
    """Write the levels of every block into `out` (the output in logical axis order); with `windows` (G, 4
    edges), also count per group the finite values and the values below each edge: (G, 5).

    With a colour table `lut` ((257, C) uint8: row k the colour of level k, row 256 the colour of NaN and of
    undefined groups), `out` has a trailing axis of C and receives colours instead of levels, in the same pass.
    """

    lo: np.ndarray  # (G,) finite limits per group
    factor: np.ndarray
    lo_scaled: np.ndarray
    scale: np.ndarray
    nan_level: float
    out: np.ndarray
    undefined: np.ndarray  # (G,) bool: groups whose every element becomes nan_level
    windows: np.ndarray | None = None
    lut: np.ndarray | None = None

    def __post_init__(self):
        # the kernels' form of the table, made once per pass (not per block)
        self.packed = None if self.lut is None else packed_colours(self.lut)

    def reads_swapped(self, layout: Layout) -> bool:
        # every kernel of append but convert_rows
        return bool(layout.lane_count(current())) or self.windows is not None or layout.inner >= ROW_RUNS

    def create(self):
        return None if self.windows is None else np.zeros((self.lo.size, 5), dtype=np.int64)

    def append(self, partial, block: Block) -> None:
        k, lay, tun = kernels(), block.layout, current()
        ids = block.group_ids
        params = [block.take(p) for p in (self.lo, self.factor, self.lo_scaled, self.scale)]
        dest_view = self.out[block.index]
        in_place = dest_view.flags.c_contiguous
        per_element = (block.data.size,) if self.lut is None else (block.data.size, self.lut.shape[1])
        dest = dest_view.reshape(per_element) if in_place else np.empty(per_element, dtype=np.uint8)
        lut = self.packed
        parts = n_parts()
        lanes = lay.lane_count(tun)
        largest = np.finfo(block.dtype).max
        if self.windows is not None:
            kernel = "count_lanes" if lanes else "count_runs"
        else:
            kernel = "lanes" if lanes else "rows" if lay.inner < ROW_RUNS else "runs"
        note("convert", kernel=kernel, colour=lut is not None)
        with k.kernel_lock():
            if lanes:
                lane_groups = lay.lane_groups(lanes)
                lane_params = [p[lane_groups] for p in params]
                if self.windows is None:
                    k.convert_lanes(block.data, dest, *lane_params, self.nan_level, parts, lut)
                else:
                    windows = np.ascontiguousarray(self.windows[ids][lane_groups].T)  # (4, L)
                    part = k.convert_count_lanes(
                        block.data, dest, *lane_params, self.nan_level, largest, windows, parts,
                        lane_count_step(tun, lanes), lut,
                    )  # fmt: skip
                    local = np.zeros((lay.groups, 5), dtype=np.int64)
                    np.add.at(local, lane_groups, part.sum(axis=0).T)
                    partial[ids] += local
            elif self.windows is None and lay.inner < ROW_RUNS:
                from ._kernels import groups as group_kernels

                group_kernels.convert_rows(
                    block.data, dest, lay.outer, lay.groups, lay.inner, *params, self.nan_level, parts, lut
                )
            elif self.windows is None:
                k.convert_runs(block.data, dest, 0, lay.groups, lay.inner, *params, self.nan_level, parts, lut)
            else:
                partial[ids] += k.convert_count_runs(
                    block.data, dest, 0, lay.groups, lay.inner, *params, self.nan_level, largest,
                    np.ascontiguousarray(self.windows[ids]), parts, lut,
                ).sum(axis=0)  # fmt: skip
        undefined = block.take(self.undefined)
        if undefined.any():
            fill = np.uint8(self.nan_level) if lut is None else self.lut[256]
            dest.reshape(lay.outer, lay.groups, lay.inner, -1)[:, undefined, :] = fill
        if not in_place:
            dest_view[...] = dest.reshape(dest_view.shape)

    def combine(self, partials: list):
        return None if self.windows is None else np.sum(partials, axis=0)


@dataclasses.dataclass
class OneSidedConvert(Pass):
    """FiniteMinMax followed by Convert, fused for long rows (per pixel across channels): one-sided limits (the
    upper ones `given` with `upper_given`, else the lower ones; (G,) or (1,) float64, NaN: undefined) and the
    levels, each tile of columns reduced and converted while it is in cache (one read of the array instead of
    two). The whole direct array only; ``fused`` returns False, having written nothing usable, when a group
    needs a rescaled span: the caller then runs the pair of passes."""

    given: np.ndarray
    upper_given: bool
    nan_level: float
    out: np.ndarray  # (N,) uint8: the levels of the logical array in C order
    whole = True

    @staticmethod
    def applies(layout: Layout) -> bool:
        """Whether the layout takes the columns kernels of both passes (long rows of short runs)."""
        from ._kernels import minmax

        return (
            layout.inner < ROW_RUNS and layout.period > minmax._LANES_MAX_PERIOD and layout.lane_count(current()) == 0
        )

    def fused(self, source) -> bool:
        from ._kernels import groups as group_kernels

        lay = source.layout
        note("convert", kernel="one-sided rows", colour=False)
        with kernels().kernel_lock():
            state = group_kernels.minmax_convert_rows(
                source.flat, self.out, lay.outer, lay.groups, lay.inner, self.given, self.upper_given,
                self.nan_level, n_parts(),
            )  # fmt: skip
        return state == 0


GUESS_BUCKETS = 4096  # buckets of the range per group whose level guesses a stretch kernel starts from
GUESS_BYTES = 1 << 22  # at most this many bytes of guesses (many groups: fewer buckets each)


@dataclasses.dataclass
class ConvertGeneral(Pass):
    """The conversion pass for what the fused 8-bit kernels do not do: 16-bit levels (``top`` 65535) and the
    levels of a non-linear stretch (``stretch`` not "linear"; 8 or 16 bits, or colours with `lut`), for (G,)
    limits ``lo <= hi`` (NaN: the group is `undefined` and maps to `nan_level`, or to ``lut[256]``)."""

    lo: np.ndarray
    hi: np.ndarray
    top: int
    stretch: str | float
    nan_level: int
    out: np.ndarray
    undefined: np.ndarray
    lut: np.ndarray | None = None

    def __post_init__(self):
        from ._levels import scale_terms, thresholds

        lo, hi = self.lo.copy(), self.hi.copy()
        lo[self.undefined] = hi[self.undefined] = 0.0  # placeholders: these groups are overwritten
        self.dtype = np.dtype(np.uint8 if self.top == 255 else np.uint16)
        self.packed = None if self.lut is None else packed_colours(self.lut)
        if self.stretch == "linear":
            np.copyto(hi, lo, where=hi == lo)  # equal limits -> scale +inf (see the kernels)
            self.params = [np.ascontiguousarray(p) for p in (lo, *scale_terms(lo, hi, self.top))]
            return
        steps = thresholds(lo, hi, self.stretch, self.top)
        buckets = max(16, min(GUESS_BUCKETS, GUESS_BYTES // (2 * max(1, lo.size))))
        with np.errstate(all="ignore"):
            span = hi - lo
            bucket_scale = np.where(np.isfinite(buckets / span) & (span > 0), buckets / span, 0.0)
            centres = lo[:, None] + (np.arange(buckets) + 0.5) * (span[:, None] / buckets)
        guesses = np.empty((lo.size, buckets), dtype=np.uint16)
        for g in range(lo.size):
            guesses[g] = np.searchsorted(steps[g], np.nan_to_num(centres[g]), side="right")
        self.params = [lo, hi, steps, guesses, bucket_scale]

    def create(self):
        return None

    def append(self, partial, block: Block) -> None:
        from ._kernels import kernel_lock
        from ._kernels import levels as level_kernels

        lay = block.layout
        params = [block.take(p) for p in self.params]
        dest_view = self.out[block.index]
        in_place = dest_view.flags.c_contiguous
        per_element = (block.data.size,) if self.lut is None else (block.data.size, self.lut.shape[1])
        dest = dest_view.reshape(per_element) if in_place else np.empty(per_element, dtype=self.dtype)
        kernel = "levels16" if self.stretch == "linear" else "thresholds"
        note("convert", kernel=kernel, colour=self.lut is not None)
        with kernel_lock():
            if self.stretch == "linear":
                level_kernels.levels16_runs(
                    block.data, dest, lay.groups, lay.inner, *params, float(self.nan_level), n_parts()
                )
            else:
                level_kernels.threshold_runs(
                    block.data, dest, lay.groups, lay.inner, *params, np.int64(self.nan_level), n_parts(),
                    self.packed,
                )  # fmt: skip
        undefined = block.take(self.undefined)
        if undefined.any():
            fill = self.dtype.type(self.nan_level) if self.lut is None else self.lut[256]
            dest.reshape(lay.outer, lay.groups, lay.inner, -1)[:, undefined, :] = fill
        if not in_place:
            dest_view[...] = dest.reshape(dest_view.shape)

    def combine(self, partials: list):
        return None
