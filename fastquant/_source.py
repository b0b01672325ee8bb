"""Sources and blocks: where the engine's passes read the data from.

A *block* is an N-D sub-array of the logical array (see :mod:`fastquant._plan`), identified by its index, a tuple
of slices, never by a flat offset. The engine hands each block to a pass as a 1-D C-contiguous native float32 or
float64 array (what the kernels read) with its local ``(outer, groups, inner)`` layout and the global indexes of
its local groups. Memmap slabs, TIFF pages, zarr chunks and Dask blocks are all such blocks.

:class:`ArraySource` serves an in-memory array: in place as one block when the kernels can read it directly
(C-contiguous native float32/float64 in logical order), else as slabs of at most ``Tuning.stream_block``
elements, each converted into a reused buffer. :class:`PartitionSource` serves the same array split at given
block indexes (the chunking tests, and the model for out-of-core sources).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterator, Sequence

import numpy as np

from . import _validate
from ._plan import Geometry, Layout, Plan, current, note


def kernel_dtype(dtype: np.dtype) -> np.dtype:
    """What kernels read: float32 holds float16, bool and 8/16-bit integers exactly; the rest go through float64.
    Byte order does not matter (a swapped float32 is float32 work)."""
    narrow = dtype.kind == "b" or dtype.itemsize <= 2 or (dtype.kind == "f" and dtype.itemsize == 4)
    return np.dtype(np.float32 if narrow else np.float64)


@dataclasses.dataclass
class Block:
    """One block: its index in the logical array, its data as kernels read it, and where its groups belong."""

    index: tuple[slice, ...]
    data: np.ndarray  # 1-D C-contiguous, kernel dtype, the block in C order (or byte-swapped words, see swapped)
    layout: Layout  # local (outer, groups, inner)
    geometry: Geometry
    swapped: bool = False  # data holds byte-swapped float32 as uint32 words (only for passes that read them)

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the values the kernels see (float32 for swapped words)."""
        return np.dtype(np.float32) if self.swapped else self.data.dtype

    @property
    def all_groups(self) -> bool:
        """Whether the block spans the kept axes: its groups are every group, in order."""
        return self.layout.groups == self.geometry.layout.groups

    @functools.cached_property
    def group_ids(self) -> np.ndarray:
        """The global group of each local group."""
        if self.all_groups:
            return np.arange(self.layout.groups)
        return self.geometry.ids(self.index, "groups")

    @functools.cached_property
    def group_rows(self) -> slice | np.ndarray:
        """The block's global groups as an index of per-group rows: a slice where they are one run (what sources
        cut), else `group_ids`. Writing rows of a large per-group array through a slice is a copy; through an
        index array, NumPy's advanced-indexing assignment took 25x as long (80 ms for 11 rows of 2**19)."""
        run = self.geometry.id_run(self.index, "groups")
        return slice(run[0], run[0] + run[1]) if run is not None else self.group_ids

    def take(self, per_group: np.ndarray) -> np.ndarray:
        """The rows of a per-group array that belong to this block's groups (no copy when it has them all)."""
        return per_group if self.all_groups else per_group[self.group_ids]

    def sampled(self, part: str, step: int, run: int = 1) -> tuple[slice | np.ndarray, np.ndarray]:
        """The local positions along `part` ("outer" or "inner") whose global index i is sampled: runs of `run`
        consecutive indexes, one run in every `step` (``(i // run) % step == 0``), and each one's column among the
        sampled indexes (``(i // (run * step)) * run + i % run``). Local positions are a slice where `run` is 1
        and the block's positions form one run of global indexes (slabs in C order: what sources cut)."""
        id_run = self.geometry.id_run(self.index, part)
        if id_run is not None and run == 1:
            start, n = id_run
            first = (-start) % step
            return slice(first, n, step), (start + np.arange(first, n, step)) // step
        if id_run is not None:
            start, n = id_run
            period = run * step
            periods = np.arange(start // period, (start + n - 1) // period + 1)
            ids = (periods[:, None] * period + np.arange(run)[None, :]).reshape(-1)
            ids = ids[(ids >= start) & (ids < start + n)]
            local = ids - start
        else:
            every = self.geometry.ids(self.index, part)
            local = np.nonzero((every // run) % step == 0)[0]
            ids = every[local]
        return local, (ids // (run * step)) * run + ids % run


def partition(
    shape: tuple[int, ...], max_elements: int, chunks: tuple[int, ...] | None = None
) -> list[tuple[slice, ...]]:
    """Slabs in C order covering `shape`, each at most `max_elements` (>= 1) elements. With storage `chunks`, a
    slab boundary on the axis it splits falls on a chunk boundary where a whole chunk fits."""
    if math.prod(shape) == 0:
        return []
    axis = 0
    while axis < len(shape) - 1 and math.prod(shape[axis + 1 :]) > max_elements:
        axis += 1
    trailing = math.prod(shape[axis + 1 :])
    step = max(1, max_elements // trailing)
    if chunks is not None and 1 < chunks[axis] <= step:
        step -= step % chunks[axis]
    blocks = []
    for lead in np.ndindex(*shape[:axis]):
        for start in range(0, shape[axis], step):
            index = tuple(slice(i, i + 1) for i in lead) + (slice(start, min(shape[axis], start + step)),)
            blocks.append(index + tuple(slice(0, n) for n in shape[axis + 1 :]))
    return blocks


class ArraySource:
    """An in-memory array seen in the plan's logical axis order."""

    def __init__(self, x: np.ndarray, plan: Plan):
        self.x = x
        self.perm = plan.perm
        self.geometry: Geometry = plan.geometry
        self.view = x.transpose(plan.perm) if plan.perm != tuple(range(x.ndim)) else x
        self.dtype = kernel_dtype(x.dtype)
        self.stats_dtype = _validate.percentile_dtype(x.dtype)
        # == is False for a swapped byte order
        self.direct = bool(self.view.flags.c_contiguous and x.dtype == self.dtype)
        # Byte-swapped float32 in logical order: the passes whose kernels swap as they read (swapped_block) take
        # it in place; the others get native slabs.
        self.swapped = bool(self.view.flags.c_contiguous and x.dtype.kind == "f" and x.dtype.itemsize == 4)
        self.swapped &= not self.direct
        self.size = x.size
        note("source", dtype=self.dtype.name, direct=self.direct, swapped=self.swapped)

    @property
    def layout(self) -> Layout:
        return self.geometry.layout

    @property
    def flat(self) -> np.ndarray:
        """The whole logical array as kernels read it (direct sources only)."""
        return self.view.reshape(-1)

    def indexes(self, aligned: bool = False) -> list[tuple[slice, ...]]:
        """The block indexes of a pass over the whole source; `aligned`: each block holds whole groups."""
        whole = tuple(slice(0, n) for n in self.view.shape)
        if self.direct:
            return [whole]
        return (
            aligned_partition(self.geometry, current().stream_block)
            if aligned
            else partition(self.view.shape, current().stream_block)
        )

    reuse = True  # blocks share one buffer: a pass must not keep a block's data after append()
    random_access = True  # passes may read any element directly (the sample)

    def blocks(self, aligned: bool = False) -> Iterator[Block]:
        buffer = None
        for index in self.indexes(aligned):
            if self.direct and index == tuple(slice(0, n) for n in self.view.shape):
                yield self._block(index, self.flat)
                continue
            piece = self.view[index]
            if buffer is None or buffer.size < piece.size or not self.reuse:
                buffer = np.empty(piece.size, dtype=self.dtype)
            data = buffer[: piece.size]
            np.copyto(data.reshape(piece.shape), piece, casting="unsafe")
            yield self._block(index, data)

    def swapped_block(self) -> Block:
        """The whole array as one block of byte-swapped float32 words (swapped sources only)."""
        whole = tuple(slice(0, n) for n in self.view.shape)
        return dataclasses.replace(self._block(whole, self.view.reshape(-1).view(np.uint32)), swapped=True)

    def _block(self, index: tuple[slice, ...], data: np.ndarray) -> Block:
        shape = tuple(len(range(*s.indices(n))) for s, n in zip(index, self.view.shape, strict=True))
        return Block(index, data, self.geometry.local_layout(shape), self.geometry)


class PartitionSource(ArraySource):
    """An in-memory array read at the given block indexes (logical order), in the given order, each block in its
    own buffer; `aligned_indexes` serve the passes that need whole groups (default: slabs of whole groups)."""

    reuse = False
    random_access = False

    def __init__(
        self,
        x: np.ndarray,
        plan: Plan,
        indexes: Sequence[tuple[slice, ...]],
        aligned_indexes: Sequence[tuple[slice, ...]] | None = None,
    ):
        super().__init__(x, plan)
        self._indexes = list(indexes)
        self._aligned = None if aligned_indexes is None else list(aligned_indexes)
        self.direct = self.swapped = False  # random access is not assumed: every pass reads blocks

    def indexes(self, aligned: bool = False) -> list[tuple[slice, ...]]:
        if aligned:
            return self._aligned or aligned_partition(self.geometry, current().stream_block)
        return self._indexes


def aligned_partition(geometry: Geometry, max_elements: int) -> list[tuple[slice, ...]]:
    """Blocks that each hold whole groups: ranges of the kept axes, full extent elsewhere."""
    shape = geometry.shape
    if not geometry.kept:
        return [tuple(slice(0, n) for n in shape)]
    first, last = geometry.kept[0], geometry.kept[-1]
    per_group = geometry.layout.group_size
    kept_shape = shape[first : last + 1]
    slabs = partition(kept_shape, max(1, max_elements // max(per_group, 1)))
    full_before = tuple(slice(0, n) for n in shape[:first])
    full_after = tuple(slice(0, n) for n in shape[last + 1 :])
    return [full_before + slab + full_after for slab in slabs]


class ChunkedSource:
    """An array-like (a zarr array, an h5py dataset, a memmap, a lazy stack of files) read block by block.

    Blocks are slabs in the logical C order of at most `block_elements` elements, cut where the storage chunks
    are cut when the slab boundary falls inside a chunked axis, and read in that order (sequential formats such as
    HDF5 read best so). Each block is read with one ``array[index]`` in the input's axis order, transposed to the
    logical order and converted into a reused buffer. The engine never reads an array-like element by element
    (``random_access`` is False), so the sample of a selection is a pass over blocks too.
    """

    reuse = True
    random_access = False
    direct = False
    few_reads = True  # every pass reads storage: selections minimise passes (see _select.order_statistics)

    def __init__(self, array, plan: Plan, block_elements: int, chunks: tuple[int, ...] | None = None):
        self.array = array
        self.perm = plan.perm
        self.geometry: Geometry = plan.geometry
        dtype = np.dtype(array.dtype)
        self.dtype = kernel_dtype(dtype)
        self.stats_dtype = _validate.percentile_dtype(dtype)
        self.size = math.prod(array.shape)
        self.block_elements = max(1, int(block_elements))
        self.chunks = None if chunks is None else tuple(chunks[p] for p in self.perm)
        # Whether a read is a view of memory (a NumPy array or memmap, or a wrapper of one that says so)
        self.mapped = bool(getattr(array, "mapped", isinstance(array, np.ndarray)))
        note("source", dtype=self.dtype.name, direct=False, chunked=True)

    @property
    def layout(self) -> Layout:
        return self.geometry.layout

    def indexes(self, aligned: bool = False) -> list[tuple[slice, ...]]:
        if aligned:
            return aligned_partition(self.geometry, self.block_elements)
        return partition(self.geometry.shape, self.block_elements, self.chunks)

    def sample_indexes(self, sample) -> list[tuple[slice, ...]] | None:
        """Indexes of blocks that hold just the rows a sample of whole rows takes (a pass's ``Sample`` with `run` the
        row length), so that the sample reads storage in part: per sampled outer position and plane, every
        `step_b`-th row (a strided hyperslab; NumPy, zarr, h5py and the file stacks read those alone), in slabs
        of the kept axes within `block_elements`. Chunks that hold no sampled row are not read; the rows of one
        chunk are read together.

        None where the sample is not of whole rows, or where reads are views of memory (`mapped`): a memmap's
        slabs are views, and the gather kernel reads only the pages that hold sampled rows (the strided reads,
        copied, took 24 ms longer per conversion of the benchmark volume)."""
        geo, shape = self.geometry, self.geometry.shape
        first_inner = geo.kept[-1] + 1 if geo.kept else 0
        if self.mapped or len(shape) - first_inner < 2 or sample.run != shape[-1]:
            return None
        first_kept = geo.kept[0] if geo.kept else 0
        outer_shape, kept_shape = shape[:first_kept], shape[first_kept:first_inner]
        planes_shape, (height, width), step = shape[first_inner:-2], shape[-2:], sample.step_b
        rows_per_plane = -(-height // step)
        per_box = max(1, self.block_elements // (rows_per_plane * width))
        kept_boxes = partition(kept_shape, per_box) if kept_shape else [()]
        indexes = []
        for a in range(0, math.prod(outer_shape), sample.step_a):
            outer = tuple(slice(i, i + 1) for i in np.unravel_index(a, outer_shape)) if outer_shape else ()
            for p in range(math.prod(planes_shape)):
                first_row = (-p * height) % step  # the plane's rows continue the inner row count of the planes before
                if first_row >= height:
                    continue
                plane = tuple(slice(i, i + 1) for i in np.unravel_index(p, planes_shape)) if planes_shape else ()
                rows = (slice(first_row, height, step), slice(0, width))
                indexes.extend(outer + box + plane + rows for box in kept_boxes)
        note("sample", partial_read=True, reads=len(indexes))
        return indexes

    def read(self, index: tuple[slice, ...]) -> np.ndarray:
        """The block at logical `index` as an array in logical axis order (a view of what the array-like gave)."""
        physical = [slice(None)] * len(index)
        for k, p in enumerate(self.perm):
            physical[p] = index[k]
        return np.asarray(self.array[tuple(physical)]).transpose(self.perm)

    def blocks(self, aligned: bool = False, indexes: Sequence[tuple[slice, ...]] | None = None) -> Iterator[Block]:
        buffer = None
        for index, piece in self._read_ahead(self.indexes(aligned) if indexes is None else indexes):
            if piece.flags.c_contiguous and piece.dtype == self.dtype:
                data = piece.reshape(-1)  # what kernels read already (a memmap's pages, a decoded chunk): no copy
            else:
                if buffer is None or buffer.size < piece.size:
                    buffer = np.empty(piece.size, dtype=self.dtype)
                data = buffer[: piece.size]
                np.copyto(data.reshape(piece.shape), piece, casting="unsafe")
            del piece
            yield Block(index, data, self.geometry.local_layout(block_shape(index, self.geometry.shape)), self.geometry)

    def _read_ahead(self, indexes: Sequence[tuple[slice, ...]]) -> Iterator[tuple[tuple[slice, ...], np.ndarray]]:
        """(index, piece) in order, the next piece read by one reader thread while the current one is converted
        (decoding zarr chunks, reading files); reads stay sequential, in order, one at a time."""
        indexes = list(indexes)
        if len(indexes) < 2:
            for index in indexes:
                yield index, self.read(index)
            return
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fastquant-read") as reader:
            pending = reader.submit(self.read, indexes[0])
            for k, index in enumerate(indexes):
                piece = pending.result()
                pending = reader.submit(self.read, indexes[k + 1]) if k + 1 < len(indexes) else None
                yield index, piece
                del piece


def block_shape(index: tuple[slice, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(len(range(*s.indices(n))) for s, n in zip(index, shape, strict=True))


def block_elements(dtype: np.dtype, max_memory: int) -> int:
    """Elements per block of a ChunkedSource within `max_memory`: the engine's scratch aside, two blocks in flight
    (one read, one in the kernel buffer), each as read, as kernels read it, and as levels."""
    if current().read_block:
        return current().read_block
    per_element = np.dtype(dtype).itemsize + kernel_dtype(np.dtype(dtype)).itemsize + 1
    spare = max_memory - current().memory_budget - (32 << 20)
    return max(1 << 16, spare // (2 * per_element))


def storage_chunks(array) -> tuple[int, ...] | None:
    """The chunk shape an array-like declares (zarr, h5py), if any."""
    chunks = getattr(array, "chunks", None)
    if isinstance(chunks, tuple) and len(chunks) == len(array.shape) and all(isinstance(c, int) for c in chunks):
        return chunks
    return None
