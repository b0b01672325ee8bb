"""Make the ``glasbey`` labels palette and store it in ``fastquant/_data/colormaps.npz`` (run by hand; NumPy only).

Glasbey, van der Heijden, Toh and Gray (2007), "Colour displays for categorical images", Color Research and
Application 32(4): 304-309, https://doi.org/10.1002/col.20327: each next colour is the candidate farthest from all
colours chosen so far (the largest minimum distance), in a perceptually uniform space. The choices made here:

- distance: Euclidean in CIELAB (CIE 1976 L*a*b*), from sRGB (IEC 61966-2-1 transfer curve, the sRGB-to-XYZ
  matrix, the white point its rows sum to: D65);
- candidates: the 32**3 sRGB colours with channel levels ``rint(k * 255 / 31)``, k = 0..31 (0, 8, 16, ..., 255);
- first colour black ``(0, 0, 0)``: label 0, usually background, is black as in the VOC palette;
- ties (equal minimum distances) go to the first candidate in C order of (R, G, B) levels (``numpy.argmax``).

So the table is deterministic; 256 colours, all distinct. Every other array of the file is kept as it is (read,
then written back with ``numpy.savez``, the format ``tools/make_colormaps.py`` writes, which keeps "glasbey" too).

    python tools/make_glasbey.py   # about a second
"""

from __future__ import annotations

import pathlib

import numpy as np

COLOURS = 256
LEVELS = 32
FIRST = (0, 0, 0)
TARGET = pathlib.Path(__file__).resolve().parent.parent / "fastquant" / "_data" / "colormaps.npz"

# sRGB (linear) to CIE XYZ, IEC 61966-2-1; the white point is what (1, 1, 1) maps to (D65).
_SRGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (L*, a*, b*) of sRGB bytes, shape (..., 3) -> float64 (..., 3)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _SRGB_TO_XYZ.T / _SRGB_TO_XYZ.sum(axis=1)  # relative to the white point
    delta = 6.0 / 29.0
    f = np.where(xyz > delta**3, np.cbrt(xyz), xyz / (3 * delta**2) + 4.0 / 29.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], -1)


def glasbey(n: int = COLOURS, levels: int = LEVELS, first=FIRST) -> np.ndarray:
    """The (n, 3) uint8 palette of Glasbey et al.'s greedy algorithm (see the module docstring)."""
    steps = np.rint(np.arange(levels) * (255.0 / (levels - 1))).astype(np.uint8)
    candidates = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), axis=-1).reshape(-1, 3)
    lab = srgb_to_lab(candidates)
    chosen = [int(np.flatnonzero((candidates == np.array(first, dtype=np.uint8)).all(axis=1))[0])]
    nearest = np.full(len(candidates), np.inf)  # squared distance of each candidate to the nearest chosen colour
    while len(chosen) < n:
        nearest = np.minimum(nearest, ((lab - lab[chosen[-1]]) ** 2).sum(axis=1))
        chosen.append(int(np.argmax(nearest)))
    return candidates[chosen]


def main() -> None:
    table = glasbey()
    assert table.shape == (COLOURS, 3) and len(np.unique(table, axis=0)) == COLOURS
    with np.load(TARGET, allow_pickle=False) as stored:
        tables = {name: stored[name] for name in stored.files}
    tables["glasbey"] = table
    np.savez(TARGET, **tables)
    print(f"wrote {TARGET}: glasbey ({COLOURS} colours) added to {', '.join(n for n in tables if n != 'glasbey')}")


if __name__ == "__main__":
    main()
