"""fastquant.convert and ``fastquant convert``: every image equals ``to_uint8(volume, ..., axis=A)[i]`` bit for
bit, whatever the workers, memory cap, block sizes and input format; the options and errors of the command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from support import lower

import fastquant
from fastquant._cli import main as cli

LIMIT_AXES = {  # --limits -> the axes to_uint8 reduces over, for (Z, H, W) and (C, Z, H, W) with channel_axis 0
    "volume": {3: (0, 1, 2), 4: (0, 1, 2, 3)},
    "slice": {3: (1, 2), 4: (0, 2, 3)},
    "channel": {4: (1, 2, 3)},
    "slice-channel": {4: (2, 3)},
}


def volume(shape=(5, 120, 90), seed=0, dtype=np.float32) -> np.ndarray:
    """A smooth field plus noise (prediction-like), with a few NaN and inf."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.linspace(0, 3, n) for n in shape], indexing="ij")
    field = np.sin(sum(grid)) + 0.3 * rng.standard_normal(shape)
    x = field.astype(dtype)
    x.reshape(-1)[::1009] = np.nan
    x.reshape(-1)[7] = np.inf
    return x


def read_png(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def pngs(directory) -> list:
    return sorted(p for p in os.listdir(directory) if p.endswith(".png"))


def expected_images(x, axes, channel_axis=None, channels=None, **kw) -> list[np.ndarray]:
    if channels is not None:
        x = np.take(x, channels, axis=channel_axis)
    levels = fastquant.to_uint8(x, axis=axes, **kw)
    if channel_axis is None:
        return list(levels)
    slice_axis = 1 if channel_axis == 0 else 0
    moved = np.moveaxis(levels, (slice_axis, channel_axis), (0, -1))
    return [m[..., 0] if m.shape[-1] == 1 else m for m in moved]


@pytest.mark.parametrize("limits", ["volume", "slice"])
@pytest.mark.parametrize("method", ["approx", "exact"])
def test_png_slices_equal_to_uint8(tmp_path, limits, method, monkeypatch):
    lower(monkeypatch, numba_min_size=0, read_block=20_000)
    x = volume()
    np.save(tmp_path / "pred.npy", x)
    summary = fastquant.convert(
        tmp_path / "pred.npy", tmp_path / "out", percentiles=(5, 95), method=method, limits=limits
    )
    names = pngs(tmp_path / "out")
    assert names == [f"pred_{i:04d}.png" for i in range(5)]
    assert summary.written == 5 and summary.images == 5
    for name, want in zip(
        names, expected_images(x, LIMIT_AXES[limits][3], percentiles=(5, 95), method=method), strict=True
    ):
        np.testing.assert_array_equal(read_png(tmp_path / "out" / name), want)


@pytest.mark.parametrize("case", ["approx", "approx, failed proof", "exact", "resume"])
def test_workers_convert_and_encode_whole_images(tmp_path, case, monkeypatch):
    # PNG slices with several workers: each worker converts and encodes whole images (the "workers" path); the
    # bytes equal to_uint8's and one worker's (the "one thread" path), a failed proof and a resume included.
    # approx: each 64×50 group sampled whole, so the proof holds; a failed one: a sparse sample, no tolerance
    knobs = {"numba_min_size": 0, "approx_sample": 64 * 50, "approx_min_stride": 1}
    if case == "approx, failed proof":
        knobs.update(approx_sample=1 << 10, approx_tolerance=1e-9)
    lower(monkeypatch, **knobs)
    from fastquant._plan import recording

    x = volume((7, 64, 50), seed=3)
    np.save(tmp_path / "v.npy", x)
    method = "exact" if case == "exact" else "approx"
    made = {}
    for workers in (1, 2, 3):
        out = tmp_path / f"w{workers}"
        with recording() as events:
            summary = fastquant.convert(
                tmp_path / "v.npy", out, percentiles=(5, 95), limits="slice", method=method, workers=workers
            )
        path = "one thread" if workers == 1 else "workers"
        assert ("write", {"path": path, "workers": workers}) in events
        if case.startswith("approx"):
            assert ("approx", {"proved": case == "approx"}) in events
        if case == "resume" and workers > 1:
            for i in (0, 3, 6):
                os.remove(out / f"v_{i:04d}.png")
            summary = fastquant.convert(
                tmp_path / "v.npy", out, percentiles=(5, 95), limits="slice", workers=workers, resume=True
            )
            assert (summary.written, summary.skipped) == (3, 4)
        else:
            assert summary.written == 7
        made[workers] = {n: (out / n).read_bytes() for n in pngs(out)}
    assert made[1] == made[2] == made[3] and len(made[1]) == 7
    want = expected_images(x, (1, 2), percentiles=(5, 95), method=method)
    for i, image in enumerate(want):
        np.testing.assert_array_equal(read_png(tmp_path / "w2" / f"v_{i:04d}.png"), image)


@pytest.mark.parametrize("limits", ["volume", "slice", "channel", "slice-channel"])
def test_channels_to_rgb(tmp_path, limits, monkeypatch):
    lower(monkeypatch, numba_min_size=0)
    x = volume((6, 4, 50, 40))  # C, Z, H, W
    np.save(tmp_path / "scores.npy", x)
    fastquant.convert(
        tmp_path / "scores.npy",
        tmp_path / "rgb",
        percentiles=(2, 98),
        limits=limits,
        channel_axis=0,
        channels=[4, 0, 2],
        method="exact",
    )
    want = expected_images(x, LIMIT_AXES[limits][4], 0, [4, 0, 2], percentiles=(2, 98), method="exact")
    names = pngs(tmp_path / "rgb")
    assert len(names) == 4
    for name, image in zip(names, want, strict=True):
        got = read_png(tmp_path / "rgb" / name)
        assert got.shape == (50, 40, 3)
        np.testing.assert_array_equal(got, image)


def test_bytes_do_not_depend_on_workers_memory_or_bands(tmp_path, monkeypatch):
    x = volume((4, 300, 200))
    np.save(tmp_path / "v.npy", x)
    runs = []
    for k, (workers, knobs) in enumerate([(1, {}), (2, {"read_block": 7_000}), (2, {"band_rows": 13})]):
        with fastquant._plan.tuning(numba_min_size=0, **knobs):
            fastquant.convert(
                tmp_path / "v.npy", tmp_path / f"o{k}", percentiles=(5, 95), workers=workers, max_memory="200MiB"
            )
        runs.append([(tmp_path / f"o{k}" / n).read_bytes() for n in pngs(tmp_path / f"o{k}")])
    assert runs[0] == runs[1] == runs[2]


def test_array_input_and_formats(tmp_path, monkeypatch):
    lower(monkeypatch, numba_min_size=0)
    x = volume((3, 64, 48))
    want = np.stack(expected_images(x, (0, 1, 2), percentiles=(5, 95)))
    fastquant.convert(x, tmp_path / "a.npy", percentiles=(5, 95))
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), want)
    tifffile = pytest.importorskip("tifffile")
    fastquant.convert(x, tmp_path / "a.tif", percentiles=(5, 95))
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "a.tif"), want)
    zarr = pytest.importorskip("zarr")
    fastquant.convert(x, tmp_path / "a.zarr", percentiles=(5, 95))
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "a.zarr"), mode="r")[...], want)
    meta = fastquant.read_metadata(tmp_path / "a.zarr")
    assert meta["fastquant"]["options"]["percentiles"] == [5.0, 95.0]


def test_existing_outputs_need_overwrite_or_resume(tmp_path):
    x = volume((3, 40, 30))
    np.save(tmp_path / "v.npy", x)
    first = fastquant.convert(tmp_path / "v.npy", tmp_path / "o", vmin=-1, vmax=1)
    before = {n: (tmp_path / "o" / n).read_bytes() for n in pngs(tmp_path / "o")}
    with pytest.raises(ValueError, match="exists"):
        fastquant.convert(tmp_path / "v.npy", tmp_path / "o", vmin=-1, vmax=1)
    again = fastquant.convert(tmp_path / "v.npy", tmp_path / "o", vmin=-1, vmax=1, resume=True)
    assert (first.written, again.written, again.skipped) == (3, 0, 3)
    with pytest.raises(ValueError, match="other options"):
        fastquant.convert(tmp_path / "v.npy", tmp_path / "o", vmin=-1, vmax=2, resume=True)
    assert before == {n: (tmp_path / "o" / n).read_bytes() for n in pngs(tmp_path / "o")}
    replaced = fastquant.convert(tmp_path / "v.npy", tmp_path / "o", vmin=-1, vmax=2, overwrite=True)
    assert replaced.written == 3
    assert before != {n: (tmp_path / "o" / n).read_bytes() for n in pngs(tmp_path / "o")}


def test_resume_finishes_a_partial_run(tmp_path):
    x = volume((4, 40, 30))
    np.save(tmp_path / "v.npy", x)
    fastquant.convert(tmp_path / "v.npy", tmp_path / "full", percentiles=(5, 95), method="exact")
    fastquant.convert(tmp_path / "v.npy", tmp_path / "part", percentiles=(5, 95), method="exact")
    os.remove(tmp_path / "part" / "v_0002.png")
    done = fastquant.convert(tmp_path / "v.npy", tmp_path / "part", percentiles=(5, 95), method="exact", resume=True)
    assert (done.written, done.skipped) == (1, 3)
    for n in pngs(tmp_path / "full"):
        assert (tmp_path / "full" / n).read_bytes() == (tmp_path / "part" / n).read_bytes()


def test_input_is_never_modified(tmp_path):
    x = volume((3, 40, 30))
    np.save(tmp_path / "v.npy", x)
    stat = os.stat(tmp_path / "v.npy")
    data = (tmp_path / "v.npy").read_bytes()
    fastquant.convert(tmp_path / "v.npy", tmp_path / "o", percentiles=(5, 95))
    assert (tmp_path / "v.npy").read_bytes() == data
    assert os.stat(tmp_path / "v.npy").st_mtime_ns == stat.st_mtime_ns


@pytest.mark.parametrize(
    ("kw", "error", "match"),
    [
        ({"limits": "planet"}, ValueError, "limits='planet'"),
        ({"limits": "channel"}, ValueError, "needs channel_axis"),
        ({"channel_axis": 0}, ValueError, "would have 1 axes"),
        ({"channel_axis": 2, "channels": [0, 1]}, ValueError, "2 channels"),
        ({"slice_axis": 5}, ValueError, "slice_axis=5"),
        ({"slice_axis": 1, "channel_axis": 1}, ValueError, "must differ"),
        ({"workers": 0}, ValueError, "workers=0"),
        ({"compress_level": 10}, ValueError, "0-9"),
        ({"percentiles": (95, 5)}, ValueError, "percentiles"),
        ({"overwrite": True, "resume": True}, ValueError, "contradict"),
        ({"max_memory": "lots"}, ValueError, "not a size"),
    ],
)
def test_bad_options_write_nothing(tmp_path, kw, error, match):
    np.save(tmp_path / "v.npy", volume((3, 20, 10)))
    with pytest.raises(error, match=match):
        fastquant.convert(tmp_path / "v.npy", tmp_path / "o", **kw)
    assert not (tmp_path / "o").exists() or not os.listdir(tmp_path / "o")


# --- the command line -----------------------------------------------------------------------------------------


def test_cli_convert_json(tmp_path, capsys):
    x = volume((3, 40, 30))
    np.save(tmp_path / "v.npy", x)
    status = cli(
        [
            "convert",
            str(tmp_path / "v.npy"),
            str(tmp_path / "o"),
            "--percentiles",
            "5",
            "95",
            "--method",
            "exact",
            "--limits",
            "slice",
            "--json",
        ]
    )
    assert status == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["written"] == 3
    lo, hi = fastquant.limits(x, percentiles=(5, 95), axis=(1, 2), method="exact")
    assert summary["limits"]["lo"] == lo.reshape(-1).tolist() and summary["limits"]["hi"] == hi.reshape(-1).tolist()
    recorded = fastquant.read_metadata(tmp_path / "o" / "v_0001.png")
    assert recorded["fastquant"]["limits"] == summary["limits"]


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli(["convert", str(tmp_path / "missing.npy"), str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.npy" in err and "Traceback" not in err
    np.save(tmp_path / "v.npy", volume((2, 10, 10)))
    with pytest.raises(SystemExit) as usage:
        cli(["convert", str(tmp_path / "v.npy"), str(tmp_path / "o"), "--limits", "planet"])
    assert usage.value.code == 2
    assert cli(["convert", str(tmp_path / "v.npy"), str(tmp_path / "o"), "--limits", "channel"]) == 1
    np.save(tmp_path / "c.npy", volume((5, 2, 10, 10)))
    assert cli(["convert", str(tmp_path / "c.npy"), str(tmp_path / "o"), "--channel-axis", "0"]) == 1
    err = capsys.readouterr().err
    assert "5 channels" in err and "--channels" in err


def test_cli_help_documents_every_option():
    out = subprocess.run(
        [sys.executable, "-m", "fastquant._cli", "convert", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for option in [
        "--vmin",
        "--vmax",
        "--percentiles",
        "--method",
        "--nan",
        "--limits",
        "--slice-axis",
        "--channel-axis",
        "--channels",
        "--dataset",
        "--format",
        "--name",
        "--compress-level",
        "--compression",
        "--workers",
        "--max-memory",
        "--overwrite",
        "--resume",
        "--json",
        "--quiet",
    ]:
        assert option in out


def test_cli_info(tmp_path, capsys):
    np.save(tmp_path / "v.npy", volume((2, 10, 12)))
    assert cli(["info", str(tmp_path / "v.npy")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shape"] == [2, 10, 12] and info["dtype"] == "float32"


def test_resume_after_a_failed_proof(tmp_path, monkeypatch):
    """A failed approx proof rewrites with the exact limits; a resume of such a run recognises those outputs
    (instead of refusing them as made with other limits than the estimates) and finishes it."""
    lower(monkeypatch, numba_min_size=0, approx_sample=1 << 10, approx_min_stride=1, approx_tolerance=1e-9)
    x = volume((4, 128, 96))
    np.save(tmp_path / "v.npy", x)
    from fastquant._plan import recording

    with recording() as events:
        fastquant.convert(tmp_path / "v.npy", tmp_path / "o", percentiles=(5, 95))
    assert ("approx", {"proved": False}) in events
    want = {n: (tmp_path / "o" / n).read_bytes() for n in pngs(tmp_path / "o")}
    os.remove(tmp_path / "o" / "v_0001.png")
    with recording() as events:
        done = fastquant.convert(tmp_path / "v.npy", tmp_path / "o", percentiles=(5, 95), resume=True)
    assert ("approx", {"resumed_exact": True}) in events
    assert (done.written, done.skipped) == (1, 3)
    assert want == {n: (tmp_path / "o" / n).read_bytes() for n in pngs(tmp_path / "o")}
    with pytest.raises(ValueError, match="other options"):
        fastquant.convert(tmp_path / "v.npy", tmp_path / "o", percentiles=(4, 95), resume=True)
