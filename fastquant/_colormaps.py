"""Colour tables: the shipped colormaps, the ones users pass, the labels palette, and the NaN colour.

A colormap becomes a 256-row table of colours (3 columns, or 4 with alpha) indexed by the grey level of
:func:`fastquant.to_uint8`. The shipped maps are stored as matplotlib's float tables (``_data/colormaps.npz``,
sources and licences in ``_data/COLORMAPS.md``): fastquant's bytes are ``rint(table * 255)``, and
``compat="matplotlib"`` takes matplotlib's truncating ``(table * 255).astype(uint8)``. The ``glasbey`` labels palette
is stored there as bytes (made by ``tools/make_glasbey.py``). NumPy only, and nothing is read from disk until a
colormap is first asked for.
"""

from __future__ import annotations

import functools
import pathlib

import numpy as np

from . import _validate

SHIPPED = ("gray", "viridis", "magma", "inferno", "plasma", "cividis", "turbo", "RdBu", "voc", "glasbey")
PALETTES = ("voc", "glasbey")  # labels palettes: colours by index, no matplotlib counterpart
COMPAT = ("matplotlib",)
ACCEPTED_CMAPS = (
    f"one of {', '.join(SHIPPED)}; a (256, 3) or (256, 4) array (uint8, or floats in [0, 1]); "
    "a matplotlib Colormap with 256 colours; or a `cmap` package Colormap"
)
_DATA = pathlib.Path(__file__).resolve().parent / "_data" / "colormaps.npz"


@functools.cache
def _stored() -> dict[str, np.ndarray]:
    with np.load(_DATA, allow_pickle=False) as tables:
        return {name: tables[name] for name in tables.files}


def voc_palette(n: int = 256) -> np.ndarray:
    """The PASCAL VOC label colours (the devkit's bit shuffle of the label index): (n, 3) uint8.

    Label 0 is black, 1 dark red (128, 0, 0), 2 dark green, 3 olive, ...; label 255 is (224, 224, 192).
    """
    labels = np.arange(n)
    palette = np.zeros((n, 3), dtype=np.uint8)
    for bit in range(8):
        for channel in range(3):
            palette[:, channel] |= (((labels >> (3 * bit + channel)) & 1) << (7 - bit)).astype(np.uint8)
    return palette


def glasbey_palette() -> np.ndarray:
    """The glasbey label colours: 256 maximally distinct colours, (256, 3) uint8 (a copy).

    Glasbey et al.'s greedy algorithm in CIELAB over a 32-level sRGB grid, starting from black (label 0); see
    ``tools/make_glasbey.py`` and ``_data/COLORMAPS.md``.
    """
    return _stored()["glasbey"].copy()


def named_palette(name: str) -> np.ndarray:
    """The (256, 3) uint8 colours of a palette of ``PALETTES``."""
    return voc_palette() if name == "voc" else glasbey_palette()


def colour_table(cmap, compat: str | None = None) -> np.ndarray:
    """The (256, 3) or (256, 4) uint8 colours of `cmap` (see ``ACCEPTED_CMAPS``)."""
    if compat is not None and compat not in COMPAT:
        raise ValueError(f"compat={compat!r} is not known; accepted: None or 'matplotlib'")
    to_bytes = _truncate if compat == "matplotlib" else _round
    if isinstance(cmap, str):
        if cmap in PALETTES:
            if compat == "matplotlib":
                raise ValueError(f"cmap={cmap!r} has no matplotlib counterpart; compat='matplotlib' needs another map")
            return named_palette(cmap)
        stored = _stored()
        if cmap not in stored or cmap in PALETTES:
            raise ValueError(f"cmap={cmap!r} is not a shipped colormap; accepted: {ACCEPTED_CMAPS}")
        return to_bytes(stored[cmap])
    if isinstance(cmap, (np.ndarray, list, tuple)):
        return _array_table(np.asarray(cmap), to_bytes)
    if callable(getattr(cmap, "lut", None)) and not hasattr(cmap, "_lut"):  # the `cmap` package's Colormap
        return _object_table(np.asarray(cmap.lut(256), dtype=np.float64), to_bytes, type(cmap).__name__)
    if callable(cmap) and hasattr(cmap, "N"):  # a matplotlib Colormap: its 256 colours, by index
        if cmap.N != 256:
            raise ValueError(
                f"cmap {getattr(cmap, 'name', type(cmap).__name__)!r} has {cmap.N} colours; accepted: 256 "
                "(matplotlib: cmap.resampled(256))"
            )
        return _object_table(np.asarray(cmap(np.arange(256)), dtype=np.float64), to_bytes, type(cmap).__name__)
    raise TypeError(f"cmap of type {type(cmap).__name__} is not accepted; accepted: {ACCEPTED_CMAPS}")


def _round(table: np.ndarray) -> np.ndarray:
    return np.rint(table * 255).astype(np.uint8)


def _truncate(table: np.ndarray) -> np.ndarray:
    return (table * 255).astype(np.uint8)  # matplotlib's Colormap(..., bytes=True)


def _array_table(table: np.ndarray, to_bytes) -> np.ndarray:
    if table.ndim != 2 or table.shape[0] != 256 or table.shape[1] not in (3, 4):
        raise ValueError(f"cmap array has shape {table.shape}; accepted: (256, 3) or (256, 4)")
    if table.dtype == np.uint8:
        return np.ascontiguousarray(table)
    if table.dtype.kind != "f":
        raise ValueError(f"cmap array has dtype {table.dtype}; accepted: uint8, or floats in [0, 1]")
    if not (np.isfinite(table).all() and table.min() >= 0 and table.max() <= 1):
        raise ValueError("cmap array of floats has values outside [0, 1]; accepted: floats in [0, 1], or uint8")
    return to_bytes(table.astype(np.float64))


def _object_table(rgba: np.ndarray, to_bytes, kind: str) -> np.ndarray:
    """A colormap object's (256, 4) float colours: RGB, or RGBA when any colour is not opaque."""
    if rgba.shape != (256, 4) or not (np.isfinite(rgba).all() and rgba.min() >= 0 and rgba.max() <= 1):
        raise ValueError(f"cmap {kind} gave colours of shape {rgba.shape}; accepted: (256, 4) floats in [0, 1]")
    return to_bytes(rgba if (rgba[:, 3] < 1).any() else rgba[:, :3])


def check_stretch_compat(stretch, compat: str | None):
    """The validated stretch; ``compat="matplotlib"`` reproduces ``Normalize`` (linear) only."""
    stretch = _validate.check_stretch(stretch)
    if compat is not None and stretch != "linear":
        raise ValueError(
            f"stretch={stretch!r} with compat={compat!r}: matplotlib compatibility is for the linear stretch "
            "(Normalize) only; accepted: stretch='linear' or compat=None"
        )
    return stretch


def check_nan_colour(nan) -> tuple[int, ...]:
    """The colour of NaN: 3 (RGB) or 4 (RGBA) ints in 0..255."""
    try:
        values = tuple(nan)
    except TypeError:
        raise TypeError(f"nan={nan!r} must be a colour: 3 or 4 ints in 0..255, e.g. (0, 0, 0)") from None
    if len(values) not in (3, 4):
        raise ValueError(f"nan={nan!r} has {len(values)} components; accepted: 3 (RGB) or 4 (RGBA) ints in 0..255")
    out = tuple(_validate.integer(v, "nan component", "an int in 0..255") for v in values)
    if not all(0 <= v <= 255 for v in out):
        raise ValueError(f"nan={nan!r} has a component outside 0..255")
    return out


def lookup_table(colours: np.ndarray, nan: tuple[int, ...]) -> np.ndarray:
    """The kernels' (257, C) table: rows 0..255 the colours of the levels, row 256 the colour of NaN.

    C is 4 exactly when the colours or the NaN colour have alpha; the other side's alpha is then 255 (opaque).
    """
    channels = max(colours.shape[1], len(nan))
    table = np.full((257, channels), 255, dtype=np.uint8)
    table[:256, : colours.shape[1]] = colours
    table[256, : len(nan)] = nan
    return table


def palette_table(palette) -> np.ndarray:
    """A labels palette: ``"voc"`` or ``"glasbey"`` (256 colours each) or a (K, 3) uint8 array, 1 <= K <= 256."""
    if isinstance(palette, str):
        if palette not in PALETTES:
            raise ValueError(
                f"palette={palette!r} is not known; accepted: 'voc', 'glasbey' or a (K, 3) uint8 array, K <= 256"
            )
        return named_palette(palette)
    table = np.asarray(palette)
    if table.dtype != np.uint8 or table.ndim != 2 or table.shape[1] != 3 or not 1 <= table.shape[0] <= 256:
        raise ValueError(
            f"palette of shape {table.shape} and dtype {table.dtype}; accepted: 'voc', 'glasbey' or (K, 3) uint8, "
            "K <= 256"
        )
    return np.ascontiguousarray(table)
