"""Regenerate ``fastquant/_data/colormaps.npz`` from matplotlib (run by hand; not part of the package).

Each map is stored as matplotlib's own float64 lookup table, ``Colormap._lut[:256, :3]`` after ``_init()``: the
256 colours that ``cmap(t)`` indexes. fastquant's default bytes are ``rint(lut * 255)``, and
``compat="matplotlib"`` uses matplotlib's ``(lut * 255).astype(uint8)``, so shipping the floats (not only the
rounded bytes) is what makes both exact. Sources and licences: ``fastquant/_data/COLORMAPS.md``.

    python tools/make_colormaps.py   # needs matplotlib >= 3.8
"""

from __future__ import annotations

import pathlib

import matplotlib
import numpy as np

NAMES = ("gray", "viridis", "magma", "inferno", "plasma", "cividis", "turbo", "RdBu")
KEPT = ("glasbey",)  # made by tools/make_glasbey.py (not from matplotlib): kept as the file has it


def main() -> None:
    tables = {}
    for name in NAMES:
        cmap = matplotlib.colormaps[name]
        cmap._init()
        assert cmap.N == 256, name
        tables[name] = np.ascontiguousarray(cmap._lut[:256, :3], dtype=np.float64)
    target = pathlib.Path(__file__).resolve().parent.parent / "fastquant" / "_data" / "colormaps.npz"
    if target.exists():
        with np.load(target, allow_pickle=False) as stored:
            tables.update({name: stored[name] for name in KEPT if name in stored.files})
    np.savez(target, **tables)
    print(f"wrote {target} ({', '.join(NAMES)}) from matplotlib {matplotlib.__version__}")


if __name__ == "__main__":
    main()
