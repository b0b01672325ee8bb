"""fastquant._inputs: every input format read back against an independent writer, and every error.

Each format is written with its own library (numpy, tifffile, zarr, h5py), opened with ``open_input`` and read
through index tuples of ints and slices (negative bounds, steps, empty ranges); the result must equal NumPy's
indexing of the data written. The input files are never modified (bytes and mtime), optional packages are
imported only when needed, and each error names the bad thing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from fastquant import _inputs
from fastquant._inputs import Input, as_array_like, open_input

tifffile = pytest.importorskip("tifffile")
zarr = pytest.importorskip("zarr")
h5py = pytest.importorskip("h5py")

SHAPE = (5, 6, 7)  # odd, non-square: catches transposed or padded reads
KEYS = [
    (),
    (slice(None),),
    (2,),
    (-1,),
    (slice(1, -1), slice(-4, None), 3),
    (slice(None, 3), -2, slice(1, 6)),
    (slice(-3, -1), slice(None), slice(-2, None)),
    (slice(0, 5, 2), slice(1, None, 3), slice(None)),
    (slice(3, 3),),  # empty
    (4, 5, 6),
    (slice(None), slice(2, 4), slice(6, 7)),
]


def _volume(dtype=np.float32, shape=SHAPE, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    x = rng.standard_normal(shape).astype(dtype)
    x.reshape(-1)[:3] = [np.nan, np.inf, -np.inf]
    return x


def _check_reads(opened: Input, expected: np.ndarray, keys=KEYS) -> None:
    assert opened.shape == expected.shape
    assert isinstance(opened.array.shape, tuple)
    assert opened.dtype.newbyteorder("=") == expected.dtype.newbyteorder("=")
    for key in keys:
        try:
            want = expected[key]
        except IndexError:  # a key for another shape
            continue
        got = np.asarray(opened.array[key])
        assert got.shape == want.shape, key
        np.testing.assert_array_equal(got, want, err_msg=str(key))


def _snapshot(path) -> dict:
    """Bytes and mtime of every file under `path` (a file or directory)."""
    path = os.fspath(path)
    files = [path] if os.path.isfile(path) else [os.path.join(r, n) for r, _, ns in os.walk(path) for n in ns]
    return {f: (_read_bytes(f), os.stat(f).st_mtime_ns) for f in sorted(files)}


def _read_bytes(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _read_everything(opened: Input) -> None:
    for key in KEYS:
        opened.array[key]
    json.dumps(opened.identity())


# --- .npy ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", ">f4", "uint16", "int8", "int64", "bool"])
def test_npy(tmp_path, dtype):
    x = _volume(dtype)
    path = tmp_path / "x.npy"
    np.save(path, x)
    before = _snapshot(path)
    with open_input(path) as opened:
        assert opened.kind == "npy" and opened.path == str(path) and opened.chunks is None
        assert not opened.sequential
        assert isinstance(opened.array, np.memmap) and not opened.array.flags.writeable
        assert opened.dtype == x.dtype  # byte order kept: read in place
        _check_reads(opened, x)
        ident = opened.identity()
    assert ident == {
        "path": str(path),
        "size": os.path.getsize(path),
        "mtime_ns": os.stat(path).st_mtime_ns,
        "shape": list(SHAPE),
        "dtype": str(x.dtype),
    }
    json.dumps(ident)
    assert _snapshot(path) == before


def test_npy_fortran_and_strided_source(tmp_path):
    x = np.asfortranarray(_volume())
    np.save(tmp_path / "f.npy", x)
    with open_input(tmp_path / "f.npy") as opened:
        _check_reads(opened, x)
    y = _volume(np.float64)[:, ::2, ::-1]
    np.save(tmp_path / "s.npy", y)
    with open_input(str(tmp_path / "s.npy")) as opened:
        _check_reads(opened, y, KEYS[:4])


def test_npy_without_extension_is_told_by_content(tmp_path):
    x = _volume()
    with open(tmp_path / "data.bin", "wb") as f:
        np.save(f, x)
    with open_input(tmp_path / "data.bin") as opened:
        assert opened.kind == "npy"
        _check_reads(opened, x)


# --- .npz ---------------------------------------------------------------------------------------------------


def test_npz_stored_member_is_memory_mapped(tmp_path):
    x, y = _volume(seed=1), np.asfortranarray(_volume(np.int16, seed=2))
    path = tmp_path / "two.npz"
    np.savez(path, first=x, second=y)
    before = _snapshot(path)
    with open_input(path, dataset="second") as opened:
        assert opened.kind == "npz" and opened.dataset == "second"
        assert isinstance(opened.array, np.memmap) and not opened.array.flags.writeable
        _check_reads(opened, y)
        assert opened.identity()["dataset"] == "second"
    with open_input(path, dataset="first") as opened:
        _check_reads(opened, x)
    assert _snapshot(path) == before


def test_npz_compressed_member_is_loaded(tmp_path):
    x = _volume(np.float64, seed=3)
    path = tmp_path / "c.npz"
    np.savez_compressed(path, only=x)
    with open_input(path) as opened:
        assert opened.dataset == "only" and not isinstance(opened.array, np.memmap)
        assert not opened.array.flags.writeable
        _check_reads(opened, x)


def test_npz_member_choice_errors(tmp_path):
    path = tmp_path / "many.npz"
    np.savez(path, a=np.zeros(3), b=np.ones(3))
    with pytest.raises(ValueError, match=r"2 members.*'a', 'b'"):
        open_input(path)
    with pytest.raises(ValueError, match=r"no member 'c'.*'a', 'b'"):
        open_input(path, dataset="c")


def test_npz_object_member_is_refused(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, o=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(ValueError, match=r"obj\.npz.*pickled"):
        open_input(path)


# --- TIFF ---------------------------------------------------------------------------------------------------


def _tiff_cases(tmp_path):
    x = _volume(np.float32, seed=4)
    rgb = _volume(np.uint8, (3, 6, 7, 3), seed=5)
    u16 = _volume(np.uint16, (2, 3, 6, 7), seed=6)
    cases = {
        "contiguous": (x, {"photometric": "minisblack"}),
        "zlib": (x, {"photometric": "minisblack", "compression": "zlib"}),
        "tiled": (x, {"photometric": "minisblack", "tile": (16, 16), "compression": "zlib"}),
        "big-endian": (x, {"photometric": "minisblack", "byteorder": ">"}),
        "rgb": (rgb, {"photometric": "rgb"}),
        "rgb-zlib": (rgb, {"photometric": "rgb", "compression": "zlib"}),
        "4d": (u16, {"photometric": "minisblack", "compression": "zlib"}),
        "ome": (x, {"ome": True, "metadata": {"axes": "ZYX"}, "compression": "zlib"}),
    }
    paths = {}
    for label, (data, options) in cases.items():
        path = tmp_path / (f"{label}.ome.tif" if label == "ome" else f"{label}.tif")
        tifffile.imwrite(path, data, **options)
        paths[label] = (path, data)
    return paths


def test_tiff(tmp_path):
    for label, (path, data) in _tiff_cases(tmp_path).items():
        before = _snapshot(path)
        with open_input(path) as opened:
            assert opened.kind == "tiff", label
            if label in ("contiguous", "big-endian", "rgb"):
                assert isinstance(opened.array, np.memmap) and opened.chunks is None, label
            else:
                assert opened.chunks is not None and len(opened.chunks) == data.ndim, label
            keys = KEYS if data.ndim == 3 else [(), (1,), (slice(1, None), -1, slice(2, 5)), (0, 1, 2, slice(-3, None))]
            _check_reads(opened, data, keys)
        assert _snapshot(path) == before, label


def test_tiff_without_zarr_reads_page_by_page(tmp_path, monkeypatch):
    paths = _tiff_cases(tmp_path)
    monkeypatch.setitem(sys.modules, "zarr", None)
    for label in ("zlib", "rgb-zlib", "4d"):
        path, data = paths[label]
        with open_input(path) as opened:
            assert type(opened.array).__name__ == "_TiffPages"
            keys = KEYS if data.ndim == 3 else [(), (1,), (slice(1, None), -1, slice(2, 5)), (0, 1, 2, slice(-3, None))]
            _check_reads(opened, data, keys)


def test_tiff_is_closed(tmp_path):
    path, data = _tiff_cases(tmp_path)["zlib"]
    opened = open_input(path)
    _check_reads(opened, data, KEYS[:3])
    opened.close()
    opened.close()  # idempotent


# --- zarr ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_directory(tmp_path, zarr_format):
    x = _volume(np.float32, seed=7)
    path = tmp_path / "x.zarr"
    z = zarr.create_array(store=str(path), shape=x.shape, chunks=(2, 4, 7), dtype=x.dtype, zarr_format=zarr_format)
    z[:] = x
    before = _snapshot(path)
    with open_input(path) as opened:
        assert opened.kind == "zarr" and opened.chunks == (2, 4, 7) and opened.dataset is None
        _check_reads(opened, x)
        ident = opened.identity()
    sizes = sum(os.path.getsize(f) for f in before)
    assert ident["size"] == sizes and ident["mtime_ns"] == max(m for _, m in before.values())
    assert _snapshot(path) == before


def test_zarr_group_and_zip(tmp_path):
    x, y = _volume(np.uint16, seed=8), _volume(np.float64, seed=9)
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("sub/pred", shape=x.shape, dtype=x.dtype, chunks=(1, 6, 7))[:] = x
    with open_input(tmp_path / "g.zarr") as opened:  # the only array of the group
        assert opened.dataset == "sub/pred"
        _check_reads(opened, x)
    group.create_array("other", shape=y.shape, dtype=y.dtype)[:] = y
    with pytest.raises(ValueError, match=r"2 arrays.*'other', 'sub/pred'"):
        open_input(tmp_path / "g.zarr")
    with pytest.raises(ValueError, match=r"no array 'nope'.*'other', 'sub/pred'"):
        open_input(tmp_path / "g.zarr", dataset="nope")
    with open_input(tmp_path / "g.zarr", dataset="other") as opened:
        _check_reads(opened, y)

    store = zarr.storage.ZipStore(tmp_path / "z.zip", mode="w")
    zarr.create_array(store=store, shape=x.shape, dtype=x.dtype, chunks=(2, 3, 7))[:] = x
    store.close()
    before = _snapshot(tmp_path / "z.zip")
    with open_input(tmp_path / "z.zip") as opened:
        assert opened.kind == "zarr" and opened.chunks == (2, 3, 7)
        _check_reads(opened, x)
    assert _snapshot(tmp_path / "z.zip") == before


# --- HDF5 ---------------------------------------------------------------------------------------------------


def test_hdf5(tmp_path):
    x, y = _volume(np.float32, seed=10), _volume(np.int32, seed=11)
    path = tmp_path / "p.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("group/pred", data=x, chunks=(1, 6, 7), compression="gzip")
    before = _snapshot(path)
    with open_input(path) as opened:
        assert opened.kind == "hdf5" and opened.sequential and opened.dataset == "group/pred"
        assert opened.chunks == (1, 6, 7)
        _check_reads(opened, x)
        dataset = opened.array
    assert not dataset.id.valid  # the file was closed
    assert _snapshot(path) == before

    with h5py.File(path, "a") as f:
        f["raw"] = y
    with pytest.raises(ValueError, match=r"2 datasets.*'group/pred', 'raw'"):
        open_input(path)
    with pytest.raises(ValueError, match=r"no dataset 'missing'.*'group/pred', 'raw'"):
        open_input(path, dataset="missing")
    with open_input(path, dataset="/raw") as opened:
        assert opened.chunks is None
        _check_reads(opened, y)
    with open_input(path, dataset="group") as opened:  # a group with one dataset
        assert opened.dataset == "group/pred"


# --- a directory or glob of files -----------------------------------------------------------------------------


def test_directory_of_slices_in_natural_order(tmp_path):
    x = _volume(np.float32, (12, 6, 7), seed=12)
    order = np.random.default_rng(0).permutation(12)  # files created in a random order
    for i in order:
        np.save(tmp_path / f"slice{i + 1}.npy", x[i])
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / ".hidden.npy").write_bytes(b"ignored")
    before = _snapshot(tmp_path)
    keys = [*KEYS, (slice(None, None, -1),), (slice(10, 1, -3), 2), (slice(-1, None, -2), slice(1, 3), -1)]
    with open_input(tmp_path) as opened:
        assert opened.kind == "files" and opened.chunks == (1, 6, 7)
        _check_reads(opened, x, keys)
        ident = opened.identity()
    assert ident["count"] == 12 and ident["path"] == str(tmp_path)
    files = [tmp_path / f"slice{i}.npy" for i in range(1, 13)]
    assert ident["size"] == sum(os.path.getsize(f) for f in files)
    assert ident["mtime_ns"] == max(os.stat(f).st_mtime_ns for f in files)
    assert _snapshot(tmp_path) == before


def test_natural_key():
    names = ["a10.npy", "a2.npy", "a1.npy", "b1.npy", "a02x.npy", "a2x.npy"]
    assert sorted(names, key=_inputs.natural_key) == ["a1.npy", "a2.npy", "a02x.npy", "a2x.npy", "a10.npy", "b1.npy"]


def test_glob_of_subvolumes_concatenated(tmp_path):
    x = _volume(np.int16, (9, 5, 4), seed=13)
    bounds = [0, 2, 3, 7, 9]
    for n, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
        np.save(tmp_path / f"part_{n}.npy", x[a:b])
    np.save(tmp_path / "other.npy", np.zeros((1, 5, 4), np.int16))
    keys = [*KEYS, (slice(None, None, -1),), (slice(8, 0, -3), 2), (slice(1, 8, 2),), (slice(1, 8, 4), -1, -1)]
    with open_input(str(tmp_path / "part_*.npy")) as opened:
        assert opened.kind == "files" and opened.chunks == (1, 5, 4)  # gcd of 2, 1, 4, 2
        _check_reads(opened, x, keys)
        assert opened.identity()["count"] == 4
        assert opened.identity()["path"] == str(tmp_path / "part_*.npy")


def test_directory_of_tiff_files(tmp_path):
    x = _volume(np.uint16, (4, 6, 7), seed=14)
    for i in range(4):
        options = {"compression": "zlib"} if i % 2 else {}
        tifffile.imwrite(tmp_path / f"z{i:02d}.tif", x[i], photometric="minisblack", **options)
    with open_input(tmp_path) as opened:
        _check_reads(opened, x)


def test_files_must_agree(tmp_path):
    np.save(tmp_path / "a1.npy", np.zeros((3, 4), np.float32))
    np.save(tmp_path / "a2.npy", np.zeros((3, 4), np.float32))
    np.save(tmp_path / "a3.npy", np.zeros((3, 5), np.float32))
    np.save(tmp_path / "a4.npy", np.zeros((3, 6), np.float32))
    with pytest.raises(ValueError, match=r"a3\.npy.*shape \(3, 5\).*a1\.npy"):
        open_input(tmp_path)
    np.save(tmp_path / "a3.npy", np.zeros((3, 4), np.float64))
    with pytest.raises(ValueError, match=r"a3\.npy.*dtype float64"):
        open_input(tmp_path)
    os.remove(tmp_path / "a3.npy")
    os.remove(tmp_path / "a4.npy")
    tifffile.imwrite(tmp_path / "a5.tif", np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match=r"mixes \.npy and \.tif"):
        open_input(tmp_path)
    with open_input(str(tmp_path / "a*.npy")) as opened:  # a pattern picks one kind
        assert opened.shape == (2, 3, 4)


def test_files_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing_\*\.npy"):
        open_input(str(tmp_path / "nothing_*.npy"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty.*no \.npy or \.tif"):
        open_input(tmp_path / "empty")
    (tmp_path / "x1.txt").write_text("")
    with pytest.raises(ValueError, match=r"x1\.txt.*\.npy or \.tif"):
        open_input(str(tmp_path / "x*"))


# --- errors -------------------------------------------------------------------------------------------------


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.npy"):
        open_input(tmp_path / "nope.npy")


def test_unknown_format(tmp_path):
    (tmp_path / "data.csv").write_text("1,2,3\n")
    with pytest.raises(ValueError, match=r"data\.csv.*'\.csv'.*not a known format; accepted: \.npy"):
        open_input(tmp_path / "data.csv")
    (tmp_path / "fake.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(ValueError, match=r"fake\.tif.*not a valid \.tif"):
        open_input(tmp_path / "fake.tif")
    (tmp_path / "fake.npy").write_bytes(b"")
    with pytest.raises(ValueError, match=r"fake\.npy.*empty"):
        open_input(tmp_path / "fake.npy")
    with zipfile.ZipFile(tmp_path / "other.zip.bin", "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match=r"other\.zip\.bin.*neither an \.npz"):
        open_input(tmp_path / "other.zip.bin")


def test_truncated_npy(tmp_path):
    np.save(tmp_path / "whole.npy", _volume())
    data = (tmp_path / "whole.npy").read_bytes()
    (tmp_path / "short.npy").write_bytes(data[:-5])
    with pytest.raises(ValueError, match=r"short\.npy.*truncated"):
        open_input(tmp_path / "short.npy")
    (tmp_path / "cut.npy").write_bytes(data[:40])  # inside the header
    with pytest.raises(ValueError, match=r"cut\.npy.*(truncated|header)"):
        open_input(tmp_path / "cut.npy")


def test_pickled_npy(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([1, "a", None], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"obj\.npy.*pickled"):
        open_input(tmp_path / "obj.npy")


@pytest.mark.parametrize(
    "x",
    [
        np.zeros(3, np.complex64),
        np.array(["a", "b"]),
        np.array([b"a"]),
        np.zeros(2, [("a", "f4"), ("b", "i2")]),
        np.zeros(2, np.longdouble) if np.dtype(np.longdouble).itemsize > 8 else np.zeros(2, np.complex128),
    ],
    ids=["complex", "str", "bytes", "structured", "longdouble"],
)
def test_unsupported_dtype(tmp_path, x):
    np.save(tmp_path / "bad.npy", x)
    with pytest.raises(TypeError, match=rf"bad\.npy.*{re.escape(str(x.dtype))}.*bool, integer or float"):
        open_input(tmp_path / "bad.npy")


def test_unsupported_dtype_other_formats(tmp_path):
    c = np.zeros((2, 3), np.complex64)
    zarr.create_array(store=str(tmp_path / "c.zarr"), shape=c.shape, dtype=c.dtype)[:] = c
    with pytest.raises(TypeError, match=r"c\.zarr.*complex64.*bool, integer or float"):
        open_input(tmp_path / "c.zarr")
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f["text"] = np.array([b"ab", b"cd"])
    with pytest.raises(TypeError, match=r"s\.h5.*'text'.*\|S2.*bool, integer or float"):
        open_input(tmp_path / "s.h5")
    tifffile.imwrite(tmp_path / "c.tif", c)
    with pytest.raises(TypeError, match=r"c\.tif.*complex64.*bool, integer or float"):
        open_input(tmp_path / "c.tif")


def test_unreadable(tmp_path, monkeypatch):
    np.save(tmp_path / "x.npy", np.zeros(3))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_inputs, "open", refuse, raising=False)
    with pytest.raises(ValueError, match=r"x\.npy.*cannot be read: Permission denied"):
        open_input(tmp_path / "x.npy")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads files without permission")
def test_unreadable_for_real(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros(3))
    path.chmod(0)
    try:
        with pytest.raises(ValueError, match=r"x\.npy.*cannot be read"):
            open_input(path)
    finally:
        path.chmod(0o644)


def test_dataset_where_it_does_not_apply(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(3))
    with pytest.raises(ValueError, match=r"dataset='a'.*x\.npy"):
        open_input(tmp_path / "x.npy", dataset="a")
    with pytest.raises(ValueError, match=r"dataset='a'.*paths only"):
        open_input(np.zeros(3), dataset="a")


@pytest.mark.parametrize(
    ("module", "extra", "suffix"), [("tifffile", "tiff", ".tif"), ("zarr", "zarr", ".zarr"), ("h5py", "hdf5", ".h5")]
)
def test_missing_extra(tmp_path, monkeypatch, module, extra, suffix):
    path = tmp_path / f"x{suffix}"
    x = np.zeros((2, 3), np.float32)
    if module == "tifffile":
        tifffile.imwrite(path, x)
    elif module == "zarr":
        zarr.create_array(store=str(path), shape=x.shape, dtype=x.dtype)[:] = x
    else:
        with h5py.File(path, "w") as f:
            f["x"] = x
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=rf'pip install "fastquant-uint8\[{extra}\]"'):
        open_input(path)


def test_optional_packages_are_imported_lazily(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 3)))
    code = (
        "import sys, fastquant, fastquant._inputs as i, fastquant._outputs\n"
        f"with i.open_input({str(tmp_path / 'x.npy')!r}) as o: o.array[0]\n"
        "print(sorted(m for m in ('tifffile', 'zarr', 'h5py', 'numcodecs') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- as_array_like --------------------------------------------------------------------------------------------


class _FakeDevice:
    def __init__(self, kind: str):
        self.type = kind

    def __str__(self) -> str:
        return f"{self.type}:0"


class _FakeTensor:
    """What as_array_like sees of a torch tensor: shape, a torch dtype, device, __array__, __getitem__."""

    dtype = "torch.float32"

    def __init__(self, data: np.ndarray, device: str = "cpu"):
        self._data, self.device, self.shape = data, _FakeDevice(device), data.shape
        self.is_cuda = device == "cuda"

    def __getitem__(self, key):
        return _FakeTensor(self._data[key])

    def __array__(self, dtype=None, copy=None):
        if self.device.type != "cpu":
            raise TypeError("can't convert cuda tensor to numpy")
        return self._data


class _ArrayLike:
    def __init__(self, data):
        self._data, self.shape, self.dtype = data, data.shape, data.dtype

    def __getitem__(self, key):
        return self._data[key]


def test_as_array_like():
    x = _volume()
    assert as_array_like(x) is x
    like = _ArrayLike(x)
    assert as_array_like(like) is like
    got = as_array_like(_FakeTensor(x))
    assert isinstance(got, np.ndarray) and np.shares_memory(got, x)
    np.testing.assert_array_equal(as_array_like([[1.0, 2.0], [3.0, 4.0]]), [[1.0, 2.0], [3.0, 4.0]])
    with open_input(x) as opened:
        assert opened.kind == "array" and opened.path is None and opened.array is x
        assert opened.identity() == {
            "path": None,
            "size": x.nbytes,
            "mtime_ns": None,
            "shape": list(SHAPE),
            "dtype": "float32",
        }


def test_as_array_like_errors():
    with pytest.raises(TypeError, match=r"_FakeTensor is on device 'cuda:0'.*\.cpu\(\)"):
        as_array_like(_FakeTensor(np.zeros(3), device="cuda"))
    with pytest.raises(TypeError, match=r"builtins\.object.*accepted: a path, a numpy array"):
        as_array_like(object())
    with pytest.raises(TypeError, match=r"complex128.*bool, integer or float"):
        as_array_like(np.zeros(2, complex))
    with pytest.raises(TypeError, match=r"_ArrayLike has dtype <U1.*bool, integer or float"):
        as_array_like(_ArrayLike(np.array(["a"])))
    with pytest.raises(TypeError, match=r"dict"):
        as_array_like({"a": 1})


def test_reads_from_several_threads(tmp_path, monkeypatch):
    """Inputs that are not sequential are read concurrently by the driver: blocks must not mix."""
    import concurrent.futures

    x = _volume(np.float32, (8, 40, 30), seed=15)
    np.save(tmp_path / "x.npy", x)
    tifffile.imwrite(tmp_path / "x.tif", x, photometric="minisblack", compression="zlib", rowsperstrip=8)
    zarr.create_array(store=str(tmp_path / "x.zarr"), shape=x.shape, dtype=x.dtype, chunks=(1, 10, 30))[:] = x
    (tmp_path / "files").mkdir()
    for i in range(8):
        tifffile.imwrite(tmp_path / "files" / f"s{i}.tif", x[i], compression="zlib")
    rng = np.random.default_rng(16)
    keys = []
    for _ in range(40):
        z, r = int(rng.integers(0, 8)), int(rng.integers(0, 35))
        keys.append((slice(z, z + int(rng.integers(1, 4))), slice(r, r + 5), slice(None)))
    sources = ["x.npy", "x.tif", "x.zarr", "files"]
    for fallback in (False, True):
        if fallback:
            monkeypatch.setitem(sys.modules, "zarr", None)  # the TIFF page reader
            sources = ["x.tif"]
        for source in sources:
            with open_input(tmp_path / source) as opened:
                assert not opened.sequential
                with concurrent.futures.ThreadPoolExecutor(4) as pool:
                    blocks = list(pool.map(lambda k, a=opened.array: np.asarray(a[k]), keys))
            for key, block in zip(keys, blocks, strict=True):
                np.testing.assert_array_equal(block, x[key], err_msg=f"{source} {key}")
