"""fastquant convert's colour, channel, label and 16-bit options, end to end on a volume (the command line and
the Python function): every image equals the in-memory API (and so the reference) on the whole volume, read back
by independent decoders; the options and limits are recorded in each file; bad combinations are one-line errors
that write nothing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from support import lower

import fastquant
from fastquant import reference
from fastquant._cli import main as cli


@pytest.fixture(scope="module")
def volumes(tmp_path_factory):
    root = tmp_path_factory.mktemp("volumes")
    rng = np.random.default_rng(20261202)
    maps = rng.standard_normal((4, 48, 70)).astype(np.float32)
    maps[1, ::5, ::3] = np.nan
    maps[2, 7] = np.inf
    scores = rng.standard_normal((3, 6, 48, 70)).astype(np.float32)  # N x classes x H x W
    scores[0, :, :4] = np.nan
    np.save(root / "maps.npy", maps)
    np.save(root / "scores.npy", scores)
    return root, maps, scores


def _png(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def test_stretch_center_bits(volumes, tmp_path):
    cv2 = pytest.importorskip("cv2")
    root, maps, _ = volumes
    args = ["--percentiles", "1", "99", "--stretch", "log", "--center", "0", "--quiet"]
    assert cli(["convert", str(root / "maps.npy"), str(tmp_path / "a"), *args]) == 0
    expected = reference.to_uint8(maps, percentiles=(1, 99), stretch="log", center=0.0)
    for i in range(4):
        np.testing.assert_array_equal(_png(tmp_path / "a" / f"maps_{i:04d}.png"), expected[i])
    assert cli(["convert", str(root / "maps.npy"), str(tmp_path / "b"), "--bits", "16", "--limits", "slice",
                "--percentiles", "2", "98", "--quiet"]) == 0  # fmt: skip
    expected = reference.to_uint16(maps, percentiles=(2, 98), axis=(1, 2))
    for i in range(4):
        back = cv2.imread(str(tmp_path / "b" / f"maps_{i:04d}.png"), cv2.IMREAD_UNCHANGED)
        assert back.dtype == np.uint16
        np.testing.assert_array_equal(back, expected[i])
    recorded = fastquant.read_metadata(str(tmp_path / "b" / "maps_0000.png"))["fastquant"]
    assert recorded["options"]["bits"] == 16 and len(recorded["limits"]["lo"]) == 4


@pytest.mark.parametrize("fmt", ["tif", "zarr", "npy"])
def test_bits_16_single_file_outputs(volumes, tmp_path, fmt):
    if fmt == "tif":
        pytest.importorskip("tifffile")
    if fmt == "zarr":
        pytest.importorskip("zarr")
    root, maps, _ = volumes
    out = tmp_path / f"out.{fmt}"
    summary = fastquant.convert(root / "maps.npy", out, bits=16, vmin=-2, vmax=2)
    if fmt == "tif":
        import tifffile

        back = tifffile.imread(out)
    elif fmt == "zarr":
        import zarr

        back = zarr.open_array(str(out), mode="r")[...]
    else:
        back = np.load(out)
    assert back.dtype == np.uint16 and summary.written == 4
    np.testing.assert_array_equal(back, reference.to_uint16(maps, -2, 2))


def test_cmap_and_compat(volumes, tmp_path):
    root, maps, _ = volumes
    args = ["--cmap", "RdBu", "--center", "0", "--percentiles", "1", "99", "--nan-color", "0,0,0,0", "--quiet"]
    assert cli(["convert", str(root / "maps.npy"), str(tmp_path / "c"), *args]) == 0
    expected = reference.colorize(maps, "RdBu", percentiles=(1, 99), center=0.0, nan=(0, 0, 0, 0))
    for i in range(4):
        np.testing.assert_array_equal(_png(tmp_path / "c" / f"maps_{i:04d}.png"), expected[i])
    args = ["--cmap", "magma", "--compat", "matplotlib", "--limits", "slice", "--percentiles", "1", "99", "--quiet"]
    assert cli(["convert", str(root / "maps.npy"), str(tmp_path / "d"), *args]) == 0
    expected = reference.colorize(maps, "magma", percentiles=(1, 99), axis=(1, 2), compat="matplotlib")
    for i in range(4):
        np.testing.assert_array_equal(_png(tmp_path / "d" / f"maps_{i:04d}.png"), expected[i])


def test_cmap_in_bands(volumes, tmp_path, monkeypatch):
    """Images written in bands of rows (the memory cap's path) give the same colours."""
    lower(monkeypatch, band_rows=7)
    root, maps, _ = volumes
    fastquant.convert(root / "maps.npy", tmp_path / "e", cmap="viridis", percentiles=(1, 99), method="exact")
    expected = reference.colorize(maps, "viridis", percentiles=(1, 99))
    for i in range(4):
        np.testing.assert_array_equal(_png(tmp_path / "e" / f"maps_{i:04d}.png"), expected[i])


@pytest.mark.parametrize("mode", ["sum", "max", "weighted"])
def test_composite(volumes, tmp_path, mode):
    root, _, scores = volumes
    args = ["--composite", mode, "--channel-axis", "1", "--percentiles", "1", "99.5", "--method", "exact", "--quiet"]
    assert cli(["convert", str(root / "scores.npy"), str(tmp_path / "f"), *args]) == 0
    expected = reference.composite(scores, channel_axis=1, percentiles=(1, 99.5), axis=(0, 2, 3), mode=mode)
    for i in range(3):
        np.testing.assert_array_equal(_png(tmp_path / "f" / f"scores_{i:04d}.png"), expected[i])
    recorded = fastquant.read_metadata(str(tmp_path / "f" / "scores_0000.png"))["fastquant"]
    assert recorded["options"]["composite"] == mode and recorded["limits"]["axis"] == [0, 2, 3]
    assert len(recorded["limits"]["lo"]) == 6  # one pair per channel


def test_labels_palette_png(volumes, tmp_path):
    root, _, scores = volumes
    palette_file = tmp_path / "palette.txt"
    palette_file.write_text("# three classes\n255 0 0\n0 255 0\n0 0 255\n10 20 30\n40 50 60\n70 80 90\n")
    for palette in ("voc", "glasbey", str(palette_file)):
        out = tmp_path / f"labels-{len(palette)}"
        args = ["--labels", "--channel-axis", "1", "--threshold", "0.3", "--palette", palette, "--quiet"]
        assert cli(["convert", str(root / "scores.npy"), str(out), *args]) == 0
        for i in range(3):
            with Image.open(out / f"scores_{i:04d}.png") as image:
                assert image.mode == "P"
                assert image.info.get("transparency") == 255
                np.testing.assert_array_equal(np.asarray(image), reference.labels(scores[i], threshold=0.3))
    with Image.open(tmp_path / f"labels-{len(str(palette_file))}" / "scores_0000.png") as image:
        assert image.getpalette()[:6] == [255, 0, 0, 0, 255, 0]
    fastquant.convert(root / "scores.npy", tmp_path / "labels.npy", labels=True, channel_axis=1)
    np.testing.assert_array_equal(np.load(tmp_path / "labels.npy"), reference.labels(scores, channel_axis=1))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cmap", "nope"], "cmap='nope' is not a shipped colormap"),
        (["--stretch", "cube"], "stretch='cube' is not known"),
        (["--composite"], "composite needs channel_axis"),
        (["--palette", "voc"], "threshold and palette apply to labels"),
        (["--bits", "16", "--cmap", "gray"], "bits=16 applies to grey or RGB levels"),
        (["--cmap", "gray", "--composite", "--channel-axis", "0"], "cmap and composite exclude each other"),
        (["--compat", "matplotlib"], "compat and nan_color apply to colour maps"),
        (["--cmap", "viridis", "--nan-color", "1,2"], "nan"),
        (["--cmap", "viridis", "--stretch", "sqrt", "--compat", "matplotlib"], "linear stretch"),
        (["--labels", "--channel-axis", "0", "--percentiles", "1", "99"], "percentiles does not apply"),
        (["--composite", "--channel-axis", "0", "--limits", "volume"], "composite takes limits per channel"),
        (["--labels", "--channel-axis", "0", "--palette", "/no/such/file"], "neither 'voc', 'glasbey' nor"),
    ],
)
def test_errors_write_nothing(volumes, tmp_path, capsys, args, message):
    root, _, _ = volumes
    out = tmp_path / "out"
    assert cli(["convert", str(root / "maps.npy"), str(out), *args]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_palette_needs_png(volumes, tmp_path, capsys):
    root, _, _ = volumes
    out = tmp_path / "labels.npy"
    args = ["--labels", "--channel-axis", "1", "--palette", "voc"]
    assert cli(["convert", str(root / "scores.npy"), str(out), *args]) == 1
    assert "palette= colours PNG slices" in capsys.readouterr().err
    assert not out.exists()
