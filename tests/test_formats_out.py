"""fastquant._outputs: every output format read back by an independent reader, safe writing, and every error.

PNG slices are read with Pillow and OpenCV, TIFF with tifffile, zarr with zarr, npy with numpy; images are written
whole and in row bands of uneven sizes (the same bytes either way), the recorded metadata reads back, the same
inputs give the same bytes, and after an abort or an injected OSError there is no temporary and no final name.
"""

from __future__ import annotations

import concurrent.futures
import errno
import json
import os
import shutil
import sys
import threading
import zlib

import numpy as np
import pytest

from fastquant import _outputs
from fastquant._outputs import make_sink, read_metadata, remove_leftovers

tifffile = pytest.importorskip("tifffile")
zarr = pytest.importorskip("zarr")
h5py = pytest.importorskip("h5py")
cv2 = pytest.importorskip("cv2")
Image = pytest.importorskip("PIL.Image")
_png = pytest.importorskip("fastquant._png", reason="fastquant/_png.py (the PNG writer) is not there yet")

N = 3
SHAPES = [(17, 11), (17, 11, 3), (17, 11, 4)]  # odd, non-square
SHAPE_IDS = ["gray", "rgb", "rgba"]
BANDS = [(0, 1), (1, 5), (5, 6), (6, 16), (16, 17)]  # uneven: a band of 1 row, one across strips, the last row


def _images(image_shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (N, *image_shape), dtype=np.uint8)


def _metadata(index: int = 0, **extra) -> dict:
    return {
        "fastquant": "test",
        "input": {"path": "/data/x.npy", "shape": [N, 17, 11], "dtype": "float32"},
        "limits": {"axis": [0, 1], "lo": [-1.5], "hi": [2.25]},
        "index": index,
        "options": {"percentiles": [5.0, 95.0], "nan": 0},
        **extra,
    }


def _sink(output, image_shape=(17, 11), **options):
    arguments = {
        "format": None,
        "count": N,
        "image_shape": image_shape,
        "name": "{stem}_{index:04d}.png",
        "stem": "pred",
        "compress_level": 1,
        "compression": None,
        "overwrite": False,
    }
    arguments.update(options)
    return make_sink(output, **arguments)


def _fill(sink, images, bands: bool, metadata=_metadata) -> None:
    for i, image in enumerate(images):
        if not bands:
            sink.write(i, image, metadata(i))
            continue
        writer = sink.open_rows(i, metadata(i))
        for a, b in BANDS:
            writer.write_rows(np.ascontiguousarray(image[a:b]))
        writer.close()
    sink.commit()


def _temporaries(directory) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.startswith(".fastquant-"))


def _tree_bytes(path) -> dict:
    path = os.fspath(path)
    if os.path.isfile(path):
        with open(path, "rb") as f:
            return {"": f.read()}
    found = {}
    for root, _dirs, names in os.walk(path):
        for name in names:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                found[os.path.relpath(full, path)] = f.read()
    return found


@pytest.fixture
def small_strips(monkeypatch):
    """Several TIFF strips per page (and zarr chunks per image) even for these small images."""
    monkeypatch.setattr(_outputs, "_TIFF_STRIP_BYTES", 40)
    monkeypatch.setattr(_outputs, "_ZARR_CHUNK_BYTES", 60)


# --- PNG slices -----------------------------------------------------------------------------------------------


def _read_png_pillow(path) -> np.ndarray:
    with Image.open(path) as im:
        im.load()
        return np.asarray(im)


def _read_png_opencv(path) -> np.ndarray:
    data = cv2.imread(os.fspath(path), cv2.IMREAD_UNCHANGED)
    if data.ndim == 3:
        data = cv2.cvtColor(data, cv2.COLOR_BGR2RGB if data.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    return data


@pytest.mark.parametrize("bands", [False, True], ids=["whole", "bands"])
@pytest.mark.parametrize("image_shape", SHAPES, ids=SHAPE_IDS)
def test_png_slices(tmp_path, image_shape, bands):
    images = _images(image_shape)
    out = tmp_path / "slices"
    sink = _sink(out, image_shape)
    assert sink.format == "png" and not sink.sequential
    assert sink.names == [str(out / f"pred_{i:04d}.png") for i in range(N)]
    assert [sink.status(i, _metadata(i)) for i in range(N)] == ["missing"] * N
    _fill(sink, images, bands)
    assert sorted(os.listdir(out)) == [f"pred_{i:04d}.png" for i in range(N)]
    for i, name in enumerate(sink.names):
        np.testing.assert_array_equal(_read_png_pillow(name), images[i])
        np.testing.assert_array_equal(_read_png_opencv(name), images[i])
        assert json.loads(_png.read_text(name)["fastquant"]) == _metadata(i)
        assert sink.status(i, _metadata(i)) == "same"
        assert sink.status(i, _metadata(i, extra=1)) == "different"
    info = read_metadata(out)
    assert info == {
        "format": "png",
        "shape": list(image_shape),
        "dtype": "uint8",
        "chunks": None,
        "count": N,
        "fastquant": _metadata(0),
    }
    assert read_metadata(sink.names[2])["fastquant"] == _metadata(2)


def test_png_whole_and_bands_give_the_same_bytes(tmp_path):
    images = _images((17, 11, 3), seed=1)
    _fill(_sink(tmp_path / "a", (17, 11, 3)), images, bands=False)
    _fill(_sink(tmp_path / "b", (17, 11, 3)), images, bands=True)
    assert _tree_bytes(tmp_path / "a") == _tree_bytes(tmp_path / "b")


def test_png_commit_with_overwrite_renames_in_threads(tmp_path, monkeypatch):
    """With overwrite, the renames over existing outputs run in threads: each replaces its own file, and one that
    fails leaves the others in place, its own old output untouched and its new image a temporary until abort."""
    count = 12
    old = np.random.default_rng(4).integers(0, 256, (count, 9, 8), dtype=np.uint8)
    new = 255 - old
    _fill(_sink(tmp_path, (9, 8), count=count), old, bands=False)
    sink = _sink(tmp_path, (9, 8), count=count, overwrite=True)
    for i in range(count):
        sink.write(i, new[i], _metadata(i))
    move, threads = _outputs._move_into_place, set()

    def failing_for_image_7(temp, final, overwrite):
        threads.add(threading.get_ident())
        if final.endswith("pred_0007.png"):
            raise PermissionError(13, "Permission denied", final)
        move(temp, final, overwrite)

    monkeypatch.setattr(_outputs, "_move_into_place", failing_for_image_7)
    with pytest.raises(PermissionError, match="Permission denied"):
        sink.commit()
    assert threading.get_ident() not in threads  # the renames ran in the commit's threads
    for i in range(count):
        expected = old[i] if i == 7 else new[i]
        np.testing.assert_array_equal(_read_png_pillow(tmp_path / f"pred_{i:04d}.png"), expected)
    assert len(_temporaries(tmp_path)) == 1  # image 7's new file, until the driver aborts
    sink.abort()
    assert _temporaries(tmp_path) == []


def test_png_from_several_threads_in_any_order(tmp_path):
    count = 24
    images = np.random.default_rng(2).integers(0, 256, (count, 9, 8), dtype=np.uint8)
    sink = _sink(tmp_path, (9, 8), count=count, name="img-{index}.png")
    order = np.random.default_rng(3).permutation(count)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: sink.write(int(i), images[i], {"index": int(i)}), order))
    sink.commit([5, 0])
    assert os.path.exists(tmp_path / "img-5.png") and not os.path.exists(tmp_path / "img-6.png")
    sink.commit()
    for i in range(count):
        np.testing.assert_array_equal(_read_png_pillow(tmp_path / f"img-{i}.png"), images[i])
    assert _temporaries(tmp_path) == []
    assert read_metadata(tmp_path)["count"] == count  # natural order: img-0 first
    assert read_metadata(tmp_path)["fastquant"] == {"index": 0}


@pytest.mark.parametrize(
    "template",
    ["../x_{index}.png", "/abs_{index}.png", "{index}/x.png", "sub/{index}.png", "..", ".", ".fastquant-{index}.tmp"],
)
def test_png_name_template_cannot_leave_the_directory(tmp_path, template):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"cannot write outside the output directory") as info:
        _sink(out, name=template)
    assert repr(template) in str(info.value)
    assert not out.exists() and sorted(os.listdir(tmp_path)) == []


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ("{name}_{index}.png", r"field \{name\}"),
        ("{0}.png", r"field \{0\}"),
        ("{index.real}.png", r"field \{index\.real\}"),
        ("{index:q}.png", r"cannot be formatted"),
        ("{index:{stem}}.png", r"nested field"),
        ("{index", r"malformed"),
        ("same.png", r"gives 'same\.png' for images 0 and 1"),
        ("{stem}.png", r"gives 'pred\.png' for images 0 and 1"),
    ],
)
def test_png_name_template_errors(tmp_path, template, match):
    with pytest.raises(ValueError, match=match) as info:
        _sink(tmp_path / "out", name=template)
    assert repr(template) in str(info.value)


def test_png_existing_names_are_left_to_the_caller(tmp_path):
    sink = _sink(tmp_path, (17, 11))
    images = _images((17, 11))
    with open(sink.names[1], "wb") as f:
        f.write(b"not a png")
    assert sink.status(1, _metadata(1)) == "different"
    again = _sink(tmp_path, (17, 11))  # make_sink deletes nothing
    assert os.path.getsize(again.names[1]) == 9
    for i in range(N):
        sink.write(i, images[i], _metadata(i))
    with pytest.raises(FileExistsError, match=r"pred_0001\.png"):
        sink.commit()
    assert os.path.getsize(sink.names[1]) == 9  # not replaced without overwrite
    sink.abort()
    assert _temporaries(tmp_path) == []
    replacing = _sink(tmp_path, (17, 11), overwrite=True)
    _fill(replacing, images, bands=False)
    np.testing.assert_array_equal(_read_png_pillow(sink.names[1]), images[1])


# --- TIFF -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", [None, "zlib", "lzma"])
@pytest.mark.parametrize("image_shape", SHAPES, ids=SHAPE_IDS)
def test_tiff(tmp_path, small_strips, image_shape, compression):
    images = _images(image_shape, seed=4)
    paths = {}
    for bands in (False, True):
        path = tmp_path / f"{'bands' if bands else 'whole'}.tif"
        sink = _sink(path, image_shape, compression=compression)
        assert sink.format == "tiff" and sink.sequential and sink.names == [str(path)]
        assert sink.status(0, _metadata()) == "missing"
        _fill(sink, images, bands)
        assert sink.status(0, _metadata()) == "same"
        assert sink.status(0, _metadata(extra=True)) == "different"
        paths[bands] = path
    assert _tree_bytes(paths[False]) == _tree_bytes(paths[True])
    np.testing.assert_array_equal(tifffile.imread(paths[True]), images)
    with tifffile.TiffFile(paths[True]) as tif:
        assert len(tif.pages) == N and not tif.is_bigtiff
        page = tif.pages[0]
        assert len(page.dataoffsets) > 1  # several strips per page
        assert page.photometric == (
            tifffile.PHOTOMETRIC.MINISBLACK if len(image_shape) == 2 else tifffile.PHOTOMETRIC.RGB
        )
        assert page.compression == (1 if compression is None else {"zlib": 8, "lzma": 34925}[compression])
        assert "DateTime" not in page.tags
        assert json.loads(page.description) == {"fastquant": _metadata(), "shape": [N, *image_shape]}
        for i in range(N):
            np.testing.assert_array_equal(tif.pages[i].asarray(), images[i])
    assert read_metadata(paths[True]) == {
        "format": "tiff",
        "shape": [N, *image_shape],
        "dtype": "uint8",
        "chunks": read_metadata(paths[True])["chunks"],
        "fastquant": _metadata(),
    }


@pytest.mark.parametrize("compression", ["lzw", "zstd"])
def test_tiff_codecs_needing_imagecodecs(tmp_path, compression):
    try:
        import imagecodecs  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=rf"'{compression}' needs the imagecodecs package"):
            _sink(tmp_path / "x.tif", compression=compression)
        return
    images = _images((17, 11), seed=5)
    _fill(_sink(tmp_path / "x.tif", compression=compression), images, bands=True)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "x.tif"), images)


def test_tiff_bigtiff_above_the_threshold(tmp_path, monkeypatch):
    monkeypatch.setattr(_outputs, "_BIGTIFF_BYTES", 17 * 11 * N - 1)
    images = _images((17, 11), seed=6)
    _fill(_sink(tmp_path / "big.tif"), images, bands=False)
    with tifffile.TiffFile(tmp_path / "big.tif") as tif:
        assert tif.is_bigtiff
        np.testing.assert_array_equal(tif.asarray(), images)
    monkeypatch.setattr(_outputs, "_BIGTIFF_BYTES", 17 * 11 * N)
    _fill(_sink(tmp_path / "classic.tif"), images, bands=False)
    with tifffile.TiffFile(tmp_path / "classic.tif") as tif:
        assert not tif.is_bigtiff


def test_tiff_in_index_order_only(tmp_path):
    sink = _sink(tmp_path / "x.tif")
    images = _images((17, 11))
    with pytest.raises(ValueError, match=r"index order: expected image 0, got 1"):
        sink.write(1, images[1], _metadata(1))
    sink.write(0, images[0], _metadata(0))
    with pytest.raises(ValueError, match=r"commit: 1 of the 3 images were written"):
        sink.commit()
    assert _temporaries(tmp_path) == [] and not (tmp_path / "x.tif").exists()


# --- zarr -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", [None, "zstd", "gzip", "blosc"])
@pytest.mark.parametrize("image_shape", SHAPES, ids=SHAPE_IDS)
def test_zarr(tmp_path, image_shape, compression):
    images = _images(image_shape, seed=7)
    trees = {}
    for bands in (False, True):
        path = tmp_path / f"{'bands' if bands else 'whole'}.zarr"
        sink = _sink(path, image_shape, compression=compression, compress_level=3)
        assert sink.format == "zarr" and sink.sequential
        _fill(sink, images, bands)
        assert sink.status(0, _metadata()) == "same" and sink.status(0, {}) == "different"
        z = zarr.open_array(str(path), mode="r")
        assert z.metadata.zarr_format == 3 and z.dtype == np.uint8
        assert z.shape == (N, *image_shape) and z.chunks == (1, *image_shape)
        np.testing.assert_array_equal(z[:], images)
        attrs = dict(z.attrs)
        assert attrs["fastquant"] == _metadata()
        channels = image_shape[2] if len(image_shape) == 3 else 1
        window = {"start": 0, "end": 255, "min": 0, "max": 255}  # stored-value units: the levels
        assert [c["window"] for c in attrs["omero"]["channels"]] == [window] * channels
        trees[bands] = _tree_bytes(path)
    assert trees[False] == trees[True]
    info = read_metadata(tmp_path / "bands.zarr")
    assert info == {
        "format": "zarr",
        "shape": [N, *image_shape],
        "dtype": "uint8",
        "chunks": [1, *image_shape],
        "fastquant": _metadata(),
    }
    assert _temporaries(tmp_path) == []


@pytest.mark.parametrize("compression", ["zstd", "gzip", "blosc"])
def test_zarr_chunks_carry_no_timestamp(tmp_path, monkeypatch, compression):
    """The same images give the same store bytes at any time: gzip's header has a write-time field (RFC 1952),
    which must hold 0, not the clock. The clock is moved a day between the two writes."""
    import gzip
    import time

    images = _images((17, 11), seed=9)
    trees = []
    for day in (0, 1):
        clock = time.time() + 86400 * day
        monkeypatch.setattr(gzip.time, "time", lambda clock=clock: clock)
        path = tmp_path / f"day{day}.zarr"
        _fill(_sink(path, (17, 11), compression=compression, compress_level=3), images, bands=False)
        np.testing.assert_array_equal(zarr.open_array(str(path), mode="r")[:], images)
        trees.append(_tree_bytes(path))
    assert trees[0] == trees[1]


def test_zarr_large_images_in_bands(tmp_path, small_strips):
    images = _images((17, 11, 3), seed=8)
    limits = {"axis": [0, 1, 2], "lo": [0.0, 0.5, -1.0], "hi": [1.0, 1.5, 3.0]}
    sink = _sink(tmp_path / "x.zarr", (17, 11, 3))
    _fill(sink, images, bands=True, metadata=lambda i: _metadata(i, limits=limits))
    z = zarr.open_array(str(tmp_path / "x.zarr"), mode="r")
    assert z.chunks == (1, 1, 11, 3)  # 60 bytes per chunk: whole rows
    np.testing.assert_array_equal(z[:], images)
    assert len(z.attrs["omero"]["channels"]) == 3
    assert z.attrs["fastquant"]["limits"] == limits  # the float limits the 0..255 windows stand for


def test_zarr_replaces_an_existing_store_with_overwrite(tmp_path):
    images = _images((17, 11), seed=9)
    old = zarr.create_array(store=str(tmp_path / "x.zarr"), shape=(2, 2), dtype="f4", chunks=(1, 1))
    old[:] = 1
    sink = _sink(tmp_path / "x.zarr")
    assert sink.status(0, _metadata()) == "different"
    for i in range(N):
        sink.write(i, images[i], _metadata(i))
    with pytest.raises(FileExistsError, match=r"x\.zarr"):
        sink.commit()
    assert zarr.open_array(str(tmp_path / "x.zarr"), mode="r").shape == (2, 2)
    _fill(_sink(tmp_path / "x.zarr", overwrite=True), images, bands=False)
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "x.zarr"), mode="r")[:], images)
    assert not (tmp_path / "x.zarr" / "c" / "1" / "1").exists()  # no chunk of the old store is left
    assert _temporaries(tmp_path) == []


# --- npy ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("image_shape", SHAPES, ids=SHAPE_IDS)
def test_npy(tmp_path, image_shape):
    images = _images(image_shape, seed=10)
    for bands in (False, True):
        path = tmp_path / f"{'bands' if bands else 'whole'}.npy"
        sink = _sink(path, image_shape)
        assert sink.format == "npy" and sink.sequential and sink.names == [str(path)]
        _fill(sink, images, bands)
        loaded = np.load(path, allow_pickle=False)
        np.testing.assert_array_equal(loaded, images)
        with open(tmp_path / "reference.npy", "wb") as f:
            np.save(f, images)
        assert _tree_bytes(path) == _tree_bytes(tmp_path / "reference.npy")  # numpy's own bytes
        with open(f"{path}.json", encoding="utf-8") as f:
            assert json.load(f) == {"fastquant": _metadata(), "crc32": zlib.crc32(images.tobytes())}
        assert sink.status(0, _metadata()) == "same"
        assert sink.status(0, _metadata(extra=1)) == "different"
    data = bytearray((tmp_path / "bands.npy").read_bytes())
    data[-1] ^= 1  # a complete .npy that its sidecar does not describe
    (tmp_path / "changed.npy").write_bytes(bytes(data))
    shutil.copy(tmp_path / "bands.npy.json", tmp_path / "changed.npy.json")
    assert _sink(tmp_path / "changed.npy", image_shape).status(0, _metadata()) == "different"
    os.remove(tmp_path / "changed.npy")
    os.remove(tmp_path / "changed.npy.json")
    os.remove(f"{tmp_path / 'whole.npy'}.json")
    assert _sink(tmp_path / "whole.npy", image_shape).status(0, _metadata()) == "different"
    info = read_metadata(tmp_path / "bands.npy")
    assert info == {
        "format": "npy",
        "shape": [N, *image_shape],
        "dtype": "uint8",
        "chunks": None,
        "fastquant": _metadata(),
    }
    assert "fastquant" not in read_metadata(tmp_path / "whole.npy")
    assert _temporaries(tmp_path) == []


# --- every format: determinism, errors in rows, abort, injected OSError ----------------------------------------

OUTPUTS = [("slices", None), ("x.tif", None), ("x.tif", "zlib"), ("x.zarr", "zstd"), ("x.npy", None)]
OUTPUT_IDS = ["png", "tiff", "tiff-zlib", "zarr", "npy"]


@pytest.mark.parametrize(("name", "compression"), OUTPUTS, ids=OUTPUT_IDS)
def test_same_inputs_same_bytes(tmp_path, name, compression):
    images = _images((17, 11, 4), seed=11)
    trees = []
    for run in ("one", "two"):
        (tmp_path / run).mkdir()
        _fill(_sink(tmp_path / run / name, (17, 11, 4), compression=compression), images, bands=run == "two")
        trees.append({k: v for k, v in _tree_bytes(tmp_path / run).items()})
    assert trees[0] == trees[1]


@pytest.mark.parametrize(("name", "compression"), OUTPUTS, ids=OUTPUT_IDS)
def test_abort_leaves_nothing(tmp_path, name, compression):
    images = _images((17, 11), seed=12)
    sink = _sink(tmp_path / name, compression=compression)
    assert _temporaries(tmp_path) == [] and (name == "slices" or not (tmp_path / name).exists())
    sink.write(0, images[0], _metadata(0))
    writer = sink.open_rows(1, _metadata(1))
    writer.write_rows(images[1][:4])
    assert _temporaries(tmp_path if name != "slices" else tmp_path / name)
    sink.abort()
    sink.abort()
    directory = tmp_path / name if name == "slices" else tmp_path
    assert _temporaries(directory) == []
    assert all(not os.path.lexists(n) for n in sink.names)
    # the sink starts again from the beginning after an abort (the driver does this after a failed proof)
    _fill(sink, images, bands=False)
    assert sink.status(0, _metadata(0)) == "same"
    assert _temporaries(directory) == []


@pytest.mark.parametrize(("name", "compression"), OUTPUTS, ids=OUTPUT_IDS)
def test_wrong_rows(tmp_path, name, compression):
    images = _images((17, 11), seed=13)
    directory = tmp_path / name if name == "slices" else tmp_path
    sink = _sink(tmp_path / name, compression=compression)
    writer = sink.open_rows(0, _metadata(0))
    with pytest.raises(ValueError, match=r"rows has shape \(2, 12\); accepted: \(h, 11\)"):
        writer.write_rows(np.zeros((2, 12), np.uint8))
    sink.abort()
    writer = sink.open_rows(0, _metadata(0))
    writer.write_rows(images[0][:10])
    with pytest.raises(ValueError, match=r"10 of the image's 17 rows"):
        writer.close()
    sink.abort()
    assert _temporaries(directory) == [] and all(not os.path.lexists(n) for n in sink.names)
    with pytest.raises(TypeError, match=r"uint8"):
        sink.write(0, images[0].astype(np.float32), _metadata(0))
    with pytest.raises(ValueError, match=r"levels has shape \(17, 11, 3\); accepted: \(17, 11\)"):
        sink.write(0, np.zeros((17, 11, 3), np.uint8), _metadata(0))
    with pytest.raises(IndexError, match=r"index 3 is out of range"):
        sink.write(3, images[0], _metadata(0))


class _FailingFile:
    """A file that fails with ENOSPC once more than `budget` bytes were written to it."""

    def __init__(self, real, budget: list[int]):
        self._real, self._budget = real, budget

    def write(self, data) -> int:
        size = memoryview(data).nbytes
        if size > self._budget[0]:
            self._real.write(bytes(memoryview(data).cast("B")[: self._budget[0]]))
            raise OSError(errno.ENOSPC, "No space left on device")
        self._budget[0] -= size
        return self._real.write(data)

    def __getattr__(self, name):
        return getattr(self._real, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._real.close()


@pytest.mark.parametrize(("name", "compression"), OUTPUTS, ids=OUTPUT_IDS)
@pytest.mark.parametrize("bands", [False, True], ids=["whole", "bands"])
def test_disk_full(tmp_path, monkeypatch, small_strips, name, compression, bands):
    images = _images((17, 11, 3), seed=14)
    directory = tmp_path / name if name == "slices" else tmp_path
    budget = [17 * 11 * 3 + 500]  # fails inside the second image
    if name.endswith(".zarr"):
        real_write = _outputs._ZarrSink._write
        real_rows = _outputs._BufferedRows._take

        def spend(rows: int) -> None:
            budget[0] -= rows * 11 * 3
            if budget[0] < 0:
                raise OSError(errno.ENOSPC, "No space left on device")

        def write(self, index, levels):
            real_write(self, index, levels)
            spend(len(levels))

        def take(self, rows):
            real_rows(self, rows)
            spend(len(rows))

        monkeypatch.setattr(_outputs._ZarrSink, "_write", write)
        monkeypatch.setattr(_outputs._BufferedRows, "_take", take)
    else:
        real_open = _outputs._open_temp  # every sink opens its temporaries through it

        monkeypatch.setattr(_outputs, "_open_temp", lambda path, **kw: _FailingFile(real_open(path, **kw), budget))
    sink = _sink(tmp_path / name, (17, 11, 3), compression=compression)
    with pytest.raises(OSError, match=r"No space left"):
        _fill(sink, images, bands)
    sink.abort()  # what the driver does; the failed write removed its own temporaries already
    assert _temporaries(directory) == []
    assert all(not os.path.lexists(n) for n in sink.names)
    assert not os.path.lexists(tmp_path / f"{name}.json")


def test_sequential_sink_cleans_up_by_itself_on_error(tmp_path, monkeypatch):
    sink = _sink(tmp_path / "x.tif", compression="zlib")
    images = _images((17, 11), seed=15)
    sink.write(0, images[0], _metadata(0))

    def broken(strip):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(sink, "_encoder", broken)
    with pytest.raises(OSError, match=r"Input/output error"):
        sink.write(1, images[1], _metadata(1))
    assert _temporaries(tmp_path) == []  # without the driver's abort()


def test_remove_leftovers(tmp_path):
    (tmp_path / ".fastquant-0123abcd.tmp").write_bytes(b"partial png")
    (tmp_path / ".fastquant-dir.tmp").mkdir()
    (tmp_path / ".fastquant-dir.tmp" / "zarr.json").write_text("{}")
    (tmp_path / ".fastquant-notes.txt").write_text("kept: not a temporary")
    (tmp_path / "pred_0000.png").write_bytes(b"kept")
    removed = remove_leftovers(tmp_path)
    assert removed == sorted([str(tmp_path / ".fastquant-0123abcd.tmp"), str(tmp_path / ".fastquant-dir.tmp")])
    assert sorted(os.listdir(tmp_path)) == [".fastquant-notes.txt", "pred_0000.png"]
    assert remove_leftovers(tmp_path / "missing") == []


# --- make_sink errors -----------------------------------------------------------------------------------------


def test_output_format_from_the_path(tmp_path):
    (tmp_path / "existing.tif").mkdir()  # an existing directory means PNG slices, whatever its name
    assert _sink(tmp_path / "existing.tif").format == "png"
    assert _sink(tmp_path / "new_dir").format == "png" and (tmp_path / "new_dir").is_dir()
    assert _sink(tmp_path / "a.TIFF").format == "tiff"
    assert _sink(tmp_path / "sub" / "a.zarr").format == "zarr"
    assert _sink(tmp_path / "a.npy", format="npy").format == "npy"
    assert _sink(tmp_path / "a.data", format="tiff").format == "tiff"
    assert _temporaries(tmp_path) == []


@pytest.mark.parametrize(
    ("output", "options", "error", "match"),
    [
        ("x.png", {}, ValueError, r"extension '\.png'; accepted: a directory or a path without extension"),
        ("x.jpg", {}, ValueError, r"extension '\.jpg'"),
        ("x", {"format": "gif"}, ValueError, r"format='gif' is not supported; accepted: 'png', 'tiff'"),
        ("x", {"compression": "zlib"}, ValueError, r"compression='zlib' is not supported for png output"),
        ("x.npy", {"compression": "zstd"}, ValueError, r"npy output; accepted: None only"),
        ("x.tif", {"compression": "jpeg"}, ValueError, r"compression='jpeg'.*tiff.*'zlib', 'deflate'"),
        ("x.zarr", {"compression": "lz4"}, ValueError, r"compression='lz4'.*zarr.*'zstd', 'gzip', 'blosc'"),
        ("x.tif", {"image_shape": (4, 5, 2)}, ValueError, r"image_shape=\(4, 5, 2\); accepted: \(H, W\) grey"),
        ("x.tif", {"image_shape": (0, 5)}, ValueError, r"image_shape=\(0, 5\)"),
        ("x.tif", {"image_shape": (4,)}, ValueError, r"image_shape=\(4,\)"),
        ("x.tif", {"count": 0}, ValueError, r"count=0"),
        ("x.tif", {"compress_level": 10}, ValueError, r"compress_level=10 is outside 0-9"),
        ("x.tif", {"compress_level": 1.0}, TypeError, r"compress_level=1\.0"),
    ],
)
def test_make_sink_errors(tmp_path, output, options, error, match):
    with pytest.raises(error, match=match):
        _sink(tmp_path / output, **options)
    assert os.listdir(tmp_path) == []


def test_output_kind_conflicts(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ValueError, match=r"file.*not a directory"):
        _sink(tmp_path / "file", format="png")
    (tmp_path / "d.npy").mkdir()
    with pytest.raises(ValueError, match=r"d\.npy.*is a directory"):
        _sink(tmp_path / "d.npy", format="npy")


@pytest.mark.parametrize(("module", "extra", "output"), [("tifffile", "tiff", "x.tif"), ("zarr", "zarr", "x.zarr")])
def test_missing_extra(tmp_path, monkeypatch, module, extra, output):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=rf'pip install "fastquant-uint8\[{extra}\]"'):
        _sink(tmp_path / output)


# --- read_metadata of inputs and foreign files ------------------------------------------------------------------


def test_read_metadata_of_inputs(tmp_path):
    x = np.zeros((2, 3, 4), np.float32)
    np.save(tmp_path / "x.npy", x)
    assert read_metadata(tmp_path / "x.npy") == {
        "format": "npy",
        "shape": [2, 3, 4],
        "dtype": "float32",
        "chunks": None,
    }
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("a/b", data=x, chunks=(1, 3, 4))
        f["c"] = x
    assert read_metadata(tmp_path / "x.h5", dataset="a/b") == {
        "format": "hdf5",
        "shape": [2, 3, 4],
        "dtype": "float32",
        "chunks": [1, 3, 4],
        "dataset": "a/b",
    }
    tifffile.imwrite(tmp_path / "foreign.tif", x, photometric="minisblack", description="not json")
    assert "fastquant" not in read_metadata(tmp_path / "foreign.tif")
    Image.fromarray(np.zeros((3, 4), np.uint8)).save(tmp_path / "foreign.png")
    assert read_metadata(tmp_path / "foreign.png") == {
        "format": "png",
        "shape": [3, 4],
        "dtype": "uint8",
        "chunks": None,
    }
    with pytest.raises(FileNotFoundError, match=r"nope"):
        read_metadata(tmp_path / "nope")


@pytest.mark.parametrize(("name", "compression"), OUTPUTS[1:], ids=OUTPUT_IDS[1:])
def test_outputs_read_back_as_inputs(tmp_path, name, compression):
    from fastquant._inputs import open_input

    images = _images((17, 11, 3), seed=16)
    _fill(_sink(tmp_path / name, (17, 11, 3), compression=compression), images, bands=True)
    with open_input(tmp_path / name) as opened:
        assert opened.shape == images.shape and opened.dtype == np.uint8
        if compression is None:  # uncompressed TIFF: one contiguous series, memory-mapped
            assert isinstance(opened.array, np.memmap)
        np.testing.assert_array_equal(opened.array[:], images)
        np.testing.assert_array_equal(opened.array[1, -5:, 2:7], images[1, -5:, 2:7])


def test_npy_failed_commit_leaves_the_old_output_consistent(tmp_path, monkeypatch):
    """The new sidecar (with the data's CRC-32) goes into place before the new data; a commit that fails before
    either rename leaves the old .npy and its sidecar as they were."""
    images = _images((17, 11), seed=17)
    _fill(_sink(tmp_path / "x.npy"), images, bands=False)
    assert _sink(tmp_path / "x.npy").status(0, _metadata(0)) == "same"

    def fail(temp, final, overwrite):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(_outputs, "_move_into_place", fail)
    sink = _sink(tmp_path / "x.npy", overwrite=True)
    with pytest.raises(OSError, match=r"Input/output error"):
        _fill(sink, images[::-1], bands=False, metadata=lambda i: _metadata(i, run=2))
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), images)  # the old data, whole
    assert sink.status(0, _metadata(0)) == "same"  # ... with its own sidecar
    assert _temporaries(tmp_path) == []


def test_png_rewritten_image_replaces_its_temporary(tmp_path):
    sink = _sink(tmp_path, (17, 11))
    images = _images((17, 11), seed=18)
    sink.write(0, images[1], _metadata(0))
    sink.write(0, images[0], _metadata(0))  # written again (after a failed proof): the new one wins
    assert len(_temporaries(tmp_path)) == 1
    sink.commit([0])
    np.testing.assert_array_equal(_read_png_pillow(sink.names[0]), images[0])
    with pytest.raises(ValueError, match=r"image 1 was not written"):
        sink.commit([1])
