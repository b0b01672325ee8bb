"""Selection algorithms: exact order statistics per group, as explicit state machines over passes.

A selection says which pass to run next (:meth:`next_pass`), takes its result (:meth:`consume`), and is done when
``next_pass()`` returns None. It never touches the data itself, so any driver (in memory, bulk, Dask) can run
it; :func:`fastquant._passes.drive` is the in-memory one.

- :class:`BracketSelection` (large groups): a strided sample proposes, per group and percentile, an interval
  ``[a, b)`` that should hold the needed order statistics; a counting pass proves or refutes it, a collecting
  pass gathers the few values inside proven intervals, and a selection among them gives the exact order
  statistics. On a direct source counting and collecting are one fused pass.
- :class:`RadixSelection` (fallback, exact for every input): histograms of 16-bit digits of the float's
  order-preserving integer key, most significant first, each pass restricted to the known prefix. Two passes
  for float32, four for float64.
- :class:`SortSelection` (many small groups): one pass over blocks of whole groups selects within each group.

The order statistics then go through NumPy's own linear interpolation formula (:func:`interpolate`), so the
results equal ``numpy.percentile`` bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from . import _passes
from ._passes import RADIX_BITS, Collect, CountBelow, GroupSort, RadixHistogram, Scan, ScanBlocks, bracket_thresholds
from ._plan import current, note

# --- NumPy's "linear" interpolation ---------------------------------------------------------------------------


def interpolation_plan(n: int, quantiles: np.ndarray):
    """NumPy's "linear" method: neighbour ranks and weights, with its exact arithmetic and edge rules (read-only
    arrays, shared between calls with the same n and quantiles)."""
    key = (n, quantiles.dtype.str, quantiles.tobytes())
    plan = _plans.get(key)
    if plan is None:
        plan = _interpolation_plan(n, quantiles)
        for a in plan:
            a.setflags(write=False)
        if len(_plans) >= _MAX_PLANS:
            _plans.clear()
        _plans[key] = plan
    return plan


# Groups of one call mostly share their size (every group of a layout without NaN), and each group's plan was
# computed two to four times per call: 256 groups spent 5 ms there.
_plans: dict = {}
_MAX_PLANS = 4096


def _interpolation_plan(n: int, quantiles: np.ndarray):
    virtual = (n - 1) * quantiles
    prev = np.floor(virtual)
    following = prev + 1
    above = virtual >= n - 1
    prev[above] = -1
    following[above] = -1
    gamma = virtual - prev
    prev_rank = np.where(prev < 0, n - 1, prev).astype(np.int64)
    next_rank = np.where(following < 0, n - 1, following).astype(np.int64)
    return prev_rank, next_rank, gamma


def needed_ranks(n: int, quantiles: np.ndarray) -> list[int]:
    """The ranks (0-based, sorted) whose values the interpolation of n values at `quantiles` reads."""
    prev_rank, next_rank, _ = interpolation_plan(n, quantiles)
    return sorted(set(prev_rank.tolist()) | set(next_rank.tolist()))


def lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    # numpy.lib._function_base_impl._lerp, step for step: the difference is taken in the data's dtype.
    diff = b - a
    result = np.add(a, diff * t)
    np.subtract(b, diff * (1 - t), out=result, where=t >= 0.5, casting="unsafe", dtype=np.float64)
    return result.astype(np.float64)


def interpolate(n: int, quantiles: np.ndarray, order_statistics: dict, dtype: np.dtype) -> np.ndarray:
    """NumPy's "linear" percentiles of n values from their order statistics (rank -> value for every rank of
    needed_ranks), interpolated in `dtype` as NumPy does."""
    prev_rank, next_rank, gamma = interpolation_plan(n, quantiles)
    prev = np.array([order_statistics[r] for r in prev_rank], dtype=dtype)
    following = np.array([order_statistics[r] for r in next_rank], dtype=dtype)
    return lerp(prev, following, gamma)


def select(values: np.ndarray, ranks: list[int]) -> list:
    """values[r] of sorted(values) for each r in `ranks`; reorders `values` in place.

    One single-rank partition per distinct rank, each over what lies above the previous one: NumPy's
    partition with several ranks at once is about 15x slower than with one.
    """
    picked = {}
    start = 0
    for r in sorted(set(ranks)):
        part = values[start:]
        if r == start + 1 and start in picked:  # the next order statistic: the minimum of what lies above
            part = part[1:]
            where = int(np.argmin(part))
            part[0], part[where] = part[where], part[0]
        elif r == start and start not in picked:  # the minimum (rank 0), as argmin: a partition at 0 is 20x slower
            where = int(np.argmin(part))
            part[0], part[where] = part[where], part[0]
        elif r == values.size - 1:  # the maximum of what lies above, as argmax (grid's default limits: 0 and 100)
            where = int(np.argmax(part))
            part[-1], part[where] = part[where], part[-1]
        else:
            part.partition(r - start)
        picked[r] = values[r]
        start = r
    return [picked[r] for r in ranks]


def select_segments(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray, ranks: list[list[int]]) -> list:
    """For each segment ``values[starts[s] : starts[s] + lengths[s]]`` of finite values, the values of ranks[s]
    (sorted, each below its length) in sorted order, as :func:`select` gives them (an array each); reorders the
    segments. One parallel kernel call for all of them (the samples of many groups, the bracket members of many
    regions), where :func:`select` is one NumPy call per rank, in one thread."""
    width = max((len(r) for r in ranks), default=0)
    if width == 0:
        return [[] for _ in ranks]
    padded = np.zeros((len(ranks), width), dtype=np.int64)
    for s, r in enumerate(ranks):
        if r:
            padded[s, : len(r)] = r
            padded[s, len(r) :] = r[-1]  # repeats are allowed: rows stay ascending
    k = _passes.kernels()
    with k.kernel_lock():
        found = k.select_segments(
            values, np.asarray(starts, dtype=np.int64), np.asarray(lengths, dtype=np.int64), padded, _passes.n_parts()
        )
    return [row[: len(r)] for row, r in zip(found, ranks, strict=True)]  # row views (numpy scalars, as select)


def compact_rows(sample: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Move each row's finite values to its front, in place (a C-contiguous (G, m) sample is scratch): the flat
    sample, each row's start in it, and each row's finite count, ready for :func:`select_segments`."""
    groups, width = sample.shape
    flat = sample.reshape(-1)
    starts = np.arange(groups, dtype=np.int64) * width
    k = _passes.kernels()
    with k.kernel_lock():
        finite = k.compact_segments(flat, starts, np.full(groups, width, dtype=np.int64), _passes.n_parts())
    return flat, starts, finite


def select_in_each(requests: list[tuple[np.ndarray | list[np.ndarray], list[int]]]) -> list[list]:
    """select(values, ranks) for each (values, ranks) pair of finite values (an array, or a list of pieces that
    together are the values), in one parallel kernel call (the values are copied into one buffer first: bracket
    members are a few percent of the data)."""
    if not requests:
        return []
    pieces = [p for v, _ in requests for p in (v if isinstance(v, list) else [v])]
    lengths = np.array([sum(p.size for p in v) if isinstance(v, list) else v.size for v, _ in requests], np.int64)
    starts = np.zeros(lengths.size, dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    values = np.concatenate(pieces) if len(pieces) != 1 else pieces[0].copy()
    return select_segments(values, starts, lengths, [r for _, r in requests])


def selected_percentiles(finite: np.ndarray, quantiles: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Percentiles of a non-empty 1-D array of finite values, by single-rank selections (reorders it)."""
    ranks = needed_ranks(finite.size, quantiles)
    return interpolate(finite.size, quantiles, dict(zip(ranks, select(finite, ranks), strict=True)), dtype)


# --- the driver -----------------------------------------------------------------------------------------------


class OrderStatistics:
    """Per group: the finite count, and either a dict rank -> value for every rank the interpolation needs
    (bracket, radix) or, for groups ``paired``, the two neighbours of every quantile as arrays (per-group
    selection of many groups: no Python object per group)."""

    def __init__(self, groups: int):
        self.counts = np.zeros(groups, dtype=np.int64)
        self.values: list[dict | None] = [None] * groups
        self.known = np.zeros(groups, dtype=bool)
        self.paired = np.zeros(groups, dtype=bool)
        self.prev = self.next = None  # (G, Q) where paired

    def found(self, g: int, values: dict) -> None:
        self.values[g] = values
        self.known[g] = True

    def forget(self, g: int) -> None:
        self.values[g] = None
        self.known[g] = False

    def missing(self) -> np.ndarray:
        return np.nonzero(~self.known)[0]


def order_statistics(source, quantiles: np.ndarray) -> OrderStatistics:
    """Exact order statistics of every group of `source`: brackets for large groups, then per-group selection
    (many groups) or radix selection (the rest)."""
    tun, lay = current(), source.layout
    stats = OrderStatistics(lay.groups)
    # A source whose every pass reads storage (ChunkedSource) takes radix selection where one batch of histogram
    # rows holds every group: 2 reads for float32 (4 for float64), where a bracket's blockwise sample, count and
    # collect are 3 (and a misleading sample adds radix on top).
    few_reads = getattr(source, "few_reads", False) and lay.groups <= radix_batch(tun, blockwise=True)
    bracket = BracketSelection(source, quantiles, stats) if lay.bracket_stride(tun) else None
    # On such a source a bracket runs only where it counts and collects in one pass (ScanBlocks): the sample (one
    # element in 257), then one read when the sample's brackets hold the ranks, as they do unless the sample
    # misleads (then radix's two passes follow).
    if bracket is not None and (bracket.fused or not few_reads):
        _passes.drive(bracket, source)
    missing = stats.missing()
    if len(missing) > tun.radix_groups and not few_reads:
        note("sort", groups=len(missing))
        selection = SortSelection(lay.groups, quantiles, source.dtype, stats)
    elif missing.size:
        note("radix", groups=missing.tolist())
        selection = RadixSelection(missing.tolist(), lay.groups, quantiles, source.dtype, stats, few_reads)
    else:
        return stats
    _passes.drive(selection, source)
    return stats


def percentiles(source, q: np.ndarray) -> np.ndarray:
    """Exact percentiles q (1-D) of each group: (len(q), G) float64, NaN for a group without finite values."""
    quantiles = np.true_divide(q, 100)  # NumPy's own step, so virtual indexes match bit for bit
    result = np.full((q.size, source.layout.groups), np.nan)
    if q.size == 0:
        return result
    stats = order_statistics(source, quantiles)
    every = bool(stats.paired.all())
    # interpolation_plan's arithmetic and lerp's (as :func:`interpolate`), element for element, in one kernel
    # pass over the groups: for the groups whose order statistics are dicts (brackets, radix), and for those
    # whose are arrays (per-group selection)
    from ._kernels import groups as group_kernels

    listed = [] if every else np.nonzero(stats.known & ~stats.paired & (stats.counts > 0))[0].tolist()
    if listed:
        lower = np.empty((len(listed), q.size), dtype=source.stats_dtype)
        upper = np.empty_like(lower)
        for row, g in enumerate(listed):
            prev_rank, next_rank, _ = interpolation_plan(int(stats.counts[g]), quantiles)
            order_statistics_of = stats.values[g]
            lower[row] = [order_statistics_of[r] for r in prev_rank.tolist()]
            upper[row] = [order_statistics_of[r] for r in next_rank.tolist()]
        values = np.empty((q.size, len(listed)))
        with _passes.kernels().kernel_lock():
            group_kernels.interpolate_pairs(
                stats.counts[listed], lower, upper, quantiles, values, _passes.n_parts()
            )  # fmt: skip
        result[:, listed] = values
    if every or stats.paired.any():
        paired = slice(None) if every else np.nonzero(stats.paired)[0]
        lower, upper = (np.ascontiguousarray(v[paired], dtype=source.stats_dtype) for v in (stats.prev, stats.next))
        counts = np.ascontiguousarray(stats.counts[paired], dtype=np.int64)
        values = result if every else np.empty((q.size, counts.size))
        with _passes.kernels().kernel_lock():
            group_kernels.interpolate_pairs(counts, lower, upper, quantiles, values, _passes.n_parts())
        if not every:
            result[:, paired] = values
    result += 0.0  # +0.0 for a zero, as the reference (the kernel's values have it already)
    return result


# --- many small groups ----------------------------------------------------------------------------------------


class SortSelection:
    """One pass over blocks of whole groups: every group's order statistics at once (groups fill `stats`)."""

    def __init__(self, groups: int, quantiles: np.ndarray, dtype: np.dtype, stats: OrderStatistics):
        self.pass_ = GroupSort(groups, quantiles, dtype)
        self.quantiles = quantiles
        self.stats = stats

    def next_pass(self):
        pass_, self.pass_ = self.pass_, None
        return pass_

    def consume(self, result) -> None:
        counts, prev, following = result
        if not self.stats.known.any():  # every group sorted here (many small groups): no masked copies
            self.stats.counts = counts
            self.stats.paired[:] = True
        else:
            missing = ~self.stats.known
            self.stats.counts[missing] = counts[missing]
            self.stats.paired |= missing
        self.stats.known[:] = True
        self.stats.prev, self.stats.next = prev, following


# --- radix selection ------------------------------------------------------------------------------------------


class RadixSelection:
    """Most-significant-digit radix selection of the needed ranks of `groups`, in batches of histogram rows.

    Per batch: one pass without a prefix gives each group's count and top digits; each later level refines, for
    every group, one pending prefix per pass, until every needed rank has its full key. `blockwise` (a source
    whose every pass reads storage): after the top pass, one Collect pass gathers the members of the needed
    top-digit buckets, whose exact sizes the top pass gave, and selects in them, so float32 and float64 take two
    passes; levels refine only what is too large to collect.
    """

    def __init__(
        self, groups: list[int], n_groups: int, quantiles, dtype: np.dtype, stats: OrderStatistics, blockwise=False
    ):
        tun = current()
        self.key_bits = 8 * dtype.itemsize
        self.dtype = dtype
        self.n_groups = n_groups
        self.quantiles = quantiles
        self.stats = stats
        self.shifts = list(range(self.key_bits - RADIX_BITS, -1, -RADIX_BITS))
        per_batch = radix_batch(tun, blockwise)
        self.batches = [groups[i : i + per_batch] for i in range(0, len(groups), per_batch)]
        self.batch: list[int] = []
        self.pending: dict[tuple[int, int], list[int]] = {}  # (g, rank) -> [key prefix, rank within it]
        self.level = 0
        self.asked: tuple | None = None
        self.blockwise = blockwise
        self.top: dict[int, np.ndarray] = {}  # g -> the top pass's histogram row, until the buckets are collected

    def next_pass(self):
        while True:
            if self.top:
                collect = self._collect_buckets()
                if collect is not None:
                    return collect
            if self.level == 0 and self.asked is None:
                if not self.batches:
                    self._finish_batch()
                    return None
                self._finish_batch()
                self.batch = self.batches.pop(0)
                self.pending = {}
                rows = np.array(self.batch, dtype=np.int64)
                self.asked = ("top", rows)
                return RadixHistogram(rows, self.n_groups, self.shifts[0], 0, np.zeros(rows.size, np.uint64), False)
            if self.level >= len(self.shifts):
                self.level = 0
                self.asked = None
                continue
            chosen = {}
            for (g, _), (prefix, _, level) in self.pending.items():
                if level < self.level and g not in chosen:
                    chosen[g] = prefix
            if not chosen:  # every rank of this batch is known at this level
                self.level += 1
                continue
            rows = np.array(sorted(chosen), dtype=np.int64)
            prefixes = np.array([chosen[g] for g in rows.tolist()], dtype=np.uint64)
            shift = self.shifts[self.level]
            self.asked = ("level", rows, prefixes)
            return RadixHistogram(rows, self.n_groups, shift, shift + RADIX_BITS, prefixes, True)

    def consume(self, hist: np.ndarray) -> None:
        kind, rows = self.asked[0], self.asked[1]
        if kind == "top":
            for row, g in enumerate(rows.tolist()):
                n = int(hist[row].sum())
                self.stats.counts[g] = n
                self.stats.found(g, {})
                cumulative = np.cumsum(hist[row])
                for r in needed_ranks(n, self.quantiles) if n else []:
                    digit = int(np.searchsorted(cumulative, r, side="right"))
                    before = int(cumulative[digit - 1]) if digit else 0
                    self.pending[(g, r)] = [digit, r - before, 0]
                if self.blockwise and n:
                    self.top[g] = hist[row]
            self.level = 1
            return
        if kind == "collect":
            members, base, where = hist, self.asked[2], self.asked[3]
            by_region: dict[tuple[int, int], list] = {}
            for (g, r), (j, offset) in where.items():
                by_region.setdefault((g, j), []).append((r, offset))
            for (g, j), wanted in by_region.items():
                picked = select(members.region(base, g, j), [offset for _, offset in wanted])
                for (r, _), value in zip(wanted, picked, strict=True):
                    self.stats.values[g][r] = value
                    del self.pending[(g, r)]
            return
        prefixes = dict(zip(rows.tolist(), self.asked[2].tolist(), strict=True))
        row_of = {g: i for i, g in enumerate(rows.tolist())}
        for (g, _), state in self.pending.items():
            if state[2] < self.level and prefixes.get(g) == state[0]:
                cumulative = np.cumsum(hist[row_of[g]])
                digit = int(np.searchsorted(cumulative, state[1], side="right"))
                before = int(cumulative[digit - 1]) if digit else 0
                state[:] = [(state[0] << RADIX_BITS) | digit, state[1] - before, self.level]

    def _collect_buckets(self):
        """A Collect pass for the top-digit buckets of the pending ranks (None, leaving them to the levels, when
        the members would not fit the memory budget). -0.0 and +0.0 have keys in two buckets but compare equal, so
        those two buckets are one value bracket."""
        top, self.top = self.top, {}
        shift = self.shifts[0]
        negative_zero = (1 << (RADIX_BITS - 1)) - 1  # the top digit of -0.0's key; +0.0's is the next one
        brackets: dict[int, dict[int, tuple[int, int]]] = {}  # g -> first digit -> (last digit, index j)
        where = {}
        for (g, r), (digit, within, _) in self.pending.items():
            first = negative_zero if digit in (negative_zero, negative_zero + 1) else digit
            last = negative_zero + 1 if first == negative_zero else digit
            if first == negative_zero and digit == last:
                within += int(top[g][negative_zero])
            own = brackets.setdefault(g, {})
            if first not in own:
                own[first] = (last, len(own))
            where[(g, r)] = (own[first][1], within)
        if not where:
            return None
        n_brackets = max(len(own) for own in brackets.values())
        low = np.full((self.n_groups, n_brackets), np.inf, dtype=self.dtype)
        high = np.full((self.n_groups, n_brackets), np.inf, dtype=self.dtype)
        sizes = np.zeros((self.n_groups, n_brackets), dtype=np.int64)
        for g, own in brackets.items():
            for first, (last, j) in own.items():
                low[g, j] = key_to_value(first << shift, self.dtype)
                high[g, j] = key_to_value((last + 1) << shift, self.dtype)  # the top finite bucket ends at +inf
                sizes[g, j] = int(top[g][first : last + 1].sum())
        if sizes.sum() * (_passes.n_parts() + 1) * self.dtype.itemsize > current().memory_budget:
            return None
        note("radix", collect=int(sizes.sum()))
        pass_ = Collect(low, high, sizes)
        self.asked = ("collect", None, pass_.base, where)
        return pass_

    def _finish_batch(self) -> None:
        for (g, r), (key, _, _) in self.pending.items():
            self.stats.values[g][r] = key_to_value(key, self.dtype)
        self.pending = {}


def radix_batch(tun, blockwise: bool) -> int:
    """Groups per radix batch: as many histogram rows as the memory budget holds, and for in-memory sources (where
    a pass is cheap) at most ``Tuning.radix_groups``."""
    row_bytes = _passes.RADIX_BINS * 8 * (_passes.n_parts() + 1)  # int64 rows: one per part, and the total
    rows = max(1, tun.memory_budget // row_bytes)
    return rows if blockwise else min(tun.radix_groups, rows)


def key_to_value(key: int, dtype: np.dtype):
    """The float whose order-preserving key is `key` (the inverse of the kernels' sign-magnitude flip)."""
    bits = 8 * dtype.itemsize
    sign_bit = 1 << (bits - 1)
    raw = key ^ sign_bit if key & sign_bit else key ^ ((1 << bits) - 1)
    return np.array(raw, dtype=np.uint32 if bits == 32 else np.uint64).view(dtype)[()]


# --- bracket selection ----------------------------------------------------------------------------------------


class BracketSelection:
    """Sample, propose brackets, count (and collect), select; groups it cannot prove stay missing in `stats`.

    States: "sample" -> "count" -> "collect" (one pass per batch of brackets whose members fit the cap) -> "done".
    On a runs layout the count is the fused count-and-collect (:class:`Scan` in memory, :class:`ScanBlocks` over
    blocks), and only brackets whose regions overflowed are collected again.
    """

    def __init__(self, source, quantiles: np.ndarray, stats: OrderStatistics):
        self.layout = source.layout
        self.dtype = source.dtype
        # A direct array counts and collects in one pass (Scan: scan_runs, or scan_lanes for lane patterns, which
        # count and flag eight rows at a time: H×W×C 2048²×21 exact, 34 ms for the two passes -> 30 ms).
        # Blocks of other sources count and collect in one pass too (ScanBlocks), with regions for all blocks, on
        # runs layouts; lane patterns of blocks count, then collect (collect_lanes).
        self.direct = source.direct or getattr(source, "swapped", False)  # Scan reads both in place
        self.fused = self.direct or self.layout.lane_count(current()) == 0 or self.layout.groups == 1
        self.quantiles = quantiles
        self.stats = stats
        self.state = "sample"
        self.pass_ = None
        self.low = self.high = self.expected = None
        self.needs: list = []  # (g, j, ranks, rank_low, size) still to collect
        self.batch: list = []  # the needs the current Collect pass collects

    def next_pass(self):
        if self.state == "sample":
            self.pass_ = _passes.sample_pass(self.layout, self.layout.bracket_stride(current()), self.dtype)
        elif self.state == "count":
            thresholds = bracket_thresholds(self.low, self.high)
            self.pass_ = (self._scan(thresholds) if self.fused else None) or CountBelow(thresholds)
        elif self.state == "collect":
            self.pass_ = self._collect()
        else:
            self.pass_ = None
        if self.pass_ is None and self.state != "finished":
            self.state = "finished"
            note("bracket", resolved=not self.stats.missing().size)
        return self.pass_

    def consume(self, result) -> None:
        if self.state == "sample":
            self.low, self.high, self.expected = propose_brackets(
                result, self.quantiles, self.dtype, self.layout.group_size
            )
            self.state = "count" if self.low.shape[1] else "done"
        elif self.state == "count":
            below, members = result if isinstance(self.pass_, (Scan, ScanBlocks)) else (result, None)
            self._counted(below, members)
            self.state = "collect" if self.needs else "done"
        elif self.state == "collect":
            base = self.pass_.base
            picked = select_in_each(
                [(result.region(base, g, j), [r - rank_low for r in ranks]) for g, j, ranks, rank_low, _ in self.batch]
            )
            for (g, _, ranks, _, _), values in zip(self.batch, picked, strict=True):
                self.stats.values[g].update(zip(ranks, values, strict=True))
            self.batch = []
            self.state = "collect" if self.needs else "done"

    def _scan(self, thresholds):
        """The fused pass, with regions sized from the sample (None if they would exceed the cap)."""
        parts = _passes.n_parts()
        groups, n_brackets = self.low.shape
        cap = np.zeros((groups, thresholds.shape[1] // 2), dtype=np.int64)
        if not self.direct:  # regions for all blocks together, and each block's parts' regions beside them
            cap[:, 1 : 1 + n_brackets] = np.where(np.isinf(self.low) & np.isinf(self.high), 0, self.expected)
            if cap.sum() * (1 + parts) > current().max_candidates:
                return None
            return ScanBlocks(thresholds, cap)
        # One group: the parts share its members. Runs of several groups (planes): a part may hold most of one,
        # and has regions for the planes it reads alone (Scan.regions).
        # Lane patterns: every part holds rows of every group, so where the whole groups' regions do not fit,
        # each part gets its share (the expected sizes have a margin of 1.5; a region that overflows in one
        # part, as when a bright object fills the rows of one part, is collected again).
        empty = np.isinf(self.low) & np.isinf(self.high)
        shared = -(-self.expected // parts)
        lanes = self.layout.lane_count(current())
        for per_part in (self.expected if groups > 1 else shared,) + ((shared,) if lanes else ()):
            cap[:, 1 : 1 + n_brackets] = np.where(empty, 0, per_part)
            if Scan.regions(self.layout, parts, cap)[0].sum() <= current().max_candidates:
                return Scan(thresholds, cap)
        return None

    def _collect(self):
        """A Collect pass for the next batch of needed brackets not collected yet, or None when none is left.

        Each part has a region of a bracket's whole size, so a batch holds at most ``max_candidates / parts``
        members: brackets beyond that wait for the next pass (one more read each), in the order listed. Many
        percentiles of many groups (7 of 256 planes of 2**18: 11 M members) took the per-group sort of every
        group when the members had to fit at once (2.6 s, where NumPy takes 1.1 s). A group with one bracket
        larger than a whole batch (heavy ties, a misleading sample) is left to radix selection."""
        room = current().max_candidates // _passes.n_parts()
        too_large = {g for g, _, _, _, size in self.needs if size > room}
        for g in too_large:
            self.stats.forget(g)
        batch, rest, total = [], [], 0
        for need in self.needs:
            if need[0] in too_large:
                continue
            if total + need[4] <= room:
                batch.append(need)
                total += need[4]
            else:
                rest.append(need)
        self.batch, self.needs = batch, rest
        if not batch:
            return None
        groups, n_brackets = self.low.shape
        sizes = np.zeros((groups, n_brackets), dtype=np.int64)
        low = np.full_like(self.low, np.inf)
        high = np.full_like(self.high, np.inf)
        for g, j, _, _, size in batch:
            sizes[g, j], low[g, j], high[g, j] = size, self.low[g, j], self.high[g, j]
        note("collect", regions=[(g, j) for g, j, *_ in batch])
        return Collect(low, high, sizes)

    def _counted(self, below: np.ndarray, members) -> None:
        """Prove the brackets from the counts; select what the fused pass collected, list what is to collect."""
        n_brackets = self.low.shape[1]
        counts = below[:, 1] - below[:, 0]
        rank_low = below[:, 2::2][:, :n_brackets] - below[:, :1]  # finite values below each bracket
        rank_high = below[:, 3::2][:, :n_brackets] - below[:, :1]
        requests: list = []  # (bracket, group, ranks, their ranks among the bracket's members)
        overflowed = members.overflowed if members is not None else None
        self.stats.counts[: counts.size] = counts
        # The bracket of every needed rank of every group in one NumPy step (ranks padded with their last, which
        # is harmless); then Python ints and lists: per-group NumPy calls on arrays of a few brackets were most of
        # this loop's time (256 groups: the loop over the brackets of each rank took about a millisecond)
        counts_list = counts.tolist()
        ranks_of: dict[int, list[int]] = {n: needed_ranks(n, self.quantiles) for n in set(counts_list) - {0}}
        width = max((len(r) for r in ranks_of.values()), default=0)
        padded = np.zeros((len(counts_list), width), dtype=np.int64)
        for g, n in enumerate(counts_list):
            if n:
                r = ranks_of[n]
                padded[g] = r + r[-1:] * (width - len(r))
        inside = (rank_low[:, None, :] <= padded[:, :, None]) & (padded[:, :, None] < rank_high[:, None, :])
        first_of = inside.argmax(axis=2).tolist()  # per group and rank: the first bracket holding it
        held = inside.any(axis=2).all(axis=1).tolist()
        lows_of, highs_of = rank_low.tolist(), rank_high.tolist()
        for g, n in enumerate(counts_list):
            if n == 0:
                self.stats.found(g, {})
                continue
            if not held[g]:
                continue  # the sample misled us: this group goes to radix
            lows, highs = lows_of[g], highs_of[g]
            by_bracket: dict[int, list[int]] = {}
            for r, j in zip(ranks_of[n], first_of[g], strict=False):  # the padding is past the ranks
                by_bracket.setdefault(j, []).append(r)
            self.stats.found(g, {})
            for j, ranks in by_bracket.items():
                if overflowed is None or overflowed[g][j + 1]:
                    self.needs.append((g, j, ranks, lows[j], highs[j] - lows[j]))
                    continue
                requests.append((j, g, ranks, [r - lows[j] for r in ranks]))
        if not requests:
            return
        # The members of every group's brackets are gathered and selected together (one parallel call, not one
        # NumPy partition per rank: 256 groups of 2**18 spent 40 ms there), bracket by bracket (a stable sort):
        # consecutive segments alike, so that each is selected from intervals around the previous one's values
        # (select_segments)
        requests.sort(key=lambda request: request[0])
        values, starts, lengths = members.gather([(g, j) for j, g, _, _ in requests])
        selected = select_segments(values, starts, lengths, [within for *_, within in requests])
        for (_, g, ranks, _), found in zip(requests, selected, strict=True):
            self.stats.values[g].update(zip(ranks, found, strict=True))


def propose_brackets(sample: np.ndarray, quantiles: np.ndarray, dtype: np.dtype, group_size: int):
    """Per group, value brackets likely to hold the needed order statistics, from a sample (G, m).

    Returns low, high (G, J) in `dtype` (padding brackets [inf, inf) hold nothing) and the expected number of
    members of each bracket in the whole group (from the sample's share, with a margin).
    """
    lowest, highest = np.finfo(dtype).min, dtype.type(np.inf)
    # Every group's finite sampled values compacted in place (the sample is scratch), then all the groups' span
    # ends selected in one parallel call.
    groups = sample.shape[0]
    flat, starts, finite = compact_rows(np.ascontiguousarray(sample))
    finite = finite.tolist()
    unique = np.unique(quantiles).tolist()
    spans_by_size: dict[int, tuple[list, list]] = {}  # the spans depend on the finite count alone
    for m in finite:
        if m not in spans_by_size:
            spans_by_size[m] = _sample_spans(m, unique)
    kth_of = [spans_by_size[m][1] for m in finite]
    selected = select_segments(flat, starts, np.array(finite, dtype=np.int64), kth_of)
    n_brackets = max((len(spans_by_size[m][0]) for m in finite), default=0)
    low = np.full((groups, n_brackets), highest, dtype=dtype)
    high = np.full((groups, n_brackets), highest, dtype=dtype)
    expected = np.zeros((groups, n_brackets), dtype=np.int64)
    is_value = np.zeros((groups, n_brackets), dtype=bool)  # right edges that are sample values (not inf)
    for g, m in enumerate(finite):
        spans, kth = spans_by_size[m]
        at = dict(zip(kth, selected[g], strict=True))
        for j, (s, e) in enumerate(spans):
            low[g, j] = at[s] if s >= 0 else lowest
            high[g, j] = at[e] if e < m else highest
            is_value[g, j] = e < m
            # regions get 1.5 times the sample's share of the group, plus slack for small shares
            expected[g, j] = int(1.5 * ((min(e, m) - max(s, 0) + 1) / m) * group_size) + 1024
    # The right edges just above the span's last value, all at once (inf beyond the largest finite value)
    with np.errstate(over="ignore"):
        high[is_value] = np.nextafter(high[is_value], highest)
    return low, high, expected


def _sample_spans(m: int, unique_quantiles: list[float]) -> tuple[list[list[int]], list[int]]:
    """The merged sample-rank spans [s, e] around each quantile of a sample of m finite values, and the sorted
    ranks within the sample whose values bound them."""
    if m < 2:
        return [], []
    spans = []
    for p in unique_quantiles:
        centre = p * (m - 1)
        margin = 4.0 * math.sqrt(m * p * (1 - p)) + 4  # misses ~1 in 15 000 brackets
        spans.append((math.floor(centre - margin), math.ceil(centre + margin) + 1))
    spans.sort()
    merged = [list(spans[0])]
    for s, e in spans[1:]:
        if s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return merged, sorted({i for s, e in merged for i in (s, e) if 0 <= i < m})
