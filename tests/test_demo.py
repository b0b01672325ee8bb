"""The built-in demo (the README's main job): a generated volume to PNG slices, then the seed's three cases."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import numpy as np
import pytest
from PIL import Image

import fastquant
from fastquant import demo

FILES = {"probability.png": "L", "feature.png": "L", "channels.png": "RGB"}


def _read(path) -> tuple[str, np.ndarray]:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.mode, np.asarray(im)


def test_default_run_writes_the_volume_and_three_pngs(tmp_path, capsys):
    # default sizes (64 slices of 1024²), as a newcomer runs it
    assert demo.main(["--out", tmp_path]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*FILES, "volume"])
    slices = sorted((tmp_path / "volume").iterdir())
    assert [p.name for p in slices] == [f"prediction_{i:04d}.png" for i in range(64)]
    printed = capsys.readouterr().out
    assert "64 PNG slices" in printed and "MiB/s" in printed
    for path in slices[::21]:
        mode, pixels = _read(path)
        assert mode == "L" and pixels.shape == (1024, 1024)
    for name, mode in FILES.items():
        got_mode, pixels = _read(tmp_path / name)
        assert got_mode == mode
        assert pixels.shape[:2] == (1024, 1024)
        assert str(tmp_path / name) in printed
        assert f"mode {mode}" in printed
    assert printed.count("float32") == 4
    assert "limits" in printed


def test_images_follow_their_limits(tmp_path):
    demo.main(["--out", tmp_path, "--size", "300", "--seed", "7"])
    # 5/95 percentile limits: about 5% of the pixels at each end (per channel for the RGB image);
    # with the nominal [0, 1] limits a probability map spans the grey range without piling up at
    # 0 and 255.
    _, feature = _read(tmp_path / "feature.png")
    _, channels = _read(tmp_path / "channels.png")
    for plane in [feature] + [channels[..., c] for c in range(3)]:
        assert 0.045 <= np.mean(plane == 0) <= 0.056
        assert 0.045 <= np.mean(plane == 255) <= 0.056
        assert len(np.unique(plane)) == 256
    _, prob = _read(tmp_path / "probability.png")
    assert prob.min() < 20 and prob.max() > 235
    assert np.mean(prob == 0) < 0.01 and np.mean(prob == 255) < 0.01


def test_printed_limits_are_the_data_percentiles(tmp_path, capsys):
    demo.main(["--out", tmp_path, "--size", "64", "--slices", "0"])
    lines = capsys.readouterr().out.splitlines()
    limit_lines = [line.strip() for line in lines if line.strip().startswith("limits:")]
    assert len(limit_lines) == 3
    assert limit_lines[0] == "limits: [0, 1]"
    assert limit_lines[1].count("[") == 1  # one pair for the whole feature map
    assert limit_lines[2].count("[") == 3 and "per channel" in limit_lines[2]
    # the feature map is standard normal: its 5th/95th percentiles are near -1.645/+1.645
    lo, hi = (float(v) for v in limit_lines[1].split("[")[1].rstrip("]").split(","))
    assert -2.0 < lo < -1.3 and 1.3 < hi < 2.0


def test_volume_slices_equal_to_uint8_of_the_volume(tmp_path):
    """The slices are whole-volume 5/95 percentile limits: to_uint8(volume, percentiles=(5, 95))[i], bit for bit."""
    demo.main(["--out", tmp_path, "--size", "96", "--slices", "5", "--seed", "3"])
    volume = demo._volume(np.random.default_rng(3), 5, 96)
    want = fastquant.to_uint8(volume, percentiles=(5, 95))
    for i in range(5):
        np.testing.assert_array_equal(_read(tmp_path / "volume" / f"prediction_{i:04d}.png")[1], want[i])


def test_seeded(tmp_path):
    for run in ("a", "b", "c"):
        seed = "1" if run == "c" else "0"
        demo.main(["--out", tmp_path / run, "--size", "48", "--seed", seed])
    for name in FILES:
        a, b, c = ((tmp_path / run / name).read_bytes() for run in ("a", "b", "c"))
        assert a == b
        assert a != c


def test_creates_nested_output_dir(tmp_path):
    out = tmp_path / "x" / "y"
    assert demo.main(["--out", str(out), "--size", "16"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILES, "volume"])


def test_bad_size_exits_with_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        demo.main(["--out", tmp_path, "--size", "0"])
    assert info.value.code == 2
    assert "--size" in capsys.readouterr().err


def test_python_dash_m(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "fastquant.demo", "--out", str(tmp_path), "--size", "32", "--slices", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)
    assert "channels.png" in result.stdout


def test_console_script_declared():
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("fastquant-demo") == "fastquant.demo:main"
    assert scripts.get("fastquant") == "fastquant._cli:main"


def test_fastquant_demo_command(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "fastquant._cli", "demo", "--out", str(tmp_path), "--size", "40", "--slices", "3"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "volume").iterdir())) == 3
