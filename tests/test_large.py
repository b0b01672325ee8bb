"""Arrays of more than 2**31 elements (no 32-bit index or count overflow), checked analytically.

Opt-in (``--runslow``): the uint8 case needs ~4.5 GiB, the float32 case ~11 GiB.

Construction: ``x.reshape(-1, 256)[:] = arange(256)``, so each value v in 0..255 occurs exactly m times and
the sorted array is known in closed form: the element of rank r is ``r // m``. Percentiles follow from NumPy's
"linear" rule applied to those order statistics, and the output is ``LUT[x]`` with the LUT derived from the
per-element rule. Every output element is checked (in chunks), including those past index 2**31.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastquant

pytestmark = pytest.mark.filterwarnings("error")

N = 2**31 + 2**20  # = 256 * (2**23 + 2**12)
CHUNK_ROWS = 1 << 16  # rows of 256 compared at a time (16 MiB)


def _require_memory(gib: float) -> None:
    psutil = pytest.importorskip("psutil")
    available = psutil.virtual_memory().available / 2**30
    if available < gib:
        pytest.skip(f"needs {gib} GiB of free memory, {available:.1f} GiB available")


def linear_percentile(n: int, m: int, q: float) -> float:
    """numpy.percentile(sorted array whose rank-r element is r // m, q), NumPy's arithmetic step by step."""
    virtual = (n - 1) * (np.float64(q) / 100)
    prev = math.floor(virtual)
    if virtual >= n - 1:
        return float((n - 1) // m)
    gamma = np.float64(virtual - prev)
    a, b = np.float64(prev // m), np.float64((prev + 1) // m)
    diff = b - a
    return float(b - diff * (1 - gamma)) if gamma >= 0.5 else float(a + diff * gamma)


def level_table(lo: float, hi: float) -> np.ndarray:
    """The per-element rule for the values 0..255."""
    v = np.arange(256, dtype=np.float64)
    scaled = np.rint((v - lo) * (255 / (hi - lo))) if hi > lo else np.zeros(256)
    return np.where(v <= lo, 0, np.where(v >= hi, 255, scaled)).astype(np.uint8)


def assert_tiled(out: np.ndarray, table: np.ndarray, rows: int, tail: np.ndarray | None = None) -> None:
    """out (flat) == the table repeated over `rows` rows of 256, followed by `tail`."""
    grid = out[: rows * 256].reshape(rows, 256)
    for start in range(0, rows, CHUNK_ROWS):
        block = grid[start : start + CHUNK_ROWS]
        bad = np.nonzero(np.any(block != table, axis=1))[0]
        assert bad.size == 0, f"row {start + bad[0]} (flat index {(start + bad[0]) * 256}) differs"
    if tail is not None:
        np.testing.assert_array_equal(out[rows * 256 :], tail)


def test_table_examples():
    """The closed forms above on a case NumPy can check directly (each value 3 times). Not slow."""
    small = np.repeat(np.arange(256, dtype=np.uint8), 3)
    for q in (0, 5, 25, 33.3, 50, 95, 99.9, 100):
        assert linear_percentile(small.size, 3, q) == np.percentile(small, np.float64(q))
    lo, hi = np.percentile(small, [5.0, 95.0])
    expected = fastquant.reference.to_uint8(np.arange(256, dtype=np.uint8), vmin=lo, vmax=hi)
    np.testing.assert_array_equal(level_table(lo, hi), expected)


@pytest.mark.slow
def test_uint8_over_2_31_elements(numba_path):
    _require_memory(6)
    m = N // 256
    x = np.empty(N, dtype=np.uint8)
    x.reshape(-1, 256)[:] = np.arange(256, dtype=np.uint8)
    qs = [0, 5, 25, 50, 95, 100]
    expected = [linear_percentile(N, m, q) for q in qs]
    assert expected[2:4] == [63.75, 127.5]  # ranks 64m - 1 | 64m and 128m - 1 | 128m
    np.testing.assert_array_equal(fastquant.percentile(x, qs, method="exact"), expected)

    lo, hi = expected[1], expected[4]
    table = level_table(lo, hi)
    out = fastquant.to_uint8(x, percentiles=(5, 95), method="exact")
    assert out.shape == (N,) and out.dtype == np.uint8
    assert out[-1] == 255 and out[2**31 + 3] == table[3] and out[2**31 - 1] == 255
    assert_tiled(out, table, N // 256)
    del out
    approx = fastquant.to_uint8(x, percentiles=(5, 95), method="approx")
    assert_tiled(approx, table, N // 256)  # exact limits fall on integers: approx must find the same
    del approx
    fixed = fastquant.to_uint8(x, vmin=0, vmax=255)  # the identity on uint8
    assert_tiled(fixed, np.arange(256, dtype=np.uint8), N // 256)


@pytest.mark.slow
def test_float32_over_2_31_elements_with_nan_tail(numba_path):
    _require_memory(12)
    x = np.empty(N, dtype=np.float32)
    x.reshape(-1, 256)[:] = np.arange(256, dtype=np.float32)
    x[2**31 :] = np.nan  # 2**20 NaN, all past index 2**31: 2**31 finite values, each v 2**23 times
    n, m = 2**31, 2**23
    qs = [0, 5, 50, 95, 100]
    expected = [linear_percentile(n, m, q) for q in qs]
    assert expected[2] == 127.5
    np.testing.assert_array_equal(fastquant.percentile(x, qs, method="exact"), expected)

    lo, hi = expected[1], expected[3]
    table = level_table(lo, hi)
    tail = np.full(2**20, 77, dtype=np.uint8)
    for method in ("exact", "approx"):
        out = fastquant.to_uint8(x, percentiles=(5, 95), method=method, nan=77)
        assert out[2**31 - 1] == 255 and out[2**31] == 77 and out[-1] == 77
        assert_tiled(out, table, n // 256, tail)
        del out
