"""The row filter of the PNG writer (:mod:`fastquant._png`), for images large enough to take Numba.

Not re-exported by :mod:`fastquant._kernels`: the writer imports this module itself, only for images of at least
``Tuning.numba_min_size`` samples, so saving a smaller image never loads numba, and a conversion never loads this.
"""

from __future__ import annotations

from .._jit import serial


@serial
def filter_up(rows, previous, out):
    """PNG filter type 2 (Up) of a band of rows: ``out[r, 1:] = rows[r] - rows[r - 1]`` modulo 256.

    ``rows`` is a C-contiguous ``(h, n)`` uint8 band of raw rows (``n`` bytes per row), ``previous`` the raw row
    above its first row (zeros above the first row of an image), ``out`` a C-contiguous ``(>= h, 1 + n)`` uint8
    array whose rows receive the filtered bytes after their filter-type byte; column 0 is left as it is (the
    caller sets the type bytes once per buffer). nogil: encoders in several threads filter at the same time.
    """
    h, n = rows.shape
    for j in range(n):
        out[0, 1 + j] = rows[0, j] - previous[j]
    for r in range(1, h):
        for j in range(n):
            out[r, 1 + j] = rows[r, j] - rows[r - 1, j]
