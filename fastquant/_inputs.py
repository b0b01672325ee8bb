"""Opening bulk-conversion inputs as array-likes that are read block by block, never loaded whole.

:func:`open_input` turns a path (``.npy``, ``.npz``, TIFF, zarr, HDF5, or a directory or glob pattern of ``.npy``
or ``.tif`` files) into an :class:`Input`: an array-like with ``.shape``, a NumPy ``.dtype`` and
``__getitem__(tuple of slices) -> numpy.ndarray``, plus what the driver needs to read it well (storage chunks,
whether reads must stay sequential) and an identity for ``--resume``. :func:`as_array_like` is the in-memory
counterpart used by the public API.

Everything is checked when the input is opened (path, format, member, dtype), before any data is read. tifffile,
zarr and h5py are imported only when such a file is opened: ``import fastquant`` does not import this module, and
this module imports NumPy and the standard library only.

What each format gives:

- ``.npy``: a read-only memory map (``numpy.load(mmap_mode="r")``).
- ``.npz``: one member (``dataset`` picks it). A member stored uncompressed (``numpy.savez``) is memory-mapped at
  its offset inside the archive; a compressed member (``numpy.savez_compressed``) is loaded whole into memory,
  as ZIP deflate cannot be read from the middle.
- TIFF (``.tif``/``.tiff``, multi-page, OME-TIFF, ImageJ): series 0 (its full-resolution level). Uncompressed
  contiguous data is memory-mapped (``tifffile.memmap``); anything else is read through tifffile's zarr view of
  the series, chunk by chunk (strips or tiles). Without zarr installed, a series of 2-D (or 2-D with samples)
  pages is read page by page instead.
- zarr v2 and v3, directory stores and ``.zip`` stores: an array, or the one array of a group (``dataset`` is an
  array path inside the group).
- HDF5 (``.h5``/``.hdf5``/``.hdf``): a dataset (``dataset`` is its path; a file with exactly one dataset picks
  it). h5py reads must stay sequential (``Input.sequential``).
- A directory or glob pattern of ``.npy`` or ``.tif`` files, in natural order (``a2`` before ``a10``): 2-D files
  are slices stacked on a new axis 0; N-D files are sub-volumes concatenated along axis 0. Indexing opens only the
  files it needs (compressed ``.tif`` files are decoded whole when touched; the last two are cached).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import re
import struct
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import zipfile

__all__ = ["Input", "as_array_like", "open_input"]

KINDS = ("npy", "npz", "tiff", "zarr", "hdf5", "files", "array")
ACCEPTED_DTYPES = "bool, integer or float (float16/float32/float64)"
ACCEPTED_INPUTS = (
    ".npy, .npz, .tif/.tiff, a zarr store (directory or .zip), .h5/.hdf5/.hdf, "
    "or a directory or glob pattern of .npy or .tif files"
)
_EXTRAS = {"tifffile": "tiff", "zarr": "zarr", "h5py": "hdf5"}
_TIFF_EXTENSIONS = (".tif", ".tiff")
_HDF5_EXTENSIONS = (".h5", ".hdf5", ".hdf")
_NPY_MAGIC = b"\x93NUMPY"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"
_ZARR_MARKERS = ("zarr.json", ".zarray", ".zgroup")
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclasses.dataclass
class Input:
    """An opened input: the array-like to read blocks from, and how to read it.

    Attributes
    ----------
    array : array-like
        ``.shape`` (tuple of ints), ``.dtype`` (a NumPy dtype) and ``__getitem__(tuple of slices)`` returning a
        ``numpy.ndarray``. Read-only.
    kind : str
        ``"npy"``, ``"npz"``, ``"tiff"``, ``"zarr"``, ``"hdf5"``, ``"files"`` or ``"array"`` (in memory).
    path : str or None
        The absolute path of the input (of the directory or glob pattern for ``"files"``); None in memory.
    chunks : tuple of int or None
        The storage chunk shape, which block reads should follow; None when the data is contiguous.
    sequential : bool
        True when reads must stay sequential (one thread, in order): h5py.
    dataset : str or None
        The member, array or dataset path chosen inside an ``.npz``, zarr group or HDF5 file.
    """

    array: Any
    kind: str
    path: str | None
    chunks: tuple[int, ...] | None = None
    sequential: bool = False
    dataset: str | None = None
    _files: list[str] = dataclasses.field(default_factory=list, repr=False)
    _closers: list[Any] = dataclasses.field(default_factory=list, repr=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.array.dtype)

    def identity(self) -> dict:
        """What identifies this input for ``--resume``: JSON-serializable.

        Returns
        -------
        dict
            ``path``, ``size`` (bytes; the sum over every file of a directory store or file list), ``mtime_ns``
            (the latest over those files), ``shape`` (list), ``dtype`` (str); ``dataset`` for ``.npz``, zarr and
            HDF5 inputs; ``count`` (the number of files) for ``"files"``. In memory: ``path`` and ``mtime_ns`` are
            None and ``size`` is the array's nbytes.
        """
        ident: dict[str, Any] = {"path": self.path}
        if self.path is None:
            ident["size"] = int(math.prod(self.shape)) * self.dtype.itemsize
            ident["mtime_ns"] = None
        else:
            files = _files_under(self.path) if self.kind == "zarr" else self._files or [self.path]
            stats = [os.stat(f) for f in files]
            ident["size"] = sum(s.st_size for s in stats)
            ident["mtime_ns"] = max((s.st_mtime_ns for s in stats), default=0)
        ident["shape"] = [int(n) for n in self.shape]
        ident["dtype"] = str(self.dtype)
        if self.kind in ("npz", "zarr", "hdf5"):
            ident["dataset"] = self.dataset
        if self.kind == "files":
            ident["count"] = len(self._files)
        return ident

    def close(self) -> None:
        """Close the files this input holds open (idempotent). The array must not be read afterwards."""
        closers, self._closers = self._closers, []
        for close in reversed(closers):
            close()

    def __enter__(self) -> Input:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


# --------------------------------------------------------------------------------------------------------------
# in-memory objects


def as_array_like(obj) -> Any:
    """Return `obj` as an array-like that can be read block by block, without copying when possible.

    Parameters
    ----------
    obj : array-like
        A ``numpy.ndarray`` (returned as it is); an object with ``shape``, a NumPy ``dtype`` and ``__getitem__``
        (zarr arrays, h5py datasets, memory maps: returned as they are); an object with ``__array__`` such as a CPU
        torch tensor, nested lists or a scalar (converted with ``numpy.asarray``).

    Returns
    -------
    array-like

    Raises
    ------
    TypeError
        For a tensor on a GPU (move it with ``.cpu()`` first), an unsupported dtype, or any other object.
    """
    if isinstance(obj, np.ndarray):
        _check_dtype(obj.dtype, "the array")
        return obj
    device = _gpu_device(obj)
    if device is not None:
        raise TypeError(
            f"the {type(obj).__name__} is on device {device!r}; accepted: data in CPU memory "
            "(move it first, e.g. tensor.cpu() for torch or .get() for CuPy)"
        )
    dtype = getattr(obj, "dtype", None)
    if isinstance(dtype, np.dtype) and hasattr(obj, "shape") and hasattr(obj, "__getitem__"):
        _check_dtype(dtype, f"the {type(obj).__name__}")
        return obj
    if hasattr(obj, "__array__") or isinstance(obj, (list, tuple, int, float, bool, np.generic)):
        arr = np.asarray(obj)
        _check_dtype(arr.dtype, f"the {type(obj).__name__}")
        return arr
    raise TypeError(
        f"cannot read a {type(obj).__module__}.{type(obj).__qualname__}; accepted: a path, a numpy array, an "
        "array-like with shape, a NumPy dtype and __getitem__ (zarr array, h5py dataset, memmap), or an object "
        "with __array__ (e.g. a CPU torch tensor)"
    )


def _gpu_device(obj) -> str | None:
    """The device of a tensor that is not in CPU memory, else None."""
    if getattr(obj, "is_cuda", False) is True:
        return str(getattr(obj, "device", "cuda"))
    device = getattr(obj, "device", None)
    if device is None or callable(device):
        return None
    kind = getattr(device, "type", None)
    if not isinstance(kind, str):
        kind = getattr(device, "platform", None)
    if not isinstance(kind, str):
        kind = str(device)
    return None if kind.lower() == "cpu" else str(device)


# --------------------------------------------------------------------------------------------------------------
# opening paths


def open_input(source, *, dataset: str | None = None) -> Input:
    """Open `source` for block-by-block reading.

    Parameters
    ----------
    source : str, os.PathLike or array-like
        A file (``.npy``, ``.npz``, ``.tif``/``.tiff``, ``.h5``/``.hdf5``/``.hdf``, a zarr ``.zip`` store), a
        directory (a zarr store, or a directory of ``.npy`` or ``.tif`` files), a glob pattern of ``.npy`` or
        ``.tif`` files, or an in-memory array-like (see :func:`as_array_like`). The format is told by the file's
        content first and its extension second.
    dataset : str, optional
        The member of an ``.npz``, the array path inside a zarr group, or the dataset path inside an HDF5 file.
        Needed only when there is more than one.

    Returns
    -------
    Input
        Close it (or use it as a context manager) when done.

    Raises
    ------
    FileNotFoundError
        The path does not exist (or a glob pattern matches nothing).
    ValueError
        The path cannot be read, is truncated, is in no known format, holds pickled objects, or `dataset` is
        missing, ambiguous or not found (the message lists what there is).
    TypeError
        The data has an unsupported dtype (complex, object, strings, structured).
    ImportError
        tifffile, zarr or h5py is needed and missing; the message names the extra to install.
    """
    if not isinstance(source, (str, bytes, os.PathLike)):
        if dataset is not None:
            raise ValueError(f"dataset={dataset!r} applies to paths only; got a {type(source).__name__}")
        return Input(as_array_like(source), "array", None)
    path = os.path.abspath(os.fsdecode(source))
    if dataset is not None and not isinstance(dataset, str):
        raise TypeError(f"dataset={dataset!r} must be a str (a member, array or dataset path)")

    if not os.path.lexists(path):
        if _GLOB_CHARS.search(os.fsdecode(source)):
            return _open_files(path, _glob_files(path), dataset)
        raise FileNotFoundError(f"input {path!r} does not exist")
    if os.path.isdir(path):
        if any(os.path.exists(os.path.join(path, marker)) for marker in _ZARR_MARKERS):
            return _open_zarr(path, dataset, zip_store=False)
        return _open_files(path, _directory_files(path), dataset)
    if not os.path.isfile(path):
        raise ValueError(f"input {path!r} is not a regular file or directory; accepted: {ACCEPTED_INPUTS}")

    kind = _sniff(path)
    if kind in ("npy", "tiff") and dataset is not None:
        raise ValueError(
            f"dataset={dataset!r} was given, but {path!r} is a {kind} file, which holds one array; "
            "dataset applies to .npz, zarr and HDF5 inputs"
        )
    if kind == "npy":
        return Input(_open_npy(path), "npy", path, _files=[path])
    if kind == "npz":
        return _open_npz(path, dataset)
    if kind == "tiff":
        return _open_tiff(path)
    if kind == "hdf5":
        return _open_hdf5(path, dataset)
    return _open_zarr(path, dataset, zip_store=True)


def _sniff(path: str) -> str:
    """The kind of a regular file, from its first bytes, then its extension; ValueError if unknown or unreadable."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise ValueError(f"input {path!r} cannot be read: {exc.strerror or exc}") from exc
    ext = os.path.splitext(path)[1].lower()
    if head.startswith(_NPY_MAGIC):
        return "npy"
    if head[:4] in _TIFF_MAGICS:
        return "tiff"
    if head == _HDF5_MAGIC or (ext in _HDF5_EXTENSIONS and _hdf5_userblock(path)):
        return "hdf5"
    if head.startswith(_ZIP_MAGIC):
        return _zip_kind(path, ext)
    if ext == ".npy":
        reason = "it is empty" if not head else f"it does not start with the .npy magic string (starts {head!r})"
        raise ValueError(f"input {path!r} is not a valid .npy file: {reason}")
    if ext in (".npz", ".zip"):
        raise ValueError(f"input {path!r} is not a valid {ext} file: it is not a ZIP archive (starts {head!r})")
    if ext in _TIFF_EXTENSIONS + _HDF5_EXTENSIONS:
        raise ValueError(f"input {path!r} is not a valid {ext} file (starts {head!r})")
    raise ValueError(f"input {path!r} (extension {ext or 'none'!r}) is not a known format; accepted: {ACCEPTED_INPUTS}")


def _hdf5_userblock(path: str) -> bool:
    """HDF5 files with a user block have their signature at 512, 1024, 2048, ... bytes."""
    with open(path, "rb") as f:
        offset = 512
        while True:
            f.seek(offset)
            head = f.read(8)
            if len(head) < 8:
                return False
            if head == _HDF5_MAGIC:
                return True
            offset *= 2


def _zip_kind(path: str, ext: str) -> str:
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"input {path!r} is not a valid ZIP archive ({exc})") from exc
    if any(name in _ZARR_MARKERS for name in names) or ext == ".zip":
        return "zarr"
    if ext == ".npz" or (names and all(name.endswith(".npy") for name in names)):
        return "npz"
    raise ValueError(
        f"input {path!r} is a ZIP archive that is neither an .npz (members *.npy) nor a zarr store (zarr.json, "
        f".zgroup or .zarray); accepted: {ACCEPTED_INPUTS}"
    )


def _check_dtype(dtype: np.dtype, what: str, *, pickled: bool = False) -> None:
    """TypeError unless `dtype` is bool, integer or float16/32/64; ValueError for pickled objects (npy/npz)."""
    dtype = np.dtype(dtype)
    if pickled and dtype.hasobject:
        raise ValueError(
            f"{what} holds pickled Python objects (dtype {dtype}), which are never loaded; accepted: {ACCEPTED_DTYPES}"
        )
    if dtype.kind in "biu" or (dtype.kind == "f" and dtype.itemsize <= 8):
        return
    raise TypeError(f"{what} has dtype {dtype}; accepted: {ACCEPTED_DTYPES}")


def _require(module: str):
    """Import an optional package; ImportError naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = _EXTRAS[module]
        raise ModuleNotFoundError(
            f"reading this input needs the {module} package, which is not installed: "
            f'pip install "fastquant-uint8[{extra}]"',
            name=module,
        ) from exc


def _files_under(path: str) -> list[str]:
    if not os.path.isdir(path):
        return [path]
    files = []
    for root, _dirs, names in os.walk(path):
        files.extend(os.path.join(root, name) for name in names)
    return sorted(files)


# --------------------------------------------------------------------------------------------------------------
# .npy and .npz


def _read_npy_header(f, what: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) from the .npy header at the file position; ValueError if bad or truncated."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:
            shape, fortran, dtype = fmt._read_array_header(f, version)
    except (ValueError, SyntaxError, EOFError) as exc:
        reason = "it is truncated" if "EOF" in str(exc) else "its header is invalid"
        raise ValueError(f"{what} is not a valid .npy file: {reason} ({exc})") from exc
    return tuple(int(n) for n in shape), bool(fortran), np.dtype(dtype)


def _check_data_size(what: str, shape, dtype: np.dtype, available: int) -> None:
    needed = math.prod(shape) * dtype.itemsize
    if needed > available:
        raise ValueError(
            f"{what} is truncated: its header says {shape} {dtype} ({needed} bytes of data), "
            f"but only {available} bytes follow the header"
        )


def _open_npy(path: str) -> np.ndarray:
    what = f"input {path!r}"
    with open(path, "rb") as f:
        shape, _fortran, dtype = _read_npy_header(f, what)
        offset = f.tell()
    _check_dtype(dtype, what, pickled=True)
    _check_data_size(what, shape, dtype, os.path.getsize(path) - offset)
    return np.load(path, mmap_mode="r", allow_pickle=False)


def _npz_members(path: str, zf: zipfile.ZipFile) -> dict[str, str]:
    """Member names as numpy.load gives them ('x' for 'x.npy') -> archive names."""
    return {(name[:-4] if name.endswith(".npy") else name): name for name in zf.namelist()}


def _open_npz(path: str, dataset: str | None) -> Input:
    import zipfile

    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"input {path!r} is not a valid .npz file ({exc})") from exc
    with zf:
        members = _npz_members(path, zf)
        name = _choose(path, "member", sorted(members), dataset)
        info = zf.getinfo(members[name])
        what = f"member {name!r} of {path!r}"
        stored = info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1
        try:
            with zf.open(info) as member:
                shape, fortran, dtype = _read_npy_header(member, what)
                header_size = member.tell()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ValueError(f"{what} cannot be read: {exc}") from exc
        _check_dtype(dtype, what, pickled=True)
        _check_data_size(what, shape, dtype, info.file_size - header_size)
        start = _zip_data_offset(path, info) if stored else None
    if start is not None and os.path.getsize(path) >= start + info.file_size:
        if math.prod(shape) == 0:
            array = np.empty(shape, dtype)
            array.flags.writeable = False
        else:
            order = "F" if fortran else "C"
            array = np.memmap(path, dtype=dtype, mode="r", offset=start + header_size, shape=shape, order=order)
    else:
        # A compressed member cannot be read from the middle: it is loaded whole.
        try:
            with np.load(path, allow_pickle=False) as npz:
                array = npz[name]
        except Exception as exc:  # zlib.error, BadZipFile, EOFError, ValueError, OSError on damaged archives
            raise ValueError(f"{what} cannot be read ({type(exc).__name__}: {exc})") from exc
        array.flags.writeable = False
    return Input(array, "npz", path, dataset=name, _files=[path])


def _zip_data_offset(path: str, info: zipfile.ZipInfo) -> int | None:
    """Where a member's bytes start in the archive: after its local header (whose extra field may differ from the
    central directory's)."""
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
    if len(header) < 30 or header[:4] != _ZIP_MAGIC:
        return None
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_length + extra_length


def _choose(path: str, what: str, names: list[str], dataset: str | None) -> str:
    """The one name `dataset` picks among `names` (or the only one); ValueError listing them otherwise."""
    listing = ", ".join(repr(n) for n in names) if names else "none"
    if dataset is not None:
        if dataset in names:
            return dataset
        raise ValueError(f"{path!r} has no {what} {dataset!r}; it has: {listing}")
    if len(names) == 1:
        return names[0]
    if not names:
        raise ValueError(f"{path!r} has no {what}s to read")
    raise ValueError(f"{path!r} has {len(names)} {what}s; pick one with dataset= (--dataset): {listing}")


# --------------------------------------------------------------------------------------------------------------
# TIFF


class _Complaints(logging.Handler):
    """Collects what a library logs (tifffile reports damaged files as log warnings, then carries on)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _tifffile_complaints():
    """tifffile's warnings while a file is opened, collected instead of printed."""
    logger = logging.getLogger("tifffile")
    handler, propagate = _Complaints(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _open_tiff(path: str) -> Input:
    tifffile = _require("tifffile")
    with _tifffile_complaints() as complaints:
        try:
            tif = tifffile.TiffFile(path)
        except Exception as exc:  # tifffile raises TiffFileError, ValueError, struct.error, ... on bad files
            raise ValueError(f"input {path!r} is not a readable TIFF file ({type(exc).__name__}: {exc})") from exc
        try:
            series = tif.series[0] if tif.series else None
        except BaseException:
            tif.close()
            raise
    if complaints:  # a damaged file: tifffile would read what it can and drop or misshape the rest
        tif.close()
        raise ValueError(f"input {path!r} is a damaged TIFF file ({complaints[0]}); is it truncated?")
    try:
        if series is None:
            raise ValueError(f"input {path!r} is a TIFF file without images")
        _check_dtype(series.dtype, f"input {path!r} (TIFF series 0)")
        if series.dataoffset is not None and math.prod(series.shape) > 0:
            try:
                array = tifffile.memmap(path, series=0, mode="r")
            except ValueError:
                array = None
            if array is not None and array.shape == tuple(series.shape):
                tif.close()
                return Input(array, "tiff", path, _files=[path])
        try:
            zarr = _require("zarr")
        except ImportError:
            zarr = None
        if zarr is not None:
            store = tif.aszarr(series=0, level=0)
            array = zarr.open(store, mode="r")
            return Input(array, "tiff", path, tuple(array.chunks), _files=[path], _closers=[tif.close, store.close])
        pages = _TiffPages(series)  # ImportError (zarr) if the series is not a stack of pages
        tif.filehandle.set_lock(True)  # pages may be read from several threads: seek + read under a lock
        return Input(pages, "tiff", path, pages.chunks, _files=[path], _closers=[tif.close])
    except BaseException:
        tif.close()
        raise


class _TiffPages:
    """Series 0 of a compressed TIFF, read page by page (when zarr is not installed)."""

    def __init__(self, series) -> None:
        page_shape = tuple(series.keyframe.shape)
        self.shape = tuple(series.shape)
        self.dtype = np.dtype(series.dtype)
        self._lead = self.shape[: len(self.shape) - len(page_shape)]
        self._pages = series.pages
        if self._lead + page_shape != self.shape or math.prod(self._lead) != len(self._pages):
            raise ModuleNotFoundError(
                "reading this compressed TIFF series needs the zarr package, which is not installed: "
                'pip install "fastquant-uint8[zarr]"',
                name="zarr",
            )
        self.chunks = (1,) * len(self._lead) + page_shape

    def __getitem__(self, key) -> np.ndarray:
        key = _expand_key(key, len(self.shape))
        lead_key, page_key = key[: len(self._lead)], key[len(self._lead) :]
        numbers = np.arange(math.prod(self._lead)).reshape(self._lead)[lead_key]
        out_page = _shape_of(self.shape[len(self._lead) :], page_key)
        out = np.empty(numbers.shape + out_page, self.dtype)
        for position, number in np.ndenumerate(numbers):
            out[position] = self._pages[int(number)].asarray()[page_key]
        return out


# --------------------------------------------------------------------------------------------------------------
# zarr and HDF5


def _open_zarr(path: str, dataset: str | None, *, zip_store: bool) -> Input:
    zarr = _require("zarr")
    try:
        if zip_store:
            store = zarr.storage.ZipStore(path, mode="r")
        else:
            store = zarr.storage.LocalStore(path, read_only=True)
    except Exception as exc:
        raise ValueError(f"input {path!r} cannot be opened as a zarr store ({type(exc).__name__}: {exc})") from exc
    try:
        try:
            node = zarr.open(store=store, mode="r")
        except Exception as exc:
            raise ValueError(f"input {path!r} is not a readable zarr store ({type(exc).__name__}: {exc})") from exc
        name = None
        if isinstance(node, zarr.Group):
            arrays = sorted(n for n, member in node.members(max_depth=None) if isinstance(member, zarr.Array))
            name = _choose(path, "array", arrays, dataset)
            node = node[name]
        elif dataset is not None:
            raise ValueError(f"dataset={dataset!r} was given, but {path!r} is a zarr array, not a group")
        _check_dtype(node.dtype, f"input {path!r}" + (f" (array {name!r})" if name else ""))
        shards = getattr(node, "shards", None)
        chunks = tuple(int(n) for n in (shards or node.chunks))
        closers = [store.close] if zip_store else []
        return Input(node, "zarr", path, chunks, dataset=name, _closers=closers)
    except BaseException:
        if zip_store:
            store.close()
        raise


def _open_hdf5(path: str, dataset: str | None) -> Input:
    h5py = _require("h5py")
    try:
        f = h5py.File(path, "r")
    except Exception as exc:
        raise ValueError(f"input {path!r} is not a readable HDF5 file ({type(exc).__name__}: {exc})") from exc
    try:
        node = f
        prefix = ""
        if dataset is not None:
            node = f.get(dataset)
            if node is None:
                raise ValueError(f"{path!r} has no dataset {dataset!r}; it has: {_hdf5_listing(h5py, f)}")
            prefix = dataset.strip("/") + "/"
        if isinstance(node, h5py.Group):
            names = [prefix + n for n in _hdf5_datasets(h5py, node)]
            name = _choose(path, "dataset", names, None)
            node = f[name]
        else:
            name = dataset.strip("/")
        if not isinstance(node, h5py.Dataset):
            raise ValueError(f"{path!r}: {name!r} is not a dataset; it has: {_hdf5_listing(h5py, f)}")
        _check_dtype(node.dtype, f"input {path!r} (dataset {name!r})")
        chunks = tuple(node.chunks) if node.chunks else None
        return Input(node, "hdf5", path, chunks, sequential=True, dataset=name, _files=[path], _closers=[f.close])
    except BaseException:
        f.close()
        raise


def _hdf5_datasets(h5py, group) -> list[str]:
    names: list[str] = []
    group.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return sorted(names)


def _hdf5_listing(h5py, f) -> str:
    names = _hdf5_datasets(h5py, f)
    return ", ".join(repr(n) for n in names) if names else "no datasets"


# --------------------------------------------------------------------------------------------------------------
# a directory or glob pattern of .npy / .tif files

_FILE_KINDS = {".npy": "npy", ".tif": "tiff", ".tiff": "tiff"}


def natural_key(text: str) -> tuple:
    """Sort key putting 'a2' before 'a10': runs of digits compare as numbers (ties broken by the text)."""
    parts = re.split(r"(\d+)", text)
    return tuple((parts[i], int(parts[i + 1]) if i + 1 < len(parts) else -1) for i in range(0, len(parts), 2)), text


def _directory_files(path: str) -> list[str]:
    try:
        names = os.listdir(path)
    except OSError as exc:
        raise ValueError(f"input directory {path!r} cannot be read: {exc.strerror or exc}") from exc
    candidates = [n for n in names if not n.startswith(".") and os.path.splitext(n)[1].lower() in _FILE_KINDS]
    files = [os.path.join(path, n) for n in candidates if os.path.isfile(os.path.join(path, n))]
    if not files:
        raise ValueError(
            f"input directory {path!r} is not a zarr store (no zarr.json, .zgroup or .zarray) and holds no .npy or "
            f".tif files; accepted: {ACCEPTED_INPUTS}"
        )
    return files


def _glob_files(pattern: str) -> list[str]:
    import glob

    files = [f for f in glob.glob(pattern) if os.path.isfile(f)]
    if not files:
        raise FileNotFoundError(f"input pattern {pattern!r} matches no files")
    for f in sorted(files, key=natural_key):
        if os.path.splitext(f)[1].lower() not in _FILE_KINDS:
            raise ValueError(f"input pattern {pattern!r} matches {f!r}; accepted: .npy or .tif/.tiff files only")
    return files


def _open_files(path: str, files: list[str], dataset: str | None) -> Input:
    if dataset is not None:
        raise ValueError(
            f"dataset={dataset!r} was given, but {path!r} is a list of files; dataset applies to .npz, zarr and HDF5"
        )
    files = sorted(files, key=natural_key)
    kinds = {_FILE_KINDS[os.path.splitext(f)[1].lower()] for f in files}
    if len(kinds) > 1:
        raise ValueError(
            f"input {path!r} mixes .npy and .tif files; accepted: files of one kind (select them with a glob pattern)"
        )
    members = [_FileMember.open(f) for f in files]
    first = members[0]
    for member in members[1:]:
        if member.dtype != first.dtype:
            raise ValueError(
                f"input {path!r}: {member.path!r} has dtype {member.dtype}, unlike {first.path!r} ({first.dtype}); "
                "accepted: files of one dtype"
            )
        same = member.shape == first.shape if len(first.shape) <= 2 else member.shape[1:] == first.shape[1:]
        if len(member.shape) != len(first.shape) or not same:
            expect = first.shape if len(first.shape) <= 2 else f"(n, {', '.join(map(str, first.shape[1:]))})"
            raise ValueError(
                f"input {path!r}: {member.path!r} has shape {member.shape}, unlike {first.path!r} "
                f"({first.shape}); accepted: files of shape {expect}"
            )
    array = _FileStack(members)
    return Input(array, "files", path, array.chunks, _files=files)


@dataclasses.dataclass
class _FileMember:
    path: str
    kind: str
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool = False
    offset: int | None = None  # where the data starts (contiguous, uncompressed), else None
    disk_dtype: np.dtype | None = None  # the dtype as stored (byte order), for memory maps

    @classmethod
    def open(cls, path: str) -> _FileMember:
        kind = _FILE_KINDS[os.path.splitext(path)[1].lower()]
        what = f"input file {path!r}"
        try:
            f = open(path, "rb")
        except OSError as exc:
            raise ValueError(f"{what} cannot be read: {exc.strerror or exc}") from exc
        with f:
            if kind == "npy":
                shape, fortran, dtype = _read_npy_header(f, what)
                offset = f.tell()
                _check_dtype(dtype, what, pickled=True)
                _check_data_size(what, shape, dtype, os.path.getsize(path) - offset)
                return cls(path, kind, shape, dtype.newbyteorder("="), fortran, offset, dtype)
        tifffile = _require("tifffile")
        try:
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                shape, dtype, offset = tuple(series.shape), np.dtype(series.dtype), series.dataoffset
                disk_dtype = dtype.newbyteorder(tif.byteorder)
        except Exception as exc:
            raise ValueError(f"{what} is not a readable TIFF file ({type(exc).__name__}: {exc})") from exc
        _check_dtype(dtype, what)
        return cls(path, kind, shape, dtype.newbyteorder("="), False, offset, disk_dtype)

    def read(self) -> np.ndarray:
        """The whole file as an array: a read-only memory map where possible."""
        if math.prod(self.shape) == 0:
            return np.empty(self.shape, self.dtype)
        if self.offset is not None:
            order = "F" if self.fortran else "C"
            dtype, shape = self.disk_dtype, self.shape
            return np.memmap(self.path, dtype=dtype, mode="r", offset=self.offset, shape=shape, order=order)
        import tifffile

        return tifffile.imread(self.path, series=0)


class _FileStack:
    """Files as one lazy array: 2-D files stacked on a new axis 0, N-D files concatenated along axis 0."""

    def __init__(self, members: list[_FileMember]) -> None:
        self._members = members
        first = members[0]
        self._stacked = len(first.shape) <= 2
        lengths = [1 if self._stacked else m.shape[0] for m in members]
        self._starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        trailing = first.shape if self._stacked else first.shape[1:]
        self.shape = (int(self._starts[-1]), *trailing)
        self.dtype = first.dtype
        self.chunks = (math.gcd(*lengths) or 1, *trailing)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def _file(self, number: int) -> np.ndarray:
        member = self._members[number]
        if member.offset is not None:
            return member.read()
        with self._lock:
            if number in self._cache:
                self._cache.move_to_end(number)
                return self._cache[number]
        data = member.read()
        if data.shape != member.shape or data.dtype != member.dtype:
            data = data.reshape(member.shape).astype(member.dtype, copy=False)
        with self._lock:
            self._cache[number] = data
            while len(self._cache) > 2:
                self._cache.popitem(last=False)
        return data

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        key = _expand_key(key, len(self.shape))
        first, rest = key[0], key[1:]
        rest_shape = _shape_of(self.shape[1:], rest)
        if isinstance(first, (int, np.integer)):
            index = _normalize_int(first, self.shape[0])
            number = int(np.searchsorted(self._starts, index, side="right")) - 1
            local = index - int(self._starts[number])
            data = self._file(number)
            return np.array(data[rest] if self._stacked else data[(local, *rest)], dtype=self.dtype)
        indexes = np.arange(self.shape[0])[first]
        out = np.empty((len(indexes), *rest_shape), self.dtype)
        if not len(indexes):
            return out
        numbers = np.searchsorted(self._starts, indexes, side="right") - 1
        position = 0
        for number in _runs(numbers):
            count = int(np.count_nonzero(numbers == number))
            local = indexes[position : position + count] - int(self._starts[number])
            data = self._file(int(number))
            if self._stacked:
                out[position] = data[rest]
            else:
                step = int(first.step or 1)
                if step > 0:
                    part = data[(slice(int(local[0]), int(local[-1]) + 1, step), *rest)]
                else:
                    part = data[(slice(int(local[-1]), int(local[0]) + 1, -step), *rest)][::-1]
                out[position : position + count] = part
            position += count
        return out


def _runs(numbers: np.ndarray):
    """The distinct values of a monotonic sequence, in order."""
    change = np.flatnonzero(np.diff(numbers)) + 1
    return numbers[np.concatenate([[0], change])]


def _normalize_int(index, n: int) -> int:
    index = int(index)
    if not -n <= index < n:
        raise IndexError(f"index {index} is out of bounds for axis 0 with size {n}")
    return index + n if index < 0 else index


def _expand_key(key, ndim: int) -> tuple:
    """`key` as a tuple of one int or slice per axis (Ellipsis and missing trailing axes become full slices)."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        at = next(i for i, k in enumerate(key) if k is Ellipsis)
        key = key[:at] + (slice(None),) * (ndim - len(key) + 1) + key[at + 1 :]
    for k in key:
        if not isinstance(k, (slice, int, np.integer)) or isinstance(k, bool):
            raise TypeError(f"index {k!r} is not supported; accepted: ints and slices")
    if len(key) > ndim:
        raise IndexError(f"too many indices: {len(key)} for an array of {ndim} dimensions")
    return key + (slice(None),) * (ndim - len(key))


def _shape_of(shape: tuple[int, ...], key: tuple) -> tuple[int, ...]:
    """The shape `key` (ints and slices) selects from an array of `shape`, without any data."""
    return np.broadcast_to(np.zeros((), np.uint8), shape)[key].shape
