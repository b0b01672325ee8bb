"""colorize: the fast path equals the spec (``reference.colorize``) bit for bit, and ``compat="matplotlib"``
equals matplotlib.

- fastquant's mapping: ``colorize(x) == table[to_uint8(x)]`` with NaN (and slices without finite values) in the
  NaN colour, over the array generator on both dispatch paths, for fixed, one-sided and exact percentile limits;
  approx equals the colours of to_uint8's approx levels (the same limits, the same pass).
- each conversion kernel family (runs, lanes, rows, and the approx counting ones) is shown to run in colour.
- the output shape: RGB, or RGBA exactly when the colormap or the NaN colour has alpha.
- compat: matplotlib's ``cmap(Normalize(lo, hi)(x), bytes=True)[..., :3]`` for every shipped map that
  matplotlib has, float16/32/64 and integers, NaN, inf, equal limits, per-slice limits.
"""

from __future__ import annotations

import numpy as np
import pytest
from arrays import SAMPLED_KNOBS, cases, sampled_cases
from support import lower

import fastquant
from fastquant import _colormaps, _plan, reference

CASES = [c for c in cases(seed=20261202) if c[1].size <= 1000][::3]
MPL_MAPS = ("gray", "viridis", "magma", "inferno", "plasma", "cividis", "turbo", "RdBu")


def _limit_options(x: np.ndarray):
    finite = x[np.isfinite(x)] if x.dtype.kind == "f" else x.astype(np.float64).ravel()
    lo = float(finite.min()) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 1.0
    return [{}, {"vmin": lo, "vmax": (lo + hi) / 2}, {"vmax": hi}, {"percentiles": (5, 95), "method": "exact"}]


@pytest.mark.parametrize(("cid", "x", "axes"), CASES, ids=[c[0] for c in CASES])
def test_colorize_equals_reference(cid, x, axes, path):
    for axis in axes[:2]:
        for options in _limit_options(x):
            if axis is not None and "vmin" in options and "vmax" in options:
                continue
            expected = reference.colorize(x, "magma", axis=axis, **options)
            got = fastquant.colorize(x, "magma", axis=axis, **options)
            assert got.dtype == np.uint8 and got.shape == x.shape + (3,)
            np.testing.assert_array_equal(got, expected, err_msg=f"{cid} axis={axis} {options}")


@pytest.mark.parametrize("cmap", ["gray", "viridis", "turbo", "voc"])
def test_colorize_is_the_table_at_to_uint8s_levels(cmap, path):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 310), dtype=np.float32)
    x[::17, ::13] = np.nan
    table = _colormaps.colour_table(cmap)
    for method in ("approx", "exact"):
        levels = fastquant.to_uint8(x, percentiles=(2, 98), method=method)
        got = fastquant.colorize(x, cmap, percentiles=(2, 98), method=method, nan=(1, 2, 3))
        expected = np.where(np.isnan(x)[..., None], np.array([1, 2, 3], np.uint8), table[levels])
        np.testing.assert_array_equal(got, expected)
    if cmap == "gray":  # gray equals to_uint8 in every channel
        levels = fastquant.to_uint8(x, percentiles=(2, 98), nan=7)
        got = fastquant.colorize(x, "gray", percentiles=(2, 98), nan=(7, 7, 7))
        assert all((got[..., c] == levels).all() for c in range(3))


@pytest.mark.parametrize(("cid", "x", "axis"), sampled_cases(seed=3), ids=[c[0] for c in sampled_cases(seed=3)])
def test_sampled_paths_in_colour(cid, x, axis, monkeypatch):
    """Large enough for the sampled paths (approx proof counted in the conversion pass) with lowered knobs."""
    lower(monkeypatch, numba_min_size=0, **SAMPLED_KNOBS)
    table = _colormaps.lookup_table(_colormaps.colour_table("inferno"), (9, 8, 7, 6))
    for method in ("approx", "exact"):
        with _plan.recording() as trace:
            got = fastquant.colorize(x, "inferno", percentiles=(1, 99), axis=axis, method=method, nan=(9, 8, 7, 6))
        ran = {d["kernel"] for e, d in trace if e == "convert" and d["colour"]}
        assert ran, trace
        if method == "approx" and not cid.endswith("columns"):  # the proof counted in the colour pass
            assert ran & {"count_runs", "count_lanes"}, trace
        levels = fastquant.to_uint8(x, percentiles=(1, 99), axis=axis, method=method)
        lo, hi = fastquant.limits(x, percentiles=(1, 99), axis=axis, method=method)
        bad = np.isnan(x) | np.isnan(lo) | np.isnan(hi)
        np.testing.assert_array_equal(got, table[np.where(bad, 256, levels.astype(np.intp))], err_msg=cid)
        if method == "exact":
            expected = reference.colorize(x, "inferno", percentiles=(1, 99), axis=axis, nan=(9, 8, 7, 6))
            np.testing.assert_array_equal(got, expected, err_msg=cid)


@pytest.mark.parametrize(
    ("shape", "axis", "kernel"),
    [((2048, 1024), None, "runs"), ((1024, 1024, 3), (0, 1), "lanes"), ((64, 128, 129), 0, "rows")],
)
def test_each_conversion_kernel_in_colour(shape, axis, kernel, monkeypatch):
    lower(monkeypatch, numba_min_size=0)
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape, dtype=np.float32)
    x.reshape(-1)[::101] = np.nan
    x.reshape(-1)[5:1000:7] = np.inf
    for nan in ((0, 0, 0), (10, 20, 30, 40)):
        with _plan.recording() as trace:
            got = fastquant.colorize(x, "viridis", percentiles=(3, 97), axis=axis, method="exact", nan=nan)
        assert (kernel, True) in {(d["kernel"], d["colour"]) for e, d in trace if e == "convert"}, trace
        expected = reference.colorize(x, "viridis", percentiles=(3, 97), axis=axis, nan=nan)
        np.testing.assert_array_equal(got, expected)


def test_out_and_non_contiguous_out_and_blockwise(path):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1100, 1000), dtype=np.float32)
    expected = reference.colorize(x, "plasma", percentiles=(1, 99), method="exact")
    out = np.zeros(x.shape + (3,), np.uint8)
    assert fastquant.colorize(x, "plasma", percentiles=(1, 99), method="exact", out=out) is out
    np.testing.assert_array_equal(out, expected)
    big = np.zeros((x.shape[1], x.shape[0], 3), np.uint8).transpose(1, 0, 2)  # not C-contiguous
    fastquant.colorize(x, "plasma", percentiles=(1, 99), method="exact", out=big)
    np.testing.assert_array_equal(big, expected)

    class Lazy:  # an array-like read in blocks
        shape, dtype = x.shape, x.dtype

        def __getitem__(self, index):
            return x[index]

    got = fastquant.colorize(Lazy(), "plasma", percentiles=(1, 99), method="exact", max_memory="128MiB")
    np.testing.assert_array_equal(got, expected)


def test_output_channels_follow_the_colormap_and_nan_never_the_data():
    x = np.linspace(0, 1, 50).reshape(5, 10)
    assert fastquant.colorize(x).shape == (5, 10, 3)
    assert fastquant.colorize(x, nan=(0, 0, 0, 0)).shape == (5, 10, 4)
    assert (fastquant.colorize(x, nan=(0, 0, 0, 0))[..., 3] == 255).all()  # opaque where not NaN
    rgba = np.concatenate([np.rint(np.linspace(0, 255, 256))[:, None].repeat(3, 1), np.full((256, 1), 128)], 1)
    got = fastquant.colorize(np.array([0.0, np.nan]), rgba.astype(np.uint8), nan=(1, 2, 3))
    assert got.tolist() == [[0, 0, 0, 128], [1, 2, 3, 255]]
    assert fastquant.colorize(np.full((4, 4), np.nan)).shape == (4, 4, 3)


def test_voc_palette():
    palette = _colormaps.voc_palette()
    assert palette[:4].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    assert palette[255].tolist() == [224, 224, 192]
    assert len({tuple(c) for c in palette}) == 256


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"cmap": "jet"}, ValueError, "not a shipped colormap"),
        ({"cmap": 3}, TypeError, "cmap of type int"),
        ({"cmap": np.zeros((255, 3))}, ValueError, r"shape \(255, 3\)"),
        ({"cmap": np.full((256, 3), 2.0)}, ValueError, "outside"),
        ({"nan": (0, 0)}, ValueError, "2 components"),
        ({"nan": (0, 0, 256)}, ValueError, "outside 0..255"),
        ({"nan": 0}, TypeError, "must be a colour"),
        ({"compat": "napari"}, ValueError, "compat='napari'"),
        ({"cmap": "voc", "compat": "matplotlib"}, ValueError, "no matplotlib counterpart"),
        ({"out": np.zeros((4, 4), np.uint8)}, ValueError, r"plus \(3,\) or \(4,\)"),
        ({"percentiles": (5, 105)}, ValueError, "percentiles"),
    ],
)
def test_errors(kwargs, error, match):
    x = np.zeros((4, 4), np.float32)
    with pytest.raises(error, match=match):
        fastquant.colorize(x, **kwargs)
    with pytest.raises(error, match=match):
        reference.colorize(x, **kwargs)


# --- matplotlib compatibility -------------------------------------------------------------------------------


def _compat_inputs():
    rng = np.random.default_rng(7)
    base = rng.standard_normal((37, 41)) * 3
    base[::5, ::7] = np.nan
    base[1, :4] = [np.inf, -np.inf, 1.0, -1.0]
    yield "float64", base
    yield "float32", base.astype(np.float32)
    yield "float16", base.astype(np.float16)
    yield "int16", np.nan_to_num(base * 100, posinf=0, neginf=0).astype(np.int16)
    yield "uint8", np.nan_to_num(np.abs(base) * 30, posinf=0, neginf=0).astype(np.uint8)
    yield "int64", np.nan_to_num(base * 1e6, posinf=0, neginf=0).astype(np.int64)


@pytest.mark.parametrize("name", MPL_MAPS)
def test_compat_matplotlib_bit_for_bit(name, path):
    matplotlib = pytest.importorskip("matplotlib")
    from matplotlib.colors import Normalize

    cmap = matplotlib.colormaps[name]
    for kind, x in _compat_inputs():
        for options in ({"percentiles": (2, 98), "method": "exact"}, {"vmin": -1.3, "vmax": 2.9}, {}):
            lo, hi = fastquant.limits(x, **options)
            expected = cmap(Normalize(float(lo.item()), float(hi.item()))(x), bytes=True)[..., :3]
            got = fastquant.colorize(x, name, compat="matplotlib", **options)
            np.testing.assert_array_equal(got, expected, err_msg=f"{name} {kind} {options}")
            spec = reference.colorize(x, name, compat="matplotlib", **options)
            np.testing.assert_array_equal(spec, expected, err_msg=f"reference {name} {kind} {options}")
        # equal limits: matplotlib maps everything (NaN included) to colour 0
        expected = cmap(Normalize(0.5, 0.5)(x), bytes=True)[..., :3]
        np.testing.assert_array_equal(fastquant.colorize(x, name, 0.5, 0.5, compat="matplotlib"), expected)


def test_compat_per_slice_limits_and_objects(path):
    matplotlib = pytest.importorskip("matplotlib")
    from matplotlib.colors import Normalize

    rng = np.random.default_rng(8)
    x = rng.random((20, 30, 3), dtype=np.float32)
    cmap = matplotlib.colormaps["cividis"]
    got = fastquant.colorize(x, cmap, percentiles=(5, 95), axis=(0, 1), method="exact", compat="matplotlib")
    lo, hi = fastquant.limits(x, percentiles=(5, 95), axis=(0, 1), method="exact")
    for c in range(3):
        expected = cmap(Normalize(float(lo[0, 0, c]), float(hi[0, 0, c]))(x[..., c]), bytes=True)[..., :3]
        np.testing.assert_array_equal(got[..., c, :], expected)
    # a matplotlib Colormap object gives the same colours as its name
    np.testing.assert_array_equal(fastquant.colorize(x, cmap), fastquant.colorize(x, "cividis"))
    with pytest.raises(ValueError, match="resampled"):
        fastquant.colorize(x, cmap.resampled(16))


def test_save_with_a_colormap(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(4)
    x = rng.standard_normal((40, 50)).astype(np.float32)
    x[3, 4] = np.nan
    fastquant.save(tmp_path / "v.png", x, cmap="viridis", percentiles=(5, 95), nan=(255, 0, 255))
    expected = fastquant.colorize(x, "viridis", percentiles=(5, 95), nan=(255, 0, 255))
    with Image.open(tmp_path / "v.png") as image:
        assert image.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(image), expected)
    fastquant.save(tmp_path / "v.tif", x, cmap="magma", nan=(0, 0, 0, 0))
    with Image.open(tmp_path / "v.tif") as image:
        assert image.mode == "RGBA"
    with pytest.raises(ValueError, match="2-D map"):
        fastquant.save(tmp_path / "w.png", np.zeros((4, 4, 3)), cmap="viridis")
    with pytest.raises(ValueError, match="together with cmap"):
        fastquant.save(tmp_path / "w.png", x, compat="matplotlib")
    assert not (tmp_path / "w.png").exists()


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("level_dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("float_dtype", [np.float32, np.float64])
def test_paint_equals_the_table_on_the_vector_blocks_and_the_tail(channels, level_dtype, float_dtype):
    """The kernels' paint (AVX-512 VBMI blocks of 64 pixels where the CPU has it, then the scalar tail) is the
    table at the levels, and NaN's entry where x is NaN (whose level is 0): every level, NaN in every lane, sizes
    around multiples of 64."""
    import numba

    from fastquant._kernels import _common, _vbmi

    vector_part = numba.njit(lambda x, levels, out, lut: _vbmi.vbmi_paint(x, levels, out, lut))
    rng = np.random.default_rng(21)
    table = rng.integers(0, 256, (257, channels), dtype=np.uint8)
    lut = fastquant._passes.packed_colours(table)
    for n in (0, 1, 5, 63, 64, 65, 130, 64 * 9 + 37, 1000):
        levels = rng.integers(0, 256, n).astype(level_dtype)
        levels[: min(n, 256)] = np.arange(min(n, 256))
        x = rng.standard_normal(n).astype(float_dtype)
        x[rng.random(n) < 0.2] = np.nan
        levels[np.isnan(x)] = 0  # as the conversion kernels make them (nan_level 0 in colour)
        expected = table[np.where(np.isnan(x), 256, levels.astype(np.intp))]
        out = np.zeros((n, channels), np.uint8)
        _common._paint(x, levels.copy(), out, lut)
        np.testing.assert_array_equal(out, expected, err_msg=f"n={n}")
        out[:] = 0
        _common._paint_from(x, levels.copy(), out, lut, 0)  # the scalar paint alone (CPUs without VBMI)
        np.testing.assert_array_equal(out, expected, err_msg=f"n={n}")
        out[:] = 0
        done = vector_part(x, levels.copy(), out, lut)
        assert done == (n // 64 * 64 if _vbmi.HAS_VBMI else 0)
        np.testing.assert_array_equal(out[:done], expected[:done], err_msg=f"n={n}")
        assert not out[done:].any()
